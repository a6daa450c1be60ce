//! Issue #11 acceptance: a booth with two serial cameras (a virtual chain on
//! a pty) and two IP cameras (one VISCA-over-UDP with Sony's header, one raw
//! VISCA over TCP), all simulated on loopback, driven over MQTT by a private
//! Mosquitto. Every camera reaches its preset; each network fault ends in a
//! clean retry or the documented per-device error, never a hang, never a
//! stuck camera.

#[path = "support/mosquitto.rs"]
mod mosquitto;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use mosquitto::{Broker, TestClient};
use serde_json::{json, Value};
use studiod_sim::ip::{IpCamera, NetFaults};
use studiod_sim::{ChainOptions, Fault, VirtualChain};
use support::topics::{CMD, REPLY, STATE, STATUS};
use support::wait_watch;

const T: Duration = Duration::from_secs(15);
const CAMS: [&str; 4] = ["s1", "s2", "udp", "tcp"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Preset 3's position as stored: pan −30°, tilt 5° on the generic profile
/// (14.4 units/°), in VISCA units.
const P3: (i32, i32) = (-432, 72);

struct IpBooth {
    _dir: tempfile::TempDir,
    chain: VirtualChain,
    udp: IpCamera,
    tcp: IpCamera,
    daemon: Option<studiod::daemon::Running>,
}

impl IpBooth {
    async fn start(mqtt: &str) -> IpBooth {
        let dir = tempfile::tempdir().unwrap();
        let opts = ChainOptions { move_time_scale: 0.05, ..Default::default() };
        let chain = VirtualChain::spawn(&dir.path().join("ttyVISCA"), 2, opts.clone()).unwrap();
        let lo = "127.0.0.1:0".parse().unwrap();
        let udp = IpCamera::spawn_udp(lo, ChainOptions { seed: 11, ..opts.clone() }).await.unwrap();
        let tcp = IpCamera::spawn_tcp(lo, opts).await.unwrap();
        std::fs::create_dir(dir.path().join("scenes")).unwrap();
        let config = format!(
            r#"[studio]
id = "la-03"
profiles_dir = "{profiles}"

[mqtt]
url = "{mqtt}"

[[camera]]
name = "s1"
profile = "generic-visca"
port = "{port}"
address = 1

[[camera]]
name = "s2"
profile = "generic-visca"
port = "{port}"
address = 2

[[camera]]
name = "udp"
profile = "generic-visca"
url = "{udp}"

[[camera]]
name = "tcp"
profile = "generic-visca"
url = "{tcp}"
"#,
            profiles = repo().join("device-profiles").display(),
            port = chain.path().display(),
            udp = udp.url(),
            tcp = tcp.url(),
        );
        std::fs::write(dir.path().join("studiod.toml"), config).unwrap();
        let scene = |body: &str| CAMS.iter().map(|c| format!("[camera.{c}]\n{body}\n")).collect::<String>();
        std::fs::write(dir.path().join("scenes/aim.toml"), format!("label = \"Aim\"\n{}", scene("pan = -30.0\ntilt = 5.0"))).unwrap();
        std::fs::write(dir.path().join("scenes/home.toml"), format!("label = \"Home\"\n{}", scene("pan = 0.0\ntilt = 0.0"))).unwrap();
        std::fs::write(dir.path().join("scenes/p3.toml"), format!("label = \"Preset 3\"\n{}", scene("preset = 3"))).unwrap();
        let mut b = IpBooth { _dir: dir, chain, udp, tcp, daemon: None };
        let config = studiod::config::load(&b._dir.path().join("studiod.toml")).unwrap_or_else(|e| panic!("{e}"));
        let running = studiod::daemon::start(config).await.unwrap();
        for cam in running.devices.cameras.values() {
            wait_watch(&mut cam.health(), T, "camera online", |h| h.online).await;
        }
        b.daemon = Some(running);
        b
    }

    /// (pan, tilt) of each camera, in CAMS order.
    fn positions(&self) -> Vec<(i32, i32)> {
        let s = [self.chain.camera_state(1), self.chain.camera_state(2), self.udp.camera_state(), self.tcp.camera_state()];
        s.iter().map(|s| (s.pan, s.tilt)).collect()
    }

    async fn health_online(&self, cam: &str, online: bool) {
        let h = &self.daemon.as_ref().unwrap().devices.cameras[cam];
        wait_watch(&mut h.health(), T, "camera health", |h| h.online == online).await;
    }

    async fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
    }
}

async fn client(broker: &Broker) -> TestClient {
    TestClient::connect(broker.port, &[REPLY, STATUS, STATE]).await
}

async fn apply(c: &mut TestClient, id: &str, scene: &str) -> Value {
    c.publish(CMD, json!({"id": id, "action": "apply_scene", "scene": scene}).to_string()).await;
    c.wait_json(REPLY, T, |v| v["id"] == id).await
}

fn assert_all_ok(r: &Value) {
    assert_eq!(r["ok"], true, "{r}");
    for cam in CAMS {
        assert_eq!(r["devices"][cam]["ok"], true, "{cam}: {r}");
    }
}

