//! Dead letters (ours): jobs that failed for good (a final 4xx, retries
//! exhausted, too old), kept with their last error, attempts and time, so
//! that an operator can list, replay or purge them. One store per pool,
//! shared by every backend; bounded: when full, the oldest letter is evicted
//! (counted) to make room.
//!
//! The store keeps the job itself (its event ID, tag and request), so a
//! replay re-queues exactly what failed, with the same ID.
//!
//! When the pool spools, the store is mirrored on disk
//! ([`super::spool::letters`], written by the spool's writer thread): every
//! change is sent to the writer while the store's lock is held, so the disk
//! sees them in the store's order; letters of an earlier run are loaded at
//! start. Without a spool it is a memory ring only.

use super::spool::{LetterSink, Restored};
use crate::EventId;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Letters a pool keeps unless configured otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// What the store needs of a backend's job.
pub(crate) trait Letter: Send + 'static {
    type Tag;
    fn id(&self) -> EventId;
    fn tag(&self) -> &Self::Tag;
    /// Where the job goes, for people: a path, an exchange and routing key,
    /// a topic. Never holds credentials.
    fn target(&self) -> String;
    /// Bytes of the job's payload.
    fn size(&self) -> usize;
    /// Ready for a new round of attempts (a replay).
    fn reset(&mut self);
}

/// One dead letter as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterInfo<T> {
    pub id: EventId,
    pub tag: T,
    /// The last error, as the backend's outcomes name it.
    pub reason: String,
    pub attempts: u32,
    /// When it failed for good, in ms since the Unix epoch.
    pub failed_at_ms: u64,
    pub target: String,
    pub size: usize,
}

/// Which letters a replay or a purge takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    All,
    Ids(Vec<EventId>),
}

impl Select {
    fn matches(&self, id: EventId) -> bool {
        match self {
            Select::All => true,
            Select::Ids(ids) => ids.contains(&id),
        }
    }
}

/// A snapshot of a store's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadLetterStats {
    /// Letters held now.
    pub dead_letters: u64,
    /// Jobs that became dead letters since the pool started.
    pub dead_lettered: u64,
    /// Letters evicted to make room (the store was full).
    pub dead_letters_evicted: u64,
    /// Letters re-queued by a replay.
    pub dead_letters_replayed: u64,
    /// Letters removed by a purge.
    pub dead_letters_purged: u64,
}

struct Entry<J> {
    job: J,
    reason: Cow<'static, str>,
    attempts: u32,
    failed_at_ms: u64,
    /// Its event ID and its record's size, when it is on disk.
    disk: Option<(EventId, u64)>,
}

#[derive(Default)]
struct Letters<J> {
    entries: VecDeque<Entry<J>>,
    /// Sum of the entries' `bytes`.
    bytes: u64,
}

impl<J> Letters<J> {
    fn pop_front(&mut self) -> Option<Entry<J>> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.bytes();
        Some(entry)
    }

    fn push_back(&mut self, entry: Entry<J>) {
        self.bytes += entry.bytes();
        self.entries.push_back(entry);
    }
}

pub(crate) struct DeadLetters<J> {
    letters: Mutex<Letters<J>>,
    capacity: usize,
    /// Set once, when the pool spools.
    disk: OnceLock<LetterSink<J>>,
    dead_lettered: AtomicU64,
    evicted: AtomicU64,
    replayed: AtomicU64,
    purged: AtomicU64,
}

impl<J> DeadLetters<J> {
    pub fn new(capacity: usize) -> Self {
        DeadLetters {
            letters: Mutex::new(Letters {
                entries: VecDeque::new(),
                bytes: 0,
            }),
            capacity,
            disk: OnceLock::new(),
            dead_lettered: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            purged: AtomicU64::new(0),
        }
    }

