//! Our own JSON batch format for `POST /api/v1/positions`.
//!
//! ```json
//! {"positions": [
//!   {"device_id": "866001", "lon": 107.2048, "lat": 30.7361, "time": "2024-05-01T08:00:00Z",
//!    "datum": "gcj02", "speed_mps": 1.2, "course_deg": 90, "altitude_m": 402,
//!    "accuracy_m": 8, "battery_pct": 87, "attributes": {"shift": "night"},
//!    "alarm": "sos", "mock": false}
//! ]}
//! ```
//!
//! A bare array of items is accepted too. `device_id`, `lon` and `lat` are required;
//! `time` is an RFC 3339 string or a number of Unix **milliseconds** (no guessing by
//! magnitude: this is our format) and, when absent, the server uses the time it
//! received the batch. Unlike OsmAnd the format is strict: an unknown item key is an
//! error, because a typo such as `speed` for `speed_mps` would otherwise lose data
//! silently. `alarm` names an alarm raised with the fix: only `"sos"` (the SOS button),
//! any other name is an error naming `alarm`, since a typed alarm the server does not
//! act on would be a silent loss. `mock: true` says the fix is not from the device's own
//! receiver, and marks it doubtful. `attributes` are bounded as [`crate::attributes`] says, and any `key`,
//! `token` or `password` among them is dropped.
//!
//! Errors are two-level so that one bad item does not reject the others: a body that
//! cannot be read at all is the outer `Err`; each item is its own `Result`, its field
//! named from the root (`positions[3].lat`).

use liandong_core::Datum;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::value::{battery_pct, course_deg, json_number, json_required_number, unknown_if_negative};
use crate::{FieldError, Report};

/// Most items accepted in one request; larger batches are refused whole, so that one
/// request cannot hold the ingest sequencer for long.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// The keys an item may have.
const ITEM_KEYS: [&str; 13] = [
    "device_id",
    "lon",
    "lat",
    "time",
    "datum",
    "speed_mps",
    "course_deg",
    "altitude_m",
    "accuracy_m",
    "battery_pct",
    "attributes",
    "alarm",
    "mock",
];

/// Decodes a batch. The outer `Err` is for a body that is not a batch at all; the inner
/// results are per item, in order.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Result<Report, FieldError>>, FieldError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| FieldError::new("body", format!("is not valid JSON: {e}")))?;
    let items = match root {
        Value::Array(items) => items,
        Value::Object(mut root) => {
            let items = root.remove("positions");
            if let Some(unknown) = root.keys().next() {
                return Err(FieldError::new("body", format!("unknown key {unknown:?}; expected only \"positions\"")));
            }
            match items {
                Some(Value::Array(items)) => items,
                None => return Err(FieldError::new("positions", "is required")),
                Some(_) => return Err(FieldError::new("positions", "must be an array")),
            }
        }
        _ => return Err(FieldError::new("body", "must be an object with \"positions\" or an array of positions")),
    };
    if items.len() > MAX_BATCH_ITEMS {
        return Err(FieldError::new(
            "positions",
            format!("has {} items; at most {MAX_BATCH_ITEMS} are accepted per request", items.len()),
        ));
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| decode_item(item).map_err(|e| e.within(&format!("positions[{i}]"))))
        .collect())
}

