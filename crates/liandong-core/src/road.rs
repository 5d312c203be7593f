//! A routable road graph built from the map's `roads` layer: nodes at line vertices,
//! an edge between each pair of consecutive vertices, travel times by road class,
//! positions snapped to the nearest edge, time-optimal routes (A*), travel times from or
//! to one place (Dijkstra, for dispatch) and travel-time matrices (for the patrol
//! planner).
//!
//! The graph is petgraph's; routes are petgraph's `astar`. Searches run on a `SearchView`:
//! the graph as seen by one query, with two virtual nodes for the start and the end
//! snapped onto their edges. A route therefore begins and ends mid-edge, with the
//! partial edges counted, while the graph itself is shared and never changed.
//!
//! Travel times from one place and the planner's matrices use the `dijkstra` below, over
//! the same view, rather than petgraph's: that one cannot stop at a time bound (it
//! always settles the whole component) and keeps its scores in a hash map. On the
//! 100,000-edge benchmark grid (`benches/road.rs`, 2 cores) petgraph's took 27.5 ms for
//! the nodes within 10 minutes of a place and 34 ms for all of them; this one 0.6–0.7 ms
//! and 15–17 ms, and a 30-waypoint matrix fell from 13 ms to 4.5 ms.
//!
//! fast_paths (contraction hierarchies) answered county-wide queries on the same grid
//! in 21 µs against A*'s 2.6–4 ms, but needs 2.5 s of preparation at every map load
//! and has no bounded one-to-many search; the planner's matrices and dispatch do not
//! need it.
//!
//! Lines are joined only where they share a vertex (equal after rounding to 1e-7°,
//! about a centimetre). Two lines that cross without a common vertex do not meet, as a
//! bridge does not meet the road beneath it; the roads layer must put a vertex at every
//! junction (OpenStreetMap ways do).
//!
//! Lengths are haversine metres, speeds km/h in the configuration and m/s inside, times
//! seconds. As everywhere in this crate, the segment R-tree is built in a local metric
//! projection (rstar is planar) and distances are reported in haversine metres.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use fixedbitset::FixedBitSet;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::{Data, EdgeRef, GraphBase, GraphRef, IntoEdgeReferences, IntoEdges, IntoNeighbors, Visitable};
use petgraph::{Directed, Direction};
use rstar::primitives::{GeomWithData, Line as RLine};
use rstar::RTree;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::map::{str_prop, CountyMap, Line};
use crate::spatial::LocalProjection;
use crate::Position;

/// The synthetic benchmark grid, a fixture kept out of the production API: only the
/// crate's own tests and, through the `bench-fixtures` feature, its benchmarks and
/// integration tests can reach it.
#[cfg(any(test, feature = "bench-fixtures"))]
mod grid;
#[cfg(any(test, feature = "bench-fixtures"))]
pub use grid::GridSpec;

/// Coordinates are merged into one node when they are equal after rounding to this
/// many units per degree (1e-7°, about 1 cm; OpenStreetMap's own precision).
const MERGE_UNITS_PER_DEG: f64 = 1e7;

/// Speeds outside this range (km/h) are clamped when the graph is built, so that a
/// configuration error cannot make a travel time infinite or negative.
const MIN_KPH: f64 = 1.0;
const MAX_KPH: f64 = 300.0;

/// A snap point closer than this to an end of its edge is put on that end (metres).
const SNAP_TO_VERTEX_M: f64 = 1e-3;

/// Planning speeds by road class, in km/h: what a patrol car averages on such a road,
/// not the legal limit. Classes are OpenStreetMap `highway` values (a `_link` counts as
/// its road) and the classes of the Dazhu demo map (`county` 县道 = secondary,
/// `township` 乡道 = tertiary, `village` 村道 = residential).
///
/// A road whose class is none of these travels at its own `speed_kph` property when it
/// has one, else at [`RoadSpeeds::other_kph`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoadSpeeds {
    /// `motorway` (高速公路): 100.
    pub motorway_kph: f64,
    /// `trunk` (first-class highway, 一级公路): 80.
    pub trunk_kph: f64,
    /// `primary` (national and provincial roads, 国道/省道): 70.
    pub primary_kph: f64,
    /// `secondary`, `county` (县道): 60.
    pub secondary_kph: f64,
    /// `tertiary`, `township` (乡道): 40.
    pub tertiary_kph: f64,
    /// `unclassified` (minor public roads): 30.
    pub unclassified_kph: f64,
    /// `residential`, `village` (村道, streets): 30.
    pub residential_kph: f64,
    /// `service`, `living_street` (yards, car parks, shared streets): 15.
    pub service_kph: f64,
    /// `track` (farm and forest tracks): 15.
    pub track_kph: f64,
    /// Any other class without a `speed_kph` of its own: 30.
    pub other_kph: f64,
    /// Off the road, in a straight line between a position and its snap point: 5
    /// (walking: the last metres to a door are on foot).
    pub access_kph: f64,
    /// Set by [`RoadSpeeds::on_foot`], never by configuration: every road is travelled
    /// at most this fast and both ways, one-way or not (a patrol on foot).
    #[serde(skip)]
    pub foot_kph: Option<f64>,
}

impl Default for RoadSpeeds {
    fn default() -> Self {
        RoadSpeeds {
            motorway_kph: 100.0,
            trunk_kph: 80.0,
            primary_kph: 70.0,
            secondary_kph: 60.0,
            tertiary_kph: 40.0,
            unclassified_kph: 30.0,
            residential_kph: 30.0,
            service_kph: 15.0,
            track_kph: 15.0,
            other_kph: 30.0,
            access_kph: 5.0,
            foot_kph: None,
        }
    }
}

/// A speed in the table that is not a positive, finite number of km/h.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("road speed {field} must be a positive number of km/h, got {value}")]
pub struct SpeedError {
    pub field: &'static str,
    pub value: f64,
}

impl RoadSpeeds {
    /// The same table for a patrol on foot (or on bicycles) at `kph`: no road faster than
    /// that, and one-way roads walked both ways.
    pub fn on_foot(&self, kph: f64) -> RoadSpeeds {
        RoadSpeeds { foot_kph: Some(clamp_kph(kph)), ..self.clone() }
    }

    /// The table's entry for a road class, `None` for a class it does not know.
    pub fn class_kph(&self, class: &str) -> Option<f64> {
        let base = class.strip_suffix("_link").unwrap_or(class);
        Some(match base {
            "motorway" => self.motorway_kph,
            "trunk" => self.trunk_kph,
            "primary" => self.primary_kph,
            "secondary" | "county" => self.secondary_kph,
            "tertiary" | "township" => self.tertiary_kph,
            "unclassified" => self.unclassified_kph,
            "residential" | "village" => self.residential_kph,
            "service" | "living_street" => self.service_kph,
            "track" => self.track_kph,
            _ => return None,
        })
    }

