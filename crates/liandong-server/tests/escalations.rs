//! Escalations that reach people, end to end on both stores: a late step notifies the
//! post's leader on duty on their own websockets (their token's and their bound phone's),
//! only that person acknowledges it, and the acknowledgement stops the next level;
//! unacknowledged, the command centre's duty officer gets it, and operators' screens
//! see it; nobody on duty at the post sends it straight to the duty officer, saying so;
//! a reconnecting client gets its escalations again.
//!
//! A step is made late the way the other escalation tests do it: the escalation tick
//! (`IncidentCommand::Tick`) is submitted with explicit times after the step, while the
//! server's own ticker (real time) has nothing due.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use liandong_server::auth::Role;
use liandong_server::sequencer::IncidentCommand::Tick;
use liandong_server::App;
use liandong_test_support::feed::{next_of, until};
use liandong_test_support::{now_ms, on_both_stores, person_token, token, unit_token, Backend, Ws};
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "esc-admin";
const OPERATOR: &str = "esc-operator";
/// The leader of post p-west, acting for person `lead-w`.
const LEAD: &str = "esc-lead-w";
/// Another officer of p-west.
const OTHER: &str = "esc-off-w";
/// The command centre's duty officer, acting for person `cc-1`.
const CENTRE: &str = "esc-cc-1";
/// The east post's officer, who is on no roster.
const EAST: &str = "esc-east";
/// The key of team-1's phone, which incidents are dispatched to (team-1's post: p-west).
const TEAM_PHONE: &str = "esc-team-phone-0001";
/// The key of the leader's own phone, bound to person `lead-w`.
const LEAD_PHONE: &str = "esc-lead-phone-0001";
/// The key of a phone on p-east, bound to nobody.
const EAST_PHONE: &str = "esc-east-phone-0001";

