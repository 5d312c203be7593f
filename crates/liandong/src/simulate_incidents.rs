//! The demo's closed loop (接处警闭环): a duty operator who opens incidents through the
//! real HTTP API, by hand at the county's trouble spots, from a grid member's report or
//! from a watch-list alert the simulated cameras raised; dispatches the first
//! recommended unit; and that unit's phone (its device key) signs for the task, sets
//! off, drives to the place by road, arrives, stays, reports back, and the operator
//! closes the case. The operator also acknowledges most watch-list alerts.
//!
//! Operator steps use the operator token (`--operator-token`, `LIANDONG_OPERATOR_TOKEN`;
//! the demo passes its operator's), else the simulator's admin token. Times are
//! simulated seconds, scaled by `--speedup`, except a deliberately slow step: the
//! server escalates late steps by its own wall clock, so a slow step waits out the
//! server's deadline in real seconds.
//!
//! While a unit handles an incident it leaves its patrol or its post's beat: its
//! position is an [`Errand`]'s, and the patrol it left is paused; afterwards it drives
//! back by road and joins its track at the nearest point (a post officer: the circle
//! round the post).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use geo::{BoundingRect, Contains, Distance, Haversine, InteriorPoint, MultiPolygon, Point, Rect};
use liandong_core::incident::State;
use liandong_core::road::RoadGraph;
use liandong_core::{CountyMap, Position};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::simulate::{splitmix64, Field, Motion, SimDevice, Track, Walk, M_PER_DEG_LAT, PATROL_SPEED_MPS};

/// Mean simulated seconds between two incidents (a Poisson process).
const MEAN_INCIDENT_GAP_S: f64 = 90.0;
/// Incidents the desk handles at once; an arrival beyond this is let go.
const MAX_INCIDENTS_IN_HAND: usize = 16;
/// Acknowledgements waiting to be sent at once.
const MAX_PENDING_ACKS: usize = 64;
/// Recent watch-list alerts the operator may open an incident from.
const RECENT_ALERTS: usize = 16;
/// Share of watch-list alerts the operator acknowledges.
const ACK_SHARE: f64 = 0.85;
/// The operator acknowledges an alert this long after it came, simulated seconds.
const ACK_DELAY_S: Range<f64> = 5.0..30.0;
/// Share of incidents opened from a grid member's report, and from a recent
/// watch-list alert (when there is one not yet used).
const FROM_REPORT_SHARE: f64 = 0.25;
const FROM_ALERT_SHARE: f64 = 0.15;
/// One incident in this many has one step slow enough for the server to escalate it.
const SLOW_ONE_IN: u64 = 10;
/// Share of places drawn at a trouble spot; the rest fall anywhere in the county.
const TROUBLE_SPOT_SHARE: f64 = 0.75;
/// Radius of the disc round a trouble spot that its incidents fall in, metres: under
/// the hotspot analysis's 250 m cells, so that the spots stand out.
const SPOT_RADIUS_M: f64 = 150.0;
/// Trouble spots lie this far from their town centre or post, metres.
const SPOT_OFFSET_M: Range<f64> = 100.0..600.0;
/// An incident "anywhere" falls within this distance of a road, metres.
const ROADSIDE_M: f64 = 300.0;
/// A unit this close to the place has arrived, metres.
const ARRIVE_M: f64 = 50.0;
/// The time on scene, simulated seconds.
const ON_SCENE_S: Range<f64> = 180.0..600.0;
/// Speeds of a unit answering an incident: the road planner's pace clamped to these,
/// and the pace of a straight line where no road leads, m/s.
const MAX_RESPONSE_SPEED_MPS: f64 = 20.0;
const STRAIGHT_RESPONSE_SPEED_MPS: f64 = 8.0;
/// The fastest a unit may seem to move in real time, m/s: under the server's GPS jump
/// filter (70 m/s by default), which judges fixes by their wall-clock timestamps, so
/// that a unit driving at a high speedup is not frozen on the map as a "jump".
const MAX_APPARENT_SPEED_MPS: f64 = 60.0;
/// How often the desk asks again for a unit when none was recommended, and how often.
const UNIT_RETRY_S: f64 = 60.0;
const UNIT_RETRIES: usize = 3;

/// A small deterministic generator (splitmix64): fixed seeds in tests, the clock's
/// nanoseconds in the demo.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        let out = splitmix64(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        out
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, r: Range<f64>) -> f64 {
        r.start + self.unit() * (r.end - r.start)
    }

    /// Uniform in 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// Exponentially distributed with this mean: the gap of a Poisson process.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// An index drawn with the given weights (the last one when they sum to nothing).
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// The point `east_m` east and `north_m` north of `p` (local equirectangular).
fn offset(p: Point<f64>, east_m: f64, north_m: f64) -> Point<f64> {
    let kx = M_PER_DEG_LAT * p.y().to_radians().cos();
    Point::new(p.x() + east_m / kx, p.y() + north_m / M_PER_DEG_LAT)
}

/// A point uniformly in the disc of `radius_m` round `p`.
fn in_disc(p: Point<f64>, radius_m: f64, rng: &mut Rng) -> Point<f64> {
    let r = radius_m * rng.unit().sqrt();
    let a = rng.range(0.0..std::f64::consts::TAU);
    offset(p, r * a.cos(), r * a.sin())
}

/// Where incidents happen: a few fixed trouble spots per township (near its seat, the
/// town centre, and near its posts), seeded from the map so that the same spots come
/// back every run and hotspots emerge; and now and then anywhere in the county, near
/// a road.
pub(crate) struct Places {
    boundary: MultiPolygon<f64>,
    bounds: Option<Rect<f64>>,
    spots: Vec<Point<f64>>,
    weights: Vec<f64>,
    roadside: Vec<Point<f64>>,
}

