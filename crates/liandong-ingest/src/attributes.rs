//! Bounds on a report's free-form attributes, and the secrets never kept among them.
//!
//! A report's attributes are stored with it, published on the live feed and replayed,
//! so one report's worth of them is paid for many times over. Traccar Client sends a
//! handful of short parameters beside the fix (`hdop`, `valid`, `charge`, `event`,
//! `is_moving`, `odometer`, `uuid`, `activity`, a few `coords` accuracies: some 15 keys of
//! at most 20 characters, with values under 40 bytes and under 600 bytes in all), so the
//! limits below sit an order of magnitude above that and three orders below what an
//! attacker with one device key could otherwise make every feed client hold.

use serde_json::{Map, Value};

use crate::FieldError;

/// Most attributes one report may carry.
pub const MAX_ATTRIBUTES: usize = 64;

/// Longest attribute name, in bytes of UTF-8.
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 64;

/// Longest attribute value, in bytes: the UTF-8 of a string, the JSON text of any other
/// value (a number, a boolean, an object such as Traccar Client's `extras`).
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;

/// Most bytes of all attributes together, names and values counted as above.
pub const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;

/// Names that carry credentials (compared ASCII case-insensitively). A device sends its
/// key as `key=` (read into [`crate::Report::key`]); a `token`, `password` or a `Key`
/// in another case is never a measurement, and kept as an attribute it would be stored
/// and published on the live feed to every operator.
pub const SECRET_NAMES: [&str; 3] = ["key", "token", "password"];

/// Whether `name` is one of [`SECRET_NAMES`], in any case.
pub fn is_secret(name: &str) -> bool {
    SECRET_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Drops every secret-named entry, at any depth, then checks the attributes against the
/// limits above. Errors name `prefix` followed by the attribute (`extras`,
/// `attributes.note`), or `prefix` alone (`attributes` when empty) for the count and
/// total.
pub(crate) fn bound(prefix: &str, attributes: &mut Map<String, Value>) -> Result<(), FieldError> {
    drop_secrets(attributes);
    let whole = if prefix.is_empty() { "attributes" } else { prefix };
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(FieldError::new(
            whole,
            format!("has {} attributes; at most {MAX_ATTRIBUTES} are accepted per report", attributes.len()),
        ));
    }
    let mut total = 0usize;
    for (name, value) in attributes.iter() {
        let field = || {
            let shown = clip(name, MAX_ATTRIBUTE_KEY_BYTES);
            if prefix.is_empty() {
                shown
            } else {
                format!("{prefix}.{shown}")
            }
        };
        if name.len() > MAX_ATTRIBUTE_KEY_BYTES {
            return Err(FieldError::new(
                field(),
                format!("is an attribute name of {} bytes; at most {MAX_ATTRIBUTE_KEY_BYTES} are accepted", name.len()),
            ));
        }
        let value_bytes = value_bytes(value);
        if value_bytes > MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(FieldError::new(
                field(),
                format!(
                    "is an attribute value of {value_bytes} bytes; at most {MAX_ATTRIBUTE_VALUE_BYTES} are accepted"
                ),
            ));
        }
        total += name.len() + value_bytes;
    }
    if total > MAX_ATTRIBUTES_BYTES {
        return Err(FieldError::new(
            whole,
            format!("hold {total} bytes of names and values; at most {MAX_ATTRIBUTES_BYTES} are accepted per report"),
        ));
    }
    Ok(())
}

/// Removes secret-named keys from `map` and from every object nested in it.
fn drop_secrets(map: &mut Map<String, Value>) {
    map.retain(|name, _| !is_secret(name));
    for value in map.values_mut() {
        drop_nested_secrets(value);
    }
}

fn drop_nested_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => drop_secrets(map),
        Value::Array(items) => items.iter_mut().for_each(drop_nested_secrets),
        _ => {}
    }
}

/// The size a value is counted at: a string's UTF-8 bytes, else its JSON text's length,
/// counted without building the text.
fn value_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        other => {
            let mut counter = Counter(0);
            // Writing to a counter cannot fail, and serialising a `Value` cannot either.
            let _ = serde_json::to_writer(&mut counter, other);
            counter.0
        }
    }
}

/// An `io::Write` that only counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `name` cut to at most `max` bytes at a character boundary, with `…` when cut, so that
/// an error never echoes a huge name.
fn clip(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let mut end = max;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("attributes are an object"),
        }
    }

    #[test]
    fn secrets_are_dropped_in_any_case_and_at_any_depth() {
        let mut a = map(json!({
            "Token": "t", "PASSWORD": "p", "key": "k", "keys": 1,
            "extras": {"token": "t", "shift": "night", "list": [{"Key": "k", "n": 1}]}
        }));
        bound("", &mut a).unwrap();
        assert_eq!(Value::Object(a), json!({"keys": 1, "extras": {"shift": "night", "list": [{"n": 1}]}}));
    }

    #[test]
    fn each_limit_is_reached_and_then_refused_naming_the_attribute() {
        let at_limits = |n: usize| (0..n).map(|i| (format!("a{i}"), Value::from(i))).collect::<Map<_, _>>();
        assert!(bound("", &mut at_limits(MAX_ATTRIBUTES)).is_ok());
        let e = bound("attributes", &mut at_limits(MAX_ATTRIBUTES + 1)).unwrap_err();
        assert_eq!(e.field, "attributes");
        assert!(e.reason.contains("at most 64"), "{e}");

        let name = "k".repeat(MAX_ATTRIBUTE_KEY_BYTES);
        assert!(bound("", &mut map(json!({ name.clone(): 1 }))).is_ok());
        let e = bound("", &mut map(json!({ format!("{name}ü"): 1 }))).unwrap_err();
        assert_eq!(e.field, format!("{name}…"));
        assert!(e.reason.contains("name of 66 bytes"), "{e}");

        let value = "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES);
        assert!(bound("", &mut map(json!({ "note": value.clone() }))).is_ok());
        let e = bound("attributes", &mut map(json!({ "note": format!("{value}v") }))).unwrap_err();
        assert_eq!((e.field.as_str(), e.reason.contains("value of 1025 bytes")), ("attributes.note", true));
        // An object is counted by its JSON text: `{"s":"…"}` is 8 bytes more than the text.
        let e = bound("", &mut map(json!({ "extras": {"s": value} }))).unwrap_err();
        assert_eq!((e.field.as_str(), e.reason.contains("value of 1032 bytes")), ("extras", true));

        let big = |n: usize| (0..n).map(|i| (format!("a{i:02}"), Value::from("v".repeat(1000)))).collect::<Map<_, _>>();
        assert!(bound("", &mut big(8)).is_ok());
        let e = bound("", &mut big(9)).unwrap_err();
        assert_eq!(e.field, "attributes");
        assert!(e.reason.contains("9027 bytes"), "{e}");
    }
}
