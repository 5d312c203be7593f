// The grid member's side: a report (category, description, up to three photos shrunk on
// the phone, the place from GPS or a tap on the map) kept in the outbox and sent once,
// and "my reports" with each one's state: awaiting review, accepted → incident #N and its
// state, merged, rejected with the reason, sent to mediation and its outcome
// (`GET /api/v1/reports/mine`). A report carries the time it was made, so a resend is
// recognised by the server's fingerprint and stored once.

import { el } from '/wallmap/dom.js';
import { ApiFailure } from '/wallmap/api.js';
import { t, clock } from './i18n.js';
import { photoPicker, base64Of } from './photos.js';
import { point } from './fieldmap.js';

export const CATEGORIES = ['dispute', 'hazard', 'suspicious', 'fire', 'traffic', 'other'];
/** The reports this phone has sent, remembered for a server without `reports/mine`. */
const SENT_KEY = 'liandong.field.sent';
/** How often the list is asked for again while the app is open. */
const REFRESH_MS = 15_000;

export class Reports {
  /**
   * @param {object} o
   * @param {import('/wallmap/api.js').Api} o.api
   * @param {import('./outbox.js').Outbox} o.outbox
   * @param {import('./fieldmap.js').FieldMap} o.map
   * @param {() => ([number, number]|null)} o.here the phone's last known place
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    this.place = null;
    this.reports = null;
    this.unavailable = false;
    this.queued = [];
    this.panel = document.getElementById('panel-mine');
    const select = document.getElementById('report-category');
    select.replaceChildren(...CATEGORIES.map((c) => Object.assign(el('option', '', t(`category.${c}`)), { value: c })));
    this.picker = photoPicker(document.getElementById('report-photos'), document.getElementById('report-thumbs'), (e) => this.o.toast(e.message));
    document.getElementById('report-gps').addEventListener('click', () => this.useGps());
    document.getElementById('report-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.send();
    });
    this.o.map.onTap((p) => this.setPlace(p));
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    this.drawPlace();
  }

  setPlace(p) {
    this.place = p;
    this.o.map.set('pick', [point(p[0], p[1])]);
    this.drawPlace();
  }

  drawPlace() {
    document.getElementById('report-place').textContent = this.place
      ? t('report_place_set', { lon: this.place[0].toFixed(5), lat: this.place[1].toFixed(5) })
      : t('report_place_none');
  }

  useGps() {
    const known = this.o.here();
    if (known) this.setPlace(known);
    navigator.geolocation?.getCurrentPosition(
      (pos) => this.setPlace([pos.coords.longitude, pos.coords.latitude]),
      () => {},
      { enableHighAccuracy: true, maximumAge: 30_000, timeout: 20_000 },
    );
  }

  async send() {
    const text = document.getElementById('report-text').value.trim();
    if (!text) return this.o.toast(t('report_need_text'));
    if (!this.place) return this.o.toast(t('report_place_none'));
    const body = {
      category: document.getElementById('report-category').value,
      text,
      lon: Number(this.place[0].toFixed(6)),
      lat: Number(this.place[1].toFixed(6)),
      // The moment it was made: with the rest of the report, what makes a resend the same report.
      time: new Date().toISOString(),
    };
    const photos = this.picker.photos().map(base64Of);
    if (photos.length) body.photos_base64 = photos;
    await this.o.outbox.put({ lane: 'http', tag: 'report', method: 'POST', path: '/api/v1/reports', body });
    document.getElementById('report-text').value = '';
    this.picker.clear();
    this.place = null;
    this.o.map.set('pick', []);
    this.drawPlace();
    if (!navigator.onLine) this.o.toast(t('report_queued'));
    await this.render();
  }

  /** The answer to a queued report. */
  settled(entry, outcome) {
    if (outcome.ok) {
      const sent = JSON.parse(localStorage.getItem(SENT_KEY) ?? '[]');
      sent.unshift({ report_id: outcome.answer?.report_id, time: entry.body.time, category: entry.body.category, text: entry.body.text, state: 'sent' });
      localStorage.setItem(SENT_KEY, JSON.stringify(sent.slice(0, 100)));
      this.o.toast(t('report_sent'));
      this.load();
    } else {
      this.o.toast(t('report_refused', { reason: outcome.error.message }));
    }
    this.render();
  }

  async load() {
    try {
      const { reports } = await this.o.api.get('/api/v1/reports/mine');
      this.reports = reports;
      this.unavailable = false;
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 404) this.unavailable = true;
    }
    await this.render();
  }

  async render() {
    const queued = (await this.o.outbox.entries('http')).filter((e) => e.tag === 'report');
    const out = [];
    if (this.unavailable) out.push(el('p', 'note', t('mine_unavailable')));
    const rows = [
      ...queued.map((e) => ({ ...e.body, state: 'queued' })),
      ...(this.unavailable || !this.reports ? JSON.parse(localStorage.getItem(SENT_KEY) ?? '[]') : this.reports),
    ];
    if (!rows.length) out.push(el('p', 'line', t('mine_none')));
    const list = el('ol', 'reports');
    for (const r of rows) list.append(this.row(r));
    out.push(list);
    this.panel.replaceChildren(...out);
  }

  row(r) {
    const li = el('li', 'report');
    li.dataset.state = r.state;
    if (r.report_id !== undefined) li.dataset.id = String(r.report_id);
    const when = r.time ? clock(Date.parse(r.time)) : '';
    li.append(el('p', 'line', [when, t(`category.${r.category}`)].filter(Boolean).join(' · ')));
    li.append(el('p', 'line', r.text ?? ''));
    li.append(el('p', `state ${r.state}`, t(`mine_state.${r.state}`)));
    if (r.incident_id) {
      const s = el('p', 'incident', t('mine_incident', { id: r.incident_id, state: r.incident_state ? t(`state.${r.incident_state}`) : '' }));
      s.dataset.incident = String(r.incident_id);
      li.append(s);
    }
    if (r.reason) li.append(el('p', 'line', t('mine_reason', { reason: r.reason })));
    if (r.mediation) {
      li.append(el('p', 'line', t('mine_mediation', { id: r.mediation.case_id, state: r.mediation.state })));
      if (r.mediation.outcome) li.append(el('p', 'line', t('mine_outcome', { outcome: r.mediation.outcome })));
    }
    return li;
  }
}
