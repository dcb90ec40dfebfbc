// A run's details (GET /v1/runs/{id}) and the comparison of several runs: params side by side with the ones
// that differ marked, latest metrics side by side, and metric curves (GET /v1/runs/{id}/metrics, history
// against step) with one chart per picked metric and one line per run.

import { ApiError, getJson } from './api.js';
import { Chart } from './chart.js';
import { byTestId, el, fmtBytes, fmtDuration, fmtTime, fmtValue, kRunColors, kvList } from './dom.js';

const kMaxPoints = 2000;  // per curve; the server thins longer histories evenly
const kDefaultCurves = 2;

function describe(err) {
  return err instanceof ApiError ? err.describe() : String(err);
}

/** Up to kDefaultCurves keys worth showing first: a validation score, then a loss, then the first keys. */
function defaultKeys(keys) {
  const pick = [];
  const add = (k) => k && !pick.includes(k) && pick.length < kDefaultCurves && pick.push(k);
  add(keys.find((k) => /^val.*(acc|map|f1)/i.test(k)));
  add(keys.find((k) => /loss/i.test(k)));
  for (const k of keys) add(k);
  return pick;
}

function runLabel(run) {
  return run.name || run.id.slice(0, 8);
}

function keyValueTable(entries, { testid, empty, mono = true }) {
  if (!entries.length) return el('p', { class: 'hint', text: empty });
  return el('table', { class: 'grid', 'data-testid': testid },
    el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'key' }), el('th', { scope: 'col', text: 'value' }))),
    el('tbody', {}, entries.map(([k, v]) => el('tr', {}, el('th', { scope: 'row', class: 'mono', text: k }),
      el('td', { class: mono ? 'mono' : undefined, text: v })))));
}

/** Metric pickers (checkboxes) and one chart per picked metric, with a line per run. */
export class MetricCurves {
  constructor(container, { testid = 'curves' } = {}) {
    this.container = container;
    this.testid = testid;
    this.runs = [];
    this.history = new Map();  // `${runId}\n${key}` -> [{step, value}]
    this.charts = new Map();   // key -> {card, chart}
    this.picked = [];
    this.generation = 0;
  }

  /** runs: [{id, name, color}]; keys: the metric names to offer. */
  setRuns(runs, keys) {
    this.runs = runs;
    this.keys = [...keys].sort();
    this.picked = defaultKeys(this.keys);
    this.charts.clear();
    this.picker = el('fieldset', { class: 'curve-picker', 'data-testid': `${this.testid}-picker` },
      el('legend', { text: 'Metrics to plot (value by step)' }),
      this.keys.length ? this.keys.map((k) => this.checkbox(k)) : el('span', { class: 'hint', text: 'No metrics logged.' }));
    this.errorBox = el('div', { class: 'error', role: 'alert', hidden: true });
    this.grid = el('div', { class: 'curve-grid', 'data-testid': `${this.testid}-charts` });
    this.container.replaceChildren(this.picker, this.errorBox, this.grid);
    return this.refresh();
  }

  checkbox(key) {
    const box = el('input', { type: 'checkbox', value: key, 'data-testid': 'curve-key' });
    box.checked = this.picked.includes(key);
    box.addEventListener('change', () => {
      this.picked = this.keys.filter((k) => (k === key ? box.checked : this.picked.includes(k)));
      this.refresh();
    });
    return el('label', { class: 'check' }, box, el('span', { class: 'mono', text: key }));
  }

  async fetchMissing() {
    const jobs = this.runs.map(async (run) => {
      const missing = this.picked.filter((k) => !this.history.has(`${run.id}\n${k}`));
      if (!missing.length) return;
      const body = await getJson(`/v1/runs/${encodeURIComponent(run.id)}/metrics`,
        { query: { keys: missing.join(','), max_points: kMaxPoints } });
      for (const k of missing) this.history.set(`${run.id}\n${k}`, body.metrics?.[k] ?? []);
    });
    await Promise.all(jobs);
  }

  async refresh() {
    const gen = ++this.generation;
    try {
      await this.fetchMissing();
      this.errorBox.hidden = true;
    } catch (err) {
      this.errorBox.textContent = `Metric history: ${describe(err)}`;
      this.errorBox.hidden = false;
    }
    if (gen === this.generation) this.draw();
  }

  chartFor(key) {
    let entry = this.charts.get(key);
    if (!entry) {
      const canvas = el('canvas', { class: 'chart', role: 'img', 'data-testid': 'curve-chart', 'data-key': key,
        'aria-label': `${key} by step for ${this.runs.map(runLabel).join(', ')}` });
      const card = el('figure', { class: 'curve' }, el('figcaption', { class: 'mono', text: key }), canvas);
      entry = { card, chart: new Chart(canvas, { kind: 'xy', xLabel: 'step', yLabel: key, format: fmtValue,
        empty: 'No points logged' }) };
      this.charts.set(key, entry);
    }
    return entry;
  }

