//! Cameras, the watch list and camera alert ingest: `POST /isapi/events` (Hikvision
//! ISAPI pushes), `POST /api/v1/alerts` (our JSON), and their administration.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::alerts::{WatchEntry, WatchKind};
use liandong_core::{CountyMap, Position};
use liandong_store::{AuditEntry, CameraRecord, TaggedPerson, WatchRecord};
use serde::Deserialize;

use crate::auth::{bearer, kept_key, key_at_rest, key_matches, require_user, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::{read_body, read_json, require_json};
use crate::scope::TAGGED_WATCH_PREFIX;
use crate::sequencer::{CameraInfo, CameraItem};
use crate::time_fmt::now_ms;
use crate::AppState;

/// Camera kinds of the county's systems.
pub const CAMERA_KINDS: [&str; 6] = ["skynet", "huiyan", "sharp_eyes", "checkpoint", "parking", "face"];
/// Largest camera push accepted: an alarm with a few JPEG snapshots.
const MAX_PUSH_BYTES: usize = 8 << 20;
/// A camera's key: long enough not to be guessed, short enough to fit a URL.
const KEY_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
/// Longest camera name, in characters.
const MAX_NAME_CHARS: usize = 100;

struct Camera {
    info: Arc<CameraInfo>,
    /// None for a map camera nobody gave a key: only a gateway token may push for it.
    key: Option<String>,
}

/// The cameras that may push.
#[derive(Default)]
pub struct Registry {
    cameras: HashMap<String, Camera>,
    /// Each camera's allowance of snapshots (`ingest.camera_images_per_min`): a token
    /// bucket of (tokens, when last filled), so that a camera, or a stolen key, pushing
    /// images without end cannot fill the disk with fsynced files.
    images: HashMap<String, (f64, i64)>,
    /// When each camera was last warned about for dropped snapshots: once a minute, so
    /// that a flood of pushes does not become a flood of log lines.
    drop_warned: HashMap<String, i64>,
}

impl Registry {
    /// The map's cameras, overridden by those registered through the API.
    pub fn new(map: &CountyMap, stored: Vec<CameraRecord>) -> Registry {
        let mut r = Registry::default();
        for c in &map.cameras {
            let Ok(position) = Position::new(c.point.x(), c.point.y()) else { continue };
            let info = CameraInfo {
                id: c.id.clone(),
                name: c.name.clone(),
                kind: c.kind.clone().unwrap_or_default(),
                position,
            };
            r.cameras.insert(c.id.clone(), Camera { info: Arc::new(info), key: None });
        }
        for c in stored {
            r.insert(c);
        }
        r
    }

    /// The cameras as `new` makes them, keeping each camera's snapshot allowance: a
    /// reload from the store must not refill it.
    pub fn reload(&mut self, map: &CountyMap, stored: Vec<CameraRecord>) {
        self.cameras = Registry::new(map, stored).cameras;
    }

    /// What the rules know of a camera, by id.
    pub fn info(&self, camera_id: &str) -> Option<Arc<CameraInfo>> {
        self.cameras.get(camera_id).map(|c| c.info.clone())
    }

    /// What the rules know of every camera.
    pub fn infos(&self) -> Vec<Arc<CameraInfo>> {
        self.cameras.values().map(|c| c.info.clone()).collect()
    }

    /// The camera whose key this is (keys are not shared between cameras).
    fn by_key(&self, key: &str) -> Option<&str> {
        let kept = key_at_rest(key);
        self.cameras
            .iter()
            .find(|(_, c)| c.key.as_deref().is_some_and(|k| crate::auth::secrets_equal(k, &kept)))
            .map(|(id, _)| id.as_str())
    }

    /// Whether dropping a camera's snapshots now is worth a warning (the first in a minute).
    fn warn_drop(&mut self, camera_id: &str, now_ms: i64) -> bool {
        let last = self.drop_warned.entry(camera_id.to_owned()).or_insert(i64::MIN);
        let warn = now_ms.saturating_sub(*last) >= 60_000;
        if warn {
            *last = now_ms;
        }
        warn
    }

    /// How many of `offered` snapshots the camera may keep now, at `per_min` a minute
    /// (a burst of a minute's worth at most), counting them as kept.
    fn take_images(&mut self, camera_id: &str, offered: usize, per_min: u32, now_ms: i64) -> usize {
        let cap = f64::from(per_min);
        let (tokens, at) = self.images.entry(camera_id.to_owned()).or_insert((cap, now_ms));
        *tokens = (*tokens + (now_ms - *at).max(0) as f64 * cap / 60_000.0).min(cap);
        *at = now_ms;
        let allowed = (tokens.floor() as usize).min(offered);
        *tokens -= allowed as f64;
        allowed
    }

    fn insert(&mut self, c: CameraRecord) {
        let Ok(position) = Position::new(c.lon, c.lat) else { return };
        let info = CameraInfo { id: c.camera_id.clone(), name: c.name, kind: c.kind, position };
        self.cameras.insert(c.camera_id, Camera { info: Arc::new(info), key: Some(kept_key(c.key)) });
    }
}

/// The watch-list entry of a stored record; None if the record is not usable.
pub fn watch_entry(w: &WatchRecord) -> Option<WatchEntry> {
    Some(WatchEntry {
        id: w.watch_id.clone(),
        kind: WatchKind::parse(&w.kind)?,
        value: w.value.clone(),
        reason: w.reason.clone(),
        priority: u8::try_from(w.priority).ok()?,
        valid_from_ms: w.valid_from,
        valid_to_ms: w.valid_to,
        roles: w.roles.clone(),
    })
}

/// Whether the request carries a gateway's token (an administrator's or a device
/// platform's), which may push for any camera.
fn is_gateway(s: &AppState, headers: &HeaderMap) -> bool {
    bearer(headers, None)
        .and_then(|t| s.tokens.user(&t).map(|u| matches!(u.role, Role::Admin | Role::Device)))
        .unwrap_or(false)
}

/// Finds the camera and checks the caller may push for it: the camera's own key
/// (`?key=`, as configured in the camera's alarm-host URL) or a gateway token.
fn authorise_camera(
    s: &AppState,
    headers: &HeaderMap,
    camera_id: &str,
    key: Option<&str>,
) -> Result<Arc<CameraInfo>, ApiError> {
    let gateway = is_gateway(s, headers);
    let cameras = s.cameras.read().unwrap_or_else(|e| e.into_inner());
    let Some(cam) = cameras.cameras.get(camera_id) else {
        return Err(ApiError::forbidden(
            "camera",
            format!("unknown camera {camera_id}; register it with POST /api/v1/cameras"),
        ));
    };
    if gateway {
        return Ok(cam.info.clone());
    }
    match (key, &cam.key) {
        (Some(k), Some(expected)) if key_matches(k, expected) => Ok(cam.info.clone()),
        (Some(_), _) => Err(ApiError::unauthorized("key", "does not match the camera's key")),
        (None, _) => {
            Err(ApiError::unauthorized("key", "a camera key is required (key= in the push URL) or a gateway token"))
        }
    }
}

/// `POST /isapi/events?camera=ID&key=K`: a Hikvision ISAPI alarm push, raw
/// `EventNotificationAlert` XML or multipart with JPEG snapshots. Answers 200 once the
/// event (and any alert it raised) is committed.
#[utoipa::path(post, path = "/isapi/events", tag = "ingest",
    security(("key_query" = []), ("bearer" = ["admin", "device"])),
    params(
        ("camera" = Option<String>, Query, description = "the camera id"),
        ("key" = Option<String>, Query, description = "the camera's key"),
    ),
    request_body(
        content = String, content_type = "application/xml",
        description = "EventNotificationAlert XML, or multipart/form-data with JPEG snapshots",
    ),
    responses(
        (status = 200, description = "the event (and any alert) committed"), doc::E400, doc::E401, doc::E403, doc::E413,
        doc::E429, doc::E503,
    ))]
