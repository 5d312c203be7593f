// The mediation cases (调解案件): the queue of the joint mediation centre, a walk-in's
// registration (来访登记), and one case's steps, 受理 (accept, with the mediator and the
// venue), 安排调解 (a session's time and venue), 调解结果 (the outcome: the kind of
// mediation, what was agreed, whether there is an agreement) and 回访 (the follow-up), or
// 不予受理 (decline). A case past the deadline of its step is marked 超期.
//
// The list is read on every poll; the open case too, but its forms are not redrawn while
// the person at the desk is filling one in.

import { el } from '/wallmap/dom.js';
import { t } from '/wallmap/i18n.js';
import { moment, localValue, chinaTime, listIn, itemIn, dash, button, field, input, textarea, select, statusPill, overdueMark, facts, failure, busy, placeText, personText, named } from './common.js';

const STATUSES = ['pending', 'accepted', 'mediated', 'followed_up', 'declined'];
const DISPUTE_TYPES = ['neighbour', 'family', 'land', 'labour', 'consumer', 'traffic', 'property', 'other'];
const MEDIATION_TYPES = ['people', 'judicial', 'administrative'];
/** A list of at most this many cases: the newest, as the API orders them. */
const LIMIT = 200;

export class Mediation {
  /**
   * @param {object} o
   * @param {import('/wallmap/api.js').Api} o.api
   * @param {HTMLElement} o.body the view's section
   * @param {() => object} o.me who signed in (`GET /api/v1/whoami`)
   * @param {(text: string) => void} o.toast
   * @param {(view: string, n: number, late: number) => void} o.onCount
   * @param {(postId: string) => string} o.postName a post's name in the current language
   */
  constructor(o) {
    this.o = o;
    this.polled = true;
    this.cases = [];
    this.error = null;
    this.venues = [];
    this.mediators = [];
    this.filter = '';
    this.mine = false;
    this.selectedId = null;
    this.selected = null;
    /** The open case's JSON as last drawn: a poll redraws it only when it changed. */
    this.drawn = '';
    /** Whether a form of the open case has been typed in since it was drawn. */
    this.dirty = false;
    /** The open case's copy in the list when it was last read whole. */
    this.listed = '';
    this.build();
  }

  build() {
    const b = this.o.body;
    b.replaceChildren();
    this.toolbar = el('div', 'toolbar');
    this.list = el('ol', 'items');
    this.list.id = 'case-list';
    this.detail = el('div', 'detail');
    this.detail.id = 'case-detail';
    this.detail.addEventListener('input', () => (this.dirty = true));
    this.walkIn = el('div', 'walk-in');
    this.walkIn.hidden = true;
    const columns = el('div', 'columns');
    columns.append(this.list, this.detail);
    b.append(this.toolbar, this.walkIn, columns);
    this.renderToolbar();
  }

  shown() {
    this.loadChoices();
  }

  /** The venues and the mediators to pick from; asked again until there are some. */
  async loadChoices() {
    const api = this.o.api;
    const [venues, mediators] = await Promise.all([
      this.venues.length ? null : api.get('/api/v1/mediation/venues').then(listIn).catch(() => null),
      this.mediators.length ? null : api.get('/api/v1/people?role=partner&active=true&limit=500').then(listIn).catch(() => null),
    ]);
    if (venues) this.venues = venues;
    if (mediators) this.mediators = mediators.filter((p) => !p.unit_kind || p.unit_kind === 'judicial_office');
    if (venues?.length || mediators?.length) {
      this.drawn = '';
      if (!this.dirty) this.renderDetail();
    }
  }

  async load() {
    if (!this.venues.length || !this.mediators.length) await this.loadChoices();
    const q = new URLSearchParams({ limit: String(LIMIT) });
    if (this.filter) q.set('status', this.filter);
    if (this.mine) q.set('mine', 'true');
    try {
      this.cases = listIn(await this.o.api.get(`/api/v1/mediation?${q}`));
      this.error = null;
    } catch (e) {
      this.error = failure(e);
    }
    // The open case is read again only when its copy in the list changed: every read of
    // one case is audited, and a desk left open all night would fill the log.
    const listed = this.cases.find((c) => c.case_id === this.selectedId);
    if (this.selectedId !== null && listed && JSON.stringify(listed) !== this.listed) {
      this.listed = JSON.stringify(listed);
      try {
        this.selected = itemIn(await this.o.api.get(`/api/v1/mediation/${this.selectedId}`), 'case');
      } catch (e) {
        // Not readable (any more): the list's copy stands in.
        this.selected = listed;
      }
    }
    const waiting = this.cases.filter((c) => c.status === 'pending' || c.status === 'accepted');
    this.o.onCount('mediation', waiting.length, this.cases.filter((c) => c.overdue).length);
    this.renderList();
    if (JSON.stringify(this.selected) !== this.drawn && !this.dirty) this.renderDetail();
  }

