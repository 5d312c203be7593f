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

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;

use crate::plate::normalize_plate;
use crate::{parse_timestamp, FieldError};

/// Deepest element nesting accepted, counting the root as 1. Real pushes nest 5 levels
/// at most (`EventNotificationAlert/ANPR/pictureInfoList/pictureInfo/fileName`).
pub const MAX_DEPTH: usize = 32;

/// Longest header block of one multipart part, in bytes. Cameras send two or three short
/// header lines; the bound stops the search for a part's blank line at a fixed distance.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;

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

/// The UTC offset of a `dateTime` sent without one, in seconds east of UTC.
///
/// Cameras set to local time without a zone send `2024-05-01T08:00:00`; China has one
/// time zone, UTC+08:00, and reading such a time as UTC would put the event 8 hours
/// early, which for an ANPR hit is worse than useless.
pub const DEFAULT_OFFSET_S: i32 = 8 * 3600;

/// The JPEG start-of-image marker every JPEG file begins with (ITU-T T.81, B.1.1.3).
const JPEG_SOI: [u8; 2] = [0xFF, 0xD8];

/// A decoded camera alert, from an ISAPI push or our own JSON ([`crate::alert_json`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraEvent {
    /// The event type as sent, e.g. `ANPR`, `faceCapture`, `VMD`, `videoloss`.
    pub event_type: String,
    pub kind: EventKind,
    /// `eventState`: `active` while the event lasts, `inactive` when it ends and in
    /// heartbeats. A push without `eventState` is active.
    pub state_active: bool,
    /// How many times the device has pushed this same ongoing event: it counts up while
    /// the event stays active, so a repeat is recognisable.
    pub active_post_count: Option<u32>,
    /// When the event happened, Unix milliseconds; `None` when the device sent no time.
    pub time_ms: Option<i64>,
    pub camera: CameraRef,
    pub plate: Option<PlateRead>,
    pub face: Option<FaceRead>,
    /// `eventDescription`, e.g. `ANPR`, `Motion alarm`.
    pub description: Option<String>,
    /// The JPEG snapshots that came with the push, each verified to start with FF D8.
    /// Not serialised: they are stored as files, not as JSON.
    #[serde(skip)]
    pub images: Vec<Vec<u8>>,
}

/// What an event means to the command centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A licence plate read (`ANPR`, `vehicleDetection`).
    Anpr,
    /// A face capture or face match (`faceCapture`, `FaceDetection`, `faceSnapMatch`, ...).
    Face,
    /// `eventState` inactive: the end of an event, or the periodic keep-alive NVRs send
    /// as an inactive `videoloss` with `activePostCount` 0.
    Heartbeat,
    /// Every other event type, known (`VMD`, `linedetection`) or not.
    Other,
}

/// Which camera sent the event, as far as the push says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CameraRef {
    /// Our camera id (`camera_id` in [`crate::alert_json`]); ISAPI pushes have none and
    /// are matched to a camera by address.
    pub id: Option<String>,
    /// `ipAddress` (or `ipv6Address`), as sent.
    pub ip: Option<String>,
    /// `macAddress`, as sent.
    pub mac: Option<String>,
    /// `channelID`: the video channel on the device, 1-based on cameras; NVR heartbeats
    /// use 0.
    pub channel: Option<u32>,
    /// `channelName`, the name set on the device (often the site, e.g. `G318 K2105`).
    pub channel_name: Option<String>,
}

/// A licence plate read (`<ANPR>` block).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlateRead {
    /// `licensePlate` as the camera read it, e.g. `川S12345` or `无车牌`.
    pub raw: String,
    /// [`normalize_plate`] of `raw`: `None` when the camera read no plate.
    pub normalized: Option<String>,
    /// `plateColor`: `blue`, `yellow`, `white`, `black`, `green`, ...
    pub color: Option<String>,
    /// `vehicleType`: `vehicle`, `truck`, `SUVMPV`, ...
    pub vehicle_type: Option<String>,
    /// `direction`: `forward`, `reverse`, `unknown`.
    pub direction: Option<String>,
    /// `confidenceLevel`, 0 to 100.
    pub confidence: Option<f64>,
    /// `line`: the lane number the vehicle was in.
    pub lane: Option<u32>,
    /// `vehicleInfo/color`, the body colour.
    pub vehicle_color: Option<String>,
    /// `vehicleInfo` brand: a name where the device sends one, else Hikvision's numeric
    /// `vehicleLogoRecog` code as sent.
    pub vehicle_brand: Option<String>,
}

/// A face capture or match (`<faceCapture>`, `<FaceCaptureList>`, `<faceSnap>`, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceRead {
    /// The best identifier the device sent; see [`FACE_ID_KEYS`] for the order.
    pub person_id: Option<String>,
    /// `similarity` to the matched person (or the `confidence` beside the id), on the
    /// device's scale (0 to 1 or 0 to 100, by model).
    pub similarity: Option<f64>,
}

/// Identifier elements in a face block, best first: a matched person's id (`humanID`,
/// `PID`, `FPID`, `FUID`, `employeeNoString`) names someone in a face library, while a
/// `faceID` only numbers the face within one capture.
pub const FACE_ID_KEYS: [&str; 6] = ["humanID", "PID", "FPID", "FUID", "employeeNoString", "faceID"];

/// Event types read as [`EventKind::Anpr`] (compared lower-case).
const ANPR_TYPES: [&str; 2] = ["anpr", "vehicledetection"];

/// Event types read as [`EventKind::Face`] (compared lower-case).
const FACE_TYPES: [&str; 8] = [
    "facecapture",
    "facedetection",
    "facesnap",
    "facesnapmatch",
    "facematch",
    "facecontrast",
    "facerecognition",
    "alarmresult",
];

/// Decodes one ISAPI push from its `Content-Type` header and body, within the default
/// [`Limits`].
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<CameraEvent, FieldError> {
    decode_with(&Limits::default(), content_type, body)
}

