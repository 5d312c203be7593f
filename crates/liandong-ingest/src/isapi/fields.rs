//! The mapping of an ISAPI `EventNotificationAlert` document (Hikvision ISAPI developer
//! guide, "ISAPI Event") to a [`CameraEvent`]: the event kind, the camera, the plate of
//! an `<ANPR>` block, the face of a face block and the device's `dateTime`.

use super::event::{CameraEvent, CameraRef, EventKind, FaceRead, PlateRead};
use super::xml::Doc;
use crate::plate::normalize_plate;
use crate::{parse_timestamp, FieldError};

/// The UTC offset of a `dateTime` sent without one, in seconds east of UTC.
///
/// Cameras set to local time without a zone send `2024-05-01T08:00:00`; China has one
/// time zone, UTC+08:00, and reading such a time as UTC would put the event 8 hours
/// early, which for an ANPR hit is worse than useless.
pub const DEFAULT_OFFSET_S: i32 = 8 * 3600;

/// Identifier elements in a face block, best first: a matched person's id (`humanID`,
/// `human_id` in JSON comparison results, `PID`, `FPID`, `FUID`, `employeeNoString`)
/// names someone in a face library, while a `faceID` only numbers the face within one
/// capture.
pub const FACE_ID_KEYS: [&str; 7] = ["humanID", "human_id", "PID", "FPID", "FUID", "employeeNoString", "faceID"];

/// The picture id (`pId`, spelt so in both formats) names the JPEG part a face was cut
/// from (the part's `Content-ID`), not a person: it must not be read as `PID`, which the
/// case-insensitive match would otherwise do.
const PICTURE_ID: &str = "pId";

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

/// Event types read as [`EventKind::Parking`] (compared lower-case): Hikvision's
/// illegal-parking detection of traffic and parking-capture cameras (`illegalParking`),
/// and parking detection, a vehicle stopped in a region where it must not
/// (`parking`, `parkingDetection`).
pub const PARKING_TYPES: [&str; 4] = ["illegalparking", "parking", "parkingdetection", "illegalparkingdetection"];

/// The violation code of illegal parking (违法停车) in the traffic police's violation
/// codes (GA 408.1): `1039`, and the longer codes some firmwares write beginning with it.
const ILLEGAL_PARKING_CODE: &str = "1039";

/// Whether an ANPR push's violation (`illegalInfo`: `illegalCode`, `illegalName`) is
/// illegal parking: the code starts with 1039, or the name says parking (停车, 违停,
/// `parking`). Public so that every decoder of a camera's push asks the same question.
pub fn is_illegal_parking(code: Option<&str>, name: Option<&str>) -> bool {
    let code = code.is_some_and(|c| c.trim().starts_with(ILLEGAL_PARKING_CODE));
    let name = name.is_some_and(|n| n.contains("停") || n.to_ascii_lowercase().contains("parking"));
    code || name
}

/// What an event means, from its type, its state and whether it carries an illegal
/// parking violation: one decision for every decoder of a camera's push (XML here, the
/// JSON of newer firmwares).
pub fn event_kind(event_type: &str, state_active: bool, illegal_parking: bool) -> EventKind {
    let t = event_type.to_ascii_lowercase();
    if !state_active {
        EventKind::Heartbeat
    } else if PARKING_TYPES.contains(&t.as_str()) || (illegal_parking && ANPR_TYPES.contains(&t.as_str())) {
        EventKind::Parking
    } else if ANPR_TYPES.contains(&t.as_str()) {
        EventKind::Anpr
    } else if FACE_TYPES.contains(&t.as_str()) {
        EventKind::Face
    } else {
        EventKind::Other
    }
}

/// The `illegalInfo` of an ANPR push (inside `<ANPR>` on traffic cameras, beside it on
/// some), read as [`is_illegal_parking`].
fn illegal_parking(doc: &Doc) -> bool {
    let get = |name: &str| doc.get(&["ANPR", "illegalInfo", name]).or_else(|| doc.get(&["illegalInfo", name]));
    is_illegal_parking(get("illegalCode"), get("illegalName").or_else(|| get("illegalDescription")))
}

