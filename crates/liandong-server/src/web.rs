//! How the server serves the wall map and the field app (the pages and their files from
//! `web/`) and the browser protections that every answer carries.
//!
//! The page's Content-Security-Policy ([`PAGE_CSP`]) lets the page load and connect to
//! nothing but this server. Each directive is there because the page needs it, checked in
//! headless Chromium by `tests/e2e/wallmap.test.mjs`, which fails on any
//! `securitypolicyviolation`:
//! - `script-src 'self'`: the page's own ES modules and MapLibre GL JS's module; nothing
//!   inline, no `eval`.
//! - `style-src 'self'`: the two style sheets. Styles the scripts set through the CSSOM
//!   (`element.style`) are not inline styles and need no allowance.
//! - `img-src 'self' data:`: camera snapshots come from the API; MapLibre's style sheet
//!   draws the zoom buttons' icons as `data:` SVG images, and the page's empty favicon is
//!   `data:,` (without it Chromium asks for `/favicon.ico`).
//! - `connect-src 'self'`: the API and the live feed; in CSP Level 3, `'self'` also
//!   matches `ws:` and `wss:` to the page's own host and port.
//! - `worker-src 'self'`: MapLibre GL JS 6 starts its workers from the URL of
//!   `maplibre-gl-worker.mjs` beside its module. It builds a `blob:` (or `data:`) worker
//!   only when that URL is on another origin or the page's origin is opaque, neither of
//!   which happens here, so no `blob:` is allowed.
//! - `manifest-src 'self'`: the field app (`web/field/`) is installed on a phone's home
//!   screen from its web app manifest. Its service worker (`/field/sw.js`) needs no more
//!   than `worker-src 'self'`, and its default scope, the folder it is served from, is the
//!   app's, so no `Service-Worker-Allowed` header is sent.
//! - `default-src 'none'` for everything else (fonts, media, frames, objects),
//!   `base-uri 'none'`, and `form-action 'none'`: the login form is handled by a script, so
//!   a native submission (which would put the token in an address) is refused.
//! - `frame-ancestors 'none'`: nothing the server answers may be framed (clickjacking).
//!
//! Of `web/node_modules`, only the files the page loads ([`VENDOR_FILES`]) are served;
//! the rest of that folder (other packages, source maps, development builds) is not.
//! Every other file of `web/` is served as it is (a folder's `index.html` for the folder,
//! so `/field/` is the field app), but never a hidden file, never a path that climbs out
//! of `web/`.
//!
//! A text file of 1 KiB or more is gzipped for a client that accepts gzip: compressed on
//! its first such request and kept ([`GzipCache`]) until the file changes on disk. The
//! file service still answers every request first, so that redirects, `304 Not
//! Modified` and byte ranges (served from the plain file) are its own; `Last-Modified`
//! is the file's for both forms and every answer that could have been gzipped says
//! `Vary: Accept-Encoding` (see `compress`).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::compress;
use crate::error::ApiError;

