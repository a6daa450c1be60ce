//! The example booth, simulated on this machine: the repository's example
//! config, scenes and profiles (embedded, so nothing needs to be installed)
//! written into a folder and pointed at a virtual camera chain and Art-Net /
//! OSC monitors on 127.0.0.1. Shared by `studiod demo`, the `booth` example,
//! tests and benches.
//!
//! This module treats the config as text: it substitutes the example's
//! device addresses and knows nothing of studiod's config model, so the
//! simulator crate still depends on no studiod code. The embedded files are
//! the ones at the repository root (`include_str!` reaches outside this
//! crate; the crate is `publish = false` for that reason).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::monitor::{ArtNetMonitor, NodeOptions, OscMonitor, ReplyTo};
use crate::{ChainOptions, VirtualChain};

/// The example booth, embedded so the demo and tests need no installed files.
pub const EXAMPLE_CONFIG: &str = include_str!("../../../studiod.example.toml");

pub const SCENES: &[(&str, &str)] = &[
    ("house", include_str!("../../../scenes/house.toml")),
    ("intro", include_str!("../../../scenes/intro.toml")),
    ("product-closeup", include_str!("../../../scenes/product-closeup.toml")),
    ("flash-sale", include_str!("../../../scenes/flash-sale.toml")),
    ("unboxing", include_str!("../../../scenes/unboxing.toml")),
    ("end-of-slot", include_str!("../../../scenes/end-of-slot.toml")),
];

/// The profiles the example booth uses.
pub const PROFILES: &[(&str, &str)] = &[
    ("cameras/generic-visca.toml", include_str!("../../../device-profiles/cameras/generic-visca.toml")),
    ("fixtures/godox-p600bi-hard.toml", include_str!("../../../device-profiles/fixtures/godox-p600bi-hard.toml")),
    ("fixtures/aputure-ls-600d-pro.toml", include_str!("../../../device-profiles/fixtures/aputure-ls-600d-pro.toml")),
    ("fixtures/generic-dimmer.toml", include_str!("../../../device-profiles/fixtures/generic-dimmer.toml")),
    ("fixtures/generic-dimmer-16bit.toml", include_str!("../../../device-profiles/fixtures/generic-dimmer-16bit.toml")),
    ("fixtures/generic-rgb.toml", include_str!("../../../device-profiles/fixtures/generic-rgb.toml")),
];

/// Where the example booth's peers are, for a generated config.
pub struct BoothPorts<'a> {
    pub serial: &'a Path,
    pub artnet: SocketAddr,
    pub osc: SocketAddr,
    /// `[mqtt] url`, when MQTT is wanted.
    pub mqtt_url: Option<String>,
    /// Extra TOML appended verbatim (e.g. an `[http]` section).
    pub extra: String,
}

/// The tablet pages' set-up for a simulated booth: where to listen and the
/// credentials, written to `creator.pin` / `tech.token` beside the config.
pub struct HttpSetup<'a> {
    pub listen: &'a str,
    pub pin: &'a str,
    pub token: &'a str,
}

/// The example booth's peers, simulated on this machine: a virtual camera
/// chain on a pty, Art-Net and OSC monitors on 127.0.0.1, and the config
/// written for them. Shared by the demo, the booth example, tests and benches.
///
/// The config binds the daemon's Art-Net socket on `127.0.0.1:0` (any free
/// port: booths run side by side, and 6454 may be taken), so the node
/// cannot know where to reply until the daemon has bound: it answers no
/// ArtPoll until `artnet.set_reply_to(ReplyTo::Port(…))` is given the port
/// the daemon reports (or `ReplyTo::Source`, for a daemon in another
/// process, which polls from that port).
pub struct SimBooth {
    pub chain: VirtualChain,
    pub artnet: ArtNetMonitor,
    pub osc: OscMonitor,
    pub config_path: PathBuf,
}

impl SimBooth {
    pub async fn create(
        dir: &Path,
        chain: ChainOptions,
        mqtt_url: Option<String>,
        http: Option<HttpSetup<'_>>,
    ) -> std::io::Result<SimBooth> {
        let serial = dir.join("ttyVISCA0");
        let chain = VirtualChain::spawn(&serial, 3, chain)?;
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let artnet = ArtNetMonitor::bind_with(loopback, NodeOptions { reply_to: ReplyTo::Unset, ..NodeOptions::default() }).await?;
        let osc = OscMonitor::bind(loopback).await?;
        let mut extra = String::new();
        if let Some(h) = http {
            std::fs::write(dir.join("creator.pin"), format!("{}\n", h.pin))?;
            std::fs::write(dir.join("tech.token"), format!("{}\n", h.token))?;
            extra = format!("\n[http]\nlisten = \"{}\"\ncreator_pin_file = \"creator.pin\"\ntech_token_file = \"tech.token\"\n", h.listen);
        }
        let ports = BoothPorts { serial: &serial, artnet: artnet.local_addr()?, osc: osc.local_addr()?, mqtt_url, extra };
        let config_path = write_booth(dir, &ports)?;
        Ok(SimBooth { chain, artnet, osc, config_path })
    }
}

/// Write the example booth (config, scenes, profiles) into `dir`, pointed at
/// the given loopback peers, its Art-Net socket on `127.0.0.1:0`. Returns
/// the config path.
pub fn write_booth(dir: &Path, ports: &BoothPorts) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("scenes"))?;
    for (name, text) in SCENES {
        std::fs::write(dir.join("scenes").join(format!("{name}.toml")), text)?;
    }
    for (rel, text) in PROFILES {
        let p = dir.join("device-profiles").join(rel);
        std::fs::create_dir_all(p.parent().unwrap_or(dir))?;
        std::fs::write(p, text)?;
    }
    // Drop the example's [mqtt]/[http] sections; the caller decides those.
    let mut out = String::new();
    let mut skipping = false;
    for line in EXAMPLE_CONFIG.lines() {
        if line.starts_with('[') {
            skipping = line == "[mqtt]" || line == "[http]";
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    let out = out
        .replace("\"/dev/ttyUSB0\"", &toml_string(&ports.serial.display().to_string()))
        .replace("state_dir = \"/var/lib/studiod\"", "state_dir = \"state\"")
        .replace("artnet_bind = \"0.0.0.0:6454\"", "artnet_bind = \"127.0.0.1:0\"")
        .replace("target = \"127.0.0.1:6454\"", &format!("target = \"{}\"", ports.artnet))
        .replace("target = \"127.0.0.1:8000\"", &format!("target = \"{}\"", ports.osc));
    // The example must stay in step with these substitutions: nothing of the
    // real booth may leak into a loopback-only config.
    for real in ["/dev/ttyUSB0", "/var/lib/studiod", "127.0.0.1:6454", "0.0.0.0:6454", "127.0.0.1:8000"] {
        if out.contains(real) {
            return Err(std::io::Error::other(format!("example config still names {real} after substitution")));
        }
    }
    let mut out = out;
    if let Some(url) = &ports.mqtt_url {
        out.push_str(&format!("\n[mqtt]\nurl = \"{url}\"\ntopic_prefix = \"studiod\"\n"));
    }
    out.push_str(&ports.extra);
    let path = dir.join("studiod.toml");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
