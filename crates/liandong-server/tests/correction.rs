//! Community correction (社区矫正) against a server on `127.0.0.1:0`, on both stores: the
//! police (an operator, the post officer of the person's post) record sanctions, the
//! judicial office reads them, and the audit log shows every read; who may read a
//! tagged person, role by role and post by post; refusals naming the field; a read of a
//! tagged person's zone alert through the history is audited.

use liandong_server::auth::Role;
use liandong_server::config::TokenConfig;
use liandong_test_support::{now_ms, now_s, on_both_stores, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
/// The west post's officer, whose jurisdiction the subjects live in, and the east post's.
const WEST: &str = "west-officer";
const EAST: &str = "east-officer";
/// A post officer's token bound to no post.
const NO_POST: &str = "officer-without-post";
/// The judicial office.
const PARTNER: &str = "judicial-office";
const GRID: &str = "grid-token";
const LEADER: &str = "leader-team-1";
const UNKNOWN: &str = "no-such-token";

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        unit_token(WEST, Role::PostOfficer, "p-west"),
        unit_token(EAST, Role::PostOfficer, "p-east"),
        token(NO_POST, Role::PostOfficer),
        token(PARTNER, Role::Partner),
        unit_token(GRID, Role::GridMember, "g-west"),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
    ]
}

async fn start(name: &str, backend: Backend) -> Option<Server> {
    let dir = liandong_test_support::fresh_dir(&format!("correction-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    backend.configure(&mut config, &format!("correction_{name}")).await?;
    Some(Server::start(config).await)
}

/// Registers a tagged person of `post` whose record names `roles`.
async fn tag(srv: &Server, id: &str, post: Option<&str>, roles: &[&str]) {
    srv.admin("/api/v1/tagged", json!({"person_id": id, "name": "社区矫正对象", "roles": roles, "post_id": post}))
        .await;
}

/// The field an error answer names.
fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

/// The audit entries about `subject`, as (actor, action), newest first.
async fn audit_of(srv: &Server, subject: &str) -> Vec<(String, String)> {
    let (status, v) = srv.get(ADMIN, &format!("/api/v1/audit?subject={subject}")).await;
    assert_eq!(status, 200, "{v}");
    v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_owned(), e["action"].as_str().unwrap().to_owned()))
        .collect()
}

fn entry(actor: &str, action: &str) -> (String, String) {
    (actor.to_owned(), action.to_owned())
}

fn sanction(kind: &str, days_ago: i64) -> Value {
    json!({"kind": kind, "decided": now_ms() - days_ago * 86_400_000, "authority": "大竹县公安局", "note": "吸毒"})
}

on_both_stores!(the_police_record_sanctions_and_the_judicial_office_reads_them_on_record);
on_both_stores!(a_tagged_person_is_read_by_the_roles_on_the_record_and_the_officers_of_its_post);
on_both_stores!(a_sanction_or_a_person_with_a_bad_field_is_refused_naming_it);
on_both_stores!(a_tagged_persons_zone_alert_read_through_the_history_is_on_record);
on_both_stores!(a_tagged_persons_zone_alert_on_the_live_feed_is_on_record_live_and_replayed);

