//! Track fusion across cameras: successive reads of one plate or person by different
//! cameras become a track, a line on the map with its last position, heading and speed.
//!
//! Distances and bearings are on the sphere (haversine, the same mean radius as
//! [`Position::haversine_m`]); cameras are at most a few tens of kilometres apart in
//! the county, where the sphere is within 0.5 % of the ellipsoid.

use std::collections::HashMap;

use geo::{Bearing, Distance, Haversine};

use crate::{Position, UnixMs};

/// Two positions closer than this are the same place: cameras on one pole or at one
/// checkpoint share coordinates up to the rounding of the map, and a bearing between
/// them would be noise.
pub const SAME_PLACE_M: f64 = 1.0;

/// One read of a plate or a person by a camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub time_ms: UnixMs,
    pub camera_id: String,
    pub position: Position,
}

/// A fused track.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Time order, consecutive reads by the same camera collapsed into one (keep the latest time of the run).
    pub points: Vec<Sighting>,
    /// Initial geodesic bearing (degrees clockwise from north, 0..360) from the previous distinct place to the last one; None with one place.
    pub heading_deg: Option<f64>,
    /// 8-point compass name of heading_deg: "N","NE","E","SE","S","SW","W","NW".
    pub heading: Option<&'static str>,
    /// Haversine metres / elapsed time between those two points, km/h; None if no time elapsed.
    pub speed_kmh: Option<f64>,
    /// Sum of the haversine metres between consecutive points.
    pub length_m: f64,
}

impl Track {
    /// The latest sighting. A track built by [`fuse`] or [`TrackBook`] is never empty.
    pub fn last(&self) -> &Sighting {
        self.points.last().expect("a track has at least one point")
    }
}

/// The 8-point compass name of a bearing in degrees (any value; it is wrapped to 0..360).
pub fn compass8(bearing_deg: f64) -> &'static str {
    const NAMES: [&str; 8] = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
    // Each name covers 45°, centred on its direction: N is 337.5..22.5.
    let sector = ((bearing_deg.rem_euclid(360.0) + 22.5) / 45.0).floor() as usize % 8;
    NAMES[sector]
}

/// Fuses sightings in any order into a track (None when empty).
pub fn fuse(mut sightings: Vec<Sighting>) -> Option<Track> {
    // Stable, so that reads with equal times keep the order they were given in.
    sightings.sort_by_key(|s| s.time_ms);
    collapse_runs(&mut sightings);
    from_collapsed(sightings)
}

/// Replaces each run of consecutive reads by one camera with its latest read: a car
/// parked in front of a camera is one place on the track, not a hundred.
fn collapse_runs(sorted: &mut Vec<Sighting>) {
    let mut out: Vec<Sighting> = Vec::with_capacity(sorted.len());
    for s in sorted.drain(..) {
        match out.last_mut() {
            Some(prev) if prev.camera_id == s.camera_id => *prev = s,
            _ => out.push(s),
        }
    }
    *sorted = out;
}

/// A track from points already in time order with runs collapsed.
fn from_collapsed(points: Vec<Sighting>) -> Option<Track> {
    let last = points.last()?;
    let length_m = points.windows(2).map(|w| metres(w[0].position, w[1].position)).sum();
    // Heading and speed come from the last move between two places; a read by a second
    // camera at the same spot says nothing about direction.
    let prev = points.iter().rev().skip(1).find(|s| metres(s.position, last.position) > SAME_PLACE_M);
    let (heading_deg, speed_kmh) = match prev {
        None => (None, None),
        Some(prev) => {
            let bearing = Haversine.bearing(prev.position.to_point(), last.position.to_point());
            let elapsed_ms = last.time_ms.saturating_sub(prev.time_ms);
            // m/ms to km/h: × 1000 ms/s × 3600 s/h ÷ 1000 m/km.
            let speed = (elapsed_ms > 0).then(|| metres(prev.position, last.position) / elapsed_ms as f64 * 3_600.0);
            (Some(bearing), speed)
        }
    };
    Some(Track { heading: heading_deg.map(compass8), heading_deg, speed_kmh, length_m, points })
}

