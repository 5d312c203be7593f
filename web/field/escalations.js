// Escalations that reached this phone's person: a late step of an incident of their post,
// told by the live feed (`escalation` messages) and, on starting, by
// `GET /api/v1/escalations`. A banner over the map, like a new route's, says which
// incident and how late, with a button to acknowledge; the acknowledgement goes through
// the outbox like every step, so no signal only delays it. Acknowledged (here, or on
// another screen of the same person), the notice leaves the banner, and the command
// centre is not raised.

import { t, clock, duration } from './i18n.js';

export class Escalations {
  /**
   * @param {object} o
   * @param {import('/wallmap/api.js').Api} o.api
   * @param {import('./outbox.js').Outbox} o.outbox
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    /** escalation_id → the open notice's data */
    this.open = new Map();
    /** escalation ids acknowledged here whose answer has not come */
    this.queued = new Set();
    document.getElementById('esc-ack').addEventListener('click', () => this.ack());
  }

  async load() {
    try {
      const { escalations } = await this.o.api.get('/api/v1/escalations');
      for (const m of escalations ?? []) this.apply(m);
    } catch {
      // No signal: the live feed brings them once it connects.
    }
    this.render();
  }

  /** An `escalation` message of the live feed. */
  onFeed(msg) {
    const fresh = msg.data?.action === 'notify' && !this.open.has(msg.data.escalation_id);
    this.apply(msg);
    if (fresh) navigator.vibrate?.([300, 150, 300]);
    this.render();
  }

  apply(msg) {
    const d = msg.data;
    if (!d) return;
    if (d.action === 'ack') {
      this.open.delete(d.escalation_id);
      this.queued.delete(d.escalation_id);
    } else this.open.set(d.escalation_id, d);
  }

  /** The notice the banner shows: the newest open one. */
  current() {
    let newest = null;
    for (const d of this.open.values()) if (!newest || d.escalation_id > newest.escalation_id) newest = d;
    return newest;
  }

  ack() {
    const d = this.current();
    if (!d || this.queued.has(d.escalation_id)) return;
    this.queued.add(d.escalation_id);
    this.o.outbox.put({ lane: 'http', tag: 'esc_ack', escalation: d.escalation_id, method: 'POST', path: `/api/v1/escalations/${d.escalation_id}/ack` });
    if (!navigator.onLine) this.o.toast(t('esc_ack_queued'));
    this.render();
  }

  /** The server's answer to a queued acknowledgement. */
  settled(entry, outcome) {
    this.queued.delete(entry.escalation);
    if (outcome.ok) {
      this.open.delete(entry.escalation);
      this.o.toast(t('esc_ack_sent'));
    } else this.o.toast(t('esc_ack_failed', { reason: outcome.error.message }));
    this.render();
  }

  /** How late the step is and why the notice came here, in the app's language. */
  why(d) {
    const state = d.incident ? t(`state.${d.incident.state}`) : '';
    const known = ['late', 'nobody_on_duty', 'no_post'].includes(d.reason) && d.late_s !== null && d.late_s !== undefined;
    return known ? t(`esc_reason.${d.reason}`, { state, late: duration(d.late_s), post: d.post_name ?? d.post_id ?? '' }) : d.note;
  }

  render() {
    const banner = document.getElementById('esc-banner');
    const d = this.current();
    banner.hidden = !d;
    if (!d) return;
    const inc = d.incident;
    const title = inc ? t('esc_incident', { id: inc.incident_id, title: inc.title }) : t('esc_incident_gone');
    document.getElementById('esc-text').textContent = `${t(`esc_level.${d.level}`)}：${title}`;
    const more = this.open.size > 1 ? ` · ${t('esc_more', { n: this.open.size - 1 })}` : '';
    document.getElementById('esc-reason').textContent = `${this.why(d)} · ${clock(Date.parse(d.time))}${more}`;
    const button = document.getElementById('esc-ack');
    const queued = this.queued.has(d.escalation_id);
    button.disabled = queued;
    button.textContent = t(queued ? 'esc_ack_queued' : 'banner_ack');
  }
}
