//! What one group commit writes, and the rules both backends apply to it before writing.

use std::collections::HashMap;

use crate::camera_status::CameraStatusRow;
use crate::error::StoreError;
use crate::rows::ParkingRecordRow;
use crate::rows::{
    AlertAckRow, AlertRow, AuditEntry, CameraEventRow, CaseOverdueRow, DeviceStateRow, DisputeLinkRow, EscalationRow,
    GridReport, IncidentEventRow, IncidentRow, MediationCase, PositionRow, RouteEventRow, RoutePlanRow,
};

/// What one group commit writes.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    pub positions: &'a [PositionRow],
    pub states: &'a [DeviceStateRow],
    pub camera_events: &'a [CameraEventRow],
    pub alerts: &'a [AlertRow],
    /// Audit entries the batch's events produced (a tagged person seen by a camera).
    pub audit: &'a [AuditEntry],
    pub incidents: &'a [IncidentRow],
    pub incident_events: &'a [IncidentEventRow],
    /// Grid-member reports (a dispute also opens its mediation case).
    pub reports: &'a [GridReport],
    /// Route plan versions as they are after the batch, and their events.
    pub route_plans: &'a [RoutePlanRow],
    pub route_events: &'a [RouteEventRow],
    /// Operators' acknowledgements of alerts.
    pub alert_acks: &'a [AlertAckRow],
    /// Escalations of late steps to the people on duty, and their acknowledgements.
    pub escalations: &'a [EscalationRow],
    /// Mediation cases registered through the sequencer (walk-ins, incidents sent to
    /// mediation), each numbered as its `mediation_case` alert.
    pub cases: &'a [MediationCase],
    /// Late steps of cases escalated, each with its alert.
    pub case_overdue: &'a [CaseOverdueRow],
    /// Criminal incidents linked to the disputes they touched, with their alert.
    pub dispute_links: &'a [DisputeLinkRow],
    /// Plates read by parking captures, each numbered as its camera event.
    pub parking_records: &'a [ParkingRecordRow],
    /// Cameras seen (a push) or found silent (with their `camera_offline` alert).
    pub camera_status: &'a [CameraStatusRow],
}

impl Batch<'_> {
    /// The sequence numbers the batch assigns (device states and incident rows only
    /// refer to numbers of their events).
    fn seqs(&self) -> impl Iterator<Item = i64> + '_ {
        self.positions
            .iter()
            .map(|r| r.seq)
            .chain(self.camera_events.iter().map(|r| r.seq))
            .chain(self.alerts.iter().map(|r| r.seq))
            .chain(self.incident_events.iter().map(|r| r.seq))
            .chain(self.reports.iter().map(|r| r.report_id))
            .chain(self.route_events.iter().map(|r| r.seq))
            .chain(self.alert_acks.iter().map(|r| r.seq))
            .chain(self.escalations.iter().map(|r| r.seq))
    }

    pub fn first_seq(&self) -> Option<i64> {
        self.seqs().min()
    }

    pub fn last_seq(&self) -> Option<i64> {
        self.seqs().max()
    }
}

/// A batch numbered at or below what is committed would take numbers already taken.
pub(crate) fn check_numbers(b: &Batch<'_>, committed: i64) -> Result<(), StoreError> {
    match b.first_seq() {
        Some(first) if first <= committed => Err(StoreError::SeqConflict { committed, first }),
        _ => Ok(()),
    }
}

/// The last row of each plan in a batch: a plan pushed and then acknowledged in the
/// same commit is written once, as it ended.
pub(crate) fn fold_plans(rows: &[RoutePlanRow]) -> Vec<RoutePlanRow> {
    let mut out: Vec<RoutePlanRow> = Vec::with_capacity(rows.len());
    for r in rows {
        match out.iter_mut().find(|o| o.plan_seq == r.plan_seq) {
            Some(o) => *o = r.clone(),
            None => out.push(r.clone()),
        }
    }
    out
}

