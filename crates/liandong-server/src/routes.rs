//! HTTP endpoints. Handlers authenticate, read and decode the body, and hand validated
//! reports to the sequencer; no SQL and no spatial rule lives here.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_ingest::Report;
use liandong_store::DeviceRecord;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::auth::{bearer, key_at_rest, key_matches, require_user, Role};
use crate::devices::{generate_key, NewDevice};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::sequencer::Item;
use crate::time_fmt::now_ms;
use crate::AppState;

#[utoipa::path(get, path = "/healthz", tag = "ops",
    summary = "Whether the server answers, for probes and load balancers", security(()),
    responses((status = 200, description = "`ok`: the server answers")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: the Prometheus text, for the metrics service role (a scraper's
/// token) and administrators; operators and everyone else are refused.
#[utoipa::path(get, path = "/metrics", tag = "ops", summary = "The server's metrics in the Prometheus text format",
    security(("bearer" = ["metrics", "admin"])),
    responses((status = 200, description = "Prometheus text exposition"), doc::E401, doc::E403))]
pub async fn metrics(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    if let Err(e) = require_user(&s.tokens, &headers, uri.query(), &[Role::Metrics, Role::Admin]) {
        // A phone's key is a known caller, only not one that reads metrics.
        let device = bearer(&headers, uri.query())
            .is_some_and(|t| s.devices.read().unwrap_or_else(|e| e.into_inner()).by_key(&t).is_some());
        return Err(if device {
            ApiError::forbidden("authorization", "a device's key may not read metrics")
        } else {
            e
        });
    }
    let sampled = crate::metrics::Sampled {
        devices: s.devices.read().unwrap_or_else(|e| e.into_inner()).len(),
        sequencer_queue: s.ingest.queued(),
        live_queue_max: s.hub.deepest_queue(),
        replays_running: s.replays.running(),
        judicial_calendar_days_left: s.config.judicial_calendar_days_left(),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render(sampled)).into_response())
}

/// Reads a body of at most `limit` bytes, within the server's body budget
/// (`ingest.body_budget_bytes`): the bytes it may take are reserved before reading (the
/// declared length, else the limit), so that however many requests read at once, their
/// bodies cannot take more memory than the budget; a request that cannot get its share
/// within `ingest.body_wait_ms` is answered 503 with `Retry-After`.
pub(crate) async fn read_body(s: &AppState, headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body", format!("larger than the limit of {limit} bytes"));
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let want = declared.map_or(limit, |len| len as usize).min(limit);
    let units = s.body_budget.units(want);
    let wait = std::time::Duration::from_millis(s.config.ingest.body_wait_ms);
    let permit = match tokio::time::timeout(wait, s.body_budget.permits.acquire_many(units)).await {
        Ok(Ok(p)) => p,
        _ => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "body",
                "the server is reading as many request bodies as it may; retry",
            );
            e.retry_after_s = Some(1);
            return Err(e);
        }
    };
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large());
    drop(permit);
    bytes
}

/// The bytes of request bodies being read, over all requests (see [`read_body`]), in
/// units of [`BodyBudget::UNIT`] bytes.
pub struct BodyBudget {
    permits: tokio::sync::Semaphore,
    total: u32,
}

impl BodyBudget {
    const UNIT: usize = 1024;

    pub fn new(bytes: usize) -> BodyBudget {
        let total = u32::try_from(bytes.div_ceil(Self::UNIT)).unwrap_or(u32::MAX >> 4).max(1);
        BodyBudget { permits: tokio::sync::Semaphore::new(total as usize), total }
    }

    /// The units a body of `bytes` reserves: never more than the whole budget, so that
    /// a body larger than it is read alone rather than never.
    fn units(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(Self::UNIT)).unwrap_or(u32::MAX).clamp(1, self.total)
    }
}

/// Reads a JSON body of at most `limit` bytes into `T`: 415 unless the content type is
/// JSON, 413 when too large, 400 naming `body` (with serde's line, column and field)
/// when it does not decode.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    require_json(headers)?;
    let bytes = read_body(s, headers, body, limit).await?;
    // A JSON string holds U+0000 only as the escape `\u0000`: look closer only then.
    if bytes.windows(6).any(|w| w == b"\\u0000") {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            liandong_ingest::refuse_nul(&v)?;
        }
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request("body", e.to_string()))
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// A list's `limit` query value: a whole number from 1 to `max`, else a 400 naming
/// `limit`. Every paged list takes its page size through here.
pub(crate) fn page_limit(value: &str, max: u32) -> Result<u32, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::bad_request("limit", format!("must be 1 to {max}")))
}

pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match content_type(headers) {
        Some(ct) if ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) => Ok(()),
        Some(ct) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            format!("must be application/json, not {ct}"),
        )),
        None => Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type", "must be application/json")),
    }
}

/// Who may submit reports for which device.
enum Reporter {
    /// An administrator or gateway token: any registered device.
    Gateway,
    /// A device's own key: only that device.
    Device(String),
    /// No credentials on the request itself: each report must carry its device's key.
    PerReport,
}

impl AppState {
    fn reporter(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Reporter, ApiError> {
        let Some(token) = bearer(headers, query) else {
            return Ok(Reporter::PerReport);
        };
        if let Some(user) = self.tokens.user(&token) {
            return match user.role {
                Role::Admin | Role::Device => Ok(Reporter::Gateway),
                role => Err(ApiError::forbidden(
                    "authorization",
                    format!("role {role:?} may not submit reports for devices"),
                )),
            };
        }
        let devices = self.devices.read().unwrap_or_else(|e| e.into_inner());
        match devices.by_key(&token) {
            Some(d) => Ok(Reporter::Device(d.device_id.clone())),
            None => Err(ApiError::unauthorized("authorization", "the token is not valid")),
        }
    }

    /// Checks that the report's device is known and that the caller may report for it;
    /// answers the device's unit and name.
    fn admit(
        &self,
        who: &Reporter,
        r: &Report,
        now: i64,
        prefix: &str,
        id_field: &str,
        time_field: &str,
    ) -> Result<DeviceOf, ApiError> {
        let field = |f: &str| {
            if prefix.is_empty() {
                f.to_owned()
            } else {
                format!("{prefix}.{f}")
            }
        };
        let devices = self.devices.read().unwrap_or_else(|e| e.into_inner());
        let Some(device) = devices.get(&r.device_id) else {
            return Err(ApiError::forbidden(
                field(id_field),
                format!("unknown device {}; an administrator registers it with POST /api/v1/devices", r.device_id),
            ));
        };
        match who {
            Reporter::Gateway => {}
            Reporter::Device(id) if *id == r.device_id => {}
            Reporter::Device(id) => {
                return Err(ApiError::forbidden(
                    field(id_field),
                    format!("the key presented belongs to device {id}, not {}", r.device_id),
                ))
            }
            Reporter::PerReport => match &r.key {
                Some(k) if key_matches(k, &device.key) => {}
                Some(_) => return Err(ApiError::unauthorized(field("key"), "does not match the device's key")),
                None => {
                    return Err(ApiError::unauthorized(
                        field("key"),
                        "a device key is required (key= in the URL, or a bearer token)",
                    ))
                }
            },
        }
        drop(devices);
        self.check_device(r, now, &field(id_field), &field(time_field))
    }

    /// Checks that the report's device is registered and its time plausible, and
    /// returns the device's unit and name. Whether the caller may report for the device
    /// is the caller's check.
    pub(crate) fn check_device(
        &self,
        r: &Report,
        now: i64,
        id_field: &str,
        time_field: &str,
    ) -> Result<DeviceOf, ApiError> {
        let devices = self.devices.read().unwrap_or_else(|e| e.into_inner());
        let Some(device) = devices.get(&r.device_id) else {
            return Err(ApiError::forbidden(
                id_field,
                format!("unknown device {}; an administrator registers it with POST /api/v1/devices", r.device_id),
            ));
        };
        if let Some(t) = r.fix_time_ms {
            self.check_event_time(t, now, time_field)?;
        }
        Ok((device.unit_id.as_deref().map(Arc::from), Arc::from(device.name.as_str())))
    }

    /// Refuses an event dated outside the window around the server's clock
    /// (`ingest.accept_past_s` before, `ingest.accept_ahead_s` after), naming the field.
    pub(crate) fn check_event_time(&self, t_ms: i64, now: i64, field: &str) -> Result<(), ApiError> {
        let (past_s, ahead_s) = (self.config.ingest.accept_past_s, self.config.ingest.accept_ahead_s);
        let ahead_ms = t_ms.saturating_sub(now);
        if ahead_ms > (ahead_s as i64).saturating_mul(1000) {
            return Err(ApiError::bad_request(
                field,
                format!(
                    "is {} s ahead of the server's clock (at most {ahead_s} s: ingest.accept_ahead_s)",
                    ahead_ms / 1000
                ),
            ));
        }
        let age_ms = now.saturating_sub(t_ms);
        if age_ms > (past_s as i64).saturating_mul(1000) {
            return Err(ApiError::bad_request(
                field,
                format!("is {} s before the server's clock (at most {past_s} s: ingest.accept_past_s)", age_ms / 1000),
            ));
        }
        Ok(())
    }
}

/// A registered device's unit and name, as a report's checks find them.
pub(crate) type DeviceOf = (Option<Arc<str>>, Arc<str>);

#[derive(Serialize)]
struct Accepted {
    index: usize,
    seq: i64,
    device_id: String,
    flags: Vec<&'static str>,
}

#[derive(Serialize)]
struct Rejected {
    index: usize,
    status: u16,
    field: Option<String>,
    reason: String,
}

#[derive(Serialize)]
struct BatchAnswer {
    accepted: Vec<Accepted>,
    rejected: Vec<Rejected>,
}

/// `POST /api/v1/positions`: a batch of reports in our JSON. Answers which were
/// accepted (with their sequence numbers) and which were rejected and why.
#[utoipa::path(post, path = "/api/v1/positions", tag = "ingest",
    security((), ("device_key" = []), ("bearer" = ["admin", "device"])),
    request_body(content = doc::PositionsBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "which items were accepted (with their sequence numbers) and which rejected, and why"),
        doc::E400, doc::E401, doc::E403, doc::E413, doc::E415, doc::E422, doc::E503,
    ))]
