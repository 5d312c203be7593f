//! Shift handover sheets (交接班): what an outgoing person hands to the incoming one at
//! the end of a shift, prepared by the server from the store at preparation time.
//!
//! [`build_sheet`] is a pure function of the rows read and of the unit's extent, so
//! that what a sheet lists is tested without a server; [`prepare`] reads the rows,
//! builds the sheet and stores it with its audit entry. The duty roster calls
//! [`prepare`] at shift ends with the unit, the shift and the two persons.

use std::collections::HashSet;

use liandong_core::position::Position;
use liandong_store::{AlertRow, AuditEntry, Bbox, EscalationRow, HandoverRow, IncidentRow, RoutePlanRow};
use serde::Serialize;

use crate::error::ApiError;
use crate::role::Role;
use crate::scope::sees_alert;
use crate::time_fmt::now_ms;
use crate::travel::route_team;
use crate::AppState;

/// The most items a section of a sheet lists; the rest are counted in its `more`, so
/// that a printed sheet stays a few pages however busy the shift was.
pub const SECTION_CAP: usize = 50;

/// The most rows of one kind (alerts, incidents opened, incidents ended) a preparation
/// reads for a shift. A shift with more says so (`read_limit_reached`).
const READ_LIMIT: u32 = 5_000;

/// What a handover is for: the whole county's command centre, or one post with its
/// jurisdiction and its patrol teams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    CommandCentre,
    Post(String),
}

impl Unit {
    pub fn kind(&self) -> &'static str {
        match self {
            Unit::CommandCentre => "command_centre",
            Unit::Post(_) => "post",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Unit::CommandCentre => None,
            Unit::Post(id) => Some(id),
        }
    }
}

/// A shift to hand over: the unit, its time range and the two persons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub unit: Unit,
    pub from_ms: i64,
    pub to_ms: i64,
    pub outgoing_person_id: String,
    pub incoming_person_id: String,
}

/// What the store held at preparation time, as read for a sheet.
#[derive(Debug, Clone, Default)]
pub struct SheetRows {
    /// Incidents neither closed nor cancelled.
    pub open: Vec<IncidentRow>,
    /// Alerts raised during the shift, newest first.
    pub alerts: Vec<AlertRow>,
    /// The numbers of those alerts that someone acknowledged.
    pub acked: HashSet<i64>,
    /// The newest version of every team's route plan.
    pub plans: Vec<RoutePlanRow>,
    /// Incidents created during the shift.
    pub opened: Vec<IncidentRow>,
    /// Incidents closed or cancelled during the shift.
    pub ended: Vec<IncidentRow>,
    /// Escalation notices nobody has acknowledged yet (their `notify` events).
    pub escalations: Vec<EscalationRow>,
    /// Whether a read stopped at its limit, so the sheet may miss older rows.
    pub read_limit_reached: bool,
}

/// The extent of a unit, for [`build_sheet`]: the role whose view of alerts the sheet
/// takes, which places are the unit's, and which units (patrol teams, the post itself)
/// belong to it. The command centre's is the whole county.
pub struct Extent<'a> {
    pub role: Role,
    pub place: &'a dyn Fn(f64, f64) -> bool,
    /// The units assigned work counts for, besides places; None for every unit.
    pub units: Option<HashSet<String>>,
}

impl Extent<'_> {
    fn has_unit(&self, unit: Option<&str>) -> bool {
        match (&self.units, unit) {
            (None, _) => true,
            (Some(units), Some(u)) => units.contains(u),
            (Some(_), None) => false,
        }
    }

    fn has_incident(&self, i: &IncidentRow) -> bool {
        (self.place)(i.lon, i.lat) || (self.units.is_some() && self.has_unit(i.assigned_unit.as_deref()))
    }
}

/// At most [`SECTION_CAP`] items and how many more there were.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section<T> {
    pub items: Vec<T>,
    pub more: usize,
}

impl<T> Section<T> {
    fn of(mut all: Vec<T>) -> Section<T> {
        let more = all.len().saturating_sub(SECTION_CAP);
        all.truncate(SECTION_CAP);
        Section { items: all, more }
    }
}

