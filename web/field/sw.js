// The field app's service worker (scope /field/): the app opens with no signal.
//
// - The shell (the page, its modules and style sheet, the wall map's shared helpers,
//   MapLibre GL JS and its worker, the manifest and icons) is kept at installation and
//   answered from the cache first; each answer from the cache is refreshed from the
//   network behind it, so the next start has the newest files.
// - API answers (`GET /api/v1/…`: the county's layers, whoami, plans, tasks, my reports)
//   go to the network first and are kept; with no signal the kept answer is given. The
//   app deletes this cache when the phone signs out.
// - Nothing else is touched: other methods, the live websocket, other origins.

const SHELL_CACHE = 'field-shell-v1';
const API_CACHE = 'field-api';

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

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL))
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
  try {
    const res = await fetch(request);
    if (res.ok) await cache.put(request, res.clone());
    return res;
  } catch (e) {
    const kept = await cache.match(request);
    if (kept) return kept;
    throw e;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/v1/')) {
    if (url.pathname === '/api/v1/live') return;
    event.respondWith(fromNetwork(request));
  } else if (SHELL.includes(shellKey(url))) {
    event.respondWith(fromShell(request, url));
  }
});
