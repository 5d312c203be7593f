//! The HTTP API through `Router::oneshot`: device registration, the three report
//! shapes, enrichment and fences on the wire, and the bad-input table.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use liandong_server::auth::Role;
use liandong_server::config::{Config, Secret, TokenConfig};
use liandong_server::App;
use liandong_test_support::{fresh_dir, now_s};
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "test-admin-token";
const OPERATOR: &str = "test-operator-token";
const KEY: &str = "device-key-0001";

/// A fresh directory for `name` (not created).
fn temp_dir(name: &str) -> PathBuf {
    fresh_dir(&format!("http-{name}"))
}

fn config(name: &str) -> Config {
    config_in(temp_dir(name))
}

/// The test configuration on a data directory as it is (a restart keeps its data): the
/// repository's page, a 64 KiB body limit, and tokens named after their roles (the
/// timelines name them).
fn config_in(data_dir: PathBuf) -> Config {
    let mut c = liandong_test_support::config(data_dir);
    c.web_dir = liandong_test_support::root().join("web");
    c.ingest.max_body_bytes = 64 * 1024;
    c.tokens = vec![
        TokenConfig {
            token: Secret::new(ADMIN),
            role: Role::Admin,
            name: "admin".into(),
            unit_id: None,
            person_id: None,
        },
        TokenConfig {
            token: Secret::new(OPERATOR),
            role: Role::Operator,
            name: "operator".into(),
            unit_id: None,
            person_id: None,
        },
    ];
    c
}

struct Harness {
    app: App,
}

impl Harness {
    async fn new(name: &str) -> Harness {
        let app = App::build(config(name)).await.unwrap();
        let h = Harness { app };
        let (s, _) = h
            .send(Request::post("/api/v1/devices").header("authorization", format!("Bearer {ADMIN}")).header("content-type", "application/json"), json!({"device_id": "866001", "name": "石河镇巡防队 1号", "kind": "patrol_member", "unit_id": "team-1", "key": KEY}).to_string())
            .await;
        assert_eq!(s, StatusCode::CREATED);
        h
    }

