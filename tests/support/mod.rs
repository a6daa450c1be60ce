//! Shared helpers for integration tests: shipped profiles, camera configs on
//! a virtual chain, and waiting for conditions with a deadline (never sleeps).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use studiod::config::model::{Axis, Camera, CameraProfile, CameraTiming, Zoom};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn camera_profile(id: &str) -> CameraProfile {
    let path = repo().join("device-profiles/cameras").join(format!("{id}.toml"));
    studiod::config::profiles::load_camera(&path, id).unwrap_or_else(|e| panic!("{e}"))
}

/// `n` cameras named cam1…camN with addresses 1…n on one port.
pub fn chain_cameras(port: &Path, n: u8) -> Vec<Camera> {
    (1..=n)
        .map(|a| Camera {
            name: format!("cam{a}"),
            profile: camera_profile("generic-visca"),
            port: port.to_path_buf(),
            baud: 9600,
            address: a,
            url: None,
        })
        .collect()
}

/// Wait until `f` holds on the watch's value, or panic after `limit`.
pub async fn wait_watch<T: Clone>(rx: &mut tokio::sync::watch::Receiver<T>, limit: Duration, what: &str, f: impl Fn(&T) -> bool) -> T {
    let r = tokio::time::timeout(limit, async {
        loop {
            {
                let v = rx.borrow_and_update();
                if f(&v) {
                    return v.clone();
                }
            }
            if rx.changed().await.is_err() {
                panic!("{what}: sender dropped");
            }
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("{what}: not within {limit:?}"))
}

/// A whole booth in-process: the example booth (embedded in studiod) with
/// its three cameras on a virtual chain and its Art-Net/OSC outputs pointed
/// at loopback monitors.
pub struct Booth {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub chain: studiod_sim::VirtualChain,
    pub artnet: studiod_sim::monitor::ArtNetMonitor,
    pub osc: studiod_sim::monitor::OscMonitor,
    pub daemon: Option<studiod::daemon::Running>,
}

impl Booth {
    /// Start with an optional `[mqtt]` url and extra TOML.
    pub async fn start_with(mqtt_url: Option<String>, extra: &str) -> Booth {
        let dir = tempfile::tempdir().unwrap();
        let opts = studiod_sim::ChainOptions { move_time_scale: 0.05, ..Default::default() };
        let http = (!extra.is_empty()).then_some(extra);
        let studiod_sim::booth::SimBooth { chain, artnet, osc, config_path } =
            studiod_sim::booth::SimBooth::create(dir.path(), opts, mqtt_url, None).await.unwrap();
        if let Some(extra) = http {
            let mut text = std::fs::read_to_string(&config_path).unwrap();
            text.push_str(extra);
            std::fs::write(&config_path, text).unwrap();
        }
        let mut booth = Booth { dir, config_path, chain, artnet, osc, daemon: None };
        booth.start_daemon().await;
        booth
    }

    pub async fn start() -> Booth {
        Booth::start_with(None, "").await
    }

    /// (Re)start the daemon on the booth's config; waits for cameras online.
    pub async fn start_daemon(&mut self) {
        let config = studiod::config::load(&self.config_path).unwrap_or_else(|e| panic!("{e}"));
        let recalled: Vec<u64> = (1..=3).map(|c| self.chain.camera_state(c).presets_recalled).collect();
        let running = studiod::daemon::start(config).await.unwrap();
        // The node replies where a real one would, to the Art-Net port: the
        // one this daemon bound (any free port, so booths run side by side).
        if let Some(listen) = running.devices.lighting.as_ref().and_then(|l| l.artnet_listen_addr()) {
            self.artnet.set_reply_to(studiod_sim::monitor::ReplyTo::Port(listen.port()));
        }
        for cam in running.devices.cameras.values() {
            wait_watch(&mut cam.health(), Duration::from_secs(10), "camera online", |h| h.online).await;
        }
        // The safe scene (`house`, preset 1) is applied at start-up; let its
        // camera part finish so tests start from a settled booth.
        for (i, before) in recalled.into_iter().enumerate() {
            self.chain
                .wait_until(i + 1, |s| s.presets_recalled > before, Duration::from_secs(10))
                .await
                .expect("start-up scene recalled presets");
        }
        self.daemon = Some(running);
    }

    pub async fn stop_daemon(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
    }

    pub fn daemon(&self) -> &studiod::daemon::Running {
        self.daemon.as_ref().expect("daemon running")
    }

    pub async fn exec(&self, command: studiod::command::Command) -> studiod::command::Outcome {
        let req = studiod::engine::Request::new(None, studiod::command::Origin::Cli, command);
        self.daemon().engine.execute(req).await
    }

    pub async fn apply(&self, scene: &str, fade_ms: Option<u64>) -> studiod::command::Outcome {
        self.exec(studiod::command::Command::ApplyScene {
            scene: scene.into(),
            fade: fade_ms.map(Duration::from_millis),
            at: None,
            slot: None,
        })
        .await
    }

    /// The first Art-Net frame (on the booth's universe 0) whose data satisfies `f`.
    pub async fn frame_where(&self, limit: Duration, what: &str, f: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        self.artnet
            .wait_for(limit, |d| d.port_address == 0 && f(&d.data))
            .await
            .unwrap_or_else(|| panic!("no Art-Net frame with {what} within {limit:?}"))
            .data
    }
}

/// Expected DMX bytes, computed from the definitions (independently of
/// studiod's patch code): normalised → 16-bit by round(x·65535); 8-bit
/// channels carry round(v16 / 257); 16-bit ones coarse = v >> 8, fine = v & 0xFF.
pub fn u16_of(x: f64) -> u16 {
    (x * 65535.0).round() as u16
}
pub fn dmx8(x: f64) -> u8 {
    (u16_of(x) as f64 / 257.0).round() as u8
}
pub fn dmx16(x: f64) -> [u8; 2] {
    let v = u16_of(x);
    [(v >> 8) as u8, (v & 0xFF) as u8]
}
pub fn kelvin(k: f64, lo: f64, hi: f64) -> f64 {
    (k - lo) / (hi - lo)
}

/// A small deterministic PRNG (xorshift64*): reproducible noise for fault
/// tests without a dependency; tests print their seed so a failure replays.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The example booth's (`la-03`) MQTT topics, CONTRACT §5.
pub mod topics {
    pub const CMD: &str = "studiod/la-03/cmd";
    pub const REPLY: &str = "studiod/la-03/reply";
    pub const STATUS: &str = "studiod/la-03/status";
    pub const STATE: &str = "studiod/la-03/state";
}

/// Take every complete VISCA packet (up to its `FF`) off the front of
/// `buf`, for the fake cameras of the link tests.
pub fn take_packets(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(end) = buf.iter().position(|&b| b == 0xFF) {
        out.push(buf.drain(..=end).collect());
    }
    out
}

/// A Sony-convention camera profile made in code, for the link tests
/// (their fake cameras answer by hand; no profile file is involved).
pub fn test_camera_profile() -> CameraProfile {
    CameraProfile {
        id: "test-visca".into(),
        label: "Test camera".into(),
        preset_count: 16,
        preset_memory_offset: 0,
        pan: Axis { min_deg: -170.0, max_deg: 170.0, units_per_degree: 14.4 },
        tilt: Axis { min_deg: -20.0, max_deg: 90.0, units_per_degree: 14.4 },
        zoom: Zoom { table: vec![(1.0, 0x0000), (2.0, 0x1000), (20.0, 0x4000)] },
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
