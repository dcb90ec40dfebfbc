// Datasets page: the workspace's datasets and their versions (GET /v1/datasets), one version's statistics,
// validation report and a few sample images (GET /v1/datasets/{name}/versions/{id}, .../image?file=), and an
// upload form (POST /v1/datasets/{name}/upload) for files, a folder or one archive. The server validates and
// stores what arrives; this page only shows its answer: the new version's id, or its error as it said it.
// With an API key stored, sample images are fetched with the key and shown from blob: URLs (an <img src> cannot
// send it).

import { ApiError, apiUrl, getApiKey, getJson, request } from './api.js';
import { Chart } from './chart.js';
import { byTestId, el, fmtValue, kRunColors, kvList } from './dom.js';

const kNamePattern = /^[A-Za-z0-9._-]{1,128}$/;
const kSamples = 12;

function describe(err) {
  return err instanceof ApiError ? err.describe() : String(err);
}

const datasetPath = (name) => `/v1/datasets/${encodeURIComponent(name)}`;
const versionPath = (name, id) => `${datasetPath(name)}/versions/${encodeURIComponent(id)}`;

/** "2026-12-06T17:03:11Z" -> "2026-12-06 17:03 UTC": the store records UTC, and says so. */
function fmtCreated(iso) {
  return iso ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : '—';
}

function pct(part, whole) {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '—';
}

/** A chart in a figure; the canvas is drawn once it has a size (the ResizeObserver in Chart). */
function chartFigure(title, testid, options, data, rows = 4) {
  const canvas = el('canvas', { class: 'chart', 'data-testid': testid, 'aria-label': title });
  canvas.style.height = `${Math.max(120, 34 * rows + 40)}px`;
  const chart = new Chart(canvas, { kind: 'hbars', ...options });
  chart.setData(data);
  return el('figure', { class: 'curve' }, el('figcaption', { text: title }), canvas);
}

/** Per class: images (classification) or boxes (detection), with their share, as a table and a bar chart. */
function classSection(detail) {
  const { stats } = detail;
  const det = stats.task === 'detection';
  const total = det ? stats.n_boxes : stats.n_images;
  const classes = stats.classes ?? [];
  const table = el('table', { class: 'grid', 'data-testid': 'class-table' },
    el('thead', {}, el('tr', {}, el('th', { text: 'class' }), el('th', { text: det ? 'boxes' : 'images' }),
      el('th', { text: 'share' }), det ? el('th', { text: 'images' }) : null)),
    el('tbody', {}, classes.map((c) => el('tr', { 'data-testid': 'class-row', 'data-class': c.name },
      el('td', { text: c.name }),
      el('td', { class: 'num', 'data-testid': 'class-count', text: String(det ? c.boxes : c.images) }),
      el('td', { class: 'num', text: pct(det ? c.boxes : c.images, total) }),
      det ? el('td', { class: 'num', text: String(c.images) }) : null))));
  const chart = chartFigure(`${det ? 'Boxes' : 'Images'} per class`, 'chart-class-shares',
    { xLabel: det ? 'boxes' : 'images', empty: 'No classes' },
    { labels: classes.map((c) => c.name), values: classes.map((c) => (det ? c.boxes : c.images)),
      colors: classes.map((_, i) => kRunColors[i % kRunColors.length]) }, classes.length);
  return el('section', { class: 'detail-grid' }, el('div', {}, el('h3', { text: 'Classes' }), table), chart);
}

/** Splits: the folders the files came from (train/, val/) and the stored splits of `vigil data split`, whose
 *  sides also get a class-by-side table: whether validation sees every class, and how much of it. */
