//! Camera alerts end to end, against a server on 127.0.0.1:0: a Hikvision ANPR push of
//! a watch-listed plate reaches an operator's websocket as a high-priority alert with
//! the nearest posts and units; the same read 10 s later raises nothing; a repeated push
//! is not a new alert; heartbeats are stored; malformed and DTD-carrying XML is refused.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use liandong_server::auth::Role;
use liandong_server::config::{Config, Secret, TokenConfig};
use liandong_test_support::feed::{all_of, next_among, next_of};
use liandong_test_support::{fresh_dir, mini_map, now_ms, token, unit_token, Server, Ws};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "alerts-admin-token";
const OPERATOR: &str = "alerts-operator-token";
const GRID: &str = "alerts-grid-token";
const PARTNER: &str = "alerts-partner-token";
const CAMERA_KEY: &str = "camera-key-0001";

/// An ANPR push as a Hikvision checkpoint camera sends it to its alarm host.
fn anpr_xml(plate: &str, time: &str, post_count: u32, state: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>10.23.1.15</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:0a:1b:2c</macAddress>
<channelID>1</channelID>
<dateTime>{time}</dateTime>
<activePostCount>{post_count}</activePostCount>
<eventType>ANPR</eventType>
<eventState>{state}</eventState>
<eventDescription>ANPR</eventDescription>
<channelName>横路卡口</channelName>
<ANPR>
<country>CN</country>
<licensePlate>{plate}</licensePlate>
<line>1</line>
<direction>forward</direction>
<confidenceLevel>97</confidenceLevel>
<plateType>92TypeCivil</plateType>
<plateColor>blue</plateColor>
<licenseBright>0</licenseBright>
<vehicleType>vehicle</vehicleType>
</ANPR>
</EventNotificationAlert>"#
    )
}

