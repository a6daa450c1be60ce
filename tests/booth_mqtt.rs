//! Issue acceptance for the booking backend, end to end: a private Mosquitto,
//! the real daemon (in-process, and as a child process for SIGKILL), three
//! virtual cameras and an Art-Net receiver on loopback, and an MQTT client
//! speaking CONTRACT §5.

#[path = "support/mosquitto.rs"]
mod mosquitto;
mod support;

use std::process::{Command as Process, Stdio};
use std::time::Duration;

use mosquitto::{Broker, TestClient};
use serde_json::{json, Value};
use support::{dmx16, Booth};

use support::topics::{CMD, REPLY, STATE, STATUS};
const T: Duration = Duration::from_secs(10);

async fn client(broker: &Broker) -> TestClient {
    TestClient::connect(broker.port, &[REPLY, STATUS, STATE]).await
}

async fn reply_for(c: &mut TestClient, id: &str) -> Value {
    c.wait_json(REPLY, T, |v| v["id"] == id).await
}

#[tokio::test]
async fn command_reply_and_artnet_output() {
    let broker = Broker::start();
    let b = Booth::start_with(Some(broker.url()), "").await;
    let mut c = client(&broker).await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    c.publish(
        CMD,
        json!({"id":"c-8f2a","action":"apply_scene","scene":"flash-sale","fade_ms":0,"slot":{"booking":"b-77","creator":"ana"}})
            .to_string(),
    )
    .await;
    let r = reply_for(&mut c, "c-8f2a").await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        (r["action"].as_str(), r["scene"].as_str(), r["duplicate"].as_bool()),
        (Some("apply_scene"), Some("flash-sale"), Some(false))
    );
    for d in ["front", "side", "overhead", "key", "backdrop", "console"] {
        assert_eq!(r["devices"][d]["ok"], true, "{d}: {r}");
    }
    assert!(r["duration_ms"].is_u64());
    b.frame_where(T, "flash-sale key at full", |d| d[..2] == dmx16(1.0)).await;
    let state = c.wait_json(STATE, T, |v| v["scene"] == "flash-sale").await;
    assert_eq!(state["slot"]["booking"], "b-77");
    assert_eq!(state["devices"]["front"]["online"], true);
    // CONTRACT §5: which scene set (64 hex digits) and whether the clock is synced.
    let hash = state["scenes_hash"].as_str().unwrap_or_default();
    assert!(hash.len() == 64 && hash.bytes().all(|c| c.is_ascii_hexdigit()), "{state}");
    assert!(state["clock_synced"].is_boolean() || state["clock_synced"].is_null(), "{state}");
}

#[tokio::test]
async fn duplicate_id_is_applied_once_also_after_restart() {
    let broker = Broker::start();
    let mut b = Booth::start_with(Some(broker.url()), "").await;
    let mut c = client(&broker).await;
    let apply = json!({"id":"dup-1","action":"apply_scene","scene":"flash-sale","fade_ms":0}).to_string();
    c.publish(CMD, apply.clone()).await;
    assert_eq!(reply_for(&mut c, "dup-1").await["duplicate"], false);
    c.publish(CMD, json!({"id":"dark-1","action":"blackout"}).to_string()).await;
    assert_eq!(reply_for(&mut c, "dark-1").await["ok"], true);
    b.frame_where(T, "blackout", |d| d[..2] == [0, 0]).await;

    c.publish(CMD, apply.clone()).await;
    let r = reply_for(&mut c, "dup-1").await;
    assert_eq!((r["duplicate"].as_bool(), r["ok"].as_bool()), (Some(true), Some(true)), "{r}");
    // Not applied again: the lights stay dark.
    for _ in 0..3 {
        assert_eq!(b.artnet.next().await.unwrap().data[..2], [0, 0]);
    }

    b.stop_daemon().await;
    b.start_daemon().await;
    c.publish(CMD, apply).await;
    let r = reply_for(&mut c, "dup-1").await;
    assert_eq!(r["duplicate"], true, "{r}");
    // The safe scene ran at start-up (house); the duplicate did not bring flash-sale back.
    b.frame_where(T, "house, not flash-sale", |d| d[..2] == dmx16(0.4)).await;
}

