//! The embedded store: SQLite through sqlx, in a data directory.
//!
//! Writes come from one place, the ingest sequencer, which hands a whole batch to
//! [`SqliteStore::write`]: one transaction, one commit (one fsync with
//! `synchronous=FULL`) for however many reports arrived meanwhile, run whole on the
//! writer thread ([`writer`]). Reads go through sqlx's pool.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rusqlite::types::ValueRef;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use crate::batch::{insert_batch, Batch};
use crate::columns::Written;
use crate::error::{q, StoreError};
use crate::rows::{AuditEntry, DeviceRecord, Durability};

use history::{in_bbox, NEWEST_FIXES_SQL};
use writer::{Locked, Rows, Writer};

mod history;
mod images;
mod writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The embedded store: SQLite in a data directory.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers.
    pool: SqlitePool,
    /// The connection single-row administrative writes go through (a registry change),
    /// one at a time among themselves.
    writer: SqlitePool,
    /// The thread group commits and the audit log go through (see [`writer`]).
    commits: Writer,
    path: PathBuf,
}

crate::shared::shared_calls!(SqliteStore, sqlx::sqlite::SqliteRow);
crate::signin::signin_calls!(SqliteStore, sqlx::sqlite::SqliteRow);
crate::mediation::mediation_calls!(SqliteStore, sqlx::sqlite::SqliteRow);
crate::parking::parking_calls!(SqliteStore);
crate::camera_status::camera_status_calls!(SqliteStore);
crate::referrals::referrals_calls!(SqliteStore, sqlx::sqlite::SqliteRow);
crate::correction::correction_calls!(SqliteStore, sqlx::sqlite::SqliteRow);
crate::jt808::jt808_calls!(SqliteStore, sqlx::sqlite::SqliteRow);

pub(crate) type SqliteTx = Locked;

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
        let committed =
            sqlx::query_scalar(crate::shared::max_seq_sqlite()).fetch_one(&pool).await.map_err(q("read max seq"))?;
        let commits = Writer::start(&path, durability, committed)?;
        Ok(SqliteStore { pool, writer, commits, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.commits.close().await;
        self.pool.close().await;
        self.writer.close().await;
    }

    /// `SELECT 1` on a reading connection, then the write lock taken and given back on
    /// the writer: a store that answers reads but cannot commit is not ready either.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(q("ping"))?;
        self.commits.probe().await
    }

    /// Where single-row updates go: the writer connection, so that they queue behind
    /// group commits instead of failing on SQLite's write lock.
    fn write_pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// One instance per file: there is no one to tell of a registry change.
    fn announce_registry(&self, _what: &'static str) {}

    /// Inserts or updates a device. Returns whether it was new.
    pub async fn upsert_device(&self, d: &DeviceRecord) -> Result<bool, StoreError> {
        let existed: Option<i64> = sqlx::query_scalar("SELECT 1 FROM devices WHERE device_id = ?")
            .bind(&d.device_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("look up device"))?;
        sqlx::query(
            "INSERT INTO devices (device_id, name, kind, unit_id, key, created_ms, updated_ms, person_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (device_id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
               unit_id = excluded.unit_id, key = excluded.key, updated_ms = excluded.updated_ms,
               person_id = excluded.person_id",
        )
        .bind(&d.device_id)
        .bind(&d.name)
        .bind(&d.kind)
        .bind(&d.unit_id)
        .bind(&d.key)
        .bind(d.created_ms)
        .bind(d.updated_ms)
        .bind(&d.person_id)
        .execute(&self.pool)
        .await
        .map_err(q("upsert device"))?;
        Ok(existed.is_none())
    }

    /// The highest sequence number committed so far (0 for an empty store).
    pub async fn max_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(crate::shared::max_seq_sqlite()).fetch_one(&self.pool).await.map_err(q("read max seq"))
    }

    /// Takes the write lock and returns the highest sequence number committed so far;
    /// [`finish_write`] writes the batch and commits.
    pub(crate) async fn begin_write(&self) -> Result<(SqliteTx, i64), StoreError> {
        let locked = self.commits.lock().await;
        let committed = locked.committed();
        Ok((locked, committed))
    }

    /// Appends to the audit log on its own (reads made through the API).
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut rows = Rows::default();
        rows.push(entries.iter());
        self.commits.append(rows).await
    }
}

/// Writes the batch under the lock from [`SqliteStore::begin_write`] and commits, in one
/// job of the writer thread.
pub(crate) async fn finish_write(tx: SqliteTx, b: &Batch<'_>) -> Result<(), StoreError> {
    tx.commit(rows_of(b).await?).await
}

/// As [`finish_write`], on the calling thread (a commit that is alone: `writer`'s notes).
pub(crate) async fn finish_write_here(tx: SqliteTx, b: &Batch<'_>) -> Result<(), StoreError> {
    tx.commit_here(rows_of(b).await?).await
}

/// The batch's rows, table by table in the order they are inserted.
async fn rows_of(b: &Batch<'_>) -> Result<Rows, StoreError> {
    let mut rows = Rows::numbered(b.first_seq(), b.last_seq());
    insert_batch!(push, rows, b);
    Ok(rows)
}

/// Adds a table's rows to a writer job (the shape `insert_batch!` calls).
async fn push<'a, R: Written>(
    rows: &mut Rows,
    table: impl ExactSizeIterator<Item = &'a R> + Clone,
) -> Result<(), StoreError> {
    rows.push(table);
    Ok(())
}

/// Inserts rows on a sqlx connection, inside its caller's transaction (the duty
/// roster's, checked and written together): one statement per row, as the writer
/// thread does. Only small, rare writes come this way; group commits go to the writer.
async fn insert<'a, R: Written>(
    conn: &mut SqliteConnection,
    rows: impl ExactSizeIterator<Item = &'a R> + Clone,
) -> Result<(), StoreError> {
    let mut collected = Rows::default();
    collected.push(rows);
    for table in collected.tables() {
        for row in table.rows() {
            let mut statement = sqlx::query(table.sql);
            for v in row {
                statement = match v.value() {
                    ValueRef::Null => statement.bind(None::<i64>),
                    ValueRef::Integer(i) => statement.bind(i),
                    ValueRef::Real(f) => statement.bind(f),
                    ValueRef::Text(t) => statement.bind(String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => statement.bind(b),
                };
            }
            statement.execute(&mut *conn).await.map_err(q(table.op))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
