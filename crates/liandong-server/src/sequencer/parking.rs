//! The rule on parking captures (违停抓拍): every plate a parking capture reads becomes a
//! parking record, written in the camera event's group commit and numbered as it, with
//! its place (township, the post whose jurisdiction it is in) and the no-parking fence
//! it is inside. A capture inside a fence while the fence's hours run is a violation and
//! raises a `no_parking` alert — once per plate, fence and window: a car that stays and
//! is captured again raises nothing new, the same car in the next window does.
//!
//! A capture is a parking event ([`EventKind::Parking`]: `illegalParking`, `parking`, an
//! ANPR push flagged illegal parking) from any camera, or any plate read of a camera of
//! kind `parking`, whose reads are all of parked vehicles.

use std::collections::HashMap;

use liandong_core::no_parking::Violation;
use liandong_ingest::isapi::EventKind;
use liandong_store::ParkingRecordRow;

use super::draft::{Draft, NewAlert};
use super::memory::RuleMemory;
use super::{CameraInfo, CameraItem, Known};
use crate::feed::messages::{AlertDetail, CameraView, NoParkingFields};
use crate::time_fmt::rfc3339_ms;

/// The alert's priority: a matter for the post, not an emergency.
const NO_PARKING_PRIORITY: i64 = 3;

/// How long the rule remembers the alerts it raised, by their window's start; a
/// restart rebuilds as much from the store (a window lasts a day at most).
pub const ALERTED_MEMORY_MS: i64 = 2 * 24 * 3_600_000;

/// The alerts raised, by (plate, fence id, window start), with their numbers.
#[derive(Debug, Clone, Default)]
pub struct Alerted(HashMap<(String, String, i64), i64>);

impl Alerted {
    /// Remembers an alert raised (at start-up, from the store).
    pub fn insert(&mut self, plate: String, fence_id: String, window_start_ms: i64, alert_seq: i64) {
        self.0.insert((plate, fence_id, window_start_ms), alert_seq);
    }

    fn contains(&self, plate: &str, fence_id: &str, window_start_ms: i64) -> bool {
        self.0.contains_key(&(plate.to_owned(), fence_id.to_owned(), window_start_ms))
    }

    /// Forgets windows that started more than [`ALERTED_MEMORY_MS`] before `now_ms`.
    fn prune(&mut self, now_ms: i64) {
        self.0.retain(|(_, _, start), _| *start >= now_ms - ALERTED_MEMORY_MS);
    }
}

/// Whether a push is a parking capture with a plate; the plate if so.
fn captured_plate(item: &CameraItem) -> Option<&str> {
    let e = &item.event;
    let parking = e.kind == EventKind::Parking || (e.kind == EventKind::Anpr && item.camera.kind == "parking");
    if !parking || !e.state_active {
        return None;
    }
    e.plate.as_ref()?.normalized.as_deref()
}

/// The rule on one camera push already stored as event `event_seq` (see the module
/// comment); the number of the alert it raised, if any.
pub(super) fn capture(
    draft: &mut Draft,
    memory: &mut RuleMemory,
    known: &Known,
    item: &CameraItem,
    event_seq: i64,
    time_ms: i64,
) -> Option<i64> {
    let plate = captured_plate(item)?;
    let cam = &item.camera;
    let zones = known.enricher.no_parking();
    let placed = zones.place(cam.position, time_ms);
    let place = draft.place(cam.position);
    let mut row = ParkingRecordRow {
        seq: event_seq,
        camera_id: cam.id.clone(),
        plate: plate.to_owned(),
        time_ms,
        lon: cam.position.lon(),
        lat: cam.position.lat(),
        township: place.township.map(|t| t.name.to_owned()),
        post_id: place.post.map(|p| p.id.to_owned()),
        fence_id: placed.map(|p| zones.fences()[p.fence].id.clone()),
        window_start_ms: placed.and_then(|p| p.violation()).map(|v| v.window_start_ms),
        alert_seq: None,
    };
    let violation = placed.and_then(|p| p.violation());
    row.alert_seq = violation.and_then(|v| alert_once(draft, memory, known, item, plate, event_seq, v));
    let alert_seq = row.alert_seq;
    draft.rows.parking_records.push(row);
    alert_seq
}

/// Raises the violation's alert unless its plate, fence and window has one.
fn alert_once(
    draft: &mut Draft,
    memory: &mut RuleMemory,
    known: &Known,
    item: &CameraItem,
    plate: &str,
    event_seq: i64,
    v: Violation,
) -> Option<i64> {
    let fence = &known.enricher.no_parking().fences()[v.fence];
    if memory.parking_alerted.contains(plate, &fence.id, v.window_start_ms) {
        return None;
    }
    memory.parking_alerted.prune(item.recv_ms.max(v.window_start_ms));
    let cam = &item.camera;
    let detail = AlertDetail::NoParking {
        camera: camera_view(cam),
        parking: NoParkingFields {
            plate,
            event_seq,
            images: &item.images,
            fence: &fence.id,
            fence_name: &fence.name,
            fence_kind: &fence.kind,
            hours: &fence.hours,
            window_start: rfc3339_ms(v.window_start_ms),
            window_end: rfc3339_ms(v.window_end_ms),
        },
    };
    let time_ms = item.event.time_ms.unwrap_or(item.recv_ms);
    let alert = NewAlert {
        camera_id: Some(cam.id.clone()),
        event_seq: Some(event_seq),
        roles: vec!["operator".to_owned()],
        ..NewAlert::for_operators("no_parking", NO_PARKING_PRIORITY, cam.position, time_ms, detail)
    };
    let alert_seq = draft.raise(alert);
    memory.parking_alerted.insert(plate.to_owned(), fence.id.clone(), v.window_start_ms, alert_seq);
    Some(alert_seq)
}

fn camera_view(cam: &CameraInfo) -> CameraView<'_> {
    CameraView { id: &cam.id, name: &cam.name, kind: &cam.kind, lon: cam.position.lon(), lat: cam.position.lat() }
}