function splitSection(detail) {
  const folders = detail.stats.splits ?? [];
  const stored = Object.entries(detail.splits ?? {});
  const sides = stored.flatMap(([name, f]) => ['train', 'val', 'test'].filter((k) => f[k] > 0)
    .map((k) => ({ label: `${name}: ${k}`, split: name, side: k, images: f[k], classes: f.classes?.[k] ?? [] })));
  const rows = [...folders.map((s) => [`folder ${s.split}`, s.images]), ...sides.map((s) => [s.label, s.images])];
  if (!rows.length) {
    return el('section', {}, el('h3', { text: 'Splits' }), el('p', { class: 'hint', 'data-testid': 'splits-none',
      text: `No split yet: \`vigil data split ${detail.name}\` makes one without leakage between near duplicates.` }));
  }
  const unit = detail.task === 'detection' ? 'boxes' : 'images';
  const table = sides.length ? el('table', { class: 'grid', 'data-testid': 'split-table' },
    el('caption', { class: 'sub', text: `${unit} per class on each side of the stored splits` }),
    el('thead', {}, el('tr', {}, el('th', { text: 'split' }), el('th', { text: 'images' }),
      detail.class_names.map((c) => el('th', { class: 'mono', text: c })))),
    el('tbody', {}, sides.map((s) => el('tr', { 'data-testid': 'split-row', 'data-split': s.split, 'data-side': s.side },
      el('th', { scope: 'row', text: s.label }),
      el('td', { class: 'num', 'data-testid': 'split-images', text: String(s.images) }),
      detail.class_names.map((c, i) => el('td', { class: 'num', 'data-testid': 'split-class-count', 'data-class': c,
        text: String(s.classes[i] ?? '—') })))))) : null;
  return el('section', {}, el('h3', { text: 'Splits' }),
    chartFigure('Images per split', 'chart-splits', { xLabel: 'images' },
      { labels: rows.map((r) => r[0]), values: rows.map((r) => r[1]), colors: rows.map(() => '#0891b2') }, rows.length),
    table ? el('div', { class: 'table-wrap split-wrap' }, table) : null);
}

