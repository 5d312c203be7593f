//! Patrol adherence: is a patrol member on the planned route, and are the plan's
//! checkpoints visited in time?
//!
//! A member's fixes are measured against the corridor of the current plan version (its
//! polyline, in metres in a local projection) with hysteresis against GPS noise: two
//! thresholds, as in Schmitt's trigger (O. H. Schmitt, "A thermionic trigger", Journal
//! of Scientific Instruments 15, 1938), plus a persistence count. A phone in the open
//! is typically within 5 m (gps.gov, "GPS Accuracy"), but among buildings and trees
//! single fixes land tens to hundreds of metres off; one threshold alone would flap.
//!
//! - a member becomes **off route** only after `confirm_fixes` consecutive fixes, or
//!   `confirm_s` seconds of consecutive fixes, farther than `leave_m` from the corridor;
//! - and is **back on route** only after as many fixes nearer than `return_m`.
//!
//! Between the two thresholds nothing changes, so a single noisy fix raises nothing, a
//! real departure raises exactly one event, and returning raises exactly one. Fixes
//! whose reported accuracy is worse than `max_accuracy_m` are ignored for every state
//! change: they neither count towards a run nor interrupt one.
//!
//! Checkpoint visits follow the dwell rule of the fence module (Tile38's `dwell`):
//! inside the radius for at least `min_dwell_s`, measured from the first fix inside to
//! the latest. Leaving a checkpoint needs the same confirmation as leaving the
//! corridor, so a noisy fix does not cut a dwell short. A checkpoint not reached by its
//! planned arrival plus the tolerance is **late**; one left unvisited when the member
//! visits a later checkpoint, or when the plan ends, is **skipped** (a skipped
//! checkpoint visited afterwards still counts as visited).
//!
//! Everything here is a function of the fixes and ticks it is given: the server turns
//! the returned events into alerts and calls [`MemberAdherence::tick`] on a timer, so
//! that a silent member is still found late.

use geo::{LineString, Point};
use serde::{Deserialize, Serialize};

use crate::jump::Fix;
use crate::spatial::LineIndex;
use crate::{Position, UnixMs};

/// Thresholds of the adherence rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdherenceConfig {
    /// A member is leaving the corridor when farther than this, in metres.
    pub leave_m: f64,
    /// A member off route is returning when nearer than this, in metres.
    pub return_m: f64,
    /// Consecutive fixes beyond a threshold that confirm a change (corridor or
    /// checkpoint)…
    pub confirm_fixes: u32,
    /// …or the seconds from the first to the latest of them, whichever comes first:
    /// a phone reporting every two minutes confirms on its second fix.
    pub confirm_s: f64,
    /// Fixes whose accuracy (metres, as the device reports it) is worse than this are
    /// ignored; fixes without an accuracy are used.
    pub max_accuracy_m: f64,
    /// A checkpoint is late when not reached this many seconds after its planned arrival.
    pub late_tolerance_s: f64,
    /// A new plan gives its members this long to join it: until a member has once been
    /// within `leave_m` of the new line, or this many seconds after their first fix on
    /// the plan, being far from it is not being off route (a team a few minutes into
    /// its walk is some way from a plan that starts at the post).
    pub join_grace_s: f64,
}

impl Default for AdherenceConfig {
    /// 150 m to leave and 80 m to return, 3 fixes or 60 s to confirm: well beyond a
    /// phone's usual error and the width of the streets a route follows, yet a walker
    /// who really leaves is found within two or three minutes. Fixes reported worse
    /// than 100 m are ignored: an accepted fix 150 m from the corridor is then at least
    /// 50 m off even with its full error. Ten minutes' tolerance for lateness.
    fn default() -> Self {
        AdherenceConfig {
            leave_m: 150.0,
            return_m: 80.0,
            confirm_fixes: 3,
            confirm_s: 60.0,
            max_accuracy_m: 100.0,
            late_tolerance_s: 600.0,
            join_grace_s: 600.0,
        }
    }
}

