// The alert queue: every alert the operator may see, from the alerts history on load and
// from the live feed after, most urgent first (priority 1 on top, then the ones nobody has
// acknowledged yet, newest first). New alerts flash in the queue and on the map for a
// while, until someone acknowledges them: on any screen, the feed's `alert_ack` says who.

import { el } from './dom.js';
import { t, clock } from './i18n.js';

/** How long a new alert flashes. */
const FRESH_MS = 15_000;
/** How many alerts the panel lists (the map shows all of the last day). */
const SHOWN = 40;
/** How long an alert stays on the map and in the queue. */
const KEEP_MS = 24 * 3600 * 1000;
/** How long a failed acknowledgement's message stays in the item. */
const ERROR_MS = 6000;

export class AlertQueue {
  /**
   * @param {HTMLElement} list the queue's `<ol>`
   * @param {object} o
   * @param {(alert: object) => void} o.onLocate
   * @param {(alert: object) => Promise<string>} o.onOpenIncident answers the note to show
   * @param {(alert: object) => Promise<object>} o.onAck posts the acknowledgement; answers
   *   the server's answer (`by`, `at`, `seq`, `note`, `first`) or throws
   * @param {() => void} o.onChange the alerts changed (map source, counters)
   * @param {(deviceId: string) => string} [o.deviceName] a device's name, for unit alerts
   */
  constructor(list, o) {
    this.list = list;
    this.o = o;
    /** seq → alert data (with `seq`, `rule`, `priority`, `time`, `lon`, `lat`, `place`, …) */
    this.alerts = new Map();
    /** seq → when it arrived on this screen (performance.now), for the flash */
    this.arrived = new Map();
    /** seq → a note shown under the alert (e.g. the incident opened from it) */
    this.notes = new Map();
    /** alert seq → its first acknowledgement `{by, at, note, seq}` */
    this.acks = new Map();
    /** alert seq → a failed acknowledgement's message, shown for a while */
    this.errors = new Map();
    /** alert seqs whose acknowledgement is on its way to the server */
    this.acking = new Set();
    /** The alert the operator picked (its track is drawn), or null. */
    this.selected = null;
    list.addEventListener('click', (ev) => this.click(ev));
  }

  /**
   * Alerts from the history API, with the history's map of alert seq → first
   * acknowledgement. On loading they are not flashed: they are not new to the centre.
   * `asNew`, after a gap in the feed the server could not replay (a `resync`, a `since`
   * too old): those this screen had not seen arrived in the gap and are new to it, so
   * they flash like live ones, and the ones it has keep what it has. Answers how many
   * were new to it.
   */
  load(messages, acknowledged = {}, { asNew = false } = {}) {
    let fresh = 0;
    const now = performance.now();
    for (const m of messages) {
      const a = m?.type === 'alert' ? m.data : m;
      if (!a || typeof a.seq !== 'number') continue;
      if (asNew) {
        if (this.alerts.has(a.seq)) continue;
        this.arrived.set(a.seq, now);
        fresh += 1;
      }
      this.alerts.set(a.seq, a);
    }
    for (const [seq, ack] of Object.entries(acknowledged ?? {})) this.noteAck(Number(seq), ack);
    this.render();
    if (fresh > 0) setTimeout(() => this.render(), FRESH_MS + 50);
    return fresh;
  }

  /** An `alert_ack` from the live feed: someone (maybe this screen) acknowledged an alert. */
  applyAck(msg) {
    const d = msg.data;
    if (!d || typeof d.alert_seq !== 'number') return;
    if (this.noteAck(d.alert_seq, { by: d.by, at: d.at, note: d.note, seq: msg.seq })) this.render();
  }

  /** Keeps the first acknowledgement of an alert (the lowest seq); answers whether it changed. */
  noteAck(alertSeq, ack) {
    if (!Number.isFinite(alertSeq) || !ack) return false;
    const known = this.acks.get(alertSeq);
    if (known && !(typeof ack.seq === 'number' && typeof known.seq === 'number' && ack.seq < known.seq)) return false;
    this.acks.set(alertSeq, { by: ack.by ?? '', at: ack.at, note: ack.note ?? '', seq: ack.seq });
    this.errors.delete(alertSeq);
    return true;
  }

