//! sACN (E1.31) output over real UDP on 127.0.0.1, checked by the
//! simulator's own E1.31 decoder (`studiod_sim::monitor::decode_sacn`, which
//! shares no code with `studiod::lighting::e131`): packet layout, CID,
//! source name, priority, per-universe sequence numbers, keep-alive within
//! the 2.5 s data-loss timeout, universe synchronization, stream
//! termination, and Art-Net and sACN carrying one look in the same frame.
//!
//! Real time (the receiver times arrivals); every wait is bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use studiod::config::model::{ArtNetOutput, Attribute, Fixture, SacnOutput};
use studiod::lighting::{self, LightingOptions, Look, Output, Protocol};
use studiod_sim::monitor::{ArtNetMonitor, NodeOptions, ReplyTo, Sacn, SacnData, SacnMonitor};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(3);
const PERIOD: Duration = Duration::from_nanos(1_000_000_000 / 44);

fn dimmer16(name: &str, output: &str, address: u16) -> Fixture {
    Fixture::with_channels(name, output, address, &[(Attribute::Intensity, 0, Some(1))], &[])
}

fn look(pairs: &[(&str, f64)]) -> Look {
    pairs.iter().map(|(f, x)| (f.to_string(), BTreeMap::from([(Attribute::Intensity, *x)]))).collect()
}

fn level16(slots: &[u8], address: usize) -> u16 {
    u16::from(slots[address - 1]) << 8 | u16::from(slots[address])
}

fn sacn(name: &str, mon: &SacnMonitor, universe: u16, priority: u8) -> Output {
    SacnOutput { name: name.into(), target: mon.local_addr().unwrap(), universe, priority }.into()
}

fn options() -> LightingOptions {
    LightingOptions {
        restore_last_look: false,
        source_name: "la-03".into(),
        // Tests run side by side and never bind 6454.
        artnet_bind: "127.0.0.1:0".parse().unwrap(),
        ..LightingOptions::default()
    }
}

async fn next(mon: &SacnMonitor) -> (Sacn, std::time::Instant) {
    timeout(WAIT, mon.next()).await.expect("no sACN packet in time").unwrap()
}

async fn next_data(mon: &SacnMonitor) -> (SacnData, std::time::Instant) {
    loop {
        if let (Sacn::Data(d), at) = next(mon).await {
            return (d, at);
        }
    }
}

