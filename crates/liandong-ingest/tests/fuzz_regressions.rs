//! Replays every fuzz seed and every input the fuzzer once found (a crash or a slow
//! input, kept in `fuzz/regressions/TARGET/`) through the same harness as the fuzz
//! targets, so that a decoder change that brings a found bug back fails here, on
//! stable, without cargo-fuzz.

mod fuzz_harness;

use std::path::Path;
use std::time::{Duration, Instant};

/// Longest one input may take to decode in this debug build. Every seed and regression
/// is a few KiB and decodes in well under a millisecond; a slow input found by the
/// fuzzer took seconds.
const SLOW: Duration = Duration::from_secs(2);

/// The files of `fuzz/KIND/TARGET`, sorted; none when the folder does not exist.
fn inputs(kind: &str, target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.expect("a readable directory entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn every_seed_and_found_input_decodes_without_panic_and_quickly() {
    let mut seeds = 0;
    for (target, run) in fuzz_harness::TARGETS {
        let seeds_here = inputs("seeds", target);
        assert!(!seeds_here.is_empty(), "{target} has no seeds");
        seeds += seeds_here.len();
        for path in seeds_here.iter().chain(&inputs("regressions", target)) {
            let data = std::fs::read(path).expect("a readable input");
            let start = Instant::now();
            run(&data);
            let took = start.elapsed();
            assert!(took < SLOW, "{target}: {} took {took:?}", path.display());
        }
    }
    assert!(seeds >= 15, "only {seeds} seeds");
}

#[test]
fn the_seeds_are_accepted_as_the_tests_they_come_from_are() {
    // The seeds are the decoders' test inputs, valid ones: a seed that no longer decodes
    // would start the fuzzer from the error paths only.
    let ok = |target: &str, data: &[u8]| -> bool {
        match target {
            "osmand" => {
                let (query, body) = match data[1..].iter().position(|b| *b == b'\n') {
                    Some(i) => (&data[1..i + 1], &data[i + 2..]),
                    None => (&data[1..], &[][..]),
                };
                let ct = [None, Some("application/x-www-form-urlencoded"), Some("application/json")];
                let query = String::from_utf8_lossy(query);
                liandong_ingest::osmand::decode(Some(&query), ct[usize::from(data[0] % 3)], body).is_ok()
            }
            "json_batch" => liandong_ingest::json::decode_batch(data).is_ok_and(|items| items[0].is_ok()),
            "isapi_xml" => liandong_ingest::isapi::decode(Some("application/xml"), data).is_ok(),
            "isapi_multipart" => {
                let i = data.iter().position(|b| *b == b'\n').unwrap_or(0);
                let ct = format!("multipart/form-data; boundary={}", String::from_utf8_lossy(&data[..i]));
                liandong_ingest::isapi::decode(Some(&ct), &data[i + 1..]).is_ok_and(|e| !e.images.is_empty())
            }
            "alert_json" => liandong_ingest::alert_json::decode(data).is_ok(),
            _ => unreachable!("a target without seeds check: {target}"),
        }
    };
    for (target, _) in fuzz_harness::TARGETS {
        for path in inputs("seeds", target) {
            let data = std::fs::read(&path).expect("a readable seed");
            assert!(ok(target, &data), "{target}: seed {} is refused", path.display());
        }
    }
}