    /// The speed of a road with these properties (`class`, else `speed_kph`, else
    /// [`RoadSpeeds::other_kph`]), clamped to 1–300 km/h.
    pub fn road_kph(&self, properties: &serde_json::Map<String, Value>) -> f64 {
        let kph = str_prop(properties, "class")
            .and_then(|c| self.class_kph(c))
            .or_else(|| properties.get("speed_kph").and_then(Value::as_f64))
            .unwrap_or(self.other_kph);
        clamp_kph(self.foot_kph.map_or(kph, |foot| kph.min(foot)))
    }

    /// Off-road speed: [`RoadSpeeds::access_kph`], no faster than on foot.
    fn access_kph(&self) -> f64 {
        clamp_kph(self.foot_kph.map_or(self.access_kph, |foot| self.access_kph.min(foot)))
    }

    /// Every entry must be a positive, finite number; the first that is not is named.
    pub fn validate(&self) -> Result<(), SpeedError> {
        let fields = [
            ("motorway_kph", self.motorway_kph),
            ("trunk_kph", self.trunk_kph),
            ("primary_kph", self.primary_kph),
            ("secondary_kph", self.secondary_kph),
            ("tertiary_kph", self.tertiary_kph),
            ("unclassified_kph", self.unclassified_kph),
            ("residential_kph", self.residential_kph),
            ("service_kph", self.service_kph),
            ("track_kph", self.track_kph),
            ("other_kph", self.other_kph),
            ("access_kph", self.access_kph),
        ];
        match fields.into_iter().find(|(_, v)| !(v.is_finite() && *v > 0.0)) {
            Some((field, value)) => Err(SpeedError { field, value }),
            None => Ok(()),
        }
    }
}

fn clamp_kph(kph: f64) -> f64 {
    if kph.is_nan() {
        MIN_KPH
    } else {
        kph.clamp(MIN_KPH, MAX_KPH)
    }
}

/// Which ways a road may be driven, from its `oneway` property: `yes`/`true`/`1` (or
/// JSON `true`) along the line's direction, `-1`/`reverse` against it, anything else
/// both ways (OpenStreetMap's `oneway` tag).
fn directions(properties: &serde_json::Map<String, Value>) -> (bool, bool) {
    match properties.get("oneway") {
        Some(Value::Bool(true)) => (true, false),
        Some(Value::String(s)) => match s.as_str() {
            "yes" | "true" | "1" => (true, false),
            "-1" | "reverse" => (false, true),
            _ => (true, true),
        },
        Some(Value::Number(n)) if n.as_i64() == Some(1) => (true, false),
        Some(Value::Number(n)) if n.as_i64() == Some(-1) => (false, true),
        _ => (true, true),
    }
}

/// A node of the graph: a road vertex, shared by every line through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn ix(self) -> NodeIndex<u32> {
        NodeIndex::new(self.index())
    }
}

/// An edge of the graph: the segment between two consecutive vertices of one road.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeId(u32);

impl EdgeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One road segment. It runs from `a` to `b` in the direction its line was drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoadEdge {
    pub a: NodeId,
    pub b: NodeId,
    /// Haversine length of the segment.
    pub length_m: f64,
    pub speed_mps: f64,
    pub travel_s: f64,
    /// Index of the road (the layer's line) the segment belongs to; see [`RoadGraph::road_id`].
    pub road: u32,
    /// Whether it may be driven from `a` to `b`.
    pub forward: bool,
    /// Whether it may be driven from `b` to `a`.
    pub backward: bool,
}

/// The weight of one directed arc of petgraph's graph: one per allowed direction of a
/// [`RoadEdge`].
#[derive(Debug, Clone, Copy)]
struct Arc {
    edge: u32,
    travel_s: f64,
}

/// A position placed on its nearest road segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// The position that was snapped.
    pub from: Position,
    pub edge: EdgeId,
    /// Where on the edge: 0 at its `a` end, 1 at its `b` end (along the drawn segment).
    pub fraction: f64,
    /// The nearest point of the edge.
    pub position: Position,
    /// Haversine metres from `from` to `position`.
    pub distance_m: f64,
}

/// The straight line between a position and its snap point, walked or driven off-road
/// at [`RoadSpeeds::access_kph`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessLeg {
    pub from: Position,
    pub to: Position,
    pub distance_m: f64,
    pub travel_s: f64,
}

/// A time-optimal route between two positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Door to door: both access legs and the road part.
    pub travel_s: f64,
    /// On the road, from the start's snap point to the end's.
    pub road_s: f64,
    /// On the road, partial edges at both ends counted.
    pub length_m: f64,
    /// From the start position to its snap point.
    pub start: AccessLeg,
    /// From the end's snap point to the end position.
    pub end: AccessLeg,
    /// The road part, from the start's snap point through every node passed to the
    /// end's snap point (consecutive duplicates removed).
    pub geometry: Vec<Position>,
    /// The nodes passed, in order.
    pub nodes: Vec<NodeId>,
}

/// Travel times between one origin and every node reached within a bound, from
/// [`RoadGraph::travel_times_from`] (leaving the origin) or
/// [`RoadGraph::travel_times_to`] (arriving at it). Times are door to door: they
/// include the origin's access leg.
#[derive(Debug, Clone)]
pub struct TravelTimes {
    /// The origin on its edge.
    pub origin: Snap,
    /// The bound the search was asked for, seconds.
    pub max_s: f64,
    /// `Outgoing` when the times are from the origin, `Incoming` when they are to it.
    dir: Direction,
    /// Seconds on the road between the origin's snap point and each node, by node
    /// index; infinite where the node is beyond the bound or unreachable.
    road_s: Vec<f64>,
    access_s: f64,
}

impl TravelTimes {
    /// Seconds between the origin and a node, `None` beyond the bound or unreachable.
    pub fn node_s(&self, node: NodeId) -> Option<f64> {
        self.road_s.get(node.index()).map(|s| s + self.access_s).filter(|s| self.within(*s))
    }

    /// Every node within the bound with its seconds, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, f64)> + '_ {
        self.road_s
            .iter()
            .enumerate()
            .map(|(n, s)| (NodeId(n as u32), s + self.access_s))
            .filter(|(_, s)| self.within(*s))
    }

    /// How many nodes are within the bound.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Door-to-door seconds between the origin and another position (its snap, the
    /// partial edge and its access leg included); `None` beyond the bound or unreachable.
    /// The graph must be the one the times were computed on.
    pub fn at(&self, graph: &RoadGraph, p: Position) -> Option<f64> {
        let snap = graph.snap(p)?;
        self.at_snap(graph, &snap)
    }

    /// [`TravelTimes::at`] for a position already snapped.
    pub fn at_snap(&self, graph: &RoadGraph, snap: &Snap) -> Option<f64> {
        // Arcs between the other snap and its edge's ends, in the search's direction:
        // into it when the times are from the origin, out of it when they are to it.
        let arcs = if self.dir == Direction::Outgoing { graph.arrive(snap) } else { graph.leave(snap) };
        let via_nodes = arcs.into_iter().flatten().map(|a| self.road_s[a.node.index()] + a.travel_s);
        let direct = if self.dir == Direction::Outgoing {
            graph.direct(&self.origin, snap)
        } else {
            graph.direct(snap, &self.origin)
        };
        let road_s = via_nodes.chain(direct.map(|(s, _)| s)).min_by(f64::total_cmp)?;
        let total_s = self.access_s + road_s + graph.access_s(snap.distance_m);
        self.within(total_s).then_some(total_s)
    }

    /// Reached (finite) and within the bound (which may be infinite).
    fn within(&self, total_s: f64) -> bool {
        total_s.is_finite() && total_s <= self.max_s
    }
}

