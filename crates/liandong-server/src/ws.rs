//! The websocket endpoint of the live feed, `GET /api/v1/live`: who may subscribe, what
//! each client is sent (its role's scope, viewport and kinds), snapshots and replays on
//! (re)connection, and the messages a client may send (positions, route
//! acknowledgements).
//!
//! A client subscribes to the [`Hub`] before its upgrade is answered and reads the view
//! or the store once its session starts, so that nothing falls between the snapshot (or
//! the replay) and the live stream; sequence numbers drop the duplicates at the seam
//! ([`Seam`]: a snapshot holds positions only). A client that falls more than the channel's
//! capacity behind is told `resync` and given a fresh snapshot: it is never silently
//! skipped, and it never slows the others. A slow socket is written in batches and
//! dropped only when it is stuck.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use liandong_core::Enricher;
use liandong_store::{FeedRow, FeedTables};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::auth::{bearer, Role};
use crate::error::ApiError;
use crate::feed::messages::{ClientReply, SnapshotPart};
use crate::feed::{position_message, FeedEvent, FeedMessage, What};
use crate::openapi as doc;
use crate::scope::{IncidentFacts, Reach};
use crate::sequencer::Item;
use crate::time_fmt::now_ms;
use crate::zones::TaggedPhone;
use crate::AppState;

/// Which events a client sees: its reach (`scope::Reach`, the same rules as over HTTP)
/// and role, then its map viewport and kinds.
#[derive(Debug, Clone)]
struct Filter {
    reach: Reach,
    /// The client's role, for alert visibility; None for a device.
    role: Option<Role>,
    bbox: Option<[f64; 4]>,
    positions: bool,
    alerts: bool,
    incidents: bool,
    /// The map's places: which post's jurisdiction or grid an incident is in.
    places: Arc<Enricher>,
    /// The person the client acts for (a user's, or the person a device is bound to):
    /// escalations addressed to them reach this client.
    person: Option<Arc<str>>,
}

impl Filter {
    fn in_view(&self, lon: f64, lat: f64) -> bool {
        self.bbox.is_none_or(|[x0, y0, x1, y1]| lon >= x0 && lon <= x1 && lat >= y0 && lat <= y1)
    }

    fn admits_event(&self, e: &FeedEvent) -> bool {
        match &e.what {
            What::Position { unit_id, tagged } => self.admits(e.lon, e.lat, unit_id.as_ref(), tagged.as_deref()),
            What::Alert { roles } => self.admits_alert(e.lon, e.lat, roles),
            What::Incident { unit_id, priority } => {
                let facts =
                    IncidentFacts { assigned_unit: unit_id.as_deref(), priority: *priority, lon: e.lon, lat: e.lat };
                self.admits_incident(facts)
            }
            What::Route { team_id } => self.admits_route(team_id.as_deref()),
            What::Notice => self.reach.is_county(),
            What::Escalation { person_id, operators } => self.admits_escalation(person_id.as_deref(), *operators),
        }
    }

    /// The `incident_gone` message for an incident event the client is not shown when
    /// it was shown the incident until this step (a dispatch took it from the unit
    /// through which the client saw it).
    fn gone(&self, seq: i64, lon: f64, lat: f64, priority: i64, payload: &str) -> Option<String> {
        let (id, from) = crate::feed::incident_reassigned(payload)?;
        let before = IncidentFacts { assigned_unit: Some(&from), priority, lon, lat };
        self.admits_incident(before).then(|| crate::feed::incident_gone_message(seq, id))
    }

    fn gone_event(&self, e: &FeedEvent) -> Option<String> {
        let What::Incident { priority, .. } = &e.what else { return None };
        self.gone(e.seq, e.lon, e.lat, *priority, &e.message)
    }

    /// An escalation reaches the person it names, and a command-centre escalation every
    /// operator's and administrator's screen too.
    fn admits_escalation(&self, person: Option<&str>, operators: bool) -> bool {
        let addressed = person.is_some_and(|p| self.person.as_deref() == Some(p));
        addressed || (operators && matches!(self.role, Some(Role::Operator | Role::Admin)))
    }

    fn admits_route(&self, team: Option<&str>) -> bool {
        team.is_some() && self.reach.sees_unit(team)
    }

    fn admits_incident(&self, facts: IncidentFacts<'_>) -> bool {
        self.incidents && self.in_view(facts.lon, facts.lat) && self.reach.sees_incident(facts, &self.places)
    }

    fn admits_alert(&self, lon: f64, lat: f64, roles: &[String]) -> bool {
        let entitled = self.role.is_some_and(|r| self.reach.sees_alert(r, roles, lon, lat));
        entitled && self.alerts && self.in_view(lon, lat)
    }

    /// A position of a device of `unit`; of a tagged person's phone when `tagged`, which
    /// only the roles on the person's record see, whatever their scope.
    fn admits(&self, lon: f64, lat: f64, unit: Option<&Arc<str>>, tagged: Option<&TaggedPhone>) -> bool {
        let in_scope = match tagged {
            Some(t) => self.role.is_some_and(|r| crate::scope::role_entitled(r.as_str(), &t.roles)),
            None => self.reach.sees_unit(unit.map(|u| &**u)),
        };
        in_scope && self.positions && self.in_view(lon, lat)
    }
}

/// Parses `minLon,minLat,maxLon,maxLat`.
pub(crate) fn parse_bbox(s: &str) -> Result<[f64; 4], String> {
    let v: Vec<f64> =
        s.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| format!("{e}"))?;
    let [x0, y0, x1, y1] = v[..] else { return Err("must be minLon,minLat,maxLon,maxLat".into()) };
    check_bbox([x0, y0, x1, y1])
}

fn check_bbox(b: [f64; 4]) -> Result<[f64; 4], String> {
    let [x0, y0, x1, y1] = b;
    if !b.iter().all(|v| v.is_finite()) {
        return Err("coordinates must be finite numbers".into());
    }
    if !(-180.0..=180.0).contains(&x0)
        || !(-180.0..=180.0).contains(&x1)
        || !(-90.0..=90.0).contains(&y0)
        || !(-90.0..=90.0).contains(&y1)
    {
        return Err("must be lon/lat within ±180/±90".into());
    }
    if x0 > x1 || y0 > y1 {
        return Err("min must not exceed max".into());
    }
    Ok(b)
}

