//! Spatial enrichment of a fix, and the per-device processing step that the ingest
//! sequencer runs for every accepted report: jump filter, enrichment, fence transitions.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::fence::{Fence, FenceEvent, FenceSet, Membership};
use crate::jump::{flags, Fix, JumpFilter};
use crate::map::{Area, CountyMap, Site};
use crate::spatial::{AreaIndex, LocalProjection, SiteIndex};
use crate::{Position, UnixMs};

/// How many nearest posts an enrichment names.
pub const NEAREST_POSTS: usize = 3;

/// The spatial facts about one position, as indexes into the map's layers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Enrichment {
    pub in_county: bool,
    pub township: Option<u32>,
    pub grid: Option<u32>,
    pub jurisdiction: Option<u32>,
    pub nearest_posts: [(u32, f64); NEAREST_POSTS],
    pub nearest_count: u8,
}

/// Names and distances for clients and storage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnrichmentView<'a> {
    pub in_county: bool,
    pub township: Option<AreaRef<'a>>,
    pub grid: Option<AreaRef<'a>>,
    /// The post whose jurisdiction contains the position.
    pub post: Option<AreaRef<'a>>,
    pub nearest_posts: Vec<NearPost<'a>>,
    pub fences_inside: Vec<&'a str>,
    pub fence_events: Vec<FenceEventView<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AreaRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NearPost<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub distance_m: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FenceEventView<'a> {
    pub fence: &'a str,
    pub name: &'a str,
    pub detect: &'static str,
}

/// [`EnrichmentView`] as a report's enrichment is written (`Enricher::wire`): the same
/// JSON, its places' ids and names escaped once when the map was loaded rather than for
/// every report (7 % of a report's instructions).
#[derive(Debug, Serialize)]
pub struct EnrichmentWire<'a> {
    in_county: bool,
    township: Option<&'a NamedJson>,
    grid: Option<&'a NamedJson>,
    post: Option<&'a NamedJson>,
    nearest_posts: Vec<NearPostWire<'a>>,
    fences_inside: Vec<&'a RawValue>,
    fence_events: Vec<FenceEventWire<'a>>,
}

/// A place's id and name as JSON strings; serialised as `{"id":…,"name":…}`, like
/// [`AreaRef`].
#[derive(Debug, Clone, Serialize)]
pub struct NamedJson {
    id: Box<RawValue>,
    name: Box<RawValue>,
}

impl NamedJson {
    fn new(id: &str, name: &str) -> NamedJson {
        NamedJson { id: json_string(id), name: json_string(name) }
    }
}

/// `s` as a JSON string.
fn json_string(s: &str) -> Box<RawValue> {
    serde_json::value::to_raw_value(s).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

#[derive(Debug, Serialize)]
struct NearPostWire<'a> {
    id: &'a RawValue,
    name: &'a RawValue,
    distance_m: f64,
}

#[derive(Debug, Serialize)]
struct FenceEventWire<'a> {
    fence: &'a RawValue,
    name: &'a RawValue,
    detect: &'static str,
}

/// Every place's id and name as JSON, by index (see [`EnrichmentWire`]).
#[derive(Debug, Clone)]
struct PlacesJson {
    townships: Vec<NamedJson>,
    grids: Vec<NamedJson>,
    posts: Vec<NamedJson>,
    fences: Vec<NamedJson>,
}

impl PlacesJson {
    fn new(map: &CountyMap, fences: &FenceSet) -> PlacesJson {
        let areas = |v: &[Area]| v.iter().map(|a| NamedJson::new(&a.id, &a.name)).collect();
        PlacesJson {
            townships: areas(&map.townships),
            grids: areas(&map.grids),
            posts: map.posts.iter().map(|p| NamedJson::new(&p.id, &p.name)).collect(),
            fences: fences.fences().iter().map(|f| NamedJson::new(&f.id, &f.name)).collect(),
        }
    }
}