  render() {
    this.renderToolbar();
    this.renderList();
    if (!this.walkIn.hidden) this.renderWalkIn();
    this.drawn = '';
    this.renderDetail();
  }

  renderToolbar() {
    const status = select('status', [['', t('desk.all')], ...STATUSES.map((s) => [s, t(`desk.case_status.${s}`)])], this.filter);
    status.id = 'case-filter';
    status.addEventListener('change', () => {
      this.filter = status.value;
      this.load();
    });
    const mine = input('mine', 'checkbox');
    mine.checked = this.mine;
    mine.addEventListener('change', () => {
      this.mine = mine.checked;
      this.load();
    });
    const mineLabel = el('label', 'check');
    mineLabel.append(mine, el('span', '', t('desk.mine')));
    const add = button('desk.walk_in', () => {
      this.walkIn.hidden = !this.walkIn.hidden;
      if (!this.walkIn.hidden) this.renderWalkIn();
    });
    add.id = 'walk-in-button';
    this.toolbar.replaceChildren(field('desk.filter_status', status), mineLabel, add);
  }

  renderList() {
    const items = this.cases.map((c) => {
      const li = el('li', c.case_id === this.selectedId ? 'on' : '');
      li.dataset.id = String(c.case_id);
      li.dataset.status = c.status;
      if (c.overdue) li.classList.add('late');
      const head = el('div', 'head');
      head.append(el('span', 'id', `#${c.case_id}`), el('span', 'kind', named('dispute', c.dispute_type)), statusPill('case_status', c.status), ...overdueMark(c));
      li.append(head, el('div', 'summary', dash(c.summary)));
      li.append(el('div', 'meta', `${named('source', c.source)} · ${moment(c.opened_ms)}${c.mediator_name ? ` · ${c.mediator_name}` : ''}`));
      li.addEventListener('click', () => this.select(c.case_id));
      return li;
    });
    if (this.error) this.list.replaceChildren(el('li', 'empty', this.error));
    else this.list.replaceChildren(...(items.length ? items : [el('li', 'empty', t('desk.no_cases'))]));
  }

  async select(id) {
    this.selectedId = id;
    this.selected = this.cases.find((c) => c.case_id === id) ?? null;
    this.listed = JSON.stringify(this.selected);
    this.dirty = false;
    this.drawn = '';
    this.renderList();
    this.renderDetail();
    try {
      this.selected = itemIn(await this.o.api.get(`/api/v1/mediation/${id}`), 'case');
      if (this.selectedId === id && !this.dirty) this.renderDetail();
    } catch (e) {
      this.o.toast(failure(e));
    }
  }

  /** Shows the case as the server answered a step, and the list with it. */
  async applied(answer) {
    const c = itemIn(answer, 'case');
    if (c?.case_id !== undefined) {
      this.selectedId = c.case_id;
      this.selected = c;
    }
    this.dirty = false;
    this.drawn = '';
    this.renderDetail();
    await this.load();
  }

  venueName(id) {
    const v = this.venues.find((x) => x.venue_id === id);
    return v ? v.name : dash(id);
  }

