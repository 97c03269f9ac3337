// DICOMweb client of Orthanc: search a remote DICOMweb server, preview, retrieve, delete;
// send local studies; manage servers. Plain JavaScript over the plugin's client REST API.
'use strict';

// The page is served at {root}app/client/index.html: every URL is relative to it, so the
// application works behind reverse proxies and with any DicomWeb.Root.
const DICOMWEB_ROOT = '../../';
const PAGE_SIZE = 20;
const POLL_MS = 400;

const TAG = {
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  PatientID: '00100020',
  PatientName: '00100010',
  StudyDate: '00080020',
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
  ['00080030', 'StudyTime'], ['00080090', 'ReferringPhysicianName'],
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
  page: 0,
  query: {},
  study: null,
  frames: [],
  frameIndex: 0,
  previewUrl: null,
};

const $ = (selector) => document.querySelector(selector);

// --- errors in plain words ---------------------------------------------------------------

class ApiError extends Error {
  constructor(message, details) {
    super(message);
    this.details = details;
  }
}

function plainWords(status, body, server) {
  const remote = body && body.Details && body.Details.RemoteStatus;
  const who = server ? `The DICOMweb server "${server}"` : 'The DICOMweb server';
  if (remote === 401 || remote === 403) {
    return `${who} refused access (HTTP ${remote}): check its username, password or headers.`;
  }
  if (remote === 404) return `${who} does not know this resource (HTTP 404).`;
  if (remote === 405 || remote === 501) {
    return `${who} does not support this operation (HTTP ${remote}).`;
  }
  if (remote >= 500) return `${who} failed with an internal error (HTTP ${remote}).`;
  if (remote) return `${who} refused the request (HTTP ${remote}).`;
  const message = (body && body.Message) || '';
  if (status === 502 && /unreachable|connection/i.test(message)) {
    return `${who} cannot be reached: is it running, and is its URL right?`;
  }
  if (status === 504) return `${who} did not answer in time.`;
  if (status === 404 && /Unknown DICOMweb server/.test(message)) {
    return `${who} is not configured in Orthanc any more.`;
  }
  return message || `Orthanc answered HTTP ${status}.`;
}

async function api(method, url, body, server) {
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError('Orthanc cannot be reached: check that it is running.', String(error));
  }
  if (!response.ok) {
    const text = await response.text();
    let parsed = null;
    try {
      parsed = JSON.parse(text);
    } catch (ignored) {
      // Not JSON: the raw text goes to the details.
    }
    throw new ApiError(plainWords(response.status, parsed, server), text || `HTTP ${response.status}`);
  }
  return response;
}

async function apiJson(method, url, body, server) {
  const response = await api(method, url, body, server);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function showError(error) {
  $('#error-text').textContent = error.message || String(error);
  $('#error-details').textContent = error.details || '';
  $('#error').querySelector('details').hidden = !error.details;
  $('#error').hidden = false;
}

function showNotice(text) {
  $('#notice').textContent = text;
  $('#notice').hidden = false;
}

function clearMessages() {
  $('#error').hidden = true;
  $('#notice').hidden = true;
}

// Runs an action of the user; any failure becomes the error banner, never a blank page.
function guarded(action) {
  return async (...args) => {
    clearMessages();
    try {
      await action(...args);
    } catch (error) {
      showError(error);
    }
  };
}

// --- DICOM JSON --------------------------------------------------------------------------

function valueOf(dataset, tag) {
  const element = dataset[tag];
  if (!element || !element.Value) return '';
  return element.Value.map((v) => (v && typeof v === 'object' && 'Alphabetic' in v ? v.Alphabetic
    : typeof v === 'object' ? JSON.stringify(v) : String(v))).join('\\');
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

// Names and descriptions match anywhere unless the user wrote wildcards.
function contains(value) {
  return /[*?]/.test(value) ? value : `*${value}*`;
}

// --- DOM helpers -------------------------------------------------------------------------

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  td.title = text;
  return td;
}

function button(label, onClick, className) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener('click', guarded(onClick));
  return b;
}

