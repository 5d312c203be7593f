// The map's style and layers. Everything is drawn from GeoJSON the server serves from
// its map directory (`GET /api/v1/layers/{name}`) and from the live feed: no tiles, no
// sprite and no glyphs, so nothing is fetched from outside. Text labels would need
// glyph files, so the few labels the wall shows (township names) are HTML elements.

export const COLORS = {
  background: '#050d17',
  county: '#0b1b2c',
  countyLine: '#4fd1ff',
  township: '#0f2439',
  townshipLine: '#2e5f8a',
  grid: '#1b3a57',
  jurisdiction: '#8f7bff',
  post: '#2f7dff',
  route: '#35e0a1',
  unit: {
    moving: '#3dff8f',
    idle: '#2fd0ff',
    busy: '#ff9a1f',
    stale: '#7d8a99',
    doubtful: '#ffe14d',
  },
  camera: {
    checkpoint: '#ffa31a',
    skynet: '#8fd3f0',
    sharp_eyes: '#9ccc65',
    huiyan: '#c792ff',
    face: '#ff6bc1',
    parking: '#b9b4ff',
  },
  fence: {
    school: '#ffd166',
    scenic: '#06d6a0',
    commercial: '#ef476f',
    industrial: '#f78c6b',
    community: '#4cc9f0',
  },
  /** No-parking fences (禁停区), drawn the same whatever their kind. */
  noParking: '#ff5d5d',
  /** Current patrol plans: acknowledged, pending (dashed), escalated (red). */
  plan: { acknowledged: '#35e0a1', pending: '#ffd23f', escalated: '#ff2d55' },
  /** The hotspot heat ramp, from a faint cell to the hottest. */
  heat: ['#1d4f91', '#2fa4c7', '#ffd23f', '#ff7a1a', '#ff2d55'],
  track: '#ff4fd8',
  /** By alert priority: 1 red, 2 orange, 3 to 5 yellow. */
  priority: { 1: '#ff2d55', 2: '#ff7a1a', 3: '#ffd23f' },
};

import { DISPUTES_TOGGLE, DISPUTE_COLOR, disputeLayers } from './disputes.js';

const byPriority = ['match', ['get', 'priority'], 1, COLORS.priority[1], 2, COLORS.priority[2], COLORS.priority[3]];

/** An empty style: a dark background and nothing that needs a server. */
export function baseStyle() {
  return {
    version: 8,
    sources: {},
    layers: [{ id: 'background', type: 'background', paint: { 'background-color': COLORS.background } }],
  };
}

const byKind = (table, fallback) => ['match', ['get', 'kind'], ...Object.entries(table).flat(), fallback];

const byZoom = (z0, v0, z1, v1) => ['interpolate', ['linear'], ['zoom'], z0, v0, z1, v1];

/** Vehicles are drawn larger than people. */
const unitRadius = (r) => ['match', ['get', 'kind'], 'vehicle', r * 1.35, r];

/**
 * How much larger than on a 1920×1080 screen the map draws its dots and lines: the page's
 * root font size over its 20 px at 1920 wide (the CSS scales text with the screen's
 * width), never below 1. A 3840×2160 wall shown at one device pixel per CSS pixel gets 2.
 */
export function wallScale() {
  const rootPx = parseFloat(getComputedStyle(document.documentElement).fontSize) || 20;
  return Math.max(1, Math.round((rootPx / 20) * 100) / 100);
}

/** The paint and layout properties `layersOf` scales: what to set again when the scale changes. */
export const SCALED_PAINT = ['circle-radius', 'circle-stroke-width', 'line-width', 'line-blur', 'heatmap-radius'];
export const SCALED_LAYOUT = ['symbol-spacing', 'icon-size'];

/** The new-alert ring's radius at rest (the page animates it from there). */
export const FLASH_RADIUS = 14;

const roadWidth = (county, township, other) => ['match', ['get', 'class'], 'county', county, 'township', township, other];

