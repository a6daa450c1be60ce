//! The lighting task: owns the fade engine and the Art-Net and sACN
//! senders (and so the nodes' health), runs the frame clock, and serves a
//! [`LightingHandle`] over a bounded channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::artnet::{ArtNetError, ArtNetSender, SendStats};
use super::clock::{ClockSource, FrameClock};
use super::e131::OPT_STREAM_TERMINATED;
use super::fade::FadeEngine;
use super::fixture::Fixture;
use super::health::{HealthState, NodeHealth, OutputHealth};
use super::output::{Output, Protocol};
use super::patch::{Patch, PatchError};
use super::persist::{self, LastLook};
use super::sacn::{SacnError, SacnSender};
use super::Look;
use crate::metrics::DurationHistogram;

/// Highest frame rate we run: a full 512-slot DMX universe refreshes at ~44 Hz,
/// so faster Art-Net only makes nodes drop packets.
pub const MAX_FRAME_RATE: u32 = 44;
/// Coalesce look changes for this long before writing last-look.json.
pub const PERSIST_DEBOUNCE: Duration = Duration::from_millis(500);
/// An unchanged sACN universe is re-sent at least this often, whatever the
/// Art-Net keep-alive: E1.31 receivers drop a source after 2.5 s of silence.
pub const SACN_KEEPALIVE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LightingError {
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error(transparent)]
    ArtNet(#[from] ArtNetError),
    #[error(transparent)]
    Sacn(#[from] SacnError),
    #[error("the lighting task has stopped")]
    Closed,
}

/// One ArtDmx that left the socket (or failed to): for tests, the
/// technician page and latency measurements.
#[derive(Debug, Clone)]
pub struct FrameSent {
    /// Index of the output in the `&[Output]` given to [`spawn`].
    pub output: usize,
    /// Art-Net port-address or sACN universe (see `protocol`).
    pub port_address: u16,
    pub protocol: Protocol,
    pub sequence: u8,
    /// The 512 DMX slots.
    pub data: Bytes,
    /// The frame-clock instant it was rendered and sent at.
    pub at: Instant,
    /// False when the frame went out only as a keep-alive (nothing changed).
    pub changed: bool,
    /// False when the send failed (counted in `send_errors`).
    pub ok: bool,
}

/// A caller waiting for the first frame that carries its look: when that
/// frame has been handed to the kernel, the time since `received` goes into
/// `histogram`. The lighting task knows nothing about commands or adapters;
/// the engine decides what `received` means and which series it lands in.
#[derive(Debug, Clone)]
pub struct FirstFrame {
    pub received: std::time::Instant,
    pub histogram: DurationHistogram,
}

/// Lighting counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LightingStats {
    /// Art-Net.
    pub send: SendStats,
    pub sacn: SendStats,
    /// Frame-clock ticks processed.
    pub frames: u64,
}

enum Request {
    SetLook { look: Look, fade: Duration, full: bool, first_frame: Option<FirstFrame>, reply: oneshot::Sender<Vec<String>> },
    Blackout { fade: Duration, first_frame: Option<FirstFrame>, reply: oneshot::Sender<()> },
    GrandMaster { value: f64, reply: oneshot::Sender<()> },
    ShutdownLook { look: Option<Look>, reply: oneshot::Sender<()> },
    CurrentValues { reply: oneshot::Sender<Look> },
    Stats { reply: oneshot::Sender<LightingStats> },
}

/// Cheap to clone; every clone talks to the same lighting task.
#[derive(Clone, Debug)]
pub struct LightingHandle {
    tx: mpsc::Sender<Request>,
    frames: broadcast::Sender<FrameSent>,
    health: watch::Receiver<Vec<OutputHealth>>,
    /// Output names and protocols, in `spawn`'s order (= `health`'s).
    outputs: Arc<[(String, Protocol)]>,
    /// Fixture name → index of its output.
    fixture_outputs: Arc<HashMap<String, usize>>,
    /// Where the Art-Net socket is bound (None while it cannot be).
    artnet_listen: watch::Receiver<Option<SocketAddr>>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("lighting::Request")
    }
}

