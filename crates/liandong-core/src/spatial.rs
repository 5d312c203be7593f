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

/// Longest side of an area raster, in cells: 512 × 512 cell words take 1 MB, and finer
/// cells would no longer fit the cache that makes a lookup cheap.
const RASTER_MAX_SIDE: usize = 512;
/// Shortest longest side: even a layer of a few simple fences gets cells small enough
/// that most of its bounding box answers without an exact test.
const RASTER_MIN_SIDE: usize = 64;
/// Cells along the longest side per square root of the edge count. An edge touches
/// about as many cells as its length in cells, so the share of mixed cells (which need
/// an exact test) falls as this grows, while the cell array grows with its square. On
/// the Dazhu map 8 gives 2–7.5 % mixed cells at under 1.2 MB a layer; 4 and 16 measured
/// the same within noise.
const RASTER_CELLS_PER_SQRT_EDGE: f64 = 8.0;
/// Margin, in cells, by which an edge is widened before it is rasterised. Cell
/// coordinates are computed with a rounding error near 1e-13 cells; any margin far
/// above that keeps the rasterisation conservative, at the cost of a few more mixed cells.
const RASTER_PAD_CELLS: f64 = 1e-6;
/// Low bit of a raster entry: the cell lies entirely inside the polygon, so no exact
/// test is needed. Clear: an edge of the polygon touches the cell.
const ENTRY_INSIDE: u32 = 1;
/// A cell word for a cell in no polygon.
const CELL_EMPTY: u32 = u32::MAX;
/// High bit of a cell word: the rest is the one polygon that wholly contains the cell,
/// and no other polygon reaches it. Most cells of a tiling layer are like this, and
/// answer with a single load. Clear: the rest is an index into the lists.
const CELL_SOLE: u32 = 1 << 31;

/// What a raster knows about the cell holding a point.
enum Cell<'a> {
    /// No polygon reaches the cell.
    Empty,
    /// This polygon wholly contains the cell, and no other reaches it.
    Sole(u32),
    /// Raster entries (see [`AreaRaster::lists`]) in ascending polygon order.
    Listed(&'a [u32]),
}

/// A uniform grid over a layer's bounding box that answers "which polygons may contain
/// a point in this cell" with one lookup: the classic cell-based point-location
/// acceleration (Žalik & Kolingerová, "A cell-based point-in-polygon algorithm suitable
/// for large sets of points", Computers & Geosciences 27, 2001).
///
/// Every polygon edge is rasterised conservatively, so a cell that no edge of polygon
/// `i` touches lies wholly inside or wholly outside `i`; that is decided once, at build
/// time, from the cell's centre. Each cell keeps, in ascending polygon order, the
/// polygons that touch it (to be confirmed with [`PreparedPolygon::contains`]) and
/// those that wholly contain it. Points on edges always land in touched cells, so the
/// half-open rule of [`PreparedPolygon::contains`] still decides them.
#[derive(Debug, Clone)]
struct AreaRaster {
    /// Lower-left corner of the grid in degrees, a little outside the layer's box so
    /// that every vertex maps strictly inside the grid.
    min_x: f64,
    min_y: f64,
    /// Cells per degree along each axis; a point's cell is found with two multiplies.
    scale_x: f64,
    scale_y: f64,
    /// Columns and rows; zero for a layer with no polygon, so every query misses.
    nx: usize,
    ny: usize,
    /// One word per cell (row-major, `row * nx + col`): [`CELL_EMPTY`],
    /// [`CELL_SOLE`]` | polygon`, or the index in `lists` of the cell's list.
    cells: Vec<u32>,
    /// Per listed cell: the entry count, then the entries in ascending polygon order,
    /// each `polygon << 1 | ENTRY_INSIDE` when the polygon wholly contains the cell or
    /// `polygon << 1` when one of its edges touches the cell.
    lists: Vec<u32>,
}

