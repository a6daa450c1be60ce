//! Sell scenes: the typed scene model (this file), loading/validation
//! (`load`), and the engine that applies them (`engine`).

pub mod load;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::lighting::FixtureLook;
use crate::osc::OscMessage;

/// A validated scene: every device it names exists and every value is in range.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// File stem, `[a-z0-9-]+`.
    pub name: String,
    pub label: String,
    /// Light cross-fade time.
    pub fade: Duration,
    pub cameras: BTreeMap<String, CameraTarget>,
    /// Per fixture: normalised attribute values (already converted from kelvin/#rrggbb).
    pub lights: BTreeMap<String, FixtureLook>,
    /// OSC cues: (target name, message).
    pub osc: Vec<(String, OscMessage)>,
    pub source: PathBuf,
}

/// Camera framing of a scene.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraTarget {
    /// User preset number (1-based, mapped to a memory byte by the profile).
    Preset(u8),
    /// Absolute position in degrees and × magnification; unset axes are left alone.
    Absolute { pan: Option<f64>, tilt: Option<f64>, zoom: Option<f64> },
}