/// Stores preset 3 on every camera at (−30°, 5°) through the daemon, then
/// moves them home: the starting point of the preset tests.
async fn store_presets(b: &IpBooth, c: &mut TestClient) {
    assert_all_ok(&apply(c, "aim", "aim").await);
    assert!(b.positions().iter().all(|p| *p == P3), "{:?}", b.positions());
    for cam in CAMS {
        let out = b
            .daemon
            .as_ref()
            .unwrap()
            .engine
            .execute(studiod::engine::Request::new(
                None,
                studiod::command::Origin::Cli,
                studiod::command::Command::StorePreset { camera: cam.into(), preset: 3 },
            ))
            .await;
        assert!(out.ok, "store on {cam}: {out:?}");
    }
    assert_all_ok(&apply(c, "home", "home").await);
    assert!(b.positions().iter().all(|p| *p == (0, 0)), "{:?}", b.positions());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_cameras_two_serial_two_ip_reach_their_presets_over_mqtt() {
    let broker = Broker::start();
    let b = IpBooth::start(&broker.url()).await;
    let mut c = client(&broker).await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    store_presets(&b, &mut c).await;

    let r = apply(&mut c, "go-p3", "p3").await;
    assert_all_ok(&r);
    assert_eq!(b.positions(), vec![P3; 4], "every camera at preset 3");
    let state = c.wait_json(STATE, T, |v| v["scene"] == "p3").await;
    for cam in CAMS {
        assert_eq!(state["devices"][cam]["online"], true, "{cam}: {state}");
        // Read at connect, shown on /tech: vendor, model, ROM version.
        assert_eq!(state["devices"][cam]["identity"], "vendor 0x0001, model 0x0402, ROM version 0x0100", "{cam}: {state}");
    }
    // The IP cameras saw real VISCA: the UDP one a RESET and numbered
    // datagrams, the TCP one the memory recall bytes.
    assert!(b.udp.stats().resets >= 1);
    assert!(b.tcp.packets().iter().any(|p| p == &[0x81, 0x01, 0x04, 0x3F, 0x02, 0x02, 0xFF]), "recall memory 2 (= preset 3)");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_end_in_a_clean_retry_or_a_per_device_error() {
    let broker = Broker::start();
    let b = IpBooth::start(&broker.url()).await;
    let mut c = client(&broker).await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    store_presets(&b, &mut c).await;

    // 1. Lossy, duplicating, reordering UDP: retransmission hides it.
    b.udp.set_net_faults(NetFaults { drop: 0.2, duplicate: 0.2, reorder: 0.2, ..Default::default() });
    for round in 0..4 {
        let scene = if round % 2 == 0 { "p3" } else { "home" };
        let r = apply(&mut c, &format!("lossy-{round}"), scene).await;
        assert_all_ok(&r);
        let want = if scene == "p3" { P3 } else { (0, 0) };
        assert_eq!(b.udp.camera_state().pan, want.0, "round {round}");
    }
    let s = b.udp.stats();
    assert!(s.dropped_in + s.dropped_out > 0 && s.duplicated > 0 && s.reordered > 0, "faults happened: {s:?}");
    b.udp.set_net_faults(NetFaults::default());

    // 2. Replies numbered with a stale sequence number: RESET, resend, done.
    let resets = b.udp.stats().resets;
    b.udp.set_net_faults(NetFaults { stale_replies: 2, ..Default::default() });
    assert_all_ok(&apply(&mut c, "stale-1", "p3").await);
    assert!(b.udp.stats().resets > resets, "studiod reset the numbering");
    assert_eq!(b.udp.camera_state().pan, P3.0);
    assert_all_ok(&apply(&mut c, "stale-2", "home").await);

    // 3. TCP connection reset in the middle of a command: that camera's
    //    part fails with the connection's error, the others succeed; the
    //    camera reconnects and the next scene reaches it.
    let conns = b.tcp.stats().connections;
    b.tcp.set_net_faults(NetFaults { reset_next_command: true, ..Default::default() });
    let r = apply(&mut c, "rst-1", "p3").await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["code"], "device_failed");
    let err = r["devices"]["tcp"]["error"].as_str().unwrap();
    assert!(err.contains("connection visca-tcp://") && (err.contains("read failed") || err.contains("closed")), "{err}");
    for cam in ["s1", "s2", "udp"] {
        assert_eq!(r["devices"][cam]["ok"], true, "{cam}: {r}");
    }
    b.health_online("tcp", true).await;
    assert!(b.tcp.stats().connections > conns, "reconnected");
    assert_all_ok(&apply(&mut c, "rst-2", "home").await);
    assert_all_ok(&apply(&mut c, "rst-3", "p3").await);
    assert_eq!(b.tcp.camera_state().pan, P3.0);

    // 4. A silent IP camera: its part fails as a link failure (no ACK),
    //    the others go on; it comes back when it answers again.
    b.udp.set_fault(Fault::Silent);
    let r = apply(&mut c, "silent-1", "home").await;
    let err = r["devices"]["udp"]["error"].as_str().unwrap_or_default();
    assert!(err.contains("no ACK") || err.contains("offline"), "{r}");
    for cam in ["s1", "s2", "tcp"] {
        assert_eq!(r["devices"][cam]["ok"], true, "{cam}: {r}");
    }
    b.health_online("udp", false).await;
    b.udp.set_fault(Fault::None);
    b.health_online("udp", true).await;
    assert_all_ok(&apply(&mut c, "silent-2", "home").await);

    // 5. A refusal (VISCA error reply) is a device refusal, not retried.
    b.tcp.set_fault(Fault::ErrorReply(0x41));
    let before = b.tcp.packets().iter().filter(|p| p.get(1) == Some(&0x01)).count();
    let r = apply(&mut c, "refused-1", "p3").await;
    let err = r["devices"]["tcp"]["error"].as_str().unwrap_or_default();
    assert!(err.contains("refused"), "{r}");
    let sent = b.tcp.packets().iter().filter(|p| p.get(1) == Some(&0x01)).count() - before;
    assert_eq!(sent, 1, "a refusal is never retried");
    b.tcp.set_fault(Fault::None);
    assert_all_ok(&apply(&mut c, "refused-2", "p3").await);
    assert_eq!(b.positions(), vec![P3; 4], "no camera stuck");
    b.stop().await;
}
