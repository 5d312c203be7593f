//! Fuzzes the alert JSON decoder.
//!
//! The harness, shared with the ingest crate's regression test, says how the bytes
//! are read and what must hold of the result.
#![no_main]

// Each target uses one of the harness's functions.
#[allow(dead_code)]
#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::alert_json(data));
