//! A team's route plan as the leader's phone reads it (a `route` message on the live
//! feed, or `GET /api/v1/teams/{team}/plans`), made walkable: its line, its stops and
//! its pace.

use std::sync::Arc;

use geo::Point;

use super::track::{Track, JOIN_SLACK_M};
use super::walk::{End, Stop, PATROL_SPEED_MPS};

/// The fastest a team follows a plan: a patrol car on a county road, m/s.
const MAX_PLAN_SPEED_MPS: f64 = 15.0;
/// A waypoint farther than this from the plan's line is not a stop on it, metres.
const STOP_MAX_OFF_M: f64 = 100.0;
/// Longest plan line the simulator takes (the server accepts 20,000 points).
const MAX_PLAN_POINTS: usize = 50_000;
/// Most waypoints of a plan the simulator reads (the server accepts 500).
const MAX_PLAN_WAYPOINTS: usize = 1_000;

/// A waypoint of a pushed plan: where, and how long to stay.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PlanWaypoint {
    pub(super) lon: f64,
    pub(super) lat: f64,
    pub(super) dwell_s: f64,
}

/// A version of a team's route plan as the leader's phone reads it, from a `route`
/// message on the live feed or from `GET /api/v1/teams/{team}/plans`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PlanPush {
    pub(super) team_id: String,
    pub(super) version: i64,
    /// `plan`, `diversion` or `manual`.
    pub(super) kind: String,
    /// `pending`, `acknowledged` or `superseded`.
    pub(super) status: String,
    pub(super) coordinates: Vec<[f64; 2]>,
    pub(super) waypoints: Vec<PlanWaypoint>,
    /// The planner's moving time along the line, seconds, when it says.
    pub(super) travel_s: Option<f64>,
}

/// The new plan in a live-feed message: only a `route` message whose event is a `push`.
pub(super) fn parse_route_message(text: &str) -> Option<PlanPush> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["type"] != "route" || v["data"]["event"]["action"] != "push" {
        return None;
    }
    parse_plan_row(&v["data"]["plan"])
}

/// A plan row as the API and the feed give it: the stored row with its `plan` body.
pub(super) fn parse_plan_row(row: &serde_json::Value) -> Option<PlanPush> {
    let body = &row["plan"];
    let line = body["geometry"]["coordinates"].as_array()?;
    if line.len() < 2 || line.len() > MAX_PLAN_POINTS {
        return None;
    }
    let valid = |lon: f64, lat: f64| (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat);
    let coordinates: Vec<[f64; 2]> = line
        .iter()
        .filter_map(|c| Some([c[0].as_f64()?, c[1].as_f64()?]))
        .filter(|[lon, lat]| valid(*lon, *lat))
        .collect();
    if coordinates.len() < 2 {
        return None;
    }
    let waypoints = body["waypoints"]
        .as_array()
        .map(|w| {
            w.iter()
                .take(MAX_PLAN_WAYPOINTS)
                .filter_map(|w| {
                    let (lon, lat) = (w["lon"].as_f64()?, w["lat"].as_f64()?);
                    let dwell_s = w["dwell_s"].as_f64().filter(|d| d.is_finite() && *d >= 0.0).unwrap_or(0.0);
                    valid(lon, lat).then_some(PlanWaypoint { lon, lat, dwell_s })
                })
                .collect()
        })
        .unwrap_or_default();
    let kind = row["kind"].as_str()?.to_owned();
    let figures = &body["figures"];
    let travel_s = if kind == "diversion" {
        match (figures["travel_there_s"].as_f64(), figures["travel_back_s"].as_f64()) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        }
    } else {
        figures["travel_s"].as_f64()
    };
    Some(PlanPush {
        team_id: row["team_id"].as_str()?.to_owned(),
        version: row["version"].as_i64()?,
        kind,
        status: row["status"].as_str().unwrap_or("pending").to_owned(),
        coordinates,
        waypoints,
        travel_s: travel_s.filter(|t| t.is_finite() && *t > 0.0),
    })
}

/// A plan made walkable: its line, its stops, how it ends and the pace.
pub(super) struct PlanRoute {
    pub(super) track: Arc<Track>,
    pub(super) stops: Arc<[Stop]>,
    pub(super) end: End,
    pub(super) speed_mps: f64,
    pub(super) diversion: bool,
}