pub async fn isapi_push(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let params: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let camera_id =
        params.get("camera").ok_or_else(|| ApiError::bad_request("camera", "required: ?camera=ID in the push URL"))?;
    let camera = authorise_camera(&s, &headers, camera_id, params.get("key").map(String::as_str))?;
    let bytes = read_body(&s, &headers, body, MAX_PUSH_BYTES).await?;
    let ct = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Splitting a multipart push and parsing its XML is CPU work proportional to the
    // body: off the threads that answer requests.
    let event = tokio::task::spawn_blocking(move || liandong_ingest::isapi::decode(ct.as_deref(), &bytes))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    submit_camera_event(&s, event, camera, "dateTime").await
}

/// Checks the event's time against the server's clock, keeps its snapshots (the decoders
/// bound them per push; `ingest.camera_images_per_min` a camera: the alarm is kept
/// without the rest), and submits it.
async fn submit_camera_event(
    s: &AppState,
    mut event: liandong_ingest::isapi::CameraEvent,
    camera: Arc<CameraInfo>,
    time_field: &str,
) -> Result<Response, ApiError> {
    let now = now_ms();
    if let Some(t) = event.time_ms {
        s.check_event_time(t, now, time_field)?;
    }
    let mut images = std::mem::take(&mut event.images);
    let offered = images.len();
    let per_min = s.config.ingest.camera_images_per_min;
    let warn = {
        let mut cameras = s.cameras.write().unwrap_or_else(|e| e.into_inner());
        images.truncate(cameras.take_images(&camera.id, images.len(), per_min, now));
        images.len() < offered && cameras.warn_drop(&camera.id, now)
    };
    if warn {
        tracing::warn!(camera = %camera.id, offered, kept = images.len(), "camera snapshots over the limit were dropped (warned once a minute)");
    }
    let images = store_images(s, images).await?;
    let seen_ms = s.config.clock.now_ms();
    let ack = s.ingest.submit_camera(CameraItem { event, camera, recv_ms: now, images, seen_ms }).await?;
    Ok(Json(ack).into_response())
}

