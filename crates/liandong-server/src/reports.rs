//! Grid-member reports (网格员上报) and the centre's statistics (incidents, alerts, and
//! the mediation centre's, from `mediation`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::incident::State as IncidentState;
use liandong_core::Datum;
use std::collections::BTreeMap;

use liandong_core::stats::{self, Period};
use liandong_store::{AlertFact, GridReport, IncidentFacts};
use serde::Deserialize;

use crate::auth::{require_user, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::routes::read_json;
use crate::time_fmt::now_ms;
use crate::AppState;

pub const REPORT_CATEGORIES: [&str; 6] = ["dispute", "hazard", "suspicious", "fire", "traffic", "other"];
const MAX_PHOTOS: usize = 4;
/// Reports carry up to four phone photos.
const MAX_REPORT_BYTES: usize = 12 << 20;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewReport {
    category: String,
    text: String,
    lon: f64,
    lat: f64,
    #[serde(default)]
    datum: Option<String>,
    #[serde(default)]
    time: Option<serde_json::Value>,
    #[serde(default)]
    photos_base64: Vec<String>,
}

/// `POST /api/v1/reports`: a grid member's report with a place, a category, text and
/// optional JPEG photos. A dispute opens a case in the mediation queue in the same
/// transaction. Answers 201 once stored.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports",
    security(("bearer" = ["grid_member", "post_officer", "operator", "admin"])),
    request_body(content = crate::reports::NewReport, content_type = "application/json"),
    responses(
        (status = 200, description = "the same report filed before (a resend)"),
        (status = 201, description = "the report stored"), doc::E400, doc::E401, doc::E403, doc::E413, doc::E415,
        doc::E503,
    ))]
