//! Patrol planning in the server: a hotspot analysis of the last days, on a schedule
//! (`planning.interval_s`) and on demand, announced on the live feed; then a plan for
//! every team from it (`liandong_core::plan`): from the team's post and back within the
//! shift, its checkpoints with their dwell, and the hottest cells of the current time
//! band within reach. A plan that differs from the team's current one is pushed to the
//! patrol leader as a new version, to be acknowledged like any other adjustment.
//!
//! No team is left without a plan because its checkpoints do not fit the shift: the
//! planner keeps the most important that fit (by the checkpoint's `priority` in the
//! map, 1 first, then its `seq`) and the plan's `left_out` names the others with the
//! reason, for the leader's phone and the wall map.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use liandong_core::hotspot::Hotspots;
use liandong_core::map::{CountyMap, Line};
use liandong_core::plan::{
    plan, route_coverage, Candidate, LeftOut, LeftOutReason, Mandatory, Plan, PlanRequest, PlannerConfig, StopKind,
};
use liandong_core::Position;
use liandong_store::RoutePlanRow;

use crate::auth::{require_user, Role};
use crate::error::ApiError;
use crate::feed::messages::{FeatureCollection, HotspotsNotice};
use crate::feed::plan_json;
use crate::feed::{FeedEvent, FeedMessage};
use crate::hotspots::{analyse_recent, cell_json};
use crate::openapi as doc;
use crate::sequencer::{Conflict, Refusal, RouteCommand};
use crate::time_fmt::{now_ms, rfc3339_ms};
use crate::travel::{map_teams, route_team};
use crate::AppState;

/// Hotspot cells announced on the feed per analysis.
const FEED_TOP_CELLS: usize = 20;
/// A diversion younger than this is left alone by a re-plan: the team is on its way.
const DIVERSION_HOLD_MS: i64 = 30 * 60_000;

/// The `hotspots` layer (`GET /api/v1/layers/hotspots`): the cells of the band in force
/// when the latest analysis ran, as a GeoJSON FeatureCollection.
#[derive(Debug, Clone)]
pub struct HotspotLayer {
    pub at_ms: i64,
    pub band_label: String,
    pub features: usize,
    pub json: axum::body::Bytes,
}

/// Makes the layer from an analysis, for the band of `now`.
fn hotspot_layer(spots: &Hotspots, days: u32, now: i64) -> HotspotLayer {
    let band = spots.bands().band_of(now);
    let label = spots.bands().get(band).map(|b| b.label()).unwrap_or_default();
    let features: Vec<serde_json::Value> = spots.band_cells(band).map(|c| cell_json(&c, label.clone())).collect();
    let n = features.len();
    let collection = serde_json::json!({
        "type": "FeatureCollection",
        "name": "hotspots",
        "provenance": format!("computed by liandong: incidents and alerts of the last {days} days per 250 m cell, \
                               kernel-smoothed, for the {label} band (China time), analysed at {}", rfc3339_ms(now)),
        "features": features,
    });
    HotspotLayer { at_ms: now, band_label: label, features: n, json: axum::body::Bytes::from(collection.to_string()) }
}

/// The latest `hotspots` layer, analysing now when none was made yet or the band in
/// force has changed since.
pub async fn current_hotspot_layer(s: &AppState) -> Result<HotspotLayer, ApiError> {
    let now = now_ms();
    let latest = s.hotspot_layer.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(l) = latest {
        let fresh = now - l.at_ms < i64::from(s.config.planning.interval_s.max(60)) * 1000;
        if fresh {
            return Ok(l);
        }
    }
    let days = s.config.planning.days;
    // The layer is shown to operators and administrators: it counts what operators see.
    let analysis = analyse_recent(s, i64::from(days), now, Role::Operator).await?;
    let layer = hotspot_layer(&analysis.spots, days, now);
    *s.hotspot_layer.write().unwrap_or_else(|e| e.into_inner()) = Some(layer.clone());
    Ok(layer)
}

/// What a team's plan is made from, out of the map.
struct TeamSetting {
    post: Position,
    /// In order of importance (see [`importance`]).
    checkpoints: Vec<Mandatory>,
    /// The team's fixed route, to compare coverage with.
    fixed: Vec<Position>,
}