impl PlanRoute {
    pub(super) fn of(push: &PlanPush) -> PlanRoute {
        let track = Track::new(push.coordinates.iter().map(|&[lon, lat]| Point::new(lon, lat)).collect());
        // Waypoints in plan order, each looked for from the previous one on, so a line
        // that passes a place twice has its stop where the plan means it.
        let mut stops = Vec::new();
        let mut from_m = 0.0;
        for w in &push.waypoints {
            let (offset_m, distance_m) = track.nearest(Point::new(w.lon, w.lat), from_m, JOIN_SLACK_M);
            if distance_m <= STOP_MAX_OFF_M {
                from_m = offset_m;
                if w.dwell_s > 0.0 {
                    stops.push(Stop { offset_m, dwell_s: w.dwell_s });
                }
            }
        }
        stops.sort_by(|a, b| a.offset_m.total_cmp(&b.offset_m));
        let diversion = push.kind == "diversion";
        let end = if diversion {
            End::Finish
        } else if track.is_closed() {
            End::Wrap
        } else {
            End::Reverse
        };
        // The plan's own pace (the planner's times are a patrol car's), so that its
        // planned arrivals hold; walking pace when it gives none.
        let speed_mps = push
            .travel_s
            .map(|t| track.length_m() / t)
            .filter(|s| s.is_finite())
            .unwrap_or(PATROL_SPEED_MPS)
            .clamp(PATROL_SPEED_MPS, MAX_PLAN_SPEED_MPS);
        PlanRoute { track: Arc::new(track), stops: stops.into(), end, speed_mps, diversion }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn route_message(action: &str, team: &str, coordinates: serde_json::Value) -> String {
        serde_json::json!({"type": "route", "seq": 41, "data": {
            "plan": {"plan_seq": 7, "team_id": team, "version": 3, "kind": "plan", "reason": "re-plan",
                     "status": "pending", "escalation": "none",
                     "plan": {"geometry": {"type": "LineString", "coordinates": coordinates},
                              "waypoints": [{"name": "a", "lon": 107.1, "lat": 30.7, "dwell_s": 120, "planned_time": null},
                                            {"name": "resume", "lon": 107.2, "lat": 30.7, "dwell_s": null}],
                              "figures": {"travel_s": 600.0, "length_m": 9000.0}}},
            "event": {"seq": 41, "action": action, "actor": "server", "note": "", "time": "2026-01-01T00:00:00Z"}}})
        .to_string()
    }

    #[test]
    fn route_messages_parse_into_plans_and_everything_else_is_ignored() {
        let line = serde_json::json!([[107.1, 30.7], [107.2, 30.7]]);
        let plan = parse_route_message(&route_message("push", "team-01", line.clone())).expect("a push");
        assert_eq!(
            plan,
            PlanPush {
                team_id: "team-01".into(),
                version: 3,
                kind: "plan".into(),
                status: "pending".into(),
                coordinates: vec![[107.1, 30.7], [107.2, 30.7]],
                waypoints: vec![
                    PlanWaypoint { lon: 107.1, lat: 30.7, dwell_s: 120.0 },
                    PlanWaypoint { lon: 107.2, lat: 30.7, dwell_s: 0.0 },
                ],
                travel_s: Some(600.0),
            }
        );
        let ignored = [
            ("an acknowledgement", route_message("ack", "team-01", line.clone())),
            ("an escalation", route_message("escalate", "team-01", line.clone())),
            ("one point", route_message("push", "team-01", serde_json::json!([[107.1, 30.7]]))),
            ("no valid line", route_message("push", "team-01", serde_json::json!([[107.1, 95.0], ["x", 30.7]]))),
            ("no line", route_message("push", "team-01", serde_json::Value::Null)),
            ("a position", r#"{"type":"position","seq":5,"data":{"device_id":"a","lon":107.1,"lat":30.7}}"#.into()),
            ("a snapshot", r#"{"type":"snapshot","seq":0,"part":1,"parts":1,"data":[]}"#.into()),
            ("an ack reply", r#"{"type":"ack","id":1,"plan_seq":7,"version":3,"status":"acknowledged"}"#.into()),
            ("a route without data", r#"{"type":"route","seq":1}"#.into()),
            ("not JSON", "route push".into()),
            ("a JSON array", "[1, 2]".into()),
        ];
        for (name, text) in ignored {
            assert_eq!(parse_route_message(&text), None, "{name}");
        }
        // An invalid point among valid ones is dropped, not the plan.
        let mixed = serde_json::json!([[107.1, 30.7], [500.0, 30.7], [107.2, 30.7]]);
        let plan = parse_route_message(&route_message("push", "team-01", mixed)).expect("a push");
        assert_eq!(plan.coordinates, vec![[107.1, 30.7], [107.2, 30.7]]);
    }

    #[test]
    fn a_plan_is_walked_at_its_own_pace_with_its_stops() {
        let line = vec![[107.0, 30.0], [107.0 + EAST, 30.0], [107.0 + EAST, 30.0 + NORTH], [107.0, 30.0]];
        let len_m = track(&line).length_m();
        let rows = [
            // (kind, travel_s, speed, end)
            ("plan", Some(len_m / 8.0), 8.0, End::Wrap),
            ("plan", Some(1.0), MAX_PLAN_SPEED_MPS, End::Wrap),
            ("manual", None, PATROL_SPEED_MPS, End::Wrap),
            ("diversion", Some(len_m / 5.0), 5.0, End::Finish),
        ];
        for (kind, travel_s, speed_mps, end) in rows {
            let mut p = push(kind, line.clone());
            p.travel_s = travel_s;
            p.waypoints = vec![
                PlanWaypoint { lon: 107.0 + EAST, lat: 30.0 + NORTH, dwell_s: 300.0 },
                PlanWaypoint { lon: 108.0, lat: 30.0, dwell_s: 300.0 },
                PlanWaypoint { lon: 107.0 + EAST, lat: 30.0, dwell_s: 0.0 },
            ];
            let r = PlanRoute::of(&p);
            assert!((r.speed_mps - speed_mps).abs() < 1e-9, "{kind}: {} m/s", r.speed_mps);
            assert_eq!(r.end, end, "{kind}");
            assert_eq!(r.stops.len(), 1, "{kind}: only the waypoint on the line with a dwell");
        }
        let open = PlanRoute::of(&push("manual", vec![[107.0, 30.0], [107.0 + EAST, 30.0]]));
        assert_eq!(open.end, End::Reverse);
    }
}
