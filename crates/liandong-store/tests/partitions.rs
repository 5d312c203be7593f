//! Monthly partitions on PostgreSQL (migration 0021): the migration of a store that
//! already holds months of data, retention by dropping whole months, and the months
//! made ahead. Each test makes a database of its own on the server
//! `LIANDONG_TEST_PG_URL` names and drops it at the end; without one it is skipped,
//! unless `LIANDONG_REQUIRE_PG=1`, which makes it fail.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use liandong_store::pg::PgStore;
use liandong_store::{Batch, CameraEventRow, PositionRow, Store};
use liandong_test_support::pg::TestDb;
use liandong_test_support::rows::{camera_event, position, state};
use sqlx::{Connection, Executor, PgConnection};

const DAY_MS: i64 = 86_400_000;
/// 2001-06-01T00:00:00Z and 2098-06-01T00:00:00Z: times ingest accepts from a device
/// whose clock is far off.
const FAR_PAST_MS: i64 = 991_353_600_000;
const FAR_FUTURE_MS: i64 = 4_052_275_200_000;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The months (partition name, upper bound) of a partitioned table, oldest first; the
/// default partition is not a month.
async fn months(sql: &mut PgConnection, parent: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT c.relname::text, (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''?(-?[0-9]+)''?\\)'))[1]::bigint AS hi
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' ORDER BY hi",
    )
    .bind(parent)
    .fetch_all(sql)
    .await
    .unwrap()
}

/// The partition a row of `positions` is in.
async fn partition_of(sql: &mut PgConnection, seq: i64) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM positions WHERE seq = $1")
        .bind(seq)
        .fetch_one(sql)
        .await
        .unwrap()
}

/// Every column of every row of the two event tables and of the live states, as one
/// count and one digest each, in sequence order.
async fn fingerprint(sql: &mut PgConnection) -> Vec<(String, i64, String)> {
    let queries = [
        (
            "positions",
            "SELECT count(*), coalesce(md5(string_agg(concat_ws(',', seq, device_id, fix_ms, recv_ms, lon, lat, datum,
               speed_mps, course_deg, altitude_m, accuracy_m, battery_pct, flags, attributes, enrichment,
               ST_AsEWKT(geom)), '|' ORDER BY seq)), '') FROM positions",
        ),
        (
            "camera_events",
            "SELECT count(*), coalesce(md5(string_agg(concat_ws(',', seq, camera_id, event_type, kind, active,
               active_post_count, time_ms, recv_ms, plate, person_id, payload), '|' ORDER BY seq)), '') FROM camera_events",
        ),
        (
            "device_state + last report",
            "SELECT count(*), coalesce(md5(string_agg(concat_ws(',', d.device_id, d.seq, p.seq, p.fix_ms), '|'
               ORDER BY d.device_id)), '') FROM device_state d LEFT JOIN positions p ON p.seq = d.seq",
        ),
    ];
    let mut out = Vec::new();
    for (what, q) in queries {
        let (n, digest): (i64, String) = sqlx::query_as(q).fetch_one(&mut *sql).await.unwrap();
        out.push((what.to_string(), n, digest));
    }
    out
}

/// The shape of the event tables' parents: columns in order with type, nullability,
/// collation and generation, the indexes and the constraints.
async fn shape(sql: &mut PgConnection) -> Vec<String> {
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                coalesce(co.collname::text, '-'), a.attgenerated, pg_get_expr(d.adbin, d.adrelid))
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         LEFT JOIN pg_collation co ON co.oid = a.attcollation
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relname IN ('positions', 'camera_events', 'alerts') AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY c.relname, a.attnum",
    )
    .fetch_all(&mut *sql)
    .await
    .unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE tablename IN ('positions', 'camera_events', 'alerts') ORDER BY indexname",
    )
    .fetch_all(&mut *sql)
    .await
    .unwrap();
    let constraints: Vec<String> = sqlx::query_scalar(
        "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid IN ('positions'::regclass, 'camera_events'::regclass) ORDER BY conname",
    )
    .fetch_all(&mut *sql)
    .await
    .unwrap();
    out.extend(indexes);
    out.extend(constraints);
    out
}

/// Applies the migrations up to `last` (as a server of that schema did).
async fn migrate_up_to(sql: &mut PgConnection, last: i64) {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/postgres"));
    let mut m = sqlx::migrate::Migrator::new(dir).await.unwrap();
    m.migrations = m.migrations.iter().filter(|x| x.version <= last).cloned().collect::<Vec<_>>().into();
    m.run_direct(sql).await.unwrap();
}

