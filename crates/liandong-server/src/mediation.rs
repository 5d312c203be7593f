//! The joint mediation centre's API (三调融合, issue 16): cases from grid members'
//! disputes, incidents sent to mediation and walk-ins; accepting a case (a mediator and
//! a venue), declining it, its sessions, its outcome and its follow-up; the venues of
//! the map's `venues` layer; statistics and the places of repeated disputes.
//!
//! A new case goes through the sequencer (its id is its alert's number, unique across
//! sources); each later step is a conditional update on the case's status written with
//! its audit entry. Reads are for partners, operators and administrators, and each is
//! audited: a case names its parties.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::{Datum, Position};
use liandong_store::{AuditEntry, CaseFilter, CaseOutcome, MediationCase, MediationSession};
use serde::{Deserialize, Serialize};

use crate::auth::{require_user, Role, User};
use crate::error::ApiError;
use crate::mediation_watch::{parties, step_due, PartyIn};
use crate::openapi as doc;
use crate::routes::{page_limit, read_json};
use crate::sequencer::CaseCommand;
use crate::AppState;

pub const DISPUTE_TYPES: [&str; 8] =
    ["neighbour", "family", "land", "labour", "consumer", "traffic", "property", "other"];
pub const MEDIATION_TYPES: [&str; 3] = ["people", "judicial", "administrative"];
const STATUSES: [&str; 5] = ["pending", "accepted", "mediated", "followed_up", "declined"];
const SOURCES: [&str; 3] = ["grid_report", "incident", "walk_in"];
const READERS: [Role; 3] = [Role::Partner, Role::Operator, Role::Admin];
const CASE_WORKERS: [Role; 2] = [Role::Partner, Role::Admin];
const BODY_BYTES: usize = 64 * 1024;

fn unavailable(e: liandong_store::StoreError) -> ApiError {
    ApiError::unavailable(&e)
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect()
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(field, format!("must be one of {}", allowed.join(", "))))
    }
}

/// Text of 1 to `max` characters (trimmed), or a 400 naming the field.
fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let t = value.trim();
    let n = t.chars().count();
    if n == 0 || n > max || t.contains('\0') {
        return Err(ApiError::bad_request(field, format!("must be 1 to {max} characters")));
    }
    Ok(t.to_owned())
}

/// An audit entry about one case (`Some`), or about a list of them (`None`).
fn entry(user: &User, action: &str, case_id: Option<i64>, detail: String, at_ms: i64) -> AuditEntry {
    AuditEntry {
        at_ms,
        actor: user.name.clone(),
        action: action.into(),
        subject: case_id.map_or_else(|| "mediation_cases".to_owned(), |id| format!("mediation_case:{id}")),
        detail,
    }
}

/// A session as a case shows it.
#[derive(Serialize)]
struct SessionView {
    session_no: i64,
    starts_ms: i64,
    starts: String,
    venue_id: Option<String>,
    place: Option<String>,
    note: String,
}

/// A case as the API answers it (the contract's case JSON).
#[derive(Serialize)]
struct CaseView {
    #[serde(flatten)]
    case: MediationCase,
    mediator_name: Option<String>,
    opened: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<SessionView>>,
    due_ms: Option<i64>,
    overdue: bool,
    turned_criminal: Vec<i64>,
}

