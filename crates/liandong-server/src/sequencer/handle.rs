//! The submit side of the sequencer: the handle every endpoint submits through, what it
//! submits (reports, camera pushes, commands), what each is answered with once its
//! commit returns, and the typed refusals of a command the rules turned down.

use std::sync::Arc;

use liandong_core::incident::{Action, State as IncidentState};
use liandong_core::Position;
use liandong_ingest::isapi::CameraEvent;
use liandong_ingest::Report;
use liandong_store::{AlertAckRow, AlertRow, GridReport, IncidentRow, RoutePlanRow, StoreError};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// A validated report from a known device, with its receive time.
#[derive(Debug, Clone)]
pub struct Item {
    pub report: Report,
    pub recv_ms: i64,
    /// The device's post or team, for the live feed's role filters.
    pub unit_id: Option<Arc<str>>,
    /// The device's registered name, for the alerts that name who raised them (SOS).
    pub device_name: Arc<str>,
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
    /// When the push was accepted on the server's clock (`config.clock`), which the
    /// cameras' liveness is measured on: the camera's last seen.
    pub seen_ms: i64,
}

/// Cameras the offline check found silent (each with its last seen, as it read it), to
/// be raised offline if they still are when the commit's write lock is held.
#[derive(Debug, Clone)]
pub struct CameraSweep {
    pub silent: Vec<(Arc<CameraInfo>, i64)>,
    pub now_ms: i64,
    /// A camera last seen before `now_ms - offline_after_ms` is offline.
    pub offline_after_ms: i64,
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
        /// URLs of the photos a feedback sent (already stored).
        photo_urls: Vec<String>,
        now_ms: i64,
    },
    /// Escalates every step that is late at `now_ms`, and runs the other rules of the
    /// clock (stale units, storms that ended, checkpoints missed, plans unacknowledged).
    Tick { now_ms: i64 },
}

/// What an incident command did.
#[derive(Debug, Default)]
pub struct IncidentDone {
    /// The incident after the command (none for a tick).
    pub incident: Option<IncidentRow>,
    /// A create that found its alert already an open incident, and answered that one.
    pub existing: bool,
    /// A phone's step that the incident had already taken (its answer was lost and it
    /// sent the step again): answered with the incident as it is, nothing recorded.
    pub repeat: bool,
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

/// An operator's acknowledgement of an alert (checked by the caller: it exists and the
/// operator may see it).
pub struct AlertAckCommand {
    pub alert: AlertRow,
    pub actor: String,
    pub note: String,
    pub now_ms: i64,
}

/// A person's acknowledgement of an escalation that reached them.
#[derive(Debug, Clone)]
pub struct EscalationAckCommand {
    pub escalation_id: i64,
    /// The person the caller acts for (a user's, or the person a device is bound to).
    pub person_id: Option<String>,
    /// Whether the caller is an operator or an administrator, who may acknowledge a
    /// notice that reached nobody.
    pub operator: bool,
    pub actor: String,
    pub now_ms: i64,
}

/// What an acknowledgement of an escalation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationAckDone {
    pub escalation_id: i64,
    pub incident_id: i64,
    pub level: String,
    /// Acknowledged before: nothing was stored this time.
    pub repeat: bool,
}

/// Why the rules turned a command down; nothing of it was stored. Matched by variant,
/// never by its text, which is the reason a person is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The command names something that does not exist (or is no longer open).
    #[error(transparent)]
    Unknown(Unknown),
    /// The command contradicts what was decided before it (someone else's task, a
    /// version that is not the current one, a plan that changes nothing).
    #[error(transparent)]
    Conflict(Conflict),
    /// The command's action cannot be taken in the state its subject is in.
    #[error(transparent)]
    NotAllowed(NotAllowed),
    /// The command is someone else's to give (an escalation that reached another person).
    #[error("{0}")]
    Forbidden(String),
}

/// What a command named that the sequencer does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unknown {
    #[error("no open incident {0}")]
    OpenIncident(i64),
    #[error("team {0} has no route plan")]
    RoutePlan(String),
    #[error("no escalation {0}")]
    Escalation(i64),
}

/// How a command contradicts what was decided before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("incident {incident_id} is not assigned to device {device}")]
    NotAssigned { incident_id: i64, device: String },
    #[error("version {version} is not team {team_id}'s current plan (version {current})")]
    NotCurrentVersion { team_id: String, version: i64, current: i64 },
    /// A push `unless_same_stops` whose stops are the current plan's.
    #[error("the plan is unchanged")]
    PlanUnchanged,
}

