//! The embedded store's writer: SQLite's one writing connection (rusqlite) and the
//! thread that runs each group commit on it whole — `BEGIN IMMEDIATE`, the check of the
//! batch's numbers, every insert, `COMMIT` — as one job.
//!
//! Why a thread of its own: through sqlx every statement is a round trip between the
//! async runtime and the connection's worker thread, two thread wake-ups each way; a
//! one-report commit took five (begin, the number check, two inserts, commit), and a
//! profile of one device reporting showed the server spending most of its CPU in
//! context switches (39 per report). Here a commit is one message to the thread and
//! one answer back, whatever the batch holds. The rows cross as owned values, each
//! insert is one cached single-row statement executed once per row (SQLite's own loop,
//! no parsing per commit), and nothing of sqlx's per-statement machinery runs.
//!
//! A commit the caller knows is alone — one report, nothing else queued — can run on
//! the caller's thread instead ([`Locked::commit_here`]): then the two hand-offs left
//! (the wake of this thread, and its answer waking the runtime's worker out of
//! `epoll_wait`) are gone, some 23 µs of the 181 µs of server CPU a report cost when one
//! device reported at a time (BENCHMARKS.md, "A commit alone"). It blocks that
//! thread for the commit's `fsync`, which a runtime worker can afford only while nothing
//! else waits: batches (under load) stay on this thread, where blocking costs no worker.
//! The connection is behind a mutex that both paths take; only one holds it at a time.
//! A commit alone waits for nothing else on the caller's thread: if the thread has the
//! connection or another connection holds the database's write lock, it is sent to the
//! thread after all (a worker blocked on a lock held by a task it should be running
//! failed commits with "database is locked" after the busy timeout).
//!
//! The write lock is an async mutex held from [`Writer::lock`] until the commit's
//! answer, or until dropped: the sequencer prepares its batch under it. It keeps the
//! highest committed number, so taking it costs no query; the thread checks the
//! numbers against the store itself inside the transaction, so a stale figure (another
//! store on the same file, which the data directory's lock rules out for servers)
//! costs a [`StoreError::SeqConflict`], never a lost number.

use std::path::Path;
use std::sync::{mpsc, Arc, PoisonError};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use crate::columns::{Cell, ColumnSink, ColumnValue, Written};
use crate::error::StoreError;
use crate::rows::Durability;

/// Statements the writer keeps prepared: one insert per written table and the commit's own.
const STATEMENTS: usize = 64;

/// A handle on the writer thread; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    conn: Shared,
    /// The write lock, holding the highest sequence number committed.
    lock: Arc<Mutex<i64>>,
}

/// The write lock, held: what [`Writer::commit`] needs.
#[derive(Debug)]
pub(crate) struct Locked {
    guard: OwnedMutexGuard<i64>,
    jobs: mpsc::Sender<Job>,
    conn: Shared,
}

/// The writing connection; `None` once closed.
type Shared = Arc<std::sync::Mutex<Option<Held>>>;

/// The writing connection and what it last saw of the file.
#[derive(Debug)]
struct Held {
    conn: Connection,
    seen: Seen,
}

/// Runs `f` on the writing connection: [`StoreError::Closed`] once it is closed.
fn with_conn<T>(shared: &Shared, f: impl FnOnce(&mut Held) -> Result<T, StoreError>) -> Result<T, StoreError> {
    // A panic while the lock was held left no transaction open (dropping the
    // `Immediate` rolled it back), so the connection is as good as before.
    let mut held = shared.lock().unwrap_or_else(PoisonError::into_inner);
    held.as_mut().map_or(Err(StoreError::Closed), f)
}

impl Locked {
    /// The highest sequence number committed when the lock was taken.
    pub fn committed(&self) -> i64 {
        *self.guard
    }
}

enum Job {
    Write {
        rows: Rows,
        reply: oneshot::Sender<Result<i64, StoreError>>,
    },
    /// Whether the database's write lock can be taken now (readiness).
    Probe(oneshot::Sender<Result<(), StoreError>>),
    Close(oneshot::Sender<()>),
}

