//! Cameras' JSON pushes and liveness (issue 17) against a server on `127.0.0.1:0`, on
//! both stores: Hikvision ISAPI JSON pushes (raw ANPR of a watch-listed plate, a
//! multipart JSON + JPEG face capture, an NVR heartbeat naming only `dynChannelID`) are
//! accepted like their XML twins and malformed ones refused naming the field; a camera
//! silent past `cameras.offline_after_s` raises one `camera_offline` alert, not again at
//! later ticks nor after a restart, and its next push ends the silence
//! (`camera_online`); a camera never heard from stays `unknown`; the status and
//! availability endpoints answer operators and administrators only; two instances on
//! one PostgreSQL database raise one alert for one silence.

use std::time::Duration;

use liandong_server::auth::Role;
use liandong_server::clock::Clock;
use liandong_server::config::{Config, TokenConfig};
use liandong_test_support::feed::next_of;
use liandong_test_support::{now_ms, on_both_stores, person_token, rfc3339, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "cams-admin-token";
const OPERATOR: &str = "cams-operator-token";
const LEADER: &str = "cams-leader-token";
const POST: &str = "cams-post-token";
const GRID: &str = "cams-grid-token";
const PARTNER: &str = "cams-partner-token";
const KEY_WEST: &str = "camera-key-west-01";
const KEY_EAST: &str = "camera-key-east-01";
const MIN: i64 = 60_000;
const BOUNDARY: &str = "MIME_boundary_json_1";

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
        unit_token(POST, Role::PostOfficer, "p-west"),
        token(GRID, Role::GridMember),
        person_token(PARTNER, Role::Partner, None, "mediator-1"),
    ]
}

/// A server on a manual clock (kept by the caller) with three cameras: the map's cam-1
/// (checkpoint, West town) and cam-east (skynet, East town) with push keys, and
/// cam-quiet (huiyan, East town), which never pushes. None when PostGIS is skipped.
async fn start(name: &str, backend: Backend, clock: &Clock) -> Option<(Server, Config)> {
    let dir = liandong_test_support::fresh_dir(&format!("cams-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    config.clock = clock.clone();
    backend.configure(&mut config, &format!("cams_{name}")).await?;
    let srv = Server::start(config.clone()).await;
    register_cameras(&srv).await;
    Some((srv, config))
}

async fn register_cameras(srv: &Server) {
    for (id, kind, lon, key) in [
        ("cam-1", "checkpoint", 107.15, Some(KEY_WEST)),
        ("cam-east", "skynet", 107.30, Some(KEY_EAST)),
        ("cam-quiet", "huiyan", 107.35, Some("camera-key-quiet-1")),
    ] {
        let body =
            json!({"camera_id": id, "name": format!("{id} 摄像机"), "kind": kind, "lon": lon, "lat": 30.6, "key": key});
        srv.admin("/api/v1/cameras", body).await;
    }
}

/// An NVR heartbeat in JSON: an inactive videoloss naming its channel only by
/// `dynChannelID`, dated now.
fn heartbeat_json() -> String {
    json!({
        "ipAddress": "10.23.1.2", "portNo": 80, "protocol": "HTTP", "macAddress": "3c:1b:f8:38:ba:23",
        "dynChannelID": 33, "dateTime": rfc3339(now_ms()), "activePostCount": 0,
        "eventType": "videoloss", "eventState": "inactive", "eventDescription": "videoloss alarm"
    })
    .to_string()
}

/// An ANPR push in JSON as newer checkpoint cameras send it, dated now.
fn anpr_json(plate: &str) -> String {
    json!({
        "ipAddress": "10.23.1.15", "portNo": 80, "protocol": "HTTP", "macAddress": "44:19:b6:0a:1b:2c",
        "channelID": 1, "dateTime": rfc3339(now_ms()), "activePostCount": 1, "isDataRetransmission": false,
        "eventType": "ANPR", "eventState": "active", "eventDescription": "ANPR", "channelName": "横路卡口",
        "ANPR": {"licensePlate": plate, "plateColor": "blue", "confidenceLevel": 97, "line": 1,
                 "direction": "forward", "vehicleType": "vehicle",
                 "vehicleInfo": {"color": "white", "vehicleLogoRecog": 1036}}
    })
    .to_string()
}

/// A face capture as a multipart push: the JSON part, then the face's JPEG.
fn face_capture_multipart() -> Vec<u8> {
    let doc = json!({
        "ipAddress": "10.23.1.45", "macAddress": "44:19:b6:6d:24:85", "channelID": 1,
        "dateTime": rfc3339(now_ms()), "activePostCount": 1,
        "eventType": "faceCapture", "eventState": "active", "eventDescription": "faceCapture",
        "faceCapture": [{"targetAttrs": {"deviceChannel": 1, "pId": "P-bg-1"},
                         "faces": [{"faceId": 17, "pId": "P-face-1", "contentID": "faceImage",
                                    "age": {"value": 35, "confidence": 71}}]}]
    })
    .to_string();
    let jpeg: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0xFF, 0xD9];
    [
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"faceCapture\"\r\nContent-Type: application/json\r\n\r\n").as_bytes(),
        doc.as_bytes(),
        format!("\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"faceImage\"; filename=\"faceImage.jpg\"\r\nContent-Type: image/jpeg\r\nContent-ID: P-face-1\r\n\r\n").as_bytes(),
        jpeg,
        format!("\r\n--{BOUNDARY}--\r\n").as_bytes(),
    ]
    .concat()
}

