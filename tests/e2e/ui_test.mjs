// Browser test of vigil's web UI against the real `vigil serve`, in Debian's headless chromium driven by
// playwright-core (no browser download). Usually started by tests/e2e/run.sh.
//
//   node ui_test.mjs VIGIL_BINARY MODEL IMAGE ARTIFACT_DIR [TRACKING_WORKSPACE] [OPS_DIR]
//
// Starts `vigil serve --model MODEL --port 0 --port-file F`, then: Predict (upload IMAGE, wait for boxes or
// the classifier's label, move the threshold slider and check that the drawing and the box count change
// without a request, download the PNG and the JSON), Live (fake camera, at least 2 frames answered, a
// number for FPS), Status (the model's arch, statistics); then a second server with --api-key: the UI
// explains the 401 and the 403 and works once the key is saved. With TRACKING_WORKSPACE (filled by
// seed_store, whose summary is TRACKING_WORKSPACE.json), `vigil ui` on it: no model (the pages say so),
// Experiments (seeded runs listed, sorting by a metric column reorders, conditions and the experiment
// narrow the list, a bad condition is explained, two runs compared: differing params marked, curves
// drawn), Models (versions and aliases, promote asks and the badge moves, checked through the API, alias
// removal asks too, a version's run link opens the run), and the empty states of Cameras, Datasets, Monitoring
// (off: how to turn it on) and Retrain (off). With OPS_DIR (run.sh: a workspace with the stored dataset
// "shapes", more.zip, broken.zip, retrain.yaml), `vigil serve --model MODEL --monitor-reference (shapes)
// --set retrain_config=retrain.yaml` on that workspace: Datasets (the seeded version with its class counts,
// class chart, validation summary and sample images; more.zip uploaded through the form is a new version in
// the list; broken.zip shows the server's 422), Monitoring (logged traffic and feedback sent from here, "Check
// now": the table's columns, drifted rows and verdict agree with GET /v1/monitor, feedback accuracy 50%) and
// Retrain on the Models page (the job's first epoch row appears, Cancel ends it cancelled, as the API says; a
// one-epoch job runs to its decision: promoted, with the challenger's score, and the registry list follows).
// With VIGIL_E2E_CAMERA_VIDEO
// (run.sh: opencv-doc's vtest.avi) and opencv-data's full-body cascade, `vigil serve --cameras` without a model
// on two looped cameras and one missing file: the Cameras page opens first, the cards show running with a live
// MJPEG picture as wide as the video (VIGIL_E2E_CAMERA_WIDTH, default 768) and rising counters, the missing one
// failed with the server's error; an event arrives through the event stream (no new GET /v1/events) with a
// snapshot that loads; the camera filter narrows the timeline; hiding a video and leaving the page close the
// streams (three visits would exceed the server's 8 streams otherwise). Screenshots predict.png, live.png,
// status.png, api-key.png, cameras-empty.png, experiments.png, compare.png, models.png, datasets.png,
// upload-error.png, monitoring.png, retrain.png, retrain-done.png, cameras.png and the
// servers' logs go to ARTIFACT_DIR. Any console error or uncaught page error fails the test (except the 4xx the
// checks provoke on purpose).
//
// Exit codes: 0 pass, 1 fail, 77 skip (no chromium, no playwright-core).
// Environment: VIGIL_E2E_NODE_DIR = a folder whose node_modules has playwright-core (default: beside this
// file); CHROMIUM = the browser (default /usr/bin/chromium); VIGIL_E2E_WEB_DIR = serve the UI from this
// folder (--web-dir) instead of the binary's embedded copy; VIGIL_E2E_URL = test an already running server
// instead of starting one (VIGIL_BINARY and MODEL are then ignored), with VIGIL_E2E_KEY_URL and
// VIGIL_E2E_KEY for the API key check (skipped without them).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const kSkip = 77;
const kServerStartMs = 180_000;  // model loading on a busy 2-core machine
// A step waits this long for the page at most (a wait, not a timed assertion): once 60 s was not enough while
// ctest's other job and another process shared the 2 cores.
const kStepMs = 120_000;
const here = path.dirname(fileURLToPath(import.meta.url));

function skip(reason) {
  console.log(`SKIP: ${reason}`);
  process.exit(kSkip);
}

class TestFailure extends Error {}

function check(condition, message) {
  if (!condition) throw new TestFailure(message);
}

function log(message) {
  console.log(`[e2e] ${message}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function loadPlaywright() {
  const dirs = [process.env.VIGIL_E2E_NODE_DIR, here].filter(Boolean);
  for (const dir of dirs) {
    try {
      return createRequire(path.join(path.resolve(dir), 'package.json'))('playwright-core');
    } catch {
      // try the next folder
    }
  }
  return null;
}

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * `vigil serve --model MODEL` (or `vigil ui` when `model` is null, or `command`) on a free port in `workspace`
 * (default ARTIFACT_DIR/workspace); resolves to {url, child, log}.
 */
async function startServer(vigil, model, outDir, { name = 'serve', extraArgs = [], workspace, command: given } = {}) {
  const portFile = path.join(outDir, `${name}.port`);
  const logFile = path.join(outDir, `${name}.log`);
  fs.rmSync(portFile, { force: true });
  const command = given ?? (model ? ['serve', '--model', model] : ['ui']);
  const args = [...command, '--host', '127.0.0.1', '--port', '0', '--port-file', portFile, ...extraArgs];
  if (process.env.VIGIL_E2E_WEB_DIR) args.push('--web-dir', process.env.VIGIL_E2E_WEB_DIR);
  const out = fs.openSync(logFile, 'w');
  log(`starting ${vigil} ${args.join(' ')}`);
  const child = spawn(vigil, args, {
    stdio: ['ignore', out, out],
    env: { ...process.env, VIGIL_WORKSPACE: workspace ?? path.join(outDir, 'workspace') },
  });
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  child.on('error', (err) => {
    exited = { code: -1, signal: String(err) };
  });
  const deadline = Date.now() + kServerStartMs;
  while (Date.now() < deadline) {
    if (exited) {
      throw new TestFailure(`vigil ${command[0]} exited before listening (code ${exited.code}, signal ${exited.signal}); ` +
        `log ${logFile}:\n${tail(logFile)}`);
    }
    const text = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8').trim() : '';
    if (/^\d+$/.test(text) && Number(text) > 0) {
      return { url: `http://127.0.0.1:${Number(text)}`, child, logFile, exited: () => exited };
    }
    await sleep(100);
  }
  throw new TestFailure(`vigil ${command[0]} wrote no port to ${portFile} within ${kServerStartMs / 1000} s; log:\n${tail(logFile)}`);
}

