//! How the server serves the wall map (the page and its files from `web/`) and the browser
//! protections that every answer carries.
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
//! - `default-src 'none'` for everything else (fonts, media, frames, objects, manifests),
//!   `base-uri 'none'`, and `form-action 'none'`: the login form is handled by a script, so
//!   a native submission (which would put the token in an address) is refused.
//! - `frame-ancestors 'none'`: nothing the server answers may be framed (clickjacking).
//!
//! Of `web/node_modules`, only the files the page loads ([`VENDOR_FILES`]) are served;
//! the rest of that folder (other packages, source maps, development builds) is not.
//! Every other file of `web/` is served as it is, but never a hidden file, never a path
//! that climbs out of `web/`.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;

/// The Content-Security-Policy of the page and of the files it loads (the policy of a
/// worker is the one its script is served with). Why each directive: see the module's
/// documentation.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                            connect-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; \
                            frame-ancestors 'none'";

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
    Router::new().fallback(move |req: Request| serve_file(dir.clone(), req))
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
    /// A file of `web/` outside `node_modules` (the service refuses directories and
    /// missing files itself).
    Own,
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
        _ => Wanted::Own,
    }
}

async fn serve_file(dir: Arc<PathBuf>, req: Request) -> Response {
    let served = match wanted(req.uri().path()) {
        Wanted::Own => ServeDir::new(&*dir).oneshot(req).await.map(|r| r.map(Body::new)),
        Wanted::Vendor(file) => {
            ServeFile::new(dir.join("node_modules").join(file)).oneshot(req).await.map(|r| r.map(Body::new))
        }
        Wanted::Refused => Ok(ApiError::not_found("no such file").into_response()),
    };
    let res = match served {
        Ok(res) => res,
        Err(never) => match never {},
    };
    with_page_policy(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_judged_as_the_file_it_would_open() {
        let table: &[(&str, Wanted)] = &[
            ("/index.html", Wanted::Own),
            ("/wallmap/main.js", Wanted::Own),
            ("/wallmap/", Wanted::Own),
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
