//! Art-Net node health, against the simulator's independent node
//! (`studiod_sim::monitor::ArtNetMonitor`: answers unicast ArtPoll with its
//! own ArtPollReply encoder, to the poller's IP at the Art-Net port as a
//! real node does, or to the poll's source port as cheap ones do; can go
//! silent and come back) on loopback. Each lighting task binds its Art-Net
//! socket on any free loopback port (never 6454: tests run side by side) and
//! its node is told that port, as a real node "knows" 6454.
//!
//! - In the lighting task, on tokio's paused clock: online with the node's
//!   names and firmware, polled every ≤ 3 s, offline ~10 s after the last
//!   reply with a plain reason, online again by itself; replies matched to
//!   nodes by source address; the Art-Net port taken by another program.
//! - In the whole daemon (real time, ~10 s): a scene while the node is
//!   offline fails for its fixtures only; every other device gets its part;
//!   the state and the replies say so in plain words.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use studiod::config::model::{ArtNetOutput, Attribute, Fixture};
use studiod::lighting::clock::ClockSource;
use studiod::lighting::{self, HealthState, LightingHandle, LightingOptions, Output, OutputHealth};
use studiod_sim::monitor::{ArtNetMonitor, NodeOptions, ReplyTo, NODE_FIRMWARE, NODE_LONG_NAME, NODE_SHORT_NAME};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

async fn wait_state(
    rx: &mut watch::Receiver<Vec<OutputHealth>>,
    limit: Duration,
    what: &str,
    f: impl Fn(&HealthState) -> bool,
) -> OutputHealth {
    wait_output(rx, 0, limit, what, f).await
}

async fn wait_output(
    rx: &mut watch::Receiver<Vec<OutputHealth>>,
    i: usize,
    limit: Duration,
    what: &str,
    f: impl Fn(&HealthState) -> bool,
) -> OutputHealth {
    support::wait_watch(rx, limit, what, |h| f(&h[i].state)).await[i].clone()
}

fn lo() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A simulated node on any free loopback port that does not reply until told where.
async fn node(options: NodeOptions) -> ArtNetMonitor {
    ArtNetMonitor::bind_with(lo(), NodeOptions { reply_to: ReplyTo::Unset, ..options }).await.unwrap()
}

/// The lighting task on the paused clock, its Art-Net socket on `bind`.
async fn spawn(outputs: &[Output], fixtures: &[Fixture], bind: SocketAddr, cancel: &CancellationToken) -> (LightingHandle, JoinHandle<()>) {
    let opts = LightingOptions { restore_last_look: false, clock: ClockSource::Tokio, artnet_bind: bind, ..LightingOptions::default() };
    lighting::spawn(outputs, fixtures, opts, None, cancel.clone()).await.unwrap()
}

/// The port the lighting task listens on for ArtPollReplies: "6454" here.
fn art_net_port(handle: &LightingHandle) -> u16 {
    handle.artnet_listen_addr().expect("the Art-Net socket is bound").port()
}

fn dimmer(name: &str, output: &str) -> Fixture {
    Fixture::with_channels(name, output, 1, &[(Attribute::Intensity, 0, None)], &[])
}

