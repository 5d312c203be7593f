//! `liandong import osm`: the test writes a small `.osm.pbf` byte by byte (the OSM PBF
//! format, wiki.openstreetmap.org/wiki/PBF_Format: an OSMHeader blob stored raw and one
//! OSMData blob, zlib-wrapped, holding a PrimitiveBlock with DenseNodes and Ways), runs
//! the real binary on it, checks the roads layer written, then builds a road graph from
//! a map directory holding it. Truncated and foreign files must fail with a clear
//! message and a non-zero exit, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use liandong_core::road::{RoadGraph, RoadSpeeds};
use liandong_core::{CountyMap, Position};
use liandong_test_support::{fresh_dir, mini_map};
use serde_json::Value;

/// Nodes of the fixture: id, lon, lat. The mini test map's posts are at nodes 5 and 7.
const NODES: [(i64, f64, f64); 12] = [
    (1, 107.05, 30.6),
    (2, 107.1, 30.6),
    (3, 107.2, 30.6),
    (4, 107.3, 30.6),
    (5, 107.1, 30.7),
    (6, 107.1, 30.8),
    (7, 107.3, 30.7),
    (8, 107.3, 30.8),
    (9, 107.25, 30.65),
    (10, 107.15, 30.75),
    (11, 107.16, 30.75),
    (12, 107.1612345, 30.7654321),
];

/// Ways of the fixture: id, tags, node references.
///
/// ```text
///   6 ——tertiary 北路—— 8
///   |                   | track (105: its third node, 999, is not in the extract)
///   5 (p-west)          7 (p-east)
///   | secondary 纵路   ↗ residential, one-way 3→7 (102)     footway 7–9–4 (103, dropped)
///   1 —— 2 ——primary 横路—— 3 —— 4
/// ```
#[allow(clippy::type_complexity)]
const WAYS: [(i64, &[(&str, &str)], &[i64]); 7] = [
    (100, &[("highway", "primary"), ("name", "Heng Lu"), ("name:zh", "横路")], &[1, 2, 3, 4]),
    (101, &[("highway", "secondary"), ("name", "纵路")], &[2, 5, 6]),
    (102, &[("highway", "residential"), ("oneway", "yes")], &[3, 7]),
    (103, &[("highway", "footway"), ("name", "步道")], &[7, 9, 4]),
    (104, &[("building", "yes")], &[10, 11, 12, 10]),
    (105, &[("highway", "track"), ("tracktype", "grade2")], &[7, 8, 999]),
    (106, &[("highway", "tertiary"), ("name", "北路")], &[8, 6]),
];

/// A way whose nodes are all missing from the extract writes nothing.
const WAY_WITHOUT_NODES: (i64, &[(&str, &str)], &[i64]) = (107, &[("highway", "service")], &[997, 998]);

// Protocol Buffers wire format (protobuf.dev/programming-guides/encoding).

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn uint_field(field: u64, v: u64, out: &mut Vec<u8>) {
    varint(field << 3, out);
    varint(v, out);
}

fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(field << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn packed_field(field: u64, values: impl IntoIterator<Item = u64>, out: &mut Vec<u8>) {
    let mut packed = Vec::new();
    values.into_iter().for_each(|v| varint(v, &mut packed));
    bytes_field(field, &packed, out);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Delta-coded `sint64`s, as DenseNodes and way references are stored.
fn deltas(values: impl IntoIterator<Item = i64>) -> Vec<u64> {
    let mut prev = 0;
    values
        .into_iter()
        .map(|v| {
            let d = v - prev;
            prev = v;
            zigzag(d)
        })
        .collect()
}

/// A zlib stream (RFC 1950) holding one stored, uncompressed deflate block (RFC 1951
/// §3.2.4): real zlib data that needs no compressor to write.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 0xFFFF, "one stored block holds at most 65535 bytes");
    let mut out = vec![0x78, 0x01, 0x01];
    let len = data.len() as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&(b << 16 | a).to_be_bytes());
    out
}

