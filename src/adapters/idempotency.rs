//! Which command ids were already handled, and what we answered.
//!
//! The booking backend retries a command when it sees no reply (a broker
//! restart, a lost connection); CONTRACT §5 says a command whose id was
//! already handled is not applied again and its first reply is re-sent with
//! `"duplicate": true`. This store makes that hold across restarts:
//!
//! - on disk: `state_dir/command-ids.jsonl`, one JSON line per handled id
//!   with its first reply, appended and fsync'ed by one writer thread that
//!   batches whatever is queued (group commit: one fsync for many commands
//!   under load). When the file holds many evicted lines it is rewritten
//!   atomically (temp file in the same folder, fsync, rename, fsync folder),
//!   streamed record by record.
//! - in memory, only an index: per handled id 20 bytes (a keyed 64-bit hash
//!   of the id, where its line is in the file, when it was recorded) in a
//!   fixed-size open-addressing table allocated once, so memory does not
//!   grow with the number of ids (it did by ~0.85 kB per id when replies
//!   were kept in memory; see the soak section of BENCHMARKS.md). A
//!   duplicate reads its line back (a positioned read on a blocking thread)
//!   and compares the full id, so a hash collision costs one read, never a
//!   wrong reply. Ids being executed right now are kept by name, so a
//!   duplicate arriving mid-execution waits for the first outcome instead of
//!   executing twice.
//! - A line not (yet) on disk stays in memory: between the reply and the
//!   writer's append, and while the disk fails (full, read-only). A failing
//!   disk never stops a reply, and duplicates of those ids still work; the
//!   writer retries them with the next batch. At most `MAX_UNSAVED` (1000)
//!   failed lines are kept; beyond that the oldest are forgotten (logged),
//!   so a retry of one of those would run again.
//!
//! Start-up: the writer thread reads the file (streamed, lines of at most
//! `MAX_LINE` (1 MiB), the file at most `MAX_FILE_BYTES` (256 MiB)) before
//! it saves anything; [`IdStore::claim`] waits for that, so the async runtime
//! never blocks on the disk. A torn last line (a crash mid-append) is dropped
//! and cut off, so the next append starts on a line of its own.
//!
//! Bounded: ids older than [`KEEP_FOR`] are dropped once more than [`MIN_IDS`]
//! are kept, and never more than [`MAX_IDS`] are kept.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

/// File name inside `state_dir`.
pub const FILE_NAME: &str = "command-ids.jsonl";
/// Ids are kept at least this long (CONTRACT §5: ≥ 24 h) …
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// … and at least this many are kept, whatever their age …
pub const MIN_IDS: usize = 10_000;
/// … but never more than this many (bounded memory and file under a flood).
pub const MAX_IDS: usize = 20_000;
/// A file larger than this is not read at start-up (it cannot be ours), and
/// the writer never grows it beyond (so offsets fit in 32 bits).
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// A longer line is not one of our records (a reply names every device of a
/// booth: a few kB).
const MAX_LINE: usize = 1024 * 1024;
/// Writes queued for the writer thread; handlers wait beyond this.
const WRITE_QUEUE: usize = 1024;
/// Lines whose write failed that are kept in memory, at most.
const MAX_UNSAVED: usize = 1000;
/// Slots of the index table: a power of two well above [`MAX_IDS`], so the
/// table is at most 61 % full and probe runs stay short.
const SLOTS: usize = 32_768;
const _: () = assert!(SLOTS.is_power_of_two() && SLOTS > MAX_IDS * 3 / 2);
/// An empty table slot.
const EMPTY: u32 = u32::MAX;
/// Record numbers run modulo this, so that [`EMPTY`] never names a record.
const SEQ_MOD: u64 = EMPTY as u64;
/// Evicted lines tolerated in the file on top of twice the live ones.
const COMPACT_SLACK: usize = 1000;

/// How ids are hashed; tests inject a colliding one.
type HashFn = fn(&RandomState, &str) -> u64;

fn keyed_hash(keys: &RandomState, id: &str) -> u64 {
    // SipHash with a per-process random key: ids come from outside, so
    // nobody can aim collisions at the table.
    keys.hash_one(id)
}

/// The handled-ids store. Cheap to clone.
#[derive(Clone)]
pub struct IdStore {
    inner: Arc<Mutex<Inner>>,
    writer: mpsc::Sender<Job>,
    /// `true` once the file has been read.
    loaded: watch::Receiver<bool>,
}

/// Work for the writer thread.
enum Job {
    /// Make record `seq` durable, then tell `done`.
    Save { seq: u32, done: oneshot::Sender<()> },
    /// Rewrite the file now, whatever its evicted share.
    #[cfg(test)]
    Compact(oneshot::Sender<()>),
}

/// One handled id in the index.
#[derive(Clone, Copy, Debug)]
struct Rec {
    /// Hash of the id, in two halves so a record is 20 bytes (align 4).
    hash: [u32; 2],
    /// When it was recorded: Unix seconds rounded up, so rounding never
    /// evicts an id before [`KEEP_FOR`].
    at: u32,
    /// Where its line starts in the file.
    offset: u32,
    /// Length of its line without the newline; 0: not on disk (its line is
    /// in [`Inner::unsaved`], or it was forgotten).
    len: u32,
}

impl Rec {
    fn new(hash: u64, at: u32) -> Rec {
        Rec { hash: [(hash >> 32) as u32, hash as u32], at, offset: 0, len: 0 }
    }

    fn hash(&self) -> u64 {
        (u64::from(self.hash[0]) << 32) | u64::from(self.hash[1])
    }
}

/// Handled ids oldest first, and a hash table of their record numbers
/// (linear probing; a record's hash is read from the record itself).
#[derive(Default)]
struct Index {
    recs: VecDeque<Rec>,
    /// Record number of `recs[0]`.
    front: u32,
    /// [`SLOTS`] record numbers or [`EMPTY`]; allocated on first use.
    slots: Vec<u32>,
}

const MASK: usize = SLOTS - 1;

fn seq_add(seq: u32, n: usize) -> u32 {
    ((u64::from(seq) + n as u64) % SEQ_MOD) as u32
}

impl Index {
    fn len(&self) -> usize {
        self.recs.len()
    }

    fn home(hash: u64) -> usize {
        hash as usize & MASK
    }

    fn get(&self, seq: u32) -> Option<&Rec> {
        self.recs.get(self.pos(seq)?)
    }

