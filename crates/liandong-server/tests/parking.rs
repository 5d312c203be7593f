//! Parking capture (违停抓拍, issue 17) against a server on `127.0.0.1:0`, on both
//! stores: a parking camera's ISAPI push, in the XML the cameras send, becomes a parking
//! record; inside a no-parking fence during its hours it raises one `no_parking` alert
//! per plate, fence and window (a repeated capture raises none, also after a restart);
//! out of hours or outside every fence it is only a record; an ANPR push flagged as
//! illegal parking counts from any camera; the statistics by place and hour; who may read.

use liandong_server::auth::Role;
use liandong_server::time_fmt::rfc3339_ms;
use liandong_test_support::feed::next_of;
use liandong_test_support::{on_both_stores, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const WEST: &str = "west-post-token";
const EAST: &str = "east-post-token";
const LEADER: &str = "leader-token";
const GRID: &str = "grid-token";

const DAY_MS: i64 = 86_400_000;
const CST_MS: i64 = 8 * 3_600_000;

/// The school gate's parking camera (inside `np-school-gate` of the mini map, in the
/// west post's jurisdiction), a parking camera outside every fence, and a checkpoint
/// camera in the east street's fire lane.
const GATE: (&str, &str, f64, f64) = ("cam-np-gate", "camera-key-np-gate", 107.1, 30.6875);
const STREET: (&str, &str, f64, f64) = ("cam-np-street", "camera-key-np-street", 107.15, 30.6);
const FIRE: (&str, &str, f64, f64) = ("cam-fire", "camera-key-fire-lane", 107.255, 30.705);

/// China-time midnight (unix ms) of the most recent school day (Monday to Friday) at
/// least a day and at most a week ago: pushes are dated then, within the server's
/// `ingest.accept_past_s`.
fn school_day() -> i64 {
    let today = (liandong_test_support::now_ms() + CST_MS).div_euclid(DAY_MS);
    let day = (1..8).map(|d| today - d).find(|d| (d + 3).rem_euclid(7) < 5).unwrap();
    day * DAY_MS - CST_MS
}

fn at(day_ms: i64, h: i64, m: i64) -> i64 {
    day_ms + (h * 60 + m) * 60_000
}

/// A Hikvision `EventNotificationAlert` of `event_type` reading `plate` at `time_ms`,
/// with `extra` inside its `<ANPR>` block.
fn push_xml(event_type: &str, plate: &str, time_ms: i64, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n\
         <ipAddress>10.12.7.21</ipAddress>\n<portNo>80</portNo>\n<protocol>HTTP</protocol>\n\
         <macAddress>bc:ba:c2:10:7a:01</macAddress>\n<channelID>1</channelID>\n\
         <dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n\
         <eventType>{event_type}</eventType>\n<eventState>active</eventState>\n\
         <eventDescription>{event_type}</eventDescription>\n\
         <ANPR>\n<country>CHN</country>\n<licensePlate>{plate}</licensePlate>\n<line>1</line>\n\
         <confidenceLevel>96</confidenceLevel>\n<plateColor>blue</plateColor>\n<vehicleType>vehicle</vehicleType>\n\
         {extra}</ANPR>\n</EventNotificationAlert>\n",
        rfc3339_ms(time_ms)
    )
}

