//! History over HTTP (the wall map's time slider, analysts, reports): where every unit
//! was at a moment, a unit's track between two times as a GeoJSON LineString, alerts
//! and incidents by area and time, and the incidents open at a moment as they were then.
//! GPS-jump-marked fixes are left out; bounds are RFC 3339 or unix ms; `bbox` is
//! `minLon,minLat,maxLon,maxLat`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_store::Bbox;
use serde_json::value::RawValue;

use crate::auth::{require_user, Role};
use crate::error::ApiError;
use crate::feed::report_json;
use crate::openapi as doc;
use crate::routes::page_limit;
use crate::scope::{IncidentFacts, Reach};
use crate::time_fmt::now_ms;
use crate::AppState;

/// Most rows one history answer carries.
const MAX_ROWS: u32 = 50_000;

/// Who may read positions in history: the roles that see units, and partners for the
/// tagged persons' phones entitled to them.
const POSITION_READERS: &[Role] = &[Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::Partner];
/// Who may read incidents: every user role (each within their reach).
const INCIDENT_READERS: &[Role] =
    &[Role::Admin, Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Partner];
/// Every user role (alerts are filtered by role and reach).
const USERS: &[Role] = INCIDENT_READERS;

/// Rows read for a caller who sees part of the county, before their reach filters them.
const SCOPED_READ_ROWS: u32 = 10_000;

/// How many rows to read for a caller who sees part of the county: ten times the answer
/// (at most [`SCOPED_READ_ROWS`], so that an alert history with its tracks stays a few
/// megabytes), since what is outside their reach must not crowd out what is in it; the
/// answer is then cut to `limit`. A caller whose part is a small share of a busy period
/// narrows it with `from`, `to` or `bbox`.
fn scoped_limit(reach: &Reach, limit: u32) -> u32 {
    if reach.is_county() {
        limit
    } else {
        limit.saturating_mul(10).min(SCOPED_READ_ROWS).max(limit)
    }
}
/// How old a unit's last fix may be at `at` for it to count as there (default).
const DEFAULT_MAX_AGE_S: i64 = 900;
/// How long before `at` an incident still open then may have been created (default `from`).
const OPEN_AT_LOOKBACK_MS: i64 = 30 * 24 * 3600 * 1000;

/// The query of a history request, checked.
struct Query {
    at: Option<i64>,
    from: Option<i64>,
    to: Option<i64>,
    bbox: Bbox,
    device_id: Option<String>,
    max_age_s: i64,
    limit: u32,
    /// `state=open`: only what is open now (incidents).
    open: bool,
}

fn query(uri: &Uri) -> Result<Query, ApiError> {
    let mut q = Query {
        at: None,
        from: None,
        to: None,
        bbox: Bbox::ALL,
        device_id: None,
        max_age_s: DEFAULT_MAX_AGE_S,
        limit: 1000,
        open: false,
    };
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let t = || liandong_ingest::parse_timestamp(&v).map_err(|e| ApiError::bad_request(k.to_string(), e));
        match &*k {
            "at" => q.at = Some(t()?),
            "from" => q.from = Some(t()?),
            "to" => q.to = Some(t()?),
            "bbox" => {
                let [min_lon, min_lat, max_lon, max_lat] =
                    crate::ws::parse_bbox(&v).map_err(|r| ApiError::bad_request("bbox", r))?;
                q.bbox = Bbox { min_lon, min_lat, max_lon, max_lat };
            }
            "device_id" => q.device_id = Some(v.into_owned()),
            "state" if v == "open" => q.open = true,
            "state" => return Err(ApiError::bad_request("state", "must be open")),
            "max_age_s" => {
                q.max_age_s = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=86_400).contains(s))
                    .ok_or_else(|| ApiError::bad_request("max_age_s", "must be 1 to 86400 seconds"))?
            }
            "limit" => q.limit = page_limit(&v, MAX_ROWS)?,
            _ => {}
        }
    }
    if let (Some(f), Some(t)) = (q.from, q.to) {
        if f > t {
            return Err(ApiError::bad_request("from", "is after to"));
        }
    }
    Ok(q)
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap_or_default()
}

