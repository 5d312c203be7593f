// Route adjustments and hotspots. Every team's current plan (`GET /api/v1/plans`, then
// the feed's `route` messages) is listed in the route panel — pending ones first and
// highlighted, escalated ones red with how long they have waited — and drawn on the
// map (pending ones dashed). The hotspot analysis (`GET /api/v1/hotspots` for the
// current time band, again on every `hotspots` notice of the feed) is the heat layer,
// and a compact card says when it was analysed and what legal publicity to push where.
// A plan whose shift could not fit every checkpoint lists the ones it left out (the
// plan's `left_out`), each with why, worded from its `cause` and figures.

import { el } from './dom.js';
import { t, clock, kindName, duration, distance, placeName } from './i18n.js';

export class Plans {
  /**
   * @param {object} o
   * @param {HTMLElement} o.list the route panel's `<ol>`
   * @param {HTMLElement} o.summary the panel's one-line summary
   * @param {(teamId: string) => string} o.teamName
   * @param {() => void} o.onChange the plans changed (map source, counters)
   * @param {(plan: object) => void} o.onFocus the operator picked a plan
   */
  constructor(o) {
    this.o = o;
    /** team_id → the team's current plan (the newest version) */
    this.byTeam = new Map();
    o.list.addEventListener('click', (ev) => {
      const li = ev.target.closest('li.plan');
      const p = li && this.byTeam.get(li.dataset.team);
      if (p) o.onFocus(p);
    });
    // Waiting times grow: redraw them every second.
    setInterval(() => this.tick(), 1000);
  }

  load(plans) {
    for (const p of plans ?? []) this.put(p);
    this.changed();
  }

  /** A `route` message: a push, an acknowledgement, a supersede or an escalation. */
  applyFeed(msg) {
    const p = msg.data?.plan;
    if (!p) return;
    this.put(p);
    this.changed();
  }

  put(p) {
    const had = this.byTeam.get(p.team_id);
    // A supersede names the old version after the new one may already be here.
    if (had && had.version > p.version) return;
    this.byTeam.set(p.team_id, p);
  }

  isEscalated(p) {
    return p.status === 'pending' && p.escalation && p.escalation !== 'none';
  }

  counts() {
    let pending = 0;
    let escalated = 0;
    for (const p of this.byTeam.values()) {
      if (p.status === 'pending') pending += 1;
      if (this.isEscalated(p)) escalated += 1;
    }
    return { pending, escalated, total: this.byTeam.size };
  }

  /** The current plans' geometries as map features. */
  features() {
    const features = [];
    for (const p of this.byTeam.values()) {
      const g = p.plan?.geometry;
      if (!g || p.status === 'superseded') continue;
      features.push({
        type: 'Feature',
        geometry: g,
        properties: { team_id: p.team_id, version: p.version, status: p.status, kind: p.kind, escalated: this.isEscalated(p) },
      });
    }
    return { type: 'FeatureCollection', features };
  }

  changed() {
    this.render();
    this.o.onChange();
  }

  ordered() {
    const rank = (p) => (this.isEscalated(p) ? 0 : p.status === 'pending' ? 1 : 2);
    return [...this.byTeam.values()].sort((a, b) => rank(a) - rank(b) || b.created_ms - a.created_ms || a.team_id.localeCompare(b.team_id));
  }

  render() {
    const { pending, escalated } = this.counts();
    this.o.summary.replaceChildren(el('span', `n-pending${pending ? ' on' : ''}`, t('pending_n', { n: pending })), el('span', `n-escalated${escalated ? ' on' : ''}`, t('escalated_n', { n: escalated })));
    const list = this.o.list;
    list.replaceChildren();
    const all = this.ordered();
    if (all.length === 0) list.append(el('li', 'empty', t('no_plans')));
    for (const p of all) {
      const escalated = this.isEscalated(p);
      const li = el('li', `plan ${p.status}${escalated ? ' escalated' : ''}`);
      li.dataset.team = p.team_id;
      li.dataset.status = p.status;
      const head = el('div', 'head');
      head.append(el('span', 'team', this.o.teamName(p.team_id)), el('span', 'ver', t('version', { n: p.version })), el('span', 'kind', t(`plan_kind.${p.kind}`)), el('span', `status st-${p.status}`, t(`plan_status.${p.status}`)));
      li.append(head);
      if (p.reason) li.append(el('div', 'reason', p.reason));
      const left = Array.isArray(p.plan?.left_out) ? p.plan.left_out : [];
      if (left.length) li.append(leftOutBox(left));
      const foot = el('div', 'foot');
      if (p.status === 'pending') {
        const waited = el('span', 'waited', t('waited', { t: duration((Date.now() - p.created_ms) / 1000) }));
        waited.dataset.since = String(p.created_ms);
        foot.append(waited);
        if (escalated) foot.append(el('span', 'esc', t(`escalation.${p.escalation}`)));
      } else if (p.status === 'acknowledged' && p.acked_ms) {
        foot.append(el('span', 'acked', t('acked_by', { who: p.acked_by ?? '', time: clock(p.acked_ms, false) })));
      }
      li.append(foot);
      list.append(li);
    }
  }

  tick() {
    for (const w of this.o.list.querySelectorAll('.waited')) {
      w.textContent = t('waited', { t: duration((Date.now() - Number(w.dataset.since)) / 1000) });
    }
  }
}