/// An incident as a sheet lists it: its state and since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentItem {
    pub incident_id: i64,
    pub title: String,
    pub kind: String,
    pub priority: i64,
    pub state: String,
    pub since_ms: i64,
    pub created_ms: i64,
    pub assigned_unit: Option<String>,
    pub township: Option<String>,
    /// `none`, `post_leader` or `command_centre`.
    pub escalation: String,
}

impl From<&IncidentRow> for IncidentItem {
    fn from(i: &IncidentRow) -> Self {
        IncidentItem {
            incident_id: i.incident_id,
            title: i.title.clone(),
            kind: i.kind.clone(),
            priority: i.priority,
            state: i.state.as_str().to_owned(),
            since_ms: i.state_since_ms,
            created_ms: i.created_ms,
            assigned_unit: i.assigned_unit.clone(),
            township: i.township.clone(),
            escalation: i.escalation.clone(),
        }
    }
}

/// An alert as a sheet lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertItem {
    pub seq: i64,
    pub rule: String,
    pub priority: i64,
    pub time_ms: i64,
    pub township: Option<String>,
}

impl From<&AlertRow> for AlertItem {
    fn from(a: &AlertRow) -> Self {
        AlertItem {
            seq: a.seq,
            rule: a.rule.clone(),
            priority: a.priority,
            time_ms: a.time_ms,
            township: a.township.clone(),
        }
    }
}

/// A route plan its team has not acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanItem {
    pub plan_seq: i64,
    pub team_id: String,
    /// The team's name in the map (its route's `team_name`), when it has one.
    pub team_name: Option<String>,
    pub version: i64,
    pub kind: String,
    pub created_ms: i64,
    pub escalation: String,
}

/// An escalation notice nobody acknowledged: the person it reached (None when nobody
/// was on duty) still owes an answer, or the incident its next step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationItem {
    pub escalation_id: i64,
    pub incident_id: i64,
    /// `post_leader` or `command_centre`.
    pub level: String,
    pub person_id: Option<String>,
    pub at_ms: i64,
}

/// A notable event of the shift: an incident opened, closed or cancelled, a priority-1
/// alert or an SOS.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventItem {
    pub at_ms: i64,
    /// `incident_opened`, `incident_closed`, `incident_cancelled`, `priority1_alert` or `sos`.
    pub event: &'static str,
    /// The incident's number or the alert's.
    pub id: i64,
    /// The incident's title or the alert's rule.
    pub what: String,
}

/// What a sheet says of itself besides its rows: names as they were when it was
/// prepared (a person renamed later is still named as they signed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SheetHead {
    /// The post's name, or the command centre's.
    pub unit_name: String,
    pub outgoing_name: String,
    pub incoming_name: String,
    pub prepared_ms: i64,
}

/// A handover sheet, as stored in `handovers.sheet` and shown on the printable page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sheet {
    pub unit_kind: &'static str,
    pub unit_id: Option<String>,
    #[serde(flatten)]
    pub head: SheetHead,
    pub from_ms: i64,
    pub to_ms: i64,
    pub open_incidents: Section<IncidentItem>,
    pub unacked_alerts: Section<AlertItem>,
    pub escalated_incidents: Section<IncidentItem>,
    pub unacked_escalations: Section<EscalationItem>,
    pub unacked_plans: Section<PlanItem>,
    pub events: Section<EventItem>,
    pub read_limit_reached: bool,
}

