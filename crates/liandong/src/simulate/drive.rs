//! Units answering an incident: the way there by road (or a straight line where no
//! road leads), a pace the server's jump filter accepts, and the errand's motion there
//! and back.

use geo::Point;
use liandong_core::road::RoadGraph;
use liandong_core::Position;

use super::track::{step_towards, Track};
use super::walk::{Walk, PATROL_SPEED_MPS};

/// Speeds of a unit answering an incident: the road planner's pace clamped to these,
/// and the pace of a straight line where no road leads, m/s.
pub(super) const MAX_RESPONSE_SPEED_MPS: f64 = 20.0;
const STRAIGHT_RESPONSE_SPEED_MPS: f64 = 8.0;
/// The fastest a unit may seem to move in real time, m/s: under the server's GPS jump
/// filter (70 m/s by default), which judges fixes by their wall-clock timestamps, so
/// that a unit driving at a high speedup is not frozen on the map as a "jump".
const MAX_APPARENT_SPEED_MPS: f64 = 60.0;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use geo::{Distance, Haversine};

    use super::super::test_support::*;
    use super::super::track::offset;
    use super::*;

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
}
