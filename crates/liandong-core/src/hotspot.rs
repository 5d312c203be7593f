//! Hotspot analysis: where and at what time of day incidents happen.
//!
//! Events (incidents and alerts of the last N days; the caller chooses the days) are
//! counted per cell of a fixed square grid in metres and per time-of-day band in China
//! Standard Time, the counts are smoothed with a quartic kernel, and the cells of each
//! band are ranked by density. The grid is fixed by the county's extent and the cell
//! size, never by the events, so a cell keeps its identity from one analysis to the
//! next and layers of successive runs can be compared cell by cell.
//!
//! Method: grid counts smoothed by kernel density estimation (KDE) with the quartic
//! (biweight) kernel, K(t) = 3/π (1 − t²)² for t < 1, of Silverman, *Density Estimation
//! for Statistics and Data Analysis* (Chapman & Hall, 1986), ch. 4, the kernel ArcGIS's
//! Kernel Density and CrimeStat use. KDE is the crime-mapping literature's method of
//! choice: in Chainey, Tompson & Uhlig, "The utility of hotspot mapping for predicting
//! spatial patterns of crime", Security Journal 21 (2008) 4–28, it predicted where
//! crime would happen next better than grid thematic maps or ellipses. The kernel is
//! applied to cell counts rather than to each event (counting first, as the issue asks,
//! and as the raster KDE tools do): an event moves at most half a cell diagonal, 177 m
//! at the default cells, well inside the 500 m bandwidth.
//!
//! The analysis is deterministic: equal input gives bit-equal output, and ties in
//! density are ranked by cell index, never by hash order.

use std::collections::{BTreeMap, HashMap};

use geo::Rect;
use serde::{Deserialize, Serialize};

use crate::spatial::LocalProjection;
use crate::stats::china_day_and_ms;
use crate::{Position, UnixMs};

/// Most cells a grid may have: 4 194 304 cells (2 048 × 2 048), that is the Dazhu
/// county (57 × 50 km) at cells of about 30 m. The scratch buffers of an analysis take
/// 24 bytes a cell, so this bounds them at 100 MB.
pub const MAX_GRID_CELLS: u64 = 1 << 22;

/// Latitudes beyond this are refused: the local projection's east–west scale goes to
/// zero at the poles. Everything liandong serves is far inside.
const MAX_ABS_LAT_DEG: f64 = 85.0;

const MINUTES_PER_DAY: u16 = 1440;

/// One incident or alert to analyse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotspotEvent<'a> {
    pub position: Position,
    pub time_ms: UnixMs,
    /// What happened ("theft", "fraud", "traffic", …); only [`top_categories_by`] reads it.
    pub category: &'a str,
    /// How much the event counts, e.g. 1 for an alert and 3 for a serious incident.
    /// Events whose weight is negative or not finite are ignored and counted.
    pub weight: f64,
}

/// Settings of an analysis; the grid's extent comes from the map, not from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotspotConfig {
    /// Side of a grid cell in metres.
    pub cell_m: f64,
    /// Kernel bandwidth (search radius) in metres: an event adds to cells whose centres
    /// are nearer than this to its cell's centre. 0 disables smoothing.
    pub bandwidth_m: f64,
    /// Start of each time-of-day band, minutes after midnight China Standard Time,
    /// strictly ascending in 0..1440. The last band runs to the first start of the next
    /// day, so bands may span midnight.
    pub band_starts_min: Vec<u16>,
}

impl Default for HotspotConfig {
    /// Cells of 250 m, a 500 m bandwidth and six 4-hour bands from 02:00. A 250 m cell
    /// is a few street blocks in town, small enough to send a patrol to; the bandwidth
    /// of two cells lets an event reach its eight neighbours, so a hotspot straddling a
    /// cell edge is not split. Starting the bands at 02:00 rather than at midnight keeps
    /// the late evening (22:00–02:00), when public-order incidents peak, in one band.
    fn default() -> Self {
        HotspotConfig { cell_m: 250.0, bandwidth_m: 500.0, band_starts_min: vec![120, 360, 600, 840, 1080, 1320] }
    }
}

/// Why an analysis could not be set up; each variant names the setting at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HotspotError {
    #[error("cell_m must be a positive number of metres, got {0}")]
    CellSize(f64),
    #[error("bandwidth_m must be zero or a positive number of metres, got {0}")]
    Bandwidth(f64),
    #[error("band_starts_min {0}")]
    Bands(&'static str),
    #[error("extent {0}")]
    Extent(&'static str),
    #[error("a grid of {columns} × {rows} cells exceeds {MAX_GRID_CELLS} cells; use larger cells")]
    GridTooLarge { columns: u64, rows: u64 },
}

impl HotspotError {
    /// The setting the error is about, for messages that name it.
    pub fn field(&self) -> &'static str {
        match self {
            HotspotError::CellSize(_) | HotspotError::GridTooLarge { .. } => "cell_m",
            HotspotError::Bandwidth(_) => "bandwidth_m",
            HotspotError::Bands(_) => "band_starts_min",
            HotspotError::Extent(_) => "extent",
        }
    }
}

/// A grid cell: column `i` counted eastwards and row `j` northwards from the grid's
/// south-west corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CellId {
    pub i: u32,
    pub j: u32,
}

