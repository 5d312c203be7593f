//! The field app's reads (issue 14): the tasks of a phone or of a unit, the road route
//! from the unit's last fix to a place, and a grid member's own reports with what became
//! of each. The steps a phone takes on a task are `incidents::act`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::road::RoadGraph;
use liandong_core::Position;
use liandong_store::{IncidentRow, OwnReport};
use serde::Serialize;

use crate::auth::{bearer, require_user, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::AppState;

/// The most tasks one answer lists.
const MAX_TASKS: u32 = 50;
/// The most reports one page of "my reports" lists.
const MAX_OWN_REPORTS: u32 = 100;
/// How long a route request waits for a free search before it is told to retry.
const ROUTE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Who is asking for tasks or a route.
enum FieldCaller {
    /// A phone, by its device key: its id, its kind and its unit.
    Device { device_id: String, kind: String, unit_id: Option<String> },
    /// A patrol leader's or a post officer's user token with a unit.
    Unit { role: Role, unit_id: String },
}

/// The caller of a field endpoint: a device key, or the user token of a patrol leader or
/// a post officer that names a unit. No token or an unknown one is 401; any other role,
/// or such a token without a unit, is 403.
fn field_caller(s: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<FieldCaller, ApiError> {
    let token =
        bearer(headers, query).ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    if let Some(user) = s.tokens.user(&token) {
        return match (user.role, &user.unit_id) {
            (Role::PatrolLeader | Role::PostOfficer, Some(unit)) => {
                Ok(FieldCaller::Unit { role: user.role, unit_id: unit.clone() })
            }
            (Role::PatrolLeader | Role::PostOfficer, None) => {
                Err(ApiError::forbidden("authorization", "the token names no unit_id"))
            }
            (role, _) => Err(ApiError::forbidden(
                "authorization",
                format!("role {} has no tasks; a phone's key or a unit's token has", role.as_str()),
            )),
        };
    }
    let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
    let d = devices.by_key(&token).ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))?;
    Ok(FieldCaller::Device { device_id: d.device_id.clone(), kind: d.kind.clone(), unit_id: d.unit_id.clone() })
}

/// `GET /api/v1/tasks`: the open incidents assigned to the caller, newest first, at most
/// 50: `{"tasks": [incident, …]}`, each as `GET /api/v1/incidents/{id}` answers it under
/// `incident`.
///
/// Who may call: a phone by its device key (the incidents dispatched to that phone, not
/// to others of its unit); a `patrol_leader` or `post_officer` user token with a
/// `unit_id` (the incidents dispatched to any phone of that unit). Administrators,
/// operators, grid members and partners are refused (403), as is a leader's or officer's
/// token without a unit; no token or an unknown one is 401.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "incidents",
    security(("bearer" = ["patrol_leader", "post_officer"]), ("device_key" = [])),
    responses((status = 200, description = "`{\"tasks\": [...]}`"), doc::E401, doc::E403, doc::E503))]
pub async fn tasks(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let caller = field_caller(&s, &headers, uri.query())?;
    let (device, unit) = match &caller {
        FieldCaller::Device { device_id, .. } => (Some(device_id.as_str()), None),
        FieldCaller::Unit { unit_id, .. } => (None, Some(unit_id.as_str())),
    };
    let tasks: Vec<IncidentRow> =
        s.store.assigned_incidents(device, unit, MAX_TASKS).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(Tasks { tasks }).into_response())
}

#[derive(Serialize)]
struct Tasks {
    tasks: Vec<IncidentRow>,
}

/// The answer of `GET /api/v1/route`.
#[derive(Serialize)]
struct RouteAnswer {
    from: RouteFrom,
    to: LonLat,
    /// Door to door: the walk to the road, the road, the walk from it.
    distance_m: f64,
    travel_s: f64,
    geometry: LineString,
}

#[derive(Serialize)]
struct RouteFrom {
    lon: f64,
    lat: f64,
    fix_time: String,
}

#[derive(Serialize)]
struct LonLat {
    lon: f64,
    lat: f64,
}

#[derive(Serialize)]
struct LineString {
    #[serde(rename = "type")]
    kind: &'static str,
    coordinates: Vec<[f64; 2]>,
}

