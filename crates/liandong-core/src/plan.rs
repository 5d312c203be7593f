//! Patrol route planning: a tour for one team and shift that leaves its post, visits
//! its mandatory checkpoints (as many as the shift allows, the most important first),
//! covers as much hotspot weight as the time left allows and returns, on the road graph
//! of [`crate::road`].
//!
//! Choosing which hotspots to visit within a time budget is the orienteering problem
//! (Tsiligirides, "Heuristic methods applied to orienteering", Journal of the
//! Operational Research Society 35, 1984, 797–809), here with mandatory nodes. It is
//! NP-hard, so the planner is a heuristic, deterministic from end to end:
//!
//! 1. **One travel-time matrix** ([`RoadGraph::travel_time_matrix`]) between the start,
//!    the end, the checkpoints and the heaviest candidates that could fit at all (at
//!    most [`PlannerConfig::max_candidates`]): one Dijkstra per stop, stopped once every
//!    other stop is settled. Pairs with no road between them are never used.
//! 2. **The mandatory tour**: the shortest order of the checkpoints, exactly by the
//!    dynamic programme of Held & Karp ("A dynamic programming approach to sequencing
//!    problems", J. SIAM 10, 1962) for up to [`HELD_KARP_MAX`] checkpoints, by cheapest
//!    insertion (Rosenkrantz, Stearns & Lewis, SIAM J. Computing 6, 1977) and the local
//!    search below beyond. A leader is never left without a plan: when the tour through
//!    every checkpoint exceeds the budget, the checkpoints are taken in order of
//!    importance — the request's order, the first the most important — and each is
//!    kept when the shortest tour through it and the ones kept before it, with their
//!    dwells, still fits; the others are left out ([`Plan::left_out`]) with the time
//!    the tour would have needed. A checkpoint off the road or with no road to it is
//!    left out too, with its reason. Importance is the caller's order rather than,
//!    say, nearness to the post: a far checkpoint is often the reason for the patrol,
//!    and only the people who set the checkpoints know which matter most (the server
//!    orders them by the map's `priority`, then `seq`). Only when nothing can be
//!    planned — the start or the end off the road, no road from the start to the end,
//!    or not even that way within the budget — is the plan refused.
//! 3. **Iterated local search** after Vansteenwegen, Souffriau, Vanden Berghe & Van
//!    Oudheusden, "Iterated local search for the team orienteering problem with time
//!    windows" (Computers & Operations Research 36, 2009, 3281–3290): an *insertion
//!    step* adds, one at a time, the hotspot of highest ratio weight² / added seconds
//!    at its cheapest position while the budget allows; a *local search* shortens the
//!    tour (2-opt and relocation of one stop) and swaps a visited hotspot for a heavier
//!    unvisited one that fits (the "replace" move of the same authors' guided local
//!    search, European Journal of Operational Research 196, 2009, 118–127); a *shake*
//!    removes `R` consecutive hotspot visits from position `S`, then `S += R`,
//!    `R += 1`, and `R` restarts at 1 when it reaches a third of the candidates or
//!    after an improvement. The search continues from the shaken tour and keeps the
//!    best seen; it stops after [`PlannerConfig::max_stale_iterations`] without an
//!    improvement or [`PlannerConfig::max_iterations`] in all.
//!
//!    Two additions of ours, each found to matter on small problems solved exactly
//!    (the tests): the hotspots a shake removed sit out the next insertion step, which
//!    would otherwise mostly put them back; and when nothing fits at its cheapest
//!    place, the best few by ratio are tried with the tour reordered around them. With
//!    both, the search found the best tour of 198 of 200 random problems of 2
//!    checkpoints and 7 hotspots, and never less than 92 % of its weight (without them,
//!    26 of 30).
//! 4. **The geometry**: the time-optimal road route (A*) of each leg, access legs
//!    included, so that the line starts at the post's door and passes through every
//!    stop.
//!
//! Times are door to door (access legs at walking speed included), seconds inside and
//! Unix milliseconds for the schedule. The travel times between stops are asymmetric
//! (one-way roads); every move is evaluated with the times in its own direction.
//!
//! Coverage is measured the same way for a plan and for a fixed route
//! ([`route_coverage`]): the weight of the candidates whose centre lies within
//! [`PlannerConfig::coverage_radius_m`] of the line, so the two compare fairly. A plan
//! also reports the weight of the hotspots it stops at, which is never more.

use geo::{LineString, Point};
use serde::{Deserialize, Serialize};

use crate::road::{RoadGraph, Snap};
use crate::spatial::LineIndex;
use crate::{Position, UnixMs};

/// Up to this many checkpoints their best order is found exactly (Held–Karp, 2ᵐ·m²
/// steps: about 100,000 at ten); beyond, by cheapest insertion and local search.
pub const HELD_KARP_MAX: usize = 10;

/// The longest budget accepted: a day. A shift longer than that is an input error, and
/// the bound keeps every real tour far below the time that stands for "no road".
pub const MAX_BUDGET_S: f64 = 86_400.0;

/// The travel time standing in for "no road leads there": far beyond any budget, so
/// that a tour using such a leg is never feasible, yet finite, so that sums and
/// differences of tour times stay exact enough to compare.
const UNREACHABLE_S: f64 = 1e9;

/// Tours are kept this far inside the budget, so that rounding in the sums of many
/// legs can never push the reported total over it.
const BUDGET_MARGIN_S: f64 = 1e-6;

/// A move must save more than this to be taken, so that rounding cannot make the
/// local search cycle.
const MIN_GAIN_S: f64 = 1e-7;

/// A checkpoint the tour must visit, and how long to stay there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mandatory {
    pub id: String,
    pub name: String,
    pub position: Position,
    /// Seconds to stay (the checkpoint's `min_dwell_s`).
    pub dwell_s: f64,
}

/// A place worth visiting: a hotspot cell's centre with its weight for the shift's
/// time band (its density, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub position: Position,
    /// Zero or positive; a candidate of weight zero is never visited.
    pub weight: f64,
}

/// What to plan: one team's shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// Where the shift starts: the team's post.
    pub start: Position,
    /// Where it ends, usually the post again.
    pub end: Position,
    /// The shift's length in seconds: travel and every dwell must fit in it.
    pub budget_s: f64,
    /// In order of importance, the most important first: when they do not all fit,
    /// the first ones are kept (see the module documentation).
    pub checkpoints: Vec<Mandatory>,
    pub candidates: Vec<Candidate>,
    /// Seconds spent at each hotspot visited.
    pub hotspot_dwell_s: f64,
    /// When the shift starts, for the planned times of the stops.
    pub start_ms: UnixMs,
}

/// Settings of the planner; the request says what to plan, these how hard to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    /// The heaviest candidates that could fit are considered, at most this many: the
    /// matrix costs one search per stop and the local search grows with the square of
    /// the stops.
    pub max_candidates: usize,
    /// Rounds of the iterated local search at most.
    pub max_iterations: usize,
    /// The search stops after this many rounds in a row without a better tour.
    pub max_stale_iterations: usize,
    /// A candidate within this many metres of a line is covered by it.
    pub coverage_radius_m: f64,
    /// The start, the end and the checkpoints must be within this many metres of a
    /// road; candidates farther away are left out.
    pub max_snap_m: f64,
}

impl Default for PlannerConfig {
    /// 60 candidates, 300 rounds and 60 without improvement, coverage within 150 m and
    /// stops within 1 km of a road. 150 m is a little more than half a 250 m hotspot
    /// cell: a patrol driving through a cell covers it. 60 candidates are a 4-hour
    /// shift's worth of 5-minute stops and more; re-planning them takes a few tens of
    /// milliseconds (see `benches/plan.rs`).
    fn default() -> Self {
        PlannerConfig {
            max_candidates: 60,
            max_iterations: 300,
            max_stale_iterations: 60,
            coverage_radius_m: 150.0,
            max_snap_m: 1_000.0,
        }
    }
}

/// Why no plan could be made; each variant names the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("budget_s must be a positive number of seconds up to {MAX_BUDGET_S}, got {0}")]
    Budget(f64),
    #[error("hotspot_dwell_s must be zero or a positive number of seconds, got {0}")]
    HotspotDwell(f64),
    #[error("checkpoint {id}: dwell_s must be zero or a positive number of seconds, got {dwell_s}")]
    CheckpointDwell { id: String, dwell_s: f64 },
    #[error("candidate {id}: weight must be zero or a positive number, got {weight}")]
    CandidateWeight { id: String, weight: f64 },
    #[error("{field} must be zero or a positive number of metres, got {value}")]
    Config { field: &'static str, value: f64 },
    #[error("the start is {distance_m:.0} m from the nearest road, more than {max_m} m")]
    StartOffRoad { distance_m: f64, max_m: f64 },
    #[error("the end is {distance_m:.0} m from the nearest road, more than {max_m} m")]
    EndOffRoad { distance_m: f64, max_m: f64 },
    #[error("no road leads from the start to the end")]
    EndUnreachable,
    /// Not even the way from the start to the end fits: no checkpoint or hotspot could.
    #[error("the way from the start to the end alone needs {needed_s:.0} s, more than the budget of {budget_s:.0} s")]
    BudgetTooShort { needed_s: f64, budget_s: f64 },
}