  renderDetail() {
    const c = this.selected;
    this.drawn = JSON.stringify(c);
    const d = this.detail;
    if (!c) {
      delete d.dataset.id;
      d.replaceChildren(el('p', 'hint', t('desk.pick_case')));
      return;
    }
    d.dataset.id = String(c.case_id);
    d.dataset.status = c.status;
    const h = el('h2', '', t('desk.case_title', { id: c.case_id }));
    h.append(statusPill('case_status', c.status), ...overdueMark(c));
    const parties = (c.parties ?? []).map(personText).join('；');
    d.replaceChildren(
      h,
      facts([
        ['desk.f.dispute_type', named('dispute', c.dispute_type)],
        ['desk.f.source', named('source', c.source)],
        ['desk.f.summary', c.summary],
        ['desk.f.parties', parties],
        ['desk.f.place', placeText(c.place)],
        ['desk.f.opened', moment(c.opened_ms)],
        ['desk.f.mediator', c.mediator_name ?? c.mediator_id],
        ['desk.f.venue', c.venue_id ? this.venueName(c.venue_id) : null],
        ['desk.f.due', c.due_ms ? moment(c.due_ms) : null],
        ['desk.f.mediation_type', named('mediation_type', c.mediation_type)],
        ['desk.f.outcome', c.outcome],
        ['desk.f.agreement', c.success === true ? t('desk.yes') : c.success === false ? t('desk.no') : null],
        ['desk.f.closed', c.closed_ms ? moment(c.closed_ms) : null],
        ['desk.f.follow_up', c.followed_up_ms ? `${moment(c.followed_up_ms)} ${c.follow_up_note ?? ''}` : c.follow_up_due_ms ? t('desk.follow_up_due', { at: moment(c.follow_up_due_ms) }) : null],
      ]),
    );
    if (c.turned_criminal?.length) d.append(el('p', 'warning', t('desk.turned_criminal', { ids: c.turned_criminal.map((i) => `#${i}`).join('、') })));
    if (c.sessions?.length) {
      const ol = el('ol', 'sessions');
      for (const s of c.sessions) {
        ol.append(el('li', '', t('desk.session_line', { n: s.session_no, at: moment(s.starts_ms), venue: s.venue_id ? this.venueName(s.venue_id) : dash(typeof s.place === 'object' && s.place ? Object.values(s.place).join(' ') : s.place), note: s.note ?? '' })));
      }
      d.append(el('h3', '', t('desk.sessions')), ol);
    }
    // The office's mediators (and an administrator) take the steps; an operator watches.
    if (!['partner', 'admin'].includes(this.o.me()?.role)) return;
    const steps = el('div', 'steps');
    if (c.status === 'pending') steps.append(this.acceptForm(c), this.declineForm(c));
    if (c.status === 'accepted') steps.append(this.sessionForm(c));
    if (c.status === 'pending' || c.status === 'accepted') steps.append(this.outcomeForm(c));
    if (c.status === 'mediated') steps.append(this.followUpForm(c));
    d.append(steps);
  }

