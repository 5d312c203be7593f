//! Enrichment cost per report on the Dazhu demo map: containing township, grid and
//! jurisdiction plus the three nearest posts, and the full per-device step with the
//! jump filter and fence rules, and the start-up cost of building the indexes. Run:
//! `cargo bench -p liandong-core --bench enrich`.

use divan::{black_box, Bencher};
use liandong_core::jump::JumpFilter;
use liandong_core::xorshift::XorShift64;
use liandong_core::{process, CountyMap, DeviceTrack, Enricher, Position};

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    divan::main();
}

fn load() -> Enricher {
    Enricher::new(&parse())
}

fn parse() -> CountyMap {
    support::dazhu_every_layer()
}

/// 4096 fixed pseudo-random points over the county's bounding box (some outside it).
fn points() -> Vec<Position> {
    let mut rng = XorShift64::new(0x2545_F491_4F6C_DD1D);
    (0..4096)
        .map(|_| {
            let s = rng.next_u64();
            let fx = (s & 0xFFFF) as f64 / 65535.0;
            let fy = ((s >> 16) & 0xFFFF) as f64 / 65535.0;
            Position::new(106.95 + fx * 0.6, 30.50 + fy * 0.45).unwrap()
        })
        .collect()
}

#[divan::bench(sample_count = 200, sample_size = 2000)]
fn enrich(b: Bencher) {
    let e = load();
    let pts = points();
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) & 4095;
        black_box(e.enrich(black_box(pts[i])))
    });
}

#[divan::bench(sample_count = 200, sample_size = 2000)]
fn process_with_fences(b: Bencher) {
    let e = load();
    let pts = points();
    let filter = JumpFilter { max_speed_mps: 1e9, max_accuracy_m: 200.0, ..JumpFilter::default() };
    let mut track = DeviceTrack::default();
    let mut i = 0;
    let mut t = 0;
    b.bench_local(|| {
        i = (i + 1) & 4095;
        t += 1000;
        black_box(process(&e, &filter, &mut track, black_box(pts[i]), t, t, Some(8.0)))
    });
}

/// Building every index of the map, which the server does at start-up and on each map
/// reload: bounded so that rasterising the layers stays a small part of start-up.
#[divan::bench(sample_count = 20)]
fn build(b: Bencher) {
    let map = parse();
    b.bench_local(|| black_box(Enricher::new(black_box(&map))));
}

/// The realistic case: a patrol walking (10 m between fixes) through the county seat,
/// in and out of the fences there. `process_with_fences` above is the worst case: every
/// step jumps across the county, so every fence's box is a crossing candidate.
#[divan::bench(sample_count = 200, sample_size = 2000)]
fn process_walking(b: Bencher) {
    let e = load();
    let filter = JumpFilter::default();
    let mut track = DeviceTrack::default();
    // A 10 m step east or north, alternating, around the county seat.
    let walk: Vec<Position> = (0..4096)
        .map(|i| {
            let k = (i % 2048) as f64;
            Position::new(107.19 + (k / 2.0).floor() * 0.0001, 30.73 + (k / 2.0).ceil() * 0.00009).unwrap()
        })
        .collect();
    let mut i = 0;
    let mut t = 0;
    b.bench_local(|| {
        i = (i + 1) & 4095;
        t += 10_000;
        black_box(process(&e, &filter, &mut track, black_box(walk[i]), t, t, Some(8.0)))
    });
}
