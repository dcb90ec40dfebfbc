// Models page: the workspace's registered models (GET /v1/registry/models), one model's versions with their
// metrics and lineage (GET /v1/registry/models/{name}) and its aliases as badges. "Set alias" (promote)
// moves an alias such as `production` onto a version after a dialog that says from which version to which;
// removing an alias asks first too. Both need the API key when the server has one.
// Retrain (POST /v1/retrain, with the server's --set retrain_config) starts a champion/challenger job; its
// progress is polled every second from GET /v1/jobs/{id} (the server has no stream for jobs) until it ends,
// Cancel sends DELETE, and the end shows the decision with both scores. A job already running when the page
// opens is picked up again.

import { ApiError, getJson, request } from './api.js';
import { byTestId, confirmDialog, el, fmtBytes, fmtTime, fmtValue, kvList } from './dom.js';

const kAliasPattern = /^[A-Za-z0-9_-]{1,100}$/;
const kJobPollMs = 1000;
const kDatasetRef = /^[A-Za-z0-9._-]{1,128}(@[0-9a-f]{6,64})?$/;
const kTimeBudget = /^[0-9]+(\.[0-9]+)?[smh]?$/;
const kActiveStates = ['queued', 'running'];
const kSuggestedAliases = ['production', 'staging', 'champion', 'challenger'];

function describe(err) {
  return err instanceof ApiError ? err.describe() : String(err);
}

/** Why `alias` cannot be an alias, or '' when it can (the server checks the same rules). */
function aliasProblem(alias) {
  if (!alias) return 'Enter an alias, e.g. production.';
  if (!kAliasPattern.test(alias)) return 'Letters, digits, "-" and "_" only (at most 100).';
  if (/^\d+$/.test(alias)) return 'An alias cannot be a number: that would read as a version.';
  if (alias === 'latest') return '"latest" is reserved: it always means the newest version.';
  return '';
}

const modelPath = (name) => `/v1/registry/models/${encodeURIComponent(name)}`;

/** What moving `alias` onto `version` changes, in words; null when it already points there. */
function moveSummary(model, alias, version) {
  const from = model.aliases?.[alias];
  if (from === version) return null;
  if (from === undefined) return `“${alias}” is not set yet: it will point at version ${version} of ${model.name}.`;
  return `“${alias}” moves from version ${from} to version ${version} of ${model.name}.`;
}

/** The promote dialog: pick an alias (production by default); resolves to the alias or null. */
function promoteDialog(model, version) {
  return new Promise((resolve) => {
    const listId = 'alias-suggestions';
    const names = [...new Set([...Object.keys(model.aliases ?? {}), ...kSuggestedAliases])];
    const input = el('input', { id: 'promote-alias', list: listId, value: 'production', required: true, autocomplete: 'off',
      spellcheck: 'false', 'data-testid': 'promote-alias', 'aria-describedby': 'promote-summary' });
    const summary = el('p', { id: 'promote-summary', class: 'dialog-message', 'data-testid': 'promote-summary',
      'aria-live': 'polite' });
    const confirm = el('button', { type: 'submit', class: 'primary', 'data-testid': 'promote-confirm', text: 'Move alias' });
    const cancel = el('button', { type: 'button', 'data-testid': 'promote-cancel', text: 'Cancel' });
    const update = () => {
      const alias = input.value.trim();
      const problem = aliasProblem(alias);
      const move = problem ? null : moveSummary(model, alias, version);
      summary.textContent = problem || move || `“${alias}” already points at version ${version}.`;
      summary.dataset.state = problem ? 'invalid' : move ? 'move' : 'unchanged';
      confirm.disabled = Boolean(problem) || !move;
      confirm.textContent = model.aliases?.[alias] === undefined ? 'Set alias' : 'Move alias';
    };
    const form = el('form', { method: 'dialog' },
      el('h2', { id: 'promote-title', text: `Set an alias on ${model.name} version ${version}` }),
      el('label', { for: 'promote-alias', text: 'Alias' }), input,
      el('datalist', { id: listId }, names.map((n) => el('option', { value: n }))),
      summary,
      el('p', { class: 'hint', text: `Clients asking for ${model.name}@ALIAS (e.g. vigil serve --model ` +
        `${model.name}@production) get the version it points at when they next load.` }),
      el('div', { class: 'dialog-actions' }, cancel, confirm));
    const dialog = el('dialog', { class: 'dialog', 'data-testid': 'promote-dialog', 'aria-labelledby': 'promote-title' }, form);
    let answer = null;
    input.addEventListener('input', update);
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', () => {
      answer = input.value.trim();
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    update();
    document.body.append(dialog);
    dialog.showModal();
    input.select();
  });
}

