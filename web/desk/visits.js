// Home visits (上门办理): business done at a person's home by a post officer or a grid
// member (an elderly person's legal aid, a correction subject's check), assigned here and
// carried out from the assignee's phone (arrived near the place, then done with a note and
// photos). The list shows each visit's state; one past its due time is marked 超期.

import { el } from '/wallmap/dom.js';
import { t } from '/wallmap/i18n.js';
import { moment, localValue, chinaTime, listIn, itemIn, dash, button, field, input, textarea, statusPill, overdueMark, failure, busy, personText } from './common.js';

const LIMIT = 200;
const DAY_MS = 24 * 3600 * 1000;

export class Visits {
  /** @param {object} o as the other views (see mediation.js): api, body, me, toast, onCount, postName */
  constructor(o) {
    this.o = o;
    this.polled = true;
    this.items = [];
    this.error = null;
    /** The people a visit may be assigned to (post officers, grid members), as far as the caller may list them. */
    this.assignees = [];
    this.toolbar = el('div', 'toolbar');
    this.form = el('div', 'new-visit');
    this.form.hidden = true;
    this.list = el('ol', 'items wide');
    this.list.id = 'visit-list';
    o.body.replaceChildren(this.toolbar, this.form, this.list);
    this.renderToolbar();
  }

  async loadAssignees() {
    if (this.assignees.length) return;
    const read = (role) => this.o.api.get(`/api/v1/people?role=${role}&active=true&limit=500`).then(listIn).catch(() => []);
    const [officers, grid] = await Promise.all([read('post_officer'), read('grid_member')]);
    this.assignees = [...officers, ...grid];
  }

  async load() {
    try {
      this.items = listIn(await this.o.api.get(`/api/v1/home-visits?limit=${LIMIT}`));
      this.error = null;
    } catch (e) {
      this.error = failure(e);
    }
    const open = this.items.filter((v) => v.status === 'assigned' || v.status === 'arrived');
    this.o.onCount('visits', open.length, open.filter((v) => v.overdue).length);
    this.renderList();
  }

  render() {
    this.renderToolbar();
    this.renderList();
    if (!this.form.hidden) this.renderForm();
  }

  renderToolbar() {
    const add = button('desk.new_visit', async () => {
      this.form.hidden = !this.form.hidden;
      if (!this.form.hidden) {
        await this.loadAssignees();
        this.renderForm();
      }
    });
    add.id = 'new-visit-button';
    this.toolbar.replaceChildren(add);
  }

  renderList() {
    if (this.error) {
      this.list.replaceChildren(el('li', 'empty', this.error));
      return;
    }
    const rows = this.items.map((v) => {
      const li = el('li', v.overdue ? 'late' : '');
      li.dataset.id = String(v.visit_id);
      li.dataset.status = v.status;
      const head = el('div', 'head');
      head.append(el('span', 'id', `#${v.visit_id}`), el('span', 'kind', personText(v.person)), statusPill('visit_status', v.status), ...overdueMark(v));
      li.append(head, el('div', 'summary', dash(v.reason)));
      const meta = [t('desk.assignee_line', { name: v.assignee_name ?? v.assignee_id }), t('desk.due_at', { at: moment(v.due_ms) })];
      if (v.address) meta.push(v.address);
      if (v.arrived_ms) meta.push(t('desk.arrived_at', { at: moment(v.arrived_ms), m: Math.round(v.arrived_distance_m ?? 0) }));
      if (v.done_ms) meta.push(t('desk.done_at', { at: moment(v.done_ms), note: v.note ?? '' }));
      if (v.photos?.length) meta.push(t('desk.photos', { n: v.photos.length }));
      li.append(el('div', 'meta', meta.join(' · ')));
      return li;
    });
    this.list.replaceChildren(...(rows.length ? rows : [el('li', 'empty', t('desk.no_visits'))]));
  }

  /** The new visit's form: who is visited, where, why, by when, and by whom. */
  renderForm() {
    const name = input('person_name');
    const phone = input('person_phone', 'tel');
    const address = input('address');
    const lon = input('lon', 'number');
    const lat = input('lat', 'number');
    lon.step = lat.step = 'any';
    const reason = textarea('reason', 1000);
    const due = input('due', 'datetime-local', localValue(Date.now() + 2 * DAY_MS));
    const assignee = input('assignee_id');
    const options = el('datalist');
    options.id = 'assignee-options';
    for (const p of this.assignees) {
      const o = el('option', '', `${p.name}（${t(`desk.role.${p.roles?.[0] ?? ''}`)}）`);
      o.value = p.person_id;
      options.append(o);
    }
    assignee.setAttribute('list', options.id);
    const form = el('form', 'step visit-form');
    const row = (...fields) => {
      const r = el('div', 'row');
      r.append(...fields);
      return r;
    };
    form.append(
      el('h3', '', t('desk.new_visit')),
      row(field('desk.f.person_name', name), field('desk.f.person_phone', phone)),
      field('desk.f.address', address),
      row(field('desk.f.lon', lon), field('desk.f.lat', lat)),
      field('desk.f.reason', reason),
      row(field('desk.f.due', due), field('desk.f.assignee', assignee)),
      options,
    );
    const go = el('button', 'primary', t('desk.new_visit_button'));
    go.type = 'submit';
    go.id = 'visit-submit';
    form.append(go);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const dueAt = chinaTime(due.value);
      if (!name.value.trim() || !phone.value.trim() || !reason.value.trim() || !assignee.value.trim() || !dueAt || !Number.isFinite(lon.valueAsNumber) || !Number.isFinite(lat.valueAsNumber)) {
        this.o.toast(t('desk.need_visit'));
        return;
      }
      const json = {
        person: { name: name.value.trim(), phone: phone.value.trim() },
        lon: lon.valueAsNumber,
        lat: lat.valueAsNumber,
        reason: reason.value.trim(),
        due: dueAt,
        assignee_id: assignee.value.trim(),
      };
      if (address.value.trim()) json.address = address.value.trim();
      busy(go, () => this.o.api.post('/api/v1/home-visits', json), (answer) => {
        this.form.hidden = true;
        this.o.toast(t('desk.done.visit', { id: itemIn(answer, 'visit')?.visit_id ?? '' }));
        return this.load();
      }, this.o.toast);
    });
    this.form.replaceChildren(form);
  }
}
