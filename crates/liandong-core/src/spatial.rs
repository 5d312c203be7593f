//! In-memory spatial indexes: prepared polygons for point-in-polygon, an R-tree of
//! area envelopes for "which area contains this point", an R-tree of sites for "which
//! posts are nearest" and an R-tree of line segments for "how far from the road".
//!
//! rstar works on planar coordinates. Containment is tested on lon/lat directly (a
//! planar question); distances are ranked in a local equirectangular projection in
//! metres, then reported as haversine metres.

use geo::{BoundingRect, Coord, LineString, MultiPolygon, Point};
use rstar::primitives::{GeomWithData, Line as RLine, Rectangle};
use rstar::{RTree, AABB};

use crate::position::EARTH_RADIUS_M;
use crate::Position;

/// A polygon (with holes, or several parts) prepared for fast point-in-polygon tests:
/// its edges are bucketed into horizontal bands, so a test looks only at the edges that
/// cross the point's band (crossing-number test, even–odd rule).
#[derive(Debug, Clone)]
pub struct PreparedPolygon {
    min_y: f64,
    band_h: f64,
    /// Band `i` covers `[min_y + i*band_h, min_y + (i+1)*band_h)`; it holds the edges
    /// whose y-span meets it, as `(x1, y1, x2, y2)`.
    bands: Vec<Vec<[f64; 4]>>,
    bbox: [f64; 4],
}

impl PreparedPolygon {
    pub fn new(mp: &MultiPolygon<f64>) -> PreparedPolygon {
        let mut edges = Vec::new();
        for poly in &mp.0 {
            for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                for w in ring.0.windows(2) {
                    if w[0].y != w[1].y {
                        edges.push([w[0].x, w[0].y, w[1].x, w[1].y]);
                    }
                }
            }
        }
        let rect = mp.bounding_rect();
        let (min_x, min_y, max_x, max_y) = match rect {
            Some(r) => (r.min().x, r.min().y, r.max().x, r.max().y),
            None => (0.0, 0.0, -1.0, -1.0),
        };
        // About four edges per band keeps a test to a handful of edge checks.
        let n_bands = (edges.len() / 4).clamp(1, 4096);
        let band_h = ((max_y - min_y) / n_bands as f64).max(f64::MIN_POSITIVE);
        let mut bands = vec![Vec::new(); n_bands];
        for e in edges {
            let (lo, hi) = (e[1].min(e[3]), e[1].max(e[3]));
            let b0 = (((lo - min_y) / band_h) as usize).min(n_bands - 1);
            let b1 = (((hi - min_y) / band_h) as usize).min(n_bands - 1);
            for band in &mut bands[b0..=b1] {
                band.push(e);
            }
        }
        PreparedPolygon { min_y, band_h, bands, bbox: [min_x, min_y, max_x, max_y] }
    }

    /// Whether `(x, y)` is inside. Points exactly on an edge shared by two prepared
    /// polygons are inside exactly one of them (half-open crossing rule).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let [min_x, min_y, max_x, max_y] = self.bbox;
        if !(x >= min_x && x <= max_x && y >= min_y && y <= max_y) {
            return false;
        }
        let b = (((y - self.min_y) / self.band_h) as usize).min(self.bands.len() - 1);
        let mut inside = false;
        for &[x1, y1, x2, y2] in &self.bands[b] {
            if (y1 > y) != (y2 > y) {
                let x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1);
                if x < x_cross {
                    inside = !inside;
                }
            }
        }
        inside
    }

    pub fn bbox(&self) -> [f64; 4] {
        self.bbox
    }
}

/// Answers "which of these areas contains the point" for areas that tile a region
/// (townships, grids, jurisdictions) or may overlap (fences).
#[derive(Debug, Clone)]
pub struct AreaIndex {
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
    prepared: Vec<PreparedPolygon>,
}

