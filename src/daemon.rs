//! The daemon: starts the device actors, the engine and the adapters, then
//! runs until SIGTERM/SIGINT (SIGHUP reloads). Tests, benches and the demo use
//! [`start`] to run a whole daemon in-process.
//!
//! Architecture Invariant: shutdown is one `CancellationToken`; every task
//! stops when it fires, lights keep their last look (or the configured
//! shutdown scene), and the MQTT status goes offline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::camera::{spawn_serial_ports, PortOptions};
use crate::command::{Command, Origin};
use crate::config::model::Config;
use crate::engine::{BoothState, DeviceHandles, Engine, EngineHandle, Request, RespawnError};
use crate::metrics::{self, Metrics};
use crate::osc::OscSender;
use crate::sdnotify;

/// How long stopping one set of tasks may take before we stop waiting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);
/// The whole of a shutdown, SIGTERM to return: systemd and the booth
/// operator expect the process gone within 2 s; the rest is process exit.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_millis(1800);
/// Kept back from the adapters for the devices' final frame and the last-look flush.
const DEVICE_STOP_RESERVE: Duration = Duration::from_millis(300);

/// Running device actors and what it takes to stop them.
struct DeviceSet {
    devices: DeviceHandles,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// The serial ports' counters of the device set in force, read by the
/// `/metrics` collector. Replaced on respawn (the counts then restart, which
/// Prometheus reads as a counter reset).
type PortCounterList = Arc<std::sync::Mutex<Vec<(String, Arc<crate::camera::port::PortCounters>)>>>;

impl DeviceSet {
    async fn start(config: &Config, cancel: CancellationToken, metrics: &Metrics, port_counters: &PortCounterList) -> Result<DeviceSet> {
        let options = PortOptions { read_identity: true, ..PortOptions::default() };
        let ports = spawn_serial_ports(&config.cameras, options, cancel.clone()).context("starting camera ports")?;
        let mut devices = DeviceHandles::default();
        let mut tasks = Vec::new();
        *port_counters.lock().unwrap_or_else(|e| e.into_inner()) = ports.iter().map(|p| (p.name().to_string(), p.counters())).collect();
        for port in ports {
            for h in port.handles() {
                devices.cameras.insert(h.name().to_string(), h.clone());
            }
            tasks.push(tokio::spawn(port.join()));
        }
        let outputs = config.outputs();
        if !outputs.is_empty() {
            let (lighting, join) = crate::lighting::spawn(
                &outputs,
                &config.fixtures,
                config.lighting_options(),
                Some(&config.studio.state_dir),
                cancel.clone(),
            )
            .await
            .context("starting the lighting output (Art-Net / sACN)")?;
            tasks.push(tokio::spawn(count_frames(
                lighting.subscribe_frames(),
                outputs.iter().map(|o| o.name().to_string()).collect(),
                metrics.clone(),
                cancel.clone(),
            )));
            devices.lighting = Some(lighting);
            tasks.push(join);
        }
        if !config.osc.is_empty() {
            devices.osc = Some(Arc::new(OscSender::bind(&config.osc).await.context("starting OSC output")?));
        }
        Ok(DeviceSet { devices, cancel, tasks })
    }

    async fn stop(self) {
        self.cancel.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            warn!("device tasks did not stop in time");
        }
    }
}

/// Count ArtDmx frames (and failed sends) per output as they leave. The
/// lighting task reports every frame on this channel, so counting here needs
/// no change to its hot path; a lagging receiver still counts what it skipped.
async fn count_frames(
    mut frames: tokio::sync::broadcast::Receiver<crate::lighting::FrameSent>,
    outputs: Vec<String>,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    // One handle per output, fetched once: a frame costs two atomic adds,
    // no lock and no allocation (they come 44 times a second per universe).
    let frames_of: Vec<_> = outputs.iter().map(|o| metrics.counter(metrics::ARTNET_FRAMES, &[("output", o)])).collect();
    let errors_of: Vec<_> = outputs.iter().map(|o| metrics.counter(metrics::ARTNET_SEND_ERRORS, &[("output", o)])).collect();
    // Frames not told apart by output: missed by this counter (lagged) or of an unknown output.
    let unknown = metrics.counter(metrics::ARTNET_FRAMES, &[("output", "unknown")]);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            f = frames.recv() => match f {
                Ok(f) => {
                    match frames_of.get(f.output) {
                        Some(c) => c.inc(),
                        None => unknown.inc(),
                    }
                    if !f.ok {
                        if let Some(c) = errors_of.get(f.output) {
                            c.inc();
                        }
                    }
                }
                Err(RecvError::Lagged(n)) => unknown.add(n),
                Err(RecvError::Closed) => break,
            }
        }
    }
}

/// Collectors for values kept outside the registry: devices online (from
/// the engine's state), serial link counters, MQTT reconnects.
fn install_collectors(metrics: &Metrics, engine: &EngineHandle, ports: PortCounterList) {
    let state = engine.state();
    metrics.add_collector(move |m| {
        use crate::engine::DeviceKind;
        let st = state.borrow();
        for kind in [DeviceKind::Camera, DeviceKind::Fixture, DeviceKind::ArtNet, DeviceKind::Sacn, DeviceKind::Osc] {
            use crate::engine::HealthStatus;
            let of_kind = st.devices.values().filter(|d| d.kind == kind);
            let (all, online, unverified) = of_kind.fold((0, 0, 0), |(a, o, u), d| {
                (a + 1, o + usize::from(d.status() == HealthStatus::Online), u + usize::from(d.status() == HealthStatus::Unverified))
            });
            m.set(metrics::DEVICES, &[("kind", kind.as_str())], all as f64);
            m.set(metrics::DEVICES_ONLINE, &[("kind", kind.as_str())], online as f64);
            m.set(metrics::DEVICES_UNVERIFIED, &[("kind", kind.as_str())], unverified as f64);
        }
    });
    metrics.add_collector(move |m| {
        use std::sync::atomic::Ordering::Relaxed;
        for (port, c) in ports.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            for (kind, v) in [
                ("port_lost", &c.port_lost),
                ("open_failed", &c.open_failed),
                ("timeout", &c.timeouts),
                ("refused", &c.refused),
                ("other", &c.other),
            ] {
                m.set(metrics::SERIAL_ERRORS, &[("port", port), ("kind", kind)], v.load(Relaxed) as f64);
            }
            m.set(metrics::SERIAL_RETRIES, &[("port", port)], c.retries.load(Relaxed) as f64);
        }
    });
}

