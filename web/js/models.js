// Models page: the workspace's registered models (GET /v1/registry/models), one model's versions with their
// metrics and lineage (GET /v1/registry/models/{name}) and its aliases as badges. "Set alias" (promote)
// moves an alias such as `production` onto a version after a dialog that says from which version to which;
// removing an alias asks first too. Both need the API key when the server has one.

import { ApiError, getJson, request } from './api.js';
import { byTestId, confirmDialog, el, fmtBytes, fmtTime, fmtValue, kvList } from './dom.js';

const kAliasPattern = /^[A-Za-z0-9_-]{1,100}$/;
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
