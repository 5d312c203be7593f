//! The people admin API against a server on `127.0.0.1:0`, on both stores: who may list,
//! read, create and change people (every role, a device key, no token, an unknown
//! token); each validation rule refused naming its field; filters and pages; every
//! change in the audit log; a change from a stale read refused; a device bound only to an
//! existing, active person.

use liandong_server::auth::Role;
use liandong_server::config::TokenConfig;
use liandong_test_support::{on_both_stores, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const LEADER: &str = "leader-team-1";
const OFFICER: &str = "officer-p-west";
const GRID: &str = "grid-a-token";
const PARTNER: &str = "partner-token";
/// A registered phone's key.
const PHONE: &str = "phone-key-0001";
const UNKNOWN: &str = "no-such-token";

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
        unit_token(OFFICER, Role::PostOfficer, "p-west"),
        token(GRID, Role::GridMember),
        token(PARTNER, Role::Partner),
    ]
}

/// A server on `backend` with one phone registered; None when PostGIS is to be skipped.
async fn start(name: &str, backend: Backend) -> Option<Server> {
    let dir = liandong_test_support::fresh_dir(&format!("people-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    backend.configure(&mut config, &format!("people_{name}")).await?;
    let srv = Server::start(config).await;
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "866001", "name": "phone", "kind": "patrol_member", "unit_id": "team-1", "key": PHONE}),
    )
    .await;
    Some(srv)
}

