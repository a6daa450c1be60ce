//! Start-up time to READY: `studiod run` with a config that has no cameras,
//! fixtures or adapters, from `spawn()` until it sends `READY=1` to
//! `$NOTIFY_SOCKET` (a Unix datagram socket this bench owns, as systemd's
//! `Type=notify` would). Each run is then stopped with SIGTERM.
//!
//! Run: `cargo bench --bench startup` (20 runs) measures the **release**
//! binary, `target/release/studiod` (what `cargo bench` builds; also
//! `cargo build --release --bin studiod`); `STUDIOD_BIN=/path/to/studiod`
//! measures another. Without `--bench` (as in `cargo test --benches`) it does
//! 3 runs of the binary cargo built for the test profile, as a smoke test.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest we wait for READY or for an exit before calling the run failed.
const LIMIT: Duration = Duration::from_secs(10);

/// The binary to start: `$STUDIOD_BIN`, else the one cargo built for this
/// bench when that is a release build, else (a bench executable built for
/// another profile and run by hand with `--bench`) `target/release/studiod`.
fn binary(quick: bool) -> PathBuf {
    if let Some(bin) = std::env::var_os("STUDIOD_BIN") {
        return bin.into();
    }
    let built = PathBuf::from(env!("CARGO_BIN_EXE_studiod"));
    if quick || profile(&built) == "release" {
        return built;
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let release = target.join("release").join("studiod");
    assert!(
        release.exists(),
        "{} is missing: start-up is measured on the release build; run `cargo build --release --bin studiod` or set STUDIOD_BIN",
        release.display()
    );
    release
}

/// `release`, `debug`, … from the binary's folder (`target/<profile>/studiod`).
fn profile(bin: &std::path::Path) -> String {
    bin.parent().and_then(|d| d.file_name()).map_or_else(|| "unknown".into(), |p| p.to_string_lossy().into_owned())
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 3 } else { 20 };
    let bin = binary(quick);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("scenes")).unwrap();
    std::fs::create_dir_all(dir.path().join("device-profiles")).unwrap();
    let config = dir.path().join("studiod.toml");
    std::fs::write(
        &config,
        "[studio]\nid = \"bench\"\nscenes_dir = \"scenes\"\nprofiles_dir = \"device-profiles\"\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(LIMIT)).unwrap();

    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("STUDIOD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn studiod");
        let mut buf = [0u8; 256];
        let ready = loop {
            // Bounded by the socket's read timeout; other states (STATUS=…) are skipped.
            match sock.recv(&mut buf) {
                Ok(n) if buf[..n].split(|b| *b == b'\n').any(|l| l == b"READY=1") => break started.elapsed(),
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    panic!("run {run}: no READY=1 within {LIMIT:?}: {e}");
                }
            }
        };
        times.push(ready);
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "run {run}: studiod did not exit after SIGTERM");
            // Exit poll interval; not part of the measurement.
            std::thread::sleep(Duration::from_millis(2));
        };
        assert!(status.success(), "run {run}: exit status {status}");
        // Drain STOPPING=1 and anything else so the next run starts clean.
        sock.set_nonblocking(true).unwrap();
        while sock.recv(&mut buf).is_ok() {}
        sock.set_nonblocking(false).unwrap();
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("startup to READY=1, no devices, {} ({} build), {runs} runs:", bin.display(), profile(&bin));
    if quick {
        // Three runs say it starts; they are no distribution.
        println!("  smoke round: {:.3} ms median of {runs} (too few runs for percentiles)", ms(pct(0.50)));
        return;
    }
    println!(
        "  min {:.1} ms   p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms   (target < 100 ms)",
        ms(times[0]),
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(times[times.len() - 1])
    );
}
