//! Home visits (上门办理) against a server on `127.0.0.1:0`, on both stores: a visit is
//! created for a grid member; arriving is refused (409 naming `position`) while their
//! phone, a device bound to them reporting through the real OsmAnd endpoint, is far
//! from the place, and allowed once it is near; the visit is completed with a note and
//! a photo, which those who see the visit may read; the statistics count it; who may do
//! what, role by role; bad input.

use std::time::Duration;

use liandong_server::auth::Role;
use liandong_server::config::TokenConfig;
use liandong_test_support::{now_s, on_both_stores, person_token, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const PARTNER: &str = "partner-token";
/// The grid member the visits are assigned to, and another one.
const GRID: &str = "grid-a-token";
const GRID_B: &str = "grid-b-token";
const WEST: &str = "west-officer-token";
const EAST: &str = "east-officer-token";
const LEADER: &str = "leader-team-1";
/// The key of grid member a's phone.
const PHONE_KEY: &str = "grid-a-phone-key";
const PHONE: &str = "866200";
/// A phone bound to nobody.
const UNBOUND_KEY: &str = "unbound-phone-key";
/// A JPEG as small as can be, base64.
const JPEG_BASE64: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==";
/// The visit's place, in the west post's jurisdiction.
const PLACE: (f64, f64) = (107.15, 30.75);

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        person_token(PARTNER, Role::Partner, None, "mediator_1"),
        person_token(GRID, Role::GridMember, Some("g-west"), "grid_a"),
        person_token(GRID_B, Role::GridMember, Some("g-west"), "grid_b"),
        person_token(WEST, Role::PostOfficer, Some("p-west"), "west_officer"),
        person_token(EAST, Role::PostOfficer, Some("p-east"), "east_officer"),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
    ]
}

/// A server with the persons of the tokens above and grid member a's phone bound to her;
/// None when PostGIS is to be skipped.
async fn start(name: &str, backend: Backend) -> Option<Server> {
    let dir = liandong_test_support::fresh_dir(&format!("home-visits-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    backend.configure(&mut config, &format!("home_visits_{name}")).await?;
    let srv = Server::start(config).await;
    for (id, name, role, kind, unit) in [
        ("grid_a", "孙网格", "grid_member", "grid", Some("g-west")),
        ("grid_b", "周网格", "grid_member", "grid", Some("g-west")),
        ("west_officer", "王警官", "post_officer", "post", Some("p-west")),
        ("east_officer", "钱警官", "post_officer", "post", Some("p-east")),
        ("cc_op", "吴值班", "operator", "command_centre", None),
    ] {
        srv.admin(
            "/api/v1/people",
            json!({"person_id": id, "name": name, "roles": [role], "unit_kind": kind, "unit_id": unit}),
        )
        .await;
    }
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": PHONE, "name": "网格员手机", "kind": "other", "key": PHONE_KEY, "person_id": "grid_a"}),
    )
    .await;
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "866201", "name": "公用手机", "kind": "other", "key": UNBOUND_KEY}),
    )
    .await;
    Some(srv)
}

fn new_visit() -> Value {
    json!({"person": {"name": "李大爷", "phone": "13900000000"}, "lon": PLACE.0, "lat": PLACE.1,
           "address": "西村 3 组 12 号", "reason": "行动不便，上门办理法律援助申请", "assignee_id": "grid_a"})
}

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