/// The post of a team's route (its `post_id` in the map's posts).
fn post_of(map: &CountyMap, route: &Line) -> Option<Position> {
    let post_id = route.properties.get("post_id").and_then(|v| v.as_str())?;
    let post = map.posts.iter().find(|p| p.id == post_id)?;
    Position::new(post.point.x(), post.point.y()).ok()
}

/// Where a team is based: its post, else the start of its route; `None` for a team the
/// map does not know.
pub(crate) fn team_base(s: &AppState, team_id: &str) -> Option<Position> {
    let route = team_route(&s.map, team_id)?;
    post_of(&s.map, route).or_else(|| route.line.0.first().and_then(|c| Position::new(c.x, c.y).ok()))
}

/// A team's route in the map: the route whose `team_id` (else id) is the team's.
fn team_route<'m>(map: &'m CountyMap, team_id: &str) -> Option<&'m Line> {
    map.routes.iter().find(|r| route_team(r) == team_id)
}

fn team_setting(s: &AppState, team_id: &str) -> Result<TeamSetting, ApiError> {
    let route =
        team_route(&s.map, team_id).ok_or_else(|| ApiError::not_found(format!("no team {team_id} in the map")))?;
    let fixed: Vec<Position> = route.line.0.iter().filter_map(|c| Position::new(c.x, c.y).ok()).collect();
    let post = post_of(&s.map, route).or_else(|| fixed.first().copied()).ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "team_id", format!("team {team_id} has neither a post nor a route"))
    })?;
    let mut checkpoints: Vec<((i64, i64), Mandatory)> = s
        .map
        .checkpoints
        .iter()
        .filter(|c| c.properties.get("team_id").and_then(|v| v.as_str()) == Some(team_id))
        .filter_map(|c| {
            let position = Position::new(c.point.x(), c.point.y()).ok()?;
            let dwell_s = c.properties.get("min_dwell_s").and_then(|v| v.as_f64()).unwrap_or(0.0);
            Some((importance(&c.properties), Mandatory { id: c.id.clone(), name: c.name.clone(), position, dwell_s }))
        })
        .collect();
    checkpoints.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    Ok(TeamSetting { post, checkpoints: checkpoints.into_iter().map(|c| c.1).collect(), fixed })
}

/// A checkpoint's rank, the most important first: its `priority` (1 the highest; one
/// without comes after every one with), then its `seq`, the order its post gave. The
/// planner keeps the most important when they do not all fit the shift; the map's
/// order is the bureau's word on what matters, where nearness to the post would drop
/// the far checkpoints that are often the reason for the patrol.
fn importance(properties: &serde_json::Map<String, serde_json::Value>) -> (i64, i64) {
    let number = |key: &str| properties.get(key).and_then(|v| v.as_i64());
    (number("priority").unwrap_or(i64::MAX), number("seq").unwrap_or(0))
}

/// A checkpoint the plan leaves out, as the plan JSON names it: `id`, `name`, `reason`
/// (a sentence) and, for screens that word it in their own language, `cause`
/// (`budget`, `off_road`, `unreachable`) with its figures (`needed_s` and `budget_s`,
/// or `distance_m` and `max_m`).
fn left_out_json(l: &LeftOut) -> serde_json::Value {
    let mut v = serde_json::json!({"id": l.id, "name": l.name, "reason": l.reason.to_string()});
    let figures = match &l.reason {
        LeftOutReason::Budget { needed_s, budget_s } => {
            serde_json::json!({"cause": "budget", "needed_s": needed_s.round(), "budget_s": budget_s.round()})
        }
        LeftOutReason::OffRoad { distance_m, max_m } => {
            serde_json::json!({"cause": "off_road", "distance_m": distance_m.round(), "max_m": max_m.round()})
        }
        LeftOutReason::Unreachable => serde_json::json!({"cause": "unreachable"}),
    };
    if let (Some(v), serde_json::Value::Object(f)) = (v.as_object_mut(), figures) {
        v.extend(f);
    }
    v
}

/// The hottest cells of `band` within reach of `post`, as the planner's candidates
/// (weight: the cell's smoothed events, density × area).
fn candidates(spots: &Hotspots, band: usize, post: Position, reach_m: f64) -> Vec<Candidate> {
    let cell_km2 = (spots.grid().cell_m() / 1000.0).powi(2);
    let mut out: Vec<Candidate> = spots
        .band_cells(band)
        .filter(|c| c.density_per_km2 > 0.0 && c.centre.haversine_m(post) <= reach_m)
        .map(|c| Candidate {
            id: format!("cell-{}-{}", c.cell.i, c.cell.j),
            position: c.centre,
            weight: c.density_per_km2 * cell_km2,
        })
        .collect();
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
    out
}

