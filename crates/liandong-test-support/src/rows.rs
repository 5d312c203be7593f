//! Rows of the event tables as the store's tests write them: a device's report, a plate
//! read, a live state. The store's tests (conformance, partitions, retention) and the
//! server's partition tests used to build these again in each file; one that needs a
//! row in a particular shape overrides fields of these (`PositionRow { lon, ..position(…) }`).

use liandong_store::{CameraEventRow, DeviceStateRow, PositionRow};

/// A report of `device` fixed at `fix_ms` and received 700 ms later, with values that
/// vary with `seq` (a place near Dazhu town, a speed on even numbers, the report's
/// number in its attributes), so that a test comparing every column of many rows
/// compares rows that differ.
pub fn position(seq: i64, device: &str, fix_ms: i64) -> PositionRow {
    PositionRow {
        seq,
        device_id: device.into(),
        fix_ms,
        recv_ms: fix_ms + 700,
        lon: 107.2 + (seq % 97) as f64 * 1e-4,
        lat: 30.7 + (seq % 89) as f64 * 1e-4,
        datum: "wgs84",
        speed_mps: (seq % 2 == 0).then_some(3.5),
        course_deg: None,
        altitude_m: Some(310.0),
        accuracy_m: Some(6.0),
        battery_pct: None,
        flags: 0,
        attributes: format!("{{\"n\":{seq}}}"),
        enrichment: "{}".into(),
    }
}

/// A plate read (ANPR) of 渝A12345 by camera `cam-1` at `time_ms`, received 300 ms later.
pub fn camera_event(seq: i64, time_ms: i64) -> CameraEventRow {
    CameraEventRow {
        seq,
        camera_id: "cam-1".into(),
        event_type: "ANPR".into(),
        kind: "anpr",
        active: true,
        active_post_count: None,
        time_ms,
        recv_ms: time_ms + 300,
        plate: Some("渝A12345".into()),
        person_id: None,
        payload: "{}".into(),
    }
}

/// `device`'s live state whose last report is `seq`: no trusted or marked fix, in no
/// fence.
pub fn state(device: &str, seq: i64) -> DeviceStateRow {
    DeviceStateRow { device_id: device.into(), seq, trusted: None, marked: None, fences: vec![] }
}
