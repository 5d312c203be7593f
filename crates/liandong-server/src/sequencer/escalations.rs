//! The escalation of late incident steps to the people on duty: at the first level the
//! leader on duty of the incident's post (the assigned unit's post, else the post whose
//! jurisdiction holds the place), at the second the command centre's duty officer,
//! unless the post's leader acknowledged the first. Nobody on duty at the post sends the
//! first level straight to the duty officer, saying so. Each notice is an event in the
//! sequence, addressed to the person it reached, and so is its acknowledgement.

use std::collections::HashMap;
use std::sync::Arc;

use liandong_core::incident::Escalation;
use liandong_core::Position;
use liandong_store::{EscalationRow, IncidentRow, Store, StoreError};

use super::draft::Draft;
use super::handle::{EscalationAckCommand, EscalationAckDone, Refusal, Unknown};
use super::Known;
use crate::feed::messages::EscalationNotice;
use crate::feed::{FeedEvent, FeedMessage};
use crate::roster::Roster;

/// What the sequencer keeps of a notice: whom it reached, for its acknowledgement, and
/// which step it was about, for the next level.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Notice {
    pub escalation_id: i64,
    pub incident_id: i64,
    /// `post_leader` or `command_centre`.
    pub level: String,
    pub person_id: Option<String>,
    pub unit_id: Option<String>,
    /// When it was sent: a notice sent after the incident's step began is about it.
    pub at_ms: i64,
    pub lon: f64,
    pub lat: f64,
    pub acked: bool,
}

/// The notices the sequencer keeps, by escalation id.
pub(super) type Notices = HashMap<i64, Notice>;

/// Applies one stored escalation event to the notices.
pub(super) fn fold(notices: &mut Notices, r: &EscalationRow) {
    match r.action.as_str() {
        "ack" => {
            if let Some(n) = notices.get_mut(&r.escalation_id) {
                n.acked = true;
            }
        }
        _ => {
            let n = Notice {
                escalation_id: r.escalation_id,
                incident_id: r.incident_id,
                level: r.level.clone(),
                person_id: r.person_id.clone(),
                unit_id: r.unit_id.clone(),
                at_ms: r.at_ms,
                lon: r.lon,
                lat: r.lat,
                acked: false,
            };
            notices.insert(r.escalation_id, n);
        }
    }
}

/// The notices to remember at start-up: every unacknowledged one, and every one of an
/// open incident that was escalated (whether its step's first level was acknowledged
/// decides its second).
pub(super) async fn notices_from_store(
    store: &Store,
    incidents: &HashMap<i64, IncidentRow>,
) -> Result<Notices, StoreError> {
    let mut notices = Notices::new();
    for r in store.open_escalations().await? {
        fold(&mut notices, &r);
    }
    for inc in incidents.values().filter(|i| i.escalation != "none") {
        for r in store.escalations_of(inc.incident_id).await? {
            fold(&mut notices, &r);
        }
    }
    Ok(notices)
}

/// Forgets the acknowledged notices of incidents no longer open.
pub(super) fn prune(notices: &mut Notices, open: &HashMap<i64, IncidentRow>) {
    notices.retain(|_, n| !n.acked || open.contains_key(&n.incident_id));
}

/// Whether this step of the incident (begun at `since_ms`) has a notice at `level`, and
/// whether one of them was acknowledged.
fn step_notices(draft: &Draft, incident_id: i64, since_ms: i64, level: &str) -> (bool, bool) {
    let mut of_step = draft
        .after
        .notices
        .values()
        .filter(|n| n.incident_id == incident_id && n.at_ms >= since_ms && n.level == level)
        .peekable();
    let any = of_step.peek().is_some();
    (any, of_step.any(|n| n.acked))
}

/// Whether the escalation of the incident's late step to `due` is stopped: the post's
/// leader acknowledged the first level, so the command centre is not raised.
pub(super) fn stopped(draft: &Draft, inc: &IncidentRow, due: Escalation) -> bool {
    due == Escalation::CommandCentre && step_notices(draft, inc.incident_id, inc.state_since_ms, "post_leader").1
}

/// The post whose leader a late step of the incident reaches: the assigned unit's (a
/// team's base post), else the post whose jurisdiction holds the place.
fn post_of(draft: &Draft, roster: &Roster, inc: &IncidentRow) -> Option<String> {
    if let Some(post) = inc.assigned_unit.as_deref().and_then(|u| roster.post_of(u)) {
        return Some(post.to_owned());
    }
    let place = Position::new(inc.lon, inc.lat).ok()?;
    draft.place(place).post.map(|p| p.id.to_owned())
}

/// Why a notice went where it went, for the screens to word it.
struct Why<'a> {
    /// `late`, `nobody_on_duty`, `no_post` or `acknowledged` (see `EscalationNotice`).
    reason: &'a str,
    late_s: Option<i64>,
    post_id: Option<&'a str>,
}

