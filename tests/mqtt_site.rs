//! A site of booths on one Mosquitto (CONTRACT §7, issue #13): the shipped
//! ACL template (`broker/mosquitto-acl.conf`, used as is) keeps booths apart,
//! and a booth can log in with its client certificate. Real brokers and the
//! real MQTT adapter on loopback.

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::LastWill;
use rumqttc::v5::mqttbytes::QoS;
use studiod::adapters::mqtt::Options;
use studiod::config::model::Mqtt;

use mosquitto::{Adapter, Broker, FakeEngine, TestClient};

const WAIT: Duration = Duration::from_secs(10);
const BACKEND: (&str, &str) = ("backend", "backend-pw");

fn acl_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("broker/mosquitto-acl.conf")
}

/// A Mosquitto password file with these accounts.
fn password_file(dir: &Path, accounts: &[(&str, &str)]) -> PathBuf {
    let file = dir.join("passwd");
    for (i, (user, password)) in accounts.iter().enumerate() {
        let mut cmd = std::process::Command::new("mosquitto_passwd");
        cmd.arg("-b");
        if i == 0 {
            cmd.arg("-c");
        }
        assert!(cmd.arg(&file).args([user, password]).status().expect("mosquitto_passwd (scripts/setup.sh)").success());
    }
    file
}

/// The broker a site runs: no anonymous clients, the accounts, the template.
fn site_broker(passwd: &Path, tls: Option<&mosquitto::TlsFiles>, extra: &str) -> Broker {
    let conf = format!("allow_anonymous false\npassword_file {}\nacl_file {}\n{extra}", passwd.display(), acl_template().display());
    Broker::start_with(tls, &conf)
}

/// booth-a and booth-b, each the real adapter logged in with its own
/// account; returns once the backend saw both online.
async fn start_booths(dir: &Path, broker: &Broker, backend: &mut TestClient) -> Vec<(Adapter, FakeEngine)> {
    let mut adapters = Vec::new();
    for (booth, pw) in [("booth-a", "pw-a"), ("booth-b", "pw-b")] {
        let secret = dir.join(format!("{booth}.secret"));
        std::fs::write(&secret, pw).unwrap();
        let cfg = Mqtt { username: Some(booth.into()), password_file: Some(secret), ..broker.mqtt_config(booth) };
        let engine = FakeEngine::instant();
        adapters.push((Adapter::start_for(booth, &cfg, &dir.join(booth), &engine, Options::default()), engine));
        backend.wait_json(&format!("studiod/{booth}/status"), WAIT, |v| v["online"] == true).await;
    }
    adapters
}

fn has(p: &rumqttc::v5::mqttbytes::v5::Publish, needle: &str) -> bool {
    String::from_utf8_lossy(&p.payload).contains(needle)
}