async fn push(srv: &Server, camera: &str, key: &str, content_type: &str, body: impl Into<Vec<u8>>) -> (u16, Value) {
    let r = srv.isapi(camera, key, content_type, body.into()).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn alerts_of(srv: &Server, rule: &str) -> Vec<Value> {
    let (s, v) = srv.get(ADMIN, "/api/v1/history/alerts").await;
    assert_eq!(s, 200, "{v}");
    v["alerts"].as_array().unwrap().iter().filter(|a| a["data"]["rule"] == rule).cloned().collect()
}

/// The status endpoint's entry of one camera.
async fn status_of(srv: &Server, camera: &str) -> Value {
    let (s, v) = srv.get(OPERATOR, "/api/v1/cameras/status").await;
    assert_eq!(s, 200, "{v}");
    v["cameras"].as_array().unwrap().iter().find(|c| c["camera_id"] == camera).cloned().unwrap_or(Value::Null)
}

/// Long enough for the offline check to run a few times.
async fn ticks() {
    tokio::time::sleep(liandong_server::camera_watch::TICK * 3).await;
}

async fn json_pushes_are_accepted_end_to_end_and_malformed_ones_refused(backend: Backend) {
    let clock = Clock::manual(now_ms());
    let Some((srv, _)) = start("json", backend, &clock).await else { return };
    let body = json!({"watch_id": "w-json-1", "kind": "plate", "value": "川S·J0001", "reason": "被盗车辆", "priority": 1, "roles": ["operator"]});
    srv.admin("/api/v1/watchlist", body).await;
    let mut ws = srv.ws(OPERATOR).await;

    let (s, v) = push(&srv, "cam-1", KEY_WEST, "application/json", anpr_json("川SJ0001")).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["alert_seq"].as_i64().is_some(), "a watch-listed plate read from JSON raises its alert: {v}");
    let alert = next_of(&mut ws, "alert", 5000).await.expect("the alert on the feed");
    assert_eq!(alert["data"]["rule"], "watchlist_plate", "{alert}");
    assert_eq!(alert["data"]["read"]["event"]["plate"]["color"], "blue", "{alert}");
    assert_eq!(alert["data"]["read"]["event"]["plate"]["confidence"], 97.0, "{alert}");

    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let (s, v) = push(&srv, "cam-1", KEY_WEST, &ct, face_capture_multipart()).await;
    assert_eq!((s, v["alert_seq"].clone()), (200, Value::Null), "a face capture of nobody watched: {v}");
    let (s, v) = push(&srv, "cam-east", KEY_EAST, "application/json; charset=UTF-8", heartbeat_json()).await;
    assert_eq!(s, 200, "{v}");

    for (name, ct, body, field) in [
        ("not JSON", "application/json", "{\"eventType\": ".to_owned(), "body"),
        ("no eventType", "application/json", "{\"eventState\": \"active\"}".to_owned(), "eventType"),
        (
            "a bad channel",
            "application/json",
            heartbeat_json().replace("\"dynChannelID\":33", "\"dynChannelID\":\"D1\""),
            "dynChannelID",
        ),
        ("an array", "application/json", "[{\"eventType\": \"VMD\"}]".to_owned(), "body"),
        (
            "JSON sniffed without a content type",
            "",
            "{\"eventState\": \"on\", \"eventType\": \"VMD\"}".to_owned(),
            "eventState",
        ),
    ] {
        let (s, v) = push(&srv, "cam-1", KEY_WEST, ct, body).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some(field)), "{name}: {v}");
    }
    let events = srv.get(ADMIN, "/api/v1/cameras/status").await.1;
    assert_eq!(events["cameras"].as_array().map(Vec::len), Some(3), "{events}");
    srv.stop().await;
}

