// The administrator's people view (人员) and the duty panel (今日值班) end to end, in a real
// headless Chromium against a real `liandong serve` on the Dazhu demo map, with a fresh
// data directory and an ephemeral loopback port.
//
//   node --test tests/e2e/people.test.mjs
//
// needs `cargo build` (the binary is `$CARGO_TARGET_DIR/debug/liandong`), `npm ci --prefix
// web` and `/usr/bin/chromium`. The administrator adds a person through the form, sees a
// refusal next to the field the server named, changes the person, is told to reload when
// someone else changed them first, deactivates them, and filters and pages the list; an
// operator's wall offers no people view. It writes docs/screenshots/wallmap-people-zh.png.

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
/** The bound of a wait for the page to answer a click. */
const UI_MS = 10_000;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-people-'));
let server = null;
let baseUrl = null;
let browser = null;
let context = null;
const pageErrors = [];
const cspViolations = [];

process.on('exit', () => server?.proc.kill('SIGKILL'));

/** A request to the API with `token`: `{ status, body }`. */
async function call(method, urlPath, token, body) {
  const res = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Like `call`, failing unless the server took it. */
async function api(method, urlPath, token, body) {
  const { status, body: answer } = await call(method, urlPath, token, body);
  assert.ok(status >= 200 && status < 300, `${method} ${urlPath}: ${status} ${JSON.stringify(answer)}`);
  return answer;
}

/** Waits for a condition in the page, bounded; the message says what did not happen. */
async function waitInPage(p, what, fn, arg, timeout = UI_MS) {
  try {
    await p.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    throw new Error(`${what}: not within ${timeout} ms (${e.message.split('\n')[0]})`);
  }
}

/** A new page of the shared context, watched for errors and policy violations. */
async function newPage() {
  const p = await context.newPage();
  await p.exposeFunction('__cspViolation', (v) => cspViolations.push(v));
  await p.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI }));
  });
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  p.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket connection to .* failed|Failed to load resource/.test(m.text())) pageErrors.push(m.text());
  });
  return p;
}

/** A wall signed in with `token`, ready. */
async function wall(token) {
  const p = await newPage();
  await p.goto(`${baseUrl}/?token=${token}&lang=zh`, { timeout: 30_000 });
  await waitInPage(p, 'the wall is ready', () => document.documentElement.dataset.state === 'ready', null, 30_000).catch((e) => {
    throw new Error(`${e.message}; page errors: ${JSON.stringify(pageErrors)}`);
  });
  return p;
}

/** The person ids the people view lists, in order. */
function listed(p) {
  return p.evaluate(() => [...document.querySelectorAll('#people-panel li.person')].map((li) => li.dataset.id));
}

/** Waits until the listed ids are exactly `ids` (in order). */
function listIs(p, what, ids) {
  return waitInPage(p, what, (want) => JSON.stringify([...document.querySelectorAll('#people-panel li.person')].map((li) => li.dataset.id)) === JSON.stringify(want), ids);
}

const readLayer = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'maps/dazhu', `${name}.geojson`), 'utf8'));

