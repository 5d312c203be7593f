//! Zone rules for tagged persons (community-correction subjects): a court order may
//! forbid a person some places at some hours, e.g. "inside any school fence between
//! 22:00 and 06:00". Hours are China Standard Time (UTC+8, no daylight saving), the
//! time the order is written in, whatever the server's clock zone.

use crate::fence::{Fence, FenceSet};
use crate::stats::china_day_and_ms;
use crate::{Position, UnixMs};

/// The places a rule forbids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneTarget {
    /// every fence of this kind (fence.kind), e.g. "school"
    Kind(String),
    /// one fence by id
    Fence(String),
}

/// A place forbidden during a daily time window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRule {
    pub target: ZoneTarget,
    /// minutes after local midnight, 0..1440
    pub from_min: u16,
    pub to_min: u16,
}

/// Minutes in a day; also the end-of-day time "24:00".
pub const DAY_MIN: u16 = 1440;

/// Parses "HH:MM" (00:00..23:59; "24:00" allowed as end of day = 1440) into minutes; Err names the reason.
///
/// The hour may have one digit ("6:00"), as people write it; the minutes must have two,
/// so that "7:5" is not silently read as 07:05 or 07:50.
pub fn parse_hhmm(s: &str) -> Result<u16, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err("time is empty");
    }
    let (h, m) = s.split_once(':').ok_or("time must be HH:MM")?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 {
        return Err("hour must be one or two digits");
    }
    if !digits(m) || m.len() != 2 {
        return Err("minute must be two digits");
    }
    // At most two digits each, so these cannot overflow.
    let (h, m): (u16, u16) = (h.parse().expect("digits"), m.parse().expect("digits"));
    if m > 59 {
        return Err("minute must be 00 to 59");
    }
    match (h, m) {
        (24, 0) => Ok(DAY_MIN),
        (24.., _) => Err("hour must be 00 to 23 (or 24:00 for the end of the day)"),
        _ => Ok(h * 60 + m),
    }
}

/// Minute of the day in China Standard Time (UTC+8) of a Unix ms time (works for negative times too).
pub fn china_minute_of_day(t_ms: UnixMs) -> u16 {
    let (_, ms_of_day) = china_day_and_ms(t_ms);
    (ms_of_day / 60_000) as u16
}

impl ZoneRule {
    /// Whether the rule's time window contains `t_ms`: from <= m < to, or across midnight when from > to; from == to means all day.
    pub fn active_at(&self, t_ms: UnixMs) -> bool {
        let m = china_minute_of_day(t_ms);
        let (from, to) = (self.from_min, self.to_min);
        if from == to {
            true
        } else if from < to {
            from <= m && m < to
        } else {
            // 22:00–06:00: the evening part of today or the morning part.
            m >= from || m < to
        }
    }

    pub fn matches(&self, fence: &Fence) -> bool {
        match &self.target {
            ZoneTarget::Kind(kind) => fence.kind.as_deref() == Some(kind.as_str()),
            ZoneTarget::Fence(id) => fence.id == *id,
        }
    }
}

