// Community correction (社区矫正): the tagged persons the signed-in person's role is
// entitled to, and for one person picked, their sanctions (治安处罚, 强制隔离戒毒, 行政拘留,
// 立案侦查, 刑事拘留). Every read is audited on the server, so this view is read when it is
// opened (and by its refresh button), never by the desk's poll.

import { el } from '/wallmap/dom.js';
import { t } from '/wallmap/i18n.js';
import { moment, listIn, dash, button, failure } from './common.js';

export class Correction {
  /** @param {object} o as the other views (see mediation.js): api, body, me, toast, onCount, postName */
  constructor(o) {
    this.o = o;
    this.polled = false;
    this.people = [];
    this.error = null;
    this.loaded = false;
    this.selectedId = null;
    this.sanctions = null;
    this.sanctionsError = null;
    this.toolbar = el('div', 'toolbar');
    this.list = el('ol', 'items');
    this.list.id = 'tagged-list';
    this.detail = el('div', 'detail');
    this.detail.id = 'tagged-detail';
    const columns = el('div', 'columns');
    columns.append(this.list, this.detail);
    o.body.replaceChildren(this.toolbar, columns);
    this.renderToolbar();
    this.renderDetail();
  }

  renderToolbar() {
    const again = button('desk.refresh', () => this.load(true));
    again.id = 'tagged-refresh';
    this.toolbar.replaceChildren(el('p', 'hint', t('desk.audited_hint')), again);
  }

  shown() {
    if (!this.loaded) this.load(true);
  }

  /** Reads the list only when asked (opened, refreshed): a poll leaves it alone. */
  async load(asked = false) {
    if (!asked) return;
    try {
      this.people = listIn(await this.o.api.get('/api/v1/tagged'));
      this.error = null;
    } catch (e) {
      this.error = failure(e);
    }
    this.loaded = true;
    this.renderList();
    this.renderDetail();
  }

  render() {
    this.renderToolbar();
    this.renderList();
    this.renderDetail();
  }

  renderList() {
    if (this.error) {
      this.list.replaceChildren(el('li', 'empty', this.error));
      return;
    }
    const rows = this.people.map((p) => {
      const li = el('li', p.person_id === this.selectedId ? 'on' : '');
      li.dataset.id = p.person_id;
      const head = el('div', 'head');
      head.append(el('span', 'kind', p.name ?? p.person_id), el('span', 'pill', dash(p.category)));
      li.append(head, el('div', 'meta', [p.person_id, p.post_id, p.note].filter(Boolean).join(' · ')));
      li.addEventListener('click', () => this.select(p.person_id));
      return li;
    });
    this.list.replaceChildren(...(rows.length ? rows : [el('li', 'empty', t('desk.no_tagged'))]));
  }

  async select(id) {
    this.selectedId = id;
    this.sanctions = null;
    this.sanctionsError = null;
    this.renderList();
    this.renderDetail();
    try {
      this.sanctions = listIn(await this.o.api.get(`/api/v1/tagged/${encodeURIComponent(id)}/sanctions`));
    } catch (e) {
      this.sanctionsError = failure(e);
    }
    if (this.selectedId === id) this.renderDetail();
  }

  renderDetail() {
    const d = this.detail;
    const p = this.people.find((x) => x.person_id === this.selectedId);
    if (!p) {
      d.replaceChildren(el('p', 'hint', t('desk.pick_person')));
      return;
    }
    d.dataset.id = p.person_id;
    const h = el('h2', '', `${p.name ?? p.person_id}（${dash(p.category)}）`);
    d.replaceChildren(h, el('h3', '', t('desk.sanctions')));
    if (this.sanctionsError) {
      d.append(el('p', 'empty', this.sanctionsError));
      return;
    }
    if (!this.sanctions) {
      d.append(el('p', 'hint', t('desk.loading')));
      return;
    }
    if (!this.sanctions.length) {
      d.append(el('p', 'empty', t('desk.no_sanctions')));
      return;
    }
    const ol = el('ol', 'sanctions');
    for (const s of this.sanctions) {
      const li = el('li');
      li.dataset.kind = s.kind;
      li.append(el('div', 'head', `${t(`desk.sanction.${s.kind}`)} · ${moment(s.decided_ms)}`), el('div', 'meta', [s.authority, s.note].filter(Boolean).join(' · ')));
      ol.append(li);
    }
    d.append(ol);
  }
}
