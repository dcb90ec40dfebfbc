// Monitoring page: the server's latest drift report (GET /v1/monitor) — the logged traffic of the served model
// against its reference profile, with Evidently's tests per column — and "Check now" (POST /v1/monitor/check).
// A server without --monitor-reference answers 404: the page explains how to turn monitoring on instead of
// showing an error. Each column's two distributions show on demand, over the bins the test used.

import { ApiError, getJson, request } from './api.js';
import { byTestId, el, fmtValue, kvList } from './dom.js';

function describe(err) {
  return err instanceof ApiError ? err.describe() : String(err);
}

const pct = (x) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : '—');

/** The verdict in words: drift, no drift, or no verdict yet (too few logged predictions). */
function verdict(r) {
  if (!r.enough_data) {
    return { state: 'not-enough', text: `No verdict: ${r.current_rows} logged prediction${r.current_rows === 1 ? '' : 's'} ` +
      'in the window, fewer than the server needs (monitor_min_current).' };
  }
  const n = r.columns?.length ?? 0;
  const head = r.dataset_drift ? 'Dataset drift' : 'No dataset drift';
  const emb = r.embedding ? (r.embedding_drift ? ' The image embeddings drifted.' : ' The image embeddings did not drift.') : '';
  return { state: r.dataset_drift || r.embedding_drift ? 'drift' : 'ok',
    text: `${head}: ${r.drifted_columns} of ${n} columns drifted (${pct(r.drift_share)}; drift from ${pct(r.drift_share_threshold)}).${emb}` };
}

/** The embeddings' line: Evidently's method, its score against the threshold, and the verdict. */
function embeddingText(e) {
  if (!e) return 'not compared (profile the reference with --model; the server logs embeddings with the prediction log on)';
  const what = e.method === 'model' ? 'ROC AUC of a classifier separating reference from traffic' : `method ${e.method}`;
  return `${e.drifted ? 'drifted' : 'no drift'}: ${what} ${fmtValue(e.score)} ${e.drifted ? '>' : '≤'} ${fmtValue(e.threshold)}` +
    `${e.bootstrap ? ' (bootstrap threshold)' : ''}; ${e.dims} numbers per image from the model's backbone, ` +
    `${e.current_size} / ${e.reference_size} images`;
}

/** Reference and current shares per bin, as paired bars. */
function distribution(column) {
  const bins = column.distribution ?? [];
  if (!bins.length) return el('p', { class: 'hint', text: 'No distribution recorded for this column.' });
  const max = Math.max(...bins.flatMap((b) => [b.reference, b.current]), 1e-9);
  const bar = (cls, v) => el('span', { class: `dist-bar ${cls}`, style: `width: ${(100 * v) / max}%`, title: pct(v) });
  return el('div', { class: 'distribution', 'data-testid': 'drift-distribution', 'data-column': column.column },
    el('p', { class: 'legend' }, el('span', { class: 'dist-key reference' }), 'reference ',
      el('span', { class: 'dist-key current' }), 'current (logged traffic)'),
    bins.map((b) => el('div', { class: 'dist-row' },
      el('span', { class: 'mono dist-label', text: String(b.bin) }),
      el('span', { class: 'dist-bars' }, bar('reference', b.reference), bar('current', b.current)),
      el('span', { class: 'mono sub', text: `${pct(b.reference)} → ${pct(b.current)}` }))));
}