/// Stores months of reports, camera events and live states the way a server of schema
/// 20 did (its inserts, its columns), up to `now`.
async fn fill_schema_20(sql: &mut PgConnection, now: i64) -> (i64, Vec<(String, i64)>) {
    let mut seq = 0;
    let mut last: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    let mut rows = Vec::new();
    // 12 devices, a report every 5 hours for 150 days; one device's clock is far off
    // in both directions, another's last report is months old.
    for k in 0..(150 * 24 / 5) {
        for d in 0..12 {
            let fix = now - 150 * DAY_MS + k * 5 * 3_600_000 + d * 60_000;
            if d == 11 && fix > now - 100 * DAY_MS {
                continue;
            }
            seq += 1;
            let device = format!("dev-{d:02}");
            let fix = match (d, k) {
                (10, 7) => FAR_PAST_MS,
                (10, 8) => FAR_FUTURE_MS,
                _ => fix,
            };
            rows.push(position(seq, &device, fix));
            let entry = last.entry(device).or_insert((fix, seq));
            if fix >= entry.0 {
                *entry = (fix, seq);
            }
        }
    }
    for chunk in rows.chunks(1000) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO positions (seq, device_id, fix_ms, recv_ms, lon, lat, datum, speed_mps, course_deg, altitude_m,
             accuracy_m, battery_pct, flags, attributes, enrichment) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.seq)
                .push_bind(&r.device_id)
                .push_bind(r.fix_ms)
                .push_bind(r.recv_ms)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(r.datum)
                .push_bind(r.speed_mps)
                .push_bind(r.course_deg)
                .push_bind(r.altitude_m)
                .push_bind(r.accuracy_m)
                .push_bind(r.battery_pct)
                .push_bind(i64::from(r.flags))
                .push_bind(&r.attributes)
                .push_bind(&r.enrichment);
        });
        qb.build().execute(&mut *sql).await.unwrap();
    }
    for (device, (_, s)) in &last {
        sqlx::query("INSERT INTO device_state (device_id, seq, fences) VALUES ($1, $2, '[]')")
            .bind(device)
            .bind(s)
            .execute(&mut *sql)
            .await
            .unwrap();
    }
    for k in 0..600 {
        seq += 1;
        let e = camera_event(seq, now - 150 * DAY_MS + k * 6 * 3_600_000);
        sqlx::query(
            "INSERT INTO camera_events (seq, camera_id, event_type, kind, active, active_post_count, time_ms, recv_ms,
             plate, person_id, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(e.seq)
        .bind(&e.camera_id)
        .bind(&e.event_type)
        .bind(e.kind)
        .bind(e.active)
        .bind(e.active_post_count)
        .bind(e.time_ms)
        .bind(e.recv_ms)
        .bind(if k % 3 == 0 { None } else { e.plate.as_deref() })
        .bind(if k % 3 == 0 { Some("p-1") } else { None })
        .bind(&e.payload)
        .execute(&mut *sql)
        .await
        .unwrap();
    }
    (seq, last.into_iter().map(|(d, (_, s))| (d, s)).collect())
}

