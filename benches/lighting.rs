//! Lighting benchmarks (custom harness; loopback only).
//!
//!     cargo bench --bench lighting            # everything, ~25 s
//!     cargo bench --bench lighting -- jitter  # or: cpu, latency
//!
//! (a) jitter: frame-clock timing at 44 Hz over 10 s, one Art-Net and one
//!     sACN universe fading in the same lighting task (so every frame is
//!     sent on both), measured at the send point and at a loopback receiver
//!     per protocol: deviation of each interval from 1/44 s, and of each
//!     send instant from the ideal grid.
//! (b) cpu: 64 universes × 170 RGB fixtures all fading: render + ArtDmx
//!     encode and render + E1.31 encode per frame (same run, same frames)
//!     as a fraction of one core at 44 Hz, then the real clock task's
//!     process CPU time (/proc/self/stat utime+stime) with 64 Art-Net
//!     universes, then with 64 sACN universes, one after the other.
//! (c) latency: `set_look` → first frame carrying the look (send point).

use std::collections::BTreeMap;
use std::time::Duration;

use studiod::config::model::{ArtNetOutput, Attribute, Fixture, SacnOutput};
use studiod::lighting::artnet::encode_artdmx;
use studiod::lighting::e131;
use studiod::lighting::fade::FadeEngine;
use studiod::lighting::patch::Patch;
use studiod::lighting::{self, LightingOptions, Look, Output};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const HZ: f64 = 44.0;
/// The Art-Net socket on any free loopback port: benches never bind 6454.
const LOOPBACK_ANY: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0));

fn dimmer16(name: &str, output: &str) -> Fixture {
    Fixture::with_channels(name, output, 1, &[(Attribute::Intensity, 0, Some(1))], &[])
}

/// 64 universes × 170 RGB fixtures (510 slots each): 32 640 attribute slots.
fn big_rig(target: std::net::SocketAddr, sacn: bool) -> (Vec<Output>, Vec<Fixture>) {
    let rgb = [(Attribute::Red, 0, None), (Attribute::Green, 1, None), (Attribute::Blue, 2, None)];
    let mut outputs = Vec::new();
    let mut fixtures = Vec::new();
    for u in 0..64u16 {
        let name = format!("node{u}");
        outputs.push(if sacn {
            SacnOutput { name: name.clone(), target, universe: u + 1, priority: 100 }.into()
        } else {
            ArtNetOutput::new(name.clone(), target, u).into()
        });
        for i in 0..170u16 {
            fixtures.push(Fixture::with_channels(&format!("f{u}-{i}"), &name, 1 + 3 * i, &rgb, &[]));
        }
    }
    (outputs, fixtures)
}

