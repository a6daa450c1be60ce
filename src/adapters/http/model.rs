//! What the pages need to draw themselves (scenes, cameras, fixture
//! controls), taken from the current config. A `reload` can change it: the
//! server watches a `watch::Receiver<Arc<Config>>` and pushes a fresh model
//! to open pages over SSE.

use serde_json::{json, Value};

use crate::config::model::{Attribute, Config};
use crate::engine::BoothState;
use crate::scene::CameraTarget;

/// The UI model as JSON (`GET /api/model`, SSE `model` event).
pub fn model(cfg: &Config) -> Value {
    json!({
        "studio": cfg.studio.id,
        "scenes": scenes(cfg),
        "looks": looks(cfg),
        "cameras": cfg.cameras.iter().map(|c| json!({
            "name": c.name,
            "profile": c.profile.label,
            "preset_count": c.profile.preset_count,
        })).collect::<Vec<_>>(),
        "fixtures": cfg.fixtures.iter().map(|f| json!({
            "name": f.name,
            "profile": f.profile.label,
            "controls": controls(f),
        })).collect::<Vec<_>>(),
    })
}

/// `[{name, label, fade_ms, order}]` in the pages' order: the scenes with an
/// `order` ascending, then the others; each by name (the config's order).
pub fn scenes(cfg: &Config) -> Vec<Value> {
    let mut list: Vec<_> = cfg.scenes.values().collect();
    list.sort_by_key(|s| (s.order.is_none(), s.order, s.name.as_str()));
    list.into_iter().map(|s| json!({"name": s.name, "label": s.label, "fade_ms": s.fade.as_millis() as u64, "order": s.order})).collect()
}

/// Each scene's look in scene-file units, for the technician page: its
/// sliders start from the current scene, and "save look as scene" starts
/// from it too. `{scene: {"cameras": {cam: {preset}|{pan,tilt,zoom}}, "lights": {fx: {intensity, cct, color, …}}}}`.
pub fn looks(cfg: &Config) -> Value {
    let mut out = serde_json::Map::new();
    for s in cfg.scenes.values() {
        let cameras: serde_json::Map<_, _> = s
            .cameras
            .iter()
            .map(|(cam, t)| {
                let v = match t {
                    CameraTarget::Preset(n) => json!({"preset": n}),
                    CameraTarget::Absolute { pan, tilt, zoom } => {
                        let mut o = serde_json::Map::new();
                        for (k, v) in [("pan", pan), ("tilt", tilt), ("zoom", zoom)] {
                            if let Some(x) = v {
                                o.insert(k.into(), json!(x));
                            }
                        }
                        Value::Object(o)
                    }
                };
                (cam.clone(), v)
            })
            .collect();
        let lights: serde_json::Map<_, _> = s
            .lights
            .iter()
            .map(|(fx, look)| {
                let cct_range = cfg.fixtures.iter().find(|f| &f.name == fx).and_then(|f| f.profile.cct_range);
                (fx.clone(), scene_units(look, cct_range))
            })
            .collect();
        out.insert(s.name.clone(), json!({"cameras": cameras, "lights": lights}));
    }
    Value::Object(out)
}

/// A fixture's look in scene-file units, as JSON (see [`crate::scene::to_scene_units`]).
fn scene_units(look: &crate::lighting::FixtureLook, cct_range: Option<(u32, u32)>) -> Value {
    use crate::scene::SceneValue;
    let o: serde_json::Map<_, _> = crate::scene::to_scene_units(look, cct_range)
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                SceneValue::Level(x) => json!((x * 1000.0).round() / 1000.0),
                SceneValue::Kelvin(k) => json!(k),
                SceneValue::Color(rgb) => json!(rgb),
            };
            (k, v)
        })
        .collect();
    Value::Object(o)
}

/// Sliders/pickers for one fixture, in scene units (what `set_light` takes):
/// `intensity` and other channels 0–1, `cct` in kelvin within the profile's
/// range, and one `color` picker when the mode has red, green and blue.
fn controls(f: &crate::config::model::Fixture) -> Vec<Value> {
    let mode = f.mode();
    let has = |a: Attribute| mode.attribute(&a).is_some();
    let mut out = Vec::new();
    if has(Attribute::Intensity) {
        out.push(json!({"key": "intensity", "kind": "level"}));
    }
    if let Some((lo, hi)) = f.profile.cct_range.filter(|_| has(Attribute::Cct)) {
        out.push(json!({"key": "cct", "kind": "kelvin", "min": lo, "max": hi}));
    }
    let rgb = has(Attribute::Red) && has(Attribute::Green) && has(Attribute::Blue);
    if rgb {
        out.push(json!({"key": "color", "kind": "color"}));
    }
    for a in &mode.attributes {
        let covered = matches!(a.attribute, Attribute::Intensity | Attribute::Cct)
            || (rgb && matches!(a.attribute, Attribute::Red | Attribute::Green | Attribute::Blue));
        if !covered {
            out.push(json!({"key": a.attribute.name(), "kind": "level"}));
        }
    }
    out
}

/// Configured devices merged with their health from the booth state.
/// Devices the engine reports that the config does not name (Art-Net
/// outputs, OSC targets) are listed too.
pub fn devices(cfg: &Config, state: &BoothState) -> Vec<Value> {
    let health = |name: &str, kind: &str| match state.devices.get(name) {
        Some(h) => {
            let mut v = json!({"name": name, "kind": h.kind.as_str(), "online": h.online_json(), "status": h.status().as_str(), "error": h.error, "since": crate::adapters::json::format_time(h.since)});
            if let Some(n) = &h.node {
                v["node"] = crate::adapters::json::node(n);
            }
            v
        }
        None => {
            json!({"name": name, "kind": kind, "online": Value::Null, "status": Value::Null, "error": Value::Null, "since": Value::Null})
        }
    };
    let mut out = Vec::new();
    let mut named = std::collections::BTreeSet::new();
    for c in &cfg.cameras {
        let mut v = health(&c.name, "camera");
        v["profile"] = json!(c.profile.label);
        v["preset_count"] = json!(c.profile.preset_count);
        named.insert(c.name.as_str());
        out.push(v);
    }
    for f in &cfg.fixtures {
        let mut v = health(&f.name, "fixture");
        v["profile"] = json!(f.profile.label);
        v["controls"] = json!(controls(f));
        named.insert(f.name.as_str());
        out.push(v);
    }
    for a in &cfg.artnet {
        named.insert(a.name.as_str());
        out.push(health(&a.name, "artnet"));
    }
    for s in &cfg.sacn {
        named.insert(s.name.as_str());
        out.push(health(&s.name, "sacn"));
    }
    for o in &cfg.osc {
        named.insert(o.name.as_str());
        out.push(health(&o.name, "osc"));
    }
    for name in state.devices.keys().filter(|n| !named.contains(n.as_str())) {
        out.push(health(name, "unknown"));
    }
    out
}