/// A server on the mini map with cam-1 (a checkpoint) given its push key.
async fn start(name: &str) -> Server {
    let srv = start_with(name, |_| {}).await;
    let r = srv
        .http
        .post(format!("{}/api/v1/cameras", srv.url))
        .bearer_auth(ADMIN)
        .json(&json!({"camera_id": "cam-1", "name": "横路卡口", "kind": "checkpoint", "lon": 107.15, "lat": 30.6, "key": CAMERA_KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    srv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_listed_plate_at_a_checkpoint_alerts_the_operator_once() {
    let srv = start("plate").await;
    let (addr, url, http, dir) = (srv.addr, srv.url.clone(), srv.http.clone(), srv.dir.clone());
    let admin_post = |path: &str, body: Value| http.post(format!("{url}{path}")).bearer_auth(ADMIN).json(&body).send();
    // The map's checkpoint camera gets its key; the plate goes on the watch list the way
    // people write it; a patrol member stands 1 km from the camera.
    let r = admin_post("/api/v1/watchlist", json!({"watch_id": "w-stolen-1", "kind": "plate", "value": "川S·12345", "reason": "被盗车辆", "priority": 1, "roles": ["operator"]})).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = admin_post("/api/v1/devices", json!({"device_id": "w1", "name": "巡防队员", "kind": "patrol_member", "unit_id": "team-1", "key": "key-of-w1"})).await.unwrap();
    assert!(r.status().is_success());
    let now_ms = now_ms();
    let r = admin_post(
        "/api/v1/positions",
        json!({"positions": [{"device_id": "w1", "lon": 107.1604, "lat": 30.6, "time": now_ms}]}),
    )
    .await
    .unwrap();
    assert!(r.status().is_success());

    let (mut operator, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/live?token={OPERATOR}")).await.unwrap();
    let (mut grid, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/live?token={GRID}")).await.unwrap();
    let push = |xml: String, query: &str| {
        http.post(format!("{url}/isapi/events?{query}")).header("content-type", "application/xml").body(xml).send()
    };
    let q = format!("camera=cam-1&key={CAMERA_KEY}");

    let r = push(anpr_xml("川S12345", "2026-11-27T10:00:00+08:00", 1, "active"), &q).await.unwrap();
    assert_eq!(r.status(), 200);
    let ack: Value = r.json().await.unwrap();
    let alert_seq = ack["alert_seq"].as_i64().expect("the read raised an alert");
    let alert = next_of(&mut operator, "alert", 3000).await.expect("the operator sees the alert");
    assert_eq!(alert["seq"], alert_seq);
    let data = &alert["data"];
    assert_eq!((data["rule"].as_str(), data["priority"].as_i64()), (Some("watchlist_plate"), Some(1)));
    assert_eq!(data["camera"]["id"], "cam-1");
    assert_eq!(data["read"]["value"], "川S12345");
    assert_eq!(data["watch"]["reason"], "被盗车辆");
    assert_eq!(data["place"]["township"]["id"], "t-west");
    assert_eq!(data["place"]["nearest_posts"][0]["id"], "p-west", "{data}");
    assert_eq!(data["nearest_units"][0]["device_id"], "w1", "{data}");
    assert!((data["nearest_units"][0]["distance_m"].as_f64().unwrap() - 997.0).abs() < 15.0, "{data}");
    assert!(next_of(&mut grid, "alert", 300).await.is_none(), "a grid member is not entitled to watch-list hits");

    // The same read 10 s later, and the camera repeating its push: no new alert.
    let r = push(anpr_xml("川S12345", "2026-11-27T10:00:10+08:00", 1, "active"), &q).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["alert_seq"], Value::Null);
    let r = push(anpr_xml("川S12345", "2026-11-27T10:00:00+08:00", 2, "active"), &q).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["alert_seq"], Value::Null);
    // A plate not on the list, and a heartbeat: stored, no alert.
    let r = push(anpr_xml("川A00001", "2026-11-27T10:00:20+08:00", 1, "active"), &q).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["alert_seq"], Value::Null);
    let heartbeat = anpr_xml("", "2026-11-27T10:00:30+08:00", 1, "inactive")
        .replace("<eventType>ANPR</eventType>", "<eventType>videoloss</eventType>");
    assert_eq!(push(heartbeat, &q).await.unwrap().status(), 200);
    assert!(next_of(&mut operator, "alert", 300).await.is_none(), "no second alert");

    // Refusals: malformed XML, a DTD with an entity, a wrong key, an unknown camera.
    let rows = [
        ("<EventNotificationAlert><eventType>ANPR</eventType>".to_owned(), q.clone(), 400, "body"),
        (
            r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>"#.to_owned(),
            q.clone(),
            400,
            "body",
        ),
        (anpr_xml("川S12345", "2026-11-27T10:01:00+08:00", 1, "active"), "camera=cam-1&key=wrong-key".to_owned(), 401, "key"),
        (anpr_xml("川S12345", "2026-11-27T10:01:00+08:00", 1, "active"), format!("camera=cam-9&key={CAMERA_KEY}"), 403, "camera"),
    ];
    for (body, query, status, field) in rows {
        let r = push(body, &query).await.unwrap();
        assert_eq!(r.status().as_u16(), status);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], field, "{v}");
    }

    // The operator opens an incident from the alert: it takes the camera's place.
    let r = http
        .post(format!("{url}/api/v1/incidents"))
        .bearer_auth(OPERATOR)
        .json(&json!({"title": "布控车辆 川S12345", "priority": 1, "alert_seq": alert_seq}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["incident"]["lon"].as_f64(), v["incident"]["lat"].as_f64()), (Some(107.15), Some(30.6)), "{v}");
    assert_eq!(v["incident"]["alert_seq"], alert_seq);
    let r = http
        .post(format!("{url}/api/v1/incidents"))
        .bearer_auth(OPERATOR)
        .json(&json!({"title": "x", "alert_seq": 999_999}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "alert_seq");

    // An operator reconnecting with `since` gets the alert replayed in sequence.
    let (mut again, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/live?token={OPERATOR}&since={}", alert_seq - 1))
            .await
            .unwrap();
    let replayed = next_of(&mut again, "alert", 3000).await.expect("the alert is replayed");
    assert_eq!(replayed["seq"], alert_seq);

    let store = liandong_store::Store::open(&dir, liandong_store::Durability::Normal).await.unwrap();
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 5, "every accepted push is stored");
    srv.stop().await;
}

/// The smallest JPEG-shaped snapshot: SOI, a JFIF marker, EOI.
const TINY_JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0xFF, 0xD9];

/// A face-match push as multipart with its JPEG snapshot, as an NVR sends it.
fn face_multipart(person: &str) -> (String, Vec<u8>) {
    let boundary = "MIME_boundary_liandong";
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>10.12.0.46</ipAddress>
<channelID>2</channelID>
<dateTime>2026-11-27T22:40:00+08:00</dateTime>
<activePostCount>1</activePostCount>
<eventType>faceSnapMatch</eventType>
<eventState>active</eventState>
<channelName>汽车站进站口</channelName>
<faceSnapMatch><FaceCaptureList><FaceCapture>
<faceID>3</faceID><humanID>{person}</humanID><similarity>0.92</similarity>
</FaceCapture></FaceCaptureList></faceSnapMatch>
</EventNotificationAlert>"#
    );
    let jpeg: Vec<u8> = TINY_JPEG.to_vec();
    let mut body = Vec::new();
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"faceSnapMatch\"; filename=\"faceSnapMatch.xml\"\r\nContent-Type: application/xml\r\n\r\n{xml}\r\n").bytes());
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"faceImage\"; filename=\"faceImage.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").bytes());
    body.extend(jpeg);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_person_alert_reaches_the_partner_only_and_every_read_is_audited() {
    let srv = start("tagged").await;
    let r = srv
        .http
        .post(format!("{}/api/v1/tagged", srv.url))
        .bearer_auth(ADMIN)
        .json(&json!({"person_id": "P-0042", "name": "张某", "category": "community_correction", "roles": ["partner"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut partner = srv.ws(PARTNER).await;
    let mut grid = srv.ws(GRID).await;
    let mut operator = srv.ws(OPERATOR).await;

    let (ct, body) = face_multipart("P-0042");
    let r = srv.isapi("cam-1", CAMERA_KEY, &ct, body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let alert = next_of(&mut partner, "alert", 3000).await.expect("the partner sees the tagged-person alert");
    assert_eq!(alert["data"]["rule"], "watchlist_person");
    assert_eq!(alert["data"]["read"]["value"], "P-0042");
    assert!(next_of(&mut grid, "alert", 300).await.is_none(), "not a grid member");
    assert!(
        next_of(&mut operator, "alert", 300).await.is_none(),
        "not an operator either: the entry names partners only"
    );
    // The snapshot is stored and served to those who handle the alert.
    let image = alert["data"]["images"][0].as_str().expect("the alert names its snapshot").to_owned();
    let r = srv.http.get(format!("{}{image}", srv.url)).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), TINY_JPEG);
    for who in [GRID, OPERATOR] {
        let r = srv.http.get(format!("{}{image}", srv.url)).bearer_auth(who).send().await.unwrap();
        assert_eq!(r.status(), 404, "{who}: a tagged person's snapshot is only for the roles on the record");
    }
    let r =
        srv.http.get(format!("{}/api/v1/images/..%2Fliandong.db", srv.url)).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(r.status(), 404, "no path out of the image directory");
    // A snapshot older than the image retention (180 days by default) was deleted: 410,
    // not 404, so the screen can say why.
    let r =
        srv.http.get(format!("{}/api/v1/images/1000-abcdef-0.jpg", srv.url)).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "name");
    let fresh = format!("{}/api/v1/images/{}-abcdef-0.jpg", srv.url, now_ms());
    assert_eq!(srv.http.get(fresh).bearer_auth(PARTNER).send().await.unwrap().status(), 404, "never there");

    // An unknown event type is stored and counted, not refused.
    let unknown = anpr_xml("", "2026-11-27T22:41:00+08:00", 1, "active")
        .replace("<eventType>ANPR</eventType>", "<eventType>someFutureThing</eventType>");
    let r = srv
        .http
        .post(format!("{}/isapi/events?camera=cam-1&key={CAMERA_KEY}", srv.url))
        .body(unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A partner's read of the tagged persons is audited, and so is the camera's sighting.
    let r: Value = srv
        .http
        .get(format!("{}/api/v1/tagged", srv.url))
        .bearer_auth(PARTNER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["tagged"][0]["person_id"], "P-0042");
    let r: Value = srv
        .http
        .get(format!("{}/api/v1/tagged", srv.url))
        .bearer_auth(GRID)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["error"]["status"], 403, "grid members may not read tagged persons");
    let log: Value = srv
        .http
        .get(format!("{}/api/v1/audit?subject=P-0042", srv.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = log["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("tagged_person_read", PARTNER),
            ("tagged_person_image_read", PARTNER),
            // The hit sent to the partner's live feed is a read of where the person was.
            ("tagged_person_alert_read", PARTNER),
            ("tagged_person_seen", "camera:cam-1"),
            ("tagged_person_saved", ADMIN)
        ],
        "{log}"
    );
    let store = liandong_store::Store::open(&srv.dir, liandong_store::Durability::Normal).await.unwrap();
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_report_goes_to_mediation_and_its_outcome_shows_in_the_statistics() {
    let srv = start("mediation").await;
    let mut operator = srv.ws(OPERATOR).await;
    let mut partner = srv.ws(PARTNER).await;
    let mut grid = srv.ws(GRID).await;
    let post = |token: &'static str, path: String, body: Value| {
        srv.http.post(format!("{}{path}", srv.url)).bearer_auth(token).json(&body).send()
    };
    // A tiny JPEG (SOI … EOI) as a phone would attach it, base64.
    let photo = "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==";
    let r = post(GRID, "/api/v1/reports".into(), json!({"category": "dispute", "text": "邻里因宅基地边界发生纠纷", "lon": 107.05, "lat": 30.75, "photos_base64": [photo]})).await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let case_id = v["mediation_case_id"].as_i64().expect("a dispute opens a mediation case");
    assert_eq!(v["place"]["township"]["id"], "t-west");
    let r = post(
        GRID,
        "/api/v1/reports".into(),
        json!({"category": "hazard", "text": "桥栏杆损坏", "lon": 107.35, "lat": 30.55}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["mediation_case_id"], Value::Null, "only disputes go to mediation");
    // Both reports reach the operators' feed; the dispute reaches the mediation
    // centre's partners too; the grid member who filed them gets no alerts.
    let seen = all_of(&mut operator, "alert", 1000).await;
    let cats: Vec<&str> = seen.iter().map(|a| a["data"]["report"]["category"].as_str().unwrap()).collect();
    assert_eq!(cats, ["dispute", "hazard"]);
    assert_eq!(seen[0]["data"]["rule"], "grid_report");
    assert_eq!(seen[0]["data"]["report"]["report_id"], v["report_id"]);
    assert_eq!(seen[0]["data"]["place"]["township"]["id"], "t-west");
    let partner_seen = all_of(&mut partner, "alert", 300).await;
    assert_eq!(partner_seen.len(), 1);
    assert_eq!(partner_seen[0]["data"]["report"]["mediation_case_id"], case_id);
    assert!(all_of(&mut grid, "alert", 300).await.is_empty());
    // The photo is stored and served to the operators.
    let photo_url = v["photos"][0].as_str().expect("the report names its photo");
    let r = srv.http.get(format!("{}{photo_url}", srv.url)).bearer_auth(OPERATOR).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);

    // Bad input names the field.
    let rows = [
        (json!({"category": "war", "text": "x", "lon": 107.1, "lat": 30.7}), "category"),
        (json!({"category": "hazard", "text": "x", "lon": 107.1, "lat": 91.0}), "lat"),
        (json!({"category": "hazard", "text": "  ", "lon": 107.1, "lat": 30.7}), "text"),
        (
            json!({"category": "hazard", "text": "x", "lon": 107.1, "lat": 30.7, "photos_base64": ["aGVsbG8="]}),
            "photos_base64[0]",
        ),
        (json!({"category": "hazard", "text": "x", "lon": 107.1, "lat": 30.7, "colour": "red"}), "body"),
    ];
    for (body, field) in rows {
        let r = post(GRID, "/api/v1/reports".into(), body).await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], field);
    }

    let pending: Value = srv
        .http
        .get(format!("{}/api/v1/mediation?status=pending", srv.url))
        .bearer_auth(PARTNER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["cases"][0]["case_id"], case_id);
    let r = post(
        PARTNER,
        format!("/api/v1/mediation/{case_id}"),
        json!({"mediation_type": "judicial", "outcome": "双方达成调解协议", "success": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = post(
        PARTNER,
        format!("/api/v1/mediation/{case_id}"),
        json!({"mediation_type": "judicial", "outcome": "again", "success": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409, "a case is closed once");
    let r = post(
        GRID,
        format!("/api/v1/mediation/{case_id}"),
        json!({"mediation_type": "people", "outcome": "x", "success": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "grid members report disputes; they do not close them");

    let stats: Value = srv
        .http
        .get(format!("{}/api/v1/statistics", srv.url))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &stats["mediation"];
    assert_eq!(
        (m["disputes"].as_i64(), m["mediated"].as_i64(), m["successful"].as_i64()),
        (Some(1), Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(m["success_rate"], 1.0);
    assert_eq!(m["by_type"], json!([["judicial", 1]]));
    assert_eq!(m["reports_by_category"], json!([["dispute", 1], ["hazard", 1]]));
    srv.stop().await;
}

/// A patrol leader's token, for team 1 (the test map's one team).
fn team_1_leader(token: &str) -> TokenConfig {
    unit_token(token, Role::PatrolLeader, "team-1")
}

/// A copy of the test map in which team 1 patrols by car (`travel: vehicle`).
fn map_with_vehicle_team(name: &str) -> PathBuf {
    let src = mini_map();
    let dir = fresh_dir(&format!("alerts-map-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let routes = dir.join("routes.geojson");
    let mut fc: Value = serde_json::from_str(&std::fs::read_to_string(&routes).unwrap()).unwrap();
    fc["features"][0]["properties"]["travel"] = json!("vehicle");
    std::fs::write(&routes, fc.to_string()).unwrap();
    dir
}

/// Starts a server whose alert rules are tuned for a test: a storm is more than
/// `storm_max` alerts in `storm_window_s`.
async fn start_with(name: &str, tune: impl FnOnce(&mut Config)) -> Server {
    start_in(fresh_dir(&format!("alerts-{name}")), tune).await
}

/// A server on the data directory `dir` as it is (a restart keeps what is stored).
async fn start_in(dir: PathBuf, tune: impl FnOnce(&mut Config)) -> Server {
    let tokens = vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        token(GRID, Role::GridMember),
        token(PARTNER, Role::Partner),
    ];
    Server::start_in(dir, tokens, |config| {
        // These tests push camera alarms at fixed moments (2026-11-27) to compare their
        // times: accept them however long ago that is when the tests run.
        config.ingest.accept_past_s = 20 * 365 * 86_400;
        tune(config);
    })
    .await
}

/// An ANPR read of `plate` pushed by `camera` with its `key`, dated `time`; answers the
/// push's acknowledgement.
async fn anpr(srv: &Server, camera: &str, key: &str, plate: &str, time: &str) -> Value {
    let r = srv.isapi(camera, key, "application/xml", anpr_xml(plate, time, 1, "active")).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The next route event, acknowledgement or error within `ms`.
async fn next_route(ws: &mut Ws, ms: u64) -> Option<Value> {
    next_among(ws, &["route", "ack", "error"], ms).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_storm_raises_one_storm_alert_then_calms_and_priority_one_still_passes() {
    let srv = start_with("storm", |c| {
        c.alerts.storm_max_alerts = 5;
        c.alerts.storm_window_s = 2;
    })
    .await;
    srv.admin("/api/v1/cameras", json!({"camera_id": "cam-1", "name": "横路卡口", "kind": "checkpoint", "lon": 107.15, "lat": 30.6, "key": CAMERA_KEY})).await;
    for i in 0..10 {
        srv.admin("/api/v1/watchlist", json!({"watch_id": format!("w-{i}"), "kind": "plate", "value": format!("川S1000{i}"), "reason": "套牌嫌疑", "priority": 3, "roles": ["operator"]})).await;
    }
    srv.admin("/api/v1/watchlist", json!({"watch_id": "w-wanted", "kind": "plate", "value": "川S99999", "reason": "在逃人员车辆", "priority": 1, "roles": ["operator"]})).await;
    let mut operator = srv.ws(OPERATOR).await;
    // A mis-aimed camera reads ten different watched plates within a second.
    let mut acks = Vec::new();
    for i in 0..10 {
        acks.push(anpr(&srv, "cam-1", CAMERA_KEY, &format!("川S1000{i}"), "2026-11-27T10:00:00+08:00").await);
    }
    let raised: Vec<bool> = acks.iter().map(|a| a["alert_seq"].is_i64()).collect();
    assert_eq!(raised, [true, true, true, true, true, false, false, false, false, false], "{acks:?}");
    let wanted = anpr(&srv, "cam-1", CAMERA_KEY, "川S99999", "2026-11-27T10:00:01+08:00").await;
    assert!(wanted["alert_seq"].is_i64(), "a priority 1 hit passes the storm");
    let got = all_of(&mut operator, "alert", 1000).await;
    let rules: Vec<&str> = got.iter().map(|a| a["data"]["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        ["watchlist_plate"; 5].iter().copied().chain(["camera_storm", "watchlist_plate"]).collect::<Vec<_>>()
    );
    assert_eq!(got[5]["data"]["camera"]["id"], "cam-1");
    assert_eq!(got[5]["data"]["storm"]["alerts_in_window"], 6, "{}", got[5]);
    // Quiet for the window: the storm ends, with the count it held back.
    let end = next_of(&mut operator, "alert", 5000).await.expect("the storm's end is announced");
    assert_eq!(end["data"]["rule"], "camera_storm_end");
    assert_eq!(end["data"]["storm"]["suppressed"], 5, "{end}");
    // Every read was stored, alert or not.
    let store = liandong_store::Store::open(&srv.dir, liandong_store::Durability::Normal).await.unwrap();
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 11);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successive_reads_across_cameras_form_a_track() {
    let srv = start_with("track", |_| {}).await;
    srv.admin("/api/v1/cameras", json!({"camera_id": "cam-1", "name": "横路卡口", "kind": "checkpoint", "lon": 107.15, "lat": 30.6, "key": CAMERA_KEY})).await;
    // cam-2 is about 4.6 km north-east of cam-1.
    srv.admin("/api/v1/cameras", json!({"camera_id": "cam-2", "name": "东门卡口", "kind": "checkpoint", "lon": 107.18, "lat": 30.63, "key": "camera-key-0002"})).await;
    srv.admin("/api/v1/watchlist", json!({"watch_id": "w-1", "kind": "plate", "value": "川S·12345", "reason": "被盗车辆", "priority": 2, "roles": ["operator"]})).await;
    let mut operator = srv.ws(OPERATOR).await;
    anpr(&srv, "cam-1", CAMERA_KEY, "川S12345", "2026-11-27T10:00:00+08:00").await;
    anpr(&srv, "cam-2", "camera-key-0002", "川S12345", "2026-11-27T10:05:00+08:00").await;
    let got = all_of(&mut operator, "alert", 1000).await;
    assert_eq!(got.len(), 2, "a new camera is a new alert: {got:?}");
    let track = &got[1]["data"]["track"];
    assert_eq!(track["cameras"], json!(["cam-1", "cam-2"]), "{track}");
    assert_eq!(track["coordinates"], json!([[107.15, 30.6], [107.18, 30.63]]));
    assert_eq!(track["heading"], "NE");
    let speed = track["speed_kmh"].as_f64().unwrap();
    assert!((50.0..60.0).contains(&speed), "about 4.4 km in 5 min: {speed}");
    assert_eq!(track["last"]["camera_id"], "cam-2");

    // The stored track, as GeoJSON, for any period.
    let q = "/api/v1/tracks?plate=%E5%B7%9DS-12345&from=2026-11-27T00:00:00%2B08:00&to=2026-11-28T00:00:00%2B08:00";
    let (status, feature) = srv.get(OPERATOR, q).await;
    assert_eq!(status, 200, "{feature}");
    assert_eq!(feature["type"], "Feature");
    assert_eq!(feature["geometry"]["type"], "LineString");
    assert_eq!(feature["geometry"]["coordinates"], json!([[107.15, 30.6], [107.18, 30.63]]));
    assert_eq!(feature["properties"]["plate"], "川S12345");
    assert_eq!(feature["properties"]["heading"], "NE");
    let bad = [
        (PARTNER, q.to_owned(), 403, "plate"),
        (OPERATOR, "/api/v1/tracks".to_owned(), 400, "plate"),
        (OPERATOR, "/api/v1/tracks?plate=hello".to_owned(), 400, "plate"),
        (OPERATOR, "/api/v1/tracks?plate=%E5%B7%9DS12345&from=yesterday".to_owned(), 400, "from"),
        (OPERATOR, "/api/v1/tracks?plate=%E5%B7%9DA00000".to_owned(), 404, "plate"),
        (GRID, q.to_owned(), 403, "authorization"),
    ];
    for (token, path, status, field) in bad {
        let (s, v) = srv.get(token, &path).await;
        assert_eq!((s, v["error"]["field"].as_str()), (status, Some(field)), "{path}: {v}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_person_inside_a_school_fence_in_forbidden_hours_alerts_the_partner_once() {
    let srv = start_with("zone", |_| {}).await;
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "ankle-7", "name": "矫正对象定位", "kind": "other", "key": "key-of-ankle-7"}),
    )
    .await;
    srv.admin("/api/v1/devices", json!({"device_id": "w1", "name": "巡防队员", "kind": "patrol_member", "unit_id": "team-1", "key": "key-of-w1"})).await;
    // Refusals name the field: an unknown fence kind, a bad time, an unknown phone.
    let bad = [
        (json!([{"fence_kind": "casino", "from": "22:00", "to": "06:00"}]), "ankle-7", "zone_rules[0].fence_kind"),
        (json!([{"fence_kind": "school", "from": "22:00", "to": "30:00"}]), "ankle-7", "zone_rules[0].to"),
        (json!([{"fence_kind": "school", "from": "22:00", "to": "06:00"}]), "no-such-phone", "device_id"),
    ];
    for (rules, device, field) in bad {
        let r = srv
            .http
            .post(format!("{}/api/v1/tagged", srv.url))
            .bearer_auth(ADMIN)
            .json(&json!({"person_id": "P-7", "name": "李某", "roles": ["partner"], "device_id": device, "zone_rules": rules}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], field);
    }
    // All day, so that the test does not depend on the hour it runs at; the hours
    // themselves are checked by the domain's tests.
    srv.admin("/api/v1/tagged", json!({"person_id": "P-7", "name": "李某", "roles": ["partner"], "device_id": "ankle-7", "zone_rules": [{"fence_kind": "school", "from": "00:00", "to": "24:00"}]})).await;
    let mut partner = srv.ws(PARTNER).await;
    let mut grid = srv.ws(GRID).await;
    let report = |lon: f64, lat: f64, t: i64| {
        srv.http
            .post(format!("{}/api/v1/positions", srv.url))
            .bearer_auth(ADMIN)
            .json(&json!({"positions": [{"device_id": "ankle-7", "lon": lon, "lat": lat, "time": t}]}))
            .send()
    };
    // Ten minutes apart: a walk, not a GPS jump (jumps are not trusted, so they break
    // no rule).
    let t0 = now_ms() - 50 * 60_000;
    // Outside, then inside the school fence twice, out, and in again: two alerts.
    for (i, (lon, lat)) in [(107.08, 30.68), (107.10, 30.70), (107.1001, 30.7001), (107.08, 30.68), (107.10, 30.70)]
        .into_iter()
        .enumerate()
    {
        assert!(report(lon, lat, t0 + i as i64 * 600_000).await.unwrap().status().is_success());
    }
    let got = all_of(&mut partner, "alert", 1000).await;
    assert_eq!(got.len(), 2, "one alert per entry, not one per report: {got:?}");
    let a = &got[0]["data"];
    assert_eq!((a["rule"].as_str(), a["priority"].as_i64()), (Some("tagged_zone"), Some(2)));
    assert_eq!(a["person"]["person_id"], "P-7");
    assert_eq!(a["zone"]["fence"], "f-school");
    assert!(all_of(&mut grid, "alert", 300).await.is_empty(), "a grid member sees no tagged-person alert");
    let (_, log) = srv.get(ADMIN, "/api/v1/audit?subject=P-7").await;
    let seen = log["audit"].as_array().unwrap().iter().filter(|e| e["action"] == "tagged_person_seen").count();
    assert_eq!(seen, 2, "{log}");
    assert_eq!(log["audit"][0]["actor"], "device:ankle-7");

    // A face camera at the school gate sees the person: the sighting is a zone alert.
    srv.admin("/api/v1/cameras", json!({"camera_id": "cam-gate", "name": "实验小学校门", "kind": "face", "lon": 107.1, "lat": 30.7, "key": "camera-key-gate"})).await;
    let (ct, body) = face_multipart("P-7");
    let r = srv.isapi("cam-gate", "camera-key-gate", &ct, body).await;
    assert_eq!(r.status(), 200);
    let a = next_of(&mut partner, "alert", 2000).await.expect("the partner sees the camera's zone alert");
    assert_eq!(
        (a["data"]["rule"].as_str(), a["data"]["zone"]["source"].as_str()),
        (Some("tagged_zone"), Some("camera"))
    );
    assert_eq!(a["data"]["read"]["value"], "P-7");

    // A unit stands 1 km away; the tagged person's phone, nearer, is never offered.
    let r = srv
        .http
        .post(format!("{}/api/v1/positions", srv.url))
        .bearer_auth(ADMIN)
        .json(&json!({"positions": [{"device_id": "w1", "lon": 107.11, "lat": 30.70, "time": now_ms()}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = srv
        .http
        .post(format!("{}/api/v1/incidents", srv.url))
        .bearer_auth(OPERATOR)
        .json(&json!({"title": "校园周边可疑人员", "priority": 2, "lon": 107.10, "lat": 30.70, "kind": "suspicious"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let units: Vec<&str> =
        v["recommended"]["units"].as_array().unwrap().iter().map(|u| u["device_id"].as_str().unwrap()).collect();
    assert_eq!(units, ["w1"], "{v}");
    assert_eq!(v["recommended"]["basis"], "road_time");
    assert!(v["recommended"]["units"][0]["travel_s"].as_f64().is_some(), "{v}");
    assert!(v["recommended"]["posts"][0]["id"].is_string(), "{v}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_recommends_free_units_and_statistics_count_response_times() {
    let srv = start_with("stats", |_| {}).await;
    for (id, key) in [("near", "key-of-near"), ("far", "key-of-far")] {
        srv.admin(
            "/api/v1/devices",
            json!({"device_id": id, "name": id, "kind": "post_officer", "unit_id": "p-west", "key": key}),
        )
        .await;
    }
    let t = now_ms();
    srv.admin(
        "/api/v1/positions",
        json!({"positions": [
            {"device_id": "near", "lon": 107.051, "lat": 30.75, "time": t},
            {"device_id": "far", "lon": 107.08, "lat": 30.75, "time": t},
        ]}),
    )
    .await;
    let post = |token: &'static str, path: String, body: Value| {
        srv.http.post(format!("{}{path}", srv.url)).bearer_auth(token).json(&body).send()
    };
    let r = post(
        OPERATOR,
        "/api/v1/incidents".into(),
        json!({"title": "盗窃", "kind": "theft", "priority": 2, "lon": 107.05, "lat": 30.75}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let id = v["incident"]["incident_id"].as_i64().unwrap();
    assert_eq!((v["incident"]["kind"].as_str(), v["incident"]["township"].as_str()), (Some("theft"), Some("西镇")));
    let units: Vec<&str> =
        v["recommended"]["units"].as_array().unwrap().iter().map(|u| u["device_id"].as_str().unwrap()).collect();
    assert_eq!(units, ["near", "far"], "nearest first: {v}");
    // Sent, the near officer is busy: a second incident next door is offered the far one.
    let r =
        post(OPERATOR, format!("/api/v1/incidents/{id}/actions"), json!({"action": "dispatch", "device_id": "near"}))
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let (_, second) = srv.get(OPERATOR, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(second["recommended"]["units"][0]["device_id"], "near", "an incident's own unit is not busy for it");
    let r = post(
        OPERATOR,
        "/api/v1/incidents".into(),
        json!({"title": "纠纷", "priority": 3, "lon": 107.05, "lat": 30.75}),
    )
    .await
    .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["incident"]["kind"], "other");
    let units: Vec<&str> =
        v["recommended"]["units"].as_array().unwrap().iter().map(|u| u["device_id"].as_str().unwrap()).collect();
    assert_eq!(units, ["far"], "{v}");
    let r = post(
        OPERATOR,
        "/api/v1/incidents".into(),
        json!({"title": "x", "kind": "Theft!", "lon": 107.05, "lat": 30.75}),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "kind");

    // The officer's phone takes the steps; then the statistics show the response.
    for action in ["sign", "depart", "arrive", "feedback"] {
        let r = srv
            .http
            .post(format!("{}/api/v1/incidents/{id}/actions", srv.url))
            .bearer_auth("key-of-near")
            .json(&json!({"action": action}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
    }
    assert_eq!(
        post(OPERATOR, format!("/api/v1/incidents/{id}/actions"), json!({"action": "close"})).await.unwrap().status(),
        200
    );
    let (status, stats) = srv.get(OPERATOR, "/api/v1/statistics?period=month").await;
    assert_eq!(status, 200, "{stats}");
    let inc = &stats["incidents"];
    assert_eq!(inc["all"]["count"], 2, "{stats}");
    assert_eq!(inc["all"]["closed"], 1);
    let theft = inc["by_kind"].as_array().unwrap().iter().find(|g| g["key"] == "theft").expect("theft is a group");
    assert_eq!((theft["count"].as_i64(), theft["to_sign"]["count"].as_i64()), (Some(1), Some(1)), "{theft}");
    assert!(theft["to_scene"]["median_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(theft["to_close"]["count"], 1);
    let other = inc["by_kind"].as_array().unwrap().iter().find(|g| g["key"] == "other").unwrap();
    assert_eq!(other["to_sign"], Value::Null, "no sign-for yet, no time");
    assert_eq!(inc["by_township"][0]["key"], "西镇");
    assert_eq!(inc["by_township"][0]["count"], 2);
    let month = inc["by_period"][0]["key"].as_str().unwrap();
    assert!(month.len() == 7 && month.starts_with("20"), "{month}");
    let (status, v) = srv.get(OPERATOR, "/api/v1/statistics?period=fortnight").await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("period")));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_is_one_open_incident_whoever_opens_it_and_however_often() {
    let srv = start_with("one-incident", |_| {}).await;
    let post = |path: String, body: Value| {
        srv.http.post(format!("{}{path}", srv.url)).bearer_auth(OPERATOR).json(&body).send()
    };
    let r = srv
        .http
        .post(format!("{}/api/v1/reports", srv.url))
        .bearer_auth(GRID)
        .json(&json!({"category": "hazard", "text": "村道边坡落石", "lon": 107.05, "lat": 30.75}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let report = r.json::<Value>().await.unwrap()["report_id"].as_i64().unwrap();

    // Two screens open the report's alert as an incident at the same moment.
    let open = || post("/api/v1/incidents".into(), json!({"title": "落石", "priority": 3, "alert_seq": report}));
    let (a, b) = tokio::join!(open(), open());
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 201], "one opened it, the other was given it");
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    let id = a["incident"]["incident_id"].as_i64().unwrap();
    assert_eq!(b["incident"]["incident_id"].as_i64(), Some(id), "the same incident: {a} {b}");
    assert_eq!([a["existing"].as_bool(), b["existing"].as_bool()].iter().filter(|e| **e == Some(true)).count(), 1);
    assert!(b["recommended"].is_object(), "the one given it gets the recommendation too: {b}");

    // Accepting the report now opens nothing new: the report's alert is that incident.
    let r = post(format!("/api/v1/reports/{report}/review"), json!({"decision": "accept"})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["incident_id"].as_i64(), Some(id));
    let r = post(format!("/api/v1/reports/{report}/review"), json!({"decision": "accept"})).await.unwrap();
    assert_eq!(r.status(), 409, "accepted once");
    let (_, v) = srv.get(OPERATOR, "/api/v1/history/incidents?state=open").await;
    assert_eq!(v["incidents"].as_array().unwrap().len(), 1, "{v}");

    // Closed, the alert may be opened again: a new incident.
    let r =
        post(format!("/api/v1/incidents/{id}/actions"), json!({"action": "cancel", "note": "已清理"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = open().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_ne!(v["incident"]["incident_id"].as_i64(), Some(id));
    assert_eq!(v["existing"], false);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_shows_incidents_open_at_a_moment_as_they_were() {
    let srv = start_with("incidents-at", |_| {}).await;
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "near", "name": "near", "kind": "post_officer", "unit_id": "p-west", "key": "key-of-near"}),
    )
    .await;
    srv.admin("/api/v1/positions", json!({"positions": [{"device_id": "near", "lon": 107.051, "lat": 30.75}]})).await;
    let act = |id: i64, body: Value| {
        srv.http.post(format!("{}/api/v1/incidents/{id}/actions", srv.url)).bearer_auth(OPERATOR).json(&body).send()
    };
    let open = |title: &str| {
        srv.http
            .post(format!("{}/api/v1/incidents", srv.url))
            .bearer_auth(OPERATOR)
            .json(&json!({"title": title, "kind": "theft", "priority": 2, "lon": 107.05, "lat": 30.75}))
            .send()
    };
    let pause = || tokio::time::sleep(Duration::from_millis(30));
    let r = open("盗窃").await.unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["incident"]["incident_id"].as_i64().unwrap();
    pause().await;
    let created = now_ms();
    pause().await;
    assert_eq!(act(id, json!({"action": "dispatch", "device_id": "near"})).await.unwrap().status(), 200);
    pause().await;
    let dispatched = now_ms();
    pause().await;
    assert_eq!(act(id, json!({"action": "cancel", "note": "误报"})).await.unwrap().status(), 200);
    pause().await;
    let cancelled = now_ms();
    pause().await;
    let r = open("纠纷").await.unwrap();
    let other = r.json::<Value>().await.unwrap()["incident"]["incident_id"].as_i64().unwrap();

    let server = &srv;
    let at = |t: i64| {
        let path = format!("/api/v1/history/incidents?at={t}");
        async move { server.get(OPERATOR, &path).await }
    };
    let (status, v) = at(created).await;
    assert_eq!(status, 200, "{v}");
    let list = v["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!((list[0]["incident_id"].as_i64(), list[0]["state"].as_str()), (Some(id), Some("new")), "{v}");
    assert_eq!(list[0]["assigned_device"], Value::Null);
    let (_, v) = at(dispatched).await;
    let list = v["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!((list[0]["state"].as_str(), list[0]["assigned_device"].as_str()), (Some("dispatched"), Some("near")));
    assert_eq!((list[0]["title"].as_str(), list[0]["kind"].as_str()), (Some("盗窃"), Some("theft")));
    let (_, v) = at(cancelled).await;
    assert_eq!(v["incidents"], json!([]), "cancelled before then: not open then");
    // Its current state, for comparison: the plain history lists it cancelled.
    let (_, v) = srv.get(OPERATOR, &format!("/api/v1/history/incidents?from={}", created - 60_000)).await;
    let states: Vec<&str> = v["incidents"].as_array().unwrap().iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["new", "cancelled"], "{v}");
    // Open now, however old: only the second.
    let (status, v) = srv.get(OPERATOR, "/api/v1/history/incidents?state=open").await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<i64> = v["incidents"].as_array().unwrap().iter().map(|i| i["incident_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [other]);
    let (_, v) = srv.get(OPERATOR, "/api/v1/history/incidents?state=open&bbox=100,20,100.1,20.1").await;
    assert_eq!(v["incidents"], json!([]), "outside the box");

    for (query, field) in [
        (format!("at={cancelled}&to={cancelled}"), "to"),
        (format!("at={created}&from={cancelled}"), "from"),
        ("state=closed".to_string(), "state"),
        (format!("state=open&at={created}"), "state"),
        ("at=yesterday".to_string(), "at"),
    ] {
        let (status, v) = srv.get(OPERATOR, &format!("/api/v1/history/incidents?{query}")).await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some(field)), "{query}: {v}");
    }
    // A grid member reads the incidents of their own grid only; this one names no grid.
    let (status, v) = srv.get(GRID, &format!("/api/v1/history/incidents?at={created}")).await;
    assert_eq!((status, &v["incidents"]), (200, &json!([])), "a grid member without a grid sees none: {v}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_adjustment_reaches_the_leader_and_the_acknowledgement_reaches_the_operator() {
    const LEADER: &str = "alerts-leader-token";
    const OTHER_LEADER: &str = "alerts-other-leader-token";
    let srv = start_with("routes", |c| {
        c.tokens.push(unit_token(LEADER, Role::PatrolLeader, "team-1"));
        c.tokens.push(unit_token(OTHER_LEADER, Role::PatrolLeader, "team-2"));
    })
    .await;
    srv.admin("/api/v1/devices", json!({"device_id": "lead-phone", "name": "队长手机", "kind": "patrol_leader", "unit_id": "team-1", "key": "key-of-lead-phone"})).await;
    let mut leader = srv.ws(LEADER).await;
    let mut other = srv.ws(OTHER_LEADER).await;
    let mut operator = srv.ws(OPERATOR).await;
    let plan = json!({"kind": "diversion", "reason": "校园周边夜间警情，先去学校再回原路线",
        "coordinates": [[107.05, 30.75], [107.10, 30.70], [107.05, 30.75]],
        "waypoints": [{"name": "实验小学", "lon": 107.10, "lat": 30.70, "dwell_s": 300}]});
    let r = srv
        .http
        .post(format!("{}/api/v1/teams/team-1/plans", srv.url))
        .bearer_auth(OPERATOR)
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["plan"]["version"].as_i64(), v["plan"]["status"].as_str()), (Some(1), Some("pending")));
    // The leader's phone gets the new route; the other team's leader does not.
    let pushed = next_route(&mut leader, 3000).await.expect("the leader receives the route");
    assert_eq!(pushed["data"]["event"]["action"], "push");
    assert_eq!(pushed["data"]["plan"]["plan"]["geometry"]["coordinates"][1], json!([107.10, 30.70]));
    assert_eq!(pushed["data"]["plan"]["reason"], plan["reason"]);
    assert!(next_route(&mut other, 300).await.is_none(), "another team's leader sees nothing");
    assert_eq!(next_route(&mut operator, 2000).await.unwrap()["data"]["event"]["action"], "push");

    // The leader acknowledges on the socket; the operator sees it.
    leader
        .send(Message::Text(
            json!({"type": "ack_route", "id": 7, "team_id": "team-1", "version": 1}).to_string().into(),
        ))
        .await
        .unwrap();
    let reply = next_route(&mut leader, 3000).await.unwrap();
    let reply = if reply["type"] == "route" { next_route(&mut leader, 3000).await.unwrap() } else { reply };
    assert_eq!(
        (reply["type"].as_str(), reply["id"].as_i64(), reply["status"].as_str()),
        (Some("ack"), Some(7), Some("acknowledged")),
        "{reply}"
    );
    let acked = next_route(&mut operator, 3000).await.expect("the operator sees the acknowledgement");
    assert_eq!(
        (acked["data"]["event"]["action"].as_str(), acked["data"]["plan"]["acked_by"].as_str()),
        (Some("ack"), Some(LEADER))
    );

    // Version 2, acknowledged over HTTP by the leader's phone; repeats are refused.
    let r = srv
        .http
        .post(format!("{}/api/v1/teams/team-1/plans", srv.url))
        .bearer_auth(OPERATOR)
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["plan"]["version"], 2);
    let ack = |token: &'static str, version: i64| {
        srv.http.post(format!("{}/api/v1/teams/team-1/plans/{version}/ack", srv.url)).bearer_auth(token).send()
    };
    assert_eq!(ack("key-of-lead-phone", 2).await.unwrap().status(), 200);
    let r = ack("key-of-lead-phone", 2).await.unwrap();
    assert_eq!(r.status(), 422, "already acknowledged: not allowed once the version is no longer pending");
    let r = ack(LEADER, 1).await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "version");
    assert_eq!(ack(OPERATOR, 2).await.unwrap().status(), 403, "the centre does not acknowledge for the team");
    assert_eq!(ack(OTHER_LEADER, 2).await.unwrap().status(), 403);

    // The operators' view: every team's current plan and its status.
    let (status, heads) = srv.get(OPERATOR, "/api/v1/plans").await;
    assert_eq!(status, 200);
    assert_eq!((heads["pending"].as_i64(), heads["plans"][0]["version"].as_i64()), (Some(0), Some(2)), "{heads}");
    assert_eq!(heads["plans"][0]["status"], "acknowledged");
    let (_, list) = srv.get(LEADER, "/api/v1/teams/team-1/plans").await;
    let versions: Vec<i64> = list["plans"].as_array().unwrap().iter().map(|p| p["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [2, 1]);
    // A leader reconnecting with `since` gets the route events again.
    let seq = pushed["seq"].as_i64().unwrap();
    let (mut again, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/live?token={LEADER}&since={}", srv.addr, seq - 1))
            .await
            .unwrap();
    assert_eq!(next_route(&mut again, 3000).await.unwrap()["seq"], seq);

    // Bad input names the field.
    for (team, body, status, field) in [
        ("team-9", plan.clone(), 404, None),
        (
            "team-1",
            json!({"kind": "detour", "reason": "x", "coordinates": [[107.0, 30.7], [107.1, 30.7]]}),
            400,
            Some("kind"),
        ),
        ("team-1", json!({"reason": "x", "coordinates": [[107.0, 30.7]]}), 400, Some("coordinates")),
        ("team-1", json!({"reason": "x", "coordinates": [[107.0, 30.7], [207.1, 30.7]]}), 400, Some("coordinates[1]")),
        ("team-1", json!({"reason": " ", "coordinates": [[107.0, 30.7], [107.1, 30.7]]}), 400, Some("reason")),
    ] {
        let r = srv
            .http
            .post(format!("{}/api/v1/teams/{team}/plans", srv.url))
            .bearer_auth(OPERATOR)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        if let Some(f) = field {
            assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], f, "{body}");
        }
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaving_the_planned_corridor_raises_off_route_once_and_returning_clears_it() {
    let srv = start_with("adherence", |_| {}).await;
    member_on_a_plan(&srv, json!([[107.05, 30.75], [107.10, 30.75]])).await;
    let mut operator = srv.ws(OPERATOR).await;
    // Along the line, one noisy fix 200 m off, along again, then 400 m off for three
    // fixes, then back for three: one off-route alert and one back-on-route alert.
    let t0 = now_ms() - 30 * 60_000;
    let off = 0.0036; // about 400 m of latitude
    let lats = [0.0, 0.0, 0.0018, 0.0, 0.0, off, off, off, off, 0.0, 0.0, 0.0, 0.0];
    for (i, dlat) in lats.iter().enumerate() {
        let body = json!({"positions": [{"device_id": "m1", "lon": 107.06 + i as f64 * 0.0005, "lat": 30.75 + dlat, "time": t0 + i as i64 * 60_000, "accuracy_m": 10}]});
        let r =
            srv.http.post(format!("{}/api/v1/positions", srv.url)).bearer_auth(ADMIN).json(&body).send().await.unwrap();
        assert!(r.status().is_success());
    }
    let got = all_of(&mut operator, "alert", 1000).await;
    let rules: Vec<&str> = got.iter().map(|a| a["data"]["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["route_off", "route_back"], "{got:?}");
    assert_eq!(got[0]["data"]["device_id"], "m1");
    assert_eq!(got[0]["data"]["team_id"], "team-1");
    assert_eq!(got[0]["data"]["plan_version"], 1);
    assert!(got[0]["data"]["adherence"]["distance_m"].as_f64().unwrap() > 300.0, "{}", got[0]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patrol_leader_gets_the_alerts_of_the_team_area_only() {
    const LEADER: &str = "alerts-area-leader";
    let srv = start_with("leader-area", |c| {
        c.tokens.push(team_1_leader(LEADER));
    })
    .await;
    // Team 1's post is p-west (107.1, 30.7); the leader's area is 8 km around it. Each
    // camera has its own key (a key names one camera).
    for (id, lon) in [("cam-near", 107.1), ("cam-far", 107.3)] {
        srv.admin(
            "/api/v1/cameras",
            json!({"camera_id": id, "name": id, "kind": "checkpoint", "lon": lon, "lat": 30.72, "key": format!("{CAMERA_KEY}-{id}")}),
        )
        .await;
    }
    srv.admin("/api/v1/watchlist", json!({"watch_id": "w-1", "kind": "plate", "value": "川S12345", "reason": "被盗车辆", "priority": 2, "roles": ["operator", "patrol_leader"]})).await;
    let mut leader = srv.ws(LEADER).await;
    let mut operator = srv.ws(OPERATOR).await;
    // 19 km east, in another team's area: the operator is told, not this leader.
    anpr(&srv, "cam-far", &format!("{CAMERA_KEY}-cam-far"), "川S12345", "2026-11-27T22:40:00+08:00").await;
    let far = all_of(&mut operator, "alert", 1000).await;
    assert_eq!(far.len(), 1, "{far:?}");
    assert!(all_of(&mut leader, "alert", 500).await.is_empty(), "not in team 1's area");
    // 2.2 km from the post: both.
    anpr(&srv, "cam-near", &format!("{CAMERA_KEY}-cam-near"), "川S12345", "2026-11-27T22:45:00+08:00").await;
    let near = all_of(&mut leader, "alert", 1000).await;
    assert_eq!(near.len(), 1, "{near:?}");
    assert_eq!(near[0]["data"]["camera"]["id"], "cam-near", "{}", near[0]);
    assert_eq!(all_of(&mut operator, "alert", 1000).await.len(), 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serious_alert_near_a_team_diverts_it_and_the_leader_is_told() {
    const LEADER: &str = "alerts-diversion-leader";
    let srv = start_with("diversion", |c| {
        c.tokens.push(team_1_leader(LEADER));
    })
    .await;
    srv.admin("/api/v1/cameras", json!({"camera_id": "cam-1", "name": "纵路卡口", "kind": "checkpoint", "lon": 107.1, "lat": 30.72, "key": CAMERA_KEY})).await;
    srv.admin("/api/v1/watchlist", json!({"watch_id": "w-1", "kind": "plate", "value": "川S12345", "reason": "在逃人员车辆", "priority": 1, "roles": ["operator"]})).await;
    // Team 1 walks its plan on 纵路, 2.2 km south of the checkpoint.
    member_on_a_plan(&srv, json!([[107.1, 30.65], [107.1, 30.70]])).await;
    let body = json!({"positions": [{"device_id": "m1", "lon": 107.1, "lat": 30.70, "time": now_ms() - 10_000}]});
    assert!(srv
        .http
        .post(format!("{}/api/v1/positions", srv.url))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let mut leader = srv.ws(LEADER).await;
    let mut operator = srv.ws(OPERATOR).await;
    // A wanted plate at the checkpoint: an alert, and a diversion for team 1.
    let ack = anpr(&srv, "cam-1", CAMERA_KEY, "川S12345", "2026-11-27T10:00:00+08:00").await;
    let alert_seq = ack["alert_seq"].as_i64().expect("an alert");
    let superseded = next_route(&mut leader, 3000).await.expect("the leader's pending plan is superseded");
    assert_eq!(superseded["data"]["event"]["action"], "supersede");
    let route = next_route(&mut leader, 3000).await.expect("the leader gets the diversion");
    assert_eq!(route["data"]["event"]["action"], "push");
    let p = &route["data"]["plan"];
    assert_eq!(
        (p["kind"].as_str(), p["version"].as_i64(), p["status"].as_str()),
        (Some("diversion"), Some(2), Some("pending")),
        "{route}"
    );
    assert_eq!(p["plan"]["figures"]["alert_seq"], alert_seq);
    assert_eq!(p["plan"]["waypoints"][0]["lon"], 107.1);
    assert_eq!(p["plan"]["waypoints"][0]["lat"], 30.72);
    let travel = p["plan"]["figures"]["travel_there_s"].as_f64().expect("by road");
    // The team walks (planning.patrol_kph 5): not the 200 s a car would take on 40 km/h road.
    assert!((1400.0..1900.0).contains(&travel), "2.2 km of township road on foot at 5 km/h: {travel}");
    // The operator sees it too, and it escalates like any plan if nobody acknowledges.
    let mut saw = false;
    while let Some(m) = next_route(&mut operator, 2000).await {
        if m["data"]["plan"]["kind"] == "diversion" {
            saw = true;
            break;
        }
    }
    assert!(saw, "the operator sees the diversion");
    let (_, heads) = srv.get(OPERATOR, "/api/v1/plans").await;
    assert_eq!(heads["pending"], 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sos_near_a_team_diverts_it_to_the_caller_and_the_leader_is_told() {
    const LEADER: &str = "alerts-sos-leader";
    let srv = start_with("sos-diversion", |c| {
        c.tokens.push(team_1_leader(LEADER));
    })
    .await;
    // Team 1 walks its plan on 纵路, 2.2 km south of the officer who will call for help.
    member_on_a_plan(&srv, json!([[107.1, 30.65], [107.1, 30.70]])).await;
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "o1", "name": "王警官", "kind": "post_officer", "unit_id": "post-1", "key": "key-of-o1"}),
    )
    .await;
    let report = |q: String| srv.http.get(format!("{}/?{q}", srv.url)).send();
    let t = now_ms() / 1000;
    let r = report(format!("id=m1&key=key-of-m1&lat=30.70&lon=107.1&timestamp={}", t - 10)).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut leader = srv.ws(LEADER).await;
    let mut operator = srv.ws(OPERATOR).await;
    // The officer's phone: Traccar Client's SOS button, as it sends it.
    let r = report(format!("id=o1&key=key-of-o1&lat=30.72&lon=107.1&timestamp={t}&alarm=sos")).await.unwrap();
    assert_eq!(r.status(), 200);
    let alert = next_of(&mut operator, "alert", 3000).await.expect("the operator sees the sos");
    assert_eq!(alert["data"]["rule"], "sos", "{alert}");
    let alert_seq = alert["data"]["seq"].as_i64().expect("the alert's number");
    let superseded = next_route(&mut leader, 3000).await.expect("the leader's pending plan is superseded");
    assert_eq!(superseded["data"]["event"]["action"], "supersede");
    let route = next_route(&mut leader, 3000).await.expect("the leader is sent to the officer");
    let p = &route["data"]["plan"];
    assert_eq!((p["kind"].as_str(), p["status"].as_str()), (Some("diversion"), Some("pending")), "{route}");
    assert_eq!(p["plan"]["figures"]["alert_seq"], alert_seq);
    assert_eq!(
        (p["plan"]["waypoints"][0]["lon"].as_f64(), p["plan"]["waypoints"][0]["lat"].as_f64()),
        (Some(107.1), Some(30.72))
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planning_run_announces_the_hotspots_and_sends_the_team_a_plan_that_covers_them() {
    const LEADER: &str = "alerts-planning-leader";
    let srv = start_with("planning", |c| {
        c.tokens.push(team_1_leader(LEADER));
        // Scheduled runs are tested below; here only the operator's run.
        c.planning.interval_s = 0;
        c.planning.shift_min = 60;
        // Team 1 patrols by car (`travel: vehicle` on its route): at road speeds, 6.7 km
        // there and back fit in the hour. Walking teams are planned at 5 km/h (the
        // diversion test below), and could not.
        c.maps = map_with_vehicle_team("planning");
    })
    .await;
    // Team 1's fixed route runs south from its post (107.1, 30.7) and east along 横路.
    // Trouble clusters 6.7 km north of the post on 纵路, which the fixed route never visits.
    for i in 0..6 {
        let r = srv
            .http
            .post(format!("{}/api/v1/incidents", srv.url))
            .bearer_auth(OPERATOR)
            .json(
                &json!({"title": "盗窃", "kind": "theft", "priority": 1, "lon": 107.1 + i as f64 * 2e-4, "lat": 30.76}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let mut leader = srv.ws(LEADER).await;
    let mut operator = srv.ws(OPERATOR).await;
    let post = |path: &str| srv.http.post(format!("{}{path}", srv.url)).bearer_auth(OPERATOR).send();
    let r = post("/api/v1/planning/run").await.unwrap();
    assert_eq!(r.status(), 200);
    let run: Value = r.json().await.unwrap();
    assert_eq!((run["events"].as_i64(), run["pushed"].as_i64()), (Some(6), Some(1)), "{run}");

    // The operator hears of the analysis, with the hottest cell where the thefts were.
    let spots = next_of(&mut operator, "hotspots", 3000).await.expect("the analysis is announced");
    let hottest = &spots["top"]["features"][0]["properties"];
    assert!(hottest["count"].as_i64().unwrap() >= 1, "{spots}");
    let ring = spots["top"]["features"][0]["geometry"]["coordinates"][0].as_array().unwrap().clone();
    let (lons, lats): (Vec<f64>, Vec<f64>) =
        ring.iter().map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap())).unzip();
    let inside = |x: f64, v: &[f64]| {
        v.iter().cloned().fold(f64::MAX, f64::min) <= x && x <= v.iter().cloned().fold(f64::MIN, f64::max)
    };
    assert!(inside(107.1005, &lons) && inside(30.76, &lats), "the top cell holds the cluster: {ring:?}");

    // The leader gets a plan that goes there, within the shift, back at the post; the
    // analysis itself is for the command centre.
    let mut heard = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout_at(deadline, leader.next()).await {
        heard.push(liandong_test_support::schema::checked_message(&t));
    }
    assert!(heard.iter().all(|m| m["type"] != "hotspots"), "{heard:?}");
    let route = heard.iter().find(|m| m["type"] == "route").expect("the leader gets the plan");
    let p = &route["data"]["plan"];
    assert_eq!((p["kind"].as_str(), p["status"].as_str()), (Some("plan"), Some("pending")), "{route}");
    let body = &p["plan"];
    let hot: Vec<&Value> = body["waypoints"].as_array().unwrap().iter().filter(|w| w["kind"] == "hotspot").collect();
    assert!(!hot.is_empty(), "the plan stops at a hotspot: {body}");
    assert!(
        hot.iter().any(|w| (w["lat"].as_f64().unwrap() - 30.76).abs() < 0.003),
        "a stop at the theft cluster: {hot:?}"
    );
    assert!(hot.iter().all(|w| w["planned_time"].is_string() && w["dwell_s"] == 300));
    let f = &body["figures"];
    assert!(f["total_s"].as_f64().unwrap() <= 3600.0, "within the shift: {f}");
    assert!(
        f["covered_weight"].as_f64().unwrap() > f["fixed_route_covered_weight"].as_f64().unwrap(),
        "covers more than the fixed route: {f}"
    );
    let line = body["geometry"]["coordinates"].as_array().unwrap();
    for end in [&line[0], &line[line.len() - 1]] {
        assert!((end[0].as_f64().unwrap() - 107.1).abs() < 1e-3 && (end[1].as_f64().unwrap() - 30.7).abs() < 1e-3);
    }

    // The analysis is also the map's `hotspots` layer, for operators only.
    let (status, layers) = srv.get(OPERATOR, "/api/v1/layers").await;
    assert_eq!(status, 200);
    let listed = layers["layers"].as_array().unwrap().iter().find(|l| l["name"] == "hotspots").cloned();
    assert!(listed.as_ref().is_some_and(|l| l["analysed_at"].is_string()), "{layers}");
    let (status, layer) = srv.get(OPERATOR, "/api/v1/layers/hotspots").await;
    assert_eq!(status, 200, "{layer}");
    assert_eq!(layer["type"], "FeatureCollection");
    let densest = layer["features"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            let d = |f: &Value| f["properties"]["density_per_km2"].as_f64().unwrap();
            d(a).total_cmp(&d(b))
        })
        .expect("cells");
    assert_eq!(densest["geometry"], spots["top"]["features"][0]["geometry"], "the same analysis");
    let (status, _) = srv.get(GRID, "/api/v1/layers/hotspots").await;
    assert_eq!(status, 403);
    let (_, layers) = srv.get(GRID, "/api/v1/layers").await;
    assert!(layers["layers"].as_array().unwrap().iter().all(|l| l["name"] != "hotspots"));

    // Screens asking for the analysis at once (as after a notice) get one analysis.
    let ask = || srv.get(OPERATOR, "/api/v1/hotspots?top=3");
    let ((s1, a1), (s2, a2)) = tokio::join!(ask(), ask());
    assert_eq!((s1, s2), (200, 200));
    assert!(a1["analysed_at"].is_string(), "{a1}");
    assert_eq!(a1["analysed_at"], a2["analysed_at"], "one analysis for both");
    assert_eq!(a1, a2);
    let cells =
        |v: &Value| v["top"].as_array().unwrap().iter().map(|b| b["cells"].as_array().unwrap().len()).sum::<usize>();
    let (_, one) = srv.get(OPERATOR, "/api/v1/hotspots?top=1").await;
    assert!(cells(&one) < cells(&a1), "another query, its own answer: {} then {}", cells(&one), cells(&a1));
    // Another `top` or `band` is cut from the same analysis: varying them costs no new one.
    let (_, band0) = srv.get(OPERATOR, "/api/v1/hotspots?band=0&top=2").await;
    assert_eq!((&one["analysed_at"], &band0["analysed_at"]), (&a1["analysed_at"], &a1["analysed_at"]), "{band0}");

    // Nothing changed: a second run pushes nothing.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let run: Value = post("/api/v1/planning/run").await.unwrap().json().await.unwrap();
    assert_eq!(run["pushed"], 0, "{run}");
    let (_, a3) = ask().await;
    // The server's times are UTC milliseconds without trailing zeros (…21.3Z, …21.32Z).
    let sortable = |v: &Value| {
        let t = v.as_str().unwrap().trim_end_matches('Z');
        match t.split_once('.') {
            Some((s, f)) => format!("{s}.{f:0<3}"),
            None => format!("{t}.000"),
        }
    };
    assert!(
        sortable(&a3["analysed_at"]) > sortable(&a1["analysed_at"]),
        "a new run, a new analysis: {} then {}",
        a1["analysed_at"],
        a3["analysed_at"]
    );
    assert_eq!(run["teams"][0]["reason"], "the plan is unchanged");
    assert!(next_route(&mut leader, 500).await.is_none());
    // An operator may still re-plan one team by hand; an unknown team is named.
    let r = post("/api/v1/teams/team-1/replan").await.unwrap();
    assert_eq!(r.status(), 201);
    let r = post("/api/v1/teams/team-9/replan").await.unwrap();
    assert_eq!(r.status(), 404);
    let r = srv.http.post(format!("{}/api/v1/planning/run", srv.url)).bearer_auth(LEADER).send().await.unwrap();
    assert_eq!(r.status(), 403, "leaders do not run the analysis");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_analysis_reaches_the_operator_without_asking() {
    let srv = start_with("planning-schedule", |c| c.planning.interval_s = 2).await;
    let mut operator = srv.ws(OPERATOR).await;
    let r = srv
        .http
        .post(format!("{}/api/v1/incidents", srv.url))
        .bearer_auth(OPERATOR)
        .json(&json!({"title": "纠纷", "kind": "dispute", "priority": 2, "lon": 107.1, "lat": 30.65}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let spots = next_of(&mut operator, "hotspots", 6000).await.expect("a scheduled analysis within 2 s or so");
    assert_eq!(spots["events"], 1);
    let route = next_route(&mut operator, 3000).await.expect("and a plan for team 1");
    assert_eq!(route["data"]["plan"]["kind"], "plan");
    assert_eq!(route["data"]["plan"]["created_by"], "schedule");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_alert_shows_as_acknowledged_on_every_operators_screen() {
    const SECOND: &str = "alerts-second-operator";
    let srv = start_with("ack", |c| {
        c.tokens.push(TokenConfig {
            token: Secret::new(SECOND),
            role: Role::Operator,
            name: "值班员乙".into(),
            unit_id: None,
            person_id: None,
        });
    })
    .await;
    srv.admin("/api/v1/cameras", json!({"camera_id": "cam-1", "name": "横路卡口", "kind": "checkpoint", "lon": 107.15, "lat": 30.6, "key": CAMERA_KEY})).await;
    srv.admin("/api/v1/watchlist", json!({"watch_id": "w-1", "kind": "plate", "value": "川S54321", "reason": "涉案车辆", "priority": 2, "roles": ["operator"]})).await;
    let ack = anpr(&srv, "cam-1", CAMERA_KEY, "川S54321", "2026-11-27T03:00:00+08:00").await;
    let alert_seq = ack["alert_seq"].as_i64().expect("an alert");
    let mut second = srv.ws(SECOND).await;
    let mut partner = srv.ws(PARTNER).await;
    let ack_by = |token: &'static str, seq: i64, body: Option<Value>| {
        let mut r = srv.http.post(format!("{}/api/v1/alerts/{seq}/ack", srv.url)).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };

    // The first operator acknowledges; the second sees it at once.
    let r = ack_by(OPERATOR, alert_seq, Some(json!({"note": "已通知巡防队拦截"}))).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["alert_seq"].as_i64(), v["by"].as_str()), (Some(alert_seq), Some(OPERATOR)), "{v}");
    let seen = next_of(&mut second, "alert_ack", 2000).await.expect("the other operator's screen hears of it");
    assert_eq!(seen["data"]["alert_seq"], alert_seq);
    assert_eq!(seen["data"]["by"], OPERATOR);
    assert_eq!(seen["data"]["note"], "已通知巡防队拦截");
    assert!(next_of(&mut partner, "alert_ack", 500).await.is_none(), "only those who see the alert hear of it");

    // The history says who acknowledged first; a second acknowledgement is kept and told.
    let r = ack_by(SECOND, alert_seq, None).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["first"]["by"], OPERATOR, "{v}");
    let (status, h) = srv.get(OPERATOR, "/api/v1/history/alerts").await;
    assert_eq!(status, 200);
    assert_eq!(h["acknowledged"][alert_seq.to_string()]["by"], OPERATOR, "{h}");

    // A screen that reconnects gets the acknowledgements it missed.
    let mut late =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/live?token={OPERATOR}&since={alert_seq}", srv.addr))
            .await
            .unwrap()
            .0;
    let replayed = next_of(&mut late, "alert_ack", 2000).await.expect("replayed");
    assert_eq!(replayed["data"]["alert_seq"], alert_seq);

    // Who may not, and what is not there, are told apart.
    assert_eq!(ack_by(PARTNER, alert_seq, None).await.unwrap().status(), 403);
    assert_eq!(ack_by(OPERATOR, alert_seq + 1000, None).await.unwrap().status(), 404);
    let r = ack_by(OPERATOR, alert_seq, Some(json!({"note": "长".repeat(501)}))).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "note");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_and_the_de_duplication_survive_a_restart_of_the_server() {
    let cameras = [
        json!({"camera_id": "cam-1", "name": "横路卡口", "kind": "checkpoint", "lon": 107.15, "lat": 30.6, "key": CAMERA_KEY}),
        json!({"camera_id": "cam-2", "name": "东门卡口", "kind": "checkpoint", "lon": 107.18, "lat": 30.63, "key": "camera-key-0002"}),
    ];
    let srv = start_with("track-restart", |_| {}).await;
    for c in &cameras {
        srv.admin("/api/v1/cameras", c.clone()).await;
    }
    srv.admin("/api/v1/watchlist", json!({"watch_id": "w-1", "kind": "plate", "value": "川S·12345", "reason": "被盗车辆", "priority": 2, "roles": ["operator"]})).await;
    let at = |min_ago: i64| liandong_server::time_fmt::rfc3339_ms(now_ms() - min_ago * 60_000);
    anpr(&srv, "cam-1", CAMERA_KEY, "川S12345", &at(20)).await;
    let dir = srv.stop_keeping_data().await;

    // Restarted on the same store, the next read's alert still carries the whole track.
    let srv = start_in(dir, |_| {}).await;
    let mut operator = srv.ws(OPERATOR).await;
    anpr(&srv, "cam-2", "camera-key-0002", "川S12345", &at(10)).await;
    let got = all_of(&mut operator, "alert", 1000).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let track = &got[0]["data"]["track"];
    assert_eq!(track["cameras"], json!(["cam-1", "cam-2"]), "the read before the restart is in the track: {track}");
    assert_eq!(track["heading"], "NE");
    // cam-1 reads the plate again 30 s after its read before the restart: within the
    // 60 s de-duplication window, a repeat, restart or not.
    let again = liandong_server::time_fmt::rfc3339_ms(now_ms() - 20 * 60_000 + 30_000);
    anpr(&srv, "cam-1", CAMERA_KEY, "川S12345", &again).await;
    let got = all_of(&mut operator, "alert", 500).await;
    assert!(got.is_empty(), "a repeat within the window is not alerted after a restart either: {got:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sent_to_an_incident_is_not_off_route() {
    let srv = start_with("adherence-incident", |_| {}).await;
    member_on_a_plan(&srv, json!([[107.05, 30.75], [107.10, 30.75]])).await;
    let mut operator = srv.ws(OPERATOR).await;
    let t0 = now_ms() - 10 * 60_000;
    let fix = |i: i64, dlat: f64| json!({"positions": [{"device_id": "m1", "lon": 107.06, "lat": 30.75 + dlat, "time": t0 + i * 30_000, "accuracy_m": 10}]});
    let post = |path: String, token: &'static str, body: Value| {
        srv.http.post(format!("{}{path}", srv.url)).bearer_auth(token).json(&body).send()
    };
    for i in 0..2 {
        assert!(post("/api/v1/positions".into(), ADMIN, fix(i, 0.0)).await.unwrap().status().is_success());
    }
    // An incident 400 m off the line; the member is sent there and goes.
    let r = post(
        "/api/v1/incidents".into(),
        OPERATOR,
        json!({"title": "纠纷", "kind": "dispute", "priority": 2, "lon": 107.06, "lat": 30.7536}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["incident"]["incident_id"].as_i64().unwrap();
    let r = post(format!("/api/v1/incidents/{id}/actions"), OPERATOR, json!({"action": "dispatch", "device_id": "m1"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for i in 2..8 {
        assert!(post("/api/v1/positions".into(), ADMIN, fix(i, 0.0036)).await.unwrap().status().is_success());
    }
    let got = all_of(&mut operator, "alert", 1000).await;
    let rules: Vec<&str> = got.iter().filter_map(|a| a["data"]["rule"].as_str()).collect();
    assert!(!rules.contains(&"route_off"), "sent to an incident is not off route: {rules:?}");
    srv.stop().await;
}

/// Member m1 of team 1, and a plan for team 1 along `coordinates` (`[[lon, lat], …]`).
async fn member_on_a_plan(srv: &Server, coordinates: Value) {
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "m1", "name": "队员", "kind": "patrol_member", "unit_id": "team-1", "key": "key-of-m1"}),
    )
    .await;
    let plan = json!({"kind": "plan", "reason": "白班巡线", "coordinates": coordinates});
    let r = srv
        .http
        .post(format!("{}/api/v1/teams/team-1/plans", srv.url))
        .bearer_auth(OPERATOR)
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}
