// 上门办理 on the phone: the signed-in person's home visits (`GET /api/v1/home-visits?mine=true`),
// each with "到达" (arrive) while assigned and "完成" (a note and photos, like the report
// form) once arrived; and, on a post officer's phone, the post's referrals to the judicial
// office with their status (waiting until the office opens, handed, taken up), read only.
//
// Arriving is checked by the server against the phone's latest stored position, so a phone
// first sends where it is now through the same path as every fix (the outbox, on the live
// feed) and asks to arrive once the server has acknowledged it.

import { el } from '/wallmap/dom.js';
import { ApiFailure } from '/wallmap/api.js';
import { t, clock } from './i18n.js';
import { photoPicker, base64Of } from './photos.js';
import { fixItem } from './share.js';

/** How often the lists are asked for again while the app is open. */
const REFRESH_MS = 15_000;
/** How long arriving waits for the server to acknowledge the phone's position. */
const FIX_WAIT_MS = 10_000;
/** The server updates its live view just after it acknowledges a fix: one more try after this. */
const RETRY_MS = 700;

export class Visits {
  /**
   * @param {object} o
   * @param {import('/wallmap/api.js').Api} o.api
   * @param {import('./outbox.js').Outbox} o.outbox
   * @param {string|null} o.device this phone's device id (a person signed in without a device sends no fix)
   * @param {boolean} o.referrals whether to list the post's referrals (a post officer)
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    this.visits = null;
    this.referrals = null;
    /** The visit whose completion form is open: not redrawn under the officer's fingers. */
    this.completing = null;
    this.fixWait = null;
    this.panel = document.getElementById('panel-visits');
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  async load() {
    try {
      const { visits } = await this.o.api.get('/api/v1/home-visits?mine=true&limit=50');
      this.visits = visits;
    } catch (e) {
      if (e instanceof ApiFailure && (e.status === 404 || e.status === 403)) this.visits = [];
    }
    if (this.o.referrals) {
      try {
        const { referrals } = await this.o.api.get('/api/v1/referrals?limit=50');
        this.referrals = referrals;
      } catch {
        // Not a post officer's token after all, or no signal: the list stays as it was.
      }
    }
    if (this.completing === null) this.render();
  }

  render() {
    const out = [el('h2', '', t('visits_title'))];
    if (this.visits === null) out.push(el('p', 'line', t('loading')));
    else if (!this.visits.length) out.push(el('p', 'line', t('visits_none')));
    const list = el('ol', 'visits');
    for (const v of this.visits ?? []) list.append(this.row(v));
    out.push(list);
    if (this.o.referrals) {
      out.push(el('h2', '', t('referrals_title')));
      const refs = el('ol', 'referrals');
      for (const r of this.referrals ?? []) refs.append(this.referralRow(r));
      if (this.referrals && !this.referrals.length) out.push(el('p', 'line', t('referrals_none')));
      out.push(refs);
    }
    this.panel.replaceChildren(...out);
  }

  row(v) {
    const li = el('li', 'visit');
    li.dataset.id = String(v.visit_id);
    li.dataset.status = v.status;
    li.append(el('p', 'line', `${v.person.name} · ${v.person.phone ?? ''}`));
    if (v.address) li.append(el('p', 'line', v.address));
    li.append(el('p', 'line', v.reason));
    li.append(el('p', 'line', t('visit_due', { time: clock(v.due_ms) })));
    li.append(el('p', `state ${v.status}${v.overdue ? ' overdue' : ''}`, t(`visit_status.${v.status}`) + (v.overdue ? ` · ${t('visit_overdue')}` : '')));
    if (v.status === 'assigned') {
      const b = el('button', 'primary big arrive', t('visit_arrive'));
      b.type = 'button';
      b.onclick = () => this.arrive(v, b);
      li.append(b);
    } else if (v.status === 'arrived') {
      li.append(this.completeForm(v));
    } else if (v.note) {
      li.append(el('p', 'line', t('visit_note', { note: v.note })));
    }
    return li;
  }

