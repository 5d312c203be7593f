//! The embedded store: SQLite through sqlx, in a data directory.
//!
//! Writes come from one place, the ingest sequencer, which hands a whole batch to
//! [`SqliteStore::write`]: one transaction, one commit (one fsync with
//! `synchronous=FULL`) for however many reports arrived meanwhile.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::batch::{insert_batch, Batch};
use crate::columns::{ColumnSink, ColumnValue, Written};
use crate::error::{q, StoreError};
use crate::rows::{AuditEntry, DeviceRecord, Durability};

use history::in_bbox;

mod history;
mod images;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Most rows one insert statement takes: SQLite allows 32766 bound parameters per
/// statement, and 512 rows of the widest table (15 columns) stay well under. A power of
/// two, as every statement's row count is (see [`statement_rows`]).
const ROWS_PER_INSERT: usize = 512;

/// Prepared statements the writer's connection keeps: each table's inserts take at most
/// ten shapes (1, 2, 4, … 512 rows), some twenty tables, and the writer's other statements.
const WRITER_STATEMENTS: usize = 400;

/// The rows of the next statement of a multi-row insert with `left` rows to go (at least
/// one): the largest power of two not above `left` nor [`ROWS_PER_INSERT`]. Each shape of
/// statement is then prepared once per connection and kept, where a statement holding
/// exactly a group commit's rows had a new row count, so a new text to parse, almost
/// every time; `n` rows take as many statements as `n` has one bits.
fn statement_rows(left: usize) -> usize {
    let cap = left.clamp(1, ROWS_PER_INSERT);
    1 << (usize::BITS - 1 - cap.leading_zeros())
}

/// The embedded store: SQLite in a data directory.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (and rare administrative writes).
    pool: SqlitePool,
    /// The one connection group commits go through: SQLite serialises writers anyway,
    /// and one connection keeps its page cache and prepared statements hot.
    writer: SqlitePool,
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

pub(crate) type SqliteTx = sqlx::Transaction<'static, Sqlite>;

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
            .connect_with(opts.clone().statement_cache_capacity(WRITER_STATEMENTS))
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

    /// `SELECT 1` on a reading connection.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(q("ping"))
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

    /// Starts a group commit on the writer connection and returns the highest sequence
    /// number committed so far; [`finish_write`] writes the batch and commits.
    pub(crate) async fn begin_write(&self) -> Result<(SqliteTx, i64), StoreError> {
        // IMMEDIATE takes the database's write lock now (waiting up to the busy
        // timeout). A deferred transaction would read at a snapshot and then fail with
        // SQLITE_BUSY_SNAPSHOT, without waiting, if a registry upsert on another
        // connection committed while the batch was being prepared.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(q("begin"))?;
        let committed: i64 =
            sqlx::query_scalar(crate::shared::max_seq_sqlite()).fetch_one(&mut *tx).await.map_err(q("read max seq"))?;
        Ok((tx, committed))
    }

    /// Appends to the audit log on its own (reads made through the API).
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        // Nothing to write takes no connection (the one the sequencer writes on).
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer.acquire().await.map_err(q("acquire writer"))?;
        insert(&mut conn, entries.iter()).await
    }
}

/// Writes the batch inside a transaction from [`SqliteStore::begin_write`] and commits.
pub(crate) async fn finish_write(mut tx: SqliteTx, b: &Batch<'_>) -> Result<(), StoreError> {
    insert_batch!(insert, tx, b);
    tx.commit().await.map_err(q("commit"))
}

/// Hands one row's values to a multi-row insert's `VALUES (…)`.
struct RowValues<'s, 'qb, 'args>(&'s mut Separated<'qb, 'args, Sqlite, &'static str>);

impl<'args> ColumnSink<'args> for RowValues<'_, '_, 'args> {
    fn column<T: ColumnValue<'args>>(&mut self, values: impl Iterator<Item = T>) {
        for v in values {
            self.0.push_bind(v);
        }
    }
}

/// Inserts rows into their table in statements of [`statement_rows`] rows, in order: a
/// repeated key, within one statement or across two, is applied row after row, so the
/// last row of a key wins. The statements are kept prepared on the connection.
async fn insert<'a, R: Written>(
    conn: &mut SqliteConnection,
    rows: impl ExactSizeIterator<Item = &'a R>,
) -> Result<(), StoreError> {
    let rows: Vec<&'a R> = rows.collect();
    let mut rest = &rows[..];
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(statement_rows(rest.len()));
        let sql = R::insert_sql();
        let mut qb = QueryBuilder::<Sqlite>::new(&sql.sqlite_head);
        qb.push_values(chunk, |mut b, r| R::columns(std::iter::once(*r), &mut RowValues(&mut b)));
        qb.push(&sql.sqlite_tail);
        qb.build().persistent(true).execute(&mut *conn).await.map_err(q(R::TABLE.op))?;
        rest = after;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
