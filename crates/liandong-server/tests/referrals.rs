//! After-hours referrals to the judicial office against a server on `127.0.0.1:0`, on
//! both stores, with the deadline clock set by hand: a referral registered on a Friday
//! evening is not seen by the office over the weekend and is handed to it on Monday at
//! opening with its due time; one registered on the eve of National Day waits for the
//! first working day after the holiday (the shipped configuration's holidays); one
//! registered in office hours is handed at once; the office takes it up and the officer
//! who registered it sees who and when; who may do what, role by role; bad input.

use liandong_server::auth::Role;
use liandong_server::clock::Clock;
use liandong_server::config::{Config, TokenConfig};
use liandong_test_support::{on_both_stores, person_token, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
const WEST: &str = "west-officer-token";
const EAST: &str = "east-officer-token";
const PARTNER: &str = "partner-token";
const GRID: &str = "grid-token";
const LEADER: &str = "leader-team-1";

const HOUR_MS: i64 = 3_600_000;

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        person_token(WEST, Role::PostOfficer, Some("p-west"), "west_officer"),
        unit_token(EAST, Role::PostOfficer, "p-east"),
        person_token(PARTNER, Role::Partner, None, "mediator_1"),
        token(GRID, Role::GridMember),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
    ]
}

/// Unix ms of a moment in China time (UTC+8).
fn cst(y: i64, m: u32, d: u32, h: i64, min: i64) -> i64 {
    let day = liandong_core::stats::days_from_civil(y, m, d);
    day * 86_400_000 - 8 * HOUR_MS + h * HOUR_MS + min * 60_000
}

