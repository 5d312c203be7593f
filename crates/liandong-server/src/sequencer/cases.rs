//! The rules of the joint mediation centre's cases that go through the sequencer: a
//! case registered (a walk-in, an incident sent to mediation) is numbered as its
//! `mediation_case` alert, so that case ids stay unique across sources (a grid report's
//! case is numbered as the report) and the case commits with its alert; a late step
//! raises `mediation_overdue` once, marked in the same commit; a criminal incident that
//! touched disputes raises `dispute_turned_criminal` with its links.

use liandong_core::Position;
use liandong_store::{CaseOverdueRow, DisputeLinkRow, MediationCase};

use super::draft::{Draft, NewAlert};
use crate::feed::messages::{
    AlertDetail, LinkedCase, MediationCaseFields, MediationOverdueFields, TurnedCriminalFields,
};

/// A mediation command, decided in sequence with everything else.
#[derive(Debug, Clone)]
pub enum CaseCommand {
    /// A new case (its `case_id` is ignored: it takes its alert's number).
    Register { case: Box<MediationCase>, position: Position },
    /// A step of a case past its time limit (`accept`, `resolve`, `follow_up`).
    Overdue { case: Box<MediationCase>, step: String, due_ms: i64, position: Position, now_ms: i64 },
    /// A criminal incident that touched disputes: `(case_id, reason)` per case.
    TurnedCriminal { incident_id: i64, kind: String, links: Vec<(i64, String)>, position: Position, now_ms: i64 },
}

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|r| (*r).to_owned()).collect()
}

/// Applies a mediation command; answers the number it took (the case's id, or the alert's).
pub(super) fn case_command(draft: &mut Draft, cmd: &CaseCommand) -> i64 {
    match cmd {
        CaseCommand::Register { case, position } => register(draft, case, *position),
        CaseCommand::Overdue { case, step, due_ms, position, now_ms } => {
            let overdue = MediationOverdueFields {
                case_id: case.case_id,
                step,
                due: crate::time_fmt::rfc3339_ms(*due_ms),
                status: &case.status,
                dispute_type: &case.dispute_type,
            };
            let detail = AlertDetail::MediationOverdue { overdue };
            let alert = NewAlert {
                roles: roles(&["partner", "operator", "admin"]),
                ..NewAlert::for_operators("mediation_overdue", 2, *position, *now_ms, detail)
            };
            let alert_seq = draft.raise(alert);
            let mark = CaseOverdueRow { case_id: case.case_id, step: step.clone(), alert_seq, due_ms: *due_ms };
            draft.rows.case_overdue.push(mark);
            alert_seq
        }
        CaseCommand::TurnedCriminal { incident_id, kind, links, position, now_ms } => {
            let cases = links.iter().map(|(case_id, reason)| LinkedCase { case_id: *case_id, reason }).collect();
            let turned = TurnedCriminalFields { incident_id: *incident_id, kind, cases };
            let detail = AlertDetail::DisputeTurnedCriminal { turned };
            let alert = NewAlert {
                roles: roles(&["operator", "partner", "admin"]),
                ..NewAlert::for_operators("dispute_turned_criminal", 1, *position, *now_ms, detail)
            };
            let alert_seq = draft.raise(alert);
            for (case_id, reason) in links {
                draft.rows.dispute_links.push(DisputeLinkRow {
                    incident_id: *incident_id,
                    case_id: *case_id,
                    reason: reason.clone(),
                    alert_seq,
                    linked_ms: *now_ms,
                });
            }
            alert_seq
        }
    }
}

/// Adds the case and its alert to the draft; the case's id is the alert's number.
fn register(draft: &mut Draft, case: &MediationCase, position: Position) -> i64 {
    let case_id = draft.next_seq();
    let fields = MediationCaseFields {
        case_id,
        source: &case.source,
        incident_id: case.incident_id,
        dispute_type: &case.dispute_type,
        summary: &case.summary,
        filed_by: &case.filed_by,
    };
    let detail = AlertDetail::MediationCase { case: fields };
    let alert = NewAlert {
        roles: roles(&["partner", "admin"]),
        ..NewAlert::for_operators("mediation_case", 3, position, case.opened_ms, detail)
    };
    let seq = draft.raise(alert);
    debug_assert_eq!(seq, case_id, "the case is numbered as its alert");
    draft.rows.cases.push(MediationCase { case_id: seq, ..case.clone() });
    seq
}
