//! In-process latency from `apply_scene` to the first Art-Net frame carrying
//! the new look, p50/p99 over 1000 applies, on the example booth with three
//! virtual cameras (instant moves) and a loopback Art-Net receiver.
//! Baseline in the same run: the frame period (1/44 s), which bounds the
//! wait for the next frame-clock tick.
//!
//! Each sample is checked to be *caused* by its apply: the receiver's socket
//! is drained before the clock starts, and the matching frame's sequence
//! number must be one the lighting task sent after the apply began. (Before
//! 2026-11-28 neither held: frames buffered while learning the looks made
//! the receiver match frames sent two applies earlier, and report 0.06 ms.)
//!
//! Run: `cargo bench --bench scene`

use std::time::{Duration, Instant};

use studiod::command::{Command, Origin};
use studiod::engine::Request;
use studiod_sim::ChainOptions;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let applies = if quick { 10 } else { 1000 };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let booth =
            studiod_sim::booth::SimBooth::create(dir.path(), ChainOptions { instant_moves: true, ..Default::default() }, None, None)
                .await
                .unwrap();
        let (chain, artnet, osc, path) = (booth.chain, booth.artnet, booth.osc, booth.config_path);
        let running = studiod::daemon::start(studiod::config::load(&path).unwrap()).await.unwrap();
        // The node replies to the Art-Net port the daemon bound, as a real one would.
        if let Some(listen) = running.devices.lighting.as_ref().and_then(|l| l.artnet_listen_addr()) {
            artnet.set_reply_to(studiod_sim::monitor::ReplyTo::Port(listen.port()));
        }
        // Drain OSC so its socket buffer never fills.
        tokio::spawn(async move { while osc.next().await.is_ok() {} });

        let apply = |scene: &'static str| {
            let engine = running.engine.clone();
            tokio::spawn(async move {
                engine
                    .execute(Request::new(
                        None,
                        Origin::Cli,
                        Command::ApplyScene { scene: scene.into(), fade: Some(Duration::ZERO), at: None, slot: None },
                    ))
                    .await
            })
        };
        // Learn each scene's settled universe once.
        let mut looks = Vec::new();
        for scene in ["flash-sale", "house"] {
            apply(scene).await.unwrap();
            let l = running.devices.lighting.as_ref().unwrap();
            let mut frames = l.subscribe_frames();
            let mut data = Vec::new();
            for _ in 0..3 {
                data = frames.recv().await.unwrap().data.to_vec();
            }
            looks.push((scene, data));
        }
        let frame = Duration::from_secs_f64(1.0 / 44.0);
        println!("apply_scene → first ArtDmx with the new look at the receiver, {applies} applies (fade 0, 3 cameras, 6 fixtures)");
        // Two cadences: a booth where scenes come one at a time (the last frame
        // is older than one frame period, so the look goes out at once), and
        // applies back to back (each must wait for the frame-rate ceiling).
        for (label, gap) in [("spaced 50 ms apart", Duration::from_millis(50)), ("back to back", Duration::ZERO)] {
            let mut times = Vec::with_capacity(applies);
            // Apply → the lighting task sending the frame (the daemon's part,
            // before loopback delivery and the receiver waking).
            let mut sent = Vec::with_capacity(applies);
            let mut frames = running.devices.lighting.as_ref().unwrap().subscribe_frames();
            for i in 0..applies {
                let (scene, want) = &looks[i % 2];
                tokio::time::sleep(gap).await;
                // Only frames sent from now on may count.
                while let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, artnet.next()).await {}
                while frames.try_recv().is_ok() {}
                let t0 = Instant::now();
                let done = apply(scene);
                let got = artnet.wait_for(Duration::from_secs(2), |d| d.data == *want).await;
                times.push(t0.elapsed());
                let got = got.expect("frame with the new look");
                done.await.unwrap();
                // The lighting task announces a frame just after sending it,
                // so the announcement may trail the packet: wait for it.
                let at = loop {
                    match tokio::time::timeout(Duration::from_secs(1), frames.recv()).await {
                        Ok(Ok(f)) if f.sequence == got.sequence && f.data[..] == got.data[..] => break f.at.into_std(),
                        Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                        _ => panic!("apply {i}: the matching frame was not sent by this run"),
                    }
                };
                assert!(at >= t0, "apply {i} matched a frame sent before it began");
                sent.push(at - t0);
            }
            times.sort();
            sent.sort();

            println!(
                "  {label:>18}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99)),
                ms(times[times.len() - 1])
            );
            println!(
                "  {:>18}  apply → the daemon sending it: p50 {:.2} ms, p99 {:.2} ms",
                "",
                ms(percentile(&sent, 0.5)),
                ms(percentile(&sent, 0.99))
            );
        }
        println!("  baseline: frame period at 44 Hz {:.2} ms", ms(frame));
        running.shutdown().await;
        chain.shutdown().await;
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
