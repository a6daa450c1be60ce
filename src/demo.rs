//! `studiod demo`: a complete booth on one machine, loopback only.
//!
//! Three virtual VISCA cameras on a pty, an Art-Net and an OSC monitor on
//! 127.0.0.1 (`studiod_sim::booth::SimBooth`), and the daemon itself,
//! configured from the example booth that is embedded in the binary (so the
//! demo needs no files and no hardware). Type a scene name and Enter to apply
//! it; Ctrl-C to stop.
//!
//! A module of the `studiod` binary only (feature `demo`, on by default),
//! never of the library: the daemon library does not depend on the simulator
//! or the broker.
//!
//! MQTT: without `--mqtt URL` the demo embeds a broker (rumqttd) in the
//! process, listening for MQTT **v5** on 127.0.0.1 (1883 when free, else a
//! free port). The MQTT adapter is the daemon's own: persistent session,
//! manual acks, Last Will, retained `status`/`state`. rumqttd listeners speak
//! one protocol version each, so clients use v5 (`mosquitto_pub -V 5`); the
//! demo prints ready-to-paste lines. The broker's threads have no stop API;
//! they end with the process.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use studiod::command::{Command, Origin};
use studiod::engine::{Event, Request};
use studiod_sim::booth::{HttpSetup, SimBooth};
use studiod_sim::monitor::ReplyTo;
use studiod_sim::{ChainOptions, Preset};

/// The demo's credentials: it only listens on loopback.
const DEMO_PIN: &str = "2468";
const DEMO_TOKEN: &str = "demo-technician-token";

/// Presets the demo's virtual cameras hold when it starts, so scenes visibly
/// reframe: (preset, pan°, tilt°), spread 5° further per camera.
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
            max_payload_size: studiod::adapters::mqtt::Options::default().max_packet_size as usize,
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

    // Without --dir the demo's folder is its own and goes when it stops
    // (also on an error): a demo leaves nothing behind.
    let (dir, cleanup) = match opts.dir {
        Some(d) => (d, None),
        None => {
            let t = TempFolder::create()?;
            (t.0.clone(), Some(t))
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
    let config = studiod::config::load(&config_path).map_err(|d| anyhow::anyhow!("embedded demo config is invalid:\n{d}"))?;
    let scene_names: Vec<String> = config.scenes.keys().cloned().collect();
    let cct_ranges: BTreeMap<String, Option<(u32, u32)>> = config.fixtures.iter().map(|f| (f.name.clone(), f.profile.cct_range)).collect();
    let topic_base = format!("studiod/{}", config.studio.id);
    // The cameras hold their presets before studiod starts, as a calibrated
    // booth's do (presets live in the camera): the safe scene at start and
    // the first scene typed recall real framings, and nothing has to wait.
    for (i, cam) in config.cameras.iter().enumerate() {
        let p = &cam.profile;
        for (preset, pan, tilt) in DEMO_PRESETS {
            let pan = p.pan.to_units(pan + i as f64 * 5.0);
            let memory = p.memory_byte(*preset)?;
            chain.store_preset(usize::from(cam.address), memory, Preset { pan, tilt: p.tilt.to_units(*tilt), zoom: 0 });
        }
    }
    let running = studiod::daemon::start(config).await?;
    // The node replies where a real one would, to the Art-Net port: the one
    // the daemon bound (any free port on loopback, so the demo never fights
    // another Art-Net program for 6454).
    if let Some(listen) = running.devices.lighting.as_ref().and_then(|l| l.artnet_listen_addr()) {
        artnet.set_reply_to(ReplyTo::Port(listen.port()));
    }
    let (mqtt_host, mqtt_port) = broker_host_port(&mqtt_url);

    println!();
    println!("studiod demo — a booth on this machine (loopback only)");
    println!("  folder:        {}{}", dir.display(), if cleanup.is_some() { "   (removed when the demo stops)" } else { "" });
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
    println!("  presets:       1–{} stored in each camera", DEMO_PRESETS.len());
    println!();
    println!("Type a scene name (or `blackout`) and Enter to apply it. Ctrl-C to stop.");

    // Every task the demo starts is owned here and ended before it returns.
    let mut tasks = tokio::task::JoinSet::new();

    // Print what the lights and the OSC console receive, as a person would see it.
    let lighting = running.devices.lighting.clone();
    tasks.spawn(async move {
        // At most one line per 400 ms while a fade runs, and always the look
        // it settles on (the last frame of a fade may come right after a print).
        let mut latest = Vec::new();
        let mut printed = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(400));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                frame = artnet.next() => match frame {
                    Ok(f) => latest = f.data,
                    Err(_) => break,
                },
                _ = tick.tick() => {
                    if latest == printed {
                        continue;
                    }
                    printed = latest.clone();
                    if let Some(l) = &lighting {
                        if let Ok(look) = l.current_values().await {
                            println!("  lights  {}", describe_look(&look, &cct_ranges));
                        }
                    }
                }
            }
        }
    });
    tasks.spawn(async move {
        while let Ok(p) = osc.next().await {
            if let rosc::OscPacket::Message(m) = p {
                println!("  osc     {} {:?}", m.addr, m.args);
            }
        }
    });
    let mut events = running.engine.events();
    tasks.spawn(async move {
        while let Ok(e) = events.recv().await {
            match e {
                Event::DeviceOffline { device, reason } => println!("  device  {device} offline: {reason}"),
                Event::DeviceOnline { device } => println!("  device  {device} online"),
                Event::SceneApplied { scene, origin, ok, failed, superseded, .. } => {
                    let how = if ok {
                        "ok".to_string()
                    } else if superseded {
                        // A scene typed before the last one finished moving: not a failure.
                        "superseded by a newer scene".to_string()
                    } else {
                        let devices: Vec<String> = failed.iter().map(|(d, why)| format!("{d}: {why}")).collect();
                        format!("with failures: {}", devices.join("; "))
                    };
                    println!("  scene   {scene} applied from {} ({how})", origin.as_str())
                }
            }
        }
    });

    let mut lines = stdin_lines();
    let engine = running.engine.clone();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(line) = lines.recv() => {
                let name = line.trim().to_string();
                if name.is_empty() { continue; }
                let command = if name == "blackout" {
                    Command::Blackout { fade: Some(Duration::from_millis(500)) }
                } else {
                    Command::ApplyScene { scene: name, fade: None, at: None, slot: None }
                };
                let engine = engine.clone();
                tasks.spawn(async move {
                    let out = engine.execute(Request::new(None, Origin::Cli, command)).await;
                    match out.error {
                        None => println!("  done    {} in {} ms", out.scene.unwrap_or_else(|| out.action.to_string()), out.duration.as_millis()),
                        Some(e) => println!("  failed  {}: {}", e.code.as_str(), e.message),
                    }
                });
            }
        }
    }
    println!("stopping…");
    // A second Ctrl-C (or SIGTERM) while stopping ends the demo at once, as
    // people expect of a terminal program; its folder still goes.
    let forced_removal = cleanup.as_ref().map(|t| t.0.clone());
    let mut force = tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if let Some(d) = forced_removal {
            let _ = std::fs::remove_dir_all(d);
        }
        eprintln!("studiod demo: stopped at once");
        std::process::exit(130);
    });
    running.shutdown().await;
    chain.shutdown().await;
    tasks.shutdown().await;
    force.abort();
    let _ = (&mut force).await;
    Ok(())
}