/// The Content-Security-Policy of the page and of the files it loads (the policy of a
/// worker is the one its script is served with). Why each directive: see the module's
/// documentation.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                            connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; \
                            form-action 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of every other answer (the API's JSON, images, metrics): a
/// document opened from one may run and load nothing, and may not be framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The headers [`protect`] sets on every answer besides the policy, names in lower case.
/// `X-Frame-Options` is for browsers that do not know `frame-ancestors`.
pub const PROTECTIONS: [(&str, &str); 3] =
    [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")];

/// The files of `web/node_modules` the page loads, relative to that folder: MapLibre GL JS's
/// ES module, the worker module it starts from the URL beside it, and its style sheet; and
/// the QR code encoder's ES module, with which an administrator's wall map shows a newly
/// registered phone its sign-in link.
pub const VENDOR_FILES: &[&str] = &[
    "maplibre-gl/dist/maplibre-gl.mjs",
    "maplibre-gl/dist/maplibre-gl-worker.mjs",
    "maplibre-gl/dist/maplibre-gl.css",
    "qrcode-generator/dist/qrcode.mjs",
];

/// The service that answers every path no route takes: the files of `web_dir`.
pub fn files(web_dir: &Path) -> Router {
    let dir: Arc<PathBuf> = Arc::new(web_dir.to_path_buf());
    let cache = Arc::new(GzipCache::default());
    Router::new().fallback(move |req: Request| serve_file(dir.clone(), cache.clone(), req))
}

/// The page itself (`GET /`), with the page's policy.
pub async fn page(web_dir: &Path) -> Response {
    match tokio::fs::read(web_dir.join("index.html")).await {
        Ok(html) => with_page_policy(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()),
        Err(_) => ApiError::not_found("no web page is installed (web/index.html)").into_response(),
    }
}

/// Adds the protections every answer carries, whatever produced it: no content-type
/// sniffing (a JSON answer is never run as a script or shown as HTML), no framing, no
/// `Referer` (the page's address may hold a token for a moment), and [`API_CSP`] where a
/// handler did not set a policy of its own.
pub async fn protect(mut res: Response) -> Response {
    let h = res.headers_mut();
    // Room for all of them at once: a map grown header by header reallocates three times.
    h.reserve(PROTECTIONS.len() + 1);
    for (name, value) in PROTECTIONS {
        h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(API_CSP));
    res
}

fn with_page_policy(mut res: Response) -> Response {
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    res
}

/// What a request path names, decided on the path as the file service decodes it.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// A file of `web/` outside `node_modules`, by its path in `web/` (the service
    /// refuses directories and missing files itself).
    Own(PathBuf),
    /// One of [`VENDOR_FILES`].
    Vendor(&'static str),
    /// Anything else: a path climbing out of `web/`, a hidden file, another file of
    /// `node_modules`, a path that is not UTF-8.
    Refused,
}

/// Classifies a request path. The path is percent-decoded and split into components
/// exactly as `ServeDir` does before it opens a file, so that an encoded name
/// (`/%6Eode_modules/…`) or a detour (`/wallmap/./../node_modules/…`) is judged as the
/// file it would open, not as the text it was sent as.
fn wanted(path: &str) -> Wanted {
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else {
        return Wanted::Refused;
    };
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(&*decoded).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => match name.to_str() {
                Some(name) if !name.starts_with('.') => parts.push(name),
                _ => return Wanted::Refused,
            },
            Component::ParentDir | Component::Prefix(_) => return Wanted::Refused,
        }
    }
    // Compared without case, for file systems that ignore it.
    match parts.split_first() {
        Some((first, rest)) if first.eq_ignore_ascii_case("node_modules") => {
            let rest = rest.join("/");
            VENDOR_FILES.iter().find(|f| **f == rest).copied().map_or(Wanted::Refused, Wanted::Vendor)
        }
        _ => Wanted::Own(parts.iter().collect()),
    }
}

async fn serve_file(dir: Arc<PathBuf>, cache: Arc<GzipCache>, req: Request) -> Response {
    let gzip = GzipWanted::of(&req);
    let (served, file) = match wanted(req.uri().path()) {
        Wanted::Own(rel) => {
            let file = own_file(dir.join(rel), req.uri().path()).await;
            (ServeDir::new(&*dir).oneshot(req).await.map(|r| r.map(Body::new)), Some(file))
        }
        Wanted::Vendor(name) => {
            let file = dir.join("node_modules").join(name);
            (ServeFile::new(&file).oneshot(req).await.map(|r| r.map(Body::new)), Some(file))
        }
        Wanted::Refused => (Ok(ApiError::not_found("no such file").into_response()), None),
    };
    let res = match served {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let res = match file {
        Some(file) => cache.compressed(res, &file, gzip).await,
        None => res,
    };
    with_page_policy(res)
}

/// The file `ServeDir` opens for a path of `web/`: a folder's `index.html` when the
/// path names a folder and ends with `/` (without the `/`, the service redirects).
async fn own_file(path: PathBuf, request_path: &str) -> PathBuf {
    if request_path.ends_with('/') && tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        return path.join("index.html");
    }
    path
}

/// What a request allows the file service to do with gzip.
#[derive(Debug, Clone, Copy)]
struct GzipWanted {
    /// The client accepts gzip, and asked for the whole file (a range is served plain,
    /// counted in the file's own bytes).
    accepted: bool,
    /// A `HEAD` request: the headers of the gzipped answer, without its body.
    head_only: bool,
}

impl GzipWanted {
    fn of(req: &Request) -> GzipWanted {
        let method = req.method();
        GzipWanted {
            accepted: compress::accepts_gzip(req.headers())
                && (method == Method::GET || method == Method::HEAD)
                && !req.headers().contains_key(header::RANGE),
            head_only: method == Method::HEAD,
        }
    }
}

/// The largest file gzipped and kept in memory; a larger one is sent as it is (the
/// repository's largest, MapLibre GL JS, is 1.1 MB).
const MAX_GZIP_FILE_BYTES: u64 = 16 << 20;

