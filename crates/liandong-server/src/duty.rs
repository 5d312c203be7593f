//! The 24-hour duty roster's API (24小时值班): who is on duty at the command centre and
//! at each post, and who leads each shift. An administrator sets shifts for the days
//! ahead; shifts are never deleted, a cancelled one is kept. Like the people registry,
//! the roster is written straight to the store with its audit entries in one
//! transaction, then read again into the server's copy (`roster`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_store::{AuditEntry, DutyShift, PersonRecord};
use serde::{Deserialize, Serialize};

use crate::auth::{require_user, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::read_json;
use crate::sequencer::EscalationAckCommand;
use crate::time_fmt::now_ms;
use crate::AppState;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// China Standard Time is UTC+8 all year: the roster's default day is China's.
const CHINA_OFFSET_MS: i64 = 8 * 3600 * 1000;

/// The longest shift: a 24-hour duty.
const MAX_SHIFT_MS: i64 = DAY_MS;

/// How far ahead an administrator may set the roster: two months.
const MAX_AHEAD_MS: i64 = 62 * DAY_MS;

/// The widest window a read may ask for: the roster as far ahead as it may be set.
const MAX_WINDOW_MS: i64 = 63 * DAY_MS;

/// The most shifts one request may set: two months of every unit's leader and officer.
const MAX_SHIFTS: usize = 4000;

/// The largest roster body: a shift is about 150 bytes.
const MAX_BODY: usize = 1024 * 1024;

/// `POST /api/v1/duty` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoster {
    shifts: Vec<NewShift>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewShift {
    unit_kind: String,
    #[serde(default)]
    unit_id: Option<String>,
    person_id: String,
    duty: String,
    starts_ms: i64,
    ends_ms: i64,
}

/// One shift as the API answers it: the stored shift with the person's name.
#[derive(Debug, Serialize)]
struct ShiftOut<'a> {
    shift_id: &'a str,
    unit_kind: &'a str,
    unit_id: Option<&'a str>,
    person_id: &'a str,
    person_name: Option<&'a str>,
    duty: &'a str,
    starts_ms: i64,
    ends_ms: i64,
}

/// The start of the China day holding `t_ms`, in Unix milliseconds.
fn china_day_start(t_ms: i64) -> i64 {
    (t_ms + CHINA_OFFSET_MS).div_euclid(DAY_MS) * DAY_MS - CHINA_OFFSET_MS
}

/// The window a read asks for: `from` and `to` (ms) together, else today in China time.
fn window(query: Option<&str>, now: i64) -> Result<(i64, i64), ApiError> {
    let (mut from, mut to) = (None, None);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let ms = || v.parse::<i64>().map_err(|_| ApiError::bad_request(&*k, "must be Unix milliseconds"));
        match &*k {
            "from" => from = Some(ms()?),
            "to" => to = Some(ms()?),
            // The bearer token may come in the query, like the live feed's.
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a parameter of the duty roster")),
        }
    }
    match (from, to) {
        (None, None) => {
            let start = china_day_start(now);
            Ok((start, start + DAY_MS))
        }
        (Some(_), None) => Err(ApiError::bad_request("to", "is required with from")),
        (None, Some(_)) => Err(ApiError::bad_request("from", "is required with to")),
        (Some(f), Some(t)) if t <= f => Err(ApiError::bad_request("to", "must be after from")),
        (Some(f), Some(t)) if t - f > MAX_WINDOW_MS => {
            Err(ApiError::bad_request("to", format!("at most {} days after from", MAX_WINDOW_MS / DAY_MS)))
        }
        (Some(f), Some(t)) => Ok((f, t)),
    }
}

/// The names of the people the shifts name, by id.
async fn names(s: &AppState, shifts: &[DutyShift]) -> Result<HashMap<String, PersonRecord>, ApiError> {
    let mut out: HashMap<String, PersonRecord> = HashMap::new();
    for sh in shifts {
        if !out.contains_key(&sh.person_id) {
            if let Some(p) = s.store.person(&sh.person_id).await.map_err(|e| ApiError::unavailable(&e))? {
                out.insert(p.person_id.clone(), p);
            }
        }
    }
    Ok(out)
}

