//! Hotspots over HTTP: incidents and alerts of the last days counted per 250 m cell and
//! China-time band, smoothed and ranked (`liandong_core::hotspot`), served as a GeoJSON
//! layer of cell polygons with their density, and the "publicity focus": the top
//! categories of each township, so the centre knows which legal publicity to push where.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use liandong_core::hotspot::{analyse, top_categories_by, HotCell, HotspotConfig, HotspotEvent, Hotspots};
use liandong_core::{Enricher, Position};
use liandong_store::{AlertRow, Bbox, IncidentRow, StoreError};

use crate::auth::{require_user, Role};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::time_fmt::now_ms;
use crate::AppState;

/// Events read for one analysis, at most (of each of incidents and alerts).
const MAX_EVENTS: u32 = 100_000;
/// Alert rules that say nothing about where trouble happens.
const NOT_HOTSPOT_RULES: [&str; 3] = ["stale_unit", "camera_storm", "camera_storm_end"];

/// An incident weighs by its priority; an alert counts less than an incident.
fn incident_weight(priority: i64) -> f64 {
    match priority {
        1 => 3.0,
        2 => 2.0,
        _ => 1.0,
    }
}
const ALERT_WEIGHT: f64 = 0.5;

/// Incidents and alerts of the last days, as read for one analysis.
pub struct Recent {
    pub days: i64,
    pub at_ms: i64,
    incidents: Vec<IncidentRow>,
    alerts: Vec<AlertRow>,
}

impl Recent {
    /// Reads the incidents and the alerts of the `days` before `now` that `audience` is
    /// told of: an analysis shown to a role counts only what that role may see.
    pub async fn read(s: &AppState, days: i64, now: i64, audience: Role) -> Result<Recent, StoreError> {
        let from = now - days * 86_400_000;
        let incidents = s.store.incidents_in(Bbox::ALL, from, now, MAX_EVENTS).await?;
        let mut alerts = s.store.alerts_in(Bbox::ALL, from, now, MAX_EVENTS).await?;
        alerts.retain(|a| crate::scope::sees_alert(audience, &a.roles));
        Ok(Recent { days, at_ms: now, incidents, alerts })
    }

    /// Incidents weighted by priority, and the alerts that say where trouble happens.
    pub fn events(&self) -> Vec<HotspotEvent<'_>> {
        let mut events = Vec::with_capacity(self.incidents.len() + self.alerts.len());
        for i in &self.incidents {
            if let Ok(p) = Position::new(i.lon, i.lat) {
                events.push(HotspotEvent {
                    position: p,
                    time_ms: i.created_ms,
                    category: &i.kind,
                    weight: incident_weight(i.priority),
                });
            }
        }
        for a in self.alerts.iter().filter(|a| !NOT_HOTSPOT_RULES.contains(&a.rule.as_str())) {
            if let Ok(p) = Position::new(a.lon, a.lat) {
                events.push(HotspotEvent { position: p, time_ms: a.time_ms, category: &a.rule, weight: ALERT_WEIGHT });
            }
        }
        events
    }
}

/// One analysis: the cells of every band and the publicity focus, from the events of
/// the days before `at_ms` that its audience may see.
pub struct Analysis {
    pub at_ms: i64,
    pub days: i64,
    pub events: usize,
    pub spots: Arc<Hotspots>,
    pub publicity: Vec<serde_json::Value>,
}

