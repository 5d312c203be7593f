//! The joint mediation centre (三调融合, issue 16) against a server on `127.0.0.1:0`, on
//! both stores: a case from each source (a grid member's dispute, an incident sent to
//! mediation, a walk-in) through accept → session → outcome → follow-up; a decline;
//! wrong states answered 409 naming `status`; bad input 400 naming the field; who may
//! do what; a late step escalated once, not again after a restart; a criminal incident
//! flagged by a party and by a place, a non-criminal one not; the statistics of the set.

use liandong_server::auth::Role;
use liandong_server::clock::Clock;
use liandong_server::config::{Config, TokenConfig};
use liandong_test_support::{on_both_stores, person_token, token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const PARTNER: &str = "partner-token";
const POST: &str = "post-token";
const GRID: &str = "grid-token";
const LEADER: &str = "leader-token";

/// 2026-03-02 08:00 China time.
const T0: i64 = 1_772_409_600_000;
const H: i64 = 3_600_000;

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        person_token(PARTNER, Role::Partner, None, "mediator-1"),
        person_token(POST, Role::PostOfficer, Some("p-west"), "west-officer"),
        token(GRID, Role::GridMember),
        token(LEADER, Role::PatrolLeader),
    ]
}

/// A server on a manual clock at `T0` (kept by the caller to move it) with two mediators
/// (one no longer active) and a post officer; None when PostGIS is to be skipped.
async fn start(name: &str, backend: Backend, clock: &Clock) -> Option<(Server, Config)> {
    let dir = liandong_test_support::fresh_dir(&format!("mediation-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    config.clock = clock.clone();
    backend.configure(&mut config, &format!("mediation_{name}")).await?;
    let srv = Server::start(config.clone()).await;
    for (id, role, kind, unit) in [
        ("mediator-1", "partner", "judicial_office", None),
        ("mediator-2", "partner", "judicial_office", None),
        ("west-officer", "post_officer", "post", Some("p-west")),
    ] {
        let body =
            json!({"person_id": id, "name": format!("{id}-name"), "roles": [role], "unit_kind": kind, "unit_id": unit});
        srv.admin("/api/v1/people", body).await;
    }
    Some((srv, config))
}

fn walk_in_body(kind: &str, lon: f64, parties: Value) -> Value {
    json!({"dispute_type": kind, "summary": "两户因排水沟争执", "parties": parties, "lon": lon, "lat": 30.71})
}

async fn walk_in(srv: &Server, who: &str, kind: &str, lon: f64, parties: Value) -> i64 {
    let (s, v) = srv.post(who, "/api/v1/mediation", walk_in_body(kind, lon, parties)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!((v["source"].as_str(), v["status"].as_str()), (Some("walk_in"), Some("pending")), "{v}");
    v["case_id"].as_i64().unwrap()
}

async fn incident(srv: &Server, kind: &str, lon: f64, parties: Value) -> (i64, Value) {
    let body = json!({"title": "现场处置", "kind": kind, "priority": 2, "lon": lon, "lat": 30.71, "parties": parties});
    let (s, v) = srv.post(OPERATOR, "/api/v1/incidents", body).await;
    assert_eq!(s, 201, "{v}");
    (v["incident"]["incident_id"].as_i64().unwrap(), v)
}

/// Accept → session → outcome → follow-up, each answered with the case.
async fn work_through(srv: &Server, case_id: i64, venue: &str, success: bool) {
    let accept = json!({"mediator_id": "mediator-1", "venue_id": venue, "note": "受理"});
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{case_id}/accept"), accept).await;
    assert_eq!(
        (s, v["status"].as_str(), v["mediator_name"].as_str()),
        (200, Some("accepted"), Some("mediator-1-name")),
        "{v}"
    );
    let session = json!({"starts": "2026-03-02T14:00:00+08:00", "venue_id": venue, "place": {"room": "二楼调解室"}, "note": "第一次调解"});
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{case_id}/sessions"), session).await;
    assert_eq!((s, v["sessions"][0]["session_no"].as_i64()), (200, Some(1)), "{v}");
    assert!(v["sessions"][0]["place"].as_str().is_some_and(|p| p.contains("二楼调解室")), "{v}");
    let outcome = json!({"mediation_type": "people", "outcome": "达成协议", "success": success});
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{case_id}"), outcome).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("mediated")), "{v}");
    assert!(v["follow_up_due_ms"].as_i64().is_some(), "{v}");
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{case_id}/follow-up"), json!({"note": "已履行"})).await;
    assert_eq!((s, v["status"].as_str(), v["due_ms"].clone()), (200, Some("followed_up"), Value::Null), "{v}");
}

async fn a_case_from_each_source_is_accepted_mediated_and_followed_up(backend: Backend) {
    // A grid report is stamped by the system clock: the manual one starts there.
    let clock = Clock::manual(liandong_test_support::now_ms());
    let Some((srv, _)) = start("sources", backend, &clock).await else { return };
    let report = json!({"category": "dispute", "text": "邻里宅基地纠纷", "lon": 107.12, "lat": 30.71});
    let (s, v) = srv.post(GRID, "/api/v1/reports", report).await;
    assert_eq!(s, 201, "{v}");
    let grid_case = v["mediation_case_id"].as_i64().unwrap();
    let walk = walk_in(&srv, POST, "neighbour", 107.25, json!([{"name": "张三", "phone": "13800000001"}])).await;
    let (inc, _) = incident(&srv, "traffic", 107.14, json!([])).await;
    let (s, v) =
        srv.post(OPERATOR, &format!("/api/v1/incidents/{inc}/mediation"), json!({"dispute_type": "traffic"})).await;
    assert_eq!((s, v["source"].as_str(), v["incident_id"].as_i64()), (201, Some("incident"), Some(inc)), "{v}");
    let inc_case = v["case_id"].as_i64().unwrap();
    let (s, v) =
        srv.post(OPERATOR, &format!("/api/v1/incidents/{inc}/mediation"), json!({"dispute_type": "traffic"})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (409, Some("incident_id")), "one case per incident: {v}");
    assert!(grid_case < walk && walk < inc_case, "ids are sequence numbers, unique across sources");

    // The registration alerts the centre: mediation_case for the walk-in and the incident.
    let (_, v) = srv.get(ADMIN, "/api/v1/history/alerts").await;
    let rules: Vec<&str> = v["alerts"].as_array().unwrap().iter().filter_map(|a| a["data"]["rule"].as_str()).collect();
    assert_eq!(rules.iter().filter(|r| **r == "mediation_case").count(), 2, "{rules:?}");

    // Wrong states and bad input before the steps.
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{walk}/follow-up"), json!({"note": "x"})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (409, Some("status")), "{v}");
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{walk}/sessions"), json!({"starts": T0})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (409, Some("status")), "a session needs an accepted case: {v}");
    for (body, field) in [
        (json!({"mediator_id": "mediator-9", "venue_id": "v-centre"}), "mediator_id"),
        (json!({"mediator_id": "west-officer", "venue_id": "v-centre"}), "mediator_id"),
        (json!({"mediator_id": "mediator-1", "venue_id": "v-nowhere"}), "venue_id"),
    ] {
        let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{walk}/accept"), body).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some(field)), "{v}");
    }
    let (s, _) = srv
        .post(PARTNER, "/api/v1/mediation/999999/accept", json!({"mediator_id": "mediator-1", "venue_id": "v-centre"}))
        .await;
    assert_eq!(s, 404);

    clock.advance(H);
    work_through(&srv, grid_case, "v-centre", true).await;
    work_through(&srv, walk, "v-east", false).await;
    work_through(&srv, inc_case, "v-centre", true).await;
    let (s, v) = srv
        .post(
            PARTNER,
            &format!("/api/v1/mediation/{walk}/accept"),
            json!({"mediator_id": "mediator-1", "venue_id": "v-centre"}),
        )
        .await;
    assert_eq!((s, v["error"]["field"].as_str()), (409, Some("status")), "{v}");

    // A declined walk-in, declined once.
    let declined = walk_in(&srv, PARTNER, "family", 107.2, json!([{"name": "王五"}])).await;
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{declined}/decline"), json!({"reason": "已起诉"})).await;
    assert_eq!(
        (s, v["status"].as_str(), v["declined_reason"].as_str()),
        (200, Some("declined"), Some("已起诉")),
        "{v}"
    );
    let (s, v) = srv.post(PARTNER, &format!("/api/v1/mediation/{declined}/decline"), json!({"reason": "again"})).await;
    assert_eq!((s, v["error"]["field"].as_str()), (409, Some("status")), "{v}");

    // Statistics of this set: four cases, three with an outcome, two agreements.
    let (s, v) = srv.get(OPERATOR, "/api/v1/mediation/statistics").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["cases"], 4, "{v}");
    assert_eq!(v["success_rate"].as_f64().map(|r| (r * 1000.0).round()), Some(667.0), "2 of 3: {v}");
    assert_eq!(
        v["by_source"],
        json!([
            {"key": "grid_report", "count": 1, "agreements": 1, "success_rate": 1.0},
            {"key": "incident", "count": 1, "agreements": 1, "success_rate": 1.0},
            {"key": "walk_in", "count": 2, "agreements": 0, "success_rate": 0.0},
        ]),
        "{v}"
    );
    assert_eq!(
        v["by_type"],
        json!([
            {"key": "family", "count": 1, "agreements": 0, "success_rate": null},
            {"key": "neighbour", "count": 1, "agreements": 0, "success_rate": 0.0},
            {"key": "other", "count": 1, "agreements": 1, "success_rate": 1.0},
            {"key": "traffic", "count": 1, "agreements": 1, "success_rate": 1.0},
        ]),
        "{v}"
    );
    assert_eq!(
        v["by_venue"],
        json!([
            {"key": "v-centre", "count": 2, "agreements": 2, "success_rate": 1.0},
            {"key": "v-east", "count": 1, "agreements": 0, "success_rate": 0.0},
        ]),
        "{v}"
    );
    assert_eq!(
        v["by_mediator"],
        json!([{"key": "mediator-1", "count": 3, "agreements": 2, "success_rate": 2.0 / 3.0}]),
        "{v}"
    );
    let resolution = &v["resolution_s"];
    assert_eq!((resolution["count"].as_i64(), resolution["max_s"].as_f64()), (Some(3), Some(3600.0)), "{v}");
    assert_eq!((v["overdue"].as_i64(), v["turned_criminal"].as_i64()), (Some(0), Some(0)), "{v}");
    let (_, all) = srv.get(OPERATOR, "/api/v1/statistics").await;
    let old = &all["mediation"];
    assert_eq!(
        (old["disputes"].as_i64(), old["mediated"].as_i64(), old["successful"].as_i64()),
        (Some(4), Some(3), Some(2)),
        "{all}"
    );
    assert_eq!(old["by_type"], json!([["people", 3]]), "the old keys keep their meaning: {all}");
    assert_eq!(all["mediation"]["cases"], 4, "{all}");

    // Lists: newest first, by status, mine; one case with its sessions.
    let (s, v) = srv.get(PARTNER, "/api/v1/mediation?status=followed_up").await;
    let ids: Vec<i64> = v["cases"].as_array().unwrap().iter().map(|c| c["case_id"].as_i64().unwrap()).collect();
    assert_eq!((s, ids), (200, vec![inc_case, walk, grid_case]), "{v}");
    let (_, v) = srv.get(PARTNER, "/api/v1/mediation?mine=true&limit=2").await;
    assert_eq!(v["cases"].as_array().unwrap().len(), 2, "{v}");
    let (s, v) = srv.get(OPERATOR, &format!("/api/v1/mediation/{walk}")).await;
    assert_eq!(
        (s, v["parties"][0]["name"].as_str(), v["sessions"].as_array().map(Vec::len)),
        (200, Some("张三"), Some(1)),
        "{v}"
    );
    let (_, v) = srv.get(ADMIN, "/api/v1/mediation/venues").await;
    assert_eq!(v["venues"][0]["venue_id"], "v-centre", "{v}");
    srv.stop().await;
}

async fn bad_input_is_refused_naming_the_field_and_each_role_may_do_what_it_may(backend: Backend) {
    let clock = Clock::manual(T0);
    let Some((srv, _)) = start("roles", backend, &clock).await else { return };
    let party = json!([{"name": "张三"}]);
    for (body, field) in [
        (json!({"dispute_type": "war", "summary": "x", "parties": party, "lon": 107.1, "lat": 30.7}), "dispute_type"),
        (json!({"dispute_type": "land", "summary": " ", "parties": party, "lon": 107.1, "lat": 30.7}), "summary"),
        (json!({"dispute_type": "land", "summary": "x", "parties": [], "lon": 107.1, "lat": 30.7}), "parties"),
        (
            json!({"dispute_type": "land", "summary": "x", "parties": [{"name": ""}], "lon": 107.1, "lat": 30.7}),
            "parties[0].name",
        ),
        (
            json!({"dispute_type": "land", "summary": "x", "parties": [{"name": "a", "phone": "12ab"}], "lon": 107.1, "lat": 30.7}),
            "parties[0].phone",
        ),
        (json!({"dispute_type": "land", "summary": "x", "parties": party, "lon": 107.1, "lat": 91.0}), "lat"),
    ] {
        let (s, v) = srv.post(ADMIN, "/api/v1/mediation", body).await;
        assert_eq!((s, v["error"]["field"].as_str()), (400, Some(field)), "{v}");
    }
    // Filing a walk-in: partner, post officer, operator, admin; not grid members or leaders.
    for (who, allowed) in
        [(PARTNER, true), (POST, true), (OPERATOR, true), (ADMIN, true), (GRID, false), (LEADER, false)]
    {
        let (s, v) = srv.post(who, "/api/v1/mediation", walk_in_body("land", 107.1, party.clone())).await;
        assert_eq!(s, if allowed { 201 } else { 403 }, "{who}: {v}");
    }
    // Reading: partner, operator, admin; the post officer files but does not list.
    for (who, allowed) in
        [(PARTNER, true), (OPERATOR, true), (ADMIN, true), (POST, false), (GRID, false), (LEADER, false)]
    {
        let (s, v) = srv.get(who, "/api/v1/mediation").await;
        assert_eq!(s, if allowed { 200 } else { 403 }, "{who}: {v}");
        let (s, _) = srv.get(who, "/api/v1/mediation/statistics").await;
        assert_eq!(s, if allowed { 200 } else { 403 }, "{who}");
    }
    let (_, v) = srv.get(ADMIN, "/api/v1/mediation?limit=1").await;
    let case_id = v["cases"][0]["case_id"].as_i64().unwrap();
    let accept = json!({"mediator_id": "mediator-1", "venue_id": "v-centre"});
    for who in [OPERATOR, POST, GRID, LEADER] {
        let (s, _) = srv.post(who, &format!("/api/v1/mediation/{case_id}/accept"), accept.clone()).await;
        assert_eq!(s, 403, "{who} does not accept cases");
    }
    let (s, v) = srv.get(ADMIN, "/api/v1/mediation?status=open").await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("status")), "{v}");
    let (s, v) = srv.get(ADMIN, "/api/v1/mediation?limit=501").await;
    assert_eq!((s, v["error"]["field"].as_str()), (400, Some("limit")), "{v}");
    srv.stop().await;
}