/// Builds the answers for `cases`, with their mediators' names and their links to
/// criminal incidents (and sessions, for one case).
async fn views(
    s: &AppState,
    cases: Vec<MediationCase>,
    sessions: Option<Vec<MediationSession>>,
) -> Result<Vec<CaseView>, ApiError> {
    let now = s.config.clock.now_ms();
    let (first, last) = (cases.iter().map(|c| c.case_id).min(), cases.iter().map(|c| c.case_id).max());
    let links = match (first, last) {
        (Some(a), Some(b)) => s.store.dispute_links(a, b).await.map_err(unavailable)?,
        _ => Vec::new(),
    };
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::with_capacity(cases.len());
    let mut sessions = sessions;
    for case in cases {
        let mediator_name = match &case.mediator_id {
            None => None,
            Some(id) => match names.get(id) {
                Some(n) => n.clone(),
                None => {
                    let n = s.store.person(id).await.map_err(unavailable)?.map(|p| p.name);
                    names.insert(id.clone(), n.clone());
                    n
                }
            },
        };
        let due = step_due(&s.config.mediation, &case).map(|(_, due)| due);
        let mut turned: Vec<i64> = links.iter().filter(|l| l.case_id == case.case_id).map(|l| l.incident_id).collect();
        turned.dedup();
        let sessions = sessions.take().map(|list| {
            list.into_iter()
                .map(|x| SessionView {
                    session_no: x.session_no,
                    starts_ms: x.starts_ms,
                    starts: crate::time_fmt::rfc3339_ms(x.starts_ms),
                    venue_id: x.venue_id,
                    place: x.place,
                    note: x.note,
                })
                .collect()
        });
        out.push(CaseView {
            opened: crate::time_fmt::rfc3339_ms(case.opened_ms),
            mediator_name,
            sessions,
            due_ms: due,
            overdue: due.is_some_and(|d| d < now),
            turned_criminal: turned,
            case,
        });
    }
    Ok(out)
}

/// One case with its sessions, as the answer to a step.
async fn one(s: &AppState, case_id: i64) -> Result<CaseView, ApiError> {
    let case = s
        .store
        .mediation_case(case_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("no mediation case {case_id}")))?;
    let sessions = s.store.mediation_sessions(case_id).await.map_err(unavailable)?;
    let mut v = views(s, vec![case], Some(sessions)).await?;
    v.pop().ok_or_else(|| ApiError::internal(&"a case read returned nothing"))
}

/// `GET /api/v1/mediation?status=&source=&mediator_id=&mine=true&limit=&before=`: cases,
/// newest first (partners, operators, administrators).
#[utoipa::path(get, path = "/api/v1/mediation", tag = "mediation",
    security(("bearer" = ["partner", "operator", "admin"])),
    params(
        ("status" = Option<String>, Query), ("source" = Option<String>, Query), ("mediator_id" = Option<String>, Query),
        ("mine" = Option<bool>, Query),
        ("before" = Option<i64>, Query, description = "the previous page's last case_id"),
        ("limit" = Option<u32>, Query, description = "1 to 500"),
    ),
    responses((status = 200, description = "a page of cases"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list_mediation(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let mut f = CaseFilter { limit: 100, ..CaseFilter::default() };
    for (k, v) in query(&uri) {
        match k.as_str() {
            "status" => {
                one_of("status", &v, &STATUSES)?;
                f.status = Some(v);
            }
            "source" => {
                one_of("source", &v, &SOURCES)?;
                f.source = Some(v);
            }
            "mediator_id" => f.mediator_id = Some(v),
            "mine" if v == "true" => {
                let me = user.person_id.clone();
                f.mediator_id = Some(me.ok_or_else(|| ApiError::bad_request("mine", "the caller is no person"))?);
            }
            "limit" => f.limit = page_limit(&v, 500)?,
            "before" => f.before = Some(v.parse().map_err(|_| ApiError::bad_request("before", "must be a case id"))?),
            _ => {}
        }
    }
    let cases = s.store.mediation_list(&f).await.map_err(unavailable)?;
    let now = s.config.clock.now_ms();
    let detail = format!("listed {} cases", cases.len());
    s.store.audit(&[entry(&user, "mediation_cases_read", None, detail, now)]).await.map_err(unavailable)?;
    let next = (cases.len() == f.limit as usize).then(|| cases.last().map(|c| c.case_id)).flatten();
    let cases = views(&s, cases, None).await?;
    Ok(Json(serde_json::json!({ "cases": cases, "next_before": next })).into_response())
}

/// `GET /api/v1/mediation/{id}`: one case with its sessions.
#[utoipa::path(get, path = "/api/v1/mediation/{case_id}", tag = "mediation",
    security(("bearer" = ["partner", "operator", "admin"])), params(("case_id" = i64, Path)),
    responses((status = 200, description = "the case with its sessions"), doc::E401, doc::E403, doc::E404, doc::E503))]