/// `(positions, alerts, incidents)` from a comma-separated list of kinds.
fn parse_kinds(s: &str) -> Result<(bool, bool, bool), String> {
    let (mut positions, mut alerts, mut incidents) = (false, false, false);
    for k in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        match k {
            "positions" | "position" => positions = true,
            "alerts" | "alert" => alerts = true,
            "incidents" | "incident" => incidents = true,
            // Route changes come with the patrol-planning issue; asking for them is fine.
            "routes" => {}
            other => return Err(format!("unknown kind {other}; known: positions, alerts, incidents, routes")),
        }
    }
    Ok((positions, alerts, incidents))
}

/// Connection limits of the live endpoint.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 32 * 1024;
/// Largest snapshot part; with the write buffer it bounds a client's buffers.
const SNAPSHOT_PART_BYTES: usize = 16 * 1024;
const PING_EVERY: Duration = Duration::from_secs(20);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A replay or first snapshot the client does not take within this long ends the
/// connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A live write that does not finish within this long marks the client congested.
const CONGESTED_AFTER: Duration = Duration::from_millis(200);
/// A congested client whose socket drains nothing for this long is disconnected.
const STUCK_TIMEOUT: Duration = Duration::from_secs(60);
/// Most events written in one flush.
const WRITE_BATCH: usize = 512;
/// A reconnecting client this far behind gets a snapshot instead of a replay.
pub const MAX_REPLAY: i64 = 100_000;
/// Events of each table read per replay page.
const REPLAY_PAGE: u32 = 256;
/// Replays one caller (a token's user, a device) may run at once, and all callers.
pub const MAX_REPLAYS_PER_CALLER: usize = 2;
pub const MAX_REPLAYS: usize = 16;

/// The replays running now, by caller: a replay reads the store page by page for as long
/// as the client takes it, so their number is bounded per caller and in all.
#[derive(Debug)]
pub struct Replays {
    by_caller: std::sync::Mutex<HashMap<String, usize>>,
    all: Arc<tokio::sync::Semaphore>,
}

impl Default for Replays {
    fn default() -> Self {
        Replays { by_caller: Default::default(), all: Arc::new(tokio::sync::Semaphore::new(MAX_REPLAYS)) }
    }
}

/// A running replay; dropping it ends it.
pub struct ReplayPermit {
    replays: Arc<Replays>,
    caller: String,
    _all: tokio::sync::OwnedSemaphorePermit,
}

impl Replays {
    /// Starts a replay for `caller`: 429 when they run as many as they may, 503 when the
    /// server does.
    fn start(self: &Arc<Self>, caller: &str) -> Result<ReplayPermit, ApiError> {
        let all = self.all.clone().try_acquire_owned().map_err(|_| {
            let mut e = ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "since",
                format!("the server runs {MAX_REPLAYS} replays already; retry"),
            );
            e.retry_after_s = Some(1);
            e
        })?;
        let mut by_caller = self.by_caller.lock().unwrap_or_else(|e| e.into_inner());
        let n = by_caller.entry(caller.to_owned()).or_default();
        if *n >= MAX_REPLAYS_PER_CALLER {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "since",
                format!("at most {MAX_REPLAYS_PER_CALLER} replays at once per caller"),
            ));
        }
        *n += 1;
        Ok(ReplayPermit { replays: self.clone(), caller: caller.to_owned(), _all: all })
    }

    /// Replays running now, for `liandong_live_replays_running`.
    pub fn running(&self) -> usize {
        MAX_REPLAYS - self.all.available_permits()
    }
}

impl Drop for ReplayPermit {
    fn drop(&mut self) {
        let mut by_caller = self.replays.by_caller.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = by_caller.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                by_caller.remove(&self.caller);
            }
        }
    }
}

/// Who is on the socket.
struct Client {
    filter: Filter,
    /// The device whose key authenticated the socket, if any; it may send its positions.
    device: Option<String>,
    /// Gateways (admin, device role tokens) may send positions for any device.
    gateway: bool,
    /// A patrol leader's socket (user token or the leader's phone): who acts, and the
    /// team whose routes it may acknowledge.
    leader_of: Option<(String, String)>,
    /// Reads of tagged persons' phones on this connection, audited.
    audit: ReadAudit,
}

/// `GET /api/v1/live`: the websocket upgrade. Authentication and the query are checked
/// before upgrading, so a bad token is a plain 401.
#[utoipa::path(get, path = "/api/v1/live", tag = "live",
    summary = "The live feed, a websocket of positions, alerts, incidents and route changes",
    description = "The messages the feed sends are JSON objects with a `type`; each type's JSON Schema (2020-12) is a `$defs` entry of [`/api/v1/schemas/feed.json`](/api/v1/schemas/feed.json).",
    security(
        ("bearer" = ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner", "device"]),
        ("device_key" = []),
    ),
    params(
        ("token" = Option<String>, Query, description = "the bearer token (browsers cannot set headers on a websocket)"),
        ("bbox" = Option<String>, Query, description = "min_lon,min_lat,max_lon,max_lat"),
        ("kinds" = Option<String>, Query, description = "positions, alerts, incidents (comma-separated)"),
        ("since" = Option<i64>, Query, description = "replay from after this sequence number"),
    ),
    responses(
        (status = 101, description = "switching to the websocket; every message is described by `/api/v1/schemas/feed.json`"),
        doc::E400, doc::E401, doc::E403, doc::E503,
    ))]