impl AreaRaster {
    /// Rasterises `polygons` (with their prepared forms, index for index). Runs once
    /// per layer at start-up: about 2–6 ms a layer on the Dazhu map in release.
    fn new(polygons: &[&MultiPolygon<f64>], prepared: &[PreparedPolygon]) -> AreaRaster {
        let mut raster = AreaRaster {
            min_x: 0.0,
            min_y: 0.0,
            scale_x: 0.0,
            scale_y: 0.0,
            nx: 0,
            ny: 0,
            cells: Vec::new(),
            lists: Vec::new(),
        };
        // Empty polygons have no box and contain nothing: they never enter the raster.
        let boxes = prepared.iter().map(PreparedPolygon::bbox);
        // Entries keep the polygon in 31 bits, and the sole-polygon flag needs the top one.
        assert!(prepared.len() < CELL_SOLE as usize, "too many areas for one raster");
        let Some([x0, y0, x1, y1]) = boxes
            .filter(|b| b[0] <= b[2])
            .reduce(|a, b| [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])])
        else {
            return raster;
        };
        let n_edges: usize = polygons
            .iter()
            .flat_map(|mp| &mp.0)
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .map(|r| r.0.len().saturating_sub(1))
            .sum();
        let side = ((n_edges as f64).sqrt() * RASTER_CELLS_PER_SQRT_EDGE) as usize;
        let side = side.clamp(RASTER_MIN_SIDE, RASTER_MAX_SIDE);
        // A margin of a millionth of the span (or of a nanodegree for a degenerate
        // layer) keeps vertices off the grid's outer border.
        let (w, h) = (x1 - x0, y1 - y0);
        let (pad_x, pad_y) = (w * 1e-6 + 1e-9, h * 1e-6 + 1e-9);
        let (w, h) = (w + 2.0 * pad_x, h + 2.0 * pad_y);
        // Roughly square cells in degrees; the longer side gets `side` cells.
        let (nx, ny) = if w >= h {
            (side, ((side as f64 * h / w).ceil() as usize).max(1))
        } else {
            (((side as f64 * w / h).ceil() as usize).max(1), side)
        };
        raster.min_x = x0 - pad_x;
        raster.min_y = y0 - pad_y;
        raster.scale_x = nx as f64 / w;
        raster.scale_y = ny as f64 / h;
        raster.nx = nx;
        raster.ny = ny;

        // (cell, entry) pairs, emitted polygon by polygon so that a stable sort by cell
        // leaves each cell's entries in ascending polygon order.
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut touched: Vec<u32> = Vec::new();
        for (i, (mp, pp)) in polygons.iter().zip(prepared).enumerate() {
            let [bx0, by0, bx1, by1] = pp.bbox();
            if bx0 > bx1 {
                continue;
            }
            touched.clear();
            for poly in &mp.0 {
                for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                    for w in ring.0.windows(2) {
                        raster.mark_segment(w[0], w[1], &mut touched);
                    }
                }
            }
            touched.sort_unstable();
            touched.dedup();
            let (c0, r0) = raster.cell_of(bx0, by0);
            let (c1, r1) = raster.cell_of(bx1, by1);
            let id = (i as u32) << 1;
            // Touched cells just outside the box (the widening reaches past it) are
            // skipped: their points map below the box's cell, so by the monotone cell
            // arithmetic they lie outside the box, where `contains` is false anyway.
            let mut next_touched = 0;
            for r in r0..=r1 {
                // Walk the row through the polygon's box. Two neighbouring cells that
                // no edge touches share a border no edge touches, so the whole run
                // between touched cells is on one side: one centre test per run.
                let mut run_inside: Option<bool> = None;
                for c in c0..=c1 {
                    let cell = (r * nx + c) as u32;
                    while next_touched < touched.len() && touched[next_touched] < cell {
                        next_touched += 1;
                    }
                    if touched.get(next_touched) == Some(&cell) {
                        pairs.push((cell, id));
                        run_inside = None;
                        continue;
                    }
                    let inside = *run_inside.get_or_insert_with(|| {
                        let (x, y) = raster.centre(c, r);
                        pp.contains(x, y)
                    });
                    if inside {
                        pairs.push((cell, id | ENTRY_INSIDE));
                    }
                }
            }
        }
        // Counting sort by cell (stable) into the offsets/entries layout.
        let n_cells = nx * ny;
        let mut offsets = vec![0u32; n_cells + 1];
        for &(cell, _) in &pairs {
            offsets[cell as usize + 1] += 1;
        }
        for c in 0..n_cells {
            offsets[c + 1] += offsets[c];
        }
        let mut fill = offsets.clone();
        let mut entries = vec![0u32; pairs.len()];
        for (cell, entry) in pairs {
            let slot = &mut fill[cell as usize];
            entries[*slot as usize] = entry;
            *slot += 1;
        }
        raster.cells = Vec::with_capacity(n_cells);
        for c in 0..n_cells {
            let cell = &entries[offsets[c] as usize..offsets[c + 1] as usize];
            raster.cells.push(match *cell {
                [] => CELL_EMPTY,
                [e] if e & ENTRY_INSIDE != 0 => CELL_SOLE | e >> 1,
                _ => {
                    let at = raster.lists.len() as u32;
                    assert!(at < CELL_SOLE, "raster lists overflow");
                    raster.lists.push(cell.len() as u32);
                    raster.lists.extend_from_slice(cell);
                    at
                }
            });
        }
        raster
    }

    /// Cell coordinates (fractional, in cells) of a point. The same arithmetic serves
    /// the build and the query, so both place a point identically.
    fn to_cells(&self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.min_x) * self.scale_x, (y - self.min_y) * self.scale_y)
    }

    /// The (column, row) of a point inside the grid's box, clamped to the grid.
    fn cell_of(&self, x: f64, y: f64) -> (usize, usize) {
        let (fx, fy) = self.to_cells(x, y);
        (clamp_cell(fx, self.nx), clamp_cell(fy, self.ny))
    }

    /// Centre of a cell in degrees: the one point whose side decides a cell no edge
    /// touches. It lies about half a cell from the polygon's edges, so its test is
    /// far from any rounding.
    fn centre(&self, col: usize, row: usize) -> (f64, f64) {
        (self.min_x + (col as f64 + 0.5) / self.scale_x, self.min_y + (row as f64 + 0.5) / self.scale_y)
    }

    /// Pushes every cell the segment `a`–`b`, widened by [`RASTER_PAD_CELLS`], meets:
    /// row by row, the span of columns the segment covers within the (widened) row.
    /// Cells that only share a corner or border with the segment are included.
    fn mark_segment(&self, a: Coord<f64>, b: Coord<f64>, out: &mut Vec<u32>) {
        let (ax, ay) = self.to_cells(a.x, a.y);
        let (bx, by) = self.to_cells(b.x, b.y);
        let (y_lo, y_hi) = (ay.min(by), ay.max(by));
        let r0 = clamp_cell(y_lo - RASTER_PAD_CELLS, self.ny);
        let r1 = clamp_cell(y_hi + RASTER_PAD_CELLS, self.ny);
        for r in r0..=r1 {
            let (x_lo, x_hi) = if ay == by {
                (ax.min(bx), ax.max(bx))
            } else {
                // The part of the segment within the widened row; x is linear in y.
                let ya = (r as f64 - RASTER_PAD_CELLS).max(y_lo);
                let yb = (r as f64 + 1.0 + RASTER_PAD_CELLS).min(y_hi);
                let x_at = |y: f64| ax + (y - ay) * (bx - ax) / (by - ay);
                let (xa, xb) = (x_at(ya), x_at(yb));
                (xa.min(xb), xa.max(xb))
            };
            let c0 = clamp_cell(x_lo - RASTER_PAD_CELLS, self.nx);
            let c1 = clamp_cell(x_hi + RASTER_PAD_CELLS, self.nx);
            out.extend((c0..=c1).map(|c| (r * self.nx + c) as u32));
        }
    }

    /// What the raster knows about the cell holding `(x, y)`; outside the grid no
    /// polygon reaches.
    fn cell_at(&self, x: f64, y: f64) -> Cell<'_> {
        let (fx, fy) = self.to_cells(x, y);
        // Also false for NaN; the grid's margin keeps every polygon point well inside.
        if !(fx >= 0.0 && fy >= 0.0 && fx < self.nx as f64 && fy < self.ny as f64) {
            return Cell::Empty;
        }
        match self.cells[fy as usize * self.nx + fx as usize] {
            CELL_EMPTY => Cell::Empty,
            w if w & CELL_SOLE != 0 => Cell::Sole(w & !CELL_SOLE),
            at => {
                let at = at as usize;
                let len = self.lists[at] as usize;
                Cell::Listed(&self.lists[at + 1..at + 1 + len])
            }
        }
    }

    /// Heap bytes held, for the test that bounds the index's memory.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        (self.cells.capacity() + self.lists.capacity()) * std::mem::size_of::<u32>()
    }
}

