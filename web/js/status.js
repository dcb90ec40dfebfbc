// Status page: the model's description from /v1/models and the server's statistics from /v1/stats,
// polled every 2 s while the page is shown. The live requests/s line is the difference of the
// `requests` counter between two polls; the per-minute charts come from the server's `recent` series.

import { ApiError, getJson } from './api.js';
import { Chart } from './chart.js';
import { classColor } from './draw.js';

const kPollMs = 2000;
const kLivePoints = 150;  // 5 minutes at one poll every 2 s
const kMaxClassBars = 15;

function fmtNumber(v, digits = 0) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString(undefined, { maximumFractionDigits: digits }) : '—';
}

function fmtMs(v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(1)} ms` : '—';
}

function fmtAxisMs(v) {
  return v === 0 ? '0' : v.toFixed(v < 10 ? 1 : 0);
}

function fmtDuration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s)) return '—';
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  if (d) return `${d} d ${h} h ${m} min`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${sec} s`;
  return `${sec} s`;
}

function fmtList(v) {
  return Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? Number(x.toFixed(4)) : x)).join(', ') : '—';
}

function fmtParams(n) {
  if (typeof n !== 'number') return '—';
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : fmtNumber(n);
}

function fmtBytes(n) {
  if (typeof n !== 'number') return '—';
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

/** Fills a <dl> with [label, value, testid?] rows; values are text (never HTML: labels come from the model). */
function fillKv(dl, rows) {
  dl.replaceChildren(...rows.filter(Boolean).map(([label, value, testid]) => {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = label;
    dd.textContent = value === undefined || value === null || value === '' ? '—' : String(value);
    if (testid) dd.dataset.testid = testid;
    div.append(dt, dd);
    return div;
  }));
}

function classColorFor(model, label) {
  const i = model?.classes?.indexOf(label) ?? -1;
  if (i < 0) return '#6b7280';
  return classColor(model.task === 'detection' ? i + 1 : i);  // detectors' class ids start after background
}

function makeCharts($) {
  const latencySeries = [{ name: 'p50', color: '#16a34a' }, { name: 'p95', color: '#ea580c' }];
  return {
    rps: new Chart($('chart-rps'), { kind: 'line', yLabel: 'per second',
      series: [{ name: 'requests/s', color: '#2563eb' }, { name: 'errors/s', color: '#dc2626' }],
      empty: 'Waiting for two polls of /v1/stats…' }),
    latencyLive: new Chart($('chart-latency-live'), { kind: 'line', yLabel: 'ms', format: fmtAxisMs,
      series: latencySeries, empty: 'No predictions yet' }),
    recentRequests: new Chart($('chart-recent-requests'), { kind: 'bars', yLabel: 'per minute',
      series: [{ name: 'requests', color: '#2563eb' }, { name: 'errors', color: '#dc2626' }],
      empty: 'No requests in the last 60 minutes' }),
    recentLatency: new Chart($('chart-recent-latency'), { kind: 'line', yLabel: 'ms', format: fmtAxisMs,
      series: latencySeries, empty: 'No requests in the last 60 minutes' }),
    classes: new Chart($('chart-classes'), { kind: 'hbars', xLabel: 'predictions', empty: 'No predictions yet' }),
  };
}

function modelRows(m) {
  const t = m.thresholds ?? {};
  const lim = m.limits ?? {};
  const lin = m.lineage ?? {};
  const norm = m.normalization ?? {};
  return [
    ['name', m.name, 'model-info-name'],
    ['version', m.version, 'model-info-version'],
    ['arch', m.arch, 'model-arch'],
    ['task', m.task],
    ['classes', Array.isArray(m.classes) ? `${m.classes.length}: ${m.classes.join(', ')}` : '—', 'model-classes'],
    ['input', !m.input ? '—'
      : m.input.min_size !== undefined ? `resized to ${m.input.min_size}–${m.input.max_size} px`
      : `${m.input.width} × ${m.input.height}`],
    ['normalization', norm.mean ? `mean ${fmtList(norm.mean)} / std ${fmtList(norm.std)}` : '—'],
    ['thresholds', Object.entries(t).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k.replace(/_/g, ' ')} ${v}`).join(' · ')],
    ['parameters', fmtParams(m.parameters)],
    ['source', m.source],
    ['loaded at', m.loaded_at ? `${m.loaded_at} (${fmtMs(m.load_time_ms)})` : '—'],
    ...Object.entries(lin).filter(([, v]) => v !== '' && v !== null && typeof v !== 'object')
      .map(([k, v]) => [`lineage: ${k.replace(/_/g, ' ')}`, String(v)]),
    ['limits', `max_batch ${lim.max_batch ?? '—'} · queue delay ${lim.max_queue_delay_ms ?? '—'} ms · queue ${lim.queue_capacity ?? '—'}`],
    ['', `body ${fmtBytes(lim.max_body_bytes)} · pixels ${fmtNumber(lim.max_pixels)} · batch images ${lim.max_batch_images ?? '—'}` +
      ` · detections ≤ ${lim.max_detections_limit ?? '—'}`],
  ];
}

function statsRows(s) {
  const ex = s.batches?.executions;
  const inf = s.batches?.inferences;
  const lat = s.latency_ms ?? {};
  return [
    ['started', s.started_at],
    ['uptime', fmtDuration(s.uptime_s), 'uptime'],
    ['requests', fmtNumber(s.requests), 'stat-requests'],
    ['errors', fmtNumber(s.errors)],
    ['predictions', fmtNumber(s.predictions), 'stat-predictions'],
    ['mean confidence', typeof s.mean_confidence === 'number' ? s.mean_confidence.toFixed(3) : '—'],
    ['latency', `p50 ${fmtMs(lat.p50)} · p90 ${fmtMs(lat.p90)} · p95 ${fmtMs(lat.p95)} · p99 ${fmtMs(lat.p99)}`, 'stat-latency'],
    ['average batch', ex > 0 ? `${(inf / ex).toFixed(2)} images (${fmtNumber(inf)} in ${fmtNumber(ex)} runs)` : '—', 'avg-batch'],
  ];
}

/** The Status page: show() starts polling, hide() stops it. */
export class StatusPage {
  constructor(root, { onModel }) {
    const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
    this.errorBox = $('status-error');
    this.modelInfo = $('model-info');
    this.serverInfo = $('server-info');
    this.queueMeter = $('queue-meter');
    this.queueDepth = $('queue-depth');
    this.charts = makeCharts($);
    this.onModel = onModel;
    this.model = null;
    this.timer = null;
    this.ticks = 0;
    this.generation = 0;  // a hide() + show() during a poll must not leave two polling loops
    this.prev = null;     // the previous poll's {t, requests, errors}
    this.live = { x: [], rps: [], eps: [], p50: [], p95: [] };
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  /** Rates from the counters' difference since the previous poll; null after a gap or a server restart. */
  rates(now, stats) {
    const { prev } = this;
    const dt = prev ? (now - prev.t) / 1000 : 0;
    const ok = (cur, old) => typeof cur === 'number' && dt > 0 && dt < (3 * kPollMs) / 1000 && cur >= old;
    return {
      rps: ok(stats.requests, prev?.requests) ? (stats.requests - prev.requests) / dt : null,
      eps: ok(stats.errors, prev?.errors) ? (stats.errors - prev.errors) / dt : null,
    };
  }

  pushLive(stats) {
    const now = Date.now();
    const { rps, eps } = this.rates(now, stats);
    this.prev = { t: now, requests: stats.requests, errors: stats.errors };
    const live = this.live;
    live.x.push(now);
    live.rps.push(rps);
    live.eps.push(eps);
    live.p50.push(stats.latency_ms?.p50 ?? null);
    live.p95.push(stats.latency_ms?.p95 ?? null);
    for (const k of Object.keys(live)) if (live[k].length > kLivePoints) live[k].shift();
    const has = (values) => values.some((v) => v !== null);
    this.charts.rps.setData(has(live.rps) ? { x: live.x, y: [live.rps, live.eps] } : null);
    this.charts.latencyLive.setData(has(live.p50) || has(live.p95) ? { x: live.x, y: [live.p50, live.p95] } : null);
  }

  renderRecent(s) {
    const recent = (s.recent ?? []).filter((r) => r && r.t && !Number.isNaN(Date.parse(r.t)))
      .sort((a, b) => Date.parse(a.t) - Date.parse(b.t));
    if (!recent.length) {
      this.charts.recentRequests.setData(null);
      this.charts.recentLatency.setData(null);
      return;
    }
    const x = recent.map((r) => Date.parse(r.t));
    // The whole hour on the axis, so a quiet server's few minutes do not fill the chart.
    const thisMinute = Math.floor(Date.now() / 60_000) * 60_000;
    const domain = [Math.min(thisMinute - 59 * 60_000, ...x), Math.max(thisMinute, ...x)];
    this.charts.recentRequests.setData({ x, domain,
      y: [recent.map((r) => r.requests ?? 0), recent.map((r) => r.errors ?? 0)] });
    this.charts.recentLatency.setData({ x, domain,
      y: [recent.map((r) => r.p50_ms ?? null), recent.map((r) => r.p95_ms ?? null)] });
  }

  renderClasses(s) {
    const classes = Object.entries(s.by_class ?? {}).map(([label, v]) => [label, v?.count ?? 0])
      .sort((a, b) => b[1] - a[1]).slice(0, kMaxClassBars);
    this.charts.classes.setData(classes.length ? {
      labels: classes.map(([l]) => l),
      values: classes.map(([, c]) => c),
      colors: classes.map(([l]) => classColorFor(this.model, l)),
    } : null);
  }

  renderStats(s) {
    fillKv(this.serverInfo, statsRows(s));
    const depth = s.queue?.depth ?? 0;
    const cap = s.queue?.capacity ?? 0;
    this.queueMeter.max = Math.max(1, cap);
    this.queueMeter.value = depth;
    this.queueMeter.high = Math.max(1, cap) * 0.75;
    this.queueDepth.textContent = cap ? `${depth} / ${cap}` : String(depth);
    this.pushLive(s);
    this.renderRecent(s);
    this.renderClasses(s);
  }

  async refreshModel() {
    try {
      const body = await getJson('/v1/models');
      this.model = body.models?.[0] ?? null;
      if (this.model) fillKv(this.modelInfo, modelRows(this.model));
      else fillKv(this.modelInfo, [['model', 'none: this server serves no model (vigil ui)']]);
      this.onModel?.(this.model, Boolean(this.model));
      return true;
    } catch (err) {
      this.showError(`Model: ${err instanceof ApiError ? err.describe() : err}`);
      return false;
    }
  }

  async poll() {
    try {
      this.renderStats(await getJson('/v1/stats'));
      this.showError('');
    } catch (err) {
      this.showError(`Statistics: ${err instanceof ApiError ? err.describe() : err}`);
    }
  }

  async tick(gen) {
    // Models every 5th poll: a reload (SIGHUP or the repository route) changes the version.
    if (this.ticks++ % 5 === 0) await this.refreshModel();
    if (gen !== this.generation) return;
    await this.poll();
    if (gen === this.generation) this.timer = setTimeout(() => this.tick(gen), kPollMs);
  }

  show() {
    if (this.timer !== null) return;
    this.generation++;
    this.ticks = 0;
    this.timer = 0;
    this.tick(this.generation);
  }

  hide() {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