#[tokio::test(start_paused = true)]
async fn a_node_is_online_while_it_answers_offline_after_ten_silent_seconds_and_back_by_itself() {
    let node = node(NodeOptions::default()).await;
    let cancel = CancellationToken::new();
    let outputs = [ArtNetOutput::new("node1", node.local_addr().unwrap(), 0).into()];
    let (handle, task) = spawn(&outputs, &[dimmer("key", "node1")], lo(), &cancel).await;
    // Told before the task first runs (this runtime has one thread): the first poll is answered.
    node.set_reply_to(ReplyTo::Port(art_net_port(&handle)));
    let mut health = handle.health();
    assert_eq!(health.borrow()[0].state, HealthState::Unverified, "not verified before the first reply");

    let h = wait_state(&mut health, Duration::from_secs(3), "online", |s| *s == HealthState::Online).await;
    let info = h.node.expect("the reply's identity");
    assert_eq!((info.short_name.as_str(), info.long_name.as_str(), info.firmware), (NODE_SHORT_NAME, NODE_LONG_NAME, NODE_FIRMWARE));
    assert_eq!(handle.fixture_offline("key"), None);

    // Polled at least every 3 s: 9 s of frames (the events we wait on) see ≥ 3 more polls.
    let polls = node.polls();
    let mut frames = handle.subscribe_frames();
    let end = Instant::now() + Duration::from_secs(9);
    while Instant::now() < end {
        tokio::time::timeout(Duration::from_secs(2), frames.recv()).await.expect("keep-alive").unwrap();
    }
    assert!(node.polls() >= polls + 3, "{} polls in 9 s", node.polls() - polls);
    drop(frames);

    // Silent: offline within ~10 s of the last reply (≤ one poll interval before now).
    node.set_answering(false);
    let silent = Instant::now();
    let h = wait_state(&mut health, Duration::from_secs(15), "offline", |s| matches!(s, HealthState::Offline(_))).await;
    let after = silent.elapsed();
    assert!(after >= Duration::from_millis(7400) && after <= Duration::from_millis(10_100), "offline after {after:?}");
    let HealthState::Offline(reason) = &h.state else { unreachable!() };
    assert!(reason.starts_with("no ArtPollReply for 10 s"), "{reason}");
    assert!(h.since > silent && h.since <= Instant::now(), "since = when it went offline");
    let why = handle.fixture_offline("key").expect("the fixture's node is offline");
    assert_eq!(why, format!("light node `node1` offline: {reason}"));

    // Back by itself at the next poll, no restart.
    node.set_answering(true);
    let back = Instant::now();
    wait_state(&mut health, Duration::from_secs(5), "online again", |s| *s == HealthState::Online).await;
    assert!(back.elapsed() <= Duration::from_secs(3), "online {:?} after answering again", back.elapsed());
    assert_eq!(handle.fixture_offline("key"), None);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_node_without_poll_is_unverified_and_never_polled() {
    let node = node(NodeOptions::default()).await;
    let cancel = CancellationToken::new();
    let outputs = [ArtNetOutput { poll: false, ..ArtNetOutput::new("old", node.local_addr().unwrap(), 0) }.into()];
    let (handle, task) = spawn(&outputs, &[], lo(), &cancel).await;
    node.set_reply_to(ReplyTo::Port(art_net_port(&handle)));
    // 30 s of frames (keep-alives) in virtual time: still no ArtPoll, still unverified.
    let mut frames = handle.subscribe_frames();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        tokio::time::timeout(Duration::from_secs(2), frames.recv()).await.expect("keep-alive").unwrap();
    }
    assert_eq!(node.polls(), 0);
    assert_eq!(handle.health().borrow()[0].state, HealthState::Unverified);
    cancel.cancel();
    task.await.unwrap();
}

/// A real node: sent to one port, it replies from its own Art-Net port to
/// the poller's IP at the Art-Net port. Matched to its target by IP.
#[tokio::test(start_paused = true)]
async fn a_node_that_replies_to_the_art_net_port_from_its_own_port_is_online() {
    let node = node(NodeOptions { reply_from: Some(lo()), ..NodeOptions::default() }).await;
    let target = node.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let (handle, task) = spawn(&[ArtNetOutput::new("node1", target, 0).into()], &[dimmer("key", "node1")], lo(), &cancel).await;
    let listen = handle.artnet_listen_addr().unwrap();
    node.set_reply_to(ReplyTo::Port(listen.port()));
    assert_ne!(node.reply_addr().port(), target.port(), "replies come from another port than the one polled");
    assert_ne!(node.reply_addr().port(), listen.port());

    let h = wait_state(&mut handle.health(), Duration::from_secs(3), "online", |s| *s == HealthState::Online).await;
    assert_eq!(h.node.expect("identity").short_name, NODE_SHORT_NAME);
    // ArtDmx leaves from the Art-Net socket too, as the spec says controllers send.
    let dmx = node.wait_for(Duration::from_secs(2), |_| true).await.expect("ArtDmx");
    assert_eq!(dmx.from, listen);
    cancel.cancel();
    task.await.unwrap();
}

/// Many cheap nodes answer the poll's source port: that is the Art-Net
/// socket too, so they are heard as well.
#[tokio::test(start_paused = true)]
async fn a_node_that_replies_to_the_polls_source_port_is_online_too() {
    let node = node(NodeOptions::default()).await;
    node.set_reply_to(ReplyTo::Source);
    let cancel = CancellationToken::new();
    let (handle, task) = spawn(&[ArtNetOutput::new("node1", node.local_addr().unwrap(), 0).into()], &[], lo(), &cancel).await;
    wait_state(&mut handle.health(), Duration::from_secs(3), "online", |s| *s == HealthState::Online).await;
    cancel.cancel();
    task.await.unwrap();
}