/// A fixed square grid in metres over an extent, in the local equirectangular
/// projection of [`LocalProjection`] at the extent's middle latitude.
///
/// That projection is linear in longitude and latitude, so every cell is also a
/// lon/lat rectangle and its corners are exact. Its east–west scale is true at the
/// middle latitude; 0.25° north or south of it (the Dazhu county's half height) cells
/// are 0.26 % narrower on the ground than `cell_m`, a distortion far below what a
/// hotspot map can show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotspotGrid {
    west_deg: f64,
    south_deg: f64,
    m_per_deg_lon: f64,
    m_per_deg_lat: f64,
    cell_m: f64,
    columns: u32,
    rows: u32,
}

impl HotspotGrid {
    /// The grid of `cell_m` cells whose south-west corner is the extent's; the last
    /// column and row reach up to a cell beyond the extent's east and north edges.
    pub fn new(extent: Rect<f64>, cell_m: f64) -> Result<HotspotGrid, HotspotError> {
        if !(cell_m.is_finite() && cell_m > 0.0) {
            return Err(HotspotError::CellSize(cell_m));
        }
        let (min, max) = (extent.min(), extent.max());
        if Position::new(min.x, min.y).is_err() || Position::new(max.x, max.y).is_err() {
            return Err(HotspotError::Extent("must be WGS 84 longitudes and latitudes"));
        }
        if min.y < -MAX_ABS_LAT_DEG || max.y > MAX_ABS_LAT_DEG {
            return Err(HotspotError::Extent("must lie between 85°S and 85°N"));
        }
        // The projection is linear, so projecting (1°, 1°) gives its scale in metres
        // per degree along each axis.
        let [m_per_deg_lon, m_per_deg_lat] = LocalProjection::at_lat((min.y + max.y) / 2.0).project(1.0, 1.0);
        let cells = |extent_m: f64| ((extent_m / cell_m).ceil() as u64).max(1);
        let columns = cells((max.x - min.x) * m_per_deg_lon);
        let rows = cells((max.y - min.y) * m_per_deg_lat);
        if columns.saturating_mul(rows) > MAX_GRID_CELLS {
            return Err(HotspotError::GridTooLarge { columns, rows });
        }
        Ok(HotspotGrid {
            west_deg: min.x,
            south_deg: min.y,
            m_per_deg_lon,
            m_per_deg_lat,
            cell_m,
            columns: columns as u32,
            rows: rows as u32,
        })
    }

    pub fn cell_m(&self) -> f64 {
        self.cell_m
    }

    pub fn columns(&self) -> u32 {
        self.columns
    }

    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// The cell holding `p`, or None outside the grid. Cells are half-open: a point on
    /// the line between two cells belongs to the eastern (northern) one.
    pub fn cell_of(&self, p: Position) -> Option<CellId> {
        let x = (p.lon() - self.west_deg) * self.m_per_deg_lon / self.cell_m;
        let y = (p.lat() - self.south_deg) * self.m_per_deg_lat / self.cell_m;
        // Negated comparisons, so that a NaN could never pass.
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        let (i, j) = (x as u64, y as u64);
        (i < u64::from(self.columns) && j < u64::from(self.rows)).then_some(CellId { i: i as u32, j: j as u32 })
    }

    /// The position `(fx, fy)` cells east and north of the grid's south-west corner.
    fn at(&self, fx: f64, fy: f64) -> Position {
        let lon = self.west_deg + fx * self.cell_m / self.m_per_deg_lon;
        let lat = self.south_deg + fy * self.cell_m / self.m_per_deg_lat;
        // The extent was checked and the grid exceeds it by less than a cell, so only
        // a grid touching the antimeridian needs the clamp.
        Position::new(lon.clamp(-180.0, 180.0), lat.clamp(-90.0, 90.0)).expect("finite, clamped coordinates")
    }

    pub fn centre(&self, c: CellId) -> Position {
        self.at(f64::from(c.i) + 0.5, f64::from(c.j) + 0.5)
    }

    /// The cell's corners, counter-clockwise from the south-west one; a GeoJSON ring
    /// closes them by repeating the first.
    pub fn corners(&self, c: CellId) -> [Position; 4] {
        let (x, y) = (f64::from(c.i), f64::from(c.j));
        [self.at(x, y), self.at(x + 1.0, y), self.at(x + 1.0, y + 1.0), self.at(x, y + 1.0)]
    }

    /// Row-major index: the south row first, each row from west to east. Ties in
    /// density are ranked in this order.
    fn index(&self, c: CellId) -> u32 {
        c.j * self.columns + c.i
    }

    fn cell(&self, index: u32) -> CellId {
        CellId { i: index % self.columns, j: index / self.columns }
    }

    fn len(&self) -> usize {
        self.columns as usize * self.rows as usize
    }
}

/// One time-of-day band, in minutes after midnight China Standard Time: from
/// `from_min` (inclusive) to `to_min` (exclusive), across midnight when `to_min` is
/// not after `from_min`. A single band covers the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBand {
    pub from_min: u16,
    pub to_min: u16,
}

impl TimeBand {
    /// "22:00–02:00"; an end at midnight reads "24:00".
    pub fn label(&self) -> String {
        let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        let to = if self.to_min == 0 { "24:00".to_owned() } else { hhmm(self.to_min) };
        format!("{}–{}", hhmm(self.from_min), to)
    }
}

