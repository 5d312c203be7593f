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

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::batch::{insert_batch, Batch};
use crate::columns::{ColumnSink, ColumnValue, Written};
use crate::error::{q, StoreError};
use crate::rows::{AuditEntry, DeviceRecord};

use history::in_bbox;
pub use history::NEWEST_FIXES_SQL;

mod history;
mod images;
mod partitions;

pub(crate) use partitions::is_lock_timeout;
pub use partitions::{OldMonth, LOCK_TIMEOUT, ROUND_LOCK_WAITS};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The channel every commit is announced on (`pg_notify`), with its last sequence
/// number as the payload.
pub const FEED_CHANNEL: &str = "liandong_feed";

/// The channel an instance announces a change of the registries on (devices, cameras,
/// the watch list, tagged persons; the payload names which), so that the others reload
/// them at once instead of at their next periodic reload.
pub const REGISTRY_CHANNEL: &str = "liandong_registry";

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

crate::shared::shared_calls!(PgStore, sqlx::postgres::PgRow);
crate::signin::signin_calls!(PgStore, sqlx::postgres::PgRow);
crate::mediation::mediation_calls!(PgStore, sqlx::postgres::PgRow);
crate::parking::parking_calls!(PgStore);
crate::camera_status::camera_status_calls!(PgStore);
crate::referrals::referrals_calls!(PgStore, sqlx::postgres::PgRow);
crate::correction::correction_calls!(PgStore, sqlx::postgres::PgRow);
crate::jt808::jt808_calls!(PgStore, sqlx::postgres::PgRow);

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

    /// `SELECT 1` on a pooled connection.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(q("ping"))
    }

    /// Inserts or updates a device. Returns whether it was new.
    pub async fn upsert_device(&self, d: &DeviceRecord) -> Result<bool, StoreError> {
        // Every part of a statement sees the same snapshot, so `before` holds the row as
        // it was before this upsert, in one round trip. As with SQLite's look-up then
        // upsert, two first registrations of one device racing each other both say new.
        sqlx::query_scalar(
            "WITH before AS (SELECT 1 FROM devices WHERE device_id = $1)
             INSERT INTO devices (device_id, name, kind, unit_id, key, created_ms, updated_ms, person_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
               unit_id = excluded.unit_id, key = excluded.key, updated_ms = excluded.updated_ms,
               person_id = excluded.person_id
             RETURNING NOT EXISTS (SELECT 1 FROM before)",
        )
        .bind(&d.device_id)
        .bind(&d.name)
        .bind(&d.kind)
        .bind(&d.unit_id)
        .bind(&d.key)
        .bind(d.created_ms)
        .bind(d.updated_ms)
        .bind(&d.person_id)
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

    /// The highest sequence number committed so far (0 for an empty store): the
    /// sequence's head (migration 0023), which numbers given out keep even when
    /// retention has dropped their rows.
    pub async fn max_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(READ_HEAD).fetch_one(&self.pool).await.map_err(q("read max seq"))
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
        let committed: i64 = sqlx::query_scalar(READ_HEAD).fetch_one(&mut *tx).await.map_err(q("read max seq"))?;
        Ok((tx, committed))
    }

    /// Where single-row updates go: any connection of the pool.
    fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    /// Appends to the audit log on its own (reads made through the API).
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await.map_err(q("acquire a connection"))?;
        insert(&mut conn, entries.iter()).await
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

/// Reads the sequence's head (migration 0023).
pub(crate) const READ_HEAD: &str = "SELECT seq FROM seq_head";

pub(crate) type PgTx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Writes the batch inside a transaction from [`PgStore::begin_write`], announces it
/// and commits.
pub(crate) async fn finish_write(mut tx: PgTx, b: &Batch<'_>) -> Result<(), StoreError> {
    insert_batch!(insert, tx, b);
    if let Some(last) = b.last_seq() {
        // The head moves to the batch's last number (above it, or `check_numbers` would
        // have refused the batch), and the commit is announced, delivered at commit to
        // every instance listening: one statement, one round trip.
        sqlx::query("WITH head AS (UPDATE seq_head SET seq = $2::bigint) SELECT pg_notify($1, $2::bigint::text)")
            .bind(FEED_CHANNEL)
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(q("notify the commit"))?;
    }
    tx.commit().await.map_err(q("commit"))
}

/// Collects a batch's columns as arrays, one argument each.
#[derive(Default)]
struct ColumnArrays {
    args: PgArguments,
    /// The first column that could not be encoded, if any.
    error: Option<sqlx::error::BoxDynError>,
}

impl<'a> ColumnSink<'a> for ColumnArrays {
    fn column<T: ColumnValue<'a>>(&mut self, values: impl Iterator<Item = T>) {
        if let Err(e) = T::add_array(values.collect(), &mut self.args) {
            self.error.get_or_insert(e);
        }
    }
}

/// Inserts rows into their table with one statement, one array parameter per column
/// (so no chunking under PostgreSQL's 65535-parameter limit, and one prepared
/// statement per table, reused by every commit). Unlike SQLite, PostgreSQL refuses to
/// update one row twice in a statement: `insert_batch` folds repeated keys first.
async fn insert<'a, R: Written>(
    conn: &mut PgConnection,
    rows: impl ExactSizeIterator<Item = &'a R> + Clone,
) -> Result<(), StoreError> {
    if rows.len() == 0 {
        return Ok(());
    }
    let mut arrays = ColumnArrays::default();
    R::columns(rows, &mut arrays);
    if let Some(e) = arrays.error {
        return Err(q(R::TABLE.op)(sqlx::Error::Encode(e)));
    }
    sqlx::query_with(&R::insert_sql().pg, arrays.args).execute(conn).await.map_err(q(R::TABLE.op))?;
    Ok(())
}

#[cfg(test)]
mod tests;