fn will(topic: &str, payload: &str, retain: bool) -> LastWill {
    LastWill::new(topic, payload.to_string(), QoS::AtLeastOnce, retain, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_template_keeps_booths_apart() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = password_file(dir.path(), &[("booth-a", "pw-a"), ("booth-b", "pw-b"), BACKEND]);
    let broker = site_broker(&passwd, None, "");
    let mut backend = TestClient::connect_as(broker.port, &["studiod/#"], Some(BACKEND)).await;

    // Both booths run the real adapter under the template: it lets them work.
    let adapters = start_booths(dir.path(), &broker, &mut backend).await;
    backend.publish("studiod/booth-b/cmd", r#"{"id":"b-1","action":"blackout"}"#).await;
    backend.wait_json("studiod/booth-b/reply", WAIT, |v| v["id"] == "b-1" && v["ok"] == true).await;

    // 1. A cannot read B's commands. The backend's second command (to A) is
    // the marker: the broker forwards one publisher's messages in order, so
    // anything of B's would reach A's spy before it.
    let mut spy = TestClient::connect_as(broker.port, &["studiod/booth-b/cmd", "studiod/booth-a/cmd"], Some(("booth-a", "pw-a"))).await;
    backend.publish("studiod/booth-b/cmd", r#"{"id":"b-2","action":"blackout"}"#).await;
    backend.publish("studiod/booth-a/cmd", r#"{"id":"a-marker","action":"status"}"#).await;
    let seen = spy.until("studiod/booth-a/cmd", WAIT, |v| v["id"] == "a-marker").await;
    assert!(!seen.iter().any(|p| p.topic == "studiod/booth-b/cmd".as_bytes()), "A read B's command: {seen:?}");
    backend.wait_json("studiod/booth-b/reply", WAIT, |v| v["id"] == "b-2").await; // B did get it

    // 2. A cannot publish to B's cmd, state or status; its own events are the marker.
    let forger = TestClient::connect_as(broker.port, &[], Some(("booth-a", "pw-a"))).await;
    for topic in ["cmd", "state", "status"] {
        forger.publish(&format!("studiod/booth-b/{topic}"), r#"{"id":"forged-1","action":"blackout","online":false}"#).await;
    }
    forger.publish("studiod/booth-a/events", r#"{"marker":"forger"}"#).await;
    let seen = backend.until("studiod/booth-a/events", WAIT, |v| v["marker"] == "forger").await;
    assert!(!seen.iter().any(|p| has(p, "forged")), "a forged message got through: {seen:?}");

    // 3. A cannot fake B's Last Will. The forger dies first, then a client
    // whose Will is on A's own events, the marker.
    let faker = TestClient::connect_with(broker.port, &[], |o| {
        o.set_credentials("booth-a", "pw-a");
        o.set_last_will(will("studiod/booth-b/status", r#"{"online":false,"forged":true}"#, true));
    })
    .await;
    faker.kill().await;
    let own = TestClient::connect_with(broker.port, &[], |o| {
        o.set_credentials("booth-a", "pw-a");
        o.set_last_will(will("studiod/booth-a/events", r#"{"marker":"own-will"}"#, false));
    })
    .await;
    own.kill().await;
    let seen = backend.until("studiod/booth-a/events", WAIT, |v| v["marker"] == "own-will").await;
    assert!(!seen.iter().any(|p| has(p, "forged")), "a forged Will got through: {seen:?}");
    // Whoever looks now still finds B online, and no reply to a forged command.
    let mut late = TestClient::connect_as(broker.port, &["studiod/booth-b/status"], Some(BACKEND)).await;
    assert_eq!(late.next_json("studiod/booth-b/status", WAIT).await["online"], true);
    for (adapter, engine) in adapters {
        adapter.stop().await;
        assert!(engine.received.lock().unwrap().iter().all(|r| !format!("{r:?}").contains("forged")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booth_logs_in_with_its_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (certs, identities) = mosquitto::test_pki(&["booth-a"]);
    let passwd = password_file(dir.path(), &[BACKEND]);
    // The TLS listener demands a certificate and takes its common name as
    // the username, so the template's rules for `booth-a` apply to it.
    let broker = site_broker(&passwd, Some(&certs), "require_certificate true\nuse_identity_as_username true\n");
    let mut backend = TestClient::connect_as(broker.port, &["studiod/#"], Some(BACKEND)).await;
    let write = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let (cert_pem, key_pem) = &identities[0];
    let cfg = Mqtt {
        url: format!("mqtts://127.0.0.1:{}", broker.tls_port.unwrap()),
        ca_file: Some(write("ca.pem", &certs.ca_pem)),
        cert_file: Some(write("booth-a.pem", cert_pem)),
        key_file: Some(write("booth-a.key", key_pem)),
        ..broker.mqtt_config("booth-a")
    };
    let engine = FakeEngine::instant();
    let adapter = Adapter::start_for("booth-a", &cfg, &dir.path().join("state"), &engine, Options::default());
    backend.wait_json("studiod/booth-a/status", WAIT, |v| v["online"] == true).await;
    backend.publish("studiod/booth-a/cmd", r#"{"id":"cert-1","action":"blackout"}"#).await;
    backend.wait_json("studiod/booth-a/reply", WAIT, |v| v["id"] == "cert-1" && v["ok"] == true).await;
    adapter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_shows_every_booth_with_the_read_only_account() {
    let dir = tempfile::tempdir().unwrap();
    let tech = ("site-tech", "tech-pw");
    let passwd = password_file(dir.path(), &[("booth-a", "pw-a"), ("booth-b", "pw-b"), BACKEND, tech]);
    let broker = site_broker(&passwd, None, "");
    let mut backend = TestClient::connect_as(broker.port, &["studiod/+/status"], Some(BACKEND)).await;
    let mut adapters = start_booths(dir.path(), &broker, &mut backend).await;
    // booth-b dies: its Last Will says so, and the fleet view must too.
    let (b, _engine_b) = adapters.pop().unwrap();
    b.crash().await;
    backend.wait_json("studiod/booth-b/status", Duration::from_secs(20), |v| v["online"] == false).await;

    let secret = dir.path().join("tech.secret");
    std::fs::write(&secret, tech.1).unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_studiod"))
        .args(["fleet", "--json", "--mqtt", &broker.url(), "--username", tech.0, "--password-file"])
        .arg(&secret)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run).await.expect("fleet --json ends by itself").unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let booths = view["booths"].as_array().unwrap();
    let online: Vec<(String, serde_json::Value)> =
        booths.iter().map(|b| (b["booth"].as_str().unwrap().to_string(), b["online"].clone())).collect();
    assert_eq!(online, vec![("booth-a".into(), true.into()), ("booth-b".into(), false.into())], "{view}");
    assert!(booths[0]["version"].is_string(), "{view}");

    // A wrong password is a clear error and exit code 2, not a hang.
    std::fs::write(&secret, "wrong").unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_studiod"))
        .args(["fleet", "--json", "--mqtt", &broker.url(), "--username", tech.0, "--password-file"])
        .arg(&secret)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run).await.expect("ends by itself").unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the broker"), "{}", String::from_utf8_lossy(&out.stderr));
    for (adapter, _) in adapters {
        adapter.stop().await;
    }
}
