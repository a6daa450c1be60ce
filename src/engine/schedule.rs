//! The schedule: scenes waiting for their `at` (the day's slot starts), as
//! pure data. The engine asks it what is due at an instant it passes in; the
//! schedule never reads a clock, never sleeps and never touches a file, so
//! its rules are tested without time or I/O.
//!
//! Rules (CONTRACT §7):
//! - at most [`CAPACITY`] wait; an `at` beyond [`HORIZON`] is refused (by
//!   the planner);
//! - one for the same `at`, or the same (non-null) `slot`, replaces the
//!   earlier; one with the same id replaces itself (a redelivered command);
//! - immediate commands never touch it; only `cancel` withdraws one;
//! - when several are due at once (the booth was down or busy), the latest
//!   applies and the earlier ones are answered as superseded by it.
//!
//! The on-disk form ([`Saved`]) is the engine's to write atomically.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::plan::SceneRef;
use crate::command::{CommandError, ErrorCode, Origin};

/// How many scheduled scenes may wait at once.
pub const CAPACITY: usize = 1000;
/// How far ahead an `at` may be.
pub const HORIZON: Duration = Duration::from_secs(7 * 24 * 3600);

/// One scheduled scene; `T` is what the engine keeps beside it at run time
/// (the caller's reply), `()` once restored from disk.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    pub id: String,
    pub origin: Origin,
    pub at: SystemTime,
    pub scene: SceneRef,
    pub extra: T,
}

/// Why a waiting entry left the schedule without running.
#[derive(Debug)]
pub(crate) struct Replaced<T> {
    pub entry: Entry<T>,
    /// The id of the entry that took its place.
    pub by: String,
}

#[derive(Debug)]
pub(crate) struct Schedule<T> {
    by_id: BTreeMap<String, Entry<T>>,
}

impl<T> Default for Schedule<T> {
    fn default() -> Self {
        Schedule { by_id: BTreeMap::new() }
    }
}

impl<T> Schedule<T> {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether an entry (`id`, `at`) fits, as the refusal its caller gets.
    /// Checked before anything is persisted, so a refusal changes nothing.
    /// (The horizon is the planner's: it refuses before the scene is looked up.)
    pub fn check(&self, id: &str, at: SystemTime, slot: Option<&serde_json::Value>) -> Result<(), CommandError> {
        if self.by_id.len() >= CAPACITY && !self.by_id.contains_key(id) && self.replaced_by(id, at, slot).is_empty() {
            return Err(CommandError::new(ErrorCode::Busy, format!("{CAPACITY} scenes are already scheduled; cancel some first")));
        }
        Ok(())
    }

    /// Ids of entries a new one (`id`, `at`, `slot`) would replace.
    fn replaced_by(&self, id: &str, at: SystemTime, slot: Option<&serde_json::Value>) -> Vec<String> {
        self.by_id
            .values()
            .filter(|e| e.id != id && (e.at == at || (slot.is_some() && e.scene.slot.as_ref() == slot)))
            .map(|e| e.id.clone())
            .collect()
    }

    /// Add `entry` (after [`check`](Self::check)); returns the entries it
    /// replaced (same `at` or same `slot`), each to be answered, and the
    /// entry it overwrote with the same id (the same command, redelivered).
    pub fn insert(&mut self, entry: Entry<T>) -> (Vec<Replaced<T>>, Option<Entry<T>>) {
        let gone = self.replaced_by(&entry.id, entry.at, entry.scene.slot.as_ref());
        let replaced =
            gone.into_iter().filter_map(|id| self.by_id.remove(&id)).map(|e| Replaced { entry: e, by: entry.id.clone() }).collect();
        let previous = self.by_id.insert(entry.id.clone(), entry);
        (replaced, previous)
    }

