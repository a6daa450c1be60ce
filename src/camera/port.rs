//! The port actor: one tokio task per serial port, owning the transport and
//! the [`Link`] state machine for every camera on that chain.
//!
//! The task loops: open the transport (via an [`Opener`]), address the chain,
//! then shuttle bytes between the port and the link until the transport
//! fails; then it marks the cameras offline and reopens with exponential
//! backoff. Requests arriving while the port is down fail fast as offline.
//!
//! Before every input to the link the task withdraws the requests whose
//! caller has gone away (its reply receiver dropped), so a request abandoned
//! before it went on the wire is never sent.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use super::error::{Failure, LinkDown};
use super::handle::{CameraHandle, Health, Msg};
use super::ip::{TcpOpener, UdpOpener};
use super::link::{CameraLinkConfig, Link, LinkOptions, LinkOutcome, Output, Request, RequestId};
use super::link_ip::UdpOptions;
use super::profile::{Camera, IpForm};
use crate::visca::{decode, Address, Answer, Inquiry};

/// Opens the byte transport of a port. Called again after every failure.
pub trait Opener: Send + 'static {
    type Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn open(&mut self) -> impl Future<Output = io::Result<Self::Transport>> + Send;
}

/// Any `FnMut() -> impl Future<Output = io::Result<T>>` is an opener, which
/// is what tests use to hand out `tokio::io::duplex` ends.
impl<F, Fut, T> Opener for F
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<T>> + Send,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Transport = T;
    fn open(&mut self) -> impl Future<Output = io::Result<T>> + Send {
        self()
    }
}

/// Opens a real serial device: 8 data bits, no parity, 1 stop bit, no flow control.
#[derive(Debug, Clone)]
pub struct SerialOpener {
    pub path: String,
    pub baud: u32,
}

impl Opener for SerialOpener {
    type Transport = tokio_serial::SerialStream;
    fn open(&mut self) -> impl Future<Output = io::Result<Self::Transport>> + Send {
        use tokio_serial::{DataBits, FlowControl, Parity, SerialPortBuilderExt, StopBits};
        let builder = tokio_serial::new(self.path.clone(), self.baud)
            .data_bits(DataBits::Eight)
            .parity(Parity::None)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None);
        async move { builder.open_native_async().map_err(io::Error::from) }
    }
}

/// Tunables of a port task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortOptions {
    pub link: LinkOptions,
    /// First reopen delay after a failure; doubles up to `reopen_max`.
    pub reopen_initial: Duration,
    pub reopen_max: Duration,
    /// Requests buffered per port before callers wait. The task drains it
    /// promptly (each request is queued or refused at once), so this only
    /// absorbs bursts; the per-camera bound is [`LinkOptions::queue_capacity`].
    pub channel_capacity: usize,
    /// A write that takes longer means the port is wedged.
    pub write_timeout: Duration,
    /// Read each camera's identity (CAM_VersionInq) when it comes online
    /// after the port opened, into [`Health::identity`]. Off by default
    /// (fake cameras in tests answer only what they are asked); the daemon
    /// turns it on.
    pub read_identity: bool,
    /// The UDP form's session knobs (IP cameras only).
    pub udp: UdpOptions,
    /// Resends after an ACK timeout on an IP camera's link (datagrams get
    /// lost; a resend costs little): replaces `link.retries` there.
    pub ip_retries: u32,
    /// First resend delay on an IP camera's link; replaces `link.retry_backoff`.
    pub ip_retry_backoff: Duration,
}

impl PortOptions {
    /// The options of an IP camera's port task.
    pub fn for_ip(&self) -> PortOptions {
        let mut o = *self;
        o.link.retries = self.ip_retries;
        o.link.retry_backoff = self.ip_retry_backoff;
        o
    }
}

impl Default for PortOptions {
    fn default() -> Self {
        PortOptions {
            link: LinkOptions::default(),
            reopen_initial: Duration::from_millis(250),
            reopen_max: Duration::from_secs(5),
            channel_capacity: 64,
            write_timeout: Duration::from_secs(1),
            read_identity: false,
            udp: UdpOptions::default(),
            // Six sends, 20 ms apart doubling: a camera silent for
            // 6 × ack + 620 ms is offline; a 10 % datagram loss almost
            // never costs a command (both datagrams lost six times).
            ip_retries: 5,
            ip_retry_backoff: Duration::from_millis(20),
        }
    }
}

