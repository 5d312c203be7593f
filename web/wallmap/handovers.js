// The shift handovers (交接班) panel: the newest handover sheets the caller may see
// (`GET /api/v1/handovers`), each with its unit, shift, the two persons and how far it
// has gone, and a link that opens the printable sheet (`/handover.html?id=…`) in a tab
// of its own, where it is signed, accepted and printed.

import { el } from './dom.js';
import { t, clock, dateLine } from './i18n.js';

/** How many sheets the panel lists: a few days of shifts for every unit the caller sees. */
const PAGE = 50;

/** A moment as the sheet shows it: the date and the time of day, China time. */
export function moment(ms) {
  return `${dateLine(ms)} ${clock(ms, false)}`;
}

export class HandoversPanel {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLElement} o.body the panel's body in the drawer
   * @param {(postId: string) => string} o.postName a post's name for its id
   */
  constructor(o) {
    this.o = o;
    this.handovers = [];
    this.error = null;
    this.loaded = false;
  }

  /** Loads the list again each time the panel is opened: sheets are prepared at shift ends. */
  async show() {
    try {
      const { handovers } = await this.o.api.get(`/api/v1/handovers?limit=${PAGE}`);
      this.handovers = handovers;
      this.error = null;
    } catch (e) {
      this.error = e.message;
    }
    this.loaded = true;
    this.render();
  }

  render() {
    const body = this.o.body;
    body.replaceChildren(el('h3', '', t('handover.list_title')));
    if (!this.loaded) return;
    if (this.error) {
      body.append(el('p', 'error', t('handover.failed', { reason: this.error })));
      return;
    }
    if (this.handovers.length === 0) {
      body.append(el('p', 'empty', t('handover.none')));
      return;
    }
    const list = el('ol', 'handover-list');
    for (const h of this.handovers) list.append(this.item(h));
    body.append(list);
  }

  item(h) {
    const li = el('li', `handover-item ${h.state}`);
    li.dataset.id = String(h.handover_id);
    const unit = h.unit_kind === 'post' ? this.o.postName(h.unit_id) : t('handover.command_centre');
    const head = el('div', 'head');
    head.append(el('strong', '', unit), el('span', `pill ${h.state}`, t(`handover.state.${h.state}`)));
    const shift = el('div', 'shift', t('handover.shift', { from: moment(h.from_ms), to: moment(h.to_ms) }));
    const names = h.sheet ?? {};
    const people = el(
      'div',
      'people',
      t('handover.people', { out: names.outgoing_name ?? h.outgoing_person_id, in: names.incoming_name ?? h.incoming_person_id }),
    );
    const link = el('a', 'open', t('handover.open'));
    link.href = `/handover.html?id=${encodeURIComponent(h.handover_id)}`;
    link.target = '_blank';
    link.rel = 'noopener';
    li.append(head, shift, people, link);
    return li;
  }
}
