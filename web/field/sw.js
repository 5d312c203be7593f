// The field app's service worker (scope /field/): the app opens with no signal.
//
// - The shell (the page, its modules and style sheet, the wall map's shared helpers,
//   MapLibre GL JS and its worker, the manifest and icons) is kept at installation and
//   answered from the cache first; each answer from the cache is refreshed from the
//   network behind it, so the next start has the newest files.
// - The county's layers (`GET /api/v1/layers/…`) change with the map, not with the day:
//   answered from the cache when kept, and refreshed behind it only when the kept copy is
//   more than LAYERS_MAX_AGE_MS old, so a start on a weak signal neither waits for nor
//   spends 200 KB of GeoJSON.
// - Other API answers (whoami, plans, tasks, my reports, the route) go to the network
//   first and are kept; with no signal, or no answer within NETWORK_WAIT_MS while one is
//   kept, the kept answer is given. The app deletes this cache when the phone signs out.
// - Nothing else is touched: other methods, the live websocket, other origins.

const SHELL_CACHE = 'field-shell-v7';
const API_CACHE = 'field-api';
/** How long an API answer kept on the phone waits for a fresher one from the network. */
const NETWORK_WAIT_MS = 4000;
/** How old a kept layer may be before a start refreshes it behind the answer. */
const LAYERS_MAX_AGE_MS = 24 * 3600 * 1000;

const SHELL = [
  '/field/',
  '/field/main.js',
  '/field/i18n.js',
  '/field/strings.zh.js',
  '/field/strings.en.js',
  '/field/fieldmap.js',
  '/field/outbox.js',
  '/field/share.js',
  '/field/photos.js',
  '/field/sos.js',
  '/field/leader.js',
  '/field/tasks.js',
  '/field/reports.js',
  '/field/escalations.js',
  '/field/visits.js',
  '/field/map-worker.mjs',
  '/field/field.css',
  '/field/manifest.webmanifest',
  '/field/icon-192.png',
  '/field/icon-512.png',
  '/wallmap/api.js',
  '/wallmap/dom.js',
  '/wallmap/feed.js',
  '/node_modules/maplibre-gl/dist/maplibre-gl.mjs',
  '/node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs',
  '/node_modules/maplibre-gl/dist/maplibre-gl.css',
];

// The files are taken from the browser's HTTP cache where the page has just loaded them
// (`force-cache`): the worker is registered once the page has drawn its map, and a phone
// on a weak signal should not download MapLibre twice.
self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      .then((cache) =>
        Promise.all(
          SHELL.map(async (path) => {
            const res = await fetch(new Request(path, { cache: 'force-cache' }));
            if (!res.ok) throw new Error(`${path}: ${res.status}`);
            await cache.put(path, res);
          }),
        ),
      )
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith('field-shell-') && n !== SHELL_CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

/** The shell's key for a request: the page whatever its query, a file without its query. */
function shellKey(url) {
  if (url.pathname === '/field/' || url.pathname === '/field/index.html') return '/field/';
  return url.pathname;
}

async function fromShell(request, url) {
  const cache = await caches.open(SHELL_CACHE);
  const key = shellKey(url);
  const kept = await cache.match(key);
  const fresh = fetch(request).then(async (res) => {
    if (res.ok && res.type === 'basic') await cache.put(key, res.clone());
    return res;
  });
  if (kept) {
    fresh.catch(() => {});
    return kept;
  }
  return fresh;
}

async function fromNetwork(request) {
  const cache = await caches.open(API_CACHE);
  const fresh = fetch(request).then(async (res) => {
    if (res.ok) await cache.put(request, res.clone());
    return res;
  });
  const kept = await cache.match(request);
  if (!kept) return fresh;
  const late = new Promise((resolve) => setTimeout(() => resolve(kept), NETWORK_WAIT_MS));
  return Promise.race([fresh.catch(() => kept), late]);
}

/** The layers: the kept copy at once (refreshed behind it once a day); the network when none is kept. */
async function fromKept(request) {
  const cache = await caches.open(API_CACHE);
  const kept = await cache.match(request);
  const refresh = () =>
    fetch(request).then(async (res) => {
      if (res.ok) await cache.put(request, res.clone());
      return res;
    });
  if (!kept) return refresh();
  const age = Date.now() - Date.parse(kept.headers.get('date') ?? '');
  if (!(age < LAYERS_MAX_AGE_MS)) refresh().catch(() => {});
  return kept;
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/v1/')) {
    if (url.pathname === '/api/v1/live') return;
    event.respondWith(url.pathname.startsWith('/api/v1/layers/') ? fromKept(request) : fromNetwork(request));
  } else if (SHELL.includes(shellKey(url))) {
    event.respondWith(fromShell(request, url));
  }
});