/// An arc between a snap point and one end of its edge.
#[derive(Debug, Clone, Copy)]
struct SnapArc {
    node: NodeIndex<u32>,
    travel_s: f64,
    length_m: f64,
}

/// The road network as a directed graph (one arc per allowed direction of each
/// segment) with an R-tree of its segments for snapping.
#[derive(Debug, Clone)]
pub struct RoadGraph {
    graph: DiGraph<Position, Arc, u32>,
    edges: Vec<RoadEdge>,
    road_ids: Vec<String>,
    segments: RTree<GeomWithData<RLine<[f64; 2]>, u32>>,
    proj: LocalProjection,
    /// The fastest edge's speed: A*'s heuristic divides distances by it, so that it
    /// never overestimates (admissible).
    max_speed_mps: f64,
    access_mps: f64,
}

impl RoadGraph {
    /// The graph of a map's `roads` layer.
    pub fn from_map(map: &CountyMap, speeds: &RoadSpeeds) -> RoadGraph {
        RoadGraph::from_roads(&map.roads, speeds)
    }

    /// The graph of a set of road lines. Vertices that are not valid WGS 84 positions
    /// are skipped (a parsed map has none).
    pub fn from_roads(roads: &[Line], speeds: &RoadSpeeds) -> RoadGraph {
        let n_vertices: usize = roads.iter().map(|r| r.line.0.len()).sum();
        let lat0 = if n_vertices == 0 {
            30.0
        } else {
            roads.iter().flat_map(|r| &r.line.0).map(|c| c.y).sum::<f64>() / n_vertices as f64
        };
        let proj = LocalProjection::at_lat(lat0);
        let mut graph: DiGraph<Position, Arc, u32> = DiGraph::with_capacity(n_vertices, 2 * n_vertices);
        let mut by_key: HashMap<(i64, i64), NodeIndex<u32>> = HashMap::with_capacity(n_vertices);
        let mut edges = Vec::with_capacity(n_vertices);
        let mut segments = Vec::with_capacity(n_vertices);
        let mut arcs: Vec<(NodeIndex<u32>, NodeIndex<u32>, Arc)> = Vec::with_capacity(2 * n_vertices);
        let mut road_ids = Vec::with_capacity(roads.len());
        let mut max_speed_mps: f64 = 0.0;
        for road in roads {
            let road_ix = road_ids.len() as u32;
            road_ids.push(road.id.clone());
            let speed_mps = speeds.road_kph(&road.properties) / 3.6;
            let (forward, backward) =
                if speeds.foot_kph.is_some() { (true, true) } else { directions(&road.properties) };
            let mut prev: Option<NodeIndex<u32>> = None;
            for c in &road.line.0 {
                let Ok(p) = Position::new(c.x, c.y) else {
                    prev = None;
                    continue;
                };
                let key =
                    ((p.lon() * MERGE_UNITS_PER_DEG).round() as i64, (p.lat() * MERGE_UNITS_PER_DEG).round() as i64);
                let node = *by_key.entry(key).or_insert_with(|| graph.add_node(p));
                if let Some(a) = prev.filter(|a| *a != node) {
                    let (pa, pb) = (graph[a], graph[node]);
                    let length_m = pa.haversine_m(pb);
                    let travel_s = length_m / speed_mps;
                    let edge = edges.len() as u32;
                    edges.push(RoadEdge {
                        a: NodeId(a.index() as u32),
                        b: NodeId(node.index() as u32),
                        length_m,
                        speed_mps,
                        travel_s,
                        road: road_ix,
                        forward,
                        backward,
                    });
                    if forward {
                        arcs.push((a, node, Arc { edge, travel_s }));
                    }
                    if backward {
                        arcs.push((node, a, Arc { edge, travel_s }));
                    }
                    let (qa, qb) = (proj.project(pa.lon(), pa.lat()), proj.project(pb.lon(), pb.lat()));
                    segments.push(GeomWithData::new(RLine::new(qa, qb), edge));
                    max_speed_mps = max_speed_mps.max(speed_mps);
                }
                prev = Some(node);
            }
        }
        // Added in order of their source, a node's outgoing arcs lie side by side in
        // petgraph's edge list, so a search expanding it reads one or two cache lines
        // rather than one per arc.
        arcs.sort_by_key(|(a, _, _)| *a);
        for (a, b, arc) in arcs {
            graph.add_edge(a, b, arc);
        }
        RoadGraph {
            graph,
            edges,
            road_ids,
            segments: RTree::bulk_load(segments),
            proj,
            max_speed_mps: if max_speed_mps > 0.0 { max_speed_mps } else { 1.0 },
            access_mps: speeds.access_kph() / 3.6,
        }
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Road segments (each counted once, whichever ways it may be driven).
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    pub fn node_position(&self, node: NodeId) -> Position {
        self.graph[node.ix()]
    }

    pub fn edge(&self, edge: EdgeId) -> &RoadEdge {
        &self.edges[edge.index()]
    }

    /// Every road segment with its id, in id order.
    pub fn edges(&self) -> impl ExactSizeIterator<Item = (EdgeId, &RoadEdge)> + '_ {
        self.edges.iter().enumerate().map(|(i, e)| (EdgeId(i as u32), e))
    }

    /// The id of the road (feature of the roads layer) a segment belongs to.
    pub fn road_id(&self, edge: EdgeId) -> &str {
        &self.road_ids[self.edges[edge.index()].road as usize]
    }

    /// The point of the nearest road segment, `None` when the graph has no edge.
    /// Segments are ranked by planar distance in the local projection (within a
    /// fraction of a percent over a county); the distance reported is haversine.
    pub fn snap(&self, p: Position) -> Option<Snap> {
        let q = self.proj.project(p.lon(), p.lat());
        let seg = self.segments.nearest_neighbor(&q)?;
        let [a, b] = [seg.geom().from, seg.geom().to];
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len_2 = dx * dx + dy * dy;
        let fraction =
            if len_2 > 0.0 { (((q[0] - a[0]) * dx + (q[1] - a[1]) * dy) / len_2).clamp(0.0, 1.0) } else { 0.0 };
        let edge = &self.edges[seg.data as usize];
        let (pa, pb) = (self.graph[edge.a.ix()], self.graph[edge.b.ix()]);
        // The projection is linear in lon and lat, so the fraction carries over.
        let mid =
            Position::new(pa.lon() + fraction * (pb.lon() - pa.lon()), pa.lat() + fraction * (pb.lat() - pa.lat()))
                .expect("a point between two valid positions is valid");
        // Within a millimetre of a vertex is at the vertex: a route from a node then
        // starts exactly there, whatever the rounding of the fraction.
        let (fraction, position) = if mid.haversine_m(pa) < SNAP_TO_VERTEX_M {
            (0.0, pa)
        } else if mid.haversine_m(pb) < SNAP_TO_VERTEX_M {
            (1.0, pb)
        } else {
            (fraction, mid)
        };
        Some(Snap { from: p, edge: EdgeId(seg.data), fraction, position, distance_m: p.haversine_m(position) })
    }

