//! Adapters: MQTT, HTTP and the CLI translate their formats to the one
//! command API (`crate::command`) and back. Only they know JSON or topics.

pub mod ctl;
pub mod discover;
pub mod fleet;
pub mod http;
pub mod idempotency;
pub mod json;
pub mod mqtt;

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::model::Config;
use crate::engine::EngineHandle;

/// The adapters started for one daemon.
#[derive(Default)]
pub struct Started {
    pub tasks: Vec<JoinHandle<()>>,
    /// Where the tablet and technician pages are served, when HTTP is on.
    pub http_url: Option<String>,
}

/// Start the adapters the config asks for (MQTT, HTTP). `config` follows
/// reloads so pages can show the current scene list. `metrics` is the
/// daemon-wide registry; HTTP records into it and serves it at `/metrics`.
pub async fn start(
    config: watch::Receiver<Arc<Config>>,
    engine: EngineHandle,
    metrics: crate::metrics::Metrics,
    cancel: CancellationToken,
) -> Result<Started> {
    let current = config.borrow().clone();
    let mut started = Started::default();
    if let Some(m) = &current.mqtt {
        let opts = mqtt::Options { reconnects: metrics.counter(crate::metrics::MQTT_RECONNECTS, &[]), ..Default::default() };
        let task = mqtt::run_with(m, &current.studio.id, &current.studio.state_dir, engine.clone(), cancel.clone(), opts)
            .context("starting MQTT")?;
        started.tasks.push(tokio::spawn(task));
    }
    if let Some(h) = &current.http {
        // Cookie sessions are kept in state_dir: a creator stays signed in across a restart.
        let opts = http::Options { session_file: Some(current.studio.state_dir.join("sessions.json")), ..http::Options::default() };
        let server = http::Server::bind(h, config.clone(), engine.clone(), metrics.clone(), opts)
            .await
            .with_context(|| format!("starting the HTTP server on {}", h.listen))?;
        started.http_url = Some(server.url());
        let cancel = cancel.clone();
        started.tasks.push(tokio::spawn(async move {
            if let Err(e) = server.run(cancel).await {
                tracing::error!(error = %e, "HTTP server stopped");
            }
        }));
    }
    Ok(started)
}
