//! End to end through a real broker on loopback, the whole daemon in this
//! process: a booking backend publishes `apply_scene` (fade 0), and we time,
//! per command and in the same run:
//!
//! (a) baseline: the broker alone, client → broker → same client (QoS 1);
//! (b) publish `apply_scene` → the first ArtDmx carrying the new look seen by
//!     a loopback Art-Net receiver (what the backend means by "the lights
//!     changed"), and publish → reply received (the reply also waits for the
//!     camera moves, which are instant in the simulator but still talk VISCA);
//! (c) inside studiod: MQTT receipt → the first ArtDmx with the look handed to
//!     the kernel, read per command from the daemon's own
//!     `studiod_command_first_frame_seconds` histogram (its sum grows by
//!     exactly that command's sample, as commands come one at a time);
//! (d) per command, (b) − (c): the time outside studiod's command path
//!     (client → broker → studiod, and the UDP hop to the receiver).
//!
//! Each line is a distribution of its own samples; no percentile is ever
//! subtracted from another.
//!
//! Run: `cargo bench --bench booth_mqtt` (1000 commands; `BOOTH_MQTT_N`
//! overrides). Without `--bench` (`cargo test --benches`) a 10-command smoke
//! round that prints no percentiles.

#[path = "support/dist.rs"]
mod dist;
#[path = "../tests/support/mosquitto.rs"]
mod mosquitto;

use std::time::{Duration, Instant};

use dist::Dist;
use mosquitto::{Broker, TestClient};
use studiod::metrics::COMMAND_FIRST_FRAME_SECONDS;
use studiod_sim::ChainOptions;

const WAIT: Duration = Duration::from_secs(10);

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("BOOTH_MQTT_N").ok().and_then(|v| v.parse().ok()).unwrap_or(if quick { 10 } else { 1000 });
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
        // The node replies to the Art-Net port the daemon bound, as a real one would.
        if let Some(listen) = running.devices.lighting.as_ref().and_then(|l| l.artnet_listen_addr()) {
            artnet.set_reply_to(studiod_sim::monitor::ReplyTo::Port(listen.port()));
        }
        let mut client = TestClient::connect(broker.port, &["bench/echo", "studiod/la-03/reply", "studiod/la-03/status"]).await;
        client.wait_json("studiod/la-03/status", WAIT, |v| v["online"] == true).await;
        let in_daemon = running.metrics.duration_histogram(COMMAND_FIRST_FRAME_SECONDS, &[("origin", "mqtt")]);

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
            client.wait_json("studiod/la-03/reply", WAIT, |v| v["id"] == id.as_str()).await;
            let mut frames = lighting.subscribe_frames();
            let mut data = Vec::new();
            for _ in 0..3 {
                data = frames.recv().await.unwrap().data.to_vec();
            }
            looks.push((scene, data));
        }

        let (mut broker_rtt, mut to_light, mut to_reply, mut inside, mut outside) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut inverted, mut drained) = (0, 0);
        for i in 0..n {
            // Baseline: the broker alone, same client, same QoS.
            let t0 = Instant::now();
            client.publish("bench/echo", format!("{i}")).await;
            client.next_on("bench/echo", WAIT).await;
            broker_rtt.push(t0.elapsed());
            // Pacing, not synchronisation: commands come one at a time, as
            // from a booking backend, more than a frame period (22.7 ms) apart.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let (scene, want) = &looks[i % 2];
            let id = format!("b-{i}");
            // Empty the receiver's socket: frames queued since the last
            // command (the learning phase, keep-alives) may already carry
            // this look and would match before the command is even sent.
            let mut stale = 0;
            while let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, artnet.next()).await {
                stale += 1;
            }
            drained += stale;
            let (count0, sum0) = (in_daemon.count(), in_daemon.sum());
            let t0 = Instant::now();
            client
                .publish(
                    "studiod/la-03/cmd",
                    serde_json::json!({"id": &id, "action": "apply_scene", "scene": scene, "fade_ms": 0}).to_string(),
                )
                .await;
            // Both ends timed as they happen, whichever comes first.
            let light = async {
                artnet.wait_for(WAIT, |d| d.data == *want).await.expect("frame with the new look");
                t0.elapsed()
            };
            let reply = async {
                client.wait_json("studiod/la-03/reply", WAIT, |v| v["id"] == id.as_str()).await;
                t0.elapsed()
            };
            let (light, reply) = tokio::join!(light, reply);
            // The lighting task records the sample right after the frame's
            // sends; a `stats()` call is served only once that frame is done.
            lighting.stats().await.unwrap();
            assert_eq!(in_daemon.count(), count0 + 1, "one receipt→first-frame sample per command");
            let own = in_daemon.sum() - sum0;
            to_light.push(light);
            to_reply.push(reply);
            inside.push(own);
            // The receiver and the lighting task run on different threads of
            // a loaded machine: the receiver may see the frame before the
            // lighting task reads the clock after its send. Counted, not hidden.
            match light.checked_sub(own) {
                Some(d) => outside.push(d),
                None => inverted += 1,
            }
        }
        let rows = [
            ("(a) broker round trip client→broker→client (baseline)", broker_rtt),
            ("(b) publish apply_scene → first ArtDmx with the look at the receiver", to_light),
            ("(b) publish apply_scene → reply received (waits for camera completions)", to_reply),
            ("(c) in studiod: MQTT receipt → first ArtDmx handed to the kernel", inside),
            ("(d) per command, (b) first ArtDmx − (c): broker leg + UDP to the receiver", outside),
        ];
        println!("MQTT apply_scene (fade 0) through loopback Mosquitto, QoS 1, {n} commands 30 ms apart; each line its own samples");
        for (what, samples) in rows {
            println!("  {what}\n      {}", Dist::new(samples).summary());
        }
        println!("  frames already queued at the receiver before a command, drained: {drained}");
        println!("  (d) left out: {inverted} commands whose frame the receiver saw before studiod's clock read after the send");
        running.shutdown().await;
        chain.shutdown().await;
    });
}