/// `POST /api/v1/alerts`: a camera alert in our JSON (`camera_id` names the camera).
/// The caller is known before the body is read: the camera's key (`?key=`, which names
/// one camera) or a gateway token; the body's camera must then be the key's.
#[utoipa::path(post, path = "/api/v1/alerts", tag = "ingest",
    security(("key_query" = []), ("bearer" = ["admin", "device"])),
    params(("key" = Option<String>, Query, description = "the camera's key")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the event (and any alert) committed"), doc::E400, doc::E401, doc::E403, doc::E413,
        doc::E415, doc::E429, doc::E503,
    ))]
pub async fn post_alert(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let key = uri.query().and_then(|q| liandong_ingest::form::first(q, "key"));
    if !is_gateway(&s, &headers) {
        let known =
            key.as_deref().is_some_and(|k| s.cameras.read().unwrap_or_else(|e| e.into_inner()).by_key(k).is_some());
        if !known {
            return Err(ApiError::unauthorized(
                "key",
                "a camera key is required (key= in the push URL) or a gateway token",
            ));
        }
    }
    let bytes = read_body(&s, &headers, body, MAX_PUSH_BYTES).await?;
    let event = tokio::task::spawn_blocking(move || liandong_ingest::alert_json::decode(&bytes))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let camera_id = event.camera.id.clone().ok_or_else(|| ApiError::bad_request("camera_id", "required"))?;
    let camera = authorise_camera(&s, &headers, &camera_id, key.as_deref())?;
    submit_camera_event(&s, event, camera, "time").await
}

/// Where images were kept before the store kept them (files in the data directory: the
/// embedded store still keeps them there), for a PostgreSQL deployment's older images.
fn legacy_images_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("images")
}

/// Stores the push's JPEGs durably (`Store::put_images`: fsynced files beside the
/// embedded database, a table on PostgreSQL, so that every instance serves them) before
/// the event is submitted, so that an acknowledged event never names a lost image.
/// Returns their URLs. Images of an event whose commit then fails stay unreferenced.
pub(crate) async fn store_images(s: &AppState, images: Vec<Vec<u8>>) -> Result<Vec<String>, ApiError> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let stamp = now_ms();
    let rows: Vec<liandong_store::ImageRow> = images
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let salt = crate::devices::generate_key().unwrap_or_default();
            let name = format!("{stamp}-{}-{i}.jpg", &salt[..12.min(salt.len())]).to_ascii_lowercase();
            liandong_store::ImageRow { name, stored_ms: stamp, bytes }
        })
        .collect();
    s.store.put_images(&rows).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(rows.into_iter().map(|r| format!("/api/v1/images/{}", r.name)).collect())
}