/// Decodes one ISAPI push from its `Content-Type` header and body, refusing one that
/// holds more than `limits` allow with a [`FieldError`] naming the limit.
pub fn decode_with(limits: &Limits, content_type: Option<&str>, body: &[u8]) -> Result<CameraEvent, FieldError> {
    let Some(content_type) = content_type.filter(|c| !c.trim().is_empty()) else {
        return from_xml(limits, body, Vec::new());
    };
    let media = media_type(content_type);
    if media.starts_with("multipart/") {
        let boundary = parameter(content_type, "boundary")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| FieldError::new("content-type", format!("{media} needs a boundary parameter")))?;
        let (xml, images) = multipart(limits, body, &boundary)?;
        return from_xml(limits, xml, images);
    }
    if media == "application/xml" || media == "text/xml" || media.ends_with("+xml") {
        return from_xml(limits, body, Vec::new());
    }
    Err(FieldError::new(
        "content-type",
        format!("must be application/xml, text/xml or multipart/form-data, not {media:?}"),
    ))
}

/// The media type of a `Content-Type` value, lower-case, without parameters.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// A parameter of a header value such as `multipart/form-data; boundary="abc"`, unquoted.
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits a multipart body (RFC 7578, RFC 2046 §5.1) into its XML part and its JPEG
/// parts.
///
/// A part is XML when its content type says `xml`, or, without a content type, when its
/// file name ends in `.xml` or its body starts with `<`. A part is a JPEG when its content
/// type is `image/jpeg` (or, without one, its name ends in `.jpg`), and then it must
/// start with FF D8. Other parts are ignored. More than [`Limits::max_images`] JPEG parts
/// are refused, naming `image`.
fn multipart<'a>(limits: &Limits, body: &'a [u8], boundary: &str) -> Result<(&'a [u8], Vec<Vec<u8>>), FieldError> {
    let mut xml: Option<&[u8]> = None;
    let mut images = Vec::new();
    for (i, part) in split_multipart(body, boundary, limits.max_parts)?.into_iter().enumerate() {
        let headers = PartHeaders::parse(part.headers);
        let label = headers.name().map_or_else(|| format!("part {}", i + 1), |n| format!("part {n:?}"));
        match headers.classify(part.body) {
            PartKind::Xml => {
                if xml.is_some() {
                    return Err(FieldError::new("body", format!("{label} is a second XML part; one event per push")));
                }
                xml = Some(part.body);
            }
            PartKind::Jpeg => {
                if !part.body.starts_with(&JPEG_SOI) {
                    return Err(FieldError::new(
                        "image",
                        format!("{label} is declared a JPEG but does not start with the JPEG marker FF D8"),
                    ));
                }
                if images.len() == limits.max_images {
                    return Err(FieldError::new(
                        "image",
                        format!("{label} is one JPEG too many; at most {} are accepted per push", limits.max_images),
                    ));
                }
                images.push(part.body.to_vec());
            }
            PartKind::Other => {}
        }
    }
    let xml = xml.ok_or_else(|| FieldError::new("body", "multipart push has no XML part"))?;
    Ok((xml, images))
}

struct Part<'a> {
    headers: &'a [u8],
    body: &'a [u8],
}

/// Finds the parts between `--boundary` delimiter lines; the preamble and epilogue are
/// dropped. Bare LF line ends are accepted as well as CRLF, as some embedded HTTP stacks
/// send them. More than `max_parts` parts are refused, naming `body`.
///
/// Linear in the body: each delimiter search starts where the previous part ended and
/// stops at the next delimiter (memchr's `memmem` is linear in the haystack), and each
/// header search stops at the part's blank line or [`MAX_PART_HEADER_BYTES`].
fn split_multipart<'a>(body: &'a [u8], boundary: &str, max_parts: usize) -> Result<Vec<Part<'a>>, FieldError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let line_delimiter = [b"\n", delimiter].concat();
    let line_finder = memchr::memmem::Finder::new(&line_delimiter);
    let start = memchr::memmem::find(body, delimiter)
        .ok_or_else(|| FieldError::new("body", format!("no multipart delimiter --{boundary} found")))?;
    let mut pos = start + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if parts.len() == max_parts {
            return Err(FieldError::new(
                "body",
                format!("has more than {max_parts} multipart parts; at most {max_parts} are accepted per push"),
            ));
        }
        // Transport padding (RFC 2046 §5.1.1) may follow a delimiter before its line end.
        while matches!(body.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        pos = skip_line_end(body, pos).ok_or_else(|| {
            FieldError::new(
                "body",
                format!("multipart delimiter --{boundary} at byte {pos} is not followed by a line end"),
            )
        })?;
        let (headers, content_start) = split_headers(body, pos).ok_or_else(|| {
            FieldError::new(
                "body",
                format!(
                    "part {} has no end of headers within {MAX_PART_HEADER_BYTES} bytes (a blank line)",
                    parts.len() + 1
                ),
            )
        })?;
        // A delimiter only counts at the start of a line, and the line end before it
        // belongs to the delimiter, not to the content (RFC 2046 §5.1.1). Searching from
        // the blank line's own LF finds a delimiter that follows an empty part at once.
        let next = line_finder.find(&body[content_start - 1..]).map(|i| i + content_start - 1).ok_or_else(|| {
            FieldError::new(
                "body",
                format!("part {} is not closed; the closing --{boundary}-- is missing", parts.len() + 1),
            )
        })?;
        let mut end = next.max(content_start);
        if end > content_start && body[end - 1] == b'\r' {
            end -= 1;
        }
        parts.push(Part { headers, body: &body[content_start..end] });
        pos = next + line_delimiter.len();
    }
}

/// The position after a CRLF or LF at `pos`.
fn skip_line_end(body: &[u8], pos: usize) -> Option<usize> {
    match body.get(pos..pos + 2) {
        Some(b"\r\n") => Some(pos + 2),
        _ if body.get(pos) == Some(&b'\n') => Some(pos + 1),
        _ => None,
    }
}

/// Splits the part starting at `start` into its header block and the offset of its
/// content: headers end at the first empty line (CRLF or bare LF). A part with no headers
/// starts with the empty line. `None` when no empty line comes within
/// [`MAX_PART_HEADER_BYTES`].
fn split_headers(body: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let window = &body[start..body.len().min(start + MAX_PART_HEADER_BYTES + 2)];
    let mut line_start = 0;
    for lf in memchr::memchr_iter(b'\n', window) {
        let line = &window[line_start..lf];
        if line.is_empty() || line == b"\r" {
            return Some((&window[..line_start], start + lf + 1));
        }
        line_start = lf + 1;
    }
    None
}

