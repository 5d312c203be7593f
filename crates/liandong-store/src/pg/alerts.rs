//! Cameras, camera events, watch lists and alerts in the PostgreSQL store.

use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use super::{col, PgStore};
use crate::{q, AlertFact, AlertRow, CameraEventRow, CameraRecord, SightingRow, StoreError, WatchRecord};

impl PgStore {
    pub async fn upsert_camera(&self, c: &CameraRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cameras (camera_id, name, kind, lon, lat, key, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
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
        self.announce_registry("cameras");
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
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
        .bind(Json(&w.roles))
        .bind(w.updated_ms)
        .execute(&self.pool)
        .await
        .map_err(q("upsert watch-list entry"))?;
        self.announce_registry("watchlist");
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
                roles: r.try_get::<Json<_>, _>(7).map(|j| j.0).unwrap_or_default(),
                updated_ms: r.get(8),
            })
            .collect())
    }

    /// Alerts with a sequence number above `after`, oldest first, at most `limit`.
    pub async fn alerts_after(&self, after: i64, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township
             FROM alerts WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read alerts after a sequence number"))?;
        Ok(rows.iter().map(alert_from_row).collect())
    }

    /// Alerts raised in `[from_ms, to_ms]`, oldest first.
    pub async fn alert_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<AlertFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, rule, priority, township, time_ms, roles FROM alerts WHERE time_ms BETWEEN $1 AND $2 ORDER BY time_ms, seq",
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
                roles: r.try_get::<Json<_>, _>(5).map(|j| j.0).unwrap_or_default(),
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
        // `seq DESC` breaks ties of time in the inner cut, so which reads are kept when
        // more than `limit` share the boundary's time does not depend on the plan.
        let rows = sqlx::query(&format!(
            "SELECT seq, camera_id, time_ms FROM (
                SELECT seq, camera_id, time_ms FROM camera_events
                WHERE {column} = $1 AND active AND time_ms BETWEEN $2 AND $3 ORDER BY time_ms DESC, seq DESC LIMIT $4
             ) AS newest ORDER BY time_ms, seq"
        ))
        .bind(value)
        .bind(from_ms)
        .bind(to_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read sightings"))?;
        Ok(rows.iter().map(|r| SightingRow { event_seq: r.get(0), camera_id: r.get(1), time_ms: r.get(2) }).collect())
    }

    pub async fn count_camera_events(&self, camera_id: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM camera_events WHERE camera_id = $1")
            .bind(camera_id)
            .fetch_one(&self.pool)
            .await
            .map_err(q("count camera events"))
    }
}

pub(super) async fn insert_camera_events(conn: &mut PgConnection, rows: &[CameraEventRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO camera_events (seq, camera_id, event_type, kind, active, active_post_count, time_ms, recv_ms, plate,
                                    person_id, payload)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::bigint[], $7::bigint[],
                              $8::bigint[], $9::text[], $10::text[], $11::text[])",
    )
    .bind(col(rows, |r| r.seq))
    .bind(col(rows, |r| r.camera_id.as_str()))
    .bind(col(rows, |r| r.event_type.as_str()))
    .bind(col(rows, |r| r.kind))
    .bind(col(rows, |r| r.active))
    .bind(col(rows, |r| r.active_post_count))
    .bind(col(rows, |r| r.time_ms))
    .bind(col(rows, |r| r.recv_ms))
    .bind(col(rows, |r| r.plate.as_deref()))
    .bind(col(rows, |r| r.person_id.as_deref()))
    .bind(col(rows, |r| r.payload.as_str()))
    .execute(conn)
    .await
    .map_err(q("insert camera events"))?;
    Ok(())
}

pub(super) async fn insert_alerts(conn: &mut PgConnection, rows: &[AlertRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO alerts (seq, rule, priority, camera_id, event_seq, time_ms, lon, lat, roles, payload, township)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[],
                              $7::float8[], $8::float8[], $9::jsonb[], $10::text[], $11::text[])",
    )
    .bind(col(rows, |r| r.seq))
    .bind(col(rows, |r| r.rule.as_str()))
    .bind(col(rows, |r| r.priority))
    .bind(col(rows, |r| r.camera_id.as_deref()))
    .bind(col(rows, |r| r.event_seq))
    .bind(col(rows, |r| r.time_ms))
    .bind(col(rows, |r| r.lon))
    .bind(col(rows, |r| r.lat))
    .bind(col(rows, |r| Json(&r.roles)))
    .bind(col(rows, |r| r.payload.as_str()))
    .bind(col(rows, |r| r.township.as_deref()))
    .execute(conn)
    .await
    .map_err(q("insert alerts"))?;
    Ok(())
}

/// Reads an `alerts` row selected as `seq, rule, priority, camera_id, event_seq,
/// time_ms, lon, lat, roles, payload, township`.
pub(super) fn alert_from_row(r: &PgRow) -> AlertRow {
    AlertRow {
        seq: r.get(0),
        rule: r.get(1),
        priority: r.get(2),
        camera_id: r.get(3),
        event_seq: r.get(4),
        time_ms: r.get(5),
        lon: r.get(6),
        lat: r.get(7),
        roles: r.try_get::<Json<_>, _>(8).map(|j| j.0).unwrap_or_default(),
        payload: r.get(9),
        township: r.get(10),
    }
}
