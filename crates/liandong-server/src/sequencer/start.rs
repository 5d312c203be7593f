//! Start-up: the sequencer rebuilds what it knows and what its rules remember from the
//! store (device states, open incidents, route plan heads, told stale units, the tracks
//! of watched values), so that a restart neither forgets nor repeats.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use liandong_core::alerts::Dedup;
use liandong_core::fence::Membership;
use liandong_core::jump::{flags, Fix, JumpFilter};
use liandong_core::storm::StormGuard;
use liandong_core::track::{Sighting, TrackBook};
use liandong_core::{DeviceTrack, Enricher, Position};
use liandong_store::{DeviceStateRow, FeedRow, FeedTables, PositionRow, Store, StoreError};
use serde_json::value::RawValue;

use super::cameras::{TRACK_MAX_AGE_MS, TRACK_MAX_KEYS, TRACK_POINTS};
use super::memory::RuleMemory;
use super::plans::corridors_of;
use super::{DeviceLive, Known, Sequencer, SharedWatchlist};
use crate::config::AlertConfig;
use crate::feed::report_json;
use crate::feed::{Hub, LastReport, LiveView};
use crate::hashing::{FastMap, FastSet};
use crate::metrics::Metrics;
use crate::travel::TeamTravel;
use crate::zones::SharedZones;

/// What the alert rules read besides the map: the lists the API edits, and the
/// windows from the config.
pub struct RuleInputs {
    pub watchlist: SharedWatchlist,
    pub zones: SharedZones,
    pub config: AlertConfig,
    /// Each team's road graph (its pace), for diversions: the team goes there as it
    /// patrols.
    pub travel: Arc<TeamTravel>,
    /// Stored sightings of watched values from before a restart, by track key
    /// ([`super::track_key`]), so that the first alert after it still carries the track.
    pub recent_sightings: Vec<(String, Sighting)>,
    /// The duty roster, whom a late step's escalation reaches.
    pub roster: Arc<crate::roster::Roster>,
}

/// How far back a restart looks for the stale-unit alerts it must not raise again.
const STALE_MEMORY_MS: i64 = 7 * 24 * 3600 * 1000;

/// The cameras offline now, as the store has them: a restart neither forgets a silence
/// nor raises it again, and the camera's next push still says it is back.
async fn offline_cameras(store: &Store) -> Result<HashMap<String, (i64, i64)>, StoreError> {
    let statuses = store.camera_statuses(u32::MAX).await?;
    let offline = statuses.into_iter().filter_map(|s| Some((s.camera_id, (s.offline_since_ms?, s.offline_alert_seq?))));
    Ok(offline.collect())
}

/// Each device's track and last report, as the store has them.
struct DevicesNow {
    tracks: FastMap<String, DeviceLive>,
    last: FastMap<String, LastReport>,
    last_heard: FastMap<String, (i64, Position)>,
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
        let RuleInputs { watchlist, zones, config: rules, travel, recent_sightings, roster } = rules;
        let next_seq = store.max_seq().await? + 1;
        let incidents = store.open_incidents().await?.into_iter().map(|i| (i.incident_id, i)).collect();
        let notices = super::escalations::notices_from_store(&store, &incidents).await?;
        let units: FastMap<String, Option<Arc<str>>> =
            store.devices().await?.into_iter().map(|d| (d.device_id, d.unit_id.map(Arc::from))).collect();
        let DevicesNow { tracks, last, last_heard } = devices_now(&store, &enricher, &units).await?;
        let newest_fix = store.newest_fixes().await?.into_iter().collect();
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
        let mut sightings = TrackBook::new(TRACK_POINTS, TRACK_MAX_AGE_MS, TRACK_MAX_KEYS);
        for (key, s) in recent_sightings {
            sightings.record(&key, s);
        }
        let memory = RuleMemory {
            dedup,
            storms: StormGuard::new(i64::from(rules.storm_window_s) * 1000, rules.storm_max_alerts),
            sightings,
            zone_breaks: HashSet::new(),
            stale,
            adherence: HashMap::new(),
            cameras: HashMap::new(),
            // A restart forgets the SOS bursts: one press more after it raises an alert
            // again, which errs the safe way.
            sos: HashMap::new(),
            parking_alerted: parking_alerted(&store).await?,
            offline: offline_cameras(&store).await?,
        };
        let known = Known {
            enricher,
            filter,
            watchlist,
            zones,
            travel,
            // Receive time counts, not fix time: a phone uploading fixes it buffered
            // while offline is reporting.
            stale_unit_ms: i64::from(rules.stale_unit_min) * 60_000,
            live: Arc::new(RwLock::new(LiveView { seq: next_seq - 1, devices: last })),
            newest_fix,
            tracks,
            last_heard,
            incidents,
            units,
            corridors: corridors_of(&route_heads),
            route_heads,
            roster,
            notices,
        };
        let states = super::StateWrites {
            every: std::time::Duration::ZERO,
            written: std::time::Instant::now(),
            behind: FastSet::default(),
        };
        let last_write = std::time::Duration::ZERO;
        Ok(Sequencer {
            store,
            max_batch,
            next_seq,
            hub,
            metrics,
            health: Arc::default(),
            known,
            memory,
            states,
            last_write,
            last_single: false,
        })
    }
}