/// A team's plan, made from an analysis, with the figures to judge it by.
pub struct TeamPlan {
    pub team_id: String,
    pub post: Position,
    pub plan: Plan,
    /// Weight the team's fixed route covers, with the plan's definition of covered.
    pub fixed_covered_weight: f64,
    pub band_label: String,
}

impl TeamPlan {
    /// The plan body clients see: geometry, the stops to visit (checkpoints and
    /// hotspots, with planned times and dwell, which adherence checks), the checkpoints
    /// left out with why (`left_out`, empty when all fit) and the figures.
    fn body(&self, analysed_at_ms: i64, budget_s: f64) -> serde_json::Value {
        let p = &self.plan;
        let coordinates: Vec<[f64; 2]> = p.geometry.iter().map(|q| [q.lon(), q.lat()]).collect();
        let waypoints: Vec<serde_json::Value> = p
            .waypoints
            .iter()
            .filter(|w| matches!(w.kind, StopKind::Checkpoint | StopKind::Hotspot))
            .map(|w| {
                let name = if w.name.is_empty() { w.id.clone() } else { w.name.clone() };
                serde_json::json!({
                    "name": name, "id": w.id, "kind": w.kind, "lon": w.position.lon(), "lat": w.position.lat(),
                    "planned_time": rfc3339_ms(w.arrive_ms), "dwell_s": w.dwell_s.round() as u32,
                })
            })
            .collect();
        let round = |x: f64| (x * 100.0).round() / 100.0;
        serde_json::json!({
            "geometry": {"type": "LineString", "coordinates": coordinates},
            "waypoints": waypoints,
            "left_out": p.left_out.iter().map(left_out_json).collect::<Vec<_>>(),
            "figures": {
                "budget_s": budget_s.round(), "total_s": p.total_s.round(), "travel_s": p.travel_s.round(),
                "length_m": p.length_m.round(), "covered_weight": round(p.covered_weight),
                "fixed_route_covered_weight": round(self.fixed_covered_weight),
                "visited_weight": round(p.visited_weight), "candidate_weight": round(p.total_candidate_weight),
                "checkpoints": p.mandatory_visited, "band": self.band_label,
                "analysed_at": rfc3339_ms(analysed_at_ms),
            },
        })
    }

    /// The hotspot and checkpoint stops in order, to tell whether a new plan changes
    /// anything for the team.
    fn stops(&self) -> Vec<String> {
        self.plan
            .waypoints
            .iter()
            .filter(|w| matches!(w.kind, StopKind::Checkpoint | StopKind::Hotspot))
            .map(|w| w.id.clone())
            .collect()
    }
}

/// Plans one team from an analysis, starting now. CPU work of a few tens of
/// milliseconds: it runs on the blocking pool.
async fn plan_team(s: &Arc<AppState>, team_id: &str, spots: &Arc<Hotspots>, now: i64) -> Result<TeamPlan, ApiError> {
    let setting = team_setting(s, team_id)?;
    let cfg = s.config.planning;
    let band = spots.bands().band_of(now);
    let label = spots.bands().get(band).map(|b| b.label()).unwrap_or_default();
    let candidates = candidates(spots, band, setting.post, f64::from(cfg.reach_m));
    let config = PlannerConfig::default();
    let fixed_covered_weight = route_coverage(&setting.fixed, &candidates, config.coverage_radius_m);
    let request = PlanRequest {
        start: setting.post,
        end: setting.post,
        budget_s: f64::from(cfg.shift_min) * 60.0,
        checkpoints: setting.checkpoints,
        candidates,
        hotspot_dwell_s: f64::from(cfg.hotspot_dwell_s),
        start_ms: now,
    };
    let roads = s.travel.of(team_id).clone();
    let planned = tokio::task::spawn_blocking(move || plan(&roads, &request, &config))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.field(), format!("team {team_id}: {e}")))?;
    Ok(TeamPlan {
        team_id: team_id.to_owned(),
        post: setting.post,
        plan: planned,
        fixed_covered_weight,
        band_label: label,
    })
}