/**
 * The toggles of the layer panel, in drawing order (first drawn lowest). `source` is the
 * map layer (or the live source) it draws from; `layers` the MapLibre layers it switches.
 * Cameras have one toggle per kind, drawn from one GPU layer each with a filter.
 */
export const TOGGLES = [
  { key: 'boundary', source: 'boundary', on: true },
  { key: 'townships', source: 'townships', on: true },
  { key: 'grids', source: 'grids', on: true },
  { key: 'jurisdictions', source: 'jurisdictions', on: false },
  { key: 'fences', source: 'fences', on: true },
  { key: 'no_parking', source: 'no_parking', on: true },
  { key: 'roads', source: 'roads', on: true },
  { key: 'hotspots', source: 'hotspots', on: true, live: true },
  { key: 'routes', source: 'routes', on: true },
  { key: 'plans', source: 'plans', on: true, live: true },
  { key: 'checkpoints', source: 'checkpoints', on: false },
  { key: 'posts', source: 'posts', on: true },
  ...Object.keys(COLORS.camera).map((kind) => ({ key: `cameras.${kind}`, source: 'cameras', kind, on: true })),
  DISPUTES_TOGGLE,
  { key: 'incidents', source: 'incidents', on: true, live: true },
  { key: 'tracks', source: 'tracks', on: true, live: true },
  { key: 'alerts', source: 'alerts', on: true, live: true },
  { key: 'units', source: 'units', on: true, live: true },
];

/**
 * The MapLibre layers of one toggle, with every size (radius, line width, blur, icon)
 * multiplied by `scale`: the wall's size over 1920×1080 (`wallScale`), so that a dot is
 * as large across the room on a 3840×2160 wall as on a 1920×1080 one.
 */
