// The wall map's entry point: signs in, draws the county from the server's layers,
// follows the live feed and keeps the panels current.

import * as maplibregl from '/node_modules/maplibre-gl/dist/maplibre-gl.mjs';
import { Api, ApiFailure, takeToken, saveToken, forgetToken } from './api.js';
import { initialLang, setLang, currentLang, t, featureName, clock, dateLine } from './i18n.js';
import { baseStyle, TOGGLES, layersOf, swatchOf, emptyCollection, bboxOf, COLORS } from './layers.js';
import { Units } from './units.js';
import { AlertQueue } from './alerts.js';
import { LiveFeed } from './feed.js';

const $ = (id) => document.getElementById(id);

/** States of an incident in which its assigned unit is busy with it. */
const BUSY_STATES = new Set(['dispatched', 'signed_for', 'en_route', 'on_scene', 'feedback']);
const CLOSED_STATES = new Set(['closed', 'cancelled']);
const DAY_MS = 24 * 3600 * 1000;

/** What the page holds; also `window.wallmap`, for the end-to-end tests and for debugging. */
const app = {
  map: null,
  api: null,
  units: null,
  alerts: null,
  feed: null,
  incidents: new Map(),
  townshipLabels: [],
  countyBbox: null,
  layerNames: [],
};
window.wallmap = app;

setLang(initialLang());
$('lang-button').addEventListener('click', () => switchLang());
$('logout-button').addEventListener('click', () => {
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
  $('login-token').focus();
  $('login-form').onsubmit = (ev) => {
    ev.preventDefault();
    const value = $('login-token').value.trim();
    if (!value) return;
    saveToken(value);
    $('login').hidden = true;
    start(value);
  };
}

async function start(tokenValue) {
  document.documentElement.dataset.state = 'loading';
  app.api = new Api(tokenValue);
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
  $('provenance').hidden = !listing.layers.some((l) => l.illustrative);

  const wanted = [...new Set(TOGGLES.filter((g) => !g.live).map((g) => g.source))].filter((n) => app.layerNames.includes(n));
  const [collections] = await Promise.all([
    Promise.all(wanted.map((n) => app.api.get(`/api/v1/layers/${n}`).then((fc) => [n, fc]))),
  ]);
  const data = Object.fromEntries(collections);

  app.countyBbox = bboxOf(data.boundary ?? data.townships ?? emptyCollection());
  const map = new maplibregl.Map({
    container: 'map',
    style: baseStyle(),
    bounds: Number.isFinite(app.countyBbox[0]) ? app.countyBbox : undefined,
    fitBoundsOptions: { padding: 40 },
    attributionControl: false,
    fadeDuration: 0,
    maxZoom: 17,
    dragRotate: false,
    pitchWithRotate: false,
  });
  app.map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
  await new Promise((resolve) => map.once('load', resolve));

  for (const [name, fc] of Object.entries(data)) map.addSource(name, { type: 'geojson', data: fc });
  for (const live of ['incidents', 'alerts', 'units']) map.addSource(live, { type: 'geojson', data: emptyCollection() });
  for (const toggle of TOGGLES) {
    if (!toggle.live && !app.layerNames.includes(toggle.source)) continue;
    for (const layer of layersOf(toggle)) {
      layer.layout = { ...(layer.layout ?? {}), visibility: toggle.on ? 'visible' : 'none' };
      map.addLayer(layer);
    }
  }
  buildLayerPanel();
  buildLegend();
  placeTownshipLabels(data.townships);

  app.units = new Units(map, 'units');
  app.units.onChange = updateStats;
  app.alerts = new AlertQueue($('alert-queue'), {
    onLocate: (a) => map.flyTo({ center: [a.lon, a.lat], zoom: Math.max(map.getZoom(), 13) }),
    onOpenIncident: openIncident,
    onChange: alertsChanged,
    deviceName: (id) => app.units.devices.get(id)?.name ?? id,
  });

  // The state before the feed: devices with their last reports, the last day's alerts and
  // the open incidents. The feed's snapshot then brings every unit up to date.
  await Promise.all([loadDevices(), loadAlerts(), loadIncidents()]);

  app.feed = new LiveFeed({
    token: tokenValue,
    onSnapshot: (devices) => {
      app.units.replaceAll(devices);
      learnDevices(devices);
    },
    onEvent: onFeedEvent,
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

async function loadAlerts() {
  try {
    const { alerts } = await app.api.get(`/api/v1/history/alerts?from=${Date.now() - DAY_MS}&limit=500`);
    app.alerts.load(alerts);
  } catch (e) {
    console.warn('alerts:', e.message);
    app.alerts.render();
  }
}

async function loadIncidents() {
  try {
    const { incidents } = await app.api.get(`/api/v1/history/incidents?from=${Date.now() - 7 * DAY_MS}&limit=500`);
    for (const inc of incidents) app.incidents.set(inc.incident_id, inc);
    incidentsChanged();
  } catch (e) {
    console.warn('incidents:', e.message);
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
      break;
    case 'incident': {
      const inc = msg.data?.incident;
      if (inc) {
        app.incidents.set(inc.incident_id, inc);
        incidentsChanged();
      }
      break;
    }
    default:
      break;
  }
}

function incidentsChanged() {
  const open = [...app.incidents.values()].filter((i) => !CLOSED_STATES.has(i.state));
  app.map.getSource('incidents')?.setData({
    type: 'FeatureCollection',
    features: open.map((i) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [i.lon, i.lat] },
      properties: { incident_id: i.incident_id, state: i.state, priority: i.priority },
    })),
  });
  app.units?.setBusy(open.filter((i) => BUSY_STATES.has(i.state) && i.assigned_device).map((i) => i.assigned_device));
}

let flashing = null;
function alertsChanged() {
  app.map.getSource('alerts')?.setData({ type: 'FeatureCollection', features: app.alerts.features() });
  updateStats();
  if (app.alerts.anyFresh() && flashing === null) flash();
}

/** The map's flash of new alerts: a ring that grows and fades, about once a second. */
function flash() {
  if (!app.alerts.anyFresh()) {
    flashing = null;
    return;
  }
  const phase = (performance.now() % 900) / 900;
  if (app.map.getLayer('alerts-flash')) {
    app.map.setPaintProperty('alerts-flash', 'circle-radius', 10 + 22 * phase);
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
    toast(t('incident_opened', { id }));
    return t('incident_opened', { id });
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
      const li = document.createElement('li');
      li.className = 'group';
      li.innerHTML = '<label><input type="checkbox" data-group="cameras"><span class="swatch"></span><span data-i18n="layer.cameras"></span></label>';
      li.querySelector('.swatch').style.background = COLORS.camera.checkpoint;
      li.querySelector('[data-i18n]').textContent = t('layer.cameras');
      const all = li.querySelector('input');
      all.checked = TOGGLES.some((g) => g.source === 'cameras' && g.on);
      all.addEventListener('change', () => {
        for (const box of list.querySelectorAll('input[data-source="cameras"]')) {
          box.checked = all.checked;
          box.dispatchEvent(new Event('change'));
        }
      });
      list.append(li);
    }
    const li = document.createElement('li');
    if (toggle.source === 'cameras') li.className = 'sub';
    const label = document.createElement('label');
    const box = document.createElement('input');
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
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = swatchOf(toggle);
    const text = document.createElement('span');
    const key = toggle.source === 'cameras' ? `camera_kind.${toggle.kind}` : `layer.${toggle.key}`;
    text.dataset.i18n = key;
    text.textContent = t(key);
    label.append(box, swatch, text);
    li.append(label);
    list.append(li);
  }
}