/// An action its subject's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    /// The core's incident life cycle has no such step from this state; the reason is
    /// the core's.
    #[error("{reason}")]
    IncidentStep { state: IncidentState, action: Action, reason: String },
    #[error("a dispatch names the device to send")]
    DispatchWithoutDevice,
    /// A plan version that is no longer pending (acknowledged, superseded).
    #[error("version {version} is already {status}")]
    PlanNotPending { version: i64, status: String },
}

impl Refusal {
    /// The answer to a refused request, naming `field` (the request's input the refusal
    /// is about): 404 for an unknown thing, 409 for a conflict, 422 for an action the
    /// current state does not allow. The conversion lives here, not in `error`, because
    /// `error` sits below every module that answers HTTP (the feed among them) and so
    /// below the sequencer: it must not import it.
    pub fn into_api_error(self, field: &str) -> ApiError {
        let reason = self.to_string();
        match self {
            Refusal::Unknown(_) => ApiError::not_found_at(field, reason),
            Refusal::Conflict(_) => ApiError::conflict(field, reason),
            Refusal::NotAllowed(_) => ApiError::unprocessable(field, reason),
            Refusal::Forbidden(_) => ApiError::forbidden(field, reason),
        }
    }
}

impl From<Unknown> for Refusal {
    fn from(e: Unknown) -> Refusal {
        Refusal::Unknown(e)
    }
}

impl From<Conflict> for Refusal {
    fn from(e: Conflict) -> Refusal {
        Refusal::Conflict(e)
    }
}

impl From<NotAllowed> for Refusal {
    fn from(e: NotAllowed) -> Refusal {
        Refusal::NotAllowed(e)
    }
}

/// What a submitter waits for; the sequencer answers each job once its batch is
/// committed (or failed).
pub(super) enum Work {
    Positions(Vec<Item>),
    Route(RouteCommand),
    Camera(Box<CameraItem>),
    Incident(IncidentCommand),
    /// A grid member's report and its validated place (its id is assigned in sequence).
    Report(Box<(GridReport, Position)>),
    AlertAck(Box<AlertAckCommand>),
    EscalationAck(Box<EscalationAckCommand>),
    /// A mediation case registered, a late step, a dispute turned criminal.
    Case(Box<super::cases::CaseCommand>),
    /// Cameras found silent, to raise offline (`liveness`).
    CameraSweep(Box<CameraSweep>),
    /// Apply and publish what other instances on the same database committed.
    CatchUp,
}

/// The answer to one job, by kind of work.
pub(super) enum Acks {
    Positions(Vec<Ack>),
    Camera(CameraAck),
    /// The report's id: the sequence number of its alert.
    Report(i64),
    /// The plan after the command, or why it was refused (nothing stored).
    Route(Box<Result<RoutePlanRow, Refusal>>),
    /// The acknowledgement as stored.
    AlertAck(Box<AlertAckRow>),
    CaughtUp,
    /// The incident after the command, or why the command was refused (nothing stored).
    Incident(Box<Result<IncidentDone, Refusal>>),
    /// The acknowledgement, or why it was refused (nothing stored).
    EscalationAck(Box<Result<EscalationAckDone, Refusal>>),
    /// The number a mediation command took (a new case's id).
    Case(i64),
    /// The cameras raised offline, each with its alert's number.
    CameraSweep(Vec<(String, i64)>),
}

type Reply = oneshot::Sender<Result<Acks, Arc<StoreError>>>;

pub(super) struct Job {
    pub work: Work,
    pub reply: Reply,
}

impl Job {
    /// How much of a batch the job takes.
    pub fn size(&self) -> usize {
        match &self.work {
            Work::Positions(items) => items.len(),
            Work::Camera(_) | Work::Incident(_) | Work::Report(_) | Work::Route(_) | Work::AlertAck(_) => 1,
            Work::EscalationAck(_) | Work::Case(_) | Work::CameraSweep(_) => 1,
            Work::CatchUp => 0,
        }
    }
}

/// Answers every job with the store's error: nothing of theirs was acknowledged.
pub(super) fn fail(jobs: Vec<Job>, e: StoreError) {
    let e = Arc::new(e);
    for job in jobs {
        let _ = job.reply.send(Err(e.clone()));
    }
}

/// The handle endpoints submit reports through.
#[derive(Clone)]
pub struct Ingest {
    pub(super) tx: mpsc::Sender<Job>,
    pub(super) health: Arc<Health>,
}