/// The cell index of a fractional cell coordinate, clamped to `0..n`.
fn clamp_cell(f: f64, n: usize) -> usize {
    (f.floor().max(0.0) as usize).min(n.saturating_sub(1))
}

/// Answers "which of these areas contains the point" for areas that tile a region
/// (townships, grids, jurisdictions) or may overlap (fences).
#[derive(Debug, Clone)]
pub struct AreaIndex {
    /// Envelopes, for [`AreaIndex::candidates_between`] (a box query the raster does
    /// not answer).
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
    /// Point queries: nearly every point resolves from its cell alone.
    raster: AreaRaster,
    prepared: Vec<PreparedPolygon>,
}

impl AreaIndex {
    pub fn new<'a>(polygons: impl IntoIterator<Item = &'a MultiPolygon<f64>>) -> AreaIndex {
        let polygons: Vec<&MultiPolygon<f64>> = polygons.into_iter().collect();
        let prepared: Vec<PreparedPolygon> = polygons.iter().map(|mp| PreparedPolygon::new(mp)).collect();
        let rects = prepared
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let [x0, y0, x1, y1] = p.bbox();
                GeomWithData::new(Rectangle::from_corners([x0, y0], [x1, y1]), i as u32)
            })
            .collect();
        AreaIndex { tree: RTree::bulk_load(rects), raster: AreaRaster::new(&polygons, &prepared), prepared }
    }

    /// Whether a listed cell's entry holds at `(x, y)`: wholly-containing polygons
    /// hold as they are, touching ones are decided by the exact test.
    fn entry_holds(&self, e: u32, x: f64, y: f64) -> bool {
        e & ENTRY_INSIDE != 0 || self.prepared[(e >> 1) as usize].contains(x, y)
    }

    /// The area that contains the point, for areas that tile a region without overlap
    /// (where areas overlap, this is the lowest index; use
    /// [`AreaIndex::all_containing`] for all of them).
    pub fn containing(&self, p: Position) -> Option<u32> {
        let (x, y) = (p.lon(), p.lat());
        match self.raster.cell_at(x, y) {
            Cell::Empty => None,
            Cell::Sole(i) => Some(i),
            // Entries are in ascending order, so the first that holds is the lowest.
            Cell::Listed(entries) => entries.iter().find(|&&e| self.entry_holds(e, x, y)).map(|&e| e >> 1),
        }
    }

    /// Every area that contains the point, in ascending index order.
    pub fn all_containing(&self, p: Position, out: &mut Vec<u32>) {
        let (x, y) = (p.lon(), p.lat());
        out.clear();
        match self.raster.cell_at(x, y) {
            Cell::Empty => {}
            Cell::Sole(i) => out.push(i),
            Cell::Listed(entries) => {
                out.extend(entries.iter().filter(|&&e| self.entry_holds(e, x, y)).map(|&e| e >> 1))
            }
        }
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
    /// Cosine of each site's latitude: the haversine needs it for every reported
    /// distance, and caching it saves a third of the trigonometry of a query.
    cos_lat: Vec<f64>,
}

