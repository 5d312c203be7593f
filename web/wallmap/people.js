// The administrator's people view (人员): the people who use the system, a page at a time
// and filtered by unit, role and whether they are active (`GET /api/v1/people`), a form
// that adds a person (`POST`) or changes one (`PATCH /api/v1/people/{id}`), and each row's
// deactivate / reactivate. People are never deleted: deactivating is how one leaves.
//
// A change carries the `updated_ms` of the person as the form read it, so that the server
// refuses it (409) when another administrator changed the person in between; the form then
// says so and offers to read the person again rather than overwrite the other change. A
// refusal names the field the server named, next to that field.

import { el } from './dom.js';
import { t, translated } from './i18n.js';

/** The roles a person can hold (crates/liandong-server/src/people.rs, `PERSON_ROLES`). */
export const PERSON_ROLES = ['admin', 'operator', 'patrol_leader', 'post_officer', 'grid_member', 'partner'];

/** What a person belongs to; the first three are units of the map and take a `unit_id`. */
export const UNIT_KINDS = ['post', 'team', 'grid', 'judicial_office', 'command_centre'];
const MAP_UNITS = new Set(['post', 'team', 'grid']);

/** The server's rule for a person id, so that the form says what is wrong before asking. */
const PERSON_ID = /^[a-z0-9_-]{1,64}$/;

/** People on one page of the list. */
const PAGE = 50;

/** How long a "deactivate" button waits for its second click. */
const CONFIRM_MS = 4000;

/** The form's inputs by the body field the server names in a refusal. */
const FIELDS = ['person_id', 'name', 'phone', 'roles', 'unit_kind', 'unit_id', 'active'];

