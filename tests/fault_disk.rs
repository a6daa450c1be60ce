//! Disk full (issue 7): `put_scene` on a full disk gets an `internal` error
//! reply, the old scene file is intact and the daemon keeps running; a
//! last-look write to a full disk is logged and changes nothing else.
//!
//! How the disk is "full" without root or a mount: every persisted file is
//! written through `fsutil::write_atomic`, which first creates
//! `.<name>.tmp-<pid>` next to the target. The test puts a symlink to
//! `/dev/full` at exactly that path, so the write of the new content fails
//! with ENOSPC just as on a full filesystem (the daemon runs in-process, so
//! `<pid>` is this test's pid). Should the temp name ever change, the writes
//! would succeed and these tests fail loudly rather than pass vacuously.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use studiod::command::Command;
use support::{dmx16, Booth};

const T: Duration = Duration::from_secs(10);

fn full_disk_trap(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap().to_str().unwrap();
    let trap = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::os::unix::fs::symlink("/dev/full", &trap).unwrap();
    trap
}

/// Everything the daemon logs in this test binary (a global subscriber).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt().with_env_filter("warn").with_ansi(false).with_writer(move || Sink(sink.clone())).try_init();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Poll a filesystem condition (no inotify here); the 10 ms interval is a
/// probe period, the deadline bounds the wait.
async fn wait_fs(limit: Duration, what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_scene_on_a_full_disk_is_an_internal_error_and_loses_nothing() {
    let b = Booth::start().await;
    let scene_path = b.dir.path().join("scenes/flash-sale.toml");
    let old = std::fs::read(&scene_path).unwrap();
    let new_text = String::from_utf8(old.clone()).unwrap().replace("intensity = 1.0\ncct = 5600", "intensity = 0.5\ncct = 5600");
    assert_ne!(new_text.as_bytes(), &old[..], "the edit changes the key light");

    let trap = full_disk_trap(&scene_path);
    let out = b.exec(Command::PutScene { scene: "flash-sale".into(), toml: new_text.clone() }).await;
    assert!(!out.ok, "{out:?}");
    let err = out.error.clone().expect("an error");
    assert_eq!(err.code.as_str(), "internal", "{err:?}");
    assert!(err.message.contains("flash-sale.toml") && err.message.contains("No space left on device"), "a clear message: {}", err.message);
    // Replies go to clients: the booth's own folders are not theirs to see.
    assert!(!err.message.contains(&*b.dir.path().to_string_lossy()), "the config folder's path leaked: {}", err.message);
    assert_eq!(std::fs::read(&scene_path).unwrap(), old, "the old scene file is intact");
    assert!(!trap.exists() && trap.symlink_metadata().is_err(), "the failed temp file is cleaned up");
    let names: Vec<String> =
        std::fs::read_dir(b.dir.path().join("scenes")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "no temp files left: {names:?}");

    // The daemon keeps running the old scene: key at full, not the refused 0.5.
    let applied = b.apply("flash-sale", Some(0)).await;
    assert!(applied.ok, "{applied:?}");
    b.frame_where(T, "the old flash-sale (key at full)", |d| d[..2] == dmx16(1.0)).await;

    // Space again: the same put_scene now succeeds and is applied.
    let out = b.exec(Command::PutScene { scene: "flash-sale".into(), toml: new_text.clone() }).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(std::fs::read_to_string(&scene_path).unwrap(), new_text);
    assert!(b.apply("house", Some(0)).await.ok);
    assert!(b.apply("flash-sale", Some(0)).await.ok);
    b.frame_where(T, "the new flash-sale (key at half)", |d| d[..2] == dmx16(0.5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_look_write_to_a_full_disk_is_logged_and_the_daemon_runs_on() {
    let logs = captured_logs();
    let b = Booth::start().await;
    let state = b.dir.path().join("state");
    let last_look = state.join(studiod::lighting::persist::FILE_NAME);
    // The start-up scene's look is persisted first (debounced): wait for it.
    wait_fs(T, "house persisted", || std::fs::read_to_string(&last_look).is_ok_and(|t| t.contains("\"key\""))).await;
    let before = std::fs::read(&last_look).unwrap();

    let trap = full_disk_trap(&last_look);
    assert!(b.apply("flash-sale", Some(0)).await.ok);
    // The persister tried, failed on ENOSPC, and removed its temp file.
    wait_fs(T, "last-look write attempted", || trap.symlink_metadata().is_err()).await;
    assert_eq!(std::fs::read(&last_look).unwrap(), before, "the previous last look is intact");
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(text.contains("could not persist the last look") && text.contains("No space left on device"), "logged: {text}");

    // The daemon runs on: lights follow scenes, cameras answer.
    b.frame_where(T, "flash-sale on the wire", |d| d[..2] == dmx16(1.0)).await;
    let o = b.apply("house", Some(0)).await;
    assert!(o.ok, "{o:?}");
    b.frame_where(T, "house on the wire", |d| d[..2] == dmx16(0.4)).await;
    // Space again: the next look change is persisted.
    assert!(b.apply("intro", Some(0)).await.ok);
    wait_fs(T, "last look saved again", || {
        std::fs::read(&last_look).is_ok_and(|now| now != before && studiod::lighting::persist::load(&state).is_ok())
    })
    .await;
}