impl Places {
    pub(crate) fn of(map: &CountyMap) -> Places {
        let boundary = map.boundary.clone();
        let inside = |p: &Point<f64>| boundary.0.is_empty() || boundary.contains(p);
        let mut spots = Vec::new();
        let mut weights = Vec::new();
        for town in &map.townships {
            // Seeded by the township's id (FNV-1a), so its spots do not move when the
            // map gains or loses another township.
            let mut rng = Rng::new(
                town.id.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)),
            );
            // Some townships are simply busier than others.
            let busy = if rng.unit() < 0.3 { 3.0 } else { 1.0 };
            let seat = town.properties.get("seat").and_then(|s| Some(Point::new(s[0].as_f64()?, s[1].as_f64()?)));
            let posts = map.posts.iter().map(|p| p.point).filter(|p| town.polygon.contains(p));
            let mut anchors: Vec<(Point<f64>, f64)> = seat.map(|s| (s, 2.0)).into_iter().collect();
            anchors.extend(posts.take(2).map(|p| (p, 1.0)));
            if anchors.is_empty() {
                anchors.extend(town.polygon.interior_point().map(|p| (p, 1.0)));
            }
            for (anchor, weight) in anchors {
                let spot = (0..8)
                    .map(|_| {
                        let (r, a) = (rng.range(SPOT_OFFSET_M), rng.range(0.0..std::f64::consts::TAU));
                        offset(anchor, r * a.cos(), r * a.sin())
                    })
                    .find(|p| inside(p))
                    .or_else(|| inside(&anchor).then_some(anchor));
                if let Some(spot) = spot {
                    spots.push(spot);
                    weights.push(weight * busy * rng.range(0.5..1.5));
                }
            }
        }
        if spots.is_empty() {
            // A map without townships: the posts themselves.
            for p in map.posts.iter().map(|p| p.point).filter(|p| inside(p)) {
                spots.push(p);
                weights.push(1.0);
            }
        }
        let roadside = map.roads.iter().flat_map(|r| r.line.points()).filter(|p| inside(p)).collect();
        let bounds = if boundary.0.is_empty() {
            geo::MultiPoint::from(spots.clone()).bounding_rect()
        } else {
            boundary.bounding_rect()
        };
        Places { boundary, bounds, spots, weights, roadside }
    }

    fn inside(&self, p: &Point<f64>) -> bool {
        if self.boundary.0.is_empty() {
            self.bounds.is_some_and(|b| b.contains(p))
        } else {
            self.boundary.contains(p)
        }
    }

    /// A place for the next incident, inside the county; `None` only for a map with
    /// neither a boundary nor posts.
    pub(crate) fn sample(&self, rng: &mut Rng) -> Option<Point<f64>> {
        if !self.spots.is_empty() && rng.unit() < TROUBLE_SPOT_SHARE {
            let spot = self.spots[rng.weighted(&self.weights)];
            let p = in_disc(spot, SPOT_RADIUS_M, rng);
            return Some(if self.inside(&p) { p } else { spot });
        }
        for _ in 0..32 {
            let p = if !self.roadside.is_empty() && rng.unit() < 0.8 {
                in_disc(self.roadside[rng.below(self.roadside.len())], ROADSIDE_M, rng)
            } else {
                let b = self.bounds?;
                Point::new(rng.range(b.min().x..b.max().x), rng.range(b.min().y..b.max().y))
            };
            if self.inside(&p) {
                return Some(p);
            }
        }
        self.spots.first().copied().or_else(|| self.boundary.interior_point())
    }
}

/// What an incident is about: its kind, how often it comes (weight), the titles an
/// operator gives it, and the officer's feedback (illustrative).
struct Kind {
    kind: &'static str,
    weight: f64,
    titles: &'static [&'static str],
    feedback: &'static [&'static str],
}

const KINDS: [Kind; 7] = [
    Kind {
        kind: "theft",
        weight: 22.0,
        titles: &["电动车被盗", "村民家中财物被盗", "超市货物被盗", "农用机具被盗"],
        feedback: &["已现场勘查，调取周边监控，登记被盗物品", "已固定现场，被盗物品清单已登记，转刑侦跟进"],
    },
    Kind {
        kind: "dispute",
        weight: 22.0,
        titles: &["邻里纠纷", "土地边界纠纷", "家庭纠纷", "消费纠纷"],
        feedback: &["双方情绪已稳定，现场调解达成一致", "已现场劝解，引导双方到调解中心调解"],
    },
    Kind {
        kind: "traffic",
        weight: 18.0,
        titles: &["两车刮擦交通事故", "摩托车与三轮车相撞", "货车占道堵塞交通"],
        feedback: &["已疏导交通，双方协商处理，无人员受伤", "已拍照固定现场，移交交警处理"],
    },
    Kind {
        kind: "fight",
        weight: 8.0,
        titles: &["酒后斗殴", "群众打架", "聚众闹事"],
        feedback: &["已控制现场，当事人带回所里调查", "双方已分开，伤者送医，已做笔录"],
    },
    Kind {
        kind: "fraud",
        weight: 8.0,
        titles: &["电信诈骗报警", "冒充客服诈骗", "刷单返利诈骗"],
        feedback: &["已指导报警人止付并固定证据，已立案登记", "已核实，系诈骗未遂，已开展防骗宣传"],
    },
    Kind {
        kind: "noise",
        weight: 8.0,
        titles: &["夜间噪音扰民", "广场舞噪音扰民", "装修噪音扰民"],
        feedback: &["已劝导，噪音已停止", "已与当事人沟通，约定活动时间"],
    },
    Kind {
        kind: "other",
        weight: 14.0,
        titles: &["老人走失", "车辆陷入路边沟渠求助", "可疑人员徘徊", "醉酒人员倒卧路边"],
        feedback: &["已处置完毕，当事人已送回家中", "已到场核实，情况已处置"],
    },
];

/// Priorities 1 (highest) to 5 and how often each is given: mostly 3 and 4.
const PRIORITY_WEIGHTS: [f64; 5] = [2.0, 8.0, 45.0, 37.0, 8.0];

/// A kind and title for an incident opened by hand, and its priority.
fn draw_case(rng: &mut Rng) -> (&'static Kind, &'static str, u8) {
    let kind = &KINDS[rng.weighted(&KINDS.map(|k| k.weight))];
    let title = kind.titles[rng.below(kind.titles.len())];
    let priority = rng.weighted(&PRIORITY_WEIGHTS) as u8 + 1;
    (kind, title, priority)
}

/// The officer's feedback on the kinds an incident takes from an alert or a report
/// (illustrative).
const OTHER_FEEDBACK: [(&str, &[&str]); 5] = [
    (
        "watchlist_plate",
        &["已在卡口附近设卡盘查，布控车辆已拦停移交", "已沿车辆去向搜寻，未发现布控车辆，已通报周边卡口"],
    ),
    ("fire", &["明火已扑灭，已对焚烧人员批评教育", "已协助消防处置，火情已控制"]),
    ("hazard", &["已设置警示标志，已通知交通部门清理", "隐患已排除"]),
    ("suspicious", &["已核查车辆及人员身份，系探亲访友，无异常", "已登记可疑人员信息，纳入重点关注"]),
    ("grid_report", &["已到场核实，情况已处置"]),
];

