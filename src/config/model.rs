//! The typed, validated configuration. Everything here has already been
//! checked by [`super::load`]; consumers (camera links, lighting, scene
//! engine) never re-validate and never see raw TOML.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::scene::Scene;

// Device descriptions belong to the device layers (which never name the
// config); the config model is made of them.
pub use crate::camera::profile::{Axis, Camera, CameraIdentity, CameraProfile, CameraTiming, CameraUrl, IpForm, Zoom};
pub use crate::lighting::artnet::ArtNetOutput;
pub use crate::lighting::fixture::{Attribute, AttributeChannels, Fixture, FixtureMode, FixtureProfile};
pub use crate::lighting::sacn::SacnOutput;
pub use crate::lighting::Output;
pub use crate::osc::OscTarget;

impl Config {
    /// The config file's folder: relative paths resolve against it, and
    /// messages for clients show paths relative to it.
    pub fn dir(&self) -> &std::path::Path {
        self.path.parent().unwrap_or(std::path::Path::new(""))
    }

    /// `state.scenes_hash` (CONTRACT §5): hex SHA-256 over the loaded scene
    /// files sorted by name, each as name, NUL, bytes; the same scene set
    /// gives the same hash on every booth.
    pub fn scenes_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (name, scene) in &self.scenes {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(scene.text.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Every DMX output, Art-Net first then sACN, each in file order (the
    /// lighting task's universe order).
    pub fn outputs(&self) -> Vec<Output> {
        self.artnet.iter().cloned().map(Output::from).chain(self.sacn.iter().cloned().map(Output::from)).collect()
    }

    /// The lighting options of this booth: `[lighting]`, and the studio id
    /// as the sACN source name.
    pub fn lighting_options(&self) -> crate::lighting::LightingOptions {
        crate::lighting::LightingOptions { source_name: self.studio.id.clone(), ..(&self.lighting).into() }
    }

    /// Whether `other` drives the same devices the same way (so a reload
    /// can keep the running device actors and only swap scenes).
    pub fn same_devices(&self, other: &Config) -> bool {
        self.cameras == other.cameras
            && self.artnet == other.artnet
            && self.sacn == other.sacn
            && self.studio.id == other.studio.id
            && self.fixtures == other.fixtures
            && self.osc == other.osc
            && self.lighting == other.lighting
            && self.studio.state_dir == other.studio.state_dir
    }
}

/// The whole validated configuration of one booth.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file this came from (for reloads and messages).
    pub path: PathBuf,
    pub studio: Studio,
    pub mqtt: Option<Mqtt>,
    pub http: Option<Http>,
    pub cameras: Vec<Camera>,
    pub artnet: Vec<ArtNetOutput>,
    pub sacn: Vec<SacnOutput>,
    pub fixtures: Vec<Fixture>,
    pub osc: Vec<OscTarget>,
    /// Lighting behaviour (frame rate, persistence, shutdown look).
    pub lighting: Lighting,
    /// Scenes by name (file stem), already validated against the devices.
    pub scenes: BTreeMap<String, Scene>,
    /// Things worth a look that do not make the config invalid (e.g. a device
    /// whose profile has unconfirmed values), already worded as
    /// `warning: …`. `studiod check` prints them; `studiod run` logs them.
    pub warnings: Vec<crate::diag::Diagnostic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Studio {
    pub id: String,
    pub scenes_dir: PathBuf,
    pub profiles_dir: PathBuf,
    pub state_dir: PathBuf,
    pub safe_scene: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mqtt {
    pub url: String,
    pub topic_prefix: String,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// The booth's client certificate (PEM) for `mqtts://`, with `key_file`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub listen: SocketAddr,
    pub creator_pin_file: Option<PathBuf>,
    pub tech_token_file: Option<PathBuf>,
}

/// `[lighting]` (optional section; every field has a default).
#[derive(Debug, Clone, PartialEq)]
pub struct Lighting {
    /// Frames per second per Art-Net output; 1–44, default 44.
    pub frame_rate: u32,
    /// Re-send an unchanged universe at least this often (keep-alive); default 1 s.
    pub keepalive: Duration,
    /// Send ArtSync after a frame that changed several universes together.
    pub artsync: bool,
    /// sACN sync address for frames that change several sACN universes together.
    pub sacn_sync: Option<u16>,
    /// Restore the last look from `state_dir` at start-up (no flash of zeros). Default true.
    pub restore_last_look: bool,
    /// On shutdown: keep the last look (None) or apply this scene's light part.
    pub shutdown_scene: Option<String>,
    /// The Art-Net socket's address: Art-Net leaves from it and ArtPollReplies
    /// arrive on it. Default `0.0.0.0:6454` (nodes reply to port 6454).
    pub artnet_bind: SocketAddr,
}

/// What the lighting device needs of `[lighting]` (the scene names stay
/// here; the clock is the device's own default).
impl From<&Lighting> for crate::lighting::LightingOptions {
    fn from(l: &Lighting) -> Self {
        crate::lighting::LightingOptions {
            frame_rate: l.frame_rate,
            keepalive: l.keepalive,
            artsync: l.artsync,
            sacn_sync: l.sacn_sync,
            restore_last_look: l.restore_last_look,
            artnet_bind: l.artnet_bind,
            ..Default::default()
        }
    }
}

impl Default for Lighting {
    fn default() -> Self {
        Lighting {
            frame_rate: 44,
            keepalive: Duration::from_secs(1),
            artsync: false,
            sacn_sync: None,
            restore_last_look: true,
            shutdown_scene: None,
            artnet_bind: crate::lighting::artnet::DEFAULT_BIND,
        }
    }
}