impl AdherenceConfig {
    pub fn validate(&self) -> Result<(), AdherenceError> {
        let bad = |field, reason| Err(AdherenceError::Config { field, reason });
        if !(self.leave_m.is_finite() && self.leave_m > 0.0) {
            return bad("leave_m", "must be a positive number of metres");
        }
        if !(self.return_m.is_finite() && self.return_m >= 0.0 && self.return_m <= self.leave_m) {
            return bad("return_m", "must be a number of metres from 0 to leave_m");
        }
        if self.confirm_fixes == 0 {
            return bad("confirm_fixes", "must be at least 1");
        }
        if self.confirm_s.is_nan() || self.confirm_s <= 0.0 {
            return bad("confirm_s", "must be a positive number of seconds");
        }
        if self.max_accuracy_m.is_nan() || self.max_accuracy_m <= 0.0 {
            return bad("max_accuracy_m", "must be a positive number of metres");
        }
        if !(self.late_tolerance_s.is_finite() && self.late_tolerance_s >= 0.0) {
            return bad("late_tolerance_s", "must be zero or a positive number of seconds");
        }
        if !(self.join_grace_s.is_finite() && self.join_grace_s >= 0.0) {
            return bad("join_grace_s", "must be zero or a positive number of seconds");
        }
        Ok(())
    }
}

/// Why a corridor could not be built; names the setting or input at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdherenceError {
    #[error("{field} {reason}")]
    Config { field: &'static str, reason: &'static str },
    #[error("line must have at least two positions")]
    Line,
    #[error("checkpoint {index}: {field} {reason}")]
    Checkpoint { index: usize, field: &'static str, reason: &'static str },
}

impl AdherenceError {
    /// The field the error is about, for messages that name it.
    pub fn field(&self) -> &'static str {
        match self {
            AdherenceError::Config { field, .. } | AdherenceError::Checkpoint { field, .. } => field,
            AdherenceError::Line => "line",
        }
    }
}

/// A checkpoint of a plan, in the order the plan visits them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedCheckpoint {
    pub position: Position,
    /// Within this haversine distance, in metres, the member is at the checkpoint.
    pub radius_m: f64,
    /// Seconds the member must stay for a visit.
    pub min_dwell_s: f64,
    pub planned_arrival_ms: UnixMs,
}

/// The current version of a plan, prepared for measuring fixes against it.
#[derive(Debug, Clone)]
pub struct Corridor {
    line: LineString<f64>,
    index: LineIndex,
    checkpoints: Vec<PlannedCheckpoint>,
    end_ms: Option<UnixMs>,
    config: AdherenceConfig,
}

impl Corridor {
    /// The corridor along `line` (at least two positions) with `checkpoints` in plan
    /// order. At `end_ms`, if given, the plan is over: what is unvisited is skipped.
    pub fn new(
        line: &[Position],
        checkpoints: Vec<PlannedCheckpoint>,
        end_ms: Option<UnixMs>,
        config: &AdherenceConfig,
    ) -> Result<Corridor, AdherenceError> {
        config.validate()?;
        if line.len() < 2 {
            return Err(AdherenceError::Line);
        }
        for (index, c) in checkpoints.iter().enumerate() {
            if !(c.radius_m.is_finite() && c.radius_m > 0.0) {
                return Err(AdherenceError::Checkpoint { index, field: "radius_m", reason: "must be positive metres" });
            }
            if !(c.min_dwell_s.is_finite() && c.min_dwell_s >= 0.0) {
                return Err(AdherenceError::Checkpoint {
                    index,
                    field: "min_dwell_s",
                    reason: "must be zero or positive seconds",
                });
            }
        }
        let line: LineString<f64> = line.iter().map(|p| p.to_coord()).collect();
        // Segments in an R-tree, measured in the local projection at the line's mean
        // latitude: plans run to hundreds of vertices, and a fix needs only the nearest.
        let index = LineIndex::new([&line]);
        Ok(Corridor { line, index, checkpoints, end_ms, config: *config })
    }

    /// Metres from `p` to the nearest point of the line, in the local projection.
    pub fn distance_m(&self, p: Position) -> f64 {
        self.index.distance_m(Point::new(p.lon(), p.lat()))
    }

    pub fn line(&self) -> &LineString<f64> {
        &self.line
    }

    pub fn checkpoints(&self) -> &[PlannedCheckpoint] {
        &self.checkpoints
    }

    pub fn end_ms(&self) -> Option<UnixMs> {
        self.end_ms
    }

    pub fn config(&self) -> &AdherenceConfig {
        &self.config
    }
}

/// A member's adherence, worst first: off route outranks a late checkpoint, which
/// outranks a skipped one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    OnRoute,
    /// On the corridor, but a checkpoint is overdue.
    Late,
    /// On the corridor, nothing overdue, but a checkpoint was skipped.
    Skipped,
    OffRoute,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::OnRoute => "on_route",
            MemberState::Late => "late",
            MemberState::Skipped => "skipped",
            MemberState::OffRoute => "off_route",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointState {
    /// Not visited yet, and not overdue.
    Pending,
    /// Planned arrival plus tolerance passed without an arrival.
    Late,
    Visited,
    /// A later checkpoint was visited, or the plan ended, before this one was.
    Skipped,
}

