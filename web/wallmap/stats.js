// The statistics panel: compact figures from `GET /api/v1/statistics?period=day` —
// incidents (open, closed) by kind and township, response times from opening (median
// and 90th percentile per step), alerts by rule and mediation — for the last day, week
// or month, asked again every minute while the panel is open.

import { el } from './dom.js';
import { t, clock, kindName, duration, placeName } from './i18n.js';

const RANGES = { '24h': 24 * 3600 * 1000, '7d': 7 * 24 * 3600 * 1000, '30d': 30 * 24 * 3600 * 1000 };
const STEPS = ['to_dispatch', 'to_sign', 'to_scene', 'to_close'];
const BARS = 6;

export class Stats {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLElement} o.body the panel's body
   */
  constructor(o) {
    this.o = o;
    this.range = '24h';
    this.data = null;
    this.error = null;
    this.at = null;
    this.timer = null;
    this.asked = 0;
    o.body.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-range]');
      if (!b) return;
      this.range = b.dataset.range;
      this.load();
    });
  }

  /** The panel is shown: load now and every minute until hidden. */
  show() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), 60_000);
    return this.load();
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async load() {
    const ask = ++this.asked;
    const from = Date.now() - RANGES[this.range];
    try {
      const data = await this.o.api.get(`/api/v1/statistics?period=day&from=${from}`);
      if (ask !== this.asked) return;
      this.data = data;
      this.error = null;
      this.at = Date.now();
    } catch (e) {
      if (ask !== this.asked) return;
      this.error = e.message;
    }
    this.render();
  }

  render() {
    const body = this.o.body;
    body.replaceChildren();
    const ranges = el('div', 'ranges');
    for (const r of Object.keys(RANGES)) {
      const b = el('button', r === this.range ? 'on' : '', t(`range_${r}`));
      b.dataset.range = r;
      ranges.append(b);
    }
    if (this.at) ranges.append(el('span', 'at', t('updated_at', { time: clock(this.at, false) })));
    body.append(ranges);
    if (this.error) body.append(el('p', 'error', t('stats_failed', { reason: this.error })));
    const d = this.data;
    if (!d) return;

    const all = d.incidents?.all ?? {};
    const figures = el('div', 'figures');
    const figure = (value, label, cls = '') => {
      const f = el('div', `figure ${cls}`);
      f.append(el('span', 'value', String(value ?? 0)), el('span', 'label', label));
      figures.append(f);
    };
    figure(all.count, t('incidents_total'));
    figure(all.open, t('open'), all.open ? 'hot' : '');
    figure(all.closed, t('closed'));
    figure(d.alerts?.count, t('alerts_total'));
    body.append(figures);

    body.append(el('h4', '', t('response')));
    const table = el('table', 'response');
    const head = el('tr');
    head.append(el('th', ''), el('th', '', t('median')), el('th', '', t('p90')), el('th', '', t('samples')));
    table.append(head);
    for (const step of STEPS) {
      const s = all[step];
      const tr = el('tr');
      tr.dataset.step = step;
      tr.append(el('th', '', t(`step.${step}`)), el('td', '', s ? duration(s.median_s) : '–'), el('td', '', s ? duration(s.p90_s) : '–'), el('td', 'n', s ? String(s.count) : '0'));
      table.append(tr);
    }
    body.append(table);

    bars(body, t('by_kind'), d.incidents?.by_kind ?? [], (g) => kindName(g.key));
    bars(body, t('by_township'), d.incidents?.by_township ?? [], (g) => (g.key === '(outside)' ? '—' : placeName(g.key)));
    bars(body, t('alerts_by_rule'), d.alerts?.by_rule ?? [], (g) => kindName(g.key), 'alerts');

    const m = d.mediation;
    if (m && m.disputes) {
      body.append(el('h4', '', t('mediation')));
      const line = t('mediation_line', { found: m.disputes, mediated: m.mediated, ok: m.successful });
      const rate = Number.isFinite(m.success_rate) ? ` · ${Math.round(m.success_rate * 100)}%` : '';
      body.append(el('p', 'mediation', line + rate));
    }
  }
}

/** A titled list of the largest groups as horizontal bars. */
function bars(body, title, groups, label, cls = '') {
  if (!groups.length) return;
  body.append(el('h4', '', title));
  const top = [...groups].sort((a, b) => b.count - a.count).slice(0, BARS);
  const max = Math.max(1, ...top.map((g) => g.count));
  const ul = el('ul', `bars ${cls}`);
  for (const g of top) {
    const li = el('li');
    const bar = el('span', 'bar');
    bar.style.width = `${(100 * g.count) / max}%`;
    li.append(el('span', 'key', label(g)), el('span', 'track'), el('span', 'n', String(g.count)));
    li.children[1].append(bar);
    ul.append(li);
  }
  body.append(ul);
}
