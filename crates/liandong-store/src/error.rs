//! The store's one error type, shared by both backends.

use std::path::PathBuf;

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
    /// A database file failed SQLite's `PRAGMA integrity_check` (a backup's copy that
    /// a restore refuses).
    #[error("database {path} is damaged: {problems}")]
    Integrity { path: PathBuf, problems: String },
    /// SQLite's writer thread failed a statement of a group commit (nothing of the
    /// commit was written).
    #[error("database error during {op}: {source}")]
    Write { op: &'static str, source: rusqlite::Error },
    /// The embedded store's writer thread could not be started (out of threads or
    /// memory): nothing can be written, so the store does not open.
    #[error("cannot start the writer thread for {path}: {source}")]
    WriterThread { path: PathBuf, source: std::io::Error },
    /// Another connection (a tool, a second process) holds the embedded store's write
    /// lock: nothing can be committed until it lets go.
    #[error("another connection holds the database's write lock")]
    WriteLocked,
    /// The store was closed (shutting down) before the write could be made.
    #[error("the store is closed")]
    Closed,
    /// A PostgreSQL extension the store needs (PostGIS) is missing or cannot be created.
    #[error("database {database} cannot use the {extension} extension: {reason}")]
    Extension { extension: &'static str, database: String, reason: String },
}

/// Wraps a database error with the operation it interrupted.
pub(crate) fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}
