//! The duty roster's API against a server on `127.0.0.1:0`, on both stores: who may read
//! it (everyone's for operators and administrators, their post's for a post's people)
//! and who may set and cancel shifts (administrators); each validation refused naming
//! its field; all or nothing; one leader per unit at a time; cancelled shifts kept and
//! every change audited.

use liandong_server::auth::Role;
use liandong_server::config::TokenConfig;
use liandong_test_support::{now_ms, on_both_stores, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
/// A patrol leader of team-1, whose base post is p-west.
const LEADER: &str = "leader-team-1";
/// A post officer of p-west.
const OFFICER: &str = "officer-p-west";
/// A post officer of a unit that is no post of the map.
const ASTRAY: &str = "officer-nowhere";
const GRID: &str = "grid-a-token";
const PARTNER: &str = "partner-token";
/// A registered phone's key.
const PHONE: &str = "phone-key-0001";
const UNKNOWN: &str = "no-such-token";

const HOUR: i64 = 3_600_000;

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
        unit_token(OFFICER, Role::PostOfficer, "p-west"),
        unit_token(ASTRAY, Role::PostOfficer, "p-nowhere"),
        token(GRID, Role::GridMember),
        token(PARTNER, Role::Partner),
    ]
}

/// A server on `backend` with people of both posts and the command centre, and a phone;
/// None when PostGIS is to be skipped.
async fn start(name: &str, backend: Backend) -> Option<Server> {
    let dir = liandong_test_support::fresh_dir(&format!("duty-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    backend.configure(&mut config, &format!("duty_{name}")).await?;
    let srv = Server::start(config).await;
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "866001", "name": "phone", "kind": "patrol_member", "unit_id": "team-1", "key": PHONE}),
    )
    .await;
    for (id, name, roles, kind, unit, active) in [
        ("lead-w", "西所长", json!(["post_officer"]), "post", Some("p-west"), true),
        ("off-w", "西民警", json!(["post_officer"]), "post", Some("p-west"), true),
        ("lead-e", "东所长", json!(["post_officer"]), "post", Some("p-east"), true),
        ("cc-1", "值班员", json!(["operator"]), "command_centre", None, true),
        ("gone", "已离职", json!(["post_officer"]), "post", Some("p-west"), false),
    ] {
        srv.admin(
            "/api/v1/people",
            json!({"person_id": id, "name": name, "roles": roles, "unit_kind": kind, "unit_id": unit, "active": active}),
        )
        .await;
    }
    Some(srv)
}

fn shift(unit: Option<&str>, person: &str, duty: &str, starts_ms: i64, ends_ms: i64) -> Value {
    let kind = if unit.is_some() { "post" } else { "command_centre" };
    let mut s =
        json!({"unit_kind": kind, "person_id": person, "duty": duty, "starts_ms": starts_ms, "ends_ms": ends_ms});
    if let Some(u) = unit {
        s["unit_id"] = json!(u);
    }
    s
}

