// Cameras page: the cameras `vigil serve --cameras` watches and the events they raise.
//
// Cameras: one card each, its annotated picture live from /v1/cameras/{name}/stream.mjpeg (an <img>: the
// browser reads multipart MJPEG itself) and its statistics from /v1/cameras every 2 s while the page is shown.
// Each open MJPEG <img> and the event stream hold one of the server's --max-streams slots (default 8), so
// streams are opened only while the page is shown in a visible browser tab and the card's video is expanded
// (img.src = '' closes one), at most kMaxLiveStreams of them; the other cards, cameras that are over, and a
// stream the server refused show a still (latest.jpg) refreshed with the statistics. Requests that would only
// answer 503 (a frame of a camera that has none yet) are not made.
//
// Events: GET /v1/events for the list (newest first, filtered by camera and label on the server), then the
// server-sent stream /v1/events/stream (EventSource) adds and updates them live. When the stream cannot be
// used (refused, or an API key is needed, which EventSource cannot send) the list is polled with the stats.
//
// With an API key stored, pictures are fetched with the key and shown from blob: URLs (an <img src> cannot
// send a header), so the live pictures become stills refreshed every 2 s.

import { ApiError, apiUrl, getApiKey, getJson, request } from './api.js';
import { byTestId, el } from './dom.js';

const kPollMs = 2000;
const kStreamFps = 5;          // the server's default; the detectors here rarely run faster
const kMaxLiveStreams = 6;     // of the server's default 8 --max-streams, one is the event stream's
const kEventsPage = 50;
const kStreamKinds = ['start', 'update', 'end'];
/** States whose source is over: the picture no longer changes, so no stream is held open for it. */
const kOverStates = new Set(['ended', 'failed', 'stopped']);

const kStateText = {
  starting: 'starting', running: 'running', reconnecting: 'reconnecting', ended: 'ended', failed: 'failed',
  stopped: 'stopped',
};

function describe(err) {
  return err instanceof ApiError ? err.describe() : String(err);
}

const cameraPath = (name) => `/v1/cameras/${encodeURIComponent(name)}`;

function fmtCount(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString() : '—';
}

function fmtFps(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(1) : '—';
}

function fmtMs(v) {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return '—';
  return v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** "14:03:07" for today, "2026-12-01 14:03:07" otherwise, in local time; "—" without a time. */
function fmtClock(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}`;
}

/** "4.2 s", "3 min 05 s", "1 h 02 min". */
function fmtSpan(s) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${pad2(m)} min` : `${m} min ${pad2(Math.floor(s % 60))} s`;
}

/** An event's start/end in ms: the API gives both ISO and ms; older rows may have only ISO. */
function eventTimes(e) {
  const start = e.start_ms ?? (e.start ? Date.parse(e.start) : null);
  const end = e.end_ms ?? (e.end ? Date.parse(e.end) : null);
  return { start, end };
}

let cardCount = 0;  // for unique element ids

