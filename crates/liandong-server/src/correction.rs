//! Community correction (社区矫正): the tagged persons' records one at a time and as a
//! list, and the sanctions the police decided about them (治安处罚, 强制隔离戒毒, 行政拘留,
//! 立案侦查, 刑事拘留), which the judicial office reads.
//!
//! Who may see a person and their sanctions is `scope::sees_tagged`: the roles on the
//! person's record (administrators always), a post officer only for the persons of their
//! own post's jurisdiction. Recording a sanction takes the police's roles (operator,
//! administrator, post officer) and a person the caller sees. Anything else is answered
//! as if it did not exist (404). Every read is audited before it is sent, once per
//! request: a list is one entry filed under each person it shows. A sanction is a
//! record, written straight to the store with its audit entry in one transaction.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_store::{SanctionRow, TaggedPerson, SANCTION_KINDS};
use serde::{Deserialize, Serialize};

use crate::auth::{require_user, Role, User};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::{page_limit, read_json};
use crate::scope::{read_entry, reads_entry, sees_tagged};
use crate::time_fmt::rfc3339_ms;
use crate::AppState;

/// Who may read tagged persons and their sanctions at all; each read then asks
/// `scope::sees_tagged` of the person.
const READERS: [Role; 4] = [Role::Admin, Role::Operator, Role::Partner, Role::PostOfficer];
/// Who records sanctions: the police.
const RECORDERS: [Role; 3] = [Role::Admin, Role::Operator, Role::PostOfficer];

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;
/// A sanction's body: a kind, a time, an authority and a note.
const MAX_BODY: usize = 16 * 1024;
const MAX_AUTHORITY: usize = 100;
const MAX_NOTE: usize = 2000;
/// How far ahead of the server's clock a decision may be dated: a client's clock that
/// runs a little fast, not a decision yet to come.
const DECIDED_AHEAD_MS: i64 = 5 * 60_000;

/// A page's bounds from the query: `limit` (1 to 500, default 100) and `after`.
fn page(uri: &Uri) -> Result<(u32, Option<String>), ApiError> {
    let (mut limit, mut after) = (DEFAULT_PAGE, None);
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "limit" => limit = page_limit(&v, MAX_PAGE)?,
            "after" => after = Some(v.into_owned()),
            // The bearer token may come in the query, as for the wall map's reads.
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a parameter of this list")),
        }
    }
    Ok((limit, after))
}

/// The person `id` if the caller may see them; 404 otherwise, as for no such person.
async fn visible_person(s: &AppState, user: &User, id: &str) -> Result<TaggedPerson, ApiError> {
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let p = s.store.tagged_person(id).await.map_err(|e| ApiError::unavailable(&e))?;
    p.filter(|p| sees_tagged(user.role, &reach, &p.roles, p.post_id.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("no tagged person {id}")))
}

/// `GET /api/v1/tagged?limit=&after=`: the tagged persons the caller may see (a post
/// officer: their post's jurisdiction), by id, in pages (`after`: the previous page's
/// last id; `next_after` in the answer, absent on the last page). Audited as one entry
/// filed under every person listed.
#[utoipa::path(get, path = "/api/v1/tagged", tag = "tagged",
    security(("bearer" = ["admin", "operator", "partner", "post_officer"])),
    params(
        ("after" = Option<String>, Query, description = "the previous page's last id"), ("limit" = Option<u32>, Query),
    ),
    responses((status = 200, description = "a page of tagged persons"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let (limit, after) = page(&uri)?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let all = s.store.tagged_persons().await.map_err(|e| ApiError::unavailable(&e))?;
    let visible: Vec<TaggedPerson> = all
        .into_iter()
        .filter(|p| after.as_ref().is_none_or(|a| p.person_id > *a))
        .filter(|p| sees_tagged(user.role, &reach, &p.roles, p.post_id.as_deref()))
        .take(limit as usize)
        .collect();
    let ids: Vec<String> = visible.iter().map(|p| p.person_id.clone()).collect();
    let now = s.config.clock.now_ms();
    if let Some((entry, subjects)) =
        reads_entry(&user.name, user.role.as_str(), "tagged_person_read", &ids, "the tagged persons list", now)
    {
        s.store.audit_reads(&entry, &subjects).await.map_err(|e| ApiError::unavailable(&e))?;
    }
    let next_after = (visible.len() == limit as usize).then(|| ids.last().cloned()).flatten();
    Ok(Json(serde_json::json!({ "tagged": visible, "next_after": next_after })).into_response())
}

/// `GET /api/v1/tagged/{id}`: one person, to whom the list would show them; audited.
#[utoipa::path(get, path = "/api/v1/tagged/{id}", tag = "tagged",
    security(("bearer" = ["admin", "operator", "partner", "post_officer"])), params(("id" = String, Path)),
    responses((status = 200, description = "the tagged person"), doc::E401, doc::E403, doc::E404, doc::E503))]
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let person = visible_person(&s, &user, &id).await?;
    let now = s.config.clock.now_ms();
    let entry = read_entry(&user.name, user.role.as_str(), "tagged_person_read", &id, "the record", now);
    s.store.audit(&[entry]).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(serde_json::json!({ "tagged": person })).into_response())
}

/// A sanction as answered: the stored row with its times also as RFC 3339.
#[derive(Serialize)]
struct Sanction<'a> {
    #[serde(flatten)]
    row: &'a SanctionRow,
    decided: String,
    recorded: String,
}

