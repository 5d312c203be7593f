//! Home visits (上门办理): the judicial office, a post or the command centre asks a post
//! officer or grid member to call on a person who cannot come in. The assignee arrives
//! (their phone must be at the place) and completes the visit with a note and photos. A
//! visit is a record, like a handover: each step written with its audit entry in one
//! transaction.
//!
//! Arriving is checked against the assignee's phone, not the caller's word: the newest
//! fix of the devices bound to the assignee (`devices.person_id`), from the live view
//! (the last committed report of each device), must be trusted, at most
//! `home_visits.fix_max_age_s` old and within `home_visits.arrive_within_m` of the
//! place. The field app sends the phone's position through the ordinary ingest path
//! first, so the check reads what was stored.
//!
//! Who may see a visit: `scope::sees_home_visit` (operators, administrators and the
//! judicial office every one; a post officer those in their post's jurisdiction; the
//! assignee their own); its photos are read by the same callers. For anyone else it does
//! not exist (404).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::{Datum, Position};
use liandong_store::{AuditEntry, HomeVisitFilter, HomeVisitRow};
use serde::{Deserialize, Serialize};

use crate::auth::{require_user, Role, User};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::referrals::{caller, durations_json, person, step_audit, text, time_range, PersonBody};
use crate::routes::{page_limit, read_json};
use crate::AppState;

const STATUSES: [&str; 4] = ["assigned", "arrived", "done", "cancelled"];
const PERSON_ROLES: [Role; 6] =
    [Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner];
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;
const MAX_BODY: usize = 16 * 1024;
/// A completion carries up to four phone photos.
const MAX_COMPLETE_BODY: usize = 12 << 20;
const MAX_PHOTOS: usize = 4;
const MAX_TEXT: usize = 2000;
/// A visit not given a due time is due three days after it is created.
const DEFAULT_DUE_MS: i64 = 3 * 86_400_000;
/// The most visits a statistics answer counts.
const MAX_COUNTED: u32 = 20_000;

/// `POST /api/v1/home-visits` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewVisit {
    person: PersonBody,
    lon: f64,
    lat: f64,
    #[serde(default)]
    datum: Option<String>,
    #[serde(default)]
    address: Option<String>,
    reason: String,
    /// RFC 3339 or unix ms; three days from now when absent.
    #[serde(default)]
    due: Option<serde_json::Value>,
    assignee_id: String,
}

/// `POST /api/v1/home-visits/{id}/complete` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    note: String,
    #[serde(default)]
    photos_base64: Vec<String>,
}

/// A visit as answered (the contract's JSON).
#[derive(Serialize)]
struct Answer<'a> {
    visit_id: i64,
    person: PersonBody,
    lon: f64,
    lat: f64,
    address: Option<&'a str>,
    reason: &'a str,
    post_id: Option<&'a str>,
    due_ms: i64,
    assignee_id: &'a str,
    assignee_name: &'a str,
    created_by: &'a str,
    created_ms: i64,
    status: &'a str,
    arrived_ms: Option<i64>,
    arrived_distance_m: Option<f64>,
    done_ms: Option<i64>,
    note: Option<&'a str>,
    photos: &'a [String],
    overdue: bool,
}

/// Whether a visit is (or was) late: done after its due time, or not done and past it.
fn overdue(v: &HomeVisitRow, now_ms: i64) -> bool {
    v.status != "cancelled" && v.done_ms.unwrap_or(now_ms) > v.due_ms
}

fn answer(v: &HomeVisitRow, now_ms: i64) -> Answer<'_> {
    Answer {
        visit_id: v.visit_id,
        person: PersonBody { name: v.person_name.clone(), phone: Some(v.person_phone.clone()) },
        lon: v.lon,
        lat: v.lat,
        address: v.address.as_deref(),
        reason: &v.reason,
        post_id: v.post_id.as_deref(),
        due_ms: v.due_ms,
        assignee_id: &v.assignee_id,
        assignee_name: &v.assignee_name,
        created_by: &v.created_by,
        created_ms: v.created_ms,
        status: &v.status,
        arrived_ms: v.arrived_ms,
        arrived_distance_m: v.arrived_distance_m.map(|d| d.round()),
        done_ms: v.done_ms,
        note: v.note.as_deref(),
        photos: &v.photo_urls,
        overdue: overdue(v, now_ms),
    }
}

