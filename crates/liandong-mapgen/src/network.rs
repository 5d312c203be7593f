//! The illustrative road network and the graph that patrol routes are routed on.
//!
//! Roads join the township seats and the named places: a Euclidean minimum spanning
//! tree (Kruskal) over the pairs whose straight line stays inside the county, plus a
//! few links to near neighbours so the network has loops. Each link is drawn as a
//! gently wandering polyline (two smooth sine terms plus a little noise) densified to
//! a vertex every few hundred metres, and every vertex is kept inside the county.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use anyhow::{bail, Context};
use geo::{Contains, Coord, MultiPolygon, Point};
use liandong_core::spatial::PreparedPolygon;

use crate::geom::{round6, segment_inside, Proj};
use crate::rng::SplitMix64;

/// Longest straight link considered between two places, metres.
const MAX_LINK_M: f64 = 22_000.0;
/// Spacing of road vertices after densification, metres.
const VERTEX_SPACING_M: f64 = 350.0;

/// A place the network must reach.
#[derive(Debug, Clone)]
pub struct Node {
    pub short: String,
    pub at: Coord,
    /// A township seat (true) or a named place such as the scenic area (false).
    pub is_seat: bool,
}

/// One road: a LineString from node `a` to node `b` (`usize::MAX` for a village road's
/// ends, which are a road vertex and a village centre rather than nodes).
#[derive(Debug, Clone)]
pub struct Road {
    pub id: String,
    pub name: String,
    pub class: &'static str,
    pub speed_kph: u32,
    pub line: Vec<Coord>,
    pub a: usize,
    pub b: usize,
}

/// Builds the roads between `nodes`. Errors if some node cannot be reached from the
/// others by straight links inside the county.
pub fn build_roads(
    proj: &Proj,
    county: &MultiPolygon,
    nodes: &[Node],
    rng: &mut SplitMix64,
) -> anyhow::Result<Vec<Road>> {
    let prepared = PreparedPolygon::new(county);
    let n = nodes.len();
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let d = proj.dist_m(nodes[i].at, nodes[j].at);
            if d <= MAX_LINK_M && segment_inside(proj, &prepared, nodes[i].at, nodes[j].at, 100.0) {
                candidates.push((d, i, j));
            }
        }
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));

    // Kruskal with a union-find over node indices.
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut edges: Vec<(usize, usize, bool)> = Vec::new(); // (a, b, in_tree)
    for &(_, i, j) in &candidates {
        let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
        if ri != rj {
            parent[ri] = rj;
            edges.push((i, j, true));
        }
    }
    if edges.len() + 1 != n {
        let lonely: Vec<&str> =
            (0..n).filter(|&i| find(&mut parent, i) != find(&mut parent, 0)).map(|i| nodes[i].short.as_str()).collect();
        bail!("road network is not connected; unreachable: {lonely:?}");
    }

    // Extra links between seats: each seat to its three nearest reachable seats, unless
    // the link already exists or runs within 35° of a road already leaving either end.
    let bearing = |i: usize, j: usize| {
        let (a, b) = (proj.to_m(nodes[i].at), proj.to_m(nodes[j].at));
        (b.y - a.y).atan2(b.x - a.x)
    };
    let close_angle = |x: f64, y: f64| {
        let d = (x - y).rem_euclid(std::f64::consts::TAU);
        d.min(std::f64::consts::TAU - d) < 35f64.to_radians()
    };
    for i in 0..n {
        if !nodes[i].is_seat {
            continue;
        }
        let mut near: Vec<(f64, usize)> = candidates
            .iter()
            .filter_map(|&(d, a, b)| match (a == i, b == i) {
                (true, _) if nodes[b].is_seat => Some((d, b)),
                (_, true) if nodes[a].is_seat => Some((d, a)),
                _ => None,
            })
            .filter(|&(d, _)| d < 16_000.0)
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, j) in near.iter().take(3) {
            let exists = edges.iter().any(|&(a, b, _)| (a, b) == (i, j) || (a, b) == (j, i));
            let crowded = edges.iter().any(|&(a, b, _)| {
                (a == i && close_angle(bearing(i, b), bearing(i, j)))
                    || (b == i && close_angle(bearing(i, a), bearing(i, j)))
                    || (a == j && close_angle(bearing(j, b), bearing(j, i)))
                    || (b == j && close_angle(bearing(j, a), bearing(j, i)))
            });
            if !exists && !crowded {
                edges.push((i, j, false));
            }
        }
    }

    let mut roads = Vec::with_capacity(edges.len());
    for (k, &(a, b, in_tree)) in edges.iter().enumerate() {
        let (class, speed_kph, suffix) = match (nodes[a].is_seat && nodes[b].is_seat, in_tree) {
            (true, true) => ("county", 60, "县道"),
            (true, false) => ("township", 40, "乡道"),
            (false, _) => ("village", 30, "村道"),
        };
        let line = wander(proj, county, &prepared, nodes[a].at, nodes[b].at, rng)
            .with_context(|| format!("drawing the road {}—{}", nodes[a].short, nodes[b].short))?;
        roads.push(Road {
            id: format!("road-{:03}", k + 1),
            name: format!("{}—{}{}", nodes[a].short, nodes[b].short, suffix),
            class,
            speed_kph,
            line,
            a,
            b,
        });
    }
    Ok(roads)
}