    // A panic while holding the lock cannot leave an entry half-written
    // (entries are moved in and out whole), so a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Letters<J>> {
        self.letters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a job that failed for good. A capacity of 0 keeps nothing (the
    /// job is only counted as evicted). With a spool, the letter is also
    /// written to disk (its event leaves the spool once it is there), and
    /// the store keeps its letters' records within the disk budget.
    pub fn put(&self, job: J, reason: impl Into<Cow<'static, str>>, attempts: u32) {
        self.dead_lettered.fetch_add(1, Relaxed);
        let reason = reason.into();
        let failed_at_ms = now_ms();
        let disk = self.disk.get();
        let letter = disk.map(|d| d.encode(&job, &reason, attempts, failed_at_ms));
        let bytes = letter.as_ref().map_or(0, |l| l.bytes());
        let budget = disk.map_or(u64::MAX, |d| d.budget());
        if self.capacity == 0 || bytes > budget {
            self.evicted.fetch_add(1, Relaxed);
            if let (Some(disk), Some(letter)) = (disk, letter) {
                disk.drop_event(letter.spool_seq);
            }
            return;
        }
        let entry = Entry {
            job,
            reason,
            attempts,
            failed_at_ms,
            disk: letter.as_ref().map(|l| (l.id, bytes)),
        };
        let mut letters = self.lock();
        let mut evicted = Vec::new();
        while letters.entries.len() >= self.capacity || letters.bytes + bytes > budget {
            let Some(oldest) = letters.pop_front() else {
                break;
            };
            self.evicted.fetch_add(1, Relaxed);
            evicted.extend(oldest.disk.map(|(id, _)| id));
        }
        letters.push_back(entry);
        // Sent under the lock: the writer sees the store's order.
        if let (Some(disk), Some(letter)) = (disk, letter) {
            disk.done(evicted);
            disk.put(letter);
        }
    }
}

impl<J> Entry<J> {
    fn bytes(&self) -> u64 {
        self.disk.map_or(0, |(_, bytes)| bytes)
    }
}

impl<J: Letter> DeadLetters<J> {
    /// The oldest `limit` letters.
    pub fn list(&self, limit: usize) -> Vec<DeadLetterInfo<J::Tag>>
    where
        J::Tag: Clone,
    {
        self.lock()
            .entries
            .iter()
            .take(limit)
            .map(|entry| DeadLetterInfo {
                id: entry.job.id(),
                tag: entry.job.tag().clone(),
                reason: entry.reason.to_string(),
                attempts: entry.attempts,
                failed_at_ms: entry.failed_at_ms,
                target: entry.job.target(),
                size: entry.job.size(),
            })
            .collect()
    }

    /// Hands the selected letters, oldest first, to `requeue`, reset for a
    /// new round of attempts; a letter it gives back (`Some`: the queue is
    /// full or the pool closing) stays, in its place, and so do the letters
    /// after it. Returns how many were re-queued. With a spool, `requeue`
    /// writes the job to the spool again, and the spool's writer acks the
    /// letter on disk once it has.
    pub fn replay(&self, select: &Select, mut requeue: impl FnMut(J) -> Option<J>) -> u64 {
        let mut letters = self.lock();
        let mut kept = Letters {
            entries: VecDeque::with_capacity(letters.entries.len()),
            bytes: 0,
        };
        let mut replayed = 0;
        let mut refused = false;
        for mut entry in letters.entries.drain(..) {
            if refused || !select.matches(entry.job.id()) {
                kept.push_back(entry);
                continue;
            }
            entry.job.reset();
            match requeue(entry.job) {
                None => replayed += 1,
                Some(job) => {
                    // The queue refuses: the rest stays for a later replay.
                    refused = true;
                    entry.job = job;
                    kept.push_back(entry);
                }
            }
        }
        *letters = kept;
        self.replayed.fetch_add(replayed, Relaxed);
        replayed
    }

    /// Removes the selected letters; returns how many.
    pub fn purge(&self, select: &Select) -> u64 {
        let mut letters = self.lock();
        let mut kept = Letters {
            entries: VecDeque::with_capacity(letters.entries.len()),
            bytes: 0,
        };
        let mut gone = Vec::new();
        for entry in letters.entries.drain(..) {
            if select.matches(entry.job.id()) {
                gone.push(entry.job.id());
            } else {
                kept.push_back(entry);
            }
        }
        *letters = kept;
        let purged = gone.len() as u64;
        if let Some(disk) = self.disk.get() {
            disk.done(gone);
        }
        self.purged.fetch_add(purged, Relaxed);
        purged
    }

