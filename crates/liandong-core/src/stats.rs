//! Statistics helpers for reports: summaries of durations (response times, dwell
//! times) and the calendar buckets, in China Standard Time, that counts are grouped by.
//!
//! The civil calendar is computed here rather than taken from a date crate: the core
//! has no such dependency and needs only three small functions. They are Howard
//! Hinnant's `days_from_civil`, `civil_from_days` and `weekday_from_days` from
//! "chrono-Compatible Low-Level Date Algorithms"
//! (<https://howardhinnant.github.io/date_algorithms.html>), exact for the proleptic
//! Gregorian calendar over the whole `i64` range of days used here.

use crate::UnixMs;

/// Offset of China Standard Time from UTC: +8 h all year, China has no daylight saving.
pub const CST_OFFSET_MS: i64 = 8 * 3_600_000;

const DAY_MS: i64 = 86_400_000;

/// Summary of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationSummary {
    pub count: usize,
    pub mean_s: f64,
    pub median_s: f64,
    pub p90_s: f64,
    pub max_s: f64,
}

/// Summary of durations in seconds (NaN and negative values ignored); None if none remain. Percentiles by nearest rank.
///
/// Infinite values are ignored too: one would make the mean meaningless. The median by
/// nearest rank is a value of the data (the lower middle one for an even count), never
/// an average of two.
pub fn summarize(durations_s: &[f64]) -> Option<DurationSummary> {
    let mut v: Vec<f64> = durations_s.iter().copied().filter(|d| d.is_finite() && *d >= 0.0).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let count = v.len();
    let mean_s = v.iter().sum::<f64>() / count as f64;
    Some(DurationSummary {
        count,
        mean_s,
        median_s: nearest_rank(&v, 50),
        p90_s: nearest_rank(&v, 90),
        max_s: v[count - 1],
    })
}

/// The `pct`th percentile of sorted, non-empty `v` by the nearest-rank method: the value
/// of rank ⌈pct/100 × n⌉ (1-based). Integer arithmetic, so that 90 % of 10 is rank 9
/// and not 9.000000000000002 rounded up to 10.
pub fn nearest_rank(sorted: &[f64], pct: u8) -> f64 {
    let n = sorted.len();
    let rank = (usize::from(pct.min(100)) * n).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// A period to group counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::Hour, Period::Day, Period::Week, Period::Month];

    /// Parses "hour", "day", "week" or "month".
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// The bucket label of `t_ms` in China Standard Time: "2026-11-27T05" (hour), "2026-11-27" (day), ISO week "2026-W48" (week), "2026-11" (month).
///
/// Labels of one period sort in time order (for years 0 to 9999).
pub fn bucket(t_ms: UnixMs, period: Period) -> String {
    let (days, ms_of_day) = china_day_and_ms(t_ms);
    match period {
        Period::Hour => {
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}T{:02}", ms_of_day / 3_600_000)
        }
        Period::Day => {
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}")
        }
        Period::Week => {
            let (y, w) = iso_week(days);
            format!("{y:04}-W{w:02}")
        }
        Period::Month => {
            let (y, m, _) = civil_from_days(days);
            format!("{y:04}-{m:02}")
        }
    }
}