pub async fn post_positions(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let who = s.reporter(&headers, uri.query())?;
    require_json(&headers)?;
    let limit = match who {
        Reporter::PerReport => s.config.ingest.anonymous_body_bytes,
        _ => s.config.ingest.max_body_bytes,
    };
    let bytes = read_body(&s, &headers, body, limit).await?;
    let decoded = liandong_ingest::json::decode_batch(&bytes)?;
    let now = now_ms();
    let mut items = Vec::new();
    let mut indexes = Vec::new();
    let mut rejected = Vec::new();
    for (index, item) in decoded.into_iter().enumerate() {
        let prefix = format!("positions[{index}]");
        let checked = item
            .map_err(ApiError::from)
            .and_then(|r| s.admit(&who, &r, now, &prefix, "device_id", "time").map(|of| (r, of)));
        match checked {
            Ok((report, (unit_id, device_name))) => {
                indexes.push(index);
                items.push(Item { report, recv_ms: now, unit_id, device_name });
            }
            Err(e) => rejected.push(Rejected { index, status: e.status.as_u16(), field: e.field, reason: e.reason }),
        }
    }
    s.metrics.reports_rejected.increment(rejected.len() as u64);
    let devices: Vec<String> = items.iter().map(|i| i.report.device_id.clone()).collect();
    let acks = s.ingest.submit(items).await?;
    let accepted: Vec<Accepted> = acks
        .into_iter()
        .zip(indexes)
        .zip(devices)
        .map(|((a, index), device_id)| Accepted {
            index,
            seq: a.seq,
            device_id,
            flags: liandong_core::jump::flags::names(a.flags),
        })
        .collect();
    let status =
        if accepted.is_empty() && !rejected.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(BatchAnswer { accepted, rejected })).into_response())
}

/// `GET|POST /osmand` (and `/` with an OsmAnd query): one report as Traccar Client
/// sends it. Answers 200 with an empty body once the report is committed.
#[utoipa::path(method(get, post), path = "/osmand", tag = "ingest",
    summary = "One location report as Traccar Client (OsmAnd) sends it",
    security(("key_query" = []), ("bearer" = ["admin", "device"])),
    params(
        ("id" = Option<String>, Query, description = "the device id"),
        ("key" = Option<String>, Query, description = "the device key"),
        ("lat" = Option<f64>, Query, description = "latitude"), ("lon" = Option<f64>, Query, description = "longitude"),
        ("timestamp" = Option<String>, Query, description = "fix time"),
    ),
    request_body(
        content = String, content_type = "application/x-www-form-urlencoded",
        description = "the OsmAnd fields as a form (or JSON from Traccar Client 9)",
    ),
    responses(
        (status = 200, description = "the report is committed"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E503,
    ))]