/// `GET /api/v1/images/{name}`: a camera snapshot, a grid report's photo or a feedback
/// photo, to whoever sees a record naming it (`scope::image_read`): operators and
/// administrators any image; a grid member the photos of their own reports; a patrol
/// leader or post officer those of the alerts, reports and incidents in their reach
/// (their tasks' feedback photos); a partner those of the alerts (disputes, the tagged
/// persons entitled to it) and priority-1 incidents it sees. An image of an alert about
/// a tagged person only to the roles on the record, every read audited before it is
/// sent. Any other image is 404, as if it did not exist; a device's key is refused.
#[utoipa::path(get, path = "/api/v1/images/{name}", tag = "cameras",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "the JPEG", content_type = "image/jpeg"), doc::E401, doc::E403, doc::E404,
        doc::E503,
    ))]
pub async fn get_image(
    State(s): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let roles = [Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner];
    let user = require_user(&s.tokens, &headers, uri.query(), &roles)?;
    let valid = name.ends_with(".jpg")
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid || name.contains("..") {
        return Err(ApiError::not_found(format!("no image {name}")));
    }
    let now = now_ms();
    let owners = image_owners(&s, &name).await?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let what = format!("image {name}");
    let audit = match crate::scope::image_read((&user.name, user.role), &reach, &owners, &s.enricher, &what, now) {
        Some(audit) => Some(audit),
        // A home visit's photo follows its visit.
        None => visit_photo_readable(&s, &user, &name).await?.then(Vec::new),
    };
    let Some(audit) = audit else {
        // Whether an image is past the retention is told by its name alone, so saying so
        // tells nothing of what the caller may not see.
        return Err(if expired(&s, &name) { gone(&name) } else { ApiError::not_found(format!("no image {name}")) });
    };
    let stored = s.store.image(&name).await.map_err(|e| ApiError::unavailable(&e))?;
    let found = match stored {
        Some(bytes) => Ok(bytes),
        None => tokio::fs::read(legacy_images_dir(&s.config.data_dir).join(&name)).await,
    };
    match found {
        Ok(bytes) => {
            // The read of a tagged person's image is on record before it is sent.
            s.store.audit(&audit).await.map_err(|e| ApiError::unavailable(&e))?;
            Ok(([(axum::http::header::CONTENT_TYPE, "image/jpeg")], bytes).into_response())
        }
        // Older than the image retention: it was deleted, not never there.
        Err(_) if expired(&s, &name) => Err(gone(&name)),
        Err(_) => Err(ApiError::not_found(format!("no image {name}"))),
    }
}

/// Whether `user` sees the home visit whose photo `name` is (`scope::sees_home_visit`);
/// false when no visit names it.
async fn visit_photo_readable(s: &AppState, user: &crate::auth::User, name: &str) -> Result<bool, ApiError> {
    let url = format!("/api/v1/images/{name}");
    let visit = s.store.home_visit_of_photo(&url).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(visit.is_some_and(|v| {
        crate::scope::sees_home_visit(
            user.role,
            user.unit_id.as_deref(),
            user.person_id.as_deref(),
            v.post_id.as_deref(),
            &v.assignee_id,
        )
    }))
}

/// The records naming an image. Its name starts with the time it was stored, just
/// after its push or report was received and checked: the alerts and reports naming it
/// are of a time `ingest.accept_past_s` before to `ingest.accept_ahead_s` after (a
/// minute's leeway each way), its feedback step later. A name without that time (from
/// before names had it) is named by nothing the lookup finds.
async fn image_owners(s: &AppState, name: &str) -> Result<liandong_store::ImageOwners, ApiError> {
    let Some(stamp) = liandong_store::image_stamp_ms(name) else { return Ok(Default::default()) };
    let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let from = stamp.saturating_sub(ms(s.config.ingest.accept_past_s + 60));
    let to = stamp.saturating_add(ms(s.config.ingest.accept_ahead_s + 60));
    let url = format!("/api/v1/images/{name}");
    s.store.image_owners(&url, from, to).await.map_err(|e| ApiError::unavailable(&e))
}

