//! Tidy checks of the server crate's shape, run as a test so that the shape cannot drift:
//! the layers of ARCHITECTURE.md (no module imports a module of a higher layer, and the
//! modules of one layer import each other without a cycle), no function longer than
//! [`MAX_FN_LINES`] and no `too_many_arguments` allowance. In the spirit of
//! rust-analyzer's `xtask/src/tidy.rs`: the rule lives next to the code, not only in prose.
//!
//! The checks read the sources as text. A module is a file or folder directly under
//! `src/` (`sequencer/commit.rs` belongs to `sequencer`); an import is any `crate::name`
//! path outside comments, `use` or inline, grouped (`crate::{a, b}`) or not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers from the top down. A module may use its own layer and the layers below it.
/// A new module must be placed here: the test names the one that is not.
const LAYERS: &[(&str, &[&str])] = &[
    // The crate root builds the application and the transport serves it.
    ("root", &["lib", "serve", "jt808"]),
    // HTTP: handlers, the router, request extractors and the answers to errors.
    (
        "http",
        &[
            "routes",
            "acks",
            "cameras",
            "correction",
            "devices",
            "duty",
            "field",
            "handovers",
            "history",
            "home_visits",
            "incidents",
            "parking",
            "patrol",
            "people",
            "ready",
            "referrals",
            "reports",
            "mediation",
            "sessions",
            "tracks",
            "web",
            "ws",
        ],
    ),
    // Services: work a handler or a timer asks for that is more than one command.
    ("services", &["planning", "hotspots", "retention", "handover", "shift_ends", "mediation_watch", "camera_watch"]),
    // The single writer: numbers, commits and publishes every change.
    ("sequencer", &["sequencer"]),
    // The live feed and the registries the sequencer and the handlers read.
    ("feed and registries", &["feed", "zones", "scope", "travel", "maps", "metrics", "auth", "roster"]),
    // Vocabulary every layer uses.
    (
        "base",
        &["config", "clock", "error", "hashing", "role", "time_fmt", "compress", "passwords", "ratelimit", "openapi"],
    ),
];

/// The longest a function in the server crate may be, in lines from `fn` to its `}`.
const MAX_FN_LINES: usize = 120;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir` with its path relative to `src/` and its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).expect("under src").to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&path).expect("read source")));
            }
        }
    }
    out.sort();
    out
}

/// The module a source file belongs to: its first path component without `.rs`.
fn module_of(rel: &str) -> String {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first).to_owned()
}

/// The code of a line without its comment. A comment starts at `//` at the line's start
/// or after a space (so a URL's `http://` in a string is kept).
fn code_of(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find(" //") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The modules one file's code names with `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(code_of).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        // `$crate::` in a macro and `xcrate::` are not this crate's paths.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c == '$' || c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    if let Some(name) = first_ident(&item) {
                        out.insert(name);
                    }
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else if depth == 1 {
                    item.push(c);
                }
            }
        } else if let Some(name) = first_ident(rest) {
            out.insert(name);
        }
    }
    out
}

fn first_ident(s: &str) -> Option<String> {
    let s = s.trim_start();
    let name: String = s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// What is wrong with the layering of these sources, one line per fault.
fn layer_faults(layers: &[(&str, &[&str])], files: &[(String, String)]) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> =
        layers.iter().enumerate().flat_map(|(n, (_, mods))| mods.iter().map(move |m| (*m, n))).collect();
    let mut faults = Vec::new();
    // Edges between modules of one layer, to look for cycles.
    let mut same: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let from = module_of(rel);
        let Some(&from_layer) = layer_of.get(from.as_str()) else {
            faults.push(format!("{rel}: module `{from}` is in no layer: add it to LAYERS in tests/tidy.rs"));
            continue;
        };
        for to in imports(text) {
            if to == from {
                continue;
            }
            let Some(&to_layer) = layer_of.get(to.as_str()) else {
                // A path that is not a module of the crate (a macro or a re-exported item
                // at the root) names nothing to check.
                continue;
            };
            if to_layer < from_layer {
                faults.push(format!(
                    "{rel}: `{from}` ({}) imports `{to}` of a higher layer ({})",
                    layers[from_layer].0, layers[to_layer].0
                ));
            } else if to_layer == from_layer {
                same.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    faults.extend(cycles(&same));
    faults
}

/// Each cycle of the graph, once, as `a -> b -> a`.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        // Depth-first from `start`, looking for a way back to it through nodes after it
        // in order, so that each cycle is reported from its smallest node only.
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((node, path)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    found.insert(format!("cycle in one layer: {} -> {start}", path.join(" -> ")));
                } else if next > start && !path.contains(next) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Functions longer than `max` lines, as `file:line name (n lines)`. A function ends at
/// the first line after it that closes a block at the indentation of its `fn`.
fn long_functions(files: &[(String, String)], max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = code_of(line);
            let Some(at) = fn_keyword(code) else { continue };
            if code.trim_end().ends_with(';') {
                continue;
            }
            let indent = &line[..line.len() - line.trim_start().len()];
            let name = first_ident(&code[at + 3..]).unwrap_or_default();
            let close = format!("{indent}}}");
            if let Some(len) = lines[i + 1..].iter().position(|l| l.starts_with(&close)).map(|j| j + 2) {
                if len > max {
                    out.push(format!("{rel}:{} {name} ({len} lines)", i + 1));
                }
            }
        }
    }
    out
}

