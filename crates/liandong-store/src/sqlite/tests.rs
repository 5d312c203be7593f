//! The embedded store's own tests: what survives reopening the file, and a round trip
//! of every registry and event table in one sequence.

use std::path::PathBuf;

use crate::{
    AlertRow, Batch, CameraEventRow, CameraRecord, DeviceRecord, DeviceStateRow, Durability, PositionRow, Store,
    StoreError, StoredMembership, WatchRecord,
};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("liandong-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn row(seq: i64, device: &str) -> PositionRow {
    PositionRow {
        seq,
        device_id: device.into(),
        fix_ms: seq * 1000,
        recv_ms: seq * 1000 + 5,
        lon: 107.2,
        lat: 30.73,
        datum: "wgs84",
        speed_mps: None,
        course_deg: Some(90.0),
        altitude_m: None,
        accuracy_m: Some(8.0),
        battery_pct: None,
        flags: 0,
        attributes: "{}".into(),
        enrichment: "{}".into(),
    }
}

#[tokio::test]
async fn a_batch_and_its_states_survive_reopening() {
    let dir = tmpdir("reopen");
    let store = Store::open(&dir, Durability::Full).await.unwrap();
    let rows: Vec<PositionRow> = (1..=1200).map(|s| row(s, if s % 2 == 0 { "a" } else { "b" })).collect();
    let state = DeviceStateRow {
        device_id: "a".into(),
        seq: 1200,
        trusted: Some((1_200_000, 107.2, 30.73)),
        marked: None,
        fences: vec![StoredMembership { fence: "fence-school-1".into(), since_ms: 5, dwell_fired: true }],
    };
    store.write_batch(&rows, std::slice::from_ref(&state)).await.unwrap();
    store.close().await;

    let store = Store::open(&dir, Durability::Full).await.unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 1200);
    assert_eq!(store.count_positions(Some("a")).await.unwrap(), 600);
    let states = store.device_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, state);
    assert_eq!(states[0].1.as_ref(), rows.last(), "the state joins its last report");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn upsert_device_reports_whether_it_was_new() {
    let dir = tmpdir("devices");
    let store = Store::open(&dir, Durability::Normal).await.unwrap();
    let mut d = DeviceRecord {
        device_id: "866123".into(),
        name: "officer".into(),
        kind: "post_officer".into(),
        unit_id: Some("post-01".into()),
        key: "k".into(),
        created_ms: 1,
        updated_ms: 1,
        person_id: None,
    };
    assert!(store.upsert_device(&d).await.unwrap());
    d.name = "renamed".into();
    assert!(!store.upsert_device(&d).await.unwrap());
    assert_eq!(store.devices().await.unwrap()[0].name, "renamed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cameras_watch_list_events_and_alerts_round_trip_in_one_sequence() {
    let dir = std::env::temp_dir().join(format!("liandong-store-alerts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir, Durability::Normal).await.unwrap();
    let cam = CameraRecord {
        camera_id: "cam-001".into(),
        name: "卡口".into(),
        kind: "checkpoint".into(),
        lon: 107.2,
        lat: 30.7,
        key: "camera-key-1".into(),
        updated_ms: 1,
    };
    store.upsert_camera(&cam).await.unwrap();
    assert_eq!(store.cameras().await.unwrap(), vec![cam]);
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
    assert_eq!(store.watchlist().await.unwrap(), vec![watch]);
    let event = CameraEventRow {
        seq: 7,
        camera_id: "cam-001".into(),
        event_type: "ANPR".into(),
        kind: "anpr",
        active: true,
        active_post_count: Some(1),
        time_ms: 5,
        recv_ms: 6,
        plate: Some("川S12345".into()),
        person_id: None,
        payload: "{}".into(),
    };
    let alert = AlertRow {
        seq: 8,
        rule: "watchlist_plate".into(),
        priority: 1,
        camera_id: Some("cam-001".into()),
        event_seq: Some(7),
        time_ms: 5,
        lon: 107.2,
        lat: 30.7,
        roles: vec!["operator".into()],
        payload: "{\"seq\":8}".into(),
        township: Some("竹阳街道".into()),
    };
    store
        .write(&Batch { camera_events: &[event], alerts: std::slice::from_ref(&alert), ..Batch::default() })
        .await
        .unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 8, "the sequence spans every table");
    assert_eq!(store.alerts_after(7, 10).await.unwrap(), vec![alert]);
    assert_eq!(store.count_after(0).await.unwrap(), 1, "alerts count in the feed; camera events do not");
    assert_eq!(store.count_camera_events("cam-001").await.unwrap(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_key_repeated_in_one_commit_keeps_its_last_row() {
    let dir = tmpdir("repeat");
    let store = Store::open(&dir, Durability::Normal).await.unwrap();
    // The writer upserts row after row: the device's last state is the 700th.
    let rows: Vec<PositionRow> = (1..=700).map(|s| row(s, "a")).collect();
    let states: Vec<DeviceStateRow> = (1..=700)
        .map(|s| DeviceStateRow { device_id: "a".into(), seq: s, trusted: None, marked: None, fences: vec![] })
        .collect();
    store.write_batch(&rows, &states).await.unwrap();
    let got = store.device_states().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.seq, 700);
    assert_eq!(store.count_positions(Some("a")).await.unwrap(), 700);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The writer thread checks the numbers against the file itself: a store whose idea of
/// the maximum is stale (another store wrote the same file) is refused unwritten and
/// learns the real maximum, so the next batch numbers after it.
#[tokio::test]
async fn a_stale_maximum_is_refused_unwritten_and_corrected() {
    let dir = tmpdir("stale");
    let first = Store::open(&dir, Durability::Normal).await.unwrap();
    let second = Store::open(&dir, Durability::Normal).await.unwrap();
    first.write_batch(&[row(1, "a"), row(2, "a")], &[]).await.unwrap();

    let w = second.begin_write().await.unwrap();
    assert_eq!(w.committed(), 0, "the second store read the maximum before the first wrote");
    let refused = w.commit(&crate::Batch { positions: &[row(1, "b")], ..Default::default() }).await;
    assert!(matches!(refused, Err(StoreError::SeqConflict { committed: 2, first: 1 })), "{refused:?}");
    assert_eq!(first.count_positions(Some("b")).await.unwrap(), 0, "nothing of the refused batch is written");

    let w = second.begin_write().await.unwrap();
    assert_eq!(w.committed(), 2, "the refusal taught the real maximum");
    w.commit(&crate::Batch { positions: &[row(3, "b")], ..Default::default() }).await.unwrap();
    assert_eq!(first.max_seq().await.unwrap(), 3);
    first.close().await;
    second.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The writer remembers the highest number it committed and asks the file only when
/// another connection has committed since (`PRAGMA data_version`): a store that has
/// written, then sees another store write the same file, still refuses a taken number.
#[tokio::test]
async fn a_maximum_remembered_by_the_writer_is_checked_again_after_another_store_writes() {
    let dir = tmpdir("remembered");
    let first = Store::open(&dir, Durability::Normal).await.unwrap();
    first.write_batch(&[row(1, "a"), row(2, "a")], &[]).await.unwrap();
    let second = Store::open(&dir, Durability::Normal).await.unwrap();
    second.write_batch(&[row(3, "b")], &[]).await.unwrap();

    let w = first.begin_write().await.unwrap();
    assert_eq!(w.committed(), 2, "the first store's own idea of the maximum");
    let refused = w.commit(&crate::Batch { positions: &[row(3, "a")], ..Default::default() }).await;
    assert!(matches!(refused, Err(StoreError::SeqConflict { committed: 3, first: 3 })), "{refused:?}");
    let w = first.begin_write().await.unwrap();
    w.commit(&crate::Batch { positions: &[row(4, "a")], ..Default::default() }).await.unwrap();
    // With nobody else writing, its own commits keep it right.
    let w = first.begin_write().await.unwrap();
    assert_eq!(w.committed(), 4);
    let refused = w.commit(&crate::Batch { positions: &[row(4, "a")], ..Default::default() }).await;
    assert!(matches!(refused, Err(StoreError::SeqConflict { committed: 4, first: 4 })), "{refused:?}");
    assert_eq!(second.max_seq().await.unwrap(), 4);
    first.close().await;
    second.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A commit alone runs on the caller's thread (`Writing::commit_alone`) on the same
/// connection as the writer thread's commits: each path sees what the other committed,
/// both check the numbers, audit appends on the thread meanwhile all land, and once the
/// store is closed a commit alone fails too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_alone_shares_the_writers_connection_and_its_checks() {
    let dir = tmpdir("alone");
    let store = Store::open(&dir, Durability::Normal).await.unwrap();
    store.write_batch(&[row(1, "a"), row(2, "a")], &[]).await.unwrap();
    let w = store.begin_write().await.unwrap();
    assert_eq!(w.committed(), 2);
    w.commit_alone(&batch(&[row(3, "b")])).await.unwrap();
    // The thread's commit after it knows its number is taken, and the other way round.
    let w = store.begin_write().await.unwrap();
    assert_eq!(w.committed(), 3, "the lock learnt the number committed on the caller's thread");
    let refused = w.commit(&batch(&[row(3, "a")])).await;
    assert!(matches!(refused, Err(StoreError::SeqConflict { committed: 3, first: 3 })), "{refused:?}");
    store.write_batch(&[row(4, "a")], &[]).await.unwrap();
    let w = store.begin_write().await.unwrap();
    let refused = w.commit_alone(&batch(&[row(4, "b")])).await;
    assert!(matches!(refused, Err(StoreError::SeqConflict { committed: 4, first: 4 })), "{refused:?}");

    // Audit appends go to the thread without the write lock, while commits alone run.
    let appends: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.audit(&[audit_entry(i)]).await })
        })
        .collect();
    for seq in 5..25 {
        store.begin_write().await.unwrap().commit_alone(&batch(&[row(seq, "b")])).await.unwrap();
    }
    for a in appends {
        a.await.unwrap().unwrap();
    }
    assert_eq!(store.count_positions(Some("b")).await.unwrap(), 21);
    assert_eq!(store.max_seq().await.unwrap(), 24);
    assert_eq!(store.audit_log(None, 100).await.unwrap().len(), 20);

    let w = store.begin_write().await.unwrap();
    store.close().await;
    let late = w.commit_alone(&batch(&[row(25, "a")])).await;
    assert!(matches!(late, Err(StoreError::Closed)), "{late:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A commit alone never waits on the caller's thread for a write lock another connection
/// holds: a registry change's transaction on the reading side, whose task runs on the
/// same runtime thread (one thread here, as in `#[tokio::test]` and on a busy server),
/// can only finish if that thread is free. The commit goes to the writer thread, which
/// waits there, and both land. (On the caller's thread it waited the five seconds of the
/// busy timeout and failed: "database is locked".)
#[tokio::test(flavor = "current_thread")]
async fn a_commit_alone_leaves_a_locked_database_to_the_writer_thread() {
    let dir = tmpdir("alone-locked");
    let store = Store::open(&dir, Durability::Normal).await.unwrap();
    let Store::Sqlite(sqlite) = &store else { unreachable!("Store::open on a directory is SQLite") };
    let mut registry_change = sqlite.write_pool().begin().await.unwrap();
    // A write statement takes the database's write lock, even one that changes no row.
    sqlx::query("DELETE FROM devices WHERE 0").execute(&mut *registry_change).await.unwrap();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        registry_change.commit().await
    });
    let w = store.begin_write().await.unwrap();
    let started = std::time::Instant::now();
    w.commit_alone(&batch(&[row(1, "a")])).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "waited {:?}", started.elapsed());
    holder.await.unwrap().unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 1);
    // With the lock free again, the next commit alone runs on this thread as before.
    store.begin_write().await.unwrap().commit_alone(&batch(&[row(2, "a")])).await.unwrap();
    assert_eq!(store.count_positions(Some("a")).await.unwrap(), 2);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn batch(positions: &[PositionRow]) -> Batch<'_> {
    Batch { positions, ..Default::default() }
}

fn audit_entry(i: i64) -> crate::AuditEntry {
    crate::AuditEntry {
        at_ms: i,
        actor: "tester".into(),
        action: "read".into(),
        subject: format!("device:{i}"),
        detail: String::new(),
    }
}

/// A write after the store is closed (the server shutting down) is an error, not a hang.
#[tokio::test]
async fn a_write_after_close_fails_at_once() {
    let dir = tmpdir("closed");
    let store = Store::open(&dir, Durability::Normal).await.unwrap();
    store.close().await;
    let late = tokio::time::timeout(std::time::Duration::from_secs(5), store.write_batch(&[row(1, "a")], &[]))
        .await
        .expect("no hang");
    assert!(matches!(late, Err(StoreError::Closed)), "{late:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