    /// The time-optimal route from one position to another (A*), starting and ending
    /// at their snap points; `None` when either cannot be snapped or no road leads
    /// from one to the other.
    pub fn route(&self, from: Position, to: Position) -> Option<Route> {
        self.route_between(&self.snap(from)?, &self.snap(to)?)
    }

    /// [`RoadGraph::route`] between positions already snapped.
    pub fn route_between(&self, start: &Snap, end: &Snap) -> Option<Route> {
        let n = self.graph.node_count();
        let (source, target) = (NodeIndex::new(n), NodeIndex::new(n + 1));
        let mut source_arcs: Vec<VArc> =
            self.leave(start).into_iter().flatten().map(|a| VArc::new(source, a.node, a.travel_s)).collect();
        if let Some((s, _)) = self.direct(start, end) {
            source_arcs.push(VArc::new(source, target, s));
        }
        let target_arcs: Vec<VArc> =
            self.arrive(end).into_iter().flatten().map(|a| VArc::new(a.node, target, a.travel_s)).collect();
        let view = SearchView {
            graph: &self.graph,
            dir: Direction::Outgoing,
            source,
            target,
            source_arcs: &source_arcs,
            target_arcs: &target_arcs,
        };
        // Admissible: no path is shorter than the great circle, and none is driven
        // faster than the fastest road.
        let goal = end.position;
        let max_speed_mps = self.max_speed_mps;
        let estimate_s = |n: NodeIndex<u32>| {
            if n == target {
                0.0
            } else if n == source {
                start.position.haversine_m(goal) / max_speed_mps
            } else {
                self.graph[n].haversine_m(goal) / max_speed_mps
            }
        };
        let (road_s, path) = petgraph::algo::astar(view, source, |n| n == target, |e| e.travel_s, estimate_s)?;
        Some(self.assemble(start, end, road_s, &path))
    }

    /// The route's geometry and length from the node path A* found.
    fn assemble(&self, start: &Snap, end: &Snap, road_s: f64, path: &[NodeIndex<u32>]) -> Route {
        let inner = &path[1..path.len() - 1];
        let mut length_m = 0.0;
        if let (Some(first), Some(last)) = (inner.first(), inner.last()) {
            let leave = self.leave(start).into_iter().flatten().filter(|a| a.node == *first);
            length_m += leave.min_by(|x, y| x.travel_s.total_cmp(&y.travel_s)).map_or(0.0, |a| a.length_m);
            for w in inner.windows(2) {
                let arcs = self.graph.edges_connecting(w[0], w[1]);
                let best = arcs.min_by(|x, y| x.weight().travel_s.total_cmp(&y.weight().travel_s));
                length_m += best.map_or(0.0, |e| self.edges[e.weight().edge as usize].length_m);
            }
            let arrive = self.arrive(end).into_iter().flatten().filter(|a| a.node == *last);
            length_m += arrive.min_by(|x, y| x.travel_s.total_cmp(&y.travel_s)).map_or(0.0, |a| a.length_m);
        } else {
            length_m = self.direct(start, end).map_or(0.0, |(_, m)| m);
        }
        let mut geometry = Vec::with_capacity(inner.len() + 2);
        for p in std::iter::once(start.position).chain(inner.iter().map(|n| self.graph[*n])).chain([end.position]) {
            if geometry.last() != Some(&p) {
                geometry.push(p);
            }
        }
        let start_leg = self.access_leg(start.from, start.position, start.distance_m);
        let end_leg = self.access_leg(end.position, end.from, end.distance_m);
        Route {
            travel_s: start_leg.travel_s + road_s + end_leg.travel_s,
            road_s,
            length_m,
            start: start_leg,
            end: end_leg,
            geometry,
            nodes: inner.iter().map(|n| NodeId(n.index() as u32)).collect(),
        }
    }

    /// Travel times from a position to every node within `max_s` seconds (Dijkstra),
    /// access leg included; `None` when the position cannot be snapped.
    pub fn travel_times_from(&self, from: Position, max_s: f64) -> Option<TravelTimes> {
        Some(self.travel_times(self.snap(from)?, max_s, Direction::Outgoing))
    }

    /// Travel times from every node within `max_s` seconds to a position: for dispatch,
    /// which unit reaches an incident first. The same as
    /// [`RoadGraph::travel_times_from`] but on one-way roads.
    pub fn travel_times_to(&self, to: Position, max_s: f64) -> Option<TravelTimes> {
        Some(self.travel_times(self.snap(to)?, max_s, Direction::Incoming))
    }

    fn travel_times(&self, origin: Snap, max_s: f64, dir: Direction) -> TravelTimes {
        let n = self.graph.node_count();
        let source = NodeIndex::new(n);
        let arcs = if dir == Direction::Outgoing { self.leave(&origin) } else { self.arrive(&origin) };
        let source_arcs: Vec<VArc> =
            arcs.into_iter().flatten().map(|a| VArc::new(source, a.node, a.travel_s)).collect();
        let view = SearchView {
            graph: &self.graph,
            dir,
            source,
            target: NodeIndex::new(n + 1),
            source_arcs: &source_arcs,
            target_arcs: &[],
        };
        let access_s = self.access_s(origin.distance_m);
        let mut road_s = dijkstra(view, max_s - access_s, |_| false);
        road_s.truncate(n);
        TravelTimes { origin, max_s, dir, road_s, access_s }
    }

