// The wall map's entry point: signs in, draws the county from the server's layers,
// follows the live feed and keeps the panels current: the alert queue, the incidents
// (list and panel), the grid reports awaiting review, route adjustments, hotspots, statistics and the time slider; and, for
// operators and administrators, the duty roster; and for an administrator, device
// registration, the people view and the roster editor.

import * as maplibregl from '/node_modules/maplibre-gl/dist/maplibre-gl.mjs';
import { Api, ApiFailure, takeToken, saveToken, forgetToken, isSession } from './api.js';
import { wireSignIn } from './signin.js';
import { initialLang, setLang, currentLang, t, translated, featureName, clock, dateLine, setPlaceNames } from './i18n.js';
import { baseStyle, TOGGLES, layersOf, swatchOf, emptyCollection, bboxOf, COLORS, SOURCE_OPTIONS, arrowImage, wallScale, SCALED_PAINT, SCALED_LAYOUT, FLASH_RADIUS } from './layers.js';
import { Units } from './units.js';
import { AlertQueue } from './alerts.js';
import { LiveFeed } from './feed.js';
import { Incidents, CLOSED_STATES } from './incidents.js';
import { ReportQueue } from './reports.js';
import { Plans, Hotspots } from './plans.js';
import { Escalations } from './escalations.js';
import { Stats } from './stats.js';
import { Replay } from './replay.js';
import { HandoversPanel } from './handovers.js';
import { Disputes } from './disputes.js';
import { CameraStatus, STATUS_SOURCE, statusLayer } from './cameras.js';
import { $, el, swatch } from './dom.js';

/** States of an incident in which its assigned unit is busy with it. */
const BUSY_STATES = new Set(['dispatched', 'signed_for', 'en_route', 'on_scene', 'feedback']);
const DAY_MS = 24 * 3600 * 1000;

/** What the page holds; also `window.wallmap`, for the end-to-end tests and for debugging. */
const app = {
  map: null,
  api: null,
  units: null,
  alerts: null,
  feed: null,
  /** The Incidents list and panel; `incidents.byId` holds every incident the page knows. */
  incidents: null,
  /** The grid reports awaiting review (operators and administrators; else null). */
  reports: null,
  plans: null,
  /** The open escalations this screen is told of, in the banner above the map. */
  escalations: null,
  hotspots: null,
  stats: null,
  replay: null,
  /** The device registration panel, for an administrator only (else null). */
  devices: null,
  /** The people view, for an administrator only (else null). */
  people: null,
  /** The duty panel, for operators and administrators (else null). */
  duty: null,
  /** Who the token is (`GET /api/v1/whoami`): `{ name, role, unit_id }`, or null if unknown. */
  me: null,
  drawer: null,
  /** The alert whose fused track is drawn, or null. */
  trackSeq: null,
  teamNames: new Map(),
  townshipLabels: [],
  countyBbox: null,
  layerNames: [],
  /** How much larger than at 1920×1080 the map draws dots and lines (`wallScale`). */
  scale: 1,
};
window.wallmap = app;

setLang(initialLang());
$('lang-button').addEventListener('click', () => switchLang());
$('logout-button').addEventListener('click', async () => {
  // A session is ended on the server too, so that the token left in this browser's
  // storage or history signs no one in; a duty token is only forgotten here.
  if (app.api && isSession(app.api.token)) await app.api.delete('/api/v1/sessions').catch(() => {});
  forgetToken();
  location.replace(location.pathname);
});
tick();
setInterval(tick, 1000);

const token = takeToken();
if (token) start(token);
else askToken();

function tick() {
  const now = Date.now();
  $('clock-time').textContent = clock(now);
  $('clock-date').textContent = dateLine(now);
}

function askToken(error) {
  document.documentElement.dataset.state = 'login';
  $('login').hidden = false;
  $('login-error').hidden = !error;
  $('login-error').textContent = error ?? '';
  wireSignIn((token) => {
    $('login').hidden = true;
    start(token);
  });
  $('login-form').onsubmit = (ev) => {
    ev.preventDefault();
    const value = $('login-token').value.trim();
    if (!value) return;
    saveToken(value);
    $('login').hidden = true;
    start(value);
  };
}

/** How often a signed-in wall renews its session (well inside the idle lifetime). */
const RENEW_EVERY_MS = 30 * 60 * 1000;

