//! Storm suppression per camera: a faulty or mis-aimed camera can raise hundreds of
//! alerts a minute, each for a different plate, which repeat de-duplication
//! ([`crate::alerts::Dedup`]) cannot catch. Above a rate the camera's alerts are
//! suppressed and one storm alert stands for them; once the camera has been quiet for a
//! window the storm ends with a count of what it swallowed.
//!
//! The guard is a sliding-window counter per camera. It keeps at most `max_alerts + 1`
//! timestamps per camera, because that is all it takes to know whether the window holds
//! more than `max_alerts` of them.

use std::collections::{HashMap, VecDeque};

use crate::UnixMs;

/// What to do with one would-be alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormVerdict {
    /// Raise the alert as usual.
    Pass,
    /// This would-be alert starts a storm (it is itself suppressed): raise one storm
    /// alert instead.
    Begins { alerts_in_window: u32 },
    /// The camera is in a storm: drop the alert, it is counted in the storm's end.
    Suppressed,
}

/// A storm that is over, to report once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormEnd {
    pub camera_id: String,
    /// Time of the would-be alert that began the storm.
    pub began_ms: UnixMs,
    /// Time of the latest would-be alert of the storm.
    pub last_ms: UnixMs,
    /// Would-be alerts that were not raised, the one that began the storm included.
    pub suppressed: u32,
}

#[derive(Debug, Clone)]
struct Storm {
    began_ms: UnixMs,
    last_ms: UnixMs,
    suppressed: u32,
}

#[derive(Debug, Clone, Default)]
struct Camera {
    /// Times of recent would-be alerts outside a storm, ascending, at most
    /// `max_alerts + 1` of them.
    recent: VecDeque<UnixMs>,
    storm: Option<Storm>,
}

/// Per-camera storm state. Cameras without a storm and without an alert in the last
/// window are forgotten by [`StormGuard::ended`], so memory follows the number of
/// cameras that are busy now, not of all cameras ever seen.
#[derive(Debug, Clone)]
pub struct StormGuard {
    window_ms: i64,
    max_alerts: u32,
    cameras: HashMap<String, Camera>,
    /// Storms found over by [`StormGuard::check`] (a camera that alerts again after a
    /// quiet window) and not yet reported by [`StormGuard::ended`].
    finished: Vec<StormEnd>,
}

impl StormGuard {
    /// More than `max_alerts` would-be alerts from one camera within `window_ms` is a storm;
    /// a storm ends after `window_ms` with no would-be alert from the camera.
    ///
    /// A window shorter than 1 ms is taken as 1 ms: an empty window could hold no alert
    /// and would make every storm end at once.
    pub fn new(window_ms: i64, max_alerts: u32) -> StormGuard {
        StormGuard { window_ms: window_ms.max(1), max_alerts, cameras: HashMap::new(), finished: Vec::new() }
    }

    /// Judges a would-be alert from `camera_id` at `t_ms` and remembers it.
    ///
    /// Times may arrive a little out of order (camera clocks drift): the window is
    /// measured back from the newest time seen, and a late alert during a storm is
    /// suppressed without moving the storm's end.
    pub fn check(&mut self, camera_id: &str, t_ms: UnixMs) -> StormVerdict {
        let window_ms = self.window_ms;
        let cam = match self.cameras.get_mut(camera_id) {
            Some(cam) => cam,
            None => self.cameras.entry(camera_id.to_owned()).or_default(),
        };
        if let Some(storm) = &mut cam.storm {
            if t_ms.saturating_sub(storm.last_ms) < window_ms {
                storm.suppressed = storm.suppressed.saturating_add(1);
                storm.last_ms = storm.last_ms.max(t_ms);
                return StormVerdict::Suppressed;
            }
            // The camera was quiet for a whole window before this alert: that storm is
            // over, and this alert is judged afresh.
            let storm = cam.storm.take().expect("matched above");
            self.finished.push(end_of(camera_id, storm));
            cam.recent.clear();
        }

        // Sorted insert: out-of-order times land near the back, so this is cheap.
        let at = cam.recent.partition_point(|&x| x <= t_ms);
        cam.recent.insert(at, t_ms);
        let newest = *cam.recent.back().expect("just inserted");
        while cam.recent.front().is_some_and(|&x| newest.saturating_sub(x) >= window_ms) {
            cam.recent.pop_front();
        }
        let cap = self.max_alerts as usize + 1;
        while cam.recent.len() > cap {
            cam.recent.pop_front();
        }

        // A late alert that fell out of the window on arrival is not part of any burst.
        if newest.saturating_sub(t_ms) >= window_ms {
            return StormVerdict::Pass;
        }
        let alerts_in_window = cam.recent.len() as u32;
        if alerts_in_window > self.max_alerts {
            cam.storm = Some(Storm { began_ms: t_ms, last_ms: newest, suppressed: 1 });
            cam.recent.clear();
            StormVerdict::Begins { alerts_in_window }
        } else {
            StormVerdict::Pass
        }
    }

