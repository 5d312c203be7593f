//! Office hours of the judicial office (司法所) in China Standard Time: whether it is
//! open at a moment, when it next opens, and the moment a number of office hours after
//! a moment, so that a referral registered at night or over a public holiday waits for
//! the office and its time limit counts only the hours the office is open.
//!
//! A day is a working day when it is a make-up working day (调休, a weekend day worked
//! in exchange for a longer holiday), or else when it is not a public holiday and its
//! weekday is one the office works. The State Council publishes each year's holidays and
//! make-up days (国务院办公厅关于部分节假日安排的通知); they are data in the
//! configuration, never computed here.

use std::collections::BTreeSet;

use crate::stats::{china_day_and_ms, civil_from_days, days_from_civil, iso_weekday, CST_OFFSET_MS};
use crate::UnixMs;

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;
/// How far ahead the next opening is looked for: ten years of days. An office that
/// never opens within them (a configuration of holidays on every working day) has none.
const SEARCH_DAYS: i64 = 3660;
/// The most holidays or make-up days a configuration may list (decades of them).
const MAX_DAYS_LISTED: usize = 2000;

/// A configuration that cannot be office hours, naming the key at fault
/// (`judicial_office.hours[1]`, …) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct OfficeHoursError {
    pub key: String,
    pub reason: String,
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> OfficeHoursError {
    OfficeHoursError { key: key.into(), reason: reason.into() }
}

/// The office's hours as configured, each list as written in the configuration.
#[derive(Debug, Clone, Copy)]
pub struct OfficeHoursSpec<'a> {
    /// Key prefix for errors, e.g. `judicial_office`.
    pub section: &'a str,
    /// Opening ranges of a working day, `"08:30-12:00"`, in order and not overlapping.
    pub hours: &'a [String],
    /// Weekdays the office works: `mon` … `sun`.
    pub weekdays: &'a [String],
    /// Public holidays, `YYYY-MM-DD`.
    pub holidays: &'a [String],
    /// Make-up working days, `YYYY-MM-DD`.
    pub workdays: &'a [String],
}

/// Office hours, checked: at least one range and one weekday, ranges within a day in
/// order. Ranges are minutes since the local midnight, `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeHours {
    ranges_min: Vec<(i64, i64)>,
    /// Indexed by ISO weekday less one (Monday 0).
    weekdays: [bool; 7],
    /// Days since 1970-01-01 (China time).
    holidays: BTreeSet<i64>,
    workdays: BTreeSet<i64>,
}

