//! The workspace's layering, checked from Cargo's own view of it (`cargo
//! metadata`, offline and locked) and from the library's sources
//! (ARCHITECTURE.md, "the simulator is its own crate"):
//!
//! 1. `studiod-sim` depends on no other package of this workspace, directly
//!    or transitively, of any kind (normal, build, dev): it checks studiod's
//!    codecs from the outside and must not share code with them.
//! 2. The `studiod` package depends on `studiod-sim` and `rumqttd` (normal
//!    dependencies) only optionally, through feature `demo` and no other
//!    feature; resolved with `--no-default-features`, the daemon's normal
//!    dependency graph contains neither. The .deb is built that way.
//! 3. No file of the library (every module reachable from `src/lib.rs`)
//!    names `studiod_sim` or `rumqttd`: the `demo` feature makes them
//!    available to the package, and only the binary's `demo` module may use
//!    them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SIM: &str = "studiod-sim";
const DAEMON: &str = "studiod";
/// What only the binary's `demo` module may use.
const DEMO_ONLY_PACKAGES: [&str; 2] = ["studiod-sim", "rumqttd"];
const DEMO_ONLY_CRATES: [&str; 2] = ["studiod_sim", "rumqttd"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The host's target triple: the resolve is filtered to it, so cargo needs
/// (offline) only the packages this machine builds.
fn host() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("run rustc -vV");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("host: line in rustc -vV").trim().to_string()
}

fn metadata(extra: &[&str]) -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked", "--filter-platform", &host()])
        .args(extra)
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata {extra:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

/// A resolved dependency: package id and the kinds of the edge (`None` =
/// normal, `"dev"`, `"build"`).
type Edge = (String, Vec<Option<String>>);

/// Cargo's view: packages by id, workspace members, and the resolved graph.
struct Workspace {
    /// package id → package name
    names: BTreeMap<String, String>,
    members: BTreeSet<String>,
    /// package id → its resolved dependencies
    edges: BTreeMap<String, Vec<Edge>>,
    meta: Value,
}

impl Workspace {
    fn load(extra: &[&str]) -> Workspace {
        let meta = metadata(extra);
        let names = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap().to_string(), p["name"].as_str().unwrap().to_string()))
            .collect();
        let members = meta["workspace_members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
        let edges = meta["resolve"]["nodes"]
            .as_array()
            .expect("resolve graph")
            .iter()
            .map(|n| {
                let deps = n["deps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        let kinds = d["dep_kinds"].as_array().unwrap().iter().map(|k| k["kind"].as_str().map(str::to_string)).collect();
                        (d["pkg"].as_str().unwrap().to_string(), kinds)
                    })
                    .collect();
                (n["id"].as_str().unwrap().to_string(), deps)
            })
            .collect();
        Workspace { names, members, edges, meta }
    }

    fn id(&self, name: &str) -> String {
        let ids: Vec<_> = self.members.iter().filter(|id| self.names[*id] == name).collect();
        assert_eq!(ids.len(), 1, "workspace member {name}: {ids:?}");
        ids[0].clone()
    }

    fn package(&self, name: &str) -> &Value {
        let id = self.id(name);
        self.meta["packages"].as_array().unwrap().iter().find(|p| p["id"] == id.as_str()).unwrap()
    }

    /// Names of every package reachable from `from` over edges whose kinds
    /// satisfy `follow` (the start's own edges included).
    fn reachable(&self, from: &str, follow: impl Fn(&Option<String>) -> bool) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.id(from)];
        while let Some(id) = todo.pop() {
            for (dep, kinds) in self.edges.get(&id).map(Vec::as_slice).unwrap_or_default() {
                if kinds.iter().any(&follow) && seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen.into_iter().map(|id| self.names[&id].clone()).collect()
    }
}

fn normal_or_build(kind: &Option<String>) -> bool {
    kind.as_deref() != Some("dev")
}

#[test]
fn the_simulator_depends_on_no_studiod_package() {
    let ws = Workspace::load(&[]);
    let others: BTreeSet<String> = ws.members.iter().map(|id| ws.names[id].clone()).filter(|n| n != SIM).collect();
    assert!(others.contains(DAEMON), "workspace members: {others:?}");
    // Declared dependencies of every kind, as written in its Cargo.toml.
    for dep in ws.package(SIM)["dependencies"].as_array().unwrap() {
        let name = dep["name"].as_str().unwrap();
        assert!(!others.contains(name), "{SIM} declares a dependency on {name} ({:?})", dep["kind"]);
    }
    // And resolved, transitively, over every kind of edge.
    let reached = ws.reachable(SIM, |_| true);
    let bad: Vec<_> = reached.intersection(&others).collect();
    assert!(bad.is_empty(), "{SIM} depends (transitively) on {bad:?}");
    assert!(reached.contains("tokio"), "resolve graph looks empty: {reached:?}");
}