export function layersOf(toggle, scale = 1) {
  const id = toggle.key.replace('.', '-');
  const src = toggle.source;
  const px = (v) => v * scale;
  const sizeByZoom = (z0, v0, z1, v1) => byZoom(z0, px(v0), z1, px(v1));
  switch (toggle.key) {
    case 'boundary':
      return [
        { id: 'boundary-fill', type: 'fill', source: src, paint: { 'fill-color': COLORS.county } },
        {
          id: 'boundary-glow',
          type: 'line',
          source: src,
          paint: { 'line-color': COLORS.countyLine, 'line-width': px(9), 'line-opacity': 0.18, 'line-blur': px(4) },
        },
        { id: 'boundary-line', type: 'line', source: src, paint: { 'line-color': COLORS.countyLine, 'line-width': px(2.5) } },
      ];
    case 'townships':
      return [
        { id: 'townships-fill', type: 'fill', source: src, paint: { 'fill-color': COLORS.township, 'fill-opacity': 0.55 } },
        {
          id: 'townships-line',
          type: 'line',
          source: src,
          paint: { 'line-color': COLORS.townshipLine, 'line-width': sizeByZoom(8, 1, 13, 2.5) },
        },
      ];
    case 'grids':
      return [
        {
          id: 'grids-line',
          type: 'line',
          source: src,
          paint: { 'line-color': COLORS.grid, 'line-width': sizeByZoom(8, 0.4, 13, 1.2), 'line-opacity': 0.8 },
        },
      ];
    case 'jurisdictions':
      return [
        {
          id: 'jurisdictions-line',
          type: 'line',
          source: src,
          paint: { 'line-color': COLORS.jurisdiction, 'line-width': px(1.6), 'line-dasharray': [3, 2], 'line-opacity': 0.9 },
        },
      ];
    case 'fences':
      return [
        {
          id: 'fences-fill',
          type: 'fill',
          source: src,
          paint: { 'fill-color': byKind(COLORS.fence, '#cccccc'), 'fill-opacity': 0.22 },
        },
        {
          id: 'fences-line',
          type: 'line',
          source: src,
          paint: { 'line-color': byKind(COLORS.fence, '#cccccc'), 'line-width': px(2), 'line-dasharray': [2, 1] },
        },
      ];
    case 'no_parking':
      return [
        { id: 'no_parking-fill', type: 'fill', source: src, paint: { 'fill-color': COLORS.noParking, 'fill-opacity': 0.3 } },
        {
          id: 'no_parking-line',
          type: 'line',
          source: src,
          paint: { 'line-color': COLORS.noParking, 'line-width': px(1.6), 'line-dasharray': [1, 1] },
        },
      ];
    case 'roads':
      return [
        {
          id: 'roads-line',
          type: 'line',
          source: src,
          layout: { 'line-cap': 'round', 'line-join': 'round' },
          paint: {
            'line-color': ['match', ['get', 'class'], 'county', '#d9b26f', 'township', '#a88d62', '#6f6552'],
            // A zoom curve must be the outermost expression; the road class picks the width at each stop.
            'line-width': ['interpolate', ['linear'], ['zoom'], 8, roadWidth(px(1.6), px(1.1), px(0.6)), 14, roadWidth(px(6), px(4), px(2.5))],
          },
        },
      ];
    case 'routes':
      return [
        {
          id: 'routes-line',
          type: 'line',
          source: src,
          layout: { 'line-cap': 'round', 'line-join': 'round' },
          paint: { 'line-color': COLORS.route, 'line-width': sizeByZoom(8, 1.6, 14, 5), 'line-opacity': 0.75 },
        },
      ];
    case 'hotspots': {
      // `heat` is the cell's density over the densest cell's (0–1), set by the page. A
      // 250 m cell is a few pixels at county zoom: there a heatmap of the cells' centres
      // shows where, and it gives way to the cells themselves as the map zooms in.
      const heat = (lo, hi) => ['interpolate', ['linear'], ['get', 'heat'], 0, lo, 1, hi];
      return [
        {
          id: 'hotspots-heat',
          type: 'heatmap',
          source: src,
          filter: ['==', ['geometry-type'], 'Point'],
          paint: {
            'heatmap-weight': ['get', 'heat'],
            'heatmap-radius': sizeByZoom(8, 14, 13, 70),
            'heatmap-intensity': byZoom(8, 1.2, 13, 2),
            'heatmap-color': [
              'interpolate', ['linear'], ['heatmap-density'],
              0, 'rgba(0,0,0,0)', 0.15, 'rgba(29,79,145,0.45)', 0.35, COLORS.heat[1], 0.55, COLORS.heat[2], 0.8, COLORS.heat[3], 1, COLORS.heat[4],
            ],
            'heatmap-opacity': byZoom(11, 0.8, 14, 0),
          },
        },
        {
          id: 'hotspots-fill',
          type: 'fill',
          source: src,
          filter: ['==', ['geometry-type'], 'Polygon'],
          paint: {
            'fill-color': ['interpolate', ['linear'], ['get', 'heat'], 0, COLORS.heat[0], 0.25, COLORS.heat[1], 0.5, COLORS.heat[2], 0.75, COLORS.heat[3], 1, COLORS.heat[4]],
            'fill-opacity': ['interpolate', ['linear'], ['zoom'], 11, heat(0.05, 0.2), 14, heat(0.3, 0.75)],
          },
        },
      ];
    }
    case 'plans': {
      const color = ['case', ['get', 'escalated'], COLORS.plan.escalated, ['==', ['get', 'status'], 'pending'], COLORS.plan.pending, COLORS.plan.acknowledged];
      const width = sizeByZoom(8, 2.5, 14, 6);
      // line-dasharray cannot follow a property: pending plans are a second, dashed layer.
      return [
        {
          id: 'plans-line',
          type: 'line',
          source: src,
          filter: ['!=', ['get', 'status'], 'pending'],
          layout: { 'line-cap': 'round', 'line-join': 'round' },
          paint: { 'line-color': color, 'line-width': width, 'line-opacity': 0.95 },
        },
        {
          id: 'plans-pending',
          type: 'line',
          source: src,
          filter: ['==', ['get', 'status'], 'pending'],
          layout: { 'line-join': 'round' },
          paint: { 'line-color': color, 'line-width': width, 'line-dasharray': [2, 1.2] },
        },
      ];
    }
    case 'tracks':
      // The selected alert's fused track: faint where it began, bright where it ends,
      // with arrows along it (an image the page draws itself) and a dot per sighting.
      return [
        {
          id: 'tracks-line',
          type: 'line',
          source: src,
          filter: ['==', ['geometry-type'], 'LineString'],
          layout: { 'line-cap': 'round', 'line-join': 'round' },
          paint: {
            'line-width': sizeByZoom(8, 4, 14, 8),
            'line-gradient': ['interpolate', ['linear'], ['line-progress'], 0, 'rgba(255,79,216,0.25)', 1, COLORS.track],
          },
        },
        {
          id: 'tracks-arrows',
          type: 'symbol',
          source: src,
          filter: ['==', ['geometry-type'], 'LineString'],
          layout: {
            'symbol-placement': 'line',
            'symbol-spacing': px(70),
            'icon-size': scale,
            'icon-image': 'track-arrow',
            'icon-rotation-alignment': 'map',
            'icon-allow-overlap': true,
            'icon-ignore-placement': true,
          },
        },
        {
          id: 'tracks-points',
          type: 'circle',
          source: src,
          filter: ['==', ['geometry-type'], 'Point'],
          paint: {
            'circle-radius': ['case', ['get', 'last'], px(9), px(5)],
            'circle-color': ['case', ['get', 'last'], COLORS.track, '#02060b'],
            'circle-stroke-color': COLORS.track,
            'circle-stroke-width': px(2.5),
          },
        },
      ];
    case 'checkpoints':
      return [
        {
          id: 'checkpoints-circle',
          type: 'circle',
          source: src,
          paint: {
            'circle-radius': sizeByZoom(8, 3, 14, 7),
            'circle-color': COLORS.background,
            'circle-stroke-color': COLORS.route,
            'circle-stroke-width': px(2),
          },
        },
      ];
    case 'posts':
      return [
        {
          id: 'posts-circle',
          type: 'circle',
          source: src,
          paint: {
            // A white disc in a thick blue ring: unlike any unit or camera dot.
            'circle-radius': sizeByZoom(8, 7, 14, 13),
            'circle-color': '#ffffff',
            'circle-stroke-color': COLORS.post,
            'circle-stroke-width': px(4),
          },
        },
      ];
    case 'incidents':
      return [
        {
          id: 'incidents-circle',
          type: 'circle',
          source: src,
          paint: {
            'circle-radius': sizeByZoom(8, 9, 14, 16),
            // Filled faintly so that a click inside the ring picks the incident.
            'circle-color': 'rgba(255,154,31,0.12)',
            // Red while nobody is sent or a step is late; orange once handled.
            'circle-stroke-color': ['case', ['any', ['==', ['get', 'state'], 'new'], ['!=', ['get', 'escalation'], 'none']], '#ff2d55', '#ff9a1f'],
            'circle-stroke-width': px(3),
          },
        },
        {
          id: 'incidents-selected',
          type: 'circle',
          source: src,
          filter: ['==', ['get', 'selected'], true],
          paint: {
            'circle-radius': sizeByZoom(8, 15, 14, 24),
            'circle-color': 'rgba(0,0,0,0)',
            'circle-stroke-color': '#ffffff',
            'circle-stroke-width': px(2.5),
            'circle-stroke-opacity': 0.9,
          },
        },
      ];
    case 'alerts':
      return [
        {
          id: 'alerts-circle',
          type: 'circle',
          source: src,
          paint: {
            'circle-radius': sizeByZoom(8, 6, 14, 12),
            'circle-color': byPriority,
            'circle-opacity': 0.9,
            'circle-stroke-color': '#ffffff',
            'circle-stroke-width': px(1.5),
          },
        },
        {
          // New alerts flash: the ring's radius and opacity are animated while any are fresh.
          id: 'alerts-flash',
          type: 'circle',
          source: src,
          filter: ['==', ['get', 'fresh'], true],
          paint: {
            'circle-radius': px(FLASH_RADIUS),
            'circle-color': 'rgba(0,0,0,0)',
            'circle-stroke-color': byPriority,
            'circle-stroke-width': px(3),
            'circle-stroke-opacity': 0.9,
          },
        },
      ];
    case 'units':
      return [
        {
          id: 'units-circle',
          type: 'circle',
          source: src,
          paint: {
            'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, unitRadius(px(7)), 14, unitRadius(px(12))],
            'circle-color': ['match', ['get', 'status'], ...Object.entries(COLORS.unit).flat(), '#ffffff'],
            'circle-stroke-color': '#02060b',
            'circle-stroke-width': px(1.5),
          },
        },
      ];
    case 'disputes':
      return disputeLayers(src, scale);
    default:
      if (toggle.source === 'cameras') {
        return [
          {
            id,
            type: 'circle',
            source: src,
            filter: ['==', ['get', 'kind'], toggle.kind],
            paint: {
              'circle-radius': sizeByZoom(8, 3, 14, 7),
              'circle-color': COLORS.camera[toggle.kind],
              'circle-stroke-color': '#02060b',
              'circle-stroke-width': px(1),
            },
          },
        ];
      }
      return [];
  }
}

