//! Hotspots over HTTP: incidents and alerts of the last days counted per 250 m cell and
//! China-time band, smoothed and ranked (`liandong_core::hotspot`), served as a GeoJSON
//! layer of cell polygons with their density, and the "publicity focus": the top
//! categories of each township, so the centre knows which legal publicity to push where.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use liandong_core::hotspot::{analyse, top_categories_by, HotCell, HotspotConfig, HotspotEvent, Hotspots};
use liandong_core::Position;
use liandong_store::{AlertRow, Bbox, IncidentRow, StoreError};

use crate::auth::{require_user, Role};
use crate::error::ApiError;
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
    /// Reads the incidents and alerts of the `days` before `now`.
    pub async fn read(s: &AppState, days: i64, now: i64) -> Result<Recent, StoreError> {
        let from = now - days * 86_400_000;
        let incidents = s.store.incidents_in(Bbox::ALL, from, now, MAX_EVENTS).await?;
        let alerts = s.store.alerts_in(Bbox::ALL, from, now, MAX_EVENTS).await?;
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

    /// Cells per band over the county's extent.
    pub fn analyse(&self, s: &AppState, config: &HotspotConfig) -> Result<Hotspots, ApiError> {
        let extent = s.map.extent().ok_or_else(|| ApiError::internal(&"the map has no boundary"))?;
        analyse(&self.events(), extent, config).map_err(|e| ApiError::internal(&e))
    }
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
pub fn publicity_focus(s: &AppState, events: &[HotspotEvent<'_>]) -> Vec<serde_json::Value> {
    let focus = top_categories_by(events, 3, |p| {
        let e = s.enricher.enrich(p);
        s.enricher.view(&e, &[], &[]).township.map(|t| t.name.to_owned())
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

/// Answers of `GET /api/v1/hotspots` already made: by (days, band, top), when it was
/// analysed and the body.
#[derive(Debug, Default)]
pub struct Answers(std::collections::HashMap<(i64, Option<usize>, usize), (i64, axum::body::Bytes)>);

/// At most this many different queries are remembered (a wall asks one or two).
const MAX_ANSWERS: usize = 64;

/// `GET /api/v1/hotspots?days=30&band=N&top=20`: cells of every band (or one band) with
/// their density, as a FeatureCollection, with the bands, the top cells per band, the
/// publicity focus per township and when it was analysed (`analysed_at`). An answer is
/// made once and given to every screen that asks the same until a newer analysis runs
/// (a planning run) or `planning.interval_s` has passed.
pub async fn hotspots(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    require_user(&s.tokens, &headers, uri.query(), &[Role::Admin, Role::Operator])?;
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
    let key = (days, band, top);
    let mut answers = s.hotspot_answers.lock().await;
    let now = now_ms();
    let latest_analysis = s.hotspot_layer.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(|l| l.at_ms);
    let max_age_ms = i64::from(s.config.planning.interval_s.max(60)) * 1000;
    if let Some((at, body)) = answers.0.get(&key) {
        if latest_analysis.is_none_or(|l| *at >= l) && now - at < max_age_ms {
            return Ok(json_bytes(body.clone()));
        }
    }
    let recent = Recent::read(&s, days, now).await.map_err(|e| ApiError::unavailable(&e))?;
    let events = recent.events();
    let config = HotspotConfig::default();
    let spots = recent.analyse(&s, &config)?;
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
    let publicity = publicity_focus(&s, &events);
    let body = serde_json::json!({
        "type": "FeatureCollection",
        "analysed_at": crate::time_fmt::rfc3339_ms(now),
        "days": days,
        "events": events.len(),
        "cell_m": config.cell_m,
        "bandwidth_m": config.bandwidth_m,
        "bands": band_list,
        "features": features,
        "top": tops,
        "publicity_focus": publicity,
    });
    let body = axum::body::Bytes::from(body.to_string());
    if answers.0.len() >= MAX_ANSWERS {
        answers.0.clear();
    }
    answers.0.insert(key, (now, body.clone()));
    Ok(json_bytes(body))
}

fn json_bytes(body: axum::body::Bytes) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}
