//! The commit: the jobs of a batch become a [`Draft`] (each job dispatched to its
//! family of rules), the draft is written under the write lock `Writing` holds, and
//! only when the write returns are the jobs answered, the sequencer's state moved and
//! the messages published. A write that fails (a `SeqConflict` among the reasons)
//! answers every job with the error and puts the rules' memory back as it was.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use liandong_core::fence::Membership;
use liandong_core::Position;
use liandong_store::{DeviceStateRow, StoreError, StoredMembership, Writing};

use super::draft::{After, Draft, KeptFixes, Publish, Rows};
use super::handle::{fail, Acks, Job, Work};
use super::memory::RuleMemory;
use super::plans::corridors_of;
use super::start::last_report;
use super::{
    acks, cameras, cases, clock, escalations, incidents, liveness, plans, positions, reports, Ack, DeviceLive,
    IncidentCommand, Known, Sequencer,
};
use crate::feed::{position_message, FeedEvent};
use crate::hashing::FastMap;

/// The longest last write after which a commit alone still runs on the runtime's thread:
/// a disk whose `fsync` takes longer (a spinning one) would hold every request up for it.
const ALONE_WRITE_MAX: Duration = Duration::from_millis(2);

impl Sequencer {
    /// Numbers the jobs from the sequencer's next number, writes them under the write
    /// lock `writing` holds and answers each; a failed write answers each with the
    /// error and leaves memory as the store is.
    pub(super) async fn commit(&mut self, jobs: Vec<Job>, writing: Writing, alone: bool) {
        let started = Instant::now();
        // The rules' memory moves while the batch is prepared; a commit that fails puts
        // it back, so that a camera's retry of a refused push still raises its alert.
        let memory_before = self.memory.clone();
        // The stored fixes the batch's reports may repeat, read under the write lock (no
        // one else writes meanwhile) before the rules decide; in-order fixes need none.
        let fixes = match self.kept_fixes(&jobs).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot look up repeated fixes; nothing acknowledged");
                self.metrics.record_commit_failure();
                self.health.committed(false);
                fail(jobs, e);
                return;
            }
        };
        let mut draft = Draft::new(
            self.known.enricher.clone(),
            self.next_seq,
            self.known.incidents.clone(),
            self.known.route_heads.clone(),
        );
        draft.fixes = fixes;
        // The statuses an offline check decides on, read under the write lock likewise.
        draft.cameras_now = match self.swept_cameras(&jobs).await {
            Ok(now) => now,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the cameras' statuses; nothing acknowledged");
                self.metrics.record_commit_failure();
                self.health.committed(false);
                fail(jobs, e);
                return;
            }
        };
        draft.after.notices = self.known.notices.clone();
        let acks: Vec<Acks> =
            jobs.iter().map(|job| decide(&mut draft, &mut self.memory, &self.known, &job.work)).collect();
        let (next_seq, rows, after, publish) = draft.into_parts();
        let states = self.states_to_write(&after.tracks);
        let prepared = started.elapsed();
        // An escalation tick with nothing due writes nothing: no transaction, no fsync.
        let empty = rows.is_empty() && states.is_empty();
        // Dropping the unused transaction rolls it back and releases the lock.
        let result = if empty {
            Ok(())
        } else if alone && states.len() <= 1 && self.last_write < ALONE_WRITE_MAX {
            // One job and nothing queued: written on this thread (`Writing::commit_alone`),
            // blocking the runtime's worker for one short write, which it can spare while
            // nothing else waits; anything more (a batch, the states behind, a slow disk)
            // goes to the store's writer, as it is not worth holding the worker for.
            writing.commit_alone(&rows.batch(&states)).await
        } else {
            writing.commit(&rows.batch(&states)).await
        };
        self.last_write = started.elapsed() - prepared;
        tracing::debug!(
            reports = rows.positions.len(),
            camera_events = rows.camera_events.len(),
            alerts = rows.alerts.len(),
            devices = states.len(),
            prepare_us = prepared.as_micros() as u64,
            write_us = (started.elapsed() - prepared).as_micros() as u64,
            "group commit"
        );
        match result {
            Ok(()) => {
                if !states.is_empty() {
                    self.states.behind.clear();
                    self.states.written = Instant::now();
                }
                self.health.committed(true);
                self.next_seq = next_seq;
                self.committed(&rows, after, publish);
                if !empty {
                    let items = jobs.iter().map(Job::size).sum();
                    self.metrics.record_commit(rows.positions.len(), items, started.elapsed());
                }
                for (job, a) in jobs.into_iter().zip(acks) {
                    // A client that went away before its ack is not an error: the
                    // events are committed either way.
                    let _ = job.reply.send(Ok(a));
                }
            }
            Err(e) => {
                self.memory = memory_before;
                let events = rows.positions.len() + rows.camera_events.len();
                tracing::error!(error = %e, events, "group commit failed; nothing acknowledged");
                self.metrics.record_commit_failure();
                self.health.committed(false);
                fail(jobs, e);
            }
        }
    }

    /// The states this commit writes: none while the last write is less than `every`
    /// ago (the batch's devices are then marked behind), else those of the batch's
    /// devices and of every device behind.
    fn states_to_write(&mut self, batch: &FastMap<String, DeviceLive>) -> Vec<DeviceStateRow> {
        let w = &mut self.states;
        if !w.every.is_zero() && w.written.elapsed() < w.every {
            for id in batch.keys() {
                if !w.behind.contains(id) {
                    w.behind.insert(id.clone());
                }
            }
            return Vec::new();
        }
        let behind = w.behind.iter().filter(|id| !batch.contains_key(*id));
        let behind = behind.filter_map(|id| Some((id, self.known.tracks.get(id)?)));
        device_states(&self.known, batch.iter().chain(behind))
    }

    /// Writes the states still behind, in a commit of their own (when the sequencer
    /// stops: a clean stop leaves nothing to replay).
    pub(super) async fn write_states_behind(&mut self) {
        if self.states.behind.is_empty() {
            return;
        }
        let states = device_states(
            &self.known,
            self.states.behind.iter().filter_map(|id| Some((id, self.known.tracks.get(id)?))),
        );
        let written = match self.store.begin_write().await {
            Ok(w) => w.commit(&liandong_store::Batch { states: &states, ..Default::default() }).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => self.states.behind.clear(),
            // The reports are stored; the next start rebuilds the states from them.
            Err(e) => tracing::warn!(error = %e, devices = states.len(), "device states not written"),
        }
    }

    /// The acknowledgements of the stored fixes the jobs' reports may repeat: a report
    /// with its own time at or before its device's newest stored fix. The device's last
    /// report answers the usual case (an answer lost, the fix sent again) from memory;
    /// the others are looked up in the store in one query (per 500 keys).
    async fn kept_fixes(&self, jobs: &[Job]) -> Result<KeptFixes, StoreError> {
        let mut fixes = KeptFixes::default();
        let mut keys: Vec<(&str, i64)> = Vec::new();
        for job in jobs {
            let Work::Positions(items) = &job.work else { continue };
            for r in items.iter().map(|i| &i.report) {
                let Some(t) = r.fix_time_ms else { continue };
                if self.known.newest_fix.get(&r.device_id).is_some_and(|newest| t <= *newest) {
                    keys.push((&r.device_id, t));
                }
            }
        }
        if keys.is_empty() {
            return Ok(fixes);
        }
        {
            let live = self.known.live.read().unwrap_or_else(|e| e.into_inner());
            keys.retain(|&(device_id, t)| match live.devices.get(device_id) {
                Some(last) if last.fix_ms == t => {
                    fixes.keep(device_id, t, Ack { seq: last.seq, flags: last.flags });
                    false
                }
                _ => true,
            });
        }
        keys.sort_unstable();
        keys.dedup();
        if !keys.is_empty() {
            // In sequence order, so that the original of a key held twice is kept.
            for f in self.store.stored_fixes(&keys).await? {
                fixes.keep(&f.device_id, f.fix_ms, Ack { seq: f.seq, flags: f.flags });
            }
        }
        Ok(fixes)
    }

    /// The committed statuses of the cameras the batch's offline checks name (none
    /// without a check: a push needs no read).
    async fn swept_cameras(
        &self,
        jobs: &[Job],
    ) -> Result<HashMap<String, liandong_store::CameraStatusRow>, StoreError> {
        let ids: Vec<String> = jobs
            .iter()
            .filter_map(|j| if let Work::CameraSweep(s) = &j.work { Some(s) } else { None })
            .flat_map(|s| s.silent.iter().map(|(cam, _)| cam.id.clone()))
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.store.camera_statuses_of(&ids).await?.into_iter().map(|s| (s.camera_id.clone(), s)).collect())
    }

    /// The batch is committed: what the sequencer knows becomes the draft's state
    /// after it, the live view moves, then the feed (see `live`'s module comment).
    fn committed(&mut self, rows: &Rows, after: After, publish: Vec<Publish>) {
        let After { tracks, newest, position_units, position_jsons: jsons, mut incidents, route_heads, units, notices } =
            after;
        let known = &mut self.known;
        known.tracks.extend(tracks);
        incidents.retain(|_, i| i.state.is_open());
        // A device that reported is no longer stale.
        for r in &rows.positions {
            super::note_fix(&mut known.newest_fix, &r.device_id, r.fix_ms);
            self.memory.stale.remove(&r.device_id);
            if let Ok(p) = Position::new(r.lon, r.lat) {
                known.last_heard.insert(r.device_id.clone(), (r.recv_ms, p));
            }
        }
        for (device, unit) in units {
            known.units.entry(device).or_insert(Some(unit));
        }
        known.notices = notices;
        // Only a batch that changed incidents or escalations can leave a notice to forget.
        if !rows.incidents.is_empty() || !rows.escalations.is_empty() {
            escalations::prune(&mut known.notices, &incidents);
        }
        known.incidents = incidents;
        known.route_heads = route_heads;
        known.corridors = corridors_of(&known.route_heads);
        // Serialised while the batch was prepared, outside the lock; readers wait only
        // for the inserts.
        let fresh: Vec<_> = newest
            .into_iter()
            .map(|(id, i)| (id, last_report(&rows.positions[i], position_units[i].clone(), jsons[i].clone())))
            .collect();
        {
            let mut live = known.live.write().unwrap_or_else(|e| e.into_inner());
            live.devices.extend(fresh);
            live.seq = self.next_seq - 1;
        }
        let zones = known.zones.read().unwrap_or_else(|e| e.into_inner());
        for p in publish {
            match p {
                Publish::Position(i) => {
                    let r = &rows.positions[i];
                    let message = Arc::from(position_message(r.seq, &jsons[i]));
                    let tagged = zones.tagged_phone(&r.device_id);
                    let unit = position_units[i].clone();
                    self.hub.publish(FeedEvent::position(r.seq, r.lon, r.lat, unit, tagged, message));
                }
                Publish::Event(e) => self.hub.publish(e),
            }
        }
    }
}

