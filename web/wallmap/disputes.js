// The places with repeated disputes (矛盾纠纷多发点): where the mediation cases of the last
// half year gather, from `GET /api/v1/mediation/places` ({"places": [{lon, lat, count,
// last_ms, case_ids, township}]}). A live source of its own, toggled in the layer panel
// and off at first; a dot grows with the number of disputes. A server without the
// endpoint (404, or 400/405 from a neighbouring route), or a role that may not read it
// (403), hides the toggle and draws nothing.

import { t, clock, dateLine, placeName } from './i18n.js';
import { el } from './dom.js';

/** The layer panel's toggle: a live source, drawn above the incidents' layer in TOGGLES. */
export const DISPUTES_TOGGLE = { key: 'disputes', source: 'disputes', on: false, live: true };

export const DISPUTE_COLOR = '#c6ff00';

/** How often the places are read again: they change with cases, slowly. */
const REFRESH_MS = 5 * 60 * 1000;

/**
 * The MapLibre layers of the places, with every size multiplied by `scale` (as
 * `layersOf` does): a ring whose radius grows with the count (2 disputes smallest, 10 and
 * more largest), and the count's weight in its fill.
 */
export function disputeLayers(source, scale = 1) {
  const px = (v) => v * scale;
  const byCount = (lo, hi) => ['interpolate', ['linear'], ['get', 'count'], 2, px(lo), 10, px(hi)];
  return [
    {
      id: 'disputes-circle',
      type: 'circle',
      source,
      paint: {
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, byCount(6, 14), 14, byCount(12, 26)],
        'circle-color': DISPUTE_COLOR,
        'circle-opacity': ['interpolate', ['linear'], ['get', 'count'], 2, 0.25, 10, 0.6],
        'circle-stroke-color': DISPUTE_COLOR,
        'circle-stroke-width': px(2.5),
      },
    },
  ];
}

/** The endpoint's answer as a FeatureCollection; places without a finite place are left out. */
export function placesCollection(answer) {
  const places = Array.isArray(answer?.places) ? answer.places : [];
  return {
    type: 'FeatureCollection',
    features: places
      .filter((p) => Number.isFinite(p?.lon) && Number.isFinite(p?.lat))
      .map((p) => ({
        type: 'Feature',
        geometry: { type: 'Point', coordinates: [p.lon, p.lat] },
        properties: {
          count: Number(p.count) || 0,
          last_ms: Number(p.last_ms) || 0,
          township: p.township ?? null,
          // MapLibre flattens arrays in properties to strings; kept as text for the card.
          case_ids: (Array.isArray(p.case_ids) ? p.case_ids : []).join(', '),
        },
      })),
  };
}

/**
 * The layer's data and its card. `map` is the MapLibre map with the `disputes` source,
 * `api` the page's API, `Popup` MapLibre's popup class, `onUnavailable` what hides the
 * toggle when the server has no such places for this caller.
 */
export class Disputes {
  constructor({ api, map, Popup, onUnavailable }) {
    this.api = api;
    this.map = map;
    this.Popup = Popup;
    this.onUnavailable = onUnavailable;
    this.available = true;
    this.timer = null;
    map.on('click', 'disputes-circle', (ev) => this.pick(ev));
    map.on('mouseenter', 'disputes-circle', () => (map.getCanvas().style.cursor = 'pointer'));
    map.on('mouseleave', 'disputes-circle', () => (map.getCanvas().style.cursor = ''));
  }

  /** Reads the places now and then every few minutes, until the endpoint proves absent. */
  async start() {
    await this.refresh();
    if (this.available) this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  async refresh() {
    if (!this.available) return;
    let answer;
    try {
      answer = await this.api.get('/api/v1/mediation/places?days=180&min=2');
    } catch (e) {
      if ([400, 403, 404, 405].includes(e?.status)) {
        // Not this server's (a server before the endpoint may answer the path as another
        // route's: 400 or 405), or not this role's: as if the layer did not exist.
        this.available = false;
        clearInterval(this.timer);
        this.onUnavailable?.();
      } else {
        console.warn('dispute places:', e?.message ?? e);
      }
      return;
    }
    this.map.getSource('disputes')?.setData(placesCollection(answer));
  }

  /** A card at the clicked place: how many disputes, the last one's date, the cases. */
  pick(ev) {
    const p = ev.features?.[0]?.properties;
    if (!p) return;
    const body = el('div', 'dispute-card');
    body.append(el('strong', '', t('disputes.title', { count: p.count })));
    if (p.township && p.township !== 'null') body.append(el('div', '', placeName(p.township)));
    if (Number(p.last_ms) > 0) {
      body.append(el('div', '', t('disputes.last', { when: `${dateLine(Number(p.last_ms))} ${clock(Number(p.last_ms), false)}` })));
    }
    if (p.case_ids) body.append(el('div', '', t('disputes.cases', { ids: p.case_ids })));
    new this.Popup({ closeButton: true, maxWidth: '24em' }).setLngLat(ev.lngLat).setDOMContent(body).addTo(this.map);
  }
}
