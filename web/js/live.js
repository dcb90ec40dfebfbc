// Live page: camera frames grabbed to a canvas, sent as JPEG to /v1/predict one at a time (the next
// frame is grabbed when the previous answer is back, so a slow server lowers the frame rate instead of
// building a backlog), and the detections drawn over the video.

import { ApiError, predict } from './api.js';
import { drawCaption, drawDetections, filterDetections, formatMs } from './draw.js';

const kRequestThreshold = 0.05;
const kMaxFrameWidth = 640;   // enough for the detectors' 320-640 px inputs, small to send
const kJpegQuality = 0.85;
const kFpsWindowMs = 3000;
const kMaxBackoffS = 60;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function cameraErrorMessage(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was denied. Allow the camera for this site in the browser (the camera icon in ' +
        'the address bar or the site settings), then press “Start camera” again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found on this device. The Predict page works without one.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera could not be started: another application may be using it.';
    default:
      return `The camera could not be started: ${err?.message || err}`;
  }
}

/** The Live page's state and behaviour; main.js stops it when another page is shown. */
export class LivePage {
  constructor(root) {
    const $ = (id) => root.querySelector(`[data-testid="${id}"]`);
    this.toggle = $('live-toggle');
    this.video = $('live-video');
    this.overlay = $('live-overlay');
    this.placeholder = $('live-placeholder');
    this.errorBox = $('live-error');
    this.slider = $('live-threshold');
    this.sliderValue = $('live-threshold-value');
    this.out = { fps: $('live-fps'), latency: $('live-latency'), server: $('live-server-ms'), frames: $('live-frames'),
      objects: $('live-objects') };
    this.frame = document.createElement('canvas');
    this.stream = null;
    this.running = false;
    this.starting = false;
    this.abort = null;
    this.session = 0;  // bumped by start() and stop(): a loop still sleeping from an old session ends
    this.answered = 0;
    this.answerTimes = [];
    this.last = null;  // {json, frameW, frameH}: the latest answer, redrawn when the slider moves
    this.modelServed = null;  // false on `vigil ui`

    this.toggle.setAttribute('aria-pressed', 'false');
    this.toggle.addEventListener('click', () => (this.running ? this.stop() : this.start()));
    this.slider.addEventListener('input', () => {
      this.sliderValue.textContent = Number(this.slider.value).toFixed(2);
      this.drawOverlay();
    });
    this.sliderValue.textContent = Number(this.slider.value).toFixed(2);
  }

  isRunning() {
    return this.running;
  }

  /** `vigil ui` serves no model: the camera would only collect 503s, so its button is off. */
  setModelServed(served) {
    this.modelServed = served;
    if (!this.running && !this.starting) this.toggle.disabled = !served;
  }

  showError(message) {
    this.errorBox.textContent = message;
    this.errorBox.hidden = !message;
  }

  resetStats() {
    this.answered = 0;
    this.answerTimes = [];
    this.last = null;
    for (const key of ['fps', 'latency', 'server', 'objects']) this.out[key].textContent = '—';
    this.out.frames.textContent = '0';
    this.out.frames.dataset.count = '0';
  }

  drawOverlay() {
    const { video, overlay, last } = this;
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return;
    if (overlay.width !== w || overlay.height !== h) {
      overlay.width = w;
      overlay.height = h;
    }
    const ctx = overlay.getContext('2d');
    ctx.clearRect(0, 0, w, h);
    if (!last) return;
    const size = { srcW: last.frameW, srcH: last.frameH, dstW: w, dstH: h };
    if (last.json.detections) {
      const dets = filterDetections(last.json.detections, Number(this.slider.value));
      drawDetections(ctx, dets, size);
      this.out.objects.textContent = String(dets.length);
    } else if (last.json.classification) {
      const c = last.json.classification;
      drawCaption(ctx, `${c.label} ${(c.score * 100).toFixed(1)}%`, size);
      this.out.objects.textContent = c.label;
    }
  }

