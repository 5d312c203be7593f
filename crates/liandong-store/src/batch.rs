//! What one group commit writes, and the rules both backends apply to it before writing.

use crate::rows::{
    AlertAckRow, AlertRow, AuditEntry, CameraEventRow, DeviceStateRow, GridReport, IncidentEventRow, IncidentRow,
    PositionRow, RouteEventRow, RoutePlanRow,
};
use crate::StoreError;

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