pub async fn post_report(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(
        &s.tokens,
        &headers,
        uri.query(),
        &[Role::GridMember, Role::PostOfficer, Role::Operator, Role::Admin],
    )?;
    let r: NewReport = read_json(&s, &headers, body, MAX_REPORT_BYTES).await?;
    if !REPORT_CATEGORIES.contains(&r.category.as_str()) {
        return Err(ApiError::bad_request("category", format!("must be one of {}", REPORT_CATEGORIES.join(", "))));
    }
    let chars = r.text.trim().chars().count();
    if chars == 0 || chars > 2000 {
        return Err(ApiError::bad_request("text", "must be 1 to 2000 characters"));
    }
    let datum = match r.datum.as_deref() {
        None => Datum::Wgs84,
        Some(d) => Datum::parse(d).ok_or_else(|| ApiError::bad_request("datum", "must be wgs84, gcj02 or bd09"))?,
    };
    let position = datum.to_wgs84(r.lon, r.lat).map_err(|e| ApiError::bad_request(e.field(), e.to_string()))?;
    let now = now_ms();
    let time_ms = match &r.time {
        None | Some(serde_json::Value::Null) => now,
        Some(serde_json::Value::Number(n)) => {
            n.as_i64().ok_or_else(|| ApiError::bad_request("time", "must be unix milliseconds"))?
        }
        Some(serde_json::Value::String(t)) => {
            liandong_ingest::parse_timestamp(t).map_err(|e| ApiError::bad_request("time", e))?
        }
        Some(_) => return Err(ApiError::bad_request("time", "must be RFC 3339 or unix milliseconds")),
    };
    s.check_event_time(time_ms, now, "time")?;
    let photos = decode_photos(&r.photos_base64, MAX_PHOTOS)?;
    // The same report again from the same person (a phone that lost the answer and
    // re-sent it) is the report already stored: answered again, not stored twice. A
    // report that gives its time is the same only at the same time.
    let given_time = r.time.as_ref().filter(|t| !t.is_null()).map(|_| time_ms);
    let text = r.text.trim();
    let fingerprint = RecentReports::fingerprint(&user.name, &r.category, text, position, given_time, &r.photos_base64);
    if let Some(earlier) = s.recent_reports.lock().unwrap_or_else(|e| e.into_inner()).get(&fingerprint, now) {
        return Ok((StatusCode::OK, Json(earlier)).into_response());
    }
    // The photos are on disk (fsynced) before the report is submitted, so a stored
    // report never names a lost photo.
    let photo_urls = crate::cameras::store_images(&s, photos).await?;
    let place = s.enricher.enrich(position);
    let enrichment = serde_json::to_value(s.enricher.view(&place, &[], &[])).unwrap_or_default();
    let report = GridReport {
        report_id: 0,
        reporter: user.name.clone(),
        category: r.category,
        text: r.text.trim().to_owned(),
        lon: position.lon(),
        lat: position.lat(),
        time_ms,
        recv_ms: now,
        enrichment: enrichment.clone(),
        photos: photo_urls.len() as i64,
        status: "new".into(),
        photo_urls: photo_urls.clone(),
    };
    let dispute = report.category == "dispute";
    let category = report.category.clone();
    let report_id = s.ingest.submit_report(report, position).await?;
    let case_id = dispute.then_some(report_id);
    tracing::info!(report_id, category = %category, case_id, "grid report stored");
    let body = serde_json::json!({"report_id": report_id, "mediation_case_id": case_id, "place": enrichment,
                                  "photos": photo_urls});
    s.recent_reports.lock().unwrap_or_else(|e| e.into_inner()).insert(fingerprint, body.clone(), now);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Decodes a request's `photos_base64`: at most `max` base64 JPEGs, each refused by its
/// index when it is not base64 or not a JPEG.
pub(crate) fn decode_photos(photos_base64: &[String], max: usize) -> Result<Vec<Vec<u8>>, ApiError> {
    if photos_base64.len() > max {
        return Err(ApiError::bad_request("photos_base64", format!("at most {max} photos")));
    }
    let mut photos = Vec::with_capacity(photos_base64.len());
    for (i, p) in photos_base64.iter().enumerate() {
        let jpeg = liandong_ingest::alert_json::base64_decode(p)
            .map_err(|e| ApiError::bad_request(format!("photos_base64[{i}]"), e))?;
        if !jpeg.starts_with(&[0xFF, 0xD8]) {
            return Err(ApiError::bad_request(format!("photos_base64[{i}]"), "is not a JPEG"));
        }
        photos.push(jpeg);
    }
    Ok(photos)
}

/// Grid reports stored in the last [`RecentReports::WINDOW_MS`], by a fingerprint of
/// who sent what, where and when, with the answer they got. In memory: on a shared
/// database each instance knows only its own.
#[derive(Default)]
pub struct RecentReports {
    by_fingerprint: std::collections::HashMap<[u8; 32], (i64, serde_json::Value)>,
}

impl RecentReports {
    /// A re-sent report arrives within minutes of the first.
    const WINDOW_MS: i64 = 10 * 60 * 1000;
    /// At most this many reports are remembered (a county files hundreds a day).
    const MAX: usize = 10_000;

    fn fingerprint(
        reporter: &str,
        category: &str,
        text: &str,
        place: liandong_core::Position,
        time_ms: Option<i64>,
        photos: &[String],
    ) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [reporter, category, text] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let time = time_ms.map_or(u64::MAX, |t| t as u64);
        for n in [place.lon().to_bits(), place.lat().to_bits(), time, photos.len() as u64] {
            h.update(n.to_le_bytes());
        }
        for p in photos {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        h.finalize().into()
    }

    fn get(&self, f: &[u8; 32], now_ms: i64) -> Option<serde_json::Value> {
        self.by_fingerprint.get(f).filter(|(at, _)| now_ms - at < Self::WINDOW_MS).map(|(_, v)| v.clone())
    }

    fn insert(&mut self, f: [u8; 32], answer: serde_json::Value, now_ms: i64) {
        if self.by_fingerprint.len() >= Self::MAX {
            self.by_fingerprint.retain(|_, (at, _)| now_ms - *at < Self::WINDOW_MS);
        }
        if self.by_fingerprint.len() < Self::MAX {
            self.by_fingerprint.insert(f, (now_ms, answer));
        }
    }
}

/// `GET /api/v1/statistics?from=…&to=…&period=day`: for the centre's report —
/// incidents by kind, township and period with their response times (to sign-for, to
/// arrival on scene, to close), alerts by rule, township and period, disputes mediated
/// and the success rate, reports by category. Bounds are RFC 3339 or unix ms (default:
/// everything); periods are `hour`, `day`, `week`, `month` in China time.
#[utoipa::path(get, path = "/api/v1/statistics", tag = "statistics",
    summary = "The centre's statistics of incidents, alerts, disputes and reports by kind, place and period",
    security(("bearer" = ["partner", "operator", "admin"])),
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("to" = Option<String>, Query, description = "RFC 3339 or Unix ms"),
        ("period" = Option<String>, Query, description = "hour, day, week or month"),
    ),
    responses((status = 200, description = "the counts and times"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn statistics(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Partner, Role::Operator, Role::Admin])?;
    let (mut from, mut to, mut period) = (0i64, i64::MAX, Period::Day);
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let t = || liandong_ingest::parse_timestamp(&v).map_err(|e| ApiError::bad_request(k.to_string(), e));
        match &*k {
            "from" => from = t()?,
            "to" => to = t()?,
            "period" => {
                period = Period::parse(&v)
                    .ok_or_else(|| ApiError::bad_request("period", "must be hour, day, week or month"))?
            }
            _ => {}
        }
    }
    if from > to {
        return Err(ApiError::bad_request("from", "is after to"));
    }
    let unavailable = |e: liandong_store::StoreError| ApiError::unavailable(&e);
    let mediation = s.store.mediation_stats(from, to).await.map_err(unavailable)?;
    // The centre's own statistics beside the old keys; only `by_type` meant the
    // mediation types there before, so the dispute types go as `by_dispute_type`.
    let mut mediation = serde_json::to_value(mediation).map_err(|e| ApiError::internal(&e))?;
    if let (Some(old), serde_json::Value::Object(new)) =
        (mediation.as_object_mut(), crate::mediation::case_statistics(&s, from, to).await?)
    {
        for (k, v) in new {
            let k = if k == "by_type" { "by_dispute_type".to_owned() } else { k };
            old.entry(k).or_insert(v);
        }
    }
    let incidents = s.store.incident_facts(from, to).await.map_err(unavailable)?;
    let mut alerts = s.store.alert_facts(from, to).await.map_err(unavailable)?;
    // Each caller counts only the alerts their role is told of: the judicial office does
    // not learn how many watch-list hits each township had.
    alerts.retain(|a| crate::scope::sees_alert(user.role, &a.roles));
    let township = |t: &Option<String>| t.clone().unwrap_or_else(|| "(outside)".into());
    let incident_groups = |key: &dyn Fn(&IncidentFacts) -> String| {
        let mut groups: BTreeMap<String, Vec<&IncidentFacts>> = BTreeMap::new();
        for i in &incidents {
            groups.entry(key(i)).or_default().push(i);
        }
        groups.into_iter().map(|(k, v)| incident_summary(k, &v)).collect::<Vec<_>>()
    };
    let alert_groups = |key: &dyn Fn(&AlertFact) -> String| {
        let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for a in &alerts {
            let g = groups.entry(key(a)).or_default();
            g.0 += 1;
            g.1 += usize::from(a.priority <= 2);
        }
        groups
            .into_iter()
            .map(|(k, (n, high))| serde_json::json!({"key": k, "count": n, "high_priority": high}))
            .collect::<Vec<_>>()
    };
    let all: Vec<&IncidentFacts> = incidents.iter().collect();
    let body = serde_json::json!({
        "from": (from > 0).then(|| crate::time_fmt::rfc3339_ms(from)),
        "to": (to < i64::MAX).then(|| crate::time_fmt::rfc3339_ms(to)),
        "period": period.as_str(),
        "incidents": {
            "all": incident_summary("all".into(), &all),
            "by_kind": incident_groups(&|i| i.kind.clone()),
            "by_township": incident_groups(&|i| township(&i.township)),
            "by_period": incident_groups(&|i| stats::bucket(i.created_ms, period)),
        },
        "alerts": {
            "count": alerts.len(),
            "by_rule": alert_groups(&|a| a.rule.clone()),
            "by_township": alert_groups(&|a| township(&a.township)),
            "by_period": alert_groups(&|a| stats::bucket(a.time_ms, period)),
        },
        "mediation": mediation,
    });
    Ok(Json(body).into_response())
}

