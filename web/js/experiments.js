// Experiments page: the workspace's runs from GET /v1/runs in a table the server sorts, filters and pages
// (experiment, status, free-text conditions such as `metrics.val_accuracy > 0.9`), with run selection for
// the comparison and a run's details (run_view.js) below the table.

import { ApiError, getJson } from './api.js';
import { byTestId, el, fmtDuration, fmtTime, fmtValue } from './dom.js';
import { CompareView, RunDetail } from './run_view.js';

const kMaxMetricColumns = 8;
const kMaxParamColumns = 5;
const kMaxCompare = 10;

/** Sortable columns besides metrics and params: column id -> [order_by key, first direction]. */
const kFixedSorts = { name: ['name', 'ASC'], start: ['start_time', 'DESC'] };

/** Keys of `field` (metrics, params) over the runs, most common first, then by name. */
function columnKeys(runs, field) {
  const counts = new Map();
  for (const r of runs) for (const k of Object.keys(r[field] ?? {})) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a) || a.localeCompare(b));
}

/** Params whose value is not the same on every run of the page: the interesting ones to show. */
function varyingParams(runs) {
  return columnKeys(runs, 'params').filter((k) => new Set(runs.map((r) => r.params?.[k])).size > 1);
}

export class ExperimentsPage {
  constructor(root) {
    this.root = root;
    const $ = (id) => byTestId(root, id);
    this.form = $('runs-filters');
    this.experimentSelect = $('runs-experiment');
    this.statusSelect = $('runs-status');
    this.filterInput = $('runs-filter');
    this.errorBox = $('runs-error');
    this.table = $('runs-table');
    this.count = $('runs-count');
    this.pageLabel = $('runs-page');
    this.prev = $('runs-prev');
    this.next = $('runs-next');
    this.pageSize = $('runs-page-size');
    this.compareButton = $('runs-compare');
    this.clearButton = $('runs-clear-selection');
    this.detail = new RunDetail($('run-detail'), { onOpenRun: (id) => this.openRun(id) });
    this.compare = new CompareView($('compare'));
    this.query = { experiment: '', status: '', filter: '', orderBy: 'start_time', desc: true, offset: 0 };
    this.selected = new Map();  // run id -> run: kept across pages and sorts
    this.runs = [];
    this.total = 0;
    this.generation = 0;  // only the newest request's answer is shown
    this.bind();
  }

