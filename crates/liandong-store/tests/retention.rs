//! Retention on both stores: old reports go in batches, each device's last report
//! stays (the live state refers to it), recent ones are untouched; `prune_before`
//! (whole months on PostgreSQL) leaves both stores alike when the old rows are months
//! old.

use liandong_store::{Batch, CameraEventRow, DeviceStateRow, Durability, PositionRow, Store};

fn position(seq: i64, device: &str, fix_ms: i64) -> PositionRow {
    PositionRow {
        seq,
        device_id: device.into(),
        fix_ms,
        recv_ms: fix_ms,
        lon: 107.2,
        lat: 30.7,
        datum: "wgs84",
        speed_mps: None,
        course_deg: None,
        altitude_m: None,
        accuracy_m: None,
        battery_pct: None,
        flags: 0,
        attributes: "{}".into(),
        enrichment: "{}".into(),
    }
}

const DAY_MS: i64 = 86_400_000;

/// Device a: 50 old reports, its last one old too; device b: 30 old and 10 recent.
async fn prunes_old_reports_in_batches_and_keeps_each_last_one(store: Store) {
    let now = 1_800_000_000_000;
    let mut rows = Vec::new();
    for i in 0..50 {
        rows.push(position(i + 1, "a", now - 200 * DAY_MS + i * 1000));
    }
    for i in 0..40 {
        let t = if i < 30 { now - 300 * DAY_MS + i * 1000 } else { now - DAY_MS + i * 1000 };
        rows.push(position(100 + i, "b", t));
    }
    let states = [
        DeviceStateRow { device_id: "a".into(), seq: 50, trusted: None, marked: None, fences: vec![] },
        DeviceStateRow { device_id: "b".into(), seq: 139, trusted: None, marked: None, fences: vec![] },
    ];
    store.write(&Batch { positions: &rows, states: &states, ..Batch::default() }).await.unwrap();
    let before = now - 180 * DAY_MS;
    assert_eq!(store.prune_positions(before, 25).await.unwrap(), 25, "a batch at most");
    assert_eq!(store.prune_positions(before, 25).await.unwrap(), 25);
    assert_eq!(store.prune_positions(before, 25).await.unwrap(), 25);
    assert_eq!(store.prune_positions(before, 25).await.unwrap(), 4, "79 old, one of them a last report");
    assert_eq!(store.prune_positions(before, 25).await.unwrap(), 0);
    assert_eq!(store.position_seqs("a").await.unwrap(), [50], "a's last report stays");
    assert_eq!(store.position_seqs("b").await.unwrap(), (130..140).collect::<Vec<_>>(), "recent reports stay");
    let states = store.device_states().await.unwrap();
    assert!(states.iter().all(|(_, last)| last.is_some()), "every live state still finds its last report");
    store.close().await;
}

fn camera_event(seq: i64, time_ms: i64) -> CameraEventRow {
    CameraEventRow {
        seq,
        camera_id: "cam-1".into(),
        event_type: "ANPR".into(),
        kind: "anpr",
        active: true,
        active_post_count: None,
        time_ms,
        recv_ms: time_ms,
        plate: Some("渝A12345".into()),
        person_id: None,
        payload: "{}".into(),
    }
}

