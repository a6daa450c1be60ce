//! Runs a virtual VISCA camera chain at a path until Ctrl-C.
//!
//! `visca-sim /tmp/visca0 --cameras 3` then point studiod's `port` at
//! `/tmp/visca0`.
#![deny(unsafe_code)]

use std::path::PathBuf;

use clap::Parser;
use studiod_sim::{ChainOptions, VirtualChain};

#[derive(Parser)]
#[command(about = "Virtual VISCA camera chain on a pseudo-terminal")]
struct Args {
    /// Symlink to create, pointing at the pty slave.
    path: PathBuf,
    /// Cameras on the chain (1–7).
    #[arg(long, default_value_t = 1)]
    cameras: usize,
    /// Pace the line as if it ran at this baud rate.
    #[arg(long)]
    baud: Option<u32>,
    /// Multiply move durations by this factor.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Make every move instantaneous.
    #[arg(long)]
    instant: bool,
    /// Pan/tilt position width in nibbles (4 or 5).
    #[arg(long, default_value_t = 4)]
    nibbles: usize,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let opts = ChainOptions {
        baud: a.baud,
        move_time_scale: a.time_scale,
        instant_moves: a.instant,
        pan_tilt_nibbles: a.nibbles,
        ..ChainOptions::default()
    };
    let chain = VirtualChain::spawn(&a.path, a.cameras, opts)?;
    let device = chain.device().map(|d| d.display().to_string()).unwrap_or_default();
    println!("{} -> {device} ({} camera(s)); Ctrl-C to stop", chain.path().display(), a.cameras);
    tokio::signal::ctrl_c().await?;
    chain.shutdown().await;
    Ok(())
}
