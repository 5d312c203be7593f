//! The ingest sequencer: the one task that takes validated reports and commands from
//! every endpoint, runs the rules on them in sequence, numbers what the rules decide,
//! commits the whole batch in one transaction and only then answers and publishes.
//!
//! **Nothing is acknowledged or published before its commit returns.** The sequencer is
//! the only writer of sequenced rows, so the feed's order is the store's order; a
//! commit that fails answers every job with the error and leaves memory as the store is.
//! Group commit falls out of the shape: while one commit waits for the disk, new
//! reports queue up, and the next commit takes them all (up to `max_batch`).
//!
//! The rooms: `handle` is the submit side (the commands, their answers, the typed
//! refusals); the run loop is here; `commit` prepares a `Draft` (`draft`) from the jobs,
//! writes it under `Writing` and then answers and publishes; `catch_up` applies what
//! other instances committed; `memory` is the rules' memory, saved and restored whole.
//! The rules live by family, each a function of the draft, the memory (or the part it
//! needs), what the sequencer knows, and one input: `positions` (fixes, zones,
//! adherence, stale units), `cameras` (watch lists, storms, tracks), `incidents`,
//! `escalations` (late steps to the people on duty, and their acknowledgements),
//! `plans` (route commands, diversions, corridors), `reports` (grid reports), `cases` (mediation cases),
//! `parking` (parking records and no-parking alerts), `liveness` (cameras seen, gone silent, back), `acks`
//! (alert acknowledgements), and `clock` (what the ticker's tick runs). A new rule goes
//! into its family's file, or a new file; `commit` only dispatches each job to its
//! family.

mod acks;
mod cameras;
mod cases;
mod catch_up;
mod clock;
mod commit;
mod draft;
mod escalations;
mod handle;
mod incidents;
mod liveness;
mod memory;
mod parking;
mod plans;
mod positions;
mod reports;
mod start;
#[cfg(test)]
mod wire_tests;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use liandong_core::adherence::Corridor;
use liandong_core::alerts::Watchlist;
use liandong_core::jump::JumpFilter;
use liandong_core::{DeviceTrack, Enricher, Position};
use liandong_store::{IncidentRow, RoutePlanRow, Store};
use tokio::sync::mpsc;

pub use cameras::{track_key, TRACK_REBUILD_MS};
pub use cases::CaseCommand;
pub use handle::{
    Ack, AlertAckCommand, CameraAck, CameraInfo, CameraItem, CameraSweep, Conflict, EscalationAckCommand,
    EscalationAckDone, IncidentCommand, IncidentDone, Ingest, Item, NotAllowed, Refusal, RouteCommand, SubmitError,
    Unknown,
};
pub use handle::{Health, SequencerState};
pub use plans::ROUTE_ACK_S;
pub use start::RuleInputs;

use crate::feed::{Hub, SharedLive};
use crate::hashing::{FastMap, FastSet};
use crate::metrics::Metrics;
use crate::travel::TeamTravel;
use crate::zones::SharedZones;
use handle::{fail, Acks, Job, Work};
use memory::RuleMemory;

/// The watch list, shared between the administrators' API (writes) and the rules.
pub type SharedWatchlist = Arc<RwLock<Watchlist>>;

/// Units whose last trusted fix is older than this are not "available" for an alert.
pub const UNIT_MAX_AGE_MS: i64 = 15 * 60 * 1000;

/// What the sequencer keeps per device: the domain's track and the sequence number of
/// the device's last in-order report.
type DeviceLive = (DeviceTrack, i64);

pub struct Sequencer {
    store: Store,
    max_batch: usize,
    next_seq: i64,
    hub: Hub,
    metrics: Arc<Metrics>,
    /// How the task is doing, shared with the [`Ingest`] handles (readiness).
    health: Arc<handle::Health>,
    /// What the rules read and a batch does not change until it is committed.
    known: Known,
    /// What the rules remember between batches.
    memory: RuleMemory,
    /// When the devices' states are written (see [`StateWrites`]).
    states: StateWrites,
    /// How long the last commit's write took (its `fsync` mostly): a commit alone runs
    /// on the runtime's thread only while this is short (see `commit`).
    last_write: std::time::Duration,
    /// Whether the last commit was of one job, with nothing else waiting (see `alone`).
    last_single: bool,
}

/// The devices' states (last fixes, fence memberships: `device_state`) are written
/// behind the reports, at most once per `every`, in the commit that comes then: for the
/// demo's thousand devices each state row was rewritten at every commit, some 40 % of
/// the WAL pages written and a tenth of a report's instructions. The reports themselves
/// are written before they are answered, always; after a crash `start` rebuilds each
/// state by replaying its device's reports committed after it (`replay`). Every commit
/// that writes states writes all that are behind, so every report after the highest
/// stored state's number is one a state has not taken yet, and one before it is in its
/// state. `every` is zero on PostgreSQL, where other instances commit in between.
struct StateWrites {
    every: std::time::Duration,
    /// When states were last written (or the sequencer started).
    written: std::time::Instant,
    /// Devices whose state moved since it was last written.
    behind: FastSet<String>,
}