#[tokio::test]
async fn bad_commands_get_error_replies_and_change_nothing() {
    let broker = Broker::start();
    let b = Booth::start_with(Some(broker.url()), "").await;
    let mut c = client(&broker).await;
    c.publish(CMD, json!({"id":"ok-1","action":"apply_scene","scene":"intro","fade_ms":0}).to_string()).await;
    assert_eq!(reply_for(&mut c, "ok-1").await["ok"], true);
    let look = b.frame_where(T, "intro key", |d| d[..2] == dmx16(0.85)).await;
    let camera_cmds = b.chain.line_log().len();

    c.publish(CMD, "{not json").await;
    let r = c.wait_json(REPLY, T, |v| v["error"]["code"] == "invalid_json").await;
    assert_eq!(r["id"], Value::Null);
    c.publish(CMD, json!({"id":"x-1","action":"dance"}).to_string()).await;
    assert_eq!(reply_for(&mut c, "x-1").await["error"]["code"], "unknown_action");
    c.publish(CMD, json!({"id":"x-2","action":"apply_scene","scene":"nope"}).to_string()).await;
    assert_eq!(reply_for(&mut c, "x-2").await["error"]["code"], "unknown_scene");
    c.publish(CMD, json!({"id":"x-3","action":"recall_preset","camera":"ghost","preset":1}).to_string()).await;
    assert_eq!(reply_for(&mut c, "x-3").await["error"]["code"], "unknown_device");
    c.publish(CMD, vec![0xff, 0xfe, 0x00]).await;
    c.wait_json(REPLY, T, |v| v["error"]["code"] == "invalid_json").await;

    for _ in 0..3 {
        assert_eq!(b.artnet.next().await.unwrap().data, look);
    }
    // Health probes are inquiries (8x 09 …); no command (8x 01 …) was sent.
    let new_cmds = b.chain.line_log()[camera_cmds..].iter().filter(|p| p.get(1) == Some(&0x01)).count();
    assert_eq!(new_cmds, 0);
}

#[tokio::test]
async fn broker_outage_then_commands_flow_again() {
    let mut broker = Broker::start();
    let b = Booth::start_with(Some(broker.url()), "").await;
    let mut c = client(&broker).await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    broker.stop();
    // The broker is down for 10 s (the outage); nothing to wait for but time itself.
    tokio::time::sleep(Duration::from_secs(10)).await;
    broker.restart();
    let mut c = client(&broker).await;
    // studiod must be back within 5 s of the broker: its retained status says so.
    c.wait_json(STATUS, Duration::from_secs(7), |v| v["online"] == true).await;
    c.publish(CMD, json!({"id":"after-1","action":"apply_scene","scene":"flash-sale","fade_ms":0}).to_string()).await;
    assert_eq!(reply_for(&mut c, "after-1").await["ok"], true);
    b.frame_where(T, "flash-sale", |d| d[..2] == dmx16(1.0)).await;
}

#[tokio::test]
async fn command_sent_while_studiod_was_down_is_applied_on_return() {
    let broker = Broker::start();
    let mut b = Booth::start_with(Some(broker.url()), "").await;
    let mut c = client(&broker).await;
    c.wait_json(STATUS, T, |v| v["online"] == true).await;
    b.stop_daemon().await;
    c.wait_json(STATUS, T, |v| v["online"] == false).await;
    c.publish(CMD, json!({"id":"queued-1","action":"apply_scene","scene":"flash-sale","fade_ms":0}).to_string()).await;
    b.start_daemon().await;
    let r = reply_for(&mut c, "queued-1").await;
    assert_eq!(r["ok"], true, "{r}");
    b.frame_where(T, "flash-sale", |d| d[..2] == dmx16(1.0)).await;
}

#[tokio::test]
async fn sigkill_publishes_the_last_will() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    // Peers kept alive for the child's lifetime.
    let _booth = studiod_sim::booth::SimBooth::create(dir.path(), Default::default(), Some(broker.url()), None).await.unwrap();
    // The daemon is another process, its Art-Net port unknown here; it polls from that port.
    _booth.artnet.set_reply_to(studiod_sim::monitor::ReplyTo::Source);
    let config = _booth.config_path.clone();
    let mut c = client(&broker).await;
    let mut child = Process::new(env!("CARGO_BIN_EXE_studiod"))
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let online = c.wait_json(STATUS, T, |v| v["online"] == true).await;
    assert_eq!(online["version"], env!("CARGO_PKG_VERSION"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let will = c.wait_json(STATUS, T, |v| v["online"] == false).await;
    assert_eq!(will, json!({"online": false}));
}
