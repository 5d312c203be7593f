//! The live feed: every committed event is published, in sequence order, to the
//! websocket clients it concerns (the endpoint that serves them is `ws`).
//!
//! The sequencer commits, updates the [`LiveView`] (the last report of each device and
//! the last committed sequence number, under one lock) and then publishes to a
//! `broadcast` channel, the [`Hub`]. Each event carries what a client's filter needs to
//! decide whether it concerns it (position, unit, team, the roles an alert is meant for)
//! beside its message, serialised once for every client.

use std::sync::{Arc, RwLock};

use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::zones::TaggedPhone;

/// One committed event as the feed carries it.
#[derive(Debug)]
pub struct FeedEvent {
    pub seq: i64,
    pub lon: f64,
    pub lat: f64,
    pub what: What,
    /// The whole message, serialised once for every client.
    pub message: Arc<str>,
    /// When it was published (right after its commit): the start of the live feed's
    /// delivery lag (`liandong_live_delivery_lag_seconds`).
    pub published: std::time::Instant,
}

/// The kind of a feed event, with what its visibility depends on.
#[derive(Debug)]
pub enum What {
    /// A unit's position: visible by unit; a tagged person's phone only to the roles on
    /// the person's record.
    Position { unit_id: Option<Arc<str>>, tagged: Option<Arc<TaggedPhone>> },
    /// An alert: visible to the roles it names (administrators see every alert).
    Alert { roles: Arc<[String]> },
    /// An incident's change: visible as `scope::Reach::sees_incident` says, by its
    /// assigned unit, its place and its priority.
    Incident { unit_id: Option<Arc<str>>, priority: i64 },
    /// A route plan's change: visible to the whole-county roles and the team, whatever
    /// their viewport and kinds (a leader must never miss a new route).
    Route { team_id: Option<Arc<str>> },
    /// An escalation: visible to the person it names (a user acting for that person, or
    /// a device bound to them), and, at the command centre's level, to operators and
    /// administrators, whatever their viewport and kinds.
    Escalation { person_id: Option<Arc<str>>, operators: bool },
    /// A notice outside the sequence (seq 0): not stored, never replayed, delivered to
    /// whole-county readers that are connected when it happens (a new hotspot
    /// analysis; a client that reconnects asks the HTTP API for the latest).
    Notice,
}

impl FeedEvent {
    pub fn position(
        seq: i64,
        lon: f64,
        lat: f64,
        unit_id: Option<Arc<str>>,
        tagged: Option<Arc<TaggedPhone>>,
        message: Arc<str>,
    ) -> FeedEvent {
        FeedEvent {
            seq,
            lon,
            lat,
            what: What::Position { unit_id, tagged },
            message,
            published: std::time::Instant::now(),
        }
    }

    pub fn alert(seq: i64, lon: f64, lat: f64, roles: Arc<[String]>, message: Arc<str>) -> FeedEvent {
        FeedEvent { seq, lon, lat, what: What::Alert { roles }, message, published: std::time::Instant::now() }
    }

    pub fn incident(
        seq: i64,
        lon: f64,
        lat: f64,
        unit_id: Option<Arc<str>>,
        priority: i64,
        message: Arc<str>,
    ) -> FeedEvent {
        FeedEvent {
            seq,
            lon,
            lat,
            what: What::Incident { unit_id, priority },
            message,
            published: std::time::Instant::now(),
        }
    }

    pub fn route(seq: i64, lon: f64, lat: f64, team_id: Option<Arc<str>>, message: Arc<str>) -> FeedEvent {
        FeedEvent { seq, lon, lat, what: What::Route { team_id }, message, published: std::time::Instant::now() }
    }

    pub fn escalation(
        seq: i64,
        lon: f64,
        lat: f64,
        person_id: Option<Arc<str>>,
        operators: bool,
        message: Arc<str>,
    ) -> FeedEvent {
        FeedEvent {
            seq,
            lon,
            lat,
            what: What::Escalation { person_id, operators },
            message,
            published: std::time::Instant::now(),
        }
    }

    /// A notice outside the sequence; see [`What::Notice`].
    pub fn notice(message: Arc<str>) -> FeedEvent {
        FeedEvent { seq: 0, lon: 0.0, lat: 0.0, what: What::Notice, message, published: std::time::Instant::now() }
    }
}

/// The priority of the incident an incident event's stored message carries
/// (`data.incident.priority`); 0, which no incident has, when it carries none.
pub fn incident_priority(payload: &str) -> i64 {
    #[derive(serde::Deserialize)]
    struct Message {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        incident: Incident,
    }
    #[derive(serde::Deserialize)]
    struct Incident {
        priority: i64,
    }
    serde_json::from_str::<Message>(payload).map_or(0, |m| m.data.incident.priority)
}

/// The incident an incident event's stored message is about and the unit a dispatch
/// took it from (`data.event.reassigned_from`), when it did.
pub fn incident_reassigned(payload: &str) -> Option<(i64, String)> {
    let m: serde_json::Value = serde_json::from_str(payload).ok()?;
    let id = m.pointer("/data/incident/incident_id")?.as_i64()?;
    let from = m.pointer("/data/event/reassigned_from")?.as_str()?;
    Some((id, from.to_owned()))
}

/// `incident_gone`: an incident the client was shown has left its reach (dispatched to
/// another unit), so that its copy does not go stale; at the step's sequence number.
pub fn incident_gone_message(seq: i64, incident_id: i64) -> String {
    serde_json::json!({"type": "incident_gone", "seq": seq, "data": {"incident_id": incident_id}}).to_string()
}

/// The last committed report of a device.
#[derive(Debug, Clone)]
pub struct LastReport {
    pub seq: i64,
    pub lon: f64,
    pub lat: f64,
    /// When the fix was taken, and whether the jump filter trusted it.
    pub fix_ms: i64,
    pub trusted: bool,
    /// The jump filter's marks (`liandong_core::jump::flags`).
    pub flags: u32,
    pub unit_id: Option<Arc<str>>,
    /// The report's JSON ([`report_json`]), checked once and shared by every snapshot.
    pub json: Arc<RawValue>,
}

/// What is live now: each device's last report and the last committed sequence number.
#[derive(Debug, Default)]
pub struct LiveView {
    pub seq: i64,
    pub devices: crate::hashing::FastMap<String, LastReport>,
}

pub type SharedLive = Arc<RwLock<LiveView>>;

/// The feed's publishing side, owned by the sequencer; clients subscribe through it.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<FeedEvent>>,
}

impl Hub {
    /// `capacity`: how many events a client may fall behind before it is resynced.
    pub fn new(capacity: usize) -> Hub {
        Hub { tx: broadcast::channel(capacity.max(16)).0 }
    }

    pub fn publish(&self, mut event: FeedEvent) {
        event.published = std::time::Instant::now();
        // No subscriber is not an error: the event is committed either way.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedEvent>> {
        self.tx.subscribe()
    }

    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Events published and not yet read by every client: the queue of the slowest
    /// one, bounded by the channel's capacity (beyond it that client is resynced).
    pub fn deepest_queue(&self) -> usize {
        self.tx.len()
    }
}

pub mod messages;

pub use messages::{plan_json, position_message, report_json, track_json, FeedMessage};
