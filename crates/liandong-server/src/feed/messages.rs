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

#[cfg(test)]
mod tests {
    use liandong_core::track::Sighting;
    use liandong_core::Position;
    use serde_json::{json, Value};

    use super::*;
    use crate::time_fmt::rfc3339_ms;

    const T0: i64 = 1_767_225_600_000;

    fn row() -> PositionRow {
        PositionRow {
            seq: 5,
            device_id: "dev-1".into(),
            fix_ms: T0,
            recv_ms: T0 + 900,
            lon: 107.2,
            lat: 30.7,
            datum: "gcj02",
            speed_mps: Some(3.5),
            course_deg: None,
            altitude_m: Some(310.0),
            accuracy_m: None,
            battery_pct: Some(80.0),
            flags: flags::JUMP | flags::POOR_ACCURACY,
            attributes: r#"{"ignition":true}"#.into(),
            enrichment: r#"{"in_county":true,"township":{"id":"t1","name":"Zhuyang"}}"#.into(),
        }
    }

    #[test]
    fn a_position_message_carries_the_report_with_its_stored_attributes_and_enrichment() {
        let message: Value = serde_json::from_str(&position_message(5, &report_json(&row()))).unwrap();
        assert_eq!(
            message,
            json!({"type": "position", "seq": 5, "data": {
                "seq": 5, "device_id": "dev-1", "fix_time": rfc3339_ms(T0), "recv_ms": T0 + 900,
                "lon": 107.2, "lat": 30.7, "datum": "gcj02", "speed_mps": 3.5, "altitude_m": 310.0,
                "battery_pct": 80.0, "flags": ["jump", "poor_accuracy"], "attributes": {"ignition": true},
                "enrichment": {"in_county": true, "township": {"id": "t1", "name": "Zhuyang"}},
            }})
        );
    }

    #[test]
    fn a_report_with_unreadable_stored_json_shows_empty_objects() {
        let bad = PositionRow { attributes: "{not json".into(), enrichment: String::new(), ..row() };
        let v: Value = serde_json::from_str(&report_json(&bad)).unwrap();
        assert_eq!((&v["attributes"], &v["enrichment"]), (&json!({}), &json!({})));
    }

    #[test]
    fn a_plan_is_its_row_with_the_plan_body_as_json() {
        let row = RoutePlanRow {
            plan_seq: 3,
            team_id: "team-01".into(),
            version: 2,
            kind: "plan".into(),
            reason: "r".into(),
            created_ms: T0,
            created_by: "op".into(),
            plan: r#"{"waypoints":[{"id":"cp-1"}]}"#.into(),
            lon: 107.2,
            lat: 30.7,
            status: "acknowledged".into(),
            acked_ms: Some(T0 + 1),
            acked_by: Some("lead".into()),
            escalation: "none".into(),
        };
        let expected = json!({"plan_seq": 3, "team_id": "team-01", "version": 2, "kind": "plan", "reason": "r",
            "created_ms": T0, "created_by": "op", "plan": {"waypoints": [{"id": "cp-1"}]}, "lon": 107.2, "lat": 30.7,
            "status": "acknowledged", "acked_ms": T0 + 1, "acked_by": "lead", "escalation": "none"});
        assert_eq!(serde_json::to_value(plan_json(&row)).unwrap(), expected);
        let unreadable = RoutePlanRow { plan: "{".into(), ..row };
        assert_eq!(serde_json::to_value(plan_json(&unreadable)).unwrap()["plan"], Value::Null);
    }

    #[test]
    fn a_track_carries_its_line_times_cameras_last_place_heading_and_speed() {
        let sighting = |camera: &str, lon: f64, time_ms: i64| Sighting {
            time_ms,
            camera_id: camera.into(),
            position: Position::new(lon, 30.7).unwrap(),
        };
        let track = Track {
            points: vec![sighting("cam-1", 107.2, T0), sighting("cam-2", 107.21, T0 + 60_000)],
            heading_deg: Some(89.987_6),
            heading: Some("E"),
            speed_kmh: Some(57.345),
            length_m: 956.789,
        };
        assert_eq!(
            serde_json::to_value(track_json(&track)).unwrap(),
            json!({"coordinates": [[107.2, 30.7], [107.21, 30.7]], "times": [rfc3339_ms(T0), rfc3339_ms(T0 + 60_000)],
                   "cameras": ["cam-1", "cam-2"],
                   "last": {"camera_id": "cam-2", "lon": 107.21, "lat": 30.7, "time": rfc3339_ms(T0 + 60_000)},
                   "heading_deg": 90.0, "heading": "E", "speed_kmh": 57.3, "length_m": 956.8})
        );
    }
}
