//! Lines on the county map: a polyline with its haversine lengths, where a point lies
//! along it, and the local planar steps the simulated units take.

use geo::{Distance, Haversine, Point};

/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m); planar
/// approximations below scale longitude by the cosine of the latitude.
pub(crate) const M_PER_DEG_LAT: f64 = 111_195.0;
/// Points of a line this much farther than the nearest one still count as "nearest",
/// so that a line passing the same place twice (out and back on one road) is joined
/// where the walk prefers (its start, or where the member left it), metres.
pub(super) const JOIN_SLACK_M: f64 = 15.0;

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
    pub(crate) fn is_closed(&self) -> bool {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) if self.points.len() > 2 => Haversine.distance(*a, *b) < 30.0,
            _ => false,
        }
    }

    /// Position and heading (degrees) at `d` metres along the line, clamped to its ends.
    pub(crate) fn at(&self, d: f64) -> (Point<f64>, f64) {
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

/// The point `east_m` east and `north_m` north of `p` (local equirectangular).
pub(super) fn offset(p: Point<f64>, east_m: f64, north_m: f64) -> Point<f64> {
    let kx = M_PER_DEG_LAT * p.y().to_radians().cos();
    Point::new(p.x() + east_m / kx, p.y() + north_m / M_PER_DEG_LAT)
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

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
}