/// The answer for an image deleted after the image retention.
fn gone(name: &str) -> ApiError {
    ApiError::new(StatusCode::GONE, "name", format!("image {name} was deleted after store.image_retention_days"))
}

/// Whether an image of this name is older than the image retention.
fn expired(s: &AppState, name: &str) -> bool {
    let days = s.config.store.image_retention_days;
    days > 0
        && liandong_store::image_stamp_ms(name)
            .is_some_and(|t| t < now_ms() - i64::from(days) * crate::retention::DAY_MS)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCamera {
    camera_id: String,
    name: String,
    kind: String,
    lon: f64,
    lat: f64,
    key: String,
}

/// `POST /api/v1/cameras`: registers a camera or gives a map camera its key.
#[utoipa::path(post, path = "/api/v1/cameras", tag = "cameras", security(("bearer" = ["admin"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the camera registered"), doc::E400, doc::E401, doc::E403, doc::E409, doc::E413,
        doc::E415, doc::E503,
    ))]
pub async fn register_camera(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let c: NewCamera = read_json(&s, &headers, body, 64 * 1024).await?;
    crate::devices::valid_device_id(&c.camera_id).map_err(|r| ApiError::bad_request("camera_id", r))?;
    if !CAMERA_KINDS.contains(&c.kind.as_str()) {
        return Err(ApiError::bad_request("kind", format!("must be one of {}", CAMERA_KINDS.join(", "))));
    }
    Position::new(c.lon, c.lat).map_err(|e| ApiError::bad_request(e.field(), e.to_string()))?;
    if !KEY_CHARS.contains(&c.key.chars().count()) {
        return Err(ApiError::bad_request(
            "key",
            format!("must be {} to {} characters", KEY_CHARS.start(), KEY_CHARS.end()),
        ));
    }
    let name_chars = c.name.trim().chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS {
        return Err(ApiError::bad_request("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
    }
    // A key names one camera: pushes are told apart by it, and a leaked key must not
    // speak for several cameras. A device's key is not a camera's either.
    let taken_by_camera =
        s.cameras.read().unwrap_or_else(|e| e.into_inner()).by_key(&c.key).is_some_and(|id| id != c.camera_id);
    let taken_by_device = s.devices.read().unwrap_or_else(|e| e.into_inner()).by_key(&c.key).is_some();
    if taken_by_camera || taken_by_device {
        return Err(ApiError::new(StatusCode::CONFLICT, "key", "is already used by another camera or device"));
    }
    let record = CameraRecord {
        camera_id: c.camera_id,
        name: c.name,
        kind: c.kind,
        lon: c.lon,
        lat: c.lat,
        key: key_at_rest(&c.key),
        updated_ms: now_ms(),
    };
    s.store.upsert_camera(&record).await.map_err(|e| ApiError::unavailable(&e))?;
    s.edit_registry(&s.cameras, |r| r.insert(record.clone()));
    Ok((StatusCode::OK, Json(serde_json::json!({ "camera": record }))).into_response())
}

/// `GET /api/v1/cameras`.
#[utoipa::path(get, path = "/api/v1/cameras", tag = "cameras",
    summary = "The cameras that may push: the map's and those registered by API",
    security(("bearer" = ["admin", "operator"])),
    responses((status = 200, description = "the cameras"), doc::E401, doc::E403))]
