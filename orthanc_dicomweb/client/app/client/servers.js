// The Servers tab: test, add, edit (rename, keep what is not changed), remove.
import {
  actionsCell, apiJson, ApiError, button, cell, serverUrl, showNotice,
} from './api.js';

const $ = (selector) => document.querySelector(selector);
const URL_PATTERN = /^https?:\/\/[^/\s]+/i;

// The server being edited (null: the form adds a new one).
let editing = null;

export function renderServers(info, confirmAction, reload) {
  const editable = info.ServersInDatabase && !info.ReadOnly;
  $('#server-form').hidden = !editable;
  $('#servers-fixed').hidden = editable;
  $('#servers-table tbody').replaceChildren(...info.Servers.map((s) => {
    const row = document.createElement('tr');
    row.dataset.name = s.Name;
    row.append(cell(s.Name, 'Name'), cell(s.Url, 'URL'), cell(s.Username || '—', 'Username'),
      cell(s.HasDelete ? 'yes' : 'no', 'Delete allowed'), actionsCell(
        button('Test', () => testServer(s.Name)),
        editable && button('Edit', () => editServer(s)),
        editable && button('Remove', () => removeServer(s.Name, confirmAction, reload), 'danger'),
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
  editing = definition;
  const f = $('#server-form').elements;
  $('#server-form-title').textContent = `Edit the server "${definition.Name}"`;
  f.Name.value = definition.Name;
  f.Url.value = definition.Url;
  f.Username.value = definition.Username || '';
  f.Password.value = '';
  f.Password.placeholder = definition.HasPassword ? 'unchanged' : '';
  f.HasDelete.checked = definition.HasDelete;
  const kept = definition.HttpHeaders.length ? ` HTTP headers (${definition.HttpHeaders.join(', ')}),` : '';
  $('#server-kept').textContent = `Left empty, the password stays unchanged. Other settings${kept} `
    + 'certificates, timeouts, are kept.';
  $('#server-kept').hidden = false;
  $('#server-form').scrollIntoView({ block: 'nearest' });
  f.Name.focus();
}

export function resetServerForm() {
  editing = null;
  $('#server-form-title').textContent = 'Add a server';
  $('#server-form').elements.Password.placeholder = '';
  $('#server-kept').hidden = true;
}

// What changed, for POST {root}servers/{name}: the plugin keeps every field not sent.
function changes(form) {
  const f = form.elements;
  const changed = {
    Name: f.Name.value.trim(), Url: f.Url.value.trim(), HasDelete: f.HasDelete.checked,
  };
  const username = f.Username.value.trim();
  if (username !== (editing.Username || '')) changed.Username = username || null;
  if (f.Password.value) changed.Password = f.Password.value;
  if (!username) changed.Password = null; // no username, no password
  return changed;
}

export async function saveServer(event, info, reload) {
  event.preventDefault();
  const form = event.target;
  const name = form.elements.Name.value.trim();
  const url = form.elements.Url.value.trim();
  if (!URL_PATTERN.test(url)) {
    throw new ApiError(`"${url}" is not a web address: it must start with http:// or https://.`);
  }
  if (editing) {
    await apiJson('POST', serverUrl(editing.Name), changes(form));
  } else {
    if (info.Servers.some((s) => s.Name === name)) {
      throw new ApiError(`A server is already named "${name}": use its Edit button to change it.`);
    }
    const definition = { Url: url, HasDelete: form.elements.HasDelete.checked };
    if (form.elements.Username.value.trim()) {
      definition.Username = form.elements.Username.value.trim();
      definition.Password = form.elements.Password.value;
    }
    await apiJson('PUT', serverUrl(name), definition);
  }
  const renamed = editing && editing.Name !== name ? ` (was "${editing.Name}")` : '';
  form.reset();
  resetServerForm();
  await reload();
  showNotice(`The DICOMweb server "${name}" is saved${renamed}.`);
}

async function removeServer(name, confirmAction, reload) {
  if (!await confirmAction(`Remove the DICOMweb server "${name}" from Orthanc?`, 'Remove')) return;
  await apiJson('DELETE', serverUrl(name));
  await reload();
  showNotice(`The DICOMweb server "${name}" is removed.`);
}