/// Adds a village road (村道) from every `every`-th village centre to the nearest
/// vertex of the existing roads, when that is 0.6–5 km away in a straight line inside
/// the county. Spurs start on an existing vertex, so the graph joins them there.
pub fn add_village_spurs(
    proj: &Proj,
    county: &MultiPolygon,
    roads: &mut Vec<Road>,
    villages: &[(String, Coord)],
    every: usize,
    rng: &mut SplitMix64,
) -> anyhow::Result<()> {
    let prepared = PreparedPolygon::new(county);
    let trunk: Vec<Coord> = roads.iter().flat_map(|r| r.line.iter().copied()).collect();
    for (name, at) in villages.iter().step_by(every.max(1)) {
        let Some(from) = trunk.iter().copied().min_by(|a, b| proj.dist_m(*a, *at).total_cmp(&proj.dist_m(*b, *at)))
        else {
            continue;
        };
        let d = proj.dist_m(from, *at);
        if !(600.0..=5_000.0).contains(&d) || !segment_inside(proj, &prepared, from, *at, 60.0) {
            continue;
        }
        let line = wander(proj, county, &prepared, from, round6(*at), rng)
            .with_context(|| format!("drawing the village road to {name}"))?;
        roads.push(Road {
            id: format!("road-{:03}", roads.len() + 1),
            name: format!("{name}村道"),
            class: "village",
            speed_kph: 30,
            line,
            a: usize::MAX,
            b: usize::MAX,
        });
    }
    Ok(())
}

/// A road-like polyline from `a` to `b` inside `county`: exact endpoints, interior
/// vertices every [`VERTEX_SPACING_M`], all rounded to 6 decimals.
fn wander(
    proj: &Proj,
    county: &MultiPolygon,
    prepared: &PreparedPolygon,
    a: Coord,
    b: Coord,
    rng: &mut SplitMix64,
) -> anyhow::Result<Vec<Coord>> {
    let (am, bm) = (proj.to_m(a), proj.to_m(b));
    let len = (bm.x - am.x).hypot(bm.y - am.y);
    let normal = Coord { x: -(bm.y - am.y) / len, y: (bm.x - am.x) / len };
    let (w1, w2) = (rng.range(-1.0, 1.0), rng.range(-0.5, 0.5));
    let steps = (len / VERTEX_SPACING_M).ceil().max(1.0) as usize;
    let noise: Vec<f64> = (0..=steps).map(|_| rng.range(-1.0, 1.0)).collect();
    let mut amplitude = (0.07 * len).min(1_200.0);
    for _ in 0..6 {
        let line: Vec<Coord> = (0..=steps)
            .map(|k| {
                if k == 0 {
                    return a;
                }
                if k == steps {
                    return b;
                }
                let t = k as f64 / steps as f64;
                let s = std::f64::consts::PI * t;
                // The noise is faded in and out so the road leaves each end cleanly.
                let off = amplitude * (w1 * s.sin() + w2 * (2.0 * s).sin() + 0.04 * noise[k] * s.sin());
                let p = Coord {
                    x: am.x + (bm.x - am.x) * t + normal.x * off,
                    y: am.y + (bm.y - am.y) * t + normal.y * off,
                };
                round6(proj.to_deg(p))
            })
            .collect();
        let inside = line.iter().all(|c| county.contains(&Point::from(*c)))
            && line.windows(2).all(|w| segment_inside(proj, prepared, w[0], w[1], 60.0));
        if inside {
            return Ok(line);
        }
        amplitude /= 2.0;
    }
    // A straight line: inside by construction of the candidate links.
    let line: Vec<Coord> = (0..=steps)
        .map(|k| {
            if k == steps {
                b
            } else {
                round6(Coord {
                    x: a.x + (b.x - a.x) * k as f64 / steps as f64,
                    y: a.y + (b.y - a.y) * k as f64 / steps as f64,
                })
            }
        })
        .collect();
    if line.iter().all(|c| county.contains(&Point::from(*c))) {
        Ok(line)
    } else {
        bail!("no way to draw it inside the county")
    }
}