/// The event an `EventNotificationAlert` document describes, with the snapshots that came
/// beside it; any other root element is refused.
pub(super) fn event(doc: &Doc, images: Vec<Vec<u8>>) -> Result<CameraEvent, FieldError> {
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
        channel: channel(doc)?,
        channel_name: doc.get(&["channelName"]).map(str::to_owned),
    };
    let kind = event_kind(&event_type, state_active, illegal_parking(doc));
    Ok(CameraEvent {
        active_post_count: unsigned("activePostCount", doc.get(&["activePostCount"]))?,
        time_ms,
        camera,
        plate: plate(doc)?,
        face: face(doc)?,
        description: doc.get(&["eventDescription"]).map(str::to_owned),
        images,
        event_type,
        kind,
        state_active,
    })
}

/// The channel: `channelID`, else `dynChannelID`, the dynamic channel NVRs with IP
/// channels send (some send only it). When both are present `channelID` wins: it is the
/// number every other push of the device uses, and the camera itself is named by the
/// push URL (`?camera=`), so the channel only tells the channels of one device apart.
/// Both are checked, so a malformed one is refused whichever is used.
fn channel(doc: &Doc) -> Result<Option<u32>, FieldError> {
    let fixed = unsigned("channelID", doc.get(&["channelID"]))?;
    let dynamic = unsigned("dynChannelID", doc.get(&["dynChannelID"]))?;
    Ok(fixed.or(dynamic))
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
/// `FaceCaptureList`, `faceSnap`, `faceSnapMatch`, `faceRecognitionAlarmList`, ...) or
/// is `alarmResult` (a face comparison's result): the firmwares name them differently,
/// and being liberal here costs nothing.
fn is_face_block(name: &str) -> bool {
    name.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("face")) || name.eq_ignore_ascii_case("alarmResult")
}

/// The face block's best identifier and similarity; `None` without a face block.
fn face(doc: &Doc) -> Result<Option<FaceRead>, FieldError> {
    if !doc.elements.iter().any(|e| e.depth == 1 && is_face_block(&e.name)) {
        return Ok(None);
    }
    let id = FACE_ID_KEYS.iter().find_map(|k| face_id(doc, k));
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

/// The first non-empty face-block element below the top named `name` (any case) that
/// is not the picture id.
fn face_id<'d>(doc: &'d Doc, name: &str) -> Option<&'d super::xml::Element> {
    doc.elements.iter().find(|e| {
        e.depth >= 2
            && e.name.eq_ignore_ascii_case(name)
            && e.name != PICTURE_ID
            && !e.text.is_empty()
            && is_face_block(&doc.elements[e.top].name)
    })
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

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::super::test_support::*;
    use super::*;

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
            push(
                "illegal parking capture with the parked vehicle's plate",
                XML,
                ANPR_XML.replace("<eventType>ANPR<", "<eventType>illegalParking<"),
                edited(anpr_event(), |e| {
                    e.event_type = "illegalParking".into();
                    e.kind = EventKind::Parking;
                }),
            ),
            push(
                "ANPR with an illegal parking violation code",
                XML,
                ANPR_XML.replace(
                    "<originalLicensePlate>",
                    "<illegalInfo><illegalCode>1039</illegalCode><illegalName>违停</illegalName></illegalInfo>\n\
                     <originalLicensePlate>",
                ),
                edited(anpr_event(), |e| e.kind = EventKind::Parking),
            ),
            push(
                "ANPR with a speeding violation stays a plate read",
                XML,
                ANPR_XML.replace(
                    "<originalLicensePlate>",
                    "<illegalInfo><illegalCode>1352</illegalCode><illegalName>超速</illegalName></illegalInfo>\n\
                     <originalLicensePlate>",
                ),
                anpr_event(),
            ),
            push(
                "a parking detection that ended is a heartbeat",
                XML,
                alert("parking", "inactive", 0, ""),
                nvr_event("parking", EventKind::Heartbeat, false, 0),
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
    #[test]
    fn illegal_parking_is_told_by_code_or_name() {
        let rows = [
            (Some("1039"), None, true),
            (Some(" 10390 "), None, true),
            (None, Some("违章停车"), true),
            (None, Some("Illegal Parking"), true),
            (Some("1352"), Some("超速"), false),
            (None, None, false),
        ];
        for (code, name, want) in rows {
            assert_eq!(is_illegal_parking(code, name), want, "{code:?} {name:?}");
        }
        assert_eq!(event_kind("illegalParking", true, false), EventKind::Parking);
        assert_eq!(event_kind("vehicleDetection", true, true), EventKind::Parking);
        assert_eq!(event_kind("VMD", true, true), EventKind::Other, "a violation counts only on a plate read");
    }

    #[test]
    fn refusals_name_the_field() {
        let rows: Vec<Refusal> = vec![
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
        ];
        assert_refused(rows);
    }
}
