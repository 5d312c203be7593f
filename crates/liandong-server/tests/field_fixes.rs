//! Issue 14's contracts 1 and 2 against a real server on 127.0.0.1:0, on the embedded
//! store and on PostGIS (`LIANDONG_TEST_PG_URL`): a fix is kept once per (device, fix
//! time) and a repeat of it, however old and however it arrives (our JSON over HTTP,
//! OsmAnd, the live websocket, after a restart), is answered with the number it first
//! got; Traccar Client's `alarm=sos` and our `"alarm":"sos"` raise a priority-1 alert
//! for operators and administrators only, once per burst, and `mock=true` marks a fix.

use futures_util::SinkExt;
use liandong_server::auth::Role;
use liandong_server::config::Config;
use liandong_store::{Durability, Store};
use liandong_test_support::feed::{drain, next_of};
use liandong_test_support::{fresh_dir, now_ms, token, Backend, Server, Ws};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "fixes-admin-token";
const OPERATOR: &str = "fixes-operator-token";
const PARTNER: &str = "fixes-partner-token";
const GRID: &str = "fixes-grid-member-token";
/// The phone of every test: a patrol member of team-1.
const PHONE: &str = "w-7";
const PHONE_NAME: &str = "巡防队员 7";
const KEY: &str = "key-of-w-7";
/// A place in the mini map's county.
const LON: f64 = 107.1;
const LAT: f64 = 30.7;

use liandong_test_support::on_both_stores;

on_both_stores!(a_repeated_fix_gets_its_original_number_and_is_stored_once);
on_both_stores!(sos_reaches_operators_and_administrators_once_per_burst_and_mock_marks_the_fix);

/// A configured test server and what a restart of it needs.
struct Field {
    srv: Server,
    config: Config,
}

/// The test configuration for `name` on `backend`, with a token per role the tests ask
/// for; None when the backend is not available.
async fn config(name: &str, backend: Backend) -> Option<Config> {
    let mut config = liandong_test_support::config(fresh_dir(&format!("field-fixes-{name}-{backend:?}")));
    backend.configure(&mut config, name).await?;
    config.tokens = vec![
        token(ADMIN, Role::Admin),
        token(OPERATOR, Role::Operator),
        token(PARTNER, Role::Partner),
        token(GRID, Role::GridMember),
    ];
    Some(config)
}

impl Field {
    /// A server with the phone registered.
    async fn start(name: &str, backend: Backend) -> Option<Field> {
        let config = config(name, backend).await?;
        let srv = Server::start(config.clone()).await;
        srv.admin(
            "/api/v1/devices",
            json!({"device_id": PHONE, "name": PHONE_NAME, "kind": "patrol_member", "unit_id": "team-1", "key": KEY}),
        )
        .await;
        Some(Field { srv, config })
    }

    /// The same server stopped and started again on its store.
    async fn restart(self) -> Field {
        self.srv.stop_keeping_data().await;
        let srv = Server::start(self.config.clone()).await;
        Field { srv, config: self.config }
    }

    /// Stops the server and answers the numbers of the phone's stored reports, read from
    /// the store itself.
    async fn stop_and_count(self) -> Vec<i64> {
        let dir = self.srv.stop_keeping_data().await;
        let store = match &self.config.store.database_url {
            Some(url) => Store::connect(url.expose()).await.unwrap(),
            None => Store::open(&dir, Durability::Normal).await.unwrap(),
        };
        let seqs = store.position_seqs(PHONE).await.unwrap();
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        seqs
    }

    /// Our JSON items for the phone over HTTP (the phone's key as bearer); answers each
    /// item's number and flags, in order.
    async fn post(&self, items: &[Value]) -> Vec<(i64, Value)> {
        let (status, v) = self.srv.post(KEY, "/api/v1/positions", json!({ "positions": items })).await;
        assert_eq!((status, &v["rejected"]), (200, &json!([])), "{v}");
        v["accepted"].as_array().unwrap().iter().map(|a| (a["seq"].as_i64().unwrap(), a["flags"].clone())).collect()
    }

    /// The numbers of our JSON items posted at once.
    async fn seqs(&self, items: &[Value]) -> Vec<i64> {
        self.post(items).await.into_iter().map(|(seq, _)| seq).collect()
    }