    /// Take back an [`insert`](Self::insert) (its entry could not be saved):
    /// what it replaced is put back; returns the withdrawn entry's `extra`.
    /// Also puts back a cancelled entry (`id` then names nothing new).
    pub fn undo(&mut self, id: &str, previous: Option<Entry<T>>, replaced: Vec<Replaced<T>>) -> Option<T> {
        let withdrawn = self.by_id.remove(id).map(|e| e.extra);
        for e in previous.into_iter().chain(replaced.into_iter().map(|r| r.entry)) {
            self.by_id.insert(e.id.clone(), e);
        }
        withdrawn
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Entry<T>> {
        self.by_id.get_mut(id)
    }

    pub fn cancel(&mut self, id: &str) -> Option<Entry<T>> {
        self.by_id.remove(id)
    }

    /// The earliest `at`, for the engine's timer.
    pub fn next_at(&self) -> Option<SystemTime> {
        self.by_id.values().map(|e| e.at).min()
    }

    /// Take everything due at `now`: the latest to apply, and the earlier
    /// ones it supersedes (both were due at once).
    pub fn take_due(&mut self, now: SystemTime) -> Option<(Entry<T>, Vec<Replaced<T>>)> {
        let mut due: Vec<Entry<T>> = Vec::new();
        let ids: Vec<String> = self.by_id.values().filter(|e| e.at <= now).map(|e| e.id.clone()).collect();
        for id in ids {
            due.extend(self.by_id.remove(&id));
        }
        due.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        let latest = due.pop()?;
        let earlier = due.into_iter().map(|e| Replaced { entry: e, by: latest.id.clone() }).collect();
        Some((latest, earlier))
    }

    /// Everything waiting, earliest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<T>> {
        let mut v: Vec<&Entry<T>> = self.by_id.values().collect();
        v.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        v.into_iter()
    }

    /// The on-disk form.
    pub fn saved(&self) -> Saved {
        Saved {
            version: 1,
            entries: self
                .iter()
                .map(|e| SavedEntry {
                    id: e.id.clone(),
                    origin: e.origin.as_str().to_string(),
                    at_ms: e.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                    scene: e.scene.name.clone(),
                    fade_ms: e.scene.fade.map(|f| f.as_millis() as u64),
                    slot: e.scene.slot.clone(),
                })
                .collect(),
        }
    }
}

impl Entry<()> {
    /// The same entry with run-time data beside it.
    pub fn with<U>(self, extra: U) -> Entry<U> {
        Entry { id: self.id, origin: self.origin, at: self.at, scene: self.scene, extra }
    }
}

impl Schedule<()> {
    /// Rebuild from the on-disk form; entries beyond the capacity are dropped
    /// (a file edited by hand), the latest first.
    pub fn restore(saved: Saved) -> Schedule<()> {
        let mut s = Schedule::default();
        for e in saved.entries.into_iter().take(CAPACITY) {
            let origin = match e.origin.as_str() {
                "http" => Origin::Http,
                "cli" => Origin::Cli,
                "startup" => Origin::Startup,
                _ => Origin::Mqtt,
            };
            let entry = Entry {
                id: e.id,
                origin,
                at: UNIX_EPOCH + Duration::from_millis(e.at_ms),
                scene: SceneRef { name: e.scene, fade: e.fade_ms.map(Duration::from_millis), slot: e.slot },
                extra: (),
            };
            s.by_id.insert(entry.id.clone(), entry);
        }
        s
    }

    /// Attach run-time data to every entry.
    pub fn with_extra<U>(self, mut f: impl FnMut(&Entry<()>) -> U) -> Schedule<U> {
        Schedule {
            by_id: self
                .by_id
                .into_iter()
                .map(|(id, e)| {
                    let extra = f(&e);
                    (id, e.with(extra))
                })
                .collect(),
        }
    }
}

