//! The handover API (交接班): list, prepare, read, sign and accept the sheets a unit's
//! outgoing person hands to the incoming one. A handover is a record, like a person:
//! written straight to the store with its audit entry in one transaction.
//!
//! Who may see a handover: operators and administrators every one; a post officer
//! those of their own post; the two persons a handover names that one, whatever role
//! they signed in with (their list holds the handovers naming them). Anyone else is
//! answered as if it did not exist (list: 403, one: 404).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_store::{AuditEntry, HandoverFilter, HandoverRow, PersonRecord};
use serde::{Deserialize, Serialize};

use crate::auth::{require_user, Role, User};
use crate::error::ApiError;
use crate::handover::{prepare, Shift, Unit};
use crate::openapi as doc;
use crate::routes::{page_limit, read_json};
use crate::time_fmt::now_ms;
use crate::AppState;

/// Every role a person can sign in with: who may call at all; each handler then says
/// what the caller may do.
const PERSON_ROLES: [Role; 6] =
    [Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner];

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;
/// A request body: a few ids and times, or a note.
const MAX_BODY: usize = 8 * 1024;
/// The longest shift a sheet covers: a 24-hour duty with a day's slack.
const MAX_SHIFT_MS: i64 = 48 * 3_600_000;
/// The longest note with a signature or an acceptance, in characters.
const MAX_NOTE: usize = 500;

/// `POST /api/v1/handovers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrepareBody {
    unit_kind: String,
    #[serde(default)]
    unit_id: Option<String>,
    from_ms: i64,
    to_ms: i64,
    outgoing_person_id: String,
    incoming_person_id: String,
}

/// `POST /api/v1/handovers/{id}/sign` and `…/accept` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    #[serde(default)]
    note: Option<String>,
}

/// A handover as answered: the stored row and how far it has gone.
#[derive(Serialize)]
struct Answer<'a> {
    #[serde(flatten)]
    row: &'a HandoverRow,
    state: &'static str,
}

fn answer(row: &HandoverRow) -> Answer<'_> {
    Answer { row, state: row.state() }
}

/// Audits `user`'s read of the sheets `rows` when they list alerts about tagged persons
/// (a zone break, a camera's hit on a tagged person's entry, which the command centre's
/// sheet may hold unacknowledged): one entry for the request, filed under each person,
/// written before the answer is sent. The sheet keeps each alert's number and rule; the
/// person is read from the alert itself.
async fn audit_tagged_alerts(s: &AppState, user: &User, rows: &[&HandoverRow]) -> Result<(), ApiError> {
    let seqs: Vec<i64> = rows
        .iter()
        .filter_map(|h| h.sheet.pointer("/unacked_alerts/items").and_then(serde_json::Value::as_array))
        .flatten()
        .filter(|a| matches!(a["rule"].as_str(), Some("tagged_zone" | "watchlist_person")))
        .filter_map(|a| a["seq"].as_i64())
        .collect();
    let mut persons = Vec::new();
    for seq in &seqs {
        let alert = s.store.alert(*seq).await.map_err(|e| ApiError::unavailable(&e))?;
        persons.extend(alert.as_ref().and_then(crate::scope::tagged_subject));
    }
    let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
    let ids: Vec<String> = rows.iter().map(|h| h.handover_id.to_string()).collect();
    let what = format!("alert(s) {} on handover sheet(s) {}", list.join(", "), ids.join(", "));
    let role = user.role.as_str();
    let read = crate::scope::reads_entry(&user.name, role, "tagged_person_alert_read", &persons, &what, now_ms());
    if let Some((entry, subjects)) = read {
        s.store.audit_reads(&entry, &subjects).await.map_err(|e| ApiError::unavailable(&e))?;
    }
    Ok(())
}