fn shifts_json(shifts: &[DutyShift], people: &HashMap<String, PersonRecord>) -> Vec<serde_json::Value> {
    shifts
        .iter()
        .map(|sh| {
            let out = ShiftOut {
                shift_id: &sh.shift_id,
                unit_kind: &sh.unit_kind,
                unit_id: sh.unit_id.as_deref(),
                person_id: &sh.person_id,
                person_name: people.get(&sh.person_id).map(|p| p.name.as_str()),
                duty: &sh.duty,
                starts_ms: sh.starts_ms,
                ends_ms: sh.ends_ms,
            };
            serde_json::to_value(out).unwrap_or_default()
        })
        .collect()
}

/// `GET /api/v1/duty?from=&to=`: the roster's uncancelled shifts overlapping the window
/// (Unix ms; both or neither: today, 00:00 to 24:00 China time), sorted by unit and
/// start, each with the person's name. Operators and administrators read every unit's;
/// a post's people (a post officer, or a patrol leader, whose team's post counts) read
/// only their post's; grid members, partners, devices and a missing or unknown token
/// are refused, and so is a leader or officer whose unit has no post.
#[utoipa::path(get, path = "/api/v1/duty", tag = "duty",
    security(("bearer" = ["admin", "operator", "post_officer", "patrol_leader"])),
    params(
        ("from" = Option<i64>, Query, description = "Unix ms"), ("to" = Option<i64>, Query, description = "Unix ms"),
    ),
    responses((status = 200, description = "the shifts"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let roles = [Role::Admin, Role::Operator, Role::PostOfficer, Role::PatrolLeader];
    let user = require_user(&s.tokens, &headers, uri.query(), &roles)?;
    let post: Option<String> = match user.role {
        Role::Admin | Role::Operator => None,
        _ => {
            let unit = user.unit_id.as_deref().unwrap_or("");
            let post = s
                .roster
                .post_of(unit)
                .ok_or_else(|| ApiError::forbidden("authorization", "the caller's unit has no post"))?;
            Some(post.to_owned())
        }
    };
    let (from, to) = window(uri.query(), now_ms())?;
    let kind = post.as_ref().map(|_| "post");
    let shifts = s.store.duty_between(from, to, kind, post.as_deref()).await.map_err(|e| ApiError::unavailable(&e))?;
    let people = names(&s, &shifts).await?;
    let body = serde_json::json!({ "from_ms": from, "to_ms": to, "shifts": shifts_json(&shifts, &people) });
    Ok(Json(body).into_response())
}

/// Checks one shift of a roster, naming its field as `shifts[i].field`, and returns it
/// ready to store.
async fn check_shift(s: &AppState, i: usize, new: NewShift, now: i64, actor: &str) -> Result<DutyShift, ApiError> {
    let field = |f: &str| format!("shifts[{i}].{f}");
    match (new.unit_kind.as_str(), new.unit_id.as_deref()) {
        ("command_centre", None) => {}
        ("command_centre", Some(_)) => {
            return Err(ApiError::bad_request(field("unit_id"), "must be absent for the command centre"))
        }
        ("post", None) => return Err(ApiError::bad_request(field("unit_id"), "is required for a post")),
        ("post", Some(id)) if !s.map.posts.iter().any(|p| p.id == id) => {
            return Err(ApiError::unprocessable(field("unit_id"), format!("no post {id:?} in the loaded map")))
        }
        ("post", Some(_)) => {}
        _ => return Err(ApiError::bad_request(field("unit_kind"), "must be command_centre or post")),
    }
    if !matches!(new.duty.as_str(), "leader" | "on_duty") {
        return Err(ApiError::bad_request(field("duty"), "must be leader or on_duty"));
    }
    if new.ends_ms <= new.starts_ms {
        return Err(ApiError::bad_request(field("ends_ms"), "must be after starts_ms"));
    }
    if new.ends_ms - new.starts_ms > MAX_SHIFT_MS {
        return Err(ApiError::bad_request(field("ends_ms"), "a shift is at most 24 h long"));
    }
    if new.starts_ms > now + MAX_AHEAD_MS {
        return Err(ApiError::unprocessable(field("starts_ms"), "is more than 62 days ahead"));
    }
    let person = s.store.person(&new.person_id).await.map_err(|e| ApiError::unavailable(&e))?;
    let person =
        person.ok_or_else(|| ApiError::unprocessable(field("person_id"), format!("no person {:?}", new.person_id)))?;
    if !person.active {
        return Err(ApiError::unprocessable(field("person_id"), format!("{} is deactivated", person.person_id)));
    }
    if person.unit_kind != new.unit_kind || person.unit_id != new.unit_id {
        let unit = new.unit_id.as_deref().unwrap_or("the command centre");
        return Err(ApiError::unprocessable(
            field("person_id"),
            format!("{} does not belong to {unit}", person.person_id),
        ));
    }
    let key = crate::devices::generate_key().map_err(|e| ApiError::internal(&e))?;
    Ok(DutyShift {
        shift_id: format!("shift-{}", &key[..16]),
        unit_kind: new.unit_kind,
        unit_id: new.unit_id,
        person_id: new.person_id,
        duty: new.duty,
        starts_ms: new.starts_ms,
        ends_ms: new.ends_ms,
        created_ms: now,
        created_by: actor.to_owned(),
        cancelled_ms: None,
    })
}

/// The conflict of a refused roster, naming the first new shift that overlaps a leader
/// shift already on the roster (or earlier in the request).
fn leader_conflict(new: &[DutyShift], taken: &[DutyShift]) -> ApiError {
    let overlaps = |a: &DutyShift, b: &DutyShift| {
        a.shift_id != b.shift_id
            && a.unit_kind == b.unit_kind
            && a.unit_id == b.unit_id
            && a.starts_ms < b.ends_ms
            && b.starts_ms < a.ends_ms
    };
    let hit = new.iter().enumerate().filter(|(_, n)| n.duty == "leader").find_map(|(i, n)| {
        let other = taken.iter().find(|t| overlaps(n, t))?;
        Some((i, other))
    });
    match hit {
        Some((i, other)) => ApiError::conflict(
            format!("shifts[{i}].starts_ms"),
            format!(
                "{} already has a leader on duty then ({}, {} from {} to {})",
                other.unit_id.as_deref().unwrap_or("the command centre"),
                other.shift_id,
                other.person_id,
                other.starts_ms,
                other.ends_ms
            ),
        ),
        None => ApiError::conflict("shifts", "a unit would have two leaders on duty at once"),
    }
}

/// `POST /api/v1/duty`: adds shifts to the roster, all or none (201 with their ids),
/// each audited in the same transaction. Administrators only; every other role, a
/// device's key and a missing or unknown token are refused. Each shift is checked, the
/// refusal naming `shifts[i].field`: a command-centre shift (no `unit_id`) or a map
/// post's; `leader` or `on_duty`; an active person of that unit; ending after it starts,
/// at most 24 h later; starting at most 62 days ahead. A unit with two leaders on duty
/// at once is a 409.
#[utoipa::path(post, path = "/api/v1/duty", tag = "duty", security(("bearer" = ["admin"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "`{\"shift_ids\": [...]}`"), doc::E400, doc::E401, doc::E403, doc::E409, doc::E413,
        doc::E415, doc::E503,
    ))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let actor = user.name.clone();
    let roster: NewRoster = read_json(&s, &headers, body, MAX_BODY).await?;
    if roster.shifts.is_empty() || roster.shifts.len() > MAX_SHIFTS {
        return Err(ApiError::bad_request("shifts", format!("must hold 1 to {MAX_SHIFTS} shifts")));
    }
    let now = now_ms();
    let mut shifts = Vec::with_capacity(roster.shifts.len());
    for (i, new) in roster.shifts.into_iter().enumerate() {
        shifts.push(check_shift(&s, i, new, now, &actor).await?);
    }
    let audit: Vec<AuditEntry> = shifts
        .iter()
        .map(|sh| AuditEntry {
            at_ms: now,
            actor: actor.clone(),
            action: "duty_shift_added".into(),
            subject: format!("duty_shift:{}", sh.shift_id),
            detail: serde_json::to_string(sh).unwrap_or_default(),
        })
        .collect();
    let taken = s.store.insert_duty_shifts(&shifts, &audit).await.map_err(|e| ApiError::unavailable(&e))?;
    if !taken.is_empty() {
        return Err(leader_conflict(&shifts, &taken));
    }
    reload(&s).await;
    tracing::info!(shifts = shifts.len(), actor = %actor, "duty shifts added");
    let ids: Vec<&str> = shifts.iter().map(|sh| sh.shift_id.as_str()).collect();
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "shift_ids": ids })).into_response()).into_response())
}