    fn get_mut(&mut self, seq: u32) -> Option<&mut Rec> {
        let pos = self.pos(seq)?;
        self.recs.get_mut(pos)
    }

    fn pos(&self, seq: u32) -> Option<usize> {
        let pos = ((u64::from(seq) + SEQ_MOD - u64::from(self.front)) % SEQ_MOD) as usize;
        (pos < self.recs.len()).then_some(pos)
    }

    /// Allocate the table and room for [`MAX_IDS`] records, once: memory
    /// then stays flat however many ids come (the records' pages are
    /// touched as they fill, 20 bytes per id).
    fn reserve(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![EMPTY; SLOTS];
            self.recs.reserve_exact(MAX_IDS + 1);
        }
    }

    /// Append `rec` as the newest; the caller keeps `len() <= MAX_IDS` first.
    fn push(&mut self, rec: Rec) -> u32 {
        self.reserve();
        assert!(self.recs.len() <= MAX_IDS, "the id index is never fuller than MAX_IDS");
        let seq = seq_add(self.front, self.recs.len());
        self.recs.push_back(rec);
        let mut i = Self::home(rec.hash());
        while self.slots[i] != EMPTY {
            i = (i + 1) & MASK;
        }
        self.slots[i] = seq;
        seq
    }

    /// Record numbers whose hash is `hash` (usually none or one).
    fn candidates(&self, hash: u64) -> Vec<u32> {
        let mut out = Vec::new();
        if self.slots.is_empty() {
            return out;
        }
        let mut i = Self::home(hash);
        while self.slots[i] != EMPTY {
            let seq = self.slots[i];
            if self.get(seq).is_some_and(|r| r.hash() == hash) {
                out.push(seq);
            }
            i = (i + 1) & MASK;
        }
        out
    }

    fn pop_front(&mut self) -> Option<u32> {
        let rec = self.recs.pop_front()?;
        let seq = self.front;
        self.front = seq_add(seq, 1);
        self.unslot(rec.hash(), seq);
        Some(seq)
    }

    /// Take `seq` out of the table: it is never found again. Its record stays
    /// in `recs` until evicted (records leave only from the front).
    fn unslot(&mut self, hash: u64, seq: u32) {
        if self.slots.is_empty() {
            return;
        }
        let mut hole = Self::home(hash);
        loop {
            match self.slots[hole] {
                EMPTY => return,
                s if s == seq => break,
                _ => hole = (hole + 1) & MASK,
            }
        }
        // Backward-shift deletion: no tombstones, so probe runs never rot.
        // An entry further along moves into the hole unless its home lies
        // cyclically in (hole, j].
        let mut j = hole;
        loop {
            j = (j + 1) & MASK;
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            let home = self.get(s).map_or(j, |r| Self::home(r.hash()));
            if (j.wrapping_sub(home) & MASK) >= (j.wrapping_sub(hole) & MASK) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
    }
}

struct Inner {
    keys: RandomState,
    hash_fn: HashFn,
    /// Ids being executed; waiters watch for the first reply (`None`: abandoned).
    running: HashMap<String, watch::Receiver<Option<Value>>>,
    /// Ids claimed whose handler has not yet sent its reply (the `Pending`
    /// is alive): a later message for the id waits for it ([`IdStore::settled`]).
    unsent: HashMap<String, watch::Receiver<Option<Value>>>,
    index: Index,
    /// Lines (without newline) of records not on disk, by record number.
    unsaved: HashMap<u32, Box<str>>,
    /// The file the index offsets point into.
    file: Option<Arc<File>>,
}

/// Where a record's line is, taken under the lock and read outside it.
enum Place {
    Memory(Box<str>),
    /// A handle on the very file the offset belongs to: a rewrite renames a
    /// new file into place, and this one stays readable until dropped.
    Disk(Arc<File>, u32, u32),
    Gone,
}

impl Inner {
    fn new(hash_fn: HashFn) -> Inner {
        Inner {
            keys: RandomState::new(),
            hash_fn,
            running: HashMap::new(),
            unsent: HashMap::new(),
            index: Index::default(),
            unsaved: HashMap::new(),
            file: None,
        }
    }

    fn hash(&self, id: &str) -> u64 {
        (self.hash_fn)(&self.keys, id)
    }

    /// Remember a handled id whose line is `line` (not on disk yet).
    fn add(&mut self, hash: u64, now: SystemTime, line: Box<str>) -> u32 {
        while self.index.len() >= MAX_IDS {
            self.drop_oldest();
        }
        let seq = self.index.push(Rec::new(hash, ceil_secs(now)));
        self.unsaved.insert(seq, line);
        self.evict(now);
        seq
    }

    fn drop_oldest(&mut self) {
        if let Some(seq) = self.index.pop_front() {
            self.unsaved.remove(&seq);
        }
    }

    fn evict(&mut self, now: SystemTime) {
        let now = unix_secs(now);
        while let Some(front) = self.index.recs.front() {
            let old = u64::from(now.saturating_sub(front.at)) > KEEP_FOR.as_secs();
            let len = self.index.len();
            if len > MAX_IDS || (old && len > MIN_IDS) {
                self.drop_oldest();
            } else {
                break;
            }
        }
    }

    fn place(&self, seq: u32) -> Place {
        match (self.index.get(seq), &self.file) {
            (Some(r), Some(file)) if r.len > 0 => Place::Disk(Arc::clone(file), r.offset, r.len),
            _ => self.unsaved.get(&seq).map_or(Place::Gone, |line| Place::Memory(line.clone())),
        }
    }
}

fn unix_secs(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs().min(u64::from(u32::MAX)) as u32
}

fn ceil_secs(t: SystemTime) -> u32 {
    ceil_ms_secs(unix_ms(t))
}

fn ceil_ms_secs(ms: u64) -> u32 {
    ms.div_ceil(1000).min(u64::from(u32::MAX)) as u32
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// One line of the id file (without its newline).
fn record_line(id: &str, at: SystemTime, reply: &Value) -> String {
    format!("{{\"id\":{},\"at_ms\":{},\"reply\":{reply}}}", Value::String(id.to_string()), unix_ms(at))
}

/// The id and reply of a record line; `None` if it is not one.
fn parse_record(line: &[u8]) -> Option<(String, Value)> {
    let mut v: Value = serde_json::from_slice(line).ok()?;
    let id = v.get("id")?.as_str()?.to_string();
    let reply = v.get_mut("reply")?.take();
    reply.is_object().then_some((id, reply))
}

/// What start-up needs of a line, checked without building the reply.
#[derive(Deserialize)]
struct Head {
    id: String,
    at_ms: u64,
    #[allow(dead_code)]
    reply: AnObject,
}

/// Any JSON object, skipped.
struct AnObject;

impl<'de> Deserialize<'de> for AnObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Skip;
        impl<'de> Visitor<'de> for Skip {
            type Value = AnObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnObject)
            }
        }
        d.deserialize_map(Skip)
    }
}

