//! Monthly partitions of `positions` and `camera_events` (migration 0021): making the
//! months ahead, and retention by dropping whole months.
//!
//! Both take locks on a table ingest writes to, so both run with a short
//! `lock_timeout` ([`LOCK_TIMEOUT`]): a long history query holding the table makes them
//! give up and try again later, instead of queueing, because every insert that arrives
//! behind a queued ACCESS EXCLUSIVE request waits with it. Ingest is therefore held up
//! for at most the timeout plus the few milliseconds a drop takes, per attempt.
//!
//! Under full ingest a group commit holds both tables from its first read to its
//! commit, and a large batch on a busy machine can hold them past the timeout; a lock
//! request only waits for the holders it found, so the same month asked for again a
//! moment later usually gets it. One retention round therefore asks again for a busy
//! month itself, after short jittered pauses, before leaving it to the next round; it
//! waits out at most [`ROUND_LOCK_WAITS`] lock timeouts in all (half a second), and
//! ingest is never held up longer than one attempt's timeout at a time.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use super::PgStore;
use crate::error::{q, StoreError};
use crate::rows::Pruned;

/// How long a partition change waits for a lock before giving up (and being tried
/// again later): the most it may hold up ingest's commits queued behind it.
pub const LOCK_TIMEOUT: &str = "100ms";

/// How many lock timeouts one retention round ([`PgStore::prune_before`]) waits out
/// over all its months and tables together, so at most `5 × 100 ms` of lock waiting a
/// round. A busy month is asked for again while the round has timeouts to spare,
/// keeping one for each table still to come; a month still busy then (a long query
/// holds its table) is left for the next round.
pub const ROUND_LOCK_WAITS: u32 = 5;

/// The pause before asking again for a busy month: at least this, plus up to
/// [`BUSY_JITTER_MS`], so that two instances pruning at once, or a writer committing
/// on a fixed rhythm, do not meet the lock at the same moment every time.
const BUSY_PAUSE: Duration = Duration::from_millis(10);
/// The most added at random to [`BUSY_PAUSE`].
const BUSY_JITTER_MS: u64 = 40;

/// Longest a statement of a month's drop may run (they take milliseconds).
const DROP_STATEMENT_TIMEOUT: &str = "10s";

/// Rows per delete from a default partition (the rows no month holds).
const DEFAULT_BATCH: i64 = 2_000;

/// Most batches deleted from a default partition per call, so that a call is bounded
/// even when the default partition grew large (months never made ahead).
const DEFAULT_BATCHES: u32 = 50;

/// The columns of `positions` the store writes, in table order (all but the generated
/// `geom`).
const POSITION_COLUMNS: &str = "seq, device_id, fix_ms, recv_ms, lon, lat, datum, speed_mps, course_deg, \
     altitude_m, accuracy_m, battery_pct, flags, attributes, enrichment";

/// A partitioned table: its name, its partition key and what retention keeps of it.
struct Partitioned {
    parent: &'static str,
    key: &'static str,
    /// Whether each device's last report (device_state.seq) outlives its month.
    keeps_last_reports: bool,
}

const TABLES: [Partitioned; 2] = [
    Partitioned { parent: "positions", key: "fix_ms", keeps_last_reports: true },
    Partitioned { parent: "camera_events", key: "time_ms", keeps_last_reports: false },
];

/// A month partition wholly before a cutoff ([`PgStore::months_before`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldMonth {
    /// The partitioned table: `positions` or `camera_events`.
    pub table: &'static str,
    /// The month's partition, `<table>_pYYYY_MM`.
    pub partition: String,
    /// The planner's estimate of its rows (`pg_class.reltuples`), `None` if never
    /// analysed.
    pub rows_estimate: Option<i64>,
}

/// What became of one month in a retention round.
enum Dropped {
    /// Dropped, with this many last reports kept.
    Kept(u64),
    /// Already gone: another instance dropped it first.
    Gone,
    /// Its table stayed busy past the lock timeouts the round could spare.
    Busy,
}

/// Whether an error is PostgreSQL's "lock not available" (`lock_timeout` expired).
pub(crate) fn is_lock_timeout(e: &StoreError) -> bool {
    match e {
        StoreError::Query { source: sqlx::Error::Database(d), .. } => d.code().as_deref() == Some("55P03"),
        _ => false,
    }
}

