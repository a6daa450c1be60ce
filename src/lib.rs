//! studiod: the booth daemon. See ARCHITECTURE.md for the map.
#![deny(unsafe_code)]

pub mod adapters;
pub mod camera;
pub mod command;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diag;
pub mod engine;
pub mod fsutil;
pub mod lighting;
pub mod metrics;
pub mod osc;
pub mod scene;
pub mod sdnotify;
pub mod sim;
pub mod visca;
