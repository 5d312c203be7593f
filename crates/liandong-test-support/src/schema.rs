//! Every live-feed message a test receives, checked against its JSON Schema: the
//! `$defs` entry of its `type` in `docs/schemas/feed.json` (the text the server serves at
//! `/api/v1/schemas/feed.json`). The feed clients of [`crate::feed`] check each message
//! they read, so every feed test holds the schema to what the server really sends; a
//! message of a type the schema does not define, or one that breaks its type's schema,
//! fails the test naming the field.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{json, Value};

/// One validator per message type, compiled once per test binary.
fn validators() -> &'static HashMap<String, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(liandong_server::openapi::FEED_SCHEMA).expect("docs/schemas/feed.json is JSON");
        let types = schema["properties"]["type"]["enum"].as_array().expect("the schema lists the message types");
        types
            .iter()
            .map(|t| {
                let t = t.as_str().expect("a type is a string");
                // The type's definition, with the shared `$defs` it refers to.
                let one = json!({
                    "$schema": schema["$schema"],
                    "$defs": schema["$defs"],
                    "$ref": format!("#/$defs/{t}"),
                });
                let validator = jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&one)
                    .unwrap_or_else(|e| panic!("the schema of {t} does not compile: {e}"));
                (t.to_owned(), validator)
            })
            .collect()
    })
}

/// The faults of a feed message against the schema of its `type`, one line each (empty
/// when it conforms). A missing or unknown `type` is a fault.
pub fn feed_message_faults(message: &Value) -> Vec<String> {
    let Some(kind) = message["type"].as_str() else {
        return vec!["the message has no string `type`".to_owned()];
    };
    let Some(validator) = validators().get(kind) else {
        return vec![format!("`type` {kind:?} has no schema in docs/schemas/feed.json")];
    };
    validator.iter_errors(message).map(|e| format!("{kind} at {}: {e}", e.instance_path())).collect()
}

/// Fails the test unless `message` conforms to the schema of its `type`.
pub fn check_feed_message(message: &Value) {
    let faults = feed_message_faults(message);
    assert!(
        faults.is_empty(),
        "a feed message breaks docs/schemas/feed.json:\n{}\nmessage: {message}",
        faults.join("\n")
    );
}

/// Parses a feed text message and checks it ([`check_feed_message`]).
pub fn checked_message(text: &str) -> Value {
    let v: Value = serde_json::from_str(text).expect("feed messages are JSON");
    check_feed_message(&v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_refused_for_an_unknown_type_a_missing_field_or_a_wrong_enum() {
        let ok = json!({"type": "replayed", "since": 10, "seq": 25});
        assert!(feed_message_faults(&ok).is_empty(), "{:?}", feed_message_faults(&ok));
        let cases = [
            json!({"type": "no_such_type"}),
            json!({"since": 10, "seq": 25}),
            json!({"type": "replayed", "since": 10}),
            json!({"type": "replayed", "since": "10", "seq": 25}),
            json!({"type": "alert_ack", "seq": 5, "data": {"alert_seq": 4, "rule": "sos", "priority": 9,
                "by": "op", "at": "2026-01-01T00:00:00.000Z", "note": ""}}),
            json!({"type": "alert_ack", "seq": 5, "data": {"alert_seq": 4, "rule": "sos", "priority": 1,
                "by": "op", "at": "yesterday", "note": ""}}),
        ];
        for bad in cases {
            assert!(!feed_message_faults(&bad).is_empty(), "accepted: {bad}");
        }
    }
}
