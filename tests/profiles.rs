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
    // Sony Command List BRC-X400/X401, SRG-X400/X402/201M2/X120/HD1M2, setting values
    // "Pan/Tilt Position" (IMG Flip off), via Companion protocol/Sony_BRC-X400.html.
    ("sony-srg-x400", "pan", 170.0, 0x2200, "SRG-X400 command list"),
    ("sony-srg-x400", "pan", -170.0, -0x2200, "SRG-X400 command list: 0xDE00"),
    ("sony-srg-x400", "tilt", 90.0, 0x1200, "SRG-X400 command list"),
    ("sony-srg-x400", "tilt", -20.0, -0x0400, "SRG-X400 command list: 0xFC00"),
    ("sony-brc-x400", "pan", 170.0, 0x2200, "BRC-X400 command list"),
    ("sony-brc-x400", "pan", -170.0, -0x2200, "BRC-X400 command list: 0xDE00"),
    ("sony-brc-x400", "tilt", 90.0, 0x1200, "BRC-X400 command list"),
    ("sony-brc-x400", "tilt", -20.0, -0x0400, "BRC-X400 command list: 0xFC00"),
    ("sony-srg-x120", "pan", 170.0, 0x2200, "SRG-X120 command list"),
    ("sony-srg-x120", "pan", -170.0, -0x2200, "SRG-X120 command list: 0xDE00"),
    ("sony-srg-x120", "tilt", 90.0, 0x1200, "SRG-X120 command list"),
    ("sony-srg-x120", "tilt", -20.0, -0x0400, "SRG-X120 command list: 0xFC00"),
    // Sony SRG-X40UH/H40UH VISCA command list, "Pan/Tilt Position", via Companion
    // protocol/Sony_SRG-X40UH.html.
    ("sony-srg-x40uh", "pan", 170.0, 0x2200, "SRG-X40UH command list"),
    ("sony-srg-x40uh", "pan", -170.0, -0x2200, "SRG-X40UH command list: 0xDE00"),
    ("sony-srg-x40uh", "tilt", 90.0, 0x1200, "SRG-X40UH command list"),
    ("sony-srg-x40uh", "tilt", -20.0, -0x0400, "SRG-X40UH command list: 0xFC00"),
];

/// (profile, magnification, zoom position, source).
const ZOOMS: &[(&str, f64, u16, &str)] = &[
    ("sony-srg-300h", 1.0, 0x0000, "SRG-300H manual: wide end"),
    ("sony-srg-300h", 30.0, 0x4000, "SRG-300H manual: optical tele end"),
    ("sony-evi-d70", 1.0, 0x0000, "EVI-D70 manual: wide end"),
    ("sony-evi-d70", 18.0, 0x4000, "EVI-D70 manual: optical tele end (18x)"),
    // "Zoom Position / Ratio" tables of the SRG-X400 family and SRG-X40UH command lists.
    ("sony-srg-x400", 1.0, 0x0000, "SRG-X400 command list: wide end"),
    ("sony-srg-x400", 2.0, 0x0DC1, "SRG-X400 command list: x2"),
    ("sony-srg-x400", 10.0, 0x342D, "SRG-X400 command list: x10"),
    ("sony-srg-x400", 20.0, 0x4000, "SRG-X400 command list: optical tele end"),
    ("sony-brc-x400", 2.0, 0x0DC1, "BRC-X400 command list: x2"),
    ("sony-brc-x400", 20.0, 0x4000, "BRC-X400 command list: optical tele end"),
    ("sony-srg-x120", 1.0, 0x0000, "SRG-X120 command list: wide end"),
    ("sony-srg-x120", 2.0, 0x0FB4, "SRG-X120 command list: x2"),
    ("sony-srg-x120", 10.0, 0x3BF7, "SRG-X120 command list: x10"),
    ("sony-srg-x120", 12.0, 0x4000, "SRG-X120 command list: tele end"),
    ("sony-srg-x40uh", 2.0, 0x0DC1, "SRG-X40UH command list: x2"),
    ("sony-srg-x40uh", 20.0, 0x4000, "SRG-X40UH command list: optical tele end"),
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
    // A camera added to the library comes with its pinned points.
    for (id, _) in each("cameras") {
        // (A value no source documents is listed as unconfirmed instead.)
        let listed = camera(&id).unconfirmed;
        let unconfirmed = |key: &str| listed.iter().any(|k| k == key);
        for axis in ["pan", "tilt"] {
            assert!(
                unconfirmed(&format!("{axis}.units_per_degree")) || ANGLES.iter().any(|a| a.0 == id && a.1 == axis),
                "{id}: pin at least one documented {axis} angle in ANGLES"
            );
        }
        let zoom_unconfirmed = unconfirmed("zoom.table");
        assert!(
            zoom_unconfirmed || ZOOMS.iter().filter(|z| z.0 == id).count() >= 2,
            "{id}: pin at least two documented zoom points in ZOOMS"
        );
    }
}

