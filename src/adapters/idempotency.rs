//! Which command ids were already handled, and what we answered.
//!
//! The booking backend retries a command when it sees no reply (a broker
//! restart, a lost connection); CONTRACT §5 says a command whose id was
//! already handled is not applied again and its first reply is re-sent with
//! `"duplicate": true`. This store makes that hold across restarts:
//!
//! - in memory: id → first reply, plus the ids being executed right now, so a
//!   duplicate arriving mid-execution waits for the first outcome instead of
//!   executing twice;
//! - on disk: `state_dir/command-ids.jsonl`, one JSON line per handled id,
//!   appended and fsync'ed by one writer thread that batches whatever is
//!   queued (group commit: one fsync for many commands under load). When the
//!   file holds many evicted lines it is rewritten atomically (temp file in
//!   the same folder, fsync, rename, fsync folder).
//!
//! Bounded: ids older than [`KEEP_FOR`] are dropped once more than [`MIN_IDS`]
//! are kept, and never more than [`MAX_IDS`] are kept. A disk that fails
//! (full, read-only) never stops a reply: the failure is logged and the id is
//! still remembered in memory.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};

/// File name inside `state_dir`.
pub const FILE_NAME: &str = "command-ids.jsonl";
/// Ids are kept at least this long (CONTRACT §5: ≥ 24 h) …
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// … and at least this many are kept, whatever their age …
pub const MIN_IDS: usize = 10_000;
/// … but never more than this many (bounded memory and file under a flood).
pub const MAX_IDS: usize = 20_000;
/// A file larger than this is not read at start-up (it cannot be ours).
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Writes queued for the writer thread; handlers wait beyond this.
const WRITE_QUEUE: usize = 1024;

/// The handled-ids store. Cheap to clone.
#[derive(Clone)]
pub struct IdStore {
    inner: Arc<Mutex<Inner>>,
    writer: mpsc::Sender<Record>,
}

/// A record waiting to be made durable, and who to tell when it is.
struct Record {
    line: String,
    done: oneshot::Sender<()>,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// Handled ids in the order they were recorded (oldest first), for eviction.
    order: VecDeque<(SystemTime, String)>,
}

enum Slot {
    /// Being executed; waiters watch for the first reply (`None`: abandoned).
    Running(watch::Receiver<Option<Value>>),
    /// The first reply as compact JSON text. Not a `Value`: a scene reply
    /// names every device, and as a `Value` each `{"ok":true}` is a BTreeMap
    /// with its own node, ~20 KB on the heap for a 30-device booth against
    /// ~0.6 KB of text; with up to [`MAX_IDS`] kept that is the daemon's
    /// whole memory budget many times over (found by benches/soak.rs).
    Done(Box<str>),
}

fn compact(reply: &Value) -> Box<str> {
    reply.to_string().into_boxed_str()
}

