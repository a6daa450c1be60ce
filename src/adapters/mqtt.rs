//! The MQTT adapter for the booking backend (CONTRACT §5).
//!
//! ```text
//!   broker ──cmd──▶ pump ──spawn──▶ handler ─▶ idempotency ─▶ engine
//!      ▲                                 │
//!      └──── reply / state / status / events (one AsyncClient) ◀┘ publisher
//! ```
//!
//! - One task (the *pump*) polls rumqttc's event loop and nothing else, so
//!   the client's request queue always drains and no publish can deadlock.
//!   It spawns one handler per command.
//! - MQTT v5 with a persistent session (clean start off, session expiry), so
//!   commands published while studiod is down are delivered when it is back.
//! - Commands are acknowledged by hand, after their reply is queued: a crash
//!   mid-command means the broker redelivers it and the idempotency store
//!   decides. Because unacknowledged commands count against the *receive
//!   maximum* we announce, the broker never has more than that many commands
//!   on their way to us: memory stays bounded under a flood. Of those, at most
//!   `max_in_flight` execute at once; the others are answered `busy` at once.
//! - We announce a maximum packet size, so the broker drops (never sends)
//!   payloads larger than that instead of letting one poison the session;
//!   payloads between 64 KiB and that size get an `invalid_command` reply.
//!
//! Wiring (the daemon):
//! ```ignore
//! if let Some(mqtt_cfg) = &config.mqtt {
//!     let adapter = adapters::mqtt::run(mqtt_cfg, &config.studio.id, &config.studio.state_dir, engine.clone(), cancel.child_token())?;
//!     tasks.spawn(adapter); // ends ≤ shutdown_grace + 1 s after `cancel`
//! }
//! ```
//! Broker side: the session (and commands queued while studiod is away)
//! survives a broker restart only if the broker persists sessions; Mosquitto
//! also drops QoS 1 messages beyond `max_queued_messages` (default 1000) for
//! a client that falls behind, and adds Nagle delays unless `set_tcp_nodelay true`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{NetworkOptions, Outgoing, TlsConfiguration, Transport};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::idempotency::{Claim, IdStore, Pending};
use super::json;
use crate::command::{Command, CommandError, ErrorCode, Origin, Outcome};
use crate::config::model::Mqtt;
use crate::engine::{BoothState, EngineHandle, Request};
use crate::metrics::Counter;

/// Retained on `status` by the Last Will and on clean shutdown.
pub const OFFLINE: &str = r#"{"online":false}"#;

/// Requests (publishes, acks) queued for the event loop before callers wait.
const REQUEST_QUEUE: usize = 256;
/// First delay before reconnecting; doubles up to `Options::reconnect_max_delay`.
/// Half a second: after a broker restart a site's booths (dozens) then come
/// back spread over 0.5 s rather than within the same 100 ms; a booth waits
/// 0.25 s on average, which nothing it does minds (commands wait in its
/// session; slot starts are scheduled ahead).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(500);

