// DICOMweb client of Orthanc: search a remote DICOMweb server, preview, retrieve, delete;
// send local studies; manage servers. Plain JavaScript modules over the plugin's REST API.
import {
  actionsCell, api, apiJson, ApiError, button, cell, DICOMWEB_ROOT, guarded, serverUrl, showError,
  showNotice,
} from './api.js';
import { Jobs } from './jobs.js';
import { renderServers, resetServerForm, saveServer } from './servers.js';
import { PagedTable } from './table.js';

// A search shows at most this many studies (sorted and paged in the page); more are announced.
const MAX_RESULTS = 1000;
const CHOSEN_SERVER = 'dicomweb-client.server'; // localStorage

const TAG = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  PatientID: '00100020',
  PatientName: '00100010',
  StudyDate: '00080020',
  StudyTime: '00080030',
  StudyDescription: '00081030',
  AccessionNumber: '00080050',
  ModalitiesInStudy: '00080061',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  SeriesNumber: '00200011',
  Modality: '00080060',
  SeriesDescription: '0008103E',
  NumberOfSeriesRelatedInstances: '00201209',
  InstanceNumber: '00200013',
  NumberOfFrames: '00280008',
};
// Names shown in "Details" (the attributes QIDO-RS usually returns).
const TAG_NAMES = Object.fromEntries([
  ...Object.entries(TAG).map(([name, tag]) => [tag, name]),
  ['00080005', 'SpecificCharacterSet'], ['00080016', 'SOPClassUID'],
  ['00080090', 'ReferringPhysicianName'],
  ['00081190', 'RetrieveURL'], ['00100030', 'PatientBirthDate'], ['00100040', 'PatientSex'],
  ['00200010', 'StudyID'], ['00080056', 'InstanceAvailability'],
  ['00080054', 'RetrieveAETitle'], ['00080021', 'SeriesDate'], ['00080031', 'SeriesTime'],
  ['00400244', 'PerformedProcedureStepStartDate'], ['00280010', 'Rows'],
  ['00280011', 'Columns'], ['00280100', 'BitsAllocated'], ['00080062', 'SOPClassesInStudy'],
]);
// One attribute beyond QIDO-RS's defaults: some servers (the official plugin 1.7) do not
// split comma-separated includefield lists, and Arguments cannot repeat a key.
const STUDY_EXTRA_FIELD = '00081030';

const state = {
  info: null,
  orthancRoot: '../../../',
  study: null,
  frames: [],
  frameIndex: 0,
  previewUrl: null,
  picked: new Set(), // StudyInstanceUIDs ticked in the Send tab, across pages
};
let jobs = null;
let remoteStudies = null;
let localStudies = null;

const $ = (selector) => document.querySelector(selector);

// --- DICOM JSON values, raw and readable ---------------------------------------------------

function valueOf(dataset, tag) {
  const element = dataset[tag];
  if (!element || !element.Value) return '';
  return element.Value.map((v) => (v && typeof v === 'object' && 'Alphabetic' in v ? v.Alphabetic
    : typeof v === 'object' ? JSON.stringify(v) : String(v))).join('\\');
}

// "DOE^JOHN^^DR" reads "DOE, JOHN DR"; several values read "CT, US".
function readable(dataset, tag) {
  const element = dataset[tag];
  if (!element || !element.Value) return '';
  if (element.vr === 'DA') return element.Value.map((v) => formatDate(String(v))).join(', ');
  if (element.vr !== 'PN') return valueOf(dataset, tag).split('\\').join(', ');
  return element.Value.map((v) => {
    const [family = '', ...rest] = ((v && v.Alphabetic) || '').split('^');
    const given = rest.filter(Boolean).join(' ');
    return given ? `${family}, ${given}` : family;
  }).join('; ');
}

function formatDate(value) {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value;
}

function dicomDate(isoDate) {
  return isoDate.replaceAll('-', '');
}

function dateRange(from, to) {
  if (!from && !to) return '';
  if (from && from === to) return dicomDate(from);
  return `${dicomDate(from || '')}-${dicomDate(to || '')}`;
}

// Names and descriptions match anywhere unless the user wrote wildcards. Spaces and "^" become
// "?" (any one character): servers that do not percent-decode queries (the official plugin
// 1.7) could not match them otherwise.
function contains(value) {
  const portable = value.replace(/[\s^]/g, '?');
  return /[*?]/.test(value) ? portable : `*${portable}*`;
}

