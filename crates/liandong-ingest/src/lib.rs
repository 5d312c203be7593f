//! Wire decoders: bytes of location reports in, validated [`Report`]s or a [`FieldError`]
//! naming the bad field out.
//!
//! Two formats arrive: the OsmAnd protocol as Traccar Client sends it ([`osmand`]) and
//! our own JSON batches for `POST /api/v1/positions` ([`json`]). Both end in the same
//! [`Report`], whose position is always WGS 84 whatever datum the device used.
//!
//! Architecture invariant: nothing here knows about devices, keys' validity, storage or
//! HTTP. A decoder turns bytes into values or says which field is wrong; whether the
//! device exists and the key matches is the server's business.

pub mod alert_json;
pub mod attributes;
pub mod form;
pub mod isapi;
pub mod json;
pub mod jt808;
pub mod osmand;
pub mod plate;
mod timestamp;
mod value;

use liandong_core::{CoordError, Datum, Position, UnixMs};

pub use timestamp::{device_time, parse_timestamp, MAX_DEVICE_MS, MIN_DEVICE_MS};

/// Why a text holding U+0000 is refused.
pub const NUL_REASON: &str = "must not contain the NUL character (U+0000)";

/// The path (`attributes.note`, `waypoints[2].name`) of the first key or string in `v`
/// that holds U+0000, which PostgreSQL cannot store in text or jsonb: accepted, it would
/// fail the whole group commit it lands in, everyone else's reports with it.
pub fn nul_path(v: &serde_json::Value) -> Option<String> {
    fn walk(v: &serde_json::Value, path: &mut String) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(map) => map.iter().any(|(k, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                let found = k.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(v, &mut path).then(|| if path.is_empty() { "body".to_owned() } else { path })
}

/// Refuses a JSON value holding U+0000 anywhere, naming where.
pub fn refuse_nul(v: &serde_json::Value) -> Result<(), FieldError> {
    match nul_path(v) {
        Some(path) => Err(FieldError::new(path, NUL_REASON)),
        None => Ok(()),
    }
}

/// A decoded, validated location report, before the device is looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// 1 to 64 characters of `[A-Za-z0-9._:@-]`.
    pub device_id: String,
    /// Always WGS 84, converted from [`Report::datum`].
    pub position: Position,
    /// The datum the device sent its coordinates in.
    pub datum: Datum,
    /// When the fix was taken, from 2000 to 2099 ([`device_time`]); `None` when the
    /// device sent no time, in which case the server uses the time it received the
    /// report.
    pub fix_time_ms: Option<UnixMs>,
    /// Ground speed; `None` if missing or negative (Android's "unknown").
    pub speed_mps: Option<f64>,
    /// Course over ground in `[0, 360)` degrees from true north; `None` if missing or
    /// negative.
    pub course_deg: Option<f64>,
    /// Altitude as the device reports it (usually above the WGS 84 ellipsoid).
    pub altitude_m: Option<f64>,
    /// Horizontal accuracy radius; `None` if missing or negative.
    pub accuracy_m: Option<f64>,
    /// Battery charge in `[0, 100]`; `None` if missing or negative.
    pub battery_pct: Option<f64>,
    /// Every key the decoder did not turn into a field above, kept for the record,
    /// within the bounds of [`attributes`] and never one of its
    /// [`attributes::SECRET_NAMES`].
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The device key (OsmAnd `key=`). A secret: never log it, never store it in
    /// attributes.
    pub key: Option<String>,
    /// The alarm the device raised with this fix, if any (the SOS button).
    pub alarm: Option<Alarm>,
    /// The device says the fix is not from its own receiver (Android's mock location,
    /// Traccar Client's `mock=true`): kept, but marked doubtful.
    pub mock: bool,
}

/// An alarm a device raises with a report. Only the alarms the rules act on are typed:
/// OsmAnd's other alarm names (Traccar knows dozens, `lowBattery`, `powerCut`, ...) stay
/// in the attributes as sent, while our strict JSON refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// The wearer pressed the SOS (panic) button: Traccar Client's `alarm=sos`.
    Sos,
}

