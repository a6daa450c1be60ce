//! Sell scenes: the typed scene model. Scene files are read and validated
//! against the configured devices by `config::scenes`; the engine applies them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::lighting::Attribute;
use crate::lighting::FixtureLook;
use crate::osc::OscMessage;

/// A validated scene: every device it names exists and every value is in range.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// File stem, `[a-z0-9-]+`.
    pub name: String,
    pub label: String,
    /// Where its button goes on the pages (`order` in the scene file):
    /// ascending, then scenes without one, each group by name.
    pub order: Option<u32>,
    /// Light cross-fade time.
    pub fade: Duration,
    pub cameras: BTreeMap<String, CameraTarget>,
    /// Per fixture: normalised attribute values (already converted from kelvin/#rrggbb).
    pub lights: BTreeMap<String, FixtureLook>,
    /// OSC cues: (target name, message).
    pub osc: Vec<(String, OscMessage)>,
    pub source: PathBuf,
    /// The file's exact text, for `scenes_hash` and for `put_scene` of the
    /// same bytes (no rewrite).
    pub text: Arc<str>,
}

/// Camera framing of a scene.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraTarget {
    /// User preset number (1-based, mapped to a memory byte by the profile).
    Preset(u8),
    /// Absolute position in degrees and × magnification; unset axes are left alone.
    Absolute { pan: Option<f64>, tilt: Option<f64>, zoom: Option<f64> },
}

/// One attribute of a look in the units a scene file uses.
#[derive(Debug, Clone, PartialEq)]
pub enum SceneValue {
    /// 0.0–1.0 (`intensity` and other channels).
    Level(f64),
    /// `cct`, in kelvin.
    Kelvin(u32),
    /// `color`, as `#rrggbb`.
    Color(String),
}

/// Normalised attribute values → the units a scene file uses (the inverse of
/// the loader's `config::scenes::convert_light`): kelvin for `cct` within the
/// profile's range, one `#rrggbb` `color` for red/green/blue. What the pages,
/// the API and the demo show, so that all three speak as the scene files do.
pub fn to_scene_units(look: &FixtureLook, cct_range: Option<(u32, u32)>) -> Vec<(String, SceneValue)> {
    let mut out = Vec::new();
    let rgb = [Attribute::Red, Attribute::Green, Attribute::Blue].map(|a| look.get(&a).copied());
    let has_rgb = rgb.iter().all(Option::is_some);
    if let [Some(r), Some(g), Some(b)] = rgb {
        let byte = |x: f64| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
        out.push(("color".to_string(), SceneValue::Color(format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b)))));
    }
    for (a, x) in look {
        match a {
            Attribute::Red | Attribute::Green | Attribute::Blue if has_rgb => {}
            Attribute::Cct => {
                if let Some((lo, hi)) = cct_range {
                    out.push(("cct".to_string(), SceneValue::Kelvin((lo as f64 + x * (hi as f64 - lo as f64)).round() as u32)));
                }
            }
            other => out.push((other.name().to_string(), SceneValue::Level(*x))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_units_speak_kelvin_and_hex_colour() {
        let look: FixtureLook =
            [(Attribute::Cct, 0.5), (Attribute::Red, 1.0), (Attribute::Green, 0.5), (Attribute::Blue, 0.0), (Attribute::Intensity, 0.85)]
                .into_iter()
                .collect();
        let u = to_scene_units(&look, Some((2700, 6500)));
        assert!(u.contains(&("cct".into(), SceneValue::Kelvin(4600))), "{u:?}");
        assert!(u.contains(&("color".into(), SceneValue::Color("#ff8000".into()))), "{u:?}");
        assert!(u.contains(&("intensity".into(), SceneValue::Level(0.85))), "{u:?}");
        assert!(!u.iter().any(|(k, _)| k == "red"), "{u:?}");
    }
}
