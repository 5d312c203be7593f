//! The wall map's page and files through `Router::oneshot`: the browser protections on
//! the page, its files and the API's answers, which files of `web/node_modules` are served,
//! and paths that try to climb out of `web/`. The web folder is a temporary copy of the
//! page's shape with a fake `node_modules`, so that these tests need no npm.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use liandong_server::auth::Role;
use liandong_server::config::{Secret, TokenConfig};
use liandong_server::App;
use liandong_test_support::fresh_dir;
use tower::ServiceExt;

const OPERATOR: &str = "test-operator-token";

/// The page's policy, spelt out here rather than read from the crate: a change to it must
/// be made in both places, on purpose.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                        connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; \
                        form-action 'none'; frame-ancestors 'none'";
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// A file outside the web folder that no request may reach.
const SECRET: &str = "secret outside the web folder";

/// Writes a web folder shaped like the repository's: the page, its own modules, the files
/// of MapLibre it loads, and files of `node_modules` it does not load; beside it, files
/// that must stay out of reach. Answers the web folder.
fn web_tree(name: &str) -> PathBuf {
    let root = fresh_dir(&format!("web-{name}"));
    let web = root.join("web");
    let files: &[(&str, &str)] = &[
        ("index.html", "<!doctype html><title>wall map</title>"),
        ("wallmap/main.js", "import * as maplibregl from '/node_modules/maplibre-gl/dist/maplibre-gl.mjs';"),
        ("wallmap/wallmap.css", "body { margin: 0 }"),
        ("field/index.html", "<!doctype html><title>field app</title>"),
        ("field/sw.js", "self.addEventListener('fetch', () => {});"),
        ("field/manifest.webmanifest", "{\"name\": \"field\", \"scope\": \"/field/\"}"),
        ("node_modules/maplibre-gl/dist/maplibre-gl.mjs", "export const version = 'test';"),
        ("node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs", "self.onmessage = () => {};"),
        ("node_modules/maplibre-gl/dist/maplibre-gl.css", ".maplibregl-map { overflow: hidden }"),
        ("node_modules/maplibre-gl/dist/maplibre-gl.mjs.map", "{}"),
        ("node_modules/maplibre-gl/dist/maplibre-gl-dev.mjs", "export const dev = true;"),
        ("node_modules/maplibre-gl/package.json", "{\"name\": \"maplibre-gl\"}"),
        ("node_modules/qrcode-generator/dist/qrcode.mjs", "export const qrcode = () => {};"),
        ("node_modules/qrcode-generator/dist/qrcode.js", "var qrcode = function () {};"),
        ("node_modules/playwright-core/package.json", "{\"name\": \"playwright-core\"}"),
        ("node_modules/.package-lock.json", "{}"),
        (".env", SECRET),
        ("../Cargo.toml", SECRET),
        ("../secret.txt", SECRET),
    ];
    for (path, text) in files {
        let path = web.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    web
}

async fn app(name: &str, web_dir: &Path) -> App {
    let mut c = liandong_test_support::config(web_dir.parent().unwrap().join("data"));
    c.web_dir = web_dir.to_path_buf();
    c.tokens = vec![TokenConfig {
        token: Secret::new(OPERATOR),
        role: Role::Operator,
        name: name.into(),
        unit_id: None,
        person_id: None,
    }];
    App::build(c).await.unwrap()
}

async fn get(app: &App, uri: &str, token: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::get(uri);
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let res = app.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8_lossy(&body).into_owned())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

/// The three protections every answer carries besides its policy.
fn assert_protected(uri: &str, headers: &HeaderMap) {
    assert_eq!(header(headers, "x-content-type-options"), "nosniff", "{uri}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{uri}");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{uri}");
}

#[tokio::test]
async fn the_page_carries_its_content_security_policy_and_the_three_other_protections() {
    let web = web_tree("page");
    let app = app("page", &web).await;
    for uri in ["/", "/index.html"] {
        let (status, headers, body) = get(&app, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(body.contains("wall map"), "{uri}: {body}");
        assert!(header(&headers, "content-type").starts_with("text/html"), "{uri}");
        assert_eq!(header(&headers, "content-security-policy"), PAGE_CSP, "{uri}");
        assert_protected(uri, &headers);
    }
    app.finish().await;
}

#[tokio::test]
async fn the_pages_own_modules_and_style_sheet_are_served_with_the_page_policy() {
    let web = web_tree("own");
    let app = app("own", &web).await;
    for (uri, content_type) in [("/wallmap/main.js", "text/javascript"), ("/wallmap/wallmap.css", "text/css")] {
        let (status, headers, _) = get(&app, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(header(&headers, "content-type").starts_with(content_type), "{uri}: {headers:?}");
        assert_eq!(header(&headers, "content-security-policy"), PAGE_CSP, "{uri}");
        assert_protected(uri, &headers);
    }
    app.finish().await;
}

#[tokio::test]
async fn the_files_the_page_loads_from_node_modules_are_served_with_their_content_types() {
    let web = web_tree("vendor");
    let app = app("vendor", &web).await;
    for (uri, content_type) in [
        ("/node_modules/maplibre-gl/dist/maplibre-gl.mjs", "javascript"),
        // MapLibre asks for its worker with its version in the query.
        ("/node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs?v=6.17.0", "javascript"),
        ("/node_modules/maplibre-gl/dist/maplibre-gl.css", "text/css"),
        ("/node_modules/qrcode-generator/dist/qrcode.mjs", "javascript"),
    ] {
        let (status, headers, body) = get(&app, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(!body.is_empty(), "{uri}");
        assert!(header(&headers, "content-type").contains(content_type), "{uri}: {headers:?}");
        // A worker's policy is the one its script is served with.
        assert_eq!(header(&headers, "content-security-policy"), PAGE_CSP, "{uri}");
        assert_protected(uri, &headers);
    }
    app.finish().await;
}

#[tokio::test]
async fn the_field_app_is_served_at_field_with_its_service_worker_and_its_manifest() {
    let web = web_tree("field");
    let app = app("field", &web).await;
    // The folder is the app: its address opens its page, under the page policy (which
    // lets it load its manifest and start its service worker).
    let (status, headers, body) = get(&app, "/field/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("field app"), "{body}");
    assert!(header(&headers, "content-type").starts_with("text/html"), "{headers:?}");
    assert_eq!(header(&headers, "content-security-policy"), PAGE_CSP);
    assert!(PAGE_CSP.contains("manifest-src 'self'") && PAGE_CSP.contains("worker-src 'self'"));
    assert_protected("/field/", &headers);
    // Typed without its slash, the address is redirected to the folder, so that the
    // page's relative addresses and the service worker's scope are the folder's.
    let (status, headers, _) = get(&app, "/field", None).await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(header(&headers, "location"), "/field/");
    for (uri, content_type) in
        [("/field/sw.js", "text/javascript"), ("/field/manifest.webmanifest", "application/manifest+json")]
    {
        let (status, headers, _) = get(&app, uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(header(&headers, "content-type").starts_with(content_type), "{uri}: {headers:?}");
        assert_eq!(header(&headers, "content-security-policy"), PAGE_CSP, "{uri}");
        assert_protected(uri, &headers);
    }
    app.finish().await;
}

#[tokio::test]
async fn a_file_of_node_modules_the_page_does_not_load_is_not_served() {
    let web = web_tree("unlisted");
    let app = app("unlisted", &web).await;
    for uri in [
        "/node_modules/playwright-core/package.json",
        "/node_modules/maplibre-gl/package.json",
        "/node_modules/maplibre-gl/dist/maplibre-gl.mjs.map",
        "/node_modules/maplibre-gl/dist/maplibre-gl-dev.mjs",
        "/node_modules/qrcode-generator/dist/qrcode.js",
        "/node_modules/.package-lock.json",
        "/node_modules/",
        // The same file, named so that a check of the raw text would miss it.
        "/%6Eode_modules/playwright-core/package.json",
        "/node_modules//playwright-core/./package.json",
        "/wallmap/./../node_modules/playwright-core/package.json",
    ] {
        let (status, headers, body) = get(&app, uri, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert!(!body.contains("playwright-core") && !body.contains("\"name\""), "{uri}: {body}");
        assert_protected(uri, &headers);
    }
    app.finish().await;
}

#[tokio::test]
async fn a_path_that_climbs_out_of_the_web_folder_or_names_a_hidden_file_is_refused() {
    let web = web_tree("traversal");
    let app = app("traversal", &web).await;
    for uri in [
        "/..%2f..%2fetc/passwd",
        "/..%2fsecret.txt",
        "/node_modules/../../Cargo.toml",
        "/wallmap/../../secret.txt",
        "/wallmap/%2e%2e/%2e%2e/secret.txt",
        "/.env",
        "/%2eenv",
    ] {
        let (status, headers, body) = get(&app, uri, None).await;
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST, "{uri}: {status} {body}");
        assert!(!body.contains(SECRET), "{uri}: {body}");
        assert_protected(uri, &headers);
    }
    app.finish().await;
}

#[tokio::test]
async fn api_answers_carry_nosniff_and_may_not_be_framed() {
    let web = web_tree("api");
    let app = app("api", &web).await;
    for (uri, token, expected) in [
        ("/api/v1/layers", Some(OPERATOR), StatusCode::OK),
        ("/api/v1/devices", None, StatusCode::UNAUTHORIZED),
        ("/api/v1/incidents/999999", Some(OPERATOR), StatusCode::NOT_FOUND),
        ("/healthz", None, StatusCode::OK),
    ] {
        let (status, headers, body) = get(&app, uri, token).await;
        assert_eq!(status, expected, "{uri}: {body}");
        assert_eq!(header(&headers, "content-security-policy"), API_CSP, "{uri}");
        assert_protected(uri, &headers);
    }
    app.finish().await;
}

/// The list of files served from `node_modules` follows the page: every such file that
/// the repository's page and modules name is served (given a tree holding it).
#[tokio::test]
async fn every_node_modules_file_the_repositorys_page_names_is_served() {
    let repo_web = liandong_test_support::root().join("web");
    let mut sources = vec![repo_web.join("index.html")];
    for app in ["wallmap", "field"] {
        for entry in std::fs::read_dir(repo_web.join(app)).unwrap() {
            let path = entry.unwrap().path();
            // The field app's icons are pictures, not text naming files.
            if path.extension().is_some_and(|e| e == "js" || e == "html" || e == "css" || e == "webmanifest") {
                sources.push(path);
            }
        }
    }
    let mut named = Vec::new();
    for source in sources {
        let text = std::fs::read_to_string(&source).unwrap();
        for (at, _) in text.match_indices("/node_modules/") {
            let rest = &text[at..];
            let end = rest.find(['"', '\'', '`', ')', ' ', ',', '\n']).unwrap_or(rest.len());
            let path = &rest[..end];
            // Prose in comments names the folder, not a file.
            if path.len() > "/node_modules/".len() {
                named.push(path.to_owned());
            }
        }
    }
    assert!(named.len() >= 2, "the page loads MapLibre's module and style sheet: {named:?}");
    let web = web_tree("named");
    let app = app("named", &web).await;
    for uri in named {
        let (status, _, _) = get(&app, &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{uri} is loaded by the page but not served");
    }
    app.finish().await;
}