pub async fn live(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let query = uri.query();
    let token = bearer(&headers, query)
        .ok_or_else(|| ApiError::unauthorized("token", "a bearer token or ?token= is required"))?;
    let mut leader_of = None;
    let person: Option<Arc<str>>;
    let actor: String;
    let (reach, role, device, gateway) = if let Some(user) = s.tokens.user(&token) {
        if user.role == Role::Metrics {
            return Err(ApiError::forbidden("token", "a metrics token reads /metrics only"));
        }
        actor = user.name.clone();
        person = user.person_id.as_deref().map(Arc::from);
        if let (Role::PatrolLeader, Some(team)) = (user.role, &user.unit_id) {
            leader_of = Some((user.name.clone(), team.clone()));
        }
        (
            s.reach(user.role, user.unit_id.as_deref()),
            Some(user.role),
            None,
            matches!(user.role, Role::Admin | Role::Device),
        )
    } else {
        let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
        match devices.by_key(&token) {
            // A device sees its own unit, so a patrol member's phone shows its team.
            Some(d) => {
                actor = crate::devices::actor(d);
                person = d.person_id.as_deref().map(Arc::from);
                if let (true, Some(team)) = (d.kind == "patrol_leader", &d.unit_id) {
                    leader_of = Some((format!("device:{}", d.device_id), team.clone()));
                }
                (Reach::of_device(d.unit_id.as_deref()), None, Some(d.device_id.clone()), false)
            }
            None => return Err(ApiError::unauthorized("token", "the token is not valid")),
        }
    };
    let mut bbox = None;
    let (mut positions, mut alerts, mut incidents) = (true, true, true);
    let mut since = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "bbox" => bbox = Some(parse_bbox(&v).map_err(|r| ApiError::bad_request("bbox", r))?),
            "kinds" => {
                (positions, alerts, incidents) = parse_kinds(&v).map_err(|r| ApiError::bad_request("kinds", r))?
            }
            "since" => {
                since = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| ApiError::bad_request("since", "must be a sequence number (0 or more)"))?,
                )
            }
            _ => {}
        }
    }
    let replay = match since {
        Some(_) => {
            let permit = s.replays.start(&actor)?;
            s.metrics.live_replays.increment(1);
            Some(permit)
        }
        None => None,
    };
    let client = Client {
        filter: Filter { reach, role, bbox, positions, alerts, incidents, places: s.enricher.clone(), person },
        device,
        gateway,
        leader_of,
        audit: ReadAudit::new(actor, role.map(Role::as_str)),
    };
    // Closes the socket when the server stops, or when its session is revoked or ends.
    let shutdown = crate::sessions::watch_socket(&s, &token);
    // The library's default buffers (128 KiB each way, allocated up front) would cost
    // 10,000 idle operators' screens more than a gigabyte; clients send small
    // messages, and the write buffer still batches many events per flush.
    let ws = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .max_frame_size(MAX_CLIENT_MESSAGE_BYTES);
    // Subscribed before the upgrade is answered: whatever a client causes once it has
    // its `101` (a report, an alarm) reaches it, though its session starts later on
    // the feed's runtime. See the module comment for the snapshot's seam.
    let events = s.hub.subscribe();
    Ok(ws.on_upgrade(move |socket| async move {
        let feed = s.sessions.handle().cloned();
        let session = async move {
            s.metrics.live_clients.increment(1.0);
            let start = Start { events, since, replay };
            if let Err(e) = serve_client(&s, socket, client, start, shutdown).await {
                tracing::debug!(error = %e, "live client ended");
            }
            s.metrics.live_clients.decrement(1.0);
        };
        match feed {
            Some(feed) => drop(feed.spawn(session)),
            None => session.await,
        }
    }))
}

/// The runtime the live feed's sessions run on, apart from the one that serves HTTP and
/// runs the sequencer: one per server, with [`crate::config::Workers::feed`] threads,
/// stopped with it.
///
/// Why apart: a commit wakes every subscribed session and each writes its socket — a
/// thousand wall maps and phones, a burst of work per commit. On the HTTP runtime that
/// burst queued in front of the reports and answers, and it kept the HTTP side from
/// running on one worker, which on two cores costs a fifth less CPU per report than two
/// workers do (BENCHMARKS.md). A session's socket stays registered with the runtime
/// that accepted it, which wakes the session here when the socket is ready; the
/// session's timers are this runtime's. Without it (its threads could not be started)
/// the sessions run where they were accepted.
pub struct SessionsRuntime(Option<tokio::runtime::Runtime>);

impl SessionsRuntime {
    pub fn start() -> SessionsRuntime {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(crate::config::Workers::of_machine().feed)
            .thread_name("liandong-feed")
            .enable_all()
            .build();
        SessionsRuntime(built.map_err(|e| tracing::warn!(error = %e, "no runtime of its own for the live feed")).ok())
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.0.as_ref().map(tokio::runtime::Runtime::handle)
    }
}

impl Drop for SessionsRuntime {
    fn drop(&mut self) {
        // The server may be let go on any thread, a session's own among them: stopping
        // without waiting for the threads is the one way a runtime may be stopped there.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("websocket: {0}")]
    Socket(#[from] axum::Error),
    #[error("the client did not read for {0:?}")]
    WriteTimeout(Duration),
    #[error("store: {0}")]
    Store(#[from] liandong_store::StoreError),
}

/// Messages the client sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    /// A patrol leader acknowledges a version of the team's route plan.
    AckRoute {
        #[serde(default)]
        id: Option<serde_json::Value>,
        team_id: String,
        version: i64,
    },
    /// Change the viewport (`null` for the whole county) and kinds without reconnecting.
    Subscribe {
        #[serde(default)]
        bbox: Option<[f64; 4]>,
        #[serde(default)]
        kinds: Option<Vec<String>>,
    },
    /// A location report from the device on this socket, in our JSON item format.
    Position {
        #[serde(default)]
        id: Option<serde_json::Value>,
        #[serde(flatten)]
        item: serde_json::Map<String, serde_json::Value>,
    },
}

/// How a session starts: its subscription (taken before the upgrade was answered) and
/// the replay it asked for.
struct Start {
    events: broadcast::Receiver<Arc<FeedEvent>>,
    since: Option<i64>,
    replay: Option<ReplayPermit>,
}

async fn serve_client(
    s: &Arc<AppState>,
    socket: WebSocket,
    mut client: Client,
    start: Start,
    mut shutdown: crate::sessions::SocketEnd,
) -> Result<(), ClientError> {
    let (mut tx, mut rx) = socket.split();
    let Start { mut events, since, replay } = start;
    let mut seam = first_send(s, &mut tx, &mut client, since, replay).await?;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    // Set when the socket stopped taking data: the task then only drains it, and its
    // broadcast receiver falls behind, bounded by the channel. When the interrupted
    // write may have lost messages, the client gets a resync once drained.
    let mut congested: Option<tokio::time::Instant> = None;
    let mut resync_when_drained = false;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.rx.changed() => {
                let code = if shutdown.why.get().is_some() { axum::extract::ws::close_code::POLICY } else { axum::extract::ws::close_code::AWAY };
                let close = CloseFrame { code, reason: Utf8Bytes::from_static(shutdown.reason()) };
                let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Message::Close(Some(close)))).await;
                return Ok(());
            }
            incoming = rx.next() => {
                last_heard = tokio::time::Instant::now();
                match incoming {
                    None | Some(Ok(Message::Close(_))) => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Message::Text(text))) => {
                        let outcome = match handle_client_message(s, &mut client, text.as_str()).await {
                            None => Written::Done,
                            Some(Reply::Text(t)) => try_write(&mut tx, vec![Message::Text(t.into())]).await?,
                            Some(Reply::Resubscribed) => {
                                let (seq, w) = send_snapshot(s, &mut tx, &client.filter, &mut client.audit, Some("subscription_changed")).await?;
                                seam.snapshot_sent(seq);
                                w
                            }
                        };
                        note(outcome, &mut congested, &mut resync_when_drained);
                    }
                    Some(Ok(_)) => {} // pings are answered by the library; pongs and binary frames only count as life
                }
            }
            drained = tx.flush(), if congested.is_some() => {
                drained?;
                congested = None;
                if std::mem::take(&mut resync_when_drained) {
                    events = events.resubscribe();
                    s.metrics.live_resyncs.increment(1);
                    let (seq, w) = send_snapshot(s, &mut tx, &client.filter, &mut client.audit, Some("resync")).await?;
                    seam.snapshot_sent(seq);
                    note(w, &mut congested, &mut resync_when_drained);
                }
            }
            event = events.recv(), if congested.is_none() => match event {
                Ok(first) => {
                    // The batch's oldest event, whose lag is the batch's largest.
                    let published = first.published;
                    let batch = client.take_batch(first, &mut events, &mut seam);
                    client.audit.flush(s).await?;
                    if !batch.is_empty() {
                        s.metrics.live_messages.increment(batch.len() as u64);
                        let w = try_write(&mut tx, batch).await?;
                        s.metrics.record_live_lag(published.elapsed());
                        note(w, &mut congested, &mut resync_when_drained);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::info!(missed, "live client fell behind; resync");
                    s.metrics.live_resyncs.increment(1);
                    events = events.resubscribe();
                    let (seq, w) = send_snapshot(s, &mut tx, &client.filter, &mut client.audit, Some("resync")).await?;
                    seam.snapshot_sent(seq);
                    note(w, &mut congested, &mut resync_when_drained);
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    let close = CloseFrame { code: axum::extract::ws::close_code::POLICY, reason: Utf8Bytes::from_static("idle timeout") };
                    let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Message::Close(Some(close)))).await;
                    return Ok(());
                }
                match congested {
                    Some(since) if since.elapsed() > STUCK_TIMEOUT => return Err(ClientError::WriteTimeout(STUCK_TIMEOUT)),
                    Some(_) => {}
                    None => {
                        let w = try_write(&mut tx, vec![Message::Ping(Default::default())]).await?;
                        note(w, &mut congested, &mut resync_when_drained);
                    }
                }
            }
        }
    }
}