impl AreaIndex {
    pub fn new<'a>(polygons: impl IntoIterator<Item = &'a MultiPolygon<f64>>) -> AreaIndex {
        let prepared: Vec<PreparedPolygon> = polygons.into_iter().map(PreparedPolygon::new).collect();
        let rects = prepared
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let [x0, y0, x1, y1] = p.bbox();
                GeomWithData::new(Rectangle::from_corners([x0, y0], [x1, y1]), i as u32)
            })
            .collect();
        AreaIndex { tree: RTree::bulk_load(rects), prepared }
    }

    /// The area that contains the point, for areas that tile a region without overlap
    /// (where areas overlap, use [`AreaIndex::all_containing`]).
    pub fn containing(&self, p: Position) -> Option<u32> {
        let (x, y) = (p.lon(), p.lat());
        self.tree
            .locate_all_at_point(&[x, y])
            .map(|r| r.data)
            .filter(|&i| self.prepared[i as usize].contains(x, y))
            .min()
    }

    /// Every area that contains the point, in ascending index order.
    pub fn all_containing(&self, p: Position, out: &mut Vec<u32>) {
        let (x, y) = (p.lon(), p.lat());
        out.clear();
        out.extend(
            self.tree
                .locate_all_at_point(&[x, y])
                .map(|r| r.data)
                .filter(|&i| self.prepared[i as usize].contains(x, y)),
        );
        out.sort_unstable();
    }

    /// Areas whose bounding box meets the box spanned by two points.
    pub fn candidates_between(&self, a: Position, b: Position, out: &mut Vec<u32>) {
        let env = AABB::from_corners([a.lon(), a.lat()], [b.lon(), b.lat()]);
        out.clear();
        out.extend(self.tree.locate_in_envelope_intersecting(&env).map(|r| r.data));
    }

    pub fn contains(&self, area: u32, p: Position) -> bool {
        self.prepared[area as usize].contains(p.lon(), p.lat())
    }

    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }
}

/// A local equirectangular projection to metres around a reference latitude. Good to
/// well under 1 % over a county; used only to rank and bound distances.
#[derive(Debug, Clone, Copy)]
pub struct LocalProjection {
    m_per_deg_lon: f64,
    m_per_deg_lat: f64,
}

impl LocalProjection {
    pub fn at_lat(lat0_deg: f64) -> LocalProjection {
        let m_per_deg_lat = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        LocalProjection { m_per_deg_lon: m_per_deg_lat * lat0_deg.to_radians().cos(), m_per_deg_lat }
    }

    pub fn project(&self, lon: f64, lat: f64) -> [f64; 2] {
        [lon * self.m_per_deg_lon, lat * self.m_per_deg_lat]
    }
}

/// Up to this many sites, a linear scan over projected points beats walking the tree
/// (the county has 26 posts); beyond it the R-tree answers.
const LINEAR_SCAN_MAX: usize = 64;
/// The linear scan keeps at most this many nearest sites.
const LINEAR_SCAN_K_MAX: usize = 8;

/// Nearest-site queries (posts, cameras) with distances in metres.
#[derive(Debug, Clone)]
pub struct SiteIndex {
    tree: RTree<GeomWithData<[f64; 2], u32>>,
    proj: LocalProjection,
    positions: Vec<Position>,
    projected: Vec<[f64; 2]>,
}

impl SiteIndex {
    pub fn new(points: impl IntoIterator<Item = Point<f64>>, proj: LocalProjection) -> SiteIndex {
        let positions: Vec<Position> = points.into_iter().filter_map(|p| Position::new(p.x(), p.y()).ok()).collect();
        let projected: Vec<[f64; 2]> = positions.iter().map(|p| proj.project(p.lon(), p.lat())).collect();
        let items = projected.iter().enumerate().map(|(i, q)| GeomWithData::new(*q, i as u32)).collect();
        SiteIndex { tree: RTree::bulk_load(items), proj, positions, projected }
    }

