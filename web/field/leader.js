// The patrol leader's view: the team's current plan on the map (its line, checkpoints with
// their due times and dwell, the hotspot cells it covers, the checkpoints left out), the
// members' positions, a new version or a diversion announced with a banner, a sound and
// a vibration and acknowledged with one button, and the adherence the phone can tell from
// the plan and the fixes it sees: on or off the route, the next checkpoint and when it is
// due, the ones late or skipped. The server's own adherence alerts go to the centre; the
// phone works the same rules out for itself (leave at 150 m, back at 80 m, as
// liandong_core::adherence's defaults), so it needs no signal to say where the team is.

import { el } from '/wallmap/dom.js';
import { t, clock, duration, distance } from './i18n.js';
import { metres } from './share.js';
import { point } from './fieldmap.js';

const LEAVE_M = 150;
const RETURN_M = 80;
/** A checkpoint counts as visited by a fix this close, when the plan gives no radius. */
const VISIT_M = 50;
/** The side of a hotspot cell (the hotspot analysis's grid). */
const CELL_M = 250;

/** Metres from `p` to the polyline `line` (`[[lon, lat], …]`), on a local flat projection. */
export function distanceToLine(p, line) {
  const k = Math.cos((p[1] * Math.PI) / 180) * 111_320;
  const xy = ([lon, lat]) => [(lon - p[0]) * k, (lat - p[1]) * 110_540];
  let best = Infinity;
  for (let i = 1; i < line.length; i++) {
    const [ax, ay] = xy(line[i - 1]);
    const [bx, by] = xy(line[i]);
    const [dx, dy] = [bx - ax, by - ay];
    const len2 = dx * dx + dy * dy;
    const s = len2 > 0 ? Math.max(0, Math.min(1, -(ax * dx + ay * dy) / len2)) : 0;
    best = Math.min(best, Math.hypot(ax + s * dx, ay + s * dy));
  }
  return line.length === 1 ? Math.hypot(...xy(line[0])) : best;
}

/** A square of `side_m` around `[lon, lat]`, as a GeoJSON polygon feature. */
function cell([lon, lat], side_m) {
  const dLat = side_m / 2 / 110_540;
  const dLon = side_m / 2 / (111_320 * Math.cos((lat * Math.PI) / 180));
  const ring = [[lon - dLon, lat - dLat], [lon + dLon, lat - dLat], [lon + dLon, lat + dLat], [lon - dLon, lat + dLat], [lon - dLon, lat - dLat]];
  return { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [ring] } };
}

/** A short beep, twice, from WebAudio (no sound file to fetch). */
function beep() {
  try {
    const ctx = new AudioContext();
    for (const at of [0, 0.35]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.4;
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.25);
    }
    setTimeout(() => ctx.close(), 1500);
  } catch {
    // No audio on this phone: the banner and the vibration still tell.
  }
}

export class Leader {
  /**
   * @param {object} o
   * @param {import('/wallmap/api.js').Api} o.api
   * @param {import('./outbox.js').Outbox} o.outbox
   * @param {import('./fieldmap.js').FieldMap} o.map
   * @param {string} o.team
   * @param {string|null} o.me this phone's device id, if it is one
   * @param {(text: string) => void} o.toast
   */
  constructor(o) {
    this.o = o;
    this.plan = null;
    this.alerted = 0;
    this.members = new Map();
    this.visited = new Set();
    this.myFix = null;
    this.off = false;
    this.ackQueued = null;
    this.panel = document.getElementById('panel-plan');
    document.getElementById('banner-ack').addEventListener('click', () => this.ack());
    this.timer = setInterval(() => this.render(), 30_000);
  }

  /** The team's current plan from the server (the newest version), or the cached one. */
  async load() {
    try {
      const { plans } = await this.o.api.get(`/api/v1/teams/${encodeURIComponent(this.o.team)}/plans`);
      const current = plans.find((p) => p.status !== 'superseded') ?? plans[0] ?? null;
      if (current) this.take(current, false);
    } catch {
      // No signal and nothing kept: the plan arrives with the feed.
    }
    this.render();
  }

  /** A `route` message of the live feed. */
  onRoute(msg) {
    const plan = msg.data?.plan;
    if (!plan || plan.team_id !== this.o.team) return;
    if (this.plan && plan.version < this.plan.version) return;
    this.take(plan, true);
    this.render();
  }

  take(plan, live) {
    if (!this.plan || plan.version !== this.plan.version) this.visited = new Set();
    this.plan = plan;
    if (plan.status !== 'pending') this.ackQueued = null;
    if (plan.status === 'pending' && plan.version > this.alerted) {
      this.alerted = plan.version;
      if (live) {
        beep();
        navigator.vibrate?.([400, 150, 400, 150, 400]);
      }
    }
    this.draw();
  }

  ack() {
    if (!this.plan || this.ackQueued === this.plan.version) return;
    this.ackQueued = this.plan.version;
    this.o.outbox.put({
      lane: 'http',
      tag: 'ack',
      version: this.plan.version,
      method: 'POST',
      path: `/api/v1/teams/${encodeURIComponent(this.o.team)}/plans/${this.plan.version}/ack`,
    });
    this.render();
  }

  /** The answer to a queued acknowledgement. */
  settled(entry, outcome) {
    if (outcome.ok) {
      const plan = outcome.answer?.plan;
      if (plan && this.plan && plan.version === this.plan.version) this.take(plan, false);
      this.o.toast(t('ack_sent', { version: entry.version }));
    } else {
      this.ackQueued = null;
      this.o.toast(t('ack_failed', { reason: outcome.error.message }));
      this.load();
    }
    this.render();
  }

