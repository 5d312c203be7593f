// The tasks dispatched to this phone (or, for a post officer's or leader's token, to the
// unit): place, priority and what is known, and the steps Sign for (签收) → Set off →
// Arrived → Feedback (反馈, with text and up to three photos shrunk on the phone). Each
// step goes through the outbox: taken without signal it is kept, shown as taken, and
// sent once when the signal is back. The way to the place is the server's road route
// from the unit's last fix (`GET /api/v1/route`), drawn with its travel time.

import { el } from '/wallmap/dom.js';
import { ApiFailure } from '/wallmap/api.js';
import { t, duration, distance } from './i18n.js';
import { photoPicker, base64Of } from './photos.js';
import { point } from './fieldmap.js';

/** What an incident is about, in words: a report's category, an alert's rule or the operator's word. */
function kindName(kind) {
  for (const table of ['kinds', 'category']) {
    const name = t(`${table}.${kind}`);
    if (name !== kind) return name;
  }
  return kind ?? '';
}

/** The step each state waits for, and the state each step leads to. */
const NEXT = { dispatched: 'sign', signed_for: 'depart', en_route: 'arrive', on_scene: 'feedback' };
const AFTER = { sign: 'signed_for', depart: 'en_route', arrive: 'on_scene', feedback: 'feedback' };
const OPEN = new Set(['new', 'dispatched', 'signed_for', 'en_route', 'on_scene', 'feedback']);
/** A route is asked for again at most this often for the same task. */
const ROUTE_EVERY_MS = 60_000;

