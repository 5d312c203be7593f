//! The embedded store: SQLite through sqlx, in a data directory.
//!
//! Writes come from one place, the ingest sequencer, which hands a whole batch to
//! [`SqliteStore::write_batch`]: one transaction, one commit (one fsync with
//! `synchronous=FULL`) for however many reports arrived meanwhile.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqliteConnection, SqlitePool};

mod acks;
mod alerts;
mod history;
mod images;
mod incidents;
pub mod pg;
mod reports;
mod routes;
mod store;
mod tagged;

pub use store::{FeedListener, Heard, Store, Writing};

pub use acks::AlertAckRow;
pub use alerts::{AlertFact, AlertRow, CameraEventRow, CameraRecord, SightingRow, WatchRecord};
pub use history::{Bbox, HISTORY_EXCLUDED_FLAGS};
pub use images::{image_stamp_ms, ImageRow};
pub use incidents::{IncidentEventRow, IncidentFacts, IncidentRow};
pub use reports::{GridReport, MediationCase, MediationStats};
pub use routes::{RouteEventRow, RoutePlanRow};
pub use tagged::{AuditEntry, TaggedPerson};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error during {op}: {source}")]
    Query { op: &'static str, source: sqlx::Error },
    /// The PostgreSQL server could not be reached (`target` is host, port and database,
    /// never the password).
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect { target: String, source: sqlx::Error },
    /// A server component older than the store supports.
    #[error("{component} {found} is too old: liandong needs {need} or newer")]
    Version { component: &'static str, found: String, need: &'static str },
    /// The batch's sequence numbers are taken: another instance on the same database
    /// committed up to `committed` meanwhile. Nothing was written; the writer catches up
    /// and numbers its batch again.
    #[error("sequence numbers from {first} are taken (committed up to {committed})")]
    SeqConflict { committed: i64, first: i64 },
    /// An image file could not be written, read or deleted (the embedded store keeps
    /// images as files beside the database).
    #[error("cannot {op} in {path}: {source}")]
    Images { op: &'static str, path: PathBuf, source: std::io::Error },
    /// A PostgreSQL extension the store needs (PostGIS) is missing or cannot be created.
    #[error("database {database} cannot use the {extension} extension: {reason}")]
    Extension { extension: &'static str, database: String, reason: String },
}

pub(crate) fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync at every commit: survives power loss.
    #[default]
    Full,
    /// WAL without fsync at commit: survives a process crash, not a power loss.
    Normal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub device_id: String,
    pub name: String,
    pub kind: String,
    pub unit_id: Option<String>,
    #[serde(skip_serializing)]
    pub key: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// One accepted report, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub seq: i64,
    pub device_id: String,
    pub fix_ms: i64,
    pub recv_ms: i64,
    pub lon: f64,
    pub lat: f64,
    pub datum: &'static str,
    pub speed_mps: Option<f64>,
    pub course_deg: Option<f64>,
    pub altitude_m: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub battery_pct: Option<f64>,
    pub flags: u32,
    pub attributes: String,
    pub enrichment: String,
}

/// A point of a track as history draws it: only what a track view sends, so that
/// reading a long track never holds the reports' attributes and enrichment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackPoint {
    pub seq: i64,
    pub fix_ms: i64,
    pub lon: f64,
    pub lat: f64,
}

/// A fix kept in the live state: `(time_ms, lon, lat)`.
pub type StoredFix = (i64, f64, f64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMembership {
    pub fence: String,
    pub since_ms: i64,
    pub dwell_fired: bool,
}

/// A device's live state as persisted.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStateRow {
    pub device_id: String,
    /// Sequence number of the device's last report (0 if none is in order yet).
    pub seq: i64,
    pub trusted: Option<StoredFix>,
    pub marked: Option<StoredFix>,
    pub fences: Vec<StoredMembership>,
}

/// What one group commit writes.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    pub positions: &'a [PositionRow],
    pub states: &'a [DeviceStateRow],
    pub camera_events: &'a [CameraEventRow],
    pub alerts: &'a [AlertRow],
    /// Audit entries the batch's events produced (a tagged person seen by a camera).
    pub audit: &'a [AuditEntry],
    pub incidents: &'a [IncidentRow],
    pub incident_events: &'a [IncidentEventRow],
    /// Grid-member reports (a dispute also opens its mediation case).
    pub reports: &'a [GridReport],
    /// Route plan versions as they are after the batch, and their events.
    pub route_plans: &'a [RoutePlanRow],
    pub route_events: &'a [RouteEventRow],
    /// Operators' acknowledgements of alerts.
    pub alert_acks: &'a [AlertAckRow],
}

