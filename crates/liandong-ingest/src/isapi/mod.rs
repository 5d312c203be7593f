//! Hikvision ISAPI alarm pushes: what a camera or NVR `POST`s to the HTTP "alarm host"
//! (监听主机) it was configured with, decoded into a [`CameraEvent`].
//!
//! The format is Hikvision's ISAPI event notification (the "ISAPI Event" chapter of the
//! Hikvision ISAPI developer guide, `EventNotificationAlert` in the
//! `http://www.hikvision.com/ver20/XMLSchema` namespace; older firmwares say `ver10`,
//! OEM ones `www.isapi.org` or `www.std-cgi.com`). A push arrives in one of two shapes:
//!
//! 1. **Raw XML** (`application/xml`, `text/xml`, or no content type): the body is one
//!    `EventNotificationAlert` document, e.g. the motion, video-loss and heartbeat pushes
//!    of DS-2CD cameras and DS-7xxx NVRs.
//! 2. **`multipart/form-data`**: one part holds the XML (named e.g. `anpr.xml` or
//!    `MoveDetection.xml`, content type `application/xml` or `text/xml`) and zero or more
//!    parts hold JPEG snapshots (`image/jpeg`, named e.g. `licensePlatePicture.jpg`,
//!    `detectionPicture.jpg`, `faceCapture.jpg`). This is how iDS ANPR and face-capture
//!    cameras push.
//!
//! ```xml
//! <EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
//!   <ipAddress>10.12.0.31</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>
//!   <macAddress>bc:ba:c2:10:4e:7f</macAddress><channelID>1</channelID>
//!   <dateTime>2024-05-01T08:00:00+08:00</dateTime><activePostCount>1</activePostCount>
//!   <eventType>ANPR</eventType><eventState>active</eventState>
//!   <eventDescription>ANPR</eventDescription><channelName>G318 K2105 东向</channelName>
//!   <ANPR><licensePlate>川S12345</licensePlate><plateColor>blue</plateColor>
//!     <vehicleType>vehicle</vehicleType><direction>forward</direction>
//!     <confidenceLevel>98</confidenceLevel><line>2</line>
//!     <vehicleInfo><color>white</color><vehicleLogoRecog>1036</vehicleLogoRecog></vehicleInfo>
//!   </ANPR>
//! </EventNotificationAlert>
//! ```
//!
//! 3. **JSON** (newer firmware, e.g. DS-2CD2xx3G2 and iDS ANPR/face models): the same
//!    alert as one JSON object, raw (`application/json`) or as the JSON part of a
//!    multipart push beside its JPEGs (`Content-Type: application/json`). Its keys are
//!    the XML element names and it is read by `json` into the same tree, so one mapping
//!    serves both; an array repeats its key as XML repeats an element:
//!
//! ```json
//! {"ipAddress": "10.12.0.31", "macAddress": "bc:ba:c2:10:4e:7f", "channelID": 1,
//!  "dateTime": "2024-05-01T08:00:00+08:00", "activePostCount": 1,
//!  "eventType": "ANPR", "eventState": "active", "eventDescription": "ANPR",
//!  "ANPR": {"licensePlate": "川S12345", "plateColor": "blue", "confidenceLevel": 98}}
//! ```
//!
//! Elements are matched by local name, ASCII case-insensitively, whatever the namespace:
//! firmwares disagree on both. Elements we do not read are ignored, so new firmware
//! fields never break decoding, and an unknown `eventType` decodes as
//! [`EventKind::Other`] for the server to store and count.
//!
//! The XML is untrusted input from the network. A document with a DTD (`<!DOCTYPE`) or
//! an entity declaration (`<!ENTITY`) is refused outright, which rules out entity
//! expansion ("billion laughs") and external entities (XXE) whatever the parser does
//! with them; only the five predefined entities and character references are resolved;
//! nesting is capped at [`MAX_DEPTH`]. Capping the body size is the caller's job.
//!
//! Decoding costs time and memory linear in the body: each element keeps its own name
//! and the index of its parent, never a copy of its ancestors' names, and the multipart
//! splitter reads every byte a bounded number of times. [`Limits`] caps what a body
//! within the caller's size limit may still hold: elements, name lengths, nesting,
//! parts and images.
//!
//! The decoding is split by concern: `multipart` splits a multipart body into its XML
//! or JSON part and its JPEGs (RFC 7578), `xml` reads an XML 1.0 document into a tree of
//! elements with the hardening above, `json` a JSON object into the same tree within
//! the same limits, and `fields` maps that tree to a [`CameraEvent`]
//! (whose types `event` declares). The splitter and the reader know nothing of cameras;
//! the mapping knows nothing of bytes. This file holds the entry points and the limits.

mod event;
mod fields;
mod json;
mod multipart;
#[cfg(test)]
mod test_support;
mod xml;

use crate::FieldError;
use multipart::DocFormat;

