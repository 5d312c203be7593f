//! The live feed against a server on 127.0.0.1:0: snapshot on connect, reports with
//! their enrichment, viewport filters and changing them, replay with `since` (no gap,
//! no duplicate), a stalled client resynced while another keeps flowing, browser-style
//! `?token=`, and positions sent over the socket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use liandong_server::auth::Role;
use liandong_server::config::Config;
use liandong_test_support::feed::{next, silent_for};
use liandong_test_support::{fresh_dir, now_ms, token, unit_token, Server, Ws};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "live-admin-token";
const OPERATOR: &str = "live-operator-token";
const LEADER: &str = "live-leader-token";

/// The server of these tests: patrol members w1 (team 1) and e1 (team 2) registered, and
/// reports timed in seconds from `t0`, an hour before the start.
struct Live {
    srv: Server,
    t0: i64,
}

impl Live {
    async fn start(name: &str, tune: impl FnOnce(&mut Config)) -> Live {
        let tokens = vec![
            token(ADMIN, Role::Admin),
            token(OPERATOR, Role::Operator),
            unit_token(LEADER, Role::PatrolLeader, "team-1"),
        ];
        let srv = Server::start_in(fresh_dir(&format!("live-{name}")), tokens, tune).await;
        for (id, unit) in [("w1", "team-1"), ("e1", "team-2")] {
            srv.admin(
                "/api/v1/devices",
                json!({"device_id": id, "name": id, "kind": "patrol_member", "unit_id": unit, "key": format!("key-of-{id}")}),
            )
            .await;
        }
        Live { srv, t0: now_ms() - 3_600_000 }
    }

    /// Posts reports `(device, lon, lat, t_s)`; returns their sequence numbers.
    async fn post(&self, reports: &[(&str, f64, f64, i64)]) -> Vec<i64> {
        let in_ms: Vec<(&str, f64, f64, i64)> =
            reports.iter().map(|&(d, lon, lat, t)| (d, lon, lat, t * 1000)).collect();
        self.post_ms(&in_ms).await
    }

    /// Posts reports `(device, lon, lat, t_ms)`, each device's times distinct (a fix
    /// at a time already kept is a repeat and is not stored again); returns their
    /// sequence numbers.
    async fn post_ms(&self, reports: &[(&str, f64, f64, i64)]) -> Vec<i64> {
        let items: Vec<Value> = reports
            .iter()
            .map(|(d, lon, lat, t)| json!({"device_id": d, "lon": lon, "lat": lat, "time": self.t0 + t}))
            .collect();
        let v = self.srv.admin("/api/v1/positions", json!({ "positions": items })).await;
        assert!(v["rejected"].as_array().unwrap().is_empty(), "{v}");
        v["accepted"].as_array().unwrap().iter().map(|a| a["seq"].as_i64().unwrap()).collect()
    }

    async fn connect(&self, query: &str) -> Ws {
        self.srv.live(query).await
    }

    async fn stop(self) {
        self.srv.stop().await;
    }
}

