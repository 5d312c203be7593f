//! Fix-time parsing for every form devices send: Unix seconds or milliseconds, RFC 3339 /
//! ISO 8601, and the bare `yyyy-MM-dd HH:mm:ss` of older OsmAnd senders.

use liandong_core::UnixMs;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Numbers below this are Unix seconds, numbers at or above it Unix milliseconds.
///
/// 10¹¹ s is the year 5138 and 10¹¹ ms is March 1973, so every plausible fix time falls
/// on the right side. (Traccar's server splits at 2³¹, which would read seconds after
/// January 2038 as milliseconds.)
const SECONDS_BELOW: i64 = 100_000_000_000;

/// 9999-12-31T23:59:59.999Z: the last instant `time` represents by default. Refusing
/// later values keeps every accepted timestamp formattable.
const MAX_MS: UnixMs = 253_402_300_799_999;

/// 2000-01-01T00:00:00Z, the earliest time a device's event is accepted at.
pub const MIN_DEVICE_MS: UnixMs = 946_684_800_000;

/// 2100-01-01T00:00:00Z, the first time a device's event is no longer accepted at.
pub const MAX_DEVICE_MS: UnixMs = 4_102_444_800_000;

/// Checks that a time a device stamped its event with is one a device could mean: from
/// 2000 to 2099 (UTC). A clock that was never set says 1970 (or 2000 on some cameras'
/// first boot, which is accepted here and left to the server's window around its own
/// clock), and a far-future time such as 9999-12-31 would outrank every real fix of the
/// same unit. The error is a reason, without a field name.
pub fn device_time(ms: UnixMs) -> Result<UnixMs, String> {
    if (MIN_DEVICE_MS..MAX_DEVICE_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err("must be a time from the year 2000 to 2099 (UTC); a device clock that was never set says 1970".to_owned())
    }
}

/// Parses a fix time into Unix milliseconds (UTC).
///
/// Accepted forms:
/// - an integer or decimal number: Unix seconds when below 10¹¹, else Unix milliseconds
///   (`1714550400`, `1714550400.5`, `1714550400000`);
/// - RFC 3339 / ISO 8601 with `Z` or an offset, with or without fractional seconds
///   (`2024-05-01T08:00:00.000Z`, `2024-05-01T16:00:00.250+08:00`, `20240501T080000Z`);
/// - `yyyy-MM-dd HH:mm:ss` or `yyyy-MM-ddTHH:mm:ss` (optionally with a fraction) without
///   an offset, **read as UTC**. Traccar's server reads this form in its own time zone;
///   we cannot know the device's zone, and UTC is what Traccar Client itself means.
///
/// Times before 1970 and after the year 9999 are refused. The error is a reason,
/// without a field name: the caller knows which field it parsed. Decoders of device
/// events narrow this further with [`device_time`]; the server's query parameters
/// (`from`, `to`) keep the wide range.
pub fn parse_timestamp(s: &str) -> Result<UnixMs, String> {
    let ms = match unix_number(s) {
        Some(ms) => ms?,
        None => calendar(s)?,
    };
    if ms < 0 {
        return Err("must not be before 1970".to_owned());
    }
    if ms > MAX_MS {
        return Err("must not be after the year 9999".to_owned());
    }
    Ok(ms)
}

/// `None` when `s` is not a plain number; otherwise the number read as Unix seconds or
/// milliseconds by magnitude.
fn unix_number(s: &str) -> Option<Result<UnixMs, String>> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !is_digits(int) || !is_digits(frac) {
        return None;
    }
    let too_large = || Err("is too large for a Unix time".to_owned());
    if frac.is_empty() {
        let Ok(n) = s.parse::<i64>() else {
            return Some(too_large());
        };
        return Some(if n.unsigned_abs() < SECONDS_BELOW as u64 { Ok(n * 1000) } else { Ok(n) });
    }
    // A fraction: only seconds need sub-unit precision; parsing as f64 keeps
    // microseconds for present-day seconds, more than any fix time carries.
    let Ok(v) = s.parse::<f64>() else {
        return Some(too_large());
    };
    let ms = if v.abs() < SECONDS_BELOW as f64 { v * 1000.0 } else { v };
    if ms.abs() > MAX_MS as f64 {
        return Some(too_large());
    }
    Some(Ok(ms.round() as i64))
}

