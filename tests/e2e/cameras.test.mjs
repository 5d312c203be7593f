// A camera going offline on the wall map, end to end in a real headless Chromium
// (Debian's `chromium`, driven by playwright-core) against a real `liandong serve` on the
// Dazhu demo map, with the demo configuration but `[cameras] offline_after_s = 60`: a
// checkpoint camera sends one heartbeat (Hikvision's JSON format, through the gateway
// token), the operator's wall map is open, and about a minute later (the server's own
// ticker and clock) the camera is drawn offline, live from the feed's `camera_offline`
// alert, and its card says it is offline and when it was last heard from. Its next
// heartbeat takes the mark off. Takes about 70 s, most of it the silence.
//
//   node --test tests/e2e/cameras.test.mjs
//
// needs `cargo build -p liandong`, `npm ci --prefix web` and `/usr/bin/chromium`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, OPERATOR, CHROMIUM_ARGS, startServer, stopServer } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = path.join(TARGET, 'debug', 'liandong');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** The silence that makes a camera offline here, and how long the test waits for it. */
const OFFLINE_AFTER_S = 60;
const OFFLINE_WITHIN_MS = (OFFLINE_AFTER_S + 20) * 1000;
const UI_MS = 10_000;
const CAMERA = 'cam-001';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-cameras-'));
const configPath = path.join(dataDir, 'cameras.toml');
let server = null;
let baseUrl = null;
let browser = null;

process.on('exit', () => server?.proc.kill('SIGKILL'));

/** A heartbeat as NVRs send it in JSON (an inactive videoloss), dated now. */
function heartbeat() {
  return JSON.stringify({
    ipAddress: '10.23.1.2', macAddress: '3c:1b:f8:38:ba:23', dynChannelID: 33,
    dateTime: new Date().toISOString(), activePostCount: 0,
    eventType: 'videoloss', eventState: 'inactive', eventDescription: 'videoloss alarm',
  });
}

async function push() {
  const res = await fetch(`${baseUrl}/isapi/events?camera=${CAMERA}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: heartbeat(),
  });
  assert.equal(res.status, 200, await res.text());
}

async function waitInPage(page, what, fn, arg, ms) {
  try {
    await page.waitForFunction(fn, arg, { timeout: ms, polling: 200 });
  } catch (e) {
    throw new Error(`${what}: not within ${ms} ms (${e.message})`);
  }
}

before(async () => {
  const demo = fs.readFileSync(path.join(ROOT, 'config/demo.toml'), 'utf8');
  const config = demo.replace(/^offline_after_s = \d+$/m, `offline_after_s = ${OFFLINE_AFTER_S}`);
  assert.notEqual(config, demo, 'the demo configuration has [cameras] offline_after_s');
  fs.writeFileSync(configPath, config);
  server = await startServer({ bin: BIN, root: ROOT, dataDir, config: configPath });
  baseUrl = `http://${server.addr}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await stopServer(server);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a silent camera is drawn offline live and its card says when it was last heard from', { timeout: 180_000 }, async () => {
  await push();
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${baseUrl}/?token=${OPERATOR}`);
  await waitInPage(page, 'the camera statuses load', (id) => window.wallmap?.cameraStatus?.status.get(id)?.status === 'online', CAMERA, UI_MS);
  const offlineDrawn = (id) => window.wallmap.map.querySourceFeatures('camera-status').some((f) => f.properties.id === id);
  assert.equal(await page.evaluate(offlineDrawn, CAMERA), false, 'online: not marked');

  // The silence: the server's ticker raises it; the page hears it from the feed.
  await waitInPage(page, 'the camera is drawn offline', offlineDrawn, CAMERA, OFFLINE_WITHIN_MS);
  const queued = await page.evaluate(() => [...window.wallmap.alerts.alerts.values()].some((a) => a.rule === 'camera_offline'));
  assert.ok(queued, 'the camera_offline alert is in the queue');

  // The camera's card, opened by a click on it: offline, and when it was last heard from.
  const at = await page.evaluate((id) => {
    const m = window.wallmap.map;
    const f = m.querySourceFeatures('camera-status').find((x) => x.properties.id === id);
    m.jumpTo({ center: f.geometry.coordinates, zoom: 14 });
    return f.geometry.coordinates;
  }, CAMERA);
  await page.waitForTimeout(500);
  const point = await page.evaluate((c) => window.wallmap.map.project(c), at);
  const box = await page.locator('#map').boundingBox();
  await page.mouse.click(box.x + point.x, box.y + point.y);
  const card = page.locator(`.camera-card[data-camera="${CAMERA}"]`);
  await card.waitFor({ timeout: UI_MS });
  assert.equal(await card.locator('.camera-status').textContent(), '离线');
  assert.match(await card.locator('.camera-last-seen').textContent(), /^最后上报：.*\d{2}:\d{2}:\d{2}/);

  // Its next heartbeat takes the mark off.
  await push();
  await waitInPage(page, 'the camera is back', (id) => !window.wallmap.map.querySourceFeatures('camera-status').some((f) => f.properties.id === id), CAMERA, UI_MS);
  assert.deepEqual(errors, []);
  await page.close();
});