impl LightingHandle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, LightingError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| LightingError::Closed)?;
        rx.await.map_err(|_| LightingError::Closed)
    }

    /// Fade the attributes named in `look` to their values over `fade`;
    /// attributes it omits keep their current target. Returns the
    /// `fixture[.attribute]` names that are not patched (and were skipped).
    pub async fn set_look(&self, look: Look, fade: Duration) -> Result<Vec<String>, LightingError> {
        self.set_look_timed(look, fade, None).await
    }

    /// [`set_look`](Self::set_look), and record the time from
    /// `first_frame.received` to the first frame rendered with the look.
    pub async fn set_look_timed(&self, look: Look, fade: Duration, first_frame: Option<FirstFrame>) -> Result<Vec<String>, LightingError> {
        self.call(|reply| Request::SetLook { look, fade, full: false, first_frame, reply }).await
    }

    /// Apply the safe look: like `set_look`, but every attribute it omits fades
    /// back to its profile default, so the room reaches a known state whatever
    /// was on before.
    pub async fn apply_safe(&self, look: Look, fade: Duration) -> Result<Vec<String>, LightingError> {
        self.call(|reply| Request::SetLook { look, fade, full: true, first_frame: None, reply }).await
    }

    /// Fade intensities (and the emitters of fixtures without one) to zero.
    pub async fn blackout(&self, fade: Duration) -> Result<(), LightingError> {
        self.blackout_timed(fade, None).await
    }

    /// [`blackout`](Self::blackout), timed like [`set_look_timed`](Self::set_look_timed).
    pub async fn blackout_timed(&self, fade: Duration, first_frame: Option<FirstFrame>) -> Result<(), LightingError> {
        self.call(|reply| Request::Blackout { fade, first_frame, reply }).await
    }

    /// Grand master 0.0–1.0; scales intensity attributes only, immediately.
    pub async fn set_grand_master(&self, value: f64) -> Result<(), LightingError> {
        self.call(|reply| Request::GrandMaster { value, reply }).await
    }

    /// What to output on shutdown: `None` keeps the last look (the default),
    /// `Some(look)` is applied (fully, as `apply_safe`, without fade) to the
    /// final frame. The daemon resolves `lighting.shutdown_scene` into this.
    pub async fn set_shutdown_look(&self, look: Option<Look>) -> Result<(), LightingError> {
        self.call(|reply| Request::ShutdownLook { look, reply }).await
    }

    /// The look as rendered now (before the grand master), normalised 0–1,
    /// with every patched attribute of every fixture.
    pub async fn current_values(&self) -> Result<Look, LightingError> {
        self.call(|reply| Request::CurrentValues { reply }).await
    }

    pub async fn stats(&self) -> Result<LightingStats, LightingError> {
        self.call(|reply| Request::Stats { reply }).await
    }

    /// Each output's health, in the order of the outputs given to [`spawn`];
    /// changes when a node goes offline or comes back.
    pub fn health(&self) -> watch::Receiver<Vec<OutputHealth>> {
        self.health.clone()
    }

    /// Where the Art-Net socket is bound, and so where nodes must send their
    /// ArtPollReply: `None` while its address cannot be bound (another
    /// program holds it) or without Art-Net outputs.
    pub fn artnet_listen_addr(&self) -> Option<SocketAddr> {
        *self.artnet_listen.borrow()
    }

    /// Output names and protocols, in the order of [`health`](Self::health).
    pub fn outputs(&self) -> &[(String, Protocol)] {
        &self.outputs
    }

    /// Why `fixture` cannot be lit now: its output's node is offline.
    pub fn fixture_offline(&self, fixture: &str) -> Option<String> {
        let &i = self.fixture_outputs.get(fixture)?;
        match &self.health.borrow().get(i)?.state {
            HealthState::Offline(reason) => Some(format!("light node `{}` offline: {reason}", self.outputs[i].0)),
            _ => None,
        }
    }

    /// Every ArtDmx the frame clock sends from now on. Slow subscribers lag
    /// (and get `RecvError::Lagged`); they never slow the clock.
    pub fn subscribe_frames(&self) -> broadcast::Receiver<FrameSent> {
        self.frames.subscribe()
    }
}

