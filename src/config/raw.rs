//! Stage one: raw serde structs, exactly the shape of the TOML, with spans.
//! `deny_unknown_fields` everywhere: a typo is an error, not a silent default.
//! Nothing here is checked beyond types; see `validate.rs` for stage two.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Studio {
    pub id: S<String>,
    pub scenes_dir: Option<S<String>>,
    pub profiles_dir: Option<S<String>>,
    pub state_dir: Option<S<String>>,
    pub safe_scene: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mqtt {
    pub url: S<String>,
    pub topic_prefix: Option<S<String>>,
    pub client_id: Option<S<String>>,
    pub username: Option<S<String>>,
    pub password_file: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    pub cert_file: Option<S<String>>,
    pub key_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub listen: Option<S<String>>,
    pub creator_pin_file: Option<S<String>>,
    pub tech_token_file: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lighting {
    pub frame_rate: Option<S<i64>>,
    pub keepalive_ms: Option<S<i64>>,
    pub artsync: Option<bool>,
    pub sacn_sync_universe: Option<S<i64>>,
    pub restore_last_look: Option<bool>,
    pub shutdown_scene: Option<S<String>>,
    pub artnet_bind: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub name: S<String>,
    pub profile: S<String>,
    /// Serial: `port` (+ `baud`, `address`). IP: `url` alone.
    pub port: Option<S<String>>,
    pub baud: Option<S<i64>>,
    pub address: Option<S<i64>>,
    pub url: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtNet {
    pub name: S<String>,
    pub target: S<String>,
    pub universe: S<i64>,
    pub poll: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sacn {
    pub name: S<String>,
    pub target: S<String>,
    pub universe: S<i64>,
    pub priority: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub name: S<String>,
    pub profile: S<String>,
    pub mode: Option<S<String>>,
    /// The output's name (`output` is the newer spelling; one of the two).
    pub artnet: Option<S<String>>,
    pub output: Option<S<String>>,
    pub address: S<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Osc {
    pub name: S<String>,
    pub target: S<String>,
}

// ----- profiles -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraProfile {
    pub label: S<String>,
    pub manufacturer: Option<String>,
    pub source: Option<String>,
    pub preset_count: S<i64>,
    pub preset_memory_offset: Option<S<i64>>,
    pub pan_tilt_nibbles: Option<S<i64>>,
    pub max_pan_speed: Option<S<i64>>,
    pub max_tilt_speed: Option<S<i64>>,
    pub absolute_tilt_speed: Option<S<i64>>,
    pub completion_without_ack: Option<bool>,
    /// Dotted keys of this file whose values are not confirmed by a source.
    pub unconfirmed: Option<Vec<String>>,
    /// Transports the model supports: `serial`, `visca-udp`, `visca-tcp`.
    pub transports: Option<Vec<String>>,
    /// What the model answers to CAM_VersionInq, for `studiod discover`.
    pub identity: Option<Identity>,
    pub pan: Axis,
    pub tilt: Axis,
    pub zoom: Zoom,
    pub timing: Option<Timing>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub vendor: S<i64>,
    pub models: S<Vec<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    pub min_deg: S<f64>,
    pub max_deg: S<f64>,
    pub units_per_degree: S<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zoom {
    pub table: Vec<(f64, i64)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub ack_ms: Option<S<i64>>,
    pub completion_short_ms: Option<S<i64>>,
    pub completion_move_ms: Option<S<i64>>,
    pub completion_power_ms: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureProfile {
    pub label: S<String>,
    /// Dotted keys of this file whose values are not confirmed by a source.
    pub unconfirmed: Option<Vec<String>>,
    pub manufacturer: Option<String>,
    pub source: Option<String>,
    pub cct_range: Option<(i64, i64)>,
    pub mode: Vec<FixtureMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureMode {
    pub name: S<String>,
    pub footprint: Option<S<i64>>,
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub fixed: Vec<Fixed>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub attribute: S<String>,
    pub coarse: S<i64>,
    pub fine: Option<S<i64>>,
    pub default: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixed {
    pub channel: S<i64>,
    pub value: S<i64>,
}