fn feedback_note(kind: &str, rng: &mut Rng) -> &'static str {
    let notes = KINDS
        .iter()
        .find(|k| k.kind == kind)
        .map(|k| k.feedback)
        .or_else(|| OTHER_FEEDBACK.iter().find(|(k, _)| *k == kind).map(|(_, notes)| *notes))
        .unwrap_or(&["已到场处置完毕"]);
    notes[rng.below(notes.len())]
}

/// A wait before a step: simulated seconds (scaled by the speedup), or wall-clock
/// seconds for a step meant to be late by the server's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wait {
    Simulated(f64),
    Real(f64),
}

impl Wait {
    fn duration(self, speedup: f64) -> Duration {
        let s = match self {
            Wait::Simulated(s) => s / speedup.max(0.01),
            Wait::Real(s) => s,
        };
        Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
    }
}

/// The steps whose timing the simulator chooses (arrival follows from the drive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The operator reads the case and sends a unit.
    Dispatch,
    /// The officer signs for it (签收) on the phone.
    Sign,
    /// The officer sets off.
    Depart,
    /// The operator closes the case after the feedback.
    Close,
}

impl Step {
    /// The state the incident waits in before this step, whose deadline a slow step
    /// overruns.
    fn waits_in(self) -> State {
        match self {
            Step::Dispatch => State::New,
            Step::Sign => State::Dispatched,
            Step::Depart => State::SignedFor,
            Step::Close => State::Feedback,
        }
    }

    fn usual_s(self) -> Range<f64> {
        match self {
            Step::Dispatch => 20.0..90.0,
            Step::Sign => 10.0..60.0,
            Step::Depart => 5.0..40.0,
            Step::Close => 60.0..300.0,
        }
    }
}

/// Which step of an incident is slow, if any: one incident in [`SLOW_ONE_IN`], one of
/// the three steps the server watches most closely.
fn draw_slow_step(rng: &mut Rng) -> Option<Step> {
    (rng.below(SLOW_ONE_IN as usize) == 0).then(|| [Step::Dispatch, Step::Sign, Step::Depart][rng.below(3)])
}

/// The wait before `step` of an incident of `priority`: the usual human delay, or,
/// for the slow step, 10–40 % past the server's deadline (wall-clock).
fn step_wait(step: Step, priority: u8, slow: bool, rng: &mut Rng) -> Wait {
    match step.waits_in().deadline_s(priority) {
        Some(deadline_s) if slow => Wait::Real(f64::from(deadline_s) * rng.range(1.1..1.4)),
        _ => Wait::Simulated(rng.range(step.usual_s())),
    }
}

/// A unit the desk may send: an index into the simulator's devices.
type DeviceIndex = usize;

/// The unit to dispatch from a `recommended` answer: the first listed unit that the
/// simulator drives (it holds the phone's key) and that `free` says is not busy.
fn choose_unit(
    recommended: &Value,
    index_of: impl Fn(&str) -> Option<DeviceIndex>,
    free: impl Fn(DeviceIndex) -> bool,
) -> Option<(DeviceIndex, String)> {
    recommended["units"]
        .as_array()?
        .iter()
        .filter_map(|u| u["device_id"].as_str())
        .find_map(|id| index_of(id).filter(|i| free(*i)).map(|i| (i, id.to_owned())))
}

/// A unit away from its patrol or beat on an incident.
pub(crate) enum Errand {
    /// On the way to the place (by road), then there: the walk's end.
    Going(Walk),
    /// A post officer driving back to the post by road...
    Back(Walk),
    /// ...then straight onto the circle round the post, wherever it has got to.
    Rejoin { at: Point<f64>, speed_mps: f64 },
}

/// Moves a unit on its errand `dt_s` simulated seconds on and answers its position,
/// speed (m/s) and heading; `None` once the errand is over, the unit back on its beat
/// at `beat`.
pub(crate) fn advance_errand(errand: &mut Errand, dt_s: f64, beat: Point<f64>) -> Option<(Point<f64>, f64, f64)> {
    let mut left_s = dt_s;
    match errand {
        Errand::Going(walk) => {
            if walk.advance(dt_s).is_some() {
                // There: the unit stands still at the place.
                walk.speed_mps = 0.0;
            }
            return Some(walk.position());
        }
        Errand::Back(walk) => match walk.advance(dt_s) {
            None => return Some(walk.position()),
            Some(rest_s) => {
                left_s = rest_s;
                let speed_mps = walk.speed_mps;
                *errand = Errand::Rejoin { at: walk.position().0, speed_mps };
            }
        },
        Errand::Rejoin { .. } => {}
    }
    let Errand::Rejoin { at, speed_mps } = errand else { return None };
    let (p, heading, reached) = step_towards(*at, beat, *speed_mps * left_s);
    if reached {
        return None;
    }
    *at = p;
    Some((p, *speed_mps, heading))
}

/// One step of at most `max_m` metres from `from` straight towards `to`: the new point,
/// the heading (degrees from north) and whether it reached `to`. Planar in a local
/// equirectangular frame: fine over the few kilometres a step spans.
pub(crate) fn step_towards(from: Point<f64>, to: Point<f64>, max_m: f64) -> (Point<f64>, f64, bool) {
    let kx = M_PER_DEG_LAT * from.y().to_radians().cos();
    let (dx, dy) = ((to.x() - from.x()) * kx, (to.y() - from.y()) * M_PER_DEG_LAT);
    let d = dx.hypot(dy);
    let heading = dx.atan2(dy).to_degrees().rem_euclid(360.0);
    if d <= max_m.max(0.0) {
        return (to, heading, true);
    }
    let f = max_m.max(0.0) / d;
    (Point::new(from.x() + (to.x() - from.x()) * f, from.y() + (to.y() - from.y()) * f), heading, false)
}

/// The slowest a responding unit is made to drive so as to stay under the jump filter,
/// m/s (a bicycle's pace). At a speedup that would need less (above 12), even walking
/// patrols outrun the filter, so units drive at the road planner's pace: the demo is
/// then for watching the loop go round, not the units move.
const MIN_RESPONSE_SPEED_MPS: f64 = 5.0;

/// The fastest a responding unit drives at this speedup, m/s: see
/// [`MAX_APPARENT_SPEED_MPS`] and [`MIN_RESPONSE_SPEED_MPS`].
pub(crate) fn max_response_speed_mps(speedup: f64) -> f64 {
    let honest_mps = MAX_APPARENT_SPEED_MPS / speedup.max(0.01);
    if honest_mps < MIN_RESPONSE_SPEED_MPS {
        MAX_RESPONSE_SPEED_MPS
    } else {
        honest_mps.min(MAX_RESPONSE_SPEED_MPS)
    }
}

