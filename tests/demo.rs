//! Issue acceptance for `studiod demo`: the real binary as a child process,
//! its embedded MQTT broker, a real MQTT client, the Art-Net output seen on
//! the wire (a copy the demo forwards to a socket this test owns), and a
//! clean exit on SIGINT.

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mosquitto::{Broker, TestClient};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const CMD: &str = "studiod/la-03/cmd";
const REPLY: &str = "studiod/la-03/reply";
const STATUS: &str = "studiod/la-03/status";
const T: Duration = Duration::from_secs(15);

/// The demo prefers fixed ports (1883, 8080) when free; two demos starting
/// at once could both see one free. The tests here take turns.
static ONE_DEMO_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The demo as a child; killed on drop if a test fails midway.
struct Demo {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Demo {
    fn start(extra: &[&str]) -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Process::new(env!("CARGO_BIN_EXE_studiod"))
            .arg("demo")
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start studiod demo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        // Ends at the child's EOF.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo { child, lines, seen: Vec::new(), _dir: dir }
    }

    /// The next printed line containing `needle`, within `limit`.
    async fn line_with(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(l)) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Ok(None) => panic!("demo exited before printing {needle:?}; it printed:\n{}", self.seen.join("\n")),
                Err(_) => panic!("demo did not print {needle:?} within {limit:?}; it printed:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Process::new("kill").args([sig, &self.child.id().to_string()]).status().expect("run kill").success();
        assert!(ok, "kill {sig} failed");
    }

    /// Wait (bounded) for the exit; None if still running after `limit`.
    async fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            // Drain stdout meanwhile: a full pipe would block the child's exit.
            let _ = tokio::time::timeout(Duration::from_millis(20), self.lines.recv()).await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DMX slots of an ArtDmx packet, decoded by hand (independently of
/// studiod's encoder and of its own monitor).
fn artdmx_slots(p: &[u8]) -> Option<&[u8]> {
    if p.len() < 18 || &p[..8] != b"Art-Net\0" || u16::from_le_bytes([p[8], p[9]]) != 0x5000 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([p[16], p[17]]));
    p.get(18..18 + len)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("no port in {url:?}"))
}

#[tokio::test]
async fn demo_applies_a_scene_over_its_embedded_broker_and_exits_on_sigint() {
    let _turn = ONE_DEMO_AT_A_TIME.lock().await;
    let wire = tokio::net::UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let copy = wire.local_addr().unwrap().to_string();
    let mut demo = Demo::start(&["--artnet-copy", &copy]);

    let broker_line = demo.line_with("MQTT broker:", T).await;
    let url = broker_line.split_whitespace().find(|w| w.starts_with("mqtt://")).expect("broker URL printed").to_string();
    assert!(url.starts_with("mqtt://127.0.0.1:"), "loopback only: {url}");
    let port = port_of(&url);
    let example = demo.line_with("apply a scene:", T).await;
    assert!(example.contains(&format!("-p {port}")) && example.contains("-t studiod/la-03/cmd"), "{example}");
    // Scenes recalled while the demo is still storing its presets would be cancelled.
    demo.line_with("cameras ready", T).await;

    let mut c = TestClient::connect(port, &[REPLY, STATUS]).await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    c.publish(CMD, json!({"id":"demo-test-1","action":"apply_scene","scene":"flash-sale"}).to_string()).await;
    let r: Value = c.wait_json(REPLY, T, |v| v["id"] == "demo-test-1").await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["scene"], "flash-sale", "{r}");
    for d in ["front", "side", "overhead", "key", "hair", "backdrop", "console"] {
        assert_eq!(r["devices"][d]["ok"], true, "{d}: {r}");
    }

    // flash-sale on the wire: hair (generic dimmer, ch 13) at 0.8 → 204,
    // backdrop (generic RGB, ch 16–18) #ff8800. The house scene has neither.
    let mut buf = [0u8; 1024];
    let seen = tokio::time::timeout(T, async {
        loop {
            let (n, _) = wire.recv_from(&mut buf).await.unwrap();
            if let Some(d) = artdmx_slots(&buf[..n]) {
                if d.len() >= 18 && d[12] == 204 && d[15..18] == [255, 136, 0] {
                    return d.to_vec();
                }
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "no Art-Net frame with the flash-sale look within {T:?}");

    // The example line the demo prints works as printed (MQTT v5 client).
    let printed = example.split_once("apply a scene:").unwrap().1.trim().replace("demo-1", "demo-test-2");
    let ok = Process::new("sh").arg("-c").arg(&printed).status().expect("run the printed mosquitto_pub line").success();
    assert!(ok, "printed example failed: {printed}");
    let r2 = c.wait_json(REPLY, T, |v| v["id"] == "demo-test-2").await;
    assert_eq!(r2["ok"], true, "{r2}");

    demo.signal("-INT");
    let status = demo.exit_within(Duration::from_secs(5)).await.expect("demo did not exit within 5 s of SIGINT");
    assert!(status.success(), "demo exit status {status}");
}

#[tokio::test]
async fn demo_uses_an_external_broker_given_with_mqtt() {
    let _turn = ONE_DEMO_AT_A_TIME.lock().await;
    let broker = Broker::start();
    let mut c = TestClient::connect(broker.port, &[REPLY, STATUS]).await;
    let mut demo = Demo::start(&["--mqtt", &broker.url()]);
    let line = demo.line_with("MQTT broker:", T).await;
    assert!(line.contains(&broker.url()) && !line.contains("embedded"), "{line}");
    demo.line_with("cameras ready", T).await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    c.publish(CMD, json!({"id":"demo-ext-1","action":"apply_scene","scene":"intro"}).to_string()).await;
    let r = c.wait_json(REPLY, T, |v| v["id"] == "demo-ext-1").await;
    assert_eq!(r["ok"], true, "{r}");
    demo.signal("-INT");
    let status = demo.exit_within(Duration::from_secs(5)).await.expect("demo did not exit within 5 s of SIGINT");
    assert!(status.success(), "demo exit status {status}");
    // A clean exit says goodbye on the external broker too.
    c.wait_json(STATUS, T, |v| v["online"] == false).await;
}