/** Waits for GET /ready (or `route`) to answer 200: the port can be open before the model is loaded. */
async function waitReady(url, route = '/ready') {
  const deadline = Date.now() + kServerStartMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}${route}`);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(200);
  }
  throw new TestFailure(`GET ${route} did not answer 200 within ${kServerStartMs / 1000} s; last: ${last}`);
}

/** SIGTERM, then SIGKILL after 15 s; returns how the server ended. */
async function stopServer(server) {
  if (!server || server.exited()) return server?.exited();
  server.child.kill('SIGTERM');
  for (let i = 0; i < 150 && !server.exited(); i++) await sleep(100);
  if (!server.exited()) {
    server.child.kill('SIGKILL');
    for (let i = 0; i < 50 && !server.exited(); i++) await sleep(100);
    return { code: null, signal: 'SIGKILL (did not stop within 15 s of SIGTERM)' };
  }
  return server.exited();
}


async function setSlider(page, id, value) {
  await page.locator(`[data-testid="${id}"]`).evaluate((el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, value);
}

async function resultCanvasData(page) {
  return page.locator('[data-testid="result-canvas"]').first().evaluate((c) => c.toDataURL('image/png'));
}

async function testPredict(page, ctx) {
  ctx.step = 'Predict';
  log('Predict: uploading the image');
  await page.locator('[data-testid="tab-predict"]').click();
  await page.locator('[data-testid="file-input"]').setInputFiles(ctx.image);
  const result = page.locator('[data-testid="result"]').first();
  await page.waitForFunction(() => {
    const r = document.querySelector('[data-testid="result"]');
    return r && (r.dataset.state === 'done' || r.dataset.state === 'error');
  }, null, { timeout: kStepMs });
  if ((await result.getAttribute('data-state')) === 'error') {
    throw new TestFailure(`the prediction failed: ${await result.locator('[data-testid="result-error"]').innerText()}`);
  }
  check(ctx.predictRequests === 1, `expected 1 request to /v1/predict, saw ${ctx.predictRequests}`);

  if (ctx.model.task === 'classification') {
    const label = (await result.locator('[data-testid="class-label"]').innerText()).trim();
    check(ctx.model.classes.includes(label), `the classifier's label "${label}" is not one of ${ctx.model.classes}`);
    log(`Predict: label ${label}`);
  } else {
    const count = async () => Number(await result.locator('[data-testid="box-count"]').getAttribute('data-count'));
    await setSlider(page, 'threshold', 0);
    const all = await count();
    const drawnAll = await resultCanvasData(page);
    check(all >= 1, 'no detections came back at score_threshold=0.05: the test model must give at least one box');
    await setSlider(page, 'threshold', 1);
    const none = await count();
    const drawnNone = await resultCanvasData(page);
    log(`Predict: ${all} boxes at threshold 0, ${none} at threshold 1`);
    check(none < all, `moving the threshold from 0 to 1 left the box count at ${all}`);
    check(drawnAll !== drawnNone, 'moving the threshold did not change the drawn image');
    await setSlider(page, 'threshold', 0.5);
    const mid = await count();
    check(mid <= all && mid >= none, `box count at 0.5 (${mid}) is not between ${none} and ${all}`);
    check(ctx.predictRequests === 1, `moving the slider sent requests: ${ctx.predictRequests} to /v1/predict in all`);
    const timings = await result.locator('[data-testid="result-timings"]').innerText();
    check(/total/.test(timings), `per-image timings missing: "${timings}"`);
  }

  const [jsonDl] = await Promise.all([page.waitForEvent('download'), result.locator('[data-testid="download-json"]').click()]);
  const json = JSON.parse(fs.readFileSync(await jsonDl.path(), 'utf8'));
  check(json.detections || json.classification, 'the downloaded JSON has neither detections nor classification');
  const [pngDl] = await Promise.all([page.waitForEvent('download'), result.locator('[data-testid="download-png"]').click()]);
  const png = fs.readFileSync(await pngDl.path());
  check(png.subarray(1, 4).toString() === 'PNG', 'the downloaded image is not a PNG');
  fs.copyFileSync(await pngDl.path(), path.join(ctx.outDir, 'predict-download.png'));

  // A readable screenshot: about ten boxes rather than all of a random detector's hundred.
  if (json.detections?.length > 10) {
    await setSlider(page, 'threshold', Math.floor(json.detections[9].score * 100) / 100);
  }

  await page.screenshot({ path: path.join(ctx.outDir, 'predict.png'), fullPage: true });
  log('Predict: ok (predict.png)');
}

async function testLive(page, ctx) {
  ctx.step = 'Live';
  log('Live: starting the fake camera');
  await page.locator('[data-testid="tab-live"]').click();
  await page.locator('[data-testid="live-toggle"]').click();
  try {
    await page.waitForFunction(() => {
      const err = document.querySelector('[data-testid="live-error"]');
      if (err && !err.hidden && err.textContent) return true;
      return Number(document.querySelector('[data-testid="live-frames"]').dataset.count) >= 2 &&
        /^\d+(\.\d+)?$/.test(document.querySelector('[data-testid="live-fps"]').textContent.trim());
    }, null, { timeout: kStepMs });
  } catch {
    const frames = await page.locator('[data-testid="live-frames"]').innerText();
    throw new TestFailure(`Live: fewer than 2 frames answered within ${kStepMs / 1000} s (frames: ${frames})`);
  }
  const err = page.locator('[data-testid="live-error"]');
  if (await err.isVisible()) throw new TestFailure(`Live: ${await err.innerText()}`);
  // A readable screenshot: the highest threshold (0.01 steps) that still shows at least 3 boxes.
  await page.evaluate(() => {
    const slider = document.querySelector('[data-testid="live-threshold"]');
    const objects = document.querySelector('[data-testid="live-objects"]');
    for (let t = 100; t >= 0; t--) {
      slider.value = String(t / 100);
      slider.dispatchEvent(new Event('input', { bubbles: true }));
      if (!(Number(objects.textContent) < 3)) break;  // also stops at a classifier's label
    }
  });
  const fps = await page.locator('[data-testid="live-fps"]').innerText();
  const frames = await page.locator('[data-testid="live-frames"]').innerText();
  const latency = await page.locator('[data-testid="live-latency"]').innerText();
  await page.screenshot({ path: path.join(ctx.outDir, 'live.png'), fullPage: true });
  await page.locator('[data-testid="live-toggle"]').click();
  log(`Live: ok, ${frames} frames, ${fps} FPS, latency ${latency} (live.png)`);
}

/** POSTs the test image to /v1/predict from Node, one request at a time, for `ms`. */
async function sendTraffic(ctx, ms) {
  const image = new Blob([fs.readFileSync(ctx.image)], { type: 'application/octet-stream' });
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const form = new FormData();
    form.append('file', image, path.basename(ctx.image));
    const res = await fetch(`${ctx.url}/v1/predict`, { method: 'POST', body: form });
    await res.arrayBuffer();
    check(res.ok, `POST /v1/predict from the test answered ${res.status}`);
    await sleep(200);
  }
}

async function testStatus(page, ctx) {
  ctx.step = 'Status';
  log('Status: waiting for the model and the statistics');
  await page.locator('[data-testid="tab-status"]').click();
  await page.locator('[data-testid="model-arch"]').filter({ hasText: ctx.model.arch }).waitFor({ timeout: kStepMs });
  // Two polls (2 s apart) make the live requests/s line; the requests counter must include ours.
  await page.waitForFunction(() => {
    const n = document.querySelector('[data-testid="stat-requests"]')?.textContent ?? '';
    return Number(n.replace(/[^\d]/g, '')) >= 1;
  }, null, { timeout: kStepMs });
  // Traffic while the page polls, so the live requests/s line has something to show.
  await sendTraffic(ctx, 5000);
  const statusErr = page.locator('[data-testid="status-error"]');
  if (await statusErr.isVisible()) throw new TestFailure(`Status: ${await statusErr.innerText()}`);
  const header = await page.locator('[data-testid="model-name"]').innerText();
  check(header.trim() === ctx.model.name, `header shows model "${header}", the server says "${ctx.model.name}"`);
  const ready = await page.locator('[data-testid="server-status"]').getAttribute('data-state');
  check(ready === 'ready', `header shows the server as "${ready}"`);
  await page.screenshot({ path: path.join(ctx.outDir, 'status.png'), fullPage: true });
  log(`Status: ok, arch ${ctx.model.arch}, ${await page.locator('[data-testid="stat-requests"]').innerText()} requests (status.png)`);
}

function watchPage(page, ctx, { allowedStatuses = [] } = {}) {
  page.setDefaultTimeout(kStepMs);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // Chromium logs every 4xx answer to fetch() itself; the ones a check provokes on purpose are fine.
    const m = /^Failed to load resource: the server responded with a status of (\d+)/.exec(msg.text());
    if (m && allowedStatuses.includes(Number(m[1]))) return;
    ctx.consoleErrors.push(`console: ${msg.text()} (${msg.location()?.url ?? ''})`);
  });
  page.on('pageerror', (err) => ctx.consoleErrors.push(`page error: ${err.message}`));
}

function launchBrowser(playwright, ctx) {
  return playwright.chromium.launch({
    executablePath: ctx.chromium,
    headless: true,
    // A fake camera for the Live page; no background connections (this machine's network is closed).
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--disable-gpu'],
  });
}

