// The referrals queue (转办队列): business the police posts registered for the judicial
// office (legal advice, legal aid, a mediation request, a correction subject reporting,
// notarisation), handed over when the office is open. The office takes one up (接办) and
// marks it done (办结) with a note; one not taken up in time is marked 超期.

import { el } from '/wallmap/dom.js';
import { t } from '/wallmap/i18n.js';
import { moment, listIn, dash, button, textarea, statusPill, overdueMark, failure, busy, personText } from './common.js';

const LIMIT = 200;

export class Referrals {
  /** @param {object} o as the other views (see mediation.js): api, body, me, toast, onCount, postName */
  constructor(o) {
    this.o = o;
    this.polled = true;
    this.items = [];
    this.error = null;
    /** What was typed into each referral's note, by id: kept when a poll redraws the list. */
    this.notes = new Map();
    this.list = el('ol', 'items wide');
    this.list.id = 'referral-list';
    o.body.replaceChildren(this.list);
  }

  async load() {
    try {
      this.items = listIn(await this.o.api.get(`/api/v1/referrals?limit=${LIMIT}`));
      this.error = null;
    } catch (e) {
      this.error = failure(e);
    }
    const open = this.items.filter((r) => r.status === 'handed' || r.status === 'taken');
    this.o.onCount('referrals', open.length, open.filter((r) => r.overdue).length);
    this.render();
  }

  render() {
    if (this.error) {
      this.list.replaceChildren(el('li', 'empty', this.error));
      return;
    }
    // The note being typed keeps its text, focus and caret across the redraw.
    const typing = document.activeElement?.closest?.('#referral-list li')?.dataset.id;
    const caret = typing ? document.activeElement.selectionStart : null;
    const rows = this.items.map((r) => this.item(r));
    this.list.replaceChildren(...(rows.length ? rows : [el('li', 'empty', t('desk.no_referrals'))]));
    const note = typing ? this.list.querySelector(`li[data-id="${typing}"] textarea`) : null;
    if (note) {
      note.focus();
      note.setSelectionRange(caret, caret);
    }
  }

  item(r) {
    const li = el('li', r.overdue ? 'late' : '');
    li.dataset.id = String(r.referral_id);
    li.dataset.status = r.status;
    const head = el('div', 'head');
    head.append(el('span', 'id', `#${r.referral_id}`), el('span', 'kind', t(`desk.business.${r.business}`)), statusPill('referral_status', r.status), ...overdueMark(r));
    li.append(head, el('div', 'summary', dash(r.summary)));
    const meta = [personText(r.person), t('desk.registered_at', { at: moment(r.registered_ms), post: this.o.postName(r.post_id) })];
    if (r.handed_ms && r.handed_ms !== r.registered_ms) meta.push(t('desk.handed_at', { at: moment(r.handed_ms) }));
    if (r.due_ms && (r.status === 'handed' || r.status === 'waiting')) meta.push(t('desk.due_at', { at: moment(r.due_ms) }));
    if (r.taken_ms) meta.push(t('desk.taken_at', { at: moment(r.taken_ms), by: dash(r.taken_by) }));
    if (r.done_ms) meta.push(t('desk.done_at', { at: moment(r.done_ms), note: r.note ?? '' }));
    li.append(el('div', 'meta', meta.join(' · ')));
    const actions = el('div', 'actions');
    // Only the judicial office takes referrals up and finishes them; others watch.
    const office = this.o.me()?.role === 'partner';
    if (office && r.status === 'handed') {
      const take = button('desk.take', () => busy(take, () => this.o.api.post(`/api/v1/referrals/${r.referral_id}/take`, {}), () => {
        this.o.toast(t('desk.done.take'));
        return this.load();
      }, this.o.toast, () => this.load()), 'primary take');
      actions.append(take);
    }
    if (office && r.status === 'taken') {
      const note = textarea('note', 1000);
      note.placeholder = t('desk.done_note');
      note.value = this.notes.get(r.referral_id) ?? '';
      note.addEventListener('input', () => this.notes.set(r.referral_id, note.value));
      const done = button('desk.finish', () => {
        if (!note.value.trim()) {
          this.o.toast(t('desk.need_done_note'));
          return;
        }
        busy(done, () => this.o.api.post(`/api/v1/referrals/${r.referral_id}/done`, { note: note.value.trim() }), () => {
          this.notes.delete(r.referral_id);
          this.o.toast(t('desk.done.finish'));
          return this.load();
        }, this.o.toast, () => this.load());
      }, 'primary done');
      actions.append(note, done);
    }
    li.append(actions);
    return li;
  }
}
