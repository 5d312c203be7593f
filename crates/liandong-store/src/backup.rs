//! Backups of the embedded store: a consistent copy of its database made while a
//! server writes to it, and the check a restore makes of a copy before putting it back.
//!
//! The copy is SQLite's `VACUUM INTO` on a connection of its own: it reads the database
//! in one read transaction, which in WAL mode runs beside the server's writer without
//! stopping it, and writes a compacted file that holds exactly the transactions
//! committed when the read began (so every group commit is in it whole, or not at all).
//! The images beside the database are files; the caller copies them after the
//! database, so that every image an acknowledged event of the copy names (written
//! before its event was committed) is there to copy.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};

use crate::error::{q, StoreError};

/// The database's file name in a data directory (and in a backup).
pub const DB_FILE: &str = "liandong.db";
/// The images' directory beside it.
pub const IMAGES_DIR: &str = "images";

/// What a database holds, for a backup's manifest and a restore's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The newest migration applied (its number and name).
    pub migration: i64,
    pub migration_name: String,
    /// The highest sequence number committed.
    pub max_seq: i64,
    /// Rows of every table, by name.
    pub tables: std::collections::BTreeMap<String, i64>,
}

/// A connection to the database file `db`, which must exist; it waits up to 5 s for a
/// lock, as the server's own connections do.
async fn connect(db: &Path, read_only: bool) -> Result<SqliteConnection, StoreError> {
    let open = |source| StoreError::Open { path: db.to_owned(), source };
    if !db.is_file() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such database file");
        return Err(open(sqlx::Error::Io(missing)));
    }
    SqliteConnectOptions::from_str("sqlite://")
        .map_err(open)?
        .filename(db)
        .read_only(read_only)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(open)
}

/// Copies the database `db` (which a server may be writing) into the new file `into`,
/// consistently, and answers what the copy holds.
pub async fn copy_sqlite(db: &Path, into: &Path) -> Result<Summary, StoreError> {
    if into.exists() {
        let exists = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the copy's file exists");
        return Err(StoreError::Open { path: into.to_owned(), source: sqlx::Error::Io(exists) });
    }
    let mut conn = connect(db, false).await?;
    let target = into.to_str().ok_or_else(|| StoreError::Open {
        path: into.to_owned(),
        source: sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is not UTF-8")),
    })?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&mut conn)
        .await
        .map_err(q("copy the database (VACUUM INTO)"))?;
    let _ = conn.close().await;
    // The copy is written without a sync of its own: make it durable before it counts.
    std::fs::File::open(into).and_then(|f| f.sync_all()).map_err(|source| StoreError::Images {
        op: "sync the copy",
        path: into.to_owned(),
        source,
    })?;
    let mut copy = connect(into, true).await?;
    let summary = summarise(&mut copy).await;
    let _ = copy.close().await;
    summary
}

/// Checks the database file `db` (`PRAGMA integrity_check`) and answers what it holds;
/// a database that fails the check is refused with the problems SQLite names.
pub async fn check_sqlite(db: &Path) -> Result<Summary, StoreError> {
    let mut conn = connect(db, true).await?;
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check(20)")
        .fetch_all(&mut conn)
        .await
        .map_err(q("check the database's integrity"))?;
    if problems != ["ok"] {
        let _ = conn.close().await;
        return Err(StoreError::Integrity { path: db.to_owned(), problems: problems.join("; ") });
    }
    let summary = summarise(&mut conn).await;
    let _ = conn.close().await;
    summary
}

/// The newest migration, the highest sequence number and every table's rows.
async fn summarise(conn: &mut SqliteConnection) -> Result<Summary, StoreError> {
    let newest = sqlx::query("SELECT version, description FROM _sqlx_migrations ORDER BY version DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(q("read the migrations"))?;
    let (migration, migration_name) = match newest {
        Some(row) => (row.get::<i64, _>(0), row.get::<String, _>(1)),
        None => (0, String::new()),
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(q("list the tables"))?;
    // A copy taken before migration 0024 has no sequence's head yet.
    let max_seq_sql = crate::shared::max_seq_sql(names.iter().any(|n| n == "seq_head"));
    let max_seq: i64 = sqlx::query_scalar(&max_seq_sql).fetch_one(&mut *conn).await.map_err(q("read max seq"))?;
    let mut tables = std::collections::BTreeMap::new();
    for name in names {
        // The names come from the database's own catalogue; quoted as identifiers.
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
        let n: i64 = sqlx::query_scalar(&sql).fetch_one(&mut *conn).await.map_err(q("count a table's rows"))?;
        tables.insert(name, n);
    }
    Ok(Summary { migration, migration_name, max_seq, tables })
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Executor};

    use super::*;
    use crate::{Durability, Store};

    /// A copy is checked whatever migration it stopped at: one taken before the
    /// sequence's head (migration 0024) has its highest number from its tables alone,
    /// and on a copy with the head, a number retention left there counts.
    #[tokio::test]
    async fn a_copy_is_summarised_with_and_without_the_sequences_head() {
        let dir = liandong_test_support::fresh_dir("backup-summary");
        Store::open(&dir, Durability::Normal).await.expect("open the store").close().await;
        let db = dir.join(DB_FILE);
        let url = format!("sqlite://{}", db.display());
        let mut sql = SqliteConnection::connect(&url).await.expect("connect");
        sql.execute("UPDATE seq_head SET seq = 7").await.expect("move the head");
        assert_eq!(check_sqlite(&db).await.expect("check the copy").max_seq, 7, "the head counts");
        sql.execute("DROP TABLE seq_head").await.expect("drop the head");
        sql.close().await.expect("close");
        let summary = check_sqlite(&db).await.expect("a copy from before migration 0024 is checked");
        assert_eq!(summary.max_seq, 0);
        assert!(!summary.tables.contains_key("seq_head"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