struct PartHeaders {
    /// Media type, lower-case, without parameters.
    content_type: Option<String>,
    /// `name` of `Content-Disposition`.
    name: Option<String>,
    /// `filename` of `Content-Disposition`.
    filename: Option<String>,
}

enum PartKind {
    Xml,
    Jpeg,
    Other,
}

impl PartHeaders {
    fn parse(block: &[u8]) -> PartHeaders {
        let mut headers = PartHeaders { content_type: None, name: None, filename: None };
        for line in String::from_utf8_lossy(block).lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let key = key.trim();
            if key.eq_ignore_ascii_case("content-type") {
                headers.content_type = Some(media_type(value));
            } else if key.eq_ignore_ascii_case("content-disposition") {
                headers.name = parameter(value, "name");
                headers.filename = parameter(value, "filename");
            }
        }
        headers
    }

    /// The file name, else the form field name, for error messages and sniffing.
    fn name(&self) -> Option<&str> {
        self.filename.as_deref().or(self.name.as_deref()).filter(|n| !n.is_empty())
    }

    fn classify(&self, body: &[u8]) -> PartKind {
        let name = self.name().unwrap_or("").to_ascii_lowercase();
        match self.content_type.as_deref() {
            Some(m) if m.contains("xml") => PartKind::Xml,
            Some("image/jpeg" | "image/jpg" | "image/pjpeg") => PartKind::Jpeg,
            Some(_) => PartKind::Other,
            None if name.ends_with(".xml") => PartKind::Xml,
            None if name.ends_with(".jpg") || name.ends_with(".jpeg") => PartKind::Jpeg,
            None if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') => PartKind::Xml,
            None => PartKind::Other,
        }
    }
}

/// One element below the root: its own local name, its parent and its text. Ancestors'
/// names are reached through `parent`, never copied, so that the document's memory stays
/// linear in the body however deep and long-named its elements are.
struct Element {
    name: String,
    /// Index in [`Doc::elements`] of the parent; `None` for a child of the root.
    parent: Option<usize>,
    /// Index in [`Doc::elements`] of the top-level ancestor (the element itself when it
    /// is a child of the root), which names the block it belongs to (`ANPR`, ...).
    top: usize,
    /// 1 for a child of the root.
    depth: usize,
    text: String,
}

/// A parsed push: the root's local name and every element below it, in document order
/// (of start tags).
struct Doc {
    root: String,
    elements: Vec<Element>,
}

impl Doc {
    /// The trimmed text of the first element at exactly `path` (case-insensitive); an
    /// empty element counts as absent, as devices send `<channelName></channelName>`
    /// when nothing is set.
    fn get(&self, path: &[&str]) -> Option<&str> {
        self.elements.iter().find(|e| self.at_path(e, path)).map(|e| e.text.as_str()).filter(|t| !t.is_empty())
    }

    /// Whether `e` sits at exactly `path` below the root, comparing its own name first so
    /// that most elements are rejected without walking their ancestors.
    fn at_path(&self, e: &Element, path: &[&str]) -> bool {
        if e.depth != path.len() {
            return false;
        }
        let mut at = Some(e);
        path.iter().rev().all(|want| match at {
            Some(el) if el.name.eq_ignore_ascii_case(want) => {
                at = el.parent.map(|p| &self.elements[p]);
                true
            }
            _ => false,
        })
    }

    /// The first non-empty element named `name` at any depth below a top-level element
    /// for which `block` holds.
    fn find_in(&self, block: impl Fn(&str) -> bool, name: &str) -> Option<&Element> {
        self.elements.iter().find(|e| {
            e.depth >= 2 && e.name.eq_ignore_ascii_case(name) && !e.text.is_empty() && block(&self.elements[e.top].name)
        })
    }

    /// The dotted path of `e` below the root (`faceSnapMatch.FaceCaptureList.similarity`),
    /// built only for an error message.
    fn path(&self, e: &Element) -> String {
        let mut names = vec![e.name.as_str()];
        let mut at = e.parent;
        while let Some(p) = at {
            names.push(&self.elements[p].name);
            at = self.elements[p].parent;
        }
        names.reverse();
        names.join(".")
    }
}

fn from_xml(limits: &Limits, body: &[u8], images: Vec<Vec<u8>>) -> Result<CameraEvent, FieldError> {
    let doc = parse(limits, body)?;
    if !doc.root.eq_ignore_ascii_case("EventNotificationAlert") {
        return Err(FieldError::new(
            "body",
            format!("root element must be EventNotificationAlert, not {:?}", doc.root),
        ));
    }
    let event_type = doc.get(&["eventType"]).ok_or_else(|| FieldError::new("eventType", "is required"))?.to_owned();
    let state_active = match doc.get(&["eventState"]) {
        None => true,
        Some(s) if s.eq_ignore_ascii_case("active") => true,
        Some(s) if s.eq_ignore_ascii_case("inactive") => false,
        Some(s) => return Err(FieldError::new("eventState", format!("must be active or inactive, not {s:?}"))),
    };
    let time_ms =
        doc.get(&["dateTime"]).map(|t| camera_time(t).map_err(|r| FieldError::new("dateTime", r))).transpose()?;
    let camera = CameraRef {
        id: None,
        ip: doc.get(&["ipAddress"]).or_else(|| doc.get(&["ipv6Address"])).map(str::to_owned),
        mac: doc.get(&["macAddress"]).map(str::to_owned),
        channel: unsigned("channelID", doc.get(&["channelID"]))?,
        channel_name: doc.get(&["channelName"]).map(str::to_owned),
    };
    let kind = kind(&event_type, state_active);
    Ok(CameraEvent {
        active_post_count: unsigned("activePostCount", doc.get(&["activePostCount"]))?,
        time_ms,
        camera,
        plate: plate(&doc)?,
        face: face(&doc)?,
        description: doc.get(&["eventDescription"]).map(str::to_owned),
        images,
        event_type,
        kind,
        state_active,
    })
}

fn kind(event_type: &str, state_active: bool) -> EventKind {
    let t = event_type.to_ascii_lowercase();
    if !state_active {
        EventKind::Heartbeat
    } else if ANPR_TYPES.contains(&t.as_str()) {
        EventKind::Anpr
    } else if FACE_TYPES.contains(&t.as_str()) {
        EventKind::Face
    } else {
        EventKind::Other
    }
}