fn sees(user: &User, v: &HomeVisitRow) -> bool {
    crate::scope::sees_home_visit(
        user.role,
        user.unit_id.as_deref(),
        user.person_id.as_deref(),
        v.post_id.as_deref(),
        &v.assignee_id,
    )
}

/// `POST /api/v1/home-visits`: asks a post officer or grid member (`assignee_id`, an
/// active person with one of those roles) to visit a person at a place (`lon`, `lat`,
/// optional `datum` and `address`) for a `reason` by `due` (RFC 3339 or unix ms; three
/// days when absent). 201 with the visit, audited. The judicial office, post officers,
/// operators and administrators may; other roles are refused (403).
#[utoipa::path(post, path = "/api/v1/home-visits", tag = "home-visits",
    security(("bearer" = ["partner", "post_officer", "operator", "admin"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "the visit"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E415, doc::E422,
        doc::E503,
    ))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let roles = [Role::Partner, Role::PostOfficer, Role::Operator, Role::Admin];
    let user = require_user(&s.tokens, &headers, uri.query(), &roles)?;
    let b: NewVisit = read_json(&s, &headers, body, MAX_BODY).await?;
    let (name, phone) = person(&b.person, true)?;
    let reason = text("reason", &b.reason, MAX_TEXT)?;
    let address = match b.address.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => Some(text("address", a, 200)?),
        None => None,
    };
    let datum = match b.datum.as_deref() {
        None => Datum::Wgs84,
        Some(d) => Datum::parse(d).ok_or_else(|| ApiError::bad_request("datum", "must be wgs84, gcj02 or bd09"))?,
    };
    let place = datum.to_wgs84(b.lon, b.lat).map_err(|e| ApiError::bad_request(e.field(), e.to_string()))?;
    let now = s.config.clock.now_ms();
    let due_ms = match &b.due {
        None | Some(serde_json::Value::Null) => now + DEFAULT_DUE_MS,
        Some(serde_json::Value::Number(n)) => {
            n.as_i64().ok_or_else(|| ApiError::bad_request("due", "must be unix ms"))?
        }
        Some(serde_json::Value::String(t)) => {
            liandong_ingest::parse_timestamp(t).map_err(|e| ApiError::bad_request("due", e))?
        }
        Some(_) => return Err(ApiError::bad_request("due", "must be RFC 3339 or unix milliseconds")),
    };
    if due_ms <= now {
        return Err(ApiError::bad_request("due", "must be in the future"));
    }
    let assignee = check_assignee(&s, &b.assignee_id).await?;
    let post_id = s.enricher.enrich(place).jurisdiction.map(|j| s.enricher.post(j).0.to_owned());
    let mut row = HomeVisitRow {
        visit_id: 0,
        person_name: name,
        person_phone: phone.unwrap_or_default(),
        lon: place.lon(),
        lat: place.lat(),
        address,
        reason,
        post_id,
        due_ms,
        assignee_id: assignee.person_id.clone(),
        assignee_name: assignee.name.clone(),
        created_by: user.name.clone(),
        created_ms: now,
        status: "assigned".into(),
        arrived_ms: None,
        arrived_distance_m: None,
        done_ms: None,
        note: None,
        photo_urls: Vec::new(),
    };
    let audit = AuditEntry {
        at_ms: now,
        actor: user.name.clone(),
        action: "home_visit_created".into(),
        subject: String::new(),
        detail: format!("assigned to {}", row.assignee_id),
    };
    row.visit_id = s.store.insert_home_visit(&row, &audit).await.map_err(|e| ApiError::unavailable(&e))?;
    tracing::info!(visit_id = row.visit_id, assignee = %row.assignee_id, "home visit created");
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "visit": answer(&row, now) }))).into_response())
}