  /** A member's (or this phone's) committed report, from the feed. */
  onPosition(report) {
    if (!report?.device_id) return;
    this.members.set(report.device_id, report);
    this.visit([report.lon, report.lat]);
    this.o.map.set('members', [...this.members.values()].filter((r) => r.device_id !== this.o.me).map((r) => point(r.lon, r.lat, { device_id: r.device_id })));
    this.render();
  }

  /** This phone's own fix, whether or not it has been sent. */
  onMyFix(p) {
    this.myFix = p;
    this.visit(p);
    if (this.plan?.plan?.geometry) {
      const d = distanceToLine(p, this.plan.plan.geometry.coordinates);
      this.off = this.off ? d > RETURN_M : d > LEAVE_M;
      this.offBy = d;
    }
    this.render();
  }

  visit(p) {
    for (const w of this.checkpoints()) {
      if (metres(p, [w.lon, w.lat]) <= (w.radius_m ?? VISIT_M)) this.visited.add(w.id ?? w.name);
    }
  }

  checkpoints() {
    return (this.plan?.plan?.waypoints ?? []).filter((w) => (w.kind ?? 'checkpoint') === 'checkpoint');
  }

  draw() {
    const body = this.plan?.plan;
    const line = body?.geometry?.coordinates ?? [];
    this.o.map.set('plan', line.length >= 2 ? [{ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: line } }] : []);
    this.o.map.set('cells', (body?.waypoints ?? []).filter((w) => w.kind === 'hotspot').map((w) => cell([w.lon, w.lat], CELL_M)));
    if (line.length >= 2) this.o.map.fit(line);
  }

  /** Each checkpoint with its state now: visited, late, skipped or ahead. */
  states(now) {
    const cps = this.checkpoints();
    const lastVisited = cps.reduce((last, w, i) => (this.visited.has(w.id ?? w.name) ? i : last), -1);
    return cps.map((w, i) => {
      const due = w.planned_time ? Date.parse(w.planned_time) : null;
      let state = 'ahead';
      if (this.visited.has(w.id ?? w.name)) state = 'visited';
      else if (i < lastVisited) state = 'skipped';
      else if (due !== null && now > due) state = 'late';
      return { w, due, state };
    });
  }

  render() {
    const banner = document.getElementById('banner');
    const p = this.plan;
    const pending = p?.status === 'pending';
    banner.hidden = !pending;
    if (pending) {
      document.getElementById('banner-text').textContent = t('banner_new', { kind: t(`plan_kind.${p.kind}`), version: p.version });
      document.getElementById('banner-reason').textContent = p.reason ?? '';
      const button = document.getElementById('banner-ack');
      const queued = this.ackQueued === p.version;
      button.disabled = queued;
      button.textContent = t(queued ? 'banner_ack_queued' : 'banner_ack');
    }
    if (!p) {
      this.panel.replaceChildren(el('p', 'line', t('plan_none')));
      return;
    }
    const now = Date.now();
    const states = this.states(now);
    this.o.map.set('stops', states.map(({ w, state }) => point(w.lon, w.lat, { state, name: w.name })));
    const out = [el('h2', '', t('plan_title', { version: p.version, status: t(`plan_status.${p.escalation && p.escalation !== 'none' && pending ? 'escalated' : p.status}`) }))];
    if (!this.myFix) out.push(el('p', 'status', t('no_fix')));
    else out.push(el('p', `status ${this.off ? 'bad' : 'ok'}`, this.off ? t('off_route', { m: distance(this.offBy) }) : t('on_route')));
    const next = states.find((s) => s.state === 'ahead' || s.state === 'late');
    if (next) {
      out.push(el('p', 'line next', t('next_checkpoint', { name: next.w.name ?? next.w.id })));
      if (next.due !== null) out.push(el('p', 'line', t('due', { time: clock(next.due), dwell: duration(next.w.dwell_s ?? 0) })));
    } else if (states.length) {
      out.push(el('p', 'line', t('all_visited')));
    }
    const hotspots = (p.plan?.waypoints ?? []).filter((w) => w.kind === 'hotspot').length;
    if (hotspots) out.push(el('p', 'line', t('hotspots_n', { n: hotspots })));
    if (states.length) {
      out.push(el('h2', '', t('checkpoints')));
      const list = el('ol', 'cps');
      for (const { w, due, state } of states) {
        const li = el('li', `cp ${state}`);
        li.dataset.state = state;
        li.append(el('span', 'name', w.name ?? w.id));
        if (due !== null) li.append(el('span', 'due', `${clock(due)} · ${duration(w.dwell_s ?? 0)}`));
        if (state !== 'ahead') li.append(el('span', `tag ${state}`, t(state)));
        list.append(li);
      }
      out.push(list);
    }
    const leftOut = p.plan?.left_out ?? [];
    if (leftOut.length) {
      out.push(el('h2', '', t('left_out')));
      const list = el('ul', 'leftout');
      for (const l of leftOut) list.append(el('li', '', `${l.name ?? l.id}：${l.reason ?? ''}`));
      out.push(list);
    }
    const others = [...this.members.values()].filter((r) => r.device_id !== this.o.me);
    if (others.length && p.plan?.geometry) {
      out.push(el('h2', '', t('members')));
      const list = el('ul', 'members');
      for (const r of others) list.append(el('li', 'line', t('member_line', { device: r.device_id, m: distance(distanceToLine([r.lon, r.lat], p.plan.geometry.coordinates)) })));
      out.push(list);
    }
    this.panel.replaceChildren(...out);
  }
}
