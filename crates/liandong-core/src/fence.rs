//! Geofences and their transitions per moving object, with Tile38's semantics
//! (<https://tile38.com/topics/geofencing>): `enter`, `exit`, `inside`, `outside` and
//! `cross` (the path from the previous fix passes through a fence that neither fix is
//! in), plus `dwell`: inside for at least the fence's `dwell_s` seconds, reported once
//! per visit.

use geo::MultiPolygon;
use serde::{Deserialize, Serialize};

use crate::map::{str_prop, Area};
use crate::spatial::{segment_meets, AreaIndex};
use crate::{Position, UnixMs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detect {
    Enter,
    Exit,
    Inside,
    Outside,
    Cross,
    Dwell,
}

impl Detect {
    pub const ALL: [Detect; 6] =
        [Detect::Enter, Detect::Exit, Detect::Inside, Detect::Outside, Detect::Cross, Detect::Dwell];

    pub fn as_str(self) -> &'static str {
        match self {
            Detect::Enter => "enter",
            Detect::Exit => "exit",
            Detect::Inside => "inside",
            Detect::Outside => "outside",
            Detect::Cross => "cross",
            Detect::Dwell => "dwell",
        }
    }

    pub fn parse(s: &str) -> Option<Detect> {
        Detect::ALL.into_iter().find(|d| d.as_str() == s.trim())
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Which transitions a fence reports. Default: everything but `outside`, which would
/// otherwise fire for every fence on every report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectSet(u8);

impl DetectSet {
    pub fn of(kinds: &[Detect]) -> DetectSet {
        DetectSet(kinds.iter().fold(0, |acc, d| acc | d.bit()))
    }

    pub fn has(self, d: Detect) -> bool {
        self.0 & d.bit() != 0
    }
}

impl Default for DetectSet {
    fn default() -> Self {
        DetectSet::of(&[Detect::Enter, Detect::Exit, Detect::Inside, Detect::Cross, Detect::Dwell])
    }
}

#[derive(Debug, Clone)]
pub struct Fence {
    pub id: String,
    pub name: String,
    pub kind: Option<String>,
    /// Seconds inside before a `dwell` is reported; 0 disables dwell.
    pub dwell_s: u32,
    pub detect: DetectSet,
    pub polygon: MultiPolygon<f64>,
}

impl Fence {
    /// A fence from a `fences.geojson` area: `dwell_s` (number) and `detect` (comma
    /// separated kinds) come from its properties.
    pub fn from_area(a: &Area) -> Fence {
        let dwell_s =
            a.properties.get("dwell_s").and_then(serde_json::Value::as_u64).unwrap_or(0).min(u32::MAX as u64) as u32;
        let detect = str_prop(&a.properties, "detect")
            .map(|s| DetectSet::of(&s.split(',').filter_map(Detect::parse).collect::<Vec<_>>()))
            .unwrap_or_default();
        Fence {
            id: a.id.clone(),
            name: a.name.clone(),
            kind: a.kind.clone(),
            dwell_s,
            detect,
            polygon: a.polygon.clone(),
        }
    }
}

/// One object's membership of one fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub fence: u32,
    pub since_ms: UnixMs,
    pub dwell_fired: bool,
}

/// A transition to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceEvent {
    pub fence: u32,
    pub detect: Detect,
}

#[derive(Debug, Clone)]
pub struct FenceSet {
    fences: Vec<Fence>,
    index: AreaIndex,
    outside_watchers: Vec<u32>,
}

impl FenceSet {
    pub fn new(fences: Vec<Fence>) -> FenceSet {
        let index = AreaIndex::new(fences.iter().map(|f| &f.polygon));
        let outside_watchers =
            (0..fences.len() as u32).filter(|&i| fences[i as usize].detect.has(Detect::Outside)).collect();
        FenceSet { fences, index, outside_watchers }
    }

    pub fn fences(&self) -> &[Fence] {
        &self.fences
    }

    pub fn position_of(&self, id: &str) -> Option<u32> {
        self.fences.iter().position(|f| f.id == id).map(|i| i as u32)
    }

    /// Fences containing `p`, ascending.
    pub fn containing(&self, p: Position) -> Vec<u32> {
        let mut out = Vec::new();
        self.index.all_containing(p, &mut out);
        out
    }

