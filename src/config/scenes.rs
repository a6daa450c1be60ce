//! Scene files (`scenes/<name>.toml`, CONTRACT §4) → validated [`Scene`]s.
//!
//! Architecture Invariant: a scene is all-or-nothing. If any part names an
//! unknown device, holds an out-of-range value or a channel the fixture's
//! profile lacks, the whole scene is refused with every problem listed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml_edit::{Item, Value};

use super::model::{Attribute, Camera, Fixture, OscTarget};
use super::{toml_src, valid_name};
use crate::diag::{Diagnostics, Source};
use crate::lighting::FixtureLook;
use crate::osc::{OscArg, OscMessage};
use crate::scene::{CameraTarget, Scene};

/// The devices scenes are checked against.
#[derive(Clone, Copy)]
pub struct KnownDevices<'a> {
    pub cameras: &'a [Camera],
    pub fixtures: &'a [Fixture],
    pub osc: &'a [OscTarget],
    /// Names declared in the config whose entries failed validation: scenes
    /// naming them are not reported again (the config error says it all).
    pub declared: &'a std::collections::BTreeSet<String>,
}

impl KnownDevices<'_> {
    fn broken(&self, name: &str) -> bool {
        self.declared.contains(name)
    }
}

/// Longest fade a scene may ask for (10 minutes).
pub const MAX_FADE_MS: i64 = 600_000;
/// Largest `order` a scene may give its button.
pub const MAX_ORDER: i64 = 9999;

/// Load every `*.toml` in `dir`. Returns all scenes, or every problem in every file.
pub fn load_dir(dir: &Path, devices: &KnownDevices) -> Result<BTreeMap<String, Scene>, Diagnostics> {
    let mut d = Diagnostics::default();
    let mut scenes = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            d.push(Source::new(dir, "").diag(None, format!("cannot read scenes directory: {e}")));
            return Err(d);
        }
    };
    let mut paths: Vec<_> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    paths.sort();
    for path in paths {
        let src = match Source::read(&path) {
            Ok(s) => s,
            Err(e) => {
                d.push(Source::new(&path, "").diag(None, format!("cannot read scene: {e}")));
                continue;
            }
        };
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        match parse(&name, &src, devices) {
            Ok(s) => {
                scenes.insert(name, s);
            }
            Err(e) => d.extend(e),
        }
    }
    if d.is_empty() {
        Ok(scenes)
    } else {
        Err(d)
    }
}

/// Parse and validate one scene file's text. Used for files on disk and for
/// `put_scene` (text that is not yet on disk: `src.path` is where it will go).
pub fn parse(name: &str, src: &Source, devices: &KnownDevices) -> Result<Scene, Diagnostics> {
    let mut d = Diagnostics::default();
    if !valid_name(name) {
        d.push(src.diag(None, format!("scene name `{name}` must match [a-z0-9-]{{1,64}}")));
    }
    let doc = toml_src::parse(src).map_err(|e| Diagnostics(vec![e]))?;
    let mut scene = Scene {
        name: name.to_string(),
        label: name.to_string(),
        order: None,
        fade: Duration::ZERO,
        cameras: BTreeMap::new(),
        lights: BTreeMap::new(),
        osc: Vec::new(),
        source: src.path.clone(),
        text: src.text.as_str().into(),
    };
    let root = doc.as_table();
    for (key, item) in root.iter() {
        let key_span = root.key(key).and_then(|k| k.span());
        match key {
            "label" => match item.as_str() {
                Some(s) if !s.trim().is_empty() && s.len() <= 64 => scene.label = s.to_string(),
                _ => d.push(src.diag(item.span(), "`label` must be a non-empty string of at most 64 characters")),
            },
            "order" => match item.as_integer() {
                Some(n) if (0..=MAX_ORDER).contains(&n) => scene.order = Some(n as u32),
                _ => d.push(src.diag(item.span(), format!("`order` must be an integer 0–{MAX_ORDER} (the button's place on the pages)"))),
            },
            "fade_ms" => match item.as_integer() {
                Some(ms) if (0..=MAX_FADE_MS).contains(&ms) => scene.fade = Duration::from_millis(ms as u64),
                _ => d.push(src.diag(item.span(), format!("`fade_ms` must be an integer 0–{MAX_FADE_MS}"))),
            },
            "camera" => each_entry(src, item, "camera", &mut d, |dev, span, body, d| {
                let Some(cam) = devices.cameras.iter().find(|c| c.name == dev) else {
                    if devices.broken(dev) {
                        return;
                    }
                    d.push(src.diag(span, format!("unknown camera `{dev}`")));
                    return;
                };
                if let Some(t) = camera_target(src, cam, body, d) {
                    scene.cameras.insert(dev.to_string(), t);
                }
            }),
            "light" => each_entry(src, item, "light", &mut d, |dev, span, body, d| {
                let Some(fx) = devices.fixtures.iter().find(|f| f.name == dev) else {
                    if devices.broken(dev) {
                        return;
                    }
                    d.push(src.diag(span, format!("unknown fixture `{dev}`")));
                    return;
                };
                scene.lights.insert(dev.to_string(), light_look(src, fx, body, d));
            }),
            "osc" => match item {
                Item::ArrayOfTables(a) => {
                    for t in a.iter() {
                        if let Some(cue) = osc_cue(src, t, devices.osc, devices.declared, &mut d) {
                            scene.osc.push(cue);
                        }
                    }
                }
                _ => d.push(src.diag(key_span, "`osc` cues must be written as [[osc]] entries")),
            },
            other => d.push(src.diag(key_span, format!("unknown key `{other}` (expected label, order, fade_ms, camera, light or osc)"))),
        }
    }
    if d.is_empty() {
        Ok(scene)
    } else {
        Err(d)
    }
}