export class PeoplePanel {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLElement} o.body the panel's body in the drawer
   * @param {{ post: {id: string, name: string}[], team: {id: string, name: string}[], grid: {id: string, name: string}[] }} o.units
   *   the map's units a person can belong to, with their names
   */
  constructor(o) {
    this.o = o;
    this.names = new Map();
    for (const kind of MAP_UNITS) for (const u of o.units[kind] ?? []) this.names.set(u.id, u.name);
    this.people = [];
    /** The `after` of every page up to the one shown: `[null]` is the first page. */
    this.afters = [null];
    this.nextAfter = null;
    this.filter = { unit_id: '', role: '', active: '' };
    this.error = null;
    /** The person the form changes (as read from the server), or null when it adds one. */
    this.editing = null;
    /** `{ field, text }` of the form's last refusal, or null. */
    this.formError = null;
    /** The form's change was refused because the person changed since it was read. */
    this.stale = false;
    this.saved = null;
    this.busy = false;
    /** The person id whose "deactivate" waits for a second click. */
    this.confirming = null;

    this.filters = this.buildFilters();
    this.form = this.buildForm();
    this.kindChanged();
    this.count = el('small');
    const head = el('h4');
    head.append(translated('people_list'), this.count);
    this.listError = el('p', 'error');
    this.list = el('ol', 'people-list');
    this.pager = this.buildPager();
    o.body.replaceChildren(this.form, head, this.filters, this.listError, this.list, this.pager);
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
    this.list.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-act]');
      if (!b || b.disabled) return;
      const p = this.people.find((x) => x.person_id === b.dataset.id);
      if (!p) return;
      if (b.dataset.act === 'edit') this.edit(p);
      if (b.dataset.act === 'active') this.toggleActive(p);
    });
    this.render();
  }

  /** The panel is shown: the list is read again, as another administrator may have changed it. */
  show() {
    return this.load();
  }

  /** Reads the page shown, with the filters in force. */
  async load() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const [k, v] of Object.entries(this.filter)) if (v) q.set(k, v);
    const after = this.afters[this.afters.length - 1];
    if (after) q.set('after', after);
    try {
      const res = await this.o.api.get(`/api/v1/people?${q}`);
      this.people = res.people;
      this.nextAfter = res.next_after ?? null;
      this.error = null;
    } catch (e) {
      this.error = e.field ? t('person_field_error', { field: fieldName(e.field), reason: e.message }) : e.message;
    }
    this.render();
  }

  input(name) {
    return this.form.elements.namedItem(name);
  }

  buildFilters() {
    const f = el('div', 'people-filters');
    const unit = el('input');
    unit.name = 'filter_unit';
    unit.spellcheck = false;
    unit.setAttribute('list', 'people-units-all');
    unit.dataset.i18nPlaceholder = 'people_filter_unit';
    unit.placeholder = t('people_filter_unit');
    const all = el('datalist');
    all.id = 'people-units-all';
    for (const [id, name] of this.names) all.append(unitOption(id, name));
    const role = el('select');
    role.name = 'filter_role';
    role.append(option('', 'people_filter_any_role'));
    for (const r of PERSON_ROLES) role.append(option(r, `person_role.${r}`));
    const active = el('select');
    active.name = 'filter_active';
    active.append(option('', 'people_filter_any'), option('true', 'people_filter_active'), option('false', 'people_filter_inactive'));
    const apply = () => {
      this.filter = { unit_id: unit.value.trim(), role: role.value, active: active.value };
      this.afters = [null];
      this.load();
    };
    unit.addEventListener('change', apply);
    role.addEventListener('change', apply);
    active.addEventListener('change', apply);
    f.append(unit, all, role, active);
    return f;
  }

  buildPager() {
    const p = el('div', 'pager');
    this.prev = translated('people_prev', 'button');
    this.prev.type = 'button';
    this.next = translated('people_next', 'button');
    this.next.type = 'button';
    this.pageLine = el('span', 'page');
    this.prev.addEventListener('click', () => {
      if (this.afters.length > 1) {
        this.afters.pop();
        this.load();
      }
    });
    this.next.addEventListener('click', () => {
      if (this.nextAfter) {
        this.afters.push(this.nextAfter);
        this.load();
      }
    });
    p.append(this.prev, this.pageLine, this.next);
    return p;
  }

  buildForm() {
    const f = el('form', 'device-form person-form');
    f.autocomplete = 'off';
    this.formTitle = el('h4');
    f.append(this.formTitle);
    const field = (name, label, input) => {
      const l = el('label');
      input.name = name;
      l.dataset.field = name;
      l.append(translated(label), input);
      f.append(l);
      return input;
    };
    const id = field('person_id', 'person_id', el('input'));
    id.spellcheck = false;
    id.required = true;
    id.maxLength = 64;
    const name = field('name', 'person_name', el('input'));
    name.required = true;
    name.maxLength = 100;
    const phone = field('phone', 'person_phone', el('input'));
    phone.type = 'tel';
    phone.maxLength = 20;
    // The roles: a check box each, in one row that names the field.
    const roles = el('div', 'roles');
    roles.dataset.field = 'roles';
    for (const r of PERSON_ROLES) {
      const l = el('label', 'role');
      const box = el('input');
      box.type = 'checkbox';
      box.name = 'roles';
      box.value = r;
      l.append(box, translated(`person_role.${r}`));
      roles.append(l);
    }
    // Not a label: the check boxes are labelled each, and labels do not nest.
    const rolesField = el('div', 'field');
    rolesField.dataset.field = 'roles';
    rolesField.append(translated('person_roles'), roles);
    f.append(rolesField);
    const kind = field('unit_kind', 'person_unit_kind', el('select'));
    for (const k of UNIT_KINDS) kind.append(option(k, `person_unit.${k}`));
    const unit = field('unit_id', 'person_unit_id', el('input'));
    unit.spellcheck = false;
    unit.setAttribute('list', 'people-units-form');
    this.unitList = el('datalist');
    this.unitList.id = 'people-units-form';
    f.append(this.unitList);
    kind.addEventListener('change', () => this.kindChanged());
    const active = el('input');
    active.type = 'checkbox';
    active.checked = true;
    field('active', 'person_active', active);
    const actions = el('div', 'actions');
    this.submitButton = el('button', 'primary');
    this.submitButton.type = 'submit';
    this.cancelButton = translated('person_cancel', 'button');
    this.cancelButton.type = 'button';
    this.cancelButton.addEventListener('click', () => this.edit(null));
    this.reloadButton = translated('person_reload', 'button');
    this.reloadButton.type = 'button';
    this.reloadButton.addEventListener('click', () => this.reread());
    actions.append(this.submitButton, this.cancelButton, this.reloadButton);
    this.formErrorLine = el('p', 'error');
    this.formErrorLine.setAttribute('role', 'alert');
    this.savedLine = el('p', 'saved');
    f.append(actions, this.formErrorLine, this.savedLine);
    return f;
  }

  /** The unit kind chosen: the unit field offers that kind's units, or none for an office. */
  kindChanged() {
    const kind = this.input('unit_kind').value;
    const unit = this.input('unit_id');
    const onMap = MAP_UNITS.has(kind);
    unit.disabled = !onMap;
    unit.required = onMap;
    if (!onMap) unit.value = '';
    this.unitList.replaceChildren(...(this.o.units[kind] ?? []).map((u) => unitOption(u.id, u.name)));
  }

  /** Fills the form with `p` to change it, or empties it to add a person (`p` null). */
  edit(p) {
    this.editing = p;
    this.formError = null;
    this.stale = false;
    this.saved = null;
    const v = (name, value) => (this.input(name).value = value ?? '');
    v('person_id', p?.person_id);
    v('name', p?.name);
    v('phone', p?.phone);
    for (const box of this.form.querySelectorAll('input[name="roles"]')) box.checked = p ? p.roles.includes(box.value) : false;
    v('unit_kind', p?.unit_kind ?? UNIT_KINDS[0]);
    this.kindChanged();
    v('unit_id', p?.unit_id);
    this.input('active').checked = p ? p.active : true;
    this.render();
    if (p) this.input('name').focus();
  }

  /** After a 409: the person as stored now, in the form, for the administrator to change again. */
  async reread() {
    if (!this.editing) return;
    try {
      const { person } = await this.o.api.get(`/api/v1/people/${encodeURIComponent(this.editing.person_id)}`);
      this.edit(person);
    } catch (e) {
      this.formError = { field: null, text: e.message };
      this.render();
    }
    await this.load();
  }

  /** The form's values, trimmed. */
  values() {
    const v = (name) => this.input(name).value.trim();
    const roles = [...this.form.querySelectorAll('input[name="roles"]:checked')].map((b) => b.value);
    return { person_id: v('person_id'), name: v('name'), phone: v('phone'), roles, unit_kind: v('unit_kind'), unit_id: v('unit_id'), active: this.input('active').checked };
  }

  async submit() {
    if (this.busy) return;
    const d = this.values();
    const refuse = (field, key) => {
      this.formError = { field, text: t(key) };
      this.saved = null;
      this.render();
    };
    if (!this.editing && !PERSON_ID.test(d.person_id)) return refuse('person_id', 'person_id_invalid');
    if (!d.name) return refuse('name', 'person_name_missing');
    if (d.roles.length === 0) return refuse('roles', 'person_roles_missing');
    const unit = MAP_UNITS.has(d.unit_kind) ? d.unit_id || undefined : undefined;
    if (this.editing) {
      await this.send('PATCH', `/api/v1/people/${encodeURIComponent(this.editing.person_id)}`, {
        name: d.name,
        phone: d.phone || null,
        roles: d.roles,
        unit_kind: d.unit_kind,
        unit_id: unit ?? null,
        active: d.active,
        updated_ms: this.editing.updated_ms,
      });
    } else {
      await this.send('POST', '/api/v1/people', {
        person_id: d.person_id,
        name: d.name,
        phone: d.phone || undefined,
        roles: d.roles,
        unit_kind: d.unit_kind,
        unit_id: unit,
        active: d.active,
      });
    }
  }

  /** Sends the form; on success the form empties and the list is read again. */
  async send(method, path, body) {
    this.busy = true;
    this.formError = null;
    this.stale = false;
    this.saved = null;
    this.render();
    try {
      const { person } = await this.o.api.request(method, path, body);
      this.busy = false;
      this.edit(null);
      this.saved = t(method === 'POST' ? 'person_added' : 'person_changed', { name: person.name, id: person.person_id });
    } catch (e) {
      this.busy = false;
      this.refused(e, method === 'PATCH');
    }
    this.render();
    await this.load();
  }

  /** A refusal of the form: a stale change asks for a reload, anything else names its field. */
  refused(e, changing) {
    if (e.status === 409 && changing) {
      this.stale = true;
      this.formError = { field: null, text: t('person_stale') };
    } else if (e.status === 409) {
      this.formError = { field: 'person_id', text: t('person_exists', { id: this.values().person_id }) };
    } else if (e.field) {
      this.formError = { field: e.field, text: t('person_field_error', { field: fieldName(e.field), reason: e.message }) };
    } else {
      this.formError = { field: null, text: t('person_failed', { reason: e.message }) };
    }
  }

  /** A row's deactivate (second click within a few seconds) or reactivate. */
  async toggleActive(p) {
    if (this.busy) return;
    if (p.active && this.confirming !== p.person_id) {
      this.confirming = p.person_id;
      this.render();
      setTimeout(() => {
        if (this.confirming === p.person_id) {
          this.confirming = null;
          this.render();
        }
      }, CONFIRM_MS);
      return;
    }
    this.confirming = null;
    this.busy = true;
    this.render();
    try {
      await this.o.api.request('PATCH', `/api/v1/people/${encodeURIComponent(p.person_id)}`, { active: !p.active, updated_ms: p.updated_ms });
      this.error = null;
    } catch (e) {
      this.error = e.status === 409 ? t('person_stale_list', { name: p.name }) : t('person_failed', { reason: e.message });
    }
    this.busy = false;
    const error = this.error;
    await this.load();
    // The list read again clears the error line: a refusal stays on it.
    if (error) {
      this.error = error;
      this.render();
    }
  }

  /** The parts that change: the form's title, buttons and errors, the list and the pager. */
  render() {
    const editing = this.editing !== null;
    this.formTitle.textContent = editing ? t('person_edit', { name: this.editing.name }) : t('person_new');
    this.input('person_id').readOnly = editing;
    this.submitButton.textContent = t(editing ? 'person_save' : 'person_add');
    this.submitButton.disabled = this.busy;
    this.cancelButton.hidden = !editing;
    this.reloadButton.hidden = !this.stale;
    this.formErrorLine.hidden = !this.formError;
    this.formErrorLine.textContent = this.formError?.text ?? '';
    this.formErrorLine.dataset.field = this.formError?.field ?? '';
    for (const name of FIELDS) {
      const bad = this.formError?.field === name;
      for (const l of this.form.querySelectorAll(`[data-field="${name}"]`)) l.classList.toggle('invalid', bad);
      const input = this.input(name);
      if (input instanceof HTMLElement) input.setAttribute('aria-invalid', String(bad));
    }
    this.savedLine.hidden = !this.saved;
    this.savedLine.textContent = this.saved ?? '';

    this.count.textContent = t('people_n', { n: this.people.length });
    this.listError.hidden = !this.error;
    this.listError.textContent = this.error ? t('people_failed', { reason: this.error }) : '';
    this.list.replaceChildren();
    if (this.people.length === 0 && !this.error) this.list.append(el('li', 'empty', t('people_none')));
    for (const p of this.people) this.list.append(this.row(p));
    this.prev.disabled = this.afters.length <= 1;
    this.next.disabled = !this.nextAfter;
    this.pageLine.textContent = t('people_page', { n: this.afters.length });
  }

  row(p) {
    const li = el('li', p.active ? 'person' : 'person inactive');
    li.dataset.id = p.person_id;
    const text = el('div', 'text');
    const head = el('div', 'head');
    head.append(el('span', 'name', p.name), el('span', 'id', p.person_id));
    if (!p.active) head.append(el('span', 'state', t('person_inactive')));
    const line = el('div', 'line');
    line.append(el('span', 'roles', p.roles.map((r) => t(`person_role.${r}`)).join('、')), el('span', 'unit', this.unitText(p)));
    if (p.phone) line.append(el('span', 'phone', p.phone));
    text.append(head, line);
    const edit = el('button', 'edit', t('person_change'));
    edit.type = 'button';
    edit.dataset.act = 'edit';
    edit.dataset.id = p.person_id;
    const asking = this.confirming === p.person_id;
    const key = p.active ? (asking ? 'person_deactivate_confirm' : 'person_deactivate') : 'person_reactivate';
    const toggle = el('button', asking ? 'active confirming' : 'active', t(key));
    toggle.type = 'button';
    toggle.dataset.act = 'active';
    toggle.dataset.id = p.person_id;
    edit.disabled = toggle.disabled = this.busy;
    li.append(text, edit, toggle);
    return li;
  }

  /** What a person belongs to, in words: the kind, and the unit's name where the map has it. */
  unitText(p) {
    const kind = t(`person_unit.${p.unit_kind}`);
    if (!p.unit_id) return kind;
    return `${kind} · ${this.names.get(p.unit_id) ?? p.unit_id}`;
  }
}

/** A field the server named, in words: its label in the form, or its name. */
function fieldName(field) {
  const labels = { person_id: 'person_id', name: 'person_name', phone: 'person_phone', roles: 'person_roles', unit_kind: 'person_unit_kind', unit_id: 'person_unit_id', active: 'person_active' };
  return labels[field] ? t(labels[field]) : field;
}

function option(value, key) {
  const o = translated(key, 'option');
  o.value = value;
  return o;
}

function unitOption(id, name) {
  const o = el('option');
  o.value = id;
  o.label = name ? `${name} (${id})` : id;
  return o;
}
