//! No-parking fences (禁停区) with their hours: a school gate at pick-up time, a fire
//! lane at all hours, a market street on market days. A parking camera's capture inside
//! such a fence while its hours run is a violation; outside the hours, or outside every
//! fence, it is only a record.
//!
//! A fence's hours are China-time ranges (`"07:20-08:10"`) on the weekdays it names,
//! read with the judicial office's [`OfficeHours`] (no holidays: a fire lane stays one on
//! a public holiday). Each open range is a *window*; a rule that acts once per plate and
//! window keys on the window's start ([`Violation::window_start_ms`]).

use geo::MultiPolygon;
use serde_json::Value;

use crate::map::Area;
use crate::office_hours::{OfficeHours, OfficeHoursSpec};
use crate::spatial::AreaIndex;
use crate::{Position, UnixMs};

/// The kinds of no-parking fence the map may name.
pub const KINDS: [&str; 5] = ["school_gate", "fire_lane", "market", "hospital_gate", "other"];

/// Every weekday, for a fence that names none.
const EVERY_DAY: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One no-parking fence, checked.
#[derive(Debug, Clone)]
pub struct NoParkingFence {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// The hours as the map writes them, for answers and alerts.
    pub hours: Vec<String>,
    pub weekdays: Vec<String>,
    pub polygon: MultiPolygon<f64>,
    schedule: OfficeHours,
}

impl NoParkingFence {
    /// A fence from its map feature; the error says which property is wrong and why.
    pub fn from_area(area: &Area) -> Result<NoParkingFence, String> {
        let kind = area.kind.clone().ok_or("has no kind")?;
        if !KINDS.contains(&kind.as_str()) {
            return Err(format!("kind {kind:?} is not one of {}", KINDS.join(", ")));
        }
        let hours = strings(&area.properties, "hours")?.ok_or("has no hours (e.g. [\"07:20-08:10\"])")?;
        let weekdays = strings(&area.properties, "weekdays")?
            .unwrap_or_else(|| EVERY_DAY.iter().map(|d| (*d).to_owned()).collect());
        let spec =
            OfficeHoursSpec { section: "properties", hours: &hours, weekdays: &weekdays, holidays: &[], workdays: &[] };
        let schedule = OfficeHours::parse(&spec).map_err(|e| e.to_string())?;
        Ok(NoParkingFence {
            id: area.id.clone(),
            name: area.name.clone(),
            kind,
            hours,
            weekdays,
            polygon: area.polygon.clone(),
            schedule,
        })
    }

    /// The window `[start, end)` (unix ms) in force at `t_ms`, if parking is forbidden then.
    pub fn window_at(&self, t_ms: UnixMs) -> Option<(UnixMs, UnixMs)> {
        self.schedule.period_at(t_ms)
    }
}

/// A property that is a list of strings; `None` when absent.
fn strings(props: &serde_json::Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("{key} must be a list of strings")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("{key} must be a list of strings")),
    }
}

/// Where a capture stands: the fence it is inside (index into
/// [`NoParkingZones::fences`]) and, when the fence's hours run, the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub fence: usize,
    pub window: Option<(UnixMs, UnixMs)>,
}

/// A capture inside a fence during its hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub fence: usize,
    pub window_start_ms: UnixMs,
    pub window_end_ms: UnixMs,
}

impl Placed {
    pub fn violation(&self) -> Option<Violation> {
        self.window.map(|(s, e)| Violation { fence: self.fence, window_start_ms: s, window_end_ms: e })
    }
}

/// The map's no-parking fences with a point-in-polygon index.
#[derive(Debug, Clone)]
pub struct NoParkingZones {
    fences: Vec<NoParkingFence>,
    index: AreaIndex,
}

impl Default for NoParkingZones {
    fn default() -> Self {
        NoParkingZones::new(Vec::new())
    }
}

impl NoParkingZones {
    pub fn new(fences: Vec<NoParkingFence>) -> NoParkingZones {
        let index = AreaIndex::new(fences.iter().map(|f| &f.polygon));
        NoParkingZones { fences, index }
    }

    /// The fences of the map's `no_parking` layer that check; `maps check` reports the
    /// others, and a map with problems is not served.
    pub fn from_areas(areas: &[Area]) -> NoParkingZones {
        NoParkingZones::new(areas.iter().filter_map(|a| NoParkingFence::from_area(a).ok()).collect())
    }

    pub fn fences(&self) -> &[NoParkingFence] {
        &self.fences
    }

