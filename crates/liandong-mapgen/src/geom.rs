//! Planar helpers for building the demo map: a local metric projection, Voronoi cells
//! by half-plane clipping, and the cleaning that makes polygons RFC 7946-ready.
//!
//! Geometry is built in a local equirectangular plane (metres) so that Voronoi
//! bisectors and jitter amplitudes mean the same thing east-west and north-south;
//! everything written out is WGS 84 lon/lat rounded to 6 decimals (about 0.1 m).

use geo::{BooleanOps, Contains, Coord, LineString, MultiPolygon, Orient, Polygon};
use liandong_core::spatial::PreparedPolygon;

/// Metres per degree of latitude (mean, WGS 84 ellipsoid near 30°N).
const M_PER_DEG_LAT: f64 = 110_850.0;
/// Metres per degree of longitude at the equator (WGS 84 semi-major axis × π/180).
const M_PER_DEG_LON_EQ: f64 = 111_320.0;

/// A local equirectangular projection centred on `(lon0, lat0)`: good to well under
/// 1% across a county, which is all the demo generator needs.
#[derive(Debug, Clone, Copy)]
pub struct Proj {
    lon0: f64,
    lat0: f64,
    m_per_deg_lon: f64,
}

impl Proj {
    pub fn new(lon0: f64, lat0: f64) -> Self {
        Proj { lon0, lat0, m_per_deg_lon: M_PER_DEG_LON_EQ * lat0.to_radians().cos() }
    }

    /// Lon/lat degrees to local metres (x east, y north).
    pub fn to_m(&self, c: Coord) -> Coord {
        Coord { x: (c.x - self.lon0) * self.m_per_deg_lon, y: (c.y - self.lat0) * M_PER_DEG_LAT }
    }

    /// Local metres back to lon/lat degrees.
    pub fn to_deg(&self, m: Coord) -> Coord {
        Coord { x: self.lon0 + m.x / self.m_per_deg_lon, y: self.lat0 + m.y / M_PER_DEG_LAT }
    }

    /// Planar distance in metres between two lon/lat coordinates.
    pub fn dist_m(&self, a: Coord, b: Coord) -> f64 {
        let (a, b) = (self.to_m(a), self.to_m(b));
        (a.x - b.x).hypot(a.y - b.y)
    }

    /// The point `d_m` metres from `c` at bearing `angle_rad` (counter-clockwise from east).
    pub fn offset(&self, c: Coord, d_m: f64, angle_rad: f64) -> Coord {
        let m = self.to_m(c);
        self.to_deg(Coord { x: m.x + d_m * angle_rad.cos(), y: m.y + d_m * angle_rad.sin() })
    }
}

/// Rounds a coordinate to 6 decimals, the precision of every file written.
pub fn round6(c: Coord) -> Coord {
    Coord { x: (c.x * 1e6).round() / 1e6, y: (c.y * 1e6).round() / 1e6 }
}

/// Keeps the part of a convex polygon `poly` (open ring, metres) on the side of the
/// line through `m` normal to `d` where `(p - m)·d <= 0` (Sutherland–Hodgman, one edge).
fn clip_half_plane(poly: &[Coord], m: Coord, d: Coord) -> Vec<Coord> {
    let side = |p: Coord| (p.x - m.x) * d.x + (p.y - m.y) * d.y;
    let mut out = Vec::with_capacity(poly.len() + 1);
    for k in 0..poly.len() {
        let (a, b) = (poly[k], poly[(k + 1) % poly.len()]);
        let (fa, fb) = (side(a), side(b));
        if fa <= 0.0 {
            out.push(a);
        }
        if (fa < 0.0 && fb > 0.0) || (fa > 0.0 && fb < 0.0) {
            let t = fa / (fa - fb);
            out.push(Coord { x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t });
        }
    }
    out
}

/// The Voronoi cell of every site (lon/lat), each clipped to `clip` (lon/lat).
///
/// Each cell starts as a box around everything and is cut by the perpendicular
/// bisector half-plane towards every other site: O(n²), fine for a few dozen sites.
/// Cells are computed in the local metric plane, where "nearest" is meant.
pub fn voronoi_clipped(proj: &Proj, sites: &[Coord], clip: &MultiPolygon) -> Vec<MultiPolygon> {
    let sites_m: Vec<Coord> = sites.iter().map(|c| proj.to_m(*c)).collect();
    let (mut lo, mut hi) = (Coord { x: f64::MAX, y: f64::MAX }, Coord { x: f64::MIN, y: f64::MIN });
    for p in clip.0.iter().flat_map(|p| p.exterior().0.iter()).map(|c| proj.to_m(*c)).chain(sites_m.iter().copied()) {
        lo = Coord { x: lo.x.min(p.x), y: lo.y.min(p.y) };
        hi = Coord { x: hi.x.max(p.x), y: hi.y.max(p.y) };
    }
    let pad = 10_000.0;
    let bbox = vec![
        Coord { x: lo.x - pad, y: lo.y - pad },
        Coord { x: hi.x + pad, y: lo.y - pad },
        Coord { x: hi.x + pad, y: hi.y + pad },
        Coord { x: lo.x - pad, y: hi.y + pad },
    ];
    sites_m
        .iter()
        .enumerate()
        .map(|(i, si)| {
            let mut cell = bbox.clone();
            for (j, sj) in sites_m.iter().enumerate() {
                if i == j || cell.is_empty() {
                    continue;
                }
                let m = Coord { x: (si.x + sj.x) / 2.0, y: (si.y + sj.y) / 2.0 };
                let d = Coord { x: sj.x - si.x, y: sj.y - si.y };
                cell = clip_half_plane(&cell, m, d);
            }
            let mut ring: Vec<Coord> = cell.iter().map(|c| proj.to_deg(*c)).collect();
            if let Some(first) = ring.first().copied() {
                ring.push(first);
            }
            let cell = Polygon::new(LineString::new(ring), vec![]);
            clean(&cell.intersection(clip))
        })
        .collect()
}