/// The in-memory indexes enrichment reads, built once per map with `bulk_load`.
#[derive(Debug, Clone)]
pub struct Enricher {
    /// The county boundary as a one-area index, so "in county" is a raster lookup too.
    boundary: AreaIndex,
    townships: Vec<(String, String)>,
    township_index: AreaIndex,
    grids: Vec<(String, String)>,
    grid_index: AreaIndex,
    /// Post index of each jurisdiction.
    jurisdiction_post: Vec<Option<u32>>,
    jurisdiction_index: AreaIndex,
    posts: Vec<(String, String)>,
    post_index: SiteIndex,
    fences: FenceSet,
    /// The no-parking fences with their hours (the map's optional `no_parking` layer).
    no_parking: crate::no_parking::NoParkingZones,
    json: PlacesJson,
}

fn names(areas: &[Area]) -> Vec<(String, String)> {
    areas.iter().map(|a| (a.id.clone(), a.name.clone())).collect()
}

fn site_names(sites: &[Site]) -> Vec<(String, String)> {
    sites.iter().map(|s| (s.id.clone(), s.name.clone())).collect()
}

impl Enricher {
    pub fn new(map: &CountyMap) -> Enricher {
        let lat0 = map.posts.iter().map(|p| p.point.y()).sum::<f64>() / map.posts.len().max(1) as f64;
        let proj = LocalProjection::at_lat(if map.posts.is_empty() { 30.0 } else { lat0 });
        let jurisdiction_post = map
            .jurisdictions
            .iter()
            .map(|j| j.parent.as_deref().and_then(|pid| map.posts.iter().position(|p| p.id == pid)).map(|i| i as u32))
            .collect();
        let fences = FenceSet::new(map.fences.iter().map(Fence::from_area).collect());
        Enricher {
            json: PlacesJson::new(map, &fences),
            boundary: AreaIndex::new([&map.boundary]),
            townships: names(&map.townships),
            township_index: AreaIndex::new(map.townships.iter().map(|a| &a.polygon)),
            grids: names(&map.grids),
            grid_index: AreaIndex::new(map.grids.iter().map(|a| &a.polygon)),
            jurisdiction_post,
            jurisdiction_index: AreaIndex::new(map.jurisdictions.iter().map(|a| &a.polygon)),
            posts: site_names(&map.posts),
            post_index: SiteIndex::new(map.posts.iter().map(|p| p.point), proj),
            fences,
            no_parking: crate::no_parking::NoParkingZones::from_areas(&map.no_parking),
        }
    }

    /// The no-parking fences and their hours.
    pub fn no_parking(&self) -> &crate::no_parking::NoParkingZones {
        &self.no_parking
    }

    pub fn fences(&self) -> &FenceSet {
        &self.fences
    }

    /// Township, grid, jurisdiction and nearest posts of `p`. Pure and allocation-free.
    pub fn enrich(&self, p: Position) -> Enrichment {
        let mut e = Enrichment { in_county: self.boundary.containing(p).is_some(), ..Enrichment::default() };
        e.township = self.township_index.containing(p);
        e.grid = self.grid_index.containing(p);
        e.jurisdiction = self.jurisdiction_index.containing(p).and_then(|j| self.jurisdiction_post[j as usize]);
        e.nearest_count = self.post_index.nearest(p, &mut e.nearest_posts) as u8;
        e
    }

    /// Post id and name by index.
    pub fn post(&self, i: u32) -> (&str, &str) {
        let (id, name) = &self.posts[i as usize];
        (id, name)
    }

    pub fn post_position(&self, id: &str) -> Option<usize> {
        self.posts.iter().position(|(pid, _)| pid == id)
    }

