//! Every live-feed message a test receives, checked against its JSON Schema: the
//! `$defs` entry of its `type` in `docs/schemas/feed.json` (the text the server serves at
//! `/api/v1/schemas/feed.json`). The feed clients of [`crate::feed`] check each message
//! they read, so every feed test holds the schema to what the server really sends; a
//! message of a type the schema does not define, or one that breaks its type's schema,
//! fails the test naming the field. A small validator of the keywords the schema uses
//! (see [`Check`]).

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The schema, parsed once per test binary.
fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(liandong_server::openapi::FEED_SCHEMA).expect("docs/schemas/feed.json is JSON")
    })
}

/// The faults of a feed message against the schema of its `type`, one line each (empty
/// when it conforms). A missing or unknown `type` is a fault.
pub fn feed_message_faults(message: &Value) -> Vec<String> {
    let root = schema();
    let Some(kind) = message["type"].as_str() else {
        return vec!["the message has no string `type`".to_owned()];
    };
    let known = root["properties"]["type"]["enum"].as_array().is_some_and(|e| e.iter().any(|t| t == kind));
    let Some(def) = root["$defs"].get(kind).filter(|_| known) else {
        return vec![format!("`type` {kind:?} has no schema in docs/schemas/feed.json")];
    };
    let mut faults = Vec::new();
    Check { root, faults: &mut faults }.value(def, message, kind);
    faults
}

/// A validator of the part of JSON Schema 2020-12 the feed's schema uses: `$ref` to
/// `#/$defs/…`, `type`, `enum`, `const`, `required`, `properties`,
/// `additionalProperties: false`, `items`, `prefixItems`, `minItems`, `maxItems`,
/// `uniqueItems`, `minimum`, `maximum`, `pattern` (as `^[a-z][a-z0-9_]*$` only),
/// `format: date-time`, `allOf`, `anyOf`, `oneOf` and `if`/`then`. A keyword outside
/// this list fails the check, so the schema cannot grow a rule that is silently skipped.
/// (The `jsonschema` crate would do, but it turns on serde_json's `float_roundtrip` in
/// every test build, which changes how the server under test parses numbers.)
struct Check<'a> {
    root: &'a Value,
    faults: &'a mut Vec<String>,
}