/// The first thing a new connection is sent: the replay it asked for (`since`), or a
/// snapshot of the live view. Answers where the live stream takes over.
async fn first_send(
    s: &AppState,
    tx: &mut Sink,
    client: &mut Client,
    since: Option<i64>,
    replay: Option<ReplayPermit>,
) -> Result<Seam, ClientError> {
    if let Some(n) = since {
        let seam = replay_or_snapshot(s, tx, &client.filter, &mut client.audit, n).await?;
        drop(replay);
        return Ok(seam);
    }
    let (seq, w) = send_snapshot(s, tx, &client.filter, &mut client.audit, None).await?;
    if w != Written::Done {
        // A client that cannot take its first snapshot promptly is given the full write
        // timeout, then dropped.
        tokio::time::timeout(WRITE_TIMEOUT, tx.flush())
            .await
            .map_err(|_| ClientError::WriteTimeout(WRITE_TIMEOUT))??;
    }
    Ok(Seam::after_snapshot(seq))
}

/// Where the live stream takes over from what a connection was sent first, so that no
/// event is sent twice and none is left out.
///
/// A replay holds every kind of event up to its end. A snapshot holds positions only,
/// each device's last: a position at or below its number is in it, or older than what
/// is. Alerts, incidents, routes and escalations are in no snapshot, so every one that
/// the subscription (taken before the snapshot was read) brings is sent, however it
/// stands to the snapshot's number; the channel gives each event once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seam {
    /// Positions at or below this number were sent.
    positions: i64,
    /// Events of every kind at or below this number were sent.
    all: i64,
}

impl Seam {
    fn after_snapshot(seq: i64) -> Seam {
        Seam { positions: seq, all: 0 }
    }

    fn after_replay(seq: i64) -> Seam {
        Seam { positions: seq, all: seq }
    }

    /// A later snapshot (a resync, a changed subscription) sets the positions' seam only:
    /// what else came before it was sent, or (a resync) was lost with the lag.
    fn snapshot_sent(&mut self, seq: i64) {
        self.positions = self.positions.max(seq);
    }

    fn is_new(&self, e: &FeedEvent) -> bool {
        let up_to = if matches!(e.what, What::Position { .. }) { self.positions } else { self.all };
        e.seq > up_to
    }
}

impl Client {
    /// The messages of `first` and of the events already waiting behind it (up to
    /// [`WRITE_BATCH`]) that this client is to be sent: not those the client was sent
    /// already (see [`Seam`]); notices carry no sequence number.
    fn take_batch(
        &mut self,
        first: Arc<FeedEvent>,
        events: &mut broadcast::Receiver<Arc<FeedEvent>>,
        seam: &mut Seam,
    ) -> Vec<Message> {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(e) = next.take() {
            if matches!(e.what, What::Notice) {
                if self.filter.admits_event(&e) {
                    batch.push(Message::Text(Utf8Bytes::from(&*e.message)));
                }
            } else if seam.is_new(&e) {
                if self.filter.admits_event(&e) {
                    if let What::Position { tagged: Some(phone), .. } = &e.what {
                        self.audit.note(phone, "live");
                    }
                    if let What::Alert { .. } = &e.what {
                        if let Some(person) = crate::scope::tagged_message_subject(&e.message) {
                            self.audit.note_alert(&person, e.seq, "live");
                        }
                    }
                    batch.push(Message::Text(Utf8Bytes::from(&*e.message)));
                } else if let Some(gone) = self.filter.gone_event(&e) {
                    batch.push(Message::Text(gone.into()));
                }
            }
            if batch.len() < WRITE_BATCH {
                next = events.try_recv().ok();
            }
        }
        batch
    }
}

/// How a write to the client ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Everything is on the socket.
    Done,
    /// Everything is queued in the websocket's buffer; the socket is full.
    Flushing,
    /// The socket filled while queueing: some messages of the batch may be lost.
    Interrupted,
}