/// The wait before the next connection attempt: a random point in
/// `[0, delay)` ("full jitter"). After a broker restart a site's booths all
/// see the outage at the same instant; without jitter they would knock in
/// lockstep and the broker would take every login in the same few
/// milliseconds. Never more than `delay`, so the cap holds.
fn jittered(delay: Duration, random: u64) -> Duration {
    let span = delay.as_micros().max(1) as u64;
    Duration::from_micros(random % span).min(delay)
}

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Falls back to no jitter, never to an error: reconnecting matters more.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// Tuning knobs; [`Options::default`] is what the daemon uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// MQTT keep-alive. The broker publishes the Last Will after 1.5× this
    /// without a packet from us (a frozen process). rumqttc requires ≥ 5 s.
    pub keep_alive: Duration,
    /// Commands executing at once; more get `busy` at once.
    pub max_in_flight: usize,
    /// Unacknowledged commands the broker may send us at once (v5 Receive
    /// Maximum); bounds the handler tasks. Must exceed `max_in_flight` so a
    /// flood is answered `busy` rather than queued at the broker.
    pub receive_maximum: u16,
    /// Largest packet we accept; the broker drops larger ones for us.
    pub max_packet_size: u32,
    /// How long the broker keeps our session (and queued commands) while we are away.
    pub session_expiry: Duration,
    /// Cap of the reconnect backoff: studiod is back at most this long (plus
    /// the connect itself) after the broker is.
    pub reconnect_max_delay: Duration,
    /// On shutdown, how long in-flight commands may take to finish and reply.
    pub shutdown_grace: Duration,
    /// Counts successful reconnections (the daemon passes its `/metrics` series).
    pub reconnects: Counter,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep_alive: Duration::from_secs(10),
            max_in_flight: 32,
            receive_maximum: 64,
            max_packet_size: 1024 * 1024,
            session_expiry: Duration::from_secs(24 * 3600),
            reconnect_max_delay: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(1),
            reconnects: Counter::detached(),
        }
    }
}

/// Problems in the `[mqtt]` configuration found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("mqtt.url `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot read mqtt.{key} {path}: {source}")]
    ReadFile { key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("mqtt.password_file is set but mqtt.username is not")]
    PasswordWithoutUser,
    #[error("no usable CA certificate in {0}")]
    NoCertificate(String),
    #[error("no usable {what} in {path}")]
    NoClientIdentity { what: &'static str, path: PathBuf },
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
}

/// The topics of one booth: `{prefix}/{studio}/…`.
#[derive(Debug, Clone)]
pub struct Topics {
    pub cmd: String,
    pub reply: String,
    pub state: String,
    pub status: String,
    pub events: String,
}

impl Topics {
    pub fn new(prefix: &str, studio: &str) -> Topics {
        let base = format!("{}/{studio}", prefix.trim_end_matches('/'));
        Topics {
            cmd: format!("{base}/cmd"),
            reply: format!("{base}/reply"),
            state: format!("{base}/state"),
            status: format!("{base}/status"),
            events: format!("{base}/events"),
        }
    }
}

/// Check the configuration, open the command-id store in `state_dir`, and
/// return the adapter as a future to spawn. It runs until `cancel`, then
/// finishes in-flight replies, publishes `{"online":false}` and disconnects.
/// Connection problems never end it: it reconnects with backoff.
pub fn run(
    cfg: &Mqtt,
    studio_id: &str,
    state_dir: &Path,
    engine: EngineHandle,
    cancel: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, MqttError> {
    run_with(cfg, studio_id, state_dir, engine, cancel, Options::default())
}

/// [`run`] with explicit [`Options`] (tests use a short keep-alive).
pub fn run_with(
    cfg: &Mqtt,
    studio_id: &str,
    state_dir: &Path,
    engine: EngineHandle,
    cancel: CancellationToken,
    opts: Options,
) -> Result<impl Future<Output = ()> + Send + 'static, MqttError> {
    let topics = Topics::new(&cfg.topic_prefix, studio_id);
    let mqtt_options = mqtt_options(cfg, studio_id, &topics, &opts)?;
    let ids = IdStore::open(state_dir);
    // Now, before the engine runs: results of overdue slot starts come early.
    let later = engine.later();
    let (client, eventloop) = AsyncClient::new(mqtt_options, REQUEST_QUEUE);
    let ctx = Arc::new(Ctx {
        client,
        topics,
        studio: studio_id.to_string(),
        engine,
        ids,
        executing: Arc::new(Semaphore::new(opts.max_in_flight)),
        republish: Notify::new(),
    });
    Ok(supervise(ctx, eventloop, later, cancel, opts))
}

