//! Patrol route plans over HTTP: a new version of a team's plan (from the planner, a
//! diversion, or an operator's hand) is pushed to the team's patrol leader on the live
//! feed; the leader acknowledges it (here or on the websocket); operators see which
//! adjustments are pending and which acknowledged; one not acknowledged in time
//! escalates (see `sequencer::ROUTE_ACK_S`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::Position;
use liandong_store::RoutePlanRow;
use serde::Deserialize;

use crate::auth::{bearer, require_user, Role};
use crate::error::ApiError;
use crate::feed::messages::PlanView;
use crate::feed::plan_json;
use crate::openapi as doc;
use crate::routes::read_json;
use crate::sequencer::RouteCommand;
use crate::time_fmt::now_ms;
use crate::travel::map_teams;
use crate::AppState;

/// Most points in a plan's geometry, and waypoints.
const MAX_POINTS: usize = 20_000;
const MAX_WAYPOINTS: usize = 500;

fn check_team(s: &AppState, team_id: &str) -> Result<(), ApiError> {
    if map_teams(&s.map).iter().any(|t| t == team_id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no team {team_id} in the map")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Waypoint {
    name: String,
    lon: f64,
    lat: f64,
    #[serde(default)]
    planned_time: Option<String>,
    #[serde(default)]
    dwell_s: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPlan {
    #[serde(default = "default_kind")]
    kind: String,
    reason: String,
    /// The route as `[[lon, lat], …]` (WGS 84).
    coordinates: Vec<[f64; 2]>,
    #[serde(default)]
    waypoints: Vec<Waypoint>,
    /// Expected coverage and other planner figures, kept as given.
    #[serde(default)]
    figures: Option<serde_json::Value>,
}

fn default_kind() -> String {
    "manual".into()
}

/// `POST /api/v1/teams/{team_id}/plans`: pushes a new version of the team's plan
/// (operators). Answers 201 with the plan once committed and on the feed.
#[utoipa::path(post, path = "/api/v1/teams/{team_id}/plans", tag = "planning",
    security(("bearer" = ["operator", "admin"])), params(("team_id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "the plan pushed"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E413,
        doc::E415, doc::E422, doc::E503,
    ))]
pub async fn push(
    State(s): State<Arc<AppState>>,
    Path(team_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin])?;
    check_team(&s, &team_id)?;
    let p: NewPlan = read_json(&s, &headers, body, 4 << 20).await?;
    if !["plan", "diversion", "manual"].contains(&p.kind.as_str()) {
        return Err(ApiError::bad_request("kind", "must be plan, diversion or manual"));
    }
    let chars = p.reason.trim().chars().count();
    if chars == 0 || chars > 500 {
        return Err(ApiError::bad_request("reason", "must say why, in 1 to 500 characters"));
    }
    if p.coordinates.len() < 2 || p.coordinates.len() > MAX_POINTS {
        return Err(ApiError::bad_request("coordinates", format!("must hold 2 to {MAX_POINTS} points")));
    }
    for (i, [lon, lat]) in p.coordinates.iter().enumerate() {
        Position::new(*lon, *lat).map_err(|e| ApiError::bad_request(format!("coordinates[{i}]"), e.to_string()))?;
    }
    if p.waypoints.len() > MAX_WAYPOINTS {
        return Err(ApiError::bad_request("waypoints", format!("at most {MAX_WAYPOINTS}")));
    }
    for (i, w) in p.waypoints.iter().enumerate() {
        Position::new(w.lon, w.lat).map_err(|e| ApiError::bad_request(format!("waypoints[{i}]"), e.to_string()))?;
        if let Some(t) = &w.planned_time {
            liandong_ingest::parse_timestamp(t)
                .map_err(|e| ApiError::bad_request(format!("waypoints[{i}].planned_time"), e))?;
        }
    }
    let [lon, lat] = p.coordinates[0];
    let anchor = Position::new(lon, lat).map_err(|e| ApiError::bad_request("coordinates[0]", e.to_string()))?;
    let waypoints: Vec<serde_json::Value> = p
        .waypoints
        .iter()
        .map(|w| serde_json::json!({"name": w.name, "lon": w.lon, "lat": w.lat, "planned_time": w.planned_time, "dwell_s": w.dwell_s}))
        .collect();
    let plan = serde_json::json!({
        "geometry": {"type": "LineString", "coordinates": p.coordinates},
        "waypoints": waypoints,
        "figures": p.figures,
    });
    let cmd = RouteCommand::Push {
        team_id,
        kind: p.kind,
        reason: p.reason.trim().to_owned(),
        plan,
        anchor,
        actor: user.name.clone(),
        now_ms: now_ms(),
        unless_same_stops: false,
    };
    match s.ingest.submit_route(cmd).await? {
        Ok(row) => Ok((StatusCode::CREATED, Json(serde_json::json!({"plan": plan_json(&row)}))).into_response()),
        Err(refusal) => Err(refusal.into_api_error("team_id")),
    }
}