async fn a_silent_camera_is_alerted_once_and_its_return_ends_the_silence(backend: Backend) {
    let clock = Clock::manual(now_ms());
    let Some((srv, config)) = start("silence", backend, &clock).await else { return };
    let (s, v) = push(&srv, "cam-1", KEY_WEST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = push(&srv, "cam-east", KEY_EAST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    let c = status_of(&srv, "cam-1").await;
    assert_eq!((c["status"].as_str(), c["township_id"].as_str()), (Some("online"), Some("t-west")), "{c}");
    assert!(c["last_seen"].as_str().is_some(), "{c}");
    assert_eq!(status_of(&srv, "cam-quiet").await["status"], "unknown", "never heard from");

    let mut operator = srv.ws(OPERATOR).await;
    let mut partner = srv.ws(PARTNER).await;
    // 9 minutes of silence is under the default 10: nothing.
    clock.advance(9 * MIN);
    ticks().await;
    assert!(alerts_of(&srv, "camera_offline").await.is_empty(), "not silent long enough");
    // cam-east speaks again; cam-1 stays silent past 10 minutes.
    let (s, _) = push(&srv, "cam-east", KEY_EAST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    clock.advance(2 * MIN);
    ticks().await;
    let offline = alerts_of(&srv, "camera_offline").await;
    assert_eq!(offline.len(), 1, "one alert, for cam-1 only: {offline:?}");
    let a = &offline[0]["data"];
    assert_eq!((a["priority"].as_i64(), a["camera"]["id"].as_str()), (Some(3), Some("cam-1")), "{a}");
    assert_eq!(
        (a["camera"]["kind"].as_str(), a["place"]["township"]["id"].as_str()),
        (Some("checkpoint"), Some("t-west")),
        "{a}"
    );
    assert_eq!(a["liveness"]["status"], "offline", "{a}");
    assert!(a["liveness"]["silent_s"].as_i64().is_some_and(|s| s >= 11 * 60), "{a}");
    let live = next_of(&mut operator, "alert", 5000).await.expect("the alert on the feed");
    assert_eq!(
        (live["data"]["rule"].as_str(), live["data"]["camera"]["id"].as_str()),
        (Some("camera_offline"), Some("cam-1")),
        "{live}"
    );
    assert_eq!(next_of(&mut partner, "alert", 500).await, None, "a partner is not told of cameras");
    let c = status_of(&srv, "cam-1").await;
    assert_eq!(
        (c["status"].as_str(), c["offline_alert_seq"].as_i64()),
        (Some("offline"), offline[0]["seq"].as_i64()),
        "{c}"
    );
    assert_eq!(status_of(&srv, "cam-east").await["status"], "online");

    clock.advance(5 * MIN);
    ticks().await;
    assert_eq!(alerts_of(&srv, "camera_offline").await.len(), 1, "once per silence, not at every tick");
    drop((operator, partner));
    srv.stop_keeping_data().await;
    let srv = Server::start(config).await;
    ticks().await;
    assert_eq!(alerts_of(&srv, "camera_offline").await.len(), 1, "not again after a restart");
    assert_eq!(status_of(&srv, "cam-1").await["status"], "offline", "still offline after a restart");

    // The camera's next push, after the restart, ends the silence.
    let (s, v) = push(&srv, "cam-1", KEY_WEST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200, "{v}");
    let back = alerts_of(&srv, "camera_online").await;
    assert_eq!(back.len(), 1, "{back:?}");
    let b = &back[0]["data"];
    assert_eq!((b["priority"].as_i64(), b["liveness"]["status"].as_str()), (Some(4), Some("online")), "{b}");
    assert_eq!(b["liveness"]["offline_alert_seq"], offline[0]["seq"], "it names the alert it ends: {b}");
    assert_eq!(status_of(&srv, "cam-1").await["status"], "online");
    let (s, _) = push(&srv, "cam-1", KEY_WEST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    assert_eq!(alerts_of(&srv, "camera_online").await.len(), 1, "a push while online tells nothing");
    // A new silence is a new alert.
    clock.advance(11 * MIN);
    ticks().await;
    let offline = alerts_of(&srv, "camera_offline").await;
    let mut cams: Vec<&str> = offline.iter().filter_map(|a| a["data"]["camera"]["id"].as_str()).collect();
    cams.sort_unstable();
    assert_eq!(cams, ["cam-1", "cam-1", "cam-east"], "{offline:?}");
    srv.stop().await;
}

async fn the_status_endpoints_answer_operators_and_administrators_only(backend: Backend) {
    let clock = Clock::manual(now_ms());
    let Some((srv, _)) = start("roles", backend, &clock).await else { return };
    let (s, _) = push(&srv, "cam-1", KEY_WEST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    let (s, _) = push(&srv, "cam-east", KEY_EAST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    // cam-east falls silent while cam-1 keeps talking.
    clock.advance(6 * MIN);
    let (s, _) = push(&srv, "cam-1", KEY_WEST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    clock.advance(6 * MIN);
    ticks().await;

    for path in ["/api/v1/cameras/status", "/api/v1/cameras/availability"] {
        for (who, want) in [(ADMIN, 200), (OPERATOR, 200), (LEADER, 403), (POST, 403), (GRID, 403), (PARTNER, 403)] {
            let (s, v) = srv.get(who, path).await;
            assert_eq!(s, want, "{path} as {who}: {v}");
        }
        let r = srv.http.get(format!("{}{path}", srv.url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
    }

    let (_, v) = srv.get(OPERATOR, "/api/v1/cameras/availability").await;
    assert_eq!(v["total"], json!({"cameras": 3, "online": 1, "offline": 1, "unknown": 1, "online_share": 0.5}), "{v}");
    let kind = |k: &str| v["by_kind"].as_array().unwrap().iter().find(|g| g["id"] == k).cloned().unwrap();
    assert_eq!((kind("checkpoint")["online"].as_i64(), kind("skynet")["offline"].as_i64()), (Some(1), Some(1)), "{v}");
    assert_eq!(kind("huiyan")["online_share"], Value::Null, "never heard from: no share: {v}");
    let town = |t: &str| v["by_township"].as_array().unwrap().iter().find(|g| g["id"] == t).cloned().unwrap();
    assert_eq!(
        (town("t-west")["online_share"].as_f64(), town("t-east")["name"].as_str()),
        (Some(1.0), Some("东镇")),
        "{v}"
    );
    assert_eq!((town("t-east")["offline"].as_i64(), town("t-east")["unknown"].as_i64()), (Some(1), Some(1)), "{v}");

    let (_, v) = srv.get(OPERATOR, "/api/v1/cameras/status?limit=2").await;
    let ids: Vec<&str> = v["cameras"].as_array().unwrap().iter().filter_map(|c| c["camera_id"].as_str()).collect();
    assert_eq!((ids, v["next_after"].as_str()), (vec!["cam-1", "cam-east"], Some("cam-east")), "{v}");
    let (_, v) = srv.get(OPERATOR, "/api/v1/cameras/status?limit=2&after=cam-east").await;
    assert_eq!(
        (v["cameras"][0]["camera_id"].as_str(), v["next_after"].clone()),
        (Some("cam-quiet"), Value::Null),
        "{v}"
    );
    let (_, v) = srv.get(ADMIN, "/api/v1/cameras/status?status=offline").await;
    assert_eq!(v["cameras"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["cameras"][0]["camera_id"], "cam-east", "{v}");
    let (_, v) = srv.get(ADMIN, "/api/v1/cameras/status?township=t-east&kind=huiyan").await;
    assert_eq!(
        (v["cameras"][0]["status"].as_str(), v["cameras"].as_array().map(Vec::len)),
        (Some("unknown"), Some(1)),
        "{v}"
    );
    for (query, field) in [("limit=0", "limit"), ("limit=1001", "limit"), ("status=asleep", "status")] {
        let (s, v) = srv.get(OPERATOR, &format!("/api/v1/cameras/status?{query}")).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some(field)), "{query}: {v}");
    }
    srv.stop().await;
}

on_both_stores!(json_pushes_are_accepted_end_to_end_and_malformed_ones_refused);
on_both_stores!(a_silent_camera_is_alerted_once_and_its_return_ends_the_silence);
on_both_stores!(the_status_endpoints_answer_operators_and_administrators_only);

/// Two instances on one PostgreSQL database, both checking on the same clock, raise one
/// alert for one silence; the return, pushed to the other instance, ends it there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_raise_one_alert_for_one_silence() {
    let clock = Clock::manual(now_ms());
    let Some((a, config)) = start("two", Backend::Postgis, &clock).await else { return };
    let mut other = config.clone();
    other.data_dir = liandong_test_support::fresh_dir("cams-two-b");
    let b = Server::start(other).await;
    let (s, _) = push(&a, "cam-1", KEY_WEST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    clock.advance(11 * MIN);
    for _ in 0..3 {
        ticks().await;
    }
    assert_eq!(alerts_of(&a, "camera_offline").await.len(), 1, "one silence, one alert");
    assert_eq!(status_of(&b, "cam-1").await["status"], "offline", "both instances read one status");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, _) = push(&b, "cam-1", KEY_WEST, "application/json", heartbeat_json()).await;
    assert_eq!(s, 200);
    let back = alerts_of(&a, "camera_online").await;
    assert_eq!(back.len(), 1, "the instance that did not raise it tells the return: {back:?}");
    assert_eq!(status_of(&a, "cam-1").await["status"], "online");
    b.stop().await;
    a.stop().await;
}