export class Tasks {
  /**
   * @param {object} o
   * @param {import('/wallmap/api.js').Api} o.api
   * @param {import('./outbox.js').Outbox} o.outbox
   * @param {import('./fieldmap.js').FieldMap} o.map
   * @param {string|null} o.me this phone's device id (null for a user token)
   * @param {string|null} o.unit
   * @param {() => ([number, number]|null)} o.here the phone's last known place
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    this.tasks = new Map();
    /** Steps kept in the outbox, by incident: `[action, …]` in order. */
    this.pending = new Map();
    this.unavailable = false;
    this.route = null;
    this.routeAsked = { id: null, at: 0 };
    this.panel = document.getElementById('panel-tasks');
    this.feedback = null;
  }

  async load() {
    for (const e of await this.o.outbox.entries('http')) {
      if (e.tag === 'step') this.pending.set(e.incident, [...(this.pending.get(e.incident) ?? []), e.action]);
    }
    try {
      const { tasks } = await this.o.api.get('/api/v1/tasks');
      this.unavailable = false;
      this.tasks = new Map(tasks.map((i) => [i.incident_id, i]));
    } catch (e) {
      // A server without the endpoint yet (404): tasks come from the feed only.
      this.unavailable = e instanceof ApiFailure && e.status === 404;
    }
    this.render();
  }

  mine(i) {
    return this.o.me ? i.assigned_device === this.o.me : i.assigned_unit === this.o.unit;
  }

  /** An `incident` message of the live feed. */
  onIncident(msg) {
    const i = msg.data?.incident;
    if (!i) return;
    if (this.mine(i) && OPEN.has(i.state)) this.tasks.set(i.incident_id, i);
    else this.tasks.delete(i.incident_id);
    this.render();
  }

  /** A task sent to another unit (`incident_gone`): no longer this phone's. */
  onGone(msg) {
    if (this.tasks.delete(msg.data?.incident_id)) this.render();
  }

  /** The state the phone shows: the server's, with the steps still in the outbox applied. */
  shown(i) {
    let state = i.state;
    for (const a of this.pending.get(i.incident_id) ?? []) if (NEXT[state] === a) state = AFTER[a];
    return state;
  }

  step(i, action, extra = {}) {
    this.pending.set(i.incident_id, [...(this.pending.get(i.incident_id) ?? []), action]);
    this.o.outbox.put({
      lane: 'http',
      tag: 'step',
      incident: i.incident_id,
      action,
      method: 'POST',
      path: `/api/v1/incidents/${i.incident_id}/actions`,
      body: { action, ...extra },
    });
    if (!navigator.onLine) this.o.toast(t('step_queued', { step: t(`step.${action}`) }));
    this.render();
  }

  /** The answer to a queued step. */
  settled(entry, outcome) {
    const list = this.pending.get(entry.incident) ?? [];
    list.splice(list.indexOf(entry.action), 1);
    if (!list.length) this.pending.delete(entry.incident);
    const name = t(`step.${entry.action}`);
    if (outcome.ok) {
      const i = outcome.answer?.incident;
      if (i && OPEN.has(i.state)) this.tasks.set(i.incident_id, i);
      this.o.toast(t('step_sent', { step: name }));
    } else {
      this.o.toast(t('step_refused', { step: name, reason: outcome.error.message }));
      this.load();
    }
    this.render();
  }

  /** Asks for the way from the unit's last fix to the task's place, at most once a minute. */
  async askRoute(i) {
    const now = Date.now();
    if (this.routeAsked.id === i.incident_id && now - this.routeAsked.at < ROUTE_EVERY_MS) return;
    this.routeAsked = { id: i.incident_id, at: now };
    try {
      const r = await this.o.api.get(`/api/v1/route?to=${i.lon.toFixed(6)},${i.lat.toFixed(6)}`);
      this.route = { id: i.incident_id, text: t('route_way', { distance: distance(r.distance_m), time: duration(r.travel_s) }) };
      this.o.map.set('way', [{ type: 'Feature', properties: {}, geometry: r.geometry }]);
    } catch (e) {
      this.o.map.set('way', []);
      const text = e.field === 'from' ? t('route_no_fix') : e.status === 422 ? t('route_no_road') : null;
      this.route = text ? { id: i.incident_id, text } : null;
      // Asked again soon when there was no fix yet, or no signal.
      if (e.field === 'from' || e.status === 0) this.routeAsked.at = 0;
    }
    this.render(false);
  }

  /** A fresh fix of this phone: the way may be asked for now. */
  onMyFix() {
    const first = this.open()[0];
    if (first && this.route?.id !== first.incident_id) this.askRoute(first);
  }

  open() {
    return [...this.tasks.values()].sort((a, b) => b.incident_id - a.incident_id);
  }

  render(ask = true) {
    const list = this.open();
    const out = [];
    if (this.unavailable) out.push(el('p', 'note', t('tasks_unavailable')));
    if (!list.length) out.push(el('p', 'line', t('tasks_none')));
    this.o.map.set('target', list.slice(0, 1).map((i) => point(i.lon, i.lat, { id: i.incident_id })));
    // A new first task: the map shows its place and the phone together.
    if (list[0] && this.fitted !== list[0].incident_id) {
      this.fitted = list[0].incident_id;
      this.o.map.fit([[list[0].lon, list[0].lat], ...(this.o.here() ? [this.o.here()] : [])], 16);
    }
    if (!list.length) this.o.map.set('way', []);
    // Keep a feedback form being filled in across redraws.
    const keep = this.feedback && list.some((i) => i.incident_id === this.feedback.id);
    if (!keep) this.feedback = null;
    list.forEach((i, n) => out.push(this.card(i, n === 0)));
    this.panel.replaceChildren(...out);
    if (ask && list[0]) this.askRoute(list[0]);
  }

  card(i, first) {
    const state = this.shown(i);
    const card = el('article', `task p${i.priority}`);
    card.dataset.id = String(i.incident_id);
    card.dataset.state = state;
    card.append(el('h3', '', t('task_title', { id: i.incident_id, title: i.title })));
    card.append(el('p', 'meta', [t('priority', { p: i.priority }), kindName(i.kind), i.township].filter(Boolean).join(' · ')));
    card.append(el('p', 'meta state', t(`state.${state}`)));
    if ((this.pending.get(i.incident_id) ?? []).length) card.append(el('p', 'meta queued', t('queued', { n: this.pending.get(i.incident_id).length })));
    if (first && this.route?.id === i.incident_id) card.append(el('p', 'meta route', this.route.text));
    const next = NEXT[state];
    if (next === 'feedback') card.append(this.feedbackForm(i));
    else if (next) {
      const b = el('button', 'primary big step', t(`step.${next}`));
      b.type = 'button';
      b.dataset.step = next;
      b.addEventListener('click', () => this.step(i, next));
      card.append(b);
    }
    return card;
  }

  feedbackForm(i) {
    if (this.feedback?.id === i.incident_id) return this.feedback.form;
    const form = el('form', 'feedback');
    const label = el('label');
    label.append(el('span', '', t('feedback_text')));
    const text = el('textarea');
    text.rows = 2;
    text.maxLength = 2000;
    text.name = 'note';
    label.append(text);
    const files = el('label', 'file');
    files.append(el('span', '', t('feedback_photos')));
    const input = el('input');
    Object.assign(input, { type: 'file', accept: 'image/*', multiple: true, name: 'photos' });
    input.setAttribute('capture', 'environment');
    files.append(input);
    const thumbs = el('div', 'thumbs');
    const picker = photoPicker(input, thumbs, (e) => this.o.toast(e.message));
    const send = el('button', 'primary big step', t('feedback_send'));
    send.type = 'submit';
    send.dataset.step = 'feedback';
    form.append(label, files, thumbs, send);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const photos = picker.photos().map(base64Of);
      const extra = { note: text.value.trim() };
      if (photos.length) extra.photos_base64 = photos;
      this.feedback = null;
      this.step(i, 'feedback', extra);
    });
    this.feedback = { id: i.incident_id, form };
    return form;
  }
}