#[test]
fn the_daemon_reaches_the_simulator_and_the_broker_only_through_feature_demo() {
    let ws = Workspace::load(&[]);
    let pkg = ws.package(DAEMON);
    for dep in pkg["dependencies"].as_array().unwrap() {
        let name = dep["name"].as_str().unwrap();
        if DEMO_ONLY_PACKAGES.contains(&name) && dep["kind"].is_null() {
            assert_eq!(dep["optional"], true, "{DAEMON}'s normal dependency on {name} must be optional (feature demo)");
        }
    }
    let features = pkg["features"].as_object().unwrap();
    for (feature, enables) in features {
        for e in enables.as_array().unwrap() {
            let e = e.as_str().unwrap();
            let dep = e.strip_prefix("dep:").unwrap_or(e).split(['/', '?']).next().unwrap();
            if DEMO_ONLY_PACKAGES.contains(&dep) {
                assert_eq!(feature, "demo", "feature {feature} enables {e}; only feature demo may");
            }
        }
    }
    let demo: Vec<&str> = features["demo"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for p in DEMO_ONLY_PACKAGES {
        assert!(demo.contains(&format!("dep:{p}").as_str()), "feature demo: {demo:?}");
    }
    // The booth's package is built without it.
    assert_eq!(pkg["metadata"]["deb"]["default-features"], false, "[package.metadata.deb] default-features must be false");

    // Resolved: without default features neither is in the daemon's normal
    // graph, however indirectly; with them, both are (so the check above
    // is not vacuous).
    let lean = Workspace::load(&["--no-default-features"]).reachable(DAEMON, normal_or_build);
    for p in DEMO_ONLY_PACKAGES {
        assert!(!lean.contains(p), "{DAEMON} without default features still depends on {p}");
    }
    let full = ws.reachable(DAEMON, normal_or_build);
    for p in DEMO_ONLY_PACKAGES {
        assert!(full.contains(p), "{DAEMON} with default features should reach {p} (feature demo): {full:?}");
    }
}

/// The library's source files: `src/lib.rs` and every file module reachable
/// from it through `mod name;` (honouring `#[path = "…"]`).
fn library_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![root().join("src/lib.rs")];
    while let Some(file) = todo.pop() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_stem().unwrap().to_str().unwrap();
        let parent = file.parent().unwrap();
        // Where `mod x;` looks for x: beside a mod.rs/lib.rs, else in a folder named after the file.
        let dir = if matches!(name, "lib" | "main" | "mod") { parent.to_path_buf() } else { parent.join(name) };
        let mut path_attr: Option<String> = None;
        for line in text.lines() {
            let line = line.trim();
            if let Some(p) = line.strip_prefix("#[path").and_then(|r| r.split('"').nth(1)) {
                path_attr = Some(p.to_string());
                continue;
            }
            let decl = line.strip_prefix("pub(crate) ").or_else(|| line.strip_prefix("pub ")).unwrap_or(line);
            if let Some(m) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                let child = match path_attr.take() {
                    Some(p) => parent.join(p),
                    None => {
                        let flat = dir.join(format!("{}.rs", m.trim()));
                        if flat.exists() {
                            flat
                        } else {
                            dir.join(m.trim()).join("mod.rs")
                        }
                    }
                };
                assert!(child.exists(), "{}: module {m} not found at {}", file.display(), child.display());
                todo.push(child);
            } else if !line.starts_with("#[") {
                path_attr = None;
            }
        }
        files.push(file);
    }
    files
}

fn names_crate(line: &str, krate: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(krate)
        .any(|(i, _)| !line[..i].chars().next_back().is_some_and(ident) && !line[i + krate.len()..].chars().next().is_some_and(ident))
}

#[test]
fn no_library_module_uses_the_simulator_or_the_broker() {
    let files = library_files();
    let rel: BTreeSet<String> = files.iter().map(|f| f.strip_prefix(root()).unwrap().display().to_string()).collect();
    // The walk really covers the library and stops at it.
    for expected in ["src/lib.rs", "src/daemon.rs", "src/adapters/mqtt.rs", "src/adapters/http/api.rs", "src/visca/codec.rs"] {
        assert!(rel.contains(expected), "library walk missed {expected}: {rel:?}");
    }
    for binary_only in ["src/demo.rs", "src/main.rs"] {
        assert!(!rel.contains(binary_only), "{binary_only} belongs to the binary, yet the library declares it as a module");
    }
    let mut hits = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            // Comments may say what the library does not use.
            if line.trim_start().starts_with("//") {
                continue;
            }
            for krate in DEMO_ONLY_CRATES {
                if names_crate(line, krate) {
                    hits.push(format!("{}:{}: {}", file.strip_prefix(root()).unwrap().display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(hits.is_empty(), "the library must not use {DEMO_ONLY_CRATES:?} (only the binary's demo module may):\n{}", hits.join("\n"));
}

#[test]
fn the_crate_check_matches_whole_names_only() {
    assert!(names_crate("use studiod_sim::booth::SimBooth;", "studiod_sim"));
    assert!(names_crate("let b = rumqttd::Broker::new(c);", "rumqttd"));
    assert!(!names_crate("use my_rumqttd_shim::X;", "rumqttd"));
    assert!(!names_crate("let studiod_simple = 1;", "studiod_sim"));
}