/// The embedded store: SQLite in a data directory.
impl Batch<'_> {
    /// The lowest and highest sequence numbers the batch assigns (device states and
    /// incident rows only refer to numbers of their events).
    fn seqs(&self) -> impl Iterator<Item = i64> + '_ {
        self.positions
            .iter()
            .map(|r| r.seq)
            .chain(self.camera_events.iter().map(|r| r.seq))
            .chain(self.alerts.iter().map(|r| r.seq))
            .chain(self.incident_events.iter().map(|r| r.seq))
            .chain(self.reports.iter().map(|r| r.report_id))
            .chain(self.route_events.iter().map(|r| r.seq))
            .chain(self.alert_acks.iter().map(|r| r.seq))
    }

    pub fn first_seq(&self) -> Option<i64> {
        self.seqs().min()
    }

    pub fn last_seq(&self) -> Option<i64> {
        self.seqs().max()
    }
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (and rare administrative writes).
    pool: SqlitePool,
    /// The one connection group commits go through: SQLite serialises writers anyway,
    /// and one connection keeps its page cache and prepared statements hot.
    writer: SqlitePool,
    path: PathBuf,
}

/// The highest sequence number committed, over every table the sequence spans.
const MAX_SEQ: &str =
    "SELECT MAX(COALESCE((SELECT MAX(seq) FROM positions), 0), COALESCE((SELECT MAX(seq) FROM camera_events), 0),
                COALESCE((SELECT MAX(seq) FROM alerts), 0), COALESCE((SELECT MAX(seq) FROM incident_events), 0),
                COALESCE((SELECT MAX(report_id) FROM grid_reports), 0), COALESCE((SELECT MAX(seq) FROM route_events), 0),
                COALESCE((SELECT MAX(seq) FROM alert_acks), 0))";

/// SQLite allows 32766 bound parameters per statement; 500 rows of 15 stays well under.
pub(crate) const ROWS_PER_INSERT: usize = 500;

