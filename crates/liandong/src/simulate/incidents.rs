//! The demo's closed loop (接处警闭环): a duty operator who opens incidents through the
//! real HTTP API, by hand at the county's trouble spots, from a grid member's report or
//! from a watch-list alert the simulated cameras raised; dispatches the first
//! recommended unit; and that unit's phone (its device key) signs for the task, sets
//! off, drives to the place by road, arrives, stays, reports back, and the operator
//! closes the case. The operator also acknowledges most watch-list alerts.
//!
//! Operator steps are a command-centre operator's, signed in with the demo password (the
//! operator on duty by the roster; see `signin`), so that the timeline names the person;
//! only when signing in fails, the operator token (`--operator-token`,
//! `LIANDONG_OPERATOR_TOKEN`), else the simulator's admin token. Times are
//! simulated seconds, scaled by `--speedup`, except a deliberately slow step: the
//! server escalates late steps by its own wall clock, so a slow step waits out the
//! server's deadline in real seconds.
//!
//! While a unit handles an incident it leaves its patrol or its post's beat: its
//! position is an [`Errand`]'s, and the patrol it left is paused; afterwards it drives
//! back by road and joins its track at the nearest point (a post officer: the circle
//! round the post).

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use geo::{Distance, Haversine, Point};
use liandong_core::incident::State;
use liandong_core::road::RoadGraph;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::cameras::RaisedAlert;
use super::cases::{draw_case, feedback_note};
use super::drive::{max_response_speed_mps, way, Errand};
use super::fleet::{Field, Motion, SimDevice};
use super::places::Places;
use super::signin::Caller;
use super::support::Rng;
use super::track::Track;
use super::walk::Walk;

/// Mean simulated seconds between two incidents (a Poisson process).
const MEAN_INCIDENT_GAP_S: f64 = 90.0;
/// Incidents the desk handles at once; an arrival beyond this is let go.
const MAX_INCIDENTS_IN_HAND: usize = 16;
/// Acknowledgements waiting to be sent at once.
const MAX_PENDING_ACKS: usize = 64;
/// Recent watch-list alerts the operator may open an incident from.
const RECENT_ALERTS: usize = 16;
/// Share of watch-list alerts the operator acknowledges.
const ACK_SHARE: f64 = 0.85;
/// The operator acknowledges an alert this long after it came, simulated seconds.
const ACK_DELAY_S: Range<f64> = 5.0..30.0;
/// Share of incidents opened from a grid member's report, and from a recent
/// watch-list alert (when there is one not yet used).
const FROM_REPORT_SHARE: f64 = 0.25;
const FROM_ALERT_SHARE: f64 = 0.15;
/// One incident in this many has one step slow enough for the server to escalate it.
const SLOW_ONE_IN: u64 = 10;
/// A unit this close to the place has arrived, metres.
const ARRIVE_M: f64 = 50.0;
/// The time on scene, simulated seconds.
const ON_SCENE_S: Range<f64> = 180.0..600.0;
/// How often the desk asks again for a unit when none was recommended, and how often.
const UNIT_RETRY_S: f64 = 60.0;
const UNIT_RETRIES: usize = 3;

/// A wait before a step: simulated seconds (scaled by the speedup), or wall-clock
/// seconds for a step meant to be late by the server's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wait {
    Simulated(f64),
    Real(f64),
}

impl Wait {
    fn duration(self, speedup: f64) -> Duration {
        let s = match self {
            Wait::Simulated(s) => s / speedup.max(0.01),
            Wait::Real(s) => s,
        };
        Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
    }
}

/// The steps whose timing the simulator chooses (arrival follows from the drive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The operator reads the case and sends a unit.
    Dispatch,
    /// The officer signs for it (签收) on the phone.
    Sign,
    /// The officer sets off.
    Depart,
    /// The operator closes the case after the feedback.
    Close,
}

impl Step {
    /// The state the incident waits in before this step, whose deadline a slow step
    /// overruns.
    fn waits_in(self) -> State {
        match self {
            Step::Dispatch => State::New,
            Step::Sign => State::Dispatched,
            Step::Depart => State::SignedFor,
            Step::Close => State::Feedback,
        }
    }