/// Inserts every table of a batch in a group commit's transaction `$tx`, each with one
/// call of the backend's `$insert(connection, rows)`. Repeated keys are folded first to
/// what applying the rows one after the other would leave, because PostgreSQL refuses
/// to update one row twice in a statement; SQLite's row-by-row upsert ends the same
/// either way. (A macro rather than a function generic over the backend: a generic
/// async function here makes the commit's future lose `Send` in spawned tasks.)
macro_rules! insert_batch {
    ($insert:ident, $tx:ident, $b:expr) => {{
        let b: &$crate::batch::Batch<'_> = $b;
        $insert(&mut $tx, b.positions.iter()).await?;
        $insert(&mut $tx, $crate::batch::last_per_device(b.states).into_iter()).await?;
        $insert(&mut $tx, b.camera_events.iter()).await?;
        $insert(&mut $tx, b.alerts.iter()).await?;
        $insert(&mut $tx, b.audit.iter()).await?;
        $insert(&mut $tx, $crate::batch::fold_incidents(b.incidents).iter()).await?;
        $insert(&mut $tx, b.incident_events.iter()).await?;
        $insert(&mut $tx, b.reports.iter()).await?;
        $insert(&mut $tx, $crate::batch::open_cases(b).iter()).await?;
        $insert(&mut $tx, $crate::batch::fold_plans(b.route_plans).iter()).await?;
        $insert(&mut $tx, b.route_events.iter()).await?;
        $insert(&mut $tx, b.alert_acks.iter()).await?;
        $insert(&mut $tx, b.escalations.iter()).await?;
        $insert(&mut $tx, b.case_overdue.iter()).await?;
        $insert(&mut $tx, b.dispute_links.iter()).await?;
        $insert(&mut $tx, b.parking_records.iter()).await?;
        $insert(&mut $tx, $crate::batch::last_per_camera(b.camera_status).into_iter()).await?;
    }};
}

pub(crate) use insert_batch;

/// The mediation cases a batch opens: each dispute's, numbered as the report, and those
/// registered through the sequencer.
pub(crate) fn open_cases(b: &Batch<'_>) -> Vec<MediationCase> {
    let disputes = b.reports.iter().filter(|r| r.category == "dispute").map(MediationCase::of_report);
    disputes.chain(b.cases.iter().cloned()).collect()
}

/// The last status of each camera in the batch, in order of first appearance: a camera
/// that pushes twice in one commit is one row (PostgreSQL refuses to update a row twice
/// in one statement).
pub(crate) fn last_per_camera(rows: &[CameraStatusRow]) -> Vec<&CameraStatusRow> {
    let mut out: Vec<&CameraStatusRow> = Vec::with_capacity(rows.len());
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for r in rows {
        match at.get(r.camera_id.as_str()) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(&r.camera_id, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// The last state of each device in the batch, in order of first appearance.
pub(crate) fn last_per_device(states: &[DeviceStateRow]) -> Vec<&DeviceStateRow> {
    let mut out: Vec<&DeviceStateRow> = Vec::with_capacity(states.len());
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(states.len());
    for s in states {
        match at.get(s.device_id.as_str()) {
            Some(&i) => out[i] = s,
            None => {
                at.insert(&s.device_id, out.len());
                out.push(s);
            }
        }
    }
    out
}

/// One row per incident, as a row-by-row upsert would leave it: the first row of an
/// incident gives what an update never changes (title, place, kind, creation), the last
/// one what it does (state, assignment, escalation). An incident created and
/// dispatched within one group commit appears twice.
pub(crate) fn fold_incidents(rows: &[IncidentRow]) -> Vec<IncidentRow> {
    let mut out: Vec<IncidentRow> = Vec::with_capacity(rows.len());
    let mut at: HashMap<i64, usize> = HashMap::with_capacity(rows.len());
    for r in rows {
        match at.get(&r.incident_id) {
            Some(&i) => {
                let kept = &mut out[i];
                kept.state = r.state;
                kept.assigned_device.clone_from(&r.assigned_device);
                kept.assigned_unit.clone_from(&r.assigned_unit);
                kept.state_since_ms = r.state_since_ms;
                kept.escalation.clone_from(&r.escalation);
            }
            None => {
                at.insert(r.incident_id, out.len());
                out.push(r.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::IncidentState;

    fn row(id: i64, state: &str, title: &str, since_ms: i64) -> IncidentRow {
        IncidentRow {
            incident_id: id,
            title: title.into(),
            priority: 2,
            state: IncidentState::parse(state).expect("a state name"),
            lon: 107.2,
            lat: 30.7,
            alert_seq: None,
            assigned_device: (state != "new").then(|| "866123".into()),
            assigned_unit: None,
            created_ms: 1,
            state_since_ms: since_ms,
            escalation: "none".into(),
            kind: "other".into(),
            township: None,
        }
    }

    #[test]
    fn repeated_incidents_keep_the_first_description_and_the_last_state() {
        let folded = fold_incidents(&[
            row(5, "new", "first title", 1),
            row(6, "new", "other", 1),
            row(5, "dispatched", "a later title is not an update", 2),
        ]);
        assert_eq!(folded.len(), 2);
        assert_eq!(folded[0].incident_id, 5);
        assert_eq!(folded[0].title, "first title");
        assert_eq!(folded[0].state, IncidentState::Dispatched);
        assert_eq!(folded[0].assigned_device.as_deref(), Some("866123"));
        assert_eq!(folded[0].state_since_ms, 2);
        assert_eq!(folded[1].incident_id, 6);
    }
}
