//! Issue #11: a datagram loss rate of 10 % (each way) costs no failed
//! command on a VISCA-over-UDP camera: the link resends under the same
//! sequence number, a lost reply to a resent command comes back as the
//! camera's "already performed" (`0F 01`), and a lost completion is
//! recovered by re-issuing the (idempotent) move. Measured on the simulator
//! over loopback; and, so that the test can fail, the same loss without
//! retransmission does fail commands.

mod support;

use std::time::Duration;

use studiod::camera::{spawn_camera_ports, CameraError, CameraHandle, CameraUrl, LinkOptions, PortOptions, UdpOptions};
use studiod::config::model::Camera;
use studiod_sim::ip::{IpCamera, NetFaults};
use studiod_sim::ChainOptions;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

async fn camera(sim: &IpCamera, opts: PortOptions, cancel: &CancellationToken) -> (studiod::camera::Port, CameraHandle) {
    let url = CameraUrl::parse(&sim.url()).unwrap();
    let cam = Camera {
        name: "wide".into(),
        profile: support::camera_profile("generic-visca"),
        port: url.to_string().into(),
        baud: 0,
        address: 1,
        url: Some(url),
    };
    let mut ports = spawn_camera_ports(&[cam], opts, cancel.clone()).unwrap();
    let port = ports.pop().unwrap();
    let h = port.handles()[0].clone();
    support::wait_watch(&mut h.health(), T, "online", |h| h.online).await;
    (port, h)
}

/// `n` commands (alternating absolute moves and preset recalls, each
/// followed by a position inquiry); returns the failures.
async fn run(h: &CameraHandle, n: usize) -> Vec<CameraError> {
    let mut failed = Vec::new();
    for i in 0..n {
        let r = if i % 2 == 0 { h.move_absolute(if i % 4 == 0 { 20.0 } else { -20.0 }, 5.0, None).await } else { h.recall_preset(2).await };
        if let Err(e) = r {
            failed.push(e);
        }
        if let Err(e) = h.position().await {
            failed.push(e);
        }
    }
    failed
}

fn lossy() -> NetFaults {
    NetFaults { drop: 0.10, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_datagram_loss_costs_no_failed_command() {
    let sim = IpCamera::spawn_udp("127.0.0.1:0".parse().unwrap(), ChainOptions { instant_moves: true, seed: 2026, ..Default::default() })
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let opts = PortOptions { udp: UdpOptions { reissue_after: Duration::from_millis(300), ..Default::default() }, ..Default::default() };
    let (port, h) = camera(&sim, opts, &cancel).await;
    h.store_preset(2).await.unwrap();
    sim.set_net_faults(lossy());
    let n = 120;
    let failed = run(&h, n).await;
    let s = sim.stats();
    eprintln!("10 % loss: {} requests, {} failed; sim {s:?}", 2 * n, failed.len());
    assert!(failed.is_empty(), "{} of {} failed: {failed:?}", failed.len(), 2 * n);
    // The loss was real: about 10 % of the datagrams each way.
    let lost = (s.dropped_in + s.dropped_out) as f64 / (s.received + s.sent + s.dropped_out) as f64;
    assert!((0.05..0.16).contains(&lost), "loss rate {lost}: {s:?}");
    assert!(h.is_online());
    cancel.cancel();
    port.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_loss_without_retransmission_fails_commands() {
    let sim = IpCamera::spawn_udp("127.0.0.1:0".parse().unwrap(), ChainOptions { instant_moves: true, seed: 2026, ..Default::default() })
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let opts = PortOptions {
        link: LinkOptions { retries: 0, ..Default::default() },
        ip_retries: 0,
        udp: UdpOptions { max_reissues: 0, ..Default::default() },
        ..Default::default()
    };
    let (port, h) = camera(&sim, opts, &cancel).await;
    // Short completion timeouts would be the profile's business; a move's is
    // 10 s, so only count the inquiries and direct replies here.
    sim.set_net_faults(lossy());
    let mut failed = 0;
    for _ in 0..60 {
        if h.position().await.is_err() {
            failed += 1;
        }
    }
    assert!(failed > 0, "without resends, 10 % loss must cost some inquiries");
    cancel.cancel();
    port.join().await;
}
