// Live units on the map: one GeoJSON source drawn by one GPU circle layer, however many
// units there are. Reports only change a table in memory; once per animation frame, and
// only when something changed or a unit is gliding to its new fix, the table becomes one
// FeatureCollection handed to the source (`setData`), so thousands of units cost one
// upload per frame, never one DOM node each.
//
// Drawing is paced by what the screen can afford. A wall computer without a GPU (WebGL
// in software) can take 100–300 ms to draw the county once; gliding every unit every
// frame then keeps it drawing all the time, the page stops reading the feed and falls
// further behind each second. So the page measures how long a frame that draws the map
// takes (`RenderCost`), and while that is slow it stops gliding: units jump to their new
// fix, and the table is redrawn less often (every 250 ms to 1 s), so that drawing units
// takes about a quarter of the time and the feed is read as it arrives. When frames are
// fast again, units glide again.

/** How long a unit glides from its old fix to its new one. */
const GLIDE_MS = 500;
/** A unit not heard from for this long is shown as not heard from (`alerts.stale_unit_min`). */
const STALE_MS = 10 * 60 * 1000;
/** Faster than this (m/s) counts as moving. */
const MOVING_MPS = 0.5;
/** Fix flags that mean the server did not move the unit for this fix. */
const UNTRUSTED = new Set(['jump', 'poor_accuracy', 'out_of_order', 'ahead_of_clock', 'mock']);

/** A frame that draws the map slower than this (ms, smoothed) makes unit drawing paced. */
const SLOW_FRAME_MS = 50;
/** Faster than this (ms, smoothed), units glide again (the gap between the two is hysteresis). */
const FAST_FRAME_MS = 34;
/** While paced, drawing the units may take about this share of the time. */
const PACE_SHARE = 0.25;
/**
 * While paced, the shortest and the longest time between two unit redraws: however slow
 * the frames, a unit is drawn within a second of its report.
 */
const PACE_MIN_MS = 250;
const PACE_MAX_MS = 1000;
/** Weight of the newest frame in the smoothed frame time. */
const COST_ALPHA = 0.25;

/**
 * How long a frame that draws the map takes, smoothed: from the start of the frame in
 * which the map rendered to the start of the next one. That covers the map's own work on
 * the page and the GPU (or software WebGL) catching up, which is what delays the next
 * frame and every feed message waiting behind it.
 */
class RenderCost {
  constructor(map) {
    /** Smoothed frame time (ms) of frames in which the map rendered; one 60 Hz frame until measured. */
    this.frameMs = 1000 / 60;
    this.samples = 0;
    this.frameStart = null;
    this.onSample = () => {};
    map.on('render', () => {
      // `render` fires inside the animation frame that drew the map; the document
      // timeline's current time is that frame's start.
      const start = document.timeline.currentTime;
      if (start === null || start === this.frameStart) return;
      this.frameStart = start;
      requestAnimationFrame((next) => {
        this.sample(next - start);
        if (this.frameStart === start) this.frameStart = null;
      });
    });
  }

  sample(ms) {
    this.frameMs = this.samples === 0 ? ms : this.frameMs + COST_ALPHA * (ms - this.frameMs);
    this.samples += 1;
    this.onSample();
  }
}

export class Units {
  /**
   * @param {object} map the MapLibre map
   * @param {string} sourceId the GeoJSON source the units are drawn into
   * @param {object} [o]
   * @param {'auto'|'off'} [o.pace] `off` glides every unit every frame however slow the
   *   frames are (the page-load benchmark compares both; `?pace=off` on the page)
   */
  constructor(map, sourceId, o = {}) {
    this.map = map;
    this.sourceId = sourceId;
    this.cost = new RenderCost(map);
    /**
     * `paced` while frames are slow: no gliding, and at most one redraw every `intervalMs`.
     * `off` when pacing is turned off.
     */
    this.pace = { mode: o.pace === 'off' ? 'off' : 'smooth', intervalMs: 0, lastDraw: -Infinity, switches: 0 };
    this.cost.onSample = () => this.adjustPace();
    this.timer = null;
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
    u.from = glide && this.pace.mode !== 'paced' ? this.position(u, now) : null;
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

  /** Follows the measured frame time: paced while frames are slow, gliding once they are fast. */
  adjustPace() {
    const p = this.pace;
    if (p.mode === 'off') return;
    const ms = this.cost.frameMs;
    if (p.mode === 'smooth' && ms > SLOW_FRAME_MS) {
      p.mode = 'paced';
      p.switches += 1;
      // Units stop where they are heading: a glide would need a redraw every frame.
      for (const u of this.units.values()) u.from = null;
    } else if (p.mode === 'paced' && ms < FAST_FRAME_MS) {
      p.mode = 'smooth';
      p.switches += 1;
    }
    p.intervalMs = p.mode === 'paced' ? Math.min(PACE_MAX_MS, Math.max(PACE_MIN_MS, ms / PACE_SHARE)) : 0;
  }

  touch() {
    this.dirty = true;
    this.schedule();
  }

  /** Asks for a redraw in the next frame, or, while paced, once the interval since the last one is over. */
  schedule() {
    if (this.frame !== null || this.timer !== null) return;
    const wait = this.pace.mode === 'paced' ? this.pace.lastDraw + this.pace.intervalMs - performance.now() : 0;
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, wait);
    } else {
      this.frame = requestAnimationFrame(() => this.draw());
    }
  }

  draw() {
    this.frame = null;
    this.pace.lastDraw = performance.now();
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
    if (gliding) this.schedule();
  }
}