/** One camera's card: built once, updated in place every poll (so its <img> stream is not restarted). */
class CameraCard {
  constructor(page, name) {
    this.page = page;
    this.name = name;
    this.expanded = true;
    this.mode = 'none';        // what the <img> shows: none | live | still
    this.refused = false;      // the server refused our stream (503, max_streams): stills until re-expanded
    this.stillDetected = -1;   // the `detected` count of the still shown, to fetch a new one only when it changed
    this.blobUrl = null;
    this.stats = null;
    const id = `camera-${++cardCount}`;
    this.image = el('img', { 'data-testid': 'camera-image', alt: `Camera ${name}: the newest detected frame, boxes drawn`,
      decoding: 'async' });
    this.image.addEventListener('load', () => {
      this.placeholder.hidden = true;
      this.image.hidden = false;
      this.root.dataset.image = 'loaded';
    });
    this.image.addEventListener('error', () => this.onImageError());
    this.placeholder = el('p', { class: 'placeholder', 'data-testid': 'camera-placeholder', text: 'Waiting for the first frame…' });
    const viewId = `${id}-view`;
    this.view = el('div', { class: 'camera-view', id: viewId }, this.image, this.placeholder);
    this.image.hidden = true;
    this.toggle = el('button', { type: 'button', class: 'camera-toggle', 'data-testid': 'camera-video-toggle',
      'aria-expanded': 'true', 'aria-controls': viewId, text: 'Hide video' });
    this.toggle.addEventListener('click', () => this.setExpanded(!this.expanded));
    this.badge = el('span', { class: 'camera-state', 'data-testid': 'camera-state', 'data-state': 'starting', text: 'starting' });
    this.errorBox = el('div', { class: 'error', 'data-testid': 'camera-error', role: 'alert', hidden: true });
    this.note = el('p', { class: 'hint camera-note', 'data-testid': 'camera-note', 'aria-live': 'polite' });
    this.out = {};
    const stat = (key, label) => {
      this.out[key] = el('dd', { 'data-testid': `camera-${key}` });
      return el('div', {}, el('dt', { text: label }), this.out[key]);
    };
    this.meta = el('p', { class: 'sub camera-meta', 'data-testid': 'camera-meta' });
    const titleId = `${id}-title`;
    this.root = el('article', { class: 'card camera-card', 'data-testid': 'camera-card', 'data-name': name,
      'aria-labelledby': titleId, 'data-stream': 'none' },
    el('header', { class: 'camera-head' },
      el('h3', { id: titleId, class: 'camera-name', text: name }), this.badge, this.toggle),
    this.view,
    this.errorBox,
    el('dl', { class: 'camera-stats' },
      stat('fps-in', 'FPS in'), stat('fps-detect', 'FPS detected'), stat('frames', 'Frames'),
      stat('detected', 'Detected'), stat('dropped', 'Dropped'), stat('reconnects', 'Reconnects'),
      stat('latency', 'Latency p50 / p95'), stat('tracks', 'Tracks'), stat('events', 'Events')),
    this.note,
    this.meta);
  }

  setExpanded(expanded) {
    this.expanded = expanded;
    this.refused = false;  // expanding again tries the live stream again
    this.toggle.setAttribute('aria-expanded', String(expanded));
    this.toggle.textContent = expanded ? 'Hide video' : 'Show video';
    this.view.hidden = !expanded;
    this.root.dataset.expanded = String(expanded);
    this.page.refreshPictures();
  }

  update(s) {
    this.stats = s;
    const state = s.state || 'starting';
    this.root.dataset.state = state;
    this.badge.dataset.state = state;
    this.badge.textContent = kStateText[state] ?? state;
    const set = (key, text, count) => {
      this.out[key].textContent = text;
      if (count !== undefined) this.out[key].dataset.count = String(count);
    };
    set('fps-in', fmtFps(s.fps_in));
    set('fps-detect', s.detect_fps_target ? `${fmtFps(s.fps_detect)} / ${fmtFps(s.detect_fps_target)}` : fmtFps(s.fps_detect));
    set('frames', fmtCount(s.frames), s.frames ?? 0);
    set('detected', fmtCount(s.detected), s.detected ?? 0);
    set('dropped', fmtCount(s.dropped), s.dropped ?? 0);
    set('reconnects', s.stalls ? `${fmtCount(s.reconnects)} (${fmtCount(s.stalls)} stalls)` : fmtCount(s.reconnects), s.reconnects ?? 0);
    set('latency', `${fmtMs(s.latency_p50_ms)} / ${fmtMs(s.latency_p95_ms)}`);
    set('tracks', fmtCount(s.tracks), s.tracks ?? 0);
    set('events', s.open_events ? `${fmtCount(s.events)} (${s.open_events} open)` : fmtCount(s.events), s.events ?? 0);
    this.meta.replaceChildren(...[s.width && s.height ? `${s.width} × ${s.height}` : '', s.detector, s.url]
      .filter(Boolean).flatMap((t, i) => (i ? [' · ', el('span', { class: 'mono', text: t })] : [el('span', { class: 'mono', text: t })])));

    // A failed camera says why, loudly; a reconnecting one or one whose batches fail shows its last error.
    const error = s.last_error || '';
    if (state === 'failed') {
      const text = `Camera ${s.name} failed${error ? `: ${error}` : ''}. Fix the source in the cameras.yaml and ` +
        'restart vigil serve; the other cameras keep running.';
      if (this.errorBox.textContent !== text) this.errorBox.textContent = text;  // role=alert: announce once
      this.errorBox.hidden = false;
    } else {
      this.errorBox.hidden = true;
    }
    const notes = [];
    if (state === 'reconnecting') notes.push(`Reconnecting${error ? ` after: ${error}` : '…'}`);
    else if (state !== 'failed' && error) notes.push(`Last error: ${error}`);
    if (s.errors) notes.push(`${fmtCount(s.errors)} detection batch${s.errors === 1 ? '' : 'es'} failed`);
    if ((state === 'ended' || state === 'stopped') && s.detected > 0) {
      notes.push('The source is over: this is its last detected frame.');
    }
    this.stateNotes = notes;
    this.root.classList.toggle('warn', state === 'reconnecting' || Boolean(s.errors));
  }

