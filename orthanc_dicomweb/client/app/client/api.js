// Calls to Orthanc and the plugin, with every failure turned into a sentence a user can act on.

// The page is served at {root}app/client/index.html: every URL is relative to it, so the
// application works behind reverse proxies and with any DicomWeb.Root.
export const DICOMWEB_ROOT = '../../';

export class ApiError extends Error {
  constructor(message, details) {
    super(message);
    this.details = details;
  }
}

// `body` is Orthanc's JSON error ({Message, Details: {RemoteStatus}}) or a job's description.
export function plainWords(status, body, server) {
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
  if (/unreachable|connection (lost|refused|closed)/i.test(message)) {
    return `${who} cannot be reached: is it running, and is its URL right?`;
  }
  if (status === 504 || /no answer within/i.test(message)) return `${who} did not answer in time.`;
  if (status === 404 && /Unknown DICOMweb server/.test(message)) {
    return `${who} is not configured in Orthanc any more.`;
  }
  return message || `Orthanc answered HTTP ${status}.`;
}

export async function api(method, url, body, server) {
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

export async function apiJson(method, url, body, server) {
  const response = await api(method, url, body, server);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export function serverUrl(name, operation) {
  return `${DICOMWEB_ROOT}servers/${encodeURIComponent(name)}${operation ? `/${operation}` : ''}`;
}

// --- messages ------------------------------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

export function showError(error) {
  $('#error-text').textContent = error.message || String(error);
  $('#error-details').textContent = error.details || '';
  $('#error').querySelector('details').hidden = !error.details;
  $('#error').hidden = false;
}

export function showNotice(text) {
  $('#notice').textContent = text;
  $('#notice').hidden = false;
}

export function clearMessages() {
  $('#error').hidden = true;
  $('#notice').hidden = true;
}

// Runs an action of the user; any failure becomes the error banner, never a blank page.
export function guarded(action) {
  return async (...args) => {
    clearMessages();
    try {
      await action(...args);
    } catch (error) {
      showError(error);
    }
  };
}

// --- DOM helpers ---------------------------------------------------------------------------

// A table cell; `label` names the column on phones, where rows become cards.
export function cell(text, label) {
  const td = document.createElement('td');
  td.textContent = text;
  td.title = text;
  if (label) td.dataset.label = label;
  return td;
}

export function button(label, onClick, className) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener('click', guarded(onClick));
  return b;
}

export function actionsCell(...buttons) {
  const td = document.createElement('td');
  td.className = 'row-actions';
  const group = document.createElement('div');
  group.append(...buttons.filter(Boolean));
  td.append(group);
  return td;
}
