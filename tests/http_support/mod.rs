//! A fake engine for the HTTP tests and `examples/http_fake.rs`: it records
//! every request, answers with plausible outcomes (per-device results from
//! the example booth's config) and updates the state watch like the real
//! engine would. Tests can mark devices as failing and change state directly.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use studiod::command::{Command, CommandError, DeviceResult, ErrorCode, LightValue, Origin, Outcome};
use studiod::config::model::Config;
use studiod::engine::{BoothState, DeviceHealth, DeviceKind, EngineHandle, Event, Request};

/// A server for the example booth on a free loopback port, over a fake
/// engine, with the given PIN and token; bound, not yet running.
pub async fn bind_server(
    opts: studiod::adapters::http::Options,
    pin: &str,
    token: &str,
) -> (studiod::adapters::http::Server, Fake, watch::Sender<Arc<Config>>, studiod::adapters::http::Metrics) {
    use studiod::adapters::http::{Metrics, Secret, Server};
    let cfg = example_config();
    let fake = spawn(cfg.clone());
    let (cfg_tx, cfg_rx) = watch::channel(cfg);
    let metrics = Metrics::new();
    let server = Server::bind_with_secrets(
        "127.0.0.1:0".parse().unwrap(),
        Some(Secret::from_string(pin)),
        Some(Secret::from_string(token)),
        cfg_rx,
        fake.handle.clone(),
        metrics.clone(),
        opts,
    )
    .await
    .unwrap();
    (server, fake, cfg_tx, metrics)
}

/// Read an SSE response into `buf` until `done(buf)` holds, within `limit`;
/// false when it did not in time. Panics if the stream ends first.
pub async fn read_stream_until(resp: &mut reqwest::Response, buf: &mut String, limit: Duration, done: impl Fn(&str) -> bool) -> bool {
    tokio::time::timeout(limit, async {
        while !done(buf) {
            match resp.chunk().await.unwrap() {
                Some(c) => buf.push_str(&String::from_utf8_lossy(&c)),
                None => panic!("stream ended; got {buf}"),
            }
        }
    })
    .await
    .is_ok()
}

/// The example booth shipped with the repository (3 cameras, 6 fixtures, scenes).
pub fn example_config() -> Arc<Config> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("studiod.example.toml");
    Arc::new(studiod::config::load(&path).unwrap_or_else(|d| panic!("example config invalid:\n{d}")))
}

pub struct Fake {
    pub handle: EngineHandle,
    /// Every request the engine received, in order.
    pub requests: mpsc::UnboundedReceiver<Request>,
    pub state: Arc<watch::Sender<BoothState>>,
    pub events: broadcast::Sender<Event>,
    /// device → error: commands touching it report it failed.
    pub failing: Arc<Mutex<BTreeMap<String, String>>>,
    /// How long a scene's camera moves take before it is answered (zero:
    /// at once). A newer scene in that time supersedes the older one: its
    /// cameras read "cancelled", as with the real engine's camera links.
    pub scene_time: Arc<Mutex<Duration>>,
}

/// A scene applied, its reply held back until its cameras are done.
struct InFlight {
    seq: u64,
    req: Request,
    out: Outcome,
    reply: oneshot::Sender<Outcome>,
}

/// Answer a scene (and tell the pages and the backend, and record its
/// failure or success in the state, as the engine does).
fn reply_scene(events: &broadcast::Sender<Event>, state: &watch::Sender<BoothState>, f: InFlight) {
    let scene = f.req.command.scene().unwrap_or_default();
    let ev = Event::scene_applied(scene, f.req.origin, f.req.id.clone(), &f.out);
    if !matches!(ev, Event::SceneApplied { superseded: true, .. }) {
        let failure = studiod::engine::SceneFailure::of(scene, f.req.origin, &f.out);
        state.send_if_modified(|s| {
            let changed = s.last_failure != failure;
            s.last_failure = failure;
            changed
        });
    }
    if f.req.origin != Origin::Mqtt {
        let _ = events.send(ev);
    }
    let _ = f.reply.send(f.out);
}

/// All configured devices online (verified), but those whose protocol
/// never answers (sACN, OSC): unverified, as the engine has them.
pub fn healthy_state(cfg: &Config) -> BoothState {
    let now = SystemTime::now();
    let mut s = BoothState::default();
    let mut add = |name: &str, kind| {
        s.devices.insert(name.to_string(), DeviceHealth::verified(kind, true, None, now));
    };
    cfg.cameras.iter().for_each(|c| add(&c.name, DeviceKind::Camera));
    cfg.fixtures.iter().for_each(|f| add(&f.name, DeviceKind::Fixture));
    cfg.artnet.iter().for_each(|a| add(&a.name, DeviceKind::ArtNet));
    cfg.sacn.iter().for_each(|o| {
        s.devices.insert(o.name.clone(), DeviceHealth::unverified(DeviceKind::Sacn, now));
    });
    cfg.osc.iter().for_each(|o| {
        s.devices.insert(o.name.clone(), DeviceHealth::unverified(DeviceKind::Osc, now));
    });
    s
}

