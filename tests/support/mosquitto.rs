//! Test support for the MQTT adapter: a private Mosquitto broker per test
//! (loopback only, its own temp folder, killed on drop), a small rumqttc
//! test client, and a fake engine that answers requests and records them.
//!
//! Shared by `tests/mqtt_*.rs` and `benches/mqtt.rs` through `#[path]`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use studiod::command::{Command, CommandError, DeviceResult, ErrorCode, Outcome};
use studiod::config::model::Mqtt;
use studiod::engine::{BoothState, EngineHandle, EngineInbox, Request};

/// Where Mosquitto lives on Debian (`scripts/setup.sh` installs it).
const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// How long a broker may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS material for a broker listener, as PEM.
pub struct TlsFiles {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A private Mosquitto on 127.0.0.1. `port` always speaks plain MQTT; with
/// TLS, `tls_port` speaks MQTT over TLS.
pub struct Broker {
    dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: Option<u16>,
    child: Option<Child>,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(None, "")
    }

    /// A broker with an extra TLS listener using `tls` (certificate for 127.0.0.1/localhost).
    pub fn start_tls(tls: &TlsFiles) -> Broker {
        Broker::start_with(Some(tls), "")
    }

    /// A broker with `extra` appended to its configuration (e.g. a password file).
    pub fn start_with(tls: Option<&TlsFiles>, extra: &str) -> Broker {
        // A port picked free may be taken by a parallel test before the
        // broker binds it: then try another (bounded).
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let tls_port = tls.map(|_| free_port());
            write_config(dir.path(), port, tls_port.zip(tls), extra);
            let mut broker = Broker { dir, port, tls_port, child: None };
            if broker.spawn() {
                return broker;
            }
        }
        panic!("could not start mosquitto on a free loopback port; see its log in the temp dir");
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The adapter's `[mqtt]` section for this broker.
    pub fn mqtt_config(&self, client_id: &str) -> Mqtt {
        Mqtt {
            url: self.url(),
            topic_prefix: "studiod".into(),
            client_id: Some(client_id.into()),
            username: None,
            password_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }

    /// SIGTERM and wait for the exit (Mosquitto saves its persistence file then).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Process::new("kill").args(["-TERM", &child.id().to_string()]).status();
            wait_exit(&mut child, Duration::from_secs(10));
        }
    }

    /// The broker's process id (for CPU readings in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGHUP: Mosquitto re-reads its password and ACL files.
    pub fn reload(&self) {
        if let Some(child) = &self.child {
            let _ = Process::new("kill").args(["-HUP", &child.id().to_string()]).status();
        }
    }

    /// Start again on the same ports with the same persistence folder.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "mosquitto did not restart on port {}; log: {}", self.port, self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Start the process and wait until every listener accepts connections;
    /// false when it exited (port taken) or never became ready.
    fn spawn(&mut self) -> bool {
        let conf = self.dir.path().join("mosquitto.conf");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("mosquitto.log")).expect("log file");
        let child = Process::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {MOSQUITTO} (run scripts/setup.sh): {e}"));
        self.child = Some(child);
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return false;
            }
            if ports.iter().all(|p| TcpStream::connect_timeout(&([127, 0, 0, 1], *p).into(), Duration::from_millis(200)).is_ok()) {
                return true;
            }
            if Instant::now() > deadline {
                self.kill();
                return false;
            }
            // Polling interval of the readiness probe (not a synchronisation sleep).
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("addr").port()
}

fn write_config(dir: &Path, port: u16, tls: Option<(u16, &TlsFiles)>, extra: &str) {
    let mut conf = format!(
        "# private test broker\n\
         user root\n\
         per_listener_settings false\n\
         {anonymous}\
         persistence true\n\
         persistence_location {dir}/\n\
         log_dest stderr\n\
         set_tcp_nodelay true\n\
         log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
         listener {port} 127.0.0.1\n",
        dir = dir.display(),
        // A broker given a password file for real refuses anonymous clients
        // when `extra` says so; else the test clients connect anonymously.
        anonymous = if extra.contains("allow_anonymous") { "" } else { "allow_anonymous true\n" },
    );
    if let Some((tls_port, files)) = tls {
        let write = |name: &str, pem: &str| -> PathBuf {
            let p = dir.join(name);
            std::fs::write(&p, pem).expect("write pem");
            p
        };
        let (ca, cert, key) = (write("ca.pem", &files.ca_pem), write("server.pem", &files.cert_pem), write("server.key", &files.key_pem));
        conf.push_str(&format!(
            "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
            ca.display(),
            cert.display(),
            key.display()
        ));
    }
    conf.push_str(extra);
    std::fs::write(dir.join("mosquitto.conf"), conf).expect("write mosquitto.conf");
}