impl PlanError {
    /// The request (or configuration) field the error is about, for messages that name it.
    pub fn field(&self) -> &'static str {
        match self {
            PlanError::Budget(_) | PlanError::BudgetTooShort { .. } => "budget_s",
            PlanError::HotspotDwell(_) => "hotspot_dwell_s",
            PlanError::CheckpointDwell { .. } => "checkpoints",
            PlanError::CandidateWeight { .. } => "candidates",
            PlanError::Config { field, .. } => field,
            PlanError::StartOffRoad { .. } => "start",
            PlanError::EndOffRoad { .. } | PlanError::EndUnreachable => "end",
        }
    }
}

/// Why a checkpoint was left out of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum LeftOutReason {
    /// The shortest tour through it and the more important checkpoints kept, with
    /// their dwells, needs `needed_s`, more than the shift's `budget_s`.
    Budget { needed_s: f64, budget_s: f64 },
    /// It is farther than [`PlannerConfig::max_snap_m`] from any road.
    OffRoad { distance_m: f64, max_m: f64 },
    /// No road leads to it from the start, or from it to the end.
    Unreachable,
}

impl std::fmt::Display for LeftOutReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeftOutReason::Budget { needed_s, budget_s } => write!(
                f,
                "the shift's budget of {budget_s:.0} s does not reach it: the tour would need {needed_s:.0} s"
            ),
            LeftOutReason::OffRoad { distance_m, max_m } => {
                write!(f, "it is {distance_m:.0} m from the nearest road, more than {max_m:.0} m")
            }
            LeftOutReason::Unreachable => write!(f, "no road leads to it on a tour from the start to the end"),
        }
    }
}

/// A checkpoint of the request that the plan does not visit, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOut {
    pub id: String,
    pub name: String,
    pub reason: LeftOutReason,
}

/// What a stop of a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    Start,
    Checkpoint,
    Hotspot,
    End,
}

/// One stop of a plan, with its planned times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStop {
    pub kind: StopKind,
    /// The checkpoint's or candidate's id; `start` and `end` for the ends.
    pub id: String,
    /// The checkpoint's name; empty for the other stops.
    pub name: String,
    pub position: Position,
    pub arrive_ms: UnixMs,
    pub depart_ms: UnixMs,
    pub dwell_s: f64,
    /// The candidate's weight for a hotspot, zero for the other stops.
    pub weight: f64,
}

/// A planned tour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// In visiting order, from the start to the end.
    pub waypoints: Vec<PlannedStop>,
    /// The path through every stop: road routes with their access legs, so that it
    /// starts at the start itself and passes through each stop.
    pub geometry: Vec<Position>,
    /// Seconds moving, door to door.
    pub travel_s: f64,
    /// Seconds moving plus every dwell: never more than the budget.
    pub total_s: f64,
    /// Metres along the geometry (roads and access legs).
    pub length_m: f64,
    /// Weight of the request's candidates within [`PlannerConfig::coverage_radius_m`]
    /// of the geometry: [`route_coverage`] of the plan's line.
    pub covered_weight: f64,
    /// Weight of the hotspots the plan stops at.
    pub visited_weight: f64,
    /// Weight of all the request's candidates.
    pub total_candidate_weight: f64,
    /// Checkpoints visited: the request's, less those left out.
    pub mandatory_visited: usize,
    /// The request's checkpoints the plan does not visit, in the request's order (of
    /// importance), each with its reason; empty when every one fits.
    pub left_out: Vec<LeftOut>,
    /// Candidates the search considered: of those near a road and not ruled out by
    /// the straight-line bound, the heaviest, at most [`PlannerConfig::max_candidates`].
    pub candidates_considered: usize,
}

/// The weight a line covers: the sum of the weights of the candidates whose position
/// lies within `radius_m` metres of it, for comparing a fixed patrol route with a plan.
///
/// Distances are measured to the line's segments in a local equirectangular projection
/// at the line's mean latitude ([`LineIndex`]), within a fraction of a percent of the
/// geodesic distance over a county. A line of one position covers what is within
/// `radius_m` of that position; an empty line covers nothing. Candidates whose weight
/// is negative or not finite count for nothing.
pub fn route_coverage(line: &[Position], candidates: &[Candidate], radius_m: f64) -> f64 {
    let valid = |c: &&Candidate| c.weight.is_finite() && c.weight > 0.0;
    match line {
        [] => 0.0,
        [p] => {
            candidates.iter().filter(valid).filter(|c| c.position.haversine_m(*p) <= radius_m).map(|c| c.weight).sum()
        }
        _ => {
            let line: LineString<f64> = line.iter().map(|p| p.to_coord()).collect();
            let index = LineIndex::new([&line]);
            candidates
                .iter()
                .filter(valid)
                .filter(|c| index.distance_m(Point::new(c.position.lon(), c.position.lat())) <= radius_m)
                .map(|c| c.weight)
                .sum()
        }
    }
}

/// Plans one team's shift on `graph`; see the module documentation for the method.
pub fn plan(graph: &RoadGraph, request: &PlanRequest, config: &PlannerConfig) -> Result<Plan, PlanError> {
    validate(request, config)?;
    let snap_within = |p: Position| graph.snap(p).filter(|s| s.distance_m <= config.max_snap_m);
    let snap_error_m = |p: Position| graph.snap(p).map_or(f64::INFINITY, |s| s.distance_m);
    let max_m = config.max_snap_m;
    let start = snap_within(request.start)
        .ok_or_else(|| PlanError::StartOffRoad { distance_m: snap_error_m(request.start), max_m })?;
    let end = snap_within(request.end)
        .ok_or_else(|| PlanError::EndOffRoad { distance_m: snap_error_m(request.end), max_m })?;
    let mut stops = vec![Stop::end_point(StopKind::Start, start), Stop::end_point(StopKind::End, end)];
    // (index in the request's checkpoints, why it is left out)
    let mut left_out: Vec<(usize, LeftOutReason)> = Vec::new();
    for (i, c) in request.checkpoints.iter().enumerate() {
        match snap_within(c.position) {
            Some(snap) => {
                stops.push(Stop { kind: StopKind::Checkpoint, source: i, snap, dwell_s: c.dwell_s, weight: 0.0 })
            }
            None => left_out.push((i, LeftOutReason::OffRoad { distance_m: snap_error_m(c.position), max_m })),
        }
    }
    let considered = preselect(graph, request, config, &snap_within);
    let candidates_considered = considered.len();
    stops.extend(considered.into_iter().map(|(i, snap)| Stop {
        kind: StopKind::Hotspot,
        source: i,
        snap,
        dwell_s: request.hotspot_dwell_s,
        weight: request.candidates[i].weight,
    }));

    let problem = Problem::new(graph, &stops, request.budget_s);
    if problem.t(0, 1) >= UNREACHABLE_S {
        return Err(PlanError::EndUnreachable);
    }
    let (tour, excluded) = choose_checkpoints(&problem);
    let needed_s = problem.duration(&tour);
    if needed_s > problem.budget_s {
        // No checkpoint was kept (each one kept fits): the way itself is too long.
        return Err(PlanError::BudgetTooShort { needed_s, budget_s: request.budget_s });
    }
    left_out.extend(excluded.into_iter().map(|(stop, why)| {
        let reason = match why {
            Excluded::Unreachable => LeftOutReason::Unreachable,
            Excluded::TooLong(needed_s) => LeftOutReason::Budget { needed_s, budget_s: request.budget_s },
        };
        (stops[stop].source, reason)
    }));
    left_out.sort_by_key(|(i, _)| *i);
    let tour = search(&problem, tour, config);
    let mut plan = assemble(graph, request, config, &stops, &problem, &tour, candidates_considered);
    plan.left_out = left_out
        .into_iter()
        .map(|(i, reason)| {
            let c = &request.checkpoints[i];
            LeftOut { id: c.id.clone(), name: c.name.clone(), reason }
        })
        .collect();
    Ok(plan)
}