    /// Door-to-door seconds from each position to each other (`[from][to]`), for the
    /// patrol planner's few dozen waypoints: one Dijkstra per origin, stopped once every
    /// other waypoint's edge is settled. `None` where a position cannot be snapped or
    /// no road leads there; the diagonal is 0.
    pub fn travel_time_matrix(&self, points: &[Position]) -> Vec<Vec<Option<f64>>> {
        let snaps: Vec<Option<Snap>> = points.iter().map(|p| self.snap(*p)).collect();
        let ends: Vec<Vec<SnapArc>> = snaps
            .iter()
            .map(|s| s.as_ref().map_or_else(Vec::new, |s| self.arrive(s).into_iter().flatten().collect()))
            .collect();
        let n = self.graph.node_count();
        let source = NodeIndex::new(n);
        let mut matrix = vec![vec![None; points.len()]; points.len()];
        for (i, from) in snaps.iter().enumerate() {
            let Some(from) = from else { continue };
            let source_arcs: Vec<VArc> =
                self.leave(from).into_iter().flatten().map(|a| VArc::new(source, a.node, a.travel_s)).collect();
            let view = SearchView {
                graph: &self.graph,
                dir: Direction::Outgoing,
                source,
                target: NodeIndex::new(n + 1),
                source_arcs: &source_arcs,
                target_arcs: &[],
            };
            // Dijkstra settles nodes in order of time; once every waypoint's edge ends
            // are settled, their times are final and the search stops.
            let mut pending = FixedBitSet::with_capacity(n + 2);
            ends.iter().flatten().for_each(|a| pending.insert(a.node.index()));
            let mut left = pending.count_ones(..);
            let road_s = dijkstra(view, f64::INFINITY, |node| {
                if pending.contains(node.index()) {
                    pending.set(node.index(), false);
                    left -= 1;
                }
                left == 0
            });
            for (j, to) in snaps.iter().enumerate() {
                let Some(to) = to else { continue };
                if i == j {
                    matrix[i][j] = Some(0.0);
                    continue;
                }
                let via = ends[j].iter().map(|a| road_s[a.node.index()] + a.travel_s).filter(|s| s.is_finite());
                let road_s = via.chain(self.direct(from, to).map(|(s, _)| s)).min_by(f64::total_cmp);
                matrix[i][j] = road_s.map(|s| self.access_s(from.distance_m) + s + self.access_s(to.distance_m));
            }
        }
        matrix
    }

    fn access_s(&self, distance_m: f64) -> f64 {
        distance_m / self.access_mps
    }

    fn access_leg(&self, from: Position, to: Position, distance_m: f64) -> AccessLeg {
        AccessLeg { from, to, distance_m, travel_s: self.access_s(distance_m) }
    }

    /// The partial edges from a snap point to the ends its edge may be driven to.
    fn leave(&self, s: &Snap) -> [Option<SnapArc>; 2] {
        let e = &self.edges[s.edge.index()];
        [e.forward.then(|| self.snap_arc(s, e.b)), e.backward.then(|| self.snap_arc(s, e.a))]
    }

    /// The partial edges from the ends of a snap point's edge that may be driven to it.
    fn arrive(&self, s: &Snap) -> [Option<SnapArc>; 2] {
        let e = &self.edges[s.edge.index()];
        [e.forward.then(|| self.snap_arc(s, e.a)), e.backward.then(|| self.snap_arc(s, e.b))]
    }

    fn snap_arc(&self, s: &Snap, end: NodeId) -> SnapArc {
        let length_m = self.graph[end.ix()].haversine_m(s.position);
        SnapArc { node: end.ix(), travel_s: length_m / self.edges[s.edge.index()].speed_mps, length_m }
    }

    /// Seconds and metres along a shared edge from one snap point to another, when both
    /// are on the same edge and its direction allows it.
    fn direct(&self, from: &Snap, to: &Snap) -> Option<(f64, f64)> {
        if from.edge != to.edge {
            return None;
        }
        let e = &self.edges[from.edge.index()];
        let allowed = (e.forward && from.fraction <= to.fraction) || (e.backward && from.fraction >= to.fraction);
        allowed.then(|| {
            let length_m = from.position.haversine_m(to.position);
            (length_m / e.speed_mps, length_m)
        })
    }
}

/// Dijkstra's algorithm (1959) from a view's `source`, with a binary heap and lazy
/// deletion: seconds to every node (indexed as in the view; infinite where not
/// settled), stopping at the first node beyond `max_s` or when `stop` returns true for
/// a node just settled.
fn dijkstra(view: SearchView<'_>, max_s: f64, mut stop: impl FnMut(NodeIndex<u32>) -> bool) -> Vec<f64> {
    let mut time_s = vec![f64::INFINITY; view.graph.node_count() + 2];
    let mut heap = BinaryHeap::new();
    time_s[view.source.index()] = 0.0;
    heap.push(Queued { time_s: 0.0, node: view.source });
    while let Some(Queued { time_s: s, node }) = heap.pop() {
        if s > time_s[node.index()] {
            continue; // a stale entry: the node was reached faster since
        }
        if stop(node) {
            break;
        }
        for arc in view.edges(node) {
            let t = s + arc.travel_s;
            if t <= max_s && t < time_s[arc.target.index()] {
                time_s[arc.target.index()] = t;
                heap.push(Queued { time_s: t, node: arc.target });
            }
        }
    }
    time_s
}

/// A heap entry of [`dijkstra`], ordered so that `BinaryHeap` (a max-heap) pops the
/// smallest time first.
#[derive(Debug, Clone, Copy)]
struct Queued {
    time_s: f64,
    node: NodeIndex<u32>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        other.time_s.total_cmp(&self.time_s).then_with(|| other.node.cmp(&self.node))
    }
}

/// An arc as a search sees it: a real arc of the graph (in the search's direction) or
/// one of the virtual arcs to and from the snap points.
#[derive(Debug, Clone, Copy)]
struct VArc {
    source: NodeIndex<u32>,
    target: NodeIndex<u32>,
    travel_s: f64,
    id: EdgeIndex<u32>,
}

impl VArc {
    fn new(source: NodeIndex<u32>, target: NodeIndex<u32>, travel_s: f64) -> VArc {
        VArc { source, target, travel_s, id: EdgeIndex::end() }
    }
}

impl EdgeRef for VArc {
    type NodeId = NodeIndex<u32>;
    type EdgeId = EdgeIndex<u32>;
    type Weight = f64;

    fn source(&self) -> NodeIndex<u32> {
        self.source
    }

    fn target(&self) -> NodeIndex<u32> {
        self.target
    }

    fn weight(&self) -> &f64 {
        &self.travel_s
    }

    fn id(&self) -> EdgeIndex<u32> {
        self.id
    }
}

/// The graph as one search sees it, for petgraph's algorithms: the real nodes plus a
/// virtual `source` (index `n`, the origin's snap point) and `target` (index `n + 1`),
/// with `dir` choosing whether arcs are followed forwards (`Outgoing`) or backwards
/// (`Incoming`, for times *to* a place). Nothing is copied: the view borrows the graph
/// and the query's few virtual arcs.
#[derive(Debug, Clone, Copy)]
struct SearchView<'a> {
    graph: &'a DiGraph<Position, Arc, u32>,
    dir: Direction,
    source: NodeIndex<u32>,
    target: NodeIndex<u32>,
    /// Arcs out of `source`.
    source_arcs: &'a [VArc],
    /// Arcs from real nodes into `target`.
    target_arcs: &'a [VArc],
}

/// The arcs out of one node of a [`SearchView`]: its real arcs, then its virtual ones.
struct VEdges<'a> {
    node: NodeIndex<u32>,
    dir: Direction,
    real: Option<petgraph::graph::Edges<'a, Arc, Directed, u32>>,
    virtual_arcs: std::slice::Iter<'a, VArc>,
}

impl Iterator for VEdges<'_> {
    type Item = VArc;

    fn next(&mut self) -> Option<VArc> {
        if let Some(e) = self.real.as_mut().and_then(Iterator::next) {
            // Incoming arcs keep their own direction; the search walks them backwards.
            let other = if self.dir == Direction::Outgoing { e.target() } else { e.source() };
            return Some(VArc { source: self.node, target: other, travel_s: e.weight().travel_s, id: e.id() });
        }
        let node = self.node;
        self.virtual_arcs.find(|a| a.source == node).copied()
    }
}