/// Lines typed on the terminal. A blocking read of stdin cannot be
/// cancelled, so it runs on a plain thread of its own, not on tokio's
/// blocking pool (whose shutdown would wait for the next Enter): the thread
/// ends at end of input or with the process. Not a terminal (a pipe, /dev/null):
/// no lines, the demo runs until a signal.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    if std::io::stdin().is_terminal() {
        let spawned = std::thread::Builder::new().name("demo-stdin".into()).spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("studiod demo: cannot read the terminal ({e}); scenes can still be applied over MQTT or the pages");
        }
    }
    rx
}

/// `(host, port)` of an `mqtt://host:port` URL, for the printed example lines.
fn broker_host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r).trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(1883)),
        _ => (rest.to_string(), 1883),
    }
}

/// One line per look, in the units the scene files and pages use:
/// `key 85%, colour temp 5600 K | rgb 40%, colour #ff8800`.
fn describe_look(look: &studiod::lighting::Look, cct_ranges: &BTreeMap<String, Option<(u32, u32)>>) -> String {
    use studiod::scene::SceneValue;
    look.iter()
        .map(|(fixture, attrs)| {
            let units = studiod::scene::to_scene_units(attrs, cct_ranges.get(fixture).copied().flatten());
            // Intensity first (it is what people look at), then the others.
            let mut parts: Vec<(bool, String)> = units
                .into_iter()
                .map(|(k, v)| match v {
                    SceneValue::Level(x) if k == "intensity" => (false, format!("{:.0}%", x * 100.0)),
                    SceneValue::Level(x) => (true, format!("{k} {:.0}%", x * 100.0)),
                    SceneValue::Kelvin(kelvin) => (true, format!("colour temp {kelvin} K")),
                    SceneValue::Color(hex) => (true, format!("colour {hex}")),
                })
                .collect();
            parts.sort();
            format!("{fixture} {}", parts.into_iter().map(|(_, p)| p).collect::<Vec<_>>().join(", "))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The demo's own folder under the system temp dir, removed on drop (at
/// the end of the demo, on an error, or on a panic that unwinds).
struct TempFolder(PathBuf);

impl TempFolder {
    fn create() -> std::io::Result<TempFolder> {
        let d = std::env::temp_dir().join(format!("studiod-demo-{}", std::process::id()));
        std::fs::create_dir_all(&d)?;
        Ok(TempFolder(d))
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("studiod demo: could not remove {}: {e}", self.0.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use studiod::config::model::Attribute;

    #[test]
    fn looks_are_described_in_kelvin_and_hex_colour() {
        let mut look = studiod::lighting::Look::new();
        look.insert("key".into(), [(Attribute::Intensity, 0.85), (Attribute::Cct, 0.5)].into_iter().collect());
        look.insert("rgb".into(), [(Attribute::Red, 1.0), (Attribute::Green, 0.0), (Attribute::Blue, 0.0)].into_iter().collect());
        let ranges = BTreeMap::from([("key".to_string(), Some((2700, 6500))), ("rgb".to_string(), None)]);
        assert_eq!(describe_look(&look, &ranges), "key 85%, colour temp 4600 K | rgb colour #ff0000");
    }
}