  /** The current video frame, at most kMaxFrameWidth wide, as a JPEG blob (null if encoding failed). */
  grab() {
    const { video, frame } = this;
    const scale = Math.min(1, kMaxFrameWidth / video.videoWidth);
    frame.width = Math.round(video.videoWidth * scale);
    frame.height = Math.round(video.videoHeight * scale);
    frame.getContext('2d').drawImage(video, 0, 0, frame.width, frame.height);
    return new Promise((resolve) => frame.toBlob(resolve, 'image/jpeg', kJpegQuality));
  }

  recordAnswer(json, clientMs, frameW, frameH) {
    const now = performance.now();
    this.answered++;
    this.answerTimes.push(now);
    while (this.answerTimes.length > 2 && now - this.answerTimes[0] > kFpsWindowMs) this.answerTimes.shift();
    if (this.answerTimes.length >= 2) {
      const fps = (this.answerTimes.length - 1) / ((now - this.answerTimes[0]) / 1000);
      this.out.fps.textContent = fps.toFixed(1);
    }
    this.out.latency.textContent = formatMs(clientMs);
    this.out.server.textContent = formatMs(json.timings_ms?.total);
    this.out.frames.textContent = String(this.answered);
    this.out.frames.dataset.count = String(this.answered);
    this.last = { json, frameW, frameH };
    this.drawOverlay();
  }

  /** One frame out, its answer in; false when the loop should end. */
  async step(session) {
    const live = () => this.running && this.session === session;
    if (this.video.readyState < 2 || !this.video.videoWidth) {
      await sleep(50);
      return true;
    }
    const blob = await this.grab();
    if (!live()) return false;
    if (!blob) {
      await sleep(100);
      return true;
    }
    this.abort = new AbortController();
    try {
      const query = { score_threshold: kRequestThreshold };
      const { json, clientMs } = await predict(blob, 'frame.jpg', query, this.abort.signal);
      if (!live()) return false;
      this.showError('');
      this.recordAnswer(json, clientMs, this.frame.width, this.frame.height);
      return true;
    } catch (err) {
      if (err.name === 'AbortError' || !live()) return false;
      this.showError(err instanceof ApiError ? err.describe() : String(err));
      if (err.status === 401 || err.status === 403) {
        this.stop();
        return false;
      }
      // Back off: the server's Retry-After when it sent one (429/503), else a second.
      await sleep(Math.min(kMaxBackoffS, err.retryAfter || 1) * 1000);
      return live();
    }
  }

  async loop(session) {
    while (this.running && this.session === session && (await this.step(session)));
  }

  async start() {
    if (this.running || this.starting || this.modelServed === false) return;
    this.showError('');
    if (!navigator.mediaDevices?.getUserMedia) {
      this.showError('This page cannot use a camera: browsers allow it only on https:// or http://localhost ' +
        'pages. The Predict page works without one.');
      return;
    }
    this.starting = true;
    this.toggle.disabled = true;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      this.video.srcObject = this.stream;
      await this.video.play();
    } catch (err) {
      this.stopTracks();
      this.showError(cameraErrorMessage(err));
      return;
    } finally {
      this.starting = false;
      this.toggle.disabled = false;
    }
    this.running = true;
    this.session++;
    this.resetStats();
    this.placeholder.hidden = true;
    this.toggle.textContent = 'Stop camera';
    this.toggle.setAttribute('aria-pressed', 'true');
    this.loop(this.session);
  }

  stopTracks() {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    this.video.srcObject = null;
  }

  stop() {
    this.running = false;
    this.session++;
    this.abort?.abort();
    this.stopTracks();
    this.overlay.getContext('2d').clearRect(0, 0, this.overlay.width, this.overlay.height);
    this.placeholder.hidden = false;
    this.toggle.textContent = 'Start camera';
    this.toggle.setAttribute('aria-pressed', 'false');
  }
}