/** Image sizes (and box sizes for detectors): min, median, 95th percentile and max of each. */
function sizeSection(stats) {
  const rows = [['image width', stats.images?.width], ['image height', stats.images?.height]];
  if (stats.boxes) {
    rows.push(['box width', stats.boxes.width], ['box height', stats.boxes.height],
      ['box aspect (w/h)', stats.boxes.aspect_ratio]);
  }
  return el('section', {}, el('h3', { text: 'Sizes (pixels)' }),
    el('table', { class: 'grid', 'data-testid': 'size-table' },
      el('thead', {}, el('tr', {}, ['', 'min', 'median', 'p95', 'max', 'mean'].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows.filter(([, v]) => v?.count).map(([label, v]) => el('tr', {},
        el('th', { scope: 'row', text: label }),
        [v.min, v.median, v.p95, v.max, v.mean].map((x) => el('td', { class: 'num', text: fmtValue(x) })))))));
}

/** The validation report: errors, warnings and the first issues, worst first. */
function validationSection(report) {
  const s = report.summary ?? {};
  const state = s.errors > 0 ? 'errors' : s.warnings > 0 ? 'warnings' : 'clean';
  const headline = state === 'clean' ? 'No errors or warnings.'
    : `${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}.`;
  const issues = report.issues ?? [];
  const order = { error: 0, warning: 1, info: 2 };
  const sorted = [...issues].sort((a, b) => (order[a.severity] ?? 3) - (order[b.severity] ?? 3));
  return el('section', {}, el('h3', { text: 'Validation' }),
    el('p', { class: 'validation-summary', 'data-testid': 'validation-summary', 'data-state': state,
      'data-errors': s.errors, 'data-warnings': s.warnings, text: headline }),
    kvList([
      ['usable images', `${s.usable_images} of ${s.images}`],
      ['duplicate groups', `${s.exact_duplicate_groups} exact, ${s.near_duplicate_pairs} near pairs`],
      s.boxes !== undefined && s.empty_images ? ['images without boxes', `${s.empty_images} (${pct(s.empty_images, s.images)})`] : null,
    ]),
    sorted.length ? el('table', { class: 'grid', 'data-testid': 'issues-table' },
      el('thead', {}, el('tr', {}, ['severity', 'kind', 'file', 'message'].map((h) => el('th', { text: h })))),
      el('tbody', {}, sorted.map((i) => el('tr', { 'data-testid': 'issue-row', 'data-severity': i.severity },
        el('td', {}, el('span', { class: 'severity', 'data-severity': i.severity, text: i.severity })),
        el('td', { class: 'mono', text: i.kind }),
        el('td', { class: 'mono', text: i.line ? `${i.file}:${i.line}` : i.file || '(dataset)' }),
        el('td', { text: i.message }))))) : null,
    report.issues_total > issues.length
      ? el('p', { class: 'hint', text: `… and ${report.issues_total - issues.length} more: \`vigil data validate\` lists all.` }) : null);
}

/** A few images of the version, spread over its classes, with their label (or box count); `load(img, path, query)`. */
function sampleSection(detail, load) {
  const samples = detail.samples ?? [];
  if (!samples.length) return null;
  return el('section', {}, el('h3', { text: 'Samples' }),
    el('div', { class: 'samples', 'data-testid': 'samples' }, samples.map((s) => {
      const caption = s.label ?? (detail.task === 'detection' ? `${s.boxes} box${s.boxes === 1 ? '' : 'es'}` : 'no label');
      const img = el('img', { alt: `${s.file} (${caption})`, loading: 'lazy', 'data-testid': 'sample-image' });
      load(img, `${versionPath(detail.name, detail.id)}/image`, { file: s.file });
      return el('figure', { class: 'sample', 'data-testid': 'sample', 'data-file': s.file }, img,
        el('figcaption', { title: s.file }, el('strong', { text: caption }), el('span', { class: 'sub', text: s.file })));
    })));
}

export class DatasetsPage {
  constructor(root) {
    this.root = root;
    this.list = byTestId(root, 'datasets-list');
    this.detail = byTestId(root, 'dataset-detail');
    this.errorBox = byTestId(root, 'datasets-error');
    this.result = byTestId(root, 'upload-result');
    this.form = byTestId(root, 'upload-form');
    this.versions = [];
    this.selected = null;  // {name, id}
    this.generation = 0;
    this.blobUrls = [];  // sample images fetched with the API key, released when the next version is shown
    byTestId(root, 'datasets-refresh').addEventListener('click', () => this.show());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.upload();
    });
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  /** Called when the page is shown; `arg` (from #datasets/NAME@ID) picks the version. */
  async show(arg) {
    try {
      this.versions = (await getJson('/v1/datasets')).datasets ?? [];
      this.showError('');
    } catch (err) {
      this.showError(`Datasets: ${describe(err)}`);
      return;
    }
    const [name, id] = (arg || '').split('@');
    const pick = (name && this.versions.filter((v) => v.name === name && (!id || v.id.startsWith(id))).at(-1)) ||
      this.versions.find((v) => v.id === this.selected?.id) || this.versions.at(-1);
    this.renderList(pick);
    if (pick) await this.open(pick);
    else {
      this.detail.replaceChildren(el('p', { class: 'hint', 'data-testid': 'datasets-empty',
        text: 'No datasets in this workspace yet: upload one here, or `vigil data ingest FOLDER --name NAME`.' }));
    }
  }

  renderList(current) {
    const byName = new Map();
    for (const v of this.versions) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
    this.list.replaceChildren(...[...byName].map(([name, versions]) => el('li', { 'data-testid': 'dataset-item', 'data-name': name },
      el('span', { class: 'model-item-name', text: name }),
      el('ul', { class: 'version-list' }, [...versions].reverse().map((v) => {
        const button = el('button', { type: 'button', class: 'model-item', 'data-testid': 'dataset-version', 'data-id': v.id,
          'aria-current': current?.id === v.id ? 'true' : undefined },
        el('span', { class: 'mono', text: v.short_id }),
        el('span', { class: 'sub', text: `${fmtCreated(v.created)} · ${v.images} images · ${v.classes} classes` +
          (v.boxes ? ` · ${v.boxes} boxes` : '') }));
        button.addEventListener('click', () => {
          this.renderList(v);
          this.open(v);
        });
        return el('li', {}, button);
      })))));
  }

  async open(v) {
    const gen = ++this.generation;
    this.selected = { name: v.name, id: v.id };
    if (!this.form.elements['upload-name'].value) this.form.elements['upload-name'].value = v.name;
    let detail;
    try {
      detail = await getJson(versionPath(v.name, v.id), { query: { samples: kSamples } });
    } catch (err) {
      if (gen === this.generation) this.showError(`Dataset ${v.name}@${v.short_id}: ${describe(err)}`);
      return;
    }
    if (gen !== this.generation) return;
    this.showError('');
    for (const u of this.blobUrls.splice(0)) URL.revokeObjectURL(u);
    this.detail.replaceChildren(...[
      el('h2', { 'data-testid': 'dataset-detail-name', text: `${detail.name}@${detail.short_id}` }),
      el('p', { class: 'hint' }, `${detail.task} · ${detail.format} · ingested ${fmtCreated(detail.created)}`),
      kvList([
        ['version id', el('span', { class: 'mono', text: detail.id }), 'dataset-detail-id'],
        ['images', String(detail.images), 'dataset-images'],
        detail.task === 'detection' ? ['boxes', String(detail.boxes)] : null,
        ['classes', detail.class_names.join(', ')],
        ['files', String(detail.files)],
        ['source', el('span', { class: 'mono', text: detail.source })],
      ]),
      classSection(detail),
      el('div', { class: 'detail-grid' }, splitSection(detail), sizeSection(detail.stats)),
      validationSection(detail.validation ?? {}),
      sampleSection(detail, (img, route, query) => this.loadImage(img, route, query, gen)),
    ].filter(Boolean));
  }

  /** Plain <img src> without a key; with one, a fetch that sends it and a blob: URL. */
  loadImage(img, route, query, gen) {
    if (!getApiKey()) {
      img.src = apiUrl(route, query).href;
      return;
    }
    request(route, { query }).then((res) => res.blob()).then((blob) => {
      if (gen !== this.generation) return;  // another version is shown by now
      const url = URL.createObjectURL(blob);
      this.blobUrls.push(url);
      img.src = url;
    }).catch((err) => {
      img.alt = `${img.alt}: ${describe(err)}`;
    });
  }

  say(state, text) {
    this.result.dataset.state = state;
    this.result.textContent = text;
    this.result.hidden = !text;
  }

  /** The chosen files as [file, name inside the dataset]: a folder's files keep their path below it. */
  chosenFiles() {
    const files = [...this.form.elements['upload-files'].files].map((f) => [f, f.name]);
    for (const f of this.form.elements['upload-folder'].files) {
      // "masks/with_mask/1.jpg" -> "with_mask/1.jpg": the picked folder is the dataset's root.
      const rel = f.webkitRelativePath || f.name;
      files.push([f, rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : rel]);
    }
    return files;
  }

  async upload() {
    const name = this.form.elements['upload-name'].value.trim();
    if (!kNamePattern.test(name)) {
      this.say('error', 'Dataset name: letters, digits, ".", "-" and "_" only (at most 128).');
      return;
    }
    const files = this.chosenFiles();
    if (!files.length) {
      this.say('error', 'Choose files, a folder or one archive first.');
      return;
    }
    const form = new FormData();
    for (const [file, path] of files) form.append('files', file, path);
    const submit = byTestId(this.root, 'upload-submit');
    submit.disabled = true;
    this.say('busy', `Uploading ${files.length} file${files.length === 1 ? '' : 's'} to ${name}…`);
    try {
      const res = await request(`${datasetPath(name)}/upload`, { method: 'POST', body: form,
        query: { format: this.form.elements['upload-format'].value } });
      const v = await res.json();
      const problems = v.issues_total ? ` ${v.issues_total} problem${v.issues_total === 1 ? '' : 's'} met while reading ` +
        `(first: ${v.issues[0].file} ${v.issues[0].message}).` : '';
      this.say('done', v.unchanged
        ? `Unchanged: ${name}@${v.short_id} already has exactly this content.${problems}`
        : `Stored ${name}@${v.short_id}: ${v.images} images, ${v.classes} classes, ${v.files_stored} new files.${problems}`);
      this.result.dataset.id = v.id;
      this.form.elements['upload-files'].value = '';
      this.form.elements['upload-folder'].value = '';
      await this.show(`${name}@${v.id}`);
    } catch (err) {
      this.say('error', `Upload refused. ${describe(err)}`);
    } finally {
      submit.disabled = false;
    }
  }
}
