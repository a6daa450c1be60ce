//! The frame clock in paused (virtual) time, observed through the handle's
//! "frame sent" events: exact keep-alive cadence, latency of a new look,
//! grand master and blackout through the task. The UDP datagrams still go to
//! a loopback socket nobody reads; only the in-process events are checked,
//! so no test depends on socket timing under virtual time.

use std::collections::BTreeMap;
use std::time::Duration;

use studiod::config::model::{ArtNetOutput, Attribute, Fixture};
use studiod::lighting::clock::ClockSource;
use studiod::lighting::{self, FrameSent, LightingHandle, LightingOptions, Look};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

const PERIOD: Duration = Duration::from_nanos(1_000_000_000 / 44);

fn dimmer16(name: &str) -> Fixture {
    Fixture::with_channels(name, "node", 1, &[(Attribute::Intensity, 0, Some(1))], &[])
}

fn look(x: f64) -> Look {
    BTreeMap::from([("key".to_string(), BTreeMap::from([(Attribute::Intensity, x)]))])
}

fn level(f: &FrameSent) -> u16 {
    u16::from(f.data[0]) << 8 | u16::from(f.data[1])
}

struct Running {
    handle: LightingHandle,
    frames: broadcast::Receiver<FrameSent>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _sink: UdpSocket,
}

async fn start() -> Running {
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let output = ArtNetOutput::new("node", sink.local_addr().unwrap(), 7).into();
    let cancel = CancellationToken::new();
    // The frame clock on tokio's timer, which follows the paused test clock.
    let config = LightingOptions {
        restore_last_look: false,
        clock: ClockSource::Tokio,
        artnet_bind: "127.0.0.1:0".parse().unwrap(),
        ..LightingOptions::default()
    };
    let (handle, task) = lighting::spawn(&[output], &[dimmer16("key")], config, None, cancel.clone()).await.unwrap();
    let frames = handle.subscribe_frames();
    Running { handle, frames, cancel, task, _sink: sink }
}

async fn next(frames: &mut broadcast::Receiver<FrameSent>) -> FrameSent {
    // Virtual time: 10 s here costs nothing, and a missing frame fails fast.
    timeout(Duration::from_secs(10), frames.recv()).await.expect("no frame").unwrap()
}

#[tokio::test(start_paused = true)]
async fn keepalive_cadence_in_virtual_time() {
    let Running { handle, mut frames, cancel, .. } = start().await;
    handle.set_look(look(0.5), Duration::ZERO).await.unwrap();
    let mut f = next(&mut frames).await;
    while level(&f) != 32768 {
        f = next(&mut frames).await;
    }
    let mut prev = f.at;
    for _ in 0..3 {
        let f = next(&mut frames).await;
        assert!(!f.changed, "nothing changed: this is a keep-alive");
        let gap = f.at - prev;
        // Never longer than the 1 s keep-alive, and not more than one frame sooner.
        assert!(gap <= Duration::from_secs(1), "gap {gap:?}");
        assert!(gap > Duration::from_secs(1) - PERIOD - Duration::from_millis(1), "gap {gap:?}");
        assert_eq!(level(&f), 32768);
        assert_eq!(f.port_address, 7);
        prev = f.at;
    }
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn new_look_goes_out_within_one_frame_and_every_frame_while_fading() {
    let Running { handle, mut frames, cancel, .. } = start().await;
    next(&mut frames).await;
    let asked = Instant::now();
    handle.set_look(look(1.0), Duration::ZERO).await.unwrap();
    let f = next(&mut frames).await;
    assert_eq!(level(&f), 65535);
    // tokio's timer has 1 ms resolution: a tick fires up to 1 ms after its ideal instant.
    assert!(f.at - asked <= PERIOD + Duration::from_millis(1), "latency {:?}", f.at - asked);

    handle.set_look(look(0.0), Duration::from_secs(1)).await.unwrap();
    let mut count = 0;
    let mut prev = next(&mut frames).await;
    while level(&prev) != 0 {
        let f = next(&mut frames).await;
        assert!(f.changed);
        assert!(f.at - prev.at <= PERIOD + Duration::from_millis(1), "a fading frame was skipped");
        assert!(level(&f) < level(&prev));
        count += 1;
        prev = f;
    }
    assert!((43..=45).contains(&count), "{count} frames for a 1 s fade at 44 Hz");
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn grand_master_blackout_and_current_values() {
    let Running { handle, mut frames, cancel, .. } = start().await;
    handle.set_look(look(1.0), Duration::ZERO).await.unwrap();
    handle.set_grand_master(0.5).await.unwrap();
    let mut f = next(&mut frames).await;
    while level(&f) != 32768 {
        f = next(&mut frames).await;
    }
    // current_values is the look, before the master.
    assert_eq!(handle.current_values().await.unwrap(), look(1.0));

    handle.set_grand_master(1.0).await.unwrap();
    handle.blackout(Duration::from_secs(2)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let v = handle.current_values().await.unwrap()["key"][&Attribute::Intensity];
    assert!((v - 0.5).abs() < 0.03, "half-way through a 2 s blackout: {v}");
    while level(&f) != 0 {
        f = next(&mut frames).await;
    }
    assert_eq!(handle.current_values().await.unwrap(), look(0.0));
    let stats = handle.stats().await.unwrap();
    assert!(stats.send.packets_sent > 40 && stats.frames >= stats.send.packets_sent);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_one_final_frame() {
    // Keep last look: a fade in progress is completed in the final frame.
    let Running { handle, mut frames, cancel, task, .. } = start().await;
    handle.set_look(look(0.6), Duration::from_secs(30)).await.unwrap();
    let last = final_frame(&mut frames, cancel, task).await;
    assert_eq!(level(&last), 39321, "0.6 × 65535 rounded");

    // Shutdown look: the final frame carries it, whatever was on.
    let Running { handle, mut frames, cancel, task, .. } = start().await;
    handle.set_look(look(1.0), Duration::ZERO).await.unwrap();
    handle.set_shutdown_look(Some(look(0.1))).await.unwrap();
    let last = final_frame(&mut frames, cancel, task).await;
    assert_eq!(level(&last), 6554, "0.1 × 65535 rounded");
}

/// Cancel the lighting task after its next frame and return the last frame it sent.
async fn final_frame(
    frames: &mut broadcast::Receiver<FrameSent>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
) -> FrameSent {
    next(frames).await;
    cancel.cancel();
    timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    let mut last = None;
    while let Ok(f) = frames.try_recv() {
        last = Some(f);
    }
    last.expect("a final frame")
}