/// What every task of one adapter shares.
struct Ctx {
    client: AsyncClient,
    topics: Topics,
    studio: String,
    engine: EngineHandle,
    ids: IdStore,
    /// Permits for commands executing in the engine.
    executing: Arc<Semaphore>,
    /// Publish `state` now (the `status` command).
    republish: Notify,
}

/// Own every task (so dropping this future, e.g. aborting its task, drops
/// the connection without DISCONNECT — the broker then sends the Last Will),
/// and run the clean shutdown on `cancel`.
async fn supervise(
    ctx: Arc<Ctx>,
    eventloop: EventLoop,
    later: broadcast::Receiver<crate::engine::Later>,
    cancel: CancellationToken,
    opts: Options,
) {
    // Handler slots: the receive maximum bounds QoS 1 commands; this also
    // bounds QoS 0 ones, which the broker does not flow-control.
    let handler_slots = usize::from(opts.receive_maximum).max(1) * 2;
    let slots = Arc::new(Semaphore::new(handler_slots));
    let stopping = CancellationToken::new();
    let connected = Arc::new(Notify::new());

    let mut pump_task = JoinSet::new();
    pump_task.spawn(pump(
        eventloop,
        Arc::clone(&ctx),
        Arc::clone(&slots),
        Arc::clone(&connected),
        stopping.clone(),
        opts.reconnect_max_delay,
        opts.reconnects.clone(),
    ));
    let mut publisher_task = JoinSet::new();
    publisher_task.spawn(publisher(Arc::clone(&ctx), connected, ctx.engine.state(), ctx.engine.events()));
    let mut later_task = JoinSet::new();
    later_task.spawn(later_replies(Arc::clone(&ctx), later));

    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = pump_task.join_next() => {
            tracing::error!("MQTT event loop ended unexpectedly; MQTT adapter stopped");
            return;
        }
    }

    tracing::info!("MQTT adapter stopping");
    // New commands are left unacknowledged from now on: the broker keeps
    // them in our session for the next start.
    stopping.cancel();
    let drained = tokio::time::timeout(opts.shutdown_grace, slots.acquire_many(handler_slots as u32)).await;
    if drained.is_err() {
        tracing::warn!(
            grace_ms = opts.shutdown_grace.as_millis() as u64,
            "commands still running at shutdown; not answered (the broker redelivers them)"
        );
    }
    publisher_task.abort_all();
    later_task.abort_all();
    // Queued behind the replies, so the broker sees replies, offline, DISCONNECT in that order.
    let goodbye = async {
        ctx.client.publish(&ctx.topics.status, QoS::AtLeastOnce, true, OFFLINE).await?;
        ctx.client.disconnect().await
    };
    let done = async {
        goodbye.await.ok();
        pump_task.join_next().await;
    };
    if tokio::time::timeout(Duration::from_secs(1), done).await.is_err() {
        tracing::warn!("broker unreachable at shutdown; it will publish our Last Will");
    }
    tracing::info!("MQTT adapter stopped");
}

