//! Cameras, camera events, watch lists and alerts in the embedded store.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row, SqliteConnection};

use crate::{q, SqliteStore, StoreError, ROWS_PER_INSERT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraRecord {
    pub camera_id: String,
    pub name: String,
    pub kind: String,
    pub lon: f64,
    pub lat: f64,
    #[serde(skip_serializing)]
    pub key: String,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchRecord {
    pub watch_id: String,
    /// `plate` or `person`.
    pub kind: String,
    /// The normalised plate, or the person id.
    pub value: String,
    pub reason: String,
    /// 1 (highest) to 5.
    pub priority: i64,
    pub valid_from: Option<i64>,
    pub valid_to: Option<i64>,
    /// Roles that may see hits of this entry.
    pub roles: Vec<String>,
    pub updated_ms: i64,
}

/// One camera push as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraEventRow {
    pub seq: i64,
    pub camera_id: String,
    pub event_type: String,
    pub kind: &'static str,
    pub active: bool,
    pub active_post_count: Option<i64>,
    pub time_ms: i64,
    pub recv_ms: i64,
    pub plate: Option<String>,
    pub person_id: Option<String>,
    pub payload: String,
}

/// One alert as stored and pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub seq: i64,
    pub rule: String,
    pub priority: i64,
    pub camera_id: Option<String>,
    pub event_seq: Option<i64>,
    pub time_ms: i64,
    pub lon: f64,
    pub lat: f64,
    pub roles: Vec<String>,
    pub payload: String,
    /// The township of the alert's place, for statistics.
    pub township: Option<String>,
}

/// Reads an `alerts` row selected as `seq, rule, priority, camera_id, event_seq,
/// time_ms, lon, lat, roles, payload, township`.
pub(crate) fn alert_from_row(r: &sqlx::sqlite::SqliteRow) -> AlertRow {
    AlertRow {
        seq: r.get(0),
        rule: r.get(1),
        priority: r.get(2),
        camera_id: r.get(3),
        event_seq: r.get(4),
        time_ms: r.get(5),
        lon: r.get(6),
        lat: r.get(7),
        roles: serde_json::from_str(r.get::<&str, _>(8)).unwrap_or_default(),
        payload: r.get(9),
        township: r.get(10),
    }
}

/// What statistics need of an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertFact {
    pub seq: i64,
    pub rule: String,
    pub priority: i64,
    pub township: Option<String>,
    pub time_ms: i64,
    /// The roles that may see the alert: statistics count, for each caller, only these.
    pub roles: Vec<String>,
}

/// One read of a plate or a face by a camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SightingRow {
    pub event_seq: i64,
    pub camera_id: String,
    pub time_ms: i64,
}

impl SqliteStore {
    pub async fn upsert_camera(&self, c: &CameraRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cameras (camera_id, name, kind, lon, lat, key, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (camera_id) DO UPDATE SET name = excluded.name, kind = excluded.kind, lon = excluded.lon,
               lat = excluded.lat, key = excluded.key, updated_ms = excluded.updated_ms",
        )
        .bind(&c.camera_id)
        .bind(&c.name)
        .bind(&c.kind)
        .bind(c.lon)
        .bind(c.lat)
        .bind(&c.key)
        .bind(c.updated_ms)
        .execute(&self.pool)
        .await
        .map_err(q("upsert camera"))?;
        Ok(())
    }

    pub async fn cameras(&self) -> Result<Vec<CameraRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT camera_id, name, kind, lon, lat, key, updated_ms FROM cameras ORDER BY camera_id")
                .fetch_all(&self.pool)
                .await
                .map_err(q("list cameras"))?;
        Ok(rows
            .iter()
            .map(|r| CameraRecord {
                camera_id: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                lon: r.get(3),
                lat: r.get(4),
                key: r.get(5),
                updated_ms: r.get(6),
            })
            .collect())
    }

    pub async fn upsert_watch(&self, w: &WatchRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO watchlist (watch_id, kind, value, reason, priority, valid_from, valid_to, roles, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (watch_id) DO UPDATE SET kind = excluded.kind, value = excluded.value, reason = excluded.reason,
               priority = excluded.priority, valid_from = excluded.valid_from, valid_to = excluded.valid_to,
               roles = excluded.roles, updated_ms = excluded.updated_ms",
        )
        .bind(&w.watch_id)
        .bind(&w.kind)
        .bind(&w.value)
        .bind(&w.reason)
        .bind(w.priority)
        .bind(w.valid_from)
        .bind(w.valid_to)
        .bind(serde_json::to_string(&w.roles).unwrap_or_else(|_| "[]".into()))
        .bind(w.updated_ms)
        .execute(&self.pool)
        .await
        .map_err(q("upsert watch-list entry"))?;
        Ok(())
    }

    pub async fn watchlist(&self) -> Result<Vec<WatchRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT watch_id, kind, value, reason, priority, valid_from, valid_to, roles, updated_ms FROM watchlist ORDER BY watch_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("list watch list"))?;
        Ok(rows
            .iter()
            .map(|r| WatchRecord {
                watch_id: r.get(0),
                kind: r.get(1),
                value: r.get(2),
                reason: r.get(3),
                priority: r.get(4),
                valid_from: r.get(5),
                valid_to: r.get(6),
                roles: serde_json::from_str(r.get::<&str, _>(7)).unwrap_or_default(),
                updated_ms: r.get(8),
            })
            .collect())
    }

    /// Alerts with a sequence number above `after`, oldest first, at most `limit`.
    pub async fn alerts_after(&self, after: i64, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township
             FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read alerts after a sequence number"))?;
        Ok(rows.iter().map(alert_from_row).collect())
    }

    /// Alerts raised in `[from_ms, to_ms]`, oldest first.
    pub async fn alert_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlertFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, rule, priority, township, time_ms, roles FROM alerts WHERE time_ms BETWEEN ? AND ? ORDER BY time_ms, seq",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read alerts for statistics"))?;
        Ok(rows
            .iter()
            .map(|r| AlertFact {
                seq: r.get(0),
                rule: r.get(1),
                priority: r.get(2),
                township: r.get(3),
                time_ms: r.get(4),
                roles: serde_json::from_str(r.get::<&str, _>(5)).unwrap_or_default(),
            })
            .collect())
    }

    /// Active reads of one plate (`person == false`) or one person id in
    /// `[from_ms, to_ms]`, oldest first, at most `limit` (the newest ones when more).
    pub async fn sightings(
        &self,
        person: bool,
        value: &str,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<SightingRow>, StoreError> {
        let column = if person { "person_id" } else { "plate" };
        let rows = sqlx::query(&format!(
            "SELECT seq, camera_id, time_ms FROM (
                SELECT seq, camera_id, time_ms FROM camera_events
                WHERE {column} = ? AND active = 1 AND time_ms BETWEEN ? AND ? ORDER BY time_ms DESC, seq DESC LIMIT ?
             ) ORDER BY time_ms, seq"
        ))
        .bind(value)
        .bind(from_ms)
        .bind(to_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read sightings"))?;
        Ok(rows.iter().map(|r| SightingRow { event_seq: r.get(0), camera_id: r.get(1), time_ms: r.get(2) }).collect())
    }

    pub async fn count_camera_events(&self, camera_id: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM camera_events WHERE camera_id = ?")
            .bind(camera_id)
            .fetch_one(&self.pool)
            .await
            .map_err(q("count camera events"))
    }
}

