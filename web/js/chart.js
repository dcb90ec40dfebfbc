// Small canvas charts: time lines, time bars and horizontal bars (the Status page) and x-y lines with one x
// array per series (metric history against step on the Experiments page), with axes, ticks, grid, axis
// titles and a legend. Sharp on high-DPI screens; redrawn when resized.

const kFont = '12px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const kAxisColor = '#5d6677';
const kGridColor = '#e5e7eb';

/** One grid line in the grid colour. */
function gridLine(ctx, x1, y1, x2, y2) {
  ctx.strokeStyle = kGridColor;
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
}
const kTimeSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].map((s) => s * 1000);

/** Round tick values covering [min, max], about `count` of them. */
export function niceTicks(min, max, count = 5) {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * mag;
  const lo = Math.floor(min / step + 1e-9);
  const hi = Math.ceil(max / step - 1e-9);
  const ticks = [];
  for (let i = lo; i <= hi; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { ticks, step, lo: ticks[0], hi: ticks[ticks.length - 1] };
}

function timeTicks(lo, hi, count = 6, minStep = 0) {
  const step = kTimeSteps.find((s) => s >= minStep && (hi - lo) / s <= count) ?? kTimeSteps[kTimeSteps.length - 1];
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) ticks.push(t);
  return { ticks, step };
}

function pad2(n) {
  return String(n).padStart(2, '0');
}

