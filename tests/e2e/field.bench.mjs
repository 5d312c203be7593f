// The field app's load budget on a slow mobile network, in a real headless Chromium with
// phone emulation (390×844, touch) against a release `liandong serve` on the Dazhu demo
// map, with a fresh data directory and an ephemeral loopback port.
//
// The network is a shaping proxy in this script between Chromium and the server: 400 ms
// round trip (200 ms each way, and one round trip before a new connection carries data)
// and 400 kbit/s down and 400 kbit/s up, shared by all of the phone's connections (a
// "slow 4G" profile; DevTools' "Slow 3G" preset has the same bandwidth). A proxy rather
// than DevTools throttling, because DevTools throttles only the page: the service
// worker's own fetches (its installation, its refreshes) would go at full speed, and a
// phone's do not. For RUNS phones, each a fresh browser context (nothing cached), a post
// officer's phone opens the QR code's link:
//
//   - first visit: from navigation start to usable (signed in, the task panel and the
//     SOS and sharing buttons live: the page's `field-usable` mark) and to the map drawn
//     (`field-map`), and the bytes that crossed the link (both ways, page and service
//     worker) until the map was drawn;
//   - repeat visit: the same phone opens the app again once its service worker holds
//     the shell, the same three figures.
//
//   ./scripts/bench field      (builds the release binary, then runs this)
//   LIANDONG_BIN=target/release/liandong node tests/e2e/field.bench.mjs
//
// Environment: LIANDONG_BIN, RUNS (5), RTT_MS (400), KBPS (400), CHROMIUM.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN, CHROMIUM_ARGS, startServer, stopServer } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const BIN = path.resolve(ROOT, process.env.LIANDONG_BIN || path.join(process.env.CARGO_TARGET_DIR || 'target', 'release', 'liandong'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUNS = Number(process.env.RUNS || 5);
const RTT_MS = Number(process.env.RTT_MS || 400);
const KBPS = Number(process.env.KBPS || 400);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-field-bench-'));
let server = null;
process.on('exit', () => {
  server?.proc.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

async function api(base, method, urlPath, token, body) {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** One visit of `url` in `page`: usable and map times (ms), KiB across the link, requests (and how many the worker served). */
async function visit(page, link, url) {
  let requests = 0;
  let fromWorker = 0;
  const count = (res) => {
    requests += 1;
    if (res.fromServiceWorker()) fromWorker += 1;
  };
  page.on('response', count);
  const before = link.bytes();
  await page.goto(url, { waitUntil: 'commit', timeout: 120_000 });
  await page.waitForFunction(() => performance.getEntriesByName('field-map').length > 0, null, { timeout: 180_000, polling: 50 });
  const marks = await page.evaluate(() => ({
    usable: performance.getEntriesByName('field-usable')[0].startTime,
    map: performance.getEntriesByName('field-map')[0].startTime,
  }));
  page.off('response', count);
  return { usable_ms: Math.round(marks.usable), map_ms: Math.round(marks.map), kbytes: Math.round((link.bytes() - before) / 1024), requests, from_worker: fromWorker };
}

/**
 * A TCP proxy to `port` on 127.0.0.1 shaped like a slow mobile link: each direction a
 * queue shared by every connection, `kbps` kilobits a second, delivered `rttMs / 2` after
 * it leaves the queue; a new connection waits one round trip before it carries data.
 * Answers `{ port, bytes(), close() }`.
 */
function shapedLink(port, rttMs, kbps) {
  const bytesPerMs = (kbps * 1000) / 8 / 1000;
  const lanes = { up: 0, down: 0 };
  let bytes = 0;
  /** When a chunk of `size` bytes sent now on `lane` arrives, in ms from now. */
  const arrival = (lane, size) => {
    const now = performance.now();
    const start = Math.max(now, lanes[lane]);
    lanes[lane] = start + size / bytesPerMs;
    bytes += size;
    return lanes[lane] - now + rttMs / 2;
  };
  const sockets = new Set();
  const proxy = net.createServer((client) => {
    sockets.add(client);
    client.pause();
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(upstream);
    const pipe = (from, to, lane) => {
      from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), arrival(lane, chunk.length)));
      from.on('end', () => setTimeout(() => to.end(), arrival(lane, 0)));
      from.on('error', () => to.destroy());
      from.on('close', () => sockets.delete(from));
    };
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
    setTimeout(() => client.resume(), rttMs);
  });
  return new Promise((resolve) => {
    proxy.listen(0, '127.0.0.1', () =>
      resolve({
        port: proxy.address().port,
        bytes: () => bytes,
        close: () => {
          for (const s of sockets) s.destroy();
          proxy.close();
        },
      }),
    );
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  server = await startServer({ bin: BIN, root: ROOT, dataDir });
  const direct = `http://${server.addr}`;
  const link = await shapedLink(Number(server.addr.split(':').pop()), RTT_MS, KBPS);
  const base = `http://127.0.0.1:${link.port}`;
  const device = { device_id: 'bench-post-02', name: '商圈警务室 王警官', kind: 'post_officer', unit_id: 'post-02', key: 'key-bench-post-02' };
  await api(direct, 'POST', '/api/v1/devices', ADMIN, device);
  const qr = `${base}/field/#server=${encodeURIComponent(base)}&device=${device.device_id}&key=${device.key}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const rows = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      const context = await browser.newContext({
        viewport: { width: 390, height: 844 },
        deviceScaleFactor: 2,
        hasTouch: true,
        isMobile: true,
        locale: 'zh-CN',
        timezoneId: 'Asia/Shanghai',
        permissions: ['geolocation'],
        geolocation: { longitude: 107.2032, latitude: 30.7351, accuracy: 8 },
      });
      const page = await context.newPage();
      const first = await visit(page, link, qr);
      await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 120_000 });
      // The worker has kept the shell and the layers (its installation and the first
      // visit's answers) before the phone is put away.
      await page.evaluate(async () => {
        await navigator.serviceWorker.ready;
        const shell = await caches.keys().then((k) => k.find((n) => n.startsWith('field-shell-')));
        const cache = await caches.open(shell);
        while ((await cache.keys()).length < 20) await new Promise((r) => setTimeout(r, 100));
      });
      const repeat = await visit(page, link, `${base}/field/`);
      rows.push({ run, first, repeat });
      console.log(JSON.stringify({ run, first, repeat }));
      await context.close();
    }
  } finally {
    await browser.close();
    link.close();
    await stopServer(server);
    server = null;
  }
  const summary = {};
  for (const kind of ['first', 'repeat']) {
    summary[kind] = Object.fromEntries(['usable_ms', 'map_ms', 'kbytes', 'requests', 'from_worker'].map((k) => [k, median(rows.map((r) => r[kind][k]))]));
  }
  console.log(`== field app, ${RUNS} phones, ${RTT_MS} ms RTT, ${KBPS} kbit/s down and up (medians)`);
  console.log('visit   usable_ms  map_ms  KiB on the link  requests  from the service worker');
  for (const kind of ['first', 'repeat']) {
    const s = summary[kind];
    console.log(`${kind.padEnd(7)} ${String(s.usable_ms).padStart(9)} ${String(s.map_ms).padStart(7)} ${String(s.kbytes).padStart(16)} ${String(s.requests).padStart(9)} ${String(s.from_worker).padStart(24)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