async function runBrowser(playwright, url, ctx) {
  const browser = await launchBrowser(playwright, ctx);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    await context.grantPermissions(['camera'], { origin: url });
    const page = await context.newPage();
    watchPage(page, ctx);
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/v1/predict' && !ctx.live) ctx.predictRequests++;
    });
    page.on('requestfailed', (req) => {
      // Aborted live frames on stop are expected; anything else is reported.
      if (!req.failure()?.errorText?.includes('ERR_ABORTED')) ctx.consoleErrors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
    });

    ctx.step = 'loading /ui/ (the header shows the model name)';
    await page.goto(`${url}/ui/`);
    try {
      await page.locator('[data-testid="model-name"]').filter({ hasText: ctx.model.name }).waitFor({ timeout: kStepMs });
      await testPredict(page, ctx);
      ctx.live = true;
      await testLive(page, ctx);
      ctx.live = false;
      await testStatus(page, ctx);
    } catch (err) {
      await page.screenshot({ path: path.join(ctx.outDir, 'failure.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  } finally {
    await browser.close();
  }
}

/** A server started with --api-key: the UI explains 401 and 403 and works once the key is saved. */
async function runApiKeyChecks(playwright, url, key, ctx) {
  ctx.step = 'API key';
  log('API key: server started with --api-key');
  const browser = await launchBrowser(playwright, ctx);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    watchPage(page, ctx, { allowedStatuses: [401, 403] });
    const banner = page.locator('[data-testid="auth-error"]');
    await page.goto(`${url}/ui/`);
    await banner.filter({ hasText: 'API key' }).waitFor();
    check(/401/.test(await banner.innerText()), `the banner does not name the 401: "${await banner.innerText()}"`);

    await page.locator('[data-testid="file-input"]').setInputFiles(ctx.image);
    const result = page.locator('[data-testid="result"]').first();
    await page.locator('[data-testid="result"][data-state="error"]').first().waitFor();
    const error = await result.locator('[data-testid="result-error"]').innerText();
    check(/401/.test(error) && /API key/.test(error), `the 401 on predict is not explained: "${error}"`);
    await page.screenshot({ path: path.join(ctx.outDir, 'api-key.png'), fullPage: true });

    await page.locator('[data-testid="api-key"]').fill(`${key}-wrong`);
    await page.locator('[data-testid="api-key-save"]').click();
    await banner.filter({ hasText: '403' }).waitFor();

    await page.locator('[data-testid="api-key"]').fill(key);
    await page.locator('[data-testid="api-key-save"]').click();
    await banner.waitFor({ state: 'hidden' });
    await page.locator('[data-testid="model-name"]').filter({ hasText: ctx.model.name }).waitFor();
    await result.locator('[data-testid="retry"]').click();
    await page.locator('[data-testid="result"][data-state="done"]').first().waitFor();

    await page.reload();
    const stored = await page.locator('[data-testid="api-key"]').inputValue();
    check(stored === key, 'the API key was not kept in localStorage across a reload');
    await page.locator('[data-testid="model-name"]').filter({ hasText: ctx.model.name }).waitFor();
    check(!(await banner.isVisible()), 'the auth banner shows although the stored key is right');
    log('API key: ok (401 and 403 explained, key saved and sent)');
  } finally {
    await browser.close();
  }
}

// ---- `vigil ui`: Experiments and Models on the seeded workspace ---------------------------------------------

const runRows = (page) => page.locator('[data-testid="runs-table"] [data-testid="run-row"]');

/** The run names of the table, top to bottom. */
async function tableNames(page) {
  return page.locator('[data-testid="runs-table"] [data-testid="run-name"]').allInnerTexts();
}

/** Waits until the table shows exactly `names` in this order. */
async function waitForNames(page, names, what) {
  try {
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('[data-testid="runs-table"] [data-testid="run-name"]')].map((e) => e.textContent);
      return JSON.stringify(got) === JSON.stringify(want);
    }, names, { timeout: kStepMs });
  } catch {
    throw new TestFailure(`${what}: expected the runs ${names.join(', ')}, the table shows ${(await tableNames(page)).join(', ')}`);
  }
}

/** Counts the canvas pixels close to each colour, to tell that a run's curve was drawn. */
async function colourPixels(canvas, colours) {
  return canvas.evaluate((c, hexes) => {
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    const rgb = hexes.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
    const counts = hexes.map(() => 0);
    for (let p = 0; p < data.length; p += 4) {
      rgb.forEach(([r, g, b], k) => {
        if (Math.abs(data[p] - r) < 24 && Math.abs(data[p + 1] - g) < 24 && Math.abs(data[p + 2] - b) < 24 && data[p + 3] > 200) counts[k]++;
      });
    }
    return counts;
  }, colours);
}

async function testNoModelPages(page) {
  const state = await page.locator('[data-testid="server-status"]').getAttribute('data-state');
  check(state === 'no-model', `the header shows the server as "${state}", expected "no-model"`);
  await page.locator('[data-testid="tab-predict"]').click();
  await page.locator('[data-testid="predict-no-model"]').waitFor({ state: 'visible' });
  await page.locator('[data-testid="tab-live"]').click();
  await page.locator('[data-testid="live-no-model"]').waitFor({ state: 'visible' });
  check(await page.locator('[data-testid="live-toggle"]').isDisabled(), 'the camera button is enabled although no model is served');
  await page.locator('[data-testid="tab-experiments"]').click();
  log('no model: the header, Predict and Live say so');
}

async function testRunsTable(page, ctx) {
  const byStart = ['masks-cnn', 'guns-diverged', 'guns-sgd-fast', 'guns-sgd-slow', 'guns-adam'];
  const byAccuracy = ['masks-cnn', 'guns-sgd-fast', 'guns-adam', 'guns-sgd-slow', 'guns-diverged'];
  await waitForNames(page, byStart, 'newest first');
  const total = await page.locator('[data-testid="runs-count"]').getAttribute('data-total');
  check(total === '5', `the runs count says ${total}, the workspace has 5 runs`);

  await page.locator('[data-testid="sort-metrics.val_accuracy"]').click();
  await waitForNames(page, byAccuracy, 'sorted by val_accuracy, descending');
  const sort = await page.locator('th:has([data-testid="sort-metrics.val_accuracy"])').getAttribute('aria-sort');
  check(sort === 'descending', `the val_accuracy column's aria-sort is "${sort}"`);
  await page.locator('[data-testid="sort-metrics.val_accuracy"]').click();
  await waitForNames(page, [...byAccuracy].reverse(), 'sorted by val_accuracy, ascending');
  await page.locator('[data-testid="sort-metrics.val_accuracy"]').click();
  await waitForNames(page, byAccuracy, 'sorted by val_accuracy, descending again');
  await page.screenshot({ path: path.join(ctx.outDir, 'experiments.png'), fullPage: true });

  await page.locator('[data-testid="runs-filter"]').fill('metrics.val_accuracy > 0.9');
  await page.locator('[data-testid="runs-apply"]').click();
  await waitForNames(page, ['masks-cnn', 'guns-sgd-fast', 'guns-adam'], 'filtered by metrics.val_accuracy > 0.9');
  await page.locator('[data-testid="runs-experiment"]').selectOption('guns');
  await waitForNames(page, ['guns-sgd-fast', 'guns-adam'], 'filtered by the condition and experiment guns');
  await page.locator('[data-testid="runs-filter"]').fill('params.optimizer.lr = 0.0001');
  await page.locator('[data-testid="runs-apply"]').click();
  await waitForNames(page, ['guns-sgd-slow'], 'filtered by params.optimizer.lr = 0.0001');

  await page.locator('[data-testid="runs-filter"]').fill('metrics.val_accuracy >> 1');
  await page.locator('[data-testid="runs-apply"]').click();
  const error = page.locator('[data-testid="runs-error"]');
  await error.waitFor({ state: 'visible' });
  check(/400/.test(await error.innerText()), `a bad condition is not explained as a 400: "${await error.innerText()}"`);
  await page.locator('[data-testid="runs-reset"]').click();
  await waitForNames(page, byStart, 'after Reset');
  check(!(await error.isVisible()), 'the error stays after Reset');
  log('Experiments: listed, sorted by a metric, filtered (condition, experiment, param), bad condition explained');
}

async function testCompare(page, ctx) {
  for (const name of ['guns-adam', 'guns-sgd-slow']) {
    await runRows(page).filter({ has: page.locator('[data-testid="run-name"]', { hasText: new RegExp(`^${name}$`) }) })
      .locator('[data-testid="run-select"]').check();
  }
  const compare = page.locator('[data-testid="runs-compare"]');
  check(/\(2\)/.test(await compare.innerText()), `the compare button says "${await compare.innerText()}"`);
  await compare.click();
  const panel = page.locator('[data-testid="compare"]');
  await panel.locator('[data-testid="compare-param-row"]').first().waitFor();
  const differs = async (key) => panel.locator(`[data-testid="compare-param-row"][data-key="${key}"]`).getAttribute('data-differs');
  check(await differs('optimizer.lr') === 'true', 'optimizer.lr (0.001 vs 0.0001) is not marked as differing');
  check(await differs('optimizer.name') === 'true', 'optimizer.name (adam vs sgd) is not marked as differing');
  check(await differs('epochs') === 'false', 'epochs (8 and 8) is marked as differing');
  const metricRow = panel.locator('[data-testid="compare-metric-row"][data-key="val_accuracy"] td');
  check((await metricRow.allInnerTexts()).join(' ') === '0.91 0.84', `val_accuracy side by side: ${(await metricRow.allInnerTexts()).join(' ')}`);

  const chart = panel.locator('[data-testid="curve-chart"][data-key="val_accuracy"]');
  await chart.waitFor();
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="compare"] figure.curve')?.dataset.points) > 0,
    null, { timeout: kStepMs });
  await panel.scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);  // the smooth scroll and the redraw after layout
  const [first, second] = await colourPixels(chart, ['#2563eb', '#dc2626']);
  check(first > 200 && second > 200, `the overlaid curves are not both drawn (pixels of run 1: ${first}, run 2: ${second})`);
  await page.screenshot({ path: path.join(ctx.outDir, 'compare.png'), fullPage: true });

  await runRows(page).locator('[data-testid="run-name"]', { hasText: /^guns-adam$/ }).click();
  const detail = page.locator('[data-testid="run-detail"]');
  await detail.locator('[data-testid="run-detail-id"]').filter({ hasText: ctx.seed.runs['guns-adam'] }).waitFor();
  await detail.locator('[data-testid="curve-chart"]').first().waitFor();
  log('Compare: differing params marked, metrics side by side, curves overlaid; a run\'s details open');
}

