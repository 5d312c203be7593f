// The field app (`/field/`) end to end, in a real headless Chromium with phone emulation
// (390×844, touch, a mobile user agent, geolocation granted and set by the test, the
// network switched off and on), against a real `liandong serve` process on the Dazhu demo
// map with a fresh data directory and an ephemeral loopback port:
//
//   node tests/e2e/field.test.mjs
//
// needs `cargo build` (the binary is `$CARGO_TARGET_DIR/debug/liandong`, default
// `target/debug/liandong`), `npm ci --prefix web` and `/usr/bin/chromium` (scripts/test
// sees to all three). Once every part passes it writes the phone-size screenshots in
// Chinese, one per role, to docs/screenshots/field-leader-zh.png, field-officer-zh.png and
// field-grid-zh.png.
//
// The operator's side is the wall map's: the officer's task is dispatched from its
// incident panel, and the grid member's report accepted in its review queue.
//
// Parts of issue 14 built on other branches are found out by asking the server, and
// the checks that need them run when it has them (each says so in its diagnostic when
// it does not): the task list, the road route, photos with feedback, repeated steps and
// "my reports" (`GET /api/v1/tasks`), and SOS with repeated fixes (`"alarm": "sos"` in
// our JSON item).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, OPERATOR, GRID, CHROMIUM_ARGS, PAGE_CSP, PROTECTIONS, startServer, stopServer } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = path.join(TARGET, 'debug', 'liandong');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'docs/screenshots');
/** The budget for what the feed brings. */
const LIVE_MS = 2000;

/** A phone: the size of a common Android handset, touch, a mobile browser, in China. */
const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  hasTouch: true,
  isMobile: true,
  locale: 'zh-CN',
  timezoneId: 'Asia/Shanghai',
  permissions: ['geolocation'],
};

/** Team 01's route (maps/dazhu/routes.geojson) starts at its post. */
const TEAM = 'team-01';
const LEADER = { device_id: 'f-lead-01', name: '欢喜坪巡防队 张队长', kind: 'patrol_leader', unit_id: TEAM, key: 'key-f-lead-01' };
const MEMBER = { device_id: 'f-member-01', name: '欢喜坪巡防队 李队员', kind: 'patrol_member', unit_id: TEAM, key: 'key-f-member-01' };
const OFFICER = { device_id: 'f-post-02', name: '商圈警务室 王警官', kind: 'post_officer', unit_id: 'post-02', key: 'key-f-post-02' };
/** Where the officer stands, and the incident 300 m away. */
const OFFICER_AT = [107.2032, 30.7351];
const INCIDENT_AT = [107.2062, 30.7359];

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-field-'));
let server = null;
let baseUrl = null;
let browser = null;
/** What the server can do of issue 14's other parts (see the header). */
const has = { tasks: false, sos: false };
const requested = [];
const pageErrors = [];
const cspViolations = [];
const shots = new Map();

process.on('exit', () => server?.proc.kill('SIGKILL'));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server?.proc.kill('SIGKILL');
    process.exit(130);
  });
}

