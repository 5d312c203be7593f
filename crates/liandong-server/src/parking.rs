//! Parking capture (违停抓拍, issue 17) over HTTP: the parking records a list reads, and
//! their statistics by place (no-parking fence, camera) and China-time hour of day,
//! violations beside all records. Records are made by the sequencer from the parking
//! cameras' pushes (`sequencer/parking.rs`); this module only reads them.
//!
//! Operators and administrators read the whole county; a post officer reads the records
//! of their post's jurisdiction (the post is kept on each record); other roles are
//! refused (403).

use crate::openapi as doc;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_store::{ParkingCount, ParkingFilter, ParkingRecordRow};
use serde::Serialize;

use crate::auth::{require_user, Role, User};
use crate::error::ApiError;
use crate::routes::page_limit;
use crate::time_fmt::rfc3339_ms;
use crate::AppState;

const ROLES: [Role; 3] = [Role::Operator, Role::Admin, Role::PostOfficer];
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;
/// The longest range the statistics count: a year, leap day included.
const MAX_RANGE_MS: i64 = 366 * 86_400_000;
/// The longest plate a filter may name (a plate is 7 or 8 characters).
const MAX_PLATE_CHARS: usize = 16;

/// The caller and the post whose jurisdiction bounds their reads (`None`: the county).
fn caller(s: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<(User, Option<String>), ApiError> {
    let user = require_user(&s.tokens, headers, uri.query(), &ROLES)?;
    let post = match user.role {
        Role::PostOfficer => Some(
            user.unit_id
                .clone()
                .ok_or_else(|| ApiError::forbidden("authorization", "a post officer's token names no post"))?,
        ),
        _ => None,
    };
    Ok((user, post))
}

/// A time parameter: RFC 3339, or unix milliseconds.
fn time_param(key: &str, value: &str) -> Result<i64, ApiError> {
    match value.parse::<i64>() {
        Ok(ms) => Ok(ms),
        Err(_) => liandong_ingest::parse_timestamp(value).map_err(|e| ApiError::bad_request(key, e)),
    }
}

/// One record as the list answers it.
#[derive(Serialize)]
struct RecordAnswer<'a> {
    seq: i64,
    plate: &'a str,
    camera_id: &'a str,
    camera_name: Option<String>,
    time: String,
    lon: f64,
    lat: f64,
    township: Option<&'a str>,
    post_id: Option<&'a str>,
    fence_id: Option<&'a str>,
    fence_name: Option<&'a str>,
    /// Inside a fence during its hours.
    violation: bool,
    window_start: Option<String>,
    alert_seq: Option<i64>,
}

fn record_answer<'a>(s: &'a AppState, r: &'a ParkingRecordRow) -> RecordAnswer<'a> {
    let fences = s.enricher.no_parking().fences();
    let fence_name = r.fence_id.as_deref().and_then(|id| fences.iter().find(|f| f.id == id)).map(|f| f.name.as_str());
    RecordAnswer {
        seq: r.seq,
        plate: &r.plate,
        camera_id: &r.camera_id,
        camera_name: camera_name(s, &r.camera_id),
        time: rfc3339_ms(r.time_ms),
        lon: r.lon,
        lat: r.lat,
        township: r.township.as_deref(),
        post_id: r.post_id.as_deref(),
        fence_id: r.fence_id.as_deref(),
        fence_name,
        violation: r.window_start_ms.is_some(),
        window_start: r.window_start_ms.map(rfc3339_ms),
        alert_seq: r.alert_seq,
    }
}

fn camera_name(s: &AppState, camera_id: &str) -> Option<String> {
    s.cameras.read().unwrap_or_else(|e| e.into_inner()).info(camera_id).map(|c| c.name.clone())
}

/// The list's filters from the query.
fn filter(uri: &Uri) -> Result<ParkingFilter, ApiError> {
    let mut f = ParkingFilter { to_ms: i64::MAX, limit: DEFAULT_PAGE, ..ParkingFilter::default() };
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "plate" => {
                let plate = v.trim();
                if plate.is_empty() || plate.chars().count() > MAX_PLATE_CHARS || plate.contains('\0') {
                    return Err(ApiError::bad_request("plate", format!("must be 1 to {MAX_PLATE_CHARS} characters")));
                }
                let normalized = liandong_ingest::plate::normalize_plate(plate).unwrap_or_else(|| plate.to_owned());
                f.plate = Some(normalized);
            }
            "fence" if v.is_empty() || v.len() > 64 || v.contains('\0') => {
                return Err(ApiError::bad_request("fence", "must be a no-parking fence's id (1 to 64 bytes)"));
            }
            "fence" => f.fence_id = Some(v.into_owned()),
            "from" => f.from_ms = time_param("from", &v)?,
            "to" => f.to_ms = time_param("to", &v)?,
            "before" => {
                f.before = Some(v.parse().map_err(|_| ApiError::bad_request("before", "must be a record number"))?)
            }
            "limit" => f.limit = page_limit(&v, MAX_PAGE)?,
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a filter of the parking records")),
        }
    }
    if f.from_ms >= f.to_ms {
        return Err(ApiError::bad_request("to", "must be after from"));
    }
    Ok(f)
}