impl CheckpointState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointState::Pending => "pending",
            CheckpointState::Late => "late",
            CheckpointState::Visited => "visited",
            CheckpointState::Skipped => "skipped",
        }
    }
}

/// Where a member stands with one checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStatus {
    pub state: CheckpointState,
    /// The checkpoint became late before the member arrived.
    pub was_late: bool,
    /// First fix inside the radius, of the visit or of the stay in progress.
    pub arrived_ms: Option<UnixMs>,
    /// Last fix inside the radius of a visit, once the member has left.
    pub departed_ms: Option<UnixMs>,
}

/// A transition, returned by the call that caused it. The server raises alerts for
/// `OffRoute`, `CheckpointLate` and `CheckpointSkipped`; the others are records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdherenceEvent {
    /// Confirmed off route by the fix at `at_ms`; the departure began at `since_ms`.
    OffRoute {
        since_ms: UnixMs,
        at_ms: UnixMs,
        distance_m: f64,
    },
    /// Confirmed back by the fix at `at_ms`; the return began at `since_ms`.
    BackOnRoute {
        since_ms: UnixMs,
        at_ms: UnixMs,
        distance_m: f64,
    },
    CheckpointLate {
        checkpoint: usize,
        deadline_ms: UnixMs,
    },
    /// The dwell was reached at `at_ms`.
    CheckpointVisited {
        checkpoint: usize,
        arrived_ms: UnixMs,
        at_ms: UnixMs,
        was_late: bool,
    },
    CheckpointDeparted {
        checkpoint: usize,
        arrived_ms: UnixMs,
        departed_ms: UnixMs,
    },
    CheckpointSkipped {
        checkpoint: usize,
        at_ms: UnixMs,
    },
}

/// Consecutive fixes beyond a threshold, not yet confirmed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    first_ms: UnixMs,
    fixes: u32,
}

impl Run {
    /// Adds the fix at `t_ms` to the run (starting one if needed); true once confirmed.
    fn extend(run: &mut Option<Run>, t_ms: UnixMs, config: &AdherenceConfig) -> bool {
        let r = run.get_or_insert(Run { first_ms: t_ms, fixes: 0 });
        r.fixes += 1;
        r.fixes >= config.confirm_fixes || (t_ms - r.first_ms) as f64 >= config.confirm_s * 1000.0
    }
}

/// Per checkpoint, what the status does not show.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Stay {
    last_inside_ms: Option<UnixMs>,
    leaving: Option<Run>,
    /// Visited and left: later fixes no longer concern the checkpoint.
    closed: bool,
}

/// One member's adherence to one plan version. A new plan version starts a new one;
/// every call takes the [`Corridor`] it was made for.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberAdherence {
    off_route: bool,
    /// The fixes so far that would change `off_route`.
    run: Option<Run>,
    /// The member's first fix on this plan, and whether they have been on it since.
    first_fix_ms: Option<UnixMs>,
    joined: bool,
    last_fix_ms: Option<UnixMs>,
    distance_m: Option<f64>,
    checkpoints: Vec<CheckpointStatus>,
    stays: Vec<Stay>,
    ended: bool,
}

impl MemberAdherence {
    /// On route, every checkpoint pending.
    pub fn new(corridor: &Corridor) -> MemberAdherence {
        let pending =
            CheckpointStatus { state: CheckpointState::Pending, was_late: false, arrived_ms: None, departed_ms: None };
        let n = corridor.checkpoints.len();
        MemberAdherence {
            off_route: false,
            run: None,
            first_fix_ms: None,
            joined: false,
            last_fix_ms: None,
            distance_m: None,
            checkpoints: vec![pending; n],
            stays: vec![Stay::default(); n],
            ended: false,
        }
    }

    pub fn state(&self) -> MemberState {
        let any = |s| self.checkpoints.iter().any(|c| c.state == s);
        if self.off_route {
            MemberState::OffRoute
        } else if any(CheckpointState::Late) {
            MemberState::Late
        } else if any(CheckpointState::Skipped) {
            MemberState::Skipped
        } else {
            MemberState::OnRoute
        }
    }

    /// One status per checkpoint of the corridor, in plan order.
    pub fn checkpoint_status(&self) -> &[CheckpointStatus] {
        &self.checkpoints
    }