    async fn send(&self, req: axum::http::request::Builder, body: impl Into<Body>) -> (StatusCode, Value) {
        let res = self.app.router.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Request::get(uri), Body::empty()).await
    }

    async fn devices(&self) -> Value {
        let (s, v) = self
            .send(Request::get("/api/v1/devices").header("authorization", format!("Bearer {OPERATOR}")), Body::empty())
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

#[tokio::test]
async fn an_osmand_report_is_stored_enriched_and_listed() {
    let h = Harness::new("osmand").await;
    let t = now_s();
    let (s, v) = h.get(&format!("/osmand?id=866001&timestamp={t}&lat=30.75&lon=107.05&speed=1.9438&bearing=45&altitude=400&accuracy=8&batt=87&key={KEY}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let devices = h.devices().await;
    let last = &devices["devices"][0]["last"];
    assert_eq!(last["device_id"], "866001");
    assert_eq!(last["enrichment"]["township"]["id"], "t-west");
    assert_eq!(last["enrichment"]["post"]["id"], "p-west");
    assert_eq!(last["enrichment"]["nearest_posts"][0]["id"], "p-west");
    assert!((last["speed_mps"].as_f64().unwrap() - 1.0).abs() < 0.01, "1.9438 knots is 1 m/s: {last}");
    assert!(devices["devices"][0].get("key").is_none(), "keys are never listed");
    h.app.finish().await;
}

#[tokio::test]
async fn a_batch_reports_fence_transitions_and_answers_each_item() {
    let h = Harness::new("batch").await;
    let t = now_s() as i64 * 1000 - 120_000;
    let body = json!({"positions": [
        {"device_id": "866001", "lon": 107.08, "lat": 30.70, "time": t},
        {"device_id": "866001", "lon": 107.10, "lat": 30.70, "time": t + 60_000},
        {"device_id": "866001", "lon": 107.10, "lat": 91.0, "time": t + 61_000},
        {"device_id": "nobody", "lon": 107.10, "lat": 30.70, "time": t + 62_000},
    ]});
    let (s, v) = h
        .send(
            Request::post("/api/v1/positions")
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "application/json"),
            body.to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["accepted"][1]["seq"].as_i64().unwrap(), v["accepted"][0]["seq"].as_i64().unwrap() + 1);
    assert_eq!(v["rejected"][0]["index"], 2);
    assert_eq!(v["rejected"][0]["field"], "positions[2].lat");
    assert_eq!(v["rejected"][1]["field"], "positions[3].device_id");
    let last = &h.devices().await["devices"][0]["last"];
    assert_eq!(last["enrichment"]["fence_events"][0]["detect"], "enter", "{last}");
    assert_eq!(last["enrichment"]["fences_inside"][0], "f-school");
    h.app.finish().await;
}

/// Each row: a request and the status and field the answer must name. After the whole
/// table the server still takes a good report.
#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field() {
    let h = Harness::new("bad").await;
    let t = now_s();
    let json_post = |auth: &str| {
        Request::post("/api/v1/positions")
            .header("authorization", format!("Bearer {auth}"))
            .header("content-type", "application/json")
    };
    let big = format!(
        "{{\"positions\": [{}]}}",
        vec!["{\"device_id\":\"866001\",\"lon\":107.1,\"lat\":30.7}"; 2000].join(",")
    );
    let rows: Vec<(&str, axum::http::request::Builder, String, StatusCode, &str)> = vec![
        ("malformed JSON", json_post(KEY), "{\"positions\": [".into(), StatusCode::BAD_REQUEST, "body"),
        (
            "lat 91",
            json_post(KEY),
            json!({"positions": [{"device_id": "866001", "lon": 107.1, "lat": 91.0}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "positions[0].lat",
        ),
        (
            "NaN over OsmAnd",
            Request::get(format!("/osmand?id=866001&lat=NaN&lon=107.1&timestamp={t}&key={KEY}")),
            String::new(),
            StatusCode::BAD_REQUEST,
            "lat",
        ),
        (
            "unknown device",
            Request::get(format!("/osmand?id=999999&lat=30.7&lon=107.1&timestamp={t}&key={KEY}")),
            String::new(),
            StatusCode::FORBIDDEN,
            "id",
        ),
        (
            "wrong key",
            Request::get(format!("/osmand?id=866001&lat=30.7&lon=107.1&timestamp={t}&key=not-the-key")),
            String::new(),
            StatusCode::UNAUTHORIZED,
            "key",
        ),
        (
            "no key",
            Request::get(format!("/osmand?id=866001&lat=30.7&lon=107.1&timestamp={t}")),
            String::new(),
            StatusCode::UNAUTHORIZED,
            "key",
        ),
        ("oversized body", json_post(KEY), big, StatusCode::PAYLOAD_TOO_LARGE, "body"),
        (
            "wrong content type",
            Request::post("/api/v1/positions")
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "text/plain"),
            "hello".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
        ),
        ("bad token", json_post("nope-nope-nope"), "{}".into(), StatusCode::UNAUTHORIZED, "authorization"),
        (
            "operator may not register devices",
            Request::post("/api/v1/devices")
                .header("authorization", format!("Bearer {OPERATOR}"))
                .header("content-type", "application/json"),
            json!({"device_id": "x1", "name": "x"}).to_string(),
            StatusCode::FORBIDDEN,
            "authorization",
        ),
        (
            "device id with a space",
            Request::post("/api/v1/devices")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json"),
            json!({"device_id": "a b", "name": "x"}).to_string(),
            StatusCode::BAD_REQUEST,
            "device_id",
        ),
        (
            "unknown device kind",
            Request::post("/api/v1/devices")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json"),
            json!({"device_id": "ab", "name": "x", "kind": "tank"}).to_string(),
            StatusCode::BAD_REQUEST,
            "kind",
        ),
        (
            // PostgreSQL stores no U+0000: accepted, one such report would fail the
            // group commit of everyone's reports that share it.
            "NUL in an attribute",
            json_post(KEY),
            json!({"positions": [{"device_id": "866001", "lon": 107.1, "lat": 30.7, "attributes": {"note": "a\u{0}b"}}]})
                .to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "positions[0].attributes.note",
        ),
        (
            "NUL over OsmAnd",
            Request::get(format!("/osmand?id=866001&lat=30.7&lon=107.1&timestamp={t}&key={KEY}&note=a%00b")),
            String::new(),
            StatusCode::BAD_REQUEST,
            "note",
        ),
        (
            "NUL in a device's name",
            Request::post("/api/v1/devices")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json"),
            json!({"device_id": "ab", "name": "x\u{0}"}).to_string(),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "timestamp far in the future",
            Request::get(format!("/osmand?id=866001&lat=30.7&lon=107.1&timestamp={}&key={KEY}", t + 86_400)),
            String::new(),
            StatusCode::BAD_REQUEST,
            "timestamp",
        ),
    ];
    for (name, req, body, status, field) in rows {
        let (s, v) = h.send(req, body).await;
        assert_eq!(s, status, "{name}: {v}");
        let named = v["error"]["field"].as_str().or_else(|| v["rejected"][0]["field"].as_str());
        assert_eq!(named, Some(field), "{name}: {v}");
    }
    let (s, _) = h.get(&format!("/osmand?id=866001&lat=30.7&lon=107.1&timestamp={t}&key={KEY}")).await;
    assert_eq!(s, StatusCode::OK, "the server keeps serving");
    let (s, _) = h.get("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    h.app.finish().await;
}

#[tokio::test]
async fn layers_are_listed_and_served_as_geojson() {
    let h = Harness::new("layers").await;
    let (s, v) = h
        .send(Request::get("/api/v1/layers").header("authorization", format!("Bearer {OPERATOR}")), Body::empty())
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["layers"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"posts") && names.contains(&"boundary"), "{names:?}");
    let res = h
        .app
        .router
        .clone()
        .oneshot(Request::get("/api/v1/layers/posts?token=test-operator-token").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/geo+json");
    let fc: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"].as_array().unwrap().len(), 2);
    let (s, _) = h.get("/api/v1/layers/posts").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "layers need a token");
    let (s, _) = h
        .send(Request::get("/api/v1/layers/nope").header("authorization", format!("Bearer {OPERATOR}")), Body::empty())
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    h.app.finish().await;
}

/// GDAL is what analysts' tools (QGIS, ogr2ogr) read layers with: every served layer
/// must open in `ogrinfo` with its features. `./scripts/test` installs gdal-bin.
#[tokio::test]
async fn every_layer_opens_in_gdal_ogrinfo() {
    let h = Harness::new("ogrinfo").await;
    let dir = temp_dir("ogrinfo-files");
    std::fs::create_dir_all(&dir).unwrap();
    let (_, list) = h
        .send(Request::get("/api/v1/layers").header("authorization", format!("Bearer {OPERATOR}")), Body::empty())
        .await;
    for layer in list["layers"].as_array().unwrap() {
        let name = layer["name"].as_str().unwrap();
        let res = h
            .app
            .router
            .clone()
            .oneshot(Request::get(format!("/api/v1/layers/{name}?token={OPERATOR}")).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let file = dir.join(format!("{name}.geojson"));
        std::fs::write(&file, res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let out = std::process::Command::new("ogrinfo")
            .args(["-ro", "-so", "-al"])
            .arg(&file)
            .output()
            .expect("ogrinfo (gdal-bin) must be installed: ./scripts/test installs it");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "ogrinfo failed on {name}: {}", String::from_utf8_lossy(&out.stderr));
        let expected = format!("Feature Count: {}", layer["features"]);
        assert!(text.contains(&expected), "{name}: expected {expected:?} in\n{text}");
    }
    h.app.finish().await;
}

/// An incident through every state, moved by the officer's phone; a late sign-for
/// escalates to the post leader, then to the command centre (the escalation tick is
/// driven here with explicit times; the ticker's clock is tested with paused time).
#[tokio::test]
async fn an_incident_goes_through_every_state_and_a_late_sign_for_escalates() {
    let h = Harness::new("incident").await;
    let json_req = |token: &str, uri: String| {
        Request::post(uri).header("authorization", format!("Bearer {token}")).header("content-type", "application/json")
    };
    let (s, v) = h
        .send(
            json_req(OPERATOR, "/api/v1/incidents".into()),
            json!({"title": "商圈斗殴", "priority": 1, "lon": 107.05, "lat": 30.75}).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["incident"]["incident_id"].as_i64().unwrap();
    let step = |token: &'static str, body: Value| {
        let uri = format!("/api/v1/incidents/{id}/actions");
        let h = &h;
        async move { h.send(json_req(token, uri), body.to_string()).await }
    };
    let (s, v) = step(OPERATOR, json!({"action": "dispatch", "device_id": "866001"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["incident"]["state"], "dispatched");
    assert_eq!(v["incident"]["assigned_unit"], "team-1");
    let dispatched_ms = v["incident"]["state_since_ms"].as_i64().unwrap();

    // Nobody signs for it: at +30 s nothing, at +61 s the post leader, at +121 s the centre.
    use liandong_server::sequencer::IncidentCommand::Tick;
    for (after_s, escalation) in [(30, "none"), (61, "post_leader"), (90, "post_leader"), (121, "command_centre")] {
        h.app.state.ingest.submit_incident(Tick { now_ms: dispatched_ms + after_s * 1000 }).await.unwrap().unwrap();
        let (_, v) = h
            .send(
                Request::get(format!("/api/v1/incidents/{id}")).header("authorization", format!("Bearer {OPERATOR}")),
                Body::empty(),
            )
            .await;
        assert_eq!(v["incident"]["escalation"], escalation, "+{after_s} s: {v}");
    }

    // Only the assigned phone signs; it cannot close; steps out of order are refused.
    let (s, v) = step(ADMIN, json!({"action": "arrive"})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("action")), "{v}");
    for (action, state) in
        [("sign", "signed_for"), ("depart", "en_route"), ("arrive", "on_scene"), ("feedback", "feedback")]
    {
        let (s, v) = step(KEY, json!({"action": action, "note": format!("{action} ok")})).await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
        assert_eq!(v["incident"]["state"], state);
        assert_eq!(v["incident"]["escalation"], "none", "a step taken clears the escalation");
    }
    let (s, _) = step(KEY, json!({"action": "close"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "closing is the command centre's step");
    let (s, v) = step(OPERATOR, json!({"action": "close", "note": "处置完毕"})).await;
    assert_eq!((s, v["incident"]["state"].as_str()), (StatusCode::OK, Some("closed")));
    let (s, _) = step(OPERATOR, json!({"action": "cancel"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a closed incident is final: no open incident has its id");

    let (_, v) = h
        .send(
            Request::get(format!("/api/v1/incidents/{id}")).header("authorization", format!("Bearer {OPERATOR}")),
            Body::empty(),
        )
        .await;
    let timeline: Vec<(&str, &str)> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        timeline,
        [
            ("create", "operator"),
            ("dispatch", "operator"),
            ("escalate", "server"),
            ("escalate", "server"),
            ("sign", "device:866001"),
            ("depart", "device:866001"),
            ("arrive", "device:866001"),
            ("feedback", "device:866001"),
            ("close", "operator"),
        ],
        "{v}"
    );
    h.app.finish().await;
}

/// The sequencer's refusals are answered by kind, each naming the field and giving the
/// reason as it always did: an incident that is not open is not found (404), a phone
/// acting on an incident assigned to someone else conflicts with the dispatch (409), and
/// a step the incident's state does not allow cannot be processed (422).
#[tokio::test]
async fn refusals_are_404_for_an_unknown_incident_409_for_another_units_task_and_422_for_a_step_out_of_order() {
    let h = Harness::new("refusals").await;
    let send = |token: &'static str, uri: String, body: Value| {
        let h = &h;
        async move {
            let req = Request::post(uri)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json");
            h.send(req, body.to_string()).await
        }
    };
    let (s, v) = send(
        OPERATOR,
        "/api/v1/incidents".into(),
        json!({"title": "refusals", "priority": 3, "lon": 107.05, "lat": 30.75}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["incident"]["incident_id"].as_i64().unwrap();
    let actions = |id: i64| format!("/api/v1/incidents/{id}/actions");
    let error =
        |v: &Value| (v["error"]["field"].as_str().map(str::to_owned), v["error"]["reason"].as_str().map(str::to_owned));

    let (s, v) = send(OPERATOR, actions(id + 1_000_000), json!({"action": "cancel"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error(&v), (Some("action".into()), Some(format!("no open incident {}", id + 1_000_000))));

    let (s, v) = send(KEY, actions(id), json!({"action": "sign"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(error(&v), (Some("action".into()), Some(format!("incident {id} is not assigned to device 866001"))));

    let (s, v) = send(OPERATOR, actions(id), json!({"action": "arrive"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error(&v), (Some("action".into()), Some("cannot arrive an incident that is new".into())));

    // Nothing refused was stored: the incident is as it was created.
    let (_, v) = h
        .send(
            Request::get(format!("/api/v1/incidents/{id}")).header("authorization", format!("Bearer {OPERATOR}")),
            Body::empty(),
        )
        .await;
    assert_eq!(
        (v["incident"]["state"].as_str(), v["timeline"].as_array().map(Vec::len)),
        (Some("new"), Some(1)),
        "{v}"
    );
    h.app.finish().await;
}

/// A unit that stops reporting is reported stale to operators once, and again only
/// after it has reported and gone silent anew.
#[tokio::test]
async fn a_silent_unit_raises_one_stale_alert_per_silence() {
    let h = Harness::new("stale").await;
    let t = now_s();
    let (s, _) = h.get(&format!("/osmand?id=866001&timestamp={t}&lat=30.75&lon=107.05&key={KEY}")).await;
    assert_eq!(s, StatusCode::OK);
    use liandong_server::sequencer::IncidentCommand::Tick;
    let tick = |after_min: i64| Tick { now_ms: (t as i64) * 1000 + after_min * 60_000 };
    let stale = || async {
        h.app.state.store.alerts_after(0, 100).await.unwrap().into_iter().filter(|a| a.rule == "stale_unit").count()
    };
    h.app.state.ingest.submit_incident(tick(9)).await.unwrap().unwrap();
    assert_eq!(stale().await, 0, "9 minutes of silence is not yet stale");
    h.app.state.ingest.submit_incident(tick(11)).await.unwrap().unwrap();
    h.app.state.ingest.submit_incident(tick(12)).await.unwrap().unwrap();
    assert_eq!(stale().await, 1, "one alert per silence");
    let alert = h.app.state.store.alerts_after(0, 100).await.unwrap().pop().unwrap();
    assert!(alert.payload.contains("\"device_id\":\"866001\""), "{}", alert.payload);
    assert_eq!(alert.roles, ["operator"]);
    // It reports again (a fix 20 minutes on), then falls silent again.
    let t2 = t + 20 * 60;
    let (s, _) = h.get(&format!("/osmand?id=866001&timestamp={t2}&lat=30.75&lon=107.05&key={KEY}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a fix 20 minutes in the future is refused");
    let (s, _) = h.get(&format!("/osmand?id=866001&lat=30.75&lon=107.05&key={KEY}")).await;
    assert_eq!(s, StatusCode::OK, "a fix without time takes the receive time");
    let now = now_s();
    let tick_at = |s: u64| Tick { now_ms: (s as i64) * 1000 };
    h.app.state.ingest.submit_incident(tick_at(now + 5 * 60)).await.unwrap().unwrap();
    assert_eq!(stale().await, 1, "reporting again ended the silence");
    h.app.state.ingest.submit_incident(tick_at(now + 11 * 60)).await.unwrap().unwrap();
    assert_eq!(stale().await, 2, "a new silence, a new alert");
    h.app.finish().await;
}

/// Device and camera keys are kept hashed: the database holds no usable key; keys an
/// older version kept in plaintext are hashed at start, and still sign in.
#[tokio::test]
async fn keys_are_kept_hashed_and_old_plaintext_keys_are_hashed_at_start() {
    use liandong_store::{CameraRecord, DeviceRecord, Durability, Store};
    let dir = temp_dir("keys");
    {
        let store = Store::open(&dir, Durability::Normal).await.unwrap();
        let device = DeviceRecord {
            device_id: "866009".into(),
            name: "旧手机".into(),
            kind: "patrol_member".into(),
            unit_id: Some("team-1".into()),
            key: "legacy-key-0009".into(),
            created_ms: 1,
            person_id: None,
            updated_ms: 1,
        };
        store.upsert_device(&device).await.unwrap();
        let camera = CameraRecord {
            camera_id: "cam-9".into(),
            name: "旧卡口".into(),
            kind: "checkpoint".into(),
            lon: 107.15,
            lat: 30.6,
            key: "legacy-camera-key".into(),
            updated_ms: 1,
        };
        store.upsert_camera(&camera).await.unwrap();
        store.close().await;
    }
    let h = Harness { app: App::build(config_in(dir)).await.unwrap() };
    let kept_devices = h.app.state.store.devices().await.unwrap();
    let kept_cameras = h.app.state.store.cameras().await.unwrap();
    let kept: Vec<&str> =
        kept_devices.iter().map(|d| d.key.as_str()).chain(kept_cameras.iter().map(|c| c.key.as_str())).collect();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|k| k.starts_with("sha256:") && !k.contains("legacy")), "{kept:?}");
    let t = now_s();
    let (s, v) = h.get(&format!("/osmand?id=866009&timestamp={t}&lat=30.75&lon=107.05&key=legacy-key-0009")).await;
    assert_eq!(s, StatusCode::OK, "the old key still signs in: {v}");
    let (s, _) = h.get(&format!("/osmand?id=866009&timestamp={t}&lat=30.75&lon=107.05&key={}", kept[0])).await;
    assert!(s.is_client_error(), "the kept form is not a key: {s}");

    // A device registered now: its key is answered once and kept hashed.
    let (s, v) = h
        .send(
            Request::post("/api/v1/devices")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json"),
            json!({"device_id": "866010", "name": "新手机", "kind": "patrol_member", "unit_id": "team-1"}).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().expect("the new key, once").to_owned();
    assert!(v["device"].get("key").is_none(), "{v}");
    let stored = h.app.state.store.devices().await.unwrap().into_iter().find(|d| d.device_id == "866010").unwrap();
    assert!(stored.key.starts_with("sha256:") && !stored.key.contains(&key));
    let (s, _) = h.get(&format!("/osmand?id=866010&timestamp={t}&lat=30.75&lon=107.05&key={key}")).await;
    assert_eq!(s, StatusCode::OK);
    h.app.finish().await;
}

/// A restart does not report again a silence the operators were told of; a unit that
/// fell silent and was not yet reported is reported after it.
#[tokio::test]
async fn a_restart_does_not_repeat_stale_alerts() {
    use liandong_server::sequencer::IncidentCommand::Tick;
    let h = Harness::new("stale-restart").await;
    let t = now_s();
    let tick = |after_min: i64| Tick { now_ms: (t as i64) * 1000 + after_min * 60_000 };
    let (s, _) = h.get(&format!("/osmand?id=866001&timestamp={t}&lat=30.75&lon=107.05&key={KEY}")).await;
    assert_eq!(s, StatusCode::OK);
    h.app.state.ingest.submit_incident(tick(11)).await.unwrap().unwrap();
    // A second unit reports after that tick: its silence is not yet reported.
    let (s, _) = h
        .send(Request::post("/api/v1/devices").header("authorization", format!("Bearer {ADMIN}")).header("content-type", "application/json"), json!({"device_id": "866002", "name": "石河镇巡防队 2号", "kind": "patrol_member", "unit_id": "team-1", "key": "device-key-0002"}).to_string())
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = h.get("/osmand?id=866002&lat=30.75&lon=107.06&key=device-key-0002").await;
    assert_eq!(s, StatusCode::OK);
    let stale_of = |app: &App| {
        let store = app.state.store.clone();
        async move {
            let alerts = store.alerts_after(0, 100).await.unwrap();
            let mut devices: Vec<String> = alerts
                .iter()
                .filter(|a| a.rule == "stale_unit")
                .map(|a| {
                    serde_json::from_str::<Value>(&a.payload).unwrap()["data"]["device_id"].as_str().unwrap().to_owned()
                })
                .collect();
            devices.sort();
            devices
        }
    };
    assert_eq!(stale_of(&h.app).await, ["866001"]);

    let dir = h.app.state.config.data_dir.clone();
    h.app.finish().await;
    let app = App::build(config_in(dir)).await.unwrap();
    app.state.ingest.submit_incident(tick(25)).await.unwrap().unwrap();
    assert_eq!(stale_of(&app).await, ["866001", "866002"], "866001 not again; 866002 once");
    app.state.ingest.submit_incident(tick(26)).await.unwrap().unwrap();
    assert_eq!(stale_of(&app).await.len(), 2);
    app.finish().await;
}

#[tokio::test]
async fn history_answers_where_a_unit_was_and_its_track_without_jumps() {
    let harness = Harness::new("history").await;
    let h = &harness;
    let t = now_s() as i64 * 1000 - 3_600_000;
    // A walk east, a GPS jump to the far east of the county in between (marked, left
    // out), and a late fix uploaded after the phone was offline (kept).
    let body = json!({"positions": [
        {"device_id": "866001", "lon": 107.050, "lat": 30.75, "time": t},
        {"device_id": "866001", "lon": 107.052, "lat": 30.75, "time": t + 60_000},
        {"device_id": "866001", "lon": 107.400, "lat": 30.75, "time": t + 90_000},
        {"device_id": "866001", "lon": 107.054, "lat": 30.75, "time": t + 120_000},
        {"device_id": "866001", "lon": 107.053, "lat": 30.75, "time": t + 110_000},
    ]})
    .to_string();
    let auth = format!("Bearer {ADMIN}");
    let (s, v) = h
        .send(
            Request::post("/api/v1/positions")
                .header("authorization", &auth)
                .header("content-type", "application/json"),
            body,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let get = |uri: String| async move {
        h.send(Request::get(uri).header("authorization", format!("Bearer {OPERATOR}")), Body::empty()).await
    };
    // Where was it at t + 100 s? At the second fix: the jump at t + 90 s does not count.
    let (s, v) = get(format!("/api/v1/history/positions?at={}", t + 100_000)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["features"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["features"][0]["geometry"]["coordinates"], json!([107.052, 30.75]));
    assert_eq!(v["features"][0]["properties"]["device_id"], "866001");
    // At t + 115 s the late-uploaded fix (t + 110 s) is the answer.
    let (_, v) = get(format!("/api/v1/history/positions?at={}", t + 115_000)).await;
    assert_eq!(v["features"][0]["geometry"]["coordinates"], json!([107.053, 30.75]));
    // Outside the box, or silent for longer than max_age_s: nobody.
    let (_, v) = get(format!("/api/v1/history/positions?at={}&bbox=107.2,30.7,107.5,30.8", t + 115_000)).await;
    assert_eq!(v["features"], json!([]));
    let (_, v) = get(format!("/api/v1/history/positions?at={}&max_age_s=60", t + 600_000)).await;
    assert_eq!(v["features"], json!([]));
    // The track: time order, the jump left out.
    let (s, v) = get(format!("/api/v1/history/track?device_id=866001&from={t}&to={}", t + 200_000)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["geometry"]["type"], "LineString");
    assert_eq!(
        v["geometry"]["coordinates"],
        json!([[107.05, 30.75], [107.052, 30.75], [107.053, 30.75], [107.054, 30.75]])
    );
    assert_eq!(v["properties"]["fixes"], 4);
    // Bad input names the field.
    for (uri, field) in [
        ("/api/v1/history/positions".to_owned(), "at"),
        (format!("/api/v1/history/positions?at={t}&bbox=1,2,3"), "bbox"),
        (format!("/api/v1/history/positions?at={t}&max_age_s=0"), "max_age_s"),
        (format!("/api/v1/history/track?from={t}"), "device_id"),
        ("/api/v1/history/track?device_id=866001&from=noon".to_owned(), "from"),
        (format!("/api/v1/history/track?device_id=nobody&from={t}"), "device_id"),
        (format!("/api/v1/history/alerts?from={}&to={t}", t + 1), "from"),
    ] {
        let (s, v) = get(uri.clone()).await;
        assert!(s.is_client_error(), "{uri}: {s}");
        assert_eq!(v["error"]["field"], field, "{uri}: {v}");
    }
    let (s, _) = h.get(&format!("/api/v1/history/positions?at={t}")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    harness.app.finish().await;
}

#[tokio::test]
async fn hotspots_rank_where_incidents_cluster_and_name_each_townships_focus() {
    let harness = Harness::new("hotspots").await;
    let h = &harness;
    let post = |body: Value| async move {
        h.send(
            Request::post("/api/v1/incidents")
                .header("authorization", format!("Bearer {OPERATOR}"))
                .header("content-type", "application/json"),
            body.to_string(),
        )
        .await
    };
    // Three thefts at one corner of 西镇, a dispute across the county in 东镇.
    for i in 0..3 {
        let (s, v) = post(
            json!({"title": "盗窃", "kind": "theft", "priority": 2, "lon": 107.05 + i as f64 * 1e-4, "lat": 30.75}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, _) = post(json!({"title": "纠纷", "kind": "dispute", "priority": 3, "lon": 107.35, "lat": 30.55})).await;
    assert_eq!(s, StatusCode::CREATED);
    let get = |uri: &'static str| async move {
        h.send(Request::get(uri).header("authorization", format!("Bearer {OPERATOR}")), Body::empty()).await
    };
    let (s, v) = get("/api/v1/hotspots?top=3").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["events"], 4);
    // The band holding now has the theft corner on top.
    let band = v["top"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| !b["cells"].as_array().unwrap().is_empty())
        .expect("a band with cells");
    let best = &band["cells"][0];
    let ring = best["geometry"]["coordinates"][0].as_array().unwrap();
    let (lons, lats): (Vec<f64>, Vec<f64>) =
        ring.iter().map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())).unzip();
    let inside = |x: f64, lo: &[f64]| {
        x >= lo.iter().cloned().fold(f64::MAX, f64::min) && x <= lo.iter().cloned().fold(f64::MIN, f64::max)
    };
    assert!(inside(107.0501, &lons) && inside(30.75, &lats), "the top cell holds the thefts: {best}");
    assert_eq!(best["properties"]["count"], 3);
    let west = v["publicity_focus"].as_array().unwrap().iter().find(|t| t["township"] == "西镇").expect("西镇");
    assert_eq!(west["top_categories"][0]["category"], "theft");
    let east = v["publicity_focus"].as_array().unwrap().iter().find(|t| t["township"] == "东镇").expect("东镇");
    assert_eq!(east["top_categories"][0]["category"], "dispute");
    assert_eq!(v["bands"].as_array().unwrap().len(), 6);
    for (uri, field) in
        [("/api/v1/hotspots?days=0", "days"), ("/api/v1/hotspots?band=6", "band"), ("/api/v1/hotspots?top=x", "top")]
    {
        let (s, v) = get(uri).await;
        assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{uri}");
    }
    harness.app.finish().await;
}

#[tokio::test]
async fn dispatch_recommends_the_unit_that_arrives_first_by_road_not_the_nearest() {
    let harness = Harness::new("roadtime").await;
    let h = &harness;
    let admin = |uri: &'static str, body: Value| async move {
        h.send(
            Request::post(uri)
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json"),
            body.to_string(),
        )
        .await
    };
    for (id, key) in [("across", "key-across"), ("upstream", "key-upstream")] {
        let (s, v) =
            admin("/api/v1/devices", json!({"device_id": id, "name": id, "kind": "post_officer", "key": key})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // The incident is on 纵路 (the north-south road). `across` is nearer as the crow
    // flies but by 横路, which crosses 纵路 on a bridge with no junction; `upstream` is
    // farther, on 纵路 itself.
    let t = now_s() as i64 * 1000 - 30_000;
    let (s, v) = admin(
        "/api/v1/positions",
        json!({"positions": [
            {"device_id": "across", "lon": 107.12, "lat": 30.61, "time": t},
            {"device_id": "upstream", "lon": 107.1, "lat": 30.8, "time": t},
        ]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = h
        .send(
            Request::post("/api/v1/incidents")
                .header("authorization", format!("Bearer {OPERATOR}"))
                .header("content-type", "application/json"),
            json!({"title": "交通事故", "kind": "traffic", "priority": 1, "lon": 107.1, "lat": 30.7}).to_string(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rec = &v["recommended"];
    assert_eq!(rec["basis"], "road_time");
    let units: Vec<&str> = rec["units"].as_array().unwrap().iter().map(|u| u["device_id"].as_str().unwrap()).collect();
    assert_eq!(units, ["upstream", "across"], "{rec}");
    let d_across = rec["units"][1]["distance_m"].as_f64().unwrap();
    let d_upstream = rec["units"][0]["distance_m"].as_f64().unwrap();
    assert!(d_across < d_upstream, "the crow would send `across`: {rec}");
    // 11.1 km of township road at 40 km/h: about 1000 s; `across` cannot get there by road.
    let travel = rec["units"][0]["travel_s"].as_f64().unwrap();
    assert!((900.0..1200.0).contains(&travel), "{travel}");
    assert_eq!(rec["units"][1]["travel_s"], Value::Null);
    harness.app.finish().await;
}

/// Re-registering a lost phone: the same device id without a key gets a fresh key, and
/// the lost phone's key no longer reports or signs in.
#[tokio::test]
async fn registering_a_device_again_issues_a_new_key_and_the_old_one_stops_working() {
    let h = Harness::new("rekey").await;
    let register = |body: Value| {
        h.send(
            Request::post("/api/v1/devices")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json"),
            body.to_string(),
        )
    };
    let (s, v) = register(
        json!({"device_id": "866001", "name": "石河镇巡防队 1号", "kind": "patrol_member", "unit_id": "team-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "an existing device is updated, not created: {v}");
    let key = v["key"].as_str().expect("a new key, once").to_owned();
    assert_ne!(key, KEY);
    assert_eq!(key.len(), 24, "{key}");
    let t = now_s();
    let (s, v) = h.get(&format!("/osmand?id=866001&timestamp={t}&lat=30.75&lon=107.05&key={KEY}")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the lost phone's key is refused: {v}");
    let (s, v) = h.get(&format!("/osmand?id=866001&timestamp={t}&lat=30.75&lon=107.05&key={key}")).await;
    assert_eq!(s, StatusCode::OK, "the new key reports: {v}");
    let whoami = |token: String| {
        h.send(Request::get("/api/v1/whoami").header("authorization", format!("Bearer {token}")), Body::empty())
    };
    assert_eq!(whoami(KEY.into()).await.0, StatusCode::UNAUTHORIZED);
    let (s, v) = whoami(key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["device_id"], "866001");
    h.app.finish().await;
}

/// `GET /api/v1/whoami`: every kind of valid token learns who it is, and only that; a
/// missing or unknown token is refused.
#[tokio::test]
async fn whoami_tells_each_role_who_it_is_and_refuses_a_missing_or_unknown_token() {
    let mut config = config("whoami");
    let roles = [
        ("whoami-leader", Role::PatrolLeader, Some("team-1")),
        ("whoami-officer", Role::PostOfficer, Some("p-west")),
        ("whoami-grid", Role::GridMember, None),
        ("whoami-partner", Role::Partner, None),
        ("whoami-gateway", Role::Device, None),
    ];
    for (token, role, unit) in roles {
        config.tokens.push(TokenConfig {
            token: Secret::new(token),
            role,
            name: token.into(),
            unit_id: unit.map(Into::into),
            person_id: None,
        });
    }
    let h = Harness { app: App::build(config).await.unwrap() };
    let (s, _) = h
        .send(Request::post("/api/v1/devices").header("authorization", format!("Bearer {ADMIN}")).header("content-type", "application/json"), json!({"device_id": "866001", "name": "石河镇巡防队 1号", "kind": "patrol_member", "unit_id": "team-1", "key": KEY}).to_string())
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let ask = |auth: Option<&str>| {
        let req = Request::get("/api/v1/whoami");
        let req = match auth {
            Some(a) => req.header("authorization", a),
            None => req,
        };
        h.send(req, Body::empty())
    };
    let mut users = vec![(ADMIN, "admin", "admin", None), (OPERATOR, "operator", "operator", None)];
    users.extend(roles.iter().map(|(token, role, unit)| (*token, *token, role.as_str(), *unit)));
    for (token, name, role, unit) in users {
        let (s, v) = ask(Some(&format!("Bearer {token}"))).await;
        assert_eq!(s, StatusCode::OK, "{role}: {v}");
        assert_eq!(v, json!({"name": name, "role": role, "unit_id": unit, "person_id": null}), "{role}");
    }
    let (s, v) = ask(Some(&format!("Bearer {KEY}"))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"name": "石河镇巡防队 1号", "role": "device", "unit_id": "team-1", "device_id": "866001", "kind": "patrol_member",
               "person_id": null}),
        "a device's key names its device, never the key, and the person it acts for (none here)"
    );
    for (auth, reason) in [(None, "a bearer token is required"), (Some("Bearer not-a-token"), "the token is not valid")]
    {
        let (s, v) = ask(auth).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(v["error"]["field"], "authorization", "{v}");
        assert_eq!(v["error"]["reason"], reason, "{v}");
    }
    h.app.finish().await;
}

#[tokio::test]
async fn a_phone_signed_in_with_its_device_key_reads_the_maps_layers_but_not_the_hotspots() {
    let h = Harness::new("device-layers").await;
    let with = |token: &str, uri: &str| Request::get(uri).header("authorization", format!("Bearer {token}"));
    let (s, v) = h.send(with(KEY, "/api/v1/layers"), Body::empty()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["layers"].as_array().unwrap().iter().filter_map(|l| l["name"].as_str()).collect();
    assert!(names.contains(&"boundary") && names.contains(&"roads"), "{names:?}");
    assert!(!names.contains(&"hotspots"), "the hotspot layer is the centre's: {names:?}");
    let (s, v) = h.send(with(KEY, "/api/v1/layers/boundary"), Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["type"], "FeatureCollection");
    let (s, v) = h.send(with(KEY, "/api/v1/layers/hotspots"), Body::empty()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    for token in ["not-a-key", "device-key-0002"] {
        let (s, _) = h.send(with(token, "/api/v1/layers/boundary"), Body::empty()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token}");
    }
    h.app.finish().await;
}