const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl OfficeHours {
    /// Checks a configuration; the error names the first key at fault.
    pub fn parse(spec: &OfficeHoursSpec<'_>) -> Result<OfficeHours, OfficeHoursError> {
        let section = spec.section;
        if spec.hours.is_empty() {
            return Err(err(format!("{section}.hours"), "must name at least one range like \"08:30-12:00\""));
        }
        let mut ranges_min = Vec::with_capacity(spec.hours.len());
        for (i, h) in spec.hours.iter().enumerate() {
            let key = format!("{section}.hours[{i}]");
            let range =
                parse_range(h).ok_or_else(|| err(&key, format!("{h:?} is not a range like \"08:30-12:00\"")))?;
            if ranges_min.last().is_some_and(|&(_, end)| range.0 < end) {
                return Err(err(&key, "must start after the range before it ends"));
            }
            ranges_min.push(range);
        }
        if spec.weekdays.is_empty() {
            return Err(err(format!("{section}.weekdays"), "must name at least one weekday"));
        }
        let mut weekdays = [false; 7];
        for (i, w) in spec.weekdays.iter().enumerate() {
            let Some(d) = WEEKDAY_NAMES.iter().position(|n| n.eq_ignore_ascii_case(w.trim())) else {
                return Err(err(format!("{section}.weekdays[{i}]"), format!("{w:?} is not one of mon … sun")));
            };
            weekdays[d] = true;
        }
        let holidays = parse_days(&format!("{section}.holidays"), spec.holidays)?;
        let workdays = parse_days(&format!("{section}.workdays"), spec.workdays)?;
        if let Some(d) = holidays.intersection(&workdays).next() {
            let (y, m, dd) = civil_from_days(*d);
            return Err(err(format!("{section}.workdays"), format!("{y:04}-{m:02}-{dd:02} is also a holiday")));
        }
        Ok(OfficeHours { ranges_min, weekdays, holidays, workdays })
    }

    /// The last day (days since 1970-01-01) of the latest year whose holidays or make-up
    /// working days the configuration lists: after it, every weekday the office works
    /// counts as a working day, public holidays included, until next year's are added.
    /// None when it lists none.
    pub fn calendar_ends(&self) -> Option<i64> {
        let last = self.holidays.last().into_iter().chain(self.workdays.last()).max()?;
        let (year, _, _) = civil_from_days(*last);
        Some(days_from_civil(year, 12, 31))
    }

    /// Days from the China-time day of `t_ms` to [`OfficeHours::calendar_ends`]: 0 on its
    /// last day, negative after it.
    pub fn calendar_days_left(&self, t_ms: UnixMs) -> Option<i64> {
        Some(self.calendar_ends()? - china_day_and_ms(t_ms).0)
    }

    /// Whether the office works on the China-time day `days` since 1970-01-01.
    pub fn is_working_day(&self, days: i64) -> bool {
        if self.workdays.contains(&days) {
            return true;
        }
        !self.holidays.contains(&days) && self.weekdays[(iso_weekday(days) - 1) as usize]
    }

    /// Whether the office is open at `t_ms` (a range includes its opening minute and
    /// excludes its closing one).
    pub fn is_open(&self, t_ms: UnixMs) -> bool {
        let (days, ms) = china_day_and_ms(t_ms);
        self.is_working_day(days) && self.ranges_min.iter().any(|&(a, b)| ms >= a * MINUTE_MS && ms < b * MINUTE_MS)
    }

    /// The open period `[start, end)` (unix ms) that `t_ms` falls in, if the office is
    /// open then: a rule that acts once per period (one no-parking alert per plate and
    /// window) keys on its start.
    pub fn period_at(&self, t_ms: UnixMs) -> Option<(UnixMs, UnixMs)> {
        let (days, _) = china_day_and_ms(t_ms);
        self.periods(days).find(|&(start, end)| start <= t_ms && t_ms < end)
    }

    /// The open periods `[start, end)` of the day `days`, in unix ms; none on a day off.
    fn periods(&self, days: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        let midnight = days * DAY_MS - CST_OFFSET_MS;
        let working = self.is_working_day(days);
        self.ranges_min
            .iter()
            .filter(move |_| working)
            .map(move |&(a, b)| (midnight + a * MINUTE_MS, midnight + b * MINUTE_MS))
    }

    /// The first moment at or after `t_ms` when the office is open: `t_ms` itself when
    /// it is open then. None when it does not open within ten years.
    pub fn open_at_or_after(&self, t_ms: UnixMs) -> Option<UnixMs> {
        let (first, _) = china_day_and_ms(t_ms);
        (first..first + SEARCH_DAYS)
            .flat_map(|d| self.periods(d))
            .find(|&(_, end)| t_ms < end)
            .map(|(start, _)| start.max(t_ms))
    }

    /// The moment at which `office_ms` of open time has passed since `t_ms`, counting
    /// only the office's hours; an amount used up exactly at closing time ends at the
    /// closing time, not at the next opening. None when the office does not stay open
    /// that long within ten years.
    pub fn after_office_ms(&self, t_ms: UnixMs, office_ms: i64) -> Option<UnixMs> {
        let (first, _) = china_day_and_ms(t_ms);
        let mut left = office_ms.max(0);
        for (start, end) in (first..first + SEARCH_DAYS).flat_map(|d| self.periods(d)) {
            if end <= t_ms {
                continue;
            }
            let from = start.max(t_ms);
            if left <= end - from {
                return Some(from + left);
            }
            left -= end - from;
        }
        None
    }
}

/// `"08:30-12:00"` as minutes since midnight, start before end, within the day (`24:00`
/// may close a range).
fn parse_range(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.trim().split_once('-')?;
    let (a, b) = (parse_hhmm(a)?, parse_hhmm(b)?);
    (a < b).then_some((a, b))
}

fn parse_hhmm(s: &str) -> Option<i64> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

fn parse_days(key: &str, days: &[String]) -> Result<BTreeSet<i64>, OfficeHoursError> {
    if days.len() > MAX_DAYS_LISTED {
        return Err(err(key, format!("at most {MAX_DAYS_LISTED} days")));
    }
    days.iter()
        .enumerate()
        .map(|(i, d)| {
            parse_date(d).ok_or_else(|| err(format!("{key}[{i}]"), format!("{d:?} is not a date YYYY-MM-DD")))
        })
        .collect()
}

