//! Every message the feed carries, as a typed value serialised by serde: positions,
//! alerts and their acknowledgements, incident and route changes, the hotspot notice,
//! snapshots and replays, and the replies to a client's own messages. Also the JSON of
//! the things they carry (a committed report, a route plan, a fused track) as clients
//! see them.
//!
//! The rules decide what a message says; this module decides how it is written. Alerts,
//! incident events and route events are stored as the message they were published as,
//! and replays send those stored texts again, so a field renamed here changes what
//! every reader of the store sees: the wire tests (`sequencer/wire_tests.rs` and below)
//! hold each message's fields.

use liandong_core::enrich::EnrichmentView;
use liandong_core::jump::flags;
use liandong_core::track::Track;
use liandong_ingest::isapi::CameraEvent;
use liandong_store::{IncidentRow, IncidentState, PositionRow, RoutePlanRow};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::time_fmt::rfc3339_ms;

/// A message on the feed; `type` names the variant (`position`, `alert`, ...).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedMessage<'a> {
    /// A committed report, as [`report_json`] wrote it.
    Position {
        seq: i64,
        data: &'a RawValue,
    },
    /// Boxed: an alert's place and detail are far larger than the other messages.
    Alert {
        seq: i64,
        data: Box<Alert<'a>>,
    },
    /// An operator's acknowledgement of an alert.
    AlertAck {
        seq: i64,
        data: AlertAck<'a>,
    },
    Incident {
        seq: i64,
        data: IncidentChange<'a>,
    },
    Route {
        seq: i64,
        data: RouteChange<'a>,
    },
    /// A late step's escalation to a person on duty, or that person's acknowledgement.
    Escalation {
        seq: i64,
        data: EscalationNotice<'a>,
    },
    /// A new hotspot analysis: a notice outside the sequence.
    Hotspots(HotspotsNotice<'a>),
    /// A part of the snapshot a client gets on connecting (or on changing its subscription).
    Snapshot(SnapshotPart<'a>),
    /// A part of the snapshot a client that fell behind gets instead of what it missed.
    Resync(SnapshotPart<'a>),
    /// The end of a reconnecting client's replay: everything from `since` to `seq` was sent.
    Replayed {
        since: i64,
        seq: i64,
    },
}

impl FeedMessage<'_> {
    /// The message as it goes on the socket (and, for alerts, incident and route events,
    /// into the store).
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// A value as JSON text. The feed's types hold only strings, numbers and JSON already
/// checked, which always serialise; should one not, the reader gets `null` and the log
/// says why.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "feed message not serialisable");
        "null".to_owned()
    })
}

/// The message of a position event.
pub fn position_message(seq: i64, report: &RawValue) -> String {
    FeedMessage::Position { seq, data: report }.to_json()
}

/// An alert: the fields every alert has, and its rule's own.
#[derive(Serialize)]
pub struct Alert<'a> {
    pub seq: i64,
    pub rule: &'a str,
    pub priority: i64,
    pub time: String,
    pub lon: f64,
    pub lat: f64,
    pub place: EnrichmentView<'a>,
    #[serde(flatten)]
    pub detail: AlertDetail<'a>,
}

