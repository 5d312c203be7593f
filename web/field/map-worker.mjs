// MapLibre's worker, started from inside the field app's scope (/field/). A worker is
// matched to a service worker by its own address, and MapLibre's file lives in
// /node_modules/, outside the scope: started from there, it came from the browser's HTTP
// cache or not at all, and an app opened with no signal had no map once that cache had
// gone stale. Started from here, this worker is a client of the field app's service
// worker, which answers the import below from the kept shell.
import '/node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs';
