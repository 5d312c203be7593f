//! Fixtures shared by the simulator's unit tests: points and lines near 30° N, a plan
//! push, and the demo map of Dazhu.

use std::sync::Arc;

use geo::Point;
use liandong_core::CountyMap;

use super::plan::PlanPush;
use super::track::Track;
use super::walk::{End, Walk};

pub(super) fn pt(lon: f64, lat: f64) -> Point<f64> {
    Point::new(lon, lat)
}

pub(super) fn track(points: &[[f64; 2]]) -> Arc<Track> {
    Arc::new(Track::new(points.iter().map(|&[lon, lat]| pt(lon, lat)).collect()))
}

pub(super) fn walk(points: &[[f64; 2]], end: End, speed_mps: f64) -> Walk {
    Walk::new(track(points), Arc::from([]), end, speed_mps)
}

pub(super) fn push(kind: &str, coordinates: Vec<[f64; 2]>) -> PlanPush {
    PlanPush {
        team_id: "team-1".into(),
        version: 2,
        kind: kind.into(),
        status: "pending".into(),
        coordinates,
        waypoints: vec![],
        travel_s: None,
    }
}

/// About 1 km east and 1.1 km north of the start, at 30° N.
pub(super) const EAST: f64 = 0.010_38;
pub(super) const NORTH: f64 = 0.01;

pub(super) fn dazhu() -> CountyMap {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maps/dazhu");
    liandong_server::maps::load_dir(&dir).expect("the demo map loads")
}
