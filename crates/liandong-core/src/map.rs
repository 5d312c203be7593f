//! The county map: typed layers loaded from a map directory's GeoJSON files, and the
//! checks that `liandong maps check` runs on them.
//!
//! A map directory holds one RFC 7946 FeatureCollection per layer (`boundary.geojson`,
//! `posts.geojson`, …; see `maps/dazhu/README.md`). This module parses texts handed
//! to it; reading the directory is the caller's job, so the domain stays free of I/O.

use std::collections::{BTreeMap, HashSet};

use geo::{Contains, Coord, Distance, Haversine, LineString, MultiPolygon, Point};
use serde_json::Value;

/// Layers with a meaning to the server. Any other `*.geojson` file is served as-is.
pub const KNOWN_LAYERS: [&str; 13] = [
    "boundary",
    "townships",
    "grids",
    "posts",
    "jurisdictions",
    "cameras",
    "roads",
    "routes",
    "checkpoints",
    "fences",
    "hotspots",
    "venues",
    "no_parking",
];

/// How far (metres) a route vertex may lie from the nearest road before `maps check`
/// says the route is off the road network.
pub const ROUTE_ON_ROAD_TOLERANCE_M: f64 = 15.0;

/// One problem found in a map directory, naming the file and the feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapProblem {
    pub file: String,
    pub feature: Option<String>,
    pub message: String,
}

impl std::fmt::Display for MapProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.feature {
            Some(id) => write!(f, "{}: feature {}: {}", self.file, id, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A layer as loaded: its metadata and the feature collection served to clients.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    pub provenance: Option<String>,
    pub illustrative: bool,
    pub geometry_types: Vec<String>,
    pub collection: geojson::FeatureCollection,
}

/// A named polygonal area: a township, a village grid, a post jurisdiction or a fence.
#[derive(Debug, Clone)]
pub struct Area {
    pub id: String,
    pub name: String,
    /// The parent's id: township of a grid, post of a jurisdiction.
    pub parent: Option<String>,
    pub kind: Option<String>,
    pub polygon: MultiPolygon<f64>,
    pub properties: serde_json::Map<String, Value>,
}

/// A point feature: a police post, a camera or a checkpoint.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub kind: Option<String>,
    pub point: Point<f64>,
    pub properties: serde_json::Map<String, Value>,
}

/// A line feature: a road or a patrol route.
#[derive(Debug, Clone)]
pub struct Line {
    pub id: String,
    pub name: String,
    pub line: LineString<f64>,
    pub properties: serde_json::Map<String, Value>,
}

/// The county map with every known layer typed.
#[derive(Debug, Clone)]
pub struct CountyMap {
    pub layers: BTreeMap<String, Layer>,
    pub boundary: MultiPolygon<f64>,
    pub townships: Vec<Area>,
    pub grids: Vec<Area>,
    pub posts: Vec<Site>,
    pub jurisdictions: Vec<Area>,
    pub cameras: Vec<Site>,
    pub roads: Vec<Line>,
    pub routes: Vec<Line>,
    pub checkpoints: Vec<Site>,
    pub fences: Vec<Area>,
    /// The mediation venues (optional layer): the joint mediation centre (`kind`
    /// `centre`) and its sub-centres (`sub_centre`).
    pub venues: Vec<Site>,
    /// The no-parking fences (optional layer), each with its `kind`, `hours` and
    /// `weekdays` (see [`crate::no_parking`]).
    pub no_parking: Vec<Area>,
}

impl Default for CountyMap {
    fn default() -> Self {
        CountyMap {
            layers: BTreeMap::new(),
            boundary: MultiPolygon::new(Vec::new()),
            townships: Vec::new(),
            grids: Vec::new(),
            posts: Vec::new(),
            jurisdictions: Vec::new(),
            cameras: Vec::new(),
            roads: Vec::new(),
            routes: Vec::new(),
            checkpoints: Vec::new(),
            fences: Vec::new(),
            venues: Vec::new(),
            no_parking: Vec::new(),
        }
    }
}

impl CountyMap {
    /// The bounding rectangle of the county boundary (None for an empty boundary).
    pub fn extent(&self) -> Option<geo::Rect<f64>> {
        geo::BoundingRect::bounding_rect(&self.boundary)
    }

