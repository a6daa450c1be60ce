//! Dead-man stop for cameras driven from a page or `studiod ctl`.
//!
//! A jog or zoom started over HTTP keeps going until a stop arrives. If the
//! tablet loses Wi-Fi, sleeps or crashes mid-press, that stop never comes, so
//! clients repeat the move command while it is held (every ~250 ms) and this
//! watchdog issues the stop itself when no repeat has arrived for `timeout`.
//! On server shutdown every move still running is stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::command::{Command, Origin};
use crate::engine::{EngineHandle, Request};

use super::metrics::{self, Metrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Motion {
    PanTilt,
    Zoom,
}

impl Motion {
    fn stop(self, camera: &str) -> Command {
        match self {
            Motion::PanTilt => Command::JogStop { camera: camera.to_string() },
            Motion::Zoom => Command::Zoom { camera: camera.to_string(), speed: 0.0 },
        }
    }
}

/// What a command means for the watchdog.
pub fn classify(cmd: &Command) -> Option<(String, Motion, bool)> {
    match cmd {
        Command::Jog { camera, pan, tilt } => Some((camera.clone(), Motion::PanTilt, *pan != 0.0 || *tilt != 0.0)),
        Command::JogStop { camera } => Some((camera.clone(), Motion::PanTilt, false)),
        Command::Zoom { camera, speed } => Some((camera.clone(), Motion::Zoom, *speed != 0.0)),
        _ => None,
    }
}

#[derive(Clone)]
pub struct Deadman {
    inner: Arc<Inner>,
}

struct Inner {
    deadlines: Mutex<HashMap<(String, Motion), Instant>>,
    wake: Notify,
    timeout: Duration,
}

impl Deadman {
    /// Start the watchdog task; it ends (after stopping every running move) on `cancel`.
    /// The task handle resolves once the shutdown stops have been answered.
    pub fn spawn(
        engine: EngineHandle,
        metrics: Metrics,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> (Deadman, tokio::task::JoinHandle<()>) {
        let d = Deadman { inner: Arc::new(Inner { deadlines: Mutex::new(HashMap::new()), wake: Notify::new(), timeout }) };
        let task = tokio::spawn(d.clone().run(engine, metrics, cancel));
        (d, task)
    }

    /// A move command (or its repeat) for `camera`: (re)arm its deadline.
    pub fn moving(&self, camera: &str, motion: Motion) {
        let deadline = Instant::now() + self.inner.timeout;
        self.lock().insert((camera.to_string(), motion), deadline);
        // notify_one stores a permit, so a wake-up racing the task's sleep is not lost.
        self.inner.wake.notify_one();
    }

    /// A stop (explicit, or a refused move): nothing to watch any more.
    pub fn stopped(&self, camera: &str, motion: Motion) {
        self.lock().remove(&(camera.to_string(), motion));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Motion), Instant>> {
        self.inner.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(self, engine: EngineHandle, metrics: Metrics, cancel: CancellationToken) {
        loop {
            let next = self.lock().values().min().copied();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.inner.wake.notified() => continue,
                _ = sleep => {}
            }
            let now = Instant::now();
            let expired: Vec<(String, Motion)> = {
                let mut map = self.lock();
                let keys: Vec<_> = map.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
                for k in &keys {
                    map.remove(k);
                }
                keys
            };
            for (camera, motion) in expired {
                tracing::warn!(camera = %camera, ?motion, "client keep-alive lost: stopping camera (dead-man)");
                metrics.inc(metrics::DEADMAN_STOPS, &[("camera", &camera)]);
                stop(&engine, &camera, motion).await;
            }
        }
        // Shutdown: nothing may keep moving once nobody can stop it.
        let left: Vec<_> = self.lock().drain().map(|(k, _)| k).collect();
        for (camera, motion) in left {
            tracing::info!(camera = %camera, "server stopping: stopping camera move");
            stop(&engine, &camera, motion).await;
        }
    }
}

async fn stop(engine: &EngineHandle, camera: &str, motion: Motion) {
    let id = format!("deadman-{}", super::auth::random_token());
    let out = engine.execute(Request::new(Some(id), Origin::Http, motion.stop(camera))).await;
    if !out.ok {
        tracing::warn!(camera = %camera, error = ?out.error.map(|e| e.message), "dead-man stop failed");
    }
}