/// A daemon running in this process.
pub struct Running {
    pub engine: EngineHandle,
    /// The device handles as first started (tests subscribe to lighting frames here).
    pub devices: DeviceHandles,
    pub config: Arc<Config>,
    /// The tablet UI's address, when HTTP is configured.
    pub http_url: Option<String>,
    /// The daemon-wide registry served at `/metrics`.
    pub metrics: Metrics,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    device_set: Arc<Mutex<Option<DeviceSet>>>,
}

impl Running {
    /// Stop everything: adapters say goodbye, lights keep their look (or the
    /// shutdown scene), state is saved.
    ///
    /// Bounded by [`SHUTDOWN_BUDGET`] overall: the adapters (in-flight MQTT
    /// replies, then `{"online":false}`) get all but [`DEVICE_STOP_RESERVE`]
    /// of it; a command still running then stays unacknowledged and the
    /// broker redelivers it to the next start.
    pub async fn shutdown(self) {
        sdnotify::stopping();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
        self.cancel.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout_at(deadline - DEVICE_STOP_RESERVE, all).await.is_err() {
            warn!("adapters did not stop in time");
        }
        let devices = async {
            if let Some(set) = self.device_set.lock().await.take() {
                set.stop().await;
            }
        };
        if tokio::time::timeout_at(deadline, devices).await.is_err() {
            warn!("devices did not stop within the shutdown budget");
        }
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// Start devices, engine and adapters. Returns once everything is started
/// (devices may still be connecting).
pub async fn start(config: Config) -> Result<Running> {
    let cancel = CancellationToken::new();
    let config = Arc::new(config);
    info!(studio = %config.studio.id, cameras = config.cameras.len(), fixtures = config.fixtures.len(), scenes = config.scenes.len(), "studiod starting");
    std::fs::create_dir_all(&config.studio.state_dir)
        .with_context(|| format!("creating state_dir {}", config.studio.state_dir.display()))?;
    for dir in [&config.studio.state_dir, &config.studio.scenes_dir] {
        crate::fsutil::remove_stale_temps(dir);
    }

    let metrics = Metrics::new();
    let port_counters = PortCounterList::default();
    let set = DeviceSet::start(&config, cancel.child_token(), &metrics, &port_counters).await?;
    let devices = set.devices.clone();
    let device_set = Arc::new(Mutex::new(Some(set)));

    let (engine, inbox) = EngineHandle::channel(BoothState::default());
    let (config_tx, config_rx) = tokio::sync::watch::channel(config.clone());
    let respawn_set = device_set.clone();
    let parent = cancel.clone();
    let (respawn_metrics, respawn_counters) = (metrics.clone(), port_counters.clone());
    let engine_actor = Engine::new(config.clone(), devices.clone(), inbox)
        .with_metrics(metrics.clone())
        .with_schedule_file(config.studio.state_dir.join("schedule.json"))
        .on_respawn(move |cfg| {
            let set = respawn_set.clone();
            let parent = parent.clone();
            let (metrics, counters) = (respawn_metrics.clone(), respawn_counters.clone());
            Box::pin(async move {
                let mut guard = set.lock().await;
                // The old actors must release their serial ports before new ones open them.
                if let Some(old) = guard.take() {
                    old.stop().await;
                }
                let new =
                    DeviceSet::start(&cfg, parent.child_token(), &metrics, &counters).await.map_err(|e| RespawnError::Start(e.into()))?;
                let devices = new.devices.clone();
                *guard = Some(new);
                Ok(devices)
            })
        })
        .with_config_watch(config_tx);
    install_collectors(&metrics, &engine, port_counters);
    // Adapters first: they subscribe to scheduled commands' results before
    // the engine can produce one (a restart finding slot starts overdue).
    let adapters = crate::adapters::start(config_rx, engine.clone(), metrics.clone(), cancel.clone()).await?;
    let mut tasks = vec![tokio::spawn(engine_actor.run(cancel.clone()))];
    tasks.extend(adapters.tasks);
    Ok(Running { engine, devices, config, http_url: adapters.http_url, metrics, cancel, tasks, device_set })
}

/// `studiod run`: start, tell systemd we are ready, serve until a signal.
pub async fn run(config: Config) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;

    let running = start(config).await?;
    sdnotify::ready();
    sdnotify::status("running");
    info!("studiod ready");

    let watchdog = sdnotify::watchdog_interval();
    let mut ticker = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => {
                info!("SIGHUP: reloading configuration");
                sdnotify::reloading();
                let out = running.engine.execute(Request::new(None, Origin::Cli, Command::Reload)).await;
                match &out.error {
                    None => info!("reload done"),
                    Some(e) => error!(error = %e.message, "reload refused; still running the previous configuration"),
                }
                sdnotify::ready();
            }
            // The watchdog is fed from the main loop, so a wedged runtime stops feeding it.
            _ = ticker.tick(), if watchdog.is_some() => sdnotify::watchdog(),
        }
    }
    running.shutdown().await;
    info!("studiod stopped");
    Ok(())
}
