//! Patrol re-planning costs: a 4-hour plan through 4 checkpoints over 40 hotspot
//! candidates in one team's area of the synthetic 100,000-edge grid (the target: a
//! re-plan in under 100 ms), the same with the candidates spread over the whole county
//! (the matrix's worst case), and one team's plan on the Dazhu demo map.
//! Run: `cargo bench -p liandong-core --bench plan`.

use divan::{black_box, Bencher};
use liandong_core::plan::{plan, Candidate, Mandatory, PlanRequest, PlannerConfig};
use liandong_core::road::{GridSpec, RoadGraph, RoadSpeeds};
use liandong_core::xorshift::XorShift64;
use liandong_core::Position;

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let g = grid();
    for (name, req) in [("team area", grid_request(0.05, 0.045)), ("county-wide", grid_request(0.56, 0.48))] {
        let p = plan(&g, &req, &PlannerConfig::default()).unwrap();
        println!(
            "grid, {name}: {} candidates, {} considered, {} stops, {:.0} of {:.0} s, visited {:.0} of {:.0}",
            req.candidates.len(),
            p.candidates_considered,
            p.waypoints.len(),
            p.total_s,
            req.budget_s,
            p.visited_weight,
            p.total_candidate_weight
        );
    }
    let (g, req) = dazhu_request();
    let p = plan(&g, &req, &PlannerConfig::default()).unwrap();
    println!(
        "Dazhu team-01: {} candidates, {} considered, {} stops, {:.0} of {:.0} s",
        req.candidates.len(),
        p.candidates_considered,
        p.waypoints.len(),
        p.total_s,
        req.budget_s
    );
    divan::main();
}

fn grid() -> RoadGraph {
    RoadGraph::grid(&GridSpec::dazhu_100k_edges(), &RoadSpeeds::default())
}

/// Fixed-seed xorshift64 (Marsaglia), uniform in [0, 1).
fn unit_fn(seed: u64) -> impl FnMut() -> f64 {
    let mut rng = XorShift64::new(seed);
    move || rng.unit()
}

/// A post at (107.2°E, 30.7°N), 4 checkpoints near it and 40 candidates of weight 1–10
/// in a `w` × `h` degree box from the post (0.05° × 0.045° is about 5 km × 5 km).
fn grid_request(w: f64, h: f64) -> PlanRequest {
    let mut unit = unit_fn(0x2545_F491_4F6C_DD1D);
    let post = Position::new(107.2, 30.7).unwrap();
    let mut near = || Position::new(107.2 + (unit() - 0.2) * 0.05, 30.7 + (unit() - 0.2) * 0.045).unwrap();
    let checkpoints = (0..4)
        .map(|i| Mandatory { id: format!("cp-{i}"), name: String::new(), position: near(), dwell_s: 180.0 })
        .collect();
    let mut unit = unit_fn(0x9E37_79B9_7F4A_7C15);
    let (lon0, lat0) = if w > 0.1 { (106.96, 30.51) } else { (107.2 - 0.2 * w, 30.7 - 0.2 * h) };
    let candidates = (0..40)
        .map(|i| Candidate {
            id: format!("h-{i}"),
            position: Position::new(lon0 + unit() * w, lat0 + unit() * h).unwrap(),
            weight: 1.0 + (unit() * 9.0).round(),
        })
        .collect();
    PlanRequest {
        start: post,
        end: post,
        budget_s: 4.0 * 3600.0,
        checkpoints,
        candidates,
        hotspot_dwell_s: 300.0,
        start_ms: 1_790_000_000_000,
    }
}

/// Team 01 of the Dazhu demo map: its post and checkpoints, and 150 candidates of
/// weight 1–100 at road vertices within 8 km of the post.
fn dazhu_request() -> (RoadGraph, PlanRequest) {
    let map = support::dazhu(&["boundary", "posts", "roads", "checkpoints"]);
    let at = |p: geo::Point<f64>| Position::new(p.x(), p.y()).unwrap();
    let post = at(map.posts.iter().find(|p| p.id == "post-01").unwrap().point);
    let checkpoints = map
        .checkpoints
        .iter()
        .filter(|c| c.properties["team_id"] == "team-01")
        .map(|c| Mandatory {
            id: c.id.clone(),
            name: c.name.clone(),
            position: at(c.point),
            dwell_s: c.properties["min_dwell_s"].as_f64().unwrap(),
        })
        .collect();
    let near: Vec<Position> = map
        .roads
        .iter()
        .flat_map(|r| r.line.0.iter())
        .map(|c| Position::new(c.x, c.y).unwrap())
        .filter(|p| p.haversine_m(post) < 8_000.0)
        .collect();
    let mut unit = unit_fn(0x5DEE_CE66_D1CE_4E5B);
    let candidates = (0..150)
        .map(|i| Candidate {
            id: format!("h-{i}"),
            position: near[(unit() * near.len() as f64) as usize],
            weight: 1.0 + (unit() * 99.0).round(),
        })
        .collect();
    let req = PlanRequest {
        start: post,
        end: post,
        budget_s: 4.0 * 3600.0,
        checkpoints,
        candidates,
        hotspot_dwell_s: 300.0,
        start_ms: 1_790_000_000_000,
    };
    (RoadGraph::from_map(&map, &RoadSpeeds::default()), req)
}

/// The target: one team's re-plan on the 100,000-edge graph.
#[divan::bench(sample_count = 20)]
fn replan_100k_team_area(b: Bencher) {
    let g = grid();
    let req = grid_request(0.05, 0.045);
    b.bench_local(|| black_box(plan(black_box(&g), black_box(&req), &PlannerConfig::default())));
}

/// Candidates anywhere in the county: every search of the matrix crosses it.
#[divan::bench(sample_count = 5)]
fn replan_100k_county_wide(b: Bencher) {
    let g = grid();
    let req = grid_request(0.56, 0.48);
    b.bench_local(|| black_box(plan(black_box(&g), black_box(&req), &PlannerConfig::default())));
}

/// Team 01 on the Dazhu demo map (1,538 edges), 60 of 150 candidates considered.
#[divan::bench(sample_count = 20)]
fn replan_dazhu_team_01(b: Bencher) {
    let (g, req) = dazhu_request();
    b.bench_local(|| black_box(plan(black_box(&g), black_box(&req), &PlannerConfig::default())));
}