/// Reads the roster again after a change made here, so that dispatch and escalation
/// use it at once; a failure leaves the periodic refresh to catch up.
async fn reload(s: &AppState) {
    if let Err(e) = s.roster.reload(&s.store, now_ms()).await {
        tracing::warn!(error = %e, "reading the duty roster after a change failed");
    }
}

/// `DELETE /api/v1/duty/{shift_id}`: cancels a shift, which is kept with the moment it
/// was cancelled, audited in the same transaction. Administrators only; every other
/// role, a device's key and a missing or unknown token are refused. 404 when there is
/// no such shift, 409 when it is cancelled already.
#[utoipa::path(delete, path = "/api/v1/duty/{shift_id}", tag = "duty", security(("bearer" = ["admin"])),
    params(("shift_id" = String, Path)),
    responses(
        (status = 200, description = "the shift cancelled"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E503,
    ))]
pub async fn cancel(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let actor = user.name.clone();
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::bad_request("shift_id", "must be 1 to 64 characters"));
    }
    let shift = s.store.duty_shift(&id).await.map_err(|e| ApiError::unavailable(&e))?;
    let shift = shift.ok_or_else(|| ApiError::not_found(format!("no shift {id}")))?;
    if shift.cancelled_ms.is_some() {
        return Err(ApiError::conflict("shift_id", format!("{id} is cancelled already")));
    }
    let now = now_ms();
    let audit = AuditEntry {
        at_ms: now,
        actor: actor.clone(),
        action: "duty_shift_cancelled".into(),
        subject: format!("duty_shift:{id}"),
        detail: serde_json::to_string(&shift).unwrap_or_default(),
    };
    if !s.store.cancel_duty_shift(&id, now, &audit).await.map_err(|e| ApiError::unavailable(&e))? {
        return Err(ApiError::conflict("shift_id", format!("{id} is cancelled already")));
    }
    reload(&s).await;
    tracing::info!(shift_id = %id, actor = %actor, "duty shift cancelled");
    let shift = DutyShift { cancelled_ms: Some(now), ..shift };
    Ok(Json(serde_json::json!({ "shift": shift })).into_response())
}

