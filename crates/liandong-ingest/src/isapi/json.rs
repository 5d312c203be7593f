//! The JSON reader: the `EventNotificationAlert` newer Hikvision firmwares push as a JSON
//! object (raw `application/json`, or the JSON part of a multipart push) read into the
//! same flat tree of elements the XML reader makes, so that one mapping (`fields`) serves
//! both formats.
//!
//! The object's keys are the XML document's element names (`ipAddress`, `channelID`,
//! `eventType`, `ANPR`, ...), and the object itself is the alert (there is no
//! `EventNotificationAlert` key around it). A key becomes an element; a number, a boolean
//! or a string its text; `null` an empty element; an array repeats its key once per
//! item, as XML repeats an element (`"faces": [{…}, {…}]` reads like two `<faces>`).
//!
//! The body is untrusted. It is read in one pass with serde_json, each value visited once
//! and never kept twice, so time and memory are linear in the body. The reader refuses,
//! before serde_json's own recursion limit (128) could matter, containers nested deeper
//! than the limits' `max_depth`, more keys and array items than `max_elements`, keys
//! longer than `max_name_bytes` and strings longer than `max_text_bytes` (naming the key),
//! as the XML reader refuses the same; and NUL anywhere, as PostgreSQL cannot store it.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::xml::{Doc, DocLimits, Element};
use crate::FieldError;

/// The root's name in the tree: the JSON object is the alert itself.
const ROOT: &str = "EventNotificationAlert";

/// The byte-order mark some embedded HTTP stacks put before a UTF-8 body.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a JSON push into a [`Doc`], or says which key (or `body`) is wrong.
pub(super) fn parse(limits: &DocLimits, body: &[u8]) -> Result<Doc, FieldError> {
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let mut tree = Tree { limits, elements: Vec::new(), refusal: None };
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = Node { tree: &mut tree, at: None, nesting: 0 }.deserialize(&mut de).and_then(|()| de.end());
    match (read, tree.refusal) {
        (_, Some(refusal)) => Err(refusal),
        (Err(e), None) => Err(FieldError::new("body", format!("is not valid JSON: {e}"))),
        (Ok(()), None) => Ok(Doc { root: ROOT.to_owned(), elements: tree.elements }),
    }
}

/// The tree being built, and the first refusal of the limits (serde_json's error then
/// only carries the reader out).
struct Tree<'l> {
    limits: &'l DocLimits,
    elements: Vec<Element>,
    refusal: Option<FieldError>,
}

impl Tree<'_> {
    /// Records a refusal and gives serde_json an error that stops the read.
    fn refuse<E: de::Error>(&mut self, field: impl Into<String>, reason: impl Into<String>) -> E {
        self.refusal.get_or_insert_with(|| FieldError::new(field, reason));
        E::custom("refused")
    }

    /// The dotted path of element `i` (`ANPR.confidenceLevel`), for a refusal.
    fn path(&self, i: usize) -> String {
        let mut names = vec![self.elements[i].name.as_str()];
        let mut at = self.elements[i].parent;
        while let Some(p) = at {
            names.push(&self.elements[p].name);
            at = self.elements[p].parent;
        }
        names.reverse();
        names.join(".")
    }

    /// Adds an element named `name` below `parent` (None: below the root).
    fn push<E: de::Error>(&mut self, name: String, parent: Option<usize>) -> Result<usize, E> {
        let max = self.limits.max_elements;
        // The root counts as an element, as in the XML reader.
        if self.elements.len() + 2 > max {
            return Err(self.refuse("body", format!("more than {max} elements; at most {max} are accepted per push")));
        }
        if name.len() > self.limits.max_name_bytes {
            let what =
                format!("has a key of {} bytes; at most {} are accepted", name.len(), self.limits.max_name_bytes);
            return Err(self.refuse("body", what));
        }
        if name.contains('\0') {
            return Err(self.refuse("body", format!("a key {}", crate::NUL_REASON)));
        }
        let (top, depth) = match parent {
            Some(p) => (self.elements[p].top, self.elements[p].depth + 1),
            None => (self.elements.len(), 1),
        };
        self.elements.push(Element { name, parent, top, depth, text: String::new() });
        Ok(self.elements.len() - 1)
    }

    /// Sets the text of element `at` (a scalar at the root is not an alert).
    fn text<E: de::Error>(&mut self, at: Option<usize>, text: String) -> Result<(), E> {
        let Some(i) = at else {
            return Err(self.refuse("body", "must be a JSON object (an EventNotificationAlert)"));
        };
        if text.len() > self.limits.max_text_bytes {
            let reason =
                format!("holds more than {} bytes of text; at most that many are accepted", self.limits.max_text_bytes);
            return Err(self.refuse(self.path(i), reason));
        }
        if text.contains('\0') {
            return Err(self.refuse(self.path(i), crate::NUL_REASON));
        }
        self.elements[i].text = text.trim().to_owned();
        Ok(())
    }

    /// Checks one more level of nesting (`nesting` counts objects and arrays, the root
    /// object as 1).
    fn nest<E: de::Error>(&mut self, nesting: usize) -> Result<(), E> {
        if nesting > self.limits.max_depth {
            return Err(self.refuse("body", format!("nests objects and arrays deeper than {}", self.limits.max_depth)));
        }
        Ok(())
    }
}

