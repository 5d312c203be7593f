//! The GPS jump filter: a fix that implies an impossible speed from the last trusted
//! fix, or that reports a poor accuracy, is kept but marked, and does not move the unit.

use serde::{Deserialize, Serialize};

use crate::{Position, UnixMs};

/// Bits of a report's `flags`.
pub mod flags {
    /// Implied speed from the last trusted fix is above the configured maximum.
    pub const JUMP: u32 = 1;
    /// Reported accuracy is worse than the configured maximum.
    pub const POOR_ACCURACY: u32 = 2;
    /// The fix is older than the last trusted fix of the device.
    pub const OUT_OF_ORDER: u32 = 4;
    /// The fix is outside the county boundary (informational; it still moves the unit).
    pub const OUTSIDE_COUNTY: u32 = 8;
    /// The fix is dated further ahead of the server's clock than
    /// [`JumpFilter::clock_skew_s`](super::JumpFilter): its time is wrong (a phone whose
    /// clock runs fast), so it must not become the unit's last fix, or every real fix
    /// after it would look out of order.
    pub const AHEAD_OF_CLOCK: u32 = 16;
    /// The device says the fix is not from its own receiver (Android's mock location,
    /// Traccar Client's `mock=true`): an app can put the phone anywhere, so the fix is
    /// doubtful and moves nothing.
    pub const MOCK: u32 = 32;
    /// Bits that keep a fix from moving the unit.
    pub const UNTRUSTED: u32 = JUMP | POOR_ACCURACY | OUT_OF_ORDER | AHEAD_OF_CLOCK | MOCK;

    pub fn names(f: u32) -> Vec<&'static str> {
        [
            (JUMP, "jump"),
            (POOR_ACCURACY, "poor_accuracy"),
            (OUT_OF_ORDER, "out_of_order"),
            (OUTSIDE_COUNTY, "outside_county"),
            (AHEAD_OF_CLOCK, "ahead_of_clock"),
            (MOCK, "mock"),
        ]
        .into_iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JumpFilter {
    /// Fastest plausible movement, m/s (70 m/s = 252 km/h).
    pub max_speed_mps: f64,
    /// Worst accuracy trusted, metres.
    pub max_accuracy_m: f64,
    /// How far ahead of the server's clock a fix may be dated and still be trusted,
    /// seconds: phones' clocks drift a little; more is a wrong clock.
    pub clock_skew_s: f64,
}

impl Default for JumpFilter {
    fn default() -> Self {
        JumpFilter { max_speed_mps: 70.0, max_accuracy_m: 200.0, clock_skew_s: 60.0 }
    }
}

/// A position at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub position: Position,
    pub time_ms: UnixMs,
}

impl JumpFilter {
    fn plausible(&self, from: Fix, to: Fix) -> bool {
        // Fixes less than a second apart are judged over one second, so that two fixes
        // with the same timestamp a few metres apart are not a jump.
        let dt_s = ((to.time_ms - from.time_ms) as f64 / 1000.0).max(1.0);
        from.position.haversine_m(to.position) / dt_s <= self.max_speed_mps
    }

    /// Flags for `cur` given the device's last trusted fix and its last marked one.
    /// A jump that is confirmed by the fix after it (the device really moved, the
    /// trusted fix was the bad one) is accepted.
    pub fn check(&self, last_trusted: Option<Fix>, last_marked: Option<Fix>, cur: Fix, accuracy_m: Option<f64>) -> u32 {
        let mut f = 0;
        if accuracy_m.is_some_and(|a| a > self.max_accuracy_m) {
            f |= flags::POOR_ACCURACY;
        }
        if let Some(last) = last_trusted {
            if cur.time_ms < last.time_ms {
                f |= flags::OUT_OF_ORDER;
            } else if !self.plausible(last, cur) {
                let confirmed = last_marked
                    .is_some_and(|m| m.time_ms > last.time_ms && m.time_ms <= cur.time_ms && self.plausible(m, cur));
                if !confirmed {
                    f |= flags::JUMP;
                }
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(lon: f64, lat: f64, t_s: i64) -> Fix {
        Fix { position: Position::new(lon, lat).unwrap(), time_ms: t_s * 1000 }
    }

    #[test]
    fn rows() {
        let f = JumpFilter::default();
        let a = fix(107.20, 30.73, 0);
        // (name, last trusted, last marked, current, accuracy, expected flags)
        let rows = [
            ("first fix", None, None, a, None, 0),
            ("walking", Some(a), None, fix(107.2001, 30.73, 10), Some(10.0), 0),
            ("10 km in 10 s", Some(a), None, fix(107.30, 30.73, 10), None, flags::JUMP),
            ("poor accuracy", Some(a), None, fix(107.2001, 30.73, 10), Some(500.0), flags::POOR_ACCURACY),
            ("older than last", Some(fix(107.2, 30.73, 100)), None, fix(107.2, 30.73, 50), None, flags::OUT_OF_ORDER),
            ("jump confirmed by next fix", Some(a), Some(fix(107.30, 30.73, 10)), fix(107.3001, 30.73, 20), None, 0),
        ];
        for (name, last, marked, cur, acc, expected) in rows {
            assert_eq!(f.check(last, marked, cur, acc), expected, "{name}");
        }
    }
}
