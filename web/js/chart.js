// Small canvas charts for the Status page: time lines, time bars and horizontal bars, with axes,
// ticks, grid, axis titles and a legend. Sharp on high-DPI screens; redrawn when resized.

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

export class Chart {
  /**
   * kind: 'line' (time x), 'bars' (time x, one bar group per x) or 'hbars' (labels and values).
   * series: [{name, color}] for line and bars; yLabel: the value axis title; binMs: a bar's width in time.
   */
  constructor(canvas, { kind = 'line', series = [], yLabel = '', xLabel = 'time', binMs = 60_000,
    minSpanMs = 30_000, format = defaultFormat, empty = 'No data yet' } = {}) {
    this.canvas = canvas;
    this.opts = { kind, series, yLabel, xLabel, binMs, minSpanMs, format, empty };
    this.data = null;
    new ResizeObserver(() => this.draw()).observe(canvas);
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
    const empty = this.opts.kind === 'hbars' ? !this.data?.labels?.length : !this.data?.x?.length;
    if (empty) {
      this.drawEmpty(ctx, w, h);
      return;
    }
    if (this.opts.kind === 'hbars') this.drawHBars(ctx, w, h);
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

  drawLegend(ctx, right, top) {
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    let x = right;
    for (const s of [...this.opts.series].reverse()) {
      const tw = ctx.measureText(s.name).width;
      ctx.fillStyle = kAxisColor;
      ctx.fillText(s.name, x, top);
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