/// Poll the event loop forever: dispatch commands, announce (re)connections,
/// back off after errors. Ends after our DISCONNECT went out, or on an error
/// once stopping.
async fn pump(
    mut eventloop: EventLoop,
    ctx: Arc<Ctx>,
    slots: Arc<Semaphore>,
    connected: Arc<Notify>,
    stopping: CancellationToken,
    max_delay: Duration,
    reconnects: Counter,
) {
    let mut handlers = JoinSet::new();
    let mut delay = RECONNECT_MIN_DELAY;
    let mut ever_connected = false;
    let mut down_since: Option<Instant> = None;
    loop {
        while let Some(done) = handlers.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "command handler failed");
            }
        }
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                let session_present = ack.session_present;
                match down_since.take() {
                    Some(since) if ever_connected => {
                        reconnects.inc();
                        tracing::info!(outage_ms = since.elapsed().as_millis() as u64, session_present, "reconnected to MQTT broker");
                    }
                    _ => tracing::info!(session_present, "connected to MQTT broker"),
                }
                ever_connected = true;
                delay = RECONNECT_MIN_DELAY;
                connected.notify_one();
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                // The command's receipt: everything after this is studiod's time.
                let received = Instant::now();
                if stopping.is_cancelled() {
                    continue;
                }
                if publish.topic != ctx.topics.cmd.as_bytes() {
                    // Only `cmd` is subscribed; anything else is a leftover of an old session.
                    let _ = ctx.client.try_ack(&publish);
                    continue;
                }
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        handlers.spawn(handle(Arc::clone(&ctx), publish, received, slot));
                    }
                    Err(_) => {
                        // Only reachable with QoS 0 floods (QoS 1 is bounded by the receive maximum).
                        tracing::warn!("too many commands at once; one dropped unanswered");
                        let _ = ctx.client.try_ack(&publish);
                    }
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                if stopping.is_cancelled() {
                    break;
                }
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    tracing::warn!(error = %e, "MQTT connection lost or refused; reconnecting");
                } else {
                    tracing::debug!(error = %e, retry_in_ms = delay.as_millis() as u64, "MQTT connect failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(jittered(delay, random_u64())) => {}
                    _ = stopping.cancelled() => break,
                }
                delay = (delay * 2).min(max_delay);
            }
        }
    }
}

