//! The demo simulator: moves every patrol team's members along their route and every
//! post officer around their post, reporting through the server's real OsmAnd
//! endpoint exactly as Traccar Client would (GET with query parameters, speed in knots).
//!
//! Each team's patrol leader's phone is simulated too: it holds the live feed open with
//! the leader device's key, and when the server pushes a new version of the team's
//! route plan (a re-plan, a diversion to a serious alert, an operator's manual plan)
//! it acknowledges it after a human delay with `ack_route`, and the team's members
//! walk onto the new line from where they are. A diversion is walked once; then the
//! members go back to the track they left.
//!
//! The command centre's side of the demo, incidents opened, dispatched and closed, and
//! watch-list alerts acknowledged, is in [`crate::simulate_incidents`]; the units it
//! sends leave their patrol or post for the incident and come back.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use geo::{Distance, Haversine, Point};
use tokio_tungstenite::tungstenite::Message;

use crate::simulate_incidents::{self, Errand, RaisedAlert};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin token, to register the simulated devices.
    #[arg(long, env = "LIANDONG_TOKEN")]
    pub token: String,
    /// Map directory with routes and posts.
    #[arg(long, default_value = "maps/dazhu")]
    pub maps: PathBuf,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// Seconds between two reports of one device (simulated time).
    #[arg(long, default_value_t = 5.0)]
    pub interval_s: f64,
    /// Operator token for the duty operator's steps (opening, dispatching and closing
    /// incidents, acknowledging alerts); without it, the admin token.
    #[arg(long, env = "LIANDONG_OPERATOR_TOKEN")]
    pub operator_token: Option<String>,
    /// PEM file of the CA that signed the server's certificate, for an `https://` URL
    /// (the team leaders' feeds are then `wss://`).
    #[arg(long, env = "LIANDONG_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

/// Walking pace of a patrol, m/s.
pub(crate) const PATROL_SPEED_MPS: f64 = 1.4;
/// The fastest a team follows a plan: a patrol car on a county road, m/s.
const MAX_PLAN_SPEED_MPS: f64 = 15.0;
/// Spacing of members along the route, metres. A team walks together: a 14-member
/// team spans about 100 m, inside the 150 m corridor of the plan rules, so a new plan
/// or a diversion that starts where one member is does not leave the others "off
/// route" merely for being at the tail of a long file.
const MEMBER_SPACING_M: f64 = 8.0;
/// How far a post officer strays from the post, metres.
const OFFICER_RADIUS_M: f64 = 300.0;
/// A member this close to a new line steps onto it; farther away, they walk to it first.
const SNAP_M: f64 = 5.0;
/// Points of a line this much farther than the nearest one still count as "nearest",
/// so that a line passing the same place twice (out and back on one road) is joined
/// where the walk prefers (its start, or where the member left it), metres.
const JOIN_SLACK_M: f64 = 15.0;
/// A waypoint farther than this from the plan's line is not a stop on it, metres.
const STOP_MAX_OFF_M: f64 = 100.0;
/// Longest plan line the simulator takes (the server accepts 20,000 points).
const MAX_PLAN_POINTS: usize = 50_000;
/// Most waypoints of a plan the simulator reads (the server accepts 500).
const MAX_PLAN_WAYPOINTS: usize = 1_000;
/// The leader takes this long, in simulated seconds, to read and acknowledge a new plan.
const ACK_DELAY_S: Range<f64> = 5.0..20.0;
/// Longest wait between two attempts to open a leader's socket.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m); planar
/// approximations below scale longitude by the cosine of the latitude.
pub(crate) const M_PER_DEG_LAT: f64 = 111_195.0;

/// A polyline with cumulative haversine lengths.
pub(crate) struct Track {
    pub(crate) points: Vec<Point<f64>>,
    cumulative_m: Vec<f64>,
}

impl Track {
    pub(crate) fn new(points: Vec<Point<f64>>) -> Track {
        let mut cumulative_m = vec![0.0];
        for w in points.windows(2) {
            let last = *cumulative_m.last().unwrap_or(&0.0);
            cumulative_m.push(last + Haversine.distance(w[0], w[1]));
        }
        Track { points, cumulative_m }
    }

    pub(crate) fn length_m(&self) -> f64 {
        *self.cumulative_m.last().unwrap_or(&0.0)
    }

    /// Whether the line ends where it starts (within 30 m), so that walking it again
    /// from the start is no jump.
    fn is_closed(&self) -> bool {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) if self.points.len() > 2 => Haversine.distance(*a, *b) < 30.0,
            _ => false,
        }
    }

    /// Position and heading (degrees) at `d` metres along the line, clamped to its ends.
    fn at(&self, d: f64) -> (Point<f64>, f64) {
        if self.points.len() < 2 {
            return (self.points.first().copied().unwrap_or(Point::new(0.0, 0.0)), 0.0);
        }
        let d = d.clamp(0.0, self.length_m());
        let i = self.cumulative_m.partition_point(|&c| c <= d).clamp(1, self.points.len() - 1);
        let (a, b) = (self.points[i - 1], self.points[i]);
        let seg = self.cumulative_m[i] - self.cumulative_m[i - 1];
        let f = if seg > 0.0 { (d - self.cumulative_m[i - 1]) / seg } else { 0.0 };
        let p = Point::new(a.x() + (b.x() - a.x()) * f, a.y() + (b.y() - a.y()) * f);
        let heading = ((b.x() - a.x()) * a.y().to_radians().cos()).atan2(b.y() - a.y()).to_degrees().rem_euclid(360.0);
        (p, heading)
    }

    /// The point of the line nearest `p`: its offset along the line and its distance,
    /// metres. Every segment's nearest point within `slack_m` of the nearest of all is
    /// a candidate, and the one whose offset is closest to `prefer_m` wins. Distances
    /// are planar in a local equirectangular frame around `p`, good to well under a
    /// metre over the few kilometres that matter here.
    pub(crate) fn nearest(&self, p: Point<f64>, prefer_m: f64, slack_m: f64) -> (f64, f64) {
        if self.points.len() < 2 {
            let d = self.points.first().map_or(f64::INFINITY, |q| Haversine.distance(p, *q));
            return (0.0, d);
        }
        let kx = M_PER_DEG_LAT * p.y().to_radians().cos();
        let local = |q: Point<f64>| ((q.x() - p.x()) * kx, (q.y() - p.y()) * M_PER_DEG_LAT);
        let segment = |i: usize| -> (f64, f64) {
            let (ax, ay) = local(self.points[i]);
            let (bx, by) = local(self.points[i + 1]);
            let (dx, dy) = (bx - ax, by - ay);
            let l2 = dx * dx + dy * dy;
            let t = if l2 > 0.0 { (-(ax * dx + ay * dy) / l2).clamp(0.0, 1.0) } else { 0.0 };
            let offset_m = self.cumulative_m[i] + t * (self.cumulative_m[i + 1] - self.cumulative_m[i]);
            (offset_m, (ax + t * dx).hypot(ay + t * dy))
        };
        let segments = 0..self.points.len() - 1;
        let best_m = segments.clone().map(|i| segment(i).1).fold(f64::INFINITY, f64::min);
        segments
            .map(segment)
            .filter(|(_, d)| *d <= best_m + slack_m)
            .min_by(|a, b| (a.0 - prefer_m).abs().total_cmp(&(b.0 - prefer_m).abs()))
            .unwrap_or((0.0, best_m))
    }
}

