// Escalations that reached a person on duty: the live feed's `escalation` messages, and
// `GET /api/v1/escalations` on starting (the open notices sent before this screen came
// up). A banner above the map lists the open ones this screen is told of — the duty
// officer's own, and every command-centre escalation on an operator's wall — each with
// its incident, how late the step is, whom it reached, and, for the person it reached,
// a button to acknowledge it. An acknowledgement, from this screen or from another, or
// the incident's next step taken meanwhile, takes the notice off.

import { el } from './dom.js';
import { t, clock, duration, placeName } from './i18n.js';

export class Escalations {
  /**
   * @param {object} o
   * @param {HTMLElement} o.banner the banner's element
   * @param {import('./api.js').Api} o.api
   * @param {() => object|null} o.me who this screen is (`GET /api/v1/whoami`)
   * @param {(incidentId: number) => void} o.onOpen the operator picked a notice's incident
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    /** escalation_id → the open notice's data */
    this.open = new Map();
    /** escalation ids whose acknowledgement is on its way */
    this.sending = new Set();
  }

  /**
   * The open notices from the server. `replace`: the answer is the whole truth (after a
   * gap in the feed, a notice closed meanwhile is not in it and goes).
   */
  async load({ replace = false } = {}) {
    const { escalations } = await this.o.api.get('/api/v1/escalations');
    if (replace) this.open.clear();
    for (const m of escalations ?? []) this.apply(m);
    this.render();
  }

  /** An `escalation` message: a notice, or the acknowledgement or resolution that closes one. */
  applyFeed(msg) {
    this.apply(msg);
    this.render();
  }

  apply(msg) {
    const d = msg.data;
    if (!d) return;
    // An acknowledgement, or the incident's next step (`resolve`), closes the notice.
    if (d.action === 'notify') this.open.set(d.escalation_id, d);
    else this.open.delete(d.escalation_id);
  }

  /** Whether this screen's user is the one to acknowledge the notice. */
  mine(d) {
    const me = this.o.me();
    if (!me) return false;
    if (d.person_id) return d.person_id === me.person_id;
    return ['operator', 'admin'].includes(me.role);
  }

  async ack(d) {
    this.sending.add(d.escalation_id);
    this.render();
    try {
      await this.o.api.post(`/api/v1/escalations/${d.escalation_id}/ack`);
      this.open.delete(d.escalation_id);
    } catch (e) {
      this.o.toast(t('esc.ack_failed', { reason: e.message }));
    } finally {
      this.sending.delete(d.escalation_id);
      this.render();
    }
  }

  line(d) {
    const inc = d.incident;
    const li = el('li', `esc ${d.level}`);
    li.dataset.escalation = String(d.escalation_id);
    const head = el('span', 'esc-level', t(`esc.level.${d.level}`));
    const title = inc ? t('esc.incident', { title: inc.title, id: inc.incident_id }) : t('esc.incident_gone', { id: d.escalation_id });
    const what = el('span', 'esc-what', title);
    if (inc) what.onclick = () => this.o.onOpen(inc.incident_id);
    const who = d.person_id ? t('esc.to', { name: d.person_name ?? d.person_id }) : t('esc.to_nobody');
    const detail = el('span', 'esc-detail', `${this.why(d)} · ${who} · ${clock(Date.parse(d.time))}`);
    li.append(head, what, detail);
    if (this.mine(d)) {
      const b = el('button', 'esc-ack', t(this.sending.has(d.escalation_id) ? 'esc.acking' : 'esc.ack'));
      b.type = 'button';
      b.disabled = this.sending.has(d.escalation_id);
      b.onclick = () => this.ack(d);
      li.append(b);
    }
    return li;
  }

  /** How late the step is and why the notice went where it went, in the screen's language. */
  why(d) {
    const state = d.incident ? t(`state.${d.incident.state}`) : '';
    const post = d.post_name ? placeName(d.post_name) : (d.post_id ?? '');
    const known = ['late', 'nobody_on_duty', 'no_post'].includes(d.reason) && d.late_s !== null && d.late_s !== undefined;
    return known ? t(`esc.reason.${d.reason}`, { state, late: duration(d.late_s), post }) : d.note;
  }

  render() {
    const b = this.o.banner;
    const open = [...this.open.values()].sort((x, y) => y.escalation_id - x.escalation_id);
    b.hidden = open.length === 0;
    b.replaceChildren(el('ol', '', undefined));
    b.firstChild.append(...open.map((d) => this.line(d)));
  }
}