/// The assignee a visit names: an active person who is a post officer or grid member.
async fn check_assignee(s: &AppState, id: &str) -> Result<liandong_store::PersonRecord, ApiError> {
    const FIELD: &str = "assignee_id";
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::bad_request(FIELD, "must be a person's id"));
    }
    let p = s.store.person(id).await.map_err(|e| ApiError::unavailable(&e))?;
    let p = p.ok_or_else(|| ApiError::unprocessable(FIELD, format!("no person {id:?}")))?;
    if !p.active {
        return Err(ApiError::unprocessable(FIELD, format!("{id} is deactivated")));
    }
    if !p.roles.iter().any(|r| r == "post_officer" || r == "grid_member") {
        return Err(ApiError::unprocessable(FIELD, format!("{id} is neither a post officer nor a grid member")));
    }
    Ok(p)
}

/// `GET /api/v1/home-visits`: visits newest first. With `mine=true`, those assigned to
/// the caller's person (any person's role); otherwise operators, administrators and the
/// judicial office see every one, a post officer their post's jurisdiction's, and a grid
/// member their own. Query: `status` (`assigned`, `arrived`, `done`, `cancelled`),
/// `before` (the previous page's last `visit_id`), `limit` (1 to 500, default 100).
#[utoipa::path(get, path = "/api/v1/home-visits", tag = "home-visits",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(
        ("mine" = Option<bool>, Query, description = "the visits assigned to the caller's person"),
        ("status" = Option<String>, Query, description = "assigned, arrived, done or cancelled"),
        ("before" = Option<i64>, Query, description = "the previous page's last visit_id"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 100"),
    ),
    responses((status = 200, description = "a page of visits"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = caller(&s, &headers, &uri, &PERSON_ROLES).await?;
    let mut f = HomeVisitFilter { limit: DEFAULT_PAGE, ..HomeVisitFilter::default() };
    let mut mine = false;
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "mine" if v == "true" || v == "false" => mine = v == "true",
            "mine" => return Err(ApiError::bad_request("mine", "must be true or false")),
            "status" if STATUSES.contains(&&*v) => f.status = Some(v.into_owned()),
            "status" => return Err(ApiError::bad_request("status", "must be assigned, arrived, done or cancelled")),
            "before" => {
                f.before = Some(v.parse().map_err(|_| ApiError::bad_request("before", "must be a visit number"))?)
            }
            "limit" => f.limit = page_limit(&v, MAX_PAGE)?,
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a filter of the home visit list")),
        }
    }
    let whole = matches!(user.role, Role::Admin | Role::Operator | Role::Partner);
    if mine || matches!(user.role, Role::GridMember | Role::PatrolLeader) {
        let me = user.person_id.clone().ok_or_else(|| ApiError::forbidden("mine", "the caller acts for no person"))?;
        f.assignee_id = Some(me);
    } else if !whole {
        let post = user.unit_id.clone().ok_or_else(|| ApiError::forbidden("authorization", "no post"))?;
        f.post_id = Some(post);
    }
    let rows = s.store.home_visits(&f).await.map_err(|e| ApiError::unavailable(&e))?;
    let now = s.config.clock.now_ms();
    let next_before = (rows.len() == f.limit as usize).then(|| rows.last().map(|v| v.visit_id)).flatten();
    let list: Vec<Answer<'_>> = rows.iter().map(|v| answer(v, now)).collect();
    Ok(Json(serde_json::json!({ "visits": list, "next_before": next_before })).into_response())
}

/// The visit `id` if `user` may see it; a missing one and one they may not see are the
/// same 404.
async fn readable(s: &AppState, user: &User, id: &str) -> Result<HomeVisitRow, ApiError> {
    let not_found = || ApiError::not_found(format!("no home visit {id}"));
    let n: i64 = id.parse().map_err(|_| not_found())?;
    let v = s.store.home_visit(n).await.map_err(|e| ApiError::unavailable(&e))?.ok_or_else(not_found)?;
    if sees(user, &v) {
        Ok(v)
    } else {
        Err(not_found())
    }
}