fn validate(request: &PlanRequest, config: &PlannerConfig) -> Result<(), PlanError> {
    let b = request.budget_s;
    if !(b.is_finite() && b > 0.0 && b <= MAX_BUDGET_S) {
        return Err(PlanError::Budget(b));
    }
    let d = request.hotspot_dwell_s;
    if !(d.is_finite() && d >= 0.0) {
        return Err(PlanError::HotspotDwell(d));
    }
    if let Some(c) = request.checkpoints.iter().find(|c| !(c.dwell_s.is_finite() && c.dwell_s >= 0.0)) {
        return Err(PlanError::CheckpointDwell { id: c.id.clone(), dwell_s: c.dwell_s });
    }
    if let Some(c) = request.candidates.iter().find(|c| !(c.weight.is_finite() && c.weight >= 0.0)) {
        return Err(PlanError::CandidateWeight { id: c.id.clone(), weight: c.weight });
    }
    // The snap bound may be infinite (no limit); the radius must be a real distance.
    for (field, value, finite) in
        [("coverage_radius_m", config.coverage_radius_m, true), ("max_snap_m", config.max_snap_m, false)]
    {
        if value.is_nan() || value < 0.0 || (finite && value.is_infinite()) {
            return Err(PlanError::Config { field, value });
        }
    }
    Ok(())
}

/// The candidates worth a place in the matrix, as (index in the request, snap): of
/// weight above zero, near a road, and not obviously out of reach, the heaviest
/// `max_candidates` (ties in request order).
///
/// "Obviously out of reach" is a lower bound: the straight line from the start to the
/// candidate and on to the end, at the graph's fastest road speed, plus the dwell,
/// exceeds the budget. It assumes nobody walks faster than the fastest road is driven
/// (access legs are at 5 km/h in the default speed table). Without it, a county-wide
/// candidate list would fill the matrix with places the shift could never reach.
fn preselect(
    graph: &RoadGraph,
    request: &PlanRequest,
    config: &PlannerConfig,
    snap_within: &impl Fn(Position) -> Option<Snap>,
) -> Vec<(usize, Snap)> {
    let max_speed_mps = graph.edges().map(|(_, e)| e.speed_mps).fold(0.0, f64::max);
    let mut ranked: Vec<usize> = (0..request.candidates.len())
        .filter(|&i| {
            let c = &request.candidates[i];
            let straight_m = request.start.haversine_m(c.position) + c.position.haversine_m(request.end);
            c.weight > 0.0 && straight_m / max_speed_mps + request.hotspot_dwell_s <= request.budget_s
        })
        .collect();
    // Stable: equal weights keep the request's order.
    ranked.sort_by(|&a, &b| request.candidates[b].weight.total_cmp(&request.candidates[a].weight));
    ranked
        .into_iter()
        .filter_map(|i| snap_within(request.candidates[i].position).map(|s| (i, s)))
        .take(config.max_candidates)
        .collect()
}

/// A stop of the problem: 0 is the start, 1 the end, then the checkpoints, then the
/// candidates considered.
#[derive(Debug, Clone, Copy)]
struct Stop {
    kind: StopKind,
    /// Index in the request's checkpoints or candidates.
    source: usize,
    snap: Snap,
    dwell_s: f64,
    weight: f64,
}

impl Stop {
    fn end_point(kind: StopKind, snap: Snap) -> Stop {
        Stop { kind, source: 0, snap, dwell_s: 0.0, weight: 0.0 }
    }

    fn same_place(&self, other: &Stop) -> bool {
        self.snap.from == other.snap.from
    }
}

/// The stops as the search sees them: a travel-time matrix, dwells and weights.
#[derive(Debug, Clone)]
struct Problem {
    n: usize,
    /// Row-major `[from * n + to]`, [`UNREACHABLE_S`] where no road leads.
    time_s: Vec<f64>,
    dwell_s: Vec<f64>,
    weight: Vec<f64>,
    /// Stops before this index are the start, the end and the checkpoints.
    first_hotspot: usize,
    /// The budget less [`BUDGET_MARGIN_S`].
    budget_s: f64,
}

impl Problem {
    fn new(graph: &RoadGraph, stops: &[Stop], budget_s: f64) -> Problem {
        // A shift usually ends where it starts: one search for both.
        let same_end = stops[1].same_place(&stops[0]);
        let point_of: Vec<usize> = (0..stops.len())
            .map(|i| {
                if i == 0 || (i == 1 && same_end) {
                    0
                } else if same_end {
                    i - 1
                } else {
                    i
                }
            })
            .collect();
        let points: Vec<Position> =
            stops.iter().enumerate().filter(|(i, _)| !(same_end && *i == 1)).map(|(_, s)| s.snap.from).collect();
        let matrix = graph.travel_time_matrix(&points);
        let n = stops.len();
        let mut time_s = vec![UNREACHABLE_S; n * n];
        for a in 0..n {
            for b in 0..n {
                if let Some(s) = matrix[point_of[a]][point_of[b]] {
                    time_s[a * n + b] = s.min(UNREACHABLE_S);
                }
            }
        }
        Problem {
            n,
            time_s,
            dwell_s: stops.iter().map(|s| s.dwell_s).collect(),
            weight: stops.iter().map(|s| s.weight).collect(),
            first_hotspot: stops.iter().position(|s| s.kind == StopKind::Hotspot).unwrap_or(n),
            budget_s: budget_s - BUDGET_MARGIN_S,
        }
    }

    fn t(&self, a: usize, b: usize) -> f64 {
        self.time_s[a * self.n + b]
    }

    fn is_hotspot(&self, stop: usize) -> bool {
        stop >= self.first_hotspot
    }

    /// Travel and dwell of a tour, seconds.
    fn duration(&self, tour: &[usize]) -> f64 {
        let travel_s: f64 = tour.windows(2).map(|w| self.t(w[0], w[1])).sum();
        travel_s + tour.iter().map(|&s| self.dwell_s[s]).sum::<f64>()
    }

    fn score(&self, tour: &[usize]) -> f64 {
        tour.iter().map(|&s| self.weight[s]).sum()
    }

    /// The cheapest place to insert `stop` in `tour`: (index it would take, seconds
    /// added including its dwell).
    fn cheapest_insertion(&self, tour: &[usize], stop: usize) -> (usize, f64) {
        let mut best = (1, f64::INFINITY);
        for (i, w) in tour.windows(2).enumerate() {
            let added_s = self.t(w[0], stop) + self.t(stop, w[1]) - self.t(w[0], w[1]);
            if added_s < best.1 {
                best = (i + 1, added_s);
            }
        }
        (best.0, best.1 + self.dwell_s[stop])
    }
}

/// Why [`choose_checkpoints`] leaves a checkpoint out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Excluded {
    /// No road leads to it from the start, from it to the end, or between it and the
    /// checkpoints kept.
    Unreachable,
    /// The shortest tour through it and the checkpoints kept before it takes this many
    /// seconds, more than the budget.
    TooLong(f64),
}

/// The checkpoints to visit and the shortest tour through them, and the ones left out
/// (as stop indices, with why). Stops are in the request's order of importance: when
/// the tour through every reachable checkpoint does not fit, each in turn is kept if
/// the tour through it and the ones kept before it still fits. The tour returned fits
/// the budget unless it holds no checkpoint (then nothing fits at all).
fn choose_checkpoints(p: &Problem) -> (Vec<usize>, Vec<(usize, Excluded)>) {
    let mut left = Vec::new();
    let mut reachable = Vec::with_capacity(p.first_hotspot - 2);
    for c in 2..p.first_hotspot {
        if p.t(0, c) >= UNREACHABLE_S || p.t(c, 1) >= UNREACHABLE_S {
            left.push((c, Excluded::Unreachable));
        } else {
            reachable.push(c);
        }
    }
    // Usually they all fit: one tour, as before any was left out.
    let all = mandatory_tour(p, &reachable);
    if p.duration(&all) <= p.budget_s {
        return (all, left);
    }
    let mut kept = Vec::with_capacity(reachable.len());
    let mut tour = mandatory_tour(p, &kept);
    for &c in &reachable {
        kept.push(c);
        let trial = mandatory_tour(p, &kept);
        let needed_s = p.duration(&trial);
        if needed_s <= p.budget_s {
            tour = trial;
        } else {
            kept.pop();
            // A leg between checkpoints may lack a road when the end differs from the start.
            left.push((c, if needed_s >= UNREACHABLE_S { Excluded::Unreachable } else { Excluded::TooLong(needed_s) }));
        }
    }
    left.sort_by_key(|(c, _)| *c);
    (tour, left)
}