/// The way from `from` to `to`: by road when the map's road graph connects them (the
/// access legs off the road included), else a straight line; and the pace that takes
/// as long as the road planner says, at most `max_speed_mps` (m/s).
pub(crate) fn way(roads: Option<&RoadGraph>, from: Point<f64>, to: Point<f64>, max_speed_mps: f64) -> (Track, f64) {
    let routed = roads.and_then(|g| {
        let route = g.route(Position::new(from.x(), from.y()).ok()?, Position::new(to.x(), to.y()).ok()?)?;
        let mut points = vec![from];
        for p in route.geometry.iter().map(|p| p.to_point()).chain([to]) {
            if points.last() != Some(&p) {
                points.push(p);
            }
        }
        Some((Track::new(points), route.travel_s))
    });
    let (track, travel_s) = routed.unwrap_or_else(|| {
        let line = Track::new(vec![from, to]);
        let travel_s = line.length_m() / STRAIGHT_RESPONSE_SPEED_MPS;
        (line, travel_s)
    });
    let speed_mps = if travel_s > 0.0 { track.length_m() / travel_s } else { PATROL_SPEED_MPS };
    let speed_mps = if speed_mps.is_finite() { speed_mps } else { PATROL_SPEED_MPS };
    (track, speed_mps.clamp(PATROL_SPEED_MPS, max_speed_mps.max(PATROL_SPEED_MPS)))
}

/// A watch-list alert one of the simulated cameras raised, as its push answered.
#[derive(Debug, Clone)]
pub(crate) struct RaisedAlert {
    pub(crate) seq: i64,
    pub(crate) plate: String,
    pub(crate) camera: String,
}

/// Where the next incident comes from, as the desk decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    ByHand,
    Report,
    Alert,
}

/// A report one time in four, an alert (when one not yet used is at hand) about one in
/// seven, else a call taken by hand.
fn draw_source(rng: &mut Rng, alert_at_hand: bool) -> Source {
    let u = rng.unit();
    if u < FROM_REPORT_SHARE {
        Source::Report
    } else if u < FROM_REPORT_SHARE + FROM_ALERT_SHARE && alert_at_hand {
        Source::Alert
    } else {
        Source::ByHand
    }
}

/// Where an incident comes from, with what it needs.
enum Origin {
    ByHand,
    Report,
    Alert(RaisedAlert),
}

/// What the duty operator and the officers' phones share.
pub(crate) struct Desk {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
    pub(crate) operator: String,
    pub(crate) speedup: f64,
    pub(crate) tick: Duration,
    pub(crate) field: Arc<Mutex<Field>>,
    pub(crate) devices: Arc<Vec<SimDevice>>,
    pub(crate) roads: Option<Arc<RoadGraph>>,
    pub(crate) places: Places,
    /// One review of the report queue at a time, so that two incidents never accept
    /// the same report.
    pub(crate) reviewing: tokio::sync::Mutex<()>,
}

impl Desk {
    fn field(&self) -> MutexGuard<'_, Field> {
        self.field.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sleep(&self, wait: Wait) {
        tokio::time::sleep(wait.duration(self.speedup)).await;
    }

    /// One API call: the answer's JSON, or an error naming the status and the
    /// server's message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.url)).bearer_auth(bearer);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let text = r.text().await.with_context(|| format!("{method} {path}: reading the answer"))?;
        anyhow::ensure!(
            status.is_success(),
            "{method} {path}: {status} {}",
            text.chars().take(300).collect::<String>()
        );
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An incident step; `bearer` is the operator's token or the assigned phone's key.
    async fn act(&self, id: i64, bearer: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/actions"), bearer, Some(body)).await
    }

    fn index_of(&self, device_id: &str) -> Option<DeviceIndex> {
        self.devices.iter().position(|d| d.id == device_id)
    }

    /// Where unit `i` is now.
    fn here(&self, i: DeviceIndex) -> Option<Point<f64>> {
        self.field().positions.get(i).copied()
    }

    /// Routes off the runtime's threads: a search on a county's road graph takes a
    /// few milliseconds.
    async fn way(&self, from: Point<f64>, to: Point<f64>) -> (Track, f64) {
        let (roads, max_mps) = (self.roads.clone(), max_response_speed_mps(self.speedup));
        tokio::task::spawn_blocking(move || way(roads.as_deref(), from, to, max_mps))
            .await
            .unwrap_or_else(|_| way(None, from, to, max_mps))
    }

    /// Where unit `i` goes back to: the nearest point of the track its patrol left (or
    /// the plan pushed meanwhile), or its post.
    fn beat_point(&self, i: DeviceIndex, here: Point<f64>) -> Option<Point<f64>> {
        match &self.devices.get(i)?.motion {
            Motion::Patrol(k) => self.field().members.get(*k).map(|m| m.rejoin_point(here)),
            Motion::Around { centre, .. } => Some(*centre),
        }
    }

    /// Sends unit `i` back along `way` (which starts where it is); frees it.
    fn send_back(&self, i: DeviceIndex, way: Track, speed_mps: f64) {
        let Some(device) = self.devices.get(i) else { return };
        let mut field = self.field();
        match &device.motion {
            Motion::Patrol(k) => {
                if let Some(m) = field.members.get_mut(*k) {
                    m.come_back(Arc::new(way), speed_mps);
                }
                field.errands.remove(&i);
            }
            Motion::Around { .. } => {
                let walk = Walk::leg(Arc::new(way), speed_mps);
                field.errands.insert(i, Errand::Back(walk));
            }
        }
        field.busy.remove(&i);
    }
}

/// A unit sent to an incident. Dropped without [`Claim::release`] (an error, or the
/// demo stopping), it goes back in a straight line.
struct Claim {
    desk: Arc<Desk>,
    unit: DeviceIndex,
    released: bool,
}

impl Claim {
    /// Claims unit `i` unless another incident has it.
    fn take(desk: &Arc<Desk>, i: DeviceIndex) -> Option<Claim> {
        desk.field().busy.insert(i).then(|| Claim { desk: desk.clone(), unit: i, released: false })
    }