impl PgStore {
    /// Creates every monthly partition needed for rows whose time is in `[from_ms,
    /// to_ms)` that does not exist yet (`liandong_ensure_partitions`); answers how many
    /// it created. Gives up with a lock-timeout error (see [`is_lock_timeout`]) when
    /// a table is held for longer than [`LOCK_TIMEOUT`]; nothing is lost meanwhile, as
    /// rows of a month not yet made go to the default partition.
    pub async fn ensure_partitions(&self, from_ms: i64, to_ms: i64) -> Result<u32, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(q("acquire a connection"))?;
        let mut tx = conn.begin().await.map_err(q("begin"))?;
        set_lock_timeout(&mut tx).await?;
        let made: i32 = sqlx::query_scalar("SELECT liandong_ensure_partitions($1, $2)")
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(q("create monthly partitions"))?;
        tx.commit().await.map_err(q("commit"))?;
        Ok(u32::try_from(made).unwrap_or(0))
    }

    /// Retention by partitions: drops every month of `positions` and `camera_events`
    /// that ends at or before `before_ms`, oldest first, one at a time (see
    /// `drop_month`); a device's last report in a dropped month is kept (moved to the default
    /// partition, where the live state's join still finds it). Then deletes, in
    /// batches, the rows older than `before_ms` that the default partitions hold
    /// (again except last reports). Rows older than `before_ms` in a month not wholly
    /// before it stay until their month goes.
    ///
    /// A month whose table is busy past [`LOCK_TIMEOUT`] is asked for again after a
    /// short pause, within the round's [`ROUND_LOCK_WAITS`]; one still busy is left,
    /// with the later months of its table, for the next call (`Pruned::busy`,
    /// `Pruned::left`). The other table is still pruned.
    ///
    /// When it answers, the months are out of their tables (no query or commit sees
    /// them), renamed `…_detached`; their files go with
    /// [`PgStore::remove_detached`], the retention round's second step.
    pub async fn prune_before(&self, before_ms: i64) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        let mut waits_left = ROUND_LOCK_WAITS;
        for (i, t) in TABLES.iter().enumerate() {
            // One lock wait kept for each table after this one.
            let reserve = (TABLES.len() - 1 - i) as u32;
            let months = self.months_ending_by(t, before_ms).await?;
            for (m, part) in months.iter().enumerate() {
                match self.drop_month_retrying(t, part, &mut waits_left, reserve).await? {
                    Dropped::Kept(kept) => {
                        pruned.reports_kept += kept;
                        pruned.partitions.push(part.clone());
                    }
                    // Another instance sharing the database dropped it first.
                    Dropped::Gone => {}
                    Dropped::Busy => {
                        tracing::info!(partition = %part, "partition busy; dropping it later");
                        pruned.busy = true;
                        pruned.left.extend_from_slice(&months[m..]);
                        break;
                    }
                }
            }
            pruned.rows_deleted += self.prune_default(t, before_ms).await?;
        }
        Ok(pruned)
    }

    /// [`PgStore::drop_month`], asked again after a jittered pause each time its table
    /// is busy, while the round's `waits_left` stays above `reserve` (the waits kept for
    /// the tables still to come); each lock timeout uses one.
    async fn drop_month_retrying(
        &self,
        t: &Partitioned,
        part: &str,
        waits_left: &mut u32,
        reserve: u32,
    ) -> Result<Dropped, StoreError> {
        loop {
            if *waits_left <= reserve {
                return Ok(Dropped::Busy);
            }
            match self.drop_month(t, part).await {
                Ok(Some(kept)) => return Ok(Dropped::Kept(kept)),
                Ok(None) => return Ok(Dropped::Gone),
                Err(e) if is_lock_timeout(&e) => {
                    *waits_left -= 1;
                    tracing::debug!(partition = %part, waits_left = *waits_left, "partition busy; asking again");
                    if *waits_left > reserve {
                        tokio::time::sleep(busy_pause()).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The months of `positions` and `camera_events` wholly before `before_ms` (those
    /// [`PgStore::prune_before`] would drop), oldest first per table, with the planner's
    /// estimate of their rows (`pg_class.reltuples` as of their last ANALYZE, `None`
    /// if never analysed). Read from the catalogue only: no lock on the tables and no
    /// scan of a month, so that asking beside ingest (a benchmark's before and after)
    /// costs it nothing.
    pub async fn months_before(&self, before_ms: i64) -> Result<Vec<OldMonth>, StoreError> {
        let mut out = Vec::new();
        for t in &TABLES {
            out.extend(self.old_months(t, before_ms).await?);
        }
        Ok(out)
    }

    /// How many rows of each table's default partition are older than `before_ms`:
    /// the rows retention deletes one by one, and the last reports it keeps there.
    /// Exact; the default partition holds only the rows no month takes, few of them.
    pub async fn default_rows_before(&self, before_ms: i64) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut out = Vec::new();
        for t in &TABLES {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {parent}_default WHERE {key} < $1",
                parent = t.parent,
                key = t.key
            ))
            .bind(before_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(q("count a default partition's old rows"))?;
            out.push((t.parent, n));
        }
        Ok(out)
    }

    /// The month partitions of `t` whose whole range ends at or before `before_ms`,
    /// oldest first.
    async fn months_ending_by(&self, t: &Partitioned, before_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(self.old_months(t, before_ms).await?.into_iter().map(|m| m.partition).collect())
    }

    /// [`PgStore::months_ending_by`] with each month's row estimate. A month's upper
    /// bound is read from its partition bound (`FOR VALUES FROM ('…') TO ('…')`), not
    /// from its name.
    async fn old_months(&self, t: &Partitioned, before_ms: i64) -> Result<Vec<OldMonth>, StoreError> {
        let months: Vec<(String, f32)> = sqlx::query_as(
            "SELECT part, reltuples FROM (
                SELECT c.relname::text AS part, c.reltuples,
                       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''?(-?[0-9]+)''?\\)'))[1]::bigint AS hi
                FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = $1::regclass
             ) m WHERE hi IS NOT NULL AND hi <= $2 ORDER BY hi",
        )
        .bind(t.parent)
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list monthly partitions"))?;
        Ok(months
            .into_iter()
            .map(|(partition, reltuples)| OldMonth {
                table: t.parent,
                partition,
                // -1 until the first ANALYZE (PostgreSQL 14 and later; 0 before).
                rows_estimate: (reltuples >= 0.0).then_some(reltuples as i64),
            })
            .collect())
    }

    /// Takes one month out of `t`, in one transaction under the parent's lock (waited
    /// for at most [`LOCK_TIMEOUT`]): detaches the month, renames it `…_detached`, and
    /// copies back the last reports it held (they now fall in no month, so into the
    /// default partition). The detached table is dropped later, by
    /// [`PgStore::remove_detached`]: removing a month's files takes from hundreds of
    /// milliseconds (300,000 rows) to seconds (4 GB), and PostgreSQL removes them at
    /// commit, before it releases the locks, so under the parent's lock it would hold
    /// up ingest for as long. Answers how many reports it kept, or None when the month
    /// was gone by the time the lock was granted (another instance dropped it).
    async fn drop_month(&self, t: &Partitioned, part: &str) -> Result<Option<u64>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(q("acquire a connection"))?;
        let mut tx = conn.begin().await.map_err(q("begin"))?;
        set_lock_timeout(&mut tx).await?;
        // A bound on the work done under the lock, should the server be stalled: the
        // drop is rolled back and tried again at the next round.
        sqlx::query(&format!("SET LOCAL statement_timeout = '{DROP_STATEMENT_TIMEOUT}'"))
            .execute(&mut *tx)
            .await
            .map_err(q("set the statement timeout"))?;
        // The lock first, so that the whole change happens under it: no commit can add
        // a row to the month or point a device's state at one meanwhile. The parent
        // ONLY: every commit and query goes through it, and DETACH locks the month and
        // the default partition itself. Locking every month as well would wait for
        // whatever holds the month ingest writes to (autovacuum's ANALYZE of it, which
        // a wait shorter than `deadlock_timeout` never cancels) for no gain.
        sqlx::query(&format!("LOCK TABLE ONLY {} IN ACCESS EXCLUSIVE MODE", t.parent))
            .execute(&mut *tx)
            .await
            .map_err(q("lock a partitioned table"))?;
        let attached: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = $1::regclass AND inhrelid = to_regclass($2))",
        )
        .bind(t.parent)
        .bind(quote(part))
        .fetch_one(&mut *tx)
        .await
        .map_err(q("look up a monthly partition"))?;
        if !attached {
            return Ok(None);
        }
        sqlx::query(&format!("ALTER TABLE {} DETACH PARTITION {}", t.parent, quote(part)))
            .execute(&mut *tx)
            .await
            .map_err(q("detach a monthly partition"))?;
        let mut kept = 0;
        if t.keeps_last_reports {
            kept = sqlx::query(&format!(
                // `= ANY(ARRAY(…))`: one probe of the month's key per device, never a
                // scan of the month's millions of rows under the lock.
                "INSERT INTO positions ({POSITION_COLUMNS}) SELECT {POSITION_COLUMNS} FROM {} p
                 WHERE p.seq = ANY (ARRAY(SELECT seq FROM device_state))",
                quote(part)
            ))
            .execute(&mut *tx)
            .await
            .map_err(q("keep the last reports of a month"))?
            .rows_affected();
        }
        sqlx::query(&format!("ALTER TABLE {} RENAME TO {}", quote(part), quote(&detached(part))))
            .execute(&mut *tx)
            .await
            .map_err(q("rename a detached month"))?;
        tx.commit().await.map_err(q("commit"))?;
        Ok(Some(kept))
    }

    /// The retention round's second step: drops the months [`PgStore::prune_before`]
    /// detached, and any a round that stopped in between left (a crash, a lost
    /// connection), holding no lock that a commit or query waits for; the month's files
    /// go here. Answers how many tables it dropped.
    pub async fn remove_detached(&self) -> Result<u32, StoreError> {
        let mut n = 0;
        for t in &TABLES {
            n += self.drop_leftovers(t).await?;
        }
        Ok(n)
    }

    /// Drops `t`'s detached months: tables named `<parent>_p…_detached` that are no
    /// partition.
    async fn drop_leftovers(&self, t: &Partitioned) -> Result<u32, StoreError> {
        let leftovers: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_class
             WHERE relkind = 'r' AND NOT relispartition AND relname LIKE $1 || '\\_p%\\_detached'
               AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::regclass)",
        )
        .bind(t.parent)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list detached months"))?;
        let mut conn = self.pool.acquire().await.map_err(q("acquire a connection"))?;
        for table in &leftovers {
            drop_detached(&mut conn, table).await?;
        }
        Ok(leftovers.len() as u32)
    }

    /// Deletes, batch by batch, the rows of `t`'s default partition older than
    /// `before_ms` (except last reports); answers how many.
    async fn prune_default(&self, t: &Partitioned, before_ms: i64) -> Result<u64, StoreError> {
        let keep = if t.keeps_last_reports { "AND seq NOT IN (SELECT seq FROM device_state)" } else { "" };
        let sql = format!(
            "DELETE FROM {parent}_default WHERE (seq, {key}) IN (
                SELECT seq, {key} FROM {parent}_default WHERE {key} < $1 {keep} LIMIT $2)",
            parent = t.parent,
            key = t.key,
        );
        let mut total = 0;
        for _ in 0..DEFAULT_BATCHES {
            let n = sqlx::query(&sql)
                .bind(before_ms)
                .bind(DEFAULT_BATCH)
                .execute(&self.pool)
                .await
                .map_err(q("prune a default partition"))?
                .rows_affected();
            total += n;
            if n < DEFAULT_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }
}

/// [`BUSY_PAUSE`] plus a jitter of up to [`BUSY_JITTER_MS`], from the clock's
/// nanoseconds (no generator is needed for a pause's spread).
fn busy_pause() -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    BUSY_PAUSE + Duration::from_millis(u64::from(nanos) % (BUSY_JITTER_MS + 1))
}

/// The name a month has between its detachment and its drop.
fn detached(part: &str) -> String {
    format!("{part}_detached")
}

/// Drops a detached month, which nothing reads or writes any more.
async fn drop_detached(conn: &mut PgConnection, table: &str) -> Result<(), StoreError> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {}", quote(table)))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(q("drop a detached month"))
}

/// `SET LOCAL lock_timeout` for the transaction: see the module's doc.
async fn set_lock_timeout(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(q("set the lock timeout"))
}

/// A partition's name as an SQL identifier. The names come from the catalogue (made by
/// `liandong_ensure_partitions`: lower-case letters, digits and `_`), quoted anyway.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
