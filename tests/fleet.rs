//! A site in step (issue #13, CONTRACT §7): 20 real studiod processes, each
//! with its own virtual cameras and Art-Net receiver on loopback, on one
//! Mosquitto with per-booth accounts and the shipped ACL template.
//! - One `apply_scene` with the same `at` to all: every booth acknowledges
//!   it, applies it once, never before `at`, and answers a second time.
//! - A broker restart with commands queued while the booths are away (their
//!   logins refused until the backend has queued one command for each): all
//!   20 reconnect, and each queued command is applied and answered once.

#[path = "support/child.rs"]
mod child;
#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/mosquitto.rs"]
mod mosquitto;
mod support;

use std::path::Path;
use std::time::Duration;

use fleet::Fleet;
use mosquitto::{now_ms, rfc3339};
use serde_json::json;
use support::dmx8;

const BOOTHS: usize = 20;
const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_booths_start_a_slot_in_step_and_miss_no_queued_command_across_a_broker_restart() {
    let mut fleet = Fleet::new(BOOTHS, Path::new(env!("CARGO_BIN_EXE_studiod")), &[("slot", 0.4), ("queued", 0.7)]).await;
    let mut backend = fleet.backend().await;
    fleet.spawn_all();
    fleet.wait_online(&mut backend, T).await;

    // One slot start for the whole site.
    let at = now_ms() + Duration::from_secs(4);
    for b in &fleet.booths {
        let cmd = json!({"id": "slot-1", "action": "apply_scene", "scene": "slot", "at": rfc3339(at), "slot": {"booking": b.id}});
        backend.publish(&format!("studiod/{}/cmd", b.id), cmd.to_string()).await;
    }
    let (frames, replies) = tokio::join!(fleet.first_frames(dmx8(0.4), T), fleet.replies(&mut backend, &["slot-1"], 2, T));
    for (id, seen) in &frames {
        let seen = seen.unwrap_or_else(|| panic!("{id}: the slot's look never reached its lights\n{}", fleet.log_of(id)));
        assert!(seen >= at, "{id}: the slot's look arrived {:?} before `at`", at.duration_since(seen).unwrap());
        // Debug build, 20 daemons on a shared 2-core machine: generous. The
        // fleet benchmark measures the spread.
        let late = seen.duration_since(at).unwrap();
        assert!(late < Duration::from_millis(750), "{id}: the slot's look arrived {late:?} after `at`");
    }
    for (id, r) in &replies {
        assert_eq!((&r[0]["scheduled"], &r[0]["ok"]), (&json!(true), &json!(true)), "{id}: first the acknowledgement: {r:?}");
        assert_eq!(
            (r[1].get("scheduled"), &r[1]["ok"], &r[1]["scene"]),
            (None, &json!(true), &json!("slot")),
            "{id}: then the result: {r:?}"
        );
        assert!(r[1]["late_ms"].as_u64().is_some_and(|l| l < 750), "{id}: {}", r[1]);
    }

    // The broker restarts; the booths cannot log in until the backend has
    // queued a command for each of them in their persistent sessions.
    drop(backend);
    fleet.set_booth_logins(false);
    fleet.broker.restart();
    let mut backend = fleet.backend().await;
    for b in &fleet.booths {
        let cmd = json!({"id": "queued-1", "action": "apply_scene", "scene": "queued", "fade_ms": 0});
        backend.publish(&format!("studiod/{}/cmd", b.id), cmd.to_string()).await;
    }
    // Each booth has tried and been refused at least once: the command
    // waits in its session, not in flight.
    let deadline = tokio::time::Instant::now() + T;
    while !fleet.booths.iter().all(|b| b.logs().lines().any(|l| l.contains("MQTT connect failed") && l.contains("NotAuthorized"))) {
        assert!(tokio::time::Instant::now() < deadline, "booths not refused within {T:?}; booth-000's log:\n{}", fleet.booths[0].logs());
        // Polling log files: there is no event to wait on (bounded above).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.set_booth_logins(true);
    fleet.broker.reload();
    // All 20 back (each republishes its status on reconnecting) …
    fleet.wait_online(&mut backend, T).await;
    // … and each queued command applied and answered once.
    let (frames, replies) = tokio::join!(fleet.first_frames(dmx8(0.7), T), fleet.replies(&mut backend, &["queued-1"], 1, T));
    for (id, seen) in &frames {
        assert!(seen.is_some(), "{id}: the queued command's look never reached its lights\n{}", fleet.log_of(id));
    }
    for (id, r) in &replies {
        assert_eq!((&r[0]["ok"], &r[0]["duplicate"]), (&json!(true), &json!(false)), "{id}: {r:?}");
    }
    // No booth answers either command again (a repeat would show as a reply).
    let quiet_until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Some(p) = backend.next_any(quiet_until.saturating_duration_since(tokio::time::Instant::now())).await {
        let topic = String::from_utf8_lossy(&p.topic).to_string();
        assert!(!topic.ends_with("/reply"), "a repeated reply on {topic}: {}", String::from_utf8_lossy(&p.payload));
    }
    for b in &fleet.booths {
        let applied = b.logs().matches("scene applied").count();
        // The safe scene at start-up, the slot, the queued command: once each.
        assert_eq!(applied, 3, "{}: scenes applied\n{}", b.id, b.logs());
    }
}
