//! The engine task: owns the current configuration and the device handles,
//! executes commands one at a time *in order* (so a newer scene always wins),
//! and lets the slow part — waiting for camera completions — run in the
//! background so that one long move never blocks the next command.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument, Span};

use super::{BoothState, DeviceHealth, DeviceKind, EngineInbox, Event, PendingScene, Request};
use crate::camera::{CameraError, CameraHandle};
use crate::command::{Command, CommandError, DeviceResult, ErrorCode, LightValue, Origin, Outcome};
use crate::config::model::Config;
use crate::lighting::{FirstFrame, LightingHandle, Look};
use crate::metrics::{self, DurationHistogram, Metrics};
use crate::osc::OscSender;
use crate::scene::load::{convert_light, Devices as SceneDevices, LightInput};
use crate::scene::{CameraTarget, Scene};

/// The running device actors the engine drives.
#[derive(Clone, Default)]
pub struct Devices {
    pub cameras: BTreeMap<String, CameraHandle>,
    pub lighting: Option<LightingHandle>,
    pub osc: Option<Arc<OscSender>>,
}

/// Rebuilds the device actors for a new configuration (see [`Engine::on_respawn`]).
pub type Respawn = Box<dyn FnMut(Arc<Config>) -> Pin<Box<dyn Future<Output = Result<Devices, String>> + Send>> + Send + Sync>;

/// A device's part of a command, still running.
type DeviceFuture = Pin<Box<dyn Future<Output = (String, DeviceResult)> + Send>>;

/// Extra time allowed on top of the profile's completion timeout before the
/// engine gives up on a camera (the link has its own, finer timeouts).
const CAMERA_GRACE: Duration = Duration::from_secs(2);

pub struct Engine {
    config: Arc<Config>,
    devices: Devices,
    inbox: EngineInbox,
    state: BoothState,
    /// Incremented on every scene apply, so a superseded apply can tell.
    generation: u64,
    /// A scene waiting for its `at` instant, with the caller's reply.
    scheduled: Option<Scheduled>,
    health_rx: mpsc::Receiver<(String, DeviceHealth)>,
    health_tx: mpsc::Sender<(String, DeviceHealth)>,
    /// Followers of the configuration in force (adapters render scene lists).
    config_tx: Option<watch::Sender<Arc<Config>>>,
    /// Called on `reload` when the device set changed: stops the old device
    /// actors and starts new ones.
    respawn: Option<Respawn>,
    /// Commands by action/result/origin and apply latency, for every origin.
    metrics: Metrics,
    /// Receipt → first light frame, one series per origin (indexed by
    /// [`origin_index`]), fetched once so the lighting task records lock-free.
    first_frame: [DurationHistogram; 4],
}

const ORIGINS: [Origin; 4] = [Origin::Mqtt, Origin::Http, Origin::Cli, Origin::Startup];

fn origin_index(o: Origin) -> usize {
    match o {
        Origin::Mqtt => 0,
        Origin::Http => 1,
        Origin::Cli => 2,
        Origin::Startup => 3,
    }
}

fn first_frame_series(m: &Metrics) -> [DurationHistogram; 4] {
    ORIGINS.map(|o| m.duration_histogram(metrics::COMMAND_FIRST_FRAME_SECONDS, &[("origin", o.as_str())]))
}

struct Scheduled {
    at: SystemTime,
    req: Request,
    reply: oneshot::Sender<Outcome>,
    received: Instant,
}

impl Engine {
    pub fn new(config: Arc<Config>, devices: Devices, inbox: EngineInbox) -> Engine {
        let (health_tx, health_rx) = mpsc::channel(64);
        let mut e = Engine {
            config,
            devices: Devices::default(),
            inbox,
            state: BoothState::default(),
            generation: 0,
            scheduled: None,
            health_rx,
            health_tx,
            config_tx: None,
            respawn: None,
            metrics: Metrics::default(),
            first_frame: ORIGINS.map(|_| DurationHistogram::detached()),
        };
        e.install_devices(devices);
        e
    }

