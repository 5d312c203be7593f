//! The rules on camera pushes and watch lists: every push is stored; a watch-list hit
//! that is not a repeat raises an alert with the camera's place, the nearest available
//! units and the track the value's sightings make across cameras; a tagged person seen
//! inside a forbidden zone makes it a zone alert; a camera in a storm raises one storm
//! alert instead of many, and another when the storm has calmed down.

use std::collections::HashSet;

use liandong_core::alerts::{nearest_units, WatchEntry, WatchKind};
use liandong_core::storm::StormVerdict;
use liandong_core::track::Sighting;
use liandong_core::Position;
use liandong_ingest::isapi::EventKind;
use liandong_store::{AuditEntry, CameraEventRow};

use super::draft::{Draft, NewAlert};
use super::memory::RuleMemory;
use super::{CameraAck, CameraInfo, CameraItem, Known, UNIT_MAX_AGE_MS};
use crate::feed::messages::{
    AlertDetail, CameraView, NearUnit, StormBegins, StormEnded, WatchHit, WatchRead, WatchRef, ZoneBreak,
};
use crate::feed::track_json;
use crate::scope::TAGGED_WATCH_PREFIX;

/// How many nearest units an alert names.
const NEAREST_UNITS: usize = 3;
/// Sightings kept per watched plate or person, and for how long.
pub(super) const TRACK_POINTS: usize = 64;
pub(super) const TRACK_MAX_AGE_MS: i64 = 6 * 3600 * 1000;
pub(super) const TRACK_MAX_KEYS: usize = 10_000;

/// How far back a restart looks for the sightings that rebuild the tracks.
pub const TRACK_REBUILD_MS: i64 = TRACK_MAX_AGE_MS;

/// The key of a watched value's track in the rules' memory.
pub fn track_key(kind: WatchKind, value: &str) -> String {
    format!("{}:{value}", kind.as_str())
}

/// The rules on one camera push (see the module comment).
pub(super) fn camera(draft: &mut Draft, memory: &mut RuleMemory, known: &Known, item: &CameraItem) -> CameraAck {
    let e = &item.event;
    let cam = &item.camera;
    memory.cameras.insert(cam.id.clone(), cam.clone());
    let time_ms = e.time_ms.unwrap_or(item.recv_ms);
    let event_seq = record(draft, item, time_ms);
    // A parking capture is also a parking record, and may raise its own alert.
    let parking_alert = super::parking::capture(draft, memory, known, item, event_seq, time_ms);
    let no_alert = CameraAck { seq: event_seq, alert_seq: parking_alert };
    // A push the camera repeats (activePostCount above 1) is the same alarm.
    let repeat = e.active_post_count.is_some_and(|c| c > 1);
    let plate = e.plate.as_ref().and_then(|p| p.normalized.as_deref());
    let person = e.face.as_ref().and_then(|f| f.person_id.as_deref());
    let read = match (plate, person) {
        (Some(p), _) => Some((WatchKind::Plate, p)),
        (None, Some(f)) => Some((WatchKind::Person, f)),
        (None, None) => None,
    };
    let Some((watch_kind, value)) = read.filter(|_| e.state_active && !repeat) else { return no_alert };
    let hit = known.watchlist.read().unwrap_or_else(|e| e.into_inner()).hit(watch_kind, value, time_ms).cloned();
    let Some(hit) = hit else { return no_alert };
    // Every sighting of a watched value extends its track, alert or not.
    let sighting = Sighting { time_ms, camera_id: cam.id.clone(), position: cam.position };
    let track = memory.sightings.record(&track_key(watch_kind, value), sighting);
    if !memory.dedup.admit(&cam.id, value, time_ms) {
        return no_alert;
    }
    let tagged = hit.id.starts_with(TAGGED_WATCH_PREFIX);
    // A tagged person inside a forbidden zone at a forbidden hour makes the sighting
    // a zone alert.
    let zone = (tagged && watch_kind == WatchKind::Person).then(|| zone_of(known, value, cam, time_ms)).flatten();
    let priority = if zone.is_some() { i64::from(hit.priority).min(2) } else { i64::from(hit.priority) };
    // Priority 1 hits always pass: a storm must not hide the one that matters.
    if priority > 1 && storm_holds(draft, memory, item, time_ms, event_seq) {
        return no_alert;
    }
    let rule = match (watch_kind, zone.is_some()) {
        (_, true) => "tagged_zone",
        (WatchKind::Plate, _) => "watchlist_plate",
        (WatchKind::Person, _) => "watchlist_person",
    };
    let detail = AlertDetail::Watch(Box::new(WatchHit {
        camera: camera_view(cam),
        read: WatchRead { kind: watch_kind.as_str(), value, event_seq, event: e },
        images: &item.images,
        watch: WatchRef { id: &hit.id, reason: &hit.reason },
        nearest_units: nearest_free_units(known, cam.position, time_ms.max(item.recv_ms)),
        track: track_json(&track),
        zone: zone.as_ref().map(|(rule, fence)| {
            let f = &known.enricher.fences().fences()[*fence];
            ZoneBreak { rule, fence: &f.id, fence_name: &f.name, source: "camera" }
        }),
    }));
    let alert = NewAlert {
        camera_id: Some(cam.id.clone()),
        event_seq: Some(event_seq),
        roles: hit.roles.clone(),
        ..NewAlert::for_operators(rule, priority, cam.position, time_ms, detail)
    };
    let alert_seq = draft.raise(alert);
    if tagged {
        audit_sighting(draft, item, &hit, value, alert_seq);
    }
    CameraAck { seq: event_seq, alert_seq: Some(alert_seq) }
}

