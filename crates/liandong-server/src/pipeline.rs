//! The ingest sequencer: one task that takes validated reports from every endpoint,
//! runs the domain's per-device processing (jump filter, enrichment, fences), assigns
//! sequence numbers, commits the whole batch in one transaction and only then
//! acknowledges and applies the new live state.
//!
//! Group commit falls out of the shape: while one commit waits for the disk, new
//! reports queue up, and the next commit takes them all (up to `max_batch`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use liandong_core::adherence::{AdherenceConfig, AdherenceEvent, Corridor, MemberAdherence, PlannedCheckpoint};
use liandong_core::alerts::{nearest_units, Dedup, WatchKind, Watchlist};
use liandong_core::fence::Membership;
use liandong_core::incident::{escalation_due, Action, Escalation, State as IncidentState};
use liandong_core::jump::{flags, Fix, JumpFilter};
use liandong_core::storm::{StormGuard, StormVerdict};
use liandong_core::track::{Sighting, Track, TrackBook};
use liandong_core::{process, DeviceTrack, Enricher, Position};
use liandong_ingest::isapi::{CameraEvent, EventKind};
use liandong_ingest::Report;
use liandong_store::{
    AlertAckRow, AlertRow, AuditEntry, Batch, CameraEventRow, DeviceStateRow, GridReport, IncidentEventRow,
    IncidentRow, PositionRow, RouteEventRow, RoutePlanRow, Store, StoreError, StoredMembership, Writing,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::config::AlertConfig;
use crate::live::{position_message, FeedEvent, Hub, LastReport, LiveView, SharedLive};
use crate::metrics::Metrics;
use crate::zones::SharedZones;

/// A validated report from a known device, with its receive time.
#[derive(Debug, Clone)]
pub struct Item {
    pub report: Report,
    pub recv_ms: i64,
    /// The device's post or team, for the live feed's role filters.
    pub unit_id: Option<Arc<str>>,
}

/// The acknowledgement of one committed report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ack {
    pub seq: i64,
    #[serde(skip)]
    pub flags: u32,
}

/// A decoded camera push from a known camera, with its receive time.
#[derive(Debug, Clone)]
pub struct CameraItem {
    pub event: CameraEvent,
    pub camera: Arc<CameraInfo>,
    pub recv_ms: i64,
    /// URLs of the push's JPEG snapshots, already durably stored.
    pub images: Vec<String>,
}

/// What the rules need to know of a camera.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub position: Position,
}

/// The acknowledgement of a committed camera push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CameraAck {
    pub seq: i64,
    /// The alert the push raised, if any.
    pub alert_seq: Option<i64>,
}

/// A change to incidents, decided in sequence with everything else.
#[derive(Debug, Clone)]
pub enum IncidentCommand {
    Create {
        title: String,
        /// What it is about: an alert's rule, a report's category, or the operator's word.
        kind: String,
        priority: u8,
        position: Position,
        alert_seq: Option<i64>,
        actor: String,
        now_ms: i64,
    },
    Act {
        incident_id: i64,
        action: Action,
        actor: String,
        /// The phone acting, if an officer acts: it must be the one assigned.
        actor_device: Option<String>,
        /// For a dispatch: the device and its unit.
        assign: Option<(String, Option<String>)>,
        note: String,
        now_ms: i64,
    },
    /// Escalates every step that is late at `now_ms`.
    Tick { now_ms: i64 },
}

/// A change to a patrol team's route plan, decided in sequence with everything else.
#[derive(Debug, Clone)]
pub enum RouteCommand {
    /// A new version of the team's plan (the pending one before it is superseded).
    Push {
        team_id: String,
        /// `plan`, `diversion` or `manual`.
        kind: String,
        reason: String,
        /// Geometry, waypoints with planned times, expected coverage.
        plan: serde_json::Value,
        /// Where the plan starts.
        anchor: Position,
        actor: String,
        now_ms: i64,
        /// Refuse the push when the team's current plan is of the same kind and visits
        /// the same stops (waypoint ids) in the same order: a re-plan that changes
        /// nothing, or the same re-plan from another instance sharing the database.
        unless_same_stops: bool,
    },
    /// The patrol leader acknowledges a version: it must be the team's newest and pending.
    Ack { team_id: String, version: i64, actor: String, now_ms: i64 },
}

enum Work {
    Positions(Vec<Item>),
    Route(RouteCommand),
    Camera(Box<CameraItem>),
    Incident(IncidentCommand),
    /// A grid member's report and its validated place (its id is assigned in sequence).
    Report(Box<(GridReport, Position)>),
    /// An operator acknowledges an alert (checked by the caller: it exists and the
    /// operator may see it).
    AlertAck(Box<AlertAckCommand>),
    /// Apply and publish what other instances on the same database committed.
    CatchUp,
}

/// An operator's acknowledgement of an alert.
pub struct AlertAckCommand {
    pub alert: AlertRow,
    pub actor: String,
    pub note: String,
    pub now_ms: i64,
}

enum Acks {
    Positions(Vec<Ack>),
    Camera(CameraAck),
    /// The report's id: the sequence number of its alert.
    Report(i64),
    /// The plan after the command, or why it was refused (nothing stored).
    Route(Box<Result<RoutePlanRow, String>>),
    /// The acknowledgement as stored.
    AlertAck(Box<AlertAckRow>),
    CaughtUp,
    /// The incident after the command, or why the command was refused (nothing stored).
    Incident(Box<Result<IncidentDone, String>>),
}

type Reply = oneshot::Sender<Result<Acks, Arc<StoreError>>>;

struct Job {
    work: Work,
    reply: Reply,
}

impl Job {
    fn size(&self) -> usize {
        match &self.work {
            Work::Positions(items) => items.len(),
            Work::Camera(_) | Work::Incident(_) | Work::Report(_) | Work::Route(_) | Work::AlertAck(_) => 1,
            Work::CatchUp => 0,
        }
    }
}

/// The handle endpoints submit reports through.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the server is shutting down")]
    Closed,
    #[error(transparent)]
    Store(Arc<StoreError>),
}