// --- dialogs -------------------------------------------------------------------------------

function confirmAction(text, confirmLabel) {
  const dialog = $('#confirm-dialog');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = confirmLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
  });
}

function showDetails(title, dataset) {
  $('#details-title').textContent = title;
  const body = $('#details-table tbody');
  body.replaceChildren(...Object.keys(dataset).sort().map((tag) => {
    const row = document.createElement('tr');
    row.append(cell(`(${tag.slice(0, 4)},${tag.slice(4)})`, 'Tag'), cell(TAG_NAMES[tag.toUpperCase()] || '', 'Name'),
      cell(dataset[tag].vr || '', 'VR'), cell(valueOf(dataset, tag), 'Value'));
    return row;
  }));
  $('#details-dialog').showModal();
}

// --- servers -------------------------------------------------------------------------------

function server() {
  return $('#server').value;
}

function serverInfo(name = server()) {
  return state.info.Servers.find((s) => s.Name === name);
}

function qido(uri, args) {
  return apiJson('POST', serverUrl(server(), 'qido'), { Uri: uri, Arguments: args }, server());
}

function noServerNotice(info) {
  if (info.ServersInDatabase && !info.ReadOnly) {
    return 'No DICOMweb server is configured yet: add one in the "Servers" tab.';
  }
  return 'No DICOMweb server is configured. Add one to "DicomWeb.Servers" in the Orthanc '
    + 'configuration file and restart Orthanc (e.g. "Servers": {"pacs": ["http://pacs:8042/dicom-web/"]}), '
    + 'or set "DicomWeb.ServersInDatabase" to true to manage servers in the "Servers" tab.';
}

