//! Fixtures shared by the simulator's unit tests: points and lines near 30° N, a plan
//! push, the demo map of Dazhu, and the counts of the demo's people by what they are.

use std::sync::Arc;

use geo::Point;
use liandong_core::CountyMap;

use super::people::DemoPerson;
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

/// The demo's people counted the way the seed counts them.
#[derive(Debug, Default)]
pub(super) struct DemoCounts {
    /// Distinct patrol teams with people.
    pub teams: usize,
    /// Everyone of a patrol team, leaders included.
    pub team_members: usize,
    /// Team members who hold the patrol leader's role.
    pub team_leaders: usize,
    /// Distinct posts with people.
    pub posts: usize,
    /// Posts with exactly one leader (`…-leader`).
    pub posts_with_one_leader: usize,
    /// Everyone of a post, leaders included.
    pub post_people: usize,
    pub grid_members: usize,
    /// The judicial office's people who hold the partner's role.
    pub mediators: usize,
    /// The command centre's operators and administrators.
    pub operators: usize,
    pub admins: usize,
}

pub(super) fn demo_counts(people: &[DemoPerson]) -> DemoCounts {
    use std::collections::{BTreeMap, BTreeSet};
    let mut c = DemoCounts::default();
    let mut teams = BTreeSet::new();
    let mut posts: BTreeMap<&str, Vec<&DemoPerson>> = BTreeMap::new();
    for p in people {
        let unit = p.unit_id.as_deref().unwrap_or("");
        match (p.unit_kind, p.roles.as_slice()) {
            ("team", roles) => {
                teams.insert(unit);
                c.team_members += 1;
                c.team_leaders += usize::from(roles.contains(&"patrol_leader"));
            }
            ("post", _) => posts.entry(unit).or_default().push(p),
            ("grid", ["grid_member"]) => c.grid_members += 1,
            ("judicial_office", ["partner"]) => c.mediators += 1,
            ("command_centre", ["operator"]) => c.operators += 1,
            ("command_centre", ["admin"]) => c.admins += 1,
            other => panic!("a demo person of no kind the seed counts: {other:?} {p:?}"),
        }
    }
    c.teams = teams.len();
    c.posts = posts.len();
    c.post_people = posts.values().map(Vec::len).sum();
    c.posts_with_one_leader =
        posts.values().filter(|ps| ps.iter().filter(|p| p.person_id.ends_with("-leader")).count() == 1).count();
    c
}
