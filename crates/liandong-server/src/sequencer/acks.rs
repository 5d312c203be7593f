//! The rule on an operator's acknowledgement of an alert: it is numbered, stored and
//! published to the roles the alert was for, carrying the alert's rule and priority.

use std::sync::Arc;

use liandong_store::AlertAckRow;

use super::draft::Draft;
use super::AlertAckCommand;
use crate::live::FeedEvent;

/// Adds the acknowledgement to the draft; returns it as it will be stored.
pub(super) fn alert_ack(draft: &mut Draft, cmd: &AlertAckCommand) -> AlertAckRow {
    let seq = draft.number();
    let a = &cmd.alert;
    let payload = serde_json::json!({
        "type": "alert_ack",
        "seq": seq,
        "data": {
            "alert_seq": a.seq, "rule": a.rule, "priority": a.priority, "by": cmd.actor,
            "at": crate::time_fmt::rfc3339_ms(cmd.now_ms), "note": cmd.note,
        },
    })
    .to_string();
    let row = AlertAckRow {
        seq,
        alert_seq: a.seq,
        actor: cmd.actor.clone(),
        at_ms: cmd.now_ms,
        note: cmd.note.clone(),
        lon: a.lon,
        lat: a.lat,
        roles: a.roles.clone(),
        payload: payload.clone(),
    };
    let roles: Arc<[String]> = row.roles.clone().into();
    draft.publish(FeedEvent::alert(row.seq, row.lon, row.lat, roles, Arc::from(payload)));
    draft.rows.alert_acks.push(row.clone());
    row
}