/// What the rules read while a batch is prepared: the map and the registries, and the
/// state as committed (a batch changes a copy of it, in its draft).
struct Known {
    enricher: Arc<Enricher>,
    filter: JumpFilter,
    watchlist: SharedWatchlist,
    /// Tagged persons' zone rules.
    zones: SharedZones,
    /// Each team's road graph (its pace), for diversions.
    travel: Arc<TeamTravel>,
    /// A unit not heard from for this long is reported stale (its phone may have lost
    /// signal or power).
    stale_unit_ms: i64,
    /// The last report per device, as the feed's clients see it.
    live: SharedLive,
    /// Each device's newest stored fix time. A fix newer than its device's cannot repeat
    /// one already stored, so only fixes at or before it are looked up in the store (a
    /// phone resending what it queued offline); fixes arriving in order never are.
    newest_fix: FastMap<String, i64>,
    tracks: FastMap<String, DeviceLive>,
    /// When each device was last heard from (receive time) and where it was.
    last_heard: FastMap<String, (i64, Position)>,
    /// Open incidents by id.
    incidents: HashMap<i64, IncidentRow>,
    /// Each device's unit, for events other instances committed (reloaded from the
    /// store when an unknown device appears).
    units: FastMap<String, Option<Arc<str>>>,
    /// Each team's newest route plan version.
    route_heads: HashMap<String, RoutePlanRow>,
    /// Each team's current plan as a corridor to measure members against, by plan.
    corridors: HashMap<String, (i64, Arc<Corridor>)>,
    /// The duty roster: whom a late step's escalation reaches.
    roster: Arc<crate::roster::Roster>,
    /// Escalation notices: the unacknowledged, and those of open incidents.
    notices: escalations::Notices,
}

impl Known {
    /// A device's unit: as registered, else as learnt from its reports in this batch.
    fn unit_of(&self, device_id: &str, learnt: &FastMap<String, Arc<str>>) -> Option<Arc<str>> {
        match self.units.get(device_id) {
            Some(unit) => unit.clone(),
            None => learnt.get(device_id).cloned(),
        }
    }
}

/// Moves a device's newest stored fix time forward to `fix_ms` (never back).
fn note_fix(newest: &mut FastMap<String, i64>, device_id: &str, fix_ms: i64) {
    // Looked up by reference first: a device already known costs no new key.
    match newest.get_mut(device_id) {
        Some(t) => *t = (*t).max(fix_ms),
        None => {
            newest.insert(device_id.to_owned(), fix_ms);
        }
    }
}

impl Sequencer {
    /// The live view (last report per device and committed sequence number).
    pub fn live_view(&self) -> SharedLive {
        self.known.live.clone()
    }

    /// Writes the devices' states at most once per `every` (zero: with every commit),
    /// behind the reports; see [`StateWrites`].
    pub fn write_states_every(mut self, every: std::time::Duration) -> Sequencer {
        self.states.every = every;
        self
    }

    /// Spawns the sequencer task. It ends, after committing everything queued, when
    /// every [`Ingest`] handle is dropped.
    pub fn spawn(self, queue: usize) -> (Ingest, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue);
        let health = self.health.clone();
        // Running from here, so that a server is ready as soon as it is built.
        health.set_running(true);
        (Ingest { tx, health }, tokio::spawn(self.run(rx)))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let _running = handle::RunningGuard(self.health.clone());
        loop {
            self.health.idle();
            let Some(first) = rx.recv().await else { break };
            self.health.busy();
            let mut n = first.size();
            let mut jobs = vec![first];
            self.take_queued(&mut rx, &mut jobs, &mut n);
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
                    self.metrics.record_commit_failure();
                    self.health.committed(false);
                    fail(jobs, e);
                    continue;
                }
            };
            // What queued while the lock was awaited joins this commit.
            self.take_queued(&mut rx, &mut jobs, &mut n);
            if writing.committed() >= self.next_seq {
                if let Err(e) = self.catch_up_to(writing.committed()).await {
                    tracing::error!(error = %e, "cannot catch up with other instances; nothing acknowledged");
                    self.health.committed(false);
                    fail(jobs, e);
                    continue;
                }
            }
            let alone = self.alone(&mut rx, &mut jobs, &mut n).await;
            self.commit(jobs, writing, alone).await;
        }
        self.write_states_behind().await;
        tracing::info!(next_seq = self.next_seq, "ingest sequencer stopped; all queued reports committed");
    }

    /// Whether this commit is alone: one report or command, nothing else waiting for the
    /// sequencer even once the runtime has run what was ready (a connection woken with
    /// this job's may be about to send its own: yielding lets it, and costs nothing when
    /// there is none), and the commit before was one too. The last keeps a quiet moment
    /// under load apart from a quiet server: after a large batch is answered, its
    /// connections' next reports trickle in, and the first of them, committed alone on
    /// the runtime's thread, would hold the rest up (0.9x the reports at 128 connections).
    async fn alone(&mut self, rx: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>, n: &mut usize) -> bool {
        let mut single = *n == 1 && rx.is_empty();
        if single {
            tokio::task::yield_now().await;
            self.take_queued(rx, jobs, n);
            single = *n == 1 && rx.is_empty();
        }
        let alone = single && self.last_single;
        self.last_single = single;
        alone
    }

    /// Adds what is queued now to `jobs`, up to the batch's size.
    fn take_queued(&self, rx: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>, n: &mut usize) {
        while *n < self.max_batch {
            match rx.try_recv() {
                Ok(job) => {
                    *n += job.size();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
    }
}
