//! Road graph costs: building the graph of the Dazhu demo map and of a synthetic
//! 100,000-edge grid over the county, snapping, time-optimal routes (A*) between random
//! points, travel times from one place (Dijkstra) and a planner's travel-time matrix.
//! Run: `cargo bench -p liandong-core --bench road`.

use divan::{black_box, Bencher};
use liandong_core::road::{GridSpec, RoadGraph, RoadSpeeds};
use liandong_core::xorshift::XorShift64;
use liandong_core::{CountyMap, Position};

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let g = grid();
    println!(
        "synthetic grid: {} nodes, {} edges; Dazhu demo map: {} edges",
        g.node_count(),
        g.edge_count(),
        RoadGraph::from_map(&dazhu(), &RoadSpeeds::default()).edge_count()
    );
    divan::main();
}

fn dazhu() -> CountyMap {
    support::dazhu(&["boundary", "posts", "roads"])
}

fn grid() -> RoadGraph {
    RoadGraph::grid(&GridSpec::dazhu_100k_edges(), &RoadSpeeds::default())
}

/// `n` fixed pseudo-random points (xorshift64) in the box `[lon0, lon0 + w] × [lat0, lat0 + h]`.
fn points(n: usize, lon0: f64, lat0: f64, w: f64, h: f64) -> Vec<Position> {
    let mut rng = XorShift64::new(0x2545_F491_4F6C_DD1D);
    (0..n).map(|_| Position::new(lon0 + rng.unit() * w, lat0 + rng.unit() * h).unwrap()).collect()
}

/// Points anywhere on the synthetic grid (about 56 km × 56 km).
fn county_points(n: usize) -> Vec<Position> {
    points(n, 106.96, 30.51, 0.56, 0.48)
}

#[divan::bench(sample_count = 20)]
fn build_dazhu(b: Bencher) {
    let map = dazhu();
    b.bench_local(|| black_box(RoadGraph::from_map(black_box(&map), &RoadSpeeds::default())));
}

#[divan::bench(sample_count = 10)]
fn build_grid_100k_edges(b: Bencher) {
    let roads = GridSpec::dazhu_100k_edges().roads();
    b.bench_local(|| black_box(RoadGraph::from_roads(black_box(&roads), &RoadSpeeds::default())));
}

#[divan::bench(sample_count = 100, sample_size = 100)]
fn snap_100k(b: Bencher) {
    let g = grid();
    let pts = county_points(4096);
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) & 4095;
        black_box(g.snap(black_box(pts[i])))
    });
}

/// A* between random points across the county: the worst case, every query crosses it.
#[divan::bench(sample_count = 200)]
fn route_astar_100k_county_wide(b: Bencher) {
    let g = grid();
    let pts = county_points(512);
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 2) & 511;
        black_box(g.route(black_box(pts[i]), black_box(pts[i + 1])))
    });
}

/// A* between random points within 5 km of each other: a dispatch or a diversion.
#[divan::bench(sample_count = 200)]
fn route_astar_100k_within_5_km(b: Bencher) {
    let g = grid();
    let pts = points(512, 107.2, 30.7, 0.05, 0.045);
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 2) & 511;
        black_box(g.route(black_box(pts[i]), black_box(pts[i + 1])))
    });
}

/// Dijkstra from one place to every node within 10 minutes (dispatch).
#[divan::bench(sample_count = 50)]
fn travel_times_600_s_100k(b: Bencher) {
    let g = grid();
    let pts = county_points(64);
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) & 63;
        black_box(g.travel_times_to(black_box(pts[i]), 600.0))
    });
}

/// Dijkstra from one place to the whole graph.
#[divan::bench(sample_count = 20)]
fn travel_times_all_100k(b: Bencher) {
    let g = grid();
    let pts = county_points(64);
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) & 63;
        black_box(g.travel_times_from(black_box(pts[i]), f64::INFINITY))
    });
}

/// A planner's matrix: 30 waypoints of one team's area (about 5 km across).
#[divan::bench(sample_count = 20)]
fn matrix_30_points_5_km_100k(b: Bencher) {
    let g = grid();
    let pts = points(30, 107.2, 30.7, 0.05, 0.045);
    b.bench_local(|| black_box(g.travel_time_matrix(black_box(&pts))));
}