export class ModelsPage {
  constructor(root) {
    this.root = root;
    this.list = byTestId(root, 'models-list');
    this.detail = byTestId(root, 'model-detail');
    this.errorBox = byTestId(root, 'models-error');
    this.message = byTestId(root, 'models-message');
    this.models = [];
    this.current = null;  // the shown model's detail
    this.generation = 0;
    byTestId(root, 'models-refresh').addEventListener('click', () => this.show(this.current?.name));
    this.retrain = new RetrainPanel(byTestId(root, 'retrain'), () => this.show(this.current?.name));
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  say(text) {
    this.message.textContent = text;
  }

  /** Called when the page is shown; `name` (from #models/NAME) picks the model. */
  async show(name) {
    this.retrain.show();
    try {
      this.models = await getJson('/v1/registry/models');
      this.showError('');
    } catch (err) {
      this.showError(`Registered models: ${describe(err)}`);
      return;
    }
    this.renderList();
    const pick = this.models.find((m) => m.name === name) ?? this.models.find((m) => m.name === this.current?.name) ??
      this.models[0];
    if (pick) await this.open(pick.name);
    else this.detail.replaceChildren(el('p', { class: 'hint', 'data-testid': 'models-empty',
      text: 'No registered models yet: `vigil models register RUN --name NAME` adds one.' }));
  }

  renderList() {
    this.list.replaceChildren(...this.models.map((m) => {
      const button = el('button', { type: 'button', class: 'model-item', 'data-testid': 'model-item', 'data-name': m.name,
        'aria-current': this.current?.name === m.name ? 'true' : undefined },
      el('span', { class: 'model-item-name', text: m.name }),
      el('span', { class: 'sub', text: `${m.version_count} version${m.version_count === 1 ? '' : 's'} · latest ${m.latest_version}` }),
      el('span', { class: 'badges' }, Object.entries(m.aliases ?? {}).map(([a, v]) =>
        el('span', { class: 'badge', text: `${a} → ${v}` }))));
      button.addEventListener('click', () => this.open(m.name));
      return el('li', {}, button);
    }));
  }

  async open(name) {
    const gen = ++this.generation;
    let model;
    try {
      model = await getJson(modelPath(name));
    } catch (err) {
      if (gen === this.generation) this.showError(`Model ${name}: ${describe(err)}`);
      return;
    }
    if (gen !== this.generation) return;
    this.current = model;
    this.renderList();
    this.renderDetail(model);
  }

  aliasBadge(model, alias, version) {
    const remove = el('button', { type: 'button', class: 'badge-remove', 'data-testid': 'alias-remove',
      'aria-label': `Remove alias ${alias} from version ${version}`, title: `Remove alias ${alias}`, text: '×' });
    remove.addEventListener('click', () => this.removeAlias(model, alias, version));
    return el('span', { class: 'badge', 'data-testid': 'alias-badge', 'data-alias': alias, 'data-version': version },
      alias, remove);
  }

  /** Lineage and description of a version: what it was made from and the file's identity. */
  facts(v) {
    const run = v.run_id ? el('a', { href: `#experiments/${encodeURIComponent(v.run_id)}`, class: 'mono',
      'data-testid': 'version-run', title: `Run ${v.run_id}`, text: v.run_id.slice(0, 12) }) : null;
    const mono = (text, title) => (text ? el('span', { class: 'mono', title, text }) : null);
    return kvList([
      ['model', [v.arch, v.task].filter(Boolean).join(' · ')],
      ['run', run],
      ['dataset', mono(v.dataset_id)],
      ['sha256', mono(v.sha256 ? `${v.sha256.slice(0, 16)}…` : '', v.sha256)],
      ['size', fmtBytes(v.size)],
      ['source', mono(v.source)],
    ], 'version-lineage');
  }

  versionCard(model, v) {
    const promote = el('button', { type: 'button', 'data-testid': 'promote', text: 'Set alias…',
      'aria-label': `Set an alias (promote) on version ${v.version}` });
    promote.addEventListener('click', () => this.promote(model, v.version));
    const metrics = Object.entries(v.metrics ?? {});
    const titleId = `version-${v.version}-title`;
    return el('article', { class: 'version-card', 'data-testid': 'version-row', 'data-version': v.version,
      'aria-labelledby': titleId },
    el('header', {},
      el('h3', { id: titleId, text: `Version ${v.version}` }),
      el('span', { class: 'badges' }, (v.aliases ?? []).map((a) => this.aliasBadge(model, a, v.version))),
      el('span', { class: 'sub', text: `registered ${fmtTime(v.created_ms)}` }),
      promote),
    v.description ? el('p', { class: 'sub', text: v.description }) : null,
    el('div', { class: 'version-body' },
      this.facts(v),
      metrics.length ? el('dl', { class: 'kv', 'data-testid': 'version-metrics' },
        metrics.map(([k, val]) => el('div', {}, el('dt', { class: 'mono', text: k }), el('dd', { text: fmtValue(val) }))))
        : el('p', { class: 'hint', text: 'No metrics recorded.' })));
  }

  renderDetail(model) {
    const versions = [...model.versions].sort((a, b) => b.version - a.version);  // newest first
    const aliases = Object.entries(model.aliases ?? {});
    this.detail.replaceChildren(
      el('h2', { 'data-testid': 'model-detail-name', text: model.name }),
      el('p', { class: 'hint' }, `${versions.length} version${versions.length === 1 ? '' : 's'}, latest ${model.latest_version}. `,
        aliases.length ? `Aliases: ${aliases.map(([a, v]) => `${a} → version ${v}`).join(', ')}.` : 'No aliases yet.'),
      el('div', { class: 'versions', 'data-testid': 'versions-table' }, versions.map((v) => this.versionCard(model, v))));
  }

  async promote(model, version) {
    const alias = await promoteDialog(model, version);
    if (!alias) return;
    try {
      const res = await request(`${modelPath(model.name)}/aliases/${encodeURIComponent(alias)}`, {
        method: 'PUT', body: JSON.stringify({ version }), headers: { 'Content-Type': 'application/json' } });
      const body = await res.json();
      this.showError('');
      this.say(body.previous ? `${model.name}@${alias} moved from version ${body.previous} to version ${body.version}.`
        : `${model.name}@${alias} now points at version ${body.version}.`);
    } catch (err) {
      this.showError(`Setting ${alias} on version ${version}: ${describe(err)}`);
    }
    await this.show(model.name);
  }

  async removeAlias(model, alias, version) {
    const ok = await confirmDialog({
      title: `Remove alias “${alias}”?`,
      message: `“${alias}” points at version ${version} of ${model.name}. After removing it, ${model.name}@${alias} ` +
        'no longer resolves until the alias is set again. The version itself stays.',
      confirmLabel: 'Remove alias',
      danger: true,
      testid: 'remove-alias-dialog',
    });
    if (!ok) return;
    try {
      await request(`${modelPath(model.name)}/aliases/${encodeURIComponent(alias)}`, { method: 'DELETE' });
      this.showError('');
      this.say(`Removed ${model.name}@${alias} (it pointed at version ${version}).`);
    } catch (err) {
      this.showError(`Removing ${alias}: ${describe(err)}`);
    }
    await this.show(model.name);
  }
}

/** The request body from the form: only the fields filled in (the server's config decides the rest). */
function retrainBody(form) {
  const body = {};
  const value = (id) => form.elements[id].value.trim();
  const dataset = value('retrain-dataset');
  if (dataset) {
    if (!kDatasetRef.test(dataset)) throw new Error('Dataset version: a dataset name or name@id (6 or more hex digits).');
    body.dataset = dataset;
  }
  for (const [id, key, lo] of [['retrain-epochs', 'epochs', 1], ['retrain-seed', 'seed', 0]]) {
    if (!value(id)) continue;
    const n = Number(value(id));
    if (!Number.isInteger(n) || n < lo || n > 100000) throw new Error(`${key}: a whole number from ${lo} to 100000.`);
    body[key] = n;
  }
  const time = value('retrain-time');
  if (time) {
    if (!kTimeBudget.test(time)) throw new Error('Time budget: a number of seconds, or with s, m or h (90s, 30m, 1.5h).');
    body.time = time;
  }
  const delta = Number(value('retrain-min-delta') || 0);
  if (!(Math.abs(delta) <= 1)) throw new Error('Min. gain: a number from -1 to 1.');
  if (delta !== 0) body.min_delta = delta;
  if (value('retrain-metric') !== 'auto') body.metric = value('retrain-metric');
  return body;
}

/** The champion/challenger outcome of an ended job, in words. */
function decisionText(job) {
  const score = (side) => (side && typeof side.score === 'number' ? fmtValue(side.score) : '—');
  const metric = job.metric ?? 'score';
  const ch = job.challenger;
  const champ = job.champion;
  switch (job.state) {
    case 'promoted':
      return champ
        ? `Promoted: challenger version ${ch?.version} (${metric} ${score(ch)}) beat champion version ${champ.version} ` +
          `(${metric} ${score(champ)}); ${job.model}@${job.alias} now points at version ${ch?.version}.`
        : `Promoted: version ${ch?.version} (${metric} ${score(ch)}) is the first champion of ${job.model}@${job.alias}.`;
    case 'kept':
      return `Kept the champion: version ${champ?.version} (${metric} ${score(champ)}) against challenger version ` +
        `${ch?.version} (${metric} ${score(ch)}); ${job.model}@${job.alias} did not move.`;
    case 'cancelled':
      return `Cancelled: no alias moved (${job.model}@${job.alias} is unchanged).`;
    default:
      return `Failed${job.exit_code !== undefined ? ` (exit ${job.exit_code})` : ''}: ${job.error || job.reason || 'see the log below'}. ` +
        'No alias moved.';
  }
}

/** The per-epoch rows of the training run (results.csv): epoch, losses, metrics, learning rate. */
function progressTable(rows) {
  if (!rows?.length) return el('p', { class: 'hint', 'data-testid': 'job-progress-none', text: 'No epoch finished yet.' });
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return el('div', { class: 'table-wrap' }, el('table', { class: 'grid', 'data-testid': 'job-progress' },
    el('thead', {}, el('tr', {}, keys.map((k) => el('th', { scope: 'col', class: 'mono', text: k })))),
    el('tbody', {}, rows.map((r) => el('tr', { 'data-testid': 'job-progress-row', 'data-epoch': r.epoch },
      keys.map((k) => el('td', { class: 'num', text: fmtValue(r[k]) })))))));
}

class RetrainPanel {
  /** `onEnded` reloads the registry: an ended job has registered a version and may have moved the alias. */
  constructor(root, onEnded) {
    this.root = root;
    this.form = byTestId(root, 'retrain-form');
    this.errorBox = byTestId(root, 'retrain-error');
    this.jobBox = byTestId(root, 'job');
    this.onEnded = onEnded;
    this.jobId = null;
    this.timer = null;
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.start();
    });
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  setOff(off) {
    byTestId(this.root, 'retrain-off').hidden = !off;
    for (const c of this.form.elements) c.disabled = off;
  }