/// The caller, who must be a person's role (a device's key and a missing or unknown token
/// are 401). Owned, so that this reads the same whether `require_user` answers the user
/// by reference or owned.
fn caller(s: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<User, ApiError> {
    let user = require_user(&s.tokens, headers, uri.query(), &PERSON_ROLES)?;
    Ok(user.to_owned())
}

fn whole_county(user: &User) -> bool {
    matches!(user.role, Role::Admin | Role::Operator)
}

/// The post a caller belongs to as one of its people: a post officer's unit.
fn own_post(user: &User) -> Option<&str> {
    (user.role == Role::PostOfficer).then_some(user.unit_id.as_deref()).flatten()
}

/// Whether `user` may read `h`: the whole county's roles, a person of its post, or one
/// of the two persons it names.
fn may_read(user: &User, h: &HandoverRow) -> bool {
    let named = user.person_id.as_deref().is_some_and(|p| p == h.outgoing_person_id || p == h.incoming_person_id);
    whole_county(user)
        || named
        || (h.unit_kind == "post" && own_post(user).is_some() && own_post(user) == h.unit_id.as_deref())
}

/// `GET /api/v1/handovers`: handovers newest first, a page at a time. Operators and
/// administrators list every unit's; a post officer only their own post's (a filter
/// naming another unit finds none); any other caller acting for a person (a patrol
/// leader, a grid member, a partner signed in as a person) those naming that person as
/// outgoing or incoming, so that the two persons of a sheet the roster prepared find
/// it; every other caller is refused (403), a device's key and a missing or unknown
/// token too (401). Query: `unit_kind` (`command_centre` or
/// `post`), `unit_id`, `state` (`prepared`, `signed`, `accepted`), `before` (the
/// previous page's last `handover_id`) and `limit` (1 to 100, default 20); the answer's
/// `next_before` is absent on the last page.
#[utoipa::path(get, path = "/api/v1/handovers", tag = "duty",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(
        ("unit_kind" = Option<String>, Query, description = "command_centre or post"),
        ("unit_id" = Option<String>, Query),
        ("state" = Option<String>, Query, description = "prepared, signed or accepted"),
        ("before" = Option<i64>, Query, description = "the previous page's last handover_id"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
    ),
    responses((status = 200, description = "a page of handovers"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = &caller(&s, &headers, &uri)?;
    if !whole_county(user) && own_post(user).is_none() && user.person_id.is_none() {
        return Err(ApiError::forbidden("authorization", format!("role {:?} may not list handovers", user.role)));
    }
    let mut f = filter(uri.query())?;
    if !whole_county(user) && own_post(user).is_none() {
        f.person_id = user.person_id.clone();
    }
    if let Some(post) = own_post(user).filter(|_| !whole_county(user)) {
        let other =
            f.unit_kind.as_deref().is_some_and(|k| k != "post") || f.unit_id.as_deref().is_some_and(|u| u != post);
        if other {
            return Ok(Json(serde_json::json!({ "handovers": [], "next_before": null })).into_response());
        }
        f.unit_kind = Some("post".into());
        f.unit_id = Some(post.to_owned());
    }
    let rows = s.store.handovers(&f).await.map_err(|e| ApiError::unavailable(&e))?;
    let next_before = (rows.len() == f.limit as usize).then(|| rows.last().map(|h| h.handover_id)).flatten();
    audit_tagged_alerts(&s, user, &rows.iter().collect::<Vec<_>>()).await?;
    let list: Vec<Answer<'_>> = rows.iter().map(answer).collect();
    Ok(Json(serde_json::json!({ "handovers": list, "next_before": next_before })).into_response())
}

/// The list's filters from the query, each checked.
fn filter(query: Option<&str>) -> Result<HandoverFilter, ApiError> {
    let mut f = HandoverFilter { limit: DEFAULT_PAGE, ..HandoverFilter::default() };
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "unit_kind" if v == "post" || v == "command_centre" => f.unit_kind = Some(v.into_owned()),
            "unit_kind" => return Err(ApiError::bad_request("unit_kind", "must be command_centre or post")),
            "unit_id" => f.unit_id = Some(v.into_owned()),
            "state" if ["prepared", "signed", "accepted"].contains(&&*v) => f.state = Some(v.into_owned()),
            "state" => return Err(ApiError::bad_request("state", "must be prepared, signed or accepted")),
            "before" => {
                f.before = Some(v.parse().map_err(|_| ApiError::bad_request("before", "must be a handover number"))?)
            }
            "limit" => f.limit = page_limit(&v, MAX_PAGE)?,
            // The bearer token may come in the query, as for every read.
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a filter of the handover list")),
        }
    }
    Ok(f)
}