impl SqliteStore {
    /// Opens (creating if needed) `liandong.db` in `data_dir` and applies migrations.
    pub async fn open(data_dir: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join("liandong.db");
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open { path: path.clone(), source })?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(5))
            // A 64 MiB page cache keeps the indexes' hot pages in memory under load; the
            // default (2 MiB) makes every group commit re-read them from the WAL.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        MIGRATOR.run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        Ok(SqliteStore { pool, writer, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Inserts or updates a device. Returns whether it was new.
    pub async fn upsert_device(&self, d: &DeviceRecord) -> Result<bool, StoreError> {
        let existed: Option<i64> = sqlx::query_scalar("SELECT 1 FROM devices WHERE device_id = ?")
            .bind(&d.device_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("look up device"))?;
        sqlx::query(
            "INSERT INTO devices (device_id, name, kind, unit_id, key, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
               unit_id = excluded.unit_id, key = excluded.key, updated_ms = excluded.updated_ms",
        )
        .bind(&d.device_id)
        .bind(&d.name)
        .bind(&d.kind)
        .bind(&d.unit_id)
        .bind(&d.key)
        .bind(d.created_ms)
        .bind(d.updated_ms)
        .execute(&self.pool)
        .await
        .map_err(q("upsert device"))?;
        Ok(existed.is_none())
    }

    pub async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, name, kind, unit_id, key, created_ms, updated_ms FROM devices ORDER BY device_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list devices"))?;
        Ok(rows
            .into_iter()
            .map(|r| DeviceRecord {
                device_id: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                unit_id: r.get(3),
                key: r.get(4),
                created_ms: r.get(5),
                updated_ms: r.get(6),
            })
            .collect())
    }

    /// The highest sequence number committed so far (0 for an empty store).
    pub async fn max_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(MAX_SEQ).fetch_one(&self.pool).await.map_err(q("read max seq"))
    }

    /// Writes a batch of reports and the resulting device states in one transaction.
    /// Returns once the commit is durable.
    pub async fn write_batch(&self, rows: &[PositionRow], states: &[DeviceStateRow]) -> Result<(), StoreError> {
        self.write(&Batch { positions: rows, states, ..Batch::default() }).await
    }

    /// Writes everything a group commit produced in one transaction. Returns once the
    /// commit is durable.
    pub async fn write(&self, b: &Batch<'_>) -> Result<(), StoreError> {
        let (tx, committed) = self.begin_write().await?;
        // One writer connection makes a conflict impossible short of a bug; checking
        // anyway keeps both backends to one contract (see the PostgreSQL store).
        check_numbers(b, committed)?;
        finish_write(tx, b).await
    }

    /// Starts a group commit on the writer connection and returns the highest sequence
    /// number committed so far; [`finish_write`] writes the batch and commits.
    pub(crate) async fn begin_write(&self) -> Result<(SqliteTx, i64), StoreError> {
        // IMMEDIATE takes the database's write lock now (waiting up to the busy
        // timeout). A deferred transaction would read at a snapshot and then fail with
        // SQLITE_BUSY_SNAPSHOT, without waiting, if a registry upsert on another
        // connection committed while the batch was being prepared.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(q("begin"))?;
        let committed: i64 = sqlx::query_scalar(MAX_SEQ).fetch_one(&mut *tx).await.map_err(q("read max seq"))?;
        Ok((tx, committed))
    }

    /// Every device's live state with its last report, to rebuild memory after a
    /// restart.
    pub async fn device_states(&self) -> Result<Vec<(DeviceStateRow, Option<PositionRow>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.device_id, d.seq, d.trusted_ms, d.trusted_lon, d.trusted_lat, d.marked_ms, d.marked_lon, d.marked_lat, d.fences,
                    p.seq, p.device_id, p.fix_ms, p.recv_ms, p.lon, p.lat, p.datum, p.speed_mps, p.course_deg, p.altitude_m,
                    p.accuracy_m, p.battery_pct, p.flags, p.attributes, p.enrichment
             FROM device_state d LEFT JOIN positions p ON p.seq = d.seq ORDER BY d.device_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("read device states"))?;
        let fix = |r: &sqlx::sqlite::SqliteRow, i: usize| -> Option<StoredFix> {
            let t: Option<i64> = r.get(i);
            let lon: Option<f64> = r.get(i + 1);
            let lat: Option<f64> = r.get(i + 2);
            Some((t?, lon?, lat?))
        };
        Ok(rows
            .iter()
            .map(|r| {
                let state = DeviceStateRow {
                    device_id: r.get(0),
                    seq: r.get(1),
                    trusted: fix(r, 2),
                    marked: fix(r, 5),
                    // The column is only ever written by `upsert_states` from valid JSON.
                    fences: serde_json::from_str(r.get::<&str, _>(8)).unwrap_or_default(),
                };
                let last = r.get::<Option<i64>, _>(9).map(|_| position_from_row(r, 9));
                (state, last)
            })
            .collect())
    }

    /// Reports with a sequence number above `after`, oldest first, at most `limit`: the
    /// live feed's replay for a client that reconnects with `since`.
    pub async fn positions_after(&self, after: i64, limit: u32) -> Result<Vec<PositionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, device_id, fix_ms, recv_ms, lon, lat, datum, speed_mps, course_deg, altitude_m, accuracy_m,
                    battery_pct, flags, attributes, enrichment
             FROM positions WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read positions after a sequence number"))?;
        Ok(rows.iter().map(|r| position_from_row(r, 0)).collect())
    }

    /// How many feed events (reports and alerts) have a sequence number above `after`.
    pub async fn count_after(&self, after: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM positions WHERE seq > ?1) + (SELECT COUNT(*) FROM alerts WHERE seq > ?1)
                  + (SELECT COUNT(*) FROM incident_events WHERE seq > ?1) + (SELECT COUNT(*) FROM route_events WHERE seq > ?1)
                  + (SELECT COUNT(*) FROM alert_acks WHERE seq > ?1)",
        )
        .bind(after)
        .fetch_one(&self.pool)
        .await
        .map_err(q("count positions after a sequence number"))
    }

    pub async fn count_positions(&self, device_id: Option<&str>) -> Result<i64, StoreError> {
        let n = match device_id {
            Some(d) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM positions WHERE device_id = ?")
                    .bind(d)
                    .fetch_one(&self.pool)
                    .await
            }
            None => sqlx::query_scalar("SELECT COUNT(*) FROM positions").fetch_one(&self.pool).await,
        };
        n.map_err(q("count positions"))
    }

    /// Sequence numbers of a device's reports, oldest first (for tests and audits).
    pub async fn position_seqs(&self, device_id: &str) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar("SELECT seq FROM positions WHERE device_id = ? ORDER BY seq")
            .bind(device_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list positions"))
    }
}

