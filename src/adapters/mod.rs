//! Adapters: MQTT, HTTP and the CLI translate their formats to the one
//! command API (`crate::command`) and back. Only they know JSON or topics.

pub mod ctl;
pub mod http;
pub mod json;

use anyhow::Result;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::model::Config;
use crate::engine::EngineHandle;

/// Start the adapters the config asks for (MQTT, HTTP); returns their tasks.
pub async fn start(_config: &Config, _engine: EngineHandle, _cancel: CancellationToken) -> Result<Vec<JoinHandle<()>>> {
    Ok(Vec::new())
}