/// How the lighting output runs (the config's `[lighting]` gives all but the clock).
#[derive(Debug, Clone, PartialEq)]
pub struct LightingOptions {
    /// Frames per second per output; clamped to 1–44.
    pub frame_rate: u32,
    /// Re-send an unchanged universe at least this often.
    pub keepalive: Duration,
    /// Send ArtSync after a frame that changed several universes together.
    pub artsync: bool,
    /// sACN universe synchronization: the sync address used when a frame
    /// changes several sACN universes together (None: no sync).
    pub sacn_sync: Option<u16>,
    /// sACN source name (the studio id).
    pub source_name: String,
    /// Restore the last look from `state_dir` at start-up.
    pub restore_last_look: bool,
    /// The frame clock's timer: the OS's high-resolution timer in a booth;
    /// tests on tokio's paused clock choose `ClockSource::Tokio`.
    pub clock: ClockSource,
    /// The Art-Net socket's local address: every Art-Net packet leaves from
    /// it and the nodes' ArtPollReplies arrive on it (port 6454 on a real
    /// network). Tests use `127.0.0.1:0` and read the port back from
    /// [`LightingHandle::artnet_listen_addr`].
    pub artnet_bind: SocketAddr,
}

impl Default for LightingOptions {
    fn default() -> Self {
        LightingOptions {
            frame_rate: 44,
            keepalive: Duration::from_secs(1),
            artsync: false,
            sacn_sync: None,
            source_name: "studiod".into(),
            restore_last_look: true,
            clock: ClockSource::Os,
            artnet_bind: super::artnet::DEFAULT_BIND,
        }
    }
}

/// Start the lighting output.
///
/// Binds the Art-Net socket on `config.artnet_bind` (if another program
/// holds that address the lights still run: see [`ArtNetSender`]), restores `state_dir/last-look.json` (look and
/// grand master) when `config.restore_last_look` is set, so the very first
/// frames carry it, then runs the frame clock until `cancel` fires. On cancel it sends one
/// last frame (fades completed, or the shutdown look), flushes the persisted
/// look and returns. With `state_dir: None` nothing is persisted or restored.
pub async fn spawn(
    outputs: &[Output],
    fixtures: &[Fixture],
    options: impl Into<LightingOptions>,
    state_dir: Option<&Path>,
    cancel: CancellationToken,
) -> Result<(LightingHandle, JoinHandle<()>), LightingError> {
    let config: LightingOptions = options.into();
    let patch = Patch::new(outputs, fixtures)?;
    let mut routes = Vec::with_capacity(outputs.len());
    let (mut artnet, mut sacn) = (Vec::new(), Vec::new());
    for o in outputs {
        match o {
            Output::ArtNet(a) => {
                routes.push(Route::ArtNet(artnet.len()));
                artnet.push(a.clone());
            }
            Output::Sacn(x) => {
                routes.push(Route::Sacn(sacn.len()));
                sacn.push(x.clone());
            }
        }
    }
    let sender = ArtNetSender::bind(&artnet, config.artnet_bind).await?;
    let cid = if sacn.is_empty() {
        [0; 16]
    } else {
        let dir = state_dir.map(Path::to_path_buf);
        tokio::task::spawn_blocking(move || super::sacn::load_or_create_cid(dir.as_deref()))
            .await
            .unwrap_or_else(|_| super::sacn::load_or_create_cid(None))
    };
    let sacn_sender = SacnSender::bind(&sacn, cid, &config.source_name).await?;
    let now = Instant::now();
    let mut engine = FadeEngine::new(patch, now);

    if let (true, Some(dir)) = (config.restore_last_look, state_dir) {
        let dir_owned = dir.to_path_buf();
        match tokio::task::spawn_blocking(move || persist::load(&dir_owned)).await {
            Ok(Ok(Some(last))) => {
                engine.set_grand_master(last.grand_master);
                let unknown = engine.set_target(&last.look, Duration::ZERO, now);
                if !unknown.is_empty() {
                    tracing::info!(?unknown, "restored look names fixtures no longer patched");
                }
                tracing::info!("restored the last look");
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "ignoring the persisted last look"),
            Err(e) => tracing::warn!(error = %e, "reading the persisted last look failed"),
        }
    }

    let (tx, rx) = mpsc::channel(64);
    let unverified = NodeHealth::new(false, now).health().clone();
    let initial = routes.iter().map(|r| match r {
        Route::ArtNet(i) => sender.health(*i).cloned().unwrap_or_else(|| unverified.clone()),
        Route::Sacn(_) => unverified.clone(),
    });
    let (health, health_rx) = watch::channel(initial.collect::<Vec<_>>());
    let (artnet_listen, artnet_listen_rx) = watch::channel(sender.listen_addr());
    let names: Arc<[(String, Protocol)]> = outputs.iter().map(|o| (o.name().to_string(), o.protocol())).collect();
    let fixture_outputs: HashMap<String, usize> =
        fixtures.iter().filter_map(|f| Some((f.name.clone(), outputs.iter().position(|o| o.name() == f.artnet)?))).collect();
    let (frames, _) = broadcast::channel(1024);
    let (looks, looks_rx) = watch::channel(LastLook { look: engine.target_look(), grand_master: engine.grand_master() });
    // Its own token, cancelled by our shutdown *after* the final look is
    // published, so the flush cannot race ahead of it.
    let flush = CancellationToken::new();
    let persister = state_dir.map(|dir| tokio::spawn(persist::run_persister(dir.to_path_buf(), looks_rx, PERSIST_DEBOUNCE, flush.clone())));
    let period = Duration::from_secs_f64(1.0 / f64::from(config.frame_rate.clamp(1, MAX_FRAME_RATE)));
    let task = LightingTask {
        engine,
        sender,
        sacn: sacn_sender,
        routes,
        health,
        artnet_listen,
        rx,
        frames: frames.clone(),
        looks,
        persister,
        flush,
        cancel,
        period,
        keepalive: config.keepalive,
        artsync: config.artsync,
        sacn_sync: config.sacn_sync,
        shutdown_look: None,
        ticks: 0,
        // Reused: after the first few looks, recording allocates nothing.
        first_frame: Vec::with_capacity(8),
        port_addresses: outputs.iter().map(|o| o.universe()).collect(),
        clock: config.clock,
    };
    let join = tokio::spawn(task.run());
    let handle = LightingHandle {
        tx,
        frames,
        health: health_rx,
        outputs: names,
        fixture_outputs: Arc::new(fixture_outputs),
        artnet_listen: artnet_listen_rx,
    };
    Ok((handle, join))
}

