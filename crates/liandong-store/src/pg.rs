//! The production store: PostgreSQL + PostGIS through sqlx.
//!
//! [`PgStore`] answers the same calls as the embedded [`Store`](crate::Store), with the
//! same row types and the same meaning of every order, limit, `bool` and `Option`, so
//! the server runs on either and one conformance suite checks both. The schema
//! (`migrations/postgres`) mirrors SQLite's column for column and adds a PostGIS point
//! to every table with a place, for GIS tools and metric distance queries.
//!
//! Group commits take a transaction-scoped advisory lock before writing, so that when
//! several server instances share one database their batches still commit one at a
//! time. Batches are written with one `INSERT … SELECT FROM UNNEST(arrays)` per table:
//! one bind parameter per column whatever the row count, hence no chunking under
//! PostgreSQL's 65535-parameter limit, and one prepared statement per table, reused by
//! every commit.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, PgPool, Row};

use crate::{q, Batch, DeviceRecord, DeviceStateRow, PositionRow, StoreError, StoredFix};

mod acks;
mod alerts;
mod history;
mod images;
mod incidents;
mod reports;
mod routes;
mod tagged;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The channel every commit is announced on (`pg_notify`), with its last sequence
/// number as the payload.
pub const FEED_CHANNEL: &str = "liandong_feed";

/// The channel an instance announces a change of the registries on (devices, cameras,
/// the watch list, tagged persons; the payload names which), so that the others reload
/// them at once instead of at their next periodic reload.
pub const REGISTRY_CHANNEL: &str = "liandong_registry";

/// The highest sequence number committed, over every table the sequence spans.
const MAX_SEQ: &str =
    "SELECT GREATEST(COALESCE((SELECT MAX(seq) FROM positions), 0), COALESCE((SELECT MAX(seq) FROM camera_events), 0),
                     COALESCE((SELECT MAX(seq) FROM alerts), 0), COALESCE((SELECT MAX(seq) FROM incident_events), 0),
                     COALESCE((SELECT MAX(report_id) FROM grid_reports), 0),
                     COALESCE((SELECT MAX(seq) FROM route_events), 0), COALESCE((SELECT MAX(seq) FROM alert_acks), 0))";

/// The key of the advisory lock every group commit holds until it commits: the ASCII
/// bytes of "liandong", so that it is recognisable in `pg_locks`.
const WRITE_LOCK_KEY: i64 = 0x6c69_616e_646f_6e67;

/// The oldest PostgreSQL accepted. The schema itself needs stored generated columns
/// (PostgreSQL 12); older servers are refused by name rather than met with a migration
/// that fails half-way.
const MIN_SERVER_VERSION_NUM: i32 = 130_000;
const MIN_SERVER_VERSION: &str = "13";
/// The oldest PostGIS accepted: the 3 series (tested with 3.3, Debian 12's).
const MIN_POSTGIS: (u32, u32) = (3, 0);
const MIN_POSTGIS_TEXT: &str = "3.0";