/// The visit `id` for a step only its assignee takes: 404 for who may not see it, 403
/// for who may but is not the assignee, 409 (field `status`) unless it is in `status`.
async fn assignees(s: &AppState, user: &User, id: &str, status: &str) -> Result<HomeVisitRow, ApiError> {
    let v = readable(s, user, id).await?;
    if user.person_id.as_deref() != Some(v.assignee_id.as_str()) {
        return Err(ApiError::forbidden("authorization", format!("only {} takes this step", v.assignee_id)));
    }
    if v.status != status {
        return Err(ApiError::conflict("status", format!("the visit is {}, not {status}", v.status)));
    }
    Ok(v)
}

/// `GET /api/v1/home-visits/{id}`: one visit, to whoever may see it (else 404).
#[utoipa::path(get, path = "/api/v1/home-visits/{id}", tag = "home-visits",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the visit"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E503))]
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = caller(&s, &headers, &uri, &PERSON_ROLES).await?;
    let v = readable(&s, &user, &id).await?;
    Ok(Json(serde_json::json!({ "visit": answer(&v, s.config.clock.now_ms()) })).into_response())
}

/// `POST /api/v1/home-visits/{id}/arrive`: the assignee is at the place, as their phone
/// says: the newest trusted fix of a device bound to them, at most
/// `home_visits.fix_max_age_s` old, within `home_visits.arrive_within_m` of the place;
/// else 409 naming `position` (no fix, too old, or how far). Audited with the distance.
#[utoipa::path(post, path = "/api/v1/home-visits/{id}/arrive", tag = "home-visits",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "the visit arrived"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E503,
    ))]
pub async fn arrive(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = caller(&s, &headers, &uri, &PERSON_ROLES).await?;
    let v = assignees(&s, &user, &id, "assigned").await?;
    let distance_m = distance_from_phone(&s, &v)?;
    let now = s.config.clock.now_ms();
    let audit = step_audit(
        &user,
        "home_visit_arrived",
        "home_visit",
        v.visit_id,
        now,
        format!("{distance_m:.0} m from the place"),
    );
    let stored = s.store.arrive_home_visit(v.visit_id, now, distance_m, &audit).await;
    if !stored.map_err(|e| ApiError::unavailable(&e))? {
        return Err(ApiError::conflict("status", "the visit is not assigned any more"));
    }
    answer_after(&s, v.visit_id, now).await
}

/// How far the assignee's phone is from the visit's place, metres, from the newest
/// trusted fix of the devices bound to them; a 409 naming `position` when there is none
/// recent enough or it is too far.
fn distance_from_phone(s: &AppState, v: &HomeVisitRow) -> Result<f64, ApiError> {
    let cfg = s.config.home_visits;
    let devices: Vec<String> = {
        let registry = s.devices.read().unwrap_or_else(|e| e.into_inner());
        registry
            .all()
            .filter(|d| d.person_id.as_deref() == Some(v.assignee_id.as_str()))
            .map(|d| d.device_id.clone())
            .collect()
    };
    let newest = {
        let live = s.live.read().unwrap_or_else(|e| e.into_inner());
        devices
            .iter()
            .filter_map(|d| live.devices.get(d))
            .max_by_key(|r| r.fix_ms)
            .map(|r| (r.lon, r.lat, r.fix_ms, r.trusted))
    };
    let Some((lon, lat, fix_ms, trusted)) = newest else {
        return Err(ApiError::conflict("position", "no position of the assignee's phone is known"));
    };
    if !trusted {
        return Err(ApiError::conflict("position", "the phone's latest position is not trusted (a jump)"));
    }
    // Fix times are the phone's clock, compared with the system clock (not the deadline
    // clock, which a test may have set to another day).
    let age_s = (crate::time_fmt::now_ms() - fix_ms) / 1000;
    if age_s > cfg.fix_max_age_s as i64 {
        return Err(ApiError::conflict("position", format!("the phone's latest position is {age_s} s old")));
    }
    let here = Position::new(lon, lat).map_err(|e| ApiError::internal(&e))?;
    let place = Position::new(v.lon, v.lat).map_err(|e| ApiError::internal(&e))?;
    let distance_m = here.haversine_m(place);
    if distance_m > cfg.arrive_within_m {
        return Err(ApiError::conflict(
            "position",
            format!("the phone is {distance_m:.0} m from the place, more than {:.0} m", cfg.arrive_within_m),
        ));
    }
    Ok(distance_m)
}