async function apiAliases(ctx) {
  const res = await fetch(`${ctx.uiUrl}/v1/registry/models/guns`);
  check(res.ok, `GET /v1/registry/models/guns answered ${res.status}`);
  return (await res.json()).aliases;
}

async function testModels(page, ctx) {
  await page.locator('[data-testid="tab-models"]').click();
  await page.locator('[data-testid="model-detail-name"]').filter({ hasText: 'guns' }).waitFor();
  const rows = page.locator('[data-testid="version-row"]');
  check(await rows.count() === 3, `the Models page shows ${await rows.count()} versions of guns, expected 3`);
  const badge = (version, alias) => page.locator(`[data-testid="version-row"][data-version="${version}"] [data-testid="alias-badge"][data-alias="${alias}"]`);
  await badge(1, 'production').waitFor();
  await badge(2, 'staging').waitFor();

  await page.locator('[data-testid="version-row"][data-version="3"] [data-testid="promote"]').click();
  const dialog = page.locator('[data-testid="promote-dialog"]');
  await dialog.waitFor();
  const summary = await dialog.locator('[data-testid="promote-summary"]').innerText();
  check(/from version 1 to version 3/.test(summary), `the promote dialog does not say from which version to which: "${summary}"`);
  await page.screenshot({ path: path.join(ctx.outDir, 'promote-dialog.png'), fullPage: true });
  await dialog.locator('[data-testid="promote-confirm"]').click();
  await badge(3, 'production').waitFor();
  check(await badge(1, 'production').count() === 0, 'the production badge is still on version 1');
  const message = await page.locator('[data-testid="models-message"]').innerText();
  check(/from version 1 to version 3/.test(message), `no confirmation of the move: "${message}"`);
  const aliases = await apiAliases(ctx);
  check(aliases.production === 3, `the API says production -> ${aliases.production} after the promotion`);
  await page.screenshot({ path: path.join(ctx.outDir, 'models.png'), fullPage: true });

  // Cancelling changes nothing.
  await page.locator('[data-testid="version-row"][data-version="2"] [data-testid="promote"]').click();
  await dialog.locator('[data-testid="promote-cancel"]').click();
  await dialog.waitFor({ state: 'detached' });
  check((await apiAliases(ctx)).production === 3, 'cancelling the promote dialog moved the alias');

  await badge(2, 'staging').locator('[data-testid="alias-remove"]').click();
  const confirm = page.locator('[data-testid="remove-alias-dialog"]');
  await confirm.waitFor();
  check(/version 2/.test(await confirm.innerText()), 'the remove dialog does not name the version');
  await confirm.locator('[data-testid="remove-alias-dialog-confirm"]').click();
  await badge(2, 'staging').waitFor({ state: 'detached' });
  check(!('staging' in await apiAliases(ctx)), 'the API still has staging after its removal');

  await page.locator('[data-testid="version-row"][data-version="3"] [data-testid="version-run"]').click();
  await page.locator('[data-testid="page-experiments"]').waitFor({ state: 'visible' });
  await page.locator('[data-testid="run-detail-id"]').filter({ hasText: ctx.seed.runs['guns-sgd-fast'] }).waitFor();
  log('Models: versions and aliases shown; promote asked, moved production 1 -> 3 (API agrees); staging removed; lineage link opens the run');
}

/** On `vigil ui` (no model, no datasets, no monitoring, no retrain config): each new page says what it needs. */
async function testOpsEmpty(page) {
  await page.locator('[data-testid="tab-datasets"]').click();
  const noData = page.locator('[data-testid="datasets-empty"]');
  await noData.waitFor({ state: 'visible' });
  check(/vigil data ingest/.test(await noData.innerText()), `the Datasets empty state does not say how: "${await noData.innerText()}"`);
  await page.locator('[data-testid="tab-monitoring"]').click();
  const off = page.locator('[data-testid="monitor-empty"]');
  await off.waitFor({ state: 'visible' });
  check(/--monitor-reference/.test(await off.innerText()), `the Monitoring empty state does not say how: "${await off.innerText()}"`);
  check(await page.locator('[data-testid="monitor-check"]').isDisabled(), '"Check now" is enabled although monitoring is off');
  check(await page.locator('[data-testid="drift-row"]').count() === 0, 'drift rows on a server without monitoring');
  await page.locator('[data-testid="tab-models"]').click();
  await page.locator('[data-testid="retrain-off"]').waitFor({ state: 'visible' });
  check(await page.locator('[data-testid="retrain-start"]').isDisabled(), 'the retrain button is enabled although retraining is off');
  await page.locator('[data-testid="tab-experiments"]').click();
  log('vigil ui: Datasets, Monitoring and Retrain explain what they need');
}