/// What an alert's rule adds to it, one variant per family of rules. The fields are
/// written beside the common ones, as `data`'s own.
#[derive(Serialize)]
#[serde(untagged)]
pub enum AlertDetail<'a> {
    /// A watched plate or person read by a camera.
    Watch(Box<WatchHit<'a>>),
    /// A camera whose alerts come faster than a person can read them.
    StormBegins { camera: CameraView<'a>, storm: StormBegins },
    /// A camera storm that has calmed down.
    StormEnded { camera: CameraView<'a>, storm: StormEnded },
    /// A tagged person's phone inside a forbidden zone.
    TaggedZone { person: PersonRef<'a>, device_id: &'a str, zone: ZoneBreak<'a> },
    /// A patrol member's adherence to the team's plan.
    Adherence { device_id: &'a str, team_id: &'a str, plan_version: Option<i64>, adherence: Adherence },
    /// A unit not heard from for too long.
    StaleUnit { device_id: &'a str, last_heard: String, silent_min: i64 },
    /// A grid member's report.
    GridReport { report: GridReportFields<'a> },
    /// A mediation case registered (a walk-in, an incident sent to mediation).
    MediationCase { case: MediationCaseFields<'a> },
    /// A mediation case's step past its time limit.
    MediationOverdue { overdue: MediationOverdueFields<'a> },
    /// A criminal incident that touched open or recent disputes (民转刑).
    DisputeTurnedCriminal { turned: TurnedCriminalFields<'a> },
    /// A vehicle parked in a no-parking fence during its hours, as a parking camera
    /// captured it: the camera, the capture, the fence and the window it broke.
    NoParking { camera: CameraView<'a>, parking: NoParkingFields<'a> },
    /// A camera gone silent (`camera_offline`) or back (`camera_online`).
    CameraLiveness { camera: CameraView<'a>, liveness: CameraLiveness },
    /// A device's SOS button: who pressed it (the device, its registered name, its post
    /// or team), the report that carried it and that report's flags (`mock`, `jump`, …:
    /// how far its place can be trusted).
    Sos {
        device_id: &'a str,
        device_name: &'a str,
        unit_id: Option<&'a str>,
        report_seq: i64,
        flags: Vec<&'static str>,
    },
}

/// A camera's silence or return: `status` is `offline` or `online`; `last_seen` its
/// last push before the silence (offline) or the push that ended it (online);
/// `offline_since` when the silence was found; `silent_s` how long it had been silent;
/// `offline_alert_seq` (online only) the `camera_offline` alert it ends.
#[derive(Serialize)]
pub struct CameraLiveness {
    pub status: &'static str,
    pub last_seen: String,
    pub offline_since: Option<String>,
    pub silent_s: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_alert_seq: Option<i64>,
}

/// A camera as an alert names it.
#[derive(Serialize)]
pub struct CameraView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub lon: f64,
    pub lat: f64,
}

/// A watch-list hit: the camera, the read, its images, the entry it matched, the units
/// nearest, the value's track across cameras and, for a tagged person in a forbidden
/// zone, the zone.
#[derive(Serialize)]
pub struct WatchHit<'a> {
    pub camera: CameraView<'a>,
    pub read: WatchRead<'a>,
    pub images: &'a [String],
    pub watch: WatchRef<'a>,
    pub nearest_units: Vec<NearUnit<'a>>,
    pub track: TrackView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<ZoneBreak<'a>>,
}

/// The read that hit: `plate` or `person`, the value, and the camera event it came in.
#[derive(Serialize)]
pub struct WatchRead<'a> {
    pub kind: &'a str,
    pub value: &'a str,
    pub event_seq: i64,
    pub event: &'a CameraEvent,
}

/// The watch-list entry a read matched.
#[derive(Serialize)]
pub struct WatchRef<'a> {
    pub id: &'a str,
    pub reason: &'a str,
}

/// A unit free to go, with its distance in metres (to the decimetre).
#[derive(Serialize)]
pub struct NearUnit<'a> {
    pub device_id: &'a str,
    pub distance_m: f64,
}

impl<'a> NearUnit<'a> {
    pub fn new(device_id: &'a str, distance_m: f64) -> NearUnit<'a> {
        NearUnit { device_id, distance_m: round_1(distance_m) }
    }
}

/// A no-parking violation: the plate and the capture (`event_seq`, the camera event and
/// the parking record's number; its snapshots), the fence (id, name, kind, hours as the
/// map writes them) and the window in force (China-time hours, as RFC 3339). One alert
/// is raised per plate, fence and window.
#[derive(Serialize)]
pub struct NoParkingFields<'a> {
    pub plate: &'a str,
    pub event_seq: i64,
    pub images: &'a [String],
    pub fence: &'a str,
    pub fence_name: &'a str,
    pub fence_kind: &'a str,
    pub hours: &'a [String],
    pub window_start: String,
    pub window_end: String,
}

/// The zone rule a tagged person breaks, and whether a camera or their phone saw it.
#[derive(Serialize)]
pub struct ZoneBreak<'a> {
    pub rule: &'a str,
    pub fence: &'a str,
    pub fence_name: &'a str,
    /// `camera` or `device`.
    pub source: &'static str,
}

#[derive(Serialize)]
pub struct PersonRef<'a> {
    pub person_id: &'a str,
    pub name: &'a str,
}

#[derive(Serialize)]
pub struct StormBegins {
    pub alerts_in_window: u32,
    pub note: &'static str,
}

impl StormBegins {
    pub fn new(alerts_in_window: u32) -> StormBegins {
        StormBegins {
            alerts_in_window,
            note: "further alerts from this camera are held back (priority 1 still passes); every read is stored",
        }
    }
}

#[derive(Serialize)]
pub struct StormEnded {
    pub began: String,
    pub last: String,
    pub suppressed: u32,
    pub ended: bool,
}

impl StormEnded {
    pub fn new(began_ms: i64, last_ms: i64, suppressed: u32) -> StormEnded {
        StormEnded { began: rfc3339_ms(began_ms), last: rfc3339_ms(last_ms), suppressed, ended: true }
    }
}

/// What a patrol member's adherence alert says happened (distances in whole metres).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Adherence {
    OffRoute { since: String, distance_m: f64 },
    BackOnRoute { distance_m: f64 },
    CheckpointLate { checkpoint: usize, deadline: String },
    CheckpointSkipped { checkpoint: usize },
}

impl Adherence {
    pub fn off_route(since_ms: i64, distance_m: f64) -> Adherence {
        Adherence::OffRoute { since: rfc3339_ms(since_ms), distance_m: distance_m.round() }
    }

    pub fn back_on_route(distance_m: f64) -> Adherence {
        Adherence::BackOnRoute { distance_m: distance_m.round() }
    }

    pub fn checkpoint_late(checkpoint: usize, deadline_ms: i64) -> Adherence {
        Adherence::CheckpointLate { checkpoint, deadline: rfc3339_ms(deadline_ms) }
    }
}

/// A grid member's report as its alert carries it; a dispute's mediation case has the
/// report's id.
#[derive(Serialize)]
pub struct GridReportFields<'a> {
    pub report_id: i64,
    pub category: &'a str,
    pub text: &'a str,
    pub reporter: &'a str,
    pub reported: String,
    pub photos: &'a [String],
    pub mediation_case_id: Option<i64>,
}

