//! `/metrics` of a whole daemon (in-process, the example booth on a virtual
//! camera chain and a loopback Art-Net monitor): one registry with the
//! engine's commands for every origin, apply latency, devices online,
//! Art-Net frames, serial link counters, MQTT reconnects and HTTP requests.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::Booth;

const TOKEN: &str = "metrics-test-token";

/// `name{label="v",…}` → value; labels sorted so lookups ignore their order.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let key = match series.split_once('{') {
            None => series.to_string(),
            Some((name, labels)) => {
                let mut l: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                l.sort();
                format!("{name}{{{}}}", l.join(","))
            }
        };
        out.insert(key, value);
    }
    out
}

/// The value of `name` with exactly these labels (any order).
fn get(m: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    l.sort();
    let key = if l.is_empty() { name.to_string() } else { format!("{name}{{{}}}", l.join(",")) };
    *m.get(&key).unwrap_or_else(|| panic!("no series {key}; have:\n{}", m.keys().cloned().collect::<Vec<_>>().join("\n")))
}

/// The example booth with the technician's token; (booth, its tempdir for secrets).
async fn booth_with_http() -> (Booth, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("tech.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let http = format!("\n[http]\nlisten = \"127.0.0.1:0\"\ntech_token_file = \"{}\"\n", token_file.display());
    (Booth::start_with(None, &http).await, secrets)
}