async function loadInfo() {
  state.info = await apiJson('GET', `${DICOMWEB_ROOT}info`);
  state.orthancRoot = DICOMWEB_ROOT + state.info.OrthancApiRoot.replace(/^\.\//, '');
  $('#explorer-link').href = `${state.orthancRoot}app/explorer.html`;
  $('#version').textContent = `plugin ${state.info.Version}`;
  const previous = server() || localStorage.getItem(CHOSEN_SERVER);
  $('#server').replaceChildren(...state.info.Servers.map((s) => new Option(s.Name, s.Name)));
  if (serverInfo(previous)) $('#server').value = previous;
  if (state.info.Servers.length === 0) showNotice(noServerNotice(state.info));
  renderServers(state.info, confirmAction, loadInfo);
  updateSendButton();
}

// --- jobs ----------------------------------------------------------------------------------

// A button whose job must not start twice: disabled while that job runs.
function jobButton(label, key, onClick, className) {
  const b = button(label, onClick, className);
  b.dataset.jobKey = key;
  b.disabled = jobs.isRunning(key);
  return b;
}

async function linkToLocal(item, meta) {
  if (!meta.link) return;
  item.querySelector('a.open-local')?.remove();
  const found = await apiJson('POST', `${state.orthancRoot}tools/lookup`, meta.link.uid);
  const match = (found || []).find((r) => r.Type === meta.link.level);
  if (match) {
    const link = document.createElement('a');
    link.href = `${state.orthancRoot}app/explorer.html#${meta.link.level.toLowerCase()}?uuid=${match.ID}`;
    link.target = '_blank';
    link.className = 'open-local';
    link.textContent = 'Open in Orthanc Explorer';
    item.append(link);
  }
}

function retrieveKey(name, uid) {
  return `retrieve:${name}:${uid}`;
}

async function retrieve(resource, label, uid, level) {
  const name = server();
  const meta = { label: `Retrieve ${label} from ${name}`, key: retrieveKey(name, uid), server: name, link: { uid, level } };
  await jobs.start(meta, () => apiJson('POST', serverUrl(name, 'retrieve'),
    { Resources: [resource], Synchronous: false }, name));
}

async function deleteRemote(body, label, refresh) {
  const name = server();
  if (!await confirmAction(`Delete ${label} on the DICOMweb server "${name}"? This cannot be undone.`,
    'Delete')) return;
  await apiJson('POST', serverUrl(name, 'delete'), body, name);
  await refresh();
  showNotice(`Deleted ${label} on "${name}".`);
}

// --- study lists (remote search and local studies share them) ------------------------------

const STUDY_COLUMNS = [
  { key: 'PatientID', label: 'Patient ID', value: (s) => valueOf(s, TAG.PatientID) },
  { key: 'PatientName', label: 'Patient name', value: (s) => readable(s, TAG.PatientName) },
  {
    key: 'StudyDate', label: 'Study date', descendingFirst: true,
    value: (s) => formatDate(valueOf(s, TAG.StudyDate)),
    sortValue: (s) => valueOf(s, TAG.StudyDate) + valueOf(s, TAG.StudyTime),
  },
  { key: 'StudyDescription', label: 'Description', value: (s) => valueOf(s, TAG.StudyDescription) },
  { key: 'AccessionNumber', label: 'Accession', value: (s) => valueOf(s, TAG.AccessionNumber) },
  { key: 'ModalitiesInStudy', label: 'Modalities', value: (s) => readable(s, TAG.ModalitiesInStudy) },
  { key: 'Series', label: 'Series', value: (s) => valueOf(s, TAG.NumberOfStudyRelatedSeries) },
  { key: 'Instances', label: 'Instances', value: (s) => valueOf(s, TAG.NumberOfStudyRelatedInstances) },
];
const NEWEST_FIRST = { key: 'StudyDate', descending: true };

function studyTable(prefix, extra) {
  return new PagedTable({
    table: $(`#${prefix}-table`),
    count: $(`#${prefix}-count`),
    pagers: [...document.querySelectorAll(`#${prefix}-panel .pager`)],
    noun: ['study', 'studies'],
    columns: STUDY_COLUMNS,
    sort: { ...NEWEST_FIRST },
    idOf: (s) => valueOf(s, TAG.StudyInstanceUID),
    ...extra,
  });
}

function searchArguments(form) {
  const f = form.elements;
  const args = {};
  for (const key of ['PatientID', 'AccessionNumber', 'StudyID', 'ModalitiesInStudy']) {
    if (f[key] && f[key].value.trim()) args[key] = f[key].value.trim();
  }
  for (const key of ['PatientName', 'StudyDescription']) {
    if (f[key].value.trim()) args[key] = contains(f[key].value.trim());
  }
  const dates = dateRange(f.StudyDateFrom.value, f.StudyDateTo.value);
  if (dates) args.StudyDate = dates;
  return { ...args, limit: String(MAX_RESULTS + 1), includefield: STUDY_EXTRA_FIELD };
}

function tooMany(studies) {
  if (studies.length <= MAX_RESULTS) return false;
  showNotice(`More than ${MAX_RESULTS} studies match: the first ${MAX_RESULTS} are listed. `
    + 'Narrow the search (dates, patient, modality) to see the others.');
  return true;
}

// --- remote studies ------------------------------------------------------------------------

async function search(event) {
  event.preventDefault();
  if (!server()) throw new ApiError('Choose a DICOMweb server first.');
  state.query = searchArguments(event.target);
  await showStudies();
}

async function showStudies() {
  const studies = await qido('/studies', state.query);
  $('#series-panel').hidden = true;
  $('#preview-panel').hidden = true;
  $('#studies-panel').hidden = false;
  const overflow = tooMany(studies);
  remoteStudies.show(studies.slice(0, MAX_RESULTS), overflow);
}

function studyActions(study) {
  const uid = valueOf(study, TAG.StudyInstanceUID);
  const label = `study "${valueOf(study, TAG.StudyDescription) || uid}"`;
  return actionsCell(
    button('Series', () => showSeries(study)),
    button('Details', () => showDetails(`Study ${uid}`, study)),
    jobButton('Retrieve', retrieveKey(server(), uid), () => retrieve({ Study: uid }, label, uid, 'Study'), 'primary'),
    serverInfo().HasDelete && button('Delete', () => deleteRemote(
      { Level: 'Study', StudyInstanceUID: uid }, label, showStudies), 'danger'),
  );
}

async function showSeries(study) {
  state.study = study;
  const uid = valueOf(study, TAG.StudyInstanceUID);
  const series = await qido(`/studies/${uid}/series`, {});
  series.sort((a, b) => Number(valueOf(a, TAG.SeriesNumber)) - Number(valueOf(b, TAG.SeriesNumber)));
  $('#series-title').textContent = `${readable(study, TAG.PatientName) || valueOf(study, TAG.PatientID)}, `
    + `${valueOf(study, TAG.StudyDescription) || uid}`;
  $('#series-table tbody').replaceChildren(...series.map((s) => seriesRow(uid, s)));
  $('#preview-panel').hidden = true;
  $('#series-panel').hidden = false;
  $('#series-panel').scrollIntoView({ block: 'nearest' });
}

function seriesRow(studyUid, series) {
  const uid = valueOf(series, TAG.SeriesInstanceUID);
  const label = `series "${valueOf(series, TAG.SeriesDescription) || uid}"`;
  const row = document.createElement('tr');
  row.dataset.uid = uid;
  row.append(
    cell(valueOf(series, TAG.SeriesNumber), 'Number'), cell(valueOf(series, TAG.Modality), 'Modality'),
    cell(valueOf(series, TAG.SeriesDescription), 'Description'),
    cell(valueOf(series, TAG.NumberOfSeriesRelatedInstances), 'Instances'),
    actionsCell(
      button('Preview', () => preview(studyUid, series)),
      button('Details', () => showDetails(`Series ${uid}`, series)),
      jobButton('Retrieve', retrieveKey(server(), uid),
        () => retrieve({ Study: studyUid, Series: uid }, label, uid, 'Series'), 'primary'),
      serverInfo().HasDelete && button('Delete', () => deleteRemote(
        { Level: 'Series', StudyInstanceUID: studyUid, SeriesInstanceUID: uid }, label,
        () => showSeries(state.study)), 'danger'),
    ),
  );
  return row;
}

// --- preview -------------------------------------------------------------------------------

async function preview(studyUid, series) {
  const seriesUid = valueOf(series, TAG.SeriesInstanceUID);
  const instances = await qido(`/studies/${studyUid}/series/${seriesUid}/instances`,
    { includefield: TAG.NumberOfFrames });
  instances.sort((a, b) => Number(valueOf(a, TAG.InstanceNumber)) - Number(valueOf(b, TAG.InstanceNumber)));
  state.frames = instances.flatMap((instance) => {
    const base = `/studies/${studyUid}/series/${seriesUid}/instances/${valueOf(instance, TAG.SOPInstanceUID)}`;
    const count = Math.max(1, Number(valueOf(instance, TAG.NumberOfFrames)) || 1);
    return Array.from({ length: count }, (unused, i) => `${base}/frames/${i + 1}/rendered`);
  });
  state.frameIndex = 0;
  $('#preview-title').textContent = valueOf(series, TAG.SeriesDescription) || seriesUid;
  $('#preview-panel').hidden = false;
  await showFrame();
  $('#preview-panel').scrollIntoView({ block: 'nearest' });
}

async function showFrame() {
  const total = state.frames.length;
  $('#preview-position').textContent = total ? `${state.frameIndex + 1} / ${total}` : 'no image';
  $('#preview-previous').disabled = state.frameIndex === 0;
  $('#preview-next').disabled = state.frameIndex >= total - 1;
  const image = $('#preview-image');
  $('#preview-message').textContent = '';
  if (!total) {
    image.hidden = true;
    $('#preview-message').textContent = 'This series has no instance.';
    return;
  }
  const name = server();
  try {
    const response = await api('POST', serverUrl(name, 'get'),
      { Uri: state.frames[state.frameIndex], HttpHeaders: { Accept: 'image/jpeg' } }, name);
    const blob = await response.blob();
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = URL.createObjectURL(blob);
    image.src = state.previewUrl;
    image.hidden = false;
  } catch (error) {
    // One frame the server cannot render must not stop browsing the others.
    image.hidden = true;
    $('#preview-message').textContent = `This frame cannot be shown: ${error.message}`;
  }
}

async function moveFrame(step) {
  state.frameIndex = Math.min(Math.max(0, state.frameIndex + step), state.frames.length - 1);
  await showFrame();
}

// --- local studies, sent by STOW-RS --------------------------------------------------------

// This Orthanc's own QIDO-RS: the same columns (modalities, counts) as the remote list.
async function searchLocal(event) {
  event.preventDefault();
  const query = new URLSearchParams(searchArguments(event.target));
  const studies = await apiJson('GET', `${DICOMWEB_ROOT}studies?${query}`);
  state.picked.clear();
  $('#local-panel').hidden = false;
  $('#local-all').checked = false;
  const overflow = tooMany(studies);
  localStudies.show(studies.slice(0, MAX_RESULTS), overflow);
  updateSendButton();
}

const PICK_COLUMN = {
  head() {
    const th = Object.assign(document.createElement('th'), { className: 'pick' });
    const all = Object.assign(document.createElement('input'), { type: 'checkbox', id: 'local-all' });
    all.setAttribute('aria-label', 'Select every study found');
    all.title = 'Select every study found';
    all.addEventListener('change', () => {
      for (const study of localStudies.records) {
        const uid = valueOf(study, TAG.StudyInstanceUID);
        if (all.checked) state.picked.add(uid); else state.picked.delete(uid);
      }
      localStudies.render();
      updateSendButton();
    });
    th.append(all);
    return th;
  },
  cell(study) {
    const uid = valueOf(study, TAG.StudyInstanceUID);
    const pick = Object.assign(document.createElement('input'), { type: 'checkbox', value: uid });
    pick.checked = state.picked.has(uid);
    pick.setAttribute('aria-label', 'Select this study');
    pick.addEventListener('change', () => {
      if (pick.checked) state.picked.add(uid); else state.picked.delete(uid);
      updateSendButton();
    });
    const td = document.createElement('td');
    td.className = 'pick';
    td.append(pick);
    return td;
  },
};

function sendKey(name) {
  return `send:${name}:${[...state.picked].sort().join(',')}`;
}

function updateSendButton() {
  const count = state.picked.size;
  const send = $('#send-button');
  send.dataset.jobKey = sendKey(server());
  send.dataset.unavailable = String(count === 0 || !server());
  send.disabled = send.dataset.unavailable === 'true' || jobs.isRunning(send.dataset.jobKey);
  send.textContent = `Send ${count} stud${count === 1 ? 'y' : 'ies'} to ${server() || '…'}`;
}

async function orthancStudyId(uid) {
  const found = await apiJson('POST', `${state.orthancRoot}tools/lookup`, uid);
  const match = (found || []).find((r) => r.Type === 'Study');
  if (!match) throw new ApiError(`The study ${uid} is no longer stored in this Orthanc.`);
  return match.ID;
}

async function sendPicked() {
  const name = server();
  const uids = [...state.picked];
  const meta = {
    label: `Send ${uids.length} stud${uids.length === 1 ? 'y' : 'ies'} to ${name}`, key: sendKey(name), server: name,
  };
  await jobs.start(meta, async () => {
    const resources = await Promise.all(uids.map(orthancStudyId));
    return apiJson('POST', serverUrl(name, 'stow'), { Resources: resources, Synchronous: false }, name);
  });
}

// --- wiring --------------------------------------------------------------------------------

function selectTab(name) {
  for (const tab of document.querySelectorAll('[data-tab]')) {
    tab.setAttribute('aria-selected', String(tab.dataset.tab === name));
    $(`#tab-${tab.dataset.tab}`).hidden = tab.dataset.tab !== name;
  }
}

function chooseServer() {
  localStorage.setItem(CHOSEN_SERVER, server());
  $('#studies-panel').hidden = true;
  $('#series-panel').hidden = true;
  $('#preview-panel').hidden = true;
  updateSendButton();
}

function wire() {
  document.querySelectorAll('[data-tab]').forEach((tab) => tab.addEventListener('click', () => selectTab(tab.dataset.tab)));
  $('#error-close').addEventListener('click', () => { $('#error').hidden = true; });
  $('#search-form').addEventListener('submit', guarded(search));
  $('#preview-previous').addEventListener('click', guarded(() => moveFrame(-1)));
  $('#preview-next').addEventListener('click', guarded(() => moveFrame(1)));
  $('#local-form').addEventListener('submit', guarded(searchLocal));
  $('#send-button').addEventListener('click', guarded(sendPicked));
  $('#server-form').addEventListener('submit', guarded((event) => saveServer(event, state.info, loadInfo)));
  $('#server-form').addEventListener('reset', resetServerForm);
  $('#server').addEventListener('change', chooseServer);
  remoteStudies = studyTable('studies', { after: studyActions });
  localStudies = studyTable('local', { before: PICK_COLUMN });
}

document.addEventListener('DOMContentLoaded', async () => {
  jobs = new Jobs('../../../', linkToLocal);
  wire();
  await guarded(loadInfo)();
  if (state.info) {
    jobs.orthancRoot = state.orthancRoot;
    // Jobs started before a reload are shown again; a failure here must not hide the page.
    await jobs.restore().catch(showError);
  }
  document.body.dataset.ready = 'true';
});