/// The unit's part of what the store held: its open incidents (oldest state first:
/// what waited longest leads), the alerts of the shift its role is told of and nobody
/// acknowledged, the open incidents escalated beyond their unit, its teams' plans still
/// pending, and the shift's notable events in time order.
pub fn build_sheet(rows: &SheetRows, extent: &Extent<'_>, shift: &Shift, head: SheetHead) -> Sheet {
    let mut open: Vec<&IncidentRow> = rows.open.iter().filter(|i| extent.has_incident(i)).collect();
    open.sort_by_key(|i| (i.state_since_ms, i.incident_id));
    let escalated = open.iter().filter(|i| i.escalation != "none").map(|i| IncidentItem::from(*i)).collect();
    let told = |a: &&AlertRow| sees_alert(extent.role, &a.roles) && (extent.place)(a.lon, a.lat);
    let mut alerts: Vec<&AlertRow> = rows.alerts.iter().filter(told).collect();
    alerts.sort_by_key(|a| (a.time_ms, a.seq));
    let unacked = alerts.iter().filter(|a| !rows.acked.contains(&a.seq)).map(|a| AlertItem::from(*a)).collect();
    let mut plans: Vec<PlanItem> = rows
        .plans
        .iter()
        .filter(|p| p.status == "pending" && extent.has_unit(Some(&p.team_id)))
        .map(|p| PlanItem {
            plan_seq: p.plan_seq,
            team_id: p.team_id.clone(),
            team_name: None,
            version: p.version,
            kind: p.kind.clone(),
            created_ms: p.created_ms,
            escalation: p.escalation.clone(),
        })
        .collect();
    plans.sort_by_key(|p| (p.created_ms, p.plan_seq));
    // A post's notices are those raised to its leader or about a place it holds; the
    // command centre's extent takes every one.
    let mut notices: Vec<EscalationItem> = rows
        .escalations
        .iter()
        .filter(|e| (extent.place)(e.lon, e.lat) || (extent.units.is_some() && extent.has_unit(e.unit_id.as_deref())))
        .map(|e| EscalationItem {
            escalation_id: e.escalation_id,
            incident_id: e.incident_id,
            level: e.level.clone(),
            person_id: e.person_id.clone(),
            at_ms: e.at_ms,
        })
        .collect();
    notices.sort_by_key(|n| (n.at_ms, n.escalation_id));
    let mut events = shift_events(rows, extent, &alerts);
    events.sort_by_key(|e| (e.at_ms, e.id));
    Sheet {
        unit_kind: shift.unit.kind(),
        unit_id: shift.unit.id().map(str::to_owned),
        head,
        from_ms: shift.from_ms,
        to_ms: shift.to_ms,
        open_incidents: Section::of(open.into_iter().map(IncidentItem::from).collect()),
        unacked_alerts: Section::of(unacked),
        escalated_incidents: Section::of(escalated),
        unacked_escalations: Section::of(notices),
        unacked_plans: Section::of(plans),
        events: Section::of(events),
        read_limit_reached: rows.read_limit_reached,
    }
}

/// The shift's notable events in the unit: incidents opened and ended, and, of the
/// alerts the unit is told of, SOS and the other priority-1 alerts.
fn shift_events(rows: &SheetRows, extent: &Extent<'_>, alerts: &[&AlertRow]) -> Vec<EventItem> {
    let mut events = Vec::new();
    for i in rows.opened.iter().filter(|i| extent.has_incident(i)) {
        events.push(EventItem {
            at_ms: i.created_ms,
            event: "incident_opened",
            id: i.incident_id,
            what: i.title.clone(),
        });
    }
    for i in rows.ended.iter().filter(|i| extent.has_incident(i)) {
        let event = if i.state.as_str() == "cancelled" { "incident_cancelled" } else { "incident_closed" };
        events.push(EventItem { at_ms: i.state_since_ms, event, id: i.incident_id, what: i.title.clone() });
    }
    for a in alerts.iter().filter(|a| a.rule == "sos" || a.priority == 1) {
        let event = if a.rule == "sos" { "sos" } else { "priority1_alert" };
        events.push(EventItem { at_ms: a.time_ms, event, id: a.seq, what: a.rule.clone() });
    }
    events
}

