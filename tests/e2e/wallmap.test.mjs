// The wall map end to end, in a real headless Chromium (Debian's `chromium`, driven by
// playwright-core): a real `liandong serve` process on the Dazhu demo map, with a fresh
// data directory and an ephemeral loopback port, and the page as the server serves it.
//
//   node tests/e2e/wallmap.test.mjs
//
// needs `cargo build` (the binary is `$CARGO_TARGET_DIR/debug/liandong`, default
// `target/debug/liandong`), `npm ci --prefix web` and `/usr/bin/chromium` (scripts/test
// sees to all three). It writes docs/screenshots/wallmap-zh.png and wallmap-en.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = path.join(TARGET, 'debug', 'liandong');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'docs/screenshots');
const ADMIN = 'demo-admin-token';
const OPERATOR = 'demo-operator-token';
const GRID = 'demo-grid-token';
/** Every wait in this test is bounded; the budget for the live updates is 2 s. */
const LIVE_MS = 2000;

/**
 * Flags that work on a machine with no GPU and no network (ENVIRONMENT.md). playwright
 * adds `--headless` itself, and a fresh `--user-data-dir` for every launch.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-dev-shm-usage',
  // MapLibre needs WebGL: with no GPU, ANGLE's SwiftShader renders it in software.
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-wallmap-'));
let server = null;
let baseUrl = null;
let browser = null;
let page = null;
/** Every URL the page requested, and every websocket it opened. */
const requested = [];
const sockets = [];
const pageErrors = [];

// The server must not outlive the test, however it ends.
process.on('exit', () => server?.proc.kill('SIGKILL'));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server?.proc.kill('SIGKILL');
    process.exit(130);
  });
}