/// Counts and response times of a group of incidents. Response times are measured from
/// creation; an incident that never reached a step does not count in that step's times.
fn incident_summary(key: String, group: &[&IncidentFacts]) -> serde_json::Value {
    let times = |step: fn(&IncidentFacts) -> Option<i64>| {
        let secs: Vec<f64> = group.iter().filter_map(|i| step(i).map(|t| (t - i.created_ms) as f64 / 1000.0)).collect();
        stats::summarize(&secs).map(|d| {
            let r = |v: f64| (v * 10.0).round() / 10.0;
            serde_json::json!({"count": d.count, "mean_s": r(d.mean_s), "median_s": r(d.median_s), "p90_s": r(d.p90_s), "max_s": r(d.max_s)})
        })
    };
    let count = |state: IncidentState| group.iter().filter(|i| i.state == state).count();
    serde_json::json!({
        "key": key,
        "count": group.len(),
        "closed": count(IncidentState::Closed),
        "cancelled": count(IncidentState::Cancelled),
        "open": group.len() - count(IncidentState::Closed) - count(IncidentState::Cancelled),
        "to_dispatch": times(|i| i.dispatched_ms),
        "to_sign": times(|i| i.signed_ms),
        "to_scene": times(|i| i.on_scene_ms),
        "to_close": times(|i| i.closed_ms),
    })
}

