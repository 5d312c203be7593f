//! `liandong import osm FILE.osm.pbf --out DIR`: the road network of an OpenStreetMap
//! extract as the `roads` layer of a map directory (`DIR/roads.geojson`), in the shape
//! `maps check` and `RoadGraph::from_map` read.
//!
//! The extract is read twice with `osmpbf` (format: wiki.openstreetmap.org/wiki/PBF_Format):
//! first the ways, keeping those that are roads and noting the nodes they need, then the
//! nodes, keeping only the coordinates of those. Memory therefore grows with the roads,
//! not with the extract. OpenStreetMap coordinates are WGS 84 already.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use osmpbf::{Element, ElementReader};
use serde_json::{json, Map, Value};

/// The `highway` values kept: roads a patrol car can drive. Links join their roads;
/// `road` is OpenStreetMap's "unknown type". Footways, paths, steps, cycleways and
/// pedestrian areas are left out: the planner routes vehicles, and the last metres on
/// foot are each route's off-road access leg.
const ROAD_CLASSES: [&str; 16] = [
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "service",
    "track",
    "road",
];

/// Progress is reported on stderr every this many elements of a pass.
const PROGRESS_EVERY: u64 = 1_000_000;

/// A way kept in the first pass.
struct RoadWay {
    id: i64,
    class: String,
    name: Option<String>,
    oneway: Option<String>,
    refs: Vec<i64>,
}

/// What an import found and wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub elements: u64,
    pub ways: u64,
    pub roads: u64,
    /// Features written: a road cut by missing nodes gives one per remaining piece.
    pub features: u64,
    pub nodes: u64,
    /// Node references of kept roads that the extract does not contain (ways cut at the
    /// extract's edge).
    pub missing_nodes: u64,
}

/// Reads the extract at `file` and writes `out/roads.geojson` (through a temporary file
/// renamed into place, so a failed import leaves no half-written layer).
pub fn run(file: &Path, out: &Path) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut roads: Vec<RoadWay> = Vec::new();
    let reader = ElementReader::from_path(file).with_context(|| format!("cannot open {}", file.display()))?;
    reader
        .for_each(|element| {
            summary.elements += 1;
            if summary.elements.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("pass 1/2 (ways): {} elements read, {} roads kept", summary.elements, roads.len());
            }
            let Element::Way(way) = element else { return };
            summary.ways += 1;
            let mut road = RoadWay { id: way.id(), class: String::new(), name: None, oneway: None, refs: Vec::new() };
            let mut name_zh = None;
            for (key, value) in way.tags() {
                match key {
                    "highway" if ROAD_CLASSES.contains(&value) => road.class = value.to_owned(),
                    "name" => road.name = Some(value.to_owned()),
                    "name:zh" => name_zh = Some(value.to_owned()),
                    "oneway" => road.oneway = Some(value.to_owned()),
                    _ => {}
                }
            }
            if road.class.is_empty() {
                return;
            }
            road.name = name_zh.or(road.name);
            road.refs = way.refs().collect();
            roads.push(road);
        })
        .with_context(|| format!("cannot read {} (pass 1/2, ways)", file.display()))?;
    summary.roads = roads.len() as u64;
    eprintln!(
        "pass 1/2 (ways): {} elements read, {} ways, {} roads kept",
        summary.elements, summary.ways, summary.roads
    );
    if roads.is_empty() {
        // An extract without a single road is the wrong file (or an empty one); an
        // empty layer would only hide that.
        anyhow::bail!("{}: no roads (ways tagged highway={}) found", file.display(), ROAD_CLASSES.join("|"));
    }

    // The nodes the roads need, sorted for binary search, with their coordinates in
    // 1e-7° (the PBF's own precision) once found.
    let mut needed: Vec<i64> = roads.iter().flat_map(|r| r.refs.iter().copied()).collect();
    needed.sort_unstable();
    needed.dedup();
    let mut coords: Vec<Option<(i32, i32)>> = vec![None; needed.len()];
    let mut elements = 0u64;
    let reader = ElementReader::from_path(file).with_context(|| format!("cannot open {}", file.display()))?;
    reader
        .for_each(|element| {
            elements += 1;
            if elements.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("pass 2/2 (nodes): {elements} of {} elements read", summary.elements);
            }
            let (id, lon, lat) = match element {
                Element::DenseNode(n) => (n.id(), n.decimicro_lon(), n.decimicro_lat()),
                Element::Node(n) => (n.id(), n.decimicro_lon(), n.decimicro_lat()),
                _ => return,
            };
            if let Ok(i) = needed.binary_search(&id) {
                coords[i] = Some((lon, lat));
            }
        })
        .with_context(|| format!("cannot read {} (pass 2/2, nodes)", file.display()))?;
    summary.nodes = coords.iter().filter(|c| c.is_some()).count() as u64;
    let position = |id: &i64| needed.binary_search(id).ok().and_then(|i| coords[i]);

    let mut features = Vec::with_capacity(roads.len());
    for road in &roads {
        // Runs of consecutive nodes the extract has; a way clipped at the extract's
        // edge keeps its pieces inside.
        let mut runs: Vec<Vec<(i32, i32)>> = vec![Vec::new()];
        for r in &road.refs {
            match position(r) {
                Some(c) => runs.last_mut().expect("never empty").push(c),
                None => {
                    summary.missing_nodes += 1;
                    runs.push(Vec::new());
                }
            }
        }
        runs.retain(|run| run.len() >= 2);
        let pieces = runs.len();
        for (k, run) in runs.into_iter().enumerate() {
            let id =
                if pieces == 1 { format!("osm-way-{}", road.id) } else { format!("osm-way-{}-{}", road.id, k + 1) };
            features.push(feature(&id, road, &run));
        }
    }
    summary.features = features.len() as u64;
    write_layer(out, file, &features)?;
    eprintln!(
        "wrote {}: {} roads as {} features, {} nodes ({} references to nodes missing from the extract)",
        out.join("roads.geojson").display(),
        summary.roads,
        summary.features,
        summary.nodes,
        summary.missing_nodes
    );
    Ok(summary)
}