/// Where `fn ` starts a function item on this line of code, if it does.
fn fn_keyword(code: &str) -> Option<usize> {
    let t = code.trim_start();
    let offset = code.len() - t.len();
    let mut rest = t;
    for prefix in ["pub(crate) ", "pub(super) ", "pub ", "const ", "async ", "unsafe "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest.starts_with("fn ").then(|| offset + (t.len() - rest.len()))
}

#[test]
fn no_module_imports_a_higher_layer_and_no_layer_has_a_cycle() {
    let faults = layer_faults(LAYERS, &sources(&src_dir()));
    assert!(faults.is_empty(), "layering faults (see ARCHITECTURE.md, Layers):\n{}", faults.join("\n"));
}

#[test]
fn no_function_of_the_server_is_longer_than_the_limit() {
    let long = long_functions(&sources(&src_dir()), MAX_FN_LINES);
    assert!(long.is_empty(), "functions over {MAX_FN_LINES} lines: split them\n{}", long.join("\n"));
}

#[test]
fn no_function_of_the_server_is_allowed_too_many_arguments() {
    let allowed: Vec<String> = sources(&src_dir())
        .iter()
        .flat_map(|(rel, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| code_of(l).contains("too_many_arguments"))
                .map(move |(n, _)| format!("{rel}:{}", n + 1))
        })
        .collect();
    assert!(allowed.is_empty(), "make the arguments a struct instead of allowing them:\n{}", allowed.join("\n"));
}

// The checks themselves, on sources made up for them, so that a check that cannot fail
// is seen to fail.

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect()
}

const TOY: &[(&str, &[&str])] = &[("top", &["a", "b"]), ("bottom", &["c", "d"])];

#[test]
fn the_layer_check_finds_an_upward_import_in_any_spelling() {
    for text in [
        "use crate::a::Thing;",
        "use crate::{d, a::Thing};",
        "fn f() { crate::a::g() }",
        "use crate::{\n    d::X,\n    b::{Y, Z},\n};",
    ] {
        let faults = layer_faults(TOY, &files(&[("c.rs", text)]));
        assert_eq!(faults.len(), 1, "{text}: {faults:?}");
        assert!(faults[0].contains("`c` (bottom) imports"), "{faults:?}");
    }
}

#[test]
fn the_layer_check_allows_downward_imports_and_ignores_comments_and_macros() {
    let text = "use crate::c::X;\n// crate::a::old\n/// see [`crate::a::Y`]\nlet u = \"http://x\"; // crate::a\n$crate::a::m!();";
    assert_eq!(layer_faults(TOY, &files(&[("b/mod.rs", text), ("c.rs", "")])), Vec::<String>::new());
}

#[test]
fn the_layer_check_finds_a_cycle_within_a_layer_and_a_module_in_no_layer() {
    let faults =
        layer_faults(TOY, &files(&[("c.rs", "use crate::d::X;"), ("d/inner.rs", "use crate::c::Y;"), ("e.rs", "")]));
    assert_eq!(
        faults,
        vec![
            "e.rs: module `e` is in no layer: add it to LAYERS in tests/tidy.rs".to_owned(),
            "cycle in one layer: c -> d -> c".to_owned(),
        ]
    );
}

#[test]
fn the_length_check_counts_a_function_from_fn_to_its_closing_brace() {
    let body = |n: usize| (0..n).map(|_| "    x();\n").collect::<String>();
    let text = format!(
        "fn short() {{\n{}}}\n\nimpl A {{\n    pub async fn long(\n        a: u8,\n    ) {{\n{}    }}\n}}\n",
        body(3),
        body(8)
    );
    assert_eq!(long_functions(&files(&[("a.rs", &text)]), 10), vec!["a.rs:8 long (12 lines)".to_owned()]);
    assert_eq!(long_functions(&files(&[("a.rs", &text)]), 12), Vec::<String>::new());
}
