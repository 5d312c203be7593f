// The field app's map: the county's layers from the server (kept by the service worker,
// so the map opens with no signal) drawn light for sunlight, and the app's own overlays
// (the team's plan, its checkpoints and hotspot cells, the members, this phone, a task's
// place and the way there, a report's place). No tiles, no sprite, no glyphs: nothing is
// fetched from anywhere but this server, and names are listed in the panels.
//
// MapLibre GL JS (1.7 MB with its worker and style sheet) is loaded after the app is
// usable, not before: on a weak signal the SOS button, the tasks and the banner must not
// wait for the map. Until the map is there, what the app draws is kept and drawn on load.

const MAPLIBRE = '/node_modules/maplibre-gl/dist/maplibre-gl.mjs';
const MAPLIBRE_CSS = '/node_modules/maplibre-gl/dist/maplibre-gl.css';
/**
 * MapLibre's worker, started from the field app's own scope (see `map-worker.mjs`) so
 * that the service worker answers it with no signal, and named without the `?v=`
 * MapLibre would add, so that the installation finds it under the name it keeps.
 */
const MAPLIBRE_WORKER = '/field/map-worker.mjs';

/** The county's layers the phone draws, bottom to top. */
export const LAYERS = ['boundary', 'townships', 'roads', 'posts'];

/** The overlays the app fills, each a GeoJSON source. */
const OVERLAYS = ['plan', 'stops', 'cells', 'members', 'me', 'target', 'way', 'pick'];

const empty = () => ({ type: 'FeatureCollection', features: [] });

export function bboxOf(fc) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      b[0] = Math.min(b[0], c[0]);
      b[1] = Math.min(b[1], c[1]);
      b[2] = Math.max(b[2], c[0]);
      b[3] = Math.max(b[3], c[1]);
    } else c.forEach(walk);
  };
  for (const f of fc?.features ?? []) if (f.geometry) walk(f.geometry.coordinates);
  return b;
}

function style(layers) {
  const sources = {};
  for (const [name, fc] of Object.entries(layers)) sources[name] = { type: 'geojson', data: fc };
  for (const name of OVERLAYS) sources[name] = { type: 'geojson', data: empty() };
  const has = (n) => n in layers;
  const stopColor = ['match', ['get', 'state'], 'visited', '#0a6b2d', 'late', '#c8102e', 'skipped', '#c8102e', '#0047b3'];
  return {
    version: 8,
    sources,
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#f4f1ea' } },
      ...(has('boundary')
        ? [
            { id: 'boundary-fill', type: 'fill', source: 'boundary', paint: { 'fill-color': '#ffffff' } },
            { id: 'boundary-line', type: 'line', source: 'boundary', paint: { 'line-color': '#000', 'line-width': 2.5 } },
          ]
        : []),
      ...(has('townships')
        ? [{ id: 'townships-line', type: 'line', source: 'townships', paint: { 'line-color': '#8a8a8a', 'line-width': 1, 'line-dasharray': [3, 2] } }]
        : []),
      ...(has('roads') ? [{ id: 'roads-line', type: 'line', source: 'roads', paint: { 'line-color': '#5a5a5a', 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 1, 15, 4] } }] : []),
      ...(has('posts') ? [{ id: 'posts-circle', type: 'circle', source: 'posts', paint: { 'circle-radius': 5, 'circle-color': '#0b2545', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } }] : []),
      { id: 'cells-fill', type: 'fill', source: 'cells', paint: { 'fill-color': '#ff7a1a', 'fill-opacity': 0.35, 'fill-outline-color': '#8a3b00' } },
      { id: 'plan-line', type: 'line', source: 'plan', paint: { 'line-color': '#0047b3', 'line-width': 5, 'line-opacity': 0.85 } },
      { id: 'way-line', type: 'line', source: 'way', paint: { 'line-color': '#c8102e', 'line-width': 5, 'line-dasharray': [2, 1] } },
      { id: 'stops-circle', type: 'circle', source: 'stops', paint: { 'circle-radius': 8, 'circle-color': '#fff', 'circle-stroke-color': stopColor, 'circle-stroke-width': 4 } },
      { id: 'target-circle', type: 'circle', source: 'target', paint: { 'circle-radius': 11, 'circle-color': '#c8102e', 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } },
      { id: 'pick-circle', type: 'circle', source: 'pick', paint: { 'circle-radius': 10, 'circle-color': '#ffd23f', 'circle-stroke-color': '#000', 'circle-stroke-width': 3 } },
      { id: 'members-circle', type: 'circle', source: 'members', paint: { 'circle-radius': 7, 'circle-color': '#0a6b2d', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } },
      { id: 'me-circle', type: 'circle', source: 'me', paint: { 'circle-radius': 9, 'circle-color': '#0047b3', 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } },
    ],
  };
}

export class FieldMap {
  /**
   * Starts drawing the county in the element `container`: `layers()` answers its layers
   * (name → FeatureCollection); MapLibre and its style sheet are loaded meanwhile.
   * `loaded` resolves once the map is drawn.
   */
  constructor(container, layers) {
    this.map = null;
    this.bbox = null;
    /** What each overlay was last given (the features), as the browser test reads it. */
    this.drawn = {};
    this.loaded = this.load(container, layers);
  }

  async load(container, layers) {
    const css = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: MAPLIBRE_CSS });
    document.head.append(css);
    const [maplibregl, data] = await Promise.all([import(MAPLIBRE), layers()]);
    maplibregl.setWorkerUrl(MAPLIBRE_WORKER);
    this.bbox = bboxOf(data.boundary ?? data.townships ?? empty());
    const bounds = Number.isFinite(this.bbox[0]) ? this.bbox : undefined;
    const map = new maplibregl.Map({
      container,
      style: style(data),
      bounds,
      fitBoundsOptions: { padding: 16 },
      attributionControl: false,
      fadeDuration: 0,
      maxZoom: 18,
      dragRotate: false,
      pitchWithRotate: false,
      touchPitch: false,
    });
    map.touchZoomRotate.disableRotation();
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    await new Promise((resolve) => map.once('load', resolve));
    this.map = map;
    document.documentElement.dataset.map = 'ready';
  }

  async set(name, features) {
    await this.loaded;
    this.map.getSource(name)?.setData({ type: 'FeatureCollection', features });
    this.drawn[name] = features;
  }

  /** Shows `coords` (`[[lon, lat], …]`) on screen. */
  async fit(coords, maxZoom = 15) {
    await this.loaded;
    if (!coords.length) return;
    const b = bboxOf({ features: [{ geometry: { coordinates: coords } }] });
    this.map.fitBounds(b, { padding: 40, maxZoom, animate: false });
  }

  /** Calls `fn([lon, lat])` when the map is tapped. */
  async onTap(fn) {
    await this.loaded;
    this.map.on('click', (e) => fn([e.lngLat.lng, e.lngLat.lat]));
  }
}

export const point = (lon, lat, properties = {}) => ({ type: 'Feature', properties, geometry: { type: 'Point', coordinates: [lon, lat] } });