  /** The state's notes and why the picture is a still rather than live, if it is. */
  renderNote() {
    const notes = [...(this.stateNotes ?? [])];
    const s = this.stats;
    if (this.mode === 'still' && s && !kOverStates.has(s.state)) {
      const every = `the newest frame every ${kPollMs / 1000} s`;
      if (this.refused) {
        notes.push(`The server refused the live stream (its --max-streams are in use): showing ${every}. ` +
          '“Hide video” then “Show video” tries again.');
      } else if (this.page.useKey()) {
        notes.push(`With an API key the picture cannot stream (an image request cannot send the key): showing ${every}.`);
      } else {
        notes.push(`At most ${kMaxLiveStreams} cameras stream live at once: showing ${every}. Hide another camera's ` +
          'video to stream this one.');
      }
    }
    const text = notes.join(' · ');
    if (this.note.textContent !== text) this.note.textContent = text;  // aria-live: announce changes only
  }

  /** Which picture the card should show now: 'live', 'still' or 'none'. */
  wantedMode(liveSlotFree) {
    const s = this.stats;
    if (!this.page.visible || !this.expanded || !s) return 'none';
    const over = kOverStates.has(s.state);
    if (!over && !this.refused && !this.page.useKey() && liveSlotFree) return 'live';
    return s.detected > 0 ? 'still' : 'none';  // latest.jpg before the first detected frame is a 503
  }

  /** Opens, keeps or closes the stream; fetches a new still when the camera detected a new frame. */
  applyMode(mode) {
    const s = this.stats;
    if (mode !== this.mode) {
      this.closeImage();
      this.mode = mode;
      this.root.dataset.stream = mode;
      if (mode !== 'none') {
        this.placeholder.textContent = mode === 'live' ? 'Connecting to the live stream…' : 'Loading the newest frame…';
        this.placeholder.hidden = false;
        this.image.hidden = false;
      }
      if (mode === 'live') {
        this.image.src = apiUrl(`${cameraPath(this.name)}/stream.mjpeg`, { fps: kStreamFps }).href;
      }
    }
    if (mode === 'still' && s && s.detected !== this.stillDetected) {
      this.stillDetected = s.detected;
      this.loadStill(s.detected);
    }
    // Besides `load`: whether a multipart image fires it for its first part is up to the browser.
    if (mode !== 'none' && this.image.naturalWidth > 0) this.placeholder.hidden = true;
    this.renderNote();
    if (mode === 'none') {
      const failed = s?.state === 'failed';
      this.placeholder.textContent = !this.page.visible || !this.expanded ? 'Video hidden.'
        : failed ? 'No picture: the camera failed (see the error below).'
          : s && kOverStates.has(s.state) ? 'The source is over before any frame was detected.'
            : 'Waiting for the first detected frame…';
      this.placeholder.hidden = false;
      this.image.hidden = true;
    }
  }