/// What a walk does at the end of its track.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum End {
    /// A closed loop (a fixed route, a plan from the post and back): round again.
    Wrap,
    /// An open line: walk it back.
    Reverse,
    /// A one-way leg (an approach to a line, a diversion): on to what follows.
    Finish,
}

/// A place on a track where members stay a while (a waypoint's `dwell_s`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Stop {
    offset_m: f64,
    dwell_s: f64,
}

/// A member's progress along one track.
#[derive(Clone)]
pub(crate) struct Walk {
    pub(crate) track: Arc<Track>,
    /// Ordered by offset.
    stops: Arc<[Stop]>,
    end: End,
    pub(crate) speed_mps: f64,
    offset_m: f64,
    /// The first stop not yet reached.
    next_stop: usize,
    dwell_left_s: f64,
}

impl Walk {
    pub(crate) fn new(track: Arc<Track>, stops: Arc<[Stop]>, end: End, speed_mps: f64) -> Walk {
        Walk { track, stops, end, speed_mps, offset_m: 0.0, next_stop: 0, dwell_left_s: 0.0 }
    }

    /// A one-way leg without stops: an approach, a drive to an incident and back.
    pub(crate) fn leg(track: Arc<Track>, speed_mps: f64) -> Walk {
        Walk::new(track, Arc::from([]), End::Finish, speed_mps)
    }

    /// The walk from `offset_m` on: stops before it are behind the member.
    pub(crate) fn starting_at(mut self, offset_m: f64) -> Walk {
        self.offset_m = offset_m.clamp(0.0, self.track.length_m());
        self.next_stop = self.stops.partition_point(|s| s.offset_m < self.offset_m);
        self.dwell_left_s = 0.0;
        self
    }

    /// Position, speed (m/s) and heading (degrees).
    pub(crate) fn position(&self) -> (Point<f64>, f64, f64) {
        let (p, heading) = self.track.at(self.offset_m);
        let moving = self.dwell_left_s <= 0.0 && self.speed_mps > 0.0;
        (p, if moving { self.speed_mps } else { 0.0 }, heading)
    }

    /// The same track walked the other way, from its (former) end.
    fn reversed(&self) -> Walk {
        let len = self.track.length_m();
        let points = self.track.points.iter().rev().copied().collect();
        let stops: Arc<[Stop]> = self
            .stops
            .iter()
            .rev()
            .map(|s| Stop { offset_m: (len - s.offset_m).max(0.0), dwell_s: s.dwell_s })
            .collect();
        // A stop at the turning point was just visited.
        let next_stop = stops.partition_point(|s| s.offset_m <= 1e-6);
        Walk { track: Arc::new(Track::new(points)), stops, next_stop, offset_m: 0.0, dwell_left_s: 0.0, ..*self }
    }

    /// Walks `dt_s` seconds on, pausing at stops. A [`End::Finish`] walk that reaches
    /// its end answers the seconds left over.
    pub(crate) fn advance(&mut self, dt_s: f64) -> Option<f64> {
        let mut left_s = dt_s.max(0.0);
        let len = self.track.length_m();
        // Each round consumes a dwell, a stop or an end; the bound only guards against
        // a degenerate track.
        for _ in 0..10_000 {
            if self.dwell_left_s > 0.0 {
                let d = self.dwell_left_s.min(left_s);
                self.dwell_left_s -= d;
                left_s -= d;
                if self.dwell_left_s > 0.0 {
                    return None;
                }
            }
            let target_m = self.stops.get(self.next_stop).map_or(len, |s| s.offset_m.min(len));
            if self.end != End::Finish && (left_s <= 0.0 || self.speed_mps <= 0.0) {
                return None;
            }
            let reach_m = self.offset_m + self.speed_mps.max(0.0) * left_s;
            if reach_m < target_m {
                self.offset_m = reach_m;
                return None;
            }
            if self.speed_mps > 0.0 {
                left_s = (left_s - (target_m - self.offset_m).max(0.0) / self.speed_mps).max(0.0);
            }
            self.offset_m = target_m;
            if let Some(s) = self.stops.get(self.next_stop) {
                self.dwell_left_s = s.dwell_s.max(0.0);
                self.next_stop += 1;
                continue;
            }
            match self.end {
                End::Finish => return Some(left_s),
                _ if len < 1.0 => return None,
                End::Wrap => {
                    self.offset_m = 0.0;
                    self.next_stop = 0;
                }
                End::Reverse => *self = self.reversed(),
            }
        }
        None
    }
}

/// A patrol member: the walk they are on, and what comes after it.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) walk: Walk,
    /// Where the member goes when `walk`, an approach leg, ends.
    then: Option<Walk>,
    /// The walk a diversion interrupted, taken up again when the diversion ends.
    resume: Option<Walk>,
}

impl Member {
    pub(crate) fn on(walk: Walk) -> Member {
        Member { walk, then: None, resume: None }
    }

    pub(crate) fn position(&self) -> (Point<f64>, f64, f64) {
        self.walk.position()
    }

    pub(crate) fn advance(&mut self, dt_s: f64) {
        let mut left_s = dt_s;
        // An approach, then a diversion, then the approach back and the resumed walk:
        // a few hand-overs in one tick at most.
        for _ in 0..8 {
            let Some(rest_s) = self.walk.advance(left_s) else { return };
            left_s = rest_s;
            match self.then.take().or_else(|| self.resume.take()) {
                Some(next) => self.join(next),
                None => {
                    // Nothing follows: the member waits at the end.
                    self.walk.speed_mps = 0.0;
                    self.walk.end = End::Wrap;
                    return;
                }
            }
        }
    }

    /// Puts the member on `walk` at the point nearest where they are (preferring the
    /// walk's own offset among near-equal points), walking straight there first when
    /// it is more than a step away, so the reported positions never jump.
    fn join(&mut self, walk: Walk) {
        let (here, ..) = self.position();
        let (offset_m, distance_m) = walk.track.nearest(here, walk.offset_m, JOIN_SLACK_M);
        let walk = walk.starting_at(offset_m);
        if distance_m > SNAP_M {
            let (there, _) = walk.track.at(offset_m);
            let speed_mps = walk.speed_mps.max(PATROL_SPEED_MPS);
            let approach = Track::new(vec![here, there]);
            self.walk = Walk::new(Arc::new(approach), Arc::from([]), End::Finish, speed_mps);
            self.then = Some(walk);
        } else {
            self.walk = walk;
            self.then = None;
        }
    }

    /// Takes a new plan. A diversion remembers the walk it interrupts (unless it
    /// replaces another diversion, which already remembers one); any other plan
    /// replaces everything.
    fn take(&mut self, route: &PlanRoute) {
        if route.diversion {
            if self.resume.is_none() {
                self.resume = Some(self.then.take().unwrap_or_else(|| self.walk.clone()));
            }
        } else {
            self.resume = None;
        }
        self.then = None;
        self.join(Walk::new(route.track.clone(), route.stops.clone(), route.end, route.speed_mps));
    }

    /// The walk the member is headed for: the one an approach leads to, else the one
    /// the member is on.
    fn heading_for(&self) -> &Walk {
        self.then.as_ref().unwrap_or(&self.walk)
    }

    /// Where a member away from the patrol at `here` (on an incident) gets back onto
    /// it: the nearest point of the walk it was on or headed for, preferring the
    /// point where it left among near-equal ones.
    pub(crate) fn rejoin_point(&self, here: Point<f64>) -> Point<f64> {
        let walk = self.heading_for();
        let (offset_m, _) = walk.track.nearest(here, walk.offset_m, JOIN_SLACK_M);
        walk.track.at(offset_m).0
    }

