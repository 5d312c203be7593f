//! The reads whose SQL is SQLite's own: history by area (plain comparisons on lon/lat,
//! answered from the time indexes), each team's newest plan and each alert's first
//! acknowledgement (no `DISTINCT ON`), and retention. Each question is answered from an
//! index: `positions (fix_ms)` and `positions (device_id, fix_ms)`, `alerts (time_ms)`,
//! `incidents (created_ms)` and `incident_events (incident_id, seq)`.

use sqlx::QueryBuilder;

use super::{SqliteStore, ROWS_PER_INSERT};
use crate::columns::Written;
use crate::error::{q, StoreError};
use crate::rows::{
    AlertAckRow, AlertRow, Bbox, IncidentEventRow, IncidentRow, PositionRow, RoutePlanRow, HISTORY_EXCLUDED_FLAGS,
};

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

    /// Alerts raised in `[from_ms, to_ms]` inside `bbox`, newest first, at most `limit`.
    pub async fn alerts_in(
        &self,
        bbox: Bbox,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM alerts WHERE time_ms BETWEEN ?5 AND ?6 AND {IN_BBOX}
             ORDER BY time_ms DESC, seq DESC LIMIT ?7",
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
            "SELECT {} FROM incidents WHERE created_ms BETWEEN ?5 AND ?6 AND {IN_BBOX}
             ORDER BY created_ms DESC, incident_id DESC LIMIT ?7",
            IncidentRow::TABLE.select("")
        );
        self.in_box(&sql, bbox, from_ms, to_ms, limit, "read incidents by area and time").await
    }

    /// The incidents open at `at_ms`, as they were then: for each incident created in
    /// `[from_ms, at_ms]` inside `bbox`, its last event at or before `at_ms` (its state
    /// then is that event's `to_state`, and the event's payload holds the whole incident
    /// as it was), unless that event closed or cancelled it. Newest incident first.
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
                                                WHERE x.incident_id = i.incident_id AND x.at_ms <= ?6)
             WHERE i.created_ms BETWEEN ?5 AND ?6
               AND i.lon BETWEEN ?1 AND ?3 AND i.lat BETWEEN ?2 AND ?4
               AND e.to_state NOT IN ('closed', 'cancelled')
             ORDER BY i.created_ms DESC, i.incident_id DESC LIMIT ?7",
            IncidentEventRow::TABLE.select("e.")
        );
        self.in_box(&sql, bbox, from_ms, at_ms, limit, "read incidents at a moment").await
    }

    /// Runs a history query whose parameters are the box (`?1` to `?4`: min lon, min
    /// lat, max lon, max lat), a time range (`?5`, `?6`) and a limit (`?7`).
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
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
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
        for chunk in alert_seqs.chunks(ROWS_PER_INSERT) {
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
        let done = sqlx::query(
            "DELETE FROM positions WHERE seq IN (
                SELECT seq FROM positions WHERE fix_ms < ?1 AND seq NOT IN (SELECT seq FROM device_state)
                ORDER BY fix_ms LIMIT ?2)",
        )
        .bind(before_ms)
        .bind(batch)
        .execute(&self.writer)
        .await
        .map_err(q("prune positions"))?;
        Ok(done.rows_affected())
    }
}

/// A place inside the box of parameters `?1` to `?4`, edges included.
const IN_BBOX: &str = "lon BETWEEN ?1 AND ?3 AND lat BETWEEN ?2 AND ?4";
