//! Generates the Dazhu demo map into a temporary directory and checks it the way the
//! server will load it, plus the invariants the demo promises (counts, tiling, routes
//! on roads, everything inside the county).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use geo::{Area, Contains, Coord, CoordsIter, Distance, Haversine, MultiPolygon, Point, Winding};
use liandong_core::CountyMap;
use serde_json::Value;

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maps/dazhu/source")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("liandong-mapgen-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read_layers(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "geojson"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// Metres between a point and a segment, in a local plane (fine at these distances).
fn dist_to_segment_m(p: Coord, a: Coord, b: Coord) -> f64 {
    let k = 30.7f64.to_radians().cos();
    let (px, py) = ((p.x - a.x) * k, p.y - a.y);
    let (bx, by) = ((b.x - a.x) * k, b.y - a.y);
    let len2 = bx * bx + by * by;
    let t = if len2 == 0.0 { 0.0 } else { ((px * bx + py * by) / len2).clamp(0.0, 1.0) };
    let (cx, cy) = (a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
    Haversine.distance(Point::from(p), Point::new(cx, cy))
}

#[test]
fn the_demo_map_loads_cleanly_and_keeps_its_promises() {
    let out = temp_dir("check");
    let summary = liandong_mapgen::generate(&source_dir(), &out).unwrap();
    assert!(summary.bytes < 3_000_000, "{summary}");
    let files = read_layers(&out);
    assert_eq!(files.len(), 12, "{files:?}");

    // The server's own loader finds nothing wrong (ids, validity, inside, routes on roads).
    let (map, problems) = CountyMap::parse(&files);
    assert!(problems.is_empty(), "{problems:#?}");

    // Foreign members, ids at feature level equal to properties.id, unique per layer,
    // coordinates at 6 decimals, exteriors counter-clockwise and holes clockwise.
    for (file, text) in &files {
        let stem = file.trim_end_matches(".geojson");
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["type"], "FeatureCollection");
        assert_eq!(v["name"], stem, "{file}");
        assert!(v["provenance"].as_str().is_some_and(|p| p.len() > 40), "{file}");
        assert_eq!(v["illustrative"], Value::Bool(stem != "boundary"), "{file}");
        let mut ids = HashSet::new();
        for f in v["features"].as_array().unwrap() {
            let id = f["id"].as_str().unwrap_or_else(|| panic!("{file}: feature without a string id"));
            assert_eq!(f["properties"]["id"], f["id"], "{file} {id}");
            assert!(ids.insert(id.to_owned()), "{file}: duplicate id {id}");
        }
        let layer = &map.layers[stem];
        for f in &layer.collection.features {
            let g = geo::Geometry::<f64>::try_from(&f.geometry.as_ref().unwrap().value).unwrap();
            for c in g.coords_iter() {
                assert!(
                    ((c.x * 1e6).round() / 1e6 - c.x).abs() < 1e-9 && ((c.y * 1e6).round() / 1e6 - c.y).abs() < 1e-9
                );
            }
            let polygons = match g {
                geo::Geometry::Polygon(p) => vec![p],
                geo::Geometry::MultiPolygon(mp) => mp.0,
                _ => vec![],
            };
            for p in polygons {
                assert!(p.exterior().is_ccw(), "{file}: exterior ring not counter-clockwise");
                assert!(p.interiors().iter().all(|r| r.is_cw()), "{file}: hole not clockwise");
            }
        }
    }

    // Counts from the seed report.
    assert_eq!(map.townships.len(), 31);
    assert_eq!(map.grids.len(), 324);
    assert_eq!(map.posts.len(), 26);
    assert_eq!(map.jurisdictions.len(), 26);
    assert_eq!(map.routes.len(), 17);
    assert!((150..=250).contains(&map.cameras.len()), "{} cameras", map.cameras.len());
    let members: i64 = map.routes.iter().map(|r| r.properties["members"].as_i64().unwrap()).sum();
    assert_eq!(members, 219);
    for name in ["欢喜坪警务室", "商圈警务室", "五峰山景区警务室", "校园警务室"] {
        assert!(map.posts.iter().any(|p| p.name == name), "{name} missing");
    }

    // Everything that must be inside the county is.
    let county = &map.boundary;
    for s in map.posts.iter().chain(&map.cameras).chain(&map.checkpoints) {
        assert!(county.contains(&s.point), "{} outside the county", s.id);
    }
    for r in &map.roads {
        assert!(r.line.0.iter().all(|c| county.contains(&Point::from(*c))), "{} leaves the county", r.id);
    }
    for f in &map.fences {
        assert!(county.contains(&f.polygon), "{} leaves the county", f.id);
    }

    // Each no-parking fence holds a parking camera, so that its captures fall inside;
    // the school gates reach their school's fence.
    assert_eq!(map.no_parking.len(), 7);
    for f in &map.no_parking {
        let holds = map.cameras.iter().filter(|c| c.kind.as_deref() == Some("parking") && f.polygon.contains(&c.point));
        assert_eq!(holds.count(), 1, "{} holds one parking camera", f.id);
    }
    let campus = map.fences.iter().find(|f| f.id == "fence-campus").unwrap();
    let gate = map.no_parking.iter().find(|f| f.id == "np-campus-gate").unwrap();
    assert!(geo::Intersects::intersects(&gate.polygon, &campus.polygon), "the campus gate reaches the campus");

    // Townships, and post jurisdictions, tile the county.
    let county_area = county.unsigned_area();
    for (layer, areas) in [("townships", &map.townships), ("jurisdictions", &map.jurisdictions)] {
        let sum: f64 = areas.iter().map(|a| a.polygon.unsigned_area()).sum();
        assert!((sum - county_area).abs() / county_area < 0.005, "{layer}: {sum} vs {county_area}");
    }
    let grid_sum: f64 = map.grids.iter().map(|a| a.polygon.unsigned_area()).sum();
    assert!((grid_sum - county_area).abs() / county_area < 0.005, "grids: {grid_sum} vs {county_area}");

    // Routes run on roads and start and end at their post; checkpoints lie on their route.
    let segments: Vec<(Coord, Coord)> =
        map.roads.iter().flat_map(|r| r.line.0.windows(2).map(|w| (w[0], w[1]))).collect();
    let posts: BTreeMap<&str, Point> = map.posts.iter().map(|p| (p.id.as_str(), p.point)).collect();
    for route in &map.routes {
        for c in &route.line.0 {
            let d = segments.iter().map(|(a, b)| dist_to_segment_m(*c, *a, *b)).fold(f64::INFINITY, f64::min);
            assert!(d <= 1.0, "{}: vertex {c:?} is {d} m from the roads", route.id);
        }
        let post = posts[route.properties["post_id"].as_str().unwrap()];
        let (first, last) = (route.line.0[0], *route.line.0.last().unwrap());
        assert!(Haversine.distance(post, Point::from(first)) <= 1.0, "{} does not start at its post", route.id);
        assert!(Haversine.distance(post, Point::from(last)) <= 1.0, "{} does not end at its post", route.id);
        let team = route.properties["team_id"].as_str().unwrap();
        let cps: Vec<_> = map.checkpoints.iter().filter(|c| c.properties["team_id"] == team).collect();
        assert!((2..=5).contains(&cps.len()), "{team}: {} checkpoints", cps.len());
        for cp in cps {
            let d = route
                .line
                .0
                .iter()
                .map(|c| Haversine.distance(cp.point, Point::from(*c)))
                .fold(f64::INFINITY, f64::min);
            assert!(d <= 1.0, "{} is {d} m from its route", cp.id);
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_boundary_is_converted_from_gcj02_to_wgs84() {
    let text = std::fs::read_to_string(source_dir().join("dazhu-511724.gcj02.geojson")).unwrap();
    let gj: geojson::GeoJson = text.parse().unwrap();
    let geojson::GeoJson::Geometry(g) = gj else { panic!("the source is a bare geometry") };
    let source = MultiPolygon::<f64>::try_from(g.value).unwrap();
    let gcj = source.0[3].exterior().0[0];
    let (x, y) = liandong_core::datum::gcj02_to_wgs84(gcj.x, gcj.y);
    let shift_m = Haversine.distance(Point::from(gcj), Point::new(x, y));
    assert!((150.0..=700.0).contains(&shift_m), "GCJ-02 to WGS 84 shift {shift_m} m");

    let out = temp_dir("boundary");
    liandong_mapgen::generate(&source_dir(), &out).unwrap();
    let (map, _) = CountyMap::parse(&[(
        "boundary.geojson".into(),
        std::fs::read_to_string(out.join("boundary.geojson")).unwrap(),
    )]);
    let wgs = Coord { x: (x * 1e6).round() / 1e6, y: (y * 1e6).round() / 1e6 };
    let coords: Vec<Coord> = map.boundary.coords_iter().collect();
    assert!(coords.contains(&wgs), "converted vertex {wgs:?} not in the written boundary");
    assert!(!coords.contains(&gcj), "a GCJ-02 vertex leaked into the written boundary");
    let ratio = map.boundary.unsigned_area() / source.unsigned_area();
    assert!((ratio - 1.0).abs() < 0.001, "conversion changed the area by {ratio}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn generation_is_deterministic() {
    let (a, b) = (temp_dir("det-a"), temp_dir("det-b"));
    liandong_mapgen::generate(&source_dir(), &a).unwrap();
    liandong_mapgen::generate(&source_dir(), &b).unwrap();
    assert_eq!(read_layers(&a), read_layers(&b));
    // And what is committed in maps/dazhu is what the generator writes today.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maps/dazhu");
    assert_eq!(
        read_layers(&committed),
        read_layers(&a),
        "maps/dazhu is stale: regenerate it (see maps/dazhu/README.md)"
    );
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

#[test]
fn every_teams_checkpoints_are_walkable_within_half_a_shift() {
    use liandong_core::plan::{plan, Mandatory, PlanRequest, PlannerConfig};
    use liandong_core::road::{RoadGraph, RoadSpeeds};
    use liandong_core::Position;

    // The committed map (`generation_is_deterministic` checks it is the generator's).
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maps/dazhu");
    let (map, problems) = CountyMap::parse(&read_layers(&committed));
    assert!(problems.is_empty(), "{problems:#?}");
    // On foot at the server's default pace (`planning.patrol_kph` 5), as it plans them.
    let graph = RoadGraph::from_map(&map, &RoadSpeeds::default().on_foot(5.0));
    let at = |p: Point| Position::new(p.x(), p.y()).unwrap();
    const SHIFT_S: f64 = 4.0 * 3600.0;
    for route in &map.routes {
        let team = route.properties["team_id"].as_str().unwrap();
        let post = map.posts.iter().find(|p| p.id == route.properties["post_id"].as_str().unwrap()).unwrap();
        let checkpoints: Vec<Mandatory> = map
            .checkpoints
            .iter()
            .filter(|c| c.properties["team_id"] == team)
            .map(|c| Mandatory {
                id: c.id.clone(),
                name: c.name.clone(),
                position: at(c.point),
                dwell_s: c.properties["min_dwell_s"].as_f64().unwrap(),
            })
            .collect();
        let request = PlanRequest {
            start: at(post.point),
            end: at(post.point),
            budget_s: SHIFT_S,
            checkpoints: checkpoints.clone(),
            candidates: vec![],
            hotspot_dwell_s: 300.0,
            start_ms: 0,
        };
        let p = plan(&graph, &request, &PlannerConfig::default()).unwrap_or_else(|e| panic!("{team}: {e}"));
        assert!(p.left_out.is_empty(), "{team}: {:?}", p.left_out);
        assert_eq!(p.mandatory_visited, checkpoints.len(), "{team}");
        assert!(p.total_s <= SHIFT_S / 2.0, "{team}: the checkpoints take {:.0} s on foot", p.total_s);
    }
}
