//! studiod's simulator: a virtual VISCA camera chain on a pseudo-terminal.
//!
//! [`VirtualChain::spawn`] creates a pty pair, points a symlink at the slave
//! device and serves up to 7 simulated cameras on the master side, speaking
//! raw VISCA bytes. The daemon (or a test) opens the symlink like a real
//! serial port. The parser and encoder here are written straight from the
//! Sony VISCA tables and deliberately share nothing with studiod's `visca`
//! codec, so the simulator checks that codec from the outside. This crate
//! depends on no studiod crate (the compiler enforces it; `tests/architecture.rs`
//! at the workspace root checks it stays that way).
//!
//! # Bus
//! The daisy chain is modelled as a bus: every packet is seen by all cameras.
//! A fresh chain (and a chain after [`VirtualChain::replug`]) is unaddressed:
//! only `88 30 0p FF` (AddressSet) and `88 01 00 01 FF` (IF_Clear) get an
//! answer until AddressSet has assigned addresses p, p+1, … in chain order;
//! the chain then answers `88 30 0w FF` (w = p + cameras). Packets for an
//! unknown address are ignored. Other broadcasts (`88 …`) execute on every
//! addressed camera without any reply. Bytes outside a packet without bit 7
//! set are dropped; a packet longer than 16 bytes gets `z0 60 01 FF`;
//! unknown or malformed commands get `z0 60 02 FF`.
//!
//! # Sockets
//! Each camera has sockets 1 and 2. Every non-inquiry command takes a free
//! socket: `z0 4y FF` (ACK) now, `z0 5y FF` (completion) when done. Quick
//! commands (power, focus mode, memory set/reset, continuous drives and
//! stops) complete at once; absolute/relative/home/reset pan-tilt moves,
//! zoom/focus direct and memory recall complete when the motion ends.
//! With no free socket the answer is `z0 60 03 FF` (buffer full).
//! A new command on a motion channel already owned by a running job
//! (pan-tilt; zoom; focus; recall owns pan-tilt + zoom) **retargets**: the
//! old job gets `z0 6y 04 FF` (cancelled) and its socket is reused, so a
//! retarget never hits buffer-full. Command Cancel `8x 2y FF` stops the
//! job's motion and answers `z0 6y 04 FF`, or `z0 6y 05 FF` if the socket is
//! idle. IF_Clear drops all jobs *without* replies and stops all motion.
//! Inquiries (`8x 09 …`) answer `z0 50 … FF` directly. While powered off,
//! everything but power, cancel, IF_Clear and inquiries is answered
//! `z0 60 41 FF`; powering off cancels running moves (`z0 6y 04 FF`).
//! ACK-less errors use y = 0 (no socket was allocated).
//!
//! # Motion
//! Positions move linearly in time and inquiries report the interpolated
//! value. Pan/tilt: 60 VISCA units/s per speed step (pan speed 1–0x18, tilt
//! 1–0x14, out-of-range speeds clamped), so 0x18 ≈ 1440 units/s. Zoom and
//! focus: 2048 units/s × (p + 1) for variable speed p (standard = p 3);
//! direct zoom/focus and preset recall use p = 7 (full zoom range in 1 s),
//! recall pans/tilts at top speed. Targets are clamped to
//! [`ChainOptions::pan_limits`]/`tilt_limits`, zoom 0–0x4000, focus
//! 0x1000–0xC000. All durations are multiplied by
//! [`ChainOptions::move_time_scale`]; [`ChainOptions::instant_moves`] makes
//! them zero. An unset memory recalls home (0, 0, zoom 0).
//!
//! # Wire pacing
//! With [`ChainOptions::baud`] set, received bytes become visible to the
//! cameras one wire time (10 bits, 8N1) after the previous one, and every
//! reply is written only after its own wire time, as if the line ran at that
//! rate. Without it, replies go out as fast as the pty allows.
//!
//! # Faults (per camera, switchable at runtime)
//! See [`Fault`]. Faults only affect a camera's own answers: AddressSet and
//! broadcast IF_Clear are relayed by every camera regardless.
//!
//! Positions and timers use tokio time, but the pty is real I/O, so tests
//! should run in real time.
//!
//! Besides the chain: [`ip`] (one networked camera, VISCA over UDP with
//! Sony's header or raw VISCA over TCP, with network faults), [`monitor`] (Art-Net decoder and OSC receiver for
//! loopback) and [`booth`] (the example booth with all its peers simulated).
//! The `visca-sim` and `artnet-monitor` tools are this crate's binaries.
#![deny(unsafe_code)]

