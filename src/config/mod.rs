//! Configuration: raw serde structs (`raw`), typed validated structs (`model`),
//! and the two-stage loader (`load`) that turns one into the other, collecting
//! every problem — in the config file, the profiles it references and the
//! scenes — as a [`crate::diag::Diagnostic`] before giving up.
//!
//! Architecture Invariant: a `model::Config` only exists if it is entirely
//! valid. Devices, the scene engine and adapters never re-check it.

pub mod model;
pub mod profiles;
pub mod raw;
pub mod scenes;
pub mod toml_src;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::model::*;
use self::raw::S;
use crate::diag::{Diagnostic, Diagnostics, Source};

/// Where the daemon looks for its config when `--config` is not given.
pub fn default_path() -> PathBuf {
    std::env::var_os("STUDIOD_CONFIG").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/etc/studiod/studiod.toml"))
}

/// Load and validate the config, every profile it references and every scene.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    let src = Source::read(path).map_err(|e| Diagnostics(vec![Source::new(path, "").diag(None, format!("cannot read config: {e}"))]))?;
    let doc = toml_src::parse(&src).map_err(|e| Diagnostics(vec![e]))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut d = Diagnostics::default();
    let mut declared = std::collections::BTreeSet::new();
    let mut v = Validator { src: &src, base: &base, d: &mut d, declared: &mut declared, warnings: Vec::new() };

    // Stage one: every section deserialized on its own (see toml_src).
    let mut studio = None;
    let (mut mqtt, mut http, mut lighting) = (None, None, None);
    let (mut cameras, mut artnet, mut fixtures, mut osc) = (vec![], vec![], vec![], vec![]);
    let mut sacn = vec![];
    for (key, item) in doc.as_table().iter() {
        let key_span = doc.as_table().key(key).and_then(|k| k.span());
        match key {
            "studio" => studio = toml_src::de_item::<raw::Studio>(v.src, item, "[studio]", v.d),
            "mqtt" => mqtt = toml_src::de_item::<raw::Mqtt>(v.src, item, "[mqtt]", v.d),
            "http" => http = toml_src::de_item::<raw::Http>(v.src, item, "[http]", v.d),
            "lighting" => lighting = toml_src::de_item::<raw::Lighting>(v.src, item, "[lighting]", v.d),
            "camera" => cameras = v.entries(key_span, item, key),
            "artnet" => artnet = v.entries(key_span, item, key),
            "sacn" => sacn = v.entries(key_span, item, key),
            "fixture" => fixtures = v.entries(key_span, item, key),
            "osc" => osc = v.entries(key_span, item, key),
            other => v.d.push(src.diag(
                key_span,
                format!("unknown key `{other}` (expected studio, mqtt, http, lighting, camera, artnet, sacn, fixture or osc)"),
            )),
        }
    }
    if studio.is_none() && doc.get("studio").is_none() {
        v.d.push(src.diag(None, "missing [studio] section"));
    }

    // Stage two: typed and cross-checked.
    let studio = studio.map(|s| v.studio(s));
    let mqtt = mqtt.map(|m| v.mqtt(m));
    let http = http.map(|h| v.http(h));
    let lighting = lighting.map(|l| v.lighting(l)).unwrap_or(Lighting::default());
    let profiles_dir = studio.as_ref().map(|s| s.profiles_dir.clone()).unwrap_or_else(|| base.join("device-profiles"));
    let mut profiles = ProfileCache::default();
    let cameras = v.cameras(cameras, &profiles_dir, &mut profiles);
    let artnet = v.artnet(artnet);
    let sacn = v.sacn(sacn, &artnet);
    let output_names: Vec<&str> = artnet.iter().map(|o| o.name.as_str()).chain(sacn.iter().map(|o| o.name.as_str())).collect();
    let fixtures = v.fixtures(fixtures, &output_names, &profiles_dir, &mut profiles);
    let osc = v.osc(osc);
    v.unique_names(&cameras, &fixtures);
    let warnings = std::mem::take(&mut v.warnings);

    let Some(studio) = studio else { return Err(d) };
    let devices = scenes::KnownDevices { cameras: &cameras, fixtures: &fixtures, osc: &osc, declared: &declared };
    let scenes = match scenes::load_dir(&studio.scenes_dir, &devices) {
        Ok(s) => s,
        Err(e) => {
            d.extend(e);
            BTreeMap::new()
        }
    };
    for (what, name) in [("safe_scene", &studio.safe_scene), ("shutdown_scene", &lighting.shutdown_scene)] {
        if let Some(n) = name {
            if !scenes.contains_key(n) && d.is_empty() {
                d.push(src.diag(None, format!("`{what}` names scene `{n}`, which is not in {}", studio.scenes_dir.display())));
            }
        }
    }
    if !d.is_empty() {
        return Err(d);
    }
    Ok(Config { path: path.to_path_buf(), studio, mqtt, http, cameras, artnet, sacn, fixtures, osc, lighting, scenes, warnings })
}

