//! Soak: the daemon as a child process (so RSS and CPU are its own) for
//! `SOAK_SECS` (default 600 s with `--bench`, 5 s otherwise) at
//! `SOAK_RATE_HZ` commands/s (default 10), each with a new id, over MQTT
//! (private Mosquitto), with 7 virtual cameras on one chain and 8 Art-Net
//! universes to 8 loopback receivers, 3 fixtures on each.
//! Every `SOAK_SAMPLE_SECS` (10 s; 1 s in quick mode) it samples VmRSS from
//! `/proc/PID/status` and utime+stime from `/proc/PID/stat`, and prints a table.
//!
//! `SOAK_MIX`: `scenes` (default: 7 in 10 `apply_scene`, 2 `set_light`, 1
//! `recall_preset`) or `lights` (only `set_light`: cheap, so a high rate is
//! not refused as busy). `SOAK_IDS=N`: stop once N commands were answered
//! `ok` (N new ids remembered) instead of after `SOAK_SECS` (which then only
//! bounds the run), and report RSS against the number of ids.
//!
//! Run: `SOAK_SECS=600 cargo bench --bench soak` (targets: RSS flat and under
//! 20 MB, CPU low); the id store across its whole 20 000-id range:
//! `SOAK_IDS=20000 SOAK_RATE_HZ=200 SOAK_MIX=lights cargo bench --bench soak`
//! (target: RSS flat within ±1 MB from 0 to 20 000 ids and under 20 MB).
//! `SOAK_EXE` runs another daemon binary than the one cargo built alongside.

#[path = "../tests/support/mosquitto.rs"]
mod mosquitto;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mosquitto::{Broker, TestClient};
use serde_json::json;
use studiod_sim::{ChainOptions, VirtualChain};

const CAMERAS: u8 = 7;
const UNIVERSES: usize = 8;
const CMD: &str = "studiod/soak/cmd";
const REPLY: &str = "studiod/soak/reply";
const STATUS: &str = "studiod/soak/status";
const SCENES: [&str; 4] = ["open", "pitch", "closeup", "wrap"];

