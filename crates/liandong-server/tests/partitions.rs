//! Monthly partitions on PostgreSQL from the server's side: a server starting on a
//! database whose months ahead are missing makes them before it takes reports, and a
//! late upload dated in a month no partition holds is still accepted and stored, and a
//! retention round tries a month held by a long query again until it can drop it.

use liandong_server::auth::Role;
use liandong_server::retention::{month_start_ms, MONTHS_AHEAD};
use liandong_test_support::rows::position;
use liandong_test_support::{config, fresh_dir, now_ms, token, Backend, Server};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

const ADMIN: &str = "admin-token";
const KEY: &str = "device-key-866001";
const DAY_S: i64 = 86_400;

/// The month partitions of the two partitioned tables, by name.
async fn month_partitions(sql: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT inhrelid::regclass::text AS part FROM pg_inherits
         WHERE inhparent IN ('positions'::regclass, 'camera_events'::regclass)
           AND inhrelid::regclass::text NOT LIKE '%\\_default' ORDER BY part",
    )
    .fetch_all(sql)
    .await
    .unwrap()
}

#[tokio::test]
async fn startup_makes_the_months_ahead_and_a_late_report_of_a_missing_month_is_stored() {
    let mut config = config(fresh_dir("partitions-startup"));
    config.tokens = vec![token(ADMIN, Role::Admin)];
    // An operator who takes uploads up to 400 days late, past any month made.
    config.ingest.accept_past_s = 400 * DAY_S as u64;
    if Backend::Postgis.configure(&mut config, "partitions_startup").await.is_none() {
        return;
    }
    let url = config.store.database_url.as_ref().unwrap().expose().to_owned();
    // A database last served months ago: migrated, but none of its months is this one
    // or one of the next two.
    liandong_store::Store::connect(&url).await.unwrap().close().await;
    let mut sql = PgConnection::connect(&url).await.unwrap();
    for part in month_partitions(&mut sql).await {
        sql.execute(format!("DROP TABLE {part}").as_str()).await.unwrap();
    }
    assert!(month_partitions(&mut sql).await.is_empty());

    let srv = Server::start(config).await;
    let now = now_ms();
    let mut want = Vec::new();
    for k in 0..MONTHS_AHEAD {
        let month: String =
            sqlx::query_scalar("SELECT to_char(to_timestamp($1 / 1000.0) AT TIME ZONE 'UTC', 'YYYY_MM')")
                .bind(month_start_ms(now, k))
                .fetch_one(&mut sql)
                .await
                .unwrap();
        want.push(format!("camera_events_p{month}"));
        want.push(format!("positions_p{month}"));
    }
    want.sort();
    assert_eq!(month_partitions(&mut sql).await, want, "this month and the next two, for both tables");

    srv.admin("/api/v1/devices", json!({"device_id": "866001", "name": "866001", "kind": "patrol_member", "key": KEY}))
        .await;
    let late_s = now / 1000 - 200 * DAY_S;
    let answer = srv
        .http
        .get(format!("{}/osmand?id=866001&timestamp={late_s}&lat=30.75&lon=107.05&key={KEY}", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    let stored: Vec<(i64, String)> =
        sqlx::query_as("SELECT fix_ms, tableoid::regclass::text FROM positions WHERE device_id = '866001'")
            .fetch_all(&mut sql)
            .await
            .unwrap();
    assert_eq!(stored, [(late_s * 1000, "positions_default".to_string())], "acknowledged and stored");
    sql.close().await.unwrap();
    srv.stop().await;
}

#[tokio::test]
async fn a_retention_round_retries_a_month_held_by_a_long_query_and_then_drops_it() {
    let mut config = config(fresh_dir("partitions-retry"));
    if Backend::Postgis.configure(&mut config, "partitions_retry").await.is_none() {
        return;
    }
    let url = config.store.database_url.as_ref().unwrap().expose().to_owned();
    let store = liandong_store::Store::connect(&url).await.unwrap();
    let now = now_ms();
    let day_ms = DAY_S * 1000;
    store.ensure_partitions(now - 100 * day_ms, now).await.unwrap();
    let old = position(1, "866001", now - 95 * day_ms);
    let recent = position(2, "866001", now);
    store.write_batch(&[old, recent], &[]).await.unwrap();

    // A history query holds `positions` for a second: the round's first try gives up
    // after the lock timeout, a later one drops the month.
    let mut reader = PgConnection::connect(&url).await.unwrap();
    reader.execute("BEGIN").await.unwrap();
    reader.execute("SELECT count(*) FROM positions").await.unwrap();
    let release = async move {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        reader.execute("COMMIT").await.unwrap();
        reader
    };
    let mut never = std::future::pending::<()>();
    let round = liandong_server::retention::prune_partitions(&store, 30 * day_ms, now, &mut never);
    let (pruned, mut reader) = tokio::join!(round, release);
    assert!(!pruned.busy, "{pruned:?}");
    assert!(pruned.partitions.iter().any(|p| p.starts_with("positions_p")), "{pruned:?}");
    assert_eq!(store.position_seqs("866001").await.unwrap(), [2]);
    // The round's second step removed the months it took out (their files).
    let detached: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_detached'")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(detached, 0, "the round drops what it detached");
    reader.close().await.unwrap();
    store.close().await;
}
