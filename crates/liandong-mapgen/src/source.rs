//! Reading the generator's inputs from `maps/<county>/source/`: the GCJ-02 county
//! boundary and three small hand-kept CSV files (townships, villages, places).
//!
//! The CSV files are simple on purpose: comma-separated, a header line, no quoting
//! (no field contains a comma), UTF-8.

use std::path::Path;

use anyhow::{bail, ensure, Context};
use geo::{Coord, MapCoords, MultiPolygon};

/// The boundary file in the source directory (GCJ-02 coordinates).
pub const BOUNDARY_FILE: &str = "dazhu-511724.gcj02.geojson";

/// A township (乡镇/街道) and its seat.
#[derive(Debug, Clone)]
pub struct Township {
    /// 12-digit statistical division code.
    pub code: String,
    pub name: String,
    pub name_en: String,
    /// Seat position, WGS 84.
    pub seat: Coord,
    /// `sourced` when the seat comes from a public reference, `placed` when plausible.
    pub seat_source: String,
}

impl Township {
    /// The name without its 镇/乡/街道 suffix, for road and camera names.
    pub fn short(&self) -> &str {
        short_name(&self.name)
    }
}

/// Strips the administrative suffix from a township name (石河镇 → 石河).
pub fn short_name(name: &str) -> &str {
    ["街道", "镇", "乡"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

/// A village or community (村/社区): one grid each.
#[derive(Debug, Clone)]
pub struct Village {
    pub code: String,
    /// Display name: 五四村委会 style official names shortened to 五四村.
    pub name: String,
    pub township_code: String,
}

/// A named place from the seed report or a fence-worthy venue.
#[derive(Debug, Clone)]
pub struct Place {
    pub key: String,
    pub name: String,
    pub name_en: String,
    pub centre: Coord,
    pub fence_kind: String,
    pub fence_radius_m: f64,
    pub post: Option<PlacePost>,
}

/// A police post that belongs to a place (the four posts the seed report names).
#[derive(Debug, Clone)]
pub struct PlacePost {
    pub kind: String,
    pub name: String,
    pub name_en: String,
    pub at: Coord,
}

/// Everything read from the source directory.
#[derive(Debug, Clone)]
pub struct Sources {
    /// County boundary converted to WGS 84, cleaned and oriented.
    pub boundary: MultiPolygon,
    /// The same boundary as published, GCJ-02, for the conversion check.
    pub boundary_gcj02: MultiPolygon,
    pub townships: Vec<Township>,
    pub villages: Vec<Village>,
    pub places: Vec<Place>,
}

pub fn read(dir: &Path) -> anyhow::Result<Sources> {
    let boundary_gcj02 = read_boundary(&dir.join(BOUNDARY_FILE))?;
    let boundary = crate::geom::clean(&boundary_gcj02.map_coords(|c| {
        let (x, y) = liandong_core::datum::gcj02_to_wgs84(c.x, c.y);
        Coord { x, y }
    }));
    let townships = read_csv(&dir.join("townships.csv"), 6)?
        .into_iter()
        .map(|r| {
            Ok(Township {
                code: r[0].clone(),
                name: r[1].clone(),
                name_en: r[2].clone(),
                seat: coord(&r[3], &r[4])?,
                seat_source: r[5].clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let villages = read_csv(&dir.join("villages.csv"), 3)?
        .into_iter()
        .map(|r| Village { code: r[0].clone(), name: village_display_name(&r[1]), township_code: r[2].clone() })
        .collect();
    let places = read_csv(&dir.join("places.csv"), 13)?
        .into_iter()
        .map(|r| {
            let post = if r[7].is_empty() {
                None
            } else {
                Some(PlacePost {
                    kind: r[7].clone(),
                    name: r[8].clone(),
                    name_en: r[9].clone(),
                    at: coord(&r[10], &r[11])?,
                })
            };
            Ok(Place {
                key: r[0].clone(),
                name: r[1].clone(),
                name_en: r[2].clone(),
                centre: coord(&r[3], &r[4])?,
                fence_kind: r[5].clone(),
                fence_radius_m: r[6].parse().with_context(|| format!("fence_radius_m {:?}", r[6]))?,
                post,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Sources { boundary, boundary_gcj02, townships, villages, places })
}

/// Official 村民委员会/社区居民委员会 names shortened to the everyday 村/社区 form.
fn village_display_name(official: &str) -> String {
    for (suffix, short) in [("社区居民委员会", "社区"), ("村民委员会", "村"), ("居民委员会", "社区"), ("委员会", "")]
    {
        if let Some(stem) = official.strip_suffix(suffix) {
            return format!("{stem}{short}");
        }
    }
    official.to_owned()
}

fn coord(lon: &str, lat: &str) -> anyhow::Result<Coord> {
    let x = lon.parse().with_context(|| format!("lon {lon:?}"))?;
    let y = lat.parse().with_context(|| format!("lat {lat:?}"))?;
    Ok(Coord { x, y })
}

/// Rows of a header-first CSV file, each with exactly `columns` fields.
fn read_csv(path: &Path, columns: usize) -> anyhow::Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split(',').map(|f| f.trim().to_owned()).collect();
        ensure!(
            fields.len() == columns,
            "{}:{}: expected {columns} fields, found {}",
            path.display(),
            n + 1,
            fields.len()
        );
        rows.push(fields);
    }
    Ok(rows)
}

/// The boundary as a MultiPolygon; accepts a bare geometry, a Feature or a
/// FeatureCollection of (Multi)Polygons.
fn read_boundary(path: &Path) -> anyhow::Result<MultiPolygon> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let gj: geojson::GeoJson = text.parse().with_context(|| format!("parsing {}", path.display()))?;
    let geometries: Vec<geojson::Geometry> = match gj {
        geojson::GeoJson::Geometry(g) => vec![g],
        geojson::GeoJson::Feature(f) => f.geometry.into_iter().collect(),
        geojson::GeoJson::FeatureCollection(fc) => fc.features.into_iter().filter_map(|f| f.geometry).collect(),
    };
    let mut polygons = Vec::new();
    for g in geometries {
        match geo::Geometry::<f64>::try_from(g.value)? {
            geo::Geometry::Polygon(p) => polygons.push(p),
            geo::Geometry::MultiPolygon(mp) => polygons.extend(mp.0),
            other => bail!("{}: expected (Multi)Polygon boundary, found {other:?}", path.display()),
        }
    }
    ensure!(!polygons.is_empty(), "{}: no polygon", path.display());
    Ok(MultiPolygon::new(polygons))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_village_names_are_shortened() {
        for (official, shown) in [("五四村民委员会", "五四村"), ("大同社区居民委员会", "大同社区"), ("某某", "某某")]
        {
            assert_eq!(village_display_name(official), shown);
        }
        assert_eq!(short_name("石桥铺镇"), "石桥铺");
        assert_eq!(short_name("竹阳街道"), "竹阳");
        assert_eq!(short_name("朝阳乡"), "朝阳");
    }
}