    /// Parses a map from `(file name, text)` pairs. Returns the map and every problem
    /// found; a map with problems must not be served (the caller decides).
    pub fn parse(files: &[(String, String)]) -> (CountyMap, Vec<MapProblem>) {
        let mut map = CountyMap::default();
        let mut problems = Vec::new();
        for (file, text) in files {
            let Some(name) = file.strip_suffix(".geojson") else {
                continue;
            };
            match parse_layer(name, text) {
                Ok(layer) => {
                    check_ids(file, &layer.collection, &mut problems);
                    map.layers.insert(name.to_owned(), layer);
                }
                Err(message) => problems.push(MapProblem { file: file.clone(), feature: None, message }),
            }
        }
        map.type_layers(&mut problems);
        map.check_semantics(&mut problems);
        (map, problems)
    }

    fn type_layers(&mut self, problems: &mut Vec<MapProblem>) {
        for required in ["boundary", "posts"] {
            if !self.layers.contains_key(required) {
                problems.push(MapProblem {
                    file: format!("{required}.geojson"),
                    feature: None,
                    message: "required layer is missing".into(),
                });
            }
        }
        let areas = |name: &str, parent_key: &str, problems: &mut Vec<MapProblem>| -> Vec<Area> {
            let Some(layer) = self.layers.get(name) else {
                return Vec::new();
            };
            features(layer, problems, |id, props, geom, problems| {
                let polygon = match geom {
                    geo::Geometry::Polygon(p) => MultiPolygon::new(vec![p]),
                    geo::Geometry::MultiPolygon(mp) => mp,
                    other => {
                        problems.push(problem(
                            name,
                            id,
                            format!("expected a Polygon or MultiPolygon, found {}", type_name(&other)),
                        ));
                        return None;
                    }
                };
                if let Err(e) = geo::Validation::check_validation(&polygon) {
                    problems.push(problem(name, id, format!("invalid polygon: {e}")));
                    return None;
                }
                Some(Area {
                    id: id.to_owned(),
                    name: str_prop(&props, "name").unwrap_or(id).to_owned(),
                    parent: str_prop(&props, parent_key).map(str::to_owned),
                    kind: str_prop(&props, "kind").map(str::to_owned),
                    polygon,
                    properties: props,
                })
            })
        };
        let boundary = areas("boundary", "", problems);
        self.townships = areas("townships", "", problems);
        self.grids = areas("grids", "township_id", problems);
        self.jurisdictions = areas("jurisdictions", "post_id", problems);
        self.fences = areas("fences", "", problems);
        self.no_parking = areas("no_parking", "", problems);
        self.boundary = MultiPolygon::new(boundary.into_iter().flat_map(|a| a.polygon.0).collect());

        let sites = |name: &str, problems: &mut Vec<MapProblem>| -> Vec<Site> {
            let Some(layer) = self.layers.get(name) else {
                return Vec::new();
            };
            features(layer, problems, |id, props, geom, problems| match geom {
                geo::Geometry::Point(point) => Some(Site {
                    id: id.to_owned(),
                    name: str_prop(&props, "name").unwrap_or(id).to_owned(),
                    kind: str_prop(&props, "kind").map(str::to_owned),
                    point,
                    properties: props,
                }),
                other => {
                    problems.push(problem(name, id, format!("expected a Point, found {}", type_name(&other))));
                    None
                }
            })
        };
        self.posts = sites("posts", problems);
        self.cameras = sites("cameras", problems);
        self.checkpoints = sites("checkpoints", problems);
        self.venues = sites("venues", problems);

        let lines = |name: &str, problems: &mut Vec<MapProblem>| -> Vec<Line> {
            let Some(layer) = self.layers.get(name) else {
                return Vec::new();
            };
            features(layer, problems, |id, props, geom, problems| match geom {
                geo::Geometry::LineString(line) if line.0.len() >= 2 => Some(Line {
                    id: id.to_owned(),
                    name: str_prop(&props, "name").or_else(|| str_prop(&props, "team_name")).unwrap_or(id).to_owned(),
                    line,
                    properties: props,
                }),
                other => {
                    problems.push(problem(
                        name,
                        id,
                        format!("expected a LineString of 2 or more positions, found {}", type_name(&other)),
                    ));
                    None
                }
            })
        };
        self.roads = lines("roads", problems);
        self.routes = lines("routes", problems);
    }