fn read_line_at(file: &File, offset: u32, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len as usize];
    file.read_exact_at(&mut buf, offset.into())?;
    Ok(buf)
}

/// The first reply recorded at `place`, if that record is `id`'s.
async fn first_reply(place: Place, id: &str) -> Option<Value> {
    let line = match place {
        Place::Memory(line) => line.into_boxed_bytes().into_vec(),
        Place::Disk(file, offset, len) => match tokio::task::spawn_blocking(move || read_line_at(&file, offset, len)).await {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                // Treated as another id's record: the command runs (as after
                // an eviction) rather than answering with a reply we cannot read.
                tracing::error!(error = %e, "cannot read a command-id record back");
                return None;
            }
            Err(_) => return None,
        },
        Place::Gone => return None,
    };
    let (recorded, reply) = parse_record(&line)?;
    (recorded == id).then_some(reply)
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
    /// Start the writer thread, which first loads `state_dir/command-ids.jsonl`
    /// (claims wait for that). Never fails: an unreadable or corrupt file is
    /// logged (and a corrupt one set aside as
    /// `command-ids.jsonl.corrupt-<unix ms>`) and the store starts empty.
    pub fn open(state_dir: &Path) -> IdStore {
        Self::open_with(state_dir, keyed_hash)
    }

    fn open_with(state_dir: &Path, hash_fn: HashFn) -> IdStore {
        Self::open_bounded(state_dir, hash_fn, MAX_FILE_BYTES)
    }

    /// `max_file_bytes`: the writer's bound on the file (tests lower it).
    fn open_bounded(state_dir: &Path, hash_fn: HashFn, max_file_bytes: u64) -> IdStore {
        let inner = Arc::new(Mutex::new(Inner::new(hash_fn)));
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let (loaded_tx, loaded) = watch::channel(false);
        let mut writer = Writer::new(state_dir, Arc::clone(&inner));
        writer.max_file_bytes = max_file_bytes;
        // A plain thread: reading the file and fsync block, and this keeps
        // them off the async workers. It ends when the last IdStore clone is
        // dropped. If it cannot start, `loaded_tx` is dropped, so claims
        // proceed, and ids are kept in memory only.
        let spawned = std::thread::Builder::new().name("command-ids".into()).spawn(move || writer.run(rx, loaded_tx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the command-id writer; ids kept in memory only");
        }
        IdStore { inner, writer: tx, loaded }
    }

    /// Wait until the file has been read (claims do).
    pub async fn loaded(&self) {
        // Err: the writer is gone, nothing more will be loaded.
        let _ = self.loaded.clone().wait_for(|done| *done).await;
    }

    /// Decide what to do with `id`.
    pub async fn claim(&self, id: &str) -> Claim {
        self.loaded().await;
        // Records with id's hash that turned out to be other ids.
        let mut others: Vec<u32> = Vec::new();
        loop {
            let places: Vec<(u32, Place)> = {
                let mut inner = self.lock();
                if let Some(rx) = inner.running.get(id) {
                    return Claim::Running(Waiter(rx.clone()));
                }
                let hash = inner.hash(id);
                let seqs = inner.index.candidates(hash);
                let places: Vec<_> = seqs.into_iter().filter(|s| !others.contains(s)).map(|s| (s, inner.place(s))).collect();
                if places.is_empty() {
                    let (tx, rx) = watch::channel(None);
                    inner.unsent.insert(id.to_string(), rx.clone());
                    inner.running.insert(id.to_string(), rx);
                    return Claim::New(Pending { id: id.to_string(), store: self.clone(), tx, recorded: None });
                }
                places
            };
            // Read outside the lock; then look again, since the id may have
            // been claimed or recorded meanwhile.
            for (seq, place) in places {
                if let Some(reply) = first_reply(place, id).await {
                    return Claim::Done(reply);
                }
                others.push(seq);
            }
        }
    }

    /// Wait until no handler holds `id` unanswered: its first reply has been
    /// sent (or given up). A scheduled command's second reply waits for this,
    /// so the acknowledgement always comes first.
    pub async fn settled(&self, id: &str) {
        let rx = self.lock().unsent.get(id).cloned();
        if let Some(mut rx) = rx {
            // Changed (the reply) or closed (the Pending dropped): either way, done.
            let _ = rx.changed().await;
        }
    }

    /// Number of handled ids remembered (0 until [`IdStore::loaded`]).
    pub fn len(&self) -> usize {
        self.lock().index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    #[cfg(test)]
    async fn compact_now(&self) {
        let (done, compacted) = oneshot::channel();
        self.writer.send(Job::Compact(done)).await.unwrap();
        compacted.await.unwrap();
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock leaves consistent data (every critical
    // section is a few index operations), so poisoning is ignored.
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pending {
    /// Remember `reply` as the first reply of this id and wait until it is on
    /// disk (or the disk failed: logged by the writer, never an error here).
    pub async fn record(&mut self, reply: &Value) {
        let now = SystemTime::now();
        let line = record_line(&self.id, now, reply).into_boxed_str();
        let seq = {
            let mut inner = self.store.lock();
            // One critical section: a claim sees the id running or handled.
            inner.running.remove(&self.id);
            let hash = inner.hash(&self.id);
            inner.add(hash, now, line)
        };
        self.recorded = Some(reply.clone());
        let (done, durable) = oneshot::channel();
        if self.store.writer.send(Job::Save { seq, done }).await.is_err() {
            tracing::error!("command-id writer is gone; id kept in memory only");
            return;
        }
        let _ = durable.await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        {
            let mut inner = self.store.lock();
            inner.unsent.remove(&self.id);
            if self.recorded.is_none() {
                // Not executed (busy, shutdown): forget the claim so a retry runs.
                inner.running.remove(&self.id);
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

/// A file read at start-up.
struct Loaded {
    file: File,
    /// Bytes of whole lines: appends go here.
    size: u64,
    /// Whole lines (for compaction).
    lines: usize,
    /// Bytes past `size` (a torn line) could not be cut off yet.
    dirty: bool,
}

/// Read the id file into `index` (which is empty): streamed, a line at a
/// time, a duplicate id keeping its first record.
fn load(path: &Path, index: &mut Index, hash: impl Fn(&str) -> u64) -> Option<Loaded> {
    let opened = OpenOptions::new().read(true).write(true).open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        // A read-only disk: read what is there; saving will fail, logged.
        Err(_) => match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read command ids; starting empty");
                return None;
            }
        },
    };
    match file.metadata() {
        Ok(m) if m.is_file() && m.len() <= MAX_FILE_BYTES => {}
        Ok(m) if m.is_file() => return set_aside(path, "file too large"),
        // Not a regular file (a device, a folder): nothing we wrote; leave it be.
        Ok(_) => {
            tracing::error!(file = %path.display(), "command-id file is not a regular file; starting empty");
            return None;
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read command ids; starting empty");
            return None;
        }
    }
    let mut reader = BufReader::with_capacity(64 * 1024, (&file).take(MAX_FILE_BYTES));
    let mut buf = Vec::new();
    let (mut size, mut lines, mut dirty) = (0u64, 0usize, false);
    loop {
        buf.clear();
        let n = match (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => {
                *index = Index::default();
                return set_aside(path, &format!("unreadable: {e}"));
            }
        };
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            if n > MAX_LINE {
                *index = Index::default();
                return set_aside(path, &format!("line {} is longer than {MAX_LINE} bytes", lines + 1));
            }
            // A crash mid-append leaves a torn last line without its newline:
            // that record was never acknowledged, so dropping it is right. Cut
            // it off, or the next append would be glued to it.
            tracing::warn!(file = %path.display(), "ignoring a torn last line in the command-id file");
            if let Err(e) = file.set_len(size) {
                tracing::warn!(file = %path.display(), error = %e, "cannot cut off the torn line yet");
                dirty = true;
            }
            break;
        }
        let line = &buf[..n - 1];
        let Some(head) = serde_json::from_slice::<Head>(line).ok() else {
            *index = Index::default();
            return set_aside(path, &format!("line {} is not a command-id record", lines + 1));
        };
        lines += 1;
        let h = hash(&head.id);
        let seen = index.candidates(h).into_iter().any(|seq| {
            let rec = index.get(seq).copied();
            rec.and_then(|r| read_line_at(&file, r.offset, r.len).ok())
                .and_then(|l| serde_json::from_slice::<Head>(&l).ok())
                .is_some_and(|first| first.id == head.id)
        });
        if !seen {
            while index.len() >= MAX_IDS {
                index.pop_front();
            }
            let seq = index.push(Rec::new(h, ceil_ms_secs(head.at_ms)));
            let rec = index.get_mut(seq).expect("just pushed");
            // Within MAX_FILE_BYTES, so both fit.
            (rec.offset, rec.len) = (size as u32, line.len() as u32);
        }
        size += n as u64;
    }
    Some(Loaded { file, size, lines, dirty })
}

/// Keep a corrupt file for a human to look at, and start empty.
fn set_aside<T>(path: &Path, why: &str) -> Option<T> {
    let aside = path.with_extension(format!("jsonl.corrupt-{}", unix_ms(SystemTime::now())));
    match fs::rename(path, &aside) {
        Ok(()) => {
            tracing::error!(file = %path.display(), kept_as = %aside.display(), reason = why, "corrupt command-id file set aside; starting empty")
        }
        Err(e) => {
            tracing::error!(file = %path.display(), reason = why, error = %e, "corrupt command-id file (could not set it aside); starting empty")
        }
    }
    None
}

/// The thread that owns the file.
struct Writer {
    dir: PathBuf,
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
    /// The same handle as [`Inner::file`]: appends are positioned writes at
    /// `size`, so the index offsets are known without asking the file.
    file: Option<Arc<File>>,
    /// Bytes of whole records in the file.
    size: u64,
    /// A failed append may have left bytes past `size`: cut them first.
    dirty: bool,
    /// Lines in the file, to know when a rewrite pays off.
    lines: usize,
    /// Records whose append failed, oldest first; retried with the next batch.
    unsaved: VecDeque<u32>,
    /// Whether the last write failed (log transitions, not every failure).
    failing: bool,
    /// The file is never grown beyond this ([`MAX_FILE_BYTES`]).
    max_file_bytes: u64,
}

impl Writer {
    fn new(dir: &Path, inner: Arc<Mutex<Inner>>) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            path: dir.join(FILE_NAME),
            inner,
            file: None,
            size: 0,
            dirty: false,
            lines: 0,
            unsaved: VecDeque::new(),
            failing: false,
            max_file_bytes: MAX_FILE_BYTES,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Job>, loaded: watch::Sender<bool>) {
        self.start();
        let _ = loaded.send(true);
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            let mut seqs = Vec::with_capacity(batch.len());
            let mut dones = Vec::with_capacity(batch.len());
            for job in batch {
                match job {
                    Job::Save { seq, done } => {
                        seqs.push(seq);
                        dones.push(done);
                    }
                    #[cfg(test)]
                    Job::Compact(done) => {
                        self.compact_logged();
                        dones.push(done);
                    }
                }
            }
            self.save(seqs);
            for done in dones {
                let _ = done.send(());
            }
        }
    }

    /// Create the folder and read the file into the index.
    fn start(&mut self) {
        if let Err(e) = fs::create_dir_all(&self.dir) {
            tracing::error!(dir = %self.dir.display(), error = %e, "cannot create state folder; command ids will not survive a restart");
        }
        let (keys, hash_fn) = {
            let inner = lock(&self.inner);
            (inner.keys.clone(), inner.hash_fn)
        };
        // Built outside the lock: nothing uses the index until `loaded`.
        let mut index = Index::default();
        let loaded = load(&self.path, &mut index, |id| hash_fn(&keys, id));
        // At start-up rather than with the first id: a fixed cost.
        index.reserve();
        let mut inner = lock(&self.inner);
        inner.index = index;
        if let Some(l) = loaded {
            let file = Arc::new(l.file);
            inner.file = Some(Arc::clone(&file));
            (self.file, self.size, self.lines, self.dirty) = (Some(file), l.size, l.lines, l.dirty);
        }
        inner.evict(SystemTime::now());
        tracing::info!(file = %self.path.display(), ids = inner.index.len(), "command ids loaded");
    }

    /// Append the lines of `batch` (and of earlier failures) with one fsync.
    fn save(&mut self, batch: Vec<u32>) {
        // Earlier failures first, so the file stays in record order.
        let mut seqs: Vec<u32> = self.unsaved.drain(..).collect();
        seqs.extend(batch);
        let mut text = String::new();
        let mut placed = Vec::with_capacity(seqs.len());
        {
            let inner = lock(&self.inner);
            for seq in seqs {
                // Not there: evicted meanwhile, nothing to save.
                if let Some(line) = inner.unsaved.get(&seq) {
                    placed.push((seq, text.len() as u64, line.len() as u32));
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        if placed.is_empty() {
            return;
        }
        let n = placed.len();
        match self.append(text.as_bytes()) {
            Ok(base) => {
                self.report(Ok(()), n);
                let mut inner = lock(&self.inner);
                for (seq, start, len) in placed {
                    if inner.unsaved.remove(&seq).is_some() {
                        if let Some(rec) = inner.index.get_mut(seq) {
                            (rec.offset, rec.len) = ((base + start) as u32, len);
                        }
                    }
                }
                drop(inner);
                self.lines += n;
                self.maybe_compact();
            }
            Err(e) => {
                self.report(Err(e), n);
                self.unsaved.extend(placed.iter().map(|p| p.0));
                let mut forgotten = 0;
                let mut inner = lock(&self.inner);
                while self.unsaved.len() > MAX_UNSAVED {
                    let seq = self.unsaved.pop_front().expect("longer than the bound");
                    if inner.unsaved.remove(&seq).is_some() {
                        if let Some(hash) = inner.index.get(seq).map(Rec::hash) {
                            inner.index.unslot(hash, seq);
                        }
                        forgotten += 1;
                    }
                }
                if forgotten > 0 {
                    tracing::warn!(
                        ids = forgotten,
                        kept = MAX_UNSAVED,
                        "command ids still not saved; forgetting the oldest (a retry of one of them would run again)"
                    );
                }
            }
        }
    }

    /// Write `bytes` at the end of the file and fsync; returns where they start.
    fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        if self.size + bytes.len() as u64 > self.max_file_bytes {
            self.compact_logged();
            if self.size + bytes.len() as u64 > self.max_file_bytes {
                return Err(io::Error::other("the command-id file would exceed its size bound"));
            }
        }
        let file = match &self.file {
            Some(f) => Arc::clone(f),
            None => {
                // Not truncated: if a file appeared since start-up, append after it.
                let f = Arc::new(OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&self.path)?);
                self.size = f.metadata()?.len();
                lock(&self.inner).file = Some(Arc::clone(&f));
                self.file = Some(Arc::clone(&f));
                f
            }
        };
        if self.dirty {
            file.set_len(self.size)?;
            self.dirty = false;
        }
        let at = self.size;
        match file.write_all_at(bytes, at).and_then(|()| file.sync_data()) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(at)
            }
            Err(e) => {
                self.dirty = true;
                Err(e)
            }
        }
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
        let live = lock(&self.inner).index.len();
        if self.lines > 2 * live + COMPACT_SLACK {
            self.compact_logged();
        }
    }

    fn compact_logged(&mut self) {
        match self.compact() {
            Ok(()) => tracing::debug!(ids = self.lines, "command-id file compacted"),
            Err(e) => tracing::warn!(file = %self.path.display(), error = %e, "cannot compact the command-id file; will retry"),
        }
    }

    /// Copy the live records' lines, oldest first, into a new file renamed
    /// over the old one, then point the index at it. Only this thread moves
    /// a record onto the disk, so meanwhile records only arrive (not on disk
    /// yet: appended to the new file afterwards) or leave from the front.
    fn compact(&mut self) -> io::Result<()> {
        let Some(old) = self.file.clone() else { return Ok(()) };
        let (first, count) = {
            let inner = lock(&self.inner);
            (inner.index.front, inner.index.len())
        };
        // New offset of record `first + i`, or EMPTY: not copied.
        let mut moved: Vec<u32> = Vec::with_capacity(count);
        let inner = &self.inner;
        let (file, (size, lines)) = crate::fsutil::write_atomic_with(&self.path, |f| {
            let mut out = BufWriter::with_capacity(64 * 1024, f);
            let mut line = Vec::new();
            let (mut size, mut lines) = (0u64, 0usize);
            let mut chunk = Vec::with_capacity(256);
            while moved.len() < count {
                // A chunk at a time: claims and records wait on this lock.
                chunk.clear();
                {
                    let inner = lock(inner);
                    let upto = (moved.len() + 256).min(count);
                    chunk.extend((moved.len()..upto).map(|i| inner.index.get(seq_add(first, i)).copied()));
                }
                for rec in &chunk {
                    match rec {
                        Some(r) if r.len > 0 => {
                            line.resize(r.len as usize, 0);
                            old.read_exact_at(&mut line, r.offset.into())?;
                            out.write_all(&line)?;
                            out.write_all(b"\n")?;
                            moved.push(size as u32);
                            size += u64::from(r.len) + 1;
                            lines += 1;
                        }
                        _ => moved.push(EMPTY),
                    }
                }
            }
            out.flush()?;
            Ok((size, lines))
        })?;
        let file = Arc::new(file);
        {
            let mut inner = lock(&self.inner);
            for (i, &offset) in moved.iter().enumerate() {
                if offset == EMPTY {
                    continue;
                }
                // None: evicted while copying.
                if let Some(rec) = inner.index.get_mut(seq_add(first, i)) {
                    rec.offset = offset;
                }
            }
            inner.file = Some(Arc::clone(&file));
        }
        (self.file, self.size, self.lines, self.dirty) = (Some(file), size, lines, false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(id: &str) -> Value {
        json!({"id": id, "ok": true, "action": "blackout", "duplicate": false, "duration_ms": 1, "devices": {}})
    }

    fn collide(_: &RandomState, _: &str) -> u64 {
        7
    }

    async fn handle(store: &IdStore, id: &str, reply: &Value) {
        let Claim::New(mut p) = store.claim(id).await else { panic!("{id} is new") };
        p.record(reply).await;
    }

    async fn first(store: &IdStore, id: &str) -> Value {
        match store.claim(id).await {
            Claim::Done(r) => r,
            _ => panic!("{id} was handled"),
        }
    }

    async fn is_new(store: &IdStore, id: &str) -> bool {
        matches!(store.claim(id).await, Claim::New(_))
    }

    /// Drop the `n` oldest ids, as a flood past the cap would.
    fn evict_oldest(store: &IdStore, n: usize) {
        let mut inner = store.lock();
        for _ in 0..n {
            inner.drop_oldest();
        }
    }

    fn line_at(id: &str, at: SystemTime) -> String {
        format!("{}\n", record_line(id, at, &reply(id)))
    }

    #[tokio::test]
    async fn handled_ids_survive_a_restart_with_the_first_reply_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdStore::open(dir.path());
        let answer = json!({"id": "a", "ok": true, "action": "apply_scene", "duplicate": false, "duration_ms": 12,
            "devices": {"cam1": {"ok": true}, "key0": {"ok": false, "error": {"code": "timeout", "message": "no ack — “retry”"}}},
            "level": 0.1, "big": 12345678901234567u64, "neg": -1.5e-7});
        handle(&store, "a", &answer).await;
        assert_eq!(first(&store, "a").await.to_string(), answer.to_string());
        // A reply naming every device of a big booth, each with a long
        // reason, is one long line: still ours (lines up to MAX_LINE are).
        let devices: serde_json::Map<String, Value> = (0..64)
            .map(|i| {
                (format!("fixture-{i}"), json!({"ok": false, "error": format!("node offline: {}", "never answered ArtPoll; ".repeat(8))}))
            })
            .collect();
        let long = json!({"id": "long", "ok": false, "action": "apply_scene", "duplicate": false, "devices": devices});
        assert!(long.to_string().len() > 10_000);
        handle(&store, "long", &long).await;
        drop(store);
        let again = IdStore::open(dir.path());
        again.loaded().await;
        assert_eq!(again.len(), 2);
        assert!(!again.is_empty());
        assert_eq!(first(&again, "a").await.to_string(), answer.to_string(), "byte for byte");
        assert_eq!(first(&again, "long").await.to_string(), long.to_string(), "a long line too");
        assert!(is_new(&again, "b").await);
    }

    #[tokio::test]
    async fn a_duplicate_waits_for_the_first_and_an_abandoned_claim_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdStore::open(dir.path());
        let Claim::New(mut first) = store.claim("x").await else { panic!() };
        let Claim::Running(w) = store.claim("x").await else { panic!("running") };
        let waiter = tokio::spawn(w.wait());
        first.record(&reply("x")).await;
        drop(first);
        assert_eq!(waiter.await.unwrap().unwrap()["id"], "x");

        let Claim::New(abandoned) = store.claim("y").await else { panic!() };
        let Claim::Running(w) = store.claim("y").await else { panic!() };
        drop(abandoned);
        assert_eq!(w.wait().await, None);
        assert!(is_new(&store, "y").await);
    }

    #[tokio::test]
    async fn settled_waits_until_the_first_reply_was_sent_not_only_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdStore::open(dir.path());
        // Unknown ids are settled at once.
        tokio::time::timeout(Duration::from_secs(5), store.settled("nobody")).await.expect("settled");
        let Claim::New(mut first) = store.claim("x").await else { panic!() };
        let settled = tokio::spawn({
            let store = store.clone();
            async move { store.settled("x").await }
        });
        first.record(&reply("x")).await;
        // Recorded, but the handler has not sent its reply yet (the waiter
        // has had every chance to run: single-threaded runtime).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!settled.is_finished(), "settled before the reply was sent");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), settled).await.expect("settled after the reply").unwrap();
        tokio::time::timeout(Duration::from_secs(5), store.settled("x")).await.expect("and stays settled");
    }

    #[tokio::test]
    async fn colliding_hashes_are_told_apart_by_the_full_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdStore::open_with(dir.path(), collide);
        for id in ["a", "b", "c"] {
            handle(&store, id, &reply(id)).await;
        }
        for id in ["a", "b", "c"] {
            assert_eq!(first(&store, id).await, reply(id));
        }
        assert!(is_new(&store, "d").await, "same hash as three handled ids, yet new");
        drop(store);
        let again = IdStore::open_with(dir.path(), collide);
        again.loaded().await;
        assert_eq!(again.len(), 3);
        for id in ["a", "b", "c"] {
            assert_eq!(first(&again, id).await, reply(id));
        }
        assert!(is_new(&again, "d").await);
    }

    #[tokio::test]
    async fn compaction_keeps_offsets_right() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        // 30 ids and a second line for one of them (kept: the first).
        let now = SystemTime::now();
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&line_at(&format!("old{i}"), now));
        }
        text.push_str(&line_at("old0", now));
        fs::write(&path, text).unwrap();
        let store = IdStore::open(dir.path());
        store.loaded().await;
        assert_eq!(store.len(), 30);
        handle(&store, "before", &reply("before")).await;
        // The 20 oldest go.
        evict_oldest(&store, 20);
        store.compact_now().await;
        let kept = fs::read_to_string(&path).unwrap();
        assert_eq!(kept.lines().count(), 11, "evicted lines and the duplicate gone: {kept}");
        handle(&store, "after", &reply("after")).await;
        for id in ["old20", "old29", "before", "after"] {
            assert_eq!(first(&store, id).await, reply(id), "{id}");
        }
        assert!(is_new(&store, "old0").await);
        drop(store);
        let again = IdStore::open(dir.path());
        again.loaded().await;
        assert_eq!(again.len(), 12);
        for id in ["old20", "old29", "before", "after"] {
            assert_eq!(first(&again, id).await, reply(id), "{id} after a restart");
        }
    }

    #[tokio::test]
    async fn a_torn_last_line_is_dropped_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = line_at("a", SystemTime::now());
        fs::write(&path, format!("{good}{{\"id\":\"b\",\"at")).unwrap();
        let store = IdStore::open(dir.path());
        assert_eq!(first(&store, "a").await, reply("a"));
        assert!(is_new(&store, "b").await);
        assert_eq!(fs::read_to_string(&path).unwrap(), good, "torn tail cut off");
        handle(&store, "c", &reply("c")).await;
        drop(store);
        // The next append started on a line of its own: the file loads whole.
        let again = IdStore::open(dir.path());
        again.loaded().await;
        assert_eq!(again.len(), 2);
        assert_eq!(first(&again, "c").await, reply("c"));
    }

    #[tokio::test]
    async fn a_corrupt_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        fs::write(&path, format!("garbage\n{}", line_at("a", SystemTime::now()))).unwrap();
        let store = IdStore::open(dir.path());
        store.loaded().await;
        assert!(store.is_empty());
        assert!(is_new(&store, "a").await);
        assert!(!path.exists());
        let aside: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).collect();
        assert!(aside.iter().any(|e| e.file_name().to_string_lossy().contains("corrupt")));
    }

    #[tokio::test]
    async fn ids_are_kept_24_hours_and_at_least_min_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let old = SystemTime::now() - KEEP_FOR - Duration::from_secs(60);
        let recent = SystemTime::now() - KEEP_FOR + Duration::from_secs(60);
        let mut text = String::new();
        for i in 0..MIN_IDS + 5 {
            text.push_str(&line_at(&format!("old{i}"), old));
        }
        for i in 0..3 {
            text.push_str(&line_at(&format!("day{i}"), recent));
        }
        fs::write(&path, text).unwrap();
        let store = IdStore::open(dir.path());
        store.loaded().await;
        assert_eq!(store.len(), MIN_IDS, "old ids beyond the floor go, the 23-hour-old stay");
        assert!(is_new(&store, "old7").await, "among the 8 oldest");
        assert_eq!(first(&store, "old8").await, reply("old8"), "kept by the floor");
        assert_eq!(first(&store, "day2").await, reply("day2"));
    }

    /// CONTRACT §5: "kept for ≥24 h". Written in hours, not in terms of
    /// [`KEEP_FOR`], so shortening the retention fails here.
    #[test]
    fn every_id_younger_than_24_hours_is_kept_beyond_the_floor() {
        const HOUR: Duration = Duration::from_secs(3600);
        let now = SystemTime::now();
        let mut inner = Inner::new(keyed_hash);
        for i in 0..MIN_IDS + 5 {
            let id = format!("d{i}");
            let hash = inner.hash(&id);
            inner.add(hash, now - 24 * HOUR + Duration::from_secs(60), id.into());
        }
        inner.evict(now);
        assert_eq!(inner.index.len(), MIN_IDS + 5, "a day's ids, even past the floor, all stay");
        // The day after, the floor is what remains.
        inner.evict(now + 2 * HOUR);
        assert_eq!(inner.index.len(), MIN_IDS);
    }

    #[test]
    fn the_index_keeps_the_cap_and_the_floor() {
        let mut inner = Inner::new(keyed_hash);
        let old = SystemTime::now() - KEEP_FOR - Duration::from_secs(60);
        for i in 0..MAX_IDS + 5 {
            let id = format!("c{i}");
            let hash = inner.hash(&id);
            inner.add(hash, old, id.into());
        }
        assert_eq!(inner.index.len(), MAX_IDS, "cap");
        assert_eq!(inner.unsaved.len(), MAX_IDS);
        inner.evict(SystemTime::now());
        assert_eq!(inner.index.len(), MIN_IDS, "old ids beyond the floor go");
        assert_eq!(inner.unsaved.len(), MIN_IDS);
        let newest = format!("c{}", MAX_IDS + 4);
        assert_eq!(inner.index.candidates(inner.hash(&newest)).len(), 1, "newest kept");
        assert!(inner.index.candidates(inner.hash("c5")).is_empty(), "oldest gone, from the table too");
        let in_table = inner.index.slots.iter().filter(|&&s| s != EMPTY).count();
        assert_eq!(in_table, MIN_IDS);
    }

    /// The table spreads ids over its slots: probe runs stay short (a run
    /// is read on every claim). With keyed hashes of 20 000 ids in 32 768
    /// slots the longest run is a few hundred slots at most; all ids in one
    /// home would make it 20 000.
    #[test]
    fn probe_runs_stay_short_when_the_index_is_full() {
        let mut inner = Inner::new(keyed_hash);
        let now = SystemTime::now();
        for i in 0..MAX_IDS {
            let id = format!("booking-{i}");
            let hash = inner.hash(&id);
            inner.add(hash, now, id.into());
        }
        let (mut longest, mut run) = (0, 0);
        for &s in inner.index.slots.iter().chain(&inner.index.slots) {
            run = if s == EMPTY { 0 } else { run + 1 };
            longest = longest.max(run);
        }
        assert!(longest < 2_000, "a probe run of {longest} slots");
    }

    /// Forgetting an id that is not at its home slot (a failing disk drops
    /// the oldest unsaved lines) takes that one out and no other; when its
    /// record later leaves the front, it is already gone from the table.
    #[test]
    fn an_id_taken_out_of_the_middle_of_a_run_leaves_the_rest_findable() {
        let mut index = Index::default();
        let h = 5u64;
        // a, b, c share home 5 (slots 5, 6, 7); d's home is 6 (slot 8).
        let [a, b, c] = [(); 3].map(|_| index.push(Rec::new(h, 0)));
        let d = index.push(Rec::new(h + 1, 0));
        index.unslot(h, b);
        assert_eq!((index.candidates(h), index.candidates(h + 1)), (vec![a, c], vec![d]));
        assert_eq!(index.pop_front(), Some(a));
        assert_eq!(index.pop_front(), Some(b), "b's record leaves the front; it is no longer in the table");
        assert_eq!((index.candidates(h), index.candidates(h + 1)), (vec![c], vec![d]));
        assert_eq!(index.slots.iter().filter(|&&s| s != EMPTY).count(), 2);
    }

    #[test]
    fn table_deletions_keep_every_probe_run_reachable() {
        // All in one run of colliding and neighbouring homes, then removed
        // from the front: every remaining record stays findable.
        let mut index = Index::default();
        let hashes: Vec<u64> = (0..200u64).map(|i| (MASK as u64 - 3) + (i % 7)).collect();
        let seqs: Vec<u32> = hashes.iter().map(|&h| index.push(Rec::new(h, 0))).collect();
        for k in 0..hashes.len() {
            for (j, (&h, &s)) in hashes.iter().zip(&seqs).enumerate().skip(k) {
                assert!(index.candidates(h).contains(&s), "record {j} lost after {k} removals");
            }
            index.pop_front();
        }
        assert!(index.slots.iter().all(|&s| s == EMPTY));
    }

    /// Files in `dir` set aside as corrupt, with their lengths.
    fn set_aside_files(dir: &Path) -> Vec<u64> {
        let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
        names.filter(|p| p.to_string_lossy().contains(".corrupt-")).map(|p| fs::metadata(p).unwrap().len()).collect()
    }

    #[tokio::test]
    async fn an_overlong_line_sets_the_whole_file_aside_and_never_cuts_it() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        // Not a torn last line: a line past MAX_LINE in the middle.
        let text = format!("{}{}\n{}", line_at("a", now), "x".repeat(MAX_LINE + 10), line_at("b", now));
        fs::write(dir.path().join(FILE_NAME), &text).unwrap();
        let store = IdStore::open(dir.path());
        store.loaded().await;
        assert!(store.is_empty(), "nothing read from a file that is not ours");
        assert_eq!(set_aside_files(dir.path()), [text.len() as u64], "kept whole");
    }

    #[tokio::test]
    async fn a_file_over_the_size_bound_is_set_aside_unread() {
        let dir = tempfile::tempdir().unwrap();
        // Sparse: no disk used.
        File::create(dir.path().join(FILE_NAME)).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
        let store = IdStore::open(dir.path());
        store.loaded().await;
        assert!(store.is_empty());
        assert_eq!(set_aside_files(dir.path()), [MAX_FILE_BYTES + 1]);
        handle(&store, "a", &reply("a")).await;
        assert_eq!(first(&store, "a").await, reply("a"), "a new file serves");
    }

    /// Records saved together (group commit) each point at their own line.
    #[tokio::test]
    async fn records_saved_in_one_batch_are_each_found_at_their_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = IdStore::open(dir.path());
        let ids: Vec<String> = (0..64).map(|i| format!("batch-{i}")).collect();
        // Sent at once: the writer takes what is queued while it syncs.
        let replies: Vec<Value> = ids.iter().map(|id| reply(id)).collect();
        futures::future::join_all(ids.iter().zip(&replies).map(|(id, r)| handle(&store, id, r))).await;
        assert!(store.lock().unsaved.is_empty(), "all on disk: duplicates read their line back");
        for id in &ids {
            assert_eq!(first(&store, id).await, reply(id), "{id}");
        }
    }

    /// The file is rewritten once evicted and duplicate lines make up most
    /// of it (more than twice the live ids plus COMPACT_SLACK), not before.
    #[tokio::test]
    async fn the_file_is_compacted_when_dead_lines_dominate_and_not_before() {
        let now = SystemTime::now();
        let lines = |path: &Path| fs::read_to_string(path).unwrap().lines().count();
        // (distinct ids, extra lines repeating an id, compacted after one more id)
        for (live, repeats, compacted) in [(1, COMPACT_SLACK + 200, true), (100, COMPACT_SLACK + 50, false)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(FILE_NAME);
            let mut text: String = (0..live).map(|i| line_at(&format!("id{i}"), now)).collect();
            text.push_str(&line_at("id0", now).repeat(repeats));
            fs::write(&path, text).unwrap();
            let store = IdStore::open(dir.path());
            handle(&store, "new", &reply("new")).await;
            let expect = if compacted { live + 1 } else { live + repeats + 1 };
            assert_eq!(lines(&path), expect, "{live} ids, {repeats} repeated lines");
            assert_eq!(first(&store, "new").await, reply("new"));
            assert_eq!(first(&store, "id0").await, reply("id0"));
        }
    }

    /// The writer never grows the file beyond its bound (offsets are 32-bit):
    /// a line that does not fit stays in memory and still answers duplicates.
    #[tokio::test]
    async fn the_file_never_grows_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let bound = 4096;
        let store = IdStore::open_bounded(dir.path(), keyed_hash, bound);
        let line = line_at("id-00", SystemTime::now()).len() as u64;
        let ids: Vec<String> = (0..2 * bound / line).map(|i| format!("id-{i:02}")).collect();
        for id in &ids {
            handle(&store, id, &reply(id)).await;
            assert!(fs::metadata(&path).unwrap().len() <= bound, "past the bound after {id}");
        }
        assert!(fs::metadata(&path).unwrap().len() > bound - line, "filled up to the bound");
        for id in &ids {
            assert_eq!(first(&store, id).await, reply(id), "{id}");
        }
    }

    /// Lines appended since start-up count toward compaction: once the ids
    /// they hold are evicted, the file is rewritten.
    #[tokio::test]
    async fn lines_appended_since_start_count_toward_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let store = IdStore::open(dir.path());
        let n = COMPACT_SLACK + 10;
        // One at a time: one line per save.
        for i in 0..n {
            let id = format!("s{i}");
            handle(&store, &id, &reply(&id)).await;
        }
        evict_oldest(&store, n);
        handle(&store, "last", &reply("last")).await;
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1, "only the live id is left");
        assert_eq!(first(&store, "last").await, reply("last"));
        // Counted again from the rewritten file's one line: 1 + 1 001 + 1
        // lines for one live id is one past the threshold (2 × 1 + 1 000).
        for i in 0..COMPACT_SLACK + 1 {
            let id = format!("t{i}");
            handle(&store, &id, &reply(&id)).await;
        }
        evict_oldest(&store, COMPACT_SLACK + 2);
        handle(&store, "again", &reply("again")).await;
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1, "compacted a second time");
    }

    /// A compaction while a record is not on disk yet (recorded, its save
    /// still queued) copies only lines that are; the record is appended
    /// afterwards, and the file reads back whole.
    #[tokio::test]
    async fn a_compaction_skips_records_not_on_disk_yet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let store = IdStore::open(dir.path());
        handle(&store, "saved", &reply("saved")).await;
        let line = record_line("queued", SystemTime::now(), &reply("queued")).into_boxed_str();
        let seq = {
            let mut inner = store.lock();
            let hash = inner.hash("queued");
            inner.add(hash, SystemTime::now(), line)
        };
        store.compact_now().await;
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.lines().count() == 1 && text.contains(r#""id":"saved""#), "only the saved line: {text:?}");
        let (done, durable) = oneshot::channel();
        store.writer.send(Job::Save { seq, done }).await.unwrap();
        durable.await.unwrap();
        drop(store);
        let again = IdStore::open(dir.path());
        again.loaded().await;
        assert_eq!(again.len(), 2, "both read back: {:?}", fs::read_to_string(&path));
        assert_eq!(first(&again, "queued").await, reply("queued"));
    }

    #[tokio::test]
    async fn a_failing_disk_keeps_replies_in_memory_bounded() {
        let dir = tempfile::tempdir().unwrap();
        // Every write fails with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", dir.path().join(FILE_NAME)).unwrap();
        let store = IdStore::open(dir.path());
        for i in 0..MAX_UNSAVED + 3 {
            let id = format!("f{i}");
            handle(&store, &id, &reply(&id)).await;
        }
        assert_eq!(first(&store, "f3").await, reply("f3"), "still answered from memory");
        assert!(is_new(&store, "f2").await, "the oldest beyond the bound are forgotten");
        assert_eq!(store.lock().unsaved.len(), MAX_UNSAVED);
    }
}
