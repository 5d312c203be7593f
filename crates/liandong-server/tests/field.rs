//! The field app's endpoints against a server on `127.0.0.1:0`, on both stores where
//! the store answers: a phone's and a unit's tasks, steps a phone sends twice, feedback
//! photos, the road route from the last fix, a grid member's own reports; and who may
//! call each (every role, a device key, no token, an unknown token).

use liandong_server::auth::Role;
use liandong_server::config::TokenConfig;
use liandong_test_support::{token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const LEADER: &str = "leader-team-1";
const OFFICER: &str = "officer-p-west";
const GRID: &str = "grid-a-token";
const OTHER_GRID: &str = "grid-b-token";
const PARTNER: &str = "partner-token";
/// A patrol member's phone of team-1.
const PHONE: &str = "phone-key-0001";
/// A post officer's phone of p-west.
const POST_PHONE: &str = "phone-key-0002";
const UNKNOWN: &str = "no-such-token";
/// A JPEG as small as can be (start of image, JFIF header, end of image), base64.
const JPEG_BASE64: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==";
const JPEG: [u8; 22] = [255, 216, 255, 224, 0, 16, 74, 70, 73, 70, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 255, 217];

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
        unit_token(OFFICER, Role::PostOfficer, "p-west"),
        token(GRID, Role::GridMember),
        token(OTHER_GRID, Role::GridMember),
        token(PARTNER, Role::Partner),
    ]
}

