//! `studiod demo`: a complete booth on one machine, loopback only.
//!
//! Three virtual VISCA cameras on a pty, an Art-Net and an OSC monitor on
//! 127.0.0.1, and the daemon itself, configured from the example booth that
//! is embedded in the binary (so the demo needs no files and no hardware).
//! Type a scene name and Enter to apply it; Ctrl-C to stop.
//!
//! MQTT: without `--mqtt URL` the demo embeds a broker (rumqttd) in the
//! process, listening for MQTT **v5** on 127.0.0.1 (1883 when free, else a
//! free port). The MQTT adapter is the daemon's own: persistent session,
//! manual acks, Last Will, retained `status`/`state`. rumqttd listeners speak
//! one protocol version each, so clients use v5 (`mosquitto_pub -V 5`); the
//! demo prints ready-to-paste lines. The broker's threads have no stop API;
//! they end with the process.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncBufReadExt;

use crate::command::{Command, Origin};
use crate::engine::{Event, Request};
use crate::sim::monitor::{ArtNetMonitor, OscMonitor};
use crate::sim::{ChainOptions, VirtualChain};

/// The example booth, embedded so the demo and tests need no installed files.
pub const EXAMPLE_CONFIG: &str = include_str!("../studiod.example.toml");

pub const SCENES: &[(&str, &str)] = &[
    ("house", include_str!("../scenes/house.toml")),
    ("intro", include_str!("../scenes/intro.toml")),
    ("product-closeup", include_str!("../scenes/product-closeup.toml")),
    ("flash-sale", include_str!("../scenes/flash-sale.toml")),
    ("unboxing", include_str!("../scenes/unboxing.toml")),
    ("end-of-slot", include_str!("../scenes/end-of-slot.toml")),
];