/// The iterated local search from `tour`, a tour through the checkpoints to visit that
/// fits the budget; the checkpoints stay, hotspots are added, shaken out and swapped.
fn search(p: &Problem, mut tour: Vec<usize>, config: &PlannerConfig) -> Vec<usize> {
    let needed_s = p.duration(&tour);
    let n_hotspots = p.n - p.first_hotspot;
    if n_hotspots == 0 {
        return tour;
    }
    let mut visited = vec![false; p.n];
    let mut best = tour.clone();
    let (mut best_score, mut best_s) = (0.0, needed_s);
    let (mut s, mut r) = (0usize, 1usize);
    let r_max = (n_hotspots / 3).max(1);
    let mut stale = 0;
    // The hotspots the last shake removed sit out the next insertion step, so that it
    // does not simply put them back.
    let mut resting = vec![false; p.n];
    for _ in 0..config.max_iterations {
        insert_greedy(p, &mut tour, &mut visited, &resting);
        resting.fill(false);
        improve(p, &mut tour, &mut visited);
        insert_greedy(p, &mut tour, &mut visited, &resting);
        while insert_reordered(p, &mut tour, &mut visited) {
            insert_greedy(p, &mut tour, &mut visited, &resting);
        }
        let (score, total_s) = (p.score(&tour), p.duration(&tour));
        if score > best_score || (score == best_score && total_s < best_s - MIN_GAIN_S) {
            best.clone_from(&tour);
            (best_score, best_s) = (score, total_s);
            r = 1;
            stale = 0;
        } else {
            stale += 1;
        }
        if stale >= config.max_stale_iterations {
            break;
        }
        // Shake: remove `r` consecutive hotspot visits from the `s`-th on, wrapping
        // round the tour's hotspots.
        let hotspots: Vec<usize> = (0..tour.len()).filter(|&i| p.is_hotspot(tour[i])).collect();
        if hotspots.is_empty() {
            break; // nothing fits: every round would be the same
        }
        let k = hotspots.len();
        let mut remove: Vec<usize> = (0..r.min(k)).map(|d| hotspots[(s + d) % k]).collect();
        remove.sort_unstable();
        for &i in remove.iter().rev() {
            visited[tour[i]] = false;
            resting[tour[i]] = true;
            tour.remove(i);
        }
        s = (s + r) % k;
        r = if r + 1 > r_max { 1 } else { r + 1 };
    }
    best
}

/// The shortest tour from the start through the `checkpoints` (stop indices) to the end.
fn mandatory_tour(p: &Problem, checkpoints: &[usize]) -> Vec<usize> {
    if checkpoints.len() <= HELD_KARP_MAX {
        return held_karp(p, checkpoints);
    }
    let mut tour = vec![0, 1];
    let mut left: Vec<usize> = checkpoints.to_vec();
    while !left.is_empty() {
        // Cheapest insertion: the checkpoint that adds least, at its cheapest place.
        let (k, (at, _)) = left
            .iter()
            .map(|&c| p.cheapest_insertion(&tour, c))
            .enumerate()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .expect("left is not empty");
        tour.insert(at, left.remove(k));
    }
    let mut visited = vec![false; p.n];
    improve(p, &mut tour, &mut visited);
    tour
}

/// Held & Karp's dynamic programme over subsets of the `m` checkpoints: `cost[mask][j]`
/// is the least travel from the start through the checkpoints of `mask`, ending at
/// checkpoint `j` (the stop `checkpoints[j]`). Dwells do not depend on the order and
/// are left out.
fn held_karp(p: &Problem, checkpoints: &[usize]) -> Vec<usize> {
    let m = checkpoints.len();
    if m == 0 {
        return vec![0, 1];
    }
    let stop = |j: usize| checkpoints[j];
    let subsets = 1usize << m;
    let mut cost = vec![f64::INFINITY; subsets * m];
    let mut parent = vec![usize::MAX; subsets * m];
    for j in 0..m {
        cost[(1 << j) * m + j] = p.t(0, stop(j));
    }
    for mask in 1..subsets {
        for j in (0..m).filter(|j| mask & (1 << j) != 0) {
            let c = cost[mask * m + j];
            if c == f64::INFINITY {
                continue;
            }
            for k in (0..m).filter(|k| mask & (1 << k) == 0) {
                let (next, via) = (mask | (1 << k), c + p.t(stop(j), stop(k)));
                if via < cost[next * m + k] {
                    cost[next * m + k] = via;
                    parent[next * m + k] = j;
                }
            }
        }
    }
    let full = subsets - 1;
    let closed = |j: usize| cost[full * m + j] + p.t(stop(j), 1);
    // `min_by` keeps the first of equals: ties go to the lower index.
    let mut j = (0..m).min_by(|&a, &b| closed(a).total_cmp(&closed(b))).expect("m > 0");
    let (mut mask, mut order) = (full, Vec::with_capacity(m + 2));
    order.push(1);
    while j != usize::MAX {
        order.push(stop(j));
        let prev = parent[mask * m + j];
        mask &= !(1 << j);
        j = prev;
    }
    order.push(0);
    order.reverse();
    order
}

/// The insertion step: while some unvisited hotspot fits, insert the one of highest
/// weight² / added seconds at its cheapest place (ties to the lower stop index).
fn insert_greedy(p: &Problem, tour: &mut Vec<usize>, visited: &mut [bool], resting: &[bool]) {
    let mut total_s = p.duration(tour);
    loop {
        let mut best: Option<(f64, usize, usize, f64)> = None;
        for c in p.first_hotspot..p.n {
            if visited[c] || resting[c] || p.weight[c] <= 0.0 {
                continue;
            }
            let (at, added_s) = p.cheapest_insertion(tour, c);
            if total_s + added_s > p.budget_s {
                continue;
            }
            // A stop on the way with no dwell adds nothing: its ratio is the largest.
            let ratio = p.weight[c] * p.weight[c] / added_s.max(1e-3);
            if best.is_none_or(|b| ratio > b.0) {
                best = Some((ratio, c, at, added_s));
            }
        }
        let Some((_, c, at, added_s)) = best else { break };
        tour.insert(at, c);
        visited[c] = true;
        total_s += added_s;
    }
}

/// Hotspots tried by [`insert_reordered`] in one call, the best by ratio first.
const REORDER_ATTEMPTS: usize = 3;

/// When no unvisited hotspot fits at its cheapest place, one may still fit once the
/// tour is reordered around it: insert the best few by ratio in turn, shorten the tour
/// by 2-opt and relocation, and keep the first that then fits.
fn insert_reordered(p: &Problem, tour: &mut Vec<usize>, visited: &mut [bool]) -> bool {
    let total_s = p.duration(tour);
    let mut ranked: Vec<(f64, usize, usize)> = (p.first_hotspot..p.n)
        .filter(|&c| !visited[c] && p.weight[c] > 0.0)
        .map(|c| {
            let (at, added_s) = p.cheapest_insertion(tour, c);
            (p.weight[c] * p.weight[c] / added_s.max(1e-3), c, at)
        })
        // When not even the hotspot's own dwell fits, no order can help.
        .filter(|&(_, c, _)| total_s + p.dwell_s[c] <= p.budget_s)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut trial = Vec::with_capacity(tour.len() + 1);
    for &(_, c, at) in ranked.iter().take(REORDER_ATTEMPTS) {
        trial.clone_from(tour);
        trial.insert(at, c);
        while two_opt(p, &mut trial) || relocate(p, &mut trial) {}
        if p.duration(&trial) <= p.budget_s {
            std::mem::swap(tour, &mut trial);
            visited[c] = true;
            return true;
        }
    }
    false
}

/// The local search: shorten the tour by 2-opt and relocation until neither helps,
/// then swap visited hotspots for heavier unvisited ones that fit; repeat while a swap
/// was made (each raises the score, so this ends).
fn improve(p: &Problem, tour: &mut Vec<usize>, visited: &mut [bool]) {
    loop {
        while two_opt(p, tour) || relocate(p, tour) {}
        if !replace(p, tour, visited) {
            break;
        }
    }
}

/// The best 2-opt move, if it saves time: reverse `tour[i..=j]`. Travel times are
/// asymmetric, so the reversed part is costed in its new direction, from prefix sums
/// of the legs forwards and backwards (each move in constant time).
fn two_opt(p: &Problem, tour: &mut [usize]) -> bool {
    let len = tour.len();
    if len < 4 {
        return false;
    }
    // forward[k]: legs tour[0]→…→tour[k]; backward[k]: the same legs driven backwards.
    let mut forward = vec![0.0; len];
    let mut backward = vec![0.0; len];
    for k in 1..len {
        forward[k] = forward[k - 1] + p.t(tour[k - 1], tour[k]);
        backward[k] = backward[k - 1] + p.t(tour[k], tour[k - 1]);
    }
    let mut best = (MIN_GAIN_S, 0, 0);
    for i in 1..len - 2 {
        for j in i + 1..len - 1 {
            let before = p.t(tour[i - 1], tour[i]) + (forward[j] - forward[i]) + p.t(tour[j], tour[j + 1]);
            let after = p.t(tour[i - 1], tour[j]) + (backward[j] - backward[i]) + p.t(tour[i], tour[j + 1]);
            if before - after > best.0 {
                best = (before - after, i, j);
            }
        }
    }
    if best.1 == 0 {
        return false;
    }
    tour[best.1..=best.2].reverse();
    true
}

