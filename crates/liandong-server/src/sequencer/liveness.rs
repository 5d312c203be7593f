//! The rules of cameras' liveness: every accepted push marks its camera seen (its
//! `camera_status` row, in the push's commit); a camera the offline check found silent
//! is raised offline once per silence (`camera_offline`, priority 3, operators and
//! administrators), marked in the same commit; its next push ends the silence with a
//! `camera_online` notice (priority 4) naming the alert it ends.
//!
//! The check runs outside the sequencer (`camera_watch`) on a read of the store, so the
//! rule decides again on the cameras' statuses as committed when the write lock is held
//! (read by `commit` into the draft): a push committed meanwhile, here or on another
//! instance sharing the database, or another instance's alert for the same silence,
//! leaves nothing to raise. The lock is every instance's, so one silence is one alert.

use liandong_store::CameraStatusRow;

use super::draft::{Draft, NewAlert};
use super::memory::RuleMemory;
use super::{CameraInfo, CameraItem, CameraSweep};
use crate::feed::messages::{AlertDetail, CameraLiveness, CameraView};
use crate::time_fmt::rfc3339_ms;

/// Who is told of a camera's silence and return.
fn roles() -> Vec<String> {
    vec!["operator".to_owned(), "admin".to_owned()]
}

fn view(cam: &CameraInfo) -> CameraView<'_> {
    CameraView { id: &cam.id, name: &cam.name, kind: &cam.kind, lon: cam.position.lon(), lat: cam.position.lat() }
}

/// A push from a camera: marks it seen and, if it was offline, tells that it is back.
pub(super) fn seen(draft: &mut Draft, memory: &mut RuleMemory, item: &CameraItem) {
    let cam = &item.camera;
    draft.rows.camera_status.push(CameraStatusRow {
        camera_id: cam.id.clone(),
        last_seen_ms: item.seen_ms,
        offline_since_ms: None,
        offline_alert_seq: None,
    });
    // Its status as committed, if the offline check read it in this batch, counts too:
    // another instance may have raised the silence after this one last caught up.
    let stored = draft.cameras_now.get(&cam.id).and_then(|s| Some((s.offline_since_ms?, s.offline_alert_seq?)));
    let Some((since_ms, alert_seq)) = memory.offline.remove(&cam.id).or(stored) else { return };
    draft.cameras_now.remove(&cam.id);
    let liveness = CameraLiveness {
        status: "online",
        last_seen: rfc3339_ms(item.seen_ms),
        offline_since: Some(rfc3339_ms(since_ms)),
        silent_s: (item.seen_ms - since_ms).max(0) / 1000,
        offline_alert_seq: Some(alert_seq),
    };
    let detail = AlertDetail::CameraLiveness { camera: view(cam), liveness };
    let alert = NewAlert {
        camera_id: Some(cam.id.clone()),
        roles: roles(),
        ..NewAlert::for_operators("camera_online", 4, cam.position, item.seen_ms, detail)
    };
    draft.raise(alert);
}

/// Raises offline each swept camera still silent and not offline as committed now (and
/// not seen earlier in this batch); answers those raised with their alerts' numbers.
pub(super) fn sweep(draft: &mut Draft, memory: &mut RuleMemory, sweep: &CameraSweep) -> Vec<(String, i64)> {
    let cutoff = sweep.now_ms - sweep.offline_after_ms;
    let mut raised = Vec::new();
    for (cam, _) in &sweep.silent {
        let Some(now) = draft.cameras_now.get(&cam.id) else { continue };
        let pushed_in_batch = draft.rows.camera_status.iter().any(|r| r.camera_id == cam.id);
        if now.offline_since_ms.is_some() || now.last_seen_ms >= cutoff || pushed_in_batch {
            continue;
        }
        let last_seen_ms = now.last_seen_ms;
        let liveness = CameraLiveness {
            status: "offline",
            last_seen: rfc3339_ms(last_seen_ms),
            offline_since: Some(rfc3339_ms(sweep.now_ms)),
            silent_s: (sweep.now_ms - last_seen_ms).max(0) / 1000,
            offline_alert_seq: None,
        };
        let detail = AlertDetail::CameraLiveness { camera: view(cam), liveness };
        let alert = NewAlert {
            camera_id: Some(cam.id.clone()),
            roles: roles(),
            ..NewAlert::for_operators("camera_offline", 3, cam.position, sweep.now_ms, detail)
        };
        let alert_seq = draft.raise(alert);
        let row = CameraStatusRow {
            camera_id: cam.id.clone(),
            last_seen_ms,
            offline_since_ms: Some(sweep.now_ms),
            offline_alert_seq: Some(alert_seq),
        };
        draft.cameras_now.insert(cam.id.clone(), row.clone());
        draft.rows.camera_status.push(row);
        memory.offline.insert(cam.id.clone(), (sweep.now_ms, alert_seq));
        raised.push((cam.id.clone(), alert_seq));
    }
    raised
}
