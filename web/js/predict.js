// Predict page: images dropped, picked or pasted are each POSTed to /v1/predict with a low score
// threshold; the slider then filters the received detections in the browser without a new request.

import { predict } from './api.js';
import { classColor, drawCaption, drawDetections, filterDetections, formatMs } from './draw.js';

// Low enough that the slider has something to reveal; the server's own default may be higher.
const kRequestThreshold = 0.05;
const kMaxInFlight = 3;
const kTableRows = 50;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function stemOf(name) {
  const base = name.replace(/^.*[\\/]/, '');
  const dot = base.lastIndexOf('.');
  return (dot > 0 ? base.slice(0, dot) : base) || 'image';
}

function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function looksLikeImage(file) {
  // An empty type is an extension the browser does not know: let the server decide.
  return file.type === '' || file.type.startsWith('image/');
}

/** One image's card: its canvas, summary, timings, table and downloads. */
class ResultCard {
  constructor(file) {
    this.file = file;
    this.bitmap = null;
    this.json = null;
    this.error = null;
    this.clientMs = null;
    this.canvas = el('canvas', { 'data-testid': 'result-canvas', role: 'img', 'aria-label': `${file.name} with detections` });
    this.state = el('span', { class: 'state', 'data-testid': 'result-state', text: 'waiting…' });
    this.summary = el('div', { class: 'summary', 'data-testid': 'result-summary' });
    this.errorBox = el('div', { class: 'error', 'data-testid': 'result-error', role: 'alert', hidden: '' });
    this.timings = el('div', { class: 'timings', 'data-testid': 'result-timings' });
    this.details = el('div', { class: 'details' });
    this.pngButton = el('button', { type: 'button', 'data-testid': 'download-png', disabled: '', text: 'Download PNG' });
    this.jsonButton = el('button', { type: 'button', 'data-testid': 'download-json', disabled: '', text: 'Download JSON' });
    this.retryButton = el('button', { type: 'button', 'data-testid': 'retry', hidden: '', text: 'Retry' });
    this.pngButton.addEventListener('click', () => this.downloadPng());
    this.jsonButton.addEventListener('click', () => this.downloadJson());
    this.root = el('article', { class: 'result', 'data-testid': 'result', 'data-state': 'pending' },
      el('header', {}, el('span', { class: 'filename', title: file.name, text: file.name }), this.state),
      this.canvas, this.errorBox, this.summary, this.timings, this.details,
      el('div', { class: 'actions' }, this.retryButton, this.pngButton, this.jsonButton));
  }