/// Decodes one item; fields in errors are relative to the item.
fn decode_item(item: Value) -> Result<Report, FieldError> {
    crate::refuse_nul(&item)?;
    let Value::Object(mut item) = item else {
        return Err(FieldError::new("item", "must be an object"));
    };
    let mut unknown: Vec<&str> = item.keys().map(String::as_str).filter(|k| !ITEM_KEYS.contains(k)).collect();
    if !unknown.is_empty() {
        // Sorted so that the field named does not depend on the map's key order.
        unknown.sort_unstable();
        let field = unknown[0].to_owned();
        return Err(FieldError::new(
            field,
            format!("unknown key (unknown: {}); allowed: {}", unknown.join(", "), ITEM_KEYS.join(", ")),
        ));
    }

    let device_id = match item.remove("device_id") {
        Some(Value::String(id)) => crate::device_id("device_id", id)?,
        None | Some(Value::Null) => return Err(FieldError::new("device_id", "is required")),
        Some(_) => return Err(FieldError::new("device_id", "must be a string")),
    };
    let datum = match item.remove("datum") {
        None | Some(Value::Null) => Datum::Wgs84,
        Some(Value::String(name)) => crate::datum("datum", &name)?,
        Some(_) => return Err(FieldError::new("datum", "must be a string")),
    };
    let lon = json_required_number("lon", item.remove("lon"))?;
    let lat = json_required_number("lat", item.remove("lat"))?;
    let position = crate::position(datum, lon, lat, "lon", "lat")?;
    let fix_time_ms = time_ms(item.remove("time"))?;
    let speed_mps = unknown_if_negative(json_number("speed_mps", item.remove("speed_mps"))?);
    let course_deg = course_deg("course_deg", json_number("course_deg", item.remove("course_deg"))?)?;
    let altitude_m = json_number("altitude_m", item.remove("altitude_m"))?;
    let accuracy_m = unknown_if_negative(json_number("accuracy_m", item.remove("accuracy_m"))?);
    let battery_pct = battery_pct("battery_pct", json_number("battery_pct", item.remove("battery_pct"))?)?;
    let attributes = match item.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(mut attributes)) => {
            crate::attributes::bound("attributes", &mut attributes)?;
            attributes
        }
        Some(_) => return Err(FieldError::new("attributes", "must be an object")),
    };
    let alarm = match item.remove("alarm") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(
            crate::Alarm::parse(&name)
                .ok_or_else(|| FieldError::new("alarm", format!("unknown alarm {name:?}; the one alarm is \"sos\"")))?,
        ),
        Some(_) => return Err(FieldError::new("alarm", "must be a string (\"sos\")")),
    };
    let mock = match item.remove("mock") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(FieldError::new("mock", "must be true or false")),
    };
    Ok(Report {
        device_id,
        position,
        datum,
        fix_time_ms,
        speed_mps,
        course_deg,
        altitude_m,
        accuracy_m,
        battery_pct,
        attributes,
        // Batches authenticate with a bearer token, never per item.
        key: None,
        alarm,
        mock,
    })
}

