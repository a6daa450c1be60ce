//! The typed, validated configuration. Everything here has already been
//! checked by [`super::load`]; consumers (camera links, lighting, scene
//! engine) never re-validate and never see raw TOML.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::scene::Scene;

impl Config {
    /// Whether `other` drives the same devices the same way (so a reload
    /// can keep the running device actors and only swap scenes).
    pub fn same_devices(&self, other: &Config) -> bool {
        self.cameras == other.cameras
            && self.artnet == other.artnet
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
    pub fixtures: Vec<Fixture>,
    pub osc: Vec<OscTarget>,
    /// Lighting behaviour (frame rate, persistence, shutdown look).
    pub lighting: Lighting,
    /// Scenes by name (file stem), already validated against the devices.
    pub scenes: BTreeMap<String, Scene>,
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub listen: SocketAddr,
    pub creator_pin_file: Option<PathBuf>,
    pub tech_token_file: Option<PathBuf>,
}

/// One PTZ camera on a VISCA chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub name: String,
    pub profile: CameraProfile,
    /// Serial device path; several cameras may share one port (daisy chain).
    pub port: PathBuf,
    pub baud: u32,
    /// VISCA address 1–7.
    pub address: u8,
}

/// One Art-Net output: a unicast target and a 15-bit port-address.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtNetOutput {
    pub name: String,
    pub target: SocketAddr,
    /// 15-bit Art-Net port-address (net:7, sub-net:4, universe:4).
    pub universe: u16,
}

/// A patched fixture: a profile mode at a DMX start address on an output.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    pub name: String,
    pub profile: FixtureProfile,
    /// Index into `profile.modes`.
    pub mode: usize,
    /// Name of the `[[artnet]]` output.
    pub artnet: String,
    /// DMX start channel, 1–512; `address + footprint - 1 <= 512` is guaranteed.
    pub address: u16,
}

impl Fixture {
    pub fn mode(&self) -> &FixtureMode {
        &self.profile.modes[self.mode]
    }

    /// A fixture with a one-mode profile made on the spot, for tests, benches
    /// and tools (real fixtures come from profile files): attributes as
    /// (attribute, coarse offset, fine offset), fixed channels as (offset,
    /// value), offsets 0-based; the footprint covers the highest channel.
    pub fn with_channels(name: &str, output: &str, address: u16, attrs: &[(Attribute, u16, Option<u16>)], fixed: &[(u16, u8)]) -> Fixture {
        let footprint =
            attrs.iter().flat_map(|(_, c, f)| std::iter::once(*c).chain(*f)).chain(fixed.iter().map(|x| x.0)).max().map_or(0, |m| m + 1);
        let attributes =
            attrs.iter().map(|(a, c, f)| AttributeChannels { attribute: a.clone(), coarse: *c, fine: *f, default: 0.0 }).collect();
        Fixture {
            name: name.into(),
            profile: FixtureProfile {
                id: "ad-hoc".into(),
                label: "ad-hoc".into(),
                cct_range: None,
                modes: vec![FixtureMode { name: "default".into(), footprint, attributes, fixed: fixed.to_vec() }],
            },
            mode: 0,
            artnet: output.into(),
            address,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OscTarget {
    pub name: String,
    pub target: SocketAddr,
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
    /// Restore the last look from `state_dir` at start-up (no flash of zeros). Default true.
    pub restore_last_look: bool,
    /// On shutdown: keep the last look (None) or apply this scene's light part.
    pub shutdown_scene: Option<String>,
    /// The frame clock's timer. Loaded configs use the OS's high-resolution
    /// timer; the default (tokio's) follows paused time in tests.
    pub clock: crate::lighting::clock::ClockSource,
}

impl Default for Lighting {
    fn default() -> Self {
        Lighting {
            frame_rate: 44,
            keepalive: Duration::from_secs(1),
            artsync: false,
            restore_last_look: true,
            shutdown_scene: None,
            clock: crate::lighting::clock::ClockSource::Tokio,
        }
    }
}

// ---------------------------------------------------------------------------
// Profiles (device-profiles/…), see device-profiles/README.md for the schema.
// ---------------------------------------------------------------------------

/// A camera model: VISCA ranges, unit conversions and quirks.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraProfile {
    /// File stem, e.g. `generic-visca`.
    pub id: String,
    pub label: String,
    /// Number of presets as the user numbers them (1..=preset_count).
    pub preset_count: u8,
    /// Memory byte sent for user preset 1 (Sony: 0x00, so preset 1 → `00`).
    pub preset_memory_offset: u8,
    pub pan: Axis,
    pub tilt: Axis,
    pub zoom: Zoom,
    /// Nibbles per pan/tilt position field (4 on most Sony, 5 on some).
    pub pan_tilt_nibbles: u8,
    /// Maximum VISCA pan speed byte (e.g. 0x18) and tilt speed byte (e.g. 0x14/0x17).
    pub max_pan_speed: u8,
    pub max_tilt_speed: u8,
    pub timing: CameraTiming,
    /// Quirk: camera may send completion without a preceding ACK.
    pub completion_without_ack: bool,
}

/// A linear axis: degrees ↔ signed VISCA position units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub min_deg: f64,
    pub max_deg: f64,
    /// VISCA units per degree (e.g. 14.4 for pan on the SRG-300H family).
    pub units_per_degree: f64,
}

impl Axis {
    pub fn to_units(&self, deg: f64) -> i32 {
        (deg.clamp(self.min_deg, self.max_deg) * self.units_per_degree).round() as i32
    }
    pub fn to_degrees(&self, units: i32) -> f64 {
        units as f64 / self.units_per_degree
    }
    pub fn contains(&self, deg: f64) -> bool {
        deg >= self.min_deg && deg <= self.max_deg
    }
}

/// Zoom: optical magnification ↔ VISCA zoom position (0x0000 = wide).
/// `table` holds (magnification, position) points, increasing, interpolated linearly.
#[derive(Debug, Clone, PartialEq)]
pub struct Zoom {
    pub table: Vec<(f64, u16)>,
}

impl Zoom {
    pub fn max_magnification(&self) -> f64 {
        self.table.last().map(|p| p.0).unwrap_or(1.0)
    }
    pub fn contains(&self, mag: f64) -> bool {
        mag >= self.table[0].0 && mag <= self.max_magnification()
    }
    pub fn to_position(&self, mag: f64) -> u16 {
        let t = &self.table;
        let mag = mag.clamp(t[0].0, self.max_magnification());
        for w in t.windows(2) {
            let ((m0, p0), (m1, p1)) = (w[0], w[1]);
            if mag <= m1 {
                let f = if m1 > m0 { (mag - m0) / (m1 - m0) } else { 0.0 };
                return (p0 as f64 + f * (p1 as f64 - p0 as f64)).round() as u16;
            }
        }
        t.last().map(|p| p.1).unwrap_or(0)
    }
    pub fn to_magnification(&self, pos: u16) -> f64 {
        let t = &self.table;
        for w in t.windows(2) {
            let ((m0, p0), (m1, p1)) = (w[0], w[1]);
            if pos <= p1 {
                let f = if p1 > p0 { (pos as f64 - p0 as f64) / (p1 as f64 - p0 as f64) } else { 0.0 };
                return m0 + f.clamp(0.0, 1.0) * (m1 - m0);
            }
        }
        self.max_magnification()
    }
}

/// Link timing for one camera model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraTiming {
    /// Time allowed for the ACK (default 200 ms).
    pub ack: Duration,
    /// Time allowed for the completion of a short command (power inquiry, stop, …).
    pub completion_short: Duration,
    /// Time allowed for the completion of a move or preset recall.
    pub completion_move: Duration,
    /// Time allowed for power on/off completion.
    pub completion_power: Duration,
}