/// Configuration problems found when spawning (normally caught by config validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    #[error("camera {camera}: VISCA address {address} is not 1–7")]
    BadAddress { camera: String, address: u8 },
    #[error("cameras {first} and {second} both use address {address} on {port}")]
    DuplicateAddress { port: String, address: u8, first: String, second: String },
    #[error("cameras on {port} disagree on the baud rate ({a} vs {b})")]
    BaudMismatch { port: String, a: u32, b: u32 },
    #[error("no cameras given for port {0}")]
    NoCameras(String),
}

/// Link problems of one port, for `/metrics` (read by the daemon's
/// collector; the port task only increments).
#[derive(Debug, Default)]
pub struct PortCounters {
    /// The open transport failed (read/write error, EOF: unplugged).
    pub port_lost: AtomicU64,
    /// Opening the serial device failed.
    pub open_failed: AtomicU64,
    /// Requests that ended without a reply in time (after their retries).
    pub timeouts: AtomicU64,
    /// Requests the camera refused with a VISCA error.
    pub refused: AtomicU64,
    /// Other failed requests (port closed while pending, offline, bad answer, lost).
    pub other: AtomicU64,
    /// Resends counted from failed requests' attempts (the sans-IO link does
    /// not report resends that later succeeded).
    pub retries: AtomicU64,
}

