// Browser test of vigil's web UI against the real `vigil serve`, in Debian's headless chromium driven by
// playwright-core (no browser download). Usually started by tests/e2e/run.sh.
//
//   node ui_test.mjs VIGIL_BINARY MODEL IMAGE ARTIFACT_DIR
//
// Starts `vigil serve --model MODEL --port 0 --port-file F`, then: Predict (upload IMAGE, wait for boxes or
// the classifier's label, move the threshold slider and check that the drawing and the box count change
// without a request, download the PNG and the JSON), Live (fake camera, at least 2 frames answered, a
// number for FPS), Status (the model's arch, statistics); then a second server with --api-key: the UI
// explains the 401 and the 403 and works once the key is saved. Screenshots predict.png, live.png,
// status.png, api-key.png and the servers' logs serve.log, serve-api-key.log go to ARTIFACT_DIR. Any
// console error or uncaught page error fails the test (except the 401/403 the API key check provokes).
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
const kStepMs = 60_000;
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

/** `vigil serve` on a free port; resolves to {url, child, log}. */
async function startServer(vigil, model, outDir, { name = 'serve', extraArgs = [] } = {}) {
  const portFile = path.join(outDir, `${name}.port`);
  const logFile = path.join(outDir, `${name}.log`);
  fs.rmSync(portFile, { force: true });
  const args = ['serve', '--model', model, '--host', '127.0.0.1', '--port', '0', '--port-file', portFile, ...extraArgs];
  if (process.env.VIGIL_E2E_WEB_DIR) args.push('--web-dir', process.env.VIGIL_E2E_WEB_DIR);
  const out = fs.openSync(logFile, 'w');
  log(`starting ${vigil} ${args.join(' ')}`);
  const child = spawn(vigil, args, {
    stdio: ['ignore', out, out],
    env: { ...process.env, VIGIL_WORKSPACE: path.join(outDir, 'workspace') },
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
      throw new TestFailure(`vigil serve exited before listening (code ${exited.code}, signal ${exited.signal}); ` +
        `log ${logFile}:\n${tail(logFile)}`);
    }
    const text = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8').trim() : '';
    if (/^\d+$/.test(text) && Number(text) > 0) {
      return { url: `http://127.0.0.1:${Number(text)}`, child, logFile, exited: () => exited };
    }
    await sleep(100);
  }
  throw new TestFailure(`vigil serve wrote no port to ${portFile} within ${kServerStartMs / 1000} s; log:\n${tail(logFile)}`);
}

/** Waits for GET /ready to answer 200: the port can be open before the model is loaded. */
async function waitReady(url) {
  const deadline = Date.now() + kServerStartMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/ready`);
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(200);
  }
  throw new TestFailure(`GET /ready did not answer 200 within ${kServerStartMs / 1000} s; last: ${last}`);
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

async function main() {
  const [vigil, model, image, outDirArg] = process.argv.slice(2);
  if (!outDirArg) {
    console.error('usage: node ui_test.mjs VIGIL_BINARY MODEL IMAGE ARTIFACT_DIR');
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
  for (const f of ['predict.png', 'live.png', 'status.png', 'api-key.png', 'failure.png']) fs.rmSync(path.join(outDir, f), { force: true });

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
  const shots = ['predict.png', 'live.png', 'status.png', 'api-key.png'].filter((f) => fs.existsSync(path.join(outDir, f)));
  console.log(`PASS: UI checked; screenshots in ${outDir}: ${shots.join(' ')}`);
}

main().catch((err) => {
  console.log(`FAIL: ${err.stack || err}`);
  process.exit(1);
});
