//! Art-Net target port closed (issue 7): nobody listens on one output's
//! target port, so the kernel answers its datagrams with ICMP port
//! unreachable (loopback). The daemon keeps running, the other output (the
//! booth's node to a live receiver) keeps getting frames, camera commands
//! are unaffected, and the dead node shows as offline: it never answers
//! ArtPoll. (Art-Net leaves from one unconnected socket on the Art-Net port,
//! which the kernel tells of no ICMP error, so the sends are not counted as
//! failed; they were while each target had a connected socket of its own.)

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use studiod::command::{Command, LightValue};
use support::{dmx16, dmx8, Booth};

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_target_port_stalls_nothing_and_its_node_shows_offline() {
    // A port that was just free and is now closed: datagrams to it bounce.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let extra = format!(
        "\n[[artnet]]\nname = \"dead-node\"\ntarget = \"{closed}\"\nuniverse = 1\n\n\
         [[fixture]]\nname = \"dead-dimmer\"\nprofile = \"generic-dimmer\"\nartnet = \"dead-node\"\naddress = 1\n"
    );
    let b = Booth::start_with(None, &extra).await;
    let lighting = b.daemon().devices.lighting.clone().expect("lighting running");
    let start = lighting.stats().await.unwrap();

    // Drive both outputs for a while: the dead node's dimmer up and down
    // (each change is a frame to the closed port, besides its keep-alives),
    // scenes on the live node, and preset recalls on the cameras.
    for round in 0..20u32 {
        let level = f64::from(round % 2);
        let set = Command::SetLight {
            fixture: "dead-dimmer".into(),
            values: BTreeMap::from([("intensity".to_string(), LightValue::Number(level))]),
            fade: None,
        };
        let o = b.exec(set).await;
        // The engine hands the look to the lighting task; a send failure is
        // not the command's failure (UDP gives no per-datagram verdict).
        assert!(o.ok, "{o:?}");
        let scene = if round % 2 == 0 { "flash-sale" } else { "house" };
        let o = b.apply(scene, Some(0)).await;
        assert!(o.ok, "cameras and the live node unaffected by the dead node: {o:?}");
        let key = if round % 2 == 0 { dmx16(1.0) } else { dmx16(0.4) };
        b.frame_where(T, scene, |d| d[..2] == key).await;
    }

    // The live receiver never saw the dead node's universe, and kept getting
    // its own frames to the end (the hair light is an 8-bit dimmer at 13).
    let live = b.artnet.wait_for(T, |d| d.port_address == 0).await.expect("live node still fed");
    assert_eq!(live.data[12], dmx8(0.0), "house: hair light off");

    let stats = lighting.stats().await.unwrap();
    assert!(stats.send.packets_sent > start.send.packets_sent + 20, "the live node's frames went out: {stats:?}");

    // What shows the dead node: it never answers ArtPoll, so it goes offline
    // (ten seconds after start) with that reason; the live node stays online.
    let mut state = b.daemon().engine.state();
    // (The engine takes a node's health and its fixtures' one at a time.)
    let s = support::wait_watch(&mut state, Duration::from_secs(15), "dead-node and its dimmer offline", |s| {
        ["dead-node", "dead-dimmer"].iter().all(|n| s.devices.get(*n).is_some_and(|d| d.verified && !d.online))
    })
    .await;
    let reason = s.devices["dead-node"].error.clone().unwrap_or_default();
    assert!(reason.starts_with("never answered ArtPoll"), "{reason}");
    assert_eq!(s.devices["dead-dimmer"].error, Some(format!("light node `dead-node` offline: {reason}")));
    assert!(s.devices["node1"].verified && s.devices["node1"].online, "{:?}", s.devices["node1"]);

    // Cameras still answer a direct recall, and all are online.
    let o = b.exec(Command::RecallPreset { camera: "side".into(), preset: 2 }).await;
    assert!(o.ok, "{o:?}");
    for cam in b.daemon().devices.cameras.values() {
        assert!(cam.is_online());
    }
}
