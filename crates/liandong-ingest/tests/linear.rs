//! The decoders run in time and memory linear in their input: decoding an input 4 times
//! as large, in the worst shapes we know (deep XML with long names and many elements,
//! multipart pushes of many tiny parts, reports with many attributes), costs under 6
//! times the time and under 6 times the peak memory.
//!
//! Memory is the peak of bytes held on the heap while decoding, counted by a global
//! allocator (`peak_alloc`), less what was held before; time is the CPU time of the
//! decoding thread (not the wall clock, which on a loaded 2-core machine mostly counts
//! waiting for a core), the best of several runs. The tests take a
//! lock so that they run one at a time and never count each other's allocations.

use std::sync::Mutex;
use std::time::Duration;

use cpu_time::ThreadTime;

use liandong_ingest::isapi::{self, Limits};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Serialises the tests: the allocator's counters are global to the process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs of each decode; the fastest counts.
const RUNS: usize = 7;

/// What one decode cost: the fastest run and the peak heap above the starting point.
#[derive(Debug, Clone, Copy)]
struct Cost {
    time: Duration,
    peak_bytes: usize,
}

impl Cost {
    const NONE: Cost = Cost { time: Duration::MAX, peak_bytes: 0 };

    /// Runs `decode` once and keeps the faster time and the larger peak.
    fn add_run(&mut self, decode: impl FnOnce()) {
        let before = ALLOCATOR.current_usage();
        ALLOCATOR.reset_peak_usage();
        let start = ThreadTime::now();
        decode();
        let peak = ALLOCATOR.peak_usage();
        self.time = self.time.min(start.elapsed());
        self.peak_bytes = self.peak_bytes.max(peak.saturating_sub(before));
    }
}

/// Decodes `make(1)` and `make(4)` (inputs about 4 times apart in size) and asserts
/// that the larger costs under 6 times the smaller in time and in peak memory.
///
/// The runs of the two sizes alternate, so that a burst of load on the machine slows
/// both alike rather than only one of them.
fn assert_linear<T>(name: &str, make: impl Fn(usize) -> T, decode: impl Fn(&T)) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (small, large) = (make(1), make(4));
    // A first decode of each warms caches and the allocator before anything is counted.
    decode(&small);
    decode(&large);
    let (mut one, mut four) = (Cost::NONE, Cost::NONE);
    for _ in 0..RUNS {
        one.add_run(|| decode(&small));
        four.add_run(|| decode(&large));
    }
    let time_ratio = four.time.as_secs_f64() / one.time.as_secs_f64().max(1e-9);
    let memory_ratio = four.peak_bytes as f64 / one.peak_bytes.max(1) as f64;
    eprintln!(
        "{name}: 1x {:?} {} B, 4x {:?} {} B: time x{time_ratio:.2}, memory x{memory_ratio:.2}",
        one.time, one.peak_bytes, four.time, four.peak_bytes
    );
    assert!(time_ratio < 6.0, "{name}: 4x the input took {time_ratio:.1}x the time ({one:?} -> {four:?})");
    assert!(memory_ratio < 6.0, "{name}: 4x the input took {memory_ratio:.1}x the memory ({one:?} -> {four:?})");
}

/// No limit but the depth, so that the algorithm itself is measured, not the refusal of
/// an input over a limit.
const UNLIMITED: Limits = Limits {
    max_parts: usize::MAX,
    max_images: usize::MAX,
    max_elements: usize::MAX,
    max_name_bytes: usize::MAX,
    max_depth: 32,
    max_text_bytes: usize::MAX,
};

/// 31 nested elements with names of `250 * scale` characters around `2,000 * scale`
/// empty elements: the shape whose memory grew with names times elements (each element
/// used to copy its ancestors' names), so with the square of the body.
fn deep_xml(scale: usize) -> Vec<u8> {
    let names: Vec<String> = (0..30).map(|i| format!("n{i:02}{}", "x".repeat(250 * scale))).collect();
    let mut xml = String::from("<EventNotificationAlert><eventType>VMD</eventType>");
    for n in &names {
        xml.push_str(&format!("<{n}>"));
    }
    xml.push_str(&"<b/>".repeat(2_000 * scale));
    for n in names.iter().rev() {
        xml.push_str(&format!("</{n}>"));
    }
    xml.push_str("</EventNotificationAlert>");
    xml.into_bytes()
}

#[test]
fn deep_xml_with_long_names_decodes_in_linear_time_and_memory() {
    assert_linear("deep xml", deep_xml, |body| {
        let event = isapi::decode_with(&UNLIMITED, Some("application/xml"), body).expect("a valid push");
        assert_eq!(event.event_type, "VMD");
    });
}