/// One JSON value, filling element `at` (None: the root).
struct Node<'t, 'l> {
    tree: &'t mut Tree<'l>,
    at: Option<usize>,
    /// Containers around the value.
    nesting: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.tree.text(self.at, v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.tree.text(self.at, v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.tree.text(self.at, v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.tree.text(self.at, v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.tree.text(self.at, v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.tree.text(self.at, v)
    }

    /// `null`: the element stays empty, which reads as absent.
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        match self.at {
            Some(_) => Ok(()),
            None => Err(self.tree.refuse("body", "must be a JSON object (an EventNotificationAlert)")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let nesting = self.nesting + 1;
        self.tree.nest(nesting)?;
        while let Some(key) = map.next_key::<String>()? {
            let at = self.tree.push(key, self.at)?;
            map.next_value_seed(Node { tree: &mut *self.tree, at: Some(at), nesting })?;
        }
        Ok(())
    }

    /// An array repeats its key: the first item fills the key's own element, each later
    /// one a new element of the same name beside it.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(first) = self.at else {
            return Err(self.tree.refuse("body", "must be a JSON object (an EventNotificationAlert), not an array"));
        };
        let nesting = self.nesting + 1;
        self.tree.nest(nesting)?;
        let mut index = 0usize;
        while seq.next_element_seed(Item { tree: &mut *self.tree, first, index, nesting })?.is_some() {
            index += 1;
        }
        Ok(())
    }
}

/// The `index`th item of an array whose key's element is `first`; its element is made
/// only when the item is there.
struct Item<'t, 'l> {
    tree: &'t mut Tree<'l>,
    first: usize,
    index: usize,
    nesting: usize,
}

impl<'de> DeserializeSeed<'de> for Item<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let at = if self.index == 0 {
            self.first
        } else {
            let (name, parent) = (self.tree.elements[self.first].name.clone(), self.tree.elements[self.first].parent);
            self.tree.push(name, parent)?
        };
        Node { tree: self.tree, at: Some(at), nesting: self.nesting }.deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{decode, decode_with, EventKind, Limits};

    const JSON: Option<&str> = Some("application/json");

    /// The ANPR push of `anpr.xml`, as JSON firmware sends it (numbers unquoted).
    const ANPR_JSON: &str = r#"{
        "ipAddress": "10.12.0.31", "portNo": 80, "protocol": "HTTP",
        "macAddress": "bc:ba:c2:10:4e:7f", "channelID": 1,
        "dateTime": "2024-05-01T08:00:00+08:00", "activePostCount": 1,
        "isDataRetransmission": false,
        "eventType": "ANPR", "eventState": "active", "eventDescription": "ANPR",
        "channelName": "G318 K2105 东向 & 卡口",
        "ANPR": {
            "licensePlate": "川S12345", "plateColor": "blue", "vehicleType": "vehicle",
            "direction": "forward", "confidenceLevel": 98, "line": 2,
            "vehicleInfo": {"color": "white", "vehicleLogoRecog": 1036},
            "pictureInfoList": [{"fileName": "licensePlatePicture.jpg", "type": "licensePlatePicture"},
                                {"fileName": "detectionPicture.jpg", "type": "detectionPicture"}]
        }
    }"#;

    /// A face capture as JSON firmware sends it: the faces under an array, each with its
    /// picture id (`pId`, the Content-ID of its JPEG part), which is not a person.
    const FACE_CAPTURE_JSON: &str = r#"{
        "ipAddress": "10.12.0.45", "portNo": 80, "protocol": "HTTP",
        "macAddress": "44:19:b6:6d:24:85", "channelID": 1,
        "dateTime": "2024-05-01T08:00:05+08:00", "activePostCount": 1,
        "eventType": "faceCapture", "eventState": "active", "eventDescription": "faceCapture",
        "channelName": "县公安局大厅",
        "faceCapture": [{
            "targetAttrs": {"deviceName": "IP CAMERA", "deviceChannel": 1,
                            "faceTime": "2024-05-01T08:00:05+08:00", "pId": "P20240501080005A1"},
            "faces": [{
                "faceId": 17, "pId": "P20240501080005F1", "contentID": "faceImage",
                "faceRect": {"height": 0.120, "width": 0.068, "x": 0.512, "y": 0.233},
                "age": {"ageGroup": "middle", "value": 35, "confidence": 71},
                "gender": {"value": "male", "confidence": 96},
                "glass": {"value": "no", "confidence": 90}
            }]
        }]
    }"#;