fn metres(a: Position, b: Position) -> f64 {
    Haversine.distance(a.to_point(), b.to_point())
}

/// Recent sightings of watched plates/persons, bounded in memory.
///
/// Each key's sightings are kept in time order with same-camera runs already collapsed,
/// so `max_points` bounds the places of a track, not the raw reads: a car parked in
/// front of one camera does not push its earlier path out.
#[derive(Debug, Clone)]
pub struct TrackBook {
    max_points: usize,
    max_age_ms: i64,
    max_tracks: usize,
    tracks: HashMap<String, Vec<Sighting>>,
}

impl TrackBook {
    /// Keeps at most `max_points` sightings per key, none older than `max_age_ms` before the key's newest, and at most `max_tracks` keys (evicting the one with the oldest newest sighting).
    ///
    /// `max_points` and `max_tracks` below 1 are taken as 1, so that a recorded sighting
    /// is always kept.
    pub fn new(max_points: usize, max_age_ms: i64, max_tracks: usize) -> TrackBook {
        TrackBook {
            max_points: max_points.max(1),
            max_age_ms: max_age_ms.max(0),
            max_tracks: max_tracks.max(1),
            tracks: HashMap::new(),
        }
    }

    /// Records a sighting of `key` (e.g. "plate:川S12345") and returns the fused track including it.
    ///
    /// A sighting older than the key's newest is put in its place in time; if that is
    /// beyond `max_age_ms` it is dropped at once and the track returned without it.
    pub fn record(&mut self, key: &str, s: Sighting) -> Track {
        let points = match self.tracks.get_mut(key) {
            Some(points) => points,
            None => self.tracks.entry(key.to_owned()).or_default(),
        };
        let at = points.partition_point(|p| p.time_ms <= s.time_ms);
        points.insert(at, s);
        collapse_runs(points);
        let newest = points.last().expect("just inserted").time_ms;
        let max_age_ms = self.max_age_ms;
        points.retain(|p| newest.saturating_sub(p.time_ms) <= max_age_ms);
        let excess = points.len().saturating_sub(self.max_points);
        points.drain(..excess);
        let track = from_collapsed(points.clone()).expect("the newest point is never dropped");

        if self.tracks.len() > self.max_tracks {
            self.evict_stalest(key);
        }
        track
    }

    /// Drops the key, other than `keep`, whose newest sighting is oldest. A linear scan:
    /// it runs only when a new key arrives at a full book, and the book is a few
    /// thousand keys at most.
    fn evict_stalest(&mut self, keep: &str) {
        let stalest = self
            .tracks
            .iter()
            .filter(|(k, _)| k.as_str() != keep)
            .map(|(k, points)| (points.last().map_or(UnixMs::MIN, |p| p.time_ms), k))
            .min()
            .map(|(_, k)| k.clone());
        if let Some(k) = stalest {
            self.tracks.remove(&k);
        }
    }