/// A registered mediation case as its `mediation_case` alert carries it.
#[derive(Serialize)]
pub struct MediationCaseFields<'a> {
    pub case_id: i64,
    /// `incident` or `walk_in` (a grid report's case is announced by the report's alert).
    pub source: &'a str,
    pub incident_id: Option<i64>,
    pub dispute_type: &'a str,
    pub summary: &'a str,
    pub filed_by: &'a str,
}

/// A late step of a mediation case: `accept`, `resolve` or `follow_up`, and when it was due.
#[derive(Serialize)]
pub struct MediationOverdueFields<'a> {
    pub case_id: i64,
    pub step: &'a str,
    pub due: String,
    pub status: &'a str,
    pub dispute_type: &'a str,
}

/// A criminal incident and the disputes it touched, each by `party` or `place`.
#[derive(Serialize)]
pub struct TurnedCriminalFields<'a> {
    pub incident_id: i64,
    pub kind: &'a str,
    pub cases: Vec<LinkedCase<'a>>,
}

/// One dispute a criminal incident touched, and why.
#[derive(Serialize)]
pub struct LinkedCase<'a> {
    pub case_id: i64,
    pub reason: &'a str,
}

/// An operator's acknowledgement of an alert, carrying the alert's rule and priority.
#[derive(Serialize)]
pub struct AlertAck<'a> {
    pub alert_seq: i64,
    pub rule: &'a str,
    pub priority: i64,
    pub by: &'a str,
    pub at: String,
    pub note: &'a str,
}