  setState(state, text) {
    this.root.dataset.state = state;
    this.state.textContent = text;
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  async decodeLocally() {
    try {
      this.bitmap = await createImageBitmap(this.file);
      this.canvas.width = this.bitmap.width;
      this.canvas.height = this.bitmap.height;
      this.canvas.getContext('2d').drawImage(this.bitmap, 0, 0);
    } catch {
      // The server may still read it (e.g. a TIFF); only the preview is missing.
      this.bitmap = null;
      this.canvas.hidden = true;
    }
  }

  /** Redraws the image with the detections at or above `threshold`. */
  render(threshold) {
    const json = this.json;
    if (!json) return;
    const dets = json.detections ? filterDetections(json.detections, threshold) : null;
    if (this.bitmap) {
      const ctx = this.canvas.getContext('2d');
      const dstW = this.canvas.width;
      const dstH = this.canvas.height;
      ctx.drawImage(this.bitmap, 0, 0);
      const size = { srcW: json.image?.width ?? dstW, srcH: json.image?.height ?? dstH, dstW, dstH };
      if (dets) drawDetections(ctx, dets, size);
      else if (json.classification) {
        const c = json.classification;
        drawCaption(ctx, `${c.label} ${(c.score * 100).toFixed(1)}%`, size);
      }
    }
    this.summary.replaceChildren();
    this.details.replaceChildren();
    if (dets) this.renderDetections(dets, json.detections.length, threshold);
    else if (json.classification) this.renderClassification(json.classification);
    else this.summary.textContent = 'The response has neither detections nor a classification.';
  }

  renderDetections(dets, received, threshold) {
    const count = el('strong', { 'data-testid': 'box-count', 'data-count': String(dets.length), text: String(dets.length) });
    this.summary.append(count, ` of ${received} detection${received === 1 ? '' : 's'} at score ≥ ${threshold.toFixed(2)}`);
    if (dets.length === 0) return;
    const rows = dets.slice(0, kTableRows).map((d) => el('tr', {},
      el('td', {}, el('span', { class: 'swatch', style: `background:${classColor(d.class_id)}` }), d.label ?? String(d.class_id)),
      el('td', { class: 'num', text: d.score.toFixed(3) }),
      el('td', { class: 'num', text: d.box.map((v) => v.toFixed(0)).join(', ') })));
    const table = el('table', { class: 'dets', 'data-testid': 'detections-table' },
      el('thead', {}, el('tr', {}, el('th', { text: 'label' }), el('th', { text: 'score' }), el('th', { text: 'box (x1, y1, x2, y2)' }))),
      el('tbody', {}, ...rows));
    const more = dets.length > kTableRows ? el('p', { class: 'hint', text: `${dets.length - kTableRows} more in the JSON` }) : null;
    this.details.append(el('details', {}, el('summary', { text: 'Detections' }), table, more));
  }

  renderClassification(c) {
    this.summary.append(el('span', { class: 'class-label', 'data-testid': 'class-label', text: c.label }),
      ` ${(c.score * 100).toFixed(1)}%`);
    const probs = Object.entries(c.probs ?? {}).sort((a, b) => b[1] - a[1]);
    const bars = probs.map(([label, p]) => el('div', { class: label === c.label ? 'prob best' : 'prob' },
      el('span', { text: label }),
      el('span', { class: 'bar', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '1', 'aria-valuenow': String(p), 'aria-label': label },
        el('span', { style: `width:${(p * 100).toFixed(1)}%` })),
      el('span', { class: 'num', text: `${(p * 100).toFixed(1)}%` })));
    this.details.append(el('div', { class: 'probs', 'data-testid': 'class-probs' }, ...bars));
  }

  renderTimings() {
    const t = this.json?.timings_ms ?? {};
    const parts = ['decode', 'queue', 'inference', 'encode', 'total']
      .filter((k) => typeof t[k] === 'number').map((k) => `${k} ${formatMs(t[k])}`);
    parts.push(`round trip ${formatMs(this.clientMs)}`);
    if (this.json?.batch_size) parts.push(`batch ${this.json.batch_size}`);
    const img = this.json?.image;
    if (img) parts.push(`${img.width}×${img.height} ${img.type ?? ''}`.trim());
    this.timings.textContent = parts.join(' · ');
  }

  /** POSTs the image; the card shows the answer (filtered at threshold(), read when it arrives) or the error. */
  async run(threshold) {
    this.setState('running', 'predicting…');
    this.showError('');
    this.retryButton.hidden = true;
    try {
      const { json, clientMs } = await predict(this.file, this.file.name, { score_threshold: kRequestThreshold });
      this.json = json;
      this.clientMs = clientMs;
      this.render(threshold());
      this.renderTimings();
      this.setState('done', 'done');
      this.pngButton.disabled = !this.bitmap;
      this.jsonButton.disabled = false;
    } catch (err) {
      this.error = err;
      this.setState('error', 'failed');
      this.showError(err.describe ? err.describe() : String(err));
      this.jsonButton.disabled = false;
      // Retrying helps after a key was entered, a rate limit or a busy or unreachable server; not a bad image.
      const s = err.status;
      this.retryButton.hidden = !(s === 0 || s === 401 || s === 403 || s === 429 || s >= 500);
    }
  }

  skip(reason) {
    this.setState('error', 'skipped');
    this.canvas.hidden = true;
    this.showError(reason);
    this.pngButton.hidden = true;
    this.jsonButton.hidden = true;
  }

  close() {
    this.bitmap?.close?.();
    this.bitmap = null;
  }

  downloadPng() {
    if (!this.bitmap) return;
    this.canvas.toBlob((blob) => blob && download(blob, `${stemOf(this.file.name)}.vigil.png`), 'image/png');
  }

  downloadJson() {
    const body = this.json ?? { error: this.error?.message, code: this.error?.code };
    download(new Blob([JSON.stringify(body, null, 2)], { type: 'application/json' }), `${stemOf(this.file.name)}.vigil.json`);
  }
}

/** The Predict page: a queue of cards, at most kMaxInFlight requests at a time. */
export class PredictPage {
  constructor(root) {
    const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
    this.root = root;
    this.dropZone = $('drop-zone');
    this.input = $('file-input');
    this.slider = $('threshold');
    this.sliderValue = $('threshold-value');
    this.results = $('results');
    this.cards = [];
    this.queue = [];
    this.inFlight = 0;

    this.slider.addEventListener('input', () => this.rerender());
    this.sliderValue.textContent = this.threshold().toFixed(2);
    $('clear-results').addEventListener('click', () => this.clear());
    this.input.addEventListener('change', () => {
      this.addFiles(this.input.files);
      this.input.value = '';  // picking the same file again fires change again
    });
    this.bindDropZone();
    document.addEventListener('paste', (e) => {
      if (root.hidden) return;
      const files = Array.from(e.clipboardData?.files ?? []).filter(looksLikeImage);
      if (files.length) this.addFiles(files);
    });
  }

  bindDropZone() {
    const zone = this.dropZone;
    zone.addEventListener('click', (e) => {
      if (e.target === zone || e.target.tagName === 'P' || e.target.tagName === 'STRONG') this.input.click();
    });
    zone.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this.input.click();
      }
    });
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('dragging');
      if (e.dataTransfer?.files?.length) this.addFiles(e.dataTransfer.files);
    });
    // A drop that misses the zone must not navigate away from the page.
    window.addEventListener('dragover', (e) => e.preventDefault());
    window.addEventListener('drop', (e) => e.preventDefault());
  }

  threshold() {
    return Number(this.slider.value);
  }

  rerender() {
    this.sliderValue.textContent = this.threshold().toFixed(2);
    for (const card of this.cards) card.render(this.threshold());
  }

  pump() {
    while (this.inFlight < kMaxInFlight && this.queue.length > 0) {
      const card = this.queue.shift();
      this.inFlight++;
      card.run(() => this.threshold()).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  enqueue(card) {
    card.retryButton.hidden = true;
    card.setState('pending', 'waiting…');
    this.queue.push(card);
    this.pump();
  }

  async addFiles(fileList) {
    for (const file of Array.from(fileList)) {
      const card = new ResultCard(file);
      this.results.prepend(card.root);
      this.cards.push(card);
      if (!looksLikeImage(file)) {
        card.skip(`Skipped: not an image (type ${file.type}).`);
        continue;
      }
      await card.decodeLocally();
      if (!card.bitmap) card.summary.textContent = 'This browser cannot display this image; the server may still read it.';
      card.retryButton.addEventListener('click', () => this.enqueue(card));
      this.enqueue(card);
    }
  }

  clear() {
    this.queue.length = 0;
    for (const card of this.cards) card.close();
    this.cards = [];
    this.results.replaceChildren();
  }
}
