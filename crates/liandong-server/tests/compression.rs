//! Gzip on the wire: the web files and the map's layers come gzipped to a client that asks
//! for it and plain to one that does not, every such answer says `Vary: Accept-Encoding`,
//! and the ingest endpoints and the live feed are never compressed. The files are read
//! back through `Router::oneshot` and unzipped; the ingest answers and the websocket go
//! through a server on `127.0.0.1:0`.

use std::io::Read;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use liandong_server::auth::Role;
use liandong_server::config::{Secret, TokenConfig};
use liandong_server::App;
use liandong_test_support::{fresh_dir, now_s, root, token, Server};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tower::ServiceExt;

const ADMIN: &str = "test-admin-token";
const OPERATOR: &str = "test-operator-token";
const KEY: &str = "device-key-0001";

/// A script of `n` lines, each different (numbered) but alike, as minified JavaScript is.
fn script(n: usize) -> String {
    (0..n).map(|i| format!("export function f{i}(a, b) {{ return a * {i} + b.length; }}\n")).collect()
}

/// A web folder with a large module of its own, a large vendor module, a tiny style sheet
/// and an image. Answers the folder.
fn web_tree(name: &str) -> PathBuf {
    let web = fresh_dir(&format!("gzip-{name}")).join("web");
    let png: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("index.html", b"<!doctype html><title>wall map</title>".to_vec()),
        ("field/index.html", format!("<!doctype html><title>field app</title>{}", "<p>".repeat(600)).into_bytes()),
        ("field/main.js", script(400).into_bytes()),
        ("field/tiny.css", b"body { margin: 0 }".to_vec()),
        ("field/icon.png", png),
        ("node_modules/maplibre-gl/dist/maplibre-gl.mjs", script(3000).into_bytes()),
    ];
    for (path, bytes) in files {
        let path = web.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    web
}

async fn app(web_dir: &Path, maps: Option<PathBuf>) -> App {
    let mut c = liandong_test_support::config(web_dir.parent().unwrap().join("data"));
    c.web_dir = web_dir.to_path_buf();
    if let Some(maps) = maps {
        c.maps = maps;
    }
    c.tokens = vec![
        TokenConfig {
            token: Secret::new(OPERATOR),
            role: Role::Operator,
            name: "operator".into(),
            unit_id: None,
            person_id: None,
        },
        TokenConfig {
            token: Secret::new(ADMIN),
            role: Role::Admin,
            name: "admin".into(),
            unit_id: None,
            person_id: None,
        },
    ];
    App::build(c).await.unwrap()
}

