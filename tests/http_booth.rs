//! The HTTP server of the real daemon (issue #15), in-process on the
//! simulated booth (virtual cameras, Art-Net monitor on loopback): invalid
//! values get one HTTP status whichever layer refuses them, scene errors
//! show paths relative to the config folder, and 1 000 idle or slow sockets
//! keep neither Art-Net from its frame rate nor the technician from an answer.

mod hostile;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use hostile::{enough_files, ip, raw};
use support::Booth;

const TOKEN: &str = "tech-Secret-7f3a9c";
/// What the issue asks of a legitimate request under attack.
const PROMPT: Duration = Duration::from_secs(1);

/// The example booth with the technician's token; (booth, its tempdir for secrets, base URL).
async fn booth_with_http() -> (Booth, tempfile::TempDir, String) {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("tech.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let http = format!("\n[http]\nlisten = \"127.0.0.1:0\"\ntech_token_file = \"{}\"\n", token_file.display());
    let b = Booth::start_with(None, &http).await;
    let url = b.daemon().http_url.clone().expect("HTTP configured");
    (b, secrets, url)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap()
}

async fn command(c: &reqwest::Client, url: &str, cmd: Value) -> (u16, Value) {
    let r = c.post(format!("{url}/api/commands")).bearer_auth(TOKEN).json(&cmd).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn invalid_values_get_400_whichever_layer_refuses_them() {
    let (b, _secrets, url) = booth_with_http().await;
    let c = client();
    // The four cases of the issue: the first two are refused by the adapter's
    // parser, the last two by the engine (against the fixture's and camera's
    // profiles); all are `invalid_command`, so all are 400.
    for cmd in [
        json!({"action": "jog", "camera": "front", "pan": 5}),
        json!({"action": "recall_preset", "camera": "front", "preset": -1}),
        json!({"action": "set_light", "fixture": "key", "values": {"intensity": 2}}),
        json!({"action": "recall_preset", "camera": "front", "preset": 99}),
    ] {
        let (status, reply) = command(&c, &url, cmd.clone()).await;
        assert_eq!(status, 400, "{cmd}: {reply}");
        assert_eq!(reply["ok"], false, "{reply}");
        assert_eq!(reply["error"]["code"], "invalid_command", "{cmd}: {reply}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
    }
    // Other refusals by the engine of the command itself: 400 too.
    let (status, reply) = command(&c, &url, json!({"action": "apply_scene", "scene": "no-such"})).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (400, Some("unknown_scene")), "{reply}");
    let (status, reply) = command(&c, &url, json!({"action": "jog", "camera": "nope", "pan": 0.5})).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (400, Some("unknown_device")), "{reply}");
    // A command the engine ran: 200.
    let (status, reply) = command(&c, &url, json!({"action": "set_light", "fixture": "key", "values": {"intensity": 0.5}})).await;
    assert_eq!((status, reply["ok"].as_bool()), (200, Some(true)), "{reply}");
    drop(b);
}

#[tokio::test]
async fn scene_errors_show_paths_relative_to_the_config_folder() {
    let (b, _secrets, url) = booth_with_http().await;
    let c = client();
    let dir = b.config_path.parent().unwrap().to_path_buf();
    let abs = dir.display().to_string();
    // put_scene: validated before saving; the error names scenes/<name>.toml.
    let bad = "label = \"Bad\"\n[light.key]\nintensity = 1.5\n";
    let (status, reply) = command(&c, &url, json!({"action": "put_scene", "scene": "bad-look", "toml": bad})).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "scene_invalid", "{reply}");
    let msg = reply["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("scenes/bad-look.toml:3:13: "), "{msg}");
    assert!(!msg.contains(&abs), "absolute path in {msg}");
    assert!(!dir.join("scenes/bad-look.toml").exists());
    // reload with a broken scene file on disk: same, and the running scenes stay.
    std::fs::write(dir.join("scenes/broken.toml"), "label = \"Broken\"\n[light.nope]\nintensity = 0.5\n").unwrap();
    let (status, reply) = command(&c, &url, json!({"action": "reload"})).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "scene_invalid", "{reply}");
    let msg = reply["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("scenes/broken.toml:"), "{msg}");
    assert!(!msg.contains(&abs), "absolute path in {msg}");
    // a broken studiod.toml: config_invalid, named relative too.
    std::fs::remove_file(dir.join("scenes/broken.toml")).unwrap();
    let config = std::fs::read_to_string(&b.config_path).unwrap();
    std::fs::write(&b.config_path, format!("{config}\nnot_a_key = 1\n")).unwrap();
    let (status, reply) = command(&c, &url, json!({"action": "reload"})).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "config_invalid", "{reply}");
    let msg = reply["error"]["message"].as_str().unwrap();
    let file = b.config_path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(msg.starts_with(&format!("{file}:")), "{msg}");
    assert!(!msg.contains(&abs), "absolute path in {msg}");
    std::fs::write(&b.config_path, config).unwrap();
}