    /// A face comparison result (`alarmResult`) naming the library person it matched.
    const ALARM_RESULT_JSON: &str = r#"{
        "ipAddress": "10.12.0.46", "macAddress": "44:19:b6:6d:24:86", "channelID": 2,
        "dateTime": "2024-05-01T08:00:07+08:00", "activePostCount": 1,
        "eventType": "alarmResult", "eventState": "active", "eventDescription": "alarmResult",
        "channelName": "汽车站进站口",
        "alarmResult": [{
            "targetAttrs": {"deviceChannel": 2, "faceTime": "2024-05-01T08:00:07+08:00"},
            "faces": [{
                "faceId": 3, "pId": "P3",
                "identify": [{"maxsimilarity": 0.92, "candidate": [{
                    "human_data": [{"face_id": "3", "pId": "P-lib-3", "similarity": 0.92}],
                    "human_id": "B7C4D2E0A1", "similarity": 0.92, "FDLibName": "重点人员"
                }]}]
            }]
        }]
    }"#;

    /// An NVR's heartbeat for an IP channel: an inactive videoloss that names the channel
    /// only by `dynChannelID`.
    const HEARTBEAT_JSON: &str = r#"{
        "ipAddress": "10.12.0.2", "macAddress": "3c:1b:f8:38:ba:23", "dynChannelID": 33,
        "dateTime": "2024-05-01T08:00:00+08:00", "activePostCount": 0,
        "eventType": "videoloss", "eventState": "inactive", "eventDescription": "videoloss alarm"
    }"#;

    #[test]
    fn json_pushes_decode_as_their_xml_twins() {
        let face_jpg = jpeg(3);
        let face_multipart = multipart_body(&[
            ("faceCapture", "application/json", FACE_CAPTURE_JSON.as_bytes()),
            ("faceImage.jpg", "image/jpeg", &face_jpg),
        ]);
        let untyped = multipart_body(&[("anpr.json", "", ANPR_JSON.as_bytes()), ("plate.jpg", "", &face_jpg)]);
        let heartbeat = edited(nvr_event("videoloss", EventKind::Heartbeat, false, 0), |e| e.camera.channel = Some(33));
        let rows = [
            push("ANPR raw JSON", JSON, ANPR_JSON, anpr_event()),
            push("ANPR JSON with charset", Some("application/json; charset=UTF-8"), ANPR_JSON, anpr_event()),
            push("ANPR JSON, no content type", None, ANPR_JSON, anpr_event()),
            push(
                "ANPR JSON after a byte-order mark",
                JSON,
                [b"\xEF\xBB\xBF".as_slice(), ANPR_JSON.as_bytes()].concat(),
                anpr_event(),
            ),
            push(
                "ANPR multipart, parts typed by name only",
                MULTIPART,
                untyped,
                edited(anpr_event(), |e| e.images = vec![face_jpg.clone()]),
            ),
            push(
                "face capture multipart JSON and JPEG",
                MULTIPART,
                face_multipart,
                edited(face_capture_event(), |e| e.images = vec![face_jpg.clone()]),
            ),
            push(
                "face comparison result",
                JSON,
                ALARM_RESULT_JSON,
                edited(face_match_event(), |e| {
                    e.event_type = "alarmResult".into();
                    e.description = Some("alarmResult".into());
                }),
            ),
            push("NVR heartbeat with dynChannelID only", JSON, HEARTBEAT_JSON, heartbeat.clone()),
            push(
                "channelID wins over dynChannelID",
                JSON,
                HEARTBEAT_JSON.replace(r#""dynChannelID": 33"#, r#""dynChannelID": 33, "channelID": "4""#),
                edited(heartbeat.clone(), |e| e.camera.channel = Some(4)),
            ),
            push(
                "nulls and empty strings read as absent",
                JSON,
                HEARTBEAT_JSON.replace(
                    r#""eventDescription": "videoloss alarm""#,
                    r#""eventDescription": null, "channelName": """#,
                ),
                edited(heartbeat.clone(), |e| e.description = None),
            ),
            push(
                "motion with an unknown block",
                JSON,
                HEARTBEAT_JSON.replace("videoloss", "VMD").replace("inactive", "active").replace(
                    r#""activePostCount": 0"#,
                    r#""activePostCount": 2, "someFutureThing": [[1, 2], {"x": true}]"#,
                ),
                edited(nvr_event("VMD", EventKind::Other, true, 2), |e| e.camera.channel = Some(33)),
            ),
        ];
        for row in rows {
            assert_eq!(decode(row.content_type, &row.body), Ok(row.want), "{}", row.name);
        }
    }

    #[test]
    fn malformed_json_pushes_are_refused_naming_the_field() {
        let deep = format!("{{\"eventType\": \"VMD\", \"a\": {}1{}}}", "[".repeat(40), "]".repeat(40));
        let rows: Vec<Refusal> = vec![
            ("not JSON", JSON, b"{\"eventType\": ".to_vec(), "body", "not valid JSON"),
            ("trailing data", JSON, [ANPR_JSON, "{}"].concat().into(), "body", "not valid JSON"),
            ("an array", JSON, b"[{\"eventType\": \"VMD\"}]".to_vec(), "body", "JSON object"),
            ("a string", JSON, b"\"VMD\"".to_vec(), "body", "JSON object"),
            ("no eventType", JSON, b"{\"eventState\": \"active\"}".to_vec(), "eventType", "required"),
            ("odd eventState", JSON, ANPR_JSON.replace(r#""active""#, r#""ongoing""#).into(), "eventState", "ongoing"),
            (
                "negative channel",
                JSON,
                ANPR_JSON.replace(r#""channelID": 1"#, r#""channelID": -1"#).into(),
                "channelID",
                "-1",
            ),
            ("bad dynChannelID", JSON, HEARTBEAT_JSON.replace("33", "\"D1\"").into(), "dynChannelID", "D1"),
            ("bad dateTime", JSON, ANPR_JSON.replace("2024-05-01T08", "2024-05-01 08").into(), "dateTime", ""),
            (
                "confidence over 100",
                JSON,
                ANPR_JSON.replace(r#""confidenceLevel": 98"#, r#""confidenceLevel": 980"#).into(),
                "ANPR.confidenceLevel",
                "980",
            ),
            (
                "similarity not a number",
                JSON,
                ALARM_RESULT_JSON
                    .replace(r#""similarity": 0.92, "FDLib"#, r#""similarity": "high", "FDLib"#)
                    .replace(r#""similarity": 0.92}"#, r#""similarity": "high"}"#)
                    .into(),
                "alarmResult.faces.identify.candidate.human_data.similarity",
                "high",
            ),
            ("NUL in a value", JSON, ANPR_JSON.replace("川S12345", "川S\\u0000").into(), "ANPR.licensePlate", "NUL"),
            ("nested too deep", JSON, deep.into(), "body", "deeper than 32"),
            (
                "text over the limit",
                JSON,
                ANPR_JSON
                    .replace(r#""eventDescription": "ANPR""#, &format!(r#""eventDescription": "{}""#, "d".repeat(1025)))
                    .into(),
                "eventDescription",
                "1024 bytes",
            ),
            (
                "a key over the limit",
                JSON,
                ANPR_JSON.replace(r#""portNo""#, &format!(r#""{}""#, "k".repeat(129))).into(),
                "body",
                "key of 129 bytes",
            ),
            (
                "two JSON parts",
                MULTIPART,
                multipart_body(&[("a.json", "application/json", b"{}"), ("b.json", "application/json", b"{}")]),
                "body",
                "second XML or JSON part",
            ),
        ];
        assert_refused(rows);
    }

    #[test]
    fn json_pushes_are_held_to_the_element_limit() {
        let limits = Limits::default();
        let items = |n: usize| vec!["0"; n].join(",");
        // The root, the 6 keys and the array's items reach the limit exactly.
        let body = |n: usize| {
            format!(
                r#"{{"eventType": "VMD", "eventState": "active", "channelID": 1, "activePostCount": 1,
                     "eventDescription": "VMD alarm", "list": [{}]}}"#,
                items(n)
            )
        };
        let at_limit = body(limits.max_elements - 6);
        assert_eq!(decode(JSON, at_limit.as_bytes()).map(|e| e.event_type), Ok("VMD".to_owned()));
        let e = decode(JSON, body(limits.max_elements - 5).as_bytes()).unwrap_err();
        assert!(e.field == "body" && e.reason.contains("more than 4096 elements"), "{e}");
        let strict = Limits { max_depth: 2, ..limits };
        let e = decode_with(&strict, JSON, br#"{"eventType": "VMD", "a": {"b": {}}}"#).unwrap_err();
        assert!(e.field == "body" && e.reason.contains("deeper than 2"), "{e}");
    }
}