async function start(tokenValue) {
  document.documentElement.dataset.state = 'loading';
  app.api = new Api(tokenValue);
  if (isSession(tokenValue)) {
    // A wall left on through a shift stays signed in while it is in use; the server
    // still ends the session at its absolute lifetime.
    setInterval(() => app.api.post('/api/v1/sessions/renew').catch(() => {}), RENEW_EVERY_MS);
  }
  // Who the token is, asked beside the layers: the role decides which panels the page
  // offers; without an answer it offers the operator's (the server refuses what the role
  // may not do either way).
  const me = app.api.get('/api/v1/whoami').catch(() => null);
  let listing;
  try {
    listing = await app.api.get('/api/v1/layers');
  } catch (e) {
    if (e instanceof ApiFailure && (e.status === 401 || e.status === 403)) {
      forgetToken();
      askToken(t('login_bad_token'));
    } else {
      askToken(t('login_failed', { reason: e.message }));
    }
    return;
  }
  app.layerNames = listing.layers.map((l) => l.name);
  app.me = await me;
  $('provenance').hidden = !listing.layers.some((l) => l.illustrative);

  const wanted = [...new Set(TOGGLES.filter((g) => !g.live).map((g) => g.source))].filter((n) => app.layerNames.includes(n));
  const [collections] = await Promise.all([
    Promise.all(wanted.map((n) => app.api.get(`/api/v1/layers/${n}`).then((fc) => [n, fc]))),
  ]);
  const data = Object.fromEntries(collections);

  app.countyBbox = bboxOf(data.boundary ?? data.townships ?? emptyCollection());
  setPlaceNames((data.townships?.features ?? []).map((f) => [f.properties?.name, f.properties?.name_en]));
  // Team names for the route panel; in English from the post's English name, which the
  // demo map's routes lack.
  const postsEn = new Map((data.posts?.features ?? []).map((f) => [f.properties?.id, f.properties?.name_en]));
  for (const f of data.routes?.features ?? []) {
    const p = f.properties ?? {};
    const postEn = postsEn.get(p.post_id)?.replace(/ police post$/i, '');
    const nameEn = p.team_name_en ?? (postEn ? `${postEn} volunteer patrol` : undefined);
    if (p.team_id) app.teamNames.set(p.team_id, { name: p.team_name ?? p.team_id, name_en: nameEn });
  }
  app.scale = wallScale();
  document.documentElement.style.setProperty('--wall-scale', String(app.scale));
  const map = new maplibregl.Map({
    container: 'map',
    style: baseStyle(),
    bounds: Number.isFinite(app.countyBbox[0]) ? app.countyBbox : undefined,
    fitBoundsOptions: { padding: 40 * app.scale },
    attributionControl: false,
    fadeDuration: 0,
    maxZoom: 17,
    dragRotate: false,
    pitchWithRotate: false,
  });
  app.map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
  await new Promise((resolve) => map.once('load', resolve));

  for (const [name, fc] of Object.entries(data)) map.addSource(name, { type: 'geojson', data: fc });
  for (const live of TOGGLES.filter((g) => g.live).map((g) => g.source)) {
    map.addSource(live, { type: 'geojson', data: emptyCollection(), ...(SOURCE_OPTIONS[live] ?? {}) });
  }
  map.addImage('track-arrow', arrowImage());
  for (const toggle of TOGGLES) {
    if (!toggle.live && !app.layerNames.includes(toggle.source)) continue;
    for (const layer of layersOf(toggle, app.scale)) {
      layer.layout = { ...(layer.layout ?? {}), visibility: toggle.on ? 'visible' : 'none' };
      map.addLayer(layer);
    }
  }
  // Offline cameras, drawn over the camera dots (see cameras.js).
  map.addSource(STATUS_SOURCE, { type: 'geojson', data: emptyCollection() });
  map.addLayer(statusLayer(app.scale));
  buildLayerPanel();
  buildLegend();
  placeTownshipLabels(data.townships);
  // The window resized or moved to another screen: dots and lines follow its size.
  window.addEventListener('resize', rescale);

  // `?pace=off` keeps units gliding every frame however slow the frames (for comparison).
  app.units = new Units(map, 'units', { pace: new URLSearchParams(location.search).get('pace') ?? 'auto' });
  app.units.onChange = updateStats;
  const deviceName = (id) => app.units.devices.get(id)?.name ?? id;
  app.alerts = new AlertQueue($('alert-queue'), {
    onLocate: (a) => {
      selectAlert(a);
      map.flyTo({ center: [a.lon, a.lat], zoom: Math.max(map.getZoom(), 13) });
    },
    onOpenIncident: openIncident,
    onAck: (a) => app.api.post(`/api/v1/alerts/${a.seq}/ack`, {}),
    onChange: alertsChanged,
    deviceName,
  });
  app.drawer = new Drawer();
  app.incidents = new Incidents({
    api: app.api,
    list: $('incident-list'),
    count: $('incident-count'),
    panel: $('incident-panel'),
    deviceName,
    onChange: incidentsChanged,
    onOpen: (inc) => {
      app.drawer.show('incident');
      if (inc && Number.isFinite(inc.lon)) map.easeTo({ center: [inc.lon, inc.lat], zoom: Math.max(map.getZoom(), 12) });
    },
    toast,
  });
  // Only operators and administrators review grid reports; other roles' walls do not offer it.
  if (!app.me || ['operator', 'admin'].includes(app.me.role)) {
    app.reports = new ReportQueue({
      api: app.api,
      body: $('reports-panel'),
      openIncidents: () => app.incidents.openOnes(),
      onLocate: (r) => map.flyTo({ center: [r.lon, r.lat], zoom: Math.max(map.getZoom(), 14) }),
      onOpenIncident: (id) => app.incidents.open(id),
      onCount: reportsCounted,
      toast,
    });
    $('stat-reports-button').addEventListener('click', () => (app.drawer.tab === 'reports' ? app.drawer.hide() : app.drawer.show('reports')));
  } else {
    for (const b of document.querySelectorAll('#stat-reports-button, [data-open="reports"], [data-tab="reports"]')) b.hidden = true;
  }
  app.plans = new Plans({
    list: $('plan-list'),
    summary: $('routes-summary'),
    teamName: (id) => (app.teamNames.has(id) ? featureName(app.teamNames.get(id)) : id),
    onChange: plansChanged,
    onFocus: (p) => {
      const b = bboxOf({ features: [{ geometry: p.plan?.geometry }] });
      if (Number.isFinite(b[0])) map.fitBounds(b, { padding: 80 * app.scale, maxZoom: 14 });
    },
  });
  app.escalations = new Escalations({
    api: app.api,
    banner: $('escalation-banner'),
    me: () => app.me,
    onOpen: (id) => app.incidents.open(id),
    toast,
  });
  app.hotspots = new Hotspots({ api: app.api, map, card: $('hotspot-card') });
  // Places with repeated disputes, for the roles that read mediation (asking with another
  // role would only be refused); the toggle goes when the server has none for the caller.
  const hideDisputes = () => {
    for (const box of document.querySelectorAll('#layer-list input[data-layer="disputes"]')) box.closest('li').hidden = true;
  };
  if (!app.me || ['operator', 'admin', 'partner'].includes(app.me.role)) {
    app.disputes = new Disputes({ api: app.api, map, Popup: maplibregl.Popup, onUnavailable: hideDisputes });
  } else {
    hideDisputes();
  }
  // Cameras' liveness, for the roles the status endpoint answers.
  if (!app.me || ['operator', 'admin'].includes(app.me.role)) {
    const cameraLayers = TOGGLES.filter((g) => g.source === 'cameras' && map.getLayer(g.key.replace('.', '-'))).map((g) => g.key.replace('.', '-'));
    app.cameraStatus = new CameraStatus({ api: app.api, map, Popup: maplibregl.Popup, cameras: data.cameras, cameraLayers });
  }
  if (app.me?.role === 'admin') await Promise.all([startDevices(data), startPeople(data)]);
  if (['operator', 'admin'].includes(app.me?.role)) await startDuty(data);
  startHandovers(data);
  // The judicial office's desk, for the roles that work there or watch it.
  $('desk-link').hidden = !!app.me && !['partner', 'operator', 'admin'].includes(app.me.role);
  app.stats = new Stats({ api: app.api, body: $('stats-panel') });
  app.replay = new Replay({
    api: app.api,
    slider: $('time-slider'),
    state: $('replay-state'),
    liveButton: $('live-button'),
    banner: $('replay-banner'),
    units: app.units,
    onPicture: showPicture,
    onLive: backToLive,
    toast,
  });
  map.on('click', 'incidents-circle', (ev) => {
    const id = ev.features?.[0]?.properties?.incident_id;
    if (id !== undefined && !app.replay.active) app.incidents.open(Number(id));
  });
  map.on('click', 'alerts-circle', (ev) => {
    const seq = ev.features?.[0]?.properties?.seq;
    const a = seq !== undefined ? app.alerts.alerts.get(Number(seq)) : null;
    if (a) selectAlert(a);
  });
  for (const layer of ['incidents-circle', 'alerts-circle']) {
    map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'));
    map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''));
  }

  // The state before the feed: devices with their last reports, the last day's alerts,
  // the open incidents and the current plans. The feed's snapshot then brings every unit
  // up to date. The hotspots come after: the analysis is the slowest answer.
  await Promise.all([loadDevices(), loadAlerts(), loadIncidents(), loadPlans(), loadEscalations(), app.reports?.load(), app.cameraStatus?.load()]);
  app.hotspots.refresh().catch((e) => console.warn('hotspots:', e.message));
  app.disputes?.start().catch((e) => console.warn('dispute places:', e.message));

  app.feed = new LiveFeed({
    token: tokenValue,
    onSnapshot: (devices, reason) => {
      // A gap the server could not replay: what else happened in it is read again (now,
      // or on going back to live when the time slider is replaying).
      if (GAP_REASONS.has(reason)) app.gapToCatchUp = true;
      if (app.replay.active) {
        app.replay.holdSnapshot(devices);
        return;
      }
      app.units.replaceAll(devices);
      learnDevices(devices);
      if (app.gapToCatchUp) catchUp();
    },
    onEvent: (msg) => {
      if (app.replay.active) app.replay.hold(msg);
      else onFeedEvent(msg);
    },
    onNotice: (msg) => {
      if (msg.type === 'hotspots') app.hotspots.notice(msg).catch((e) => console.warn('hotspots:', e.message));
    },
    onState: feedState,
    tokenStillValid: async () => {
      try {
        await app.api.get('/api/v1/layers');
        return true;
      } catch (e) {
        return !(e instanceof ApiFailure && (e.status === 401 || e.status === 403));
      }
    },
    onRefused: () => {
      forgetToken();
      askToken(t('login_bad_token'));
    },
  });
  app.feed.start(subscription());
  map.on('moveend', () => app.feed.subscribe(subscription()));

  map.once('idle', () => {
    document.documentElement.dataset.state = 'ready';
  });
  map.triggerRepaint();
}