/// Enough connections for the sequencer's commit, the replay of a few reconnecting
/// clients and the statistics pages at once, without crowding a shared server.
const MAX_CONNECTIONS: u32 = 8;
/// How long a query waits for a free connection before it fails (and the request that
/// wanted it answers 503) rather than hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host:port/db`),
    /// checks that the server is PostgreSQL 13 or newer with PostGIS 3 or newer (creating
    /// the extension if the role may), and applies migrations.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Connect { target: "an unparseable URL".into(), source })?
            .application_name("liandong");
        // The target names the server without the URL's password, for errors and logs.
        let target =
            format!("{}:{}/{}", opts.get_host(), opts.get_port(), opts.get_database().unwrap_or(opts.get_username()));
        // One connection of its own first: a refused or unanswered connection is
        // reported as such (the pool would retry until its timeout and report only
        // that), and the checks and migrations run before the pool exists.
        let mut conn = match tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&opts)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => return Err(StoreError::Connect { target, source }),
            Err(_) => {
                let source = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", ACQUIRE_TIMEOUT.as_secs()),
                );
                return Err(StoreError::Connect { target, source: sqlx::Error::Io(source) });
            }
        };
        let prepared = prepare(&mut conn).await;
        // Closing politely only spares the server a log line; an error here changes nothing.
        let _ = conn.close().await;
        prepared?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Connect { target, source })?;
        Ok(PgStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Inserts or updates a device. Returns whether it was new.
    pub async fn upsert_device(&self, d: &DeviceRecord) -> Result<bool, StoreError> {
        // Every part of a statement sees the same snapshot, so `before` holds the row as
        // it was before this upsert, in one round trip. As with SQLite's look-up then
        // upsert, two first registrations of one device racing each other both say new.
        sqlx::query_scalar(
            "WITH before AS (SELECT 1 FROM devices WHERE device_id = $1)
             INSERT INTO devices (device_id, name, kind, unit_id, key, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
               unit_id = excluded.unit_id, key = excluded.key, updated_ms = excluded.updated_ms
             RETURNING NOT EXISTS (SELECT 1 FROM before)",
        )
        .bind(&d.device_id)
        .bind(&d.name)
        .bind(&d.kind)
        .bind(&d.unit_id)
        .bind(&d.key)
        .bind(d.created_ms)
        .bind(d.updated_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(q("upsert device"))
        .inspect(|_| self.announce_registry("devices"))
    }

    /// Tells the other instances a registry changed. Sent after the change committed,
    /// without waiting: an announcement that is lost only delays the others until
    /// their periodic reload.
    pub(crate) fn announce_registry(&self, what: &'static str) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let _ = sqlx::query("SELECT pg_notify($1, $2)").bind(REGISTRY_CHANNEL).bind(what).execute(&pool).await;
        });
    }

    pub async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, name, kind, unit_id, key, created_ms, updated_ms FROM devices ORDER BY device_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list devices"))?;
        Ok(rows
            .iter()
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

    /// Listens for the commits of every instance on this database: each commit
    /// notifies [`FEED_CHANNEL`] with its highest sequence number. The listener
    /// reconnects by itself; notifications sent while it was away are lost, so a
    /// follower also polls [`PgStore::max_seq`].
    pub async fn listen(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut l = sqlx::postgres::PgListener::connect_with(&self.pool).await.map_err(q("connect a listener"))?;
        l.listen_all([FEED_CHANNEL, REGISTRY_CHANNEL]).await.map_err(q("listen for commits"))?;
        Ok(l)
    }

    /// Writes a batch of reports and the resulting device states in one transaction.
    /// Returns once the commit is durable.
    pub async fn write_batch(&self, rows: &[PositionRow], states: &[DeviceStateRow]) -> Result<(), StoreError> {
        self.write(&Batch { positions: rows, states, ..Batch::default() }).await
    }

    /// Writes everything a group commit produced in one transaction. Returns once the
    /// commit is durable (with the server's `synchronous_commit`, on by default).
    pub async fn write(&self, b: &Batch<'_>) -> Result<(), StoreError> {
        let (tx, committed) = self.begin_write().await?;
        // Another instance (or an earlier commit whose answer was lost) may have taken
        // these numbers.
        crate::check_numbers(b, committed)?;
        finish_write(tx, b).await
    }

    /// Starts a group commit: begins a transaction, takes the write lock and returns
    /// the highest sequence number committed so far. Until [`finish_write`] commits (or
    /// the transaction is dropped), no other instance commits, so a writer that numbers
    /// its batch from the returned maximum cannot lose its numbers.
    pub(crate) async fn begin_write(&self) -> Result<(PgTx, i64), StoreError> {
        let mut tx = self.pool.begin().await.map_err(q("begin"))?;
        // Held until commit or rollback: instances sharing the database commit their
        // batches one after the other, never interleaved, so sequence order is commit
        // order and what a reader sees committed is always a prefix of the sequence.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(q("take the write lock"))?;
        let committed: i64 = sqlx::query_scalar(MAX_SEQ).fetch_one(&mut *tx).await.map_err(q("read max seq"))?;
        Ok((tx, committed))
    }

    /// Every device's live state with its last report, to rebuild memory after a
    /// restart, by device id.
    pub async fn device_states(&self) -> Result<Vec<(DeviceStateRow, Option<PositionRow>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT d.device_id, d.seq, d.trusted_ms, d.trusted_lon, d.trusted_lat, d.marked_ms, d.marked_lon, d.marked_lat, d.fences,
                    {}
             FROM device_state d LEFT JOIN positions p ON p.seq = d.seq ORDER BY d.device_id",
            position_columns("p.")
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read device states"))?;
        let fix = |r: &PgRow, i: usize| -> Option<StoredFix> {
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
                    // Only `upsert_states` writes the column, from the same type.
                    fences: r.try_get::<Json<_>, _>(8).map(|j| j.0).unwrap_or_default(),
                };
                let last = r.get::<Option<i64>, _>(9).map(|_| position_from_row(r, 9));
                (state, last)
            })
            .collect())
    }

    /// Reports with a sequence number above `after`, oldest first, at most `limit`: the
    /// live feed's replay for a client that reconnects with `since`.
    pub async fn positions_after(&self, after: i64, limit: u32) -> Result<Vec<PositionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM positions WHERE seq > $1 ORDER BY seq LIMIT $2",
            position_columns("")
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read positions after a sequence number"))?;
        Ok(rows.iter().map(|r| position_from_row(r, 0)).collect())
    }

    /// How many feed events (reports, alerts and incident events) have a sequence
    /// number above `after`.
    pub async fn count_after(&self, after: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM positions WHERE seq > $1) + (SELECT COUNT(*) FROM alerts WHERE seq > $1)
                  + (SELECT COUNT(*) FROM incident_events WHERE seq > $1) + (SELECT COUNT(*) FROM route_events WHERE seq > $1)
                  + (SELECT COUNT(*) FROM alert_acks WHERE seq > $1)",
        )
        .bind(after)
        .fetch_one(&self.pool)
        .await
        .map_err(q("count positions after a sequence number"))
    }

    pub async fn count_positions(&self, device_id: Option<&str>) -> Result<i64, StoreError> {
        // Two statements rather than `$1 IS NULL OR …`, so each has a plan of its own
        // (the device's count uses the (device_id, fix_ms) index).
        let n = match device_id {
            Some(d) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM positions WHERE device_id = $1")
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
        sqlx::query_scalar("SELECT seq FROM positions WHERE device_id = $1 ORDER BY seq")
            .bind(device_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list positions"))
    }
}

/// Checks the server before the migrations run, so that an unfit server is named as
/// such instead of failing half-way through a migration; then checks the PostGIS
/// library the migrated schema actually uses.
async fn prepare(conn: &mut PgConnection) -> Result<(), StoreError> {
    let (version_num, version, database, role): (i32, String, String, String) = sqlx::query_as(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version'), current_database()::text,
                current_user::text",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(q("read the server version"))?;
    if version_num < MIN_SERVER_VERSION_NUM {
        return Err(StoreError::Version { component: "PostgreSQL", found: version, need: MIN_SERVER_VERSION });
    }
    let missing = |reason: String| StoreError::Extension { extension: "postgis", database: database.clone(), reason };
    let available: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'postgis'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(q("look up the postgis extension"))?;
    let Some((default_version, installed_version)) = available else {
        return Err(missing(format!(
            "the server at PostgreSQL {version} has no PostGIS installed; install PostGIS {MIN_POSTGIS_TEXT} or newer \
             on the database server (Debian: postgresql-{}-postgis-3)",
            version_num / 10_000
        )));
    };
    let offered = installed_version.as_deref().or(default_version.as_deref()).unwrap_or("unknown");
    check_postgis_version(offered)?;

    // `run_direct` on the connection itself: `run` takes an `Acquire`, whose
    // higher-ranked lifetime makes every future above this one non-`Send`.
    if let Err(e) = MIGRATOR.run_direct(&mut *conn).await {
        // PostGIS is not a trusted extension: on a plain server only a superuser may
        // create it (managed services have roles of their own that may), so whether the
        // role can is learnt by trying, and a refusal is explained here.
        if installed_version.is_none() {
            return Err(missing(format!(
                "PostGIS {offered} is available but not created in this database, and role {role} could not create \
                 it ({e}); run `CREATE EXTENSION postgis;` in {database} as a superuser"
            )));
        }
        return Err(e.into());
    }

    // The migrations create the extension, so it can only be missing now if someone
    // dropped it (with the geometry columns) after they ran.
    let installed: Option<String> = sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(q("look up the postgis extension"))?;
    if installed.is_none() {
        return Err(missing(
            "the extension was dropped after the schema was created, and its geometry columns with it; \
             recreate the database (or restore it from a backup)"
                .into(),
        ));
    }
    let library: String = sqlx::query_scalar("SELECT postgis_lib_version()")
        .fetch_one(&mut *conn)
        .await
        .map_err(q("read the postgis library version"))?;
    check_postgis_version(&library)
}

fn check_postgis_version(found: &str) -> Result<(), StoreError> {
    match major_minor(found) {
        Some(v) if v >= MIN_POSTGIS => Ok(()),
        _ => Err(StoreError::Version { component: "PostGIS", found: found.into(), need: MIN_POSTGIS_TEXT }),
    }
}

/// The major and minor numbers of a version such as `3.3.2` or `3.5.0alpha1`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let mut number = || -> Option<u32> {
        let part = parts.next()?;
        let end = part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len());
        part[..end].parse().ok()
    };
    let major = number()?;
    Some((major, number().unwrap_or(0)))
}