/// A server whose deadline clock stands at `at_ms`, with the judicial office's hours as
/// the shipped configuration has them (2026's public holidays and make-up days); the
/// clock to move. None when PostGIS is to be skipped.
async fn start(name: &str, backend: Backend, at_ms: i64) -> Option<(Server, Clock)> {
    let dir = liandong_test_support::fresh_dir(&format!("referrals-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    let shipped = std::fs::read_to_string(liandong_test_support::root().join("config/default.toml")).unwrap();
    let (shipped, _) = Config::parse(&shipped, std::path::Path::new("config/default.toml")).unwrap();
    config.judicial_office = shipped.judicial_office;
    let clock = Clock::manual(at_ms);
    config.clock = clock.clone();
    backend.configure(&mut config, &format!("referrals_{name}")).await?;
    Some((Server::start(config).await, clock))
}

fn new_referral() -> Value {
    json!({"business": "legal_aid", "person": {"name": "张三", "phone": "13800000000"},
           "summary": "工资被拖欠三个月，请求法律援助"})
}

/// The ids of a referral list as `token` sees it.
async fn listed(srv: &Server, token: &str) -> Vec<i64> {
    let (status, v) = srv.get(token, "/api/v1/referrals").await;
    assert_eq!(status, 200, "{v}");
    v["referrals"].as_array().unwrap().iter().map(|r| r["referral_id"].as_i64().unwrap()).collect()
}

/// One referral of `token`'s list.
async fn seen(srv: &Server, token: &str, id: i64) -> Value {
    let (_, v) = srv.get(token, "/api/v1/referrals").await;
    v["referrals"].as_array().unwrap().iter().find(|r| r["referral_id"] == id).cloned().expect("listed")
}

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

on_both_stores!(a_referral_of_a_friday_evening_waits_over_the_weekend_and_is_handed_on_monday_at_opening);
on_both_stores!(a_referral_on_the_eve_of_national_day_waits_for_the_first_working_day_after_it);
on_both_stores!(a_referral_in_office_hours_is_handed_at_once_and_counted_in_the_statistics);
on_both_stores!(every_caller_is_allowed_or_refused_as_the_referral_rules_say);

async fn a_referral_of_a_friday_evening_waits_over_the_weekend_and_is_handed_on_monday_at_opening(backend: Backend) {
    // Friday 27 November 2026, 19:00 China time.
    let Some((srv, clock)) = start("weekend", backend, cst(2026, 11, 27, 19, 0)).await else { return };
    let (status, v) = srv.post(WEST, "/api/v1/referrals", new_referral()).await;
    assert_eq!(status, 201, "{v}");
    let r = &v["referral"];
    let id = r["referral_id"].as_i64().unwrap();
    let monday = cst(2026, 11, 30, 8, 30);
    assert_eq!(r["status"], "waiting");
    assert_eq!(r["post_id"], "p-west", "the officer's own post");
    assert_eq!(r["registered_ms"], cst(2026, 11, 27, 19, 0));
    assert_eq!(r["handed_ms"], monday, "the office's next opening");
    // Four office hours: 08:30–12:00 and 14:00–14:30.
    assert_eq!(r["due_ms"], cst(2026, 11, 30, 14, 30));
    assert_eq!(r["overdue"], false);

    // Over the weekend the office sees nothing, and cannot take it up.
    for at in [cst(2026, 11, 27, 23, 0), cst(2026, 11, 28, 10, 0), cst(2026, 11, 29, 20, 0), monday - 60_000] {
        clock.set(at);
        assert!(listed(&srv, PARTNER).await.is_empty(), "nothing for the office at {at}");
        let (status, _) = srv.post(PARTNER, &format!("/api/v1/referrals/{id}/take"), json!({})).await;
        assert_eq!(status, 404, "not handed yet at {at}");
    }
    assert_eq!(seen(&srv, WEST, id).await["status"], "waiting", "the officer sees it wait");

    // Monday at opening it is there, with its due time.
    clock.set(monday);
    assert_eq!(listed(&srv, PARTNER).await, [id]);
    let handed = seen(&srv, PARTNER, id).await;
    assert_eq!(
        (handed["status"].as_str(), handed["due_ms"].as_i64()),
        (Some("handed"), Some(cst(2026, 11, 30, 14, 30)))
    );
    let (_, v) = srv.get(PARTNER, "/api/v1/referrals?status=handed").await;
    assert_eq!(v["referrals"].as_array().unwrap().len(), 1);

    // The office takes it up; the officer who registered it sees when and who.
    clock.set(monday + HOUR_MS);
    let (status, v) = srv.post(PARTNER, &format!("/api/v1/referrals/{id}/take"), json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["referral"]["status"], "taken");
    let (status, v) = srv.post(PARTNER, &format!("/api/v1/referrals/{id}/take"), json!({})).await;
    assert_eq!((status, field(&v)), (409, "status"), "taken once");
    let mine = seen(&srv, WEST, id).await;
    assert_eq!(mine["status"], "taken");
    assert_eq!(mine["taken_ms"], monday + HOUR_MS);
    assert_eq!(mine["taken_by"], PARTNER);
    assert_eq!(mine["overdue"], false);

    let (status, v) =
        srv.post(PARTNER, &format!("/api/v1/referrals/{id}/done"), json!({"note": "已受理法律援助"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["referral"]["status"].as_str(), v["referral"]["note"].as_str()),
        (Some("done"), Some("已受理法律援助"))
    );
    let (status, v) = srv.post(PARTNER, &format!("/api/v1/referrals/{id}/done"), json!({"note": "again"})).await;
    assert_eq!((status, field(&v)), (409, "status"));
    srv.stop().await;
}

async fn a_referral_on_the_eve_of_national_day_waits_for_the_first_working_day_after_it(backend: Backend) {
    // Wednesday 30 September 2026, 18:00: the office closed at 17:30 and the National
    // Day holiday runs 1 to 7 October.
    let Some((srv, clock)) = start("holiday", backend, cst(2026, 9, 30, 18, 0)).await else { return };
    let (status, v) = srv.post(WEST, "/api/v1/referrals", new_referral()).await;
    assert_eq!(status, 201, "{v}");
    let id = v["referral"]["referral_id"].as_i64().unwrap();
    assert_eq!(v["referral"]["handed_ms"], cst(2026, 10, 8, 8, 30), "Thursday 8 October, the first working day");
    assert_eq!(v["referral"]["due_ms"], cst(2026, 10, 8, 14, 30));
    clock.set(cst(2026, 10, 5, 10, 0));
    assert!(listed(&srv, PARTNER).await.is_empty(), "a Monday of the holiday");
    clock.set(cst(2026, 10, 8, 8, 30));
    assert_eq!(listed(&srv, PARTNER).await, [id]);
    // Nobody took it up by its due time: it is overdue, to the office and the officer.
    clock.set(cst(2026, 10, 8, 15, 0));
    assert_eq!(seen(&srv, PARTNER, id).await["overdue"], true);
    assert_eq!(seen(&srv, WEST, id).await["overdue"], true);
    srv.stop().await;
}

async fn a_referral_in_office_hours_is_handed_at_once_and_counted_in_the_statistics(backend: Backend) {
    // Tuesday 24 November 2026, 10:00.
    let at = cst(2026, 11, 24, 10, 0);
    let Some((srv, clock)) = start("open", backend, at).await else { return };
    let (status, v) = srv.post(WEST, "/api/v1/referrals", new_referral()).await;
    assert_eq!(status, 201, "{v}");
    let id = v["referral"]["referral_id"].as_i64().unwrap();
    assert_eq!((v["referral"]["status"].as_str(), v["referral"]["handed_ms"].as_i64()), (Some("handed"), Some(at)));
    assert_eq!(v["referral"]["due_ms"], cst(2026, 11, 24, 16, 0), "two hours before lunch, two after");
    assert_eq!(listed(&srv, PARTNER).await, [id]);
    // An operator registers for the east post at lunch time: it waits until 14:00.
    clock.set(cst(2026, 11, 24, 12, 30));
    let mut body = new_referral();
    body["post_id"] = json!("p-east");
    body["business"] = json!("notarization");
    let (status, v) = srv.post(OPERATOR, "/api/v1/referrals", body).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["referral"]["handed_ms"], cst(2026, 11, 24, 14, 0));
    clock.set(cst(2026, 11, 24, 11, 0));
    let (status, _) = srv.post(PARTNER, &format!("/api/v1/referrals/{id}/take"), json!({})).await;
    assert_eq!(status, 200);
    clock.set(cst(2026, 11, 24, 16, 0));

    let (status, v) = srv.get(OPERATOR, "/api/v1/referrals/statistics").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["referrals"], 2);
    assert_eq!(v["by_status"], json!({"waiting": 0, "handed": 1, "taken": 1, "done": 0}));
    assert_eq!((v["on_time"].as_i64(), v["late"].as_i64(), v["after_hours"].as_i64()), (Some(1), Some(0), Some(1)));
    assert_eq!(v["take_up_s"]["mean_s"], 3600.0, "handed at 10:00, taken at 11:00");
    let posts: Vec<&str> = v["by_post"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(posts, ["p-east", "p-west"]);
    let (_, v) = srv.get(WEST, "/api/v1/referrals/statistics").await;
    assert_eq!(v["referrals"], 1, "a post officer counts their own post's");
    let range =
        format!("/api/v1/referrals/statistics?from={}&to={}", cst(2026, 11, 24, 12, 0), cst(2026, 11, 25, 0, 0));
    let (_, v) = srv.get(ADMIN, &range).await;
    assert_eq!(v["referrals"], 1, "registered in the range");
    let (status, v) = srv.get(ADMIN, "/api/v1/referrals/statistics?from=yesterday").await;
    assert_eq!((status, field(&v)), (400, "from"));
    srv.stop().await;
}

async fn every_caller_is_allowed_or_refused_as_the_referral_rules_say(backend: Backend) {
    let Some((srv, clock)) = start("scope", backend, cst(2026, 11, 24, 10, 0)).await else { return };
    let (_, v) = srv.post(WEST, "/api/v1/referrals", new_referral()).await;
    let id = v["referral"]["referral_id"].as_i64().unwrap();

    // Who may register.
    for (who, status) in [(GRID, 403), (PARTNER, 403), (LEADER, 403), ("no-such-token", 401)] {
        let (got, v) = srv.post(who, "/api/v1/referrals", new_referral()).await;
        assert_eq!(got, status, "{who}: {v}");
    }
    let mut other = new_referral();
    other["post_id"] = json!("p-east");
    let (status, v) = srv.post(WEST, "/api/v1/referrals", other).await;
    assert_eq!((status, field(&v)), (403, "post_id"), "a post officer registers for their own post only");
    let (status, v) = srv.post(ADMIN, "/api/v1/referrals", new_referral()).await;
    assert_eq!((status, field(&v)), (400, "post_id"), "the command centre names the post");
    let mut nowhere = new_referral();
    nowhere["post_id"] = json!("p-nowhere");
    let (status, v) = srv.post(ADMIN, "/api/v1/referrals", nowhere).await;
    assert_eq!((status, field(&v)), (422, "post_id"));

    // Who may list: the east post does not see the west post's.
    assert_eq!(listed(&srv, WEST).await, [id]);
    assert!(listed(&srv, EAST).await.is_empty());
    assert_eq!(listed(&srv, OPERATOR).await, [id]);
    assert_eq!(listed(&srv, ADMIN).await, [id]);
    for (who, status) in [(GRID, 403), (LEADER, 403), ("no-such-token", 401)] {
        assert_eq!(srv.get(who, "/api/v1/referrals").await.0, status, "{who}");
    }
    // Only the judicial office takes a referral up.
    for who in [WEST, OPERATOR, ADMIN, GRID] {
        let (status, _) = srv.post(who, &format!("/api/v1/referrals/{id}/take"), json!({})).await;
        assert_eq!(status, 403, "{who}");
    }
    assert_eq!(srv.post(PARTNER, "/api/v1/referrals/99999/take", json!({})).await.0, 404);
    assert_eq!(srv.post(PARTNER, "/api/v1/referrals/x/take", json!({})).await.0, 404);

    // Bad input, each naming its field.
    let cases = [
        (json!({"business": "divorce", "person": {"name": "张三"}, "summary": "s"}), "business"),
        (json!({"business": "legal_aid", "person": {"name": " "}, "summary": "s"}), "person.name"),
        (
            json!({"business": "legal_aid", "person": {"name": "张三", "phone": "call me"}, "summary": "s"}),
            "person.phone",
        ),
        (json!({"business": "legal_aid", "person": {"name": "张三"}, "summary": ""}), "summary"),
        (json!({"business": "legal_aid", "person": {"name": "张三"}, "summary": "a\u{0}b"}), "summary"),
    ];
    for (body, expected) in cases {
        let (status, v) = srv.post(WEST, "/api/v1/referrals", body.clone()).await;
        assert_eq!((status, field(&v)), (400, expected), "{body}: {v}");
    }
    let (status, v) = srv.get(OPERATOR, "/api/v1/referrals?status=lost").await;
    assert_eq!((status, field(&v)), (400, "status"));
    let (status, v) = srv.get(OPERATOR, "/api/v1/referrals?limit=501").await;
    assert_eq!((status, field(&v)), (400, "limit"));
    let (status, v) = srv.post(PARTNER, &format!("/api/v1/referrals/{id}/done"), json!({"note": ""})).await;
    assert_eq!((status, field(&v)), (400, "note"));
    // The office's statistics count only what it has been handed.
    clock.set(cst(2026, 11, 24, 18, 0));
    srv.post(WEST, "/api/v1/referrals", new_referral()).await;
    let (_, v) = srv.get(PARTNER, "/api/v1/referrals/statistics").await;
    assert_eq!(v["referrals"], 1);
    assert_eq!(srv.get(GRID, "/api/v1/referrals/statistics").await.0, 403);
    srv.stop().await;
}