fn note(w: Written, congested: &mut Option<tokio::time::Instant>, resync: &mut bool) {
    match w {
        Written::Done => {}
        Written::Flushing => *congested = congested.or(Some(tokio::time::Instant::now())),
        Written::Interrupted => {
            *congested = congested.or(Some(tokio::time::Instant::now()));
            *resync = true;
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;

/// Queues the messages and flushes once (one write for the batch, not one per
/// message), giving up after [`CONGESTED_AFTER`] instead of blocking the task.
async fn try_write(tx: &mut Sink, messages: Vec<Message>) -> Result<Written, ClientError> {
    let deadline = tokio::time::Instant::now() + CONGESTED_AFTER;
    for m in messages {
        match tokio::time::timeout_at(deadline, tx.feed(m)).await {
            Ok(r) => r?,
            Err(_) => return Ok(Written::Interrupted),
        }
    }
    match tokio::time::timeout_at(deadline, tx.flush()).await {
        Ok(r) => r.map(|()| Written::Done).map_err(ClientError::from),
        Err(_) => Ok(Written::Flushing),
    }
}

/// Queues the messages and flushes, waiting up to [`WRITE_TIMEOUT`] (the replay of a
/// reconnecting client, which must arrive whole or not at all).
async fn write(tx: &mut Sink, messages: Vec<Message>) -> Result<(), ClientError> {
    let send = async {
        for m in messages {
            tx.feed(m).await?;
        }
        tx.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, send).await {
        Ok(r) => r.map_err(ClientError::from),
        Err(_) => Err(ClientError::WriteTimeout(WRITE_TIMEOUT)),
    }
}

/// Sends a snapshot of what the client may see and returns its sequence number.
/// `reason`: why a snapshot is sent now (`resync`, `since_too_old`, …), if not on connect.
async fn send_snapshot(
    s: &AppState,
    tx: &mut Sink,
    filter: &Filter,
    audit: &mut ReadAudit,
    reason: Option<&str>,
) -> Result<(i64, Written), ClientError> {
    // Collect the devices' JSON under the lock (cheap `Arc` clones), build outside it.
    let (seq, devices, tagged) = {
        let live = s.live.read().unwrap_or_else(|e| e.into_inner());
        let zones = s.zones.read().unwrap_or_else(|e| e.into_inner());
        let mut tagged = Vec::new();
        let devices: Vec<Arc<RawValue>> = live
            .devices
            .iter()
            .filter(|(id, d)| {
                let phone = zones.tagged_phone(id);
                let admitted = filter.admits(d.lon, d.lat, d.unit_id.as_ref(), phone.as_deref());
                if let (true, Some(p)) = (admitted, phone) {
                    tagged.push(p);
                }
                admitted
            })
            .map(|(_, d)| d.json.clone())
            .collect();
        (live.seq, devices, tagged)
    };
    for phone in &tagged {
        audit.note(phone, "snapshot");
    }
    audit.flush(s).await?;
    Ok((seq, try_write(tx, snapshot_messages(seq, reason, &devices)).await?))
}

/// The audit of a connection's reads of tagged persons' phones and alerts: the first
/// time a connection is sent a person's position (in a snapshot, a replay or live), or an
/// alert about them (a zone break, a camera's hit), the read is written to the audit log
/// before the message goes out; later positions, or alerts, of the same person on the
/// same connection are the same read.
struct ReadAudit {
    actor: String,
    role: &'static str,
    seen: std::collections::HashSet<String>,
    pending: Vec<liandong_store::AuditEntry>,
}

impl ReadAudit {
    fn new(actor: String, role: Option<&'static str>) -> ReadAudit {
        ReadAudit { actor, role: role.unwrap_or("device"), seen: Default::default(), pending: Vec::new() }
    }

    fn note(&mut self, phone: &TaggedPhone, how: &str) {
        if self.seen.insert(phone.person_id.clone()) {
            let what = format!("the phone's positions on the live feed ({how})");
            let entry = crate::scope::read_entry(
                &self.actor,
                self.role,
                "tagged_person_position_read",
                &phone.person_id,
                &what,
                now_ms(),
            );
            self.pending.push(entry);
        }
    }

    fn note_alert(&mut self, person_id: &str, seq: i64, how: &str) {
        if self.seen.insert(format!("alert:{person_id}")) {
            let what = format!("alert {seq} on the live feed ({how})");
            let entry = crate::scope::read_entry(
                &self.actor,
                self.role,
                "tagged_person_alert_read",
                person_id,
                &what,
                now_ms(),
            );
            self.pending.push(entry);
        }
    }

    /// Writes what was noted; an audit that cannot be written stops the delivery.
    async fn flush(&mut self, s: &AppState) -> Result<(), ClientError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.pending);
        s.store.audit(&entries).await?;
        Ok(())
    }
}

/// A snapshot in parts of at most about [`SNAPSHOT_PART_BYTES`] each (`part`, `parts`):
/// a client reassembles them; the server never holds a county-sized frame per client.
/// A `resync` when `reason` is `resync`, a `snapshot` otherwise (with its reason, if any).
fn snapshot_messages(seq: i64, reason: Option<&str>, devices: &[Arc<RawValue>]) -> Vec<Message> {
    let mut parts: Vec<Vec<&RawValue>> = vec![Vec::new()];
    let mut size = 0;
    for d in devices {
        let len = d.get().len();
        if size + len > SNAPSHOT_PART_BYTES && !parts.last().is_some_and(Vec::is_empty) {
            parts.push(Vec::new());
            size = 0;
        }
        size += len + 1;
        if let Some(p) = parts.last_mut() {
            p.push(d);
        }
    }
    let n = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let part = SnapshotPart { seq, reason, part: i + 1, parts: n, devices: p };
            let message =
                if reason == Some("resync") { FeedMessage::Resync(part) } else { FeedMessage::Snapshot(part) };
            Message::Text(message.to_json().into())
        })
        .collect()
}

