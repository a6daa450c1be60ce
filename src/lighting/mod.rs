//! Lighting: fixture patch, fade engine, Art-Net frame clock.

use std::collections::BTreeMap;

use crate::config::model::Attribute;

/// One fixture's look: normalised (0.0–1.0) values per attribute.
/// Attributes a look leaves out keep their current value.
pub type FixtureLook = BTreeMap<Attribute, f64>;

/// A whole light look: fixture name → its attribute values.
pub type Look = BTreeMap<String, FixtureLook>;
