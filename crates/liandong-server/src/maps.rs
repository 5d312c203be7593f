//! Reading a map directory from disk into a [`CountyMap`].

use std::path::{Path, PathBuf};

use liandong_core::map::MapProblem;
use liandong_core::CountyMap;

#[derive(Debug, thiserror::Error)]
pub enum MapLoadError {
    #[error("cannot read map directory {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("map directory {path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, problems: Vec<MapProblem> },
}

/// The `*.geojson` files of a directory as `(file name, text)`, sorted by name.
pub fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, MapLoadError> {
    let err = |source| MapLoadError::Read { path: dir.to_owned(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if path.extension().is_some_and(|e| e == "geojson") {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let text =
                std::fs::read_to_string(&path).map_err(|source| MapLoadError::Read { path: path.clone(), source })?;
            files.push((name, text));
        }
    }
    files.sort();
    Ok(files)
}

/// Parses and checks a map directory; any problem refuses the whole map.
pub fn load_dir(dir: &Path) -> Result<CountyMap, MapLoadError> {
    let (map, problems) = CountyMap::parse(&read_dir(dir)?);
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(MapLoadError::Invalid { path: dir.to_owned(), problems })
    }
}
