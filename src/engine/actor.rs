//! The engine task: owns the current configuration and the device handles,
//! executes commands one at a time *in order* (so a newer scene always wins),
//! and lets the slow part — waiting for camera completions — run in the
//! background so that one long move never blocks the next command.
//!
//! Each command is planned ([`super::plan`], pure), started on the devices
//! ([`super::start`]) and collected into its one outcome ([`super::collect`]),
//! at once or in a background task. Background tasks (completions, camera
//! health followers) live in the engine's own `JoinSet`s and end with it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument, Span};

use super::collect::collect;
use super::error::{chain, RespawnError};
use super::plan::{self, Plan, ScenePlan, SceneRef};
use super::reply::Reply;
use super::schedule::{Entry, Saved, Schedule};
use super::start::{start, Started};
use super::{BoothState, DeviceHandles, DeviceHealth, DeviceKind, EngineInbox, Event, Later, PendingScene, Request, SceneFailure};
use crate::command::{Command, CommandError, ErrorCode, Origin, Outcome};
use crate::config::model::Config;
use crate::lighting::FirstFrame;
use crate::metrics::{self, DurationHistogram, Metrics};
use crate::sysclock;

const ORIGINS: [Origin; 4] = [Origin::Mqtt, Origin::Http, Origin::Cli, Origin::Startup];
use crate::scene::Scene;

/// Rebuilds the device actors for a new configuration (see [`Engine::on_respawn`]).
pub type Respawn = Box<dyn FnMut(Arc<Config>) -> Pin<Box<dyn Future<Output = Result<DeviceHandles, RespawnError>> + Send>> + Send + Sync>;

/// At shutdown, how long commands still completing (camera moves) may take
/// to answer before they are stopped; within the daemon's adapter budget.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// How often `clock_synced` is re-read from the OS (and the schedule's
/// timer re-armed, in case the wall clock was stepped).
const CLOCK_CHECK: Duration = Duration::from_secs(30);

/// The wall clock `at` is compared with. The OS's in the daemon; tests with
/// paused time pass one that follows tokio's clock.
pub type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

pub struct Engine {
    config: Arc<Config>,
    devices: DeviceHandles,
    inbox: EngineInbox,
    state: BoothState,
    /// Scenes waiting for their `at`, each with its caller's reply.
    schedule: Schedule<Reply>,
    /// Where the schedule is kept across restarts (`state_dir/schedule.json`);
    /// `None`: not kept (tests).
    schedule_file: Option<std::path::PathBuf>,
    clock: WallClock,
    health_rx: mpsc::Receiver<(String, DeviceHealth)>,
    health_tx: mpsc::Sender<(String, DeviceHealth)>,
    /// Followers of the configuration in force (adapters render scene lists).
    config_tx: Option<watch::Sender<Arc<Config>>>,
    /// Called on `reload` when the device set changed: stops the old device
    /// actors and starts new ones.
    respawn: Option<Respawn>,
    /// Commands by action/result/origin and apply latency, for every origin.
    metrics: Metrics,
    /// Receipt → first light frame, one series per origin, fetched once so
    /// the lighting task records lock-free.
    first_frame: [DurationHistogram; 4],
    /// Commands whose device parts are still completing; each answers its caller.
    /// Background completions; an applied scene's yields (its sequence
    /// number, its result for `BoothState::last_failure`).
    completions: JoinSet<Option<SceneDone>>,
    /// Sequence number of the last `apply_now`, and of the last one whose
    /// result was recorded (a slower, older scene never overwrites a newer one's).
    applied_seq: u64,
    recorded_seq: u64,
    /// One health follower per camera of the device set in force.
    followers: JoinSet<()>,
    /// Ids given to scheduled commands that came without one.
    generated: u64,
}

impl Engine {
    pub fn new(config: Arc<Config>, devices: DeviceHandles, inbox: EngineInbox) -> Engine {
        let (health_tx, health_rx) = mpsc::channel(64);
        let mut e = Engine {
            config: config.clone(),
            devices: DeviceHandles::default(),
            inbox,
            state: BoothState { scenes_hash: config.scenes_hash(), clock_synced: sysclock::synchronized(), ..BoothState::default() },
            schedule: Schedule::default(),
            schedule_file: None,
            clock: Arc::new(SystemTime::now),
            health_rx,
            health_tx,
            config_tx: None,
            respawn: None,
            metrics: Metrics::default(),
            first_frame: ORIGINS.map(|_| DurationHistogram::detached()),
            completions: JoinSet::new(),
            applied_seq: 0,
            recorded_seq: 0,
            followers: JoinSet::new(),
            generated: 0,
        };
        e.install_devices(devices);
        e
    }

    /// Record command and apply metrics in this (the daemon's) registry.
    pub fn with_metrics(mut self, metrics: Metrics) -> Engine {
        self.first_frame = ORIGINS.map(|o| metrics.duration_histogram(metrics::COMMAND_FIRST_FRAME_SECONDS, &[("origin", o.as_str())]));
        self.metrics = metrics;
        self
    }

    /// Time this request's first light frame from its receipt by the adapter.
    fn first_frame(&self, req: &Request) -> Option<FirstFrame> {
        let i = ORIGINS.iter().position(|o| *o == req.origin)?;
        Some(FirstFrame { received: req.received, histogram: self.first_frame[i].clone() })
    }

    /// Keep the schedule in this file, and restore it from there when run.
    pub fn with_schedule_file(mut self, path: std::path::PathBuf) -> Engine {
        self.schedule_file = Some(path);
        self
    }

    /// Compare `at` with this clock instead of the OS's.
    pub fn with_wall_clock(mut self, clock: WallClock) -> Engine {
        self.clock = clock;
        self
    }

    fn now(&self) -> SystemTime {
        (self.clock)()
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
        let hash = config.scenes_hash();
        self.config = config;
        if self.state.scenes_hash != hash {
            self.state.scenes_hash = hash;
            self.publish();
        }
    }

    /// `clock_synced` can change at any time (NTP comes and goes): re-read it.
    fn refresh_clock(&mut self) {
        let synced = sysclock::synchronized();
        if self.state.clock_synced != synced {
            info!(?synced, "clock synchronisation changed");
            self.state.clock_synced = synced;
            self.publish();
        }
    }

    /// How to rebuild the device actors when a reload changes them.
    pub fn on_respawn(
        mut self,
        f: impl FnMut(Arc<Config>) -> Pin<Box<dyn Future<Output = Result<DeviceHandles, RespawnError>> + Send>> + Send + Sync + 'static,
    ) -> Engine {
        self.respawn = Some(Box::new(f));
        self
    }