  async loadStill(detected) {
    const url = apiUrl(`${cameraPath(this.name)}/latest.jpg`, { annotated: 1, n: detected });
    if (!this.page.useKey()) {
      this.image.src = url.href;
      return;
    }
    try {
      const res = await request(`${cameraPath(this.name)}/latest.jpg`, { query: { annotated: 1, n: detected } });
      const blob = await res.blob();
      if (this.mode !== 'still') return;
      const old = this.blobUrl;
      this.blobUrl = URL.createObjectURL(blob);
      this.image.src = this.blobUrl;
      if (old) URL.revokeObjectURL(old);
    } catch (err) {
      this.note.textContent = `Picture: ${describe(err)}`;
    }
  }

  onImageError() {
    // Closing a stream on purpose (src = '') also fires `error`: only an error while streaming counts.
    if (this.mode !== 'live' || !this.image.getAttribute('src')) return;
    this.refused = true;
    this.page.refreshPictures();
  }

  /** Closes the MJPEG connection (an <img> keeps it open while it has the URL) or drops the still. */
  closeImage() {
    if (this.image.getAttribute('src')) this.image.src = '';
    this.image.removeAttribute('src');
    this.image.hidden = true;
    delete this.root.dataset.image;
    if (this.blobUrl) URL.revokeObjectURL(this.blobUrl);
    this.blobUrl = null;
    this.stillDetected = -1;
    this.mode = 'none';
    this.root.dataset.stream = 'none';
  }
}

/** The Cameras page: show() starts polling and streams, hide() closes every stream. */
export class CamerasPage {
  constructor(root) {
    this.root = root;
    this.grid = byTestId(root, 'camera-grid');
    this.empty = byTestId(root, 'cameras-empty');
    this.errorBox = byTestId(root, 'cameras-error');
    this.modelsLine = byTestId(root, 'camera-models');
    this.eventsList = byTestId(root, 'events-list');
    this.eventsError = byTestId(root, 'events-error');
    this.eventsCount = byTestId(root, 'events-count');
    this.eventsLive = byTestId(root, 'events-live');
    this.cameraFilter = byTestId(root, 'events-camera');
    this.labelFilter = byTestId(root, 'events-label');
    this.moreButton = byTestId(root, 'events-more');
    this.cards = new Map();
    this.selected = false;  // the Cameras page is the one shown
    this.visible = false;   // ... and the browser tab is visible: streams are open
    this.timer = null;
    this.generation = 0;    // a hide() + show() during a poll must not leave two polling loops
    this.eventsGen = 0;     // a filter change during a fetch must not show the older answer
    this.events = new Map();  // id -> EVENT, the shown list (matching the filters)
    this.total = 0;
    this.limit = kEventsPage;
    this.labels = new Set();
    this.loads = 0;           // GET /v1/events on their way
    this.source = null;
    this.streamState = 'off';  // off | connecting | live | polling
    this.cameraCount = null;

    document.addEventListener('visibilitychange', () => this.onVisibility());
    byTestId(root, 'events-filters').addEventListener('submit', (e) => e.preventDefault());
    for (const select of [this.cameraFilter, this.labelFilter]) {
      select.addEventListener('change', () => {
        this.limit = kEventsPage;
        this.loadEvents();
      });
    }
    byTestId(root, 'events-refresh').addEventListener('click', () => this.loadEvents());
    this.moreButton.addEventListener('click', () => {
      this.limit += kEventsPage;
      this.loadEvents();
    });
  }

  /** An API key is stored: <img> and EventSource cannot send it, so pictures and events are fetched. */
  useKey() {
    return Boolean(getApiKey());
  }

  showError(box, message) {
    box.textContent = message;
    box.hidden = !message;
  }

  /** The page is selected: streams and polling run while the browser tab is visible too. */
  show() {
    this.selected = true;
    if (!document.hidden) this.start();
  }

  /** Another page is selected: every stream is closed (the server allows few at once). */
  hide() {
    this.selected = false;
    this.stop();
  }

  /** A browser tab in the background holds no streams either; they reopen when it is shown again. */
  onVisibility() {
    if (!this.selected) return;
    if (document.hidden) this.stop();
    else this.start();
  }

  start() {
    if (this.visible) return;
    this.visible = true;
    this.generation++;
    this.limit = kEventsPage;
    this.tick(this.generation);
    this.loadEvents();
  }

