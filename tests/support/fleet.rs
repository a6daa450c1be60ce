//! A site of booths for tests and the fleet benchmark: `n` real studiod
//! processes, each with its own virtual VISCA chain (3 cameras) and Art-Net
//! and OSC receivers on loopback, on one private Mosquitto with per-booth
//! accounts (username = studio id) and the shipped ACL template; the
//! booking backend is a test client logged in as `backend`.
//!
//! Used as `#[path]` modules next to `support/mosquitto.rs` (as `mosquitto`)
//! and `support/child.rs` (as `child`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::child::{ChildBooth, Daemon, HAIR};
use crate::mosquitto::{Broker, TestClient};

pub const BACKEND: (&str, &str) = ("backend", "backend-pw");
pub struct FleetBooth {
    pub id: String,
    pub booth: ChildBooth,
    pub daemon: Option<Daemon>,
}

impl FleetBooth {
    pub fn pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Daemon::pid)
    }

    pub fn logs(&self) -> String {
        self.booth.logs()
    }
}

pub struct Fleet {
    // Booths first: their processes stop before the broker and the folder go.
    pub booths: Vec<FleetBooth>,
    pub broker: Broker,
    pub dir: tempfile::TempDir,
    passwd: PathBuf,
    exe: PathBuf,
}

/// Booth `i`'s studio id (also its MQTT username).
pub fn booth_id(i: usize) -> String {
    format!("booth-{i:03}")
}

fn password(id: &str) -> String {
    format!("pw-{id}")
}

