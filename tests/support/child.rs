//! The example booth for a daemon run as a child process (the real `studiod`
//! binary): its virtual VISCA chain (3 cameras, instant moves), Art-Net and
//! OSC receivers on loopback, and its folder with config, scenes and
//! profiles. Used by tests that SIGKILL or restart the daemon and by the
//! fleet harness. Included with `#[path]`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};

use studiod_sim::monitor::{ArtNetMonitor, NodeOptions, OscMonitor, ReplyTo};

pub struct ChildBooth {
    pub config: PathBuf,
    pub log: PathBuf,
    pub artnet: ArtNetMonitor,
    pub osc: OscMonitor,
    pub chain: studiod_sim::VirtualChain,
}

impl ChildBooth {
    /// The example booth in `dir` on `mqtt_url`, `extra` appended to its
    /// config (after `[mqtt]`, so `[mqtt]` keys when there is a broker).
    pub async fn create(dir: &Path, mqtt_url: Option<String>, extra: String) -> ChildBooth {
        let serial = dir.join("ttyVISCA0");
        let chain =
            studiod_sim::VirtualChain::spawn(&serial, 3, studiod_sim::ChainOptions { instant_moves: true, ..Default::default() }).unwrap();
        let lo = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        // The daemon is another process, its Art-Net port (any free one: the
        // config says 127.0.0.1:0) unknown here; it polls from that port.
        let node = NodeOptions { reply_to: ReplyTo::Source, ..Default::default() };
        let artnet = ArtNetMonitor::bind_with(lo, node).await.unwrap();
        let osc = OscMonitor::bind(lo).await.unwrap();
        let ports = studiod_sim::booth::BoothPorts {
            serial: &serial,
            artnet: artnet.local_addr().unwrap(),
            osc: osc.local_addr().unwrap(),
            mqtt_url,
            extra,
        };
        let config = studiod_sim::booth::write_booth(dir, &ports).unwrap();
        ChildBooth { config, log: dir.join("studiod.log"), artnet, osc, chain }
    }

    /// Start `exe` (`studiod run`) on this booth, its stderr appended to the log.
    pub fn spawn(&self, exe: &Path, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Process::new(exe)
            .args(["run", "--config"])
            .arg(&self.config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon(child)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A lights-only scene whose `hair` (DMX channel 13) level tells it
    /// apart on the wire.
    pub fn hair_scene(&self, name: &str, level: f64) {
        let dir = self.config.parent().expect("config in the booth folder");
        let text = format!("label = \"{name}\"\nfade_ms = 0\n\n[light.hair]\nintensity = {level}\n");
        std::fs::write(dir.join("scenes").join(format!("{name}.toml")), text).unwrap();
    }
}

/// DMX channel 13 (index 12): the `hair` dimmer of the example booth.
pub const HAIR: usize = 12;

/// Kills the child on drop, so a failing assertion leaves no daemon behind.
pub struct Daemon(pub Child);

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