/// The phone reports a fix at `lon`, `lat` taken `ago_s` seconds ago, through the
/// OsmAnd endpoint.
async fn fix(srv: &Server, lon: f64, lat: f64, ago_s: u64) {
    let at_s = now_s() - ago_s;
    let url = format!("{}/?id={PHONE}&key={PHONE_KEY}&lat={lat}&lon={lon}&timestamp={at_s}&accuracy=8", srv.url);
    let r = srv.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Arrives at visit `id` as `token` until the answer satisfies `done` (the live view is
/// updated just after the fix is acknowledged); answers the last answer.
async fn arrive_until(srv: &Server, token: &str, id: i64, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let mut last = (0, Value::Null);
    for _ in 0..50 {
        last = srv.post(token, &format!("/api/v1/home-visits/{id}/arrive"), json!({})).await;
        if done(last.0, &last.1) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

async fn listed(srv: &Server, token: &str, query: &str) -> Vec<i64> {
    let (status, v) = srv.get(token, &format!("/api/v1/home-visits{query}")).await;
    assert_eq!(status, 200, "{token}: {v}");
    v["visits"].as_array().unwrap().iter().map(|r| r["visit_id"].as_i64().unwrap()).collect()
}

on_both_stores!(a_visit_is_arrived_only_near_the_place_then_completed_with_a_photo_and_counted);
on_both_stores!(every_caller_is_allowed_or_refused_as_the_home_visit_rules_say);

async fn a_visit_is_arrived_only_near_the_place_then_completed_with_a_photo_and_counted(backend: Backend) {
    let Some(srv) = start("arrive", backend).await else { return };
    let (status, v) = srv.post(PARTNER, "/api/v1/home-visits", new_visit()).await;
    assert_eq!(status, 201, "{v}");
    let visit = &v["visit"];
    let id = visit["visit_id"].as_i64().unwrap();
    assert_eq!(
        (visit["status"].as_str(), visit["post_id"].as_str(), visit["assignee_name"].as_str()),
        (Some("assigned"), Some("p-west"), Some("孙网格"))
    );
    assert_eq!(visit["person"], json!({"name": "李大爷", "phone": "13900000000"}));
    assert_eq!(listed(&srv, GRID, "?mine=true").await, [id], "the assignee's list");

    // No position known yet, then the phone a minute ago some 480 m away (walking
    // there, not a jump the filter would distrust).
    let (status, v) = srv.post(GRID, &format!("/api/v1/home-visits/{id}/arrive"), json!({})).await;
    assert_eq!((status, field(&v)), (409, "position"), "{v}");
    fix(&srv, PLACE.0 + 0.005, PLACE.1, 60).await;
    let far = |s: u16, v: &Value| s == 409 && v["error"]["reason"].as_str().unwrap_or("").contains("m from the place");
    let (status, v) = arrive_until(&srv, GRID, id, far).await;
    assert_eq!((status, field(&v)), (409, "position"), "{v}");

    // Near the place (some 60 m off): the arrival counts, with its distance.
    fix(&srv, PLACE.0 + 0.0005, PLACE.1 + 0.0003, 0).await;
    let (status, v) = arrive_until(&srv, GRID, id, |s, _| s == 200).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["visit"]["status"], "arrived");
    let d = v["visit"]["arrived_distance_m"].as_f64().unwrap();
    assert!((30.0..=100.0).contains(&d), "{d} m");
    let (status, v) = srv.post(GRID, &format!("/api/v1/home-visits/{id}/arrive"), json!({})).await;
    assert_eq!((status, field(&v)), (409, "status"), "arrived once");

    // Completed by the assignee only, with a note and a photo.
    let done = json!({"note": "已协助填写法律援助申请表", "photos_base64": [JPEG_BASE64]});
    let (status, _) = srv.post(WEST, &format!("/api/v1/home-visits/{id}/complete"), done.clone()).await;
    assert_eq!(status, 403, "the post sees it but does not complete it");
    let (status, v) = srv.post(GRID, &format!("/api/v1/home-visits/{id}/complete"), done.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["visit"]["status"].as_str(), v["visit"]["note"].as_str()),
        (Some("done"), Some("已协助填写法律援助申请表"))
    );
    assert_eq!(v["visit"]["overdue"], false);
    let photos = v["visit"]["photos"].as_array().unwrap().clone();
    assert_eq!(photos.len(), 1);
    let (status, v) = srv.post(GRID, &format!("/api/v1/home-visits/{id}/complete"), done).await;
    assert_eq!((status, field(&v)), (409, "status"), "done once");

    // The photo follows the visit: read by those who see the visit, by nobody else.
    let url = photos[0].as_str().unwrap();
    for (who, expected) in [(GRID, 200), (WEST, 200), (PARTNER, 200), (OPERATOR, 200), (EAST, 404), (GRID_B, 404)] {
        let r = srv.http.get(format!("{}{url}", srv.url)).bearer_auth(who).send().await.unwrap();
        assert_eq!(r.status().as_u16(), expected, "{who} reads the visit's photo");
    }

    let (status, v) = srv.get(OPERATOR, "/api/v1/home-visits/statistics").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["visits"], 1);
    assert_eq!(v["by_status"], json!({"assigned": 0, "arrived": 0, "done": 1, "cancelled": 0}));
    assert_eq!((v["on_time"].as_i64(), v["late"].as_i64()), (Some(1), Some(0)));
    assert_eq!(v["complete_s"]["count"], 1);
    assert_eq!(v["by_post"], json!([{"key": "p-west", "count": 1, "done": 1, "on_time": 1, "late": 0}]));
    let (_, v) = srv.get(EAST, "/api/v1/home-visits/statistics").await;
    assert_eq!(v["visits"], 0, "another post's visits are not counted for it");
    srv.stop().await;
}

async fn every_caller_is_allowed_or_refused_as_the_home_visit_rules_say(backend: Backend) {
    let Some(srv) = start("scope", backend).await else { return };
    let (status, v) = srv.post(WEST, "/api/v1/home-visits", new_visit()).await;
    assert_eq!(status, 201, "{v}");
    let id = v["visit"]["visit_id"].as_i64().unwrap();

    for (who, status) in [(GRID, 403), (LEADER, 403), ("no-such-token", 401)] {
        assert_eq!(srv.post(who, "/api/v1/home-visits", new_visit()).await.0, status, "{who} creates");
    }
    for who in [OPERATOR, ADMIN, PARTNER] {
        assert_eq!(srv.post(who, "/api/v1/home-visits", new_visit()).await.0, 201, "{who} creates");
    }
    // Lists: the whole county's roles every visit; a post its jurisdiction's; a grid
    // member their own; a leader acting for no person nothing.
    assert_eq!(listed(&srv, OPERATOR, "").await.len(), 4);
    assert_eq!(listed(&srv, PARTNER, "?limit=2").await.len(), 2);
    assert_eq!(listed(&srv, WEST, "").await.len(), 4);
    assert!(listed(&srv, EAST, "").await.is_empty());
    assert_eq!(listed(&srv, GRID, "").await.len(), 4, "assigned to her");
    assert!(listed(&srv, GRID_B, "").await.is_empty());
    assert!(listed(&srv, WEST, "?mine=true").await.is_empty(), "none assigned to the officer");
    assert_eq!(listed(&srv, GRID, "?status=done").await.len(), 0);
    assert_eq!(srv.get(LEADER, "/api/v1/home-visits").await.0, 403);
    // A phone bound to the grid member acts for her; a phone bound to nobody for no one.
    assert_eq!(listed(&srv, PHONE_KEY, "?mine=true").await.len(), 4, "her phone lists her visits");
    assert_eq!(srv.get(PHONE_KEY, &format!("/api/v1/home-visits/{id}")).await.0, 200);
    assert_eq!(srv.get(UNBOUND_KEY, "/api/v1/home-visits?mine=true").await.0, 403);
    assert_eq!(srv.post(PHONE_KEY, "/api/v1/home-visits", new_visit()).await.0, 401, "a phone creates none");
    // One visit: who may not see it finds none.
    for (who, status) in [(GRID, 200), (WEST, 200), (PARTNER, 200), (EAST, 404), (GRID_B, 404)] {
        assert_eq!(srv.get(who, &format!("/api/v1/home-visits/{id}")).await.0, status, "{who} reads");
    }
    // Steps only the assignee takes: 404 for who may not see it, 403 for who may.
    for (who, status) in [(EAST, 404), (GRID_B, 404), (WEST, 403), (ADMIN, 403)] {
        assert_eq!(srv.post(who, &format!("/api/v1/home-visits/{id}/arrive"), json!({})).await.0, status, "{who}");
    }
    let (status, v) = srv.post(GRID, &format!("/api/v1/home-visits/{id}/complete"), json!({"note": "提前完成"})).await;
    assert_eq!((status, field(&v)), (409, "status"), "not arrived yet");

    // Bad input, each naming its field.
    let with = |k: &str, val: Value| {
        let mut b = new_visit();
        b[k] = val;
        b
    };
    let cases = [
        (with("person", json!({"name": "李大爷"})), 400, "person.phone"),
        (with("person", json!({"name": "", "phone": "139"})), 400, "person.name"),
        (with("lat", json!(91.0)), 400, "lat"),
        (with("datum", json!("utm")), 400, "datum"),
        (with("reason", json!("  ")), 400, "reason"),
        (with("due", json!("2020-01-01T00:00:00Z")), 400, "due"),
        (with("due", json!("soon")), 400, "due"),
        (with("assignee_id", json!("cc_op")), 422, "assignee_id"),
        (with("assignee_id", json!("nobody")), 422, "assignee_id"),
    ];
    for (body, status, expected) in cases {
        let (got, v) = srv.post(ADMIN, "/api/v1/home-visits", body.clone()).await;
        assert_eq!((got, field(&v)), (status, expected), "{body}: {v}");
    }
    for (query, expected) in [("?status=lost", "status"), ("?mine=yes", "mine"), ("?limit=0", "limit"), ("?x=1", "x")] {
        let (status, v) = srv.get(ADMIN, &format!("/api/v1/home-visits{query}")).await;
        assert_eq!((status, field(&v)), (400, expected), "{query}");
    }
    srv.stop().await;
}
