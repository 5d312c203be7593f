//! Alert rules on camera reads: watch-list matching (缉查布控) with validity periods,
//! de-duplication of repeated reads in a window, and the nearest available units.

use std::collections::HashMap;

use crate::jump::Fix;
use crate::{Position, UnixMs};

/// What a watch-list entry watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    Plate,
    Person,
}

impl WatchKind {
    pub fn parse(s: &str) -> Option<WatchKind> {
        match s {
            "plate" => Some(WatchKind::Plate),
            "person" => Some(WatchKind::Person),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WatchKind::Plate => "plate",
            WatchKind::Person => "person",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchEntry {
    pub id: String,
    pub kind: WatchKind,
    /// Normalised plate or person id.
    pub value: String,
    pub reason: String,
    /// 1 (highest) to 5.
    pub priority: u8,
    pub valid_from_ms: Option<UnixMs>,
    pub valid_to_ms: Option<UnixMs>,
    /// Roles that may see hits of this entry.
    pub roles: Vec<String>,
}

impl WatchEntry {
    pub fn valid_at(&self, t: UnixMs) -> bool {
        self.valid_from_ms.is_none_or(|f| t >= f) && self.valid_to_ms.is_none_or(|to| t <= to)
    }
}

/// The watch list, indexed by (kind, value).
#[derive(Debug, Clone, Default)]
pub struct Watchlist {
    entries: HashMap<(WatchKind, String), WatchEntry>,
}

impl Watchlist {
    pub fn new(entries: impl IntoIterator<Item = WatchEntry>) -> Watchlist {
        let mut w = Watchlist::default();
        for e in entries {
            w.upsert(e);
        }
        w
    }

    /// Adds or replaces an entry (by id: an entry whose value changed moves).
    pub fn upsert(&mut self, e: WatchEntry) {
        self.entries.retain(|_, old| old.id != e.id);
        self.entries.insert((e.kind, e.value.clone()), e);
    }

    /// The entry matching a read at time `t`, if it is valid then.
    pub fn hit(&self, kind: WatchKind, value: &str, t: UnixMs) -> Option<&WatchEntry> {
        self.entries.get(&(kind, value.to_owned())).filter(|e| e.valid_at(t))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &WatchEntry> + '_ {
        self.entries.values()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Suppresses a repeat of the same read (camera and plate or person) within a window.
#[derive(Debug, Clone)]
pub struct Dedup {
    window_ms: i64,
    last: HashMap<(String, String), UnixMs>,
}

impl Dedup {
    pub fn new(window_s: u32) -> Dedup {
        Dedup { window_ms: i64::from(window_s) * 1000, last: HashMap::new() }
    }

    /// Whether a read of `value` by `camera` at `t` is new (and remembers it). A read
    /// within the window of the last one is a repeat; the window does not slide with
    /// repeats, so a plate parked in front of a camera alerts once per window.
    pub fn admit(&mut self, camera: &str, value: &str, t: UnixMs) -> bool {
        let key = (camera.to_owned(), value.to_owned());
        match self.last.get(&key) {
            Some(&last) if (t - last).abs() < self.window_ms => false,
            _ => {
                if self.last.len() > 100_000 {
                    // Bounded memory: forget reads older than the window.
                    let (w, now) = (self.window_ms, t);
                    self.last.retain(|_, at| now - *at < w);
                }
                self.last.insert(key, t);
                true
            }
        }
    }
}

/// The `k` units nearest to `p` among those whose last trusted fix is at most
/// `max_age_ms` old at `now`, nearest first, with haversine metres.
pub fn nearest_units<'a>(
    units: impl IntoIterator<Item = (&'a str, Fix)>,
    p: Position,
    now: UnixMs,
    max_age_ms: i64,
    k: usize,
) -> Vec<(&'a str, f64)> {
    let mut v: Vec<(&str, f64)> = units
        .into_iter()
        .filter(|(_, f)| now - f.time_ms <= max_age_ms)
        .map(|(id, f)| (id, p.haversine_m(f.position)))
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(b.0)));
    v.truncate(k);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(valid_to: Option<i64>) -> WatchEntry {
        WatchEntry {
            id: "w1".into(),
            kind: WatchKind::Plate,
            value: "川S12345".into(),
            reason: "stolen vehicle".into(),
            priority: 1,
            valid_from_ms: Some(1_000),
            valid_to_ms: valid_to,
            roles: vec!["operator".into()],
        }
    }

    #[test]
    fn watch_list_hits_only_within_validity() {
        let w = Watchlist::new([entry(Some(5_000))]);
        let rows = [(500, false), (1_000, true), (5_000, true), (5_001, false)];
        for (t, hit) in rows {
            assert_eq!(w.hit(WatchKind::Plate, "川S12345", t).is_some(), hit, "t={t}");
        }
        assert!(w.hit(WatchKind::Person, "川S12345", 2_000).is_none(), "kinds do not mix");
        assert!(w.hit(WatchKind::Plate, "川S54321", 2_000).is_none());
    }

    #[test]
    fn an_entry_whose_value_changes_moves() {
        let mut w = Watchlist::new([entry(None)]);
        w.upsert(WatchEntry { value: "川S99999".into(), ..entry(None) });
        assert_eq!(w.len(), 1);
        assert!(w.hit(WatchKind::Plate, "川S12345", 2_000).is_none());
        assert!(w.hit(WatchKind::Plate, "川S99999", 2_000).is_some());
    }

    #[test]
    fn dedup_window_rows() {
        let mut d = Dedup::new(60);
        // (camera, plate, t_s, new?)
        let rows = [
            ("cam-1", "A", 0, true),
            ("cam-1", "A", 10, false),
            ("cam-2", "A", 10, true),
            ("cam-1", "B", 10, true),
            ("cam-1", "A", 59, false),
            ("cam-1", "A", 60, true),
        ];
        for (cam, plate, t, new) in rows {
            assert_eq!(d.admit(cam, plate, t * 1000), new, "{cam} {plate} {t}");
        }
    }

    #[test]
    fn nearest_units_skip_stale_ones() {
        let p = Position::new(107.2, 30.7).unwrap();
        let fix = |lon: f64, t: i64| Fix { position: Position::new(lon, 30.7).unwrap(), time_ms: t };
        let units = [("far", fix(107.3, 1_000)), ("near", fix(107.201, 1_000)), ("stale", fix(107.2, -1_000_000))];
        let got = nearest_units(units, p, 2_000, 600_000, 2);
        assert_eq!(got.iter().map(|u| u.0).collect::<Vec<_>>(), ["near", "far"]);
        assert!((got[0].1 - 95.7).abs() < 1.0, "{}", got[0].1);
    }
}
