//! `studiod discover` (CONTRACT §1): find the cameras on a VISCA chain, or
//! one IP camera, and print them as ready-to-paste `[[camera]]` TOML (or
//! JSON with `--json`); or ask one Art-Net node what it is (`--artnet`) and
//! print its output ports as `[[artnet]]` TOML.
//!
//! It runs the same port task as the daemon (so AddressSet `88 30 01 FF`
//! goes out when the port opens), then asks every address 1–7 (one, for an
//! IP camera) for its identity with CAM_VersionInq (`8x 09 00 02 FF` →
//! `y0 50 GG GG HH HH JJ JJ KK FF`: vendor, model, ROM version, sockets) and
//! picks the profile whose `[identity]` lists that vendor and model; none →
//! `generic-visca`, with a comment saying so.
//!
//! For a node: one unicast ArtPoll from the Art-Net port (`--artnet-bind`,
//! default `0.0.0.0:6454`), where nodes send their ArtPollReply; never a
//! broadcast (the socket may not broadcast, so the kernel refuses one). If
//! that port is taken, from an ephemeral port, saying what that misses.
//!
//! Exit codes: 0 when at least one camera (node) answered, 1 when none did,
//! 2 when the port, URL or address cannot be used.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::camera::{spawn_camera_ports, CameraError, CameraUrl, PortOptions};
use crate::config::model::{Axis, Camera, CameraProfile, CameraTiming, Zoom};
use crate::lighting::artnet::{PollReply, Probe, PORT as ART_NET_PORT};
use crate::visca::{Answer, Inquiry, Version};

/// Where to look.
#[derive(Debug, Clone)]
pub enum Target {
    Serial { port: PathBuf, baud: u32 },
    Url(CameraUrl),
}

/// One camera that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub address: u8,
    pub version: Version,
    /// The profile to use, and whether its `[identity]` matched.
    pub profile: String,
    pub matched: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{0}")]
    Unusable(String),
}

/// Profiles declaring an identity, sorted by id (file stem).
fn profiles_with_identity(dir: &Path) -> Vec<CameraProfile> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir.join("cameras")) else { return out };
    let mut paths: Vec<PathBuf> =
        rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    paths.sort();
    for p in paths {
        let Some(id) = p.file_stem().and_then(|s| s.to_str()) else { continue };
        if let Ok(profile) = crate::config::profiles::load_camera(&p, id) {
            if profile.identity.is_some() {
                out.push(profile);
            }
        }
    }
    out
}

/// The profile for a camera reporting `v`: the first (by id) whose identity fits.
pub fn match_profile(profiles: &[CameraProfile], v: &Version) -> Option<String> {
    profiles.iter().find(|p| p.identity.as_ref().is_some_and(|i| i.vendor == v.vendor && i.models.contains(&v.model))).map(|p| p.id.clone())
}

/// A stand-in profile for the inquiry (no unit conversions are used).
fn probe_profile() -> CameraProfile {
    CameraProfile {
        id: "discover".into(),
        label: "discover".into(),
        preset_count: 16,
        preset_memory_offset: 0,
        pan: Axis { min_deg: -170.0, max_deg: 170.0, units_per_degree: 14.4 },
        tilt: Axis { min_deg: -30.0, max_deg: 90.0, units_per_degree: 14.4 },
        zoom: Zoom { table: vec![(1.0, 0), (20.0, 0x4000)] },
        pan_tilt_nibbles: 4,
        max_pan_speed: 0x18,
        max_tilt_speed: 0x14,
        absolute_tilt_speed: None,
        timing: CameraTiming::default(),
        completion_without_ack: false,
        transports: Vec::new(),
        identity: None,
        unconfirmed: Vec::new(),
    }
}

