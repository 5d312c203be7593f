//! Signing in and out: sessions opened with a password or a one-time code, renewed,
//! revoked; passwords set; codes issued; and the resolution of a session token into
//! its user before any handler runs.
//!
//! A session token is `lds_` and 256 random bits; the store keeps its SHA-256 only.
//! Handlers authenticate synchronously (`auth::require_user`), so the middleware
//! [`resolve_sessions`] reads a presented session from the store into the token cache
//! first, and reads it again when the cached copy is older than [`RECHECK_MS`]: a
//! revocation on another instance takes effect here within that time, one on this
//! instance at once (the cache entry is dropped with it).
//!
//! Failed sign-ins are counted per account and per client address
//! ([`crate::ratelimit`]); a wrong password, an unknown person and an inactive person
//! get the same answer in about the same time, so that the answer tells no one which
//! accounts exist.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_store::{AuditEntry, PersonRecord, SessionRow, SignInCode, StoreError};
use serde::Deserialize;
use tokio::sync::watch;

use crate::auth::{bearer, check_person_id, key_at_rest, require_user, CachedSession, Role, User};
use crate::config::SessionsConfig;
use crate::error::ApiError;
use crate::openapi as doc;
use crate::passwords::{check_length, is_session_token, new_session_token, new_sign_in_code, PasswordError, Passwords};
use crate::ratelimit::FailureLimit;
use crate::routes::read_json;
use crate::time_fmt::now_ms;
use crate::AppState;

/// How old a cached session may be before a request reads it from the store again.
pub const RECHECK_MS: i64 = 5_000;

/// How often an open live-feed socket checks that its session still holds.
const SOCKET_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The largest sign-in or password body: two short strings.
const MAX_BODY: usize = 4 * 1024;

/// The role a session takes when the sign-in names none: the person's least powerful,
/// so that a person who is also an administrator signs in as one only on purpose.
const DEFAULT_ROLE_ORDER: [Role; 6] =
    [Role::GridMember, Role::PatrolLeader, Role::PostOfficer, Role::Partner, Role::Operator, Role::Admin];

/// The server's sign-in state: the hasher and the failure counts.
#[derive(Debug)]
pub struct SignIn {
    pub passwords: Passwords,
    by_account: FailureLimit,
    by_address: FailureLimit,
}

impl SignIn {
    pub fn new(c: &SessionsConfig) -> SignIn {
        let window_ms = i64::try_from(c.failure_window_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        SignIn {
            passwords: Passwords::default(),
            by_account: FailureLimit::new(c.failures_per_account, window_ms),
            by_address: FailureLimit::new(c.failures_per_address, window_ms),
        }
    }
}

fn ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn role_named(name: &str) -> Option<Role> {
    DEFAULT_ROLE_ORDER.into_iter().find(|r| r.as_str() == name)
}

/// The user a session of `p` in `role` is.
fn person_user(p: &PersonRecord, role: Role) -> User {
    User { name: p.name.clone(), role, unit_id: p.unit_id.clone(), person_id: Some(p.person_id.clone()) }
}

/// Reads a session and its person from the store: `None` when it is revoked, has
/// ended, or its person is gone, inactive or no longer holds the session's role.
async fn load(s: &AppState, token_hash: &str, now: i64) -> Result<Option<CachedSession>, StoreError> {
    let Some(row) = s.store.session(token_hash).await? else { return Ok(None) };
    if row.revoked_ms.is_some() || row.expires_ms <= now {
        return Ok(None);
    }
    let Some(p) = s.store.person(&row.person_id).await? else { return Ok(None) };
    let Some(role) = role_named(&row.role).filter(|_| p.active && p.roles.contains(&row.role)) else {
        return Ok(None);
    };
    Ok(Some(CachedSession {
        user: person_user(&p, role),
        expires_ms: row.expires_ms,
        max_expires_ms: row.max_expires_ms,
        checked_ms: now,
    }))
}

/// The user of a session token, from the cache when it was read less than
/// [`RECHECK_MS`] ago, else from the store (and cached, or dropped from the cache).
pub async fn resolve(s: &AppState, token: &str) -> Result<Option<User>, StoreError> {
    let hash = key_at_rest(token);
    let now = now_ms();
    if let Some(c) = s.tokens.session(&hash).filter(|c| now - c.checked_ms < RECHECK_MS) {
        return Ok((c.expires_ms > now).then_some(c.user));
    }
    match load(s, &hash, now).await? {
        Some(c) => {
            let user = c.user.clone();
            s.tokens.remember(hash, c);
            Ok(Some(user))
        }
        None => {
            s.tokens.forget(&hash);
            Ok(None)
        }
    }
}

/// Middleware: resolves a presented session token before the handler, so that
/// `require_user` finds it in the cache. Other tokens pass untouched.
pub async fn resolve_sessions(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(token) = bearer(req.headers(), req.uri().query()).filter(|t| is_session_token(t)) {
        if let Err(e) = resolve(&s, &token).await {
            return ApiError::unavailable(&e).into_response();
        }
    }
    next.run(req).await
}

/// How a live-feed socket ends early: `rx` turns true on the server's shutdown, or, for
/// a session's socket, when the session is revoked or ends (then `why` says so).
pub struct SocketEnd {
    pub rx: watch::Receiver<bool>,
    pub why: Arc<OnceLock<&'static str>>,
}

impl SocketEnd {
    /// The close frame's reason.
    pub fn reason(&self) -> &'static str {
        self.why.get().copied().unwrap_or("server shutting down")
    }
}