/// What one job inserts, table by table in order, with the numbers it assigns.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    tables: Vec<TableRows>,
    /// The lowest and highest sequence numbers the rows take (none for the audit log).
    first: Option<i64>,
    last: Option<i64>,
}

/// One table's rows: `cells` holds `width` values per row, row after row, their text
/// in `text`.
#[derive(Debug)]
pub(crate) struct TableRows {
    pub sql: &'static str,
    pub op: &'static str,
    width: usize,
    cells: Vec<Cell>,
    text: Vec<u8>,
}

impl Rows {
    /// A job whose rows take the sequence numbers `first` to `last`.
    pub fn numbered(first: Option<i64>, last: Option<i64>) -> Rows {
        Rows { tables: Vec::new(), first, last }
    }

    /// Adds a table's rows, in order (a repeated key is upserted row after row, so its
    /// last row wins).
    pub fn push<'a, R: Written>(&mut self, rows: impl ExactSizeIterator<Item = &'a R> + Clone) {
        let n = rows.len();
        if n == 0 {
            return;
        }
        let width = R::TABLE.columns.len();
        let mut sink = Collect { width, column: 0, cells: vec![Cell::Null; n * width], text: Vec::new() };
        R::columns(rows, &mut sink);
        self.tables.push(TableRows {
            sql: &R::insert_sql().sqlite_row,
            op: R::TABLE.op,
            width,
            cells: sink.cells,
            text: sink.text,
        });
    }

    /// Each table's rows, in order.
    pub fn tables(&self) -> impl Iterator<Item = &TableRows> {
        self.tables.iter()
    }
}

impl TableRows {
    /// The rows, each its values in column order.
    pub fn rows(&self) -> impl Iterator<Item = impl Iterator<Item = Bound<'_>>> {
        self.cells.chunks_exact(self.width).map(|row| row.iter().map(|&cell| Bound { cell, text: &self.text }))
    }
}

/// A value as bound: its text borrowed from the table's buffer.
#[derive(Clone, Copy)]
pub(crate) struct Bound<'a> {
    cell: Cell,
    text: &'a [u8],
}

impl<'a> Bound<'a> {
    /// The value as SQLite takes it (its text as written: UTF-8, from `&str`s and JSON).
    pub fn value(self) -> ValueRef<'a> {
        match self.cell {
            Cell::Null => ValueRef::Null,
            Cell::Integer(i) => ValueRef::Integer(i),
            Cell::Real(f) => ValueRef::Real(f),
            Cell::Text(start, end) => ValueRef::Text(&self.text[start..end]),
        }
    }
}

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.value()))
    }
}

/// Places each column's values in their rows.
struct Collect {
    width: usize,
    column: usize,
    cells: Vec<Cell>,
    text: Vec<u8>,
}

impl<'a> ColumnSink<'a> for Collect {
    fn column<T: ColumnValue<'a>>(&mut self, values: impl Iterator<Item = T>) {
        for (row, v) in values.enumerate() {
            self.cells[row * self.width + self.column] = v.sqlite_cell(&mut self.text);
        }
        self.column += 1;
    }
}

impl Writer {
    /// Opens the writing connection on `path` (migrated already) and starts the thread;
    /// `committed` is the store's highest sequence number now.
    pub fn start(path: &Path, durability: Durability, committed: i64) -> Result<Writer, StoreError> {
        let conn = open(path, durability).map_err(|source| StoreError::Write { op: "open the writer", source })?;
        let conn: Shared = Arc::new(std::sync::Mutex::new(Some(Held { conn, seen: None })));
        let (jobs, rx) = mpsc::channel();
        let on_thread = conn.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&on_thread, rx))
            .map_err(|source| StoreError::WriterThread { path: path.to_owned(), source })?;
        Ok(Writer { jobs, conn, lock: Arc::new(Mutex::new(committed)) })
    }

    /// Takes the write lock (waiting for a commit under way to finish).
    pub async fn lock(&self) -> Locked {
        Locked { guard: self.lock.clone().lock_owned().await, jobs: self.jobs.clone(), conn: self.conn.clone() }
    }

    /// Writes rows that take no sequence number (the audit log), without the lock.
    pub async fn append(&self, rows: Rows) -> Result<(), StoreError> {
        send(&self.jobs, rows).await.map(|_| ())
    }

    /// Takes the database's write lock and gives it back at once, waiting at most
    /// [`PROBE_WAIT`]: [`StoreError::WriteLocked`] when another connection (a tool, a
    /// second process) holds it, which would hold up every commit.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Probe(reply)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops the thread once the jobs sent before are done, closing the connection.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Job::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