/// Two targets on one IP: a reply from that IP at neither's address could
/// be either's, so it verifies neither (a dead node must not read online).
#[tokio::test(start_paused = true)]
async fn a_reply_from_an_ip_two_targets_share_at_neither_address_verifies_neither() {
    let elsewhere = node(NodeOptions { reply_from: Some(lo()), ..NodeOptions::default() }).await;
    let exact = node(NodeOptions::default()).await;
    let cancel = CancellationToken::new();
    let outputs =
        [ArtNetOutput::new("a", elsewhere.local_addr().unwrap(), 0).into(), ArtNetOutput::new("b", exact.local_addr().unwrap(), 1).into()];
    let (handle, task) = spawn(&outputs, &[], lo(), &cancel).await;
    let port = art_net_port(&handle);
    elsewhere.set_reply_to(ReplyTo::Port(port));
    exact.set_reply_to(ReplyTo::Port(port));
    let mut health = handle.health();
    wait_output(&mut health, 1, Duration::from_secs(3), "b online (replies from its target address)", |s| *s == HealthState::Online).await;
    let h = wait_output(&mut health, 0, Duration::from_secs(12), "a offline", |s| matches!(s, HealthState::Offline(_))).await;
    assert!(elsewhere.polls() >= 4, "a was polled (and answered) all along: {}", elsewhere.polls());
    assert_eq!(h.state, HealthState::Offline("never answered ArtPoll (10 s)".into()));
    assert_eq!(health.borrow()[1].state, HealthState::Online);
    cancel.cancel();
    task.await.unwrap();
}

/// Another program holds the Art-Net port: nothing stops. DMX still goes
/// out (from a port per node), a node that answers the source port is still
/// verified, one that replies only to the Art-Net port goes offline saying
/// why, and once the port is free it is bound and that node comes back.
#[tokio::test(start_paused = true)]
async fn when_the_art_net_port_is_taken_dmx_still_flows_nodes_say_why_and_it_is_bound_once_free() {
    // "QLC+": holds the address studiod is told to bind.
    let other = tokio::net::UdpSocket::bind(lo()).await.unwrap();
    let taken = other.local_addr().unwrap();
    let real = node(NodeOptions::default()).await;
    let cheap = node(NodeOptions::default()).await;
    let cancel = CancellationToken::new();
    let outputs = [
        ArtNetOutput::new("real", real.local_addr().unwrap(), 0).into(),
        ArtNetOutput::new("cheap", cheap.local_addr().unwrap(), 1).into(),
    ];
    let (handle, task) = spawn(&outputs, &[dimmer("k1", "real"), dimmer("k2", "cheap")], taken, &cancel).await;
    assert_eq!(handle.artnet_listen_addr(), None);
    real.set_reply_to(ReplyTo::Port(taken.port()));
    cheap.set_reply_to(ReplyTo::Source);

    for n in [&real, &cheap] {
        n.wait_for(Duration::from_secs(2), |_| true).await.expect("DMX still goes out");
    }
    let mut health = handle.health();
    wait_output(&mut health, 1, Duration::from_secs(3), "cheap online", |s| *s == HealthState::Online).await;
    // The real node did answer, to the Art-Net port: the other program got it.
    let mut buf = [0u8; 512];
    let (_, from) = tokio::time::timeout(Duration::from_secs(3), other.recv_from(&mut buf)).await.expect("a reply").unwrap();
    assert_eq!(from, real.reply_addr());
    let h = wait_output(&mut health, 0, Duration::from_secs(12), "real offline", |s| matches!(s, HealthState::Offline(_))).await;
    let HealthState::Offline(reason) = h.state else { unreachable!() };
    assert!(reason.starts_with(&format!("never answered ArtPoll (10 s); cannot listen for ArtPollReply on {taken}: ")), "{reason}");
    assert!(reason.ends_with("is another Art-Net program (e.g. QLC+) running on this computer?"), "{reason}");
    assert_eq!(handle.fixture_offline("k1"), Some(format!("light node `real` offline: {reason}")));
    assert_eq!(handle.fixture_offline("k2"), None);

    // The other program quits: within a retry and a poll, the port is ours.
    drop(other);
    let h = wait_output(&mut health, 0, Duration::from_secs(10), "real back online", |s| *s == HealthState::Online).await;
    assert_eq!(h.node.expect("identity").short_name, NODE_SHORT_NAME);
    assert_eq!(handle.artnet_listen_addr(), Some(taken));
    real.wait_for(Duration::from_secs(2), |d| d.from == taken).await.expect("DMX from the Art-Net port now");
    assert_eq!(health.borrow()[1].state, HealthState::Online, "the cheap node, now answering the Art-Net port, still online");
    cancel.cancel();
    task.await.unwrap();
}