/// Finds the cameras at `target`.
pub async fn discover(target: &Target, profiles_dir: &Path) -> Result<Vec<Found>, DiscoverError> {
    let profile = probe_profile();
    let cameras: Vec<Camera> = match target {
        Target::Serial { port, baud } => (1..=7)
            .map(|a| Camera { name: format!("cam{a}"), profile: profile.clone(), port: port.clone(), baud: *baud, address: a, url: None })
            .collect(),
        Target::Url(url) => {
            vec![Camera { name: "cam1".into(), profile, port: PathBuf::from(url.to_string()), baud: 0, address: 1, url: Some(url.clone()) }]
        }
    };
    let cancel = CancellationToken::new();
    let ports = spawn_camera_ports(&cameras, PortOptions::default(), cancel.clone()).map_err(|e| DiscoverError::Unusable(e.to_string()))?;
    let handles: Vec<_> = ports.iter().flat_map(|p| p.handles().iter().cloned()).collect();
    // Every camera's health changes once the port opened and its health
    // probe was answered or timed out (or the port failed to open).
    let settled = futures::future::join_all(handles.iter().map(|h| async move {
        let mut rx = h.health();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.changed()).await;
        let health = rx.borrow().clone();
        health
    }))
    .await;
    let result = match settled[0].reason.as_deref() {
        Some(r) if r.starts_with("cannot open") || r == crate::camera::LinkDown::NotOpened.to_string() => {
            Err(DiscoverError::Unusable(r.to_string()))
        }
        _ => {
            // Every address is asked (with the link's resends), not only the
            // ones whose first probe was answered: a lost datagram must not
            // hide a camera.
            let answers =
                futures::future::join_all(handles.iter().map(|h| async move { (h.address().get(), h.inquire(Inquiry::Version).await) }))
                    .await;
            let known = profiles_with_identity(profiles_dir);
            Ok(answers
                .into_iter()
                .filter_map(|(address, r): (u8, Result<Answer, CameraError>)| match r {
                    Ok(Answer::Version(version)) => {
                        let found = match_profile(&known, &version);
                        Some(Found { address, version, matched: found.is_some(), profile: found.unwrap_or_else(|| "generic-visca".into()) })
                    }
                    _ => None,
                })
                .collect())
        }
    };
    cancel.cancel();
    for p in ports {
        p.join().await;
    }
    result
}

/// `[[camera]]` tables for what was found, ready to paste.
pub fn to_toml(target: &Target, found: &[Found]) -> String {
    let mut s = String::new();
    let place = match target {
        Target::Serial { port, baud } => format!("{} at {baud} baud", port.display()),
        Target::Url(u) => u.to_string(),
    };
    s.push_str(&format!("# studiod discover: {} camera(s) on {place}\n", found.len()));
    for f in found {
        let v = &f.version;
        s.push_str(&format!(
            "\n# address {}: vendor 0x{:04X}, model 0x{:04X}, ROM version 0x{:04X}, {} socket(s)\n",
            f.address, v.vendor, v.model, v.rom, v.sockets
        ));
        if !f.matched {
            s.push_str(&format!(
                "# no profile declares vendor 0x{:04X} model 0x{:04X}: generic-visca (Sony conventions); check ranges and presets on the camera\n",
                v.vendor, v.model
            ));
        }
        s.push_str("[[camera]]\n");
        s.push_str(&format!("name = \"cam{}\"\n", f.address));
        s.push_str(&format!("profile = \"{}\"\n", f.profile));
        match target {
            Target::Serial { port, baud } => {
                s.push_str(&format!("port = {}\n", toml_string(&port.display().to_string())));
                s.push_str(&format!("baud = {baud}\naddress = {}\n", f.address));
            }
            Target::Url(u) => s.push_str(&format!("url = {}\n", toml_string(&u.to_string()))),
        }
    }
    s
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The `--json` shape.
pub fn to_json(target: &Target, found: &[Found]) -> serde_json::Value {
    let cams: Vec<_> = found
        .iter()
        .map(|f| {
            let mut c = json!({
                "name": format!("cam{}", f.address),
                "address": f.address,
                "vendor": f.version.vendor,
                "model": f.version.model,
                "rom_version": f.version.rom,
                "sockets": f.version.sockets,
                "profile": f.profile,
                "profile_matched": f.matched,
            });
            match target {
                Target::Serial { port, baud } => {
                    c["port"] = json!(port.display().to_string());
                    c["baud"] = json!(baud);
                }
                Target::Url(u) => c["url"] = json!(u.to_string()),
            }
            c
        })
        .collect();
    json!({ "cameras": cams })
}

/// `--artnet HOST[:PORT]` (port 6454 unless given): one IPv4 unicast
/// address. Broadcast, multicast and "any" are refused: discover asks one
/// node and never broadcasts.
pub fn artnet_target(s: &str) -> Result<SocketAddr, String> {
    let addr = match s.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, ART_NET_PORT),
            Err(_) => {
                let with_port = if s.contains(':') { s.to_string() } else { format!("{s}:{ART_NET_PORT}") };
                let found = with_port.to_socket_addrs().map_err(|e| format!("--artnet {s}: {e}"))?;
                found
                    .into_iter()
                    .find(SocketAddr::is_ipv4)
                    .ok_or_else(|| format!("--artnet {s}: no IPv4 address (Art-Net is IPv4 only)"))?
            }
        },
    };
    match addr.ip() {
        IpAddr::V6(_) => Err(format!("--artnet {s}: Art-Net is IPv4 only")),
        IpAddr::V4(ip) if ip.is_broadcast() || ip.is_multicast() || ip.is_unspecified() || addr.port() == 0 => {
            Err(format!("--artnet {s}: give one node's unicast address and port (discover never broadcasts)"))
        }
        IpAddr::V4(_) => Ok(addr),
    }
}