function buildLegend() {
  const legend = $('unit-legend');
  legend.replaceChildren();
  for (const [status, color] of Object.entries(COLORS.unit)) {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = color;
    const text = document.createElement('span');
    text.dataset.i18n = `status.${status}`;
    text.textContent = t(`status.${status}`);
    li.append(swatch, text);
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
    const el = document.createElement('div');
    el.className = 'place-label';
    el.textContent = featureName(f.properties);
    el.dataset.name = f.properties.name;
    el.dataset.nameEn = f.properties.name_en ?? '';
    app.townshipLabels.push(new maplibregl.Marker({ element: el, anchor: 'top', offset: [0, 10] }).setLngLat(seat).addTo(app.map));
  }
}

function switchLang() {
  setLang(currentLang() === 'en' ? 'zh' : 'en');
  const url = new URL(location.href);
  url.searchParams.set('lang', currentLang());
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  for (const m of app.townshipLabels) {
    const el = m.getElement();
    el.textContent = currentLang() === 'en' && el.dataset.nameEn ? el.dataset.nameEn : el.dataset.name;
  }
  app.alerts?.render();
  const pill = $('feed-state');
  pill.textContent = t(pill.dataset.i18n);
  if (!$('offline-banner').hidden) {
    $('offline-banner').textContent = t('offline_banner', { n: $('offline-banner').dataset.attempt });
  }
}