/// Watches a live-feed socket's session (none for other tokens) every [`SOCKET_CHECK`]
/// until the socket closes or the server stops.
pub fn watch_socket(s: &Arc<AppState>, token: &str) -> SocketEnd {
    let why = Arc::new(OnceLock::new());
    if !is_session_token(token) {
        return SocketEnd { rx: s.shutdown.clone(), why };
    }
    let (tx, rx) = watch::channel(false);
    let (state, token, said, mut stop) = (Arc::downgrade(s), token.to_owned(), why.clone(), s.shutdown.clone());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SOCKET_CHECK);
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                () = tx.closed() => return,
                _ = every.tick() => {}
            }
            let Some(s) = state.upgrade() else { break };
            match resolve(&s, &token).await {
                Ok(Some(_)) => continue,
                Ok(None) => {
                    let _ = said.set("session ended");
                    tracing::info!("live socket closed: its session was revoked or has ended");
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "session check of a live socket failed; retrying"),
            }
        }
        let _ = tx.send(true);
    });
    SocketEnd { rx, why }
}

/// The client address failures are counted against: the peer of the connection.
fn peer(req: &Request) -> String {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// `POST /api/v1/sessions` body: a person's id and password, or a one-time code; the
/// role is optional (default: the person's least powerful).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    #[serde(default)]
    person_id: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

fn audit(actor: &str, action: &str, person_id: &str, detail: String, now: i64) -> AuditEntry {
    AuditEntry {
        at_ms: now,
        actor: actor.into(),
        action: action.into(),
        subject: format!("person:{person_id}"),
        detail,
    }
}

/// Who a refused or limited attempt was about: the account its failure counts against
/// (a person id as typed; none for a code, whose failures count against the address only,
/// so that guessing codes cannot lock anyone out), and the person it is audited under.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    account: Option<&'a str>,
    person: Option<&'a str>,
    address: &'a str,
}

impl Attempt<'_> {
    fn audit(&self, action: &str, detail: String, now: i64) -> AuditEntry {
        AuditEntry {
            at_ms: now,
            actor: "sign-in".into(),
            action: action.into(),
            // An unknown code names no person: its refusals are kept under one subject.
            subject: self.person.map_or_else(|| "sign_in_code".to_owned(), |p| format!("person:{p}")),
            detail: format!("{detail}; address {}", self.address),
        }
    }
}

/// A refused sign-in: counted, logged (never the password or code) and audited.
async fn refuse(s: &AppState, a: Attempt<'_>, why: &'static str, field: &str) -> ApiError {
    let now = now_ms();
    if let Some(account) = a.account {
        s.signin.by_account.fail(account, now);
    }
    s.signin.by_address.fail(a.address, now);
    tracing::warn!(person_id = a.person.unwrap_or("-"), address = %a.address, reason = why, "sign-in refused");
    if let Err(e) = s.store.audit(&[a.audit("sign_in_refused", why.into(), now)]).await {
        tracing::warn!(error = %e, "auditing a refused sign-in failed");
    }
    ApiError::unauthorized(field, "the person id, password or code is not right")
}