  stop() {
    if (!this.visible) return;
    this.visible = false;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.closeStream();
    for (const card of this.cards.values()) card.closeImage();
  }

  async tick(gen) {
    await this.pollCameras();
    if (gen !== this.generation) return;
    if (this.streamState === 'polling') await this.loadEvents({ quiet: true });
    this.renderDurations();
    if (gen === this.generation) this.timer = setTimeout(() => this.tick(gen), kPollMs);
  }

  async pollCameras() {
    let body;
    try {
      body = await getJson('/v1/cameras');
      this.showError(this.errorBox, '');
    } catch (err) {
      this.showError(this.errorBox, `Cameras: ${describe(err)}`);
      return;
    }
    if (!this.visible) return;
    this.renderCameras(body.cameras ?? []);
    this.renderModels(body.models ?? []);
    // Live event updates only where events can happen: a server that watches cameras.
    if (this.cameras().length && this.streamState === 'off') this.openStream();
  }

  cameras() {
    return [...this.cards.values()].map((c) => c.stats).filter(Boolean);
  }

  renderCameras(list) {
    this.cameraCount = list.length;
    this.empty.hidden = list.length > 0;
    this.root.dataset.cameras = String(list.length);
    const names = new Set(list.map((c) => c.name));
    for (const [name, card] of this.cards) {
      if (!names.has(name)) {
        card.closeImage();
        card.root.remove();
        this.cards.delete(name);
      }
    }
    for (const s of list) {
      let card = this.cards.get(s.name);
      if (!card) {
        card = new CameraCard(this, s.name);
        this.cards.set(s.name, card);
      }
      card.update(s);
      this.grid.append(card.root);  // moves it into the server's order
    }
    this.fillCameraFilter(list.map((c) => c.name));
    this.refreshPictures();
  }

  renderModels(models) {
    this.modelsLine.textContent = models.map((m) => {
      const perBatch = m.batches ? (m.frames / m.batches).toFixed(2) : '—';
      return `${m.detector}${m.classifier ? ` + ${m.classifier}` : ''}: ${(m.cameras ?? []).join(', ')} — ` +
        `${fmtCount(m.batches)} batches, ${perBatch} frames per batch (at most ${m.max_batch ?? '—'})`;
    }).join('\n');
    this.modelsLine.hidden = !models.length;
  }

  /** Gives the live slots to the first expanded cameras whose source still runs; the others get stills. */
  refreshPictures() {
    let live = 0;
    for (const card of this.cards.values()) {
      const mode = card.wantedMode(live < kMaxLiveStreams);
      if (mode === 'live') live++;
      card.applyMode(mode);
    }
  }

  fillCameraFilter(names) {
    const current = this.cameraFilter.value;
    const have = [...this.cameraFilter.options].slice(1).map((o) => o.value);
    const want = [...new Set([...names, ...(current ? [current] : [])])];
    if (JSON.stringify(have) === JSON.stringify(want)) return;
    this.cameraFilter.replaceChildren(el('option', { value: '', text: 'All cameras' }),
      ...want.map((n) => el('option', { value: n, text: n })));
    this.cameraFilter.value = current;
  }

  noteLabels(events) {
    const before = this.labels.size;
    for (const e of events) if (e.label) this.labels.add(e.label);
    if (this.labels.size === before && this.labelFilter.options.length > 1) return;
    const current = this.labelFilter.value;
    this.labelFilter.replaceChildren(el('option', { value: '', text: 'All labels' }),
      ...[...this.labels].sort().map((l) => el('option', { value: l, text: l })));
    this.labelFilter.value = current;
  }

  filters() {
    return { camera: this.cameraFilter.value, label: this.labelFilter.value };
  }

  matches(e) {
    const { camera, label } = this.filters();
    return (!camera || e.camera === camera) && (!label || e.label === label);
  }