/// The columns of `positions` in the order [`position_from_row`] reads them.
fn position_columns(prefix: &str) -> String {
    [
        "seq",
        "device_id",
        "fix_ms",
        "recv_ms",
        "lon",
        "lat",
        "datum",
        "speed_mps",
        "course_deg",
        "altitude_m",
        "accuracy_m",
        "battery_pct",
        "flags",
        "attributes",
        "enrichment",
    ]
    .map(|c| format!("{prefix}{c}"))
    .join(", ")
}

/// Reads a `positions` row whose columns start at `at`, in the order of
/// [`position_columns`].
fn position_from_row(r: &PgRow, at: usize) -> PositionRow {
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

/// The datums a report may name; anything else reads back as WGS 84, as in SQLite.
fn datum_static(s: &str) -> &'static str {
    match s {
        "gcj02" => "gcj02",
        "bd09" => "bd09",
        _ => "wgs84",
    }
}

/// One column of a batch, as the array `UNNEST` spreads back into rows.
pub(crate) fn col<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

pub(crate) type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Writes the batch inside a transaction from [`PgStore::begin_write`], announces it
/// and commits.
pub(crate) async fn finish_write(mut tx: PgTx, b: &Batch<'_>) -> Result<(), StoreError> {
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
    if let Some(last) = b.last_seq() {
        // Delivered at commit, to every instance listening.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(FEED_CHANNEL)
            .bind(last.to_string())
            .execute(&mut *tx)
            .await
            .map_err(q("notify the commit"))?;
    }
    tx.commit().await.map_err(q("commit"))
}

