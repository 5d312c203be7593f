//! The PostgreSQL + PostGIS store against a real server.
//!
//! Set `LIANDONG_TEST_PG_URL` to a superuser's URL (`scripts/pg start` prints one).
//! Each test creates a database of its own on that server, lets `PgStore::connect`
//! migrate it, and drops it at the end, so tests run in parallel without meeting. When
//! the variable is unset every test prints that it was skipped and passes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use liandong_store::pg::PgStore;
use liandong_store::{
    AlertRow, AuditEntry, Batch, CameraEventRow, CameraRecord, DeviceRecord, DeviceStateRow, GridReport,
    IncidentEventRow, IncidentRow, PositionRow, StoreError, StoredMembership, TaggedPerson, WatchRecord,
};
use sqlx::{Connection, Executor, PgConnection};

const URL_VAR: &str = "LIANDONG_TEST_PG_URL";

/// A database of one test's own on the test server.
struct TestDb {
    server_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates an empty database, or returns None (after saying so) when no server is
    /// configured.
    async fn create(test: &str) -> Option<TestDb> {
        let Ok(server_url) = std::env::var(URL_VAR) else {
            println!("skipped {test}: {URL_VAR} is not set (scripts/pg start prints a URL)");
            return None;
        };
        let name = unique_name("t");
        let mut admin = PgConnection::connect(&server_url).await.expect("connect to the test server");
        // An ICU English collation sorts "cam-a" before "Cam-Z", where SQLite's byte order
        // puts upper case first: the schema's `COLLATE "C"` has to make the difference.
        // Servers older than 15 (or built without ICU) get their default collation.
        let icu = format!("CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0");
        if let Err(e) = admin.execute(icu.as_str()).await {
            println!("{test}: no ICU collation ({e}); using the server's default");
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create the test database");
        }
        admin.close().await.unwrap();
        let url = with_database(&server_url, &name);
        Some(TestDb { server_url, name, url })
    }

    async fn store(&self) -> PgStore {
        PgStore::connect(&self.url).await.expect("connect the store")
    }

    /// A plain connection to the test database, for what the store does not offer.
    async fn sql(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect to the test database")
    }

    async fn remove(self) {
        let mut admin = PgConnection::connect(&self.server_url).await.unwrap();
        admin.execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str()).await.unwrap();
        admin.close().await.unwrap();
    }
}

/// A name no other test (nor another run of this one) uses.
fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// `url` with its database (the path) replaced, keeping any `?query`.
fn with_database(url: &str, database: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let host_at = main.find("://").map_or(0, |i| i + 3);
    let path_at = main[host_at..].find('/').map_or(main.len(), |i| host_at + i);
    format!("{}/{database}{query}", &main[..path_at])
}

fn position(seq: i64, device: &str) -> PositionRow {
    PositionRow {
        seq,
        device_id: device.into(),
        fix_ms: seq * 1000,
        recv_ms: seq * 1000 + 5,
        lon: 107.2 + seq as f64 * 1e-6,
        lat: 30.73,
        datum: if seq % 3 == 0 { "gcj02" } else { "wgs84" },
        speed_mps: (seq % 2 == 0).then_some(4.25),
        course_deg: Some(90.0),
        altitude_m: None,
        accuracy_m: Some(8.0),
        battery_pct: None,
        flags: if seq % 5 == 0 { 0x8000_0001 } else { 0 },
        attributes: format!("{{\"n\":{seq}}}"),
        enrichment: "{\"township\":\"竹阳街道\"}".into(),
    }
}

fn camera_event(seq: i64, plate: Option<&str>, time_ms: i64, active: bool) -> CameraEventRow {
    CameraEventRow {
        seq,
        camera_id: "cam-001".into(),
        event_type: "ANPR".into(),
        kind: "anpr",
        active,
        active_post_count: Some(1),
        time_ms,
        recv_ms: time_ms + 1,
        plate: plate.map(Into::into),
        person_id: None,
        payload: "{}".into(),
    }
}

fn alert(seq: i64, time_ms: i64) -> AlertRow {
    AlertRow {
        seq,
        rule: "watchlist_plate".into(),
        priority: 1,
        camera_id: Some("cam-001".into()),
        event_seq: Some(seq - 1),
        time_ms,
        lon: 107.2,
        lat: 30.7,
        roles: vec!["operator".into(), "command_centre".into()],
        payload: format!("{{\"seq\":{seq}}}"),
        township: Some("竹阳街道".into()),
    }
}