pub async fn list_cameras(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Admin, Role::Operator])?;
    let cameras = s.cameras.read().unwrap_or_else(|e| e.into_inner());
    let mut list: Vec<serde_json::Value> = cameras
        .cameras
        .values()
        .map(|c| {
            serde_json::json!({"camera_id": c.info.id, "name": c.info.name, "kind": c.info.kind,
                "lon": c.info.position.lon(), "lat": c.info.position.lat(), "has_key": c.key.is_some()})
        })
        .collect();
    list.sort_by(|a, b| a["camera_id"].as_str().cmp(&b["camera_id"].as_str()));
    Ok(Json(serde_json::json!({ "cameras": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWatch {
    watch_id: String,
    kind: String,
    value: String,
    reason: String,
    #[serde(default = "default_priority")]
    priority: u8,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_to: Option<String>,
    #[serde(default = "default_roles")]
    roles: Vec<String>,
}

fn default_priority() -> u8 {
    1
}

fn default_roles() -> Vec<String> {
    vec!["operator".into()]
}

const ROLE_NAMES: [&str; 7] =
    ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner", "device"];

/// `POST /api/v1/watchlist`: adds or replaces a watch-list entry. Plates are
/// normalised (full-width characters, separators, case) before they are stored.
#[utoipa::path(post, path = "/api/v1/watchlist", tag = "alerts", security(("bearer" = ["admin"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the entry stored"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E415,
        doc::E503,
    ))]
pub async fn add_watch(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let w: NewWatch = read_json(&s, &headers, body, 64 * 1024).await?;
    crate::devices::valid_device_id(&w.watch_id).map_err(|r| ApiError::bad_request("watch_id", r))?;
    let kind = WatchKind::parse(&w.kind).ok_or_else(|| ApiError::bad_request("kind", "must be plate or person"))?;
    let value = match kind {
        WatchKind::Plate => liandong_ingest::plate::normalize_plate(&w.value)
            .ok_or_else(|| ApiError::bad_request("value", "is not a plate"))?,
        WatchKind::Person if !w.value.trim().is_empty() && w.value.len() <= 64 => w.value.trim().to_owned(),
        WatchKind::Person => return Err(ApiError::bad_request("value", "must be 1 to 64 characters")),
    };
    if !(1..=5).contains(&w.priority) {
        return Err(ApiError::bad_request("priority", "must be 1 (highest) to 5"));
    }
    if let Some(bad) = w.roles.iter().find(|r| !ROLE_NAMES.contains(&r.as_str())) {
        return Err(ApiError::bad_request("roles", format!("unknown role {bad}")));
    }
    let time = |field: &'static str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref().map(liandong_ingest::parse_timestamp).transpose().map_err(|r| ApiError::bad_request(field, r))
    };
    let record = WatchRecord {
        watch_id: w.watch_id,
        kind: kind.as_str().into(),
        value,
        reason: w.reason,
        priority: i64::from(w.priority),
        valid_from: time("valid_from", &w.valid_from)?,
        valid_to: time("valid_to", &w.valid_to)?,
        roles: w.roles,
        updated_ms: now_ms(),
    };
    s.store.upsert_watch(&record).await.map_err(|e| ApiError::unavailable(&e))?;
    if let Some(entry) = watch_entry(&record) {
        s.edit_registry(&s.watchlist, |w| w.upsert(entry));
    }
    tracing::info!(watch_id = %record.watch_id, kind = %record.kind, by = %user.name, "watch-list entry saved");
    Ok(Json(serde_json::json!({ "watch": record })).into_response())
}

/// `GET /api/v1/watchlist`: the entries whose hits the caller's role is told of. The
/// entries of tagged persons are not listed: `GET /api/v1/tagged` lists them, audited, to
/// the roles on their records.
#[utoipa::path(get, path = "/api/v1/watchlist", tag = "alerts", security(("bearer" = ["admin", "operator"])),
    responses((status = 200, description = "the watch list"), doc::E401, doc::E403, doc::E503))]
