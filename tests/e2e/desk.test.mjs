// The judicial office's desk (司法所工作台) end to end, in a real headless Chromium
// (Debian's `chromium`, driven by playwright-core): a real `liandong serve` process on the
// Dazhu demo map with the demo configuration, and the page as the server serves it.
//
//   node --test tests/e2e/desk.test.mjs
//
// needs `cargo build -p liandong` (the binary is `$CARGO_TARGET_DIR/debug/liandong`),
// `npm ci --prefix web` and `/usr/bin/chromium`. A mediator (a person with role partner
// of the judicial office) signs in with their password; a walk-in case filed through the
// API after the page opened appears without a reload; the mediator accepts it (themself
// as the mediator, a venue), books a session and records an agreement reached in
// people's mediation, and the API then shows the case mediated with those values. A
// referral a post registered is taken up and done at the 转办队列 (the office open around
// the clock for the test). The 重大警情 view lists an open priority-1 incident and offers
// no button. It writes
// docs/screenshots/desk-zh.png and fails on any `securitypolicyviolation` or page error.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, OPERATOR, CHROMIUM_ARGS, startServer, stopServer } from './common.mjs';

/** The demo configuration's post officer (post-01), who registers after-hours business. */
const OFFICER = 'demo-officer-token';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || 'target');
const BIN = path.join(TARGET, 'debug', 'liandong');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'docs/screenshots');
/** The bound of every wait for the page; the desk polls every 5 s. */
const UI_MS = 15_000;

const MEDIATOR = 'e2e-mediator';
const MEDIATOR_NAME = '王调解';
const PASSWORD = 'e2e-desk-password-1';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-desk-'));
let server = null;
let baseUrl = null;
let browser = null;
let page = null;
const cspViolations = [];
const pageErrors = [];

process.on('exit', () => server?.proc.kill('SIGKILL'));

/**
 * The demo configuration with the judicial office open around the clock, every day, so
 * that a referral is handed over at once whenever the test runs (the office's hours
 * themselves are the server tests' business).
 */
function config() {
  let demo = fs.readFileSync(path.join(ROOT, 'config/demo.toml'), 'utf8');
  const always = { hours: '["00:00-23:59"]', weekdays: '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]', holidays: '[]' };
  if (/^\[judicial_office\]$/m.test(demo)) {
    for (const [key, value] of Object.entries(always)) {
      // A key's value may span lines (the holidays): up to its closing bracket.
      const re = new RegExp(`^${key} = \\[[^\\]]*\\]`, 'm');
      assert.match(demo, re, `config/demo.toml's [judicial_office] has ${key}`);
      demo = demo.replace(re, `${key} = ${value}`);
    }
  } else {
    demo += `\n[judicial_office]\n${Object.entries(always).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`;
  }
  const file = path.join(dataDir, 'desk.toml');
  fs.writeFileSync(file, demo);
  return file;
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

/** The case in an answer that wraps it (`{"case": …}`) or is it. */
const theCase = (answer) => answer?.case ?? answer;

let incidentId = null;

before(async () => {
  server = await startServer({ bin: BIN, root: ROOT, dataDir, config: config() });
  baseUrl = `http://${server.addr}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  await api('POST', '/api/v1/people', ADMIN, { person_id: MEDIATOR, name: MEDIATOR_NAME, roles: ['partner'], unit_kind: 'judicial_office' });
  await api('PUT', `/api/v1/people/${MEDIATOR}/password`, ADMIN, { password: PASSWORD });
  const { incident } = await api('POST', '/api/v1/incidents', OPERATOR, { title: '石河镇持刀伤人', lon: 107.21, lat: 30.74, priority: 1, kind: 'fight' });
  incidentId = incident.incident_id;
  // A lesser incident, which the office is not shown.
  await api('POST', '/api/v1/incidents', OPERATOR, { title: '路口刮擦', lon: 107.22, lat: 30.75, priority: 3, kind: 'traffic' });

  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  page = await context.newPage();
  await page.exposeFunction('__cspViolation', (v) => cspViolations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI }));
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
});

after(async () => {
  await browser?.close();
  await stopServer(server);
  server = null;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

let signedIn = false;

/** The mediator signs in at the desk's form, once; each test may be the first to ask. */
async function signIn() {
  if (signedIn) return;
  signedIn = true;
  await page.goto(`${baseUrl}/desk.html`);
  await page.locator('#signin-form').waitFor({ state: 'visible', timeout: UI_MS });
  assert.equal((await page.textContent('#signin-form h2')).trim(), '登录司法所工作台');
  await page.fill('#signin-person', MEDIATOR);
  await page.fill('#signin-password', PASSWORD);
  await page.click('#signin-form button[type="submit"]');
  await page.waitForFunction(() => document.documentElement.dataset.state === 'ready', null, { timeout: UI_MS });
  assert.match(await page.textContent('#who'), new RegExp(`${MEDIATOR_NAME}.*司法所`));
  assert.equal((await page.textContent('#tabs button.on [data-i18n]')).trim(), '调解案件', 'a mediator starts at the cases');
}

test('a mediator signs in, sees a walk-in case appear, accepts it, books a session and records an agreement', async () => {
  await signIn();

  // Filed after the page opened: the poll brings it in without a reload.
  const filed = theCase(
    await api('POST', '/api/v1/mediation', OPERATOR, {
      dispute_type: 'land',
      summary: '两户村民因承包地边界发生争执',
      parties: [{ name: '张某', phone: '13800000001' }, { name: '李某' }],
      lon: 107.212,
      lat: 30.742,
    }),
  );
  const id = filed.case_id;
  assert.equal(filed.status, 'pending');
  const item = page.locator(`#case-list li[data-id="${id}"]`);
  await item.waitFor({ timeout: UI_MS });
  assert.match(await item.textContent(), /土地纠纷.*待受理.*两户村民因承包地边界发生争执/s);
  await item.click();
  await page.locator(`#case-detail[data-id="${id}"][data-status="pending"] #accept-button`).waitFor({ timeout: UI_MS });

  // 受理: the mediator (themself, chosen already) and a venue.
  const venues = (await page.$$eval('form.accept select[name="venue_id"] option', (os) => os.map((o) => o.value))).filter(Boolean);
  assert.ok(venues.length >= 1, 'the venues of the map are offered');
  const venue = venues[venues.length - 1];
  assert.equal(await page.inputValue('form.accept select[name="mediator_id"]'), MEDIATOR);
  await page.selectOption('form.accept select[name="venue_id"]', venue);
  await page.click('#accept-button');
  await page.locator(`#case-detail[data-status="accepted"]`).waitFor({ timeout: UI_MS });
  assert.match(await page.textContent('#case-detail'), new RegExp(`调解员\\s*${MEDIATOR_NAME}`));

  // 安排调解: tomorrow at half past nine, China time, at the same venue.
  const tomorrow = new Date(Date.now() + 8 * 3600_000 + 24 * 3600_000).toISOString().slice(0, 10);
  await page.fill('form.session input[name="starts"]', `${tomorrow}T09:30`);
  await page.click('#session-button');
  await page.locator('#case-detail ol.sessions li').waitFor({ timeout: UI_MS });
  assert.match(await page.textContent('#case-detail ol.sessions'), /第 1 次/);

  // 调解结果: people's mediation, an agreement reached.
  await page.selectOption('form.outcome select[name="mediation_type"]', 'people');
  await page.fill('form.outcome textarea[name="outcome"]', '双方同意以界桩为准重新划定边界');
  assert.equal(await page.isChecked('form.outcome input[name="success"]'), true);
  await page.click('#outcome-button');
  await page.locator(`#case-detail[data-status="mediated"]`).waitFor({ timeout: UI_MS });
  await page.locator(`#case-list li[data-id="${id}"][data-status="mediated"]`).waitFor({ timeout: UI_MS });
  assert.equal(await page.locator('#follow-up-button').count(), 1, 'a mediated case is followed up next');

  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'desk-zh.png') });

  const c = theCase(await api('GET', `/api/v1/mediation/${id}`, OPERATOR));
  assert.equal(c.status, 'mediated');
  assert.equal(c.mediator_id, MEDIATOR);
  assert.equal(c.venue_id, venue);
  assert.equal(c.mediation_type, 'people');
  assert.equal(c.outcome, '双方同意以界桩为准重新划定边界');
  assert.equal(c.success, true);
  assert.equal(c.sessions?.length, 1);
  assert.equal(c.sessions[0].starts_ms, Date.parse(`${tomorrow}T09:30:00+08:00`));
});