/// Reports and camera events of half a year ago and of yesterday; a cutoff three months
/// back removes the old ones on either store (every old month is wholly past it), but
/// not a device's last report, and a late report dated in a removed month goes in.
async fn prune_before_removes_months_old_rows_and_keeps_each_last_one(store: Store) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    store.ensure_partitions(now - 200 * DAY_MS, now).await.unwrap();
    let mut rows: Vec<PositionRow> =
        (0..30).map(|i| position(i + 1, "a", now - 190 * DAY_MS + i * 3_600_000)).collect();
    rows.extend((0..30).map(|i| position(100 + i, "b", now - 180 * DAY_MS + i * 3_600_000)));
    rows.extend((0..5).map(|i| position(200 + i, "b", now - DAY_MS + i * 60_000)));
    let events = [camera_event(300, now - 185 * DAY_MS), camera_event(301, now - DAY_MS)];
    let states = [
        DeviceStateRow { device_id: "a".into(), seq: 30, trusted: None, marked: None, fences: vec![] },
        DeviceStateRow { device_id: "b".into(), seq: 204, trusted: None, marked: None, fences: vec![] },
    ];
    store
        .write(&Batch { positions: &rows, camera_events: &events, states: &states, ..Batch::default() })
        .await
        .unwrap();

    let pruned = store.prune_before(now - 90 * DAY_MS).await.unwrap();
    assert!(!pruned.busy, "{pruned:?}");
    assert_eq!(store.position_seqs("a").await.unwrap(), [30], "a's last report stays");
    assert_eq!(store.position_seqs("b").await.unwrap(), (200..205).collect::<Vec<_>>());
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 1, "the old camera event goes");
    let states = store.device_states().await.unwrap();
    assert!(states.iter().all(|(s, last)| last.as_ref().map(|r| r.seq) == Some(s.seq)), "{states:?}");

    store.write(&Batch { positions: &[position(400, "b", now - 170 * DAY_MS)], ..Batch::default() }).await.unwrap();
    assert_eq!(store.position_seqs("b").await.unwrap(), [200, 201, 202, 203, 204, 400], "a late report goes in");
    store.prune_before(now - 90 * DAY_MS).await.unwrap();
    assert_eq!(store.position_seqs("b").await.unwrap(), (200..205).collect::<Vec<_>>(), "and goes at the next round");
    store.close().await;
}

#[tokio::test]
async fn sqlite_prune_before_removes_months_old_rows_and_keeps_each_last_one() {
    let dir = std::env::temp_dir().join(format!("liandong-prune-before-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    prune_before_removes_months_old_rows_and_keeps_each_last_one(Store::open(&dir, Durability::Normal).await.unwrap())
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_prune_before_removes_months_old_rows_and_keeps_each_last_one() {
    let Some((mut admin, db, url)) = pg_database("t_prune_before").await else { return };
    prune_before_removes_months_old_rows_and_keeps_each_last_one(Store::connect(&url).await.unwrap()).await;
    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&mut admin).await.unwrap();
}

/// A fresh database named `prefix` and this process on the test server, with an
/// admin connection to drop it by; None when no server is configured nor required.
async fn pg_database(prefix: &str) -> Option<(sqlx::PgConnection, String, String)> {
    let url = match std::env::var("LIANDONG_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var("LIANDONG_REQUIRE_PG").as_deref() == Ok("1") => {
            panic!("LIANDONG_REQUIRE_PG=1 but LIANDONG_TEST_PG_URL is not set")
        }
        _ => {
            eprintln!("skipped {prefix}: LIANDONG_TEST_PG_URL is not set");
            return None;
        }
    };
    use sqlx::Connection;
    let db = format!("{prefix}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut admin).await.unwrap();
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
    let db_url = format!("{base}/{db}");
    Some((admin, db, db_url))
}

#[tokio::test]
async fn sqlite_prunes_old_reports_in_batches_and_keeps_each_last_one() {
    let dir = std::env::temp_dir().join(format!("liandong-retention-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    prunes_old_reports_in_batches_and_keeps_each_last_one(Store::open(&dir, Durability::Normal).await.unwrap()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_prunes_old_reports_in_batches_and_keeps_each_last_one() {
    let url = match std::env::var("LIANDONG_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var("LIANDONG_REQUIRE_PG").as_deref() == Ok("1") => {
            panic!("LIANDONG_REQUIRE_PG=1 but LIANDONG_TEST_PG_URL is not set")
        }
        _ => {
            eprintln!("skipped postgres_prunes_old_reports: LIANDONG_TEST_PG_URL is not set");
            return;
        }
    };
    use sqlx::Connection;
    let db = format!("t_retention_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut admin).await.unwrap();
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
    prunes_old_reports_in_batches_and_keeps_each_last_one(Store::connect(&format!("{base}/{db}")).await.unwrap()).await;
    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&mut admin).await.unwrap();
}