    /// One OsmAnd report as Traccar Client sends it, with `extra` query parameters.
    async fn osmand(&self, time_ms: i64, extra: &str) {
        let url =
            format!("{}/?id={PHONE}&key={KEY}&lat={LAT}&lon={LON}&timestamp={time_ms}&accuracy=8{extra}", self.srv.url);
        let r = self.srv.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

/// The phone's fix at `time_ms` (a little east with each second, so that fixes differ)
/// in our JSON, with `extra` fields.
fn fix(time_ms: i64, extra: Value) -> Value {
    let mut item =
        json!({"device_id": PHONE, "lon": LON + (time_ms % 100_000) as f64 * 1e-8, "lat": LAT, "time": time_ms});
    item.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    item
}

/// Sends the phone's fix over its live websocket as message `id`; answers the number
/// the acknowledgement carries.
async fn ws_position(phone: &mut Ws, id: i64, item: Value) -> i64 {
    let mut message = json!({"type": "position", "id": id});
    message.as_object_mut().unwrap().extend(item.as_object().unwrap().clone());
    phone.send(Message::Text(message.to_string().into())).await.unwrap();
    loop {
        let m = next_of(phone, "ack", 5_000).await.unwrap_or_else(|| panic!("no ack of message {id}"));
        if m["id"] == id {
            return m["seq"].as_i64().unwrap_or_else(|| panic!("ack without a number: {m}"));
        }
    }
}

async fn a_repeated_fix_gets_its_original_number_and_is_stored_once(backend: Backend) {
    let Some(field) = Field::start("repeats", backend).await else { return };
    let t0 = now_ms() - 3_600_000;
    let at = |minute: i64| t0 + minute * 60_000;

    // Three fixes; the last sent again (its answer lost), then the oldest after them
    // (a phone resending its offline queue), and the same time at another place.
    let first = field.seqs(&[fix(at(1), json!({})), fix(at(2), json!({})), fix(at(3), json!({}))]).await;
    assert_eq!(field.seqs(&[fix(at(3), json!({}))]).await, [first[2]], "the last fix again");
    assert_eq!(field.seqs(&[fix(at(1), json!({}))]).await, [first[0]], "an older fix after newer ones");
    let moved = json!({"device_id": PHONE, "lon": LON + 0.01, "lat": LAT, "time": at(2)});
    assert_eq!(field.seqs(&[moved]).await, [first[1]], "the key is the device and the time, not the place");

    // Repeats inside one batch: a new fix twice, and an old one among them.
    let batch = field.seqs(&[fix(at(4), json!({})), fix(at(4), json!({})), fix(at(2), json!({}))]).await;
    assert_eq!((batch[1], batch[2]), (batch[0], first[1]), "{batch:?}");

    // The answer carries the stored report's flags too: a mocked fix sent again (even
    // without saying so) is still the mocked one.
    let (mocked, flags) = field.post(&[fix(at(5), json!({"mock": true}))]).await.remove(0);
    assert_eq!(flags, json!(["mock"]));
    assert_eq!(field.post(&[fix(at(5), json!({}))]).await, [(mocked, json!(["mock"]))]);

    // OsmAnd: a fix sent twice, then the same fix over HTTP finds the OsmAnd number; an
    // old fix over OsmAnd is not stored again.
    field.osmand(at(6), "").await;
    field.osmand(at(6), "").await;
    field.osmand(at(1), "").await;
    let osmand = field.seqs(&[fix(at(6), json!({}))]).await[0];
    assert!(osmand > mocked, "the OsmAnd fix was stored after the mocked one: {osmand}");

    // The live websocket: a fix, the same fix again (the ack lost), an old fix.
    let mut phone = field.srv.ws(KEY).await;
    let on_ws = ws_position(&mut phone, 1, fix(at(7), json!({}))).await;
    assert_eq!(ws_position(&mut phone, 2, fix(at(7), json!({}))).await, on_ws, "the ack lost, the fix resent");
    assert_eq!(ws_position(&mut phone, 3, fix(at(1), json!({}))).await, first[0], "an old fix over the socket");
    drop(phone);

    // A report without its own time is never a repeat: both are kept.
    let untimed = json!({"device_id": PHONE, "lon": LON, "lat": LAT});
    let twice = field.seqs(&[untimed.clone(), untimed]).await;
    assert_ne!(twice[0], twice[1]);

    // After a restart, however old, a repeat still finds its number.
    let field = field.restart().await;
    assert_eq!(field.seqs(&[fix(at(1), json!({})), fix(at(3), json!({}))]).await, [first[0], first[2]]);
    assert_eq!(field.seqs(&[fix(at(7), json!({}))]).await, [on_ws]);

    let mut expected: Vec<i64> = first.clone();
    expected.extend([batch[0], mocked, osmand, on_ws, twice[0], twice[1]]);
    expected.sort_unstable();
    assert_eq!(field.stop_and_count().await, expected, "each fix stored once");
}

/// The SOS alerts among `messages`.
fn sos_alerts(messages: &[Value]) -> Vec<Value> {
    messages.iter().filter(|m| m["type"] == "alert" && m["data"]["rule"] == "sos").cloned().collect()
}

async fn sos_reaches_operators_and_administrators_once_per_burst_and_mock_marks_the_fix(backend: Backend) {
    let Some(field) = Field::start("sos", backend).await else { return };
    let mut operator = field.srv.ws(OPERATOR).await;
    let mut admin = field.srv.ws(ADMIN).await;
    let mut partner = field.srv.ws(PARTNER).await;
    let mut grid = field.srv.ws(GRID).await;
    let t0 = now_ms() - 5 * 60_000;

    // Traccar Client's SOS button.
    field.osmand(t0, "&alarm=sos").await;
    let alert = next_of(&mut operator, "alert", 5_000).await.expect("the operator is alerted");
    let data = &alert["data"];
    assert_eq!(
        (&data["rule"], &data["priority"], &data["device_id"], &data["device_name"], &data["unit_id"]),
        (&json!("sos"), &json!(1), &json!(PHONE), &json!(PHONE_NAME), &json!("team-1")),
        "{alert}"
    );
    assert_eq!((data["lon"].as_f64(), data["lat"].as_f64()), (Some(LON), Some(LAT)), "at the fix's place");
    let first_report = data["report_seq"].as_i64().expect("the report that carried it");

    // The button held down: presses within a minute (one the same fix resent) raise
    // nothing new; the report is stored as usual.
    field.osmand(t0 + 20_000, "&alarm=sos").await;
    field.osmand(t0, "&alarm=sos").await;
    let mut phone = field.srv.ws(KEY).await;
    let pressed = ws_position(&mut phone, 1, fix(t0 + 40_000, json!({"alarm": "sos"}))).await;
    assert!(pressed > first_report);

    // Pressed again a minute later on the app: a new alert.
    let again = ws_position(&mut phone, 2, fix(t0 + 61_000, json!({"alarm": "sos"}))).await;
    // A mock location over OsmAnd is kept and marked.
    field.osmand(t0 + 90_000, "&mock=true").await;

    let seen = drain(&mut operator, 1_000).await;
    let later = sos_alerts(&seen);
    assert_eq!(later.len(), 1, "one alert for the second press, none for the burst: {later:?}");
    assert_eq!(later[0]["data"]["report_seq"], again);
    let marked: Vec<&Value> = seen
        .iter()
        .filter(|m| {
            m["type"] == "position" && m["data"]["flags"].as_array().is_some_and(|f| f.contains(&json!("mock")))
        })
        .collect();
    assert_eq!(marked.len(), 1, "the mocked fix, and only it, is marked on the feed: {seen:?}");

    let admin_seen = sos_alerts(&drain(&mut admin, 500).await);
    assert_eq!(admin_seen.len(), 2, "administrators see every alert: {admin_seen:?}");
    assert!(sos_alerts(&drain(&mut partner, 500).await).is_empty(), "a partner's feed has no SOS");
    assert!(sos_alerts(&drain(&mut grid, 500).await).is_empty(), "a grid member's feed has no SOS");

    // The alert history: the operator finds both, the partner and the grid member neither.
    let history = |token: &'static str| {
        let srv = &field.srv;
        async move { srv.get(token, "/api/v1/history/alerts").await }
    };
    let (status, v) = history(OPERATOR).await;
    assert_eq!(status, 200, "{v}");
    let rules: Vec<(&str, i64)> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["data"]["rule"] == "sos")
        .map(|a| (a["data"]["rule"].as_str().unwrap(), a["data"]["report_seq"].as_i64().unwrap()))
        .collect();
    assert_eq!(rules, [("sos", again), ("sos", first_report)], "newest first: {v}");
    let (status, v) = history(PARTNER).await;
    assert_eq!(status, 200, "{v}");
    assert!(!v.to_string().contains("\"sos\""), "{v}");
    let (status, v) = history(GRID).await;
    assert_eq!(status, 200, "{v}");
    assert!(!v.to_string().contains("\"sos\""), "a grid member's history has no SOS, as their feed: {v}");
    field.srv.stop().await;
}
