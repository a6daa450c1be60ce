//! `studiod discover` (CONTRACT §1) against the simulator: a serial chain of
//! two cameras and one VISCA-over-UDP camera. What it prints is pasted,
//! unchanged, under a `[studio]` table, and `studiod check` accepts it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use studiod_sim::ip::IpCamera;
use studiod_sim::{ChainOptions, VirtualChain};
use tokio::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn studiod(args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(30), Command::new(env!("CARGO_BIN_EXE_studiod")).args(args).output())
        .await
        .expect("discover finished")
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// What `discover` printed, pasted under a `[studio]` table (plus `extra`
/// studio keys) in `dir`: `studiod check` must accept it. Returns what check printed.
async fn check_accepts(dir: &Path, extra: &str, printed: &str) -> String {
    std::fs::create_dir_all(dir.join("scenes")).unwrap();
    let config = format!("[studio]\nid = \"discovered\"\n{extra}\n{printed}");
    let path = dir.join("studiod.toml");
    std::fs::write(&path, &config).unwrap();
    let (code, out, err) = studiod(&["check", "--config", path.to_str().unwrap()]).await;
    assert_eq!(code, 0, "check refused:\n{out}{err}\n---\n{config}");
    out
}

/// The shipped camera profiles plus one declaring the identity the UDP
/// camera reports (vendor 0x0001, model 0x0519).
fn profiles(dir: &Path) -> PathBuf {
    let p = dir.join("device-profiles");
    std::fs::create_dir_all(p.join("cameras")).unwrap();
    for e in std::fs::read_dir(repo().join("device-profiles/cameras")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), p.join("cameras").join(e.file_name())).unwrap();
    }
    let generic = std::fs::read_to_string(repo().join("device-profiles/cameras/generic-visca.toml")).unwrap();
    let with_id = generic.replace("[pan]", "[identity]\nvendor = 0x0001\nmodels = [0x0519]\n\n[pan]");
    std::fs::write(p.join("cameras/test-model.toml"), with_id).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_toml_passes_check_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = profiles(dir.path());
    let chain = VirtualChain::spawn(&dir.path().join("ttyVISCA"), 2, ChainOptions::default()).unwrap();
    let udp =
        IpCamera::spawn_udp("127.0.0.1:0".parse().unwrap(), ChainOptions { model_code: 0x0519, rom_version: 0x0203, ..Default::default() })
            .await
            .unwrap();
    let pdir = profiles.to_str().unwrap();

    let (code, serial, err) = studiod(&["discover", "--port", chain.path().to_str().unwrap(), "--profiles-dir", pdir]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(serial.matches("[[camera]]").count(), 2, "{serial}");
    assert!(serial.contains("address 1: vendor 0x0001, model 0x0402, ROM version 0x0100, 2 socket(s)"), "{serial}");
    assert!(serial.contains("# no profile declares vendor 0x0001 model 0x0402"), "{serial}");
    assert!(serial.contains("profile = \"generic-visca\""), "{serial}");
    assert!(serial.contains("address = 2\n"), "{serial}");

    let (code, ip, err) = studiod(&["discover", "--url", &udp.url(), "--profiles-dir", pdir]).await;
    assert_eq!(code, 0, "{err}");
    assert!(ip.contains("model 0x0519, ROM version 0x0203"), "{ip}");
    assert!(ip.contains("profile = \"test-model\""), "the profile whose identity fits: {ip}");
    assert!(!ip.contains("no profile declares"), "{ip}");
    // Pasted as printed; the UDP camera renamed so that names stay unique.
    let ip = ip.replace("name = \"cam1\"", "name = \"wide\"");

    let out = check_accepts(dir.path(), &format!("profiles_dir = \"{pdir}\"\n"), &format!("{serial}\n{ip}")).await;
    assert!(out.contains("ok (3 cameras"), "{out}");

    // --json for machines.
    let (code, json, _) = studiod(&["discover", "--url", &udp.url(), "--profiles-dir", pdir, "--json"]).await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["cameras"][0]["model"], 0x0519);
    assert_eq!(v["cameras"][0]["profile"], "test-model");
    assert_eq!(v["cameras"][0]["url"], udp.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_there_exits_non_zero() {
    // A UDP port nobody serves (bound, then closed): no camera answers.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("visca-udp://{}", sock.local_addr().unwrap());
    drop(sock);
    let (code, out, err) = studiod(&["discover", "--url", &url, "--profiles-dir", "/nonexistent"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no camera answered"), "{err}");
    let (code, _, err) = studiod(&["discover", "--url", "http://x", "--profiles-dir", "/nonexistent"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("visca-udp://"), "{err}");
}

/// `studiod discover --artnet` against the simulator's node. The node
/// replies where it is told: the Art-Net port ("6454"), which here is any
/// free loopback port the probe bound (tests never bind 6454), or the
/// poll's source port, which is the same socket unless that port is taken.
mod artnet {
    use std::net::SocketAddr;
    use std::time::Duration;

    use studiod::adapters::discover::discover_artnet;
    use studiod::lighting::artnet::Probe;
    use studiod_sim::monitor::{ArtNetMonitor, NodeOptions, ReplyTo, NODE_FIRMWARE, NODE_LONG_NAME, NODE_SHORT_NAME};

    use super::{check_accepts, studiod};

    fn lo() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    async fn node(reply_to: ReplyTo, port_address: u16) -> ArtNetMonitor {
        ArtNetMonitor::bind_with(lo(), NodeOptions { reply_to, reply_from: Some(lo()), port_address }).await.unwrap()
    }

    /// A real node's way: it replies from its own Art-Net port (not the one
    /// polled) to the poller's IP at the Art-Net port, which is where the probe listens.
    #[tokio::test]
    async fn a_node_replying_to_the_art_net_port_from_its_own_port_is_found() {
        let node = node(ReplyTo::Unset, 0x0123).await;
        let target = node.local_addr().unwrap();
        let probe = Probe::bind(lo(), target).unwrap();
        assert_eq!(probe.problem(), None);
        node.set_reply_to(ReplyTo::Port(probe.local_addr().unwrap().port()));
        let found = discover_artnet(&probe, target, Duration::from_secs(1)).await.unwrap();
        assert_eq!(found.replies.len(), 1, "{found:?}");
        let r = &found.replies[0];
        assert_eq!(r.from, node.reply_addr());
        assert_ne!(r.from, target, "from the node's own port, not the one polled");
        assert_eq!(
            (r.info.short_name.as_str(), r.info.long_name.as_str(), r.info.firmware),
            (NODE_SHORT_NAME, NODE_LONG_NAME, NODE_FIRMWARE)
        );
        assert_eq!(r.outputs, vec![0x0123]);
        assert_eq!(node.polls(), 1, "one ArtPoll");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn discovered_artnet_toml_passes_check_unchanged() {
        // The CLI's probe port is not known here; its node answers the poll's source port.
        let node = node(ReplyTo::Source, 0x0123).await;
        let target = node.local_addr().unwrap().to_string();
        let args = ["discover", "--artnet", &target, "--artnet-bind", "127.0.0.1:0", "--wait-ms", "500"];
        let (code, toml, err) = studiod(&args).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(err, "");
        assert!(toml.contains(&format!("[[artnet]]\nname = \"sim-node\"\ntarget = \"{target}\"\nuniverse = 291\n")), "{toml}");
        assert!(toml.contains("firmware 1.7, 1 DMX output port(s)"), "{toml}");
        assert_eq!(node.polls(), 1);

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("device-profiles")).unwrap();
        let out = check_accepts(dir.path(), "", &toml).await;
        assert!(out.contains("1 artnet outputs"), "{out}");

        let (code, json, _) = studiod(&[&args[..], &["--json"]].concat()).await;
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["nodes"][0]["short_name"], "sim-node");
        assert_eq!(v["nodes"][0]["output_port_addresses"], serde_json::json!([0x0123]));
        assert_eq!(v["nodes"][0]["artnet"][0]["universe"], 0x0123);
        assert_eq!(v["listen_problem"], serde_json::Value::Null);
    }

    /// Another program holds the asked port: discover still polls (from an
    /// ephemeral port), says so, finds a node that answers the source port,
    /// and cannot hear one that replies only to the taken port.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_the_art_net_port_taken_it_says_so_and_still_hears_source_port_nodes() {
        let other = tokio::net::UdpSocket::bind(lo()).await.unwrap();
        let taken = other.local_addr().unwrap().to_string();
        let cheap = node(ReplyTo::Source, 0).await;
        let target = cheap.local_addr().unwrap().to_string();
        let (code, toml, err) = studiod(&["discover", "--artnet", &target, "--artnet-bind", &taken, "--wait-ms", "500"]).await;
        assert_eq!(code, 0, "{err}");
        assert!(err.contains(&format!("cannot listen for ArtPollReply on {taken}: ")), "{err}");
        assert!(err.contains("only a node that answers the poll's source port can be heard"), "{err}");
        assert!(toml.contains("[[artnet]]"), "{toml}");

        let real = node(ReplyTo::Port(other.local_addr().unwrap().port()), 0).await;
        let target = real.local_addr().unwrap().to_string();
        let (code, _, err) = studiod(&["discover", "--artnet", &target, "--artnet-bind", &taken, "--wait-ms", "500"]).await;
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(&format!("no Art-Net node answered at {target}")), "{err}");
        // It did answer: to the taken port.
        let mut buf = [0u8; 512];
        let (_, from) = tokio::time::timeout(Duration::from_secs(5), other.recv_from(&mut buf)).await.expect("the node's reply").unwrap();
        assert_eq!(from, real.reply_addr());
    }

    /// A target that is not one node's unicast address is refused before
    /// anything is sent, with exit 2. Only loopback targets here: broadcast
    /// and multicast ones are refused by the same check, tested without a
    /// socket (`discover::tests`), so no test can ever send to them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_that_is_not_one_node_is_refused_before_sending() {
        let (code, out, err) = studiod(&["discover", "--artnet", "127.0.0.1:0", "--artnet-bind", "127.0.0.1:0"]).await;
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("never broadcasts"), "{err}");
        let (code, out, err) = studiod(&["discover", "--artnet", "[::1]:6454", "--artnet-bind", "127.0.0.1:0"]).await;
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("Art-Net is IPv4 only"), "{err}");
    }
}