impl PortCounters {
    fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running port task and the handles of its cameras.
#[derive(Debug)]
pub struct Port {
    name: String,
    handles: Vec<CameraHandle>,
    task: JoinHandle<()>,
    counters: Arc<PortCounters>,
}

impl Port {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn handles(&self) -> &[CameraHandle] {
        &self.handles
    }
    pub fn handle(&self, camera: &str) -> Option<&CameraHandle> {
        self.handles.iter().find(|h| h.name() == camera)
    }
    /// The port's link-error counters.
    pub fn counters(&self) -> Arc<PortCounters> {
        self.counters.clone()
    }
    /// Waits for the task to end (after cancellation, or when every handle is dropped).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Spawns one port task per distinct serial device among `cameras`, each
/// opened with [`SerialOpener`] at the cameras' baud rate, and one per IP
/// camera (`url`), opened with [`UdpOpener`] or [`TcpOpener`].
pub fn spawn_serial_ports(cameras: &[Camera], options: PortOptions, cancel: CancellationToken) -> Result<Vec<Port>, SpawnError> {
    spawn_camera_ports(cameras, options, cancel)
}

/// See [`spawn_serial_ports`] (the same; this name says it serves IP cameras too).
pub fn spawn_camera_ports(cameras: &[Camera], options: PortOptions, cancel: CancellationToken) -> Result<Vec<Port>, SpawnError> {
    let mut by_port: Vec<(String, Vec<Camera>)> = Vec::new();
    let mut ip = Vec::new();
    for cam in cameras {
        if let Some(url) = &cam.url {
            ip.push((url.clone(), cam.clone()));
            continue;
        }
        let port = cam.port.display().to_string();
        match by_port.iter_mut().find(|(p, _)| *p == port) {
            Some((_, v)) => v.push(cam.clone()),
            None => by_port.push((port, vec![cam.clone()])),
        }
    }
    // Validate everything before spawning anything.
    for (port, cams) in &by_port {
        check(port, cams)?;
    }
    let mut ports: Vec<Port> = by_port
        .into_iter()
        .map(|(port, cams)| {
            let opener = SerialOpener { path: port.clone(), baud: cams[0].baud };
            spawn_port(port, &cams, opener, options, cancel.clone()).expect("validated above")
        })
        .collect();
    for (url, mut cam) in ip {
        // One camera, always address 1 (the transport answers the chain's broadcasts).
        cam.address = 1;
        let name = url.to_string();
        let opts = options.for_ip();
        let port = match url.form {
            IpForm::Udp => {
                let opener = UdpOpener { host: url.host.clone(), port: url.port, options: options.udp };
                spawn_port(name, std::slice::from_ref(&cam), opener, opts, cancel.clone())
            }
            IpForm::Tcp => {
                let opener = TcpOpener { host: url.host.clone(), port: url.port };
                spawn_port(name, std::slice::from_ref(&cam), opener, opts, cancel.clone())
            }
        };
        ports.push(port.expect("one camera at address 1"));
    }
    Ok(ports)
}

fn check(port: &str, cameras: &[Camera]) -> Result<(), SpawnError> {
    if cameras.is_empty() {
        return Err(SpawnError::NoCameras(port.to_string()));
    }
    for (i, c) in cameras.iter().enumerate() {
        if Address::new(c.address).is_none() {
            return Err(SpawnError::BadAddress { camera: c.name.clone(), address: c.address });
        }
        if c.baud != cameras[0].baud {
            return Err(SpawnError::BaudMismatch { port: port.to_string(), a: cameras[0].baud, b: c.baud });
        }
        if let Some(other) = cameras[..i].iter().find(|o| o.address == c.address) {
            return Err(SpawnError::DuplicateAddress {
                port: port.to_string(),
                address: c.address,
                first: other.name.clone(),
                second: c.name.clone(),
            });
        }
    }
    Ok(())
}

/// Spawns the task for one port shared by `cameras` (their `port` and `baud`
/// fields are not used: the opener decides). `port_name` labels logs.
pub fn spawn_port<O: Opener>(
    port_name: impl Into<String>,
    cameras: &[Camera],
    opener: O,
    options: PortOptions,
    cancel: CancellationToken,
) -> Result<Port, SpawnError> {
    let name = port_name.into();
    check(&name, cameras)?;
    let now = Instant::now();
    let (tx, rx) = mpsc::channel(options.channel_capacity.max(1));
    let mut health = HashMap::new();
    let mut names = HashMap::new();
    let mut handles = Vec::new();
    let mut link_cams = Vec::new();
    for c in cameras {
        let address = Address::new(c.address).expect("checked");
        let initial = Health { online: false, reason: Some(LinkDown::NotOpened.to_string()), last_error: None, since: now, identity: None };
        let (htx, hrx) = watch::channel(initial);
        health.insert(address, htx);
        names.insert(address, c.name.clone());
        link_cams.push((address, CameraLinkConfig { timing: c.profile.timing, completion_without_ack: c.profile.completion_without_ack }));
        handles.push(CameraHandle::new(c.name.clone(), address, name.clone(), c.profile.clone(), tx.clone(), hrx));
    }
    let counters = Arc::new(PortCounters::default());
    let actor = Actor {
        counters: counters.clone(),
        port: name.clone(),
        opener,
        link: Link::new(now, link_cams, options.link),
        rx,
        waiting: HashMap::new(),
        health,
        names,
        options,
        cancel,
        stopping: false,
        identity_reqs: HashMap::new(),
        identified: Vec::new(),
    };
    let span = info_span!("visca_port", port = %name);
    let task = tokio::spawn(actor.run().instrument(span));
    Ok(Port { name, handles, task, counters })
}

type Waiting = HashMap<RequestId, oneshot::Sender<Result<LinkOutcome, Failure>>>;

struct Actor<O: Opener> {
    counters: Arc<PortCounters>,
    port: String,
    opener: O,
    link: Link,
    rx: mpsc::Receiver<Msg>,
    waiting: Waiting,
    health: HashMap<Address, watch::Sender<Health>>,
    names: HashMap<Address, String>,
    options: PortOptions,
    cancel: CancellationToken,
    /// Set once the task is ending, so closing the link is not reported as a fault.
    stopping: bool,
    /// Internal identity inquiries in flight (no caller).
    identity_reqs: HashMap<RequestId, Address>,
    /// Cameras whose identity was asked for since the port opened.
    identified: Vec<Address>,
}

/// Why `serve` returned.
enum Stop {
    /// Cancelled, or every handle dropped: end the task.
    Exit,
    /// The transport failed: reopen later.
    Lost(LinkDown),
}

impl<O: Opener> Actor<O> {
    async fn run(mut self) {
        let mut backoff = self.options.reopen_initial;
        loop {
            let opened = tokio::select! {
                _ = self.cancel.cancelled() => break,
                r = self.opener.open() => r,
            };
            let reason = match opened {
                Ok(transport) => {
                    info!("port open");
                    backoff = self.options.reopen_initial;
                    match self.serve(transport).await {
                        Stop::Exit => break,
                        Stop::Lost(reason) => {
                            PortCounters::bump(&self.counters.port_lost, 1);
                            reason
                        }
                    }
                }
                Err(e) => {
                    PortCounters::bump(&self.counters.open_failed, 1);
                    LinkDown::OpenFailed { port: self.port.clone(), error: e.into() }
                }
            };
            warn!(%reason, retry_in_ms = backoff.as_millis() as u64, "port down");
            self.link.closed(Instant::now(), reason);
            self.deliver(None).await.ok();

            // Wait before reopening, still answering requests (they fail fast).
            let until = Instant::now() + backoff;
            loop {
                tokio::select! {
                    _ = self.cancel.cancelled() => return self.shutdown(),
                    _ = sleep_until(until) => break,
                    msg = self.rx.recv() => match msg {
                        Some(m) => self.on_msg(m),
                        None => return self.shutdown(),
                    },
                }
                self.deliver(None).await.ok();
            }
            backoff = (backoff * 2).min(self.options.reopen_max);
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        info!("port task stopping");
        self.stopping = true;
        self.link.closed(Instant::now(), LinkDown::Stopped);
        // Nothing to write any more; just answer the callers.
        while let Some(out) = self.link.poll_output() {
            self.apply(out);
        }
    }

    async fn serve(&mut self, transport: O::Transport) -> Stop {
        let (mut rd, mut wr) = tokio::io::split(transport);
        self.identified.clear();
        self.link.opened(Instant::now());
        if let Err(e) = self.deliver(Some(&mut wr)).await {
            return Stop::Lost(e);
        }
        let mut buf = BytesMut::with_capacity(256);
        loop {
            let deadline = self.link.next_deadline();
            tokio::select! {
                _ = self.cancel.cancelled() => return Stop::Exit,
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => return Stop::Lost(LinkDown::Unplugged { port: self.port.clone() }),
                    Err(e) => return Stop::Lost(LinkDown::ReadFailed { port: self.port.clone(), error: e.into() }),
                    Ok(_) => self.on_bytes(&mut buf),
                },
                msg = self.rx.recv() => match msg {
                    Some(m) => self.on_msg(m),
                    None => return Stop::Exit,
                },
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    let now = Instant::now();
                    self.withdraw_abandoned(now);
                    self.link.handle_timeout(now);
                }
            }
            if let Err(e) = self.deliver(Some(&mut wr)).await {
                return Stop::Lost(e);
            }
        }
    }