/// Walk `[camera.<name>]` / `[light.<name>]` tables.
fn each_entry<'a>(
    src: &Source,
    item: &'a Item,
    what: &str,
    d: &mut Diagnostics,
    mut f: impl FnMut(&str, Option<std::ops::Range<usize>>, &'a toml_edit::Table, &mut Diagnostics),
) {
    let Some(table) = item.as_table() else {
        d.push(src.diag(item.span(), format!("`{what}` must be a table of devices, e.g. [{what}.front]")));
        return;
    };
    for (dev, body) in table.iter() {
        let span = table.key(dev).and_then(|k| k.span());
        match body.as_table() {
            Some(t) => f(dev, span, t, d),
            None => d.push(src.diag(span, format!("`{what}.{dev}` must be a table, e.g. [{what}.{dev}]"))),
        }
    }
}

fn number(v: &Item) -> Option<f64> {
    match v {
        Item::Value(Value::Float(f)) => Some(*f.value()),
        Item::Value(Value::Integer(i)) => Some(*i.value() as f64),
        _ => None,
    }
}

fn camera_target(src: &Source, cam: &Camera, body: &toml_edit::Table, d: &mut Diagnostics) -> Option<CameraTarget> {
    let p = &cam.profile;
    let n = cam.name.as_str();
    let (mut preset, mut pan, mut tilt, mut zoom) = (None, None, None, None);
    let before = d.len();
    for (key, v) in body.iter() {
        let span = v.span().or_else(|| body.key(key).and_then(|k| k.span()));
        match key {
            "preset" => match v.as_integer() {
                Some(x) if x >= 1 && x <= p.preset_count as i64 => preset = Some(x as u8),
                _ => d.push(src.diag(span, format!("camera `{n}`: `preset` must be 1–{} for profile `{}`", p.preset_count, p.id))),
            },
            "pan" | "tilt" => {
                let axis = if key == "pan" { &p.pan } else { &p.tilt };
                match number(v) {
                    Some(x) if axis.contains(x) => *(if key == "pan" { &mut pan } else { &mut tilt }) = Some(x),
                    _ => d.push(src.diag(span, format!("camera `{n}`: `{key}` must be {}–{} degrees", axis.min_deg, axis.max_deg))),
                }
            }
            "zoom" => match number(v) {
                Some(x) if p.zoom.contains(x) => zoom = Some(x),
                _ => d.push(
                    src.diag(span, format!("camera `{n}`: `zoom` must be 1.0–{}× for profile `{}`", p.zoom.max_magnification(), p.id)),
                ),
            },
            other => d.push(src.diag(
                body.key(other).and_then(|k| k.span()),
                format!("camera `{n}`: unknown key `{other}` (expected preset, or pan/tilt/zoom)"),
            )),
        }
    }
    if d.len() > before {
        return None;
    }
    match (preset, pan.is_some() || tilt.is_some() || zoom.is_some()) {
        (Some(_), true) => {
            d.push(src.diag(body.span(), format!("camera `{n}`: use either `preset` or pan/tilt/zoom, not both")));
            None
        }
        (Some(x), false) => Some(CameraTarget::Preset(x)),
        (None, true) => Some(CameraTarget::Absolute { pan, tilt, zoom }),
        (None, false) => {
            d.push(src.diag(body.span(), format!("camera `{n}`: set `preset` or pan/tilt/zoom")));
            None
        }
    }
}

fn light_look(src: &Source, fx: &Fixture, body: &toml_edit::Table, d: &mut Diagnostics) -> FixtureLook {
    let entries = body.iter().map(|(key, v)| {
        let value = match v {
            Item::Value(Value::String(s)) => LightInput::Text(s.value()),
            other => number(other).map(LightInput::Number).unwrap_or(LightInput::Other),
        };
        let key_span = body.key(key).and_then(|k| k.span());
        (key, value, (key_span.clone(), v.span().or(key_span)))
    });
    let (look, problems) = convert_light(fx, entries);
    for ((key_span, value_span), on_key, msg) in problems {
        d.push(src.diag(if on_key { key_span } else { value_span }, msg));
    }
    look
}

/// A light attribute value as written by a person (TOML scene or JSON command).
#[derive(Debug, Clone, Copy)]
pub enum LightInput<'a> {
    Number(f64),
    Text(&'a str),
    Other,
}

