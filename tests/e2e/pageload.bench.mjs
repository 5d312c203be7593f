// The wall map's page-load budget, in a real headless Chromium (Debian's `chromium`,
// WebGL in SwiftShader: no GPU here) against a release `liandong serve` on the Dazhu demo
// map, with a fresh data directory and an ephemeral loopback port:
//
//   1. 2,000 devices are registered and each given a position inside the county;
//   2. RUNS times, in a fresh browser context each (nothing cached), the time from
//      navigation start to the first full render: the county's layers drawn and all
//      2,000 units in the units source and rendered — the first map `idle` after the
//      units source holds every unit;
//   3. the frame rate while the 2,000 units move: every unit reports a new position
//      every second for MOVE_S seconds; the page counts animation frames, map renders,
//      unit redraws and the reports it applied. Measured twice in the same run: with the
//      page's pacing (units stop gliding and are redrawn less often while frames are
//      slow) and with `?pace=off` (every unit glides every frame).
//
//   ./scripts/bench wallmap      (builds the release binary, then runs this)
//   LIANDONG_BIN=target/release/liandong node tests/e2e/pageload.bench.mjs
//
// Environment: LIANDONG_BIN, RUNS (5), UNITS (2000), MOVE_S (10), CHROMIUM.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ADMIN, OPERATOR, CHROMIUM_ARGS } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const BIN = path.resolve(ROOT, process.env.LIANDONG_BIN || path.join(process.env.CARGO_TARGET_DIR || 'target', 'release', 'liandong'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUNS = Number(process.env.RUNS || 5);
const UNITS = Number(process.env.UNITS || 2000);
const MOVE_S = Number(process.env.MOVE_S || 10);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liandong-pageload-'));
let server = null;
let base = null;
process.on('exit', () => {
  server?.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(130));
}

