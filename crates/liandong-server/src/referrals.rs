//! After-hours referrals to the judicial office (8小时外、周末节假日转办): a post
//! registers a person's legal business when the office is closed, and the office finds
//! it waiting when it next opens. A referral is a record, like a handover: written
//! straight to the store with its audit entry in one transaction.
//!
//! The office's hours (`[judicial_office]`, China time, with public holidays and make-up
//! working days) decide when the office is handed a referral (`handed_ms`: at once when
//! open, else its next opening) and by when it should take it up (`due_ms`:
//! `take_up_within_h` office hours later). Both are read from the deadline clock,
//! `config.clock`, which a test sets by hand.
//!
//! Who may see a referral: operators and administrators every one; a post officer those
//! of their own post; the judicial office (role partner) those it has been handed (not
//! the waiting ones: for the office they do not exist yet). Anyone else is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::stats;
use liandong_store::{AuditEntry, ReferralFilter, ReferralRow};
use serde::{Deserialize, Serialize};

use crate::auth::{require_user, Role, User};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::{page_limit, read_json};
use crate::AppState;

pub const BUSINESSES: [&str; 6] =
    ["legal_consultation", "legal_aid", "mediation_request", "correction_report", "notarization", "other"];
const STATUSES: [&str; 4] = ["waiting", "handed", "taken", "done"];
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;
/// A request body: a person, a summary, a note.
const MAX_BODY: usize = 16 * 1024;
const MAX_SUMMARY: usize = 2000;
/// The most referrals a statistics answer counts (a county registers a few a day).
const MAX_COUNTED: u32 = 20_000;

/// A person a referral or home visit is about, as given and as answered.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// `POST /api/v1/referrals` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReferral {
    business: String,
    person: PersonBody,
    summary: String,
    /// The registering post: a post officer's own (may be left out); required of
    /// operators and administrators.
    #[serde(default)]
    post_id: Option<String>,
}

/// `POST /api/v1/referrals/{id}/done` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DoneBody {
    note: String,
}

/// A referral as answered (the contract's JSON).
#[derive(Serialize)]
struct Answer<'a> {
    referral_id: i64,
    business: &'a str,
    person: PersonBody,
    summary: &'a str,
    post_id: &'a str,
    registered_by: &'a str,
    registered_ms: i64,
    handed_ms: i64,
    due_ms: i64,
    status: &'static str,
    taken_ms: Option<i64>,
    taken_by: Option<&'a str>,
    done_ms: Option<i64>,
    note: Option<&'a str>,
    overdue: bool,
}

/// Whether a referral is (or was) late: taken up after its due time, or not taken up
/// and past it now.
fn overdue(r: &ReferralRow, now_ms: i64) -> bool {
    r.taken_ms.unwrap_or(now_ms) > r.due_ms
}

fn answer(r: &ReferralRow, now_ms: i64) -> Answer<'_> {
    Answer {
        referral_id: r.referral_id,
        business: &r.business,
        person: PersonBody { name: r.person_name.clone(), phone: r.person_phone.clone() },
        summary: &r.summary,
        post_id: &r.post_id,
        registered_by: &r.registered_by,
        registered_ms: r.registered_ms,
        handed_ms: r.handed_ms,
        due_ms: r.due_ms,
        status: r.status(now_ms),
        taken_ms: r.taken_ms,
        taken_by: r.taken_by.as_deref(),
        done_ms: r.done_ms,
        note: r.note.as_deref(),
        overdue: overdue(r, now_ms),
    }
}

/// A text field trimmed and checked: 1 to `max` characters, no U+0000 (which
/// PostgreSQL cannot store).
pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    let n = v.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::bad_request(field, format!("must be 1 to {max} characters")));
    }
    if v.contains('\0') {
        return Err(ApiError::bad_request(field, "must not contain U+0000"));
    }
    Ok(v.to_owned())
}

/// A person's name and phone, checked; `phone_required` for a home visit.
pub(crate) fn person(p: &PersonBody, phone_required: bool) -> Result<(String, Option<String>), ApiError> {
    let name = text("person.name", &p.name, 50)?;
    let phone = match p.phone.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None if phone_required => return Err(ApiError::bad_request("person.phone", "is required")),
        None => None,
        Some(t) if t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit() || b"+- ".contains(&b)) => Some(t.to_owned()),
        Some(_) => return Err(ApiError::bad_request("person.phone", "must be at most 20 digits, +, - or spaces")),
    };
    Ok((name, phone))
}

