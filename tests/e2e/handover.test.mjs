// The shift handover page (交接班) end to end, in a real headless Chromium (Debian's
// `chromium`, driven by playwright-core): a real `liandong serve` process on the Dazhu
// demo map with the demo configuration plus two command-centre duty officers (operators
// who are persons), and the page as the server serves it.
//
//   node --test tests/e2e/handover.test.mjs
//
// needs `cargo build -p liandong` (the binary is `$CARGO_TARGET_DIR/debug/liandong`),
// `npm ci --prefix web` and `/usr/bin/chromium`. The wall map's 交接班 panel lists the
// sheet and links to it; the outgoing officer sees the open incident, the unacknowledged
// SOS and the unacknowledged route plan, and signs; the incoming officer accepts; printed,
// the page has no buttons and no note fields. It writes docs/screenshots/handover-zh.png
// (the accepted sheet as printed) and fails on any `securitypolicyviolation`.

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
/** The bound of every wait for the page. */
const UI_MS = 15_000;

/** The duty officers' tokens: each acts for a person of the command centre. */
const OUT = 'e2e-cc-out-token';
const IN = 'e2e-cc-in-token';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-handover-'));
let server = null;
let baseUrl = null;
let browser = null;
const cspViolations = [];
const pageErrors = [];

process.on('exit', () => server?.proc.kill('SIGKILL'));

/** The demo configuration with the two duty officers' tokens added. */
function config() {
  const demo = fs.readFileSync(path.join(ROOT, 'config/demo.toml'), 'utf8');
  const extra = [
    ['cc_out', OUT],
    ['cc_in', IN],
  ]
    .map(([person, token]) => `\n[[tokens]]\ntoken = "${token}"\nrole = "operator"\nname = "${person}"\nperson_id = "${person}"\n`)
    .join('');
  const file = path.join(dataDir, 'handover.toml');
  fs.writeFileSync(file, demo + extra);
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

/** A page in a context of its own (its own localStorage, so its own token). */
async function open(urlPath, viewport = { width: 1280, height: 1600 }) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  const page = await context.newPage();
  await page.exposeFunction('__cspViolation', (v) => cspViolations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__cspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI }),
    );
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${baseUrl}${urlPath}`);
  return page;
}

/** The buttons and note fields a reader would see in `media` (`screen` or `print`). */
async function visibleControls(page, media) {
  await page.emulateMedia({ media });
  return page.$$eval('button, textarea', (els) =>
    els.filter((e) => getComputedStyle(e).display !== 'none' && e.getClientRects().length > 0).map((e) => e.id || e.tagName),
  );
}

let handoverId = null;
let incidentTitle = '村口土地纠纷';

before(async () => {
  server = await startServer({ bin: BIN, root: ROOT, dataDir, config: config() });
  baseUrl = `http://${server.addr}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });

  for (const [id, name] of [
    ['cc_out', '张值班'],
    ['cc_in', '李接班'],
  ]) {
    await api('POST', '/api/v1/people', ADMIN, { person_id: id, name, roles: ['operator'], unit_kind: 'command_centre' });
  }
  // The shift: an open incident, an SOS nobody acknowledged, a plan team-01 has not acknowledged.
  await api('POST', '/api/v1/incidents', OPERATOR, { title: incidentTitle, lon: 107.35, lat: 30.88, priority: 2, kind: 'dispute' });
  await api('POST', '/api/v1/devices', ADMIN, { device_id: 'e2e-sos-phone', name: '欢喜坪巡防队员', kind: 'patrol_member', unit_id: 'team-01', key: 'key-e2e-sos-phone' });
  const q = new URLSearchParams({ id: 'e2e-sos-phone', key: 'key-e2e-sos-phone', lat: '30.884', lon: '107.344', timestamp: String(Math.floor(Date.now() / 1000)), accuracy: '8', alarm: 'sos' });
  const res = await fetch(`${baseUrl}/osmand?${q}`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200, await res.text());
  await api('POST', '/api/v1/teams/team-01/plans', OPERATOR, {
    kind: 'manual',
    reason: '夜间加强村口巡逻',
    coordinates: [
      [107.345, 30.885],
      [107.35, 30.88],
    ],
  });
  const now = Date.now();
  const { handover } = await api('POST', '/api/v1/handovers', OPERATOR, {
    unit_kind: 'command_centre',
    from_ms: now - 8 * 3_600_000,
    to_ms: now + 60_000,
    outgoing_person_id: 'cc_out',
    incoming_person_id: 'cc_in',
  });
  handoverId = handover.handover_id;
});

