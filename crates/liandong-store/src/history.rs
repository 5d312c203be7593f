//! History: where every unit was at a moment, a unit's track between two times, and
//! alerts and incidents by area and time, and the incidents open at a moment as they were
//! then. Each question is answered from an index: `positions (fix_ms)` and
//! `positions (device_id, fix_ms)`, `alerts (time_ms)`, `incidents (created_ms)` and
//! `incident_events (incident_id, seq)`.

use serde::{Deserialize, Serialize};

use crate::{q, AlertRow, IncidentEventRow, IncidentRow, PositionRow, SqliteStore, StoreError};

/// Fixes the jump filter marked (a GPS jump, a poor accuracy) are left out of history:
/// they did not move the unit when they arrived, and they do not move it in replay.
/// Out-of-order fixes (a phone uploading what it buffered offline) are real places and
/// stay in. Fixes dated ahead of the server's clock (16) are left out too: their time is
/// wrong, so their moment in history is unknown.
pub const HISTORY_EXCLUDED_FLAGS: u32 = 1 | 2 | 16;

/// The columns of an incident event, on `incident_events e` (the history join names both tables).
pub(crate) const EVENT_COLUMNS_E: &str =
    "e.seq, e.incident_id, e.at_ms, e.actor, e.action, e.from_state, e.to_state, e.note, e.lon, e.lat, e.unit_id, e.payload";

/// A lon/lat rectangle, degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bbox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl Bbox {
    /// The whole world: no spatial filter.
    pub const ALL: Bbox = Bbox { min_lon: -180.0, min_lat: -90.0, max_lon: 180.0, max_lat: 90.0 };
}

const POSITION_COLUMNS: &str =
    "p.seq, p.device_id, p.fix_ms, p.recv_ms, p.lon, p.lat, p.datum, p.speed_mps, p.course_deg,
     p.altitude_m, p.accuracy_m, p.battery_pct, p.flags, p.attributes, p.enrichment";

impl SqliteStore {
    /// Each device's last good fix at or before `at_ms` and no older than `max_age_ms`,
    /// inside `bbox`, ordered by device id.
    pub async fn positions_at(&self, at_ms: i64, max_age_ms: i64, bbox: Bbox) -> Result<Vec<PositionRow>, StoreError> {
        // The newest fix per device in the window; `seq` breaks a tie between two fixes
        // with the same time.
        let sql = format!(
            "SELECT {POSITION_COLUMNS} FROM positions p
             JOIN (SELECT device_id, MAX(fix_ms) AS fix_ms FROM positions
                   WHERE fix_ms BETWEEN ?1 AND ?2 AND (flags & ?3) = 0 GROUP BY device_id) last
               ON p.device_id = last.device_id AND p.fix_ms = last.fix_ms
             WHERE (p.flags & ?3) = 0
               AND p.seq = (SELECT MAX(seq) FROM positions x
                            WHERE x.device_id = p.device_id AND x.fix_ms = p.fix_ms AND (x.flags & ?3) = 0)
               AND p.lon BETWEEN ?4 AND ?6 AND p.lat BETWEEN ?5 AND ?7
             ORDER BY p.device_id"
        );
        let rows = sqlx::query(&sql)
            .bind(at_ms - max_age_ms)
            .bind(at_ms)
            .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
            .bind(bbox.min_lon)
            .bind(bbox.min_lat)
            .bind(bbox.max_lon)
            .bind(bbox.max_lat)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read positions at a time"))?;
        Ok(rows.iter().map(|r| crate::position_from_row(r, 0)).collect())
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
            "SELECT {POSITION_COLUMNS} FROM positions p
             WHERE p.device_id = ? AND p.fix_ms BETWEEN ? AND ? AND (p.flags & ?) = 0
             ORDER BY p.fix_ms, p.seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(device_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read a track"))?;
        Ok(rows.iter().map(|r| crate::position_from_row(r, 0)).collect())
    }

    /// The fixes of [`SqliteStore::track`], only their number, time and place.
    pub async fn track_points(
        &self,
        device_id: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<crate::TrackPoint>, StoreError> {
        let rows = sqlx::query_as::<_, (i64, i64, f64, f64)>(
            "SELECT seq, fix_ms, lon, lat FROM positions
             WHERE device_id = ? AND fix_ms BETWEEN ? AND ? AND (flags & ?) = 0
             ORDER BY fix_ms, seq LIMIT ?",
        )
        .bind(device_id)
        .bind(from_ms)
        .bind(to_ms)
        .bind(i64::from(HISTORY_EXCLUDED_FLAGS))
        .bind(limit)
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
        let rows = sqlx::query(
            "SELECT seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township FROM alerts
             WHERE time_ms BETWEEN ? AND ? AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?
             ORDER BY time_ms DESC, seq DESC LIMIT ?",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(bbox.min_lon)
        .bind(bbox.max_lon)
        .bind(bbox.min_lat)
        .bind(bbox.max_lat)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read alerts by area and time"))?;
        Ok(rows.iter().map(crate::alerts::alert_from_row).collect())
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
        let rows = sqlx::query(&format!(
            "SELECT {} FROM incidents
             WHERE created_ms BETWEEN ? AND ? AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ?
             ORDER BY created_ms DESC, incident_id DESC LIMIT ?",
            crate::incidents::INCIDENT_COLUMNS
        ))
        .bind(from_ms)
        .bind(to_ms)
        .bind(bbox.min_lon)
        .bind(bbox.max_lon)
        .bind(bbox.min_lat)
        .bind(bbox.max_lat)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read incidents by area and time"))?;
        Ok(rows.iter().map(crate::incidents::incident).collect())
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
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS_E} FROM incidents i
             JOIN incident_events e ON e.seq = (SELECT MAX(x.seq) FROM incident_events x
                                                WHERE x.incident_id = i.incident_id AND x.at_ms <= ?1)
             WHERE i.created_ms BETWEEN ?2 AND ?1
               AND i.lon BETWEEN ?3 AND ?5 AND i.lat BETWEEN ?4 AND ?6
               AND e.to_state NOT IN ('closed', 'cancelled')
             ORDER BY i.created_ms DESC, i.incident_id DESC LIMIT ?7"
        ))
        .bind(at_ms)
        .bind(from_ms)
        .bind(bbox.min_lon)
        .bind(bbox.min_lat)
        .bind(bbox.max_lon)
        .bind(bbox.max_lat)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read incidents at a moment"))?;
        Ok(rows.iter().map(crate::incidents::event).collect())
    }
}

impl SqliteStore {
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
