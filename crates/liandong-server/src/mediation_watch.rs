//! The joint mediation centre's watch: each case step's time limit (`[mediation]`) and
//! the ticker that escalates a late step once (`mediation_overdue`, marked in the store
//! with its alert, so a restart does not raise it again), and the dispute-turned-
//! criminal check (民转刑) a new criminal incident runs against open and recent
//! disputes.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use liandong_core::Position;
use liandong_store::{IncidentRow, MediationCase, Party};
use serde::Deserialize;

use crate::config::MediationConfig;
use crate::error::ApiError;
use crate::sequencer::CaseCommand;
use crate::AppState;

/// How often the cases under way are looked at: a late step is escalated within a few
/// seconds, for the price of one indexed read.
pub const TICK: Duration = Duration::from_secs(1);

/// At most this many cases under way are looked at per tick (oldest first).
const MAX_UNDER_WAY: u32 = 5000;

/// At most this many open or recent disputes are checked against an incident.
const MAX_RECENT: u32 = 2000;

const H_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * H_MS;

/// The step a case is at and when it is due: `accept` (pending), `resolve` (accepted),
/// `follow_up` (mediated); None once followed up or declined.
pub fn step_due(c: &MediationConfig, case: &MediationCase) -> Option<(&'static str, i64)> {
    match case.status.as_str() {
        "pending" => Some(("accept", case.opened_ms + i64::from(c.accept_within_h) * H_MS)),
        "accepted" => {
            let from = case.accepted_ms.unwrap_or(case.opened_ms);
            Some(("resolve", from + i64::from(c.resolve_within_days) * DAY_MS))
        }
        "mediated" => {
            let due = case.follow_up_due_ms.unwrap_or_else(|| {
                case.closed_ms.unwrap_or(case.opened_ms) + i64::from(c.follow_up_within_days) * DAY_MS
            });
            Some(("follow_up", due))
        }
        _ => None,
    }
}

/// Escalates every case step past its limit at `now_ms` that was not escalated yet.
/// Returns the cases escalated. A failed read or submit is logged and tried again at
/// the next tick.
pub async fn tick(s: &AppState, now_ms: i64) -> Vec<i64> {
    let (cases, steps) = match s.store.mediation_under_way(MAX_UNDER_WAY).await {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(error = %e, "reading mediation cases under way failed; trying again");
            return Vec::new();
        }
    };
    let escalated: HashSet<(i64, &str)> = steps.iter().map(|(id, step)| (*id, step.as_str())).collect();
    let mut done = Vec::new();
    for case in cases {
        let Some((step, due_ms)) = step_due(&s.config.mediation, &case) else { continue };
        if due_ms >= now_ms || escalated.contains(&(case.case_id, step)) {
            continue;
        }
        let Ok(position) = Position::new(case.lon, case.lat) else { continue };
        let case_id = case.case_id;
        let cmd = CaseCommand::Overdue { case: Box::new(case), step: step.to_owned(), due_ms, position, now_ms };
        match s.ingest.submit_case(cmd).await {
            Ok(_) => done.push(case_id),
            Err(e) => tracing::warn!(case_id, error = %e, "escalating a late mediation step failed; trying again"),
        }
    }
    done
}

/// Runs [`tick`] every [`TICK`] on the server's clock until shutdown.
pub async fn run(state: Weak<AppState>, shutdown: tokio::sync::watch::Receiver<bool>) {
    crate::clock::every(state, shutdown, TICK, |s| async move {
        tick(&s, s.config.clock.now_ms()).await;
    })
    .await;
}

/// A party as a request gives it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyIn {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// Validates a request's parties (`field` names the list): 1 to 50 characters of name,
/// a phone of 3 to 20 digits (a leading `+`, spaces and dashes allowed and dropped), at
/// most 20 parties.
pub fn parties(field: &str, given: &[PartyIn]) -> Result<Vec<Party>, ApiError> {
    if given.len() > 20 {
        return Err(ApiError::bad_request(field, "at most 20 parties"));
    }
    let mut out = Vec::with_capacity(given.len());
    for (i, p) in given.iter().enumerate() {
        let name = p.name.trim();
        if name.is_empty() || name.chars().count() > 50 || name.contains('\0') {
            return Err(ApiError::bad_request(format!("{field}[{i}].name"), "must be 1 to 50 characters"));
        }
        let phone = match p.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(raw) => {
                let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
                let body = digits.strip_prefix('+').unwrap_or(&digits);
                if !(3..=20).contains(&body.len()) || !body.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ApiError::bad_request(format!("{field}[{i}].phone"), "must be 3 to 20 digits"));
                }
                Some(digits)
            }
        };
        out.push(Party { name: name.to_owned(), phone });
    }
    Ok(out)
}

/// The disputes a criminal incident touches, each with why: `party` when one of its
/// parties has the same name and phone as a dispute's, else `place` when the dispute's
/// place is within `radius_m` (haversine metres). A case of the incident itself (sent
/// to mediation) is never among them.
pub fn touched(
    incident: &IncidentRow,
    parties: &[Party],
    disputes: &[MediationCase],
    radius_m: f64,
) -> Vec<(i64, String)> {
    let Ok(here) = Position::new(incident.lon, incident.lat) else { return Vec::new() };
    let same = |a: &Party, b: &Party| a.name == b.name && a.phone.is_some() && a.phone == b.phone;
    let mut out = Vec::new();
    for d in disputes.iter().filter(|d| d.incident_id != Some(incident.incident_id)) {
        let reason = if d.parties.iter().any(|dp| parties.iter().any(|p| same(p, dp))) {
            "party"
        } else if Position::new(d.lon, d.lat).is_ok_and(|p| p.haversine_m(here) <= radius_m) {
            "place"
        } else {
            continue;
        };
        out.push((d.case_id, reason.to_owned()));
    }
    out.sort();
    out
}

/// Checks a new incident against open and recent disputes when its kind is a crime;
/// links it to those it touches and raises `dispute_turned_criminal` (priority 1).
/// Returns the cases linked.
pub async fn check_incident(
    s: &Arc<AppState>,
    incident: &IncidentRow,
    parties: &[Party],
) -> Result<Vec<(i64, String)>, ApiError> {
    let c = &s.config.mediation;
    if !c.criminal_kinds.contains(&incident.kind) {
        return Ok(Vec::new());
    }
    let now = s.config.clock.now_ms();
    let since = now - i64::from(c.recent_days) * DAY_MS;
    let disputes = s.store.mediation_recent(since, MAX_RECENT).await.map_err(|e| ApiError::unavailable(&e))?;
    let links = touched(incident, parties, &disputes, c.repeat_radius_m);
    if links.is_empty() {
        return Ok(links);
    }
    let position = Position::new(incident.lon, incident.lat).map_err(|e| ApiError::internal(&e))?;
    let cmd = CaseCommand::TurnedCriminal {
        incident_id: incident.incident_id,
        kind: incident.kind.clone(),
        links: links.clone(),
        position,
        now_ms: now,
    };
    s.ingest.submit_case(cmd).await?;
    tracing::info!(incident_id = incident.incident_id, cases = links.len(), "a criminal incident touched disputes");
    Ok(links)
}
