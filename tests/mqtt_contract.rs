//! The MQTT adapter against a real Mosquitto (CONTRACT §5): each test starts
//! its own private broker on a free loopback port and a fake engine.

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use studiod::adapters::mqtt::{self, Options, Topics};
use studiod::command::Command;
use studiod::config::model::Mqtt;
use studiod::engine::Event;
use tokio_util::sync::CancellationToken;

use mosquitto::{Adapter, Broker, FakeEngine, TestClient};

/// Generous: the machine is shared; waits end as soon as the message is there.
const WAIT: Duration = Duration::from_secs(10);
const STUDIO: &str = "la-03";

fn topics() -> Topics {
    Topics::new("studiod", STUDIO)
}

fn all_topics(t: &Topics) -> [&str; 4] {
    [t.reply.as_str(), t.state.as_str(), t.status.as_str(), t.events.as_str()]
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("STUDIOD_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
}

fn test_options() -> Options {
    // The daemon's defaults, with the shortest keep-alive rumqttc allows;
    // every adapter of this file counts its reconnections in one series.
    Options { keep_alive: Duration::from_secs(5), reconnects: reconnect_counter(), ..Options::default() }
}

fn reconnect_counter() -> studiod::metrics::Counter {
    static COUNTER: std::sync::OnceLock<studiod::metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(studiod::metrics::Counter::detached).clone()
}

impl Adapter {
    /// The adapter of this file's booth, `STUDIO`.
    fn start(cfg: &Mqtt, state_dir: &Path, engine: &FakeEngine, opts: Options) -> Adapter {
        Adapter::start_for(STUDIO, cfg, state_dir, engine, opts)
    }
}

/// Start a broker, a fake engine, the adapter and a client watching every
/// outgoing topic; returns once the adapter announced itself online.
async fn booth(engine: FakeEngine) -> (Broker, FakeEngine, Adapter, TestClient, tempfile::TempDir) {
    init_logs();
    let broker = Broker::start();
    let state_dir = tempfile::tempdir().unwrap();
    let t = topics();
    let mut client = TestClient::connect(broker.port, &all_topics(&t)).await;
    let adapter = Adapter::start(&broker.mqtt_config("studiod-test"), state_dir.path(), &engine, test_options());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    (broker, engine, adapter, client, state_dir)
}

async fn command(client: &mut TestClient, payload: impl Into<Vec<u8>>) -> Value {
    let t = topics();
    client.publish(&t.cmd, payload).await;
    client.next_json(&t.reply, WAIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_gets_one_reply_with_the_contract_fields() {
    let (_broker, engine, adapter, mut client, _dir) = booth(FakeEngine::instant()).await;
    let t = topics();
    let reply = command(
        &mut client,
        r#"{"id":"c-8f2a","action":"apply_scene","scene":"flash-sale","fade_ms":800,"slot":{"booking":"b-77","creator":"ana"}}"#,
    )
    .await;
    assert_eq!(reply["id"], "c-8f2a");
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["action"], "apply_scene");
    assert_eq!(reply["scene"], "flash-sale");
    assert_eq!(reply["duplicate"], false);
    assert!(reply["duration_ms"].is_u64());
    assert_eq!(reply["devices"], json!({"front": {"ok": true}, "key": {"ok": true}}));
    assert!(reply.get("error").is_none());

    let req = engine.received.lock().unwrap()[0].clone();
    assert_eq!(req.id.as_deref(), Some("c-8f2a"));
    assert_eq!(req.origin, studiod::command::Origin::Mqtt);

    // The engine changed the state: it is republished, retained, with the slot.
    let state = client.wait_json(&t.state, WAIT, |s| s["scene"] == "flash-sale").await;
    assert_eq!(state["studio"], STUDIO);
    assert_eq!(state["slot"]["booking"], "b-77");
    let mut late = TestClient::connect(_broker.port, &[&t.state, &t.status]).await;
    let retained = late.next_on(&t.status, WAIT).await;
    assert!(retained.retain, "status is retained");
    let status: Value = serde_json::from_slice(&retained.payload).unwrap();
    assert_eq!(status, json!({"online": true, "version": env!("CARGO_PKG_VERSION")}));

    // An unknown scene is the engine's refusal, echoed with its code.
    let reply = command(&mut client, r#"{"id":"c-2","action":"apply_scene","scene":"nope"}"#).await;
    assert_eq!((reply["ok"].clone(), reply["error"]["code"].clone()), (json!(false), json!("unknown_scene")));

    client.assert_quiet(&t.reply, Duration::from_millis(300)).await;
    assert_eq!(engine.count(), 2);
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_payloads_get_error_replies_and_apply_nothing() {
    let (_broker, engine, adapter, mut client, _dir) = booth(FakeEngine::instant()).await;
    let cases: Vec<(Vec<u8>, Value, &str)> = vec![
        (b"{not json".to_vec(), Value::Null, "invalid_json"),
        (br#"{"id":"u-1","action":"dance"}"#.to_vec(), json!("u-1"), "unknown_action"),
        (br#"{"action":"blackout"}"#.to_vec(), Value::Null, "invalid_command"),
        (br#"{"id":"m-1","action":"apply_scene"}"#.to_vec(), json!("m-1"), "invalid_command"),
        (b"\xff\xfe\xfd not utf-8".to_vec(), Value::Null, "invalid_json"),
        (vec![b' '; 70 * 1024], Value::Null, "invalid_command"),
        (format!(r#"{{"id":"{}","action":"status"}}"#, "x".repeat(200)).into_bytes(), Value::Null, "invalid_command"),
    ];
    for (payload, id, code) in cases {
        let reply = command(&mut client, payload).await;
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["error"]["code"], code, "{reply}");
        assert_eq!(reply["duplicate"], false);
    }
    // Larger than the packet size we announce: the broker drops it for us
    // (no poisoned session); the adapter stays up and answers the next one.
    client.publish(&topics().cmd, vec![b'x'; 2 * 1024 * 1024]).await;
    let reply = command(&mut client, r#"{"id":"after-big","action":"blackout"}"#).await;
    assert_eq!(reply["id"], "after-big");
    assert_eq!(reply["ok"], true);
    assert_eq!(engine.ids(), vec![Some("after-big".to_string())], "only the valid command reached the engine");
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_id_is_executed_once_also_across_restarts() {
    // `recall_preset` takes 1.5 s, so the second copy arrives mid-execution.
    let engine =
        FakeEngine::start(|c| if matches!(c, Command::RecallPreset { .. }) { Duration::from_millis(1500) } else { Duration::ZERO });
    let (broker, engine, adapter, mut client, dir) = booth(engine).await;
    let t = topics();
    let cmd = r#"{"id":"d-1","action":"recall_preset","camera":"front","preset":3}"#;
    client.publish(&t.cmd, cmd).await;
    client.publish(&t.cmd, cmd).await;
    let first = client.next_json(&t.reply, WAIT).await;
    let second = client.next_json(&t.reply, WAIT).await;
    assert_eq!(first["duplicate"], false, "the first reply comes first: {first}");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], "d-1");
    assert_eq!(second["duration_ms"], first["duration_ms"], "the first reply, sent again");
    // And once more after it finished.
    assert_eq!(command(&mut client, cmd).await["duplicate"], true);
    assert_eq!(engine.count(), 1, "applied once");
    adapter.stop().await;

    // A new process with the same state_dir remembers the id.
    let engine2 = FakeEngine::instant();
    let adapter = Adapter::start(&broker.mqtt_config("studiod-test"), dir.path(), &engine2, test_options());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    let again = command(&mut client, cmd).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["ok"], true);
    assert_eq!(engine2.count(), 0, "not applied again after the restart");
    let fresh = command(&mut client, r#"{"id":"d-2","action":"blackout"}"#).await;
    assert_eq!(fresh["duplicate"], false);
    assert_eq!(engine2.count(), 1);
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_command_does_not_block_the_next_and_a_flood_gets_busy() {
    init_logs();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let t = topics();
    let mut client = TestClient::connect(broker.port, &all_topics(&t)).await;
    // A 10 s camera move; two may execute at once.
    let engine = FakeEngine::start(|c| if matches!(c, Command::RecallPreset { .. }) { Duration::from_secs(10) } else { Duration::ZERO });
    let opts = Options { max_in_flight: 2, ..test_options() };
    let adapter = Adapter::start(&broker.mqtt_config("studiod-test"), dir.path(), &engine, opts);
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;

    let started = Instant::now();
    client.publish(&t.cmd, r#"{"id":"slow-1","action":"recall_preset","camera":"front","preset":1}"#).await;
    let quick = command(&mut client, r#"{"id":"quick-1","action":"blackout"}"#).await;
    assert_eq!(quick["id"], "quick-1");
    assert!(started.elapsed() < Duration::from_secs(5), "not held up by the 10 s move");

    // slow-1 and one more slow hold both slots: the rest are refused at once.
    for i in 2..=6 {
        client.publish(&t.cmd, format!(r#"{{"id":"slow-{i}","action":"recall_preset","camera":"front","preset":1}}"#)).await;
    }
    let mut busy = Vec::new();
    for _ in 0..4 {
        let r = client.next_json(&t.reply, WAIT).await;
        assert_eq!(r["error"]["code"], "busy", "{r}");
        busy.push(r["id"].as_str().unwrap().to_string());
    }
    assert!(started.elapsed() < Duration::from_secs(8), "busy replies come at once");
    // The two that were running still get their replies …
    for _ in 0..2 {
        let slow = client.next_json(&t.reply, Duration::from_secs(20)).await;
        assert_eq!(slow["ok"], true, "{slow}");
    }
    // … and a busy command was not remembered: retrying its id executes it.
    let retry = command(&mut client, format!(r#"{{"id":"{}","action":"blackout"}}"#, busy[0])).await;
    assert_eq!(retry["duplicate"], false);
    assert_eq!(retry["ok"], true);
    assert_eq!(engine.count(), 4, "slow-1, quick-1, one more slow, the retry");
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_events_and_status_are_published() {
    let (_broker, engine, adapter, mut client, _dir) = booth(FakeEngine::instant()).await;
    let t = topics();
    client.next_on(&t.state, WAIT).await;
    engine.state.send_modify(|s| s.scene = Some("house".into()));
    client.wait_json(&t.state, WAIT, |s| s["scene"] == "house").await;

    engine.events.send(Event::DeviceOffline { device: "front".into(), reason: "no ACK within 200 ms".into() }).unwrap();
    let ev = client.next_json(&t.events, WAIT).await;
    assert_eq!(ev["event"], "device_offline");
    assert_eq!(ev["device"], "front");

    // A scene that failed on the tablet reaches the backend, with the devices that did not follow.
    engine
        .events
        .send(Event::SceneApplied {
            scene: "flash-sale".into(),
            origin: studiod::command::Origin::Http,
            ok: false,
            id: Some("h-1".into()),
            failed: [("side".to_string(), "camera offline: no ACK within 200 ms".to_string())].into(),
            superseded: false,
        })
        .unwrap();
    let ev = client.next_json(&t.events, WAIT).await;
    assert_eq!(
        (&ev["event"], &ev["scene"], &ev["ok"], &ev["superseded"]),
        (&json!("scene_applied"), &json!("flash-sale"), &json!(false), &json!(false))
    );
    assert_eq!(ev["failed"], json!({"side": "camera offline: no ACK within 200 ms"}));

    // `status` republishes state at once, and is answered.
    let reply = command(&mut client, r#"{"id":"s-1","action":"status"}"#).await;
    assert_eq!(reply["action"], "status");
    client.wait_json(&t.state, WAIT, |s| s["scene"] == "house").await;
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_publishes_offline_and_queued_commands_run_on_return() {
    let (broker, _engine, adapter, mut client, dir) = booth(FakeEngine::instant()).await;
    let t = topics();
    adapter.stop().await;
    client.wait_json(&t.status, WAIT, |v| *v == json!({"online": false})).await;
    let mut late = TestClient::connect(broker.port, &[&t.status]).await;
    let retained = late.next_on(&t.status, WAIT).await;
    assert!(retained.retain);
    assert_eq!(serde_json::from_slice::<Value>(&retained.payload).unwrap(), json!({"online": false}));

    // Published while studiod is away: kept in its persistent session.
    client.publish(&t.cmd, r#"{"id":"while-down","action":"blackout"}"#).await;
    let engine = FakeEngine::instant();
    let adapter = Adapter::start(&broker.mqtt_config("studiod-test"), dir.path(), &engine, test_options());
    let reply = client.next_json(&t.reply, WAIT).await;
    assert_eq!(reply["id"], "while-down");
    assert_eq!(reply["ok"], true);
    assert_eq!(engine.count(), 1);
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_the_command_in_flight_before_going_offline() {
    let engine = FakeEngine::start(|c| if matches!(c, Command::RecallPreset { .. }) { Duration::from_millis(500) } else { Duration::ZERO });
    let (_broker, engine, adapter, mut client, _dir) = booth(engine).await;
    let t = topics();
    client.publish(&t.cmd, r#"{"id":"in-flight","action":"recall_preset","camera":"front","preset":2}"#).await;
    engine.wait_count(1, WAIT).await;
    adapter.stop().await;
    let reply = client.next_json(&t.reply, WAIT).await;
    assert_eq!(reply["id"], "in-flight");
    assert_eq!(reply["ok"], true);
    client.wait_json(&t.status, WAIT, |v| *v == json!({"online": false})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_when_the_connection_dies_uncleanly() {
    let (_broker, _engine, adapter, mut client, _dir) = booth(FakeEngine::instant()).await;
    let t = topics();
    adapter.crash().await;
    let will = client.next_on(&t.status, WAIT).await;
    assert_eq!(serde_json::from_slice::<Value>(&will.payload).unwrap(), json!({"online": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_when_the_process_hangs_with_its_connection_open() {
    init_logs();
    let broker = Broker::start();
    let proxy = mosquitto::FreezableProxy::start(broker.port).await;
    let dir = tempfile::tempdir().unwrap();
    let t = topics();
    let mut client = TestClient::connect(broker.port, &[&t.status]).await;
    let cfg = Mqtt { url: format!("mqtt://127.0.0.1:{}", proxy.port), ..broker.mqtt_config("studiod-hang") };
    let engine = FakeEngine::instant();
    let adapter = Adapter::start(&cfg, dir.path(), &engine, test_options());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    let frozen_at = Instant::now();
    proxy.freeze();
    // The broker gives up after 1.5 × the 5 s keep-alive.
    let will = client.wait_json(&t.status, Duration::from_secs(20), |v| v["online"] == false).await;
    assert_eq!(will, json!({"online": false}));
    assert!(frozen_at.elapsed() >= Duration::from_secs(5), "the keep-alive, not a closed socket, fired the will");
    adapter.crash().await;
}

/// The child process of the SIGKILL tests, not a test of its own: ignored
/// (so never counted as passed), started by them with `--ignored` and the
/// broker port and state folder in the environment. Its `recall_preset`
/// takes a minute; it prints `RECEIVED` when its engine got one.
#[test]
#[ignore = "the SIGKILL tests' child process; they start it with --ignored"]
fn child_process_running_the_adapter() {
    let (Ok(port), Ok(dir)) = (std::env::var("STUDIOD_MQTT_CHILD_PORT"), std::env::var("STUDIOD_MQTT_CHILD_DIR")) else {
        panic!("only the SIGKILL tests run this, with STUDIOD_MQTT_CHILD_PORT and STUDIOD_MQTT_CHILD_DIR set")
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine =
            FakeEngine::start(|c| if matches!(c, Command::RecallPreset { .. }) { Duration::from_secs(60) } else { Duration::ZERO });
        let cfg = child_config(port.parse().unwrap());
        let _adapter = Adapter::start(&cfg, Path::new(&dir), &engine, test_options());
        // Bounded: the parent SIGKILLs us long before this.
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            engine.wait_count(1, Duration::from_secs(60)).await;
            println!("RECEIVED");
            std::future::pending::<()>().await
        })
        .await;
    });
}

fn child_config(port: u16) -> Mqtt {
    Mqtt {
        url: format!("mqtt://127.0.0.1:{port}"),
        topic_prefix: "studiod".into(),
        client_id: Some("studiod-child".into()),
        username: None,
        password_file: None,
        ca_file: None,
        cert_file: None,
        key_file: None,
    }
}

/// Killed on drop, so a failing test leaves no process behind.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(broker: &Broker, dir: &Path) -> ChildGuard {
    ChildGuard(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_process_running_the_adapter", "--ignored", "--nocapture", "--test-threads=1"])
            .env("STUDIOD_MQTT_CHILD_PORT", broker.port.to_string())
            .env("STUDIOD_MQTT_CHILD_DIR", dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// A command whose process died mid-execution (no reply, no ack) is
/// delivered again by the broker and executed when studiod is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_cut_short_by_a_crash_runs_again_on_restart() {
    init_logs();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let t = topics();
    let mut client = TestClient::connect(broker.port, &[&t.status, &t.reply]).await;
    let mut child = spawn_child(&broker, dir.path());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    client.publish(&t.cmd, r#"{"id":"cut-1","action":"recall_preset","camera":"front","preset":4}"#).await;
    let stdout = child.0.stdout.take().unwrap();
    let saw = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains("RECEIVED"))
        // libtest may print "test … ... " before it
    });
    assert!(tokio::time::timeout(WAIT, saw).await.expect("child received the command in time").unwrap());
    drop(child); // SIGKILL mid-command
    client.wait_json(&t.status, WAIT, |v| v["online"] == false).await;

    let engine = FakeEngine::instant();
    let adapter = Adapter::start(&child_config(broker.port), dir.path(), &engine, test_options());
    let reply = client.next_json(&t.reply, WAIT).await;
    assert_eq!(reply["id"], "cut-1");
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["duplicate"], false);
    assert_eq!(engine.count(), 1);
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_after_sigkill() {
    init_logs();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let t = topics();
    let mut client = TestClient::connect(broker.port, &[&t.status, &t.reply]).await;
    let child = spawn_child(&broker, dir.path());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    assert_eq!(command(&mut client, r#"{"id":"k-1","action":"blackout"}"#).await["ok"], true);
    drop(child); // SIGKILL: no chance to say goodbye
    let will = client.wait_json(&t.status, WAIT, |v| v["online"] == false).await;
    assert_eq!(will, json!({"online": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_does_not_stop_replies() {
    init_logs();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    // Every write to the id file fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", dir.path().join(studiod::adapters::idempotency::FILE_NAME)).unwrap();
    let t = topics();
    let mut client = TestClient::connect(broker.port, &all_topics(&t)).await;
    let engine = FakeEngine::instant();
    let adapter = Adapter::start(&broker.mqtt_config("studiod-test"), dir.path(), &engine, test_options());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    let reply = command(&mut client, r#"{"id":"f-1","action":"blackout"}"#).await;
    assert_eq!(reply["ok"], true);
    // Still remembered in memory.
    assert_eq!(command(&mut client, r#"{"id":"f-1","action":"blackout"}"#).await["duplicate"], true);
    assert_eq!(engine.count(), 1);
    adapter.stop().await;
}

/// The broker goes away for `outage` and comes back on the same port: a
/// command published after its return is executed and answered within 5 s.
async fn survive_broker_outage(outage: Duration) {
    let (mut broker, engine, adapter, mut client, _dir) = booth(FakeEngine::instant()).await;
    let t = topics();
    assert_eq!(command(&mut client, r#"{"id":"before","action":"blackout"}"#).await["ok"], true);
    let reconnects = reconnect_counter().get();
    drop(client);
    broker.stop();
    // The outage itself (what is being tested), not a synchronisation.
    tokio::time::sleep(outage).await;
    broker.restart();
    let back = Instant::now();
    let mut client = TestClient::connect(broker.port, &all_topics(&t)).await;
    client.publish(&t.cmd, r#"{"id":"after","action":"blackout"}"#).await;
    let reply = client.wait_json(&t.reply, WAIT, |r| r["id"] == "after").await;
    assert_eq!(reply["ok"], true);
    assert!(back.elapsed() < Duration::from_secs(5), "answered {:?} after the broker returned", back.elapsed());
    assert!(reconnect_counter().get() > reconnects, "reconnect counted");
    assert_eq!(engine.ids(), vec![Some("before".into()), Some("after".into())]);
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_short_outage() {
    survive_broker_outage(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_ten_second_outage() {
    survive_broker_outage(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_with_a_private_ca() {
    init_logs();
    let certs = mosquitto::test_certificates();
    let broker = Broker::start_tls(&certs);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();
    let t = topics();
    // The test client watches on the plain listener; the adapter uses TLS only.
    let mut client = TestClient::connect(broker.port, &all_topics(&t)).await;
    let cfg =
        Mqtt { url: format!("mqtts://127.0.0.1:{}", broker.tls_port.unwrap()), ca_file: Some(ca), ..broker.mqtt_config("studiod-tls") };
    let engine = FakeEngine::instant();
    let adapter = Adapter::start(&cfg, &dir.path().join("state"), &engine, test_options());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    let reply = command(&mut client, r#"{"id":"tls-1","action":"blackout"}"#).await;
    assert_eq!(reply["ok"], true);
    assert_eq!(engine.count(), 1);
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password_file() {
    init_logs();
    let pw_dir = tempfile::tempdir().unwrap();
    let passwd = pw_dir.path().join("passwd");
    for (user, password, create) in [("studiod", "s3cret", true), ("tester", "t3st", false)] {
        let mut cmd = std::process::Command::new("mosquitto_passwd");
        cmd.arg("-b");
        if create {
            cmd.arg("-c");
        }
        assert!(cmd.arg(&passwd).args([user, password]).status().unwrap().success());
    }
    // The broker refuses anonymous clients, so studiod is online only if it
    // really sends its username and the password read from the file.
    let broker = Broker::start_with(None, &format!("allow_anonymous false\npassword_file {}\n", passwd.display()));
    let refused = anonymous_connect_error(broker.port).await;
    assert!(refused.contains("NotAuthorized") || refused.contains("BadUserNamePassword"), "anonymous refused: {refused}");
    let secret = pw_dir.path().join("mqtt-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let t = topics();
    let mut client = TestClient::connect_as(broker.port, &all_topics(&t), Some(("tester", "t3st"))).await;
    let cfg = Mqtt { username: Some("studiod".into()), password_file: Some(secret), ..broker.mqtt_config("studiod-auth") };
    let engine = FakeEngine::instant();
    let adapter = Adapter::start(&cfg, &pw_dir.path().join("state"), &engine, test_options());
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    assert_eq!(command(&mut client, r#"{"id":"pw-1","action":"blackout"}"#).await["ok"], true);
    adapter.stop().await;
}

/// How the broker answers a client that sends no credentials.
async fn anonymous_connect_error(port: u16) -> String {
    let opts = rumqttc::MqttOptions::new("anonymous-probe", "127.0.0.1", port);
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(opts, 8);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await.expect("the broker answers the anonymous client") {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a))) if a.code == rumqttc::ConnectReturnCode::Success => {
                panic!("the broker accepted an anonymous client")
            }
            Ok(_) => {}
            Err(e) => return format!("{e:?}"),
        }
    }
}

#[test]
fn config_errors_are_reported_at_start() {
    let engine_rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = engine_rt.enter();
    let (handle, _inbox) = studiod::engine::EngineHandle::channel(Default::default());
    let dir = tempfile::tempdir().unwrap();
    let base = Mqtt {
        url: "mqtt://127.0.0.1:1".into(),
        topic_prefix: "studiod".into(),
        client_id: None,
        username: None,
        password_file: None,
        ca_file: None,
        cert_file: None,
        key_file: None,
    };
    let start = |cfg: Mqtt| mqtt::run(&cfg, STUDIO, dir.path(), handle.clone(), CancellationToken::new()).err().map(|e| e.to_string());
    assert!(start(Mqtt { url: "http://x".into(), ..base.clone() }).unwrap().contains("mqtt://"));
    assert!(start(Mqtt { username: Some("u".into()), password_file: Some(dir.path().join("missing")), ..base.clone() })
        .unwrap()
        .contains("password_file"));
    assert!(start(Mqtt { url: "mqtts://127.0.0.1".into(), ca_file: Some(dir.path().join("missing.pem")), ..base.clone() })
        .unwrap()
        .contains("ca_file"));
    assert!(start(base).is_none());
}
