// Entry point: the header (model, server state, API key), the tabs, and the three pages.

import { ApiError, getApiKey, onAuthChange, request, setApiKey } from './api.js';
import { LivePage } from './live.js';
import { PredictPage } from './predict.js';
import { StatusPage } from './status.js';

const kReadyPollMs = 5000;
const kPages = ['predict', 'live', 'status'];

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

function setModelHeader(model) {
  byTestId('model-name').textContent = model?.name ?? 'no model';
  byTestId('model-version').textContent = model?.version ? `v ${model.version}` : '';
  byTestId('model-task').textContent = model ? [model.task, model.arch].filter(Boolean).join(' · ') : '';
  document.title = model?.name ? `${model.name} — vigil` : 'vigil';
}

function setServerState(state, text) {
  const node = byTestId('server-status');
  node.dataset.state = state;
  node.querySelector('.text').textContent = text;
}

function initApiKey(onSaved) {
  const form = byTestId('api-key-form');
  const input = byTestId('api-key');
  const banner = byTestId('auth-error');
  input.value = getApiKey();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    onSaved();
  });
  onAuthChange((err) => {
    if (err) {
      banner.textContent = err.status === 401
        ? 'This server requires an API key (401). Enter it in the “API key” field at the top right and press Save.'
        : 'The server rejected the API key (403). Check the “API key” field at the top right and press Save.';
      banner.hidden = false;
      form.classList.add('needs-key');
    } else if (!banner.hidden) {
      banner.hidden = true;
      form.classList.remove('needs-key');
    }
  });
}

function main() {
  const predictPage = byTestId('page-predict');
  const livePage = byTestId('page-live');
  const statusPage = byTestId('page-status');
  new PredictPage(predictPage);
  const live = new LivePage(livePage);
  const status = new StatusPage(statusPage, { onModel: setModelHeader });
  initApiKey(() => status.refreshModel());

  function showPage() {
    const name = kPages.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'predict';
    for (const p of kPages) {
      const active = p === name;
      byTestId(`page-${p}`).hidden = !active;
      const tab = byTestId(`tab-${p}`);
      tab.setAttribute('aria-selected', String(active));
    }
    if (name !== 'live' && live.isRunning()) live.stop();  // no camera use behind the user's back
    if (name === 'status') status.show();
    else status.hide();
  }
  window.addEventListener('hashchange', showPage);
  showPage();

  let lastState = null;
  async function pollReady() {
    let state;
    try {
      await request('/ready', { auth: false });
      state = 'ready';
      setServerState('ready', 'ready');
    } catch (err) {
      if (err instanceof ApiError && err.status === 0) {
        state = 'offline';
        setServerState('offline', 'server unreachable');
      } else {
        state = 'not-ready';
        setServerState('not-ready', err.status === 503 ? 'no model loaded' : `not ready (${err.status})`);
      }
    }
    // (Re)load the model description when the server becomes ready: after a start or a reload.
    if (state === 'ready' && lastState !== 'ready') status.refreshModel();
    lastState = state;
    setTimeout(pollReady, kReadyPollMs);
  }
  pollReady();
}

main();
