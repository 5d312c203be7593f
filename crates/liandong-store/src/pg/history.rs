//! History in the PostgreSQL store: the same questions as the embedded store's
//! `history`, answered with PostGIS's GiST index on `geom` for the area and the B-tree
//! indexes on time.

use super::{position_columns, position_from_row, PgStore};
use crate::{q, AlertRow, Bbox, IncidentEventRow, IncidentRow, PositionRow, StoreError, HISTORY_EXCLUDED_FLAGS};

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
            cols = position_columns(""),
        );
        let rows = sqlx::query(&sql)
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .bind(at_ms - max_age_ms)
            .bind(at_ms)
            .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read positions at a time"))?;
        Ok(rows.iter().map(|r| position_from_row(r, 0)).collect())
    }

    /// A device's good fixes in `[from_ms, to_ms]` in time order, at most `limit` (the
    /// first ones).
    pub async fn track(
        &self,
        device_id: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<PositionRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM positions WHERE device_id = $1 AND fix_ms BETWEEN $2 AND $3 AND (flags & $4) = 0
             ORDER BY fix_ms, seq LIMIT $5",
            position_columns("")
        );
        let rows = sqlx::query(&sql)
            .bind(device_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read a track"))?;
        Ok(rows.iter().map(|r| position_from_row(r, 0)).collect())
    }

    /// The fixes of [`PgStore::track`], only their number, time and place.
    pub async fn track_points(
        &self,
        device_id: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<crate::TrackPoint>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, i64, f64, f64)>(
            "SELECT seq, fix_ms, lon, lat FROM positions
             WHERE device_id = $1 AND fix_ms BETWEEN $2 AND $3 AND (flags & $4) = 0
             ORDER BY fix_ms, seq LIMIT $5",
        )
        .bind(device_id)
        .bind(from_ms)
        .bind(to_ms)
        .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read a track"))?;
        Ok(rows.into_iter().map(|(seq, fix_ms, lon, lat)| crate::TrackPoint { seq, fix_ms, lon, lat }).collect())
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
            "SELECT seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township FROM alerts
             WHERE {IN_BBOX} AND time_ms BETWEEN $5 AND $6 ORDER BY time_ms DESC, seq DESC LIMIT $7"
        );
        let rows = sqlx::query(&sql)
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read alerts by area and time"))?;
        Ok(rows.iter().map(super::alerts::alert_from_row).collect())
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
            super::incidents::INCIDENT_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read incidents by area and time"))?;
        Ok(rows.iter().map(super::incidents::incident).collect())
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
            crate::history::EVENT_COLUMNS_E
        );
        let rows = sqlx::query(&sql)
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .bind(from_ms)
            .bind(at_ms)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(q("read incidents at a moment"))?;
        Ok(rows.iter().map(super::incidents::event).collect())
    }
}

impl PgStore {
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