async function call(method, urlPath, token, body) {
  const res = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function api(method, urlPath, token, body) {
  const { status, json } = await call(method, urlPath, token, body);
  assert.ok(status >= 200 && status < 300, `${method} ${urlPath}: ${status} ${JSON.stringify(json)}`);
  return json;
}

/** Polls the server until `check(answer)` holds for `GET urlPath`; answers the last answer. */
async function untilServer(what, urlPath, token, check, timeout) {
  const end = Date.now() + timeout;
  let last = null;
  while (Date.now() < end) {
    last = await api('GET', urlPath, token);
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${timeout} ms (last answer: ${JSON.stringify(last).slice(0, 400)})`);
}

async function waitIn(p, what, fn, arg, timeout) {
  try {
    await p.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    throw new Error(`${what}: not within ${timeout} ms (${e.message.split('\n')[0]})`);
  }
}

const dataset = (p) => p.evaluate(() => ({ ...document.documentElement.dataset }));

/** Records a page's requests, errors and policy violations; counts its vibrations and beeps. */
async function watch(p) {
  await p.exposeFunction('__cspViolation', (v) => cspViolations.push(v));
  await p.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI }));
    window.__vibrations = [];
    navigator.vibrate = (pattern) => {
      window.__vibrations.push(pattern);
      return true;
    };
    window.__beeps = 0;
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...args) {
      window.__beeps += 1;
      return start.apply(this, args);
    };
  });
  p.on('request', (r) => requested.push(r.url()));
  p.on('websocket', (ws) => requested.push(ws.url()));
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  p.on('console', (m) => {
    // Failed loads while the network is off, or of endpoints a server lacks, are expected.
    if (m.type() === 'error' && !/Failed to load resource|ERR_INTERNET_DISCONNECTED|WebSocket connection to .* failed/.test(m.text())) pageErrors.push(m.text());
  });
}

/** A new phone at `[lon, lat]`. */
async function phone([lon, lat]) {
  const context = await browser.newContext({ ...PHONE, geolocation: { longitude: lon, latitude: lat, accuracy: 8 } });
  const p = await context.newPage();
  await watch(p);
  return { context, page: p };
}

/** A camera's photo: a 2000×1500 JPEG drawn in the page, larger than the app sends. */
async function photo(p) {
  const dataUrl = await p.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 2000;
    c.height = 1500;
    const g = c.getContext('2d');
    const grad = g.createLinearGradient(0, 0, 2000, 1500);
    grad.addColorStop(0, '#3a6ea5');
    grad.addColorStop(1, '#f4d35e');
    g.fillStyle = grad;
    g.fillRect(0, 0, 2000, 1500);
    g.fillStyle = '#222';
    g.fillRect(700, 500, 600, 500);
    return c.toDataURL('image/jpeg', 0.92);
  });
  return { name: 'photo.jpg', mimeType: 'image/jpeg', buffer: Buffer.from(dataUrl.split(',')[1], 'base64') };
}

/** Every button on screen is at least 48 px each way, and nothing is wider than the screen. */
function layoutFaults(p) {
  return p.evaluate(() => {
    const faults = [];
    for (const b of document.querySelectorAll('button, select, input, textarea')) {
      const r = b.getBoundingClientRect();
      if (!r.width || !r.height || getComputedStyle(b).visibility === 'hidden') continue;
      // MapLibre's zoom buttons are 44 px; a file input is hidden behind its label's button.
      if (b.closest('.maplibregl-ctrl') || b.type === 'file') continue;
      if (r.height < 47.5 || r.width < 47.5) faults.push(`${b.id || b.dataset.tab || b.textContent.trim().slice(0, 12)}: ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
    if (document.documentElement.scrollWidth > innerWidth) faults.push(`wider than the screen: ${document.documentElement.scrollWidth} > ${innerWidth}`);
    for (const id of ['sos-button', 'share-button']) {
      const el = document.getElementById(id);
      const r = el.getBoundingClientRect();
      if (r.height > 0 && (r.bottom > innerHeight + 0.5 || r.top < innerHeight / 2)) faults.push(`${id} is not in the lower half of the screen: ${Math.round(r.top)}–${Math.round(r.bottom)} of ${innerHeight}`);
    }
    return faults;
  });
}

/** The map has drawn what it holds. */
async function settle(p) {
  await waitIn(p, 'the map has drawn', () => window.field.map && window.field.map.map.loaded() && !window.field.map.map.isMoving(), null, 15_000);
  await p.waitForTimeout(300);
}

async function shoot(p, name) {
  await settle(p);
  shots.set(name, await p.screenshot());
}