/**
 * The shift handovers (交接班), offered to the roles that may list them: operators and
 * administrators (every unit's), a post officer (their post's), and anyone acting for a
 * person (the sheets naming them). For a person, the list is read at start so that the
 * entry is marked while a sheet waits for them to sign or accept.
 */
function startHandovers(data) {
  if (app.me && !['operator', 'admin', 'post_officer'].includes(app.me.role) && !app.me.person_id) return;
  const posts = new Map((data.posts?.features ?? []).map((f) => [f.properties?.id, f.properties]));
  const entries = document.querySelectorAll('[data-open="handovers"], [data-tab="handovers"]');
  app.handovers = new HandoversPanel({
    api: app.api,
    body: $('handovers-panel'),
    postName: (id) => (posts.has(id) ? featureName(posts.get(id)) : id),
    me: () => app.me,
    onWaiting: (n) => {
      for (const b of entries) b.classList.toggle('waiting', n > 0);
    },
  });
  for (const b of entries) b.hidden = false;
  if (app.me?.person_id) app.handovers.show();
}

/**
 * Device registration, offered to an administrator only. Its module (and the QR code
 * encoder it imports) is loaded only here, so that an operator's wall loads neither.
 */
async function startDevices(data) {
  const { DevicesPanel } = await import('./devices.js');
  const units = [...app.teamNames.keys(), ...(data.posts?.features ?? []).map((f) => f.properties?.id)].filter(Boolean);
  app.devices = new DevicesPanel({
    api: app.api,
    body: $('devices-panel'),
    sheet: $('device-sheet'),
    units: [...new Set(units)].sort(),
    onList: (devices) => app.units?.setDevices(devices),
  });
  for (const b of document.querySelectorAll('[data-open="devices"], [data-tab="devices"]')) b.hidden = false;
}