/// The caller as a user: a user token, or a phone's key when the phone is bound to an
/// active person, for a device's key acts for its person (`devices::actor`): it is that
/// person, with the first of `roles` the person holds (and their unit). A phone bound to
/// nobody, or to a person holding none of `roles`, is refused (403).
pub(crate) async fn caller(s: &AppState, headers: &HeaderMap, uri: &Uri, roles: &[Role]) -> Result<User, ApiError> {
    let token = crate::auth::bearer(headers, uri.query());
    let device = token.as_deref().filter(|t| s.tokens.user(t).is_none()).and_then(|t| {
        let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
        devices.by_key(t).map(|d| (d.device_id.clone(), d.person_id.clone()))
    });
    let Some((device_id, person_id)) = device else {
        return require_user(&s.tokens, headers, uri.query(), roles);
    };
    let refused =
        || ApiError::forbidden("authorization", format!("phone {device_id} acts for no person who may do this"));
    let person_id = person_id.ok_or_else(refused)?;
    let p = s.store.person(&person_id).await.map_err(|e| ApiError::unavailable(&e))?;
    let p = p.filter(|p| p.active).ok_or_else(refused)?;
    let role = roles.iter().copied().find(|r| p.roles.iter().any(|held| held == r.as_str())).ok_or_else(refused)?;
    Ok(User { name: format!("person:{person_id}"), role, unit_id: p.unit_id, person_id: Some(person_id) })
}

fn own_post(user: &User) -> Option<&str> {
    (user.role == Role::PostOfficer).then_some(user.unit_id.as_deref()).flatten()
}

/// `POST /api/v1/referrals`: registers a referral (201 with it), audited. A post
/// officer registers for their own post; operators and administrators name the post
/// (`post_id`, a post of the loaded map). Registered while the judicial office is
/// closed, it waits (`status` `waiting`) until the office opens (`handed_ms`); its
/// `due_ms` is `judicial_office.take_up_within_h` office hours after that. Other roles
/// are refused (403), a missing or unknown token too (401).
#[utoipa::path(post, path = "/api/v1/referrals", tag = "referrals",
    security(("bearer" = ["post_officer", "operator", "admin"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "the referral"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E415, doc::E422,
        doc::E503,
    ))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::PostOfficer, Role::Operator, Role::Admin])?;
    let b: NewReferral = read_json(&s, &headers, body, MAX_BODY).await?;
    if !BUSINESSES.contains(&b.business.as_str()) {
        return Err(ApiError::bad_request("business", format!("must be one of {}", BUSINESSES.join(", "))));
    }
    let (name, phone) = person(&b.person, false)?;
    let summary = text("summary", &b.summary, MAX_SUMMARY)?;
    let post_id = match (own_post(&user), b.post_id) {
        (Some(own), Some(p)) if p != own => {
            return Err(ApiError::forbidden("post_id", "a post officer registers only for their own post"))
        }
        (Some(own), _) => own.to_owned(),
        (None, None) if user.role == Role::PostOfficer => {
            return Err(ApiError::forbidden("authorization", "a post officer without a post registers nothing"))
        }
        (None, None) => return Err(ApiError::bad_request("post_id", "is required")),
        (None, Some(p)) => p,
    };
    if !s.map.posts.iter().any(|p| p.id == post_id) {
        return Err(ApiError::unprocessable("post_id", format!("no post {post_id:?} in the loaded map")));
    }
    let office = s.config.judicial_office.office_hours().map_err(|e| ApiError::internal(&e))?;
    let now = s.config.clock.now_ms();
    let handed_ms = office.open_at_or_after(now).unwrap_or(now);
    let take_up_ms = s.config.judicial_office.take_up_ms();
    let due_ms = office.after_office_ms(handed_ms, take_up_ms).unwrap_or(handed_ms + take_up_ms);
    let mut row = ReferralRow {
        referral_id: 0,
        business: b.business,
        person_name: name,
        person_phone: phone,
        summary,
        post_id,
        registered_by: user.name.clone(),
        registered_ms: now,
        handed_ms,
        due_ms,
        taken_ms: None,
        taken_by: None,
        done_ms: None,
        done_by: None,
        note: None,
    };
    let audit = AuditEntry {
        at_ms: now,
        actor: user.name.clone(),
        action: "referral_registered".into(),
        subject: String::new(),
        detail: format!("{} for post {}, handed at {handed_ms}", row.business, row.post_id),
    };
    row.referral_id = s.store.insert_referral(&row, &audit).await.map_err(|e| ApiError::unavailable(&e))?;
    tracing::info!(referral_id = row.referral_id, post_id = %row.post_id, waiting = handed_ms > now, "referral registered");
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "referral": answer(&row, now) }))).into_response())
}