impl Default for CameraTiming {
    fn default() -> Self {
        CameraTiming {
            ack: Duration::from_millis(200),
            completion_short: Duration::from_millis(1000),
            completion_move: Duration::from_secs(10),
            completion_power: Duration::from_secs(30),
        }
    }
}

/// A fixture model with one or more DMX modes.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureProfile {
    pub id: String,
    pub label: String,
    /// Colour-temperature range in kelvin, when the fixture has a `cct` attribute.
    pub cct_range: Option<(u32, u32)>,
    pub modes: Vec<FixtureMode>,
}

impl FixtureProfile {
    pub fn mode_index(&self, name: &str) -> Option<usize> {
        self.modes.iter().position(|m| m.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FixtureMode {
    pub name: String,
    /// Number of DMX channels the mode occupies.
    pub footprint: u16,
    /// Controllable attributes and where they sit in the footprint.
    pub attributes: Vec<AttributeChannels>,
    /// Fixed values for channels that are not attributes (0-based offset, value),
    /// e.g. a strobe channel that must sit at "open".
    pub fixed: Vec<(u16, u8)>,
}

impl FixtureMode {
    pub fn attribute(&self, a: &Attribute) -> Option<&AttributeChannels> {
        self.attributes.iter().find(|c| &c.attribute == a)
    }
}

/// One attribute's DMX channels: a coarse channel and, for 16-bit, a fine one.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeChannels {
    pub attribute: Attribute,
    /// 0-based offset from the fixture's start address.
    pub coarse: u16,
    /// 0-based offset of the fine byte for 16-bit attributes.
    pub fine: Option<u16>,
    /// Normalised value (0.0–1.0) the attribute takes when a look does not set it.
    pub default: f64,
}

/// What a DMX channel controls. Values are always normalised 0.0–1.0 at the
/// lighting layer; scenes use physical units (kelvin, #rrggbb) and the scene
/// compiler converts using the profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    Intensity,
    Cct,
    Red,
    Green,
    Blue,
    White,
    Amber,
    /// Green–magenta tint and other profile-declared channels, by name.
    Other(String),
}

impl Attribute {
    pub fn parse(s: &str) -> Attribute {
        match s {
            "intensity" => Attribute::Intensity,
            "cct" => Attribute::Cct,
            "red" => Attribute::Red,
            "green" => Attribute::Green,
            "blue" => Attribute::Blue,
            "white" => Attribute::White,
            "amber" => Attribute::Amber,
            other => Attribute::Other(other.to_string()),
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Attribute::Intensity => "intensity",
            Attribute::Cct => "cct",
            Attribute::Red => "red",
            Attribute::Green => "green",
            Attribute::Blue => "blue",
            Attribute::White => "white",
            Attribute::Amber => "amber",
            Attribute::Other(s) => s,
        }
    }
}