/// `GET uri` with `headers`: the status, the headers and the body as it came.
async fn get(app: &App, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::get(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = app.router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("a gzip stream");
    out
}

fn varies_by_encoding(headers: &HeaderMap) -> bool {
    header(headers, "vary").to_ascii_lowercase().contains("accept-encoding")
}

#[tokio::test]
async fn a_client_that_accepts_gzip_gets_each_large_web_file_smaller_and_it_unzips_to_the_files_bytes() {
    let web = web_tree("files");
    let app = app(&web, None).await;
    for (uri, file) in [
        ("/field/main.js", "field/main.js"),
        ("/field/", "field/index.html"),
        ("/node_modules/maplibre-gl/dist/maplibre-gl.mjs", "node_modules/maplibre-gl/dist/maplibre-gl.mjs"),
    ] {
        let on_disk = std::fs::read(web.join(file)).unwrap();
        // Twice: compressed on the first request, kept for the second.
        for round in 1..=2 {
            let (status, headers, body) = get(&app, uri, &[("accept-encoding", "gzip, deflate, br, zstd")]).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(header(&headers, "content-encoding"), "gzip", "{uri} round {round}: {headers:?}");
            assert!(varies_by_encoding(&headers), "{uri}: {headers:?}");
            assert_eq!(header(&headers, "content-length"), body.len().to_string(), "{uri}");
            assert!(body.len() * 4 < on_disk.len(), "{uri}: {} of {} bytes", body.len(), on_disk.len());
            assert_eq!(gunzip(&body), on_disk, "{uri} round {round}");
            // The content type and the browser protections are those of the plain file.
            assert!(!header(&headers, "content-type").is_empty(), "{uri}");
            assert!(header(&headers, "content-security-policy").contains("script-src 'self'"), "{uri}");
            assert_eq!(header(&headers, "x-content-type-options"), "nosniff", "{uri}");
            assert_eq!(header(&headers, "x-frame-options"), "DENY", "{uri}");
            // No byte ranges of the compressed form are offered.
            assert_eq!(header(&headers, "accept-ranges"), "", "{uri}");
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn a_client_that_does_not_ask_for_gzip_gets_the_plain_bytes_and_the_answer_varies_by_encoding() {
    let web = web_tree("plain");
    let app = app(&web, None).await;
    let on_disk = std::fs::read(web.join("field/main.js")).unwrap();
    // The gzipped form is made and kept first, so that a plain answer cannot be the
    // kept one by mistake.
    let (_, gz_headers, _) = get(&app, "/field/main.js", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&gz_headers, "content-encoding"), "gzip");
    for asked in [
        &[][..],
        &[("accept-encoding", "identity")],
        &[("accept-encoding", "gzip;q=0, br")],
        &[("accept-encoding", "deflate")],
    ] {
        let (status, headers, body) = get(&app, "/field/main.js", asked).await;
        assert_eq!(status, StatusCode::OK, "{asked:?}");
        assert_eq!(header(&headers, "content-encoding"), "", "{asked:?}");
        assert!(varies_by_encoding(&headers), "{asked:?}: {headers:?}");
        assert_eq!(body, on_disk, "{asked:?}");
        // Both forms are the same version of the file, for conditional requests.
        assert_eq!(header(&headers, "last-modified"), header(&gz_headers, "last-modified"));
    }
    app.finish().await;
}

#[tokio::test]
async fn a_revalidation_is_not_modified_a_head_tells_the_gzipped_length_and_a_byte_range_is_plain() {
    let web = web_tree("conditional");
    let app = app(&web, None).await;
    let (_, headers, _) = get(&app, "/field/main.js", &[("accept-encoding", "gzip")]).await;
    let since = header(&headers, "last-modified").to_owned();
    assert!(!since.is_empty(), "{headers:?}");
    let (status, headers, body) =
        get(&app, "/field/main.js", &[("accept-encoding", "gzip"), ("if-modified-since", &since)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert!(varies_by_encoding(&headers), "{headers:?}");
    // A HEAD request tells the gzipped answer's length without sending it.
    let (_, gz_headers, gz) = get(&app, "/field/main.js", &[("accept-encoding", "gzip")]).await;
    let req = Request::head("/field/main.js").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(res.headers(), "content-encoding"), "gzip");
    assert_eq!(header(res.headers(), "content-length"), gz.len().to_string());
    assert_eq!(header(res.headers(), "content-length"), header(&gz_headers, "content-length"));
    assert!(res.into_body().collect().await.unwrap().to_bytes().is_empty());
    // A range counts in the file's own bytes, so it is answered from the plain file.
    let (status, headers, body) =
        get(&app, "/field/main.js", &[("accept-encoding", "gzip"), ("range", "bytes=0-5")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(&body[..], b"export");
    app.finish().await;
}

#[tokio::test]
async fn small_files_and_images_are_sent_as_they_are() {
    let web = web_tree("small");
    let app = app(&web, None).await;
    for (uri, file) in [("/field/tiny.css", "field/tiny.css"), ("/field/icon.png", "field/icon.png")] {
        let (status, headers, body) = get(&app, uri, &[("accept-encoding", "gzip")]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(header(&headers, "content-encoding"), "", "{uri}");
        assert_eq!(body, std::fs::read(web.join(file)).unwrap(), "{uri}");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_web_file_changed_on_disk_is_gzipped_again_and_never_served_stale() {
    let web = web_tree("changed");
    let app = app(&web, None).await;
    let (_, _, before) = get(&app, "/field/main.js", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gunzip(&before), script(400).as_bytes());
    std::fs::write(web.join("field/main.js"), script(500)).unwrap();
    let (_, headers, after) = get(&app, "/field/main.js", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(gunzip(&after), script(500).as_bytes());
    app.finish().await;
}

#[tokio::test]
async fn a_large_layer_comes_gzipped_to_every_caller_who_may_read_it_and_a_small_one_plain() {
    let web = web_tree("layers");
    // The demo map's layers are tens of kilobytes each.
    let app = app(&web, Some(root().join("maps/dazhu"))).await;
    let (_, _, plain) = get(&app, "/api/v1/layers/grids", &[("authorization", &format!("Bearer {OPERATOR}"))]).await;
    assert!(plain.len() > 50_000, "{} bytes", plain.len());
    serde_json::from_slice::<Value>(&plain).expect("the plain layer is JSON");
    for bearer in [OPERATOR, ADMIN] {
        let auth = format!("Bearer {bearer}");
        let (status, headers, body) =
            get(&app, "/api/v1/layers/grids", &[("authorization", &auth), ("accept-encoding", "gzip")]).await;
        assert_eq!(status, StatusCode::OK, "{bearer}");
        assert_eq!(header(&headers, "content-encoding"), "gzip", "{bearer}");
        assert_eq!(header(&headers, "content-type"), "application/geo+json");
        assert!(varies_by_encoding(&headers));
        assert!(body.len() * 3 < plain.len(), "{} of {} bytes", body.len(), plain.len());
        assert_eq!(gunzip(&body), plain);
    }
    // Refused callers get the refusal, plain.
    let (status, headers, _) = get(&app, "/api/v1/layers/grids", &[("accept-encoding", "gzip")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, "content-encoding"), "");
    app.finish().await;

    // The mini map's fences are a few hundred bytes: not worth a gzip header.
    let app = self::app(&web, None).await;
    let auth = format!("Bearer {OPERATOR}");
    let (status, headers, body) =
        get(&app, "/api/v1/layers/fences", &[("authorization", &auth), ("accept-encoding", "gzip")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-encoding"), "");
    serde_json::from_slice::<Value>(&body).expect("the plain layer is JSON");
    app.finish().await;
}

#[tokio::test]
async fn the_ingest_answers_and_the_live_feed_are_never_compressed() {
    let dir = fresh_dir("gzip-ingest");
    let srv = Server::start_in(dir, vec![token(ADMIN, Role::Admin), token(OPERATOR, Role::Operator)], |_| {}).await;
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "866001", "name": "巡防 1号", "kind": "patrol_member", "unit_id": "team-1", "key": KEY}),
    )
    .await;
    let t = now_s() as i64 * 1000 - 600_000;
    // A batch whose answer is several kilobytes, large enough to be worth gzip.
    let positions: Vec<Value> =
        (0..60).map(|i| json!({"device_id": "866001", "lon": 107.1, "lat": 30.7, "time": t + i * 1000})).collect();
    let res = srv
        .http
        .post(format!("{}/api/v1/positions", srv.url))
        .bearer_auth(KEY)
        .header("accept-encoding", "gzip")
        .json(&json!({ "positions": positions }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-encoding").is_none(), "{:?}", res.headers());
    let body = res.bytes().await.unwrap();
    assert!(body.len() > 1024, "{} bytes", body.len());
    let v: Value = serde_json::from_slice(&body).expect("plain JSON");
    assert_eq!(v["accepted"].as_array().map(Vec::len), Some(60), "{v}");
    // OsmAnd, as Traccar Client sends it (query and form), and an ISAPI push.
    let ts = now_s();
    let osmand = format!("id=866001&timestamp={ts}&lat=30.75&lon=107.05&key={KEY}");
    let answers = [
        srv.http.get(format!("{}/osmand?{osmand}", srv.url)).header("accept-encoding", "gzip").send().await.unwrap(),
        srv.http
            .post(format!("{}/", srv.url))
            .header("accept-encoding", "gzip")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("id=866001&timestamp={}&lat=30.75&lon=107.05&key={KEY}", ts + 1))
            .send()
            .await
            .unwrap(),
        srv.http
            .post(format!("{}/isapi/events?camera=cam-x&key=wrong", srv.url))
            .header("accept-encoding", "gzip")
            .header("content-type", "application/xml")
            .body("<EventNotificationAlert/>")
            .send()
            .await
            .unwrap(),
    ];
    for (i, res) in answers.into_iter().enumerate() {
        assert!(res.headers().get("content-encoding").is_none(), "answer {i}: {:?}", res.headers());
        assert!(res.status().is_success() || i == 2, "answer {i}: {}", res.status());
    }
    // The live feed's upgrade and its messages: plain websocket text frames of JSON.
    let mut req = format!("{}?token={OPERATOR}", srv.live_url).into_client_request().unwrap();
    req.headers_mut().insert("accept-encoding", "gzip".parse().unwrap());
    let (mut ws, upgrade) = tokio_tungstenite::connect_async(req).await.expect("the websocket connects");
    assert!(upgrade.headers().get("content-encoding").is_none(), "{:?}", upgrade.headers());
    let first = liandong_test_support::feed::next(&mut ws).await;
    assert!(first.get("type").is_some(), "{first}");
    srv.stop().await;
}
