//! The roles a user can hold: the lowest layer's vocabulary, named in the config, in
//! alerts' visibility lists and in every scope decision.

use serde::{Deserialize, Serialize};

/// What a user may do and see, from the token in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    PatrolLeader,
    PostOfficer,
    GridMember,
    Partner,
    Device,
    /// A metrics scraper's service account: reads `/metrics` and nothing else.
    Metrics,
}

impl Role {
    /// The role's name as in the config and in alerts' visibility lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::PatrolLeader => "patrol_leader",
            Role::PostOfficer => "post_officer",
            Role::GridMember => "grid_member",
            Role::Partner => "partner",
            Role::Device => "device",
            Role::Metrics => "metrics",
        }
    }
}

/// Whether a role (by its name, as in records and alerts) is among `roles`, or is an
/// administrator's.
pub fn role_entitled(role: &str, roles: &[String]) -> bool {
    role == Role::Admin.as_str() || roles.iter().any(|r| r == role)
}

/// The roles told of a tagged person's alerts and phone positions (the live feed, the
/// history, images): the roles on the record less post officers. A post officer reads
/// only the persons of their own post's jurisdiction (`scope::sees_tagged`), which an
/// alert's list of roles cannot say; the record and its sanctions they read over HTTP.
pub fn live_roles(record_roles: &[String]) -> Vec<String> {
    record_roles.iter().filter(|r| *r != Role::PostOfficer.as_str()).cloned().collect()
}