pub async fn get_case(
    State(s): State<Arc<AppState>>,
    Path(case_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let view = one(&s, case_id).await?;
    let now = s.config.clock.now_ms();
    s.store
        .audit(&[entry(&user, "mediation_case_read", Some(case_id), String::new(), now)])
        .await
        .map_err(unavailable)?;
    Ok(Json(view).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WalkIn {
    dispute_type: String,
    summary: String,
    parties: Vec<PartyIn>,
    lon: f64,
    lat: f64,
    #[serde(default)]
    datum: Option<String>,
}

/// Registers a case through the sequencer and answers it (201).
async fn register(s: &AppState, case: MediationCase, position: Position) -> Result<Response, ApiError> {
    let cmd = CaseCommand::Register { case: Box::new(case), position };
    let case_id = s.ingest.submit_case(cmd).await?;
    tracing::info!(case_id, "mediation case registered");
    Ok((StatusCode::CREATED, Json(one(s, case_id).await?)).into_response())
}

/// A new case's row (its id is given by the sequencer).
fn new_case(s: &AppState, source: &str, position: Position, filed_by: &str) -> MediationCase {
    let place = s.enricher.enrich(position);
    let place = serde_json::to_value(s.enricher.view(&place, &[], &[])).unwrap_or_default();
    let mut case = MediationCase::of_report(&liandong_store::GridReport {
        report_id: 0,
        reporter: filed_by.to_owned(),
        category: "dispute".into(),
        text: String::new(),
        lon: position.lon(),
        lat: position.lat(),
        time_ms: 0,
        recv_ms: s.config.clock.now_ms(),
        enrichment: place,
        photos: 0,
        status: "new".into(),
        photo_urls: Vec::new(),
    });
    case.source = source.to_owned();
    case.report_id = None;
    case
}

/// `POST /api/v1/mediation`: a walk-in dispute at the centre or a post (partners, post
/// officers, operators, administrators) → 201 case.
#[utoipa::path(post, path = "/api/v1/mediation", tag = "mediation",
    security(("bearer" = ["partner", "post_officer", "operator", "admin"])),
    request_body(content = crate::mediation::WalkIn, content_type = "application/json"),
    responses(
        (status = 201, description = "the case"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E415, doc::E422,
        doc::E503,
    ))]
pub async fn walk_in(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(
        &s.tokens,
        &headers,
        uri.query(),
        &[Role::Partner, Role::PostOfficer, Role::Operator, Role::Admin],
    )?;
    let w: WalkIn = read_json(&s, &headers, body, BODY_BYTES).await?;
    one_of("dispute_type", &w.dispute_type, &DISPUTE_TYPES)?;
    let summary = text("summary", &w.summary, 2000)?;
    let parties = parties("parties", &w.parties)?;
    if parties.is_empty() {
        return Err(ApiError::bad_request("parties", "a dispute has at least one party"));
    }
    let datum = match w.datum.as_deref() {
        None => Datum::Wgs84,
        Some(d) => Datum::parse(d).ok_or_else(|| ApiError::bad_request("datum", "must be wgs84, gcj02 or bd09"))?,
    };
    let position = datum.to_wgs84(w.lon, w.lat).map_err(|e| ApiError::bad_request(e.field(), e.to_string()))?;
    let case = MediationCase {
        dispute_type: w.dispute_type,
        summary,
        parties,
        ..new_case(&s, "walk_in", position, &user.name)
    };
    register(&s, case, position).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendToMediation {
    dispute_type: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    parties: Vec<PartyIn>,
}

/// `POST /api/v1/incidents/{id}/mediation`: sends an incident to mediation (operators,
/// administrators) → 201 case at the incident's place; 409 when it has a case.
#[utoipa::path(post, path = "/api/v1/incidents/{incident_id}/mediation", tag = "mediation",
    security(("bearer" = ["operator", "admin"])), params(("incident_id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "the case"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409, doc::E413,
        doc::E415, doc::E422, doc::E503,
    ))]
pub async fn send_incident(
    State(s): State<Arc<AppState>>,
    Path(incident_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin])?;
    let r: SendToMediation = read_json(&s, &headers, body, BODY_BYTES).await?;
    one_of("dispute_type", &r.dispute_type, &DISPUTE_TYPES)?;
    let parties = parties("parties", &r.parties)?;
    let (incident, _) = s
        .store
        .incident(incident_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::not_found(format!("no incident {incident_id}")))?;
    let summary = match r.summary.as_deref() {
        Some(t) => text("summary", t, 2000)?,
        None => incident.title.clone(),
    };
    let f = CaseFilter { incident_id: Some(incident_id), limit: 1, ..CaseFilter::default() };
    if let Some(c) = s.store.mediation_list(&f).await.map_err(unavailable)?.first() {
        return Err(ApiError::conflict("incident_id", format!("incident {incident_id} is case {}", c.case_id)));
    }
    let position = Position::new(incident.lon, incident.lat).map_err(|e| ApiError::internal(&e))?;
    let case = MediationCase {
        incident_id: Some(incident_id),
        dispute_type: r.dispute_type,
        summary,
        parties,
        ..new_case(&s, "incident", position, &user.name)
    };
    register(&s, case, position).await
}

/// The case's current status for a 409, or 404 when there is no such case.
async fn wrong_state(s: &AppState, case_id: i64, wanted: &str) -> ApiError {
    match s.store.mediation_case(case_id).await {
        Ok(Some(c)) => ApiError::conflict("status", format!("case {case_id} is {}, not {wanted}", c.status)),
        Ok(None) => ApiError::not_found(format!("no mediation case {case_id}")),
        Err(e) => ApiError::unavailable(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Accept {
    mediator_id: String,
    venue_id: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/mediation/{id}/accept`: a pending case gets its mediator (an active
/// person with role partner) and venue (one of the map's venues).
#[utoipa::path(post, path = "/api/v1/mediation/{case_id}/accept", tag = "mediation",
    security(("bearer" = ["partner", "admin"])), params(("case_id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the case accepted"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E422, doc::E503,
    ))]
pub async fn accept(
    State(s): State<Arc<AppState>>,
    Path(case_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &CASE_WORKERS)?;
    let a: Accept = read_json(&s, &headers, body, BODY_BYTES).await?;
    let mediator = s.store.person(a.mediator_id.trim()).await.map_err(unavailable)?;
    match mediator {
        Some(p) if p.active && p.roles.iter().any(|r| r == "partner") => {}
        _ => return Err(ApiError::bad_request("mediator_id", "must be an active person with role partner")),
    }
    if !s.map.venues.iter().any(|v| v.id == a.venue_id) {
        return Err(ApiError::bad_request("venue_id", "must be one of GET /api/v1/mediation/venues"));
    }
    let now = s.config.clock.now_ms();
    let detail = format!("mediator {} venue {} {}", a.mediator_id.trim(), a.venue_id, a.note.unwrap_or_default());
    let audit = entry(&user, "mediation_case_accepted", Some(case_id), detail, now);
    let done = s
        .store
        .accept_mediation(case_id, a.mediator_id.trim(), &a.venue_id, &user.name, now, &audit)
        .await
        .map_err(unavailable)?;
    if !done {
        return Err(wrong_state(&s, case_id, "pending").await);
    }
    Ok(Json(one(&s, case_id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decline {
    reason: String,
}

/// `POST /api/v1/mediation/{id}/decline`: a pending or accepted case is not mediated here.
#[utoipa::path(post, path = "/api/v1/mediation/{case_id}/decline", tag = "mediation",
    security(("bearer" = ["partner", "admin"])), params(("case_id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the case declined"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E503,
    ))]
pub async fn decline(
    State(s): State<Arc<AppState>>,
    Path(case_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &CASE_WORKERS)?;
    let d: Decline = read_json(&s, &headers, body, BODY_BYTES).await?;
    let reason = text("reason", &d.reason, 500)?;
    let now = s.config.clock.now_ms();
    let audit = entry(&user, "mediation_case_declined", Some(case_id), reason.clone(), now);
    if !s.store.decline_mediation(case_id, &reason, &user.name, now, &audit).await.map_err(unavailable)? {
        return Err(wrong_state(&s, case_id, "pending or accepted").await);
    }
    Ok(Json(one(&s, case_id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSession {
    starts: serde_json::Value,
    #[serde(default)]
    venue_id: Option<String>,
    /// Where, when not at a venue: a text, or a JSON object kept as its text.
    #[serde(default)]
    place: Option<serde_json::Value>,
    #[serde(default)]
    note: String,
}

/// A time given as RFC 3339 or unix milliseconds.
fn time_of(field: &str, v: &serde_json::Value) -> Result<i64, ApiError> {
    match v {
        serde_json::Value::Number(n) => {
            n.as_i64().ok_or_else(|| ApiError::bad_request(field, "must be unix milliseconds"))
        }
        serde_json::Value::String(t) => {
            liandong_ingest::parse_timestamp(t).map_err(|e| ApiError::bad_request(field, e))
        }
        _ => Err(ApiError::bad_request(field, "must be RFC 3339 or unix milliseconds")),
    }
}

/// `POST /api/v1/mediation/{id}/sessions`: a session of an accepted case.
#[utoipa::path(post, path = "/api/v1/mediation/{case_id}/sessions", tag = "mediation",
    security(("bearer" = ["partner", "admin"])), params(("case_id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the case with the session"), doc::E400, doc::E401, doc::E403, doc::E404,
        doc::E409, doc::E413, doc::E415, doc::E503,
    ))]
pub async fn add_session(
    State(s): State<Arc<AppState>>,
    Path(case_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &CASE_WORKERS)?;
    let n: NewSession = read_json(&s, &headers, body, BODY_BYTES).await?;
    let starts_ms = time_of("starts", &n.starts)?;
    if let Some(v) = &n.venue_id {
        if !s.map.venues.iter().any(|x| x.id == *v) {
            return Err(ApiError::bad_request("venue_id", "must be one of GET /api/v1/mediation/venues"));
        }
    }
    let place = match n.place {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(p)) => Some(text("place", &p, 200)?),
        Some(v @ serde_json::Value::Object(_)) if v.to_string().len() <= 2000 => Some(v.to_string()),
        Some(_) => return Err(ApiError::bad_request("place", "must be a text or an object of at most 2000 bytes")),
    };
    if n.note.chars().count() > 2000 || n.note.contains('\0') {
        return Err(ApiError::bad_request("note", "must be at most 2000 characters"));
    }
    let now = s.config.clock.now_ms();
    let session = MediationSession {
        case_id,
        session_no: 0,
        starts_ms,
        venue_id: n.venue_id,
        place,
        note: n.note.trim().to_owned(),
        recorded_by: user.name.clone(),
        recorded_ms: now,
    };
    let audit = entry(&user, "mediation_session_added", Some(case_id), format!("starts {starts_ms}"), now);
    if s.store.add_mediation_session(&session, &audit).await.map_err(unavailable)?.is_none() {
        return Err(wrong_state(&s, case_id, "accepted").await);
    }
    Ok(Json(one(&s, case_id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcome {
    mediation_type: String,
    outcome: String,
    success: bool,
}

/// `POST /api/v1/mediation/{id}`: records how a dispute was mediated, from pending (the
/// old clients' way) or accepted; the follow-up is due `follow_up_within_days` later.
#[utoipa::path(post, path = "/api/v1/mediation/{case_id}", tag = "mediation",
    security(("bearer" = ["partner", "operator", "admin"])), params(("case_id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the case mediated"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E422, doc::E503,
    ))]
pub async fn close_mediation(
    State(s): State<Arc<AppState>>,
    Path(case_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let o: Outcome = read_json(&s, &headers, body, BODY_BYTES).await?;
    one_of("mediation_type", &o.mediation_type, &MEDIATION_TYPES)?;
    if o.outcome.trim().is_empty() {
        return Err(ApiError::bad_request("outcome", "must say how the dispute ended"));
    }
    let outcome = text("outcome", &o.outcome, 2000)?;
    let now = s.config.clock.now_ms();
    let due = now + i64::from(s.config.mediation.follow_up_within_days) * 86_400_000;
    let record = CaseOutcome {
        mediation_type: &o.mediation_type,
        outcome: &outcome,
        success: o.success,
        by: &user.name,
        at_ms: now,
        follow_up_due_ms: Some(due),
    };
    let detail = format!("{} success={}", o.mediation_type, o.success);
    let audit = entry(&user, "mediation_case_mediated", Some(case_id), detail, now);
    if !s.store.close_mediation(case_id, &record, &audit).await.map_err(unavailable)? {
        return Err(wrong_state(&s, case_id, "pending or accepted").await);
    }
    Ok(Json(one(&s, case_id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUp {
    note: String,
}

/// `POST /api/v1/mediation/{id}/follow-up`: the follow-up (回访) of a mediated case.
#[utoipa::path(post, path = "/api/v1/mediation/{case_id}/follow-up", tag = "mediation",
    security(("bearer" = ["partner", "admin"])), params(("case_id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the case followed up"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E503,
    ))]
pub async fn follow_up(
    State(s): State<Arc<AppState>>,
    Path(case_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &CASE_WORKERS)?;
    let f: FollowUp = read_json(&s, &headers, body, BODY_BYTES).await?;
    let note = text("note", &f.note, 2000)?;
    let now = s.config.clock.now_ms();
    let audit = entry(&user, "mediation_case_followed_up", Some(case_id), String::new(), now);
    if !s.store.follow_up_mediation(case_id, &note, &user.name, now, &audit).await.map_err(unavailable)? {
        return Err(wrong_state(&s, case_id, "mediated").await);
    }
    Ok(Json(one(&s, case_id).await?).into_response())
}

/// `GET /api/v1/mediation/venues`: the map's mediation venues.
#[utoipa::path(get, path = "/api/v1/mediation/venues", tag = "mediation",
    security(("bearer" = ["partner", "post_officer", "operator", "admin"])),
    responses((status = 200, description = "the map's mediation venues"), doc::E401, doc::E403))]
pub async fn venues(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Partner, Role::PostOfficer, Role::Operator, Role::Admin])?;
    let venues: Vec<serde_json::Value> = s
        .map
        .venues
        .iter()
        .map(|v| {
            serde_json::json!({"venue_id": v.id, "name": v.name, "kind": v.kind, "lon": v.point.x(), "lat": v.point.y()})
        })
        .collect();
    Ok(Json(serde_json::json!({ "venues": venues })).into_response())
}

/// A group's counts: cases, agreements, and agreements among the cases with an outcome.
#[derive(Default)]
struct Group {
    count: usize,
    outcomes: usize,
    agreements: usize,
}

fn groups(cases: &[MediationCase], key: impl Fn(&MediationCase) -> Option<String>) -> Vec<serde_json::Value> {
    let mut by: BTreeMap<String, Group> = BTreeMap::new();
    for c in cases {
        let Some(k) = key(c) else { continue };
        let g = by.entry(k).or_default();
        g.count += 1;
        g.outcomes += usize::from(c.success.is_some());
        g.agreements += usize::from(c.success == Some(true));
    }
    by.into_iter()
        .map(|(k, g)| {
            let rate = (g.outcomes > 0).then(|| g.agreements as f64 / g.outcomes as f64);
            serde_json::json!({"key": k, "count": g.count, "agreements": g.agreements, "success_rate": rate})
        })
        .collect()
}

/// The centre's statistics over the cases opened in `[from_ms, to_ms]` (the contract's
/// `GET /api/v1/mediation/statistics`).
pub async fn case_statistics(s: &AppState, from_ms: i64, to_ms: i64) -> Result<serde_json::Value, ApiError> {
    let cases = s.store.mediation_facts(from_ms, to_ms).await.map_err(unavailable)?;
    let (overdue, turned_criminal) = s.store.mediation_flags(from_ms, to_ms).await.map_err(unavailable)?;
    let outcomes = cases.iter().filter(|c| c.success.is_some()).count();
    let agreements = cases.iter().filter(|c| c.success == Some(true)).count();
    let secs: Vec<f64> = cases
        .iter()
        .filter(|c| c.success.is_some())
        .filter_map(|c| c.closed_ms.map(|t| (t - c.opened_ms) as f64 / 1000.0))
        .collect();
    let resolution = liandong_core::stats::summarize(&secs).map(|d| {
        serde_json::json!({"count": d.count, "mean_s": d.mean_s, "median_s": d.median_s, "p90_s": d.p90_s, "max_s": d.max_s})
    });
    Ok(serde_json::json!({
        "cases": cases.len(),
        "by_status": groups(&cases, |c| Some(c.status.clone())),
        "by_type": groups(&cases, |c| Some(c.dispute_type.clone())),
        "by_source": groups(&cases, |c| Some(c.source.clone())),
        "by_venue": groups(&cases, |c| c.venue_id.clone()),
        "by_mediator": groups(&cases, |c| c.mediator_id.clone()),
        "success_rate": (outcomes > 0).then(|| agreements as f64 / outcomes as f64),
        "resolution_s": resolution,
        "overdue": overdue,
        "turned_criminal": turned_criminal,
    }))
}

/// `from` and `to` of a statistics query (RFC 3339 or unix ms; default everything).
pub fn range(uri: &Uri) -> Result<(i64, i64), ApiError> {
    let (mut from, mut to) = (0i64, i64::MAX);
    for (k, v) in query(uri) {
        let t = || liandong_ingest::parse_timestamp(&v).map_err(|e| ApiError::bad_request(k.clone(), e));
        match k.as_str() {
            "from" => from = t()?,
            "to" => to = t()?,
            _ => {}
        }
    }
    if from > to {
        return Err(ApiError::bad_request("from", "is after to"));
    }
    Ok((from, to))
}

/// `GET /api/v1/mediation/statistics?from=&to=`.
#[utoipa::path(get, path = "/api/v1/mediation/statistics", tag = "mediation",
    summary = "Mediation counts and success rate over a period",
    security(("bearer" = ["partner", "operator", "admin"])),
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
    ),
    responses((status = 200, description = "the counts"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn statistics(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let (from, to) = range(&uri)?;
    Ok(Json(case_statistics(&s, from, to).await?).into_response())
}

/// At most this many places are answered, and this many cases read for them.
const MAX_PLACES: usize = 100;
const MAX_PLACE_CASES: u32 = 2000;

/// `GET /api/v1/mediation/places?days=180&min=2`: places where disputes repeat: cases
/// opened in the last `days` gathered greedily around the first case of each place
/// within `repeat_radius_m`, those with at least `min` cases, most first.
#[utoipa::path(get, path = "/api/v1/mediation/places", tag = "mediation",
    security(("bearer" = ["partner", "operator", "admin"])),
    params(
        ("days" = Option<u32>, Query, description = "default 180"),
        ("min" = Option<u32>, Query, description = "default 2"),
    ),
    responses(
        (status = 200, description = "the places of repeated disputes"), doc::E400, doc::E401, doc::E403, doc::E503,
    ))]
pub async fn places(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let (mut days, mut min) = (180u32, 2usize);
    for (k, v) in query(&uri) {
        match k.as_str() {
            "days" => {
                days = v
                    .parse()
                    .ok()
                    .filter(|d| (1..=3650).contains(d))
                    .ok_or_else(|| ApiError::bad_request("days", "must be 1 to 3650"))?
            }
            "min" => {
                min = v
                    .parse()
                    .ok()
                    .filter(|m| (1..=1000).contains(m))
                    .ok_or_else(|| ApiError::bad_request("min", "must be 1 to 1000"))?
            }
            _ => {}
        }
    }
    let now = s.config.clock.now_ms();
    let since = now - i64::from(days) * 86_400_000;
    let f = CaseFilter { limit: MAX_PLACE_CASES, ..CaseFilter::default() };
    let cases: Vec<MediationCase> =
        s.store.mediation_list(&f).await.map_err(unavailable)?.into_iter().filter(|c| c.opened_ms >= since).collect();
    let radius_m = s.config.mediation.repeat_radius_m;
    let mut spots: Vec<(Position, Vec<&MediationCase>)> = Vec::new();
    for c in &cases {
        let Ok(p) = Position::new(c.lon, c.lat) else { continue };
        match spots.iter_mut().find(|(centre, _)| centre.haversine_m(p) <= radius_m) {
            Some((_, list)) => list.push(c),
            None => spots.push((p, vec![c])),
        }
    }
    spots.retain(|(_, list)| list.len() >= min);
    spots.sort_by_key(|(_, list)| std::cmp::Reverse(list.len()));
    spots.truncate(MAX_PLACES);
    let places: Vec<serde_json::Value> = spots
        .iter()
        .map(|(p, list)| {
            serde_json::json!({
                "lon": p.lon(), "lat": p.lat(), "count": list.len(),
                "place": list[0].place,
                "case_ids": list.iter().take(20).map(|c| c.case_id).collect::<Vec<_>>(),
                "last_ms": list.iter().map(|c| c.opened_ms).max(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "places": places, "radius_m": radius_m, "days": days })).into_response())
}