/// `GET /api/v1/reports?status=new`: reports to review, newest first (operators).
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", security(("bearer" = ["operator", "admin"])),
    params(("status" = Option<String>, Query, description = "new, accepted, merged or rejected")),
    responses((status = 200, description = "the reports"), doc::E400, doc::E401, doc::E403, doc::E503))]
pub async fn list_reports(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin])?;
    let status: Option<String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.into_owned());
    if let Some(st) = status.as_deref() {
        if !["new", "accepted", "merged", "rejected"].contains(&st) {
            return Err(ApiError::bad_request("status", "must be new, accepted, merged or rejected"));
        }
    }
    let reports = s.store.reports(status.as_deref(), 500).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(serde_json::json!({ "reports": reports })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Review {
    /// accept | merge | reject
    decision: String,
    /// For `merge`: the incident the report joins.
    #[serde(default)]
    incident_id: Option<i64>,
    /// For `accept`: the new incident's priority (default 3).
    #[serde(default)]
    priority: Option<u8>,
    /// Required for `reject`.
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/reports/{id}/review`: `accept` opens an incident at the report's place,
/// `merge` attaches the report to an incident, `reject` needs a reason.
#[utoipa::path(post, path = "/api/v1/reports/{id}/review", tag = "reports",
    security(("bearer" = ["operator", "admin"])), params(("id" = i64, Path)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a JSON object"),
    responses(
        (status = 200, description = "the review"), doc::E400, doc::E401, doc::E403, doc::E404, doc::E409, doc::E413,
        doc::E415, doc::E422, doc::E503,
    ))]
pub async fn review_report(
    State(s): State<Arc<AppState>>,
    Path(report_id): Path<i64>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin])?;
    let r: Review = read_json(&s, &headers, body, 64 * 1024).await?;
    let report = s
        .store
        .report(report_id)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .ok_or_else(|| ApiError::not_found(format!("no report {report_id}")))?;
    if report.status != "new" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "report_id",
            format!("report {report_id} is already {}", report.status),
        ));
    }
    let (status, note, incident) = match r.decision.as_str() {
        "accept" => {
            let priority = r.priority.unwrap_or(3);
            if !(1..=5).contains(&priority) {
                return Err(ApiError::bad_request("priority", "must be 1 (highest) to 5"));
            }
            let position = liandong_core::Position::new(report.lon, report.lat).map_err(|e| ApiError::internal(&e))?;
            let title: String = format!("[{}] {}", report.category, report.text).chars().take(200).collect();
            // The report's alert (its id is the alert's number) becomes the incident's: two
            // accepts at once then open one incident, not two.
            let cmd = crate::sequencer::IncidentCommand::Create {
                title,
                kind: report.category.clone(),
                priority,
                position,
                alert_seq: Some(report_id),
                actor: user.name.clone(),
                now_ms: crate::time_fmt::now_ms(),
            };
            let inc = s.ingest.submit_incident(cmd).await?.map_err(|r| r.into_api_error("decision"))?;
            let id = inc.incident.as_ref().map(|i| i.incident_id);
            ("accepted", format!("incident {}", id.unwrap_or_default()), id)
        }
        "merge" => {
            let id = r.incident_id.ok_or_else(|| ApiError::bad_request("incident_id", "a merge names the incident"))?;
            if s.store.incident(id).await.map_err(|e| ApiError::unavailable(&e))?.is_none() {
                return Err(ApiError::bad_request("incident_id", format!("no incident {id}")));
            }
            ("merged", format!("incident {id}"), Some(id))
        }
        "reject" if r.reason.trim().is_empty() => return Err(ApiError::bad_request("reason", "a rejection says why")),
        "reject" => ("rejected", r.reason.trim().to_owned(), None),
        _ => return Err(ApiError::bad_request("decision", "must be accept, merge or reject")),
    };
    if !s.store.review_report(report_id, status, &note, incident).await.map_err(|e| ApiError::unavailable(&e))? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "report_id",
            format!("report {report_id} was reviewed meanwhile"),
        ));
    }
    tracing::info!(report_id, status, by = %user.name, "report reviewed");
    Ok(Json(serde_json::json!({ "report_id": report_id, "status": status, "incident_id": incident })).into_response())
}
