//! Our own JSON for `POST /api/v1/alerts`: camera alerts from systems that do not speak
//! ISAPI (a platform's webhook, a script, a test), decoded into the same
//! [`CameraEvent`] as [`crate::isapi`] pushes.
//!
//! ```json
//! {"camera_id": "cam-001", "time": "2024-05-01T08:00:00+08:00", "kind": "anpr",
//!  "plate": "川S·12345", "plate_color": "blue", "confidence": 97.5,
//!  "image_base64": "/9j/4AAQSkZJRgABAQ..."}
//! ```
//!
//! `camera_id`, `time` and `kind` are required. `time` is an RFC 3339 string or an integer
//! of Unix **milliseconds** (no guessing by magnitude: this is our format), from 2000
//! to 2099 ([`crate::device_time`]). `kind` is
//! `anpr`, `face` or `other`. `plate` (with `plate_color`) makes a [`PlateRead`],
//! `person_id` a [`FaceRead`]; `confidence` (0 to 100) is the plate read's for `anpr`
//! and the face match's for `face`. `image_base64` is one JPEG in standard base64
//! (RFC 4648 §4), optionally as a `data:image/jpeg;base64,` URL. The format is strict:
//! an unknown key is an error naming it, because a typo (`plate_colour`) would otherwise
//! lose data silently.

use serde_json::{Map, Value};

use crate::isapi::{CameraEvent, CameraRef, EventKind, FaceRead, PlateRead};
use crate::plate::normalize_plate;
use crate::FieldError;

/// The keys an alert may have.
const KEYS: [&str; 8] =
    ["camera_id", "time", "kind", "plate", "plate_color", "person_id", "confidence", "image_base64"];

/// Longest text accepted in `plate`, `plate_color` and `person_id`, in characters.
const MAX_TEXT_CHARS: usize = 64;

/// Decodes one alert.
pub fn decode(body: &[u8]) -> Result<CameraEvent, FieldError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| FieldError::new("body", format!("is not valid JSON: {e}")))?;
    crate::refuse_nul(&root)?;
    let Value::Object(mut root) = root else {
        return Err(FieldError::new("body", "must be a JSON object"));
    };
    let mut unknown: Vec<&str> = root.keys().map(String::as_str).filter(|k| !KEYS.contains(k)).collect();
    if !unknown.is_empty() {
        // Sorted so that the field named does not depend on the map's key order.
        unknown.sort_unstable();
        return Err(FieldError::new(
            unknown[0],
            format!("unknown key (unknown: {}); allowed: {}", unknown.join(", "), KEYS.join(", ")),
        ));
    }

    let camera_id = match root.remove("camera_id") {
        Some(Value::String(id)) => crate::device_id("camera_id", id)?,
        None | Some(Value::Null) => return Err(FieldError::new("camera_id", "is required")),
        Some(_) => return Err(FieldError::new("camera_id", "must be a string")),
    };
    let time_ms = time_ms(root.remove("time"))?;
    let (event_type, kind) = match text(&mut root, "kind")?.as_deref() {
        Some("anpr") => ("anpr", EventKind::Anpr),
        Some("face") => ("face", EventKind::Face),
        Some("other") => ("other", EventKind::Other),
        Some(_) => return Err(FieldError::new("kind", "must be anpr, face or other")),
        None => return Err(FieldError::new("kind", "is required")),
    };
    let plate = text(&mut root, "plate")?;
    let plate_color = text(&mut root, "plate_color")?;
    let person_id = text(&mut root, "person_id")?;
    let confidence = match root.remove("confidence") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(c) if (0.0..=100.0).contains(&c) => Some(c),
            _ => return Err(FieldError::new("confidence", "must be 0 to 100")),
        },
        Some(_) => return Err(FieldError::new("confidence", "must be a number from 0 to 100")),
    };
    let images = match text(&mut root, "image_base64")? {
        None => Vec::new(),
        Some(b64) => vec![jpeg_base64(&b64)?],
    };

    if plate_color.is_some() && plate.is_none() {
        return Err(FieldError::new("plate_color", "is given without plate"));
    }
    // The confidence belongs to the plate read or to the face match; where neither
    // exists it would be stored against nothing.
    let (plate_confidence, similarity) = match (kind, confidence) {
        (_, None) => (None, None),
        (EventKind::Anpr, Some(_)) if plate.is_none() => {
            return Err(FieldError::new("confidence", "is given without plate"))
        }
        (EventKind::Anpr, c) => (c, None),
        (EventKind::Face, c) => (None, c),
        (_, Some(_)) => return Err(FieldError::new("confidence", "applies only to anpr and face alerts")),
    };
    let plate = plate.map(|raw| PlateRead {
        normalized: normalize_plate(&raw),
        raw,
        color: plate_color,
        vehicle_type: None,
        direction: None,
        confidence: plate_confidence,
        lane: None,
        vehicle_color: None,
        vehicle_brand: None,
    });
    let face = (person_id.is_some() || similarity.is_some()).then_some(FaceRead { person_id, similarity });

    Ok(CameraEvent {
        event_type: event_type.to_owned(),
        kind,
        state_active: true,
        active_post_count: None,
        time_ms: Some(time_ms),
        camera: CameraRef { id: Some(camera_id), ..CameraRef::default() },
        plate,
        face,
        description: None,
        images,
    })
}