    /// Metres from the corridor of the last fix used.
    pub fn distance_m(&self) -> Option<f64> {
        self.distance_m
    }

    /// Whether the plan's end has passed; nothing changes after it.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Finds what the passing of time alone changes: checkpoints becoming late, and
    /// the end of the plan. Call it on a timer; [`MemberAdherence::update`] calls it too.
    pub fn tick(&mut self, corridor: &Corridor, now_ms: UnixMs) -> Vec<AdherenceEvent> {
        let mut out = Vec::new();
        self.tick_into(corridor, now_ms, &mut out);
        out
    }

    fn tick_into(&mut self, corridor: &Corridor, now_ms: UnixMs, out: &mut Vec<AdherenceEvent>) {
        if self.ended {
            return;
        }
        if corridor.end_ms.is_some_and(|end| now_ms >= end) {
            // One alert per checkpoint: those overdue at the end are skipped, not also late.
            self.ended = true;
            self.skip_before(self.checkpoints.len(), now_ms, out);
            return;
        }
        let tolerance_ms = (corridor.config.late_tolerance_s * 1000.0) as i64;
        for (i, (status, planned)) in self.checkpoints.iter_mut().zip(&corridor.checkpoints).enumerate() {
            let deadline_ms = planned.planned_arrival_ms.saturating_add(tolerance_ms);
            if status.state == CheckpointState::Pending && status.arrived_ms.is_none() && now_ms > deadline_ms {
                status.state = CheckpointState::Late;
                status.was_late = true;
                out.push(AdherenceEvent::CheckpointLate { checkpoint: i, deadline_ms });
            }
        }
    }

    /// Marks every checkpoint before `end` that is not visited as skipped.
    fn skip_before(&mut self, end: usize, at_ms: UnixMs, out: &mut Vec<AdherenceEvent>) {
        for (i, status) in self.checkpoints[..end].iter_mut().enumerate() {
            if matches!(status.state, CheckpointState::Pending | CheckpointState::Late) {
                status.state = CheckpointState::Skipped;
                out.push(AdherenceEvent::CheckpointSkipped { checkpoint: i, at_ms });
            }
        }
    }