pub fn spawn(cfg: Arc<Config>) -> Fake {
    let (handle, mut inbox) = EngineHandle::channel(healthy_state(&cfg));
    let (rec_tx, requests) = mpsc::unbounded_channel();
    let state = Arc::new(inbox.state);
    let events = inbox.events.clone();
    let failing: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let scene_time: Arc<Mutex<Duration>> = Arc::default();
    let (st, ev, fl, slow) = (state.clone(), events.clone(), failing.clone(), scene_time.clone());
    tokio::spawn(async move {
        let inflight: Arc<Mutex<Option<InFlight>>> = Arc::default();
        let mut seq = 0u64;
        while let Some((req, reply)) = inbox.rx.recv().await {
            let _ = rec_tx.send(req.clone());
            let out = answer(&cfg, &req, &st, &fl.lock().unwrap().clone());
            if !matches!(req.command, Command::ApplyScene { .. }) {
                let _ = reply.send(out);
                continue;
            }
            if let Some(mut old) = inflight.lock().unwrap().take() {
                // Superseded: its camera moves were cancelled by the newer scene's.
                let mut devices = old.out.devices.clone();
                for (name, d) in devices.iter_mut() {
                    if cfg.cameras.iter().any(|c| &c.name == name) {
                        *d = DeviceResult::failed(studiod::engine::CANCELLED);
                    }
                }
                old.out = Outcome::from_devices(&old.req.command, devices, old.out.duration);
                reply_scene(&ev, &st, old);
            }
            let delay = *slow.lock().unwrap();
            seq += 1;
            let f = InFlight { seq, req, out, reply };
            if delay.is_zero() || f.out.devices.is_empty() {
                reply_scene(&ev, &st, f);
                continue;
            }
            *inflight.lock().unwrap() = Some(f);
            let (held, ev, st) = (inflight.clone(), ev.clone(), st.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mine = {
                    let mut h = held.lock().unwrap();
                    if h.as_ref().is_some_and(|f| f.seq == seq) {
                        h.take()
                    } else {
                        None
                    }
                };
                if let Some(f) = mine {
                    reply_scene(&ev, &st, f);
                }
            });
        }
    });
    Fake { handle, requests, state, events, failing, scene_time }
}

fn answer(cfg: &Config, req: &Request, state: &watch::Sender<BoothState>, failing: &BTreeMap<String, String>) -> Outcome {
    let cmd = &req.command;
    let result = |name: &str| match failing.get(name) {
        Some(e) => DeviceResult::failed(e),
        None => DeviceResult::ok(),
    };
    let one = |name: &str, known: bool| {
        if !known {
            return Outcome::refused(cmd, CommandError::new(ErrorCode::UnknownDevice, format!("unknown device `{name}`")));
        }
        Outcome::from_devices(cmd, BTreeMap::from([(name.to_string(), result(name))]), Duration::from_millis(3))
    };
    let camera = |n: &str| cfg.cameras.iter().any(|c| c.name == n);
    match cmd {
        Command::ApplyScene { scene, slot, .. } => {
            let Some(sc) = cfg.scenes.get(scene) else {
                return Outcome::refused(cmd, CommandError::new(ErrorCode::UnknownScene, format!("unknown scene `{scene}`")));
            };
            let devices: BTreeMap<_, _> = sc.cameras.keys().chain(sc.lights.keys()).map(|d| (d.clone(), result(d))).collect();
            let out = Outcome::from_devices(cmd, devices, Duration::from_millis(12));
            state.send_modify(|s| {
                s.scene = Some(scene.clone());
                s.scene_label = Some(sc.label.clone());
                s.slot = slot.clone();
                s.applied_at = Some(SystemTime::now());
            });
            out
        }
        Command::Jog { camera: c, .. }
        | Command::JogStop { camera: c }
        | Command::Zoom { camera: c, .. }
        | Command::RecallPreset { camera: c, .. }
        | Command::StorePreset { camera: c, .. } => one(c, camera(c)),
        Command::SetLight { fixture, .. } => one(fixture, cfg.fixtures.iter().any(|f| &f.name == fixture)),
        _ => Outcome::from_devices(cmd, BTreeMap::new(), Duration::from_millis(1)),
    }
}

/// A request as JSON, for the example's stdout and assertions.
pub fn describe(req: &Request) -> Value {
    let mut v = match &req.command {
        Command::ApplyScene { scene, .. } => json!({"scene": scene}),
        Command::Blackout { .. } | Command::Status | Command::Reload => json!({}),
        Command::RecallPreset { camera, preset } | Command::StorePreset { camera, preset } => json!({"camera": camera, "preset": preset}),
        Command::PutScene { scene, toml } => json!({"scene": scene, "toml": toml}),
        Command::DeleteScene { scene } => json!({"scene": scene}),
        Command::Cancel { target } => json!({"target": target}),
        Command::Jog { camera, pan, tilt } => json!({"camera": camera, "pan": pan, "tilt": tilt}),
        Command::JogStop { camera } => json!({"camera": camera}),
        Command::Zoom { camera, speed } => json!({"camera": camera, "speed": speed}),
        Command::SetLight { fixture, values, .. } => json!({"fixture": fixture, "values": values.iter().map(|(k, v)| (k.clone(), match v {
            LightValue::Number(n) => json!(n),
            LightValue::Text(t) => json!(t),
        })).collect::<serde_json::Map<_, _>>()}),
    };
    v["action"] = json!(req.command.action());
    v["origin"] = json!(req.origin.as_str());
    v["id"] = json!(req.id);
    v
}

/// Set a device offline/online in the state and send the matching event.
pub fn set_online(fake: &Fake, device: &str, online: bool, reason: &str) {
    fake.state.send_modify(|s| {
        if let Some(h) = s.devices.get_mut(device) {
            h.online = online;
            h.verified = true;
            h.error = (!online).then(|| reason.to_string());
            h.since = SystemTime::now();
        }
    });
    let _ = fake.events.send(if online {
        Event::DeviceOnline { device: device.to_string() }
    } else {
        Event::DeviceOffline { device: device.to_string(), reason: reason.to_string() }
    });
}