/// An optional string; empty counts as absent.
fn text(root: &mut Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match root.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if field != "image_base64" && s.chars().count() > MAX_TEXT_CHARS => {
            Err(FieldError::new(field, format!("must be at most {MAX_TEXT_CHARS} characters")))
        }
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// `time`: required here; the rules are those of the location JSON's `time`.
fn time_ms(value: Option<Value>) -> Result<i64, FieldError> {
    crate::json::time_ms(value)?.ok_or_else(|| FieldError::new("time", "is required"))
}

/// Decodes `image_base64` and checks that it is a JPEG (starts with FF D8).
fn jpeg_base64(text: &str) -> Result<Vec<u8>, FieldError> {
    let payload = match text.strip_prefix("data:") {
        Some(url) => match url.split_once(',') {
            Some((meta, data)) if meta.to_ascii_lowercase().ends_with(";base64") => data,
            _ => return Err(FieldError::new("image_base64", "a data: URL must be data:image/jpeg;base64,...")),
        },
        None => text,
    };
    let bytes = base64_decode(payload).map_err(|r| FieldError::new("image_base64", r))?;
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(FieldError::new("image_base64", "is not a JPEG (does not start with FF D8)"));
    }
    Ok(bytes)
}

/// Decodes standard base64 (RFC 4648 §4, alphabet `A-Z a-z 0-9 + /`).
///
/// ASCII whitespace is skipped, so MIME-style line-wrapped input decodes; `=` padding is
/// optional, but where present it must be last and complete the final group.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut sextets = 0usize;
    let mut padding = 0usize;
    for (i, b) in text.bytes().enumerate() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b if b.is_ascii_whitespace() => continue,
            _ => return Err(format!("is not base64: unexpected character at byte {i}")),
        };
        if padding > 0 {
            return Err(format!("is not base64: data after '=' padding at byte {i}"));
        }
        acc = (acc << 6) | u32::from(value);
        sextets += 1;
        if sextets.is_multiple_of(4) {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
        }
    }
    match (sextets % 4, padding) {
        (0, 0) => {}
        (2, 0 | 2) => out.push((acc >> 4) as u8),
        (3, 0 | 1) => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => return Err("is not base64: the length is not a whole number of groups".to_owned()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2024-05-01T08:00:00Z.
    const T0_MS: i64 = 1_714_550_400_000;

    /// A tiny JPEG-shaped byte string (SOI, APP0 JFIF header start, EOI) and its base64.
    const JPEG: [u8; 8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0xFF, 0xD9];
    const JPEG_B64: &str = "/9j/4AAQ/9k=";

    #[test]
    fn base64_rows() {
        let rows: [(&str, Result<&[u8], ()>); 12] = [
            ("", Ok(b"")),
            ("Zg==", Ok(b"f")),
            ("Zm8=", Ok(b"fo")),
            ("Zm9v", Ok(b"foo")),
            ("Zm9vYg==", Ok(b"foob")),
            ("Zm9vYmE=", Ok(b"fooba")),
            ("Zm9vYmFy", Ok(b"foobar")),
            ("Zm9vYg", Ok(b"foob")),
            ("Zm9v\r\nYmFy", Ok(b"foobar")),
            ("Zm9vY", Err(())),
            ("Zm=9v", Err(())),
            ("Zm9v-_", Err(())),
        ];
        for (input, want) in rows {
            assert_eq!(base64_decode(input).as_deref().map_err(|_| ()), want, "{input:?}");
        }
        assert_eq!(base64_decode(JPEG_B64).unwrap(), JPEG);
    }

    fn anpr() -> Value {
        json!({"camera_id": "cam-001", "time": "2024-05-01T16:00:00+08:00", "kind": "anpr",
               "plate": "川S·12345", "plate_color": "blue", "confidence": 97.5})
    }

    fn with(patch: Value) -> Value {
        let mut v = anpr();
        for (k, p) in patch.as_object().unwrap() {
            if p.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = p.clone();
            }
        }
        v
    }

    fn anpr_event() -> CameraEvent {
        CameraEvent {
            event_type: "anpr".into(),
            kind: EventKind::Anpr,
            state_active: true,
            active_post_count: None,
            time_ms: Some(T0_MS),
            camera: CameraRef { id: Some("cam-001".into()), ..CameraRef::default() },
            plate: Some(PlateRead {
                raw: "川S·12345".into(),
                normalized: Some("川S12345".into()),
                color: Some("blue".into()),
                vehicle_type: None,
                direction: None,
                confidence: Some(97.5),
                lane: None,
                vehicle_color: None,
                vehicle_brand: None,
            }),
            face: None,
            description: None,
            images: Vec::new(),
        }
    }

    /// A test row: name, request body, and the edit turning [`anpr_event`] into the
    /// expected event.
    type Row = (&'static str, Value, fn(&mut CameraEvent));

    #[test]
    fn accepted_alerts() {
        let face = json!({"camera_id": "cam-002", "time": T0_MS, "kind": "face", "person_id": "5101***1234",
                          "confidence": 88, "image_base64": JPEG_B64});
        let rows: [Row; 7] = [
            ("anpr", anpr(), |_| {}),
            ("anpr, unix ms time", with(json!({"time": T0_MS})), |_| {}),
            ("anpr, no confidence, no colour", with(json!({"confidence": null, "plate_color": null})), |e| {
                let p = e.plate.as_mut().unwrap();
                p.confidence = None;
                p.color = None;
            }),
            ("anpr, no plate read", with(json!({"plate": "无车牌", "plate_color": null})), |e| {
                let p = e.plate.as_mut().unwrap();
                p.raw = "无车牌".into();
                p.normalized = None;
                p.color = None;
            }),
            (
                "anpr with a data URL image",
                with(json!({"image_base64": format!("data:image/jpeg;base64,{JPEG_B64}")})),
                |e| e.images = vec![JPEG.to_vec()],
            ),
            ("face with image", face, |e| {
                e.event_type = "face".into();
                e.kind = EventKind::Face;
                e.camera.id = Some("cam-002".into());
                e.plate = None;
                e.face = Some(FaceRead { person_id: Some("5101***1234".into()), similarity: Some(88.0) });
                e.images = vec![JPEG.to_vec()];
            }),
            ("other", json!({"camera_id": "cam-001", "time": "2024-05-01T08:00:00Z", "kind": "other"}), |e| {
                e.event_type = "other".into();
                e.kind = EventKind::Other;
                e.plate = None;
            }),
        ];
        for (name, body, edit) in rows {
            let mut want = anpr_event();
            edit(&mut want);
            assert_eq!(decode(body.to_string().as_bytes()), Ok(want), "{name}");
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let rows = [
            ("not json", b"{".to_vec(), "body"),
            ("not an object", b"[]".to_vec(), "body"),
            ("unknown key", with(json!({"plate_colour": "blue"})).to_string().into_bytes(), "plate_colour"),
            ("missing camera", with(json!({"camera_id": null})).to_string().into_bytes(), "camera_id"),
            ("bad camera id", with(json!({"camera_id": "cam 1"})).to_string().into_bytes(), "camera_id"),
            ("missing time", with(json!({"time": null})).to_string().into_bytes(), "time"),
            ("time without offset", with(json!({"time": "2024-05-01 08:00:00"})).to_string().into_bytes(), "time"),
            ("time in 1970", with(json!({"time": 0})).to_string().into_bytes(), "time"),
            ("time in 9999", with(json!({"time": "9999-12-31T23:59:59Z"})).to_string().into_bytes(), "time"),
            ("time -9e18", with(json!({"time": -9_000_000_000_000_000_000_i64})).to_string().into_bytes(), "time"),
            ("missing kind", with(json!({"kind": null})).to_string().into_bytes(), "kind"),
            ("unknown kind", with(json!({"kind": "ANPR"})).to_string().into_bytes(), "kind"),
            ("confidence over 100", with(json!({"confidence": 101})).to_string().into_bytes(), "confidence"),
            ("confidence as text", with(json!({"confidence": "97"})).to_string().into_bytes(), "confidence"),
            (
                "confidence without plate",
                with(json!({"plate": null, "plate_color": null})).to_string().into_bytes(),
                "confidence",
            ),
            ("confidence on other", with(json!({"kind": "other"})).to_string().into_bytes(), "confidence"),
            (
                "colour without plate",
                with(json!({"plate": null, "confidence": null})).to_string().into_bytes(),
                "plate_color",
            ),
            ("plate not a string", with(json!({"plate": 12345})).to_string().into_bytes(), "plate"),
            ("image not base64", with(json!({"image_base64": "not base64!"})).to_string().into_bytes(), "image_base64"),
            (
                "image not a jpeg",
                with(json!({"image_base64": "iVBORw0KGgo="})).to_string().into_bytes(),
                "image_base64",
            ),
        ];
        for (name, body, field) in rows {
            match decode(&body) {
                Err(e) => assert_eq!(e.field, field, "{name}: {e}"),
                Ok(v) => panic!("{name}: accepted {v:?}"),
            }
        }
    }
}
