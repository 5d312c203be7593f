//! One function per fuzz target: how the target's bytes become a decoder's input, and
//! what must hold of its output. Shared by the cargo-fuzz targets in `fuzz/` (through a
//! `#[path]` module) and by `tests/fuzz_regressions.rs`, which replays the seeds and
//! every input the fuzzer once found, so that both exercise exactly the same code.

use liandong_ingest::attributes::{is_secret, MAX_ATTRIBUTES};
use liandong_ingest::isapi::Limits;
use liandong_ingest::Report;

/// A target's name (of its directories in `fuzz/`) and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 5] = [
    ("osmand", osmand),
    ("json_batch", json_batch),
    ("isapi_xml", isapi_xml),
    ("isapi_multipart", isapi_multipart),
    ("alert_json", alert_json),
];

/// What every accepted report must satisfy, whatever the input.
fn check_report(report: &Report) {
    assert!(report.attributes.len() <= MAX_ATTRIBUTES, "{} attributes", report.attributes.len());
    assert!(report.attributes.keys().all(|k| !is_secret(k)), "a secret kept: {:?}", report.attributes.keys());
    if let Some(t) = report.fix_time_ms {
        assert!(liandong_ingest::device_time(t).is_ok(), "fix time {t}");
    }
}

/// The OsmAnd decoder in its request shapes: the first byte picks the content type, the
/// bytes up to the first newline are the query, the rest is the body.
pub fn osmand(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else { return };
    let (query, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let content_type = match shape % 4 {
        0 => None,
        1 => Some("application/x-www-form-urlencoded"),
        2 => Some("application/json"),
        _ => Some("text/plain"),
    };
    if let Ok(report) = liandong_ingest::osmand::decode(Some(&query), content_type, body) {
        check_report(&report);
    }
}

/// The JSON batch decoder on the whole input.
pub fn json_batch(data: &[u8]) {
    if let Ok(items) = liandong_ingest::json::decode_batch(data) {
        items.iter().flatten().for_each(check_report);
    }
}

/// The ISAPI decoder on a raw XML body.
pub fn isapi_xml(data: &[u8]) {
    let _ = liandong_ingest::isapi::decode(Some("application/xml"), data);
}

/// The ISAPI decoder on a multipart push: the first line is the boundary, the rest the
/// body. Accepted images are within the limit and start with the JPEG marker.
pub fn isapi_multipart(data: &[u8]) {
    let Some(i) = data.iter().position(|b| *b == b'\n') else { return };
    let content_type = format!("multipart/form-data; boundary={}", String::from_utf8_lossy(&data[..i]));
    if let Ok(event) = liandong_ingest::isapi::decode(Some(&content_type), &data[i + 1..]) {
        assert!(event.images.len() <= Limits::default().max_images);
        assert!(event.images.iter().all(|jpeg| jpeg.starts_with(&[0xFF, 0xD8])));
    }
}

/// The alert JSON decoder: an accepted alert has a time a device could mean.
pub fn alert_json(data: &[u8]) {
    if let Ok(event) = liandong_ingest::alert_json::decode(data) {
        let t = event.time_ms.expect("alerts carry a time");
        assert!(liandong_ingest::device_time(t).is_ok(), "alert time {t}");
    }
}