/// Replays what a reconnecting client missed after `since`, from the store; or sends a
/// snapshot (and says why) when `since` is ahead of the feed or too far behind.
async fn replay_or_snapshot(
    s: &AppState,
    tx: &mut Sink,
    filter: &Filter,
    audit: &mut ReadAudit,
    since: i64,
) -> Result<Seam, ClientError> {
    let head = s.live.read().unwrap_or_else(|e| e.into_inner()).seq;
    // Sequence numbers are dense (one sequence over every table), so how far behind the
    // client is needs no counting; retention only makes it fewer.
    let reason = if since > head {
        Some("since_ahead_of_feed")
    } else if head - since > MAX_REPLAY {
        Some("since_too_old")
    } else {
        None
    };
    if let Some(reason) = reason {
        let (seq, w) = send_snapshot(s, tx, filter, audit, Some(reason)).await?;
        if w != Written::Done {
            tokio::time::timeout(WRITE_TIMEOUT, tx.flush())
                .await
                .map_err(|_| ClientError::WriteTimeout(WRITE_TIMEOUT))??;
        }
        return Ok(Seam::after_snapshot(seq));
    }
    // Only the tables whose events the client may see are read: a role that sees
    // nothing replays nothing, whatever the county did meanwhile.
    let sees_tagged_phones = filter.positions
        && filter.role.is_some_and(|r| {
            let zones = s.zones.read().unwrap_or_else(|e| e.into_inner());
            zones.any_phone_entitled(r.as_str())
        });
    let sees_units = filter.reach.is_county() || filter.reach.unit().is_some();
    let tables = FeedTables {
        positions: filter.positions && (sees_units || sees_tagged_phones),
        alerts: filter.alerts && filter.role.is_some(),
        incident_events: filter.incidents && filter.reach.reads_incidents(),
        route_events: sees_units,
        alert_acks: filter.alerts && filter.role.is_some(),
        escalations: filter.person.is_some() || matches!(filter.role, Some(Role::Operator | Role::Admin)),
    };
    let mut sent = since;
    loop {
        // One read of the chosen tables, merged by `seq` in the store. Pages are small
        // so that a replay holds little at a time (a report may carry a few KiB of
        // attributes), however many replays run.
        let rows = s.store.feed_after(sent, REPLAY_PAGE, tables).await?;
        let Some(last) = rows.last().map(FeedRow::seq) else { break };
        let batch: Vec<Message> = {
            let devices = s.devices.read().unwrap_or_else(|e| e.into_inner());
            let zones = s.zones.read().unwrap_or_else(|e| e.into_inner());
            rows.iter()
                .filter_map(|row| match row {
                    FeedRow::Position(r) => {
                        let unit = devices.get(&r.device_id).and_then(|d| d.unit_id.as_deref()).map(Arc::<str>::from);
                        let phone = zones.tagged_phone(&r.device_id);
                        let admitted = filter.admits(r.lon, r.lat, unit.as_ref(), phone.as_deref());
                        if let (true, Some(p)) = (admitted, &phone) {
                            audit.note(p, "replay");
                        }
                        admitted.then(|| position_message(r.seq, &crate::feed::report_json(r)))
                    }
                    FeedRow::Alert(a) => {
                        let admitted = filter.admits_alert(a.lon, a.lat, &a.roles);
                        if let (true, Some(person)) = (admitted, crate::scope::tagged_subject(a)) {
                            audit.note_alert(&person, a.seq, "replay");
                        }
                        admitted.then(|| a.payload.clone())
                    }
                    FeedRow::IncidentEvent(e) => {
                        let priority = crate::feed::incident_priority(&e.payload);
                        let facts =
                            IncidentFacts { assigned_unit: e.unit_id.as_deref(), priority, lon: e.lon, lat: e.lat };
                        (filter.admits_incident(facts).then(|| e.payload.clone()))
                            .or_else(|| filter.gone(e.seq, e.lon, e.lat, priority, &e.payload))
                    }
                    FeedRow::RouteEvent(e) => filter.admits_route(Some(&e.team_id)).then(|| e.payload.clone()),
                    FeedRow::AlertAck(a) => filter.admits_alert(a.lon, a.lat, &a.roles).then(|| a.payload.clone()),
                    FeedRow::Escalation(e) => filter
                        .admits_escalation(e.person_id.as_deref(), e.level == "command_centre")
                        .then(|| e.payload.clone()),
                })
                .map(|text| Message::Text(text.into()))
                .collect()
        };
        audit.flush(s).await?;
        if !batch.is_empty() {
            write(tx, batch).await?;
        }
        sent = last;
    }
    // What was not read is not behind the client either: it is caught up to the head.
    let sent = sent.max(head);
    write(tx, vec![Message::Text(replayed_message(since, sent).into())]).await?;
    Ok(Seam::after_replay(sent))
}

/// Tells a reconnecting client its replay from `since` is complete up to `seq`.
fn replayed_message(since: i64, seq: i64) -> String {
    FeedMessage::Replayed { since, seq }.to_json()
}

enum Reply {
    Text(String),
    Resubscribed,
}

fn error_reply(id: Option<&serde_json::Value>, field: &str, reason: &str) -> Reply {
    Reply::Text(ClientReply::Error { id, field, reason }.to_json())
}

fn route_ack_reply(id: Option<&serde_json::Value>, row: &liandong_store::RoutePlanRow) -> Reply {
    Reply::Text(
        ClientReply::RouteAck { id, plan_seq: row.plan_seq, version: row.version, status: &row.status }.to_json(),
    )
}

fn position_ack_reply(id: Option<&serde_json::Value>, seq: Option<i64>) -> Reply {
    Reply::Text(ClientReply::PositionAck { id, seq }.to_json())
}

