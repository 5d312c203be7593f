// The printable handover sheet (交接班记录) at /handover.html?id=N: the sheet the server
// prepared (`GET /api/v1/handovers/{id}`), the outgoing person's "sign" and the incoming
// person's "accept" buttons (each shown only to that person, at the step where it
// applies; the server decides either way), and a print button. Printed, the page is the
// sheet alone on A4: handover.css leaves out buttons, note fields and the status line.
//
// It uses the wall map's token (the same origin's localStorage, or `?token=`), API
// helper, DOM helper and strings.

import { Api, takeToken } from '/wallmap/api.js';
import { $, el } from '/wallmap/dom.js';
import { initialLang, setLang, t, kindName } from '/wallmap/i18n.js';
import { moment } from '/wallmap/handovers.js';

const page = { api: null, me: null, id: null, handover: null };

/** A table of `rows` under `columns`, each column `[header key, cell of a row]`. */
function table(columns, rows) {
  const tbl = el('table');
  const head = el('tr');
  for (const [key] of columns) head.append(el('th', '', t(`handover.${key}`)));
  tbl.append(el('thead'), el('tbody'));
  tbl.tHead.append(head);
  for (const r of rows) {
    const tr = el('tr');
    for (const [key, cell] of columns) tr.append(el('td', key === 'col_id' || key === 'col_time' ? 'num' : '', cell(r)));
    tbl.tBodies[0].append(tr);
  }
  return tbl;
}

/** A section of the sheet: its title with the count, its table or "none", and how many more. */
function part(name, titleKey, section, columns) {
  const total = section.items.length + section.more;
  const s = el('section', 'part');
  s.dataset.part = name;
  const h = el('h2', '', t(`handover.${titleKey}`));
  h.append(el('span', 'count', `(${total})`));
  s.append(h);
  if (section.items.length === 0) s.append(el('p', 'empty', t('handover.empty')));
  else s.append(table(columns, section.items));
  if (section.more > 0) s.append(el('p', 'more', t('handover.more', { n: section.more })));
  return s;
}

const dash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));
const escalation = (e) => (e && e !== 'none' ? t(`escalation.${e}`) : '—');

const INCIDENT_COLUMNS = [
  ['col_id', (i) => String(i.incident_id)],
  ['col_title', (i) => i.title],
  ['col_kind', (i) => kindName(i.kind)],
  ['col_priority', (i) => t('handover.priority', { n: i.priority })],
  ['col_state', (i) => t(`state.${i.state}`)],
  ['col_since', (i) => moment(i.since_ms)],
  ['col_unit', (i) => dash(i.assigned_unit)],
  ['col_escalation', (i) => escalation(i.escalation)],
];

const ALERT_COLUMNS = [
  ['col_id', (a) => String(a.seq)],
  ['col_rule', (a) => t(`rule.${a.rule}`)],
  ['col_priority', (a) => t('handover.priority', { n: a.priority })],
  ['col_time', (a) => moment(a.time_ms)],
  ['col_township', (a) => dash(a.township)],
];

const PLAN_COLUMNS = [
  ['col_team', (p) => p.team_name ?? p.team_id],
  ['col_version', (p) => String(p.version)],
  ['col_kind', (p) => t(`plan_kind.${p.kind}`)],
  ['col_time', (p) => moment(p.created_ms)],
  ['col_escalation', (p) => escalation(p.escalation)],
];

const NOTICE_COLUMNS = [
  ['col_incident', (n) => String(n.incident_id)],
  ['col_escalation', (n) => escalation(n.level)],
  ['col_person', (n) => dash(n.person_id)],
  ['col_time', (n) => moment(n.at_ms)],
];

const EVENT_COLUMNS = [
  ['col_time', (e) => moment(e.at_ms)],
  ['col_event', (e) => t(`handover.event.${e.event}`)],
  ['col_id', (e) => String(e.id)],
  ['col_what', (e) => (e.event === 'sos' || e.event === 'priority1_alert' ? t(`rule.${e.what}`) : e.what)],
];

