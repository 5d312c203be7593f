// The wall map's two languages: the lookup of a string by its key and the formats of
// times, durations, distances and places. The strings themselves are in strings.zh.js and
// strings.en.js (tests/e2e/i18n.test.mjs checks that their keys match). Chinese is the
// default (the command centre's working language); English is chosen with `?lang=en` or
// the button in the top bar, and kept in localStorage so a wall screen that reloads stays
// in the language it was set to.

import { el } from './dom.js';
import zh from './strings.zh.js';
import en from './strings.en.js';

const STRINGS = { zh, en };

/**
 * Another page's own strings, under `name` (`t('desk.title')`), beside the wall map's,
 * which it shares (the sign-in form, kinds, states, rules): the judicial office's desk
 * adds its strings this way rather than copying the lookup.
 */
export function addStrings(name, tables) {
  for (const l of ['zh', 'en']) STRINGS[l] = { ...STRINGS[l], [name]: tables[l] };
}

/** What the page's title says in the current language; the wall map's by default. */
let titleOf = () => `${t('title')} · ${t('subtitle')}`;

/** Sets how the page's title is made (another page than the wall map). */
export function setTitle(make) {
  titleOf = make;
  document.title = titleOf();
}

const KEY = 'liandong.lang';

/** The language in force: `?lang=` wins (and is remembered), then the stored choice, then Chinese. */
export function initialLang() {
  const asked = new URLSearchParams(location.search).get('lang');
  if (asked === 'en' || asked === 'zh') {
    localStorage.setItem(KEY, asked);
    return asked;
  }
  return localStorage.getItem(KEY) === 'en' ? 'en' : 'zh';
}

let lang = 'zh';

export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  document.title = titleOf();
}

export function currentLang() {
  return lang;
}

/** The string at a dotted `path` with `{name}` placeholders filled; the path itself when missing. */
export function t(path, params = {}) {
  const v = lookup(path);
  if (v === undefined) {
    // A rule or kind the page does not know yet is shown by its name rather than hidden.
    return path.split('.').pop();
  }
  return v.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

/**
 * A `tag` element showing the string at `key`, marked with `data-i18n` so that `setLang`
 * translates it again when the operator switches language.
 */
export function translated(key, tag = 'span') {
  const e = el(tag, '', t(key));
  e.dataset.i18n = key;
  return e;
}

/** Whether a string exists at `path` in the current language. */
export function has(path) {
  return lookup(path) !== undefined;
}

/** The string at a dotted `path` in the current language, or `undefined`. */
function lookup(path) {
  let v = STRINGS[lang];
  for (const part of path.split('.')) v = v?.[part];
  return typeof v === 'string' ? v : undefined;
}

/**
 * What an incident kind, an alert rule or a report category is called: incidents take
 * their kind from the alert's rule, the report's category or the operator's word.
 */
export function kindName(k) {
  for (const table of ['rule', 'category', 'kinds']) if (has(`${table}.${k}`)) return t(`${table}.${k}`);
  return k ?? '';
}

/** A duration in seconds as the wall reads it: `4分12秒`, `1 h 5 min`. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return t('duration.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  if (s >= 60) return t('duration.m', { m: Math.floor(s / 60), s: s % 60 });
  return t('duration.s', { s });
}

/** A distance in metres: `850 m`, `3.2 km`. */
export function distance(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}

/** Township names in English by their Chinese names (from the map's townships layer). */
const placesEn = new Map();

export function setPlaceNames(pairs) {
  for (const [zh, en] of pairs) if (zh && en) placesEn.set(zh, en);
}

/** A township named by the server (in Chinese), in the current language. */
export function placeName(name) {
  return lang === 'en' ? placesEn.get(name) ?? name : name;
}

/** A feature's name in the current language (`name_en` where the map has one). */
export function featureName(props) {
  if (!props) return '';
  return lang === 'en' && props.name_en ? props.name_en : props.name ?? '';
}

const CHINA_TIME = { timeZone: 'Asia/Shanghai', hour12: false };

/** A time of day in China time, whatever the wall screen's own clock zone. */
export function clock(ms, withSeconds = true) {
  return new Date(ms).toLocaleTimeString(lang === 'en' ? 'en-GB' : 'zh-CN', {
    ...CHINA_TIME,
    hour: '2-digit',
    minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' } : {}),
  });
}

export function dateLine(ms) {
  return new Date(ms).toLocaleDateString(lang === 'en' ? 'en-GB' : 'zh-CN', {
    ...CHINA_TIME,
    year: 'numeric',
    month: lang === 'en' ? 'short' : 'long',
    day: 'numeric',
    weekday: 'short',
  });
}