  draw() {
    for (const key of [...this.charts.keys()]) if (!this.picked.includes(key)) this.charts.delete(key);
    const cards = this.picked.map((key) => {
      const { card, chart } = this.chartFor(key);
      const series = this.runs.map((run) => {
        const points = this.history.get(`${run.id}\n${key}`) ?? [];
        return { name: runLabel(run), color: run.color, x: points.map((p) => p.step), y: points.map((p) => p.value) };
      });
      const n = series.reduce((sum, s) => sum + s.x.length, 0);
      card.dataset.points = String(n);
      chart.setData({ series });
      return card;
    });
    this.grid.replaceChildren(...cards);
    // Appended canvases have their size only now: draw again once laid out.
    requestAnimationFrame(() => { for (const { chart } of this.charts.values()) chart.draw(); });
  }
}

/** One run's details, opened from the runs table. */
export class RunDetail {
  constructor(root, { onOpenRun }) {
    this.root = root;
    this.onOpenRun = onOpenRun;
    this.body = byTestId(root, 'run-detail-body');
    this.title = byTestId(root, 'run-detail-title');
    this.curves = null;
    this.generation = 0;
    byTestId(root, 'run-detail-close').addEventListener('click', () => this.close());
  }

  close() {
    this.root.hidden = true;
    this.generation++;
  }