pub async fn osmand(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    // Who is calling is known from the headers and the URL before the body is read:
    // Traccar Client puts the key in the query; a bearer header is accepted too. A
    // request naming neither (an old client's form with the key in the body) gets only a
    // small body.
    // The query is read once: for its key now, for the report with the body.
    let query = liandong_ingest::osmand::Query::read(uri.query().unwrap_or(""));
    let who = match (bearer(&headers, None), query.key()) {
        (Some(_), _) => s.reporter(&headers, None)?,
        (None, Some(key)) => {
            let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
            match devices.by_key(key) {
                Some(d) => Reporter::Device(d.device_id.clone()),
                None => {
                    s.metrics.reports_rejected.increment(1);
                    return Err(ApiError::unauthorized("key", "does not match a registered device's key"));
                }
            }
        }
        (None, None) => Reporter::PerReport,
    };
    let limit = match who {
        Reporter::PerReport => s.config.ingest.anonymous_body_bytes,
        _ => s.config.ingest.max_body_bytes,
    };
    let bytes = read_body(&s, &headers, body, limit).await?;
    let report = query.decode(content_type(&headers), &bytes).inspect_err(|_| {
        s.metrics.reports_rejected.increment(1);
    })?;
    let now = now_ms();
    let (unit_id, device_name) = s.admit(&who, &report, now, "", "id", "timestamp").inspect_err(|_| {
        s.metrics.reports_rejected.increment(1);
    })?;
    s.ingest.submit(vec![Item { report, recv_ms: now, unit_id, device_name }]).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /`: one OsmAnd report, for Traccar Client pointed at the bare server URL; the
/// same as `POST /osmand` (a route of its own so that the contract describes it).
#[utoipa::path(post, path = "/", tag = "ingest", security(("key_query" = []), ("bearer" = ["admin", "device"])),
    params(
        ("id" = Option<String>, Query, description = "the device id"),
        ("key" = Option<String>, Query, description = "the device key"),
    ),
    request_body(
        content = String, content_type = "application/x-www-form-urlencoded",
        description = "the OsmAnd fields as a form (or JSON from Traccar Client 9)",
    ),
    responses(
        (status = 200, description = "the report is committed"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E503,
    ))]
pub async fn osmand_at_root(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    osmand(state, headers, uri, body).await
}

/// `GET /`: Traccar Client pointed at the bare server URL sends its reports here;
/// everyone else gets the web page.
#[utoipa::path(get, path = "/", tag = "ingest", security((), ("key_query" = [])),
    params(
        ("id" = Option<String>, Query, description = "OsmAnd: the device id"),
        ("key" = Option<String>, Query, description = "OsmAnd: the device key"),
    ),
    responses(
        (status = 200, description = "the web page, or the report committed (OsmAnd query)"), doc::E400, doc::E401,
        doc::E413, doc::E503,
    ))]
pub async fn root(state: State<Arc<AppState>>, headers: HeaderMap, uri: Uri, body: Body) -> Response {
    let is_osmand = uri
        .query()
        .is_some_and(|q| liandong_ingest::form::pairs(q.as_bytes()).any(|(k, _)| k == "id" || k == "deviceid"));
    if is_osmand {
        return osmand(state, headers, uri, body).await.into_response();
    }
    crate::web::page(&state.config.web_dir).await
}

#[derive(Serialize)]
struct DeviceView<'a> {
    #[serde(flatten)]
    device: &'a DeviceRecord,
    last: Option<&'a RawValue>,
}

/// `GET /api/v1/devices`: the devices the caller may see, with their last committed
/// report: every device for operators and administrators, the devices of their unit for
/// a patrol leader or post officer, except tagged persons' phones, which only the roles
/// on the person's record see (a partner sees only those). Each tagged phone listed is
/// an audited read.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "partner"])),
    responses((status = 200, description = "`{\"devices\": [...]}`"), doc::E401, doc::E403, doc::E503))]