/// `GET /api/v1/history/positions?at=T[&bbox=…][&max_age_s=900]`: each unit's last good
/// fix at T (no older than `max_age_s`), as a GeoJSON FeatureCollection of points whose
/// properties are the reports as the live feed carried them. Operators and
/// administrators see every unit, a patrol leader or post officer the devices of their
/// unit. A tagged person's phone is shown only to the roles on the person's record (a
/// partner sees only those), and each one shown is an audited read.
#[utoipa::path(get, path = "/api/v1/history/positions", tag = "history",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "partner"])),
    params(
        ("at" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("bbox" = Option<String>, Query, description = "min_lon,min_lat,max_lon,max_lat"),
        ("max_age_s" = Option<u32>, Query, description = "oldest fix shown, default 900"),
    ),
    responses(
        (status = 200, description = "a FeatureCollection of points"), doc::E400, doc::E401, doc::E403, doc::E503,
    ))]
pub async fn positions_at(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), POSITION_READERS)?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let q = query(&uri)?;
    let at = q.at.ok_or_else(|| ApiError::bad_request("at", "the moment to show is required"))?;
    let rows = s.store.positions_at(at, q.max_age_s * 1000, q.bbox).await.map_err(|e| ApiError::unavailable(&e))?;
    let at_text = crate::time_fmt::rfc3339_ms(at);
    let mut audit = Vec::new();
    let features: Vec<serde_json::Value> = {
        let zones = s.zones.read().unwrap_or_else(|e| e.into_inner());
        let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
        rows.iter()
            .filter(|r| {
                let phone = zones.tagged_phone(&r.device_id);
                let unit = devices.get(&r.device_id).and_then(|d| d.unit_id.as_deref());
                let what = || format!("where the phone was at {at_text}");
                let read = crate::scope::position_read(
                    (&user.name, user.role),
                    &reach,
                    (unit, phone.as_deref()),
                    what,
                    now_ms(),
                );
                let seen = read.is_some();
                audit.extend(read.flatten());
                seen
            })
            .map(|r| {
                serde_json::json!({
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                    "properties": report_json(r),
                })
            })
            .collect()
    };
    s.store.audit(&audit).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(serde_json::json!({"type": "FeatureCollection", "at": at_text, "features": features})).into_response())
}

/// `GET /api/v1/history/track?device_id=…&from=…&to=…`: a unit's good fixes in the
/// period as a GeoJSON LineString (a Point for one fix), with each fix's time: any
/// device's for operators and administrators, a device of their unit's for a patrol
/// leader or post officer. A tagged person's phone answers only the roles on the
/// person's record (audited). To anyone else it is a device with no fix in the period.
#[utoipa::path(get, path = "/api/v1/history/track", tag = "history",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "partner"])),
    params(
        ("device_id" = Option<String>, Query), ("from" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
    ),
    responses(
        (status = 200, description = "a GeoJSON LineString (a Point for one fix)"), doc::E400, doc::E401, doc::E403,
        doc::E404, doc::E503,
    ))]
pub async fn track(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), POSITION_READERS)?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let q = query(&uri)?;
    let device = q.device_id.ok_or_else(|| ApiError::bad_request("device_id", "the unit's device is required"))?;
    let to = q.to.unwrap_or_else(now_ms);
    let from = q.from.ok_or_else(|| ApiError::bad_request("from", "the start of the period is required"))?;
    let no_fix = || {
        let reason = format!("no good fix of {device} in the period");
        ApiError::new(axum::http::StatusCode::NOT_FOUND, "device_id", reason)
    };
    let phone = s.zones.read().unwrap_or_else(|e| e.into_inner()).tagged_phone(&device);
    let unit = s.devices.read().unwrap_or_else(|e| e.into_inner()).get(&device).and_then(|d| d.unit_id.clone());
    let what = || format!("the phone's track of {device}");
    match crate::scope::position_read(
        (&user.name, user.role),
        &reach,
        (unit.as_deref(), phone.as_deref()),
        what,
        now_ms(),
    ) {
        None => return Err(no_fix()),
        Some(Some(entry)) => s.store.audit(&[entry]).await.map_err(|e| ApiError::unavailable(&e))?,
        Some(None) => {}
    }
    let rows = s.store.track_points(&device, from, to, MAX_ROWS).await.map_err(|e| ApiError::unavailable(&e))?;
    if rows.is_empty() {
        return Err(no_fix());
    }
    let coordinates: Vec<[f64; 2]> = rows.iter().map(|r| [r.lon, r.lat]).collect();
    let geometry = if coordinates.len() == 1 {
        serde_json::json!({"type": "Point", "coordinates": coordinates[0]})
    } else {
        serde_json::json!({"type": "LineString", "coordinates": coordinates})
    };
    let times: Vec<String> = rows.iter().map(|r| crate::time_fmt::rfc3339_ms(r.fix_ms)).collect();
    let body = serde_json::json!({
        "type": "Feature",
        "geometry": geometry,
        "properties": {"device_id": device, "fixes": rows.len(), "times": times, "truncated": rows.len() as u32 == MAX_ROWS},
    });
    Ok(Json(body).into_response())
}