  /**
   * GET /v1/events with the filters. `quiet` (polls, the stream's reloads) leaves the list as it is while the
   * answer comes; the list's data-loads counts the requests on their way.
   */
  async loadEvents({ quiet = false } = {}) {
    const gen = ++this.eventsGen;
    const query = { limit: this.limit };
    const { camera, label } = this.filters();
    if (camera) query.camera = camera;
    if (label) query.label = label;
    if (!quiet) this.eventsList.setAttribute('aria-busy', 'true');  // not on every poll: the list would blink
    const streamed = new Map();  // records that arrive while the list is on its way
    this.streamedDuringLoad = streamed;
    this.eventsList.dataset.loads = String(++this.loads);
    let body = null;
    try {
      body = await getJson('/v1/events', { query });
    } catch (err) {
      if (gen === this.eventsGen) this.showError(this.eventsError, `Events: ${describe(err)}`);
    } finally {
      this.eventsList.dataset.loads = String(--this.loads);
      if (gen === this.eventsGen) {
        this.eventsList.removeAttribute('aria-busy');
        this.streamedDuringLoad = null;
      }
    }
    if (!body || gen !== this.eventsGen) return;
    this.showError(this.eventsError, '');
    const events = body.events ?? [];
    this.events = new Map(events.map((e) => [e.id, e]));
    this.total = body.total ?? events.length;
    for (const [id, e] of streamed) {
      if (this.events.has(id) || !this.matches(e)) continue;
      this.events.set(id, e);
      this.total++;
    }
    this.noteLabels(events);
    this.renderEvents();
  }

  /** A record from the event stream: adds or updates the event when it matches the filters. */
  onStreamEvent(kind, e) {
    if (!e?.id) return;
    this.streamedDuringLoad?.set(e.id, e);
    this.noteLabels([e]);
    if (!this.matches(e)) return;
    if (!this.events.has(e.id)) this.total++;
    this.events.set(e.id, e);
    this.renderEvents();
  }