    /// Storms that have ended by `now_ms` (each reported once), ordered by camera id.
    ///
    /// Also forgets cameras with no storm whose last would-be alert is a window old, so
    /// call it periodically (every few seconds) even when nothing is expected.
    pub fn ended(&mut self, now_ms: UnixMs) -> Vec<StormEnd> {
        let window_ms = self.window_ms;
        let mut out = std::mem::take(&mut self.finished);
        self.cameras.retain(|camera_id, cam| {
            if let Some(storm) = &cam.storm {
                if now_ms.saturating_sub(storm.last_ms) < window_ms {
                    return true;
                }
                let storm = cam.storm.take().expect("matched above");
                out.push(end_of(camera_id, storm));
                return false;
            }
            cam.recent.back().is_some_and(|&newest| now_ms.saturating_sub(newest) < window_ms)
        });
        out.sort_by(|a, b| a.camera_id.cmp(&b.camera_id).then(a.began_ms.cmp(&b.began_ms)));
        out
    }

    /// Whether `camera_id` is in a storm, as of the last [`StormGuard::check`] or
    /// [`StormGuard::ended`]: the guard has no clock of its own, so a storm stays on
    /// until one of them sees the quiet window.
    pub fn in_storm(&self, camera_id: &str) -> bool {
        self.cameras.get(camera_id).is_some_and(|c| c.storm.is_some())
    }

    /// Cameras currently remembered (busy ones and those in a storm).
    pub fn tracked_cameras(&self) -> usize {
        self.cameras.len()
    }
}

fn end_of(camera_id: &str, s: Storm) -> StormEnd {
    StormEnd { camera_id: camera_id.to_owned(), began_ms: s.began_ms, last_ms: s.last_ms, suppressed: s.suppressed }
}

#[cfg(test)]
mod tests {
    use super::*;

    use StormVerdict::{Begins, Pass, Suppressed};

