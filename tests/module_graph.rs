//! The daemon library's module graph is a DAG in which lower layers never
//! name higher ones (ARCHITECTURE.md, "Layers"):
//!
//! base (diag, fsutil, sdnotify, metrics, sysclock) ← protocol codecs (visca) ←
//! devices (camera, lighting, osc) ← scene ← config ← command ← engine ←
//! adapters ← daemon
//!
//! and the sans-IO protocol cores name nothing outside their own module
//! but the codecs below them. Read from the sources (every `crate::x` path),
//! so a new upward `use` fails here, not in a review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules of `src/` by layer; a module may only name modules of
/// a lower layer.
const LAYERS: &[&[&str]] = &[
    &["diag", "fsutil", "sdnotify", "metrics", "sysclock"],
    &["visca"],
    &["camera", "lighting", "osc"],
    &["scene"],
    &["config"],
    &["command"],
    &["engine"],
    &["adapters"],
    &["daemon"],
];

/// Sans-IO cores (file, the top-level modules it may name besides its own).
const CORES: &[(&str, &[&str])] = &[
    ("visca/codec.rs", &[]),
    ("visca/command.rs", &[]),
    ("visca/reply.rs", &[]),
    ("camera/link.rs", &["visca"]),
    ("camera/link_ip.rs", &["visca"]),
    ("visca/ip.rs", &[]),
    ("lighting/fade.rs", &[]),
    ("lighting/patch.rs", &[]),
    ("lighting/e131.rs", &[]),
    ("lighting/health.rs", &[]),
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The library's top-level modules, from `pub mod x;` / `mod x;` in lib.rs.
fn library_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(src.join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_string())
        })
        .collect()
}

/// Every top-level module a source file names through `crate::`, with
/// grouped imports (`use crate::{a::X, b}`) expanded. Comments are skipped.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Only the first segment of each item counts.
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let head: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !head.is_empty() {
                        out.insert(head);
                    }
                }
            } else {
                let head: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !head.is_empty() {
                    out.insert(head);
                }
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = library_modules(&src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // module → named module → the files that name it
    let mut g: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if !modules.contains(&top) {
            continue; // the binary's own files (main.rs, bin/…)
        }
        for named in named_modules(&std::fs::read_to_string(&f).unwrap()) {
            if named != top && modules.contains(&named) {
                g.entry(top.clone()).or_default().entry(named).or_default().push(rel.clone());
            }
        }
        g.entry(top).or_default();
    }
    g
}

#[test]
fn every_library_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let unplaced: Vec<_> = library_modules(&src).into_iter().filter(|m| rank(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules without a layer in tests/module_graph.rs (and ARCHITECTURE.md): {unplaced:?}");
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let mut upward = Vec::new();
    for (from, edges) in graph() {
        let Some(rf) = rank(&from) else { continue };
        for (to, files) in edges {
            if let Some(rt) = rank(&to) {
                if rt >= rf {
                    upward.push(format!("{from} → {to} (in {})", files.join(", ")));
                }
            }
        }
    }
    assert!(upward.is_empty(), "edges that go up or sideways in the layer order:\n{}", upward.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    // Independent of the layer table: a depth-first search for a back edge.
    let g = graph();
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle = path[at..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for to in g.get(n).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(to, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if let Some(cycle) = visit(n, &g, &mut state, &mut Vec::new()) {
            panic!("module cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn protocol_cores_name_only_the_codecs_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = library_modules(&src);
    let mut wrong = Vec::new();
    for (file, allowed) in CORES {
        let own = file.split('/').next().unwrap();
        let text = std::fs::read_to_string(src.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for named in named_modules(&text) {
            if modules.contains(&named) && named != own && !allowed.contains(&named.as_str()) {
                wrong.push(format!("{file} names crate::{named}"));
            }
        }
    }
    assert!(wrong.is_empty(), "sans-IO cores reaching outside their layer:\n{}", wrong.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_nested_paths() {
    // The check itself must bite: these are the shapes of import in the tree.
    let found = named_modules("use crate::{config::model::X, engine};\nlet a = crate::adapters::json::f(); // crate::daemon in a comment");
    assert_eq!(found, BTreeSet::from(["adapters".into(), "config".into(), "engine".into()]));
}
