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
