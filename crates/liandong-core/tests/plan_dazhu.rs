//! The patrol planner on the Dazhu demo map: for every team of `routes.geojson`, a
//! 4-hour plan from its post through its checkpoints over the day-band hotspots of
//! seeded synthetic incidents, measured against the team's fixed route with the same
//! coverage rule. Run with `--nocapture` to see the table.

use liandong_core::hotspot::{analyse, HotspotConfig, HotspotEvent};
use liandong_core::plan::{plan, route_coverage, Candidate, Mandatory, PlanRequest, PlannerConfig, StopKind};
use liandong_core::road::{RoadGraph, RoadSpeeds};
use liandong_core::xorshift::XorShift64;
use liandong_core::{CountyMap, Position, UnixMs};

mod support;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// China Standard Time is UTC+8.
const CST_MS: i64 = 8 * HOUR_MS;
const BUDGET_S: f64 = 4.0 * 3600.0;
/// Hotspot cells within this distance of a team's post are its candidates; the fixed
/// routes reach at most 7.1 km from their posts.
const AREA_M: f64 = 8_000.0;

fn dazhu() -> CountyMap {
    support::dazhu(&["boundary", "posts", "roads", "routes", "checkpoints"])
}

/// Midnight, China Standard Time, of the first of the 30 days of incidents.
fn first_day_ms() -> UnixMs {
    let t: UnixMs = 1_790_000_000_000;
    (t + CST_MS) / DAY_MS * DAY_MS - CST_MS
}

/// 20,000 incidents over 30 days: 80 % around 40 places on the road network (a
/// triangular spread of about ±800 m), three in four of those between 10:00 and 14:00;
/// the rest anywhere in the county at any time.
fn incidents(map: &CountyMap) -> Vec<(Position, UnixMs)> {
    let mut rng = XorShift64::new(0x5DEE_CE66_D1CE_4E5B);
    let vertices: Vec<(f64, f64)> = map.roads.iter().flat_map(|r| r.line.0.iter().map(|c| (c.x, c.y))).collect();
    let places: Vec<(f64, f64)> =
        (0..40).map(|_| vertices[(rng.next_u64() % vertices.len() as u64) as usize]).collect();
    let extent = map.extent().unwrap();
    let (min, w, h) = (extent.min(), extent.width(), extent.height());
    let day0 = first_day_ms();
    (0..20_000)
        .map(|_| {
            let day = day0 + (rng.next_u64() % 30) as i64 * DAY_MS;
            if rng.unit() < 0.8 {
                let (x, y) = places[(rng.next_u64() % places.len() as u64) as usize];
                let (dx, dy) = ((rng.unit() - rng.unit()) * 0.008, (rng.unit() - rng.unit()) * 0.007);
                let t = if rng.unit() < 0.75 {
                    day + 10 * HOUR_MS + (rng.unit() * 4.0 * HOUR_MS as f64) as i64
                } else {
                    day + (rng.unit() * DAY_MS as f64) as i64
                };
                (Position::new(x + dx, y + dy).unwrap(), t)
            } else {
                let p = Position::new(min.x + rng.unit() * w, min.y + rng.unit() * h).unwrap();
                (p, day + (rng.unit() * DAY_MS as f64) as i64)
            }
        })
        .collect()
}

fn position(p: geo::Point<f64>) -> Position {
    Position::new(p.x(), p.y()).unwrap()
}