/// A server on `backend`: the router driven in process for HTTP and the escalation tick,
/// and the same router served on `127.0.0.1:0` for the websockets.
struct Harness {
    app: App,
    live_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start(name: &str, backend: Backend) -> Option<Harness> {
        let dir = liandong_test_support::fresh_dir(&format!("escalations-{name}-{backend:?}"));
        let mut config = liandong_test_support::config(dir);
        config.tokens = vec![
            token(ADMIN, Role::Admin),
            token(OPERATOR, Role::Operator),
            person_token(LEAD, Role::PostOfficer, Some("p-west"), "lead-w"),
            person_token(OTHER, Role::PostOfficer, Some("p-west"), "off-w"),
            person_token(CENTRE, Role::Operator, None, "cc-1"),
            unit_token(EAST, Role::PostOfficer, "p-east"),
        ];
        backend.configure(&mut config, &format!("escalations_{name}")).await?;
        let limits = liandong_server::serve::prepare(&config.http);
        let app = App::build(config).await.expect("the server builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_url = format!("ws://{}/api/v1/live", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = app.router.clone();
        let served = tokio::spawn(async move {
            let signal = async move {
                let _ = stopped.await;
            };
            liandong_server::serve::serve(listener, router, limits, None, signal).await.expect("serves");
        });
        let h = Harness { app, live_url, stop: Some(stop), served };
        h.setup().await;
        Some(h)
    }

    /// People, phones and the roster: p-west's leader and the command centre's duty
    /// officer are on duty for the next hours; p-east has nobody.
    async fn setup(&self) {
        for (id, name, roles, kind, unit) in [
            ("lead-w", "西所长", json!(["post_officer"]), "post", Some("p-west")),
            ("off-w", "西民警", json!(["post_officer"]), "post", Some("p-west")),
            ("cc-1", "值班员", json!(["operator"]), "command_centre", None),
        ] {
            let p = json!({"person_id": id, "name": name, "roles": roles, "unit_kind": kind, "unit_id": unit});
            self.ok(ADMIN, "/api/v1/people", p).await;
        }
        for (id, kind, unit, key, person) in [
            ("team-phone", "patrol_member", "team-1", TEAM_PHONE, None),
            ("lead-phone", "post_officer", "p-west", LEAD_PHONE, Some("lead-w")),
            ("east-phone", "post_officer", "p-east", EAST_PHONE, None),
        ] {
            let d =
                json!({"device_id": id, "name": id, "kind": kind, "unit_id": unit, "key": key, "person_id": person});
            self.ok(ADMIN, "/api/v1/devices", d).await;
        }
        let now = now_ms();
        let (from, to) = (now - 3_600_000, now + 3 * 3_600_000);
        let roster = json!({"shifts": [
            {"unit_kind": "post", "unit_id": "p-west", "person_id": "lead-w", "duty": "leader", "starts_ms": from, "ends_ms": to},
            {"unit_kind": "post", "unit_id": "p-west", "person_id": "off-w", "duty": "on_duty", "starts_ms": from, "ends_ms": to},
            {"unit_kind": "command_centre", "person_id": "cc-1", "duty": "on_duty", "starts_ms": from, "ends_ms": to},
        ]});
        self.ok(ADMIN, "/api/v1/duty", roster).await;
    }

    /// `method path` with `token` (none when empty) and a JSON body: status and body.
    async fn send(&self, method: &str, token: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self.app.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn ok(&self, token: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.send("POST", token, path, Some(body)).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    /// A priority-1 incident at (lon, lat), dispatched to `device` when given; answers its
    /// id and when its step began.
    async fn incident(&self, lon: f64, lat: f64, device: Option<&str>) -> (i64, i64) {
        let v = self
            .ok(OPERATOR, "/api/v1/incidents", json!({"title": "斗殴", "priority": 1, "lon": lon, "lat": lat}))
            .await;
        let id = v["incident"]["incident_id"].as_i64().unwrap();
        let mut since = v["incident"]["state_since_ms"].as_i64().unwrap();
        if let Some(d) = device {
            let path = format!("/api/v1/incidents/{id}/actions");
            let v = self.ok(OPERATOR, &path, json!({"action": "dispatch", "device_id": d})).await;
            since = v["incident"]["state_since_ms"].as_i64().unwrap();
        }
        (id, since)
    }

    /// Runs the escalation tick as if `after_s` seconds had passed since `since_ms`.
    async fn tick(&self, since_ms: i64, after_s: i64) {
        let cmd = Tick { now_ms: since_ms + after_s * 1000 };
        self.app.state.ingest.submit_incident(cmd).await.unwrap().unwrap();
    }

    async fn ack(&self, token: &str, escalation_id: i64) -> (StatusCode, Value) {
        self.send("POST", token, &format!("/api/v1/escalations/{escalation_id}/ack"), None).await
    }

    async fn escalation_label(&self, id: i64) -> Value {
        let (_, v) = self.send("GET", OPERATOR, &format!("/api/v1/incidents/{id}"), None).await;
        v["incident"]["escalation"].clone()
    }

    async fn ws(&self, query: &str) -> Ws {
        let url = format!("{}?{query}", self.live_url);
        tokio_tungstenite::connect_async(url).await.expect("the websocket connects").0
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.served).await;
        self.app.finish().await;
    }
}

/// The next escalation message on a feed within 3 s.
async fn escalation(ws: &mut Ws) -> Option<Value> {
    next_of(ws, "escalation", 3000).await
}

/// Whether no escalation message comes on a feed within half a second (the sequencer
/// published what the tick decided before the tick was answered, so a message due is
/// already on its way).
async fn no_escalation(ws: &mut Ws) -> bool {
    next_of(ws, "escalation", 500).await.is_none()
}

async fn a_late_step_reaches_the_post_leader_whose_acknowledgement_stops_the_next_level(backend: Backend) {
    let Some(h) = Harness::start("acked", backend).await else { return };
    let mut lead = h.ws(&format!("token={LEAD}")).await;
    let mut lead_phone = h.ws(&format!("token={LEAD_PHONE}")).await;
    let mut other = h.ws(&format!("token={OTHER}")).await;
    let mut centre = h.ws(&format!("token={CENTRE}")).await;
    let mut operator = h.ws(&format!("token={OPERATOR}")).await;
    // Dispatched to team-1, whose post is p-west; nobody signs for it.
    let (id, since) = h.incident(107.1, 30.7, Some("team-phone")).await;
    h.tick(since, 30).await;
    assert!(no_escalation(&mut lead).await, "not late yet");
    h.tick(since, 61).await;
    let n = escalation(&mut lead).await.expect("the post's leader is told");
    let d = &n["data"];
    assert_eq!((d["action"].as_str(), d["level"].as_str()), (Some("notify"), Some("post_leader")), "{n}");
    assert_eq!((d["person_id"].as_str(), d["person_name"].as_str()), (Some("lead-w"), Some("西所长")), "{n}");
    assert_eq!((d["unit_id"].as_str(), d["incident"]["incident_id"].as_i64()), (Some("p-west"), Some(id)), "{n}");
    assert_eq!((d["reason"].as_str(), d["late_s"].as_i64()), (Some("late"), Some(61)), "{n}");
    assert_eq!((d["post_id"].as_str(), d["post_name"].as_str()), (Some("p-west"), Some("西警务室")), "{n}");
    let eid = d["escalation_id"].as_i64().unwrap();
    assert_eq!(n["seq"].as_i64(), Some(eid), "a notice is numbered in the sequence");
    // A screen starting now reads it: the person's own notices only.
    for (who, count) in [(LEAD, 1), (LEAD_PHONE, 1), (OTHER, 0), (CENTRE, 0), (OPERATOR, 0), (EAST_PHONE, 0)] {
        let (s, v) = h.send("GET", who, "/api/v1/escalations", None).await;
        assert_eq!((s, v["escalations"].as_array().map(Vec::len)), (StatusCode::OK, Some(count)), "{who}: {v}");
    }
    assert_eq!(h.send("GET", "", "/api/v1/escalations", None).await.0, StatusCode::UNAUTHORIZED);
    let (_, v) = h.send("GET", LEAD, "/api/v1/escalations", None).await;
    assert_eq!(v["escalations"][0], n, "as the feed sent it");
    let on_phone = escalation(&mut lead_phone).await.expect("the leader's own phone is told too");
    assert_eq!(on_phone["data"]["escalation_id"].as_i64(), Some(eid));
    for (who, ws) in
        [("another officer", &mut other), ("the duty officer", &mut centre), ("an operator", &mut operator)]
    {
        assert!(no_escalation(ws).await, "{who} is not told of the post leader's notice");
    }

    // Only the person it reached acknowledges it.
    for (who, status) in [(OTHER, 403), (OPERATOR, 403), (CENTRE, 403), (EAST_PHONE, 403), ("", 401), ("nope", 401)] {
        assert_eq!(h.ack(who, eid).await.0.as_u16(), status, "{who:?}");
    }
    assert_eq!(h.ack(LEAD, eid + 1000).await.0, StatusCode::NOT_FOUND, "an unknown escalation");
    let (s, v) = h.ack(LEAD_PHONE, eid).await;
    assert_eq!(s, StatusCode::OK, "the leader's bound phone acknowledges: {v}");
    assert_eq!(v["repeat"], false);
    let (s, v) = h.ack(LEAD, eid).await;
    assert_eq!((s, &v["repeat"]), (StatusCode::OK, &json!(true)), "a second acknowledgement stores nothing: {v}");
    let acked = escalation(&mut lead).await.expect("the acknowledgement is on the leader's feed");
    assert_eq!((acked["data"]["action"].as_str(), acked["data"]["escalation_id"].as_i64()), (Some("ack"), Some(eid)));
    assert_eq!(acked["data"]["actor"], "device:lead-phone");

    // Twice as late: the command centre is not raised.
    h.tick(since, 121).await;
    h.tick(since, 200).await;
    assert!(no_escalation(&mut centre).await, "the acknowledgement stopped the next level");
    assert!(no_escalation(&mut operator).await);
    assert_eq!(h.escalation_label(id).await, "post_leader");
    let (_, v) = h.send("GET", LEAD, "/api/v1/escalations", None).await;
    assert_eq!(v["escalations"], json!([]), "acknowledged, it is no longer open");

    // A reconnecting leader gets the notice and its acknowledgement again.
    let mut again = h.ws(&format!("token={LEAD}&since=0")).await;
    let replayed = until(&mut again, "replayed", 5000).await;
    let kinds: Vec<(&str, i64)> = replayed
        .iter()
        .filter(|m| m["type"] == "escalation")
        .map(|m| (m["data"]["action"].as_str().unwrap_or(""), m["data"]["escalation_id"].as_i64().unwrap_or(0)))
        .collect();
    assert_eq!(kinds, [("notify", eid), ("ack", eid)], "replayed in order");
    let mut stranger = h.ws(&format!("token={OTHER}&since=0")).await;
    let replayed = until(&mut stranger, "replayed", 5000).await;
    assert!(replayed.iter().all(|m| m["type"] != "escalation"), "nobody else's escalations are replayed");
    h.stop().await;
}

async fn unacknowledged_the_escalation_reaches_the_duty_officer_and_the_operators(backend: Backend) {
    let Some(h) = Harness::start("unacked", backend).await else { return };
    let mut lead = h.ws(&format!("token={LEAD}")).await;
    let mut centre = h.ws(&format!("token={CENTRE}")).await;
    let mut operator = h.ws(&format!("token={OPERATOR}")).await;
    let mut east = h.ws(&format!("token={EAST}")).await;
    let (id, since) = h.incident(107.1, 30.7, Some("team-phone")).await;
    h.tick(since, 61).await;
    let first = escalation(&mut lead).await.expect("the post's leader is told");
    assert!(no_escalation(&mut centre).await, "not yet the duty officer");
    h.tick(since, 121).await;
    let n = escalation(&mut centre).await.expect("the duty officer is told");
    let d = &n["data"];
    assert_eq!((d["level"].as_str(), d["person_id"].as_str()), (Some("command_centre"), Some("cc-1")), "{n}");
    assert_ne!(d["escalation_id"], first["data"]["escalation_id"], "a notice of its own");
    let seen = escalation(&mut operator).await.expect("operators' screens see the command centre's escalation");
    assert_eq!(seen["data"]["escalation_id"], d["escalation_id"]);
    assert!(no_escalation(&mut east).await, "another post is not told");
    assert!(no_escalation(&mut lead).await, "the leader is not told twice");
    // Operators' screens read the command centre's open notices; the duty officer theirs.
    for (who, count) in [(OPERATOR, 1), (CENTRE, 1), (LEAD, 1), (EAST, 0)] {
        let (_, v) = h.send("GET", who, "/api/v1/escalations", None).await;
        assert_eq!(v["escalations"].as_array().map(Vec::len), Some(count), "{who}: {v}");
    }
    assert_eq!(h.escalation_label(id).await, "command_centre");
    // The duty officer acknowledges theirs; the leader's own is still theirs to close.
    let eid = d["escalation_id"].as_i64().unwrap();
    assert_eq!(h.ack(LEAD, eid).await.0, StatusCode::FORBIDDEN);
    assert_eq!(h.ack(CENTRE, eid).await.0, StatusCode::OK);
    h.stop().await;
}

async fn nobody_on_duty_at_the_post_sends_it_straight_to_the_duty_officer_saying_so(backend: Backend) {
    let Some(h) = Harness::start("nobody", backend).await else { return };
    let mut centre = h.ws(&format!("token={CENTRE}")).await;
    let mut east = h.ws(&format!("token={EAST}")).await;
    // Not dispatched: the place's post is p-east, where nobody is on duty.
    let (_, since) = h.incident(107.3, 30.7, None).await;
    h.tick(since, 61).await;
    let n = escalation(&mut centre).await.expect("straight to the duty officer");
    let d = &n["data"];
    assert_eq!((d["level"].as_str(), d["person_id"].as_str()), (Some("command_centre"), Some("cc-1")), "{n}");
    assert!(d["note"].as_str().unwrap_or("").contains("nobody on duty leads post p-east"), "says why: {n}");
    assert_eq!((d["reason"].as_str(), d["post_id"].as_str()), (Some("nobody_on_duty"), Some("p-east")), "{n}");
    assert_eq!(d["post_name"], "东警务室");
    assert!(no_escalation(&mut east).await);
    h.tick(since, 121).await;
    assert!(no_escalation(&mut centre).await, "once per step");
    h.stop().await;
}

on_both_stores!(a_late_step_reaches_the_post_leader_whose_acknowledgement_stops_the_next_level);
on_both_stores!(unacknowledged_the_escalation_reaches_the_duty_officer_and_the_operators);
on_both_stores!(nobody_on_duty_at_the_post_sends_it_straight_to_the_duty_officer_saying_so);
