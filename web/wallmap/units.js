// Live units on the map: one GeoJSON source drawn by one GPU circle layer, however many
// units there are. Reports only change a table in memory; once per animation frame, and
// only when something changed or a unit is gliding to its new fix, the table becomes one
// FeatureCollection handed to the source (`setData`), so thousands of units cost one
// upload per frame, never one DOM node each.

/** How long a unit glides from its old fix to its new one. */
const GLIDE_MS = 500;
/** A unit not heard from for this long is shown as not heard from (`alerts.stale_unit_min`). */
const STALE_MS = 10 * 60 * 1000;
/** Faster than this (m/s) counts as moving. */
const MOVING_MPS = 0.5;
/** Fix flags that mean the server did not move the unit for this fix. */
const UNTRUSTED = new Set(['jump', 'poor_accuracy', 'out_of_order']);

export class Units {
  constructor(map, sourceId) {
    this.map = map;
    this.sourceId = sourceId;
    /** device_id → unit */
    this.units = new Map();
    /** device_id → { name, kind, unit_id } from `GET /api/v1/devices` */
    this.devices = new Map();
    /** device ids assigned to an open incident */
    this.busy = new Set();
    this.dirty = false;
    this.frame = null;
    /** While replaying: `{ reports, atMs }` drawn instead of the live table, which stays as it was. */
    this.replay = null;
    this.onChange = () => {};
    // Ages move units to `stale` without any report arriving.
    setInterval(() => this.touch(), 15_000);
  }

  setDevices(list) {
    for (const d of list) this.devices.set(d.device_id, { name: d.name, kind: d.kind, unit_id: d.unit_id });
    this.touch();
  }

  knows(deviceId) {
    return this.devices.has(deviceId);
  }

  /** A snapshot: the last report of every device the operator may see. */
  replaceAll(reports) {
    const seen = new Set();
    for (const r of reports) {
      if (!r) continue;
      seen.add(r.device_id);
      this.apply(r, false);
    }
    for (const id of [...this.units.keys()]) if (!seen.has(id)) this.units.delete(id);
    this.touch();
  }

  /** One committed report from the feed. */
  update(report, glide = true) {
    this.apply(report, glide);
    this.touch();
  }

  apply(r, glide) {
    const flags = r.flags ?? [];
    const trusted = !flags.some((f) => UNTRUSTED.has(f));
    const fixMs = Date.parse(r.fix_time) || Date.now();
    const u = this.units.get(r.device_id);
    if (!u) {
      if (!trusted) return;
      this.units.set(r.device_id, {
        id: r.device_id,
        lon: r.lon,
        lat: r.lat,
        from: null,
        t0: 0,
        fixMs,
        speed: r.speed_mps ?? 0,
        doubtful: false,
      });
      return;
    }
    if (!trusted) {
      // The server keeps the unit where it was; the wall shows that its last fix is doubtful.
      u.doubtful = true;
      return;
    }
    if (fixMs < u.fixMs) return;
    const now = performance.now();
    u.from = glide ? this.position(u, now) : null;
    u.t0 = now;
    u.lon = r.lon;
    u.lat = r.lat;
    u.fixMs = fixMs;
    u.speed = r.speed_mps ?? 0;
    u.doubtful = false;
  }

  setBusy(deviceIds) {
    this.busy = new Set(deviceIds);
    this.touch();
  }

  status(u, nowMs) {
    if (nowMs - u.fixMs > STALE_MS) return 'stale';
    if (this.busy.has(u.id)) return 'busy';
    if (u.doubtful) return 'doubtful';
    return u.speed > MOVING_MPS ? 'moving' : 'idle';
  }

  /** Where the unit is drawn now: on its way from the previous fix, eased. */
  position(u, now) {
    if (!u.from) return [u.lon, u.lat];
    const k = Math.min(1, (now - u.t0) / GLIDE_MS);
    if (k >= 1) {
      u.from = null;
      return [u.lon, u.lat];
    }
    const e = k * (2 - k);
    return [u.from[0] + (u.lon - u.from[0]) * e, u.from[1] + (u.lat - u.from[1]) * e];
  }

  /** Shows the units as they were at `atMs` (reports from the history API); live reports are held by the page meanwhile. */
  showReplay(reports, atMs) {
    this.replay = { reports, atMs };
    this.touch();
  }

  /** Back to the live table. */
  resumeLive() {
    this.replay = null;
    this.touch();
  }

  /** A replayed unit's status at the replayed moment (who was busy then is not known). */
  replayStatus(r, atMs) {
    const fixMs = Date.parse(r.fix_time) || atMs;
    if (atMs - fixMs > STALE_MS) return 'stale';
    return (r.speed_mps ?? 0) > MOVING_MPS ? 'moving' : 'idle';
  }

  feature(deviceId, coordinates, status) {
    const d = this.devices.get(deviceId);
    return {
      type: 'Feature',
      geometry: { type: 'Point', coordinates },
      properties: { device_id: deviceId, name: d?.name ?? deviceId, kind: d?.kind ?? 'other', unit_id: d?.unit_id ?? '', status },
    };
  }

  counts() {
    if (this.replay) {
      const { reports, atMs } = this.replay;
      return { online: reports.filter((r) => this.replayStatus(r, atMs) !== 'stale').length, total: reports.length };
    }
    const now = Date.now();
    let online = 0;
    for (const u of this.units.values()) if (this.status(u, now) !== 'stale') online += 1;
    return { online, total: this.units.size };
  }

  touch() {
    this.dirty = true;
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = null;
    if (this.replay) {
      const { reports, atMs } = this.replay;
      const features = reports.map((r) => this.feature(r.device_id, [r.lon, r.lat], this.replayStatus(r, atMs)));
      this.map.getSource(this.sourceId)?.setData({ type: 'FeatureCollection', features });
      this.dirty = false;
      this.onChange();
      return;
    }
    const now = performance.now();
    const nowMs = Date.now();
    let gliding = false;
    const features = [];
    for (const u of this.units.values()) {
      const coordinates = this.position(u, now);
      if (u.from) gliding = true;
      features.push(this.feature(u.id, coordinates, this.status(u, nowMs)));
    }
    this.map.getSource(this.sourceId)?.setData({ type: 'FeatureCollection', features });
    this.dirty = false;
    this.onChange();
    if (gliding) this.frame = requestAnimationFrame(() => this.draw());
  }
}
