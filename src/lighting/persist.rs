//! `state_dir/last-look.json`: the last target look and grand master, so a
//! restart does not flash the room to black, to profile defaults or to a
//! full master before a scene arrives.
//!
//! Format (version 1): `{"version":1,"grand_master":0.8,"look":{"key":{"intensity":0.85}}}`;
//! attributes by their config names, values normalised 0–1; `grand_master`
//! is optional (1.0).
//!
//! Written atomically (temp file in the same directory, fsync, rename, fsync
//! the directory) so a power cut leaves either the old or the new file, never
//! a torn one. Writes are debounced by [`run_persister`]: fades and the
//! technician's fader produce many looks per second, the disk needs one.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::fixture::Attribute;
use super::Look;

pub const FILE_NAME: &str = "last-look.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a valid last-look file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// On-disk shape; attributes by their config name ("intensity", "cct", …).
#[derive(Serialize, Deserialize)]
struct File1 {
    version: u32,
    #[serde(default = "full")]
    grand_master: f64,
    look: BTreeMap<String, BTreeMap<String, f64>>,
}

fn full() -> f64 {
    1.0
}

/// What is persisted: the target look and the grand master.
#[derive(Debug, Clone, PartialEq)]
pub struct LastLook {
    pub look: Look,
    pub grand_master: f64,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Load the persisted look. `Ok(None)` when there is none yet.
pub fn load(state_dir: &Path) -> Result<Option<LastLook>, PersistError> {
    let path = path(state_dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PersistError::Io { path, source }),
    };
    let corrupt = |reason: String| PersistError::Corrupt { path: path.clone(), reason };
    let file: File1 = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(format!("unknown version {}", file.version)));
    }
    if !(0.0..=1.0).contains(&file.grand_master) {
        return Err(corrupt(format!("grand_master = {} is outside 0.0–1.0", file.grand_master)));
    }
    let mut look = Look::new();
    for (fixture, attrs) in file.look {
        let entry = look.entry(fixture.clone()).or_default();
        for (attr, v) in attrs {
            // A value outside 0–1 means the file is not ours (or damaged):
            // refuse the whole file rather than guess.
            if !(0.0..=1.0).contains(&v) {
                return Err(corrupt(format!("{fixture}.{attr} = {v} is outside 0.0–1.0")));
            }
            entry.insert(Attribute::parse(&attr), v);
        }
    }
    Ok(Some(LastLook { look, grand_master: file.grand_master }))
}

/// Write the look atomically (blocking; call from `spawn_blocking`).
pub fn save(state_dir: &Path, last: &LastLook) -> Result<(), PersistError> {
    let file = File1 {
        version: FORMAT_VERSION,
        grand_master: last.grand_master,
        look: last.look.iter().map(|(f, attrs)| (f.clone(), attrs.iter().map(|(a, v)| (a.name().to_string(), *v)).collect())).collect(),
    };
    let final_path = path(state_dir);
    // serde_json cannot fail on string keys and finite f64.
    let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
    crate::fsutil::write_atomic(&final_path, &json).map_err(|source| PersistError::Io { path: final_path.clone(), source })
}

/// Persist every new value of `looks`, at most one write per `debounce`.
/// On cancel (or when the sender goes away) the latest unsaved look is
/// written at once, so the lighting task can await this before exiting.
pub async fn run_persister(state_dir: PathBuf, mut looks: watch::Receiver<LastLook>, debounce: Duration, cancel: CancellationToken) {
    // The receiver starts with the initial look marked as seen, so only looks
    // sent after `spawn` are written (a look restored from disk is not
    // rewritten at every start).
    let mut saved: Option<LastLook> = None;
    loop {
        let closed = tokio::select! {
            r = looks.changed() => r.is_err(),
            _ = cancel.cancelled() => true,
        };
        if !closed {
            // Coalesce a burst of changes; cut short by shutdown.
            tokio::select! {
                _ = tokio::time::sleep(debounce) => {}
                _ = cancel.cancelled() => {}
            }
        }
        let look = looks.borrow_and_update().clone();
        if saved.as_ref() != Some(&look) {
            let dir = state_dir.clone();
            let to_save = look.clone();
            match tokio::task::spawn_blocking(move || save(&dir, &to_save)).await {
                Ok(Ok(())) => saved = Some(look),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not persist the last look"),
                Err(e) => tracing::warn!(error = %e, "persisting the last look panicked"),
            }
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LastLook {
        let mut l = Look::new();
        l.entry("key".into()).or_default().insert(Attribute::Intensity, 0.85);
        l.entry("key".into()).or_default().insert(Attribute::Other("tint".into()), 0.5);
        LastLook { look: l, grand_master: 0.8 }
    }

    #[test]
    fn round_trip_and_no_temp_file_left() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        save(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "{not json",
            r#"{"version":2,"look":{}}"#,
            r#"{"version":1,"look":{"key":{"intensity":1.5}}}"#,
            r#"{"version":1,"grand_master":-1,"look":{}}"#,
        ] {
            fs::write(path(dir.path()), text).unwrap();
            assert!(matches!(load(dir.path()), Err(PersistError::Corrupt { .. })), "{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn persister_debounces_and_flushes_on_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = watch::channel(LastLook { look: Look::new(), grand_master: 1.0 });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_persister(dir.path().to_path_buf(), rx, Duration::from_secs(1), cancel.clone()));
        let mut l = sample();
        tx.send(l.clone()).unwrap();
        l.look.get_mut("key").unwrap().insert(Attribute::Intensity, 0.25);
        tx.send(l.clone()).unwrap();
        // Let the persister wait out its debounce and write (a blocking task,
        // so real time passes too: wait for the file, bounded).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while load(dir.path()).unwrap().as_ref() != Some(&l) {
            assert!(std::time::Instant::now() < deadline, "debounced write never happened: {:?}", load(dir.path()));
            tokio::task::yield_now().await;
        }
        l.look.get_mut("key").unwrap().insert(Attribute::Intensity, 0.75);
        tx.send(l.clone()).unwrap();
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(l), "final look flushed on cancel");
    }
}