impl Check<'_> {
    /// Checks `v` (at `at`) against `schema`, adding a line per fault.
    fn value(&mut self, schema: &Value, v: &Value, at: &str) {
        let Some(s) = schema.as_object() else {
            if schema == &Value::Bool(false) {
                self.faults.push(format!("{at}: not allowed"));
            }
            return;
        };
        for (keyword, arg) in s {
            self.keyword(s, keyword, arg, v, at);
        }
    }

    fn keyword(&mut self, s: &Map<String, Value>, keyword: &str, arg: &Value, v: &Value, at: &str) {
        match keyword {
            "$schema" | "$defs" | "title" | "description" | "else" | "then" => {}
            "$ref" => {
                let name = arg.as_str().and_then(|r| r.strip_prefix("#/$defs/")).expect("a local $ref");
                let def = &self.root["$defs"][name];
                assert!(!def.is_null(), "$ref to a missing definition {name}");
                self.value(def, v, at);
            }
            "type" => {
                if !type_is(arg.as_str().expect("one type name"), v) {
                    self.faults.push(format!("{at}: {v} is not of type {arg}"));
                }
            }
            "enum" if !arg.as_array().is_some_and(|e| e.contains(v)) => {
                self.faults.push(format!("{at}: {v} is not one of {arg}"));
            }
            "const" if arg != v => self.faults.push(format!("{at}: {v} is not {arg}")),
            "enum" | "const" => {}
            "required" => {
                for name in arg.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if v.is_object() && v.get(name).is_none() {
                        self.faults.push(format!("{at}: {name:?} is required"));
                    }
                }
            }
            "properties" => {
                for (name, sub) in arg.as_object().into_iter().flatten() {
                    if let Some(field) = v.as_object().and_then(|o| o.get(name)) {
                        self.value(sub, field, &format!("{at}/{name}"));
                    }
                }
            }
            "additionalProperties" => {
                let declared = s.get("properties").and_then(Value::as_object);
                for name in v.as_object().into_iter().flatten().map(|(k, _)| k) {
                    if !declared.is_some_and(|d| d.contains_key(name)) {
                        self.value(arg, &v[name], &format!("{at}/{name}"));
                    }
                }
            }
            "items" => {
                let skip = s.get("prefixItems").and_then(Value::as_array).map_or(0, Vec::len);
                for (i, item) in v.as_array().into_iter().flatten().enumerate().skip(skip) {
                    self.value(arg, item, &format!("{at}/{i}"));
                }
            }
            "prefixItems" => {
                let items = v.as_array().into_iter().flatten();
                for (i, (sub, item)) in arg.as_array().into_iter().flatten().zip(items).enumerate() {
                    self.value(sub, item, &format!("{at}/{i}"));
                }
            }
            "minItems" | "maxItems" => {
                let (n, bound) = (v.as_array().map_or(0, Vec::len) as u64, arg.as_u64().expect("a count"));
                if v.is_array() && ((keyword == "minItems" && n < bound) || (keyword == "maxItems" && n > bound)) {
                    self.faults.push(format!("{at}: {n} items breaks {keyword} {bound}"));
                }
            }
            "uniqueItems" => {
                let items = v.as_array().into_iter().flatten().collect::<Vec<_>>();
                if items.iter().enumerate().any(|(i, a)| items[..i].contains(a)) {
                    self.faults.push(format!("{at}: items repeat"));
                }
            }
            "minimum" | "maximum" => {
                let (Some(n), Some(bound)) = (v.as_f64(), arg.as_f64()) else { return };
                if (keyword == "minimum" && n < bound) || (keyword == "maximum" && n > bound) {
                    self.faults.push(format!("{at}: {n} breaks {keyword} {bound}"));
                }
            }
            "pattern" => {
                assert_eq!(arg, "^[a-z][a-z0-9_]*$", "the checker knows this one pattern");
                let Some(t) = v.as_str() else { return };
                let ok = t.starts_with(|c: char| c.is_ascii_lowercase())
                    && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !ok {
                    self.faults.push(format!("{at}: {t:?} does not match {arg}"));
                }
            }
            "format" => {
                assert_eq!(arg, "date-time", "the checker knows the date-time format");
                let Some(t) = v.as_str() else { return };
                let rfc3339 = time::format_description::well_known::Rfc3339;
                if time::OffsetDateTime::parse(t, &rfc3339).is_err() {
                    self.faults.push(format!("{at}: {t:?} is not an RFC 3339 date-time"));
                }
            }
            "allOf" => {
                for sub in arg.as_array().into_iter().flatten() {
                    self.value(sub, v, at);
                }
            }
            "anyOf" | "oneOf" => {
                let passing = arg.as_array().into_iter().flatten().filter(|sub| self.passes(sub, v)).count();
                if passing == 0 || (keyword == "oneOf" && passing > 1) {
                    self.faults.push(format!("{at}: {passing} of the {keyword} schemas match"));
                }
            }
            "if" => {
                if self.passes(arg, v) {
                    if let Some(then) = s.get("then") {
                        self.value(then, v, at);
                    }
                }
            }
            other => panic!("docs/schemas/feed.json uses {other:?}, which the checker does not know"),
        }
    }

    /// Whether `v` conforms to `schema` (the faults found on the way are dropped).
    fn passes(&mut self, schema: &Value, v: &Value) -> bool {
        let mut faults = Vec::new();
        Check { root: self.root, faults: &mut faults }.value(schema, v, "");
        faults.is_empty()
    }
}

/// Whether `v` is of the JSON Schema type `name`.
fn type_is(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("unknown type {other}"),
    }
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
    use serde_json::json;

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
        let cases = cases.into_iter().chain([
            json!({"type": "error", "field": "x", "reason": "y"}),
            json!({"type": "ack", "id": null, "plan_seq": 3}),
            json!({"type": "snapshot", "seq": 1, "part": 1, "parts": 1, "devices": [{"seq": 1}]}),
        ]);
        for bad in cases {
            assert!(!feed_message_faults(&bad).is_empty(), "accepted: {bad}");
        }
    }

    /// Every keyword of the schema file, wherever it is, is one the checker knows: a
    /// rule it would skip cannot be added unnoticed.
    #[test]
    fn the_checker_knows_every_keyword_of_the_schema() {
        fn walk(schema: &Value, out: &mut Vec<String>) {
            let Some(s) = schema.as_object() else { return };
            for (k, v) in s {
                out.push(k.clone());
                match k.as_str() {
                    "properties" | "$defs" => v.as_object().into_iter().flatten().for_each(|(_, d)| walk(d, out)),
                    "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                        v.as_array().into_iter().flatten().for_each(|d| walk(d, out))
                    }
                    "items" | "if" | "then" | "additionalProperties" => walk(v, out),
                    _ => {}
                }
            }
        }
        let mut keywords = Vec::new();
        walk(schema(), &mut keywords);
        let known = [
            "$schema",
            "$defs",
            "title",
            "description",
            "then",
            "$ref",
            "type",
            "enum",
            "const",
            "required",
            "properties",
            "additionalProperties",
            "items",
            "prefixItems",
            "minItems",
            "maxItems",
            "uniqueItems",
            "minimum",
            "maximum",
            "pattern",
            "format",
            "allOf",
            "anyOf",
            "oneOf",
            "if",
        ];
        let unknown: Vec<&String> = keywords.iter().filter(|k| !known.contains(&k.as_str())).collect();
        assert!(unknown.is_empty(), "keywords the checker does not know: {unknown:?}");
        assert!(keywords.len() > 300, "the walk reached the whole schema ({} keywords)", keywords.len());
    }
}