/// `GET /api/v1/referrals`: referrals newest first. Operators and administrators see
/// every one; a post officer their post's; the judicial office (partner) those it has
/// been handed. Query: `status` (`waiting`, `handed`, `taken`, `done`), `before` (the
/// previous page's last `referral_id`), `limit` (1 to 500, default 100); the answer's
/// `next_before` is absent on the last page. Other roles are refused (403).
#[utoipa::path(get, path = "/api/v1/referrals", tag = "referrals",
    security(("bearer" = ["post_officer", "partner", "operator", "admin"])),
    params(
        ("status" = Option<String>, Query, description = "waiting, handed, taken or done"),
        ("before" = Option<i64>, Query, description = "the previous page's last referral_id"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 100"),
    ),
    responses((status = 200, description = "a page of referrals"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let roles = [Role::PostOfficer, Role::Partner, Role::Operator, Role::Admin];
    let user = caller(&s, &headers, &uri, &roles).await?;
    let now = s.config.clock.now_ms();
    let mut f = ReferralFilter { limit: DEFAULT_PAGE, now_ms: now, ..ReferralFilter::default() };
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "status" if STATUSES.contains(&&*v) => f.status = Some(v.into_owned()),
            "status" => return Err(ApiError::bad_request("status", "must be waiting, handed, taken or done")),
            "before" => {
                f.before = Some(v.parse().map_err(|_| ApiError::bad_request("before", "must be a referral number"))?)
            }
            "limit" => f.limit = page_limit(&v, MAX_PAGE)?,
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a filter of the referral list")),
        }
    }
    match user.role {
        Role::Partner => f.handed_only = true,
        Role::PostOfficer => {
            let post = own_post(&user).ok_or_else(|| ApiError::forbidden("authorization", "no post"))?;
            f.post_id = Some(post.to_owned());
        }
        _ => {}
    }
    let rows = s.store.referrals(&f).await.map_err(|e| ApiError::unavailable(&e))?;
    let next_before = (rows.len() == f.limit as usize).then(|| rows.last().map(|r| r.referral_id)).flatten();
    let list: Vec<Answer<'_>> = rows.iter().map(|r| answer(r, now)).collect();
    Ok(Json(serde_json::json!({ "referrals": list, "next_before": next_before })).into_response())
}

/// The referral `id` as the judicial office sees it: one not yet handed to it does not
/// exist for it (404), like an unknown one.
async fn handed(s: &AppState, id: &str, now_ms: i64) -> Result<ReferralRow, ApiError> {
    let not_found = || ApiError::not_found(format!("no referral {id}"));
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let r = s.store.referral(n).await.map_err(|e| ApiError::unavailable(&e))?.ok_or_else(not_found)?;
    if r.handed_ms <= now_ms {
        Ok(r)
    } else {
        Err(not_found())
    }
}

/// `POST /api/v1/referrals/{id}/take`: the judicial office (partner) takes a referral
/// up, audited; the officer who registered it then sees `taken_ms` and `taken_by`.
/// 409 (field `status`) when it is taken or done already; 404 for one not yet handed.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/take", tag = "referrals", security(("bearer" = ["partner"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the referral taken up"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E503,
    ))]
pub async fn take(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Partner])?;
    let now = s.config.clock.now_ms();
    let r = handed(&s, &id, now).await?;
    let audit = step_audit(&user, "referral_taken", "referral", r.referral_id, now, String::new());
    if !s.store.take_referral(r.referral_id, now, &user.name, &audit).await.map_err(|e| ApiError::unavailable(&e))? {
        return Err(ApiError::conflict("status", format!("the referral is {} already", r.status(now))));
    }
    answer_after(&s, r.referral_id, now).await
}

/// `POST /api/v1/referrals/{id}/done` `{note}`: the judicial office (partner) records
/// what it did, audited (taking the referral up at the same moment if nobody had). 409
/// (field `status`) when it is done already; 404 for one not yet handed.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/done", tag = "referrals", security(("bearer" = ["partner"])),
    params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the referral done"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E503,
    ))]
pub async fn done(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Partner])?;
    let b: DoneBody = read_json(&s, &headers, body, MAX_BODY).await?;
    let note = text("note", &b.note, MAX_SUMMARY)?;
    let now = s.config.clock.now_ms();
    let r = handed(&s, &id, now).await?;
    let audit = step_audit(&user, "referral_done", "referral", r.referral_id, now, note.clone());
    let stored = s.store.finish_referral(r.referral_id, now, &user.name, &note, &audit).await;
    if !stored.map_err(|e| ApiError::unavailable(&e))? {
        return Err(ApiError::conflict("status", "the referral is done already"));
    }
    answer_after(&s, r.referral_id, now).await
}

/// The audit entry of a step on a joint-work record, whose subject is `{kind}:{id}`
/// (`referral:7`, `home_visit:3`).
pub(crate) fn step_audit(user: &User, action: &str, kind: &str, id: i64, now_ms: i64, detail: String) -> AuditEntry {
    AuditEntry {
        at_ms: now_ms,
        actor: user.name.clone(),
        action: action.into(),
        subject: format!("{kind}:{id}"),
        detail,
    }
}