    /// Cross-layer rules: everything that must be inside the county is, references
    /// resolve, routes run on roads.
    fn check_semantics(&self, problems: &mut Vec<MapProblem>) {
        if self.boundary.0.is_empty() {
            if self.layers.contains_key("boundary") {
                problems.push(MapProblem {
                    file: "boundary.geojson".into(),
                    feature: None,
                    message: "has no valid polygon".into(),
                });
            }
            return;
        }
        let inside = |layer: &str, id: &str, p: &Point<f64>, problems: &mut Vec<MapProblem>| {
            if !self.boundary.contains(p) {
                problems.push(problem(
                    layer,
                    id,
                    format!("({:.6}, {:.6}) is outside the county boundary", p.x(), p.y()),
                ));
            }
        };
        for s in &self.posts {
            inside("posts", &s.id, &s.point, problems);
        }
        for s in &self.cameras {
            inside("cameras", &s.id, &s.point, problems);
        }
        for s in &self.checkpoints {
            inside("checkpoints", &s.id, &s.point, problems);
        }
        for v in &self.venues {
            inside("venues", &v.id, &v.point, problems);
            if !matches!(v.kind.as_deref(), Some("centre" | "sub_centre")) {
                problems.push(problem("venues", &v.id, "kind must be centre or sub_centre".into()));
            }
        }
        for f in &self.no_parking {
            if let Err(message) = crate::no_parking::NoParkingFence::from_area(f) {
                problems.push(problem("no_parking", &f.id, message));
            }
            let outside = f.polygon.0.iter().flat_map(|p| p.exterior().0.iter()).find(|c| !self.boundary.contains(*c));
            if let Some(c) = outside {
                problems.push(problem(
                    "no_parking",
                    &f.id,
                    format!("({:.6}, {:.6}) is outside the county boundary", c.x, c.y),
                ));
            }
        }
        let post_ids: HashSet<&str> = self.posts.iter().map(|p| p.id.as_str()).collect();
        for j in &self.jurisdictions {
            match &j.parent {
                Some(post) if post_ids.contains(post.as_str()) => {}
                Some(post) => {
                    problems.push(problem("jurisdictions", &j.id, format!("post_id {post} is not in posts.geojson")))
                }
                None => problems.push(problem("jurisdictions", &j.id, "has no post_id".into())),
            }
        }
        let township_ids: HashSet<&str> = self.townships.iter().map(|t| t.id.as_str()).collect();
        if !township_ids.is_empty() {
            for g in &self.grids {
                if let Some(t) = &g.parent {
                    if !township_ids.contains(t.as_str()) {
                        problems.push(problem("grids", &g.id, format!("township_id {t} is not in townships.geojson")));
                    }
                }
            }
        }
        if !self.routes.is_empty() {
            let road_index = crate::spatial::LineIndex::new(self.roads.iter().map(|r| &r.line));
            for route in &self.routes {
                if let Some(post) = str_prop(&route.properties, "post_id") {
                    if !post_ids.contains(post) {
                        problems.push(problem("routes", &route.id, format!("post_id {post} is not in posts.geojson")));
                    }
                }
                let off = route.line.0.iter().enumerate().find_map(|(i, c)| {
                    let d = road_index.distance_m(Point::from(*c));
                    (d > ROUTE_ON_ROAD_TOLERANCE_M).then_some((i, *c, d))
                });
                if let Some((i, c, d)) = off {
                    let msg = if d.is_finite() {
                        format!("vertex {i} ({:.6}, {:.6}) is {d:.0} m from the nearest road (tolerance {ROUTE_ON_ROAD_TOLERANCE_M} m)", c.x, c.y)
                    } else {
                        "the map has no roads to run on".to_owned()
                    };
                    problems.push(problem("routes", &route.id, msg));
                }
            }
        }
    }
}

/// Distance in metres between two lon/lat coordinates (haversine).
pub fn distance_m(a: Coord<f64>, b: Coord<f64>) -> f64 {
    Haversine.distance(Point::from(a), Point::from(b))
}

fn problem(layer: &str, id: &str, message: String) -> MapProblem {
    MapProblem { file: format!("{layer}.geojson"), feature: Some(id.to_owned()), message }
}

fn type_name(g: &geo::Geometry<f64>) -> &'static str {
    match g {
        geo::Geometry::Point(_) => "Point",
        geo::Geometry::Line(_) => "Line",
        geo::Geometry::LineString(_) => "LineString",
        geo::Geometry::Polygon(_) => "Polygon",
        geo::Geometry::MultiPoint(_) => "MultiPoint",
        geo::Geometry::MultiLineString(_) => "MultiLineString",
        geo::Geometry::MultiPolygon(_) => "MultiPolygon",
        geo::Geometry::GeometryCollection(_) => "GeometryCollection",
        geo::Geometry::Rect(_) => "Rect",
        geo::Geometry::Triangle(_) => "Triangle",
    }
}

