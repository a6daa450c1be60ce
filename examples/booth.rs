//! A real booth for external tests (the browser tests, benches): the example
//! booth with the whole daemon in-process, its three cameras on a virtual
//! VISCA chain and its Art-Net/OSC outputs pointed at loopback monitors.
//!
//! ```text
//! cargo run --example booth -- --pin 4711 --token tech-token [--mqtt mqtt://127.0.0.1:1883]
//! ```
//! Prints machine-readable lines on stdout, one event per line:
//! - `URL http://127.0.0.1:PORT` — the tablet/technician pages (first line);
//! - `ARTNET {"universe":0,"data":[…]}` — the first 32 channels of universe 0,
//!   whenever they differ from the previous frame (keep-alive repeats are not
//!   printed; the first frame is);
//! - `CAMERA {"camera":1,"name":"front","pan":…,"tilt":…,"zoom":…,"moving":bool}`
//!   — a camera's state as the virtual camera sees it (pan/tilt/zoom in VISCA
//!   units); at most one line per camera per 50 ms, except that a flip of
//!   `moving` is always printed at once, and the settled state always follows;
//! - `OSC {"address":…,"args":[…]}` — an OSC message received by the console monitor;
//! - `READY` — every camera is online and the start-up scene (`house`) has
//!   reached the cameras: tests can start;
//! - `BYE` — after a clean shutdown.
//!
//! Stdin: `quit` (or EOF, or SIGTERM/SIGINT) shuts the daemon down cleanly;
//! `cameras` prints every camera's `CAMERA` line now (for a test that wants
//! the current state without waiting for a change). Loopback only.
#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

use studiod_sim::monitor::{ArtNetMonitor, OscMonitor, ReplyTo};
use studiod_sim::{ChainOptions, VirtualChain};

#[derive(Parser)]
struct Args {
    /// Creator PIN (written to a file in the booth's temp folder).
    #[arg(long)]
    pin: String,
    /// Technician token (written to a file in the booth's temp folder).
    #[arg(long)]
    token: String,
    /// `[mqtt] url` (loopback only); without it the booth has no MQTT.
    #[arg(long)]
    mqtt: Option<String>,
    /// HTTP listen address (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Multiplies every camera move's duration: small enough that tests are
    /// quick, large enough that a jog is visible over several lines.
    #[arg(long, default_value_t = 0.2)]
    move_time_scale: f64,
    /// Keep the booth folder (config, state) after exit, for inspection.
    #[arg(long)]
    keep: bool,
}

/// Channels printed per `ARTNET` line: the booth uses 18; a little margin
/// shows that nothing is sent beyond its fixtures.
const ARTNET_CHANNELS: usize = 32;
/// At most one `CAMERA` line per camera per this interval while it moves.
const CAMERA_MIN_INTERVAL: Duration = Duration::from_millis(50);
/// How often camera positions are looked at: the simulator interpolates
/// positions between its steps, so a moving camera changes without a step.
const CAMERA_POLL: Duration = Duration::from_millis(10);
const CAMERAS: usize = 3;
const START_LIMIT: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(std::env::var("STUDIOD_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    if let Err(e) = run(args).await {
        eprintln!("booth: {e:#}");
        std::process::exit(1);
    }
}

fn loopback_url(url: &str) -> bool {
    // mqtt://127.x.x.x:port or mqtt://localhost:port only.
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    let host = rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest);
    host == "localhost" || host.parse::<std::net::Ipv4Addr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

async fn run(args: Args) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    anyhow::ensure!(args.listen.ip().is_loopback(), "--listen must be a loopback address");
    if let Some(url) = &args.mqtt {
        anyhow::ensure!(loopback_url(url), "--mqtt must point at a loopback broker");
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    let dir = tempfile::Builder::new().prefix("studiod-booth-").tempdir()?;
    let opts = ChainOptions { move_time_scale: args.move_time_scale, ..Default::default() };
    let listen = args.listen.to_string();
    let http = studiod_sim::booth::HttpSetup { listen: &listen, pin: &args.pin, token: &args.token };
    let studiod_sim::booth::SimBooth { chain, artnet, osc, config_path } =
        studiod_sim::booth::SimBooth::create(dir.path(), opts, args.mqtt.clone(), Some(http))
            .await
            .context("starting the simulated booth")?;
    let chain = Arc::new(chain);
    let config = studiod::config::load(&config_path).map_err(|d| anyhow::anyhow!("booth config is invalid:\n{d}"))?;
    // Chain position (= VISCA address after AddressSet) → camera name.
    let names: BTreeMap<usize, String> = config.cameras.iter().map(|c| (usize::from(c.address), c.name.clone())).collect();

    // Monitors print before the daemon starts so that its first frames are seen.
    let artnet = Arc::new(artnet);
    tokio::spawn(print_artnet(artnet.clone()));
    tokio::spawn(print_osc(osc));
    let (force_tx, force_rx) = tokio::sync::mpsc::unbounded_channel();
    let cameras_task = tokio::spawn(print_cameras(chain.clone(), names, force_rx));

    let recalled: Vec<u64> = (1..=CAMERAS).map(|c| chain.camera_state(c).presets_recalled).collect();
    let running = studiod::daemon::start(config).await?;
    // The node replies to the Art-Net port the daemon bound, as a real one would.
    if let Some(listen) = running.devices.lighting.as_ref().and_then(|l| l.artnet_listen_addr()) {
        artnet.set_reply_to(ReplyTo::Port(listen.port()));
    }
    let url = running.http_url.clone().context("the booth config has [http] but the daemon serves no URL")?;
    emit(format_args!("URL {url}"));

    // READY: cameras online, and the safe scene's presets reached them, so a
    // test starts from a settled booth (as tests/support's Booth does).
    let ready = async {
        for cam in running.devices.cameras.values() {
            cam.health().wait_for(|h| h.online).await.map_err(|_| anyhow::anyhow!("camera handle closed"))?;
        }
        for (i, before) in recalled.into_iter().enumerate() {
            chain.wait_until(i + 1, |s| s.presets_recalled > before && !s.moving, START_LIMIT).await?;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(START_LIMIT, ready).await.context("cameras not online within 20 s")??;
    emit(format_args!("READY"));

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            line = lines.next_line() => match line {
                Ok(Some(l)) if l.trim() == "quit" => break,
                Ok(Some(l)) if l.trim() == "cameras" => { let _ = force_tx.send(()); }
                Ok(Some(l)) => eprintln!("booth: unknown control {l:?} (quit, cameras)"),
                // EOF: whoever started us is gone; never outlive it.
                Ok(None) | Err(_) => break,
            },
        }
    }
    running.shutdown().await;
    // The printer holds the other reference to the chain; stop it first.
    cameras_task.abort();
    let _ = cameras_task.await;
    match Arc::try_unwrap(chain) {
        Ok(chain) => chain.shutdown().await,
        Err(chain) => drop(chain), // dropping stops the simulator too
    }
    if args.keep {
        eprintln!("booth: kept {}", dir.keep().display());
    }
    emit(format_args!("BYE"));
    Ok(())
}