async fn overdue_count(srv: &Server) -> usize {
    let (_, v) = srv.get(ADMIN, "/api/v1/history/alerts").await;
    v["alerts"].as_array().unwrap().iter().filter(|a| a["data"]["rule"] == "mediation_overdue").count()
}

async fn a_late_step_is_escalated_once_and_not_again_after_a_restart(backend: Backend) {
    let clock = Clock::manual(T0);
    let Some((srv, config)) = start("overdue", backend, &clock).await else { return };
    let case_id = walk_in(&srv, PARTNER, "labour", 107.2, json!([{"name": "赵六"}])).await;
    let wait = liandong_server::mediation_watch::TICK * 3;
    tokio::time::sleep(wait).await;
    assert_eq!(overdue_count(&srv).await, 0, "not late yet");
    clock.advance(25 * H);
    tokio::time::sleep(wait).await;
    assert_eq!(overdue_count(&srv).await, 1, "late to accept: escalated");
    let (_, v) = srv.get(PARTNER, &format!("/api/v1/mediation/{case_id}")).await;
    assert_eq!(v["overdue"], true, "{v}");
    tokio::time::sleep(wait).await;
    assert_eq!(overdue_count(&srv).await, 1, "once, not at every tick");
    srv.stop_keeping_data().await;
    let srv = Server::start(config).await;
    tokio::time::sleep(wait).await;
    assert_eq!(overdue_count(&srv).await, 1, "not again after a restart");
    let (_, v) = srv.get(OPERATOR, "/api/v1/mediation/statistics").await;
    assert_eq!(v["overdue"], 1, "{v}");
    srv.stop().await;
}

