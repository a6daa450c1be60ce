//! Lighting: fixture patch, fade engine, Art-Net and sACN frame clock.
//!
//! - [`patch`]: fixture attributes → DMX slots, 16-bit/8-bit conversion (pure).
//! - [`fade`]: the fade engine, driven by `Instant`s (pure, sans-IO).
//! - [`output`]: an `[[artnet]]` or `[[sacn]]` output.
//! - [`artnet`]: ArtDmx/ArtSync/ArtPoll encoding, ArtPollReply decoding and
//!   the non-blocking UDP sender that polls each node, from and on the
//!   Art-Net port (where nodes reply); the probe behind `discover --artnet`.
//! - [`e131`]: the sACN (E1.31) data and sync packet codec (pure, sans-IO).
//! - [`sacn`]: the sACN sender and the booth's stable CID.
//! - [`health`]: an output's verified health on `Instant`s (pure, sans-IO).
//! - [`persist`]: `state_dir/last-look.json`, atomic and debounced.
//! - [`task`]: the lighting task, its frame clock and [`LightingHandle`].

use std::collections::BTreeMap;

pub use fixture::Attribute;

pub mod artnet;
pub mod clock;
pub mod e131;
pub mod fade;
pub mod fixture;
pub mod health;
pub mod output;
pub mod patch;
pub mod persist;
pub mod sacn;
pub mod task;
mod udp;

pub use health::{HealthState, NodeInfo, OutputHealth};
pub use output::{Output, Protocol};

pub use task::{spawn, FirstFrame, FrameSent, LightingError, LightingHandle, LightingOptions, LightingStats};

/// One fixture's look: normalised (0.0–1.0) values per attribute.
/// Attributes a look leaves out keep their current value.
pub type FixtureLook = BTreeMap<Attribute, f64>;

/// A whole light look: fixture name → its attribute values.
pub type Look = BTreeMap<String, FixtureLook>;