pub(crate) async fn insert_camera_events(
    conn: &mut SqliteConnection,
    rows: &[CameraEventRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO camera_events (seq, camera_id, event_type, kind, active, active_post_count, time_ms, recv_ms, plate, person_id, payload) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.seq)
                .push_bind(&r.camera_id)
                .push_bind(&r.event_type)
                .push_bind(r.kind)
                .push_bind(r.active)
                .push_bind(r.active_post_count)
                .push_bind(r.time_ms)
                .push_bind(r.recv_ms)
                .push_bind(&r.plate)
                .push_bind(&r.person_id)
                .push_bind(&r.payload);
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("insert camera events"))?;
    }
    Ok(())
}

pub(crate) async fn insert_alerts(conn: &mut SqliteConnection, rows: &[AlertRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO alerts (seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.seq)
                .push_bind(&r.rule)
                .push_bind(r.priority)
                .push_bind(&r.camera_id)
                .push_bind(r.event_seq)
                .push_bind(r.time_ms)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(serde_json::to_string(&r.roles).unwrap_or_else(|_| "[]".into()))
                .push_bind(&r.payload)
                .push_bind(&r.township);
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("insert alerts"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Durability, Store};

    #[tokio::test]
    async fn cameras_watch_list_events_and_alerts_round_trip_in_one_sequence() {
        let dir = std::env::temp_dir().join(format!("liandong-store-alerts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir, Durability::Normal).await.unwrap();
        let cam = CameraRecord {
            camera_id: "cam-001".into(),
            name: "卡口".into(),
            kind: "checkpoint".into(),
            lon: 107.2,
            lat: 30.7,
            key: "camera-key-1".into(),
            updated_ms: 1,
        };
        store.upsert_camera(&cam).await.unwrap();
        assert_eq!(store.cameras().await.unwrap(), vec![cam]);
        let watch = WatchRecord {
            watch_id: "w-1".into(),
            kind: "plate".into(),
            value: "川S12345".into(),
            reason: "stolen".into(),
            priority: 1,
            valid_from: None,
            valid_to: Some(99),
            roles: vec!["operator".into()],
            updated_ms: 1,
        };
        store.upsert_watch(&watch).await.unwrap();
        assert_eq!(store.watchlist().await.unwrap(), vec![watch]);
        let event = CameraEventRow {
            seq: 7,
            camera_id: "cam-001".into(),
            event_type: "ANPR".into(),
            kind: "anpr",
            active: true,
            active_post_count: Some(1),
            time_ms: 5,
            recv_ms: 6,
            plate: Some("川S12345".into()),
            person_id: None,
            payload: "{}".into(),
        };
        let alert = AlertRow {
            seq: 8,
            rule: "watchlist_plate".into(),
            priority: 1,
            camera_id: Some("cam-001".into()),
            event_seq: Some(7),
            time_ms: 5,
            lon: 107.2,
            lat: 30.7,
            roles: vec!["operator".into()],
            payload: "{\"seq\":8}".into(),
            township: Some("竹阳街道".into()),
        };
        store
            .write(&Batch { camera_events: &[event], alerts: std::slice::from_ref(&alert), ..Batch::default() })
            .await
            .unwrap();
        assert_eq!(store.max_seq().await.unwrap(), 8, "the sequence spans every table");
        assert_eq!(store.alerts_after(7, 10).await.unwrap(), vec![alert]);
        assert_eq!(store.count_after(0).await.unwrap(), 1, "alerts count in the feed; camera events do not");
        assert_eq!(store.count_camera_events("cam-001").await.unwrap(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