impl<'a> From<&'a SanctionRow> for Sanction<'a> {
    fn from(row: &'a SanctionRow) -> Self {
        Sanction { row, decided: rfc3339_ms(row.decided_ms), recorded: rfc3339_ms(row.recorded_ms) }
    }
}

/// `GET /api/v1/tagged/{id}/sanctions?limit=&after=`: a person's sanctions, newest
/// first (`after`: the previous page's last `sanction_id`), to whom the person is
/// visible; audited.
#[utoipa::path(get, path = "/api/v1/tagged/{id}/sanctions", tag = "tagged",
    security(("bearer" = ["admin", "operator", "partner", "post_officer"])),
    params(
        ("id" = String, Path), ("after" = Option<i64>, Query, description = "the previous page's last sanction_id"),
        ("limit" = Option<u32>, Query),
    ),
    responses(
        (status = 200, description = "a page of sanctions"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E503,
    ))]
pub async fn list_sanctions(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &READERS)?;
    let (limit, after) = page(&uri)?;
    let before = after
        .map(|a| a.parse::<i64>().map_err(|_| ApiError::bad_request("after", "must be a sanction_id")))
        .transpose()?;
    visible_person(&s, &user, &id).await?;
    let rows = s.store.sanctions(&id, before, limit).await.map_err(|e| ApiError::unavailable(&e))?;
    let now = s.config.clock.now_ms();
    let what = format!("{} sanction(s)", rows.len());
    let entry = read_entry(&user.name, user.role.as_str(), "tagged_person_sanctions_read", &id, &what, now);
    s.store.audit(&[entry]).await.map_err(|e| ApiError::unavailable(&e))?;
    let next_after = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.sanction_id)).flatten();
    let sanctions: Vec<Sanction<'_>> = rows.iter().map(Sanction::from).collect();
    Ok(Json(serde_json::json!({ "sanctions": sanctions, "next_after": next_after })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSanction {
    kind: String,
    /// When it was decided: RFC 3339 or unix milliseconds.
    #[serde(alias = "decided_ms")]
    decided: serde_json::Value,
    authority: String,
    #[serde(default)]
    note: String,
}

/// The sanction's kind, time, authority and note, checked; each refusal names its field.
fn check_sanction(n: NewSanction, now_ms: i64) -> Result<(String, i64, String, String), ApiError> {
    if !SANCTION_KINDS.contains(&n.kind.as_str()) {
        return Err(ApiError::bad_request("kind", format!("must be one of {}", SANCTION_KINDS.join(", "))));
    }
    let decided_ms = match &n.decided {
        serde_json::Value::Number(ms) => ms
            .as_i64()
            .filter(|ms| *ms >= 0)
            .ok_or_else(|| ApiError::bad_request("decided", "must be unix milliseconds"))?,
        serde_json::Value::String(t) => {
            liandong_ingest::parse_timestamp(t).map_err(|e| ApiError::bad_request("decided", e))?
        }
        _ => return Err(ApiError::bad_request("decided", "must be RFC 3339 or unix milliseconds")),
    };
    if decided_ms > now_ms + DECIDED_AHEAD_MS {
        return Err(ApiError::bad_request("decided", "is in the future: record a sanction once it is decided"));
    }
    let authority = n.authority.trim().to_owned();
    if authority.is_empty() || authority.chars().count() > MAX_AUTHORITY {
        return Err(ApiError::bad_request("authority", format!("must be 1 to {MAX_AUTHORITY} characters")));
    }
    let note = n.note.trim().to_owned();
    if note.chars().count() > MAX_NOTE || note.contains('\0') || authority.contains('\0') {
        let field = if authority.contains('\0') { "authority" } else { "note" };
        return Err(ApiError::bad_request(field, format!("at most {MAX_NOTE} characters, no NUL")));
    }
    Ok((n.kind, decided_ms, authority, note))
}

/// `POST /api/v1/tagged/{id}/sanctions` `{kind, decided, authority, note?}`: records a
/// sanction (201 with it), audited in the same transaction. Operators, administrators
/// and the post officers of the person's post, for a person they see.
#[utoipa::path(post, path = "/api/v1/tagged/{id}/sanctions", tag = "tagged",
    security(("bearer" = ["admin", "operator", "post_officer"])), params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "the sanction"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E413, doc::E415,
        doc::E503,
    ))]
pub async fn record_sanction(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &RECORDERS)?;
    visible_person(&s, &user, &id).await?;
    let n: NewSanction = read_json(&s, &headers, body, MAX_BODY).await?;
    let now = s.config.clock.now_ms();
    let (kind, decided_ms, authority, note) = check_sanction(n, now)?;
    let row = SanctionRow {
        sanction_id: 0,
        person_id: id.clone(),
        kind,
        decided_ms,
        authority,
        note,
        recorded_by: user.name.clone(),
        recorded_ms: now,
    };
    let what = format!("{} decided {} by {}", row.kind, rfc3339_ms(row.decided_ms), row.authority);
    let audit = read_entry(&user.name, user.role.as_str(), "sanction_recorded", &id, &what, now);
    let stored = s.store.insert_sanction(&row, &audit).await.map_err(|e| ApiError::unavailable(&e))?;
    // Removed between the check and the write: as if it had never been there.
    let stored = stored.ok_or_else(|| ApiError::not_found(format!("no tagged person {id}")))?;
    tracing::info!(person_id = %id, sanction_id = stored.sanction_id, by = %user.name, "sanction recorded");
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "sanction": Sanction::from(&stored) }))).into_response())
}