  openStream() {
    if (this.useKey() || typeof EventSource === 'undefined') {
      this.setStreamState('polling');
      return;
    }
    this.setStreamState('connecting');
    const source = new EventSource(apiUrl('/v1/events/stream'));
    this.source = source;
    source.addEventListener('open', () => {
      // Records from before the stream opened (or, after a reconnection, beyond the server's replay
      // history) are not sent: a fresh list covers them.
      this.loadEvents({ quiet: true });
      this.setStreamState('live');
    });
    for (const kind of kStreamKinds) {
      source.addEventListener(kind, (m) => {
        let e;
        try {
          e = JSON.parse(m.data);
        } catch {
          return;  // not an event: nothing to show
        }
        this.onStreamEvent(kind, e);
      });
    }
    source.addEventListener('lost', () => this.loadEvents({ quiet: true }));
    source.addEventListener('error', () => {
      if (this.source !== source) return;
      // CLOSED: the server refused the stream (503 max_streams, 401 key): fall back to polling the list.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        this.source = null;
        this.setStreamState('polling');
      } else {
        this.setStreamState('connecting');
      }
    });
  }

  closeStream() {
    this.source?.close();
    this.source = null;
    this.setStreamState('off');
  }

  setStreamState(state) {
    this.streamState = state;
    this.eventsLive.dataset.state = state;
    this.eventsLive.textContent = {
      off: '', connecting: 'connecting to the event stream…', live: 'live',
      polling: `refreshed every ${kPollMs / 1000} s`,
    }[state];
  }

  eventItem(e) {
    const { start, end } = eventTimes(e);
    const open = !end;
    const thumb = e.has_snapshot && e.snapshot_url
      ? this.snapshotLink(e)
      : el('div', { class: 'event-thumb none', 'data-testid': 'event-no-snapshot', text: 'no snapshot' });
    const score = typeof e.top_score === 'number' ? `${(e.top_score * 100).toFixed(0)}%` : '—';
    const zones = (e.zones ?? []).length ? e.zones.join(', ') : '';
    const span = el('span', { 'data-testid': 'event-duration', class: 'event-duration', 'data-start': start ?? '',
      'data-open': String(open) });
    this.setDuration(span, start, end);
    return el('li', { class: 'event', 'data-testid': 'event-item', 'data-id': e.id, 'data-camera': e.camera,
      'data-label': e.label, 'data-open': String(open) },
    thumb,
    el('div', { class: 'event-body' },
      el('div', { class: 'event-head' },
        el('strong', { class: 'event-label', 'data-testid': 'event-label', text: e.label || '—' }),
        el('span', { class: 'event-score', 'data-testid': 'event-score', title: 'top score', text: score }),
        el('span', { class: 'sub' }, 'on ', el('span', { 'data-testid': 'event-camera', text: e.camera })),
        el('span', { class: 'camera-state', 'data-state': open ? 'running' : 'ended', 'data-testid': 'event-status',
          text: open ? 'open' : `ended${e.end_reason ? ` (${e.end_reason.replace(/_/g, ' ')})` : ''}` })),
      el('div', { class: 'sub event-times' },
        el('span', { text: `start ${fmtClock(start)}` }), ' · ',
        el('span', { text: open ? 'still open' : `end ${fmtClock(end)}` }), ' · ', span,
        zones ? ' · ' : null, zones ? el('span', { 'data-testid': 'event-zones', text: `zones: ${zones}` }) : null,
        typeof e.track_id === 'number' ? ` · track ${e.track_id}` : null)));
  }

  snapshotLink(e) {
    const url = apiUrl(e.snapshot_url);
    const img = el('img', { class: 'event-thumb', 'data-testid': 'event-snapshot', loading: 'lazy', decoding: 'async',
      alt: `Snapshot of ${e.label || 'the object'} on ${e.camera} at ${fmtClock(eventTimes(e).start)}` });
    if (this.useKey()) {
      request(e.snapshot_url).then((r) => r.blob()).then((b) => {
        img.src = URL.createObjectURL(b);
        img.addEventListener('load', () => URL.revokeObjectURL(img.src), { once: true });
      }).catch(() => {
        img.alt = `${img.alt} (could not be loaded)`;
      });
      return img;
    }
    img.src = url.href;
    return el('a', { href: url.href, target: '_blank', rel: 'noopener', class: 'event-thumb-link',
      'aria-label': `Open the snapshot of event ${e.id} in a new tab` }, img);
  }

  setDuration(span, start, end) {
    const s = start ? ((end ?? Date.now()) - start) / 1000 : null;
    span.textContent = end ? fmtSpan(s) : `open for ${fmtSpan(Math.max(0, s ?? 0))}`;
  }

  /** Open events' "open for" counters move with each poll. */
  renderDurations() {
    for (const span of this.eventsList.querySelectorAll('[data-testid="event-duration"][data-open="true"]')) {
      this.setDuration(span, Number(span.dataset.start) || null, null);
    }
  }

  /** Renders the list, newest start first, at most `limit` (the stream may add beyond the first page). */
  renderEvents() {
    const sorted = [...this.events.values()].sort((a, b) =>
      (eventTimes(b).start ?? 0) - (eventTimes(a).start ?? 0) || String(b.id).localeCompare(String(a.id)));
    const shown = sorted.slice(0, this.limit);
    for (const e of sorted.slice(this.limit)) this.events.delete(e.id);
    const existing = new Map([...this.eventsList.children].map((li) => [li.dataset.id, li]));
    const items = shown.map((e) => {
      // Unchanged items are kept, so their snapshots are not loaded again on every record.
      const sig = JSON.stringify([e.end, e.end_reason, e.has_snapshot, e.top_score, e.zones, e.label]);
      const li = existing.get(e.id);
      if (li && li.dataset.sig === sig) return li;
      const item = this.eventItem(e);
      item.dataset.sig = sig;
      return item;
    });
    if (!shown.length) {
      const { camera, label } = this.filters();
      const filtered = camera || label;
      items.push(el('li', { class: 'event empty', 'data-testid': 'events-empty',
        text: filtered ? 'No events match these filters.'
          : this.cameraCount ? 'No events yet: they appear here as the cameras see the objects they track.'
            : 'No events in this workspace yet.' }));
    }
    this.eventsList.replaceChildren(...items);
    this.eventsCount.textContent = `${this.total.toLocaleString()} event${this.total === 1 ? '' : 's'}` +
      (shown.length < this.total ? `, newest ${shown.length} shown` : '');
    this.eventsCount.dataset.total = String(this.total);
    this.moreButton.hidden = shown.length >= this.total;
  }
}
