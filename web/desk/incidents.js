// The major incidents (重大警情): the open priority-1 incidents as the signed-in person may
// see them (a partner: every priority-1 incident, read only), so that the office knows
// what the police are dealing with. Nothing here can be acted on.

import { el } from '/wallmap/dom.js';
import { t, kindName, placeName } from '/wallmap/i18n.js';
import { moment, listIn, dash, failure } from './common.js';

export class MajorIncidents {
  /** @param {object} o as the other views (see mediation.js): api, body, me, toast, onCount, postName */
  constructor(o) {
    this.o = o;
    this.polled = true;
    this.items = [];
    this.error = null;
    this.list = el('ol', 'items wide read-only');
    this.list.id = 'incident-list';
    o.body.replaceChildren(el('p', 'hint', t('desk.incidents_hint')), this.list);
    this.hint = o.body.firstChild;
  }

  async load() {
    try {
      const all = listIn(await this.o.api.get('/api/v1/history/incidents?state=open&limit=500'));
      this.items = all.filter((i) => i.priority === 1);
      this.error = null;
    } catch (e) {
      this.error = failure(e);
    }
    this.o.onCount('incidents', this.items.length, this.items.length);
    this.render();
  }

  render() {
    this.hint.textContent = t('desk.incidents_hint');
    if (this.error) {
      this.list.replaceChildren(el('li', 'empty', this.error));
      return;
    }
    const rows = this.items.map((i) => {
      const li = el('li', 'p1');
      li.dataset.id = String(i.incident_id);
      const head = el('div', 'head');
      head.append(el('span', 'id', `#${i.incident_id}`), el('span', 'kind', kindName(i.kind)), el('span', 'pill state', t(`state.${i.state}`)));
      li.append(head, el('div', 'summary', dash(i.title)));
      const meta = [t('desk.since', { at: moment(i.created_ms) })];
      if (i.township) meta.push(placeName(i.township));
      if (i.assigned_unit) meta.push(t('desk.assigned', { unit: i.assigned_unit }));
      li.append(el('div', 'meta', meta.join(' · ')));
      return li;
    });
    this.list.replaceChildren(...(rows.length ? rows : [el('li', 'empty', t('desk.no_incidents'))]));
  }
}