fn env_secs(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Config, profiles and four scenes for 7 cameras and 8 universes × 3 fixtures.
fn write_booth(dir: &Path, serial: &Path, receivers: &[SocketAddr], mqtt: &str) -> std::path::PathBuf {
    for (rel, text) in studiod_sim::booth::PROFILES {
        let p = dir.join("device-profiles").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let mut c = String::new();
    writeln!(c, "[studio]\nid = \"soak\"\nscenes_dir = \"scenes\"\nprofiles_dir = \"device-profiles\"\nstate_dir = \"state\"\nsafe_scene = \"open\"\n").unwrap();
    writeln!(c, "[mqtt]\nurl = \"{mqtt}\"\ntopic_prefix = \"studiod\"\n").unwrap();
    // Any free loopback port: never 6454 on every interface from a bench.
    writeln!(c, "[lighting]\nartnet_bind = \"127.0.0.1:0\"\n").unwrap();
    for a in 1..=CAMERAS {
        writeln!(
            c,
            "[[camera]]\nname = \"cam{a}\"\nprofile = \"generic-visca\"\nport = \"{}\"\nbaud = 9600\naddress = {a}\n",
            serial.display()
        )
        .unwrap();
    }
    for (u, rx) in receivers.iter().enumerate() {
        // Plain UDP receivers, not nodes: they never answer ArtPoll (polled,
        // they would read offline after 10 s and every command fail).
        writeln!(c, "[[artnet]]\nname = \"node{u}\"\ntarget = \"{rx}\"\nuniverse = {u}\npoll = false\n").unwrap();
        writeln!(
            c,
            "[[fixture]]\nname = \"key{u}\"\nprofile = \"godox-p600bi-hard\"\nmode = \"cct-16bit\"\nartnet = \"node{u}\"\naddress = 1\n"
        )
        .unwrap();
        writeln!(c, "[[fixture]]\nname = \"wash{u}\"\nprofile = \"generic-rgb\"\nartnet = \"node{u}\"\naddress = 10\n").unwrap();
        writeln!(c, "[[fixture]]\nname = \"dim{u}\"\nprofile = \"generic-dimmer-16bit\"\nartnet = \"node{u}\"\naddress = 20\n").unwrap();
    }
    std::fs::write(dir.join("studiod.toml"), c).unwrap();
    std::fs::create_dir_all(dir.join("scenes")).unwrap();
    for (i, name) in SCENES.iter().enumerate() {
        let level = 0.25 + 0.25 * i as f64;
        let mut s = format!("label = \"{name}\"\nfade_ms = 500\n\n");
        for a in 1..=CAMERAS {
            writeln!(s, "[camera.cam{a}]\npreset = {}\n", i + 1).unwrap();
        }
        for u in 0..UNIVERSES {
            writeln!(s, "[light.key{u}]\nintensity = {level}\ncct = {}\n", 3200 + 800 * i).unwrap();
            writeln!(s, "[light.wash{u}]\ncolor = \"#{:02x}40{:02x}\"\n", 60 * i, 255 - 60 * i).unwrap();
            writeln!(s, "[light.dim{u}]\nintensity = {}\n", 1.0 - level).unwrap();
        }
        std::fs::write(dir.join("scenes").join(format!("{name}.toml")), s).unwrap();
    }
    dir.join("studiod.toml")
}

/// (VmRSS kB, utime+stime ticks) of a process.
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name's closing parenthesis: state is field 3,
    // so utime (14) and stime (15) are at indexes 11 and 12 of the rest.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some((rss, ticks))
}

fn clock_ticks() -> f64 {
    Process::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    ok: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
    artnet: AtomicU64,
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rate_hz = env_secs("SOAK_RATE_HZ").unwrap_or(10).clamp(1, 1000);
    let lights_only = match std::env::var("SOAK_MIX").as_deref() {
        Ok("lights") => true,
        Ok("scenes") | Err(_) => false,
        Ok(other) => panic!("SOAK_MIX={other}: expected scenes or lights"),
    };
    let target_ids = env_secs("SOAK_IDS");
    // With SOAK_IDS the time is only a bound: twice the nominal time, plus a minute.
    let secs = env_secs("SOAK_SECS").unwrap_or(match target_ids {
        Some(n) => n / rate_hz * 2 + 60,
        None if bench => 600,
        None => 5,
    });
    let every = Duration::from_secs(env_secs("SOAK_SAMPLE_SECS").unwrap_or(match target_ids {
        Some(_) => 2,
        None if secs >= 60 => 10,
        None => 1,
    }));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let broker = Broker::start();
        let dir = tempfile::tempdir().unwrap();
        let serial = dir.path().join("ttyVISCA0");
        // Fast (not instant) moves: recalls take a few ms, as on a real chain.
        let _chain = VirtualChain::spawn(&serial, CAMERAS as usize, ChainOptions { move_time_scale: 0.02, ..Default::default() }).unwrap();
        let counts = Arc::new(Counts::default());
        let mut receivers = Vec::new();
        for _ in 0..UNIVERSES {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            receivers.push(sock.local_addr().unwrap());
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                    if studiod_sim::monitor::decode_artdmx(&buf[..n], from).is_some() {
                        counts.artnet.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let config = write_booth(dir.path(), &serial, &receivers, &broker.url());
        // SOAK_EXE: another daemon build, e.g. the release one while the
        // harness itself runs unoptimised (`cargo test --bench soak -- --bench`).
        let exe = std::env::var("SOAK_EXE").unwrap_or_else(|_| env!("CARGO_BIN_EXE_studiod").to_string());
        let mut replies = TestClient::connect(broker.port, &[REPLY, STATUS]).await;
        let log = std::fs::File::create(dir.path().join("studiod.log")).unwrap();
        let started = Instant::now();
        let mut child = Process::new(&exe).args(["run", "--config"]).arg(&config).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let pid = child.id();
        replies.wait_json(STATUS, Duration::from_secs(20), |v| v["online"] == true).await;
        let ready = started.elapsed();

        {
            let counts = counts.clone();
            tokio::spawn(async move {
                loop {
                    let Some(r) = replies.try_next_json(REPLY, Duration::from_secs(3600)).await else { continue };
                    let c = if r["ok"] == true {
                        &counts.ok
                    } else if r["error"]["code"] == "busy" {
                        &counts.busy
                    } else {
                        // Say which, so a failed soak can be read.
                        eprintln!("reply not ok: {r}");
                        &counts.failed
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let publisher = TestClient::connect(broker.port, &[]).await;
        {
            let counts = counts.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate_hz));
                for n in 0u64.. {
                    tick.tick().await;
                    let id = format!("soak-{n}");
                    // 7 in 10 scene applies (camera recalls + 24 fixtures fading),
                    // 2 technician light changes, 1 direct preset recall.
                    let mix = if lights_only { 7 } else { n % 10 };
                    let cmd = match mix {
                        0..=6 => json!({"id": id, "action": "apply_scene", "scene": SCENES[(n % 4) as usize]}),
                        7 | 8 => json!({"id": id, "action": "set_light", "fixture": format!("key{}", n % 8), "values": {"intensity": (n % 100) as f64 / 100.0}}),
                        _ => json!({"id": id, "action": "recall_preset", "camera": format!("cam{}", 1 + n % 7), "preset": 1 + n % 4}),
                    };
                    publisher.publish(CMD, cmd.to_string()).await;
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                }
            });
        }

        let hz = clock_ticks();
        let until = match target_ids {
            Some(n) => format!("until {n} commands are answered ok (at most {secs} s)"),
            None => format!("{secs} s"),
        };
        let mix = if lights_only { "set_light only" } else { "scenes mix" };
        println!("soak: {until} at {rate_hz} commands/s ({mix}), {CAMERAS} cameras, {UNIVERSES} universes × 3 fixtures; daemon `{exe}` pid {pid}; MQTT online {:.0} ms after spawn", ready.as_secs_f64() * 1000.0);
        println!("{:>7} {:>9} {:>7} {:>7} {:>7} {:>6} {:>6} {:>9}", "t (s)", "RSS (kB)", "CPU %", "sent", "ok", "busy", "failed", "ArtDmx");
        let (rss0, mut last_ticks) = sample(pid).expect("daemon alive");
        let t0 = Instant::now();
        let mut last_t = t0;
        // (t, RSS, CPU %, commands answered ok = new ids remembered)
        let mut rows: Vec<(f64, u64, f64, u64)> = vec![(0.0, rss0, 0.0, 0)];
        println!("{:>7.0} {:>9} {:>7} {:>7} {:>7} {:>6} {:>6} {:>9}", 0.0, rss0, "-", 0, 0, 0, 0, 0);
        let deadline = t0 + Duration::from_secs(secs);
        let reached = |rows: &[(f64, u64, f64, u64)]| target_ids.is_some_and(|n| rows.last().is_some_and(|r| r.3 >= n));
        while Instant::now() < deadline && !reached(&rows) {
            tokio::time::sleep(every.min(deadline - Instant::now())).await; // the sampling period
            let Some((rss, ticks)) = sample(pid) else {
                println!("daemon exited: {:?}", child.try_wait());
                std::process::exit(1);
            };
            let now = Instant::now();
            let cpu = (ticks - last_ticks) as f64 / hz / (now - last_t).as_secs_f64() * 100.0;
            last_ticks = ticks;
            last_t = now;
            let t = (now - t0).as_secs_f64();
            let c = &counts;
            rows.push((t, rss, cpu, c.ok.load(Ordering::Relaxed)));
            println!(
                "{:>7.0} {:>9} {:>7.2} {:>7} {:>7} {:>6} {:>6} {:>9}",
                t,
                rss,
                cpu,
                c.sent.load(Ordering::Relaxed),
                c.ok.load(Ordering::Relaxed),
                c.busy.load(Ordering::Relaxed),
                c.failed.load(Ordering::Relaxed),
                c.artnet.load(Ordering::Relaxed)
            );
        }
        let total_cpu = (last_ticks as f64 / hz) / started.elapsed().as_secs_f64() * 100.0;
        let max = rows.iter().map(|r| r.1).max().unwrap_or(0);
        let after_warmup: Vec<u64> = rows.iter().filter(|r| r.0 >= rows.last().unwrap().0 / 4.0).map(|r| r.1).collect();
        let (lo, hi) = (after_warmup.iter().min().copied().unwrap_or(0), after_warmup.iter().max().copied().unwrap_or(0));
        let mean_cpu = rows.iter().skip(1).map(|r| r.2).sum::<f64>() / (rows.len().max(2) - 1) as f64;
        println!("RSS: start {rss0} kB, max {max} kB ({:.1} MB), after the first quarter {lo}–{hi} kB (spread {} kB)", max as f64 / 1024.0, hi - lo);
        if let Some(n) = target_ids {
            // RSS against ids: the first sample at or past each tenth of N.
            println!("{:>7} {:>9} {:>7}", "ids", "RSS (kB)", "t (s)");
            for k in 0..=10 {
                if let Some(r) = rows.iter().find(|r| r.3 >= n * k / 10) {
                    println!("{:>7} {:>9} {:>7.0}", r.3, r.1, r.0);
                }
            }
            let last = rows.last().unwrap();
            let (lo, hi) = (rows.iter().map(|r| r.1).min().unwrap_or(0), max);
            println!(
                "ids: {} of {n} answered ok; RSS at 0 ids {rss0} kB, at {} ids {} kB ({:+} kB); whole run {lo}–{hi} kB (spread {} kB, {:.1} MB max)",
                last.3,
                last.3,
                last.1,
                last.1 as i64 - rss0 as i64,
                hi - lo,
                hi as f64 / 1024.0
            );
        }
        if let Ok(m) = std::fs::metadata(dir.path().join("state").join("command-ids.jsonl")) {
            println!("command-ids.jsonl: {} bytes", m.len());
        }
        println!("CPU: mean {mean_cpu:.2} % of one core per sample; whole life {total_cpu:.2} %");
        println!(
            "commands: {} sent, {} ok, {} busy, {} failed; ArtDmx received {}",
            counts.sent.load(Ordering::Relaxed),
            counts.ok.load(Ordering::Relaxed),
            counts.busy.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed),
            counts.artnet.load(Ordering::Relaxed)
        );
        // Read before SIGTERM: a command still in flight then is answered
        // with a shutdown error, as the contract wants, and is no failure
        // of the soak.
        let failed = counts.failed.load(Ordering::Relaxed);
        let _ = Process::new("kill").args(["-TERM", &pid.to_string()]).status();
        let _ = child.wait();
        // A soak whose commands failed measured something else than the
        // id store's growth (e.g. polled outputs read offline): say so.
        assert_eq!(failed, 0, "{failed} commands failed: the soak's figures do not stand");
    });
}
