// Sharing the phone's position: Geolocation `watchPosition`, thinned to one fix every
// 5 s while moving and one a minute while still (a phone that walks is worth watching,
// one that waits is worth its battery), each kept in the outbox with its own time.

/** Seconds between fixes kept, moving and still. */
export const MOVING_S = 5;
export const STILL_S = 60;
/** Moving: faster than a slow walk, or this far from the last kept fix. */
const MOVING_MPS = 0.5;
const MOVED_M = 15;

/** Metres between two `[lon, lat]`, on a sphere (haversine; good to well under a metre here). */
export function metres(a, b) {
  const r = 6371008.8;
  const rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad;
  const dLon = (b[0] - a[0]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** A Geolocation position as our JSON item (crates/liandong-ingest/src/json.rs), WGS 84. */
export function fixItem(deviceId, pos, timeMs = pos.timestamp) {
  const c = pos.coords;
  const item = {
    device_id: deviceId,
    lon: Number(c.longitude.toFixed(7)),
    lat: Number(c.latitude.toFixed(7)),
    // The fix's own time, to the millisecond: with the device it is the fix's identity,
    // which makes a resend harmless.
    time: new Date(timeMs).toISOString(),
  };
  if (Number.isFinite(c.accuracy)) item.accuracy_m = Math.round(c.accuracy * 10) / 10;
  if (Number.isFinite(c.speed) && c.speed !== null) item.speed_mps = Math.round(c.speed * 100) / 100;
  if (Number.isFinite(c.heading) && c.heading !== null) item.course_deg = Math.round(c.heading) % 360;
  if (Number.isFinite(c.altitude) && c.altitude !== null) item.altitude_m = Math.round(c.altitude);
  return item;
}

export class Sharing {
  /**
   * @param {object} o
   * @param {(pos: GeolocationPosition) => void} o.onFix every position the phone gives
   * @param {(pos: GeolocationPosition) => void} o.onKeep a position to send
   * @param {(state: {on: boolean, moving: boolean, error?: string}) => void} o.onState
   */
  constructor(o) {
    this.o = o;
    this.watch = null;
    this.last = null;
    this.lastKept = null;
    this.moving = false;
  }

  get on() {
    return this.watch !== null;
  }

  start() {
    if (this.on || !('geolocation' in navigator)) return;
    this.watch = navigator.geolocation.watchPosition(
      (pos) => this.fix(pos),
      (err) => {
        if (err.code === err.PERMISSION_DENIED) {
          this.stop();
          this.o.onState({ on: false, moving: false, error: 'denied' });
        }
      },
      { enableHighAccuracy: true, maximumAge: 0, timeout: 60_000 },
    );
    this.o.onState({ on: true, moving: this.moving });
  }

  stop() {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
    this.o.onState({ on: false, moving: false });
  }

  fix(pos) {
    this.last = pos;
    this.o.onFix(pos);
    const here = [pos.coords.longitude, pos.coords.latitude];
    const kept = this.lastKept;
    const moved = kept ? metres([kept.coords.longitude, kept.coords.latitude], here) : Infinity;
    this.moving = (pos.coords.speed ?? 0) > MOVING_MPS || (kept !== null && moved > MOVED_M);
    const every = (this.moving ? MOVING_S : STILL_S) * 1000;
    if (!kept || pos.timestamp - kept.timestamp >= every || (this.moving && moved > MOVED_M * 4)) {
      this.lastKept = pos;
      this.o.onKeep(pos);
    }
    this.o.onState({ on: true, moving: this.moving });
  }
}
