//! The lighting task over real UDP on 127.0.0.1, with a receiver that decodes
//! ArtDmx by hand from the Art-Net 4 spec (not with artnet_protocol).
//!
//! Real time: a 1 s fade takes about 1 s. Every wait is bounded.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use studiod::config::model::{ArtNetOutput, Attribute, Fixture, Lighting};
use studiod::lighting::{self, Look, Output};
use tokio::net::UdpSocket;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Exercises the net (0x12) and sub-net/universe (0x34) bytes.
const PORT_ADDRESS: u16 = 0x1234 & 0x7FFF;

#[derive(Debug, PartialEq)]
enum Packet {
    Dmx {
        sequence: u8,
        port_address: u16,
        data: Vec<u8>,
    },
    Sync,
    /// ArtPoll (the node's health check), skipped by `next`.
    Poll,
}

/// Decode per Art-Net 4: ID "Art-Net\0"; OpCode u16 LE; ProtVer u16 BE (14);
/// ArtDmx: Sequence, Physical, SubUni, Net, Length u16 BE (even, 2–512), Data;
/// ArtSync: Aux1, Aux2.
fn decode(p: &[u8]) -> Packet {
    assert!(p.len() >= 14, "short packet: {p:?}");
    assert_eq!(&p[..8], b"Art-Net\0", "ID");
    let opcode = u16::from_le_bytes([p[8], p[9]]);
    assert_eq!(u16::from_be_bytes([p[10], p[11]]), 14, "ProtVer");
    match opcode {
        0x5000 => {
            let sequence = p[12];
            assert_ne!(sequence, 0, "sequence 0 means 'disabled'; we must never send it");
            let port_address = u16::from(p[15] & 0x7F) << 8 | u16::from(p[14]);
            let length = usize::from(u16::from_be_bytes([p[16], p[17]]));
            assert!(length % 2 == 0 && (2..=512).contains(&length), "Length {length}");
            assert_eq!(p.len(), 18 + length, "Length field matches the payload");
            Packet::Dmx { sequence, port_address, data: p[18..].to_vec() }
        }
        0x5200 => {
            assert_eq!(p.len(), 14, "ArtSync is 14 bytes");
            Packet::Sync
        }
        0x2000 => {
            assert!(p.len() >= 14, "ArtPoll is at least 14 bytes");
            Packet::Poll
        }
        other => panic!("unexpected OpCode {other:#06x}"),
    }
}

struct Receiver {
    sock: UdpSocket,
}

impl Receiver {
    async fn bind() -> Receiver {
        Receiver { sock: UdpSocket::bind("127.0.0.1:0").await.unwrap() }
    }

    fn output(&self, name: &str, universe: u16) -> Output {
        ArtNetOutput::new(name, self.sock.local_addr().unwrap(), universe).into()
    }

    async fn next(&self, within: Duration) -> Packet {
        let mut buf = [0u8; 1024];
        let end = Instant::now() + within;
        loop {
            let (n, _) = tokio::time::timeout_at(end, self.sock.recv_from(&mut buf)).await.expect("no Art-Net packet in time").unwrap();
            match decode(&buf[..n]) {
                Packet::Poll => continue,
                p => return p,
            }
        }
    }

    async fn next_dmx(&self, within: Duration) -> (u8, u16, Vec<u8>) {
        loop {
            if let Packet::Dmx { sequence, port_address, data } = self.next(within).await {
                return (sequence, port_address, data);
            }
        }
    }
}

fn dimmer16(name: &str, output: &str, address: u16) -> Fixture {
    Fixture::with_channels(name, output, address, &[(Attribute::Intensity, 0, Some(1))], &[])
}

fn look(fixture: &str, x: f64) -> Look {
    let mut l = Look::new();
    l.insert(fixture.into(), BTreeMap::from([(Attribute::Intensity, x)]));
    l
}

fn level16(data: &[u8], address: usize) -> u16 {
    u16::from(data[address - 1]) << 8 | u16::from(data[address])
}

/// The defaults, but the Art-Net socket on any free loopback port: tests
/// run side by side and never bind 6454.
fn lighting() -> Lighting {
    Lighting { artnet_bind: "127.0.0.1:0".parse().unwrap(), ..Lighting::default() }
}

fn no_restore() -> Lighting {
    Lighting { restore_last_look: false, ..lighting() }
}

