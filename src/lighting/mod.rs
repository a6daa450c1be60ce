//! Lighting: fixture patch, fade engine, Art-Net frame clock.
//!
//! - [`patch`]: fixture attributes → DMX slots, 16-bit/8-bit conversion (pure).
//! - [`fade`]: the fade engine, driven by `Instant`s (pure, sans-IO).
//! - [`artnet`]: ArtDmx/ArtSync encoding and the non-blocking UDP sender.
//! - [`persist`]: `state_dir/last-look.json`, atomic and debounced.
//! - [`task`]: the lighting task, its frame clock and [`LightingHandle`].

use std::collections::BTreeMap;

pub use fixture::Attribute;

pub mod artnet;
pub mod clock;
pub mod fade;
pub mod fixture;
pub mod patch;
pub mod persist;
pub mod task;

pub use task::{spawn, FirstFrame, FrameSent, LightingError, LightingHandle, LightingOptions, LightingStats};

/// One fixture's look: normalised (0.0–1.0) values per attribute.
/// Attributes a look leaves out keep their current value.
pub type FixtureLook = BTreeMap<Attribute, f64>;

/// A whole light look: fixture name → its attribute values.
pub type Look = BTreeMap<String, FixtureLook>;