/// 429 when the account or the address has had too many failures.
async fn check_limits(s: &AppState, a: Attempt<'_>) -> Result<(), ApiError> {
    let now = now_ms();
    let by_account = a.account.and_then(|id| s.signin.by_account.blocked(id, now));
    let (field, wait) = match (by_account, s.signin.by_address.blocked(a.address, now)) {
        (Some(w), _) => ("person_id", w),
        (None, Some(w)) => ("address", w),
        (None, None) => return Ok(()),
    };
    tracing::warn!(person_id = a.person.unwrap_or("-"), address = %a.address, field, retry_after_s = wait, "sign-in refused: too many failures");
    if let Err(e) = s.store.audit(&[a.audit("sign_in_limited", format!("too many failures by {field}"), now)]).await {
        tracing::warn!(error = %e, "auditing a limited sign-in failed");
    }
    let mut e =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, field, format!("too many failed sign-ins; try again in {wait} s"));
    e.retry_after_s = Some(wait);
    Err(e)
}

/// The role the session takes: the one asked for, if the person holds it, else the
/// person's least powerful.
fn session_role(p: &PersonRecord, asked: Option<&str>) -> Result<Role, ApiError> {
    match asked {
        Some(name) => role_named(name).filter(|_| p.roles.iter().any(|r| r == name)).ok_or_else(|| {
            ApiError::unprocessable("role", format!("must be one of the person's roles: {}", p.roles.join(", ")))
        }),
        None => DEFAULT_ROLE_ORDER
            .into_iter()
            .find(|r| p.roles.iter().any(|n| n == r.as_str()))
            .ok_or_else(|| ApiError::unprocessable("role", "the person holds no role that may sign in")),
    }
}

/// A new session of `p` in `role`, with its token.
fn new_session(
    s: &AppState,
    p: &PersonRecord,
    role: Role,
    kind: &str,
    headers: &HeaderMap,
) -> Result<(String, SessionRow), ApiError> {
    let token = new_session_token().map_err(|e| ApiError::internal(&e))?;
    let now = now_ms();
    let c = &s.config.sessions;
    let max_expires_ms = now.saturating_add(ms(c.max_s));
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|a| a.chars().take(200).collect());
    let row = SessionRow {
        token_hash: key_at_rest(&token),
        person_id: p.person_id.clone(),
        role: role.as_str().into(),
        created_ms: now,
        expires_ms: now.saturating_add(ms(c.idle_s)).min(max_expires_ms),
        max_expires_ms,
        last_used_ms: now,
        revoked_ms: None,
        kind: kind.into(),
        user_agent: agent,
    };
    Ok((token, row))
}

/// Caches a just-opened session and answers it (201).
fn opened(s: &AppState, p: &PersonRecord, role: Role, token: String, row: SessionRow, address: &str) -> Response {
    s.signin.by_account.clear(&p.person_id);
    let user = person_user(p, role);
    s.tokens.remember(
        row.token_hash.clone(),
        CachedSession {
            user,
            expires_ms: row.expires_ms,
            max_expires_ms: row.max_expires_ms,
            checked_ms: row.created_ms,
        },
    );
    tracing::info!(person_id = %p.person_id, role = role.as_str(), kind = %row.kind, address = %address, "signed in");
    let person = serde_json::json!({
        "person_id": p.person_id, "name": p.name, "role": role, "roles": p.roles,
        "unit_kind": p.unit_kind, "unit_id": p.unit_id,
    });
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "token": token, "expires_ms": row.expires_ms, "max_expires_ms": row.max_expires_ms, "person": person })),
    )
        .into_response()
}

/// `POST /api/v1/sessions`: signs in. Anyone may ask (this is how a person gets a
/// token); no token is needed. With `{"person_id", "password", "role"?}` or
/// `{"code", "role"?}` → 201 `{"token", "expires_ms", "max_expires_ms", "person"}`.
/// A wrong password, an unknown or inactive person, and an unknown, used or expired code
/// answer the same 401; after `sessions.failures_per_account` failures of one account
/// or `sessions.failures_per_address` of one client address within
/// `sessions.failure_window_s`, 429 with `Retry-After`, naming `person_id` or `address`.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", security(()),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 201, description = "`{\"token\", \"expires_ms\", \"max_expires_ms\", \"person\"}`"), doc::E400,
        doc::E401, doc::E413, doc::E415, doc::E429, doc::E503,
    ))]