    /// Back from an incident: along `approach` (from where the member is to about
    /// [`Member::rejoin_point`]) at `speed_mps`, then onto the walk it left, or the plan
    /// pushed to the team meanwhile, joining at the nearest point.
    pub(crate) fn come_back(&mut self, approach: Arc<Track>, speed_mps: f64) {
        let walk = self.then.take().unwrap_or_else(|| self.walk.clone());
        self.walk = Walk::leg(approach, speed_mps);
        self.then = Some(walk);
    }
}

/// Where the simulated units are: the patrol members' walks, and the units away on an
/// incident, whose patrol or beat is paused meanwhile. One lock for all, never held
/// across an await.
pub(crate) struct Field {
    pub(crate) members: Vec<Member>,
    /// Units on an incident, by device index.
    pub(crate) errands: HashMap<usize, Errand>,
    /// Every device's position at the last tick, by device index.
    pub(crate) positions: Vec<Point<f64>>,
    /// Devices the command centre has sent to an incident, by device index.
    pub(crate) busy: HashSet<usize>,
}

/// A waypoint of a pushed plan: where, and how long to stay.
#[derive(Debug, Clone, PartialEq)]
struct PlanWaypoint {
    lon: f64,
    lat: f64,
    dwell_s: f64,
}

/// A version of a team's route plan as the leader's phone reads it, from a `route`
/// message on the live feed or from `GET /api/v1/teams/{team}/plans`.
#[derive(Debug, Clone, PartialEq)]
struct PlanPush {
    team_id: String,
    version: i64,
    /// `plan`, `diversion` or `manual`.
    kind: String,
    /// `pending`, `acknowledged` or `superseded`.
    status: String,
    coordinates: Vec<[f64; 2]>,
    waypoints: Vec<PlanWaypoint>,
    /// The planner's moving time along the line, seconds, when it says.
    travel_s: Option<f64>,
}

/// The new plan in a live-feed message: only a `route` message whose event is a `push`.
fn parse_route_message(text: &str) -> Option<PlanPush> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["type"] != "route" || v["data"]["event"]["action"] != "push" {
        return None;
    }
    parse_plan_row(&v["data"]["plan"])
}

/// A plan row as the API and the feed give it: the stored row with its `plan` body.
fn parse_plan_row(row: &serde_json::Value) -> Option<PlanPush> {
    let body = &row["plan"];
    let line = body["geometry"]["coordinates"].as_array()?;
    if line.len() < 2 || line.len() > MAX_PLAN_POINTS {
        return None;
    }
    let valid = |lon: f64, lat: f64| (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat);
    let coordinates: Vec<[f64; 2]> = line
        .iter()
        .filter_map(|c| Some([c[0].as_f64()?, c[1].as_f64()?]))
        .filter(|[lon, lat]| valid(*lon, *lat))
        .collect();
    if coordinates.len() < 2 {
        return None;
    }
    let waypoints = body["waypoints"]
        .as_array()
        .map(|w| {
            w.iter()
                .take(MAX_PLAN_WAYPOINTS)
                .filter_map(|w| {
                    let (lon, lat) = (w["lon"].as_f64()?, w["lat"].as_f64()?);
                    let dwell_s = w["dwell_s"].as_f64().filter(|d| d.is_finite() && *d >= 0.0).unwrap_or(0.0);
                    valid(lon, lat).then_some(PlanWaypoint { lon, lat, dwell_s })
                })
                .collect()
        })
        .unwrap_or_default();
    let kind = row["kind"].as_str()?.to_owned();
    let figures = &body["figures"];
    let travel_s = if kind == "diversion" {
        match (figures["travel_there_s"].as_f64(), figures["travel_back_s"].as_f64()) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        }
    } else {
        figures["travel_s"].as_f64()
    };
    Some(PlanPush {
        team_id: row["team_id"].as_str()?.to_owned(),
        version: row["version"].as_i64()?,
        kind,
        status: row["status"].as_str().unwrap_or("pending").to_owned(),
        coordinates,
        waypoints,
        travel_s: travel_s.filter(|t| t.is_finite() && *t > 0.0),
    })
}

/// A plan made walkable: its line, its stops, how it ends and the pace.
struct PlanRoute {
    track: Arc<Track>,
    stops: Arc<[Stop]>,
    end: End,
    speed_mps: f64,
    diversion: bool,
}

impl PlanRoute {
    fn of(push: &PlanPush) -> PlanRoute {
        let track = Track::new(push.coordinates.iter().map(|&[lon, lat]| Point::new(lon, lat)).collect());
        // Waypoints in plan order, each looked for from the previous one on, so a line
        // that passes a place twice has its stop where the plan means it.
        let mut stops = Vec::new();
        let mut from_m = 0.0;
        for w in &push.waypoints {
            let (offset_m, distance_m) = track.nearest(Point::new(w.lon, w.lat), from_m, JOIN_SLACK_M);
            if distance_m <= STOP_MAX_OFF_M {
                from_m = offset_m;
                if w.dwell_s > 0.0 {
                    stops.push(Stop { offset_m, dwell_s: w.dwell_s });
                }
            }
        }
        stops.sort_by(|a, b| a.offset_m.total_cmp(&b.offset_m));
        let diversion = push.kind == "diversion";
        let end = if diversion {
            End::Finish
        } else if track.is_closed() {
            End::Wrap
        } else {
            End::Reverse
        };
        // The plan's own pace (the planner's times are a patrol car's), so that its
        // planned arrivals hold; walking pace when it gives none.
        let speed_mps = push
            .travel_s
            .map(|t| track.length_m() / t)
            .filter(|s| s.is_finite())
            .unwrap_or(PATROL_SPEED_MPS)
            .clamp(PATROL_SPEED_MPS, MAX_PLAN_SPEED_MPS);
        PlanRoute { track: Arc::new(track), stops: stops.into(), end, speed_mps, diversion }
    }
}

pub(crate) enum Motion {
    /// A patrol member: an index into the shared members.
    Patrol(usize),
    Around {
        centre: Point<f64>,
        phase: f64,
    },
}

pub(crate) struct SimDevice {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) motion: Motion,
}

/// Position, speed (m/s) and heading of a post officer at simulated second `t`: a slow
/// circle around the post (one lap an hour), the radius varying.
pub(crate) fn around(centre: Point<f64>, phase: f64, t: f64) -> (Point<f64>, f64, f64) {
    let w = std::f64::consts::TAU / 3600.0;
    let a = phase + t * w;
    let r = OFFICER_RADIUS_M * (0.5 + 0.5 * (a * 3.0).sin().abs());
    let m_per_deg_lon = M_PER_DEG_LAT * centre.y().to_radians().cos();
    let p = Point::new(centre.x() + r * a.cos() / m_per_deg_lon, centre.y() + r * a.sin() / M_PER_DEG_LAT);
    (p, r * w, (a.to_degrees() + 90.0).rem_euclid(360.0))
}

/// A patrol team as its leader's phone knows it.
#[derive(Clone)]
struct Team {
    id: String,
    leader_key: String,
    /// The team's members in the shared members.
    members: Range<usize>,
    /// Seeds the leader's reaction times.
    seed: u64,
}

fn run_key() -> String {
    format!("{:x}{:x}", run_seed(), std::process::id())
}

/// The clock's nanoseconds: a seed that differs from run to run.
fn run_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

/// splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): one step.
pub(crate) fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How long (real time) the leader takes to acknowledge version `version`.
fn ack_delay(seed: u64, version: i64, speedup: f64) -> Duration {
    let u =
        (splitmix64(seed ^ (version as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)) >> 11) as f64 / (1u64 << 53) as f64;
    let simulated_s = ACK_DELAY_S.start + u * (ACK_DELAY_S.end - ACK_DELAY_S.start);
    Duration::from_secs_f64(simulated_s / speedup.max(0.01))
}

async fn wait_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("server at {url} did not become healthy within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let map = liandong_server::maps::load_dir(&args.maps)?;
    if args.url.starts_with("https://") {
        // Fails early, with the reason, when no CA is given or it does not load.
        crate::tls::client_config(args.ca_cert.as_deref())?;
    }
    let client =
        crate::tls::http_client(reqwest::Client::builder().timeout(Duration::from_secs(30)), args.ca_cert.as_deref())?;
    wait_ready(&client, &args.url).await?;
    let suffix = run_key();
    let mut devices = Vec::new();
    let mut members = Vec::new();
    let mut teams = Vec::new();
    let mut registrations = Vec::new();
    for (n, route) in map.routes.iter().enumerate() {
        let team = route.properties.get("team_id").and_then(|v| v.as_str()).unwrap_or(&route.id).to_owned();
        let count = route.properties.get("members").and_then(|v| v.as_u64()).unwrap_or(5).clamp(1, 50);
        let track = Arc::new(Track::new(route.line.points().collect()));
        let end = if track.is_closed() { End::Wrap } else { End::Reverse };
        let first = members.len();
        for m in 0..count {
            let id = format!("{team}-m{:02}", m + 1);
            // The first member carries the leader's phone, which takes the team's plans.
            let kind = if m == 0 { "patrol_leader" } else { "patrol_member" };
            registrations.push(serde_json::json!({"device_id": id, "name": format!("{} {}号", route.name, m + 1), "kind": kind, "unit_id": team, "key": format!("sim-{suffix}-{id}")}));
            let walk = Walk::new(track.clone(), Arc::from([]), end, PATROL_SPEED_MPS)
                .starting_at((m as f64 * MEMBER_SPACING_M).rem_euclid(track.length_m().max(1.0)));
            devices.push(SimDevice { key: format!("sim-{suffix}-{id}"), id, motion: Motion::Patrol(members.len()) });
            members.push(Member::on(walk));
        }
        teams.push(Team {
            leader_key: format!("sim-{suffix}-{team}-m01"),
            id: team,
            members: first..members.len(),
            seed: splitmix64(n as u64 + 1),
        });
    }
    for (i, post) in map.posts.iter().enumerate() {
        let id = format!("{}-officer", post.id);
        registrations.push(serde_json::json!({"device_id": id, "name": format!("{}民警", post.name), "kind": "post_officer", "unit_id": post.id, "key": format!("sim-{suffix}-{id}")}));
        devices.push(SimDevice {
            key: format!("sim-{suffix}-{id}"),
            id,
            motion: Motion::Around { centre: post.point, phase: i as f64 },
        });
    }
    for body in &registrations {
        let r = client
            .post(format!("{}/api/v1/devices", args.url))
            .bearer_auth(&args.token)
            .json(body)
            .send()
            .await
            .context("registering a simulated device")?;
        if !r.status().is_success() {
            anyhow::bail!(
                "registering {} failed: {} {}",
                body["device_id"],
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
    }
    tracing::info!(
        devices = devices.len(),
        teams = map.routes.len(),
        posts = map.posts.len(),
        "simulator registered its devices"
    );

    // Every background task lives in this set: when the simulator stops (the demo
    // aborts it), dropping the set stops them all.
    let mut background = tokio::task::JoinSet::new();
    let positions = devices
        .iter()
        .map(|d| match &d.motion {
            Motion::Patrol(i) => members[*i].position().0,
            Motion::Around { centre, phase } => around(*centre, *phase, 0.0).0,
        })
        .collect();
    let field = Arc::new(Mutex::new(Field { members, errands: HashMap::new(), positions, busy: HashSet::new() }));
    for team in teams {
        background.spawn(lead_team(client.clone(), args.clone(), team, field.clone()));
    }

    let (alerts_tx, alerts_rx) = tokio::sync::mpsc::channel(64);
    let checkpoints = setup_checkpoints(&client, &args, &map, &suffix).await?;
    if !checkpoints.is_empty() {
        background.spawn(push_plate_reads(client.clone(), args.clone(), checkpoints, alerts_tx));
    }

    let places: Vec<(f64, f64)> = map.posts.iter().map(|p| (p.point.x(), p.point.y())).collect();
    if !places.is_empty() {
        background.spawn(file_grid_reports(client.clone(), args.clone(), places));
    }

    let devices = Arc::new(devices);
    let tick = Duration::from_secs_f64((args.interval_s / args.speedup.max(0.01)).max(0.05));
    // The road graph the units drive on to incidents; a few hundred milliseconds to
    // build for a county, off the runtime's threads.
    let roads = {
        let roads = map.roads.clone();
        let speeds = liandong_core::road::RoadSpeeds::default();
        tokio::task::spawn_blocking(move || liandong_core::road::RoadGraph::from_roads(&roads, &speeds))
            .await
            .ok()
            .filter(|g| g.edge_count() > 0)
            .map(Arc::new)
    };
    let operator = args.operator_token.clone().filter(|t| !t.is_empty());
    let desk = simulate_incidents::Desk {
        client: client.clone(),
        url: args.url.clone(),
        operator: operator.unwrap_or_else(|| args.token.clone()),
        speedup: args.speedup,
        tick,
        field: field.clone(),
        devices: devices.clone(),
        roads,
        places: simulate_incidents::Places::of(&map),
        reviewing: tokio::sync::Mutex::new(()),
    };
    background.spawn(simulate_incidents::run_desk(Arc::new(desk), alerts_rx, splitmix64(run_seed())));

    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut reports = tokio::task::JoinSet::new();
    let mut last_log = Instant::now();
    let mut last_t = 0.0;
    loop {
        interval.tick().await;
        while reports.try_join_next().is_some() {}
        let t = started.elapsed().as_secs_f64() * args.speedup;
        let now_s =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        // Units move on by the simulated time since the last tick (ticks may be
        // skipped when the runtime is busy); the lock is never held across an await.
        let fixes: Vec<(Point<f64>, f64, f64)> = {
            let mut field = field.lock().unwrap_or_else(|e| e.into_inner());
            let Field { members, errands, positions, .. } = &mut *field;
            let mut fixes = Vec::with_capacity(devices.len());
            for (i, d) in devices.iter().enumerate() {
                let away = errands.contains_key(&i);
                let beat = match &d.motion {
                    Motion::Patrol(k) => {
                        // A member on an incident leaves the patrol where it was.
                        if !away {
                            members[*k].advance(t - last_t);
                        }
                        members[*k].position()
                    }
                    Motion::Around { centre, phase } => around(*centre, *phase, t),
                };
                let fix = match errands.get_mut(&i).map(|e| simulate_incidents::advance_errand(e, t - last_t, beat.0)) {
                    Some(Some(fix)) => fix,
                    Some(None) => {
                        errands.remove(&i);
                        beat
                    }
                    None => beat,
                };
                positions[i] = fix.0;
                fixes.push(fix);
            }
            fixes
        };
        last_t = t;
        for (i, (p, speed_mps, heading)) in fixes.into_iter().enumerate() {
            let permit = limit.clone().acquire_owned().await?;
            let (devices, client, url, sent, failed) =
                (devices.clone(), client.clone(), args.url.clone(), sent.clone(), failed.clone());
            reports.spawn(async move {
                let d = &devices[i];
                let url = format!(
                    "{url}/osmand?id={}&timestamp={now_s}&lat={:.6}&lon={:.6}&speed={:.1}&bearing={:.0}&altitude=350&accuracy=8&batt=80&key={}",
                    d.id,
                    p.y(),
                    p.x(),
                    speed_mps / 0.514_444,
                    heading,
                    d.key
                );
                match client.get(url).send().await {
                    Ok(r) if r.status().is_success() => sent.fetch_add(1, Relaxed),
                    Ok(r) => {
                        tracing::warn!(device = %d.id, status = %r.status(), "report refused");
                        failed.fetch_add(1, Relaxed)
                    }
                    Err(e) => {
                        tracing::warn!(device = %d.id, error = %e, "report not delivered");
                        failed.fetch_add(1, Relaxed)
                    }
                };
                drop(permit);
            });
        }
        if last_log.elapsed() > Duration::from_secs(60) {
            tracing::info!(acknowledged = sent.load(Relaxed), failed = failed.load(Relaxed), "simulator progress");
            last_log = Instant::now();
        }
    }
}

/// What a leader's phone has done with the team's plans, across reconnections.
#[derive(Default)]
struct Leading {
    /// The version the members walk (0: the fixed route).
    taken: i64,
    /// A plan read but not yet acted on, and when the leader gets to it.
    due: Option<(tokio::time::Instant, PlanPush)>,
    /// Ids of `ack_route` messages.
    next_id: u64,
}

impl Leading {
    /// Whether `push` asks anything of the leader: a newer version to take, or the
    /// current one still pending (the socket dropped before its acknowledgement).
    fn wants(&self, push: &PlanPush, team: &str) -> bool {
        push.team_id == team
            && push.status != "superseded"
            && (push.version > self.taken || (push.version == self.taken && push.status == "pending"))
            && self.due.as_ref().is_none_or(|(_, d)| push.version > d.version)
    }
}

/// The patrol leader's phone of one team: keeps its live-feed socket open,
/// reconnecting with backoff, and acts on every new plan for the team. Never returns.
async fn lead_team(client: reqwest::Client, args: Args, team: Team, members: Arc<Mutex<Field>>) {
    let mut leading = Leading::default();
    let mut backoff = Duration::from_secs(1);
    loop {
        let opened = Instant::now();
        match lead_session(&client, &args, &team, &members, &mut leading).await {
            Ok(()) => tracing::info!(team = %team.id, "leader's live feed closed; reconnecting"),
            Err(e) => {
                tracing::warn!(team = %team.id, error = %format!("{e:#}"), "leader's live feed failed; reconnecting")
            }
        }
        if opened.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        // Some jitter, so that 17 phones do not come back in step after a restart.
        let jitter_ms = splitmix64(team.seed ^ opened.elapsed().as_nanos() as u64) % 1000;
        tokio::time::sleep(backoff + Duration::from_millis(jitter_ms)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection of a leader's phone: catch up with the team's newest plan over
/// HTTP (a push may have come while the socket was down), then follow the feed.
async fn lead_session(
    client: &reqwest::Client,
    args: &Args,
    team: &Team,
    members: &Mutex<Field>,
    leading: &mut Leading,
) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&args.url).context("the server's URL")?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).map_err(|()| anyhow::anyhow!("cannot make a websocket URL of {}", args.url))?;
    url.set_path("/api/v1/live");
    // Route messages reach a leader whatever the kinds; positions are not needed here.
    url.query_pairs_mut().clear().append_pair("token", &team.leader_key).append_pair("kinds", "routes");
    let socket =
        crate::tls::connect_ws(url.as_str(), args.ca_cert.as_deref()).await.context("connecting to the live feed")?;
    let (mut tx, mut rx) = socket.split();
    catch_up(client, args, team, leading).await?;
    loop {
        let due_at = leading.due.as_ref().map(|(at, _)| *at);
        tokio::select! {
            msg = rx.next() => match msg {
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => {
                    if let Some(push) = parse_route_message(&text) {
                        if leading.wants(&push, &team.id) {
                            let at = tokio::time::Instant::now() + ack_delay(team.seed, push.version, args.speedup);
                            leading.due = Some((at, push));
                        }
                    } else {
                        on_other_message(&text, team, client, args, leading).await?;
                    }
                }
                // Pings are answered by the library.
                Some(Ok(_)) => {}
            },
            () = sleep_until(due_at) => {
                let Some((_, push)) = leading.due.take() else { continue };
                if push.status == "pending" {
                    leading.next_id += 1;
                    let ack = serde_json::json!({"type": "ack_route", "id": leading.next_id, "team_id": team.id, "version": push.version});
                    tx.send(Message::Text(ack.to_string().into())).await.context("acknowledging a plan")?;
                }
                if push.version > leading.taken {
                    take_plan(team, members, &push);
                    leading.taken = push.version;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Feed messages other than a plan push: the server's answers to acknowledgements,
/// and a resync (the phone fell behind, and may have missed a push).
async fn on_other_message(
    text: &str,
    team: &Team,
    client: &reqwest::Client,
    args: &Args,
    leading: &mut Leading,
) -> anyhow::Result<()> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else { return Ok(()) };
    match v["type"].as_str() {
        Some("ack") => tracing::debug!(team = %team.id, version = %v["version"], "plan acknowledged"),
        Some("error") => {
            tracing::warn!(team = %team.id, field = %v["field"], reason = %v["reason"], "the server refused the leader's message")
        }
        Some("resync") => catch_up(client, args, team, leading).await?,
        _ => {}
    }
    Ok(())
}

/// Reads the team's newest plan version and schedules it if it asks anything of the
/// leader: a pending one after the human delay, an acknowledged one (from an earlier
/// run of the phone) at once.
async fn catch_up(client: &reqwest::Client, args: &Args, team: &Team, leading: &mut Leading) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&args.url).context("the server's URL")?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{} cannot be a base URL", args.url))?
        .extend(["api", "v1", "teams", &team.id, "plans"]);
    let r = client.get(url).bearer_auth(&team.leader_key).send().await.context("reading the team's plans")?;
    anyhow::ensure!(r.status().is_success(), "reading the team's plans: {}", r.status());
    let body: serde_json::Value = r.json().await.context("reading the team's plans")?;
    let Some(push) = body["plans"].get(0).and_then(parse_plan_row) else { return Ok(()) };
    if leading.wants(&push, &team.id) {
        let delay =
            if push.status == "pending" { ack_delay(team.seed, push.version, args.speedup) } else { Duration::ZERO };
        leading.due = Some((tokio::time::Instant::now() + delay, push));
    }
    Ok(())
}

/// Moves the team's members onto the plan.
fn take_plan(team: &Team, field: &Mutex<Field>, push: &PlanPush) {
    let route = PlanRoute::of(push);
    {
        let mut field = field.lock().unwrap_or_else(|e| e.into_inner());
        // A member away on an incident takes the plan too: it walks onto the plan
        // when it comes back.
        for m in field.members.get_mut(team.members.clone()).into_iter().flatten() {
            m.take(&route);
        }
    }
    tracing::info!(
        team = %team.id,
        version = push.version,
        kind = %push.kind,
        length_m = route.track.length_m().round(),
        speed_mps = (route.speed_mps * 10.0).round() / 10.0,
        stops = route.stops.len(),
        "team takes a new plan"
    );
}

/// Plates the demo puts on the watch list (illustrative), with the reason shown.
const DEMO_WATCH: [(&str, &str); 3] = [
    ("川S·A1234", "被盗车辆 stolen vehicle"),
    ("川S·B5678", "涉案车辆 vehicle in a case"),
    ("川J·C9012", "套牌嫌疑 cloned plate"),
];

/// Gives the map's checkpoint cameras push keys and puts the demo plates on the watch
/// list, so that the camera side of the demo is alive too.
async fn setup_checkpoints(
    client: &reqwest::Client,
    args: &Args,
    map: &liandong_core::CountyMap,
    suffix: &str,
) -> anyhow::Result<Vec<Checkpoint>> {
    let mut out = Vec::new();
    for cam in map.cameras.iter().filter(|c| c.kind.as_deref() == Some("checkpoint")).take(24) {
        let key = format!("sim-{suffix}-{}", cam.id);
        let body = serde_json::json!({"camera_id": cam.id, "name": cam.name, "kind": "checkpoint",
            "lon": cam.point.x(), "lat": cam.point.y(), "key": key});
        let r = client.post(format!("{}/api/v1/cameras", args.url)).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "registering camera {}: {}", cam.id, r.status());
        out.push(Checkpoint { id: cam.id.clone(), key, name: cam.name.clone() });
    }
    for (i, (plate, reason)) in DEMO_WATCH.iter().enumerate() {
        let body = serde_json::json!({"watch_id": format!("demo-{}", i + 1), "kind": "plate", "value": plate,
            "reason": reason, "priority": 1, "roles": ["operator", "patrol_leader"]});
        let r =
            client.post(format!("{}/api/v1/watchlist", args.url)).bearer_auth(&args.token).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "adding watch-list entry {plate}: {}", r.status());
    }
    tracing::info!(cameras = out.len(), watch_list = DEMO_WATCH.len(), "simulator set up checkpoint cameras");
    Ok(out)
}

/// A checkpoint camera the simulator pushes plate reads for.
struct Checkpoint {
    id: String,
    /// Its push key.
    key: String,
    name: String,
}

/// Every few (simulated) seconds a checkpoint camera reads a plate and pushes it as a
/// Hikvision ISAPI ANPR alarm; about one read in eight is a watch-listed plate. The
/// alert a push raised (its answer's `alert_seq`) goes to the duty operator, `alerts`;
/// when the operator lags, it is dropped rather than queued without bound.
async fn push_plate_reads(
    client: reqwest::Client,
    args: Args,
    cameras: Vec<Checkpoint>,
    alerts: tokio::sync::mpsc::Sender<RaisedAlert>,
) {
    let mut state =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let mut rand = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64((4.0 / args.speedup.max(0.01)).max(0.05)));
    loop {
        tick.tick().await;
        let Checkpoint { id: camera, key, name } = &cameras[(rand() % cameras.len() as u64) as usize];
        let watched = rand() % 8 == 0;
        let plate = if watched {
            DEMO_WATCH[(rand() % DEMO_WATCH.len() as u64) as usize].0.replace('·', "")
        } else {
            format!("川S{}{:04}", (b'A' + (rand() % 26) as u8) as char, rand() % 10_000)
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n<channelID>1</channelID>\n<dateTime>{}</dateTime>\n<activePostCount>1</activePostCount>\n<eventType>ANPR</eventType>\n<eventState>active</eventState>\n<ANPR>\n<licensePlate>{plate}</licensePlate>\n<direction>forward</direction>\n<confidenceLevel>{}</confidenceLevel>\n<plateColor>blue</plateColor>\n<vehicleType>vehicle</vehicleType>\n</ANPR>\n</EventNotificationAlert>",
            rfc3339(now),
            85 + rand() % 15
        );
        let url = format!("{}/isapi/events?camera={camera}&key={key}", args.url);
        match client.post(url).header("content-type", "application/xml").body(xml).send().await {
            Ok(r) if r.status().is_success() => {
                // A repeated read within the server's dedup window raises no alert.
                let answer: serde_json::Value = r.json().await.unwrap_or_default();
                if let (true, Some(seq)) = (watched, answer["alert_seq"].as_i64()) {
                    let alert = RaisedAlert { seq, plate, camera: name.clone() };
                    if alerts.try_send(alert).is_err() {
                        tracing::debug!(alert_seq = seq, "the operator is busy; an alert goes unread");
                    }
                }
            }
            Ok(r) => tracing::warn!(camera = %camera, status = %r.status(), "camera push refused"),
            Err(e) => tracing::warn!(camera = %camera, error = %e, "camera push not delivered"),
        }
    }
}

/// What grid members report in the demo (illustrative).
const DEMO_REPORTS: [(&str, &str); 6] = [
    ("dispute", "两户村民因宅基地边界发生争执，请求调解"),
    ("hazard", "村道边坡有落石，需设置警示"),
    ("suspicious", "陌生车辆连续两晚停在村小学附近"),
    ("traffic", "集镇路口三轮车占道，造成拥堵"),
    ("fire", "山林边缘有人焚烧秸秆，火势有扩大迹象"),
    ("other", "独居老人家中无人应门，请民警上门查看"),
];

/// About once a minute (simulated) a grid member files a report a few hundred metres
/// from a post, so that the review queue and the mediation centre have work in the demo.
async fn file_grid_reports(client: reqwest::Client, args: Args, places: Vec<(f64, f64)>) {
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs_f64((60.0 / args.speedup.max(0.01)).max(0.5)));
    tick.tick().await;
    loop {
        tick.tick().await;
        n += 1;
        let (lon, lat) = places[(n as usize * 7) % places.len()];
        let (category, text) = DEMO_REPORTS[(n as usize) % DEMO_REPORTS.len()];
        // A few hundred metres off the post, in a direction that turns with each report.
        let angle = n as f64 * 2.4;
        let body = serde_json::json!({"category": category, "text": text,
            "lon": lon + 0.004 * angle.cos(), "lat": lat + 0.003 * angle.sin()});
        match client.post(format!("{}/api/v1/reports", args.url)).bearer_auth(&args.token).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "grid report refused"),
            Err(e) => tracing::warn!(error = %e, "grid report not delivered"),
        }
    }
}

