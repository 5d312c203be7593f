//! Patrol route plans and their events in the PostgreSQL store.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{col, PgStore};
use crate::routes::{fold_plans, PLAN_COLUMNS, ROUTE_EVENT_COLUMNS};
use crate::{q, RouteEventRow, RoutePlanRow, StoreError};

fn plan(r: &PgRow) -> RoutePlanRow {
    RoutePlanRow {
        plan_seq: r.get(0),
        team_id: r.get(1),
        version: r.get(2),
        kind: r.get(3),
        reason: r.get(4),
        created_ms: r.get(5),
        created_by: r.get(6),
        plan: r.get(7),
        lon: r.get(8),
        lat: r.get(9),
        status: r.get(10),
        acked_ms: r.get(11),
        acked_by: r.get(12),
        escalation: r.get(13),
    }
}

fn route_event(r: &PgRow) -> RouteEventRow {
    RouteEventRow {
        seq: r.get(0),
        plan_seq: r.get(1),
        team_id: r.get(2),
        at_ms: r.get(3),
        actor: r.get(4),
        action: r.get(5),
        lon: r.get(6),
        lat: r.get(7),
        payload: r.get(8),
    }
}

impl PgStore {
    /// The newest version of every team's plan, by team id.
    pub async fn route_plan_heads(&self) -> Result<Vec<RoutePlanRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT ON (team_id) {PLAN_COLUMNS} FROM route_plans ORDER BY team_id, version DESC"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read route plan heads"))?;
        Ok(rows.iter().map(plan).collect())
    }

    /// A team's plans (every team's when None), newest first, at most `limit`.
    pub async fn route_plans(&self, team_id: Option<&str>, limit: u32) -> Result<Vec<RoutePlanRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PLAN_COLUMNS} FROM route_plans WHERE $1::text IS NULL OR team_id = $1 ORDER BY plan_seq DESC LIMIT $2"
        ))
        .bind(team_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list route plans"))?;
        Ok(rows.iter().map(plan).collect())
    }

    /// One plan with its events, oldest first.
    pub async fn route_plan(&self, plan_seq: i64) -> Result<Option<(RoutePlanRow, Vec<RouteEventRow>)>, StoreError> {
        let Some(row) = sqlx::query(&format!("SELECT {PLAN_COLUMNS} FROM route_plans WHERE plan_seq = $1"))
            .bind(plan_seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read route plan"))?
        else {
            return Ok(None);
        };
        let events =
            sqlx::query(&format!("SELECT {ROUTE_EVENT_COLUMNS} FROM route_events WHERE plan_seq = $1 ORDER BY seq"))
                .bind(plan_seq)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read route plan events"))?;
        Ok(Some((plan(&row), events.iter().map(route_event).collect())))
    }

    /// Route events with a sequence number above `after`, oldest first.
    pub async fn route_events_after(&self, after: i64, limit: u32) -> Result<Vec<RouteEventRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROUTE_EVENT_COLUMNS} FROM route_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read route events after a sequence number"))?;
        Ok(rows.iter().map(route_event).collect())
    }
}

pub(super) async fn upsert_plans(conn: &mut PgConnection, rows: &[RoutePlanRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows = fold_plans(rows);
    sqlx::query(&format!(
        "INSERT INTO route_plans ({PLAN_COLUMNS})
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                              $8::text[], $9::float8[], $10::float8[], $11::text[], $12::bigint[], $13::text[], $14::text[])
         ON CONFLICT (plan_seq) DO UPDATE SET status = excluded.status, acked_ms = excluded.acked_ms,
           acked_by = excluded.acked_by, escalation = excluded.escalation"
    ))
    .bind(col(&rows, |r| r.plan_seq))
    .bind(col(&rows, |r| r.team_id.as_str()))
    .bind(col(&rows, |r| r.version))
    .bind(col(&rows, |r| r.kind.as_str()))
    .bind(col(&rows, |r| r.reason.as_str()))
    .bind(col(&rows, |r| r.created_ms))
    .bind(col(&rows, |r| r.created_by.as_str()))
    .bind(col(&rows, |r| r.plan.as_str()))
    .bind(col(&rows, |r| r.lon))
    .bind(col(&rows, |r| r.lat))
    .bind(col(&rows, |r| r.status.as_str()))
    .bind(col(&rows, |r| r.acked_ms))
    .bind(col(&rows, |r| r.acked_by.as_deref()))
    .bind(col(&rows, |r| r.escalation.as_str()))
    .execute(conn)
    .await
    .map_err(q("upsert route plans"))?;
    Ok(())
}

pub(super) async fn insert_route_events(conn: &mut PgConnection, rows: &[RouteEventRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO route_events ({ROUTE_EVENT_COLUMNS})
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                              $7::float8[], $8::float8[], $9::text[])"
    ))
    .bind(col(rows, |r| r.seq))
    .bind(col(rows, |r| r.plan_seq))
    .bind(col(rows, |r| r.team_id.as_str()))
    .bind(col(rows, |r| r.at_ms))
    .bind(col(rows, |r| r.actor.as_str()))
    .bind(col(rows, |r| r.action.as_str()))
    .bind(col(rows, |r| r.lon))
    .bind(col(rows, |r| r.lat))
    .bind(col(rows, |r| r.payload.as_str()))
    .execute(conn)
    .await
    .map_err(q("insert route events"))?;
    Ok(())
}