pub async fn list_devices(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let readers = [Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::Partner];
    let user = require_user(&s.tokens, &headers, uri.query(), &readers)?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let raw: std::collections::HashMap<String, Arc<RawValue>> = {
        let live = s.live.read().unwrap_or_else(|e| e.into_inner());
        live.devices.iter().map(|(id, d)| (id.clone(), d.json.clone())).collect()
    };
    let mut audit = Vec::new();
    let now = now_ms();
    let body = {
        let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
        let zones = s.zones.read().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<DeviceView> = devices
            .all()
            .filter(|d| {
                let phone = zones.tagged_phone(&d.device_id);
                let what = || format!("device {} in the device list", d.device_id);
                let device = (d.unit_id.as_deref(), phone.as_deref());
                let read = crate::scope::position_read((&user.name, user.role), &reach, device, what, now);
                let seen = read.is_some();
                audit.extend(read.flatten());
                seen
            })
            .map(|d| DeviceView { device: d, last: raw.get(d.device_id.as_str()).map(|j| &**j) })
            .collect();
        list.sort_by(|a, b| a.device.device_id.cmp(&b.device.device_id));
        serde_json::to_vec(&serde_json::json!({ "devices": list })).map_err(|e| ApiError::internal(&e))?
    };
    s.store.audit(&audit).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/v1/whoami`: who the caller's token says it is, so that a page can show what
/// the caller may use (the wall map shows its device registration to administrators only)
/// and a phone can check the device id and key it was given before it relies on them.
///
/// Any valid token may ask, and learns only about itself: a user token answers
/// `{"name", "role", "unit_id"}` from the config; a device's key answers
/// `{"name", "role": "device", "unit_id", "device_id", "kind", "person_id"}` from the
/// registry (never the key; a device bound to a person names the person, and `name` is
/// the person's). A signed-in session answers its person and chosen role. A missing,
/// unknown, revoked or ended token is refused with 401.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "devices",
    security(
        ("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner", "device"]),
        ("device_key" = []),
    ),
    responses((status = 200, description = "who the token is"), doc::E401))]
pub async fn whoami(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let token = bearer(&headers, uri.query())
        .ok_or_else(|| ApiError::unauthorized("authorization", "a bearer token is required"))?;
    if let Some(user) = s.tokens.user(&token) {
        if user.role == Role::Metrics {
            return Err(ApiError::forbidden("authorization", "a metrics token reads /metrics only"));
        }
        return Ok(
            Json(serde_json::json!({ "name": user.name, "role": user.role, "unit_id": user.unit_id, "person_id": user.person_id }))
                .into_response()
        );
    }
    let d = {
        let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
        devices
            .by_key(&token)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("authorization", "the token is not valid"))?
    };
    // A device bound to a person acts for that person: it answers with the person's name.
    let person = match &d.person_id {
        Some(id) => s.store.person(id).await.map_err(|e| ApiError::unavailable(&e))?,
        None => None,
    };
    Ok(Json(serde_json::json!({
        "name": person.as_ref().map_or(&d.name, |p| &p.name),
        "role": Role::Device,
        "unit_id": d.unit_id,
        "device_id": d.device_id,
        "kind": d.kind,
        "person_id": d.person_id,
    }))
    .into_response())
}

/// `POST /api/v1/devices`: registers or updates a device. The key is returned here
/// and nowhere else. Registering a known device id again without a key issues a new one
/// and the old key stops working at once: how a lost phone is replaced.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", security(("bearer" = ["admin"])),
    request_body(content = crate::devices::NewDevice, content_type = "application/json"),
    responses(
        (status = 200, description = "the device updated, with its key"),
        (status = 201, description = "the device registered, with its key"), doc::E400, doc::E401, doc::E403, doc::E409,
        doc::E413, doc::E415, doc::E422, doc::E503,
    ))]
pub async fn register_device(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let new: NewDevice = read_json(&s, &headers, body, 64 * 1024).await?;
    new.validate()?;
    let key = match &new.key {
        Some(k) => k.clone(),
        None => generate_key().map_err(|e| ApiError::internal(&e))?,
    };
    {
        let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
        if devices.by_key(&key).is_some_and(|d| d.device_id != new.device_id) {
            return Err(ApiError::new(StatusCode::CONFLICT, "key", "is already used by another device"));
        }
    }
    if let Some(person_id) = &new.person_id {
        // A device's key acts for its person, and nobody may act for someone unknown or
        // who has left.
        match s.store.person(person_id).await.map_err(|e| ApiError::unavailable(&e))? {
            Some(p) if p.active => {}
            Some(_) => return Err(ApiError::unprocessable("person_id", format!("{person_id} is inactive"))),
            None => return Err(ApiError::unprocessable("person_id", format!("no person {person_id}"))),
        }
    }
    let now = now_ms();
    let created_ms =
        s.devices.read().unwrap_or_else(|e| e.into_inner()).get(&new.device_id).map_or(now, |d| d.created_ms);
    let record = DeviceRecord {
        device_id: new.device_id,
        name: new.name,
        kind: new.kind,
        unit_id: new.unit_id,
        key: key_at_rest(&key),
        created_ms,
        updated_ms: now,
        person_id: new.person_id,
    };
    let created = s.store.upsert_device(&record).await.map_err(|e| ApiError::unavailable(&e))?;
    tracing::info!(device_id = %record.device_id, kind = %record.kind, created, "device registered");
    s.edit_registry(&s.devices, |d| d.insert(record.clone()));
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(serde_json::json!({ "device": record, "key": key }))).into_response())
}

#[derive(Serialize)]
struct LayerInfo<'a> {
    name: &'a str,
    features: usize,
    geometry_types: &'a [String],
    provenance: Option<&'a str>,
    illustrative: bool,
    href: String,
}

/// `GET /api/v1/layers`: the map's layers, for every user but a device gateway and for
/// a registered device's key; the computed hotspot layer is listed for operators and
/// administrators only.
#[utoipa::path(get, path = "/api/v1/layers", tag = "map",
    security(
        ("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"]),
        ("device_key" = []),
    ),
    responses((status = 200, description = "the map layers"), doc::E401, doc::E403))]
pub async fn list_layers(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let role = s.any_user(&headers, uri.query())?;
    let layers: Vec<LayerInfo> = s
        .map
        .layers
        .values()
        .map(|l| LayerInfo {
            name: &l.name,
            features: l.collection.features.len(),
            geometry_types: &l.geometry_types,
            provenance: l.provenance.as_deref(),
            illustrative: l.illustrative,
            href: format!("/api/v1/layers/{}", l.name),
        })
        .collect();
    let mut layers = serde_json::to_value(layers).unwrap_or_default();
    // The computed hotspot layer, for the roles that may see where incidents happen.
    if let (Some(list), true) = (layers.as_array_mut(), matches!(role, Role::Admin | Role::Operator)) {
        // The latest analysis (made now if there is none, or it is stale).
        let latest = crate::planning::current_hotspot_layer(&s).await?;
        list.push(serde_json::json!({
            "name": "hotspots",
            "features": latest.features,
            "geometry_types": ["Polygon"],
            "provenance": "computed: the latest hotspot analysis of incidents and alerts, for the band in force",
            "illustrative": false,
            "computed": true,
            "analysed_at": crate::time_fmt::rfc3339_ms(latest.at_ms),
            "band": latest.band_label,
            "href": "/api/v1/layers/hotspots",
        }));
    }
    Ok(Json(serde_json::json!({ "layers": layers })).into_response())
}

/// `GET /api/v1/layers/{name}`: one layer as an RFC 7946 FeatureCollection, for the
/// callers of [`list_layers`]; the hotspot layer for operators and administrators only.
/// A map layer is gzipped for a caller that accepts it (compressed once, see
/// `compress::Precompressed`): a phone on a slow link draws the county sooner.
#[utoipa::path(get, path = "/api/v1/layers/{name}", tag = "map",
    security(
        ("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"]),
        ("device_key" = []),
    ),
    params(("name" = String, Path)),
    responses((status = 200, description = "an RFC 7946 FeatureCollection"), doc::E401, doc::E403, doc::E404))]
pub async fn get_layer(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let role = s.any_user(&headers, uri.query())?;
    if name == "hotspots" && !s.layer_json.contains_key("hotspots") {
        if !matches!(role, Role::Admin | Role::Operator) {
            return Err(ApiError::forbidden("authorization", "the hotspot layer is for operators"));
        }
        let layer = crate::planning::current_hotspot_layer(&s).await?;
        return Ok(([(header::CONTENT_TYPE, "application/geo+json")], layer.json).into_response());
    }
    match s.layer_json.get(&name) {
        Some(layer) => Ok(layer.answer(&headers).await),
        None => Err(ApiError::not_found(format!("no layer named {name}; GET /api/v1/layers lists them"))),
    }
}

impl AppState {
    /// The role of a caller who may read the map's layers: any user but a device
    /// gateway's token, or a registered device's own key (answered as [`Role::Device`]),
    /// so that a phone signed in with its key draws the county (the field app). Neither
    /// of the last two may read the computed hotspot layer.
    fn any_user(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Role, ApiError> {
        if let Some(token) = bearer(headers, query) {
            let devices = self.devices.read().unwrap_or_else(|e| e.into_inner());
            if self.tokens.user(&token).is_none() && devices.by_key(&token).is_some() {
                return Ok(Role::Device);
            }
        }
        require_user(
            &self.tokens,
            headers,
            query,
            &[Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner],
        )
        .map(|u| u.role)
    }
}