/// The road network as a graph on road vertices (shared exactly at road ends).
#[derive(Debug, Default)]
pub struct Graph {
    pub verts: Vec<Coord>,
    index: HashMap<(i64, i64), usize>,
    adj: Vec<Vec<(usize, f64)>>,
}

fn key(c: Coord) -> (i64, i64) {
    ((c.x * 1e6).round() as i64, (c.y * 1e6).round() as i64)
}

impl Graph {
    pub fn new(proj: &Proj, roads: &[Road]) -> Graph {
        let mut g = Graph::default();
        for road in roads {
            let ids: Vec<usize> = road.line.iter().map(|c| g.vertex(*c)).collect();
            for w in ids.windows(2) {
                let d = proj.dist_m(g.verts[w[0]], g.verts[w[1]]);
                g.adj[w[0]].push((w[1], d));
                g.adj[w[1]].push((w[0], d));
            }
        }
        g
    }

    fn vertex(&mut self, c: Coord) -> usize {
        let k = key(c);
        if let Some(&i) = self.index.get(&k) {
            return i;
        }
        self.verts.push(c);
        self.adj.push(Vec::new());
        self.index.insert(k, self.verts.len() - 1);
        self.verts.len() - 1
    }

    /// The vertex at exactly `c` (to 6 decimals), if any.
    pub fn locate(&self, c: Coord) -> Option<usize> {
        self.index.get(&key(c)).copied()
    }

    /// Dijkstra from `src`: network distance (metres) and predecessor of every vertex.
    pub fn shortest_from(&self, src: usize) -> (Vec<f64>, Vec<usize>) {
        #[derive(PartialEq)]
        struct Item(f64, usize);
        impl Eq for Item {}
        impl Ord for Item {
            fn cmp(&self, o: &Self) -> Ordering {
                o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
            }
        }
        impl PartialOrd for Item {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        let mut dist = vec![f64::INFINITY; self.verts.len()];
        let mut prev = vec![usize::MAX; self.verts.len()];
        let mut heap = BinaryHeap::new();
        dist[src] = 0.0;
        heap.push(Item(0.0, src));
        while let Some(Item(d, u)) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            for &(v, w) in &self.adj[u] {
                if d + w < dist[v] {
                    dist[v] = d + w;
                    prev[v] = u;
                    heap.push(Item(d + w, v));
                }
            }
        }
        (dist, prev)
    }

    /// The vertices of a shortest path from `a` to `b`, both included.
    pub fn path(&self, a: usize, b: usize) -> Option<Vec<usize>> {
        let (dist, prev) = self.shortest_from(a);
        if !dist[b].is_finite() {
            return None;
        }
        let mut path = vec![b];
        while *path.last()? != a {
            path.push(prev[*path.last()?]);
        }
        path.reverse();
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, Polygon};

    #[test]
    fn roads_connect_every_node_and_stay_inside() {
        let county = MultiPolygon::new(vec![Polygon::new(
            LineString::from(vec![(107.0, 30.5), (107.4, 30.5), (107.4, 30.9), (107.0, 30.9), (107.0, 30.5)]),
            vec![],
        )]);
        let proj = Proj::new(107.2, 30.7);
        let node = |s: &str, x, y| Node { short: s.into(), at: Coord { x, y }, is_seat: true };
        let nodes =
            vec![node("a", 107.1, 30.6), node("b", 107.3, 30.6), node("c", 107.2, 30.8), node("d", 107.25, 30.7)];
        let roads = build_roads(&proj, &county, &nodes, &mut SplitMix64::new(1)).unwrap();
        assert!(roads.len() >= 3);
        let g = Graph::new(&proj, &roads);
        let a = g.locate(nodes[0].at).unwrap();
        for n in &nodes[1..] {
            let path = g.path(a, g.locate(n.at).unwrap()).expect("connected");
            assert!(path.len() >= 2);
        }
        assert!(roads.iter().flat_map(|r| &r.line).all(|c| county.contains(&Point::from(*c))));
    }
}
