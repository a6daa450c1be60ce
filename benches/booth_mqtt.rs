//! End to end through a real broker on loopback: time from publishing
//! `apply_scene` to the first ArtDmx frame carrying the new look, p50/p99,
//! beside the broker's own publish → subscriber round trip measured in the
//! same run (the baseline). studiod's share is the difference.
//!
//! Run: `cargo bench --bench booth_mqtt`

#[path = "../tests/support/mosquitto.rs"]
mod mosquitto;

use std::time::{Duration, Instant};

use mosquitto::{Broker, TestClient};
use studiod_sim::ChainOptions;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 10 } else { 1000 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let broker = Broker::start();
        let dir = tempfile::tempdir().unwrap();
        let booth = studiod_sim::booth::SimBooth::create(
            dir.path(),
            ChainOptions { instant_moves: true, ..Default::default() },
            Some(broker.url()),
            None,
        )
        .await
        .unwrap();
        let (chain, artnet, osc, path) = (booth.chain, booth.artnet, booth.osc, booth.config_path);
        // Drain OSC so its socket buffer never fills.
        tokio::spawn(async move { while osc.next().await.is_ok() {} });
        let running = studiod::daemon::start(studiod::config::load(&path).unwrap()).await.unwrap();
        let mut client = TestClient::connect(broker.port, &["bench/echo", "studiod/la-03/reply", "studiod/la-03/status"]).await;
        client.wait_json("studiod/la-03/status", Duration::from_secs(10), |v| v["online"] == true).await;

        // Each scene's settled universe, learnt once.
        let lighting = running.devices.lighting.clone().unwrap();
        let mut looks = Vec::new();
        for (i, scene) in ["flash-sale", "house"].into_iter().enumerate() {
            let id = format!("learn-{i}");
            client
                .publish(
                    "studiod/la-03/cmd",
                    serde_json::json!({"id": &id, "action": "apply_scene", "scene": scene, "fade_ms": 0}).to_string(),
                )
                .await;
            client.wait_json("studiod/la-03/reply", Duration::from_secs(10), |v| v["id"] == id.as_str()).await;
            let mut frames = lighting.subscribe_frames();
            let mut data = Vec::new();
            for _ in 0..3 {
                data = frames.recv().await.unwrap().data.to_vec();
            }
            looks.push((scene, data));
        }

        let (mut broker_rtt, mut e2e) = (Vec::new(), Vec::new());
        for i in 0..n {
            // Baseline: the broker alone, same client, same QoS.
            let t0 = Instant::now();
            client.publish("bench/echo", format!("{i}")).await;
            client.next_on("bench/echo", Duration::from_secs(10)).await;
            broker_rtt.push(t0.elapsed());
            // Commands come one at a time, as from a booking backend (more than a frame apart).
            tokio::time::sleep(Duration::from_millis(30)).await;
            let (scene, want) = &looks[i % 2];
            let id = format!("b-{i}");
            let t0 = Instant::now();
            client
                .publish(
                    "studiod/la-03/cmd",
                    serde_json::json!({"id": &id, "action": "apply_scene", "scene": scene, "fade_ms": 0}).to_string(),
                )
                .await;
            artnet.wait_for(Duration::from_secs(5), |d| d.data == *want).await.expect("frame with the new look");
            e2e.push(t0.elapsed());
            client.wait_json("studiod/la-03/reply", Duration::from_secs(10), |v| v["id"] == id.as_str()).await;
        }
        broker_rtt.sort();
        e2e.sort();
        let (b50, b99) = (percentile(&broker_rtt, 0.5), percentile(&broker_rtt, 0.99));
        let (e50, e99) = (percentile(&e2e, 0.5), percentile(&e2e, 0.99));
        println!("MQTT apply_scene → first ArtDmx with the new look, {n} commands (QoS 1, loopback Mosquitto)");
        println!("  broker publish→subscriber round trip (baseline): p50 {:.3} ms, p99 {:.3} ms", ms(b50), ms(b99));
        println!("  publish apply_scene → ArtDmx frame:              p50 {:.3} ms, p99 {:.3} ms", ms(e50), ms(e99));
        println!(
            "  studiod adds (difference):                       p50 {:.3} ms, p99 {:.3} ms (target < 1 ms at p99)",
            ms(e50.saturating_sub(b50)),
            ms(e99.saturating_sub(b99))
        );
        running.shutdown().await;
        chain.shutdown().await;
    });
}
