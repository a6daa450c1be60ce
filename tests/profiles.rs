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

/// Documented reference points per camera profile, written here from their
/// sources (not read from the profile), so a wrong scale or zoom curve in a
/// profile file fails: (profile, axis, degrees, VISCA units, source).
const ANGLES: &[(&str, &str, f64, i32, &str)] = &[
    // Sony SRG-300H Technical Manual, Pan/Tilt position table (image flip off).
    ("sony-srg-300h", "pan", 170.0, 0x2200, "SRG-300H manual"),
    ("sony-srg-300h", "pan", -170.0, -0x2200, "SRG-300H manual: 0xDE00"),
    ("sony-srg-300h", "tilt", 90.0, 0x1200, "SRG-300H manual"),
    ("sony-srg-300h", "tilt", -20.0, -0x0400, "SRG-300H manual: 0xFC00"),
    // Sony EVI-D70 Technical Manual, "Pan/Tilt Position (Reference values)" p.51.
    ("sony-evi-d70", "pan", 10.0, 0x0085, "EVI-D70 manual p.51"),
    ("sony-evi-d70", "tilt", 30.0, 0x0190, "EVI-D70 manual p.51"),
    ("sony-evi-d70", "tilt", 90.0, 0x04B0, "EVI-D70 manual p.51"),
    ("sony-evi-d70", "tilt", -30.0, -0x0190, "EVI-D70 manual: 0xFE70"),
    // Sony-compatible tables (Telycam TLC-700-S manual V1.0, Clevermic 4035UHS).
    ("generic-visca", "pan", 170.0, 0x0990, "Telycam TLC-700-S table"),
    ("generic-visca", "tilt", 90.0, 0x0510, "Telycam TLC-700-S table"),
    ("generic-visca", "tilt", -30.0, -0x01B0, "Telycam TLC-700-S table: 0xFE50"),
    // PTZOptics 20X: the same OEM tables, UNCONFIRMED for this model (see its profile).
    ("ptzoptics-20x", "pan", 170.0, 0x0990, "OEM table, unconfirmed"),
];

/// (profile, magnification, zoom position, source).
const ZOOMS: &[(&str, f64, u16, &str)] = &[
    ("sony-srg-300h", 1.0, 0x0000, "SRG-300H manual: wide end"),
    ("sony-srg-300h", 30.0, 0x4000, "SRG-300H manual: optical tele end"),
    ("sony-evi-d70", 1.0, 0x0000, "EVI-D70 manual: wide end"),
    ("sony-evi-d70", 18.0, 0x4000, "EVI-D70 manual: optical tele end (18x)"),
];

fn camera(id: &str) -> studiod::config::model::CameraProfile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles/cameras").join(format!("{id}.toml"));
    load_camera(&path, id).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn camera_profiles_meet_their_documented_reference_points() {
    for (id, axis, deg, units, source) in ANGLES {
        let p = camera(id);
        let a = if *axis == "pan" { p.pan } else { p.tilt };
        let got = a.to_units(*deg);
        // ±1 unit: the manuals' tables are rounded to whole units.
        assert!((got - units).abs() <= 1, "{id} {axis} {deg}°: profile gives {got:#06x}, {source} says {units:#06x}");
    }
    for (id, mag, pos, source) in ZOOMS {
        let got = camera(id).zoom.to_position(*mag);
        assert_eq!(got, *pos, "{id} zoom {mag}x: profile gives {got:#06x}, {source} says {pos:#06x}");
    }
}