impl GraphBase for SearchView<'_> {
    type NodeId = NodeIndex<u32>;
    type EdgeId = EdgeIndex<u32>;
}

impl GraphRef for SearchView<'_> {}

impl Data for SearchView<'_> {
    type NodeWeight = Position;
    type EdgeWeight = f64;
}

impl<'a> IntoEdges for SearchView<'a> {
    type Edges = VEdges<'a>;

    fn edges(self, node: NodeIndex<u32>) -> VEdges<'a> {
        if node == self.source {
            VEdges { node, dir: self.dir, real: None, virtual_arcs: self.source_arcs.iter() }
        } else if node == self.target {
            VEdges { node, dir: self.dir, real: None, virtual_arcs: [].iter() }
        } else {
            let real = Some(self.graph.edges_directed(node, self.dir));
            VEdges { node, dir: self.dir, real, virtual_arcs: self.target_arcs.iter() }
        }
    }
}

fn arc_target(a: VArc) -> NodeIndex<u32> {
    a.target
}

impl<'a> IntoNeighbors for SearchView<'a> {
    type Neighbors = std::iter::Map<VEdges<'a>, fn(VArc) -> NodeIndex<u32>>;

    fn neighbors(self, node: NodeIndex<u32>) -> Self::Neighbors {
        self.edges(node).map(arc_target as fn(VArc) -> NodeIndex<u32>)
    }
}

impl IntoEdgeReferences for SearchView<'_> {
    type EdgeRef = VArc;
    type EdgeReferences = std::vec::IntoIter<VArc>;

    /// Every arc of the view; petgraph's searches do not call this, so it collects.
    fn edge_references(self) -> Self::EdgeReferences {
        let nodes = (0..self.graph.node_count()).map(NodeIndex::new).chain([self.source]);
        nodes.flat_map(|n| self.edges(n)).collect::<Vec<_>>().into_iter()
    }
}

impl Visitable for SearchView<'_> {
    type Map = FixedBitSet;

    fn visit_map(&self) -> FixedBitSet {
        FixedBitSet::with_capacity(self.graph.node_count() + 2)
    }

    fn reset_map(&self, map: &mut FixedBitSet) {
        map.clear();
        map.grow(self.graph.node_count() + 2);
    }
}

#[cfg(test)]
mod tests {
    use geo::LineString;

    use super::*;
    use crate::position::EARTH_RADIUS_M;

    /// Metres east and north of (107.2°E, 30.7°N) as a position, in the same
    /// equirectangular approximation the grid uses.
    fn at(x_m: f64, y_m: f64) -> Position {
        let deg_lat_per_m = 180.0 / (std::f64::consts::PI * EARTH_RADIUS_M);
        Position::new(107.2 + x_m * deg_lat_per_m / 30.7f64.to_radians().cos(), 30.7 + y_m * deg_lat_per_m).unwrap()
    }

    fn road(id: &str, class: &str, oneway: bool, points: &[(f64, f64)]) -> Line {
        let mut properties = serde_json::Map::new();
        properties.insert("class".into(), class.into());
        if oneway {
            properties.insert("oneway".into(), "yes".into());
        }
        let coords = points.iter().map(|&(x, y)| at(x, y).to_coord()).collect();
        Line { id: id.into(), name: id.into(), line: LineString::new(coords), properties }
    }

    /// A hand-made network (metres; speeds from the default table):
    ///
    /// ```text
    ///                C (1000, 1000)          F (6000, 2000)
    ///     primary  /   \  primary          / ^ one-way E→F, residential
    ///             /     \                /   | track G→F
    ///   A (0, 0) ——————— B (2000, 0) ——— E (4000, 0) ——track—— G (6000, 0)
    ///           residential        tertiary
    ///
    ///   X (20000, 0) ——— Y (21000, 0)   (an island)
    /// ```
    ///
    /// A→B is 2000 m on a 30 km/h street (240 s) or 2828 m on 70 km/h roads via C
    /// (145 s): the shortest path is not the fastest.
    fn hand_made() -> RoadGraph {
        RoadGraph::from_roads(&hand_made_roads(), &RoadSpeeds::default())
    }

    fn hand_made_roads() -> [Line; 6] {
        [
            road("direct", "residential", false, &[(0.0, 0.0), (2000.0, 0.0)]),
            road("detour", "primary", false, &[(0.0, 0.0), (1000.0, 1000.0), (2000.0, 0.0)]),
            road("east", "tertiary", false, &[(2000.0, 0.0), (4000.0, 0.0)]),
            road("oneway", "residential", true, &[(4000.0, 0.0), (6000.0, 2000.0)]),
            road("track", "track", false, &[(4000.0, 0.0), (6000.0, 0.0), (6000.0, 2000.0)]),
            road("island", "residential", false, &[(20000.0, 0.0), (21000.0, 0.0)]),
        ]
    }

    const A: (f64, f64) = (0.0, 0.0);
    const B: (f64, f64) = (2000.0, 0.0);
    const C: (f64, f64) = (1000.0, 1000.0);
    const E: (f64, f64) = (4000.0, 0.0);
    const F: (f64, f64) = (6000.0, 2000.0);
    const G: (f64, f64) = (6000.0, 0.0);
    const X: (f64, f64) = (20000.0, 0.0);

    /// Seconds to drive the straight legs between the points at `kph`.
    fn legs_s(kph: f64, points: &[(f64, f64)]) -> f64 {
        points.windows(2).map(|w| at(w[0].0, w[0].1).haversine_m(at(w[1].0, w[1].1))).sum::<f64>() / (kph / 3.6)
    }

    #[test]
    fn hand_made_graph_has_the_expected_shape() {
        let g = hand_made();
        // A, B, C, E, F, G, X, Y; direct, detour ×2, east, oneway, track ×2, island.
        assert_eq!((g.node_count(), g.edge_count()), (8, 8));
        // 7 two-way segments and one one-way.
        assert_eq!(g.graph.edge_count(), 15);
        let one_way: Vec<&str> =
            g.edges().filter(|(_, e)| e.forward != e.backward).map(|(id, _)| g.road_id(id)).collect();
        assert_eq!(one_way, ["oneway"]);
    }

