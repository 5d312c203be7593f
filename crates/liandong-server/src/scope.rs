//! Who may see what: the one place that decides whether a caller's role may read an
//! alert, a tagged person or a tagged person's phone, and how such reads are audited.
//!
//! A tagged person's record names the roles entitled to them (`roles`); their alerts
//! carry the same list, and their phone's positions follow it everywhere (lists, history,
//! the live feed, snapshots and replays). Administrators see everything, as they maintain
//! the records; every read of a tagged person's data is audited, administrators' too.
//! A caller who may not see something is answered as if it did not exist.

use liandong_store::{AlertRow, AuditEntry};

use crate::auth::Role;
pub use crate::role::role_entitled;

/// Watch-list ids of tagged persons: `tagged-{person_id}`. Who may see such an entry
/// and its hits is decided here; the sequencer and the watch-list API name entries by it.
pub const TAGGED_WATCH_PREFIX: &str = "tagged-";

/// Whether `role` may see an alert meant for `roles`.
pub fn sees_alert(role: Role, roles: &[String]) -> bool {
    role_entitled(role.as_str(), roles)
}

/// The tagged person an alert is about, if any: a `tagged_zone` alert, or a watch-list
/// hit on a tagged person's entry. Reads of such alerts are audited.
pub fn tagged_subject(a: &AlertRow) -> Option<String> {
    if a.rule != "tagged_zone" && a.rule != "watchlist_person" {
        return None;
    }
    let message: serde_json::Value = serde_json::from_str(&a.payload).ok()?;
    let data = message.get("data")?;
    let watched = data
        .pointer("/watch/id")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|id| id.starts_with(TAGGED_WATCH_PREFIX));
    if a.rule == "tagged_zone" {
        if let Some(p) = data.pointer("/person/person_id").and_then(serde_json::Value::as_str) {
            return Some(p.to_owned());
        }
    }
    if a.rule == "tagged_zone" || watched {
        return data.pointer("/read/value").and_then(serde_json::Value::as_str).map(str::to_owned);
    }
    None
}

/// Whether `user` may see a device's positions, given the tagged person's phone it is
/// (if it is one), for the lists and history: `None` when hidden; otherwise the audit
/// entry of the read, which there is only for a tagged person's phone. A phone is seen
/// by the roles on the person's record; any other device by the whole-county roles, not
/// by partners, who see only the phones entitled to them. `what` says what was read.
pub fn position_read(
    user: &crate::auth::User,
    phone: Option<&crate::zones::TaggedPhone>,
    what: impl FnOnce() -> String,
    now_ms: i64,
) -> Option<Option<AuditEntry>> {
    let role = user.role.as_str();
    match phone {
        Some(p) if role_entitled(role, &p.roles) => {
            Some(Some(read_entry(&user.name, role, "tagged_person_position_read", &p.person_id, &what(), now_ms)))
        }
        Some(_) => None,
        None => (user.role != Role::Partner).then_some(None),
    }
}

/// An audit entry for a read of a tagged person's data by `actor` (a user's name).
pub fn read_entry(actor: &str, role: &str, action: &str, subject: &str, what: &str, now_ms: i64) -> AuditEntry {
    AuditEntry {
        at_ms: now_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail: format!("role {role}: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(rule: &str, data: serde_json::Value) -> AlertRow {
        AlertRow {
            seq: 7,
            rule: rule.into(),
            priority: 2,
            camera_id: None,
            event_seq: None,
            time_ms: 0,
            lon: 107.2,
            lat: 30.7,
            roles: vec!["partner".into()],
            payload: serde_json::json!({"type": "alert", "seq": 7, "data": data}).to_string(),
            township: None,
        }
    }

    #[test]
    fn roles_and_administrators() {
        let partner_only = vec!["partner".to_owned()];
        assert!(sees_alert(Role::Partner, &partner_only));
        assert!(sees_alert(Role::Admin, &partner_only), "administrators maintain the records");
        for r in [Role::Operator, Role::PatrolLeader, Role::PostOfficer, Role::GridMember, Role::Device] {
            assert!(!sees_alert(r, &partner_only), "{r:?}");
        }
        assert!(!role_entitled("operator", &[]));
    }

    #[test]
    fn the_subject_of_an_alert_about_a_tagged_person() {
        let rows = [
            (alert("tagged_zone", serde_json::json!({"person": {"person_id": "p1"}})), Some("p1")),
            (
                alert(
                    "watchlist_person",
                    serde_json::json!({"watch": {"id": "tagged-p2"}, "read": {"kind": "person", "value": "p2"}}),
                ),
                Some("p2"),
            ),
            (
                alert(
                    "watchlist_person",
                    serde_json::json!({"watch": {"id": "w-9"}, "read": {"kind": "person", "value": "x"}}),
                ),
                None,
            ),
            (alert("watchlist_plate", serde_json::json!({"watch": {"id": "tagged-p3"}})), None),
            (alert("stale_unit", serde_json::json!({})), None),
        ];
        for (a, want) in rows {
            assert_eq!(tagged_subject(&a).as_deref(), want, "{}", a.payload);
        }
    }
}