    /// The `out.len()` nearest sites to `p`, nearest first, with haversine distances in
    /// metres. Returns how many were filled.
    pub fn nearest(&self, p: Position, out: &mut [(u32, f64)]) -> usize {
        let q = self.proj.project(p.lon(), p.lat());
        let mut n = 0;
        if out.is_empty() {
            return 0;
        }
        if self.projected.len() <= LINEAR_SCAN_MAX && out.len() <= LINEAR_SCAN_K_MAX {
            // Insertion into a sorted window of `out.len()` planar squared distances.
            let k = out.len().min(self.projected.len());
            let mut best = [(0u32, f64::INFINITY); LINEAR_SCAN_K_MAX];
            for (i, s) in self.projected.iter().enumerate() {
                let d2 = (s[0] - q[0]).powi(2) + (s[1] - q[1]).powi(2);
                if n < k || d2 < best[k - 1].1 {
                    let mut j = n.min(k - 1);
                    while j > 0 && best[j - 1].1 > d2 {
                        best[j] = best[j - 1];
                        j -= 1;
                    }
                    best[j] = (i as u32, d2);
                    n = (n + 1).min(k);
                }
            }
            for (slot, (i, _)) in out.iter_mut().zip(&best[..n]) {
                *slot = (*i, p.haversine_m(self.positions[*i as usize]));
            }
        } else {
            for item in self.tree.nearest_neighbor_iter(&q).take(out.len()) {
                out[n] = (item.data, p.haversine_m(self.positions[item.data as usize]));
                n += 1;
            }
        }
        // The projection ranks within a fraction of a percent; re-sort on the exact
        // distances so the answer is ordered by what it reports.
        out[..n].sort_by(|a, b| a.1.total_cmp(&b.1));
        n
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

/// Distance from a point to the nearest of a set of lines, in metres (roads, routes).
#[derive(Debug, Clone)]
pub struct LineIndex {
    tree: RTree<GeomWithData<RLine<[f64; 2]>, u32>>,
    proj: LocalProjection,
}

impl LineIndex {
    pub fn new<'a>(lines: impl IntoIterator<Item = &'a LineString<f64>>) -> LineIndex {
        let lines: Vec<&LineString<f64>> = lines.into_iter().collect();
        let n: usize = lines.iter().map(|l| l.0.len()).sum();
        let lat0 =
            if n == 0 { 30.0 } else { lines.iter().flat_map(|l| l.0.iter()).map(|c| c.y).sum::<f64>() / n as f64 };
        let proj = LocalProjection::at_lat(lat0);
        let segs = lines
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.0.windows(2).map(move |w| {
                    GeomWithData::new(RLine::new(proj.project(w[0].x, w[0].y), proj.project(w[1].x, w[1].y)), i as u32)
                })
            })
            .collect();
        LineIndex { tree: RTree::bulk_load(segs), proj }
    }

    /// Metres from `p` to the nearest line; infinite when there are no lines.
    pub fn distance_m(&self, p: Point<f64>) -> f64 {
        let q = self.proj.project(p.x(), p.y());
        match self.tree.nearest_neighbor(&q) {
            Some(seg) => rstar::PointDistance::distance_2(seg.geom(), &q).sqrt(),
            None => f64::INFINITY,
        }
    }
}

