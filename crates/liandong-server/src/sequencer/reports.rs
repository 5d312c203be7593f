//! The rule on a grid member's report: it goes on the live feed as an alert for those
//! who review it (and, for a dispute, the mediation centre's partners), and its id is
//! that alert's number (a dispute's mediation case has the same id).

use liandong_core::Position;
use liandong_store::GridReport;

use super::draft::{Draft, NewAlert};

/// Adds the report and its alert to the draft; returns the report's id.
pub(super) fn report(draft: &mut Draft, r: &GridReport, position: Position) -> i64 {
    let (priority, mut roles) = match r.category.as_str() {
        "fire" => (1, vec!["operator".to_owned()]),
        "dispute" => (3, vec!["operator".to_owned(), "partner".to_owned()]),
        "other" => (4, vec!["operator".to_owned()]),
        _ => (3, vec!["operator".to_owned()]),
    };
    roles.push("admin".to_owned());
    let id = draft.next_seq();
    let fields = serde_json::json!({
        "report": {"report_id": id, "category": r.category, "text": r.text, "reporter": r.reporter,
                   "reported": crate::time_fmt::rfc3339_ms(r.time_ms), "photos": r.photo_urls,
                   "mediation_case_id": (r.category == "dispute").then_some(id)},
    });
    let alert =
        NewAlert { roles, ..NewAlert::for_operators("grid_report", priority, position, r.recv_ms).with_fields(fields) };
    let id = draft.raise(alert);
    draft.rows.reports.push(GridReport { report_id: id, ..r.clone() });
    id
}