/// Who is acknowledging: the actor's name, the person they act for (a user's, or the
/// person a device is bound to), and whether they are an operator or an administrator.
fn acknowledger(
    s: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(String, Option<String>, bool), ApiError> {
    let every = [
        Role::Admin,
        Role::Operator,
        Role::PatrolLeader,
        Role::PostOfficer,
        Role::GridMember,
        Role::Partner,
        Role::Device,
    ];
    // Every role passes, so a refusal here is a missing or unknown token: a device's
    // key is then looked up, and the refusal stands when it is none either.
    let refused = match require_user(&s.tokens, headers, query, &every) {
        Ok(user) => {
            let operator = matches!(user.role, Role::Admin | Role::Operator);
            return Ok((user.name.clone(), user.person_id.clone(), operator));
        }
        Err(e) => e,
    };
    let token = crate::auth::bearer(headers, query).ok_or(refused)?;
    let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
    let d = devices.by_key(&token).ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))?;
    Ok((format!("device:{}", d.device_id), d.person_id.clone(), false))
}

/// `POST /api/v1/escalations/{id}/ack`: the person an escalation reached acknowledges
/// it (a user acting for that person, or a device bound to them), which stops its next
/// level; a notice that reached nobody (nobody on duty) may be acknowledged by an
/// operator or an administrator. Anyone else is refused with 403, an unknown
/// escalation is a 404, a missing or unknown token a 401. A repeated acknowledgement, or
/// one of a notice the incident's next step already resolved, answers `"repeat": true`
/// and stores nothing.
#[utoipa::path(post, path = "/api/v1/escalations/{id}/ack", tag = "duty",
    security(
        ("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner", "device"]),
        ("device_key" = []),
    ),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the acknowledgement, or `\"repeat\": true`"), doc::E400, doc::E401, doc::E403,
        doc::E404, doc::E503,
    ))]
