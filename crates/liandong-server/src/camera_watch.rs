//! Cameras' liveness: the ticker that finds cameras silent past `[cameras]
//! offline_after_s` and submits them to the sequencer, which raises each once per silence
//! (`camera_offline`; see `sequencer::liveness`), and the camera statuses and availability
//! the status endpoints answer.
//!
//! A camera's status is `online` once heard from (any accepted push), `offline` from the
//! moment the check raised its silence until its next push, and `unknown` while it has
//! never been heard from: a camera on the map or in the registry that never pushed may
//! not be connected yet, so it is counted but never alerted (the county's map lists
//! every camera, and most systems' cameras do not push at all).
//!
//! The check reads the store, not this instance's memory, so that pushes another
//! instance accepted count; it runs on `config.clock` like `mediation_watch`, so that a
//! test moves time by hand. It reads at most [`MAX_SILENT`] cameras a tick (the longest
//! silent first), far above a county's 200 to 2,000 cameras going silent at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use liandong_store::CameraStatusRow;
use serde::Serialize;

use crate::error::ApiError;
use crate::sequencer::{CameraInfo, CameraSweep};
use crate::time_fmt::rfc3339_ms;
use crate::AppState;

/// How often the store is asked for silent cameras: one read of a partial index that is
/// empty while every camera talks.
pub const TICK: Duration = Duration::from_secs(1);

/// Most silent cameras submitted per tick; the rest wait for the next.
pub const MAX_SILENT: u32 = 2000;

/// Most camera statuses read for the status endpoints: far above a county's cameras.
pub const MAX_CAMERAS: u32 = 50_000;

/// Submits the cameras silent at `now_ms` that are not offline yet; answers those the
/// sequencer raised offline. A failed read or submit is logged and tried again at the
/// next tick. Cameras no longer in the registry are left alone.
pub async fn tick(s: &AppState, now_ms: i64) -> Vec<(String, i64)> {
    let offline_after_ms = i64::from(s.config.cameras.offline_after_s) * 1000;
    let silent = match s.store.cameras_silent(now_ms - offline_after_ms, MAX_SILENT).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "reading silent cameras failed; trying again");
            return Vec::new();
        }
    };
    if silent.is_empty() {
        return Vec::new();
    }
    let infos = registry(s);
    let silent: Vec<(Arc<CameraInfo>, i64)> =
        silent.into_iter().filter_map(|r| Some((infos.get(&r.camera_id)?.clone(), r.last_seen_ms))).collect();
    if silent.is_empty() {
        return Vec::new();
    }
    match s.ingest.submit_camera_sweep(CameraSweep { silent, now_ms, offline_after_ms }).await {
        Ok(raised) => {
            for (camera, alert_seq) in &raised {
                tracing::info!(camera = %camera, alert_seq, "camera gone silent: offline");
            }
            raised
        }
        Err(e) => {
            tracing::warn!(error = %e, "raising silent cameras offline failed; trying again");
            Vec::new()
        }
    }
}

/// Runs [`tick`] every [`TICK`] on the server's clock until shutdown.
pub async fn run(state: Weak<AppState>, shutdown: tokio::sync::watch::Receiver<bool>) {
    crate::clock::every(state, shutdown, TICK, |s| async move {
        tick(&s, s.config.clock.now_ms()).await;
    })
    .await;
}

/// The registry's cameras by id (the map's and those registered by API).
fn registry(s: &AppState) -> HashMap<String, Arc<CameraInfo>> {
    let cameras = s.cameras.read().unwrap_or_else(|e| e.into_inner());
    cameras.infos().into_iter().map(|c| (c.id.clone(), c)).collect()
}

