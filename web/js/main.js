// Entry point: the header (model, server state, API key), the tabs, and the pages. `vigil ui` serves no
// model: the header says so, Predict and Live explain it, and the Experiments page is shown first (the
// Cameras page when the server watches cameras without a model: `vigil serve --cameras` alone).

import { ApiError, getApiKey, getJson, onAuthChange, request, setApiKey } from './api.js';
import { CamerasPage } from './cameras.js';
import { DatasetsPage } from './datasets.js';
import { ExperimentsPage } from './experiments.js';
import { LivePage } from './live.js';
import { ModelsPage } from './models.js';
import { MonitoringPage } from './monitoring.js';
import { PredictPage } from './predict.js';
import { StatusPage } from './status.js';

const kReadyPollMs = 5000;
const kPages = ['predict', 'live', 'cameras', 'status', 'experiments', 'models', 'datasets', 'monitoring'];

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

/** "#experiments/ID" -> ['experiments', 'ID']; unknown pages -> the default. */
function route(defaultPage) {
  const [name, ...rest] = location.hash.slice(1).split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : '';
  return kPages.includes(name) ? [name, arg] : [defaultPage, ''];
}

function main() {
  new PredictPage(byTestId('page-predict'));
  const live = new LivePage(byTestId('page-live'));
  const cameras = new CamerasPage(byTestId('page-cameras'));
  const experiments = new ExperimentsPage(byTestId('page-experiments'));
  const models = new ModelsPage(byTestId('page-models'));
  const datasets = new DatasetsPage(byTestId('page-datasets'));
  const monitoring = new MonitoringPage(byTestId('page-monitoring'));
  // null until /v1/models answered: false on `vigil ui`, which serves no model.
  let modelServed = null;
  let watchesCameras = false;  // asked only when no model is served: it decides the first page
  const noModelText = () => (watchesCameras ? 'cameras only, no model served' : 'no model served (vigil ui)');
  const status = new StatusPage(byTestId('page-status'), {
    onModel: (model, served) => {
      setModelHeader(model);
      const first = modelServed === null;
      modelServed = served;
      byTestId('predict-no-model').hidden = served;
      byTestId('live-no-model').hidden = served;
      live.setModelServed(served);
      if (!served) setServerState('no-model', noModelText());
      if (first && !served) {
        // Nothing to predict: start on Cameras when there are some, else on Experiments.
        getJson('/v1/cameras').then((body) => {
          watchesCameras = (body.cameras ?? []).length > 0;
        }).catch(() => {}).finally(() => {
          if (modelServed === false) setServerState('no-model', noModelText());
          if (!location.hash) showPage();
        });
      }
    },
  });
  initApiKey(() => status.refreshModel());

  function showPage() {
    const [name, arg] = route(modelServed !== false ? 'predict' : watchesCameras ? 'cameras' : 'experiments');
    for (const p of kPages) {
      const active = p === name;
      byTestId(`page-${p}`).hidden = !active;
      const tab = byTestId(`tab-${p}`);
      tab.setAttribute('aria-selected', String(active));
    }
    if (name !== 'live' && live.isRunning()) live.stop();  // no camera use behind the user's back
    if (name === 'cameras') cameras.show();  // hidden, it closes its streams: the server allows few at once
    else cameras.hide();
    if (name === 'status') status.show();
    else status.hide();
    if (name === 'experiments') experiments.show(arg);
    if (name === 'models') models.show(arg);
    if (name === 'datasets') datasets.show(arg);
    if (name === 'monitoring') monitoring.show();
  }
  window.addEventListener('hashchange', showPage);
  showPage();

  let lastState = null;
  async function pollReady() {
    let state;
    try {
      // A server without a model is never ready: ask whether it is alive instead (a 503 every few
      // seconds would also fill the browser's console).
      await request(modelServed === false ? '/health' : '/ready', { auth: false });
      state = modelServed === false ? 'no-model' : 'ready';
      setServerState(state, state === 'ready' ? 'ready' : noModelText());
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
  // Whether a model is served decides what to poll, so ask first.
  status.refreshModel().finally(pollReady);
}

main();