    /// Drives the unit back by road and frees it.
    async fn release(mut self) {
        self.released = true;
        let i = self.unit;
        if self.desk.free_if_never_left(i) {
            return;
        }
        let Some(here) = self.desk.here(i) else { return self.desk.send_back_straight(i) };
        let Some(there) = self.desk.beat_point(i, here) else { return self.desk.send_back_straight(i) };
        let (track, speed_mps) = self.desk.way(here, there).await;
        self.desk.send_back(i, track, speed_mps);
    }
}

impl Desk {
    /// Frees unit `i` if it has not set off (it is still on its patrol or beat), and
    /// says so.
    fn free_if_never_left(&self, i: DeviceIndex) -> bool {
        let mut field = self.field();
        if field.errands.contains_key(&i) {
            return false;
        }
        field.busy.remove(&i);
        true
    }

    fn send_back_straight(&self, i: DeviceIndex) {
        if self.free_if_never_left(i) {
            return;
        }
        let here = self.here(i);
        let there = here.and_then(|h| self.beat_point(i, h));
        match (here, there) {
            (Some(h), Some(t)) => {
                let (track, speed_mps) = way(None, h, t, max_response_speed_mps(self.speedup));
                self.send_back(i, track, speed_mps);
            }
            _ => {
                let mut field = self.field();
                field.errands.remove(&i);
                field.busy.remove(&i);
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.released {
            self.desk.send_back_straight(self.unit);
        }
    }
}

/// An incident as the desk opened it.
struct Opened {
    id: i64,
    place: Point<f64>,
    priority: u8,
    kind: String,
    title: String,
    recommended: Value,
}

impl Opened {
    fn of(answer: &Value, recommended: Value) -> Option<Opened> {
        let inc = &answer["incident"];
        Some(Opened {
            id: inc["incident_id"].as_i64()?,
            place: Point::new(inc["lon"].as_f64()?, inc["lat"].as_f64()?),
            priority: inc["priority"].as_u64().map_or(3, |p| p.clamp(1, 5) as u8),
            kind: inc["kind"].as_str().unwrap_or("other").to_owned(),
            title: inc["title"].as_str().unwrap_or_default().to_owned(),
            recommended,
        })
    }
}

/// The duty operator: opens incidents as a Poisson process, hands each to its own
/// task, and acknowledges watch-list alerts. Runs until dropped; dropping it stops
/// every incident and acknowledgement in hand.
pub(crate) async fn run_desk(desk: Arc<Desk>, mut alerts: tokio::sync::mpsc::Receiver<RaisedAlert>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut incidents: JoinSet<()> = JoinSet::new();
    let mut acks: JoinSet<()> = JoinSet::new();
    let mut recent: VecDeque<RaisedAlert> = VecDeque::with_capacity(RECENT_ALERTS);
    let mut cameras = true;
    let mut next = tokio::time::Instant::now() + Wait::Simulated(rng.exp(MEAN_INCIDENT_GAP_S)).duration(desk.speedup);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {
                // From now, not from when it was due: a stalled runtime does not
                // bring a burst of incidents.
                next = tokio::time::Instant::now() + Wait::Simulated(rng.exp(MEAN_INCIDENT_GAP_S)).duration(desk.speedup);
                if incidents.len() >= MAX_INCIDENTS_IN_HAND {
                    tracing::debug!(in_hand = incidents.len(), "the desk is full; an incident is let go");
                    continue;
                }
                let origin = match draw_source(&mut rng, !recent.is_empty()) {
                    Source::Report => Origin::Report,
                    Source::Alert => recent.pop_back().map_or(Origin::ByHand, Origin::Alert),
                    Source::ByHand => Origin::ByHand,
                };
                let seed = rng.next_u64();
                incidents.spawn(handle_incident(desk.clone(), origin, seed));
            }
            alert = alerts.recv(), if cameras => {
                let Some(alert) = alert else {
                    // No more cameras: incidents go on by hand and from reports.
                    cameras = false;
                    continue;
                };
                if rng.unit() < ACK_SHARE && acks.len() < MAX_PENDING_ACKS {
                    let wait = Wait::Simulated(rng.range(ACK_DELAY_S));
                    acks.spawn(acknowledge(desk.clone(), alert.clone(), wait));
                }
                if recent.len() == RECENT_ALERTS {
                    recent.pop_front();
                }
                recent.push_back(alert);
            }
            Some(_) = incidents.join_next(), if !incidents.is_empty() => {}
            Some(_) = acks.join_next(), if !acks.is_empty() => {}
        }
    }
}

/// The operator acknowledges a watch-list alert after reading it.
async fn acknowledge(desk: Arc<Desk>, alert: RaisedAlert, wait: Wait) {
    desk.sleep(wait).await;
    let note = format!("已核实，已通知{}附近警力关注布控车辆{}", alert.camera, alert.plate);
    let path = format!("/api/v1/alerts/{}/ack", alert.seq);
    match desk.call(reqwest::Method::POST, &path, &desk.operator, Some(json!({"note": note}))).await {
        Ok(_) => tracing::debug!(alert_seq = alert.seq, "alert acknowledged"),
        Err(e) => tracing::warn!(alert_seq = alert.seq, error = %format!("{e:#}"), "acknowledging an alert failed"),
    }
}

/// One incident from opening to closing; an error is logged, and an incident left
/// open by it is cancelled.
async fn handle_incident(desk: Arc<Desk>, origin: Origin, seed: u64) {
    let mut rng = Rng::new(seed);
    let opened = match open(&desk, origin, &mut rng).await {
        Ok(Some(o)) => o,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "opening an incident failed");
            return;
        }
    };
    let id = opened.id;
    tracing::info!(incident = id, kind = %opened.kind, priority = opened.priority, title = %opened.title,
        lon = opened.place.x(), lat = opened.place.y(), "incident opened");
    if let Err(e) = see_through(&desk, opened, &mut rng).await {
        tracing::warn!(incident = id, error = %format!("{e:#}"), "handling an incident failed; cancelling it");
        let body = json!({"action": "cancel", "note": "模拟处置中断，撤销"});
        if let Err(e) = desk.act(id, &desk.operator, body).await {
            tracing::debug!(incident = id, error = %format!("{e:#}"), "cancelling an incident failed");
        }
    }
}