/** One person's box: who, when they signed (or "not yet"), their note, and their button. */
function signature(h, who) {
  const outgoing = who === 'outgoing';
  const box = el('div', `signature ${who}`);
  const at = outgoing ? h.signed_ms : h.accepted_ms;
  const note = outgoing ? h.sign_note : h.accept_note;
  const name = outgoing ? h.sheet.outgoing_name : h.sheet.incoming_name;
  box.append(el('h3', '', t(`handover.${who}`)), el('div', 'who', name ?? (outgoing ? h.outgoing_person_id : h.incoming_person_id)));
  box.append(el('div', 'when', `${t(outgoing ? 'handover.signed_at' : 'handover.accepted_at')}：${at ? moment(at) : t('handover.not_yet')}`));
  if (note) box.append(el('div', 'note', `${t('handover.note')}：${note}`));
  const mine = page.me?.person_id && page.me.person_id === (outgoing ? h.outgoing_person_id : h.incoming_person_id);
  const due = outgoing ? h.state === 'prepared' : h.state === 'signed';
  if (mine && due) {
    const text = el('textarea');
    text.id = `${who}-note`;
    text.maxLength = 500;
    text.placeholder = t('handover.note_placeholder');
    const button = el('button', '', t(outgoing ? 'handover.sign' : 'handover.accept'));
    button.type = 'button';
    button.id = outgoing ? 'sign-button' : 'accept-button';
    button.addEventListener('click', () => step(outgoing ? 'sign' : 'accept', button, text.value));
    box.append(text, button);
  }
  return box;
}

/** Signs or accepts, then shows the handover as the server answered it. */
async function step(which, button, note) {
  button.disabled = true;
  try {
    const { handover } = await page.api.post(`/api/v1/handovers/${page.id}/${which}`, note.trim() ? { note } : {});
    render(handover);
    status(t(which === 'sign' ? 'handover.signed_ok' : 'handover.accepted_ok'));
  } catch (e) {
    button.disabled = false;
    status(t('handover.step_failed', { reason: e.message }), true);
  }
}

function status(text, error = false) {
  const s = $('sheet-status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

function render(h) {
  page.handover = h;
  const s = h.sheet;
  const main = $('sheet');
  main.dataset.state = h.state;
  const nav = el('nav', 'actions');
  const print = el('button', '', t('handover.print'));
  print.type = 'button';
  print.id = 'print-button';
  print.addEventListener('click', () => window.print());
  nav.append(print);
  const head = el('header', 'sheet-head');
  head.append(el('div', 'org', t('handover.org')), el('h1', '', t('handover.page_title')));
  const facts = el('dl', 'facts');
  const fact = (key, value) => facts.append(el('dt', '', t(`handover.${key}`)), el('dd', '', value));
  fact('unit', s.unit_name);
  fact('number', String(h.handover_id));
  fact('shift_label', t('handover.shift', { from: moment(h.from_ms), to: moment(h.to_ms) }));
  fact('prepared_at', moment(h.prepared_ms));
  const parts = [
    part('open_incidents', 'open_incidents', s.open_incidents, INCIDENT_COLUMNS),
    part('unacked_alerts', 'unacked_alerts', s.unacked_alerts, ALERT_COLUMNS),
    part('escalated_incidents', 'escalated', s.escalated_incidents, INCIDENT_COLUMNS),
    part('unacked_escalations', 'unacked_escalations', s.unacked_escalations ?? { items: [], more: 0 }, NOTICE_COLUMNS),
    part('unacked_plans', 'unacked_plans', s.unacked_plans, PLAN_COLUMNS),
    part('events', 'events', s.events, EVENT_COLUMNS),
  ];
  const signatures = el('section', 'signatures');
  signatures.append(signature(h, 'outgoing'), signature(h, 'incoming'));
  const state = el('p', 'status');
  state.id = 'sheet-status';
  state.textContent = t(`handover.state.${h.state}`);
  main.replaceChildren(nav, state, head, facts);
  if (s.read_limit_reached) main.append(el('p', 'warning', t('handover.read_limit')));
  main.append(...parts, signatures);
  document.title = `${t('handover.page_title')} · ${s.unit_name} · ${h.handover_id}`;
}

async function start() {
  setLang(initialLang());
  document.title = t('handover.page_title');
  const token = takeToken();
  page.id = new URLSearchParams(location.search).get('id');
  if (!token) return status(t('handover.no_token'), true);
  if (!page.id) return status(t('handover.no_id'), true);
  page.api = new Api(token);
  try {
    page.me = await page.api.get('/api/v1/whoami');
    const { handover } = await page.api.get(`/api/v1/handovers/${encodeURIComponent(page.id)}`);
    render(handover);
  } catch (e) {
    status(t('handover.load_failed', { reason: e.message }), true);
  }
}

start();