function actionsCell(...buttons) {
  const td = document.createElement('td');
  td.className = 'row-actions';
  const group = document.createElement('div');
  group.append(...buttons.filter(Boolean));
  td.append(group);
  return td;
}

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
    row.append(cell(`(${tag.slice(0, 4)},${tag.slice(4)})`), cell(TAG_NAMES[tag.toUpperCase()] || ''),
      cell(dataset[tag].vr || ''), cell(valueOf(dataset, tag)));
    return row;
  }));
  $('#details-dialog').showModal();
}

// --- servers -----------------------------------------------------------------------------

function server() {
  return $('#server').value;
}

function serverInfo(name = server()) {
  return state.info.Servers.find((s) => s.Name === name);
}

function serverUrl(name, operation) {
  return `${DICOMWEB_ROOT}servers/${encodeURIComponent(name)}${operation ? `/${operation}` : ''}`;
}

function qido(uri, args) {
  return apiJson('POST', serverUrl(server(), 'qido'), { Uri: uri, Arguments: args }, server());
}

async function loadInfo() {
  state.info = await apiJson('GET', `${DICOMWEB_ROOT}info`);
  state.orthancRoot = DICOMWEB_ROOT + state.info.OrthancApiRoot.replace(/^\.\//, '');
  $('#explorer-link').href = `${state.orthancRoot}app/explorer.html`;
  $('#version').textContent = `plugin ${state.info.Version}`;
  const previous = server();
  $('#server').replaceChildren(...state.info.Servers.map((s) => new Option(s.Name, s.Name)));
  if (serverInfo(previous)) $('#server').value = previous;
  if (state.info.Servers.length === 0) {
    showNotice('No DICOMweb server is configured: add one in the "Servers" tab or in the configuration.');
  }
  renderServers();
}

function renderServers() {
  const editable = state.info.ServersInDatabase && !state.info.ReadOnly;
  $('#server-form').hidden = !editable;
  $('#servers-fixed').hidden = editable;
  $('#servers-table tbody').replaceChildren(...state.info.Servers.map((s) => {
    const row = document.createElement('tr');
    row.dataset.name = s.Name;
    row.append(cell(s.Name), cell(s.Url), cell(s.HasDelete ? 'yes' : 'no'), actionsCell(
      button('Test', () => testServer(s.Name)),
      editable && button('Edit', () => editServer(s)),
      editable && button('Remove', () => removeServer(s.Name), 'danger'),
    ));
    return row;
  }));
}

async function testServer(name) {
  const found = await apiJson('POST', serverUrl(name, 'qido'),
    { Uri: '/studies', Arguments: { limit: '1' } }, name);
  showNotice(`The DICOMweb server "${name}" answers QIDO-RS (${found.length ? 'it has studies' : 'no study found'}).`);
}

function editServer(definition) {
  const form = $('#server-form');
  form.elements.Name.value = definition.Name;
  form.elements.Url.value = definition.Url;
  form.elements.Username.value = '';
  form.elements.Password.value = '';
  form.elements.HasDelete.checked = definition.HasDelete;
  form.elements.Name.focus();
}

async function saveServer(event) {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.Name.value.trim();
  const definition = { Url: form.elements.Url.value.trim(), HasDelete: form.elements.HasDelete.checked };
  if (form.elements.Username.value) {
    definition.Username = form.elements.Username.value;
    definition.Password = form.elements.Password.value;
  }
  await apiJson('PUT', serverUrl(name), definition);
  form.reset();
  await loadInfo();
  showNotice(`The DICOMweb server "${name}" is saved.`);
}

async function removeServer(name) {
  if (!await confirmAction(`Remove the DICOMweb server "${name}" from Orthanc?`, 'Remove')) return;
  await apiJson('DELETE', serverUrl(name));
  await loadInfo();
  showNotice(`The DICOMweb server "${name}" is removed.`);
}

// --- jobs --------------------------------------------------------------------------------

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Shows a job's progress until it ends; `onSuccess(item)` may add a link to the result.
async function followJob(label, job, onSuccess) {
  $('#jobs-panel').hidden = false;
  const item = document.createElement('li');
  item.className = 'job';
  item.dataset.job = job.ID;
  const progress = document.createElement('progress');
  progress.max = 100;
  progress.value = 0;
  const status = document.createElement('span');
  status.className = 'job-state';
  status.textContent = 'Pending';
  item.append(Object.assign(document.createElement('span'), { textContent: label }), progress, status);
  $('#jobs').prepend(item);
  for (;;) {
    const described = await apiJson('GET', `${state.orthancRoot}jobs/${job.ID}`);
    progress.value = described.Progress;
    status.textContent = `${described.State} ${described.Progress}%`;
    if (described.State === 'Success') {
      status.textContent = 'Success';
      item.classList.add('success');
      if (onSuccess) await onSuccess(item, described);
      return;
    }
    if (described.State === 'Failure') {
      item.classList.add('failure');
      status.textContent = `Failure: ${described.ErrorDescription || 'unknown error'}`;
      if (described.ErrorDetails) status.title = described.ErrorDetails;
      return;
    }
    await sleep(POLL_MS);
  }
}

async function linkToLocal(item, uid, level) {
  const found = await apiJson('POST', `${state.orthancRoot}tools/lookup`, uid);
  const match = (found || []).find((r) => r.Type === level);
  if (match) {
    const link = document.createElement('a');
    link.href = `${state.orthancRoot}app/explorer.html#${level.toLowerCase()}?uuid=${match.ID}`;
    link.target = '_blank';
    link.className = 'open-local';
    link.textContent = `Open in Orthanc Explorer`;
    item.append(link);
  }
}

async function retrieve(resource, label, uid, level) {
  const name = server();
  const job = await apiJson('POST', serverUrl(name, 'retrieve'),
    { Resources: [resource], Synchronous: false }, name);
  await followJob(`Retrieve ${label} from ${name}`, job, (item) => linkToLocal(item, uid, level));
}

async function deleteRemote(body, label, refresh) {
  const name = server();
  if (!await confirmAction(`Delete ${label} on the DICOMweb server "${name}"? This cannot be undone.`,
    'Delete')) return;
  await apiJson('POST', serverUrl(name, 'delete'), body, name);
  await refresh();
  showNotice(`Deleted ${label} on "${name}".`);
}

// --- remote studies ----------------------------------------------------------------------

function searchArguments(form) {
  const f = form.elements;
  const args = {};
  for (const key of ['PatientID', 'AccessionNumber', 'StudyID', 'ModalitiesInStudy']) {
    if (f[key].value.trim()) args[key] = f[key].value.trim();
  }
  for (const key of ['PatientName', 'StudyDescription']) {
    if (f[key].value.trim()) args[key] = contains(f[key].value.trim());
  }
  const dates = dateRange(f.StudyDateFrom.value, f.StudyDateTo.value);
  if (dates) args.StudyDate = dates;
  return args;
}

async function search(event) {
  event.preventDefault();
  if (!server()) throw new ApiError('Choose a DICOMweb server first.');
  state.query = searchArguments(event.target);
  state.page = 0;
  await showStudies();
}

async function showStudies() {
  // One more than a page tells whether a next page exists.
  const args = { ...state.query, limit: String(PAGE_SIZE + 1), offset: String(state.page * PAGE_SIZE) };
  args.includefield = STUDY_EXTRA_FIELD;
  const studies = await qido('/studies', args);
  const shown = studies.slice(0, PAGE_SIZE);
  $('#series-panel').hidden = true;
  $('#preview-panel').hidden = true;
  $('#studies-panel').hidden = false;
  const first = state.page * PAGE_SIZE;
  $('#studies-count').textContent = shown.length
    ? `(${first + 1}–${first + shown.length}${studies.length > PAGE_SIZE ? ', more available' : ''})`
    : '(none found)';
  $('#studies-page').textContent = `Page ${state.page + 1}`;
  $('#studies-previous').disabled = state.page === 0;
  $('#studies-next').disabled = studies.length <= PAGE_SIZE;
  $('#studies-table tbody').replaceChildren(...shown.map(studyRow));
}

function studyRow(study) {
  const uid = valueOf(study, TAG.StudyInstanceUID);
  const label = `study ${valueOf(study, TAG.StudyDescription) || uid}`;
  const row = document.createElement('tr');
  row.dataset.uid = uid;
  row.append(
    cell(valueOf(study, TAG.PatientID)), cell(valueOf(study, TAG.PatientName)),
    cell(formatDate(valueOf(study, TAG.StudyDate))), cell(valueOf(study, TAG.StudyDescription)),
    cell(valueOf(study, TAG.AccessionNumber)), cell(valueOf(study, TAG.ModalitiesInStudy)),
    cell(valueOf(study, TAG.NumberOfStudyRelatedSeries)),
    cell(valueOf(study, TAG.NumberOfStudyRelatedInstances)),
    actionsCell(
      button('Series', () => showSeries(study)),
      button('Details', () => showDetails(`Study ${uid}`, study)),
      button('Retrieve', () => retrieve({ Study: uid }, label, uid, 'Study'), 'primary'),
      serverInfo().HasDelete && button('Delete', () => deleteRemote(
        { Level: 'Study', StudyInstanceUID: uid }, label, showStudies), 'danger'),
    ),
  );
  return row;
}

async function showSeries(study) {
  state.study = study;
  const uid = valueOf(study, TAG.StudyInstanceUID);
  const series = await qido(`/studies/${uid}/series`, {});
  series.sort((a, b) => Number(valueOf(a, TAG.SeriesNumber)) - Number(valueOf(b, TAG.SeriesNumber)));
  $('#series-title').textContent = `${valueOf(study, TAG.PatientName) || valueOf(study, TAG.PatientID)}, `
    + `${valueOf(study, TAG.StudyDescription) || uid}`;
  $('#series-table tbody').replaceChildren(...series.map((s) => seriesRow(uid, s)));
  $('#preview-panel').hidden = true;
  $('#series-panel').hidden = false;
  $('#series-panel').scrollIntoView({ block: 'nearest' });
}

function seriesRow(studyUid, series) {
  const uid = valueOf(series, TAG.SeriesInstanceUID);
  const label = `series ${valueOf(series, TAG.SeriesDescription) || uid}`;
  const row = document.createElement('tr');
  row.dataset.uid = uid;
  row.append(
    cell(valueOf(series, TAG.SeriesNumber)), cell(valueOf(series, TAG.Modality)),
    cell(valueOf(series, TAG.SeriesDescription)), cell(valueOf(series, TAG.NumberOfSeriesRelatedInstances)),
    actionsCell(
      button('Preview', () => preview(studyUid, series)),
      button('Details', () => showDetails(`Series ${uid}`, series)),
      button('Retrieve', () => retrieve({ Study: studyUid, Series: uid }, label, uid, 'Series'), 'primary'),
      serverInfo().HasDelete && button('Delete', () => deleteRemote(
        { Level: 'Series', StudyInstanceUID: studyUid, SeriesInstanceUID: uid }, label,
        () => showSeries(state.study)), 'danger'),
    ),
  );
  return row;
}

// --- preview -----------------------------------------------------------------------------

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

// --- local studies, sent by STOW-RS ------------------------------------------------------

function localQuery(form) {
  const f = form.elements;
  const query = {};
  for (const key of ['PatientID', 'PatientName', 'StudyDescription']) {
    if (f[key].value.trim()) query[key] = key === 'PatientID' ? f[key].value.trim() : contains(f[key].value.trim());
  }
  const dates = dateRange(f.StudyDateFrom.value, f.StudyDateTo.value);
  if (dates) query.StudyDate = dates;
  return query;
}

async function searchLocal(event) {
  event.preventDefault();
  const studies = await apiJson('POST', `${state.orthancRoot}tools/find`,
    { Level: 'Study', Query: localQuery(event.target), Expand: true, Limit: 200 });
  $('#local-panel').hidden = false;
  $('#local-all').checked = false;
  $('#local-table tbody').replaceChildren(...studies.map((study) => {
    const row = document.createElement('tr');
    const pick = Object.assign(document.createElement('input'), { type: 'checkbox', value: study.ID });
    pick.setAttribute('aria-label', 'Select this study');
    pick.addEventListener('change', updateSendButton);
    const select = document.createElement('td');
    select.append(pick);
    const patient = study.PatientMainDicomTags || {};
    const tags = study.MainDicomTags || {};
    row.append(select, cell(patient.PatientID || ''), cell(patient.PatientName || ''),
      cell(formatDate(tags.StudyDate || '')), cell(tags.StudyDescription || ''),
      cell(String((study.Series || []).length)));
    return row;
  }));
  if (studies.length === 0) showNotice('No study of this Orthanc matches.');
  updateSendButton();
}

function pickedStudies() {
  return [...document.querySelectorAll('#local-table tbody input:checked')].map((c) => c.value);
}

function updateSendButton() {
  const count = pickedStudies().length;
  $('#send-button').disabled = count === 0 || !server();
  $('#send-button').textContent = `Send ${count} stud${count === 1 ? 'y' : 'ies'} to ${server() || '…'}`;
}

async function sendPicked() {
  const name = server();
  const resources = pickedStudies();
  const job = await apiJson('POST', serverUrl(name, 'stow'),
    { Resources: resources, Synchronous: false }, name);
  await followJob(`Send ${resources.length} stud${resources.length === 1 ? 'y' : 'ies'} to ${name}`, job);
}

// --- wiring ------------------------------------------------------------------------------

function selectTab(name) {
  for (const tab of document.querySelectorAll('[data-tab]')) {
    tab.setAttribute('aria-selected', String(tab.dataset.tab === name));
    $(`#tab-${tab.dataset.tab}`).hidden = tab.dataset.tab !== name;
  }
}

function wire() {
  document.querySelectorAll('[data-tab]').forEach((tab) => tab.addEventListener('click', () => selectTab(tab.dataset.tab)));
  $('#error-close').addEventListener('click', () => { $('#error').hidden = true; });
  $('#search-form').addEventListener('submit', guarded(search));
  $('#studies-previous').addEventListener('click', guarded(async () => { state.page -= 1; await showStudies(); }));
  $('#studies-next').addEventListener('click', guarded(async () => { state.page += 1; await showStudies(); }));
  $('#preview-previous').addEventListener('click', guarded(() => moveFrame(-1)));
  $('#preview-next').addEventListener('click', guarded(() => moveFrame(1)));
  $('#local-form').addEventListener('submit', guarded(searchLocal));
  $('#local-all').addEventListener('change', (event) => {
    document.querySelectorAll('#local-table tbody input').forEach((c) => { c.checked = event.target.checked; });
    updateSendButton();
  });
  $('#send-button').addEventListener('click', guarded(sendPicked));
  $('#server-form').addEventListener('submit', guarded(saveServer));
  $('#server').addEventListener('change', () => {
    $('#studies-panel').hidden = true;
    $('#series-panel').hidden = true;
    $('#preview-panel').hidden = true;
    updateSendButton();
  });
}

document.addEventListener('DOMContentLoaded', async () => {
  wire();
  await guarded(loadInfo)();
  document.body.dataset.ready = 'true';
});