/// Opens an incident from `origin` (a report or an alert, falling back to one by
/// hand), with its recommended units.
async fn open(desk: &Desk, origin: Origin, rng: &mut Rng) -> anyhow::Result<Option<Opened>> {
    match origin {
        Origin::Report => {
            if let Some(o) = open_from_report(desk, rng).await? {
                return Ok(Some(o));
            }
        }
        Origin::Alert(alert) => {
            let title = format!("布控车辆{}出现于{}", alert.plate, alert.camera);
            let body = json!({"title": title, "priority": 2, "alert_seq": alert.seq});
            match desk.call(reqwest::Method::POST, "/api/v1/incidents", &desk.operator, Some(body)).await {
                Ok(answer) => return Ok(Opened::of(&answer, answer["recommended"].clone())),
                Err(e) => {
                    tracing::debug!(alert_seq = alert.seq, error = %format!("{e:#}"), "no incident from the alert; one by hand instead")
                }
            }
        }
        Origin::ByHand => {}
    }
    let Some(place) = desk.places.sample(rng) else { return Ok(None) };
    let (kind, title, priority) = draw_case(rng);
    let body = json!({"title": title, "kind": kind.kind, "priority": priority, "lon": place.x(), "lat": place.y()});
    let answer = desk.call(reqwest::Method::POST, "/api/v1/incidents", &desk.operator, Some(body)).await?;
    Ok(Opened::of(&answer, answer["recommended"].clone()))
}

/// Accepts the newest grid report waiting for review into an incident; `None` when
/// none waits (or another review took it).
async fn open_from_report(desk: &Desk, rng: &mut Rng) -> anyhow::Result<Option<Opened>> {
    let _one_at_a_time = desk.reviewing.lock().await;
    let queue = desk.call(reqwest::Method::GET, "/api/v1/reports?status=new", &desk.operator, None).await?;
    let Some(report_id) = queue["reports"].get(0).and_then(|r| r["report_id"].as_i64()) else { return Ok(None) };
    let priority = if rng.unit() < 0.5 { 3 } else { 4 };
    let body = json!({"decision": "accept", "priority": priority});
    let path = format!("/api/v1/reports/{report_id}/review");
    let reviewed = match desk.call(reqwest::Method::POST, &path, &desk.operator, Some(body)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(report_id, error = %format!("{e:#}"), "accepting a report failed; an incident by hand instead");
            return Ok(None);
        }
    };
    let Some(id) = reviewed["incident_id"].as_i64() else { return Ok(None) };
    let answer = desk.call(reqwest::Method::GET, &format!("/api/v1/incidents/{id}"), &desk.operator, None).await?;
    tracing::debug!(report_id, incident = id, "report accepted into an incident");
    Ok(Opened::of(&answer, answer["recommended"].clone()))
}

