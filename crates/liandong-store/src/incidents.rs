//! Incidents and their timelines.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row, SqliteConnection};

use crate::{q, SqliteStore, StoreError, ROWS_PER_INSERT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    pub incident_id: i64,
    pub title: String,
    pub priority: i64,
    pub state: String,
    pub lon: f64,
    pub lat: f64,
    pub alert_seq: Option<i64>,
    pub assigned_device: Option<String>,
    pub assigned_unit: Option<String>,
    pub created_ms: i64,
    pub state_since_ms: i64,
    pub escalation: String,
    /// What it is about: the alert's rule, the report's category, or the operator's word.
    pub kind: String,
    /// The township of its place (None outside every township).
    pub township: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEventRow {
    pub seq: i64,
    pub incident_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
    pub lon: f64,
    pub lat: f64,
    pub unit_id: Option<String>,
    #[serde(skip)]
    pub payload: String,
}

/// An incident's milestones, for response-time statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFacts {
    pub incident_id: i64,
    pub kind: String,
    pub township: Option<String>,
    pub priority: i64,
    pub state: String,
    pub created_ms: i64,
    /// The first dispatch, sign-for (签收), arrival on scene and close, when they happened.
    pub dispatched_ms: Option<i64>,
    pub signed_ms: Option<i64>,
    pub on_scene_ms: Option<i64>,
    pub closed_ms: Option<i64>,
}

pub(crate) const INCIDENT_COLUMNS: &str = "incident_id, title, priority, state, lon, lat, alert_seq, assigned_device, assigned_unit, created_ms, state_since_ms, escalation, kind, township";
const EVENT_COLUMNS: &str =
    "seq, incident_id, at_ms, actor, action, from_state, to_state, note, lon, lat, unit_id, payload";

pub(crate) fn incident(r: &sqlx::sqlite::SqliteRow) -> IncidentRow {
    IncidentRow {
        incident_id: r.get(0),
        title: r.get(1),
        priority: r.get(2),
        state: r.get(3),
        lon: r.get(4),
        lat: r.get(5),
        alert_seq: r.get(6),
        assigned_device: r.get(7),
        assigned_unit: r.get(8),
        created_ms: r.get(9),
        state_since_ms: r.get(10),
        escalation: r.get(11),
        kind: r.get(12),
        township: r.get(13),
    }
}

pub(crate) fn event(r: &sqlx::sqlite::SqliteRow) -> IncidentEventRow {
    IncidentEventRow {
        seq: r.get(0),
        incident_id: r.get(1),
        at_ms: r.get(2),
        actor: r.get(3),
        action: r.get(4),
        from_state: r.get(5),
        to_state: r.get(6),
        note: r.get(7),
        lon: r.get(8),
        lat: r.get(9),
        unit_id: r.get(10),
        payload: r.get(11),
    }
}

impl SqliteStore {
    /// Incidents not closed or cancelled, to rebuild the sequencer's state.
    pub async fn open_incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE state NOT IN ('closed', 'cancelled') ORDER BY incident_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read open incidents"))?;
        Ok(rows.iter().map(incident).collect())
    }

    pub async fn incident(&self, id: i64) -> Result<Option<(IncidentRow, Vec<IncidentEventRow>)>, StoreError> {
        let Some(row) = sqlx::query(&format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE incident_id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read incident"))?
        else {
            return Ok(None);
        };
        let events =
            sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident_id = ? ORDER BY seq"))
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read incident timeline"))?;
        Ok(Some((incident(&row), events.iter().map(event).collect())))
    }

    /// Every incident created in `[from_ms, to_ms]` with its milestones, oldest first.
    pub async fn incident_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<IncidentFacts>, StoreError> {
        let first = |action: &str| {
            format!("(SELECT MIN(at_ms) FROM incident_events e WHERE e.incident_id = i.incident_id AND e.action = '{action}')")
        };
        let sql = format!(
            "SELECT i.incident_id, i.kind, i.township, i.priority, i.state, i.created_ms, {}, {}, {}, {}
             FROM incidents i WHERE i.created_ms BETWEEN ? AND ? ORDER BY i.incident_id",
            first("dispatch"),
            first("sign"),
            first("arrive"),
            first("close"),
        );
        let rows = sqlx::query(&sql)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read incident milestones"))?;
        Ok(rows
            .iter()
            .map(|r| IncidentFacts {
                incident_id: r.get(0),
                kind: r.get(1),
                township: r.get(2),
                priority: r.get(3),
                state: r.get(4),
                created_ms: r.get(5),
                dispatched_ms: r.get(6),
                signed_ms: r.get(7),
                on_scene_ms: r.get(8),
                closed_ms: r.get(9),
            })
            .collect())
    }

    /// Incident events with a sequence number above `after`, oldest first.
    pub async fn incident_events_after(&self, after: i64, limit: u32) -> Result<Vec<IncidentEventRow>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM incident_events WHERE seq > ? ORDER BY seq LIMIT ?"))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read incident events after a sequence number"))?;
        Ok(rows.iter().map(event).collect())
    }
}

pub(crate) async fn upsert_incidents(conn: &mut SqliteConnection, rows: &[IncidentRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(format!("INSERT INTO incidents ({INCIDENT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.incident_id)
                .push_bind(&r.title)
                .push_bind(r.priority)
                .push_bind(&r.state)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(r.alert_seq)
                .push_bind(&r.assigned_device)
                .push_bind(&r.assigned_unit)
                .push_bind(r.created_ms)
                .push_bind(r.state_since_ms)
                .push_bind(&r.escalation)
                .push_bind(&r.kind)
                .push_bind(&r.township);
        });
        qb.push(
            " ON CONFLICT (incident_id) DO UPDATE SET state = excluded.state, assigned_device = excluded.assigned_device,
              assigned_unit = excluded.assigned_unit, state_since_ms = excluded.state_since_ms, escalation = excluded.escalation",
        );
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("upsert incidents"))?;
    }
    Ok(())
}

pub(crate) async fn insert_incident_events(
    conn: &mut SqliteConnection,
    rows: &[IncidentEventRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(format!("INSERT INTO incident_events ({EVENT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.seq)
                .push_bind(r.incident_id)
                .push_bind(r.at_ms)
                .push_bind(&r.actor)
                .push_bind(&r.action)
                .push_bind(&r.from_state)
                .push_bind(&r.to_state)
                .push_bind(&r.note)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(&r.unit_id)
                .push_bind(&r.payload);
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("insert incident events"))?;
    }
    Ok(())
}