/// `POST /api/v1/handovers`: prepares the sheet of a unit's shift from the store as it
/// is now and keeps it (201 with the handover), audited. Operators and administrators
/// prepare any unit's; a post officer their own post's (another post's: 403); every
/// other role is refused (403), a device's key and a missing or unknown token too (401).
/// Body: `unit_kind` (`command_centre` or `post`), `unit_id` (the post; absent for the
/// command centre), `from_ms` < `to_ms` at most 48 h apart, `outgoing_person_id` and
/// `incoming_person_id`: two different active persons of that unit.
#[utoipa::path(post, path = "/api/v1/handovers", tag = "duty",
    security(("bearer" = ["admin", "operator", "post_officer"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "the handover prepared"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E415,
        doc::E422, doc::E503,
    ))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = &caller(&s, &headers, &uri)?;
    if !whole_county(user) && own_post(user).is_none() {
        return Err(ApiError::forbidden("authorization", format!("role {:?} may not prepare handovers", user.role)));
    }
    let b: PrepareBody = read_json(&s, &headers, body, MAX_BODY).await?;
    let unit = check_unit(&s, &b)?;
    if !whole_county(user) && own_post(user) != unit.id() {
        return Err(ApiError::forbidden("unit_id", "a post officer prepares only their own post's handovers"));
    }
    if b.from_ms >= b.to_ms || b.to_ms - b.from_ms > MAX_SHIFT_MS || b.from_ms < 0 {
        return Err(ApiError::bad_request("to_ms", "must be after from_ms, at most 48 hours later"));
    }
    if b.outgoing_person_id == b.incoming_person_id {
        return Err(ApiError::unprocessable("incoming_person_id", "must be another person than the outgoing one"));
    }
    check_person(&s, &unit, "outgoing_person_id", &b.outgoing_person_id).await?;
    check_person(&s, &unit, "incoming_person_id", &b.incoming_person_id).await?;
    let shift = Shift {
        unit,
        from_ms: b.from_ms,
        to_ms: b.to_ms,
        outgoing_person_id: b.outgoing_person_id,
        incoming_person_id: b.incoming_person_id,
    };
    let row = prepare(&s, &shift, &user.name).await?;
    audit_tagged_alerts(&s, user, &[&row]).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "handover": answer(&row) }))).into_response())
}

/// The unit a prepare names: the command centre, or a post of the loaded map.
fn check_unit(s: &AppState, b: &PrepareBody) -> Result<Unit, ApiError> {
    match (b.unit_kind.as_str(), b.unit_id.as_deref()) {
        ("command_centre", None) => Ok(Unit::CommandCentre),
        ("command_centre", Some(_)) => Err(ApiError::bad_request("unit_id", "must be absent for the command centre")),
        ("post", None) => Err(ApiError::bad_request("unit_id", "is required for a post")),
        ("post", Some(id)) if s.map.posts.iter().any(|p| p.id == id) => Ok(Unit::Post(id.to_owned())),
        ("post", Some(id)) => Err(ApiError::unprocessable("unit_id", format!("no post {id:?} in the loaded map"))),
        _ => Err(ApiError::bad_request("unit_kind", "must be command_centre or post")),
    }
}

/// A person a handover names must exist, be active and belong to the unit.
async fn check_person(s: &AppState, unit: &Unit, field: &str, id: &str) -> Result<PersonRecord, ApiError> {
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::bad_request(field, "must be a person's id"));
    }
    let p = s.store.person(id).await.map_err(|e| ApiError::unavailable(&e))?;
    let p = p.ok_or_else(|| ApiError::unprocessable(field, format!("no person {id:?}")))?;
    if !p.active {
        return Err(ApiError::unprocessable(field, format!("{id} is deactivated")));
    }
    if p.unit_kind != unit.kind() || p.unit_id.as_deref() != unit.id() {
        return Err(ApiError::unprocessable(field, format!("{id} is not a person of this unit")));
    }
    Ok(p)
}

/// The handover `id` if `user` may read it; a missing one and one they may not see are
/// the same 404.
async fn readable(s: &AppState, user: &User, id: &str) -> Result<HandoverRow, ApiError> {
    let not_found = || ApiError::not_found(format!("no handover {id}"));
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let h = s.store.handover(n).await.map_err(|e| ApiError::unavailable(&e))?.ok_or_else(not_found)?;
    if may_read(user, &h) {
        Ok(h)
    } else {
        Err(not_found())
    }
}