/// The profiles the example booth uses.
pub const PROFILES: &[(&str, &str)] = &[
    ("cameras/generic-visca.toml", include_str!("../device-profiles/cameras/generic-visca.toml")),
    ("fixtures/godox-p600bi-hard.toml", include_str!("../device-profiles/fixtures/godox-p600bi-hard.toml")),
    ("fixtures/aputure-ls-600d-pro.toml", include_str!("../device-profiles/fixtures/aputure-ls-600d-pro.toml")),
    ("fixtures/generic-dimmer.toml", include_str!("../device-profiles/fixtures/generic-dimmer.toml")),
    ("fixtures/generic-dimmer-16bit.toml", include_str!("../device-profiles/fixtures/generic-dimmer-16bit.toml")),
    ("fixtures/generic-rgb.toml", include_str!("../device-profiles/fixtures/generic-rgb.toml")),
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
        let artnet = ArtNetMonitor::bind(loopback).await?;
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
/// the given loopback peers. Returns the config path.
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
        .replace("target = \"127.0.0.1:6454\"", &format!("target = \"{}\"", ports.artnet))
        .replace("target = \"127.0.0.1:8000\"", &format!("target = \"{}\"", ports.osc));
    // The example must stay in step with these substitutions: nothing of the
    // real booth may leak into a loopback-only config.
    for real in ["/dev/ttyUSB0", "/var/lib/studiod", "127.0.0.1:6454", "127.0.0.1:8000"] {
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

/// The demo's credentials: it only listens on loopback.
const DEMO_PIN: &str = "2468";
const DEMO_TOKEN: &str = "demo-technician-token";

/// Presets the demo stores on its virtual cameras so scenes visibly reframe:
/// (preset, pan°, tilt°) per camera index.
const DEMO_PRESETS: &[(u8, f64, f64)] = &[(1, 0.0, 0.0), (2, -20.0, 5.0), (3, 15.0, -10.0), (4, 30.0, 10.0), (5, -35.0, -15.0)];

/// `studiod demo`'s options.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Folder for the generated config, pty and state (default: a new temp folder).
    pub dir: Option<PathBuf>,
    /// An external broker (`mqtt://host:port`) instead of the embedded one.
    pub mqtt: Option<String>,
    /// Also forward every Art-Net packet the demo's monitor receives, as
    /// received, to this loopback address (tests watch the wire there).
    pub artnet_copy: Option<SocketAddr>,
}

/// How long the embedded broker may take to accept connections.
const BROKER_READY: Duration = Duration::from_secs(5);

/// Start rumqttd in this process with one MQTT v5 listener on 127.0.0.1:
/// `preferred` when free, else a free port. Returns the port once it accepts
/// connections.
async fn start_embedded_broker(preferred: u16) -> Result<u16> {
    use std::collections::HashMap;
    // A port found free may be taken before rumqttd binds it: then the
    // broker thread ends and we try another (bounded).
    let mut last_err = String::new();
    for attempt in 0..5 {
        let port = match std::net::TcpListener::bind(("127.0.0.1", if attempt == 0 { preferred } else { 0 })) {
            Ok(l) => l.local_addr()?.port(),
            Err(_) => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
        };
        let connections = rumqttd::ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: crate::adapters::mqtt::Options::default().max_packet_size as usize,
            max_inflight_count: 256,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        };
        let server = rumqttd::ServerSettings {
            name: "studiod-demo-v5".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            tls: None,
            next_connection_delay_ms: 1,
            connections,
        };
        let config = rumqttd::Config {
            router: rumqttd::RouterConfig {
                max_connections: 64,
                max_outgoing_packet_count: 200,
                max_segment_size: 16 * 1024 * 1024,
                max_segment_count: 4,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v5: Some(HashMap::from([("1".to_string(), server)])),
            ..Default::default()
        };
        let (exited_tx, mut exited) = tokio::sync::oneshot::channel::<String>();
        std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            // Returns only when its listener ended (e.g. the port was taken).
            let why = match broker.start() {
                Ok(()) => "listener stopped".to_string(),
                Err(e) => e.to_string(),
            };
            let _ = exited_tx.send(why);
        })?;
        let deadline = tokio::time::Instant::now() + BROKER_READY;
        loop {
            if let Ok(why) = exited.try_recv() {
                last_err = format!("embedded broker on port {port} stopped: {why}");
                break;
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(port);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("embedded MQTT broker did not accept connections on 127.0.0.1:{port} within {BROKER_READY:?}");
            }
            // Readiness poll interval of a freshly started listener thread.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    anyhow::bail!("could not start the embedded MQTT broker: {last_err}")
}

pub async fn run(opts: DemoOptions) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    if let Some(copy) = opts.artnet_copy {
        anyhow::ensure!(copy.ip().is_loopback(), "--artnet-copy must be a loopback address (the demo sends nothing beyond this machine)");
    }
    let (mqtt_url, embedded) = match &opts.mqtt {
        Some(url) => (url.clone(), false),
        None => (format!("mqtt://127.0.0.1:{}", start_embedded_broker(1883).await?), true),
    };

    let tmp;
    let dir = match opts.dir {
        Some(d) => d,
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&dir)?;
    // The tablet pages: 127.0.0.1:8080 when free, else any free port.
    let listen = if std::net::TcpListener::bind(("127.0.0.1", 8080)).is_ok() { "127.0.0.1:8080" } else { "127.0.0.1:0" };
    let http = HttpSetup { listen, pin: DEMO_PIN, token: DEMO_TOKEN };
    let SimBooth { chain, artnet, osc, config_path } = SimBooth::create(&dir, ChainOptions::default(), Some(mqtt_url.clone()), Some(http))
        .await
        .context("starting the simulated booth")?;
    let serial = chain.path().to_path_buf();
    let artnet = artnet.forward_to(opts.artnet_copy);
    let config = crate::config::load(&config_path).map_err(|d| anyhow::anyhow!("embedded demo config is invalid:\n{d}"))?;
    let scene_names: Vec<String> = config.scenes.keys().cloned().collect();
    let topic_base = format!("studiod/{}", config.studio.id);
    let running = crate::daemon::start(config).await?;
    let (mqtt_host, mqtt_port) = broker_host_port(&mqtt_url);

    println!();
    println!("studiod demo — a booth on this machine (loopback only)");
    println!("  folder:        {}", dir.display());
    println!("  config:        {}", config_path.display());
    println!("  cameras:       3 virtual VISCA cameras on {}", serial.display());
    println!("  Art-Net:       monitor on {}", artnet.local_addr()?);
    println!("  OSC:           monitor on {}", osc.local_addr()?);
    println!("  scenes:        {}", scene_names.join(", "));
    println!("  MQTT broker:   {mqtt_url}{}", if embedded { "   (embedded, MQTT v5)" } else { "" });
    println!("  apply a scene: mosquitto_pub -V 5 -h {mqtt_host} -p {mqtt_port} -q 1 -t {topic_base}/cmd -m '{{\"id\":\"demo-1\",\"action\":\"apply_scene\",\"scene\":\"flash-sale\"}}'");
    println!("  watch:         mosquitto_sub -V 5 -h {mqtt_host} -p {mqtt_port} -q 1 -t '{topic_base}/#' -v");
    if let Some(url) = &running.http_url {
        println!("  creator page:  {url}/          (PIN {DEMO_PIN})");
        println!("  technician:    {url}/tech      (token {DEMO_TOKEN})");
        println!("  ctl:           studiod ctl --url {url} --token-file {} scenes", dir.join("tech.token").display());
    }
    println!("Type a scene name (or `blackout`) and Enter to apply it. Ctrl-C to stop.");
    println!();

    // Give the virtual cameras distinct presets, as a technician would.
    let cams = running.devices.cameras.clone();
    tokio::spawn(async move {
        let per_camera = cams.into_values().enumerate().map(|(i, cam)| async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), cam.health().wait_for(|h| h.online)).await;
            for (p, pan, tilt) in DEMO_PRESETS {
                let spread = i as f64 * 5.0;
                if cam.move_absolute(pan + spread, *tilt, None).await.is_ok() {
                    let _ = cam.store_preset(*p).await;
                }
            }
            let _ = cam.home().await;
        });
        futures::future::join_all(per_camera).await;
        // Scenes recalled before this would be cancelled by the set-up moves.
        println!("  cameras ready: presets 1–{} stored", DEMO_PRESETS.len());
    });

    // Print what the lights and the OSC console receive, as a person would see it.
    let lighting = running.devices.lighting.clone();
    tokio::spawn(async move {
        let mut last = Vec::new();
        let mut last_print = tokio::time::Instant::now() - Duration::from_secs(1);
        while let Ok(frame) = artnet.next().await {
            if frame.data == last || last_print.elapsed() < Duration::from_millis(400) {
                continue;
            }
            last = frame.data.clone();
            last_print = tokio::time::Instant::now();
            if let Some(l) = &lighting {
                if let Ok(look) = l.current_values().await {
                    println!("  lights  {}", describe_look(&look));
                }
            }
        }
    });
    tokio::spawn(async move {
        while let Ok(p) = osc.next().await {
            if let rosc::OscPacket::Message(m) = p {
                println!("  osc     {} {:?}", m.addr, m.args);
            }
        }
    });
    let mut events = running.engine.events();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            match e {
                Event::DeviceOffline { device, reason } => println!("  device  {device} offline: {reason}"),
                Event::DeviceOnline { device } => println!("  device  {device} online"),
                Event::SceneApplied { scene, origin, ok, .. } => {
                    println!("  scene   {scene} applied from {} ({})", origin.as_str(), if ok { "ok" } else { "with failures" })
                }
            }
        }
    });

    let engine = running.engine.clone();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // Read scene names only from a terminal, and stop at end of input
    // (Ctrl-D) instead of polling a closed stdin.
    let mut reading = std::io::stdin().is_terminal();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            line = lines.next_line(), if reading => match line {
                Ok(Some(l)) => {
                    let name = l.trim().to_string();
                    if name.is_empty() { continue; }
                    let command = if name == "blackout" {
                        Command::Blackout { fade: Some(Duration::from_millis(500)) }
                    } else {
                        Command::ApplyScene { scene: name, fade: None, at: None, slot: None }
                    };
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        let out = engine.execute(Request::new(None, Origin::Cli, command)).await;
                        match out.error {
                            None => println!("  done    {} in {} ms", out.scene.unwrap_or_else(|| out.action.to_string()), out.duration.as_millis()),
                            Some(e) => println!("  failed  {}: {}", e.code.as_str(), e.message),
                        }
                    });
                }
                Ok(None) | Err(_) => reading = false,
            },
        }
    }
    println!("stopping…");
    running.shutdown().await;
    chain.shutdown().await;
    Ok(())
}

/// `(host, port)` of an `mqtt://host:port` URL, for the printed example lines.
fn broker_host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r).trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(1883)),
        _ => (rest.to_string(), 1883),
    }
}

fn describe_look(look: &crate::lighting::Look) -> String {
    look.iter()
        .map(|(fixture, attrs)| {
            // Intensity first (it is what people look at), then the other attributes.
            let mut parts: Vec<(bool, &str, String)> =
                attrs.iter().map(|(a, v)| (a.name() != "intensity", a.name(), format!("{:.0}%", v * 100.0))).collect();
            parts.sort();
            let inner: Vec<String> = parts.into_iter().map(|(other, k, v)| if other { format!("{k} {v}") } else { v }).collect();
            format!("{fixture} {}", inner.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A per-run folder under the system temp dir (kept after exit so the
/// generated config can be inspected).
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("studiod-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