  bind() {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.applyForm();
    });
    this.experimentSelect.addEventListener('change', () => this.applyForm());
    this.statusSelect.addEventListener('change', () => this.applyForm());
    byTestId(this.root, 'runs-reset').addEventListener('click', () => {
      this.form.reset();
      this.query = { ...this.query, experiment: '', status: '', filter: '', orderBy: 'start_time', desc: true };
      this.applyForm();
    });
    byTestId(this.root, 'runs-refresh').addEventListener('click', () => this.load());
    this.prev.addEventListener('click', () => this.go(-1));
    this.next.addEventListener('click', () => this.go(1));
    this.pageSize.addEventListener('change', () => {
      this.query.offset = 0;
      this.load();
    });
    this.compareButton.addEventListener('click', () => this.showCompare());
    this.clearButton.addEventListener('click', () => {
      this.selected.clear();
      this.render();
    });
  }

  applyForm() {
    this.query.experiment = this.experimentSelect.value;
    this.query.status = this.statusSelect.value;
    this.query.filter = this.filterInput.value.trim();
    this.query.offset = 0;
    this.load();
  }

  go(direction) {
    const limit = Number(this.pageSize.value);
    this.query.offset = Math.max(0, this.query.offset + direction * limit);
    this.load();
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  /**
   * Called when the page is shown: reloads (training may have logged since), keeping the filters, the order
   * and the selection; `runId` (from #experiments/ID) opens that run's details.
   */
  async show(runId) {
    if (runId) this.openRun(runId);
    await Promise.all([this.loadExperiments(), this.load()]);
  }

  async loadExperiments() {
    try {
      const { experiments } = await getJson('/v1/experiments');
      const current = this.experimentSelect.value;
      this.experimentSelect.replaceChildren(el('option', { value: '', text: 'All experiments' }),
        ...experiments.map((name) => el('option', { value: name, text: name })));
      this.experimentSelect.value = experiments.includes(current) ? current : '';
    } catch (err) {
      this.showError(`Experiments: ${err instanceof ApiError ? err.describe() : err}`);
    }
  }

  async load() {
    const gen = ++this.generation;
    const limit = Number(this.pageSize.value);
    const q = this.query;
    const params = new URLSearchParams({ order_by: `${q.orderBy} ${q.desc ? 'DESC' : 'ASC'}`, limit, offset: q.offset });
    if (q.experiment) params.set('experiment', q.experiment);
    if (q.status) params.set('status', q.status);
    if (q.filter) params.append('filter', q.filter);
    this.table.setAttribute('aria-busy', 'true');
    try {
      const body = await getJson('/v1/runs', { query: Object.fromEntries(params) });
      if (gen !== this.generation) return;
      this.runs = body.runs;
      this.total = body.total;
      this.showError('');
    } catch (err) {
      if (gen !== this.generation) return;
      this.runs = [];
      this.total = 0;
      const hint = err.status === 400 ? '\nConditions look like: metrics.val_accuracy > 0.9 and params.optimizer.lr = 0.001' : '';
      this.showError(`Runs: ${err instanceof ApiError ? err.describe() : err}${hint}`);
    } finally {
      if (gen === this.generation) this.table.setAttribute('aria-busy', 'false');
    }
    this.render();
  }

  /** The columns of the current page: fixed ones, then metrics and varying params. */
  columns() {
    const metrics = columnKeys(this.runs, 'metrics').slice(0, kMaxMetricColumns);
    const params = varyingParams(this.runs).slice(0, kMaxParamColumns);
    // The sorted column stays visible even when no run of this page has it.
    const [kind, ...rest] = this.query.orderBy.split('.');
    const sortKey = rest.join('.');
    if (kind === 'metrics' && !metrics.includes(sortKey)) metrics.push(sortKey);
    if (kind === 'params' && !params.includes(sortKey)) params.push(sortKey);
    return [
      { id: 'name', label: 'Run', sort: 'name' },
      { id: 'experiment', label: 'Experiment' },
      { id: 'status', label: 'Status' },
      { id: 'kind', label: 'Kind' },
      { id: 'start', label: 'Started', sort: 'start_time' },
      { id: 'duration', label: 'Duration' },
      ...metrics.map((k) => ({ id: `metrics.${k}`, label: k, group: 'metric', sort: `metrics.${k}`, key: k })),
      ...params.map((k) => ({ id: `params.${k}`, label: k, group: 'param', sort: `params.${k}`, key: k })),
    ];
  }

  headerCell(col) {
    const th = el('th', { scope: 'col', class: col.group ? `col-${col.group}` : undefined });
    const label = [col.group ? el('span', { class: 'col-group', text: col.group }) : null, el('span', { text: col.label })];
    if (!col.sort) {
      th.append(...label.filter(Boolean));
      return th;
    }
    const active = this.query.orderBy === col.sort;
    th.setAttribute('aria-sort', active ? (this.query.desc ? 'descending' : 'ascending') : 'none');
    const arrow = el('span', { class: 'sort-arrow', 'aria-hidden': 'true', text: active ? (this.query.desc ? '▼' : '▲') : '↕' });
    const button = el('button', { type: 'button', class: 'sort', 'data-testid': `sort-${col.id}`,
      title: `Sort by ${col.label}` }, ...label.filter(Boolean), arrow);
    button.addEventListener('click', () => this.sortBy(col));
    th.append(button);
    return th;
  }

  sortBy(col) {
    if (this.query.orderBy === col.sort) {
      this.query.desc = !this.query.desc;
    } else {
      this.query.orderBy = col.sort;
      // Metrics and times biggest first; names and params in reading order.
      const fixed = Object.values(kFixedSorts).find(([key]) => key === col.sort);
      this.query.desc = fixed ? fixed[1] === 'DESC' : col.group === 'metric';
    }
    this.query.offset = 0;
    this.load();
  }

  cell(run, col) {
    switch (col.id) {
      case 'name': {
        const open = el('button', { type: 'button', class: 'link', 'data-testid': 'run-name', text: run.name || run.id.slice(0, 8),
          title: `Show run ${run.id}` });
        open.addEventListener('click', () => this.openRun(run.id));
        return el('td', { class: 'run-cell' }, open, el('div', { class: 'sub mono', text: run.id.slice(0, 8) }));
      }
      case 'experiment': return el('td', { text: run.experiment });
      case 'status': return el('td', {}, el('span', { class: 'status-badge', 'data-status': run.status, text: run.status }));
      case 'kind': return el('td', { text: run.kind || '—' });
      case 'start': return el('td', { class: 'nowrap', text: fmtTime(run.start_ms) });
      case 'duration': return el('td', { class: 'num', text: fmtDuration(run.duration_s) });
      default: {
        const value = col.group === 'metric' ? run.metrics?.[col.key] : run.params?.[col.key];
        return el('td', { class: col.group === 'metric' ? 'num' : 'mono', 'data-key': col.id,
          text: col.group === 'metric' ? fmtValue(value) : (value ?? '—') });
      }
    }
  }

  row(run, columns) {
    const box = el('input', { type: 'checkbox', 'data-testid': 'run-select', 'aria-label': `Select run ${run.name || run.id}` });
    box.checked = this.selected.has(run.id);
    box.disabled = !box.checked && this.selected.size >= kMaxCompare;
    box.addEventListener('change', () => {
      if (box.checked) this.selected.set(run.id, run);
      else this.selected.delete(run.id);
      this.render();
    });
    return el('tr', { 'data-testid': 'run-row', 'data-run-id': run.id, class: this.selected.has(run.id) ? 'selected' : undefined },
      el('td', { class: 'select' }, box), ...columns.map((c) => this.cell(run, c)));
  }

  render() {
    const columns = this.columns();
    const head = el('thead', {}, el('tr', {}, el('th', { scope: 'col', class: 'select' },
      el('span', { class: 'visually-hidden', text: 'Select' })), ...columns.map((c) => this.headerCell(c))));
    const body = el('tbody', {}, this.runs.map((r) => this.row(r, columns)));
    if (!this.runs.length) {
      body.append(el('tr', {}, el('td', { colspan: columns.length + 1, class: 'empty', 'data-testid': 'runs-empty',
        text: this.total === 0 && !this.query.filter && !this.query.status && !this.query.experiment
          ? 'No runs in this workspace yet: `vigil train` records them.' : 'No runs match.' })));
    }
    this.table.replaceChildren(head, body);
    this.renderPager();
    const n = this.selected.size;
    this.compareButton.disabled = n < 2;
    this.compareButton.textContent = `Compare selected (${n})`;
    this.clearButton.disabled = n === 0;
  }

  renderPager() {
    const limit = Number(this.pageSize.value);
    const first = this.total ? this.query.offset + 1 : 0;
    const last = this.query.offset + this.runs.length;
    this.count.textContent = `${this.total} run${this.total === 1 ? '' : 's'}`;
    this.count.dataset.total = String(this.total);
    this.pageLabel.textContent = `${first}–${last} of ${this.total}`;
    this.prev.disabled = this.query.offset === 0;
    this.next.disabled = this.query.offset + limit >= this.total;
  }

  openRun(id) {
    this.detail.open(id);
  }

  showCompare() {
    this.compare.open([...this.selected.keys()]);
  }
}
