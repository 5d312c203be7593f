//! What the core's integration tests and benchmarks share: the Dazhu demo map, read from
//! `maps/dazhu` at the repository's root (the core itself reads no files).
//!
//! Each test and benchmark includes this file as its own module (`#[path]` from
//! `benches/`) and uses part of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use liandong_core::CountyMap;

/// The demo map's directory.
pub fn dazhu_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../maps/dazhu")
}

/// The demo map with only the named layers (`roads` for `roads.geojson`); panics naming
/// the problems if they do not parse cleanly.
pub fn dazhu(layers: &[&str]) -> CountyMap {
    let dir = dazhu_dir();
    let files: Vec<(String, String)> = layers
        .iter()
        .map(|l| (format!("{l}.geojson"), std::fs::read_to_string(dir.join(format!("{l}.geojson"))).unwrap()))
        .collect();
    parse(&files)
}

/// The demo map with every layer in its directory.
pub fn dazhu_every_layer() -> CountyMap {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dazhu_dir()).expect("maps/dazhu exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "geojson") {
            files.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    parse(&files)
}

fn parse(files: &[(String, String)]) -> CountyMap {
    let (map, problems) = CountyMap::parse(files);
    assert!(problems.is_empty(), "{problems:?}");
    map
}