function timeLabel(t, step) {
  const d = new Date(t);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return step < 60_000 ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

function defaultFormat(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return Number(v.toFixed(1)).toString();
  return Number(v.toFixed(3)).toString();
}

const kMaxLegendName = 28;

function shortName(name) {
  return name.length > kMaxLegendName ? `${name.slice(0, kMaxLegendName - 1)}…` : name;
}

/** Minimum and maximum of the finite values, or null when there is none. */
function finiteRange(arrays) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const values of arrays) {
    for (const v of values) {
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/** A range that is not a single value, for the axis of a constant series. */
function widen([lo, hi]) {
  if (hi > lo) return [lo, hi];
  const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 1;
  return [lo - pad, hi + pad];
}

export class Chart {
  /**
   * kind: 'line' (time x), 'bars' (time x, one bar group per x), 'hbars' (labels and values) or 'xy'
   * (numeric x, each series with its own points; the series and their colours come with the data).
   * series: [{name, color}] for line and bars; yLabel: the value axis title; binMs: a bar's width in time.
   */
  constructor(canvas, { kind = 'line', series = [], yLabel = '', xLabel = 'time', binMs = 60_000,
    minSpanMs = 30_000, format = defaultFormat, empty = 'No data yet' } = {}) {
    this.canvas = canvas;
    this.opts = { kind, series, yLabel, xLabel, binMs, minSpanMs, format, empty };
    this.data = null;
    this.hoverX = null;  // 'xy': the pointer's x in CSS pixels, for the read-out of the nearest step
    this.frame = null;
    new ResizeObserver(() => this.draw()).observe(canvas);
    if (kind === 'xy') {
      canvas.addEventListener('pointermove', (e) => {
        this.hoverX = e.offsetX;
        this.draw();
      });
      canvas.addEventListener('pointerleave', () => {
        this.hoverX = null;
        this.draw();
      });
    }
  }

  /**
   * line/bars: {x: [epoch ms], y: [[values of series 0], ...], domain: [lo, hi] (optional fixed time range)},
   * null values being gaps; hbars: {labels, values, colors}.
   */
  setData(data) {
    this.data = data;
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;  // hidden tab: drawn when shown (the ResizeObserver fires)
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = kFont;
    const { kind } = this.opts;
    let empty = !this.data?.x?.length;
    if (kind === 'hbars') empty = !this.data?.labels?.length;
    if (kind === 'xy') empty = !this.data?.series?.some((s) => s.x.length);
    if (empty) {
      this.drawEmpty(ctx, w, h);
      return;
    }
    if (kind === 'hbars') this.drawHBars(ctx, w, h);
    else if (kind === 'xy') this.drawXY(ctx, w, h);
    else this.drawTimeChart(ctx, w, h);
  }

  drawEmpty(ctx, w, h) {
    ctx.strokeStyle = kGridColor;
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    ctx.fillStyle = kAxisColor;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(this.opts.empty, w / 2, h / 2);
  }

  /** Right-aligned legend entries; entries that do not fit right of `left` are summarised as "+N". */
  drawLegend(ctx, right, top, series = this.opts.series, left = 0) {
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    let x = right;
    const shown = [...series].reverse();
    for (let i = 0; i < shown.length; i++) {
      const s = shown[i];
      const name = shortName(s.name);
      const tw = ctx.measureText(name).width;
      if (x - tw - 42 < left && i < shown.length - 1) {
        ctx.fillStyle = kAxisColor;
        ctx.fillText(`+${shown.length - i}`, x, top);
        return;
      }
      ctx.fillStyle = kAxisColor;
      ctx.fillText(name, x, top);
      x -= tw + 6;
      ctx.fillStyle = s.color;
      ctx.fillRect(x - 12, top - 2, 12, 4);
      x -= 24;
    }
  }

  /** The plot's frame: x range (time), y ticks, pixel box and the value -> pixel maps. */
  layout(ctx, w, h) {
    const { kind, binMs, minSpanMs, format } = this.opts;
    const { x, y, domain } = this.data;
    let xLo = domain ? domain[0] : Math.min(...x);
    let xHi = domain ? domain[1] : Math.max(...x);
    if (kind === 'bars') {
      xLo -= binMs / 2;
      xHi += binMs / 2;
    } else if (xHi - xLo < minSpanMs) {
      xLo = xHi - minSpanMs;  // a single point still gets a readable axis
    }
    let yMax = 0;
    for (const s of y) for (const v of s) if (v !== null && v !== undefined && Number.isFinite(v)) yMax = Math.max(yMax, v);
    const yt = niceTicks(0, yMax > 0 ? yMax * 1.05 : 1, 4);
    const yLabelW = Math.max(...yt.ticks.map((t) => ctx.measureText(format(t)).width));
    const box = { left: 22 + yLabelW + 6, right: w - 10, top: 22, bottom: h - 36, w, h };
    const px = (t) => box.left + ((t - xLo) / (xHi - xLo || 1)) * (box.right - box.left);
    const py = (v) => box.bottom - ((v - yt.lo) / (yt.hi - yt.lo || 1)) * (box.bottom - box.top);
    const xt = timeTicks(xLo, xHi, Math.max(2, Math.floor((box.right - box.left) / 80)), kind === 'bars' ? binMs : 0);
    return { box, yt, xt, px, py };
  }

  drawAxes(ctx, { box, yt, xt, px, py }) {
    const { left, right, top, bottom, w, h } = box;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const t of yt.ticks) {
      const yy = Math.round(py(t)) + 0.5;
      gridLine(ctx, left, yy, right, yy);
      ctx.fillStyle = kAxisColor;
      ctx.fillText(this.opts.format(t), left - 6, yy);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.strokeStyle = kAxisColor;
    ctx.beginPath();
    ctx.moveTo(left, bottom + 0.5);
    ctx.lineTo(right, bottom + 0.5);
    ctx.stroke();
    for (const t of xt.ticks) {
      const xx = Math.round(px(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(xx, bottom);
      ctx.lineTo(xx, bottom + 4);
      ctx.stroke();
      const label = timeLabel(t, xt.step);
      const half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(Math.max(xx, half), w - half), bottom + 6);
    }
    ctx.fillText(this.opts.xLabel, (left + right) / 2, h - 14);
    ctx.save();
    ctx.translate(10, (top + bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(this.opts.yLabel, 0, 0);
    ctx.restore();
  }

  drawTimeChart(ctx, w, h) {
    const frame = this.layout(ctx, w, h);
    const { box, px, py } = frame;
    const { x, y } = this.data;
    this.drawAxes(ctx, frame);
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.left, box.top - 4, box.right - box.left + 4, box.bottom - box.top + 4);  // room for end dots
    ctx.clip();
    if (this.opts.kind === 'bars') this.plotBars(ctx, x, y, px, py, this.opts.binMs);
    else this.plotLines(ctx, x, y, px, py);
    ctx.restore();
    this.drawLegend(ctx, box.right, 9);
  }

  plotLines(ctx, x, y, px, py) {
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    y.forEach((values, si) => {
      const color = this.opts.series[si]?.color ?? '#2563eb';
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.beginPath();
      let drawing = false;
      let points = 0;
      values.forEach((v, i) => {
        if (v === null || v === undefined || !Number.isFinite(v)) {
          drawing = false;
          return;
        }
        if (drawing) ctx.lineTo(px(x[i]), py(v));
        else ctx.moveTo(px(x[i]), py(v));
        drawing = true;
        points++;
      });
      ctx.stroke();
      if (points <= 2) {
        values.forEach((v, i) => {
          if (v === null || v === undefined) return;
          ctx.beginPath();
          ctx.arc(px(x[i]), py(v), 3, 0, 2 * Math.PI);
          ctx.fill();
        });
      }
    });
  }

  plotBars(ctx, x, y, px, py, binMs) {
    const groupW = Math.max(2, (px(x[0] + binMs) - px(x[0])) * 0.8);
    const barW = groupW / y.length;
    y.forEach((values, si) => {
      ctx.fillStyle = this.opts.series[si]?.color ?? '#2563eb';
      values.forEach((v, i) => {
        if (!v) return;
        const x0 = px(x[i]) - groupW / 2 + si * barW;
        ctx.fillRect(x0, py(v), Math.max(1, barW - 1), py(0) - py(v));
      });
    });
  }

  /** The frame of an x-y chart: both axes numeric and fitted to the data (not from zero). */
  layoutXY(ctx, w, h) {
    const { format } = this.opts;
    const series = this.data.series;
    const [xLo, xHi] = widen(finiteRange(series.map((s) => s.x)) ?? [0, 1]);
    const [yMin, yMax] = widen(finiteRange(series.map((s) => s.y)) ?? [0, 1]);
    const yt = niceTicks(yMin, yMax, 4);
    const yLabelW = Math.max(...yt.ticks.map((t) => ctx.measureText(format(t)).width));
    const box = { left: 22 + yLabelW + 6, right: w - 12, top: 22, bottom: h - 36, w, h };
    const xt = niceTicks(xLo, xHi, Math.max(2, Math.floor((box.right - box.left) / 70)));
    const px = (v) => box.left + ((v - xt.lo) / (xt.hi - xt.lo || 1)) * (box.right - box.left);
    const py = (v) => box.bottom - ((v - yt.lo) / (yt.hi - yt.lo || 1)) * (box.bottom - box.top);
    return { box, yt, xt, px, py };
  }

  drawXY(ctx, w, h) {
    const frame = this.layoutXY(ctx, w, h);
    const { box, yt, xt, px, py } = frame;
    const { format, xLabel, yLabel } = this.opts;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const t of yt.ticks) {
      const yy = Math.round(py(t)) + 0.5;
      gridLine(ctx, box.left, yy, box.right, yy);
      ctx.fillStyle = kAxisColor;
      ctx.fillText(format(t), box.left - 6, yy);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of xt.ticks) {
      const xx = Math.round(px(t)) + 0.5;
      gridLine(ctx, xx, box.top, xx, box.bottom);
      ctx.fillStyle = kAxisColor;
      ctx.fillText(format(t), xx, box.bottom + 6);
    }
    ctx.fillText(xLabel, (box.left + box.right) / 2, h - 14);
    ctx.save();
    ctx.translate(10, (box.top + box.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
    ctx.save();
    ctx.beginPath();
    ctx.rect(box.left - 4, box.top - 4, box.right - box.left + 8, box.bottom - box.top + 8);
    ctx.clip();
    for (const s of this.data.series) this.plotXYSeries(ctx, s, px, py);
    ctx.restore();
    this.drawLegend(ctx, box.right, 9, this.data.series, box.left);
    if (this.hoverX !== null && this.hoverX >= box.left && this.hoverX <= box.right) this.drawReadout(ctx, frame);
  }

  /** A guide at the step nearest the pointer and each series' value there. */
  drawReadout(ctx, { box, px, py }) {
    let best = null;
    for (const s of this.data.series) {
      for (const x of s.x) if (best === null || Math.abs(px(x) - this.hoverX) < Math.abs(px(best) - this.hoverX)) best = x;
    }
    if (best === null) return;
    const rows = [];
    for (const s of this.data.series) {
      const i = s.x.indexOf(best);
      if (i >= 0 && Number.isFinite(s.y[i])) rows.push({ s, y: s.y[i] });
    }
    const gx = Math.round(px(best)) + 0.5;
    ctx.strokeStyle = kAxisColor;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(gx, box.top);
    ctx.lineTo(gx, box.bottom);
    ctx.stroke();
    ctx.setLineDash([]);
    const lines = [`${this.opts.xLabel} ${this.opts.format(best)}`,
      ...rows.map(({ s, y }) => `${shortName(s.name)}: ${this.opts.format(y)}`)];
    const w = Math.max(...lines.map((l) => ctx.measureText(l).width)) + 16;
    const h = lines.length * 16 + 8;
    const x0 = gx + 8 + w <= box.right ? gx + 8 : gx - 8 - w;
    ctx.fillStyle = '#ffffffee';
    ctx.strokeStyle = kGridColor;
    ctx.fillRect(x0, box.top, w, h);
    ctx.strokeRect(x0 + 0.5, box.top + 0.5, w, h);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    lines.forEach((line, i) => {
      ctx.fillStyle = i === 0 ? kAxisColor : rows[i - 1].s.color;
      ctx.fillText(line, x0 + 8, box.top + 6 + i * 16);
    });
    for (const { s, y } of rows) {
      ctx.fillStyle = s.color;
      ctx.beginPath();
      ctx.arc(px(best), py(y), 4, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  /** One series' line; its points as dots too when there are few enough to tell apart. */
  plotXYSeries(ctx, s, px, py) {
    const ok = (i) => Number.isFinite(s.x[i]) && Number.isFinite(s.y[i]);
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    let drawing = false;
    for (let i = 0; i < s.x.length; i++) {
      if (!ok(i)) {
        drawing = false;
        continue;
      }
      if (drawing) ctx.lineTo(px(s.x[i]), py(s.y[i]));
      else ctx.moveTo(px(s.x[i]), py(s.y[i]));
      drawing = true;
    }
    ctx.stroke();
    if (s.x.length > 40) return;
    for (let i = 0; i < s.x.length; i++) {
      if (!ok(i)) continue;
      ctx.beginPath();
      ctx.arc(px(s.x[i]), py(s.y[i]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  drawHBars(ctx, w, h) {
    const { format } = this.opts;
    const { labels, values, colors } = this.data;
    const n = labels.length;
    const top = 8;
    const bottom = h - 30;
    const labelW = Math.min(w * 0.35, Math.max(...labels.map((l) => ctx.measureText(l).width)) + 10);
    const left = labelW + 8;
    const right = w - 16;
    const xt = niceTicks(0, Math.max(...values, 1) * 1.1, Math.max(2, Math.floor((right - left) / 70)));
    const px = (v) => left + (v / (xt.hi || 1)) * (right - left);
    const rowH = (bottom - top) / n;
    const barH = Math.min(22, rowH * 0.7);

    ctx.lineWidth = 1;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of xt.ticks) {
      const xx = Math.round(px(t)) + 0.5;
      gridLine(ctx, xx, top, xx, bottom);
      ctx.fillStyle = kAxisColor;
      ctx.fillText(format(t), xx, bottom + 4);
    }
    ctx.fillText(this.opts.xLabel, (left + right) / 2, h - 12);
    ctx.textBaseline = 'middle';
    labels.forEach((label, i) => {
      const cy = top + rowH * (i + 0.5);
      ctx.textAlign = 'right';
      ctx.fillStyle = kAxisColor;
      ctx.fillText(label, left - 8, cy, labelW);
      ctx.fillStyle = colors?.[i] ?? '#2563eb';
      ctx.fillRect(left, cy - barH / 2, px(values[i]) - left, barH);
      ctx.textAlign = 'left';
      ctx.fillStyle = '#1d2330';
      const valueText = format(values[i]);
      const vx = px(values[i]) + 4;
      if (vx + ctx.measureText(valueText).width <= w) ctx.fillText(valueText, vx, cy);
    });
    ctx.strokeStyle = kAxisColor;
    ctx.beginPath();
    ctx.moveTo(left + 0.5, top);
    ctx.lineTo(left + 0.5, bottom);
    ctx.stroke();
  }
}