pub async fn sign_in(State(s): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let address = peer(&req);
    let (parts, body) = req.into_parts();
    let b: SignInBody = read_json(&s, &parts.headers, body, MAX_BODY).await?;
    match (&b.person_id, &b.password, &b.code) {
        (Some(id), Some(password), None) => {
            with_password(&s, id, password, b.role.as_deref(), &address, &parts.headers).await
        }
        (None, None, Some(code)) => with_code(&s, code, b.role.as_deref(), &address, &parts.headers).await,
        _ => Err(ApiError::bad_request("body", "send either person_id and password, or code")),
    }
}

async fn with_password(
    s: &AppState,
    id: &str,
    password: &str,
    role: Option<&str>,
    address: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    check_person_id(id)?;
    check_length("password", password)?;
    let attempt = Attempt { account: Some(id), person: Some(id), address };
    check_limits(s, attempt).await?;
    let person = s.store.person(id).await.map_err(|e| ApiError::unavailable(&e))?;
    let phc = match &person {
        Some(p) => s.store.password(&p.person_id).await.map_err(|e| ApiError::unavailable(&e))?,
        None => None,
    };
    let right = s.signin.passwords.verify(password, phc).await.map_err(PasswordError::into_api_error)?;
    let p = match person {
        Some(p) if right && p.active => p,
        Some(_) if right => return Err(refuse(s, attempt, "person inactive", "password").await),
        _ => return Err(refuse(s, attempt, "wrong password or unknown person", "password").await),
    };
    let role = session_role(&p, role)?;
    let (token, row) = new_session(s, &p, role, "password", headers)?;
    let entry = audit(
        &p.person_id,
        "signed_in",
        &p.person_id,
        format!("role {}; password; address {address}", role.as_str()),
        row.created_ms,
    );
    s.store.insert_session(&row, &entry).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(opened(s, &p, role, token, row, address))
}

async fn with_code(
    s: &AppState,
    code: &str,
    role: Option<&str>,
    address: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if code.is_empty() || code.len() > 64 {
        return Err(ApiError::bad_request("code", "must be 1 to 64 characters"));
    }
    let unknown = Attempt { account: None, person: None, address };
    check_limits(s, unknown).await?;
    let hash = key_at_rest(code);
    let now = now_ms();
    let found = s.store.sign_in_code(&hash).await.map_err(|e| ApiError::unavailable(&e))?;
    let Some(c) = found.filter(|c| c.used_ms.is_none() && c.expires_ms > now) else {
        return Err(refuse(s, unknown, "unknown, used or expired sign-in code", "code").await);
    };
    let person = s.store.person(&c.person_id).await.map_err(|e| ApiError::unavailable(&e))?;
    let Some(p) = person.filter(|p| p.active) else {
        let a = Attempt { person: Some(&c.person_id), ..unknown };
        return Err(refuse(s, a, "sign-in code of an inactive person", "code").await);
    };
    let role = session_role(&p, role)?;
    let (token, row) = new_session(s, &p, role, "code", headers)?;
    let entry = audit(
        &p.person_id,
        "signed_in",
        &p.person_id,
        format!("role {}; code; address {address}", role.as_str()),
        row.created_ms,
    );
    if !s.store.use_sign_in_code(&hash, now, &row, &entry).await.map_err(|e| ApiError::unavailable(&e))? {
        // Another request used the code between the read and this write.
        let a = Attempt { person: Some(&p.person_id), ..unknown };
        return Err(refuse(s, a, "sign-in code used meanwhile", "code").await);
    }
    Ok(opened(s, &p, role, token, row, address))
}

/// The calling session: its token's hash and its person. Only a session token.
fn calling_session(s: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<(String, User), ApiError> {
    let token = bearer(headers, uri.query())
        .ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    if !is_session_token(&token) {
        return Err(ApiError::bad_request(
            "authorization",
            "only a signed-in session can sign out or be renewed; config tokens are changed in the config",
        ));
    }
    let user =
        s.tokens.user(&token).ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))?;
    Ok((key_at_rest(&token), user))
}

/// `DELETE /api/v1/sessions`: signs the calling session out (204); with `?all=true`,
/// every session of its person ("sign out everywhere"). Any signed-in session may, for
/// itself; a config token or a device's key is refused (400), a missing, unknown,
/// revoked or ended token with 401.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "sessions",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("all" = Option<bool>, Query, description = "every session of the person")),
    responses((status = 204, description = "signed out"), doc::E400, doc::E401, doc::E503))]
