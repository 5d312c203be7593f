//! The incident rules: creation (one open incident per alert), the life-cycle steps
//! (checked by the core's `incident::State`), who may take them, and the escalation of
//! late steps.

use std::sync::Arc;

use liandong_core::incident::{escalation_due, Action, Escalation, State as IncidentState};
use liandong_store::{IncidentEventRow, IncidentRow};

use super::draft::Draft;
use super::handle::{Conflict, NotAllowed, Unknown};
use super::{escalations, Known};
use super::{IncidentCommand, IncidentDone, Refusal};
use crate::feed::messages::{IncidentChange, IncidentStep};
use crate::feed::{FeedEvent, FeedMessage};

fn escalation_name(e: Escalation) -> &'static str {
    match e {
        Escalation::None => "none",
        Escalation::PostLeader => "post_leader",
        Escalation::CommandCentre => "command_centre",
    }
}

fn parse_escalation(s: &str) -> Escalation {
    match s {
        "post_leader" => Escalation::PostLeader,
        "command_centre" => Escalation::CommandCentre,
        _ => Escalation::None,
    }
}

/// One step of an incident's timeline, as recorded.
struct Step<'a> {
    action: &'a str,
    /// The state before the step (none for a create).
    from: Option<IncidentState>,
    actor: &'a str,
    note: String,
    /// The photos the step sent (an officer's feedback).
    photo_urls: Vec<String>,
    at_ms: i64,
    /// The unit the incident was assigned to before a dispatch to another unit.
    reassigned_from: Option<String>,
}

/// Records one incident event: the timeline row, the new incident row and the feed
/// message (visible to operators and to the assigned unit).
fn incident_event(draft: &mut Draft, inc: &IncidentRow, step: Step<'_>) {
    let s = draft.number();
    let Step { action, from, actor, note, photo_urls, at_ms, reassigned_from } = step;
    let event = IncidentStep {
        seq: s,
        action,
        from,
        to: inc.state,
        actor,
        note: &note,
        time: crate::time_fmt::rfc3339_ms(at_ms),
        photo_urls: &photo_urls,
        reassigned_from: reassigned_from.as_deref(),
    };
    let message = FeedMessage::Incident { seq: s, data: IncidentChange { incident: inc, event } }.to_json();
    draft.rows.incident_events.push(IncidentEventRow {
        seq: s,
        incident_id: inc.incident_id,
        at_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        from_state: from,
        to_state: inc.state,
        note,
        lon: inc.lon,
        lat: inc.lat,
        unit_id: inc.assigned_unit.clone(),
        payload: message.clone(),
        photo_urls,
    });
    draft.rows.incidents.retain(|r| r.incident_id != inc.incident_id);
    draft.rows.incidents.push(inc.clone());
    let unit = inc.assigned_unit.as_deref().map(Arc::from);
    draft.publish(FeedEvent::incident(s, inc.lon, inc.lat, unit, inc.priority, Arc::from(message)));
}