test('the office takes up a referral a post handed over and marks it done', async () => {
  const { referral } = await api('POST', '/api/v1/referrals', OFFICER, {
    business: 'legal_aid',
    person: { name: '赵大爷', phone: '13800000003' },
    summary: '老人因赡养纠纷申请法律援助',
  });
  const id = referral.referral_id;
  assert.equal(referral.status, 'handed', 'the office is open: handed at once');
  await signIn();
  await page.click('#tabs button[data-view="referrals"]');
  const item = page.locator(`#referral-list li[data-id="${id}"]`);
  await item.locator('button.take').waitFor({ timeout: UI_MS });
  assert.match(await item.textContent(), /法律援助.*待接办.*老人因赡养纠纷申请法律援助.*赵大爷/s);
  await item.locator('button.take').click();
  await page.locator(`#referral-list li[data-id="${id}"][data-status="taken"] button.done`).waitFor({ timeout: UI_MS });
  await page.fill(`#referral-list li[data-id="${id}"] textarea`, '已电话联系，约定明日到所办理');
  await page.click(`#referral-list li[data-id="${id}"] button.done`);
  await page.locator(`#referral-list li[data-id="${id}"][data-status="done"]`).waitFor({ timeout: UI_MS });
  const { referrals } = await api('GET', '/api/v1/referrals?limit=10', OPERATOR);
  const r = referrals.find((x) => x.referral_id === id);
  assert.equal(r.status, 'done');
  assert.equal(r.note, '已电话联系，约定明日到所办理');
  assert.equal(r.taken_by, MEDIATOR_NAME);
});

test('重大警情 lists the open priority-1 incident, read only', async () => {
  await signIn();
  await page.click('#tabs button[data-view="incidents"]');
  const item = page.locator(`#incident-list li[data-id="${incidentId}"]`);
  await item.waitFor({ timeout: UI_MS });
  assert.match(await item.textContent(), /石河镇持刀伤人/);
  assert.equal(await page.locator('#incident-list li').count(), 1, 'only priority 1');
  assert.equal(await page.locator('#view-incidents button, #view-incidents form, #view-incidents input, #view-incidents textarea').count(), 0, 'nothing to act with');
});

test('no page broke its Content-Security-Policy or threw', () => {
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(pageErrors, []);
});
