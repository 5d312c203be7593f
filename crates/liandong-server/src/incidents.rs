//! Incidents over HTTP: created from an alert, a report or by hand, dispatched to a
//! unit, moved through their steps by the officer's phone (or an operator), with the
//! timeline of who did what; and the ticker that escalates late steps.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::alerts::nearest_units;
use liandong_core::incident::Action;
use liandong_core::jump::Fix;
use liandong_core::Position;
use liandong_store::IncidentRow;
use serde::Deserialize;

use crate::auth::{bearer, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::read_json;
use crate::sequencer::{IncidentCommand, IncidentDone};
use crate::time_fmt::now_ms;
use crate::AppState;

/// Who acts on an incident.
enum Actor {
    /// An operator or administrator (name, role): any step.
    Operator(String, Role),
    /// An officer's phone (its device key): the steps of its own task.
    Device(String),
}

fn actor(s: &AppState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let token =
        bearer(headers, None).ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    if let Some(user) = s.tokens.user(&token) {
        return match user.role {
            Role::Admin | Role::Operator => Ok(Actor::Operator(user.name.clone(), user.role)),
            role => Err(ApiError::forbidden("authorization", format!("role {role:?} may not handle incidents"))),
        };
    }
    let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
    devices
        .by_key(&token)
        .map(|d| Actor::Device(d.device_id.clone()))
        .ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))
}

/// Submits a step; answers the incident after it, and `"repeat": true` when it was a
/// phone's step the incident had already taken.
async fn run(s: &AppState, cmd: IncidentCommand) -> Result<Response, ApiError> {
    match s.ingest.submit_incident(cmd).await? {
        Ok(done) => Ok(Json(serde_json::json!({ "incident": done.incident, "repeat": done.repeat })).into_response()),
        Err(refusal) => Err(refusal.into_api_error("action")),
    }
}

/// Photos one feedback may carry, and the body that holds them: three phone photos,
/// shrunk on the phone, in base64 (a third larger than the JPEGs).
const MAX_FEEDBACK_PHOTOS: usize = 3;
const MAX_STEP_BYTES: usize = 10 << 20;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewIncident {
    title: String,
    #[serde(default = "default_priority")]
    priority: u8,
    /// The place; taken from the alert when `alert_seq` is given without it.
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    alert_seq: Option<i64>,
    /// What it is about (e.g. `theft`, `traffic`); an incident from an alert takes the
    /// alert's rule when this is not given.
    #[serde(default)]
    kind: Option<String>,
    /// The people involved: a criminal incident is checked against the disputes by them.
    #[serde(default)]
    parties: Vec<crate::mediation_watch::PartyIn>,
}

/// An incident kind: a short lowercase word (`a-z`, `0-9`, `_`), the key statistics
/// group by.
pub(crate) fn valid_kind(k: &str) -> Result<(), &'static str> {
    if k.is_empty() || k.len() > 40 {
        return Err("must be 1 to 40 characters");
    }
    if !k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err("may hold only a-z, 0-9 and _");
    }
    Ok(())
}

fn default_priority() -> u8 {
    2
}

/// `POST /api/v1/incidents`: opens an incident (operators); from an alert already an open
/// incident, answers that one (200, `existing`).
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = ["operator", "admin"])),
    request_body(content = crate::incidents::NewIncident, content_type = "application/json"),
    responses(
        (status = 200, description = "the open incident of that alert (`existing`)"),
        (status = 201, description = "the incident opened"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E422, doc::E503,
    ))]