    /// Writes the letters to disk from now on (the pool spools), and takes
    /// back the letters an earlier run left there, oldest first (beyond the
    /// store's bounds, the oldest are evicted).
    pub fn attach(&self, disk: LetterSink<J>, restored: Vec<Restored<J>>) {
        let mut letters = self.lock();
        let budget = disk.budget();
        let mut evicted = Vec::new();
        for r in restored {
            let id = r.job.id();
            letters.push_back(Entry {
                job: r.job,
                reason: Cow::Owned(r.reason),
                attempts: r.attempts,
                failed_at_ms: r.failed_at_ms,
                disk: Some((id, r.bytes)),
            });
            while letters.entries.len() > self.capacity || letters.bytes > budget {
                let Some(oldest) = letters.pop_front() else {
                    break;
                };
                evicted.extend(oldest.disk.map(|(id, _)| id));
            }
        }
        self.evicted.fetch_add(evicted.len() as u64, Relaxed);
        disk.done(evicted);
        // Set under the lock: no put can come between the letters of the
        // disk and the first new one.
        let _ = self.disk.set(disk);
    }

    pub fn stats(&self) -> DeadLetterStats {
        DeadLetterStats {
            dead_letters: self.lock().entries.len() as u64,
            dead_lettered: self.dead_lettered.load(Relaxed),
            dead_letters_evicted: self.evicted.load(Relaxed),
            dead_letters_replayed: self.replayed.load(Relaxed),
            dead_letters_purged: self.purged.load(Relaxed),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct TestJob {
        id: EventId,
        tag: u32,
        tries: u32,
    }

    impl Letter for TestJob {
        type Tag = u32;
        fn id(&self) -> EventId {
            self.id
        }
        fn tag(&self) -> &u32 {
            &self.tag
        }
        fn target(&self) -> String {
            format!("/t{}", self.tag)
        }
        fn size(&self) -> usize {
            4
        }
        fn reset(&mut self) {
            self.tries = 0;
        }
    }

    fn job(tag: u32) -> TestJob {
        TestJob {
            id: EventId::new(),
            tag,
            tries: 3,
        }
    }

    #[test]
    fn keeps_lists_and_evicts_the_oldest_when_full() {
        let store = DeadLetters::new(2);
        for tag in 1..=3 {
            store.put(job(tag), "status 400", tag);
        }
        let listed = store.list(10);
        assert_eq!(listed.iter().map(|l| l.tag).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(listed[0].reason, "status 400");
        assert_eq!((listed[0].attempts, listed[0].target.as_str()), (2, "/t2"));
        assert_eq!(store.list(1).len(), 1);
        let stats = store.stats();
        assert_eq!(
            (
                stats.dead_letters,
                stats.dead_lettered,
                stats.dead_letters_evicted
            ),
            (2, 3, 1)
        );
    }

    #[test]
    fn replays_selected_letters_reset_and_keeps_what_the_queue_refuses() {
        let store = DeadLetters::new(10);
        let jobs: Vec<TestJob> = (1..=4).map(job).collect();
        let ids: Vec<EventId> = jobs.iter().map(|j| j.id).collect();
        for j in jobs {
            store.put(j, "retries exhausted", 3);
        }
        let mut queued = Vec::new();
        let n = store.replay(&Select::Ids(vec![ids[1], ids[3]]), |j| {
            queued.push(j);
            None
        });
        assert_eq!(n, 2);
        assert_eq!(
            queued.iter().map(|j| (j.id, j.tries)).collect::<Vec<_>>(),
            [(ids[1], 0), (ids[3], 0)]
        );
        // A full queue takes one, then refuses: the rest stays, in order.
        let mut room = 1;
        let n = store.replay(&Select::All, |j| {
            if room == 0 {
                return Some(j);
            }
            room -= 1;
            None
        });
        assert_eq!(n, 1);
        assert_eq!(
            store.list(10).iter().map(|l| l.id).collect::<Vec<_>>(),
            [ids[2]]
        );
        assert_eq!(store.stats().dead_letters_replayed, 3);
    }

    #[test]
    fn purges_selected_or_all() {
        let store = DeadLetters::new(10);
        let first = job(1);
        let first_id = first.id;
        store.put(first, "x", 1);
        store.put(job(2), "x", 1);
        assert_eq!(store.purge(&Select::Ids(vec![first_id, EventId::new()])), 1);
        assert_eq!(store.purge(&Select::All), 1);
        let stats = store.stats();
        assert_eq!((stats.dead_letters, stats.dead_letters_purged), (0, 2));
    }

    #[test]
    fn a_zero_capacity_keeps_nothing() {
        let store = DeadLetters::new(0);
        store.put(job(1), "x", 1);
        assert!(store.list(10).is_empty());
        assert_eq!(store.stats().dead_letters_evicted, 1);
    }
}
