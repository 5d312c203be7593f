//! The reads whose SQL is PostgreSQL's own: where every unit was at a moment, what
//! "inside a box" means (PostGIS's GiST index on `geom` first), each team's newest plan
//! and each alert's first acknowledgement with `DISTINCT ON`, and retention.

use super::PgStore;
use crate::columns::Written;
use crate::error::{q, StoreError};
use crate::rows::{AlertAckRow, Bbox, PositionRow, RoutePlanRow, HISTORY_EXCLUDED_FLAGS};

/// A place inside the box of parameters `$1` to `$4`, edges included, on the table
/// `alias` names. `geom && envelope` uses the GiST index, whose boxes are single
/// precision (a point a metre outside may pass); the exact comparison on lon/lat then
/// decides, as SQLite's.
pub(super) fn in_bbox(alias: &str) -> String {
    format!(
        "{alias}geom && ST_MakeEnvelope($1, $2, $3, $4, 4326) \
         AND {alias}lon BETWEEN $1 AND $3 AND {alias}lat BETWEEN $2 AND $4"
    )
}

/// Each device with a live state and its newest stored fix time, by device id: one step
/// down `positions_device_fix` per device. `device_state.device_id` sorts in "C" (by
/// bytes) and `positions.device_id` in the database's default collation; compared as
/// they are, the two collations conflict, the comparison can use no index, and the
/// planner walks an index down filtering every entry (on a year, down the time index
/// from the newest fix to a silent device's last one: minutes). Naming the default
/// collation, the index's, makes it one lookup (all devices of a year in half a second).
pub const NEWEST_FIXES_SQL: &str = "SELECT d.device_id,
       (SELECT MAX(p.fix_ms) FROM positions p WHERE p.device_id = d.device_id COLLATE \"default\") AS fix_ms
     FROM device_state d ORDER BY d.device_id";

impl PgStore {
    /// Each device's last good fix at or before `at_ms` and no older than `max_age_ms`,
    /// inside `bbox`, ordered by device id.
    pub async fn positions_at(&self, at_ms: i64, max_age_ms: i64, bbox: Bbox) -> Result<Vec<PositionRow>, StoreError> {
        // Each device's last fix is chosen from `positions_fix` alone (it carries the
        // device, number, place and flags: migration 0022), and the whole rows are read
        // for those only, by the primary key: a window of an old month is then a few
        // dozen index pages from disk, not every row's table page. The place is
        // filtered after the newest fix per device is chosen: a unit that was outside
        // the box at T is not shown at an older place inside it.
        let sql = format!(
            "SELECT {cols} FROM (
                SELECT DISTINCT ON (device_id) device_id, seq, fix_ms, lon, lat FROM positions
                WHERE fix_ms BETWEEN $5 AND $6 AND (flags & $7) = 0
                ORDER BY device_id, fix_ms DESC, seq DESC
             ) last
             JOIN positions p ON p.seq = last.seq AND p.fix_ms = last.fix_ms AND p.fix_ms BETWEEN $5 AND $6
             WHERE last.lon BETWEEN $1 AND $3 AND last.lat BETWEEN $2 AND $4
             ORDER BY p.device_id COLLATE \"C\"",
            cols = PositionRow::TABLE.select("p."),
        );
        sqlx::query_as(&sql)
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .bind(at_ms - max_age_ms)
            .bind(at_ms)
            .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read positions at a time"))
    }

    /// The newest version of every team's plan, by team id.
    pub async fn route_plan_heads(&self) -> Result<Vec<RoutePlanRow>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT ON (team_id) {} FROM route_plans ORDER BY team_id, version DESC",
            RoutePlanRow::TABLE.select("")
        );
        sqlx::query_as(&sql).fetch_all(&self.pool).await.map_err(q("read route plan heads"))
    }

    /// The first acknowledgement of each of `alert_seqs` that has one, by alert number.
    pub async fn first_alert_acks(&self, alert_seqs: &[i64]) -> Result<Vec<AlertAckRow>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT ON (alert_seq) {} FROM alert_acks WHERE alert_seq = ANY($1) ORDER BY alert_seq, seq",
            AlertAckRow::TABLE.select("")
        );
        sqlx::query_as(&sql).bind(alert_seqs).fetch_all(&self.pool).await.map_err(q("read alert acknowledgements"))
    }

    /// Deletes at most `batch` positions whose fix is older than `before_ms`, oldest
    /// first, except each device's last report (the live state refers to it). Returns
    /// how many were deleted.
    pub async fn prune_positions(&self, before_ms: i64, batch: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM positions WHERE seq IN (
                SELECT p.seq FROM positions p WHERE p.fix_ms < $1
                  AND NOT EXISTS (SELECT 1 FROM device_state d WHERE d.seq = p.seq)
                ORDER BY p.fix_ms LIMIT $2)",
        )
        .bind(before_ms)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await
        .map_err(q("prune positions"))?;
        Ok(done.rows_affected())
    }

    /// Deletes at most `batch` camera events older than `before_ms`, oldest first;
    /// returns how many. (Retention on PostgreSQL drops whole months instead, see
    /// [`PgStore::prune_before`]; this is the row-by-row call both stores answer.)
    pub async fn prune_camera_events(&self, before_ms: i64, batch: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM camera_events WHERE (seq, time_ms) IN (
                SELECT seq, time_ms FROM camera_events WHERE time_ms < $1 ORDER BY time_ms LIMIT $2)",
        )
        .bind(before_ms)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await
        .map_err(q("prune camera events"))?;
        Ok(done.rows_affected())
    }
}