    fn usual_s(self) -> Range<f64> {
        match self {
            Step::Dispatch => 20.0..90.0,
            Step::Sign => 10.0..60.0,
            Step::Depart => 5.0..40.0,
            Step::Close => 60.0..300.0,
        }
    }
}

/// Which step of an incident is slow, if any: one incident in [`SLOW_ONE_IN`], one of
/// the three steps the server watches most closely.
fn draw_slow_step(rng: &mut Rng) -> Option<Step> {
    (rng.below(SLOW_ONE_IN as usize) == 0).then(|| [Step::Dispatch, Step::Sign, Step::Depart][rng.below(3)])
}

/// The wait before `step` of an incident of `priority`: the usual human delay, or,
/// for the slow step, 10–40 % past the server's deadline (wall-clock).
fn step_wait(step: Step, priority: u8, slow: bool, rng: &mut Rng) -> Wait {
    match step.waits_in().deadline_s(priority) {
        Some(deadline_s) if slow => Wait::Real(f64::from(deadline_s) * rng.range(1.1..1.4)),
        _ => Wait::Simulated(rng.range(step.usual_s())),
    }
}

/// An answer's JSON, or an error naming the status and the server's message.
fn answer(method: &reqwest::Method, path: &str, status: reqwest::StatusCode, text: &str) -> anyhow::Result<Value> {
    anyhow::ensure!(status.is_success(), "{method} {path}: {status} {}", text.chars().take(300).collect::<String>());
    Ok(serde_json::from_str(text).unwrap_or(Value::Null))
}

/// A unit the desk may send: an index into the simulator's devices.
type DeviceIndex = usize;

/// The unit to dispatch from a `recommended` answer: the first listed unit that the
/// simulator drives (it holds the phone's key) and that `free` says is not busy.
fn choose_unit(
    recommended: &Value,
    index_of: impl Fn(&str) -> Option<DeviceIndex>,
    free: impl Fn(DeviceIndex) -> bool,
) -> Option<(DeviceIndex, String)> {
    recommended["units"]
        .as_array()?
        .iter()
        .filter_map(|u| u["device_id"].as_str())
        .find_map(|id| index_of(id).filter(|i| free(*i)).map(|i| (i, id.to_owned())))
}

/// Where the next incident comes from, as the desk decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    ByHand,
    Report,
    Alert,
}

/// A report one time in four, an alert (when one not yet used is at hand) about one in
/// seven, else a call taken by hand.
fn draw_source(rng: &mut Rng, alert_at_hand: bool) -> Source {
    let u = rng.unit();
    if u < FROM_REPORT_SHARE {
        Source::Report
    } else if u < FROM_REPORT_SHARE + FROM_ALERT_SHARE && alert_at_hand {
        Source::Alert
    } else {
        Source::ByHand
    }
}

/// Where an incident comes from, with what it needs.
enum Origin {
    ByHand,
    Report,
    Alert(RaisedAlert),
}

/// What the duty operator and the officers' phones share.
pub(crate) struct Desk {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
    /// The duty operator: a command-centre person's session (or a fixed token).
    pub(crate) operator: Caller,
    pub(crate) speedup: f64,
    pub(crate) tick: Duration,
    pub(crate) field: Arc<Mutex<Field>>,
    pub(crate) devices: Arc<Vec<SimDevice>>,
    pub(crate) roads: Option<Arc<RoadGraph>>,
    pub(crate) places: Places,
    /// One review of the report queue at a time, so that two incidents never accept
    /// the same report.
    pub(crate) reviewing: tokio::sync::Mutex<()>,
}

impl Desk {
    fn field(&self) -> MutexGuard<'_, Field> {
        self.field.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sleep(&self, wait: Wait) {
        tokio::time::sleep(wait.duration(self.speedup)).await;
    }

