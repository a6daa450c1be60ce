//! IP cameras (issue #11):
//! 1. preset recall on 7 VISCA-over-UDP cameras vs 7 serial cameras on one
//!    9600-baud chain (the baseline, same run), all recalled at once;
//! 2. latency studiod adds over the simulator's own answer time on UDP: a
//!    raw client (this bench, sending Sony-framed datagrams itself) vs the
//!    same recall through studiod's camera handle, same camera, same run;
//! 3. memory per IP camera: RSS growth per UDP camera port (task, socket,
//!    link state), with the simulated cameras already running.
//!
//! Moves are instantaneous so only the protocol is measured.
//! Run: `cargo bench --bench ip`.

#[path = "support/cameras.rs"]
mod cameras;
#[path = "support/dist.rs"]
mod dist;

use std::time::{Duration, Instant};

use cameras::{online, recall_rounds};
use dist::Dist;
use studiod::camera::{spawn_camera_ports, CameraHandle, CameraUrl, LinkOptions, PortOptions};
use studiod::config::model::Camera;
use studiod_sim::ip::IpCamera;
use studiod_sim::{ChainOptions, VirtualChain};
use tokio_util::sync::CancellationToken;

const CAMERAS: u8 = 7;

fn profile() -> studiod::config::model::CameraProfile {
    studiod::config::profiles::load_camera(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles/cameras/generic-visca.toml"),
        "generic-visca",
    )
    .unwrap()
}

fn opts() -> PortOptions {
    // Health probes would share the link with the measured recalls.
    PortOptions { link: LinkOptions { probe_interval: Duration::from_secs(3600), ..Default::default() }, ..Default::default() }
}

fn ip_camera(name: String, url: &str) -> Camera {
    let url = CameraUrl::parse(url).unwrap();
    Camera { name, profile: profile(), port: url.to_string().into(), baud: 0, address: 1, url: Some(url) }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// One recall through a raw UDP client: RESET once, then command → completion.
async fn raw_recall(sock: &tokio::net::UdpSocket, seq: u32, preset: u8) -> Duration {
    let payload = [0x81, 0x01, 0x04, 0x3F, 0x02, preset, 0xFF];
    let mut d = vec![0x01, 0x00, 0x00, payload.len() as u8];
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&payload);
    let t0 = Instant::now();
    sock.send(&d).await.unwrap();
    let mut buf = [0u8; 64];
    loop {
        let n = sock.recv(&mut buf).await.unwrap();
        // 0x0111 reply, our number, `90 5y FF`.
        if n == 11 && buf[..2] == [0x01, 0x11] && buf[4..8] == seq.to_be_bytes() && buf[9] & 0xF0 == 0x50 {
            return t0.elapsed();
        }
    }
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 3 } else { 200 };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let cancel = CancellationToken::new();
        let lo = "127.0.0.1:0".parse().unwrap();
        let sim = ChainOptions { instant_moves: true, ..Default::default() };

        // 1. 7 serial (9600 baud) vs 7 UDP.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ttyCHAIN");
        let chain = VirtualChain::spawn(&path, CAMERAS as usize, ChainOptions { baud: Some(9600), ..sim.clone() }).unwrap();
        let serial: Vec<Camera> = (1..=CAMERAS)
            .map(|a| Camera { name: format!("s{a}"), profile: profile(), port: path.clone(), baud: 9600, address: a, url: None })
            .collect();
        let ports = spawn_camera_ports(&serial, opts(), cancel.clone()).unwrap();
        let sh: Vec<CameraHandle> = ports.iter().flat_map(|p| p.handles().to_vec()).collect();
        online(&sh).await;
        let mut udp_sims = Vec::new();
        for _ in 0..CAMERAS {
            udp_sims.push(IpCamera::spawn_udp(lo, sim.clone()).await.unwrap());
        }
        let ip: Vec<Camera> = udp_sims.iter().enumerate().map(|(i, s)| ip_camera(format!("u{i}"), &s.url())).collect();
        let ip_ports = spawn_camera_ports(&ip, opts(), cancel.clone()).unwrap();
        let uh: Vec<CameraHandle> = ip_ports.iter().flat_map(|p| p.handles().to_vec()).collect();
        online(&uh).await;
        let serial_d = Dist::new(recall_rounds(&sh, rounds).await);
        let udp_d = Dist::new(recall_rounds(&uh, rounds).await);
        println!("## preset recall, {CAMERAS} cameras at once ({rounds} rounds)");
        println!("  serial, one 9600-baud chain (baseline): {}", serial_d.summary());
        println!("  VISCA over UDP, 7 cameras:              {}", udp_d.summary());

        // 2. Raw client vs studiod, same UDP camera, alternating samples.
        let target = IpCamera::spawn_udp(lo, sim.clone()).await.unwrap();
        let raw = tokio::net::UdpSocket::bind(lo).await.unwrap();
        raw.connect(target.local_addr()).await.unwrap();
        raw.send(&[0x02, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x01]).await.unwrap();
        let mut b = [0u8; 64];
        raw.recv(&mut b).await.unwrap();
        let one = spawn_camera_ports(&[ip_camera("one".into(), &target.url())], opts(), cancel.clone()).unwrap();
        let h = one[0].handles()[0].clone();
        online(std::slice::from_ref(&h)).await;
        let (mut direct, mut through) = (Vec::new(), Vec::new());
        for i in 0..rounds.max(3) * 2 {
            let preset = (i % 16) as u8;
            direct.push(raw_recall(&raw, i as u32 + 1, preset).await);
            let t0 = Instant::now();
            h.recall_preset(preset + 1).await.unwrap();
            through.push(t0.elapsed());
        }
        println!("## one UDP camera: the simulator's own answer time vs through studiod ({} samples each)", direct.len());
        println!("  raw client (baseline): {}", Dist::new(direct).summary());
        println!("  through studiod:       {}", Dist::new(through).summary());

        // 3. Memory per IP camera.
        let n = if quick { 5 } else { 50 };
        let mut many = Vec::new();
        for _ in 0..n {
            many.push(IpCamera::spawn_udp(lo, sim.clone()).await.unwrap());
        }
        let cams: Vec<Camera> = many.iter().enumerate().map(|(i, s)| ip_camera(format!("m{i}"), &s.url())).collect();
        let before = rss_kib();
        let mem_ports = spawn_camera_ports(&cams, opts(), cancel.clone()).unwrap();
        let mh: Vec<CameraHandle> = mem_ports.iter().flat_map(|p| p.handles().to_vec()).collect();
        online(&mh).await;
        for h in &mh {
            h.recall_preset(1).await.unwrap();
        }
        let after = rss_kib();
        println!(
            "## memory: {n} UDP camera ports, RSS {before} KiB → {after} KiB = {:.1} KiB per camera",
            (after.saturating_sub(before)) as f64 / n as f64
        );

        cancel.cancel();
        for p in ports.into_iter().chain(ip_ports).chain(one).chain(mem_ports) {
            p.join().await;
        }
        chain.shutdown().await;
    });
}