  /** A step's form: its title, fields and button; `send(form)` answers the new case. */
  stepForm(cls, titleKey, fields, buttonKey, buttonId, send) {
    const form = el('form', `step ${cls}`);
    form.append(el('h3', '', t(titleKey)), ...fields);
    const go = el('button', 'primary', t(buttonKey));
    go.type = 'submit';
    go.id = buttonId;
    form.append(go);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const body = send(form);
      if (!body) return;
      busy(go, () => this.o.api.post(body.path, body.json), (answer) => {
        this.o.toast(t(`desk.done.${cls}`));
        return this.applied(answer);
      }, this.o.toast, () => {
        this.dirty = false;
        this.listed = '';
        this.load();
      });
    });
    return form;
  }

  venueSelect(name, withNone) {
    const options = this.venues.map((v) => [v.venue_id, `${v.name}（${t(`desk.venue_kind.${v.kind}`)}）`]);
    return select(name, withNone ? [['', t('desk.none')], ...options] : options);
  }

  acceptForm(c) {
    const mediator = select('mediator_id', this.mediators.map((p) => [p.person_id, `${p.name}（${p.person_id}）`]), this.o.me()?.person_id);
    const venue = this.venueSelect('venue_id', false);
    const note = textarea('note', 500);
    return this.stepForm('accept', 'desk.step.accept', [field('desk.f.mediator', mediator), field('desk.f.venue', venue), field('desk.f.note', note)], 'desk.step.accept_button', 'accept-button', () => {
      if (!mediator.value || !venue.value) {
        this.o.toast(t('desk.need_mediator_venue'));
        return null;
      }
      const json = { mediator_id: mediator.value, venue_id: venue.value };
      if (note.value.trim()) json.note = note.value.trim();
      return { path: `/api/v1/mediation/${c.case_id}/accept`, json };
    });
  }

  declineForm(c) {
    const reason = textarea('reason', 500);
    return this.stepForm('decline', 'desk.step.decline', [field('desk.f.reason', reason)], 'desk.step.decline_button', 'decline-button', () => {
      if (!reason.value.trim()) {
        this.o.toast(t('desk.need_reason'));
        return null;
      }
      return { path: `/api/v1/mediation/${c.case_id}/decline`, json: { reason: reason.value.trim() } };
    });
  }

  sessionForm(c) {
    // Tomorrow at nine, China time, to start from.
    const day = 24 * 3600 * 1000;
    const nine = Math.floor((Date.now() + 8 * 3600 * 1000) / day) * day + day + 9 * 3600 * 1000 - 8 * 3600 * 1000;
    const starts = input('starts', 'datetime-local', localValue(nine));
    const venue = this.venueSelect('venue_id', true);
    if (c.venue_id) venue.value = c.venue_id;
    const note = textarea('note', 500);
    return this.stepForm('session', 'desk.step.session', [field('desk.f.starts', starts), field('desk.f.venue', venue), field('desk.f.note', note)], 'desk.step.session_button', 'session-button', () => {
      const at = chinaTime(starts.value);
      if (!at) {
        this.o.toast(t('desk.need_time'));
        return null;
      }
      const json = { starts: at };
      if (venue.value) json.venue_id = venue.value;
      if (note.value.trim()) json.note = note.value.trim();
      return { path: `/api/v1/mediation/${c.case_id}/sessions`, json };
    });
  }

  outcomeForm(c) {
    const type = select('mediation_type', MEDIATION_TYPES.map((m) => [m, t(`desk.mediation_type.${m}`)]), 'people');
    const outcome = textarea('outcome', 2000);
    const success = input('success', 'checkbox');
    success.checked = true;
    const agreed = el('label', 'check');
    agreed.append(success, el('span', '', t('desk.f.agreement_reached')));
    return this.stepForm('outcome', 'desk.step.outcome', [field('desk.f.mediation_type', type), field('desk.f.outcome', outcome), agreed], 'desk.step.outcome_button', 'outcome-button', () => {
      if (!outcome.value.trim()) {
        this.o.toast(t('desk.need_outcome'));
        return null;
      }
      return { path: `/api/v1/mediation/${c.case_id}`, json: { mediation_type: type.value, outcome: outcome.value.trim(), success: success.checked } };
    });
  }

  followUpForm(c) {
    const note = textarea('note', 1000);
    return this.stepForm('follow_up', 'desk.step.follow_up', [field('desk.f.follow_up_note', note)], 'desk.step.follow_up_button', 'follow-up-button', () => {
      if (!note.value.trim()) {
        this.o.toast(t('desk.need_note'));
        return null;
      }
      return { path: `/api/v1/mediation/${c.case_id}/follow-up`, json: { note: note.value.trim() } };
    });
  }

  /** The walk-in's registration: the dispute, the parties, and where (the office's centre by default). */
  renderWalkIn() {
    const centre = this.venues.find((v) => v.kind === 'centre') ?? this.venues[0];
    const type = select('dispute_type', DISPUTE_TYPES.map((d) => [d, t(`desk.dispute.${d}`)]), 'neighbour');
    const summary = textarea('summary', 2000);
    const parties = [0, 1].map(() => [input('party_name'), input('party_phone', 'tel')]);
    const lon = input('lon', 'number', centre?.lon ?? '');
    const lat = input('lat', 'number', centre?.lat ?? '');
    lon.step = lat.step = 'any';
    const form = el('form', 'step walk-in-form');
    form.append(el('h3', '', t('desk.walk_in')), field('desk.f.dispute_type', type), field('desk.f.summary', summary));
    parties.forEach(([name, phone], i) => {
      const row = el('div', 'row');
      row.append(field('desk.f.party_name', name), field('desk.f.party_phone', phone));
      row.dataset.party = String(i + 1);
      form.append(row);
    });
    const where = el('div', 'row');
    where.append(field('desk.f.lon', lon), field('desk.f.lat', lat));
    const go = el('button', 'primary', t('desk.walk_in_button'));
    go.type = 'submit';
    go.id = 'walk-in-submit';
    form.append(where, go);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const named = parties.filter(([n]) => n.value.trim()).map(([n, p]) => (p.value.trim() ? { name: n.value.trim(), phone: p.value.trim() } : { name: n.value.trim() }));
      if (!summary.value.trim() || !named.length || !Number.isFinite(lon.valueAsNumber) || !Number.isFinite(lat.valueAsNumber)) {
        this.o.toast(t('desk.need_walk_in'));
        return;
      }
      const json = { dispute_type: type.value, summary: summary.value.trim(), parties: named, lon: lon.valueAsNumber, lat: lat.valueAsNumber };
      busy(go, () => this.o.api.post('/api/v1/mediation', json), (answer) => {
        this.walkIn.hidden = true;
        this.o.toast(t('desk.done.walk_in', { id: itemIn(answer, 'case')?.case_id ?? '' }));
        return this.applied(answer);
      }, this.o.toast);
    });
    this.walkIn.replaceChildren(form);
  }
}