pub async fn create(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let Actor::Operator(name, role) = actor(&s, &headers)? else {
        return Err(ApiError::forbidden("authorization", "only operators open incidents"));
    };
    let n: NewIncident = read_json(&s, &headers, body, 64 * 1024).await?;
    let chars = n.title.trim().chars().count();
    if chars == 0 || chars > 200 {
        return Err(ApiError::bad_request("title", "must be 1 to 200 characters"));
    }
    if !(1..=5).contains(&n.priority) {
        return Err(ApiError::bad_request("priority", "must be 1 (highest) to 5"));
    }
    if let Some(k) = &n.kind {
        valid_kind(k).map_err(|r| ApiError::bad_request("kind", r))?;
    }
    let alert = match n.alert_seq {
        Some(seq) => {
            let alert = s.store.alert(seq).await.map_err(|e| ApiError::unavailable(&e))?;
            // An alert the operator's role may not see does not exist for them, as when
            // acknowledging it.
            match alert {
                Some(a) if crate::scope::sees_alert(role, &a.roles) => Some(a),
                _ => return Err(ApiError::bad_request("alert_seq", format!("no alert {seq}"))),
            }
        }
        None => None,
    };
    // Opening an incident from a tagged person's alert reads where they were: audited
    // before the answer.
    if let Some(subject) = alert.as_ref().and_then(crate::scope::tagged_subject) {
        let what = format!("alert {} opened as an incident", n.alert_seq.unwrap_or_default());
        let entry =
            crate::scope::read_entry(&name, role.as_str(), "tagged_person_alert_read", &subject, &what, now_ms());
        s.store.audit(&[entry]).await.map_err(|e| ApiError::unavailable(&e))?;
    }
    let (lon, lat) = match (n.lon, n.lat, &alert) {
        (Some(lon), Some(lat), _) => (lon, lat),
        (None, None, Some(a)) => (a.lon, a.lat),
        (None, _, _) => return Err(ApiError::bad_request("lon", "required unless alert_seq names an alert")),
        (_, None, _) => return Err(ApiError::bad_request("lat", "required unless alert_seq names an alert")),
    };
    let parties = crate::mediation_watch::parties("parties", &n.parties)?;
    let kind = n.kind.or_else(|| alert.map(|a| a.rule)).unwrap_or_else(|| "other".into());
    let position = Position::new(lon, lat).map_err(|e| ApiError::bad_request(e.field(), e.to_string()))?;
    let cmd = IncidentCommand::Create {
        title: n.title.trim().to_owned(),
        kind,
        priority: n.priority,
        position,
        alert_seq: n.alert_seq,
        actor: name,
        now_ms: now_ms(),
    };
    match s.ingest.submit_incident(cmd).await? {
        Ok(IncidentDone { incident: Some(inc), existing, .. }) => {
            // A crime that touches a dispute (民转刑) is flagged once, when it is opened.
            let disputes =
                if existing { Vec::new() } else { crate::mediation_watch::check_incident(&s, &inc, &parties).await? };
            let recommended = recommend(&s, &inc).await?;
            // The alert was already an open incident (opened from another screen): that
            // one is answered, 200 instead of 201, so this screen opens it too.
            let disputes: Vec<_> = disputes
                .iter()
                .map(|(case_id, reason)| serde_json::json!({"case_id": case_id, "reason": reason}))
                .collect();
            let body = serde_json::json!({ "incident": inc, "recommended": recommended, "existing": existing, "disputes": disputes });
            let status = if existing { StatusCode::OK } else { StatusCode::CREATED };
            Ok((status, Json(body)).into_response())
        }
        Ok(IncidentDone { incident: None, .. }) => Err(ApiError::internal(&"an incident create returned no incident")),
        Err(refusal) => Err(refusal.into_api_error("action")),
    }
}

/// How many units a recommendation names, among how many nearest by straight line, and
/// the longest travel time considered (beyond it a unit is ranked by distance).
const RECOMMENDED_UNITS: usize = 5;
const ROAD_CANDIDATES: usize = 12;
const MAX_TRAVEL_S: f64 = 3600.0;