#[test]
fn plans_cover_more_hotspot_weight_than_the_fixed_routes() {
    let map = dazhu();
    let graph = RoadGraph::from_map(&map, &RoadSpeeds::default());
    let events: Vec<HotspotEvent<'_>> = incidents(&map)
        .into_iter()
        .map(|(position, time_ms)| HotspotEvent { position, time_ms, category: "theft", weight: 1.0 })
        .collect();
    let hotspots = analyse(&events, map.extent().unwrap(), &HotspotConfig::default()).unwrap();
    let day_band = hotspots.bands().band_of_minute(12 * 60);
    assert_eq!(hotspots.bands().get(day_band).unwrap().label(), "10:00–14:00");
    let cells: Vec<_> = hotspots.band_cells(day_band).collect();
    let config = PlannerConfig::default();
    assert_eq!(map.routes.len(), 17);

    println!(
        "{:<8} {:>3} {:>5} {:>9} {:>9} {:>9} {:>6} {:>9} {:>4} {:>7} {:>7}",
        "team", "cps", "cells", "total", "fixed", "planned", "ratio", "visited", "hot", "total_s", "km"
    );
    let (mut total_sum, mut fixed_sum, mut planned_sum) = (0.0, 0.0, 0.0);
    for route in &map.routes {
        let team = route.properties["team_id"].as_str().unwrap();
        let post_id = route.properties["post_id"].as_str().unwrap();
        let post = position(map.posts.iter().find(|p| p.id == post_id).unwrap().point);
        let mut sites: Vec<_> =
            map.checkpoints.iter().filter(|c| c.properties["team_id"].as_str() == Some(team)).collect();
        sites.sort_by_key(|c| c.properties["seq"].as_u64());
        let checkpoints: Vec<Mandatory> = sites
            .iter()
            .map(|c| Mandatory {
                id: c.id.clone(),
                name: c.name.clone(),
                position: position(c.point),
                dwell_s: c.properties["min_dwell_s"].as_f64().unwrap(),
            })
            .collect();
        assert!(!checkpoints.is_empty(), "{team} has checkpoints");
        let candidates: Vec<Candidate> = cells
            .iter()
            .filter(|c| c.centre.haversine_m(post) <= AREA_M && c.density_per_km2 > 0.0)
            .map(|c| Candidate {
                id: format!("cell-{}-{}", c.cell.i, c.cell.j),
                position: c.centre,
                weight: c.density_per_km2,
            })
            .collect();
        let line: Vec<Position> = route.line.0.iter().map(|c| Position::new(c.x, c.y).unwrap()).collect();
        let fixed = route_coverage(&line, &candidates, config.coverage_radius_m);

        let request = PlanRequest {
            start: post,
            end: post,
            budget_s: BUDGET_S,
            checkpoints: checkpoints.clone(),
            candidates,
            hotspot_dwell_s: 300.0,
            start_ms: first_day_ms() + 10 * HOUR_MS,
        };
        let p = plan(&graph, &request, &config).unwrap_or_else(|e| panic!("{team}: {e}"));

        assert!(p.total_s <= BUDGET_S, "{team}: {} s", p.total_s);
        assert_eq!(p.mandatory_visited, checkpoints.len(), "{team}");
        for c in &checkpoints {
            let stop = p.waypoints.iter().find(|w| w.id == c.id).unwrap_or_else(|| panic!("{team}: {} skipped", c.id));
            assert_eq!((stop.kind, stop.dwell_s), (StopKind::Checkpoint, c.dwell_s), "{team}: {}", c.id);
        }
        assert_eq!(p.waypoints.first().unwrap().position, post, "{team}");
        assert_eq!(p.waypoints.last().unwrap().position, post, "{team}");
        assert_eq!(p.geometry.first(), Some(&post), "{team}: the line starts at the post");
        let recomputed = route_coverage(&p.geometry, &request.candidates, config.coverage_radius_m);
        assert_eq!(p.covered_weight, recomputed, "{team}: one coverage rule for plans and routes");
        assert!(p.covered_weight >= fixed, "{team}: planned {} < fixed {fixed}", p.covered_weight);

        let hot = p.waypoints.iter().filter(|w| w.kind == StopKind::Hotspot).count();
        let ratio = if fixed > 0.0 { format!("{:.2}", p.covered_weight / fixed) } else { "—".to_owned() };
        println!(
            "{:<8} {:>3} {:>5} {:>9.0} {:>9.0} {:>9.0} {:>6} {:>9.0} {:>4} {:>7.0} {:>7.1}",
            team,
            checkpoints.len(),
            request.candidates.len(),
            p.total_candidate_weight,
            fixed,
            p.covered_weight,
            ratio,
            p.visited_weight,
            hot,
            p.total_s,
            p.length_m / 1000.0
        );
        total_sum += p.total_candidate_weight;
        fixed_sum += fixed;
        planned_sum += p.covered_weight;
    }
    println!(
        "{:<8} {:>3} {:>5} {:>9.0} {:>9.0} {:>9.0} {:>6.2}",
        "all",
        "",
        "",
        total_sum,
        fixed_sum,
        planned_sum,
        planned_sum / fixed_sum
    );
    assert!(planned_sum > fixed_sum, "planned {planned_sum} against fixed {fixed_sum}");
}