/// Calendar forms: with an offset first, then offset-less forms read as UTC.
fn calendar(s: &str) -> Result<UnixMs, String> {
    let with_offset = OffsetDateTime::parse(s, &Rfc3339).or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT)).ok();
    let dt = match with_offset {
        Some(dt) => dt,
        None => local_as_utc(s)
            .ok_or_else(|| "must be Unix seconds or milliseconds, RFC 3339, or yyyy-MM-dd HH:mm:ss".to_owned())?,
    };
    Ok((dt.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn local_as_utc(s: &str) -> Option<OffsetDateTime> {
    let space =
        format_description!(version = 2, "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]");
    let t = format_description!(version = 2, "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");
    PrimitiveDateTime::parse(s, space)
        .or_else(|_| PrimitiveDateTime::parse(s, t))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-01T08:00:00Z.
    const T0_MS: UnixMs = 1_714_550_400_000;

    #[test]
    fn every_accepted_form() {
        let rows = [
            ("unix seconds", "1714550400", T0_MS),
            ("unix seconds with fraction", "1714550400.25", T0_MS + 250),
            ("unix milliseconds", "1714550400000", T0_MS),
            ("unix milliseconds, odd", "1714550400123", T0_MS + 123),
            ("epoch", "0", 0),
            ("rfc 3339 Z with millis", "2024-05-01T08:00:00.000Z", T0_MS),
            ("rfc 3339 Z without fraction", "2024-05-01T08:00:00Z", T0_MS),
            ("rfc 3339 lowercase z", "2024-05-01t08:00:00z", T0_MS),
            ("rfc 3339 offset with fraction", "2024-05-01T16:00:00.250+08:00", T0_MS + 250),
            ("rfc 3339 negative offset", "2024-05-01T03:00:00-05:00", T0_MS),
            ("iso 8601 basic", "20240501T080000Z", T0_MS),
            ("iso 8601 offset without colon", "2024-05-01T16:00:00+0800", T0_MS),
            ("space form is utc", "2024-05-01 08:00:00", T0_MS),
            ("space form with fraction", "2024-05-01 08:00:00.5", T0_MS + 500),
            ("T form without offset is utc", "2024-05-01T08:00:00", T0_MS),
        ];
        for (name, input, want) in rows {
            assert_eq!(parse_timestamp(input), Ok(want), "{name}: {input:?}");
        }
    }

    #[test]
    fn device_times_are_from_2000_to_2099() {
        let rows = [
            ("2000-01-01T00:00:00Z", true),
            ("2099-12-31T23:59:59.999Z", true),
            ("1714550400", true),
            ("1999-12-31T23:59:59.999Z", false),
            ("2100-01-01T00:00:00Z", false),
            ("0", false),
            ("9999-12-31T23:59:59Z", false),
        ];
        for (input, ok) in rows {
            let ms = parse_timestamp(input).unwrap();
            assert_eq!(device_time(ms).is_ok(), ok, "{input}");
        }
        assert!(device_time(i64::MIN).is_err() && device_time(-9_000_000_000_000_000_000).is_err());
    }

    #[test]
    fn refusals() {
        let rows = [
            ("empty", ""),
            ("words", "yesterday"),
            ("negative", "-1714550400"),
            ("i64 min", "-9223372036854775808"),
            ("before 1970", "1969-12-31T23:59:59Z"),
            ("overflows i64", "99999999999999999999"),
            ("after 9999", "253402300800000"),
            ("month 13", "2024-13-01 08:00:00"),
            ("date only", "2024-05-01"),
            ("hex", "0x6631f680"),
            ("nan", "NaN"),
            ("trailing junk", "1714550400s"),
            ("slashes", "2024/05/01 08:00:00"),
        ];
        for (name, input) in rows {
            assert!(parse_timestamp(input).is_err(), "{name}: {input:?} -> {:?}", parse_timestamp(input));
        }
    }
}
