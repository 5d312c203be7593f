// Incidents on the wall: the list of open incidents beside the alert queue, and the
// incident panel — the state, the timeline (who did what, when; escalations), the units
// that reach the place first by road with a Dispatch button each, the nearest posts and
// the operator's other steps. The list comes from the history API and the live feed's
// `incident` messages; the panel asks `GET /api/v1/incidents/{id}` for the timeline and
// the recommendation, and again whenever the feed says the incident moved.

import { el } from './dom.js';
import { t, clock, kindName, duration, distance, placeName } from './i18n.js';

export const CLOSED_STATES = new Set(['closed', 'cancelled']);
/** States in which the incident may be dispatched (again, to another unit). */
const DISPATCHABLE = new Set(['new', 'dispatched']);
/**
 * The step out of each state that the centre may take for the officer (`State::after` in
 * liandong-core): an operator can sign for a phone that has no signal, and close.
 */
const NEXT_STEP = { dispatched: 'sign', signed_for: 'depart', en_route: 'arrive', on_scene: 'feedback', feedback: 'close' };
/** Steps that ask for a second click: they end the incident. */
const CONFIRM = new Set(['close', 'cancel']);
/** The list shows this many open incidents. */
const SHOWN = 30;

export class Incidents {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLElement} o.list the open incidents' `<ol>`
   * @param {HTMLElement} o.count the list's count
   * @param {HTMLElement} o.panel the incident panel's body
   * @param {(deviceId: string) => string} o.deviceName
   * @param {() => void} o.onChange the incidents changed (map source, busy units)
   * @param {(incident: object) => void} o.onOpen an incident was opened in the panel
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    /** incident_id → incident row */
    this.byId = new Map();
    /** The incident shown in the panel, and what the server said about it. */
    this.openId = null;
    this.detail = null;
    this.asked = 0;
    this.refreshTimer = null;
    this.confirming = null;
    o.list.addEventListener('click', (ev) => {
      const li = ev.target.closest('li.incident');
      if (li) this.open(Number(li.dataset.id));
    });
    o.panel.addEventListener('click', (ev) => this.click(ev));
    // The time in the current state grows: redraw that one figure every second.
    setInterval(() => this.tick(), 1000);
  }

  /** Rows from the history API or from an action's answer. */
  set(inc) {
    const had = this.byId.get(inc.incident_id);
    // A late answer must not undo a newer step the feed already brought.
    if (had && had.state_since_ms > inc.state_since_ms) return;
    this.byId.set(inc.incident_id, inc);
    if (this.detail && inc.incident_id === this.openId) this.detail.incident = inc;
  }

  load(rows) {
    for (const inc of rows) this.set(inc);
    this.changed();
  }

  /**
   * The open incidents from the history API after a gap in the feed the server could not
   * replay: each is taken as it is now, and one this screen holds open that is not among
   * them moved on in the gap (closed, cancelled, out of this screen's scope), so it is
   * asked for again; one the server no longer shows this screen goes.
   */
  async catchUp(openRows) {
    const open = new Set();
    for (const inc of openRows) {
      this.set(inc);
      open.add(inc.incident_id);
    }
    const stale = this.openOnes().filter((i) => !open.has(i.incident_id));
    await Promise.all(
      stale.map(async (i) => {
        try {
          const { incident } = await this.o.api.get(`/api/v1/incidents/${i.incident_id}`);
          if (incident) this.set(incident);
        } catch (e) {
          if (e?.status === 404) this.drop(i.incident_id);
          else console.warn(`incident ${i.incident_id}:`, e.message);
        }
      }),
    );
    this.changed();
  }

  /** An `incident` message from the live feed: the incident as it is now and the step taken. */
  applyFeed(msg) {
    const inc = msg.data?.incident;
    if (!inc) return;
    this.set(inc);
    const ev = msg.data.event;
    if (this.detail && inc.incident_id === this.openId && ev) {
      const timeline = this.detail.timeline ?? [];
      if (!timeline.some((e) => e.seq === ev.seq)) {
        timeline.push({ seq: ev.seq, at_ms: Date.parse(ev.time), actor: ev.actor, action: ev.action, from_state: ev.from, to_state: ev.to, note: ev.note });
        this.detail.timeline = timeline;
      }
      this.scheduleRefresh();
    }
    this.changed();
  }

  /** An incident that left this screen's reach (`incident_gone`): no longer shown. */
  forget(id) {
    if (this.drop(id)) this.changed();
  }

  /** Takes the incident off this screen (and out of the panel); answers whether it was on it. */
  drop(id) {
    if (!this.byId.delete(id)) return false;
    if (this.openId === id) {
      this.openId = null;
      this.detail = null;
    }
    return true;
  }

  /** The incidents not closed or cancelled. */
  openOnes() {
    return [...this.byId.values()].filter((i) => !CLOSED_STATES.has(i.state));
  }

  changed() {
    this.renderList();
    if (this.openId !== null) this.renderPanel();
    this.o.onChange();
  }

  renderList() {
    const list = this.o.list;
    const open = this.openOnes().sort(
      (a, b) => Number(b.escalation !== 'none') - Number(a.escalation !== 'none') || a.priority - b.priority || b.created_ms - a.created_ms,
    );
    this.o.count.textContent = String(open.length);
    list.replaceChildren();
    if (open.length === 0) {
      list.append(el('li', 'empty', t('incidents_empty')));
      return;
    }
    for (const inc of open.slice(0, SHOWN)) {
      const li = el('li', `incident p${Math.min(inc.priority, 4)}${inc.incident_id === this.openId ? ' selected' : ''}${inc.escalation !== 'none' ? ' late' : ''}`);
      li.dataset.id = String(inc.incident_id);
      li.dataset.state = inc.state;
      const head = el('div', 'head');
      head.append(el('span', 'prio', t('priority', { p: inc.priority })), el('span', 'title', `#${inc.incident_id} ${inc.title}`), el('time', 'time', clock(inc.created_ms, false)));
      const line = el('div', 'line');
      line.append(el('span', `state s-${inc.state}`, t(`state.${inc.state}`)));
      if (inc.assigned_device) line.append(el('span', 'who', this.o.deviceName(inc.assigned_device)));
      else if (inc.township) line.append(el('span', 'who', placeName(inc.township)));
      li.append(head, line);
      list.append(li);
    }
  }

  /**
   * Opens the panel on an incident. `seed` is what the caller already knows (the answer
   * of the create), shown at once while the timeline is asked for.
   */
  async open(id, seed) {
    if (!Number.isFinite(id)) return;
    if (seed?.incident) this.set(seed.incident);
    if (this.openId !== id) this.detail = seed?.incident ? { incident: seed.incident, timeline: [], recommended: seed.recommended } : null;
    this.openId = id;
    this.confirming = null;
    this.renderList();
    this.renderPanel();
    const inc = this.byId.get(id) ?? seed?.incident;
    this.o.onOpen(inc ?? null);
    this.o.onChange();
    await this.refresh();
  }

  close() {
    this.openId = null;
    this.detail = null;
    this.renderList();
    this.renderPanel();
    this.o.onChange();
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), 300);
  }

  /** Asks the server for the open incident's timeline and recommendation; the newest answer wins. */
  async refresh() {
    const id = this.openId;
    if (id === null) return;
    const ask = ++this.asked;
    try {
      const d = await this.o.api.get(`/api/v1/incidents/${id}`);
      if (ask !== this.asked || id !== this.openId) return;
      this.set(d.incident);
      this.detail = { incident: this.byId.get(id) ?? d.incident, timeline: d.timeline ?? [], recommended: d.recommended };
      this.renderList();
      this.renderPanel();
      this.o.onChange();
    } catch (e) {
      if (ask === this.asked) this.o.toast(t('action_failed', { reason: e.message }));
    }
  }

  tick() {
    const since = this.o.panel.querySelector('.since');
    const inc = this.openId !== null ? this.byId.get(this.openId) : null;
    if (since && inc) since.textContent = duration((Date.now() - inc.state_since_ms) / 1000);
  }

  renderPanel() {
    const body = this.o.panel;
    body.replaceChildren();
    const inc = this.openId !== null ? (this.byId.get(this.openId) ?? this.detail?.incident) : null;
    body.dataset.id = inc ? String(inc.incident_id) : '';
    body.dataset.state = inc?.state ?? '';
    if (!inc) {
      body.append(el('p', 'hint', t('incident_none')));
      return;
    }

    const head = el('div', `inc-head p${Math.min(inc.priority, 4)}`);
    head.append(el('span', 'prio', t('priority', { p: inc.priority })), el('h3', 'title', `#${inc.incident_id} ${inc.title}`));
    body.append(head);

    const state = el('div', 'inc-state');
    const pill = el('span', `state s-${inc.state}`, t(`state.${inc.state}`));
    pill.id = 'incident-state';
    state.append(pill, el('span', 'since', duration((Date.now() - inc.state_since_ms) / 1000)));
    if (inc.escalation && inc.escalation !== 'none') state.append(el('span', 'esc', t(`escalation.${inc.escalation}`)));
    body.append(state);

    const meta = el('dl', 'inc-meta');
    const row = (k, v) => {
      if (!v) return;
      meta.append(el('dt', '', t(k)), el('dd', '', v));
    };
    row('created_at', `${clock(inc.created_ms)}`);
    row('kind', kindName(inc.kind));
    row('township', inc.township ? placeName(inc.township) : '');
    row('assigned', inc.assigned_device ? this.o.deviceName(inc.assigned_device) : '');
    body.append(meta);

    const actions = el('div', 'inc-actions');
    const open = !CLOSED_STATES.has(inc.state);
    const next = NEXT_STEP[inc.state];
    if (next) actions.append(this.stepButton(next, true));
    if (open) actions.append(this.stepButton('cancel', false));
    if (!open) actions.append(el('span', 'done', t('incident_closed_note', { state: t(`state.${inc.state}`) })));
    body.append(actions);

    const rec = this.detail?.recommended;
    if (open && DISPATCHABLE.has(inc.state)) {
      const h = el('h4', '', t('recommended'));
      if (rec?.basis) h.append(el('small', '', t(`basis_${rec.basis}`)));
      body.append(h);
      const units = rec?.units ?? [];
      const ol = el('ol', 'rec');
      if (units.length === 0) ol.append(el('li', 'empty', t('no_units')));
      for (const u of units) {
        const li = el('li', 'unit');
        li.dataset.device = u.device_id;
        const who = el('div', 'who');
        who.append(el('span', 'name', u.name ?? this.o.deviceName(u.device_id)), el('span', 'kind', u.kind ? t(`unit_kind.${u.kind}`) : ''));
        const how = el('div', 'how');
        if (Number.isFinite(u.travel_s)) how.append(el('span', 'travel', t('by_road', { t: duration(u.travel_s) })));
        how.append(el('span', 'dist', t('as_crow', { d: distance(u.distance_m ?? 0) })));
        if (u.fix_age_s > 60) how.append(el('span', 'age', t('fix_age', { t: duration(u.fix_age_s) })));
        const assigned = inc.assigned_device === u.device_id;
        const button = el('button', `dispatch${assigned ? ' sent' : ''}`, assigned ? t('dispatched_here') : t('dispatch'));
        button.dataset.dispatch = u.device_id;
        button.disabled = assigned;
        li.append(el('div', 'text'), button);
        li.firstChild.append(who, how);
        ol.append(li);
      }
      body.append(ol);
    }
    const posts = rec?.posts ?? [];
    if (open && posts.length) {
      body.append(el('h4', '', t('nearest_posts_title')));
      const ul = el('ul', 'posts');
      for (const p of posts.slice(0, 3)) ul.append(el('li', '', `${p.name} · ${distance(p.distance_m)}`));
      body.append(ul);
    }

    body.append(el('h4', '', t('timeline')));
    const tl = el('ol', 'timeline');
    const events = [...(this.detail?.timeline ?? [])].sort((a, b) => a.seq - b.seq);
    for (const e of events) {
      const li = el('li', `ev ev-${e.action}`);
      li.append(el('time', '', clock(e.at_ms)), el('span', 'what', t(`action.${e.action}`)), el('span', 'to', `→ ${t(`state.${e.to_state}`)}`));
      li.append(el('div', 'who', actorName(e.actor, this.o.deviceName)));
      if (e.note) li.append(el('div', 'note', e.note));
      tl.append(li);
    }
    body.append(tl);
  }

  stepButton(action, primary) {
    const b = el('button', `step${primary ? ' primary' : ''}${action === 'cancel' ? ' danger' : ''}`, t(`action.${action}`));
    b.dataset.step = action;
    if (this.confirming === action) {
      b.classList.add('confirming');
      b.textContent = `${t(`action.${action}`)} · ${t('confirm_again')}`;
    }
    return b;
  }

  async click(ev) {
    const b = ev.target.closest('button');
    if (!b || b.disabled || this.openId === null) return;
    const id = this.openId;
    if (b.dataset.dispatch) {
      const device = b.dataset.dispatch;
      b.disabled = true;
      const name = b.closest('li')?.querySelector('.name')?.textContent ?? device;
      if (await this.act(id, { action: 'dispatch', device_id: device })) this.o.toast(t('dispatch_ok', { name }));
      return;
    }
    const step = b.dataset.step;
    if (!step) return;
    if (CONFIRM.has(step) && this.confirming !== step) {
      this.confirming = step;
      this.renderPanel();
      setTimeout(() => {
        if (this.confirming === step) {
          this.confirming = null;
          this.renderPanel();
        }
      }, 4000);
      return;
    }
    this.confirming = null;
    b.disabled = true;
    if (await this.act(id, { action: step })) this.o.toast(t('action_ok', { action: t(`action.${step}`), id }));
  }

  /** Takes a step on the server; the answer (and then the feed) updates the panel. */
  async act(id, body) {
    try {
      const res = await this.o.api.post(`/api/v1/incidents/${id}/actions`, body);
      if (res?.incident) this.set(res.incident);
      this.changed();
      this.scheduleRefresh();
      return true;
    } catch (e) {
      this.o.toast(t('action_failed', { reason: e.message }));
      this.renderPanel();
      return false;
    }
  }
}

/** Who took a step: a device by its name, the server as the system. */
function actorName(actor, deviceName) {
  if (actor?.startsWith('device:')) return deviceName(actor.slice(7));
  return actor ?? '';
}
