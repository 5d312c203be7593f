//! The API's contract against the router it describes: the OpenAPI document served at
//! `/api/v1/openapi.json` (public) is OpenAPI 3.1 with a summary, tags, roles and answers
//! on every operation; every operation it describes reaches a handler of a running
//! server (not the web page fallback, not a 405); and `lib.rs` registers routes only
//! through `routes!`, which describes them, so no route can be served undescribed.

use std::collections::BTreeSet;

use liandong_server::auth::Role;
use liandong_test_support::{token, Server};
use serde_json::Value;

const ADMIN: &str = "admin-token";

/// The document as the server serves it, without a token.
async fn served_document(srv: &Server) -> Value {
    let res = srv.http.get(format!("{}/api/v1/openapi.json", srv.url)).send().await.unwrap();
    assert_eq!(res.status(), 200, "the contract is public");
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    res.json().await.expect("the document is JSON")
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_operation_says_what_who_and_which_answers() {
    let srv =
        Server::start_in(liandong_test_support::fresh_dir("openapi-doc"), vec![token(ADMIN, Role::Admin)], |_| {})
            .await;
    let doc = served_document(&srv).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "openapi {}", doc["openapi"]);
    assert_eq!(doc.to_string(), liandong_server::openapi_document().to_string(), "served as generated");
    let tags: BTreeSet<&str> = doc["tags"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    let ops = operations(&doc);
    assert!(ops.len() >= 90, "only {} operations", ops.len());
    let mut ids = BTreeSet::new();
    for (method, path, op) in &ops {
        let at = format!("{method} {path}");
        let summary = op["summary"].as_str().unwrap_or("");
        assert!(!summary.is_empty() && summary.chars().count() <= 121, "{at}: summary {summary:?}");
        let op_tags = op["tags"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{at}: no tags"));
        for t in op_tags {
            assert!(tags.contains(t.as_str().unwrap()), "{at}: tag {t} is not one of the document's");
        }
        let responses = op["responses"].as_object().filter(|r| !r.is_empty());
        let responses = responses.unwrap_or_else(|| panic!("{at}: no responses"));
        assert!(responses.keys().any(|s| s.starts_with('2') || s == "101"), "{at}: no success answer");
        // Who may call is stated: a security requirement (an empty one is "public") and
        // the same in words.
        let security = op["security"].as_array().unwrap_or_else(|| panic!("{at}: no security requirement"));
        for req in security {
            for (scheme, roles) in req.as_object().unwrap() {
                assert!(schemes.contains_key(scheme), "{at}: unknown scheme {scheme}");
                for r in roles.as_array().unwrap() {
                    let known = [
                        "admin",
                        "operator",
                        "patrol_leader",
                        "post_officer",
                        "grid_member",
                        "partner",
                        "device",
                        "metrics",
                    ];
                    assert!(known.contains(&r.as_str().unwrap()), "{at}: unknown role {r}");
                }
            }
        }
        let description = op["description"].as_str().unwrap_or("");
        assert!(description.contains("**Who may call**") || description.contains("**Public**"), "{at}: {description}");
        // Every `{param}` of the path is declared.
        for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
            let declared =
                op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == name && p["in"] == "path");
            assert!(declared, "{at}: path parameter {name} is not declared");
        }
        assert!(ids.insert(op["operationId"].as_str().map(str::to_owned)), "{at}: operationId repeated");
        // A body that is read names its content type.
        if let Some(body) = op.get("requestBody") {
            assert!(body["content"].as_object().is_some_and(|c| !c.is_empty()), "{at}: request body without a type");
        }
    }
    // The main request types are described field by field.
    for (path, schema) in [
        ("/api/v1/devices", "NewDevice"),
        ("/api/v1/positions", "PositionsBatch"),
        ("/api/v1/incidents", "NewIncident"),
        ("/api/v1/reports", "NewReport"),
        ("/api/v1/mediation", "WalkIn"),
    ] {
        let r = &doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(r, &Value::from(format!("#/components/schemas/{schema}")), "{path}");
        assert!(doc["components"]["schemas"][schema]["properties"].is_object(), "{schema}");
    }
    let live = doc["paths"]["/api/v1/live"]["get"]["description"].as_str().unwrap();
    assert!(live.contains("/api/v1/schemas/feed.json"), "the live feed names its messages' schema");
    srv.stop().await;
}

/// Whether an answer came from a handler: not a 405 (no such method on the path), and a
/// 404 only as the handlers answer it, with the API's JSON error (the web page fallback
/// answers a missing file otherwise).
fn from_a_handler(status: u16, body: &[u8]) -> bool {
    if status == 405 {
        return false;
    }
    if status != 404 {
        return true;
    }
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v["error"]["status"] == 404)
}

/// A path with its parameters filled in: numbers where the handler reads one.
fn concrete(path: &str, op: &Value) -> String {
    let mut out = path.to_owned();
    for p in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().unwrap();
        let numeric = matches!(p["schema"]["type"].as_str(), Some("integer"));
        out = out.replace(&format!("{{{name}}}"), if numeric { "1" } else { "x1" });
    }
    out
}