/// The best relocation of one stop to another place in the tour, if it saves time.
fn relocate(p: &Problem, tour: &mut Vec<usize>) -> bool {
    let len = tour.len();
    let mut best = (MIN_GAIN_S, 0, 0);
    for i in 1..len - 1 {
        let (a, x, b) = (tour[i - 1], tour[i], tour[i + 1]);
        let removed_s = p.t(a, x) + p.t(x, b) - p.t(a, b);
        if removed_s <= best.0 {
            continue; // no insertion can save more than the removal does
        }
        // Between tour[j] and tour[j + 1], both other than x.
        for j in (0..len - 1).filter(|&j| j + 1 != i && j != i) {
            let (c, d) = (tour[j], tour[j + 1]);
            let gain = removed_s - (p.t(c, x) + p.t(x, d) - p.t(c, d));
            if gain > best.0 {
                best = (gain, i, j);
            }
        }
    }
    if best.1 == 0 {
        return false;
    }
    let (i, j) = (best.1, best.2);
    let x = tour.remove(i);
    // Removing x shifted everything after it one place left.
    let at = if j > i { j } else { j + 1 };
    tour.insert(at, x);
    true
}

/// The best swap of a visited hotspot for a heavier unvisited one that fits at its
/// cheapest place once the first is gone: the weight gained, ties to the shorter tour.
fn replace(p: &Problem, tour: &mut Vec<usize>, visited: &mut [bool]) -> bool {
    let total_s = p.duration(tour);
    let mut best: Option<(f64, f64, usize, usize)> = None;
    let mut without = Vec::with_capacity(tour.len());
    for i in (1..tour.len() - 1).filter(|&i| p.is_hotspot(tour[i])) {
        let h = tour[i];
        let freed_s = p.t(tour[i - 1], h) + p.dwell_s[h] + p.t(h, tour[i + 1]) - p.t(tour[i - 1], tour[i + 1]);
        without.clear();
        without.extend(tour.iter().enumerate().filter(|(k, _)| *k != i).map(|(_, s)| *s));
        for c in (p.first_hotspot..p.n).filter(|&c| !visited[c] && p.weight[c] > p.weight[h]) {
            let (_, added_s) = p.cheapest_insertion(&without, c);
            let new_s = total_s - freed_s + added_s;
            if new_s > p.budget_s {
                continue;
            }
            let gain = p.weight[c] - p.weight[h];
            if best.is_none_or(|b| gain > b.0 || (gain == b.0 && new_s < b.1)) {
                best = Some((gain, new_s, i, c));
            }
        }
    }
    let Some((_, _, i, c)) = best else { return false };
    visited[tour[i]] = false;
    tour.remove(i);
    let (at, _) = p.cheapest_insertion(tour, c);
    tour.insert(at, c);
    visited[c] = true;
    true
}