/** `vigil ui` on the seeded workspace: the no-model pages, Experiments, Compare and Models. */
async function runTrackingChecks(playwright, url, ctx) {
  ctx.uiUrl = url;
  const browser = await launchBrowser(playwright, ctx);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    // The bad condition, and the 404s that tell the pages monitoring and retraining are off, on purpose.
    watchPage(page, ctx, { allowedStatuses: [400, 404] });
    ctx.step = 'vigil ui: the Experiments page opens first';
    await page.goto(`${url}/ui/`);
    await page.locator('[data-testid="page-experiments"]').waitFor({ state: 'visible' });
    try {
      ctx.step = 'vigil ui: no model';
      await testNoModelPages(page);
      ctx.step = 'vigil ui: no cameras';
      await testCamerasEmpty(page, ctx);
      ctx.step = 'vigil ui: no datasets, monitoring or retraining';
      await testOpsEmpty(page);
      ctx.step = 'Experiments';
      await testRunsTable(page, ctx);
      ctx.step = 'Compare';
      await testCompare(page, ctx);
      ctx.step = 'Models';
      await testModels(page, ctx);
    } catch (err) {
      await page.screenshot({ path: path.join(ctx.outDir, 'failure.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  } finally {
    await browser.close();
  }
}

// ---- Datasets, Monitoring and Retrain: `vigil serve` on the ops workspace ----------------------------------------

const kShapesImages = 40;  // run.sh: vigil data synth --images 40 --classes 2, ingested as "shapes"
const kMoreImages = 12;    // run.sh: more.zip

async function apiJson(ctx, route, init) {
  const res = await fetch(`${ctx.opsUrl}${route}`, init);
  const text = await res.text();
  check(res.ok, `${init?.method ?? 'GET'} ${route} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Logged traffic for the drift check: `count` predictions, then feedback on two (one right, one wrong). */
async function seedTraffic(ctx, count) {
  const image = new Blob([fs.readFileSync(ctx.image)], { type: 'application/octet-stream' });
  for (let i = 0; i < count; i++) {
    const form = new FormData();
    form.append('file', image, path.basename(ctx.image));
    await apiJson(ctx, '/v1/predict', { method: 'POST', body: form });
  }
  const { predictions } = await apiJson(ctx, '/v1/predictions?limit=2');
  check(predictions.length === 2, `GET /v1/predictions lists ${predictions.length} rows after ${count} predictions`);
  const feedback = (id, correct) => apiJson(ctx, `/v1/predictions/${id}/feedback`, { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(correct ? { correct } : { correct, label: 'knife' }) });
  await feedback(predictions[0].id, true);
  await feedback(predictions[1].id, false);
}

async function testDatasets(page, ctx) {
  ctx.step = 'Datasets: the seeded version';
  const [seeded] = (await apiJson(ctx, '/v1/datasets/shapes')).versions;
  await page.locator('[data-testid="tab-datasets"]').click();
  await page.locator('[data-testid="dataset-detail-name"]').filter({ hasText: `shapes@${seeded.short_id}` }).waitFor();
  const versions = page.locator('[data-testid="dataset-item"][data-name="shapes"] [data-testid="dataset-version"]');
  check(await versions.count() === 1, `the list shows ${await versions.count()} versions of shapes, the workspace has 1`);
  check((await page.locator('[data-testid="dataset-images"]').innerText()).trim() === String(kShapesImages),
    `the version shows ${await page.locator('[data-testid="dataset-images"]').innerText()} images, ${kShapesImages} were ingested`);
  const detail = await apiJson(ctx, `/v1/datasets/shapes/versions/${seeded.id}`);
  const counts = await page.locator('[data-testid="class-row"]').evaluateAll((rows) => rows.map((r) =>
    [r.dataset.class, Number(r.querySelector('[data-testid="class-count"]').textContent)]));
  const expected = detail.stats.classes.map((c) => [c.name, c.images]);
  check(JSON.stringify(counts) === JSON.stringify(expected) && counts.reduce((a, [, n]) => a + n, 0) === kShapesImages,
    `class counts ${JSON.stringify(counts)}, the server says ${JSON.stringify(expected)} (${kShapesImages} in all)`);
  const chart = page.locator('[data-testid="chart-class-shares"]');
  await chart.scrollIntoViewIfNeeded();
  const [first, second] = await colourPixels(chart, ['#2563eb', '#dc2626']);
  check(first > 200 && second > 200, `the class chart's bars are not both drawn (pixels: ${first}, ${second})`);
  await page.locator('[data-testid="chart-splits"]').waitFor();
  // The stored split (run.sh: --val 0.3 of 40): each side's class counts add up to its size, as the server says.
  const sides = await page.locator('[data-testid="split-row"][data-split="default"]').evaluateAll((trs) => trs.map((tr) => ({
    side: tr.dataset.side, images: Number(tr.querySelector('[data-testid="split-images"]').textContent),
    classes: [...tr.querySelectorAll('[data-testid="split-class-count"]')].map((td) => Number(td.textContent)) })));
  const split = detail.splits.default;
  const wantSides = ['train', 'val'].map((side) => ({ side, images: split[side], classes: split.classes[side] }));
  check(JSON.stringify(sides) === JSON.stringify(wantSides) && split.train + split.val === kShapesImages &&
    sides.every((r) => r.classes.reduce((a, b) => a + b, 0) === r.images),
  `the split table shows ${JSON.stringify(sides)}, the server ${JSON.stringify(wantSides)}`);
  const validation = page.locator('[data-testid="validation-summary"]');
  check(await validation.getAttribute('data-errors') === String(detail.validation.summary.errors),
    `the validation summary says ${await validation.getAttribute('data-errors')} errors, the server ${detail.validation.summary.errors}`);
  // Sample images that load, of both classes.
  await page.locator('[data-testid="samples"]').scrollIntoViewIfNeeded();
  try {
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('[data-testid="sample-image"]')];
      return imgs.length >= 2 && imgs.every((i) => i.complete && i.naturalWidth === 48);
    }, null, { timeout: kStepMs });
  } catch {
    throw new TestFailure('the sample images did not all load as 48 px images');
  }
  const labels = new Set(await page.locator('[data-testid="sample"] figcaption strong').allInnerTexts());
  check(detail.class_names.every((c) => labels.has(c)), `the samples show labels ${[...labels]}, not every class of ${detail.class_names}`);
  const detailText = await page.locator('[data-testid="dataset-detail"]').innerText();
  check(!/\b(null|undefined|NaN)\b/.test(detailText), `the version's page shows a missing value: "${detailText}"`);
  await page.screenshot({ path: path.join(ctx.outDir, 'datasets.png'), fullPage: true });

  ctx.step = 'Datasets: uploading an archive makes a new version';
  const result = page.locator('[data-testid="upload-result"]');
  await page.locator('[data-testid="upload-name"]').fill('shapes');
  await page.locator('[data-testid="upload-files"]').setInputFiles(path.join(ctx.opsDir, 'more.zip'));
  await page.locator('[data-testid="upload-submit"]').click();
  await page.locator('[data-testid="upload-result"][data-state="done"], [data-testid="upload-result"][data-state="error"]').waitFor();
  check(await result.getAttribute('data-state') === 'done', `the upload failed: ${await result.innerText()}`);
  const after = (await apiJson(ctx, '/v1/datasets/shapes')).versions;
  check(after.length === 2, `the server has ${after.length} versions of shapes after the upload`);
  const added = after[1];
  check(added.images === kMoreImages && await result.getAttribute('data-id') === added.id &&
    (await result.innerText()).includes(`shapes@${added.short_id}`),
  `the upload message "${await result.innerText()}" does not name the new version shapes@${added.short_id}`);
  await page.locator('[data-testid="dataset-detail-name"]').filter({ hasText: `shapes@${added.short_id}` }).waitFor();
  check(await versions.count() === 2, `the list shows ${await versions.count()} versions of shapes after the upload`);
  check(await page.locator(`[data-testid="dataset-version"][data-id="${added.id}"]`).getAttribute('aria-current') === 'true',
    'the new version is not the selected one');

  ctx.step = 'Datasets: a file that is not an archive';
  await page.locator('[data-testid="upload-files"]').setInputFiles(path.join(ctx.opsDir, 'broken.zip'));
  await page.locator('[data-testid="upload-submit"]').click();
  await page.locator('[data-testid="upload-result"][data-state="error"]').waitFor();
  const said = await result.innerText();
  // The same request from here: the page must show what the server said, not a message of its own.
  const form = new FormData();
  form.append('files', new Blob([fs.readFileSync(path.join(ctx.opsDir, 'broken.zip'))]), 'broken.zip');
  const direct = await fetch(`${ctx.opsUrl}/v1/datasets/shapes/upload`, { method: 'POST', body: form });
  const server = await direct.json();
  check(direct.status >= 400 && direct.status < 500 && server.error, `uploading broken.zip answered ${direct.status}`);
  // The scratch folder the message names differs per request.
  const scratch = (text) => text.replace(/\/\S*?\/upload-[\d-]+\/[^\s:]*/g, 'SCRATCH');
  check(said.includes(`${direct.status} `) && scratch(said).includes(scratch(server.error)),
    `the page says "${said}", the server "${direct.status} ${server.error}"`);
  check((await apiJson(ctx, '/v1/datasets/shapes')).versions.length === 2, 'the refused upload added a version');
  await page.screenshot({ path: path.join(ctx.outDir, 'upload-error.png'), fullPage: true });
  log(`Datasets: shapes@${seeded.short_id} with class counts, chart, validation and samples; more.zip -> ` +
    `shapes@${added.short_id} (${kMoreImages} images); broken.zip -> "${said.split('\n')[0].slice(0, 120)}"`);
}

async function testMonitoring(page, ctx) {
  ctx.step = 'Monitoring: Check now';
  await page.locator('[data-testid="tab-monitoring"]').click();
  await page.locator('[data-testid="monitor-checked"]').filter({ hasText: /check/ }).waitFor();
  check(await page.locator('[data-testid="monitor-empty"]').isHidden(), 'the page says monitoring is off on a server with a reference');
  await page.locator('[data-testid="monitor-check"]').click();
  const rows = page.locator('[data-testid="drift-row"]');
  await rows.first().waitFor();
  await page.locator('[data-testid="monitor-check"]:not([disabled])').waitFor();
  const { report } = await apiJson(ctx, '/v1/monitor');
  check(report?.enough_data && report.columns.length >= 5,
    `the server's report has ${report?.columns?.length} columns, enough_data ${report?.enough_data}`);
  const shown = await rows.evaluateAll((trs) => trs.map((tr) => ({ column: tr.dataset.column, drifted: tr.dataset.drifted === 'true',
    test: tr.querySelector('[data-testid="drift-test"]').textContent, red: tr.classList.contains('drifted') &&
      getComputedStyle(tr.querySelector('td')).backgroundColor !== 'rgba(0, 0, 0, 0)',
    badge: tr.querySelector('[data-testid="drift-drifted"]').textContent })));
  const want = report.columns.map((c) => ({ column: c.column, drifted: c.drifted, test: c.test }));
  check(JSON.stringify(shown.map(({ column, drifted, test }) => ({ column, drifted, test }))) === JSON.stringify(want),
    `the table shows ${JSON.stringify(shown)}, the server's report ${JSON.stringify(want)}`);
  check(shown.every((r) => r.red === r.drifted && r.badge === (r.drifted ? 'yes' : 'no')),
    `drifted rows are not exactly the highlighted "yes" rows: ${JSON.stringify(shown)}`);
  check(shown.some((r) => r.drifted), 'no column drifted: one repeated 480x360 image against 48x48 shapes must drift');
  const verdict = page.locator('[data-testid="drift-verdict"]');
  check(await verdict.getAttribute('data-state') === (report.dataset_drift ? 'drift' : 'ok'),
    `the verdict is "${await verdict.getAttribute('data-state')}", dataset_drift is ${report.dataset_drift}`);
  check((await verdict.innerText()).includes(`${report.drifted_columns} of ${report.columns.length} columns`),
    `the verdict "${await verdict.innerText()}" does not count ${report.drifted_columns} of ${report.columns.length}`);
  const accuracy = await page.locator('[data-testid="feedback-accuracy"]').innerText();
  check(/^50%/.test(accuracy) && /1 of 2/.test(accuracy), `feedback accuracy "${accuracy}": one of two marked predictions was right`);
  const reportText = await page.locator('[data-testid="monitor-report"]').innerText();
  check(!/\b(null|undefined|NaN)\b/.test(reportText), `the report shows a missing value: "${reportText}"`);
  // A column's distributions open on click.
  await rows.first().click();
  await page.locator(`[data-testid="drift-distribution"][data-column="${want[0].column}"]`).waitFor();
  await page.screenshot({ path: path.join(ctx.outDir, 'monitoring.png'), fullPage: true });
  log(`Monitoring: ${report.drifted_columns} of ${report.columns.length} columns drifted (${report.dataset_drift ? 'drift' : 'no drift'}), ` +
    `table agrees with GET /v1/monitor, feedback ${accuracy}`);
}

async function testRetrain(page, ctx) {
  ctx.step = 'Retrain: start';
  await page.locator('[data-testid="tab-models"]').click();
  const start = page.locator('[data-testid="retrain-start"]');
  await start.waitFor();
  check(await page.locator('[data-testid="retrain-off"]').isHidden(), 'the page says retraining is off on a server with retrain_config');
  await page.locator('[data-testid="retrain-dataset"]').fill('shapes@zz');
  await start.click();
  const error = page.locator('[data-testid="retrain-error"]');
  await error.waitFor({ state: 'visible' });
  check(/Dataset version/.test(await error.innerText()), `a bad dataset reference is not explained: "${await error.innerText()}"`);
  const [seeded] = (await apiJson(ctx, '/v1/datasets/shapes')).versions;
  await page.locator('[data-testid="retrain-dataset"]').fill(`shapes@${seeded.short_id}`);
  await start.click();
  const job = page.locator('[data-testid="job"]');
  await page.locator('[data-testid="job"][data-state="running"], [data-testid="job"][data-state="queued"]').waitFor();
  const id = await job.getAttribute('data-id');
  const { jobs } = await apiJson(ctx, '/v1/jobs');
  check(jobs[0]?.id === id, `the page follows job ${id}, the server's newest is ${jobs[0]?.id}`);
  check(jobs[0].request.set.includes(`data.dataset=shapes@${seeded.short_id}`),
    `the job's request ${JSON.stringify(jobs[0].request)} lacks the chosen dataset version`);

  ctx.step = 'Retrain: the first epoch shows, then Cancel';
  try {
    await page.locator('[data-testid="job-progress-row"]').first().waitFor({ timeout: kStepMs });
  } catch {
    const api = await apiJson(ctx, `/v1/jobs/${id}`);
    throw new TestFailure(`no epoch row within ${kStepMs / 1000} s; the job is ${api.state}, log:\n${api.log_tail?.slice(-800)}`);
  }
  const epochText = await page.locator('[data-testid="job-epoch"]').innerText();
  check(/^epoch \d+$/.test(epochText), `the job's epoch reads "${epochText}"`);
  const progressKeys = await page.locator('[data-testid="job-progress"] thead th').allInnerTexts();
  check(progressKeys.includes('epoch') && progressKeys.some((k) => /loss/.test(k)), `the progress table has columns ${progressKeys}`);
  await page.screenshot({ path: path.join(ctx.outDir, 'retrain.png'), fullPage: true });
  await page.locator('[data-testid="job-cancel"]').click();
  await page.locator('[data-testid="job"][data-state="cancelled"]').waitFor();
  const decision = await page.locator('[data-testid="job-decision"]').innerText();
  check(/Cancelled/.test(decision) && /no alias moved/.test(decision), `the ended job says "${decision}"`);
  const ended = await apiJson(ctx, `/v1/jobs/${id}`);
  check(ended.state === 'cancelled', `the server says the job is ${ended.state}`);
  check(await page.locator('[data-testid="job-cancel"]').count() === 0, 'the Cancel button stays after the job ended');
  check(!/\b(null|undefined|NaN)\b/.test(await job.innerText()), `the job panel shows a missing value: "${await job.innerText()}"`);

  // One epoch to the end (about 10 s): no champion yet, so the challenger is promoted with its score.
  ctx.step = 'Retrain: a one-epoch job to the decision';
  await page.locator('[data-testid="retrain-epochs"]').fill('1');
  await start.click();
  await page.locator(`[data-testid="job"]:not([data-id="${id}"])`).waitFor();
  const second = await job.getAttribute('data-id');
  try {
    await page.locator('[data-testid="job-decision"]').waitFor({ timeout: 2 * kStepMs });
  } catch {
    const api = await apiJson(ctx, `/v1/jobs/${second}`);
    throw new TestFailure(`job ${second} did not end within ${2 * kStepMs / 1000} s: ${api.state}, log:\n${api.log_tail?.slice(-800)}`);
  }
  const done = await apiJson(ctx, `/v1/jobs/${second}`);
  check(done.state === 'promoted' && done.challenger?.version === 1 && done.request.set.includes('epochs=1'),
    `the one-epoch job ended ${done.state} with challenger ${JSON.stringify(done.challenger)} (request ${JSON.stringify(done.request)})`);
  const text = await page.locator('[data-testid="job-decision"]').innerText();
  const score = String(Number(done.challenger.score.toPrecision(4)));
  check(await job.getAttribute('data-state') === 'promoted' && text.includes(`version ${done.challenger.version}`) &&
    text.includes(`${done.metric} ${score}`), `the decision says "${text}"; the server: promoted version 1, ${done.metric} ${score}`);
  // The registry reloads when a job ends: the new version and its alias are listed.
  await page.locator('[data-testid="version-row"][data-version="1"] [data-testid="alias-badge"][data-alias="production"]').waitFor();
  await page.screenshot({ path: path.join(ctx.outDir, 'retrain-done.png'), fullPage: true });
  log(`Retrain: job ${id} started on shapes@${seeded.short_id}, ${epochText} shown, cancelled (the API agrees); ` +
    `job ${second} (epochs 1): "${text}"`);
}

/** `vigil serve` with a drift reference and retraining on the ops workspace: Datasets, Monitoring, Retrain. */
async function runOpsChecks(playwright, url, ctx) {
  ctx.opsUrl = url;
  ctx.step = 'Monitoring: logged traffic and feedback';
  await seedTraffic(ctx, 8);
  const browser = await launchBrowser(playwright, ctx);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    watchPage(page, ctx, { allowedStatuses: [422] });  // broken.zip, on purpose
    await page.goto(`${url}/ui/`);
    await page.locator('[data-testid="model-name"]').filter({ hasText: ctx.model.name }).waitFor();
    try {
      await testDatasets(page, ctx);
      await testMonitoring(page, ctx);
      await testRetrain(page, ctx);
    } catch (err) {
      await page.screenshot({ path: path.join(ctx.outDir, 'failure.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  } finally {
    await browser.close();
  }
}

// ---- `vigil serve --cameras`: the Cameras page on a looped video ----------------------------------------------

const kCascade = 'haarcascade_fullbody';
const kCascadeFile = `/usr/share/opencv4/haarcascades/${kCascade}.xml`;

/**
 * cameras.yaml for the Cameras page: two cameras on the looped video sharing OpenCV's full-body cascade (it fires
 * on vtest.avi's walkers within seconds; no model file), and one whose file does not exist (state failed).
 */
function writeCamerasYaml(file, video, missing) {
  const detect = `{model: "opencv:${kCascade}", fps: 2}`;
  fs.writeFileSync(file, `cameras:
  lobby:
    source: {url: ${JSON.stringify(video)}, loop: true}
    detect: ${detect}
  hall:
    source: {url: ${JSON.stringify(video)}, loop: true}
    detect: ${detect}
  broken:
    source: {url: ${JSON.stringify(missing)}}
    detect: ${detect}
`);
}

const card = (page, name) => page.locator(`[data-testid="camera-card"][data-name="${name}"]`);

/** Waits until the camera's card shows a live MJPEG picture `width` pixels wide. */
async function waitLivePicture(page, name, width, what) {
  try {
    await page.waitForFunction(([n, w]) => {
      const c = document.querySelector(`[data-testid="camera-card"][data-name="${n}"]`);
      const img = c?.querySelector('[data-testid="camera-image"]');
      return c?.dataset.stream === 'live' && img?.naturalWidth === w;
    }, [name, width], { timeout: kStepMs });
  } catch {
    const state = await card(page, name).evaluate((c) => ({ stream: c.dataset.stream, state: c.dataset.state,
      width: c.querySelector('img').naturalWidth, note: c.querySelector('[data-testid="camera-note"]').textContent }))
      .catch((e) => String(e));
    throw new TestFailure(`${what}: camera ${name} shows no live ${width} px picture: ${JSON.stringify(state)}`);
  }
}

async function counts(page, name) {
  return card(page, name).evaluate((c) => ({
    frames: Number(c.querySelector('[data-testid="camera-frames"]').dataset.count),
    detected: Number(c.querySelector('[data-testid="camera-detected"]').dataset.count),
  }));
}

/** The event list's items as [{id, camera}]. */
async function listedEvents(page) {
  return page.locator('[data-testid="events-list"] [data-testid="event-item"]')
    .evaluateAll((items) => items.map((li) => ({ id: li.dataset.id, camera: li.dataset.camera })));
}

/** Picks `camera` in the filter and waits until the list shows only its events (at least `min`) or says none match. */
async function filterByCamera(page, camera, min) {
  await page.locator('[data-testid="events-camera"]').selectOption(camera);
  try {
    await page.waitForFunction(([cam, n]) => {
      const list = document.querySelector('[data-testid="events-list"]');
      if (list.getAttribute('aria-busy') === 'true') return false;
      const items = [...list.querySelectorAll('[data-testid="event-item"]')];
      if (n === 0) return items.length === 0 && Boolean(list.querySelector('[data-testid="events-empty"]'));
      return items.length >= n && items.every((li) => !cam || li.dataset.camera === cam);
    }, [camera, min], { timeout: kStepMs });
  } catch {
    throw new TestFailure(`filtering the events by camera "${camera}": the list shows ${JSON.stringify(await listedEvents(page))}`);
  }
}

async function testCameras(page, ctx) {
  ctx.step = 'Cameras: the page opens first on a server with cameras and no model';
  await page.locator('[data-testid="page-cameras"]').waitFor({ state: 'visible' });
  const header = await page.locator('[data-testid="server-status"]').innerText();
  check(/cameras/.test(header), `the header says "${header}" on a server that watches cameras without a model`);

  ctx.step = 'Cameras: live pictures';
  await page.locator('[data-testid="camera-card"][data-name="lobby"][data-state="running"]').waitFor();
  check((await card(page, 'lobby').locator('[data-testid="camera-state"]').innerText()) === 'running',
    'the lobby badge does not say running');
  await waitLivePicture(page, 'lobby', ctx.cameraWidth, 'first visit');
  await waitLivePicture(page, 'hall', ctx.cameraWidth, 'first visit');

  ctx.step = 'Cameras: the failed camera';
  const broken = card(page, 'broken');
  await page.locator('[data-testid="camera-card"][data-name="broken"][data-state="failed"]').waitFor();
  const brokenError = broken.locator('[data-testid="camera-error"]');
  await brokenError.waitFor({ state: 'visible' });
  const brokenText = await brokenError.innerText();
  const res = await fetch(`${ctx.camerasUrl}/v1/cameras/broken`);
  const lastError = (await res.json()).last_error;
  check(res.ok && lastError, `GET /v1/cameras/broken answered ${res.status} with last_error "${lastError}"`);
  check(/failed/.test(brokenText) && brokenText.includes(lastError),
    `the failed camera's error box does not give the server's error "${lastError}": "${brokenText}"`);
  check(await broken.getAttribute('data-stream') === 'none', 'a stream was opened for the failed camera');

  ctx.step = 'Cameras: counters rise';
  const before = await counts(page, 'lobby');
  try {
    await page.waitForFunction(([n, b]) => {
      const c = document.querySelector(`[data-testid="camera-card"][data-name="${n}"]`);
      const v = (id) => Number(c.querySelector(`[data-testid="camera-${id}"]`).dataset.count);
      return v('frames') > b.frames && v('detected') > b.detected;
    }, ['lobby', before], { timeout: kStepMs });
  } catch {
    throw new TestFailure(`the lobby counters did not rise from ${JSON.stringify(before)}: ${JSON.stringify(await counts(page, 'lobby'))}`);
  }
  const after = await counts(page, 'lobby');
  log(`Cameras: lobby running, ${ctx.cameraWidth} px live picture, frames ${before.frames} -> ${after.frames}, ` +
    `detected ${before.detected} -> ${after.detected}; broken failed: ${brokenText.split('\n')[0]}`);

  ctx.step = 'Cameras: events from the stream';
  await page.locator('[data-testid="events-live"][data-state="live"]').waitFor();
  // The page reloads the list when the stream opens (records from before it are not sent): let that answer.
  await page.waitForFunction(() => document.querySelector('[data-testid="events-list"]').dataset.loads === '0');
  const listRequests = ctx.eventListRequests;
  const known = new Set((await listedEvents(page)).map((e) => e.id));
  try {
    await page.waitForFunction((ids) => [...document.querySelectorAll('[data-testid="events-list"] [data-testid="event-item"]')]
      .some((li) => !ids.includes(li.dataset.id)), [...known], { timeout: kStepMs });
  } catch {
    throw new TestFailure(`no new event appeared in the timeline (listed: ${known.size})`);
  }
  check(ctx.eventListRequests === listRequests,
    `the new event came from ${ctx.eventListRequests - listRequests} GET /v1/events, not from the event stream`);
  // A snapshot that loads: the event's best frame, from /v1/events/{id}/snapshot.jpg.
  try {
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="event-snapshot"]')]
      .some((img) => img.complete && img.naturalWidth > 0), null, { timeout: kStepMs });
  } catch {
    throw new TestFailure('no event snapshot in the timeline loaded');
  }
  const first = page.locator('[data-testid="event-item"]').first();
  check(/^\d+%$/.test(await first.locator('[data-testid="event-score"]').innerText()), 'the newest event shows no score');
  check((await first.locator('[data-testid="event-label"]').innerText()) === 'person', 'the newest event is not a person');
  check(/\d/.test(await first.locator('[data-testid="event-duration"]').innerText()), 'the newest event shows no duration');

  ctx.step = 'Cameras: the camera filter';
  // Both cameras see the same walkers: wait until each has an event, then each filter shows only its own.
  await page.waitForFunction(() => {
    const cams = new Set([...document.querySelectorAll('[data-testid="event-item"]')].map((li) => li.dataset.camera));
    return cams.has('lobby') && cams.has('hall');
  }, null, { timeout: kStepMs }).catch(async () => {
    throw new TestFailure(`the timeline does not show events of both cameras: ${JSON.stringify(await listedEvents(page))}`);
  });
  await filterByCamera(page, 'hall', 1);
  await filterByCamera(page, 'lobby', 1);
  await filterByCamera(page, 'broken', 0);
  await filterByCamera(page, '', 2);
  const total = Number(await page.locator('[data-testid="events-count"]').getAttribute('data-total'));
  check(total >= 2, `the events count says ${total}`);
  await page.screenshot({ path: path.join(ctx.outDir, 'cameras.png'), fullPage: true });

  ctx.step = 'Cameras: hiding a camera\'s video closes its stream';
  const toggle = card(page, 'hall').locator('[data-testid="camera-video-toggle"]');
  await toggle.click();
  check(await toggle.getAttribute('aria-expanded') === 'false', 'the video toggle is not aria-expanded=false');
  check(await card(page, 'hall').locator('[data-testid="camera-image"]').getAttribute('src') === null,
    'the hidden camera\'s <img> still has its stream URL');
  await toggle.click();
  await waitLivePicture(page, 'hall', ctx.cameraWidth, 'shown again');

  // Leaving the page closes every stream: three visits open 3 x 3 streams, more than the server's 8, so a
  // leak shows as a 503 (a console error) and a picture that is not live.
  for (let visit = 2; visit <= 3; visit++) {
    ctx.step = `Cameras: leaving the page closes the streams (visit ${visit})`;
    await page.locator('[data-testid="tab-live"]').click();
    const open = await page.locator('[data-testid="camera-image"]').evaluateAll((imgs) => imgs.filter((i) => i.getAttribute('src')).length);
    check(open === 0, `${open} camera pictures keep their URL on another page`);
    check(await page.locator('[data-testid="events-live"]').getAttribute('data-state') === 'off',
      'the event stream stays open on another page');
    await page.locator('[data-testid="tab-cameras"]').click();
    await waitLivePicture(page, 'lobby', ctx.cameraWidth, `visit ${visit}`);
    await waitLivePicture(page, 'hall', ctx.cameraWidth, `visit ${visit}`);
    await page.locator('[data-testid="events-live"][data-state="live"]').waitFor();
  }
  log(`Cameras: events from the stream with snapshots, camera filter, ${total} events; streams closed when hidden ` +
    '(cameras.png)');
}

/** `vigil serve --cameras` (no model): the Cameras page. */
async function runCameraChecks(playwright, url, ctx) {
  ctx.camerasUrl = url;
  const browser = await launchBrowser(playwright, ctx);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    watchPage(page, ctx);
    ctx.eventListRequests = 0;
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/v1/events') ctx.eventListRequests++;
    });
    page.on('requestfailed', (req) => {
      // Streams closed on purpose (leaving the page, hiding a video) end as aborted requests.
      if (!req.failure()?.errorText?.includes('ERR_ABORTED')) ctx.consoleErrors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
    });
    await page.goto(`${url}/ui/`);
    try {
      await testCameras(page, ctx);
    } catch (err) {
      await page.screenshot({ path: path.join(ctx.outDir, 'failure.png'), fullPage: true }).catch(() => {});
      throw err;
    }
  } finally {
    await browser.close();
  }
}