  /** Whether retraining is on (404 = off), the datasets for the picker, and a job still running. */
  async show() {
    let jobs;
    try {
      jobs = (await getJson('/v1/jobs')).jobs ?? [];
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.setOff(true);
      else this.showError(`Retrain jobs: ${describe(err)}`);
      return;
    }
    this.setOff(false);
    getJson('/v1/datasets').then(({ datasets }) => {
      const refs = [...new Set((datasets ?? []).flatMap((d) => [d.name, `${d.name}@${d.short_id}`]))];
      this.form.querySelector('datalist').replaceChildren(...refs.map((r) => el('option', { value: r })));
    }).catch(() => {});  // only suggestions
    const active = jobs.find((j) => kActiveStates.includes(j.state));
    const latest = active ?? (this.jobId ? null : jobs[0]);
    if (latest && latest.id !== this.jobId) this.follow(latest.id);
  }

  async start() {
    let body;
    try {
      body = retrainBody(this.form);
    } catch (err) {
      this.showError(err.message);
      return;
    }
    const button = byTestId(this.root, 'retrain-start');
    button.disabled = true;
    try {
      const res = await request('/v1/retrain', { method: 'POST', body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json' } });
      const started = await res.json();
      this.showError('');
      byTestId(this.root, 'retrain-target').textContent = `challengers join ${started.model}; champion ${started.model}@${started.alias}`;
      this.follow(started.job);
    } catch (err) {
      this.showError(`Retrain: ${describe(err)}`);
    } finally {
      button.disabled = false;
    }
  }

  /** Polls the job every second until it ends. */
  follow(id) {
    clearTimeout(this.timer);
    this.jobId = id;
    const poll = async () => {
      if (this.jobId !== id) return;
      let job;
      try {
        job = await getJson(`/v1/jobs/${encodeURIComponent(id)}`);
      } catch (err) {
        this.showError(`Job ${id}: ${describe(err)}`);
        this.timer = setTimeout(poll, kJobPollMs * 3);
        return;
      }
      if (this.jobId !== id) return;
      this.render(job);
      if (kActiveStates.includes(job.state)) this.timer = setTimeout(poll, kJobPollMs);
      else if (this.wasActive) {
        this.wasActive = false;
        this.onEnded();
      }
    };
    this.wasActive = false;
    poll();
  }

  async cancel(job) {
    try {
      await request(`/v1/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
      this.showError('');
    } catch (err) {
      this.showError(`Cancel ${job.id}: ${describe(err)}`);
    }
  }

  render(job) {
    const active = kActiveStates.includes(job.state);
    if (active) this.wasActive = true;
    const cancel = active ? el('button', { type: 'button', class: 'danger', 'data-testid': 'job-cancel', text: 'Cancel job' }) : null;
    cancel?.addEventListener('click', () => {
      cancel.disabled = true;
      cancel.textContent = 'Cancelling…';
      this.cancel(job);
    });
    const last = job.progress?.at(-1);
    const epochs = job.progress?.length ? `epoch ${last.epoch ?? job.progress.length}` : 'starting';
    this.jobBox.hidden = false;
    this.jobBox.dataset.state = job.state;
    this.jobBox.dataset.id = job.id;
    this.jobBox.replaceChildren(...[
      el('header', { class: 'panel-head' },
        el('h3', {}, 'Job ', el('span', { class: 'mono', 'data-testid': 'job-id', text: job.id })),
        el('span', { class: 'status-badge', 'data-testid': 'job-state', 'data-status': job.state, text: job.state }),
        active ? el('span', { class: 'sub', 'data-testid': 'job-epoch', text: epochs }) : null,
        cancel),
      kvList([
        ['model', `${job.model}@${job.alias}`],
        ['request', el('span', { class: 'mono', text: (job.request?.set ?? []).join(' ') || '(the config as it is)' })],
        ['queued', job.queued], ['started', job.started], ['finished', job.finished],
      ]),
      active ? null : el('p', { class: 'job-decision', 'data-testid': 'job-decision', 'data-state': job.state,
        text: decisionText(job) }),
      progressTable(job.progress),
      job.log_tail ? el('details', { class: 'job-log' }, el('summary', { text: 'Log (last 8 KiB)' }),
        el('pre', { 'data-testid': 'job-log', text: job.log_tail })) : null,
    ].filter(Boolean));
  }
}