/// The `<ANPR>` block; `None` without one or without a `licensePlate` in it.
fn plate(doc: &Doc) -> Result<Option<PlateRead>, FieldError> {
    let Some(raw) = doc.get(&["ANPR", "licensePlate"]) else {
        return Ok(None);
    };
    let text = |name: &str| doc.get(&["ANPR", name]).map(str::to_owned);
    // vehicleInfo sits inside ANPR on traffic cameras and beside it on some NVRs.
    let vehicle = |names: &[&str]| {
        names.iter().find_map(|n| doc.get(&["ANPR", "vehicleInfo", n]).or_else(|| doc.get(&["vehicleInfo", n])))
    };
    let confidence = match doc.get(&["ANPR", "confidenceLevel"]) {
        None => None,
        Some(c) => match c.parse::<f64>() {
            Ok(c) if (0.0..=100.0).contains(&c) => Some(c),
            _ => return Err(FieldError::new("ANPR.confidenceLevel", format!("must be 0 to 100, not {c:?}"))),
        },
    };
    Ok(Some(PlateRead {
        raw: raw.to_owned(),
        normalized: normalize_plate(raw),
        color: text("plateColor"),
        vehicle_type: text("vehicleType"),
        direction: text("direction"),
        confidence,
        lane: unsigned("ANPR.line", doc.get(&["ANPR", "line"]))?,
        vehicle_color: vehicle(&["color"]).map(str::to_owned),
        vehicle_brand: vehicle(&["brand", "vehicleBrand", "vehicleLogoRecog"]).map(str::to_owned),
    }))
}

/// A face block is a top-level element whose name starts with `face` (`faceCapture`,
/// `FaceCaptureList`, `faceSnap`, `faceSnapMatch`, `faceRecognitionAlarmList`, ...): the
/// firmwares name them differently, and being liberal here costs nothing.
fn is_face_block(name: &str) -> bool {
    name.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("face"))
}

/// The face block's best identifier and similarity; `None` without a face block.
fn face(doc: &Doc) -> Result<Option<FaceRead>, FieldError> {
    if !doc.elements.iter().any(|e| e.depth == 1 && is_face_block(&e.name)) {
        return Ok(None);
    }
    let id = FACE_ID_KEYS.iter().find_map(|k| doc.find_in(is_face_block, k));
    // `similarity` is unambiguous; a `confidence` counts only beside the chosen id, as
    // face attributes (age, glasses) carry confidences of their own.
    let similarity = doc.find_in(is_face_block, "similarity").or_else(|| {
        let parent = id?.parent;
        doc.elements.iter().find(|e| e.parent == parent && e.name.eq_ignore_ascii_case("confidence"))
    });
    let similarity = match similarity {
        None => None,
        Some(e) => match e.text.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Some(s),
            _ => return Err(FieldError::new(doc.path(e), format!("must be a non-negative number, not {:?}", e.text))),
        },
    };
    Ok(Some(FaceRead { person_id: id.map(|e| e.text.clone()), similarity }))
}

fn unsigned(field: &str, text: Option<&str>) -> Result<Option<u32>, FieldError> {
    text.map(|t| t.parse::<u32>().map_err(|_| FieldError::new(field, format!("must be a whole number, not {t:?}"))))
        .transpose()
}

/// Reads an ISAPI `dateTime` into Unix milliseconds.
///
/// With an offset (`2024-05-01T08:00:00+08:00`, `...Z`) it is read as sent; older
/// firmwares write a one-digit offset hour (`-8:00`), which is padded first. Without an
/// offset it is camera local time, read at [`DEFAULT_OFFSET_S`]. Times outside 2000 to
/// 2099 are refused ([`crate::device_time`]): a camera whose clock says 9999-12-31 would
/// otherwise outrank every later real sighting of the same plate.
fn camera_time(t: &str) -> Result<i64, String> {
    let Some((date, time)) = t.split_once(['T', 't']) else {
        return Err("must be an ISO 8601 date-time, e.g. 2024-05-01T08:00:00+08:00".to_owned());
    };
    let sign_at = time.rfind(['+', '-']);
    let text = match sign_at {
        Some(i) if time[i + 1..].len() == 4 && time.as_bytes()[i + 2] == b':' => {
            format!("{date}T{}{}0{}", &time[..i], &time[i..=i], &time[i + 1..])
        }
        Some(_) => t.to_owned(),
        None if time.ends_with(['Z', 'z']) => t.to_owned(),
        None => {
            let (h, m) = (DEFAULT_OFFSET_S / 3600, DEFAULT_OFFSET_S.abs() % 3600 / 60);
            format!("{t}{h:+03}:{m:02}")
        }
    };
    parse_timestamp(&text).and_then(crate::device_time)
}

/// The text of an XML document: UTF-8, unless its declaration names another encoding.
/// Devices and platforms in China declare and send GBK, GB2312 or GB18030 (a plate's
/// province character is then two bytes that are not UTF-8); those are decoded, and a
/// byte that is not valid in the declared encoding is an error, never a replacement.
fn xml_text(body: &[u8]) -> Result<std::borrow::Cow<'_, str>, FieldError> {
    let declared = declared_encoding(body);
    match declared.and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()).map(|e| (label, e))) {
        Some((label, enc)) if enc != encoding_rs::UTF_8 => {
            enc.decode_without_bom_handling_and_without_replacement(body).ok_or_else(|| {
                FieldError::new("body", format!("is not valid {label}, the encoding its XML declaration names"))
            })
        }
        _ => {
            let body = body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(body);
            std::str::from_utf8(body).map(std::borrow::Cow::Borrowed).map_err(|e| {
                let at = e.valid_up_to();
                let hint = match declared {
                    Some(label) if encoding_rs::Encoding::for_label(label.as_bytes()).is_none() => {
                        format!("is not UTF-8 (the declared encoding {label:?} is unknown)")
                    }
                    _ => "is not UTF-8 (declare encoding=\"GBK\" or another in the XML declaration if it is)".into(),
                };
                syntax_error(&String::from_utf8_lossy(&body[..at]), at, &hint)
            })
        }
    }
}