/// Stores the push as a camera event; returns its number.
fn record(draft: &mut Draft, item: &CameraItem, time_ms: i64) -> i64 {
    let e = &item.event;
    let kind = match e.kind {
        EventKind::Anpr => "anpr",
        EventKind::Face => "face",
        EventKind::Heartbeat => "heartbeat",
        EventKind::Other => "other",
        EventKind::Parking => "parking",
    };
    let event_seq = draft.number();
    draft.rows.camera_events.push(CameraEventRow {
        seq: event_seq,
        camera_id: item.camera.id.clone(),
        event_type: e.event_type.clone(),
        kind,
        active: e.state_active,
        active_post_count: e.active_post_count.map(i64::from),
        time_ms,
        recv_ms: item.recv_ms,
        plate: e.plate.as_ref().and_then(|p| p.normalized.clone()),
        person_id: e.face.as_ref().and_then(|f| f.person_id.clone()),
        payload: serde_json::json!({"event": e, "images": item.images}).to_string(),
    });
    event_seq
}

/// The zone rule a tagged person seen at `cam` breaks now: its text and fence, for the
/// alert's `zone` field.
fn zone_of(known: &Known, person: &str, cam: &CameraInfo, time_ms: i64) -> Option<(String, usize)> {
    let z = known.zones.read().unwrap_or_else(|e| e.into_inner()).person(person)?;
    let fences = known.enricher.fences();
    let (rule, fence) = *liandong_core::zone::violations(&z.rules, fences, cam.position, time_ms).first()?;
    Some((z.rule_text[rule].clone(), fence as usize))
}

/// Whether the camera's storm holds this alert back; the first alert over the limit
/// becomes the storm's own alert. Storms are judged by receive time: the rate at which
/// alerts reach people, and the clock the ticker that ends storms reads.
fn storm_holds(draft: &mut Draft, memory: &mut RuleMemory, item: &CameraItem, time_ms: i64, event_seq: i64) -> bool {
    let cam = &item.camera;
    match memory.storms.check(&cam.id, item.recv_ms) {
        StormVerdict::Pass => false,
        StormVerdict::Suppressed => true,
        StormVerdict::Begins { alerts_in_window } => {
            let detail =
                AlertDetail::StormBegins { camera: camera_view(cam), storm: StormBegins::new(alerts_in_window) };
            let alert = NewAlert {
                camera_id: Some(cam.id.clone()),
                event_seq: Some(event_seq),
                roles: vec!["operator".to_owned(), "admin".to_owned()],
                ..NewAlert::for_operators("camera_storm", 2, cam.position, time_ms, detail)
            };
            draft.raise(alert);
            true
        }
    }
}

/// The nearest units free to go (not on an incident, not a tagged person's phone) with
/// a recent trusted fix, as the alert's `nearest_units` field.
fn nearest_free_units<'a>(known: &'a Known, place: Position, now_ms: i64) -> Vec<NearUnit<'a>> {
    let busy: HashSet<&str> = known.incidents.values().filter_map(|i| i.assigned_device.as_deref()).collect();
    let zones = known.zones.read().unwrap_or_else(|e| e.into_inner());
    let fixes = known
        .tracks
        .iter()
        .filter(|(id, _)| !busy.contains(id.as_str()) && !zones.is_tagged_device(id))
        .filter_map(|(id, (t, _))| Some((id.as_str(), t.last_trusted?)));
    nearest_units(fixes, place, now_ms, UNIT_MAX_AGE_MS, NEAREST_UNITS)
        .into_iter()
        .map(|(id, d)| NearUnit::new(id, d))
        .collect()
}

/// A tagged person seen by a camera is a read of their whereabouts: audited in the
/// same transaction as the alert.
fn audit_sighting(draft: &mut Draft, item: &CameraItem, hit: &WatchEntry, value: &str, alert_seq: i64) {
    let cam = &item.camera;
    draft.rows.audit.push(AuditEntry {
        at_ms: item.recv_ms,
        actor: format!("camera:{}", cam.id),
        action: "tagged_person_seen".into(),
        subject: value.to_owned(),
        detail: format!("alert {alert_seq} at {} for roles {}", cam.name, hit.roles.join(",")),
    });
}

/// Tells operators each camera storm that has calmed down, with how many alerts it
/// swallowed (the reads themselves are all stored).
pub(super) fn storms_ended(draft: &mut Draft, memory: &mut RuleMemory, now_ms: i64) {
    for end in memory.storms.ended(now_ms) {
        let Some(camera) = memory.cameras.get(&end.camera_id).cloned() else { continue };
        let storm = StormEnded::new(end.began_ms, end.last_ms, end.suppressed);
        let detail = AlertDetail::StormEnded { camera: camera_view(&camera), storm };
        let alert = NewAlert {
            camera_id: Some(camera.id.clone()),
            ..NewAlert::for_operators("camera_storm_end", 4, camera.position, now_ms, detail)
        };
        draft.raise(alert);
    }
}

fn camera_view(cam: &CameraInfo) -> CameraView<'_> {
    CameraView { id: &cam.id, name: &cam.name, kind: &cam.kind, lon: cam.position.lon(), lat: cam.position.lat() }
}
