// Escalations on the screens, end to end in a real headless Chromium (Debian's
// `chromium`, driven by playwright-core) against a real `liandong serve` on the Dazhu
// demo map: a post's leader on the duty roster, with a phone bound to them, and two
// priority-1 incidents nobody dispatches. After a minute (the priority-1 deadline; the
// server's own ticker, no test clock) the one in the leader's post reaches the leader's
// phone as a banner, which the leader acknowledges; the one in a post where nobody is on
// duty goes straight to the command centre, where it reached nobody, and shows on the
// operator's wall map with an acknowledgement button. The post leader's notice is not on
// the wall. Takes about 70 s, most of it waiting for the deadline. It writes
// docs/screenshots/field-escalation-zh.png (the phone's banner, 390×844) and
// wallmap-escalation-zh.png (the wall's banner, 1920×1080).
//
//   node --test tests/e2e/escalation.test.mjs
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
const SHOTS = path.join(ROOT, 'docs/screenshots');
/** The priority-1 deadline of a new incident is 60 s; the ticker runs every second. */
const ESCALATED_WITHIN_MS = 80_000;
const UI_MS = 10_000;

const PHONE_KEY = 'escalation-e2e-phone-key-0001';
const POSTS = JSON.parse(fs.readFileSync(path.join(ROOT, 'maps/dazhu/posts.geojson'), 'utf8')).features;
const at = (id) => POSTS.find((f) => (f.id ?? f.properties.id) === id).geometry.coordinates;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-escalation-'));
let server = null;
let baseUrl = null;
let browser = null;
const pageErrors = [];

process.on('exit', () => server?.proc.kill('SIGKILL'));

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

async function waitIn(p, what, fn, arg, timeout) {
  try {
    await p.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`${what}: not within ${timeout} ms (${e.message.split('\n')[0]})`);
  }
}

function watch(p) {
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  p.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection to .* failed/.test(m.text())) pageErrors.push(m.text());
  });
}

before(async () => {
  server = await startServer({ bin: BIN, root: ROOT, dataDir });
  baseUrl = `http://${server.addr}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  await stopServer(server);
  server = null;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test("a late step reaches the post leader's phone and, where nobody is on duty, the operators' wall; each acknowledges", async () => {
  // post-01's leader is on duty, with a phone bound to them; nobody else is rostered.
  await api('POST', '/api/v1/people', ADMIN, { person_id: 'lead-post-01', name: '刘所长', roles: ['post_officer'], unit_kind: 'post', unit_id: 'post-01' });
  await api('POST', '/api/v1/devices', ADMIN, { device_id: 'esc-phone', name: '刘所长的手机', kind: 'post_officer', unit_id: 'post-01', key: PHONE_KEY, person_id: 'lead-post-01' });
  const now = Date.now();
  await api('POST', '/api/v1/duty', ADMIN, { shifts: [{ unit_kind: 'post', unit_id: 'post-01', person_id: 'lead-post-01', duty: 'leader', starts_ms: now - 3_600_000, ends_ms: now + 3_600_000 }] });

  const [lon, lat] = at('post-01');
  const phoneContext = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'zh-CN', timezoneId: 'Asia/Shanghai', geolocation: { longitude: lon, latitude: lat, accuracy: 8 }, permissions: ['geolocation'] });
  const phone = await phoneContext.newPage();
  watch(phone);
  await phone.goto(`${baseUrl}/field/#server=${encodeURIComponent(baseUrl)}&device=esc-phone&key=${PHONE_KEY}`, { timeout: 30_000 });
  await waitIn(phone, 'the phone is ready and live', () => document.documentElement.dataset.state === 'ready' && document.documentElement.dataset.feed === 'live', null, 30_000);

  const wallContext = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  const wall = await wallContext.newPage();
  watch(wall);
  await wall.goto(`${baseUrl}/?token=${OPERATOR}`, { timeout: 30_000 });
  await waitIn(wall, 'the wall map is ready', () => document.documentElement.dataset.state === 'ready', null, 30_000);

  // Two priority-1 incidents nobody dispatches: one in post-01's jurisdiction, one in post-02's.
  const [lon2, lat2] = at('post-02');
  const a = await api('POST', '/api/v1/incidents', OPERATOR, { title: '一号警务室辖区斗殴', priority: 1, lon, lat });
  const b = await api('POST', '/api/v1/incidents', OPERATOR, { title: '二号警务室辖区纠纷', priority: 1, lon: lon2, lat: lat2 });
  assert.equal(await phone.isHidden('#esc-banner'), true, 'nothing late yet');

  await waitIn(phone, "the leader's phone shows the escalation", () => !document.getElementById('esc-banner').hidden, null, ESCALATED_WITHIN_MS);
  const text = await phone.textContent('#esc-text');
  assert.match(text, /值班负责人/, text);
  assert.ok(text.includes(`#${a.incident.incident_id}`) && text.includes('一号警务室辖区斗殴'), text);
  assert.ok(!text.includes('二号'), `the other post's incident is not the leader's: ${text}`);
  const reason = await phone.textContent('#esc-reason');
  assert.match(reason, /^新警情已 1 ?分/, `how late, in the app's words: ${reason}`);

  await waitIn(wall, "the operators' wall shows the command centre's escalation", (id) => Boolean(document.querySelector(`#escalation-banner li.esc.command_centre .esc-what`)?.textContent.includes(`#${id}`)), b.incident.incident_id, UI_MS);
  const wallText = await wall.textContent('#escalation-banner');
  assert.match(wallText, /无人值班/, wallText);
  const post2 = POSTS.find((f) => (f.id ?? f.properties.id) === 'post-02').properties.name;
  assert.ok(wallText.includes(`${post2}无值班负责人，直报指挥中心`), `says why, naming the post: ${wallText}`);
  assert.ok(!wallText.includes('一号警务室辖区斗殴'), `the post leader's notice is not on the wall: ${wallText}`);

  await phone.screenshot({ path: path.join(SHOTS, 'field-escalation-zh.png') });
  await wall.screenshot({ path: path.join(SHOTS, 'wallmap-escalation-zh.png') });

  // The leader acknowledges on the phone: the banner goes, and the server holds nothing open for them.
  await phone.click('#esc-ack');
  await waitIn(phone, 'the banner goes once acknowledged', () => document.getElementById('esc-banner').hidden, null, UI_MS);
  const mine = await api('GET', '/api/v1/escalations', PHONE_KEY);
  assert.deepEqual(mine.escalations, [], JSON.stringify(mine));

  // The operator acknowledges the one that reached nobody.
  await wall.click('#escalation-banner li.esc.command_centre .esc-ack');
  await waitIn(wall, 'the wall banner goes once acknowledged', () => document.getElementById('escalation-banner').hidden, null, UI_MS);
  const open = await api('GET', '/api/v1/escalations', OPERATOR);
  assert.deepEqual(open.escalations, [], JSON.stringify(open));

  assert.deepEqual(pageErrors, []);
  await phoneContext.close();
  await wallContext.close();
});