/// One job through its family of rules: what it adds to the draft, and its answer.
fn decide(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, work: &Work) -> Acks {
    match work {
        Work::Positions(items) => Acks::Positions(positions::positions(draft, memory, known, items)),
        Work::Camera(item) => {
            let ack = cameras::camera(draft, memory, known, item);
            liveness::seen(draft, memory, item);
            // A serious alert near a team diverts it: go there, then resume.
            plans::divert(draft, known, ack.alert_seq, item.recv_ms);
            Acks::Camera(ack)
        }
        Work::Incident(cmd) => {
            if let IncidentCommand::Tick { now_ms } = cmd {
                clock::tick(draft, memory, known, *now_ms);
            }
            Acks::Incident(Box::new(incidents::incident_command(draft, cmd)))
        }
        Work::Route(cmd) => Acks::Route(Box::new(plans::route_command(draft, cmd))),
        Work::Report(r) => Acks::Report(reports::report(draft, &r.0, r.1)),
        Work::AlertAck(cmd) => Acks::AlertAck(Box::new(acks::alert_ack(draft, cmd))),
        Work::EscalationAck(cmd) => Acks::EscalationAck(Box::new(escalations::escalation_ack(draft, known, cmd))),
        Work::Case(cmd) => Acks::Case(cases::case_command(draft, cmd)),
        Work::CameraSweep(sweep) => Acks::CameraSweep(liveness::sweep(draft, memory, sweep)),
        Work::CatchUp => Acks::CaughtUp,
    }
}

/// The stored state of each of these devices.
fn device_states<'a>(known: &Known, tracks: impl Iterator<Item = (&'a String, &'a DeviceLive)>) -> Vec<DeviceStateRow> {
    let fence_id = |m: &Membership| known.enricher.fences().fences()[m.fence as usize].id.clone();
    tracks
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
        .collect()
}