/// Who is asking about a team: its leader or officer (by user token or by a device of
/// the team), or the whole-county roles.
fn team_reader(s: &AppState, headers: &HeaderMap, uri: &Uri, team_id: &str) -> Result<(String, bool), ApiError> {
    let token = bearer(headers, uri.query())
        .ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    if let Some(user) = s.tokens.user(&token) {
        return match user.role {
            Role::Admin | Role::Operator => Ok((user.name.clone(), true)),
            Role::PatrolLeader if user.unit_id.as_deref() == Some(team_id) => Ok((user.name.clone(), false)),
            role => Err(ApiError::forbidden("authorization", format!("role {role:?} of another unit"))),
        };
    }
    let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
    match devices.by_key(&token) {
        Some(d) if d.unit_id.as_deref() == Some(team_id) && d.kind == "patrol_leader" => {
            Ok((format!("device:{}", d.device_id), false))
        }
        Some(_) => Err(ApiError::forbidden("authorization", "only the team's leader acknowledges its route")),
        None => Err(ApiError::unauthorized("authorization", "the token is not valid")),
    }
}

/// `GET /api/v1/teams/{team_id}/plans`: the team's plan versions, newest first.
/// Operators and administrators read any team's; the team's patrol leader (user token
/// or the leader's phone) its own. Another team does not exist for a leader (404, as a
/// team the map does not know); other roles are refused (403).
#[utoipa::path(get, path = "/api/v1/teams/{team_id}/plans", tag = "planning",
    security(("bearer" = ["operator", "admin", "patrol_leader"]), ("device_key" = [])),
    params(("team_id" = String, Path)),
    responses((status = 200, description = "the team's plan versions"), doc::E401, doc::E403, doc::E404, doc::E503))]
pub async fn list(
    State(s): State<Arc<AppState>>,
    Path(team_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if let Err(e) = team_reader(&s, &headers, &uri, &team_id) {
        return Err(if leads_another_team(&s, &headers, &uri) {
            ApiError::not_found(format!("no team {team_id} in the map"))
        } else {
            e
        });
    }
    check_team(&s, &team_id)?;
    let plans = s.store.route_plans(Some(&team_id), 100).await.map_err(|e| ApiError::unavailable(&e))?;
    let plans: Vec<PlanView<'_>> = plans.iter().map(plan_json).collect();
    Ok(Json(serde_json::json!({"team_id": team_id, "plans": plans})).into_response())
}

/// Whether the caller is a patrol leader (user token or leader's phone), to whom another
/// team's plans answer as if the team did not exist.
fn leads_another_team(s: &AppState, headers: &HeaderMap, uri: &Uri) -> bool {
    let Some(token) = bearer(headers, uri.query()) else { return false };
    if let Some(user) = s.tokens.user(&token) {
        return user.role == Role::PatrolLeader;
    }
    s.devices.read().unwrap_or_else(|e| e.into_inner()).by_key(&token).is_some_and(|d| d.kind == "patrol_leader")
}

/// `GET /api/v1/plans`: every team's current plan with its status (pending,
/// acknowledged) and escalation: the operators' view of route adjustments. Operators and
/// administrators see every team's; a patrol leader only their team's.
#[utoipa::path(get, path = "/api/v1/plans", tag = "planning",
    security(("bearer" = ["operator", "admin", "patrol_leader"])),
    responses((status = 200, description = "every team's current plan"), doc::E401, doc::E403, doc::E503))]
pub async fn heads(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin, Role::PatrolLeader])?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let mut plans = s.store.route_plan_heads().await.map_err(|e| ApiError::unavailable(&e))?;
    plans.retain(|p| reach.sees_unit(Some(&p.team_id)));
    let pending = plans.iter().filter(|p| p.status == "pending").count();
    let plans: Vec<PlanView<'_>> = plans.iter().map(plan_json).collect();
    Ok(Json(serde_json::json!({"pending": pending, "plans": plans})).into_response())
}

/// `POST /api/v1/teams/{team_id}/plans/{version}/ack`: the team's leader acknowledges
/// a version (a user token of the team's patrol leader, or the leader's phone key).
#[utoipa::path(post, path = "/api/v1/teams/{team_id}/plans/{version}/ack", tag = "planning",
    security(("bearer" = ["patrol_leader"]), ("device_key" = [])),
    params(("team_id" = String, Path), ("version" = i64, Path)),
    responses(
        (status = 200, description = "the acknowledgement"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E422, doc::E503,
    ))]
pub async fn ack(
    State(s): State<Arc<AppState>>,
    Path((team_id, version)): Path<(String, i64)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (actor, county) = team_reader(&s, &headers, &uri, &team_id)?;
    if county {
        return Err(ApiError::forbidden("authorization", "the team's leader acknowledges its route, not the centre"));
    }
    acknowledge(&s, team_id, version, actor)
        .await
        .map(|row| Json(serde_json::json!({"plan": plan_json(&row)})).into_response())
}

/// Acknowledges a version for `actor`: the API's and the websocket's one path.
pub async fn acknowledge(s: &AppState, team_id: String, version: i64, actor: String) -> Result<RoutePlanRow, ApiError> {
    match s.ingest.submit_route(RouteCommand::Ack { team_id, version, actor, now_ms: now_ms() }).await? {
        Ok(row) => Ok(row),
        Err(refusal) => Err(refusal.into_api_error("version")),
    }
}