    /// One API call: the answer's status and text.
    async fn send(
        &self,
        method: &reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.url)).bearer_auth(bearer);
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let text = r.text().await.with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok((status, text))
    }

    /// One API call: the answer's JSON, or an error naming the status and the
    /// server's message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, text) = self.send(&method, path, bearer, body.as_ref()).await?;
        answer(&method, path, status, &text)
    }

    /// One API call as the duty operator: with a session refused (401, revoked or
    /// ended), signed in again and asked once more.
    async fn as_operator(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let token = self.operator.token().await?;
        let (mut status, mut text) = self.send(&method, path, &token, body.as_ref()).await?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            self.operator.refused(&token).await;
            let token = self.operator.token().await?;
            (status, text) = self.send(&method, path, &token, body.as_ref()).await?;
        }
        answer(&method, path, status, &text)
    }

    /// An incident step of the duty operator's.
    async fn operator_act(&self, id: i64, body: Value) -> anyhow::Result<Value> {
        self.as_operator(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/actions"), Some(body)).await
    }

    /// An incident step of the assigned phone's, with its device key.
    async fn act(&self, id: i64, bearer: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, &format!("/api/v1/incidents/{id}/actions"), bearer, Some(body)).await
    }

    pub(super) fn index_of(&self, device_id: &str) -> Option<DeviceIndex> {
        self.devices.iter().position(|d| d.id == device_id)
    }

    /// Where unit `i` is now.
    pub(super) fn here(&self, i: DeviceIndex) -> Option<Point<f64>> {
        self.field().positions.get(i).copied()
    }

    /// Routes off the runtime's threads: a search on a county's road graph takes a
    /// few milliseconds.
    async fn way(&self, from: Point<f64>, to: Point<f64>) -> (Track, f64) {
        let (roads, max_mps) = (self.roads.clone(), max_response_speed_mps(self.speedup));
        tokio::task::spawn_blocking(move || way(roads.as_deref(), from, to, max_mps))
            .await
            .unwrap_or_else(|_| way(None, from, to, max_mps))
    }

    /// Where unit `i` goes back to: the nearest point of the track its patrol left (or
    /// the plan pushed meanwhile), or its post.
    fn beat_point(&self, i: DeviceIndex, here: Point<f64>) -> Option<Point<f64>> {
        match &self.devices.get(i)?.motion {
            Motion::Patrol(k) => self.field().members.get(*k).map(|m| m.rejoin_point(here)),
            Motion::Around { centre, .. } => Some(*centre),
        }
    }

    /// Sends unit `i` back along `way` (which starts where it is); frees it.
    fn send_back(&self, i: DeviceIndex, way: Track, speed_mps: f64) {
        let Some(device) = self.devices.get(i) else { return };
        let mut field = self.field();
        match &device.motion {
            Motion::Patrol(k) => {
                if let Some(m) = field.members.get_mut(*k) {
                    m.come_back(Arc::new(way), speed_mps);
                }
                field.errands.remove(&i);
            }
            Motion::Around { .. } => {
                let walk = Walk::leg(Arc::new(way), speed_mps);
                field.errands.insert(i, Errand::Back(walk));
            }
        }
        field.busy.remove(&i);
    }
}

/// A unit sent to an incident (or a home visit). Dropped without [`Claim::release`] (an
/// error, or the demo stopping), it goes back in a straight line.
pub(super) struct Claim {
    desk: Arc<Desk>,
    unit: DeviceIndex,
    released: bool,
}

impl Claim {
    /// Claims unit `i` unless another incident has it.
    pub(super) fn take(desk: &Arc<Desk>, i: DeviceIndex) -> Option<Claim> {
        desk.field().busy.insert(i).then(|| Claim { desk: desk.clone(), unit: i, released: false })
    }

    /// The claimed unit, by device index.
    pub(super) fn unit(&self) -> DeviceIndex {
        self.unit
    }

    /// Sends the unit from where it is to `place` by road; answers the drive's
    /// simulated seconds, `None` when the unit has no position.
    pub(super) async fn send_to(&self, place: Point<f64>) -> Option<f64> {
        let here = self.desk.here(self.unit)?;
        let (track, speed_mps) = self.desk.way(here, place).await;
        let drive_s = track.length_m() / speed_mps;
        self.desk.field().errands.insert(self.unit, Errand::Going(Walk::leg(Arc::new(track), speed_mps)));
        Some(drive_s)
    }

    /// Drives the unit back by road and frees it.
    pub(super) async fn release(mut self) {
        self.released = true;
        let i = self.unit;
        if self.desk.free_if_never_left(i) {
            return;
        }
        let Some(here) = self.desk.here(i) else { return self.desk.send_back_straight(i) };
        let Some(there) = self.desk.beat_point(i, here) else { return self.desk.send_back_straight(i) };
        let (track, speed_mps) = self.desk.way(here, there).await;
        self.desk.send_back(i, track, speed_mps);
    }
}

