//! The rules on patrol route plans: a push makes a new version (superseding a pending
//! one, or refused when it changes nothing), an acknowledgement must name the team's
//! newest pending version, a plan nobody acknowledges escalates, and a serious alert
//! near a team diverts it there and back. Also each plan as the corridor its members
//! are measured against.

use std::collections::HashMap;
use std::sync::Arc;

use liandong_core::adherence::{AdherenceConfig, Corridor, PlannedCheckpoint};
use liandong_core::Position;
use liandong_store::{AlertRow, RouteEventRow, RoutePlanRow};

use super::draft::Draft;
use super::handle::{Conflict, NotAllowed, Unknown};
use super::{Known, Refusal, RouteCommand, UNIT_MAX_AGE_MS};
use crate::feed::messages::{RouteChange, RouteStep};
use crate::feed::{plan_json, FeedEvent, FeedMessage};

/// How near a serious alert a team's member must be for the team to be diverted, and
/// how long the diversion plans to stay at the place.
const DIVERSION_RADIUS_M: f64 = 3000.0;
const DIVERSION_DWELL_S: u32 = 300;

/// A pending plan not acknowledged this long escalates to the post leader, and at twice
/// this to the command centre.
pub const ROUTE_ACK_S: i64 = 120;

/// One event of a plan's life, as recorded.
struct Step<'a> {
    action: &'a str,
    actor: &'a str,
    note: &'a str,
    at_ms: i64,
}

/// Records one route event: the event row, the plan row as it is now, and the feed
/// message (to operators and the team).
fn route_event(draft: &mut Draft, plan: &RoutePlanRow, step: Step<'_>) {
    let s = draft.number();
    let Step { action, actor, note, at_ms } = step;
    let event = RouteStep { seq: s, action, actor, note, time: crate::time_fmt::rfc3339_ms(at_ms) };
    let message = FeedMessage::Route { seq: s, data: RouteChange { plan: plan_json(plan), event } }.to_json();
    draft.rows.route_events.push(RouteEventRow {
        seq: s,
        plan_seq: plan.plan_seq,
        team_id: plan.team_id.clone(),
        at_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        lon: plan.lon,
        lat: plan.lat,
        payload: message.clone(),
    });
    draft.rows.route_plans.push(plan.clone());
    let team = Some(Arc::from(plan.team_id.as_str()));
    draft.publish(FeedEvent::route(s, plan.lon, plan.lat, team, Arc::from(message)));
}

/// The route rules on one command.
pub(super) fn route_command(draft: &mut Draft, cmd: &RouteCommand) -> Result<RoutePlanRow, Refusal> {
    match cmd {
        RouteCommand::Push { team_id, kind, reason, plan, anchor, actor, now_ms, unless_same_stops } => {
            if *unless_same_stops && same_stops(&draft.after.route_heads, team_id, kind, plan) {
                return Err(Conflict::PlanUnchanged.into());
            }
            let version = draft.after.route_heads.get(team_id).map_or(1, |h| h.version + 1);
            if let Some(old) = draft.after.route_heads.get_mut(team_id).filter(|h| h.status == "pending") {
                old.status = "superseded".into();
                let old = old.clone();
                let note = format!("replaced by version {version}");
                route_event(draft, &old, Step { action: "supersede", actor, note: &note, at_ms: *now_ms });
            }
            let row = RoutePlanRow {
                plan_seq: draft.next_seq(),
                team_id: team_id.clone(),
                version,
                kind: kind.clone(),
                reason: reason.clone(),
                created_ms: *now_ms,
                created_by: actor.clone(),
                plan: plan.to_string(),
                lon: anchor.lon(),
                lat: anchor.lat(),
                status: "pending".into(),
                acked_ms: None,
                acked_by: None,
                escalation: "none".into(),
            };
            route_event(draft, &row, Step { action: "push", actor, note: reason, at_ms: *now_ms });
            draft.after.route_heads.insert(team_id.clone(), row.clone());
            Ok(row)
        }
        RouteCommand::Ack { team_id, version, actor, now_ms } => {
            let head = draft.after.route_heads.get_mut(team_id).ok_or_else(|| Unknown::RoutePlan(team_id.clone()))?;
            if head.version != *version {
                let current = head.version;
                return Err(Conflict::NotCurrentVersion { team_id: team_id.clone(), version: *version, current }.into());
            }
            if head.status != "pending" {
                return Err(NotAllowed::PlanNotPending { version: *version, status: head.status.clone() }.into());
            }
            head.status = "acknowledged".into();
            head.acked_ms = Some(*now_ms);
            head.acked_by = Some(actor.clone());
            let head = head.clone();
            route_event(draft, &head, Step { action: "ack", actor, note: "", at_ms: *now_ms });
            Ok(head)
        }
    }
}