/** On `vigil ui` (no cameras): the Cameras page says how to start some. */
async function testCamerasEmpty(page, ctx) {
  await page.locator('[data-testid="tab-cameras"]').click();
  const empty = page.locator('[data-testid="cameras-empty"]');
  await empty.waitFor({ state: 'visible' });
  check(/vigil serve --cameras cameras\.yaml/.test(await empty.innerText()), `the empty state does not say how: "${await empty.innerText()}"`);
  await page.locator('[data-testid="events-empty"]').waitFor();
  check(await page.locator('[data-testid="camera-card"]').count() === 0, 'camera cards on a server without cameras');
  await page.screenshot({ path: path.join(ctx.outDir, 'cameras-empty.png'), fullPage: true });
  await page.locator('[data-testid="tab-experiments"]').click();
  log('Cameras: the empty state on vigil ui says to start vigil serve --cameras');
}

async function main() {
  const [vigil, model, image, outDirArg, trackingWs, opsDir] = process.argv.slice(2);
  if (!outDirArg) {
    console.error('usage: node ui_test.mjs VIGIL_BINARY MODEL IMAGE ARTIFACT_DIR [TRACKING_WORKSPACE] [OPS_DIR]');
    process.exit(2);
  }
  const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(chromium)) skip(`${chromium} is missing (Debian package chromium)`);
  const playwright = loadPlaywright();
  if (!playwright) skip('playwright-core is not installed (npm ci in tests/e2e, or VIGIL_E2E_NODE_DIR)');
  if (!fs.existsSync(image)) {
    console.log(`FAIL: no image ${image}`);
    process.exit(1);
  }
  const outDir = path.resolve(outDirArg);
  fs.mkdirSync(outDir, { recursive: true });
  const shotNames = ['predict.png', 'live.png', 'status.png', 'api-key.png', 'cameras-empty.png', 'experiments.png',
    'compare.png', 'promote-dialog.png', 'models.png', 'datasets.png', 'upload-error.png', 'monitoring.png', 'retrain.png',
    'retrain-done.png',
    'cameras.png'];
  for (const f of [...shotNames, 'failure.png']) fs.rmSync(path.join(outDir, f), { force: true });

  const ctx = { chromium, image: path.resolve(image), outDir, consoleErrors: [], predictRequests: 0, live: false };
  let server = null;
  let failure = null;
  const onSignal = async (sig) => {
    await stopServer(server);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const apiKey = 'e2e-key-0123456789';
  try {
    let url = process.env.VIGIL_E2E_URL?.replace(/\/$/, '');
    if (!url) {
      check(fs.existsSync(vigil), `no vigil binary ${vigil}`);
      check(fs.existsSync(model), `no model ${model}`);
      server = await startServer(path.resolve(vigil), path.resolve(model), outDir);
      url = server.url;
    }
    log(`server at ${url}`);
    ctx.url = url;
    await waitReady(url);
    const res = await fetch(`${url}/v1/models`);
    const body = await res.text();
    check(res.ok, `GET /v1/models answered ${res.status}: ${body}`);
    ctx.model = JSON.parse(body).models?.[0];
    check(ctx.model?.arch && ctx.model?.name, `GET /v1/models has no model with name and arch`);
    log(`model ${ctx.model.name} ${ctx.model.version} (${ctx.model.arch}, ${ctx.model.task})`);
    await runBrowser(playwright, url, ctx);

    ctx.step = 'stopping vigil serve with SIGTERM';
    const ended = await stopServer(server);
    check(!ended || ended.code === 0, `vigil serve did not exit 0 on SIGTERM (code ${ended?.code}, signal ${ended?.signal})`);
    let keyUrl = process.env.VIGIL_E2E_KEY_URL?.replace(/\/$/, '');
    const key = process.env.VIGIL_E2E_KEY || apiKey;
    if (!keyUrl && !process.env.VIGIL_E2E_URL) {
      server = await startServer(path.resolve(vigil), path.resolve(model), outDir,
        { name: 'serve-api-key', extraArgs: ['--api-key', key] });
      keyUrl = server.url;
      await waitReady(keyUrl);
    }
    if (keyUrl) await runApiKeyChecks(playwright, keyUrl, key, ctx);
    if (trackingWs && !process.env.VIGIL_E2E_URL) {
      ctx.step = 'stopping the API key server, starting vigil ui';
      const keyEnded = await stopServer(server);
      check(!keyEnded || keyEnded.code === 0, `vigil serve --api-key did not exit 0 on SIGTERM (code ${keyEnded?.code})`);
      ctx.seed = JSON.parse(fs.readFileSync(`${trackingWs}.json`, 'utf8'));
      server = await startServer(path.resolve(vigil), null, outDir, { name: 'ui', workspace: path.resolve(trackingWs) });
      await waitReady(server.url, '/health');
      await runTrackingChecks(playwright, server.url, ctx);
    }
    if (opsDir && !process.env.VIGIL_E2E_URL) {
      ctx.step = 'stopping the previous server, starting vigil serve on the ops workspace';
      const prevEnded = await stopServer(server);
      check(!prevEnded || prevEnded.code === 0, `the previous server did not exit 0 on SIGTERM (code ${prevEnded?.code})`);
      ctx.opsDir = path.resolve(opsDir);
      server = await startServer(path.resolve(vigil), path.resolve(model), outDir, {
        name: 'serve-ops',
        workspace: path.join(ctx.opsDir, 'ws'),
        extraArgs: ['--monitor-reference', path.join(ctx.opsDir, 'shapes'), '--set', 'monitor_min_current=5',
          '--set', `retrain_config=${path.join(ctx.opsDir, 'retrain.yaml')}`, '--set', 'retrain_model=shapes'],
      });
      await waitReady(server.url);
      await runOpsChecks(playwright, server.url, ctx);
    }
    const video = process.env.VIGIL_E2E_CAMERA_VIDEO;
    if (process.env.VIGIL_E2E_URL) {
      log('Cameras: skipped (VIGIL_E2E_URL: the test starts no server of its own)');
    } else if (!video || !fs.existsSync(video)) {
      log(`Cameras: skipped (no video ${video || '(VIGIL_E2E_CAMERA_VIDEO unset)'}; Debian package opencv-doc)`);
    } else if (!fs.existsSync(kCascadeFile)) {
      log(`Cameras: skipped (no ${kCascadeFile}; Debian package opencv-data)`);
    } else {
      ctx.step = 'stopping the previous server, starting vigil serve --cameras';
      const prevEnded = await stopServer(server);
      check(!prevEnded || prevEnded.code === 0, `the previous server did not exit 0 on SIGTERM (code ${prevEnded?.code})`);
      const camerasWs = path.join(outDir, 'cameras-ws');
      fs.rmSync(camerasWs, { recursive: true, force: true });
      const camerasYaml = path.join(outDir, 'cameras.yaml');
      ctx.missingVideo = path.join(outDir, 'no-such-video.avi');
      ctx.cameraWidth = Number(process.env.VIGIL_E2E_CAMERA_WIDTH || 768);
      writeCamerasYaml(camerasYaml, path.resolve(video), ctx.missingVideo);
      server = await startServer(path.resolve(vigil), null, outDir,
        { name: 'serve-cameras', command: ['serve', '--cameras', camerasYaml], workspace: camerasWs });
      await waitReady(server.url, '/health');
      await runCameraChecks(playwright, server.url, ctx);
    }
    ctx.step = 'console errors';
    check(ctx.consoleErrors.length === 0, `the page logged errors:\n  ${ctx.consoleErrors.join('\n  ')}`);
  } catch (err) {
    failure = err;
  }
  if (!failure) ctx.step = 'stopping vigil serve with SIGTERM';
  const ended = await stopServer(server);
  if (!failure && ended && ended.code !== 0) {
    failure = new TestFailure(`vigil serve did not exit 0 on SIGTERM (code ${ended.code}, signal ${ended.signal})`);
  }
  if (failure) {
    const message = failure instanceof TestFailure ? failure.message : failure.stack || String(failure);
    console.log(`FAIL${ctx.step ? ` (${ctx.step})` : ''}: ${message}`);
    if (fs.existsSync(path.join(outDir, 'failure.png'))) console.log(`screenshot: ${path.join(outDir, 'failure.png')}`);
    if (server) console.log(`server log: ${server.logFile}`);
    if (ctx.consoleErrors.length && !message.includes('logged errors')) console.log(`page errors:\n  ${ctx.consoleErrors.join('\n  ')}`);
    process.exit(1);
  }
  const shots = shotNames.filter((f) => fs.existsSync(path.join(outDir, f)));
  console.log(`PASS: UI checked; screenshots in ${outDir}: ${shots.join(' ')}`);
}

main().catch((err) => {
  console.log(`FAIL: ${err.stack || err}`);
  process.exit(1);
});
