//! Shift handovers (交接班) against a server on `127.0.0.1:0`, on both stores: a shift
//! with an open incident, an unacknowledged alert and an unacknowledged route plan gets a
//! sheet listing exactly those; the outgoing person signs it once, the incoming person
//! then accepts it, and nobody else may; who may list, prepare and read, role by role;
//! every step in the audit log.

use liandong_server::auth::Role;
use liandong_server::config::TokenConfig;
use liandong_test_support::{now_ms, on_both_stores, person_token, token, unit_token, Backend, Server};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token";
const OPERATOR: &str = "operator-token";
/// The command centre's outgoing and incoming duty officers (operators who are persons).
const CC_OUT: &str = "cc-out-token";
const CC_IN: &str = "cc-in-token";
/// Post officers of the west post (persons) and of the east post.
const WEST_OUT: &str = "west-out-token";
const WEST_IN: &str = "west-in-token";
const EAST: &str = "east-token";
const LEADER: &str = "leader-team-1";
const GRID: &str = "grid-token";
const PARTNER: &str = "partner-token";
/// A registered phone's key.
const PHONE: &str = "phone-key-0001";
const UNKNOWN: &str = "no-such-token";

fn tokens() -> Vec<TokenConfig> {
    vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        person_token(CC_OUT, Role::Operator, None, "cc_out"),
        person_token(CC_IN, Role::Operator, None, "cc_in"),
        person_token(WEST_OUT, Role::PostOfficer, Some("p-west"), "west_out"),
        person_token(WEST_IN, Role::PostOfficer, Some("p-west"), "west_in"),
        person_token(EAST, Role::PostOfficer, Some("p-east"), "east_officer"),
        unit_token(LEADER, Role::PatrolLeader, "team-1"),
        token(GRID, Role::GridMember),
        token(PARTNER, Role::Partner),
    ]
}

/// A server with the persons of the tokens above and two phones of team 1; None when
/// PostGIS is to be skipped.
async fn start(name: &str, backend: Backend) -> Option<Server> {
    let dir = liandong_test_support::fresh_dir(&format!("handovers-{name}-{backend:?}"));
    let mut config = liandong_test_support::config(dir);
    config.tokens = tokens();
    backend.configure(&mut config, &format!("handovers_{name}")).await?;
    let srv = Server::start(config).await;
    for (id, name, role, kind, unit) in [
        ("cc_out", "张值班", "operator", "command_centre", None),
        ("cc_in", "李接班", "operator", "command_centre", None),
        ("west_out", "王警官", "post_officer", "post", Some("p-west")),
        ("west_in", "赵警官", "post_officer", "post", Some("p-west")),
        ("east_officer", "钱警官", "post_officer", "post", Some("p-east")),
    ] {
        srv.admin(
            "/api/v1/people",
            json!({"person_id": id, "name": name, "roles": [role], "unit_kind": kind, "unit_id": unit}),
        )
        .await;
    }
    for (device, key) in [("866001", PHONE), ("866002", "phone-key-0002")] {
        srv.admin(
            "/api/v1/devices",
            json!({"device_id": device, "name": "phone", "kind": "patrol_member", "unit_id": "team-1", "key": key}),
        )
        .await;
    }
    Some(srv)
}