/// The time-of-day bands of an analysis, numbered in order of their start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBands {
    starts_min: Vec<u16>,
    /// The band of each minute of the day, so that placing an event is one load.
    by_minute: Vec<u16>,
}

impl TimeBands {
    pub fn new(starts_min: &[u16]) -> Result<TimeBands, HotspotError> {
        if starts_min.is_empty() {
            return Err(HotspotError::Bands("must name at least one band start"));
        }
        if starts_min.iter().any(|&m| m >= MINUTES_PER_DAY) {
            return Err(HotspotError::Bands("must be minutes of the day, 0 to 1439"));
        }
        if starts_min.windows(2).any(|w| w[0] >= w[1]) {
            return Err(HotspotError::Bands("must be strictly ascending"));
        }
        let last = starts_min.len() - 1;
        let by_minute = (0..MINUTES_PER_DAY)
            .map(|m| match starts_min.iter().rposition(|&s| s <= m) {
                Some(b) => b as u16,
                // Before the first start: still the last band, begun the day before.
                None => last as u16,
            })
            .collect();
        Ok(TimeBands { starts_min: starts_min.to_vec(), by_minute })
    }

    pub fn len(&self) -> usize {
        self.starts_min.len()
    }

    /// Always false: there is at least one band.
    pub fn is_empty(&self) -> bool {
        self.starts_min.is_empty()
    }

    pub fn get(&self, band: usize) -> Option<TimeBand> {
        let from_min = *self.starts_min.get(band)?;
        let to_min = self.starts_min.get(band + 1).copied().unwrap_or(self.starts_min[0]);
        Some(TimeBand { from_min, to_min })
    }

    pub fn iter(&self) -> impl Iterator<Item = TimeBand> + '_ {
        (0..self.len()).filter_map(|b| self.get(b))
    }

    /// The band of minute `minute` (0..1440) of the day in China Standard Time.
    pub fn band_of_minute(&self, minute: u16) -> usize {
        usize::from(self.by_minute[usize::from(minute % MINUTES_PER_DAY)])
    }

    /// The band of the instant `t_ms`, read in China Standard Time (UTC+8).
    pub fn band_of(&self, t_ms: UnixMs) -> usize {
        let (_, ms_of_day) = china_day_and_ms(t_ms);
        self.band_of_minute((ms_of_day / 60_000) as u16)
    }
}

/// A cell of one band with its smoothed density and raw counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotCell {
    pub cell: CellId,
    pub band: usize,
    pub centre: Position,
    /// Counter-clockwise from the south-west corner (see [`HotspotGrid::corners`]).
    pub corners: [Position; 4],
    /// Kernel density: weighted events per square kilometre.
    pub density_per_km2: f64,
    /// Events inside the cell itself during the band, before smoothing.
    pub count: u32,
    /// Their total weight.
    pub weight: f64,
}

/// What one analysis found: for each band, the cells with a density or an event.
#[derive(Debug, Clone)]
pub struct Hotspots {
    grid: HotspotGrid,
    bands: TimeBands,
    per_band: Vec<BandCells>,
    used: usize,
    outside: usize,
    invalid_weight: usize,
}

#[derive(Debug, Clone, Default)]
struct BandCells {
    /// Ascending by cell index; only cells with a density or an event.
    entries: Vec<Entry>,
    /// Indices into `entries`, densest first, ties by cell index.
    ranked: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    cell: u32,
    density_per_km2: f64,
    count: u32,
    weight: f64,
}

/// The kernel, discretised over cell offsets: `(di, dj, density per km² for one unit of
/// weight in the centre cell)`.
fn stencil(bandwidth_m: f64, cell_m: f64) -> Vec<(i32, i32, f64)> {
    let cell_km2 = (cell_m / 1000.0).powi(2);
    let reach = (bandwidth_m / cell_m).ceil() as i32;
    let mut out = Vec::new();
    for dj in -reach..=reach {
        for di in -reach..=reach {
            let d2_m2 = f64::from(di * di + dj * dj) * cell_m * cell_m;
            let h2_m2 = bandwidth_m * bandwidth_m;
            if d2_m2 < h2_m2 {
                // Silverman's quartic kernel, 3/π (1 − d²/h²)² / h²; the constant drops
                // out in the normalisation below.
                out.push((di, dj, (1.0 - d2_m2 / h2_m2).powi(2)));
            }
        }
    }
    if out.is_empty() {
        // A zero bandwidth: no smoothing, each cell keeps its own count.
        out.push((0, 0, 1.0));
    }
    // Normalised over the cells, so that smoothing moves weight between cells but,
    // away from the grid's edges, neither adds nor loses any: Σ density × area = Σ
    // weight. The continuous kernel integrates to one; its samples at cell centres do
    // not, the coarser the cells the less so.
    let total: f64 = out.iter().map(|s| s.2).sum();
    for s in &mut out {
        s.2 /= total * cell_km2;
    }
    out
}

