//! The live feed as the store keeps it: six sequenced tables whose rows, merged by
//! sequence number, are what the feed published. [`FeedTables`] chooses which of them a
//! read looks at, so that a caller who may not see alerts does not pay for reading them.

use crate::columns::{Table, Written};
use crate::rows::{AlertAckRow, AlertRow, EscalationRow, IncidentEventRow, PositionRow, RouteEventRow};

/// One event of the feed, as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedRow {
    Position(PositionRow),
    Alert(AlertRow),
    IncidentEvent(IncidentEventRow),
    RouteEvent(RouteEventRow),
    AlertAck(AlertAckRow),
    Escalation(EscalationRow),
}

impl FeedRow {
    /// The event's sequence number.
    pub fn seq(&self) -> i64 {
        match self {
            FeedRow::Position(r) => r.seq,
            FeedRow::Alert(r) => r.seq,
            FeedRow::IncidentEvent(r) => r.seq,
            FeedRow::RouteEvent(r) => r.seq,
            FeedRow::AlertAck(r) => r.seq,
            FeedRow::Escalation(r) => r.seq,
        }
    }
}

/// Which of the feed's tables a read looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedTables {
    pub positions: bool,
    pub alerts: bool,
    pub incident_events: bool,
    pub route_events: bool,
    pub alert_acks: bool,
    /// Escalations of late incident steps to the people on duty.
    pub escalations: bool,
}

impl FeedTables {
    /// Every table of the feed.
    pub const ALL: FeedTables = FeedTables {
        positions: true,
        alerts: true,
        incident_events: true,
        route_events: true,
        alert_acks: true,
        escalations: true,
    };
    /// None of them (a read of nothing answers nothing, without a query).
    pub const NONE: FeedTables = FeedTables {
        positions: false,
        alerts: false,
        incident_events: false,
        route_events: false,
        alert_acks: false,
        escalations: false,
    };

    /// The chosen tables, in a fixed order.
    pub(crate) fn tables(self) -> impl Iterator<Item = &'static Table> {
        [
            (self.positions, &PositionRow::TABLE),
            (self.alerts, &AlertRow::TABLE),
            (self.incident_events, &IncidentEventRow::TABLE),
            (self.route_events, &RouteEventRow::TABLE),
            (self.alert_acks, &AlertAckRow::TABLE),
            (self.escalations, &EscalationRow::TABLE),
        ]
        .into_iter()
        .filter_map(|(chosen, table)| chosen.then_some(table))
    }
}

impl Default for FeedTables {
    fn default() -> FeedTables {
        FeedTables::ALL
    }
}