/// Reads what a sheet for `shift` needs from the store, as it is now.
async fn read_rows(s: &AppState, shift: &Shift) -> Result<SheetRows, ApiError> {
    let st = &s.store;
    let e = |e: liandong_store::StoreError| ApiError::unavailable(&e);
    let open = st.open_incidents().await.map_err(e)?;
    let alerts = st.alerts_in(Bbox::ALL, shift.from_ms, shift.to_ms, READ_LIMIT).await.map_err(e)?;
    let seqs: Vec<i64> = alerts.iter().map(|a| a.seq).collect();
    let acked = st.first_alert_acks(&seqs).await.map_err(e)?.into_iter().map(|a| a.alert_seq).collect();
    let plans = st.route_plan_heads().await.map_err(e)?;
    let opened = st.incidents_in(Bbox::ALL, shift.from_ms, shift.to_ms, READ_LIMIT).await.map_err(e)?;
    let ended = st.incidents_ended(shift.from_ms, shift.to_ms, READ_LIMIT).await.map_err(e)?;
    let escalations = st.open_escalations().await.map_err(e)?;
    let full = |n: usize| n >= READ_LIMIT as usize;
    let read_limit_reached = full(alerts.len()) || full(opened.len()) || full(ended.len());
    Ok(SheetRows { open, alerts, acked, plans, opened, ended, escalations, read_limit_reached })
}

/// The patrol teams of a post (their routes' `post_id` in the map) and the post itself.
pub fn post_units(s: &AppState, post_id: &str) -> HashSet<String> {
    let mut units: HashSet<String> = s
        .map
        .routes
        .iter()
        .filter(|r| r.properties.get("post_id").and_then(|v| v.as_str()) == Some(post_id))
        .map(|r| route_team(r).to_owned())
        .collect();
    units.insert(post_id.to_owned());
    units
}

/// A team's name from its route in the map.
fn team_name(s: &AppState, team_id: &str) -> Option<String> {
    let route = s.map.routes.iter().find(|r| route_team(r) == team_id)?;
    route.properties.get("team_name").and_then(|v| v.as_str()).map(str::to_owned)
}

/// Whether a place lies in a post's jurisdiction.
fn in_jurisdiction(s: &AppState, post_id: &str, lon: f64, lat: f64) -> bool {
    let Ok(place) = Position::new(lon, lat) else { return false };
    let e = s.enricher.enrich(place);
    s.enricher.view(&e, &[], &[]).post.is_some_and(|p| p.id == post_id)
}

/// A person's name as stored now, or their id when there is no such person.
async fn person_name(s: &AppState, id: &str) -> Result<String, ApiError> {
    let p = s.store.person(id).await.map_err(|e| ApiError::unavailable(&e))?;
    Ok(p.map_or_else(|| id.to_owned(), |p| p.name))
}

