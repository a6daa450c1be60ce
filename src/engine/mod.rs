//! The engine: the one place commands are executed. Adapters (MQTT, HTTP,
//! CLI) hold an [`EngineHandle`], send it [`Request`]s and get exactly one
//! [`Outcome`] back; they watch [`BoothState`] and receive [`Event`]s.
//!
//! Architecture Invariant: adapters never touch devices; only the engine
//! (and the device actors it owns handles to) does.
//!
//! A command goes plan ([`plan`]: pure, config + command → device steps or
//! a refusal) → start ([`start`]: the steps on the device handles, in order)
//! → collect ([`collect`]: pending parts awaited within their limits, folded
//! into one outcome); [`actor`] is the task that runs them in order.

mod actor;
mod collect;
mod devices;
mod error;
mod plan;
mod reply;
mod schedule;
mod start;

pub use actor::{Engine, Respawn};
pub use devices::DeviceHandles;
pub use error::{DeviceError, RespawnError};
pub use schedule::{CAPACITY as SCHEDULE_CAPACITY, HORIZON as SCHEDULE_HORIZON};

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::command::{Command, CommandError, DeviceResult, ErrorCode, Origin, Outcome};

/// A command with its origin and the caller's id (for logs and events).
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Option<String>,
    pub origin: Origin,
    pub command: Command,
    /// When the adapter received the command (MQTT: the publish read off the
    /// connection; HTTP: the request), so the engine can measure what the
    /// caller waits for — receipt to first light frame — without knowing
    /// any adapter's protocol.
    pub received: Instant,
}

impl Request {
    /// A request received now (for callers that have no earlier receipt time).
    pub fn new(id: Option<String>, origin: Origin, command: Command) -> Request {
        Request { id, origin, command, received: Instant::now() }
    }
}

/// What the booth looks like now; published retained on MQTT `state` and
/// pushed to the tablet pages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BoothState {
    /// The last scene applied (successfully or partly).
    pub scene: Option<String>,
    pub scene_label: Option<String>,
    /// Opaque slot info from the booking backend, echoed.
    pub slot: Option<serde_json::Value>,
    pub applied_at: Option<SystemTime>,
    /// Scenes scheduled with `at` that have not started yet, earliest first.
    pub schedule: Vec<PendingScene>,
    pub devices: BTreeMap<String, DeviceHealth>,
    /// Which scene set this booth holds ([`Config::scenes_hash`](crate::config::model::Config::scenes_hash)).
    pub scenes_hash: String,
    /// Whether the OS reports its clock synchronised (`None`: unknown); `at` depends on it.
    pub clock_synced: Option<bool>,
    /// The last scene that did not fully apply (from any origin, MQTT
    /// included), until a later scene succeeds; a superseded scene is not a
    /// failure. Pages opened or reloaded later still see it.
    pub last_failure: Option<SceneFailure>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SceneFailure {
    pub scene: String,
    pub origin: Origin,
    pub at: SystemTime,
    /// Devices that did not follow, with the reason (cancelled moves left out).
    pub failed: BTreeMap<String, String>,
}

impl SceneFailure {
    /// The failure an apply's outcome records: `Some` when it failed and was
    /// not superseded; `None` for a success. (Superseded: see [`Event::scene_applied`].)
    pub fn of(scene: &str, origin: Origin, out: &Outcome) -> Option<SceneFailure> {
        match Event::scene_applied(scene, origin, None, out) {
            Event::SceneApplied { ok: false, superseded: false, failed, .. } => {
                Some(SceneFailure { scene: scene.to_string(), origin, at: SystemTime::now(), failed })
            }
            _ => None,
        }
    }
}

impl BoothState {
    /// The next scheduled scene, if any.
    pub fn pending(&self) -> Option<&PendingScene> {
        self.schedule.first()
    }
}

/// A scheduled scene as the state shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingScene {
    /// The id of the command that scheduled it (`cancel` takes it).
    pub id: String,
    pub scene: String,
    pub at: SystemTime,
    pub slot: Option<serde_json::Value>,
    pub origin: Origin,
}

/// The second outcome of a scheduled command: what happened when its time
/// came (or why it never ran: replaced, cancelled). Adapters send it to the
/// caller that scheduled it (MQTT: a second `reply` with the same id).
#[derive(Debug, Clone, PartialEq)]
pub struct Later {
    pub id: String,
    pub origin: Origin,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Camera,
    Fixture,
    ArtNet,
    Sacn,
    Osc,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Camera => "camera",
            DeviceKind::Fixture => "fixture",
            DeviceKind::ArtNet => "artnet",
            DeviceKind::Sacn => "sacn",
            DeviceKind::Osc => "osc",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceHealth {
    pub kind: DeviceKind,
    /// False only when the device is known to have failed (offline); an
    /// unverified device is not offline.
    pub online: bool,
    /// Whether `online` was verified (an answer came); false for outputs
    /// and peers whose protocol never answers (sACN, OSC, Art-Net without
    /// poll), which are shown as `unverified`, never as online.
    pub verified: bool,
    /// Why it is offline, or the last error seen, in plain language.
    pub error: Option<String>,
    pub since: SystemTime,
    /// What an Art-Net node said about itself (ArtPollReply).
    pub node: Option<crate::lighting::NodeInfo>,
    /// Cameras: vendor, model and ROM version as read at connect.
    pub identity: Option<String>,
}

/// The three health states shown everywhere (CONTRACT §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Online,
    Offline,
    Unverified,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Online => "online",
            HealthStatus::Offline => "offline",
            HealthStatus::Unverified => "unverified",
        }
    }
}