impl Desk {
    /// Frees unit `i` if it has not set off (it is still on its patrol or beat), and
    /// says so.
    fn free_if_never_left(&self, i: DeviceIndex) -> bool {
        let mut field = self.field();
        if field.errands.contains_key(&i) {
            return false;
        }
        field.busy.remove(&i);
        true
    }

    fn send_back_straight(&self, i: DeviceIndex) {
        if self.free_if_never_left(i) {
            return;
        }
        let here = self.here(i);
        let there = here.and_then(|h| self.beat_point(i, h));
        match (here, there) {
            (Some(h), Some(t)) => {
                let (track, speed_mps) = way(None, h, t, max_response_speed_mps(self.speedup));
                self.send_back(i, track, speed_mps);
            }
            _ => {
                let mut field = self.field();
                field.errands.remove(&i);
                field.busy.remove(&i);
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.released {
            self.desk.send_back_straight(self.unit);
        }
    }
}

/// An incident as the desk opened it.
struct Opened {
    id: i64,
    place: Point<f64>,
    priority: u8,
    pub(super) kind: String,
    title: String,
    recommended: Value,
}

impl Opened {
    pub(super) fn of(answer: &Value, recommended: Value) -> Option<Opened> {
        let inc = &answer["incident"];
        Some(Opened {
            id: inc["incident_id"].as_i64()?,
            place: Point::new(inc["lon"].as_f64()?, inc["lat"].as_f64()?),
            priority: inc["priority"].as_u64().map_or(3, |p| p.clamp(1, 5) as u8),
            kind: inc["kind"].as_str().unwrap_or("other").to_owned(),
            title: inc["title"].as_str().unwrap_or_default().to_owned(),
            recommended,
        })
    }
}

/// The duty operator: opens incidents as a Poisson process, hands each to its own
/// task, and acknowledges watch-list alerts. Runs until dropped; dropping it stops
/// every incident and acknowledgement in hand.
pub(crate) async fn run_desk(desk: Arc<Desk>, mut alerts: tokio::sync::mpsc::Receiver<RaisedAlert>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut incidents: JoinSet<()> = JoinSet::new();
    let mut acks: JoinSet<()> = JoinSet::new();
    let mut recent: VecDeque<RaisedAlert> = VecDeque::with_capacity(RECENT_ALERTS);
    let mut cameras = true;
    let mut next = tokio::time::Instant::now() + Wait::Simulated(rng.exp(MEAN_INCIDENT_GAP_S)).duration(desk.speedup);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {
                // From now, not from when it was due: a stalled runtime does not
                // bring a burst of incidents.
                next = tokio::time::Instant::now() + Wait::Simulated(rng.exp(MEAN_INCIDENT_GAP_S)).duration(desk.speedup);
                if incidents.len() >= MAX_INCIDENTS_IN_HAND {
                    tracing::debug!(in_hand = incidents.len(), "the desk is full; an incident is let go");
                    continue;
                }
                let origin = match draw_source(&mut rng, !recent.is_empty()) {
                    Source::Report => Origin::Report,
                    Source::Alert => recent.pop_back().map_or(Origin::ByHand, Origin::Alert),
                    Source::ByHand => Origin::ByHand,
                };
                let seed = rng.next_u64();
                incidents.spawn(handle_incident(desk.clone(), origin, seed));
            }
            alert = alerts.recv(), if cameras => {
                let Some(alert) = alert else {
                    // No more cameras: incidents go on by hand and from reports.
                    cameras = false;
                    continue;
                };
                if rng.unit() < ACK_SHARE && acks.len() < MAX_PENDING_ACKS {
                    let wait = Wait::Simulated(rng.range(ACK_DELAY_S));
                    acks.spawn(acknowledge(desk.clone(), alert.clone(), wait));
                }
                if recent.len() == RECENT_ALERTS {
                    recent.pop_front();
                }
                recent.push_back(alert);
            }
            Some(_) = incidents.join_next(), if !incidents.is_empty() => {}
            Some(_) = acks.join_next(), if !acks.is_empty() => {}
        }
    }
}