fn full_look(fixtures: &[Fixture], x: f64) -> Look {
    fixtures
        .iter()
        .map(|f| {
            let attrs = f.mode().attributes.iter().map(|a| (a.attribute.clone(), x)).collect();
            (f.name.clone(), attrs)
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(label: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  {label:<44} n={:<5} p50={:>7.3} ms  p99={:>7.3} ms  max={:>7.3} ms",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

/// (utime + stime) of this process, in seconds (USER_HZ is 100 on Linux).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that closes the command name; utime, stime are 14, 15.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// Lighting output with one 16-bit dimmer on one universe, sent to `receiver`.
async fn one_dimmer(receiver: &UdpSocket) -> (lighting::LightingHandle, tokio::task::JoinHandle<()>, CancellationToken) {
    let outputs = [ArtNetOutput::new("node", receiver.local_addr().unwrap(), 0).into()];
    let cancel = CancellationToken::new();
    let config = LightingOptions { restore_last_look: false, artnet_bind: LOOPBACK_ANY, ..LightingOptions::default() };
    let (handle, task) = lighting::spawn(&outputs, &[dimmer16("key", "node")], config, None, cancel.clone()).await.unwrap();
    (handle, task, cancel)
}

/// Arrival instants at a loopback receiver for 10 s, on its own task.
fn receive_for_10s(rx: UdpSocket) -> tokio::task::JoinHandle<Vec<std::time::Instant>> {
    tokio::spawn(async move {
        let mut arrivals = Vec::new();
        let mut buf = [0u8; 700];
        let end = Instant::now() + Duration::from_secs(10);
        while let Ok(Ok(_)) = tokio::time::timeout_at(end, rx.recv_from(&mut buf)).await {
            arrivals.push(std::time::Instant::now());
        }
        arrivals
    })
}

async fn jitter() {
    println!("(a) frame-clock jitter at 44 Hz, 10 s, 1 Art-Net + 1 sACN universe fading in one task (every frame sent)");
    let rx_artnet = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rx_sacn = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let outputs: [Output; 2] = [
        ArtNetOutput { poll: false, ..ArtNetOutput::new("node", rx_artnet.local_addr().unwrap(), 0) }.into(),
        SacnOutput { name: "wash".into(), target: rx_sacn.local_addr().unwrap(), universe: 1, priority: 100 }.into(),
    ];
    let cancel = CancellationToken::new();
    let config = LightingOptions { restore_last_look: false, artnet_bind: LOOPBACK_ANY, ..LightingOptions::default() };
    let (handle, task) =
        lighting::spawn(&outputs, &[dimmer16("key", "node"), dimmer16("fill", "wash")], config, None, cancel.clone()).await.unwrap();
    let mut frames = handle.subscribe_frames();
    let look = BTreeMap::from([
        ("key".to_string(), BTreeMap::from([(Attribute::Intensity, 1.0)])),
        ("fill".to_string(), BTreeMap::from([(Attribute::Intensity, 1.0)])),
    ]);
    handle.set_look(look, Duration::from_secs(30)).await.unwrap();

    // Receivers on their own tasks (the runtime has 2 workers): arrival instants.
    let (recv_a, recv_s) = (receive_for_10s(rx_artnet), receive_for_10s(rx_sacn));
    let (mut sends_a, mut sends_s) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(10);
    while let Ok(Ok(f)) = tokio::time::timeout_at(end, frames.recv()).await {
        match f.protocol {
            lighting::Protocol::ArtNet => sends_a.push(f.at),
            lighting::Protocol::Sacn => sends_s.push(f.at),
        }
    }
    let (arr_a, arr_s) = (recv_a.await.unwrap(), recv_s.await.unwrap());
    cancel.cancel();
    task.await.unwrap();

    let ideal = 1000.0 / HZ;
    let dev = |d: Duration| (d.as_secs_f64() * 1000.0 - ideal).abs();
    for (proto, sends, arrivals) in [("Art-Net", &sends_a, &arr_a), ("sACN", &sends_s, &arr_s)] {
        summary(&format!("{proto} send point: |interval - 1/44 s|"), sends.windows(2).map(|w| dev(w[1] - w[0])).collect());
        let t0 = sends[0];
        let grid: Vec<f64> = sends.iter().enumerate().map(|(k, &t)| ((t - t0).as_secs_f64() * 1000.0 - (k as f64) * ideal).abs()).collect();
        summary(&format!("{proto} send point: |t_k - (t_0 + k/44 s)|"), grid);
        summary(&format!("{proto} receiver:   |interval - 1/44 s|"), arrivals.windows(2).map(|w| dev(w[1] - w[0])).collect());
        println!("  {proto}: {} frames sent, {} received in 10 s (ideal {})", sends.len(), arrivals.len(), (10.0 * HZ) as u32);
    }
}

/// The real clock task with `outputs`, everything fading, for 5 s: process
/// CPU as a fraction of one core, and packets sent.
async fn clock_task_cpu(label: &str, outputs: &[Output], fixtures: &[Fixture]) {
    // Sent to a loopback socket nobody reads (the kernel drops them once its buffer is full).
    let cancel = CancellationToken::new();
    let config = LightingOptions {
        restore_last_look: false,
        clock: if std::env::var("TOKIO_CLOCK").is_ok() { lighting::clock::ClockSource::Tokio } else { lighting::clock::ClockSource::Os },
        artnet_bind: LOOPBACK_ANY,
        ..LightingOptions::default()
    };
    let (handle, task) = lighting::spawn(outputs, fixtures, config, None, cancel.clone()).await.unwrap();
    // 8-bit channels: 255 steps in 5.5 s is > 44 steps/s, so every universe
    // changes on every frame of the 5 s measurement (with a slower fade they
    // change only every few frames, and unchanged universes are not re-sent).
    handle.set_look(full_look(fixtures, 1.0), Duration::from_millis(5500)).await.unwrap();
    let before = handle.stats().await.unwrap();
    let (cpu0, wall0) = (process_cpu(), std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (cpu1, wall) = (process_cpu(), wall0.elapsed().as_secs_f64());
    let after = handle.stats().await.unwrap();
    cancel.cancel();
    task.await.unwrap();
    let sent = (after.send.packets_sent + after.sacn.packets_sent) - (before.send.packets_sent + before.sacn.packets_sent);
    let errors = (after.send.send_errors + after.sacn.send_errors) - (before.send.send_errors + before.sacn.send_errors);
    println!(
        "  clock task, {label}: process CPU {:.2} s over {:.2} s wall = {:.1} % of one core; {} packets sent ({:.0}/s, ideal {}), {} send errors",
        cpu1 - cpu0,
        wall,
        (cpu1 - cpu0) / wall * 100.0,
        sent,
        sent as f64 / wall,
        64 * 44,
        errors
    );
}

async fn cpu() {
    println!("(b) CPU, 64 universes x 170 RGB fixtures (32 640 slots), all fading, 44 Hz: Art-Net and sACN");
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (artnet, fixtures) = big_rig(sink.local_addr().unwrap(), false);
    let (sacn, _) = big_rig(sink.local_addr().unwrap(), true);

    // Pure part: render, then encode each frame both ways, virtual instants
    // one frame apart; each encoder timed on the same frames, interleaved.
    let patch = Patch::new(&artnet, &fixtures).unwrap();
    let t0 = Instant::now();
    let mut engine = FadeEngine::new(patch, t0);
    engine.set_target(&full_look(&fixtures, 1.0), Duration::from_secs(60), t0);
    let period = Duration::from_secs_f64(1.0 / HZ);
    let n = 440u32;
    let (mut bytes_a, mut bytes_s) = (0usize, 0usize);
    let (mut t_render, mut t_artnet, mut t_sacn) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let cid = e131::cid_from_random([7; 16]);
    let mut buf = [0u8; e131::MAX_DATA_LEN];
    for k in 0..n {
        let s0 = std::time::Instant::now();
        let r = engine.render(t0 + period * k);
        let s1 = std::time::Instant::now();
        for (u, frame) in r.frames.iter().enumerate() {
            bytes_a += encode_artdmx((k % 255 + 1) as u8, u as u16, frame).unwrap().len();
        }
        let s2 = std::time::Instant::now();
        for (u, frame) in r.frames.iter().enumerate() {
            let h = e131::DataHeader {
                cid: &cid,
                source_name: "la-03",
                priority: 100,
                sync_address: 0,
                sequence: k as u8,
                options: 0,
                universe: u as u16 + 1,
            };
            bytes_s += e131::encode_data(&mut buf, &h, frame);
        }
        let s3 = std::time::Instant::now();
        t_render += s1 - s0;
        t_artnet += s2 - s1;
        t_sacn += s3 - s2;
    }
    let pct = |t: Duration| t.as_secs_f64() / f64::from(n) * HZ * 100.0;
    let ms = |t: Duration| t.as_secs_f64() / f64::from(n) * 1000.0;
    println!("  render:          {:.3} ms per frame (64 universes) = {:.1} % of one core at 44 Hz", ms(t_render), pct(t_render));
    println!("  + ArtDmx encode: {:.3} ms per frame = {:.1} % ({} bytes/frame)", ms(t_artnet), pct(t_artnet), bytes_a / n as usize);
    println!("  + E1.31 encode:  {:.3} ms per frame = {:.1} % ({} bytes/frame)", ms(t_sacn), pct(t_sacn), bytes_s / n as usize);

    clock_task_cpu("64 Art-Net universes", &artnet, &fixtures).await;
    clock_task_cpu("64 sACN universes", &sacn, &fixtures).await;
    drop(sink);
}

async fn latency() {
    println!("(c) latency: set_look (no fade) -> first frame carrying it, 200 looks");
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (handle, task, cancel) = one_dimmer(&sink).await;
    let mut frames = handle.subscribe_frames();
    let mut lat = Vec::new();
    for i in 0..200u32 {
        // Vary the phase against the frame clock (a bench, so sleeping is fine).
        tokio::time::sleep(Duration::from_micros(u64::from(i * 7919 % 23_000))).await;
        let x = if i % 2 == 0 { 0.8 } else { 0.2 };
        let want = (x * 65535.0_f64).round() as u16;
        let look = BTreeMap::from([("key".to_string(), BTreeMap::from([(Attribute::Intensity, x)]))]);
        frames = frames.resubscribe();
        let asked = Instant::now();
        handle.set_look(look, Duration::ZERO).await.unwrap();
        loop {
            let f = frames.recv().await.unwrap();
            if u16::from(f.data[0]) << 8 | u16::from(f.data[1]) == want {
                lat.push((f.at - asked).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    cancel.cancel();
    task.await.unwrap();
    summary("set_look -> frame sent", lat);
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        if run("jitter") {
            jitter().await;
        }
        if run("cpu") {
            cpu().await;
        }
        if run("latency") {
            latency().await;
        }
    });
}