pub(crate) fn str_prop<'a>(props: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    props.get(key).and_then(Value::as_str)
}

fn feature_id(f: &geojson::Feature) -> Option<String> {
    match &f.id {
        Some(geojson::feature::Id::String(s)) => Some(s.clone()),
        Some(geojson::feature::Id::Number(n)) => Some(n.to_string()),
        None => f.properties.as_ref().and_then(|p| p.get("id")).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
    }
}

/// Runs `build` over every feature of a layer with its id, properties and geometry,
/// recording problems for features without an id or a usable geometry.
fn features<T>(
    layer: &Layer,
    problems: &mut Vec<MapProblem>,
    mut build: impl FnMut(&str, serde_json::Map<String, Value>, geo::Geometry<f64>, &mut Vec<MapProblem>) -> Option<T>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(layer.collection.features.len());
    for (i, f) in layer.collection.features.iter().enumerate() {
        let Some(id) = feature_id(f) else { continue }; // reported by check_ids
        let Some(geometry) = &f.geometry else {
            problems.push(problem(&layer.name, &id, "has no geometry".into()));
            continue;
        };
        let geom = match geo::Geometry::<f64>::try_from(&geometry.value) {
            Ok(g) => g,
            Err(e) => {
                problems.push(problem(&layer.name, &id, format!("unreadable geometry (feature #{i}): {e}")));
                continue;
            }
        };
        if let Some(bad) = first_bad_coord(&geom) {
            problems.push(problem(
                &layer.name,
                &id,
                format!("coordinate ({}, {}) is not a WGS 84 lon/lat", bad.x, bad.y),
            ));
            continue;
        }
        if let Some(t) = build(&id, f.properties.clone().unwrap_or_default(), geom, problems) {
            out.push(t);
        }
    }
    out
}

fn first_bad_coord(g: &geo::Geometry<f64>) -> Option<Coord<f64>> {
    use geo::CoordsIter;
    g.coords_iter().find(|c| crate::Position::new(c.x, c.y).is_err())
}

fn parse_layer(name: &str, text: &str) -> Result<Layer, String> {
    let gj: geojson::GeoJson = text.parse().map_err(|e| format!("not valid GeoJSON: {e}"))?;
    let geojson::GeoJson::FeatureCollection(collection) = gj else {
        return Err("must be a FeatureCollection".into());
    };
    let members = collection.foreign_members.clone().unwrap_or_default();
    let mut geometry_types: Vec<String> = collection
        .features
        .iter()
        .filter_map(|f| f.geometry.as_ref().map(|g| g.value.type_name().to_owned()))
        .collect();
    geometry_types.sort();
    geometry_types.dedup();
    Ok(Layer {
        name: name.to_owned(),
        provenance: members.get("provenance").and_then(Value::as_str).map(str::to_owned),
        illustrative: members.get("illustrative").and_then(Value::as_bool).unwrap_or(false),
        geometry_types,
        collection,
    })
}