/// The plan of a tour: planned times from the matrix (the times the search kept within
/// the budget), the geometry from the road routes of its legs.
fn assemble(
    graph: &RoadGraph,
    request: &PlanRequest,
    config: &PlannerConfig,
    stops: &[Stop],
    p: &Problem,
    tour: &[usize],
    candidates_considered: usize,
) -> Plan {
    let mut waypoints = Vec::with_capacity(tour.len());
    let mut geometry: Vec<Position> = Vec::new();
    let (mut clock_s, mut travel_s, mut length_m) = (0.0, 0.0, 0.0);
    let at_ms = |s: f64| request.start_ms + (s * 1000.0).round() as i64;
    let push = |geometry: &mut Vec<Position>, q: Position| {
        if geometry.last() != Some(&q) {
            geometry.push(q);
        }
    };
    for (k, &s) in tour.iter().enumerate() {
        let stop = &stops[s];
        if k == 0 {
            push(&mut geometry, stop.snap.from);
        } else {
            let prev = &stops[tour[k - 1]];
            let leg_s = p.t(tour[k - 1], s);
            clock_s += leg_s;
            travel_s += leg_s;
            // The matrix found a road for this leg, so A* on the same snaps finds one
            // too; the straight line is only a guard.
            match graph.route_between(&prev.snap, &stop.snap) {
                Some(route) => {
                    length_m += route.length_m + route.start.distance_m + route.end.distance_m;
                    for q in route.geometry {
                        push(&mut geometry, q);
                    }
                }
                None => length_m += prev.snap.from.haversine_m(stop.snap.from),
            }
            push(&mut geometry, stop.snap.from);
        }
        let arrive_ms = at_ms(clock_s);
        clock_s += stop.dwell_s;
        let (id, name) = match stop.kind {
            StopKind::Start => ("start".to_owned(), String::new()),
            StopKind::End => ("end".to_owned(), String::new()),
            StopKind::Checkpoint => {
                let c = &request.checkpoints[stop.source];
                (c.id.clone(), c.name.clone())
            }
            StopKind::Hotspot => (request.candidates[stop.source].id.clone(), String::new()),
        };
        waypoints.push(PlannedStop {
            kind: stop.kind,
            id,
            name,
            position: stop.snap.from,
            arrive_ms,
            depart_ms: at_ms(clock_s),
            dwell_s: stop.dwell_s,
            weight: stop.weight,
        });
    }
    let valid = |c: &&Candidate| c.weight > 0.0;
    Plan {
        covered_weight: route_coverage(&geometry, &request.candidates, config.coverage_radius_m),
        visited_weight: tour.iter().map(|&s| stops[s].weight).sum(),
        total_candidate_weight: request.candidates.iter().filter(valid).map(|c| c.weight).sum(),
        mandatory_visited: tour.iter().filter(|&&s| stops[s].kind == StopKind::Checkpoint).count(),
        left_out: Vec::new(),
        waypoints,
        geometry,
        travel_s,
        total_s: clock_s,
        length_m,
        candidates_considered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Line;
    use crate::position::EARTH_RADIUS_M;
    use crate::road::{GridSpec, RoadSpeeds};

    const T0: UnixMs = 1_790_000_000_000;

    /// Metres east and north of (107.2°E, 30.7°N) as a position.
    fn at(x_m: f64, y_m: f64) -> Position {
        let deg_lat_per_m = 180.0 / (std::f64::consts::PI * EARTH_RADIUS_M);
        Position::new(107.2 + x_m * deg_lat_per_m / 30.7f64.to_radians().cos(), 30.7 + y_m * deg_lat_per_m).unwrap()
    }

    fn road(id: &str, points: &[(f64, f64)]) -> Line {
        let mut properties = serde_json::Map::new();
        properties.insert("class".into(), "residential".into());
        let coords = points.iter().map(|&(x, y)| at(x, y).to_coord()).collect();
        Line { id: id.into(), name: id.into(), line: LineString::new(coords), properties }
    }

    /// A hand-made network of 30 km/h streets (120 s a kilometre), metres:
    ///
    /// ```text
    ///   (0, 3000) N
    ///       |
    ///   (0, 2000)
    ///       |
    ///   (0, 1000)
    ///       |
    ///   (0, 0) P ——— (1000, 0) ——— (2000, 0) ——— (3000, 0) ——— (4000, 0)
    ///
    ///   (20000, 0) ——— (21000, 0)   (an island)
    /// ```
    fn hand_made() -> RoadGraph {
        let roads = [
            road("main", &[(0.0, 0.0), (1000.0, 0.0), (2000.0, 0.0), (3000.0, 0.0), (4000.0, 0.0)]),
            road("north", &[(0.0, 0.0), (0.0, 1000.0), (0.0, 2000.0), (0.0, 3000.0)]),
            road("island", &[(20000.0, 0.0), (21000.0, 0.0)]),
        ];
        RoadGraph::from_roads(&roads, &RoadSpeeds::default())
    }

    /// Seconds along the hand-made streets.
    fn street_s(m: f64) -> f64 {
        m / (30.0 / 3.6)
    }

    fn candidate(id: &str, x_m: f64, y_m: f64, weight: f64) -> Candidate {
        Candidate { id: id.into(), position: at(x_m, y_m), weight }
    }

    fn checkpoint(id: &str, x_m: f64, y_m: f64, dwell_s: f64) -> Mandatory {
        Mandatory { id: id.into(), name: format!("checkpoint {id}"), position: at(x_m, y_m), dwell_s }
    }

    fn request(budget_s: f64, checkpoints: Vec<Mandatory>, candidates: Vec<Candidate>) -> PlanRequest {
        PlanRequest {
            start: at(0.0, 0.0),
            end: at(0.0, 0.0),
            budget_s,
            checkpoints,
            candidates,
            hotspot_dwell_s: 300.0,
            start_ms: T0,
        }
    }

    fn ids(plan: &Plan, kind: StopKind) -> Vec<&str> {
        plan.waypoints.iter().filter(|w| w.kind == kind).map(|w| w.id.as_str()).collect()
    }

    /// The schedule and the geometry agree with each other and with the budget.
    fn assert_consistent(plan: &Plan, budget_s: f64, case: &str) {
        assert!(plan.total_s <= budget_s, "{case}: {} s over the budget of {budget_s} s", plan.total_s);
        let first = plan.waypoints.first().unwrap();
        let last = plan.waypoints.last().unwrap();
        assert_eq!((first.kind, last.kind), (StopKind::Start, StopKind::End), "{case}");
        assert_eq!(first.arrive_ms, T0, "{case}");
        assert_eq!(last.depart_ms, T0 + (plan.total_s * 1000.0).round() as i64, "{case}");
        let dwell_s: f64 = plan.waypoints.iter().map(|w| w.dwell_s).sum();
        assert!((plan.total_s - plan.travel_s - dwell_s).abs() < 1e-6, "{case}");
        for w in &plan.waypoints {
            assert_eq!(w.depart_ms - w.arrive_ms, (w.dwell_s * 1000.0).round() as i64, "{case}: {}", w.id);
        }
        for pair in plan.waypoints.windows(2) {
            assert!(pair[1].arrive_ms >= pair[0].depart_ms, "{case}: {} before {}", pair[1].id, pair[0].id);
        }
        // The line starts and ends at the stops themselves and passes through each.
        assert_eq!(plan.geometry.first(), Some(&first.position), "{case}");
        assert_eq!(plan.geometry.last(), Some(&last.position), "{case}");
        for w in &plan.waypoints {
            assert!(plan.geometry.contains(&w.position), "{case}: the line misses {}", w.id);
        }
        assert!(plan.visited_weight <= plan.covered_weight + 1e-9, "{case}");
        assert!(plan.covered_weight <= plan.total_candidate_weight + 1e-9, "{case}");
    }

    #[test]
    fn the_heavier_hotspot_for_the_time_is_chosen() {
        let g = hand_made();
        // Near: 2 × 120 s + 300 s = 540 s. Far: 2 × 360 s + 300 s = 1020 s. Both: 1560 s.
        // (case, weight near, weight far, budget, hotspots visited in order)
        let rows: [(&str, f64, f64, f64, &[&str]); 5] = [
            ("a heavy hotspot near beats a light one far", 10.0, 1.0, 1100.0, &["near"]),
            ("a heavy hotspot far beats a light one near", 1.0, 10.0, 1100.0, &["far"]),
            ("both fit", 1.0, 10.0, 1600.0, &["far", "near"]),
            ("only the near one fits", 1.0, 10.0, 600.0, &["near"]),
            ("nothing fits", 10.0, 10.0, 500.0, &[]),
        ];
        for (case, near_w, far_w, budget_s, expected) in rows {
            let req = request(
                budget_s,
                vec![],
                vec![candidate("near", 1000.0, 0.0, near_w), candidate("far", 0.0, 3000.0, far_w)],
            );
            let plan = plan(&g, &req, &PlannerConfig::default()).unwrap();
            let mut visited = ids(&plan, StopKind::Hotspot);
            visited.sort_unstable();
            assert_eq!(visited, expected, "{case}");
            assert_consistent(&plan, budget_s, case);
            let expected_w: f64 =
                req.candidates.iter().filter(|c| expected.contains(&c.id.as_str())).map(|c| c.weight).sum();
            assert_eq!(plan.visited_weight, expected_w, "{case}");
        }
    }

    #[test]
    fn checkpoints_that_fit_are_all_visited_with_their_dwell() {
        let g = hand_made();
        let checkpoints = vec![checkpoint("east", 3000.0, 0.0, 120.0), checkpoint("north", 0.0, 2000.0, 60.0)];
        // The two out-and-back legs and the dwells, as the graph measures them.
        let alone = plan(&g, &request(MAX_BUDGET_S, checkpoints.clone(), vec![]), &PlannerConfig::default()).unwrap();
        let needed_s = alone.total_s;
        assert!((needed_s - street_s(2.0 * 3000.0 + 2.0 * 2000.0) - 180.0).abs() < 0.5, "{needed_s}");
        let candidates = vec![
            candidate("on the way", 2000.0, 0.0, 1.0),
            candidate("beyond", 4000.0, 0.0, 5.0),
            candidate("top", 0.0, 3000.0, 2.0),
        ];
        for extra_s in [0.5, 301.0, 600.0, 3000.0] {
            let budget_s = needed_s + extra_s;
            let plan = plan(&g, &request(budget_s, checkpoints.clone(), candidates.clone()), &PlannerConfig::default())
                .unwrap();
            let case = format!("{extra_s} s to spare");
            assert_consistent(&plan, budget_s, &case);
            assert_eq!(plan.mandatory_visited, 2, "{case}");
            let mut visited = ids(&plan, StopKind::Checkpoint);
            visited.sort_unstable();
            assert_eq!(visited, ["east", "north"], "{case}");
            for w in plan.waypoints.iter().filter(|w| w.kind == StopKind::Checkpoint) {
                let c = checkpoints.iter().find(|c| c.id == w.id).unwrap();
                assert_eq!(
                    (w.dwell_s, w.name.as_str(), w.position),
                    (c.dwell_s, c.name.as_str(), c.position),
                    "{case}"
                );
            }
            // Each hotspot costs its 300 s dwell, the ones off the way 240 s more: with
            // 301 s to spare only the one on the way fits, light as it is.
            let hotspots = ids(&plan, StopKind::Hotspot);
            match extra_s {
                0.5 => assert!(hotspots.is_empty(), "{case}: {hotspots:?}"),
                301.0 => assert_eq!(hotspots, ["on the way"], "{case}"),
                3000.0 => assert_eq!(hotspots.len(), 3, "{case}: {hotspots:?}"),
                _ => {}
            }
            // The road passes "on the way" whether or not the plan stops there.
            assert!(plan.covered_weight >= 1.0, "{case}: {}", plan.covered_weight);
        }
    }

    #[test]
    fn checkpoints_that_do_not_fit_are_left_out_and_the_most_important_kept() {
        let g = hand_made();
        // Out and back on the 30 km/h streets: east 720 s + 120 s dwell = 840 s; north
        // 480 s + 60 s = 540 s; both 1380 s; "near" lies on the way east, no dwell.
        let east = checkpoint("east", 3000.0, 0.0, 120.0);
        let north = checkpoint("north", 0.0, 2000.0, 60.0);
        let near = checkpoint("near", 1000.0, 0.0, 0.0);
        let island = checkpoint("island", 20500.0, 0.0, 60.0);
        let off_road = checkpoint("off road", 1000.0, 5000.0, 60.0);
        // (case, checkpoints in order of importance, budget, kept, left out: (id, cause, seconds needed))
        type Row<'a> = (&'a str, Vec<Mandatory>, f64, &'a [&'a str], &'a [(&'a str, &'a str, f64)]);
        let rows: Vec<Row> = vec![
            ("all fit", vec![east.clone(), north.clone()], 1400.0, &["east", "north"], &[]),
            (
                "one left out: the less important",
                vec![north.clone(), east.clone()],
                1000.0,
                &["north"],
                &[("east", "budget", 1380.0)],
            ),
            (
                "the most important kept, though another costs less",
                vec![east.clone(), north.clone()],
                900.0,
                &["east"],
                &[("north", "budget", 1380.0)],
            ),
            (
                "a less important one that still fits is kept",
                vec![east.clone(), north.clone(), near],
                900.0,
                &["east", "near"],
                &[("north", "budget", 1380.0)],
            ),
            (
                "unreachable, left out with its reason",
                vec![island, north.clone()],
                1400.0,
                &["north"],
                &[("island", "unreachable", 0.0)],
            ),
            (
                "off the road, left out with its reason",
                vec![north.clone(), off_road],
                1400.0,
                &["north"],
                &[("off road", "off_road", 0.0)],
            ),
            (
                "none fits: the plan goes nowhere and says why",
                vec![east.clone()],
                500.0,
                &[],
                &[("east", "budget", 840.0)],
            ),
        ];
        for (case, checkpoints, budget_s, kept, left) in rows {
            let req = request(budget_s, checkpoints, vec![]);
            let p = plan(&g, &req, &PlannerConfig::default()).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_consistent(&p, budget_s, case);
            let mut visited = ids(&p, StopKind::Checkpoint);
            visited.sort_unstable();
            let mut expected = kept.to_vec();
            expected.sort_unstable();
            assert_eq!(visited, expected, "{case}");
            assert_eq!(p.mandatory_visited, kept.len(), "{case}");
            let got: Vec<&str> = p.left_out.iter().map(|l| l.id.as_str()).collect();
            assert_eq!(got, left.iter().map(|l| l.0).collect::<Vec<_>>(), "{case}");
            for (l, &(id, cause, needed)) in p.left_out.iter().zip(left) {
                let c = req.checkpoints.iter().find(|c| c.id == id).unwrap();
                assert_eq!(l.name, c.name, "{case}");
                let json = serde_json::to_value(&l.reason).unwrap();
                assert_eq!(json["cause"], cause, "{case}: {json}");
                match &l.reason {
                    LeftOutReason::Budget { needed_s, budget_s: b } => {
                        assert!((needed_s - needed).abs() < 0.5, "{case}: {needed_s} vs {needed}");
                        assert_eq!(*b, budget_s, "{case}");
                        assert_eq!(
                            l.reason.to_string(),
                            format!(
                                "the shift's budget of {budget_s:.0} s does not reach it: the tour would need {needed:.0} s"
                            ),
                            "{case}"
                        );
                    }
                    LeftOutReason::OffRoad { distance_m, max_m } => {
                        // The nearest road is the north street's end at (0, 3000): 2.24 km.
                        assert!((distance_m - 2236.0).abs() < 5.0 && *max_m == 1000.0, "{case}: {distance_m}");
                        assert_eq!(l.reason.to_string(), "it is 2236 m from the nearest road, more than 1000 m");
                    }
                    LeftOutReason::Unreachable => {
                        assert_eq!(l.reason.to_string(), "no road leads to it on a tour from the start to the end")
                    }
                }
            }
            // The same request, the same plan: left-out checkpoints included.
            assert_eq!(plan(&g, &req.clone(), &PlannerConfig::default()).unwrap(), p, "{case}");
        }
    }

    #[test]
    fn time_left_after_the_checkpoints_kept_goes_to_hotspots() {
        let g = hand_made();
        // East (840 s) fits 1000 s, north does not; a hotspot on the way east with its
        // 300 s dwell does not either, but one at the post does (no travel).
        let req = request(
            1200.0,
            vec![checkpoint("east", 3000.0, 0.0, 120.0), checkpoint("north", 0.0, 2000.0, 60.0)],
            vec![candidate("at the post", 0.0, 0.0, 1.0), candidate("top", 0.0, 3000.0, 5.0)],
        );
        let p = plan(&g, &req, &PlannerConfig::default()).unwrap();
        assert_consistent(&p, 1200.0, "hotspots");
        assert_eq!(ids(&p, StopKind::Checkpoint), ["east"]);
        assert_eq!(ids(&p, StopKind::Hotspot), ["at the post"]);
        assert_eq!(p.left_out.len(), 1);
        assert_eq!(p.left_out[0].id, "north");
    }

    #[test]
    fn only_a_way_from_start_to_end_too_long_for_the_budget_is_refused() {
        let g = hand_made();
        let mut req = request(100.0, vec![checkpoint("east", 3000.0, 0.0, 120.0)], vec![]);
        req.end = at(4000.0, 0.0);
        let err = plan(&g, &req, &PlannerConfig::default()).unwrap_err();
        let PlanError::BudgetTooShort { needed_s, budget_s } = err else { panic!("{err:?}") };
        assert!((needed_s - street_s(4000.0)).abs() < 0.5, "{needed_s}");
        assert_eq!(budget_s, 100.0);
        assert_eq!(err.field(), "budget_s");
    }

    #[test]
    fn errors_name_their_field() {
        let g = hand_made();
        let ok = request(3600.0, vec![checkpoint("cp", 1000.0, 0.0, 60.0)], vec![candidate("h", 2000.0, 0.0, 1.0)]);
        let far_off = at(1000.0, 5000.0);
        let island = at(20500.0, 0.0);
        let mut cases: Vec<(&str, PlanRequest, PlannerConfig, &str)> = Vec::new();
        let mut case = |name, change: &dyn Fn(&mut PlanRequest, &mut PlannerConfig), field| {
            let (mut req, mut cfg) = (ok.clone(), PlannerConfig::default());
            change(&mut req, &mut cfg);
            cases.push((name, req, cfg, field));
        };
        case("budget NaN", &|r, _| r.budget_s = f64::NAN, "budget_s");
        case("budget zero", &|r, _| r.budget_s = 0.0, "budget_s");
        case("budget over a day", &|r, _| r.budget_s = 2.0 * MAX_BUDGET_S, "budget_s");
        case("hotspot dwell negative", &|r, _| r.hotspot_dwell_s = -1.0, "hotspot_dwell_s");
        case("checkpoint dwell infinite", &|r, _| r.checkpoints[0].dwell_s = f64::INFINITY, "checkpoints");
        case("candidate weight NaN", &|r, _| r.candidates[0].weight = f64::NAN, "candidates");
        case("coverage radius negative", &|_, c| c.coverage_radius_m = -1.0, "coverage_radius_m");
        case("snap bound NaN", &|_, c| c.max_snap_m = f64::NAN, "max_snap_m");
        case("start off the road", &|r, _| r.start = far_off, "start");
        case("end off the road", &|r, _| r.end = far_off, "end");
        case("end on an island", &|r, _| r.end = island, "end");
        case("the way to the end too long", &|r, _| (r.end, r.budget_s) = (at(4000.0, 0.0), 100.0), "budget_s");
        for (name, req, cfg, field) in cases {
            match plan(&g, &req, &cfg) {
                Err(e) => assert_eq!(e.field(), field, "{name}: {e}"),
                Ok(p) => panic!("{name}: planned {p:?}"),
            }
        }
        assert!(matches!(
            plan(&g, &PlanRequest { end: island, ..ok.clone() }, &PlannerConfig::default()),
            Err(PlanError::EndUnreachable)
        ));
        // A checkpoint off the road, out of reach or beyond the budget is left out, not
        // an error (`checkpoints_that_do_not_fit_are_left_out_…`).
        for (name, change) in [
            ("off the road", &(|r: &mut PlanRequest| r.checkpoints[0].position = far_off) as &dyn Fn(&mut PlanRequest)),
            ("on an island", &|r| r.checkpoints[0].position = island),
            ("too short for it", &|r| r.budget_s = 100.0),
        ] {
            let mut req = ok.clone();
            change(&mut req);
            let p = plan(&g, &req, &PlannerConfig::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.left_out.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["cp"], "{name}");
        }
        // A candidate off the road or out of reach is left out, not an error.
        let mut extra = PlanRequest { budget_s: 20_000.0, ..ok.clone() };
        extra.candidates.push(candidate("off", 1000.0, 5000.0, 100.0));
        extra.candidates.push(candidate("island", 20500.0, 0.0, 100.0));
        let p = plan(&g, &extra, &PlannerConfig::default()).unwrap();
        assert_eq!(ids(&p, StopKind::Hotspot), ["h"]);
        assert_eq!(p.candidates_considered, 2, "the island is near a road, only the matrix finds it out of reach");
        assert_eq!(p.total_candidate_weight, 201.0);
    }

    /// A 12 × 12 grid of 300 m blocks and 50 fixed pseudo-random hotspots over it.
    fn grid_case() -> (RoadGraph, PlanRequest) {
        let spec = GridSpec {
            south_west: Position::new(107.0, 30.6).unwrap(),
            cols: 12,
            rows: 12,
            spacing_m: 300.0,
            jitter: 0.3,
            seed: 11,
        };
        let g = RoadGraph::grid(&spec, &RoadSpeeds::default());
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut unit = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut random = || Position::new(107.0 + unit() * 0.035, 30.6 + unit() * 0.03).unwrap();
        let post = random();
        let checkpoints = (0..3)
            .map(|i| Mandatory { id: format!("cp-{i}"), name: String::new(), position: random(), dwell_s: 120.0 })
            .collect();
        let candidates = (0..50)
            .map(|i| {
                let position = random();
                Candidate { id: format!("h-{i}"), position, weight: 1.0 + (i * 7 % 10) as f64 }
            })
            .collect();
        let req = PlanRequest {
            start: post,
            end: post,
            budget_s: 3600.0,
            checkpoints,
            candidates,
            hotspot_dwell_s: 180.0,
            start_ms: T0,
        };
        (g, req)
    }

    #[test]
    fn the_budget_is_respected() {
        let (g, req) = grid_case();
        let mut last_visited = 0.0;
        for budget_s in [1800.0, 2700.0, 3600.0, 7200.0, 14_400.0, 28_800.0] {
            let req = PlanRequest { budget_s, ..req.clone() };
            let plan = plan(&g, &req, &PlannerConfig::default()).unwrap();
            let case = format!("budget {budget_s} s");
            assert_consistent(&plan, budget_s, &case);
            assert_eq!(plan.mandatory_visited, 3, "{case}");
            // Little time is left over: no unvisited hotspot could have been added.
            assert!(
                plan.total_s > budget_s - 600.0 || plan.visited_weight == plan.total_candidate_weight,
                "{case}: {plan:?}"
            );
            assert!(plan.visited_weight >= last_visited, "{case}: more time, less weight");
            last_visited = plan.visited_weight;
        }
        assert_eq!(last_visited, req.candidates.iter().map(|c| c.weight).sum::<f64>(), "eight hours visit them all");
    }

    #[test]
    fn plans_are_deterministic() {
        let (g, req) = grid_case();
        let a = plan(&g, &req, &PlannerConfig::default()).unwrap();
        let b = plan(&g.clone(), &req.clone(), &PlannerConfig::default()).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["waypoints"][0]["kind"], "start");
        assert_eq!(json["geometry"][0]["lon"], a.geometry[0].lon());
    }

    #[test]
    fn route_coverage_counts_candidates_within_the_radius() {
        let line = [at(0.0, 0.0), at(1000.0, 0.0), at(1000.0, 1000.0)];
        // (case, candidate position, counted at 150 m)
        let rows: [(&str, (f64, f64), bool); 7] = [
            ("on a vertex", (1000.0, 0.0), true),
            ("on a segment", (500.0, 0.0), true),
            ("beside a segment", (500.0, 140.0), true),
            ("just too far", (500.0, -160.0), false),
            ("beyond an end", (-140.0, 0.0), true),
            ("inside the corner", (900.0, 100.0), true),
            ("far away", (3000.0, 3000.0), false),
        ];
        for (case, (x, y), counted) in rows {
            let c = [candidate(case, x, y, 2.5)];
            assert_eq!(route_coverage(&line, &c, 150.0), if counted { 2.5 } else { 0.0 }, "{case}");
        }
        let all: Vec<Candidate> = rows.iter().map(|(case, (x, y), _)| candidate(case, *x, *y, 1.0)).collect();
        assert_eq!(route_coverage(&line, &all, 150.0), 5.0);
        assert_eq!(route_coverage(&[], &all, 150.0), 0.0);
        assert_eq!(route_coverage(&line[..1], &all, 150.0), 1.0, "a point covers what is near it");
        let invalid = [candidate("nan", 0.0, 0.0, f64::NAN), candidate("negative", 0.0, 0.0, -1.0)];
        assert_eq!(route_coverage(&line, &invalid, 150.0), 0.0);
    }

    /// A problem built straight from coordinates: Manhattan travel at 10 m/s, 20 %
    /// slower eastwards (so the times are asymmetric but obey the triangle inequality).
    fn synthetic(
        points: &[(f64, f64)],
        dwell_s: &[f64],
        weight: &[f64],
        first_hotspot: usize,
        budget_s: f64,
    ) -> Problem {
        let n = points.len();
        let mut time_s = vec![0.0; n * n];
        for (a, pa) in points.iter().enumerate() {
            for (b, pb) in points.iter().enumerate() {
                let dx = pb.0 - pa.0;
                time_s[a * n + b] = (if dx > 0.0 { 1.2 * dx } else { -dx } + (pb.1 - pa.1).abs()) / 10.0;
            }
        }
        Problem { n, time_s, dwell_s: dwell_s.to_vec(), weight: weight.to_vec(), first_hotspot, budget_s }
    }

    /// The best score of any tour, by depth-first enumeration of every sequence that
    /// fits. Times obey the triangle inequality, so a sequence that cannot return in
    /// time is not extended.
    fn brute_force(p: &Problem) -> f64 {
        fn go(p: &Problem, last: usize, time_s: f64, score: f64, used: &mut [bool], best: &mut f64) {
            if (2..p.first_hotspot).all(|c| used[c]) && time_s + p.t(last, 1) <= p.budget_s {
                *best = best.max(score);
            }
            for next in 2..p.n {
                let time_s = time_s + p.t(last, next) + p.dwell_s[next];
                if used[next] || time_s + p.t(next, 1) > p.budget_s {
                    continue;
                }
                used[next] = true;
                go(p, next, time_s, score + p.weight[next], used, best);
                used[next] = false;
            }
        }
        let mut best = f64::NEG_INFINITY;
        go(p, 0, 0.0, 0.0, &mut vec![false; p.n], &mut best);
        best
    }

    #[test]
    fn the_search_finds_the_best_tour_of_small_problems() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut unit = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut optimal, mut feasible) = (0, 0);
        for instance in 0..30 {
            // Start and end at the origin, 2 checkpoints, 7 hotspots in 4 km × 4 km.
            let mut points = vec![(0.0, 0.0), (0.0, 0.0)];
            points.extend((0..9).map(|_| (unit() * 4000.0 - 2000.0, unit() * 4000.0 - 2000.0)));
            let dwell_s: Vec<f64> = (0..points.len()).map(|i| if i < 2 { 0.0 } else { 120.0 }).collect();
            let weight: Vec<f64> =
                (0..points.len()).map(|i| if i < 4 { 0.0 } else { (1.0 + unit() * 9.0).round() }).collect();
            let budget_s = 1800.0 + unit() * 1800.0;
            let p = synthetic(&points, &dwell_s, &weight, 4, budget_s);
            let optimum = brute_force(&p);
            let mandatory = mandatory_tour(&p, &[2, 3]);
            let needed_s = p.duration(&mandatory);
            if needed_s > p.budget_s {
                assert_eq!(optimum, f64::NEG_INFINITY, "instance {instance}: refused at {needed_s} s");
                continue;
            }
            let tour = search(&p, mandatory, &PlannerConfig::default());
            assert!(p.duration(&tour) <= p.budget_s, "instance {instance}");
            // A heuristic: within 10 % of the best everywhere, and mostly the best.
            let score = p.score(&tour);
            assert!(score >= 0.9 * optimum, "instance {instance}: {score} vs {optimum}: {tour:?}");
            feasible += 1;
            optimal += usize::from(score == optimum);
        }
        // 30 of 30 when written (and 198 of 200 over a longer run, none below 92 %).
        assert!(optimal >= feasible - 2, "best tour found in {optimal} of {feasible} problems");
    }

    #[test]
    fn the_mandatory_tour_is_the_shortest_order() {
        // Held–Karp against every permutation, and cheapest insertion beyond its limit
        // no worse than a fixed, poor order.
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut unit = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for m in [1usize, 2, 3, 5, 7] {
            let mut points = vec![(0.0, 0.0), (500.0, 500.0)];
            points.extend((0..m).map(|_| (unit() * 5000.0, unit() * 5000.0)));
            let n = points.len();
            let p = synthetic(&points, &vec![60.0; n], &vec![0.0; n], n, f64::INFINITY);
            let tour = mandatory_tour(&p, &(2..n).collect::<Vec<_>>());
            let mut best = f64::INFINITY;
            let mut order: Vec<usize> = (2..n).collect();
            permutations(&mut order, 0, &mut |o| {
                let mut t = vec![0];
                t.extend_from_slice(o);
                t.push(1);
                best = best.min(p.duration(&t));
            });
            assert!((p.duration(&tour) - best).abs() < 1e-9, "{m} checkpoints: {} vs {best}", p.duration(&tour));
            let mut sorted = tour[1..tour.len() - 1].to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, (2..n).collect::<Vec<_>>());
        }
        let m = 16;
        let mut points = vec![(0.0, 0.0), (0.0, 0.0)];
        points.extend((0..m).map(|i| ((i as f64 * 2.4).cos() * 3000.0, (i as f64 * 2.4).sin() * 3000.0)));
        let p = synthetic(&points, &vec![0.0; m + 2], &vec![0.0; m + 2], m + 2, f64::INFINITY);
        let tour = mandatory_tour(&p, &(2..m + 2).collect::<Vec<_>>());
        assert_eq!(tour.len(), m + 2);
        let naive: Vec<usize> = std::iter::once(0).chain(2..m + 2).chain([1]).collect();
        assert!(p.duration(&tour) < p.duration(&naive), "{} vs {}", p.duration(&tour), p.duration(&naive));
    }

    fn permutations(v: &mut [usize], k: usize, f: &mut impl FnMut(&[usize])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permutations(v, k + 1, f);
            v.swap(k, i);
        }
    }
}