    pub fn get(&self, key: &str) -> Option<Track> {
        self.tracks.get(key).and_then(|points| from_collapsed(points.clone()))
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Near Dazhu's county seat.
    const LON: f64 = 107.2;
    const LAT: f64 = 30.73;

    fn s(t_s: i64, cam: &str, lon: f64, lat: f64) -> Sighting {
        Sighting { time_ms: t_s * 1000, camera_id: cam.into(), position: Position::new(lon, lat).unwrap() }
    }

    /// Expected points as (camera, t_s).
    type Points = Vec<(&'static str, i64)>;

    fn cams(t: &Track) -> Vec<(&str, i64)> {
        t.points.iter().map(|p| (p.camera_id.as_str(), p.time_ms / 1000)).collect()
    }

    #[test]
    fn heading_rows() {
        // (name, from, to, expected bearing, compass)
        let d = 0.01;
        let rows = [
            ("due north", (LON, LAT), (LON, LAT + d), 0.0, "N"),
            ("due east", (LON, LAT), (LON + d, LAT), 90.0, "E"),
            ("north-east", (LON, LAT), (LON + d, LAT + d), 40.7, "NE"),
            ("due south", (LON, LAT + d), (LON, LAT), 180.0, "S"),
            ("south-west", (LON + d, LAT + d), (LON, LAT), 220.7, "SW"),
            ("due west", (LON + d, LAT), (LON, LAT), 270.0, "W"),
            ("north-west", (LON + d, LAT), (LON, LAT + d), 319.3, "NW"),
        ];
        for (name, a, b, bearing, compass) in rows {
            let t = fuse(vec![s(0, "a", a.0, a.1), s(60, "b", b.0, b.1)]).unwrap();
            let got = t.heading_deg.unwrap();
            assert!((got - bearing).abs() < 0.1, "{name}: {got}");
            assert_eq!(t.heading, Some(compass), "{name}");
        }
    }

    #[test]
    fn compass_sector_edges() {
        let rows = [
            (0.0, "N"),
            (22.49, "N"),
            (22.5, "NE"),
            (67.5, "E"),
            (112.5, "SE"),
            (157.5, "S"),
            (202.5, "SW"),
            (247.5, "W"),
            (292.5, "NW"),
            (337.49, "NW"),
            (337.5, "N"),
            (359.99, "N"),
            (360.0, "N"),
            (-90.0, "W"),
        ];
        for (deg, name) in rows {
            assert_eq!(compass8(deg), name, "{deg}");
        }
    }

    #[test]
    fn ten_km_in_ten_minutes_is_sixty_kmh() {
        // 10 km due north on the geo mean sphere, whose degree of latitude is 111.195 km.
        let dlat = 10_000.0 / 111_194.93;
        let t = fuse(vec![s(0, "a", LON, LAT), s(600, "b", LON, LAT + dlat)]).unwrap();
        assert!((t.length_m - 10_000.0).abs() < 1.0, "{}", t.length_m);
        assert!((t.speed_kmh.unwrap() - 60.0).abs() < 0.01, "{:?}", t.speed_kmh);
    }

    /// (name, input, expected (camera, t_s) points, heading, whether there is a speed)
    type ShapeRow = (&'static str, Vec<Sighting>, Points, Option<&'static str>, bool);

    #[test]
    fn shape_rows() {
        let e = LON + 0.01;
        let rows: [ShapeRow; 6] = [
            ("one sighting", vec![s(5, "a", LON, LAT)], vec![("a", 5)], None, false),
            (
                "same-camera runs collapse to their latest read",
                vec![
                    s(0, "a", LON, LAT),
                    s(10, "a", LON, LAT),
                    s(20, "b", e, LAT),
                    s(30, "b", e, LAT),
                    s(40, "a", LON, LAT),
                ],
                vec![("a", 10), ("b", 30), ("a", 40)],
                Some("W"),
                true,
            ),
            (
                "out of order input is sorted",
                vec![s(30, "c", e, LAT + 0.01), s(10, "a", LON, LAT), s(20, "b", e, LAT)],
                vec![("a", 10), ("b", 20), ("c", 30)],
                Some("N"),
                true,
            ),
            (
                "a second camera at the same place does not give a heading",
                vec![s(0, "a", LON, LAT), s(10, "a2", LON, LAT)],
                vec![("a", 0), ("a2", 10)],
                None,
                false,
            ),
            (
                "heading looks back past a camera at the same place",
                vec![s(0, "w", LON - 0.01, LAT), s(10, "a", LON, LAT), s(20, "a2", LON, LAT)],
                vec![("w", 0), ("a", 10), ("a2", 20)],
                Some("E"),
                true,
            ),
            (
                "no time elapsed: heading but no speed",
                vec![s(0, "a", LON, LAT), s(0, "b", LON, LAT - 0.01)],
                vec![("a", 0), ("b", 0)],
                Some("S"),
                false,
            ),
        ];
        for (name, input, points, heading, has_speed) in rows {
            let t = fuse(input).unwrap();
            assert_eq!(cams(&t), points, "{name}");
            assert_eq!(t.heading, heading, "{name}");
            assert_eq!(t.speed_kmh.is_some(), has_speed, "{name}");
            assert_eq!(t.last().time_ms / 1000, points.last().unwrap().1, "{name}");
        }
        assert!(fuse(Vec::new()).is_none());
    }

    #[test]
    fn length_sums_every_leg() {
        let t = fuse(vec![s(0, "a", LON, LAT), s(10, "b", LON, LAT + 0.01), s(20, "c", LON, LAT)]).unwrap();
        let leg = Position::new(LON, LAT).unwrap().haversine_m(Position::new(LON, LAT + 0.01).unwrap());
        assert!((t.length_m - 2.0 * leg).abs() < 0.01, "{} vs {}", t.length_m, 2.0 * leg);
    }

    #[test]
    fn book_keeps_at_most_max_points() {
        let mut b = TrackBook::new(3, 3_600_000, 10);
        for i in 0..5 {
            b.record("plate:川S12345", s(i, &format!("c{i}"), LON + i as f64 * 0.001, LAT));
        }
        assert_eq!(cams(&b.get("plate:川S12345").unwrap()), [("c2", 2), ("c3", 3), ("c4", 4)]);
        // Reads by the same camera do not push the path out.
        for i in 5..50 {
            b.record("plate:川S12345", s(i, "c4", LON + 0.004, LAT));
        }
        assert_eq!(cams(&b.get("plate:川S12345").unwrap()), [("c2", 2), ("c3", 3), ("c4", 49)]);
    }

    #[test]
    fn book_drops_points_older_than_max_age() {
        let mut b = TrackBook::new(100, 60_000, 10);
        // (t_s, camera, expected points after recording)
        let rows: [(i64, &str, Points); 5] = [
            (0, "a", vec![("a", 0)]),
            (30, "b", vec![("a", 0), ("b", 30)]),
            (60, "c", vec![("a", 0), ("b", 30), ("c", 60)]),
            (61, "d", vec![("b", 30), ("c", 60), ("d", 61)]),
            // Late and already too old: dropped at once.
            (0, "z", vec![("b", 30), ("c", 60), ("d", 61)]),
        ];
        for (t_s, cam, expected) in rows {
            let track = b.record("k", s(t_s, cam, LON, LAT));
            assert_eq!(cams(&track), expected, "t={t_s}");
        }
        // A late read within the age goes in its place in time.
        assert_eq!(cams(&b.record("k", s(45, "e", LON, LAT))), [("b", 30), ("e", 45), ("c", 60), ("d", 61)]);
    }

    #[test]
    fn book_evicts_the_key_with_the_oldest_newest_sighting() {
        let mut b = TrackBook::new(10, 3_600_000, 2);
        b.record("k1", s(100, "a", LON, LAT));
        b.record("k2", s(50, "a", LON, LAT));
        b.record("k1", s(10, "b", LON, LAT)); // k1's newest is still 100
        assert_eq!(b.len(), 2);
        b.record("k3", s(5, "a", LON, LAT));
        assert_eq!(b.len(), 2);
        assert!(b.get("k2").is_none(), "k2's newest (50) is the oldest of k1 and k2");
        assert!(b.get("k3").is_some(), "the key just recorded stays even though it is oldest");
        b.record("k4", s(200, "a", LON, LAT));
        assert!(b.get("k3").is_none());
        assert!(b.get("k1").is_some() && b.get("k4").is_some());
        assert!(!b.is_empty());
    }
}
