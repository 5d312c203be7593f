//! Incidents and their timelines in the PostgreSQL store.

use std::collections::HashMap;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{col, PgStore};
use crate::{q, IncidentEventRow, IncidentFacts, IncidentRow, StoreError};

pub(super) const INCIDENT_COLUMNS: &str = "incident_id, title, priority, state, lon, lat, alert_seq, assigned_device, assigned_unit, created_ms, state_since_ms, escalation, kind, township";
const EVENT_COLUMNS: &str =
    "seq, incident_id, at_ms, actor, action, from_state, to_state, note, lon, lat, unit_id, payload";

pub(super) fn incident(r: &PgRow) -> IncidentRow {
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

pub(super) fn event(r: &PgRow) -> IncidentEventRow {
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

impl PgStore {
    /// Incidents not closed or cancelled, to rebuild the sequencer's state, oldest
    /// first.
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
        let Some(row) = sqlx::query(&format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE incident_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read incident"))?
        else {
            return Ok(None);
        };
        let events =
            sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident_id = $1 ORDER BY seq"))
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read incident timeline"))?;
        Ok(Some((incident(&row), events.iter().map(event).collect())))
    }

    /// Every incident created in `[from_ms, to_ms]` with its milestones, oldest first.
    pub async fn incident_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<IncidentFacts>, StoreError> {
        let first = |action: &str| {
            format!(
                "(SELECT MIN(at_ms) FROM incident_events e WHERE e.incident_id = i.incident_id AND e.action = '{action}')"
            )
        };
        let sql = format!(
            "SELECT i.incident_id, i.kind, i.township, i.priority, i.state, i.created_ms, {}, {}, {}, {}
             FROM incidents i WHERE i.created_ms BETWEEN $1 AND $2 ORDER BY i.incident_id",
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
            sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM incident_events WHERE seq > $1 ORDER BY seq LIMIT $2"))
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(q("read incident events after a sequence number"))?;
        Ok(rows.iter().map(event).collect())
    }
}

/// One row per incident, as SQLite's row-by-row upsert would leave it: the first row of
/// an incident gives what an update never changes (title, place, kind, creation), the
/// last one what it does (state, assignment, escalation). PostgreSQL refuses to update
/// one row twice in a statement, and an incident created and dispatched within one
/// group commit appears twice.
fn fold_incidents(rows: &[IncidentRow]) -> Vec<IncidentRow> {
    let mut out: Vec<IncidentRow> = Vec::with_capacity(rows.len());
    let mut at: HashMap<i64, usize> = HashMap::with_capacity(rows.len());
    for r in rows {
        match at.get(&r.incident_id) {
            Some(&i) => {
                let kept = &mut out[i];
                kept.state.clone_from(&r.state);
                kept.assigned_device.clone_from(&r.assigned_device);
                kept.assigned_unit.clone_from(&r.assigned_unit);
                kept.state_since_ms = r.state_since_ms;
                kept.escalation.clone_from(&r.escalation);
            }
            None => {
                at.insert(r.incident_id, out.len());
                out.push(r.clone());
            }
        }
    }
    out
}

pub(super) async fn upsert_incidents(conn: &mut PgConnection, rows: &[IncidentRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows = fold_incidents(rows);
    sqlx::query(&format!(
        "INSERT INTO incidents ({INCIDENT_COLUMNS})
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::float8[], $6::float8[],
                              $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::text[],
                              $13::text[], $14::text[])
         ON CONFLICT (incident_id) DO UPDATE SET state = excluded.state, assigned_device = excluded.assigned_device,
           assigned_unit = excluded.assigned_unit, state_since_ms = excluded.state_since_ms, escalation = excluded.escalation"
    ))
    .bind(col(&rows, |r| r.incident_id))
    .bind(col(&rows, |r| r.title.as_str()))
    .bind(col(&rows, |r| r.priority))
    .bind(col(&rows, |r| r.state.as_str()))
    .bind(col(&rows, |r| r.lon))
    .bind(col(&rows, |r| r.lat))
    .bind(col(&rows, |r| r.alert_seq))
    .bind(col(&rows, |r| r.assigned_device.as_deref()))
    .bind(col(&rows, |r| r.assigned_unit.as_deref()))
    .bind(col(&rows, |r| r.created_ms))
    .bind(col(&rows, |r| r.state_since_ms))
    .bind(col(&rows, |r| r.escalation.as_str()))
    .bind(col(&rows, |r| r.kind.as_str()))
    .bind(col(&rows, |r| r.township.as_deref()))
    .execute(conn)
    .await
    .map_err(q("upsert incidents"))?;
    Ok(())
}

pub(super) async fn insert_incident_events(
    conn: &mut PgConnection,
    rows: &[IncidentEventRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO incident_events ({EVENT_COLUMNS})
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::text[], $9::float8[], $10::float8[], $11::text[], $12::text[])"
    ))
    .bind(col(rows, |r| r.seq))
    .bind(col(rows, |r| r.incident_id))
    .bind(col(rows, |r| r.at_ms))
    .bind(col(rows, |r| r.actor.as_str()))
    .bind(col(rows, |r| r.action.as_str()))
    .bind(col(rows, |r| r.from_state.as_deref()))
    .bind(col(rows, |r| r.to_state.as_str()))
    .bind(col(rows, |r| r.note.as_str()))
    .bind(col(rows, |r| r.lon))
    .bind(col(rows, |r| r.lat))
    .bind(col(rows, |r| r.unit_id.as_deref()))
    .bind(col(rows, |r| r.payload.as_str()))
    .execute(conn)
    .await
    .map_err(q("insert incident events"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, state: &str, title: &str, since_ms: i64) -> IncidentRow {
        IncidentRow {
            incident_id: id,
            title: title.into(),
            priority: 2,
            state: state.into(),
            lon: 107.2,
            lat: 30.7,
            alert_seq: None,
            assigned_device: (state != "new").then(|| "866123".into()),
            assigned_unit: None,
            created_ms: 1,
            state_since_ms: since_ms,
            escalation: "none".into(),
            kind: "other".into(),
            township: None,
        }
    }

    #[test]
    fn repeated_incidents_keep_the_first_description_and_the_last_state() {
        let folded = fold_incidents(&[
            row(5, "new", "first title", 1),
            row(6, "new", "other", 1),
            row(5, "dispatched", "a later title is not an update", 2),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].incident_id, 5);
        assert_eq!(folded[0].title, "first title");
        assert_eq!(folded[0].state, "dispatched");
        assert_eq!(folded[0].assigned_device.as_deref(), Some("866123"));
        assert_eq!(folded[0].state_since_ms, 2);
        assert_eq!(folded[1].incident_id, 6);
    }
}