/// The operator acknowledges a watch-list alert after reading it.
async fn acknowledge(desk: Arc<Desk>, alert: RaisedAlert, wait: Wait) {
    desk.sleep(wait).await;
    let note = format!("已核实，已通知{}附近警力关注布控车辆{}", alert.camera, alert.plate);
    let path = format!("/api/v1/alerts/{}/ack", alert.seq);
    match desk.as_operator(reqwest::Method::POST, &path, Some(json!({"note": note}))).await {
        Ok(_) => tracing::debug!(alert_seq = alert.seq, "alert acknowledged"),
        Err(e) => tracing::warn!(alert_seq = alert.seq, error = %format!("{e:#}"), "acknowledging an alert failed"),
    }
}

/// One incident from opening to closing; an error is logged, and an incident left
/// open by it is cancelled.
async fn handle_incident(desk: Arc<Desk>, origin: Origin, seed: u64) {
    let mut rng = Rng::new(seed);
    let opened = match open(&desk, origin, &mut rng).await {
        Ok(Some(o)) => o,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "opening an incident failed");
            return;
        }
    };
    let id = opened.id;
    tracing::info!(incident = id, kind = %opened.kind, priority = opened.priority, title = %opened.title,
        lon = opened.place.x(), lat = opened.place.y(), "incident opened");
    if let Err(e) = see_through(&desk, opened, &mut rng).await {
        tracing::warn!(incident = id, error = %format!("{e:#}"), "handling an incident failed; cancelling it");
        let body = json!({"action": "cancel", "note": "模拟处置中断，撤销"});
        if let Err(e) = desk.operator_act(id, body).await {
            tracing::debug!(incident = id, error = %format!("{e:#}"), "cancelling an incident failed");
        }
    }
}

/// Opens an incident from `origin` (a report or an alert, falling back to one by
/// hand), with its recommended units.
async fn open(desk: &Desk, origin: Origin, rng: &mut Rng) -> anyhow::Result<Option<Opened>> {
    match origin {
        Origin::Report => {
            if let Some(o) = open_from_report(desk, rng).await? {
                return Ok(Some(o));
            }
        }
        Origin::Alert(alert) => {
            let title = format!("布控车辆{}出现于{}", alert.plate, alert.camera);
            let body = json!({"title": title, "priority": 2, "alert_seq": alert.seq});
            match desk.as_operator(reqwest::Method::POST, "/api/v1/incidents", Some(body)).await {
                Ok(answer) => return Ok(Opened::of(&answer, answer["recommended"].clone())),
                Err(e) => {
                    tracing::debug!(alert_seq = alert.seq, error = %format!("{e:#}"), "no incident from the alert; one by hand instead")
                }
            }
        }
        Origin::ByHand => {}
    }
    let Some(place) = desk.places.sample(rng) else { return Ok(None) };
    let (kind, title, priority) = draw_case(rng);
    let body = json!({"title": title, "kind": kind.kind, "priority": priority, "lon": place.x(), "lat": place.y()});
    let answer = desk.as_operator(reqwest::Method::POST, "/api/v1/incidents", Some(body)).await?;
    Ok(Opened::of(&answer, answer["recommended"].clone()))
}

/// Accepts the newest grid report waiting for review into an incident; `None` when
/// none waits (or another review took it).
async fn open_from_report(desk: &Desk, rng: &mut Rng) -> anyhow::Result<Option<Opened>> {
    let _one_at_a_time = desk.reviewing.lock().await;
    let queue = desk.as_operator(reqwest::Method::GET, "/api/v1/reports?status=new", None).await?;
    let Some(report_id) = queue["reports"].get(0).and_then(|r| r["report_id"].as_i64()) else { return Ok(None) };
    let priority = if rng.unit() < 0.5 { 3 } else { 4 };
    let body = json!({"decision": "accept", "priority": priority});
    let path = format!("/api/v1/reports/{report_id}/review");
    let reviewed = match desk.as_operator(reqwest::Method::POST, &path, Some(body)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(report_id, error = %format!("{e:#}"), "accepting a report failed; an incident by hand instead");
            return Ok(None);
        }
    };
    let Some(id) = reviewed["incident_id"].as_i64() else { return Ok(None) };
    let answer = desk.as_operator(reqwest::Method::GET, &format!("/api/v1/incidents/{id}"), None).await?;
    tracing::debug!(report_id, incident = id, "report accepted into an incident");
    Ok(Opened::of(&answer, answer["recommended"].clone()))
}