fn expand(text: &str) -> Value {
    // Always our own `to_string` output, so it parses; never panic regardless.
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

/// One line of the id file (without its newline); `reply` is JSON text.
fn record_line(id: &str, at: SystemTime, reply: &str) -> String {
    format!("{{\"id\":{},\"at_ms\":{},\"reply\":{reply}}}", Value::String(id.to_string()), unix_ms(at))
}

/// What to do with a command id.
pub enum Claim {
    /// First time seen: execute it, [`Pending::record`] the reply, send the
    /// reply, then drop the `Pending` (which wakes any waiting duplicate).
    New(Pending),
    /// Already handled: this is the first reply (without `duplicate` set).
    Done(Value),
    /// Being executed right now by another handler: wait for its reply.
    Running(Waiter),
}

/// The right (and duty) to execute an id first.
pub struct Pending {
    id: String,
    store: IdStore,
    tx: watch::Sender<Option<Value>>,
    recorded: Option<Value>,
}

/// A duplicate waiting for the first execution of its id.
pub struct Waiter(watch::Receiver<Option<Value>>);

impl IdStore {
    /// Load `state_dir/command-ids.jsonl` and start the writer thread. Never
    /// fails: an unreadable or corrupt file is logged (and a corrupt one set
    /// aside as `command-ids.jsonl.corrupt-<unix ms>`) and the store starts empty.
    pub fn open(state_dir: &Path) -> IdStore {
        let path = state_dir.join(FILE_NAME);
        if let Err(e) = fs::create_dir_all(state_dir) {
            tracing::error!(dir = %state_dir.display(), error = %e, "cannot create state folder; command ids will not survive a restart");
        }
        let mut inner = Inner::default();
        let lines = load(&path, &mut inner);
        inner.evict(SystemTime::now());
        let live = inner.order.len();
        tracing::info!(file = %path.display(), ids = live, "command ids loaded");
        let inner = Arc::new(Mutex::new(inner));
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = Writer { path, file: None, lines, inner: Arc::clone(&inner), failing: false };
        // A plain thread: fsync blocks, and this keeps it off the async workers.
        // It ends when the last IdStore clone is dropped.
        let spawned = std::thread::Builder::new().name("command-ids".into()).spawn(move || writer.run(rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the command-id writer; ids kept in memory only");
        }
        IdStore { inner, writer: tx }
    }

    /// Decide what to do with `id`.
    pub fn claim(&self, id: &str) -> Claim {
        let mut inner = self.lock();
        match inner.slots.get(id) {
            Some(Slot::Done(reply)) => Claim::Done(expand(reply)),
            Some(Slot::Running(rx)) => Claim::Running(Waiter(rx.clone())),
            None => {
                let (tx, rx) = watch::channel(None);
                inner.slots.insert(id.to_string(), Slot::Running(rx));
                Claim::New(Pending { id: id.to_string(), store: self.clone(), tx, recorded: None })
            }
        }
    }

    /// Number of handled ids remembered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // critical section is a few map operations), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Pending {
    /// Remember `reply` as the first reply of this id and wait until it is on
    /// disk (or the disk failed: logged by the writer, never an error here).
    pub async fn record(&mut self, reply: &Value) {
        let now = SystemTime::now();
        {
            let mut inner = self.store.lock();
            // Memory first: a compaction snapshot then always contains every
            // id the writer has been asked to append.
            inner.slots.insert(self.id.clone(), Slot::Done(compact(reply)));
            inner.order.push_back((now, self.id.clone()));
            inner.evict(now);
        }
        self.recorded = Some(reply.clone());
        let line = json!({"id": self.id, "at_ms": unix_ms(now), "reply": reply}).to_string();
        let (done, durable) = oneshot::channel();
        if self.store.writer.send(Record { line, done }).await.is_err() {
            tracing::error!("command-id writer is gone; id kept in memory only");
            return;
        }
        let _ = durable.await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.recorded.is_none() {
            // Not executed (busy, shutdown): forget the claim so a retry runs.
            let mut inner = self.store.lock();
            if matches!(inner.slots.get(&self.id), Some(Slot::Running(_))) {
                inner.slots.remove(&self.id);
            }
        }
        // Wake duplicates only now, after the caller has sent the first reply.
        let _ = self.tx.send(self.recorded.take());
    }
}

impl Waiter {
    /// The first reply, or `None` when the first attempt was not executed
    /// (then claim the id again).
    pub async fn wait(mut self) -> Option<Value> {
        // Err means the sender is gone: it sent its final value just before.
        let _ = self.0.wait_for(Option::is_some).await;
        self.0.borrow().clone()
    }
}

impl Inner {
    fn evict(&mut self, now: SystemTime) {
        while let Some((at, _)) = self.order.front() {
            let old = now.duration_since(*at).unwrap_or_default() > KEEP_FOR;
            if self.order.len() > MAX_IDS || (old && self.order.len() > MIN_IDS) {
                let (_, id) = self.order.pop_front().expect("front exists");
                self.slots.remove(&id);
            } else {
                break;
            }
        }
    }

    /// Every remembered id as file lines, oldest first.
    fn snapshot(&self) -> String {
        let mut out = String::new();
        for (at, id) in &self.order {
            if let Some(Slot::Done(reply)) = self.slots.get(id) {
                out.push_str(&record_line(id, *at, reply));
                out.push('\n');
            }
        }
        out
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// Read the file into `inner`; returns its number of lines (for compaction).
fn load(path: &Path, inner: &mut Inner) -> usize {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read command ids; starting empty");
            return 0;
        }
    };
    match file.metadata() {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE_BYTES => {}
        Ok(m) if m.is_file() => return set_aside(path, "file too large"),
        // Not a regular file (a device, a folder): nothing we wrote; leave it be.
        Ok(_) => {
            tracing::error!(file = %path.display(), "command-id file is not a regular file; starting empty");
            return 0;
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read command ids; starting empty");
            return 0;
        }
    }
    let mut lines = 0;
    let mut reader = BufReader::new(file.take(MAX_FILE_BYTES));
    let mut buf = String::new();
    loop {
        buf.clear();
        match reader.read_line(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return set_aside(path, &format!("unreadable: {e}")),
        }
        lines += 1;
        match parse_line(&buf) {
            Some((id, at, reply)) => {
                if !inner.slots.contains_key(&id) {
                    inner.slots.insert(id.clone(), Slot::Done(compact(&reply)));
                    inner.order.push_back((at, id));
                }
            }
            // A crash mid-append leaves a torn last line without its newline:
            // that record was never acknowledged, so dropping it is right.
            None if !buf.ends_with('\n') => {
                tracing::warn!(file = %path.display(), "ignoring a torn last line in the command-id file");
            }
            None => {
                *inner = Inner::default();
                return set_aside(path, &format!("line {lines} is not a command-id record"));
            }
        }
    }
    lines
}

fn parse_line(line: &str) -> Option<(String, SystemTime, Value)> {
    let v: Value = serde_json::from_str(line.trim_end()).ok()?;
    let id = v.get("id")?.as_str()?.to_string();
    let at = UNIX_EPOCH + Duration::from_millis(v.get("at_ms")?.as_u64()?);
    let reply = v.get("reply")?.clone();
    reply.is_object().then_some((id, at, reply))
}

/// Keep a corrupt file for a human to look at, and start empty.
fn set_aside(path: &Path, why: &str) -> usize {
    let aside = path.with_extension(format!("jsonl.corrupt-{}", unix_ms(SystemTime::now())));
    match fs::rename(path, &aside) {
        Ok(()) => {
            tracing::error!(file = %path.display(), kept_as = %aside.display(), reason = why, "corrupt command-id file set aside; starting empty")
        }
        Err(e) => {
            tracing::error!(file = %path.display(), reason = why, error = %e, "corrupt command-id file (could not set it aside); starting empty")
        }
    }
    0
}

/// The thread that owns the file.
struct Writer {
    path: PathBuf,
    file: Option<File>,
    /// Lines in the file, to know when a rewrite pays off.
    lines: usize,
    inner: Arc<Mutex<Inner>>,
    /// Whether the last write failed (log transitions, not every failure).
    failing: bool,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Record>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let text: String = batch.iter().map(|w| format!("{}\n", w.line)).collect();
            let result = self.append(text.as_bytes());
            let saved = result.is_ok();
            self.report(result, batch.len());
            if saved {
                self.lines += batch.len();
                self.maybe_compact();
            }
            for w in batch {
                let _ = w.done.send(());
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        let file = self.file.as_mut().expect("opened above");
        let r = file.write_all(bytes).and_then(|()| file.sync_data());
        if r.is_err() {
            // Reopen next time: the handle may be in a bad state.
            self.file = None;
        }
        r
    }

    fn report(&mut self, result: io::Result<()>, n: usize) {
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(file = %self.path.display(), "command ids are being saved again");
            }
            Ok(()) => {}
            Err(e) => {
                if !self.failing {
                    tracing::error!(file = %self.path.display(), error = %e, ids = n, "cannot save command ids (disk full or read-only?); replies still sent, ids kept in memory");
                }
                self.failing = true;
            }
        }
    }

    /// Rewrite the file without evicted ids once they make up most of it.
    fn maybe_compact(&mut self) {
        let live = self.inner.lock().unwrap_or_else(|p| p.into_inner()).order.len();
        if self.lines <= 2 * live + 1000 {
            return;
        }
        let snapshot = self.inner.lock().unwrap_or_else(|p| p.into_inner()).snapshot();
        match crate::fsutil::write_atomic(&self.path, snapshot.as_bytes()) {
            Ok(()) => {
                self.file = None;
                self.lines = snapshot.lines().count();
                tracing::debug!(ids = self.lines, "command-id file compacted");
            }
            Err(e) => tracing::warn!(file = %self.path.display(), error = %e, "cannot compact the command-id file; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &str) -> Value {
        json!({"id": id, "ok": true, "action": "blackout", "duplicate": false, "duration_ms": 1, "devices": {}})
    }

    #[tokio::test]
    async fn handled_ids_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdStore::open(dir.path());
        let Claim::New(mut p) = store.claim("a") else { panic!("new id") };
        p.record(&reply("a")).await;
        drop(p);
        assert!(matches!(store.claim("a"), Claim::Done(r) if r["id"] == "a"));
        drop(store);
        let again = IdStore::open(dir.path());
        assert!(matches!(again.claim("a"), Claim::Done(r) if r["id"] == "a"));
        assert!(matches!(again.claim("b"), Claim::New(_)));
    }

    #[tokio::test]
    async fn a_duplicate_waits_for_the_first_and_an_abandoned_claim_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdStore::open(dir.path());
        let Claim::New(mut first) = store.claim("x") else { panic!() };
        let Claim::Running(w) = store.claim("x") else { panic!("running") };
        let waiter = tokio::spawn(w.wait());
        first.record(&reply("x")).await;
        drop(first);
        assert_eq!(waiter.await.unwrap().unwrap()["id"], "x");

        let Claim::New(abandoned) = store.claim("y") else { panic!() };
        let Claim::Running(w) = store.claim("y") else { panic!() };
        drop(abandoned);
        assert_eq!(w.wait().await, None);
        assert!(matches!(store.claim("y"), Claim::New(_)));
    }

    #[test]
    fn corrupt_file_is_set_aside_and_a_torn_last_line_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = json!({"id": "a", "at_ms": unix_ms(SystemTime::now()), "reply": reply("a")}).to_string();
        fs::write(&path, format!("{good}\n{{\"id\":\"b\",\"at")).unwrap();
        let mut inner = Inner::default();
        assert_eq!(load(&path, &mut inner), 2);
        assert_eq!(inner.order.len(), 1);

        fs::write(&path, format!("garbage\n{good}\n")).unwrap();
        let mut inner = Inner::default();
        load(&path, &mut inner);
        assert!(inner.order.is_empty());
        assert!(!path.exists());
        let aside: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).collect();
        assert!(aside.iter().any(|e| e.file_name().to_string_lossy().contains("corrupt")));
    }

    #[test]
    fn eviction_keeps_the_floor_and_the_cap() {
        let mut inner = Inner::default();
        let old = SystemTime::now() - KEEP_FOR - Duration::from_secs(60);
        for i in 0..MAX_IDS + 5 {
            let id = format!("c{i}");
            inner.slots.insert(id.clone(), Slot::Done(compact(&reply(&id))));
            inner.order.push_back((old, id));
        }
        inner.evict(old);
        assert_eq!(inner.order.len(), MAX_IDS, "cap");
        inner.evict(SystemTime::now());
        assert_eq!(inner.order.len(), MIN_IDS, "old ids beyond the floor go");
        assert_eq!(inner.slots.len(), MIN_IDS);
        assert!(inner.slots.contains_key(&format!("c{}", MAX_IDS + 4)), "newest kept");
    }

    #[test]
    fn compaction_drops_evicted_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let inner = Arc::new(Mutex::new(Inner::default()));
        inner.lock().unwrap().slots.insert("k".into(), Slot::Done(compact(&reply("k"))));
        inner.lock().unwrap().order.push_back((SystemTime::now(), "k".into()));
        let mut w = Writer { path: path.clone(), file: None, lines: 5000, inner, failing: false };
        w.maybe_compact();
        assert_eq!(w.lines, 1);
        let mut fresh = Inner::default();
        assert_eq!(load(&path, &mut fresh), 1);
        assert!(fresh.slots.contains_key("k"));
    }
}
