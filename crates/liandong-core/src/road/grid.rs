//! The synthetic road network of the benchmarks and tests: a jittered square grid over
//! the county, built into a [`RoadGraph`] like any map's roads.

use geo::{Coord, LineString};

use super::{RoadGraph, RoadSpeeds};
use crate::map::Line;
use crate::position::EARTH_RADIUS_M;
use crate::xorshift::XorShift64;
use crate::Position;

/// A jittered square grid of roads around a south-west corner: the synthetic network
/// of the benchmarks and tests. Every 16th line is `primary`, every 4th `tertiary`, the
/// rest `residential`, so the fastest path often differs from the shortest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridSpec {
    pub south_west: Position,
    /// Nodes per row.
    pub cols: u32,
    /// Nodes per column.
    pub rows: u32,
    pub spacing_m: f64,
    /// Each node moves by up to this fraction of the spacing along each axis.
    pub jitter: f64,
    pub seed: u64,
}

impl GridSpec {
    /// 224 × 224 nodes 250 m apart over Dazhu county (50,176 nodes, 99,904 edges).
    pub fn dazhu_100k_edges() -> GridSpec {
        GridSpec {
            south_west: Position::new(106.95, 30.50).expect("a valid corner"),
            cols: 224,
            rows: 224,
            spacing_m: 250.0,
            jitter: 0.3,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The grid as road lines: one per row and one per column, with a vertex at every
    /// crossing (shared exactly, so crossings are junctions).
    pub fn roads(&self) -> Vec<Line> {
        let (cols, rows) = (self.cols as usize, self.rows as usize);
        let lat0 = self.south_west.lat();
        let deg_lat_per_m = 180.0 / (std::f64::consts::PI * EARTH_RADIUS_M);
        let deg_lon_per_m = deg_lat_per_m / lat0.to_radians().cos();
        let mut rng = XorShift64::new(self.seed | 1);
        let mut unit = move || rng.range(-1.0, 1.0);
        let mut at = Vec::with_capacity(cols * rows);
        for r in 0..rows {
            for c in 0..cols {
                let x_m = (c as f64 + self.jitter * unit()) * self.spacing_m;
                let y_m = (r as f64 + self.jitter * unit()) * self.spacing_m;
                at.push(Coord { x: self.south_west.lon() + x_m * deg_lon_per_m, y: lat0 + y_m * deg_lat_per_m });
            }
        }
        let class = |i: usize| match i {
            i if i % 16 == 0 => "primary",
            i if i % 4 == 0 => "tertiary",
            _ => "residential",
        };
        let line = |id: String, class: &str, coords: Vec<Coord<f64>>| {
            let mut properties = serde_json::Map::new();
            properties.insert("class".into(), class.into());
            Line { id: id.clone(), name: id, line: LineString::new(coords), properties }
        };
        let mut roads = Vec::with_capacity(cols + rows);
        if cols >= 2 {
            for r in 0..rows {
                roads.push(line(format!("grid-row-{r}"), class(r), at[r * cols..(r + 1) * cols].to_vec()));
            }
        }
        if rows >= 2 {
            for c in 0..cols {
                roads.push(line(format!("grid-col-{c}"), class(c), (0..rows).map(|r| at[r * cols + c]).collect()));
            }
        }
        roads
    }
}

impl RoadGraph {
    /// The synthetic grid of [`GridSpec`].
    pub fn grid(spec: &GridSpec, speeds: &RoadSpeeds) -> RoadGraph {
        RoadGraph::from_roads(&spec.roads(), speeds)
    }
}