impl SiteIndex {
    pub fn new(points: impl IntoIterator<Item = Point<f64>>, proj: LocalProjection) -> SiteIndex {
        let positions: Vec<Position> = points.into_iter().filter_map(|p| Position::new(p.x(), p.y()).ok()).collect();
        let projected: Vec<[f64; 2]> = positions.iter().map(|p| proj.project(p.lon(), p.lat())).collect();
        let items = projected.iter().enumerate().map(|(i, q)| GeomWithData::new(*q, i as u32)).collect();
        let cos_lat = positions.iter().map(|p| p.lat().to_radians().cos()).collect();
        SiteIndex { tree: RTree::bulk_load(items), proj, positions, projected, cos_lat }
    }

    /// The `out.len()` nearest sites to `p`, nearest first, with haversine distances in
    /// metres. Returns how many were filled.
    pub fn nearest(&self, p: Position, out: &mut [(u32, f64)]) -> usize {
        let q = self.proj.project(p.lon(), p.lat());
        let mut n = 0;
        if out.is_empty() {
            return 0;
        }
        let cos_lat_p = p.lat().to_radians().cos();
        let distance_m = |i: u32| {
            let i = i as usize;
            haversine_cos_m(p, cos_lat_p, self.positions[i], self.cos_lat[i])
        };
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
                *slot = (*i, distance_m(*i));
            }
        } else {
            for item in self.tree.nearest_neighbor_iter(&q).take(out.len()) {
                out[n] = (item.data, distance_m(item.data));
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

/// [`Position::haversine_m`] from `a` to `b` given the cosines of their latitudes:
/// the same operations in the same order, so the same bits, without recomputing the
/// cosines that [`SiteIndex`] caches.
fn haversine_cos_m(a: Position, cos_lat_a: f64, b: Position, cos_lat_b: f64) -> f64 {
    let dphi = b.lat().to_radians() - a.lat().to_radians();
    let dlambda = (b.lon() - a.lon()).to_radians();
    let h = (dphi / 2.0).sin().powi(2) + cos_lat_a * cos_lat_b * (dlambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
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
    use crate::xorshift::XorShift64;
    use geo::{polygon, Contains, Polygon};

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

    /// A closed ring through `n` points at the given radii around `(cx, cy)`, counter-
    /// clockwise; irregular radii give concave, star-like shapes.
    fn ring(cx: f64, cy: f64, radii: &[f64]) -> LineString<f64> {
        let n = radii.len();
        let mut pts: Vec<(f64, f64)> = radii
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let a = k as f64 / n as f64 * std::f64::consts::TAU;
                (cx + r * a.cos(), cy + r * a.sin())
            })
            .collect();
        pts.push(pts[0]);
        LineString::from(pts)
    }

    /// Checks the index against brute force over every prepared polygon at each point:
    /// `all_containing` must list exactly the polygons that contain it, `containing`
    /// the first of them. Returns how many points were inside at least one polygon.
    fn assert_matches_brute_force(polys: &[MultiPolygon<f64>], points: impl IntoIterator<Item = (f64, f64)>) -> usize {
        let idx = AreaIndex::new(polys);
        let prepared: Vec<PreparedPolygon> = polys.iter().map(PreparedPolygon::new).collect();
        let (mut out, mut inside) = (Vec::new(), 0);
        for (x, y) in points {
            let p = Position::new(x, y).unwrap();
            let expected: Vec<u32> = (0..polys.len() as u32).filter(|&i| prepared[i as usize].contains(x, y)).collect();
            idx.all_containing(p, &mut out);
            assert_eq!(out, expected, "all_containing at ({x}, {y})");
            assert_eq!(idx.containing(p), expected.first().copied(), "({x}, {y})");
            inside += usize::from(!expected.is_empty());
        }
        inside
    }

    /// Irregular multipolygons with holes, a part inside another's hole, and overlaps.
    fn holes_and_parts(rng: &mut XorShift64) -> Vec<MultiPolygon<f64>> {
        let mut radii = |n: usize, lo: f64, hi: f64| -> Vec<f64> { (0..n).map(|_| rng.range(lo, hi)).collect() };
        let a = MultiPolygon::new(vec![
            Polygon::new(ring(3.0, 3.0, &radii(40, 2.0, 3.0)), vec![ring(3.0, 3.0, &radii(25, 0.5, 1.5))]),
            // A second part inside the first part's hole.
            Polygon::new(ring(3.0, 3.0, &radii(12, 0.1, 0.4)), vec![]),
            Polygon::new(ring(8.0, 2.0, &radii(30, 0.5, 1.8)), vec![]),
        ]);
        let b = MultiPolygon::new(vec![Polygon::new(
            ring(5.5, 4.0, &radii(60, 1.0, 2.5)),
            vec![ring(5.0, 4.0, &radii(9, 0.2, 0.5)), ring(6.2, 4.3, &radii(9, 0.2, 0.5))],
        )]);
        let c = MultiPolygon::new(vec![Polygon::new(ring(9.0, 6.0, &radii(7, 0.01, 3.0)), vec![])]);
        vec![a, b, c]
    }

    #[test]
    fn raster_agrees_with_brute_force_for_holes_and_multipolygons() {
        let mut rng = XorShift64::new(0x9E37_79B9_7F4A_7C15);
        let polys = holes_and_parts(&mut rng);
        let random = (0..40_000).map(|_| (rng.range(-0.5, 12.5), rng.range(-1.0, 9.5)));
        let inside = assert_matches_brute_force(&polys, random.collect::<Vec<_>>());
        assert!(inside > 8_000, "the fixture covers much of the box: {inside}");
        // Every vertex and every edge midpoint: points exactly on the boundary.
        let on_edges: Vec<(f64, f64)> = polys
            .iter()
            .flat_map(|mp| &mp.0)
            .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
            .flat_map(|r| r.lines())
            .flat_map(|l| [(l.start.x, l.start.y), (l.start.x / 2.0 + l.end.x / 2.0, l.start.y / 2.0 + l.end.y / 2.0)])
            .collect();
        assert_matches_brute_force(&polys, on_edges);
    }

    #[test]
    fn tiling_cells_put_every_point_of_the_region_in_exactly_one_cell() {
        // An 8 × 6 chessboard of unit squares; every other square is split into two
        // triangles along a diagonal, so shared edges are horizontal, vertical and
        // diagonal.
        let mut polys = Vec::new();
        for j in 0..6 {
            for i in 0..8 {
                let (x, y) = (i as f64, j as f64);
                let (a, b, c, d) = ((x, y), (x + 1.0, y), (x + 1.0, y + 1.0), (x, y + 1.0));
                let mp = |pts: Vec<(f64, f64)>| MultiPolygon::new(vec![Polygon::new(LineString::from(pts), vec![])]);
                if (i + j) % 2 == 0 {
                    polys.push(mp(vec![a, b, c, d, a]));
                } else {
                    polys.push(mp(vec![a, b, c, a]));
                    polys.push(mp(vec![a, c, d, a]));
                }
            }
        }
        let mut rng = XorShift64::new(0x2545_F491_4F6C_DD1D);
        // A lattice of quarter units: vertices, points on shared edges (including the
        // diagonals at (k/4, k/4) offsets), and points strictly inside.
        let lattice: Vec<(f64, f64)> = (0..30_000)
            .map(|_| {
                let x = (rng.next_u64() % 41) as f64 / 4.0 - 1.0;
                let y = (rng.next_u64() % 33) as f64 / 4.0 - 1.0;
                (x, y)
            })
            .collect();
        let random: Vec<(f64, f64)> = (0..20_000).map(|_| (rng.range(-1.0, 9.0), rng.range(-1.0, 7.0))).collect();
        assert_matches_brute_force(&polys, lattice.iter().chain(&random).copied());
        // The half-open rule: the region [0, 8) × [0, 6) is partitioned exactly.
        let idx = AreaIndex::new(&polys);
        let mut out = Vec::new();
        for &(x, y) in lattice.iter().chain(&random) {
            idx.all_containing(Position::new(x, y).unwrap(), &mut out);
            let in_region = (0.0..8.0).contains(&x) && (0.0..6.0).contains(&y);
            assert_eq!(out.len(), usize::from(in_region), "({x}, {y}): {out:?}");
        }
    }

    #[test]
    fn overlapping_areas_are_all_reported() {
        let mut rng = XorShift64::new(0xD1B5_4A32_D192_ED03);
        let mut polys: Vec<MultiPolygon<f64>> = (0..25)
            .map(|_| {
                let (cx, cy) = (rng.range(1.0, 9.0), rng.range(1.0, 9.0));
                let r = rng.range(0.5, 3.0);
                let radii: Vec<f64> = (0..32).map(|_| r * rng.range(0.8, 1.0)).collect();
                MultiPolygon::new(vec![Polygon::new(ring(cx, cy, &radii), vec![])])
            })
            .collect();
        // One area covering all the others, and a duplicate of one of them.
        polys.push(MultiPolygon::new(vec![geo::Rect::new((-3.0, -3.0), (13.0, 13.0)).to_polygon()]));
        polys.push(polys[3].clone());
        let points: Vec<(f64, f64)> = (0..40_000).map(|_| (rng.range(-4.0, 14.0), rng.range(-4.0, 14.0))).collect();
        let idx = AreaIndex::new(&polys);
        let mut out = Vec::new();
        let deepest = points
            .iter()
            .map(|&(x, y)| {
                idx.all_containing(Position::new(x, y).unwrap(), &mut out);
                out.len()
            })
            .max();
        assert!(deepest >= Some(5), "areas overlap several deep: {deepest:?}");
        assert_matches_brute_force(&polys, points);
    }

    #[test]
    fn empty_layers_and_empty_polygons_contain_nothing() {
        let none: [MultiPolygon<f64>; 0] = [];
        let idx = AreaIndex::new(&none);
        assert!(idx.is_empty());
        assert_eq!(idx.containing(Position::new(1.0, 1.0).unwrap()), None);
        let polys = [MultiPolygon::new(vec![]), square_with_hole()];
        assert_matches_brute_force(&polys, [(2.0, 2.0), (5.0, 5.0), (0.0, 0.0), (0.0, 3.0)]);
        assert_eq!(AreaIndex::new(&polys).containing(Position::new(2.0, 2.0).unwrap()), Some(1));
    }

    /// The Dazhu demo map's area layers (the boundary is real, with holes and parts).
    fn dazhu() -> crate::CountyMap {
        macro_rules! layer {
            ($name:literal) => {
                (
                    concat!($name, ".geojson").to_owned(),
                    include_str!(concat!("../../../maps/dazhu/", $name, ".geojson")).to_owned(),
                )
            };
        }
        let files = vec![
            layer!("boundary"),
            layer!("townships"),
            layer!("grids"),
            layer!("posts"),
            layer!("jurisdictions"),
            layer!("fences"),
        ];
        let (map, problems) = crate::CountyMap::parse(&files);
        assert!(problems.is_empty(), "{problems:?}");
        map
    }

    #[test]
    fn raster_agrees_with_brute_force_on_the_dazhu_map() {
        let map = dazhu();
        let boundary = [map.boundary.clone()];
        let layers: [Vec<MultiPolygon<f64>>; 5] = [
            boundary.to_vec(),
            map.townships.iter().map(|a| a.polygon.clone()).collect(),
            map.grids.iter().map(|a| a.polygon.clone()).collect(),
            map.jurisdictions.iter().map(|a| a.polygon.clone()).collect(),
            map.fences.iter().map(|a| a.polygon.clone()).collect(),
        ];
        let mut rng = XorShift64::new(0xA076_1D64_78BD_642F);
        let mut bytes = 0;
        for polys in &layers {
            bytes += AreaIndex::new(polys).raster.heap_bytes();
            let r = polys.iter().filter_map(|mp| mp.bounding_rect()).reduce(|a, b| {
                geo::Rect::new(
                    (a.min().x.min(b.min().x), a.min().y.min(b.min().y)),
                    (a.max().x.max(b.max().x), a.max().y.max(b.max().y)),
                )
            });
            let r = r.expect("every Dazhu layer has areas");
            let (x0, y0, x1, y1) = (r.min().x, r.min().y, r.max().x, r.max().y);
            let random: Vec<(f64, f64)> =
                (0..20_000).map(|_| (rng.range(x0 - 0.01, x1 + 0.01), rng.range(y0 - 0.01, y1 + 0.01))).collect();
            // Vertices lie on edges shared by neighbouring areas.
            let vertices =
                polys.iter().flat_map(|mp| mp.0.iter().flat_map(|p| p.exterior().0.iter().map(|c| (c.x, c.y))));
            assert_matches_brute_force(polys, random.into_iter().chain(vertices));
        }
        assert!(bytes < 20 << 20, "the five rasters take {bytes} bytes");
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
    fn cached_cosine_haversine_is_bit_identical() {
        let mut rng = XorShift64::new(0x5851_F42D_4C95_7F2D);
        for _ in 0..20_000 {
            let a = Position::new(rng.range(-180.0, 180.0), rng.range(-90.0, 90.0)).unwrap();
            // Half the pairs county-sized, half anywhere on the globe.
            let b = if rng.next_u64().is_multiple_of(2) {
                Position::new(
                    (a.lon() + rng.range(-0.5, 0.5)).clamp(-180.0, 180.0),
                    (a.lat() + rng.range(-0.5, 0.5)).clamp(-90.0, 90.0),
                )
                .unwrap()
            } else {
                Position::new(rng.range(-180.0, 180.0), rng.range(-90.0, 90.0)).unwrap()
            };
            let cos = |p: Position| p.lat().to_radians().cos();
            assert_eq!(haversine_cos_m(a, cos(a), b, cos(b)).to_bits(), a.haversine_m(b).to_bits(), "{a:?} {b:?}");
        }
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