/// POST one command to the technician API; it must be accepted (200).
async fn post_command(client: &reqwest::Client, url: &str, body: &'static str) {
    let r = client.post(format!("{url}/api/commands")).bearer_auth(TOKEN).body(body).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

async fn scrape(b: &Booth) -> (String, BTreeMap<String, f64>) {
    let url = b.daemon().http_url.clone().expect("HTTP configured");
    let r = reqwest::Client::new().get(format!("{url}/metrics")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let m = parse(&text);
    (text, m)
}

#[tokio::test]
async fn metrics_cover_commands_latency_devices_artnet_serial_mqtt_and_http() {
    let (b, _secrets) = booth_with_http().await;
    let url = b.daemon().http_url.clone().expect("HTTP configured");
    let client = reqwest::Client::new();

    // Commands from three origins: start-up (safe scene, done by now), CLI, HTTP.
    let out = b.apply("flash-sale", Some(0)).await;
    assert!(out.ok, "{out:?}");
    let refused = b.apply("no-such-scene", None).await;
    assert!(refused.error.is_some());
    post_command(&client, &url, r#"{"id":"m-1","action":"apply_scene","scene":"intro","fade_ms":0}"#).await;
    // The last look (intro: backdrop #2040ff at ch 16–18) is on the wire.
    b.frame_where(Duration::from_secs(10), "intro's backdrop", |d| d.len() >= 18 && d[15..18] == [0x20, 0x40, 0xff]).await;

    // The Art-Net node (the simulator answers ArtPoll) is verified online.
    let mut state = b.daemon().engine.state();
    support::wait_watch(&mut state, Duration::from_secs(5), "node1 verified", |s| {
        s.devices.get("node1").is_some_and(|d| d.verified && d.online)
    })
    .await;

    let unauthorised = client.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);
    let scrape = || async {
        let r = client.get(format!("{url}/metrics")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        r.text().await.unwrap()
    };
    scrape().await;
    let text = scrape().await;
    let m = parse(&text);

    // Engine: every origin, by action and result.
    assert_eq!(get(&m, "studiod_commands_total", &[("action", "apply_scene"), ("result", "ok"), ("origin", "startup")]), 1.0);
    assert_eq!(get(&m, "studiod_commands_total", &[("action", "apply_scene"), ("result", "ok"), ("origin", "cli")]), 1.0);
    assert_eq!(get(&m, "studiod_commands_total", &[("action", "apply_scene"), ("result", "unknown_scene"), ("origin", "cli")]), 1.0);
    assert_eq!(get(&m, "studiod_commands_total", &[("action", "apply_scene"), ("result", "ok"), ("origin", "http")]), 1.0);

    // Apply latency: three applies (start-up, CLI, HTTP); the refused one never started.
    assert!(text.contains("# TYPE studiod_scene_apply_seconds histogram"), "{text}");
    let count = get(&m, "studiod_scene_apply_seconds_count", &[("result", "ok")]);
    assert_eq!(count, 3.0);
    assert_eq!(get(&m, "studiod_scene_apply_seconds_bucket", &[("result", "ok"), ("le", "+Inf")]), count);
    let sum = get(&m, "studiod_scene_apply_seconds_sum", &[("result", "ok")]);
    assert!(sum > 0.0 && sum < 30.0, "apply seconds sum {sum}");

    // Devices of the example booth, all verified online but OSC, which
    // nothing can verify (CONTRACT §5: unverified, never online).
    for (kind, n, online, unverified) in
        [("camera", 3.0, 3.0, 0.0), ("fixture", 6.0, 6.0, 0.0), ("artnet", 1.0, 1.0, 0.0), ("osc", 1.0, 0.0, 1.0)]
    {
        assert_eq!(get(&m, "studiod_devices", &[("kind", kind)]), n, "{kind}");
        assert_eq!(get(&m, "studiod_devices_online", &[("kind", kind)]), online, "{kind}");
        assert_eq!(get(&m, "studiod_devices_unverified", &[("kind", kind)]), unverified, "{kind}");
    }

    // Art-Net: frames went out, none failed.
    assert!(get(&m, "studiod_artnet_frames_total", &[("output", "node1")]) >= 2.0);
    assert_eq!(get(&m, "studiod_artnet_send_errors_total", &[("output", "node1")]), 0.0);

    // Serial link of the virtual chain: healthy, so zero, but exported.
    let port = b.dir.path().join("ttyVISCA0").display().to_string();
    for kind in ["port_lost", "open_failed", "timeout", "refused", "other"] {
        assert_eq!(get(&m, "studiod_serial_errors_total", &[("port", &port), ("kind", kind)]), 0.0, "{kind}");
    }
    assert_eq!(get(&m, "studiod_serial_retries_total", &[("port", &port)]), 0.0);

    assert_eq!(get(&m, "studiod_mqtt_reconnects_total", &[]), 0.0);

    // HTTP: the command, the refused scrape and the first scrape are counted.
    assert_eq!(get(&m, "studiod_http_requests_total", &[("route", "/api/commands"), ("status", "200")]), 1.0);
    assert_eq!(get(&m, "studiod_http_requests_total", &[("route", "/metrics"), ("status", "401")]), 1.0);
    assert_eq!(get(&m, "studiod_http_requests_total", &[("route", "/metrics"), ("status", "200")]), 1.0);
}

#[tokio::test]
async fn camera_faults_show_as_serial_errors_retries_failed_applies_and_devices_offline() {
    use studiod_sim::Fault;
    let (b, _secrets) = booth_with_http().await;
    // side (address 2) hangs; overhead (address 3) refuses everything.
    b.chain.set_fault(2, Fault::Silent);
    b.chain.set_fault(3, Fault::ErrorReply(0x41));
    let out = b.apply("flash-sale", Some(0)).await;
    assert!(!out.ok, "{out:?}");
    // Health reaches the engine's state on its own path; wait for it, not for time.
    let mut state = b.daemon().engine.state();
    support::wait_watch(&mut state, Duration::from_secs(10), "side offline", |s| s.devices.get("side").is_some_and(|d| !d.online)).await;
    let (_, m) = scrape(&b).await;
    let port = b.dir.path().join("ttyVISCA0").display().to_string();
    assert_eq!(get(&m, "studiod_commands_total", &[("action", "apply_scene"), ("result", "device_failed"), ("origin", "cli")]), 1.0);
    assert_eq!(get(&m, "studiod_scene_apply_seconds_count", &[("result", "failed")]), 1.0);
    // The hung camera: the scene's request timed out after its resends (2 by
    // default), unless a health probe already on the wire met the silence
    // first: then the camera was offline by the time the request went out,
    // and it failed at once as offline (counted as "other", no resends).
    let side = out.devices["side"].error.clone().unwrap_or_default();
    if side.starts_with("camera offline") {
        assert!(get(&m, "studiod_serial_errors_total", &[("port", &port), ("kind", "other")]) >= 1.0, "{side}");
    } else {
        assert!(get(&m, "studiod_serial_errors_total", &[("port", &port), ("kind", "timeout")]) >= 1.0, "{side}");
        assert!(get(&m, "studiod_serial_retries_total", &[("port", &port)]) >= 2.0, "{side}");
    }
    assert!(get(&m, "studiod_serial_errors_total", &[("port", &port), ("kind", "refused")]) >= 1.0);
    assert_eq!(get(&m, "studiod_serial_errors_total", &[("port", &port), ("kind", "port_lost")]), 0.0);
    // The hung camera went offline; the refusing one still answers, so it is online.
    assert_eq!(get(&m, "studiod_devices_online", &[("kind", "camera")]), 2.0);
    assert_eq!(get(&m, "studiod_devices", &[("kind", "camera")]), 3.0);
}

/// Receipt → first light frame (`studiod_command_first_frame_seconds`): one
/// sample per command that sets lights, by origin; none for refused or
/// camera-only commands; exported as a Prometheus histogram.
#[tokio::test]
async fn first_frame_histogram_counts_each_light_command_once() {
    use studiod::command::{Command, LightValue};
    use studiod::metrics::COMMAND_FIRST_FRAME_SECONDS as NAME;
    let (b, _secrets) = booth_with_http().await;
    let daemon = b.daemon();
    let lighting = daemon.devices.lighting.clone().expect("lighting running");
    let mut frames = lighting.subscribe_frames();
    let series = |origin: &str| daemon.metrics.duration_histogram(NAME, &[("origin", origin)]);
    let (cli, http) = (series("cli"), series("http"));
    let fade0 = Some(0);

    // The start-up safe scene is counted under its own origin.
    wait_count(&lighting, &mut frames, &series("startup"), 1).await;
    let (n0, sum0) = (cli.count(), cli.sum());
    assert_eq!(n0, 0);

    // Four CLI commands that set lights, one at a time.
    assert!(b.apply("flash-sale", fade0).await.ok);
    wait_count(&lighting, &mut frames, &cli, 1).await;
    assert!(b.apply("intro", fade0).await.ok);
    wait_count(&lighting, &mut frames, &cli, 2).await;
    let values = [("intensity".to_string(), LightValue::Number(0.25))].into();
    let out = b.exec(Command::SetLight { fixture: "hair".into(), values, fade: Some(Duration::ZERO) }).await;
    assert!(out.ok, "{out:?}");
    wait_count(&lighting, &mut frames, &cli, 3).await;
    // Not counted: a refused scene and a camera-only command.
    assert!(!b.apply("no-such-scene", fade0).await.ok);
    let out = b.exec(Command::RecallPreset { camera: "front".into(), preset: 1 }).await;
    assert!(out.ok, "{out:?}");
    assert!(b.exec(Command::Blackout { fade: Some(Duration::ZERO) }).await.ok);
    wait_count(&lighting, &mut frames, &cli, 4).await;
    assert_eq!(cli.count(), 4, "one sample per light command, none for the others");
    // Plausible: each look is on the wire at once or with the next tick
    // (22.7 ms at 44 Hz); 1 s each leaves room for a loaded debug build.
    let took = cli.sum() - sum0;
    assert!(took > Duration::ZERO && took < Duration::from_secs(4), "4 samples sum to {took:?}");

    // Over HTTP, counted under `http` and exported.
    let url = daemon.http_url.clone().expect("HTTP configured");
    post_command(&reqwest::Client::new(), &url, r#"{"id":"ff-1","action":"apply_scene","scene":"house","fade_ms":0}"#).await;
    wait_count(&lighting, &mut frames, &http, 1).await;
    let (text, m) = scrape(&b).await;
    assert!(text.contains(&format!("# TYPE {NAME} histogram")), "{text}");
    for (origin, n) in [("http", 1.0), ("cli", 4.0), ("startup", 1.0), ("mqtt", 0.0)] {
        assert_eq!(get(&m, &format!("{NAME}_count"), &[("origin", origin)]), n, "{origin}");
        assert_eq!(get(&m, &format!("{NAME}_bucket"), &[("origin", origin), ("le", "+Inf")]), n, "{origin}");
    }
    let sum = get(&m, &format!("{NAME}_sum"), &[("origin", "http")]);
    assert!(sum > 0.0 && sum < 1.0, "http sum {sum} s");
    assert!((get(&m, &format!("{NAME}_sum"), &[("origin", "cli")]) - cli.sum().as_secs_f64()).abs() < 1e-9);
}

/// Wait until `h` has `want` samples. The lighting task records a sample once
/// the look's first frame is out; wait on the task's own events, not on time:
/// a `stats()` call is served only after any frame in progress has finished,
/// and each frame sent wakes this loop to look again.
async fn wait_count(
    lighting: &studiod::lighting::LightingHandle,
    frames: &mut tokio::sync::broadcast::Receiver<studiod::lighting::FrameSent>,
    h: &studiod::metrics::DurationHistogram,
    want: u64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        lighting.stats().await.unwrap();
        if h.count() >= want {
            return;
        }
        let next = tokio::time::timeout_at(deadline, frames.recv()).await;
        assert!(next.is_ok(), "histogram stayed at {} samples (want {want})", h.count());
    }
}
