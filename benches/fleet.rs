//! Fleet: as many real studiod processes as this machine holds (issue #13;
//! `FLEET_BOOTHS`, default 100 with `--bench`, 3 otherwise), each with its
//! own virtual VISCA chain (3 cameras) and Art-Net/OSC receivers on loopback,
//! on one private Mosquitto with per-booth accounts and the shipped ACL
//! template (the harness of `tests/fleet.rs`).
//!
//! 1. Slot starts in step: `FLEET_ROUNDS` rounds (default 5; 1 without
//!    `--bench`); each sends every booth one `apply_scene` with the same `at`
//!    (3 s ahead) and measures, per booth, when its receiver first sees the
//!    new look, against `at` (the wall clock of this process: one clock for
//!    all). Baseline, same rounds, same process: how late this process
//!    itself wakes from a sleep until `at` (what a receiver here can do at
//!    best). Also each booth's own `late_ms` (its second reply).
//! 2. Reconnect spread: the broker restarts (SIGTERM, persistence kept, same
//!    port); per booth, when it logged "reconnected to MQTT broker" (its UTC
//!    log timestamp), from the moment the broker listens again; and how many
//!    came within the same 100 ms.
//! 3. Cost: VmRSS of every booth (`/proc/PID/status`), CPU (utime+stime from
//!    `/proc/PID/stat`) per booth and of the broker over an idle window
//!    (`FLEET_IDLE_SECS`, default 10) and over the slot rounds.
//!
//! Run: `cargo bench --bench fleet` (release daemons). `FLEET_EXE` runs
//! another daemon binary than the one cargo built alongside.

#[path = "../tests/support/child.rs"]
mod child;
#[path = "support/dist.rs"]
mod dist;
#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "../tests/support/mosquitto.rs"]
mod mosquitto;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use dist::{ms, Dist};
use fleet::Fleet;
use mosquitto::{now_ms, rfc3339};
use serde_json::json;
use support::dmx8;

const LEAD: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(120);

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// utime+stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is 3rd, utime 14th, stime 15th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // 100 ticks per second on Linux (sysconf(_SC_CLK_TCK)).
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// When a booth's log says it reconnected to the broker, first time after `since`.
fn reconnected_after(log: &str, since: SystemTime) -> Option<SystemTime> {
    log.lines().filter(|l| l.contains("reconnected to MQTT broker")).find_map(|l| {
        let t = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
        let t = SystemTime::from(t.with_timezone(&chrono::Utc));
        (t >= since).then_some(t)
    })
}

struct Cpu {
    booths: Vec<f64>,
    broker: f64,
    at: Instant,
}

fn cpu_now(fleet: &Fleet) -> Cpu {
    Cpu {
        booths: fleet.booths.iter().map(|b| b.pid().map_or(0.0, cpu_secs)).collect(),
        broker: fleet.broker.pid().map_or(0.0, cpu_secs),
        at: Instant::now(),
    }
}