/// Rounds to 6 decimals, drops repeated vertices and degenerate rings and polygons,
/// and orients exteriors counter-clockwise and holes clockwise (RFC 7946 §3.1.6).
pub fn clean(mp: &MultiPolygon) -> MultiPolygon {
    let ring = |ls: &LineString| -> Option<LineString> {
        let mut out: Vec<Coord> = Vec::with_capacity(ls.0.len());
        for c in ls.0.iter().map(|c| round6(*c)) {
            if out.last() != Some(&c) {
                out.push(c);
            }
        }
        if out.len() > 1 && out.first() == out.last() {
            out.pop();
        }
        if out.len() < 3 {
            return None;
        }
        out.push(out[0]);
        let ls = LineString::new(out);
        (geo::Area::unsigned_area(&Polygon::new(ls.clone(), vec![])) > 1e-12).then_some(ls)
    };
    let polys =
        mp.0.iter()
            .filter_map(|p| {
                let ext = ring(p.exterior())?;
                Some(Polygon::new(ext, p.interiors().iter().filter_map(ring).collect()))
            })
            .collect();
    MultiPolygon::new(polys).orient(geo::orient::Direction::Default)
}

/// Whether the straight segment `a`–`b` stays inside `area`, sampled every `step_m`.
/// Takes a prepared polygon: road drawing asks this tens of thousands of times.
pub fn segment_inside(proj: &Proj, area: &PreparedPolygon, a: Coord, b: Coord, step_m: f64) -> bool {
    let n = (proj.dist_m(a, b) / step_m).ceil().max(1.0) as usize;
    (0..=n).all(|k| {
        let t = k as f64 / n as f64;
        area.contains(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t)
    })
}

/// A small irregular polygon of about `radius_m` around `centre`, or `None` if it
/// cannot be made to fit inside `area` even when shrunk.
pub fn blob(
    proj: &Proj,
    area: &MultiPolygon,
    centre: Coord,
    radius_m: f64,
    vertices: usize,
    rng: &mut crate::rng::SplitMix64,
) -> Option<Polygon> {
    let phase = rng.range(0.0, std::f64::consts::TAU);
    let radii: Vec<f64> = (0..vertices).map(|_| rng.range(0.8, 1.1)).collect();
    for shrink in [1.0, 0.8, 0.6, 0.4] {
        let ring: Vec<Coord> = (0..vertices)
            .map(|k| {
                let a = phase + std::f64::consts::TAU * k as f64 / vertices as f64;
                round6(proj.offset(centre, radius_m * radii[k] * shrink, a))
            })
            .collect();
        let mut closed = ring.clone();
        closed.push(ring[0]);
        let poly = Polygon::new(LineString::new(closed), vec![]).orient(geo::orient::Direction::Default);
        if area.contains(&poly) {
            return Some(poly);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Area;

    fn square(x0: f64, y0: f64, s: f64) -> MultiPolygon {
        MultiPolygon::new(vec![Polygon::new(
            LineString::from(vec![(x0, y0), (x0 + s, y0), (x0 + s, y0 + s), (x0, y0 + s), (x0, y0)]),
            vec![],
        )])
    }

    #[test]
    fn voronoi_cells_tile_the_clip_area_and_hold_their_site() {
        let proj = Proj::new(107.2, 30.7);
        let area = square(107.1, 30.6, 0.2);
        let sites = [
            Coord { x: 107.15, y: 30.65 },
            Coord { x: 107.25, y: 30.66 },
            Coord { x: 107.2, y: 30.75 },
            Coord { x: 107.12, y: 30.78 },
        ];
        let cells = voronoi_clipped(&proj, &sites, &area);
        let total: f64 = cells.iter().map(|c| c.unsigned_area()).sum();
        assert!((total - area.unsigned_area()).abs() / area.unsigned_area() < 1e-6, "{total}");
        for (cell, site) in cells.iter().zip(&sites) {
            assert!(cell.contains(&geo::Point::from(*site)));
            assert!(cell.0.iter().all(|p| geo::Winding::is_ccw(p.exterior())));
        }
    }

    #[test]
    fn half_plane_clip_keeps_the_near_side() {
        let sq =
            [Coord { x: 0.0, y: 0.0 }, Coord { x: 2.0, y: 0.0 }, Coord { x: 2.0, y: 2.0 }, Coord { x: 0.0, y: 2.0 }];
        let out = clip_half_plane(&sq, Coord { x: 1.0, y: 1.0 }, Coord { x: 1.0, y: 0.0 });
        assert!(out.iter().all(|c| c.x <= 1.0 + 1e-12));
        assert_eq!(out.len(), 4);
    }
}