/// An escalation event: a late incident step notified to a person on duty (`notify`),
/// or that person's acknowledgement (`ack`), which stops the next level. Addressed to
/// the person it reached; a command-centre escalation is also on every operator's
/// screen.
#[derive(Serialize)]
pub struct EscalationNotice<'a> {
    /// The notice's number (a notice's own `seq`), which its acknowledgement names.
    pub escalation_id: i64,
    /// `notify`, `ack` (the person acknowledged it) or `resolve` (the incident took its
    /// next step first: the notice is moot).
    pub action: &'a str,
    /// `post_leader` or `command_centre`.
    pub level: &'a str,
    /// The person the notice reached; null when nobody was on duty.
    pub person_id: Option<&'a str>,
    pub person_name: Option<&'a str>,
    /// The post whose leader was notified; null at the command centre.
    pub unit_id: Option<&'a str>,
    /// Why, in a sentence (how late the step is, or that nobody was on duty at the post),
    /// for the timeline and the logs; screens word it from the fields below.
    pub note: &'a str,
    /// `late` (the level's person was reached), `nobody_on_duty` (no leader on duty at
    /// the post: sent to the command centre instead), `no_post` (the incident is in no
    /// post's jurisdiction: sent to the command centre), `acknowledged` (an `ack`) or
    /// `resolved` (a `resolve`).
    pub reason: &'a str,
    /// How long the step has waited, in seconds (a notice's).
    pub late_s: Option<i64>,
    /// The incident's post (the assigned unit's, else the place's) and its name.
    pub post_id: Option<&'a str>,
    pub post_name: Option<&'a str>,
    pub actor: &'a str,
    pub time: String,
    /// The incident as it is; null when it is no longer open (an acknowledgement after
    /// it was closed).
    pub incident: Option<&'a IncidentRow>,
}

/// An incident's change: the whole incident after it, and the step.
#[derive(Serialize)]
pub struct IncidentChange<'a> {
    pub incident: &'a IncidentRow,
    pub event: IncidentStep<'a>,
}

#[derive(Serialize)]
pub struct IncidentStep<'a> {
    pub seq: i64,
    pub action: &'a str,
    /// The state before the step (none for a create).
    pub from: Option<IncidentState>,
    pub to: IncidentState,
    pub actor: &'a str,
    pub note: &'a str,
    pub time: String,
    /// The photos the step sent (an officer's feedback); absent when there are none.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub photo_urls: &'a [String],
    /// The unit the incident was assigned to before this step sent it to another one;
    /// absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reassigned_from: Option<&'a str>,
}

/// A route plan's change: the plan as it is now, and the event.
#[derive(Serialize)]
pub struct RouteChange<'a> {
    pub plan: PlanView<'a>,
    pub event: RouteStep<'a>,
}

#[derive(Serialize)]
pub struct RouteStep<'a> {
    pub seq: i64,
    pub action: &'a str,
    pub actor: &'a str,
    pub note: &'a str,
    pub time: String,
}

/// A hotspot analysis as the feed announces it: the top cells of the band in force.
#[derive(Serialize)]
pub struct HotspotsNotice<'a> {
    pub analysed_at: String,
    pub days: u32,
    pub events: usize,
    pub band: usize,
    pub band_label: &'a str,
    pub top: FeatureCollection<'a>,
    pub publicity_focus: &'a [serde_json::Value],
}

/// A GeoJSON FeatureCollection of features already built.
#[derive(Serialize)]
pub struct FeatureCollection<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    features: &'a [serde_json::Value],
}

impl<'a> FeatureCollection<'a> {
    pub fn new(features: &'a [serde_json::Value]) -> FeatureCollection<'a> {
        FeatureCollection { kind: "FeatureCollection", features }
    }
}

/// One part of a snapshot (`part` of `parts`): the last report of each device the
/// client may see; `reason` says why a snapshot is sent now, if not on connecting.
#[derive(Serialize)]
pub struct SnapshotPart<'a> {
    pub seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub part: usize,
    pub parts: usize,
    pub devices: &'a [&'a RawValue],
}

/// The server's answer to a message a client sent on its socket; `id` is the client's
/// own, echoed (`null` when it gave none).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientReply<'a> {
    /// The message was refused: which field, and why.
    Error { id: Option<&'a serde_json::Value>, field: &'a str, reason: &'a str },
    /// A route acknowledgement was recorded: the plan's number, version and status now.
    #[serde(rename = "ack")]
    RouteAck { id: Option<&'a serde_json::Value>, plan_seq: i64, version: i64, status: &'a str },
    /// A position was committed with this number.
    #[serde(rename = "ack")]
    PositionAck { id: Option<&'a serde_json::Value>, seq: Option<i64> },
}

impl ClientReply<'_> {
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// A plan as clients see it: the stored row with its plan body as JSON (`null` when
/// the stored body cannot be read).
#[derive(Serialize)]
pub struct PlanView<'a> {
    #[serde(flatten)]
    row: &'a RoutePlanRow,
    plan: Option<&'a RawValue>,
}

pub fn plan_json(p: &RoutePlanRow) -> PlanView<'_> {
    PlanView { row: p, plan: serde_json::from_str(&p.plan).ok() }
}

