//! Every message the feed carries, and the JSON of the things they carry (a committed
//! report, a route plan, a fused track) as clients see them.

use liandong_core::jump::flags;
use liandong_core::track::Track;
use liandong_store::{PositionRow, RoutePlanRow};
use serde::Serialize;
use serde_json::value::RawValue;

/// The message of a position event.
pub fn position_message(seq: i64, report_json: &str) -> String {
    format!("{{\"type\":\"position\",\"seq\":{seq},\"data\":{report_json}}}")
}

/// A plan as JSON clients see it: the stored row with its plan body.
pub fn plan_json(p: &RoutePlanRow) -> serde_json::Value {
    let mut v = serde_json::to_value(p).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("plan".into(), serde_json::from_str(&p.plan).unwrap_or_default());
    }
    v
}

/// A committed report as clients see it: the stored row, with its attribute and
/// enrichment JSON embedded as they were stored.
#[derive(Serialize)]
struct ReportView<'a> {
    seq: i64,
    device_id: &'a str,
    fix_time: String,
    recv_ms: i64,
    lon: f64,
    lat: f64,
    datum: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed_mps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    course_deg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    altitude_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    battery_pct: Option<f64>,
    flags: Vec<&'static str>,
    attributes: &'a RawValue,
    enrichment: &'a RawValue,
}

/// The JSON of a committed report, built from its stored row: at commit, and when the
/// live state is rebuilt after a restart (one code path for both).
pub fn report_json(row: &PositionRow) -> String {
    // Both columns are only ever written from serialised JSON; an unreadable one is
    // shown as an empty object rather than failing the whole report.
    let empty = || serde_json::from_str::<&RawValue>("{}").ok();
    let (Some(attributes), Some(enrichment)) = (
        serde_json::from_str::<&RawValue>(&row.attributes).ok().or_else(empty),
        serde_json::from_str::<&RawValue>(&row.enrichment).ok().or_else(empty),
    ) else {
        return "null".into();
    };
    let v = ReportView {
        seq: row.seq,
        device_id: &row.device_id,
        fix_time: crate::time_fmt::rfc3339_ms(row.fix_ms),
        recv_ms: row.recv_ms,
        lon: row.lon,
        lat: row.lat,
        datum: row.datum,
        speed_mps: row.speed_mps,
        course_deg: row.course_deg,
        altitude_m: row.altitude_m,
        accuracy_m: row.accuracy_m,
        battery_pct: row.battery_pct,
        flags: flags::names(row.flags),
        attributes,
        enrichment,
    };
    serde_json::to_string(&v).unwrap_or_else(|_| "null".into())
}

/// A fused track as clients see it: a GeoJSON LineString's coordinates with the time
/// and camera of each point, the last place, heading and speed.
pub fn track_json(t: &Track) -> serde_json::Value {
    let last = t.last();
    serde_json::json!({
        "coordinates": t.points.iter().map(|p| [p.position.lon(), p.position.lat()]).collect::<Vec<_>>(),
        "times": t.points.iter().map(|p| crate::time_fmt::rfc3339_ms(p.time_ms)).collect::<Vec<_>>(),
        "cameras": t.points.iter().map(|p| p.camera_id.as_str()).collect::<Vec<_>>(),
        "last": {"camera_id": last.camera_id, "lon": last.position.lon(), "lat": last.position.lat(),
                 "time": crate::time_fmt::rfc3339_ms(last.time_ms)},
        "heading_deg": t.heading_deg.map(|h| (h * 10.0).round() / 10.0),
        "heading": t.heading,
        "speed_kmh": t.speed_kmh.map(|v| (v * 10.0).round() / 10.0),
        "length_m": (t.length_m * 10.0).round() / 10.0,
    })
}