/// Reads a `positions` row whose columns start at `at`, in the order of the table.
fn position_from_row(r: &sqlx::sqlite::SqliteRow, at: usize) -> PositionRow {
    PositionRow {
        seq: r.get(at),
        device_id: r.get(at + 1),
        fix_ms: r.get(at + 2),
        recv_ms: r.get(at + 3),
        lon: r.get(at + 4),
        lat: r.get(at + 5),
        datum: datum_static(r.get(at + 6)),
        speed_mps: r.get(at + 7),
        course_deg: r.get(at + 8),
        altitude_m: r.get(at + 9),
        accuracy_m: r.get(at + 10),
        battery_pct: r.get(at + 11),
        flags: r.get::<i64, _>(at + 12) as u32,
        attributes: r.get(at + 13),
        enrichment: r.get(at + 14),
    }
}

fn datum_static(s: &str) -> &'static str {
    match s {
        "gcj02" => "gcj02",
        "bd09" => "bd09",
        _ => "wgs84",
    }
}

pub(crate) type SqliteTx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// A batch numbered at or below what is committed would take numbers already taken.
pub(crate) fn check_numbers(b: &Batch<'_>, committed: i64) -> Result<(), StoreError> {
    match b.first_seq() {
        Some(first) if first <= committed => Err(StoreError::SeqConflict { committed, first }),
        _ => Ok(()),
    }
}

/// Writes the batch inside a transaction from [`SqliteStore::begin_write`] and commits.
pub(crate) async fn finish_write(mut tx: SqliteTx, b: &Batch<'_>) -> Result<(), StoreError> {
    insert_positions(&mut tx, b.positions).await?;
    upsert_states(&mut tx, b.states).await?;
    alerts::insert_camera_events(&mut tx, b.camera_events).await?;
    alerts::insert_alerts(&mut tx, b.alerts).await?;
    tagged::insert_audit(&mut tx, b.audit).await?;
    incidents::upsert_incidents(&mut tx, b.incidents).await?;
    incidents::insert_incident_events(&mut tx, b.incident_events).await?;
    reports::insert_reports(&mut tx, b.reports).await?;
    routes::upsert_plans(&mut tx, b.route_plans).await?;
    routes::insert_route_events(&mut tx, b.route_events).await?;
    acks::insert_alert_acks(&mut tx, b.alert_acks).await?;
    tx.commit().await.map_err(q("commit"))
}

async fn insert_positions(conn: &mut SqliteConnection, rows: &[PositionRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO positions (seq, device_id, fix_ms, recv_ms, lon, lat, datum, speed_mps, course_deg, altitude_m, accuracy_m, battery_pct, flags, attributes, enrichment) ",
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
                .push_bind(r.flags as i64)
                .push_bind(&r.attributes)
                .push_bind(&r.enrichment);
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("insert positions"))?;
    }
    Ok(())
}

async fn upsert_states(conn: &mut SqliteConnection, states: &[DeviceStateRow]) -> Result<(), StoreError> {
    for chunk in states.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO device_state (device_id, seq, trusted_ms, trusted_lon, trusted_lat, marked_ms, marked_lon, marked_lat, fences) ",
        );
        qb.push_values(chunk, |mut b, s| {
            b.push_bind(&s.device_id)
                .push_bind(s.seq)
                .push_bind(s.trusted.map(|f| f.0))
                .push_bind(s.trusted.map(|f| f.1))
                .push_bind(s.trusted.map(|f| f.2))
                .push_bind(s.marked.map(|f| f.0))
                .push_bind(s.marked.map(|f| f.1))
                .push_bind(s.marked.map(|f| f.2))
                .push_bind(serde_json::to_string(&s.fences).unwrap_or_else(|_| "[]".into()));
        });
        qb.push(
            " ON CONFLICT (device_id) DO UPDATE SET seq = excluded.seq,
              trusted_ms = excluded.trusted_ms, trusted_lon = excluded.trusted_lon, trusted_lat = excluded.trusted_lat,
              marked_ms = excluded.marked_ms, marked_lon = excluded.marked_lon, marked_lat = excluded.marked_lat,
              fences = excluded.fences",
        );
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("upsert device state"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        assert!(store.upsert_device(&d).await.unwrap());
        d.name = "renamed".into();
        assert!(!store.upsert_device(&d).await.unwrap());
        assert_eq!(store.devices().await.unwrap()[0].name, "renamed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