/// The unconfirmed keys of a fixture profile that matter in one of its
/// modes: another mode's keys do not, nor `cct_range` in a mode without a
/// colour-temperature channel.
fn unconfirmed_in_mode(profile: &FixtureProfile, mode: usize) -> Vec<String> {
    let m = &profile.modes[mode];
    let own = format!("mode.{}.", m.name);
    let has_cct = m.attributes.iter().any(|a| a.attribute == crate::lighting::fixture::Attribute::Cct);
    profile
        .unconfirmed
        .iter()
        .filter(|k| match k.as_str() {
            "cct_range" => has_cct,
            k if k.starts_with("mode.") => k.starts_with(&own),
            _ => true,
        })
        .cloned()
        .collect()
}

/// Profiles are read once per load even when many devices share them.
#[derive(Default)]
struct ProfileCache {
    cameras: BTreeMap<String, Option<CameraProfile>>,
    fixtures: BTreeMap<String, Option<FixtureProfile>>,
}

struct Validator<'a> {
    src: &'a Source,
    base: &'a Path,
    d: &'a mut Diagnostics,
    /// Every device name written in the file, valid or not, so that scenes
    /// naming a device whose entry is broken are not reported a second time.
    declared: &'a mut std::collections::BTreeSet<String>,
    /// Problems that do not invalidate the config (see `Config::warnings`).
    warnings: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn err(&mut self, span: std::ops::Range<usize>, msg: impl Into<String>) {
        self.d.push(self.src.diag(Some(span), msg));
    }

    /// One warning per unconfirmed value of the profile a device uses,
    /// positioned at the device's `profile = …`.
    fn warn_unconfirmed(&mut self, kind: &str, device: &str, profile: &S<String>, keys: &[String]) {
        for k in keys {
            self.warnings.push(self.src.diag(
                Some(profile.span()),
                format!("warning: {kind} `{device}` uses profile `{}` whose `{k}` is unconfirmed (verify on hardware)", profile.get_ref()),
            ));
        }
    }

    fn entries<T: serde::de::DeserializeOwned>(
        &mut self,
        key_span: Option<std::ops::Range<usize>>,
        item: &toml_edit::Item,
        name: &str,
    ) -> Vec<T> {
        let tables = toml_src::tables(self.src, key_span, item, name, self.d);
        self.declared.extend(tables.iter().filter_map(|t| t.get("name")?.as_str().map(str::to_string)));
        tables
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| toml_src::de_table(self.src, t, &format!("[[{name}]] #{}", i + 1), self.d))
            .collect()
    }

    fn path(&self, s: &S<String>) -> PathBuf {
        self.base.join(s.get_ref())
    }

    fn name(&mut self, s: &S<String>, what: &str) -> String {
        let n = s.get_ref();
        if !valid_name(n) {
            self.err(s.span(), format!("{what} `{n}` must match [a-z0-9-]{{1,64}}"));
        }
        n.clone()
    }

    fn studio(&mut self, s: raw::Studio) -> Studio {
        let id = self.name(&s.id, "studio id");
        let dir = |v: &Option<S<String>>, default: &str| v.as_ref().map(|p| self.path(p)).unwrap_or_else(|| self.base.join(default));
        let scenes_dir = dir(&s.scenes_dir, "scenes");
        let profiles_dir = dir(&s.profiles_dir, "device-profiles");
        let state_dir = dir(&s.state_dir, "state");
        for (key, p, val) in [("scenes_dir", &s.scenes_dir, &scenes_dir), ("profiles_dir", &s.profiles_dir, &profiles_dir)] {
            if !val.is_dir() {
                let span = p.as_ref().map(|p| p.span()).unwrap_or(s.id.span());
                self.err(span, format!("`{key}`: {} is not a directory", val.display()));
            }
        }
        Studio { id, scenes_dir, profiles_dir, state_dir, safe_scene: s.safe_scene.map(|x| x.into_inner()) }
    }

    fn mqtt(&mut self, m: raw::Mqtt) -> Mqtt {
        let url = m.url.get_ref().clone();
        if !(url.starts_with("mqtt://") || url.starts_with("mqtts://")) {
            self.err(m.url.span(), format!("`url` must start with mqtt:// or mqtts://, got `{url}`"));
        }
        let topic_prefix = m.topic_prefix.map(|t| t.into_inner()).unwrap_or_else(|| "studiod".into());
        if topic_prefix.is_empty() || topic_prefix.contains(['+', '#']) {
            self.err(m.url.span(), "`topic_prefix` must be non-empty and contain no MQTT wildcards");
        }
        // A client certificate is a pair, and only TLS can present it.
        match (&m.cert_file, &m.key_file) {
            (Some(c), None) => self.err(c.span(), "`cert_file` needs `key_file` (the certificate's private key)"),
            (None, Some(k)) => self.err(k.span(), "`key_file` needs `cert_file` (the booth's client certificate)"),
            _ => {}
        }
        if let Some(f) = m.cert_file.as_ref().or(m.key_file.as_ref()) {
            if !url.starts_with("mqtts://") {
                self.err(f.span(), "a client certificate is only used with an mqtts:// url (TLS)");
            }
        }
        Mqtt {
            url,
            topic_prefix,
            client_id: m.client_id.map(|c| c.into_inner()),
            username: m.username.map(|c| c.into_inner()),
            password_file: m.password_file.map(|p| self.path(&p)),
            ca_file: m.ca_file.map(|p| self.path(&p)),
            cert_file: m.cert_file.map(|p| self.path(&p)),
            key_file: m.key_file.map(|p| self.path(&p)),
        }
    }

    fn http(&mut self, h: raw::Http) -> Http {
        let listen = match &h.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(l) => l.get_ref().parse().unwrap_or_else(|_| {
                self.err(l.span(), format!("`listen` must be ip:port, got `{}`", l.get_ref()));
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }),
        };
        Http {
            listen,
            creator_pin_file: h.creator_pin_file.map(|p| self.path(&p)),
            tech_token_file: h.tech_token_file.map(|p| self.path(&p)),
        }
    }

    fn lighting(&mut self, l: raw::Lighting) -> Lighting {
        let mut out = Lighting::default();
        if let Some(f) = l.frame_rate {
            if (1..=44).contains(f.get_ref()) {
                out.frame_rate = *f.get_ref() as u32;
            } else {
                self.err(f.span(), format!("`frame_rate` must be 1–44 frames/s (the DMX ceiling), got {}", f.get_ref()));
            }
        }
        if let Some(k) = l.keepalive_ms {
            if (100..=4000).contains(k.get_ref()) {
                out.keepalive = Duration::from_millis(*k.get_ref() as u64);
            } else {
                self.err(k.span(), format!("`keepalive_ms` must be 100–4000, got {}", k.get_ref()));
            }
        }
        out.artsync = l.artsync.unwrap_or(false);
        if let Some(u) = l.sacn_sync_universe {
            match u16::try_from(*u.get_ref()).ok().filter(|u| crate::lighting::e131::UNIVERSES.contains(u)) {
                Some(u) => out.sacn_sync = Some(u),
                None => self.err(u.span(), format!("`sacn_sync_universe` must be an sACN universe 1–63999, got {}", u.get_ref())),
            }
        }
        out.restore_last_look = l.restore_last_look.unwrap_or(true);
        out.shutdown_scene = l.shutdown_scene.map(|s| s.into_inner());
        if let Some(b) = &l.artnet_bind {
            if let Some(addr) = self.artnet_bind(b) {
                out.artnet_bind = addr;
            }
        }
        out
    }

    /// `artnet_bind`: an IPv4 `ip:port`, or an IP alone for port 6454.
    fn artnet_bind(&mut self, b: &S<String>) -> Option<SocketAddr> {
        use crate::lighting::artnet::PORT;
        let text = b.get_ref();
        let parsed = text.parse::<SocketAddr>().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(|ip| SocketAddr::new(ip, PORT)));
        let Some(addr) = parsed else {
            self.err(b.span(), format!("`artnet_bind` must be ip:port (e.g. \"0.0.0.0:{PORT}\"), got `{text}`"));
            return None;
        };
        if !addr.is_ipv4() {
            self.err(b.span(), format!("`artnet_bind` must be an IPv4 address (Art-Net is IPv4 only), got `{text}`"));
            return None;
        }
        if addr.ip().is_multicast() || addr.ip() == std::net::IpAddr::from([255, 255, 255, 255]) {
            self.err(b.span(), format!("`artnet_bind` must be an address of this computer (or 0.0.0.0), got `{text}`"));
            return None;
        }
        // Port 0 (any free port) is for tests, which tell their node the port.
        if addr.port() != PORT && addr.port() != 0 {
            self.warnings.push(self.src.diag(
                Some(b.span()),
                format!(
                    "warning: `artnet_bind` port {} is not the Art-Net port {PORT}: nodes reply to {PORT}, so only those that answer the poll's source port can be verified",
                    addr.port()
                ),
            ));
        }
        Some(addr)
    }

    fn cameras(&mut self, raw: Vec<raw::Camera>, dir: &Path, cache: &mut ProfileCache) -> Vec<Camera> {
        let mut out: Vec<Camera> = Vec::new();
        for c in raw {
            let name = self.name(&c.name, "camera name");
            let profile = self.profile(&c.profile, dir, "cameras", &mut cache.cameras, profiles::load_camera);
            if let Some(u) = &c.url {
                // An IP camera: one device at address 1, no serial keys.
                for (key, span) in [
                    ("port", c.port.as_ref().map(|p| p.span())),
                    ("baud", c.baud.as_ref().map(|b| b.span())),
                    ("address", c.address.as_ref().map(|a| a.span())),
                ] {
                    if let Some(span) = span {
                        self.err(span, format!("camera `{name}`: `{key}` is for serial cameras; an IP camera has `url` only"));
                    }
                }
                let url = match CameraUrl::parse(u.get_ref()) {
                    Ok(url) => Some(url),
                    Err(e) => {
                        self.err(u.span(), format!("camera `{name}`: {e}"));
                        None
                    }
                };
                if let Some(url) = &url {
                    if let Some(other) = out.iter().find(|o| o.url.as_ref().is_some_and(|x| x.host == url.host && x.port == url.port)) {
                        self.err(u.span(), format!("camera `{name}` has the same url host and port as `{}`", other.name));
                    }
                }
                if let (Some(profile), Some(url)) = (profile, url) {
                    self.warn_unconfirmed("camera", &name, &c.profile, &profile.unconfirmed);
                    if !profile.transports.is_empty() && !profile.transports.iter().any(|t| t == url.scheme()) {
                        self.warnings.push(self.src.diag(
                            Some(u.span()),
                            format!(
                                "warning: camera `{name}` uses {} but profile `{}` lists only {} (verify the model speaks it)",
                                url.scheme(),
                                profile.id,
                                profile.transports.join(", ")
                            ),
                        ));
                    }
                    out.push(Camera { name, profile, port: PathBuf::from(url.to_string()), baud: 0, address: 1, url: Some(url) });
                }
                continue;
            }
            let Some(port_key) = &c.port else {
                self.err(
                    c.name.span(),
                    format!("camera `{name}` needs `port` (serial, with `address`) or `url` (visca-udp:// or visca-tcp://)"),
                );
                continue;
            };
            let baud = match &c.baud {
                None => 9600,
                Some(b) if [2400, 4800, 9600, 19200, 38400, 57600, 115200].contains(b.get_ref()) => *b.get_ref() as u32,
                Some(b) => {
                    self.err(b.span(), format!("`baud` must be one of 2400, 4800, 9600, 19200, 38400, 57600, 115200; got {}", b.get_ref()));
                    9600
                }
            };
            let Some(address_key) = &c.address else {
                // A misspelt `adress` was reported already (stage one).
                if !self.misspelt_in_table(c.name.span().start, "address") {
                    self.err(port_key.span(), format!("camera `{name}` on a serial port needs `address` (1–7)"));
                }
                continue;
            };
            let address = *address_key.get_ref();
            if !(1..=7).contains(&address) {
                self.err(address_key.span(), format!("`address` must be 1–7 on a VISCA chain, got {address}"));
            }
            let port = self.path(port_key);
            if let Some(other) = out.iter().find(|o| o.port == port && o.address as i64 == address) {
                self.err(address_key.span(), format!("camera `{name}` has the same port and address as `{}`", other.name));
            }
            if let Some(other) = out.iter().find(|o| o.port == port && o.baud != baud) {
                self.err(port_key.span(), format!("cameras on one port must share a baud rate (`{}` uses {})", other.name, other.baud));
            }
            if let Some(profile) = profile {
                self.warn_unconfirmed("camera", &name, &c.profile, &profile.unconfirmed);
                out.push(Camera { name, profile, port, baud, address: address.clamp(1, 7) as u8, url: None });
            }
        }
        out
    }

    /// Whether the `[[…]]` table around byte `at` has a key that is `key`
    /// misspelt (stage one reported it as unknown).
    fn misspelt_in_table(&self, at: usize, key: &str) -> bool {
        let text = &self.src.text;
        let start = text[..at.min(text.len())].rfind("\n[").map_or(0, |i| i + 1);
        let end = text[at.min(text.len())..].find("\n[").map_or(text.len(), |i| at + i);
        text[start..end]
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k.trim())
            .any(|k| k != key && toml_src::edit_distance(k, key) <= 2)
    }

    fn artnet(&mut self, raw: Vec<raw::ArtNet>) -> Vec<ArtNetOutput> {
        let mut out: Vec<ArtNetOutput> = Vec::new();
        for a in raw {
            let name = self.name(&a.name, "artnet name");
            let target = self.socket_addr(&a.target, 6454);
            let universe = *a.universe.get_ref();
            if !(0..=0x7FFF).contains(&universe) {
                self.err(a.universe.span(), format!("`universe` is a 15-bit port-address 0–32767, got {universe}"));
            }
            if out.iter().any(|o| o.name == name) {
                self.err(a.name.span(), format!("artnet output `{name}` is defined twice"));
            }
            if let (Some(target), Some(other)) = (target, out.iter().find(|o| Some(o.target) == target && o.universe as i64 == universe)) {
                self.err(a.universe.span(), format!("`{name}` sends the same universe to {target} as `{}`", other.name));
            }
            out.push(ArtNetOutput {
                name,
                target: target.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 6454))),
                universe: universe.clamp(0, 0x7FFF) as u16,
                poll: a.poll.unwrap_or(true),
            });
        }
        out
    }

    fn sacn(&mut self, raw: Vec<raw::Sacn>, artnet: &[ArtNetOutput]) -> Vec<SacnOutput> {
        let mut out: Vec<SacnOutput> = Vec::new();
        for a in raw {
            let name = self.name(&a.name, "sacn name");
            let target = self.socket_addr(&a.target, crate::lighting::e131::PORT);
            let universe = *a.universe.get_ref();
            if !(1..=63999).contains(&universe) {
                self.err(a.universe.span(), format!("`universe` must be an sACN universe 1–63999, got {universe}"));
            }
            let priority = match &a.priority {
                None => crate::lighting::e131::DEFAULT_PRIORITY,
                Some(p) if (0..=200).contains(p.get_ref()) => *p.get_ref() as u8,
                Some(p) => {
                    self.err(p.span(), format!("`priority` must be 0–200, got {}", p.get_ref()));
                    crate::lighting::e131::DEFAULT_PRIORITY
                }
            };
            if out.iter().any(|o| o.name == name) || artnet.iter().any(|o| o.name == name) {
                self.err(a.name.span(), format!("output `{name}` is defined twice ([[artnet]] and [[sacn]] names share one namespace)"));
            }
            if let (Some(target), Some(other)) = (target, out.iter().find(|o| Some(o.target) == target && o.universe as i64 == universe)) {
                self.err(a.universe.span(), format!("`{name}` sends the same universe to {target} as `{}`", other.name));
            }
            out.push(SacnOutput {
                name,
                target: target.unwrap_or(SocketAddr::from(([127, 0, 0, 1], crate::lighting::e131::PORT))),
                universe: universe.clamp(1, 63999) as u16,
                priority,
            });
        }
        out
    }

    fn fixtures(&mut self, raw: Vec<raw::Fixture>, outputs: &[&str], dir: &Path, cache: &mut ProfileCache) -> Vec<Fixture> {
        let mut out: Vec<Fixture> = Vec::new();
        for f in raw {
            let name = self.name(&f.name, "fixture name");
            let profile = self.profile(&f.profile, dir, "fixtures", &mut cache.fixtures, profiles::load_fixture);
            let output = match (&f.output, &f.artnet) {
                (Some(o), None) | (None, Some(o)) => o,
                (Some(o), Some(_)) => {
                    self.err(o.span(), format!("fixture `{name}` sets both `output` and `artnet`; keep one"));
                    o
                }
                (None, None) => {
                    self.err(f.name.span(), format!("fixture `{name}` needs `output` (an [[artnet]] or [[sacn]] name)"));
                    continue;
                }
            };
            let artnet = output.get_ref().clone();
            if !outputs.contains(&artnet.as_str()) {
                self.err(output.span(), format!("unknown output `{artnet}` (no [[artnet]] or [[sacn]] of that name)"));
            }
            let address = *f.address.get_ref();
            if !(1..=512).contains(&address) {
                self.err(f.address.span(), format!("`address` must be a DMX channel 1–512, got {address}"));
                continue;
            }
            let Some(profile) = profile else { continue };
            let mode = match &f.mode {
                Some(m) => match profile.mode_index(m.get_ref()) {
                    Some(i) => i,
                    None => {
                        let known: Vec<_> = profile.modes.iter().map(|m| m.name.as_str()).collect();
                        self.err(m.span(), format!("profile `{}` has no mode `{}` (modes: {})", profile.id, m.get_ref(), known.join(", ")));
                        continue;
                    }
                },
                None if profile.modes.len() == 1 => 0,
                None => {
                    let known: Vec<_> = profile.modes.iter().map(|m| m.name.as_str()).collect();
                    self.err(
                        f.profile.span(),
                        format!("profile `{}` has several modes; set `mode` to one of {}", profile.id, known.join(", ")),
                    );
                    continue;
                }
            };
            let relevant = unconfirmed_in_mode(&profile, mode);
            self.warn_unconfirmed("fixture", &name, &f.profile, &relevant);
            let fixture = Fixture { name, profile, mode, artnet, address: address as u16 };
            let (first, last) = (fixture.address, fixture.address + fixture.mode().footprint.max(1) - 1);
            if last > 512 {
                self.err(f.address.span(), format!("fixture `{}` occupies channels {first}–{last}, past 512", fixture.name));
                continue;
            }
            for other in out.iter().filter(|o| o.artnet == fixture.artnet) {
                let (o1, o2) = (other.address, other.address + other.mode().footprint.max(1) - 1);
                if first <= o2 && o1 <= last {
                    self.err(
                        f.address.span(),
                        format!(
                            "fixture `{}` (channels {first}–{last}) overlaps `{}` (channels {o1}–{o2}) on `{}`",
                            fixture.name, other.name, fixture.artnet
                        ),
                    );
                }
            }
            out.push(fixture);
        }
        out
    }

    fn osc(&mut self, raw: Vec<raw::Osc>) -> Vec<OscTarget> {
        let mut out: Vec<OscTarget> = Vec::new();
        for o in raw {
            let name = self.name(&o.name, "osc name");
            if out.iter().any(|x| x.name == name) {
                self.err(o.name.span(), format!("osc target `{name}` is defined twice"));
            }
            if let Some(target) = self.socket_addr(&o.target, 8000) {
                out.push(OscTarget { name, target });
            }
        }
        out
    }

    /// Camera and fixture names share one namespace: scenes and commands
    /// address devices by name alone.
    fn unique_names(&mut self, cameras: &[Camera], fixtures: &[Fixture]) {
        let mut seen = std::collections::BTreeSet::new();
        for n in cameras.iter().map(|c| &c.name).chain(fixtures.iter().map(|f| &f.name)) {
            if !seen.insert(n) {
                let at = self.src.text.find(&format!("\"{n}\"")).map(|i| i..i + 1);
                self.d.push(self.src.diag(at, format!("device name `{n}` is used twice")));
            }
        }
    }

    fn socket_addr(&mut self, s: &S<String>, _default_port: u16) -> Option<SocketAddr> {
        match s.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(s.span(), format!("`target` must be ip:port (unicast), got `{}`", s.get_ref()));
                None
            }
        }
    }

    fn profile<P: Clone>(
        &mut self,
        id: &S<String>,
        dir: &Path,
        kind: &str,
        cache: &mut BTreeMap<String, Option<P>>,
        load: fn(&Path, &str) -> Result<P, Diagnostics>,
    ) -> Option<P> {
        let name = id.get_ref();
        if let Some(p) = cache.get(name) {
            return p.clone();
        }
        let path = dir.join(kind).join(format!("{name}.toml"));
        let loaded = if !valid_name(name) {
            self.err(id.span(), format!("profile name `{name}` must match [a-z0-9-]{{1,64}}"));
            None
        } else if !path.is_file() {
            self.err(id.span(), format!("unknown {} profile `{name}` (no {})", &kind[..kind.len() - 1], path.display()));
            None
        } else {
            match load(&path, name) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.err(id.span(), format!("profile `{name}` is invalid (see below)"));
                    self.d.extend(e);
                    None
                }
            }
        };
        cache.insert(name.clone(), loaded.clone());
        loaded
    }
}

/// Names used in topics, file stems and commands: `[a-z0-9-]{1,64}`.
pub fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
