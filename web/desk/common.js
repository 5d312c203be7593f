// What the desk's views share: times as the office reads them (China time), the pieces
// of a form, the lists in an API answer, and the marks of a late item. Built on the wall
// map's DOM helper and strings; no view imports another.

import { el } from '/wallmap/dom.js';
import { t, clock, dateLine } from '/wallmap/i18n.js';

/** China time is UTC+8 all year (no daylight saving): the office's clock. */
const CHINA_OFFSET_MS = 8 * 3600 * 1000;

/** A moment as the desk shows it: the date and the time of day, China time. */
export function moment(ms) {
  return Number.isFinite(ms) ? `${dateLine(ms)} ${clock(ms, false)}` : '—';
}

/**
 * The value a `datetime-local` input shows for `ms`, in China time whatever the
 * browser's own zone: the office books sessions in its own time.
 */
export function localValue(ms) {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 16);
}

/**
 * A `datetime-local` input's value (`2026-12-03T09:30`) as RFC 3339 in China time, as the
 * API takes times; `null` when empty or malformed.
 */
export function chinaTime(value) {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value ?? '') ? `${value}:00+08:00` : null;
}

/** The first list in an API answer (`{"cases": […]}`, `{"referrals": […]}`), or none. */
export function listIn(answer) {
  if (Array.isArray(answer)) return answer;
  for (const v of Object.values(answer ?? {})) if (Array.isArray(v)) return v;
  return [];
}

/** The one item in an answer that wraps it (`{"case": {…}}`), or the answer itself. */
export function itemIn(answer, key) {
  return answer?.[key] && typeof answer[key] === 'object' ? answer[key] : answer;
}

/** `—` for nothing. */
export const dash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));

/** A button with the string at `key` that runs `onClick`. */
export function button(key, onClick, cls = '') {
  const b = el('button', cls, t(key));
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

/** A labelled field of a form: the label's string at `key`, then `input`. */
export function field(key, input) {
  const label = el('label', 'field');
  label.append(el('span', 'label', t(key)), input);
  return label;
}

/** An input of `type` named `name`, with an optional value. */
export function input(name, type = 'text', value = '') {
  const i = el('input');
  i.type = type;
  i.name = name;
  if (value !== '' && value !== null && value !== undefined) i.value = String(value);
  return i;
}

/** A text area named `name`, at most `max` characters. */
export function textarea(name, max = 1000) {
  const a = el('textarea');
  a.name = name;
  a.maxLength = max;
  a.rows = 2;
  return a;
}

/** A select named `name` of `[value, text]` options, `value` chosen. */
export function select(name, options, value) {
  const s = el('select');
  s.name = name;
  for (const [v, text] of options) {
    const o = el('option', '', text);
    o.value = v;
    s.append(o);
  }
  if (value !== undefined && value !== null) s.value = String(value);
  return s;
}

/** A state's pill: `status.<state>` in the desk's strings, classed by the state. */
export function statusPill(table, state) {
  const s = el('span', `pill state-${state}`, t(`desk.${table}.${state}`));
  s.dataset.status = state;
  return s;
}

/** The mark of an item past its deadline (超期), or nothing. */
export function overdueMark(item) {
  if (!item?.overdue) return [];
  return [el('span', 'pill overdue', t('desk.overdue'))];
}

/** A line of facts: `[key, value]` pairs as a definition list. */
export function facts(pairs) {
  const dl = el('dl', 'facts');
  for (const [key, value] of pairs) dl.append(el('dt', '', t(key)), el('dd', '', dash(value)));
  return dl;
}

/** What a failed call says to the person at the desk. */
export function failure(e) {
  if (e?.status === 403 || e?.status === 404) return t('desk.not_allowed');
  return t('desk.failed', { reason: e?.message ?? String(e) });
}

/**
 * Runs `act` with `button` disabled; on success `done(answer)`, on failure the reason
 * through `toast`, and `stale()` when the server says the item moved on meanwhile (409:
 * another desk took the step), so that the view shows it as it is now.
 */
export async function busy(buttonEl, act, done, toast, stale) {
  buttonEl.disabled = true;
  try {
    const answer = await act();
    await done(answer);
  } catch (e) {
    toast(failure(e));
    if (e?.status === 409) stale?.();
  } finally {
    buttonEl.disabled = false;
  }
}

/**
 * Where a place is, as the server's enrichment names it (`{township, grid, post}`, each
 * `{id, name}`): `石河镇 · 石河村 · 石河警务室`.
 */
export function placeText(place) {
  if (!place) return '—';
  const name = (x) => (typeof x === 'string' ? x : x?.name);
  const parts = [place.township, place.grid, place.post].map(name).filter(Boolean);
  return parts.length ? parts.join(' · ') : '—';
}

/** A person as a line: `王建国 13800000000`. */
export function personText(p) {
  if (!p) return '—';
  return [p.name, p.phone].filter(Boolean).join(' ');
}

/** A value's name in one of the desk's tables (`dispute`, `source`, …), `—` for none. */
export function named(table, value) {
  return value === null || value === undefined || value === '' ? '—' : t(`desk.${table}.${value}`);
}