/// Reads and analyses the `days` before `now` for `audience`. The analysis (smoothing
/// over every cell, placing every event in its township) is CPU work of up to seconds:
/// it runs on the blocking pool, never on the threads that answer requests.
pub async fn analyse_recent(s: &AppState, days: i64, now: i64, audience: Role) -> Result<Analysis, ApiError> {
    let recent = Recent::read(s, days, now, audience).await.map_err(|e| ApiError::unavailable(&e))?;
    let extent = s.map.extent().ok_or_else(|| ApiError::internal(&"the map has no boundary"))?;
    let enricher = s.enricher.clone();
    tokio::task::spawn_blocking(move || {
        let events = recent.events();
        let spots = analyse(&events, extent, &HotspotConfig::default()).map_err(|e| ApiError::internal(&e))?;
        let publicity = publicity_focus(&enricher, &events);
        Ok(Analysis { at_ms: now, days, events: events.len(), spots: Arc::new(spots), publicity })
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

/// A cell as a GeoJSON polygon feature with its figures.
pub fn cell_json(c: &HotCell, label: String) -> serde_json::Value {
    let mut ring: Vec<[f64; 2]> = c.corners.iter().map(|p| [p.lon(), p.lat()]).collect();
    ring.push(ring[0]);
    serde_json::json!({
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"band": c.band, "band_label": label, "density_per_km2": (c.density_per_km2 * 100.0).round() / 100.0,
                       "count": c.count, "weight": c.weight, "cell": [c.cell.i, c.cell.j]},
    })
}

/// The top three categories of each township: what legal publicity to push where.
pub fn publicity_focus(enricher: &Enricher, events: &[HotspotEvent<'_>]) -> Vec<serde_json::Value> {
    let focus = top_categories_by(events, 3, |p| {
        let e = enricher.enrich(p);
        enricher.view(&e, &[], &[]).township.map(|t| t.name.to_owned())
    });
    focus
        .into_iter()
        .map(|a| {
            let cats: Vec<serde_json::Value> = a
                .categories
                .iter()
                .map(|c| serde_json::json!({"category": c.category, "weight": c.weight, "count": c.count}))
                .collect();
            serde_json::json!({"township": a.area, "count": a.count, "weight": a.weight, "top_categories": cats})
        })
        .collect()
}

/// Answers of `GET /api/v1/hotspots` already made, by (audience, days, band, top): when
/// it was analysed and the body; and the analyses they were made from, by (audience,
/// days), so that asking another band or another `top` reuses the analysis.
#[derive(Default)]
pub struct Answers {
    bodies: std::collections::HashMap<AnswerKey, (i64, axum::body::Bytes)>,
    analyses: Vec<((Role, i64), Arc<Analysis>)>,
}

/// A query of `GET /api/v1/hotspots`: (audience, days, band, top).
type AnswerKey = (Role, i64, Option<usize>, usize);

/// At most this many different queries are remembered (a wall asks one or two).
const MAX_ANSWERS: usize = 64;
/// At most this many analyses are kept (the oldest goes first): a caller who varies
/// `days` costs one analysis each, one at a time, off the request threads.
const MAX_ANALYSES: usize = 4;

/// `GET /api/v1/hotspots?days=30&band=N&top=20`: cells of every band (or one band) with
/// their density, as a FeatureCollection, with the bands, the top cells per band, the
/// publicity focus per township and when it was analysed (`analysed_at`). An answer is
/// made once and given to every screen that asks the same until a newer analysis runs
/// (a planning run) or `planning.interval_s` has passed. Operators and administrators;
/// each counts only the alerts their role is told of.
#[utoipa::path(get, path = "/api/v1/hotspots", tag = "planning", security(("bearer" = ["admin", "operator"])),
    params(
        ("days" = Option<u32>, Query, description = "1 to 365"),
        ("band" = Option<u32>, Query, description = "one time band"),
        ("top" = Option<u32>, Query, description = "1 to 100"),
    ),
    responses(
        (status = 200, description = "the hotspot cells as a FeatureCollection"), doc::E400, doc::E401, doc::E403,
        doc::E503,
    ))]
pub async fn hotspots(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Admin, Role::Operator])?;
    let audience = user.role;
    let (mut days, mut band, mut top) = (30i64, None, 10usize);
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "days" => {
                days = v
                    .parse()
                    .ok()
                    .filter(|d| (1..=365).contains(d))
                    .ok_or_else(|| ApiError::bad_request("days", "must be 1 to 365"))?
            }
            "band" => {
                band = Some(v.parse::<usize>().map_err(|_| ApiError::bad_request("band", "must be a band number"))?)
            }
            "top" => {
                top = v
                    .parse()
                    .ok()
                    .filter(|t| (1..=100).contains(t))
                    .ok_or_else(|| ApiError::bad_request("top", "must be 1 to 100"))?
            }
            _ => {}
        }
    }
    let key = (audience, days, band, top);
    let mut answers = s.hotspot_answers.lock().await;
    let now = now_ms();
    let latest_analysis = s.hotspot_layer.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|l| l.at_ms);
    let max_age_ms = i64::from(s.config.planning.interval_s.max(60)) * 1000;
    let current = |at: i64| latest_analysis.is_none_or(|l| at >= l) && now - at < max_age_ms;
    if let Some((at, body)) = answers.bodies.get(&key) {
        if current(*at) {
            return Ok(json_bytes(body.clone()));
        }
    }
    let kept =
        answers.analyses.iter().find(|(k, a)| *k == (audience, days) && current(a.at_ms)).map(|(_, a)| a.clone());
    let analysis = match kept {
        Some(a) => a,
        None => {
            let a = Arc::new(analyse_recent(&s, days, now, audience).await?);
            answers.analyses.retain(|(k, _)| *k != (audience, days));
            if answers.analyses.len() >= MAX_ANALYSES {
                answers.analyses.remove(0);
            }
            answers.analyses.push(((audience, days), a.clone()));
            a
        }
    };
    let spots = &analysis.spots;
    let config = HotspotConfig::default();
    let bands = spots.bands();
    if let Some(b) = band {
        if b >= bands.len() {
            return Err(ApiError::bad_request("band", format!("must be 0 to {}", bands.len() - 1)));
        }
    }
    let band_list: Vec<serde_json::Value> = (0..bands.len())
        .filter_map(|b| bands.get(b).map(|t| serde_json::json!({"band": b, "label": t.label()})))
        .collect();
    let mut features = Vec::new();
    let mut tops = Vec::new();
    for b in (0..bands.len()).filter(|b| band.is_none_or(|x| x == *b)) {
        let label = bands.get(b).map(|t| t.label()).unwrap_or_default();
        features.extend(spots.band_cells(b).map(|c| cell_json(&c, label.clone())));
        let best: Vec<serde_json::Value> = spots.top(b, top).iter().map(|c| cell_json(c, label.clone())).collect();
        tops.push(serde_json::json!({"band": b, "label": label, "cells": best}));
    }
    let body = serde_json::json!({
        "type": "FeatureCollection",
        "analysed_at": crate::time_fmt::rfc3339_ms(analysis.at_ms),
        "days": days,
        "events": analysis.events,
        "cell_m": config.cell_m,
        "bandwidth_m": config.bandwidth_m,
        "bands": band_list,
        "features": features,
        "top": tops,
        "publicity_focus": analysis.publicity,
    });
    let body = axum::body::Bytes::from(body.to_string());
    if answers.bodies.len() >= MAX_ANSWERS {
        answers.bodies.clear();
    }
    answers.bodies.insert(key, (analysis.at_ms, body.clone()));
    Ok(json_bytes(body))
}

fn json_bytes(body: axum::body::Bytes) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}
