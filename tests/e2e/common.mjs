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