async fn a_criminal_incident_touching_a_dispute_is_flagged_by_party_or_place(backend: Backend) {
    let clock = Clock::manual(T0);
    let Some((srv, _)) = start("criminal", backend, &clock).await else { return };
    let by_party =
        walk_in(&srv, PARTNER, "neighbour", 107.10, json!([{"name": "张三", "phone": "138-0000-0001"}])).await;
    let by_place = walk_in(&srv, PARTNER, "land", 107.30, json!([{"name": "李四"}])).await;
    // A theft is no crime of the list: not flagged though at the same place.
    let (_, v) = incident(&srv, "theft", 107.30, json!([{"name": "张三", "phone": "13800000001"}])).await;
    assert_eq!(v["disputes"], json!([]), "{v}");
    // An assault far away whose party is a party of the first dispute.
    let (party_inc, v) = incident(&srv, "assault", 107.20, json!([{"name": "张三", "phone": "138-0000-0001"}])).await;
    assert_eq!(v["disputes"], json!([{"case_id": by_party, "reason": "party"}]), "{v}");
    // A fight 50 m from the second dispute's place, nobody named.
    let (place_inc, v) = incident(&srv, "fight", 107.30 + 50.0 / 95_640.0, json!([])).await;
    assert_eq!(v["disputes"], json!([{"case_id": by_place, "reason": "place"}]), "{v}");
    // The same name with another phone, 1 km away: nothing.
    let (_, v) = incident(&srv, "assault", 107.11, json!([{"name": "张三", "phone": "13900000000"}])).await;
    assert_eq!(v["disputes"], json!([]), "{v}");

    let (_, v) = srv.get(ADMIN, "/api/v1/history/alerts").await;
    let flagged: Vec<&Value> =
        v["alerts"].as_array().unwrap().iter().filter(|a| a["data"]["rule"] == "dispute_turned_criminal").collect();
    assert_eq!(flagged.len(), 2, "{v}");
    assert!(flagged.iter().all(|a| a["data"]["priority"] == 1));
    let (_, v) = srv.get(PARTNER, &format!("/api/v1/mediation/{by_party}")).await;
    assert_eq!(v["turned_criminal"], json!([party_inc]), "{v}");
    let (_, v) = srv.get(PARTNER, &format!("/api/v1/mediation/{by_place}")).await;
    assert_eq!(v["turned_criminal"], json!([place_inc]), "{v}");
    let (_, v) = srv.get(OPERATOR, "/api/v1/mediation/statistics").await;
    assert_eq!(v["turned_criminal"], 2, "two incidents: {v}");
    let (_, v) = srv.get(OPERATOR, "/api/v1/mediation/places?min=1").await;
    assert_eq!(v["places"].as_array().map(Vec::len), Some(2), "{v}");
    srv.stop().await;
}

on_both_stores!(a_case_from_each_source_is_accepted_mediated_and_followed_up);
on_both_stores!(bad_input_is_refused_naming_the_field_and_each_role_may_do_what_it_may);
on_both_stores!(a_late_step_is_escalated_once_and_not_again_after_a_restart);
on_both_stores!(a_criminal_incident_touching_a_dispute_is_flagged_by_party_or_place);
