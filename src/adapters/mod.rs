//! Adapters: MQTT, HTTP and the CLI translate their formats to the one
//! command API (`crate::command`) and back. Only they know JSON or topics.

pub mod json;
pub mod idempotency;
pub mod mqtt;