/// One file block: the BlobHeader's length (4 bytes, big-endian), the BlobHeader, the Blob.
fn file_block(kind: &str, payload: &[u8], zlib: bool, out: &mut Vec<u8>) {
    let mut blob = Vec::new();
    if zlib {
        uint_field(2, payload.len() as u64, &mut blob); // raw_size
        bytes_field(3, &zlib_stored(payload), &mut blob); // zlib_data
    } else {
        bytes_field(1, payload, &mut blob); // raw
    }
    let mut header = Vec::new();
    bytes_field(1, kind.as_bytes(), &mut header); // type
    uint_field(3, blob.len() as u64, &mut header); // datasize
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&blob);
}

fn osm_pbf() -> Vec<u8> {
    let mut header_block = Vec::new();
    bytes_field(4, b"OsmSchema-V0.6", &mut header_block); // required_features
    bytes_field(4, b"DenseNodes", &mut header_block);
    bytes_field(16, b"liandong tests", &mut header_block); // writingprogram

    let ways: Vec<_> = WAYS.iter().chain([&WAY_WITHOUT_NODES]).collect();
    // String table: index 0 is the empty string by convention.
    let mut strings: Vec<&str> = vec![""];
    for (_, tags, _) in &ways {
        for (k, v) in tags.iter() {
            for s in [k, v] {
                if !strings.contains(s) {
                    strings.push(s);
                }
            }
        }
    }
    let index = |s: &str| strings.iter().position(|t| *t == s).unwrap() as u64;
    let mut table = Vec::new();
    strings.iter().for_each(|s| bytes_field(1, s.as_bytes(), &mut table));

    // Granularity 100 nanodegrees: coordinates in units of 1e-7°.
    let units = |deg: f64| (deg * 1e7).round() as i64;
    let mut dense = Vec::new();
    packed_field(1, deltas(NODES.iter().map(|n| n.0)), &mut dense); // id
    packed_field(8, deltas(NODES.iter().map(|n| units(n.2))), &mut dense); // lat
    packed_field(9, deltas(NODES.iter().map(|n| units(n.1))), &mut dense); // lon
    let mut node_group = Vec::new();
    bytes_field(2, &dense, &mut node_group); // dense

    let mut way_group = Vec::new();
    for (id, tags, refs) in &ways {
        let mut way = Vec::new();
        uint_field(1, *id as u64, &mut way);
        packed_field(2, tags.iter().map(|(k, _)| index(k)), &mut way); // keys
        packed_field(3, tags.iter().map(|(_, v)| index(v)), &mut way); // vals
        packed_field(8, deltas(refs.iter().copied()), &mut way); // refs
        bytes_field(3, &way, &mut way_group); // ways
    }

    let mut block = Vec::new();
    bytes_field(1, &table, &mut block); // stringtable
    bytes_field(2, &node_group, &mut block); // primitivegroup
    bytes_field(2, &way_group, &mut block); // primitivegroup
    uint_field(17, 100, &mut block); // granularity

    let mut file = Vec::new();
    file_block("OSMHeader", &header_block, false, &mut file);
    file_block("OSMData", &block, true, &mut file);
    file
}

/// An empty directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = fresh_dir(&format!("import-osm-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn liandong(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_liandong")).args(args).output().unwrap()
}

fn import(file: &Path, out: &Path) -> Output {
    liandong(&["import".as_ref(), "osm".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str()])
}

fn node(id: i64) -> [f64; 2] {
    let n = NODES.iter().find(|n| n.0 == id).unwrap();
    [n.1, n.2]
}