/// `PATCH path` with `token` (none when None) and the JSON `body`: the status and body.
async fn patch(srv: &Server, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
    let mut req = srv.http.patch(format!("{}{path}", srv.url)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `POST path` without a token: the status.
async fn post_anonymous(srv: &Server, path: &str, body: Value) -> u16 {
    srv.http.post(format!("{}{path}", srv.url)).json(&body).send().await.unwrap().status().as_u16()
}

/// `GET path` without a token: the status.
async fn get_anonymous(srv: &Server, path: &str) -> u16 {
    srv.http.get(format!("{}{path}", srv.url)).send().await.unwrap().status().as_u16()
}

fn officer(id: &str) -> Value {
    json!({"person_id": id, "name": "王警官", "phone": "+8613800000001", "roles": ["post_officer"],
           "unit_kind": "post", "unit_id": "p-west"})
}

/// The field an error answer names.
fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

async fn every_caller_is_allowed_or_refused_as_the_role_table_says(backend: Backend) {
    let Some(srv) = start("roles", backend).await else { return };
    let (s, v) = srv.post(ADMIN, "/api/v1/people", officer("wang")).await;
    assert_eq!(s, 201, "an administrator creates: {v}");
    // (caller, list, read, create, change): every role lists the people in its reach
    // (tests/scope.rs); wang, an officer of the west post, is the west post officer's.
    let expected: [(&str, u16, u16, u16, u16); 8] = [
        (ADMIN, 200, 200, 201, 200),
        (OPERATOR, 200, 200, 403, 403),
        (LEADER, 200, 404, 403, 403),
        (OFFICER, 200, 200, 403, 403),
        (GRID, 200, 404, 403, 403),
        (PARTNER, 200, 404, 403, 403),
        (PHONE, 401, 401, 401, 401),
        (UNKNOWN, 401, 401, 401, 401),
    ];
    for (i, (who, list, read, create, change)) in expected.into_iter().enumerate() {
        let got = (
            srv.get(who, "/api/v1/people").await.0,
            srv.get(who, "/api/v1/people/wang").await.0,
            srv.post(who, "/api/v1/people", officer(&format!("p{i}"))).await.0,
            patch(&srv, Some(who), "/api/v1/people/wang", json!({"name": format!("名{i}")})).await.0,
        );
        assert_eq!(got, (list, read, create, change), "{who}");
    }
    let anonymous = (
        get_anonymous(&srv, "/api/v1/people").await,
        get_anonymous(&srv, "/api/v1/people/wang").await,
        post_anonymous(&srv, "/api/v1/people", officer("anon")).await,
        patch(&srv, None, "/api/v1/people/wang", json!({"name": "无名"})).await.0,
    );
    assert_eq!(anonymous, (401, 401, 401, 401), "no token");
    // Only the administrator's create and change were written.
    let (_, v) = srv.get(OPERATOR, "/api/v1/people").await;
    let ids: Vec<&str> = v["people"].as_array().unwrap().iter().map(|p| p["person_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["p0", "wang"]);
    assert_eq!(srv.get(OPERATOR, "/api/v1/people/wang").await.1["person"]["name"], "名0");
    srv.stop().await;
}

async fn an_admin_adds_changes_and_deactivates_people_and_every_change_is_audited(backend: Backend) {
    let Some(srv) = start("audit", backend).await else { return };
    let (s, v) = srv.post(ADMIN, "/api/v1/people", officer("wang")).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["person"]["active"], true, "a person is active unless told otherwise");
    let (s, v) = srv.post(ADMIN, "/api/v1/people", officer("wang")).await;
    assert_eq!((s, field(&v)), (409, "person_id"), "an existing id: {v}");

    let change = json!({"roles": ["patrol_leader", "post_officer"], "unit_kind": "team", "unit_id": "team-1",
                        "phone": null});
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/wang", change).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["person"]["unit_id"], "team-1");
    assert_eq!(v["person"]["phone"], Value::Null, "null clears the phone");
    assert_eq!(v["person"]["name"], "王警官", "a field not sent is kept");
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/wang", json!({"active": false})).await;
    assert_eq!((s, &v["person"]["active"]), (200, &json!(false)), "{v}");
    let (s, v) = srv.get(ADMIN, "/api/v1/people/wang").await;
    assert_eq!((s, &v["person"]["active"]), (200, &json!(false)), "a deactivated person is kept: {v}");

    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=person:wang").await;
    let log = v["audit"].as_array().unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["person_changed", "person_changed", "person_created"], "newest first, no entry for the 409");
    assert!(log.iter().all(|e| e["actor"] == ADMIN && e["at_ms"].as_i64().unwrap() > 0), "who and when: {v}");
    assert_eq!(log[0]["detail"], "active: true -> false");
    let roles_change = log[1]["detail"].as_str().unwrap();
    for what in ["roles: post_officer -> patrol_leader,post_officer", "unit_kind: post -> team", "phone: Some("] {
        assert!(roles_change.contains(what), "{what} in {roles_change}");
    }
    assert!(!roles_change.contains("name"), "an unchanged field is not listed: {roles_change}");
    srv.stop().await;
}

async fn each_bad_field_is_refused_naming_it(backend: Backend) {
    let Some(srv) = start("fields", backend).await else { return };
    let with = |k: &str, v: Value| {
        let mut p = officer("li");
        p[k] = v;
        p
    };
    let cases = [
        (with("person_id", json!("Li")), 400, "person_id"),
        (with("person_id", json!("")), 400, "person_id"),
        (with("person_id", json!("a".repeat(65))), 400, "person_id"),
        (with("name", json!("  ")), 400, "name"),
        (with("name", json!("名".repeat(101))), 400, "name"),
        (with("phone", json!("1234")), 400, "phone"),
        (with("phone", json!("138-0000-0000")), 400, "phone"),
        (with("phone", json!("1".repeat(21))), 400, "phone"),
        (with("roles", json!([])), 400, "roles"),
        (with("roles", json!(["device"])), 400, "roles"),
        (with("roles", json!(["chief"])), 400, "roles"),
        (with("unit_kind", json!("village")), 400, "unit_kind"),
        (with("unit_id", json!("p-nowhere")), 422, "unit_id"),
        (with("unit_id", Value::Null), 400, "unit_id"),
        (
            json!({"person_id": "li", "name": "李", "roles": ["operator"], "unit_kind": "command_centre",
                "unit_id": "p-west"}),
            400,
            "unit_id",
        ),
        (
            json!({"person_id": "li", "name": "李", "roles": ["grid_member"], "unit_kind": "grid",
                "unit_id": "p-west"}),
            422,
            "unit_id",
        ),
        (with("shoe_size", json!(42)), 400, "body"),
    ];
    for (body, status, named) in cases {
        let (s, v) = srv.post(ADMIN, "/api/v1/people", body.clone()).await;
        assert_eq!((s, field(&v)), (status, named), "{body}: {v}");
    }
    assert_eq!(srv.get(ADMIN, "/api/v1/people").await.1["people"], json!([]), "nothing refused was stored");

    // Each unit kind with a unit of the map, and the two without one, are accepted.
    for (id, kind, unit) in
        [("a", "post", json!("p-east")), ("b", "team", json!("team-1")), ("c", "grid", json!("g-west"))]
            .into_iter()
            .chain([("d", "judicial_office", Value::Null), ("e", "command_centre", Value::Null)])
    {
        let body = json!({"person_id": id, "name": id, "roles": ["operator"], "unit_kind": kind, "unit_id": unit});
        let (s, v) = srv.post(ADMIN, "/api/v1/people", body).await;
        assert_eq!(s, 201, "{kind}: {v}");
    }
    // A change is checked as a whole: a new kind without its unit is refused.
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/e", json!({"unit_kind": "post"})).await;
    assert_eq!((s, field(&v)), (400, "unit_id"), "{v}");
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/a", json!({"roles": []})).await;
    assert_eq!((s, field(&v)), (400, "roles"), "{v}");
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/a", json!({"person_id": "z"})).await;
    assert_eq!((s, field(&v)), (400, "body"), "the id cannot change: {v}");
    let (s, _) = patch(&srv, Some(ADMIN), "/api/v1/people/nobody", json!({"active": false})).await;
    assert_eq!(s, 404);
    assert_eq!(srv.get(ADMIN, "/api/v1/people/nobody").await.0, 404);
    assert_eq!(field(&srv.get(ADMIN, "/api/v1/people/No%20One").await.1), "person_id");
    for (query, named) in
        [("limit=0", "limit"), ("limit=501", "limit"), ("active=yes", "active"), ("role=chief", "role"), ("x=1", "x")]
    {
        let (s, v) = srv.get(ADMIN, &format!("/api/v1/people?{query}")).await;
        assert_eq!((s, field(&v)), (400, named), "{query}: {v}");
    }
    srv.stop().await;
}

async fn the_list_filters_by_unit_role_and_activity_a_page_at_a_time(backend: Backend) {
    let Some(srv) = start("list", backend).await else { return };
    for (id, roles, kind, unit) in [
        ("a1", json!(["post_officer"]), "post", json!("p-west")),
        ("b2", json!(["patrol_leader"]), "team", json!("team-1")),
        ("c3", json!(["operator", "admin"]), "command_centre", Value::Null),
        ("d4", json!(["post_officer", "patrol_leader"]), "post", json!("p-west")),
    ] {
        let body = json!({"person_id": id, "name": id, "roles": roles, "unit_kind": kind, "unit_id": unit});
        assert_eq!(srv.post(ADMIN, "/api/v1/people", body).await.0, 201);
    }
    assert_eq!(patch(&srv, Some(ADMIN), "/api/v1/people/d4", json!({"active": false})).await.0, 200);
    let ids = |v: &Value| -> Vec<String> {
        v["people"].as_array().unwrap().iter().map(|p| p["person_id"].as_str().unwrap().to_owned()).collect()
    };
    for (query, expected) in [
        ("unit_id=p-west", vec!["a1", "d4"]),
        ("role=patrol_leader", vec!["b2", "d4"]),
        ("role=patrol_leader&active=true", vec!["b2"]),
        ("active=false", vec!["d4"]),
        ("role=admin", vec!["c3"]),
    ] {
        let (s, v) = srv.get(OPERATOR, &format!("/api/v1/people?{query}")).await;
        assert_eq!((s, ids(&v)), (200, expected.iter().map(|e| e.to_string()).collect::<Vec<_>>()), "{query}");
    }
    let (_, first) = srv.get(OPERATOR, "/api/v1/people?limit=3").await;
    assert_eq!((ids(&first), &first["next_after"]), (vec!["a1".into(), "b2".into(), "c3".into()], &json!("c3")));
    let (_, rest) = srv.get(OPERATOR, "/api/v1/people?limit=3&after=c3").await;
    assert_eq!((ids(&rest), &rest["next_after"]), (vec!["d4".into()], &Value::Null), "the last page says so");
    srv.stop().await;
}

async fn a_device_is_bound_only_to_an_existing_active_person(backend: Backend) {
    let Some(srv) = start("binding", backend).await else { return };
    assert_eq!(srv.post(ADMIN, "/api/v1/people", officer("wang")).await.0, 201);
    let device = |person: &str| {
        json!({"device_id": "866002", "name": "王的手机", "kind": "post_officer", "unit_id": "p-west",
               "person_id": person})
    };
    let (s, v) = srv.post(ADMIN, "/api/v1/devices", device("nobody")).await;
    assert_eq!((s, field(&v)), (422, "person_id"), "an unknown person: {v}");
    let (s, v) = srv.post(ADMIN, "/api/v1/devices", device("wang")).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["device"]["person_id"], "wang");
    assert_eq!(patch(&srv, Some(ADMIN), "/api/v1/people/wang", json!({"active": false})).await.0, 200);
    let (s, v) = srv.post(ADMIN, "/api/v1/devices", device("wang")).await;
    assert_eq!((s, field(&v)), (422, "person_id"), "an inactive person: {v}");
    srv.stop().await;
}

async fn a_change_made_from_a_stale_read_is_refused_and_names_the_version(backend: Backend) {
    let Some(srv) = start("stale", backend).await else { return };
    let (_, v) = srv.post(ADMIN, "/api/v1/people", officer("wang")).await;
    let read = v["person"]["updated_ms"].as_i64().expect("the person's version");
    // Another administrator changes the person after this one's form was filled.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/wang", json!({"name": "王一"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/wang", json!({"name": "王二", "updated_ms": read})).await;
    assert_eq!((s, field(&v)), (409, "updated_ms"), "a change from the old version: {v}");
    let (_, now) = srv.get(ADMIN, "/api/v1/people/wang").await;
    assert_eq!(now["person"]["name"], "王一", "the other change stands");
    let current = now["person"]["updated_ms"].as_i64().unwrap();
    let (s, v) = patch(&srv, Some(ADMIN), "/api/v1/people/wang", json!({"name": "王二", "updated_ms": current})).await;
    assert_eq!((s, &v["person"]["name"]), (200, &json!("王二")), "read again, the change is taken: {v}");
    srv.stop().await;
}

on_both_stores!(every_caller_is_allowed_or_refused_as_the_role_table_says);
on_both_stores!(a_change_made_from_a_stale_read_is_refused_and_names_the_version);
on_both_stores!(an_admin_adds_changes_and_deactivates_people_and_every_change_is_audited);
on_both_stores!(each_bad_field_is_refused_naming_it);
on_both_stores!(the_list_filters_by_unit_role_and_activity_a_page_at_a_time);
on_both_stores!(a_device_is_bound_only_to_an_existing_active_person);
