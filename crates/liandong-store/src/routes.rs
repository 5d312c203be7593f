//! Patrol route plans and their events in the embedded store.

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Row, SqliteConnection};

use crate::{q, SqliteStore, StoreError, ROWS_PER_INSERT};

/// One version of a team's route plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutePlanRow {
    pub plan_seq: i64,
    pub team_id: String,
    pub version: i64,
    /// `plan`, `diversion` or `manual`.
    pub kind: String,
    pub reason: String,
    pub created_ms: i64,
    pub created_by: String,
    /// The plan as JSON text: geometry, waypoints with planned times, coverage.
    #[serde(skip)]
    pub plan: String,
    /// Where the plan starts, for the feed's viewport filter.
    pub lon: f64,
    pub lat: f64,
    /// `pending`, `acknowledged` or `superseded`.
    pub status: String,
    pub acked_ms: Option<i64>,
    pub acked_by: Option<String>,
    /// `none`, `post_leader` or `command_centre`.
    pub escalation: String,
}

/// One change of a plan, in the global sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteEventRow {
    pub seq: i64,
    pub plan_seq: i64,
    pub team_id: String,
    pub at_ms: i64,
    pub actor: String,
    /// `push`, `ack`, `supersede` or `escalate`.
    pub action: String,
    pub lon: f64,
    pub lat: f64,
    #[serde(skip)]
    pub payload: String,
}

pub(crate) const PLAN_COLUMNS: &str = "plan_seq, team_id, version, kind, reason, created_ms, created_by, plan, lon, lat, status, acked_ms, acked_by, escalation";
pub(crate) const ROUTE_EVENT_COLUMNS: &str = "seq, plan_seq, team_id, at_ms, actor, action, lon, lat, payload";

/// The last row of each plan in a batch: a plan pushed and then acknowledged in the
/// same commit is written once, as it ended.
pub(crate) fn fold_plans(rows: &[RoutePlanRow]) -> Vec<RoutePlanRow> {
    let mut out: Vec<RoutePlanRow> = Vec::with_capacity(rows.len());
    for r in rows {
        match out.iter_mut().find(|o| o.plan_seq == r.plan_seq) {
            Some(o) => *o = r.clone(),
            None => out.push(r.clone()),
        }
    }
    out
}

fn plan(r: &sqlx::sqlite::SqliteRow) -> RoutePlanRow {
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

fn route_event(r: &sqlx::sqlite::SqliteRow) -> RouteEventRow {
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

impl SqliteStore {
    /// The newest version of every team's plan, by team id.
    pub async fn route_plan_heads(&self) -> Result<Vec<RoutePlanRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PLAN_COLUMNS} FROM route_plans r
             WHERE version = (SELECT MAX(version) FROM route_plans x WHERE x.team_id = r.team_id) ORDER BY team_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read route plan heads"))?;
        Ok(rows.iter().map(plan).collect())
    }

    /// A team's plans (every team's when None), newest first, at most `limit`.
    pub async fn route_plans(&self, team_id: Option<&str>, limit: u32) -> Result<Vec<RoutePlanRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PLAN_COLUMNS} FROM route_plans WHERE ?1 IS NULL OR team_id = ?1 ORDER BY plan_seq DESC LIMIT ?2"
        ))
        .bind(team_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("list route plans"))?;
        Ok(rows.iter().map(plan).collect())
    }

    /// One plan with its events, oldest first.
    pub async fn route_plan(&self, plan_seq: i64) -> Result<Option<(RoutePlanRow, Vec<RouteEventRow>)>, StoreError> {
        let Some(row) = sqlx::query(&format!("SELECT {PLAN_COLUMNS} FROM route_plans WHERE plan_seq = ?"))
            .bind(plan_seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read route plan"))?
        else {
            return Ok(None);
        };
        let events =
            sqlx::query(&format!("SELECT {ROUTE_EVENT_COLUMNS} FROM route_events WHERE plan_seq = ? ORDER BY seq"))
                .bind(plan_seq)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read route plan events"))?;
        Ok(Some((plan(&row), events.iter().map(route_event).collect())))
    }

    /// Route events with a sequence number above `after`, oldest first.
    pub async fn route_events_after(&self, after: i64, limit: u32) -> Result<Vec<RouteEventRow>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {ROUTE_EVENT_COLUMNS} FROM route_events WHERE seq > ? ORDER BY seq LIMIT ?"))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read route events after a sequence number"))?;
        Ok(rows.iter().map(route_event).collect())
    }
}

pub(crate) async fn upsert_plans(conn: &mut SqliteConnection, rows: &[RoutePlanRow]) -> Result<(), StoreError> {
    let rows = fold_plans(rows);
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(format!("INSERT INTO route_plans ({PLAN_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.plan_seq)
                .push_bind(&r.team_id)
                .push_bind(r.version)
                .push_bind(&r.kind)
                .push_bind(&r.reason)
                .push_bind(r.created_ms)
                .push_bind(&r.created_by)
                .push_bind(&r.plan)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(&r.status)
                .push_bind(r.acked_ms)
                .push_bind(&r.acked_by)
                .push_bind(&r.escalation);
        });
        qb.push(
            " ON CONFLICT (plan_seq) DO UPDATE SET status = excluded.status, acked_ms = excluded.acked_ms,
              acked_by = excluded.acked_by, escalation = excluded.escalation",
        );
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("upsert route plans"))?;
    }
    Ok(())
}

pub(crate) async fn insert_route_events(conn: &mut SqliteConnection, rows: &[RouteEventRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::new(format!("INSERT INTO route_events ({ROUTE_EVENT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.seq)
                .push_bind(r.plan_seq)
                .push_bind(&r.team_id)
                .push_bind(r.at_ms)
                .push_bind(&r.actor)
                .push_bind(&r.action)
                .push_bind(r.lon)
                .push_bind(r.lat)
                .push_bind(&r.payload);
        });
        qb.build().persistent(false).execute(&mut *conn).await.map_err(q("insert route events"))?;
    }
    Ok(())
}