/// `--artnet-bind`: an IPv4 `ip:port`, or an IP alone for port 6454.
fn artnet_bind(s: &str) -> Result<SocketAddr, String> {
    let addr = s.parse::<SocketAddr>().ok().or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, ART_NET_PORT)));
    match addr {
        Some(a) if a.is_ipv4() => Ok(a),
        _ => Err(format!("--artnet-bind {s}: must be an IPv4 ip:port (e.g. 0.0.0.0:{ART_NET_PORT})")),
    }
}

/// What answered one ArtPoll.
#[derive(Debug, Clone, PartialEq)]
pub struct NodesFound {
    pub target: SocketAddr,
    pub replies: Vec<PollReply>,
    /// Why the asked address could not be listened on (then only nodes that
    /// answer the poll's source port were heard).
    pub problem: Option<String>,
}

/// Poll `target` once from `probe` and collect the replies for `window`.
pub async fn discover_artnet(probe: &Probe, target: SocketAddr, window: Duration) -> Result<NodesFound, DiscoverError> {
    let replies = probe.poll(target, window).await.map_err(|e| {
        DiscoverError::Unusable(match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                format!("{target} is a broadcast address: discover polls one node and never broadcasts")
            }
            _ => format!("sending ArtPoll to {target}: {e}"),
        })
    })?;
    Ok(NodesFound { target, replies, problem: probe.problem().map(str::to_string) })
}

/// A config name from a node's short name: `[a-z0-9-]`, at most 60
/// characters (room for a `-N` suffix), `node` when nothing is left.
fn artnet_name(short: &str) -> String {
    let mut n = String::new();
    for c in short.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            n.push(c);
        } else if !n.is_empty() && !n.ends_with('-') {
            n.push('-');
        }
    }
    let n: String = n.chars().take(60).collect();
    let n = n.trim_end_matches('-');
    if n.is_empty() {
        "node".into()
    } else {
        n.to_string()
    }
}

/// One `[[artnet]]` per output port found: (name, universe), names unique,
/// a universe already listed left out (the config refuses it twice).
fn artnet_outputs(found: &NodesFound) -> Vec<Vec<(String, u16)>> {
    let total: usize = found.replies.iter().map(|r| r.outputs.len()).sum();
    let mut seen = Vec::new();
    let mut names: Vec<String> = Vec::new();
    found
        .replies
        .iter()
        .map(|r| {
            let base = artnet_name(&r.info.short_name);
            r.outputs
                .iter()
                .filter(|u| {
                    let new = !seen.contains(*u);
                    seen.push(**u);
                    new
                })
                .map(|&u| {
                    let mut name = if total > 1 { format!("{base}-{}", names.len() + 1) } else { base.clone() };
                    while names.contains(&name) {
                        name.push('x');
                    }
                    names.push(name.clone());
                    (name, u)
                })
                .collect()
        })
        .collect()
}

fn firmware(f: u16) -> String {
    format!("{}.{}", f >> 8, f & 0xFF)
}

