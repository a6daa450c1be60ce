//! studiod: the booth daemon. See ARCHITECTURE.md for the map.
//!
//! The simulator (`studiod-sim`) and the demo are not part of this library:
//! no module here may use `studiod_sim` or `rumqttd` (tests/architecture.rs).
#![deny(unsafe_code)] // one reasoned exception: `sysclock` (adjtimex)

pub mod adapters;
pub mod camera;
pub mod command;
pub mod config;
pub mod daemon;
pub mod diag;
pub mod engine;
pub mod fsutil;
pub mod lighting;
pub mod metrics;
pub mod osc;
pub mod scene;
pub mod sdnotify;
pub mod sysclock;
pub mod visca;