    pub fn view<'a>(&'a self, e: &Enrichment, inside: &[Membership], events: &[FenceEvent]) -> EnrichmentView<'a> {
        let area = |v: &'a [(String, String)], i: Option<u32>| {
            i.map(|i| AreaRef { id: &v[i as usize].0, name: &v[i as usize].1 })
        };
        let fence = |i: u32| &self.fences.fences()[i as usize];
        EnrichmentView {
            in_county: e.in_county,
            township: area(&self.townships, e.township),
            grid: area(&self.grids, e.grid),
            post: area(&self.posts, e.jurisdiction),
            nearest_posts: e.nearest_posts[..e.nearest_count as usize]
                .iter()
                .map(|&(i, d)| NearPost {
                    id: &self.posts[i as usize].0,
                    name: &self.posts[i as usize].1,
                    distance_m: (d * 10.0).round() / 10.0,
                })
                .collect(),
            fences_inside: inside.iter().map(|m| fence(m.fence).id.as_str()).collect(),
            fence_events: events
                .iter()
                .map(|ev| FenceEventView {
                    fence: &fence(ev.fence).id,
                    name: &fence(ev.fence).name,
                    detect: ev.detect.as_str(),
                })
                .collect(),
        }
    }

    /// [`Enricher::view`] for writing: serialises to the same JSON (a test checks it).
    pub fn wire<'a>(&'a self, e: &Enrichment, inside: &[Membership], events: &[FenceEvent]) -> EnrichmentWire<'a> {
        let j = &self.json;
        let fence = |i: u32| &j.fences[i as usize];
        EnrichmentWire {
            in_county: e.in_county,
            township: e.township.map(|i| &j.townships[i as usize]),
            grid: e.grid.map(|i| &j.grids[i as usize]),
            post: e.jurisdiction.map(|i| &j.posts[i as usize]),
            nearest_posts: e.nearest_posts[..e.nearest_count as usize]
                .iter()
                .map(|&(i, d)| NearPostWire {
                    id: &j.posts[i as usize].id,
                    name: &j.posts[i as usize].name,
                    distance_m: (d * 10.0).round() / 10.0,
                })
                .collect(),
            fences_inside: inside.iter().map(|m| &*fence(m.fence).id).collect(),
            fence_events: events
                .iter()
                .map(|ev| FenceEventWire {
                    fence: &fence(ev.fence).id,
                    name: &fence(ev.fence).name,
                    detect: ev.detect.as_str(),
                })
                .collect(),
        }
    }
}

/// What the server remembers about a device between reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceTrack {
    pub last_trusted: Option<Fix>,
    pub last_marked: Option<Fix>,
    pub fences: Vec<Membership>,
}

/// The outcome of processing one fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub flags: u32,
    pub enrichment: Enrichment,
    pub fence_events: Vec<FenceEvent>,
}

impl Processed {
    pub fn trusted(&self) -> bool {
        self.flags & flags::UNTRUSTED == 0
    }
}

/// One fix as the device reported it, for [`process_reading`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub position: Position,
    /// When the fix was taken.
    pub time_ms: UnixMs,
    /// The server's clock when the fix arrived.
    pub recv_ms: UnixMs,
    pub accuracy_m: Option<f64>,
    /// The device says the fix is not from its own receiver (a mock location).
    pub mock: bool,
}

/// Runs the jump filter, enrichment and (for trusted fixes) the fence rules, updating
/// the device's track. `recv_ms` is the server's clock when the fix arrived: a fix dated
/// ahead of it by more than the filter's `clock_skew_s` is marked and moves nothing.
pub fn process(
    enricher: &Enricher,
    filter: &JumpFilter,
    track: &mut DeviceTrack,
    p: Position,
    t_ms: UnixMs,
    recv_ms: UnixMs,
    accuracy_m: Option<f64>,
) -> Processed {
    let reading = Reading { position: p, time_ms: t_ms, recv_ms, accuracy_m, mock: false };
    process_reading(enricher, filter, track, reading)
}

/// [`process`] for a reading that may be a mock location: a mocked fix is marked
/// [`flags::MOCK`] and, like one dated ahead of the clock, moves nothing, not even the
/// last marked fix that could confirm a jump.
pub fn process_reading(enricher: &Enricher, filter: &JumpFilter, track: &mut DeviceTrack, r: Reading) -> Processed {
    let Reading { position: p, time_ms: t_ms, recv_ms, accuracy_m, mock } = r;
    let cur = Fix { position: p, time_ms: t_ms };
    let mut f = filter.check(track.last_trusted, track.last_marked, cur, accuracy_m);
    if (t_ms - recv_ms) as f64 > filter.clock_skew_s * 1000.0 {
        f |= flags::AHEAD_OF_CLOCK;
    }
    if mock {
        f |= flags::MOCK;
    }
    let enrichment = enricher.enrich(p);
    if !enrichment.in_county {
        f |= flags::OUTSIDE_COUNTY;
    }
    let mut fence_events = Vec::new();
    advance(enricher, track, cur, f, &mut fence_events);
    Processed { flags: f, enrichment, fence_events }
}