pub use event::{CameraEvent, CameraRef, EventKind, FaceRead, PlateRead};
pub use fields::{event_kind, is_illegal_parking, DEFAULT_OFFSET_S, FACE_ID_KEYS, PARKING_TYPES};
pub use multipart::MAX_PART_HEADER_BYTES;
pub use xml::MAX_DEPTH;

/// What one push may hold, beyond the body size the caller caps.
///
/// The defaults are far above what real cameras send (an ANPR push is one XML part of
/// some 60 elements and two or three JPEGs) and low enough that the worst body within
/// the server's size limit decodes in a few milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most parts in a multipart push, XML and images and any other part together.
    pub max_parts: usize,
    /// Most JPEG parts in a multipart push; each becomes a stored file.
    pub max_images: usize,
    /// Most elements in the XML document, the root included.
    pub max_elements: usize,
    /// Longest element name, prefix included, in bytes. Hikvision's longest are about
    /// 30 (`faceRecognitionAlarmList`).
    pub max_name_bytes: usize,
    /// Deepest nesting, counting the root as 1.
    pub max_depth: usize,
    /// Most text one element may hold, in bytes. Cameras' texts are names, plates,
    /// numbers and one-line descriptions; an `eventDescription` of megabytes would be
    /// stored, published to every operator and replayed.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_parts: 16,
            max_images: 8,
            max_elements: 4096,
            max_name_bytes: 128,
            max_depth: MAX_DEPTH,
            max_text_bytes: 1024,
        }
    }
}

impl Limits {
    /// The limits that concern the XML document alone.
    fn doc(&self) -> xml::DocLimits {
        xml::DocLimits {
            max_elements: self.max_elements,
            max_name_bytes: self.max_name_bytes,
            max_depth: self.max_depth,
            max_text_bytes: self.max_text_bytes,
        }
    }
}

/// Decodes one ISAPI push from its `Content-Type` header and body, within the default
/// [`Limits`].
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<CameraEvent, FieldError> {
    decode_with(&Limits::default(), content_type, body)
}

/// Decodes one ISAPI push from its `Content-Type` header and body, refusing one that
/// holds more than `limits` allow with a [`FieldError`] naming the limit.
///
/// The document is XML or JSON: by its content type (`…xml`, `…json`), or, without one,
/// by its first byte (`{` is JSON, anything else is read as XML); in a multipart push,
/// by its part's content type, name or first byte likewise.
pub fn decode_with(limits: &Limits, content_type: Option<&str>, body: &[u8]) -> Result<CameraEvent, FieldError> {
    let Some(content_type) = content_type.filter(|c| !c.trim().is_empty()) else {
        return from_doc(limits, sniff(body), body, Vec::new());
    };
    let media = multipart::media_type(content_type);
    if media.starts_with("multipart/") {
        let boundary = multipart::parameter(content_type, "boundary")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| FieldError::new("content-type", format!("{media} needs a boundary parameter")))?;
        let split = multipart::doc_and_images(body, &boundary, limits.max_parts, limits.max_images)?;
        return from_doc(limits, split.format, split.doc, split.images);
    }
    if media == "application/xml" || media == "text/xml" || media.ends_with("+xml") {
        return from_doc(limits, DocFormat::Xml, body, Vec::new());
    }
    if media == "application/json" || media == "text/json" || media.ends_with("+json") {
        return from_doc(limits, DocFormat::Json, body, Vec::new());
    }
    Err(FieldError::new(
        "content-type",
        format!("must be application/xml, text/xml, application/json or multipart/form-data, not {media:?}"),
    ))
}

/// The format of a body sent without a content type: JSON when it starts with `{`
/// (after a byte-order mark and whitespace), XML otherwise, as before JSON firmware.
fn sniff(body: &[u8]) -> DocFormat {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => DocFormat::Json,
        _ => DocFormat::Xml,
    }
}