async fn answer_after(s: &AppState, id: i64, now_ms: i64) -> Result<Response, ApiError> {
    let r = s.store.referral(id).await.map_err(|e| ApiError::unavailable(&e))?;
    let r = r.ok_or_else(|| ApiError::not_found(format!("no referral {id}")))?;
    tracing::info!(referral_id = id, status = r.status(now_ms), "referral step");
    Ok(Json(serde_json::json!({ "referral": answer(&r, now_ms) })).into_response())
}

/// `from` and `to` of a statistics query (RFC 3339 or unix ms; default: everything).
pub(crate) fn time_range(query: Option<&str>) -> Result<(i64, i64), ApiError> {
    let (mut from, mut to) = (0, i64::MAX);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let t = || match v.parse::<i64>() {
            Ok(ms) => Ok(ms),
            Err(_) => liandong_ingest::parse_timestamp(&v).map_err(|e| ApiError::bad_request(&*k, e)),
        };
        match &*k {
            "from" => from = t()?,
            "to" => to = t()?,
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a parameter of the statistics")),
        }
    }
    if from >= to {
        return Err(ApiError::bad_request("to", "must be after from"));
    }
    Ok((from, to))
}

/// A summary of durations in seconds (count, mean, median, 90th percentile, max); null
/// for none.
pub(crate) fn durations_json(secs: &[f64]) -> serde_json::Value {
    let r = |v: f64| (v * 10.0).round() / 10.0;
    stats::summarize(secs).map_or(serde_json::Value::Null, |d| {
        serde_json::json!({"count": d.count, "mean_s": r(d.mean_s), "median_s": r(d.median_s), "p90_s": r(d.p90_s), "max_s": r(d.max_s)})
    })
}

/// `GET /api/v1/referrals/statistics?from=&to=`: the referrals registered in the range:
/// counts by status, on time and late (taken up by or after `due_ms`, or not taken and
/// past it), how many were registered after hours, the times from handing to taking up
/// and to done, and the same counts by post. Operators, administrators and the judicial
/// office count every post's; a post officer their own post's.
#[utoipa::path(get, path = "/api/v1/referrals/statistics", tag = "referrals",
    security(("bearer" = ["post_officer", "partner", "operator", "admin"])),
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
    ),
    responses((status = 200, description = "the counts and times"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn statistics(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let roles = [Role::PostOfficer, Role::Partner, Role::Operator, Role::Admin];
    let user = require_user(&s.tokens, &headers, uri.query(), &roles)?;
    let (from, to) = time_range(uri.query())?;
    let now = s.config.clock.now_ms();
    let mut rows = s.store.referrals_between(from, to, MAX_COUNTED).await.map_err(|e| ApiError::unavailable(&e))?;
    if user.role == Role::PostOfficer {
        let post = own_post(&user).unwrap_or("");
        rows.retain(|r| r.post_id == post);
    }
    // The judicial office counts only what it has been handed, as it lists.
    if user.role == Role::Partner {
        rows.retain(|r| r.handed_ms <= now);
    }
    let mut by_status: BTreeMap<&str, usize> = STATUSES.iter().map(|st| (*st, 0)).collect();
    let mut by_post: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    let (mut on_time, mut late) = (0, 0);
    for r in &rows {
        *by_status.entry(r.status(now)).or_default() += 1;
        let p = by_post.entry(&r.post_id).or_default();
        p[0] += 1;
        if overdue(r, now) {
            late += 1;
            p[2] += 1;
        } else if r.taken_ms.is_some() {
            on_time += 1;
            p[1] += 1;
        }
    }
    let secs = |end: fn(&ReferralRow) -> Option<i64>| {
        rows.iter().filter_map(|r| end(r).map(|t| (t - r.handed_ms) as f64 / 1000.0)).collect::<Vec<_>>()
    };
    let by_post: Vec<_> = by_post
        .into_iter()
        .map(|(k, [n, ok, l])| serde_json::json!({"key": k, "count": n, "on_time": ok, "late": l}))
        .collect();
    Ok(Json(serde_json::json!({
        "from": (from > 0).then(|| crate::time_fmt::rfc3339_ms(from)),
        "to": (to < i64::MAX).then(|| crate::time_fmt::rfc3339_ms(to)),
        "referrals": rows.len(),
        "by_status": by_status,
        "after_hours": rows.iter().filter(|r| r.handed_ms > r.registered_ms).count(),
        "on_time": on_time,
        "late": late,
        "take_up_s": durations_json(&secs(|r| r.taken_ms)),
        "done_s": durations_json(&secs(|r| r.done_ms)),
        "by_post": by_post,
    }))
    .into_response())
}