pub async fn sign_out(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let (hash, user) = calling_session(&s, &headers, &uri)?;
    let mut all = false;
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "all" => all = v.parse().map_err(|_| ApiError::bad_request("all", "must be true or false"))?,
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a parameter of signing out")),
        }
    }
    let person_id = user.person_id.clone().unwrap_or_default();
    let now = now_ms();
    if all {
        let entry = audit(&person_id, "sessions_revoked", &person_id, "signed out everywhere".into(), now);
        let hashes = s.store.revoke_sessions(&person_id, now, &entry).await.map_err(|e| ApiError::unavailable(&e))?;
        s.tokens.forget_person(&person_id);
        tracing::info!(person_id = %person_id, sessions = hashes.len(), "signed out everywhere");
    } else {
        let entry = audit(&person_id, "signed_out", &person_id, String::new(), now);
        s.store.revoke_session(&hash, now, &entry).await.map_err(|e| ApiError::unavailable(&e))?;
        s.tokens.forget(&hash);
        tracing::info!(person_id = %person_id, "signed out");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/sessions/renew`: pushes the calling session's end on by
/// `sessions.idle_s`, never past `max_expires_ms` → `{"expires_ms", "max_expires_ms"}`.
/// Any signed-in session may, for itself; a config token or a device's key is refused
/// (400), a missing, unknown, revoked or ended token with 401.
#[utoipa::path(post, path = "/api/v1/sessions/renew", tag = "sessions",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    responses((status = 200, description = "`{\"expires_ms\", \"max_expires_ms\"}`"), doc::E400, doc::E401, doc::E503))]
pub async fn renew(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let (hash, _) = calling_session(&s, &headers, &uri)?;
    let cached =
        s.tokens.session(&hash).ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))?;
    let now = now_ms();
    let expires_ms = now.saturating_add(ms(s.config.sessions.idle_s)).min(cached.max_expires_ms);
    if !s.store.renew_session(&hash, expires_ms, now).await.map_err(|e| ApiError::unavailable(&e))? {
        s.tokens.forget(&hash);
        return Err(ApiError::unauthorized("authorization", "the session has ended"));
    }
    s.tokens.remember(hash, CachedSession { expires_ms, checked_ms: now, ..cached.clone() });
    Ok(Json(serde_json::json!({ "expires_ms": expires_ms, "max_expires_ms": cached.max_expires_ms })).into_response())
}

/// `PUT /api/v1/people/{id}/password` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
    #[serde(default)]
    old_password: Option<String>,
}

/// `PUT /api/v1/people/{id}/password`: sets a person's password (204), audited. An
/// administrator sets anyone's; any other user (a session, or a config token naming the
/// person) sets only their own, and must send the current one as `old_password` (a
/// wrong one is a failed sign-in: counted, 401). Someone else's password is refused with
/// 403, a device's key and a missing or unknown token with 401; 404 when there is no
/// such person; 400 naming `password` outside 10 to 128 bytes.
#[utoipa::path(put, path = "/api/v1/people/{id}/password", tag = "people",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 204, description = "the password is set"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E413,
        doc::E415, doc::E503,
    ))]
