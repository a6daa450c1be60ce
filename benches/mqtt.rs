//! MQTT adapter latency and flood behaviour through a private Mosquitto on
//! loopback (`/usr/sbin/mosquitto`; `scripts/setup.sh` installs it).
//!
//! (a) the broker's own publish → subscriber round trip (the baseline);
//! (b) command published → reply received, with the adapter and a fake
//!     engine that answers at once (includes the fsync of the command id),
//!     and, for the same commands, the adapter's receipt of the publish →
//!     the engine getting the request (from `Request::received`);
//! (c) a flood of 1000 commands/s for 10 s: every command answered (`ok` or
//!     `busy`), peak RSS of this process (adapter + test client).
//!
//! Every latency line is a distribution of its own samples (p50/p90/p99/max);
//! no percentile is subtracted from another.
//!
//! `cargo bench --bench mqtt` (env `MQTT_BENCH_N` for the sample count,
//! `MQTT_BENCH_FLOOD_S` for the flood length). Without `--bench` (as under
//! `cargo test --benches`) a short smoke round that prints no percentiles.

#[path = "support/dist.rs"]
mod dist;
#[path = "../tests/support/mosquitto.rs"]
mod mosquitto;

use std::time::{Duration, Instant};

use studiod::adapters::mqtt::{self, Options, Topics};
use studiod::command::Command;
use tokio_util::sync::CancellationToken;

use dist::Dist;
use mosquitto::{Broker, FakeEngine, TestClient};

const STUDIO: &str = "bench";
const WAIT: Duration = Duration::from_secs(10);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<_> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    // `cargo test --benches` runs without --bench: a short smoke round then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_or("MQTT_BENCH_N", if quick { 20 } else { 1000 }) as usize;
    let flood_s = env_or("MQTT_BENCH_FLOOD_S", if quick { 1 } else { 10 });
    // A deep broker queue, so that a slow test client is never the reason a
    // reply goes missing (Mosquitto drops QoS 1 beyond 1000 queued by default).
    let broker = Broker::start_with(None, "max_queued_messages 100000\n");
    let t = Topics::new("studiod", STUDIO);

    // (a) broker round trip: one client publishes QoS 1 and receives it back.
    let mut client = TestClient::connect(broker.port, &["bench/echo", &t.reply, &t.status]).await;
    let mut broker_rtt = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        client.publish("bench/echo", format!("{i}")).await;
        client.next_on("bench/echo", WAIT).await;
        broker_rtt.push(start.elapsed());
    }
    println!("(a) broker round trip client→broker→client (baseline), {n} msgs\n      {}", Dist::new(broker_rtt).summary());

    // (b) command → reply through the adapter.
    let engine = FakeEngine::instant();
    let (state_dir, cancel, adapter) = start_adapter(&broker, STUDIO, &engine, &mut client, &t).await;
    let mut cmd_rtt = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        client.publish(&t.cmd, format!(r#"{{"id":"b-{i}","action":"blackout"}}"#)).await;
        let r = client.next_json(&t.reply, WAIT).await;
        cmd_rtt.push(start.elapsed());
        assert_eq!(r["ok"], true, "{r}");
    }
    let waited = std::mem::take(&mut *engine.waited.lock().unwrap());
    assert_eq!(waited.len(), n, "one request per command");
    println!("(b) command published → reply received, adapter + instant fake engine, {n} cmds\n      {}", Dist::new(cmd_rtt).summary());
    println!("    same commands, in the adapter: receipt of the publish → engine has the request\n      {}", Dist::new(waited).summary());
    println!("    (state_dir {} — each reply waits for the fsync of its command id)", state_dir.path().display());
    cancel.cancel();
    let _ = adapter.await;

    // (c) floods: instant engine, then an engine taking 100 ms per command.
    // Each phase has its own booth (topics), so a stopped adapter's
    // persistent session does not queue the next phase's commands.
    flood(&broker, "flood-a", flood_s, FakeEngine::instant(), "instant engine").await;
    let slow = FakeEngine::start(|c| if matches!(c, Command::Blackout { .. }) { Duration::from_millis(100) } else { Duration::ZERO });
    flood(&broker, "flood-b", flood_s, slow, "engine taking 100 ms per command").await;
    println!("    peak RSS of this process (adapter + test client + broker client buffers): {} KiB", peak_rss_kib());
}

/// Start the adapter for `studio` on a fresh state dir and wait until it is online.
async fn start_adapter(
    broker: &Broker,
    studio: &str,
    engine: &FakeEngine,
    client: &mut TestClient,
    t: &Topics,
) -> (tempfile::TempDir, CancellationToken, tokio::task::JoinHandle<()>) {
    let state_dir = tempfile::tempdir().expect("temp dir");
    let cancel = CancellationToken::new();
    let config = broker.mqtt_config(&format!("studiod-{studio}"));
    let adapter =
        mqtt::run_with(&config, studio, state_dir.path(), engine.handle.clone(), cancel.clone(), Options::default()).expect("config");
    let adapter = tokio::spawn(adapter);
    client.wait_json(&t.status, WAIT, |v| v["online"] == true).await;
    (state_dir, cancel, adapter)
}

async fn flood(broker: &Broker, studio: &str, seconds: u64, engine: FakeEngine, label: &str) {
    let t = &Topics::new("studiod", studio);
    let mut client = TestClient::connect(broker.port, &[&t.reply, &t.status]).await;
    let client = &mut client;
    let (_state_dir, cancel, adapter) = start_adapter(broker, studio, &engine, client, t).await;

    let total = (seconds * 1000) as usize;
    let publisher = client.client.clone();
    let cmd_topic = t.cmd.clone();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for i in 0..total {
            tick.tick().await;
            let body = format!(r#"{{"id":"f-{i}","action":"blackout"}}"#);
            publisher.publish(&cmd_topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, body).await.expect("publish");
        }
    });
    let (mut ok, mut busy, mut other) = (0usize, 0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    while ok + busy + other < total && Instant::now() < deadline {
        // Generous: every reply waits for its command id's fsync, and on a
        // machine busy writing elsewhere one group commit can stall for
        // seconds; a command really lost still fails the assertion below.
        let Some(r) = client.try_next_json(&t.reply, Duration::from_secs(30)).await else {
            println!("    no reply for 30 s after {} replies; broker log tail:\n{}", ok + busy + other, tail(&broker.log(), 15));
            break;
        };
        match (r["ok"].as_bool(), r["error"]["code"].as_str()) {
            (Some(true), _) => ok += 1,
            (_, Some("busy")) => busy += 1,
            _ => other += 1,
        }
    }
    let _ = sender.await;
    let took = started.elapsed();
    println!(
        "(c) flood 1000 cmd/s × {seconds} s, {label}: sent {total}, replies {} (ok {ok}, busy {busy}, other {other}) in {:.1} s; engine executed {}",
        ok + busy + other,
        took.as_secs_f64(),
        engine.count()
    );
    assert_eq!(ok + busy + other, total, "every command answered");
    cancel.cancel();
    let _ = adapter.await;
}
