//! The reads whose SQL is PostgreSQL's own: history by area with PostGIS's GiST index
//! on `geom` and the B-tree indexes on time, each team's newest plan and each alert's
//! first acknowledgement with `DISTINCT ON`, and retention.

use super::PgStore;
use crate::columns::Written;
use crate::error::{q, StoreError};
use crate::rows::{
    AlertAckRow, AlertRow, Bbox, IncidentEventRow, IncidentRow, PositionRow, RoutePlanRow, HISTORY_EXCLUDED_FLAGS,
};

/// `geom && envelope` uses the GiST index, whose boxes are single precision (a point a
/// metre outside may pass); the exact comparison on lon/lat then decides, as SQLite's.
const IN_BBOX: &str =
    "geom && ST_MakeEnvelope($1, $2, $3, $4, 4326) AND lon BETWEEN $1 AND $3 AND lat BETWEEN $2 AND $4";

impl PgStore {
    /// Each device's last good fix at or before `at_ms` and no older than `max_age_ms`,
    /// inside `bbox`, ordered by device id.
    pub async fn positions_at(&self, at_ms: i64, max_age_ms: i64, bbox: Bbox) -> Result<Vec<PositionRow>, StoreError> {
        // The place is filtered after the newest fix per device is chosen: a unit that
        // was outside the box at T is not shown at an older place inside it.
        let sql = format!(
            "SELECT {cols} FROM (
                SELECT DISTINCT ON (device_id) {cols}, geom FROM positions
                WHERE fix_ms BETWEEN $5 AND $6 AND (flags & $7) = 0
                ORDER BY device_id, fix_ms DESC, seq DESC
             ) last WHERE {IN_BBOX} ORDER BY device_id COLLATE \"C\"",
            cols = PositionRow::TABLE.select(""),
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

    /// Alerts raised in `[from_ms, to_ms]` inside `bbox`, newest first, at most `limit`.
    pub async fn alerts_in(
        &self,
        bbox: Bbox,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM alerts WHERE {IN_BBOX} AND time_ms BETWEEN $5 AND $6 ORDER BY time_ms DESC, seq DESC LIMIT $7",
            AlertRow::TABLE.select("")
        );
        self.in_box(&sql, bbox, from_ms, to_ms, limit, "read alerts by area and time").await
    }

    /// Incidents created in `[from_ms, to_ms]` inside `bbox`, newest first, at most
    /// `limit`.
    pub async fn incidents_in(
        &self,
        bbox: Bbox,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM incidents WHERE {IN_BBOX} AND created_ms BETWEEN $5 AND $6
             ORDER BY created_ms DESC, incident_id DESC LIMIT $7",
            IncidentRow::TABLE.select("")
        );
        self.in_box(&sql, bbox, from_ms, to_ms, limit, "read incidents by area and time").await
    }

    /// The incidents open at `at_ms`, as they were then: each one's last event at or
    /// before `at_ms` (see the SQLite store's).
    pub async fn incident_events_at(
        &self,
        bbox: Bbox,
        from_ms: i64,
        at_ms: i64,
        limit: u32,
    ) -> Result<Vec<IncidentEventRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM incidents i
             JOIN incident_events e ON e.seq = (SELECT MAX(x.seq) FROM incident_events x
                                                WHERE x.incident_id = i.incident_id AND x.at_ms <= $6)
             WHERE i.geom && ST_MakeEnvelope($1, $2, $3, $4, 4326)
               AND i.lon BETWEEN $1 AND $3 AND i.lat BETWEEN $2 AND $4
               AND i.created_ms BETWEEN $5 AND $6
               AND e.to_state NOT IN ('closed', 'cancelled')
             ORDER BY i.created_ms DESC, i.incident_id DESC LIMIT $7",
            IncidentEventRow::TABLE.select("e.")
        );
        self.in_box(&sql, bbox, from_ms, at_ms, limit, "read incidents at a moment").await
    }

    /// Runs a history query whose parameters are the box (`$1` to `$4`: min lon, min
    /// lat, max lon, max lat), a time range (`$5`, `$6`) and a limit (`$7`).
    async fn in_box<R>(
        &self,
        sql: &str,
        bbox: Bbox,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
        op: &'static str,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(q(op))
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
}