/// The local date of `t_ms` in China Standard Time as days since 1970-01-01, and the
/// milliseconds since that local midnight (0..86 400 000). Works for any `i64`: the
/// offset is added after splitting into days, so it cannot overflow.
pub fn china_day_and_ms(t_ms: UnixMs) -> (i64, i64) {
    let days = t_ms.div_euclid(DAY_MS);
    let ms = t_ms.rem_euclid(DAY_MS) + CST_OFFSET_MS;
    if ms >= DAY_MS {
        (days + 1, ms - DAY_MS)
    } else {
        (days, ms)
    }
}

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d` (Hinnant's
/// `days_from_civil`). `m` is 1..=12, `d` 1..=31.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    // Count years from 1 March, so that the leap day is the last day of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month 1..=12, day 1..=31) of `days` since
/// 1970-01-01 (Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01, the start of a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March is 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// ISO 8601 weekday of `days` since 1970-01-01: 1 is Monday, 7 Sunday (after
/// Hinnant's `weekday_from_days`; 1970-01-01 was a Thursday).
pub fn iso_weekday(days: i64) -> u32 {
    ((days + 3).rem_euclid(7) + 1) as u32
}

/// ISO 8601 week-numbering year and week (1..=53) of `days` since 1970-01-01.
///
/// A week belongs to the year that holds its Thursday, so the first days of January
/// can be in the last week of the year before, and the last days of December in week
/// 1 of the next.
pub fn iso_week(days: i64) -> (i64, u32) {
    let thursday = days - i64::from(iso_weekday(days)) + 4;
    let (year, _, _) = civil_from_days(thursday);
    let day_of_year = thursday - days_from_civil(year, 1, 1); // 0-based
    (year, (day_of_year / 7 + 1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a UTC date and hour.
    fn utc(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + h * 3_600_000
    }

    #[test]
    fn civil_dates_round_trip_through_known_days() {
        // (date, days since 1970-01-01, ISO weekday)
        let rows = [
            ((1970, 1, 1), 0, 4),
            ((1969, 12, 31), -1, 3),
            ((2000, 2, 29), 11_016, 2),
            ((2000, 3, 1), 11_017, 3),
            ((1900, 3, 1), -25_508, 4),
            ((2026, 11, 27), 20_784, 5),
            ((1600, 1, 1), -135_140, 6),
        ];
        for ((y, m, d), days, wd) in rows {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
            assert_eq!(iso_weekday(days), wd, "{y}-{m}-{d}");
        }
        // Every day of four centuries round-trips and follows the day before it.
        let mut prev = civil_from_days(-146_097 * 2);
        for days in -146_097 * 2 + 1..146_097 * 2 {
            let date = civil_from_days(days);
            assert_eq!(days_from_civil(date.0, date.1, date.2), days);
            assert!(date > prev, "{date:?} after {prev:?}");
            prev = date;
        }
    }

    #[test]
    fn iso_weeks_of_known_dates() {
        // (date, ISO year, week)
        let rows = [
            ((2026, 11, 27), 2026, 48),
            ((2020, 12, 31), 2020, 53),
            ((2021, 1, 3), 2020, 53),
            ((2021, 1, 4), 2021, 1),
            ((2024, 12, 30), 2025, 1),
            ((2026, 1, 1), 2026, 1),
            ((2027, 1, 1), 2026, 53),
            ((2008, 12, 29), 2009, 1),
        ];
        for ((y, m, d), iso_y, w) in rows {
            assert_eq!(iso_week(days_from_civil(y, m, d)), (iso_y, w), "{y}-{m}-{d}");
        }
    }

    #[test]
    fn bucket_labels_are_in_china_time() {
        // (UTC date and hour, period, label)
        let rows = [
            ((2026, 11, 27, 20), Period::Day, "2026-11-28"),
            ((2026, 11, 27, 15), Period::Day, "2026-11-27"),
            ((2026, 11, 27, 16), Period::Day, "2026-11-28"),
            ((2026, 11, 26, 21), Period::Hour, "2026-11-27T05"),
            ((2026, 11, 27, 3), Period::Week, "2026-W48"),
            ((2026, 11, 30, 15), Period::Week, "2026-W49"),
            ((2026, 11, 30, 20), Period::Month, "2026-12"),
            ((2020, 12, 31, 17), Period::Week, "2020-W53"),
            ((2021, 1, 3, 16), Period::Week, "2021-W01"),
            ((1969, 12, 31, 16), Period::Hour, "1970-01-01T00"),
            ((1969, 12, 31, 15), Period::Hour, "1969-12-31T23"),
        ];
        for ((y, m, d, h), period, label) in rows {
            assert_eq!(bucket(utc(y, m, d, h), period), label, "{y}-{m}-{d}T{h}Z {}", period.as_str());
        }
    }

    #[test]
    fn china_day_split_handles_the_ends_of_i64() {
        let rows = [
            (0, (0, 8 * 3_600_000)),
            (16 * 3_600_000, (1, 0)),
            (-1, (0, 8 * 3_600_000 - 1)),
            (-8 * 3_600_000 - 1, (-1, DAY_MS - 1)),
        ];
        for (t, expected) in rows {
            assert_eq!(china_day_and_ms(t), expected, "{t}");
        }
        for t in [i64::MIN, i64::MAX] {
            let (_, ms) = china_day_and_ms(t);
            assert!((0..DAY_MS).contains(&ms));
            assert!(!bucket(t, Period::Week).is_empty());
        }
    }

    #[test]
    fn period_names_round_trip() {
        for p in Period::ALL {
            assert_eq!(Period::parse(p.as_str()), Some(p));
        }
        assert_eq!(Period::parse("year"), None);
        assert_eq!(Period::parse(""), None);
    }

    /// (input, count, mean, median, p90, max)
    type SummaryRow = (&'static [f64], usize, f64, f64, f64, f64);

    #[test]
    fn summaries_by_nearest_rank() {
        let rows: [SummaryRow; 6] = [
            (&[5.0], 1, 5.0, 5.0, 5.0, 5.0),
            (&[4.0, 1.0, 3.0, 2.0], 4, 2.5, 2.0, 4.0, 4.0),
            (&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 10, 5.5, 5.0, 9.0, 10.0),
            (&[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0], 11, 60.0, 60.0, 100.0, 110.0),
            (&[3.0, f64::NAN, -1.0, 1.0, f64::INFINITY, 2.0], 3, 2.0, 2.0, 3.0, 3.0),
            (&[0.0, 0.0, 100.0], 3, 100.0 / 3.0, 0.0, 100.0, 100.0),
        ];
        for (input, count, mean, median, p90, max) in rows {
            let got = summarize(input).unwrap();
            let expected = DurationSummary { count, mean_s: mean, median_s: median, p90_s: p90, max_s: max };
            assert_eq!(got, expected, "{input:?}");
        }
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN, -3.0]), None);
    }
}