/// The closed loop after opening: dispatch, sign for, depart, arrive, feedback, close.
async fn see_through(desk: &Arc<Desk>, inc: Opened, rng: &mut Rng) -> anyhow::Result<()> {
    let slow = draw_slow_step(rng);
    let wait = |step: Step, rng: &mut Rng| step_wait(step, inc.priority, slow == Some(step), rng);
    desk.sleep(wait(Step::Dispatch, rng)).await;

    // The first recommended unit the simulator drives and has not sent elsewhere.
    let mut recommended = inc.recommended.clone();
    let mut claim = None;
    for attempt in 0..=UNIT_RETRIES {
        let chosen = choose_unit(&recommended, |id| desk.index_of(id), |i| !desk.field().busy.contains(&i));
        if let Some((i, device_id)) = chosen {
            if let Some(c) = Claim::take(desk, i) {
                claim = Some((c, device_id));
                break;
            }
        }
        if attempt == UNIT_RETRIES {
            break;
        }
        desk.sleep(Wait::Simulated(UNIT_RETRY_S)).await;
        let path = format!("/api/v1/incidents/{}", inc.id);
        recommended = desk.as_operator(reqwest::Method::GET, &path, None).await?["recommended"].clone();
    }
    let Some((claim, device_id)) = claim else {
        tracing::info!(incident = inc.id, "no unit available; the incident is handed to the local station");
        desk.operator_act(inc.id, json!({"action": "cancel", "note": "附近无可用警力，转属地派出所处置"})).await?;
        return Ok(());
    };
    let key = desk.devices[claim.unit].key.clone();
    desk.operator_act(inc.id, json!({"action": "dispatch", "device_id": device_id, "note": "请立即前往处置"})).await?;
    tracing::debug!(incident = inc.id, device = %device_id, "unit dispatched");

    desk.sleep(wait(Step::Sign, rng)).await;
    desk.act(inc.id, &key, json!({"action": "sign", "note": "收到，马上出发"})).await?;

    desk.sleep(wait(Step::Depart, rng)).await;
    desk.act(inc.id, &key, json!({"action": "depart"})).await?;
    let drive_s = claim.send_to(inc.place).await.context("the unit has no position")?;

    // Drive until within reach of the place (a road that ends short of it is walked).
    let give_up = tokio::time::Instant::now() + Wait::Simulated(drive_s * 2.0 + 600.0).duration(desk.speedup);
    loop {
        let here = desk.here(claim.unit).context("the unit has no position")?;
        if Haversine.distance(here, inc.place) <= ARRIVE_M {
            break;
        }
        if tokio::time::Instant::now() > give_up {
            tracing::debug!(incident = inc.id, device = %device_id, "the unit did not get within reach; arriving anyway");
            break;
        }
        tokio::time::sleep(desk.tick).await;
    }
    desk.act(inc.id, &key, json!({"action": "arrive", "note": "已到达现场"})).await?;

    desk.sleep(Wait::Simulated(rng.range(ON_SCENE_S))).await;
    desk.act(inc.id, &key, json!({"action": "feedback", "note": feedback_note(&inc.kind, rng)})).await?;
    claim.release().await;

    desk.sleep(wait(Step::Close, rng)).await;
    desk.operator_act(inc.id, json!({"action": "close", "note": "处置完毕，结案归档"})).await?;
    tracing::info!(incident = inc.id, device = %device_id, kind = %inc.kind, slow_step = ?slow, "incident closed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_waits_are_human_and_slow_steps_overrun_the_servers_deadline() {
        let mut rng = Rng::new(11);
        let rows = [
            // (step, simulated range)
            (Step::Dispatch, 20.0..90.0),
            (Step::Sign, 10.0..60.0),
            (Step::Depart, 5.0..40.0),
            (Step::Close, 60.0..300.0),
        ];
        for (step, range) in rows {
            for priority in 1..=5 {
                let Wait::Simulated(s) = step_wait(step, priority, false, &mut rng) else {
                    panic!("{step:?} is simulated")
                };
                assert!(range.contains(&s), "{step:?} p{priority}: {s} s");
                let deadline_s = f64::from(step.waits_in().deadline_s(priority).unwrap());
                match step_wait(step, priority, true, &mut rng) {
                    Wait::Real(s) => assert!(s > deadline_s && s < deadline_s * 1.5, "{step:?} p{priority}: {s} s"),
                    Wait::Simulated(_) => panic!("a slow {step:?} is wall-clock"),
                }
            }
        }
        // One incident in ten has a slow step, spread over the three watched steps.
        let mut counts = [0usize; 3];
        let n = 20_000;
        for _ in 0..n {
            match draw_slow_step(&mut rng) {
                Some(Step::Dispatch) => counts[0] += 1,
                Some(Step::Sign) => counts[1] += 1,
                Some(Step::Depart) => counts[2] += 1,
                Some(Step::Close) => panic!("closing is never slow"),
                None => {}
            }
        }
        let slow: usize = counts.iter().sum();
        assert!((0.08..0.12).contains(&(slow as f64 / n as f64)), "{slow} of {n}");
        assert!(counts.iter().all(|c| *c > slow / 5), "{counts:?}");
        // The Poisson gaps average the configured mean.
        let mean = (0..n).map(|_| rng.exp(MEAN_INCIDENT_GAP_S)).sum::<f64>() / n as f64;
        assert!((mean - MEAN_INCIDENT_GAP_S).abs() < 3.0, "{mean}");
        assert_eq!(Wait::Simulated(90.0).duration(10.0), Duration::from_secs(9));
        assert_eq!(Wait::Real(90.0).duration(10.0), Duration::from_secs(90));
    }

    #[test]
    fn incidents_come_from_reports_alerts_and_calls_in_the_set_shares() {
        let mut rng = Rng::new(9);
        let n = 20_000;
        let rows = [
            // (an alert at hand, expected shares: by hand, report, alert)
            (true, [1.0 - FROM_REPORT_SHARE - FROM_ALERT_SHARE, FROM_REPORT_SHARE, FROM_ALERT_SHARE]),
            (false, [1.0 - FROM_REPORT_SHARE, FROM_REPORT_SHARE, 0.0]),
        ];
        for (at_hand, shares) in rows {
            let mut counts = [0usize; 3];
            for _ in 0..n {
                counts[draw_source(&mut rng, at_hand) as usize] += 1;
            }
            for (count, share) in counts.iter().zip(shares) {
                assert!((*count as f64 / n as f64 - share).abs() < 0.01, "alert at hand {at_hand}: {counts:?}");
            }
        }
    }

    #[test]
    fn the_first_recommended_unit_the_simulator_drives_and_is_free_is_chosen() {
        let ours = ["team-01-m03", "post-02-officer", "post-05-officer"];
        let index_of = |id: &str| ours.iter().position(|o| *o == id);
        let answer = |ids: &[&str]| json!({"basis": "road_time", "units": ids.iter().map(|id| json!({"device_id": id, "travel_s": 120.0})).collect::<Vec<_>>()});
        // (case, the recommendation, the busy units, the expected choice)
        type Row<'a> = (&'a str, Value, &'a [usize], Option<(usize, &'a str)>);
        let rows: [Row; 6] = [
            ("the first", answer(&["post-02-officer", "team-01-m03"]), &[], Some((1, "post-02-officer"))),
            ("not a phone of ours", answer(&["someone-else", "post-05-officer"]), &[], Some((2, "post-05-officer"))),
            ("the first is busy", answer(&["post-02-officer", "team-01-m03"]), &[1], Some((0, "team-01-m03"))),
            ("all busy", answer(&["post-02-officer"]), &[1], None),
            ("no units", answer(&[]), &[], None),
            ("no recommendation", Value::Null, &[], None),
        ];
        for (name, rec, busy, expected) in rows {
            let got = choose_unit(&rec, index_of, |i| !busy.contains(&i));
            assert_eq!(got, expected.map(|(i, id)| (i, id.to_owned())), "{name}");
        }
    }
}
