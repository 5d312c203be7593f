//! Retention on both stores: old reports go in batches, each device's last report
//! stays (the live state refers to it), recent ones are untouched; `prune_before`
//! (whole months on PostgreSQL) leaves both stores alike when the old rows are months
//! old.

use liandong_store::{Batch, Durability, PositionRow, Store};
use liandong_test_support::pg::{sqlite_store, TestDb};
use liandong_test_support::rows::{camera_event, position, state};

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
    let states = [state("a", 50), state("b", 139)];
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
    let states = [state("a", 30), state("b", 204)];
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
    let (store, dir) = sqlite_store("prune-before").await;
    prune_before_removes_months_old_rows_and_keeps_each_last_one(store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_prune_before_removes_months_old_rows_and_keeps_each_last_one() {
    let Some(db) = TestDb::create("postgres_prune_before").await else { return };
    prune_before_removes_months_old_rows_and_keeps_each_last_one(Store::connect(&db.url).await.unwrap()).await;
    db.remove().await;
}

#[tokio::test]
async fn sqlite_prunes_old_reports_in_batches_and_keeps_each_last_one() {
    let (store, dir) = sqlite_store("retention").await;
    prunes_old_reports_in_batches_and_keeps_each_last_one(store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_prunes_old_reports_in_batches_and_keeps_each_last_one() {
    let Some(db) = TestDb::create("postgres_prunes_old_reports").await else { return };
    prunes_old_reports_in_batches_and_keeps_each_last_one(Store::connect(&db.url).await.unwrap()).await;
    db.remove().await;
}

/// The next number comes from the sequence's head (PostgreSQL's migration 0023, SQLite's
/// 0024) as well as from the rows still stored: when retention removes the rows with the
/// highest numbers, those numbers stay given out, so a screen that saw them and
/// reconnects with `since` is not handed new events under old numbers.
async fn numbers_removed_by_retention_are_not_given_out_again(store: Store) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    store.ensure_partitions(now - 200 * DAY_MS, now).await.unwrap();
    let rows = [position(1, "a", now - DAY_MS)];
    let events = [camera_event(2, now - 190 * DAY_MS), camera_event(3, now - 185 * DAY_MS)];
    let states = [state("a", 1)];
    store
        .write(&Batch { positions: &rows, camera_events: &events, states: &states, ..Batch::default() })
        .await
        .unwrap();
    assert_eq!(store.max_seq().await.unwrap(), 3);
    store.prune_before(now - 90 * DAY_MS).await.unwrap();
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 0, "both camera events went");
    assert_eq!(store.max_seq().await.unwrap(), 3, "their numbers stay given out");
    let w = store.begin_write().await.unwrap();
    assert_eq!(w.committed(), 3, "the next commit numbers from 4");
    let refused = w.commit(&Batch { positions: &[position(3, "a", now)], ..Batch::default() }).await;
    assert!(matches!(refused, Err(liandong_store::StoreError::SeqConflict { committed: 3, first: 3 })), "{refused:?}");
    store.close().await;
}

#[tokio::test]
async fn postgres_numbers_removed_by_retention_are_not_given_out_again() {
    let Some(db) = TestDb::create("postgres_numbers_stay_given_out").await else { return };
    numbers_removed_by_retention_are_not_given_out_again(Store::connect(&db.url).await.unwrap()).await;
    db.remove().await;
}

/// On SQLite a running server numbers from what it committed itself; the store is asked
/// when a server starts, which is what reopening it here stands for.
#[tokio::test]
async fn sqlite_numbers_removed_by_retention_are_not_given_out_again() {
    let (store, dir) = sqlite_store("numbers-stay-given-out").await;
    numbers_removed_by_retention_are_not_given_out_again(store).await;
    let reopened = Store::open(&dir, Durability::Normal).await.unwrap();
    assert_eq!(reopened.max_seq().await.unwrap(), 3, "a server started on the store numbers from 4");
    reopened.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