#[tokio::test]
async fn migrating_a_store_with_months_of_data_keeps_every_row_and_the_live_states() {
    let Some(db) = TestDb::create("migrating_a_store_with_months_of_data").await else { return };
    let now = now_ms();
    let mut sql = db.sql().await;
    migrate_up_to(&mut sql, 20).await;
    let (max_seq, last) = fill_schema_20(&mut sql, now).await;
    let before = fingerprint(&mut sql).await;
    assert!(before[0].1 > 8000 && before[1].1 == 600 && before[2].1 == 12, "{before:?}");

    // Connecting applies 0021 to the store as it is.
    let store = PgStore::connect(&db.url).await.unwrap();
    assert_eq!(fingerprint(&mut sql).await, before, "every row and every state's join, unchanged");
    assert_eq!(store.max_seq().await.unwrap(), max_seq);

    // Each row sits in its month; only the clock years ahead is in no month.
    let position_months = months(&mut sql, "positions").await;
    assert!(position_months.len() >= 7, "150 days and the months ahead: {position_months:?}");
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM positions p
         WHERE to_char(to_timestamp(p.fix_ms / 1000.0) AT TIME ZONE 'UTC', '\"positions_p\"YYYY_MM')
               <> p.tableoid::regclass::text",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    assert_eq!(misplaced, 1, "all but the one report of 2098 are in their month");
    let far_future: i64 = sqlx::query_scalar("SELECT seq FROM positions WHERE fix_ms = $1")
        .bind(FAR_FUTURE_MS)
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert_eq!(partition_of(&mut sql, far_future).await, "positions_default");
    let camera_misplaced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM camera_events e
         WHERE to_char(to_timestamp(e.time_ms / 1000.0) AT TIME ZONE 'UTC', '\"camera_events_p\"YYYY_MM')
               <> e.tableoid::regclass::text",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    assert_eq!(camera_misplaced, 0);

    // The live state after a restart: every device finds its last report.
    let states = store.device_states().await.unwrap();
    assert_eq!(states.len(), 12);
    for ((s, report), (device, seq)) in states.iter().zip(&last) {
        assert_eq!((&s.device_id, s.seq), (device, *seq));
        assert_eq!(report.as_ref().map(|r| r.seq), Some(*seq), "{device}'s last report");
    }
    assert_eq!(store.positions_after(0, 100_000).await.unwrap().len() as i64, before[0].1);
    let (from, to) = (now - 40 * DAY_MS, now - 39 * DAY_MS);
    let track = store.track("dev-03", from, to, 1000).await.unwrap();
    let want = (0..(150 * 24 / 5))
        .map(|k| now - 150 * DAY_MS + k * 5 * 3_600_000 + 3 * 60_000)
        .filter(|t| (from..=to).contains(t))
        .collect::<Vec<_>>();
    assert_eq!(track.iter().map(|r| r.fix_ms).collect::<Vec<_>>(), want, "a report every 5 hours");

    // The migrated schema is the one a new database gets.
    let fresh = TestDb::create("migrating_a_store_with_months_of_data_fresh").await.unwrap();
    let fresh_store = PgStore::connect(&fresh.url).await.unwrap();
    let mut fresh_sql = fresh.sql().await;
    assert_eq!(shape(&mut sql).await, shape(&mut fresh_sql).await);
    fresh_sql.close().await.unwrap();
    fresh_store.close().await;
    fresh.remove().await;

    // New writes go in: now, a late upload, and clocks far off either way.
    let new_rows = [
        position(max_seq + 1, "dev-00", now),
        position(max_seq + 2, "dev-00", now - 20 * DAY_MS),
        position(max_seq + 3, "dev-new", FAR_PAST_MS + DAY_MS),
        position(max_seq + 4, "dev-new", FAR_FUTURE_MS + DAY_MS),
    ];
    let events = [camera_event(max_seq + 5, now), camera_event(max_seq + 6, FAR_PAST_MS)];
    store.write(&Batch { positions: &new_rows, camera_events: &events, ..Batch::default() }).await.unwrap();
    assert_eq!(store.positions_after(max_seq, 10).await.unwrap(), new_rows);
    assert_eq!(store.count_camera_events("cam-1").await.unwrap(), 602);
    assert_eq!(store.max_seq().await.unwrap(), max_seq + 6);

    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

/// The plan of `query`, as text.
async fn explain(sql: &mut PgConnection, query: &str) -> String {
    let plan: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN {query}")).fetch_all(sql).await.unwrap();
    plan.join("\n")
}

/// The partitions of `positions` a plan reads (`… on positions_pYYYY_MM positions`).
fn read_tables(plan: &str) -> Vec<String> {
    let mut tables: Vec<String> = plan
        .split(" on ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|t| t.starts_with("positions_"))
        .map(str::to_owned)
        .collect();
    tables.sort();
    tables.dedup();
    tables
}

/// The history questions read only the months they ask about, and from the covering
/// indexes alone (flags 51: `HISTORY_EXCLUDED_FLAGS`).
#[tokio::test]
async fn history_questions_read_only_their_months_through_their_indexes() {
    let Some(db) = TestDb::create("history_questions_read_only_their_months").await else { return };
    let now = now_ms();
    let store = PgStore::connect(&db.url).await.unwrap();
    store.ensure_partitions(now - 150 * DAY_MS, now).await.unwrap();
    let rows: Vec<PositionRow> =
        (1..=3000).map(|i| position(i, &format!("d{}", i % 30), now - i * 3_600_000)).collect();
    store.write(&Batch { positions: &rows, ..Batch::default() }).await.unwrap();
    let mut sql = db.sql().await;
    // As autovacuum leaves a month that stopped growing: statistics, visibility map set.
    sql.execute("VACUUM (ANALYZE) positions").await.unwrap();
    sql.execute("SET enable_seqscan = off").await.unwrap();
    let month = |ms: i64| {
        let days = ms.div_euclid(DAY_MS);
        // The civil month of a day number (Howard Hinnant's days_from_civil, inverted).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!("positions_p{y:04}_{m:02}")
    };
    // One moment of the county: the window's month only, each unit's last fix chosen
    // from the covering time index alone (migration 0022), as `positions_at` asks.
    let at = now - 40 * DAY_MS;
    let plan = explain(
        &mut sql,
        &format!(
            "SELECT DISTINCT ON (device_id) device_id, seq, fix_ms, lon, lat FROM positions
             WHERE fix_ms BETWEEN {} AND {at} AND (flags & 51) = 0
             ORDER BY device_id, fix_ms DESC, seq DESC",
            at - 600_000
        ),
    )
    .await;
    assert_eq!(read_tables(&plan), [month(at)], "one month: {plan}");
    assert!(plan.contains("Index Only Scan using positions_p") && plan.contains("_fix_ms_device_id_"), "{plan}");
    // One unit's day: its month, from (device_id, fix_ms) alone, as `track_points` asks.
    let plan = explain(
        &mut sql,
        &format!(
            "SELECT seq, fix_ms, lon, lat FROM positions
             WHERE device_id = 'd7' AND fix_ms BETWEEN {} AND {at} AND (flags & 51) = 0
             ORDER BY fix_ms, seq",
            at - 3_600_000
        ),
    )
    .await;
    assert_eq!(read_tables(&plan), [month(at)], "one month: {plan}");
    assert!(plan.contains("Index Only Scan using positions_p") && plan.contains("_device_id_fix_ms_"), "{plan}");
    // Each device's newest fix (the sequencer asks at every start): one lookup down the
    // device index per device, never a walk down the time index filtering every entry,
    // which on a year took minutes once that index carried the device (migration 0022).
    let plan = explain(&mut sql, liandong_store::pg::NEWEST_FIXES_SQL).await;
    assert!(plan.contains("Index Cond: ((device_id = (d.device_id)"), "{plan}");
    // A township's alerts over a month.
    let plan = explain(
        &mut sql,
        &format!(
            "SELECT count(*) FROM alerts WHERE township = '竹阳街道' AND time_ms BETWEEN {} AND {now}",
            now - 30 * DAY_MS
        ),
    )
    .await;
    assert!(plan.contains("alerts_township_time"), "{plan}");
    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn retention_drops_whole_months_and_keeps_each_last_report() {
    let Some(db) = TestDb::create("retention_drops_whole_months").await else { return };
    let now = now_ms();
    let store = PgStore::connect(&db.url).await.unwrap();
    store.ensure_partitions(now - 200 * DAY_MS, now).await.unwrap();
    let mut sql = db.sql().await;
    let cutoff = now - 120 * DAY_MS;
    // The first instant of the cutoff's month: rows between it and the cutoff are the
    // partial month's remainder.
    let cutoff_month: i64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM date_trunc('month', to_timestamp($1 / 1000.0) AT TIME ZONE 'UTC')) * 1000)::bigint",
    )
    .bind(cutoff)
    .fetch_one(&mut sql)
    .await
    .unwrap();
    let remainder_ms = cutoff_month + 3_600_000;
    assert!(remainder_ms < cutoff, "the test needs the cutoff past its month's first hour");
    let positions = [
        position(1, "a", now - 190 * DAY_MS),
        position(2, "a", now - 180 * DAY_MS), // a's last report: old
        position(3, "b", now - 185 * DAY_MS),
        position(4, "b", remainder_ms),
        position(5, "b", now - 60 * DAY_MS),
        position(6, "b", now - DAY_MS), // b's last
    ];
    let events = [camera_event(7, now - 170 * DAY_MS), camera_event(8, remainder_ms), camera_event(9, now - DAY_MS)];
    store
        .write(&Batch {
            positions: &positions,
            camera_events: &events,
            states: &[state("a", 2), state("b", 6)],
            ..Batch::default()
        })
        .await
        .unwrap();
    let position_months = months(&mut sql, "positions").await;
    let camera_months = months(&mut sql, "camera_events").await;
    let (old, current): (Vec<_>, Vec<_>) = position_months.iter().cloned().partition(|(_, hi)| *hi <= cutoff);
    assert!(old.len() >= 2 && !current.is_empty(), "{position_months:?}");

    // A month an earlier round detached but did not get to drop (it stopped between
    // its two transactions).
    sql.execute("CREATE TABLE positions_p2001_01_detached (LIKE positions)").await.unwrap();

    // What a benchmark reads before and after a round, from the catalogue: the months
    // the round will drop, with the planner's estimates once analysed.
    sql.execute("ANALYZE positions, camera_events").await.unwrap();
    let listed = store.months_before(cutoff).await.unwrap();
    let estimated: i64 = listed.iter().filter(|m| m.table == "positions").filter_map(|m| m.rows_estimate).sum();
    assert_eq!(estimated, 3, "the three reports of the old months");

    let pruned = store.prune_before(cutoff).await.unwrap();
    assert!(!pruned.busy && pruned.left.is_empty(), "{pruned:?}");
    assert_eq!(listed.iter().map(|m| m.partition.clone()).collect::<Vec<_>>(), pruned.partitions);
    assert!(store.months_before(cutoff).await.unwrap().is_empty());
    assert_eq!(
        store.default_rows_before(cutoff).await.unwrap(),
        [("positions", 1), ("camera_events", 0)],
        "a's last report, kept in the default partition"
    );
    // The months are out of their tables; their files go in the round's second step,
    // with the month an earlier round left.
    let detached = "SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_detached'";
    let waiting: i64 = sqlx::query_scalar(detached).fetch_one(&mut sql).await.unwrap();
    assert_eq!(waiting, pruned.partitions.len() as i64 + 1, "{pruned:?}");
    assert_eq!(store.remove_detached().await.unwrap() as i64, waiting);
    let leftovers: i64 = sqlx::query_scalar(detached).fetch_one(&mut sql).await.unwrap();
    assert_eq!(leftovers, 0, "no detached month is left behind");
    let old_camera: Vec<String> =
        camera_months.iter().filter(|(_, hi)| *hi <= cutoff).map(|(p, _)| p.clone()).collect();
    let mut dropped: Vec<String> = old.iter().map(|(p, _)| p.clone()).collect();
    dropped.extend(old_camera);
    assert_eq!(pruned.partitions, dropped, "every month wholly before the cutoff, oldest first, per table");
    assert_eq!(pruned.reports_kept, 1, "a's last report");
    assert_eq!(months(&mut sql, "positions").await, current, "the months not wholly past stay");
    assert!(months(&mut sql, "camera_events").await.iter().all(|(_, hi)| *hi > cutoff));

    assert_eq!(store.position_seqs("a").await.unwrap(), [2], "a's last report survives its month");
    assert_eq!(partition_of(&mut sql, 2).await, "positions_default");
    assert_eq!(store.position_seqs("b").await.unwrap(), [4, 5, 6], "the partial month's remainder stays");
    let states = store.device_states().await.unwrap();
    assert_eq!(
        states.iter().map(|(s, last)| (s.seq, last.as_ref().map(|r| r.seq))).collect::<Vec<_>>(),
        [(2, Some(2)), (6, Some(6))]
    );
    let seen: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM camera_events ORDER BY seq").fetch_all(&mut sql).await.unwrap();
    assert_eq!(seen, [8, 9], "camera events go with their month");

    // Reports dated in a dropped month, or far off either way, still go in.
    let late = [
        position(10, "b", now - 170 * DAY_MS),
        position(11, "b", FAR_PAST_MS),
        position(12, "c", FAR_FUTURE_MS),
        position(13, "c", now - 175 * DAY_MS),
    ];
    store.write(&Batch { positions: &late, states: &[state("c", 12)], ..Batch::default() }).await.unwrap();
    assert_eq!(store.position_seqs("b").await.unwrap(), [4, 5, 6, 10, 11]);

    // The next round: nothing left to drop; the default partition's old rows go, but
    // not a last report, nor the clock years ahead.
    let again = store.prune_before(cutoff).await.unwrap();
    assert!(again.partitions.is_empty(), "{again:?}");
    assert_eq!(again.rows_deleted, 3, "b's late report, its 2001 one and c's old one: {again:?}");
    assert_eq!(store.position_seqs("b").await.unwrap(), [4, 5, 6]);
    assert_eq!(store.position_seqs("c").await.unwrap(), [12]);
    assert_eq!(store.position_seqs("a").await.unwrap(), [2]);

    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn a_drop_behind_a_long_query_gives_up_quickly_and_ingest_is_not_held() {
    let Some(db) = TestDb::create("a_drop_behind_a_long_query").await else { return };
    let now = now_ms();
    let store = PgStore::connect(&db.url).await.unwrap();
    store.ensure_partitions(now - 100 * DAY_MS, now).await.unwrap();
    let old = [position(1, "a", now - 95 * DAY_MS), position(2, "a", now - 90 * DAY_MS)];
    store.write(&Batch { positions: &old, states: &[state("a", 2)], ..Batch::default() }).await.unwrap();

    // A history query that is still reading: its transaction holds positions.
    let mut reader = db.sql().await;
    reader.execute("BEGIN").await.unwrap();
    reader.execute("SELECT count(*) FROM positions").await.unwrap();

    let started = Instant::now();
    let drop = store.prune_before(now - 30 * DAY_MS);
    let ingest = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        store
            .write(&Batch { positions: &[position(3, "a", now)], states: &[state("a", 3)], ..Batch::default() })
            .await
            .unwrap();
        t.elapsed()
    };
    // Bounded, so that a drop that waited for the reader (who waits for this test)
    // fails the test instead of hanging it.
    let (pruned, ingest_took) =
        tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(drop, ingest) }).await.expect("no wait");
    let pruned = pruned.unwrap();
    assert!(pruned.busy, "{pruned:?}");
    assert!(
        pruned.partitions.iter().all(|p| p.starts_with("camera_events_")),
        "only the free table's months: {pruned:?}"
    );
    let old_months: Vec<String> = months(&mut reader, "positions")
        .await
        .into_iter()
        .filter(|(_, hi)| *hi <= now - 30 * DAY_MS)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(pruned.left, old_months, "the held table's months, left for the next round");
    assert!(started.elapsed() < Duration::from_secs(2), "gave up after the lock timeout: {:?}", started.elapsed());
    assert!(ingest_took < Duration::from_millis(1000), "a commit waited {ingest_took:?} behind the drop");
    assert_eq!(store.position_seqs("a").await.unwrap(), [1, 2, 3]);

    // Once the query ends, the next round drops the months.
    reader.execute("COMMIT").await.unwrap();
    let pruned = store.prune_before(now - 30 * DAY_MS).await.unwrap();
    assert!(!pruned.busy && pruned.partitions.iter().any(|p| p.starts_with("positions_")), "{pruned:?}");
    assert_eq!(store.position_seqs("a").await.unwrap(), [3]);
    reader.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn making_months_is_idempotent_and_takes_their_rows_out_of_the_default_partition() {
    let Some(db) = TestDb::create("making_months_is_idempotent").await else { return };
    let now = now_ms();
    let store = PgStore::connect(&db.url).await.unwrap();
    let mut sql = db.sql().await;
    // Connecting made this month and the next two, for both tables.
    let ahead = months(&mut sql, "positions").await;
    assert_eq!(ahead.len(), 3, "{ahead:?}");
    assert!(ahead[0].1 > now && ahead[0].1 - now <= 31 * DAY_MS, "this month first: {ahead:?}");
    assert_eq!(months(&mut sql, "camera_events").await.len(), 3);
    assert_eq!(store.ensure_partitions(now, now + 40 * DAY_MS).await.unwrap(), 0, "nothing new");

    // A report of a year ago lands in the default partition; making its month moves it.
    let year_ago = now - 365 * DAY_MS;
    store
        .write(&Batch {
            positions: &[position(1, "a", year_ago)],
            camera_events: &[camera_event(2, year_ago)],
            ..Batch::default()
        })
        .await
        .unwrap();
    assert_eq!(partition_of(&mut sql, 1).await, "positions_default");
    assert_eq!(store.ensure_partitions(year_ago, year_ago + 1).await.unwrap(), 2, "one month of each table");
    assert_ne!(partition_of(&mut sql, 1).await, "positions_default");
    let event_in: String = sqlx::query_scalar("SELECT tableoid::regclass::text FROM camera_events WHERE seq = 2")
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert!(event_in.starts_with("camera_events_p"), "{event_in}");
    assert_eq!(store.ensure_partitions(year_ago, year_ago + 1).await.unwrap(), 0);
    // A wild range is clamped to the years ingest accepts, not made month by month.
    let made = store.ensure_partitions(i64::MIN, FAR_PAST_MS).await.unwrap();
    assert_eq!(made, 2 * 17, "2000-01 to 2001-05, both tables");
    assert_eq!(store.positions_after(0, 10).await.unwrap().len(), 1);
    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn two_instances_pruning_at_once_drop_each_month_once_without_an_error() {
    let Some(db) = TestDb::create("two_instances_pruning_at_once").await else { return };
    let now = now_ms();
    let first = PgStore::connect(&db.url).await.unwrap();
    let second = PgStore::connect(&db.url).await.unwrap();
    first.ensure_partitions(now - 200 * DAY_MS, now).await.unwrap();
    let rows: Vec<PositionRow> = (1..=20).map(|i| position(i, "a", now - i * 10 * DAY_MS)).collect();
    first.write(&Batch { positions: &rows, states: &[state("a", 1)], ..Batch::default() }).await.unwrap();
    let cutoff = now - 90 * DAY_MS;
    let mut sql = db.sql().await;
    let old_months: Vec<(String, i64)> =
        months(&mut sql, "positions").await.into_iter().filter(|(_, hi)| *hi <= cutoff).collect();
    let kept_from = old_months.iter().map(|(_, hi)| *hi).max().unwrap();
    let mut want: Vec<String> = old_months.into_iter().map(|(p, _)| p).collect();
    want.extend(months(&mut sql, "camera_events").await.into_iter().filter(|(_, hi)| *hi <= cutoff).map(|(p, _)| p));
    want.sort();

    let (a, b) = tokio::join!(first.prune_before(cutoff), second.prune_before(cutoff));
    let (a, b) = (a.unwrap(), b.unwrap());
    let busy = a.busy || b.busy;
    let mut dropped = [a.partitions, b.partitions].concat();
    if busy {
        // One waited past the lock timeout for the other (a slow machine): what it
        // left goes at the next round.
        dropped.extend(first.prune_before(cutoff).await.unwrap().partitions);
    }
    dropped.sort();
    assert_eq!(dropped, want, "each old month dropped once, by one or the other");
    let kept: Vec<i64> = rows.iter().filter(|r| r.fix_ms >= kept_from).map(|r| r.seq).collect();
    assert_eq!(first.position_seqs("a").await.unwrap(), kept, "the reports of the months not dropped");
    sql.close().await.unwrap();
    first.close().await;
    second.close().await;
    db.remove().await;
}

/// What the writers of [`one_round_drops_both_tables_months_while_writers_commit_back_to_back`]
/// did while they ran.
#[derive(Debug, Default)]
struct Written {
    commits: u64,
    slowest: Duration,
}

/// Commits small group commits back to back until `stop` is set, as the sequencer does
/// under full load: the write lock, the committed maximum, a few reports, a live state
/// and a camera event numbered after it, commit, and again at once.
async fn commit_back_to_back(store: Store, writer: usize, now: i64, stop: Arc<AtomicBool>) -> Written {
    let mut done = Written::default();
    let device = format!("w{writer}");
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let w = store.begin_write().await.unwrap();
        commit_after(w, &device, now, Duration::ZERO).await;
        done.commits += 1;
        done.slowest = done.slowest.max(t.elapsed());
    }
    done
}