/// Prepares the sheet of `shift` from the store as it is now and stores the handover
/// with its audit entry (`actor` prepared it). The shift is taken as checked (a post of
/// the map, two persons of the unit): the API checks it, and the duty roster names
/// only its own shifts. Returns the stored handover; 409 naming `to_ms` when the unit's
/// shift (the same unit, `from_ms` and `to_ms`) has one already, so a shift end seen
/// twice makes one sheet.
pub async fn prepare(s: &AppState, shift: &Shift, actor: &str) -> Result<HandoverRow, ApiError> {
    let rows = read_rows(s, shift).await?;
    let head = SheetHead {
        unit_name: match &shift.unit {
            Unit::CommandCentre => "指挥中心".to_owned(),
            Unit::Post(post) => {
                s.map.posts.iter().find(|p| &p.id == post).map_or_else(|| post.clone(), |p| p.name.clone())
            }
        },
        outgoing_name: person_name(s, &shift.outgoing_person_id).await?,
        incoming_name: person_name(s, &shift.incoming_person_id).await?,
        prepared_ms: now_ms(),
    };
    let (prepared_ms, unit_name) = (head.prepared_ms, head.unit_name.clone());
    let whole = |_: f64, _: f64| true;
    let mut sheet = match &shift.unit {
        Unit::CommandCentre => {
            let extent = Extent { role: Role::Operator, place: &whole, units: None };
            build_sheet(&rows, &extent, shift, head)
        }
        Unit::Post(post) => {
            let place = |lon: f64, lat: f64| in_jurisdiction(s, post, lon, lat);
            let extent = Extent { role: Role::PostOfficer, place: &place, units: Some(post_units(s, post)) };
            build_sheet(&rows, &extent, shift, head)
        }
    };
    for p in &mut sheet.unacked_plans.items {
        p.team_name = team_name(s, &p.team_id);
    }
    let mut row = HandoverRow {
        handover_id: 0,
        unit_kind: shift.unit.kind().to_owned(),
        unit_id: shift.unit.id().map(str::to_owned),
        from_ms: shift.from_ms,
        to_ms: shift.to_ms,
        outgoing_person_id: shift.outgoing_person_id.clone(),
        incoming_person_id: shift.incoming_person_id.clone(),
        sheet: serde_json::to_value(&sheet).map_err(|e| ApiError::internal(&e))?,
        prepared_ms,
        signed_ms: None,
        signed_by: None,
        sign_note: None,
        accepted_ms: None,
        accepted_by: None,
        accept_note: None,
    };
    let detail = format!(
        "{unit_name}: {} -> {}, {} open incidents, {} unacknowledged alerts, {} unacknowledged plans",
        row.outgoing_person_id,
        row.incoming_person_id,
        sheet.open_incidents.items.len() + sheet.open_incidents.more,
        sheet.unacked_alerts.items.len() + sheet.unacked_alerts.more,
        sheet.unacked_plans.items.len() + sheet.unacked_plans.more,
    );
    let audit = AuditEntry {
        at_ms: prepared_ms,
        actor: actor.to_owned(),
        action: "handover_prepared".into(),
        subject: String::new(),
        detail,
    };
    let id = s.store.insert_handover(&row, &audit).await.map_err(|e| ApiError::unavailable(&e))?;
    // A shift's end may be seen twice (two instances, a repeated request): one sheet.
    row.handover_id = id.ok_or_else(|| ApiError::conflict("to_ms", "this unit's shift has a handover already"))?;
    tracing::info!(handover_id = row.handover_id, unit = %unit_name, actor, "handover prepared");
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use liandong_store::IncidentState;

    fn incident(id: i64, state: &str, lon: f64, unit: Option<&str>, escalation: &str) -> IncidentRow {
        IncidentRow {
            incident_id: id,
            title: format!("事件{id}"),
            priority: 2,
            state: IncidentState::parse(state).unwrap(),
            lon,
            lat: 30.0,
            alert_seq: None,
            assigned_device: None,
            assigned_unit: unit.map(str::to_owned),
            created_ms: 1_000 + id,
            state_since_ms: 5_000 - id,
            escalation: escalation.into(),
            kind: "dispute".into(),
            township: None,
        }
    }

    fn alert(seq: i64, rule: &str, priority: i64, lon: f64, roles: &[&str]) -> AlertRow {
        AlertRow {
            seq,
            rule: rule.into(),
            priority,
            camera_id: None,
            event_seq: None,
            time_ms: 2_000 + seq,
            lon,
            lat: 30.0,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            payload: "{}".into(),
            township: None,
        }
    }

    fn plan(seq: i64, team: &str, status: &str) -> RoutePlanRow {
        RoutePlanRow {
            plan_seq: seq,
            team_id: team.into(),
            version: 1,
            kind: "plan".into(),
            reason: String::new(),
            created_ms: 3_000 + seq,
            created_by: "planner".into(),
            plan: "{}".into(),
            lon: 107.0,
            lat: 30.0,
            status: status.into(),
            acked_ms: None,
            acked_by: None,
            escalation: "none".into(),
        }
    }

    fn notice(id: i64, incident_id: i64, level: &str, unit: Option<&str>, lon: f64) -> EscalationRow {
        EscalationRow {
            seq: id,
            escalation_id: id,
            incident_id,
            action: "notify".into(),
            level: level.into(),
            person_id: Some("lead".into()),
            unit_id: unit.map(Into::into),
            actor: "sequencer".into(),
            at_ms: 5_000 + id,
            note: String::new(),
            lon,
            lat: 30.0,
            payload: String::new(),
        }
    }

    fn shift() -> Shift {
        Shift {
            unit: Unit::Post("p-west".into()),
            from_ms: 1_000,
            to_ms: 9_000,
            outgoing_person_id: "a".into(),
            incoming_person_id: "b".into(),
        }
    }

    fn head(unit: &str) -> SheetHead {
        SheetHead {
            unit_name: unit.into(), outgoing_name: "甲".into(), incoming_name: "乙".into(), prepared_ms: 9_500
        }
    }

    /// A post's sheet: places west of 107° are its jurisdiction, `team-1` its team.
    #[test]
    fn a_post_sheet_lists_only_its_open_unacknowledged_and_pending_items() {
        let west = |lon: f64, _: f64| lon < 107.0;
        let extent = Extent {
            role: Role::PostOfficer,
            place: &west,
            units: Some(["p-west".to_owned(), "team-1".to_owned()].into()),
        };
        let rows = SheetRows {
            open: vec![
                incident(1, "dispatched", 106.5, None, "none"),
                incident(2, "new", 107.5, None, "none"),
                incident(3, "signed_for", 107.5, Some("team-1"), "post_leader"),
            ],
            alerts: vec![
                alert(10, "sos", 1, 106.5, &["operator", "post_officer"]),
                alert(11, "watchlist_plate", 2, 106.5, &["operator", "post_officer"]),
                alert(12, "tagged_zone", 1, 106.5, &["operator"]),
                alert(13, "watchlist_plate", 2, 107.5, &["operator", "post_officer"]),
            ],
            acked: [11].into(),
            plans: vec![
                plan(20, "team-1", "pending"),
                plan(21, "team-2", "pending"),
                plan(22, "team-1", "acknowledged"),
            ],
            opened: vec![incident(1, "dispatched", 106.5, None, "none"), incident(4, "new", 107.5, None, "none")],
            ended: vec![incident(5, "closed", 106.5, None, "none"), incident(6, "cancelled", 106.9, None, "none")],
            escalations: vec![
                notice(30, 3, "post_leader", Some("p-west"), 107.5),
                notice(31, 2, "command_centre", None, 107.5),
                notice(32, 1, "command_centre", None, 106.5),
            ],
            read_limit_reached: false,
        };
        let sheet = build_sheet(&rows, &extent, &shift(), head("西警务室"));
        let ids = |s: &Section<IncidentItem>| s.items.iter().map(|i| i.incident_id).collect::<Vec<_>>();
        // In its place or assigned to its team; the longest waiting first.
        assert_eq!(ids(&sheet.open_incidents), [3, 1]);
        assert_eq!(sheet.open_incidents.items[0].since_ms, 4_997, "with the time of its state");
        assert_eq!(ids(&sheet.escalated_incidents), [3]);
        // Raised to its leader, or about a place it holds; not another post's place.
        let notices: Vec<i64> = sheet.unacked_escalations.items.iter().map(|n| n.escalation_id).collect();
        assert_eq!(notices, [30, 32]);
        // Acknowledged, another post's, and one its role is not told of are left out.
        assert_eq!(sheet.unacked_alerts.items.iter().map(|a| a.seq).collect::<Vec<_>>(), [10]);
        assert_eq!(sheet.unacked_plans.items.iter().map(|p| p.plan_seq).collect::<Vec<_>>(), [20]);
        let events: Vec<(&str, i64)> = sheet.events.items.iter().map(|e| (e.event, e.id)).collect();
        assert_eq!(events, [("incident_opened", 1), ("sos", 10), ("incident_cancelled", 6), ("incident_closed", 5)]);
        assert_eq!(
            (sheet.unit_kind, sheet.unit_id.as_deref(), sheet.head.unit_name.as_str()),
            ("post", Some("p-west"), "西警务室")
        );
    }

    #[test]
    fn a_long_list_is_capped_and_says_how_many_more() {
        let all = |_: f64, _: f64| true;
        let extent = Extent { role: Role::Operator, place: &all, units: None };
        let open: Vec<IncidentRow> =
            (1..=SECTION_CAP as i64 + 7).map(|i| incident(i, "new", 107.0, None, "none")).collect();
        let rows = SheetRows { open, ..SheetRows::default() };
        let sheet = build_sheet(&rows, &extent, &shift(), head("指挥中心"));
        assert_eq!((sheet.open_incidents.items.len(), sheet.open_incidents.more), (SECTION_CAP, 7));
        assert_eq!((sheet.unacked_alerts.items.len(), sheet.unacked_alerts.more), (0, 0));
    }
}