fn check_ids(file: &str, fc: &geojson::FeatureCollection, problems: &mut Vec<MapProblem>) {
    let mut seen = HashSet::new();
    for (i, f) in fc.features.iter().enumerate() {
        match feature_id(f) {
            None => problems.push(MapProblem {
                file: file.to_owned(),
                feature: Some(format!("#{i}")),
                message: "has no id".into(),
            }),
            Some(id) => {
                if !seen.insert(id.clone()) {
                    problems.push(MapProblem {
                        file: file.to_owned(),
                        feature: Some(id),
                        message: "id is not unique in the layer".into(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    macro_rules! fixture {
        ($dir:literal, $($layer:literal),*) => {
            vec![$(
                (format!("{}.geojson", $layer), include_str!(concat!("../../../tests/fixtures/maps/", $dir, "/", $layer, ".geojson")).to_owned()),
            )*]
        };
    }

    pub(crate) fn mini() -> Vec<(String, String)> {
        fixture!(
            "mini",
            "boundary",
            "townships",
            "grids",
            "posts",
            "jurisdictions",
            "fences",
            "roads",
            "routes",
            "cameras",
            "venues",
            "no_parking"
        )
    }

    #[test]
    fn the_mini_map_has_no_problems() {
        let (map, problems) = CountyMap::parse(&mini());
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!((map.townships.len(), map.posts.len(), map.routes.len(), map.fences.len()), (2, 2, 1, 1));
        assert!(map.layers["boundary"].provenance.is_some());
        assert!(!map.layers["boundary"].illustrative);
        assert_eq!(
            map.venues.iter().map(|v| (v.id.as_str(), v.kind.as_deref())).collect::<Vec<_>>(),
            [("v-centre", Some("centre")), ("v-east", Some("sub_centre"))]
        );
    }

    #[test]
    fn venues_are_optional_and_each_is_a_centre_or_a_sub_centre_inside_the_county() {
        let without: Vec<_> = mini().into_iter().filter(|(f, _)| f != "venues.geojson").collect();
        let (map, problems) = CountyMap::parse(&without);
        assert!(problems.is_empty() && map.venues.is_empty(), "{problems:#?}");
        let bad = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "v-1", "geometry": {"type": "Point", "coordinates": [107.12, 30.72]},
             "properties": {"id": "v-1", "name": "x", "kind": "office"}},
            {"type": "Feature", "id": "v-2", "geometry": {"type": "Point", "coordinates": [100.0, 30.72]},
             "properties": {"id": "v-2", "name": "y", "kind": "centre"}}]}"#;
        let mut files = without;
        files.push(("venues.geojson".into(), bad.into()));
        let (_, problems) = CountyMap::parse(&files);
        let named: Vec<(Option<&str>, bool)> = problems
            .iter()
            .filter(|p| p.file == "venues.geojson")
            .map(|p| (p.feature.as_deref(), p.message.contains("outside")))
            .collect();
        assert_eq!(named, [(Some("v-1"), false), (Some("v-2"), true)], "{problems:#?}");
    }

    #[test]
    fn no_parking_is_optional_and_each_fence_has_a_kind_and_hours_and_lies_inside_the_county() {
        let (map, problems) = CountyMap::parse(&mini());
        assert!(problems.is_empty(), "{problems:#?}");
        let ids: Vec<&str> = map.no_parking.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["np-school-gate", "np-fire-lane"]);
        let without: Vec<_> = mini().into_iter().filter(|(f, _)| f != "no_parking.geojson").collect();
        let (map, problems) = CountyMap::parse(&without);
        assert!(problems.is_empty() && map.no_parking.is_empty(), "{problems:#?}");
        let bad = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "np-1", "geometry": {"type": "Polygon", "coordinates": [[[107.1, 30.7], [107.11, 30.7], [107.11, 30.71], [107.1, 30.7]]]},
             "properties": {"id": "np-1", "name": "x", "kind": "school_gate", "hours": ["8:00-9:00"]}},
            {"type": "Feature", "id": "np-2", "geometry": {"type": "Polygon", "coordinates": [[[99.1, 30.7], [99.11, 30.7], [99.11, 30.71], [99.1, 30.7]]]},
             "properties": {"id": "np-2", "name": "y", "kind": "fire_lane", "hours": ["00:00-24:00"]}}]}"#;
        let mut files = without;
        files.push(("no_parking.geojson".into(), bad.into()));
        let (_, problems) = CountyMap::parse(&files);
        let named: Vec<(Option<&str>, bool)> = problems
            .iter()
            .filter(|p| p.file == "no_parking.geojson")
            .map(|p| (p.feature.as_deref(), p.message.contains("hours[0]")))
            .collect();
        assert_eq!(named, [(Some("np-1"), true), (Some("np-2"), false)], "{problems:#?}");
    }

    #[test]
    fn the_broken_map_names_each_problem() {
        let files = fixture!(
            "broken",
            "boundary",
            "townships",
            "grids",
            "posts",
            "jurisdictions",
            "fences",
            "roads",
            "routes",
            "cameras"
        );
        let (_, problems) = CountyMap::parse(&files);
        let named = |file: &str, feature: &str, needle: &str| {
            problems
                .iter()
                .any(|p| p.file == file && p.feature.as_deref() == Some(feature) && p.message.contains(needle))
        };
        assert!(named("posts.geojson", "p-far", "outside the county"), "{problems:#?}");
        assert!(named("posts.geojson", "p-west", "not unique"), "{problems:#?}");
        assert!(named("fences.geojson", "f-bowtie", "invalid polygon"), "{problems:#?}");
        assert!(named("routes.geojson", "route-off", "from the nearest road"), "{problems:#?}");
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }

    #[test]
    fn missing_required_layers_and_bad_json_are_named() {
        let (_, problems) = CountyMap::parse(&[("posts.geojson".into(), "{not json".into())]);
        assert!(
            problems.iter().any(|p| p.file == "posts.geojson" && p.message.contains("not valid GeoJSON")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.file == "boundary.geojson" && p.message.contains("missing")), "{problems:?}");
    }
}