/// Writes a small batch numbered after what `w` found committed, `hold` after it was
/// begun (the sequencer's work on a large batch), and commits.
async fn commit_after(w: liandong_store::Writing, device: &str, now: i64, hold: Duration) {
    tokio::time::sleep(hold).await;
    let next = w.committed() + 1;
    let positions: Vec<PositionRow> = (0..8).map(|i| position(next + i, device, now + i)).collect();
    let events = [camera_event(next + 8, now)];
    let states = [state(device, next + 7)];
    w.commit(&Batch { positions: &positions, camera_events: &events, states: &states, ..Batch::default() })
        .await
        .unwrap();
}

/// Stores three devices' reports and 30 camera events in the months 95 days ago; answers
/// the months of both tables wholly before `cutoff`, sorted.
async fn fill_old_months(store: &PgStore, sql: &mut PgConnection, now: i64, cutoff: i64) -> Vec<String> {
    store.ensure_partitions(now - 100 * DAY_MS, now).await.unwrap();
    let old: Vec<PositionRow> =
        (1..=60).map(|i| position(i, &format!("old{}", i % 3), now - 95 * DAY_MS + i * 3_600_000)).collect();
    let events: Vec<CameraEventRow> = (61..=90).map(|i| camera_event(i, now - 95 * DAY_MS + i * 3_600_000)).collect();
    let states = [state("old0", 60), state("old1", 58), state("old2", 59)];
    store.write(&Batch { positions: &old, camera_events: &events, states: &states, ..Batch::default() }).await.unwrap();
    let mut want = Vec::new();
    for parent in ["positions", "camera_events"] {
        want.extend(months(sql, parent).await.into_iter().filter(|(_, hi)| *hi <= cutoff).map(|(p, _)| p));
    }
    assert!(want.iter().any(|p| p.starts_with("positions_")) && want.iter().any(|p| p.starts_with("camera_events_")));
    want.sort();
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_drops_both_tables_months_while_writers_commit_back_to_back() {
    let Some(db) = TestDb::create("one_round_drops_both_tables_months").await else { return };
    let now = now_ms();
    let cutoff = now - 30 * DAY_MS;
    let store = PgStore::connect(&db.url).await.unwrap();
    let mut sql = db.sql().await;
    let want = fill_old_months(&store, &mut sql, now, cutoff).await;

    // Four writers sharing one store's pool (as instances sharing a database do),
    // committing without a pause.
    let writers_store = Store::connect(&db.url).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> =
        (0..4).map(|w| tokio::spawn(commit_back_to_back(writers_store.clone(), w, now, stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Then one group commit that holds both tables for 300 ms (a large batch on a busy
    // machine), longer than a lock timeout, with the writers queued behind it: the
    // round begins while it holds them and must not give up on the first timeout.
    let slow = writers_store.begin_write().await.unwrap();
    let slow = tokio::spawn(commit_after(slow, "slow", now, Duration::from_millis(300)));
    let started = Instant::now();
    let pruned = tokio::time::timeout(Duration::from_secs(10), store.prune_before(cutoff)).await.expect("bounded");
    let took = started.elapsed();
    slow.await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let mut written = Written::default();
    for w in writers {
        let w = w.await.unwrap();
        written.commits += w.commits;
        written.slowest = written.slowest.max(w.slowest);
    }
    let pruned = pruned.unwrap();

    assert!(!pruned.busy && pruned.left.is_empty(), "no month left for later: {pruned:?} ({took:?})");
    let mut dropped = pruned.partitions.clone();
    dropped.sort();
    assert_eq!(dropped, want, "both tables' old months in one round");
    assert!(took < Duration::from_secs(1), "one round took {took:?}");
    assert!(written.commits > 20, "the writers kept committing: {written:?}");
    assert!(written.slowest < Duration::from_secs(1), "no commit waited long behind the drops: {written:?}");
    assert_eq!(pruned.reports_kept, 3, "each old device's last report");
    let old_left: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM positions WHERE seq <= 90 ORDER BY seq").fetch_all(&mut sql).await.unwrap();
    assert_eq!(old_left, [58, 59, 60]);
    sql.close().await.unwrap();
    writers_store.close().await;
    store.close().await;
    db.remove().await;
}

#[tokio::test]
async fn an_analyze_of_the_month_ingest_writes_to_does_not_hold_up_the_drop_of_an_old_one() {
    let Some(db) = TestDb::create("an_analyze_of_the_current_month").await else { return };
    let now = now_ms();
    let cutoff = now - 30 * DAY_MS;
    let store = PgStore::connect(&db.url).await.unwrap();
    let mut sql = db.sql().await;
    let want = fill_old_months(&store, &mut sql, now, cutoff).await;
    store
        .write(&Batch { positions: &[position(100, "a", now)], states: &[state("a", 100)], ..Batch::default() })
        .await
        .unwrap();
    // Autovacuum analyzes the month ingest writes to while it grows; its lock on that
    // month (SHARE UPDATE EXCLUSIVE) is held as long as it runs. A manual ANALYZE in an
    // open transaction holds the same lock.
    let current = partition_of(&mut sql, 100).await;
    let mut analyze = db.sql().await;
    analyze.execute("BEGIN").await.unwrap();
    analyze.execute(format!("ANALYZE {current}").as_str()).await.unwrap();

    let pruned = tokio::time::timeout(Duration::from_secs(10), store.prune_before(cutoff)).await.expect("bounded");
    let pruned = pruned.unwrap();
    assert!(!pruned.busy, "{pruned:?}");
    let mut dropped = pruned.partitions.clone();
    dropped.sort();
    assert_eq!(dropped, want);
    analyze.execute("COMMIT").await.unwrap();
    analyze.close().await.unwrap();
    sql.close().await.unwrap();
    store.close().await;
    db.remove().await;
}