/// `[[artnet]]` tables for the node's output ports, ready to paste.
pub fn artnet_toml(found: &NodesFound) -> String {
    let mut s = format!("# studiod discover: {} Art-Net node reply(ies) from {}\n", found.replies.len(), found.target);
    for (r, outputs) in found.replies.iter().zip(artnet_outputs(found)) {
        s.push_str(&format!(
            "\n# {}: {} ({}), firmware {}, {} DMX output port(s)\n",
            r.from,
            toml_string(&r.info.short_name),
            toml_string(&r.info.long_name),
            firmware(r.info.firmware),
            r.outputs.len()
        ));
        if r.outputs.is_empty() {
            s.push_str("# no DMX output port: nothing to send it\n");
        }
        for (name, universe) in outputs {
            s.push_str("[[artnet]]\n");
            s.push_str(&format!("name = \"{name}\"\n"));
            s.push_str(&format!("target = \"{}\"\n", found.target));
            s.push_str(&format!("universe = {universe}\n"));
        }
    }
    s
}

/// The `--json` shape of `--artnet`.
pub fn artnet_json(found: &NodesFound) -> serde_json::Value {
    let nodes: Vec<_> = found
        .replies
        .iter()
        .zip(artnet_outputs(found))
        .map(|(r, outputs)| {
            json!({
                "from": r.from.to_string(),
                "short_name": r.info.short_name,
                "long_name": r.info.long_name,
                "firmware": firmware(r.info.firmware),
                "output_port_addresses": r.outputs,
                "artnet": outputs.iter().map(|(name, universe)| json!({"name": name, "target": found.target.to_string(), "universe": universe})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "target": found.target.to_string(), "nodes": nodes, "listen_problem": found.problem })
}

/// The subcommand's arguments.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["port", "url", "artnet"])))]
pub struct DiscoverArgs {
    /// Serial device of a VISCA chain.
    #[arg(long)]
    pub port: Option<PathBuf>,
    /// Baud rate of the chain.
    #[arg(long, default_value_t = 9600)]
    pub baud: u32,
    /// One IP camera: visca-udp://HOST[:PORT] or visca-tcp://HOST[:PORT].
    #[arg(long)]
    pub url: Option<String>,
    /// One Art-Net node: HOST or HOST:PORT (port 6454 unless given). One unicast ArtPoll; never a broadcast.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub artnet: Option<String>,
    /// With --artnet: where to listen for the node's ArtPollReply (nodes reply to port 6454).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6454")]
    pub artnet_bind: String,
    /// With --artnet: how long to wait for replies, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub wait_ms: u64,
    /// Where the camera profiles are (`<dir>/cameras/*.toml`).
    #[arg(long, default_value = "/etc/studiod/device-profiles")]
    pub profiles_dir: PathBuf,
    /// Print JSON instead of TOML.
    #[arg(long)]
    pub json: bool,
}

/// Runs `studiod discover`; returns the exit code.
pub fn main(args: DiscoverArgs) -> u8 {
    if let Some(node) = &args.artnet {
        return artnet_main(node, &args);
    }
    let target = match (&args.port, &args.url) {
        (Some(port), _) => Target::Serial { port: port.clone(), baud: args.baud },
        (None, Some(u)) => match CameraUrl::parse(u) {
            Ok(u) => Target::Url(u),
            Err(e) => {
                eprintln!("studiod discover: {e}");
                return 2;
            }
        },
        (None, None) => unreachable!("clap requires one"),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("studiod discover: {e}");
            return 2;
        }
    };
    match rt.block_on(discover(&target, &args.profiles_dir)) {
        Err(e) => {
            eprintln!("studiod discover: {e}");
            2
        }
        Ok(found) => {
            if args.json {
                println!("{}", to_json(&target, &found));
            } else {
                print!("{}", to_toml(&target, &found));
            }
            if found.is_empty() {
                eprintln!("studiod discover: no camera answered");
                1
            } else {
                0
            }
        }
    }
}

/// `studiod discover --artnet`.
fn artnet_main(node: &str, args: &DiscoverArgs) -> u8 {
    let (target, bind) = match (artnet_target(node), artnet_bind(&args.artnet_bind)) {
        (Ok(t), Ok(b)) => (t, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("studiod discover: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("studiod discover: {e}");
            return 2;
        }
    };
    let found = rt.block_on(async {
        let probe = Probe::bind(bind, target).map_err(|e| DiscoverError::Unusable(format!("opening a UDP socket: {e}")))?;
        if let Some(p) = probe.problem() {
            eprintln!("studiod discover: {p}; polling from an ephemeral port instead: only a node that answers the poll's source port can be heard");
        }
        discover_artnet(&probe, target, Duration::from_millis(args.wait_ms)).await
    });
    match found {
        Err(e) => {
            eprintln!("studiod discover: {e}");
            2
        }
        Ok(found) => {
            if args.json {
                println!("{}", artnet_json(&found));
            } else {
                print!("{}", artnet_toml(&found));
            }
            if found.replies.is_empty() {
                eprintln!("studiod discover: no Art-Net node answered at {target} within {} ms", args.wait_ms);
                1
            } else {
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::profile::CameraIdentity;
    use crate::lighting::NodeInfo;

    #[test]
    fn an_artnet_target_is_one_ipv4_unicast_address_port_6454_by_default() {
        assert_eq!(artnet_target("10.0.0.7"), Ok("10.0.0.7:6454".parse().unwrap()));
        assert_eq!(artnet_target("127.0.0.1:7000"), Ok("127.0.0.1:7000".parse().unwrap()));
        for refused in ["255.255.255.255", "255.255.255.255:6454", "0.0.0.0", "239.1.2.3", "224.0.0.1", "127.0.0.1:0", "[::1]:6454"] {
            let e = artnet_target(refused).unwrap_err();
            assert!(e.contains("never broadcasts") || e.contains("IPv4 only"), "{refused}: {e}");
        }
        assert_eq!(artnet_bind("127.0.0.2"), Ok("127.0.0.2:6454".parse().unwrap()));
        assert!(artnet_bind("[::]:6454").is_err());
    }

    #[test]
    fn artnet_toml_has_one_table_per_output_port_with_config_names() {
        let reply = |short: &str, outputs: Vec<u16>| PollReply {
            from: "10.0.0.7:6454".parse().unwrap(),
            info: NodeInfo { short_name: short.into(), long_name: "Node \"A\"".into(), firmware: 0x0107 },
            outputs,
        };
        let one = NodesFound { target: "10.0.0.7:6454".parse().unwrap(), replies: vec![reply("Stage Left!", vec![0x0123])], problem: None };
        let t = artnet_toml(&one);
        assert!(t.contains("\n# 10.0.0.7:6454: \"Stage Left!\" ('Node \"A\"'), firmware 1.7, 1 DMX output port(s)\n"), "{t}");
        assert!(t.ends_with("[[artnet]]\nname = \"stage-left\"\ntarget = \"10.0.0.7:6454\"\nuniverse = 291\n"), "{t}");
        let two = NodesFound { replies: vec![reply("n", vec![1, 2]), reply("", vec![2, 3])], ..one };
        let names: Vec<_> = artnet_outputs(&two).into_iter().flatten().collect();
        assert_eq!(names, [("n-1".to_string(), 1), ("n-2".to_string(), 2), ("node-3".to_string(), 3)], "universe 2 once");
    }

    #[test]
    fn picks_the_profile_whose_identity_fits() {
        let mut a = probe_profile();
        a.id = "a".into();
        a.identity = Some(CameraIdentity { vendor: 1, models: vec![0x0402, 0x0403] });
        let v = Version { vendor: 1, model: 0x0403, rom: 0x100, sockets: 2 };
        assert_eq!(match_profile(&[a.clone()], &v), Some("a".into()));
        assert_eq!(match_profile(&[a], &Version { vendor: 2, ..v }), None);
    }

    #[test]
    fn toml_names_the_fallback_and_the_place() {
        let f = Found {
            address: 2,
            version: Version { vendor: 1, model: 0x0402, rom: 0x0100, sockets: 2 },
            profile: "generic-visca".into(),
            matched: false,
        };
        let t = to_toml(&Target::Serial { port: "/dev/ttyUSB0".into(), baud: 9600 }, std::slice::from_ref(&f));
        assert!(t.contains("# no profile declares vendor 0x0001 model 0x0402"), "{t}");
        assert!(t.contains("port = \"/dev/ttyUSB0\"\nbaud = 9600\naddress = 2\n"), "{t}");
        let u = to_toml(&Target::Url(CameraUrl::parse("visca-udp://127.0.0.1:9").unwrap()), &[f]);
        assert!(u.contains("url = \"visca-udp://127.0.0.1:9\"\n"), "{u}");
    }
}