impl Ingest {
    /// Submits reports and waits until they are durably committed.
    pub async fn submit(&self, items: Vec<Item>) -> Result<Vec<Ack>, SubmitError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        match self.send(Work::Positions(items)).await? {
            Acks::Positions(acks) => Ok(acks),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Submits a camera push and waits until it (and any alert it raised) is committed.
    pub async fn submit_camera(&self, item: CameraItem) -> Result<CameraAck, SubmitError> {
        match self.send(Work::Camera(Box::new(item))).await? {
            Acks::Camera(ack) => Ok(ack),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Submits an incident command and waits for its commit; `Ok(Err(reason))` when the
    /// command was refused (an impossible step, someone else's task).
    pub async fn submit_incident(&self, cmd: IncidentCommand) -> Result<Result<IncidentDone, String>, SubmitError> {
        match self.send(Work::Incident(cmd)).await? {
            Acks::Incident(r) => Ok(*r),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Submits a grid member's report and waits until it (and the alert that puts it on
    /// the live feed, and a dispute's mediation case) is committed. Returns its id.
    pub async fn submit_report(&self, report: GridReport, position: Position) -> Result<i64, SubmitError> {
        match self.send(Work::Report(Box::new((report, position)))).await? {
            Acks::Report(id) => Ok(id),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Submits an operator's acknowledgement of an alert and waits for its commit.
    pub async fn submit_alert_ack(&self, cmd: AlertAckCommand) -> Result<AlertAckRow, SubmitError> {
        match self.send(Work::AlertAck(Box::new(cmd))).await? {
            Acks::AlertAck(row) => Ok(*row),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Submits a route plan command and waits for its commit; `Ok(Err(reason))` when it
    /// was refused (an unknown version, one already acknowledged).
    pub async fn submit_route(&self, cmd: RouteCommand) -> Result<Result<RoutePlanRow, String>, SubmitError> {
        match self.send(Work::Route(cmd)).await? {
            Acks::Route(r) => Ok(*r),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Asks the sequencer to apply and publish what other instances committed, and
    /// waits until it has.
    pub async fn catch_up(&self) -> Result<(), SubmitError> {
        self.send(Work::CatchUp).await.map(|_| ())
    }

    async fn send(&self, work: Work) -> Result<Acks, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { work, reply }).await.map_err(|_| SubmitError::Closed)?;
        match rx.await {
            Ok(Ok(acks)) => Ok(acks),
            Ok(Err(e)) => Err(SubmitError::Store(e)),
            Err(_) => Err(SubmitError::Closed),
        }
    }
}

/// What the sequencer keeps per device: the domain's track and the sequence number of
/// the device's last in-order report.
type DeviceLive = (DeviceTrack, i64);

pub struct Sequencer {
    store: Store,
    enricher: Arc<Enricher>,
    filter: JumpFilter,
    max_batch: usize,
    next_seq: i64,
    tracks: HashMap<String, DeviceLive>,
    live: SharedLive,
    hub: Hub,
    metrics: Arc<Metrics>,
    watchlist: SharedWatchlist,
    dedup: Dedup,
    /// Open incidents by id.
    incidents: HashMap<i64, IncidentRow>,
    /// Devices already reported stale, until they report again.
    stale: std::collections::HashSet<String>,
    /// When each device was last heard from (receive time) and where it was.
    last_heard: HashMap<String, (i64, Position)>,
    /// Cameras raising alerts faster than a person can read them.
    storms: StormGuard,
    /// A unit not heard from for this long is reported stale (its phone may have lost
    /// signal or power).
    stale_unit_ms: i64,
    /// Recent sightings of watched plates and persons, fused into tracks.
    sightings: TrackBook,
    /// Tagged persons' zone rules.
    zones: SharedZones,
    /// Zone rules a tagged person's phone is breaking now: (person, rule, fence). An
    /// alert is raised when a pair starts, not on every report inside.
    zone_breaks: std::collections::HashSet<(String, usize, u32)>,
    /// Cameras seen pushing, for the alert that ends a storm.
    cameras: HashMap<String, Arc<CameraInfo>>,
    /// Each device's unit, for events other instances committed (reloaded from the
    /// store when an unknown device appears).
    units: HashMap<String, Option<Arc<str>>>,
    /// Each team's newest route plan version.
    route_heads: HashMap<String, RoutePlanRow>,
    /// Each team's current plan as a corridor to measure members against, by plan.
    corridors: HashMap<String, (i64, Arc<Corridor>)>,
    /// Each member's adherence to the plan it is measured against.
    adherence: HashMap<String, (i64, MemberAdherence)>,
    travel: Arc<crate::planning::TeamTravel>,
}

/// The watch list, shared between the administrators' API (writes) and the rules.
pub type SharedWatchlist = Arc<RwLock<Watchlist>>;

/// Units whose last trusted fix is older than this are not "available" for an alert.
pub const UNIT_MAX_AGE_MS: i64 = 15 * 60 * 1000;
/// How many nearest units an alert names.
const NEAREST_UNITS: usize = 3;
/// Sightings kept per watched plate or person, and for how long.
const TRACK_POINTS: usize = 64;
const TRACK_MAX_AGE_MS: i64 = 6 * 3600 * 1000;
const TRACK_MAX_KEYS: usize = 10_000;

/// What the alert rules read besides the map: the lists the API edits, and the
/// windows from the config.
pub struct RuleInputs {
    pub watchlist: SharedWatchlist,
    pub zones: SharedZones,
    pub config: AlertConfig,
    /// Each team's road graph (its pace), for diversions: the team goes there as it
    /// patrols.
    pub travel: Arc<crate::planning::TeamTravel>,
    /// Stored sightings of watched values from before a restart, by track key
    /// ([`track_key`]), so that the first alert after it still carries the track.
    pub recent_sightings: Vec<(String, Sighting)>,
}

/// How far back a restart looks for the sightings that rebuild the tracks.
pub const TRACK_REBUILD_MS: i64 = TRACK_MAX_AGE_MS;

/// The key of a watched value's track in the rules' memory.
pub fn track_key(kind: WatchKind, value: &str) -> String {
    format!("{}:{value}", kind.as_str())
}

/// An alert the rules decided on; [`Sequencer::raise`] adds its number, place and the
/// fields every alert carries.
struct NewAlert {
    rule: &'static str,
    priority: i64,
    position: Position,
    time_ms: i64,
    camera_id: Option<String>,
    event_seq: Option<i64>,
    roles: Vec<String>,
    /// The rule's own fields (a JSON object).
    fields: serde_json::Value,
}

impl Sequencer {
    /// Rebuilds the live state from the store and returns the sequencer with a shared
    /// view of the last reports.
    pub async fn start(
        store: Store,
        enricher: Arc<Enricher>,
        filter: JumpFilter,
        max_batch: usize,
        metrics: Arc<Metrics>,
        hub: Hub,
        rules: RuleInputs,
    ) -> Result<Sequencer, StoreError> {
        let RuleInputs { watchlist, zones, config: rules, travel, recent_sightings } = rules;
        let next_seq = store.max_seq().await? + 1;
        let open_incidents = store.open_incidents().await?.into_iter().map(|i| (i.incident_id, i)).collect();
        let units: HashMap<String, Option<Arc<str>>> =
            store.devices().await?.into_iter().map(|d| (d.device_id, d.unit_id.map(Arc::from))).collect();
        let mut tracks = HashMap::new();
        let mut last = HashMap::new();
        let mut last_heard = HashMap::new();
        let fix = |f: Option<(i64, f64, f64)>| {
            f.and_then(|(t, lon, lat)| Some(Fix { position: Position::new(lon, lat).ok()?, time_ms: t }))
        };
        for (s, row) in store.device_states().await? {
            // Memberships of fences the current map no longer has are dropped.
            let mut fences: Vec<Membership> = s
                .fences
                .iter()
                .filter_map(|m| {
                    let fence = enricher.fences().position_of(&m.fence)?;
                    Some(Membership { fence, since_ms: m.since_ms, dwell_fired: m.dwell_fired })
                })
                .collect();
            fences.sort_by_key(|m| m.fence);
            if let Some(row) = &row {
                if let Ok(p) = Position::new(row.lon, row.lat) {
                    last_heard.insert(s.device_id.clone(), (row.recv_ms, p));
                }
            }
            if let Some(row) = row {
                let unit_id = units.get(&s.device_id).cloned().flatten();
                let report = LastReport {
                    seq: row.seq,
                    lon: row.lon,
                    lat: row.lat,
                    fix_ms: row.fix_ms,
                    trusted: row.flags & flags::UNTRUSTED == 0,
                    flags: row.flags,
                    unit_id,
                    json: Arc::from(report_json(&row)),
                };
                last.insert(s.device_id.clone(), report);
            }
            let track = DeviceTrack { last_trusted: fix(s.trusted), last_marked: fix(s.marked), fences };
            tracks.insert(s.device_id, (track, s.seq));
        }
        tracing::info!(devices = tracks.len(), next_seq, "live state rebuilt from store");
        let route_heads = store.route_plan_heads().await?.into_iter().map(|p| (p.team_id.clone(), p)).collect();
        let stale = told_stale(&store, &last_heard, crate::time_fmt::now_ms()).await?;
        // The stored sightings of watched values, replayed in time order through the
        // de-duplication, give it the memory it had before a restart: a camera repeating a
        // read just after the restart is still a repeat.
        let mut dedup = Dedup::new(rules.dedup_window_s);
        for (key, s) in &recent_sightings {
            if let Some((_, value)) = key.split_once(':') {
                dedup.admit(&s.camera_id, value, s.time_ms);
            }
        }
        Ok(Sequencer {
            store,
            enricher,
            filter,
            max_batch,
            next_seq,
            tracks,
            live: Arc::new(RwLock::new(LiveView { seq: next_seq - 1, devices: last })),
            hub,
            metrics,
            watchlist,
            dedup,
            incidents: open_incidents,
            stale,
            last_heard,
            storms: StormGuard::new(i64::from(rules.storm_window_s) * 1000, rules.storm_max_alerts),
            // Receive time counts, not fix time: a phone uploading fixes it buffered
            // while offline is reporting.
            stale_unit_ms: i64::from(rules.stale_unit_min) * 60_000,
            sightings: {
                let mut book = TrackBook::new(TRACK_POINTS, TRACK_MAX_AGE_MS, TRACK_MAX_KEYS);
                for (key, s) in recent_sightings {
                    book.record(&key, s);
                }
                book
            },
            zones,
            zone_breaks: std::collections::HashSet::new(),
            cameras: HashMap::new(),
            units,
            corridors: corridors_of(&route_heads),
            route_heads,
            adherence: HashMap::new(),
            travel,
        })
    }

    /// The live view (last report per device and committed sequence number).
    pub fn live_view(&self) -> SharedLive {
        self.live.clone()
    }

    /// Spawns the sequencer task. It ends, after committing everything queued, when
    /// every [`Ingest`] handle is dropped.
    pub fn spawn(self, queue: usize) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue);
        (Ingest { tx }, tokio::spawn(self.run(rx)))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut n = first.size();
            let mut jobs = vec![first];
            while n < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        n += job.size();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            // Catch-up requests are answered once what others committed is applied.
            let (catch_ups, mut jobs): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| matches!(j.work, Work::CatchUp));
            if !catch_ups.is_empty() {
                let r = self.catch_up().await.map_err(Arc::new);
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "catching up with other instances failed; will retry");
                }
                for j in catch_ups {
                    let _ = j.reply.send(r.clone().map(|()| Acks::CaughtUp));
                }
            }
            if jobs.is_empty() {
                continue;
            }
            // Take the write lock first, then number the batch: what other instances
            // committed before it is caught up with, and nothing lands in between.
            let writing = match self.store.begin_write().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a group commit; nothing acknowledged");
                    self.metrics.commit_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    fail(jobs, e);
                    continue;
                }
            };
            // What queued while the lock was awaited joins this commit.
            while n < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => {
                        n += job.size();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            if writing.committed() >= self.next_seq {
                if let Err(e) = self.catch_up_to(writing.committed()).await {
                    tracing::error!(error = %e, "cannot catch up with other instances; nothing acknowledged");
                    fail(jobs, e);
                    continue;
                }
            }
            self.commit(jobs, writing).await;
        }
        tracing::info!(next_seq = self.next_seq, "ingest sequencer stopped; all queued reports committed");
    }

    /// Applies what other instances committed since this one last looked, in sequence
    /// order: reports move units and the live view, incident steps update the open
    /// incidents, and everything goes out on this instance's live feed.
    async fn catch_up(&mut self) -> Result<(), StoreError> {
        let target = self.store.max_seq().await?;
        self.catch_up_to(target).await
    }

    /// Applies what other instances committed up to `target`.
    async fn catch_up_to(&mut self, target: i64) -> Result<(), StoreError> {
        let mut after = self.next_seq - 1;
        while after < target {
            let limit = 10_000;
            let positions = self.store.positions_after(after, limit).await?;
            let alerts = self.store.alerts_after(after, limit).await?;
            let events = self.store.incident_events_after(after, limit).await?;
            let routes = self.store.route_events_after(after, limit).await?;
            let acks = self.store.alert_acks_after(after, limit).await?;
            // Each list is complete up to its last row (or to `target` when short); the
            // merge goes no further than the shortest complete prefix.
            let complete =
                |n: usize, last: Option<i64>| if n < limit as usize { target } else { last.unwrap_or(target) };
            let upto = complete(positions.len(), positions.last().map(|r| r.seq))
                .min(complete(alerts.len(), alerts.last().map(|r| r.seq)))
                .min(complete(events.len(), events.last().map(|r| r.seq)))
                .min(complete(routes.len(), routes.last().map(|r| r.seq)))
                .min(complete(acks.len(), acks.last().map(|r| r.seq)))
                .min(target);
            let routes_touched = routes.iter().any(|r| r.seq <= upto);
            let mut feed: Vec<(i64, Caught)> = Vec::new();
            feed.extend(positions.into_iter().filter(|r| r.seq <= upto).map(|r| (r.seq, Caught::Position(r))));
            feed.extend(alerts.into_iter().filter(|r| r.seq <= upto).map(|r| (r.seq, Caught::Alert(r))));
            feed.extend(events.into_iter().filter(|r| r.seq <= upto).map(|r| (r.seq, Caught::Incident(r))));
            feed.extend(routes.into_iter().filter(|r| r.seq <= upto).map(|r| (r.seq, Caught::Route(r))));
            feed.extend(acks.into_iter().filter(|r| r.seq <= upto).map(|r| (r.seq, Caught::AlertAck(r))));
            if routes_touched {
                self.route_heads =
                    self.store.route_plan_heads().await?.into_iter().map(|p| (p.team_id.clone(), p)).collect();
                self.corridors = corridors_of(&self.route_heads);
            }
            feed.sort_by_key(|(seq, _)| *seq);
            let mut touched = std::collections::BTreeSet::new();
            let unknown =
                feed.iter().any(|(_, c)| matches!(c, Caught::Position(r) if !self.units.contains_key(&r.device_id)));
            if unknown {
                self.units =
                    self.store.devices().await?.into_iter().map(|d| (d.device_id, d.unit_id.map(Arc::from))).collect();
            }
            for (_, c) in &feed {
                if let Caught::Incident(e) = c {
                    touched.insert(e.incident_id);
                }
            }
            for id in touched {
                match self.store.incident(id).await? {
                    Some((inc, _)) if inc.state != "closed" && inc.state != "cancelled" => {
                        self.incidents.insert(id, inc);
                    }
                    _ => {
                        self.incidents.remove(&id);
                    }
                }
            }
            let n = feed.len();
            for (_, c) in feed {
                self.apply_caught(c);
            }
            self.next_seq = upto + 1;
            after = upto;
            let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
            live.seq = live.seq.max(upto);
            drop(live);
            tracing::debug!(events = n, upto, "caught up with other instances");
        }
        Ok(())
    }

    /// One event another instance committed: applied to memory and published.
    fn apply_caught(&mut self, c: Caught) {
        match c {
            Caught::Position(r) => {
                let unit = self.units.get(&r.device_id).cloned().flatten();
                let json: Arc<str> = Arc::from(report_json(&r));
                let trusted = r.flags & flags::UNTRUSTED == 0;
                if r.flags & flags::OUT_OF_ORDER == 0 {
                    let entry = self.tracks.entry(r.device_id.clone()).or_default();
                    entry.1 = r.seq;
                    if let (true, Ok(p)) = (trusted, Position::new(r.lon, r.lat)) {
                        entry.0.last_trusted = Some(Fix { position: p, time_ms: r.fix_ms });
                    }
                    let last = LastReport {
                        seq: r.seq,
                        lon: r.lon,
                        lat: r.lat,
                        fix_ms: r.fix_ms,
                        trusted,
                        flags: r.flags,
                        unit_id: unit.clone(),
                        json: json.clone(),
                    };
                    self.live.write().unwrap_or_else(|e| e.into_inner()).devices.insert(r.device_id.clone(), last);
                }
                if let Ok(p) = Position::new(r.lon, r.lat) {
                    self.last_heard.insert(r.device_id.clone(), (r.recv_ms, p));
                    self.stale.remove(&r.device_id);
                }
                let message = Arc::from(position_message(r.seq, &json));
                let tagged = self.zones.read().unwrap_or_else(|e| e.into_inner()).tagged_phone(&r.device_id);
                self.hub.publish(FeedEvent::position(r.seq, r.lon, r.lat, unit, tagged, message));
            }
            Caught::Alert(a) => {
                let roles: Arc<[String]> = a.roles.into();
                self.hub.publish(FeedEvent::alert(a.seq, a.lon, a.lat, roles, Arc::from(a.payload)));
            }
            Caught::Incident(e) => {
                let unit = e.unit_id.as_deref().map(Arc::from);
                self.hub.publish(FeedEvent::incident(e.seq, e.lon, e.lat, unit, Arc::from(e.payload)));
            }
            Caught::Route(e) => {
                let team = Some(Arc::from(e.team_id.as_str()));
                self.hub.publish(FeedEvent::route(e.seq, e.lon, e.lat, team, Arc::from(e.payload)));
            }
            Caught::AlertAck(a) => {
                let roles: Arc<[String]> = a.roles.into();
                self.hub.publish(FeedEvent::alert(a.seq, a.lon, a.lat, roles, Arc::from(a.payload)));
            }
        }
    }

    /// Numbers the jobs from the sequencer's next number, writes them under the write
    /// lock `writing` holds and answers each; a failed write answers each with the
    /// error and leaves memory as the store is.
    async fn commit(&mut self, jobs: Vec<Job>, writing: Writing) {
        let started = Instant::now();
        // The rules' memory (de-duplication, storms, tracks, zone breaks, stale units)
        // moves while the batch is prepared; a commit that fails puts it back, so that
        // a camera's retry of a refused push still raises its alert.
        let rules_before = self.rule_state();
        // Work on copies of the touched devices: if the commit fails, memory stays as
        // the store is.
        let mut working: HashMap<String, DeviceLive> = HashMap::new();
        let mut rows = Vec::new();
        let mut camera_rows = Vec::new();
        let mut alert_rows: Vec<AlertRow> = Vec::new();
        let mut audit: Vec<AuditEntry> = Vec::new();
        let mut incident_rows: Vec<IncidentRow> = Vec::new();
        let mut incident_events: Vec<IncidentEventRow> = Vec::new();
        let mut report_rows: Vec<GridReport> = Vec::new();
        let mut plan_rows: Vec<RoutePlanRow> = Vec::new();
        let mut route_events: Vec<RouteEventRow> = Vec::new();
        let mut ack_rows: Vec<AlertAckRow> = Vec::new();
        // Route plan heads as they will be once committed.
        let mut heads_after = self.route_heads.clone();
        // Incidents as they will be once committed.
        let mut incidents_after = self.incidents.clone();
        // What to publish after the commit, in sequence order.
        let mut publish: Vec<Publish> = Vec::new();
        let mut acks: Vec<Acks> = Vec::with_capacity(jobs.len());
        // Index in `rows` of each device's newest in-order report.
        let mut newest: HashMap<String, usize> = HashMap::new();
        let mut units: Vec<Option<Arc<str>>> = Vec::new();
        let mut seq = self.next_seq;
        for job in &jobs {
            let items = match &job.work {
                Work::Positions(items) => items,
                Work::CatchUp => {
                    acks.push(Acks::CaughtUp);
                    continue;
                }
                Work::Route(cmd) => {
                    let r =
                        route_command(cmd, &mut heads_after, &mut seq, &mut plan_rows, &mut route_events, &mut publish);
                    acks.push(Acks::Route(Box::new(r)));
                    continue;
                }
                Work::Camera(item) => {
                    let ack = self.camera(item, &mut seq, &mut camera_rows, &mut alert_rows, &mut audit, &mut publish);
                    // A serious alert near a team diverts it: go there, then resume.
                    if let Some(a) = alert_rows.last().filter(|a| Some(a.seq) == ack.alert_seq && a.priority <= 2) {
                        if let Some(cmd) = self.diversion(a, item.recv_ms) {
                            let r = route_command(
                                &cmd,
                                &mut heads_after,
                                &mut seq,
                                &mut plan_rows,
                                &mut route_events,
                                &mut publish,
                            );
                            if let Err(e) = r {
                                tracing::warn!(reason = %e, "diversion not pushed");
                            }
                        }
                    }
                    acks.push(Acks::Camera(ack));
                    continue;
                }
                Work::AlertAck(cmd) => {
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
                    seq += 1;
                    let roles: Arc<[String]> = row.roles.clone().into();
                    publish.push(Publish::Alert(FeedEvent::alert(
                        row.seq,
                        row.lon,
                        row.lat,
                        roles,
                        Arc::from(payload),
                    )));
                    acks.push(Acks::AlertAck(Box::new(row.clone())));
                    ack_rows.push(row);
                    continue;
                }
                Work::Report(r) => {
                    let (report, position) = &**r;
                    let id = self.report(report, *position, &mut seq, &mut alert_rows, &mut publish);
                    report_rows.push(GridReport { report_id: id, ..report.clone() });
                    acks.push(Acks::Report(id));
                    continue;
                }
                Work::Incident(cmd) => {
                    if let IncidentCommand::Tick { now_ms } = cmd {
                        self.stale_units(*now_ms, &mut seq, &mut alert_rows, &mut publish);
                        self.storms_ended(*now_ms, &mut seq, &mut alert_rows, &mut publish);
                        let members: Vec<(String, String)> = self
                            .adherence
                            .keys()
                            .filter_map(|d| Some((d.clone(), self.units.get(d).cloned().flatten()?.to_string())))
                            .collect();
                        for (device, team) in members {
                            self.adherence_check(
                                &device,
                                &team,
                                None,
                                *now_ms,
                                &mut seq,
                                &mut alert_rows,
                                &mut publish,
                            );
                        }
                        route_escalations(
                            *now_ms,
                            &mut heads_after,
                            &mut seq,
                            &mut plan_rows,
                            &mut route_events,
                            &mut publish,
                        );
                    }
                    let r = incident_command(
                        cmd,
                        &self.enricher,
                        &mut incidents_after,
                        &mut seq,
                        &mut incident_rows,
                        &mut incident_events,
                        &mut publish,
                    );
                    acks.push(Acks::Incident(Box::new(r)));
                    continue;
                }
            };
            let mut job_acks = Vec::with_capacity(items.len());
            for item in items {
                let r = &item.report;
                // The same fix again (a phone that lost the answer re-sends it) is the
                // report already kept: acknowledged with its number, not stored twice.
                if let Some(ack) = self.repeat_of(r, &newest, &rows) {
                    job_acks.push(ack);
                    continue;
                }
                let (track, last_seq) = working
                    .entry(r.device_id.clone())
                    .or_insert_with(|| self.tracks.get(&r.device_id).cloned().unwrap_or_default());
                let fix_ms = r.fix_time_ms.unwrap_or(item.recv_ms);
                let p = process(&self.enricher, &self.filter, track, r.position, fix_ms, item.recv_ms, r.accuracy_m);
                let view = self.enricher.view(&p.enrichment, &track.fences, &p.fence_events);
                if p.flags & flags::OUT_OF_ORDER == 0 {
                    *last_seq = seq;
                    newest.insert(r.device_id.clone(), rows.len());
                }
                publish.push(Publish::Position(rows.len()));
                rows.push(PositionRow {
                    seq,
                    device_id: r.device_id.clone(),
                    fix_ms,
                    recv_ms: item.recv_ms,
                    lon: r.position.lon(),
                    lat: r.position.lat(),
                    datum: datum_name(r.datum),
                    speed_mps: r.speed_mps,
                    course_deg: r.course_deg,
                    altitude_m: r.altitude_m,
                    accuracy_m: r.accuracy_m,
                    battery_pct: r.battery_pct,
                    flags: p.flags,
                    attributes: serde_json::to_string(&r.attributes).unwrap_or_else(|_| "{}".into()),
                    enrichment: serde_json::to_string(&view).unwrap_or_else(|_| "{}".into()),
                });
                units.push(item.unit_id.clone());
                job_acks.push(Ack { seq, flags: p.flags });
                seq += 1;
                if p.trusted() && p.flags & flags::OUT_OF_ORDER == 0 {
                    self.zone_check(
                        &r.device_id,
                        r.position,
                        fix_ms,
                        &mut seq,
                        &mut alert_rows,
                        &mut audit,
                        &mut publish,
                    );
                    if let Some(team) = &item.unit_id {
                        let fix = Some((Fix { position: r.position, time_ms: fix_ms }, r.accuracy_m));
                        self.adherence_check(&r.device_id, team, fix, fix_ms, &mut seq, &mut alert_rows, &mut publish);
                    }
                }
            }
            acks.push(Acks::Positions(job_acks));
        }
        let fence_id = |m: &Membership| self.enricher.fences().fences()[m.fence as usize].id.clone();
        let states: Vec<DeviceStateRow> = working
            .iter()
            .map(|(id, (t, last_seq))| DeviceStateRow {
                device_id: id.clone(),
                seq: *last_seq,
                trusted: t.last_trusted.map(|f| (f.time_ms, f.position.lon(), f.position.lat())),
                marked: t.last_marked.map(|f| (f.time_ms, f.position.lon(), f.position.lat())),
                fences: t
                    .fences
                    .iter()
                    .map(|m| StoredMembership { fence: fence_id(m), since_ms: m.since_ms, dwell_fired: m.dwell_fired })
                    .collect(),
            })
            .collect();
        let n = rows.len() + camera_rows.len();
        let prepared = started.elapsed();
        let batch = Batch {
            positions: &rows,
            states: &states,
            camera_events: &camera_rows,
            alerts: &alert_rows,
            audit: &audit,
            incidents: &incident_rows,
            incident_events: &incident_events,
            reports: &report_rows,
            route_plans: &plan_rows,
            route_events: &route_events,
            alert_acks: &ack_rows,
        };
        // An escalation tick with nothing due writes nothing: no transaction, no fsync.
        let empty = rows.is_empty()
            && states.is_empty()
            && camera_rows.is_empty()
            && alert_rows.is_empty()
            && audit.is_empty()
            && incident_rows.is_empty()
            && incident_events.is_empty()
            && report_rows.is_empty()
            && plan_rows.is_empty()
            && route_events.is_empty()
            && ack_rows.is_empty();
        // Dropping the unused transaction rolls it back and releases the lock.
        let result = if empty { Ok(()) } else { writing.commit(&batch).await };
        tracing::debug!(
            reports = rows.len(),
            camera_events = camera_rows.len(),
            alerts = alert_rows.len(),
            devices = states.len(),
            prepare_us = prepared.as_micros() as u64,
            write_us = (started.elapsed() - prepared).as_micros() as u64,
            "group commit"
        );
        match result {
            Ok(()) => {
                self.next_seq = seq;
                self.tracks.extend(working);
                incidents_after.retain(|_, i| i.state != "closed" && i.state != "cancelled");
                // A device that reported is no longer stale.
                for r in &rows {
                    self.stale.remove(&r.device_id);
                    if let Ok(p) = Position::new(r.lon, r.lat) {
                        self.last_heard.insert(r.device_id.clone(), (r.recv_ms, p));
                    }
                }
                self.incidents = incidents_after;
                self.route_heads = heads_after;
                self.corridors = corridors_of(&self.route_heads);
                // Serialise outside the lock; readers wait only for the inserts. The
                // view moves first, then the feed: see `live`'s module comment.
                let jsons: Vec<Arc<str>> = rows.iter().map(|r| Arc::from(report_json(r))).collect();
                let fresh: Vec<(String, LastReport)> = newest
                    .into_iter()
                    .map(|(id, i)| {
                        let r = &rows[i];
                        let last = LastReport {
                            seq: r.seq,
                            lon: r.lon,
                            lat: r.lat,
                            fix_ms: r.fix_ms,
                            trusted: r.flags & flags::UNTRUSTED == 0,
                            flags: r.flags,
                            unit_id: units[i].clone(),
                            json: jsons[i].clone(),
                        };
                        (id, last)
                    })
                    .collect();
                {
                    let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
                    live.devices.extend(fresh);
                    live.seq = seq - 1;
                }
                let zones = self.zones.clone();
                let zones = zones.read().unwrap_or_else(|e| e.into_inner());
                for p in publish {
                    match p {
                        Publish::Position(i) => {
                            let r = &rows[i];
                            let message = Arc::from(position_message(r.seq, &jsons[i]));
                            let tagged = zones.tagged_phone(&r.device_id);
                            let unit = units[i].clone();
                            self.hub.publish(FeedEvent::position(r.seq, r.lon, r.lat, unit, tagged, message));
                        }
                        Publish::Alert(e) | Publish::Incident(e) | Publish::Route(e) => self.hub.publish(e),
                    }
                }
                if !empty {
                    self.metrics.record_commit(rows.len(), started.elapsed());
                }
                for (job, a) in jobs.into_iter().zip(acks) {
                    // A client that went away before its ack is not an error: the
                    // events are committed either way.
                    let _ = job.reply.send(Ok(a));
                }
            }
            Err(e) => {
                self.restore_rule_state(rules_before);
                tracing::error!(error = %e, events = n, "group commit failed; nothing acknowledged");
                self.metrics.commit_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                fail(jobs, e);
            }
        }
    }

    /// The diversion a serious alert calls for: the team with a current plan whose
    /// member is nearest the alert (within [`DIVERSION_RADIUS_M`]) goes there by road,
    /// stays a few minutes, and comes back to where it left its route.
    fn diversion(&self, alert: &AlertRow, now_ms: i64) -> Option<RouteCommand> {
        let place = Position::new(alert.lon, alert.lat).ok()?;
        let (device, team, from, d) = self
            .tracks
            .iter()
            .filter_map(|(id, (t, _))| {
                let team = self.units.get(id).cloned().flatten()?;
                let fix = t.last_trusted?;
                if now_ms - fix.time_ms > UNIT_MAX_AGE_MS {
                    return None;
                }
                let head = self.route_heads.get(team.as_ref())?;
                (head.status != "superseded").then_some((
                    id.as_str(),
                    team,
                    fix.position,
                    fix.position.haversine_m(place),
                ))
            })
            .filter(|(.., d)| *d <= DIVERSION_RADIUS_M)
            .min_by(|a, b| a.3.total_cmp(&b.3).then(a.0.cmp(b.0)))?;
        let leg = |a: Position, b: Position| -> (Vec<[f64; 2]>, Option<f64>) {
            match self.travel.of(&team).route(a, b) {
                Some(r) => {
                    let mut line: Vec<[f64; 2]> = vec![[a.lon(), a.lat()]];
                    line.extend(r.geometry.iter().map(|p| [p.lon(), p.lat()]));
                    line.push([b.lon(), b.lat()]);
                    (line, Some(r.travel_s))
                }
                None => (vec![[a.lon(), a.lat()], [b.lon(), b.lat()]], None),
            }
        };
        let (mut line, there_s) = leg(from, place);
        let (back, back_s) = leg(place, from);
        line.extend(back.into_iter().skip(1));
        line.dedup();
        if line.len() < 2 {
            line.push([place.lon(), place.lat()]);
        }
        let arrive_ms = now_ms + (there_s.unwrap_or(d / 5.0) * 1000.0) as i64;
        // Where the team goes on once back: the route it left (the one a diversion left,
        // when diverted again), from its point nearest the place it left it. The
        // corridor of the diversion includes it, so going on is not leaving the plan.
        let resume = self.route_heads.get(team.as_ref()).map(|h| resume_line(h, from)).unwrap_or_default();
        let plan = serde_json::json!({
            "geometry": {"type": "LineString", "coordinates": line},
            "waypoints": [
                {"name": format!("alert {}", alert.seq), "lon": place.lon(), "lat": place.lat(),
                 "planned_time": crate::time_fmt::rfc3339_ms(arrive_ms), "dwell_s": DIVERSION_DWELL_S},
                {"name": "resume", "kind": "resume", "lon": from.lon(), "lat": from.lat(), "planned_time": serde_json::Value::Null, "dwell_s": serde_json::Value::Null},
            ],
            "resume_geometry": {"type": "LineString", "coordinates": resume},
            "figures": {"alert_seq": alert.seq, "distance_m": d.round(), "travel_there_s": there_s.map(f64::round),
                        "travel_back_s": back_s.map(f64::round), "nearest_member": device},
        });
        Some(RouteCommand::Push {
            team_id: team.to_string(),
            kind: "diversion".into(),
            reason: format!(
                "priority {} alert {} ({}): go to the place, then resume the route",
                alert.priority, alert.seq, alert.rule
            ),
            plan,
            anchor: from,
            actor: "server".into(),
            now_ms,
            unless_same_stops: false,
        })
    }

    fn rule_state(&self) -> RuleState {
        RuleState {
            dedup: self.dedup.clone(),
            storms: self.storms.clone(),
            sightings: self.sightings.clone(),
            zone_breaks: self.zone_breaks.clone(),
            stale: self.stale.clone(),
            adherence: self.adherence.clone(),
        }
    }

    fn restore_rule_state(&mut self, r: RuleState) {
        self.dedup = r.dedup;
        self.storms = r.storms;
        self.sightings = r.sightings;
        self.zone_breaks = r.zone_breaks;
        self.stale = r.stale;
        self.adherence = r.adherence;
    }

    /// A member's fix (or, without one, the clock) against the team's current plan:
    /// leaving the corridor, coming back, a checkpoint late or skipped become alerts for
    /// operators. The member starts afresh with each new version of the plan.
    #[allow(clippy::too_many_arguments)]
    fn adherence_check(
        &mut self,
        device_id: &str,
        team_id: &str,
        fix: Option<(Fix, Option<f64>)>,
        now_ms: i64,
        seq: &mut i64,
        alerts: &mut Vec<AlertRow>,
        publish: &mut Vec<Publish>,
    ) {
        // Devices registered after start-up: their team, for the clock's checks and for
        // diversions.
        if fix.is_some() && !self.units.contains_key(device_id) {
            self.units.insert(device_id.to_owned(), Some(Arc::from(team_id)));
        }
        // A member sent to an incident is where the command centre sent them, not off
        // route; back from it, they start afresh with the plan (and its time to join).
        let on_incident = self.incidents.values().any(|i| i.assigned_device.as_deref() == Some(device_id));
        let Some((plan_seq, corridor)) = self.corridors.get(team_id).cloned().filter(|_| !on_incident) else {
            self.adherence.remove(device_id);
            return;
        };
        let entry =
            self.adherence.entry(device_id.to_owned()).or_insert_with(|| (plan_seq, MemberAdherence::new(&corridor)));
        if entry.0 != plan_seq {
            *entry = (plan_seq, MemberAdherence::new(&corridor));
        }
        let events = match fix {
            Some((f, accuracy)) => entry.1.update(&corridor, f, accuracy),
            None => entry.1.tick(&corridor, now_ms),
        };
        let version = self.route_heads.get(team_id).map(|h| h.version);
        let position = fix.map(|(f, _)| f.position);
        for e in events {
            let (rule, priority, detail) = match e {
                AdherenceEvent::OffRoute { since_ms, distance_m, .. } => (
                    "route_off",
                    3,
                    serde_json::json!({"since": crate::time_fmt::rfc3339_ms(since_ms), "distance_m": distance_m.round()}),
                ),
                AdherenceEvent::BackOnRoute { distance_m, .. } => {
                    ("route_back", 4, serde_json::json!({"distance_m": distance_m.round()}))
                }
                AdherenceEvent::CheckpointLate { checkpoint, deadline_ms } => (
                    "checkpoint_late",
                    3,
                    serde_json::json!({"checkpoint": checkpoint, "deadline": crate::time_fmt::rfc3339_ms(deadline_ms)}),
                ),
                AdherenceEvent::CheckpointSkipped { checkpoint, .. } => {
                    ("checkpoint_skipped", 3, serde_json::json!({"checkpoint": checkpoint}))
                }
                AdherenceEvent::CheckpointVisited { .. } | AdherenceEvent::CheckpointDeparted { .. } => continue,
            };
            let at = position
                .or_else(|| self.last_heard.get(device_id).map(|(_, p)| *p))
                .or_else(|| corridor.checkpoints().first().map(|c| c.position));
            let Some(at) = at else { continue };
            let fields = serde_json::json!({
                "device_id": device_id, "team_id": team_id, "plan_version": version, "adherence": detail,
            });
            let alert = NewAlert {
                rule,
                priority,
                position: at,
                time_ms: now_ms,
                camera_id: None,
                event_seq: None,
                roles: vec!["operator".to_owned()],
                fields,
            };
            self.raise(alert, seq, alerts, publish);
        }
    }

    /// Numbers an alert, adds its place (township, grid, post, nearest posts) and the
    /// fields every alert carries, and queues it for the commit and the feed.
    fn raise(&self, a: NewAlert, seq: &mut i64, alerts: &mut Vec<AlertRow>, publish: &mut Vec<Publish>) -> i64 {
        let alert_seq = *seq;
        *seq += 1;
        let place = self.enricher.view(&self.enricher.enrich(a.position), &[], &[]);
        let township = place.township.map(|t| t.name.to_owned());
        let (lon, lat) = (a.position.lon(), a.position.lat());
        let mut data = serde_json::json!({
            "seq": alert_seq,
            "rule": a.rule,
            "priority": a.priority,
            "time": crate::time_fmt::rfc3339_ms(a.time_ms),
            "lon": lon,
            "lat": lat,
            "place": place,
        });
        if let (Some(d), serde_json::Value::Object(fields)) = (data.as_object_mut(), a.fields) {
            d.extend(fields);
        }
        let message = format!("{{\"type\":\"alert\",\"seq\":{alert_seq},\"data\":{data}}}");
        let roles: Arc<[String]> = a.roles.clone().into();
        alerts.push(AlertRow {
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
        publish.push(Publish::Alert(FeedEvent::alert(alert_seq, lon, lat, roles, Arc::from(message))));
        alert_seq
    }

    /// The acknowledgement a report already got, when it repeats the device's last kept
    /// report (same fix time and place): in this batch, else in the live view. A report
    /// without its own time is never a repeat (its time is when it arrived).
    fn repeat_of(
        &self,
        r: &liandong_ingest::Report,
        newest: &HashMap<String, usize>,
        rows: &[PositionRow],
    ) -> Option<Ack> {
        let t = r.fix_time_ms?;
        let same = |fix_ms: i64, lon: f64, lat: f64| fix_ms == t && lon == r.position.lon() && lat == r.position.lat();
        if let Some(&i) = newest.get(&r.device_id) {
            let row = &rows[i];
            return same(row.fix_ms, row.lon, row.lat).then_some(Ack { seq: row.seq, flags: row.flags });
        }
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        let last = live.devices.get(&r.device_id)?;
        same(last.fix_ms, last.lon, last.lat).then_some(Ack { seq: last.seq, flags: last.flags })
    }

    /// Alerts operators once about each unit whose last trusted fix went stale.
    fn stale_units(&mut self, now_ms: i64, seq: &mut i64, alerts: &mut Vec<AlertRow>, publish: &mut Vec<Publish>) {
        let mut stale: Vec<(String, i64, Position)> = self
            .last_heard
            .iter()
            .filter(|(id, (heard, _))| now_ms - heard > self.stale_unit_ms && !self.stale.contains(*id))
            .map(|(id, (heard, p))| (id.clone(), *heard, *p))
            .collect();
        stale.sort_by(|a, b| a.0.cmp(&b.0));
        for (device, heard_ms, position) in stale {
            let fields = serde_json::json!({
                "device_id": device,
                "last_heard": crate::time_fmt::rfc3339_ms(heard_ms),
                "silent_min": (now_ms - heard_ms) / 60_000,
            });
            let alert = NewAlert {
                rule: "stale_unit",
                priority: 3,
                position,
                time_ms: now_ms,
                camera_id: None,
                event_seq: None,
                roles: vec!["operator".to_owned()],
                fields,
            };
            self.raise(alert, seq, alerts, publish);
            // Remembered now; a failed commit re-raises them at the next tick, which is
            // what the operator needs anyway.
            self.stale.insert(device);
        }
    }

    /// Tells operators each camera storm that has calmed down, with how many alerts it
    /// swallowed (the reads themselves are all stored).
    fn storms_ended(&mut self, now_ms: i64, seq: &mut i64, alerts: &mut Vec<AlertRow>, publish: &mut Vec<Publish>) {
        for end in self.storms.ended(now_ms) {
            let Some(camera) = self.cameras.get(&end.camera_id).cloned() else { continue };
            let fields = serde_json::json!({
                "camera": camera_json(&camera),
                "storm": {"began": crate::time_fmt::rfc3339_ms(end.began_ms), "last": crate::time_fmt::rfc3339_ms(end.last_ms),
                          "suppressed": end.suppressed, "ended": true},
            });
            let alert = NewAlert {
                rule: "camera_storm_end",
                priority: 4,
                position: camera.position,
                time_ms: now_ms,
                camera_id: Some(camera.id.clone()),
                event_seq: None,
                roles: vec!["operator".to_owned()],
                fields,
            };
            self.raise(alert, seq, alerts, publish);
        }
    }

    /// A grid member's report goes on the live feed as an alert for those who review it
    /// (and, for a dispute, the mediation centre's partners). Returns the report's id.
    fn report(
        &self,
        r: &GridReport,
        position: Position,
        seq: &mut i64,
        alerts: &mut Vec<AlertRow>,
        publish: &mut Vec<Publish>,
    ) -> i64 {
        let (priority, mut roles) = match r.category.as_str() {
            "fire" => (1, vec!["operator".to_owned()]),
            "dispute" => (3, vec!["operator".to_owned(), "partner".to_owned()]),
            "other" => (4, vec!["operator".to_owned()]),
            _ => (3, vec!["operator".to_owned()]),
        };
        roles.push("admin".to_owned());
        let id = *seq;
        let fields = serde_json::json!({
            "report": {"report_id": id, "category": r.category, "text": r.text, "reporter": r.reporter,
                       "reported": crate::time_fmt::rfc3339_ms(r.time_ms), "photos": r.photo_urls,
                       "mediation_case_id": (r.category == "dispute").then_some(id)},
        });
        let alert = NewAlert {
            rule: "grid_report",
            priority,
            position,
            time_ms: r.recv_ms,
            camera_id: None,
            event_seq: None,
            roles,
            fields,
        };
        self.raise(alert, seq, alerts, publish)
    }

    /// Zone rules of a tagged person's phone: an alert for the person's roles when a
    /// (rule, fence) break starts, audited like any sighting; nothing while it lasts.
    #[allow(clippy::too_many_arguments)]
    fn zone_check(
        &mut self,
        device_id: &str,
        position: Position,
        t_ms: i64,
        seq: &mut i64,
        alerts: &mut Vec<AlertRow>,
        audit: &mut Vec<AuditEntry>,
        publish: &mut Vec<Publish>,
    ) {
        let Some(z) = self.zones.read().unwrap_or_else(|e| e.into_inner()).device(device_id) else { return };
        let now = liandong_core::zone::violations(&z.rules, self.enricher.fences(), position, t_ms);
        let before = self.zone_breaks.len();
        self.zone_breaks.retain(|(p, r, f)| p != &z.person_id || now.contains(&(*r, *f)));
        let ended = before - self.zone_breaks.len();
        for (rule, fence) in now {
            if !self.zone_breaks.insert((z.person_id.clone(), rule, fence)) {
                continue;
            }
            let f = &self.enricher.fences().fences()[fence as usize];
            let fields = serde_json::json!({
                "person": {"person_id": z.person_id, "name": z.name},
                "device_id": device_id,
                "zone": {"rule": z.rule_text[rule], "fence": f.id, "fence_name": f.name, "source": "device"},
            });
            let alert = NewAlert {
                rule: "tagged_zone",
                priority: 2,
                position,
                time_ms: t_ms,
                camera_id: None,
                event_seq: None,
                roles: z.roles.clone(),
                fields,
            };
            let alert_seq = self.raise(alert, seq, alerts, publish);
            audit.push(AuditEntry {
                at_ms: t_ms,
                actor: format!("device:{device_id}"),
                action: "tagged_person_seen".into(),
                subject: z.person_id.clone(),
                detail: format!("alert {alert_seq}: inside {} ({})", f.name, z.rule_text[rule]),
            });
        }
        if ended > 0 {
            tracing::debug!(person = %z.person_id, ended, "zone rule breaks ended");
        }
    }

    /// The rules on one camera push: store it; a watch-list hit that is not a repeat
    /// raises an alert with the camera's place, the nearest posts and the nearest
    /// available units, and the track the value's sightings make across cameras. A
    /// camera in a storm raises one storm alert instead of many.
    fn camera(
        &mut self,
        item: &CameraItem,
        seq: &mut i64,
        events: &mut Vec<CameraEventRow>,
        alerts: &mut Vec<AlertRow>,
        audit: &mut Vec<AuditEntry>,
        publish: &mut Vec<Publish>,
    ) -> CameraAck {
        let e = &item.event;
        let cam = &item.camera;
        self.cameras.insert(cam.id.clone(), cam.clone());
        let time_ms = e.time_ms.unwrap_or(item.recv_ms);
        let plate = e.plate.as_ref().and_then(|p| p.normalized.clone());
        let person = e.face.as_ref().and_then(|f| f.person_id.clone());
        let kind = match e.kind {
            EventKind::Anpr => "anpr",
            EventKind::Face => "face",
            EventKind::Heartbeat => "heartbeat",
            EventKind::Other => "other",
        };
        let event_seq = *seq;
        *seq += 1;
        events.push(CameraEventRow {
            seq: event_seq,
            camera_id: cam.id.clone(),
            event_type: e.event_type.clone(),
            kind,
            active: e.state_active,
            active_post_count: e.active_post_count.map(i64::from),
            time_ms,
            recv_ms: item.recv_ms,
            plate: plate.clone(),
            person_id: person.clone(),
            payload: serde_json::json!({"event": e, "images": item.images}).to_string(),
        });
        let no_alert = CameraAck { seq: event_seq, alert_seq: None };
        // A push the camera repeats (activePostCount above 1) is the same alarm.
        let repeat = e.active_post_count.is_some_and(|c| c > 1);
        let read = match (&plate, &person) {
            (Some(p), _) => Some((WatchKind::Plate, p.as_str())),
            (None, Some(f)) => Some((WatchKind::Person, f.as_str())),
            (None, None) => None,
        };
        let Some((watch_kind, value)) = read.filter(|_| e.state_active && !repeat) else { return no_alert };
        let hit = {
            let w = self.watchlist.read().unwrap_or_else(|e| e.into_inner());
            w.hit(watch_kind, value, time_ms).cloned()
        };
        let Some(hit) = hit else { return no_alert };
        // Every sighting of a watched value extends its track, alert or not.
        let sighting = Sighting { time_ms, camera_id: cam.id.clone(), position: cam.position };
        let track = self.sightings.record(&track_key(watch_kind, value), sighting);
        if !self.dedup.admit(&cam.id, value, time_ms) {
            return no_alert;
        }
        let tagged = hit.id.starts_with(crate::cameras::TAGGED_WATCH_PREFIX);
        // A tagged person inside a forbidden zone at a forbidden hour makes the sighting
        // a zone alert.
        let zone = if tagged && watch_kind == WatchKind::Person {
            let z = self.zones.read().unwrap_or_else(|e| e.into_inner()).person(value);
            z.and_then(|z| {
                let (rule, fence) =
                    *liandong_core::zone::violations(&z.rules, self.enricher.fences(), cam.position, time_ms).first()?;
                let f = &self.enricher.fences().fences()[fence as usize];
                Some(serde_json::json!({"rule": z.rule_text[rule], "fence": f.id, "fence_name": f.name, "source": "camera"}))
            })
        } else {
            None
        };
        let priority = if zone.is_some() { i64::from(hit.priority).min(2) } else { i64::from(hit.priority) };
        // Priority 1 hits always pass: a storm must not hide the one that matters.
        // Storms are judged by receive time: the rate at which alerts reach people, and
        // the clock the ticker that ends storms reads.
        if priority > 1 {
            match self.storms.check(&cam.id, item.recv_ms) {
                StormVerdict::Pass => {}
                StormVerdict::Suppressed => return no_alert,
                StormVerdict::Begins { alerts_in_window } => {
                    let fields = serde_json::json!({
                        "camera": camera_json(cam),
                        "storm": {"alerts_in_window": alerts_in_window,
                                  "note": "further alerts from this camera are held back (priority 1 still passes); every read is stored"},
                    });
                    let alert = NewAlert {
                        rule: "camera_storm",
                        priority: 2,
                        position: cam.position,
                        time_ms,
                        camera_id: Some(cam.id.clone()),
                        event_seq: Some(event_seq),
                        roles: vec!["operator".to_owned(), "admin".to_owned()],
                        fields,
                    };
                    self.raise(alert, seq, alerts, publish);
                    return no_alert;
                }
            }
        }
        let busy: std::collections::HashSet<&str> =
            self.incidents.values().filter_map(|i| i.assigned_device.as_deref()).collect();
        let nearest: Vec<serde_json::Value> = {
            let zones = self.zones.read().unwrap_or_else(|e| e.into_inner());
            let fixes = self
                .tracks
                .iter()
                .filter(|(id, _)| !busy.contains(id.as_str()) && !zones.is_tagged_device(id))
                .filter_map(|(id, (t, _))| Some((id.as_str(), t.last_trusted?)));
            nearest_units(fixes, cam.position, time_ms.max(item.recv_ms), UNIT_MAX_AGE_MS, NEAREST_UNITS)
                .into_iter()
                .map(|(id, d)| serde_json::json!({"device_id": id, "distance_m": (d * 10.0).round() / 10.0}))
                .collect()
        };
        let rule = match (watch_kind, zone.is_some()) {
            (_, true) => "tagged_zone",
            (WatchKind::Plate, _) => "watchlist_plate",
            (WatchKind::Person, _) => "watchlist_person",
        };
        let mut fields = serde_json::json!({
            "camera": camera_json(cam),
            "read": {"kind": watch_kind.as_str(), "value": value, "event_seq": event_seq, "event": e},
            "images": item.images,
            "watch": {"id": hit.id, "reason": hit.reason},
            "nearest_units": nearest,
            "track": track_json(&track),
        });
        if let (Some(f), Some(z)) = (fields.as_object_mut(), zone) {
            f.insert("zone".into(), z);
        }
        let alert = NewAlert {
            rule,
            priority,
            position: cam.position,
            time_ms,
            camera_id: Some(cam.id.clone()),
            event_seq: Some(event_seq),
            roles: hit.roles.clone(),
            fields,
        };
        let alert_seq = self.raise(alert, seq, alerts, publish);
        if tagged {
            // A tagged person seen by a camera is a read of their whereabouts: audited in
            // the same transaction as the alert.
            audit.push(AuditEntry {
                at_ms: item.recv_ms,
                actor: format!("camera:{}", cam.id),
                action: "tagged_person_seen".into(),
                subject: value.to_owned(),
                detail: format!("alert {alert_seq} at {} for roles {}", cam.name, hit.roles.join(",")),
            });
        }
        CameraAck { seq: event_seq, alert_seq: Some(alert_seq) }
    }
}

fn camera_json(cam: &CameraInfo) -> serde_json::Value {
    serde_json::json!({"id": cam.id, "name": cam.name, "kind": cam.kind, "lon": cam.position.lon(), "lat": cam.position.lat()})
}

/// A fused track as clients see it: a GeoJSON LineString's coordinates with the time
/// and camera of each point, the last place, heading and speed.
pub fn track_json(t: &Track) -> serde_json::Value {
    let last = t.last();
    serde_json::json!({
        "coordinates": t.points.iter().map(|p| [p.position.lon(), p.position.lat()]).collect::<Vec<_>>(),
        "times": t.points.iter().map(|p| crate::time_fmt::rfc3339_ms(p.time_ms)).collect::<Vec<_>>(),
        "cameras": t.points.iter().map(|p| p.camera_id.as_str()).collect::<Vec<_>>(),
        "last": {"camera_id": last.camera_id, "lon": last.position.lon(), "lat": last.position.lat(),
                 "time": crate::time_fmt::rfc3339_ms(last.time_ms)},
        "heading_deg": t.heading_deg.map(|h| (h * 10.0).round() / 10.0),
        "heading": t.heading,
        "speed_kmh": t.speed_kmh.map(|v| (v * 10.0).round() / 10.0),
        "length_m": (t.length_m * 10.0).round() / 10.0,
    })
}

/// The rules' memory, saved before a batch is prepared.
struct RuleState {
    dedup: Dedup,
    storms: StormGuard,
    sightings: TrackBook,
    zone_breaks: std::collections::HashSet<(String, usize, u32)>,
    stale: std::collections::HashSet<String>,
    adherence: HashMap<String, (i64, MemberAdherence)>,
}

/// An event another instance committed.
enum Caught {
    Position(PositionRow),
    Alert(AlertRow),
    Incident(IncidentEventRow),
    Route(RouteEventRow),
    AlertAck(AlertAckRow),
}

/// Something committed in this batch, to publish once the commit returns.
enum Publish {
    /// Index into the batch's position rows.
    Position(usize),
    Alert(FeedEvent),
    Incident(FeedEvent),
    Route(FeedEvent),
}

fn state_name(s: IncidentState) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn parse_state(s: &str) -> Option<IncidentState> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

fn escalation_name(e: Escalation) -> &'static str {
    match e {
        Escalation::None => "none",
        Escalation::PostLeader => "post_leader",
        Escalation::CommandCentre => "command_centre",
    }
}

fn parse_escalation(s: &str) -> Escalation {
    match s {
        "post_leader" => Escalation::PostLeader,
        "command_centre" => Escalation::CommandCentre,
        _ => Escalation::None,
    }
}

/// Records one incident event: the timeline row, the new incident row and the feed
/// message (visible to operators and to the assigned unit).
#[allow(clippy::too_many_arguments)]
fn incident_event(
    inc: &IncidentRow,
    action: &str,
    from: Option<&str>,
    actor: &str,
    note: String,
    at_ms: i64,
    seq: &mut i64,
    rows: &mut Vec<IncidentRow>,
    events: &mut Vec<IncidentEventRow>,
    publish: &mut Vec<Publish>,
) {
    let s = *seq;
    *seq += 1;
    let data = serde_json::json!({
        "incident": inc,
        "event": {"seq": s, "action": action, "from": from, "to": inc.state, "actor": actor, "note": note,
                  "time": crate::time_fmt::rfc3339_ms(at_ms)},
    });
    let message = format!("{{\"type\":\"incident\",\"seq\":{s},\"data\":{data}}}");
    events.push(IncidentEventRow {
        seq: s,
        incident_id: inc.incident_id,
        at_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        from_state: from.map(str::to_owned),
        to_state: inc.state.clone(),
        note,
        lon: inc.lon,
        lat: inc.lat,
        unit_id: inc.assigned_unit.clone(),
        payload: message.clone(),
    });
    rows.retain(|r| r.incident_id != inc.incident_id);
    rows.push(inc.clone());
    let unit = inc.assigned_unit.as_deref().map(Arc::from);
    publish.push(Publish::Incident(FeedEvent::incident(s, inc.lon, inc.lat, unit, Arc::from(message))));
}

/// How far back a restart looks for the stale-unit alerts it must not raise again.
const STALE_MEMORY_MS: i64 = 7 * 24 * 3600 * 1000;

/// The units whose present silence the operators were already told of: a `stale_unit`
/// alert of the last week at or after the unit's last report. Rebuilt at start, so that a
/// restart does not report every silent unit again (one alert per silence, restart or
/// not); a unit that fell silent while the server was down is still reported.
async fn told_stale(
    store: &Store,
    last_heard: &HashMap<String, (i64, Position)>,
    now_ms: i64,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let alerts = store.alerts_in(liandong_store::Bbox::ALL, now_ms - STALE_MEMORY_MS, i64::MAX, u32::MAX).await?;
    let mut told = std::collections::HashSet::new();
    for a in alerts.iter().filter(|a| a.rule == "stale_unit") {
        let message: serde_json::Value = serde_json::from_str(&a.payload).unwrap_or_default();
        let Some(device) = message["data"]["device_id"].as_str() else { continue };
        if last_heard.get(device).is_some_and(|(heard_ms, _)| a.time_ms >= *heard_ms) {
            told.insert(device.to_owned());
        }
    }
    Ok(told)
}

/// What an incident command did.
#[derive(Debug, Default)]
pub struct IncidentDone {
    /// The incident after the command (none for a tick).
    pub incident: Option<IncidentRow>,
    /// A create that found its alert already an open incident, and answered that one.
    pub existing: bool,
}

/// The incident rules: creation, the life-cycle steps (checked by the domain), who may
/// take them, and escalation of late steps.
fn incident_command(
    cmd: &IncidentCommand,
    enricher: &Enricher,
    incidents: &mut HashMap<i64, IncidentRow>,
    seq: &mut i64,
    rows: &mut Vec<IncidentRow>,
    events: &mut Vec<IncidentEventRow>,
    publish: &mut Vec<Publish>,
) -> Result<IncidentDone, String> {
    match cmd {
        IncidentCommand::Create { title, kind, priority, position, alert_seq, actor, now_ms } => {
            // One alert, one open incident: two operators opening the same alert from two
            // screens (or two accepts of one grid report) get the incident opened first.
            if let Some(a) = alert_seq {
                if let Some(open) = incidents.values().filter(|i| i.alert_seq == Some(*a)).min_by_key(|i| i.incident_id)
                {
                    return Ok(IncidentDone { incident: Some(open.clone()), existing: true });
                }
            }
            let township = enricher.view(&enricher.enrich(*position), &[], &[]).township.map(|t| t.name.to_owned());
            let inc = IncidentRow {
                incident_id: *seq,
                title: title.clone(),
                priority: i64::from(*priority),
                state: state_name(IncidentState::New),
                lon: position.lon(),
                lat: position.lat(),
                alert_seq: *alert_seq,
                assigned_device: None,
                assigned_unit: None,
                created_ms: *now_ms,
                state_since_ms: *now_ms,
                escalation: "none".into(),
                kind: kind.clone(),
                township,
            };
            incident_event(&inc, "create", None, actor, String::new(), *now_ms, seq, rows, events, publish);
            incidents.insert(inc.incident_id, inc.clone());
            Ok(IncidentDone { incident: Some(inc), existing: false })
        }
        IncidentCommand::Act { incident_id, action, actor, actor_device, assign, note, now_ms } => {
            let inc = incidents.get_mut(incident_id).ok_or_else(|| format!("no open incident {incident_id}"))?;
            if let Some(device) = actor_device {
                if inc.assigned_device.as_deref() != Some(device.as_str()) {
                    return Err(format!("incident {incident_id} is not assigned to device {device}"));
                }
            }
            let from = parse_state(&inc.state).ok_or_else(|| format!("incident {incident_id} has an unknown state"))?;
            let to = from.after(*action)?;
            if *action == Action::Dispatch {
                let (device, unit) = assign.clone().ok_or("a dispatch names the device to send")?;
                inc.assigned_device = Some(device);
                inc.assigned_unit = unit;
            }
            let from_name = inc.state.clone();
            inc.state = state_name(to);
            inc.state_since_ms = *now_ms;
            inc.escalation = "none".into();
            let verb =
                serde_json::to_value(action).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let inc = inc.clone();
            incident_event(&inc, &verb, Some(&from_name), actor, note.clone(), *now_ms, seq, rows, events, publish);
            Ok(IncidentDone { incident: Some(inc), existing: false })
        }
        IncidentCommand::Tick { now_ms } => {
            let mut ids: Vec<i64> = incidents.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let Some(inc) = incidents.get_mut(&id) else { continue };
                let Some(state) = parse_state(&inc.state) else { continue };
                let due = escalation_due(state, u8::try_from(inc.priority).unwrap_or(5), inc.state_since_ms, *now_ms);
                if due > parse_escalation(&inc.escalation) {
                    inc.escalation = escalation_name(due).into();
                    let late_s = (*now_ms - inc.state_since_ms) / 1000;
                    let note = format!("{} for {late_s} s: escalated to {}", inc.state, escalation_name(due));
                    let inc = inc.clone();
                    let state = inc.state.clone();
                    incident_event(&inc, "escalate", Some(&state), "server", note, *now_ms, seq, rows, events, publish);
                }
            }
            Ok(IncidentDone::default())
        }
    }
}

/// Each team's current plan as a corridor: its geometry, and its waypoints as
/// checkpoints (50 m radius, the waypoint's dwell, its planned time if any). A plan
/// whose geometry cannot make a corridor is left out (and measured against nothing).
fn corridors_of(heads: &HashMap<String, RoutePlanRow>) -> HashMap<String, (i64, Arc<Corridor>)> {
    let config = AdherenceConfig::default();
    heads
        .iter()
        .filter(|(_, h)| h.status != "superseded")
        .filter_map(|(team, h)| {
            let plan: serde_json::Value = serde_json::from_str(&h.plan).ok()?;
            // A diversion's corridor goes on along the route the team resumes.
            let line: Vec<Position> = plan["geometry"]["coordinates"]
                .as_array()?
                .iter()
                .chain(plan["resume_geometry"]["coordinates"].as_array().into_iter().flatten())
                .filter_map(|c| Position::new(c[0].as_f64()?, c[1].as_f64()?).ok())
                .collect();
            let checkpoints: Vec<PlannedCheckpoint> = plan["waypoints"]
                .as_array()
                .map(|w| {
                    w.iter()
                        // Where a diversion resumes is where the team already is: a
                        // place to go on from, not a checkpoint to visit.
                        .filter(|w| w["kind"] != "resume")
                        .filter_map(|w| {
                            let position = Position::new(w["lon"].as_f64()?, w["lat"].as_f64()?).ok()?;
                            let planned =
                                w["planned_time"].as_str().and_then(|t| liandong_ingest::parse_timestamp(t).ok());
                            Some(PlannedCheckpoint {
                                position,
                                radius_m: 50.0,
                                min_dwell_s: w["dwell_s"].as_f64().unwrap_or(0.0),
                                planned_arrival_ms: planned.unwrap_or(i64::MAX / 2),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let corridor = Corridor::new(&line, checkpoints, None, &config).ok()?;
            Some((team.clone(), (h.plan_seq, Arc::new(corridor))))
        })
        .collect()
}

/// The line a team resumes after a diversion: the current plan's (or, when that is a
/// diversion, the line it resumes), turned to start at its vertex nearest `from`, where
/// the team leaves it. A loop goes all the way round from there.
fn resume_line(head: &RoutePlanRow, from: Position) -> Vec<[f64; 2]> {
    let Ok(plan) = serde_json::from_str::<serde_json::Value>(&head.plan) else { return Vec::new() };
    let key = if head.kind == "diversion" { "resume_geometry" } else { "geometry" };
    let line: Vec<[f64; 2]> = plan[key]["coordinates"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| Some([c[0].as_f64()?, c[1].as_f64()?])).collect())
        .unwrap_or_default();
    let nearest = line
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, Position::new(c[0], c[1]).ok()?.haversine_m(from))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    let closed = line.len() > 2 && line.first() == line.last();
    if closed {
        // Round the loop from the nearest vertex back to it.
        let ring = &line[..line.len() - 1];
        let mut out: Vec<[f64; 2]> =
            ring[nearest % ring.len()..].iter().chain(&ring[..nearest % ring.len()]).copied().collect();
        out.push(out[0]);
        out
    } else {
        // An open line is walked both ways: on from the nearest vertex to its end, then
        // back along all of it.
        let mut out: Vec<[f64; 2]> = line[nearest..].to_vec();
        out.extend(line.iter().rev().skip(1));
        out
    }
}

/// How near a serious alert a team's member must be for the team to be diverted, and
/// how long the diversion plans to stay at the place.
const DIVERSION_RADIUS_M: f64 = 3000.0;
const DIVERSION_DWELL_S: u32 = 300;

/// Why a push `unless_same_stops` was refused.
pub const UNCHANGED_PLAN: &str = "the plan is unchanged";

/// A pending plan not acknowledged this long escalates to the post leader, and at twice
/// this to the command centre.
pub const ROUTE_ACK_S: i64 = 120;

/// Records one route event: the event row, the plan row as it is now, and the feed
/// message (to operators and the team).
#[allow(clippy::too_many_arguments)]
fn route_event(
    plan: &RoutePlanRow,
    action: &str,
    actor: &str,
    note: &str,
    at_ms: i64,
    seq: &mut i64,
    plans: &mut Vec<RoutePlanRow>,
    events: &mut Vec<RouteEventRow>,
    publish: &mut Vec<Publish>,
) {
    let s = *seq;
    *seq += 1;
    let body = serde_json::from_str::<serde_json::Value>(&plan.plan).unwrap_or_default();
    let mut row = serde_json::to_value(plan).unwrap_or_default();
    if let Some(r) = row.as_object_mut() {
        r.insert("plan".into(), body);
    }
    let data = serde_json::json!({
        "plan": row,
        "event": {"seq": s, "action": action, "actor": actor, "note": note, "time": crate::time_fmt::rfc3339_ms(at_ms)},
    });
    let message = format!("{{\"type\":\"route\",\"seq\":{s},\"data\":{data}}}");
    events.push(RouteEventRow {
        seq: s,
        plan_seq: plan.plan_seq,
        team_id: plan.team_id.clone(),
        at_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        lon: plan.lon,
        lat: plan.lat,
        payload: message.clone(),
    });
    plans.push(plan.clone());
    let team = Some(Arc::from(plan.team_id.as_str()));
    publish.push(Publish::Route(FeedEvent::route(s, plan.lon, plan.lat, team, Arc::from(message))));
}

/// The route rules: a push makes a new version (superseding a pending one); an
/// acknowledgement must name the team's newest pending version.
fn route_command(
    cmd: &RouteCommand,
    heads: &mut HashMap<String, RoutePlanRow>,
    seq: &mut i64,
    plans: &mut Vec<RoutePlanRow>,
    events: &mut Vec<RouteEventRow>,
    publish: &mut Vec<Publish>,
) -> Result<RoutePlanRow, String> {
    match cmd {
        RouteCommand::Push { team_id, kind, reason, plan, anchor, actor, now_ms, unless_same_stops } => {
            if *unless_same_stops {
                let stops = |p: &serde_json::Value| -> Vec<String> {
                    p["waypoints"]
                        .as_array()
                        .map(|w| w.iter().filter_map(|w| w["id"].as_str().map(str::to_owned)).collect())
                        .unwrap_or_default()
                };
                let same =
                    heads.get(team_id).filter(|h| h.status != "superseded" && &h.kind == kind).is_some_and(|h| {
                        serde_json::from_str::<serde_json::Value>(&h.plan).is_ok_and(|old| stops(&old) == stops(plan))
                    });
                if same {
                    return Err(UNCHANGED_PLAN.into());
                }
            }
            let version = heads.get(team_id).map_or(1, |h| h.version + 1);
            if let Some(old) = heads.get_mut(team_id).filter(|h| h.status == "pending") {
                old.status = "superseded".into();
                let old = old.clone();
                let note = format!("replaced by version {version}");
                route_event(&old, "supersede", actor, &note, *now_ms, seq, plans, events, publish);
            }
            let row = RoutePlanRow {
                plan_seq: *seq,
                team_id: team_id.clone(),
                version,
                kind: kind.clone(),
                reason: reason.clone(),
                created_ms: *now_ms,
                created_by: actor.clone(),
                plan: plan.to_string(),
                lon: anchor.lon(),
                lat: anchor.lat(),
                status: "pending".into(),
                acked_ms: None,
                acked_by: None,
                escalation: "none".into(),
            };
            route_event(&row, "push", actor, reason, *now_ms, seq, plans, events, publish);
            heads.insert(team_id.clone(), row.clone());
            Ok(row)
        }
        RouteCommand::Ack { team_id, version, actor, now_ms } => {
            let head = heads.get_mut(team_id).ok_or_else(|| format!("team {team_id} has no route plan"))?;
            if head.version != *version {
                return Err(format!(
                    "version {version} is not team {team_id}'s current plan (version {})",
                    head.version
                ));
            }
            if head.status != "pending" {
                return Err(format!("version {version} is already {}", head.status));
            }
            head.status = "acknowledged".into();
            head.acked_ms = Some(*now_ms);
            head.acked_by = Some(actor.clone());
            let head = head.clone();
            route_event(&head, "ack", actor, "", *now_ms, seq, plans, events, publish);
            Ok(head)
        }
    }
}

/// Escalates pending plans nobody acknowledged in time: to the post leader after
/// [`ROUTE_ACK_S`], to the command centre after twice that.
fn route_escalations(
    now_ms: i64,
    heads: &mut HashMap<String, RoutePlanRow>,
    seq: &mut i64,
    plans: &mut Vec<RoutePlanRow>,
    events: &mut Vec<RouteEventRow>,
    publish: &mut Vec<Publish>,
) {
    let mut teams: Vec<String> = heads.keys().cloned().collect();
    teams.sort_unstable();
    for team in teams {
        let Some(h) = heads.get_mut(&team).filter(|h| h.status == "pending") else { continue };
        let waited_s = (now_ms - h.created_ms) / 1000;
        let due = if waited_s >= 2 * ROUTE_ACK_S {
            "command_centre"
        } else if waited_s >= ROUTE_ACK_S {
            "post_leader"
        } else {
            continue;
        };
        if h.escalation == due || h.escalation == "command_centre" {
            continue;
        }
        h.escalation = due.into();
        let h = h.clone();
        let note = format!("not acknowledged for {waited_s} s: escalated to {due}");
        route_event(&h, "escalate", "server", &note, now_ms, seq, plans, events, publish);
    }
}

fn datum_name(d: liandong_core::Datum) -> &'static str {
    match d {
        liandong_core::Datum::Wgs84 => "wgs84",
        liandong_core::Datum::Gcj02 => "gcj02",
        liandong_core::Datum::Bd09 => "bd09",
    }
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
pub fn report_json(row: &PositionRow) -> String {
    // Both columns are only ever written from serialised JSON; an unreadable one is
    // shown as an empty object rather than failing the whole report.
    let empty = || serde_json::from_str::<&RawValue>("{}").ok();
    let (Some(attributes), Some(enrichment)) = (
        serde_json::from_str::<&RawValue>(&row.attributes).ok().or_else(empty),
        serde_json::from_str::<&RawValue>(&row.enrichment).ok().or_else(empty),
    ) else {
        return "null".into();
    };
    let v = ReportView {
        seq: row.seq,
        device_id: &row.device_id,
        fix_time: crate::time_fmt::rfc3339_ms(row.fix_ms),
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
    serde_json::to_string(&v).unwrap_or_else(|_| "null".into())
}

/// Answers every job with the store's error: nothing of theirs was acknowledged.
fn fail(jobs: Vec<Job>, e: StoreError) {
    let e = Arc::new(e);
    for job in jobs {
        let _ = job.reply.send(Err(e.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(team: &str, now_ms: i64) -> RouteCommand {
        RouteCommand::Push {
            team_id: team.into(),
            kind: "plan".into(),
            reason: "r".into(),
            plan: serde_json::json!({}),
            anchor: Position::new(107.2, 30.7).unwrap(),
            actor: "op".into(),
            now_ms,
            unless_same_stops: false,
        }
    }

    /// Two instances re-planning at once (or a re-plan that changes nothing) push one
    /// version: the second push with the same stops is refused in sequence.
    #[test]
    fn a_push_unless_same_stops_is_refused_when_the_stops_are_the_same() {
        let mut heads = HashMap::new();
        let (mut seq, mut plans, mut events, mut publish) = (1, Vec::new(), Vec::new(), Vec::new());
        let mut run = |cmd: &RouteCommand, heads: &mut HashMap<String, RoutePlanRow>| {
            route_command(cmd, heads, &mut seq, &mut plans, &mut events, &mut publish)
        };
        let replan = |stops: &[&str], kind: &str| {
            let waypoints: Vec<serde_json::Value> = stops.iter().map(|id| serde_json::json!({"id": id})).collect();
            let RouteCommand::Push { team_id, reason, anchor, actor, now_ms, .. } = push("t", 0) else {
                unreachable!()
            };
            RouteCommand::Push {
                team_id,
                kind: kind.into(),
                reason,
                plan: serde_json::json!({"waypoints": waypoints}),
                anchor,
                actor,
                now_ms,
                unless_same_stops: true,
            }
        };
        assert_eq!(run(&replan(&["cp-1", "cell-3-4"], "plan"), &mut heads).unwrap().version, 1);
        assert_eq!(run(&replan(&["cp-1", "cell-3-4"], "plan"), &mut heads).unwrap_err(), UNCHANGED_PLAN);
        assert_eq!(run(&replan(&["cell-3-4", "cp-1"], "plan"), &mut heads).unwrap().version, 2, "another order");
        assert_eq!(run(&replan(&["cell-3-4", "cp-1"], "manual"), &mut heads).unwrap().version, 3, "another kind");
        assert_eq!(heads["t"].version, 3);
    }

    /// Pushes supersede a pending version; an acknowledgement names the newest pending
    /// one; a plan nobody acknowledges escalates once per level, at 120 s and 240 s.
    #[test]
    fn route_versions_acknowledgements_and_escalation() {
        let mut heads = HashMap::new();
        let (mut seq, mut plans, mut events, mut publish) = (1, Vec::new(), Vec::new(), Vec::new());
        let mut run = |cmd: &RouteCommand, heads: &mut HashMap<String, RoutePlanRow>| {
            route_command(cmd, heads, &mut seq, &mut plans, &mut events, &mut publish)
        };
        let v1 = run(&push("t", 0), &mut heads).unwrap();
        let v2 = run(&push("t", 1_000), &mut heads).unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        let ack = |version, now_ms| RouteCommand::Ack { team_id: "t".into(), version, actor: "lead".into(), now_ms };
        assert!(run(&ack(1, 2_000), &mut heads).unwrap_err().contains("not team t's current plan"));
        assert!(run(&RouteCommand::Ack { team_id: "x".into(), version: 1, actor: "l".into(), now_ms: 0 }, &mut heads)
            .is_err());
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["push", "supersede", "push"], "the pending v1 was superseded by v2");

        let (mut seq, mut plans, mut events, mut publish) = (100, Vec::new(), Vec::new(), Vec::new());
        let mut tick = |now_ms, heads: &mut HashMap<String, RoutePlanRow>| {
            route_escalations(now_ms, heads, &mut seq, &mut plans, &mut events, &mut publish);
        };
        tick(1_000 + 119_000, &mut heads);
        tick(1_000 + 120_000, &mut heads);
        tick(1_000 + 130_000, &mut heads);
        tick(1_000 + 240_000, &mut heads);
        tick(1_000 + 900_000, &mut heads);
        let notes: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(notes, ["escalate", "escalate"], "once per level");
        assert_eq!(heads["t"].escalation, "command_centre");
        let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
        assert_eq!(payload["data"]["plan"]["escalation"], "post_leader");

        // Acknowledged, it escalates no more.
        let (mut seq, mut plans, mut events, mut publish) = (200, Vec::new(), Vec::new(), Vec::new());
        let v3 = route_command(&push("u", 0), &mut heads, &mut seq, &mut plans, &mut events, &mut publish).unwrap();
        let ack_u = RouteCommand::Ack { team_id: "u".into(), version: v3.version, actor: "lead".into(), now_ms: 5_000 };
        route_command(&ack_u, &mut heads, &mut seq, &mut plans, &mut events, &mut publish).unwrap();
        route_escalations(1_000_000, &mut heads, &mut seq, &mut plans, &mut events, &mut publish);
        assert!(events.iter().all(|e| e.team_id != "u" || e.action != "escalate"));
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;

    fn head(kind: &str, plan: serde_json::Value) -> RoutePlanRow {
        RoutePlanRow {
            plan_seq: 1,
            team_id: "team-1".into(),
            version: 1,
            kind: kind.into(),
            reason: "r".into(),
            created_ms: 0,
            created_by: "op".into(),
            plan: plan.to_string(),
            lon: 107.0,
            lat: 30.0,
            status: "acknowledged".into(),
            acked_ms: None,
            acked_by: None,
            escalation: "none".into(),
        }
    }

    fn p(lon: f64, lat: f64) -> Position {
        Position::new(lon, lat).unwrap()
    }

    #[test]
    fn a_loop_is_resumed_from_its_vertex_nearest_where_the_team_left_it() {
        let ring = [[107.0, 30.0], [107.01, 30.0], [107.01, 30.01], [107.0, 30.01], [107.0, 30.0]];
        let h = head("plan", serde_json::json!({"geometry": {"coordinates": ring}}));
        let got = resume_line(&h, p(107.0101, 30.0099));
        assert_eq!(got, vec![[107.01, 30.01], [107.0, 30.01], [107.0, 30.0], [107.01, 30.0], [107.01, 30.01]]);
    }

    #[test]
    fn an_open_line_goes_on_to_its_end_then_back_along_all_of_it() {
        let line = [[107.0, 30.0], [107.01, 30.0], [107.02, 30.0]];
        let h = head("plan", serde_json::json!({"geometry": {"coordinates": line}}));
        let got = resume_line(&h, p(107.0099, 30.0));
        assert_eq!(got, vec![[107.01, 30.0], [107.02, 30.0], [107.01, 30.0], [107.0, 30.0]]);
    }

    #[test]
    fn a_second_diversion_resumes_the_route_the_first_one_left() {
        let route = [[107.0, 30.0], [107.02, 30.0]];
        let h = head(
            "diversion",
            serde_json::json!({"geometry": {"coordinates": [[107.0, 30.0], [107.0, 30.05]]},
                               "resume_geometry": {"coordinates": route}}),
        );
        assert_eq!(resume_line(&h, p(107.0, 30.0)), vec![[107.0, 30.0], [107.02, 30.0], [107.0, 30.0]]);
    }

    #[test]
    fn a_diversions_corridor_goes_on_along_the_resumed_route_and_resume_is_no_checkpoint() {
        let plan = serde_json::json!({
            "geometry": {"coordinates": [[107.0, 30.0], [107.0, 30.02], [107.0, 30.0]]},
            "resume_geometry": {"coordinates": [[107.0, 30.0], [107.03, 30.0]]},
            "waypoints": [
                {"name": "alert 9", "lon": 107.0, "lat": 30.02, "planned_time": null, "dwell_s": 300},
                {"name": "resume", "kind": "resume", "lon": 107.0, "lat": 30.0, "planned_time": null, "dwell_s": null},
            ],
        });
        let heads = HashMap::from([("team-1".to_string(), head("diversion", plan))]);
        let corridors = corridors_of(&heads);
        let (_, c) = &corridors["team-1"];
        assert!(c.distance_m(p(107.025, 30.0)) < 5.0, "the resumed route is in the corridor");
        assert!(c.distance_m(p(107.0, 30.01)) < 5.0, "so is the way to the alert");
        let mut member = MemberAdherence::new(c);
        let events = member.update(c, Fix { position: p(107.0, 30.0), time_ms: 1_000 }, None);
        assert!(events.is_empty(), "standing where the team left its route skips nothing: {events:?}");
        assert_eq!(member.checkpoint_status().len(), 1, "only the alert's place is a checkpoint");
    }
}