/**
 * The people view, offered to an administrator only (the server refuses every other role's
 * changes anyway). The units a person may belong to come from the map's layers, with their
 * names.
 */
async function startPeople(data) {
  const { PeoplePanel } = await import('./people.js');
  const named = (fc) => (fc?.features ?? []).map((f) => ({ id: f.properties?.id, name: featureName(f.properties) })).filter((u) => u.id);
  const teams = [...app.teamNames].map(([id, names]) => ({ id, name: featureName(names) }));
  app.people = new PeoplePanel({
    api: app.api,
    body: $('people-panel'),
    units: { post: named(data.posts), team: teams, grid: named(data.grids) },
  });
  for (const b of document.querySelectorAll('[data-open="people"], [data-tab="people"]')) b.hidden = false;
}

/**
 * The duty panel (今日值班), for operators and administrators; an administrator's has the
 * roster editor too. Other roles' walls do not offer it.
 */
async function startDuty(data) {
  const { DutyPanel } = await import('./duty.js');
  const posts = (data.posts?.features ?? []).map((f) => ({ id: f.properties?.id, name: featureName(f.properties) })).filter((p) => p.id);
  app.duty = new DutyPanel({ api: app.api, body: $('duty-panel'), posts, admin: app.me.role === 'admin' });
  for (const b of document.querySelectorAll('[data-open="duty"], [data-tab="duty"]')) b.hidden = false;
}