async fn start(name: &str, backend: Backend) -> Option<(Server, liandong_server::config::Config)> {
    let dir = liandong_test_support::fresh_dir(&format!("parking-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        unit_token(WEST, Role::PostOfficer, "p-west"),
        unit_token(EAST, Role::PostOfficer, "p-east"),
        token(LEADER, Role::PatrolLeader),
        token(GRID, Role::GridMember),
    ];
    backend.configure(&mut config, &format!("parking_{name}")).await?;
    let srv = Server::start(config.clone()).await;
    for ((id, key, lon, lat), kind) in [(GATE, "parking"), (STREET, "parking"), (FIRE, "checkpoint")] {
        let body = json!({"camera_id": id, "name": format!("{id} 违停抓拍"), "kind": kind, "lon": lon, "lat": lat, "key": key});
        srv.admin("/api/v1/cameras", body).await;
    }
    Some((srv, config))
}

/// Pushes as `cam`; answers the acknowledgement (`seq`, `alert_seq`).
async fn push(srv: &Server, cam: (&str, &str, f64, f64), xml: String) -> Value {
    let r = srv.isapi(cam.0, cam.1, "application/xml", xml).await;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}

async fn records(srv: &Server, who: &str, query: &str) -> Vec<Value> {
    let (s, v) = srv.get(who, &format!("/api/v1/parking/records?{query}")).await;
    assert_eq!(s, 200, "{v}");
    v["records"].as_array().unwrap().clone()
}

async fn a_capture_in_a_fence_at_its_hours_raises_one_alert_per_plate_and_window(backend: Backend) {
    let Some((srv, config)) = start("alerts", backend).await else { return };
    let day = school_day();
    let mut ws = srv.ws(OPERATOR).await;
    let first = push(&srv, GATE, push_xml("illegalParking", "川S12345", at(day, 7, 30), "")).await;
    let alert_seq = first["alert_seq"].as_i64().expect("the first capture in the window raises an alert");
    let alert = next_of(&mut ws, "alert", 5000).await.expect("the alert is on the live feed");
    let data = &alert["data"];
    assert_eq!(
        (data["seq"].as_i64(), data["rule"].as_str(), data["priority"].as_i64()),
        (Some(alert_seq), Some("no_parking"), Some(3)),
        "{alert}"
    );
    let parking = &data["parking"];
    assert_eq!(parking["plate"], "川S12345", "{alert}");
    assert_eq!(
        (parking["fence"].as_str(), parking["fence_kind"].as_str()),
        (Some("np-school-gate"), Some("school_gate")),
        "{alert}"
    );
    assert_eq!(parking["window_start"], rfc3339_ms(at(day, 7, 20)), "{alert}");
    assert_eq!(parking["window_end"], rfc3339_ms(at(day, 8, 10)), "{alert}");
    assert_eq!(parking["event_seq"], first["seq"], "{alert}");
    assert_eq!(data["camera"]["id"], GATE.0, "{alert}");
    assert_eq!(data["place"]["post"]["id"], "p-west", "the alert names the jurisdiction's post: {alert}");

    let again = push(&srv, GATE, push_xml("illegalParking", "川S12345", at(day, 7, 50), "")).await;
    assert!(again["alert_seq"].is_null(), "the same car captured again in the window: {again}");
    let other = push(&srv, GATE, push_xml("illegalParking", "川S54321", at(day, 7, 55), "")).await;
    assert!(other["alert_seq"].is_i64(), "another car: {other}");
    let afternoon = push(&srv, GATE, push_xml("parking", "川S12345", at(day, 16, 40), "")).await;
    assert!(afternoon["alert_seq"].is_i64(), "the same car in the next window: {afternoon}");

    // Out of hours, and outside every fence: records without alerts.
    let noon = push(&srv, GATE, push_xml("illegalParking", "川S77777", at(day, 12, 40), "")).await;
    assert!(noon["alert_seq"].is_null(), "{noon}");
    let street = push(&srv, STREET, push_xml("ANPR", "川S88888", at(day, 7, 40), "")).await;
    assert!(street["alert_seq"].is_null(), "{street}");
    // An ANPR push flagged illegal parking counts from any camera: the fire lane's, at all hours.
    let flag = "<illegalInfo><illegalCode>1039</illegalCode><illegalName>违停</illegalName></illegalInfo>\n";
    let fire = push(&srv, FIRE, push_xml("ANPR", "川S99999", at(day, 3, 5), flag)).await;
    assert!(fire["alert_seq"].is_i64(), "{fire}");
    // A checkpoint camera's plain plate read is no parking record.
    push(&srv, FIRE, push_xml("ANPR", "川S66666", at(day, 3, 6), "")).await;

    let all = records(&srv, OPERATOR, "").await;
    let plates: Vec<&str> = all.iter().map(|r| r["plate"].as_str().unwrap()).collect();
    assert_eq!(plates, ["川S99999", "川S88888", "川S77777", "川S12345", "川S54321", "川S12345", "川S12345"]);
    let by_plate = |p: &str| all.iter().find(|r| r["plate"] == p).unwrap().clone();
    assert_eq!(
        (by_plate("川S77777")["fence_id"].as_str(), by_plate("川S77777")["violation"].as_bool()),
        (Some("np-school-gate"), Some(false))
    );
    assert_eq!(
        (by_plate("川S88888")["fence_id"].as_str(), by_plate("川S88888")["violation"].as_bool()),
        (None, Some(false))
    );
    assert_eq!(by_plate("川S99999")["fence_id"], "np-fire-lane");
    assert_eq!(all[6]["alert_seq"].as_i64(), Some(alert_seq), "the first record names its alert");
    assert!(all[5]["alert_seq"].is_null() && all[5]["violation"] == true, "{}", all[5]);
    assert_eq!(all[6]["camera_name"], format!("{} 违停抓拍", GATE.0));
    let page = records(&srv, OPERATOR, "plate=川S12345&limit=2").await;
    assert_eq!(page.len(), 2);
    let (_, v) =
        srv.get(OPERATOR, &format!("/api/v1/parking/records?plate=川S12345&limit=2&before={}", page[1]["seq"])).await;
    assert_eq!((v["records"].as_array().unwrap().len(), v["next_before"].is_null()), (1, true), "{v}");
    assert_eq!(records(&srv, OPERATOR, "fence=np-fire-lane").await.len(), 1);

    // A restart remembers the alerts raised: the same car in the same window, none.
    srv.stop_keeping_data().await;
    let srv = Server::start(config).await;
    let after = push(&srv, GATE, push_xml("illegalParking", "川S12345", at(day, 8, 5), "")).await;
    assert!(after["alert_seq"].is_null(), "not again after a restart: {after}");
    srv.stop().await;
}

async fn statistics_count_by_place_and_hour_and_each_role_reads_what_it_may(backend: Backend) {
    let Some((srv, _)) = start("stats", backend).await else { return };
    let day = school_day();
    push(&srv, GATE, push_xml("illegalParking", "川S12345", at(day, 7, 30), "")).await;
    push(&srv, GATE, push_xml("illegalParking", "川S12345", at(day, 7, 45), "")).await;
    push(&srv, GATE, push_xml("illegalParking", "川S23456", at(day, 12, 40), "")).await;
    push(&srv, STREET, push_xml("ANPR", "川S34567", at(day, 7, 10), "")).await;
    let flag = "<illegalInfo><illegalCode>1039</illegalCode></illegalInfo>\n";
    push(&srv, FIRE, push_xml("ANPR", "川S45678", at(day, 7, 20), flag)).await;

    let range =
        format!("from={}&to={}", rfc3339_ms(day).replace('+', "%2B"), rfc3339_ms(day + DAY_MS).replace('+', "%2B"));
    let (s, v) = srv.get(OPERATOR, &format!("/api/v1/parking/statistics?{range}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["records"].as_i64(), v["violations"].as_i64()), (Some(5), Some(3)), "{v}");
    let hours = v["by_hour"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    assert_eq!((hours[7]["records"].as_i64(), hours[7]["violations"].as_i64()), (Some(4), Some(3)), "{v}");
    assert_eq!(hours[12]["records"], 1, "{v}");
    let fence = |id: Value| v["by_fence"].as_array().unwrap().iter().find(|f| f["fence_id"] == id).cloned().unwrap();
    let gate = fence(json!("np-school-gate"));
    assert_eq!(
        (gate["records"].as_i64(), gate["violations"].as_i64(), gate["kind"].as_str()),
        (Some(3), Some(2), Some("school_gate")),
        "{v}"
    );
    assert_eq!(fence(Value::Null)["records"], 1, "outside every fence: {v}");
    let cams: Vec<(&str, i64)> = v["by_camera"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["camera_id"].as_str().unwrap(), c["records"].as_i64().unwrap()))
        .collect();
    assert_eq!(cams, [(FIRE.0, 1), (GATE.0, 3), (STREET.0, 1)], "{v}");
    let (s, _) = srv.get(ADMIN, &format!("/api/v1/parking/statistics?{range}")).await;
    assert_eq!(s, 200);

    // A post officer counts and lists their jurisdiction's: the west post has the
    // school gate and the street, the east post the fire lane.
    let (_, west) = srv.get(WEST, &format!("/api/v1/parking/statistics?{range}")).await;
    assert_eq!(west["records"], 4, "{west}");
    let (_, east) = srv.get(EAST, &format!("/api/v1/parking/statistics?{range}")).await;
    assert_eq!((east["records"].as_i64(), east["violations"].as_i64()), (Some(1), Some(1)), "{east}");
    assert_eq!(records(&srv, WEST, "").await.len(), 4);
    let east_list = records(&srv, EAST, "").await;
    assert_eq!((east_list.len(), east_list[0]["plate"].as_str()), (1, Some("川S45678")));
    assert_eq!(records(&srv, EAST, "plate=川S12345").await.len(), 0, "another jurisdiction's plate reads as none");

    for who in [LEADER, GRID] {
        for path in ["/api/v1/parking/records", &format!("/api/v1/parking/statistics?{range}")] {
            let (s, v) = srv.get(who, path).await;
            assert_eq!((s, v["error"]["field"].as_str()), (403, Some("authorization")), "{who} {path}: {v}");
        }
    }
    let (s, _) = srv.get("no-such-token", "/api/v1/parking/records").await;
    assert_eq!(s, 401);

    // Bad input names the field.
    let long = format!("from={}&to={}", day - 400 * DAY_MS, day);
    for (query, field) in [
        ("", "from"),
        (&format!("from={day}")[..], "to"),
        (&format!("from={day}&to={day}")[..], "to"),
        (&long[..], "to"),
        ("from=yesterday&to=today", "from"),
        (&format!("{range}&camera=x")[..], "camera"),
    ] {
        let (s, v) = srv.get(OPERATOR, &format!("/api/v1/parking/statistics?{query}")).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some(field)), "{query}: {v}");
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("before=x", "before"),
        ("colour=red", "colour"),
        ("fence=%00", "fence"),
        ("plate=", "plate"),
    ] {
        let (s, v) = srv.get(OPERATOR, &format!("/api/v1/parking/records?{query}")).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some(field)), "{query}: {v}");
    }
    srv.stop().await;
}

on_both_stores!(a_capture_in_a_fence_at_its_hours_raises_one_alert_per_plate_and_window);
on_both_stores!(statistics_count_by_place_and_hour_and_each_role_reads_what_it_may);
