//! Where incidents happen: fixed trouble spots per township, seeded from the map so that
//! hotspots emerge, and now and then anywhere in the county near a road.

use std::ops::Range;

use geo::{BoundingRect, Contains, InteriorPoint, MultiPolygon, Point, Rect};
use liandong_core::CountyMap;

use super::support::Rng;
use super::track::offset;

/// Share of places drawn at a trouble spot; the rest fall anywhere in the county.
const TROUBLE_SPOT_SHARE: f64 = 0.75;
/// Radius of the disc round a trouble spot that its incidents fall in, metres: under
/// the hotspot analysis's 250 m cells, so that the spots stand out.
const SPOT_RADIUS_M: f64 = 150.0;
/// Trouble spots lie this far from their town centre or post, metres.
const SPOT_OFFSET_M: Range<f64> = 100.0..600.0;
/// An incident "anywhere" falls within this distance of a road, metres.
const ROADSIDE_M: f64 = 300.0;

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

#[cfg(test)]
mod tests {
    use geo::{Distance, Haversine};

    use super::super::test_support::*;
    use super::*;

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
}
