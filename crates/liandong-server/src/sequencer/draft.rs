//! The batch a commit prepares: the next sequence number, the rows the rules decided to
//! write, the messages to publish once they are written, and the sequencer's state as it
//! will be after the commit. Rules add to a draft; only a commit that returns makes it
//! real, so a failed commit drops the draft and nothing of it was seen.

use std::collections::HashMap;
use std::sync::Arc;

use liandong_core::enrich::EnrichmentView;
use liandong_core::{Enricher, Position};
use liandong_store::CameraStatusRow;
use liandong_store::{
    AlertAckRow, AlertRow, AuditEntry, Batch, CameraEventRow, CaseOverdueRow, DeviceStateRow, DisputeLinkRow,
    EscalationRow, GridReport, IncidentEventRow, IncidentRow, MediationCase, PositionRow, RouteEventRow, RoutePlanRow,
};

use serde_json::value::RawValue;

use super::{Ack, DeviceLive};
use crate::feed::messages::{Alert, AlertDetail};
use crate::feed::{FeedEvent, FeedMessage};
use crate::hashing::FastMap;

/// A batch being prepared.
pub(super) struct Draft {
    enricher: Arc<Enricher>,
    /// The number the next row takes.
    next_seq: i64,
    /// What the commit writes.
    pub rows: Rows,
    /// The sequencer's state once the commit returns.
    pub after: After,
    /// What to publish after the commit, in sequence order.
    publish: Vec<Publish>,
    /// The acknowledgements of the fixes a report of the batch may repeat: those the
    /// store holds (looked up before the rules run) and those the batch keeps.
    pub fixes: KeptFixes,
    /// The statuses of the cameras an offline check in the batch names, as committed
    /// when the write lock was taken, then as the batch leaves them (see `liveness`).
    pub cameras_now: HashMap<String, CameraStatusRow>,
}

/// Acknowledgements of kept fixes by their idempotency key, (device, fix time).
#[derive(Default)]
pub(super) struct KeptFixes(FastMap<String, FastMap<i64, Ack>>);

impl KeptFixes {
    /// The acknowledgement of the fix kept at `fix_ms` for `device_id`, if one is.
    pub fn get(&self, device_id: &str, fix_ms: i64) -> Option<Ack> {
        self.0.get(device_id)?.get(&fix_ms).copied()
    }

    /// Records the fix kept at a key; the first recorded stays (the original report).
    pub fn keep(&mut self, device_id: &str, fix_ms: i64, ack: Ack) {
        // Looked up by reference first: a device already here costs no new key.
        match self.0.get_mut(device_id) {
            Some(times) => {
                times.entry(fix_ms).or_insert(ack);
            }
            None => {
                self.0.insert(device_id.to_owned(), FastMap::from_iter([(fix_ms, ack)]));
            }
        }
    }
}

/// The rows a batch writes, one list per table.
#[derive(Default)]
pub(super) struct Rows {
    pub positions: Vec<PositionRow>,
    pub camera_events: Vec<CameraEventRow>,
    pub alerts: Vec<AlertRow>,
    pub audit: Vec<AuditEntry>,
    pub incidents: Vec<IncidentRow>,
    pub incident_events: Vec<IncidentEventRow>,
    pub reports: Vec<GridReport>,
    pub route_plans: Vec<RoutePlanRow>,
    pub route_events: Vec<RouteEventRow>,
    pub alert_acks: Vec<AlertAckRow>,
    pub escalations: Vec<EscalationRow>,
    pub cases: Vec<MediationCase>,
    pub case_overdue: Vec<CaseOverdueRow>,
    pub dispute_links: Vec<DisputeLinkRow>,
    pub parking_records: Vec<liandong_store::ParkingRecordRow>,
    pub camera_status: Vec<CameraStatusRow>,
}

/// What the sequencer's state becomes once the batch is committed: work on copies, so
/// that a failed commit leaves memory as the store is.
#[derive(Default)]
pub(super) struct After {
    /// Copies of the devices the batch's reports touched.
    pub tracks: FastMap<String, DeviceLive>,
    /// Index in the position rows of each device's newest in-order report.
    pub newest: FastMap<String, usize>,
    /// The unit of each position row, by index.
    pub position_units: Vec<Option<Arc<str>>>,
    /// The feed's JSON of each position row, by index.
    pub position_jsons: Vec<Arc<RawValue>>,
    /// Open incidents (closed ones are dropped once committed).
    pub incidents: HashMap<i64, IncidentRow>,
    /// Each team's newest route plan version.
    pub route_heads: HashMap<String, RoutePlanRow>,
    /// Teams learnt from the reports of devices registered after start-up.
    pub units: FastMap<String, Arc<str>>,
    /// Escalation notices (see `escalations`).
    pub notices: super::escalations::Notices,
}

/// Something committed in this batch, to publish once the commit returns.
pub(super) enum Publish {
    /// Index into the batch's position rows (their message is built after the commit).
    Position(usize),
    Event(FeedEvent),
}

/// An alert a rule decided on; [`Draft::raise`] adds its number, place and the fields
/// every alert carries.
pub(super) struct NewAlert<'a> {
    pub rule: &'static str,
    pub priority: i64,
    pub position: Position,
    pub time_ms: i64,
    pub camera_id: Option<String>,
    pub event_seq: Option<i64>,
    pub roles: Vec<String>,
    /// The rule's own fields.
    pub detail: AlertDetail<'a>,
}