/// Convert scene units (`intensity` 0–1, `cct` kelvin, `color` "#rrggbb",
/// other profile channels 0–1) into the fixture's normalised look, checking
/// each against the fixture's profile. Every problem is returned with the
/// caller's position tag `P` and whether it concerns the key (else the value).
pub fn convert_light<'a, P>(
    fx: &Fixture,
    entries: impl Iterator<Item = (&'a str, LightInput<'a>, P)>,
) -> (FixtureLook, Vec<(P, bool, String)>) {
    let mode = fx.mode();
    let n = fx.name.as_str();
    let has = |a: &Attribute| mode.attribute(a).is_some();
    let lacks = |key: &str| format!("fixture `{n}`: profile `{}` mode `{}` has no `{key}` channel", fx.profile.id, mode.name);
    let mut look = FixtureLook::new();
    let mut problems = Vec::new();
    for (key, v, pos) in entries {
        match key {
            "cct" => {
                let Some((lo, hi)) = fx.profile.cct_range.filter(|_| has(&Attribute::Cct)) else {
                    problems.push((pos, true, lacks(key)));
                    continue;
                };
                match v {
                    LightInput::Number(k) if k >= lo as f64 && k <= hi as f64 => {
                        let x = if hi > lo { (k - lo as f64) / (hi - lo) as f64 } else { 0.0 };
                        look.insert(Attribute::Cct, x);
                    }
                    _ => problems.push((pos, false, format!("fixture `{n}`: `cct` must be {lo}–{hi} kelvin"))),
                }
            }
            "color" => {
                if !(has(&Attribute::Red) && has(&Attribute::Green) && has(&Attribute::Blue)) {
                    problems.push((pos, true, lacks(key)));
                    continue;
                }
                match v {
                    LightInput::Text(t) if parse_color(t).is_some() => {
                        let (r, g, b) = parse_color(t).unwrap_or_default();
                        look.insert(Attribute::Red, r);
                        look.insert(Attribute::Green, g);
                        look.insert(Attribute::Blue, b);
                    }
                    _ => problems.push((pos, false, format!("fixture `{n}`: `color` must be \"#rrggbb\""))),
                }
            }
            other => {
                let attr = Attribute::parse(other);
                if !has(&attr) || attr == Attribute::Cct {
                    problems.push((pos, true, lacks(other)));
                    continue;
                }
                match v {
                    LightInput::Number(x) if (0.0..=1.0).contains(&x) => {
                        look.insert(attr, x);
                    }
                    _ => problems.push((pos, false, format!("fixture `{n}`: `{other}` must be 0.0–1.0"))),
                }
            }
        }
    }
    (look, problems)
}

/// `#rrggbb` → normalised (r, g, b).
pub fn parse_color(s: &str) -> Option<(f64, f64, f64)> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok().map(|v| v as f64 / 255.0);
    Some((c(0)?, c(2)?, c(4)?))
}

fn osc_cue(
    src: &Source,
    t: &toml_edit::Table,
    targets: &[OscTarget],
    declared: &std::collections::BTreeSet<String>,
    d: &mut Diagnostics,
) -> Option<(String, OscMessage)> {
    let before = d.len();
    let mut to = None;
    let mut address = None;
    let mut args = Vec::new();
    for (key, v) in t.iter() {
        let span = v.span().or_else(|| t.key(key).and_then(|k| k.span()));
        match key {
            "to" => match v.as_str() {
                Some(name) if targets.iter().any(|o| o.name == name) => to = Some(name.to_string()),
                Some(name) if declared.contains(name) => return None,
                Some(name) => d.push(src.diag(span, format!("unknown OSC target `{name}`"))),
                None => d.push(src.diag(span, "`to` must be the name of an [[osc]] target")),
            },
            "address" => match v.as_str() {
                Some(a) if a.starts_with('/') && !a.contains(' ') => address = Some(a.to_string()),
                _ => d.push(src.diag(span, "`address` must be an OSC address starting with '/'")),
            },
            "args" => match v.as_array() {
                Some(arr) => {
                    for a in arr.iter() {
                        match a {
                            Value::Integer(i) if i32::try_from(*i.value()).is_ok() => args.push(OscArg::Int(*i.value() as i32)),
                            Value::Float(f) => args.push(OscArg::Float(*f.value() as f32)),
                            Value::String(s) => args.push(OscArg::String(s.value().clone())),
                            Value::Boolean(b) => args.push(OscArg::Bool(*b.value())),
                            other => d.push(src.diag(other.span(), "OSC arguments must be 32-bit integers, floats, strings or booleans")),
                        }
                    }
                }
                None => d.push(src.diag(span, "`args` must be an array")),
            },
            other => d.push(
                src.diag(t.key(other).and_then(|k| k.span()), format!("unknown key `{other}` in [[osc]] (expected to, address, args)")),
            ),
        }
    }
    if to.is_none() && d.len() == before {
        d.push(src.diag(t.span(), "[[osc]] cue needs `to`"));
    }
    if address.is_none() && d.len() == before {
        d.push(src.diag(t.span(), "[[osc]] cue needs `address`"));
    }
    Some((to?, OscMessage { address: address?, args })).filter(|_| d.len() == before)
}