impl Alarm {
    /// The alarm a device names, in any case (`sos`, `SOS`); None for one not typed.
    pub fn parse(name: &str) -> Option<Alarm> {
        name.trim().eq_ignore_ascii_case("sos").then_some(Alarm::Sos)
    }

    /// The alarm's name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::Sos => "sos",
        }
    }
}

/// Why an input was refused, naming the field as the sender spelt it (`lat`,
/// `location.coords.latitude`, `positions[3].time`) so that the answer is actionable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), reason: reason.into() }
    }

    /// The same error seen from an enclosing value, e.g. `lat` → `positions[3].lat`.
    fn within(self, prefix: &str) -> FieldError {
        FieldError { field: format!("{prefix}.{}", self.field), reason: self.reason }
    }
}

/// Longest device id accepted, in characters (all ASCII, so also bytes).
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// Checks a device id: 1 to [`MAX_DEVICE_ID_LEN`] characters of `[A-Za-z0-9._:@-]`.
///
/// The id ends up in URLs, logs and file names, so the alphabet is kept small; IMEIs,
/// UUIDs and `user@host` style ids all fit.
fn device_id(field: &str, id: String) -> Result<String, FieldError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-');
    if id.is_empty() || id.len() > MAX_DEVICE_ID_LEN || !id.chars().all(allowed) {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_DEVICE_ID_LEN} characters of A-Z a-z 0-9 . _ : @ -"),
        ));
    }
    Ok(id)
}

/// Converts `(lon, lat)` in `datum` to a WGS 84 position, naming the input fields the
/// coordinates came from when they are out of range.
fn position(datum: Datum, lon: f64, lat: f64, lon_field: &str, lat_field: &str) -> Result<Position, FieldError> {
    datum.to_wgs84(lon, lat).map_err(|e| {
        // The field already says which coordinate; the reason need not repeat it.
        let (field, reason) = match e {
            CoordError::LatNotFinite => (lat_field, "must be a finite number"),
            CoordError::LonNotFinite => (lon_field, "must be a finite number"),
            CoordError::LatOutOfRange => (lat_field, "must be between -90 and 90 degrees"),
            CoordError::LonOutOfRange => (lon_field, "must be between -180 and 180 degrees"),
        };
        FieldError::new(field, reason)
    })
}

/// Parses a datum name, naming `field` when it is not one we convert from.
fn datum(field: &str, name: &str) -> Result<Datum, FieldError> {
    Datum::parse(name).ok_or_else(|| FieldError::new(field, "must be wgs84, gcj02 or bd09"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn nul_is_found_by_its_path_in_keys_values_and_arrays() {
        let v = serde_json::json!({"a": 1, "b": {"c": ["ok", "x\u{0}"]}});
        assert_eq!(crate::nul_path(&v).as_deref(), Some("b.c[1]"));
        let v = serde_json::json!({"ok": {"k\u{0}": 1}});
        assert_eq!(crate::nul_path(&v).as_deref(), Some("ok.k\u{0}"));
        assert_eq!(crate::nul_path(&serde_json::json!("\u{0}")).as_deref(), Some("body"));
        assert_eq!(crate::nul_path(&serde_json::json!({"a": ["b", {"c": "d"}]})), None);
        let e = crate::osmand::decode(Some("id=1&lat=30&lon=107&x=%00"), None, b"").unwrap_err();
        assert_eq!((e.field.as_str(), e.reason.as_str()), ("x", crate::NUL_REASON));
        let e = crate::alert_json::decode(br#"{"camera_id": "c\u0000"}"#).unwrap_err();
        assert_eq!(e.field, "camera_id");
    }

    use super::*;

    #[test]
    fn device_ids() {
        let rows = [
            ("123456", true),
            ("866001047123456", true),
            ("unit-7.officer_3:a@b", true),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
            ("", false),
            ("has space", false),
            ("警员1", false),
            ("a/b", false),
        ];
        for (id, ok) in rows {
            assert_eq!(device_id("id", id.to_owned()).is_ok(), ok, "{id:?}");
        }
    }

    #[test]
    fn field_error_displays_field_then_reason() {
        let e = FieldError::new("lat", "must be a number").within("positions[3]");
        assert_eq!(e.to_string(), "positions[3].lat: must be a number");
    }
}
