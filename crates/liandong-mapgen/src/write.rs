//! Writing layers as RFC 7946 FeatureCollections with the foreign members the
//! server's map loader reads (`name`, `provenance`, `illustrative`).
//!
//! One feature per line keeps the files diffable when the generator changes.

use std::path::Path;

use anyhow::Context;
use geo::{Coord, MultiPolygon, Polygon};
use serde_json::{json, Map, Value};

/// A layer ready to be written.
#[derive(Debug)]
pub struct LayerOut {
    pub name: &'static str,
    pub provenance: String,
    pub illustrative: bool,
    pub features: Vec<Value>,
}

impl LayerOut {
    pub fn new(name: &'static str, illustrative: bool, provenance: impl Into<String>) -> Self {
        LayerOut { name, provenance: provenance.into(), illustrative, features: Vec::new() }
    }

    /// Adds a feature; `id` is written both as the feature id and as `properties.id`.
    pub fn push(&mut self, id: &str, geometry: Value, properties: Value) {
        let mut props = Map::new();
        props.insert("id".into(), Value::String(id.to_owned()));
        if let Value::Object(extra) = properties {
            props.extend(extra);
        }
        self.features.push(json!({ "type": "Feature", "id": id, "geometry": geometry, "properties": props }));
    }

    /// Writes `<dir>/<name>.geojson`; returns the number of bytes written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<u64> {
        let mut text = String::from("{\"type\":\"FeatureCollection\",\n");
        text += &format!("\"name\":{},\n", Value::String(self.name.to_owned()));
        text += &format!("\"provenance\":{},\n", Value::String(self.provenance.clone()));
        text += &format!("\"illustrative\":{},\n\"features\":[\n", self.illustrative);
        let features: Vec<String> = self.features.iter().map(Value::to_string).collect();
        text += &features.join(",\n");
        text += "\n]}\n";
        let path = dir.join(format!("{}.geojson", self.name));
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        Ok(text.len() as u64)
    }
}

fn pos(c: &Coord) -> Value {
    json!([c.x, c.y])
}

pub fn point(c: Coord) -> Value {
    json!({ "type": "Point", "coordinates": pos(&c) })
}

pub fn line(cs: &[Coord]) -> Value {
    json!({ "type": "LineString", "coordinates": cs.iter().map(pos).collect::<Vec<_>>() })
}

fn rings(p: &Polygon) -> Value {
    let mut rings = vec![Value::Array(p.exterior().0.iter().map(pos).collect())];
    rings.extend(p.interiors().iter().map(|r| Value::Array(r.0.iter().map(pos).collect())));
    Value::Array(rings)
}

/// A Polygon when there is one part, else a MultiPolygon.
pub fn area(mp: &MultiPolygon) -> Value {
    match mp.0.as_slice() {
        [one] => json!({ "type": "Polygon", "coordinates": rings(one) }),
        parts => {
            json!({ "type": "MultiPolygon", "coordinates": parts.iter().map(rings).collect::<Vec<_>>() })
        }
    }
}