/// A committed report as clients see it: the stored row, with its attribute and
/// enrichment JSON embedded as they were stored.
#[derive(Serialize)]
struct ReportView<'a> {
    seq: i64,
    device_id: &'a str,
    fix_time: String,
    recv_ms: i64,
    lon: f64,
    lat: f64,
    datum: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed_mps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    course_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    altitude_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_pct: Option<f64>,
    flags: Vec<&'static str>,
    attributes: &'a RawValue,
    enrichment: &'a RawValue,
}

/// The JSON of a committed report, built from its stored row: at commit, and when the
/// live state is rebuilt after a restart (one code path for both).
pub fn report_json(row: &PositionRow) -> Box<RawValue> {
    // Both columns are only ever written from serialised JSON; an unreadable one is
    // shown as an empty object rather than failing the whole report.
    let empty = || serde_json::from_str::<&RawValue>("{}").ok();
    let (Some(attributes), Some(enrichment)) = (
        serde_json::from_str::<&RawValue>(&row.attributes).ok().or_else(empty),
        serde_json::from_str::<&RawValue>(&row.enrichment).ok().or_else(empty),
    ) else {
        return RawValue::NULL.to_owned();
    };
    report_json_with(row, attributes, enrichment)
}

/// [`report_json`] with the row's attributes and enrichment given as the JSON they
/// were serialised to, so that a report just made need not be read back: the ingest
/// sequencer builds each report's feed JSON this way (reading the two columns back
/// was 5 % of the server's instructions per report).
pub fn report_json_with(row: &PositionRow, attributes: &RawValue, enrichment: &RawValue) -> Box<RawValue> {
    let v = ReportView {
        seq: row.seq,
        device_id: &row.device_id,
        fix_time: rfc3339_ms(row.fix_ms),
        recv_ms: row.recv_ms,
        lon: row.lon,
        lat: row.lat,
        datum: row.datum,
        speed_mps: row.speed_mps,
        course_deg: row.course_deg,
        altitude_m: row.altitude_m,
        accuracy_m: row.accuracy_m,
        battery_pct: row.battery_pct,
        flags: flags::names(row.flags),
        attributes,
        enrichment,
    };
    serde_json::value::to_raw_value(&v).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A fused track as clients see it: a GeoJSON LineString's coordinates with the time
/// and camera of each point, the last place, heading and speed (to a tenth).
#[derive(Serialize)]
pub struct TrackView<'a> {
    coordinates: Vec<[f64; 2]>,
    times: Vec<String>,
    cameras: Vec<&'a str>,
    last: TrackEnd<'a>,
    heading_deg: Option<f64>,
    heading: Option<&'static str>,
    speed_kmh: Option<f64>,
    length_m: f64,
}

#[derive(Serialize)]
struct TrackEnd<'a> {
    camera_id: &'a str,
    lon: f64,
    lat: f64,
    time: String,
}

pub fn track_json(t: &Track) -> TrackView<'_> {
    let last = t.last();
    TrackView {
        coordinates: t.points.iter().map(|p| [p.position.lon(), p.position.lat()]).collect(),
        times: t.points.iter().map(|p| rfc3339_ms(p.time_ms)).collect(),
        cameras: t.points.iter().map(|p| p.camera_id.as_str()).collect(),
        last: TrackEnd {
            camera_id: &last.camera_id,
            lon: last.position.lon(),
            lat: last.position.lat(),
            time: rfc3339_ms(last.time_ms),
        },
        heading_deg: t.heading_deg.map(round_1),
        heading: t.heading,
        speed_kmh: t.speed_kmh.map(round_1),
        length_m: round_1(t.length_m),
    }
}

