//! Hotspot analysis of 100,000 incidents over the Dazhu county (the target:
//! well under a second), the per-township "publicity focus" over the same incidents
//! with a real township lookup, and the adherence step of one patrol member's fix.
//! Run: `cargo bench -p liandong-core --bench hotspot`.

use divan::{black_box, Bencher};
use geo::{BoundingRect, Rect};
use liandong_core::adherence::{AdherenceConfig, Corridor, MemberAdherence, PlannedCheckpoint};
use liandong_core::hotspot::{analyse, top_categories_by, HotspotConfig, HotspotEvent};
use liandong_core::jump::Fix;
use liandong_core::spatial::AreaIndex;
use liandong_core::xorshift::XorShift64;
use liandong_core::{CountyMap, Position};

const EVENTS: usize = 100_000;
const CATEGORIES: [&str; 8] = ["theft", "fraud", "brawl", "traffic", "gambling", "dispute", "drugs", "other"];

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let map = dazhu();
    let extent = extent(&map);
    let hs = analyse(&events(extent), extent, &HotspotConfig::default()).unwrap();
    println!(
        "{EVENTS} events on a {} × {} grid of {} m cells: {} used, {} occupied (cell, band) entries",
        hs.grid().columns(),
        hs.grid().rows(),
        hs.grid().cell_m(),
        hs.events_used(),
        hs.cells().count()
    );
    divan::main();
}

fn dazhu() -> CountyMap {
    support::dazhu(&["boundary", "posts", "townships"])
}

fn extent(map: &CountyMap) -> Rect<f64> {
    map.boundary.bounding_rect().expect("the county has a boundary")
}

/// 100,000 incidents of 30 days: 70 % around 40 hot places (a triangular spread of
/// about ±1 km) at each place's own busy hours, 30 % anywhere at any time.
fn events(extent: Rect<f64>) -> Vec<HotspotEvent<'static>> {
    let mut rng = XorShift64::new(0x9E37_79B9_7F4A_7C15);
    let (min, w, h) = (extent.min(), extent.width(), extent.height());
    let places: Vec<(f64, f64, i64)> =
        (0..40).map(|_| (min.x + rng.unit() * w, min.y + rng.unit() * h, (rng.next_u64() % 24) as i64)).collect();
    let t0 = 1_790_000_000_000i64;
    (0..EVENTS)
        .map(|_| {
            let (lon, lat, t) = if rng.unit() < 0.7 {
                let (x, y, hour) = places[(rng.next_u64() % 40) as usize];
                let dx = (rng.unit() - rng.unit()) * 0.01;
                let dy = (rng.unit() - rng.unit()) * 0.009;
                let day = (rng.next_u64() % 30) as i64;
                let minute = (rng.next_u64() % 180) as i64;
                (x + dx, y + dy, t0 + day * 86_400_000 + hour * 3_600_000 + minute * 60_000)
            } else {
                let t = t0 + (rng.next_u64() % (30 * 86_400_000)) as i64;
                (min.x + rng.unit() * w, min.y + rng.unit() * h, t)
            };
            HotspotEvent {
                position: Position::new(lon, lat).unwrap(),
                time_ms: t,
                category: CATEGORIES[(rng.next_u64() % 8) as usize],
                weight: if rng.next_u64().is_multiple_of(10) { 3.0 } else { 1.0 },
            }
        })
        .collect()
}

/// Counting, smoothing and ranking 100,000 incidents with the default settings.
#[divan::bench(sample_count = 30)]
fn analyse_100k(b: Bencher) {
    let extent = extent(&dazhu());
    let events = events(extent);
    let config = HotspotConfig::default();
    b.bench_local(|| black_box(analyse(black_box(&events), extent, &config).unwrap()));
}

/// The same with 100 m cells and a 300 m bandwidth: 6 times the cells, 37 a kernel.
#[divan::bench(sample_count = 30)]
fn analyse_100k_fine(b: Bencher) {
    let extent = extent(&dazhu());
    let events = events(extent);
    let config = HotspotConfig { cell_m: 100.0, bandwidth_m: 300.0, ..HotspotConfig::default() };
    b.bench_local(|| black_box(analyse(black_box(&events), extent, &config).unwrap()));
}

/// The top five categories of each of the 31 townships, placing every incident with
/// the township index the enricher uses.
#[divan::bench(sample_count = 30)]
fn publicity_focus_100k(b: Bencher) {
    let map = dazhu();
    let townships = AreaIndex::new(map.townships.iter().map(|t| &t.polygon));
    let events = events(extent(&map));
    b.bench_local(|| black_box(top_categories_by(black_box(&events), 5, |p| townships.containing(p))));
}

/// One fix of a member walking a 300-vertex plan with 10 checkpoints.
#[divan::bench(sample_count = 100, sample_size = 1000)]
fn adherence_update(b: Bencher) {
    let line: Vec<Position> =
        (0..300).map(|i| Position::new(107.15 + i as f64 * 0.0002, 30.70 + (i % 7) as f64 * 0.0001).unwrap()).collect();
    let checkpoints = (0..10)
        .map(|k| PlannedCheckpoint {
            position: line[k * 30],
            radius_m: 50.0,
            min_dwell_s: 120.0,
            planned_arrival_ms: k as i64 * 600_000,
        })
        .collect();
    let corridor = Corridor::new(&line, checkpoints, None, &AdherenceConfig::default()).unwrap();
    let mut member = MemberAdherence::new(&corridor);
    let (mut i, mut t) = (0, 0);
    b.bench_local(|| {
        i = (i + 1) % line.len();
        t += 10_000;
        black_box(member.update(&corridor, Fix { position: line[i], time_ms: t }, Some(8.0)))
    });
}