/// The `encoding` of an XML declaration at the start of `body`, if any.
fn declared_encoding(body: &[u8]) -> Option<&str> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(body);
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &body[start..body.len().min(start + 256)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")? + "encoding".len();
    let rest = decl[at..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(&value[..value.find(quote)?])
}

/// Parses an XML document into its elements, refusing DTDs, unknown entities, anything
/// after the root element, and documents beyond `limits` (elements, name length,
/// nesting).
fn parse(limits: &Limits, body: &[u8]) -> Result<Doc, FieldError> {
    let decoded = xml_text(body)?;
    let text: &str = &decoded;
    refuse_dtd(text)?;
    // XML 1.0 has no NUL, raw or as a character reference, and PostgreSQL cannot store one.
    if let Some(at) = text.find('\0') {
        return Err(syntax_error(text, at, crate::NUL_REASON));
    }
    let mut reader = Reader::from_str(text);
    let mut root: Option<String> = None;
    // Indices in `elements` of the open elements below the root, innermost last.
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut elements: Vec<Element> = Vec::new();
    loop {
        let position = reader.buffer_position() as usize;
        let event =
            reader.read_event().map_err(|e| syntax_error(text, reader.error_position() as usize, &e.to_string()))?;
        let closed_root = root.is_some() && depth == 0;
        let is_start = matches!(event, Event::Start(_));
        match event {
            Event::Start(_) | Event::Empty(_) if closed_root => {
                return Err(syntax_error(text, position, "a second root element; one event per push"))
            }
            Event::Start(e) | Event::Empty(e) => {
                let name_bytes = e.name().as_ref().len();
                if name_bytes > limits.max_name_bytes {
                    let what = format!(
                        "an element name of {name_bytes} bytes; at most {} are accepted",
                        limits.max_name_bytes
                    );
                    return Err(syntax_error(text, position, &what));
                }
                // The root counts as an element too.
                let count = if root.is_none() { 1 } else { elements.len() + 2 };
                if count > limits.max_elements {
                    let n = limits.max_elements;
                    let what = format!("more than {n} elements; at most {n} are accepted per push");
                    return Err(syntax_error(text, position, &what));
                }
                let name = e.local_name().as_ref().to_owned();
                if depth == 0 {
                    root = Some(name);
                    if is_start {
                        depth = 1;
                    }
                    continue;
                }
                // An empty element nests as deep as a started one would.
                if depth + 1 > limits.max_depth {
                    let what = format!("elements nest deeper than {}", limits.max_depth);
                    return Err(syntax_error(text, position, &what));
                }
                if is_start {
                    depth += 1;
                }
                let parent = open.last().copied();
                let top = parent.map_or(elements.len(), |p| elements[p].top);
                elements.push(Element { name, parent, top, depth: open.len() + 1, text: String::new() });
                if is_start {
                    open.push(elements.len() - 1);
                }
            }
            Event::End(_) => {
                // quick-xml has already refused an end tag that closes nothing.
                depth = depth.saturating_sub(1);
                if let Some(i) = open.pop() {
                    let element = &mut elements[i];
                    let trimmed = element.text.trim();
                    if trimmed.len() != element.text.len() {
                        element.text = trimmed.to_owned();
                    }
                }
            }
            Event::Text(t) => push_text(limits, text, position, &open, &mut elements, depth, &t.xml10_content())?,
            Event::CData(t) => push_text(limits, text, position, &open, &mut elements, depth, &t.xml10_content())?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match predefined_entity(&r) {
                        Some(s) => s.to_owned(),
                        None => {
                            return Err(syntax_error(text, position, &format!("unknown entity &{};", &*r)));
                        }
                    },
                    Err(e) => return Err(syntax_error(text, position, &e.to_string())),
                };
                push_text(limits, text, position, &open, &mut elements, depth, &resolved)?;
            }
            Event::DocType(_) => return Err(dtd_error(text, position)),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                let Some(root) = root else {
                    return Err(syntax_error(text, position, "no root element"));
                };
                if depth > 0 {
                    let innermost = open.last().map_or(&root, |i| &elements[*i].name);
                    return Err(syntax_error(text, position, &format!("document ends before </{innermost}>")));
                }
                return Ok(Doc { root, elements });
            }
        }
    }
}

/// Adds text to the innermost open element; outside the root only whitespace may appear.
fn push_text(
    limits: &Limits,
    doc: &str,
    position: usize,
    open: &[usize],
    elements: &mut [Element],
    depth: usize,
    text: &str,
) -> Result<(), FieldError> {
    if depth == 0 {
        if text.trim().is_empty() {
            return Ok(());
        }
        return Err(syntax_error(doc, position, "text outside the root element"));
    }
    // Text directly in the root (between its children) is whitespace we do not keep.
    if let Some(i) = open.last() {
        let element = &mut elements[*i];
        // Surrounding whitespace (indentation) does not count against the limit.
        if element.text.len() + text.trim().len() > limits.max_text_bytes {
            return Err(FieldError::new(
                element.name.clone(),
                format!("holds more than {} bytes of text; at most that many are accepted", limits.max_text_bytes),
            ));
        }
        element.text.push_str(text);
    }
    Ok(())
}

/// The five entities XML predefines (XML 1.0 §4.6); every other one would need a DTD.
fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

/// Refuses `<!DOCTYPE` and `<!ENTITY` anywhere in the text, in any case, before parsing:
/// a camera never sends either, and everything that makes XML dangerous to parse
/// (entity expansion, external entities) needs one of them.
fn refuse_dtd(text: &str) -> Result<(), FieldError> {
    // Compared in place after each `<!`, so that no lower-case copy of the body is made.
    let bytes = text.as_bytes();
    for at in memchr::memmem::find_iter(bytes, b"<!") {
        let rest = &bytes[at + 2..];
        let starts = |word: &[u8]| rest.get(..word.len()).is_some_and(|r| r.eq_ignore_ascii_case(word));
        if starts(b"doctype") || starts(b"entity") {
            return Err(dtd_error(text, at));
        }
    }
    Ok(())
}

fn dtd_error(text: &str, at: usize) -> FieldError {
    syntax_error(text, at, "DOCTYPE/DTD and ENTITY declarations are refused (entity expansion, external entities)")
}