    /// Updates `state` (sorted by fence) for an object that moved from `prev` to `cur`
    /// at `t_ms`, appending the transitions to report to `out`.
    pub fn evaluate(
        &self,
        prev: Option<Position>,
        state: &mut Vec<Membership>,
        cur: Position,
        t_ms: UnixMs,
        out: &mut Vec<FenceEvent>,
    ) {
        let mut now = Vec::new();
        self.index.all_containing(cur, &mut now);
        let push = |out: &mut Vec<FenceEvent>, fence: u32, detect: Detect| {
            if self.fences[fence as usize].detect.has(detect) {
                out.push(FenceEvent { fence, detect });
            }
        };
        let was: Vec<u32> = state.iter().map(|m| m.fence).collect();
        state.retain(|m| {
            let stays = now.binary_search(&m.fence).is_ok();
            if !stays {
                push(out, m.fence, Detect::Exit);
            }
            stays
        });
        for &f in &now {
            match state.binary_search_by_key(&f, |m| m.fence) {
                Ok(i) => {
                    push(out, f, Detect::Inside);
                    let m = &mut state[i];
                    let dwell_s = self.fences[f as usize].dwell_s;
                    if dwell_s > 0 && !m.dwell_fired && t_ms - m.since_ms >= i64::from(dwell_s) * 1000 {
                        m.dwell_fired = true;
                        push(out, f, Detect::Dwell);
                    }
                }
                Err(i) => {
                    state.insert(i, Membership { fence: f, since_ms: t_ms, dwell_fired: false });
                    push(out, f, Detect::Enter);
                }
            }
        }
        let mut crossed = Vec::new();
        if let Some(prev) = prev {
            let mut candidates = Vec::new();
            self.index.candidates_between(prev, cur, &mut candidates);
            candidates.sort_unstable();
            for f in candidates {
                let in_either = now.binary_search(&f).is_ok() || was.contains(&f);
                if !in_either && segment_meets(prev, cur, &self.fences[f as usize].polygon) {
                    crossed.push(f);
                    push(out, f, Detect::Cross);
                }
            }
        }
        for &f in &self.outside_watchers {
            if now.binary_search(&f).is_err() && !crossed.contains(&f) {
                push(out, f, Detect::Outside);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    /// A 0.01° square fence near Dazhu's county seat with every detect kind and a 60 s dwell.
    fn fences() -> FenceSet {
        let square = MultiPolygon::new(vec![polygon![
            (x: 107.20, y: 30.73), (x: 107.21, y: 30.73), (x: 107.21, y: 30.74), (x: 107.20, y: 30.74)
        ]]);
        FenceSet::new(vec![Fence {
            id: "school".into(),
            name: "school".into(),
            kind: Some("school".into()),
            dwell_s: 60,
            detect: DetectSet::of(&Detect::ALL),
            polygon: square,
        }])
    }

    fn p(lon: f64, lat: f64) -> Position {
        Position::new(lon, lat).unwrap()
    }

    const IN: (f64, f64) = (107.205, 30.735);
    const IN2: (f64, f64) = (107.206, 30.736);
    const WEST: (f64, f64) = (107.19, 30.735);
    const EAST: (f64, f64) = (107.22, 30.735);
    const NORTH: (f64, f64) = (107.205, 30.75);

    /// Fixes as ((lon, lat), t_s).
    type Fixes = Vec<((f64, f64), i64)>;

    /// One row per transition: (name, fixes, the events of the last fix).
    #[test]
    fn one_row_per_transition() {
        let rows: [(&str, Fixes, Vec<Detect>); 7] = [
            ("enter", vec![(WEST, 0), (IN, 10)], vec![Detect::Enter]),
            ("exit", vec![(IN, 0), (WEST, 10)], vec![Detect::Exit, Detect::Outside]),
            ("inside", vec![(IN, 0), (IN2, 10)], vec![Detect::Inside]),
            ("outside", vec![(WEST, 0), (NORTH, 10)], vec![Detect::Outside]),
            ("cross", vec![(WEST, 0), (EAST, 10)], vec![Detect::Cross]),
            ("dwell", vec![(IN, 0), (IN2, 30), (IN, 61)], vec![Detect::Inside, Detect::Dwell]),
            ("dwell is reported once", vec![(IN, 0), (IN2, 61), (IN, 120)], vec![Detect::Inside]),
        ];
        let set = fences();
        for (name, fixes, expected) in rows {
            let mut state = Vec::new();
            let mut prev = None;
            let mut events = Vec::new();
            for ((lon, lat), t_s) in fixes {
                events.clear();
                set.evaluate(prev, &mut state, p(lon, lat), t_s * 1000, &mut events);
                prev = Some(p(lon, lat));
            }
            let got: Vec<Detect> = events.iter().map(|e| e.detect).collect();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn a_path_that_misses_the_fence_is_not_a_cross() {
        let set = fences();
        let mut state = Vec::new();
        let mut events = Vec::new();
        set.evaluate(None, &mut state, p(107.19, 30.72), 0, &mut events);
        events.clear();
        // Both bounding boxes overlap the fence's, but the diagonal passes south-east of it.
        set.evaluate(Some(p(107.19, 30.72)), &mut state, p(107.22, 30.725), 10_000, &mut events);
        assert_eq!(events.iter().map(|e| e.detect).collect::<Vec<_>>(), vec![Detect::Outside]);
    }

    #[test]
    fn default_detect_set_leaves_out_outside() {
        assert!(!DetectSet::default().has(Detect::Outside));
        assert!(DetectSet::default().has(Detect::Cross));
    }
}