/// The web files gzipped so far, by path, each with the length and modification time of
/// the file it was made from: a file that changes on disk (a new release, a developer's
/// edit) is compressed again on its next request, never served stale. Holds at most one
/// entry per compressible file of `web/`.
#[derive(Default)]
pub struct GzipCache {
    files: std::sync::Mutex<HashMap<PathBuf, GzipEntry>>,
    /// Held while a file is read and compressed, so that phones arriving together after
    /// a start do not each compress MapLibre: one compression at a time, on one thread of
    /// the blocking pool, and those who waited find it kept.
    compressing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct GzipEntry {
    len: u64,
    modified: Option<SystemTime>,
    /// `None` when gzip would not have saved enough.
    gzipped: Option<Bytes>,
}

impl GzipCache {
    /// `res`, the file service's answer for `file`, gzipped when the request accepts it
    /// and the file is text worth compressing; `Vary: Accept-Encoding` on every answer
    /// that could have been gzipped, plain or not, and on its `304 Not Modified`
    /// (`Last-Modified` is the file's, the same for both forms).
    async fn compressed(&self, mut res: Response, file: &Path, gzip: GzipWanted) -> Response {
        let status = res.status();
        if status == StatusCode::NOT_MODIFIED {
            compress::vary(res.headers_mut());
            return res;
        }
        let h = res.headers();
        let text = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(compress::compressible);
        if status != StatusCode::OK || !text || h.contains_key(header::CONTENT_ENCODING) {
            return res;
        }
        compress::vary(res.headers_mut());
        let len = res.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let Some(len) = len.filter(|&n| gzip.accepted && n >= compress::MIN_BYTES as u64 && n <= MAX_GZIP_FILE_BYTES)
        else {
            return res;
        };
        match self.gzipped(file, len).await {
            Some(gz) => compress::as_gzip(res, gz, gzip.head_only),
            None => res,
        }
    }

    /// The gzipped bytes of `file` as it is now, if it is still `len` bytes long: kept, or
    /// read and compressed on the blocking pool (and kept).
    async fn gzipped(&self, file: &Path, len: u64) -> Option<Bytes> {
        let meta = tokio::fs::metadata(file).await.ok()?;
        let modified = meta.modified().ok();
        if meta.len() != len {
            // Changed since the service opened it: the answer stays plain.
            return None;
        }
        let kept =
            || self.lock().get(file).filter(|e| e.len == len && e.modified == modified).map(|e| e.gzipped.clone());
        if let Some(gzipped) = kept() {
            return gzipped;
        }
        let _compressing = self.compressing.lock().await;
        if let Some(gzipped) = kept() {
            return gzipped;
        }
        let path = file.to_path_buf();
        let entry = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).ok()?;
            // Kept only if the file did not change while it was read.
            let after = std::fs::metadata(&path).ok()?;
            let same = bytes.len() as u64 == len && after.len() == len && after.modified().ok() == modified;
            same.then(|| GzipEntry { len, modified, gzipped: compress::gzip(&bytes) })
        })
        .await
        .ok()
        .flatten()?;
        tracing::debug!(file = %file.display(), plain = len, gzipped = entry.gzipped.as_ref().map(Bytes::len), "web file gzipped");
        self.lock().insert(file.to_path_buf(), entry.clone());
        entry.gzipped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, GzipEntry>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_judged_as_the_file_it_would_open() {
        let table: &[(&str, Wanted)] = &[
            ("/index.html", Wanted::Own("index.html".into())),
            ("/wallmap/main.js", Wanted::Own("wallmap/main.js".into())),
            ("/wallmap/", Wanted::Own("wallmap".into())),
            ("/node_modules/maplibre-gl/dist/maplibre-gl.mjs", Wanted::Vendor("maplibre-gl/dist/maplibre-gl.mjs")),
            (
                "/node_modules/maplibre-gl/dist/maplibre-gl%2Dworker.mjs",
                Wanted::Vendor("maplibre-gl/dist/maplibre-gl-worker.mjs"),
            ),
            ("/node_modules//maplibre-gl/./dist/maplibre-gl.css", Wanted::Vendor("maplibre-gl/dist/maplibre-gl.css")),
            ("/node_modules/maplibre-gl/dist/maplibre-gl.mjs.map", Wanted::Refused),
            ("/node_modules/maplibre-gl/package.json", Wanted::Refused),
            ("/node_modules/playwright-core/package.json", Wanted::Refused),
            ("/node_modules/", Wanted::Refused),
            ("/node_modules", Wanted::Refused),
            ("/%6Eode_modules/playwright-core/package.json", Wanted::Refused),
            ("/NODE_MODULES/playwright-core/package.json", Wanted::Refused),
            ("/wallmap/./../node_modules/playwright-core/package.json", Wanted::Refused),
            ("/..%2f..%2fetc/passwd", Wanted::Refused),
            ("/node_modules/../../Cargo.toml", Wanted::Refused),
            ("/.git/config", Wanted::Refused),
            ("/wallmap/.secret", Wanted::Refused),
            ("/%ff.js", Wanted::Refused),
        ];
        for (path, expected) in table {
            assert_eq!(&wanted(path), expected, "{path}");
        }
    }
}