/// Whether to push `new` at all, and why not. Whether its stops differ from the current
/// plan's is decided by the sequencer (`unless_same_stops`), which has caught up with
/// every instance.
fn push_decision(head: Option<&RoutePlanRow>, new: &TeamPlan, now: i64) -> Result<(), &'static str> {
    // With checkpoints left out the fixed route, which visits them all, does not fit
    // the shift either: the leader needs the plan that says what to skip.
    if new.plan.visited_weight <= 0.0 && new.plan.left_out.is_empty() {
        return Err("no hotspot within reach: the current route stands");
    }
    let Some(h) = head.filter(|h| h.status != "superseded") else { return Ok(()) };
    if h.kind == "diversion" && now - h.created_ms < DIVERSION_HOLD_MS {
        return Err("a diversion is under way");
    }
    Ok(())
}

/// What one run did for one team: the plan's figures, the version pushed, or why not.
fn team_outcome(
    team_id: &str,
    tp: Option<&TeamPlan>,
    row: Option<&RoutePlanRow>,
    why_not: Option<&str>,
) -> serde_json::Value {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    serde_json::json!({
        "team_id": team_id,
        "pushed": row.is_some(),
        "version": row.map(|r| r.version),
        "reason": why_not,
        "covered_weight": tp.map(|t| round(t.plan.covered_weight)),
        "fixed_route_covered_weight": tp.map(|t| round(t.fixed_covered_weight)),
        "total_s": tp.map(|t| t.plan.total_s.round()),
        "stops": tp.map(|t| t.stops().len()),
        "left_out": tp.map(|t| t.plan.left_out.iter().map(left_out_json).collect::<Vec<_>>()),
    })
}

/// One planning run: analyse, announce, re-plan every team. `trigger` says who asked
/// (`schedule` or an operator's name), for the plans' reason and the logs.
pub async fn run(s: &Arc<AppState>, trigger: &str) -> Result<serde_json::Value, ApiError> {
    let cfg = s.config.planning;
    let now = now_ms();
    // Plans and the announced analysis are seen by operators: they count what operators
    // see (no alert restricted to other roles weighs on a route).
    let analysis = analyse_recent(s, i64::from(cfg.days), now, Role::Operator).await?;
    let spots = analysis.spots.clone();
    let band = spots.bands().band_of(now);
    let label = spots.bands().get(band).map(|b| b.label()).unwrap_or_default();
    let top: Vec<serde_json::Value> =
        spots.top(band, FEED_TOP_CELLS).iter().map(|c| cell_json(c, label.clone())).collect();
    let notice = FeedMessage::Hotspots(HotspotsNotice {
        analysed_at: rfc3339_ms(now),
        days: cfg.days,
        events: analysis.events,
        band,
        band_label: &label,
        top: FeatureCollection::new(&top),
        publicity_focus: &analysis.publicity,
    });
    s.hub.publish(FeedEvent::notice(Arc::from(notice.to_json())));
    *s.hotspot_layer.write().unwrap_or_else(|e| e.into_inner()) = Some(hotspot_layer(&spots, cfg.days, now));

    let heads = s.store.route_plan_heads().await.map_err(|e| ApiError::unavailable(&e))?;
    let mut teams = Vec::new();
    let mut pushed = 0;
    for team_id in map_teams(&s.map) {
        let outcome = match plan_team(s, &team_id, &spots, now).await {
            Ok(tp) => match push_decision(heads.iter().find(|h| h.team_id == team_id), &tp, now) {
                Err(why) => team_outcome(&team_id, Some(&tp), None, Some(why)),
                Ok(()) => match push(s, &tp, now, trigger, true).await {
                    Ok(Ok(row)) => {
                        pushed += 1;
                        team_outcome(&team_id, Some(&tp), Some(&row), None)
                    }
                    Ok(Err(unchanged @ Refusal::Conflict(Conflict::PlanUnchanged))) => {
                        team_outcome(&team_id, Some(&tp), None, Some(&unchanged.to_string()))
                    }
                    Ok(Err(refusal)) => {
                        team_outcome(&team_id, Some(&tp), None, Some(&refusal.into_api_error("team_id").message()))
                    }
                    Err(e) => team_outcome(&team_id, Some(&tp), None, Some(&e.message())),
                },
            },
            Err(e) => team_outcome(&team_id, None, None, Some(&e.message())),
        };
        teams.push(outcome);
    }
    tracing::info!(trigger, events = analysis.events, band = %label, pushed, "planning run");
    Ok(serde_json::json!({
        "analysed_at": rfc3339_ms(now),
        "events": analysis.events,
        "band": band,
        "band_label": label,
        "pushed": pushed,
        "teams": teams,
    }))
}