/// `GET /api/v1/route?to=LON,LAT`: the road route (A* by travel time on the map's road
/// graph) from the caller's last fix to a place: `from` (the fix and its time), `to`,
/// `distance_m`, `travel_s` and the `geometry` as a GeoJSON LineString, door to door.
/// A patrol's phone or leader is routed on the team's graph (on foot unless the team
/// drives); every other unit at road speeds. 404 naming `from` when the caller has no
/// fix yet, 400 naming `to` when it is malformed or outside the county's bounds, 422
/// naming `to` when no road leads there.
///
/// Who may call: the same callers as `GET /api/v1/tasks` — a phone by its device key
/// (from its own last fix) or a `patrol_leader`/`post_officer` token with a `unit_id`
/// (from the unit's most recent fix); every other role 403, no or an unknown token 401.
#[utoipa::path(get, path = "/api/v1/route", tag = "incidents",
    security(("bearer" = ["patrol_leader", "post_officer"]), ("device_key" = [])),
    params(("to" = Option<String>, Query, description = "LON,LAT")),
    responses(
        (status = 200, description = "the road route"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E422,
        doc::E503,
    ))]
pub async fn route(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let caller = field_caller(&s, &headers, uri.query())?;
    let to = destination(&s, uri.query())?;
    let (from, fix_ms) = last_fix(&s, &caller)?;
    let graph = graph_of(&s, &caller);
    let _search = s.route_searches.acquire_timeout(ROUTE_WAIT).await?;
    let found = tokio::task::spawn_blocking(move || graph.route(from, to)).await.map_err(|e| ApiError::internal(&e))?;
    let Some(r) = found else {
        return Err(ApiError::unprocessable("to", "no road leads there from the last fix"));
    };
    let mut coordinates: Vec<[f64; 2]> = Vec::with_capacity(r.geometry.len() + 2);
    for p in std::iter::once(from).chain(r.geometry.iter().copied()).chain([to]) {
        let c = [p.lon(), p.lat()];
        if coordinates.last() != Some(&c) {
            coordinates.push(c);
        }
    }
    let round = |v: f64| (v * 10.0).round() / 10.0;
    let answer = RouteAnswer {
        from: RouteFrom { lon: from.lon(), lat: from.lat(), fix_time: crate::time_fmt::rfc3339_ms(fix_ms) },
        to: LonLat { lon: to.lon(), lat: to.lat() },
        distance_m: round(r.start.distance_m + r.length_m + r.end.distance_m),
        travel_s: round(r.travel_s),
        geometry: LineString { kind: "LineString", coordinates },
    };
    Ok(Json(answer).into_response())
}

/// The `to=LON,LAT` of a route request, inside the county's bounding rectangle.
fn destination(s: &AppState, query: Option<&str>) -> Result<Position, ApiError> {
    let raw = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::bad_request("to", "required: to=LON,LAT"))?;
    let mut parts = raw.split(',').map(|p| p.trim().parse::<f64>());
    let (Some(Ok(lon)), Some(Ok(lat)), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ApiError::bad_request("to", "must be LON,LAT in decimal degrees"));
    };
    let p = Position::new(lon, lat).map_err(|e| ApiError::bad_request("to", e.to_string()))?;
    let inside = s
        .map
        .extent()
        .is_some_and(|r| (r.min().x..=r.max().x).contains(&p.lon()) && (r.min().y..=r.max().y).contains(&p.lat()));
    if !inside {
        return Err(ApiError::bad_request("to", "is outside the county's bounds"));
    }
    Ok(p)
}

/// Where the caller is: a phone's last fix, or the most recent fix of a unit's phones.
fn last_fix(s: &AppState, caller: &FieldCaller) -> Result<(Position, i64), ApiError> {
    let live = s.live.read().unwrap_or_else(|e| e.into_inner());
    let last = match caller {
        FieldCaller::Device { device_id, .. } => live.devices.get(device_id),
        FieldCaller::Unit { unit_id, .. } => live
            .devices
            .values()
            .filter(|r| r.unit_id.as_deref() == Some(unit_id.as_str()))
            .max_by_key(|r| (r.fix_ms, r.seq)),
    };
    let no_fix = || ApiError::not_found_at("from", "no position has been received from the unit yet");
    let r = last.ok_or_else(no_fix)?;
    let p = Position::new(r.lon, r.lat).map_err(|_| no_fix())?;
    Ok((p, r.fix_ms))
}

/// The graph a caller travels on: a patrol's (its phones' and its leader's) is the
/// team's, on foot unless the team drives; posts and vehicles go at road speeds.
fn graph_of(s: &AppState, caller: &FieldCaller) -> Arc<RoadGraph> {
    match caller {
        FieldCaller::Device { kind, unit_id: Some(team), .. } if kind == "patrol_member" || kind == "patrol_leader" => {
            s.travel.of(team).clone()
        }
        FieldCaller::Unit { role: Role::PatrolLeader, unit_id } => s.travel.of(unit_id).clone(),
        _ => s.roads.clone(),
    }
}