/**
 * The feed's viewport: what the map shows, but never less than the whole county. The
 * server filters alerts by the viewport too, and the alert queue must not lose an alert
 * because an operator zoomed in on one township.
 */
function subscription() {
  const b = app.map.getBounds();
  const c = app.countyBbox;
  const box = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  if (Number.isFinite(c[0])) {
    box[0] = Math.min(box[0], c[0]);
    box[1] = Math.min(box[1], c[1]);
    box[2] = Math.max(box[2], c[2]);
    box[3] = Math.max(box[3], c[3]);
  }
  return [Math.max(box[0], -180), Math.max(box[1], -90), Math.min(box[2], 180), Math.min(box[3], 90)];
}

async function loadDevices() {
  try {
    const { devices } = await app.api.get('/api/v1/devices');
    app.units.setDevices(devices);
    app.units.replaceAll(devices.map((d) => d.last).filter(Boolean));
  } catch (e) {
    // Roles that may not list devices still see the units the feed gives them.
    if (!(e instanceof ApiFailure && e.status === 403)) console.warn('devices:', e.message);
  }
}

let devicesAsked = 0;
/** A report from a device registered after the page loaded: fetch the registry again (at most every 5 s). */
function learnDevices(reports) {
  if (!reports.some((r) => r && !app.units.knows(r.device_id))) return;
  const now = Date.now();
  if (now - devicesAsked < 5000) return;
  devicesAsked = now;
  app.api
    .get('/api/v1/devices')
    .then(({ devices }) => app.units.setDevices(devices))
    .catch(() => {});
}

/**
 * The snapshot reasons that follow a gap in the feed the server could not replay: the
 * screen fell further behind than the feed keeps (`resync`), or reconnected with a `since`
 * older than the replay reaches or ahead of the feed (a store restored from a backup).
 * The snapshot brings the units up to date; the alerts, incidents, plans and escalations
 * of the gap would otherwise never reach this screen.
 */
const GAP_REASONS = new Set(['resync', 'since_too_old', 'since_ahead_of_feed']);

/**
 * Reads again what the feed's gap lost: the last day's alerts (those new to this screen
 * flash, and a toast says how many), the open incidents (and those that moved on in the
 * gap), the plans, the escalations and the review queue. Runs once per gap; a second gap
 * while it runs asks again after it.
 */
async function catchUp() {
  if (app.catchingUp) return;
  app.catchingUp = true;
  try {
    while (app.gapToCatchUp) {
      app.gapToCatchUp = false;
      const [alerts, incidents] = await Promise.all([
        recentAlerts().catch((e) => {
          console.warn('alerts after a gap:', e.message);
          return null;
        }),
        openIncidents().catch((e) => {
          console.warn('incidents after a gap:', e.message);
          return null;
        }),
        loadPlans(),
        app.escalations.load({ replace: true }).catch((e) => console.warn('escalations after a gap:', e.message)),
        app.reports?.load(),
      ]);
      if (incidents) await app.incidents.catchUp(incidents.incidents ?? []);
      if (alerts) {
        const fresh = app.alerts.load(alerts.alerts ?? [], alerts.acknowledged, { asNew: true });
        if (fresh > 0) toast(t('feed_caught_up', { n: fresh }));
      }
      document.documentElement.dataset.caughtUp = String(Number(document.documentElement.dataset.caughtUp ?? 0) + 1);
    }
  } finally {
    app.catchingUp = false;
  }
}

/** The last day's alerts with their first acknowledgements, from the history API. */
function recentAlerts() {
  return app.api.get(`/api/v1/history/alerts?from=${Date.now() - DAY_MS}&limit=500`);
}

/** Every open incident, however old, from the history API. */
function openIncidents() {
  return app.api.get('/api/v1/history/incidents?state=open&limit=5000');
}

async function loadAlerts() {
  try {
    const { alerts, acknowledged } = await recentAlerts();
    app.alerts.load(alerts, acknowledged);
  } catch (e) {
    console.warn('alerts:', e.message);
    app.alerts.render();
  }
}

async function loadIncidents() {
  try {
    // The feed brings every change after this.
    const { incidents } = await openIncidents();
    app.incidents.load(incidents);
  } catch (e) {
    console.warn('incidents:', e.message);
    app.incidents.load([]);
  }
}

async function loadEscalations() {
  try {
    await app.escalations.load();
  } catch (e) {
    console.warn('escalations:', e.message);
  }
}