/// One road as an RFC 7946 Feature; its id is repeated as `properties.id`, as every
/// layer of a map directory has it.
fn feature(id: &str, road: &RoadWay, run: &[(i32, i32)]) -> Value {
    let mut properties = Map::new();
    properties.insert("id".into(), id.into());
    if let Some(name) = &road.name {
        properties.insert("name".into(), name.as_str().into());
    }
    properties.insert("class".into(), road.class.as_str().into());
    if let Some(oneway) = &road.oneway {
        properties.insert("oneway".into(), oneway.as_str().into());
    }
    let coordinates: Vec<[f64; 2]> =
        run.iter().map(|&(lon, lat)| [f64::from(lon) / 1e7, f64::from(lat) / 1e7]).collect();
    json!({
        "type": "Feature",
        "id": id,
        "geometry": { "type": "LineString", "coordinates": coordinates },
        "properties": properties,
    })
}

/// Writes the FeatureCollection with the foreign members every layer carries (`name`,
/// `provenance`, `illustrative`), one feature a line.
fn write_layer(out: &Path, source: &Path, features: &[Value]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join("roads.geojson");
    let tmp = out.join("roads.geojson.tmp");
    let file_name = source.file_name().map_or_else(|| source.display().to_string(), |n| n.to_string_lossy().into());
    let head = json!({
        "name": "roads",
        "provenance": format!("OpenStreetMap contributors (ODbL 1.0, openstreetmap.org/copyright): highway ways of {file_name}, imported by liandong import osm"),
        "illustrative": false,
    });
    let write = || -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write!(w, "{{\"type\":\"FeatureCollection\",")?;
        for (key, value) in head.as_object().expect("an object") {
            writeln!(w, "{}:{},", Value::from(key.as_str()), value)?;
        }
        write!(w, "\"features\":[")?;
        for (i, f) in features.iter().enumerate() {
            write!(w, "{}\n{f}", if i == 0 { "" } else { "," })?;
        }
        writeln!(w, "\n]}}")?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    write().with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_road_feature_has_the_map_layer_shape() {
        let road = RoadWay {
            id: 7,
            class: "primary".into(),
            name: Some("横路".into()),
            oneway: Some("yes".into()),
            refs: vec![1, 2],
        };
        let f = feature("osm-way-7", &road, &[(1_070_500_000, 306_000_000), (1_071_000_000, 306_000_001)]);
        assert_eq!(f["id"], "osm-way-7");
        assert_eq!(f["properties"]["id"], "osm-way-7");
        assert_eq!(f["properties"]["oneway"], "yes");
        assert_eq!(f["geometry"]["coordinates"][1], json!([107.1, 30.6000001]));
        assert_eq!(f["properties"].as_object().unwrap().len(), 4, "{f}");
    }
}