/// Each device's track, last report and when it was last heard, from the stored device
/// states.
async fn devices_now(
    store: &Store,
    enricher: &Enricher,
    units: &FastMap<String, Option<Arc<str>>>,
) -> Result<DevicesNow, StoreError> {
    let mut now = DevicesNow { tracks: FastMap::default(), last: FastMap::default(), last_heard: FastMap::default() };
    let mut stored_upto = 0;
    for (s, row) in store.device_states().await? {
        if let Some(row) = row {
            now.heard(&row);
            let unit_id = units.get(&s.device_id).cloned().flatten();
            now.last.insert(s.device_id.clone(), last_report(&row, unit_id, Arc::from(report_json(&row))));
        }
        stored_upto = stored_upto.max(s.seq);
        now.tracks.insert(s.device_id.clone(), (device_track(&s, enricher), s.seq));
    }
    // The states are written behind the reports (`StateWrites`): the reports after the
    // highest stored state (those of the last moments before a crash) move them on.
    let positions = FeedTables { positions: true, ..FeedTables::NONE };
    let mut replayed = 0;
    loop {
        let page = store.feed_after(stored_upto, REPLAY_PAGE, positions).await?;
        let n = page.len();
        for row in page {
            let FeedRow::Position(row) = row else { continue };
            stored_upto = row.seq;
            replayed += usize::from(now.replay(enricher, units, row));
        }
        if n < REPLAY_PAGE as usize {
            break;
        }
    }
    if replayed > 0 {
        tracing::info!(reports = replayed, "device states moved on by the reports stored after them");
    }
    Ok(now)
}

/// Reports read per query when device states are moved on at start.
const REPLAY_PAGE: u32 = 10_000;

impl DevicesNow {
    fn heard(&mut self, row: &PositionRow) {
        if let Ok(p) = Position::new(row.lon, row.lat) {
            self.last_heard.insert(row.device_id.clone(), (row.recv_ms, p));
        }
    }

    /// A stored report its device's stored state has not taken yet, applied to it as the
    /// sequencer applied it (`commit::committed`, `positions`); whether it was one.
    fn replay(&mut self, enricher: &Enricher, units: &FastMap<String, Option<Arc<str>>>, row: PositionRow) -> bool {
        if self.tracks.get(&row.device_id).is_some_and(|(_, seq)| row.seq <= *seq) {
            return false;
        }
        self.heard(&row);
        if row.flags & flags::OUT_OF_ORDER != 0 {
            return true;
        }
        let (track, seq) = self.tracks.entry(row.device_id.clone()).or_default();
        if let Ok(position) = Position::new(row.lon, row.lat) {
            liandong_core::replay(enricher, track, Fix { position, time_ms: row.fix_ms }, row.flags);
        }
        *seq = row.seq;
        let unit_id = units.get(&row.device_id).cloned().flatten();
        let json = Arc::from(report_json(&row));
        self.last.insert(row.device_id.clone(), last_report(&row, unit_id, json));
        true
    }
}

/// A device's track from its stored state; memberships of fences the current map no
/// longer has are dropped.
fn device_track(s: &DeviceStateRow, enricher: &Enricher) -> DeviceTrack {
    let fix = |f: Option<(i64, f64, f64)>| {
        f.and_then(|(t, lon, lat)| Some(Fix { position: Position::new(lon, lat).ok()?, time_ms: t }))
    };
    let mut fences: Vec<Membership> = s
        .fences
        .iter()
        .filter_map(|m| {
            let fence = enricher.fences().position_of(&m.fence)?;
            Some(Membership { fence, since_ms: m.since_ms, dwell_fired: m.dwell_fired })
        })
        .collect();
    fences.sort_by_key(|m| m.fence);
    DeviceTrack { last_trusted: fix(s.trusted), last_marked: fix(s.marked), fences }
}

/// The live view's entry for a committed report.
pub(super) fn last_report(row: &PositionRow, unit_id: Option<Arc<str>>, json: Arc<RawValue>) -> LastReport {
    LastReport {
        seq: row.seq,
        lon: row.lon,
        lat: row.lat,
        fix_ms: row.fix_ms,
        trusted: row.flags & flags::UNTRUSTED == 0,
        flags: row.flags,
        unit_id,
        json,
    }
}

/// The units whose present silence the operators were already told of: a `stale_unit`
/// alert of the last week at or after the unit's last report. Rebuilt at start, so that a
/// restart does not report every silent unit again (one alert per silence, restart or
/// not); a unit that fell silent while the server was down is still reported.
async fn told_stale(
    store: &Store,
    last_heard: &FastMap<String, (i64, Position)>,
    now_ms: i64,
) -> Result<FastSet<String>, StoreError> {
    let alerts = store.alerts_in(liandong_store::Bbox::ALL, now_ms - STALE_MEMORY_MS, i64::MAX, u32::MAX).await?;
    let mut told = FastSet::default();
    for a in alerts.iter().filter(|a| a.rule == "stale_unit") {
        let message: serde_json::Value = serde_json::from_str(&a.payload).unwrap_or_default();
        let Some(device) = message["data"]["device_id"].as_str() else { continue };
        if last_heard.get(device).is_some_and(|(heard_ms, _)| a.time_ms >= *heard_ms) {
            told.insert(device.to_owned());
        }
    }
    Ok(told)
}

/// The `no_parking` alerts of the windows still remembered, so that a restart does not
/// raise one again for a car it already reported.
async fn parking_alerted(store: &Store) -> Result<super::parking::Alerted, StoreError> {
    let since_ms = crate::time_fmt::now_ms() - super::parking::ALERTED_MEMORY_MS;
    let mut alerted = super::parking::Alerted::default();
    for a in store.parking_alerted(since_ms).await? {
        alerted.insert(a.plate, a.fence_id, a.window_start_ms, a.alert_seq);
    }
    Ok(alerted)
}
