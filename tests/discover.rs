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

    std::fs::create_dir(dir.path().join("scenes")).unwrap();
    let config = format!("[studio]\nid = \"discovered\"\nprofiles_dir = \"{pdir}\"\n\n{serial}\n{ip}");
    let path = dir.path().join("studiod.toml");
    std::fs::write(&path, &config).unwrap();
    let (code, out, err) = studiod(&["check", "--config", path.to_str().unwrap()]).await;
    assert_eq!(code, 0, "check refused:\n{out}{err}\n---\n{config}");
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