after(async () => {
  await browser?.close();
  await stopServer(server);
  server = null;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the wall map lists the handover under 交接班 and links to its sheet', async () => {
  const page = await open(`/?token=${OPERATOR}`, { width: 1920, height: 1080 });
  const entry = page.locator('#toolbar [data-open="handovers"]');
  await entry.waitFor({ state: 'visible', timeout: UI_MS });
  assert.equal((await entry.textContent()).trim(), '交接班');
  await entry.click();
  const item = page.locator(`#handovers-panel li[data-id="${handoverId}"]`);
  await item.waitFor({ timeout: UI_MS });
  assert.match(await item.textContent(), /指挥中心.*待交班签字/s);
  assert.match(await item.textContent(), /张值班 → 李接班/);
  assert.equal(await item.locator('a.open').getAttribute('href'), `/handover.html?id=${handoverId}`);
  await page.context().close();
});

test('the outgoing officer sees the open items and signs; the incoming officer accepts; printed, no buttons', async () => {
  const out = await open(`/handover.html?id=${handoverId}&token=${OUT}`);
  await out.locator('main[data-state="prepared"] section[data-part="open_incidents"] td').first().waitFor({ timeout: UI_MS });
  const rows = async (p, partName) => p.locator(`section[data-part="${partName}"] tbody tr`).allTextContents();
  const incidents = await rows(out, 'open_incidents');
  assert.equal(incidents.length, 1, incidents.join('\n'));
  assert.match(incidents[0], new RegExp(`${incidentTitle}.*待派警`));
  const alerts = await rows(out, 'unacked_alerts');
  assert.equal(alerts.length, 1, alerts.join('\n'));
  assert.match(alerts[0], /紧急求助 SOS/);
  const plans = await rows(out, 'unacked_plans');
  assert.equal(plans.length, 1, plans.join('\n'));
  assert.match(plans[0], /欢喜坪平安志愿巡防队.*人工调整/, 'the team by its name');
  assert.equal(await out.locator('#accept-button').count(), 0, 'the outgoing officer is not offered to accept');
  await out.fill('#outgoing-note', '村口纠纷已约双方明早调解');
  await out.click('#sign-button');
  await out.locator('main[data-state="signed"]').waitFor({ timeout: UI_MS });
  assert.match(await out.locator('.signature.outgoing').textContent(), /张值班.*签字时间.*备注：村口纠纷已约双方明早调解/s);
  assert.equal(await out.locator('#sign-button').count(), 0, 'signed once: the button is gone');
  await out.context().close();

  const inc = await open(`/handover.html?id=${handoverId}&token=${IN}`);
  await inc.locator('#accept-button').waitFor({ timeout: UI_MS });
  // On screen the controls are there; printed, none of them is.
  assert.deepEqual(await visibleControls(inc, 'screen'), ['print-button', 'incoming-note', 'accept-button']);
  assert.deepEqual(await visibleControls(inc, 'print'), [], 'a printed sheet has no buttons or note fields');
  await inc.emulateMedia({ media: 'screen' });
  await inc.click('#accept-button');
  await inc.locator('main[data-state="accepted"]').waitFor({ timeout: UI_MS });
  assert.match(await inc.locator('.signature.incoming').textContent(), /李接班.*接班时间/s);
  assert.doesNotMatch(await inc.locator('.signature.incoming').textContent(), /未签/);

  // The accepted sheet as printed, for the README.
  await inc.emulateMedia({ media: 'print' });
  assert.deepEqual(await visibleControls(inc, 'print'), []);
  fs.mkdirSync(SHOTS, { recursive: true });
  await inc.setViewportSize({ width: 794, height: 1123 });
  await inc.screenshot({ path: path.join(SHOTS, 'handover-zh.png'), fullPage: true });
  await inc.context().close();

  const { handover } = await api('GET', `/api/v1/handovers/${handoverId}`, OPERATOR);
  assert.equal(handover.state, 'accepted');
  assert.equal(handover.sign_note, '村口纠纷已约双方明早调解');
});

test('no page broke its Content-Security-Policy or threw', () => {
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(pageErrors, []);
});