impl Locked {
    /// Writes `rows` in one transaction and commits, then releases the lock. Returns
    /// once the commit is durable. Numbers at or below what the store holds are refused
    /// unwritten with [`StoreError::SeqConflict`].
    pub async fn commit(self, rows: Rows) -> Result<(), StoreError> {
        let done = send(&self.jobs, rows).await;
        self.done(done)
    }

    /// As [`Locked::commit`], but on the calling thread, which is blocked until the
    /// commit is durable: for a commit the caller knows is alone (see the module's notes).
    ///
    /// It never waits on the calling thread for anyone else: when the writer thread has
    /// the connection, or another connection holds the database's write lock (a registry
    /// change through the reading pool, whose task may be waiting for this very thread),
    /// the rows go to the writer thread as [`Locked::commit`] sends them, which waits
    /// there. Waiting here instead blocked a runtime worker on a lock that only a task of
    /// that worker could release, until the busy timeout failed the commit.
    pub async fn commit_here(self, rows: Rows) -> Result<(), StoreError> {
        // The connection's guard ends with this block, before any wait for the thread.
        let done = {
            let held = match self.conn.try_lock() {
                Ok(held) => Some(held),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            match held {
                Some(mut held) => held.as_mut().map_or(Err(StoreError::Closed), |held| write(held, &rows, Take::Now)),
                None => Err(StoreError::WriteLocked),
            }
        };
        let done = match done {
            Err(StoreError::WriteLocked) => send(&self.jobs, rows).await,
            done => done,
        };
        self.done(done)
    }

    /// Keeps the highest number committed, and releases the lock.
    fn done(mut self, done: Result<i64, StoreError>) -> Result<(), StoreError> {
        match done {
            Ok(max) => {
                *self.guard = max;
                Ok(())
            }
            Err(e) => {
                if let StoreError::SeqConflict { committed, .. } = e {
                    *self.guard = committed;
                }
                Err(e)
            }
        }
    }
}

async fn send(jobs: &mpsc::Sender<Job>, rows: Rows) -> Result<i64, StoreError> {
    let (reply, answer) = oneshot::channel();
    jobs.send(Job::Write { rows, reply }).map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

fn open(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_WAIT)?;
    // As sqlx's readers are set up: the journal is the database's (WAL, set when it was
    // opened); synchronous, the cache and foreign keys are the connection's own.
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "full",
            Durability::Normal => "normal",
        },
    )?;
    // 16 MiB of page cache: the pages a commit touches (the newest rows, each device's
    // index leaf and live state: some 1,100 pages for the demo's 1,000 devices) stay
    // hot, while SQLite's end of every transaction, which walks the cache's hash table,
    // stays short; at 64 MiB that walk was 6 % of the server's CPU under load.
    conn.pragma_update(None, "cache_size", -16384)?;
    // A checkpoint every 10,000 WAL pages (40 MiB) rather than 1,000: the hot pages are
    // copied back to the database once per checkpoint however often they were rewritten,
    // so checkpoints' share of the CPU fell from 4 % to 1.5 % (BENCHMARKS.md).
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    Ok(conn)
}

/// The thread: one job after the other until closed or every handle is gone.
fn run(shared: &Shared, jobs: mpsc::Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Write { rows, reply } => {
                let done = with_conn(shared, |held| write(held, &rows, Take::Wait));
                // The rows are dropped here, off the async runtime.
                drop(rows);
                let _ = reply.send(done);
            }
            Job::Probe(reply) => {
                let _ = reply.send(with_conn(shared, |held| probe(&held.conn)));
            }
            Job::Close(done) => {
                // Closed here, once every job sent before is done; a commit on another
                // thread after this finds no connection.
                drop(shared.lock().unwrap_or_else(PoisonError::into_inner).take());
                let _ = done.send(());
                return;
            }
        }
    }
}