pub async fn ack_escalation(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (actor, person_id, operator) = acknowledger(&s, &headers, uri.query())?;
    let escalation_id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request("id", "must be an escalation number"))?;
    let cmd = EscalationAckCommand { escalation_id, person_id, operator, actor: actor.clone(), now_ms: now_ms() };
    let done = s.ingest.submit_escalation_ack(cmd).await?.map_err(|r| r.into_api_error("id"))?;
    if !done.repeat {
        tracing::info!(escalation_id, actor = %actor, level = %done.level, "escalation acknowledged");
    }
    Ok(Json(serde_json::json!({ "escalation": done, "repeat": done.repeat })).into_response())
}

/// The most open escalations one read answers.
const MAX_OPEN: usize = 100;

/// `GET /api/v1/escalations`: the escalation notices neither acknowledged nor resolved
/// (by the incident's next step) that concern
/// the caller, newest first (at most 100), each as the live feed sent it: those that
/// reached the caller's person (a user acting for them, or a device bound to them), and
/// for operators and administrators also every command-centre notice. Any caller with a
/// token or a device's key may ask and gets only these (an empty list when none); a
/// missing or unknown token is refused with 401. A screen shows them on starting, and
/// the live feed brings the rest.
#[utoipa::path(get, path = "/api/v1/escalations", tag = "duty",
    security(
        ("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner", "device"]),
        ("device_key" = []),
    ),
    responses((status = 200, description = "the open escalation notices"), doc::E401, doc::E503))]
pub async fn open_escalations(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (_, person_id, operator) = acknowledger(&s, &headers, uri.query())?;
    let open = s.store.open_escalations().await.map_err(|e| ApiError::unavailable(&e))?;
    let mine: Vec<serde_json::Value> = open
        .iter()
        .rev()
        .filter(|e| {
            let addressed = e.person_id.is_some() && e.person_id == person_id;
            addressed || (operator && e.level == "command_centre")
        })
        .take(MAX_OPEN)
        .filter_map(|e| serde_json::from_str(&e.payload).ok())
        .collect();
    Ok(Json(serde_json::json!({ "escalations": mine })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_day_is_chinas() {
        // 2026-12-02T15:00Z is 23:00 in China: the day began at 2026-12-01T16:00Z.
        let t = 1_796_223_600_000;
        assert_eq!(china_day_start(t), 1_796_140_800_000);
        // 2026-12-02T16:00Z is midnight in China: a new day begins.
        assert_eq!(china_day_start(1_796_227_200_000), 1_796_227_200_000);
        assert_eq!(window(None, t).unwrap(), (1_796_140_800_000, 1_796_227_200_000));
        assert_eq!(window(Some("from=5&to=9&token=x"), t).unwrap(), (5, 9));
        assert_eq!(window(Some("from=9&to=5"), t).unwrap_err().message(), "to: must be after from");
        assert!(window(Some("from=5"), t).is_err());
    }
}