pub mod booth;
mod camera;
mod engine;
pub mod ip;
pub mod monitor;
pub mod proto;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use camera::{FOCUS_MAX, FOCUS_MIN, MAX_PAN_SPEED, MAX_TILT_SPEED, PAN_TILT_UNITS_PER_STEP, ZOOM_MAX, ZOOM_UNITS_PER_STEP};
pub use engine::wire_time;
use engine::{Control, Engine, Inner, Shared};

/// Longest chain VISCA addressing allows.
pub const MAX_CAMERAS: usize = 7;

/// How a camera misbehaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Logs packets but neither executes nor answers anything (inquiries
    /// included), like a hung camera.
    Silent,
    /// Answers normally, but replies are often preceded by 1–4 junk bytes
    /// (0x00–0x7F, never a header) and sometimes followed by an 8–24 byte
    /// junk burst ending in `FF`.
    Garbage,
    /// Every command and inquiry is answered `z0 60 code FF` without ACK
    /// and not executed.
    ErrorReply(u8),
    /// ACKs are sent this long after the command; completion never precedes
    /// its ACK.
    SlowAck(Duration),
    /// No ACKs; completions and errors still come.
    CompletionWithoutAck,
}

/// A stored memory (preset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Preset {
    pub pan: i32,
    pub tilt: i32,
    pub zoom: u16,
}

/// Snapshot of one camera, positions interpolated at the time of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraState {
    /// 1-based position in the chain.
    pub index: usize,
    /// Address from the last AddressSet, `None` until then (and after replug).
    pub address: Option<u8>,
    pub fault: Fault,
    pub power: bool,
    pub pan: i32,
    pub tilt: i32,
    pub zoom: u16,
    pub focus: u16,
    pub focus_auto: bool,
    pub moving: bool,
    pub busy_sockets: [bool; 2],
    /// Memory byte → stored position.
    pub presets: BTreeMap<u8, Preset>,
    /// How many memory recalls were executed.
    pub presets_recalled: u64,
    /// Last packet received by this camera (header through `FF`).
    pub last_command: Option<Vec<u8>>,
}

/// Chain configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOptions {
    /// Width of pan/tilt position fields: 4 (`0p 0p 0p 0p`) or 5 nibbles.
    pub pan_tilt_nibbles: usize,
    /// Multiplies every move duration (0.1 = ten times faster).
    pub move_time_scale: f64,
    /// Moves finish at once (still ACK then completion).
    pub instant_moves: bool,
    /// Pace the line as if it ran at this baud rate (8N1).
    pub baud: Option<u32>,
    /// Mechanical limits in VISCA units (defaults: EVI-D70-like ±170°,
    /// −30°…+90°).
    pub pan_limits: (i32, i32),
    pub tilt_limits: (i32, i32),
    /// Model code and ROM version in the version inquiry answer.
    pub model_code: u16,
    pub rom_version: u16,
    /// Seed for the `Garbage` junk generator.
    pub seed: u64,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            pan_tilt_nibbles: 4,
            move_time_scale: 1.0,
            instant_moves: false,
            baud: None,
            pan_limits: (-0x08DB, 0x08DB),
            tilt_limits: (-0x0190, 0x04B0),
            model_code: 0x0402,
            rom_version: 0x0100,
            seed: 0x5EED,
        }
    }
}

/// Re-reads `read` on every simulator step (`changed`) and at least every
/// 10 ms (positions change between steps while moving) until `pred` holds.
pub(crate) async fn wait_for_state(
    mut changed: watch::Receiver<u64>,
    read: impl Fn() -> CameraState,
    pred: impl Fn(&CameraState) -> bool,
    timeout: Duration,
) -> Result<CameraState, SimError> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = read();
        if pred(&s) {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(SimError::Timeout(timeout));
        }
        let tick = (Instant::now() + Duration::from_millis(10)).min(deadline);
        tokio::select! {
            r = changed.changed() => if r.is_err() { return Err(SimError::Stopped) },
            _ = tokio::time::sleep_until(tick) => {}
        }
    }
}

/// Errors of the observer helpers.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("condition not met within {0:?}")]
    Timeout(Duration),
    #[error("simulator task has stopped")]
    Stopped,
}

/// Handle to a running virtual chain. Dropping it stops the task and removes
/// the symlink.
pub struct VirtualChain {
    link: PathBuf,
    shared: Arc<Shared>,
    ctl: mpsc::UnboundedSender<Control>,
    task: Option<JoinHandle<()>>,
}