/// One camera's status, as `GET /api/v1/cameras/status` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CameraState {
    pub camera_id: String,
    pub name: String,
    /// The system it belongs to: `skynet`, `huiyan`, `sharp_eyes`, `checkpoint`,
    /// `parking`, `face` (or what the registry says).
    pub kind: String,
    pub lon: f64,
    pub lat: f64,
    /// The township its place falls in (the map's townships layer), if any.
    pub township_id: Option<String>,
    pub township: Option<String>,
    /// `online`, `offline` or `unknown` (never heard from).
    pub status: &'static str,
    pub last_seen: Option<String>,
    pub offline_since: Option<String>,
    /// The `camera_offline` alert of the silence under way.
    pub offline_alert_seq: Option<i64>,
}

/// Every registered camera's status, by camera id.
pub async fn states(s: &AppState) -> Result<Vec<CameraState>, ApiError> {
    let rows = s.store.camera_statuses(MAX_CAMERAS).await.map_err(|e| ApiError::unavailable(&e))?;
    let rows: HashMap<String, CameraStatusRow> = rows.into_iter().map(|r| (r.camera_id.clone(), r)).collect();
    let mut out: Vec<CameraState> = registry(s).into_values().map(|c| state_of(s, &c, rows.get(&c.id))).collect();
    out.sort_by(|a, b| a.camera_id.cmp(&b.camera_id));
    Ok(out)
}

fn state_of(s: &AppState, c: &CameraInfo, row: Option<&CameraStatusRow>) -> CameraState {
    let view = s.enricher.view(&s.enricher.enrich(c.position), &[], &[]);
    let status = match row {
        None => "unknown",
        Some(r) if r.offline_since_ms.is_some() => "offline",
        Some(_) => "online",
    };
    CameraState {
        camera_id: c.id.clone(),
        name: c.name.clone(),
        kind: c.kind.clone(),
        lon: c.position.lon(),
        lat: c.position.lat(),
        township_id: view.township.as_ref().map(|t| t.id.to_owned()),
        township: view.township.as_ref().map(|t| t.name.to_owned()),
        status,
        last_seen: row.map(|r| rfc3339_ms(r.last_seen_ms)),
        offline_since: row.and_then(|r| r.offline_since_ms).map(rfc3339_ms),
        offline_alert_seq: row.and_then(|r| r.offline_alert_seq),
    }
}

/// Counts of one group of cameras by status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub cameras: u32,
    pub online: u32,
    pub offline: u32,
    pub unknown: u32,
    /// The share online now of the cameras heard from (online / (online + offline)),
    /// 0 to 1; None when none of the group was ever heard from.
    pub online_share: Option<f64>,
}

impl Counts {
    fn add(&mut self, status: &str) {
        self.cameras += 1;
        match status {
            "online" => self.online += 1,
            "offline" => self.offline += 1,
            _ => self.unknown += 1,
        }
        let heard = self.online + self.offline;
        self.online_share = (heard > 0).then(|| f64::from(self.online) / f64::from(heard));
    }
}

/// A group's counts: a system (`kind`) or a township.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    /// The township's name (for a kind, the kind again).
    pub name: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Availability now: all cameras, by system and by township (cameras outside every
/// township under the id `none`).
#[derive(Debug, Clone, Serialize)]
pub struct Availability {
    pub total: Counts,
    pub by_kind: Vec<Group>,
    pub by_township: Vec<Group>,
}

/// Counts the cameras' statuses, overall, by kind and by township (each list by id).
pub fn availability(states: &[CameraState]) -> Availability {
    let mut total = Counts::default();
    let mut kinds: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut townships: BTreeMap<&str, (&str, Counts)> = BTreeMap::new();
    for c in states {
        total.add(c.status);
        kinds.entry(&c.kind).or_default().add(c.status);
        let (id, name) = (c.township_id.as_deref().unwrap_or("none"), c.township.as_deref().unwrap_or(""));
        townships.entry(id).or_insert_with(|| (name, Counts::default())).1.add(c.status);
    }
    Availability {
        total,
        by_kind: kinds.into_iter().map(|(k, counts)| Group { id: k.to_owned(), name: k.to_owned(), counts }).collect(),
        by_township: townships
            .into_iter()
            .map(|(id, (name, counts))| Group { id: id.to_owned(), name: name.to_owned(), counts })
            .collect(),
    }
}