/// `time`: an RFC 3339 string or an integer of Unix milliseconds, both from 2000 to
/// 2099 ([`crate::device_time`]); None when absent. Shared with the alert JSON, whose `time` is required.
pub(crate) fn time_ms(value: Option<Value>) -> Result<Option<i64>, FieldError> {
    let ms = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => {
            let t = OffsetDateTime::parse(&s, &Rfc3339)
                .map_err(|_| FieldError::new("time", "must be RFC 3339, e.g. 2024-05-01T08:00:00Z"))?;
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        }
        Some(Value::Number(n)) => {
            n.as_i64().ok_or_else(|| FieldError::new("time", "must be an integer of Unix milliseconds"))?
        }
        Some(_) => return Err(FieldError::new("time", "must be an RFC 3339 string or Unix milliseconds")),
    };
    crate::device_time(ms).map(Some).map_err(|r| FieldError::new("time", r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use liandong_core::Position;
    use serde_json::json;

    const T0_MS: i64 = 1_714_550_400_000;

    fn item() -> Value {
        json!({"device_id": "866001", "lon": 107.2048, "lat": 30.7361, "time": "2024-05-01T08:00:00Z"})
    }

    fn with(patch: Value) -> Value {
        let mut v = item();
        for (k, p) in patch.as_object().unwrap() {
            v[k] = p.clone();
        }
        v
    }

    fn without(key: &str) -> Value {
        let mut v = item();
        v.as_object_mut().unwrap().remove(key);
        v
    }

    fn minimal() -> Report {
        Report {
            device_id: "866001".into(),
            position: Position::new(107.2048, 30.7361).unwrap(),
            datum: Datum::Wgs84,
            fix_time_ms: Some(T0_MS),
            speed_mps: None,
            course_deg: None,
            altitude_m: None,
            accuracy_m: None,
            battery_pct: None,
            attributes: Map::new(),
            key: None,
            alarm: None,
            mock: false,
        }
    }

    fn one(item: Value) -> Result<Report, FieldError> {
        let body = json!({ "positions": [item] }).to_string();
        let mut out = decode_batch(body.as_bytes()).expect("a valid batch");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn accepted_items() {
        let full = json!({"device_id": "866001", "lon": 107.2048, "lat": 30.7361,
            "time": "2024-05-01T16:00:00.250+08:00", "speed_mps": 1.2, "course_deg": 90,
            "altitude_m": 402.0, "accuracy_m": 8, "battery_pct": 87,
            "attributes": {"shift": "night", "team": 3}});
        type Row = (&'static str, Value, fn(&mut Report));
        let rows: [Row; 12] = [
            ("minimal with RFC 3339 time", item(), |_| {}),
            ("no time", without("time"), |r| r.fix_time_ms = None),
            ("null time", with(json!({"time": null})), |r| r.fix_time_ms = None),
            ("time in unix ms", with(json!({"time": T0_MS})), |_| {}),
            ("every field", full, |r| {
                r.fix_time_ms = Some(T0_MS + 250);
                r.speed_mps = Some(1.2);
                r.course_deg = Some(90.0);
                r.altitude_m = Some(402.0);
                r.accuracy_m = Some(8.0);
                r.battery_pct = Some(87.0);
                r.attributes = json!({"shift": "night", "team": 3}).as_object().unwrap().clone();
            }),
            (
                "negative speed, course, accuracy, battery are unknown",
                with(json!({"speed_mps": -1, "course_deg": -1, "accuracy_m": -1, "battery_pct": -1})),
                |_| {},
            ),
            ("null optionals", with(json!({"speed_mps": null, "attributes": null, "datum": null})), |_| {}),
            ("explicit wgs84", with(json!({"datum": "WGS84"})), |_| {}),
            ("SOS alarm", with(json!({"alarm": "sos"})), |r| r.alarm = Some(crate::Alarm::Sos)),
            ("SOS alarm in capitals", with(json!({"alarm": "SOS"})), |r| r.alarm = Some(crate::Alarm::Sos)),
            ("mock location", with(json!({"mock": true})), |r| r.mock = true),
            ("null alarm, mock false", with(json!({"alarm": null, "mock": false})), |_| {}),
        ];
        for (name, input, edit) in rows {
            let mut want = minimal();
            edit(&mut want);
            assert_eq!(one(input), Ok(want), "{name}");
        }
    }

    #[test]
    fn gcj02_items_are_converted() {
        let r = one(with(json!({"datum": "gcj02"}))).unwrap();
        assert_eq!(r.datum, Datum::Gcj02);
        let sent = Position::new(107.2048, 30.7361).unwrap();
        let moved_m = r.position.haversine_m(sent);
        assert!((300.0..1500.0).contains(&moved_m), "moved {moved_m} m");
        let (lon, lat) = liandong_core::datum::wgs84_to_gcj02(r.position.lon(), r.position.lat());
        assert!((lon - 107.2048).abs() < 1e-7 && (lat - 30.7361).abs() < 1e-7);
    }

    #[test]
    fn bad_items_name_their_field_with_the_index() {
        let rows = [
            ("not an object", json!(42), "positions[0].item"),
            ("unknown key", with(json!({"speed": 3})), "positions[0].speed"),
            ("missing device_id", without("device_id"), "positions[0].device_id"),
            ("device_id a number", with(json!({"device_id": 866001})), "positions[0].device_id"),
            ("device_id with a space", with(json!({"device_id": "86 6001"})), "positions[0].device_id"),
            ("missing lon", without("lon"), "positions[0].lon"),
            ("missing lat", without("lat"), "positions[0].lat"),
            ("lat as a string", with(json!({"lat": "30.7"})), "positions[0].lat"),
            ("lat 91", with(json!({"lat": 91.0})), "positions[0].lat"),
            ("lon -180.5", with(json!({"lon": -180.5})), "positions[0].lon"),
            ("time not RFC 3339", with(json!({"time": "2024-05-01 08:00:00"})), "positions[0].time"),
            ("time as float", with(json!({"time": 1.5})), "positions[0].time"),
            ("time negative", with(json!({"time": -1})), "positions[0].time"),
            ("time after 9999", with(json!({"time": 253_402_300_800_000_i64})), "positions[0].time"),
            // Milliseconds are never guessed from seconds: seconds read as 1970 and are refused.
            ("time in seconds", with(json!({"time": 1_714_550_400})), "positions[0].time"),
            ("time before 2000", with(json!({"time": "1999-12-31T23:59:59Z"})), "positions[0].time"),
            ("time in 2100", with(json!({"time": "2100-01-01T00:00:00Z"})), "positions[0].time"),
            ("time -9e18", with(json!({"time": -9_000_000_000_000_000_000_i64})), "positions[0].time"),
            ("time a bool", with(json!({"time": true})), "positions[0].time"),
            ("unknown datum", with(json!({"datum": "utm"})), "positions[0].datum"),
            ("datum a number", with(json!({"datum": 84})), "positions[0].datum"),
            ("speed as a string", with(json!({"speed_mps": "1.2"})), "positions[0].speed_mps"),
            ("course over 360", with(json!({"course_deg": 400})), "positions[0].course_deg"),
            ("altitude a bool", with(json!({"altitude_m": false})), "positions[0].altitude_m"),
            ("accuracy an object", with(json!({"accuracy_m": {}})), "positions[0].accuracy_m"),
            ("battery over 100", with(json!({"battery_pct": 101})), "positions[0].battery_pct"),
            ("attributes an array", with(json!({"attributes": []})), "positions[0].attributes"),
            ("an alarm the server does not know", with(json!({"alarm": "powerCut"})), "positions[0].alarm"),
            ("alarm a bool", with(json!({"alarm": true})), "positions[0].alarm"),
            ("mock as a string", with(json!({"mock": "true"})), "positions[0].mock"),
        ];
        for (name, input, field) in rows {
            let err = one(input).expect_err(name);
            assert_eq!(err.field, field, "{name}: {err}");
        }
    }

    #[test]
    fn attributes_are_bounded_and_lose_their_secrets() {
        let e = one(with(json!({"attributes": {"blob": "x".repeat(1 << 20)}}))).unwrap_err();
        assert_eq!(e.field, "positions[0].attributes.blob");
        assert!(e.reason.contains("at most 1024"), "{e}");
        let many: Map<String, Value> = (0..65).map(|i| (format!("a{i}"), json!(i))).collect();
        let e = one(with(json!({ "attributes": many }))).unwrap_err();
        assert_eq!(e.field, "positions[0].attributes");
        let r = one(with(json!({"attributes": {"shift": "night", "Token": "t", "password": "p"}}))).unwrap();
        assert_eq!(Value::Object(r.attributes), json!({"shift": "night"}));
    }

    #[test]
    fn unknown_keys_are_all_listed() {
        let err = one(with(json!({"speed": 3, "acc": 5}))).unwrap_err();
        assert_eq!(err.field, "positions[0].acc");
        assert!(err.reason.contains("unknown: acc, speed"), "{}", err.reason);
    }

    #[test]
    fn one_bad_item_does_not_reject_the_others() {
        let body = json!({"positions": [item(), with(json!({"lat": 91})), item(), 7]}).to_string();
        let out = decode_batch(body.as_bytes()).unwrap();
        let fields: Vec<Option<String>> = out.iter().map(|r| r.as_ref().err().map(|e| e.field.clone())).collect();
        assert_eq!(fields, [None, Some("positions[1].lat".into()), None, Some("positions[3].item".into())]);
        assert_eq!(out[0], Ok(minimal()));
        assert_eq!(out[2], Ok(minimal()));
    }

    #[test]
    fn bodies() {
        let ok = |body: String| decode_batch(body.as_bytes()).map(|v| v.len());
        assert_eq!(ok(json!({"positions": [item(), item()]}).to_string()), Ok(2));
        assert_eq!(ok(json!([item(), item(), item()]).to_string()), Ok(3));
        assert_eq!(ok(json!({"positions": []}).to_string()), Ok(0));
        assert_eq!(ok(json!(vec![item(); MAX_BATCH_ITEMS]).to_string()), Ok(MAX_BATCH_ITEMS));

        let rows = [
            ("not JSON", "{\"positions\": [".to_owned(), "body"),
            ("empty", String::new(), "body"),
            ("a string", json!("positions").to_string(), "body"),
            ("object without positions", json!({"items": []}).to_string(), "body"),
            ("empty object", json!({}).to_string(), "positions"),
            ("positions not an array", json!({"positions": {}}).to_string(), "positions"),
            ("extra root key", json!({"positions": [], "token": "x"}).to_string(), "body"),
            ("too many items", json!({"positions": vec![item(); MAX_BATCH_ITEMS + 1]}).to_string(), "positions"),
        ];
        for (name, body, field) in rows {
            let err = decode_batch(body.as_bytes()).expect_err(name);
            assert_eq!(err.field, field, "{name}: {err}");
        }
        let err = decode_batch(b"{\"positions\": [").unwrap_err();
        assert!(err.reason.contains("line 1 column 15"), "{err}");
    }
}
