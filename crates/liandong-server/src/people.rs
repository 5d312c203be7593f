//! The people who use the system, and the admin API that adds, changes and deactivates
//! them. People are never deleted: the audit log and later history keep naming them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::map::CountyMap;
use liandong_store::{AuditEntry, PeopleFilter, PersonRecord};
use serde::{Deserialize, Deserializer};

use crate::auth::{check_person_id, require_user, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::{page_limit, read_json};
use crate::scope::{passes, PeopleReach};
use crate::time_fmt::now_ms;
use crate::travel::map_teams;
use crate::AppState;

/// What a person can belong to. The first three are units of the map; the judicial
/// office and the command centre are one each, so they take no `unit_id`.
pub const UNIT_KINDS: [&str; 5] = ["post", "team", "grid", "judicial_office", "command_centre"];

/// The roles a person can hold: every role but a device's, which belongs to a key.
const PERSON_ROLES: [Role; 6] =
    [Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner];

/// A page of the list when the caller names none, and the most it may ask for.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

/// The largest body a create or change may send: a person is a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

/// `POST /api/v1/people` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPerson {
    person_id: String,
    name: String,
    #[serde(default)]
    phone: Option<String>,
    roles: Vec<String>,
    unit_kind: String,
    #[serde(default)]
    unit_id: Option<String>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/v1/people/{id}` body: every field optional; `"phone": null` clears the
/// phone, an absent field is left as it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonChange {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    phone: Option<Option<String>>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    unit_kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    unit_id: Option<Option<String>>,
    #[serde(default)]
    active: Option<bool>,
    /// The person's `updated_ms` as the caller read it (the form an administrator
    /// edits): when given and the person has been changed since, the change is refused
    /// (409), as it was made from what the other change replaced.
    #[serde(default)]
    updated_ms: Option<i64>,
}

/// Tells a field sent as `null` (Some(None)) from a field not sent (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if name.trim().is_empty() || n > 100 {
        return Err(ApiError::bad_request("name", "must be 1 to 100 characters, not only spaces"));
    }
    Ok(())
}

fn check_phone(phone: &str) -> Result<(), ApiError> {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if !(5..=20).contains(&phone.len()) || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request("phone", "must be 5 to 20 digits, optionally after a leading +"));
    }
    Ok(())
}

/// The roles sorted and without repeats; refused when empty or naming no person's role.
fn check_roles(roles: &[String]) -> Result<Vec<String>, ApiError> {
    if roles.is_empty() {
        return Err(ApiError::bad_request("roles", "must name at least one role"));
    }
    let names: Vec<&str> = PERSON_ROLES.iter().map(|r| r.as_str()).collect();
    if let Some(bad) = roles.iter().find(|r| !names.contains(&r.as_str())) {
        return Err(ApiError::bad_request("roles", format!("{bad:?} is not one of {}", names.join(", "))));
    }
    let mut out = roles.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Checks what a person belongs to against the loaded map: a post, team or grid must
/// be one of the map's; the judicial office and the command centre take no id.
fn check_unit(map: &CountyMap, kind: &str, id: Option<&str>) -> Result<(), ApiError> {
    match (kind, id) {
        ("judicial_office" | "command_centre", None) => Ok(()),
        ("judicial_office" | "command_centre", Some(_)) => {
            Err(ApiError::bad_request("unit_id", format!("must be absent for unit_kind {kind}")))
        }
        ("post" | "team" | "grid", None) => {
            Err(ApiError::bad_request("unit_id", format!("is required for unit_kind {kind}")))
        }
        ("post" | "team" | "grid", Some(id)) => {
            let found = match kind {
                "post" => map.posts.iter().any(|p| p.id == id),
                "grid" => map.grids.iter().any(|g| g.id == id),
                _ => map_teams(map).iter().any(|t| t == id),
            };
            if found {
                Ok(())
            } else {
                Err(ApiError::unprocessable("unit_id", format!("no {kind} {id:?} in the loaded map")))
            }
        }
        _ => Err(ApiError::bad_request("unit_kind", format!("must be one of {}", UNIT_KINDS.join(", ")))),
    }
}

/// Every rule a stored person keeps, checked on the whole record after a create or a
/// change, so that a change of one field cannot leave another one wrong (a unit kind
/// changed without its id).
fn check_person(map: &CountyMap, p: &mut PersonRecord) -> Result<(), ApiError> {
    check_person_id(&p.person_id)?;
    check_name(&p.name)?;
    if let Some(phone) = &p.phone {
        check_phone(phone)?;
    }
    p.roles = check_roles(&p.roles)?;
    check_unit(map, &p.unit_kind, p.unit_id.as_deref())
}

/// What a change altered, field by field, for the audit log.
fn changes(before: &PersonRecord, after: &PersonRecord) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |field: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{field}: {a} -> {b}"));
        }
    };
    diff("name", format!("{:?}", before.name), format!("{:?}", after.name));
    diff("phone", format!("{:?}", before.phone), format!("{:?}", after.phone));
    diff("roles", before.roles.join(","), after.roles.join(","));
    diff("unit_kind", before.unit_kind.clone(), after.unit_kind.clone());
    diff("unit_id", format!("{:?}", before.unit_id), format!("{:?}", after.unit_id));
    diff("active", before.active.to_string(), after.active.to_string());
    out
}

/// `GET /api/v1/people`: people by id, a page at a time, those in the caller's reach
/// ([`PeopleReach`]): administrators and operators everyone, a patrol leader the team's
/// members, a post officer the post's people, a partner the judicial office's people,
/// a grid member only themself; a device's key and a missing or unknown token are
/// refused. Query: `unit_kind`, `unit_id`, `role`, `active` (`true`/`false`), `after`
/// (the previous page's last id) and `limit` (1 to 500, default 100). The answer's
/// `next_after` is the id to ask after for the next page, absent on the last page.
#[utoipa::path(get, path = "/api/v1/people", tag = "people",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(
        ("unit_kind" = Option<String>, Query, description = "team, post, grid, command_centre or judicial_office"),
        ("unit_id" = Option<String>, Query), ("role" = Option<String>, Query), ("active" = Option<bool>, Query),
        ("after" = Option<String>, Query, description = "the previous page's last id"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 100"),
    ),
    responses((status = 200, description = "a page of people"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &PERSON_ROLES)?;
    let reach = PeopleReach::of(&s.reach(user.role, user.unit_id.as_deref()), user.person_id.as_deref());
    let mut f = PeopleFilter { limit: DEFAULT_PAGE, ..PeopleFilter::default() };
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "unit_id" => f.unit_id = Some(v.into_owned()),
            "unit_kind" if UNIT_KINDS.contains(&&*v) => f.unit_kind = Some(v.into_owned()),
            "unit_kind" => {
                return Err(ApiError::bad_request("unit_kind", format!("must be one of {}", UNIT_KINDS.join(", "))))
            }
            "role" => f.role = Some(check_roles(&[v.into_owned()]).map_err(|e| rename(e, "role"))?.remove(0)),
            "active" => {
                f.active = Some(v.parse().map_err(|_| ApiError::bad_request("active", "must be true or false"))?)
            }
            "after" => f.after = Some(v.into_owned()),
            "limit" => f.limit = page_limit(&v, MAX_PAGE)?,
            // The bearer token may come in the query, for the browser's websocket.
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a filter of the people list")),
        }
    }
    let people = match &reach {
        PeopleReach::Only(own) => match own {
            Some(id) => s.store.person(id).await.map_err(|e| ApiError::unavailable(&e))?,
            None => None,
        }
        .into_iter()
        .filter(|p| passes(&f, p))
        .collect(),
        _ if !reach.narrow(&mut f) => Vec::new(),
        _ => s.store.people(&f).await.map_err(|e| ApiError::unavailable(&e))?,
    };
    let next_after = (people.len() == f.limit as usize).then(|| people.last().map(|p| p.person_id.clone())).flatten();
    Ok(Json(serde_json::json!({ "people": people, "next_after": next_after })).into_response())
}

/// The same refusal, naming the query's field instead of the body's.
fn rename(e: ApiError, field: &str) -> ApiError {
    ApiError::bad_request(field, e.message())
}

/// `GET /api/v1/people/{id}`: one person in the caller's reach, as for the list; a
/// device's key and a missing or unknown token are refused; 404 when there is no such
/// person or they are outside the caller's reach (as if they did not exist).
#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "people",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the person"), doc::E401, doc::E403, doc::E404, doc::E503))]
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &PERSON_ROLES)?;
    let reach = PeopleReach::of(&s.reach(user.role, user.unit_id.as_deref()), user.person_id.as_deref());
    check_person_id(&id)?;
    let p = s.store.person(&id).await.map_err(|e| ApiError::unavailable(&e))?;
    let p = p.filter(|p| reach.admits(&p.unit_kind, p.unit_id.as_deref(), &p.person_id));
    let p = p.ok_or_else(|| ApiError::not_found(format!("no person {id}")))?;
    Ok(Json(serde_json::json!({ "person": p })).into_response())
}

/// `POST /api/v1/people`: adds a person (201), audited in the same transaction.
/// Administrators only; every other role, a device's key and a missing or unknown
/// token are refused. 409 naming `person_id` when the id exists (people are never
/// deleted, so an id is never reused).
#[utoipa::path(post, path = "/api/v1/people", tag = "people", security(("bearer" = ["admin"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "the person added"), doc::E400, doc::E401, doc::E403, doc::E409, doc::E413,
        doc::E415, doc::E503,
    ))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let new: NewPerson = read_json(&s, &headers, body, MAX_BODY).await?;
    let now = now_ms();
    let mut p = PersonRecord {
        person_id: new.person_id,
        name: new.name,
        phone: new.phone,
        roles: new.roles,
        unit_kind: new.unit_kind,
        unit_id: new.unit_id,
        active: new.active,
        created_ms: now,
        updated_ms: now,
    };
    check_person(&s.map, &mut p)?;
    let detail = serde_json::to_string(&p).map_err(|e| ApiError::internal(&e))?;
    let audit = audit_entry(&user.name, "person_created", &p.person_id, detail, now);
    if !s.store.insert_person(&p, &audit).await.map_err(|e| ApiError::unavailable(&e))? {
        return Err(ApiError::conflict("person_id", format!("{} already exists", p.person_id)));
    }
    tracing::info!(person_id = %p.person_id, actor = %user.name, "person created");
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "person": p }))).into_response())
}

/// `PATCH /api/v1/people/{id}`: changes a person's name, phone, roles, unit or active
/// flag (deactivating is how a person leaves), audited with what changed in the same
/// transaction; deactivating revokes the person's sessions. Administrators only; every
/// other role, a device's key and a missing or unknown token are refused; 404 when there
/// is no such person, 409 naming `updated_ms` when the body's `updated_ms` (the person as
/// the caller read it) is not the stored one, and 409 naming `person_id` when another
/// change was stored between this one's reading and its writing.
#[utoipa::path(patch, path = "/api/v1/people/{id}", tag = "people", security(("bearer" = ["admin"])),
    params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the person changed"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409,
        doc::E413, doc::E415, doc::E503,
    ))]
pub async fn change(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    check_person_id(&id)?;
    let c: PersonChange = read_json(&s, &headers, body, MAX_BODY).await?;
    let before = s.store.person(&id).await.map_err(|e| ApiError::unavailable(&e))?;
    let before = before.ok_or_else(|| ApiError::not_found(format!("no person {id}")))?;
    if c.updated_ms.is_some_and(|read| read != before.updated_ms) {
        return Err(ApiError::conflict("updated_ms", format!("{id} was changed since it was read; read it again")));
    }
    let now = now_ms();
    let mut p = PersonRecord {
        name: c.name.unwrap_or_else(|| before.name.clone()),
        phone: c.phone.unwrap_or_else(|| before.phone.clone()),
        roles: c.roles.unwrap_or_else(|| before.roles.clone()),
        unit_kind: c.unit_kind.unwrap_or_else(|| before.unit_kind.clone()),
        unit_id: c.unit_id.unwrap_or_else(|| before.unit_id.clone()),
        active: c.active.unwrap_or(before.active),
        updated_ms: now,
        ..before.clone()
    };
    check_person(&s.map, &mut p)?;
    let changed = changes(&before, &p);
    if changed.is_empty() {
        // Nothing to write and nothing to audit: the person as stored is the answer.
        return Ok(Json(serde_json::json!({ "person": before })).into_response());
    }
    let audit = audit_entry(&user.name, "person_changed", &id, changed.join("; "), now);
    if !s.store.update_person(&p, before.updated_ms, &audit).await.map_err(|e| ApiError::unavailable(&e))? {
        // People are never deleted: the person read above was changed by someone else
        // since, and this change was made from what they replaced.
        return Err(ApiError::conflict("person_id", format!("{id} was changed meanwhile; read it again")));
    }
    tracing::info!(person_id = %id, actor = %user.name, changed = %changed.join("; "), "person changed");
    if before.active && !p.active {
        // A person who leaves is signed out everywhere at once: their sessions would
        // stop resolving anyway (an inactive person's session is refused), but revoking
        // them puts it on record and closes their sockets without waiting.
        // The change is stored: a failed revocation must not answer as if it were not.
        if let Err(e) = crate::sessions::revoke_all(&s, &id, &user.name, "person deactivated").await {
            tracing::warn!(person_id = %id, reason = %e.message(), "revoking a deactivated person's sessions failed");
        }
    }
    Ok(Json(serde_json::json!({ "person": p })).into_response())
}

fn audit_entry(actor: &str, action: &str, person_id: &str, detail: String, now: i64) -> AuditEntry {
    AuditEntry {
        at_ms: now,
        actor: actor.into(),
        action: action.into(),
        subject: format!("person:{person_id}"),
        detail,
    }
}