    /// Register devices in the state and follow each camera's health.
    fn install_devices(&mut self, devices: DeviceHandles) {
        let now = SystemTime::now();
        // The old cameras' followers would only report devices no longer installed.
        self.followers.abort_all();
        self.state.devices.clear();
        for (name, cam) in &devices.cameras {
            let mut rx = cam.health();
            let h = rx.borrow_and_update().clone();
            self.state.devices.insert(name.clone(), camera_health(&h, now));
            let tx = self.health_tx.clone();
            let name = name.clone();
            self.followers.spawn(async move {
                // Ends when the camera's port actor (the watch sender) goes away.
                while rx.changed().await.is_ok() {
                    let h = camera_health(&rx.borrow_and_update(), SystemTime::now());
                    if tx.send((name.clone(), h)).await.is_err() {
                        break;
                    }
                }
            });
        }
        for f in &self.config.fixtures {
            self.state.devices.insert(f.name.clone(), DeviceHealth::unverified(DeviceKind::Fixture, now));
        }
        for o in &self.config.artnet {
            self.state.devices.insert(o.name.clone(), DeviceHealth::unverified(DeviceKind::ArtNet, now));
        }
        for o in &self.config.sacn {
            self.state.devices.insert(o.name.clone(), DeviceHealth::unverified(DeviceKind::Sacn, now));
        }
        // OSC is fire-and-forget UDP: nothing answers, so nothing is verified.
        for o in &self.config.osc {
            self.state.devices.insert(o.name.clone(), DeviceHealth::unverified(DeviceKind::Osc, now));
        }
        if let Some(lighting) = &devices.lighting {
            let mut rx = lighting.health();
            let outputs = lighting.outputs().to_vec();
            let fixtures: Vec<(String, String)> = self.config.fixtures.iter().map(|f| (f.name.clone(), f.artnet.clone())).collect();
            let initial = lighting_health(&rx.borrow_and_update(), &outputs, &fixtures, now);
            self.state.devices.extend(initial);
            let tx = self.health_tx.clone();
            self.followers.spawn(async move {
                // Ends when the lighting task (the watch sender) goes away.
                while rx.changed().await.is_ok() {
                    let all = lighting_health(&rx.borrow_and_update(), &outputs, &fixtures, SystemTime::now());
                    for h in all {
                        if tx.send(h).await.is_err() {
                            return;
                        }
                    }
                }
            });
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
    /// Returns once every task the engine started has ended.
    pub async fn run(mut self, cancel: CancellationToken) {
        if let Some(shutdown) = self.config.lighting.shutdown_scene.clone() {
            self.set_shutdown_look(&shutdown).await;
        }
        if let Some(safe) = self.config.studio.safe_scene.clone() {
            let req = Request::new(None, Origin::Startup, Command::ApplyScene { scene: safe, fade: None, at: None, slot: None });
            let (tx, _rx) = oneshot::channel();
            self.handle(req, tx).await;
        }
        // After the safe scene, so an overdue slot start wins over it.
        self.restore_schedule();
        let mut clock = tokio::time::interval(CLOCK_CHECK);
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The timer is armed for the earliest `at` whenever that changes,
        // and again on each clock check (an NTP step moves the wall clock,
        // not tokio's).
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed_for: Option<SystemTime> = None;
        loop {
            let at = self.schedule.next_at();
            if at != armed_for {
                if let Some(at) = at {
                    let due = at.duration_since(self.now()).unwrap_or(Duration::ZERO);
                    timer.as_mut().reset(tokio::time::Instant::now() + due);
                }
                armed_for = at;
            }
            tokio::select! {
                // Cancellation first: devices stopping at shutdown are not "offline".
                biased;
                _ = cancel.cancelled() => break,
                job = self.inbox.rx.recv() => match job {
                    Some((req, reply)) => self.handle(req, reply).await,
                    None => break,
                },
                Some((name, health)) = self.health_rx.recv() => self.health_changed(name, health),
                // Reap finished background tasks (an empty set disables the branch).
                Some(done) = self.completions.join_next() => self.completed(done),
                Some(done) = self.followers.join_next() => reaped(done),
                _ = &mut timer, if at.is_some() => {
                    armed_for = None;
                    self.apply_scheduled().await
                }
                _ = clock.tick() => {
                    armed_for = None;
                    self.refresh_clock()
                }
            }
        }
        self.stop().await;
    }

    /// Let running commands answer for a moment, then stop and join every
    /// background task. Scheduled scenes stay in their file for the next
    /// start (their callers already have their acknowledgement; without a
    /// file they are counted as dropped).
    async fn stop(&mut self) {
        self.followers.abort_all();
        let completions = &mut self.completions;
        let drained = tokio::time::timeout(DRAIN_GRACE, async {
            while let Some(done) = completions.join_next().await {
                reaped(done.map(drop));
            }
        })
        .await;
        if drained.is_err() {
            // Their callers hear that the command was dropped during shutdown.
            warn!(commands = self.completions.len(), "commands still completing at shutdown; stopped unanswered");
            self.completions.abort_all();
        }
        while let Some(done) = self.completions.join_next().await {
            reaped(done.map(drop));
        }
        while let Some(done) = self.followers.join_next().await {
            reaped(done);
        }
    }

    /// A background completion finished: record an applied scene's result
    /// in the state (the last failure, or none after a success), unless a
    /// newer scene's result is already recorded. A superseded scene changes nothing.
    fn completed(&mut self, done: Result<Option<SceneDone>, JoinError>) {
        let Some(d) = (match done {
            Ok(d) => d,
            Err(e) => return reaped(Err(e)),
        }) else {
            return;
        };
        if d.superseded || d.seq < self.recorded_seq {
            return;
        }
        self.recorded_seq = d.seq;
        if self.state.last_failure != d.failure {
            self.state.last_failure = d.failure;
            self.publish();
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

    async fn handle(&mut self, req: Request, tx: oneshot::Sender<Outcome>) {
        let received = Instant::now();
        let reply = Reply::new(tx, &self.metrics, &req);
        let span = command_span(&req);
        self.execute(req, reply, received).instrument(span).await
    }

    /// Plan the command, start its device parts and answer it: at once when
    /// nothing is pending, else from a background completion.
    async fn execute(&mut self, req: Request, reply: Reply, received: Instant) {
        let plan = match plan::plan(&self.config, &self.devices.cameras, &req.command, self.now()) {
            Ok(p) => p,
            Err(refusal) => return reply.send(Outcome::refused(&req.command, refusal)),
        };
        let cmd = &req.command;
        match plan {
            Plan::Scene(p) => {
                let first_frame = self.first_frame(&req);
                // An `at` already past on arrival: applied now, lateness told.
                let late = match cmd {
                    Command::ApplyScene { at: Some(at), .. } => Some(self.now().duration_since(*at).unwrap_or_default()),
                    _ => None,
                };
                self.apply_now(req, p, reply, received, first_frame, late, false).await
            }
            Plan::Schedule { at, scene } => self.schedule(req, at, scene, reply, received).await,
            Plan::Cancel(target) => {
                let out = self.cancel(cmd, &target, req.id.as_deref(), received).await;
                reply.send(out)
            }
            Plan::Blackout(steps) => {
                let started = start(&self.devices, &steps, self.first_frame(&req)).await;
                self.state.scene = None;
                self.state.scene_label = Some("Blackout".into());
                self.state.applied_at = Some(SystemTime::now());
                self.publish();
                self.finish(req.command, started, reply, received).await;
            }
            Plan::Devices(steps) => {
                let started = start(&self.devices, &steps, self.first_frame(&req)).await;
                self.finish(req.command, started, reply, received).await;
            }
            Plan::Status => {
                // Republish even when nothing changed: the backend asked.
                self.publish();
                reply.send(Outcome::from_devices(cmd, BTreeMap::new(), received.elapsed()));
            }
            Plan::Reload => reply.send(self.reload(cmd, received).await),
            Plan::PutScene { name, scene, path, toml } => reply.send(self.put_scene(cmd, &name, scene, path, toml, received).await),
            Plan::DeleteScene { name, path } => reply.send(self.delete_scene(cmd, &name, path, received).await),
        }
    }

    /// Answer now when every part is done (in order with the commands that
    /// follow); otherwise collect in the background.
    async fn finish(&mut self, cmd: Command, started: Started, reply: Reply, received: Instant) {
        if started.is_done() {
            // Resolves at once: no part is pending.
            reply.send(collect(&cmd, started, received).await);
            return;
        }
        // The command's span follows its completion so its log lines keep the id.
        self.completions.spawn(
            async move {
                reply.send(collect(&cmd, started, received).await);
                None
            }
            .instrument(Span::current()),
        );
    }

    /// Keep a scene for its `at`: persisted first (a refusal changes
    /// nothing), then acknowledged at once; replaced entries (same `at` or
    /// `slot`) get their second outcome now.
    async fn schedule(&mut self, mut req: Request, at: SystemTime, scene: SceneRef, reply: Reply, received: Instant) {
        // Cancel needs an id; commands from every adapter carry one.
        let id = match &req.id {
            Some(id) => id.clone(),
            None => {
                self.generated += 1;
                let ms = self.now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
                req.id.insert(format!("sched-{ms}-{}", self.generated)).clone()
            }
        };
        if let Err(e) = self.schedule.check(&id, at, scene.slot.as_ref()) {
            return reply.send(Outcome::refused(&req.command, e));
        }
        let name = scene.name.clone();
        let (replaced, previous) = self.schedule.insert(Entry { id: id.clone(), origin: req.origin, at, scene, extra: () }.with(reply));
        if let Err(e) = self.save_schedule().await {
            let Some(back) = self.schedule.undo(&id, previous, replaced) else { return };
            return back.send(refuse(&req.command, ErrorCode::Internal, self.client_text(format!("could not save the schedule: {e}"))));
        }
        info!(scene = %name, at = %rfc3339(at), waiting = self.schedule.len(), "scene scheduled");
        let mut ack = Outcome::from_devices(&req.command, BTreeMap::new(), received.elapsed());
        ack.scheduled = Some(at);
        if let Some(e) = self.schedule.get_mut(&id) {
            e.extra.acknowledge(ack);
        }
        // A redelivery of the same id replaced itself: that is no news.
        drop(previous);
        for r in replaced {
            let why = format!("replaced by `{}` (same slot start)", r.by);
            self.answer_later(r.entry, ErrorCode::Superseded, why);
        }
        self.show_schedule();
    }

    /// `cancel`: withdraw a scheduled scene; it gets its second outcome now.
    async fn cancel(&mut self, cmd: &Command, target: &str, by: Option<&str>, received: Instant) -> Outcome {
        let Some(entry) = self.schedule.cancel(target) else {
            return refuse(
                cmd,
                ErrorCode::InvalidCommand,
                format!("nothing is scheduled with id `{target}` (it may have run or been replaced)"),
            );
        };
        if let Err(e) = self.save_schedule().await {
            self.schedule.undo(target, Some(entry), Vec::new());
            return refuse(cmd, ErrorCode::Internal, self.client_text(format!("could not save the schedule: {e}")));
        }
        info!(target, scene = %entry.scene.name, "scheduled scene cancelled");
        let mut out = Outcome::from_devices(cmd, BTreeMap::new(), received.elapsed());
        out.data = Some(serde_json::json!({"cancelled": {"id": entry.id, "scene": entry.scene.name, "at": rfc3339(entry.at)}}));
        let why = match by {
            Some(by) => format!("cancelled by `{by}`"),
            None => "cancelled".to_string(),
        };
        self.answer_later(entry, ErrorCode::Cancelled, why);
        self.show_schedule();
        out
    }

    /// A scheduled command's second outcome when it never ran.
    fn answer_later(&self, e: Entry<Reply>, code: ErrorCode, why: String) {
        info!(id = %e.id, scene = %e.scene.name, code = code.as_str(), %why, "scheduled scene withdrawn");
        let out = refuse(&scheduled_command(&e), code, why);
        let _ = self.inbox.later.send(Later { id: e.id.clone(), origin: e.origin, outcome: out.clone() });
        e.extra.send(out);
    }

    /// The schedule as the state shows it.
    fn show_schedule(&mut self) {
        self.state.schedule = self
            .schedule
            .iter()
            .map(|e| PendingScene { id: e.id.clone(), scene: e.scene.name.clone(), at: e.at, slot: e.scene.slot.clone(), origin: e.origin })
            .collect();
        self.publish();
    }

    /// Write the schedule to its file (atomically), if it has one.
    async fn save_schedule(&self) -> std::io::Result<()> {
        let Some(path) = self.schedule_file.clone() else { return Ok(()) };
        let bytes = serde_json::to_vec_pretty(&self.schedule.saved()).map_err(std::io::Error::other)?;
        tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&path, &bytes)).await.map_err(std::io::Error::other)?
    }

    /// Read the schedule kept by the last run. An unreadable file is set
    /// aside (not lost) and the booth starts with an empty schedule.
    fn restore_schedule(&mut self) {
        let Some(path) = self.schedule_file.clone() else { return };
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Saved>(&bytes).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => Err(e.to_string()),
        };
        let saved = match saved {
            Ok(s) => s,
            Err(e) => {
                let aside = path.with_extension("json.unreadable");
                let _ = std::fs::rename(&path, &aside);
                error!(file = %path.display(), error = %e, kept_as = %aside.display(), "schedule file unreadable; starting with an empty schedule");
                return;
            }
        };
        let metrics = self.metrics.clone();
        self.schedule = Schedule::restore(saved)
            .with_extra(|e| Reply::detached(&metrics, &Request::new(Some(e.id.clone()), e.origin, scheduled_command(e))));
        let overdue = self.schedule.iter().filter(|e| e.at <= self.now()).count();
        info!(waiting = self.schedule.len(), overdue, "schedule restored");
        self.show_schedule();
    }

    /// The schedule's time has come: the scene due (the latest, when the
    /// booth was down or busy over several) is planned against the
    /// configuration now in force and applied; its result is the command's
    /// second outcome.
    async fn apply_scheduled(&mut self) {
        let now = self.now();
        // Woken early (the wall clock was stepped back): the loop re-arms.
        let Some((due, earlier)) = self.schedule.take_due(now) else { return };
        for r in earlier {
            let why = format!("superseded by `{}`: both were due at once (studiod was not running at this one's time)", r.by);
            self.answer_later(r.entry, ErrorCode::Superseded, why);
        }
        let Entry { id, origin, at, scene, extra: reply } = due;
        let late = now.duration_since(at).unwrap_or_default();
        let req = Request::new(Some(id.clone()), origin, scheduled_command_of(&scene, Some(at)));
        // The scheduled command's own span, so its lines keep its id.
        let span = command_span(&req);
        match plan::scene_plan(&self.config, &scene) {
            // Not timed to its first frame: the wait for `at` is not latency.
            Ok(p) => self.apply_now(req, p, reply, Instant::now(), None, Some(late), true).instrument(span).await,
            Err(refusal) => {
                let mut out = Outcome::refused(&req.command, refusal);
                out.late = Some(late);
                let _ = self.inbox.later.send(Later { id, origin, outcome: out.clone() });
                reply.send(out);
            }
        }
        // After the devices started: a save never delays the slot start.
        if let Err(e) = self.save_schedule().await {
            error!(error = %e, "could not save the schedule; a restart may apply the scene again");
        }
        self.show_schedule();
    }

    /// Apply a scene: lights and OSC at once, camera moves queued in order;
    /// their completions are awaited in the background. `late`: how long
    /// after its `at` it starts; `scheduled`: its result is also the
    /// scheduled command's second outcome.
    #[allow(clippy::too_many_arguments)]
    async fn apply_now(
        &mut self,
        req: Request,
        p: ScenePlan,
        reply: Reply,
        received: Instant,
        first_frame: Option<FirstFrame>,
        late: Option<Duration>,
        scheduled: bool,
    ) {
        let begun = Instant::now();
        let started = start(&self.devices, &p.steps, first_frame).await;
        info!(scene = %p.name, devices = started.parts.len(), fade_ms = p.fade.as_millis() as u64, "applying scene");
        self.state.scene = Some(p.name);
        self.state.scene_label = Some(p.label);
        self.state.slot = p.slot;
        self.state.applied_at = Some(SystemTime::now());
        self.publish();

        self.applied_seq += 1;
        let seq = self.applied_seq;
        let Request { id, origin, command: cmd, .. } = req;
        let events = self.inbox.events.clone();
        let later = scheduled.then(|| self.inbox.later.clone());
        let m = self.metrics.clone();
        self.completions.spawn(
            async move {
                let mut out = collect(&cmd, started, received).await;
                out.late = late;
                // From the devices starting (not from receipt, which includes a scheduled wait).
                m.observe(metrics::APPLY_SECONDS, &[("result", if out.ok { "ok" } else { "failed" })], begun.elapsed().as_secs_f64());
                let scene = cmd.scene().unwrap_or_default();
                info!(scene, ok = out.ok, duration_ms = out.duration.as_millis() as u64, "scene applied");
                let done_id = id.clone();
                if origin != Origin::Mqtt {
                    let _ = events.send(Event::scene_applied(scene, origin, id, &out));
                }
                let done = SceneDone {
                    seq,
                    failure: SceneFailure::of(scene, origin, &out),
                    superseded: Event::scene_applied(scene, origin, None, &out).is_superseded(),
                };
                if let (Some(later), Some(id)) = (later, &done_id) {
                    let _ = later.send(Later { id: id.clone(), origin, outcome: out.clone() });
                }
                reply.send(out);
                Some(done)
            }
            // The command's span follows the camera completions, so "scene applied" carries the id.
            .instrument(Span::current()),
        );
    }

    async fn reload(&mut self, cmd: &Command, received: Instant) -> Outcome {
        let path = self.config.path.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path)).await;
        let new = match loaded {
            Ok(Ok(c)) => Arc::new(c),
            Ok(Err(diags)) => {
                let problems = diags.sorted();
                let code = plan::invalid_reload_code(problems.iter().map(|d| d.file.as_path()), &self.config.studio.scenes_dir);
                let msg = crate::diag::for_client(&problems, self.config.dir());
                warn!(problems = problems.len(), code = code.as_str(), "reload refused: configuration invalid; keeping the running one");
                return refuse(cmd, code, msg);
            }
            Err(e) => return refuse(cmd, ErrorCode::Internal, format!("reload failed: {e}")),
        };
        let devices_changed = !self.config.same_devices(&new);
        self.set_config(new.clone());
        if devices_changed {
            if let Some(respawn) = self.respawn.as_mut() {
                match respawn(new).await {
                    Ok(d) => self.install_devices(d),
                    Err(e) => return refuse(cmd, ErrorCode::Internal, chain(&e)),
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

    async fn put_scene(
        &mut self,
        cmd: &Command,
        name: &str,
        scene: Scene,
        path: std::path::PathBuf,
        toml: String,
        received: Instant,
    ) -> Outcome {
        if self.config.scenes.get(name).is_some_and(|s| *s.text == *toml) {
            // A roll-out retried, or sent to every booth: same bytes, so no
            // rewrite, and the same scenes_hash.
            info!(scene = name, "scene unchanged, not rewritten");
            return Outcome::from_devices(cmd, BTreeMap::new(), received.elapsed());
        }
        let p = path.clone();
        match tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&p, toml.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return refuse(cmd, ErrorCode::Internal, self.client_text(format!("could not save {}: {e}", path.display()))),
            Err(e) => return refuse(cmd, ErrorCode::Internal, self.client_text(format!("could not save {}: {e}", path.display()))),
        }
        let mut next = (*self.config).clone();
        next.scenes.insert(name.to_string(), scene);
        self.set_config(Arc::new(next));
        info!(scene = name, "scene saved");
        Outcome::from_devices(cmd, BTreeMap::new(), received.elapsed())
    }

    async fn delete_scene(&mut self, cmd: &Command, name: &str, path: std::path::PathBuf, received: Instant) -> Outcome {
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

    /// `text` without the config folder's absolute path (replies go to clients).
    fn client_text(&self, text: String) -> String {
        crate::diag::client_text(&text, self.config.dir())
    }

    /// The configuration in force (for adapters that render scene lists).
    pub fn config(&self) -> Arc<Config> {
        self.config.clone()
    }
}

fn command_span(req: &Request) -> Span {
    info_span!("command", id = req.id.as_deref().unwrap_or("-"), action = req.command.action(), origin = req.origin.as_str())
}

/// A background task ended: a panic is a bug worth a log line; an abort is ours.
/// What an applied scene's completion hands back to the engine.
struct SceneDone {
    seq: u64,
    failure: Option<SceneFailure>,
    superseded: bool,
}

fn reaped(done: Result<(), JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            error!(error = %e, "engine background task panicked");
        }
    }
}

/// The `apply_scene` a scheduled entry stands for.
fn scheduled_command<T>(e: &Entry<T>) -> Command {
    scheduled_command_of(&e.scene, Some(e.at))
}

fn scheduled_command_of(scene: &SceneRef, at: Option<SystemTime>) -> Command {
    Command::ApplyScene { scene: scene.name.clone(), fade: scene.fade, at, slot: scene.slot.clone() }
}

fn refuse(cmd: &Command, code: ErrorCode, msg: impl Into<String>) -> Outcome {
    Outcome::refused(cmd, CommandError::new(code, msg))
}

/// RFC 3339 UTC with milliseconds, as the wire formats show instants.
fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn camera_health(h: &crate::camera::Health, now: SystemTime) -> DeviceHealth {
    // The link's `since` is a monotonic instant; convert it to wall-clock time.
    let age = tokio::time::Instant::now().saturating_duration_since(h.since);
    let mut d = DeviceHealth::verified(
        DeviceKind::Camera,
        h.online,
        if h.online { h.last_error.clone() } else { h.reason.clone() },
        now.checked_sub(age).unwrap_or(now),
    );
    d.identity = h.identity.clone();
    d
}

/// The outputs' health as device health, and each fixture's: that of the
/// output it is patched to, with the node named when it is offline.
fn lighting_health(
    health: &[crate::lighting::OutputHealth],
    outputs: &[(String, crate::lighting::Protocol)],
    fixtures: &[(String, String)],
    now: SystemTime,
) -> Vec<(String, DeviceHealth)> {
    use crate::lighting::{HealthState, Protocol};
    let mut out = Vec::with_capacity(outputs.len() + fixtures.len());
    for ((name, protocol), h) in outputs.iter().zip(health) {
        let kind = if *protocol == Protocol::Sacn { DeviceKind::Sacn } else { DeviceKind::ArtNet };
        let age = tokio::time::Instant::now().saturating_duration_since(h.since);
        let since = now.checked_sub(age).unwrap_or(now);
        let mut d = match &h.state {
            HealthState::Unverified => DeviceHealth::unverified(kind, since),
            HealthState::Online => DeviceHealth::verified(kind, true, None, since),
            HealthState::Offline(reason) => DeviceHealth::verified(kind, false, Some(reason.clone()), since),
        };
        d.node = h.node.clone();
        out.push((name.clone(), d));
    }
    for (fixture, output) in fixtures {
        let Some(i) = outputs.iter().position(|(n, _)| n == output) else { continue };
        let mut d = out[i].1.clone();
        d.kind = DeviceKind::Fixture;
        d.node = None;
        if let Some(reason) = &d.error {
            d.error = Some(format!("light node `{output}` offline: {reason}"));
        }
        out.push((fixture.clone(), d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::CameraHandle;
    use crate::engine::plan::tests::example;
    use crate::engine::EngineHandle;

    /// An engine on the example booth with no device running, so every
    /// device part fails with "… is not running".
    struct Rig {
        handle: EngineHandle,
        metrics: Metrics,
        cancel: CancellationToken,
        run: tokio::task::JoinHandle<()>,
        clock: WallClock,
    }

    impl Rig {
        fn start() -> Rig {
            Rig::start_with(None, tokio_wall_clock())
        }

        /// With the schedule kept in `file`, on `clock` (one that follows
        /// tokio's, for paused-time tests).
        fn start_with(file: Option<std::path::PathBuf>, clock: WallClock) -> Rig {
            Rig::start_on(DeviceHandles::default(), file, clock)
        }

        fn start_on(devices: DeviceHandles, file: Option<std::path::PathBuf>, clock: WallClock) -> Rig {
            let (handle, inbox) = EngineHandle::channel(BoothState::default());
            let metrics = Metrics::new();
            let mut engine = Engine::new(example(), devices, inbox).with_metrics(metrics.clone()).with_wall_clock(clock.clone());
            if let Some(f) = file {
                engine = engine.with_schedule_file(f);
            }
            let cancel = CancellationToken::new();
            let run = tokio::spawn(engine.run(cancel.clone()));
            Rig { handle, metrics, cancel, run, clock }
        }

        /// Send a command without waiting for its outcome.
        fn send(&self, command: Command) -> tokio::task::JoinHandle<Outcome> {
            let h = self.handle.clone();
            tokio::spawn(async move { h.execute(Request::new(Some("t-1".into()), Origin::Cli, command)).await })
        }

        async fn exec(&self, command: Command) -> Outcome {
            self.send(command).await.expect("execute")
        }

        async fn state_where(&self, what: &str, f: impl Fn(&BoothState) -> bool) -> BoothState {
            let mut rx = self.handle.state();
            let r = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if f(&rx.borrow_and_update()) {
                        return rx.borrow().clone();
                    }
                    rx.changed().await.expect("engine alive");
                }
            });
            r.await.unwrap_or_else(|_| panic!("state never had {what}"))
        }

        /// Cancel and wait for `run` to return: it joins every task it started.
        async fn stop(self) {
            self.cancel.cancel();
            tokio::time::timeout(Duration::from_secs(5), self.run).await.expect("run returned").expect("run did not panic");
        }
    }

    fn apply(scene: &str, at: Option<SystemTime>) -> Command {
        Command::ApplyScene { scene: scene.into(), fade: None, at, slot: None }
    }

    fn code(out: &Outcome) -> Option<ErrorCode> {
        out.error.as_ref().map(|e| e.code)
    }

    #[tokio::test]
    async fn a_failed_scene_from_mqtt_is_kept_in_the_state_without_an_event() {
        let rig = Rig::start();
        let mut events = rig.handle.events();
        let h = rig.handle.clone();
        let out = h.execute(Request::new(Some("m-1".into()), Origin::Mqtt, apply("intro", None))).await;
        assert_eq!(code(&out), Some(ErrorCode::DeviceFailed));
        let st = rig.state_where("intro's failure", |s| s.last_failure.as_ref().is_some_and(|f| f.scene == "intro")).await;
        let f = st.last_failure.expect("last failure");
        assert_eq!((f.scene.as_str(), f.origin), ("intro", Origin::Mqtt));
        assert_eq!(f.failed.get("front").map(String::as_str), Some("camera is not running"));
        assert_eq!(f.failed.len(), out.devices.values().filter(|d| !d.ok).count());
        // MQTT's own reply tells the backend: no event for it.
        while let Ok(e) = events.try_recv() {
            assert!(!matches!(&e, Event::SceneApplied { scene, .. } if scene == "intro"), "{e:?}");
        }
        // A newer failure replaces it.
        let out = rig.exec(apply("flash-sale", None)).await;
        assert_eq!(code(&out), Some(ErrorCode::DeviceFailed));
        let st = rig.state_where("flash-sale's failure", |s| s.last_failure.as_ref().is_some_and(|f| f.scene == "flash-sale")).await;
        assert_eq!(st.last_failure.map(|f| f.origin), Some(Origin::Cli));
        rig.stop().await;
    }

    /// An engine whose only running device is the `overhead` camera, whose
    /// requests the test answers (`next_move`), with the safe scene's
    /// start-up move already answered.
    async fn held_overhead() -> (Rig, mpsc::Receiver<crate::camera::Msg>) {
        let profile = example().cameras.iter().find(|c| c.name == "overhead").expect("overhead").profile.clone();
        let (overhead, mut requests) = CameraHandle::held("overhead", profile);
        let devices = DeviceHandles { cameras: BTreeMap::from([("overhead".to_string(), overhead)]), ..DeviceHandles::default() };
        let rig = Rig::start_on(devices, None, tokio_wall_clock());
        next_move(&mut requests).await.send(done()).expect("the safe scene waits");
        (rig, requests)
    }

    /// The held camera's next request, which must be a move: its answer's sender.
    async fn next_move(
        requests: &mut mpsc::Receiver<crate::camera::Msg>,
    ) -> oneshot::Sender<Result<crate::camera::link::LinkOutcome, crate::camera::Failure>> {
        match requests.recv().await {
            Some(crate::camera::Msg::Request { request: crate::camera::link::Request::ViscaCommand(_), reply, .. }) => reply,
            other => panic!("expected a move, got {other:?}"),
        }
    }

    fn done() -> Result<crate::camera::link::LinkOutcome, crate::camera::Failure> {
        Ok(crate::camera::link::LinkOutcome::Completed)
    }

    /// `last_failure` is the newest applied scene's result: an older scene
    /// whose camera move completes after a newer scene's result is in does
    /// not overwrite it (the sequence check in `completed`).
    #[tokio::test]
    async fn an_older_scene_finishing_last_does_not_overwrite_the_newer_result() {
        // `flash-sale` moves `overhead`; `intro` does not, so intro's result comes first.
        let (rig, mut overhead) = held_overhead().await;
        rig.state_where("the safe scene's failure", |s| s.last_failure.as_ref().is_some_and(|f| f.scene == "house")).await;

        let sale = rig.send(apply("flash-sale", None));
        let sale_move = next_move(&mut overhead).await;
        let out = rig.exec(apply("intro", None)).await;
        assert_eq!(code(&out), Some(ErrorCode::DeviceFailed), "intro's cameras are not running");
        rig.state_where("intro's failure", |s| s.last_failure.as_ref().is_some_and(|f| f.scene == "intro")).await;

        // flash-sale's move completes now; it still fails (front, side are not running).
        sale_move.send(done()).expect("flash-sale waits");
        let out = sale.await.expect("flash-sale");
        assert!(out.devices["overhead"].ok, "{out:?}");
        assert_eq!(code(&out), Some(ErrorCode::DeviceFailed));
        // Two more commands through the engine: flash-sale's completion has been reaped by then.
        for _ in 0..2 {
            rig.exec(Command::RecallPreset { camera: "nope".into(), preset: 1 }).await;
        }
        let last = rig.handle.state().borrow().last_failure.clone().map(|f| f.scene);
        assert_eq!(last.as_deref(), Some("intro"), "the older scene's result overwrote the newer one's");
        rig.stop().await;
    }

    /// A command whose devices are still working when the engine is told
    /// to stop gets its own answer, if it comes within the drain grace,
    /// rather than a refusal (`stop` waits for it).
    #[tokio::test]
    async fn a_command_in_flight_at_shutdown_gets_its_own_answer() {
        let (rig, mut overhead) = held_overhead().await;
        let sale = rig.send(apply("flash-sale", None));
        let sale_move = next_move(&mut overhead).await;
        rig.cancel.cancel();
        // The move completes while the engine drains.
        sale_move.send(done()).expect("flash-sale waits through the shutdown");
        let out = sale.await.expect("flash-sale");
        assert!(out.devices.get("overhead").is_some_and(|d| d.ok), "not flash-sale's own answer: {out:?}");
        rig.stop().await;
    }

    /// Each output keeps its protocol's kind; a fixture takes the health of
    /// the output it is patched to, with that output named when it is offline.
    #[test]
    fn lighting_health_gives_outputs_their_kind_and_fixtures_their_outputs_state() {
        use crate::lighting::{HealthState, OutputHealth, Protocol};
        let since = tokio::time::Instant::now();
        let health = [
            OutputHealth { state: HealthState::Offline("no ArtPollReply for 10 s".into()), since, node: None },
            OutputHealth { state: HealthState::Unverified, since, node: None },
        ];
        let outputs = [("node1".to_string(), Protocol::ArtNet), ("wash".to_string(), Protocol::Sacn)];
        let fixtures = [("strip".to_string(), "wash".to_string()), ("key".to_string(), "node1".to_string())];
        let all: BTreeMap<String, DeviceHealth> = lighting_health(&health, &outputs, &fixtures, SystemTime::now()).into_iter().collect();
        assert_eq!((all["node1"].kind, all["wash"].kind), (DeviceKind::ArtNet, DeviceKind::Sacn));
        assert_eq!((all["key"].kind, all["key"].online), (DeviceKind::Fixture, false));
        assert_eq!(all["key"].error.as_deref(), Some("light node `node1` offline: no ArtPollReply for 10 s"));
        assert_eq!((all["strip"].kind, all["strip"].online, all["strip"].verified), (DeviceKind::Fixture, true, false));
        assert_eq!(all["strip"].error, None);
    }

    #[tokio::test]
    async fn refusals_touch_nothing_and_are_counted() {
        let rig = Rig::start();
        let out = rig.exec(apply("no-such-scene", None)).await;
        assert_eq!(code(&out), Some(ErrorCode::UnknownScene));
        assert!(out.devices.is_empty());
        let out = rig.exec(Command::RecallPreset { camera: "nope".into(), preset: 1 }).await;
        assert_eq!(code(&out), Some(ErrorCode::UnknownDevice));
        let counted =
            rig.metrics.get(metrics::COMMANDS_TOTAL, &[("action", "apply_scene"), ("result", "unknown_scene"), ("origin", "cli")]);
        assert_eq!(counted, 1.0);
        rig.stop().await;
    }

    #[tokio::test]
    async fn a_device_failure_fails_that_device_and_the_command_still_applies() {
        let rig = Rig::start();
        let mut events = rig.handle.events();
        let out = rig.exec(apply("flash-sale", None)).await;
        assert_eq!(code(&out), Some(ErrorCode::DeviceFailed));
        assert_eq!(out.devices["key"].error.as_deref(), Some("lighting output is not running"));
        assert_eq!(out.devices["front"].error.as_deref(), Some("camera is not running"));
        assert_eq!(out.devices["console"].error.as_deref(), Some("OSC output is not running"));
        let st = rig.state_where("flash-sale", |s| s.scene.as_deref() == Some("flash-sale")).await;
        assert_eq!(st.scene_label.as_deref(), Some("Flash sale"));
        // Not from MQTT, so the backend hears of it as an event.
        let ev = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(e @ Event::SceneApplied { .. }) = events.recv().await {
                    if matches!(&e, Event::SceneApplied { scene, .. } if scene == "flash-sale") {
                        return e;
                    }
                }
            }
        })
        .await
        .expect("scene applied event");
        let Event::SceneApplied { origin, ok, id, failed, superseded, .. } = ev else { unreachable!() };
        assert_eq!((origin, ok, id.as_deref(), superseded), (Origin::Cli, false, Some("t-1"), false));
        assert_eq!(failed.get("front").map(String::as_str), Some("camera is not running"));
        assert_eq!(failed.len(), out.devices.values().filter(|d| !d.ok).count());
        let out = rig.exec(Command::Blackout { fade: None }).await;
        assert_eq!(out.devices.len(), example().fixtures.len());
        assert_eq!(rig.state_where("blackout", |s| s.scene.is_none()).await.scene_label.as_deref(), Some("Blackout"));
        rig.stop().await;
    }

    /// A wall clock that follows tokio's, so paused-time tests see `at` come.
    fn tokio_wall_clock() -> WallClock {
        let (wall, t0) = (SystemTime::now(), tokio::time::Instant::now());
        Arc::new(move || wall + t0.elapsed())
    }

    fn slot_apply(scene: &str, at: SystemTime, slot: &str) -> Command {
        Command::ApplyScene { scene: scene.into(), fade: None, at: Some(at), slot: Some(serde_json::json!({"booking": slot})) }
    }

    /// Send with this id, as an adapter would; the answer (for a scheduled
    /// scene: its acknowledgement) comes at once, in real or paused time.
    async fn exec_id(rig: &Rig, id: &str, command: Command) -> Outcome {
        let answer = rig.handle.execute(Request::new(Some(id.into()), Origin::Mqtt, command));
        tokio::time::timeout(Duration::from_secs(5), answer).await.unwrap_or_else(|_| panic!("{id}: no answer"))
    }

    /// The next second outcome within `limit`: paused-time tests wait in
    /// virtual time (hours pass at once), the others a few real seconds.
    async fn next_later(rx: &mut tokio::sync::broadcast::Receiver<Later>, limit: Duration) -> Later {
        tokio::time::timeout(limit, rx.recv()).await.expect("a second outcome").expect("engine alive")
    }

    const REAL: Duration = Duration::from_secs(5);
    const VIRTUAL: Duration = Duration::from_secs(7200);

    fn ids(st: &BoothState) -> Vec<&str> {
        st.schedule.iter().map(|p| p.id.as_str()).collect()
    }

    #[tokio::test]
    async fn a_scheduled_scene_is_acknowledged_at_once_and_immediate_ones_never_cancel_it() {
        let rig = Rig::start();
        let later = SystemTime::now() + Duration::from_secs(3600);
        let ack = exec_id(&rig, "s-1", slot_apply("house", later, "b-1")).await;
        assert!(ack.ok && ack.devices.is_empty(), "{ack:?}");
        assert_eq!((ack.scheduled, ack.late), (Some(later), None));
        let now = rig.exec(apply("flash-sale", None)).await;
        assert_eq!(now.scene.as_deref(), Some("flash-sale"));
        let st = rig.state_where("flash-sale applied", |s| s.scene.as_deref() == Some("flash-sale")).await;
        assert_eq!(ids(&st), ["s-1"]);
        let p = st.pending().unwrap();
        assert_eq!((p.scene.as_str(), p.at, p.origin), ("house", later, Origin::Mqtt));
        assert_eq!(p.slot, Some(serde_json::json!({"booking": "b-1"})));
        rig.stop().await;
    }

    #[tokio::test]
    async fn the_same_at_or_slot_replaces_and_cancel_withdraws_each_with_a_second_outcome() {
        let rig = Rig::start();
        let mut later = rig.handle.later();
        let t = SystemTime::now() + Duration::from_secs(3600);
        for (id, at, slot) in [("a", t, "b-1"), ("b", t + Duration::from_secs(60), "b-2"), ("c", t + Duration::from_secs(120), "b-3")] {
            assert!(exec_id(&rig, id, slot_apply("house", at, slot)).await.ok);
        }
        // Same `at` as a.
        assert!(exec_id(&rig, "a2", slot_apply("intro", t, "b-9")).await.ok);
        let l = next_later(&mut later, REAL).await;
        assert_eq!((l.id.as_str(), l.origin, code(&l.outcome)), ("a", Origin::Mqtt, Some(ErrorCode::Superseded)));
        assert_eq!(l.outcome.error.unwrap().message, "replaced by `a2` (same slot start)");
        // Same slot as b, moved by ten minutes.
        assert!(exec_id(&rig, "b2", slot_apply("intro", t + Duration::from_secs(600), "b-2")).await.ok);
        assert_eq!(next_later(&mut later, REAL).await.id, "b");
        let st = rig.state_where("a2, c, b2", |s| s.schedule.len() == 3).await;
        assert_eq!(ids(&st), ["a2", "c", "b2"]);
        // Cancel by id: ok for the canceller, `cancelled` for the withdrawn.
        let out = exec_id(&rig, "x-1", Command::Cancel { target: "c".into() }).await;
        assert!(out.ok, "{out:?}");
        assert_eq!(out.data.as_ref().unwrap()["cancelled"]["id"], "c");
        let c_at = chrono::DateTime::<chrono::Utc>::from(t + Duration::from_secs(120));
        assert_eq!(out.data.as_ref().unwrap()["cancelled"]["at"], c_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let l = next_later(&mut later, REAL).await;
        assert_eq!((l.id.as_str(), code(&l.outcome)), ("c", Some(ErrorCode::Cancelled)));
        assert_eq!(l.outcome.error.unwrap().message, "cancelled by `x-1`");
        let out = exec_id(&rig, "x-2", Command::Cancel { target: "c".into() }).await;
        assert_eq!(code(&out), Some(ErrorCode::InvalidCommand));
        assert!(out.error.unwrap().message.contains("nothing is scheduled with id `c`"));
        rig.state_where("a2, b2", |s| ids(s) == ["a2", "b2"]).await;
        // Beyond the horizon: refused, the schedule untouched.
        let out = exec_id(&rig, "far", slot_apply("house", SystemTime::now() + Duration::from_secs(8 * 86_400), "b-5")).await;
        assert_eq!(code(&out), Some(ErrorCode::InvalidCommand));
        assert!(later.try_recv().is_err(), "nothing else was withdrawn");
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn scheduled_commands_without_an_id_each_get_their_own() {
        let rig = Rig::start();
        let wall = (rig.clock)();
        // The same millisecond (paused clock), two slot starts without ids.
        for m in [10, 20] {
            let cmd = apply("intro", Some(wall + Duration::from_secs(60 * m)));
            let out = tokio::time::timeout(REAL, rig.handle.execute(Request::new(None, Origin::Cli, cmd))).await.unwrap();
            assert!(out.scheduled.is_some(), "{out:?}");
        }
        let st = rig.state_where("two waiting", |s| s.schedule.len() == 2).await;
        let (a, b) = (&st.schedule[0].id, &st.schedule[1].id);
        assert!(a.starts_with("sched-") && b.starts_with("sched-") && a != b, "{a} {b}");
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_scheduled_scene_applies_at_its_time() {
        let rig = Rig::start();
        let mut later = rig.handle.later();
        // Paused time: the engine's timer fires as soon as everything is
        // idle, and the clock then reads exactly when it fired.
        let (wall, t0) = ((rig.clock)(), tokio::time::Instant::now());
        let ack = exec_id(&rig, "s-1", apply("intro", Some(wall + Duration::from_secs(3600)))).await;
        assert!(ack.scheduled.is_some());
        let l = next_later(&mut later, VIRTUAL).await;
        let late = t0.elapsed().abs_diff(Duration::from_secs(3600));
        // Within one frame period (1/44 s) of its time, neither early nor late.
        assert!(late <= Duration::from_secs(1) / 44, "applied {late:?} off its time");
        let out = l.outcome;
        assert_eq!((l.id.as_str(), out.scene.as_deref()), ("s-1", Some("intro")));
        assert!(out.late.is_some_and(|l| l <= Duration::from_secs(1) / 44), "{:?}", out.late);
        assert_eq!(code(&out), Some(ErrorCode::DeviceFailed), "applied, on no devices: {out:?}");
        let st = rig.state_where("intro applied", |s| s.scene.as_deref() == Some("intro")).await;
        assert!(st.schedule.is_empty());
        // An `at` already past on arrival applies at once and says how late.
        let out = exec_id(&rig, "s-2", apply("house", Some((rig.clock)() - Duration::from_millis(1500)))).await;
        assert_eq!((out.scheduled, out.late.map(|l| l.as_millis())), (None, Some(1500)));
        rig.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn three_slot_starts_survive_a_crash_and_each_starts_once_on_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("schedule.json");
        // One wall clock for both runs, as the OS's would be.
        let clock = tokio_wall_clock();
        let rig = Rig::start_with(Some(file.clone()), clock.clone());
        let wall = clock();
        let at = |m: u64| wall + Duration::from_secs(60 * m);
        for (id, m) in [("s-1", 10), ("s-2", 20), ("s-3", 30)] {
            assert!(exec_id(&rig, id, slot_apply("intro", at(m), id)).await.scheduled.is_some());
        }
        // A creator's scene in between changes nothing scheduled.
        rig.exec(apply("flash-sale", None)).await;
        // A crash: the engine is gone without its shutdown.
        rig.run.abort();
        let _ = rig.run.await;
        let saved: Saved = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(saved.entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["s-1", "s-2", "s-3"]);

        let rig = Rig::start_with(Some(file.clone()), clock.clone());
        let mut later = rig.handle.later();
        rig.state_where("the three restored", |s| s.schedule.len() == 3).await;
        for (id, m) in [("s-1", 10), ("s-2", 20), ("s-3", 30)] {
            let l = next_later(&mut later, VIRTUAL).await;
            assert_eq!(l.id, id);
            let off = clock().duration_since(at(m)).expect("never before its time");
            assert!(off <= Duration::from_secs(1) / 44, "{id} applied {off:?} off its time");
            assert_eq!(l.outcome.scene.as_deref(), Some("intro"));
        }
        rig.state_where("nothing left", |s| s.schedule.is_empty()).await;
        assert!(later.try_recv().is_err(), "each once");
        let saved: Saved = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert!(saved.entries.is_empty());
        rig.stop().await;
    }

    /// A schedule file as a last run would have left it: `intro` from MQTT at each (id, at).
    fn save_intros(file: &std::path::Path, entries: impl IntoIterator<Item = (String, SystemTime)>) {
        let mut s = Schedule::<()>::default();
        for (id, at) in entries {
            let scene = SceneRef { name: "intro".into(), fade: None, slot: None };
            s.insert(Entry { id, origin: Origin::Mqtt, at, scene, extra: () });
        }
        std::fs::write(file, serde_json::to_vec(&s.saved()).unwrap()).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn slot_starts_missed_while_down_apply_the_latest_late_and_supersede_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("schedule.json");
        let clock = tokio_wall_clock();
        let wall = clock();
        save_intros(&file, [("old", 600), ("last", 90)].map(|(id, ago)| (id.to_string(), wall - Duration::from_secs(ago))));
        let rig = Rig::start_with(Some(file.clone()), clock.clone());
        let mut later = rig.handle.later();
        let first = next_later(&mut later, VIRTUAL).await;
        assert_eq!((first.id.as_str(), code(&first.outcome)), ("old", Some(ErrorCode::Superseded)));
        let last = next_later(&mut later, VIRTUAL).await;
        assert_eq!(last.id, "last");
        assert_eq!(last.outcome.late.map(|l| l.as_secs()), Some(90));
        rig.stop().await;
        // An unreadable file is set aside, never a reason not to start.
        std::fs::write(&file, b"{not json").unwrap();
        let rig = Rig::start_with(Some(file.clone()), clock);
        // Answered after the restore (which runs before the first command).
        assert!(rig.exec(Command::Status).await.ok);
        assert!(file.with_extension("json.unreadable").exists());
        rig.stop().await;
    }

    /// The later-channel has room for a whole schedule's second outcomes at
    /// once: a restart that finds all of it overdue answers every entry (all
    /// superseded but the latest) in one burst, and a listener loses none.
    #[tokio::test(start_paused = true)]
    async fn a_restart_with_the_whole_schedule_overdue_loses_no_second_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("schedule.json");
        let clock = tokio_wall_clock();
        let wall = clock();
        let full = crate::engine::schedule::CAPACITY;
        let start = wall - Duration::from_secs(7200);
        save_intros(&file, (0..full).map(|i| (format!("s-{i}"), start + Duration::from_secs(i as u64))));
        let rig = Rig::start_with(Some(file), clock);
        let mut later = rig.handle.later();
        let mut superseded = 0;
        for _ in 0..full {
            // A listener that fell behind would read `Lagged` here.
            let l = next_later(&mut later, VIRTUAL).await;
            superseded += usize::from(code(&l.outcome) == Some(ErrorCode::Superseded));
        }
        assert_eq!(superseded, full - 1, "all but the latest superseded");
        rig.stop().await;
    }

    #[tokio::test]
    async fn commands_queued_at_shutdown_each_get_one_outcome() {
        let rig = Rig::start();
        let sent: Vec<_> = (0..5).map(|_| rig.send(apply("flash-sale", None))).collect();
        rig.cancel.cancel();
        for s in sent {
            // Executed before the cancel, or refused by the handle: one outcome each.
            let out = tokio::time::timeout(Duration::from_secs(5), s).await.expect("answered").unwrap();
            assert_eq!(out.action, "apply_scene");
        }
        tokio::time::timeout(Duration::from_secs(5), rig.run).await.expect("run returned").unwrap();
    }
}
