//! The HTTP adapter records into the daemon-wide registry; it lives in
//! [`crate::metrics`] so the engine, devices and MQTT share it.

pub use crate::metrics::*;