/// Pinned channel maps of fixture modes, written from each fixture's DMX
/// document (not read from the profile): (profile, mode, attribute, coarse
/// channel, fine channel, footprint), channels 1-based as in the charts.
type PinnedChannel = (&'static str, &'static str, &'static str, u16, Option<u16>, u16);
const CHANNELS: &[PinnedChannel] = &[
    // Aputure LS600X Pro DMX Profile Specification V1.0 (via OFL ls-600x-pro.json).
    ("aputure-ls-600x-pro", "lighting-8bit", "intensity", 1, None, 2),
    ("aputure-ls-600x-pro", "lighting-8bit", "cct", 2, None, 2),
    ("aputure-ls-600x-pro", "lighting-effects-8bit", "cct", 2, None, 7),
    // Aputure LS1200D Pro DMX Profile Specification V1.0 (via OFL ls-1200d-pro.json).
    ("aputure-ls-1200d-pro", "lighting-8bit", "intensity", 1, None, 1),
    ("aputure-ls-1200d-pro", "lighting-16bit", "intensity", 1, Some(2), 2),
    ("aputure-ls-1200d-pro", "lighting-effect-8bit", "intensity", 1, None, 6),
    // Godox SL300R manual (via OFL godox/sl300r.json).
    ("godox-sl300r", "cct", "cct", 2, None, 3),
    ("godox-sl300r", "cct", "green_magenta", 3, None, 3),
    ("godox-sl300r", "rgbw", "white", 5, None, 5),
    ("godox-sl300r", "cct-rgbw", "crossfade", 4, None, 8),
    ("godox-sl300r", "cct-rgbw", "red", 5, None, 8),
    ("godox-sl300r", "cct-rgbw", "white", 8, None, 8),
    // Nanlite Forza 300B DMX Reference Guide V1 (via OFL nanlite/forza-300b.json).
    ("nanlite-forza-300b", "cct-8bit", "intensity", 1, None, 3),
    ("nanlite-forza-300b", "cct-8bit", "cct", 2, None, 3),
    // ARRI Orbiter DMX Mode Specification V5.0, P01/P02 (via OFL arri/orbiter.json).
    ("arri-orbiter", "cct-8bit", "intensity", 1, None, 6),
    ("arri-orbiter", "cct-8bit", "cct", 2, None, 6),
    ("arri-orbiter", "cct-8bit", "green_magenta", 3, None, 6),
    ("arri-orbiter", "cct-16bit", "intensity", 1, Some(2), 9),
    ("arri-orbiter", "cct-16bit", "cct", 3, Some(4), 9),
    ("arri-orbiter", "cct-16bit", "green_magenta", 5, Some(6), 9),
    // Aputure Nova P300c DMX Table 2020-12-09 (via OFL aputure/nova-p300c.json).
    ("aputure-nova-p300c", "cct", "intensity", 1, None, 3),
    ("aputure-nova-p300c", "cct", "cct", 2, None, 3),
    ("aputure-nova-p300c", "cct", "green_magenta", 3, None, 3),
    ("aputure-nova-p300c", "cct-rgb", "intensity", 1, None, 7),
    ("aputure-nova-p300c", "cct-rgb", "cct", 2, None, 7),
    ("aputure-nova-p300c", "cct-rgb", "green_magenta", 3, None, 7),
    ("aputure-nova-p300c", "cct-rgb", "crossfade", 4, None, 7),
    ("aputure-nova-p300c", "cct-rgb", "red", 5, None, 7),
    ("aputure-nova-p300c", "cct-rgb", "green", 6, None, 7),
    ("aputure-nova-p300c", "cct-rgb", "blue", 7, None, 7),
    ("aputure-nova-p300c", "rgb", "intensity", 1, None, 4),
    ("aputure-nova-p300c", "rgb", "red", 2, None, 4),
    ("aputure-nova-p300c", "rgb", "green", 3, None, 4),
    ("aputure-nova-p300c", "rgb", "blue", 4, None, 4),
    // Nanlite Forza 60B II DMX Reference Guide (via OFL nanlite/forza-60b-ii.json).
    ("nanlite-forza-60b-ii", "cct-8bit-reduced", "intensity", 1, None, 2),
    ("nanlite-forza-60b-ii", "cct-8bit-reduced", "cct", 2, None, 2),
    ("nanlite-forza-60b-ii", "cct-8bit-full", "intensity", 1, None, 6),
    ("nanlite-forza-60b-ii", "cct-8bit-full", "cct", 2, None, 6),
    ("nanlite-forza-60b-ii", "cct-8bit-full", "strobe", 4, None, 6),
    // Aputure LS C300d II product manual, "Lighting & Effect 8-bit" (via OFL aputure/ls-300d-ii.json).
    ("aputure-ls-300d-ii", "lighting-effect-8bit", "intensity", 1, None, 5),
    // Aputure "[LS 300x] Wired DMX Control", "6 DMX Channels" chart (LS-300x-DMX-Table, 2021-02).
    ("aputure-ls-300x", "default", "intensity", 1, None, 6),
    ("aputure-ls-300x", "default", "cct", 2, None, 6),
    // Aputure LS 600d Pro DMX Profile Specification V1.0, "Lighting & Effect 8bit" (via OFL ls-600d-pro.json).
    ("aputure-ls-600d-pro", "lighting-effect-8bit", "intensity", 1, None, 6),
    // ARRI SkyPanel DMX Protocol Specification V4.4 (L5.0019894): P02 CCT 8bit, P07 CCT 16bit,
    // P04 RGBW 8bit, P09 RGBW 16bit (via OFL arri/skypanel-s60c.json, modes P02/P07/P04/P09).
    ("arri-skypanel-s60c", "cct-rgbw-8bit", "intensity", 1, None, 12),
    ("arri-skypanel-s60c", "cct-rgbw-8bit", "green_magenta", 3, None, 12),
    ("arri-skypanel-s60c", "cct-rgbw-8bit", "crossfade", 4, None, 12),
    ("arri-skypanel-s60c", "cct-rgbw-8bit", "white", 8, None, 12),
    ("arri-skypanel-s60c", "cct-rgbw-8bit", "strobe", 11, None, 12),
    ("arri-skypanel-s60c", "cct-8bit", "intensity", 1, None, 7),
    ("arri-skypanel-s60c", "cct-8bit", "cct", 2, None, 7),
    ("arri-skypanel-s60c", "cct-8bit", "green_magenta", 3, None, 7),
    ("arri-skypanel-s60c", "cct-8bit", "strobe", 6, None, 7),
    ("arri-skypanel-s60c", "cct-16bit", "intensity", 1, Some(2), 10),
    ("arri-skypanel-s60c", "cct-16bit", "cct", 3, Some(4), 10),
    ("arri-skypanel-s60c", "cct-16bit", "green_magenta", 5, Some(6), 10),
    ("arri-skypanel-s60c", "cct-16bit", "strobe", 9, None, 10),
    ("arri-skypanel-s60c", "rgbw-8bit", "red", 2, None, 9),
    ("arri-skypanel-s60c", "rgbw-8bit", "white", 5, None, 9),
    ("arri-skypanel-s60c", "rgbw-8bit", "strobe", 8, None, 9),
    ("arri-skypanel-s60c", "rgbw-16bit", "red", 3, Some(4), 14),
    ("arri-skypanel-s60c", "rgbw-16bit", "white", 9, Some(10), 14),
    ("arri-skypanel-s60c", "rgbw-16bit", "strobe", 13, None, 14),
    // Godox P600Bi Hard DMX definition (Godox, via OFL godox/p600bi-hard.json): CCT 8-Bit, CCT 16-Bit.
    ("godox-p600bi-hard", "cct-8bit", "intensity", 1, None, 2),
    ("godox-p600bi-hard", "cct-8bit", "cct", 2, None, 2),
    ("godox-p600bi-hard", "cct-16bit", "intensity", 1, Some(2), 4),
    ("godox-p600bi-hard", "cct-16bit", "cct", 3, Some(4), 4),
    // Nanlite PavoSlim 60C/120C DMX Reference Guide, page 01, "CCT & RGBW 8bit" (reduced channels off).
    ("nanlite-pavoslim-60c", "cct-rgbw-8bit", "intensity", 1, None, 11),
    ("nanlite-pavoslim-60c", "cct-rgbw-8bit", "cct", 2, None, 11),
    ("nanlite-pavoslim-60c", "cct-rgbw-8bit", "green_magenta", 3, None, 11),
    ("nanlite-pavoslim-60c", "cct-rgbw-8bit", "crossfade", 4, None, 11),
    ("nanlite-pavoslim-60c", "cct-rgbw-8bit", "red", 5, None, 11),
    ("nanlite-pavoslim-60c", "cct-rgbw-8bit", "white", 8, None, 11),
    ("nanlite-pavoslim-60c", "cct-rgbw-8bit", "strobe", 9, None, 11),
];

#[test]
fn fixture_profiles_meet_their_documented_channel_maps() {
    for (id, mode, attr, coarse, fine, footprint) in CHANNELS {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles/fixtures").join(format!("{id}.toml"));
        let p = load_fixture(&path, id).unwrap_or_else(|e| panic!("{e}"));
        let m = &p.modes[p.mode_index(mode).unwrap_or_else(|| panic!("{id}: no mode {mode}"))];
        let a = m.attribute(&Attribute::parse(attr)).unwrap_or_else(|| panic!("{id}/{mode}: no {attr}"));
        // Profiles store 0-based offsets.
        assert_eq!((a.coarse + 1, a.fine.map(|f| f + 1), m.footprint), (*coarse, *fine, *footprint), "{id}/{mode}/{attr}");
    }
    // A fixture added to the library comes with every mode's map pinned
    // (the generic profiles are pinned in `every_fixture_profile_loads`).
    for (id, path) in each("fixtures").into_iter().filter(|(id, _)| !id.starts_with("generic-")) {
        for m in load_fixture(&path, &id).unwrap().modes {
            assert!(CHANNELS.iter().any(|c| c.0 == id && c.1 == m.name), "{id}: pin mode `{}`'s channel map in CHANNELS", m.name);
        }
    }
}

/// Channels that the documents say must sit at a safe value (fan on, effects
/// off, motorised optics "no effect", reserved): (profile, mode, channel
/// 1-based, raw DMX value), written from each fixture's DMX document.
const HELD: &[(&str, &str, u16, u8)] = &[
    // ARRI Orbiter P01/P02: zoom and focus 0-19 = no effect; reserved.
    ("arri-orbiter", "cct-8bit", 4, 0),
    ("arri-orbiter", "cct-8bit", 5, 0),
    ("arri-orbiter", "cct-8bit", 6, 0),
    ("arri-orbiter", "cct-16bit", 7, 0),
    ("arri-orbiter", "cct-16bit", 8, 0),
    ("arri-orbiter", "cct-16bit", 9, 0),
    // Nanlite Forza 60B II "CCT 8bit Full": fan 0-127 = on; reserved.
    ("nanlite-forza-60b-ii", "cct-8bit-full", 3, 0),
    ("nanlite-forza-60b-ii", "cct-8bit-full", 5, 0),
    ("nanlite-forza-60b-ii", "cct-8bit-full", 6, 0),
    // Aputure LS C300d II: mode selection 0-127 (lighting), effect, frequency, trigger 0-10 = stop.
    ("aputure-ls-300d-ii", "lighting-effect-8bit", 2, 0),
    ("aputure-ls-300d-ii", "lighting-effect-8bit", 3, 0),
    ("aputure-ls-300d-ii", "lighting-effect-8bit", 4, 0),
    ("aputure-ls-300d-ii", "lighting-effect-8bit", 5, 0),
];

#[test]
fn fixture_profiles_hold_documented_safe_values() {
    for (id, mode, channel, value) in HELD {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles/fixtures").join(format!("{id}.toml"));
        let p = load_fixture(&path, id).unwrap_or_else(|e| panic!("{e}"));
        let m = &p.modes[p.mode_index(mode).unwrap_or_else(|| panic!("{id}: no mode {mode}"))];
        // Profiles store 0-based offsets.
        let held = m.fixed.iter().find(|(c, _)| c + 1 == *channel).map(|(_, v)| *v);
        assert_eq!(held, Some(*value), "{id}/{mode}: channel {channel} should be held at {value}");
    }
}

/// The `unconfirmed` lists the profiles carry (machine-readable flags).
#[test]
fn unconfirmed_values_are_listed() {
    assert_eq!(camera("ptzoptics-20x").unconfirmed.len(), 14, "everything in ptzoptics-20x is unconfirmed");
    assert!(camera("ptzoptics-20x").unconfirmed.iter().any(|k| k == "pan.units_per_degree"));
    assert_eq!(camera("generic-visca").unconfirmed, ["zoom.table"]);
    assert!(camera("sony-srg-300h").unconfirmed.is_empty());
    assert_eq!(camera("sony-srg-300h").transports, ["serial", "visca-udp"]);
    // The SRG-X / BRC-X400 family: every value from Sony's command lists.
    for id in ["sony-srg-x400", "sony-brc-x400", "sony-srg-x120", "sony-srg-x40uh"] {
        let c = camera(id);
        assert!(c.unconfirmed.is_empty(), "{id}");
        assert_eq!(c.transports, ["serial", "visca-udp"], "{id}");
        assert_eq!((c.preset_count, c.preset_memory_offset), (100, 0), "{id}: presets 1-100 as memory bytes 00-63");
        assert_eq!((c.max_pan_speed, c.max_tilt_speed), (0x18, 0x17), "{id}");
    }
}

fn temp_profile(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("studiod-profiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const MINIMAL_CAMERA: &str = "label = \"T\"\npreset_count = 16\n[pan]\nmin_deg = -170.0\nmax_deg = 170.0\nunits_per_degree = 14.4\n[tilt]\nmin_deg = -30.0\nmax_deg = 90.0\nunits_per_degree = 14.4\n[zoom]\ntable = [[1.0, 0], [20.0, 16384]]\n";

#[test]
fn unconfirmed_entries_must_name_existing_keys() {
    let ok =
        temp_profile("ok.toml", &format!("unconfirmed = [\"pan.units_per_degree\", \"zoom.table\", \"preset_count\"]\n{MINIMAL_CAMERA}"));
    assert_eq!(load_camera(&ok, "ok").unwrap().unconfirmed, ["pan.units_per_degree", "zoom.table", "preset_count"]);
    // `max_pan_speed` is not set in this file; `pan.units` is not a key.
    let bad = temp_profile("bad.toml", &format!("unconfirmed = [\"max_pan_speed\", \"pan.units\"]\n{MINIMAL_CAMERA}"));
    let e = load_camera(&bad, "bad").unwrap_err().to_string();
    assert!(e.contains("bad.toml:1:16: `unconfirmed` names `max_pan_speed`, which is not a key of this profile"), "{e}");
    assert!(e.contains("bad.toml:1:33: `unconfirmed` names `pan.units`"), "{e}");
    let tr = temp_profile("tr.toml", &format!("transports = [\"serial\", \"ndi\"]\n{MINIMAL_CAMERA}"));
    let e = load_camera(&tr, "tr").unwrap_err().to_string();
    assert!(e.contains("tr.toml:1:25: unknown transport `ndi`"), "{e}");
    // Fixture modes are addressed by name.
    let fx = temp_profile(
        "fx.toml",
        "label = \"F\"\nunconfirmed = [\"mode.a.footprint\"]\n[[mode]]\nname = \"a\"\nfootprint = 1\nchannels = [{ attribute = \"intensity\", coarse = 1 }]\n",
    );
    assert_eq!(load_fixture(&fx, "fx").unwrap().unconfirmed, ["mode.a.footprint"]);
    let fx2 = temp_profile("fx2.toml", "label = \"F\"\nunconfirmed = [\"mode.b.footprint\"]\n[[mode]]\nname = \"a\"\nchannels = [{ attribute = \"intensity\", coarse = 1 }]\n");
    assert!(load_fixture(&fx2, "fx2").unwrap_err().to_string().contains("`mode.b.footprint`"));
}
