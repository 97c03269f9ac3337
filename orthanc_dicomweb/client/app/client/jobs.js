// The jobs panel: retrieve and send jobs with their progress ("N of M instances"), read back
// from Orthanc's /jobs when the page opens; the button that started a job stays disabled while
// it runs; a failed job tells why and can be resubmitted.
import { apiJson, plainWords } from './api.js';

const POLL_MS = 500;
const SHOWN_AT_MOST = 10;
const REMEMBERED = 'dicomweb-client.jobs'; // localStorage: {job id: {label, key, server, link}}
const VERBS = { DicomWebWadoRetrieveClient: 'Retrieve', DicomWebStowClient: 'Send' };
const FINISHED = ['Success', 'Failure'];

const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(REMEMBERED)) || {};
  } catch (ignored) {
    return {};
  }
}

function remember(id, meta) {
  const all = remembered();
  all[id] = meta;
  // Keep the most recent entries only: Orthanc forgets old jobs too (JobsHistorySize).
  const kept = Object.entries(all).slice(-50);
  localStorage.setItem(REMEMBERED, JSON.stringify(Object.fromEntries(kept)));
}

export function progressText(job) {
  const content = job.Content || {};
  const total = Number(content.InstancesCount) || 0;
  const done = job.Type === 'DicomWebStowClient'
    ? (content.Instances || []).length : Number(content.ReceivedInstancesCount) || 0;
  if (job.State === 'Pending') return 'waiting to start';
  return total ? `${done} of ${total} instances` : `${done} instance${done === 1 ? '' : 's'}`;
}

function failureReason(job, server) {
  let details = null;
  try {
    details = job.ErrorDetails ? JSON.parse(job.ErrorDetails) : null;
  } catch (ignored) {
    details = null;
  }
  return plainWords(0, { Message: job.ErrorDescription, Details: details }, server);
}

export class Jobs {
  constructor(orthancRoot, onSuccess) {
    this.orthancRoot = orthancRoot;
    this.onSuccess = onSuccess; // (item, meta) => adds a link to the result
    this.running = new Set();
  }

  isRunning(key) {
    return this.running.has(key);
  }

  // Disables every button whose job is running (buttons carry data-job-key).
  refreshButtons() {
    for (const b of document.querySelectorAll('button[data-job-key]')) {
      b.disabled = this.running.has(b.dataset.jobKey) || b.dataset.unavailable === 'true';
    }
  }

  // Starts a job once: a second click while it runs does nothing (its button is disabled).
  async start(meta, submit) {
    if (this.running.has(meta.key)) return;
    this.running.add(meta.key);
    this.refreshButtons();
    const item = this.item(null, meta); // shown at once, before Orthanc has answered
    $('#jobs-panel details').open = true;
    let job;
    try {
      job = await submit();
    } catch (error) {
      item.remove();
      this.countItems();
      this.running.delete(meta.key);
      this.refreshButtons();
      throw error;
    }
    item.dataset.job = job.ID;
    remember(job.ID, meta);
    await this.follow(job.ID, meta);
  }

  // The plugin's jobs still known to Orthanc, newest first; running ones are followed again.
  async restore() {
    const all = await apiJson('GET', `${this.orthancRoot}jobs?expand`);
    const ours = (all || []).filter((job) => VERBS[job.Type])
      .sort((a, b) => (a.CreationTime < b.CreationTime ? 1 : -1)).slice(0, SHOWN_AT_MOST).reverse();
    const known = remembered();
    // Jobs that ended before the page opened stay folded: they must not take the screen.
    $('#jobs-panel details').open = ours.some((job) => !FINISHED.includes(job.State));
    for (const job of ours) {
      const meta = known[job.ID] || this.guessMeta(job);
      if (!FINISHED.includes(job.State)) this.running.add(meta.key);
      // Not awaited: running jobs are followed in the background, the page is usable now.
      this.follow(job.ID, meta, job).catch(() => {});
    }
    this.refreshButtons();
  }

  guessMeta(job) {
    const server = (job.Content || {}).Server || '';
    return { label: `${VERBS[job.Type]} ${server ? `(${server})` : ''}`.trim(), key: `job:${job.ID}`, server };
  }

  item(id, meta) {
    $('#jobs-panel').hidden = false;
    let item = id && document.querySelector(`#jobs li[data-job="${id}"]`);
    if (item) return item;
    item = document.createElement('li');
    item.className = 'job';
    if (id) item.dataset.job = id;
    const progress = Object.assign(document.createElement('progress'), { max: 100, value: 0 });
    item.append(
      Object.assign(document.createElement('span'), { className: 'job-label', textContent: meta.label }),
      progress,
      Object.assign(document.createElement('span'), { className: 'job-counts' }),
      Object.assign(document.createElement('span'), { className: 'job-state', textContent: 'Starting' }),
    );
    $('#jobs').prepend(item);
    this.countItems();
    return item;
  }

  countItems() {
    $('#jobs-count').textContent = `(${$('#jobs').children.length})`;
    $('#jobs-panel').hidden = $('#jobs').children.length === 0;
  }

  // Shows a job until it ends; `described` is its last known description, if any.
  async follow(id, meta, described) {
    const item = this.item(id, meta);
    item.classList.remove('failure', 'success');
    item.querySelector('.job-actions')?.remove();
    let job = described;
    for (;;) {
      if (!job) {
        try {
          job = await apiJson('GET', `${this.orthancRoot}jobs/${id}`);
        } catch (error) {
          item.querySelector('.job-state').textContent = `Unknown: ${error.message}`;
          break;
        }
      }
      this.update(item, job);
      if (FINISHED.includes(job.State)) break;
      job = null;
      await sleep(POLL_MS);
    }
    this.running.delete(meta.key);
    this.refreshButtons();
    if (job && job.State === 'Success' && this.onSuccess) await this.onSuccess(item, meta);
    if (job && job.State === 'Failure') this.offerResubmit(item, id, meta, job);
  }

  update(item, job) {
    item.querySelector('progress').value = job.Progress;
    item.querySelector('.job-counts').textContent = progressText(job);
    const state = item.querySelector('.job-state');
    state.textContent = job.State;
    if (job.State === 'Success') item.classList.add('success');
  }

  offerResubmit(item, id, meta, job) {
    item.classList.add('failure');
    const reason = Object.assign(document.createElement('span'), {
      className: 'job-reason', textContent: failureReason(job, meta.server),
    });
    reason.title = [job.ErrorDescription, job.ErrorDetails].filter(Boolean).join('\n');
    const resubmit = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Resubmit' });
    resubmit.addEventListener('click', async () => {
      resubmit.disabled = true;
      try {
        await apiJson('POST', `${this.orthancRoot}jobs/${id}/resubmit`, {});
      } catch (error) {
        reason.textContent = error.message;
        resubmit.disabled = false;
        return;
      }
      this.running.add(meta.key);
      this.refreshButtons();
      await this.follow(id, meta);
    });
    const actions = Object.assign(document.createElement('span'), { className: 'job-actions' });
    actions.append(reason, resubmit);
    item.append(actions);
  }
}