/// `GET /api/v1/parking/records`: parking records, newest first, a page at a time.
/// Query: `plate`, `fence` (a no-parking fence's id), `from` and `to` (RFC 3339 or unix
/// ms), `before` (the previous page's last `seq`), `limit` (1 to 500, default 100);
/// `next_before` is absent on the last page. Operators and administrators read every
/// record; a post officer those of their post's jurisdiction; others 403.
#[utoipa::path(get, path = "/api/v1/parking/records", tag = "cameras",
    security(("bearer" = ["operator", "admin", "post_officer"])),
    params(("plate" = Option<String>, Query), ("fence" = Option<String>, Query), ("from" = Option<String>, Query),
        ("to" = Option<String>, Query), ("before" = Option<i64>, Query), ("limit" = Option<u32>, Query, description = "1 to 500")),
    responses((status = 200, description = "`{records, next_before}`"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn records(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let (_, post) = caller(&s, &headers, &uri)?;
    let mut f = filter(&uri)?;
    f.post_id = post;
    let rows = s.store.parking_records(&f).await.map_err(|e| ApiError::unavailable(&e))?;
    let next_before = (rows.len() == f.limit as usize).then(|| rows.last().map(|r| r.seq)).flatten();
    let list: Vec<RecordAnswer<'_>> = rows.iter().map(|r| record_answer(&s, r)).collect();
    Ok(Json(serde_json::json!({ "records": list, "next_before": next_before })).into_response())
}

/// Counts of records and of violations.
#[derive(Default, Clone, Copy, Serialize)]
struct Counts {
    records: i64,
    violations: i64,
}

impl Counts {
    fn add(&mut self, c: &ParkingCount) {
        self.records += c.n;
        if c.violation != 0 {
            self.violations += c.n;
        }
    }
}

/// `GET /api/v1/parking/statistics?from=&to=`: the records of `[from, to)` (both
/// required, RFC 3339 or unix ms, at most 366 days apart) counted in all, by no-parking
/// fence (`fence_id` null: outside every fence), by camera and by China-time hour of day
/// (0 to 23, every hour listed), each as `records` and `violations` (inside a fence
/// during its hours). Roles as the list: a post officer counts their jurisdiction's.
#[utoipa::path(get, path = "/api/v1/parking/statistics", tag = "statistics",
    security(("bearer" = ["operator", "admin", "post_officer"])),
    params(("from" = String, Query), ("to" = String, Query, description = "at most 366 days after from")),
    responses((status = 200, description = "records and violations by fence, camera and hour"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn statistics(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let (_, post) = caller(&s, &headers, &uri)?;
    let (mut from, mut to) = (None, None);
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "from" => from = Some(time_param("from", &v)?),
            "to" => to = Some(time_param("to", &v)?),
            "token" => {}
            other => return Err(ApiError::bad_request(other, "is not a parameter of the parking statistics")),
        }
    }
    let from = from.ok_or_else(|| ApiError::bad_request("from", "is required (RFC 3339)"))?;
    let to = to.ok_or_else(|| ApiError::bad_request("to", "is required (RFC 3339)"))?;
    if from >= to {
        return Err(ApiError::bad_request("to", "must be after from"));
    }
    if to - from > MAX_RANGE_MS {
        return Err(ApiError::bad_request("to", "must be at most 366 days after from"));
    }
    let counts = s.store.parking_counts(from, to, post.as_deref()).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(summary(&s, from, to, &counts)).into_response())
}

/// The statistics' answer from the store's counts.
fn summary(s: &AppState, from: i64, to: i64, counts: &[ParkingCount]) -> serde_json::Value {
    let mut total = Counts::default();
    let mut by_fence: BTreeMap<Option<&str>, Counts> = BTreeMap::new();
    let mut by_camera: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut by_hour = [Counts::default(); 24];
    for c in counts {
        total.add(c);
        by_fence.entry(c.fence_id.as_deref()).or_default().add(c);
        by_camera.entry(&c.camera_id).or_default().add(c);
        if let Some(h) = usize::try_from(c.hour).ok().filter(|h| *h < 24) {
            by_hour[h].add(c);
        }
    }
    let fences = s.enricher.no_parking().fences();
    let by_fence: Vec<_> = by_fence
        .into_iter()
        .map(|(id, n)| {
            let f = id.and_then(|id| fences.iter().find(|f| f.id == id));
            serde_json::json!({"fence_id": id, "name": f.map(|f| &f.name), "kind": f.map(|f| &f.kind),
                               "records": n.records, "violations": n.violations})
        })
        .collect();
    let by_camera: Vec<_> = by_camera
        .into_iter()
        .map(|(id, n)| {
            serde_json::json!({"camera_id": id, "name": camera_name(s, id), "records": n.records, "violations": n.violations})
        })
        .collect();
    let by_hour: Vec<_> = by_hour
        .iter()
        .enumerate()
        .map(|(h, n)| serde_json::json!({"hour": h, "records": n.records, "violations": n.violations}))
        .collect();
    serde_json::json!({
        "from": rfc3339_ms(from),
        "to": rfc3339_ms(to),
        "records": total.records,
        "violations": total.violations,
        "by_fence": by_fence,
        "by_camera": by_camera,
        "by_hour": by_hour,
    })
}