/// Reads the document of a push, XML or JSON, and maps it to the event it describes.
fn from_doc(limits: &Limits, format: DocFormat, body: &[u8], images: Vec<Vec<u8>>) -> Result<CameraEvent, FieldError> {
    let doc = match format {
        DocFormat::Xml => xml::parse(&limits.doc(), body)?,
        DocFormat::Json => json::parse(&limits.doc(), body)?,
    };
    fields::event(&doc, images)
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn a_push_whose_content_type_is_not_isapi_is_refused_naming_the_header() {
        let anpr_multipart = multipart_body(&[("anpr.xml", "application/xml", ANPR_XML.as_bytes())]);
        let rows: Vec<Refusal> = vec![
            (
                "multipart without boundary",
                Some("multipart/form-data"),
                anpr_multipart.clone(),
                "content-type",
                "boundary",
            ),
            ("plain text is not ISAPI", Some("text/plain"), b"{}".to_vec(), "content-type", "text/plain"),
        ];
        assert_refused(rows);
    }

    #[test]
    fn pushes_beyond_the_limits_are_refused_naming_the_limit() {
        let limits = Limits::default();
        let long_name = "n".repeat(limits.max_name_bytes + 1);
        let many_parts: Vec<(&str, &str, &[u8])> =
            std::iter::once(("anpr.xml", "application/xml", ANPR_XML.as_bytes()))
                .chain(std::iter::repeat_n(("note.txt", "text/plain", b"x".as_slice()), limits.max_parts))
                .collect();
        let jpg = jpeg(1);
        let many_images: Vec<(&str, &str, &[u8])> =
            std::iter::once(("anpr.xml", "application/xml", ANPR_XML.as_bytes()))
                .chain(std::iter::repeat_n(("plate.jpg", "image/jpeg", jpg.as_slice()), limits.max_images + 1))
                .collect();
        let long_headers = format!(
            "--{BOUNDARY}\r\nX-Padding: {}\r\n\r\n<a/>\r\n--{BOUNDARY}--\r\n",
            "p".repeat(MAX_PART_HEADER_BYTES)
        );
        let rows: Vec<Refusal> = vec![
            (
                "an element name one byte too long",
                XML,
                alert("VMD", "active", 1, &format!("<{long_name}>1</{long_name}>")).into(),
                "body",
                "an element name of 129 bytes; at most 128",
            ),
            (
                "a root name one byte too long",
                XML,
                format!("<{long_name}/>").into(),
                "body",
                "an element name of 129 bytes",
            ),
            (
                "too many elements, empty ones included",
                XML,
                alert("VMD", "active", 1, &"<b/>".repeat(limits.max_elements - 10)).into(),
                "body",
                "more than 4096 elements",
            ),
            ("one part too many", MULTIPART, multipart_body(&many_parts), "body", "more than 16 multipart parts"),
            ("one image too many", MULTIPART, multipart_body(&many_images), "image", "at most 8 are accepted per push"),
            ("part headers without end", MULTIPART, long_headers.into(), "body", "no end of headers within 8192"),
        ];
        assert_refused(rows);
    }

    #[test]
    fn pushes_at_the_limits_are_accepted_and_the_limits_can_be_set() {
        let limits = Limits::default();
        let jpg = jpeg(1);
        let parts: Vec<(&str, &str, &[u8])> = std::iter::once(("anpr.xml", "application/xml", ANPR_XML.as_bytes()))
            .chain(std::iter::repeat_n(("plate.jpg", "image/jpeg", jpg.as_slice()), limits.max_images))
            .chain(std::iter::repeat_n(
                ("note.txt", "text/plain", b"x".as_slice()),
                limits.max_parts - 1 - limits.max_images,
            ))
            .collect();
        let body = multipart_body(&parts);
        let event = decode(MULTIPART, &body).expect("a push at the limits");
        assert_eq!(event.images.len(), limits.max_images);
        let name = "n".repeat(limits.max_name_bytes);
        // The root, the envelope's 10 elements and the padding reach the element limit.
        let padded = alert("VMD", "active", 1, &"<b/>".repeat(limits.max_elements - 11));
        for xml in [alert("VMD", "active", 1, &format!("<{name}>1</{name}>")), padded] {
            assert_eq!(decode(XML, xml.as_bytes()).map(|e| e.event_type), Ok("VMD".to_owned()));
        }

        // Text at the limit is kept; a byte more names the element.
        let at_limit = alert("VMD", "active", 1, "").replace(
            "<eventDescription>VMD alarm</eventDescription>",
            &format!("<eventDescription>{}</eventDescription>", "d".repeat(limits.max_text_bytes)),
        );
        let kept = decode(XML, at_limit.as_bytes()).map(|e| e.description.map(|d| d.len()));
        assert_eq!(kept, Ok(Some(limits.max_text_bytes)));
        let over = at_limit.replace("<eventDescription>d", "<eventDescription>dd");
        let e = decode(XML, over.as_bytes()).unwrap_err();
        assert!(e.field == "eventDescription" && e.reason.contains("1024 bytes"), "{e}");

        let strict = Limits {
            max_parts: 3,
            max_images: 1,
            max_elements: 8,
            max_name_bytes: 32,
            max_depth: 2,
            max_text_bytes: 64,
        };
        let two_images = multipart_body(&parts[..3]);
        let e = decode_with(&strict, MULTIPART, &two_images).unwrap_err();
        assert!(e.field == "image" && e.reason.contains("at most 1"), "{e}");
        let e = decode_with(&strict, XML, ANPR_XML.as_bytes()).unwrap_err();
        assert!(e.field == "body" && e.reason.contains("at most 8 are accepted"), "{e}");
        let e = decode_with(&strict, XML, b"<EventNotificationAlert><a><b/></a></EventNotificationAlert>").unwrap_err();
        assert!(e.field == "body" && e.reason.contains("deeper than 2"), "{e}");
    }
}