    /// Applies one fix of the member (with the accuracy the device reported, metres)
    /// and returns the transitions it caused, in order. A fix older than the last one
    /// used, or less accurate than `max_accuracy_m`, changes nothing but the clock.
    pub fn update(&mut self, corridor: &Corridor, fix: Fix, accuracy_m: Option<f64>) -> Vec<AdherenceEvent> {
        let mut out = Vec::new();
        let t = fix.time_ms;
        self.tick_into(corridor, t, &mut out);
        let config = &corridor.config;
        let poor = accuracy_m.is_some_and(|a| a.is_nan() || a > config.max_accuracy_m);
        if self.ended || poor || self.last_fix_ms.is_some_and(|last| t < last) {
            return out;
        }
        self.last_fix_ms = Some(t);

        let distance_m = corridor.distance_m(fix.position);
        self.distance_m = Some(distance_m);
        let first_ms = *self.first_fix_ms.get_or_insert(t);
        self.joined |= distance_m <= config.leave_m;
        let joining = !self.joined && ((t - first_ms) as f64) < config.join_grace_s * 1000.0;
        let beyond =
            if self.off_route { distance_m < config.return_m } else { distance_m > config.leave_m && !joining };
        if !beyond {
            self.run = None;
        } else {
            let since_ms = self.run.map_or(t, |r| r.first_ms);
            if Run::extend(&mut self.run, t, config) {
                self.run = None;
                self.off_route = !self.off_route;
                out.push(if self.off_route {
                    AdherenceEvent::OffRoute { since_ms, at_ms: t, distance_m }
                } else {
                    AdherenceEvent::BackOnRoute { since_ms, at_ms: t, distance_m }
                });
            }
        }

        let mut last_visited = None;
        let per_checkpoint = corridor.checkpoints.iter().zip(self.checkpoints.iter_mut()).zip(self.stays.iter_mut());
        for (i, ((planned, status), stay)) in per_checkpoint.enumerate() {
            if stay.closed {
                continue;
            }
            if fix.position.haversine_m(planned.position) <= planned.radius_m {
                stay.leaving = None;
                stay.last_inside_ms = Some(t);
                let arrived_ms = *status.arrived_ms.get_or_insert(t);
                if status.state != CheckpointState::Visited && (t - arrived_ms) as f64 >= planned.min_dwell_s * 1000.0 {
                    status.state = CheckpointState::Visited;
                    out.push(AdherenceEvent::CheckpointVisited {
                        checkpoint: i,
                        arrived_ms,
                        at_ms: t,
                        was_late: status.was_late,
                    });
                    last_visited = Some(i);
                }
            } else if let Some(arrived_ms) = status.arrived_ms {
                if Run::extend(&mut stay.leaving, t, config) {
                    stay.leaving = None;
                    if status.state == CheckpointState::Visited {
                        let departed_ms = stay.last_inside_ms.unwrap_or(arrived_ms);
                        status.departed_ms = Some(departed_ms);
                        stay.closed = true;
                        out.push(AdherenceEvent::CheckpointDeparted { checkpoint: i, arrived_ms, departed_ms });
                    } else {
                        // Left before the dwell was reached: not a visit.
                        status.arrived_ms = None;
                        stay.last_inside_ms = None;
                    }
                }
            }
        }
        if let Some(i) = last_visited {
            self.skip_before(i, t, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::LocalProjection;

    const T0: UnixMs = 1_800_000_000_000;
    const ORIGIN: (f64, f64) = (107.20, 30.70);

    /// The position `x_m` east and `y_m` north of the origin, in the projection the
    /// corridor measures in.
    fn at(x_m: f64, y_m: f64) -> Position {
        let [m_per_deg_lon, m_per_deg_lat] = LocalProjection::at_lat(ORIGIN.1).project(1.0, 1.0);
        Position::new(ORIGIN.0 + x_m / m_per_deg_lon, ORIGIN.1 + y_m / m_per_deg_lat).unwrap()
    }

    const MIN: i64 = 60_000;

    /// An L-shaped route: 2 km east, then 1 km north; checkpoints at 500 m and 1500 m
    /// east and 800 m up the northern leg, planned at 10, 25 and 40 minutes, each 50 m
    /// across with a 2-minute dwell; the plan ends after an hour.
    fn corridor() -> Corridor {
        let line = [at(0.0, 0.0), at(2000.0, 0.0), at(2000.0, 1000.0)];
        let cp = |x, y, minutes| PlannedCheckpoint {
            position: at(x, y),
            radius_m: 50.0,
            min_dwell_s: 120.0,
            planned_arrival_ms: T0 + minutes * MIN,
        };
        let checkpoints = vec![cp(500.0, 0.0, 10), cp(1500.0, 0.0, 25), cp(2000.0, 800.0, 40)];
        Corridor::new(&line, checkpoints, Some(T0 + 60 * MIN), &AdherenceConfig::default()).unwrap()
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// A fix `x_m`, `y_m` from the origin, `t_s` after T0, with an accuracy.
        Fix(f64, f64, i64, Option<f64>),
        Tick(i64),
    }

    /// Builds a member's movements: walking at 1.4 m/s with a fix every `step_s`
    /// seconds and up to 25 m of deterministic GPS noise on each axis.
    struct Walk {
        x: f64,
        y: f64,
        t_s: i64,
        step_s: i64,
        k: u32,
        steps: Vec<Step>,
    }

    impl Walk {
        fn new() -> Walk {
            Walk { x: 0.0, y: 0.0, t_s: 0, step_s: 10, k: 0, steps: Vec::new() }
        }

        fn every(mut self, step_s: i64) -> Walk {
            self.step_s = step_s;
            self
        }

        /// A fix where the member is now, with noise.
        fn fix(&mut self) {
            self.k += 1;
            let k = f64::from(self.k);
            let (nx, ny) = (25.0 * (k * 1.7).sin(), 25.0 * (k * 2.3).cos());
            self.steps.push(Step::Fix(self.x + nx, self.y + ny, self.t_s, None));
            self.t_s += self.step_s;
        }

        fn to(mut self, x: f64, y: f64) -> Walk {
            let d = ((x - self.x).powi(2) + (y - self.y).powi(2)).sqrt();
            let n = (d / (1.4 * self.step_s as f64)).ceil().max(1.0) as usize;
            let (x0, y0) = (self.x, self.y);
            for s in 1..=n {
                let f = s as f64 / n as f64;
                (self.x, self.y) = (x0 + (x - x0) * f, y0 + (y - y0) * f);
                self.fix();
            }
            self
        }

        fn stay(mut self, s: i64) -> Walk {
            let end = self.t_s + s;
            while self.t_s <= end {
                self.fix();
            }
            self
        }

        /// Exactly placed fixes, without noise, `step_s` apart.
        fn exact(mut self, x: f64, y: f64, n: usize, accuracy_m: Option<f64>) -> Walk {
            for _ in 0..n {
                self.steps.push(Step::Fix(x, y, self.t_s, accuracy_m));
                self.t_s += self.step_s;
            }
            self
        }

        fn jump_to(mut self, x: f64, y: f64, t_s: i64) -> Walk {
            (self.x, self.y, self.t_s) = (x, y, t_s);
            self
        }

        fn tick(mut self, t_s: i64) -> Walk {
            self.steps.push(Step::Tick(t_s));
            self.t_s = self.t_s.max(t_s);
            self
        }

        fn done(self) -> Vec<Step> {
            self.steps
        }
    }

    fn name(e: &AdherenceEvent) -> String {
        match e {
            AdherenceEvent::OffRoute { .. } => "off_route".into(),
            AdherenceEvent::BackOnRoute { .. } => "back_on_route".into(),
            AdherenceEvent::CheckpointLate { checkpoint, .. } => format!("late {checkpoint}"),
            AdherenceEvent::CheckpointVisited { checkpoint, was_late: false, .. } => format!("visited {checkpoint}"),
            AdherenceEvent::CheckpointVisited { checkpoint, was_late: true, .. } => {
                format!("visited late {checkpoint}")
            }
            AdherenceEvent::CheckpointDeparted { checkpoint, .. } => format!("departed {checkpoint}"),
            AdherenceEvent::CheckpointSkipped { checkpoint, .. } => format!("skipped {checkpoint}"),
        }
    }

    fn run(corridor: &Corridor, steps: &[Step]) -> (MemberAdherence, Vec<AdherenceEvent>) {
        let mut member = MemberAdherence::new(corridor);
        let mut events = Vec::new();
        for step in steps {
            events.extend(match *step {
                Step::Fix(x, y, t_s, accuracy_m) => {
                    member.update(corridor, Fix { position: at(x, y), time_ms: T0 + t_s * 1000 }, accuracy_m)
                }
                Step::Tick(t_s) => member.tick(corridor, T0 + t_s * 1000),
            });
        }
        (member, events)
    }

    /// Walks the whole route, dwelling `dwell_s` at each checkpoint.
    fn whole_route(dwell_s: i64) -> Walk {
        Walk::new()
            .to(500.0, 0.0)
            .stay(dwell_s)
            .to(1500.0, 0.0)
            .stay(dwell_s)
            .to(2000.0, 0.0)
            .to(2000.0, 800.0)
            .stay(dwell_s)
            .to(2000.0, 1000.0)
            .stay(60)
    }

    /// (case, steps, events, member state, checkpoint states)
    type Row = (&'static str, Vec<Step>, Vec<&'static str>, MemberState, [CheckpointState; 3]);

    #[test]
    fn adherence_table() {
        use CheckpointState::{Late, Pending, Skipped, Visited};
        let c = corridor();
        let rows: Vec<Row> = vec![
            (
                "walking the corridor raises no alert",
                whole_route(150).done(),
                vec!["visited 0", "departed 0", "visited 1", "departed 1", "visited 2", "departed 2"],
                MemberState::OnRoute,
                [Visited; 3],
            ),
            (
                "a single noisy fix 200 m off raises nothing",
                Walk::new().to(300.0, 0.0).exact(310.0, 200.0, 1, None).to(400.0, 0.0).done(),
                vec![],
                MemberState::OnRoute,
                [Pending; 3],
            ),
            (
                "two noisy fixes in a row raise nothing",
                Walk::new().to(300.0, 0.0).exact(310.0, 220.0, 2, None).to(400.0, 0.0).done(),
                vec![],
                MemberState::OnRoute,
                [Pending; 3],
            ),
            (
                "leaving for real raises off_route once, not per fix",
                Walk::new().to(300.0, 0.0).to(300.0, 600.0).stay(200).done(),
                vec!["off_route"],
                MemberState::OffRoute,
                [Pending; 3],
            ),
            (
                "a member starting away from a new plan has time to join it",
                Walk::new().jump_to(300.0, 600.0, 0).stay(120).to(300.0, 0.0).to(400.0, 0.0).done(),
                vec![],
                MemberState::OnRoute,
                [Pending; 3],
            ),
            (
                "a member who never joins is off route once the grace has passed, once",
                Walk::new().jump_to(300.0, 600.0, 0).stay(700).done(),
                vec!["off_route"],
                MemberState::OffRoute,
                [Pending; 3],
            ),
            (
                "once joined, leaving is off route at once, grace or not",
                Walk::new().to(300.0, 0.0).to(300.0, 600.0).stay(60).done(),
                vec!["off_route"],
                MemberState::OffRoute,
                [Pending; 3],
            ),
            (
                "returning raises back_on_route once",
                Walk::new().to(300.0, 0.0).to(300.0, 300.0).stay(60).to(300.0, 0.0).to(450.0, 0.0).done(),
                vec!["off_route", "back_on_route"],
                MemberState::OnRoute,
                [Pending; 3],
            ),
            (
                "between return_m and leave_m an off-route member stays off route",
                Walk::new().to(300.0, 0.0).exact(300.0, 400.0, 3, None).exact(300.0, 120.0, 20, None).done(),
                vec!["off_route"],
                MemberState::OffRoute,
                [Pending; 3],
            ),
            (
                "a noisy fix near the corridor does not bring an off-route member back",
                Walk::new()
                    .exact(300.0, 400.0, 3, None)
                    .exact(300.0, 10.0, 1, None)
                    .exact(300.0, 400.0, 5, None)
                    .done(),
                vec!["off_route"],
                MemberState::OffRoute,
                [Pending; 3],
            ),
            (
                "sparse fixes confirm a departure by time",
                Walk::new().every(90).exact(100.0, 0.0, 1, None).exact(100.0, 300.0, 2, None).done(),
                vec!["off_route"],
                MemberState::OffRoute,
                [Pending; 3],
            ),
            (
                "poor-accuracy fixes are ignored",
                Walk::new()
                    .to(300.0, 0.0)
                    .exact(300.0, 400.0, 10, Some(300.0))
                    .exact(300.0, 400.0, 10, Some(f64::NAN))
                    .done(),
                vec![],
                MemberState::OnRoute,
                [Pending; 3],
            ),
            (
                "a poor fix neither counts towards a departure nor interrupts it",
                Walk::new()
                    .to(300.0, 0.0)
                    .exact(300.0, 400.0, 2, Some(20.0))
                    .exact(300.0, 0.0, 1, Some(250.0))
                    .exact(300.0, 400.0, 1, Some(20.0))
                    .done(),
                vec!["off_route"],
                MemberState::OffRoute,
                [Pending; 3],
            ),
            (
                // Inside the 50 m radius for about 80 s of the 120 s needed.
                "dwell shorter than min_dwell is not a visit, and the checkpoint falls late",
                Walk::new().to(500.0, 0.0).stay(10).to(900.0, 0.0).tick(21 * 60).done(),
                vec!["late 0"],
                MemberState::Late,
                [Late, Pending, Pending],
            ),
            (
                "a silent member is late, then skips the checkpoint by visiting the next",
                Walk::new().tick(15 * 60).tick(20 * 60 + 1).jump_to(1500.0, 0.0, 22 * 60).stay(130).done(),
                vec!["late 0", "visited 1", "skipped 0"],
                MemberState::Skipped,
                [Skipped, Visited, Pending],
            ),
            (
                "a late arrival is still a visit",
                Walk::new().tick(21 * 60).jump_to(500.0, 0.0, 22 * 60).stay(130).done(),
                vec!["late 0", "visited late 0"],
                MemberState::OnRoute,
                [Visited, Pending, Pending],
            ),
            (
                "the end of the plan skips what is left, once",
                Walk::new()
                    .to(500.0, 0.0)
                    .stay(130)
                    .to(700.0, 0.0)
                    .tick(60 * 60)
                    .tick(61 * 60)
                    .to(1500.0, 0.0)
                    .stay(200)
                    .done(),
                vec!["visited 0", "departed 0", "skipped 1", "skipped 2"],
                MemberState::Skipped,
                [Visited, Skipped, Skipped],
            ),
            (
                "a noisy fix during a dwell does not cut it short",
                Walk::new()
                    .jump_to(500.0, 0.0, 0)
                    .exact(500.0, 0.0, 6, None)
                    .exact(500.0, 200.0, 1, None)
                    .exact(500.0, 0.0, 7, None)
                    .done(),
                vec!["visited 0"],
                MemberState::OnRoute,
                [Visited, Pending, Pending],
            ),
            (
                "a fix older than the last one used is ignored",
                vec![
                    Step::Fix(100.0, 0.0, 100, None),
                    Step::Fix(100.0, 500.0, 50, None),
                    Step::Fix(100.0, 500.0, 60, None),
                    Step::Fix(100.0, 500.0, 70, None),
                ],
                vec![],
                MemberState::OnRoute,
                [Pending; 3],
            ),
        ];
        for (case, steps, events, state, checkpoints) in rows {
            let (member, got) = run(&c, &steps);
            let got: Vec<String> = got.iter().map(name).collect();
            assert_eq!(got, events, "{case}");
            assert_eq!(member.state(), state, "{case}");
            let states: Vec<CheckpointState> = member.checkpoint_status().iter().map(|s| s.state).collect();
            assert_eq!(states, checkpoints, "{case}");
        }
    }

    #[test]
    fn visits_record_arrival_and_departure_and_off_route_its_start() {
        let c = corridor();
        let steps = Walk::new().jump_to(500.0, 0.0, 0).exact(500.0, 0.0, 14, None).exact(500.0, 400.0, 3, None).done();
        let (member, events) = run(&c, &steps);
        let s = member.checkpoint_status()[0];
        // Inside from 0 s to 130 s, visited when the dwell reached 120 s.
        assert_eq!((s.arrived_ms, s.departed_ms, s.was_late), (Some(T0), Some(T0 + 130_000), false));
        assert_eq!(
            events,
            [
                AdherenceEvent::CheckpointVisited {
                    checkpoint: 0,
                    arrived_ms: T0,
                    at_ms: T0 + 120_000,
                    was_late: false
                },
                // The third fix away confirms both; the corridor's event comes first.
                AdherenceEvent::OffRoute {
                    since_ms: T0 + 140_000,
                    at_ms: T0 + 160_000,
                    distance_m: events_distance(&events)
                },
                AdherenceEvent::CheckpointDeparted { checkpoint: 0, arrived_ms: T0, departed_ms: T0 + 130_000 },
            ]
        );
        assert!((events_distance(&events) - 400.0).abs() < 0.5);
        assert!((member.distance_m().unwrap() - 400.0).abs() < 0.5);
        // Deadlines come from the tolerance: 10 minutes after the planned arrival.
        let late = MemberAdherence::new(&c).tick(&c, T0 + 20 * MIN + 1);
        assert_eq!(late, [AdherenceEvent::CheckpointLate { checkpoint: 0, deadline_ms: T0 + 20 * MIN }]);
        assert!(MemberAdherence::new(&c).tick(&c, T0 + 20 * MIN).is_empty(), "at the deadline, not yet late");
    }

    fn events_distance(events: &[AdherenceEvent]) -> f64 {
        events
            .iter()
            .find_map(|e| match e {
                AdherenceEvent::OffRoute { distance_m, .. } => Some(*distance_m),
                _ => None,
            })
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn corridor_distance_is_metres_to_the_nearest_segment() {
        let c = corridor();
        // (point, metres)
        let rows =
            [((1000.0, 0.0), 0.0), ((1000.0, -150.0), 150.0), ((2300.0, 500.0), 300.0), ((2300.0, -400.0), 500.0)];
        for ((x, y), d) in rows {
            assert!((c.distance_m(at(x, y)) - d).abs() < 0.5, "({x}, {y}): {}", c.distance_m(at(x, y)));
        }
    }

    #[test]
    fn bad_inputs_name_their_field() {
        let d = AdherenceConfig::default();
        let line = [at(0.0, 0.0), at(100.0, 0.0)];
        let cp =
            PlannedCheckpoint { position: at(50.0, 0.0), radius_m: 30.0, min_dwell_s: 60.0, planned_arrival_ms: T0 };
        // (line, checkpoint, config, field)
        let rows = [
            (&line[..1], cp, d, "line"),
            (&line[..], PlannedCheckpoint { radius_m: 0.0, ..cp }, d, "radius_m"),
            (&line[..], PlannedCheckpoint { min_dwell_s: f64::NAN, ..cp }, d, "min_dwell_s"),
            (&line[..], cp, AdherenceConfig { leave_m: 0.0, ..d }, "leave_m"),
            (&line[..], cp, AdherenceConfig { return_m: 200.0, ..d }, "return_m"),
            (&line[..], cp, AdherenceConfig { confirm_fixes: 0, ..d }, "confirm_fixes"),
            (&line[..], cp, AdherenceConfig { confirm_s: 0.0, ..d }, "confirm_s"),
            (&line[..], cp, AdherenceConfig { max_accuracy_m: f64::NAN, ..d }, "max_accuracy_m"),
            (&line[..], cp, AdherenceConfig { late_tolerance_s: -1.0, ..d }, "late_tolerance_s"),
        ];
        for (line, cp, config, field) in rows {
            let err = Corridor::new(line, vec![cp], None, &config).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
        assert!(Corridor::new(&line, vec![cp], None, &d).is_ok());
    }
}