/// A stored fix applied again to its device's track as [`process_reading`] applied it
/// then, its `flags` (as stored) standing for the filter's decision: how a track is
/// rebuilt from the reports committed after its last stored state. The fence events
/// it would raise were raised the first time and are dropped.
pub fn replay(enricher: &Enricher, track: &mut DeviceTrack, fix: Fix, flags: u32) {
    advance(enricher, track, fix, flags, &mut Vec::new());
}

/// What a fix of these flags does to its track: a trusted one moves the fences and the
/// last trusted fix; an untrusted one in order, from the receiver and not dated ahead,
/// becomes the last marked fix (which a next jump to the same place confirms).
fn advance(enricher: &Enricher, track: &mut DeviceTrack, cur: Fix, f: u32, fence_events: &mut Vec<FenceEvent>) {
    if f & flags::UNTRUSTED == 0 {
        let prev = track.last_trusted.map(|fx| fx.position);
        enricher.fences.evaluate(prev, &mut track.fences, cur.position, cur.time_ms, fence_events);
        track.last_trusted = Some(cur);
    } else if f & (flags::OUT_OF_ORDER | flags::AHEAD_OF_CLOCK | flags::MOCK) == 0 {
        track.last_marked = Some(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enricher() -> Enricher {
        let (map, problems) = CountyMap::parse(&crate::map::tests::mini());
        assert!(problems.is_empty());
        Enricher::new(&map)
    }

    fn p(lon: f64, lat: f64) -> Position {
        Position::new(lon, lat).unwrap()
    }

    /// One row per known point: (name, point, in county, township, grid, post, nearest post).
    #[test]
    fn containing_areas_and_nearest_posts_at_known_points() {
        let e = enricher();
        let rows = [
            ("west town", p(107.05, 30.75), true, Some("t-west"), Some("g-west"), Some("p-west"), Some("p-west")),
            ("east town", p(107.35, 30.55), true, Some("t-east"), Some("g-east"), Some("p-east"), Some("p-east")),
            // On the shared edge: exactly one side (half-open rule: the eastern one). Both
            // posts are equally far, so the nearest is not asserted.
            ("on the township border", p(107.2, 30.7), true, Some("t-east"), Some("g-east"), Some("p-east"), None),
            (
                "on the western county edge",
                p(107.0, 30.7),
                true,
                Some("t-west"),
                Some("g-west"),
                Some("p-west"),
                Some("p-west"),
            ),
            ("outside the county", p(107.6, 30.7), false, None, None, None, Some("p-east")),
        ];
        for (name, pt, in_county, township, grid, post, nearest) in rows {
            let en = e.enrich(pt);
            let v = e.view(&en, &[], &[]);
            assert_eq!(v.in_county, in_county, "{name}");
            assert_eq!(v.township.map(|a| a.id), township, "{name}");
            assert_eq!(v.grid.map(|a| a.id), grid, "{name}");
            assert_eq!(v.post.map(|a| a.id), post, "{name}");
            if let Some(nearest) = nearest {
                assert_eq!(v.nearest_posts[0].id, nearest, "{name}");
            }
            assert_eq!(v.nearest_posts.len(), 2, "{name}: the mini map has two posts");
        }
        // On the border both posts are 0.1° of longitude away; the answer is in metres.
        let v = e.view(&e.enrich(p(107.2, 30.7)), &[], &[]);
        let d = v.nearest_posts[0].distance_m;
        assert!((d - 9564.0).abs() < 30.0, "0.1° of longitude at 30.7°N is about 9.56 km, got {d}");
    }

    /// What is written for a report is the view's JSON, byte for byte: places inside
    /// and outside the county, in and out of the fence (its events and memberships),
    /// with names that need escaping.
    #[test]
    fn the_wire_enrichment_is_the_views_json() {
        let (mut map, _) = CountyMap::parse(&crate::map::tests::mini());
        map.townships[0].name = "城关镇 \"东\" \\ \u{1}".into();
        map.posts[1].name = "派出所\n二".into();
        map.fences[0].name = "学校 \"一\"".into();
        let e = Enricher::new(&map);
        let mut track = DeviceTrack::default();
        let (mut events_seen, mut inside_seen) = (0, 0);
        for i in 0..400 {
            // A walk across both townships, through the school fence and out of the county.
            let lon = 106.95 + f64::from(i % 100) * 0.007;
            let lat = 30.69 + f64::from(i / 100) * 0.003;
            let reading = Reading {
                position: p(lon, lat),
                time_ms: i64::from(i) * 60_000,
                recv_ms: i64::from(i) * 60_000,
                accuracy_m: None,
                mock: false,
            };
            let done = process_reading(&e, &JumpFilter::default(), &mut track, reading);
            let view = serde_json::to_string(&e.view(&done.enrichment, &track.fences, &done.fence_events)).unwrap();
            let wire = serde_json::to_string(&e.wire(&done.enrichment, &track.fences, &done.fence_events)).unwrap();
            assert_eq!(wire, view);
            events_seen += done.fence_events.len();
            inside_seen += usize::from(!track.fences.is_empty());
        }
        assert!(events_seen > 0 && inside_seen > 0, "the walk goes through the fence");
    }

    #[test]
    fn process_marks_jumps_and_fires_fences_only_for_trusted_fixes() {
        let e = enricher();
        let filter = JumpFilter::default();
        let mut track = DeviceTrack::default();
        let outside = process(&e, &filter, &mut track, p(107.08, 30.70), 0, 0, Some(5.0));
        assert!(outside.trusted() && outside.fence_events.is_empty());
        let entered = process(&e, &filter, &mut track, p(107.10, 30.70), 60_000, 60_000, Some(5.0));
        assert_eq!(entered.fence_events.iter().map(|f| f.detect.as_str()).collect::<Vec<_>>(), ["enter"]);
        // 25 km in 10 s: marked, and the device stays inside the fence.
        let jump = process(&e, &filter, &mut track, p(107.35, 30.70), 70_000, 70_000, Some(5.0));
        assert_eq!(jump.flags & flags::JUMP, flags::JUMP);
        assert!(jump.fence_events.is_empty());
        assert_eq!(track.fences.len(), 1);
        let outside_county = process(&e, &filter, &mut track, p(107.1001, 30.7001), 80_000, 80_000, None);
        assert!(outside_county.trusted());
    }

    /// A track rebuilt from a stored state by replaying the stored fixes after it (their
    /// flags as decided then) is the track the fixes left when they came in, whatever
    /// the fixes were: trusted, a jump and its confirmation, dated ahead, mocked, out of
    /// order, into a fence and out of it, a dwell.
    #[test]
    fn replaying_stored_fixes_on_a_stored_state_gives_the_track_they_left() {
        let e = enricher();
        let filter = JumpFilter::default();
        let reading = |lon, t_ms, recv_ms, mock| Reading {
            position: p(lon, 30.70),
            time_ms: t_ms,
            recv_ms,
            accuracy_m: Some(5.0),
            mock,
        };
        let fixes = [
            reading(107.08, 0, 0, false),
            reading(107.10, 60_000, 60_000, false),     // into the school fence
            reading(107.35, 70_000, 70_000, false),     // a jump: marked
            reading(107.1001, 80_000, 80_000, false),   // back near: trusted again
            reading(107.1002, 900_000, 90_000, false),  // dated ahead of the clock
            reading(107.1003, 95_000, 95_000, true),    // a mock location
            reading(107.1004, 50_000, 100_000, false),  // out of order
            reading(107.1005, 700_000, 700_000, false), // a dwell in the fence
            reading(107.08, 760_000, 760_000, false),   // out of the fence
            reading(107.30, 770_000, 770_000, false),   // a jump...
            reading(107.3001, 780_000, 780_000, false), // ...confirmed
        ];
        let mut live = DeviceTrack::default();
        let done: Vec<(Fix, u32, DeviceTrack)> = fixes
            .iter()
            .map(|r| {
                let flags = process_reading(&e, &filter, &mut live, *r).flags;
                (Fix { position: r.position, time_ms: r.time_ms }, flags, live.clone())
            })
            .collect();
        let kinds: u32 = done.iter().fold(0, |all, (_, f, _)| all | f);
        for f in [flags::JUMP, flags::AHEAD_OF_CLOCK, flags::MOCK, flags::OUT_OF_ORDER] {
            assert_eq!(kinds & f, f, "the fixes cover {:?}", flags::names(f));
        }
        assert!(done[7].2.fences.iter().any(|m| m.dwell_fired), "a dwell is among them");
        for stored in 0..done.len() {
            let mut rebuilt = done[stored].2.clone();
            for (fix, flags, _) in &done[stored + 1..] {
                replay(&e, &mut rebuilt, *fix, *flags);
            }
            assert_eq!(rebuilt, live, "from the state stored after fix {stored}");
        }
        let mut from_nothing = DeviceTrack::default();
        for (fix, flags, _) in &done {
            replay(&e, &mut from_nothing, *fix, *flags);
        }
        assert_eq!(from_nothing, live, "from no stored state at all");
    }

    /// One fix dated nine minutes ahead of the server's clock must not freeze the unit:
    /// it is marked and the real fixes after it are trusted, in order, and move it.
    #[test]
    fn a_fix_dated_ahead_of_the_clock_does_not_freeze_the_unit() {
        let e = enricher();
        let filter = JumpFilter::default();
        let mut track = DeviceTrack::default();
        let first = process(&e, &filter, &mut track, p(107.08, 30.70), 0, 0, Some(5.0));
        assert!(first.trusted());
        let ahead = process(&e, &filter, &mut track, p(107.0801, 30.70), 540_000, 10_000, Some(5.0));
        assert_eq!(ahead.flags & flags::AHEAD_OF_CLOCK, flags::AHEAD_OF_CLOCK);
        assert!(!ahead.trusted());
        for i in 1..=12 {
            let t = 10_000 + i * 10_000;
            let real = process(&e, &filter, &mut track, p(107.08 + i as f64 * 0.0001, 30.70), t, t, Some(5.0));
            assert_eq!(real.flags, 0, "real fix {i} after the one ahead: {:?}", flags::names(real.flags));
        }
        assert_eq!(track.last_trusted.map(|f| f.time_ms), Some(130_000));
        // Within the allowed skew a fix is trusted as usual.
        let skewed = process(&e, &filter, &mut track, p(107.0813, 30.70), 170_000, 140_000, Some(5.0));
        assert!(skewed.trusted());
    }

    /// A mock location is kept and named, but neither moves the unit nor fires a fence
    /// nor becomes the marked fix that would confirm a jump to it.
    #[test]
    fn a_mocked_fix_is_marked_and_moves_nothing() {
        let e = enricher();
        let filter = JumpFilter::default();
        let mut track = DeviceTrack::default();
        assert!(process(&e, &filter, &mut track, p(107.08, 30.70), 0, 0, Some(5.0)).trusted());
        let before = track.clone();
        let reading = |lon: f64, t: i64| Reading {
            position: p(lon, 30.70),
            time_ms: t,
            recv_ms: t,
            accuracy_m: None,
            mock: true,
        };
        let mocked = process_reading(&e, &filter, &mut track, reading(107.10, 60_000));
        assert_eq!(flags::names(mocked.flags), ["mock"]);
        assert!(!mocked.trusted() && mocked.fence_events.is_empty());
        assert_eq!(track, before, "the mocked fix changed the track");
        let real = process_reading(&e, &filter, &mut track, Reading { mock: false, ..reading(107.0801, 70_000) });
        assert_eq!(real.flags, 0);
    }
}