#[tokio::test]
async fn data_packets_carry_cid_name_priority_universe_and_per_universe_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let mon = SacnMonitor::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let outputs = [sacn("wash", &mon, 1234, 150), sacn("back", &mon, 63999, 0)];
    let fixtures = [dimmer16("a", "wash", 1), dimmer16("b", "back", 511)];
    let (handle, task) = lighting::spawn(&outputs, &fixtures, options(), Some(dir.path()), cancel.clone()).await.unwrap();
    handle.set_look(look(&[("a", 1.0), ("b", 0.5)]), Duration::from_millis(300)).await.unwrap();

    let cid_file = std::fs::read_to_string(dir.path().join("sacn-cid")).expect("CID kept in state_dir");
    let cid: Vec<u8> = cid_file
        .trim()
        .split('-')
        .collect::<String>()
        .as_bytes()
        .chunks(2)
        .map(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap())
        .collect();
    let mut last_seq: BTreeMap<u16, u8> = BTreeMap::new();
    let mut seen = 0;
    let mut done = BTreeMap::new();
    while done.len() < 2 {
        let (d, _) = next_data(&mon).await;
        assert_eq!(d.cid.to_vec(), cid, "CID = the one kept in state_dir");
        assert_eq!(d.source_name, "la-03", "source name = studio id");
        assert_eq!((d.start_code, d.slots.len(), d.options, d.sync_address), (0, 512, 0, 0));
        match d.universe {
            1234 => assert_eq!(d.priority, 150),
            63999 => assert_eq!(d.priority, 0),
            u => panic!("universe {u}"),
        }
        if let Some(prev) = last_seq.insert(d.universe, d.sequence) {
            assert_eq!(d.sequence, prev.wrapping_add(1), "universe {}: sequence per universe, +1 each packet", d.universe);
        }
        seen += 1;
        let full = match d.universe {
            1234 => level16(&d.slots, 1) == 65535,
            _ => level16(&d.slots, 511) == 32768,
        };
        if full {
            done.insert(d.universe, ());
        }
    }
    assert!(seen >= 10, "the fade went out frame by frame: {seen} packets");
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();

    // Restarted: the same CID (receivers see the same source).
    let cancel = CancellationToken::new();
    let (_h, task) = lighting::spawn(&outputs, &fixtures, options(), Some(dir.path()), cancel.clone()).await.unwrap();
    let (d, _) = next_data(&mon).await;
    assert_eq!(d.cid.to_vec(), cid);
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn unchanged_universes_are_kept_alive_every_second_and_terminated_on_shutdown() {
    let mon = SacnMonitor::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    // Even with the Art-Net keep-alive at its 4 s maximum, sACN re-sends
    // within 1 s: E1.31 receivers drop a source after 2.5 s.
    let opts = LightingOptions { keepalive: Duration::from_secs(4), ..options() };
    let (handle, task) =
        lighting::spawn(&[sacn("wash", &mon, 7, 100)], &[dimmer16("a", "wash", 1)], opts, None, cancel.clone()).await.unwrap();
    handle.set_look(look(&[("a", 0.25)]), Duration::ZERO).await.unwrap();
    let (mut d, mut at) = next_data(&mon).await;
    while level16(&d.slots, 1) != 16384 {
        (d, at) = next_data(&mon).await;
    }
    for _ in 0..3 {
        let (k, t) = next_data(&mon).await;
        let gap = t - at;
        assert!(gap <= Duration::from_millis(1000) + Duration::from_millis(50), "keep-alive gap {gap:?}");
        assert!(
            gap >= Duration::from_millis(1000) - PERIOD - Duration::from_millis(30),
            "unchanged data is not re-sent every frame: {gap:?}"
        );
        assert_eq!(k.sequence, d.sequence.wrapping_add(1));
        assert_eq!(level16(&k.slots, 1), 16384);
        (d, at) = (k, t);
    }

    // Shutdown: the final frame, then three packets with Stream_Terminated.
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
    let mut after = Vec::new();
    while let Ok(Ok((Sacn::Data(p), _))) = timeout(Duration::from_millis(300), mon.next()).await {
        after.push(p);
    }
    let terminated: Vec<&SacnData> = after.iter().filter(|p| p.terminated()).collect();
    assert_eq!(terminated.len(), 3, "E1.31 §6.7.1: three terminated packets: {after:?}");
    assert!(after.last().unwrap().terminated(), "nothing after the termination");
    assert!(terminated.iter().all(|p| level16(&p.slots, 1) == 16384), "they carry the final look");
    for w in after.windows(2) {
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
    }
}