const WEST: (f64, f64) = (107.05, 30.75);
const EAST: (f64, f64) = (107.35, 30.55);
const WEST_BBOX: &str = "107.0,30.5,107.2,30.9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_live_reports_viewports_and_subscription_changes() {
    let s = Live::start("basic", |_| {}).await;
    s.post(&[("w1", WEST.0, WEST.1, 0), ("e1", EAST.0, EAST.1, 0)]).await;

    let mut all = s.connect(&format!("token={OPERATOR}")).await;
    let snap = next(&mut all).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["devices"].as_array().unwrap().len(), 2, "{snap}");
    let mut west = s.connect(&format!("token={OPERATOR}&bbox={WEST_BBOX}")).await;
    let snap = next(&mut west).await;
    let ids: Vec<&str> = snap["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["w1"], "the snapshot is filtered by the viewport");

    // An eastern report reaches the whole-county client, with its enrichment, and not
    // the western viewport.
    let seq = s.post(&[("e1", EAST.0 + 0.001, EAST.1, 60)]).await[0];
    let m = next(&mut all).await;
    assert_eq!((m["type"].as_str(), m["seq"].as_i64()), (Some("position"), Some(seq)));
    assert_eq!(m["data"]["enrichment"]["township"]["id"], "t-east", "{m}");
    assert_eq!(m["data"]["enrichment"]["post"]["id"], "p-east");
    assert!(silent_for(&mut west, 300).await, "outside the viewport");
    let seq = s.post(&[("w1", WEST.0 + 0.001, WEST.1, 60)]).await[0];
    assert_eq!(next(&mut west).await["seq"], seq, "inside the viewport");
    assert_eq!(next(&mut all).await["seq"], seq);

    // Moving the viewport east: a snapshot of the new area, then its reports.
    west.send(Message::Text(json!({"type": "subscribe", "bbox": [107.2, 30.5, 107.4, 30.9]}).to_string().into()))
        .await
        .unwrap();
    let snap = next(&mut west).await;
    assert_eq!((snap["type"].as_str(), snap["reason"].as_str()), (Some("snapshot"), Some("subscription_changed")));
    assert_eq!(snap["devices"][0]["device_id"], "e1");
    let seq = s.post(&[("e1", EAST.0 + 0.002, EAST.1, 120)]).await[0];
    assert_eq!(next(&mut west).await["seq"], seq);
    west.send(Message::Text(json!({"type": "subscribe", "bbox": [107.4, 30.5, 107.0, 30.9]}).to_string().into()))
        .await
        .unwrap();
    let err = next(&mut west).await;
    assert_eq!((err["type"].as_str(), err["field"].as_str()), (Some("error"), Some("bbox")));

    // A patrol leader sees only the team's devices.
    let mut leader = s.connect(&format!("token={LEADER}")).await;
    let snap = next(&mut leader).await;
    assert_eq!(snap["devices"].as_array().unwrap().len(), 1);
    assert_eq!(snap["devices"][0]["device_id"], "w1");
    s.post(&[("e1", EAST.0, EAST.1, 180)]).await;
    assert!(silent_for(&mut leader, 300).await, "another team's device");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_since_replays_exactly_what_was_missed() {
    let s = Live::start("since", |_| {}).await;
    s.post(&[("w1", WEST.0, WEST.1, 0)]).await;
    let mut c = s.connect(&format!("token={OPERATOR}")).await;
    let seen = next(&mut c).await["seq"].as_i64().unwrap();
    drop(c);
    let missed = s
        .post(
            &(1..=5)
                .map(|i| if i % 2 == 0 { ("e1", EAST.0, EAST.1, i * 10) } else { ("w1", WEST.0, WEST.1, i * 10) })
                .collect::<Vec<_>>(),
        )
        .await;
    let mut c = s.connect(&format!("token={OPERATOR}&since={seen}")).await;
    let mut got = Vec::new();
    loop {
        let m = next(&mut c).await;
        if m["type"] == "replayed" {
            assert_eq!(m["seq"].as_i64(), missed.last().copied());
            break;
        }
        assert_eq!(m["type"], "position", "{m}");
        got.push(m["seq"].as_i64().unwrap());
    }
    assert_eq!(got, missed, "exactly the missed messages, in order");
    let live = s.post(&[("w1", WEST.0, WEST.1, 100)]).await[0];
    let pushed = next(&mut c).await;
    assert_eq!(pushed["seq"], live, "then the live stream, without a duplicate");
    // The message pushed as the report was committed (built from the JSON just
    // serialised) is the one a replay builds from the stored row.
    let mut again = s.connect(&format!("token={OPERATOR}&since={}", live - 1)).await;
    assert_eq!(next(&mut again).await, pushed, "the stored report replays as it was pushed");
    assert_eq!(next(&mut again).await["type"], "replayed");

    // A viewport applies to the replay too; a `since` ahead of the feed gets a snapshot.
    let mut w = s.connect(&format!("token={OPERATOR}&since={seen}&bbox={WEST_BBOX}")).await;
    let first = next(&mut w).await;
    assert_eq!(first["seq"], missed[0]);
    assert_eq!(next(&mut w).await["seq"], missed[2]);
    // (Another caller: the operator may run two replays at once, and `w`'s may still run.)
    let mut ahead = s.connect(&format!("token={ADMIN}&since=999999")).await;
    let m = next(&mut ahead).await;
    assert_eq!((m["type"].as_str(), m["reason"].as_str()), (Some("snapshot"), Some("since_ahead_of_feed")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_resynced_while_another_keeps_flowing() {
    let s = Live::start("stall", |c| {
        c.live.queue = 2048;
        c.store.max_batch = 128;
    })
    .await;
    // The stalled client: a tiny receive buffer, and it reads nothing for a while.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(s.srv.addr).await.unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(
        format!("{}?token={OPERATOR}", s.srv.live_url),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let mut active = s.connect(&format!("token={OPERATOR}")).await;
    let start = next(&mut active).await["seq"].as_i64().unwrap();
    let reader = tokio::spawn(async move {
        let mut expect = start + 1;
        let mut count = 0;
        while count < 20_000 {
            let m = next(&mut active).await;
            assert_eq!(m["type"], "position", "the active client is never resynced: {m}");
            assert_eq!(m["seq"].as_i64().unwrap(), expect, "no gap for the active client");
            expect += 1;
            count += 1;
        }
    });
    for b in 0..200i64 {
        let batch: Vec<(&str, f64, f64, i64)> =
            (0..100).map(|i| ("w1", WEST.0 + (i as f64) * 1e-6, WEST.1, (b * 100 + i) * 100)).collect();
        s.post_ms(&batch).await;
    }
    tokio::time::timeout(Duration::from_secs(60), reader).await.expect("the active client keeps flowing").unwrap();
    let mut saw_resync = false;
    for _ in 0..25_000 {
        let m = next(&mut stalled).await;
        if m["type"] == "resync" {
            saw_resync = true;
            assert!(m["seq"].as_i64().unwrap() >= start + 20_000, "a resync carries the current sequence number");
            break;
        }
    }
    assert!(saw_resync, "the stalled client was told to resync");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_before_the_upgrade_and_devices_report_over_the_socket() {
    let s = Live::start("auth", |_| {}).await;
    match tokio_tungstenite::connect_async(format!("{}?token=wrong-token", s.srv.live_url)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("a bad token must be refused before the upgrade: {other:?}"),
    }
    match tokio_tungstenite::connect_async(s.srv.live_url.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("no token: {other:?}"),
    }
    match tokio_tungstenite::connect_async(format!("{}?token={OPERATOR}&bbox=1,2,3", s.srv.live_url)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 400),
        other => panic!("a bad bbox: {other:?}"),
    }
    // A phone on its own key: sends its position, gets the acknowledgement.
    let mut phone = s.connect("token=key-of-w1").await;
    assert_eq!(next(&mut phone).await["type"], "snapshot");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let pos = json!({"type": "position", "id": 7, "device_id": "w1", "lon": WEST.0, "lat": WEST.1, "time": now});
    phone.send(Message::Text(pos.to_string().into())).await.unwrap();
    let mut acked = None;
    for _ in 0..3 {
        let m = next(&mut phone).await;
        if m["type"] == "ack" {
            assert_eq!(m["id"], 7);
            acked = m["seq"].as_i64();
            break;
        }
    }
    let seq = acked.expect("an ack with the sequence number");
    let bad = json!({"type": "position", "id": 8, "device_id": "w1", "lon": WEST.0, "lat": 91.0});
    phone.send(Message::Text(bad.to_string().into())).await.unwrap();
    let other = json!({"type": "position", "id": 9, "device_id": "e1", "lon": EAST.0, "lat": EAST.1});
    phone.send(Message::Text(other.to_string().into())).await.unwrap();
    let mut errors = Vec::new();
    while errors.len() < 2 {
        let m = next(&mut phone).await;
        if m["type"] == "error" {
            errors.push((m["id"].as_i64().unwrap(), m["field"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(errors, [(8, "lat".to_owned()), (9, "device_id".to_owned())]);
    // The operator sees the phone's report with the same sequence number.
    let mut op = s.connect(&format!("token={OPERATOR}&since={}", seq - 1)).await;
    assert_eq!(next(&mut op).await["seq"], seq);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_client_messages_end_the_connection_and_shutdown_closes_cleanly() {
    let s = Live::start("limits", |_| {}).await;
    let mut big = s.connect(&format!("token={OPERATOR}")).await;
    assert_eq!(next(&mut big).await["type"], "snapshot");
    let _ = big.send(Message::Text("x".repeat(70 * 1024).into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match big.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(Message::Text(t))) => {
                    liandong_test_support::schema::checked_message(&t);
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true), "a 70 KiB message (limit 64 KiB) ends the connection");

    let mut c = s.connect(&format!("token={OPERATOR}")).await;
    assert_eq!(next(&mut c).await["type"], "snapshot");
    let closing = tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), c.next()).await.expect("a close frame within 10 s") {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(Message::Text(t))) => {
                    liandong_test_support::schema::checked_message(&t);
                }
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    });
    s.stop().await;
    assert_eq!(closing.await.unwrap(), Some(1001), "going away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatched_incident_reaches_the_officers_phone_and_not_another_team() {
    let s = Live::start("incident", |_| {}).await;
    let mut phone = s.connect("token=key-of-w1").await;
    assert_eq!(next(&mut phone).await["type"], "snapshot");
    let mut other = s.connect("token=key-of-e1").await;
    assert_eq!(next(&mut other).await["type"], "snapshot");
    let v: Value = s
        .srv
        .http
        .post(format!("{}/api/v1/incidents", s.srv.url))
        .bearer_auth(OPERATOR)
        .json(&json!({"title": "纠纷现场", "priority": 2, "lon": WEST.0, "lat": WEST.1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["incident"]["incident_id"].as_i64().unwrap();
    let r = s
        .srv
        .http
        .post(format!("{}/api/v1/incidents/{id}/actions", s.srv.url))
        .bearer_auth(OPERATOR)
        .json(&json!({"action": "dispatch", "device_id": "w1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = next(&mut phone).await;
    assert_eq!(
        (m["type"].as_str(), m["data"]["event"]["action"].as_str()),
        (Some("incident"), Some("dispatch")),
        "{m}"
    );
    assert_eq!(m["data"]["incident"]["assigned_device"], "w1");
    assert!(silent_for(&mut other, 300).await, "another team's phone does not get the task");
    // The phone signs for it over HTTP with its own key and sees its own step.
    let r = s
        .srv
        .http
        .post(format!("{}/api/v1/incidents/{id}/actions", s.srv.url))
        .bearer_auth("key-of-w1")
        .json(&json!({"action": "sign"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(next(&mut phone).await["data"]["incident"]["state"], "signed_for");
    s.stop().await;
}

/// An alarm is not in any snapshot: a client hears it only as it happens. Whatever a
/// client causes once its connection is upgraded — here a phone's SOS, sent the moment
/// the operator's screen has its `101` — reaches it, while the feed is busy sending
/// other screens a burst of positions (a session starts after the upgrade, on the
/// feed's runtime: late, when that is busy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_happens_once_a_client_is_connected_reaches_it() {
    let s = Live::start("connected", |_| {}).await;
    const ROUNDS: usize = 20;
    for i in 0..ROUNDS {
        s.srv
            .admin(
                "/api/v1/devices",
                json!({"device_id": format!("sos{i}"), "name": format!("sos{i}"), "kind": "post_officer", "unit_id": "post-1", "key": format!("key-of-sos{i}")}),
            )
            .await;
    }
    let mut screens = Vec::new();
    for _ in 0..20 {
        screens.push(s.connect(&format!("token={OPERATOR}")).await);
    }
    let t = now_ms() / 1000;
    for i in 0..ROUNDS {
        let burst: Vec<(&str, f64, f64, i64)> =
            (0..200).map(|k| ("w1", WEST.0 + k as f64 * 1e-5, WEST.1, (i * 200 + k) as i64)).collect();
        s.post(&burst).await;
        let mut op = s.connect(&format!("token={OPERATOR}&kinds=alerts")).await;
        let q = format!("id=sos{i}&key=key-of-sos{i}&lat={}&lon={}&timestamp={t}&alarm=sos", WEST.1, WEST.0);
        let r = s.srv.http.get(format!("{}/?{q}", s.srv.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let alert = liandong_test_support::feed::next_of(&mut op, "alert", 3000).await;
        let alert = alert.unwrap_or_else(|| panic!("round {i}: the operator hears the SOS sent once it was connected"));
        assert_eq!(alert["data"]["device_id"], format!("sos{i}"), "{alert}");
    }
    drop(screens);
    s.stop().await;
}