/// `POST /api/v1/home-visits/{id}/complete` `{note, photos_base64}`: the assignee
/// completes an arrived visit with a note and up to four JPEG photos (stored durably
/// before the visit names them), audited. 409 (field `status`) unless it is arrived.
#[utoipa::path(post, path = "/api/v1/home-visits/{id}/complete", tag = "home-visits",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the visit done"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E503,
    ))]
pub async fn complete(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let user = caller(&s, &headers, &uri, &PERSON_ROLES).await?;
    let v = assignees(&s, &user, &id, "arrived").await?;
    let b: CompleteBody = read_json(&s, &headers, body, MAX_COMPLETE_BODY).await?;
    let note = text("note", &b.note, MAX_TEXT)?;
    let photos = crate::reports::decode_photos(&b.photos_base64, MAX_PHOTOS)?;
    let urls = crate::cameras::store_images(&s, photos).await?;
    let now = s.config.clock.now_ms();
    let audit = step_audit(&user, "home_visit_done", "home_visit", v.visit_id, now, format!("{} photos", urls.len()));
    let stored = s.store.complete_home_visit(v.visit_id, now, &note, &urls, &audit).await;
    if !stored.map_err(|e| ApiError::unavailable(&e))? {
        return Err(ApiError::conflict("status", "the visit is not arrived any more"));
    }
    answer_after(&s, v.visit_id, now).await
}

async fn answer_after(s: &AppState, id: i64, now_ms: i64) -> Result<Response, ApiError> {
    let v = s.store.home_visit(id).await.map_err(|e| ApiError::unavailable(&e))?;
    let v = v.ok_or_else(|| ApiError::not_found(format!("no home visit {id}")))?;
    tracing::info!(visit_id = id, status = %v.status, "home visit step");
    Ok(Json(serde_json::json!({ "visit": answer(&v, now_ms) })).into_response())
}

/// `GET /api/v1/home-visits/statistics?from=&to=`: the visits created in the range:
/// counts by status, on time and late (done by or after `due_ms`, or not done and past
/// it), the times from creation to arrival and to completion, and the counts by post.
/// Operators, administrators and the judicial office count every visit; a post officer
/// their post's jurisdiction's. Other roles are refused (403).
#[utoipa::path(get, path = "/api/v1/home-visits/statistics", tag = "home-visits",
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
    let mut rows = s.store.home_visits_between(from, to, MAX_COUNTED).await.map_err(|e| ApiError::unavailable(&e))?;
    rows.retain(|v| sees(&user, v));
    let mut by_status: BTreeMap<&str, usize> = STATUSES.iter().map(|st| (*st, 0)).collect();
    let mut by_post: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let (mut on_time, mut late) = (0, 0);
    for v in &rows {
        *by_status.entry(v.status.as_str()).or_default() += 1;
        let p = by_post.entry(v.post_id.as_deref().unwrap_or("")).or_default();
        p[0] += 1;
        p[1] += usize::from(v.status == "done");
        if overdue(v, now) {
            late += 1;
            p[3] += 1;
        } else if v.done_ms.is_some() {
            on_time += 1;
            p[2] += 1;
        }
    }
    let secs = |end: fn(&HomeVisitRow) -> Option<i64>| {
        rows.iter().filter_map(|v| end(v).map(|t| (t - v.created_ms) as f64 / 1000.0)).collect::<Vec<_>>()
    };
    let by_post: Vec<_> = by_post
        .into_iter()
        .map(|(k, [n, d, ok, l])| serde_json::json!({"key": k, "count": n, "done": d, "on_time": ok, "late": l}))
        .collect();
    Ok(Json(serde_json::json!({
        "from": (from > 0).then(|| crate::time_fmt::rfc3339_ms(from)),
        "to": (to < i64::MAX).then(|| crate::time_fmt::rfc3339_ms(to)),
        "visits": rows.len(),
        "by_status": by_status,
        "on_time": on_time,
        "late": late,
        "arrive_s": durations_json(&secs(|v| v.arrived_ms)),
        "complete_s": durations_json(&secs(|v| v.done_ms)),
        "by_post": by_post,
    }))
    .into_response())
}