impl VirtualChain {
    /// Starts a chain of `cameras` (1–7) cameras whose port appears at `path`
    /// (a symlink to the pty slave, replacing an existing symlink). Must be
    /// called inside a tokio runtime.
    pub fn spawn(path: &Path, cameras: usize, opts: ChainOptions) -> io::Result<VirtualChain> {
        if !(1..=MAX_CAMERAS).contains(&cameras) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a VISCA chain has 1–7 cameras"));
        }
        if !(4..=5).contains(&opts.pan_tilt_nibbles) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "pan_tilt_nibbles must be 4 or 5"));
        }
        let now = Instant::now();
        let inner = Inner {
            cams: (1..=cameras).map(|i| camera::Camera::new(i, now)).collect(),
            out: camera::Outbox::new(opts.seed),
            opts,
            line_log: Vec::new(),
            device: None,
        };
        let shared = Arc::new(Shared { inner: Mutex::new(inner), changed: watch::channel(0).0 });
        let (ctl, rx) = mpsc::unbounded_channel();
        let engine = Engine::start(shared.clone(), path.to_path_buf(), rx)?;
        let task = tokio::spawn(engine.run());
        Ok(VirtualChain { link: path.to_path_buf(), shared, ctl, task: Some(task) })
    }

    /// The symlink the daemon opens.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// The current pty slave device (`None` while unplugged).
    pub fn device(&self) -> Option<PathBuf> {
        self.shared.lock().device.clone()
    }

    pub fn cameras(&self) -> usize {
        self.shared.lock().cams.len()
    }

    fn check(&self, cam: usize) {
        let n = self.cameras();
        assert!((1..=n).contains(&cam), "camera {cam} out of range 1..={n}");
    }

    /// Switches a camera's fault mode. `cam` is the 1-based chain position
    /// (equal to its address after `88 30 01 FF`). Panics if out of range.
    pub fn set_fault(&self, cam: usize, fault: Fault) {
        self.check(cam);
        self.shared.lock().cams[cam - 1].fault = fault;
        self.shared.bump();
    }

    /// Camera `cam` holds `preset` in memory byte `memory` from now on, as a
    /// calibrated booth's camera does before studiod starts (presets live in
    /// the camera, across power cycles). Panics if `cam` is out of range.
    pub fn store_preset(&self, cam: usize, memory: u8, preset: Preset) {
        self.check(cam);
        self.shared.lock().cams[cam - 1].remember(memory, preset);
        self.shared.bump();
    }

    /// Snapshot of camera `cam` (1-based chain position). Panics if out of range.
    pub fn camera_state(&self, cam: usize) -> CameraState {
        self.check(cam);
        self.shared.lock().cams[cam - 1].state(Instant::now())
    }

    /// Raw packets received by camera `cam` (including broadcasts), in order.
    pub fn packets(&self, cam: usize) -> Vec<Vec<u8>> {
        self.check(cam);
        self.shared.lock().cams[cam - 1].log.clone()
    }

    /// Every packet seen on the line, whoever it was for.
    pub fn line_log(&self) -> Vec<Vec<u8>> {
        self.shared.lock().line_log.clone()
    }

    /// A counter bumped on every simulator step (packet, timer, fault change).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Waits until `pred` holds for camera `cam`. Re-checks on every
    /// simulator step and at least every 10 ms (positions change between
    /// steps while moving).
    pub async fn wait_until(&self, cam: usize, pred: impl Fn(&CameraState) -> bool, timeout: Duration) -> Result<CameraState, SimError> {
        wait_for_state(self.subscribe(), || self.camera_state(cam), pred, timeout).await
    }

    /// Writes raw bytes to the daemon as if they came down the line.
    pub fn inject_garbage(&self, bytes: &[u8]) {
        let _ = self.ctl.send(Control::Inject(bytes.to_vec()));
    }

    /// Every addressed camera sends Network Change `z0 38 FF`.
    pub fn network_change(&self) {
        let _ = self.ctl.send(Control::NetworkChange);
    }

    /// Pulls the cable: closes master and slave and removes the symlink.
    pub async fn unplug(&self) {
        let (tx, rx) = oneshot::channel();
        if self.ctl.send(Control::Unplug(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Plugs back in: a new pty at the same symlink. Cameras forget their
    /// address (and in-flight jobs) but keep presets and positions.
    pub async fn replug(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.ctl.send(Control::Replug(tx)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Stops the task, closes the pty and removes the symlink.
    pub async fn shutdown(mut self) {
        let (tx, rx) = oneshot::channel();
        if self.ctl.send(Control::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "simulator task has stopped")
}

impl Drop for VirtualChain {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        engine::remove_symlink(&self.link);
    }
}