async fn insert_positions(conn: &mut PgConnection, rows: &[PositionRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO positions (seq, device_id, fix_ms, recv_ms, lon, lat, datum, speed_mps, course_deg, altitude_m,
                                accuracy_m, battery_pct, flags, attributes, enrichment)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::float8[], $7::text[],
                              $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::bigint[],
                              $14::text[], $15::text[])",
    )
    .bind(col(rows, |r| r.seq))
    .bind(col(rows, |r| r.device_id.as_str()))
    .bind(col(rows, |r| r.fix_ms))
    .bind(col(rows, |r| r.recv_ms))
    .bind(col(rows, |r| r.lon))
    .bind(col(rows, |r| r.lat))
    .bind(col(rows, |r| r.datum))
    .bind(col(rows, |r| r.speed_mps))
    .bind(col(rows, |r| r.course_deg))
    .bind(col(rows, |r| r.altitude_m))
    .bind(col(rows, |r| r.accuracy_m))
    .bind(col(rows, |r| r.battery_pct))
    .bind(col(rows, |r| i64::from(r.flags)))
    .bind(col(rows, |r| r.attributes.as_str()))
    .bind(col(rows, |r| r.enrichment.as_str()))
    .execute(conn)
    .await
    .map_err(q("insert positions"))?;
    Ok(())
}