async function loadPlans() {
  try {
    const { plans } = await app.api.get('/api/v1/plans');
    app.plans.load(plans);
  } catch (e) {
    console.warn('plans:', e.message);
    app.plans.load([]);
  }
}

function onFeedEvent(msg) {
  switch (msg.type) {
    case 'position':
      if (msg.data) {
        app.units.update(msg.data);
        learnDevices([msg.data]);
      }
      break;
    case 'alert':
      app.alerts.add(msg);
      if (msg.data?.rule === 'grid_report') app.reports?.addFromAlert(msg);
      app.cameraStatus?.applyAlert(msg);
      break;
    case 'alert_ack':
      app.alerts.applyAck(msg);
      break;
    case 'incident':
      app.incidents.applyFeed(msg);
      break;
    case 'incident_gone':
      app.incidents.forget(msg.data?.incident_id);
      break;
    case 'route':
      app.plans.applyFeed(msg);
      break;
    case 'escalation':
      app.escalations.applyFeed(msg);
      break;
    default:
      break;
  }
}

function incidentFeatures(list) {
  return {
    type: 'FeatureCollection',
    features: list
      .filter((i) => Number.isFinite(i.lon) && Number.isFinite(i.lat))
      .map((i) => ({
        type: 'Feature',
        geometry: { type: 'Point', coordinates: [i.lon, i.lat] },
        properties: { incident_id: i.incident_id, state: i.state, priority: i.priority, escalation: i.escalation ?? 'none', selected: i.incident_id === app.incidents.openId },
      })),
  };
}

function incidentsChanged() {
  const open = app.incidents.openOnes();
  app.units?.setBusy(open.filter((i) => BUSY_STATES.has(i.state) && i.assigned_device).map((i) => i.assigned_device));
  // While replaying, the map shows the incidents of the replayed moment.
  if (app.replay?.active) return;
  const shown = app.incidents.openId !== null ? app.incidents.byId.get(app.incidents.openId) : null;
  // The incident in the panel stays on the map after it is closed, until the panel moves on.
  app.map.getSource('incidents')?.setData(incidentFeatures(shown && CLOSED_STATES.has(shown.state) ? [...open, shown] : open));
  // The queue offers the open incidents to merge a report into.
  if (app.drawer?.tab === 'reports') app.reports?.render();
}

/** The number of grid reports awaiting review: in the top bar and on the queue's button. */
function reportsCounted(n) {
  $('stat-reports').textContent = String(n);
  $('stat-reports-button').classList.toggle('none', n === 0);
  const badge = $('reports-badge');
  badge.hidden = n === 0;
  badge.textContent = String(n);
}

function plansChanged() {
  app.map.getSource('plans')?.setData(app.plans.features());
  const { pending, escalated } = app.plans.counts();
  $('stat-plans').textContent = String(pending);
  $('stat-plans').parentElement.classList.toggle('alarm', escalated > 0);
  const badge = $('routes-badge');
  badge.hidden = pending === 0;
  badge.textContent = String(pending);
  badge.classList.toggle('alarm', escalated > 0);
}

let flashing = null;
function alertsChanged() {
  updateStats();
  if (app.replay?.active) return;
  app.map.getSource('alerts')?.setData({ type: 'FeatureCollection', features: app.alerts.features() });
  if (app.alerts.anyFresh() && flashing === null) flash();
}

/** The picked alert: its fused track (watch-list hits carry one) is drawn with its direction. */
function selectAlert(a) {
  app.trackSeq = a.seq;
  app.alerts.select(a.seq);
  const track = a.track;
  const coords = track?.coordinates ?? [];
  const features = [];
  if (coords.length >= 2) {
    features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: coords }, properties: { seq: a.seq } });
  }
  coords.forEach((c, i) => {
    features.push({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: c },
      properties: { seq: a.seq, last: i === coords.length - 1, time: track.times?.[i] ?? '', camera: track.cameras?.[i] ?? '' },
    });
  });
  app.map.getSource('tracks')?.setData({ type: 'FeatureCollection', features });
}

/** The replayed moment's alerts and incidents (the units are drawn by Units). */
function showPicture({ alerts, incidents }) {
  app.map.getSource('alerts')?.setData({
    type: 'FeatureCollection',
    features: alerts
      .filter((a) => Number.isFinite(a.lon) && Number.isFinite(a.lat))
      .map((a) => ({
        type: 'Feature',
        geometry: { type: 'Point', coordinates: [a.lon, a.lat] },
        properties: { seq: a.seq, rule: a.rule, priority: Math.max(1, Math.min(5, a.priority ?? 3)), fresh: false },
      })),
  });
  app.map.getSource('incidents')?.setData(incidentFeatures(incidents));
  updateStats();
}