/// One line on stdout, flushed. Unlike `println!` it never panics: when the
/// reader is gone, stdin's EOF ends the booth.
fn emit(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(format_args!("{line}\n"));
    let _ = out.flush();
}

async fn print_artnet(artnet: Arc<ArtNetMonitor>) {
    let mut last: Option<Vec<u8>> = None;
    while let Ok(frame) = artnet.next().await {
        if frame.port_address != 0 {
            continue;
        }
        let data: Vec<u8> = frame.data.iter().copied().take(ARTNET_CHANNELS).collect();
        if last.as_ref() == Some(&data) {
            continue;
        }
        emit(format_args!("ARTNET {}", json!({"universe": frame.port_address, "data": data})));
        last = Some(data);
    }
}

async fn print_osc(osc: OscMonitor) {
    while let Ok(p) = osc.next().await {
        let mut stack = vec![p];
        // Bundles nest; bounded by the packet's size.
        while let Some(p) = stack.pop() {
            match p {
                rosc::OscPacket::Message(m) => {
                    let args: Vec<serde_json::Value> = m.args.iter().map(osc_json).collect();
                    emit(format_args!("OSC {}", json!({"address": m.addr, "args": args})));
                }
                rosc::OscPacket::Bundle(b) => stack.extend(b.content.into_iter().rev()),
            }
        }
    }
}

fn osc_json(a: &rosc::OscType) -> serde_json::Value {
    use rosc::OscType::*;
    match a {
        Int(i) => json!(i),
        Long(i) => json!(i),
        Float(f) => json!(f),
        Double(f) => json!(f),
        String(s) => json!(s),
        Bool(b) => json!(b),
        other => json!(format!("{other:?}")),
    }
}

#[derive(PartialEq, Clone, Copy)]
struct Seen {
    pan: i32,
    tilt: i32,
    zoom: u16,
    moving: bool,
}

/// Print `CAMERA` lines: on a simulator step or a poll tick, each camera
/// whose state differs from what was last printed gets a line, unless it got
/// one less than 50 ms ago — then it is printed on a later tick, so the
/// settled state is never lost. `moving` flips skip the rate limit.
async fn print_cameras(chain: Arc<VirtualChain>, names: BTreeMap<usize, String>, mut force: tokio::sync::mpsc::UnboundedReceiver<()>) {
    let mut steps = chain.subscribe();
    let mut tick = tokio::time::interval(CAMERA_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut printed: Vec<Option<(Seen, Instant)>> = vec![None; chain.cameras()];
    loop {
        let mut forced = false;
        tokio::select! {
            r = steps.changed() => if r.is_err() { return },
            _ = tick.tick() => {}
            f = force.recv() => match f { Some(()) => forced = true, None => return },
        }
        let now = Instant::now();
        for (i, last) in printed.iter_mut().enumerate() {
            let s = chain.camera_state(i + 1);
            let seen = Seen { pan: s.pan, tilt: s.tilt, zoom: s.zoom, moving: s.moving };
            let due = match last {
                _ if forced => true,
                None => true,
                Some((prev, at)) => *prev != seen && (prev.moving != seen.moving || now.duration_since(*at) >= CAMERA_MIN_INTERVAL),
            };
            if due {
                let name = names.get(&(i + 1)).map(String::as_str).unwrap_or("");
                emit(format_args!(
                    "CAMERA {}",
                    json!({"camera": i + 1, "name": name, "pan": seen.pan, "tilt": seen.tilt, "zoom": seen.zoom, "moving": seen.moving})
                ));
                *last = Some((seen, now));
            }
        }
    }
}
