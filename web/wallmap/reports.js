// The grid-report review queue: the reports grid members filed that no operator has
// reviewed yet (`GET /api/v1/reports?status=new`), each with its category, text, place,
// time, reporter and photos, and the review's decisions (`POST /api/v1/reports/{id}/review`):
// accept (opens an incident), merge into an open incident, reject with a reason. A
// dispute went to the mediation centre's queue when it was filed; its item says so.
//
// New reports come from the live feed (each report is a `grid_report` alert whose number
// is the report's id). Another screen's review is not on the feed, so while the queue is
// shown it asks the server again every 15 s; a review that lost that race is answered
// 409 and the report leaves the queue all the same.

import { el } from './dom.js';
import { t, clock, distance, placeName } from './i18n.js';

/** How often the shown queue asks the server again. */
const REFRESH_MS = 15_000;
/** The server lists at most 500; the queue shows them all, oldest at the bottom. */
const LIMIT_NOTE = 500;
/** How many reviewed reports stay under the queue, newest first. */
const DONE_SHOWN = 8;
/** The new incident's priority by the report's category (the alert's own priority). */
const PRIORITY = { fire: 1, other: 4 };

export class ReportQueue {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLElement} o.body the queue's tab body
   * @param {() => object[]} o.openIncidents the open incidents, to merge into
   * @param {(report: object) => void} o.onLocate fly to the report's place
   * @param {(incidentId: number) => void} o.onOpenIncident open an incident's panel
   * @param {(pending: number) => void} o.onCount the number awaiting review changed
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    /** report_id → report row, awaiting review */
    this.pending = new Map();
    /** Reviewed on this screen (or elsewhere, learnt from a 409): `{ report, status, incident_id, reason }`, newest first. */
    this.done = [];
    /** Report ids known to be reviewed: a late feed message or answer must not bring them back. */
    this.reviewed = new Set();
    /** report_id → what the operator has entered in its item (priority, merge target, reason). */
    this.drafts = new Map();
    /** report_id → its rendered item, kept while it is in the queue so typing survives new arrivals. */
    this.items = new Map();
    /** report_ids whose review is on its way. */
    this.busy = new Set();
    /** report_id → the last failure, shown in its item. */
    this.errors = new Map();
    /** photo URL → its data: URL once fetched (the page's policy allows `data:` images, not `blob:`). */
    this.photos = new Map();
    this.loaded = false;
    /** The last failure to load the queue, shown above it. */
    this.error = null;
    this.visible = false;
    this.timer = null;
    this.asked = 0;
    /** report_id → when the feed brought it (kept across a load that was asked before). */
    this.fromFeed = new Map();
    o.body.addEventListener('click', (ev) => this.click(ev));
    o.body.addEventListener('input', (ev) => this.input(ev));
    o.body.addEventListener('change', (ev) => this.input(ev));
    // Enter in a reason rejects, as the button beside it does.
    o.body.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter' || ev.target.name !== 'reason') return;
      ev.preventDefault();
      ev.target.closest('li.report')?.querySelector('button[data-act=reject]')?.click();
    });
  }

  /** Asks the server for the reports awaiting review; the newest answer wins. */
  async load() {
    const ask = ++this.asked;
    const askedAt = performance.now();
    try {
      const { reports } = await this.o.api.get('/api/v1/reports?status=new');
      if (ask !== this.asked) return;
      const next = new Map();
      for (const r of reports ?? []) if (!this.reviewed.has(r.report_id)) next.set(r.report_id, r);
      // A report the feed brought after the question was asked may not be in the answer.
      for (const [id, at] of this.fromFeed) {
        if (at > askedAt && this.pending.has(id) && !next.has(id)) next.set(id, this.pending.get(id));
      }
      this.pending = next;
      this.loaded = true;
      this.error = null;
    } catch (e) {
      if (ask !== this.asked) return;
      this.error = t('reports_load_failed', { reason: e.message });
    }
    this.render();
  }

  /** A `grid_report` alert from the live feed: a new report to review. */
  addFromAlert(msg) {
    const a = msg.data;
    const r = a?.report;
    if (!r || typeof r.report_id !== 'number' || this.reviewed.has(r.report_id) || this.pending.has(r.report_id)) return;
    this.pending.set(r.report_id, {
      report_id: r.report_id,
      reporter: r.reporter,
      category: r.category,
      text: r.text,
      lon: a.lon,
      lat: a.lat,
      time_ms: Date.parse(r.reported),
      recv_ms: Date.parse(a.time),
      enrichment: a.place ?? {},
      photos: r.photos?.length ?? 0,
      photo_urls: r.photos ?? [],
      status: 'new',
      mediation_case_id: r.mediation_case_id ?? null,
      fresh: true,
    });
    this.fromFeed.set(r.report_id, performance.now());
    this.render();
  }

  /** The queue is on screen: ask now and every 15 s while it stays. */
  show() {
    this.visible = true;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    this.load();
  }

  hide() {
    this.visible = false;
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Reports awaiting review, oldest first: the one waiting longest is reviewed first. */
  ordered() {
    return [...this.pending.values()].sort((a, b) => a.recv_ms - b.recv_ms || a.report_id - b.report_id);
  }

  /** Everything drawn again (after a language switch). */
  rebuild() {
    this.items.clear();
    this.o.body.replaceChildren();
    this.render();
  }

  render() {
    this.o.onCount(this.pending.size);
    const body = this.o.body;
    let list = body.querySelector('ol.reports');
    if (!list) {
      body.replaceChildren();
      const head = el('div', 'reports-head');
      head.append(el('span', 'count'), el('span', 'hint'));
      list = el('ol', 'reports');
      const doneHead = el('h4', 'done-head', t('reports_done'));
      body.append(head, el('p', 'error'), list, doneHead, el('ol', 'reports-done'));
    }
    const pending = this.ordered();
    body.querySelector('.reports-head .count').textContent = t('reports_pending_n', { n: pending.length });
    body.querySelector('.reports-head .hint').textContent = pending.length >= LIMIT_NOTE ? t('reports_limit', { n: LIMIT_NOTE }) : t('reports_oldest_first');
    const error = body.querySelector('p.error');
    error.hidden = !this.error;
    error.textContent = this.error ?? '';

    // Items are kept while their report waits, and only moved when the order changes, so
    // that a reason being typed keeps its focus when another report arrives.
    for (const [id, li] of this.items) {
      if (!this.pending.has(id)) {
        li.remove();
        this.items.delete(id);
      }
    }
    list.querySelector('li.empty')?.remove();
    pending.forEach((r, i) => {
      let li = this.items.get(r.report_id);
      if (!li) {
        li = this.item(r);
        this.items.set(r.report_id, li);
      } else {
        this.refreshItem(li, r);
      }
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    });
    if (pending.length === 0) list.append(el('li', 'empty', this.loaded ? t('reports_empty') : t('reports_loading')));

    const done = body.querySelector('ol.reports-done');
    done.replaceChildren();
    body.querySelector('h4.done-head').hidden = this.done.length === 0;
    for (const d of this.done.slice(0, DONE_SHOWN)) done.append(this.doneItem(d));
  }

  item(r) {
    // One the feed just brought flashes, like a new alert: it may arrive below the fold.
    const li = el('li', `report cat-${r.category}${r.fresh ? ' fresh' : ''}`);
    li.dataset.id = String(r.report_id);
    const head = el('div', 'head');
    head.append(el('span', 'cat', t(`category.${r.category}`)), el('span', 'id', `#${r.report_id}`), el('time', 'time', clock(r.time_ms, false)));
    li.append(head, el('div', 'text', r.text));

    const where = el('button', 'where', `◎ ${placeLine(r.enrichment) || t('reports_place_unknown')}`);
    where.type = 'button';
    where.dataset.act = 'locate';
    where.title = t('reports_fly');
    const who = el('div', 'who', t('reports_by', { who: r.reporter, time: clock(r.recv_ms ?? r.time_ms, false) }));
    li.append(where, who);
    if (r.category === 'dispute') li.append(el('div', 'mediation', t('reports_mediation', { id: r.mediation_case_id ?? r.report_id })));

    const urls = (r.photo_urls ?? []).filter((u) => typeof u === 'string' && u.startsWith('/api/v1/images/'));
    if (urls.length) {
      const thumbs = el('div', 'thumbs');
      for (const url of urls) {
        const img = el('img');
        img.alt = t('reports_photo');
        img.dataset.src = url;
        thumbs.append(img);
        this.photo(url, img);
      }
      li.append(thumbs);
    }

    const draft = this.draft(r);
    const accept = el('div', 'row accept');
    const prio = el('select');
    prio.name = 'priority';
    for (let p = 1; p <= 5; p += 1) {
      const opt = el('option', '', t('priority', { p }));
      opt.value = String(p);
      prio.append(opt);
    }
    prio.value = String(draft.priority);
    accept.append(prio, actButton('accept', t('reports_accept'), 'primary'));

    const merge = el('div', 'row merge');
    const target = el('select');
    target.name = 'incident';
    merge.append(target, actButton('merge', t('reports_merge')));

    const reject = el('div', 'row reject');
    const reason = el('input');
    reason.name = 'reason';
    reason.type = 'text';
    reason.maxLength = 500;
    reason.placeholder = t('reports_reason');
    reason.value = draft.reason;
    reject.append(reason, actButton('reject', t('reports_reject'), 'danger'));

    li.append(accept, merge, reject, el('div', 'error'));
    this.refreshItem(li, r);
    return li;
  }

  /** What changes in a kept item: the incidents to merge into, the buttons' state, the error. */
  refreshItem(li, r) {
    const draft = this.draft(r);
    const select = li.querySelector('select[name=incident]');
    if (document.activeElement !== select) {
      const options = this.mergeTargets(r);
      select.replaceChildren();
      const none = el('option', '', options.length ? t('reports_merge_pick') : t('reports_merge_none'));
      none.value = '';
      select.append(none);
      for (const o of options) {
        const opt = el('option', '', o.label);
        opt.value = String(o.id);
        select.append(opt);
      }
      select.value = options.some((o) => String(o.id) === draft.incident) ? draft.incident : '';
    }
    const busy = this.busy.has(r.report_id);
    for (const b of li.querySelectorAll('button[data-act]:not(.where)')) b.disabled = busy;
    li.querySelector('button[data-act=merge]').disabled = busy || !select.value;
    li.classList.toggle('busy', busy);
    const err = li.querySelector('div.error');
    err.textContent = this.errors.get(r.report_id) ?? '';
    err.hidden = !err.textContent;
  }

  /** The open incidents, nearest to the report first. */
  mergeTargets(r) {
    return this.o
      .openIncidents()
      .filter((i) => Number.isFinite(i.lon) && Number.isFinite(i.lat))
      .map((i) => ({ i, d: metres(r.lon, r.lat, i.lon, i.lat) }))
      .sort((a, b) => a.d - b.d)
      .slice(0, 20)
      .map(({ i, d }) => ({ id: i.incident_id, label: `#${i.incident_id} ${short(i.title, 18)} · ${distance(d)}` }));
  }

  draft(r) {
    let d = this.drafts.get(r.report_id);
    if (!d) {
      d = { priority: PRIORITY[r.category] ?? 3, incident: '', reason: '' };
      this.drafts.set(r.report_id, d);
    }
    return d;
  }

  doneItem(d) {
    const li = el('li', `report done s-${d.status}`);
    li.dataset.id = String(d.report.report_id);
    li.dataset.status = d.status;
    const head = el('div', 'head');
    head.append(el('span', 'cat', t(`category.${d.report.category}`)), el('span', 'id', `#${d.report.report_id}`), el('span', 'text', short(d.report.text, 30)));
    li.append(head);
    if (d.status === 'accepted' || d.status === 'merged') {
      const b = el('button', 'outcome incident', t(d.status === 'accepted' ? 'reports_accepted' : 'reports_merged', { id: d.incident_id }));
      b.type = 'button';
      b.dataset.incident = String(d.incident_id);
      li.append(b);
    } else if (d.status === 'rejected') {
      li.append(el('div', 'outcome', t('reports_rejected', { reason: d.reason })));
    } else {
      li.append(el('div', 'outcome', t('reports_elsewhere')));
    }
    return li;
  }

  /** Fetches a photo with the operator's token and shows it as a `data:` URL. */
  async photo(url, img) {
    const known = this.photos.get(url);
    if (known) {
      img.src = known;
      return;
    }
    try {
      const dataUrl = await this.o.api.dataUrl(url);
      this.photos.set(url, dataUrl);
      img.src = dataUrl;
    } catch {
      img.replaceWith(el('span', 'thumb-missing', t('reports_photo_missing')));
    }
  }

  input(ev) {
    const li = ev.target.closest('li.report');
    const r = li && this.pending.get(Number(li.dataset.id));
    if (!r) return;
    const d = this.draft(r);
    const f = ev.target;
    if (f.name === 'priority') d.priority = Number(f.value);
    if (f.name === 'incident') {
      d.incident = f.value;
      li.querySelector('button[data-act=merge]').disabled = this.busy.has(r.report_id) || !f.value;
    }
    if (f.name === 'reason') {
      d.reason = f.value;
      // The missing reason's message goes once there is one.
      if (f.value.trim() && this.errors.get(r.report_id) === t('reports_reason_missing')) {
        this.errors.delete(r.report_id);
        this.refreshItem(li, r);
      }
    }
  }

  async click(ev) {
    const open = ev.target.closest('button[data-incident]');
    if (open) {
      this.o.onOpenIncident(Number(open.dataset.incident));
      return;
    }
    const b = ev.target.closest('button[data-act]');
    const li = ev.target.closest('li.report');
    const r = li && this.pending.get(Number(li.dataset.id));
    if (!b || !r || b.disabled) return;
    const act = b.dataset.act;
    if (act === 'locate') {
      this.o.onLocate(r);
      return;
    }
    const d = this.draft(r);
    let body;
    if (act === 'accept') body = { decision: 'accept', priority: d.priority };
    if (act === 'merge') body = { decision: 'merge', incident_id: Number(d.incident) };
    if (act === 'reject') {
      if (!d.reason.trim()) {
        this.errors.set(r.report_id, t('reports_reason_missing'));
        this.refreshItem(li, r);
        li.querySelector('input[name=reason]').focus();
        return;
      }
      body = { decision: 'reject', reason: d.reason.trim() };
    }
    if (body) await this.review(r, body);
  }

  /** Posts the decision; the report leaves the queue at once with what became of it. */
  async review(r, body) {
    const id = r.report_id;
    this.busy.add(id);
    this.errors.delete(id);
    this.render();
    try {
      const res = await this.o.api.post(`/api/v1/reports/${id}/review`, body);
      this.finish(r, { status: res.status, incident_id: res.incident_id, reason: body.reason ?? '' });
      const key = { accepted: 'reports_accepted', merged: 'reports_merged', rejected: 'reports_rejected' }[res.status];
      if (key) this.o.toast(`#${id} ${t(key, { id: res.incident_id, reason: body.reason ?? '' })}`);
    } catch (e) {
      this.busy.delete(id);
      if (e.status === 409) {
        // Reviewed on another screen meanwhile: it is no longer this queue's.
        this.finish(r, { status: 'elsewhere' });
        this.o.toast(t('reports_elsewhere_toast', { id }));
      } else {
        this.errors.set(id, t('action_failed', { reason: e.message }));
      }
      this.render();
    }
  }

  finish(r, outcome) {
    const id = r.report_id;
    this.busy.delete(id);
    this.errors.delete(id);
    this.drafts.delete(id);
    this.pending.delete(id);
    this.fromFeed.delete(id);
    this.reviewed.add(id);
    this.done.unshift({ report: r, ...outcome });
    this.done.length = Math.min(this.done.length, DONE_SHOWN);
    this.render();
  }
}

function actButton(act, text, cls = '') {
  const b = el('button', cls, text);
  b.type = 'button';
  b.dataset.act = act;
  return b;
}

/** The township and grid, and the nearest post, as the server enriched the place. */
function placeLine(p) {
  const parts = [];
  const township = p?.township?.name;
  const grid = p?.grid?.name;
  if (township) parts.push(grid ? `${placeName(township)} ${grid}` : placeName(township));
  const post = p?.nearest_posts?.[0];
  if (post?.name) parts.push(`${t('nearest_post')} ${post.name}`);
  return parts.join(' · ');
}

function short(text, n) {
  const s = String(text ?? '');
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Metres between two WGS84 points (haversine): enough to order incidents by nearness. */
function metres(lon1, lat1, lon2, lat2) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}