/// `YYYY-MM-DD` as days since 1970-01-01; a day that does not exist (02-30) is refused.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ms of a China-time moment.
    fn cst(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * DAY_MS - CST_OFFSET_MS + h * 3_600_000 + mi * MINUTE_MS
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The judicial office's usual hours with the 2026 National Day holiday and its
    /// make-up working days (State Council notice for 2026: 1–7 October off, Sunday
    /// 20 September and Saturday 10 October worked).
    fn office() -> OfficeHours {
        let hours = strings(&["08:30-12:00", "14:00-17:30"]);
        let weekdays = strings(&["mon", "tue", "wed", "thu", "fri"]);
        let holidays = strings(&[
            "2026-10-01",
            "2026-10-02",
            "2026-10-03",
            "2026-10-04",
            "2026-10-05",
            "2026-10-06",
            "2026-10-07",
        ]);
        let workdays = strings(&["2026-09-20", "2026-10-10"]);
        let spec = OfficeHoursSpec {
            section: "judicial_office",
            hours: &hours,
            weekdays: &weekdays,
            holidays: &holidays,
            workdays: &workdays,
        };
        OfficeHours::parse(&spec).expect("the office's hours are valid")
    }

    /// The calendar ends with the last year it lists (a make-up day in January of the
    /// next year counts: that year is listed), counted in China-time days, 0 on its last
    /// day and negative after; a configuration that lists no day has none.
    #[test]
    fn the_calendar_ends_with_the_last_year_it_lists() {
        let o = office();
        let end = days_from_civil(2026, 12, 31);
        assert_eq!(o.calendar_ends(), Some(end));
        let rows = [
            ("a month before, in China", cst(2026, 12, 1, 10, 0), 30),
            ("its last day, early", cst(2026, 12, 31, 0, 0), 0),
            // 2026-12-31 16:30 UTC is already 1 January in China.
            ("New Year's Day in China, still 31 December in UTC", cst(2027, 1, 1, 0, 30), -1),
            ("weeks after", cst(2027, 1, 20, 9, 0), -20),
        ];
        for (what, at, left) in rows {
            assert_eq!(o.calendar_days_left(at), Some(left), "{what}");
        }
        let (hours, weekdays) = (strings(&["08:30-12:00"]), strings(&["mon"]));
        let january = strings(&["2027-01-04"]);
        let spec = |holidays: &[String], workdays: &[String]| {
            let spec = OfficeHoursSpec { section: "s", hours: &hours, weekdays: &weekdays, holidays, workdays };
            OfficeHours::parse(&spec).unwrap()
        };
        assert_eq!(spec(&strings(&["2026-10-01"]), &january).calendar_ends(), Some(days_from_civil(2027, 12, 31)));
        assert_eq!(spec(&[], &[]).calendar_ends(), None);
        assert_eq!(spec(&[], &[]).calendar_days_left(cst(2026, 12, 1, 10, 0)), None);
    }

    #[test]
    fn a_referral_waits_for_the_next_opening_and_is_open_when_the_office_is() {
        let o = office();
        // (what, at, open then, next opening at or after)
        let rows = [
            ("a weekday evening", cst(2026, 11, 24, 19, 0), false, cst(2026, 11, 25, 8, 30)),
            ("a Friday night across the weekend", cst(2026, 11, 27, 19, 0), false, cst(2026, 11, 30, 8, 30)),
            ("Saturday noon", cst(2026, 11, 28, 12, 0), false, cst(2026, 11, 30, 8, 30)),
            ("the eve of National Day", cst(2026, 9, 30, 18, 0), false, cst(2026, 10, 8, 8, 30)),
            ("inside the holiday, a Monday", cst(2026, 10, 5, 10, 0), false, cst(2026, 10, 8, 8, 30)),
            ("the make-up Saturday after it", cst(2026, 10, 10, 9, 0), true, cst(2026, 10, 10, 9, 0)),
            ("the make-up Sunday before it", cst(2026, 9, 20, 15, 0), true, cst(2026, 9, 20, 15, 0)),
            ("a lunch break", cst(2026, 11, 24, 12, 30), false, cst(2026, 11, 24, 14, 0)),
            ("exactly at closing for lunch", cst(2026, 11, 24, 12, 0), false, cst(2026, 11, 24, 14, 0)),
            ("exactly at opening", cst(2026, 11, 24, 8, 30), true, cst(2026, 11, 24, 8, 30)),
            ("a minute before opening", cst(2026, 11, 24, 8, 29), false, cst(2026, 11, 24, 8, 30)),
            ("a weekday morning", cst(2026, 11, 24, 10, 15), true, cst(2026, 11, 24, 10, 15)),
        ];
        for (what, at, open, next) in rows {
            assert_eq!(o.is_open(at), open, "{what}: open");
            assert_eq!(o.open_at_or_after(at), Some(next), "{what}: next opening");
        }
    }

    #[test]
    fn office_hours_after_a_moment_count_only_the_hours_the_office_is_open() {
        let o = office();
        let h = 3_600_000;
        // (what, from, office hours, the moment they have passed)
        let rows = [
            ("within one morning", cst(2026, 11, 24, 8, 30), h, cst(2026, 11, 24, 9, 30)),
            ("over the lunch break", cst(2026, 11, 24, 11, 0), 2 * h, cst(2026, 11, 24, 15, 0)),
            ("a whole morning ends at its closing", cst(2026, 11, 24, 8, 30), 7 * h / 2, cst(2026, 11, 24, 12, 0)),
            ("from a Friday evening", cst(2026, 11, 27, 19, 0), 4 * h, cst(2026, 11, 30, 14, 30)),
            ("from Friday afternoon over the weekend", cst(2026, 11, 27, 17, 0), h, cst(2026, 11, 30, 9, 0)),
            ("over National Day", cst(2026, 9, 30, 17, 0), 4 * h, cst(2026, 10, 8, 12, 0)),
            ("no time at all", cst(2026, 11, 24, 19, 0), 0, cst(2026, 11, 25, 8, 30)),
        ];
        for (what, from, office_ms, due) in rows {
            assert_eq!(o.after_office_ms(from, office_ms), Some(due), "{what}");
        }
    }

    #[test]
    fn a_bad_configuration_is_refused_naming_the_key() {
        let ok_hours = strings(&["08:30-12:00"]);
        let ok_days = strings(&["mon"]);
        let none: Vec<String> = Vec::new();
        let bad_range = strings(&["08:30-12:00", "11:00-17:30"]);
        let backwards = strings(&["12:00-08:30"]);
        let bad_day = strings(&["monday"]);
        let bad_date = strings(&["2026-10-01", "2026-02-30"]);
        let both = strings(&["2026-10-01"]);
        // (hours, weekdays, holidays, workdays, the key named)
        type Row<'a> = (&'a [String], &'a [String], &'a [String], &'a [String], &'a str);
        let rows: [Row<'_>; 7] = [
            (&none, &ok_days, &none, &none, "judicial_office.hours"),
            (&bad_range, &ok_days, &none, &none, "judicial_office.hours[1]"),
            (&backwards, &ok_days, &none, &none, "judicial_office.hours[0]"),
            (&ok_hours, &none, &none, &none, "judicial_office.weekdays"),
            (&ok_hours, &bad_day, &none, &none, "judicial_office.weekdays[0]"),
            (&ok_hours, &ok_days, &bad_date, &none, "judicial_office.holidays[1]"),
            (&ok_hours, &ok_days, &both, &both, "judicial_office.workdays"),
        ];
        for (hours, weekdays, holidays, workdays, key) in rows {
            let spec = OfficeHoursSpec { section: "judicial_office", hours, weekdays, holidays, workdays };
            let e = OfficeHours::parse(&spec).expect_err(key);
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn an_office_that_never_opens_has_no_next_opening() {
        let hours = strings(&["08:30-12:00"]);
        let weekdays = strings(&["mon"]);
        let monday = days_from_civil(2026, 11, 23);
        let holidays: Vec<String> = (0..(SEARCH_DAYS / 7 + 2))
            .map(|w| {
                let (y, m, d) = civil_from_days(monday + 7 * w);
                format!("{y:04}-{m:02}-{d:02}")
            })
            .collect();
        let spec =
            OfficeHoursSpec { section: "s", hours: &hours, weekdays: &weekdays, holidays: &holidays, workdays: &[] };
        let o = OfficeHours::parse(&spec).expect("valid");
        assert_eq!(o.open_at_or_after(cst(2026, 11, 23, 9, 0)), None);
    }
}