function startServer() {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: cargo build --release -p liandong first`);
  const proc = spawn(BIN, ['serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      LIANDONG_CONFIG: path.join(ROOT, 'config/demo.toml'),
      // The demo's JT/T 808 listener on a port of its own, so that servers run side by side.
      LIANDONG_JT808_LISTEN: '127.0.0.1:0',
      LIANDONG_LISTEN: '127.0.0.1:0',
      LIANDONG_DATA_DIR: dataDir,
      LIANDONG_MAPS: path.join(ROOT, 'maps/dazhu'),
      LIANDONG_WEB_DIR: path.join(ROOT, 'web'),
      LIANDONG_LOG: 'info',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start within 60 s')), 60_000);
    proc.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
    readline.createInterface({ input: proc.stderr }).on('line', (line) => {
      const m = /listening.*addr=(\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, addr: m[1] });
      }
    });
  });
}

async function api(method, urlPath, token, body) {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${urlPath}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Runs `fn` over `items` with at most `n` at a time. */
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Ray casting on the boundary's outer rings (holes ignored: the county has none that matter here). */
function inside(rings, [x, y]) {
  let hit = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
    }
  }
  return hit;
}

/** `n` points inside the county, from a fixed seed (the same picture every run). */
function countyPoints(n) {
  const boundary = JSON.parse(fs.readFileSync(path.join(ROOT, 'maps/dazhu/boundary.geojson'), 'utf8'));
  const rings = [];
  for (const f of boundary.features) {
    const g = f.geometry;
    const polys = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
    for (const p of polys) rings.push(p[0]);
  }
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const r of rings) for (const [x, y] of r) [b[0], b[1], b[2], b[3]] = [Math.min(b[0], x), Math.min(b[1], y), Math.max(b[2], x), Math.max(b[3], y)];
  let seed = 20261127;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const out = [];
  while (out.length < n) {
    const p = [b[0] + rnd() * (b[2] - b[0]), b[1] + rnd() * (b[3] - b[1])];
    if (inside(rings, p)) out.push(p);
  }
  return out;
}

const KINDS = ['patrol_member', 'patrol_leader', 'post_officer', 'vehicle'];
const id = (i) => `bench-${String(i).padStart(4, '0')}`;

async function postPositions(points, speed) {
  const batches = [];
  for (let i = 0; i < points.length; i += 500) {
    batches.push(points.slice(i, i + 500).map((p, k) => ({ device_id: id(i + k), lon: p[0], lat: p[1], speed_mps: speed, accuracy_m: 8 })));
  }
  await Promise.all(
    batches.map(async (positions) => {
      const res = await api('POST', '/api/v1/positions', ADMIN, { positions });
      if (res.rejected.length) throw new Error(`rejected: ${JSON.stringify(res.rejected.slice(0, 3))}`);
    }),
  );
}

/**
 * Installed before the page's own scripts: notes when the page says it is ready (the
 * county drawn), and the first `idle` after which the units source holds every unit and
 * the county layers are rendered.
 */
function instrument(n) {
  const b = (window.__bench = { ready: null, full: null });
  // The script runs before the document has an element: watch the document itself.
  new MutationObserver(() => {
    if (b.ready === null && document.documentElement?.dataset.state === 'ready') b.ready = performance.now();
  }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-state'] });
  const hook = () => {
    const map = window.wallmap?.map;
    if (!map) {
      requestAnimationFrame(hook);
      return;
    }
    const onIdle = () => {
      const w = window.wallmap;
      if ((w.units?.units.size ?? 0) < n) return;
      const src = new Set(map.querySourceFeatures('units').map((f) => f.properties.device_id)).size;
      if (src < n) return;
      const county = map.queryRenderedFeatures({ layers: ['boundary-fill', 'townships-fill'] }).length;
      if (county === 0) return;
      b.full = performance.now();
      b.source = src;
      b.rendered = new Set(map.queryRenderedFeatures({ layers: ['units-circle'] }).map((f) => f.properties.device_id)).size;
      map.off('idle', onIdle);
    };
    map.on('idle', onIdle);
  };
  hook();
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { min: s[0], median, max: s[s.length - 1] };
}

const ms = (x) => (x === null || x === undefined ? '–' : `${Math.round(x)}`);
const pad = (x, n) => String(x).padStart(n);

async function main() {
  console.log(`machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const started = await startServer();
  server = started.proc;
  base = `http://${started.addr}`;

  const t0 = Date.now();
  const indexes = Array.from({ length: UNITS }, (_, i) => i);
  await pool(indexes, 16, (i) => api('POST', '/api/v1/devices', ADMIN, { device_id: id(i), name: `压测单位 ${i + 1}`, kind: KINDS[i % KINDS.length], unit_id: `team-${String((i % 17) + 1).padStart(2, '0')}`, key: `key-${id(i)}` }));
  let points = countyPoints(UNITS);
  await postPositions(points, 0.2);
  console.log(`seeded ${UNITS} devices with a position each in ${Date.now() - t0} ms`);

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  console.log(`browser: Chromium ${browser.version()}, headless, WebGL in SwiftShader; viewport 1920×1080`);
  const open = async (query = '') => {
    const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, deviceScaleFactor: 1, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.addInitScript(instrument, UNITS);
    await page.goto(`${base}/?token=${OPERATOR}${query}`, { timeout: 60_000 });
    try {
      await page.waitForFunction(() => typeof window.__bench?.full === 'number', null, { timeout: Number(process.env.LOAD_TIMEOUT_MS || 180_000), polling: 100 });
    } catch (e) {
      const state = await page.evaluate(() => {
        const w = window.wallmap;
        return {
          bench: window.__bench,
          state: document.documentElement.dataset.state,
          feed: document.documentElement.dataset.feed,
          units: w?.units?.units.size,
          source: w?.map ? new Set(w.map.querySourceFeatures('units').map((f) => f.properties.device_id)).size : null,
          county: w?.map?.queryRenderedFeatures({ layers: ['boundary-fill', 'townships-fill'] }).length,
          loaded: w?.map?.loaded(),
        };
      });
      throw new Error(`no full render: ${JSON.stringify(state)} (errors: ${errors.join('; ')}): ${e.message}`);
    }
    const m = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return { ...window.__bench, dcl: nav?.domContentLoadedEventEnd ?? null };
    });
    if (errors.length) throw new Error(`the page raised: ${errors.join('; ')}`);
    return { context, page, m };
  };

  const rows = [];
  for (let run = 1; run <= RUNS; run++) {
    const { context, m } = await open();
    rows.push(m);
    await context.close();
  }
  console.log(`\npage load to first full render, ${UNITS} units, ${RUNS} runs (fresh browser context each; ms from navigation start):`);
  console.log('run  DOM ready  page ready (first idle)  all units rendered (idle)  units in source  units rendered');
  rows.forEach((r, i) => console.log(`${pad(i + 1, 3)}  ${pad(ms(r.dcl), 9)}  ${pad(ms(r.ready), 23)}  ${pad(ms(r.full), 25)}  ${pad(r.source, 15)}  ${pad(r.rendered, 14)}`));
  for (const [label, key] of [['page ready', 'ready'], ['all units rendered', 'full']]) {
    const s = stats(rows.map((r) => r[key]).filter((x) => x !== null));
    console.log(`${label}: min ${ms(s.min)} ms, median ${ms(s.median)} ms, max ${ms(s.max)} ms`);
  }

  // Frame rate while every unit moves once a second (and, first, at rest): with the
  // page's own pacing, and with `?pace=off` (every unit glides every frame), in one run.
  const moving = [];
  for (const pace of ['auto', 'off']) {
    const { context, page } = await open(pace === 'off' ? '&pace=off' : '');
    const rest = await page.evaluate(
      () =>
        new Promise((resolve) => {
          let frames = 0;
          const start = performance.now();
          const frame = (now) => {
            frames += 1;
            if (now - start < 3000) requestAnimationFrame(frame);
            else resolve(frames / ((now - start) / 1000));
          };
          requestAnimationFrame(frame);
        }),
    );
    await page.evaluate(() => {
      const w = window.wallmap;
      const f = (window.__fps = { frames: 0, renders: 0, draws: 0, applied: 0, maxGap: 0, last: null, on: true });
      const frame = (now) => {
        if (!f.on) return;
        if (f.last !== null) f.maxGap = Math.max(f.maxGap, now - f.last);
        f.last = now;
        f.frames += 1;
        requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
      w.map.on('render', () => f.on && (f.renders += 1));
      const update = w.units.update.bind(w.units);
      w.units.update = (r, glide) => {
        if (f.on) f.applied += 1;
        update(r, glide);
      };
      const draw = w.units.draw.bind(w.units);
      w.units.draw = () => {
        if (f.on) f.draws += 1;
        draw();
      };
      f.start = performance.now();
    });
    const moveStart = Date.now();
    for (let s = 0; s < MOVE_S; s++) {
      const tick = Date.now();
      // About 15 m a second in a random direction: a walking or slowly driving unit.
      points = points.map(([x, y], i) => {
        const a = ((i * 7919 + s * 104729) % 360) * (Math.PI / 180);
        return [x + 0.00015 * Math.cos(a), y + 0.00012 * Math.sin(a)];
      });
      await postPositions(points, 1.5);
      const left = 1000 - (Date.now() - tick);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    }
    const sentAll = Date.now();
    const fps = await page.evaluate(() => {
      const f = window.__fps;
      const s = (performance.now() - f.start) / 1000;
      const p = window.wallmap.units.pace;
      return { seconds: s, fps: f.frames / s, renders: f.renders / s, draws: f.draws / s, applied: f.applied, maxGap: f.maxGap, mode: p.mode, intervalMs: p.intervalMs, frameMs: window.wallmap.units.cost.frameMs };
    });
    // How far behind the page was when the last report was sent: the time until it has
    // applied every report (bounded at 30 s).
    let caughtUp = null;
    try {
      await page.waitForFunction((n) => window.__fps.applied >= n, UNITS * MOVE_S, { timeout: 30_000, polling: 50 });
      caughtUp = Date.now() - sentAll;
    } catch {
      // Reported as not caught up.
    }
    const appliedEnd = await page.evaluate(() => {
      window.__fps.on = false;
      return window.__fps.applied;
    });
    await context.close();
    moving.push({ pace, rest, sending: sentAll - moveStart, fps, caughtUp, appliedEnd });
  }
  console.log(`\nwhile ${UNITS} units move (each reports once a second for ${MOVE_S} s), page pacing on (auto) and off, one after the other:`);
  console.log('pacing  at rest fps  frames/s  map renders/s  unit redraws/s  longest frame gap (ms)  smoothed map frame (ms)  mode at end  reports applied while sending  all applied after the last send');
  for (const m of moving) {
    console.log(
      `${m.pace.padEnd(6)}  ${pad(m.rest.toFixed(1), 11)}  ${pad(m.fps.fps.toFixed(1), 8)}  ${pad(m.fps.renders.toFixed(1), 13)}  ${pad(m.fps.draws.toFixed(1), 14)}  ${pad(ms(m.fps.maxGap), 22)}  ${pad(ms(m.fps.frameMs), 23)}  ${pad(m.fps.mode + (m.fps.mode === 'paced' ? ` ${ms(m.fps.intervalMs)} ms` : ''), 11)}  ${pad(`${m.fps.applied} of ${UNITS * MOVE_S}`, 29)}  ${pad(m.caughtUp === null ? `no (${m.appliedEnd} after 30 s)` : `${m.caughtUp} ms`, 31)}`,
    );
  }
  const [on, off] = moving;
  console.log(`reports applied while sending, paced / unpaced: ${(on.fps.applied / Math.max(1, off.fps.applied)).toFixed(2)}×; frames/s: ${(on.fps.fps / Math.max(0.1, off.fps.fps)).toFixed(2)}×`);
  console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  await browser.close();
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  server = null;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
