//! The store's layering, checked rather than stated: the two backends (`src/sqlite`,
//! `src/pg`) never import each other, and the shared vocabulary (rows, batch, error,
//! feed, columns, shared) imports neither backend. Only `store.rs`, which forwards each
//! call to its backend, and `lib.rs`, which declares the modules, name both.

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The places in `file` that name a module it may not use: `crate::NAME` for each
/// forbidden name, and `super::super`, which would climb out of a backend.
fn violations(file: &Path, forbidden: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for name in forbidden {
            if code.contains(&format!("crate::{name}::")) || code.contains(&format!("crate::{name}}}")) {
                found.push(format!("{}:{}: uses {name}: {}", file.display(), n + 1, line.trim()));
            }
        }
        if code.contains("super::super") {
            found.push(format!("{}:{}: climbs out of its module: {}", file.display(), n + 1, line.trim()));
        }
    }
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn neither_backend_imports_the_other() {
    let mut found = Vec::new();
    for file in sources(&src().join("sqlite")) {
        found.extend(violations(&file, &["pg", "store"]));
    }
    for file in sources(&src().join("pg")) {
        found.extend(violations(&file, &["sqlite", "store"]));
    }
    assert!(found.is_empty(), "a backend reaches into the other:\n{}", found.join("\n"));
}

#[test]
fn the_shared_vocabulary_imports_no_backend() {
    let mut found = Vec::new();
    for name in ["rows.rs", "batch.rs", "error.rs", "feed.rs", "columns.rs", "shared.rs"] {
        found.extend(violations(&src().join(name), &["sqlite", "pg", "store"]));
    }
    assert!(found.is_empty(), "a shared module depends on a backend:\n{}", found.join("\n"));
}

#[test]
fn an_import_of_the_other_backend_is_found() {
    let dir = std::env::temp_dir().join(format!("liandong-store-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.rs");
    std::fs::write(&file, "use crate::pg::PgStore;\nuse super::super::x;\n// crate::pg:: in a comment\n").unwrap();
    let found = violations(&file, &["pg"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
}