/** Back to live: the held feed applied in order, then the live picture drawn again. */
function backToLive({ snapshot, positions, events }) {
  if (snapshot) {
    app.units.replaceAll(snapshot);
    learnDevices(snapshot);
  }
  for (const p of positions) {
    app.units.update(p);
    learnDevices([p]);
  }
  for (const msg of events) onFeedEvent(msg);
  incidentsChanged();
  alertsChanged();
  updateStats();
  if (app.gapToCatchUp) catchUp();
}

/** The right-hand drawer: the incident panel, route adjustments and statistics, one at a time. */
class Drawer {
  constructor() {
    this.tab = null;
    $('drawer').addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-tab]');
      if (b) this.show(b.dataset.tab);
    });
    $('drawer-close').addEventListener('click', () => this.hide());
    $('toolbar').addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-open]');
      if (!b) return;
      if (this.tab === b.dataset.open) this.hide();
      else this.show(b.dataset.open);
    });
  }

  show(tab) {
    if (this.tab === 'stats' && tab !== 'stats') app.stats.hide();
    if (this.tab === 'reports' && tab !== 'reports') app.reports?.hide();
    if (this.tab === 'duty' && tab !== 'duty') app.duty?.hide();
    this.tab = tab;
    $('drawer').hidden = false;
    $('drawer').dataset.tab = tab;
    for (const b of document.querySelectorAll('#drawer [data-tab], #toolbar [data-open]')) {
      b.classList.toggle('on', (b.dataset.tab ?? b.dataset.open) === tab);
    }
    if (tab === 'stats') app.stats.show();
    if (tab === 'devices') app.devices?.show();
    if (tab === 'people') app.people?.show();
    if (tab === 'duty') app.duty?.show();
    if (tab === 'handovers') app.handovers?.show();
    if (tab === 'reports') app.reports?.show();
    if (tab === 'incident' && app.incidents.openId === null) app.incidents.renderPanel();
  }

  hide() {
    if (this.tab === 'stats') app.stats.hide();
    if (this.tab === 'reports') app.reports?.hide();
    if (this.tab === 'duty') app.duty?.hide();
    this.tab = null;
    $('drawer').hidden = true;
    for (const b of document.querySelectorAll('#toolbar [data-open]')) b.classList.remove('on');
  }
}

/** Sets every scaled size again when a new screen size changes the wall scale. */
function rescale() {
  const scale = wallScale();
  if (scale === app.scale) return;
  app.scale = scale;
  document.documentElement.style.setProperty('--wall-scale', String(scale));
  for (const toggle of TOGGLES) {
    for (const layer of layersOf(toggle, scale)) {
      if (!app.map.getLayer(layer.id)) continue;
      for (const k of SCALED_PAINT) if (layer.paint?.[k] !== undefined) app.map.setPaintProperty(layer.id, k, layer.paint[k]);
      for (const k of SCALED_LAYOUT) if (layer.layout?.[k] !== undefined) app.map.setLayoutProperty(layer.id, k, layer.layout[k]);
    }
  }
}

/** The map's flash of new alerts: a ring that grows and fades, about once a second. */
function flash() {
  if (!app.alerts.anyFresh()) {
    flashing = null;
    return;
  }
  const phase = (performance.now() % 900) / 900;
  if (app.map.getLayer('alerts-flash')) {
    app.map.setPaintProperty('alerts-flash', 'circle-radius', (FLASH_RADIUS - 4 + 22 * phase) * app.scale);
    app.map.setPaintProperty('alerts-flash', 'circle-stroke-opacity', 1 - phase);
  }
  flashing = setTimeout(flash, 80);
}

async function openIncident(a) {
  const what = a.read?.value ? ` ${a.read.value}` : '';
  try {
    const res = await app.api.post('/api/v1/incidents', {
      title: `${t(`rule.${a.rule}`)}${what}`,
      priority: Math.max(1, Math.min(5, a.priority ?? 3)),
      alert_seq: a.seq,
    });
    const id = res.incident?.incident_id;
    // Another screen may have opened it first: the server answers that incident.
    const said = t(res.existing ? 'incident_existing' : 'incident_opened', { id });
    toast(said);
    // The panel opens on the incident, with the units the server recommends.
    app.incidents.open(id, res);
    return said;
  } catch (e) {
    toast(t('incident_failed', { reason: e.message }));
    return t('incident_failed', { reason: e.message });
  }
}

let toastTimer = null;
function toast(text) {
  $('toast').textContent = text;
  $('toast').hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => ($('toast').hidden = true), 5000);
}

