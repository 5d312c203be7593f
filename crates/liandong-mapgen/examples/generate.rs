//! Regenerates the Dazhu demo map in place:
//! `cargo run -p liandong-mapgen --example generate [-- <source dir> <out dir>]`
//! (defaults: `maps/dazhu/source` and `maps/dazhu`, relative to the workspace root).

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let mut args = std::env::args().skip(1);
    let source = args.next().map_or_else(|| root.join("maps/dazhu/source"), PathBuf::from);
    let out = args.next().map_or_else(|| root.join("maps/dazhu"), PathBuf::from);
    let summary = liandong_mapgen::generate(&source, &out)?;
    println!("wrote {}: {summary}", out.display());
    Ok(())
}
