//! The daemon: wires devices, the scene engine and the adapters together and
//! runs until SIGTERM/SIGINT.

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::config::model::Config;

pub async fn run(config: Config) -> Result<()> {
    let cancel = CancellationToken::new();
    tracing::info!(studio = %config.studio.id, cameras = config.cameras.len(), fixtures = config.fixtures.len(), "studiod starting");
    shutdown_signal().await;
    cancel.cancel();
    tracing::info!("studiod stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