/** Starts `liandong serve` on the demo configuration; resolves once it logs its address. */
function startServer(listen = '127.0.0.1:0') {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: run cargo build first (CARGO_TARGET_DIR is honoured)`);
  const proc = spawn(BIN, ['serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      LIANDONG_CONFIG: path.join(ROOT, 'config/demo.toml'),
      LIANDONG_LISTEN: listen,
      LIANDONG_DATA_DIR: dataDir,
      LIANDONG_MAPS: path.join(ROOT, 'maps/dazhu'),
      LIANDONG_WEB_DIR: path.join(ROOT, 'web'),
      LIANDONG_LOG: 'info',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${log.join('\n')}`)), 60_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${log.join('\n')}`));
    });
    readline.createInterface({ input: proc.stderr }).on('line', (line) => {
      log.push(line);
      const m = /listening.*addr=(\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, addr: m[1], log });
      }
    });
  });
}

/** Stops the server: SIGTERM, then SIGKILL after 10 s. */
async function stopServer() {
  if (!server) return;
  const { proc } = server;
  server = null;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function api(method, urlPath, token, body) {
  const res = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${urlPath}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A report exactly as Traccar Client sends it (OsmAnd over HTTP GET, speed in knots). */
async function osmand(id, key, lon, lat, timestampS, speedKn = 0) {
  const q = new URLSearchParams({ id, timestamp: String(timestampS), lat: String(lat), lon: String(lon), speed: String(speedKn), bearing: '90', accuracy: '8', batt: '87', key });
  const res = await fetch(`${baseUrl}/osmand?${q}`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, `osmand: ${await res.text()}`);
}

const readLayer = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'maps/dazhu', `${name}.geojson`), 'utf8'));

/**
 * A plausible picture for the screenshots: a leader and a member of every patrol team on
 * their route, an officer at every post (one of them not heard from for half an hour),
 * and a few alerts.
 */
async function seed() {
  const routes = readLayer('routes').features;
  const posts = readLayer('posts').features;
  const devices = [];
  const positions = [];
  const now = Date.now();
  routes.forEach((r, i) => {
    const line = r.geometry.coordinates;
    for (const [j, role] of ['patrol_leader', 'patrol_member'].entries()) {
      const id = `e2e-${r.properties.team_id}-${j}`;
      const at = line[Math.floor(((i * 7 + j * 11) % 17) / 17 * (line.length - 1))];
      devices.push({ device_id: id, name: `${r.properties.team_name} ${j === 0 ? '队长' : '队员'}`, kind: role, unit_id: r.properties.team_id, key: `key-${id}` });
      positions.push({ device_id: id, lon: at[0], lat: at[1], time: now - 20_000, speed_mps: j === 0 ? 1.3 : 0.2, accuracy_m: 8 });
    }
  });
  posts.forEach((p, i) => {
    const id = `e2e-${p.properties.id}`;
    const [lon, lat] = p.geometry.coordinates;
    devices.push({ device_id: id, name: `${p.properties.name} 民警`, kind: 'post_officer', unit_id: p.properties.id, key: `key-${id}` });
    const stale = i === 3;
    positions.push({ device_id: id, lon: lon + 0.004, lat: lat - 0.003, time: now - (stale ? 30 * 60_000 : 30_000), speed_mps: 0, accuracy_m: 10 });
  });
  for (const d of devices) await api('POST', '/api/v1/devices', ADMIN, d);
  const res = await api('POST', '/api/v1/positions', ADMIN, { positions });
  assert.equal(res.rejected.length, 0, JSON.stringify(res.rejected));

  await api('POST', '/api/v1/watchlist', ADMIN, { watch_id: 'e2e-w-theft', kind: 'plate', value: '川S·3K901', reason: '被盗车辆', priority: 2, roles: ['operator'] });
  await api('POST', '/api/v1/alerts', ADMIN, { camera_id: 'cam-010', time: new Date(now - 5 * 60_000).toISOString(), kind: 'anpr', plate: '川S3K901', confidence: 96 });
  await api('POST', '/api/v1/reports', GRID, { category: 'dispute', text: '邻里宅基地纠纷，双方情绪激动', lon: 107.2052, lat: 30.7402 });
  await api('POST', '/api/v1/reports', GRID, { category: 'hazard', text: '村道边坡落石', lon: 107.1531, lat: 30.6513 });
  return devices.length;
}

/** Waits for a condition in the page, bounded; the message says what did not happen. */
async function waitInPage(what, fn, arg, timeout) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    throw new Error(`${what}: not within ${timeout} ms (${e.message.split('\n')[0]})`);
  }
}

/** The unit's feature as the map's GeoJSON source holds it, or null. */
function unitFeature(deviceId) {
  return page.evaluate((id) => {
    const f = window.wallmap.map.querySourceFeatures('units', { filter: ['==', ['get', 'device_id'], id] })[0];
    return f ? { coordinates: f.geometry.coordinates, status: f.properties.status } : null;
  }, deviceId);
}

before(async () => {
  server = await startServer();
  baseUrl = `http://${server.addr}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  page = await context.newPage();
  page.on('request', (r) => requested.push(r.url()));
  page.on('websocket', (ws) => {
    const s = { url: ws.url(), frames: [] };
    sockets.push(s);
    ws.on('framereceived', (f) => s.frames.push(typeof f.payload === 'string' ? f.payload : ''));
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // A style MapLibre refuses is reported on the console, not thrown: count those too. The
  // refused connections while the server is down (the offline test) are expected.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/.test(m.text())) pageErrors.push(m.text());
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopServer();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the wall map, live, in headless Chromium', { timeout: 240_000 }, async (t) => {
  const seeded = await seed();

  await t.test('loads the county: boundary and townships in the map, drawn on a non-blank canvas', async () => {
    await page.goto(`${baseUrl}/?token=${OPERATOR}`, { timeout: 30_000 });
    await waitInPage('the map is ready', () => document.documentElement.dataset.state === 'ready', null, 30_000);
    await waitInPage('the live feed is connected', () => document.documentElement.dataset.feed === 'live', null, 10_000);
    // The token left the address bar and was remembered.
    assert.ok(!page.url().includes('token='), page.url());

    const layers = await page.evaluate(() => {
      const m = window.wallmap.map;
      const rendered = (ids) => m.queryRenderedFeatures({ layers: ids }).length;
      return {
        boundary: m.querySourceFeatures('boundary').length,
        townships: new Set(m.querySourceFeatures('townships').map((f) => f.properties.id)).size,
        boundaryRendered: rendered(['boundary-fill']),
        townshipsRendered: new Set(m.queryRenderedFeatures({ layers: ['townships-fill'] }).map((f) => f.properties.id)).size,
        posts: rendered(['posts-circle']),
        roads: rendered(['roads-line']),
        cameras: rendered(['cameras-checkpoint', 'cameras-skynet', 'cameras-sharp_eyes', 'cameras-huiyan', 'cameras-face', 'cameras-parking']),
        labels: document.querySelectorAll('.place-label').length,
      };
    });
    assert.ok(layers.boundary >= 1 && layers.boundaryRendered >= 1, JSON.stringify(layers));
    assert.equal(layers.townships, 31, JSON.stringify(layers));
    assert.equal(layers.townshipsRendered, 31, `every township is on screen: ${JSON.stringify(layers)}`);
    assert.equal(layers.posts, 26, JSON.stringify(layers));
    assert.ok(layers.roads > 50 && layers.cameras > 150, JSON.stringify(layers));
    assert.equal(layers.labels, 31, JSON.stringify(layers));

    // Pixels: read the WebGL drawing buffer during a render, before it is presented.
    const pixels = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const m = window.wallmap.map;
          m.once('render', () => {
            const gl = m.getCanvas().getContext('webgl2') ?? m.getCanvas().getContext('webgl');
            const w = gl.drawingBufferWidth;
            const h = gl.drawingBufferHeight;
            const buf = new Uint8Array(w * h * 4);
            gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, buf);
            const colours = new Set();
            let lit = 0;
            for (let i = 0; i < buf.length; i += 4 * 7) {
              colours.add((buf[i] << 16) | (buf[i + 1] << 8) | buf[i + 2]);
              // The background is #050d17; anything clearly brighter is drawn map.
              if (buf[i] + buf[i + 1] + buf[i + 2] > 5 + 13 + 23 + 30) lit += 1;
            }
            resolve({ w, h, colours: colours.size, litShare: lit / (buf.length / 4 / 7) });
          });
          m.triggerRepaint();
        }),
    );
    assert.ok(pixels.w >= 1400 && pixels.h >= 900, JSON.stringify(pixels));
    assert.ok(pixels.colours > 50, `the canvas shows a map, not a flat colour: ${JSON.stringify(pixels)}`);
    assert.ok(pixels.litShare > 0.2, `the county covers the canvas: ${JSON.stringify(pixels)}`);

    const units = await page.evaluate(() => new Set(window.wallmap.map.querySourceFeatures('units').map((f) => f.properties.device_id)).size);
    assert.equal(units, seeded, 'every seeded unit is on the map');
  });

  await t.test('a report posted over HTTP (OsmAnd) moves the unit on the map within 2 s', async (t) => {
    await api('POST', '/api/v1/devices', ADMIN, { device_id: '866001', name: '石河镇巡防队 王队长', kind: 'patrol_leader', unit_id: 'team-01', key: 'e2e-key-866001' });
    const nowS = Math.floor(Date.now() / 1000);
    await osmand('866001', 'e2e-key-866001', 107.2048, 30.7361, nowS - 60, 2.0);
    // A point near a tile's edge is in both tiles: querySourceFeatures may list it twice.
    await waitInPage('the new unit appears', (id) => window.wallmap.map.querySourceFeatures('units', { filter: ['==', ['get', 'device_id'], id] }).length >= 1, '866001', LIVE_MS);

    const [lon, lat] = [107.2101, 30.7392];
    const sent = Date.now();
    await osmand('866001', 'e2e-key-866001', lon, lat, nowS, 2.0);
    await waitInPage(
      'the unit moves to its new fix',
      ([id, x, y]) => {
        const f = window.wallmap.map.querySourceFeatures('units', { filter: ['==', ['get', 'device_id'], id] })[0];
        return f && Math.abs(f.geometry.coordinates[0] - x) < 1e-4 && Math.abs(f.geometry.coordinates[1] - y) < 1e-4;
      },
      ['866001', lon, lat],
      LIVE_MS - (Date.now() - sent),
    );
    t.diagnostic(`unit moved on the map ${Date.now() - sent} ms after the report was sent`);
    const f = await unitFeature('866001');
    assert.equal(f.status, 'moving', JSON.stringify(f));
  });

  await t.test('a watch-list hit appears in the alert queue within 2 s', async (t) => {
    await api('POST', '/api/v1/watchlist', ADMIN, { watch_id: 'e2e-w-1', kind: 'plate', value: '川S·52101', reason: '涉案车辆', priority: 1, roles: ['operator'] });
    const sent = Date.now();
    const ack = await api('POST', '/api/v1/alerts', ADMIN, { camera_id: 'cam-001', time: new Date().toISOString(), kind: 'anpr', plate: '川S52101', confidence: 97 });
    assert.equal(typeof ack.alert_seq, 'number', `the read raised an alert: ${JSON.stringify(ack)}`);
    const selector = `#alert-queue li.alert[data-seq="${ack.alert_seq}"]`;
    await waitInPage('the alert is in the queue', (sel) => document.querySelector(sel) !== null, selector, Math.max(1, LIVE_MS - (Date.now() - sent)));
    t.diagnostic(`alert in the queue ${Date.now() - sent} ms after the push was sent`);
    const item = await page.$eval(selector, (li) => ({ text: li.textContent, first: li.parentElement.firstElementChild === li, fresh: li.classList.contains('fresh') }));
    assert.match(item.text, /布控车辆/, item.text);
    assert.match(item.text, /川S52101/, item.text);
    assert.match(item.text, /涉案车辆/, item.text);
    assert.ok(item.first, 'a new priority 1 alert is at the top of the queue');
    assert.ok(item.fresh, 'a new alert flashes');
    const onMap = await page.evaluate((seq) => window.wallmap.map.querySourceFeatures('alerts').some((f) => f.properties.seq === seq), ack.alert_seq);
    assert.ok(onMap, 'the alert is on the map');
  });

  await t.test('screenshots at 1920×1080 in Chinese and in English', async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    // Not `idle`: a new alert's flash keeps the map repainting for a while.
    await waitInPage('the map has its tiles', () => window.wallmap.map.areTilesLoaded() && !window.wallmap.map.isMoving(), null, 10_000);
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(SHOTS, 'wallmap-zh.png') });
    assert.equal(await page.textContent('#topbar h1'), '大竹县社会治理联动指挥中心');

    await page.click('#lang-button');
    await waitInPage('the page switches to English', () => document.documentElement.lang === 'en', null, 2000);
    assert.equal(await page.textContent('#topbar h1'), 'Dazhu County Linkage Command Centre');
    assert.match(await page.textContent('#alert-queue'), /Watch-listed plate/);
    assert.ok(page.url().includes('lang=en'), page.url());
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(SHOTS, 'wallmap-en.png') });
    for (const name of ['wallmap-zh.png', 'wallmap-en.png']) {
      assert.ok(fs.statSync(path.join(SHOTS, name)).size > 100_000, `${name} holds a picture`);
    }
    // The choice survives a reload; `?lang=zh` brings Chinese back.
    await page.goto(`${baseUrl}/?lang=zh`, { timeout: 30_000 });
    await waitInPage('the map is ready again', () => document.documentElement.dataset.state === 'ready', null, 30_000);
    assert.equal(await page.textContent('#topbar h1'), '大竹县社会治理联动指挥中心');
  });

  await t.test('offline: the page shows it, reconnects by itself with `since` and gets what it missed', async () => {
    await waitInPage('the live feed is connected', () => document.documentElement.dataset.feed === 'live', null, 10_000);
    const before = sockets.length;
    const addr = server.addr;
    await stopServer();
    await waitInPage('the offline banner shows', () => !document.getElementById('offline-banner').hidden, null, 5000);
    assert.match(await page.textContent('#offline-banner'), /重连/);

    server = await startServer(addr);
    // Reported while the page is still offline: the reconnect must replay it.
    await osmand('866001', 'e2e-key-866001', 107.2155, 30.7421, Math.floor(Date.now() / 1000), 2.0);
    await waitInPage('the page reconnects', () => document.documentElement.dataset.feed === 'live', null, 15_000);
    await waitInPage(
      'the missed report moves the unit',
      ([id, x, y]) => {
        const f = window.wallmap.map.querySourceFeatures('units', { filter: ['==', ['get', 'device_id'], id] })[0];
        return f && Math.abs(f.geometry.coordinates[0] - x) < 1e-4 && Math.abs(f.geometry.coordinates[1] - y) < 1e-4;
      },
      ['866001', 107.2155, 30.7421],
      5000,
    );
    assert.ok(await page.isHidden('#offline-banner'));
    const reconnect = sockets.slice(before).find((s) => s.frames.some((f) => f.includes('"type":"replayed"')));
    assert.ok(reconnect, `a reconnect was answered with a replay: ${JSON.stringify(sockets.slice(before).map((s) => s.url))}`);
    assert.match(reconnect.url, /[?&]since=\d+/, reconnect.url);
  });

  await t.test('no request leaves 127.0.0.1, and the page raised no error', () => {
    assert.ok(requested.length > 10, `requests were recorded: ${requested.length}`);
    const outside = [...requested, ...sockets.map((s) => s.url)].filter((u) => {
      const url = new URL(u);
      if (url.protocol === 'data:' || url.protocol === 'blob:') return false;
      return url.hostname !== '127.0.0.1';
    });
    assert.deepEqual(outside, [], 'requests to anywhere but 127.0.0.1');
    assert.deepEqual(pageErrors, []);
  });
});