pub async fn set_password(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let address = peer(&req);
    let (parts, body) = req.into_parts();
    let all = [Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner];
    let user = require_user(&s.tokens, &parts.headers, parts.uri.query(), &all)?;
    check_person_id(&id)?;
    let own = user.person_id.as_deref() == Some(id.as_str());
    if user.role != Role::Admin && !own {
        return Err(ApiError::forbidden("authorization", "a person may set only their own password"));
    }
    let b: PasswordBody = read_json(&s, &parts.headers, body, MAX_BODY).await?;
    check_length("password", &b.password)?;
    let p = s.store.person(&id).await.map_err(|e| ApiError::unavailable(&e))?;
    let p = p.ok_or_else(|| ApiError::not_found_at("person_id", format!("no person {id}")))?;
    if user.role != Role::Admin {
        let old = b
            .old_password
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("old_password", "is required to change your own password"))?;
        let attempt = Attempt { account: Some(&id), person: Some(&id), address: &address };
        check_limits(&s, attempt).await?;
        let phc = s.store.password(&id).await.map_err(|e| ApiError::unavailable(&e))?;
        if !s.signin.passwords.verify(old, phc).await.map_err(PasswordError::into_api_error)? {
            return Err(refuse(&s, attempt, "wrong old password", "old_password").await);
        }
    }
    let phc = s.signin.passwords.hash(&b.password).await.map_err(PasswordError::into_api_error)?;
    let now = now_ms();
    let entry = audit(
        &user.name,
        "password_set",
        &p.person_id,
        if own { "own".into() } else { "by an administrator".into() },
        now,
    );
    s.store.set_password(&p.person_id, &phc, now, &entry).await.map_err(|e| ApiError::unavailable(&e))?;
    tracing::info!(person_id = %p.person_id, actor = %user.name, "password set");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/people/{id}/sign-in-code`: issues a one-time sign-in code for a phone
/// (201 `{"code", "expires_ms", "link"}`; the link opens the field app signed in, as
/// text or as a QR code), good once for `sessions.code_s`. Administrators only; every
/// other role, a device's key and a missing or unknown token are refused; 404 when there
/// is no such person, 422 when the person is inactive. The code is in this answer only.
#[utoipa::path(post, path = "/api/v1/people/{id}/sign-in-code", tag = "people", security(("bearer" = ["admin"])),
    params(("id" = String, Path)),
    responses(
        (status = 201, description = "`{\"code\", \"expires_ms\", \"link\"}`"), doc::E401, doc::E403, doc::E404,
        doc::E422, doc::E503,
    ))]
pub async fn issue_code(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    check_person_id(&id)?;
    let p = s.store.person(&id).await.map_err(|e| ApiError::unavailable(&e))?;
    let p = p.ok_or_else(|| ApiError::not_found_at("person_id", format!("no person {id}")))?;
    if !p.active {
        return Err(ApiError::unprocessable("person_id", format!("{id} is inactive")));
    }
    let code = new_sign_in_code().map_err(|e| ApiError::internal(&e))?;
    let now = now_ms();
    let c = SignInCode {
        code_hash: key_at_rest(&code),
        person_id: id.clone(),
        created_ms: now,
        expires_ms: now.saturating_add(ms(s.config.sessions.code_s)),
        used_ms: None,
    };
    let entry = audit(&user.name, "sign_in_code_issued", &id, format!("good until {}", c.expires_ms), now);
    s.store.insert_sign_in_code(&c, &entry).await.map_err(|e| ApiError::unavailable(&e))?;
    tracing::info!(person_id = %id, actor = %user.name, "sign-in code issued");
    let link = format!("{}/field/#server={}&code={code}", origin(&s, &headers), enc(&origin(&s, &headers)));
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "code": code, "expires_ms": c.expires_ms, "link": link })))
        .into_response())
}

/// This server as a browser reaches it: the scheme (https with TLS configured) and the
/// request's `Host`.
fn origin(s: &AppState, headers: &HeaderMap) -> String {
    let scheme = if s.config.tls.is_some() { "https" } else { "http" };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    format!("{scheme}://{host}")
}

fn enc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// `DELETE /api/v1/people/{id}/sessions`: revokes every session of a person
/// (`{"revoked": n}`), audited; their live sockets close within seconds. Administrators
/// only; every other role, a device's key and a missing or unknown token are refused.
#[utoipa::path(delete, path = "/api/v1/people/{id}/sessions", tag = "people", security(("bearer" = ["admin"])),
    params(("id" = String, Path)),
    responses((status = 200, description = "`{\"revoked\": n}`"), doc::E401, doc::E403, doc::E404, doc::E503))]
pub async fn revoke_person(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    check_person_id(&id)?;
    let n = revoke_all(&s, &id, &user.name, "revoked by an administrator").await?;
    Ok(Json(serde_json::json!({ "revoked": n })).into_response())
}

/// Revokes every session of a person (here at once, elsewhere within [`RECHECK_MS`]),
/// audited; answers how many were live.
pub async fn revoke_all(s: &AppState, person_id: &str, actor: &str, why: &str) -> Result<usize, ApiError> {
    let now = now_ms();
    let entry = audit(actor, "sessions_revoked", person_id, why.into(), now);
    let hashes = s.store.revoke_sessions(person_id, now, &entry).await.map_err(|e| ApiError::unavailable(&e))?;
    s.tokens.forget_person(person_id);
    for h in &hashes {
        s.tokens.forget(h);
    }
    tracing::info!(person_id = %person_id, actor = %actor, sessions = hashes.len(), reason = why, "sessions revoked");
    Ok(hashes.len())
}
