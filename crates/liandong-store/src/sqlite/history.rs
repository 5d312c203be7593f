//! The reads whose SQL is SQLite's own: where every unit was at a moment, what "inside a
//! box" means (plain comparisons on lon/lat, answered from the time indexes), each
//! team's newest plan and each alert's first acknowledgement (no `DISTINCT ON`), and
//! retention. Each question is answered from an
//! index: `positions (fix_ms)` and `positions (device_id, fix_ms)`, `alerts (time_ms)`,
//! `incidents (created_ms)` and `incident_events (incident_id, seq)`.

use sqlx::QueryBuilder;

use super::SqliteStore;
use crate::columns::Written;
use crate::error::{q, StoreError};
use crate::rows::{AlertAckRow, Bbox, PositionRow, Pruned, RoutePlanRow, HISTORY_EXCLUDED_FLAGS};

/// Most values one `IN (…)` list binds (SQLite allows 32,766 parameters).
const KEYS_PER_QUERY: usize = 512;

impl SqliteStore {
    /// Each device's last good fix at or before `at_ms` and no older than `max_age_ms`,
    /// inside `bbox`, ordered by device id.
    pub async fn positions_at(&self, at_ms: i64, max_age_ms: i64, bbox: Bbox) -> Result<Vec<PositionRow>, StoreError> {
        // The newest fix per device in the window; `seq` breaks a tie between two fixes
        // with the same time.
        let sql = format!(
            "SELECT {} FROM positions p
             JOIN (SELECT device_id, MAX(fix_ms) AS fix_ms FROM positions
                   WHERE fix_ms BETWEEN ?1 AND ?2 AND (flags & ?3) = 0 GROUP BY device_id) last
               ON p.device_id = last.device_id AND p.fix_ms = last.fix_ms
             WHERE (p.flags & ?3) = 0
               AND p.seq = (SELECT MAX(seq) FROM positions x
                            WHERE x.device_id = p.device_id AND x.fix_ms = p.fix_ms AND (x.flags & ?3) = 0)
               AND p.lon BETWEEN ?4 AND ?6 AND p.lat BETWEEN ?5 AND ?7
             ORDER BY p.device_id",
            PositionRow::TABLE.select("p.")
        );
        sqlx::query_as(&sql)
            .bind(at_ms - max_age_ms)
            .bind(at_ms)
            .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read positions at a time"))
    }

    /// The newest version of every team's plan, by team id.
    pub async fn route_plan_heads(&self) -> Result<Vec<RoutePlanRow>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {} FROM route_plans r
             WHERE version = (SELECT MAX(version) FROM route_plans x WHERE x.team_id = r.team_id) ORDER BY team_id",
            RoutePlanRow::TABLE.select("")
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read route plan heads"))
    }

    /// The first acknowledgement of each of `alert_seqs` that has one, by alert number.
    pub async fn first_alert_acks(&self, alert_seqs: &[i64]) -> Result<Vec<AlertAckRow>, StoreError> {
        let mut out: Vec<AlertAckRow> = Vec::new();
        for chunk in alert_seqs.chunks(KEYS_PER_QUERY) {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {} FROM alert_acks a
                 WHERE seq = (SELECT MIN(seq) FROM alert_acks b WHERE b.alert_seq = a.alert_seq) AND alert_seq IN (",
                AlertAckRow::TABLE.select("")
            ));
            let mut list = qb.separated(", ");
            for s in chunk {
                list.push_bind(*s);
            }
            qb.push(") ORDER BY alert_seq");
            out.extend(qb.build_query_as().fetch_all(&self.pool).await.map_err(q("read alert acknowledgements"))?);
        }
        out.sort_by_key(|a| a.alert_seq);
        Ok(out)
    }

    /// Deletes at most `batch` positions whose fix is older than `before_ms`, oldest
    /// first, except each device's last report (the live state refers to it). Returns
    /// how many were deleted; called in a loop with pauses, so that ingest's commits
    /// are never held up for long.
    pub async fn prune_positions(&self, before_ms: i64, batch: u32) -> Result<u64, StoreError> {
        self.prune(
            "positions",
            "DELETE FROM positions WHERE seq IN (
                SELECT seq FROM positions WHERE fix_ms < ?1 AND seq NOT IN (SELECT seq FROM device_state)
                ORDER BY fix_ms LIMIT ?2)",
            before_ms,
            batch,
        )
        .await
        .map_err(q("prune positions"))
    }

    /// Deletes at most `batch` camera events older than `before_ms`, oldest first;
    /// returns how many.
    pub async fn prune_camera_events(&self, before_ms: i64, batch: u32) -> Result<u64, StoreError> {
        self.prune(
            "camera_events",
            "DELETE FROM camera_events WHERE seq IN (
                SELECT seq FROM camera_events WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)",
            before_ms,
            batch,
        )
        .await
        .map_err(q("prune camera events"))
    }

    /// Runs one of retention's deletes (`?1` the cutoff, `?2` the batch) in a transaction
    /// that first moves the sequence's head (migration 0024) up to `table`'s highest
    /// number, so that the numbers of the rows it removes are never given out again.
    async fn prune(&self, table: &str, delete: &str, before_ms: i64, batch: u32) -> Result<u64, sqlx::Error> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(&format!("UPDATE seq_head SET seq = MAX(seq, COALESCE((SELECT MAX(seq) FROM {table}), 0))"))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(delete).bind(before_ms).bind(batch).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Retention up to `before_ms` in one call: batch after batch of reports (each
    /// device's last one kept) and camera events, without pauses (the server's
    /// retention loop pauses between batches instead; this is the call a benchmark
    /// times).
    pub async fn prune_before(&self, before_ms: i64) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        loop {
            let n = self.prune_positions(before_ms, PRUNE_BATCH).await?;
            pruned.rows_deleted += n;
            if n < u64::from(PRUNE_BATCH) {
                break;
            }
        }
        loop {
            let n = self.prune_camera_events(before_ms, PRUNE_BATCH).await?;
            pruned.rows_deleted += n;
            if n < u64::from(PRUNE_BATCH) {
                break;
            }
        }
        Ok(pruned)
    }

    /// Nothing is detached on SQLite: its retention deletes rows ([`Store::remove_detached`]
    /// on PostgreSQL drops detached months).
    ///
    /// [`Store::remove_detached`]: crate::Store::remove_detached
    pub async fn remove_detached(&self) -> Result<u32, StoreError> {
        Ok(0)
    }

    /// The embedded store has no partitions: nothing to make.
    pub async fn ensure_partitions(&self, _from_ms: i64, _to_ms: i64) -> Result<u32, StoreError> {
        Ok(0)
    }
}

/// Rows per delete of [`SqliteStore::prune_before`]: a few milliseconds of the writer.
const PRUNE_BATCH: u32 = 2_000;

/// Each device with a live state and its newest stored fix time, by device id: one step
/// down `positions_device_fix` per device (SQLite's columns both compare by bytes).
pub(super) const NEWEST_FIXES_SQL: &str = "SELECT d.device_id,
       (SELECT MAX(p.fix_ms) FROM positions p WHERE p.device_id = d.device_id) AS fix_ms
     FROM device_state d ORDER BY d.device_id";

/// A place inside the box of parameters `$1` to `$4`, edges included, on the table
/// `alias` names.
pub(super) fn in_bbox(alias: &str) -> String {
    format!("{alias}lon BETWEEN $1 AND $3 AND {alias}lat BETWEEN $2 AND $4")
}