    /// The fence a place is inside (the first, where fences overlap) and the window in
    /// force at `t_ms`; `None` outside every fence.
    pub fn place(&self, p: Position, t_ms: UnixMs) -> Option<Placed> {
        let fence = self.index.containing(p)? as usize;
        Some(Placed { fence, window: self.fences[fence].window_at(t_ms) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;
    use serde_json::json;

    /// 2024-05-06 is a Monday; `t(h, m)` is that day at h:m China time.
    fn t(day: i64, h: i64, m: i64) -> UnixMs {
        // 2024-05-06T00:00:00+08:00
        1_714_924_800_000 + day * 86_400_000 + (h * 60 + m) * 60_000
    }

    fn area(id: &str, kind: &str, props: Value, x0: f64) -> Area {
        let poly = polygon![(x: x0, y: 30.0), (x: x0 + 0.01, y: 30.0), (x: x0 + 0.01, y: 30.01), (x: x0, y: 30.01)];
        Area {
            id: id.into(),
            name: format!("{id} name"),
            parent: None,
            kind: Some(kind.into()),
            polygon: MultiPolygon::new(vec![poly]),
            properties: props.as_object().unwrap().clone(),
        }
    }

    fn school() -> Area {
        area(
            "np-school",
            "school_gate",
            json!({"hours": ["07:20-08:10", "16:30-17:40"], "weekdays": ["mon", "tue", "wed", "thu", "fri"]}),
            107.0,
        )
    }

    #[test]
    fn a_school_gate_forbids_parking_at_pick_up_time_on_school_days_only() {
        let f = NoParkingFence::from_area(&school()).unwrap();
        let rows = [
            ("Monday 07:19, before the window", t(0, 7, 19), None),
            ("Monday 07:20, the window opens", t(0, 7, 20), Some((t(0, 7, 20), t(0, 8, 10)))),
            ("Monday 08:09", t(0, 8, 9), Some((t(0, 7, 20), t(0, 8, 10)))),
            ("Monday 08:10, the window closed", t(0, 8, 10), None),
            ("Monday 12:00, between windows", t(0, 12, 0), None),
            ("Friday 17:00, the afternoon window", t(4, 17, 0), Some((t(4, 16, 30), t(4, 17, 40)))),
            ("Saturday 07:30, no school", t(5, 7, 30), None),
        ];
        for (name, at, want) in rows {
            assert_eq!(f.window_at(at), want, "{name}");
        }
    }

    #[test]
    fn a_fire_lane_forbids_parking_at_every_hour_of_every_day() {
        let f =
            NoParkingFence::from_area(&area("np-fire", "fire_lane", json!({"hours": ["00:00-24:00"]}), 107.0)).unwrap();
        for at in [t(0, 0, 0), t(2, 13, 5), t(6, 23, 59)] {
            assert!(f.window_at(at).is_some(), "{at}");
        }
        assert_eq!(f.window_at(t(6, 23, 59)).unwrap().0, t(6, 0, 0), "one window per day");
    }

    #[test]
    fn a_fence_with_bad_hours_or_kind_is_refused_naming_the_property() {
        let rows = [
            (json!({"hours": ["7:20-08:10"]}), "school_gate", "hours[0]"),
            (json!({"hours": ["08:10-07:20"]}), "school_gate", "hours[0]"),
            (json!({"hours": "07:20-08:10"}), "school_gate", "hours must be a list"),
            (json!({}), "school_gate", "no hours"),
            (json!({"hours": ["07:20-08:10"], "weekdays": ["someday"]}), "school_gate", "weekdays[0]"),
            (json!({"hours": ["07:20-08:10"]}), "carwash", "kind"),
        ];
        for (props, kind, want) in rows {
            let e = NoParkingFence::from_area(&area("x", kind, props.clone(), 107.0)).unwrap_err();
            assert!(e.contains(want), "{props}: {e}");
        }
    }

    #[test]
    fn a_place_is_placed_in_its_fence_with_the_window_in_force() {
        let zones = NoParkingZones::from_areas(&[
            school(),
            area("np-fire", "fire_lane", json!({"hours": ["00:00-24:00"]}), 107.1),
        ]);
        let inside_school = Position::new(107.005, 30.005).unwrap();
        let inside_fire = Position::new(107.105, 30.005).unwrap();
        let outside = Position::new(107.05, 30.005).unwrap();
        let at_school = zones.place(inside_school, t(0, 7, 30)).unwrap();
        assert_eq!(zones.fences()[at_school.fence].id, "np-school");
        assert_eq!(at_school.violation().unwrap().window_start_ms, t(0, 7, 20));
        assert_eq!(zones.place(inside_school, t(0, 12, 0)).unwrap().violation(), None, "inside, out of hours");
        assert_eq!(zones.fences()[zones.place(inside_fire, t(0, 12, 0)).unwrap().fence].id, "np-fire");
        assert_eq!(zones.place(outside, t(0, 7, 30)), None);
    }
}