  isAcked(seq) {
    return this.acks.has(seq);
  }

  /** An alert from the live feed. */
  add(msg) {
    const a = msg.data;
    if (!a) return;
    a.seq ??= msg.seq;
    this.alerts.set(a.seq, a);
    this.arrived.set(a.seq, performance.now());
    this.render();
    setTimeout(() => this.render(), FRESH_MS + 50);
  }

  /** New and not yet acknowledged: it flashes. */
  isFresh(seq, now = performance.now()) {
    const at = this.arrived.get(seq);
    return at !== undefined && now - at < FRESH_MS && !this.acks.has(seq);
  }

  anyFresh() {
    const now = performance.now();
    for (const seq of this.arrived.keys()) if (this.isFresh(seq, now)) return true;
    return false;
  }

  /** The alerts of the last day, most urgent first. */
  ordered() {
    const cutoff = Date.now() - KEEP_MS;
    const list = [];
    for (const [seq, a] of this.alerts) {
      const ms = Date.parse(a.time);
      if (ms < cutoff && !this.isFresh(seq)) {
        this.alerts.delete(seq);
        this.arrived.delete(seq);
        this.acks.delete(seq);
        this.errors.delete(seq);
        continue;
      }
      list.push(a);
    }
    const acked = (a) => (this.acks.has(a.seq) ? 1 : 0);
    return list.sort((x, y) => (x.priority ?? 9) - (y.priority ?? 9) || acked(x) - acked(y) || Date.parse(y.time) - Date.parse(x.time) || y.seq - x.seq);
  }

  counts() {
    let p1 = 0;
    for (const a of this.alerts.values()) if (a.priority === 1) p1 += 1;
    return { total: this.alerts.size, p1 };
  }

  /** The alerts as map features. */
  features() {
    const now = performance.now();
    return this.ordered()
      .filter((a) => Number.isFinite(a.lon) && Number.isFinite(a.lat))
      .map((a) => ({
        type: 'Feature',
        geometry: { type: 'Point', coordinates: [a.lon, a.lat] },
        properties: { seq: a.seq, rule: a.rule, priority: Math.max(1, Math.min(5, a.priority ?? 3)), fresh: this.isFresh(a.seq, now) },
      }));
  }

  /** Marks the alert the operator picked. */
  select(seq) {
    this.selected = seq;
    for (const li of this.list.querySelectorAll('li.alert')) li.classList.toggle('selected', Number(li.dataset.seq) === seq);
  }

  render() {
    const all = this.ordered();
    this.list.replaceChildren();
    if (all.length === 0) {
      this.list.append(el('li', 'empty', t('alert_queue_empty')));
    }
    for (const a of all.slice(0, SHOWN)) this.list.append(this.item(a));
    this.o.onChange();
  }

  item(a) {
    const ack = this.acks.get(a.seq);
    const li = el('li', `alert p${Math.min(a.priority ?? 3, 4)}${this.isFresh(a.seq) ? ' fresh' : ''}${ack ? ' acked' : ''}${a.seq === this.selected ? ' selected' : ''}`);
    li.dataset.seq = String(a.seq);
    li.dataset.rule = a.rule;

    const head = el('div', 'head');
    head.append(el('span', 'prio', t('priority', { p: a.priority ?? '?' })), el('span', 'rule', t(`rule.${a.rule}`)), el('time', 'time', clock(Date.parse(a.time))));
    li.append(head);

    const what = describe(a, this.o.deviceName ?? ((id) => id));
    if (what) li.append(el('div', 'what', what));
    const where = place(a);
    if (where) li.append(el('div', 'where', where));
    const track = a.track?.coordinates?.length >= 2 ? a.track : null;
    if (track) {
      const parts = [t('track_info', { value: a.read?.value ?? '', n: track.coordinates.length })];
      if (track.speed_kmh) parts.push(`${track.speed_kmh} km/h`);
      li.append(el('div', 'track', `➜ ${parts.join(' · ')}`));
    }
    const note = this.notes.get(a.seq);
    if (note) li.append(el('div', 'note', note));
    if (ack) {
      const ms = Date.parse(ack.at);
      const line = el('div', 'ack-by', t('acked_line', { who: ack.by, time: Number.isFinite(ms) ? clock(ms, false) : '' }).trim());
      if (ack.note) line.title = ack.note;
      li.append(line);
    }
    const error = this.errors.get(a.seq);
    if (error) li.append(el('div', 'ack-error', error));

    const actions = el('div', 'actions');
    const locate = el('button', 'locate', t('locate'));
    locate.dataset.action = 'locate';
    const open = el('button', 'open', t('open_incident'));
    open.dataset.action = 'open';
    actions.append(locate, open);
    if (!ack) {
      const acknowledge = el('button', 'ack', t('acknowledge'));
      acknowledge.dataset.action = 'ack';
      if (this.acking.has(a.seq)) acknowledge.disabled = true;
      actions.append(acknowledge);
    }
    li.append(actions);
    return li;
  }