/// The incident rules on one command: creation (one open incident per alert: two
/// operators opening the same alert from two screens, or two accepts of one grid report,
/// get the incident opened first), a life-cycle step on an open incident (by the
/// assigned phone when a phone acts), and the escalation of late steps.
pub(super) fn incident_command(draft: &mut Draft, cmd: &IncidentCommand) -> Result<IncidentDone, Refusal> {
    match cmd {
        IncidentCommand::Create { title, kind, priority, position, alert_seq, actor, now_ms } => {
            if let Some(open) = alert_seq.and_then(|a| open_of_alert(draft, a)) {
                return Ok(IncidentDone { incident: Some(open), existing: true, repeat: false });
            }
            let township = draft.place(*position).township.map(|t| t.name.to_owned());
            let inc = IncidentRow {
                incident_id: draft.next_seq(),
                title: title.clone(),
                priority: i64::from(*priority),
                state: IncidentState::New,
                lon: position.lon(),
                lat: position.lat(),
                alert_seq: *alert_seq,
                assigned_device: None,
                assigned_unit: None,
                created_ms: *now_ms,
                state_since_ms: *now_ms,
                escalation: "none".into(),
                kind: kind.clone(),
                township,
            };
            let step = Step {
                action: "create",
                from: None,
                actor,
                note: String::new(),
                photo_urls: Vec::new(),
                at_ms: *now_ms,
                reassigned_from: None,
            };
            incident_event(draft, &inc, step);
            draft.after.incidents.insert(inc.incident_id, inc.clone());
            Ok(IncidentDone { incident: Some(inc), existing: false, repeat: false })
        }
        IncidentCommand::Act { incident_id, action, actor, actor_device, assign, note, photo_urls, now_ms } => {
            let id = *incident_id;
            let inc = draft.after.incidents.get_mut(&id).ok_or(Unknown::OpenIncident(id))?;
            if let Some(device) = actor_device.as_ref().filter(|d| inc.assigned_device.as_ref() != Some(*d)) {
                return Err(Conflict::NotAssigned { incident_id: id, device: device.clone() }.into());
            }
            // The assigned phone sending a step the incident has already taken is a
            // phone whose answer was lost: it is told so, and nothing is recorded twice.
            if actor_device.is_some() && action.leads_to() == inc.state {
                return Ok(IncidentDone { incident: Some(inc.clone()), existing: false, repeat: true });
            }
            let from = inc.state;
            let to = from.after(*action).map_err(|reason| NotAllowed::IncidentStep {
                state: from,
                action: *action,
                reason,
            })?;
            let mut reassigned_from = None;
            if *action == Action::Dispatch {
                let (device, unit) = assign.clone().ok_or(NotAllowed::DispatchWithoutDevice)?;
                inc.assigned_device = Some(device);
                // Sent to another unit, the incident leaves the reach of those who saw it
                // through the first one: the feed tells them (`incident_gone`).
                reassigned_from = inc.assigned_unit.take().filter(|before| unit.as_ref() != Some(before));
                inc.assigned_unit = unit;
            }
            inc.state = to;
            inc.state_since_ms = *now_ms;
            inc.escalation = "none".into();
            let inc = inc.clone();
            let verb =
                serde_json::to_value(action).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let photo_urls = photo_urls.clone();
            let step = Step {
                action: &verb,
                from: Some(from),
                actor,
                note: note.clone(),
                photo_urls,
                at_ms: *now_ms,
                reassigned_from,
            };
            incident_event(draft, &inc, step);
            // The late step was taken: what was escalated about it is moot.
            escalations::resolve(draft, &inc, actor, *now_ms);
            Ok(IncidentDone { incident: Some(inc), existing: false, repeat: false })
        }
        // The clock's rules, escalation among them, run in `clock::tick`.
        IncidentCommand::Tick { .. } => Ok(IncidentDone::default()),
    }
}

/// The open incident already made of an alert (the first opened, if several).
fn open_of_alert(draft: &Draft, alert_seq: i64) -> Option<IncidentRow> {
    let incidents = draft.after.incidents.values();
    incidents.filter(|i| i.alert_seq == Some(alert_seq)).min_by_key(|i| i.incident_id).cloned()
}

/// Escalates every open incident whose step is late at `now_ms`, once per level: the
/// incident's label and timeline, and a notice to the person on duty the level reaches
/// (see `escalations`). A step whose first level the post's leader acknowledged goes
/// no higher.
pub(super) fn escalate(draft: &mut Draft, known: &Known, now_ms: i64) {
    let mut ids: Vec<i64> = draft.after.incidents.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let Some(inc) = draft.after.incidents.get(&id) else { continue };
        let due = escalation_due(inc.state, u8::try_from(inc.priority).unwrap_or(5), inc.state_since_ms, now_ms);
        if due > parse_escalation(&inc.escalation) && !escalations::stopped(draft, inc, due) {
            let Some(inc) = draft.after.incidents.get_mut(&id) else { continue };
            inc.escalation = escalation_name(due).into();
            let late_s = (now_ms - inc.state_since_ms) / 1000;
            let note = format!("{} for {late_s} s: escalated to {}", inc.state, escalation_name(due));
            let inc = inc.clone();
            let step = Step {
                action: "escalate",
                from: Some(inc.state),
                actor: "server",
                note,
                photo_urls: Vec::new(),
                at_ms: now_ms,
                reassigned_from: None,
            };
            incident_event(draft, &inc, step);
            escalations::notify(draft, known, &inc, due, now_ms);
        }
    }
}