/// One XML part and then `2,000 * scale` tiny parts with a header each, CRLF framed: the
/// shape whose split took time with the square of the parts (each header search scanned
/// to the end of the body for a bare-LF blank line).
fn tiny_parts(scale: usize) -> Vec<u8> {
    let mut body = b"--B\r\nContent-Type: application/xml\r\n\r\n\
        <EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>\r\n"
        .to_vec();
    for _ in 0..2_000 * scale {
        body.extend_from_slice(b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    }
    body.extend_from_slice(b"--B--\r\n");
    body
}

#[test]
fn multipart_pushes_of_many_tiny_parts_decode_in_linear_time_and_memory() {
    assert_linear("tiny parts", tiny_parts, |body| {
        let event = isapi::decode_with(&UNLIMITED, Some("multipart/form-data; boundary=B"), body).expect("a push");
        assert_eq!(event.event_type, "VMD");
    });
}

/// A JSON push nested 31 deep (the limit is 32) with long keys and `2,000 * scale` array items and keys at
/// the bottom: the worst shape within the limits for the JSON reader (each key a name,
/// each item an element beside its first).
fn deep_json(scale: usize) -> Vec<u8> {
    let mut json = String::from("{\"eventType\": \"VMD\", ");
    let key = "k".repeat(100);
    for _ in 0..27 {
        json.push_str(&format!("\"{key}\": {{"));
    }
    json.push_str("\"list\": [");
    json.push_str(&vec!["{\"a\": 1, \"b\": [true, null]}"; 700 * scale].join(", "));
    json.push(']');
    json.push_str(&"}".repeat(27));
    json.push('}');
    json.into_bytes()
}

#[test]
fn deep_json_with_long_keys_and_many_items_decodes_in_linear_time_and_memory() {
    assert_linear("deep json", deep_json, |body| {
        let event = isapi::decode_with(&UNLIMITED, Some("application/json"), body).expect("a valid push");
        assert_eq!(event.event_type, "VMD");
    });
}

/// A Traccar Client query with `2,500 * scale` extra parameters.
fn many_parameters(scale: usize) -> String {
    let mut query = "id=123456&timestamp=1714550400&lat=30.7361&lon=107.2048".to_owned();
    for i in 0..2_500 * scale {
        query.push_str(&format!("&p{i}=v{i}"));
    }
    query
}

#[test]
fn osmand_reports_with_many_attributes_decode_in_linear_time_and_memory() {
    assert_linear("osmand query", many_parameters, |query| {
        // Refused once past the parameter limit, so that its cost stops growing.
        let e = liandong_ingest::osmand::decode(Some(query), None, b"").unwrap_err();
        assert_eq!(e.field, "attributes");
    });
    assert_linear("osmand form", many_parameters, |form| {
        let ct = Some("application/x-www-form-urlencoded");
        let e = liandong_ingest::osmand::decode(None, ct, form.as_bytes()).unwrap_err();
        assert_eq!(e.field, "attributes");
    });
    let json = |scale: usize| {
        let extras: serde_json::Map<String, serde_json::Value> =
            (0..2_500 * scale).map(|i| (format!("p{i}"), serde_json::Value::from(i))).collect();
        serde_json::json!({"device_id": "123456", "location": {
            "timestamp": 1714550400, "coords": {"latitude": 30.7, "longitude": 107.2}, "extras": extras
        }})
        .to_string()
    };
    assert_linear("osmand json", json, |body| {
        let e = liandong_ingest::osmand::decode(None, Some("application/json"), body.as_bytes()).unwrap_err();
        assert_eq!(e.field, "extras");
    });
}

#[test]
fn json_batches_with_many_attributes_decode_in_linear_time_and_memory() {
    let batch = |scale: usize| {
        let item = |i: usize| {
            let attributes: serde_json::Map<String, serde_json::Value> =
                (0..60).map(|k| (format!("a{k}"), serde_json::Value::from(format!("v{i}")))).collect();
            serde_json::json!({"device_id": "866001", "lon": 107.2, "lat": 30.7, "time": 1714550400000_i64,
                               "attributes": attributes})
        };
        serde_json::Value::Array((0..100 * scale).map(item).collect()).to_string()
    };
    assert_linear("json batch", batch, |body| {
        let items = liandong_ingest::json::decode_batch(body.as_bytes()).expect("a batch");
        assert!(items.iter().all(Result::is_ok));
    });
}

/// The alert endpoint's body limit, the largest push the server reads.
const BODY_BYTES: usize = 8 << 20;

#[test]
fn the_worst_pushes_within_the_default_limits_hold_at_most_their_size_again() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let envelope = |inner: &str| {
        format!("<EventNotificationAlert><eventType>VMD</eventType>{inner}</EventNotificationAlert>").into_bytes()
    };
    let multipart = |parts: &[(&str, &[u8])]| {
        let mut body = Vec::new();
        for (content_type, content) in parts {
            body.extend_from_slice(format!("--B\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--B--\r\n");
        body
    };
    let xml = envelope("");
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.resize(BODY_BYTES / 8 - 200, 0x55);
    let images: Vec<(&str, &[u8])> = std::iter::once(("text/xml", xml.as_slice()))
        .chain(std::iter::repeat_n(("image/jpeg", jpeg.as_slice()), 8))
        .collect();
    let tiny: Vec<(&str, &[u8])> = std::iter::repeat_n(("text/plain", b"x".as_slice()), BODY_BYTES / 40).collect();
    let depth = "<a>".repeat(30);
    let names = format!("<{0}>1</{0}>", "n".repeat(128));
    let shapes: [(&str, Option<&str>, Vec<u8>); 6] = [
        ("empty elements", Some("application/xml"), envelope(&"<b/>".repeat(BODY_BYTES / 4))),
        ("one long text", Some("application/xml"), envelope(&format!("<x>{}</x>", "t".repeat(BODY_BYTES)))),
        (
            "deep and long names",
            Some("application/xml"),
            envelope(&format!("{depth}{}", names.repeat(BODY_BYTES / 270))),
        ),
        ("eight large images", Some("multipart/form-data; boundary=B"), multipart(&images)),
        ("tiny parts", Some("multipart/form-data; boundary=B"), multipart(&tiny)),
        ("no content type, many tags", None, envelope(&"<c></c>".repeat(BODY_BYTES / 7))),
    ];
    for (name, content_type, body) in shapes {
        let before = ALLOCATOR.current_usage();
        ALLOCATOR.reset_peak_usage();
        let outcome = isapi::decode(content_type, &body).map(|e| e.images.len());
        let peak = ALLOCATOR.peak_usage().saturating_sub(before);
        eprintln!("{name}: {} B body, peak {peak} B, {outcome:?}", body.len());
        assert!(peak < 2 * body.len(), "{name}: {peak} B held for a {} B body", body.len());
    }
}