  async open(id) {
    const gen = ++this.generation;
    this.root.hidden = false;
    this.title.textContent = 'Run';
    this.body.replaceChildren(el('p', { class: 'hint', text: 'loading…' }));
    this.root.scrollIntoView({ behavior: 'smooth', block: 'start' });
    let run;
    try {
      run = await getJson(`/v1/runs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (gen === this.generation) this.body.replaceChildren(el('div', { class: 'error', role: 'alert', text: describe(err) }));
      return;
    }
    if (gen !== this.generation) return;
    this.render(run);
  }

  summary(run) {
    const code = run.code ?? {};
    const parent = run.parent_id ? el('button', { type: 'button', class: 'link mono', text: run.parent_id.slice(0, 12) }) : null;
    parent?.addEventListener('click', () => this.onOpenRun(run.parent_id));
    return kvList([
      ['id', el('span', { class: 'mono', text: run.id }), 'run-detail-id'],
      ['experiment', run.experiment],
      ['kind', run.kind],
      ['status', el('span', { class: 'status-badge', 'data-status': run.status, text: run.status })],
      ['started', fmtTime(run.start_ms)],
      ['ended', run.end_ms ? fmtTime(run.end_ms) : '—'],
      ['duration', fmtDuration(run.duration_s)],
      ['dataset', run.dataset_id ? el('span', { class: 'mono', text: run.dataset_id }) : '—'],
      ['parent run', parent],
      ['code', code.commit ? `${code.commit.slice(0, 12)}${code.dirty ? ' (uncommitted changes)' : ''}` : '—'],
      ['vigil', code.vigil],
      ['host', run.host],
      ['folder', run.run_dir ? el('span', { class: 'mono', text: run.run_dir }) : '—'],
    ], 'run-summary');
  }

  artifacts(run) {
    const list = run.artifacts ?? [];
    if (!list.length) return el('p', { class: 'hint', text: 'No artifacts recorded.' });
    return el('table', { class: 'grid', 'data-testid': 'run-artifacts' },
      el('thead', {}, el('tr', {}, ['path', 'kind', 'size', 'sha256'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, list.map((a) => el('tr', {}, el('td', { class: 'mono', text: a.path }), el('td', { text: a.kind }),
        el('td', { class: 'num', text: fmtBytes(a.size) }),
        el('td', { class: 'mono', title: a.sha256, text: a.sha256 ? a.sha256.slice(0, 12) : '—' })))));
  }

  render(run) {
    this.title.textContent = `Run ${runLabel(run)}`;
    const curves = el('div', { class: 'curves', 'data-testid': 'run-curves' });
    this.body.replaceChildren(
      el('div', { class: 'detail-grid' },
        el('section', {}, el('h3', { text: 'Summary' }), this.summary(run)),
        el('section', {}, el('h3', { text: 'Params' }),
          keyValueTable(Object.entries(run.params ?? {}), { testid: 'run-params', empty: 'No params.' }),
          el('h3', { text: 'Latest metrics' }),
          keyValueTable(Object.entries(run.metrics ?? {}).map(([k, v]) => [k, fmtValue(v)]),
            { testid: 'run-metrics', empty: 'No metrics.' }),
          el('h3', { text: 'Tags' }),
          keyValueTable(Object.entries(run.tags ?? {}), { testid: 'run-tags', empty: 'No tags.', mono: false }))),
      el('h3', { text: 'Curves' }), curves,
      el('h3', { text: 'Artifacts' }), this.artifacts(run));
    this.curves = new MetricCurves(curves, { testid: 'run-curves' });
    this.curves.setRuns([{ id: run.id, name: runLabel(run), color: kRunColors[0] }], run.metric_keys ?? []);
  }
}

/** Params and metrics of several runs side by side, and their curves overlaid. */
export class CompareView {
  constructor(root) {
    this.root = root;
    this.body = byTestId(root, 'compare-body');
    this.title = byTestId(root, 'compare-title');
    this.generation = 0;
    byTestId(root, 'compare-close').addEventListener('click', () => {
      this.root.hidden = true;
      this.generation++;
    });
  }

  async open(ids) {
    const gen = ++this.generation;
    this.root.hidden = false;
    this.title.textContent = `Comparing ${ids.length} runs`;
    this.body.replaceChildren(el('p', { class: 'hint', text: 'loading…' }));
    this.root.scrollIntoView({ behavior: 'smooth', block: 'start' });
    let runs;
    try {
      runs = await Promise.all(ids.map((id) => getJson(`/v1/runs/${encodeURIComponent(id)}`)));
    } catch (err) {
      if (gen === this.generation) this.body.replaceChildren(el('div', { class: 'error', role: 'alert', text: describe(err) }));
      return;
    }
    if (gen !== this.generation) return;
    runs.forEach((r, i) => {
      r.color = kRunColors[i % kRunColors.length];
    });
    this.render(runs);
  }

  headerRow(runs, first) {
    return el('tr', {}, el('th', { scope: 'col', text: first }), runs.map((r) => el('th', { scope: 'col' },
      el('span', { class: 'swatch', style: `background:${r.color}`, 'aria-hidden': 'true' }), runLabel(r),
      el('div', { class: 'sub mono', text: r.id.slice(0, 8) }))));
  }

  paramsTable(runs) {
    const keys = [...new Set(runs.flatMap((r) => Object.keys(r.params ?? {})))].sort();
    if (!keys.length) return el('p', { class: 'hint', text: 'None of these runs has params.' });
    const rows = keys.map((k) => {
      const values = runs.map((r) => r.params?.[k]);
      const differs = new Set(values.map((v) => v ?? '\u0000missing')).size > 1;
      return el('tr', { 'data-testid': 'compare-param-row', 'data-key': k, 'data-differs': String(differs),
        class: differs ? 'differs' : undefined },
      el('th', { scope: 'row', class: 'mono' }, k, differs ? el('span', { class: 'differs-mark', text: 'differs' }) : null),
      values.map((v) => el('td', { class: 'mono', text: v ?? '—' })));
    });
    return el('table', { class: 'grid compare-table', 'data-testid': 'compare-params' },
      el('thead', {}, this.headerRow(runs, 'param')), el('tbody', {}, rows));
  }

  metricsTable(runs) {
    const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
    if (!keys.length) return el('p', { class: 'hint', text: 'None of these runs has metrics.' });
    const rows = keys.map((k) => el('tr', { 'data-testid': 'compare-metric-row', 'data-key': k },
      el('th', { scope: 'row', class: 'mono', text: k }),
      runs.map((r) => el('td', { class: 'num', text: fmtValue(r.metrics?.[k]) }))));
    return el('table', { class: 'grid compare-table', 'data-testid': 'compare-metrics' },
      el('thead', {}, this.headerRow(runs, 'metric (latest)')), el('tbody', {}, rows));
  }

  render(runs) {
    const onlyDiffering = el('input', { type: 'checkbox', 'data-testid': 'compare-only-differing' });
    const params = el('div', {}, this.paramsTable(runs));
    onlyDiffering.addEventListener('change', () => {
      params.classList.toggle('only-differing', onlyDiffering.checked);
    });
    const differing = params.querySelectorAll('tr.differs').length;
    const curves = el('div', { class: 'curves', 'data-testid': 'compare-curves' });
    this.body.replaceChildren(
      el('div', { class: 'compare-head' },
        el('h3', { text: `Params (${differing} differ${differing === 1 ? 's' : ''})` }),
        el('label', { class: 'check' }, onlyDiffering, el('span', { text: 'Only the params that differ' }))),
      params,
      el('h3', { text: 'Metrics' }), this.metricsTable(runs),
      el('h3', { text: 'Curves' }), curves);
    const keys = [...new Set(runs.flatMap((r) => r.metric_keys ?? []))];
    new MetricCurves(curves, { testid: 'compare-curves' }).setRuns(
      runs.map((r) => ({ id: r.id, name: runLabel(r), color: r.color })), keys);
  }
}
