//! Graceful shutdown of `studiod run` (the real binary as a child): SIGTERM
//! → exit 0 within 2 s, the in-flight command answered, `{"online":false}`
//! retained on `status`, the last look persisted, and the lights left in
//! the last look or in the configured `[lighting] shutdown_scene`. Also: the
//! JSON logs carry the command id on every line of the command's handling.

#[path = "support/mosquitto.rs"]
mod mosquitto;
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mosquitto::{Broker, TestClient};
use serde_json::{json, Value};
use studiod_sim::monitor::{ArtNetMonitor, OscMonitor};
use support::dmx16;

use support::topics::{CMD, REPLY, STATE, STATUS};
const T: Duration = Duration::from_secs(10);
/// The budget from SIGTERM to exit.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(2);

/// The example booth on loopback peers, a private broker, and `studiod run`
/// as a child process (killed on drop).
struct Booth {
    dir: tempfile::TempDir,
    _chain: studiod_sim::VirtualChain,
    artnet: ArtNetMonitor,
    _osc: OscMonitor,
    broker: Broker,
    child: Option<Child>,
    /// stderr lines (the logs), collected by a thread until EOF.
    logs: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Booth {
    /// `edit` may change the generated config text before the daemon starts.
    async fn start(edit: impl FnOnce(String) -> String, args: &[&str]) -> Booth {
        let broker = Broker::start();
        let dir = tempfile::tempdir().unwrap();
        let opts = studiod_sim::ChainOptions { move_time_scale: 0.05, ..Default::default() };
        let studiod_sim::booth::SimBooth { chain, artnet, osc, config_path: config } =
            studiod_sim::booth::SimBooth::create(dir.path(), opts, Some(broker.url()), None).await.unwrap();
        // The daemon is another process, its Art-Net port (any free one) unknown
        // here; it polls from that port, so the source of the poll is it.
        artnet.set_reply_to(studiod_sim::monitor::ReplyTo::Source);
        std::fs::write(&config, edit(std::fs::read_to_string(&config).unwrap())).unwrap();
        let mut child = Process::new(env!("CARGO_BIN_EXE_studiod"))
            .args(["run", "--config"])
            .arg(&config)
            .args(args)
            .env("STUDIOD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect());
        Booth { dir, _chain: chain, artnet, _osc: osc, broker, child: Some(child), logs: Some(logs) }
    }

    async fn client(&self) -> TestClient {
        TestClient::connect(self.broker.port, &[REPLY, STATUS, STATE]).await
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state").join("last-look.json")
    }

    /// SIGTERM; the time until the process exited and its status.
    fn terminate(&mut self) -> (Duration, ExitStatus) {
        let child = self.child.as_mut().expect("running");
        let sent = Instant::now();
        assert!(Process::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        // Bounded well beyond the budget so a slow exit is measured, not hung on.
        let deadline = sent + SHUTDOWN_BUDGET * 5;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                let took = sent.elapsed();
                self.child = None;
                return (took, st);
            }
            assert!(Instant::now() < deadline, "studiod still running {:?} after SIGTERM", deadline - sent);
            // Exit poll interval (a child's exit has no async notification in std).
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The daemon's log lines (after it exited).
    fn logs(&mut self) -> Vec<String> {
        self.logs.take().expect("logs taken once").join().unwrap()
    }

    /// The last ArtDmx the daemon sent (after it exited: everything it sent
    /// is already queued on our socket, so a short idle gap ends the drain).
    async fn last_frame(&self) -> Vec<u8> {
        let mut last = None;
        for _ in 0..100_000 {
            match tokio::time::timeout(Duration::from_millis(100), self.artnet.next()).await {
                Ok(Ok(f)) => last = Some(f.data),
                _ => break,
            }
        }
        last.expect("no Art-Net frame at all")
    }
}

impl Drop for Booth {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// flash-sale on universe 0: key (16-bit dimmer at ch 1) at full, hair
/// (ch 13) at 0.8, backdrop (RGB at ch 16) #ff8800.
fn is_flash_sale(d: &[u8]) -> bool {
    d.len() >= 18 && d[..2] == dmx16(1.0) && d[12] == 204 && d[15..18] == [255, 136, 0]
}

/// Apply flash-sale over MQTT with id `id` and wait for its look on the wire.
async fn flash_sale_in_flight(b: &Booth, c: &mut TestClient, id: &str) {
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    c.publish(CMD, json!({"id": id, "action": "apply_scene", "scene": "flash-sale", "fade_ms": 0}).to_string()).await;
    b.artnet.wait_for(T, |f| f.port_address == 0 && is_flash_sale(&f.data)).await.expect("flash-sale on Art-Net");
}

/// The replies to `ids`, in any order; on timeout the panic shows the daemon's logs.
async fn replies_for(c: &mut TestClient, ids: &[&str], logs: &str) -> std::collections::HashMap<String, Value> {
    let mut got = std::collections::HashMap::new();
    let deadline = Instant::now() + T;
    while got.len() < ids.len() {
        let Some(v) = c.try_next_json(REPLY, deadline.saturating_duration_since(Instant::now())).await else {
            panic!("replies to {ids:?} not all within {T:?} (got {:?}); daemon logs:\n{logs}", got.keys().collect::<Vec<_>>());
        };
        if let Some(id) = v["id"].as_str().filter(|id| ids.contains(id)) {
            got.insert(id.to_string(), v);
        }
    }
    got
}

#[tokio::test]
async fn sigterm_exits_cleanly_within_2s_and_keeps_the_last_look() {
    let mut b = Booth::start(|c| c, &[]).await;
    let mut c = b.client().await;
    flash_sale_in_flight(&b, &mut c, "sd-1").await;
    // A slot start scheduled for later: acknowledged at once, and kept
    // across the shutdown for the next start (not answered as failed).
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    c.publish(CMD, json!({"id": "sd-later", "action": "apply_scene", "scene": "house", "at": later.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}).to_string()).await;
    c.wait_json(STATE, T, |v| v["pending"]["scene"] == "house").await;
    let (took, status) = b.terminate();
    assert!(status.success(), "exit status {status}; logs:\n{}", b.logs().join("\n"));
    assert!(took <= SHUTDOWN_BUDGET, "exit took {took:?}");

    let logs = b.logs().join("\n");
    // Either may come first: sd-1 is answered during the shutdown.
    let mut replies = replies_for(&mut c, &["sd-1", "sd-later"], &logs).await;
    let reply = replies.remove("sd-1").expect("sd-1");
    assert_eq!(reply["scene"], "flash-sale", "{reply}");
    let ack = replies.remove("sd-later").expect("sd-later");
    assert_eq!((&ack["ok"], &ack["scheduled"]), (&json!(true), &json!(true)), "{ack}");
    c.assert_quiet(REPLY, Duration::from_millis(500)).await;
    let schedule: Value =
        serde_json::from_slice(&std::fs::read(b.dir.path().join("state/schedule.json")).expect("schedule kept")).expect("JSON");
    assert_eq!(schedule["entries"][0]["id"], "sd-later", "{schedule}");
    // A client arriving after the exit gets the retained status: offline.
    let mut late = b.client().await;
    assert_eq!(late.next_json(STATUS, T).await, json!({"online": false}));

    let saved: Value =
        serde_json::from_slice(&std::fs::read(b.state_file()).expect("state/last-look.json written")).expect("last-look.json is JSON");
    assert!(saved.to_string().contains("backdrop"), "{saved}");
    let last = b.last_frame().await;
    assert!(is_flash_sale(&last), "last frame is not the last look: {:?}", &last[..18]);
}

#[tokio::test]
async fn sigterm_leaves_the_lights_in_the_shutdown_scene() {
    let with_shutdown_scene = |c: String| c.replacen("[lighting]\n", "[lighting]\nshutdown_scene = \"end-of-slot\"\n", 1);
    let mut b = Booth::start(with_shutdown_scene, &[]).await;
    let mut c = b.client().await;
    flash_sale_in_flight(&b, &mut c, "sd-2").await;
    let (took, status) = b.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(took <= SHUTDOWN_BUDGET, "exit took {took:?}");
    assert!(b.state_file().exists(), "state/last-look.json written");
    // end-of-slot: key at 0.5, backdrop #202020.
    let last = b.last_frame().await;
    assert_eq!(last[..2], dmx16(0.5), "key in the last frame: {:?}", &last[..18]);
    assert_eq!(last[15..18], [32, 32, 32], "backdrop in the last frame: {:?}", &last[..18]);
}

#[tokio::test]
async fn json_logs_carry_the_command_id_on_every_line_of_its_handling() {
    let mut b = Booth::start(|c| c, &["--log-format", "json"]).await;
    let mut c = b.client().await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    c.publish(CMD, json!({"id": "log-7f3e", "action": "apply_scene", "scene": "intro", "fade_ms": 0}).to_string()).await;
    let reply = c.wait_json(REPLY, T, |v| v["id"] == "log-7f3e").await;
    assert_eq!(reply["ok"], true, "{reply}");
    let (_, status) = b.terminate();
    assert!(status.success());

    let lines: Vec<Value> =
        b.logs().iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))).collect();
    // The lines of this command's handling: engine (start, background
    // completion) and MQTT adapter (answer). Each must exist and carry the id.
    for message in ["applying scene", "scene applied", "command answered"] {
        let of_intro: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == message && (message == "command answered" || l.to_string().contains("intro")))
            .filter(|l| !l.to_string().contains("\"origin\":\"startup\""))
            .collect();
        assert!(!of_intro.is_empty(), "no {message:?} line for the command; logs:\n{lines:#?}");
        for l in of_intro {
            assert!(l.to_string().contains("\"id\":\"log-7f3e\""), "{message:?} line without the command id: {l}");
        }
    }
    // And no line inside a `command` span lacks an id.
    for l in &lines {
        if l["span"]["name"] == "command" {
            assert!(l["span"]["id"].is_string(), "{l}");
        }
    }
}