async fn the_police_record_sanctions_and_the_judicial_office_reads_them_on_record(backend: Backend) {
    let Some(srv) = start("record", backend).await else { return };
    tag(&srv, "c-1", Some("p-west"), &["partner", "operator", "post_officer"]).await;

    let (status, v) =
        srv.post(OPERATOR, "/api/v1/tagged/c-1/sanctions", sanction("administrative_detention", 30)).await;
    assert_eq!(status, 201, "{v}");
    let first = v["sanction"].clone();
    assert_eq!(first["person_id"], "c-1");
    assert_eq!(first["kind"], "administrative_detention");
    assert_eq!(first["recorded_by"], OPERATOR);
    assert_eq!(first["authority"], "大竹县公安局");
    assert!(first["decided"].as_str().is_some_and(|t| t.ends_with('Z')), "{first}");
    let (status, v) = srv
        .post(
            WEST,
            "/api/v1/tagged/c-1/sanctions",
            json!({"kind": "case_filed", "decided": "2026-01-05T10:00:00+08:00", "authority": " 刑侦大队 "}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let second = v["sanction"].clone();
    assert_eq!((second["recorded_by"].as_str(), second["authority"].as_str()), (Some(WEST), Some("刑侦大队")));
    assert_eq!(second["decided_ms"], 1_767_578_400_000i64, "China time, as given");

    // Not the police, or not this person's post: as if there were no such person.
    for (caller, want) in [(EAST, 404), (NO_POST, 404), (PARTNER, 403), (GRID, 403), (LEADER, 403), (UNKNOWN, 401)] {
        let (status, v) = srv.post(caller, "/api/v1/tagged/c-1/sanctions", sanction("case_filed", 1)).await;
        assert_eq!(status, want, "{caller}: {v}");
    }

    // The judicial office reads them, newest first, in pages.
    let (status, v) = srv.get(PARTNER, "/api/v1/tagged/c-1/sanctions").await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&Value> = v["sanctions"].as_array().unwrap().iter().map(|s| &s["sanction_id"]).collect();
    assert_eq!(ids, [&second["sanction_id"], &first["sanction_id"]]);
    assert_eq!(v["next_after"], Value::Null);
    let (_, page) = srv.get(PARTNER, "/api/v1/tagged/c-1/sanctions?limit=1").await;
    assert_eq!(page["sanctions"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_i64().unwrap();
    let (_, rest) = srv.get(PARTNER, &format!("/api/v1/tagged/c-1/sanctions?limit=1&after={after}")).await;
    assert_eq!(rest["sanctions"][0]["sanction_id"], first["sanction_id"]);

    // Every record and every read is in the audit log under the person.
    let log = audit_of(&srv, "c-1").await;
    let reads = log.iter().filter(|e| **e == entry(PARTNER, "tagged_person_sanctions_read")).count();
    assert_eq!(reads, 3, "one per request: {log:?}");
    assert!(log.contains(&entry(OPERATOR, "sanction_recorded")), "{log:?}");
    assert!(log.contains(&entry(WEST, "sanction_recorded")), "{log:?}");
    assert!(log.contains(&entry(ADMIN, "tagged_person_saved")), "{log:?}");
    assert_eq!(log.iter().filter(|e| e.1 == "sanction_recorded").count(), 2, "refusals record nothing: {log:?}");
    srv.stop().await;
}

async fn a_tagged_person_is_read_by_the_roles_on_the_record_and_the_officers_of_its_post(backend: Backend) {
    let Some(srv) = start("read", backend).await else { return };
    tag(&srv, "c-1", Some("p-west"), &["partner", "operator", "post_officer"]).await;
    // The police's only: the judicial office is not named.
    tag(&srv, "c-2", Some("p-west"), &["operator", "post_officer"]).await;
    // Of no post (registered before posts were given): no post officer's.
    tag(&srv, "c-3", None, &["partner", "post_officer"]).await;
    tag(&srv, "c-4", Some("p-east"), &["partner", "post_officer"]).await;

    let rows: [(&str, [u16; 4]); 8] = [
        (ADMIN, [200, 200, 200, 200]),
        (OPERATOR, [200, 200, 404, 404]),
        (PARTNER, [200, 404, 200, 200]),
        (WEST, [200, 200, 404, 404]),
        (EAST, [404, 404, 404, 200]),
        (NO_POST, [404, 404, 404, 404]),
        (GRID, [403, 403, 403, 403]),
        (LEADER, [403, 403, 403, 403]),
    ];
    for (caller, want) in rows {
        for (person, want) in ["c-1", "c-2", "c-3", "c-4"].into_iter().zip(want) {
            let (status, v) = srv.get(caller, &format!("/api/v1/tagged/{person}")).await;
            assert_eq!(status, want, "{caller} reads {person}: {v}");
            if status == 200 {
                assert_eq!(v["tagged"]["person_id"], person);
            }
            let (status, v) = srv.get(caller, &format!("/api/v1/tagged/{person}/sanctions")).await;
            assert_eq!(status, want, "{caller} reads {person}'s sanctions: {v}");
        }
    }
    let (status, _) = srv.get(ADMIN, "/api/v1/tagged/nobody").await;
    assert_eq!(status, 404, "absent is answered the same");

    // The list: the same persons, audited as one entry filed under each.
    for (caller, want) in [
        (ADMIN, &["c-1", "c-2", "c-3", "c-4"][..]),
        (OPERATOR, &["c-1", "c-2"][..]),
        (PARTNER, &["c-1", "c-3", "c-4"][..]),
        (WEST, &["c-1", "c-2"][..]),
        (EAST, &["c-4"][..]),
        (NO_POST, &[][..]),
    ] {
        let (status, v) = srv.get(caller, "/api/v1/tagged").await;
        assert_eq!(status, 200, "{caller}: {v}");
        let ids: Vec<&str> = v["tagged"].as_array().unwrap().iter().map(|p| p["person_id"].as_str().unwrap()).collect();
        assert_eq!(ids, want, "{caller}");
    }
    let (_, page) = srv.get(ADMIN, "/api/v1/tagged?limit=3").await;
    assert_eq!(page["next_after"], "c-3");
    let (_, rest) = srv.get(ADMIN, "/api/v1/tagged?limit=3&after=c-3").await;
    assert_eq!(rest["tagged"][0]["person_id"], "c-4");
    assert_eq!(rest["tagged"].as_array().unwrap().len(), 1);
    for (caller, want) in [(GRID, 403), (LEADER, 403), (UNKNOWN, 401)] {
        assert_eq!(srv.get(caller, "/api/v1/tagged").await.0, want, "{caller}");
    }
    let (status, v) = srv.get(ADMIN, "/api/v1/tagged?limit=0").await;
    assert_eq!((status, field(&v)), (400, "limit"));

    // "Who read c-2": the west officer's list (filed under c-2) and one read of it.
    let log = audit_of(&srv, "c-2").await;
    let west = log.iter().filter(|e| **e == entry(WEST, "tagged_person_read")).count();
    assert_eq!(west, 2, "the list and the record: {log:?}");
    assert!(!log.iter().any(|e| e.0 == PARTNER || e.0 == EAST), "no read by whom it was hidden from: {log:?}");
    // The east officer's list named c-4 only.
    assert!(audit_of(&srv, "c-4").await.contains(&entry(EAST, "tagged_person_read")));
    srv.stop().await;
}

async fn a_sanction_or_a_person_with_a_bad_field_is_refused_naming_it(backend: Backend) {
    let Some(srv) = start("refusals", backend).await else { return };
    tag(&srv, "c-1", Some("p-west"), &["partner", "operator", "post_officer"]).await;
    let future = now_ms() + 86_400_000;
    for (body, want) in [
        (json!({"kind": "fine", "decided": now_ms(), "authority": "县公安局"}), "kind"),
        (json!({"kind": "case_filed", "decided": future, "authority": "县公安局"}), "decided"),
        (json!({"kind": "case_filed", "decided": "yesterday", "authority": "县公安局"}), "decided"),
        (json!({"kind": "case_filed", "decided": true, "authority": "县公安局"}), "decided"),
        (json!({"kind": "case_filed", "decided": now_ms(), "authority": "  "}), "authority"),
        (json!({"kind": "case_filed", "decided": now_ms(), "authority": "x".repeat(101)}), "authority"),
        (json!({"kind": "case_filed", "decided": now_ms(), "authority": "县公安局", "note": "x".repeat(2001)}), "note"),
    ] {
        let (status, v) = srv.post(WEST, "/api/v1/tagged/c-1/sanctions", body.clone()).await;
        assert_eq!((status, field(&v)), (400, want), "{body}: {v}");
    }
    let (status, v) = srv.get(PARTNER, "/api/v1/tagged/c-1/sanctions").await;
    assert_eq!((status, v["sanctions"].as_array().map(Vec::len)), (200, Some(0)), "nothing recorded");
    let (status, v) = srv.get(PARTNER, "/api/v1/tagged/c-1/sanctions?after=x").await;
    assert_eq!((status, field(&v)), (400, "after"));

    let (status, v) = srv
        .post(
            ADMIN,
            "/api/v1/tagged",
            json!({"person_id": "c-9", "name": "某", "post_id": "p-north", "roles": ["partner"]}),
        )
        .await;
    assert_eq!((status, field(&v)), (400, "post_id"), "{v}");
    let (status, v) =
        srv.post(ADMIN, "/api/v1/tagged", json!({"person_id": "c-9", "name": "某", "roles": ["grid_member"]})).await;
    assert_eq!((status, field(&v)), (400, "roles"), "{v}");
    assert_eq!(srv.get(ADMIN, "/api/v1/tagged/c-9").await.0, 404, "nothing saved");
    srv.stop().await;
}

/// A tagged person `c-1` of the west post with a monitoring phone, whose record names
/// operator, partner and post_officer, and who may never be inside a school fence.
async fn tag_with_phone(srv: &Server) {
    srv.admin(
        "/api/v1/devices",
        json!({"device_id": "866900", "name": "monitor", "kind": "other", "key": "tagged-phone-key"}),
    )
    .await;
    // Inside the school fence at any hour is a break.
    srv.admin(
        "/api/v1/tagged",
        json!({"person_id": "c-1", "name": "某", "post_id": "p-west", "device_id": "866900",
               "roles": ["operator", "partner", "post_officer"],
               "zone_rules": [{"fence_kind": "school", "from": "00:00", "to": "00:00"}]}),
    )
    .await;
}

/// The phone reports from inside the school fence: a zone break.
async fn break_the_zone(srv: &Server) {
    let url =
        format!("{}/?id=866900&key=tagged-phone-key&lat=30.7&lon=107.1&timestamp={}&accuracy=8", srv.url, now_s());
    let r = srv.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn a_tagged_persons_zone_alert_read_through_the_history_is_on_record(backend: Backend) {
    let Some(srv) = start("history", backend).await else { return };
    tag_with_phone(&srv).await;
    break_the_zone(&srv).await;

    let mut seq = None;
    for _ in 0..100 {
        let (_, v) = srv.get(OPERATOR, "/api/v1/history/alerts").await;
        let found = v["alerts"].as_array().into_iter().flatten().find(|a| a["data"]["rule"] == "tagged_zone");
        if let Some(a) = found {
            seq = a["data"]["seq"].as_i64();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seq = seq.expect("a tagged_zone alert in the history");
    let log = audit_of(&srv, "c-1").await;
    assert!(log.contains(&entry(OPERATOR, "tagged_person_alert_read")), "{log:?}");
    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=c-1").await;
    let read = v["audit"].as_array().unwrap().iter().find(|e| e["action"] == "tagged_person_alert_read").unwrap();
    assert!(read["detail"].as_str().unwrap().contains(&seq.to_string()), "names the alert: {read}");

    // A post officer named on the record reads the record, not the live alerts (which
    // cannot say whose post they are); a reader it is hidden from leaves no entry.
    let (_, v) = srv.get(WEST, "/api/v1/history/alerts").await;
    assert!(!v["alerts"].as_array().unwrap().iter().any(|a| a["data"]["rule"] == "tagged_zone"), "{v}");
    let (_, v) = srv.get(PARTNER, "/api/v1/history/alerts").await;
    assert!(v["alerts"].as_array().unwrap().iter().any(|a| a["data"]["rule"] == "tagged_zone"), "{v}");
    let log = audit_of(&srv, "c-1").await;
    assert!(log.contains(&entry(PARTNER, "tagged_person_alert_read")), "{log:?}");
    assert!(!log.iter().any(|e| e.0 == WEST), "{log:?}");

    // The command centre's handover sheet lists it unacknowledged: a read of it, too.
    for id in ["cc_out", "cc_in"] {
        srv.admin(
            "/api/v1/people",
            json!({"person_id": id, "name": id, "roles": ["operator"], "unit_kind": "command_centre"}),
        )
        .await;
    }
    let now = now_ms();
    let shift = json!({"unit_kind": "command_centre", "from_ms": now - 3_600_000, "to_ms": now + 60_000,
                       "outgoing_person_id": "cc_out", "incoming_person_id": "cc_in"});
    let (status, v) = srv.post(OPERATOR, "/api/v1/handovers", shift).await;
    assert_eq!(status, 201, "{v}");
    let listed: Vec<i64> = v["handover"]["sheet"]["unacked_alerts"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["seq"].as_i64())
        .collect();
    assert!(listed.contains(&seq), "{v}");
    let id = v["handover"]["handover_id"].as_i64().unwrap();
    assert_eq!(srv.get(ADMIN, &format!("/api/v1/handovers/{id}")).await.0, 200);
    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=c-1").await;
    let sheets: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tagged_person_alert_read" && e["detail"].as_str().unwrap().contains("handover"))
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(sheets, [ADMIN, OPERATOR], "prepared, then read: {v}");
    srv.stop().await;
}

async fn a_tagged_persons_zone_alert_on_the_live_feed_is_on_record_live_and_replayed(backend: Backend) {
    use liandong_test_support::feed::{next_of, until};
    let Some(srv) = start("feed", backend).await else { return };
    tag_with_phone(&srv).await;
    let mut partner = srv.ws(PARTNER).await;
    let mut west = srv.ws(WEST).await;
    for ws in [&mut partner, &mut west] {
        assert!(next_of(ws, "snapshot", 5000).await.is_some());
    }
    break_the_zone(&srv).await;
    let alert = loop {
        let a = next_of(&mut partner, "alert", 5000).await.expect("the zone alert on the partner's feed");
        if a["data"]["rule"] == "tagged_zone" {
            break a;
        }
    };
    let seq = alert["seq"].as_i64().or_else(|| alert["data"]["seq"].as_i64()).unwrap();
    let log = audit_of(&srv, "c-1").await;
    assert!(log.contains(&entry(PARTNER, "tagged_person_alert_read")), "{log:?}");

    // Replayed from the store to a client that reconnects from before it: on record too.
    let mut operator = srv.live(&format!("token={OPERATOR}&since={}", seq - 1)).await;
    let replayed = until(&mut operator, "alert", 5000).await;
    assert!(replayed.iter().any(|m| m["data"]["rule"] == "tagged_zone"), "{replayed:?}");
    let (_, v) = srv.get(ADMIN, "/api/v1/audit?subject=c-1").await;
    let reads: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tagged_person_alert_read")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert!(reads.iter().any(|d| d.contains("live feed (replay)") && d.contains("operator")), "{reads:?}");
    assert!(reads.iter().any(|d| d.contains("live feed (live)") && d.contains("partner")), "{reads:?}");
    // The west post's officer was not told of it, so there is nothing to record.
    assert!(!audit_of(&srv, "c-1").await.iter().any(|e| e.0 == WEST));
    drop((partner, west, operator));
    srv.stop().await;
}