fn incident(id: i64, state: &str) -> IncidentRow {
    IncidentRow {
        incident_id: id,
        title: "川S12345 seen at checkpoint".into(),
        priority: 1,
        state: state.into(),
        lon: 107.21,
        lat: 30.74,
        alert_seq: Some(id - 1),
        assigned_device: None,
        assigned_unit: None,
        created_ms: id * 1000,
        state_since_ms: id * 1000,
        escalation: "none".into(),
        kind: "watchlist_plate".into(),
        township: Some("竹阳街道".into()),
    }
}

fn incident_event(seq: i64, incident_id: i64, action: &str, to_state: &str, at_ms: i64) -> IncidentEventRow {
    IncidentEventRow {
        seq,
        incident_id,
        at_ms,
        actor: "operator-1".into(),
        action: action.into(),
        from_state: (action != "create").then(|| "new".into()),
        to_state: to_state.into(),
        note: String::new(),
        lon: 107.21,
        lat: 30.74,
        unit_id: Some("post-01".into()),
        payload: format!("{{\"seq\":{seq}}}"),
    }
}

fn report(id: i64, category: &str, time_ms: i64) -> GridReport {
    GridReport {
        report_id: id,
        reporter: "grid-07".into(),
        category: category.into(),
        text: "两户因宅基地争执".into(),
        lon: 107.22,
        lat: 30.71,
        time_ms,
        recv_ms: time_ms + 3,
        enrichment: serde_json::json!({"township": "竹阳街道", "grid": "G-07", "score": 0.5}),
        photos: 1,
        status: "new".into(),
        photo_urls: vec![format!("/reports/{id}/photo/0")],
    }
}

fn audit(at_ms: i64, subject: &str) -> AuditEntry {
    AuditEntry {
        at_ms,
        actor: "camera:cam-001".into(),
        action: "tagged_person_seen".into(),
        subject: subject.into(),
        detail: format!("at {at_ms}"),
    }
}