/// Whether the segment `a`–`b` meets the polygon's boundary or interior.
pub fn segment_meets(a: Position, b: Position, poly: &MultiPolygon<f64>) -> bool {
    use geo::Intersects;
    let seg = geo::Line::new(Coord { x: a.lon(), y: a.lat() }, Coord { x: b.lon(), y: b.lat() });
    seg.intersects(poly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, Contains};

    fn square_with_hole() -> MultiPolygon<f64> {
        MultiPolygon::new(vec![polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0), (x: 0.0, y: 0.0)],
            interiors: [[(x: 4.0, y: 4.0), (x: 6.0, y: 4.0), (x: 6.0, y: 6.0), (x: 4.0, y: 6.0), (x: 4.0, y: 4.0)]],
        )])
    }

    #[test]
    fn prepared_polygon_agrees_with_geo_contains() {
        let mp = square_with_hole();
        let prepared = PreparedPolygon::new(&mp);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = (seed % 12_000) as f64 / 1000.0 - 1.0;
            let y = ((seed >> 20) % 12_000) as f64 / 1000.0 - 1.0;
            let on_edge = [0.0, 4.0, 6.0, 10.0].iter().any(|e| (x - e).abs() < 1e-9 || (y - e).abs() < 1e-9);
            if !on_edge {
                assert_eq!(prepared.contains(x, y), mp.contains(&Point::new(x, y)), "({x}, {y})");
            }
        }
        assert!(!prepared.contains(5.0, 5.0), "the hole is outside");
        assert!(prepared.contains(2.0, 5.0));
    }

    #[test]
    fn a_point_on_a_shared_edge_belongs_to_exactly_one_side() {
        let left =
            MultiPolygon::new(vec![polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)]]);
        let right =
            MultiPolygon::new(vec![polygon![(x: 1.0, y: 0.0), (x: 2.0, y: 0.0), (x: 2.0, y: 1.0), (x: 1.0, y: 1.0)]]);
        let idx = AreaIndex::new([&left, &right]);
        let mut out = Vec::new();
        for y in [0.1, 0.5, 0.9] {
            idx.all_containing(Position::new(1.0, y).unwrap(), &mut out);
            assert_eq!(out.len(), 1, "y={y}: {out:?}");
        }
    }

    #[test]
    fn nearest_sites_are_ordered_by_haversine_metres() {
        let proj = LocalProjection::at_lat(30.7);
        // At 30.7°N a degree of longitude is shorter than one of latitude: a site
        // 0.0009° east (~86 m) is nearer than one 0.0008° north (~89 m).
        let sites = [Point::new(107.2009, 30.7), Point::new(107.2, 30.7008), Point::new(107.3, 30.8)];
        let idx = SiteIndex::new(sites, proj);
        let mut out = [(0, 0.0); 2];
        let n = idx.nearest(Position::new(107.2, 30.7).unwrap(), &mut out);
        assert_eq!(n, 2);
        assert_eq!(out[0].0, 0);
        assert_eq!(out[1].0, 1);
        assert!((out[0].1 - 86.1).abs() < 1.0, "{}", out[0].1);
    }

    #[test]
    fn linear_scan_and_tree_agree() {
        let proj = LocalProjection::at_lat(30.7);
        let grid: Vec<Point<f64>> =
            (0..100).map(|i| Point::new(107.0 + (i % 10) as f64 * 0.013, 30.6 + (i / 10) as f64 * 0.011)).collect();
        let small = SiteIndex::new(grid[..40].iter().copied(), proj);
        let big = SiteIndex::new(grid.iter().copied(), proj);
        for (lon, lat) in [(107.05, 30.65), (106.9, 30.5), (107.2, 30.75)] {
            let p = Position::new(lon, lat).unwrap();
            let (mut a, mut b) = ([(0, 0.0); 3], [(0, 0.0); 3]);
            // Brute force over the first 40 sites is the reference for both indexes.
            let mut reference: Vec<(u32, f64)> = grid[..40]
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u32, p.haversine_m(Position::new(s.x(), s.y()).unwrap())))
                .collect();
            reference.sort_by(|x, y| x.1.total_cmp(&y.1));
            assert_eq!(small.nearest(p, &mut a), 3);
            assert_eq!(
                a.iter().map(|x| x.0).collect::<Vec<_>>(),
                reference[..3].iter().map(|x| x.0).collect::<Vec<_>>()
            );
            assert_eq!(big.nearest(p, &mut b), 3);
            let mut all: Vec<(u32, f64)> = grid
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u32, p.haversine_m(Position::new(s.x(), s.y()).unwrap())))
                .collect();
            all.sort_by(|x, y| x.1.total_cmp(&y.1));
            assert_eq!(b.iter().map(|x| x.0).collect::<Vec<_>>(), all[..3].iter().map(|x| x.0).collect::<Vec<_>>());
        }
    }

    #[test]
    fn line_index_distance_in_metres() {
        let road = LineString::from(vec![(107.0, 30.7), (107.1, 30.7)]);
        let idx = LineIndex::new([&road]);
        // 0.001° of latitude is about 111 m.
        let d = idx.distance_m(Point::new(107.05, 30.701));
        assert!((d - 111.2).abs() < 1.0, "{d}");
    }
}
