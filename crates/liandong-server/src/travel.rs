//! How each patrol team gets around: the road graph its plans and diversions are made
//! on, by the team's route in the map. Shared by the planner and the sequencer's
//! diversions, so it sits below both.

use std::collections::HashSet;
use std::sync::Arc;

use liandong_core::map::CountyMap;
use liandong_core::road::RoadGraph;

/// The team a route of the map belongs to: its `team_id`, else the route's id.
pub fn route_team(r: &liandong_core::map::Line) -> &str {
    r.properties.get("team_id").and_then(|v| v.as_str()).unwrap_or(&r.id)
}

/// How each team gets around, from its route's `travel` property in the map: `vehicle`
/// teams are planned at road speeds, every other team (`foot`, the default: volunteer
/// patrols walk) at `planning.patrol_kph`.
pub struct TeamTravel {
    patrol: Arc<RoadGraph>,
    vehicle: Arc<RoadGraph>,
    vehicle_teams: HashSet<String>,
}

impl TeamTravel {
    pub fn new(map: &CountyMap, patrol: Arc<RoadGraph>, vehicle: Arc<RoadGraph>) -> TeamTravel {
        let mut vehicle_teams = HashSet::new();
        for r in &map.routes {
            let team = route_team(r);
            match r.properties.get("travel").and_then(|v| v.as_str()) {
                Some("vehicle") => {
                    vehicle_teams.insert(team.to_owned());
                }
                None | Some("foot") => {}
                Some(other) => tracing::warn!(team, travel = other, "unknown route travel, planned on foot"),
            }
        }
        TeamTravel { patrol, vehicle, vehicle_teams }
    }

    /// The graph a team's plans and diversions are made on.
    pub fn of(&self, team_id: &str) -> &Arc<RoadGraph> {
        if self.vehicle_teams.contains(team_id) {
            &self.vehicle
        } else {
            &self.patrol
        }
    }
}

/// The teams of the map's routes (`team_id`, or the route's id).
pub fn map_teams(map: &CountyMap) -> Vec<String> {
    map.routes.iter().map(|r| route_team(r).to_owned()).collect()
}