/// Publish `status` and `state` on every (re)connection, `state` on every
/// change, and engine events.
async fn publisher(
    ctx: Arc<Ctx>,
    connected: Arc<Notify>,
    mut state: watch::Receiver<BoothState>,
    mut events: broadcast::Receiver<crate::engine::Event>,
) {
    let online = json!({"online": true, "version": env!("CARGO_PKG_VERSION")}).to_string();
    let (mut state_open, mut events_open) = (true, true);
    loop {
        tokio::select! {
            _ = connected.notified() => {
                // The session keeps the subscription, but a broker that lost
                // its sessions would not: subscribing again is harmless.
                if let Err(e) = ctx.client.subscribe(&ctx.topics.cmd, QoS::AtLeastOnce).await {
                    tracing::error!(error = %e, "cannot subscribe to cmd");
                }
                let _ = ctx.client.publish(&ctx.topics.status, QoS::AtLeastOnce, true, online.clone()).await;
                publish_state(&ctx, &mut state).await;
            }
            _ = ctx.republish.notified() => publish_state(&ctx, &mut state).await,
            changed = state.changed(), if state_open => match changed {
                Ok(()) => publish_state(&ctx, &mut state).await,
                Err(_) => state_open = false,
            },
            event = events.recv(), if events_open => match event {
                // QoS 0 and best effort: while disconnected and the queue is
                // full, an event is dropped rather than holding up `state`.
                Ok(ev) => {
                    if ctx.client.try_publish(&ctx.topics.events, QoS::AtMostOnce, false, json::event(&ev).to_string()).is_err() {
                        tracing::debug!("event not published: MQTT queue full");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(skipped = n, "MQTT events fell behind; some were not published"),
                Err(broadcast::error::RecvError::Closed) => events_open = false,
            },
        }
    }
}

/// A scheduled command's second reply (same id): its result when it ran,
/// or why it never will (replaced, cancelled). QoS 1 and awaited, like every
/// reply; queued by the client while the broker is away.
async fn later_replies(ctx: Arc<Ctx>, mut later: broadcast::Receiver<crate::engine::Later>) {
    loop {
        match later.recv().await {
            Ok(l) if l.origin == Origin::Mqtt => {
                // The acknowledgement first, even when the outcome came at once
                // (the same `at` arrived right behind it).
                ctx.ids.settled(&l.id).await;
                let reply = json::reply(Some(&l.id), None, &l.outcome, false);
                let code = reply.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
                tracing::info!(id = %l.id, ok = l.outcome.ok, code, late_ms = reply["late_ms"].as_u64(), "scheduled command answered");
                if let Err(e) = ctx.client.publish(&ctx.topics.reply, QoS::AtLeastOnce, false, reply.to_string()).await {
                    tracing::error!(error = %e, "cannot queue reply");
                }
            }
            Ok(_) => {}
            // Sized for the whole schedule: only a stalled client gets here.
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::error!(skipped = n, "scheduled commands' results fell behind; some were not published")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn publish_state(ctx: &Ctx, state: &mut watch::Receiver<BoothState>) {
    let body = json::state(&ctx.studio, &state.borrow_and_update()).to_string();
    if let Err(e) = ctx.client.publish(&ctx.topics.state, QoS::AtLeastOnce, true, body).await {
        tracing::error!(error = %e, "cannot publish state");
    }
}

/// One command: answer it exactly once, then acknowledge it.
async fn handle(ctx: Arc<Ctx>, publish: Publish, received: Instant, _slot: OwnedSemaphorePermit) {
    let parsed = json::parse_command(&publish.payload);
    let span = tracing::info_span!("command", id = parsed.id.as_deref().unwrap_or(""), action = parsed.action.as_deref().unwrap_or(""));
    async {
        let (reply, first) = answer(&ctx, parsed, received).await;
        let code = reply.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
        tracing::info!(
            ok = reply["ok"].as_bool(),
            code,
            duplicate = reply["duplicate"].as_bool(),
            ms = received.elapsed().as_millis() as u64,
            "command answered"
        );
        if let Err(e) = ctx.client.publish(&ctx.topics.reply, QoS::AtLeastOnce, false, reply.to_string()).await {
            tracing::error!(error = %e, "cannot queue reply");
        }
        // Duplicates waiting for this execution reply only after us.
        drop(first);
        if publish.qos != QoS::AtMostOnce {
            let _ = ctx.client.ack(&publish).await;
        }
    }
    .instrument(span)
    .await
}

/// The reply to a payload received at `received`, and the claim on its id
/// (dropped after replying).
async fn answer(ctx: &Ctx, parsed: json::Parsed, received: Instant) -> (Value, Option<Pending>) {
    let command = match &parsed.command {
        Ok(c) => c.clone(),
        Err(e) => {
            tracing::warn!(code = e.code.as_str(), reason = %e.message, "invalid command");
            return (json::reply_invalid(&parsed, e), None);
        }
    };
    let (id, action) = (parsed.id.unwrap_or_default(), parsed.action);
    let busy =
        |why: &str| json::reply(Some(&id), action.as_deref(), &Outcome::refused(&command, CommandError::new(ErrorCode::Busy, why)), false);
    // A claim abandoned by a busy first attempt is claimed again; bounded
    // because every round either answers or follows an abandoned attempt.
    for _ in 0..3 {
        match ctx.ids.claim(&id).await {
            Claim::Done(first) => return (duplicate(first), None),
            Claim::Running(waiter) => {
                tracing::info!("same id is executing; waiting for its reply");
                if let Some(first) = waiter.wait().await {
                    return (duplicate(first), None);
                }
            }
            Claim::New(mut pending) => {
                let Ok(permit) = ctx.executing.try_acquire() else {
                    return (busy("too many commands in progress; try again"), None);
                };
                if command == Command::Status {
                    ctx.republish.notify_one();
                }
                let req = Request { id: Some(id.clone()), origin: Origin::Mqtt, command: command.clone(), received };
                let outcome = ctx.engine.execute(req).await;
                drop(permit);
                let reply = json::reply(Some(&id), action.as_deref(), &outcome, false);
                if remember(&outcome) {
                    pending.record(&reply).await;
                }
                return (reply, Some(pending));
            }
        }
    }
    (busy("the same id keeps being refused; try again"), None)
}

/// Busy and internal refusals applied nothing, so a retry with the same id
/// must run: they are not remembered as handled.
fn remember(outcome: &Outcome) -> bool {
    !matches!(outcome.error.as_ref().map(|e| e.code), Some(ErrorCode::Busy | ErrorCode::Internal))
}

fn duplicate(mut first: Value) -> Value {
    first["duplicate"] = json!(true);
    tracing::info!("duplicate id; first reply sent again");
    first
}

/// Where the broker is.
#[derive(Debug, PartialEq)]
struct Broker {
    tls: bool,
    host: String,
    port: u16,
}

/// `mqtt://host[:port]` or `mqtts://host[:port]` (IPv6 as `[::1]`).
fn parse_url(url: &str) -> Result<Broker, MqttError> {
    let bad = |reason: &str| MqttError::Url { url: url.to_string(), reason: reason.to_string() };
    let (tls, rest) = match url.split_once("://") {
        Some(("mqtt", rest)) => (false, rest),
        Some(("mqtts", rest)) => (true, rest),
        _ => return Err(bad("must start with mqtt:// or mqtts://")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(bad("only host[:port] is allowed (credentials go in username and password_file)"));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            (format!("[{h}]"), after.strip_prefix(':'))
        }
        None => match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        },
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("missing host"));
    }
    let port = match port {
        None => {
            if tls {
                8883
            } else {
                1883
            }
        }
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("port must be 1–65535"))?,
    };
    Ok(Broker { tls, host, port })
}

/// Unacknowledged QoS 1 publishes (replies, state) we keep in flight before
/// further publishes wait for the broker's acknowledgements.
const OUTGOING_INFLIGHT: u16 = 512;

fn mqtt_options(cfg: &Mqtt, studio_id: &str, topics: &Topics, opts: &Options) -> Result<MqttOptions, MqttError> {
    // Stable across restarts: the broker finds our session by it.
    let client_id = cfg.client_id.clone().unwrap_or_else(|| format!("studiod-{studio_id}"));
    let mut o = connection_options(cfg, client_id)?;
    o.set_keep_alive(opts.keep_alive.max(Duration::from_secs(5)))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(opts.session_expiry.as_secs().min(u32::MAX as u64) as u32))
        .set_receive_maximum(Some(opts.receive_maximum))
        .set_max_packet_size(Some(opts.max_packet_size))
        .set_manual_acks(true)
        // rumqttc preallocates one slot per possible in-flight publish; its
        // default (65 535) costs ~13 MB of RSS. Replies, state and events
        // never need more than a few hundred unacknowledged at once.
        .set_outgoing_inflight_upper_limit(OUTGOING_INFLIGHT)
        .set_last_will(LastWill::new(&topics.status, OFFLINE, QoS::AtLeastOnce, true, None));
    Ok(o)
}

/// Where and how to connect, for any studiod client of a broker (the booth,
/// `studiod fleet`): host and port from `url`, TLS with `ca_file` and the
/// client certificate, the login.
pub(crate) fn connection_options(cfg: &Mqtt, client_id: String) -> Result<MqttOptions, MqttError> {
    let broker = parse_url(&cfg.url)?;
    let mut o = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    // Small request/reply messages: without TCP_NODELAY, Nagle and delayed
    // ACKs add tens of milliseconds to a reply. A short connect timeout keeps
    // reconnection within the backoff budget when the broker host is silent.
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    net.set_connection_timeout(3);
    o.set_network_options(net).set_connection_timeout(3);
    if broker.tls {
        let identity = cfg.cert_file.as_deref().zip(cfg.key_file.as_deref());
        let tls = tls_config(cfg.ca_file.as_deref(), identity)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    match (&cfg.username, &cfg.password_file) {
        (Some(user), Some(file)) => {
            let secret =
                std::fs::read_to_string(file).map_err(|source| MqttError::ReadFile { key: "password_file", path: file.clone(), source })?;
            // Editors add a final newline; it is never part of the password.
            o.set_credentials(user.clone(), secret.trim_end_matches(['\n', '\r']).to_string());
        }
        (Some(user), None) => {
            o.set_credentials(user.clone(), String::new());
        }
        (None, Some(_)) => return Err(MqttError::PasswordWithoutUser),
        (None, None) => {}
    }
    Ok(o)
}

/// rustls with the ring provider, trusting `ca_file` (a private CA) or,
/// without it, the system's roots; presenting the booth's own certificate
/// (`cert_file`, `key_file`) when the site's broker asks for one.
fn tls_config(ca_file: Option<&Path>, identity: Option<(&Path, &Path)>) -> Result<Arc<rustls::ClientConfig>, MqttError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| MqttError::ReadFile { key: "ca_file", path: path.to_path_buf(), source })?;
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
            roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err(MqttError::NoCertificate(path.display().to_string()));
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(MqttError::NoCertificate("the system's certificate store (set mqtt.ca_file)".into()));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_root_certificates(roots);
    let config = match identity {
        Some((cert_file, key_file)) => {
            let read = |key: &'static str, path: &Path| {
                std::fs::read(path).map_err(|source| MqttError::ReadFile { key, path: path.to_path_buf(), source })
            };
            let chain: Vec<_> = CertificateDer::pem_slice_iter(&read("cert_file", cert_file)?).filter_map(Result::ok).collect();
            if chain.is_empty() {
                return Err(MqttError::NoClientIdentity { what: "certificate", path: cert_file.to_path_buf() });
            }
            let key = PrivateKeyDer::from_pem_slice(&read("key_file", key_file)?)
                .map_err(|_| MqttError::NoClientIdentity { what: "private key", path: key_file.to_path_buf() })?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_waits_are_spread_over_the_whole_delay_and_never_beyond_it() {
        let delay = Duration::from_secs(2);
        let waits: Vec<Duration> = (0..1000u64).map(|i| jittered(delay, i.wrapping_mul(0x9E37_79B9_7F4A_7C15))).collect();
        assert!(waits.iter().all(|w| *w < delay), "{waits:?}");
        // Spread: 10 buckets of 200 ms over [0, 2 s), none empty, none holding a fifth.
        let mut buckets = [0; 10];
        for w in &waits {
            buckets[(w.as_millis() / 200) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 0 && n < 200), "{buckets:?}");
        assert_eq!(jittered(Duration::ZERO, 7), Duration::ZERO);
        assert_eq!(jittered(Duration::from_millis(100), 0), Duration::ZERO);
        assert_eq!(jittered(Duration::from_millis(100), 99_999), Duration::from_micros(99_999));
        // The first wait after a loss: within half a second, so a site's booths spread over it.
        assert!(RECONNECT_MIN_DELAY >= Duration::from_millis(500));
    }

    #[test]
    fn urls() {
        let b = |tls, host: &str, port| Broker { tls, host: host.into(), port };
        assert_eq!(parse_url("mqtt://127.0.0.1:1883").unwrap(), b(false, "127.0.0.1", 1883));
        assert_eq!(parse_url("mqtts://broker.lan").unwrap(), b(true, "broker.lan", 8883));
        assert_eq!(parse_url("mqtt://[::1]:1884/").unwrap(), b(false, "[::1]", 1884));
        for bad in ["tcp://x", "mqtt://", "mqtt://h:0", "mqtt://h:99999", "mqtt://u:p@h", "mqtt://h/x"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topics() {
        let t = Topics::new("studiod/", "la-03");
        assert_eq!(t.cmd, "studiod/la-03/cmd");
        assert_eq!(t.status, "studiod/la-03/status");
    }

    #[test]
    fn busy_is_not_remembered() {
        let busy = Outcome::refused(&Command::Status, CommandError::new(ErrorCode::Busy, "x"));
        assert!(!remember(&busy));
        let unknown = Outcome::refused(&Command::Status, CommandError::new(ErrorCode::UnknownScene, "x"));
        assert!(remember(&unknown));
    }
}