/// Whether a unit is on duty at `now`, and why: a post with someone on the duty roster
/// now, or a team whose base post has.
fn unit_on_duty(s: &AppState, unit_id: Option<&str>, now: i64) -> (bool, String) {
    let Some(unit) = unit_id else { return (false, "the device belongs to no unit".into()) };
    let Some(post) = s.roster.post_of(unit) else { return (false, format!("{unit} belongs to no post")) };
    let on = s.roster.post_on_duty(post, now);
    let whose = if post == unit { format!("post {post}") } else { format!("{unit}'s post {post}") };
    (on, format!("{whose} has {} on duty now", if on { "someone" } else { "nobody" }))
}

/// Whom to send: the available units (last trusted fix at most 15 minutes old, not
/// busy with another open incident, not a tagged person's phone) that reach the place
/// first by road (door-to-door travel time on the road graph, off-road legs at walking
/// pace), among the nearest by straight line, those on duty (their post has someone on
/// the duty roster now) before the others; and the nearest posts, each saying whether
/// it has someone on duty.
async fn recommend(s: &AppState, inc: &IncidentRow) -> Result<serde_json::Value, ApiError> {
    let Ok(p) = Position::new(inc.lon, inc.lat) else { return Ok(serde_json::Value::Null) };
    let open = s.store.open_incidents().await.map_err(|e| ApiError::unavailable(&e))?;
    let busy: std::collections::HashSet<String> =
        open.into_iter().filter(|i| i.incident_id != inc.incident_id).filter_map(|i| i.assigned_device).collect();
    let now = now_ms();
    // The nearest candidates by straight line, then ranked by travel time on the roads.
    let candidates: Vec<(String, Position, f64, i64)> = {
        let live = s.live.read().unwrap_or_else(|e| e.into_inner());
        let zones = s.zones.read().unwrap_or_else(|e| e.into_inner());
        let fixes = live
            .devices
            .iter()
            .filter(|(id, r)| r.trusted && !busy.contains(id.as_str()) && !zones.is_tagged_device(id))
            .filter_map(|(id, r)| {
                Some((id.as_str(), Fix { position: Position::new(r.lon, r.lat).ok()?, time_ms: r.fix_ms }))
            });
        nearest_units(fixes, p, now, crate::sequencer::UNIT_MAX_AGE_MS, ROAD_CANDIDATES)
            .into_iter()
            .filter_map(|(id, d)| {
                let r = live.devices.get(id)?;
                Some((id.to_owned(), Position::new(r.lon, r.lat).ok()?, d, (now - r.fix_ms).max(0) / 1000))
            })
            .collect()
    };
    let graph = s.roads.clone();
    let positions: Vec<Position> = candidates.iter().map(|c| c.1).collect();
    let travel: Vec<Option<f64>> = tokio::task::spawn_blocking(move || {
        let Some(times) = graph.travel_times_to(p, MAX_TRAVEL_S) else { return vec![None; positions.len()] };
        positions.iter().map(|q| times.at(&graph, *q)).collect()
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let by_road = travel.iter().any(Option::is_some);
    // Each candidate's name, kind and unit, read under one short lock.
    let registered: Vec<Option<(String, String, Option<String>)>> = {
        let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
        let info = |id: &String| devices.get(id).map(|d| (d.name.clone(), d.kind.clone(), d.unit_id.clone()));
        candidates.iter().map(|c| info(&c.0)).collect()
    };
    let duty: Vec<(bool, String)> =
        registered.iter().map(|r| unit_on_duty(s, r.as_ref().and_then(|r| r.2.as_deref()), now)).collect();
    let mut ranked: Vec<(usize, Option<f64>)> = travel.into_iter().enumerate().collect();
    // Units on duty first; within each, reachable units by travel time, then the rest
    // by distance.
    ranked.sort_by(|a, b| {
        duty[b.0].0.cmp(&duty[a.0].0).then_with(|| match (a.1, b.1) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => candidates[a.0].2.total_cmp(&candidates[b.0].2),
        })
    });
    let units: Vec<serde_json::Value> = {
        ranked
            .into_iter()
            .take(RECOMMENDED_UNITS)
            .map(|(i, travel_s)| {
                let (id, _, d, age_s) = &candidates[i];
                let device = registered[i].as_ref();
                serde_json::json!({
                    "on_duty": duty[i].0,
                    "on_duty_reason": duty[i].1,
                    "device_id": id,
                    "name": device.map(|d| d.0.as_str()),
                    "kind": device.map(|d| d.1.as_str()),
                    "unit_id": device.and_then(|d| d.2.as_deref()),
                    "distance_m": (d * 10.0).round() / 10.0,
                    "travel_s": travel_s.map(|t| t.round()),
                    "fix_age_s": age_s,
                })
            })
            .collect()
    };
    let place = s.enricher.view(&s.enricher.enrich(p), &[], &[]);
    let posts: Vec<serde_json::Value> = place
        .nearest_posts
        .iter()
        .map(|n| {
            let mut v = serde_json::to_value(n).unwrap_or_default();
            v["on_duty"] = serde_json::Value::Bool(s.roster.post_on_duty(n.id, now));
            v
        })
        .collect();
    Ok(serde_json::json!({
        "basis": if by_road { "road_time" } else { "straight_line" },
        "prefers": "on_duty",
        "units": units,
        "posts": posts,
        "jurisdiction": place.post,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    action: String,
    /// For `dispatch`: the device (an officer's phone) sent.
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    note: String,
    /// For `feedback`: up to three JPEG photos, base64.
    #[serde(default)]
    photos_base64: Vec<String>,
}

/// `POST /api/v1/incidents/{id}/actions`: a step — `dispatch` (operators, with
/// `device_id`), `sign`, `depart`, `arrive`, `feedback` (the assigned phone or an
/// operator; with up to three JPEGs in `photos_base64`), `close`, `cancel` (operators).
/// Who may call: administrators and operators (any step), the assigned phone by its
/// device key (its own steps); other roles 403, no or an unknown token 401.
///
/// A phone that sends again a step the incident has already taken (its answer was lost)
/// gets 200 with the incident and `"repeat": true`, and nothing is recorded twice; any
/// other step out of order is refused (422).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/actions", tag = "incidents",
    security(("bearer" = ["operator", "admin"]), ("device_key" = [])), params(("id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the incident after the step, or `\"repeat\": true`"), doc::E400, doc::E401,
        doc::E403, doc::E404, doc::E409, doc::E413, doc::E415, doc::E422, doc::E503,
    ))]
pub async fn act(
    State(s): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = actor(&s, &headers)?;
    let step: Step = read_json(&s, &headers, body, MAX_STEP_BYTES).await?;
    let action = Action::parse(&step.action).ok_or_else(|| {
        ApiError::bad_request("action", "must be dispatch, sign, depart, arrive, feedback, close or cancel")
    })?;
    let officer_step = matches!(action, Action::Sign | Action::Depart | Action::Arrive | Action::Feedback);
    let (actor_name, actor_device) = match who {
        Actor::Operator(name, _) => (name, None),
        Actor::Device(d) if officer_step => {
            let registered = s.devices.read().unwrap_or_else(|e| e.into_inner()).get(&d).map(crate::devices::actor);
            (registered.unwrap_or_else(|| format!("device:{d}")), Some(d))
        }
        Actor::Device(_) => {
            return Err(ApiError::forbidden("action", format!("{} is the command centre's step", step.action)))
        }
    };
    let assign = match (action, &step.device_id) {
        (Action::Dispatch, Some(d)) => {
            let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
            let device =
                devices.get(d).ok_or_else(|| ApiError::bad_request("device_id", format!("unknown device {d}")))?;
            Some((device.device_id.clone(), device.unit_id.clone()))
        }
        (Action::Dispatch, None) => {
            return Err(ApiError::bad_request("device_id", "a dispatch names the device to send"))
        }
        _ => None,
    };
    if step.note.chars().count() > 2000 {
        return Err(ApiError::bad_request("note", "must be at most 2000 characters"));
    }
    if action != Action::Feedback && !step.photos_base64.is_empty() {
        return Err(ApiError::bad_request("photos_base64", "only a feedback carries photos"));
    }
    let photos = crate::reports::decode_photos(&step.photos_base64, MAX_FEEDBACK_PHOTOS)?;
    // A phone re-sending its feedback (the incident is at feedback already) is answered
    // as a repeat: its photos are not stored a second time.
    let photo_urls = if photos.is_empty() || already_at(&s, id, action).await? {
        Vec::new()
    } else {
        crate::cameras::store_images(&s, photos).await?
    };
    let cmd = IncidentCommand::Act {
        incident_id: id,
        action,
        actor: actor_name,
        actor_device,
        assign,
        note: step.note,
        photo_urls,
        now_ms: now_ms(),
    };
    run(&s, cmd).await
}

/// Whether the incident has already taken `action` (as stored now): the sequencer
/// decides, this only spares storing a repeat's photos again.
async fn already_at(s: &AppState, id: i64, action: Action) -> Result<bool, ApiError> {
    let stored = s.store.incident(id).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(stored.is_some_and(|(inc, _)| inc.state == action.leads_to()))
}

/// `GET /api/v1/incidents/{id}`: the incident and its timeline. Operators and
/// administrators read any incident, with the units recommended to send; the others only
/// the incidents in their reach (`scope::Reach::sees_incident`), without the
/// recommendation: a patrol leader those assigned to the team or within
/// `alerts.leader_radius_m` of its post, a post officer those assigned to the post or in
/// its jurisdiction, a grid member those in their grid, the judicial office (partner)
/// those of priority 1, read only. Any other incident does not exist for them (404).
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "the incident and its timeline"), doc::E401, doc::E403, doc::E404, doc::E503,
    ))]
pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = crate::auth::require_user(
        &s.tokens,
        &headers,
        uri.query(),
        &[Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner],
    )?;
    let not_found = || ApiError::not_found(format!("no incident {id}"));
    let (inc, timeline) = s.store.incident(id).await.map_err(|e| ApiError::unavailable(&e))?.ok_or_else(not_found)?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    if !reach.sees_incident((&inc).into(), &s.enricher) {
        return Err(not_found());
    }
    let open = inc.state.is_open();
    let recommended = if open && reach.is_county() { recommend(&s, &inc).await? } else { serde_json::Value::Null };
    let body = serde_json::json!({ "incident": inc, "timeline": timeline, "recommended": recommended });
    Ok(Json(body).into_response())
}

/// Every `period`, asks for the escalation of late steps at the clock's time, until
/// `stop` resolves. The clock is tokio's (monotonic, pausable in tests) anchored to the
/// wall clock at start, so a wall-clock jump does not fire or swallow escalations.
pub async fn run_ticker<F, Fut>(period: Duration, mut tick: F, stop: impl Future<Output = ()>)
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = ()>,
{
    let base_ms = now_ms();
    let base = tokio::time::Instant::now();
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = interval.tick() => tick(base_ms + base.elapsed().as_millis() as i64).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// With paused time: a ticker asked to tick every second reports the clock moving
    /// with tokio's, so a test that advances time 61 s sees a 61 s later `now`.
    #[tokio::test(start_paused = true)]
    async fn the_ticker_follows_the_paused_clock() {
        let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let log = seen.clone();
        let task = tokio::spawn(run_ticker(
            Duration::from_secs(1),
            move |now| {
                log.lock().unwrap().push(now);
                async {}
            },
            async move {
                let _ = stop_rx.await;
            },
        ));
        tokio::time::sleep(Duration::from_millis(61_500)).await;
        let _ = stop_tx.send(());
        task.await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 62, "one tick at start and one a second for 61 s");
        assert_eq!(seen[61] - seen[0], 61_000, "the ticks carry tokio's time");
    }
}
