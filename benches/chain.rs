//! Preset recall on a full 7-camera chain at 9600 baud, against the wire-time
//! lower bound of the bytes exchanged. The virtual chain paces its line at
//! the baud rate (10 bits per byte, 8N1), so the bound is physical, and moves
//! are instantaneous so only the protocol is measured.
//!
//! Run: `cargo bench --bench chain` (prints a table for BENCHMARKS.md).

#[path = "support/cameras.rs"]
mod cameras;

use std::time::Duration;

use studiod::camera::{spawn_serial_ports, LinkOptions, PortOptions};
use studiod::config::model::Camera;
use studiod_sim::{ChainOptions, VirtualChain};
use tokio_util::sync::CancellationToken;

const BAUD: u32 = 9600;
const CAMERAS: u8 = 7;
const ROUNDS: usize = 50;
/// Per camera: recall `8x 01 04 3F 02 pp FF` (7) + ACK `z0 4y FF` (3) + completion `z0 5y FF` (3).
const BYTES_PER_CAMERA: usize = 7 + 3 + 3;

fn wire(bytes: usize) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 10.0 / BAUD as f64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a short smoke round then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 3 } else { ROUNDS };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ttyCHAIN");
        let chain =
            VirtualChain::spawn(&path, CAMERAS as usize, ChainOptions { baud: Some(BAUD), instant_moves: true, ..Default::default() })
                .unwrap();
        let profile = studiod::config::profiles::load_camera(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles/cameras/generic-visca.toml"),
            "generic-visca",
        )
        .unwrap();
        let cams: Vec<Camera> = (1..=CAMERAS)
            .map(|a| Camera { name: format!("cam{a}"), profile: profile.clone(), port: path.clone(), baud: BAUD, address: a, url: None })
            .collect();
        // Health probes would share the line with the measured recalls; push them out of the way.
        let opts =
            PortOptions { link: LinkOptions { probe_interval: Duration::from_secs(3600), ..Default::default() }, ..Default::default() };
        let cancel = CancellationToken::new();
        let ports = spawn_serial_ports(&cams, opts, cancel.clone()).unwrap();
        let handles = ports[0].handles().to_vec();
        cameras::online(&handles).await;
        let mut times = cameras::recall_rounds(&handles, rounds).await;
        times.sort();
        let total = wire(BYTES_PER_CAMERA * CAMERAS as usize);
        // Full duplex: the 7 commands must all be received (49 bytes) and the last
        // camera's ACK + completion sent (6 bytes) — the critical path.
        let critical = wire(7 * CAMERAS as usize + 6);
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        println!("preset recall on {CAMERAS} cameras, one {BAUD}-baud chain, {rounds} rounds");
        println!(
            "  bytes exchanged: {} → wire-time lower bound {:.1} ms (critical path, full duplex: {:.1} ms)",
            BYTES_PER_CAMERA * CAMERAS as usize,
            ms(total),
            ms(critical)
        );
        println!("  measured: p50 {:.1} ms, p99 {:.1} ms, min {:.1} ms", ms(p50), ms(p99), ms(times[0]));
        println!("  ratio measured/bound: p50 {:.2}, p99 {:.2} (target ≤ 1.5)", ratio(p50, total), ratio(p99, total));
        cancel.cancel();
        chain.shutdown().await;
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
