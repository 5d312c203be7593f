//! Field-level parsing shared by the decoders: numbers from text and JSON, and the rules
//! for optional measurements (negative means unknown, ranges are checked).

use serde_json::Value;

use crate::FieldError;

/// Parses a decimal number from text, refusing NaN and infinities.
///
/// Rust's `f64` parser accepts `NaN`, `inf` and `1e999` (which overflows to infinity);
/// none of them is a measurement, so all are refused here.
pub(crate) fn number(field: &str, text: &str) -> Result<f64, FieldError> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(FieldError::new(field, "must be a finite number")),
        Err(_) => Err(FieldError::new(field, "must be a number")),
    }
}

/// Like [`number`], but an absent or empty value is `None`: some clients send `speed=`
/// when they have no reading.
pub(crate) fn optional_number(field: &str, text: Option<&str>) -> Result<Option<f64>, FieldError> {
    match text {
        None | Some("") => Ok(None),
        Some(t) => number(field, t).map(Some),
    }
}

/// A number from JSON; `null` and absence are `None`, any other type is an error.
///
/// serde_json never produces a non-finite `f64`, so no NaN check is needed here.
pub(crate) fn json_number(field: &str, value: Option<Value>) -> Result<Option<f64>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| FieldError::new(field, "must be a number")),
        Some(_) => Err(FieldError::new(field, "must be a number")),
    }
}

/// A required number from JSON.
pub(crate) fn json_required_number(field: &str, value: Option<Value>) -> Result<f64, FieldError> {
    json_number(field, value)?.ok_or_else(|| FieldError::new(field, "is required"))
}

/// A boolean from text as devices write it: `true`/`false` or `1`/`0`.
pub(crate) fn boolean(field: &str, text: &str) -> Result<bool, FieldError> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(FieldError::new(field, "must be true or false")),
    }
}

/// Negative readings are how Android and iOS say "unknown" for speed, course and
/// accuracy, so they become `None` rather than an error.
pub(crate) fn unknown_if_negative(v: Option<f64>) -> Option<f64> {
    v.filter(|v| *v >= 0.0)
}

/// A course in degrees: negative is unknown, 360 is north again, beyond 360 is an error.
pub(crate) fn course_deg(field: &str, v: Option<f64>) -> Result<Option<f64>, FieldError> {
    match unknown_if_negative(v) {
        Some(v) if v > 360.0 => Err(FieldError::new(field, "must be between 0 and 360 degrees")),
        Some(360.0) => Ok(Some(0.0)),
        v => Ok(v),
    }
}

/// A battery percentage: negative is unknown (`-1` is the platforms' sentinel), above
/// 100 is an error.
pub(crate) fn battery_pct(field: &str, v: Option<f64>) -> Result<Option<f64>, FieldError> {
    match unknown_if_negative(v) {
        Some(v) if v > 100.0 => Err(FieldError::new(field, "must be between 0 and 100")),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_refuse_what_is_not_a_measurement() {
        let rows = [
            ("30.7361", Ok(30.7361)),
            ("-0.5", Ok(-0.5)),
            ("1e2", Ok(100.0)),
            ("NaN", Err("must be a finite number")),
            ("inf", Err("must be a finite number")),
            ("-infinity", Err("must be a finite number")),
            ("1e999", Err("must be a finite number")),
            ("", Err("must be a number")),
            ("30,7", Err("must be a number")),
            ("0x10", Err("must be a number")),
        ];
        for (text, want) in rows {
            let got = number("lat", text).map_err(|e| e.reason);
            assert_eq!(got, want.map_err(str::to_owned), "{text:?}");
        }
    }

    #[test]
    fn course_and_battery_ranges() {
        assert_eq!(course_deg("bearing", Some(-1.0)), Ok(None));
        assert_eq!(course_deg("bearing", Some(360.0)), Ok(Some(0.0)));
        assert_eq!(course_deg("bearing", Some(359.9)), Ok(Some(359.9)));
        assert_eq!(course_deg("bearing", Some(361.0)).unwrap_err().field, "bearing");
        assert_eq!(battery_pct("batt", Some(-1.0)), Ok(None));
        assert_eq!(battery_pct("batt", Some(100.0)), Ok(Some(100.0)));
        assert_eq!(battery_pct("batt", Some(100.5)).unwrap_err().field, "batt");
    }
}
