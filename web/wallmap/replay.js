// The time slider: the last 24 hours, minute by minute. Moving it replays the picture at
// that moment — every unit where it was (`GET /api/v1/history/positions?at=T`), the
// alerts of the hour before and the incidents open then, in the state they were in
// (`GET /api/v1/history/incidents?at=T`) — while the
// live feed keeps running underneath: its messages are held, not lost (positions kept
// as the newest per unit, everything else in order) and applied when the operator goes
// back to live.

import { t, clock } from './i18n.js';

const MINUTE_MS = 60_000;
/** Alerts shown at a replayed moment: those of the hour before it. */
const ALERT_WINDOW_MS = 3600 * 1000;
/** How long the slider rests before the picture is asked for while it is dragged. */
const SETTLE_MS = 250;

export class Replay {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLInputElement} o.slider minutes before now (−1440 … 0)
   * @param {HTMLElement} o.state the "LIVE" / "REPLAY hh:mm" pill
   * @param {HTMLButtonElement} o.liveButton
   * @param {HTMLElement} o.banner
   * @param {import('./units.js').Units} o.units
   * @param {(picture: {atMs: number, alerts: object[], incidents: object[]}) => void} o.onPicture
   * @param {(held: {snapshot: object[]|null, positions: object[], events: object[]}) => void} o.onLive
   *   back to live: apply what was held, then draw the live state again
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    /** The replayed moment (unix ms), or null when live. */
    this.atMs = null;
    this.asked = 0;
    this.timer = null;
    this.clearHeld();
    o.slider.addEventListener('input', () => {
      this.label(this.sliderMs());
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.fromSlider(), SETTLE_MS);
    });
    o.slider.addEventListener('change', () => {
      clearTimeout(this.timer);
      this.fromSlider();
    });
    o.liveButton.addEventListener('click', () => this.live());
  }

  get active() {
    return this.atMs !== null;
  }

  clearHeld() {
    this.held = { snapshot: null, positions: new Map(), events: [], count: 0 };
  }

  /** A feed snapshot while replaying: it replaces every unit, so positions held before it go. */
  holdSnapshot(devices) {
    this.held.snapshot = devices;
    this.held.positions.clear();
    this.held.count += 1;
    this.banner();
  }

  /** A feed message while replaying. */
  hold(msg) {
    if (msg.type === 'position' && msg.data) this.held.positions.set(msg.data.device_id, msg.data);
    else this.held.events.push(msg);
    this.held.count += 1;
    this.banner();
  }

  sliderMs() {
    return Date.now() + Number(this.o.slider.value) * MINUTE_MS;
  }

  fromSlider() {
    if (Number(this.o.slider.value) >= 0) this.live();
    else this.show(this.sliderMs());
  }

  label(atMs) {
    const replaying = Number(this.o.slider.value) < 0;
    this.o.state.textContent = replaying ? t('replay_label', { time: clock(atMs, false) }) : t('live_label');
    this.o.state.classList.toggle('replaying', replaying);
  }

  banner(text) {
    const b = this.o.banner;
    if (!this.active) {
      b.hidden = true;
      return;
    }
    b.hidden = false;
    b.textContent = text ?? t('replay_banner', { time: clock(this.atMs, false), n: this.held.count });
  }

  /** Replays the picture at `atMs`. */
  async show(atMs) {
    const ask = ++this.asked;
    const first = !this.active;
    this.atMs = atMs;
    document.documentElement.dataset.mode = 'replay';
    this.o.liveButton.hidden = false;
    this.label(atMs);
    if (first) this.banner();
    try {
      const [positions, alerts, incidents] = await Promise.all([
        this.o.api.get(`/api/v1/history/positions?at=${Math.round(atMs)}`),
        this.o.api.get(`/api/v1/history/alerts?from=${Math.round(atMs - ALERT_WINDOW_MS)}&to=${Math.round(atMs)}&limit=500`),
        this.o.api.get(`/api/v1/history/incidents?at=${Math.round(atMs)}&limit=500`),
      ]);
      if (ask !== this.asked || !this.active) return;
      const reports = positions.features.map((f) => ({ ...f.properties, lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1] }));
      this.o.units.showReplay(reports, atMs);
      this.o.onPicture({
        atMs,
        alerts: alerts.alerts.map((m) => (m?.type === 'alert' ? m.data : m)).filter(Boolean),
        incidents: incidents.incidents,
      });
      document.documentElement.dataset.replayAt = String(Math.round(atMs));
      this.banner();
    } catch (e) {
      if (ask === this.asked) this.o.toast(t('replay_failed', { reason: e.message }));
    }
  }

  /** Back to live: what was held is applied, and the slider goes back to now. */
  live() {
    clearTimeout(this.timer);
    this.asked += 1;
    const wasActive = this.active;
    this.atMs = null;
    this.o.slider.value = '0';
    this.label(Date.now());
    this.o.liveButton.hidden = true;
    delete document.documentElement.dataset.mode;
    delete document.documentElement.dataset.replayAt;
    this.banner();
    if (!wasActive) return;
    const held = { snapshot: this.held.snapshot, positions: [...this.held.positions.values()], events: this.held.events };
    this.clearHeld();
    this.o.units.resumeLive();
    this.o.onLive(held);
  }
}