pub async fn list_watchlist(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin, Role::Operator])?;
    let mut list = s.store.watchlist().await.map_err(|e| ApiError::unavailable(&e))?;
    list.retain(|w| !w.watch_id.starts_with(TAGGED_WATCH_PREFIX) && crate::scope::sees_alert(user.role, &w.roles));
    Ok(Json(serde_json::json!({ "watchlist": list })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTagged {
    person_id: String,
    name: String,
    #[serde(default = "default_category")]
    category: String,
    #[serde(default)]
    note: String,
    #[serde(default = "default_tagged_roles")]
    roles: Vec<String>,
    /// The person's monitoring phone (a registered device), if they carry one.
    #[serde(default)]
    device_id: Option<String>,
    /// Zones the person may not be in at given hours:
    /// `[{"fence_kind": "school", "from": "22:00", "to": "06:00"}]`.
    #[serde(default)]
    zone_rules: Option<serde_json::Value>,
    /// The post whose jurisdiction the person lives in (a post of the map): its post
    /// officers keep the record when the roles name `post_officer`.
    #[serde(default)]
    post_id: Option<String>,
}

fn default_category() -> String {
    "community_correction".into()
}

fn default_tagged_roles() -> Vec<String> {
    vec!["partner".into(), "operator".into()]
}

/// Roles that may ever see tagged persons, whatever an entry says (a post officer only
/// those of their post: `scope::sees_tagged`).
const TAGGED_ROLES: [&str; 4] = ["admin", "operator", "partner", "post_officer"];

/// `POST /api/v1/tagged`: registers a tagged person (e.g. a community-correction
/// subject); their face hits alert only the roles named. The write is audited.
#[utoipa::path(post, path = "/api/v1/tagged", tag = "tagged", security(("bearer" = ["admin"])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the tagged person registered"), doc::E400, doc::E401, doc::E403, doc::E413,
        doc::E415, doc::E503,
    ))]
pub async fn add_tagged(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let t: NewTagged = read_json(&s, &headers, body, 64 * 1024).await?;
    crate::devices::valid_device_id(&t.person_id).map_err(|r| ApiError::bad_request("person_id", r))?;
    if let Some(bad) = t.roles.iter().find(|r| !TAGGED_ROLES.contains(&r.as_str())) {
        return Err(ApiError::bad_request(
            "roles",
            format!("{bad} may not see tagged persons (allowed: {})", TAGGED_ROLES.join(", ")),
        ));
    }
    if let Some(d) = &t.device_id {
        if s.devices.read().unwrap_or_else(|e| e.into_inner()).get(d).is_none() {
            return Err(ApiError::bad_request("device_id", format!("unknown device {d}; register the phone first")));
        }
    }
    if let Some(post) = &t.post_id {
        if s.enricher.post_position(post).is_none() {
            return Err(ApiError::bad_request("post_id", format!("no post {post} in the map")));
        }
    }
    let zone_rules = t.zone_rules.unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
    let (rules, rule_text) = crate::zones::parse_rules(&zone_rules, s.enricher.fences())
        .map_err(|e| ApiError::bad_request(e.field, e.reason))?;
    let now = now_ms();
    let person = TaggedPerson {
        person_id: t.person_id,
        name: t.name,
        category: t.category,
        note: t.note,
        roles: t.roles,
        updated_ms: now,
        device_id: t.device_id,
        zone_rules,
        post_id: t.post_id,
    };
    let watch = WatchRecord {
        watch_id: format!("{TAGGED_WATCH_PREFIX}{}", person.person_id),
        kind: "person".into(),
        value: person.person_id.clone(),
        reason: format!("重点人员 tagged person ({})", person.category),
        priority: 2,
        valid_from: None,
        valid_to: None,
        // The hits are alerts: told to the record's roles less post officers.
        roles: crate::role::live_roles(&person.roles),
        updated_ms: now,
    };
    let audit = AuditEntry {
        at_ms: now,
        actor: user.name.clone(),
        action: "tagged_person_saved".into(),
        subject: person.person_id.clone(),
        detail: match &person.post_id {
            Some(post) => format!("{}, post {post}", person.category),
            None => person.category.clone(),
        },
    };
    // The person, their watch-list entry and the record of the change, together.
    s.store.save_tagged(&person, &watch, &audit).await.map_err(|e| ApiError::unavailable(&e))?;
    if let Some(entry) = watch_entry(&watch) {
        s.edit_registry(&s.watchlist, |w| w.upsert(entry));
    }
    s.edit_registry(&s.zones, |z| z.upsert(&person, rules, rule_text));
    Ok(Json(serde_json::json!({ "tagged": person })).into_response())
}

