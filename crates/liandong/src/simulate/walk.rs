//! A unit's progress along a track: its pace, the stops where it stays a while, and
//! what it does at the end (round again, back, or on to what follows).

use std::sync::Arc;

use geo::Point;

use super::track::Track;

/// Walking pace of a patrol, m/s.
pub(crate) const PATROL_SPEED_MPS: f64 = 1.4;

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
    pub(super) offset_m: f64,
    pub(super) dwell_s: f64,
}

/// A member's progress along one track.
#[derive(Clone)]
pub(crate) struct Walk {
    pub(crate) track: Arc<Track>,
    /// Ordered by offset.
    pub(super) stops: Arc<[Stop]>,
    pub(super) end: End,
    pub(crate) speed_mps: f64,
    pub(super) offset_m: f64,
    /// The first stop not yet reached.
    pub(super) next_stop: usize,
    pub(super) dwell_left_s: f64,
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

#[cfg(test)]
mod tests {
    use geo::{Distance, Haversine};

    use super::super::test_support::*;
    use super::*;

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
}
