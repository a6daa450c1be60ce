//! Every shipped profile loads, and the generic ones have the shape CONTRACT §3 promises.

use std::path::Path;

use studiod::config::model::Attribute;
use studiod::config::profiles::{load_camera, load_fixture};

fn each(kind: &str) -> Vec<(String, std::path::PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles").join(kind);
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    v.sort();
    v
}

#[test]
fn every_camera_profile_loads() {
    let all = each("cameras");
    assert!(all.len() >= 4);
    for (id, path) in all {
        let p = load_camera(&path, &id).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.preset_count >= 1 && p.pan.min_deg < p.pan.max_deg, "{id}");
    }
    let g = load_camera(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/device-profiles/cameras/generic-visca.toml")), "generic-visca")
        .unwrap();
    assert_eq!((g.preset_count, g.preset_memory_offset), (16, 0), "presets 1–16 as memory bytes 00–0F");
}

#[test]
fn every_fixture_profile_loads() {
    let all = each("fixtures");
    assert!(all.len() >= 6);
    for (id, path) in &all {
        load_fixture(path, id).unwrap_or_else(|e| panic!("{e}"));
    }
    let load = |id: &str| load_fixture(&all.iter().find(|(i, _)| i == id).unwrap().1, id).unwrap();
    let d = load("generic-dimmer");
    assert_eq!(d.modes[0].footprint, 1);
    let d16 = load("generic-dimmer-16bit");
    let a = d16.modes[0].attribute(&Attribute::Intensity).unwrap();
    assert_eq!((d16.modes[0].footprint, a.coarse, a.fine), (2, 0, Some(1)));
    let rgb = load("generic-rgb");
    assert_eq!(rgb.modes[0].footprint, 3);
    for (i, attr) in [Attribute::Red, Attribute::Green, Attribute::Blue].iter().enumerate() {
        assert_eq!(rgb.modes[0].attribute(attr).unwrap().coarse, i as u16);
    }
}