/// Counts `events` per cell of the grid over `extent` and per time band, smooths and
/// ranks them. Events outside the grid and events with a negative or non-finite weight
/// are left out, and counted ([`Hotspots::events_outside`],
/// [`Hotspots::events_invalid_weight`]).
///
/// Cost is linear in the events plus the occupied cells times the kernel's footprint
/// (9 cells by default); 100 000 events take a few milliseconds on one core (see
/// `benches/hotspot.rs`), so the analysis runs on one thread.
pub fn analyse(
    events: &[HotspotEvent<'_>],
    extent: Rect<f64>,
    config: &HotspotConfig,
) -> Result<Hotspots, HotspotError> {
    let grid = HotspotGrid::new(extent, config.cell_m)?;
    let bands = TimeBands::new(&config.band_starts_min)?;
    if !(config.bandwidth_m.is_finite() && config.bandwidth_m >= 0.0) {
        return Err(HotspotError::Bandwidth(config.bandwidth_m));
    }
    let kernel = stencil(config.bandwidth_m, grid.cell_m);

    // Bucket the events by band: (cell index, weight).
    let mut by_band: Vec<Vec<(u32, f64)>> = vec![Vec::new(); bands.len()];
    let (mut used, mut outside, mut invalid_weight) = (0, 0, 0);
    for e in events {
        if !(e.weight.is_finite() && e.weight >= 0.0) {
            invalid_weight += 1;
            continue;
        }
        let Some(cell) = grid.cell_of(e.position) else {
            outside += 1;
            continue;
        };
        used += 1;
        by_band[bands.band_of(e.time_ms)].push((grid.index(cell), e.weight));
    }

    // Dense scratch over the grid, reused by every band and reset only where touched.
    let n = grid.len();
    let mut count = vec![0u32; n];
    let mut weight = vec![0.0f64; n];
    let mut density = vec![0.0f64; n];
    // The band (plus one) that last wrote `density[c]`: a stale stamp reads as zero,
    // so the buffer needs no clearing between bands.
    let mut stamp = vec![0u32; n];
    let (columns, rows) = (grid.columns as i64, grid.rows as i64);
    let mut occupied = Vec::new();
    let mut reached = Vec::new();
    let mut per_band = Vec::with_capacity(bands.len());
    for (band, band_events) in by_band.iter().enumerate() {
        let band_stamp = band as u32 + 1;
        occupied.clear();
        reached.clear();
        for &(c, w) in band_events {
            let c = c as usize;
            if count[c] == 0 {
                occupied.push(c as u32);
            }
            count[c] += 1;
            weight[c] += w;
        }
        // Spread in cell order, so that each density is summed in an order that does
        // not depend on the order of the events.
        occupied.sort_unstable();
        for &c in &occupied {
            let (i, j) = (i64::from(c) % columns, i64::from(c) / columns);
            let w = weight[c as usize];
            for &(di, dj, k) in &kernel {
                let (ni, nj) = (i + i64::from(di), j + i64::from(dj));
                if ni < 0 || nj < 0 || ni >= columns || nj >= rows {
                    continue;
                }
                let d = (nj * columns + ni) as usize;
                if stamp[d] != band_stamp {
                    stamp[d] = band_stamp;
                    density[d] = 0.0;
                    reached.push(d as u32);
                }
                density[d] += w * k;
            }
        }
        // Every occupied cell is reached: the kernel always includes its own cell.
        // Cell order: sorting costs about log₂(reached) steps a cell, a scan of the
        // stamps one cheap step a grid cell; scan once the kernel reaches a sixteenth
        // of the grid, as it does at fine cells.
        if reached.len() >= n / 16 {
            reached.clear();
            reached.extend((0..n as u32).filter(|&c| stamp[c as usize] == band_stamp));
        } else {
            reached.sort_unstable();
        }
        let entries: Vec<Entry> = reached
            .iter()
            .map(|&c| {
                let c_us = c as usize;
                Entry { cell: c, density_per_km2: density[c_us], count: count[c_us], weight: weight[c_us] }
            })
            .collect();
        for &c in &occupied {
            count[c as usize] = 0;
            weight[c as usize] = 0.0;
        }
        // Densities are never negative nor NaN, and the bits of non-negative floats
        // order as their values: sorting (inverted bits, position) ranks densest
        // first and, as `entries` is in cell order, ties by cell, with integer
        // comparisons only.
        let mut keys: Vec<(u64, u32)> =
            entries.iter().enumerate().map(|(k, e)| (!e.density_per_km2.to_bits(), k as u32)).collect();
        keys.sort_unstable();
        let ranked = keys.into_iter().map(|(_, k)| k).collect();
        per_band.push(BandCells { entries, ranked });
    }
    Ok(Hotspots { grid, bands, per_band, used, outside, invalid_weight })
}

impl Hotspots {
    pub fn grid(&self) -> &HotspotGrid {
        &self.grid
    }

    pub fn bands(&self) -> &TimeBands {
        &self.bands
    }

    /// Events counted in some cell.
    pub fn events_used(&self) -> usize {
        self.used
    }

    /// Events outside the grid, left out.
    pub fn events_outside(&self) -> usize {
        self.outside
    }

    /// Events with a negative or non-finite weight, left out.
    pub fn events_invalid_weight(&self) -> usize {
        self.invalid_weight
    }

    fn hot_cell(&self, band: usize, e: &Entry) -> HotCell {
        let cell = self.grid.cell(e.cell);
        HotCell {
            cell,
            band,
            centre: self.grid.centre(cell),
            corners: self.grid.corners(cell),
            density_per_km2: e.density_per_km2,
            count: e.count,
            weight: e.weight,
        }
    }

    /// The `k` densest cells of `band`, densest first, ties by cell index (south row
    /// first, west to east). Empty for a band that does not exist.
    pub fn top(&self, band: usize, k: usize) -> Vec<HotCell> {
        let Some(b) = self.per_band.get(band) else {
            return Vec::new();
        };
        b.ranked.iter().take(k).map(|&r| self.hot_cell(band, &b.entries[r as usize])).collect()
    }

    /// The density of the cell holding `p` during `band`, weighted events per km²;
    /// zero outside the grid or for a band that does not exist.
    pub fn density_at(&self, p: Position, band: usize) -> f64 {
        let (Some(cell), Some(b)) = (self.grid.cell_of(p), self.per_band.get(band)) else {
            return 0.0;
        };
        let c = self.grid.index(cell);
        match b.entries.binary_search_by_key(&c, |e| e.cell) {
            Ok(at) => b.entries[at].density_per_km2,
            Err(_) => 0.0,
        }
    }

    /// The cells of `band` with a density or an event, in cell index order.
    pub fn band_cells(&self, band: usize) -> impl Iterator<Item = HotCell> + '_ {
        let entries = self.per_band.get(band).map_or(&[][..], |b| &b.entries[..]);
        entries.iter().map(move |e| self.hot_cell(band, e))
    }

    /// Every cell with a density or an event, band by band, for publishing as a layer.
    pub fn cells(&self) -> impl Iterator<Item = HotCell> + '_ {
        (0..self.per_band.len()).flat_map(move |band| self.band_cells(band))
    }
}