  completeForm(v) {
    const form = el('form', 'complete');
    form.autocomplete = 'off';
    const note = el('textarea', 'note-text');
    note.rows = 3;
    note.maxLength = 2000;
    note.placeholder = t('visit_note_hint');
    note.onfocus = () => (this.completing = v.visit_id);
    const input = el('input', 'photos');
    Object.assign(input, { type: 'file', accept: 'image/*', capture: 'environment', multiple: true });
    const thumbs = el('div', 'thumbs');
    const picker = photoPicker(input, thumbs, (e) => this.o.toast(e.message));
    input.addEventListener('change', () => (this.completing = v.visit_id));
    const label = el('label', 'file');
    label.append(el('span', '', t('visit_photos')), input);
    const send = el('button', 'primary big complete-send', t('visit_complete'));
    send.type = 'submit';
    form.append(note, label, thumbs, send);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const text = note.value.trim();
      if (!text) return this.o.toast(t('visit_need_note'));
      send.disabled = true;
      try {
        const { visit } = await this.o.api.post(`/api/v1/home-visits/${v.visit_id}/complete`, {
          note: text,
          photos_base64: picker.photos().map(base64Of),
        });
        this.replace(visit);
        this.o.toast(t('visit_done'));
      } catch (e) {
        this.o.toast(t('visit_refused', { reason: e.message }));
      } finally {
        send.disabled = false;
        this.completing = null;
        this.render();
      }
    };
    return form;
  }

  referralRow(r) {
    const li = el('li', 'referral');
    li.dataset.id = String(r.referral_id);
    li.dataset.status = r.status;
    li.append(el('p', 'line', `${t(`business.${r.business}`)} · ${r.person.name}`));
    li.append(el('p', 'line', r.summary));
    const when = r.status === 'waiting' ? t('referral_handed_at', { time: clock(r.handed_ms) }) : r.taken_ms ? t('referral_taken_at', { time: clock(r.taken_ms), by: r.taken_by ?? '' }) : t('referral_due', { time: clock(r.due_ms) });
    li.append(el('p', `state ${r.status}${r.overdue ? ' overdue' : ''}`, `${t(`referral_status.${r.status}`)} · ${when}`));
    return li;
  }

  replace(visit) {
    const i = (this.visits ?? []).findIndex((v) => v.visit_id === visit.visit_id);
    if (i >= 0) this.visits[i] = visit;
  }

  async arrive(v, button) {
    button.disabled = true;
    try {
      const sent = this.o.device ? await this.sendHere() : false;
      let answer;
      try {
        answer = await this.o.api.post(`/api/v1/home-visits/${v.visit_id}/arrive`);
      } catch (e) {
        if (!(sent && e instanceof ApiFailure && e.field === 'position')) throw e;
        await new Promise((r) => setTimeout(r, RETRY_MS));
        answer = await this.o.api.post(`/api/v1/home-visits/${v.visit_id}/arrive`);
      }
      this.replace(answer.visit);
      this.o.toast(t('visit_arrived'));
    } catch (e) {
      this.o.toast(t('visit_refused', { reason: e.message }));
    } finally {
      button.disabled = false;
      this.render();
    }
  }

  /** Sends where the phone is now, as a fix through the outbox; true once the server acknowledged it. */
  sendHere() {
    return new Promise((resolve) => {
      if (!navigator.geolocation) return resolve(false);
      navigator.geolocation.getCurrentPosition(
        async (pos) => {
          const acked = new Promise((r) => {
            this.fixWait = r;
            setTimeout(() => r(false), FIX_WAIT_MS);
          });
          await this.o.outbox.put({ lane: 'fix', tag: 'visit_fix', item: fixItem(this.o.device, pos) });
          resolve(await acked);
        },
        () => resolve(false),
        { enableHighAccuracy: true, maximumAge: 0, timeout: 15_000 },
      );
    });
  }

  /** The answer to the fix sent before arriving. */
  settled(entry, outcome) {
    this.fixWait?.(outcome.ok);
    this.fixWait = null;
  }
}
