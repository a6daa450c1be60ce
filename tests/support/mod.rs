//! Shared helpers for integration tests: shipped profiles, camera configs on
//! a virtual chain, and waiting for conditions with a deadline (never sleeps).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use studiod::config::model::{Camera, CameraProfile};

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
        .map(|a| Camera { name: format!("cam{a}"), profile: camera_profile("generic-visca"), port: port.to_path_buf(), baud: 9600, address: a })
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
