//! The one command API. MQTT, HTTP and the CLI are thin adapters that build
//! a [`Command`], hand it to the engine and turn the [`Outcome`] back into
//! their own format. Only adapters know JSON shapes or topics.
//!
//! Architecture Invariant: every command produces exactly one `Outcome`,
//! whatever happens to the devices it touches.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Everything studiod can be asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Apply a sell scene; `fade` overrides the scene's own fade, `at` delays
    /// it to an instant (slot start), `slot` is opaque and echoed in state.
    ApplyScene {
        scene: String,
        fade: Option<Duration>,
        at: Option<SystemTime>,
        slot: Option<serde_json::Value>,
    },
    /// All lights to zero (cameras untouched).
    Blackout {
        fade: Option<Duration>,
    },
    RecallPreset {
        camera: String,
        preset: u8,
    },
    StorePreset {
        camera: String,
        preset: u8,
    },
    /// Republish state now.
    Status,
    /// Re-read config, profiles and scenes; swap in atomically if valid.
    Reload,
    /// Validate a scene's TOML, then persist it atomically.
    PutScene {
        scene: String,
        toml: String,
    },
    DeleteScene {
        scene: String,
    },
    /// Withdraw a scheduled scene by its command id.
    Cancel {
        target: String,
    },
    /// Technician: drive pan/tilt at a signed speed fraction (-1.0–1.0) until `JogStop`.
    Jog {
        camera: String,
        pan: f64,
        tilt: f64,
    },
    JogStop {
        camera: String,
    },
    /// Technician: zoom at a signed speed fraction (-1.0 wide … 1.0 tele), 0 stops.
    Zoom {
        camera: String,
        speed: f64,
    },
    /// Technician: set a fixture's attributes live, in scene units
    /// (`intensity` 0–1, `cct` kelvin, `color` "#rrggbb", other channels 0–1).
    SetLight {
        fixture: String,
        values: BTreeMap<String, LightValue>,
        fade: Option<Duration>,
    },
}

impl Command {
    /// The action name used on the wire (CONTRACT §5).
    pub fn action(&self) -> &'static str {
        match self {
            Command::ApplyScene { .. } => "apply_scene",
            Command::Blackout { .. } => "blackout",
            Command::RecallPreset { .. } => "recall_preset",
            Command::StorePreset { .. } => "store_preset",
            Command::Status => "status",
            Command::Reload => "reload",
            Command::PutScene { .. } => "put_scene",
            Command::DeleteScene { .. } => "delete_scene",
            Command::Cancel { .. } => "cancel",
            Command::Jog { .. } => "jog",
            Command::JogStop { .. } => "jog_stop",
            Command::Zoom { .. } => "zoom",
            Command::SetLight { .. } => "set_light",
        }
    }

    /// The scene a command is about, echoed in replies.
    pub fn scene(&self) -> Option<&str> {
        match self {
            Command::ApplyScene { scene, .. } | Command::PutScene { scene, .. } | Command::DeleteScene { scene } => Some(scene),
            _ => None,
        }
    }
}

/// A light attribute value as a person writes it: a number or a colour string.
#[derive(Debug, Clone, PartialEq)]
pub enum LightValue {
    Number(f64),
    Text(String),
}

/// Who sent a command (for events and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Mqtt,
    Http,
    Cli,
    Startup,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Mqtt => "mqtt",
            Origin::Http => "http",
            Origin::Cli => "cli",
            Origin::Startup => "startup",
        }
    }
}

/// Error codes of CONTRACT §5, plus our own: `superseded`, `cancelled`,
/// `config_invalid` and `internal` (our own faults, e.g. a full disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidJson,
    InvalidCommand,
    UnknownAction,
    UnknownScene,
    UnknownDevice,
    SceneInvalid,
    /// A `reload` found studiod.toml or a device profile invalid (the running
    /// configuration stays in force). Problems only in scene files are `scene_invalid`.
    ConfigInvalid,
    DeviceFailed,
    Busy,
    /// A scheduled scene replaced by a newer one (same `at` or `slot`)
    /// before its time came, or a scene cut short by a newer one.
    Superseded,
    /// A scheduled scene withdrawn by `cancel`.
    Cancelled,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidCommand => "invalid_command",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::UnknownScene => "unknown_scene",
            ErrorCode::UnknownDevice => "unknown_device",
            ErrorCode::SceneInvalid => "scene_invalid",
            ErrorCode::ConfigInvalid => "config_invalid",
            ErrorCode::DeviceFailed => "device_failed",
            ErrorCode::Busy => "busy",
            ErrorCode::Superseded => "superseded",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError { code, message: message.into() }
    }
}

/// Per-device result of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceResult {
    pub ok: bool,
    /// Plain-language reason when `ok` is false, e.g. "camera offline: no ACK within 200 ms".
    pub error: Option<String>,
}

impl DeviceResult {
    pub fn ok() -> Self {
        DeviceResult { ok: true, error: None }
    }
    pub fn failed(e: impl ToString) -> Self {
        DeviceResult { ok: false, error: Some(e.to_string()) }
    }
}

/// The one result of one command.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub action: &'static str,
    pub scene: Option<String>,
    /// True only when the command was valid and every device succeeded.
    pub ok: bool,
    pub devices: BTreeMap<String, DeviceResult>,
    pub error: Option<CommandError>,
    pub duration: Duration,
    /// Extra data some commands return (e.g. `status`).
    pub data: Option<serde_json::Value>,
    /// Set on the acknowledgement of a scene scheduled for this instant
    /// (its result follows as a second outcome when it runs).
    pub scheduled: Option<SystemTime>,
    /// For a scene that had an `at`: how long after it the scene started.
    pub late: Option<Duration>,
}

impl Outcome {
    /// A command refused before touching anything.
    pub fn refused(cmd: &Command, error: CommandError) -> Outcome {
        Outcome {
            action: cmd.action(),
            scene: cmd.scene().map(str::to_string),
            ok: false,
            devices: BTreeMap::new(),
            error: Some(error),
            duration: Duration::ZERO,
            data: None,
            scheduled: None,
            late: None,
        }
    }

    /// Build from per-device results: ok only if all succeeded.
    pub fn from_devices(cmd: &Command, devices: BTreeMap<String, DeviceResult>, duration: Duration) -> Outcome {
        let failed = devices.values().filter(|d| !d.ok).count();
        let error =
            (failed > 0).then(|| CommandError::new(ErrorCode::DeviceFailed, format!("{failed} of {} devices failed", devices.len())));
        Outcome {
            action: cmd.action(),
            scene: cmd.scene().map(str::to_string),
            ok: failed == 0,
            devices,
            error,
            duration,
            data: None,
            scheduled: None,
            late: None,
        }
    }
}