/// A category's share of an area's events.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryWeight {
    pub category: String,
    pub weight: f64,
    pub count: u32,
}

/// The leading categories of one area (a township): the "publicity focus", which legal
/// publicity to push where.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaCategories<K> {
    pub area: K,
    /// Weight and count of all the area's events, not only of the categories listed.
    pub weight: f64,
    pub count: u32,
    /// At most `k`, heaviest first; ties by count, then by name.
    pub categories: Vec<CategoryWeight>,
}

/// The `k` heaviest categories of the events in each area, areas in ascending order.
///
/// `area_of` places an event (a township lookup, say `|p| enricher.township_of(p)`); it
/// is a closure so that this module needs no map. Events it places nowhere, and events
/// with a negative or non-finite weight, are left out.
pub fn top_categories_by<K: Ord>(
    events: &[HotspotEvent<'_>],
    k: usize,
    mut area_of: impl FnMut(Position) -> Option<K>,
) -> Vec<AreaCategories<K>> {
    type Tally<'a> = (f64, u32, HashMap<&'a str, (f64, u32)>);
    let mut areas: BTreeMap<K, Tally<'_>> = BTreeMap::new();
    for e in events {
        if !(e.weight.is_finite() && e.weight >= 0.0) {
            continue;
        }
        let Some(area) = area_of(e.position) else {
            continue;
        };
        let (weight, count, categories) = areas.entry(area).or_default();
        *weight += e.weight;
        *count += 1;
        let c = categories.entry(e.category).or_default();
        c.0 += e.weight;
        c.1 += 1;
    }
    areas
        .into_iter()
        .map(|(area, (weight, count, categories))| {
            let mut categories: Vec<CategoryWeight> = categories
                .into_iter()
                .map(|(name, (weight, count))| CategoryWeight { category: name.to_owned(), weight, count })
                .collect();
            // Names are unique, so this order is total: the hash map's order cannot leak.
            categories.sort_by(|a, b| {
                b.weight.total_cmp(&a.weight).then(b.count.cmp(&a.count)).then_with(|| a.category.cmp(&b.category))
            });
            categories.truncate(k);
            AreaCategories { area, weight, count, categories }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::days_from_civil;
    use crate::xorshift::XorShift64;

    /// Roughly the Dazhu county's bounding box.
    fn extent() -> Rect<f64> {
        Rect::new((106.95, 30.50), (107.55, 30.95))
    }

    /// Unix ms of 2026-11-`day` at `hour`:`min` China Standard Time.
    fn cst(day: u32, hour: i64, min: i64) -> UnixMs {
        days_from_civil(2026, 11, day) * 86_400_000 + (hour - 8) * 3_600_000 + min * 60_000
    }

    /// `n` events within about `spread_m` metres of `(lon, lat)`, on days 1–28 at
    /// random minutes between `from_h` and `from_h + hours` (China time).
    fn cluster(
        rng: &mut XorShift64,
        lon: f64,
        lat: f64,
        spread_m: f64,
        from_h: i64,
        hours: i64,
        n: usize,
    ) -> Vec<HotspotEvent<'static>> {
        (0..n)
            .map(|_| {
                let dx = (rng.unit() - 0.5) * 2.0 * spread_m / 95_700.0;
                let dy = (rng.unit() - 0.5) * 2.0 * spread_m / 111_195.0;
                let day = 1 + (rng.next_u64() % 28) as u32;
                let min = (rng.next_u64() % (hours as u64 * 60)) as i64;
                HotspotEvent {
                    position: Position::new(lon + dx, lat + dy).unwrap(),
                    time_ms: cst(day, from_h, min),
                    category: "theft",
                    weight: 1.0,
                }
            })
            .collect()
    }

    fn band_from(hs: &Hotspots, from_h: u16) -> usize {
        hs.bands().iter().position(|b| b.from_min == from_h * 60).expect("a band starts there")
    }

    #[test]
    fn clusters_top_their_own_time_bands() {
        let mut rng = XorShift64::new(0x9E37_79B9_7F4A_7C15);
        let (a, b) = ((107.10, 30.60), (107.40, 30.85));
        let mut events = cluster(&mut rng, a.0, a.1, 100.0, 22, 4, 300);
        events.extend(cluster(&mut rng, b.0, b.1, 100.0, 10, 4, 300));
        // Background: uniform over the county and the day, too thin to make a hotspot.
        for _ in 0..2_000 {
            let p = Position::new(106.95 + rng.unit() * 0.6, 30.50 + rng.unit() * 0.45).unwrap();
            let t = cst(1 + (rng.next_u64() % 28) as u32, 0, (rng.next_u64() % 1440) as i64);
            events.push(HotspotEvent { position: p, time_ms: t, category: "traffic", weight: 1.0 });
        }
        let hs = analyse(&events, extent(), &HotspotConfig::default()).unwrap();
        assert_eq!(hs.events_used(), events.len());
        let near = |c: &HotCell, (lon, lat): (f64, f64)| c.centre.haversine_m(Position::new(lon, lat).unwrap()) < 250.0;
        // (band starting at, expected top place, the other place)
        let rows = [(22, a, b), (10, b, a)];
        for (from_h, hot, cold) in rows {
            let band = band_from(&hs, from_h);
            let top = hs.top(band, 3);
            assert_eq!(top.len(), 3);
            assert!(near(&top[0], hot), "band {from_h}: {:?}", top[0]);
            assert!(top.iter().all(|c| !near(c, cold)), "band {from_h}");
            assert!(top.windows(2).all(|w| w[0].density_per_km2 >= w[1].density_per_km2));
            let peak = hs.density_at(Position::new(hot.0, hot.1).unwrap(), band);
            assert!(peak > 10.0 * hs.density_at(Position::new(cold.0, cold.1).unwrap(), band), "band {from_h}");
        }
        // Between the two clusters' hours only the background remains.
        let quiet = band_from(&hs, 2);
        assert!(hs.top(quiet, 1)[0].count <= 3, "{:?}", hs.top(quiet, 1));
    }

    #[test]
    fn smoothing_spreads_to_neighbours_and_keeps_the_peak_and_the_total() {
        let hs0 = analyse(&[], extent(), &HotspotConfig::default()).unwrap();
        let centre = hs0.grid().centre(CellId { i: 40, j: 30 });
        let events: Vec<HotspotEvent> = (0..10)
            .map(|k| HotspotEvent { position: centre, time_ms: cst(3, 12, k), category: "theft", weight: 2.0 })
            .collect();
        let hs = analyse(&events, extent(), &HotspotConfig::default()).unwrap();
        let band = band_from(&hs, 10);
        let at = |di: i32, dj: i32| {
            let c = CellId { i: (40 + di) as u32, j: (30 + dj) as u32 };
            hs.density_at(hs.grid().centre(c), band)
        };
        // With 250 m cells and a 500 m bandwidth the kernel reaches the 8 neighbours
        // (250 m and 354 m away) and stops short of cells 500 m away.
        let (peak, side, diagonal, beyond) = (at(0, 0), at(1, 0), at(1, 1), at(2, 0));
        assert!(peak > side && side > diagonal && diagonal > 0.0, "{peak} {side} {diagonal}");
        assert_eq!(beyond, 0.0);
        assert_eq!((at(-1, 0), at(0, 1), at(0, -1)), (side, side, side));
        assert_eq!((at(-1, -1), at(1, -1), at(-1, 1)), (diagonal, diagonal, diagonal));
        // Quartic weights 1, (1 − ¼)² and (1 − ½)²; the cells hold 20 units of weight.
        let cell_km2 = 0.0625;
        let (w0, w1, w2) = (1.0, 0.5625, 0.25);
        let total = w0 + 4.0 * w1 + 4.0 * w2;
        assert!((peak - 20.0 * w0 / total / cell_km2).abs() < 1e-9, "{peak}");
        assert!((side - 20.0 * w1 / total / cell_km2).abs() < 1e-9, "{side}");
        let mass: f64 = hs.band_cells(band).map(|c| c.density_per_km2 * cell_km2).sum();
        assert!((mass - 20.0).abs() < 1e-9, "{mass}");
        let cells: Vec<HotCell> = hs.band_cells(band).collect();
        assert_eq!(cells.len(), 9);
        assert_eq!(cells.iter().map(|c| c.count).sum::<u32>(), 10, "counts stay in their own cell");
        let top = hs.top(band, 1);
        assert_eq!((top[0].cell, top[0].count, top[0].weight), (CellId { i: 40, j: 30 }, 10, 20.0));
        // No smoothing: the whole weight stays in the cell.
        let flat = HotspotConfig { bandwidth_m: 0.0, ..HotspotConfig::default() };
        let hs = analyse(&events, extent(), &flat).unwrap();
        assert_eq!(hs.band_cells(band).count(), 1);
        assert!((hs.density_at(centre, band) - 20.0 / cell_km2).abs() < 1e-9);
    }

    #[test]
    fn empty_input_gives_empty_bands() {
        let hs = analyse(&[], extent(), &HotspotConfig::default()).unwrap();
        assert_eq!(hs.bands().len(), 6);
        for band in 0..6 {
            assert!(hs.top(band, 10).is_empty());
            assert_eq!(hs.band_cells(band).count(), 0);
        }
        assert_eq!(hs.cells().count(), 0);
        assert_eq!(hs.density_at(Position::new(107.2, 30.7).unwrap(), 0), 0.0);
        assert!(hs.top(6, 10).is_empty(), "a band that does not exist");
        assert_eq!((hs.events_used(), hs.events_outside(), hs.events_invalid_weight()), (0, 0, 0));
        assert!(top_categories_by(&[], 3, |_| Some(1)).is_empty());
    }

    #[test]
    fn events_outside_the_grid_and_bad_weights_are_left_out_and_counted() {
        let grid = HotspotGrid::new(extent(), 250.0).unwrap();
        let t = cst(5, 9, 0);
        let ev = |lon: f64, lat: f64, weight: f64| HotspotEvent {
            position: Position::new(lon, lat).unwrap(),
            time_ms: t,
            category: "fraud",
            weight,
        };
        // (event, counted)
        let rows = [
            (ev(106.95, 30.50, 1.0), true), // the south-west corner is in cell (0, 0)
            (ev(107.55, 30.95, 1.0), true), // the north-east corner is in the last cell
            (ev(106.949, 30.7, 1.0), false),
            (ev(107.2, 30.499, 1.0), false),
            (ev(107.6, 30.7, 1.0), false),
            (ev(107.2, 31.0, 1.0), false),
            (ev(-70.0, -30.0, 1.0), false),
        ];
        for (e, counted) in rows {
            let hs = analyse(&[e], extent(), &HotspotConfig::default()).unwrap();
            assert_eq!(hs.events_used(), usize::from(counted), "{e:?}");
            assert_eq!(hs.events_outside(), usize::from(!counted), "{e:?}");
            assert_eq!(hs.cells().map(|c| c.count).sum::<u32>(), u32::from(counted));
            assert_eq!(grid.cell_of(e.position).is_some(), counted);
        }
        assert_eq!(grid.cell_of(Position::new(106.95, 30.50).unwrap()), Some(CellId { i: 0, j: 0 }));
        let last = grid.cell_of(Position::new(107.55, 30.95).unwrap()).unwrap();
        assert_eq!((last.i, last.j), (grid.columns() - 1, grid.rows() - 1));
        // A cell at the grid's edge: the kernel's part beyond the edge is dropped.
        let hs = analyse(&[rows[0].0], extent(), &HotspotConfig::default()).unwrap();
        assert_eq!(hs.cells().count(), 4, "the corner cell and its three neighbours in the grid");
        let bad =
            [ev(107.2, 30.7, -1.0), ev(107.2, 30.7, f64::NAN), ev(107.2, 30.7, f64::INFINITY), ev(107.2, 30.7, 0.0)];
        let hs = analyse(&bad, extent(), &HotspotConfig::default()).unwrap();
        assert_eq!((hs.events_used(), hs.events_invalid_weight()), (1, 3));
        let zero = hs.top(hs.bands().band_of(t), 10);
        assert_eq!(zero.iter().map(|c| c.count).sum::<u32>(), 1, "a zero weight still counts as an event");
        assert!(zero.iter().all(|c| c.density_per_km2 == 0.0));
    }

    #[test]
    fn ties_rank_by_cell_index_and_input_order_does_not_matter() {
        let grid = HotspotGrid::new(extent(), 250.0).unwrap();
        // Four equal cells, far apart, listed out of cell order.
        let cells =
            [CellId { i: 100, j: 50 }, CellId { i: 10, j: 50 }, CellId { i: 60, j: 5 }, CellId { i: 5, j: 150 }];
        let mut events: Vec<HotspotEvent> = cells
            .iter()
            .flat_map(|&c| {
                (0..4).map(move |k| HotspotEvent {
                    position: grid.centre(c),
                    time_ms: cst(7, 15, k),
                    category: "theft",
                    weight: 1.0,
                })
            })
            .collect();
        let hs = analyse(&events, extent(), &HotspotConfig::default()).unwrap();
        let band = band_from(&hs, 14);
        let top: Vec<CellId> = hs.top(band, 4).iter().map(|c| c.cell).collect();
        assert_eq!(top, [cells[2], cells[1], cells[0], cells[3]]);
        events.reverse();
        let reversed = analyse(&events, extent(), &HotspotConfig::default()).unwrap();
        assert_eq!(reversed.top(band, 4), hs.top(band, 4));
        let all: Vec<HotCell> = hs.cells().collect();
        assert_eq!(reversed.cells().collect::<Vec<_>>(), all);
    }

    #[test]
    fn cells_have_square_corners_around_their_centre() {
        let hs = analyse(
            &[HotspotEvent { position: Position::new(107.2, 30.7).unwrap(), time_ms: 0, category: "x", weight: 1.0 }],
            extent(),
            &HotspotConfig::default(),
        )
        .unwrap();
        for c in hs.cells() {
            let [sw, se, ne, nw] = c.corners;
            for (a, b) in [(sw, se), (se, ne), (ne, nw), (nw, sw)] {
                assert!((a.haversine_m(b) - 250.0).abs() < 1.0, "{a:?} {b:?}");
            }
            assert!(sw.lon() < c.centre.lon() && c.centre.lon() < ne.lon());
            assert!(sw.lat() < c.centre.lat() && c.centre.lat() < ne.lat());
            assert_eq!(hs.grid().cell_of(c.centre), Some(c.cell));
            assert_eq!(hs.density_at(c.centre, c.band), c.density_per_km2);
        }
    }

    #[test]
    fn time_bands_in_china_time() {
        let bands = TimeBands::new(&HotspotConfig::default().band_starts_min).unwrap();
        // (China time, band, label)
        let rows = [
            ((0, 0), 5, "22:00–02:00"),
            ((1, 59), 5, "22:00–02:00"),
            ((2, 0), 0, "02:00–06:00"),
            ((11, 30), 2, "10:00–14:00"),
            ((21, 59), 4, "18:00–22:00"),
            ((22, 0), 5, "22:00–02:00"),
            ((23, 59), 5, "22:00–02:00"),
        ];
        for ((h, m), band, label) in rows {
            assert_eq!(bands.band_of(cst(10, h, m)), band, "{h}:{m}");
            assert_eq!(bands.get(band).unwrap().label(), label);
        }
        let whole_day = TimeBands::new(&[0]).unwrap();
        assert_eq!(whole_day.get(0).unwrap().label(), "00:00–24:00");
        assert_eq!(whole_day.band_of(cst(10, 17, 3)), 0);
        let two = TimeBands::new(&[480, 1200]).unwrap();
        assert_eq!(two.get(1).unwrap().label(), "20:00–08:00");
        assert_eq!(two.band_of(-1), 1, "07:59:59.999 China time on 1970-01-01 is in the evening band");
    }

    #[test]
    fn bad_settings_name_their_field() {
        let d = HotspotConfig::default();
        // (config, extent, field)
        let rows = [
            (HotspotConfig { cell_m: 0.0, ..d.clone() }, extent(), "cell_m"),
            (HotspotConfig { cell_m: f64::NAN, ..d.clone() }, extent(), "cell_m"),
            (HotspotConfig { cell_m: 1.0, ..d.clone() }, extent(), "cell_m"),
            (HotspotConfig { bandwidth_m: -1.0, ..d.clone() }, extent(), "bandwidth_m"),
            (HotspotConfig { bandwidth_m: f64::INFINITY, ..d.clone() }, extent(), "bandwidth_m"),
            (HotspotConfig { band_starts_min: vec![], ..d.clone() }, extent(), "band_starts_min"),
            (HotspotConfig { band_starts_min: vec![600, 120], ..d.clone() }, extent(), "band_starts_min"),
            (HotspotConfig { band_starts_min: vec![120, 120], ..d.clone() }, extent(), "band_starts_min"),
            (HotspotConfig { band_starts_min: vec![1440], ..d.clone() }, extent(), "band_starts_min"),
            (d.clone(), Rect::new((107.0, 30.0), (200.0, 31.0)), "extent"),
            (d.clone(), Rect::new((107.0, 86.0), (108.0, 87.0)), "extent"),
        ];
        for (config, extent, field) in rows {
            let err = analyse(&[], extent, &config).unwrap_err();
            assert_eq!(err.field(), field, "{config:?}: {err}");
        }
    }

    #[test]
    fn top_categories_per_township() {
        let ev = |lon: f64, category: &'static str, weight: f64| HotspotEvent {
            position: Position::new(lon, 30.7).unwrap(),
            time_ms: 0,
            category,
            weight,
        };
        let events = [
            ev(107.1, "theft", 1.0),
            ev(107.1, "theft", 1.0),
            ev(107.1, "fraud", 3.0),
            ev(107.1, "traffic", 1.0),
            ev(107.1, "brawl", 1.0),
            ev(107.3, "traffic", 1.0),
            ev(107.3, "gambling", 1.0),
            ev(107.3, "traffic", 1.0),
            ev(107.3, "fraud", f64::NAN),
            ev(107.9, "theft", 1.0), // in no township
        ];
        // Township "east" from 107.2, "west" up to 107.2, nothing past 107.5.
        let township = |p: Position| match p.lon() {
            lon if lon < 107.2 => Some("west"),
            lon if lon < 107.5 => Some("east"),
            _ => None,
        };
        let focus = top_categories_by(&events, 2, township);
        type Summary<'a> = (&'a str, f64, u32, Vec<(&'a str, f64, u32)>);
        let summary: Vec<Summary> = focus
            .iter()
            .map(|a| {
                let cats = a.categories.iter().map(|c| (c.category.as_str(), c.weight, c.count)).collect();
                (a.area, a.weight, a.count, cats)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("east", 3.0, 3, vec![("traffic", 2.0, 2), ("gambling", 1.0, 1)]),
                // fraud outweighs theft; brawl and traffic tie and fall off the list.
                ("west", 7.0, 5, vec![("fraud", 3.0, 1), ("theft", 2.0, 2)]),
            ]
        );
        let all = top_categories_by(&events, 10, township);
        let west: Vec<&str> = all[1].categories.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(west, ["fraud", "theft", "brawl", "traffic"], "equal weight and count: by name");
    }
}