/// One of the caller's own reports, as the field app shows it.
#[derive(Serialize)]
struct OwnReportView {
    report_id: i64,
    time: String,
    category: String,
    text: String,
    lon: f64,
    lat: f64,
    photo_urls: Vec<String>,
    /// `pending` (awaiting review), `accepted`, `merged`, `rejected`, or `mediation` (a
    /// dispute not reviewed, with the mediation centre).
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    incident_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mediation: Option<MediationView>,
}

#[derive(Serialize)]
struct MediationView {
    case_id: i64,
    /// The case's status: `pending`, `accepted`, `mediated`, `followed_up` or `declined`.
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    success: Option<bool>,
}

impl From<OwnReport> for OwnReportView {
    fn from(r: OwnReport) -> OwnReportView {
        let mediation = r.case_id.map(|case_id| MediationView {
            case_id,
            state: r.case_status.clone().unwrap_or_else(|| "pending".into()),
            outcome: r.case_outcome.clone(),
            success: r.case_success,
        });
        let state = match r.status.as_str() {
            "accepted" => "accepted",
            "merged" => "merged",
            "rejected" => "rejected",
            _ if mediation.is_some() => "mediation",
            _ => "pending",
        };
        OwnReportView {
            report_id: r.report_id,
            time: crate::time_fmt::rfc3339_ms(r.time_ms),
            category: r.category,
            text: r.text,
            lon: r.lon,
            lat: r.lat,
            photo_urls: r.photo_urls,
            state,
            reason: if state == "rejected" { r.status_note } else { None },
            incident_id: r.incident_id,
            incident_state: r.incident_state,
            mediation,
        }
    }
}

#[derive(Serialize)]
struct OwnReports {
    reports: Vec<OwnReportView>,
}

/// `GET /api/v1/reports/mine?before=<report_id>`: the caller's own grid reports, newest
/// first, at most 100 (`before` pages back), each with its state: `pending`, `accepted`
/// or `merged` (with `incident_id` and `incident_state`), `rejected` (with `reason`),
/// `mediation` (a dispute with the mediation centre); a dispute's `mediation` case with
/// its state and outcome.
///
/// Who may call: the roles that file reports — `grid_member`, `post_officer`,
/// `operator`, `admin` — each seeing only the reports filed under their own token's name.
/// Partners and device keys are refused (403), no or an unknown token is 401.
#[utoipa::path(get, path = "/api/v1/reports/mine", tag = "reports",
    security(("bearer" = ["grid_member", "post_officer", "operator", "admin"])),
    params(("before" = Option<i64>, Query, description = "a report_id: pages back")),
    responses((status = 200, description = "the caller's reports"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn own_reports(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let token = bearer(&headers, uri.query());
    if token.as_deref().is_some_and(|t| s.tokens.user(t).is_none() && is_device_key(&s, t)) {
        return Err(ApiError::forbidden("authorization", "a phone's key files no reports; use the person's token"));
    }
    let user = require_user(
        &s.tokens,
        &headers,
        uri.query(),
        &[Role::GridMember, Role::PostOfficer, Role::Operator, Role::Admin],
    )?;
    let before = match form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).find(|(k, _)| k == "before") {
        None => i64::MAX,
        Some((_, v)) => match v.parse::<i64>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ApiError::bad_request("before", "must be a report_id (a positive integer)")),
        },
    };
    let rows = s.store.own_reports(&user.name, before, MAX_OWN_REPORTS).await.map_err(|e| ApiError::unavailable(&e))?;
    let reports = rows.into_iter().map(OwnReportView::from).collect();
    Ok((StatusCode::OK, Json(OwnReports { reports })).into_response())
}

fn is_device_key(s: &AppState, token: &str) -> bool {
    s.devices.read().unwrap_or_else(|e| e.into_inner()).by_key(token).is_some()
}

/// The road searches of routes running at once: one takes milliseconds on a county's
/// graph, but a burst of phones asking together must not take every blocking thread,
/// which ingest and the planner need too. A request that cannot start one within
/// [`ROUTE_WAIT`] is answered 503 with `Retry-After`.
pub struct RouteSearches(tokio::sync::Semaphore);

impl Default for RouteSearches {
    /// As many searches as the machine has cores.
    fn default() -> RouteSearches {
        RouteSearches(tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
    }
}

impl RouteSearches {
    async fn acquire_timeout(&self, wait: std::time::Duration) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(wait, self.0.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                let mut e =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "to", "too many routes are being searched; retry");
                e.retry_after_s = Some(1);
                Err(e)
            }
        }
    }
}