/// To a tenth, as distances, headings and speeds are shown.
fn round_1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use liandong_core::track::Sighting;
    use liandong_core::Position;
    use serde_json::{json, Value};

    use super::*;
    use crate::time_fmt::rfc3339_ms;

    const T0: i64 = 1_767_225_600_000;

    fn row() -> PositionRow {
        PositionRow {
            seq: 5,
            device_id: "dev-1".into(),
            fix_ms: T0,
            recv_ms: T0 + 900,
            lon: 107.2,
            lat: 30.7,
            datum: "gcj02",
            speed_mps: Some(3.5),
            course_deg: None,
            altitude_m: Some(310.0),
            accuracy_m: None,
            battery_pct: Some(80.0),
            flags: flags::JUMP | flags::POOR_ACCURACY,
            attributes: r#"{"ignition":true}"#.into(),
            enrichment: r#"{"in_county":true,"township":{"id":"t1","name":"Zhuyang"}}"#.into(),
        }
    }

    #[test]
    fn a_position_message_carries_the_report_with_its_stored_attributes_and_enrichment() {
        let message: Value = serde_json::from_str(&position_message(5, &report_json(&row()))).unwrap();
        assert_eq!(
            message,
            json!({"type": "position", "seq": 5, "data": {
                "seq": 5, "device_id": "dev-1", "fix_time": rfc3339_ms(T0), "recv_ms": T0 + 900,
                "lon": 107.2, "lat": 30.7, "datum": "gcj02", "speed_mps": 3.5, "altitude_m": 310.0,
                "battery_pct": 80.0, "flags": ["jump", "poor_accuracy"], "attributes": {"ignition": true},
                "enrichment": {"in_county": true, "township": {"id": "t1", "name": "Zhuyang"}},
            }})
        );
    }

    #[test]
    fn a_report_with_unreadable_stored_json_shows_empty_objects() {
        let bad = PositionRow { attributes: "{not json".into(), enrichment: String::new(), ..row() };
        let v: Value = serde_json::from_str(report_json(&bad).get()).unwrap();
        assert_eq!((&v["attributes"], &v["enrichment"]), (&json!({}), &json!({})));
    }

    #[test]
    fn an_escalation_names_its_notice_level_person_and_incident() {
        let inc = IncidentRow {
            incident_id: 4,
            title: "斗殴".into(),
            priority: 1,
            state: IncidentState::Dispatched,
            lon: 107.1,
            lat: 30.7,
            alert_seq: None,
            assigned_device: Some("dev-1".into()),
            assigned_unit: Some("team-1".into()),
            created_ms: T0,
            state_since_ms: T0,
            escalation: "post_leader".into(),
            kind: "other".into(),
            township: None,
        };
        let data = EscalationNotice {
            escalation_id: 9,
            action: "notify",
            level: "post_leader",
            person_id: Some("lead-w"),
            person_name: Some("西所长"),
            unit_id: Some("p-west"),
            note: "dispatched for 61 s",
            reason: "late",
            late_s: Some(61),
            post_id: Some("p-west"),
            post_name: Some("西警务室"),
            actor: "server",
            time: rfc3339_ms(T0 + 61_000),
            incident: Some(&inc),
        };
        let v: Value = serde_json::from_str(&FeedMessage::Escalation { seq: 9, data }.to_json()).unwrap();
        assert_eq!(v["type"], "escalation");
        assert_eq!(v["seq"], 9);
        let mut d = v["data"].clone();
        assert_eq!(d["incident"]["incident_id"], 4, "the whole incident: {d}");
        d["incident"] = Value::Null;
        assert_eq!(
            d,
            json!({"escalation_id": 9, "action": "notify", "level": "post_leader", "person_id": "lead-w",
                   "person_name": "西所长", "unit_id": "p-west", "note": "dispatched for 61 s", "reason": "late",
                   "late_s": 61, "post_id": "p-west", "post_name": "西警务室", "actor": "server",
                   "time": rfc3339_ms(T0 + 61_000), "incident": null})
        );
    }

    #[test]
    fn a_plan_is_its_row_with_the_plan_body_as_json() {
        let row = RoutePlanRow {
            plan_seq: 3,
            team_id: "team-01".into(),
            version: 2,
            kind: "plan".into(),
            reason: "r".into(),
            created_ms: T0,
            created_by: "op".into(),
            plan: r#"{"waypoints":[{"id":"cp-1"}]}"#.into(),
            lon: 107.2,
            lat: 30.7,
            status: "acknowledged".into(),
            acked_ms: Some(T0 + 1),
            acked_by: Some("lead".into()),
            escalation: "none".into(),
        };
        let expected = json!({"plan_seq": 3, "team_id": "team-01", "version": 2, "kind": "plan", "reason": "r",
            "created_ms": T0, "created_by": "op", "plan": {"waypoints": [{"id": "cp-1"}]}, "lon": 107.2, "lat": 30.7,
            "status": "acknowledged", "acked_ms": T0 + 1, "acked_by": "lead", "escalation": "none"});
        assert_eq!(serde_json::to_value(plan_json(&row)).unwrap(), expected);
        let unreadable = RoutePlanRow { plan: "{".into(), ..row };
        assert_eq!(serde_json::to_value(plan_json(&unreadable)).unwrap()["plan"], Value::Null);
    }

    #[test]
    fn a_track_carries_its_line_times_cameras_last_place_heading_and_speed() {
        let sighting = |camera: &str, lon: f64, time_ms: i64| Sighting {
            time_ms,
            camera_id: camera.into(),
            position: Position::new(lon, 30.7).unwrap(),
        };
        let track = Track {
            points: vec![sighting("cam-1", 107.2, T0), sighting("cam-2", 107.21, T0 + 60_000)],
            heading_deg: Some(89.987_6),
            heading: Some("E"),
            speed_kmh: Some(57.345),
            length_m: 956.789,
        };
        assert_eq!(
            serde_json::to_value(track_json(&track)).unwrap(),
            json!({"coordinates": [[107.2, 30.7], [107.21, 30.7]], "times": [rfc3339_ms(T0), rfc3339_ms(T0 + 60_000)],
                   "cameras": ["cam-1", "cam-2"],
                   "last": {"camera_id": "cam-2", "lon": 107.21, "lat": 30.7, "time": rfc3339_ms(T0 + 60_000)},
                   "heading_deg": 90.0, "heading": "E", "speed_kmh": 57.3, "length_m": 956.8})
        );
    }

    #[test]
    fn a_tagged_persons_zone_alert_names_the_person_the_phone_and_the_zone() {
        let detail = AlertDetail::TaggedZone {
            person: PersonRef { person_id: "p-1", name: "Wang" },
            device_id: "phone-1",
            zone: ZoneBreak { rule: "school 07:00-18:00", fence: "f-3", fence_name: "No. 2 School", source: "device" },
        };
        assert_eq!(
            serde_json::to_value(detail).unwrap(),
            json!({"person": {"person_id": "p-1", "name": "Wang"}, "device_id": "phone-1",
                   "zone": {"rule": "school 07:00-18:00", "fence": "f-3", "fence_name": "No. 2 School", "source": "device"}})
        );
    }

    #[test]
    fn a_hotspot_notice_carries_the_analysis_and_its_top_cells_as_geojson() {
        let top = vec![json!({"type": "Feature", "properties": {"band": 1}})];
        let publicity = vec![json!({"township": "Zhuyang", "categories": ["fraud"]})];
        let notice = FeedMessage::Hotspots(HotspotsNotice {
            analysed_at: rfc3339_ms(T0),
            days: 28,
            events: 312,
            band: 1,
            band_label: "08:00-16:00",
            top: FeatureCollection::new(&top),
            publicity_focus: &publicity,
        });
        assert_eq!(
            serde_json::from_str::<Value>(&notice.to_json()).unwrap(),
            json!({"type": "hotspots", "analysed_at": rfc3339_ms(T0), "days": 28, "events": 312, "band": 1,
                   "band_label": "08:00-16:00", "top": {"type": "FeatureCollection", "features": top},
                   "publicity_focus": publicity})
        );
    }

    #[test]
    fn an_alert_writes_its_rules_fields_beside_the_common_ones() {
        let enricher = liandong_core::Enricher::new(&liandong_core::CountyMap::default());
        let at = Position::new(107.2, 30.7).unwrap();
        let place = enricher.view(&enricher.enrich(at), &[], &[]);
        let detail = AlertDetail::StaleUnit { device_id: "dev-1", last_heard: rfc3339_ms(T0), silent_min: 12 };
        let data = Alert {
            seq: 3,
            rule: "stale_unit",
            priority: 3,
            time: rfc3339_ms(T0),
            lon: 107.2,
            lat: 30.7,
            place,
            detail,
        };
        let v: Value = serde_json::from_str(&FeedMessage::Alert { seq: 3, data: Box::new(data) }.to_json()).unwrap();
        let keys: Vec<&str> = v["data"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["device_id", "last_heard", "lat", "lon", "place", "priority", "rule", "seq", "silent_min", "time"],
            "one flat object"
        );
    }
}