impl DeviceHealth {
    /// A verified health (cameras, polled Art-Net nodes).
    pub fn verified(kind: DeviceKind, online: bool, error: Option<String>, since: SystemTime) -> DeviceHealth {
        DeviceHealth { kind, online, verified: true, error, since, node: None, identity: None }
    }

    /// A device nothing can verify.
    pub fn unverified(kind: DeviceKind, since: SystemTime) -> DeviceHealth {
        DeviceHealth { kind, online: true, verified: false, error: None, since, node: None, identity: None }
    }

    pub fn status(&self) -> HealthStatus {
        match (self.online, self.verified) {
            (false, _) => HealthStatus::Offline,
            (true, true) => HealthStatus::Online,
            (true, false) => HealthStatus::Unverified,
        }
    }

    /// `online` as the wire shows it: null when unverified.
    pub fn online_json(&self) -> Option<bool> {
        match self.status() {
            HealthStatus::Unverified => None,
            s => Some(s == HealthStatus::Online),
        }
    }
}

/// Things worth telling the backend and the pages about as they happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    DeviceOnline {
        device: String,
    },
    DeviceOffline {
        device: String,
        reason: String,
    },
    /// A scene applied by someone other than the MQTT backend (tablet, CLI, start-up).
    SceneApplied {
        scene: String,
        origin: Origin,
        ok: bool,
        id: Option<String>,
        /// Devices that did not follow the scene, with the reason (not the
        /// ones a newer scene took over: those read "cancelled" and are left out).
        failed: BTreeMap<String, String>,
        /// A newer scene replaced this one before it finished: not a failure.
        superseded: bool,
    },
}

impl Event {
    /// The `SceneApplied` event for an apply's outcome.
    pub fn scene_applied(scene: &str, origin: Origin, id: Option<String>, out: &Outcome) -> Event {
        let cancelled = |d: &DeviceResult| d.error.as_deref() == Some(CANCELLED);
        let failed: BTreeMap<String, String> = out
            .devices
            .iter()
            .filter(|(_, d)| !d.ok && !cancelled(d))
            .map(|(n, d)| (n.clone(), d.error.clone().unwrap_or_else(|| "failed".into())))
            .collect();
        let code = out.error.as_ref().map(|e| e.code);
        let superseded = code == Some(ErrorCode::Superseded) || (!out.ok && failed.is_empty() && out.devices.values().any(cancelled));
        Event::SceneApplied { scene: scene.to_string(), origin, ok: out.ok, id, failed, superseded }
    }
}

impl Event {
    fn is_superseded(&self) -> bool {
        matches!(self, Event::SceneApplied { superseded: true, .. })
    }
}

/// How a device part replaced by a newer scene reads in a reply.
pub const CANCELLED: &str = "cancelled";

/// Capacity of the engine's command queue: beyond this, commands get `busy`.
pub const QUEUE_CAPACITY: usize = 64;

type Job = (Request, oneshot::Sender<Outcome>);

/// Room for every scheduled command's second outcome at once (a restart
/// with the whole schedule overdue), so a listener that keeps up loses none.
const LATER_CAPACITY: usize = schedule::CAPACITY + 64;

/// `busy` (CONTRACT §5's code for "not now, send it again"), not stored
/// under its id, so the backend's retry after the restart is applied.
fn shutting_down(cmd: &Command) -> Outcome {
    Outcome::refused(cmd, CommandError::new(ErrorCode::Busy, "studiod is shutting down; try again"))
}

/// The adapters' way in. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Job>,
    state: watch::Receiver<BoothState>,
    events: broadcast::Sender<Event>,
    later: broadcast::Sender<Later>,
}