/// `DELETE path` with `token` (none when None): the status and body.
async fn delete(srv: &Server, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut req = srv.http.delete(format!("{}{path}", srv.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The field an error answer names.
fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

/// The (unit, person) of each shift of a roster answer, in its order.
fn rows(v: &Value) -> Rows {
    v["shifts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let unit = s["unit_id"].as_str().unwrap_or("centre").to_owned();
                    (unit, s["person_id"].as_str().unwrap_or("").to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A roster answer's rows, as [`rows`] gives them.
type Rows = Vec<(String, String)>;

fn pairs(list: &[(&str, &str)]) -> Rows {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

async fn every_caller_reads_and_sets_the_roster_as_its_role_allows(backend: Backend) {
    let Some(srv) = start("roles", backend).await else { return };
    let now = now_ms();
    let roster = json!({"shifts": [
        shift(Some("p-west"), "lead-w", "leader", now - HOUR, now + 5 * HOUR),
        shift(Some("p-west"), "off-w", "on_duty", now - HOUR / 2, now + 5 * HOUR),
        shift(Some("p-east"), "lead-e", "leader", now - HOUR, now + 5 * HOUR),
        shift(None, "cc-1", "on_duty", now - HOUR, now + 5 * HOUR),
    ]});
    let window = format!("/api/v1/duty?from={}&to={}", now - 2 * HOUR, now + 6 * HOUR);
    let all = pairs(&[("centre", "cc-1"), ("p-east", "lead-e"), ("p-west", "lead-w"), ("p-west", "off-w")]);
    let west = pairs(&[("p-west", "lead-w"), ("p-west", "off-w")]);
    let mut first_id = None;
    // (caller, set, read, what it reads)
    let expected: [(&str, u16, u16, Rows); 9] = [
        (ADMIN, 201, 200, all.clone()),
        (OPERATOR, 403, 200, all.clone()),
        (LEADER, 403, 200, west.clone()),
        (OFFICER, 403, 200, west.clone()),
        (ASTRAY, 403, 403, vec![]),
        (GRID, 403, 403, vec![]),
        (PARTNER, 403, 403, vec![]),
        (PHONE, 401, 401, vec![]),
        (UNKNOWN, 401, 401, vec![]),
    ];
    for (who, set, read, sees) in expected {
        let (s, v) = srv.post(who, "/api/v1/duty", roster.clone()).await;
        assert_eq!(s, set, "{who} sets: {v}");
        if s == 201 {
            assert_eq!(v["shift_ids"].as_array().map(Vec::len), Some(4), "{v}");
            first_id = v["shift_ids"][0].as_str().map(str::to_owned);
        }
        let (s, v) = srv.get(who, &window).await;
        assert_eq!(s, read, "{who} reads: {v}");
        assert_eq!(rows(&v), sees, "{who}: sorted by unit then start; only the administrator's shifts stored");
    }
    // Names come with the shifts, and today's roster is the default window.
    let (s, v) = srv.get(OPERATOR, "/api/v1/duty").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["to_ms"].as_i64().unwrap() - v["from_ms"].as_i64().unwrap(), 24 * HOUR, "one China day");
    assert_eq!((v["from_ms"].as_i64().unwrap() + 8 * HOUR) % (24 * HOUR), 0, "from 00:00 China time");
    let lead = v["shifts"].as_array().unwrap().iter().find(|s| s["person_id"] == "lead-w").cloned().unwrap();
    assert_eq!((lead["person_name"].as_str(), lead["duty"].as_str()), (Some("西所长"), Some("leader")));
    assert!(srv.http.get(format!("{}/api/v1/duty", srv.url)).send().await.unwrap().status() == 401, "no token");

    // Only an administrator cancels.
    let path = format!("/api/v1/duty/{}", first_id.unwrap());
    for (who, status) in
        [(OPERATOR, 403), (LEADER, 403), (OFFICER, 403), (GRID, 403), (PARTNER, 403), (PHONE, 401), (UNKNOWN, 401)]
    {
        assert_eq!(delete(&srv, Some(who), &path).await.0, status, "{who} cancels");
    }
    assert_eq!(delete(&srv, None, &path).await.0, 401, "no token");
    let (s, v) = delete(&srv, Some(ADMIN), &path).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["shift"]["cancelled_ms"].is_i64(), "kept, stamped: {v}");
    srv.stop().await;
}

async fn each_bad_shift_is_refused_naming_its_field_and_nothing_is_stored(backend: Backend) {
    let Some(srv) = start("fields", backend).await else { return };
    let now = now_ms();
    let good = shift(Some("p-west"), "off-w", "on_duty", now, now + 8 * HOUR);
    let cases: Vec<(Value, u16, &str)> = vec![
        (shift(Some("p-west"), "nobody", "on_duty", now, now + HOUR), 422, "shifts[1].person_id"),
        (shift(Some("p-west"), "gone", "on_duty", now, now + HOUR), 422, "shifts[1].person_id"),
        (shift(Some("p-east"), "off-w", "on_duty", now, now + HOUR), 422, "shifts[1].person_id"),
        (shift(None, "off-w", "on_duty", now, now + HOUR), 422, "shifts[1].person_id"),
        (shift(Some("p-west"), "cc-1", "on_duty", now, now + HOUR), 422, "shifts[1].person_id"),
        (shift(Some("p-north"), "off-w", "on_duty", now, now + HOUR), 422, "shifts[1].unit_id"),
        (
            json!({"unit_kind": "post", "person_id": "off-w", "duty": "on_duty", "starts_ms": now, "ends_ms": now + 1}),
            400,
            "shifts[1].unit_id",
        ),
        (
            json!({"unit_kind": "command_centre", "unit_id": "p-west", "person_id": "cc-1", "duty": "on_duty", "starts_ms": now, "ends_ms": now + 1}),
            400,
            "shifts[1].unit_id",
        ),
        (
            json!({"unit_kind": "team", "unit_id": "team-1", "person_id": "off-w", "duty": "on_duty", "starts_ms": now, "ends_ms": now + 1}),
            400,
            "shifts[1].unit_kind",
        ),
        (shift(Some("p-west"), "off-w", "boss", now, now + HOUR), 400, "shifts[1].duty"),
        (shift(Some("p-west"), "off-w", "on_duty", now, now), 400, "shifts[1].ends_ms"),
        (shift(Some("p-west"), "off-w", "on_duty", now, now + 24 * HOUR + 1), 400, "shifts[1].ends_ms"),
        (
            shift(Some("p-west"), "off-w", "on_duty", now + 63 * 24 * HOUR, now + 63 * 24 * HOUR + HOUR),
            422,
            "shifts[1].starts_ms",
        ),
    ];
    for (bad, status, name) in cases {
        let (s, v) = srv.post(ADMIN, "/api/v1/duty", json!({"shifts": [good.clone(), bad.clone()]})).await;
        assert_eq!((s, field(&v)), (status, name), "{bad}: {v}");
    }
    let (s, v) = srv.post(ADMIN, "/api/v1/duty", json!({"shifts": []})).await;
    assert_eq!((s, field(&v)), (400, "shifts"), "{v}");
    let window = format!("/api/v1/duty?from={}&to={}", now - HOUR, now + 9 * HOUR);
    assert_eq!(rows(&srv.get(ADMIN, &window).await.1), vec![], "all or nothing: the good shift was not stored");
    // Bad windows are named too.
    for (query, name) in
        [("from=5", "to"), ("to=5", "from"), ("from=9&to=5", "to"), ("from=x&to=5", "from"), ("day=1", "day")]
    {
        let (s, v) = srv.get(OPERATOR, &format!("/api/v1/duty?{query}")).await;
        assert_eq!((s, field(&v)), (400, name), "{query}: {v}");
    }
    let (s, v) = srv.get(OPERATOR, &format!("/api/v1/duty?from=0&to={}", 64 * 24 * HOUR)).await;
    assert_eq!((s, field(&v)), (400, "to"), "a window too wide: {v}");
    srv.stop().await;
}

async fn a_unit_has_one_leader_at_a_time_and_cancelled_shifts_are_kept_and_audited(backend: Backend) {
    let Some(srv) = start("leaders", backend).await else { return };
    let now = now_ms();
    let (s, v) = srv
        .post(
            ADMIN,
            "/api/v1/duty",
            json!({"shifts": [shift(Some("p-west"), "lead-w", "leader", now, now + 12 * HOUR)]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let first = v["shift_ids"][0].as_str().unwrap().to_owned();
    // Another leader of p-west overlapping it: refused whole, naming the shift.
    let clash = json!({"shifts": [
        shift(Some("p-east"), "lead-e", "leader", now, now + 12 * HOUR),
        shift(Some("p-west"), "off-w", "leader", now + 11 * HOUR, now + 20 * HOUR),
    ]});
    let (s, v) = srv.post(ADMIN, "/api/v1/duty", clash.clone()).await;
    assert_eq!((s, field(&v)), (409, "shifts[1].starts_ms"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap_or("").contains(&first), "names the leader's shift: {v}");
    let window = format!("/api/v1/duty?from={now}&to={}", now + 24 * HOUR);
    assert_eq!(rows(&srv.get(ADMIN, &window).await.1), pairs(&[("p-west", "lead-w")]), "p-east's was not stored");
    // Two leaders of one unit in one request are the same conflict.
    let twice = json!({"shifts": [
        shift(None, "cc-1", "leader", now + 24 * HOUR, now + 30 * HOUR),
        shift(None, "cc-1", "leader", now + 29 * HOUR, now + 31 * HOUR),
    ]});
    assert_eq!(srv.post(ADMIN, "/api/v1/duty", twice).await.0, 409);
    // A leader and an officer of one post at once are fine.
    let officer = json!({"shifts": [shift(Some("p-west"), "off-w", "on_duty", now, now + 12 * HOUR)]});
    assert_eq!(srv.post(ADMIN, "/api/v1/duty", officer).await.0, 201);
    // Cancelled, the leader's shift frees the unit; it is kept and audited.
    assert_eq!(delete(&srv, Some(ADMIN), &format!("/api/v1/duty/{first}")).await.0, 200);
    let (s, v) = delete(&srv, Some(ADMIN), &format!("/api/v1/duty/{first}")).await;
    assert_eq!((s, field(&v)), (409, "shift_id"), "once: {v}");
    assert_eq!(delete(&srv, Some(ADMIN), "/api/v1/duty/shift-nope").await.0, 404);
    assert_eq!(srv.post(ADMIN, "/api/v1/duty", clash).await.0, 201, "the post's leader slot is free again");
    assert_eq!(
        rows(&srv.get(ADMIN, &window).await.1),
        pairs(&[("p-east", "lead-e"), ("p-west", "off-w"), ("p-west", "off-w")]),
        "the cancelled shift is off the roster"
    );
    let (_, v) = srv.get(ADMIN, &format!("/api/v1/audit?subject=duty_shift:{first}")).await;
    let log: Vec<(&str, &str)> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap_or(""), e["actor"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(log, [("duty_shift_cancelled", ADMIN), ("duty_shift_added", ADMIN)], "newest first: {v}");
    srv.stop().await;
}

/// Sends a fix for a phone at (lon, lat), now.
async fn fix(srv: &Server, key: &str, device: &str, lon: f64, lat: f64) {
    let (s, v) =
        srv.post(key, "/api/v1/positions", json!({"positions": [{"device_id": device, "lon": lon, "lat": lat}]})).await;
    assert_eq!((s, v["accepted"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
}

/// The device ids a recommendation names, in its order, with whether each is on duty.
fn recommended(v: &Value) -> Vec<(String, bool)> {
    let units = v["recommended"]["units"].as_array().cloned().unwrap_or_default();
    units.iter().map(|u| (u["device_id"].as_str().unwrap_or("").to_owned(), u["on_duty"] == json!(true))).collect()
}

/// On the mini map's road along 30.6°, an east post's phone is nearer an incident than
/// team-1's (based at p-west); with someone on duty at p-west only, team-1's is
/// recommended first, saying why.
async fn dispatch_recommends_units_on_duty_first_and_says_so(backend: Backend) {
    let Some(srv) = start("dispatch", backend).await else { return };
    for (id, kind, unit, key) in
        [("east-1", "post_officer", "p-east", "east-key-0001"), ("team-9", "patrol_member", "team-1", "team-key-0001")]
    {
        srv.admin("/api/v1/devices", json!({"device_id": id, "name": id, "kind": kind, "unit_id": unit, "key": key}))
            .await;
    }
    fix(&srv, "east-key-0001", "east-1", 107.22, 30.6).await;
    fix(&srv, "team-key-0001", "team-9", 107.12, 30.6).await;
    let incident = json!({"title": "纠纷", "priority": 2, "lon": 107.2, "lat": 30.6});
    let (s, v) = srv.post(OPERATOR, "/api/v1/incidents", incident.clone()).await;
    assert_eq!(s, 201, "{v}");
    let off = |id: &str| (id.to_owned(), false);
    assert_eq!(recommended(&v), [off("east-1"), off("team-9")], "nobody on duty: the nearest first: {v}");
    assert_eq!(v["recommended"]["units"][0]["on_duty_reason"], "post p-east has nobody on duty now");

    let now = now_ms();
    let roster = json!({"shifts": [shift(Some("p-west"), "off-w", "on_duty", now - HOUR, now + HOUR)]});
    assert_eq!(srv.post(ADMIN, "/api/v1/duty", roster).await.0, 201);
    let (s, v) = srv.post(OPERATOR, "/api/v1/incidents", incident).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(recommended(&v), [("team-9".to_owned(), true), off("east-1")], "the unit on duty first: {v}");
    assert_eq!(v["recommended"]["prefers"], "on_duty");
    assert_eq!(v["recommended"]["units"][0]["on_duty_reason"], "team-1's post p-west has someone on duty now");
    let posts = v["recommended"]["posts"].as_array().unwrap();
    let west = posts.iter().find(|p| p["id"] == "p-west").unwrap();
    let east = posts.iter().find(|p| p["id"] == "p-east").unwrap();
    assert_eq!((&west["on_duty"], &east["on_duty"]), (&json!(true), &json!(false)), "{v}");
    srv.stop().await;
}

on_both_stores!(dispatch_recommends_units_on_duty_first_and_says_so);
on_both_stores!(every_caller_reads_and_sets_the_roster_as_its_role_allows);
on_both_stores!(each_bad_shift_is_refused_naming_its_field_and_nothing_is_stored);
on_both_stores!(a_unit_has_one_leader_at_a_time_and_cancelled_shifts_are_kept_and_audited);
