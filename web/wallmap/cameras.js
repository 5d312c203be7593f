// The cameras' liveness on the wall map: each camera's status (online, offline, unknown:
// never heard from) from `GET /api/v1/cameras/status` (operators and administrators),
// kept current by the feed's `camera_offline` and `camera_online` alerts. An offline
// camera is drawn over its dot as a grey disc in a red ring (the `camera-status` source);
// a click on any camera opens a card with its status and when it was last heard from.
// A role the endpoint refuses (403), or a server without it (404), draws nothing.

import { t, clock, dateLine, featureName } from './i18n.js';
import { el } from './dom.js';

/** The source and layer of offline cameras, drawn above the camera dots. */
export const STATUS_SOURCE = 'camera-status';
export const STATUS_LAYER = 'camera-status-offline';

/** The layers whose click opens something else (main.js): a camera under them gets no card. */
const ABOVE = ['alerts-circle', 'incidents-circle'];

/** The alerts of a camera's own liveness. */
const LIVENESS_RULES = ['camera_offline', 'camera_online'];

/** Most pages of statuses read (1000 a page): far above a county's cameras. */
const MAX_PAGES = 50;

/** The layer of offline cameras, every size multiplied by `scale`. */
export function statusLayer(scale) {
  const px = (v) => v * scale;
  return {
    id: STATUS_LAYER,
    type: 'circle',
    source: STATUS_SOURCE,
    paint: {
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, px(4.5), 14, px(9)],
      'circle-color': '#4a525c',
      'circle-stroke-color': '#ff2d55',
      'circle-stroke-width': px(2),
    },
  };
}

export class CameraStatus {
  /**
   * `cameras` the map's cameras layer (a FeatureCollection), `Popup` MapLibre's popup
   * class, `cameraLayers` the ids of the layers that draw camera dots.
   */
  constructor({ api, map, Popup, cameras, cameraLayers }) {
    this.api = api;
    this.map = map;
    this.Popup = Popup;
    this.cameras = new Map((cameras?.features ?? []).map((f) => [f.properties?.id ?? f.id, f]));
    /** Status by camera id: {status, last_seen, offline_since}. */
    this.status = new Map();
    this.available = true;
    this.layers = [...cameraLayers, STATUS_LAYER];
    // One handler for every camera layer: a camera drawn offline is in two of them, and
    // it gets one card. A click on an incident or another alert drawn there is theirs;
    // the camera's own liveness alerts are drawn where it is and leave it its card.
    map.on('click', (ev) => {
      const above = ABOVE.filter((l) => map.getLayer(l));
      const others = above.length ? map.queryRenderedFeatures(ev.point, { layers: above }) : [];
      if (others.some((f) => !LIVENESS_RULES.includes(f.properties?.rule))) return;
      const layers = this.layers.filter((l) => map.getLayer(l));
      const features = map.queryRenderedFeatures(ev.point, { layers });
      if (features.length) this.pick({ lngLat: ev.lngLat, features });
    });
    for (const layer of this.layers) {
      map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'));
      map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''));
    }
  }

  /** Reads every camera's status, page by page. */
  async load() {
    const status = new Map();
    let after = null;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      let answer;
      try {
        const query = `limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`;
        answer = await this.api.get(`/api/v1/cameras/status?${query}`);
      } catch (e) {
        if ([403, 404].includes(e?.status)) this.available = false;
        else console.warn('camera status:', e?.message ?? e);
        return;
      }
      for (const c of answer.cameras ?? []) status.set(c.camera_id, c);
      after = answer.next_after;
      if (!after) break;
    }
    this.status = status;
    this.draw();
  }

  /** A feed alert: a camera gone silent or back. */
  applyAlert(msg) {
    const d = msg?.data;
    if (!d?.camera?.id || !['camera_offline', 'camera_online'].includes(d.rule)) return;
    const was = this.status.get(d.camera.id) ?? { camera_id: d.camera.id, name: d.camera.name, kind: d.camera.kind };
    const offline = d.rule === 'camera_offline';
    this.status.set(d.camera.id, {
      ...was,
      status: offline ? 'offline' : 'online',
      last_seen: d.liveness?.last_seen ?? was.last_seen,
      offline_since: offline ? d.liveness?.offline_since : null,
    });
    this.draw();
  }

  /** The offline cameras, as the status source's points. */
  features() {
    const out = [];
    for (const [id, s] of this.status) {
      if (s.status !== 'offline') continue;
      const f = this.cameras.get(id);
      const coordinates = f?.geometry?.coordinates ?? (Number.isFinite(s.lon) ? [s.lon, s.lat] : null);
      if (!coordinates) continue;
      out.push({ type: 'Feature', geometry: { type: 'Point', coordinates }, properties: { id, status: 'offline' } });
    }
    return out;
  }

  draw() {
    this.map.getSource(STATUS_SOURCE)?.setData({ type: 'FeatureCollection', features: this.features() });
  }

  /** A card at the clicked camera: its name, status and when it was last heard from. */
  pick(ev) {
    const p = ev.features?.[0]?.properties;
    const id = p?.id;
    if (!id) return;
    const s = this.status.get(id);
    const body = el('div', 'camera-card');
    body.dataset.camera = id;
    body.append(el('strong', '', featureName(this.cameras.get(id)?.properties ?? p) || id));
    if (this.available) {
      const status = s?.status ?? 'unknown';
      body.append(el('div', `camera-status camera-${status}`, t(`cameras.status.${status}`)));
      const seen = s?.last_seen ? Date.parse(s.last_seen) : NaN;
      const when = Number.isFinite(seen) ? `${dateLine(seen)} ${clock(seen)}` : t('cameras.never');
      body.append(el('div', 'camera-last-seen', t('cameras.last_seen', { when })));
    }
    new this.Popup({ closeButton: true, maxWidth: '24em' }).setLngLat(ev.lngLat).setDOMContent(body).addTo(this.map);
  }
}