before(async () => {
  server = await startServer({ bin: BIN, root: ROOT, dataDir });
  baseUrl = `http://${server.addr}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopServer(server);
  server = null;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the people view and the duty panel, in headless Chromium', { timeout: 240_000 }, async (t) => {
  const post = readLayer('posts').features[0].properties;
  const grids = readLayer('grids').features.map((f) => f.properties);
  // 55 grid members: more than a page of the list (50).
  const givenNames = ['建国', '丽华', '志强', '秀英', '海燕'];
  for (let i = 0; i < 55; i++) {
    const g = grids[i];
    await api('POST', '/api/v1/people', ADMIN, { person_id: `grid-${g.id}`, name: `${'王李张刘陈'[i % 5]}${givenNames[(i * 3) % 5]}`, roles: ['grid_member'], unit_kind: 'grid', unit_id: g.id });
  }
  await api('POST', '/api/v1/people', ADMIN, { person_id: 'cc-operator-01', name: '赵敏', roles: ['operator'], unit_kind: 'command_centre' });
  await api('POST', '/api/v1/people', ADMIN, { person_id: 'mediator-01', name: '孙德成', roles: ['partner'], unit_kind: 'judicial_office' });
  await api('POST', '/api/v1/people', ADMIN, { person_id: `${post.id}-leader`, name: '周国平', phone: '13800000001', roles: ['post_officer'], unit_kind: 'post', unit_id: post.id });

  await t.test("an operator's wall offers no people view", async () => {
    const p = await wall(OPERATOR);
    assert.equal(await p.isVisible('#toolbar button[data-open="people"]'), false, "the operator's toolbar has no people button");
    assert.equal(await p.isVisible('#drawer button[data-tab="people"]'), false, "the operator's drawer has no people tab");
    assert.equal(await p.evaluate(() => window.wallmap.people), null, "the operator's page built no people view");
    // The server refuses an operator's change whatever the page offers.
    assert.equal((await call('POST', '/api/v1/people', OPERATOR, { person_id: 'x1', name: '某', roles: ['operator'], unit_kind: 'command_centre' })).status, 403);
    await p.close();
  });

  const admin = await wall(ADMIN);
  const form = '#people-panel form.person-form';

  await t.test('the administrator sees the people, in Chinese, a page at a time', async () => {
    await admin.click('#toolbar button[data-open="people"]');
    await waitInPage(admin, 'the first page is listed', () => document.querySelectorAll('#people-panel li.person').length === 50);
    assert.equal(await admin.textContent('#drawer button[data-tab="people"]'), '人员');
    assert.equal(await admin.textContent(`${form} h4`), '新增人员');
    const row = await admin.textContent(`#people-panel li.person[data-id="cc-operator-01"]`);
    assert.match(row, /赵敏/);
    assert.match(row, /指挥中心值班员/);
    assert.match(row, /指挥中心/);
    assert.match(await admin.textContent('#people-panel .pager'), /第 1 页/);
    await admin.click('#people-panel .pager button:last-child');
    await waitInPage(admin, 'the second page is listed', () => /第 2 页/.test(document.querySelector('#people-panel .pager').textContent) && document.querySelectorAll('#people-panel li.person').length === 8);
    assert.ok(await admin.isDisabled('#people-panel .pager button:last-child'), 'the last page has no next');
    await admin.click('#people-panel .pager button:first-child');
    await waitInPage(admin, 'back on the first page', () => document.querySelectorAll('#people-panel li.person').length === 50);
  });

  const id = 'e2e-wang';
  await t.test('a refusal is shown next to the field the server named', async () => {
    await admin.fill(`${form} input[name="person_id"]`, id);
    await admin.fill(`${form} input[name="name"]`, '王小明');
    await admin.fill(`${form} input[name="phone"]`, '12ab');
    await admin.check(`${form} input[name="roles"][value="post_officer"]`);
    await admin.selectOption(`${form} select[name="unit_kind"]`, 'post');
    await admin.fill(`${form} input[name="unit_id"]`, post.id);
    await admin.click(`${form} button[type="submit"]`);
    await waitInPage(admin, 'the refusal names the phone', () => document.querySelector('#people-panel form p.error')?.dataset.field === 'phone');
    assert.match(await admin.textContent(`${form} p.error`), /^电话有误：/);
    assert.ok(await admin.evaluate(() => document.querySelector('#people-panel form [data-field="phone"]').classList.contains('invalid')), 'the phone field is marked');
    assert.equal((await call('GET', `/api/v1/people/${id}`, ADMIN)).status, 404, 'nothing was stored');
    // A unit that is not on the map: the server names `unit_id`.
    await admin.fill(`${form} input[name="phone"]`, '13900000002');
    await admin.fill(`${form} input[name="unit_id"]`, 'post-nowhere');
    await admin.click(`${form} button[type="submit"]`);
    await waitInPage(admin, 'the refusal names the unit', () => document.querySelector('#people-panel form p.error')?.dataset.field === 'unit_id');
    assert.match(await admin.textContent(`${form} p.error`), /^所属单位有误：/);
  });

  await t.test('the administrator adds a person and the server has them', async () => {
    await admin.fill(`${form} input[name="unit_id"]`, post.id);
    await admin.click(`${form} button[type="submit"]`);
    await waitInPage(admin, 'the form says it is added', (id) => document.querySelector('#people-panel form p.saved')?.textContent.includes(id), id);
    assert.equal(await admin.isVisible(`${form} p.error`), false, 'no error is left');
    const { person } = await api('GET', `/api/v1/people/${id}`, ADMIN);
    assert.deepEqual(
      { name: person.name, phone: person.phone, roles: person.roles, unit_kind: person.unit_kind, unit_id: person.unit_id, active: person.active },
      { name: '王小明', phone: '13900000002', roles: ['post_officer'], unit_kind: 'post', unit_id: post.id, active: true },
    );
    assert.equal(await admin.inputValue(`${form} input[name="person_id"]`), '', 'the form is empty for the next one');
    // The same id again: 409, said in words.
    await admin.fill(`${form} input[name="person_id"]`, id);
    await admin.fill(`${form} input[name="name"]`, '王小明');
    await admin.check(`${form} input[name="roles"][value="post_officer"]`);
    await admin.selectOption(`${form} select[name="unit_kind"]`, 'command_centre');
    await admin.click(`${form} button[type="submit"]`);
    await waitInPage(admin, 'the form says the id exists', () => /已存在/.test(document.querySelector('#people-panel form p.error')?.textContent ?? ''));
  });

  await t.test('the administrator changes the person; a change made meanwhile by someone else is not overwritten', async () => {
    // The new person is on the first page (ids sort "c…" < "e2e-…" < "grid-…").
    const row = `#people-panel li.person[data-id="${id}"]`;
    await waitInPage(admin, 'the person is listed', (sel) => document.querySelector(sel) !== null, row);
    await admin.click(`${row} button[data-act="edit"]`);
    assert.equal(await admin.textContent(`${form} h4`), '修改人员：王小明');
    assert.ok(await admin.evaluate(() => document.querySelector('#people-panel form input[name="person_id"]').readOnly), 'the id cannot be changed');
    await admin.fill(`${form} input[name="name"]`, '王晓明');
    await admin.check(`${form} input[name="roles"][value="patrol_leader"]`);
    await admin.click(`${form} button[type="submit"]`);
    await waitInPage(admin, 'the form says it is saved', () => /已保存/.test(document.querySelector('#people-panel form p.saved')?.textContent ?? ''));
    let { person } = await api('GET', `/api/v1/people/${id}`, ADMIN);
    assert.equal(person.name, '王晓明');
    assert.deepEqual(person.roles, ['patrol_leader', 'post_officer']);
    await waitInPage(admin, 'the row shows the new name', (sel) => /王晓明/.test(document.querySelector(sel)?.textContent ?? ''), row);

    // The form is opened; another administrator changes the phone before it is saved.
    await admin.click(`${row} button[data-act="edit"]`);
    await admin.fill(`${form} input[name="name"]`, '王明');
    await api('PATCH', `/api/v1/people/${id}`, ADMIN, { phone: '13700000003' });
    await admin.click(`${form} button[type="submit"]`);
    await waitInPage(admin, 'the form says someone else changed the person', () => /已被他人修改/.test(document.querySelector('#people-panel form p.error')?.textContent ?? ''));
    assert.ok(await admin.isVisible(`${form} button:has-text("重新加载此人")`), 'it offers to read the person again');
    ({ person } = await api('GET', `/api/v1/people/${id}`, ADMIN));
    assert.equal(person.name, '王晓明', 'the stale change was not stored');
    await admin.click(`${form} button:has-text("重新加载此人")`);
    await waitInPage(admin, 'the form holds the person as stored now', () => document.querySelector('#people-panel form input[name="phone"]').value === '13700000003');
    assert.equal(await admin.inputValue(`${form} input[name="name"]`), '王晓明');
    await admin.fill(`${form} input[name="name"]`, '王明');
    await admin.click(`${form} button[type="submit"]`);
    await waitInPage(admin, 'saved after the reload', () => /已保存：王明/.test(document.querySelector('#people-panel form p.saved')?.textContent ?? ''));
    ({ person } = await api('GET', `/api/v1/people/${id}`, ADMIN));
    assert.deepEqual([person.name, person.phone], ['王明', '13700000003'], 'both changes stand');
  });

  await t.test('the administrator deactivates the person, and the filters find them', async () => {
    const row = `#people-panel li.person[data-id="${id}"]`;
    await admin.click(`${row} button[data-act="active"]`);
    await waitInPage(admin, 'the button asks for a second click', (sel) => document.querySelector(`${sel} button[data-act="active"]`)?.classList.contains('confirming'), row);
    assert.equal((await api('GET', `/api/v1/people/${id}`, ADMIN)).person.active, true, 'one click changes nothing');
    await admin.click(`${row} button[data-act="active"]`);
    await waitInPage(admin, 'the row shows the person inactive', (sel) => document.querySelector(sel)?.classList.contains('inactive'), row);
    assert.match(await admin.textContent(row), /已停用/);
    assert.equal((await api('GET', `/api/v1/people/${id}`, ADMIN)).person.active, false);

    await admin.selectOption('#people-panel select[name="filter_active"]', 'false');
    await listIs(admin, 'only the inactive person is listed', [id]);
    await admin.selectOption('#people-panel select[name="filter_active"]', 'true');
    await admin.selectOption('#people-panel select[name="filter_role"]', 'post_officer');
    await listIs(admin, 'the active post officers', [`${post.id}-leader`]);
    await admin.selectOption('#people-panel select[name="filter_active"]', '');
    await admin.fill('#people-panel input[name="filter_unit"]', post.id);
    await admin.press('#people-panel input[name="filter_unit"]', 'Enter');
    await listIs(admin, "the post's officers, active or not", [id, `${post.id}-leader`].sort());
    await admin.selectOption('#people-panel select[name="filter_role"]', 'partner');
    await listIs(admin, 'nobody of the post is a mediator', []);
    assert.match(await admin.textContent('#people-panel ol.people-list'), /没有符合条件的人员/);
    await admin.fill('#people-panel input[name="filter_unit"]', '');
    await admin.press('#people-panel input[name="filter_unit"]', 'Enter');
    await listIs(admin, 'the mediators', ['mediator-01']);

    // Reactivated: active again on the server.
    await admin.selectOption('#people-panel select[name="filter_role"]', '');
    await admin.fill('#people-panel input[name="filter_unit"]', post.id);
    await admin.press('#people-panel input[name="filter_unit"]', 'Enter');
    await listIs(admin, "the post's officers", [id, `${post.id}-leader`].sort());
    await admin.click(`${row} button[data-act="active"]`);
    await waitInPage(admin, 'the row shows the person active', (sel) => document.querySelector(sel) && !document.querySelector(sel).classList.contains('inactive'), row);
    assert.equal((await api('GET', `/api/v1/people/${id}`, ADMIN)).person.active, true);
  });

  await t.test('the screenshot of the people view in Chinese', async () => {
    await admin.fill('#people-panel input[name="filter_unit"]', '');
    await admin.press('#people-panel input[name="filter_unit"]', 'Enter');
    await waitInPage(admin, 'the first page is listed again', () => document.querySelectorAll('#people-panel li.person').length === 50);
    await admin.click(`#people-panel li.person[data-id="${id}"] button[data-act="edit"]`);
    await admin.waitForTimeout(300);
    fs.mkdirSync(SHOTS, { recursive: true });
    await admin.screenshot({ path: path.join(SHOTS, 'wallmap-people-zh.png') });
    assert.ok(fs.statSync(path.join(SHOTS, 'wallmap-people-zh.png')).size > 100_000, 'the screenshot holds a picture');
  });

  await t.test('the duty panel shows a roster set through the API; the administrator adds a shift and cancels it', async (t) => {
    if ((await call('GET', '/api/v1/duty', OPERATOR)).status === 404) {
      t.skip('the duty API (the duty helper\'s /api/v1/duty) is not in this build');
      return;
    }
    const H = 3600_000;
    const now = Date.now();
    await api('POST', '/api/v1/people', ADMIN, { person_id: 'cc-operator-02', name: '钱浩', roles: ['operator'], unit_kind: 'command_centre' });
    const until = now + 5 * H;
    const { shift_ids: ids } = await api('POST', '/api/v1/duty', ADMIN, {
      shifts: [
        { unit_kind: 'command_centre', person_id: 'cc-operator-01', duty: 'leader', starts_ms: now - H, ends_ms: until },
        { unit_kind: 'command_centre', person_id: 'cc-operator-02', duty: 'on_duty', starts_ms: now - H, ends_ms: until },
        { unit_kind: 'post', unit_id: post.id, person_id: `${post.id}-leader`, duty: 'leader', starts_ms: now - H, ends_ms: now + 3 * H },
      ],
    });
    assert.equal(ids.length, 3);
    const untilText = new Date(until).toLocaleTimeString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false, hour: '2-digit', minute: '2-digit' });

    // The operator's wall: today's duty, no editor.
    const op = await wall(OPERATOR);
    await op.click('#toolbar button[data-open="duty"]');
    const centre = '#duty-panel section.duty-unit[data-unit="command_centre"]';
    await waitInPage(op, "the command centre's duty is shown", (sel) => document.querySelectorAll(`${sel} li.shift.now`).length === 2, centre);
    assert.equal(await op.textContent('#duty-panel h4'), '今日值班');
    const leader = await op.textContent(`${centre} .duty-line.leader`);
    assert.match(leader, /值班领导/);
    assert.match(leader, /赵敏/);
    assert.ok(leader.includes(`至 ${untilText}`), `${leader} says until ${untilText}`);
    assert.match(await op.textContent(`${centre} .duty-line.on_duty`), /值班人员.*钱浩.*在岗/);
    assert.match(await op.textContent(`#duty-panel section.duty-unit[data-unit="${post.id}"]`), new RegExp(`${post.name}.*值班领导.*周国平`));
    assert.match(await op.textContent('#duty-panel .duty-summary'), /26 个警务室中 25 个此刻无人值班/);
    assert.equal(await op.evaluate(() => document.querySelector('#duty-panel details.duty-editor')), null, "the operator's panel has no editor");
    assert.equal(await op.evaluate(() => document.querySelectorAll('#duty-panel button.cancel').length), 0, 'nor cancel buttons');
    await op.close();

    // The administrator adds an officer's shift on the post, is refused a second leader, and cancels the shift.
    await admin.click('#toolbar button[data-open="duty"]');
    await waitInPage(admin, "the administrator's panel shows the roster", (sel) => document.querySelectorAll(`${sel} li.shift`).length === 2, centre);
    await admin.click('#duty-panel details.duty-editor summary');
    const dutyForm = '#duty-panel form.duty-form';
    await admin.selectOption(`${dutyForm} select[name="unit"]`, post.id);
    await admin.selectOption(`${dutyForm} select[name="duty"]`, 'on_duty');
    await admin.fill(`${dutyForm} input[name="person_id"]`, id);
    // Two hours today that do not hold this moment (Beijing time), so that the shift is
    // listed with its hours rather than as on duty now: three hours ahead, or, late in
    // the day, six hours back. It ends by 23:00 (a shift to midnight is listed as ending
    // at 00:00).
    const hourNow = Number(new Date(now).toLocaleString('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', hour12: false })) % 24;
    const from = hourNow <= 18 ? hourNow + 3 : hourNow - 6;
    const hh = (h) => `${String(h).padStart(2, '0')}:00`;
    const span = `${hh(from)}–${hh(from + 2)}`;
    await admin.fill(`${dutyForm} input[name="start"]`, hh(from));
    await admin.fill(`${dutyForm} input[name="hours"]`, '2');
    await admin.click(`${dutyForm} button[type="submit"]`);
    const mine = `#duty-panel section.duty-unit[data-unit="${post.id}"] li.shift[data-person="${id}"]`;
    await waitInPage(admin, 'the new shift is listed', (sel) => document.querySelector(sel) !== null, mine);
    assert.match(await admin.textContent(mine), new RegExp(`王明.*${span}`));
    assert.match(await admin.textContent(`${dutyForm} p.saved`), new RegExp(`已添加：王明 ${span}`));
    const listed = (await api('GET', '/api/v1/duty', ADMIN)).shifts.filter((s) => s.person_id === id);
    assert.equal(listed.length, 1, JSON.stringify(listed));
    assert.equal(listed[0].ends_ms - listed[0].starts_ms, 2 * H);

    // A second leader for the post while its leader is on duty: 409, said in the form.
    const nowText = new Date(now).toLocaleTimeString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false, hour: '2-digit', minute: '2-digit' });
    await admin.selectOption(`${dutyForm} select[name="duty"]`, 'leader');
    await admin.fill(`${dutyForm} input[name="person_id"]`, id);
    await admin.fill(`${dutyForm} input[name="start"]`, nowText);
    await admin.fill(`${dutyForm} input[name="hours"]`, '1');
    await admin.click(`${dutyForm} button[type="submit"]`);
    await waitInPage(admin, 'the form says the roster conflicts', () => /与已有排班冲突/.test(document.querySelector('#duty-panel form p.error')?.textContent ?? ''));
    assert.equal((await api('GET', '/api/v1/duty', ADMIN)).shifts.filter((s) => s.person_id === id).length, 1, 'nothing was added');

    await admin.click(`${mine} button.cancel`);
    await waitInPage(admin, 'the cancel asks for a second click', (sel) => document.querySelector(`${sel} button.cancel`)?.classList.contains('confirming'), mine);
    await admin.click(`${mine} button.cancel`);
    await waitInPage(admin, 'the cancelled shift is gone', (sel) => document.querySelector(sel) === null, mine);
    assert.equal((await api('GET', '/api/v1/duty', ADMIN)).shifts.filter((s) => s.person_id === id).length, 0, 'the server has it cancelled');
  });

  await t.test('no page error and no policy violation', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });
});