/** The swatch colour shown beside a toggle in the layer panel. */
export function swatchOf(toggle) {
  if (toggle.source === 'cameras') return COLORS.camera[toggle.kind];
  return {
    boundary: COLORS.countyLine,
    townships: COLORS.townshipLine,
    grids: '#3b6a93',
    jurisdictions: COLORS.jurisdiction,
    fences: COLORS.fence.school,
    no_parking: COLORS.noParking,
    roads: '#d9b26f',
    routes: COLORS.route,
    checkpoints: COLORS.route,
    posts: COLORS.post,
    incidents: '#ff9a1f',
    disputes: DISPUTE_COLOR,
    hotspots: COLORS.heat[3],
    plans: COLORS.plan.pending,
    tracks: COLORS.track,
    alerts: COLORS.priority[1],
    units: COLORS.unit.moving,
  }[toggle.key];
}

/** Options of the live sources that need more than GeoJSON data. */
export const SOURCE_OPTIONS = {
  // line-gradient needs the line's progress along it.
  tracks: { lineMetrics: true },
};

/**
 * The arrow drawn along a track, pointing east (MapLibre turns it along the line): an
 * image made here, since the style has no sprite to fetch.
 */
export function arrowImage(size = 24) {
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const g = canvas.getContext('2d');
  g.fillStyle = '#ffffff';
  g.strokeStyle = '#02060b';
  g.lineWidth = 2;
  g.beginPath();
  g.moveTo(size * 0.2, size * 0.18);
  g.lineTo(size * 0.85, size * 0.5);
  g.lineTo(size * 0.2, size * 0.82);
  g.lineTo(size * 0.38, size * 0.5);
  g.closePath();
  g.stroke();
  g.fill();
  return g.getImageData(0, 0, size, size);
}

export function emptyCollection() {
  return { type: 'FeatureCollection', features: [] };
}

/** The bounding box `[minLon, minLat, maxLon, maxLat]` of a FeatureCollection. */
export function bboxOf(fc) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const visit = (c) => {
    if (typeof c[0] === 'number') {
      b[0] = Math.min(b[0], c[0]);
      b[1] = Math.min(b[1], c[1]);
      b[2] = Math.max(b[2], c[0]);
      b[3] = Math.max(b[3], c[1]);
    } else {
      for (const x of c) visit(x);
    }
  };
  for (const f of fc.features) if (f.geometry) visit(f.geometry.coordinates);
  return b;
}