/// The (rule index, fence index) pairs broken by being at `p` at `t_ms`, using `FenceSet::containing`.
///
/// Ordered by rule, then fence. The fence lookup is done only if some rule is active,
/// since most fixes of most people fall outside every forbidden hour.
pub fn violations(rules: &[ZoneRule], fences: &FenceSet, p: Position, t_ms: UnixMs) -> Vec<(usize, u32)> {
    let active: Vec<(usize, &ZoneRule)> = rules.iter().enumerate().filter(|(_, r)| r.active_at(t_ms)).collect();
    if active.is_empty() {
        return Vec::new();
    }
    let inside = fences.containing(p);
    let mut out = Vec::new();
    for (ri, rule) in active {
        for &fi in &inside {
            if rule.matches(&fences.fences()[fi as usize]) {
                out.push((ri, fi));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::DetectSet;
    use crate::stats::days_from_civil;
    use geo::{polygon, MultiPolygon};

    /// Unix ms of a China Standard Time date and time.
    fn cst(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> UnixMs {
        days_from_civil(y, mo, d) * 86_400_000 + (h * 60 + mi) * 60_000 - 8 * 3_600_000
    }

    fn rule(target: ZoneTarget, from: &str, to: &str) -> ZoneRule {
        ZoneRule { target, from_min: parse_hhmm(from).unwrap(), to_min: parse_hhmm(to).unwrap() }
    }

    #[test]
    fn parse_rows() {
        let rows: [(&str, Result<u16, &str>); 14] = [
            ("00:00", Ok(0)),
            ("06:00", Ok(360)),
            ("6:00", Ok(360)),
            ("22:00", Ok(1320)),
            ("23:59", Ok(1439)),
            (" 07:05 ", Ok(425)),
            ("24:00", Ok(1440)),
            ("24:01", Err("hour must be 00 to 23 (or 24:00 for the end of the day)")),
            ("25:00", Err("hour must be 00 to 23 (or 24:00 for the end of the day)")),
            ("12:60", Err("minute must be 00 to 59")),
            ("7:5x", Err("minute must be two digits")),
            ("7:5", Err("minute must be two digits")),
            ("", Err("time is empty")),
            ("0700", Err("time must be HH:MM")),
        ];
        for (s, expected) in rows {
            assert_eq!(parse_hhmm(s), expected, "{s:?}");
        }
        for bad in ["-1:00", "+7:00", "123:00", ":30", "07:"] {
            assert!(parse_hhmm(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn minute_of_day_in_china_time() {
        // (t_ms, minute) — the Unix epoch was 08:00 in Beijing.
        let rows = [
            (0, 480),
            (-1, 479),
            (-8 * 3_600_000, 0),
            (16 * 3_600_000 - 60_000, 1439),
            (cst(2026, 11, 27, 23, 30), 1410),
            (cst(1950, 1, 1, 5, 59) + 59_999, 359),
        ];
        for (t, m) in rows {
            assert_eq!(china_minute_of_day(t), m, "{t}");
        }
    }

    #[test]
    fn time_window_rows() {
        let school = || ZoneTarget::Kind("school".into());
        let night = rule(school(), "22:00", "06:00");
        let day = rule(school(), "08:00", "17:30");
        let all_day = rule(school(), "00:00", "00:00");
        let to_midnight = rule(school(), "20:00", "24:00");
        // (name, rule, CST hour and minute, active)
        let rows = [
            ("night at 23:30", &night, (23, 30), true),
            ("night at noon", &night, (12, 0), false),
            ("night at 05:59", &night, (5, 59), true),
            ("night at 06:00", &night, (6, 0), false),
            ("night at 22:00", &night, (22, 0), true),
            ("night at 21:59", &night, (21, 59), false),
            ("night at midnight", &night, (0, 0), true),
            ("day at 08:00", &day, (8, 0), true),
            ("day at 17:30", &day, (17, 30), false),
            ("day at 23:00", &day, (23, 0), false),
            ("all day at 03:00", &all_day, (3, 0), true),
            ("all day at 15:00", &all_day, (15, 0), true),
            ("until 24:00 at 23:59", &to_midnight, (23, 59), true),
            ("until 24:00 at 00:00", &to_midnight, (0, 0), false),
        ];
        for (name, r, (h, mi), active) in rows {
            assert_eq!(r.active_at(cst(2026, 11, 27, h, mi)), active, "{name}");
        }
    }

    /// Two overlapping squares near Dazhu's county seat: a school inside a scenic area,
    /// and a second school elsewhere.
    fn fences() -> FenceSet {
        let square = |x0: f64, y0: f64, side: f64| {
            MultiPolygon::new(vec![polygon![
                (x: x0, y: y0), (x: x0 + side, y: y0), (x: x0 + side, y: y0 + side), (x: x0, y: y0 + side)
            ]])
        };
        let fence = |id: &str, kind: &str, polygon| Fence {
            id: id.into(),
            name: id.into(),
            kind: Some(kind.into()),
            dwell_s: 0,
            detect: DetectSet::default(),
            polygon,
        };
        FenceSet::new(vec![
            fence("scenic-1", "scenic", square(107.20, 30.73, 0.02)),
            fence("school-1", "school", square(107.205, 30.735, 0.005)),
            fence("school-2", "school", square(107.30, 30.80, 0.005)),
        ])
    }

    /// Expected (rule index, fence index) pairs.
    type Pairs = Vec<(usize, u32)>;

    #[test]
    fn violation_rows() {
        let set = fences();
        let rules = [
            rule(ZoneTarget::Kind("school".into()), "22:00", "06:00"),
            rule(ZoneTarget::Fence("scenic-1".into()), "00:00", "00:00"),
            rule(ZoneTarget::Kind("hospital".into()), "00:00", "00:00"),
        ];
        let p = |lon, lat| Position::new(lon, lat).unwrap();
        let (night, noon) = (cst(2026, 11, 27, 23, 30), cst(2026, 11, 27, 12, 0));
        // (name, position, time, expected (rule, fence) pairs)
        let rows: [(&str, Position, UnixMs, Pairs); 6] = [
            ("in the school inside the scenic area at night", p(107.207, 30.737), night, vec![(0, 1), (1, 0)]),
            ("same place at noon: only the all-day rule", p(107.207, 30.737), noon, vec![(1, 0)]),
            ("scenic area outside the school", p(107.215, 30.745), night, vec![(1, 0)]),
            ("the other school at night", p(107.302, 30.802), night, vec![(0, 2)]),
            ("the other school at noon", p(107.302, 30.802), noon, vec![]),
            ("nowhere forbidden", p(107.0, 30.5), night, vec![]),
        ];
        for (name, pos, t, expected) in rows {
            assert_eq!(violations(&rules, &set, pos, t), expected, "{name}");
        }
        assert!(violations(&[], &set, p(107.207, 30.737), night).is_empty());
    }

    #[test]
    fn targets_match_by_kind_or_id() {
        let set = fences();
        let school_1 = &set.fences()[1];
        let rows = [
            (ZoneTarget::Kind("school".into()), true),
            (ZoneTarget::Kind("scenic".into()), false),
            (ZoneTarget::Fence("school-1".into()), true),
            (ZoneTarget::Fence("school-2".into()), false),
            (ZoneTarget::Fence("school".into()), false),
        ];
        for (target, matches) in rows {
            let r = ZoneRule { target: target.clone(), from_min: 0, to_min: 0 };
            assert_eq!(r.matches(school_1), matches, "{target:?}");
        }
    }
}