/// A server on `backend` with the two phones registered; None when PostGIS is to be
/// skipped.
async fn start(name: &str, backend: Backend) -> Option<Server> {
    // The scenario runs on both stores at once: each run has a directory of its own.
    let dir = liandong_test_support::fresh_dir(&format!("field-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    backend.configure(&mut config, &format!("field_{name}").replace('-', "_")).await?;
    let srv = Server::start(config).await;
    for (id, kind, unit, key) in
        [("866001", "patrol_member", "team-1", PHONE), ("866002", "post_officer", "p-west", POST_PHONE)]
    {
        srv.admin("/api/v1/devices", json!({"device_id": id, "name": id, "kind": kind, "unit_id": unit, "key": key}))
            .await;
    }
    Some(srv)
}

/// `GET path` without any token.
async fn get_anonymous(srv: &Server, path: &str) -> u16 {
    srv.http.get(format!("{}{path}", srv.url)).send().await.unwrap().status().as_u16()
}

/// The status every caller gets for `GET path`: the user roles, both phones, an unknown
/// token and none.
async fn statuses(srv: &Server, path: &str) -> Vec<(&'static str, u16)> {
    let mut out = Vec::new();
    for who in [ADMIN, OPERATOR, LEADER, OFFICER, GRID, PARTNER, PHONE, POST_PHONE, UNKNOWN] {
        out.push((who, srv.get(who, path).await.0));
    }
    out.push(("no token", get_anonymous(srv, path).await));
    out
}

/// Opens an incident (operator) and dispatches it to `device` unless None; its id.
async fn incident(srv: &Server, title: &str, device: Option<&str>) -> i64 {
    let (s, v) = srv.post(OPERATOR, "/api/v1/incidents", json!({"title": title, "lon": 107.1, "lat": 30.7})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["incident"]["incident_id"].as_i64().unwrap();
    if let Some(d) = device {
        let (s, v) = step(srv, OPERATOR, id, json!({"action": "dispatch", "device_id": d})).await;
        assert_eq!(s, 200, "{v}");
    }
    id
}

async fn step(srv: &Server, who: &str, id: i64, body: Value) -> (u16, Value) {
    srv.post(who, &format!("/api/v1/incidents/{id}/actions"), body).await
}

fn task_ids(v: &Value) -> Vec<i64> {
    v["tasks"]
        .as_array()
        .unwrap_or_else(|| panic!("no tasks: {v}"))
        .iter()
        .map(|t| t["incident_id"].as_i64().unwrap())
        .collect()
}

use liandong_test_support::on_both_stores;

on_both_stores!(a_phone_sees_only_its_own_tasks_and_a_unit_token_its_units_newest_first);
on_both_stores!(steps_sent_twice_are_recorded_once_and_a_feedback_photo_is_served);
on_both_stores!(a_grid_member_lists_only_their_own_reports_with_what_became_of_each);

async fn a_phone_sees_only_its_own_tasks_and_a_unit_token_its_units_newest_first(backend: Backend) {
    let Some(srv) = start("tasks", backend).await else { return };
    let first = incident(&srv, "第一起", Some("866001")).await;
    let posts = incident(&srv, "警务室的", Some("866002")).await;
    let _undispatched = incident(&srv, "未派", None).await;
    let cancelled = incident(&srv, "已撤销", Some("866001")).await;
    let (s, _) = step(&srv, OPERATOR, cancelled, json!({"action": "cancel"})).await;
    assert_eq!(s, 200);
    let second = incident(&srv, "第二起", Some("866001")).await;

    let (s, v) = srv.get(PHONE, "/api/v1/tasks").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(task_ids(&v), [second, first], "its open tasks, newest first; not the cancelled one");
    let (_, one) = srv.get(OPERATOR, &format!("/api/v1/incidents/{first}")).await;
    assert_eq!(v["tasks"][1], one["incident"], "each task as GET /api/v1/incidents/{{id}} answers it");
    assert_eq!(task_ids(&srv.get(POST_PHONE, "/api/v1/tasks").await.1), [posts], "another phone: its own only");
    assert_eq!(task_ids(&srv.get(LEADER, "/api/v1/tasks").await.1), [second, first], "the leader: the team's");
    assert_eq!(task_ids(&srv.get(OFFICER, "/api/v1/tasks").await.1), [posts], "the officer: the post's");

    assert_eq!(
        statuses(&srv, "/api/v1/tasks").await,
        [
            (ADMIN, 403),
            (OPERATOR, 403),
            (LEADER, 200),
            (OFFICER, 200),
            (GRID, 403),
            (PARTNER, 403),
            (PHONE, 200),
            (POST_PHONE, 200),
            (UNKNOWN, 401),
            ("no token", 401),
        ]
    );
    srv.stop().await;
}

async fn steps_sent_twice_are_recorded_once_and_a_feedback_photo_is_served(backend: Backend) {
    let Some(srv) = start("steps", backend).await else { return };
    let id = incident(&srv, "商圈斗殴", Some("866001")).await;
    for action in ["sign", "depart", "arrive", "feedback"] {
        let mut body = json!({"action": action, "note": format!("{action} 完成")});
        if action == "feedback" {
            body["photos_base64"] = json!([JPEG_BASE64]);
        }
        let (s, first) = step(&srv, PHONE, id, body.clone()).await;
        assert_eq!((s, &first["repeat"]), (200, &json!(false)), "{action}: {first}");
        // The phone lost the answer and sends the step again.
        let (s, again) = step(&srv, PHONE, id, body).await;
        assert_eq!((s, &again["repeat"]), (200, &json!(true)), "{action} again: {again}");
        assert_eq!(again["incident"], first["incident"], "answered with the incident as it is");
    }
    // A step the incident is past is still out of order, and an operator's repeat is not
    // a lost answer: both are refused as before.
    let (s, v) = step(&srv, PHONE, id, json!({"action": "sign"})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (422, Some("action")), "{v}");
    let (s, v) = step(&srv, OPERATOR, id, json!({"action": "feedback"})).await;
    assert_eq!(s, 422, "{v}");

    let (_, v) = srv.get(OPERATOR, &format!("/api/v1/incidents/{id}")).await;
    let timeline = v["timeline"].as_array().unwrap();
    let actions: Vec<&str> = timeline.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "dispatch", "sign", "depart", "arrive", "feedback"], "each step once: {v}");
    let feedback = &timeline[5];
    assert_eq!(feedback["note"], "feedback 完成");
    let urls = feedback["photo_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 1, "the photo sent once is named once: {feedback}");
    assert_eq!(timeline[2]["photo_urls"], json!([]), "a sign-for has no photos");
    let photo = srv.http.get(format!("{}{}", srv.url, urls[0].as_str().unwrap())).bearer_auth(OPERATOR).send().await;
    let photo = photo.unwrap();
    assert_eq!(photo.status().as_u16(), 200);
    assert_eq!(photo.headers()["content-type"], "image/jpeg");
    assert_eq!(photo.bytes().await.unwrap().as_ref(), JPEG, "the photo as the phone sent it");
    srv.stop().await;
}

/// A feedback's photos are checked like a grid report's, each refused by its index, and
/// only a feedback carries them.
#[tokio::test]
async fn feedback_photos_are_at_most_three_jpegs_and_only_on_a_feedback() {
    let srv = start("photos", Backend::Sqlite).await.unwrap();
    let id = incident(&srv, "照片", Some("866001")).await;
    let refused = [
        (json!({"action": "sign", "photos_base64": [JPEG_BASE64]}), "photos_base64"),
        (json!({"action": "feedback", "photos_base64": vec![JPEG_BASE64; 4]}), "photos_base64"),
        (json!({"action": "feedback", "photos_base64": [JPEG_BASE64, "aGVsbG8="]}), "photos_base64[1]"),
        (json!({"action": "feedback", "photos_base64": ["%%%"]}), "photos_base64[0]"),
    ];
    for (body, field) in refused {
        let (s, v) = step(&srv, PHONE, id, body.clone()).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some(field)), "{body}: {v}");
    }
    for action in ["sign", "depart", "arrive"] {
        assert_eq!(step(&srv, PHONE, id, json!({"action": action})).await.0, 200);
    }
    // Three phone photos of about 1.9 MiB each (a JPEG's first and last bytes around
    // zeros), 7.8 MB of base64 in one body, are taken.
    let large = format!("/9j/{}2Q==", "A".repeat(2_600_000));
    let (s, v) = step(&srv, PHONE, id, json!({"action": "feedback", "photos_base64": vec![large; 3]})).await;
    assert_eq!(s, 200, "three photos: {v}");
    let (_, v) = srv.get(OPERATOR, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(v["timeline"].as_array().unwrap().last().unwrap()["photo_urls"].as_array().map(Vec::len), Some(3));
    srv.stop().await;
}

/// Sends a fix for a phone at (lon, lat), now.
async fn fix(srv: &Server, key: &str, device: &str, lon: f64, lat: f64) {
    let (s, v) =
        srv.post(key, "/api/v1/positions", json!({"positions": [{"device_id": device, "lon": lon, "lat": lat}]})).await;
    assert_eq!((s, v["accepted"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
}

/// The mini map has a horizontal road at 30.6° from 107.05° to 107.35° and a vertical
/// one at 107.1° that shares no vertex with it: a place on the second cannot be reached
/// from the first.
#[tokio::test]
async fn a_route_leads_by_road_from_the_last_fix_and_names_what_is_wrong() {
    let srv = start("route", Backend::Sqlite).await.unwrap();
    let to = "/api/v1/route?to=107.3,30.601";
    let (s, v) = srv.get(PHONE, to).await;
    assert_eq!((s, v["error"]["field"].as_str()), (404, Some("from")), "no fix yet: {v}");

    fix(&srv, PHONE, "866001", 107.06, 30.601).await;
    let (s, v) = srv.get(PHONE, to).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["from"]["lon"].as_f64(), v["from"]["lat"].as_f64()), (Some(107.06), Some(30.601)));
    assert!(v["from"]["fix_time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    assert_eq!(v["to"], json!({"lon": 107.3, "lat": 30.601}));
    let line = v["geometry"]["coordinates"].as_array().unwrap();
    assert_eq!(v["geometry"]["type"], "LineString");
    assert_eq!((line.first().unwrap(), line.last().unwrap()), (&json!([107.06, 30.601]), &json!([107.3, 30.601])));
    assert!(line[1..line.len() - 1].iter().all(|c| c[1] == json!(30.6)), "along the road: {line:?}");
    // 0.24° of longitude at 30.6° north is about 22.97 km; plus 111 m to the road and back.
    let distance_m = v["distance_m"].as_f64().unwrap();
    assert!((22_900.0..23_300.0).contains(&distance_m), "{distance_m}");
    // A patrol member walks (the team's graph at planning.patrol_kph, 5 km/h).
    let travel_s = v["travel_s"].as_f64().unwrap();
    assert!((15_000.0..18_500.0).contains(&travel_s), "on foot: {travel_s}");

    // The leader's token routes from the team's most recent fix.
    let (s, leader) = srv.get(LEADER, to).await;
    assert_eq!((s, &leader["distance_m"]), (200, &v["distance_m"]), "{leader}");
    // A post with no fix yet: nothing to route from.
    let (s, officer) = srv.get(OFFICER, to).await;
    assert_eq!((s, officer["error"]["field"].as_str()), (404, Some("from")), "{officer}");
    // A post officer's phone is routed at road speeds, faster than on foot.
    fix(&srv, POST_PHONE, "866002", 107.06, 30.601).await;
    let (s, post) = srv.get(POST_PHONE, to).await;
    assert!(s == 200 && post["travel_s"].as_f64().unwrap() < travel_s / 3.0, "{post}");

    for (query, status) in [
        ("", 400),
        ("?to=107.3", 400),
        ("?to=abc,30.6", 400),
        ("?to=107.3,30.6,1", 400),
        ("?to=107.3,95", 400),
        ("?to=108.5,30.6", 400),
        ("?to=107.1,30.75", 422),
    ] {
        let (s, v) = srv.get(PHONE, &format!("/api/v1/route{query}")).await;
        assert_eq!((s, v["error"]["field"].as_str()), (status, Some("to")), "{query}: {v}");
    }

    assert_eq!(
        statuses(&srv, to).await,
        [
            (ADMIN, 403),
            (OPERATOR, 403),
            (LEADER, 200),
            (OFFICER, 200),
            (GRID, 403),
            (PARTNER, 403),
            (PHONE, 200),
            (POST_PHONE, 200),
            (UNKNOWN, 401),
            ("no token", 401),
        ]
    );
    srv.stop().await;
}

async fn report(srv: &Server, who: &str, category: &str, text: &str) -> i64 {
    let body = json!({"category": category, "text": text, "lon": 107.1, "lat": 30.7, "photos_base64": [JPEG_BASE64]});
    let (s, v) = srv.post(who, "/api/v1/reports", body).await;
    assert_eq!(s, 201, "{v}");
    v["report_id"].as_i64().unwrap()
}

async fn review(srv: &Server, id: i64, body: Value) -> Value {
    let (s, v) = srv.post(OPERATOR, &format!("/api/v1/reports/{id}/review"), body).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn a_grid_member_lists_only_their_own_reports_with_what_became_of_each(backend: Backend) {
    let Some(srv) = start("mine", backend).await else { return };
    let hazard = report(&srv, GRID, "hazard", "井盖缺失").await;
    let dispute = report(&srv, GRID, "dispute", "邻里纠纷").await;
    let rejected = report(&srv, GRID, "other", "重复上报").await;
    let theirs = report(&srv, OTHER_GRID, "fire", "别人的").await;
    let merged = report(&srv, GRID, "suspicious", "可疑人员").await;
    let pending = report(&srv, GRID, "traffic", "路口拥堵").await;

    let accepted = review(&srv, hazard, json!({"decision": "accept"})).await;
    let incident_id = accepted["incident_id"].as_i64().unwrap();
    review(&srv, rejected, json!({"decision": "reject", "reason": "不属实"})).await;
    review(&srv, merged, json!({"decision": "merge", "incident_id": incident_id})).await;
    let (s, v) = step(&srv, OPERATOR, incident_id, json!({"action": "dispatch", "device_id": "866001"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv
        .post(
            OPERATOR,
            &format!("/api/v1/mediation/{dispute}"),
            json!({"mediation_type": "people", "outcome": "和解", "success": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let (s, v) = srv.get(GRID, "/api/v1/reports/mine").await;
    assert_eq!(s, 200, "{v}");
    let reports = v["reports"].as_array().unwrap();
    let summary: Vec<(i64, &str)> =
        reports.iter().map(|r| (r["report_id"].as_i64().unwrap(), r["state"].as_str().unwrap())).collect();
    assert_eq!(
        summary,
        [
            (pending, "pending"),
            (merged, "merged"),
            (rejected, "rejected"),
            (dispute, "mediation"),
            (hazard, "accepted")
        ],
        "only their own, newest first: {v}"
    );
    let by_id = |id: i64| reports.iter().find(|r| r["report_id"] == id).unwrap();
    assert_eq!(
        (&by_id(hazard)["incident_id"], &by_id(hazard)["incident_state"]),
        (&json!(incident_id), &json!("dispatched")),
        "the incident as it is now"
    );
    assert_eq!(
        (&by_id(merged)["incident_id"], &by_id(merged)["incident_state"]),
        (&json!(incident_id), &json!("dispatched"))
    );
    assert_eq!(by_id(rejected)["reason"], "不属实");
    assert_eq!(
        by_id(dispute)["mediation"],
        json!({"case_id": dispute, "state": "mediated", "outcome": "和解", "success": true})
    );
    let p = by_id(pending);
    assert_eq!(
        (&p["category"], &p["text"], &p["lon"], &p["lat"]),
        (&json!("traffic"), &json!("路口拥堵"), &json!(107.1), &json!(30.7))
    );
    assert!(p["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{p}");
    assert!(p["photo_urls"][0].as_str().is_some_and(|u| u.starts_with("/api/v1/images/")), "{p}");
    for absent in ["reason", "incident_id", "incident_state", "mediation"] {
        assert!(p.get(absent).is_none(), "a pending report has no {absent}: {p}");
    }

    let (_, page) = srv.get(GRID, &format!("/api/v1/reports/mine?before={rejected}")).await;
    let ids: Vec<i64> = page["reports"].as_array().unwrap().iter().map(|r| r["report_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [dispute, hazard], "a page back from a report");
    let (_, other) = srv.get(OTHER_GRID, "/api/v1/reports/mine").await;
    assert_eq!(other["reports"].as_array().unwrap().len(), 1, "{other}");
    assert_eq!(other["reports"][0]["report_id"], theirs);
    for before in ["abc", "0", "-5"] {
        let (s, v) = srv.get(GRID, &format!("/api/v1/reports/mine?before={before}")).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some("before")), "{before}: {v}");
    }

    assert_eq!(
        statuses(&srv, "/api/v1/reports/mine").await,
        [
            (ADMIN, 200),
            (OPERATOR, 200),
            (LEADER, 403),
            (OFFICER, 200),
            (GRID, 200),
            (PARTNER, 403),
            (PHONE, 403),
            (POST_PHONE, 403),
            (UNKNOWN, 401),
            ("no token", 401),
        ]
    );
    let (_, v) = srv.get(OPERATOR, "/api/v1/reports/mine").await;
    assert_eq!(v["reports"], json!([]), "an operator filed none: nobody else's are shown");
    srv.stop().await;
}