/// CPU share (% of one core) per booth (mean, max) and of the broker between two readings.
fn cpu_between(a: &Cpu, b: &Cpu) -> (f64, f64, f64) {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    let per: Vec<f64> = a.booths.iter().zip(&b.booths).map(|(x, y)| (y - x) / wall * 100.0).collect();
    let mean = per.iter().sum::<f64>() / per.len().max(1) as f64;
    let max = per.iter().cloned().fold(0.0, f64::max);
    (mean, max, (b.broker - a.broker) / wall * 100.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = env_num("FLEET_BOOTHS").unwrap_or(if full { 100 } else { 3 }) as usize;
    let rounds = env_num("FLEET_ROUNDS").unwrap_or(if full { 5 } else { 1 }) as usize;
    let idle = Duration::from_secs(env_num("FLEET_IDLE_SECS").unwrap_or(if full { 10 } else { 1 }));
    let exe = std::env::var_os("FLEET_EXE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_studiod")));
    println!("fleet: {n} booths, {rounds} slot rounds, daemon {}", exe.display());
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );

    let started = Instant::now();
    let mut fleet = Fleet::new(n, &exe, &[("slot-a", 0.2), ("slot-b", 0.4)]).await;
    let mut backend = fleet.backend().await;
    fleet.spawn_all();
    fleet.wait_online(&mut backend, WAIT).await;
    println!("all {n} online {:.1} s after the start", started.elapsed().as_secs_f64());

    // Settle (start-up scenes, camera identity reads), then the idle window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c0 = cpu_now(&fleet);
    tokio::time::sleep(idle).await;
    let c1 = cpu_now(&fleet);

    // 1. Slot starts in step.
    let (mut after_at, mut wake, mut reported) = (Vec::new(), Vec::new(), Vec::new());
    let mut early = 0usize;
    for round in 0..rounds {
        let (scene, level) = if round % 2 == 0 { ("slot-a", 0.2) } else { ("slot-b", 0.4) };
        let id = format!("slot-{round}");
        let at = now_ms() + LEAD;
        for b in &fleet.booths {
            let cmd =
                json!({"id": id, "action": "apply_scene", "scene": scene, "at": rfc3339(at), "slot": {"booking": format!("r{round}")}});
            backend.publish(&format!("studiod/{}/cmd", b.id), cmd.to_string()).await;
        }
        let baseline = async {
            tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await;
            SystemTime::now().duration_since(at).unwrap_or_default()
        };
        let ids = [id.as_str()];
        let (frames, replies, woke) =
            tokio::join!(fleet.first_frames(dmx8(level), WAIT), fleet.replies(&mut backend, &ids, 2, WAIT), baseline);
        wake.push(woke);
        for (booth, seen) in frames {
            let seen = seen.unwrap_or_else(|| panic!("{booth}: round {round}'s look never arrived"));
            match seen.duration_since(at) {
                Ok(d) => after_at.push(d),
                Err(e) => {
                    early += 1;
                    eprintln!("{booth}: round {round}'s look arrived {:?} BEFORE at", e.duration());
                }
            }
        }
        for r in replies.values() {
            reported.push(Duration::from_millis(r[1]["late_ms"].as_u64().expect("late_ms in the second reply")));
        }
    }
    let c2 = cpu_now(&fleet);
    let rss: Vec<u64> = fleet.booths.iter().filter_map(|b| b.pid()).map(rss_kib).collect();

    // 2. Reconnect spread after a broker restart: from each booth's own log
    // line "reconnected to MQTT broker" (its UTC timestamp; one clock for
    // all on this machine). The backend cannot see it live: a booth may be
    // back before any client of ours could subscribe again.
    drop(backend);
    let stopping = SystemTime::now();
    fleet.broker.restart();
    let up = SystemTime::now();
    let deadline = Instant::now() + WAIT;
    let mut back: BTreeMap<String, SystemTime> = BTreeMap::new();
    while back.len() < n {
        assert!(Instant::now() < deadline, "not all reconnected within {WAIT:?}: {} of {n}", back.len());
        for b in &fleet.booths {
            if back.contains_key(&b.id) {
                continue;
            }
            if let Some(t) = reconnected_after(&b.logs(), stopping) {
                back.insert(b.id.clone(), t);
            }
        }
        // A bench polling log files, bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut spread: Vec<Duration> = back.values().map(|t| t.duration_since(up).unwrap_or_default()).collect();
    spread.sort();
    let mut buckets: BTreeMap<u128, usize> = BTreeMap::new();
    for d in &spread {
        *buckets.entry(d.as_millis() / 100).or_default() += 1;
    }
    let busiest = buckets.values().max().copied().unwrap_or(0);

    let (idle_mean, idle_max, idle_broker) = cpu_between(&c0, &c1);
    let (slot_mean, slot_max, slot_broker) = cpu_between(&c1, &c2);
    let rss_mean = rss.iter().sum::<u64>() as f64 / rss.len().max(1) as f64 / 1024.0;
    let rss_max = *rss.iter().max().unwrap_or(&0) as f64 / 1024.0;

    println!();
    println!("== slot start → first frame at each booth's receiver, after `at` ({n} booths × {rounds} rounds)");
    println!("   {}", Dist::new(after_at.clone()).summary());
    println!("   before `at`: {early}");
    println!(
        "   within one frame period (22.727 ms): {} of {}",
        after_at.iter().filter(|d| **d <= Duration::from_micros(22_727)).count(),
        after_at.len()
    );
    println!("== baseline: this process waking from a sleep until `at` (one per round)");
    println!("   {}", Dist::new(wake).summary());
    println!("== each booth's own late_ms (second reply)");
    println!("   {}", Dist::new(reported).summary());
    println!("== reconnect after a broker restart: broker listening → booth reconnected (its log)");
    println!("   {}", Dist::new(spread.clone()).summary());
    println!("   first {}  last {}  busiest 100 ms: {busiest} of {n}", ms(spread[0]), ms(spread[spread.len() - 1]));
    println!("   broker down (SIGTERM → listening again): {}", ms(up.duration_since(stopping).unwrap_or_default()));
    println!("== cost");
    println!("   RSS per booth: mean {rss_mean:.1} MiB, max {rss_max:.1} MiB");
    println!(
        "   CPU per booth, idle {:.0} s: mean {idle_mean:.2} %, max {idle_max:.2} % of a core; broker {idle_broker:.2} %",
        idle.as_secs_f64()
    );
    println!(
        "   CPU per booth, slot rounds ({:.0} s): mean {slot_mean:.2} %, max {slot_max:.2} %; broker {slot_broker:.2} %",
        c2.at.duration_since(c1.at).as_secs_f64()
    );
    assert_eq!(early, 0, "a booth applied a slot start before its `at`");
}