/// RFC 3339 in UTC for a Unix time in seconds (civil-from-days, Howard Hinnant's
/// algorithm), so the simulator needs no date library.
pub(crate) fn rfc3339(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(lon: f64, lat: f64) -> Point<f64> {
        Point::new(lon, lat)
    }

    fn track(points: &[[f64; 2]]) -> Arc<Track> {
        Arc::new(Track::new(points.iter().map(|&[lon, lat]| pt(lon, lat)).collect()))
    }

    fn walk(points: &[[f64; 2]], end: End, speed_mps: f64) -> Walk {
        Walk::new(track(points), Arc::from([]), end, speed_mps)
    }

    fn push(kind: &str, coordinates: Vec<[f64; 2]>) -> PlanPush {
        PlanPush {
            team_id: "team-1".into(),
            version: 2,
            kind: kind.into(),
            status: "pending".into(),
            coordinates,
            waypoints: vec![],
            travel_s: None,
        }
    }

    /// About 1 km east and 1.1 km north of the start, at 30° N.
    const EAST: f64 = 0.010_38;
    const NORTH: f64 = 0.01;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_750_000), "2026-11-27T03:26:40Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn nearest_point_on_a_track() {
        // An L: 1 km east, then 1.1 km north.
        let t = track(&[[107.0, 30.0], [107.0 + EAST, 30.0], [107.0 + EAST, 30.0 + NORTH]]);
        let east_m = Haversine.distance(pt(107.0, 30.0), pt(107.0 + EAST, 30.0));
        let rows = [
            // (point, expected offset m, expected distance m)
            ("the start", pt(107.0, 30.0), 0.0, 0.0),
            ("before the start", pt(107.0 - EAST / 10.0, 30.0), 0.0, east_m / 10.0),
            ("halfway east, 111 m north", pt(107.0 + EAST / 2.0, 30.001), east_m / 2.0, 111.2),
            ("the corner, from outside", pt(107.0 + EAST * 1.1, 30.0 - 0.0009), east_m, 140.9),
            ("halfway north, on the line", pt(107.0 + EAST, 30.0 + NORTH / 2.0), east_m + 555.98, 0.0),
            ("past the end", pt(107.0 + EAST, 30.0 + NORTH * 1.5), t.length_m(), 555.98),
        ];
        for (name, p, offset_m, distance_m) in rows {
            let (o, d) = t.nearest(p, 0.0, 0.0);
            assert!((o - offset_m).abs() < 2.0, "{name}: offset {o} m, expected {offset_m}");
            assert!((d - distance_m).abs() < 2.0, "{name}: distance {d} m, expected {distance_m}");
        }
    }

    #[test]
    fn nearest_on_an_out_and_back_line_prefers_the_given_offset() {
        // Out 1 km east and back on the same road: every point is on it twice.
        let t = track(&[[107.0, 30.0], [107.0 + EAST, 30.0], [107.0, 30.0]]);
        let half_m = t.length_m() / 2.0;
        let p = pt(107.0 + EAST / 4.0, 30.0);
        let (out_m, d) = t.nearest(p, 0.0, JOIN_SLACK_M);
        assert!((out_m - half_m / 4.0).abs() < 2.0 && d < 1.0, "outward leg: {out_m} m, {d} m off");
        let (back_m, d) = t.nearest(p, t.length_m(), JOIN_SLACK_M);
        assert!((back_m - half_m * 7.0 / 4.0).abs() < 2.0 && d < 1.0, "return leg: {back_m} m, {d} m off");
    }

    #[test]
    fn a_walk_pauses_at_its_stops_and_goes_round_or_back_at_its_end() {
        let line = [[107.0, 30.0], [107.0 + EAST, 30.0]];
        let len_m = track(&line).length_m();
        // A stop halfway, 60 s.
        let mut w = walk(&line, End::Reverse, 10.0);
        w.stops = Arc::from([Stop { offset_m: len_m / 2.0, dwell_s: 60.0 }]);
        w.advance(len_m / 20.0 + 10.0);
        assert!((w.offset_m - len_m / 2.0).abs() < 1e-6);
        assert_eq!(w.position().1, 0.0, "no speed while dwelling");
        w.advance(49.0);
        assert!((w.offset_m - len_m / 2.0).abs() < 1e-6, "still dwelling after 59 s");
        w.advance(11.0);
        assert!((w.offset_m - len_m / 2.0 - 100.0).abs() < 1e-6, "10 s on at 10 m/s");
        // An open line is walked back from its end: 10 s past the end is 100 m before it.
        w.advance(len_m / 20.0 - 10.0 + 10.0);
        let (p, speed_mps, heading) = w.position();
        assert!((Haversine.distance(p, pt(107.0 + EAST, 30.0)) - 100.0).abs() < 1.0, "{p:?}");
        assert_eq!(speed_mps, 10.0);
        assert!((heading - 270.0).abs() < 1.0, "walking west: {heading}");
        // A loop starts again.
        let square = [[107.0, 30.0], [107.0 + EAST, 30.0], [107.0 + EAST, 30.0 + NORTH], [107.0, 30.0]];
        let mut w = walk(&square, End::Wrap, 10.0);
        let loop_m = w.track.length_m();
        w.advance(loop_m / 10.0 + 5.0);
        assert!((w.offset_m - 50.0).abs() < 1e-6, "{}", w.offset_m);
        // A one-way leg reports the time left over at its end.
        let mut w = walk(&line, End::Finish, 10.0);
        assert_eq!(w.advance(10.0), None);
        let left_s = w.advance(len_m / 10.0).expect("the leg ends");
        assert!((left_s - 10.0).abs() < 1e-6);
    }

    #[test]
    fn a_member_joins_a_new_line_without_a_jump() {
        let route = [[107.0, 30.0], [107.0, 30.0 + NORTH], [107.0 + EAST, 30.0 + NORTH], [107.0, 30.0]];
        // Rows: the new line's offset from the route, metres east.
        for east_m in [0.0, 3.0, 40.0, 400.0] {
            let mut m = Member::on(walk(&route, End::Wrap, PATROL_SPEED_MPS).starting_at(300.0));
            m.advance(20.0);
            let (before, ..) = m.position();
            let dx = east_m / (M_PER_DEG_LAT * 30f64.to_radians().cos());
            let line = vec![[107.0 + dx, 29.99], [107.0 + dx, 30.02]];
            m.take(&PlanRoute::of(&push("manual", line.clone())));
            let (after, ..) = m.position();
            let jump_m = Haversine.distance(before, after);
            assert!(jump_m <= SNAP_M + 0.5, "{east_m} m away: jumped {jump_m} m");
            // Within the time to walk there, the member is on the new line, going north.
            m.advance(east_m / PATROL_SPEED_MPS + 30.0);
            let (p, speed_mps, heading) = m.position();
            let on_line = track(&line).nearest(p, 0.0, 0.0).1;
            assert!(on_line < 0.5, "{east_m} m away: {on_line} m off the new line");
            assert!(p.y() > before.y(), "{east_m} m away: walks on, not back");
            assert!(speed_mps > 0.0 && !(1.0..=359.0).contains(&heading), "{east_m} m away: heading {heading}");
        }
    }

    #[test]
    fn a_diversion_is_walked_once_then_the_member_resumes_the_track_it_left() {
        let route = [[107.0, 30.0], [107.0, 30.0 + NORTH], [107.0 + EAST, 30.0 + NORTH], [107.0, 30.0]];
        let mut m = Member::on(walk(&route, End::Wrap, PATROL_SPEED_MPS).starting_at(500.0));
        let fixed = m.walk.track.clone();
        let (left_at, ..) = m.position();
        // To a place 500 m east and back to where the member left the route, 60 s there.
        let place = [left_at.x() + EAST / 2.0, left_at.y()];
        let mut d = push("diversion", vec![[left_at.x(), left_at.y()], place, [left_at.x(), left_at.y()]]);
        d.waypoints = vec![PlanWaypoint { lon: place[0], lat: place[1], dwell_s: 60.0 }];
        d.travel_s = Some(100.0);
        let diversion = PlanRoute::of(&d);
        assert_eq!(diversion.end, End::Finish);
        assert_eq!(diversion.stops.len(), 1);
        assert!((diversion.speed_mps - diversion.track.length_m() / 100.0).abs() < 1e-9);
        m.take(&diversion);
        assert!(Haversine.distance(m.position().0, left_at) < 1.0);
        // Out (50 s at the plan's pace), the dwell, and nearly back.
        m.advance(50.0);
        assert!(Haversine.distance(m.position().0, pt(place[0], place[1])) < 1.0);
        m.advance(59.0);
        assert!(Haversine.distance(m.position().0, pt(place[0], place[1])) < 1.0, "still there");
        m.advance(45.0);
        assert!(!Arc::ptr_eq(&m.walk.track, &fixed), "still on the way back");
        // Back: on the fixed route again, from where the member left it, at walking pace.
        m.advance(20.0);
        assert!(Arc::ptr_eq(&m.walk.track, &fixed), "resumed the fixed route");
        assert!(m.resume.is_none() && m.then.is_none());
        let walked_m = m.walk.offset_m - 500.0;
        assert!(walked_m > 0.0 && walked_m < 20.0 * PATROL_SPEED_MPS, "{walked_m} m from where it left");
        assert_eq!(m.position().1, PATROL_SPEED_MPS);
    }

    #[test]
    fn a_plan_replacing_a_diversion_forgets_the_old_track() {
        let route = [[107.0, 30.0], [107.0, 30.0 + NORTH]];
        let mut m = Member::on(walk(&route, End::Reverse, PATROL_SPEED_MPS).starting_at(100.0));
        let (here, ..) = m.position();
        let there = [here.x() + EAST, here.y()];
        m.take(&PlanRoute::of(&push("diversion", vec![[here.x(), here.y()], there, [here.x(), here.y()]])));
        m.take(&PlanRoute::of(&push("diversion", vec![[here.x(), here.y()], there, [here.x(), here.y()]])));
        assert!(m.resume.as_ref().is_some_and(|r| (r.offset_m - 100.0).abs() < 1e-6), "the first track is kept");
        m.take(&PlanRoute::of(&push("plan", vec![[here.x(), here.y()], there])));
        assert!(m.resume.is_none());
    }

    fn route_message(action: &str, team: &str, coordinates: serde_json::Value) -> String {
        serde_json::json!({"type": "route", "seq": 41, "data": {
            "plan": {"plan_seq": 7, "team_id": team, "version": 3, "kind": "plan", "reason": "re-plan",
                     "status": "pending", "escalation": "none",
                     "plan": {"geometry": {"type": "LineString", "coordinates": coordinates},
                              "waypoints": [{"name": "a", "lon": 107.1, "lat": 30.7, "dwell_s": 120, "planned_time": null},
                                            {"name": "resume", "lon": 107.2, "lat": 30.7, "dwell_s": null}],
                              "figures": {"travel_s": 600.0, "length_m": 9000.0}}},
            "event": {"seq": 41, "action": action, "actor": "server", "note": "", "time": "2026-01-01T00:00:00Z"}}})
        .to_string()
    }

    #[test]
    fn route_messages_parse_into_plans_and_everything_else_is_ignored() {
        let line = serde_json::json!([[107.1, 30.7], [107.2, 30.7]]);
        let plan = parse_route_message(&route_message("push", "team-01", line.clone())).expect("a push");
        assert_eq!(
            plan,
            PlanPush {
                team_id: "team-01".into(),
                version: 3,
                kind: "plan".into(),
                status: "pending".into(),
                coordinates: vec![[107.1, 30.7], [107.2, 30.7]],
                waypoints: vec![
                    PlanWaypoint { lon: 107.1, lat: 30.7, dwell_s: 120.0 },
                    PlanWaypoint { lon: 107.2, lat: 30.7, dwell_s: 0.0 },
                ],
                travel_s: Some(600.0),
            }
        );
        let ignored = [
            ("an acknowledgement", route_message("ack", "team-01", line.clone())),
            ("an escalation", route_message("escalate", "team-01", line.clone())),
            ("one point", route_message("push", "team-01", serde_json::json!([[107.1, 30.7]]))),
            ("no valid line", route_message("push", "team-01", serde_json::json!([[107.1, 95.0], ["x", 30.7]]))),
            ("no line", route_message("push", "team-01", serde_json::Value::Null)),
            ("a position", r#"{"type":"position","seq":5,"data":{"device_id":"a","lon":107.1,"lat":30.7}}"#.into()),
            ("a snapshot", r#"{"type":"snapshot","seq":0,"part":1,"parts":1,"data":[]}"#.into()),
            ("an ack reply", r#"{"type":"ack","id":1,"plan_seq":7,"version":3,"status":"acknowledged"}"#.into()),
            ("a route without data", r#"{"type":"route","seq":1}"#.into()),
            ("not JSON", "route push".into()),
            ("a JSON array", "[1, 2]".into()),
        ];
        for (name, text) in ignored {
            assert_eq!(parse_route_message(&text), None, "{name}");
        }
        // An invalid point among valid ones is dropped, not the plan.
        let mixed = serde_json::json!([[107.1, 30.7], [500.0, 30.7], [107.2, 30.7]]);
        let plan = parse_route_message(&route_message("push", "team-01", mixed)).expect("a push");
        assert_eq!(plan.coordinates, vec![[107.1, 30.7], [107.2, 30.7]]);
    }

    #[test]
    fn a_plan_is_walked_at_its_own_pace_with_its_stops() {
        let line = vec![[107.0, 30.0], [107.0 + EAST, 30.0], [107.0 + EAST, 30.0 + NORTH], [107.0, 30.0]];
        let len_m = track(&line).length_m();
        let rows = [
            // (kind, travel_s, speed, end)
            ("plan", Some(len_m / 8.0), 8.0, End::Wrap),
            ("plan", Some(1.0), MAX_PLAN_SPEED_MPS, End::Wrap),
            ("manual", None, PATROL_SPEED_MPS, End::Wrap),
            ("diversion", Some(len_m / 5.0), 5.0, End::Finish),
        ];
        for (kind, travel_s, speed_mps, end) in rows {
            let mut p = push(kind, line.clone());
            p.travel_s = travel_s;
            p.waypoints = vec![
                PlanWaypoint { lon: 107.0 + EAST, lat: 30.0 + NORTH, dwell_s: 300.0 },
                PlanWaypoint { lon: 108.0, lat: 30.0, dwell_s: 300.0 },
                PlanWaypoint { lon: 107.0 + EAST, lat: 30.0, dwell_s: 0.0 },
            ];
            let r = PlanRoute::of(&p);
            assert!((r.speed_mps - speed_mps).abs() < 1e-9, "{kind}: {} m/s", r.speed_mps);
            assert_eq!(r.end, end, "{kind}");
            assert_eq!(r.stops.len(), 1, "{kind}: only the waypoint on the line with a dwell");
        }
        let open = PlanRoute::of(&push("manual", vec![[107.0, 30.0], [107.0 + EAST, 30.0]]));
        assert_eq!(open.end, End::Reverse);
    }

    #[test]
    fn the_leader_takes_each_version_once_and_acknowledges_what_is_pending() {
        let at = |version: i64, status: &str| PlanPush { version, status: status.into(), ..push("plan", vec![]) };
        let mut leading = Leading { taken: 3, ..Leading::default() };
        let rows = [
            (at(4, "pending"), "team-1", true),
            (at(4, "acknowledged"), "team-1", true),
            (at(3, "pending"), "team-1", true),
            (at(3, "acknowledged"), "team-1", false),
            (at(2, "pending"), "team-1", false),
            (at(4, "superseded"), "team-1", false),
            (at(4, "pending"), "team-2", false),
        ];
        for (p, team, wanted) in &rows {
            assert_eq!(leading.wants(p, team), *wanted, "version {} {} for {team}", p.version, p.status);
        }
        leading.due = Some((tokio::time::Instant::now(), at(5, "pending")));
        assert!(!leading.wants(&at(5, "pending"), "team-1"), "already due");
        assert!(leading.wants(&at(6, "pending"), "team-1"), "a newer one replaces it");
    }

    #[test]
    fn the_leader_takes_5_to_20_simulated_seconds() {
        for version in 1..200 {
            let real_s = ack_delay(42, version, 10.0).as_secs_f64();
            assert!((0.5..=2.0).contains(&real_s), "version {version}: {real_s} s");
        }
        assert_ne!(ack_delay(42, 1, 1.0), ack_delay(42, 2, 1.0));
    }
}