/// A phone presses SOS in the west post's area: a priority-1 alert. Returns its number.
async fn sos(srv: &Server, device: &str, key: &str) -> i64 {
    let url =
        format!("{}/?id={device}&key={key}&lat=30.6&lon=107.1&timestamp={}&accuracy=8&alarm=sos", srv.url, now_ms());
    let r = srv.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for _ in 0..100 {
        let (_, v) = srv.get(OPERATOR, "/api/v1/history/alerts").await;
        let found = v["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["data"]["rule"] == "sos" && a["data"].to_string().contains(device));
        if let Some(seq) = found.and_then(|a| a["data"]["seq"].as_i64()) {
            return seq;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no SOS alert of {device}");
}

fn shift(kind: &str, unit: Option<&str>, out: &str, inc: &str) -> Value {
    let now = now_ms();
    json!({"unit_kind": kind, "unit_id": unit, "from_ms": now - 8 * 3_600_000, "to_ms": now + 60_000,
           "outgoing_person_id": out, "incoming_person_id": inc})
}

/// The ids of one section of a sheet, by the field that names its items.
fn ids(sheet: &Value, section: &str, key: &str) -> Vec<i64> {
    sheet[section]["items"].as_array().unwrap().iter().map(|i| i[key].as_i64().unwrap()).collect()
}

/// The field an error answer names.
fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

on_both_stores!(a_sheet_lists_the_open_items_and_is_signed_then_accepted_by_its_two_persons);
on_both_stores!(every_caller_is_allowed_or_refused_as_the_handover_rules_say);
on_both_stores!(a_prepare_names_a_unit_of_the_map_and_two_active_persons_of_it);

async fn a_sheet_lists_the_open_items_and_is_signed_then_accepted_by_its_two_persons(backend: Backend) {
    let Some(srv) = start("sheet", backend).await else { return };
    // The shift: an incident opened in the west post's area, another one opened and
    // closed, two SOS alerts of which one is acknowledged, and a plan team 1 has not
    // acknowledged.
    let (s, open) = srv
        .post(OPERATOR, "/api/v1/incidents", json!({"title": "村口纠纷", "lon": 107.1, "lat": 30.65, "priority": 2}))
        .await;
    assert_eq!(s, 201, "{open}");
    let open_id = open["incident"]["incident_id"].as_i64().unwrap();
    let (_, done) =
        srv.post(OPERATOR, "/api/v1/incidents", json!({"title": "走失老人", "lon": 107.3, "lat": 30.7})).await;
    let done_id = done["incident"]["incident_id"].as_i64().unwrap();
    let (s, v) = srv.post(OPERATOR, &format!("/api/v1/incidents/{done_id}/actions"), json!({"action": "cancel"})).await;
    assert_eq!(s, 200, "{v}");
    let unacked = sos(&srv, "866001", PHONE).await;
    let acked = sos(&srv, "866002", "phone-key-0002").await;
    let (s, v) = srv.post(OPERATOR, &format!("/api/v1/alerts/{acked}/ack"), json!({"note": "已联系"})).await;
    assert_eq!(s, 200, "{v}");
    let plan = json!({"kind": "manual", "reason": "夜间加强巡逻", "coordinates": [[107.1, 30.7], [107.1, 30.6]]});
    let (s, v) = srv.post(OPERATOR, "/api/v1/teams/team-1/plans", plan).await;
    assert_eq!(s, 201, "{v}");
    let plan_seq = v["plan"]["plan_seq"].as_i64().unwrap();

    let (s, v) = srv.post(OPERATOR, "/api/v1/handovers", shift("command_centre", None, "cc_out", "cc_in")).await;
    assert_eq!(s, 201, "{v}");
    let h = &v["handover"];
    let id = h["handover_id"].as_i64().unwrap();
    assert_eq!((h["state"].as_str(), h["unit_kind"].as_str()), (Some("prepared"), Some("command_centre")));
    let sheet = &h["sheet"];
    let names = (sheet["unit_name"].as_str(), sheet["outgoing_name"].as_str(), sheet["incoming_name"].as_str());
    assert_eq!(names, (Some("指挥中心"), Some("张值班"), Some("李接班")), "the sheet names the unit and both persons");
    assert_eq!(ids(sheet, "open_incidents", "incident_id"), [open_id], "{sheet}");
    assert_eq!(sheet["open_incidents"]["items"][0]["state"], "new");
    assert_eq!(ids(sheet, "unacked_alerts", "seq"), [unacked], "the acknowledged SOS is not handed over");
    assert_eq!(ids(sheet, "unacked_plans", "plan_seq"), [plan_seq]);
    assert_eq!(ids(sheet, "escalated_incidents", "incident_id"), Vec::<i64>::new());
    let events: Vec<(&str, i64)> = sheet["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["id"].as_i64().unwrap()))
        .collect();
    for want in [
        ("incident_opened", open_id),
        ("incident_opened", done_id),
        ("incident_cancelled", done_id),
        ("sos", unacked),
        ("sos", acked),
    ] {
        assert!(events.contains(&want), "{want:?} among the shift's events: {events:?}");
    }

    // The west post's sheet: its own area and team only (the cancelled incident was east).
    let (s, v) = srv.post(WEST_OUT, "/api/v1/handovers", shift("post", Some("p-west"), "west_out", "west_in")).await;
    assert_eq!(s, 201, "a person of the post prepares its sheet: {v}");
    let west = &v["handover"]["sheet"];
    assert_eq!(ids(west, "open_incidents", "incident_id"), [open_id]);
    assert_eq!(ids(west, "unacked_plans", "plan_seq"), [plan_seq], "its team's plan");
    assert_eq!(west["unacked_plans"]["items"][0]["team_name"], "西镇巡防队", "named as in the map");
    assert!(!west.to_string().contains("走失老人"), "another post's incident is not on it: {west}");
    assert_eq!(west["unit_name"], "西警务室");

    // Accepting before signing, and anyone but the outgoing person signing, are refused.
    let path = |step: &str| format!("/api/v1/handovers/{id}/{step}");
    let (s, v) = srv.post(CC_IN, &path("accept"), json!({})).await;
    assert_eq!((s, field(&v)), (409, "handover"), "not signed yet: {v}");
    for who in [CC_IN, OPERATOR, ADMIN] {
        assert_eq!(srv.post(who, &path("sign"), json!({})).await.0, 403, "{who} is not the outgoing person");
    }
    let (s, v) = srv.post(CC_OUT, &path("sign"), json!({"note": "一起纠纷待处置"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["handover"]["state"].as_str(), v["handover"]["signed_by"].as_str()),
        (Some("signed"), Some("cc_out"))
    );
    assert_eq!(v["handover"]["sign_note"], "一起纠纷待处置");
    let (s, v) = srv.post(CC_OUT, &path("sign"), json!({})).await;
    assert_eq!((s, field(&v)), (409, "handover"), "signed once: {v}");
    assert_eq!(srv.post(CC_OUT, &path("accept"), json!({})).await.0, 403, "the outgoing person does not accept");
    let (s, v) = srv.post(CC_IN, &path("accept"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["handover"]["state"].as_str(), v["handover"]["accepted_by"].as_str()),
        (Some("accepted"), Some("cc_in"))
    );
    assert_eq!(srv.post(CC_IN, &path("accept"), json!({})).await.0, 409, "accepted once");

    // The sheet is kept as prepared, listed with its state, and every step is audited.
    let (_, v) = srv.get(OPERATOR, &format!("/api/v1/handovers/{id}")).await;
    assert_eq!(v["handover"]["sheet"], *sheet, "the sheet does not change after preparation");
    let (_, v) = srv.get(OPERATOR, "/api/v1/handovers?state=accepted").await;
    assert_eq!(
        v["handovers"].as_array().unwrap().iter().map(|h| h["handover_id"].as_i64().unwrap()).collect::<Vec<_>>(),
        [id]
    );
    let (_, log) = srv.get(ADMIN, &format!("/api/v1/audit?subject=handover:{id}")).await;
    let steps: Vec<(&str, &str)> = log["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("handover_accepted", CC_IN), ("handover_signed", CC_OUT), ("handover_prepared", OPERATOR)],
        "{log}"
    );
    srv.stop().await;
}

async fn every_caller_is_allowed_or_refused_as_the_handover_rules_say(backend: Backend) {
    let Some(srv) = start("roles", backend).await else { return };
    let (_, v) = srv.post(ADMIN, "/api/v1/handovers", shift("command_centre", None, "cc_out", "cc_in")).await;
    let cc = v["handover"]["handover_id"].as_i64().unwrap();
    let (_, v) = srv.post(ADMIN, "/api/v1/handovers", shift("post", Some("p-west"), "west_out", "west_in")).await;
    let west = v["handover"]["handover_id"].as_i64().unwrap();
    // (caller, list status, ids listed, read cc, read west, prepare cc, prepare west)
    type Row = (&'static str, u16, Vec<i64>, u16, u16, u16, u16);
    let expected: Vec<Row> = vec![
        (ADMIN, 200, vec![west, cc], 200, 200, 201, 201),
        (OPERATOR, 200, vec![west, cc], 200, 200, 201, 201),
        (CC_OUT, 200, vec![west, cc], 200, 200, 201, 201),
        (WEST_OUT, 200, vec![west], 404, 200, 403, 201),
        (EAST, 200, vec![], 404, 404, 403, 403),
        (LEADER, 403, vec![], 404, 404, 403, 403),
        (GRID, 403, vec![], 404, 404, 403, 403),
        (PARTNER, 403, vec![], 404, 404, 403, 403),
        (PHONE, 401, vec![], 401, 401, 401, 401),
        (UNKNOWN, 401, vec![], 401, 401, 401, 401),
    ];
    for (who, list, listed, read_cc, read_west, prep_cc, prep_west) in expected {
        let (s, v) = srv.get(who, "/api/v1/handovers").await;
        let got: Vec<i64> =
            v["handovers"].as_array().into_iter().flatten().map(|h| h["handover_id"].as_i64().unwrap()).collect();
        // Each allowed prepare adds a sheet: compare only the two made above.
        let got: Vec<i64> = got.into_iter().filter(|i| *i == cc || *i == west).collect();
        assert_eq!((s, got), (list, listed), "{who} lists");
        assert_eq!(srv.get(who, &format!("/api/v1/handovers/{cc}")).await.0, read_cc, "{who} reads the centre's");
        assert_eq!(
            srv.get(who, &format!("/api/v1/handovers/{west}")).await.0,
            read_west,
            "{who} reads the west post's"
        );
        let s = srv.post(who, "/api/v1/handovers", shift("command_centre", None, "cc_out", "cc_in")).await.0;
        assert_eq!(s, prep_cc, "{who} prepares the centre's");
        let s = srv.post(who, "/api/v1/handovers", shift("post", Some("p-west"), "west_out", "west_in")).await.0;
        assert_eq!(s, prep_west, "{who} prepares the west post's");
    }
    // A post officer's list filtered to another unit finds nothing rather than it.
    let (s, v) = srv.get(WEST_OUT, "/api/v1/handovers?unit_kind=command_centre").await;
    assert_eq!((s, v["handovers"].as_array().map(Vec::len)), (200, Some(0)));
    // The incoming person of the west post may read it, not sign it; a stranger to it
    // cannot even find it to sign.
    assert_eq!(srv.post(WEST_IN, &format!("/api/v1/handovers/{west}/sign"), json!({})).await.0, 403);
    assert_eq!(srv.post(EAST, &format!("/api/v1/handovers/{west}/sign"), json!({})).await.0, 404);
    assert_eq!(srv.post(PHONE, &format!("/api/v1/handovers/{west}/sign"), json!({})).await.0, 401);
    let anonymous = srv.http.get(format!("{}/api/v1/handovers", srv.url)).send().await.unwrap().status().as_u16();
    assert_eq!(anonymous, 401);
    srv.stop().await;
}

async fn a_prepare_names_a_unit_of_the_map_and_two_active_persons_of_it(backend: Backend) {
    let Some(srv) = start("checks", backend).await else { return };
    let mut deactivated = json!({"active": false});
    let r =
        srv.http.patch(format!("{}/api/v1/people/east_officer", srv.url)).bearer_auth(ADMIN).json(&deactivated).send();
    assert_eq!(r.await.unwrap().status(), 200);
    deactivated = shift("post", Some("p-east"), "east_officer", "west_in");
    let now = now_ms();
    let cases: [(Value, u16, &str); 9] = [
        (shift("post", None, "west_out", "west_in"), 400, "unit_id"),
        (shift("command_centre", Some("p-west"), "cc_out", "cc_in"), 400, "unit_id"),
        (shift("county", None, "cc_out", "cc_in"), 400, "unit_kind"),
        (shift("post", Some("p-north"), "west_out", "west_in"), 422, "unit_id"),
        (shift("post", Some("p-west"), "west_out", "west_out"), 422, "incoming_person_id"),
        (shift("post", Some("p-west"), "west_out", "cc_in"), 422, "incoming_person_id"),
        (shift("post", Some("p-west"), "nobody", "west_in"), 422, "outgoing_person_id"),
        (deactivated, 422, "outgoing_person_id"),
        (
            json!({"unit_kind": "command_centre", "from_ms": now, "to_ms": now - 1,
                   "outgoing_person_id": "cc_out", "incoming_person_id": "cc_in"}),
            400,
            "to_ms",
        ),
    ];
    for (body, status, named) in cases {
        let (s, v) = srv.post(ADMIN, "/api/v1/handovers", body.clone()).await;
        assert_eq!((s, field(&v)), (status, named), "{body}: {v}");
    }
    let (s, v) = srv.get(ADMIN, "/api/v1/handovers?limit=0").await;
    assert_eq!((s, field(&v)), (400, "limit"));
    let (s, v) = srv.get(ADMIN, "/api/v1/handovers?state=lost").await;
    assert_eq!((s, field(&v)), (400, "state"));
    assert_eq!(srv.get(ADMIN, "/api/v1/handovers").await.1["handovers"], json!([]), "nothing refused was kept");
    // One sheet per unit and shift: the same shift's end seen twice prepares it once.
    let once = shift("post", Some("p-west"), "west_out", "west_in");
    assert_eq!(srv.post(ADMIN, "/api/v1/handovers", once.clone()).await.0, 201);
    let (s, v) = srv.post(OPERATOR, "/api/v1/handovers", once).await;
    assert_eq!((s, field(&v)), (409, "to_ms"), "{v}");
    assert_eq!(srv.get(ADMIN, "/api/v1/handovers").await.1["handovers"].as_array().map(Vec::len), Some(1));
    srv.stop().await;
}
