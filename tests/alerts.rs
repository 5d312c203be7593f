//! Camera alerts end to end, against a server on 127.0.0.1:0: a Hikvision ANPR push of
//! a watch-listed plate reaches an operator's websocket as a high-priority alert with
//! the nearest posts and units; the same read 10 s later raises nothing; a repeated push
//! is not a new alert; heartbeats are stored; malformed and DTD-carrying XML is refused.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use liandong_server::auth::Role;
use liandong_server::config::{Config, Secret, TokenConfig};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "alerts-admin-token";
const OPERATOR: &str = "alerts-operator-token";
const GRID: &str = "alerts-grid-token";
const PARTNER: &str = "alerts-partner-token";
const CAMERA_KEY: &str = "camera-key-0001";

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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

async fn next_alert(ws: &mut Ws, within_ms: u64) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(within_ms);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??.ok()?;
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "alert" {
                return Some(v);
            }
        }
    }
}

struct Server {
    addr: std::net::SocketAddr,
    url: String,
    http: reqwest::Client,
    dir: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), liandong_server::ServeError>>,
}

async fn start(name: &str) -> Server {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("liandong-alerts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config { data_dir: dir.clone(), maps: root.join("tests/fixtures/maps/mini"), ..Config::default() };
    config.store.durability = liandong_store::Durability::Normal;
    let token = |t: &str, role| TokenConfig { token: Secret::new(t), role, name: t.into(), unit_id: None };
    config.tokens = vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        token(GRID, Role::GridMember),
        token(PARTNER, Role::Partner),
    ];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(liandong_server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = http
        .post(format!("{url}/api/v1/cameras"))
        .bearer_auth(ADMIN)
        .json(&json!({"camera_id": "cam-1", "name": "横路卡口", "kind": "checkpoint", "lon": 107.15, "lat": 30.6, "key": CAMERA_KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    Server { addr, url, http, dir, stop, task }
}

impl Server {
    async fn finish(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task).await.unwrap().unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn ws(&self, token: &str) -> Ws {
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/live?token={token}", self.addr)).await.unwrap().0
    }
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
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
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
    let alert = next_alert(&mut operator, 3000).await.expect("the operator sees the alert");
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
    assert!(next_alert(&mut grid, 300).await.is_none(), "a grid member is not entitled to watch-list hits");

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
    assert!(next_alert(&mut operator, 300).await.is_none(), "no second alert");

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
    let replayed = next_alert(&mut again, 3000).await.expect("the alert is replayed");
    assert_eq!(replayed["seq"], alert_seq);

    let store = liandong_store::Store::open(&dir, liandong_store::Durability::Normal).await.unwrap();
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 5, "every accepted push is stored");
    srv.finish().await;
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
    let r = srv
        .http
        .post(format!("{}/isapi/events?camera=cam-1&key={CAMERA_KEY}", srv.url))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let alert = next_alert(&mut partner, 3000).await.expect("the partner sees the tagged-person alert");
    assert_eq!(alert["data"]["rule"], "watchlist_person");
    assert_eq!(alert["data"]["read"]["value"], "P-0042");
    assert!(next_alert(&mut grid, 300).await.is_none(), "not a grid member");
    assert!(next_alert(&mut operator, 300).await.is_none(), "not an operator either: the entry names partners only");
    // The snapshot is stored and served to those who handle the alert.
    let image = alert["data"]["images"][0].as_str().expect("the alert names its snapshot").to_owned();
    let r = srv.http.get(format!("{}{image}", srv.url)).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), TINY_JPEG);
    let r = srv.http.get(format!("{}{image}", srv.url)).bearer_auth(GRID).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r =
        srv.http.get(format!("{}/api/v1/images/..%2Fliandong.db", srv.url)).bearer_auth(PARTNER).send().await.unwrap();
    assert_eq!(r.status(), 404, "no path out of the image directory");

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
        [("tagged_person_read", PARTNER), ("tagged_person_seen", "camera:cam-1"), ("tagged_person_saved", ADMIN)],
        "{log}"
    );
    let store = liandong_store::Store::open(&srv.dir, liandong_store::Durability::Normal).await.unwrap();
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 2);
    srv.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_report_goes_to_mediation_and_its_outcome_shows_in_the_statistics() {
    let srv = start("mediation").await;
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
    srv.finish().await;
}