    /// Record command and apply metrics in this (the daemon's) registry.
    pub fn with_metrics(mut self, metrics: Metrics) -> Engine {
        self.first_frame = first_frame_series(&metrics);
        self.metrics = metrics;
        self
    }

    /// Time this request's first light frame from its receipt by the adapter.
    fn first_frame(&self, req: &Request) -> Option<FirstFrame> {
        Some(FirstFrame { received: req.received, histogram: self.first_frame[origin_index(req.origin)].clone() })
    }

    /// Publish every configuration change (reload, put/delete scene) here.
    pub fn with_config_watch(mut self, tx: watch::Sender<Arc<Config>>) -> Engine {
        self.config_tx = Some(tx);
        self
    }

    fn set_config(&mut self, config: Arc<Config>) {
        if let Some(tx) = &self.config_tx {
            tx.send_replace(config.clone());
        }
        self.config = config;
    }

    /// How to rebuild the device actors when a reload changes them.
    pub fn on_respawn(
        mut self,
        f: impl FnMut(Arc<Config>) -> Pin<Box<dyn Future<Output = Result<Devices, String>> + Send>> + Send + Sync + 'static,
    ) -> Engine {
        self.respawn = Some(Box::new(f));
        self
    }

    /// Register devices in the state and follow each camera's health.
    fn install_devices(&mut self, devices: Devices) {
        let now = SystemTime::now();
        self.state.devices.clear();
        for (name, cam) in &devices.cameras {
            let mut rx = cam.health();
            let h = rx.borrow_and_update().clone();
            self.state.devices.insert(name.clone(), camera_health(&h, now));
            let tx = self.health_tx.clone();
            let name = name.clone();
            tokio::spawn(async move {
                // Ends when the camera's port actor (the watch sender) goes away.
                while rx.changed().await.is_ok() {
                    let h = camera_health(&rx.borrow_and_update(), SystemTime::now());
                    if tx.send((name.clone(), h)).await.is_err() {
                        break;
                    }
                }
            });
        }
        let online = |kind| DeviceHealth { kind, online: true, error: None, since: now };
        for f in &self.config.fixtures {
            self.state.devices.insert(f.name.clone(), online(DeviceKind::Fixture));
        }
        for o in &self.config.artnet {
            self.state.devices.insert(o.name.clone(), online(DeviceKind::ArtNet));
        }
        for o in &self.config.osc {
            self.state.devices.insert(o.name.clone(), online(DeviceKind::Osc));
        }
        self.devices = devices;
        self.publish();
    }

    fn publish(&self) {
        self.inbox.state.send_replace(self.state.clone());
    }

    fn emit(&self, e: Event) {
        // No subscribers is fine: events are best-effort by design.
        let _ = self.inbox.events.send(e);
    }