/// Whether the team's current plan is of the same kind and visits the same stops
/// (waypoint ids) in the same order as `plan`.
fn same_stops(heads: &HashMap<String, RoutePlanRow>, team_id: &str, kind: &str, plan: &serde_json::Value) -> bool {
    let stops = |p: &serde_json::Value| -> Vec<String> {
        p["waypoints"]
            .as_array()
            .map(|w| w.iter().filter_map(|w| w["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    heads
        .get(team_id)
        .filter(|h| h.status != "superseded" && h.kind == kind)
        .is_some_and(|h| serde_json::from_str::<serde_json::Value>(&h.plan).is_ok_and(|old| stops(&old) == stops(plan)))
}

/// Escalates pending plans nobody acknowledged in time: to the post leader after
/// [`ROUTE_ACK_S`], to the command centre after twice that.
pub(super) fn route_escalations(draft: &mut Draft, now_ms: i64) {
    let mut teams: Vec<String> = draft.after.route_heads.keys().cloned().collect();
    teams.sort_unstable();
    for team in teams {
        let Some(h) = draft.after.route_heads.get_mut(&team).filter(|h| h.status == "pending") else { continue };
        let waited_s = (now_ms - h.created_ms) / 1000;
        let due = if waited_s >= 2 * ROUTE_ACK_S {
            "command_centre"
        } else if waited_s >= ROUTE_ACK_S {
            "post_leader"
        } else {
            continue;
        };
        if h.escalation == due || h.escalation == "command_centre" {
            continue;
        }
        h.escalation = due.into();
        let h = h.clone();
        let note = format!("not acknowledged for {waited_s} s: escalated to {due}");
        route_event(draft, &h, Step { action: "escalate", actor: "server", note: &note, at_ms: now_ms });
    }
}

/// Diverts the team nearest a serious alert (priority 1 or 2) the push raised: go
/// there, then resume. A diversion the route rules refuse is logged, not answered.
pub(super) fn divert(draft: &mut Draft, known: &Known, alert_seq: Option<i64>, now_ms: i64) {
    divert_to_help(draft, known, alert_seq, now_ms, None);
}

/// [`divert`], choosing among the members of teams other than `caller`, the device that
/// raised the alert (an SOS): the help that is sent is the nearest other member's team,
/// never the caller's own position mistaken for the nearest unit.
pub(super) fn divert_to_help(
    draft: &mut Draft,
    known: &Known,
    alert_seq: Option<i64>,
    now_ms: i64,
    caller: Option<&str>,
) {
    let Some(alert) = draft.rows.alerts.last().filter(|a| Some(a.seq) == alert_seq && a.priority <= 2) else {
        return;
    };
    let Some(cmd) = diversion(known, &draft.after.units, alert, now_ms, caller) else { return };
    if let Err(e) = route_command(draft, &cmd) {
        tracing::warn!(reason = %e, "diversion not pushed");
    }
}

/// The diversion a serious alert calls for: the team with a current plan whose
/// member is nearest the alert (within [`DIVERSION_RADIUS_M`]) goes there by road,
/// stays a few minutes, and comes back to where it left its route.
fn diversion(
    known: &Known,
    learnt: &crate::hashing::FastMap<String, Arc<str>>,
    alert: &AlertRow,
    now_ms: i64,
    caller: Option<&str>,
) -> Option<RouteCommand> {
    let place = Position::new(alert.lon, alert.lat).ok()?;
    let (device, team, from, d) = known
        .tracks
        .iter()
        .filter(|(id, _)| Some(id.as_str()) != caller)
        .filter_map(|(id, (t, _))| {
            let team = known.unit_of(id, learnt)?;
            let fix = t.last_trusted?;
            if now_ms - fix.time_ms > UNIT_MAX_AGE_MS {
                return None;
            }
            let head = known.route_heads.get(team.as_ref())?;
            (head.status != "superseded").then_some((id.as_str(), team, fix.position, fix.position.haversine_m(place)))
        })
        .filter(|(.., d)| *d <= DIVERSION_RADIUS_M)
        .min_by(|a, b| a.3.total_cmp(&b.3).then(a.0.cmp(b.0)))?;
    let leg = |a: Position, b: Position| -> (Vec<[f64; 2]>, Option<f64>) {
        match known.travel.of(&team).route(a, b) {
            Some(r) => {
                let mut line: Vec<[f64; 2]> = vec![[a.lon(), a.lat()]];
                line.extend(r.geometry.iter().map(|p| [p.lon(), p.lat()]));
                line.push([b.lon(), b.lat()]);
                (line, Some(r.travel_s))
            }
            None => (vec![[a.lon(), a.lat()], [b.lon(), b.lat()]], None),
        }
    };
    let (mut line, there_s) = leg(from, place);
    let (back, back_s) = leg(place, from);
    line.extend(back.into_iter().skip(1));
    line.dedup();
    if line.len() < 2 {
        line.push([place.lon(), place.lat()]);
    }
    let arrive_ms = now_ms + (there_s.unwrap_or(d / 5.0) * 1000.0) as i64;
    // Where the team goes on once back: the route it left (the one a diversion left,
    // when diverted again), from its point nearest the place it left it. The
    // corridor of the diversion includes it, so going on is not leaving the plan.
    let resume = known.route_heads.get(team.as_ref()).map(|h| resume_line(h, from)).unwrap_or_default();
    let plan = serde_json::json!({
        "geometry": {"type": "LineString", "coordinates": line},
        "waypoints": [
            {"name": format!("alert {}", alert.seq), "lon": place.lon(), "lat": place.lat(),
             "planned_time": crate::time_fmt::rfc3339_ms(arrive_ms), "dwell_s": DIVERSION_DWELL_S},
            {"name": "resume", "kind": "resume", "lon": from.lon(), "lat": from.lat(), "planned_time": serde_json::Value::Null, "dwell_s": serde_json::Value::Null},
        ],
        "resume_geometry": {"type": "LineString", "coordinates": resume},
        "figures": {"alert_seq": alert.seq, "distance_m": d.round(), "travel_there_s": there_s.map(f64::round),
                    "travel_back_s": back_s.map(f64::round), "nearest_member": device},
    });
    Some(RouteCommand::Push {
        team_id: team.to_string(),
        kind: "diversion".into(),
        reason: format!(
            "priority {} alert {} ({}): go to the place, then resume the route",
            alert.priority, alert.seq, alert.rule
        ),
        plan,
        anchor: from,
        actor: "server".into(),
        now_ms,
        unless_same_stops: false,
    })
}

/// Each team's current plan as a corridor: its geometry, and its waypoints as
/// checkpoints (50 m radius, the waypoint's dwell, its planned time if any). A plan
/// whose geometry cannot make a corridor is left out (and measured against nothing).
pub(super) fn corridors_of(heads: &HashMap<String, RoutePlanRow>) -> HashMap<String, (i64, Arc<Corridor>)> {
    let config = AdherenceConfig::default();
    heads
        .iter()
        .filter(|(_, h)| h.status != "superseded")
        .filter_map(|(team, h)| {
            let plan: serde_json::Value = serde_json::from_str(&h.plan).ok()?;
            // A diversion's corridor goes on along the route the team resumes.
            let line: Vec<Position> = plan["geometry"]["coordinates"]
                .as_array()?
                .iter()
                .chain(plan["resume_geometry"]["coordinates"].as_array().into_iter().flatten())
                .filter_map(|c| Position::new(c[0].as_f64()?, c[1].as_f64()?).ok())
                .collect();
            let checkpoints: Vec<PlannedCheckpoint> = plan["waypoints"]
                .as_array()
                .map(|w| {
                    w.iter()
                        // Where a diversion resumes is where the team already is: a
                        // place to go on from, not a checkpoint to visit.
                        .filter(|w| w["kind"] != "resume")
                        .filter_map(|w| {
                            let position = Position::new(w["lon"].as_f64()?, w["lat"].as_f64()?).ok()?;
                            let planned =
                                w["planned_time"].as_str().and_then(|t| liandong_ingest::parse_timestamp(t).ok());
                            Some(PlannedCheckpoint {
                                position,
                                radius_m: 50.0,
                                min_dwell_s: w["dwell_s"].as_f64().unwrap_or(0.0),
                                planned_arrival_ms: planned.unwrap_or(i64::MAX / 2),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let corridor = Corridor::new(&line, checkpoints, None, &config).ok()?;
            Some((team.clone(), (h.plan_seq, Arc::new(corridor))))
        })
        .collect()
}

/// The line a team resumes after a diversion: the current plan's (or, when that is a
/// diversion, the line it resumes), turned to start at its vertex nearest `from`, where
/// the team leaves it. A loop goes all the way round from there.
fn resume_line(head: &RoutePlanRow, from: Position) -> Vec<[f64; 2]> {
    let Ok(plan) = serde_json::from_str::<serde_json::Value>(&head.plan) else { return Vec::new() };
    let key = if head.kind == "diversion" { "resume_geometry" } else { "geometry" };
    let line: Vec<[f64; 2]> = plan[key]["coordinates"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| Some([c[0].as_f64()?, c[1].as_f64()?])).collect())
        .unwrap_or_default();
    let nearest = line
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, Position::new(c[0], c[1]).ok()?.haversine_m(from))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    let closed = line.len() > 2 && line.first() == line.last();
    if closed {
        // Round the loop from the nearest vertex back to it.
        let ring = &line[..line.len() - 1];
        let mut out: Vec<[f64; 2]> =
            ring[nearest % ring.len()..].iter().chain(&ring[..nearest % ring.len()]).copied().collect();
        out.push(out[0]);
        out
    } else {
        // An open line is walked both ways: on from the nearest vertex to its end, then
        // back along all of it.
        let mut out: Vec<[f64; 2]> = line[nearest..].to_vec();
        out.extend(line.iter().rev().skip(1));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liandong_core::{CountyMap, Enricher};

    fn push(team: &str, now_ms: i64) -> RouteCommand {
        RouteCommand::Push {
            team_id: team.into(),
            kind: "plan".into(),
            reason: "r".into(),
            plan: serde_json::json!({}),
            anchor: Position::new(107.2, 30.7).unwrap(),
            actor: "op".into(),
            now_ms,
            unless_same_stops: false,
        }
    }

    /// A draft numbering from `seq` with the route plan heads `heads`.
    fn draft(seq: i64, heads: HashMap<String, RoutePlanRow>) -> Draft {
        Draft::new(Arc::new(Enricher::new(&CountyMap::default())), seq, HashMap::new(), heads)
    }

    /// Two instances re-planning at once (or a re-plan that changes nothing) push one
    /// version: the second push with the same stops is refused in sequence.
    #[test]
    fn a_push_unless_same_stops_is_refused_when_the_stops_are_the_same() {
        let mut d = draft(1, HashMap::new());
        let replan = |stops: &[&str], kind: &str| {
            let waypoints: Vec<serde_json::Value> = stops.iter().map(|id| serde_json::json!({"id": id})).collect();
            let RouteCommand::Push { team_id, reason, anchor, actor, now_ms, .. } = push("t", 0) else {
                unreachable!()
            };
            RouteCommand::Push {
                team_id,
                kind: kind.into(),
                reason,
                plan: serde_json::json!({"waypoints": waypoints}),
                anchor,
                actor,
                now_ms,
                unless_same_stops: true,
            }
        };
        assert_eq!(route_command(&mut d, &replan(&["cp-1", "cell-3-4"], "plan")).unwrap().version, 1);
        assert_eq!(
            route_command(&mut d, &replan(&["cp-1", "cell-3-4"], "plan")).unwrap_err(),
            Refusal::Conflict(Conflict::PlanUnchanged)
        );
        assert_eq!(route_command(&mut d, &replan(&["cell-3-4", "cp-1"], "plan")).unwrap().version, 2, "another order");
        assert_eq!(route_command(&mut d, &replan(&["cell-3-4", "cp-1"], "manual")).unwrap().version, 3, "another kind");
        assert_eq!(d.after.route_heads["t"].version, 3);
    }

    /// Pushes supersede a pending version; an acknowledgement names the newest pending
    /// one; a plan nobody acknowledges escalates once per level, at 120 s and 240 s.
    #[test]
    fn route_versions_acknowledgements_and_escalation() {
        let mut d = draft(1, HashMap::new());
        let v1 = route_command(&mut d, &push("t", 0)).unwrap();
        let v2 = route_command(&mut d, &push("t", 1_000)).unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        let ack = |version, now_ms| RouteCommand::Ack { team_id: "t".into(), version, actor: "lead".into(), now_ms };
        assert!(route_command(&mut d, &ack(1, 2_000)).unwrap_err().to_string().contains("not team t's current plan"));
        let unknown_team = RouteCommand::Ack { team_id: "x".into(), version: 1, actor: "l".into(), now_ms: 0 };
        assert!(route_command(&mut d, &unknown_team).is_err());
        let actions: Vec<&str> = d.rows.route_events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["push", "supersede", "push"], "the pending v1 was superseded by v2");

        let mut d = draft(100, d.after.route_heads);
        for now_ms in [1_000 + 119_000, 1_000 + 120_000, 1_000 + 130_000, 1_000 + 240_000, 1_000 + 900_000] {
            route_escalations(&mut d, now_ms);
        }
        let notes: Vec<&str> = d.rows.route_events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(notes, ["escalate", "escalate"], "once per level");
        assert_eq!(d.after.route_heads["t"].escalation, "command_centre");
        let payload: serde_json::Value = serde_json::from_str(&d.rows.route_events[0].payload).unwrap();
        assert_eq!(payload["data"]["plan"]["escalation"], "post_leader");

        // Acknowledged, it escalates no more.
        let mut d = draft(200, d.after.route_heads);
        let v3 = route_command(&mut d, &push("u", 0)).unwrap();
        let ack_u = RouteCommand::Ack { team_id: "u".into(), version: v3.version, actor: "lead".into(), now_ms: 5_000 };
        route_command(&mut d, &ack_u).unwrap();
        route_escalations(&mut d, 1_000_000);
        assert!(d.rows.route_events.iter().all(|e| e.team_id != "u" || e.action != "escalate"));
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;
    use liandong_core::adherence::MemberAdherence;
    use liandong_core::jump::Fix;

    fn head(kind: &str, plan: serde_json::Value) -> RoutePlanRow {
        RoutePlanRow {
            plan_seq: 1,
            team_id: "team-1".into(),
            version: 1,
            kind: kind.into(),
            reason: "r".into(),
            created_ms: 0,
            created_by: "op".into(),
            plan: plan.to_string(),
            lon: 107.0,
            lat: 30.0,
            status: "acknowledged".into(),
            acked_ms: None,
            acked_by: None,
            escalation: "none".into(),
        }
    }

    fn p(lon: f64, lat: f64) -> Position {
        Position::new(lon, lat).unwrap()
    }

    #[test]
    fn a_loop_is_resumed_from_its_vertex_nearest_where_the_team_left_it() {
        let ring = [[107.0, 30.0], [107.01, 30.0], [107.01, 30.01], [107.0, 30.01], [107.0, 30.0]];
        let h = head("plan", serde_json::json!({"geometry": {"coordinates": ring}}));
        let got = resume_line(&h, p(107.0101, 30.0099));
        assert_eq!(got, vec![[107.01, 30.01], [107.0, 30.01], [107.0, 30.0], [107.01, 30.0], [107.01, 30.01]]);
    }

    #[test]
    fn an_open_line_goes_on_to_its_end_then_back_along_all_of_it() {
        let line = [[107.0, 30.0], [107.01, 30.0], [107.02, 30.0]];
        let h = head("plan", serde_json::json!({"geometry": {"coordinates": line}}));
        let got = resume_line(&h, p(107.0099, 30.0));
        assert_eq!(got, vec![[107.01, 30.0], [107.02, 30.0], [107.01, 30.0], [107.0, 30.0]]);
    }

    #[test]
    fn a_second_diversion_resumes_the_route_the_first_one_left() {
        let route = [[107.0, 30.0], [107.02, 30.0]];
        let h = head(
            "diversion",
            serde_json::json!({"geometry": {"coordinates": [[107.0, 30.0], [107.0, 30.05]]},
                               "resume_geometry": {"coordinates": route}}),
        );
        assert_eq!(resume_line(&h, p(107.0, 30.0)), vec![[107.0, 30.0], [107.02, 30.0], [107.0, 30.0]]);
    }

    #[test]
    fn a_diversions_corridor_goes_on_along_the_resumed_route_and_resume_is_no_checkpoint() {
        let plan = serde_json::json!({
            "geometry": {"coordinates": [[107.0, 30.0], [107.0, 30.02], [107.0, 30.0]]},
            "resume_geometry": {"coordinates": [[107.0, 30.0], [107.03, 30.0]]},
            "waypoints": [
                {"name": "alert 9", "lon": 107.0, "lat": 30.02, "planned_time": null, "dwell_s": 300},
                {"name": "resume", "kind": "resume", "lon": 107.0, "lat": 30.0, "planned_time": null, "dwell_s": null},
            ],
        });
        let heads = HashMap::from([("team-1".to_string(), head("diversion", plan))]);
        let corridors = corridors_of(&heads);
        let (_, c) = &corridors["team-1"];
        assert!(c.distance_m(p(107.025, 30.0)) < 5.0, "the resumed route is in the corridor");
        assert!(c.distance_m(p(107.0, 30.01)) < 5.0, "so is the way to the alert");
        let mut member = MemberAdherence::new(c);
        let events = member.update(c, Fix { position: p(107.0, 30.0), time_ms: 1_000 }, None);
        assert!(events.is_empty(), "standing where the team left its route skips nothing: {events:?}");
        assert_eq!(member.checkpoint_status().len(), 1, "only the alert's place is a checkpoint");
    }
}