/// Where a patch universe goes: an index into one of the senders.
#[derive(Debug, Clone, Copy)]
enum Route {
    ArtNet(usize),
    Sacn(usize),
}

struct LightingTask {
    engine: FadeEngine,
    sender: ArtNetSender,
    sacn: SacnSender,
    routes: Vec<Route>,
    health: watch::Sender<Vec<OutputHealth>>,
    artnet_listen: watch::Sender<Option<SocketAddr>>,
    rx: mpsc::Receiver<Request>,
    frames: broadcast::Sender<FrameSent>,
    looks: watch::Sender<LastLook>,
    persister: Option<JoinHandle<()>>,
    flush: CancellationToken,
    cancel: CancellationToken,
    period: Duration,
    keepalive: Duration,
    artsync: bool,
    sacn_sync: Option<u16>,
    shutdown_look: Option<Look>,
    ticks: u64,
    /// Looks accepted since the last frame whose first frame someone times.
    first_frame: Vec<FirstFrame>,
    port_addresses: Vec<u16>,
    clock: ClockSource,
}

impl LightingTask {
    async fn run(mut self) {
        let mut clock = FrameClock::new(self.clock, self.period);
        let mut handles_open = true;
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                req = self.rx.recv(), if handles_open => match req {
                    Some(req) => {
                        // A new look goes out at once instead of waiting up to a
                        // frame period for the next tick — unless that would
                        // exceed the frame rate (then the tick carries it).
                        if self.handle(req) && self.rested(Instant::now()) {
                            self.frame(false);
                            clock.reset();
                        }
                    }
                    // Every handle is gone: keep the lights on until cancelled.
                    None => handles_open = false,
                },
                _ = clock.tick() => {
                    // A tick right after a frame sent out of turn would exceed
                    // the frame rate; that frame already carried the change.
                    if self.rested_for(Instant::now(), self.period / 2) {
                        self.frame(false);
                    }
                    self.service_nodes();
                }
            }
        }
        self.shutdown().await;
    }

    /// Whether every universe's last frame is at least one period old, so an
    /// extra frame now keeps within the frame rate.
    fn rested(&self, now: Instant) -> bool {
        self.rested_for(now, self.period)
    }

    fn rested_for(&self, now: Instant, quiet: Duration) -> bool {
        (0..self.routes.len()).all(|u| match self.last_sent(u) {
            None => true,
            Some(t) => now.saturating_duration_since(t) >= quiet,
        })
    }

    fn last_sent(&self, u: usize) -> Option<Instant> {
        match self.routes[u] {
            Route::ArtNet(i) => self.sender.last_sent(i),
            Route::Sacn(i) => self.sacn.last_sent(i),
        }
    }

    /// Poll the Art-Net nodes, read their replies, publish health changes
    /// (and where the Art-Net socket is bound, should a retry have bound it).
    fn service_nodes(&mut self) {
        let changed = self.sender.service(Instant::now());
        let listen = self.sender.listen_addr();
        self.artnet_listen.send_if_modified(|l| std::mem::replace(l, listen) != listen);
        if !changed {
            return;
        }
        let sender = &self.sender;
        let routes = &self.routes;
        self.health.send_modify(|h| {
            for (slot, r) in h.iter_mut().zip(routes) {
                if let Route::ArtNet(i) = r {
                    if let Some(now) = sender.health(*i) {
                        if *slot != *now {
                            if slot.state != now.state {
                                match &now.state {
                                    HealthState::Offline(reason) => tracing::warn!(output = i, %reason, "Art-Net node offline"),
                                    _ => tracing::info!(output = i, "Art-Net node online"),
                                }
                            }
                            *slot = now.clone();
                        }
                    }
                }
            }
        });
    }

    /// Serve one request; true when it changed what the outputs should carry.
    fn handle(&mut self, req: Request) -> bool {
        let now = Instant::now();
        match req {
            Request::SetLook { look, fade, full, first_frame, reply } => {
                self.first_frame.extend(first_frame);
                let unknown = if full { self.engine.set_target_full(&look, fade, now) } else { self.engine.set_target(&look, fade, now) };
                if !unknown.is_empty() {
                    tracing::warn!(?unknown, "look names unpatched fixtures or attributes");
                }
                self.publish_target();
                let _ = reply.send(unknown);
                true
            }
            Request::Blackout { fade, first_frame, reply } => {
                self.first_frame.extend(first_frame);
                self.engine.blackout(fade, now);
                self.publish_target();
                let _ = reply.send(());
                true
            }
            Request::GrandMaster { value, reply } => {
                self.engine.set_grand_master(value);
                self.publish_target();
                let _ = reply.send(());
                true
            }
            Request::ShutdownLook { look, reply } => {
                self.shutdown_look = look;
                let _ = reply.send(());
                false
            }
            Request::CurrentValues { reply } => {
                let _ = reply.send(self.engine.current_values(now));
                false
            }
            Request::Stats { reply } => {
                let _ = reply.send(LightingStats { send: self.sender.stats(), sacn: self.sacn.stats(), frames: self.ticks });
                false
            }
        }
    }

    /// Hand the new target to the persister (which debounces the writes).
    fn publish_target(&self) {
        self.looks.send_replace(LastLook { look: self.engine.target_look(), grand_master: self.engine.grand_master() });
    }

    /// Render and send one frame. Changed universes always go out; unchanged
    /// ones when the next tick would exceed the keep-alive (nodes drop to
    /// their loss-of-signal behaviour without traffic). `force` sends all.
    fn frame(&mut self, force: bool) {
        let now = Instant::now();
        self.ticks += 1;
        let rendered = self.engine.render(now);
        let mut sent_to = Vec::new();
        let mut sacn_sent = Vec::new();
        // sACN universe synchronization when this frame changes several sACN
        // universes together: their data carries the sync address and is
        // released by one sync packet after the loop. Unlike ArtSync it is
        // per packet (sync address 0 acts at once), so other frames need none.
        let sacn_changed = self.routes.iter().zip(rendered.changed).filter(|(r, &c)| c && matches!(r, Route::Sacn(_))).count();
        let sync_address = self.sacn_sync.filter(|_| sacn_changed >= 2 && !force);
        // When this frame's first ArtDmx reached the kernel (wall clock, so
        // paused-time tests cannot distort it); only taken when someone waits.
        let mut first_out: Option<std::time::Instant> = None;
        for (u, (frame, &changed)) in rendered.frames.iter().zip(rendered.changed).enumerate() {
            let route = self.routes[u];
            let (last, keepalive) = match route {
                Route::ArtNet(i) => (self.sender.last_sent(i), self.keepalive),
                Route::Sacn(i) => (self.sacn.last_sent(i), self.keepalive.min(SACN_KEEPALIVE)),
            };
            let stale = match last {
                None => true,
                Some(t) => now.saturating_duration_since(t) + self.period > keepalive,
            };
            if !(force || changed || stale) {
                continue;
            }
            let (sent, protocol) = match route {
                Route::ArtNet(i) => (self.sender.send_dmx(i, frame, now), Protocol::ArtNet),
                Route::Sacn(i) => (self.sacn.send_dmx(i, frame, now, sync_address.unwrap_or(0), 0), Protocol::Sacn),
            };
            let Some(sent) = sent else {
                continue;
            };
            match route {
                Route::ArtNet(i) => sent_to.push(i),
                Route::Sacn(i) => sacn_sent.push(i),
            }
            if !self.first_frame.is_empty() && first_out.is_none() {
                first_out = Some(std::time::Instant::now());
            }
            // Copying the frame costs an allocation; only when someone listens.
            if self.frames.receiver_count() > 0 {
                let _ = self.frames.send(FrameSent {
                    output: u,
                    port_address: self.port_addresses[u],
                    protocol,
                    sequence: sent.sequence,
                    data: Bytes::copy_from_slice(frame),
                    at: now,
                    changed,
                    ok: sent.ok,
                });
            }
        }
        // ArtSync makes the universes of one frame change on the same DMX
        // refresh. It follows *every* frame that sent ArtDmx, not only those
        // that changed several universes: once a node has seen one ArtSync it
        // holds all ArtDmx until the next (falling back only after 4 s), so a
        // later single-universe change without a sync would stall.
        if self.artsync && !sent_to.is_empty() {
            self.sender.send_sync(sent_to, now);
        }
        if let Some(address) = sync_address {
            self.sacn.send_sync(sacn_sent, address, now);
        }
        // This frame is the first rendered with every look accepted since the
        // last one (the first step of a fade). A look that changes nothing on
        // the wire counts too (at the end of the frame): the output already
        // carries it.
        if !self.first_frame.is_empty() {
            let sent = first_out.unwrap_or_else(std::time::Instant::now);
            for f in self.first_frame.drain(..) {
                f.histogram.observe(sent.saturating_duration_since(f.received));
            }
        }
    }

    /// E1.31 §6.7.1: a source that stops sends three packets with the
    /// Stream_Terminated bit, so receivers let go at once instead of after
    /// the 2.5 s data-loss timeout. They carry the final look.
    fn terminate_sacn(&mut self, now: Instant) {
        if self.sacn.universe_count() == 0 {
            return;
        }
        let rendered = self.engine.render(now);
        for _ in 0..3 {
            for (u, frame) in rendered.frames.iter().enumerate() {
                if let Route::Sacn(i) = self.routes[u] {
                    self.sacn.send_dmx(i, frame, now, 0, OPT_STREAM_TERMINATED);
                }
            }
        }
    }

    async fn shutdown(mut self) {
        let now = Instant::now();
        match self.shutdown_look.take() {
            Some(look) => {
                self.engine.set_target_full(&look, Duration::ZERO, now);
            }
            // Keep the last look: finish running fades so the nodes hold the
            // look that was asked for, the same one last-look.json restores.
            None => self.engine.finish_fades(now),
        }
        self.publish_target();
        self.frame(true);
        self.terminate_sacn(now);
        tracing::info!(outputs = self.port_addresses.len(), "lighting stopped; nodes hold the final look");
        // Now let the persister flush the final look and wait for the write.
        self.flush.cancel();
        // Bounded: a hung disk must not hang the daemon's shutdown.
        if let Some(p) = self.persister.take() {
            if tokio::time::timeout(Duration::from_secs(5), p).await.is_err() {
                tracing::warn!("last look not persisted within 5 s of shutdown");
            }
        }
    }
}
