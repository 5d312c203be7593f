// Home visits (上门办理) in the field app, end to end, in a real headless Chromium with phone
// emulation (geolocation granted and set by the test), against a real `liandong serve`
// process on the Dazhu demo map with a fresh data directory:
//
//   node tests/e2e/visits.test.mjs
//
// needs `cargo build` (the binary is `$CARGO_TARGET_DIR/debug/liandong`), `npm ci --prefix
// web` and `/usr/bin/chromium`, like tests/e2e/field.test.mjs. A grid member's phone (a
// device bound to the person) signs in from its QR code's link, sees the visit assigned to
// her, stands near the place, taps "到达" (the phone sends where it is, then arrives),
// completes the visit with a note, and the API shows it done.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, CHROMIUM_ARGS, startServer, stopServer } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = path.join(TARGET, 'debug', 'liandong');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  hasTouch: true,
  isMobile: true,
  locale: 'zh-CN',
  timezoneId: 'Asia/Shanghai',
  permissions: ['geolocation'],
};

/** The grid member, her phone, and the place she is to visit (by the 商圈 post). */
const PERSON = { person_id: 'visit_grid', name: '孙网格', roles: ['grid_member'], unit_kind: 'grid', unit_id: '511724001001' };
const DEVICE = { device_id: 'f-grid-visit', name: '孙网格的手机', kind: 'other', key: 'key-f-grid-visit', person_id: PERSON.person_id };
const PLACE = [107.2032, 30.7351];
/** A post officer of 商圈警务室 and his phone, which lists the post's referrals. */
const OFFICER = { person_id: 'visit_officer', name: '王警官', roles: ['post_officer'], unit_kind: 'post', unit_id: 'post-02' };
const OFFICER_PHONE = { device_id: 'f-post-visit', name: '王警官的手机', kind: 'post_officer', unit_id: 'post-02', key: 'key-f-post-visit', person_id: OFFICER.person_id };
/** Where the phone stands: some 40 m from the place. */
const NEAR = [107.2035, 30.7354];

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-visits-'));
let server = null;
let baseUrl = null;
let browser = null;
const pageErrors = [];

process.on('exit', () => server?.proc.kill('SIGKILL'));

async function api(method, urlPath, token, body) {
  const res = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  assert.ok(res.ok, `${method} ${urlPath}: ${res.status} ${text}`);
  return json;
}

async function waitIn(p, what, fn, arg, timeout) {
  try {
    await p.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    const toast = await p.evaluate(() => document.getElementById('toast')?.textContent ?? '').catch(() => '');
    throw new Error(`${what}: not within ${timeout} ms (${e.message.split('\n')[0]}; toast: ${toast})`);
  }
}

before(async () => {
  server = await startServer({ bin: BIN, root: ROOT, dataDir });
  baseUrl = `http://${server.addr}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  await api('POST', '/api/v1/people', ADMIN, PERSON);
  await api('POST', '/api/v1/devices', ADMIN, DEVICE);
  await api('POST', '/api/v1/people', ADMIN, OFFICER);
  await api('POST', '/api/v1/devices', ADMIN, OFFICER_PHONE);
});

after(async () => {
  await browser?.close().catch(() => {});
  const s = server;
  server = null;
  await stopServer(s);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a grid member arrives at a home visit and completes it from the field app', { timeout: 180_000 }, async () => {
  const { visit } = await api('POST', '/api/v1/home-visits', ADMIN, {
    person: { name: '李大爷', phone: '13900000000' },
    lon: PLACE[0],
    lat: PLACE[1],
    address: '大同社区 3 组 12 号',
    reason: '行动不便，上门办理法律援助申请',
    assignee_id: PERSON.person_id,
  });
  const id = visit.visit_id;

  const context = await browser.newContext({ ...PHONE, geolocation: { longitude: NEAR[0], latitude: NEAR[1], accuracy: 8 } });
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  await p.goto(`${baseUrl}/field/#server=${encodeURIComponent(baseUrl)}&device=${DEVICE.device_id}&key=${DEVICE.key}`, { timeout: 30_000 });
  await waitIn(p, 'the app is ready', () => document.documentElement.dataset.state === 'ready', null, 30_000);

  // The visits tab lists the visit assigned to her.
  await p.click('#tabs button[data-tab="visits"]');
  await waitIn(p, 'the visit is listed', (n) => document.querySelector(`#panel-visits li.visit[data-id="${n}"][data-status="assigned"]`), id, 15_000);
  const text = await p.textContent(`#panel-visits li.visit[data-id="${id}"]`);
  assert.match(text, /李大爷/);
  assert.match(text, /待上门/);

  // 到达: the phone sends where it is, then arrives; the server checks it against the place.
  await p.click(`#panel-visits li.visit[data-id="${id}"] button.arrive`);
  await waitIn(p, 'the visit is arrived', (n) => document.querySelector(`#panel-visits li.visit[data-id="${n}"][data-status="arrived"]`), id, 20_000);
  const arrived = await api('GET', `/api/v1/home-visits/${id}`, ADMIN);
  assert.equal(arrived.visit.status, 'arrived');
  assert.ok(arrived.visit.arrived_distance_m <= 150, JSON.stringify(arrived.visit));

  // 完成 with a note.
  await p.fill(`#panel-visits li.visit[data-id="${id}"] textarea`, '已协助填写法律援助申请表');
  await p.click(`#panel-visits li.visit[data-id="${id}"] button.complete-send`);
  await waitIn(p, 'the visit is done', (n) => document.querySelector(`#panel-visits li.visit[data-id="${n}"][data-status="done"]`), id, 15_000);

  const done = await api('GET', `/api/v1/home-visits/${id}`, ADMIN);
  assert.equal(done.visit.status, 'done');
  assert.equal(done.visit.note, '已协助填写法律援助申请表');
  assert.equal(done.visit.overdue, false);
  const stats = await api('GET', '/api/v1/home-visits/statistics', ADMIN);
  assert.equal(stats.by_status.done, 1);
  assert.deepEqual(pageErrors, []);
  await context.close();
});

test("a post officer's phone lists the post's referrals with their status, read only", { timeout: 120_000 }, async () => {
  const { referral } = await api('POST', '/api/v1/referrals', ADMIN, {
    business: 'legal_aid',
    person: { name: '张三' },
    summary: '工资被拖欠三个月',
    post_id: 'post-02',
  });
  const context = await browser.newContext({ ...PHONE, geolocation: { longitude: PLACE[0], latitude: PLACE[1], accuracy: 8 } });
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  await p.goto(`${baseUrl}/field/#server=${encodeURIComponent(baseUrl)}&device=${OFFICER_PHONE.device_id}&key=${OFFICER_PHONE.key}`, { timeout: 30_000 });
  await waitIn(p, 'the app is ready', () => document.documentElement.dataset.state === 'ready', null, 30_000);
  await p.click('#tabs button[data-tab="visits"]');
  const sel = `#panel-visits li.referral[data-id="${referral.referral_id}"][data-status="${referral.status}"]`;
  await waitIn(p, 'the referral is listed', (s) => document.querySelector(s), sel, 15_000);
  const text = await p.textContent(sel);
  assert.match(text, /法律援助 · 张三/);
  assert.match(text, referral.status === 'waiting' ? /等待司法所上班/ : /已转交/);
  assert.equal(await p.locator('#panel-visits li.referral button').count(), 0, 'read only');
  assert.deepEqual(pageErrors, []);
  await context.close();
});