  /** Posts the acknowledgement; the item shows it at once, or the error for a while. */
  async acknowledge(a, button) {
    if (this.acking.has(a.seq)) return;
    this.acking.add(a.seq);
    button.disabled = true;
    try {
      const res = await this.o.onAck(a);
      // Someone else may have been first: the item names who.
      const first = res?.first?.by ? res.first : res;
      this.acking.delete(a.seq);
      this.noteAck(a.seq, { by: first?.by, at: first?.at, note: first?.seq === res?.seq ? res?.note : '', seq: first?.seq });
    } catch (e) {
      this.acking.delete(a.seq);
      const text = t('ack_failed', { reason: e?.message ?? String(e) });
      this.errors.set(a.seq, text);
      setTimeout(() => {
        if (this.errors.get(a.seq) === text) {
          this.errors.delete(a.seq);
          this.render();
        }
      }, ERROR_MS);
    }
    this.render();
  }

  async click(ev) {
    const button = ev.target.closest('button[data-action]');
    const li = ev.target.closest('li.alert');
    if (!li) return;
    const a = this.alerts.get(Number(li.dataset.seq));
    if (!a) return;
    if (!button || button.dataset.action === 'locate') {
      this.o.onLocate(a);
      return;
    }
    if (button.dataset.action === 'ack') {
      await this.acknowledge(a, button);
      return;
    }
    button.disabled = true;
    this.notes.set(a.seq, await this.o.onOpenIncident(a));
    this.render();
  }
}


/** What the alert is about, in one line: the plate or person and why, the report's text, … */
function describe(a, deviceName) {
  const parts = [];
  if (a.read?.value) parts.push(`${a.rule === 'watchlist_person' ? t('person') : t('plate')} ${a.read.value}`);
  if (a.watch?.reason) parts.push(a.watch.reason);
  if (a.person?.name) parts.push(a.person.name);
  if (a.zone?.fence_name) parts.push(a.zone.fence_name);
  // A no-parking alert: the plate and the fence it stands in.
  if (a.parking?.plate) parts.push(`${t('plate')} ${a.parking.plate}`, a.parking.fence_name);
  if (a.report?.category) parts.push(t(`category.${a.report.category}`));
  if (a.report?.text) parts.push(a.report.text);
  if (a.storm?.suppressed) parts.push(t('held_back', { n: a.storm.suppressed }));
  // An SOS names its device and unit itself (`device_name`, `unit_id`).
  if (a.device_id && !a.read) parts.push(`${t('device')} ${a.device_name ?? deviceName(a.device_id)}`);
  if (a.unit_id) parts.push(`${t('alert_unit')} ${a.unit_id}`);
  if (a.silent_min) parts.push(t('silent_min', { n: a.silent_min }));
  return parts.join(' · ');
}

/** Where: the camera, the township and grid, the nearest post. */
function place(a) {
  const parts = [];
  if (a.camera?.name) parts.push(a.camera.name);
  const p = a.place ?? {};
  const township = p.township?.name;
  const grid = p.grid?.name;
  if (township) parts.push(grid ? `${township} ${grid}` : township);
  const post = p.nearest_posts?.[0];
  if (post?.name) parts.push(`${t('nearest_post')} ${post.name}${post.distance_m ? ` ${(post.distance_m / 1000).toFixed(1)} km` : ''}`);
  return parts.join(' · ');
}
