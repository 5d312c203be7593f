//! Fixtures shared by the ISAPI decoder's unit tests: real pushes, the envelope an NVR
//! sends, multipart framing as cameras write it, and the events they decode to.

use super::{decode, CameraEvent, CameraRef, EventKind, FaceRead, PlateRead};

/// 2024-05-01T00:00:00Z, which is 08:00 in Beijing.
pub(super) const T8_MS: i64 = 1_714_521_600_000;

pub(super) const ANPR_XML: &str = include_str!("../../tests/fixtures/isapi/anpr.xml");
pub(super) const FACE_CAPTURE_XML: &str = include_str!("../../tests/fixtures/isapi/face_capture.xml");
pub(super) const FACE_MATCH_XML: &str = include_str!("../../tests/fixtures/isapi/face_match.xml");

pub(super) const XML: Option<&str> = Some("application/xml");
pub(super) const BOUNDARY: &str = "MIME_boundary_7d9f2c";
pub(super) const MULTIPART: Option<&str> = Some("multipart/form-data; boundary=MIME_boundary_7d9f2c");

/// The smallest JPEG-shaped files: SOI, an APP0 marker, a little data, EOI. The
/// decoder checks only the SOI, so they need not be viewable.
pub(super) fn jpeg(tag: u8) -> Vec<u8> {
    vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, tag, 0xFF, 0xD9]
}

/// A multipart body as Hikvision cameras frame it: CRLF line ends, a
/// `Content-Disposition` and a `Content-Type` per part, the closing delimiter last.
pub(super) fn multipart_body(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content_type, content) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n").as_bytes(),
        );
        if !content_type.is_empty() {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(format!("Content-Length: {}\r\n\r\n", content.len()).as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `body` with every CRLF turned into a bare LF, as some embedded HTTP stacks send.
pub(super) fn crlf_to_lf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for (i, &b) in body.iter().enumerate() {
        if !(b == b'\r' && body.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

/// An `EventNotificationAlert` envelope around `inner`, as a DS-7xxx NVR sends it.
pub(super) fn alert(event_type: &str, state: &str, count: u32, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\n\
         <ipAddress>10.12.0.2</ipAddress>\n<portNo>80</portNo>\n<protocol>HTTP</protocol>\n\
         <macAddress>3c:1b:f8:38:ba:23</macAddress>\n<channelID>4</channelID>\n\
         <dateTime>2024-05-01T08:00:00+08:00</dateTime>\n<activePostCount>{count}</activePostCount>\n\
         <eventType>{event_type}</eventType>\n<eventState>{state}</eventState>\n\
         <eventDescription>{event_type} alarm</eventDescription>\n{inner}\
         </EventNotificationAlert>\n"
    )
}

pub(super) fn anpr_event() -> CameraEvent {
    CameraEvent {
        event_type: "ANPR".into(),
        kind: EventKind::Anpr,
        state_active: true,
        active_post_count: Some(1),
        time_ms: Some(T8_MS),
        camera: CameraRef {
            id: None,
            ip: Some("10.12.0.31".into()),
            mac: Some("bc:ba:c2:10:4e:7f".into()),
            channel: Some(1),
            channel_name: Some("G318 K2105 东向 & 卡口".into()),
        },
        plate: Some(PlateRead {
            raw: "川S12345".into(),
            normalized: Some("川S12345".into()),
            color: Some("blue".into()),
            vehicle_type: Some("vehicle".into()),
            direction: Some("forward".into()),
            confidence: Some(98.0),
            lane: Some(2),
            vehicle_color: Some("white".into()),
            vehicle_brand: Some("1036".into()),
        }),
        face: None,
        description: Some("ANPR".into()),
        images: Vec::new(),
    }
}

pub(super) fn face_capture_event() -> CameraEvent {
    CameraEvent {
        event_type: "faceCapture".into(),
        kind: EventKind::Face,
        state_active: true,
        active_post_count: Some(1),
        time_ms: Some(T8_MS + 5_000),
        camera: CameraRef {
            id: None,
            ip: Some("10.12.0.45".into()),
            mac: Some("44:19:b6:6d:24:85".into()),
            channel: Some(1),
            channel_name: Some("县公安局大厅".into()),
        },
        plate: None,
        // The attribute confidences (age 71, gender 96, glasses 90) are not a match
        // similarity; a bare capture has none.
        face: Some(FaceRead { person_id: Some("17".into()), similarity: None }),
        description: Some("faceCapture".into()),
        images: Vec::new(),
    }
}

pub(super) fn face_match_event() -> CameraEvent {
    CameraEvent {
        event_type: "faceSnapMatch".into(),
        kind: EventKind::Face,
        state_active: true,
        active_post_count: Some(1),
        time_ms: Some(T8_MS + 7_000),
        camera: CameraRef {
            id: None,
            ip: Some("10.12.0.46".into()),
            mac: Some("44:19:b6:6d:24:86".into()),
            channel: Some(2),
            channel_name: Some("汽车站进站口".into()),
        },
        plate: None,
        // humanID names the library person and wins over the capture's faceID.
        face: Some(FaceRead { person_id: Some("B7C4D2E0A1".into()), similarity: Some(0.92) }),
        description: Some("faceSnapMatch".into()),
        images: Vec::new(),
    }
}

/// The NVR envelope of [`alert`] decoded, for rows to edit.
pub(super) fn nvr_event(event_type: &str, kind: EventKind, active: bool, count: u32) -> CameraEvent {
    CameraEvent {
        event_type: event_type.into(),
        kind,
        state_active: active,
        active_post_count: Some(count),
        time_ms: Some(T8_MS),
        camera: CameraRef {
            id: None,
            ip: Some("10.12.0.2".into()),
            mac: Some("3c:1b:f8:38:ba:23".into()),
            channel: Some(4),
            channel_name: None,
        },
        plate: None,
        face: None,
        description: Some(format!("{event_type} alarm")),
        images: Vec::new(),
    }
}

pub(super) struct Push {
    pub(super) name: &'static str,
    pub(super) content_type: Option<&'static str>,
    pub(super) body: Vec<u8>,
    pub(super) want: CameraEvent,
}

pub(super) fn push(
    name: &'static str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    want: CameraEvent,
) -> Push {
    Push { name, content_type, body: body.into(), want }
}

pub(super) fn edited(mut event: CameraEvent, edit: impl FnOnce(&mut CameraEvent)) -> CameraEvent {
    edit(&mut event);
    event
}

/// A refused push: name, content type, body, the field the error must name and a
/// part of its reason.
pub(super) type Refusal = (&'static str, Option<&'static str>, Vec<u8>, &'static str, &'static str);

/// Checks that every refused push is refused naming its field, with its reason.
pub(super) fn assert_refused(rows: Vec<Refusal>) {
    for (name, content_type, body, field, reason) in rows {
        match decode(content_type, &body) {
            Err(e) => {
                assert_eq!(e.field, field, "{name}: {e}");
                assert!(e.reason.contains(reason), "{name}: reason {:?} lacks {reason:?}", e.reason);
            }
            Ok(v) => panic!("{name}: accepted {v:?}"),
        }
    }
}