/// `GET /api/v1/handovers/{id}`: one handover with its sheet. Operators and
/// administrators read any; a post officer their own post's; the outgoing and the
/// incoming person the one naming them; for anyone else it does not exist (404). A
/// device's key and a missing or unknown token are refused (401).
#[utoipa::path(get, path = "/api/v1/handovers/{id}", tag = "duty",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the handover with its sheet"), doc::E400, doc::E401, doc::E404, doc::E503))]
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = &caller(&s, &headers, &uri)?;
    let h = readable(&s, user, &id).await?;
    audit_tagged_alerts(&s, user, &[&h]).await?;
    Ok(Json(serde_json::json!({ "handover": answer(&h) })).into_response())
}

/// Which step of a handover a request takes.
#[derive(Clone, Copy)]
enum Step {
    Sign,
    Accept,
}

/// `POST /api/v1/handovers/{id}/sign`: the outgoing person signs the sheet, with an
/// optional `note` (body `{}` or `{"note": "…"}`), audited. Only the outgoing person
/// (a caller acting for that person) may; anyone else who may read it is refused (403),
/// for anyone who may not it does not exist (404); a device's key and a missing or
/// unknown token are refused (401). 409 when it is signed already.
#[utoipa::path(post, path = "/api/v1/handovers/{id}/sign", tag = "duty",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the handover signed"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E503,
    ))]
pub async fn sign(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    step(s, headers, uri, id, body, Step::Sign).await
}

/// `POST /api/v1/handovers/{id}/accept`: the incoming person accepts a signed sheet,
/// with an optional `note`, audited. Only the incoming person may; anyone else who may
/// read it is refused (403), for anyone who may not it does not exist (404); a device's
/// key and a missing or unknown token are refused (401). 409 before the outgoing person
/// signed, and when it is accepted already.
#[utoipa::path(post, path = "/api/v1/handovers/{id}/accept", tag = "duty",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the handover accepted"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E503,
    ))]
pub async fn accept(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    step(s, headers, uri, id, body, Step::Accept).await
}

async fn step(
    s: Arc<AppState>,
    headers: HeaderMap,
    uri: Uri,
    id: String,
    body: Body,
    step: Step,
) -> Result<Response, ApiError> {
    let user = &caller(&s, &headers, &uri)?;
    let h = readable(&s, user, &id).await?;
    let (person, action, verb) = match step {
        Step::Sign => (&h.outgoing_person_id, "handover_signed", "signs"),
        Step::Accept => (&h.incoming_person_id, "handover_accepted", "accepts"),
    };
    if user.person_id.as_deref() != Some(person.as_str()) {
        return Err(ApiError::forbidden("authorization", format!("only {person} {verb} this handover")));
    }
    let b: StepBody = read_json(&s, &headers, body, MAX_BODY).await?;
    let note = b.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(ApiError::bad_request("note", format!("must be at most {MAX_NOTE} characters")));
    }
    let now = now_ms();
    let audit = AuditEntry {
        at_ms: now,
        actor: user.name.clone(),
        action: action.into(),
        subject: format!("handover:{}", h.handover_id),
        detail: format!("{person}{}", note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()),
    };
    let store = &s.store;
    let done = match step {
        Step::Sign => store.sign_handover(h.handover_id, now, person, note.as_deref(), &audit).await,
        Step::Accept => store.accept_handover(h.handover_id, now, person, note.as_deref(), &audit).await,
    }
    .map_err(|e| ApiError::unavailable(&e))?;
    if !done {
        let reason = match (step, h.signed_ms.is_some()) {
            (Step::Sign, _) => "is signed already",
            (Step::Accept, false) => "must be signed by the outgoing person first",
            (Step::Accept, true) => "is accepted already",
        };
        return Err(ApiError::conflict("handover", reason));
    }
    tracing::info!(handover_id = h.handover_id, actor = %user.name, action, "handover step");
    let after = s.store.handover(h.handover_id).await.map_err(|e| ApiError::unavailable(&e))?;
    let after = after.ok_or_else(|| ApiError::not_found(format!("no handover {id}")))?;
    audit_tagged_alerts(&s, user, &[&after]).await?;
    Ok(Json(serde_json::json!({ "handover": answer(&after) })).into_response())
}
