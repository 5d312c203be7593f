// What the wall map's browser test and its page-load benchmark share.

/** The demo configuration's tokens (config/demo.toml; published in the README). */
export const ADMIN = 'demo-admin-token';
export const OPERATOR = 'demo-operator-token';
export const GRID = 'demo-grid-token';

/**
 * Chromium flags that work on a machine with no GPU and no network (ENVIRONMENT.md).
 * playwright adds `--headless` itself, and a fresh `--user-data-dir` for every launch.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-dev-shm-usage',
  // MapLibre needs WebGL: with no GPU, ANGLE's SwiftShader renders it in software.
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

/**
 * The Content-Security-Policy the server sends with the page and its files
 * (crates/liandong-server/src/web.rs says why each directive is there).
 */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; " +
  "frame-ancestors 'none'";

/** The headers every answer of the server carries besides its policy. */
export const PROTECTIONS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/**
 * Starts `bin serve` on the demo configuration (or the file `config`, for a test that adds
 * to it) with the data in `dataDir`, the repository at `root`; resolves with
 * `{ proc, addr, log }` once it logs its address (the wall map's, the field app's and the
 * handover page's tests, the field app's benchmark).
 */
export async function startServer({ bin, root, dataDir, listen = '127.0.0.1:0', config = null }) {
  const { spawn } = await import('node:child_process');
  const fs = await import('node:fs');
  const path = await import('node:path');
  const readline = await import('node:readline');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run cargo build first (CARGO_TARGET_DIR is honoured)`);
  const proc = spawn(bin, ['serve'], {
    cwd: root,
    env: {
      ...process.env,
      LIANDONG_CONFIG: config ?? path.join(root, 'config/demo.toml'),
      // The demo's JT/T 808 listener on a port of its own, so that servers run side by side.
      LIANDONG_JT808_LISTEN: '127.0.0.1:0',
      LIANDONG_LISTEN: listen,
      LIANDONG_DATA_DIR: dataDir,
      LIANDONG_MAPS: path.join(root, 'maps/dazhu'),
      LIANDONG_WEB_DIR: path.join(root, 'web'),
      LIANDONG_LOG: 'info',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s:\n${log.join('\n')}`)), 60_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${log.join('\n')}`));
    });
    readline.createInterface({ input: proc.stderr }).on('line', (line) => {
      log.push(line);
      const m = /listening.*addr=(\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, addr: m[1], log });
      }
    });
  });
}

/** Stops a server started by `startServer`: SIGTERM, then SIGKILL after 10 s. */
export async function stopServer(server) {
  if (!server) return;
  const { proc } = server;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
