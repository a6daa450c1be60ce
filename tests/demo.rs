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
    demo.line_with("Type a scene name", T).await;

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
    demo.line_with("Type a scene name", T).await;
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

/// What a terminal shows: everything the demo printed, and how far a test
/// has read.
struct Screen {
    chunks: mpsc::UnboundedReceiver<String>,
    text: String,
    read: usize,
}

impl Screen {
    /// Wait (bounded) until `needle` appears after what was read; returns
    /// the rest of its line.
    async fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(at) = self.text[self.read..].find(needle) {
                let start = self.read + at + needle.len();
                if let Some(end) = self.text[start..].find('\n') {
                    self.read = start;
                    return self.text[start..start + end].trim().to_string();
                }
            }
            match tokio::time::timeout_at(deadline, self.chunks.recv()).await {
                Ok(Some(chunk)) => self.text.push_str(&chunk),
                _ => panic!("demo did not print {needle:?} within {limit:?}; terminal shows:\n{}", self.text),
            }
        }
    }
}

/// The README's first command, `scripts/demo.sh`, run exactly as a person
/// would: in a terminal (a pty that is the script's controlling terminal,
/// with its own session), typing a scene name, then Ctrl-C, which the
/// terminal turns into SIGINT for the whole foreground process group.
/// The demo must stop within 2 s, leave no process (the embedded broker's
/// port closes) and no folder in the temp directory.
#[tokio::test]
async fn readme_demo_command_in_a_terminal_applies_a_typed_scene_and_stops_on_ctrl_c() {
    use std::io::{Read, Write};
    let _turn = ONE_DEMO_AT_A_TIME.lock().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = std::fs::File::from(pty.slave);
    let mut child = Process::new("setsid")
        // New session; the pty (stdin) becomes its controlling terminal and
        // the script's process group the terminal's foreground group.
        .args(["--ctty", "scripts/demo.sh"])
        .current_dir(root)
        // A person's shell: none of the CARGO_*/RUSTUP_* variables cargo
        // sets for tests (they would make the script's `cargo run` rebuild).
        .env_clear()
        .envs(["PATH", "HOME", "USER", "LANG", "CARGO_HOME", "RUSTUP_HOME"].into_iter().filter_map(|k| Some((k, std::env::var_os(k)?))))
        .env("TERM", "xterm")
        .env("TMPDIR", tmp.path())
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .expect("start scripts/demo.sh");
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let (tx, chunks) = mpsc::unbounded_channel::<String>();
    // Ends when the last holder of the pty's slave side is gone (EIO).
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                break;
            }
        }
    });
    let mut screen = Screen { chunks, text: String::new(), read: 0 };
    // A first run builds the release binary (scripts/test.sh builds it beforehand).
    let broker = screen.wait_for("MQTT broker:", Duration::from_secs(900)).await;
    let url = broker.split_whitespace().next().unwrap_or_default().to_string();
    assert!(url.starts_with("mqtt://127.0.0.1:"), "loopback only: {broker}");
    let port = port_of(&url);
    // The cameras hold their presets from the start: a newcomer types at
    // once, while studiod is still bringing them online.
    screen.wait_for("presets:       1–5 stored in each camera", T).await;
    screen.wait_for("Ctrl-C to stop", T).await;
    master.write_all(b"flash-sale\r").unwrap();
    // What the monitors print: the scene applied, then its look in kelvin and colour.
    let typed = screen.read;
    screen.wait_for("scene   flash-sale applied from cli (ok)", T).await;
    // The look's line may come before the scene's or after it.
    screen.read = typed;
    // Fixtures print in name order: backdrop's colour, then the key light.
    let rest = screen.wait_for("backdrop colour #ff8800", T).await;
    assert!(rest.contains("key 100%, colour temp 5600 K"), "look line: …{rest}");

    let pressed = Instant::now();
    master.write_all(&[0x03]).unwrap(); // Ctrl-C
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(pressed.elapsed() < Duration::from_secs(2), "demo still running 2 s after Ctrl-C; terminal shows:\n{}", screen.text);
        if let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_millis(20), screen.chunks.recv()).await {
            screen.text.push_str(&chunk);
        }
    };
    assert!(status.success(), "demo exit status {status} after Ctrl-C; terminal shows:\n{}", screen.text);
    // A newcomer's screen shows no failure: not the safe scene at start
    // (its camera moves once cancelled by the demo's own set-up), not theirs.
    assert!(!screen.text.contains("with failures") && !screen.text.contains("failed "), "terminal shows a failure:\n{}", screen.text);
    // Nothing of the demo is left: no process in its group, the embedded
    // broker's port closed, no folder in the temp directory.
    assert!(nix::sys::signal::killpg(pgid, None).is_err(), "a process of the demo's group is still running");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the embedded broker still listens on {port}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the demo left {left:?} in the temp directory");
}
