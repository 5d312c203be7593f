// The duty panel (今日值班): the 24-hour duty roster of the command centre and of each post
// for a day, today unless another is chosen (`GET /api/v1/duty?from=&to=`): for each
// unit, the leader on duty and the people on duty, each with their hours, those on duty
// now marked, and the posts with nobody on duty now counted. Operators and administrators
// see it; an administrator also gets the roster editor: a form that adds a shift on the
// chosen day (`POST /api/v1/duty`) and each shift's cancel button (`DELETE
// /api/v1/duty/{id}`, a second click confirms). Days are China's, whatever the wall
// screen's own clock zone.

import { el } from './dom.js';
import { t, translated, clock } from './i18n.js';

const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** China Standard Time is UTC+8 all year. */
const CHINA_OFFSET_MS = 8 * HOUR_MS;
/** How often the panel reads the roster again while it is open (who is on duty now moves on). */
const REFRESH_MS = 60_000;
/** How long a "cancel" button waits for its second click. */
const CONFIRM_MS = 4000;

/** The China day holding `ms`, as `YYYY-MM-DD`. */
export function chinaDay(ms) {
  return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 10);
}

/** The first millisecond of the China day `YYYY-MM-DD`. */
export function chinaDayStart(day) {
  const [y, m, d] = day.split('-').map(Number);
  return Date.UTC(y, m - 1, d) - CHINA_OFFSET_MS;
}

/** The unit key of a shift: the post's id, or `command_centre`. */
const unitKey = (s) => (s.unit_kind === 'command_centre' ? 'command_centre' : s.unit_id);