/// Frames on universe 0 over a window of at least `window`, timed from the
/// first fresh frame received to the last.
async fn artnet_rate(b: &Booth, window: Duration) -> (usize, Duration) {
    let next = || async { tokio::time::timeout(Duration::from_secs(2), b.artnet.next()).await.expect("Art-Net frames stopped").unwrap() };
    // Frames sent before the window wait in the monitor's socket buffer:
    // read them until one does not follow at once (frames are 22.7 ms apart),
    // so the window starts at a frame that has just been sent.
    let mut backlog = 0;
    while tokio::time::timeout(Duration::from_millis(5), b.artnet.next()).await.is_ok() {
        backlog += 1;
        assert!(backlog < 10_000, "the monitor never caught up");
    }
    while next().await.port_address != 0 {}
    let t0 = Instant::now();
    let mut frames = 0;
    loop {
        if next().await.port_address == 0 {
            frames += 1;
            let t = t0.elapsed();
            if t >= window {
                return (frames, t);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_and_slow_sockets_keep_artnet_at_its_rate() {
    const SOCKETS: usize = 1000;
    enough_files(4 * SOCKETS as u64 + 512);
    let (b, _secrets, url) = booth_with_http().await;
    let server: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let c = client();
    // From black, a 20 s fade of the key light (16-bit) to full: every frame
    // clock tick (44 Hz) changes universe 0, so every tick sends a frame
    // (src/lighting/task.rs: unchanged universes go out only as 1 s keep-alives).
    let (status, reply) = command(&c, &url, json!({"action": "blackout"})).await;
    assert_eq!(status, 200, "{reply}");
    b.frame_where(Duration::from_secs(2), "blackout", |d| d[0] == 0 && d[1] == 0).await;
    let fade = json!({"action": "set_light", "fixture": "key", "values": {"intensity": 1.0}, "fade_ms": 20000});
    let (status, reply) = command(&c, &url, fade).await;
    assert_eq!(status, 200, "{reply}");

    // The attack: 40 addresses × 25 sockets, silent, half a request head, or
    // a head and a trickle of body; then new sockets all the time.
    let mut held = hostile::idle_and_slow_sockets(server, SOCKETS, 2).await;
    let stop = CancellationToken::new();
    let storm = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut n = 0usize;
            while !stop.is_cancelled() {
                let mut s = raw(server, ip(&format!("127.0.3.{}", 1 + n % 40))).await;
                if n % 2 == 1 {
                    let _ = s.write_all(b"GET / HTTP/1.1\r\n").await;
                }
                held[n % SOCKETS] = s;
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        }
    });
    // The technician's command, during the measured window.
    let tech = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move {
            let t0 = Instant::now();
            let (status, reply) = command(&c, &url, json!({"action": "status"})).await;
            (status, reply, t0.elapsed())
        }
    });
    let (frames, took) = artnet_rate(&b, Duration::from_secs(2)).await;
    let (status, reply, answered_in) = tech.await.unwrap();
    stop.cancel();
    let opened = storm.await.unwrap();
    let rate = frames as f64 / took.as_secs_f64();
    eprintln!("{frames} frames in {took:?} ({rate:.2}/s); technician answered in {answered_in:?}; {opened} new sockets");
    assert!((43.0..=45.0).contains(&rate), "{frames} frames in {took:?} = {rate:.1}/s under attack");
    assert_eq!((status, reply["ok"].as_bool()), (200, Some(true)), "{reply}");
    assert!(answered_in < PROMPT, "the technician's command took {answered_in:?}");
    assert!(opened > 0);
    // The fade was still running: the window saw changing frames only.
    let key = b.artnet.wait_for(Duration::from_secs(2), |d| d.port_address == 0).await.unwrap();
    assert!(key.data[0] < 255, "the fade ended before the window did");
}