/// `body: line L, column C: what`, with the position counted in characters from 1.
fn syntax_error(text: &str, byte: usize, what: &str) -> FieldError {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    FieldError::new("body", format!("line {line}, column {column}: {what}"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn gbk_pushes_are_read_when_declared_and_refused_with_a_hint_when_not() {
        let inner = "<ANPR>\n<licensePlate>川S12345</licensePlate>\n</ANPR>\n";
        for label in ["GBK", "gb2312", "GB18030"] {
            let xml = alert("ANPR", "active", 1, inner).replace("encoding=\"UTF-8\"", &format!("encoding='{label}'"));
            let (bytes, _, errors) = encoding_rs::GB18030.encode(&xml);
            assert!(!errors);
            assert!(std::str::from_utf8(&bytes).is_err(), "the test body really is not UTF-8");
            let e = decode(Some("application/xml"), &bytes).unwrap_or_else(|e| panic!("{label}: {e}"));
            let plate = e.plate.expect("a plate");
            assert_eq!((plate.raw.as_str(), plate.normalized.as_deref()), ("川S12345", Some("川S12345")), "{label}");
        }
        // The same bytes declared UTF-8 (or not declared) are refused, saying what to do.
        let utf8 = alert("ANPR", "active", 1, inner);
        let (bytes, _, _) = encoding_rs::GBK.encode(&utf8);
        let e = decode(Some("application/xml"), &bytes).unwrap_err();
        assert!(e.reason.contains("is not UTF-8") && e.reason.contains("GBK"), "{e}");
        // A byte sequence that is not GBK either is refused, not replaced.
        let mut bad = alert("ANPR", "active", 1, inner).replace("UTF-8", "GBK").into_bytes();
        let at = bad.len() - 30;
        bad[at] = 0xFF;
        let e = decode(Some("application/xml"), &bad).unwrap_err();
        assert!(e.reason.contains("is not valid GBK"), "{e}");
        // An encoding nobody knows is named.
        let odd = alert("ANPR", "active", 1, "").replace("UTF-8", "x-klingon");
        let mut odd = odd.into_bytes();
        odd.push(0xFF);
        let e = decode(Some("application/xml"), &odd).unwrap_err();
        assert!(e.reason.contains("x-klingon"), "{e}");
    }

    #[test]
    fn nul_is_refused_raw_or_as_a_character_reference() {
        for body in [
            "<EventNotificationAlert>\u{0}</EventNotificationAlert>",
            "<EventNotificationAlert>&#0;</EventNotificationAlert>",
        ] {
            let e = decode(Some("application/xml"), body.as_bytes()).unwrap_err();
            assert!(e.field == "body" && (e.reason.contains("NUL") || e.reason.contains("0x0")), "{body:?}: {e}");
        }
    }

    use super::*;

    /// 2024-05-01T00:00:00Z, which is 08:00 in Beijing.
    const T8_MS: i64 = 1_714_521_600_000;

    const ANPR_XML: &str = include_str!("../tests/fixtures/isapi/anpr.xml");
    const FACE_CAPTURE_XML: &str = include_str!("../tests/fixtures/isapi/face_capture.xml");
    const FACE_MATCH_XML: &str = include_str!("../tests/fixtures/isapi/face_match.xml");

    const XML: Option<&str> = Some("application/xml");
    const BOUNDARY: &str = "MIME_boundary_7d9f2c";
    const MULTIPART: Option<&str> = Some("multipart/form-data; boundary=MIME_boundary_7d9f2c");

    /// The smallest JPEG-shaped files: SOI, an APP0 marker, a little data, EOI. The
    /// decoder checks only the SOI, so they need not be viewable.
    fn jpeg(tag: u8) -> Vec<u8> {
        vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, tag, 0xFF, 0xD9]
    }

    /// A multipart body as Hikvision cameras frame it: CRLF line ends, a
    /// `Content-Disposition` and a `Content-Type` per part, the closing delimiter last.
    fn multipart_body(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
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
    fn crlf_to_lf(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len());
        for (i, &b) in body.iter().enumerate() {
            if !(b == b'\r' && body.get(i + 1) == Some(&b'\n')) {
                out.push(b);
            }
        }
        out
    }

    /// An `EventNotificationAlert` envelope around `inner`, as a DS-7xxx NVR sends it.
    fn alert(event_type: &str, state: &str, count: u32, inner: &str) -> String {
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

    fn anpr_event() -> CameraEvent {
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

    fn face_capture_event() -> CameraEvent {
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

    fn face_match_event() -> CameraEvent {
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
    fn nvr_event(event_type: &str, kind: EventKind, active: bool, count: u32) -> CameraEvent {
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

    struct Push {
        name: &'static str,
        content_type: Option<&'static str>,
        body: Vec<u8>,
        want: CameraEvent,
    }

    fn push(
        name: &'static str,
        content_type: Option<&'static str>,
        body: impl Into<Vec<u8>>,
        want: CameraEvent,
    ) -> Push {
        Push { name, content_type, body: body.into(), want }
    }

    fn edited(mut event: CameraEvent, edit: impl FnOnce(&mut CameraEvent)) -> CameraEvent {
        edit(&mut event);
        event
    }

    #[test]
    fn every_push_shape() {
        let (plate_jpg, scene_jpg, face_jpg) = (jpeg(1), jpeg(2), jpeg(3));
        let anpr_multipart = multipart_body(&[
            ("anpr.xml", "application/xml; charset=\"UTF-8\"", ANPR_XML.as_bytes()),
            ("licensePlatePicture.jpg", "image/jpeg", &plate_jpg),
            ("detectionPicture.jpg", "image/jpeg", &scene_jpg),
        ]);
        let face_multipart = multipart_body(&[
            ("faceCapture.xml", "text/xml", FACE_CAPTURE_XML.as_bytes()),
            ("faceImage.jpg", "image/jpeg", &face_jpg),
        ]);
        let untyped_parts = multipart_body(&[("anpr.xml", "", ANPR_XML.as_bytes()), ("plate.jpg", "", &plate_jpg)]);
        let vmd = |count| alert("VMD", "active", count, "");
        let rows = [
            push("ANPR raw XML", XML, ANPR_XML, anpr_event()),
            push("ANPR raw XML, text/xml with charset", Some("text/xml; charset=UTF-8"), ANPR_XML, anpr_event()),
            push("ANPR raw XML, no content type", None, ANPR_XML, anpr_event()),
            push(
                "ANPR multipart with two JPEGs",
                MULTIPART,
                anpr_multipart.clone(),
                edited(anpr_event(), |e| e.images = vec![plate_jpg.clone(), scene_jpg.clone()]),
            ),
            push(
                "ANPR multipart, quoted boundary",
                Some("multipart/form-data; boundary=\"MIME_boundary_7d9f2c\""),
                anpr_multipart.clone(),
                edited(anpr_event(), |e| e.images = vec![plate_jpg.clone(), scene_jpg.clone()]),
            ),
            push(
                "ANPR multipart, LF line ends",
                MULTIPART,
                crlf_to_lf(&anpr_multipart),
                edited(anpr_event(), |e| e.images = vec![plate_jpg.clone(), scene_jpg.clone()]),
            ),
            push(
                "ANPR multipart, parts typed by file name only",
                MULTIPART,
                untyped_parts,
                edited(anpr_event(), |e| e.images = vec![plate_jpg.clone()]),
            ),
            push(
                "ANPR, no plate read",
                XML,
                ANPR_XML.replace("<licensePlate>川S12345</licensePlate>", "<licensePlate>无车牌</licensePlate>"),
                edited(anpr_event(), |e| {
                    let p = e.plate.as_mut().unwrap();
                    p.raw = "无车牌".into();
                    p.normalized = None;
                }),
            ),
            push("face capture raw XML", XML, FACE_CAPTURE_XML, face_capture_event()),
            push(
                "face capture multipart",
                MULTIPART,
                face_multipart,
                edited(face_capture_event(), |e| e.images = vec![face_jpg.clone()]),
            ),
            push("face match with a library person", XML, FACE_MATCH_XML, face_match_event()),
            push(
                "heartbeat: inactive videoloss, channel 0",
                XML,
                alert("videoloss", "inactive", 0, "").replace("<channelID>4<", "<channelID>0<"),
                edited(nvr_event("videoloss", EventKind::Heartbeat, false, 0), |e| e.camera.channel = Some(0)),
            ),
            push("motion, first push", XML, vmd(1), nvr_event("VMD", EventKind::Other, true, 1)),
            push("motion, repeat push", XML, vmd(2), nvr_event("VMD", EventKind::Other, true, 2)),
            push("motion ends", XML, alert("VMD", "inactive", 0, ""), nvr_event("VMD", EventKind::Heartbeat, false, 0)),
            push(
                "unknown event type",
                XML,
                alert("someFutureThing", "active", 1, "<someFutureThing><x>1</x></someFutureThing>\n"),
                nvr_event("someFutureThing", EventKind::Other, true, 1),
            ),
            push(
                "no namespace, no declaration, upper-case state, CDATA",
                None,
                "<EventNotificationAlert><eventType>VMD</eventType><eventState>ACTIVE</eventState>\
                 <eventDescription><![CDATA[Motion <alarm>]]></eventDescription></EventNotificationAlert>",
                CameraEvent {
                    event_type: "VMD".into(),
                    kind: EventKind::Other,
                    state_active: true,
                    active_post_count: None,
                    time_ms: None,
                    camera: CameraRef::default(),
                    plate: None,
                    face: None,
                    description: Some("Motion <alarm>".into()),
                    images: Vec::new(),
                },
            ),
            push(
                "dateTime without offset is Beijing time",
                XML,
                vmd(1).replace("08:00:00+08:00", "08:00:00"),
                nvr_event("VMD", EventKind::Other, true, 1),
            ),
            push(
                "dateTime with a one-digit offset hour",
                XML,
                vmd(1).replace("2024-05-01T08:00:00+08:00", "2024-04-30T16:00:00-8:00"),
                nvr_event("VMD", EventKind::Other, true, 1),
            ),
            push(
                "dateTime in UTC with milliseconds",
                XML,
                vmd(1).replace("2024-05-01T08:00:00+08:00", "2024-05-01T00:00:00.250Z"),
                edited(nvr_event("VMD", EventKind::Other, true, 1), |e| e.time_ms = Some(T8_MS + 250)),
            ),
        ];
        for row in rows {
            assert_eq!(decode(row.content_type, &row.body), Ok(row.want), "{}", row.name);
        }
    }

    /// A refused push: name, content type, body, the field the error must name and a
    /// part of its reason.
    type Refusal = (&'static str, Option<&'static str>, Vec<u8>, &'static str, &'static str);

    #[test]
    fn refusals_name_the_field() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let anpr_multipart = multipart_body(&[("anpr.xml", "application/xml", ANPR_XML.as_bytes())]);
        let billion_laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n\
            <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n\
            <EventNotificationAlert><eventType>&lol2;</eventType></EventNotificationAlert>";
        let xxe = "<?xml version=\"1.0\"?><!doctype a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
            <EventNotificationAlert><eventType>&xxe;</eventType></EventNotificationAlert>";
        let deep = format!(
            "<EventNotificationAlert><eventType>VMD</eventType>{}{}</EventNotificationAlert>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        let rows: Vec<Refusal> = vec![
            (
                "unclosed tag, as an old firmware sent it",
                XML,
                alert("videoloss", "inactive", 0, "")
                    .replace("alarm</eventDescription>", "alarm<eventDescription>")
                    .into(),
                "body",
                "line 13, column 1: ill-formed document: expected `</eventDescription>`",
            ),
            ("document cut inside a tag", XML, ANPR_XML[..600].into(), "body", "line 17, column 1: syntax error"),
            (
                "document cut between tags",
                XML,
                ANPR_XML[..ANPR_XML.find("</ANPR>").unwrap()].into(),
                "body",
                "document ends before </ANPR>",
            ),
            ("billion laughs", XML, billion_laughs.into(), "body", "line 2, column 1: DOCTYPE/DTD"),
            ("external entity, lower-case doctype", None, xxe.into(), "body", "DOCTYPE/DTD"),
            (
                "undeclared entity",
                XML,
                alert("VMD", "active", 1, "<x>&nbsp;</x>").into(),
                "body",
                "unknown entity &nbsp;",
            ),
            ("nesting too deep", XML, deep.into(), "body", "nest deeper than 32"),
            (
                "two documents in one push",
                XML,
                format!("{}{}", alert("VMD", "active", 1, ""), alert("VMD", "active", 2, "")).into(),
                "body",
                "second root element",
            ),
            (
                "not UTF-8",
                XML,
                b"<EventNotificationAlert><channelName>\xb4\xa8</channelName>".to_vec(),
                "body",
                "not UTF-8",
            ),
            ("empty body", XML, Vec::new(), "body", "no root element"),
            (
                "another root",
                XML,
                b"<ResponseStatus><statusCode>1</statusCode></ResponseStatus>".to_vec(),
                "body",
                "root",
            ),
            ("missing eventType", XML, ANPR_XML.replace("<eventType>ANPR</eventType>", "").into(), "eventType", ""),
            ("empty eventType", XML, alert("", "active", 1, "").into(), "eventType", ""),
            ("odd eventState", XML, alert("VMD", "ongoing", 1, "").into(), "eventState", "ongoing"),
            (
                "bad dateTime",
                XML,
                alert("VMD", "active", 1, "").replace("2024-05-01T", "2024-05-01 ").into(),
                "dateTime",
                "",
            ),
            (
                "dateTime in 9999",
                XML,
                alert("VMD", "active", 1, "").replace("2024-05-01T08:00:00+08:00", "9999-12-31T23:59:59+08:00").into(),
                "dateTime",
                "2000 to 2099",
            ),
            (
                "dateTime of a clock never set",
                XML,
                alert("VMD", "active", 1, "").replace("2024-05-01T08:00:00+08:00", "1970-01-01T08:00:00").into(),
                "dateTime",
                "2000 to 2099",
            ),
            (
                "bad channel",
                XML,
                alert("VMD", "active", 1, "").replace("<channelID>4", "<channelID>D4").into(),
                "channelID",
                "",
            ),
            (
                "bad post count",
                XML,
                alert("VMD", "active", 1, "").replace(">1</active", ">-1</active").into(),
                "activePostCount",
                "",
            ),
            (
                "confidence over 100",
                XML,
                ANPR_XML.replace("<confidenceLevel>98<", "<confidenceLevel>980<").into(),
                "ANPR.confidenceLevel",
                "980",
            ),
            (
                "similarity not a number",
                XML,
                FACE_MATCH_XML.replace("0.92", "high").into(),
                "faceSnapMatch.FaceCaptureList.FaceCapture.similarity",
                "high",
            ),
            (
                "multipart without boundary",
                Some("multipart/form-data"),
                anpr_multipart.clone(),
                "content-type",
                "boundary",
            ),
            ("JSON is not ISAPI XML", Some("application/json"), b"{}".to_vec(), "content-type", "application/json"),
            (
                "multipart with no XML part",
                MULTIPART,
                multipart_body(&[("picture.jpg", "image/jpeg", &jpeg(1))]),
                "body",
                "no XML part",
            ),
            (
                "multipart JPEG part that is a PNG",
                MULTIPART,
                multipart_body(&[
                    ("anpr.xml", "application/xml", ANPR_XML.as_bytes()),
                    ("plate.jpg", "image/jpeg", &png),
                ]),
                "image",
                "\"plate.jpg\"",
            ),
            (
                "multipart cut short",
                MULTIPART,
                anpr_multipart[..anpr_multipart.len() - BOUNDARY.len() - 8].to_vec(),
                "body",
                "closing --MIME_boundary_7d9f2c-- is missing",
            ),
            (
                "multipart with another boundary",
                Some("multipart/form-data; boundary=other"),
                anpr_multipart.clone(),
                "body",
                "no multipart delimiter --other",
            ),
            (
                "multipart bad XML part",
                MULTIPART,
                multipart_body(&[("a.xml", "text/xml", b"<EventNotificationAlert>")]),
                "body",
                "ends before",
            ),
        ];
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

    #[test]
    fn multipart_framing_that_cameras_send_is_still_accepted() {
        let xml = ANPR_XML.replace('\n', "\r\n");
        let jpg = jpeg(1);
        let framings: [(&str, Vec<u8>); 5] = [
            (
                "a preamble, transport padding after delimiters and an epilogue",
                [
                    b"This is a multi-part message in MIME format.\r\n".as_slice(),
                    format!("--{BOUNDARY}  \r\nContent-Type: text/xml\r\n\r\n").as_bytes(),
                    xml.as_bytes(),
                    format!("\r\n--{BOUNDARY}\t\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
                    &jpg,
                    format!("\r\n--{BOUNDARY}--\r\nepilogue\r\n").as_bytes(),
                ]
                .concat(),
            ),
            (
                "a part without headers, sniffed as XML, then an empty part",
                [
                    format!("--{BOUNDARY}\r\n\r\n").as_bytes(),
                    xml.as_bytes(),
                    format!("\r\n--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\n\r\n--{BOUNDARY}--").as_bytes(),
                ]
                .concat(),
            ),
            (
                "headers ending in LF then a CRLF blank line, no closing line end",
                [
                    format!("--{BOUNDARY}\nContent-Type: application/xml\n\n").as_bytes(),
                    xml.as_bytes(),
                    format!("\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"p.jpg\"\r\n\r\n").as_bytes(),
                    &jpg,
                    format!("\r\n--{BOUNDARY}--").as_bytes(),
                ]
                .concat(),
            ),
            (
                "a boundary string inside a part that is not at a line start",
                [
                    format!("--{BOUNDARY}\r\nContent-Type: application/xml\r\n\r\n").as_bytes(),
                    xml.replace("ANPR</eventDescription>", &format!("ANPR --{BOUNDARY}</eventDescription>")).as_bytes(),
                    format!("\r\n--{BOUNDARY}--\r\n").as_bytes(),
                ]
                .concat(),
            ),
            ("a push of one XML part", multipart_body(&[("anpr.xml", "application/xml", ANPR_XML.as_bytes())])),
        ];
        for (name, body) in framings {
            let event = decode(MULTIPART, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(event.plate.map(|p| p.raw), Some("川S12345".to_owned()), "{name}");
        }
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

    #[test]
    fn event_serialises_without_images() {
        let mut event = anpr_event();
        event.images = vec![jpeg(1)];
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "anpr");
        assert_eq!(json["plate"]["normalized"], "川S12345");
        assert!(json.get("images").is_none(), "{json}");
    }
}