    /// Run until cancelled. Applies the safe scene first when configured.
    pub async fn run(mut self, cancel: CancellationToken) {
        if let Some(shutdown) = self.config.lighting.shutdown_scene.clone() {
            self.set_shutdown_look(&shutdown).await;
        }
        if let Some(safe) = self.config.studio.safe_scene.clone() {
            let req = Request::new(None, Origin::Startup, Command::ApplyScene { scene: safe, fade: None, at: None, slot: None });
            let (tx, _rx) = oneshot::channel();
            self.handle(req, tx).await;
        }
        loop {
            let due = self.scheduled.as_ref().map(|s| s.at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
            tokio::select! {
                // Cancellation first: devices stopping at shutdown are not "offline".
                biased;
                _ = cancel.cancelled() => break,
                job = self.inbox.rx.recv() => match job {
                    Some((req, reply)) => self.handle(req, reply).await,
                    None => break,
                },
                Some((name, health)) = self.health_rx.recv() => self.health_changed(name, health),
                _ = tokio::time::sleep(due.unwrap_or(Duration::from_secs(3600))), if due.is_some() => {
                    if let Some(s) = self.scheduled.take() {
                        self.state.pending = None;
                        // The scheduled command's own span, so its lines keep its id.
                        let span = info_span!("command", id = s.req.id.as_deref().unwrap_or("-"), action = s.req.command.action(), origin = s.req.origin.as_str());
                        // Not timed to its first frame: the wait for `at` is not latency.
                        self.apply_now(s.req, s.reply, s.received, None).instrument(span).await;
                    }
                }
            }
        }
        if let Some(s) = self.scheduled.take() {
            let _ = s.reply.send(Outcome::refused(
                &s.req.command,
                CommandError::new(ErrorCode::Internal, "studiod shut down before the scheduled time"),
            ));
        }
    }

    fn health_changed(&mut self, name: String, health: DeviceHealth) {
        let was = self.state.devices.get(&name).map(|h| h.online);
        if was != Some(health.online) {
            if health.online {
                info!(device = %name, "device online");
                self.emit(Event::DeviceOnline { device: name.clone() });
            } else {
                let reason = health.error.clone().unwrap_or_default();
                warn!(device = %name, %reason, "device offline");
                self.emit(Event::DeviceOffline { device: name.clone(), reason });
            }
        }
        if self.state.devices.get(&name) != Some(&health) {
            self.state.devices.insert(name, health);
            self.publish();
        }
    }

    async fn handle(&mut self, req: Request, reply: oneshot::Sender<Outcome>) {
        let received = Instant::now();
        let span =
            info_span!("command", id = req.id.as_deref().unwrap_or("-"), action = req.command.action(), origin = req.origin.as_str());
        // Every outcome passes here on its way out, whichever path produced
        // it (refused, immediate, completed in the background, scheduled), so
        // the counts cover every origin exactly once.
        let (tx, rx) = oneshot::channel::<Outcome>();
        let (m, action, origin) = (self.metrics.clone(), req.command.action(), req.origin.as_str());
        tokio::spawn(async move {
            let out = rx.await;
            let result = match &out {
                Ok(o) => o.error.as_ref().map_or("ok", |e| e.code.as_str()),
                Err(_) => "dropped",
            };
            m.inc(metrics::COMMANDS_TOTAL, &[("action", action), ("result", result), ("origin", origin)]);
            if let Ok(o) = out {
                let _ = reply.send(o);
            }
        });
        let reply = tx;
        async {
            match &req.command {
                Command::ApplyScene { scene, at, .. } => {
                    if !self.config.scenes.contains_key(scene) {
                        let _ = reply.send(refuse(&req.command, ErrorCode::UnknownScene, format!("unknown scene `{scene}`")));
                        return;
                    }
                    match at {
                        Some(at) if *at > SystemTime::now() => self.schedule(req.clone(), *at, reply, received),
                        _ => {
                            let first_frame = self.first_frame(&req);
                            self.apply_now(req.clone(), reply, received, first_frame).await
                        }
                    }
                }
                _ => {
                    let outcome = self.execute(&req, received).await;
                    match outcome {
                        Ok(out) => {
                            let _ = reply.send(out);
                        }
                        Err(fut) => {
                            // The command's span follows its completion so its log lines keep the id.
                            tokio::spawn(
                                async move {
                                    let _ = reply.send(fut.await);
                                }
                                .instrument(Span::current()),
                            );
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    fn schedule(&mut self, req: Request, at: SystemTime, reply: oneshot::Sender<Outcome>, received: Instant) {
        if let Some(old) = self.scheduled.take() {
            let _ = old.reply.send(refuse(&old.req.command, ErrorCode::Superseded, "replaced by a newer scheduled scene"));
        }
        let Command::ApplyScene { scene, .. } = &req.command else { return };
        info!(%scene, at = %crate::adapters::json::format_time(at), "scene scheduled");
        self.state.pending = Some(PendingScene { scene: scene.clone(), at });
        self.scheduled = Some(Scheduled { at, req, reply, received });
        self.publish();
    }

    /// Apply a scene: lights and OSC at once, camera moves started in order;
    /// their completions are awaited in the background.
    async fn apply_now(&mut self, req: Request, reply: oneshot::Sender<Outcome>, received: Instant, first_frame: Option<FirstFrame>) {
        let Command::ApplyScene { scene, fade, slot, .. } = &req.command else { return };
        let Some(sc) = self.config.scenes.get(scene).cloned() else {
            let _ = reply.send(refuse(&req.command, ErrorCode::UnknownScene, format!("unknown scene `{scene}`")));
            return;
        };
        // A newer immediate apply replaces a scheduled one.
        if let Some(old) = self.scheduled.take() {
            let _ = old.reply.send(refuse(&old.req.command, ErrorCode::Superseded, format!("superseded by scene `{scene}`")));
            self.state.pending = None;
        }
        self.generation += 1;
        let started = Instant::now();
        let fade = fade.unwrap_or(sc.fade);
        let mut futures = self.scene_devices(&sc, fade, first_frame).await;
        info!(scene = %sc.name, devices = futures.len(), fade_ms = fade.as_millis() as u64, "applying scene");
        self.state.scene = Some(sc.name.clone());
        self.state.scene_label = Some(sc.label.clone());
        self.state.slot = slot.clone();
        self.state.applied_at = Some(SystemTime::now());
        self.publish();

        let cmd = req.command.clone();
        let events = self.inbox.events.clone();
        let (origin, id) = (req.origin, req.id.clone());
        let m = self.metrics.clone();
        let span = Span::current();
        tokio::spawn(
            async move {
                let mut results = BTreeMap::new();
                for (name, r) in futures::future::join_all(futures.drain(..)).await {
                    results.insert(name, r);
                }
                let out = Outcome::from_devices(&cmd, results, received.elapsed());
                // From the devices starting (not from receipt, which includes a scheduled wait).
                m.observe(metrics::APPLY_SECONDS, &[("result", if out.ok { "ok" } else { "failed" })], started.elapsed().as_secs_f64());
                info!(scene = cmd.scene().unwrap_or_default(), ok = out.ok, duration_ms = out.duration.as_millis() as u64, "scene applied");
                if origin != Origin::Mqtt {
                    let _ = events.send(Event::SceneApplied { scene: cmd.scene().unwrap_or_default().to_string(), origin, ok: out.ok, id });
                }
                let _ = reply.send(out);
            }
            // The command's span follows the camera completions, so "scene applied" carries the id.
            .instrument(span),
        );
    }

    /// Start every device's part of a scene; returns the futures that finish it.
    async fn scene_devices(&mut self, sc: &Scene, fade: Duration, first_frame: Option<FirstFrame>) -> Vec<DeviceFuture> {
        let mut out: Vec<DeviceFuture> = Vec::new();
        // Lights first: they are what the creator sees change "at once".
        if !sc.lights.is_empty() {
            let look: Look = sc.lights.clone();
            let names: Vec<String> = look.keys().cloned().collect();
            let result = match &self.devices.lighting {
                Some(l) => l.set_look_timed(look, fade, first_frame).await.map(|_| ()).map_err(|e| e.to_string()),
                None => Err("lighting output is not running".to_string()),
            };
            for n in names {
                let r = match &result {
                    Ok(()) => DeviceResult::ok(),
                    Err(e) => DeviceResult::failed(e),
                };
                out.push(Box::pin(async move { (n, r) }));
            }
        }
        for (name, target) in &sc.cameras {
            out.push(self.camera_future(name, target.clone()).await);
        }
        for (to, msg) in &sc.osc {
            let r = match &self.devices.osc {
                Some(osc) => osc.send(to, msg).await.map_err(|e| e.to_string()),
                None => Err("OSC output is not running".to_string()),
            };
            let r = match r {
                Ok(_) => DeviceResult::ok(),
                Err(e) => DeviceResult::failed(e),
            };
            let to = to.clone();
            out.push(Box::pin(async move { (to, r) }));
        }
        out
    }

    /// Queue a camera's part of a scene now (so a newer scene's requests
    /// always follow an older scene's) and return the future of its completion.
    async fn camera_future(&self, name: &str, target: CameraTarget) -> DeviceFuture {
        use crate::visca::{Command as Visca, MemoryOp};
        let name = name.to_string();
        let Some(cam) = self.devices.cameras.get(&name).cloned() else {
            return Box::pin(async move { (name, DeviceResult::failed("camera is not running")) });
        };
        let limit = cam.profile().timing.completion_move + cam.profile().timing.ack * 3 + CAMERA_GRACE;
        // The VISCA commands this target needs, when they can be built up front.
        let commands: Result<Option<Vec<Visca>>, CameraError> = (|| {
            Ok(Some(match target {
                CameraTarget::Preset(p) => vec![Visca::Memory { op: MemoryOp::Recall, memory: cam.memory_byte(p)? }],
                CameraTarget::Absolute { pan: Some(pan), tilt: Some(tilt), zoom } => {
                    let mut v = vec![cam.absolute_command(pan, tilt)?];
                    if let Some(z) = zoom {
                        v.push(Visca::ZoomDirect(cam.zoom_position(z)?));
                    }
                    v
                }
                CameraTarget::Absolute { pan: None, tilt: None, zoom: Some(z) } => vec![Visca::ZoomDirect(cam.zoom_position(z)?)],
                // One axis only: the other comes from a position inquiry first.
                CameraTarget::Absolute { .. } => return Ok(None),
            }))
        })();
        let fut: Pin<Box<dyn Future<Output = Result<(), CameraError>> + Send>> = match commands {
            Err(e) => Box::pin(async move { Err(e) }),
            Ok(Some(cmds)) => {
                let mut pending = Vec::new();
                let mut queued = Ok(());
                for c in cmds {
                    match cam.submit(c).await {
                        Ok(p) => pending.push(p),
                        Err(e) => {
                            queued = Err(e);
                            break;
                        }
                    }
                }
                Box::pin(async move {
                    queued?;
                    for r in futures::future::join_all(pending).await {
                        r?;
                    }
                    Ok(())
                })
            }
            Ok(None) => {
                let CameraTarget::Absolute { pan, tilt, zoom } = target else { unreachable!("only partial absolute targets are deferred") };
                Box::pin(async move {
                    let now = cam.position().await?;
                    cam.move_absolute(pan.unwrap_or(now.pan_deg), tilt.unwrap_or(now.tilt_deg), zoom).await
                })
            }
        };
        Box::pin(async move {
            let r = match tokio::time::timeout(limit, fut).await {
                Ok(Ok(())) => DeviceResult::ok(),
                Ok(Err(e)) => DeviceResult::failed(e),
                Err(_) => DeviceResult::failed(format!("no completion within {} ms", limit.as_millis())),
            };
            (name, r)
        })
    }

    // The refusal is the command's whole answer; boxing it would buy nothing.
    #[allow(clippy::result_large_err)]
    fn camera(&self, cmd: &Command, name: &str) -> Result<CameraHandle, Outcome> {
        self.devices.cameras.get(name).cloned().ok_or_else(|| refuse(cmd, ErrorCode::UnknownDevice, format!("unknown camera `{name}`")))
    }

    /// Everything but apply_scene. `Ok` when the outcome is known now, `Err`
    /// with a future when it must be awaited off the engine task.
    async fn execute(&mut self, req: &Request, received: Instant) -> Result<Outcome, Pin<Box<dyn Future<Output = Outcome> + Send>>> {
        let cmd = &req.command;
        let owned = req.command.clone();
        let done = move |devices: BTreeMap<String, DeviceResult>| Outcome::from_devices(&owned, devices, received.elapsed());
        match &req.command {
            Command::ApplyScene { .. } => unreachable!("handled by apply_now"),
            Command::Blackout { fade } => {
                let fade = fade.unwrap_or(Duration::ZERO);
                let r = match &self.devices.lighting {
                    Some(l) => l.blackout_timed(fade, self.first_frame(req)).await.map_err(|e| e.to_string()),
                    None => Err("lighting output is not running".into()),
                };
                self.state.scene = None;
                self.state.scene_label = Some("Blackout".into());
                self.state.applied_at = Some(SystemTime::now());
                self.publish();
                let devices = self
                    .config
                    .fixtures
                    .iter()
                    .map(|f| (f.name.clone(), r.clone().map_or_else(DeviceResult::failed, |_| DeviceResult::ok())))
                    .collect();
                Ok(done(devices))
            }
            Command::RecallPreset { camera, preset } | Command::StorePreset { camera, preset } => {
                let cam = match self.camera(cmd, camera) {
                    Ok(c) => c,
                    Err(o) => return Ok(o),
                };
                if *preset == 0 || *preset > cam.profile().preset_count {
                    return Ok(refuse(
                        cmd,
                        ErrorCode::InvalidCommand,
                        format!("preset must be 1–{} for camera `{camera}`", cam.profile().preset_count),
                    ));
                }
                let (camera, preset, store) = (camera.clone(), *preset, matches!(req.command, Command::StorePreset { .. }));
                Err(Box::pin(async move {
                    let r = if store { cam.store_preset(preset).await } else { cam.recall_preset(preset).await };
                    done(BTreeMap::from([(camera, r.map_or_else(DeviceResult::failed, |_| DeviceResult::ok()))]))
                }))
            }
            Command::Jog { camera, pan, tilt } => {
                let cam = match self.camera(cmd, camera) {
                    Ok(c) => c,
                    Err(o) => return Ok(o),
                };
                let (dir, ps, ts) = jog_drive(*pan, *tilt, cam.profile().max_pan_speed, cam.profile().max_tilt_speed);
                let camera = camera.clone();
                Err(Box::pin(async move {
                    done(BTreeMap::from([(camera, cam.drive(dir, ps, ts).await.map_or_else(DeviceResult::failed, |_| DeviceResult::ok()))]))
                }))
            }
            Command::JogStop { camera } => {
                let cam = match self.camera(cmd, camera) {
                    Ok(c) => c,
                    Err(o) => return Ok(o),
                };
                let camera = camera.clone();
                Err(Box::pin(async move {
                    done(BTreeMap::from([(camera, cam.stop().await.map_or_else(DeviceResult::failed, |_| DeviceResult::ok()))]))
                }))
            }
            Command::Zoom { camera, speed } => {
                let cam = match self.camera(cmd, camera) {
                    Ok(c) => c,
                    Err(o) => return Ok(o),
                };
                use crate::visca::ZoomDrive;
                let step = ((speed.abs() * 7.0).round() as u8).min(7);
                let drive = if *speed > 0.0 {
                    ZoomDrive::TeleVariable(step)
                } else if *speed < 0.0 {
                    ZoomDrive::WideVariable(step)
                } else {
                    ZoomDrive::Stop
                };
                let camera = camera.clone();
                Err(Box::pin(async move {
                    done(BTreeMap::from([(camera, cam.zoom(drive).await.map_or_else(DeviceResult::failed, |_| DeviceResult::ok()))]))
                }))
            }
            Command::SetLight { fixture, values, fade } => {
                let Some(fx) = self.config.fixtures.iter().find(|f| &f.name == fixture) else {
                    return Ok(refuse(cmd, ErrorCode::UnknownDevice, format!("unknown fixture `{fixture}`")));
                };
                let entries = values.iter().map(|(k, v)| {
                    let input = match v {
                        LightValue::Number(x) => LightInput::Number(*x),
                        LightValue::Text(t) => LightInput::Text(t.as_str()),
                    };
                    (k.as_str(), input, ())
                });
                let (look, problems) = convert_light(fx, entries);
                if !problems.is_empty() {
                    let msg = problems.into_iter().map(|(_, _, m)| m).collect::<Vec<_>>().join("; ");
                    return Ok(refuse(cmd, ErrorCode::InvalidCommand, msg));
                }
                let r = match &self.devices.lighting {
                    Some(l) => l
                        .set_look_timed(Look::from([(fixture.clone(), look)]), fade.unwrap_or(Duration::ZERO), self.first_frame(req))
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    None => Err("lighting output is not running".into()),
                };
                Ok(done(BTreeMap::from([(fixture.clone(), r.map_or_else(DeviceResult::failed, |_| DeviceResult::ok()))])))
            }
            Command::Status => {
                // Republish even when nothing changed: the backend asked.
                self.publish();
                Ok(done(BTreeMap::new()))
            }
            Command::Reload => Ok(self.reload(cmd, received).await),
            Command::PutScene { scene, toml } => Ok(self.put_scene(cmd, scene, toml, received).await),
            Command::DeleteScene { scene } => Ok(self.delete_scene(cmd, scene, received).await),
        }
    }

    async fn reload(&mut self, cmd: &Command, received: Instant) -> Outcome {
        let path = self.config.path.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path)).await;
        let new = match loaded {
            Ok(Ok(c)) => Arc::new(c),
            Ok(Err(diags)) => {
                let msg = diags.clone().sorted().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n");
                warn!(problems = diags.len(), "reload refused: configuration invalid; keeping the running one");
                return refuse(cmd, ErrorCode::SceneInvalid, msg);
            }
            Err(e) => return refuse(cmd, ErrorCode::Internal, format!("reload failed: {e}")),
        };
        let devices_changed = !self.config.same_devices(&new);
        self.set_config(new.clone());
        if devices_changed {
            if let Some(respawn) = self.respawn.as_mut() {
                match respawn(new).await {
                    Ok(d) => self.install_devices(d),
                    Err(e) => return refuse(cmd, ErrorCode::Internal, format!("devices could not be restarted: {e}")),
                }
            }
        }
        if let Some(shutdown) = self.config.lighting.shutdown_scene.clone() {
            self.set_shutdown_look(&shutdown).await;
        }
        info!(scenes = self.config.scenes.len(), devices_changed, "configuration reloaded");
        let mut out = Outcome::from_devices(cmd, BTreeMap::new(), received.elapsed());
        out.data = Some(serde_json::json!({"scenes": self.config.scenes.len(), "devices_restarted": devices_changed}));
        out
    }

    async fn put_scene(&mut self, cmd: &Command, name: &str, toml: &str, received: Instant) -> Outcome {
        let path = self.config.studio.scenes_dir.join(format!("{name}.toml"));
        let c = &self.config;
        let declared = Default::default();
        let devices = SceneDevices { cameras: &c.cameras, fixtures: &c.fixtures, osc: &c.osc, declared: &declared };
        let src = crate::diag::Source::new(path.clone(), toml);
        let scene = match crate::scene::load::parse(name, &src, &devices) {
            Ok(s) => s,
            Err(diags) => {
                let msg = diags.sorted().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n");
                return refuse(cmd, ErrorCode::SceneInvalid, msg);
            }
        };
        let bytes = toml.as_bytes().to_vec();
        let p = path.clone();
        match tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&p, &bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return refuse(cmd, ErrorCode::Internal, format!("could not save {}: {e}", path.display())),
            Err(e) => return refuse(cmd, ErrorCode::Internal, format!("could not save {}: {e}", path.display())),
        }
        let mut next = (*self.config).clone();
        next.scenes.insert(name.to_string(), scene);
        self.set_config(Arc::new(next));
        info!(scene = name, "scene saved");
        Outcome::from_devices(cmd, BTreeMap::new(), received.elapsed())
    }

    async fn delete_scene(&mut self, cmd: &Command, name: &str, received: Instant) -> Outcome {
        if !self.config.scenes.contains_key(name) {
            return refuse(cmd, ErrorCode::UnknownScene, format!("unknown scene `{name}`"));
        }
        let c = &self.config;
        if c.studio.safe_scene.as_deref() == Some(name) || c.lighting.shutdown_scene.as_deref() == Some(name) {
            return refuse(
                cmd,
                ErrorCode::InvalidCommand,
                format!("scene `{name}` is the configured safe/shutdown scene and cannot be deleted"),
            );
        }
        let path = c.studio.scenes_dir.join(format!("{name}.toml"));
        match tokio::task::spawn_blocking(move || std::fs::remove_file(&path)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(Err(e)) => return refuse(cmd, ErrorCode::Internal, format!("could not delete scene file: {e}")),
            Err(e) => return refuse(cmd, ErrorCode::Internal, format!("could not delete scene file: {e}")),
        }
        let mut next = (*self.config).clone();
        next.scenes.remove(name);
        self.set_config(Arc::new(next));
        info!(scene = name, "scene deleted");
        Outcome::from_devices(cmd, BTreeMap::new(), received.elapsed())
    }

    async fn set_shutdown_look(&self, scene: &str) {
        if let (Some(l), Some(sc)) = (&self.devices.lighting, self.config.scenes.get(scene)) {
            let _ = l.set_shutdown_look(Some(sc.lights.clone())).await;
        }
    }

    /// The configuration in force (for adapters that render scene lists).
    pub fn config(&self) -> Arc<Config> {
        self.config.clone()
    }
}

fn refuse(cmd: &Command, code: ErrorCode, msg: impl Into<String>) -> Outcome {
    Outcome::refused(cmd, CommandError::new(code, msg))
}

fn camera_health(h: &crate::camera::Health, now: SystemTime) -> DeviceHealth {
    // The link's `since` is a monotonic instant; convert it to wall-clock time.
    let age = tokio::time::Instant::now().saturating_duration_since(h.since);
    DeviceHealth {
        kind: DeviceKind::Camera,
        online: h.online,
        error: if h.online { h.last_error.clone() } else { h.reason.clone() },
        since: now.checked_sub(age).unwrap_or(now),
    }
}

/// Jog fractions (-1.0–1.0, positive = right/up) → VISCA drive.
fn jog_drive(pan: f64, tilt: f64, max_pan: u8, max_tilt: u8) -> (crate::visca::Direction, u8, u8) {
    use crate::visca::Direction::*;
    let speed = |x: f64, max: u8| ((x.abs() * max as f64).round() as u8).clamp(1, max);
    let dir = match (pan.partial_cmp(&0.0), tilt.partial_cmp(&0.0)) {
        (Some(std::cmp::Ordering::Greater), Some(std::cmp::Ordering::Greater)) => UpRight,
        (Some(std::cmp::Ordering::Greater), Some(std::cmp::Ordering::Less)) => DownRight,
        (Some(std::cmp::Ordering::Less), Some(std::cmp::Ordering::Greater)) => UpLeft,
        (Some(std::cmp::Ordering::Less), Some(std::cmp::Ordering::Less)) => DownLeft,
        (Some(std::cmp::Ordering::Greater), _) => Right,
        (Some(std::cmp::Ordering::Less), _) => Left,
        (_, Some(std::cmp::Ordering::Greater)) => Up,
        (_, Some(std::cmp::Ordering::Less)) => Down,
        _ => Stop,
    };
    (dir, speed(pan, max_pan), speed(tilt, max_tilt))
}