/// `GET /api/v1/history/alerts?from=…&to=…[&bbox=…][&limit=…]`: alerts by area and time,
/// newest first, as pushed on the feed; each caller sees only the alerts the feed shows
/// them: those naming their role (administrators: all), a patrol leader's only within
/// the team's area. Any user may ask.
#[utoipa::path(get, path = "/api/v1/history/alerts", tag = "history",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("bbox" = Option<String>, Query, description = "min_lon,min_lat,max_lon,max_lat"),
        ("limit" = Option<u32>, Query),
    ),
    responses(
        (status = 200, description = "the alerts as the feed pushed them"), doc::E400, doc::E401, doc::E403, doc::E503,
    ))]
pub async fn alerts(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), USERS)?;
    let q = query(&uri)?;
    let (from, to) = (q.from.unwrap_or(0), q.to.unwrap_or(i64::MAX));
    let role = user.role.as_str();
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let rows = s.store.alerts_in(q.bbox, from, to, scoped_limit(&reach, q.limit)).await;
    let rows = rows.map_err(|e| ApiError::unavailable(&e))?;
    let rows: Vec<&liandong_store::AlertRow> =
        rows.iter().filter(|a| reach.sees_alert(user.role, &a.roles, a.lon, a.lat)).take(q.limit as usize).collect();
    // Alerts about tagged persons are reads of where they were: audited, one entry for
    // the request filed under each person, naming the alerts.
    let tagged: Vec<(i64, String)> =
        rows.iter().filter_map(|a| Some((a.seq, crate::scope::tagged_subject(a)?))).collect();
    let persons: Vec<String> = tagged.iter().map(|(_, p)| p.clone()).collect();
    let seqs: Vec<String> = tagged.iter().take(20).map(|(seq, _)| seq.to_string()).collect();
    let more =
        if tagged.len() > seqs.len() { format!(" and {} more", tagged.len() - seqs.len()) } else { String::new() };
    let what = format!("alert(s) {}{more} in the alert history", seqs.join(", "));
    let action = "tagged_person_alert_read";
    if let Some((entry, subjects)) = crate::scope::reads_entry(&user.name, role, action, &persons, &what, now_ms()) {
        s.store.audit_reads(&entry, &subjects).await.map_err(|e| ApiError::unavailable(&e))?;
    }
    let seqs: Vec<i64> = rows.iter().map(|a| a.seq).collect();
    let acks = s.store.first_alert_acks(&seqs).await.map_err(|e| ApiError::unavailable(&e))?;
    // The first acknowledgement of each alert that has one, by alert number.
    let acknowledged: serde_json::Map<String, serde_json::Value> = acks
        .iter()
        .map(|a| {
            let v = serde_json::json!({"by": a.actor, "at": crate::time_fmt::rfc3339_ms(a.at_ms), "note": a.note, "seq": a.seq});
            (a.alert_seq.to_string(), v)
        })
        .collect();
    let visible: Vec<Box<RawValue>> = rows.iter().map(|a| raw(&a.payload)).collect();
    Ok(Json(serde_json::json!({"alerts": visible, "acknowledged": acknowledged})).into_response())
}