#[tokio::test]
async fn universes_changing_together_are_synchronized_and_a_single_change_is_not() {
    let mon = SacnMonitor::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let opts = LightingOptions { sacn_sync: Some(7000), ..options() };
    let outputs = [sacn("u1", &mon, 1, 100), sacn("u2", &mon, 2, 100)];
    let (handle, task) =
        lighting::spawn(&outputs, &[dimmer16("a", "u1", 1), dimmer16("b", "u2", 1)], opts, None, cancel.clone()).await.unwrap();
    // Both universes change in one frame: data held (sync address 7000),
    // then one sync packet on 7000 releases it.
    handle.set_look(look(&[("a", 1.0), ("b", 1.0)]), Duration::ZERO).await.unwrap();
    let mut held = BTreeMap::new();
    loop {
        let p = next(&mon).await.0;
        match p {
            Sacn::Data(d) if level16(&d.slots, 1) == 65535 => {
                assert_eq!(d.sync_address, 7000, "universe {} waits for the sync", d.universe);
                held.insert(d.universe, ());
            }
            Sacn::Data(_) => {}
            Sacn::Sync { sync_address, .. } => {
                assert_eq!(sync_address, 7000);
                assert_eq!(held.len(), 2, "the sync follows both universes' data");
                break;
            }
        }
    }
    // One universe changes: acted upon at once, no sync packet.
    handle.set_look(look(&[("a", 0.0)]), Duration::ZERO).await.unwrap();
    loop {
        match next(&mon).await.0 {
            Sacn::Data(d) if d.universe == 1 && level16(&d.slots, 1) == 0 => {
                assert_eq!(d.sync_address, 0);
                break;
            }
            Sacn::Data(_) => {}
            Sacn::Sync { .. } => panic!("no sync for a one-universe change"),
        }
    }
    // Nothing else in the next frames is a sync either.
    let until = tokio::time::Instant::now() + PERIOD * 4;
    while let Ok(Ok((p, _))) = tokio::time::timeout_at(until, mon.next()).await {
        assert!(matches!(p, Sacn::Data(_)), "{p:?}");
    }
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn artnet_and_sacn_carry_one_look_in_the_same_frame() {
    // Told where to reply once the task has bound its Art-Net port (never to 6454 here).
    let unset = NodeOptions { reply_to: ReplyTo::Unset, ..NodeOptions::default() };
    let node = ArtNetMonitor::bind_with("127.0.0.1:0".parse().unwrap(), unset).await.unwrap();
    let mon = SacnMonitor::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let outputs = [ArtNetOutput::new("node1", node.local_addr().unwrap(), 0).into(), sacn("wash", &mon, 1, 100)];
    let fixtures = [dimmer16("key", "node1", 1), dimmer16("fill", "wash", 1)];
    let (handle, task) = lighting::spawn(&outputs, &fixtures, options(), None, cancel.clone()).await.unwrap();
    node.set_reply_to(ReplyTo::Port(handle.artnet_listen_addr().unwrap().port()));
    let mut frames = handle.subscribe_frames();
    let scene = look(&[("key", 0.6), ("fill", 0.6)]);
    let want = (0.6f64 * 65535.0).round() as u16;
    handle.set_look(scene, Duration::ZERO).await.unwrap();

    // In the daemon: both universes went out in one frame (one instant).
    let mut at = BTreeMap::new();
    while at.len() < 2 {
        let f = timeout(WAIT, frames.recv()).await.expect("frames").unwrap();
        if f.changed && level16(&f.data, 1) == want {
            at.insert(f.protocol == Protocol::Sacn, f.at);
        }
    }
    assert_eq!(at[&false], at[&true], "Art-Net and sACN in the same frame");

    // On the wire: both receivers got it within a fraction of a frame.
    let artnet = node.wait_for(WAIT, |d| level16(&d.data, 1) == want);
    let sacn = async {
        loop {
            let (d, t) = next_data(&mon).await;
            if level16(&d.slots, 1) == want {
                return t;
            }
        }
    };
    let (a, s) = tokio::join!(async { artnet.await.map(|_| std::time::Instant::now()) }, sacn);
    let a = a.expect("Art-Net frame with the look");
    let skew = if a > s { a - s } else { s - a };
    assert!(skew < PERIOD / 2, "arrivals {skew:?} apart: not the same frame");
    cancel.cancel();
    timeout(WAIT, task).await.unwrap().unwrap();
}

#[test]
fn config_patches_fixtures_to_sacn_with_output_and_keeps_artnet_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scenes")).unwrap();
    let profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles");
    let text = format!(
        r#"[studio]
id = "la-03"
profiles_dir = "{}"

[lighting]
sacn_sync_universe = 7000

[[artnet]]
name = "node1"
target = "127.0.0.1:6454"
universe = 0

[[artnet]]
name = "old"
target = "127.0.0.1:6455"
universe = 1
poll = false

[[sacn]]
name = "wash"
target = "127.0.0.1:5568"
universe = 1

[[sacn]]
name = "back"
target = "127.0.0.1:5569"
universe = 2
priority = 180

[[fixture]]
name = "key"
profile = "generic-dimmer-16bit"
artnet = "node1"
address = 1

[[fixture]]
name = "fill"
profile = "generic-dimmer-16bit"
output = "wash"
address = 1
"#,
        profiles.display()
    );
    let path = dir.path().join("studiod.toml");
    std::fs::write(&path, text).unwrap();
    let c = studiod::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.artnet[0].poll, c.artnet[1].poll), (true, false), "poll defaults to true");
    assert_eq!((c.sacn[0].priority, c.sacn[1].priority), (100, 180), "priority defaults to 100");
    assert_eq!(c.lighting.sacn_sync, Some(7000));
    assert_eq!((c.fixtures[0].artnet.as_str(), c.fixtures[1].artnet.as_str()), ("node1", "wash"));
    let names: Vec<(String, Protocol)> = c.outputs().iter().map(|o| (o.name().to_string(), o.protocol())).collect();
    assert_eq!(
        names,
        [("node1", Protocol::ArtNet), ("old", Protocol::ArtNet), ("wash", Protocol::Sacn), ("back", Protocol::Sacn)]
            .map(|(n, p)| (n.to_string(), p))
    );
    assert_eq!(c.lighting_options().source_name, "la-03");
    assert_eq!(c.lighting_options().artnet_bind, "0.0.0.0:6454".parse().unwrap(), "the Art-Net port on every interface by default");
}