#[test]
fn artnet_bind_is_read_from_lighting_with_the_art_net_port_as_its_default() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["scenes", "device-profiles"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let load = |lighting: &str| {
        let path = dir.path().join("studiod.toml");
        let artnet = "[[artnet]]\nname = \"n\"\ntarget = \"127.0.0.1:6454\"\nuniverse = 0\n";
        std::fs::write(&path, format!("[studio]\nid = \"b\"\n\n{lighting}\n{artnet}")).unwrap();
        studiod::config::load(&path).unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(load("").lighting_options().artnet_bind, "0.0.0.0:6454".parse().unwrap());
    let c = load("[lighting]\nartnet_bind = \"127.0.0.2\"");
    assert_eq!(c.lighting_options().artnet_bind, "127.0.0.2:6454".parse().unwrap(), "an IP alone: the Art-Net port");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(load("[lighting]\nartnet_bind = \"127.0.0.1:0\"").warnings.is_empty(), "any free port: tests");
    // Another port: allowed, but real nodes reply to 6454, so check says so.
    let c = load("[lighting]\nartnet_bind = \"0.0.0.0:6455\"");
    assert_eq!(c.lighting.artnet_bind, "0.0.0.0:6455".parse().unwrap());
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("studiod.toml:5:15: warning: `artnet_bind` port 6455 is not the Art-Net port 6454"), "{w:?}");
}

/// The flash-sale scene's devices in the example booth.
const CAMERAS: [&str; 3] = ["front", "overhead", "side"];
const FIXTURES: [&str; 6] = ["back", "backdrop", "fill", "hair", "key", "product"];

#[tokio::test]
async fn while_the_node_is_offline_its_fixtures_fail_and_every_other_device_gets_its_part() {
    let b = support::Booth::start().await;
    let engine = &b.daemon().engine;
    let mut state = engine.state();
    let mut events = engine.events();
    support::wait_watch(&mut state, Duration::from_secs(5), "node1 verified online", |s| {
        s.devices["node1"].verified && s.devices["node1"].online
    })
    .await;
    let json = studiod::adapters::json::state("la-03", &state.borrow());
    assert_eq!(json["devices"]["node1"]["status"], "online");
    assert_eq!(json["devices"]["key"]["status"], "online", "a fixture follows its node");
    assert_eq!(json["devices"]["console"]["status"], "unverified", "OSC never answers");
    assert_eq!(json["devices"]["console"]["online"], serde_json::Value::Null);

    b.artnet.set_answering(false);
    // (The engine takes a node's health and its fixtures' one at a time.)
    let s = support::wait_watch(&mut state, Duration::from_secs(15), "node1 and key offline", |s| {
        !s.devices["node1"].online && !s.devices["key"].online
    })
    .await;
    let reason = s.devices["node1"].error.clone().unwrap();
    assert!(reason.starts_with("no ArtPollReply for"), "{reason}");
    assert_eq!(s.devices["key"].error.as_deref(), Some(format!("light node `node1` offline: {reason}").as_str()));
    let json = studiod::adapters::json::state("la-03", &s);
    assert_eq!((json["devices"]["node1"]["status"].as_str(), json["devices"]["node1"]["online"].as_bool()), (Some("offline"), Some(false)));
    let offline_event = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(studiod::engine::Event::DeviceOffline { device, reason }) = events.recv().await {
                if device == "node1" {
                    return reason;
                }
            }
        }
    })
    .await
    .expect("a device_offline event for node1");
    assert_eq!(offline_event, reason);

    let out = b.apply("flash-sale", Some(0)).await;
    assert!(!out.ok, "{out:?}");
    for f in FIXTURES {
        let r = &out.devices[f];
        assert!(!r.ok, "{f}: {r:?}");
        assert!(r.error.as_deref().unwrap().starts_with("light node `node1` offline: no ArtPollReply"), "{f}: {r:?}");
    }
    for d in CAMERAS.iter().chain(["console"].iter()) {
        assert!(out.devices[*d].ok, "{d} still gets its part: {:?}", out.devices[*d]);
    }
    // The look still went out (a node that comes back gets it).
    b.frame_where(Duration::from_secs(2), "flash-sale's backdrop #ff8800", |d| d.len() >= 18 && d[15..18] == [0xff, 0x88, 0x00]).await;

    b.artnet.set_answering(true);
    support::wait_watch(&mut state, Duration::from_secs(5), "node1 back online", |s| s.devices["node1"].online && s.devices["key"].online)
        .await;
    let out = b.apply("house", Some(0)).await;
    assert!(out.ok, "{out:?}");
}