/// How long a readiness probe waits for the write lock. The writer's own commits never
/// hold it against the probe (they hold the connection's mutex, which the probe takes
/// too); a registry change briefly may.
const PROBE_WAIT: Duration = Duration::from_millis(100);
/// How long a commit waits for the write lock.
const BUSY_WAIT: Duration = Duration::from_secs(5);

fn probe(conn: &Connection) -> Result<(), StoreError> {
    let fail = |source| StoreError::Write { op: "probe the write lock", source };
    conn.busy_timeout(PROBE_WAIT).map_err(fail)?;
    let taken = conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK");
    conn.busy_timeout(BUSY_WAIT).map_err(fail)?;
    match taken {
        Ok(()) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => Err(StoreError::WriteLocked),
        Err(e) => Err(fail(e)),
    }
}

/// What the writer last saw of the file: its `PRAGMA data_version` and the highest
/// sequence number committed then.
///
/// `data_version` changes only when another connection commits (a second store on the
/// same file, a registry change through the reading pool), never for this connection's
/// own commits: while it stands still, the highest number is the one this thread
/// committed last, and the check of a batch's numbers needs no `MAX` over the nine
/// sequenced tables (12,600 instructions, 7 % of a one-report commit's server work).
type Seen = Option<(i64, i64)>;

/// How a transaction takes the database's write lock when another connection holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Waits up to the busy timeout (the writer thread, which nothing else waits for).
    Wait,
    /// Does not wait: [`StoreError::WriteLocked`], nothing written (a runtime worker).
    Now,
}

/// One transaction: the numbers checked, every table's rows inserted, committed.
/// Returns the highest sequence number committed after it.
fn write(held: &mut Held, rows: &Rows, take: Take) -> Result<i64, StoreError> {
    let Held { conn, seen } = held;
    let fail = |op: &'static str| move |source| StoreError::Write { op, source };
    // IMMEDIATE takes the database's write lock now (waiting up to the busy timeout for
    // a registry change on a reading connection, or not at all); dropping the
    // transaction rolls back.
    let tx = match take {
        Take::Wait => Immediate::begin(conn).map_err(fail("begin"))?,
        Take::Now => {
            conn.busy_timeout(Duration::ZERO).map_err(fail("begin"))?;
            let begun = Immediate::begin(conn);
            conn.busy_timeout(BUSY_WAIT).map_err(fail("begin"))?;
            match begun {
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                    return Err(StoreError::WriteLocked)
                }
                begun => begun.map_err(fail("begin"))?,
            }
        }
    };
    let mut committed = 0;
    let mut version = None;
    if let Some(first) = rows.first {
        let now: i64 = tx
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(fail("read data version"))?;
        committed = match *seen {
            Some((v, max)) if v == now => max,
            _ => tx
                .conn
                .prepare_cached(crate::shared::max_seq_sqlite())
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(fail("read max seq"))?,
        };
        if first <= committed {
            *seen = Some((now, committed));
            return Err(StoreError::SeqConflict { committed, first });
        }
        version = Some(now);
    }
    for t in &rows.tables {
        let mut statement = tx.conn.prepare_cached(t.sql).map_err(fail(t.op))?;
        for row in t.rows() {
            statement.execute(rusqlite::params_from_iter(row)).map_err(fail(t.op))?;
        }
    }
    tx.commit().map_err(fail("commit"))?;
    let max = rows.last.map_or(committed, |last| last.max(committed));
    if let Some(v) = version {
        *seen = Some((v, max));
    }
    Ok(max)
}

/// A write transaction begun and committed with cached statements: rusqlite's own
/// `Transaction` parses its `BEGIN IMMEDIATE` and `COMMIT` again at every commit, some
/// 3,000 instructions, 2 % of a one-report commit's server work. Dropped uncommitted (an
/// error, a conflict), it rolls back.
struct Immediate<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Immediate<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Immediate<'c>> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Immediate { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        // A failed COMMIT may have ended the transaction already; then there is nothing
        // to roll back, and the error says so.
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