/// Pushes a team's plan as a new version through the sequencer; `if_changed` refuses it
/// there (with [`Conflict::PlanUnchanged`]) when the team's current plan has the same
/// stops. `Ok(Err(refusal))` when the sequencer refused it.
async fn push(
    s: &AppState,
    tp: &TeamPlan,
    now: i64,
    trigger: &str,
    if_changed: bool,
) -> Result<Result<RoutePlanRow, Refusal>, ApiError> {
    let mut reason = if tp.plan.visited_weight > 0.0 {
        format!(
            "re-plan after the hotspot analysis ({} band): covers {:.1} of hotspot weight, the fixed route {:.1}",
            tp.band_label, tp.plan.covered_weight, tp.fixed_covered_weight
        )
    } else {
        // Pushed for the checkpoints it leaves out (`push_decision`): there is no
        // coverage to speak of (an empty sum is -0.0, which would print as such).
        format!("re-plan after the hotspot analysis ({} band): no hotspot within reach", tp.band_label)
    };
    if !tp.plan.left_out.is_empty() {
        let ids: Vec<&str> = tp.plan.left_out.iter().map(|l| l.id.as_str()).collect();
        reason.push_str(&format!("; checkpoints left out: {}", ids.join(", ")));
    }
    let cmd = RouteCommand::Push {
        team_id: tp.team_id.clone(),
        kind: "plan".into(),
        reason,
        plan: tp.body(now, f64::from(s.config.planning.shift_min) * 60.0),
        anchor: tp.plan.geometry.first().copied().unwrap_or(tp.post),
        actor: trigger.to_owned(),
        now_ms: now,
        unless_same_stops: if_changed,
    };
    Ok(s.ingest.submit_route(cmd).await?)
}

/// `POST /api/v1/planning/run`: analyse now and re-plan every team (operators).
#[utoipa::path(post, path = "/api/v1/planning/run", tag = "planning", security(("bearer" = ["operator", "admin"])),
    responses((status = 200, description = "the plans made"), doc::E401, doc::E403, doc::E503))]
pub async fn run_now(State(s): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin])?;
    Ok(Json(run(&s, &user.name).await?).into_response())
}

/// `POST /api/v1/teams/{team_id}/replan`: plans one team from a fresh analysis and
/// pushes it, changed or not (operators). 201 with the plan.
#[utoipa::path(post, path = "/api/v1/teams/{team_id}/replan", tag = "planning",
    security(("bearer" = ["operator", "admin"])), params(("team_id" = String, Path)),
    responses((status = 201, description = "the plan pushed"), doc::E401, doc::E403, doc::E404, doc::E422, doc::E503))]
pub async fn replan(
    State(s): State<Arc<AppState>>,
    Path(team_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let user = require_user(&s.tokens, &headers, uri.query(), &[Role::Operator, Role::Admin])?;
    let now = now_ms();
    let spots = analyse_recent(&s, i64::from(s.config.planning.days), now, Role::Operator).await?.spots;
    let tp = plan_team(&s, &team_id, &spots, now).await?;
    let row = push(&s, &tp, now, &user.name, false).await?.map_err(|r| r.into_api_error("team_id"))?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"plan": plan_json(&row)}))).into_response())
}

/// Runs the analysis and re-plan every `planning.interval_s` until shutdown (the first
/// one an interval after start-up). With several instances on one database each runs
/// its own schedule; a re-plan that changes nothing pushes nothing.
pub async fn schedule(state: std::sync::Weak<AppState>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(interval_s) = state.upgrade().map(|s| s.config.planning.interval_s).filter(|i| *i > 0) else {
        return;
    };
    let period = std::time::Duration::from_secs(u64::from(interval_s));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let Some(s) = state.upgrade() else { return };
        if let Err(e) = run(&s, "schedule").await {
            tracing::warn!(error = %e.message(), "scheduled planning run failed; next one at the next interval");
        }
    }
}