export class MonitoringPage {
  constructor(root) {
    this.root = root;
    this.body = byTestId(root, 'monitor-report');
    this.errorBox = byTestId(root, 'monitor-error');
    this.empty = byTestId(root, 'monitor-empty');
    this.checked = byTestId(root, 'monitor-checked');
    this.button = byTestId(root, 'monitor-check');
    this.open = null;  // the column whose distribution is shown
    this.generation = 0;  // a slow GET must not replace the report of a check started after it
    this.button.addEventListener('click', () => this.checkNow());
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  /** 404 = monitoring off: the explanation instead of the report. */
  setOff(off) {
    this.empty.hidden = !off;
    this.button.disabled = off;
    if (off) {
      this.body.replaceChildren();
      this.checked.textContent = 'monitoring off';
    }
  }

  async show() {
    const gen = ++this.generation;
    let state;
    try {
      state = await getJson('/v1/monitor');
      if (gen !== this.generation) return;
    } catch (err) {
      if (gen !== this.generation) return;
      if (err instanceof ApiError && err.status === 404) {
        this.showError('');
        this.setOff(true);
      } else {
        this.showError(`Drift report: ${describe(err)}`);
      }
      return;
    }
    this.showError('');
    this.setOff(false);
    this.schedule = state;
    this.render(state.report);
  }

  async checkNow() {
    ++this.generation;
    this.button.disabled = true;
    this.button.textContent = 'Checking…';
    try {
      const res = await request('/v1/monitor/check', { method: 'POST' });
      this.showError('');
      this.render(await res.json());
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.setOff(true);
      else this.showError(`Check now: ${describe(err)}`);
    } finally {
      this.button.textContent = 'Check now';
      this.button.disabled = !this.empty.hidden;
    }
  }

  render(r) {
    const every = this.schedule?.every_s;
    const window = this.schedule?.window_s;
    const schedule = every ? ` Checked every ${fmtValue(every)} s over the last ${fmtValue(window)} s of traffic.` : '';
    if (!r) {
      this.checked.textContent = 'no check yet';
      this.body.replaceChildren(el('p', { class: 'notice', 'data-testid': 'monitor-no-report',
        text: `The server has not checked for drift yet.${schedule} Press “Check now” to compare the logged traffic ` +
          'with the reference now.' }));
      return;
    }
    this.checked.textContent = `checked ${r.checked ?? '—'}`;
    const v = verdict(r);
    const fb = r.feedback ?? {};
    const accuracy = fb.total ? `${pct(fb.accuracy)} (${fb.correct} of ${fb.total} marked predictions correct)`
      : 'no feedback yet (POST /v1/predictions/{id}/feedback)';
    const rows = (r.columns ?? []).map((c) => {
      const row = el('tr', { 'data-testid': 'drift-row', 'data-column': c.column, 'data-drifted': String(c.drifted),
        class: c.drifted ? 'drifted' : undefined },
      el('th', { scope: 'row', class: 'mono' }, c.column),
      el('td', { text: c.kind }),
      el('td', { class: 'mono', 'data-testid': 'drift-test', text: c.test }),
      el('td', { class: 'num', 'data-testid': 'drift-score', text: fmtValue(c.score) }),
      el('td', { text: c.score_is_p_value ? 'p-value' : 'distance' }),
      el('td', { class: 'num', 'data-testid': 'drift-threshold',
        text: `${c.score_is_p_value ? '<' : '≥'} ${fmtValue(c.threshold)}` }),
      el('td', { class: 'num', text: `${c.reference_size} / ${c.current_size}` }),
      el('td', {}, el('span', { class: 'drift-badge', 'data-testid': 'drift-drifted', 'data-drifted': String(c.drifted),
        text: c.drifted ? 'yes' : 'no' })));
      row.addEventListener('click', () => {
        this.open = this.open === c.column ? null : c.column;
        this.render(r);
      });
      row.title = 'Show the distributions';
      const shown = this.open === c.column;
      row.setAttribute('aria-expanded', String(shown));
      return shown ? [row, el('tr', { class: 'dist' }, el('td', { colspan: 8 }, distribution(c)))] : [row];
    });
    this.body.replaceChildren(
      el('div', { class: 'drift-verdict', 'data-testid': 'drift-verdict', 'data-state': v.state, text: v.text }),
      kvList([
        ['model', `${r.model}${r.version ? ` v ${r.version}` : ''}`, 'monitor-model'],
        ['window', `${r.since ?? '—'} → ${r.until ?? 'now'}`],
        ['predictions', `${r.current_rows} logged, against ${r.reference_rows} reference images`, 'monitor-rows'],
        ['reference', el('span', { class: 'mono', text: r.reference })],
        ['drift share', `${pct(r.drift_share)} of the columns (dataset drift from ${pct(r.drift_share_threshold)})`, 'drift-share'],
        ['embeddings', embeddingText(r.embedding), 'embedding-drift'],
        ['feedback accuracy', accuracy, 'feedback-accuracy'],
      ]),
      el('p', { class: 'hint', text: `Click a column for both distributions.${schedule}` }),
      el('div', { class: 'table-wrap' }, el('table', { class: 'grid drift', 'data-testid': 'drift-table' },
        el('thead', {}, el('tr', {}, ['column', 'kind', 'test', 'statistic', 'is a', 'drift when', 'rows (ref / cur)', 'drifted']
          .map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, rows.length ? rows.flat()
          : el('tr', {}, el('td', { class: 'empty', colspan: 8, text: 'No column was tested.' }))))));
  }
}