/// How the sequencer task is doing, for readiness (`ready`): whether it runs, since
/// when it has been on its current batch, and whether its last group commit failed.
/// The task writes it; anyone reads it without waiting.
#[derive(Debug, Default)]
pub struct Health {
    running: std::sync::atomic::AtomicBool,
    /// When the current batch was taken (ms since `epoch`), 0 while idle.
    busy_since_ms: std::sync::atomic::AtomicU64,
    last_failed: std::sync::atomic::AtomicBool,
    epoch: std::sync::OnceLock<std::time::Instant>,
}

/// What [`Health`] says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequencerState {
    Ready,
    /// The task ended (it ends only at shutdown, or on a panic).
    Stopped,
    /// Its current batch has taken longer than asked (waiting for the store's write lock).
    Stalled(std::time::Duration),
    /// Its last group commit failed, and none has succeeded since.
    Failing,
}

use std::sync::atomic::Ordering::{Relaxed, SeqCst};

impl Health {
    fn now_ms(&self) -> u64 {
        // Never 0, which means idle.
        self.epoch.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1
    }

    pub(super) fn set_running(&self, running: bool) {
        self.running.store(running, SeqCst);
    }

    pub(super) fn busy(&self) {
        self.busy_since_ms.store(self.now_ms(), Relaxed);
    }

    pub(super) fn idle(&self) {
        self.busy_since_ms.store(0, Relaxed);
    }

    /// A group commit (or the taking of the write lock) ended: `ok` or failed.
    pub(super) fn committed(&self, ok: bool) {
        self.last_failed.store(!ok, Relaxed);
    }

    /// The state now, a batch counting as stalled after `stall`.
    pub fn state(&self, stall: std::time::Duration) -> SequencerState {
        if !self.running.load(SeqCst) {
            return SequencerState::Stopped;
        }
        let since = self.busy_since_ms.load(Relaxed);
        let busy = std::time::Duration::from_millis(if since == 0 { 0 } else { self.now_ms().saturating_sub(since) });
        if busy > stall {
            SequencerState::Stalled(busy)
        } else if self.last_failed.load(Relaxed) {
            SequencerState::Failing
        } else {
            SequencerState::Ready
        }
    }
}

/// Marks the sequencer stopped when its task ends, however it ends (a panic too).
pub(super) struct RunningGuard(pub(super) Arc<Health>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.set_running(false);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the server is shutting down")]
    Closed,
    #[error(transparent)]
    Store(Arc<StoreError>),
}

impl From<SubmitError> for ApiError {
    /// Nothing was acknowledged: the store could not commit, or the server is stopping.
    fn from(e: SubmitError) -> ApiError {
        ApiError::unavailable(&e)
    }
}

impl Ingest {
    /// Jobs waiting for the sequencer now.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// How the sequencer task is doing.
    pub fn health(&self) -> &Health {
        &self.health
    }

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

    /// Submits an incident command and waits for its commit; `Ok(Err(refusal))` when the
    /// command was refused (an impossible step, someone else's task).
    pub async fn submit_incident(&self, cmd: IncidentCommand) -> Result<Result<IncidentDone, Refusal>, SubmitError> {
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

    /// Submits a mediation command and waits for its commit: a new case (answered with
    /// its id), a late step, a dispute turned criminal (answered with the alert's number).
    pub async fn submit_case(&self, cmd: super::cases::CaseCommand) -> Result<i64, SubmitError> {
        match self.send(Work::Case(Box::new(cmd))).await? {
            Acks::Case(id) => Ok(id),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Submits cameras the offline check found silent and waits for the commit; answers
    /// those raised offline (those still silent and not offline under the write lock),
    /// each with its `camera_offline` alert's number.
    pub async fn submit_camera_sweep(&self, sweep: CameraSweep) -> Result<Vec<(String, i64)>, SubmitError> {
        match self.send(Work::CameraSweep(Box::new(sweep))).await? {
            Acks::CameraSweep(raised) => Ok(raised),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Submits a person's acknowledgement of an escalation and waits for its commit;
    /// `Ok(Err(refusal))` for an unknown escalation or someone else's.
    pub async fn submit_escalation_ack(
        &self,
        cmd: EscalationAckCommand,
    ) -> Result<Result<EscalationAckDone, Refusal>, SubmitError> {
        match self.send(Work::EscalationAck(Box::new(cmd))).await? {
            Acks::EscalationAck(r) => Ok(*r),
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

    /// Submits a route plan command and waits for its commit; `Ok(Err(refusal))` when it
    /// was refused (an unknown version, one already acknowledged).
    pub async fn submit_route(&self, cmd: RouteCommand) -> Result<Result<RoutePlanRow, Refusal>, SubmitError> {
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
