//! The simulated units and where they are: patrol members on their walks (joining a new
//! plan or diversion without a jump), post officers circling their posts, and the units
//! away on an incident, all under one lock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use geo::Point;

use super::drive::{advance_errand, Errand};
use super::plan::PlanRoute;
use super::track::{Track, JOIN_SLACK_M, M_PER_DEG_LAT};
use super::walk::{End, Walk, PATROL_SPEED_MPS};

/// How far a post officer strays from the post, metres.
const OFFICER_RADIUS_M: f64 = 300.0;
/// A member this close to a new line steps onto it; farther away, they walk to it first.
const SNAP_M: f64 = 5.0;

/// A patrol member: the walk they are on, and what comes after it.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) walk: Walk,
    /// Where the member goes when `walk`, an approach leg, ends.
    pub(super) then: Option<Walk>,
    /// The walk a diversion interrupted, taken up again when the diversion ends.
    pub(super) resume: Option<Walk>,
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
    pub(super) fn take(&mut self, route: &PlanRoute) {
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

impl Field {
    /// Moves every unit on by `dt_s` simulated seconds (`t` since the start) and answers
    /// each device's position, speed (m/s) and heading, by device index.
    pub(super) fn advance(&mut self, devices: &[SimDevice], t: f64, dt_s: f64) -> Vec<(Point<f64>, f64, f64)> {
        let Field { members, errands, positions, .. } = self;
        let mut fixes = Vec::with_capacity(devices.len());
        for (i, d) in devices.iter().enumerate() {
            let away = errands.contains_key(&i);
            let beat = match &d.motion {
                Motion::Patrol(k) => {
                    // A member on an incident leaves the patrol where it was.
                    if !away {
                        members[*k].advance(dt_s);
                    }
                    members[*k].position()
                }
                Motion::Around { centre, phase } => around(*centre, *phase, t),
            };
            let fix = match errands.get_mut(&i).map(|e| advance_errand(e, dt_s, beat.0)) {
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

#[cfg(test)]
mod tests {
    use geo::{Distance, Haversine};

    use super::super::drive::{way, MAX_RESPONSE_SPEED_MPS};
    use super::super::plan::PlanWaypoint;
    use super::super::test_support::*;
    use super::super::track::offset;
    use super::*;

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