/// The last state of each device in the batch, in order of first appearance.
/// SQLite's multi-row upsert applies repeated rows one after the other, so the last
/// wins; PostgreSQL refuses to update one row twice in a statement, so the batch is
/// folded first to the same outcome.
fn last_per_device(states: &[DeviceStateRow]) -> Vec<&DeviceStateRow> {
    let mut out: Vec<&DeviceStateRow> = Vec::with_capacity(states.len());
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(states.len());
    for s in states {
        match at.get(s.device_id.as_str()) {
            Some(&i) => out[i] = s,
            None => {
                at.insert(&s.device_id, out.len());
                out.push(s);
            }
        }
    }
    out
}

async fn upsert_states(conn: &mut PgConnection, states: &[DeviceStateRow]) -> Result<(), StoreError> {
    if states.is_empty() {
        return Ok(());
    }
    let states = last_per_device(states);
    sqlx::query(
        "INSERT INTO device_state (device_id, seq, trusted_ms, trusted_lon, trusted_lat, marked_ms, marked_lon, marked_lat, fences)
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::float8[], $5::float8[], $6::bigint[],
                              $7::float8[], $8::float8[], $9::jsonb[])
         ON CONFLICT (device_id) DO UPDATE SET seq = excluded.seq,
           trusted_ms = excluded.trusted_ms, trusted_lon = excluded.trusted_lon, trusted_lat = excluded.trusted_lat,
           marked_ms = excluded.marked_ms, marked_lon = excluded.marked_lon, marked_lat = excluded.marked_lat,
           fences = excluded.fences",
    )
    .bind(col(&states, |s| s.device_id.as_str()))
    .bind(col(&states, |s| s.seq))
    .bind(col(&states, |s| s.trusted.map(|f| f.0)))
    .bind(col(&states, |s| s.trusted.map(|f| f.1)))
    .bind(col(&states, |s| s.trusted.map(|f| f.2)))
    .bind(col(&states, |s| s.marked.map(|f| f.0)))
    .bind(col(&states, |s| s.marked.map(|f| f.1)))
    .bind(col(&states, |s| s.marked.map(|f| f.2)))
    .bind(col(&states, |s| Json(&s.fences)))
    .execute(conn)
    .await
    .map_err(q("upsert device state"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_by_major_and_minor() {
        let cases = [
            ("3.3.2", Some((3, 3))),
            ("3.0.0", Some((3, 0))),
            ("3.5.0alpha1", Some((3, 5))),
            ("3.4dev", Some((3, 4))),
            ("2.5.5", Some((2, 5))),
            ("3", Some((3, 0))),
            (" 3.1.4 ", Some((3, 1))),
            ("unknown", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(major_minor(text), want, "{text:?}");
        }
    }

    #[test]
    fn postgis_2_is_refused_and_3_accepted() {
        assert!(check_postgis_version("3.0.0").is_ok());
        assert!(check_postgis_version("3.3.2").is_ok());
        let e = check_postgis_version("2.5.5").unwrap_err().to_string();
        assert_eq!(e, "PostGIS 2.5.5 is too old: liandong needs 3.0 or newer");
        assert!(check_postgis_version("garbage").is_err());
    }

    #[test]
    fn the_position_columns_follow_the_reader() {
        assert!(position_columns("p.").starts_with("p.seq, p.device_id, p.fix_ms"));
        assert!(position_columns("").ends_with("attributes, enrichment"));
    }
}
