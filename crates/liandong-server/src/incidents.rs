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
use liandong_core::incident::Action;
use liandong_core::Position;
use serde::Deserialize;

use crate::auth::{bearer, Role};
use crate::error::ApiError;
use crate::pipeline::IncidentCommand;
use crate::routes::read_json;
use crate::time_fmt::now_ms;
use crate::AppState;

/// Who acts on an incident.
enum Actor {
    /// An operator or administrator: any step.
    Operator(String),
    /// An officer's phone (its device key): the steps of its own task.
    Device(String),
}

fn actor(s: &AppState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let token =
        bearer(headers, None).ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    if let Some(user) = s.tokens.user(&token) {
        return match user.role {
            Role::Admin | Role::Operator => Ok(Actor::Operator(user.name.clone())),
            role => Err(ApiError::forbidden("authorization", format!("role {role:?} may not handle incidents"))),
        };
    }
    let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
    devices
        .by_key(&token)
        .map(|d| Actor::Device(d.device_id.clone()))
        .ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))
}

async fn run(s: &AppState, cmd: IncidentCommand) -> Result<Response, ApiError> {
    match s.ingest.submit_incident(cmd).await? {
        Ok(inc) => Ok(Json(serde_json::json!({ "incident": inc })).into_response()),
        Err(reason) => Err(ApiError::new(StatusCode::CONFLICT, "action", reason)),
    }
}

#[derive(Deserialize)]
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
}

fn default_priority() -> u8 {
    2
}

/// `POST /api/v1/incidents`: opens an incident (operators).
pub async fn create(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let Actor::Operator(name) = actor(&s, &headers)? else {
        return Err(ApiError::forbidden("authorization", "only operators open incidents"));
    };
    let n: NewIncident = read_json(&headers, body, 64 * 1024).await?;
    let chars = n.title.trim().chars().count();
    if chars == 0 || chars > 200 {
        return Err(ApiError::bad_request("title", "must be 1 to 200 characters"));
    }
    if !(1..=5).contains(&n.priority) {
        return Err(ApiError::bad_request("priority", "must be 1 (highest) to 5"));
    }
    let (lon, lat) = match (n.lon, n.lat, n.alert_seq) {
        (Some(lon), Some(lat), _) => (lon, lat),
        (None, None, Some(seq)) => {
            let alert = s.store.alerts_after(seq - 1, 1).await.map_err(|e| ApiError::unavailable(&e))?.pop();
            match alert {
                Some(a) if a.seq == seq => (a.lon, a.lat),
                _ => return Err(ApiError::bad_request("alert_seq", format!("no alert {seq}"))),
            }
        }
        (None, _, _) => return Err(ApiError::bad_request("lon", "required unless alert_seq names an alert")),
        (_, None, _) => return Err(ApiError::bad_request("lat", "required unless alert_seq names an alert")),
    };
    let position = Position::new(lon, lat).map_err(|e| ApiError::bad_request(e.field(), e.to_string()))?;
    let cmd = IncidentCommand::Create {
        title: n.title.trim().to_owned(),
        priority: n.priority,
        position,
        alert_seq: n.alert_seq,
        actor: name,
        now_ms: now_ms(),
    };
    let res = run(&s, cmd).await?;
    Ok((StatusCode::CREATED, res).into_response())
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
}

/// `POST /api/v1/incidents/{id}/actions`: a step — `dispatch` (operators, with
/// `device_id`), `sign`, `depart`, `arrive`, `feedback` (the assigned phone or an
/// operator), `close`, `cancel` (operators).
pub async fn act(
    State(s): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = actor(&s, &headers)?;
    let step: Step = read_json(&headers, body, 64 * 1024).await?;
    let action = Action::parse(&step.action).ok_or_else(|| {
        ApiError::bad_request("action", "must be dispatch, sign, depart, arrive, feedback, close or cancel")
    })?;
    let officer_step = matches!(action, Action::Sign | Action::Depart | Action::Arrive | Action::Feedback);
    let (actor_name, actor_device) = match who {
        Actor::Operator(name) => (name, None),
        Actor::Device(d) if officer_step => (format!("device:{d}"), Some(d)),
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
    let cmd = IncidentCommand::Act {
        incident_id: id,
        action,
        actor: actor_name,
        actor_device,
        assign,
        note: step.note,
        now_ms: now_ms(),
    };
    run(&s, cmd).await
}

/// `GET /api/v1/incidents/{id}`: the incident and its timeline.
pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    crate::auth::require_user(
        &s.tokens,
        &headers,
        uri.query(),
        &[Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer],
    )?;
    match s.store.incident(id).await.map_err(|e| ApiError::unavailable(&e))? {
        Some((inc, timeline)) => Ok(Json(serde_json::json!({ "incident": inc, "timeline": timeline })).into_response()),
        None => Err(ApiError::not_found(format!("no incident {id}"))),
    }
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
