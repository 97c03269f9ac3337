// DICOMweb from the browser: QIDO-RS search (GET {url}/studies) and STOW-RS upload
// (POST {url}/studies with a multipart/related body built from the chosen files).
'use strict';

const $ = (selector) => document.querySelector(selector);

function baseUrl() {
  return $('#url').value.replace(/\/+$/, '');
}

function value(dataset, tag) {
  const values = (dataset[tag] && dataset[tag].Value) || [];
  return values.map((v) => (typeof v === 'object' ? v.Alphabetic : String(v))).join('\\');
}

function status(text) {
  $('#status').textContent = text;
}

async function searchStudies() {
  const params = new URLSearchParams();
  if ($('#patient-id').value) params.set('PatientID', $('#patient-id').value);
  if ($('#patient-name').value) params.set('PatientName', $('#patient-name').value);
  const response = await fetch(`${baseUrl()}/studies?${params}`, {
    headers: { Accept: 'application/dicom+json' },
  });
  if (!response.ok) throw new Error(`QIDO-RS failed: HTTP ${response.status}`);
  const text = await response.text();
  const studies = text ? JSON.parse(text) : [];
  $('#studies tbody').replaceChildren(...studies.map((study) => {
    const row = document.createElement('tr');
    for (const tag of ['00100020', '00100010', '00080020', '0020000D']) {
      const cell = document.createElement('td');
      cell.textContent = value(study, tag); // textContent: remote data is never HTML
      row.append(cell);
    }
    return row;
  }));
  status(`${studies.length} studies found`);
}

// A multipart/related body: each file is one application/dicom part.
async function multipartBody(files, boundary) {
  const parts = [];
  for (const file of files) {
    parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
    parts.push(new Uint8Array(await file.arrayBuffer()));
    parts.push('\r\n');
  }
  parts.push(`--${boundary}--\r\n`);
  return new Blob(parts);
}

async function uploadFiles() {
  const files = [...$('#files').files];
  if (files.length === 0) throw new Error('Choose DICOM files first');
  const boundary = `sample-${crypto.randomUUID()}`;
  const response = await fetch(`${baseUrl()}/studies`, {
    method: 'POST',
    headers: {
      'Content-Type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      Accept: 'application/dicom+json',
    },
    body: await multipartBody(files, boundary),
  });
  const answer = await response.json().catch(() => ({}));
  const stored = ((answer['00081199'] || {}).Value || []).length;
  const failed = ((answer['00081198'] || {}).Value || []).length;
  status(`STOW-RS: HTTP ${response.status}, ${stored} stored, ${failed} failed`);
}

function reportErrors(action) {
  return () => action().catch((error) => status(String(error.message || error)));
}

document.addEventListener('DOMContentLoaded', () => {
  $('#url').value = `${window.location.origin}/dicom-web`;
  $('#search').addEventListener('click', reportErrors(searchStudies));
  $('#upload').addEventListener('click', reportErrors(uploadFiles));
});