#[tokio::test]
async fn a_batch_of_every_kind_round_trips_and_survives_reconnecting() {
    let Some(db) = TestDb::create("a_batch_of_every_kind_round_trips_and_survives_reconnecting").await else {
        return;
    };
    let store = db.store().await;
    // More rows than one statement could bind at 15 parameters each (65535 / 15).
    let positions: Vec<PositionRow> = (1..=5000).map(|s| position(s, if s % 2 == 0 { "a" } else { "b" })).collect();
    let state = DeviceStateRow {
        device_id: "a".into(),
        seq: 5000,
        trusted: Some((5_000_000, 107.2, 30.73)),
        marked: Some((4_999_000, 107.3, 30.8)),
        fences: vec![StoredMembership { fence: "fence-school-1".into(), since_ms: 5, dwell_fired: true }],
    };
    let events = [camera_event(5001, Some("川S12345"), 10, true)];
    let alerts = [alert(5002, 10)];
    let audit_entries = [audit(10, "p-1"), audit(11, "p-1")];
    let incidents = [incident(5003, "new")];
    let incident_events = [incident_event(5003, 5003, "create", "new", 11)];
    let reports = [report(5004, "dispute", 12)];
    store
        .write(&Batch {
            positions: &positions,
            states: std::slice::from_ref(&state),
            camera_events: &events,
            alerts: &alerts,
            audit: &audit_entries,
            incidents: &incidents,
            incident_events: &incident_events,
            reports: &reports,
        })
        .await
        .unwrap();
    store.close().await;

    // A second connect finds the schema migrated and the data committed.
    let store = db.store().await;
    assert_eq!(store.max_seq().await.unwrap(), 5004);
    assert_eq!(store.count_positions(Some("a")).await.unwrap(), 2500);
    assert_eq!(store.count_positions(None).await.unwrap(), 5000);
    assert_eq!(store.positions_after(0, 10_000).await.unwrap(), positions, "every field reads back as written");
    let states = store.device_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, state);
    assert_eq!(states[0].1.as_ref(), positions.last(), "the state joins its last report");
    assert_eq!(store.count_camera_events("cam-001").await.unwrap(), 1);
    assert_eq!(store.alerts_after(0, 10).await.unwrap(), alerts);
    assert_eq!(store.count_after(4999).await.unwrap(), 3, "one report, one alert, one incident event");
    assert_eq!(
        store.audit_log(Some("p-1"), 10).await.unwrap(),
        vec![audit_entries[1].clone(), audit_entries[0].clone()]
    );
    assert_eq!(store.incident(5003).await.unwrap(), Some((incidents[0].clone(), incident_events.to_vec())));
    assert_eq!(store.incident(1).await.unwrap(), None);
    assert_eq!(store.open_incidents().await.unwrap(), incidents);
    assert_eq!(store.report(5004).await.unwrap(), Some(reports[0].clone()));
    assert_eq!(store.report(1).await.unwrap(), None);
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn replays_are_in_sequence_order_and_limited() {
    let Some(db) = TestDb::create("replays_are_in_sequence_order_and_limited").await else {
        return;
    };
    let store = db.store().await;
    // Rows arrive in the batch out of order; replays must still be by seq.
    let positions: Vec<PositionRow> = [9, 3, 7, 1, 5].iter().map(|&s| position(s, "a")).collect();
    let alerts = [alert(8, 1), alert(2, 2), alert(6, 3)];
    let events = [
        incident_event(10, 4, "create", "new", 1),
        incident_event(4, 4, "dispatch", "dispatched", 2),
        incident_event(11, 4, "sign", "signed_for", 3),
    ];
    store
        .write(&Batch { positions: &positions, alerts: &alerts, incident_events: &events, ..Batch::default() })
        .await
        .unwrap();

    let seqs = |rows: Vec<PositionRow>| rows.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.positions_after(0, 100).await.unwrap()), [1, 3, 5, 7, 9]);
    assert_eq!(seqs(store.positions_after(3, 2).await.unwrap()), [5, 7]);
    assert_eq!(seqs(store.positions_after(9, 100).await.unwrap()), Vec::<i64>::new());
    assert_eq!(store.positions_after(0, 0).await.unwrap(), vec![]);
    assert_eq!(store.position_seqs("a").await.unwrap(), [1, 3, 5, 7, 9]);
    assert_eq!(store.position_seqs("nobody").await.unwrap(), Vec::<i64>::new());

    let alert_seqs: Vec<i64> = store.alerts_after(2, 1).await.unwrap().iter().map(|a| a.seq).collect();
    assert_eq!(alert_seqs, [6]);
    let alert_seqs: Vec<i64> = store.alerts_after(0, 100).await.unwrap().iter().map(|a| a.seq).collect();
    assert_eq!(alert_seqs, [2, 6, 8]);

    let event_seqs: Vec<i64> = store.incident_events_after(4, 100).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(event_seqs, [10, 11]);
    let event_seqs: Vec<i64> = store.incident_events_after(0, 2).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(event_seqs, [4, 10]);
    assert_eq!(store.incident(4).await.unwrap(), None, "events alone do not make an incident");

    assert_eq!(store.count_after(0).await.unwrap(), 11);
    assert_eq!(store.count_after(8).await.unwrap(), 3);
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn max_seq_spans_every_sequenced_table() {
    let Some(db) = TestDb::create("max_seq_spans_every_sequenced_table").await else {
        return;
    };
    let store = db.store().await;
    assert_eq!(store.max_seq().await.unwrap(), 0, "an empty store");
    store.write_batch(&[position(3, "a")], &[]).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 3);
    store.write(&Batch { camera_events: &[camera_event(10, None, 1, false)], ..Batch::default() }).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 10, "camera events");
    let taken = store.write(&Batch { alerts: &[alert(7, 1)], ..Batch::default() }).await;
    assert!(
        matches!(taken, Err(StoreError::SeqConflict { committed: 10, first: 7 })),
        "a number at or below the committed maximum is refused: {taken:?}"
    );
    assert_eq!(store.max_seq().await.unwrap(), 10);
    store
        .write(&Batch { incident_events: &[incident_event(12, 12, "create", "new", 1)], ..Batch::default() })
        .await
        .unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 12, "incident events");
    store.write(&Batch { reports: &[report(15, "hazard", 1)], ..Batch::default() }).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 15, "grid reports");
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn upsert_device_reports_whether_it_was_new() {
    let Some(db) = TestDb::create("upsert_device_reports_whether_it_was_new").await else {
        return;
    };
    let store = db.store().await;
    let mut d = DeviceRecord {
        device_id: "866123".into(),
        name: "officer".into(),
        kind: "post_officer".into(),
        unit_id: Some("post-01".into()),
        key: "k".into(),
        created_ms: 1,
        updated_ms: 1,
    };
    assert!(store.upsert_device(&d).await.unwrap());
    d.name = "renamed".into();
    d.unit_id = None;
    d.created_ms = 99;
    d.updated_ms = 2;
    assert!(!store.upsert_device(&d).await.unwrap());
    let other = DeviceRecord { device_id: "100".into(), ..d.clone() };
    assert!(store.upsert_device(&other).await.unwrap());
    let devices = store.devices().await.unwrap();
    assert_eq!(devices.iter().map(|d| d.device_id.as_str()).collect::<Vec<_>>(), ["100", "866123"]);
    assert_eq!(devices[1], DeviceRecord { created_ms: 1, ..d }, "an update keeps the creation time");
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn device_states_join_their_last_report_and_the_last_state_wins() {
    let Some(db) = TestDb::create("device_states_join_their_last_report_and_the_last_state_wins").await else {
        return;
    };
    let store = db.store().await;
    let state = |device: &str, seq: i64| DeviceStateRow {
        device_id: device.into(),
        seq,
        trusted: (seq > 0).then_some((seq * 1000, 107.2, 30.73)),
        marked: None,
        fences: vec![],
    };
    // "z" comes first in the batch and twice: the second row is its state.
    store
        .write_batch(
            &[position(1, "z"), position(2, "z"), position(3, "b")],
            &[state("z", 1), state("b", 3), state("z", 2), state("quiet", 0)],
        )
        .await
        .unwrap();
    let states = store.device_states().await.unwrap();
    let summary: Vec<(&str, i64, Option<i64>)> =
        states.iter().map(|(s, p)| (s.device_id.as_str(), s.seq, p.as_ref().map(|p| p.seq))).collect();
    assert_eq!(summary, [("b", 3, Some(3)), ("quiet", 0, None), ("z", 2, Some(2))], "by device id");
    assert_eq!(states[1].0.trusted, None);

    // A later batch replaces the whole state.
    let moved = DeviceStateRow {
        device_id: "b".into(),
        seq: 4,
        trusted: None,
        marked: Some((4000, 107.0, 30.0)),
        fences: vec![StoredMembership { fence: "f".into(), since_ms: 4000, dwell_fired: false }],
    };
    store.write_batch(&[position(4, "b")], std::slice::from_ref(&moved)).await.unwrap();
    let states = store.device_states().await.unwrap();
    assert_eq!(states[0].0, moved);
    assert_eq!(states[0].1.as_ref().map(|p| p.seq), Some(4));
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn incidents_keep_their_description_and_take_each_new_state() {
    let Some(db) = TestDb::create("incidents_keep_their_description_and_take_each_new_state").await else {
        return;
    };
    let store = db.store().await;
    let created = incident(20, "new");
    let dispatched = IncidentRow {
        state: "dispatched".into(),
        assigned_device: Some("866123".into()),
        assigned_unit: Some("post-01".into()),
        state_since_ms: 21_000,
        // An upsert changes the life cycle's fields only.
        title: "ignored".into(),
        priority: 5,
        ..created.clone()
    };
    // Created and dispatched within one group commit.
    store.write(&Batch { incidents: &[created.clone(), dispatched.clone()], ..Batch::default() }).await.unwrap();
    let want = IncidentRow { title: created.title.clone(), priority: created.priority, ..dispatched.clone() };
    assert_eq!(store.open_incidents().await.unwrap(), std::slice::from_ref(&want));

    let closed =
        IncidentRow { state: "closed".into(), escalation: "post_leader".into(), state_since_ms: 30_000, ..dispatched };
    let other = incident(22, "new");
    store.write(&Batch { incidents: &[closed, other.clone()], ..Batch::default() }).await.unwrap();
    assert_eq!(store.open_incidents().await.unwrap(), [other], "closed incidents are not open");
    let (row, _) = store.incident(20).await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.escalation.as_str(), row.title.as_str()),
        ("closed", "post_leader", want.title.as_str())
    );

    let events = [
        incident_event(23, 20, "dispatch", "dispatched", 21_000),
        incident_event(24, 20, "sign", "signed_for", 22_000),
        incident_event(25, 20, "arrive", "on_scene", 25_000),
        incident_event(26, 20, "close", "closed", 30_000),
        incident_event(27, 20, "dispatch", "dispatched", 31_000),
    ];
    store.write(&Batch { incident_events: &events, ..Batch::default() }).await.unwrap();
    let facts = store.incident_facts(0, 100_000).await.unwrap();
    assert_eq!(facts.iter().map(|f| f.incident_id).collect::<Vec<_>>(), [20, 22]);
    assert_eq!(
        (facts[0].dispatched_ms, facts[0].signed_ms, facts[0].on_scene_ms, facts[0].closed_ms),
        (Some(21_000), Some(22_000), Some(25_000), Some(30_000)),
        "the first time of each milestone"
    );
    assert_eq!(facts[1].dispatched_ms, None);
    assert_eq!(store.incident_facts(21_000, 100_000).await.unwrap().len(), 1, "by creation time");
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn reports_reviews_mediation_and_their_statistics() {
    let Some(db) = TestDb::create("reports_reviews_mediation_and_their_statistics").await else {
        return;
    };
    let store = db.store().await;
    let reports = [
        report(1, "dispute", 1000),
        report(2, "hazard", 2000),
        report(3, "dispute", 3000),
        report(4, "dispute", 4000),
        report(5, "fire", 9000),
    ];
    store.write(&Batch { reports: &reports, ..Batch::default() }).await.unwrap();

    let ids = |rows: Vec<GridReport>| rows.iter().map(|r| r.report_id).collect::<Vec<_>>();
    assert_eq!(ids(store.reports(None, 10).await.unwrap()), [5, 4, 3, 2, 1], "newest first");
    assert_eq!(ids(store.reports(None, 2).await.unwrap()), [5, 4]);
    assert!(store.review_report(2, "accepted", "sent to the post").await.unwrap());
    assert!(!store.review_report(2, "rejected", "twice").await.unwrap(), "already reviewed");
    assert!(!store.review_report(99, "rejected", "").await.unwrap(), "no such report");
    assert_eq!(ids(store.reports(Some("new"), 10).await.unwrap()), [5, 4, 3, 1]);
    assert_eq!(ids(store.reports(Some("accepted"), 10).await.unwrap()), [2]);
    assert_eq!(store.report(2).await.unwrap().unwrap().status, "accepted");

    let cases = store.mediation_cases(None).await.unwrap();
    assert_eq!(cases.iter().map(|c| (c.case_id, c.report_id)).collect::<Vec<_>>(), [(1, 1), (3, 3), (4, 4)]);
    assert_eq!((cases[0].opened_ms, cases[0].status.as_str(), cases[0].success), (1003, "pending", None));
    assert!(store.close_mediation(1, "people", "agreement signed", true, "mediator-1", 5000).await.unwrap());
    assert!(!store.close_mediation(1, "judicial", "again", false, "mediator-1", 5001).await.unwrap(), "not pending");
    assert!(!store.close_mediation(2, "people", "", true, "m", 1).await.unwrap(), "a hazard has no case");
    assert!(store.close_mediation(3, "judicial", "no agreement", false, "mediator-2", 6000).await.unwrap());
    let mediated = store.mediation_cases(Some("mediated")).await.unwrap();
    assert_eq!(mediated.iter().map(|c| c.case_id).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(
        (
            mediated[0].mediation_type.as_deref(),
            mediated[0].success,
            mediated[0].closed_ms,
            mediated[0].closed_by.as_deref()
        ),
        (Some("people"), Some(true), Some(5000), Some("mediator-1"))
    );
    assert_eq!(mediated[1].success, Some(false));
    assert_eq!(store.mediation_cases(Some("pending")).await.unwrap().len(), 1);

    let stats = store.mediation_stats(0, 8000).await.unwrap();
    assert_eq!((stats.disputes, stats.pending, stats.mediated, stats.successful), (3, 1, 2, 1));
    assert_eq!(stats.success_rate, Some(0.5));
    assert_eq!(stats.by_type, [("judicial".to_string(), 1), ("people".to_string(), 1)]);
    assert_eq!(stats.reports_by_category, [("dispute".to_string(), 3), ("hazard".to_string(), 1)]);
    let quiet = store.mediation_stats(8000, 8500).await.unwrap();
    assert_eq!((quiet.disputes, quiet.success_rate), (0, None), "no outcome yet, no rate");
    assert!(quiet.by_type.is_empty());
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn cameras_watch_lists_tagged_persons_and_sightings() {
    let Some(db) = TestDb::create("cameras_watch_lists_tagged_persons_and_sightings").await else {
        return;
    };
    let store = db.store().await;
    let cam = |id: &str| CameraRecord {
        camera_id: id.into(),
        name: "卡口".into(),
        kind: "checkpoint".into(),
        lon: 107.2,
        lat: 30.7,
        key: "camera-key-1".into(),
        updated_ms: 1,
    };
    // Byte order, as SQLite sorts: upper case before lower case, ASCII before CJK.
    for id in ["cam-b", "卡口-1", "Cam-Z", "cam-a"] {
        store.upsert_camera(&cam(id)).await.unwrap();
    }
    store.upsert_camera(&CameraRecord { name: "moved".into(), lon: 107.3, ..cam("cam-a") }).await.unwrap();
    let cameras = store.cameras().await.unwrap();
    assert_eq!(cameras.iter().map(|c| c.camera_id.as_str()).collect::<Vec<_>>(), ["Cam-Z", "cam-a", "cam-b", "卡口-1"]);
    assert_eq!((cameras[1].name.as_str(), cameras[1].lon), ("moved", 107.3));

    let watch = WatchRecord {
        watch_id: "w-1".into(),
        kind: "plate".into(),
        value: "川S12345".into(),
        reason: "stolen".into(),
        priority: 1,
        valid_from: None,
        valid_to: Some(99),
        roles: vec!["operator".into()],
        updated_ms: 1,
    };
    store.upsert_watch(&watch).await.unwrap();
    let watch = WatchRecord { roles: vec!["operator".into(), "post_leader".into()], valid_from: Some(3), ..watch };
    store.upsert_watch(&watch).await.unwrap();
    assert_eq!(store.watchlist().await.unwrap(), [watch]);

    let person = TaggedPerson {
        person_id: "p-1".into(),
        name: "张三".into(),
        category: "community_correction".into(),
        note: String::new(),
        roles: vec!["judicial".into()],
        updated_ms: 1,
        device_id: Some("866123".into()),
        zone_rules: serde_json::json!([{"fence_kind": "school", "from": "07:00", "to": "18:00"}]),
    };
    store.upsert_tagged(&person).await.unwrap();
    store.upsert_tagged(&TaggedPerson { person_id: "P-0".into(), ..person.clone() }).await.unwrap();
    let persons = store.tagged_persons().await.unwrap();
    assert_eq!(persons.iter().map(|p| p.person_id.as_str()).collect::<Vec<_>>(), ["P-0", "p-1"]);
    assert_eq!(persons[1], person);

    let mut events: Vec<CameraEventRow> = (1..=6).map(|i| camera_event(i, Some("川S12345"), i * 100, true)).collect();
    events.push(camera_event(7, Some("川S12345"), 700, false));
    events.push(camera_event(8, Some("川A00001"), 800, true));
    events.push(CameraEventRow {
        person_id: Some("p-1".into()),
        plate: None,
        kind: "face",
        ..camera_event(9, None, 900, true)
    });
    store.write(&Batch { camera_events: &events, ..Batch::default() }).await.unwrap();
    let seqs = |rows: Vec<liandong_store::SightingRow>| rows.iter().map(|s| s.event_seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.sightings(false, "川S12345", 0, 1000, 10).await.unwrap()),
        [1, 2, 3, 4, 5, 6],
        "active reads only"
    );
    assert_eq!(
        seqs(store.sightings(false, "川S12345", 0, 1000, 3).await.unwrap()),
        [4, 5, 6],
        "the newest, oldest first"
    );
    assert_eq!(seqs(store.sightings(false, "川S12345", 200, 400, 10).await.unwrap()), [2, 3, 4], "inclusive range");
    assert_eq!(seqs(store.sightings(true, "p-1", 0, 1000, 10).await.unwrap()), [9]);
    assert_eq!(seqs(store.sightings(true, "川S12345", 0, 1000, 10).await.unwrap()), Vec::<i64>::new());

    let alerts = [alert(12, 500), alert(10, 300), alert(11, 300), alert(13, 900)];
    store.write(&Batch { alerts: &alerts, ..Batch::default() }).await.unwrap();
    let facts = store.alert_facts(300, 500).await.unwrap();
    assert_eq!(facts.iter().map(|f| (f.seq, f.time_ms)).collect::<Vec<_>>(), [(10, 300), (11, 300), (12, 500)]);
    assert_eq!(facts[0].township.as_deref(), Some("竹阳街道"));
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn the_audit_log_reads_newest_first() {
    let Some(db) = TestDb::create("the_audit_log_reads_newest_first").await else {
        return;
    };
    let store = db.store().await;
    // Equal times: the order of appending decides, not the time.
    let entries: Vec<AuditEntry> = (0..5).map(|i| audit(100, if i % 2 == 0 { "p-1" } else { "p-2" })).collect();
    let entries: Vec<AuditEntry> =
        entries.into_iter().enumerate().map(|(i, e)| AuditEntry { detail: format!("#{i}"), ..e }).collect();
    store.audit(&entries[..3]).await.unwrap();
    store.write(&Batch { audit: &entries[3..], ..Batch::default() }).await.unwrap();
    store.audit(&[]).await.unwrap();
    let details = |rows: Vec<AuditEntry>| rows.into_iter().map(|e| e.detail).collect::<Vec<_>>();
    assert_eq!(details(store.audit_log(None, 10).await.unwrap()), ["#4", "#3", "#2", "#1", "#0"]);
    assert_eq!(details(store.audit_log(None, 2).await.unwrap()), ["#4", "#3"]);
    assert_eq!(details(store.audit_log(Some("p-1"), 10).await.unwrap()), ["#4", "#2", "#0"]);
    assert_eq!(details(store.audit_log(Some("nobody"), 10).await.unwrap()), Vec::<String>::new());
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn distances_are_ranked_in_metres_through_geography() {
    let Some(db) = TestDb::create("distances_are_ranked_in_metres_through_geography").await else {
        return;
    };
    let store = db.store().await;
    // At Dazhu's latitude a degree of longitude is ~95.6 km and one of latitude
    // ~110.9 km: 77 m east is more degrees than 81 m north, so ranking in degrees
    // puts the farther point first.
    let (lon, lat) = (107.2, 30.73);
    let east_77_m = PositionRow { lon: lon + 77.0 / 95_640.0, lat, ..position(1, "east") };
    let north_81_m = PositionRow { lon, lat: lat + 81.0 / 110_880.0, ..position(2, "north") };
    store.write_batch(&[east_77_m, north_81_m], &[]).await.unwrap();

    let mut sql = db.sql().await;
    let rank = |order: &str| {
        format!(
            "SELECT device_id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography)
             FROM positions ORDER BY {order}"
        )
    };
    let metric: Vec<(String, f64)> =
        sqlx::query_as(&rank("geom::geography <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography"))
            .bind(lon)
            .bind(lat)
            .fetch_all(&mut sql)
            .await
            .unwrap();
    assert_eq!(metric.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(), ["east", "north"]);
    assert!((metric[0].1 - 77.0).abs() < 0.5, "{} m", metric[0].1);
    assert!((metric[1].1 - 81.0).abs() < 0.5, "{} m", metric[1].1);
    let degrees: Vec<(String, f64)> = sqlx::query_as(&rank("geom <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)"))
        .bind(lon)
        .bind(lat)
        .fetch_all(&mut sql)
        .await
        .unwrap();
    assert_eq!(degrees[0].0, "north", "the pitfall this schema avoids: degrees mis-rank");

    // The nearest-neighbour search can use the geography index.
    sql.execute("SET enable_seqscan = off").await.unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT seq FROM positions
         ORDER BY geom::geography <-> ST_SetSRID(ST_MakePoint(107.2, 30.73), 4326)::geography LIMIT 1",
    )
    .fetch_all(&mut sql)
    .await
    .unwrap();
    assert!(plan.iter().any(|l| l.contains("positions_geog")), "{plan:#?}");

    // Every table with a place is a point layer for GIS tools.
    let layers: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT f_table_name::text, type::text, srid FROM geometry_columns ORDER BY f_table_name COLLATE \"C\"",
    )
    .fetch_all(&mut sql)
    .await
    .unwrap();
    let want = ["alerts", "cameras", "device_state", "grid_reports", "incident_events", "incidents", "positions"];
    assert_eq!(layers, want.map(|t| (t.to_string(), "POINT".to_string(), 4326)));
    let geom: (f64, f64) =
        sqlx::query_as("SELECT ST_X(geom), ST_Y(geom) FROM positions WHERE seq = 2").fetch_one(&mut sql).await.unwrap();
    assert_eq!(geom, (lon, lat + 81.0 / 110_880.0), "the point is the row's lon/lat");
    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn a_database_whose_postgis_was_dropped_is_refused_by_name() {
    let Some(db) = TestDb::create("a_database_whose_postgis_was_dropped_is_refused_by_name").await else {
        return;
    };
    db.store().await.close().await;
    let mut sql = db.sql().await;
    sql.execute("DROP EXTENSION postgis CASCADE").await.unwrap();
    sql.close().await.unwrap();
    let err = PgStore::connect(&db.url).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Extension { extension: "postgis", database, .. } if *database == db.name),
        "{err}"
    );
    assert!(err.to_string().contains("dropped"), "{err}");
    db.remove().await;
}

#[tokio::test]
async fn a_role_that_may_not_create_postgis_is_told_so() {
    let Some(db) = TestDb::create("a_role_that_may_not_create_postgis_is_told_so").await else {
        return;
    };
    let role = unique_name("r");
    let mut admin = db.sql().await;
    admin.execute(format!("CREATE ROLE {role} LOGIN PASSWORD 'test-only'").as_str()).await.unwrap();
    admin.execute(format!("ALTER DATABASE {} OWNER TO {role}", db.name).as_str()).await.unwrap();
    admin.close().await.unwrap();
    // The role's URL: the server's, with the role and its password as the user.
    let at = db.url.find("://").unwrap() + 3;
    let host = &db.url[at..][db.url[at..].find('@').map_or(0, |i| i + 1)..];
    let url = format!("{}{role}:test-only@{host}", &db.url[..at]);

    let err = PgStore::connect(&url).await.unwrap_err();
    assert!(matches!(&err, StoreError::Extension { extension: "postgis", .. }), "{err}");
    let message = err.to_string();
    println!("{message}");
    assert!(message.contains("superuser") && message.contains(&role), "{message}");
    assert!(!message.contains("test-only"), "the password stays out of errors: {message}");
    let name = db.name.clone();
    let server = db.server_url.clone();
    db.remove().await;
    let mut admin = PgConnection::connect(&server).await.unwrap();
    admin.execute(format!("DROP ROLE {role}").as_str()).await.unwrap();
    let left: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await
        .unwrap();
    assert_eq!(left, None);
    admin.close().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_without_the_password() {
    // Needs no server: nothing listens on port 1.
    let err = PgStore::connect("postgres://liandong:s3cret@127.0.0.1:1/liandong").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1/liandong") && message.contains("refused"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn the_database_is_replaced_in_the_url() {
    let cases = [
        ("postgres://postgres@127.0.0.1:54329/liandong", "postgres://postgres@127.0.0.1:54329/t_1"),
        ("postgres://u:p@h/db?sslmode=disable", "postgres://u:p@h/t_1?sslmode=disable"),
        ("postgres://h:5432", "postgres://h:5432/t_1"),
    ];
    for (url, want) in cases {
        assert_eq!(with_database(url, "t_1"), want, "{url}");
    }
}

#[tokio::test]
async fn connect_rejects_a_url_that_is_not_one() {
    let err = PgStore::connect("not a url").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
}

/// Not a check: how fast group commits of reports go on this server. Run with
/// `cargo test --release -p liandong-store --test pg -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn write_throughput() {
    let Some(db) = TestDb::create("write_throughput").await else {
        return;
    };
    let store = db.store().await;
    for batch_rows in [1_i64, 50, 500, 5000] {
        let batches = (20_000 / batch_rows).clamp(20, 500);
        let start = std::time::Instant::now();
        let mut seq = store.max_seq().await.unwrap();
        for _ in 0..batches {
            let rows: Vec<PositionRow> =
                (seq + 1..=seq + batch_rows).map(|s| position(s, &format!("d{}", s % 300))).collect();
            let states: Vec<DeviceStateRow> = rows
                .iter()
                .map(|r| DeviceStateRow {
                    device_id: r.device_id.clone(),
                    seq: r.seq,
                    trusted: Some((r.fix_ms, r.lon, r.lat)),
                    marked: None,
                    fences: vec![],
                })
                .collect();
            store.write_batch(&rows, &states).await.unwrap();
            seq += batch_rows;
        }
        let elapsed = start.elapsed();
        println!(
            "{batches} commits of {batch_rows} reports: {:.2} ms per commit, {:.0} reports/s",
            elapsed.as_secs_f64() * 1000.0 / batches as f64,
            (batches * batch_rows) as f64 / elapsed.as_secs_f64()
        );
    }
    store.close().await;
    db.remove().await;
}