    fn on_bytes(&mut self, buf: &mut BytesMut) {
        let now = Instant::now();
        self.withdraw_abandoned(now);
        loop {
            match decode(buf) {
                Ok(Some(reply)) => {
                    debug!(?reply, "rx");
                    self.link.receive(now, reply);
                }
                Ok(None) => break,
                Err(e) => debug!("{e}"),
            }
        }
    }

    fn on_msg(&mut self, msg: Msg) {
        let now = Instant::now();
        // First, so that abandoned requests free their queue places before
        // this one is counted against the bound.
        self.withdraw_abandoned(now);
        match msg {
            // Given up while still in the channel: never reaches the link.
            Msg::Request { reply, .. } if reply.is_closed() => {}
            Msg::Request { address, request, reply } => {
                let id = self.link.submit(now, address, request);
                self.waiting.insert(id, reply);
            }
            Msg::Cancel { address } => self.link.cancel_camera(now, address),
        }
    }

    /// Withdraws every request whose caller dropped its reply receiver
    /// (dropped the future, or timed out). Runs before each input to the
    /// link, so the link never picks such a request to send. `waiting` is
    /// bounded by the queues, so the scan is short.
    fn withdraw_abandoned(&mut self, now: Instant) {
        let mut gone = Vec::new();
        self.waiting.retain(|id, reply| {
            let closed = reply.is_closed();
            if closed {
                gone.push(*id);
            }
            !closed
        });
        if !gone.is_empty() {
            self.link.withdraw(now, gone);
        }
    }