const WAIT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn fade_16bit_monotonic_to_full_with_valid_headers() {
    let rx = Receiver::bind().await;
    let cancel = CancellationToken::new();
    let (handle, task) =
        lighting::spawn(&[rx.output("node", PORT_ADDRESS)], &[dimmer16("key", "node", 100)], &no_restore(), None, cancel.clone())
            .await
            .unwrap();

    let (mut prev_seq, pa, data) = rx.next_dmx(WAIT).await;
    assert_eq!(pa, PORT_ADDRESS);
    assert_eq!(data, vec![0; 512], "defaults are 0 and nothing else is patched");

    handle.set_look(look("key", 1.0), Duration::from_secs(1)).await.unwrap();
    let started = Instant::now();
    let mut levels = Vec::new();
    loop {
        let (seq, pa, data) = rx.next_dmx(WAIT).await;
        assert_eq!(pa, PORT_ADDRESS);
        assert_eq!(seq, if prev_seq == 255 { 1 } else { prev_seq + 1 }, "sequence increments");
        prev_seq = seq;
        let v = level16(&data, 100);
        assert!(data.iter().enumerate().all(|(i, &b)| b == 0 || i == 99 || i == 100));
        levels.push(v);
        if v == 65535 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "fade never reached full");
    }
    assert!(levels.windows(2).all(|w| w[0] <= w[1]), "non-decreasing: {levels:?}");
    assert!(levels.len() >= 15, "a 1 s fade at 44 Hz has many steps: {levels:?}");
    assert!(levels.iter().any(|&v| v > 0 && v < 65535), "intermediate values: {levels:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "fade too fast");

    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn keepalive_only_when_nothing_changes() {
    let rx = Receiver::bind().await;
    let cancel = CancellationToken::new();
    let (handle, task) =
        lighting::spawn(&[rx.output("node", 1)], &[dimmer16("key", "node", 1)], &no_restore(), None, cancel.clone()).await.unwrap();
    handle.set_look(look("key", 0.5), Duration::ZERO).await.unwrap();
    // Wait for the frame carrying the look; from then on nothing changes.
    loop {
        let (_, _, data) = rx.next_dmx(WAIT).await;
        if level16(&data, 1) == 32768 {
            break;
        }
    }
    let mut last = Instant::now();
    for _ in 0..2 {
        // A keep-alive must come within the 1 s keep-alive (+ scheduling slack)…
        let (_, _, data) = rx.next_dmx(Duration::from_millis(1500)).await;
        // …and not every frame: an unchanged universe is not re-sent at 44 Hz.
        let gap = last.elapsed();
        assert!(gap >= Duration::from_millis(500), "re-sent after only {gap:?}");
        assert_eq!(level16(&data, 1), 32768);
        last = Instant::now();
    }
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn artsync_follows_every_frame() {
    let rx = Receiver::bind().await;
    let cancel = CancellationToken::new();
    let config = Lighting { artsync: true, ..no_restore() };
    let (handle, task) = lighting::spawn(
        &[rx.output("a", 1), rx.output("b", 2)],
        &[dimmer16("ka", "a", 1), dimmer16("kb", "b", 1)],
        &config,
        None,
        cancel.clone(),
    )
    .await
    .unwrap();
    let mut both = look("ka", 1.0);
    both.extend(look("kb", 1.0));
    handle.set_look(both, Duration::ZERO).await.unwrap();
    // Find the frame carrying the look on both universes, then its ArtSync.
    let mut full = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no ArtSync after the changed frame");
        match rx.next(WAIT).await {
            Packet::Dmx { port_address, data, .. } if level16(&data, 1) == 65535 => full.push(port_address),
            Packet::Dmx { .. } => {}
            Packet::Sync if full.len() == 2 => break,
            Packet::Sync | Packet::Poll => {}
        }
    }
    full.sort();
    assert_eq!(full, vec![1, 2]);

    // A node in sync mode holds ArtDmx until the next ArtSync, so even a
    // frame that changes one universe is followed by one.
    handle.set_look(look("ka", 0.0), Duration::ZERO).await.unwrap();
    loop {
        assert!(Instant::now() < deadline + WAIT, "no ArtSync after a one-universe change");
        if let Packet::Dmx { port_address: 1, data, .. } = rx.next(WAIT).await {
            if level16(&data, 1) == 0 {
                break;
            }
        }
    }
    // (Universe 2 may get a keep-alive in the same frame, before the sync.)
    let mut next = rx.next(WAIT).await;
    if let Packet::Dmx { port_address: 2, .. } = next {
        next = rx.next(WAIT).await;
    }
    assert_eq!(next, Packet::Sync);
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}

/// The spec: controllers send every Art-Net packet from the Art-Net port,
/// the one nodes reply to. ArtPoll, ArtDmx and ArtSync all leave from the
/// socket the task listens on.
#[tokio::test]
async fn every_packet_leaves_from_the_art_net_socket() {
    let rx = Receiver::bind().await;
    let cancel = CancellationToken::new();
    let config = Lighting { artsync: true, ..no_restore() };
    let (handle, task) =
        lighting::spawn(&[rx.output("node", 1)], &[dimmer16("key", "node", 1)], &config, None, cancel.clone()).await.unwrap();
    let listen = handle.artnet_listen_addr().expect("bound");
    assert_eq!(listen.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(listen.port(), 0);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !(seen.contains(&0x2000) && seen.contains(&0x5000) && seen.contains(&0x5200)) {
        let (n, from) = timeout(WAIT, rx.sock.recv_from(&mut buf)).await.expect("ArtPoll, ArtDmx and ArtSync").unwrap();
        assert_eq!(from, listen, "{:?}", decode(&buf[..n]));
        seen.push(u16::from_le_bytes([buf[8], buf[9]]));
    }
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}

async fn first_frame_level(dir: &Path, restore: bool) -> u16 {
    let rx = Receiver::bind().await;
    let cancel = CancellationToken::new();
    let config = Lighting { restore_last_look: restore, ..lighting() };
    let (_handle, task) =
        lighting::spawn(&[rx.output("node", 3)], &[dimmer16("key", "node", 10)], &config, Some(dir), cancel.clone()).await.unwrap();
    let (_, _, data) = rx.next_dmx(WAIT).await;
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
    level16(&data, 10)
}

#[tokio::test]
async fn restore_from_last_look_json() {
    let dir = tempfile::tempdir().unwrap();
    // The documented file format, written by hand.
    std::fs::write(dir.path().join("last-look.json"), r#"{"version":1,"look":{"key":{"intensity":0.25},"gone":{"intensity":1.0}}}"#)
        .unwrap();
    assert_eq!(first_frame_level(dir.path(), true).await, 16384, "first frame carries the look");
    assert_eq!(first_frame_level(dir.path(), false).await, 0, "restore disabled");

    // The grand master is restored too (a dimmed booth must not come back at full).
    std::fs::write(dir.path().join("last-look.json"), r#"{"version":1,"grand_master":0.5,"look":{"key":{"intensity":1.0}}}"#).unwrap();
    assert_eq!(first_frame_level(dir.path(), true).await, 32768, "full × master 0.5");

    std::fs::write(dir.path().join("last-look.json"), b"{\"version\":1,\"lo").unwrap();
    assert_eq!(first_frame_level(dir.path(), true).await, 0, "corrupt file ignored");
}

#[tokio::test]
async fn shutdown_sends_final_look_persists_it_and_restart_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::bind().await;
    let cancel = CancellationToken::new();
    let (handle, task) =
        lighting::spawn(&[rx.output("node", 3)], &[dimmer16("key", "node", 10)], &lighting(), Some(dir.path()), cancel.clone())
            .await
            .unwrap();
    rx.next_dmx(WAIT).await;
    // A long fade, interrupted by shutdown: the final frame completes it.
    handle.set_look(look("key", 0.75), Duration::from_secs(60)).await.unwrap();
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
    let mut last = None;
    while let Ok(Ok(n)) = timeout(Duration::from_millis(200), async {
        let mut buf = [0u8; 1024];
        rx.sock.recv_from(&mut buf).await.map(|(n, _)| buf[..n].to_vec())
    })
    .await
    {
        last = Some(n);
    }
    match decode(&last.expect("frames were sent")) {
        Packet::Dmx { data, .. } => assert_eq!(level16(&data, 10), 49151, "0.75 × 65535 rounded"),
        Packet::Sync | Packet::Poll => panic!("last packet should be ArtDmx"),
    }
    assert!(handle.set_look(Look::new(), Duration::ZERO).await.is_err(), "task is gone");

    assert_eq!(first_frame_level(dir.path(), true).await, 49151, "restart restores it");
}

#[tokio::test]
async fn dead_target_does_not_stall_the_clock() {
    // A port nobody listens on. (The sender connects one socket per target,
    // so the ICMP port unreachable surfaces as ECONNREFUSED on a later send:
    // counted, see tests/fault_artnet.rs; the clock must not stall either way.)
    let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    // Port 0: every send fails at once (EINVAL), standing in for any send error.
    let failing: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let rx = Receiver::bind().await;
    let cancel = CancellationToken::new();
    let outputs = [ArtNetOutput::new("dead", dead, 1).into(), rx.output("live", 2), ArtNetOutput::new("failing", failing, 3).into()];
    let (handle, task) = lighting::spawn(
        &outputs,
        &[dimmer16("kd", "dead", 1), dimmer16("kl", "live", 1), dimmer16("kf", "failing", 1)],
        &no_restore(),
        None,
        cancel.clone(),
    )
    .await
    .unwrap();
    let mut all = look("kd", 1.0);
    all.extend(look("kl", 1.0));
    all.extend(look("kf", 1.0));
    handle.set_look(all, Duration::from_millis(500)).await.unwrap();
    let start = Instant::now();
    let mut frames = 0;
    loop {
        let (_, pa, data) = rx.next_dmx(WAIT).await;
        assert_eq!(pa, 2);
        frames += 1;
        if level16(&data, 1) == 65535 {
            break;
        }
    }
    assert!(frames >= 8, "the live node kept getting the fade: {frames} frames");
    assert!(start.elapsed() < Duration::from_secs(2));
    let stats = handle.stats().await.unwrap();
    assert!(stats.send.send_errors >= frames as u64, "failed sends are counted: {stats:?}");
    assert!(stats.send.packets_sent >= 2 * frames as u64 - 2, "{stats:?}");
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}