    #[test]
    fn routes_on_the_hand_made_graph() {
        let g = hand_made();
        let primary = |p: &[(f64, f64)]| legs_s(70.0, p);
        // (case, from, to, expected nodes passed and seconds, or no route)
        type Row = (&'static str, (f64, f64), (f64, f64), Option<(Vec<(f64, f64)>, f64)>);
        let rows: [Row; 7] = [
            ("fastest is not shortest", A, B, Some((vec![A, C, B], primary(&[A, C, B])))),
            ("and back", B, A, Some((vec![B, C, A], primary(&[B, C, A])))),
            ("on to E", A, E, Some((vec![A, C, B, E], primary(&[A, C, B]) + legs_s(40.0, &[B, E])))),
            ("with the one-way", E, F, Some((vec![E, F], legs_s(30.0, &[E, F])))),
            ("against the one-way: round by the track", F, E, Some((vec![F, G, E], legs_s(15.0, &[F, G, E])))),
            ("to an island", A, X, None),
            ("to the same place", B, B, Some((vec![B], 0.0))),
        ];
        for (name, from, to, expected) in rows {
            let route = g.route(at(from.0, from.1), at(to.0, to.1));
            match (route, expected) {
                (None, None) => {}
                (Some(r), Some((path, travel_s))) => {
                    let path: Vec<Position> = path.iter().map(|p| at(p.0, p.1)).collect();
                    assert_eq!(r.geometry, path, "{name}");
                    assert!((r.travel_s - travel_s).abs() < 1e-6, "{name}: {} s, expected {travel_s} s", r.travel_s);
                    assert!((r.road_s - r.travel_s).abs() < 1e-9, "{name}: no access leg at a node");
                    let length_m: f64 = path.windows(2).map(|w| w[0].haversine_m(w[1])).sum();
                    assert!((r.length_m - length_m).abs() < 1e-6, "{name}: {} m, expected {length_m} m", r.length_m);
                }
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn on_foot_every_road_is_walked_both_ways_at_walking_pace() {
        let g = RoadGraph::from_roads(&hand_made_roads(), &RoadSpeeds::default().on_foot(4.5));
        let walk = |p: &[(f64, f64)]| legs_s(4.5, p);
        // (case, from, to, nodes passed): at one pace everywhere, the shortest way is the fastest.
        let rows = [
            ("the street, not the faster primary detour", A, B, vec![A, B]),
            ("against the one-way, not round by the track", F, E, vec![F, E]),
        ];
        for (name, from, to, path) in rows {
            let r = g.route(at(from.0, from.1), at(to.0, to.1)).unwrap();
            assert_eq!(r.geometry, path.iter().map(|p| at(p.0, p.1)).collect::<Vec<_>>(), "{name}");
            assert!((r.travel_s - walk(&path)).abs() < 1e-6, "{name}: {} s, expected {} s", r.travel_s, walk(&path));
        }
        // A road's own speed and the off-road pace are capped too; the configuration's
        // table is not changed.
        let props = |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let foot = RoadSpeeds::default().on_foot(4.5);
        assert_eq!(foot.road_kph(&props(&[("class", "busway".into()), ("speed_kph", 25.into())])), 4.5);
        assert_eq!(foot.road_kph(&props(&[("class", "motorway".into())])), 4.5);
        assert_eq!(foot.access_kph(), 4.5);
        assert_eq!(foot.motorway_kph, 100.0);
        assert_eq!(RoadSpeeds::default().on_foot(12.0).access_kph(), 5.0, "off the road no faster than walking");
    }

    #[test]
    fn snapping_to_the_middle_of_an_edge() {
        let g = hand_made();
        let p = at(1000.0, 50.0);
        let s = g.snap(p).unwrap();
        assert_eq!(g.road_id(s.edge), "direct");
        assert!((s.fraction - 0.5).abs() < 1e-3, "{}", s.fraction);
        assert!((s.distance_m - 50.0).abs() < 0.5, "{}", s.distance_m);
        assert!(s.position.haversine_m(at(1000.0, 0.0)) < 0.5);

        // Half the street to B beats going back to A and round by C.
        let r = g.route(p, at(B.0, B.1)).unwrap();
        let half_s = legs_s(30.0, &[(1000.0, 0.0), B]);
        assert!((r.road_s - half_s).abs() < 0.1, "{} vs {half_s}", r.road_s);
        assert!((r.length_m - 1000.0).abs() < 2.0, "{}", r.length_m);
        // The 50 m off the road are walked at 5 km/h: 36 s.
        assert!((r.start.travel_s - 36.0).abs() < 0.5, "{:?}", r.start);
        assert_eq!(r.start.from, p);
        assert!((r.travel_s - r.road_s - r.start.travel_s - r.end.travel_s).abs() < 1e-9);
        assert_eq!(r.geometry.len(), 2);

        // Both ends on the same edge: along it, without a node.
        let r = g.route(at(500.0, 0.0), at(1500.0, 0.0)).unwrap();
        assert!(r.nodes.is_empty(), "{:?}", r.nodes);
        assert!((r.length_m - 1000.0).abs() < 2.0);
        // Backwards along the one-way edge: round by the track, far longer.
        let (q1, q3) = (at(4500.0, 500.0), at(5500.0, 1500.0));
        let forward = g.route(q1, q3).unwrap();
        let backward = g.route(q3, q1).unwrap();
        assert!(forward.nodes.is_empty());
        assert!(backward.road_s > legs_s(15.0, &[F, G, E]), "{backward:?}");
    }

    #[test]
    fn crossing_lines_meet_only_at_a_shared_vertex() {
        let cross = [
            road("ew", "residential", false, &[(0.0, 0.0), (2000.0, 0.0)]),
            road("ns", "residential", false, &[(1000.0, -1000.0), (1000.0, 1000.0)]),
        ];
        let g = RoadGraph::from_roads(&cross, &RoadSpeeds::default());
        assert_eq!((g.node_count(), g.edge_count()), (4, 2));
        assert!(g.route(at(0.0, 0.0), at(1000.0, 1000.0)).is_none(), "a bridge is not a junction");
        // A vertex equal after rounding to 1e-7° joins them; a metre apart does not.
        let nearly = at(1000.0, 0.0);
        let moved = Position::new(nearly.lon() + 2e-9, nearly.lat() - 2e-9).unwrap();
        for (shift, joined) in [(moved, true), (at(1001.0, 0.0), false)] {
            let mut lines = cross.to_vec();
            lines[0].line.0.insert(1, at(1000.0, 0.0).to_coord());
            lines[1].line.0.insert(1, shift.to_coord());
            let g = RoadGraph::from_roads(&lines, &RoadSpeeds::default());
            assert_eq!(g.route(at(0.0, 0.0), at(1000.0, 1000.0)).is_some(), joined, "{shift:?}");
        }
    }

    #[test]
    fn travel_times_from_and_to_a_place() {
        let g = hand_made();
        let to_c = legs_s(70.0, &[A, C]);
        let to_b = legs_s(70.0, &[A, C, B]);
        let from_a = g.travel_times_from(at(A.0, A.1), 200.0).unwrap();
        // A, C and B within 200 s; E is 325 s away.
        assert_eq!(from_a.len(), 3);
        let node = |p: (f64, f64)| {
            NodeId(g.graph.node_indices().find(|n| g.graph[*n] == at(p.0, p.1)).unwrap().index() as u32)
        };
        assert!((from_a.node_s(node(C)).unwrap() - to_c).abs() < 1e-6);
        assert!((from_a.node_s(node(B)).unwrap() - to_b).abs() < 1e-6);
        assert_eq!(from_a.node_s(node(E)), None);
        // A point between A and B, 10 m off the road: the nearer end by road, plus
        // the partial edge and both access legs (the origin is on a node).
        let mid = at(1900.0, 10.0);
        let expected = to_b + legs_s(30.0, &[B, (1900.0, 0.0)]) + 10.0 / (5.0 / 3.6);
        assert!((from_a.at(&g, mid).unwrap() - expected).abs() < 0.05, "{:?} vs {expected}", from_a.at(&g, mid));

        // One-way: from E to F directly, from F to E round by the track.
        let from_f = g.travel_times_from(at(F.0, F.1), 10_000.0).unwrap();
        let to_f = g.travel_times_to(at(F.0, F.1), 10_000.0).unwrap();
        assert!((from_f.node_s(node(E)).unwrap() - legs_s(15.0, &[F, G, E])).abs() < 1e-6);
        assert!((to_f.node_s(node(E)).unwrap() - legs_s(30.0, &[E, F])).abs() < 1e-6);
        assert!((to_f.at(&g, at(E.0, E.1)).unwrap() - legs_s(30.0, &[E, F])).abs() < 1e-6);
        assert_eq!(from_f.node_s(node(X)), None, "the island is unreachable");
    }

    #[test]
    fn matrix_agrees_with_routes() {
        let g = hand_made();
        let points: Vec<Position> =
            [A, B, E, F, X, (1000.0, 50.0), (5000.0, 1000.0)].iter().map(|p| at(p.0, p.1)).collect();
        let m = g.travel_time_matrix(&points);
        for (i, from) in points.iter().enumerate() {
            for (j, to) in points.iter().enumerate() {
                let route = if i == j { Some(0.0) } else { g.route(*from, *to).map(|r| r.travel_s) };
                match (m[i][j], route) {
                    (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "{i}→{j}: {a} vs {b}"),
                    (a, b) => assert_eq!(a, b, "{i}→{j}"),
                }
            }
        }
        assert!(m[3][2].unwrap() > 2.0 * m[2][3].unwrap(), "one-way: F→E is round by the track");
    }

    #[test]
    fn astar_agrees_with_dijkstra_on_a_grid() {
        let spec = GridSpec {
            south_west: Position::new(107.0, 30.6).unwrap(),
            cols: 30,
            rows: 20,
            spacing_m: 300.0,
            jitter: 0.3,
            seed: 7,
        };
        let g = RoadGraph::grid(&spec, &RoadSpeeds::default());
        assert_eq!((g.node_count(), g.edge_count()), (600, 20 * 29 + 30 * 19));
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut random = || Position::new(107.0 + next() * 0.09, 30.6 + next() * 0.05).unwrap();
        for _ in 0..50 {
            let (p, q) = (random(), random());
            let route = g.route(p, q).unwrap();
            let times = g.travel_times_from(p, f64::INFINITY).unwrap();
            let dijkstra_s = times.at(&g, q).unwrap();
            assert!((route.travel_s - dijkstra_s).abs() < 1e-6, "{p:?}→{q:?}: {} vs {dijkstra_s}", route.travel_s);
            assert!(route.length_m >= p.haversine_m(q) - route.start.distance_m - route.end.distance_m - 1e-6);
        }
    }

    #[test]
    fn speeds_by_class() {
        let s = RoadSpeeds::default();
        let props = |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let rows: [(&str, serde_json::Map<String, Value>, f64); 7] = [
            ("Dazhu county road", props(&[("class", "county".into()), ("speed_kph", 60.into())]), 60.0),
            ("Dazhu village road", props(&[("class", "village".into())]), 30.0),
            ("a link is its road", props(&[("class", "motorway_link".into())]), 100.0),
            ("unknown class, own speed", props(&[("class", "busway".into()), ("speed_kph", 25.into())]), 25.0),
            ("unknown class", props(&[("class", "busway".into())]), 30.0),
            ("no class", props(&[]), 30.0),
            ("absurd own speed is clamped", props(&[("speed_kph", 0.into())]), 1.0),
        ];
        for (name, p, kph) in rows {
            assert_eq!(s.road_kph(&p), kph, "{name}");
        }
        assert_eq!(s.validate(), Ok(()));
        let bad = RoadSpeeds { track_kph: 0.0, ..RoadSpeeds::default() };
        assert_eq!(bad.validate().unwrap_err().field, "track_kph");
    }

    #[test]
    fn oneway_values() {
        let rows: [(Value, (bool, bool)); 7] = [
            ("yes".into(), (true, false)),
            (true.into(), (true, false)),
            ("1".into(), (true, false)),
            ("-1".into(), (false, true)),
            ("reverse".into(), (false, true)),
            ("no".into(), (true, true)),
            (false.into(), (true, true)),
        ];
        for (v, expected) in rows {
            let mut p = serde_json::Map::new();
            p.insert("oneway".into(), v.clone());
            assert_eq!(directions(&p), expected, "{v}");
        }
    }

    /// The Dazhu demo map's posts and roads.
    fn dazhu() -> CountyMap {
        macro_rules! layer {
            ($name:literal) => {
                (
                    concat!($name, ".geojson").to_owned(),
                    include_str!(concat!("../../../maps/dazhu/", $name, ".geojson")).to_owned(),
                )
            };
        }
        let (map, problems) = CountyMap::parse(&[layer!("boundary"), layer!("posts"), layer!("roads")]);
        assert!(problems.is_empty(), "{problems:?}");
        map
    }

    #[test]
    fn routes_between_posts_on_the_dazhu_map() {
        let map = dazhu();
        let g = RoadGraph::from_map(&map, &RoadSpeeds::default());
        assert!(g.node_count() > 1000 && g.edge_count() >= g.node_count() - 1, "{} {}", g.node_count(), g.edge_count());
        let post = |id: &str| {
            let p = map.posts.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("post {id}")).point;
            Position::new(p.x(), p.y()).unwrap()
        };
        let ids: Vec<&str> = map.posts.iter().map(|p| p.id.as_str()).collect();
        // The network is connected: every node is reached from the first post.
        let all = g.travel_times_from(post(ids[0]), f64::INFINITY).unwrap();
        assert_eq!(all.len(), g.node_count());
        for pair in ids.windows(2) {
            let (a, b) = (post(pair[0]), post(pair[1]));
            let r = g.route(a, b).unwrap_or_else(|| panic!("{pair:?}"));
            let straight_m = a.haversine_m(b);
            let total_m = r.length_m + r.start.distance_m + r.end.distance_m;
            assert!(total_m > straight_m && total_m < 3.0 * straight_m, "{pair:?}: {total_m} m vs {straight_m} m");
            assert!(r.road_s > r.length_m / (60.0 / 3.6) - 1e-6, "{pair:?}: no road is faster than 60 km/h");
            let a_to_b_s = g.travel_times_from(a, f64::INFINITY).unwrap().at(&g, b).unwrap();
            assert!((a_to_b_s - r.travel_s).abs() < 1e-6, "{pair:?}: A* {} s, Dijkstra {a_to_b_s} s", r.travel_s);
        }
    }
}