before(async () => {
  server = await startServer({ bin: BIN, root: ROOT, dataDir });
  baseUrl = `http://${server.addr}`;
  const { proc, log } = server;
  proc.on('exit', (code, signal) => {
    if (server) console.error(`the server exited (${code ?? signal}) during the test:\n${log.slice(-20).join('\n')}`);
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  for (const d of [LEADER, MEMBER, OFFICER]) await api('POST', '/api/v1/devices', ADMIN, d);
  has.tasks = (await call('GET', '/api/v1/tasks', OFFICER.key)).status !== 404;
  // An item for an unknown device: a server that knows `alarm` refuses the device, one
  // that does not refuses the key.
  const probe = await call('POST', '/api/v1/positions', ADMIN, { positions: [{ device_id: 'no-such-phone', lon: 107.2, lat: 30.7, alarm: 'sos' }] });
  const refusal = JSON.stringify(probe.json?.rejected?.[0] ?? probe.json ?? {});
  has.sos = probe.status < 500 && !/alarm/.test(refusal);
});

after(async () => {
  await browser?.close().catch(() => {});
  const s = server;
  server = null;
  await stopServer(s);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the field app on phones, live, in headless Chromium', { timeout: 300_000 }, async (top) => {
  top.diagnostic(`the server has: ${JSON.stringify(has)}`);
  // The parts run in order, each on what the one before left; the screenshots are kept
  // only when every part passed.
  let parts = 0;
  let passed = 0;
  const t = {
    test: (name, fn) => {
      parts += 1;
      return top.test(name, async (tt) => {
        await fn(tt);
        passed += 1;
      });
    },
  };
  const routeLine = JSON.parse(fs.readFileSync(path.join(ROOT, 'maps/dazhu/routes.geojson'), 'utf8')).features.find((f) => f.properties.team_id === TEAM).geometry.coordinates;
  const leaderAt = routeLine[0];

  const lead = await phone(leaderAt);
  const leader = lead.page;
  await t.test("a phone signs in from the QR code's link: the key leaves the address bar, and the phone shares its position", async () => {
    const res = await leader.goto(`${baseUrl}/field/#server=${encodeURIComponent(baseUrl)}&device=${LEADER.device_id}&key=${LEADER.key}`, { timeout: 30_000 });
    const headers = await res.allHeaders();
    assert.equal(headers['content-security-policy'], PAGE_CSP);
    for (const [name, value] of Object.entries(PROTECTIONS)) assert.equal(headers[name], value, name);
    await waitIn(leader, 'the app is ready', () => document.documentElement.dataset.state === 'ready' && document.documentElement.dataset.map === 'ready', null, 30_000);
    assert.equal(new URL(leader.url()).hash, '', `the key left the address bar: ${leader.url()}`);
    assert.ok(!leader.url().includes(LEADER.key), leader.url());
    const d = await dataset(leader);
    assert.equal(d.role, 'leader', JSON.stringify(d));
    await waitIn(leader, 'the feed is live', () => document.documentElement.dataset.feed === 'live', null, 10_000);
    assert.equal(await leader.textContent('#share-state'), '共享位置中');
    assert.match(await leader.textContent('#who-name'), /张队长/);
    // The fix reached the server with the phone's own time, and nothing waits to be sent.
    const devices = await untilServer('the leader phone\'s fix is stored', '/api/v1/devices', OPERATOR, (v) => v.devices.find((x) => x.device_id === LEADER.device_id)?.last, 10_000);
    const last = devices.devices.find((x) => x.device_id === LEADER.device_id).last;
    assert.ok(Math.abs(last.lon - leaderAt[0]) < 1e-5 && Math.abs(last.lat - leaderAt[1]) < 1e-5, JSON.stringify(last));
    // Stored under the fix's own time, to the millisecond, with the number the phone was acknowledged.
    await waitIn(leader, 'the phone has the ack of its fix', () => window.field.lastSent !== null, null, 5000);
    const sent = await leader.evaluate(() => window.field.lastSent);
    assert.equal(Date.parse(last.fix_time), Date.parse(sent.time), `${last.fix_time} is the fix's own time ${sent.time}`);
    assert.equal(last.seq, sent.seq);
    if (has.sos) {
      // The same fix sent again (its ack lost on the way): the server answers with the
      // original number, and the phone takes that as done.
      await leader.evaluate((item) => window.field.outbox.put({ lane: 'fix', tag: 'fix', item }), sent.item);
      await waitIn(leader, 'the resent fix is acknowledged', (seq) => document.documentElement.dataset.outbox === '0' && window.field.lastSent.seq === seq, sent.seq, 5000);
    }
    await waitIn(leader, 'the outbox is empty', () => document.documentElement.dataset.outbox === '0', null, 5000);
    // The service worker and the manifest are the app's.
    const manifest = await leader.evaluate(async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json());
    assert.equal(manifest.scope, '/field/');
    assert.equal(manifest.start_url, '/field/');
    assert.ok(manifest.icons.some((i) => i.sizes === '512x512'), JSON.stringify(manifest.icons));
  });

  await t.test('one-handed from 360×640 up: touch targets of 48 px or more, the primary actions at the bottom, nothing wider than the screen', async () => {
    for (const size of [{ width: 360, height: 640 }, { width: 390, height: 844 }]) {
      await leader.setViewportSize(size);
      await leader.waitForTimeout(200);
      const faults = await layoutFaults(leader);
      assert.deepEqual(faults, [], `at ${size.width}×${size.height}`);
    }
  });

  const wallContext = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  const wall = await wallContext.newPage();
  await watch(wall);
  await wall.goto(`${baseUrl}/?token=${OPERATOR}`, { timeout: 30_000 });
  await waitIn(wall, 'the wall map is ready', () => document.documentElement.dataset.state === 'ready', null, 30_000);
  await waitIn(wall, 'the wall map is live', () => document.documentElement.dataset.feed === 'live', null, 10_000);

  await t.test("a leader receives a pushed plan with a banner, a sound and a vibration, acknowledges it with one button, and the wall map's count of unacknowledged plans drops", async (t) => {
    const countBefore = Number((await wall.textContent('#stat-plans')).replace('–', '0'));
    const line = routeLine.slice(0, 14);
    const due = Date.now() + 20 * 60_000;
    // The first checkpoint was due five minutes ago: late from the start.
    const waypoints = [
      { name: '场镇路口', lon: line[2][0], lat: line[2][1], planned_time: new Date(Date.now() - 5 * 60_000).toISOString(), dwell_s: 120 },
      { name: '欢喜坪村委会', lon: line[5][0], lat: line[5][1], planned_time: new Date(due).toISOString(), dwell_s: 300 },
      { name: '欢喜坪小学', lon: line[12][0], lat: line[12][1], planned_time: new Date(due + 15 * 60_000).toISOString(), dwell_s: 600 },
    ];
    const sent = Date.now();
    const pushed = await api('POST', `/api/v1/teams/${TEAM}/plans`, OPERATOR, { kind: 'diversion', reason: '欢喜坪场镇赶集，改走村道避开人流', coordinates: line, waypoints });
    const version = pushed.plan.version;
    await waitIn(leader, 'the banner shows the diversion', (v) => !document.getElementById('banner').hidden && document.getElementById('banner-text').textContent.includes(`第 ${v} 版`), version, LIVE_MS);
    t.diagnostic(`banner shown ${Date.now() - sent} ms after the push`);
    assert.match(await leader.textContent('#banner'), /改道：第 \d+ 版.*赶集/s);
    const alerted = await leader.evaluate(() => ({ vibrations: window.__vibrations.length, beeps: window.__beeps }));
    assert.ok(alerted.vibrations >= 1 && alerted.beeps >= 1, `the phone vibrated and beeped: ${JSON.stringify(alerted)}`);
    const drawn = await leader.evaluate(async () => (await window.field.map.map.getSource('plan').getData()).features[0]?.geometry.coordinates.length ?? 0);
    assert.equal(drawn, line.length, 'the plan\'s line is on the map');
    await waitIn(wall, "the wall map counts the plan as unacknowledged", (n) => Number(document.getElementById('stat-plans').textContent) === n, countBefore + 1, LIVE_MS);
    // Adherence: on the route, the next checkpoint and its due time.
    const panel = await leader.textContent('#panel-plan');
    assert.match(panel, /在路线上/, panel);
    assert.match(panel, /下一检查点：场镇路口/, panel);
    assert.match(panel, /应到 \d\d:\d\d · 停留 2分钟/, panel);
    assert.deepEqual(await leader.$$eval('#panel-plan li.cp', (li) => li.map((x) => x.dataset.state)), ['late', 'ahead', 'ahead']);
    assert.match(await leader.textContent('#panel-plan li.cp'), /迟到/);
    await shoot(leader, 'field-leader-zh.png');

    await leader.tap('#banner-ack');
    const tapped = Date.now();
    const plans = await untilServer('the server has the acknowledgement', '/api/v1/plans', OPERATOR, (v) => v.plans.find((p) => p.team_id === TEAM)?.status === 'acknowledged', 5000);
    assert.equal(plans.plans.find((p) => p.team_id === TEAM).acked_by, `device:${LEADER.device_id}`);
    await waitIn(wall, "the wall map's count drops", (n) => Number(document.getElementById('stat-plans').textContent) === n, countBefore, LIVE_MS);
    t.diagnostic(`acknowledged and counted on the wall ${Date.now() - tapped} ms after the tap`);
    await waitIn(leader, 'the banner goes', () => document.getElementById('banner').hidden, null, LIVE_MS);
  });

  await t.test('adherence on the phone: off the route and back, a checkpoint visited, a late one then skipped, and a member on the map', async () => {
    await lead.context.setGeolocation({ longitude: leaderAt[0] + 0.004, latitude: leaderAt[1] + 0.004, accuracy: 8 });
    await waitIn(leader, 'the phone says it is off the route', () => /偏离路线 \d+ m/.test(document.getElementById('panel-plan').textContent), null, 5000);
    const cp = routeLine[5];
    await lead.context.setGeolocation({ longitude: cp[0], latitude: cp[1], accuracy: 8 });
    await waitIn(leader, 'back on the route, the second checkpoint visited and the late one skipped', () => {
      const text = document.getElementById('panel-plan').textContent;
      const states = [...document.querySelectorAll('#panel-plan li.cp')].map((li) => li.dataset.state).join(',');
      return /在路线上/.test(text) && states === 'skipped,visited,ahead';
    }, null, 5000);
    assert.match(await leader.textContent('#panel-plan li.cp'), /漏检/);
    assert.match(await leader.textContent('#panel-plan'), /下一检查点：欢喜坪小学/);
    const at = routeLine[8];
    await api('POST', '/api/v1/positions', ADMIN, { positions: [{ device_id: MEMBER.device_id, lon: at[0], lat: at[1], speed_mps: 1.2, accuracy_m: 8 }] });
    await waitIn(leader, 'the member is listed', (id) => window.field.leader.members.has(id), MEMBER.device_id, LIVE_MS);
    await waitIn(leader, 'the member is on the map', (id) => (window.field.map.drawn.members ?? []).some((f) => f.properties.device_id === id), MEMBER.device_id, LIVE_MS);
    assert.match(await leader.textContent('#panel-plan'), new RegExp(`${MEMBER.device_id} · 距路线 \\d+ m`));
  });

  const post = await phone(OFFICER_AT);
  const officer = post.page;
  let incidentId = null;
  await t.test('an officer signs in by typing the device id and key, and a dispatched task arrives', async (t) => {
    await officer.goto(`${baseUrl}/field/`, { timeout: 30_000 });
    await waitIn(officer, 'the app asks to sign in', () => document.documentElement.dataset.state === 'login', null, 10_000);
    await officer.fill('#login-device', OFFICER.device_id);
    await officer.fill('#login-key', OFFICER.key);
    await officer.tap('#login-form button[type=submit]');
    await waitIn(officer, 'the app is ready', () => document.documentElement.dataset.state === 'ready' && document.documentElement.dataset.map === 'ready', null, 30_000);
    assert.equal((await dataset(officer)).role, 'officer');
    await waitIn(officer, 'the feed is live', () => document.documentElement.dataset.feed === 'live', null, 10_000);
    await untilServer("the officer's fix is stored", '/api/v1/devices', OPERATOR, (v) => v.devices.find((x) => x.device_id === OFFICER.device_id)?.last, 10_000);

    const created = await api('POST', '/api/v1/incidents', OPERATOR, { title: '商铺被盗，嫌疑人骑摩托车逃离', priority: 1, kind: 'theft', lon: INCIDENT_AT[0], lat: INCIDENT_AT[1] });
    incidentId = created.incident.incident_id;
    // The operator dispatches from the wall map: the incident from the list, the officer's
    // phone among the units the panel recommends, its Dispatch button.
    const listed = `#incident-list li.incident[data-id="${incidentId}"]`;
    await waitIn(wall, 'the incident is in the wall map\'s list', (sel) => document.querySelector(sel) !== null, listed, LIVE_MS);
    await wall.click(listed);
    const dispatch = `#incident-panel button[data-dispatch="${OFFICER.device_id}"]`;
    await waitIn(wall, "the incident panel recommends the officer's phone", (sel) => document.querySelector(sel) !== null && !document.querySelector(sel).disabled, dispatch, 10_000);
    const sent = Date.now();
    await wall.click(dispatch);
    await waitIn(officer, 'the task is on the phone', (id) => document.querySelector(`#panel-tasks article.task[data-id="${id}"] button[data-step="sign"]`) !== null, incidentId, LIVE_MS);
    t.diagnostic(`task on the phone ${Date.now() - sent} ms after the Dispatch click on the wall map`);
    await waitIn(wall, 'the panel shows the incident dispatched', (id) => document.getElementById('incident-panel').dataset.id === String(id) && document.getElementById('incident-panel').dataset.state === 'dispatched', incidentId, LIVE_MS);
    const dispatched = await api('GET', `/api/v1/incidents/${incidentId}`, OPERATOR);
    assert.equal(dispatched.incident.assigned_device, OFFICER.device_id);
    assert.ok(dispatched.timeline.some((e) => e.action === 'dispatch' && e.actor === 'demo operator'), JSON.stringify(dispatched.timeline));
    const card = await officer.textContent(`#panel-tasks article.task[data-id="${incidentId}"]`);
    assert.match(card, /商铺被盗/, card);
    assert.match(card, /1级/, card);
    assert.match(card, /已派警/, card);
    const target = await officer.evaluate(async () => (await window.field.map.map.getSource('target').getData()).features[0]?.geometry.coordinates);
    assert.deepEqual(target, INCIDENT_AT, 'the place is on the map');
    if (has.tasks) {
      const tasks = await api('GET', '/api/v1/tasks', OFFICER.key);
      assert.ok(tasks.tasks.some((i) => i.incident_id === incidentId), JSON.stringify(tasks).slice(0, 300));
      await waitIn(officer, 'the way there is drawn with its travel time', (id) => /路线 .* · 约 /.test(document.querySelector(`#panel-tasks article.task[data-id="${id}"] .route`)?.textContent ?? ''), incidentId, 10_000);
      const way = await officer.evaluate(async () => (await window.field.map.map.getSource('way').getData()).features[0]?.geometry.coordinates.length ?? 0);
      assert.ok(way >= 2, `the road route is on the map: ${way} points`);
    } else {
      t.diagnostic('GET /api/v1/tasks is not on this server: the task list and the road route are not checked');
    }
    await shoot(officer, 'field-officer-zh.png');
  });

  await t.test('the officer signs for, sets off, arrives and sends feedback with a photo, the network off in between; the timeline holds every step once', async (t) => {
    const card = `#panel-tasks article.task[data-id="${incidentId}"]`;
    const serverState = async () => (await api('GET', `/api/v1/incidents/${incidentId}`, OPERATOR)).incident.state;
    const offline = async () => {
      await post.context.setOffline(true);
      await waitIn(officer, 'the phone knows it has no signal', () => document.documentElement.dataset.net === 'offline', null, 5000);
    };
    const online = async (state) => {
      await post.context.setOffline(false);
      await waitIn(officer, 'the outbox empties', () => document.documentElement.dataset.outbox === '0', null, 10_000);
      await untilServer(`the server has the incident ${state}`, `/api/v1/incidents/${incidentId}`, OPERATOR, (v) => v.incident.state === state, 5000);
    };

    await offline();
    await officer.tap(`${card} button[data-step="sign"]`);
    await waitIn(officer, 'the step is kept and shown taken', (sel) => document.documentElement.dataset.outbox === '1' && document.querySelector(sel)?.dataset.state === 'signed_for', card, 2000);
    assert.equal(await serverState(), 'dispatched', 'nothing was sent without signal');
    await online('signed_for');

    await offline();
    await officer.tap(`${card} button[data-step="depart"]`);
    await officer.tap(`${card} button[data-step="arrive"]`);
    await waitIn(officer, 'both steps are kept', (sel) => document.documentElement.dataset.outbox === '2' && document.querySelector(sel)?.dataset.state === 'on_scene', card, 2000);
    assert.equal(await serverState(), 'signed_for');
    await online('on_scene');

    await offline();
    await officer.fill(`${card} textarea[name=note]`, '已到场，嫌疑人已逃离，调取周边监控');
    if (has.tasks) {
      await officer.setInputFiles(`${card} input[type=file]`, await photo(officer));
      await waitIn(officer, 'the photo is shown', (sel) => document.querySelectorAll(`${sel} .thumbs img`).length === 1, card, 5000);
    }
    await officer.tap(`${card} button[data-step="feedback"]`);
    await waitIn(officer, 'the feedback is kept', () => document.documentElement.dataset.outbox === '1', null, 2000);
    const kept = await officer.evaluate(async () => {
      const [entry] = await window.field.outbox.entries('http');
      const b64 = entry.body.photos_base64?.[0];
      if (!b64) return { photos: 0 };
      const img = new Image();
      img.src = `data:image/jpeg;base64,${b64}`;
      await img.decode();
      return { photos: entry.body.photos_base64.length, w: img.naturalWidth, h: img.naturalHeight, bytes: Math.round((b64.length * 3) / 4) };
    });
    t.diagnostic(`feedback kept with ${JSON.stringify(kept)}`);
    if (has.tasks) {
      assert.equal(kept.photos, 1);
      assert.ok(kept.w === 1280 && kept.h === 960, `the photo was shrunk to 1280 px: ${JSON.stringify(kept)}`);
    }
    await online('feedback');

    const { timeline } = await api('GET', `/api/v1/incidents/${incidentId}`, OPERATOR);
    const steps = timeline.map((e) => e.action).filter((a) => ['sign', 'depart', 'arrive', 'feedback'].includes(a));
    assert.deepEqual(steps, ['sign', 'depart', 'arrive', 'feedback'], JSON.stringify(timeline));
    for (const e of timeline.filter((x) => steps.includes(x.action))) assert.equal(e.actor, `device:${OFFICER.device_id}`, JSON.stringify(e));
    if (has.tasks) {
      const fb = timeline.find((e) => e.action === 'feedback');
      assert.match(JSON.stringify(fb), /\/api\/v1\/images\//, `the feedback names its photo: ${JSON.stringify(fb)}`);
      // A phone whose answer was lost sends the step again: the server answers it as a
      // repeat and the timeline does not grow.
      const again = await officer.evaluate(async (id) => {
        await window.field.outbox.put({ lane: 'http', tag: 'step', incident: id, action: 'feedback', method: 'POST', path: `/api/v1/incidents/${id}/actions`, body: { action: 'feedback', note: 'resent' } });
      }, incidentId);
      void again;
      await waitIn(officer, 'the resend is answered', () => document.documentElement.dataset.outbox === '0', null, 5000);
      const after = await api('GET', `/api/v1/incidents/${incidentId}`, OPERATOR);
      assert.equal(after.timeline.filter((e) => e.action === 'feedback').length, 1, JSON.stringify(after.timeline));
    }
    await waitIn(officer, 'the card shows the feedback given', (sel) => document.querySelector(sel)?.dataset.state === 'feedback', card, LIVE_MS);
  });

  await t.test("SOS: a short press does nothing; held for two seconds it reaches an operator's screen within 2 s", async (t) => {
    const button = officer.locator('#sos-button');
    const box = await button.boundingBox();
    await officer.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await officer.mouse.down();
    await officer.waitForTimeout(600);
    await officer.mouse.up();
    await officer.waitForTimeout(1800);
    assert.equal((await dataset(officer)).sos, undefined, 'a short press raised nothing');

    await officer.mouse.down();
    await waitIn(officer, 'the button fills while held', () => document.getElementById('sos-button').classList.contains('holding'), null, 1000);
    await waitIn(officer, 'the SOS fires after two seconds', () => document.documentElement.dataset.sos !== undefined, null, 3000);
    const fired = Date.now();
    await officer.mouse.up();
    if (!has.sos) {
      await waitIn(officer, 'the phone shows the server refused it', () => document.documentElement.dataset.sos === 'refused', null, 5000);
      t.diagnostic('this server does not know "alarm": "sos" yet: the wall map part is not checked');
      return;
    }
    await waitIn(
      wall,
      "the SOS is in the operator's alert queue",
      (id) => [...window.wallmap.alerts.alerts.values()].some((a) => a.rule === 'sos' && JSON.stringify(a).includes(id) && document.querySelector(`#alert-queue li.alert[data-seq="${a.seq}"]`)),
      OFFICER.device_id,
      LIVE_MS,
    );
    t.diagnostic(`SOS on the wall map ${Date.now() - fired} ms after it fired`);
    const alert = await wall.evaluate((id) => [...window.wallmap.alerts.alerts.values()].find((a) => a.rule === 'sos' && JSON.stringify(a).includes(id)), OFFICER.device_id);
    assert.equal(alert.priority, 1, JSON.stringify(alert));
    await waitIn(officer, 'the phone shows the SOS was sent', () => document.documentElement.dataset.sos === 'sent', null, LIVE_MS);
    assert.match(await officer.textContent('#toast'), /求助已送达/);
  });

  await t.test('after a first visit the app opens with the network off: the shell, MapLibre and the county from the phone', async () => {
    await waitIn(officer, 'the service worker controls the page', () => navigator.serviceWorker.controller !== null, null, 10_000);
    // Activation follows installation, which keeps the shell; wait for MapLibre's worker in
    // the kept shell all the same, so that a slow machine cannot go offline before it.
    await officer.waitForFunction(
      async () => {
        const names = (await caches.keys()).filter((n) => n.startsWith('field-shell-'));
        for (const n of names) {
          if (await (await caches.open(n)).match('/node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs')) return true;
        }
        return false;
      },
      null,
      { timeout: 10_000, polling: 100 },
    );
    await post.context.setOffline(true);
    try {
      await officer.reload({ timeout: 30_000 });
      await waitIn(officer, 'the app is ready with no signal', () => document.documentElement.dataset.state === 'ready' && document.documentElement.dataset.map === 'ready', null, 30_000);
      const d = await dataset(officer);
      assert.equal(d.role, 'officer', JSON.stringify(d));
      assert.equal(d.net, 'offline', JSON.stringify(d));
      await settle(officer);
      const county = await officer.evaluate(() => ({
        boundary: window.field.map.map.querySourceFeatures('boundary').length,
        roads: window.field.map.map.queryRenderedFeatures({ layers: ['roads-line'] }).length,
      }));
      assert.ok(county.boundary >= 1, `the county's boundary is drawn: ${JSON.stringify(county)}`);
    } finally {
      await post.context.setOffline(false);
    }
  });

  const grid = await phone([107.2105, 30.7402]);
  const member = grid.page;
  const reportText = `村道边坡落石，已设警示 ${Date.now() % 100000}`;
  await t.test('a grid member files a report with a photo while offline; it arrives once when the network is back, and becomes "incident #N" after an operator accepts it', async (t) => {
    await member.goto(`${baseUrl}/field/`, { timeout: 30_000 });
    await waitIn(member, 'the app asks to sign in', () => document.documentElement.dataset.state === 'login', null, 10_000);
    await member.tap('#login [data-login="token"]');
    await member.fill('#login-token', GRID);
    await member.tap('#login-form button[type=submit]');
    await waitIn(member, 'the app is ready', () => document.documentElement.dataset.state === 'ready' && document.documentElement.dataset.map === 'ready', null, 30_000);
    assert.equal((await dataset(member)).role, 'grid');
    assert.ok(await member.isHidden('#sos-button'), 'a grid member has no device to raise an SOS from');
    assert.deepEqual(await layoutFaults(member), []);
    await settle(member);

    await grid.context.setOffline(true);
    await waitIn(member, 'the phone knows it has no signal', () => document.documentElement.dataset.net === 'offline', null, 5000);
    await member.selectOption('#report-category', 'hazard');
    await member.fill('#report-text', reportText);
    await member.setInputFiles('#report-photos', await photo(member));
    await waitIn(member, 'the photo is shown', () => document.querySelectorAll('#report-thumbs img').length === 1, null, 5000);
    // The place: a tap on the map.
    const mapBox = await member.locator('#map').boundingBox();
    await member.tap('#map', { position: { x: mapBox.width / 2, y: mapBox.height / 2 } });
    await waitIn(member, 'the place is set', () => /已选地点/.test(document.getElementById('report-place').textContent), null, 2000);
    await shoot(member, 'field-grid-zh.png');
    await member.tap('#report-send');
    await waitIn(member, 'the report is kept', () => document.documentElement.dataset.outbox === '1', null, 2000);
    await member.tap('#tabs button[data-tab="mine"]');
    await waitIn(member, 'my reports list it as waiting to send', () => document.querySelector('#panel-mine li.report')?.dataset.state === 'queued', null, 2000);
    const mine = () => api('GET', '/api/v1/reports', OPERATOR).then((v) => v.reports.filter((r) => r.text === reportText));
    assert.equal((await mine()).length, 0, 'nothing was sent without signal');

    const queued = await member.evaluate(async () => (await window.field.outbox.entries('http'))[0].body);
    await grid.context.setOffline(false);
    await waitIn(member, 'the outbox empties', () => document.documentElement.dataset.outbox === '0', null, 10_000);
    const stored = await mine();
    assert.equal(stored.length, 1, JSON.stringify(stored));
    assert.equal(stored[0].photos, 1, `the photo came with it: ${JSON.stringify(stored[0])}`);
    // Sent again, as after an answer lost on the way: recognised, not stored twice.
    await member.evaluate((body) => window.field.outbox.put({ lane: 'http', tag: 'report', method: 'POST', path: '/api/v1/reports', body }), queued);
    await waitIn(member, 'the resend is answered', () => document.documentElement.dataset.outbox === '0', null, 10_000);
    assert.equal((await mine()).length, 1, 'the resent report is stored once');
    const reportId = stored[0].report_id;
    // The operator accepts it in the wall map's review queue, at priority 2.
    await wall.click('#stat-reports-button');
    const inQueue = `#reports-panel ol.reports li.report[data-id="${reportId}"]`;
    await waitIn(wall, "the report is in the wall map's review queue", (sel) => document.querySelector(sel) !== null, inQueue, 10_000);
    const row = await wall.textContent(inQueue);
    assert.match(row, /村道边坡落石/, row);
    await waitIn(wall, 'its photo is shown', (sel) => document.querySelector(`${sel} .thumbs img`)?.naturalWidth > 0, inQueue, 10_000);
    await wall.selectOption(`${inQueue} select[name="priority"]`, '2');
    await wall.click(`${inQueue} button[data-act="accept"]`);
    const accepted = `#reports-panel ol.reports-done li[data-id="${reportId}"] button[data-incident]`;
    await waitIn(wall, 'the queue shows the incident it became', (sel) => /已立案 #\d+/.test(document.querySelector(sel)?.textContent ?? ''), accepted, 10_000);
    assert.equal(await wall.$(inQueue), null, 'the report left the queue');
    const incident = Number(await wall.getAttribute(accepted, 'data-incident'));
    assert.ok(incident, `the accept answered an incident: ${incident}`);
    const opened = await api('GET', `/api/v1/incidents/${incident}`, OPERATOR);
    assert.equal(opened.incident.priority, 2, JSON.stringify(opened.incident));
    assert.equal((await mine())[0].status, 'accepted');
    if (!has.tasks) {
      t.diagnostic('GET /api/v1/reports/mine is not on this server: the report\'s state on the phone is not checked');
      return;
    }
    await member.tap('#tabs button[data-tab="report"]');
    await member.tap('#tabs button[data-tab="mine"]');
    await waitIn(member, 'my report shows its incident', ([id, n]) => document.querySelector(`#panel-mine li.report[data-id="${id}"] .incident`)?.textContent.includes(`已立案 #${n}`), [reportId, incident], 5000);
  });

  await t.test('English on a tap, and signing out forgets the key and the cached answers', async () => {
    await member.tap('#lang-button');
    await waitIn(member, 'the app is in English', () => document.documentElement.lang === 'en', null, 2000);
    assert.equal(await member.textContent('#tabs button[data-tab="report"]'), 'Report');
    assert.equal(await member.textContent('#report-send'), 'Send report');
    await member.tap('#lang-button');
    await waitIn(member, 'the app is in Chinese again', () => document.documentElement.lang === 'zh-CN', null, 2000);

    await member.tap('#logout-button');
    await waitIn(member, 'the app asks to sign in again', () => document.documentElement.dataset.state === 'login', null, 10_000);
    const kept = await member.evaluate(async () => ({ cred: localStorage.getItem('liandong.field.cred'), api: await caches.has('field-api') }));
    assert.deepEqual(kept, { cred: null, api: false });
  });

  await t.test("a person's one-time code link signs a phone in as that person, once, and signing out ends the session on the server", async () => {
    await api('POST', '/api/v1/people', ADMIN, { person_id: 'e2e-wang', name: '王警官', roles: ['post_officer'], unit_kind: 'post', unit_id: 'post-02' });
    const issued = await api('POST', '/api/v1/people/e2e-wang/sign-in-code', ADMIN);
    const fragment = new URL(issued.link).hash;
    assert.match(fragment, /^#server=.+&code=[A-Za-z0-9_-]+$/, issued.link);
    const coded = await phone(OFFICER_AT);
    const p = coded.page;
    try {
      await p.goto(`${baseUrl}/field/${fragment}`, { timeout: 30_000 });
      await waitIn(p, 'the app is ready, signed in by the code', () => document.documentElement.dataset.state === 'ready', null, 30_000);
      assert.equal((await dataset(p)).role, 'officer');
      assert.ok(!p.url().includes('code='), `the code is taken out of the address: ${p.url()}`);
      const token = await p.evaluate(() => JSON.parse(localStorage.getItem('liandong.field.cred')).token);
      assert.match(token, /^lds_[A-Za-z0-9_-]{43}$/);
      assert.equal((await api('GET', '/api/v1/whoami', token)).person_id, 'e2e-wang');
      await p.tap('#logout-button');
      await waitIn(p, 'the app asks to sign in again', () => document.documentElement.dataset.state === 'login', null, 10_000);
      const after = await fetch(`${baseUrl}/api/v1/whoami`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(after.status, 401, 'signed out on the server');
      // Opened afresh, as from the QR code (a change of the fragment alone does not reload the app).
      await p.goto('about:blank');
      await p.goto(`${baseUrl}/field/${fragment}`, { timeout: 30_000 });
      await waitIn(p, 'a used code is refused', () => !document.getElementById('login-error').hidden, null, 10_000);
      assert.match(await p.textContent('#login-error'), /登录码无效/);
    } finally {
      await coded.context.close();
    }
  });

  await t.test('no request leaves 127.0.0.1, the pages raised no error and nothing broke their policy', () => {
    const outside = requested.filter((u) => {
      const url = new URL(u);
      return !['data:', 'blob:'].includes(url.protocol) && url.hostname !== '127.0.0.1';
    });
    assert.deepEqual(outside, []);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });

  if (passed === parts) {
    fs.mkdirSync(SHOTS, { recursive: true });
    for (const [name, png] of shots) fs.writeFileSync(path.join(SHOTS, name), png);
  }
  await Promise.all([lead.context.close(), post.context.close(), grid.context.close(), wallContext.close()]);
});
