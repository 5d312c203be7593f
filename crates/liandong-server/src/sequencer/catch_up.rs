//! Catching up with other instances on a shared database: what they committed is read
//! back in sequence order, applied to what this instance knows (reports move units and
//! the live view, incident steps update the open incidents, plans the route heads) and
//! published on this instance's live feed.

use std::collections::BTreeSet;
use std::sync::Arc;

use liandong_core::jump::{flags, Fix};
use liandong_core::Position;
use liandong_store::{FeedRow, FeedTables, PositionRow, StoreError};
use serde_json::value::RawValue;

use super::plans::corridors_of;
use super::start::last_report;
use super::Sequencer;
use crate::feed::report_json;
use crate::feed::{position_message, FeedEvent};

/// Events read per round.
const PAGE: u32 = 10_000;

impl Sequencer {
    /// Applies what other instances committed since this one last looked, in sequence
    /// order.
    pub(super) async fn catch_up(&mut self) -> Result<(), StoreError> {
        let target = self.store.max_seq().await?;
        self.catch_up_to(target).await
    }

    /// Applies what other instances committed up to `target`.
    pub(super) async fn catch_up_to(&mut self, target: i64) -> Result<(), StoreError> {
        let mut after = self.next_seq - 1;
        while after < target {
            let (feed, upto) = self.read_after(after, target).await?;
            if feed.iter().any(|c| matches!(c, FeedRow::RouteEvent(_))) {
                self.known.route_heads =
                    self.store.route_plan_heads().await?.into_iter().map(|p| (p.team_id.clone(), p)).collect();
                self.known.corridors = corridors_of(&self.known.route_heads);
            }
            let unknown =
                feed.iter().any(|c| matches!(c, FeedRow::Position(r) if !self.known.units.contains_key(&r.device_id)));
            if unknown {
                self.known.units =
                    self.store.devices().await?.into_iter().map(|d| (d.device_id, d.unit_id.map(Arc::from))).collect();
            }
            let touched: BTreeSet<i64> = feed
                .iter()
                .filter_map(|c| if let FeedRow::IncidentEvent(e) = c { Some(e.incident_id) } else { None })
                .collect();
            for id in touched {
                match self.store.incident(id).await? {
                    Some((inc, _)) if inc.state.is_open() => {
                        self.known.incidents.insert(id, inc);
                    }
                    _ => {
                        self.known.incidents.remove(&id);
                    }
                }
            }
            let n = feed.len();
            for c in feed {
                self.apply_caught(c);
            }
            self.next_seq = upto + 1;
            after = upto;
            let mut live = self.known.live.write().unwrap_or_else(|e| e.into_inner());
            live.seq = live.seq.max(upto);
            drop(live);
            tracing::debug!(events = n, upto, "caught up with other instances");
        }
        Ok(())
    }

    /// What others committed after `after`, in sequence order, and how far it is
    /// complete (at most `target`).
    async fn read_after(&self, after: i64, target: i64) -> Result<(Vec<FeedRow>, i64), StoreError> {
        let mut feed = self.store.feed_after(after, PAGE, FeedTables::ALL).await?;
        // The read is complete up to its last event; a short one, up to everything
        // committed when it ran, which includes `target`.
        let upto = match feed.last() {
            Some(last) if feed.len() >= PAGE as usize => last.seq().min(target),
            _ => target,
        };
        feed.retain(|c| c.seq() <= upto);
        Ok((feed, upto))
    }

    /// One event another instance committed: applied to memory and published.
    fn apply_caught(&mut self, c: FeedRow) {
        match c {
            FeedRow::Position(r) => self.apply_position(r),
            FeedRow::Alert(a) => {
                // Another instance's camera silence or return: this one's pushes and
                // checks must know it (see `liveness`).
                match (a.rule.as_str(), a.camera_id.as_ref()) {
                    ("camera_offline", Some(id)) => {
                        self.memory.offline.insert(id.clone(), (a.time_ms, a.seq));
                    }
                    ("camera_online", Some(id)) => {
                        self.memory.offline.remove(id);
                    }
                    _ => {}
                }
                let roles: Arc<[String]> = a.roles.into();
                self.hub.publish(FeedEvent::alert(a.seq, a.lon, a.lat, roles, Arc::from(a.payload)));
            }
            FeedRow::IncidentEvent(e) => {
                let unit = e.unit_id.as_deref().map(Arc::from);
                let priority = crate::feed::incident_priority(&e.payload);
                self.hub.publish(FeedEvent::incident(e.seq, e.lon, e.lat, unit, priority, Arc::from(e.payload)));
            }
            FeedRow::RouteEvent(e) => {
                let team = Some(Arc::from(e.team_id.as_str()));
                self.hub.publish(FeedEvent::route(e.seq, e.lon, e.lat, team, Arc::from(e.payload)));
            }
            FeedRow::AlertAck(a) => {
                let roles: Arc<[String]> = a.roles.into();
                self.hub.publish(FeedEvent::alert(a.seq, a.lon, a.lat, roles, Arc::from(a.payload)));
            }
            FeedRow::Escalation(e) => self.apply_escalation(e),
        }
    }

    /// An escalation event another instance committed: remembered (its acknowledgement
    /// may come here) and published.
    fn apply_escalation(&mut self, e: liandong_store::EscalationRow) {
        super::escalations::fold(&mut self.known.notices, &e);
        let person = e.person_id.as_deref().map(Arc::from);
        let operators = e.level == "command_centre";
        self.hub.publish(FeedEvent::escalation(e.seq, e.lon, e.lat, person, operators, Arc::from(e.payload)));
    }

    /// A report another instance committed moves its unit and the live view (when in
    /// order), and goes out on the feed.
    fn apply_position(&mut self, r: PositionRow) {
        super::note_fix(&mut self.known.newest_fix, &r.device_id, r.fix_ms);
        let unit = self.known.units.get(&r.device_id).cloned().flatten();
        let json: Arc<RawValue> = Arc::from(report_json(&r));
        let trusted = r.flags & flags::UNTRUSTED == 0;
        if r.flags & flags::OUT_OF_ORDER == 0 {
            let entry = self.known.tracks.entry(r.device_id.clone()).or_default();
            entry.1 = r.seq;
            if let (true, Ok(p)) = (trusted, Position::new(r.lon, r.lat)) {
                entry.0.last_trusted = Some(Fix { position: p, time_ms: r.fix_ms });
            }
            let last = last_report(&r, unit.clone(), json.clone());
            self.known.live.write().unwrap_or_else(|e| e.into_inner()).devices.insert(r.device_id.clone(), last);
        }
        if let Ok(p) = Position::new(r.lon, r.lat) {
            self.known.last_heard.insert(r.device_id.clone(), (r.recv_ms, p));
            self.memory.stale.remove(&r.device_id);
        }
        let message = Arc::from(position_message(r.seq, &json));
        let tagged = self.known.zones.read().unwrap_or_else(|e| e.into_inner()).tagged_phone(&r.device_id);
        self.hub.publish(FeedEvent::position(r.seq, r.lon, r.lat, unit, tagged, message));
    }
}