/// Sends the notice a late step is due at `due`: to the post's leader on duty, or, when
/// there is none or the command centre is due, to the duty officer (once per step and
/// level).
pub(super) fn notify(draft: &mut Draft, known: &Known, inc: &IncidentRow, due: Escalation, now_ms: i64) {
    let roster = &known.roster;
    let late_s = (now_ms - inc.state_since_ms) / 1000;
    let late = format!("{} for {late_s} s", inc.state);
    let post = post_of(draft, roster, inc);
    let officer = || roster.duty_officer(now_ms).map(|s| s.person_id);
    let (level, person, unit, reason, note) = match due {
        Escalation::None => return,
        Escalation::PostLeader => match post.as_deref().and_then(|p| roster.post_leader(p, now_ms)) {
            Some(leader) => ("post_leader", Some(leader.person_id), post.clone(), "late", late),
            None => match &post {
                Some(p) => {
                    let note = format!("{late}; nobody on duty leads post {p}: sent to the command centre");
                    ("command_centre", officer(), None, "nobody_on_duty", note)
                }
                None => {
                    let note = format!("{late}; the incident is in no post's jurisdiction: sent to the command centre");
                    ("command_centre", officer(), None, "no_post", note)
                }
            },
        },
        Escalation::CommandCentre => ("command_centre", officer(), None, "late", late),
    };
    if step_notices(draft, inc.incident_id, inc.state_since_ms, level).0 {
        return;
    }
    let seq = draft.number();
    let row = EscalationRow {
        seq,
        escalation_id: seq,
        incident_id: inc.incident_id,
        action: "notify".into(),
        level: level.into(),
        person_id: person,
        unit_id: unit,
        actor: "server".into(),
        at_ms: now_ms,
        note,
        lon: inc.lon,
        lat: inc.lat,
        payload: String::new(),
    };
    if row.person_id.is_none() {
        tracing::warn!(incident_id = inc.incident_id, level, "escalation reached nobody on duty");
    }
    let why = Why { reason, late_s: Some(late_s), post_id: post.as_deref() };
    record(draft, roster, row, Some(inc), why);
}

/// Adds a numbered escalation event: its message, row, notice and publication.
fn record(draft: &mut Draft, roster: &Roster, mut row: EscalationRow, inc: Option<&IncidentRow>, why: Why<'_>) {
    let name = row.person_id.as_deref().and_then(|p| roster.name(p));
    let data = EscalationNotice {
        escalation_id: row.escalation_id,
        action: &row.action,
        level: &row.level,
        person_id: row.person_id.as_deref(),
        person_name: name.as_deref(),
        unit_id: row.unit_id.as_deref(),
        note: &row.note,
        reason: why.reason,
        late_s: why.late_s,
        post_id: why.post_id,
        post_name: why.post_id.and_then(|p| roster.post_name(p)),
        actor: &row.actor,
        time: crate::time_fmt::rfc3339_ms(row.at_ms),
        incident: inc,
    };
    row.payload = FeedMessage::Escalation { seq: row.seq, data }.to_json();
    fold(&mut draft.after.notices, &row);
    let person = row.person_id.as_deref().map(Arc::from);
    let operators = row.level == "command_centre";
    let message = Arc::from(row.payload.as_str());
    draft.publish(FeedEvent::escalation(row.seq, row.lon, row.lat, person, operators, message));
    draft.rows.escalations.push(row);
}

/// The acknowledgement of a notice by the person it reached (by an operator or an
/// administrator when it reached nobody): numbered, stored and sent to the notice's
/// audience. A second acknowledgement is answered as a repeat, storing nothing.
pub(super) fn escalation_ack(
    draft: &mut Draft,
    known: &Known,
    cmd: &EscalationAckCommand,
) -> Result<EscalationAckDone, Refusal> {
    let id = cmd.escalation_id;
    let n = draft.after.notices.get(&id).cloned().ok_or(Unknown::Escalation(id))?;
    let allowed = match &n.person_id {
        Some(p) => cmd.person_id.as_deref() == Some(p.as_str()),
        None => cmd.operator,
    };
    if !allowed {
        return Err(Refusal::Forbidden(format!("escalation {id} was sent to someone else")));
    }
    let done =
        |repeat| EscalationAckDone { escalation_id: id, incident_id: n.incident_id, level: n.level.clone(), repeat };
    if n.acked {
        return Ok(done(true));
    }
    let seq = draft.number();
    let row = EscalationRow {
        seq,
        escalation_id: id,
        incident_id: n.incident_id,
        action: "ack".into(),
        level: n.level.clone(),
        person_id: n.person_id.clone(),
        unit_id: n.unit_id.clone(),
        actor: cmd.actor.clone(),
        at_ms: cmd.now_ms,
        note: String::new(),
        lon: n.lon,
        lat: n.lat,
        payload: String::new(),
    };
    let inc = draft.after.incidents.get(&n.incident_id).cloned();
    let why = Why { reason: "acknowledged", late_s: None, post_id: n.unit_id.as_deref() };
    record(draft, &known.roster, row, inc.as_ref(), why);
    Ok(done(false))
}