/// The closed loop after opening: dispatch, sign for, depart, arrive, feedback, close.
async fn see_through(desk: &Arc<Desk>, inc: Opened, rng: &mut Rng) -> anyhow::Result<()> {
    let slow = draw_slow_step(rng);
    let wait = |step: Step, rng: &mut Rng| step_wait(step, inc.priority, slow == Some(step), rng);
    desk.sleep(wait(Step::Dispatch, rng)).await;

    // The first recommended unit the simulator drives and has not sent elsewhere.
    let mut recommended = inc.recommended.clone();
    let mut claim = None;
    for attempt in 0..=UNIT_RETRIES {
        let chosen = choose_unit(&recommended, |id| desk.index_of(id), |i| !desk.field().busy.contains(&i));
        if let Some((i, device_id)) = chosen {
            if let Some(c) = Claim::take(desk, i) {
                claim = Some((c, device_id));
                break;
            }
        }
        if attempt == UNIT_RETRIES {
            break;
        }
        desk.sleep(Wait::Simulated(UNIT_RETRY_S)).await;
        let path = format!("/api/v1/incidents/{}", inc.id);
        recommended = desk.call(reqwest::Method::GET, &path, &desk.operator, None).await?["recommended"].clone();
    }
    let Some((claim, device_id)) = claim else {
        tracing::info!(incident = inc.id, "no unit available; the incident is handed to the local station");
        desk.act(inc.id, &desk.operator, json!({"action": "cancel", "note": "附近无可用警力，转属地派出所处置"}))
            .await?;
        return Ok(());
    };
    let key = desk.devices[claim.unit].key.clone();
    desk.act(inc.id, &desk.operator, json!({"action": "dispatch", "device_id": device_id, "note": "请立即前往处置"}))
        .await?;
    tracing::debug!(incident = inc.id, device = %device_id, "unit dispatched");

    desk.sleep(wait(Step::Sign, rng)).await;
    desk.act(inc.id, &key, json!({"action": "sign", "note": "收到，马上出发"})).await?;

    desk.sleep(wait(Step::Depart, rng)).await;
    let here = desk.here(claim.unit).context("the unit has no position")?;
    let (track, speed_mps) = desk.way(here, inc.place).await;
    let drive_s = track.length_m() / speed_mps;
    desk.act(inc.id, &key, json!({"action": "depart"})).await?;
    desk.field().errands.insert(claim.unit, Errand::Going(Walk::leg(Arc::new(track), speed_mps)));

    // Drive until within reach of the place (a road that ends short of it is walked).
    let give_up = tokio::time::Instant::now() + Wait::Simulated(drive_s * 2.0 + 600.0).duration(desk.speedup);
    loop {
        let here = desk.here(claim.unit).context("the unit has no position")?;
        if Haversine.distance(here, inc.place) <= ARRIVE_M {
            break;
        }
        if tokio::time::Instant::now() > give_up {
            tracing::debug!(incident = inc.id, device = %device_id, "the unit did not get within reach; arriving anyway");
            break;
        }
        tokio::time::sleep(desk.tick).await;
    }
    desk.act(inc.id, &key, json!({"action": "arrive", "note": "已到达现场"})).await?;

    desk.sleep(Wait::Simulated(rng.range(ON_SCENE_S))).await;
    desk.act(inc.id, &key, json!({"action": "feedback", "note": feedback_note(&inc.kind, rng)})).await?;
    claim.release().await;

    desk.sleep(wait(Step::Close, rng)).await;
    desk.act(inc.id, &desk.operator, json!({"action": "close", "note": "处置完毕，结案归档"})).await?;
    tracing::info!(incident = inc.id, device = %device_id, kind = %inc.kind, slow_step = ?slow, "incident closed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{End, Member};

    fn dazhu() -> CountyMap {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maps/dazhu");
        liandong_server::maps::load_dir(&dir).expect("the demo map loads")
    }

    #[test]
    fn places_stay_inside_the_county_and_cluster_at_trouble_spots() {
        let map = dazhu();
        let places = Places::of(&map);
        assert!(places.spots.len() >= map.townships.len(), "{} spots", places.spots.len());
        assert!(places.spots.iter().all(|p| map.boundary.contains(p)), "every trouble spot is in the county");
        let mut rng = Rng::new(7);
        let n = 4000;
        let mut near_spot = 0;
        let mut hits = vec![0usize; places.spots.len()];
        for _ in 0..n {
            let p = places.sample(&mut rng).expect("a place");
            assert!(map.boundary.contains(&p), "{p:?} is outside the county");
            if let Some((i, d)) =
                places.spots.iter().map(|s| Haversine.distance(*s, p)).enumerate().min_by(|a, b| a.1.total_cmp(&b.1))
            {
                if d <= SPOT_RADIUS_M + 1.0 {
                    near_spot += 1;
                    hits[i] += 1;
                }
            }
        }
        let share = near_spot as f64 / n as f64;
        assert!((0.7..0.85).contains(&share), "{share} of the places at a trouble spot");
        // Hotspots emerge: the busiest fifth of the spots has well over a fifth of the hits.
        hits.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = hits[..hits.len() / 5].iter().sum();
        assert!(top as f64 > 0.35 * near_spot as f64, "top fifth of spots: {top} of {near_spot}");
        // The same map gives the same spots.
        assert_eq!(Places::of(&map).spots, places.spots);
    }

    #[test]
    fn a_map_without_townships_or_roads_still_gives_places_inside() {
        let mut map = dazhu();
        map.townships.clear();
        map.roads.clear();
        let places = Places::of(&map);
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let p = places.sample(&mut rng).expect("a place");
            assert!(map.boundary.contains(&p), "{p:?}");
        }
    }

    #[test]
    fn step_waits_are_human_and_slow_steps_overrun_the_servers_deadline() {
        let mut rng = Rng::new(11);
        let rows = [
            // (step, simulated range)
            (Step::Dispatch, 20.0..90.0),
            (Step::Sign, 10.0..60.0),
            (Step::Depart, 5.0..40.0),
            (Step::Close, 60.0..300.0),
        ];
        for (step, range) in rows {
            for priority in 1..=5 {
                let Wait::Simulated(s) = step_wait(step, priority, false, &mut rng) else {
                    panic!("{step:?} is simulated")
                };
                assert!(range.contains(&s), "{step:?} p{priority}: {s} s");
                let deadline_s = f64::from(step.waits_in().deadline_s(priority).unwrap());
                match step_wait(step, priority, true, &mut rng) {
                    Wait::Real(s) => assert!(s > deadline_s && s < deadline_s * 1.5, "{step:?} p{priority}: {s} s"),
                    Wait::Simulated(_) => panic!("a slow {step:?} is wall-clock"),
                }
            }
        }
        // One incident in ten has a slow step, spread over the three watched steps.
        let mut counts = [0usize; 3];
        let n = 20_000;
        for _ in 0..n {
            match draw_slow_step(&mut rng) {
                Some(Step::Dispatch) => counts[0] += 1,
                Some(Step::Sign) => counts[1] += 1,
                Some(Step::Depart) => counts[2] += 1,
                Some(Step::Close) => panic!("closing is never slow"),
                None => {}
            }
        }
        let slow: usize = counts.iter().sum();
        assert!((0.08..0.12).contains(&(slow as f64 / n as f64)), "{slow} of {n}");
        assert!(counts.iter().all(|c| *c > slow / 5), "{counts:?}");
        // The Poisson gaps average the configured mean.
        let mean = (0..n).map(|_| rng.exp(MEAN_INCIDENT_GAP_S)).sum::<f64>() / n as f64;
        assert!((mean - MEAN_INCIDENT_GAP_S).abs() < 3.0, "{mean}");
        assert_eq!(Wait::Simulated(90.0).duration(10.0), Duration::from_secs(9));
        assert_eq!(Wait::Real(90.0).duration(10.0), Duration::from_secs(90));
    }

    #[test]
    fn incidents_come_from_reports_alerts_and_calls_in_the_set_shares() {
        let mut rng = Rng::new(9);
        let n = 20_000;
        let rows = [
            // (an alert at hand, expected shares: by hand, report, alert)
            (true, [1.0 - FROM_REPORT_SHARE - FROM_ALERT_SHARE, FROM_REPORT_SHARE, FROM_ALERT_SHARE]),
            (false, [1.0 - FROM_REPORT_SHARE, FROM_REPORT_SHARE, 0.0]),
        ];
        for (at_hand, shares) in rows {
            let mut counts = [0usize; 3];
            for _ in 0..n {
                counts[draw_source(&mut rng, at_hand) as usize] += 1;
            }
            for (count, share) in counts.iter().zip(shares) {
                assert!((*count as f64 / n as f64 - share).abs() < 0.01, "alert at hand {at_hand}: {counts:?}");
            }
        }
    }

    #[test]
    fn cases_are_mostly_priority_3_and_4_with_known_kinds() {
        let mut rng = Rng::new(5);
        let mut by_priority = [0usize; 6];
        for _ in 0..10_000 {
            let (kind, title, priority) = draw_case(&mut rng);
            assert!(kind_is_valid(kind.kind) && !title.is_empty());
            assert!(!feedback_note(kind.kind, &mut rng).is_empty());
            by_priority[priority as usize] += 1;
        }
        assert_eq!(by_priority[0], 0);
        assert!(by_priority[3] + by_priority[4] > 7_500, "{by_priority:?}");
        assert!(by_priority[1] > 0 && by_priority[1] < 500, "{by_priority:?}");
    }

    /// The server's rule for kinds: a short lowercase word.
    fn kind_is_valid(k: &str) -> bool {
        !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }

    #[test]
    fn the_first_recommended_unit_the_simulator_drives_and_is_free_is_chosen() {
        let ours = ["team-01-m03", "post-02-officer", "post-05-officer"];
        let index_of = |id: &str| ours.iter().position(|o| *o == id);
        let answer = |ids: &[&str]| json!({"basis": "road_time", "units": ids.iter().map(|id| json!({"device_id": id, "travel_s": 120.0})).collect::<Vec<_>>()});
        // (case, the recommendation, the busy units, the expected choice)
        type Row<'a> = (&'a str, Value, &'a [usize], Option<(usize, &'a str)>);
        let rows: [Row; 6] = [
            ("the first", answer(&["post-02-officer", "team-01-m03"]), &[], Some((1, "post-02-officer"))),
            ("not a phone of ours", answer(&["someone-else", "post-05-officer"]), &[], Some((2, "post-05-officer"))),
            ("the first is busy", answer(&["post-02-officer", "team-01-m03"]), &[1], Some((0, "team-01-m03"))),
            ("all busy", answer(&["post-02-officer"]), &[1], None),
            ("no units", answer(&[]), &[], None),
            ("no recommendation", Value::Null, &[], None),
        ];
        for (name, rec, busy, expected) in rows {
            let got = choose_unit(&rec, index_of, |i| !busy.contains(&i));
            assert_eq!(got, expected.map(|(i, id)| (i, id.to_owned())), "{name}");
        }
    }

    const EAST: f64 = 0.010_38;

    #[test]
    fn a_unit_drives_to_the_place_stays_and_an_officer_comes_back_onto_the_circle() {
        let from = Point::new(107.0, 30.0);
        let place = Point::new(107.0 + EAST, 30.0);
        let (track, speed_mps) = way(None, from, place, MAX_RESPONSE_SPEED_MPS);
        assert_eq!(speed_mps, STRAIGHT_RESPONSE_SPEED_MPS);
        let len_m = track.length_m();
        let mut errand = Errand::Going(Walk::leg(Arc::new(track), speed_mps));
        // Halfway after half the time, heading east.
        let (p, v, heading) = advance_errand(&mut errand, len_m / speed_mps / 2.0, from).unwrap();
        assert!((Haversine.distance(p, from) - len_m / 2.0).abs() < 1.0);
        assert!(v == speed_mps && (heading - 90.0).abs() < 1.0, "{v} m/s, {heading}°");
        // There, and it stays there, standing still.
        let (p, v, _) = advance_errand(&mut errand, len_m / speed_mps, from).unwrap();
        assert!(Haversine.distance(p, place) < 0.5 && v == 0.0);
        let (p, ..) = advance_errand(&mut errand, 600.0, from).unwrap();
        assert!(Haversine.distance(p, place) < 0.5);
        // Back: to the post, then onto the circle wherever it has got to.
        let post = from;
        let (track, speed_mps) = way(None, place, post, MAX_RESPONSE_SPEED_MPS);
        let mut errand = Errand::Back(Walk::leg(Arc::new(track), speed_mps));
        let beat = offset(post, 0.0, 200.0);
        let (p, ..) = advance_errand(&mut errand, 60.0, beat).unwrap();
        assert!((Haversine.distance(p, place) - 60.0 * speed_mps).abs() < 1.0);
        // 1 km at 8 m/s is 125 s; 10 s more is 80 m of the 200 m to the circle.
        let (p, v, heading) = advance_errand(&mut errand, 75.0, beat).unwrap();
        assert!((Haversine.distance(p, post) - 80.0).abs() < 1.0, "{}", Haversine.distance(p, post));
        assert!(v == speed_mps && heading < 1.0, "{heading}");
        assert!(advance_errand(&mut errand, 20.0, beat).is_none(), "on the circle: the errand is over");
    }

    #[test]
    fn a_road_way_follows_the_road_at_the_planners_pace() {
        let map = dazhu();
        let graph = RoadGraph::from_roads(&map.roads, &liandong_core::road::RoadSpeeds::default());
        let (a, b) = (map.posts[0].point, map.posts[1].point);
        let (track, speed_mps) = way(Some(&graph), a, b, MAX_RESPONSE_SPEED_MPS);
        let route = graph.route(Position::new(a.x(), a.y()).unwrap(), Position::new(b.x(), b.y()).unwrap()).unwrap();
        assert!(track.length_m() > Haversine.distance(a, b), "a road is no shorter than the straight line");
        assert_eq!(track.points.first(), Some(&a));
        assert_eq!(track.points.last(), Some(&b));
        let drive_s = track.length_m() / speed_mps;
        assert!((drive_s - route.travel_s).abs() < 1.0 || speed_mps == MAX_RESPONSE_SPEED_MPS, "{drive_s} s");
        assert!((PATROL_SPEED_MPS..=MAX_RESPONSE_SPEED_MPS).contains(&speed_mps));
    }

    #[test]
    fn a_unit_never_seems_faster_than_the_servers_jump_filter_allows() {
        let rows = [
            // (speedup, fastest simulated drive m/s)
            (0.5, MAX_RESPONSE_SPEED_MPS),
            (1.0, MAX_RESPONSE_SPEED_MPS),
            (3.0, MAX_RESPONSE_SPEED_MPS),
            (10.0, 6.0),
            (12.0, MIN_RESPONSE_SPEED_MPS),
            (13.0, MAX_RESPONSE_SPEED_MPS),
            (100.0, MAX_RESPONSE_SPEED_MPS),
        ];
        for (speedup, mps) in rows {
            assert!(
                (max_response_speed_mps(speedup) - mps).abs() < 1e-9,
                "{speedup}x: {}",
                max_response_speed_mps(speedup)
            );
        }
        let (_, mps) = way(None, Point::new(107.0, 30.0), Point::new(107.0 + EAST, 30.0), max_response_speed_mps(10.0));
        assert_eq!(mps, 6.0);
    }

    #[test]
    fn a_patrol_member_comes_back_to_the_nearest_point_of_the_track_it_left() {
        let route = [[107.0, 30.0], [107.0, 30.01], [107.0 + EAST, 30.01], [107.0 + EAST, 30.0], [107.0, 30.0]];
        let track = Arc::new(Track::new(route.iter().map(|&[x, y]| Point::new(x, y)).collect()));
        let mut m = Member::on(Walk::new(track.clone(), Arc::from([]), End::Wrap, PATROL_SPEED_MPS).starting_at(300.0));
        // The member went to an incident inside the loop and comes back from a point
        // 200 m east of its west side, 500 m up: the west side is nearest.
        let here = offset(Point::new(107.0, 30.0), 200.0, 500.0);
        let there = m.rejoin_point(here);
        assert!(Haversine.distance(there, Point::new(107.0, 30.0 + 500.0 / M_PER_DEG_LAT)) < 2.0, "{there:?}");
        let (way_back, speed_mps) = way(None, here, there, MAX_RESPONSE_SPEED_MPS);
        m.come_back(Arc::new(way_back), speed_mps);
        assert!(Haversine.distance(m.position().0, here) < 0.5, "starts where it is");
        m.advance(200.0 / speed_mps + 10.0);
        let (p, v, _) = m.position();
        assert!(Arc::ptr_eq(&m.walk.track, &track), "back on the route");
        assert!(track.nearest(p, 0.0, 0.0).1 < 0.5 && v == PATROL_SPEED_MPS, "{p:?} {v}");
    }
}