/// A CA and a server certificate for 127.0.0.1 and localhost.
pub fn test_certificates() -> TlsFiles {
    test_pki(&[]).0
}

/// [`test_certificates`], plus a client certificate and key (PEM) signed by
/// the same CA for each common name in `clients` (a booth's identity).
pub fn test_pki(clients: &[&str]) -> (TlsFiles, Vec<(String, String)>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "studiod test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    let identities = clients
        .iter()
        .map(|cn| {
            let key = KeyPair::generate().expect("client key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
            params.distinguished_name.push(rcgen::DnType::CommonName, *cn);
            let cert = params.signed_by(&key, &issuer).expect("client cert");
            (cert.pem(), key.serialize_pem())
        })
        .collect();
    (TlsFiles { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }, identities)
}

/// The real MQTT adapter of one booth, as a task (with a fake engine behind it).
pub struct Adapter {
    cancel: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Adapter {
    pub fn start_for(studio: &str, cfg: &Mqtt, state_dir: &Path, engine: &FakeEngine, opts: studiod::adapters::mqtt::Options) -> Adapter {
        let cancel = tokio_util::sync::CancellationToken::new();
        let fut =
            studiod::adapters::mqtt::run_with(cfg, studio, state_dir, engine.handle.clone(), cancel.clone(), opts).expect("valid config");
        Adapter { cancel, task: tokio::spawn(fut) }
    }

    /// Clean shutdown; must end on its own within a bounded time.
    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("adapter stops within 5 s").expect("no panic");
    }

    /// An unclean death: the task is dropped, the socket closed without DISCONNECT.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A plain rumqttc client that collects what it receives.
pub struct TestClient {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Publish>,
    /// Received while waiting for another topic; handed out first, in order.
    stash: std::collections::VecDeque<Publish>,
    task: tokio::task::JoinHandle<()>,
}

impl TestClient {
    /// Connect to `port` and subscribe to `topics` (QoS 1); returns once subscribed.
    pub async fn connect(port: u16, topics: &[&str]) -> TestClient {
        TestClient::connect_as(port, topics, None).await
    }

    /// [`connect`](Self::connect) with a username and password.
    pub async fn connect_as(port: u16, topics: &[&str], login: Option<(&str, &str)>) -> TestClient {
        TestClient::connect_with(port, topics, |opts| {
            if let Some((user, password)) = login {
                opts.set_credentials(user, password);
            }
        })
        .await
    }

    /// [`connect`](Self::connect) with options of the test's own (a login, a Last Will).
    pub async fn connect_with(port: u16, topics: &[&str], configure: impl FnOnce(&mut MqttOptions)) -> TestClient {
        let id = format!("test-{}-{}", std::process::id(), rand_suffix());
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        configure(&mut opts);
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        opts.set_keep_alive(Duration::from_secs(30)).set_max_packet_size(Some(8 * 1024 * 1024)).set_network_options(net);
        let (client, mut eventloop) = AsyncClient::new(opts, 1024);
        for t in topics {
            client.subscribe(*t, QoS::AtLeastOnce).await.expect("subscribe");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (mut acks, mut connected) = (0, false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !connected || acks < topics.len() {
            match tokio::time::timeout_at(deadline, eventloop.poll()).await.expect("connect or subscribe timed out") {
                Ok(Event::Incoming(Packet::ConnAck(_))) => connected = true,
                Ok(Event::Incoming(Packet::SubAck(_))) => acks += 1,
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(p);
                }
                Ok(_) => {}
                Err(e) => panic!("test client cannot connect to 127.0.0.1:{port}: {e}"),
            }
        }
        let task = tokio::spawn(async move {
            // Bounded: the task is aborted on drop; after errors it retries slowly.
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        TestClient { client, rx, stash: Default::default(), task }
    }

    /// An unclean death: the connection closes without DISCONNECT, so the
    /// broker publishes the client's Last Will. Returns once the socket is closed.
    pub async fn kill(mut self) {
        self.task.abort();
        // The event loop (and its socket) is dropped when the aborted task ends.
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        let _ = task.await;
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await.expect("publish");
    }

    /// The next message on `topic` (others are skipped), within `limit`.
    pub async fn next_on(&mut self, topic: &str, limit: Duration) -> Publish {
        if let Some(i) = self.stash.iter().position(|p| p.topic == topic.as_bytes()) {
            return self.stash.remove(i).expect("index from position");
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(p)) if p.topic == topic.as_bytes() => return p,
                Ok(Some(p)) => self.stash.push_back(p),
                Ok(None) => panic!("test client closed"),
                Err(_) => panic!("no message on {topic} within {limit:?}"),
            }
        }
    }

    /// The next message on `topic` as JSON.
    pub async fn next_json(&mut self, topic: &str, limit: Duration) -> Value {
        let p = self.next_on(topic, limit).await;
        serde_json::from_slice(&p.payload).unwrap_or_else(|e| panic!("{topic}: not JSON ({e}): {:?}", p.payload))
    }

    /// Like [`next_json`](Self::next_json), but `None` on timeout.
    pub async fn try_next_json(&mut self, topic: &str, limit: Duration) -> Option<Value> {
        if let Some(i) = self.stash.iter().position(|p| p.topic == topic.as_bytes()) {
            let p = self.stash.remove(i).expect("index from position");
            return serde_json::from_slice(&p.payload).ok();
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(p)) if p.topic == topic.as_bytes() => return serde_json::from_slice(&p.payload).ok(),
                Ok(Some(p)) => self.stash.push_back(p),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Wait for a JSON message on `topic` that satisfies `pred`.
    pub async fn wait_json(&mut self, topic: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next_json(topic, left).await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// Every message received (any topic, in order) up to and including the
    /// first on `topic` that satisfies `pred`, within `limit`.
    pub async fn until(&mut self, topic: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Vec<Publish> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let p = match self.stash.pop_front() {
                Some(p) => p,
                None => match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(p)) => p,
                    Ok(None) => panic!("test client closed"),
                    Err(_) => panic!("no matching message on {topic} within {limit:?}; saw {seen:?}"),
                },
            };
            let hit = p.topic == topic.as_bytes() && serde_json::from_slice(&p.payload).is_ok_and(|v| pred(&v));
            seen.push(p);
            if hit {
                return seen;
            }
        }
    }

    /// The next message on any topic, or `None` after `limit`.
    pub async fn next_any(&mut self, limit: Duration) -> Option<Publish> {
        if let Some(p) = self.stash.pop_front() {
            return Some(p);
        }
        tokio::time::timeout(limit, self.rx.recv()).await.ok().flatten()
    }

    /// Hand these back: the next reads return them first, in this order.
    pub fn put_back(&mut self, messages: Vec<Publish>) {
        for p in messages.into_iter().rev() {
            self.stash.push_front(p);
        }
    }

    /// Nothing more arrives on `topic` within `limit`.
    pub async fn assert_quiet(&mut self, topic: &str, limit: Duration) {
        assert!(!self.stash.iter().any(|p| p.topic == topic.as_bytes()), "unexpected message on {topic}");
        let deadline = tokio::time::Instant::now() + limit;
        while let Ok(Some(p)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            assert!(p.topic != topic.as_bytes(), "unexpected message on {topic}: {:?}", p.payload);
        }
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos() as u64;
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

/// An engine stand-in: answers every request (after `delay_for(cmd)`, for
/// slow camera moves), records what it received, and sets `state.scene` on
/// `apply_scene`. Scene `nope` is unknown.
pub struct FakeEngine {
    pub handle: EngineHandle,
    pub received: Arc<Mutex<Vec<Request>>>,
    /// Per request, in arrival order: from the adapter's receipt
    /// (`Request::received`) to this engine getting it.
    pub waited: Arc<Mutex<Vec<Duration>>>,
    pub state: watch::Sender<BoothState>,
    pub events: tokio::sync::broadcast::Sender<studiod::engine::Event>,
    /// How many requests arrived so far (to wait on without sleeping).
    arrived: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeEngine {
    pub fn start(delay_for: fn(&Command) -> Duration) -> FakeEngine {
        let (handle, inbox) = EngineHandle::channel(BoothState::default());
        let EngineInbox { mut rx, state, events, .. } = inbox;
        let received = Arc::new(Mutex::new(Vec::new()));
        let waited = Arc::new(Mutex::new(Vec::new()));
        let (rec, wait, st) = (Arc::clone(&received), Arc::clone(&waited), state.clone());
        let (arrived_tx, arrived) = watch::channel(0);
        let task = tokio::spawn(async move {
            while let Some((req, reply)) = rx.recv().await {
                wait.lock().unwrap().push(req.received.elapsed());
                let n = {
                    let mut rec = rec.lock().unwrap();
                    rec.push(req.clone());
                    rec.len()
                };
                arrived_tx.send_replace(n);
                let st = st.clone();
                // Each request on its own task, as the real engine overlaps camera moves.
                tokio::spawn(async move {
                    let delay = delay_for(&req.command);
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await; // the simulated device time
                    }
                    let _ = reply.send(outcome(&req.command, &st, delay));
                });
            }
        });
        FakeEngine { handle, received, waited, state, events, arrived, task }
    }

    pub fn instant() -> FakeEngine {
        FakeEngine::start(|_| Duration::ZERO)
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Wait until `n` requests have arrived (bounded by `limit`).
    pub async fn wait_count(&self, n: usize, limit: Duration) {
        let mut rx = self.arrived.clone();
        tokio::time::timeout(limit, rx.wait_for(|c| *c >= n)).await.expect("engine requests in time").expect("engine alive");
    }

    pub fn ids(&self) -> Vec<Option<String>> {
        self.received.lock().unwrap().iter().map(|r| r.id.clone()).collect()
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn outcome(cmd: &Command, state: &watch::Sender<BoothState>, took: Duration) -> Outcome {
    match cmd {
        Command::ApplyScene { scene, .. } if scene == "nope" => {
            Outcome::refused(cmd, CommandError::new(ErrorCode::UnknownScene, format!("no scene `{scene}`")))
        }
        Command::ApplyScene { scene, slot, .. } => {
            state.send_modify(|s| {
                s.scene = Some(scene.clone());
                s.slot = slot.clone();
            });
            let devices = BTreeMap::from([("front".to_string(), DeviceResult::ok()), ("key".to_string(), DeviceResult::ok())]);
            Outcome::from_devices(cmd, devices, took)
        }
        _ => Outcome::from_devices(cmd, BTreeMap::new(), took),
    }
}

/// A loopback TCP proxy that can *freeze*: stop forwarding while keeping
/// every connection open, as a hung process would. Lets a test see the
/// broker's keep-alive fire the Last Will.
pub struct FreezableProxy {
    pub port: u16,
    frozen: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FreezableProxy {
    pub async fn start(target_port: u16) -> FreezableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let (frozen, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Owned here so that aborting the proxy closes every connection.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let rx = rx.clone();
                conns.spawn(async move {
                    let frozen_now = *rx.borrow();
                    if frozen_now {
                        // Frozen: accept but never answer.
                        let _held = inbound;
                        return std::future::pending::<()>().await;
                    }
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await else { return };
                    let (ai, ao) = inbound.into_split();
                    let (bi, bo) = outbound.into_split();
                    tokio::join!(pipe(ai, bo, rx.clone()), pipe(bi, ao, rx));
                });
            }
        });
        FreezableProxy { port, frozen, task }
    }

    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_frozen_now(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

async fn pipe(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, mut frozen: watch::Receiver<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    let is_frozen = frozen.clone();
    while !is_frozen_now(&is_frozen) {
        tokio::select! {
            n = from.read(&mut buf) => match n {
                Ok(n) if n > 0 && !is_frozen_now(&is_frozen) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                Ok(n) if n > 0 => break,
                _ => return,
            },
            r = frozen.changed() => if r.is_err() || is_frozen_now(&frozen) { break },
        }
    }
    // Frozen: keep both halves open and silent until the proxy is dropped.
    let _held = (from, to);
    std::future::pending::<()>().await;
}

/// An instant as the test backend writes `at` in commands: RFC 3339 UTC
/// with milliseconds (chrono, independent of studiod's own formatter).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Now, cut to the whole millisecond. `at` travels with millisecond
/// precision ([`rfc3339`]), so an instant a test sends and later compares
/// with ("never before `at`") must be one that survives the trip unchanged.
pub fn now_ms() -> std::time::SystemTime {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(since.as_millis() as u64)
}