/// Incidents, newest first, in one of three ways:
/// - `GET /api/v1/history/incidents?from=…&to=…[&bbox=…][&limit=…]`: created in the area
///   and period, in their current state;
/// - `…?at=T[&from=…][&bbox=…][&limit=…]`: open at T, as they were then (state,
///   assignment, escalation), created since `from` (default 30 days before T): what the
///   wall map's time slider draws;
/// - `…?state=open[&bbox=…]`: every incident open now, however old.
///
/// Operators and administrators see every incident; a patrol leader, post officer, grid
/// member or the judicial office (partner) those `GET /api/v1/incidents/{id}` shows
/// them (`scope::Reach::sees_incident`), the others are left out. Devices are refused.
#[utoipa::path(get, path = "/api/v1/history/incidents", tag = "history",
    security(("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"])),
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("at" = Option<String>, Query, description = "open at this moment"),
        ("state" = Option<String>, Query, description = "open: every incident open now"),
        ("bbox" = Option<String>, Query, description = "min_lon,min_lat,max_lon,max_lat"),
        ("limit" = Option<u32>, Query),
    ),
    responses((status = 200, description = "the incidents"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn incidents(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), INCIDENT_READERS)?;
    let reach = s.reach(user.role, user.unit_id.as_deref());
    let sees = |facts: IncidentFacts<'_>| reach.sees_incident(facts, &s.enricher);
    let q = query(&uri)?;
    if q.open {
        if q.at.is_some() || q.from.is_some() || q.to.is_some() {
            return Err(ApiError::bad_request("state", "open is now: it takes no at, from or to"));
        }
        let mut rows = s.store.open_incidents().await.map_err(|e| ApiError::unavailable(&e))?;
        let b = q.bbox;
        rows.retain(|i| (b.min_lon..=b.max_lon).contains(&i.lon) && (b.min_lat..=b.max_lat).contains(&i.lat));
        rows.retain(|i| sees(i.into()));
        rows.sort_by_key(|i| std::cmp::Reverse((i.created_ms, i.incident_id)));
        rows.truncate(q.limit as usize);
        return Ok(Json(serde_json::json!({"incidents": rows})).into_response());
    }
    if let Some(at) = q.at {
        if q.to.is_some() {
            return Err(ApiError::bad_request("to", "not with at: at is the end"));
        }
        let from = q.from.unwrap_or(at.saturating_sub(OPEN_AT_LOOKBACK_MS));
        if from > at {
            return Err(ApiError::bad_request("from", "is after at"));
        }
        let events = s.store.incident_events_at(q.bbox, from, at, scoped_limit(&reach, q.limit)).await;
        let events = events.map_err(|e| ApiError::unavailable(&e))?;
        let rows: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| {
                let priority = crate::feed::incident_priority(&e.payload);
                sees(IncidentFacts { assigned_unit: e.unit_id.as_deref(), priority, lon: e.lon, lat: e.lat })
            })
            .filter_map(incident_as_it_was)
            .take(q.limit as usize)
            .collect();
        return Ok(Json(serde_json::json!({"at": crate::time_fmt::rfc3339_ms(at), "incidents": rows})).into_response());
    }
    let (from, to) = (q.from.unwrap_or(0), q.to.unwrap_or(i64::MAX));
    let rows = s.store.incidents_in(q.bbox, from, to, scoped_limit(&reach, q.limit)).await;
    let mut rows = rows.map_err(|e| ApiError::unavailable(&e))?;
    rows.retain(|i| sees(i.into()));
    rows.truncate(q.limit as usize);
    Ok(Json(serde_json::json!({"incidents": rows})).into_response())
}

/// The incident as an event left it: the event's feed message carries the whole incident
/// after the change (`data.incident`).
fn incident_as_it_was(e: &liandong_store::IncidentEventRow) -> Option<serde_json::Value> {
    let mut message: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
    match message.get_mut("data").and_then(|d| d.get_mut("incident")).map(serde_json::Value::take) {
        Some(incident) if incident.is_object() => Some(incident),
        _ => {
            tracing::warn!(
                seq = e.seq,
                incident_id = e.incident_id,
                "incident event without the incident in its message"
            );
            None
        }
    }
}