function feedState(state, attempt) {
  const pill = $('feed-state');
  pill.className = `pill ${state}`;
  pill.dataset.i18n = state;
  pill.textContent = t(state);
  document.documentElement.dataset.feed = state;
  const banner = $('offline-banner');
  banner.hidden = state !== 'offline';
  banner.dataset.attempt = String(attempt);
  if (state === 'offline') banner.textContent = t('offline_banner', { n: attempt });
}

function updateStats() {
  if (app.units) {
    const { online, total } = app.units.counts();
    $('stat-online').textContent = String(online);
    $('stat-units').textContent = String(total);
  }
  if (app.alerts) {
    const { total, p1 } = app.alerts.counts();
    $('stat-alerts').textContent = String(total);
    $('stat-p1').textContent = String(p1);
    $('queue-count').textContent = String(total);
  }
}

function buildLayerPanel() {
  const list = $('layer-list');
  list.replaceChildren();
  let camerasHeader = false;
  for (const toggle of TOGGLES) {
    if (!toggle.live && !app.layerNames.includes(toggle.source)) continue;
    if (toggle.source === 'cameras' && !camerasHeader) {
      camerasHeader = true;
      const all = el('input');
      all.type = 'checkbox';
      all.dataset.group = 'cameras';
      all.checked = TOGGLES.some((g) => g.source === 'cameras' && g.on);
      all.addEventListener('change', () => {
        for (const box of list.querySelectorAll('input[data-source="cameras"]')) {
          box.checked = all.checked;
          box.dispatchEvent(new Event('change'));
        }
      });
      const li = el('li', 'group');
      li.append(layerLabel(all, COLORS.camera.checkpoint, 'layer.cameras'));
      list.append(li);
    }
    const li = el('li', toggle.source === 'cameras' ? 'sub' : '');
    const box = el('input');
    box.type = 'checkbox';
    box.checked = toggle.on;
    box.dataset.layer = toggle.key;
    box.dataset.source = toggle.source;
    box.addEventListener('change', () => {
      for (const layer of layersOf(toggle)) {
        app.map.setLayoutProperty(layer.id, 'visibility', box.checked ? 'visible' : 'none');
      }
      if (toggle.key === 'townships') for (const m of app.townshipLabels) m.getElement().hidden = !box.checked;
    });
    const key = toggle.source === 'cameras' ? `camera_kind.${toggle.kind}` : `layer.${toggle.key}`;
    li.append(layerLabel(box, swatchOf(toggle), key));
    list.append(li);
  }
}

/** A line of the layer panel: its check box, the layer's colour and its name. */
function layerLabel(box, color, key) {
  const label = el('label');
  label.append(box, swatch(color), translated(key));
  return label;
}

function buildLegend() {
  const legend = $('unit-legend');
  legend.replaceChildren();
  for (const [status, color] of Object.entries(COLORS.unit)) {
    const li = el('li');
    li.append(swatch(color), translated(`status.${status}`));
    legend.append(li);
  }
}

/** Township names at their seats, as HTML: 31 labels need no glyph server. */
function placeTownshipLabels(fc) {
  for (const m of app.townshipLabels) m.remove();
  app.townshipLabels = [];
  if (!fc) return;
  for (const f of fc.features) {
    const seat = f.properties?.seat;
    if (!Array.isArray(seat)) continue;
    const label = el('div', 'place-label', featureName(f.properties));
    label.dataset.name = f.properties.name;
    label.dataset.nameEn = f.properties.name_en ?? '';
    app.townshipLabels.push(new maplibregl.Marker({ element: label, anchor: 'top', offset: [0, 10] }).setLngLat(seat).addTo(app.map));
  }
}

function switchLang() {
  setLang(currentLang() === 'en' ? 'zh' : 'en');
  const url = new URL(location.href);
  url.searchParams.set('lang', currentLang());
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  for (const m of app.townshipLabels) {
    const label = m.getElement();
    label.textContent = currentLang() === 'en' && label.dataset.nameEn ? label.dataset.nameEn : label.dataset.name;
  }
  app.alerts?.render();
  app.incidents?.renderList();
  app.incidents?.renderPanel();
  app.reports?.rebuild();
  app.plans?.render();
  app.escalations?.render();
  app.hotspots?.render();
  app.devices?.render();
  app.people?.render();
  app.duty?.render();
  app.handovers?.render();
  if (app.drawer?.tab === 'stats') app.stats.render();
  if (app.replay) {
    app.replay.label(app.replay.atMs ?? Date.now());
    app.replay.banner();
  }
  const pill = $('feed-state');
  pill.textContent = t(pill.dataset.i18n);
  if (!$('offline-banner').hidden) {
    $('offline-banner').textContent = t('offline_banner', { n: $('offline-banner').dataset.attempt });
  }
}
