//! Camera helpers shared by the chain and IP benches.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use studiod::camera::CameraHandle;

/// Waits (at most 10 s each) until every camera is online.
pub async fn online(handles: &[CameraHandle]) {
    for h in handles {
        let mut rx = h.health();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|x| x.online)).await.expect("online").unwrap();
    }
}

/// `rounds` rounds of a preset recall on every camera at once; per round,
/// the time until the last camera completed.
pub async fn recall_rounds(handles: &[CameraHandle], rounds: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let preset = (round % 16) as u8 + 1;
        let t0 = Instant::now();
        let results = futures::future::join_all(handles.iter().map(|h| h.recall_preset(preset))).await;
        times.push(t0.elapsed());
        for r in results {
            r.expect("recall");
        }
    }
    times
}