export class DutyPanel {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLElement} o.body the panel's body in the drawer
   * @param {{id: string, name: string}[]} o.posts the map's posts, in the map's order
   * @param {boolean} o.admin whether to offer the roster editor
   */
  constructor(o) {
    this.o = o;
    this.postNames = new Map(o.posts.map((p) => [p.id, p.name]));
    this.day = chinaDay(Date.now());
    this.shifts = [];
    this.error = null;
    this.formError = null;
    this.saved = null;
    this.busy = false;
    this.confirming = null;
    this.timer = null;
    /** The people of each unit, for the editor's suggestions, by unit key. */
    this.peopleOf = new Map();

    this.title = el('h4');
    this.dayInput = el('input');
    this.dayInput.type = 'date';
    this.dayInput.name = 'duty_day';
    this.dayInput.value = this.day;
    this.dayInput.addEventListener('change', () => {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(this.dayInput.value)) return;
      this.day = this.dayInput.value;
      this.load();
    });
    const head = el('div', 'duty-head');
    head.append(this.title, this.dayInput);
    this.summary = el('p', 'duty-summary');
    this.listError = el('p', 'error');
    this.list = el('div', 'duty-units');
    const parts = [head, this.summary, this.listError, this.list];
    if (o.admin) {
      // The editor folded under the day's roster's head: the wall shows who is on duty
      // first, and the administrator opens the form when setting the roster.
      this.form = this.buildForm();
      this.editor = el('details', 'duty-editor');
      const fold = translated('duty_new', 'summary');
      this.editor.append(fold, this.form);
      parts.splice(2, 0, this.editor);
      this.list.addEventListener('click', (ev) => {
        const b = ev.target.closest('button[data-cancel]');
        if (b && !b.disabled) this.cancel(b.dataset.cancel);
      });
    }
    o.body.replaceChildren(...parts);
    this.render();
  }

  /** The panel is shown: the roster is read now and every minute until it is hidden. */
  show() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    return this.load();
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async load() {
    const from = chinaDayStart(this.day);
    try {
      const res = await this.o.api.get(`/api/v1/duty?from=${from}&to=${from + DAY_MS}`);
      this.shifts = res.shifts;
      this.error = null;
    } catch (e) {
      this.error = e.message;
    }
    this.render();
  }

  unitName(key) {
    return key === 'command_centre' ? t('duty_centre') : this.postNames.get(key) ?? key;
  }

  buildForm() {
    const f = el('form', 'device-form duty-form');
    f.autocomplete = 'off';
    const field = (name, label, input) => {
      const l = el('label');
      input.name = name;
      l.dataset.field = name;
      l.append(translated(label), input);
      f.append(l);
      return input;
    };
    const unit = field('unit', 'duty_unit', el('select'));
    const centre = el('option', '', t('duty_centre'));
    centre.value = 'command_centre';
    unit.append(centre);
    for (const p of this.o.posts) {
      const opt = el('option', '', p.name);
      opt.value = p.id;
      unit.append(opt);
    }
    unit.addEventListener('change', () => this.suggest());
    const duty = field('duty', 'duty_kind', el('select'));
    for (const d of ['leader', 'on_duty']) {
      const opt = translated(`duty_role.${d}`, 'option');
      opt.value = d;
      duty.append(opt);
    }
    const person = field('person_id', 'duty_person', el('input'));
    person.spellcheck = false;
    person.required = true;
    person.setAttribute('list', 'duty-people');
    this.peopleList = el('datalist');
    this.peopleList.id = 'duty-people';
    f.append(this.peopleList);
    const start = field('start', 'duty_start', el('input'));
    start.type = 'time';
    start.value = '08:00';
    start.required = true;
    const hours = field('hours', 'duty_hours', el('input'));
    hours.type = 'number';
    hours.min = '1';
    hours.max = '24';
    hours.value = '24';
    hours.required = true;
    this.submitButton = el('button', 'primary');
    this.submitButton.type = 'submit';
    this.formErrorLine = el('p', 'error');
    this.formErrorLine.setAttribute('role', 'alert');
    this.savedLine = el('p', 'saved');
    f.append(this.submitButton, this.formErrorLine, this.savedLine);
    f.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.add();
    });
    this.suggest(unit);
    return f;
  }

  /** The people the chosen unit's shifts may name, as the person field's suggestions. */
  async suggest(unitSelect) {
    const key = (unitSelect ?? this.form.elements.namedItem('unit')).value;
    if (!this.peopleOf.has(key)) {
      const q = key === 'command_centre' ? ['role=operator&active=true', 'role=admin&active=true'] : [`unit_id=${encodeURIComponent(key)}&active=true`];
      try {
        const pages = await Promise.all(q.map((query) => this.o.api.get(`/api/v1/people?${query}&limit=500`)));
        const people = pages.flatMap((p) => p.people).filter((p) => (key === 'command_centre' ? p.unit_kind === 'command_centre' : p.unit_id === key));
        this.peopleOf.set(key, people);
      } catch {
        // No suggestions: the id can still be typed, and the server says if it is wrong.
        this.peopleOf.set(key, []);
      }
    }
    this.peopleList.replaceChildren(
      ...this.peopleOf.get(key).map((p) => {
        const opt = el('option');
        opt.value = p.person_id;
        opt.label = `${p.name} (${p.person_id})`;
        return opt;
      }),
    );
  }

  /** The form's shift on the chosen day: `{ shift }`, or `{ error }` naming the field. */
  shiftOfForm() {
    const v = (name) => this.form.elements.namedItem(name).value.trim();
    const unit = v('unit');
    const [h, m] = v('start').split(':').map(Number);
    const hours = Number(v('hours'));
    if (!v('person_id')) return { error: { field: 'person_id', text: t('duty_person_missing') } };
    if (!Number.isFinite(h) || !Number.isFinite(m)) return { error: { field: 'start', text: t('duty_start_invalid') } };
    if (!(hours >= 1 && hours <= 24)) return { error: { field: 'hours', text: t('duty_hours_invalid') } };
    const starts = chinaDayStart(this.day) + h * HOUR_MS + m * 60_000;
    const shift = { unit_kind: unit === 'command_centre' ? 'command_centre' : 'post', person_id: v('person_id'), duty: v('duty'), starts_ms: starts, ends_ms: starts + Math.round(hours * HOUR_MS) };
    if (unit !== 'command_centre') shift.unit_id = unit;
    return { shift };
  }

  async add() {
    if (this.busy) return;
    const { shift, error } = this.shiftOfForm();
    this.saved = null;
    if (error) {
      this.formError = error;
      this.render();
      return;
    }
    this.busy = true;
    this.formError = null;
    this.render();
    try {
      await this.o.api.post('/api/v1/duty', { shifts: [shift] });
      const person = this.peopleOf.get(unitKey(shift))?.find((p) => p.person_id === shift.person_id);
      this.saved = t('duty_added', { name: person?.name ?? shift.person_id, from: clock(shift.starts_ms, false), to: clock(shift.ends_ms, false) });
      this.form.elements.namedItem('person_id').value = '';
    } catch (e) {
      // The server names `shifts[0].field`: the form's field is the part after the dot.
      const field = e.field?.replace(/^shifts\[\d+\]\./, '') ?? null;
      const text = e.status === 409 ? t('duty_conflict', { reason: e.message }) : field ? t('duty_field_error', { field: fieldName(field), reason: e.message }) : t('duty_failed', { reason: e.message });
      const formField = { unit_kind: 'unit', unit_id: 'unit', starts_ms: 'start', ends_ms: 'hours' };
      this.formError = { field: formField[field] ?? field, text };
    }
    this.busy = false;
    await this.load();
  }

  /** A shift's cancel button: the second click within a few seconds cancels it. */
  async cancel(id) {
    if (this.busy) return;
    if (this.confirming !== id) {
      this.confirming = id;
      this.render();
      setTimeout(() => {
        if (this.confirming === id) {
          this.confirming = null;
          this.render();
        }
      }, CONFIRM_MS);
      return;
    }
    this.confirming = null;
    this.busy = true;
    this.render();
    let failed = null;
    try {
      await this.o.api.request('DELETE', `/api/v1/duty/${encodeURIComponent(id)}`);
    } catch (e) {
      failed = t('duty_failed', { reason: e.message });
    }
    this.busy = false;
    await this.load();
    if (failed) {
      this.error = failed;
      this.render();
    }
  }

  render() {
    const now = Date.now();
    const today = this.day === chinaDay(now);
    this.title.textContent = today ? t('duty_today') : t('duty_day', { date: this.day });
    this.listError.hidden = !this.error;
    this.listError.textContent = this.error ? t('duty_load_failed', { reason: this.error }) : '';
    if (this.form) {
      this.submitButton.textContent = t('duty_add');
      this.submitButton.disabled = this.busy;
      this.formErrorLine.hidden = !this.formError;
      this.formErrorLine.textContent = this.formError?.text ?? '';
      this.formErrorLine.dataset.field = this.formError?.field ?? '';
      for (const l of this.form.querySelectorAll('label[data-field]')) l.classList.toggle('invalid', l.dataset.field === this.formError?.field);
      this.savedLine.hidden = !this.saved;
      this.savedLine.textContent = this.saved ?? '';
    }
    // The units in a fixed order: the command centre, then the posts as the map lists them.
    const byUnit = new Map();
    for (const s of [...this.shifts].sort((a, b) => a.starts_ms - b.starts_ms)) {
      const key = unitKey(s);
      if (!byUnit.has(key)) byUnit.set(key, []);
      byUnit.get(key).push(s);
    }
    const order = ['command_centre', ...this.o.posts.map((p) => p.id)];
    for (const key of byUnit.keys()) if (!order.includes(key)) order.push(key);
    const onNow = (s) => s.starts_ms <= now && now < s.ends_ms;
    const staffedPosts = new Set(this.shifts.filter((s) => s.unit_kind === 'post' && onNow(s)).map((s) => s.unit_id));
    this.summary.hidden = !today;
    this.summary.textContent = today ? t('duty_posts_unstaffed', { n: this.o.posts.filter((p) => !staffedPosts.has(p.id)).length, total: this.o.posts.length }) : '';
    this.list.replaceChildren();
    if (this.shifts.length === 0 && !this.error) this.list.append(el('p', 'empty', t('duty_none')));
    for (const key of order) {
      const shifts = byUnit.get(key);
      if (!shifts) continue;
      const unit = el('section', 'duty-unit');
      unit.dataset.unit = key;
      const name = el('h5', '', this.unitName(key));
      if (today && !shifts.some(onNow)) name.append(el('span', 'nobody', t('duty_nobody_now')));
      unit.append(name);
      for (const duty of ['leader', 'on_duty']) {
        const ofDuty = shifts.filter((s) => s.duty === duty);
        if (ofDuty.length === 0) continue;
        const line = el('div', `duty-line ${duty}`);
        line.append(el('span', 'what', t(`duty_role.${duty}`)));
        const who = el('ul', 'who');
        for (const s of ofDuty) who.append(this.shiftItem(s, today && onNow(s)));
        line.append(who);
        unit.append(line);
      }
      this.list.append(unit);
    }
  }

  shiftItem(s, now) {
    const li = el('li', now ? 'shift now' : 'shift');
    li.dataset.id = s.shift_id;
    li.dataset.person = s.person_id;
    li.append(el('span', 'name', s.person_name ?? s.person_id));
    const until = now ? t('duty_until', { time: clock(s.ends_ms, false) }) : t('duty_hours_span', { from: clock(s.starts_ms, false), to: clock(s.ends_ms, false) });
    li.append(el('span', 'hours', until));
    if (now) li.append(el('span', 'on', t('duty_now')));
    if (this.form) {
      const asking = this.confirming === s.shift_id;
      const b = el('button', asking ? 'cancel confirming' : 'cancel', t(asking ? 'duty_cancel_confirm' : 'duty_cancel'));
      b.type = 'button';
      b.dataset.cancel = s.shift_id;
      b.disabled = this.busy;
      li.append(b);
    }
    return li;
  }
}

/** A field the server named, in words. */
function fieldName(field) {
  const labels = { unit_kind: 'duty_unit', unit_id: 'duty_unit', person_id: 'duty_person', duty: 'duty_kind', starts_ms: 'duty_start', ends_ms: 'duty_hours', start: 'duty_start', hours: 'duty_hours' };
  return labels[field] ? t(labels[field]) : field;
}