/** Why a checkpoint was left out, in the page's language (the server's sentence when the cause is new to the page). */
function leftOutWhy(l) {
  switch (l.cause) {
    case 'budget':
      return t('left_out_why.budget', { need: duration(l.needed_s), budget: duration(l.budget_s) });
    case 'off_road':
      return t('left_out_why.off_road', { d: distance(l.distance_m) });
    case 'unreachable':
      return t('left_out_why.unreachable');
    default:
      return l.reason ?? '';
  }
}

/** The checkpoints a plan leaves out: a count, then one line each (the server's own sentence on hover). */
function leftOutBox(left) {
  const box = el('div', 'left-out');
  box.append(el('div', 'reason left-out-head', t('left_out_n', { n: left.length })));
  for (const l of left) {
    const line = el('div', 'reason left-out-item', t('left_out_item', { name: l.name || l.id, why: leftOutWhy(l) }));
    line.dataset.id = l.id ?? '';
    line.title = l.reason ?? '';
    box.append(line);
  }
  return box;
}

/** The band (0…) whose `HH:MM–HH:MM` label holds the China-time minute of `ms`. */
function bandOf(bands, ms) {
  const china = new Date(ms + 8 * 3600 * 1000);
  const minute = china.getUTCHours() * 60 + china.getUTCMinutes();
  for (const b of bands ?? []) {
    const m = /(\d\d):(\d\d)\D+(\d\d):(\d\d)/.exec(b.label ?? '');
    if (!m) continue;
    const from = Number(m[1]) * 60 + Number(m[2]);
    const to = Number(m[3]) * 60 + Number(m[4]);
    if (from <= to ? minute >= from && minute < to : minute >= from || minute < to) return b.band;
  }
  return null;
}

export class Hotspots {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {maplibregl.Map} o.map
   * @param {HTMLElement} o.card the compact hotspot card
   */
  constructor(o) {
    this.o = o;
    this.band = null;
    this.bandLabel = '';
    this.analysedMs = null;
    this.events = null;
    this.focus = [];
    this.cells = 0;
    this.asked = 0;
  }

  /** A `hotspots` notice: a new analysis; the layer follows from the API. */
  async notice(msg) {
    this.analysedMs = Date.parse(msg.analysed_at) || Date.now();
    if (Number.isInteger(msg.band)) this.band = msg.band;
    this.bandLabel = msg.band_label ?? this.bandLabel;
    this.events = msg.events ?? this.events;
    this.focus = msg.publicity_focus ?? this.focus;
    this.render();
    await this.refresh();
  }

  /** The current band's cells from the API, as the heat layer. */
  async refresh() {
    const ask = ++this.asked;
    // Before any notice: the band of the hour in the server's default bands (4 hours from
    // 02:00 China time), checked against the bands the answer names.
    const china = new Date(Date.now() + 8 * 3600 * 1000);
    const guess = this.band ?? Math.floor((((china.getUTCHours() * 60 + china.getUTCMinutes() - 120) % 1440) + 1440) % 1440 / 240);
    const asked = Date.now();
    let fc = await this.o.api.get(`/api/v1/hotspots?band=${guess}`);
    const band = bandOf(fc.bands, Date.now());
    if (this.band === null && band !== null && band !== guess) fc = await this.o.api.get(`/api/v1/hotspots?band=${band}`);
    if (ask !== this.asked) return;
    this.band ??= band ?? guess;
    this.bandLabel = fc.bands?.find((b) => b.band === this.band)?.label ?? this.bandLabel;
    // Without a notice, the answer says when it was analysed (it may be another screen's).
    this.analysedMs ??= Date.parse(fc.analysed_at) || asked;
    this.events ??= fc.events;
    if (!this.focus.length) this.focus = fc.publicity_focus ?? [];
    const max = Math.max(0, ...fc.features.map((f) => f.properties.density_per_km2 ?? 0));
    for (const f of fc.features) f.properties.heat = max > 0 ? (f.properties.density_per_km2 ?? 0) / max : 0;
    this.cells = fc.features.length;
    // Each cell's centre too, for the heatmap drawn at county zoom.
    const centres = fc.features.map((f) => {
      const ring = f.geometry.coordinates[0].slice(0, -1);
      const c = ring.reduce((a, p) => [a[0] + p[0] / ring.length, a[1] + p[1] / ring.length], [0, 0]);
      return { type: 'Feature', geometry: { type: 'Point', coordinates: c }, properties: { heat: f.properties.heat } };
    });
    this.o.map.getSource('hotspots')?.setData({ type: 'FeatureCollection', features: [...fc.features, ...centres] });
    this.render();
  }

  render() {
    const card = this.o.card;
    card.hidden = false;
    card.replaceChildren();
    const head = el('div', 'head');
    head.append(el('span', 'title', t('hotspot_title')));
    if (this.analysedMs) head.append(el('span', 'at', t('analysed_at', { time: clock(this.analysedMs, false) })));
    if (this.bandLabel) head.append(el('span', 'band', t('band', { label: this.bandLabel })));
    if (Number.isFinite(this.events)) head.append(el('span', 'events', t('events_n', { n: this.events })));
    card.append(head);
    const focus = [...this.focus].sort((a, b) => (b.weight ?? 0) - (a.weight ?? 0)).slice(0, 3);
    const line = el('div', 'focus');
    line.append(el('span', 'label', t('publicity')));
    if (focus.length === 0) line.append(el('span', 'none', t('no_hotspots')));
    for (const f of focus) {
      const cats = (f.top_categories ?? []).slice(0, 2).map((c) => kindName(c.category)).join(t('list_sep'));
      line.append(el('span', 'area', `${f.township ? placeName(f.township) : '—'} ${cats}`));
    }
    card.append(line);
  }
}