    /// Drains the link's outputs: writes bytes (when a writer is given) and
    /// answers callers. Returns the reason if the write failed.
    async fn deliver(&mut self, mut wr: Option<&mut WriteHalf<O::Transport>>) -> Result<(), LinkDown> {
        let mut tx = BytesMut::new();
        while let Some(out) = self.link.poll_output() {
            match out {
                Output::Transmit(b) => tx.extend_from_slice(&b),
                other => self.apply(other),
            }
        }
        let Some(wr) = wr.as_mut() else { return Ok(()) };
        if tx.is_empty() {
            return Ok(());
        }
        debug!(bytes = ?&tx[..], "tx");
        let write = async {
            wr.write_all(&tx).await?;
            wr.flush().await
        };
        match tokio::time::timeout(self.options.write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(LinkDown::WriteFailed { port: self.port.clone(), error: e.into() }),
            Err(_) => Err(LinkDown::WriteTimedOut { port: self.port.clone() }),
        }
    }

    fn apply(&mut self, out: Output) {
        match out {
            Output::Transmit(_) => {}
            Output::Done { id, result, .. } if self.identity_reqs.contains_key(&id) => {
                let address = self.identity_reqs.remove(&id).expect("checked");
                if let Ok(LinkOutcome::Answer(Answer::Version(v))) = result {
                    let text = format!("vendor 0x{:04X}, model 0x{:04X}, ROM version 0x{:04X}", v.vendor, v.model, v.rom);
                    let camera = self.names.get(&address).map(String::as_str).unwrap_or("?");
                    info!(camera, identity = %text, "camera identified");
                    if let Some(h) = self.health.get(&address) {
                        h.send_modify(|h| h.identity = Some(text));
                    }
                }
            }
            Output::Done { id, address, result } => {
                // A cancellation is our own doing, not a camera problem worth showing.
                if let Err(e) = &result {
                    if !self.stopping {
                        let c = &self.counters;
                        match e {
                            // Our own doing (cancel, back-pressure), not a serial fault.
                            Failure::Cancelled | Failure::Busy { .. } => {}
                            Failure::Timeout { attempts, .. } => {
                                PortCounters::bump(&c.timeouts, 1);
                                PortCounters::bump(&c.retries, u64::from(attempts.saturating_sub(1)));
                            }
                            Failure::Refused(_) => PortCounters::bump(&c.refused, 1),
                            _ => PortCounters::bump(&c.other, 1),
                        }
                    }
                    if let Failure::Busy { queued } = e {
                        let camera = self.names.get(&address).map(String::as_str).unwrap_or("?");
                        warn!(camera, %address, queued, "camera queue full, request refused");
                    } else if *e != Failure::Cancelled {
                        if let Some(h) = self.health.get(&address) {
                            h.send_modify(|h| h.last_error = Some(e.to_string()));
                        }
                    }
                }
                if let Some(reply) = self.waiting.remove(&id) {
                    // The caller may have given up; that is fine.
                    let _ = reply.send(result);
                }
            }
            Output::Health { address, online, reason } => {
                if online && self.options.read_identity && !self.stopping && !self.identified.contains(&address) {
                    self.identified.push(address);
                    let id = self.link.submit(Instant::now(), address, Request::Inquiry(Inquiry::Version));
                    self.identity_reqs.insert(id, address);
                }
                let camera = self.names.get(&address).map(String::as_str).unwrap_or("?");
                if online {
                    info!(camera, %address, "camera online");
                } else if self.stopping {
                    debug!(camera, %address, "camera link closed for shutdown");
                } else {
                    warn!(camera, %address, reason = %reason.as_ref().map(ToString::to_string).unwrap_or_default(), "camera offline");
                }
                if let Some(h) = self.health.get(&address) {
                    h.send_modify(|h| {
                        if h.online != online {
                            h.since = Instant::now();
                        }
                        h.online = online;
                        // Health is what people read: the reason as text.
                        h.reason = reason.map(|r| r.to_string());
                    });
                }
            }
        }
    }
}