async fn handle_client_message(s: &AppState, client: &mut Client, text: &str) -> Option<Reply> {
    let msg: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => return Some(error_reply(None, "message", &format!("not a known message: {e}"))),
    };
    match msg {
        ClientMessage::AckRoute { id, team_id, version } => {
            let Some((actor, team)) = client.leader_of.clone() else {
                return Some(error_reply(id.as_ref(), "type", "only a patrol leader's socket acknowledges routes"));
            };
            if team != team_id {
                return Some(error_reply(id.as_ref(), "team_id", "not this leader's team"));
            }
            match crate::patrol::acknowledge(s, team_id, version, actor).await {
                Ok(row) => Some(route_ack_reply(id.as_ref(), &row)),
                Err(e) => Some(error_reply(id.as_ref(), e.field.as_deref().unwrap_or("message"), &e.reason)),
            }
        }
        ClientMessage::Subscribe { bbox, kinds } => {
            let bbox = match bbox.map(check_bbox).transpose() {
                Ok(b) => b,
                Err(r) => return Some(error_reply(None, "bbox", &r)),
            };
            let (positions, alerts, incidents) = match kinds {
                Some(k) => match parse_kinds(&k.join(",")) {
                    Ok(p) => p,
                    Err(r) => return Some(error_reply(None, "kinds", &r)),
                },
                None => (client.filter.positions, client.filter.alerts, client.filter.incidents),
            };
            client.filter.bbox = bbox;
            client.filter.positions = positions;
            client.filter.alerts = alerts;
            client.filter.incidents = incidents;
            Some(Reply::Resubscribed)
        }
        ClientMessage::Position { id, item } => {
            let body = serde_json::json!({ "positions": [serde_json::Value::Object(item)] }).to_string();
            let report = match liandong_ingest::json::decode_batch(body.as_bytes()) {
                Ok(mut items) => match items.pop() {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        return Some(error_reply(id.as_ref(), e.field.trim_start_matches("positions[0]."), &e.reason))
                    }
                    None => return Some(error_reply(id.as_ref(), "message", "empty")),
                },
                Err(e) => return Some(error_reply(id.as_ref(), &e.field, &e.reason)),
            };
            let allowed = client.gateway || client.device.as_deref() == Some(report.device_id.as_str());
            if !allowed {
                return Some(error_reply(
                    id.as_ref(),
                    "device_id",
                    "this socket may send positions only for its own device",
                ));
            }
            let now = now_ms();
            let (unit_id, device_name) = match s.check_device(&report, now, "device_id", "time") {
                Ok(of) => of,
                Err(e) => return Some(error_reply(id.as_ref(), e.field.as_deref().unwrap_or("message"), &e.reason)),
            };
            match s.ingest.submit(vec![Item { report, recv_ms: now, unit_id, device_name }]).await {
                Ok(acks) => Some(position_ack_reply(id.as_ref(), acks.first().map(|a| a.seq))),
                Err(e) => Some(error_reply(id.as_ref(), "store", &e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_stands_for_positions_only_and_a_replay_for_everything() {
        let event = |seq, what| FeedEvent {
            seq,
            lon: 107.0,
            lat: 30.7,
            what,
            message: Arc::from("{}"),
            published: std::time::Instant::now(),
        };
        let position = |seq| event(seq, What::Position { unit_id: None, tagged: None });
        let alert = |seq| event(seq, What::Alert { roles: vec!["operator".into()].into() });
        // Subscribed at 3, snapshot read at 5: the positions at 4 and 5 are in it, the
        // alert at 4 is not.
        let mut seam = Seam::after_snapshot(5);
        assert!(!seam.is_new(&position(4)) && !seam.is_new(&position(5)) && seam.is_new(&position(6)));
        assert!(seam.is_new(&alert(4)));
        seam.snapshot_sent(9);
        assert!(!seam.is_new(&position(8)) && seam.is_new(&alert(8)));
        let seam = Seam::after_replay(5);
        assert!(!seam.is_new(&alert(5)) && !seam.is_new(&position(5)) && seam.is_new(&alert(6)));
    }

    #[test]
    fn snapshots_come_in_parts_that_hold_every_device_once() {
        let devices: Vec<Arc<RawValue>> =
            (0..100).map(|i| raw(&format!("{{\"device_id\":\"d{i}\",\"pad\":\"{}\"}}", "x".repeat(800)))).collect();
        let msgs = snapshot_messages(42, None, &devices);
        assert!(msgs.len() >= 5, "{} parts", msgs.len());
        let mut seen = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let Message::Text(t) = m else { panic!("text") };
            assert!(t.len() <= SNAPSHOT_PART_BYTES + 1024);
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(
                (v["seq"].as_i64(), v["part"].as_u64(), v["parts"].as_u64()),
                (Some(42), Some(i as u64 + 1), Some(msgs.len() as u64))
            );
            seen.extend(v["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap().to_owned()));
        }
        assert_eq!(seen, (0..100).map(|i| format!("d{i}")).collect::<Vec<_>>());
        let empty = snapshot_messages(7, Some("resync"), &[]);
        assert_eq!(empty.len(), 1);
    }

    fn raw(json: &str) -> Arc<RawValue> {
        Arc::from(RawValue::from_string(json.to_owned()).unwrap())
    }

    fn reply_json(r: Reply) -> serde_json::Value {
        let Reply::Text(t) = r else { panic!("a text reply") };
        serde_json::from_str(&t).unwrap()
    }

    #[test]
    fn the_replies_to_a_clients_messages_keep_their_fields_and_nulls() {
        let id = serde_json::json!("m-7");
        let row = liandong_store::RoutePlanRow {
            plan_seq: 3,
            team_id: "team-01".into(),
            version: 2,
            kind: "plan".into(),
            reason: String::new(),
            created_ms: 0,
            created_by: "op".into(),
            plan: "{}".into(),
            lon: 107.2,
            lat: 30.7,
            status: "acknowledged".into(),
            acked_ms: Some(1),
            acked_by: Some("lead".into()),
            escalation: "none".into(),
        };
        let rows = [
            (
                error_reply(Some(&id), "team_id", "not this leader's team"),
                serde_json::json!({"type": "error", "id": "m-7", "field": "team_id", "reason": "not this leader's team"}),
            ),
            (
                error_reply(None, "message", "not a known message"),
                serde_json::json!({"type": "error", "id": null, "field": "message", "reason": "not a known message"}),
            ),
            (
                route_ack_reply(Some(&id), &row),
                serde_json::json!({"type": "ack", "id": "m-7", "plan_seq": 3, "version": 2, "status": "acknowledged"}),
            ),
            (position_ack_reply(Some(&id), Some(12)), serde_json::json!({"type": "ack", "id": "m-7", "seq": 12})),
            (position_ack_reply(None, None), serde_json::json!({"type": "ack", "id": null, "seq": null})),
        ];
        for (reply, expected) in rows {
            assert_eq!(reply_json(reply), expected);
        }
        let replayed: serde_json::Value = serde_json::from_str(&replayed_message(10, 25)).unwrap();
        assert_eq!(replayed, serde_json::json!({"type": "replayed", "since": 10, "seq": 25}));
    }

    #[test]
    fn a_snapshot_part_names_its_kind_sequence_reason_part_and_devices() {
        let devices: Vec<Arc<RawValue>> = vec![raw(r#"{"device_id":"d1"}"#), raw(r#"{"device_id":"d2"}"#)];
        let text = |m: &Message| match m {
            Message::Text(t) => serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap(),
            _ => panic!("text"),
        };
        let first = snapshot_messages(9, None, &devices);
        assert_eq!(
            text(&first[0]),
            serde_json::json!({"type": "snapshot", "seq": 9, "part": 1, "parts": 1,
                               "devices": [{"device_id": "d1"}, {"device_id": "d2"}]})
        );
        let too_old = snapshot_messages(9, Some("since_too_old"), &[]);
        assert_eq!(
            text(&too_old[0]),
            serde_json::json!({"type": "snapshot", "seq": 9, "reason": "since_too_old", "part": 1, "parts": 1,
                               "devices": []})
        );
        let resync = snapshot_messages(9, Some("resync"), &devices[..1]);
        assert_eq!(
            text(&resync[0]),
            serde_json::json!({"type": "resync", "seq": 9, "reason": "resync", "part": 1, "parts": 1,
                               "devices": [{"device_id": "d1"}]})
        );
    }

    #[test]
    fn bbox_rows() {
        assert_eq!(parse_bbox("107.0,30.5,107.4,30.9"), Ok([107.0, 30.5, 107.4, 30.9]));
        for bad in ["107,30,107.4", "a,b,c,d", "107.4,30.5,107.0,30.9", "107,30,200,31", "NaN,30,107,31"] {
            assert!(parse_bbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filter_scope_and_viewport() {
        let team: Arc<str> = Arc::from("team-01");
        let places = Arc::new(Enricher::new(&liandong_core::CountyMap::default()));
        let f = Filter {
            reach: Reach::Team { team: team.clone(), area: None },
            role: Some(Role::PatrolLeader),
            bbox: Some([107.0, 30.5, 107.2, 30.7]),
            positions: true,
            alerts: true,
            incidents: true,
            places: places.clone(),
            person: None,
        };
        assert!(f.admits(107.1, 30.6, Some(&team), None));
        assert!(!f.admits(107.1, 30.6, Some(&Arc::from("team-02")), None), "another team");
        assert!(!f.admits(107.3, 30.6, Some(&team), None), "outside the viewport");
        assert!(!f.admits(107.1, 30.6, None, None), "a device with no unit");
        let all = Filter {
            reach: Reach::County,
            role: Some(Role::Operator),
            bbox: None,
            positions: true,
            alerts: true,
            incidents: true,
            places,
            person: None,
        };
        let roles: Vec<String> = vec!["operator".into(), "partner".into()];
        assert!(all.admits_alert(107.1, 30.6, &roles));
        assert!(!f.admits_alert(107.1, 30.6, &roles), "a patrol leader is not named by the alert");
        assert!(!Filter { alerts: false, ..all.clone() }.admits_alert(107.1, 30.6, &roles));
        assert!(all.admits(107.1, 30.6, None, None));
        assert!(!Filter { positions: false, ..all.clone() }.admits(107.1, 30.6, None, None));
        assert!(!Filter { reach: Reach::Nothing, ..all.clone() }.admits(107.1, 30.6, None, None));

        // A tagged person's phone: only the roles on the record, whatever the scope.
        let phone = TaggedPhone { person_id: "p1".into(), roles: vec!["partner".into()] };
        assert!(!all.admits(107.1, 30.6, None, Some(&phone)), "an operator not on the record");
        let partner = Filter { reach: Reach::Partner, role: Some(Role::Partner), ..all.clone() };
        assert!(partner.admits(107.1, 30.6, None, Some(&phone)), "the partner on the record");
        assert!(!partner.admits(107.1, 30.6, None, None), "but no other unit");
        assert!(Filter { role: Some(Role::Admin), ..all.clone() }.admits(107.1, 30.6, None, Some(&phone)));
        assert!(!Filter { role: None, ..all.clone() }.admits(107.1, 30.6, None, Some(&phone)), "a device");

        // A leader named by the alert, with an 8 km area around the team's post at
        // (107.1, 30.6): 0.07° of latitude is 7.8 km, 0.08° is 8.9 km.
        let area = Some((liandong_core::Position::new(107.1, 30.6).unwrap(), 8000.0));
        let leader = Filter { bbox: None, reach: Reach::Team { team: team.clone(), area }, ..f };
        let named: Vec<String> = vec!["patrol_leader".into()];
        assert!(leader.admits_alert(107.1, 30.67, &named), "inside the team's area");
        assert!(!leader.admits_alert(107.1, 30.68, &named), "beyond it");
        let county_wide = Filter { reach: Reach::Team { team, area: None }, ..leader };
        assert!(county_wide.admits_alert(107.1, 30.68, &named), "county-wide when 0");
    }

    /// An escalation reaches the person it names on any role's client (a user's token
    /// or a bound phone), and a command-centre escalation every operator and
    /// administrator too, whatever their viewport and kinds; no one else.
    #[test]
    fn an_escalation_reaches_its_person_and_at_the_command_centre_the_operators() {
        let base = Filter {
            reach: Reach::Nothing,
            role: None,
            bbox: Some([0.0, 0.0, 1.0, 1.0]),
            positions: false,
            alerts: false,
            incidents: false,
            places: Arc::new(Enricher::new(&liandong_core::CountyMap::default())),
            person: None,
        };
        let as_role = |role: &'static str, person: Option<&str>| Filter {
            role: Some(serde_json::from_value(serde_json::Value::from(role)).expect("a role's name")),
            person: person.map(Arc::from),
            ..base.clone()
        };
        for role in ["admin", "operator", "patrol_leader", "post_officer", "grid_member", "partner"] {
            let theirs = as_role(role, Some("lead-w"));
            assert!(theirs.admits_escalation(Some("lead-w"), false), "{role} acting for the person");
            assert!(!as_role(role, Some("off-w")).admits_escalation(Some("lead-w"), false), "{role}, someone else");
            assert!(!as_role(role, None).admits_escalation(Some("lead-w"), false), "{role} acting for nobody");
            let operators = matches!(role, "admin" | "operator");
            assert_eq!(as_role(role, None).admits_escalation(Some("cc-1"), true), operators, "{role}, command centre");
            assert_eq!(as_role(role, None).admits_escalation(None, true), operators, "{role}, reached nobody");
        }
        let phone = Filter { person: Some(Arc::from("lead-w")), ..base.clone() };
        assert!(phone.admits_escalation(Some("lead-w"), false), "a phone bound to the person");
        assert!(!phone.admits_escalation(Some("cc-1"), true), "a phone is no operator");
        assert!(!base.admits_escalation(Some("lead-w"), true), "an unbound phone");
        let event = FeedEvent::escalation(9, 107.1, 30.7, Some(Arc::from("lead-w")), false, Arc::from("{}"));
        assert!(phone.admits_event(&event), "outside the viewport, with every kind off");
    }
}