impl Fleet {
    /// Prepare `n` booths (not started: [`Fleet::spawn_all`]) running `exe`,
    /// each with the lights-only scenes `levels` (name → hair level).
    pub async fn new(n: usize, exe: &Path, levels: &[(&str, f64)]) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        let acl = Path::new(env!("CARGO_MANIFEST_DIR")).join("broker/mosquitto-acl.conf");
        // Hashed in one `mosquitto_passwd -U` run (one per account is slow at 100).
        write_passwords(&passwd, n, true);
        let conf = format!("allow_anonymous false\npassword_file {}\nacl_file {}\n", passwd.display(), acl.display());
        let broker = Broker::start_with(None, &conf);
        let mut booths = Vec::with_capacity(n);
        for i in 0..n {
            let id = booth_id(i);
            let bdir = dir.path().join(&id);
            std::fs::create_dir_all(&bdir).unwrap();
            std::fs::write(bdir.join("mqtt.secret"), password(&id)).unwrap();
            let login = format!("username = \"{id}\"\npassword_file = \"mqtt.secret\"\nclient_id = \"studiod-{id}\"\n");
            let booth = ChildBooth::create(&bdir, Some(broker.url()), login).await;
            let text = std::fs::read_to_string(&booth.config).unwrap().replacen("id = \"la-03\"", &format!("id = \"{id}\""), 1);
            std::fs::write(&booth.config, text).unwrap();
            for (name, level) in levels {
                booth.hair_scene(name, *level);
            }
            booths.push(FleetBooth { id, booth, daemon: None });
        }
        Fleet { booths, broker, dir, passwd, exe: exe.to_path_buf() }
    }

    pub fn spawn_all(&mut self) {
        // Debug for the MQTT adapter: its refused connection attempts.
        let env = [("STUDIOD_LOG", "info,studiod::adapters::mqtt=debug")];
        for b in &mut self.booths {
            b.daemon = Some(b.booth.spawn(&self.exe, &env));
        }
    }

    /// The booking backend: every booth's `reply` and `status`.
    pub async fn backend(&self) -> TestClient {
        TestClient::connect_as(self.broker.port, &["studiod/+/reply", "studiod/+/status"], Some(BACKEND)).await
    }

    /// Let booths log in (true) or not (false): rewrites the password file;
    /// the broker reads it at start or on [`Broker::reload`].
    pub fn set_booth_logins(&self, on: bool) {
        write_passwords(&self.passwd, self.booths.len(), on);
    }

    /// Every booth has published `{"online":true}` on its `status` (live,
    /// from now on: it connected), each booth's first such message time; panics after `limit` naming who is missing.
    pub async fn wait_online(&self, backend: &mut TestClient, limit: Duration) -> BTreeMap<String, SystemTime> {
        let mut seen = BTreeMap::new();
        // Other messages (replies) are handed back for later reads.
        let mut other = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        while seen.len() < self.booths.len() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(p) = backend.next_any(left).await else {
                let missing: Vec<&str> = self.booths.iter().map(|b| b.id.as_str()).filter(|id| !seen.contains_key(*id)).collect();
                panic!("not online within {limit:?}: {missing:?}\nfirst missing booth's log:\n{}", self.log_of(missing[0]));
            };
            let topic = String::from_utf8_lossy(&p.topic).to_string();
            if let Some(id) = topic.strip_prefix("studiod/").and_then(|t| t.strip_suffix("/status")) {
                let v: Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                // Live only: a retained `online` may be from before a broker restart.
                if v["online"] == true && !p.retain {
                    seen.entry(id.to_string()).or_insert_with(SystemTime::now);
                }
            } else {
                other.push(p);
            }
        }
        backend.put_back(other);
        seen
    }

    /// Replies on every booth's `reply` whose id is in `ids`, until each
    /// booth has `per_booth` of them (by booth, in arrival order); more than
    /// that for a booth fails.
    pub async fn replies(&self, backend: &mut TestClient, ids: &[&str], per_booth: usize, limit: Duration) -> BTreeMap<String, Vec<Value>> {
        let mut got: BTreeMap<String, Vec<Value>> = self.booths.iter().map(|b| (b.id.clone(), Vec::new())).collect();
        let mut other = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        while got.values().any(|v| v.len() < per_booth) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(p) = backend.next_any(left).await else {
                let short: Vec<(&String, usize)> = got.iter().filter(|(_, v)| v.len() < per_booth).map(|(k, v)| (k, v.len())).collect();
                panic!("replies to {ids:?}: booths short of {per_booth} after {limit:?}: {short:?}");
            };
            let topic = String::from_utf8_lossy(&p.topic).to_string();
            let Some(id) = topic.strip_prefix("studiod/").and_then(|t| t.strip_suffix("/reply")) else {
                other.push(p);
                continue;
            };
            let v: Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if !ids.contains(&v["id"].as_str().unwrap_or_default()) {
                other.push(p);
                continue;
            }
            let list = got.get_mut(id).unwrap_or_else(|| panic!("a reply from an unknown booth {id}"));
            assert!(list.len() < per_booth, "{id}: one reply too many: {v}\nearlier: {list:?}");
            list.push(v);
        }
        backend.put_back(other);
        got
    }

    /// When each booth's receiver first saw `hair` at `level`, as the wall clock read then.
    pub async fn first_frames(&self, level: u8, limit: Duration) -> BTreeMap<String, Option<SystemTime>> {
        let waits = self.booths.iter().map(|b| async move {
            let f = b.booth.artnet.wait_for(limit, |d| d.port_address == 0 && d.data.get(HAIR) == Some(&level)).await;
            (b.id.clone(), f.map(|_| SystemTime::now()))
        });
        futures::future::join_all(waits).await.into_iter().collect()
    }

    pub fn log_of(&self, id: &str) -> String {
        self.booths.iter().find(|b| b.id == id).map(FleetBooth::logs).unwrap_or_default()
    }
}

/// The password file: the backend, and the booths when `booths` is set.
fn write_passwords(path: &Path, n: usize, booths: bool) {
    let mut text = format!("{}:{}\n", BACKEND.0, BACKEND.1);
    if booths {
        for i in 0..n {
            let id = booth_id(i);
            text.push_str(&format!("{id}:{}\n", password(&id)));
        }
    }
    std::fs::write(path, text).unwrap();
    let ok = Process::new("mosquitto_passwd").arg("-U").arg(path).status().expect("mosquitto_passwd (scripts/setup.sh)").success();
    assert!(ok, "mosquitto_passwd -U failed");
}