/// `GET /api/v1/audit?subject=ID`: the audit log, newest first (administrators).
#[utoipa::path(get, path = "/api/v1/audit", tag = "tagged", security(("bearer" = ["admin"])),
    params(("subject" = Option<String>, Query, description = "the subject id")),
    responses((status = 200, description = "the audit log, newest first"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list_audit(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Admin])?;
    let subject: Option<String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "subject")
        .map(|(_, v)| v.into_owned());
    let log = s.store.audit_log(subject.as_deref(), 1000).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(serde_json::json!({ "audit": log })).into_response())
}

/// Largest page of `GET /api/v1/cameras/status`, and its default.
const MAX_STATUS_PAGE: u32 = 1000;
const DEFAULT_STATUS_PAGE: u32 = 500;
const STATUSES: [&str; 3] = ["online", "offline", "unknown"];

/// `GET /api/v1/cameras/status` (operators, administrators): each camera's status
/// (`online`, `offline`, `unknown`), last seen and offline since, by camera id, a page
/// at a time (`limit` 1 to 1000, default 500; `after`, the last id of the page before,
/// from `next_after`), optionally only one `kind`, `township` (id) or `status`.
#[utoipa::path(get, path = "/api/v1/cameras/status", tag = "cameras",
    security(("bearer" = ["operator", "admin"])),
    params(("kind" = Option<String>, Query), ("township" = Option<String>, Query), ("status" = Option<String>, Query),
        ("after" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1 to 1000")),
    responses((status = 200, description = "`{cameras, next_after, offline_after_s}`"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn camera_status(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Admin, Role::Operator])?;
    let (mut kind, mut township, mut status, mut after) = (None, None, None, None);
    let mut limit = DEFAULT_STATUS_PAGE;
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned() {
        match k.as_str() {
            "kind" => kind = Some(v),
            "township" => township = Some(v),
            "status" if STATUSES.contains(&v.as_str()) => status = Some(v),
            "status" => return Err(ApiError::bad_request("status", "must be online, offline or unknown")),
            "after" => after = Some(v),
            "limit" => limit = crate::routes::page_limit(&v, MAX_STATUS_PAGE)?,
            _ => {}
        }
    }
    let states = crate::camera_watch::states(&s).await?;
    let mut page: Vec<crate::camera_watch::CameraState> = states
        .into_iter()
        .filter(|c| after.as_deref().is_none_or(|a| c.camera_id.as_str() > a))
        .filter(|c| kind.as_deref().is_none_or(|k| c.kind == k))
        .filter(|c| township.as_deref().is_none_or(|t| c.township_id.as_deref() == Some(t)))
        .filter(|c| status.as_deref().is_none_or(|st| c.status == st))
        .take(limit as usize + 1)
        .collect();
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_after = if more { page.last().map(|c| c.camera_id.clone()) } else { None };
    let body = serde_json::json!({
        "cameras": page,
        "next_after": next_after,
        "offline_after_s": s.config.cameras.offline_after_s,
    });
    Ok(Json(body).into_response())
}

/// `GET /api/v1/cameras/availability` (operators, administrators): how many cameras are
/// online, offline and unknown now, with the share online of those heard from, in all,
/// by system (`kind`) and by township.
#[utoipa::path(get, path = "/api/v1/cameras/availability", tag = "cameras",
    security(("bearer" = ["operator", "admin"])),
    responses((status = 200, description = "online, offline and unknown cameras in all, by system and by township"), doc::E401, doc::E403, doc::E503))]
pub async fn camera_availability(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Admin, Role::Operator])?;
    let states = crate::camera_watch::states(&s).await?;
    let mut body =
        serde_json::to_value(crate::camera_watch::availability(&states)).map_err(|e| ApiError::internal(&e))?;
    body["at"] = serde_json::Value::String(crate::time_fmt::rfc3339_ms(s.config.clock.now_ms()));
    body["offline_after_s"] = serde_json::json!(s.config.cameras.offline_after_s);
    Ok(Json(body).into_response())
}