impl EngineHandle {
    /// Build a handle and the receiving ends for the engine task (or a fake in tests).
    pub fn channel(initial: BoothState) -> (EngineHandle, EngineInbox) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (state_tx, state) = watch::channel(initial);
        let (events, _) = broadcast::channel(256);
        let (later, _) = broadcast::channel(LATER_CAPACITY);
        (EngineHandle { tx, state, events: events.clone(), later: later.clone() }, EngineInbox { rx, state: state_tx, events, later })
    }

    /// Execute a command and wait for its one outcome. When the queue is
    /// full the command is refused with `busy` at once (never queued unboundedly).
    pub async fn execute(&self, req: Request) -> Outcome {
        let cmd = req.command.clone();
        let (tx, rx) = oneshot::channel();
        match self.tx.try_send((req, tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Outcome::refused(&cmd, CommandError::new(ErrorCode::Busy, "studiod is busy; try again"))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return shutting_down(&cmd),
        }
        // Dropped unanswered: the engine stopped before taking it. Nothing
        // was applied, so, as for a closed queue, the caller may send it again.
        rx.await.unwrap_or_else(|_| shutting_down(&cmd))
    }

    pub fn state(&self) -> watch::Receiver<BoothState> {
        self.state.clone()
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Scheduled commands' second outcomes. Subscribe before the engine runs
    /// to hear those a restart finds overdue.
    pub fn later(&self) -> broadcast::Receiver<Later> {
        self.later.subscribe()
    }
}

/// The engine side of an [`EngineHandle`].
pub struct EngineInbox {
    pub rx: mpsc::Receiver<Job>,
    pub state: watch::Sender<BoothState>,
    pub events: broadcast::Sender<Event>,
    pub later: broadcast::Sender<Later>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scene_out(devices: &[(&str, DeviceResult)]) -> Outcome {
        let cmd = Command::ApplyScene { scene: "flash-sale".into(), fade: None, at: None, slot: None };
        Outcome::from_devices(&cmd, devices.iter().map(|(n, d)| (n.to_string(), d.clone())).collect(), Duration::ZERO)
    }

    /// A command the engine never answers, because it stopped first or had
    /// already stopped, is refused as `busy`: nothing applied, send again.
    #[tokio::test]
    async fn a_command_caught_by_shutdown_is_refused_as_busy() {
        let (handle, inbox) = EngineHandle::channel(BoothState::default());
        let taken = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.execute(Request::new(None, Origin::Mqtt, Command::Status)).await })
        };
        let mut rx = inbox.rx;
        let (_, answer) = rx.recv().await.unwrap();
        drop(answer);
        let out = taken.await.unwrap();
        assert_eq!(out.error.as_ref().map(|e| e.code), Some(ErrorCode::Busy), "{out:?}");
        drop(rx);
        let out = handle.execute(Request::new(None, Origin::Mqtt, Command::Status)).await;
        assert_eq!(out.error.as_ref().map(|e| e.code), Some(ErrorCode::Busy), "{out:?}");
    }

    /// The names `state`, `/api/devices` and the pages show (CONTRACT §5).
    #[test]
    fn device_kinds_and_health_read_as_the_contract_names_them() {
        let kinds = [DeviceKind::Camera, DeviceKind::Fixture, DeviceKind::ArtNet, DeviceKind::Sacn, DeviceKind::Osc];
        assert_eq!(kinds.map(DeviceKind::as_str), ["camera", "fixture", "artnet", "sacn", "osc"]);
        let t = SystemTime::UNIX_EPOCH;
        let health = [
            DeviceHealth::verified(DeviceKind::Camera, true, None, t),
            DeviceHealth::verified(DeviceKind::ArtNet, false, Some("never answered ArtPoll".into()), t),
            DeviceHealth::unverified(DeviceKind::Sacn, t),
        ];
        // `online` is null when nothing can verify the device.
        assert_eq!(
            health.map(|h| (h.status().as_str(), h.online_json())),
            [("online", Some(true)), ("offline", Some(false)), ("unverified", None)]
        );
    }

    #[test]
    fn a_scene_whose_only_failures_are_cancelled_moves_was_superseded() {
        let out = scene_out(&[("front", DeviceResult::failed(CANCELLED)), ("key", DeviceResult::ok())]);
        let Event::SceneApplied { ok, failed, superseded, .. } = Event::scene_applied("flash-sale", Origin::Http, None, &out) else {
            panic!()
        };
        assert!(!ok && superseded && failed.is_empty());
    }

    #[test]
    fn real_failures_are_named_and_not_superseded() {
        let out = scene_out(&[
            ("front", DeviceResult::failed(CANCELLED)),
            ("side", DeviceResult::failed("camera offline: no ACK within 200 ms")),
            ("key", DeviceResult::ok()),
        ]);
        let Event::SceneApplied { ok, failed, superseded, .. } = Event::scene_applied("flash-sale", Origin::Http, None, &out) else {
            panic!()
        };
        assert!(!ok && !superseded);
        assert_eq!(failed, BTreeMap::from([("side".to_string(), "camera offline: no ACK within 200 ms".to_string())]));
        let ok_out = scene_out(&[("key", DeviceResult::ok())]);
        assert!(matches!(Event::scene_applied("x", Origin::Cli, None, &ok_out), Event::SceneApplied { ok: true, superseded: false, .. }));
    }
}