#[tokio::test]
async fn every_described_operation_reaches_a_handler_and_nothing_else_does() {
    let srv =
        Server::start_in(liandong_test_support::fresh_dir("openapi-routes"), vec![token(ADMIN, Role::Admin)], |_| {})
            .await;
    let doc = served_document(&srv).await;
    let mut missing = Vec::new();
    for (method, path, op) in operations(&doc) {
        let url = format!("{}{}", srv.url, concrete(&path, &op));
        // No token: a handler answers 401 (or its public answer) without side effects.
        let req = srv.http.request(method.parse().unwrap(), &url);
        let req =
            if method == "GET" || method == "DELETE" { req } else { req.header("content-type", "text/plain").body("") };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.bytes().await.unwrap();
        if !from_a_handler(status, &body) {
            missing.push(format!("{method} {path}: {status} {}", String::from_utf8_lossy(&body)));
        }
    }
    assert!(missing.is_empty(), "described but not routed:\n{}", missing.join("\n"));
    // The check tells the fallback apart: paths and methods the document does not have
    // are not taken for routes.
    for (method, path) in
        [("GET", "/api/v1/no-such-endpoint"), ("DELETE", "/api/v1/whoami"), ("PUT", "/api/v1/incidents")]
    {
        let res = srv.http.request(method.parse().unwrap(), format!("{}{path}", srv.url)).send().await.unwrap();
        let status = res.status().as_u16();
        assert!(!from_a_handler(status, &res.bytes().await.unwrap()), "{method} {path} answered {status} as a route");
    }
    srv.stop().await;
}

/// The router cannot hold an undescribed route: `lib.rs` registers every route through
/// utoipa-axum's `routes!` (which takes the path and methods from the handler's
/// `#[utoipa::path]`), never with axum's `.route(`, `.route_service(`, `.nest(` or
/// `.merge(` of a plain router, anywhere in the crate (the web page's file service is the
/// fallback, not a route).
#[test]
fn routes_are_registered_only_through_the_documented_path() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut faults = Vec::new();
    for entry in walk(&src) {
        let text = std::fs::read_to_string(&entry).unwrap();
        let rel = entry.strip_prefix(&src).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for plain in [".route(\"", ".route_service(\"", ".nest(\"", ".nest_service(\"", ".merge(Router"] {
                if code.contains(plain) {
                    faults.push(format!("{rel}:{}: `{plain}` registers a route the OpenAPI document does not describe; use `.routes(routes!(handler))`", n + 1));
                }
            }
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
    // One `routes!` per path: as many as the document has paths.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let doc: Value = serde_json::from_str(&liandong_server::openapi_document()).unwrap();
    assert_eq!(lib.matches(".routes(routes!(").count(), doc["paths"].as_object().unwrap().len());
}

/// The `.rs` files under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn the_feed_schema_is_public_and_is_json_schema_2020_12() {
    let srv =
        Server::start_in(liandong_test_support::fresh_dir("openapi-schema"), vec![token(ADMIN, Role::Admin)], |_| {})
            .await;
    let res = srv.http.get(format!("{}/api/v1/schemas/feed.json", srv.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let schema: Value = res.json().await.unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(schema["$defs"].as_object().is_some_and(|d| d.len() >= 10), "a definition per message type");
    srv.stop().await;
}

/// The positions batch is described by a type of its own (the ingest crate decodes it):
/// an item with every property the document names is one the decoder accepts, and the
/// document, like the decoder, allows no other.
#[test]
fn the_described_positions_item_is_the_one_the_decoder_reads() {
    let doc: Value = serde_json::from_str(&liandong_server::openapi_document()).unwrap();
    let item = &doc["components"]["schemas"]["PositionItem"];
    assert_eq!(item["additionalProperties"], false, "unknown keys are refused");
    let sample = serde_json::json!({
        "device_id": "d1", "lon": 107.2, "lat": 30.7, "time": "2026-01-01T00:00:00Z", "datum": "gcj02",
        "speed_mps": 1.5, "course_deg": 90, "altitude_m": 400, "accuracy_m": 8, "battery_pct": 80,
        "attributes": {"shift": "night"}, "alarm": "sos", "mock": false,
    });
    let described: BTreeSet<&str> = item["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    let sampled: BTreeSet<&str> = sample.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(described, sampled, "the sample holds every described property");
    let body = serde_json::json!({ "positions": [sample] }).to_string();
    let items = liandong_ingest::json::decode_batch(body.as_bytes()).expect("a batch");
    assert!(items[0].is_ok(), "{:?}", items[0].as_ref().err());
}

#[tokio::test]
async fn the_contract_is_answered_to_any_caller_with_or_without_a_token() {
    let srv =
        Server::start_in(liandong_test_support::fresh_dir("openapi-anyone"), vec![token(ADMIN, Role::Admin)], |_| {})
            .await;
    for path in ["/api/v1/openapi.json", "/api/v1/schemas/feed.json"] {
        for bearer in [None, Some(ADMIN), Some("no-such-token")] {
            let mut req = srv.http.get(format!("{}{path}", srv.url));
            if let Some(t) = bearer {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200, "{path} with {bearer:?}");
        }
    }
    srv.stop().await;
}