impl<'a> NewAlert<'a> {
    /// An alert for operators only, of no camera: most rules' shape.
    pub fn for_operators(
        rule: &'static str,
        priority: i64,
        position: Position,
        time_ms: i64,
        detail: AlertDetail<'a>,
    ) -> NewAlert<'a> {
        NewAlert {
            rule,
            priority,
            position,
            time_ms,
            camera_id: None,
            event_seq: None,
            roles: vec!["operator".to_owned()],
            detail,
        }
    }
}

impl Draft {
    /// An empty draft numbering from `next_seq`, starting from the committed open
    /// incidents and route plan heads.
    pub fn new(
        enricher: Arc<Enricher>,
        next_seq: i64,
        incidents: HashMap<i64, IncidentRow>,
        route_heads: HashMap<String, RoutePlanRow>,
    ) -> Draft {
        Draft {
            enricher,
            next_seq,
            rows: Rows::default(),
            after: After { incidents, route_heads, ..After::default() },
            publish: Vec::new(),
            fixes: KeptFixes::default(),
            cameras_now: HashMap::new(),
        }
    }

    /// The number the next row will take, without taking it.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// Takes the next sequence number.
    pub fn number(&mut self) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Queues a feed message for after the commit.
    pub fn publish(&mut self, event: FeedEvent) {
        self.publish.push(Publish::Event(event));
    }

    /// Adds a report's row (numbered by [`Draft::next_seq`]) and queues its message.
    pub fn position(&mut self, row: PositionRow, unit: Option<Arc<str>>, json: Arc<RawValue>) {
        debug_assert_eq!(row.seq, self.next_seq, "a report takes the next number");
        self.next_seq += 1;
        self.publish.push(Publish::Position(self.rows.positions.len()));
        self.rows.positions.push(row);
        self.after.position_units.push(unit);
        self.after.position_jsons.push(json);
    }

    /// Where a place is: township, grid, post, nearest posts.
    pub fn place(&self, position: Position) -> EnrichmentView<'_> {
        self.enricher.view(&self.enricher.enrich(position), &[], &[])
    }

    /// Numbers an alert, adds its place (township, grid, post, nearest posts) and the
    /// fields every alert carries, and queues it for the commit and the feed.
    pub fn raise(&mut self, a: NewAlert<'_>) -> i64 {
        let alert_seq = self.number();
        let place = self.place(a.position);
        let township = place.township.map(|t| t.name.to_owned());
        let (lon, lat) = (a.position.lon(), a.position.lat());
        let data = Alert {
            seq: alert_seq,
            rule: a.rule,
            priority: a.priority,
            time: crate::time_fmt::rfc3339_ms(a.time_ms),
            lon,
            lat,
            place,
            detail: a.detail,
        };
        let message = FeedMessage::Alert { seq: alert_seq, data: Box::new(data) }.to_json();
        let roles: Arc<[String]> = a.roles.clone().into();
        self.rows.alerts.push(AlertRow {
            seq: alert_seq,
            rule: a.rule.into(),
            priority: a.priority,
            camera_id: a.camera_id,
            event_seq: a.event_seq,
            time_ms: a.time_ms,
            lon,
            lat,
            roles: a.roles,
            payload: message.clone(),
            township,
        });
        self.publish(FeedEvent::alert(alert_seq, lon, lat, roles, Arc::from(message)));
        alert_seq
    }

    /// The draft's parts: the number after its last row, its rows, the state after it,
    /// and what to publish.
    pub fn into_parts(self) -> (i64, Rows, After, Vec<Publish>) {
        (self.next_seq, self.rows, self.after, self.publish)
    }
}

impl Rows {
    /// The batch to write, with the device states the reports leave.
    pub fn batch<'a>(&'a self, states: &'a [DeviceStateRow]) -> Batch<'a> {
        Batch {
            positions: &self.positions,
            states,
            camera_events: &self.camera_events,
            alerts: &self.alerts,
            audit: &self.audit,
            incidents: &self.incidents,
            incident_events: &self.incident_events,
            reports: &self.reports,
            route_plans: &self.route_plans,
            route_events: &self.route_events,
            alert_acks: &self.alert_acks,
            escalations: &self.escalations,
            cases: &self.cases,
            case_overdue: &self.case_overdue,
            dispute_links: &self.dispute_links,
            parking_records: &self.parking_records,
            camera_status: &self.camera_status,
        }
    }

    /// Whether the batch writes nothing (an escalation tick with nothing due).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
            && self.camera_events.is_empty()
            && self.alerts.is_empty()
            && self.audit.is_empty()
            && self.incidents.is_empty()
            && self.incident_events.is_empty()
            && self.reports.is_empty()
            && self.route_plans.is_empty()
            && self.route_events.is_empty()
            && self.alert_acks.is_empty()
            && self.escalations.is_empty()
            && self.cases.is_empty()
            && self.case_overdue.is_empty()
            && self.dispute_links.is_empty()
            && self.parking_records.is_empty()
            && self.camera_status.is_empty()
    }
}