    /// Would-be alerts in arrival order: (camera, t_ms, expected verdict).
    type Alerts = &'static [(&'static str, i64, StormVerdict)];

    /// One row per scenario, with a window of 60 s and at most 3 alerts in it.
    #[test]
    fn verdict_rows() {
        let rows: &[(&str, Alerts)] = &[
            ("below the threshold passes", &[("a", 0, Pass), ("a", 1_000, Pass), ("a", 2_000, Pass)]),
            (
                "the fourth in the window begins, the rest are suppressed",
                &[
                    ("a", 0, Pass),
                    ("a", 1_000, Pass),
                    ("a", 2_000, Pass),
                    ("a", 3_000, Begins { alerts_in_window: 4 }),
                    ("a", 4_000, Suppressed),
                    ("a", 50_000, Suppressed),
                ],
            ),
            (
                "alerts spaced wider than the window never storm",
                &[
                    ("a", 0, Pass),
                    ("a", 60_000, Pass),
                    ("a", 120_000, Pass),
                    ("a", 180_000, Pass),
                    ("a", 240_000, Pass),
                ],
            ),
            (
                "the window slides: old alerts stop counting",
                &[
                    ("a", 0, Pass),
                    ("a", 30_000, Pass),
                    ("a", 59_000, Pass),
                    ("a", 60_000, Pass),
                    ("a", 61_000, Begins { alerts_in_window: 4 }),
                ],
            ),
            (
                "cameras are counted apart",
                &[("a", 0, Pass), ("b", 0, Pass), ("a", 1, Pass), ("b", 1, Pass), ("a", 2, Pass), ("b", 2, Pass)],
            ),
            (
                "slightly out of order times still count",
                &[
                    ("a", 5_000, Pass),
                    ("a", 4_000, Pass),
                    ("a", 6_000, Pass),
                    ("a", 3_000, Begins { alerts_in_window: 4 }),
                ],
            ),
            (
                "a late alert from outside the window passes",
                &[("a", 100_000, Pass), ("a", 101_000, Pass), ("a", 102_000, Pass), ("a", 0, Pass)],
            ),
            (
                "a storm that saw a quiet window is over for the next alert",
                &[
                    ("a", 0, Pass),
                    ("a", 0, Pass),
                    ("a", 0, Pass),
                    ("a", 0, Begins { alerts_in_window: 4 }),
                    ("a", 59_999, Suppressed),
                    ("a", 119_999, Pass),
                ],
            ),
            ("extreme times do not overflow", &[("a", i64::MIN, Pass), ("a", i64::MAX, Pass), ("a", i64::MIN, Pass)]),
        ];
        for (name, alerts) in rows {
            let mut g = StormGuard::new(60_000, 3);
            for (i, &(cam, t, expected)) in alerts.iter().enumerate() {
                assert_eq!(g.check(cam, t), expected, "{name}: alert {i}");
            }
        }
    }

    #[test]
    fn ended_reports_once_after_quiet_with_the_suppressed_count() {
        let mut g = StormGuard::new(60_000, 3);
        for t in 0..10 {
            g.check("cam-9", t * 1_000);
        }
        // 0..=2 pass, 3 begins, 4..=9 suppressed: 7 alerts were not raised.
        assert!(g.in_storm("cam-9"));
        // (now, expected ends) in order: the last alert was at 9 s.
        let rows: [(i64, Vec<StormEnd>); 3] = [
            (68_999, vec![]),
            (69_000, vec![StormEnd { camera_id: "cam-9".into(), began_ms: 3_000, last_ms: 9_000, suppressed: 7 }]),
            (200_000, vec![]),
        ];
        for (now, expected) in rows {
            assert_eq!(g.ended(now), expected, "now={now}");
        }
        assert!(!g.in_storm("cam-9"));

        // A new storm later works again, from a clean count.
        let verdicts: Vec<_> = (0..5).map(|i| g.check("cam-9", 300_000 + i)).collect();
        assert_eq!(verdicts, [Pass, Pass, Pass, Begins { alerts_in_window: 4 }, Suppressed]);
        let ends = g.ended(400_000);
        assert_eq!(ends.len(), 1);
        assert_eq!((ends[0].began_ms, ends[0].last_ms, ends[0].suppressed), (300_003, 300_004, 2));
    }

    #[test]
    fn a_storm_closed_by_check_is_still_reported_by_ended() {
        let mut g = StormGuard::new(1_000, 0);
        assert_eq!(g.check("z", 0), Begins { alerts_in_window: 1 });
        assert_eq!(g.check("a", 0), Begins { alerts_in_window: 1 });
        // With max 0 every alert after a quiet window begins a new storm.
        assert_eq!(g.check("z", 5_000), Begins { alerts_in_window: 1 });
        let ends = g.ended(10_000);
        let got: Vec<_> = ends.iter().map(|e| (e.camera_id.as_str(), e.began_ms, e.suppressed)).collect();
        assert_eq!(got, [("a", 0, 1), ("z", 0, 1), ("z", 5_000, 1)], "ordered by camera, then start");
        assert!(g.ended(20_000).is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut g = StormGuard::new(60_000, 3);
        for i in 0..1_000 {
            g.check(&format!("cam-{i}"), 0);
        }
        // One camera alerting steadily below the threshold keeps at most max+1 times.
        for t in 0..100 {
            g.check("steady", t * 20_001);
        }
        assert!(g.cameras["steady"].recent.len() <= 4);
        assert_eq!(g.tracked_cameras(), 1_001);
        assert!(g.ended(2_000_000).is_empty());
        assert_eq!(g.tracked_cameras(), 1, "idle cameras are forgotten, the busy one kept");
        assert!(g.ended(2_100_000).is_empty());
        assert_eq!(g.tracked_cameras(), 0);
    }
}