/// `state_dir/schedule.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Saved {
    pub version: u32,
    pub entries: Vec<SavedEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedEntry {
    pub id: String,
    pub origin: String,
    /// Milliseconds since the Unix epoch (UTC).
    pub at_ms: u64,
    pub scene: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fade_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn entry(id: &str, at: SystemTime, slot: Option<serde_json::Value>) -> Entry<()> {
        Entry { id: id.into(), origin: Origin::Mqtt, at, scene: SceneRef { name: format!("scene-{id}"), fade: None, slot }, extra: () }
    }

    fn ids<T>(s: &Schedule<T>) -> Vec<String> {
        s.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn many_wait_earliest_first_and_only_the_same_at_or_slot_replaces() {
        let mut s = Schedule::default();
        assert!(s.insert(entry("c", t(300), Some(json!({"booking": "b-3"})))).0.is_empty());
        assert!(s.insert(entry("a", t(100), Some(json!({"booking": "b-1"})))).0.is_empty());
        assert!(s.insert(entry("b", t(200), None)).0.is_empty());
        assert_eq!(ids(&s), ["a", "b", "c"]);
        assert_eq!(s.next_at(), Some(t(100)));
        // Same `at` as b: b is replaced.
        let (r, _) = s.insert(entry("b2", t(200), None));
        assert_eq!(r.iter().map(|r| (r.entry.id.as_str(), r.by.as_str())).collect::<Vec<_>>(), [("b", "b2")]);
        // Same slot as c, another time: c is replaced (the slot moved).
        let (r, _) = s.insert(entry("c2", t(350), Some(json!({"booking": "b-3"}))));
        assert_eq!(r.iter().map(|r| r.entry.id.as_str()).collect::<Vec<_>>(), ["c"]);
        // A null slot matches nothing; the same id overwrites itself silently.
        let (r, previous) = s.insert(entry("b2", t(200), None));
        assert!(r.is_empty() && previous.is_some_and(|p| p.id == "b2"));
        assert_eq!(ids(&s), ["a", "b2", "c2"]);
        // Undone (could not be saved): what it replaced comes back.
        let (r, previous) = s.insert(entry("d", t(350), Some(json!({"booking": "b-3"}))));
        assert_eq!(r.len(), 1);
        assert!(s.undo("d", previous, r).is_some());
        assert_eq!(ids(&s), ["a", "b2", "c2"]);
        assert_eq!(s.cancel("a").map(|e| e.id), Some("a".into()));
        assert!(s.cancel("a").is_none());
        assert_eq!(ids(&s), ["b2", "c2"]);
    }

    #[test]
    fn a_full_schedule_refuses_before_anything_changes() {
        let mut s = Schedule::default();
        for i in 0..CAPACITY {
            assert!(s.check(&format!("e{i}"), t(10 + i as u64), None).is_ok());
            s.insert(entry(&format!("e{i}"), t(10 + i as u64), None));
        }
        assert_eq!(s.check("new", t(5_000), None).unwrap_err().code, ErrorCode::Busy);
        // Full, yet a replacement (same `at`) or a redelivery (same id) still fits.
        assert!(s.check("new", t(10), None).is_ok());
        assert!(s.check("e3", t(5_000), None).is_ok());
        assert_eq!(s.len(), CAPACITY);
    }

    #[test]
    fn only_what_is_due_is_taken_and_the_latest_of_several_wins() {
        let mut s = Schedule::default();
        for (id, at) in [("a", 100), ("b", 200), ("c", 300)] {
            s.insert(entry(id, t(at), None));
        }
        assert!(s.take_due(t(99)).is_none());
        let (run, earlier) = s.take_due(t(100)).unwrap();
        assert_eq!((run.id.as_str(), earlier.len()), ("a", 0));
        // The booth was down from 150 to 350: b and c both due; c applies.
        let (run, earlier) = s.take_due(t(350)).unwrap();
        assert_eq!(run.id, "c");
        assert_eq!(earlier.iter().map(|r| (r.entry.id.as_str(), r.by.as_str())).collect::<Vec<_>>(), [("b", "c")]);
        assert_eq!(s.len(), 0);
        assert!(s.next_at().is_none());
    }

    #[test]
    fn the_saved_form_round_trips() {
        let mut s = Schedule::default();
        s.insert(Entry {
            id: "m-1".into(),
            origin: Origin::Http,
            at: t(100) + Duration::from_millis(250),
            scene: SceneRef { name: "intro".into(), fade: Some(Duration::from_millis(800)), slot: Some(json!({"b": 1})) },
            extra: (),
        });
        s.insert(entry("m-0", t(50), None));
        for (i, origin) in [Origin::Mqtt, Origin::Http, Origin::Cli, Origin::Startup].into_iter().enumerate() {
            s.insert(Entry { origin, ..entry(&format!("o-{i}"), t(200 + i as u64), None) });
        }
        let saved = s.saved();
        let text = serde_json::to_string(&saved).unwrap();
        let back = Schedule::restore(serde_json::from_str(&text).unwrap());
        assert_eq!(back.saved(), saved);
        let first = back.iter().next().unwrap();
        assert_eq!((first.id.as_str(), first.at), ("m-0", t(50)));
        let second = back.iter().nth(1).unwrap();
        assert_eq!((second.origin, second.scene.fade), (Origin::Http, Some(Duration::from_millis(800))));
        let origins: Vec<Origin> = back.iter().skip(2).map(|e| e.origin).collect();
        assert_eq!(origins, [Origin::Mqtt, Origin::Http, Origin::Cli, Origin::Startup]);
        // Unknown keys are refused (a file from a newer studiod is not half-read).
        assert!(serde_json::from_str::<Saved>(r#"{"version":1,"entries":[],"extra":1}"#).is_err());
    }
}
