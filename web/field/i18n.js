// The field app's two languages: the lookup of a string by its key, and times, durations
// and distances. Chinese by default; English with the button in the top bar (kept in
// localStorage). The strings are in strings.zh.js and strings.en.js.

import zh from './strings.zh.js';
import en from './strings.en.js';

const STRINGS = { zh, en };
const KEY = 'liandong.field.lang';

let lang = localStorage.getItem(KEY) === 'en' ? 'en' : 'zh';

export function currentLang() {
  return lang;
}

/** Switches the language and translates every element marked `data-i18n`. */
export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
  document.title = t('title');
}

/** The string at a dotted `path` with `{name}` placeholders filled; the last part of the path when missing. */
export function t(path, params = {}) {
  let v = STRINGS[lang];
  for (const part of path.split('.')) v = v?.[part];
  if (typeof v !== 'string') return path.split('.').pop();
  return v.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

/** A time of day in China time, whatever the phone's own zone. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString(lang === 'en' ? 'en-GB' : 'zh-CN', {
    timeZone: 'Asia/Shanghai',
    hour12: false,
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** A duration in seconds: `1小时5分`, `12 min`. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return t('duration.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  if (s >= 60) return t('duration.m', { m: Math.round(s / 60) });
  return t('duration.s', { s });
}

/** A distance in metres: `850 m`, `3.2 km`. */
export function distance(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}