#[test]
fn imports_the_roads_of_an_extract_and_routes_on_them() {
    let dir = scratch("ok");
    let pbf = dir.join("fixture.osm.pbf");
    std::fs::write(&pbf, osm_pbf()).unwrap();
    let map_dir = dir.join("map");

    let out = import(&pbf, &map_dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("pass 1/2 (ways): 20 elements read, 8 ways, 6 roads kept"), "{stderr}");
    assert!(stderr.contains("5 features"), "{stderr}");

    // The layer: which ways, their classes, names, one-way tags and coordinates.
    let text = std::fs::read_to_string(map_dir.join("roads.geojson")).unwrap();
    let layer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(layer["type"], "FeatureCollection");
    assert_eq!(layer["name"], "roads");
    assert_eq!(layer["illustrative"], false);
    assert!(layer["provenance"].as_str().unwrap().contains("OpenStreetMap"));
    let features = layer["features"].as_array().unwrap();
    // (id, class, name, oneway, nodes)
    type Expected = (&'static str, &'static str, Option<&'static str>, Option<&'static str>, &'static [i64]);
    let expected: [Expected; 5] = [
        ("osm-way-100", "primary", Some("横路"), None, &[1, 2, 3, 4]),
        ("osm-way-101", "secondary", Some("纵路"), None, &[2, 5, 6]),
        ("osm-way-102", "residential", None, Some("yes"), &[3, 7]),
        ("osm-way-105", "track", None, None, &[7, 8]),
        ("osm-way-106", "tertiary", Some("北路"), None, &[8, 6]),
    ];
    assert_eq!(features.len(), expected.len(), "{text}");
    for (f, (id, class, name, oneway, refs)) in features.iter().zip(expected) {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["id"], id);
        let props = &f["properties"];
        assert_eq!(props["id"], id);
        assert_eq!(props["class"], class, "{id}");
        assert_eq!(props["name"].as_str(), name, "{id}");
        assert_eq!(props["oneway"].as_str(), oneway, "{id}");
        assert_eq!(f["geometry"]["type"], "LineString");
        let coords: Vec<[f64; 2]> = serde_json::from_value(f["geometry"]["coordinates"].clone()).unwrap();
        assert_eq!(coords, refs.iter().map(|r| node(*r)).collect::<Vec<_>>(), "{id}");
    }

    // A map directory with it: the mini map's other layers (its patrol route runs on
    // the imported 纵路 and 横路).
    let mini = mini_map();
    for entry in std::fs::read_dir(&mini).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "roads.geojson" {
            std::fs::copy(&path, map_dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let check = liandong(&["maps".as_ref(), "check".as_ref(), map_dir.as_os_str()]);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let files: Vec<(String, String)> = std::fs::read_dir(&map_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "geojson"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    let (map, problems) = CountyMap::parse(&files);
    assert!(problems.is_empty(), "{problems:?}");
    let graph = RoadGraph::from_map(&map, &RoadSpeeds::default());
    // Nodes 1–8; segments 3 + 2 + 1 + 1 + 1.
    assert_eq!((graph.node_count(), graph.edge_count()), (8, 8));

    let at = |id: i64| Position::new(node(id)[0], node(id)[1]).unwrap();
    let positions = |ids: &[i64]| ids.iter().map(|id| at(*id)).collect::<Vec<_>>();
    let west = Position::new(map.posts[0].point.x(), map.posts[0].point.y()).unwrap();
    let east = Position::new(map.posts[1].point.x(), map.posts[1].point.y()).unwrap();
    assert_eq!((west, east), (at(5), at(7)), "the mini map's posts are at nodes 5 and 7");
    // West to east down 纵路, along 横路 and up the one-way street.
    let there = graph.route(west, east).unwrap();
    assert_eq!(there.geometry, positions(&[5, 2, 3, 7]));
    // Back: not against the one-way street, but up the track and along 北路.
    let back = graph.route(east, west).unwrap();
    assert_eq!(back.geometry, positions(&[7, 8, 6, 5]));
    assert!(back.travel_s > there.travel_s, "{} s vs {} s", back.travel_s, there.travel_s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_truncated_or_foreign_file_fails_cleanly() {
    let dir = scratch("bad");
    let good = osm_pbf();
    let rows: [(&str, Vec<u8>, &str); 4] = [
        ("cut in the data blob", good[..good.len() - 30].to_vec(), "cannot read"),
        ("cut in a blob header", good[..good.len() - good.len() / 2].to_vec(), "cannot read"),
        ("not a pbf", b"<?xml version='1.0'?><osm version='0.6'></osm>\n".to_vec(), "cannot read"),
        ("empty", Vec::new(), "no roads"),
    ];
    for (name, bytes, needle) in rows {
        let file = dir.join(format!("{}.osm.pbf", name.replace(' ', "-")));
        std::fs::write(&file, &bytes).unwrap();
        let out_dir = dir.join(name.replace(' ', "-"));
        let out = import(&file, &out_dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(!out.status.success(), "{name}: exit {:?}", out.status);
        assert!(stderr.contains(needle) && stderr.contains(file.to_str().unwrap()), "{name}: {stderr}");
        assert!(!out_dir.join("roads.geojson").exists(), "{name}: no layer is written");
    }
    let missing = dir.join("no-such.osm.pbf");
    let out = import(&missing, &dir.join("missing"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
