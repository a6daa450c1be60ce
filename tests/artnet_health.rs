//! Art-Net node health, against the simulator's independent node
//! (`studiod_sim::monitor::ArtNetMonitor`: answers unicast ArtPoll with its
//! own ArtPollReply encoder, can go silent and come back) on loopback.
//!
//! - In the lighting task, on tokio's paused clock: online with the node's
//!   names and firmware, polled every ≤ 3 s, offline ~10 s after the last
//!   reply with a plain reason, online again by itself.
//! - In the whole daemon (real time, ~10 s): a scene while the node is
//!   offline fails for its fixtures only; every other device gets its part;
//!   the state and the replies say so in plain words.

mod support;

use std::time::Duration;

use studiod::config::model::{ArtNetOutput, Attribute, Fixture};
use studiod::lighting::clock::ClockSource;
use studiod::lighting::{self, HealthState, LightingOptions, OutputHealth};
use studiod_sim::monitor::{ArtNetMonitor, NODE_FIRMWARE, NODE_LONG_NAME, NODE_SHORT_NAME};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

async fn wait_state(rx: &mut watch::Receiver<Vec<OutputHealth>>, limit: Duration, what: &str, f: impl Fn(&HealthState) -> bool) -> OutputHealth {
    support::wait_watch(rx, limit, what, |h| f(&h[0].state)).await[0].clone()
}

#[tokio::test(start_paused = true)]
async fn a_node_is_online_while_it_answers_offline_after_ten_silent_seconds_and_back_by_itself() {
    let node = ArtNetMonitor::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let opts = LightingOptions { restore_last_look: false, clock: ClockSource::Tokio, ..LightingOptions::default() };
    let outputs = [ArtNetOutput::new("node1", node.local_addr().unwrap(), 0).into()];
    let fixtures = [Fixture::with_channels("key", "node1", 1, &[(Attribute::Intensity, 0, None)], &[])];
    let (handle, task) = lighting::spawn(&outputs, &fixtures, opts, None, cancel.clone()).await.unwrap();
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
    let node = ArtNetMonitor::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let cancel = CancellationToken::new();
    let opts = LightingOptions { restore_last_look: false, clock: ClockSource::Tokio, ..LightingOptions::default() };
    let outputs = [ArtNetOutput { poll: false, ..ArtNetOutput::new("old", node.local_addr().unwrap(), 0) }.into()];
    let (handle, task) = lighting::spawn(&outputs, &[], opts, None, cancel.clone()).await.unwrap();
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

/// The flash-sale scene's devices in the example booth.
const CAMERAS: [&str; 3] = ["front", "overhead", "side"];
const FIXTURES: [&str; 6] = ["back", "backdrop", "fill", "hair", "key", "product"];

#[tokio::test]
async fn while_the_node_is_offline_its_fixtures_fail_and_every_other_device_gets_its_part() {
    let b = support::Booth::start().await;
    let engine = &b.daemon().engine;
    let mut state = engine.state();
    let mut events = engine.events();
    support::wait_watch(&mut state, Duration::from_secs(5), "node1 verified online", |s| s.devices["node1"].verified && s.devices["node1"].online)
        .await;
    let json = studiod::adapters::json::state("la-03", &state.borrow());
    assert_eq!(json["devices"]["node1"]["status"], "online");
    assert_eq!(json["devices"]["key"]["status"], "online", "a fixture follows its node");
    assert_eq!(json["devices"]["console"]["status"], "unverified", "OSC never answers");
    assert_eq!(json["devices"]["console"]["online"], serde_json::Value::Null);

    b.artnet.set_answering(false);
    let s = support::wait_watch(&mut state, Duration::from_secs(15), "node1 offline", |s| !s.devices["node1"].online).await;
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
    support::wait_watch(&mut state, Duration::from_secs(5), "node1 back online", |s| s.devices["node1"].online && s.devices["key"].online).await;
    let out = b.apply("house", Some(0)).await;
    assert!(out.ok, "{out:?}");
}
