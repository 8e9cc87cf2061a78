//! Dead letters on disk, for a pool that spools: a second segment log in
//! `<spool dir>/dead_letters/`, written by the spool's writer thread only.
//!
//! A letter is a record ([`LetterRecord`]: the failure, then the event as the
//! spool writes it); purge, replay and eviction write acks. The store in
//! memory ([`crate::pool::DeadLetters`]) stays the one that lists and
//! decides; this log mirrors it so that a restart (or `kill -9`) finds the
//! letters again. Order, kept by the writer (see `writer.rs`):
//!
//! - a letter is committed before its event's spool record is acked;
//! - a replayed letter's event is committed to the spool before the letter
//!   is acked here;
//!
//! so a crash in between leaves a letter and an event with the same ID, never
//! neither.
//!
//! The log is kept within a byte bound: the store keeps the letters' records
//! within half of it ([`letter_budget`]); when the files go beyond it (acked
//! letters that older live ones keep on disk), the live letters of the oldest
//! segments are written again at the head and the segments deleted.

use super::log::{Position, SegmentLog, SegmentReader};
use super::record::{self, EventRecord, LetterRecord};
use super::writer::Control;
use super::{Fsync, OpenError, PersistTag, Recovery, SpoolJob, Spooled};
use crate::EventId;
use crossbeam_channel::Sender;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

/// The dead-letter directory inside a pool's spool directory.
pub fn dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("dead_letters")
}

/// Bytes of letter records the store keeps on disk at most, for a pool whose
/// spool has `max_bytes`: half of the dead-letter log's bound (`max_bytes`),
/// the rest leaves room for acked records until they are compacted away.
pub fn letter_budget(max_bytes: u64) -> u64 {
    max_bytes / 2
}

/// A letter read back at start.
pub(crate) struct Restored<J> {
    pub job: J,
    pub reason: String,
    pub attempts: u32,
    pub failed_at_ms: u64,
    /// Its record's size on disk.
    pub bytes: u64,
}

pub(crate) struct LetterLog {
    log: SegmentLog,
    /// Live letters' seqs by event ID, oldest first (an ID may come back as
    /// a letter after a replay, before the replay's ack is written).
    seqs: HashMap<EventId, VecDeque<u64>>,
    /// Beyond this many bytes of files, the oldest segments are compacted.
    bound: u64,
    /// Bytes of files after the last compaction, and the segments' size:
    /// the next one waits for a segment's worth of new writes, so a log of
    /// live letters is not copied over and over.
    compacted_at: u64,
    segment_bytes: u64,
    reader: SegmentReader,
}

/// What opening the log found, besides the letters.
pub(crate) struct Opening<J> {
    pub log: LetterLog,
    pub letters: Vec<Restored<J>>,
    pub recovery: Recovery,
    /// Records that were not letters a pool can take back (acked).
    pub skipped: u64,
}

impl LetterLog {
    /// Opens (creating, locking) `dir` and reads its live letters, oldest
    /// first; `decode` turns an event payload into a job. `max_bytes` is the
    /// spool's (the files' bound), `segment_bytes` its segments' size.
    pub fn open<J>(
        dir: &Path,
        max_bytes: u64,
        segment_bytes: u64,
        fsync: Fsync,
        decode: impl Fn(&[u8]) -> Option<J>,
    ) -> Result<Opening<J>, OpenError> {
        let (log, recovery) = SegmentLog::open(dir, segment_bytes, fsync)?;
        let mut letters = LetterLog {
            log,
            seqs: HashMap::new(),
            bound: max_bytes,
            compacted_at: 0,
            segment_bytes,
            reader: SegmentReader::default(),
        };
        let mut restored: Vec<(EventId, u64, Restored<J>)> = Vec::new();
        let mut seen = HashSet::new();
        let mut bad = Vec::new();
        let mut at = letters.log.start_position();
        let io_err = |source| OpenError::Io {
            path: dir.to_owned(),
            source,
        };
        while let Some((seq, payload, next)) =
            letters.log.read(at, &mut letters.reader).map_err(io_err)?
        {
            at = next;
            let letter = LetterRecord::decode(&payload).and_then(|l| {
                let id = EventRecord::decode(l.event)?.id;
                Some((l, id, decode(l.event)?))
            });
            // A compaction cut short by a crash may have left a letter twice.
            let Some((letter, id, job)) =
                letter.filter(|(l, id, _)| seen.insert((*id, l.failed_at_ms)))
            else {
                bad.push(seq);
                continue;
            };
            let restored_letter = Restored {
                job,
                reason: letter.reason.to_owned(),
                attempts: letter.attempts,
                failed_at_ms: letter.failed_at_ms,
                bytes: record::size(payload.len()),
            };
            restored.push((id, seq, restored_letter));
        }
        // A compaction moves old letters to the head: oldest first again.
        restored.sort_by_key(|(_, _, r)| r.failed_at_ms);
        for (id, seq, _) in &restored {
            letters.seqs.entry(*id).or_default().push_back(*seq);
        }
        let skipped = bad.len() as u64;
        letters.log.append_acks(&bad).map_err(io_err)?;
        letters.log.commit().map_err(io_err)?;
        Ok(Opening {
            log: letters,
            letters: restored.into_iter().map(|(_, _, r)| r).collect(),
            recovery,
            skipped,
        })
    }

    /// Appends a letter (buffered until [`Self::commit`]).
    pub fn append(&mut self, id: EventId, payload: &[u8]) -> io::Result<()> {
        let (seq, _) = self.log.append_event(payload)?;
        self.seqs.entry(id).or_default().push_back(seq);
        Ok(())
    }

    /// Marks the oldest live letter of each ID done (once per occurrence).
    pub fn done(&mut self, ids: &[EventId]) -> io::Result<()> {
        let mut seqs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(queue) = self.seqs.get_mut(id) {
                seqs.extend(queue.pop_front());
                if queue.is_empty() {
                    self.seqs.remove(id);
                }
            }
        }
        self.log.append_acks(&seqs)
    }

    /// Hands what was appended to the OS (fsync by the spool's policy), then
    /// compacts if the files went beyond the bound.
    pub fn commit(&mut self) -> io::Result<()> {
        self.log.commit()?;
        let bytes = self.log.bytes();
        if bytes > self.bound && bytes >= self.compacted_at.saturating_add(self.segment_bytes) {
            self.compact()?;
            self.compacted_at = self.log.bytes();
        }
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.log.sync()
    }

    /// Writes the live letters of the oldest segments again at the head and
    /// acks the old records, oldest segment first, until the files are
    /// within the bound (each segment at most once: a log of live letters
    /// only cannot shrink). The copy and the ack are one commit; a crash in
    /// between leaves a letter twice, which the next open drops.
    fn compact(&mut self) -> io::Result<()> {
        let mut rounds = self.log.segments().saturating_sub(1);
        while self.log.bytes() > self.bound && rounds > 0 {
            rounds -= 1;
            let front = self.log.start_position();
            if front.segment == self.log.head_position().segment {
                break;
            }
            let mut at: Position = front;
            let mut acked = Vec::new();
            while let Some((seq, payload, next)) = self.log.read(at, &mut self.reader)? {
                if next.segment != front.segment {
                    break;
                }
                at = next;
                let Some(id) = LetterRecord::decode(&payload)
                    .and_then(|l| EventRecord::decode(l.event))
                    .map(|e| e.id)
                else {
                    acked.push(seq);
                    continue;
                };
                let (moved, _) = self.log.append_event(&payload)?;
                if let Some(old) = self
                    .seqs
                    .get_mut(&id)
                    .and_then(|q| q.iter_mut().find(|s| **s == seq))
                {
                    *old = moved;
                }
                acked.push(seq);
            }
            self.log.append_acks(&acked)?;
            self.log.commit()?;
        }
        Ok(())
    }
}

/// A new letter for the writer.
pub(crate) struct NewLetter {
    pub id: EventId,
    pub payload: Vec<u8>,
    /// Its event's spool record, acked once the letter is committed.
    pub spool_seq: Option<u64>,
}

type EncodeLetter<J> = fn(&J, &str, u32, u64, &mut Vec<u8>) -> (EventId, Option<u64>);

impl NewLetter {
    /// Its record's size on disk.
    pub fn bytes(&self) -> u64 {
        record::size(self.payload.len())
    }
}

/// The store's side: what it sends to the writer (never waits; once the
/// writer is gone, at a close, a letter stays in memory only and its event
/// in the spool, delivered again at the next start).
pub(crate) struct LetterSink<J> {
    ctl: Sender<Control>,
    encode: EncodeLetter<J>,
    budget: u64,
}

impl<J> LetterSink<J> {
    /// Bytes of letter records the store may keep.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// A letter's record payload and its event's spool seq.
    pub fn encode(&self, job: &J, reason: &str, attempts: u32, at_ms: u64) -> NewLetter {
        let mut payload = Vec::with_capacity(256);
        let (id, spool_seq) = (self.encode)(job, reason, attempts, at_ms, &mut payload);
        NewLetter {
            id,
            payload,
            spool_seq,
        }
    }

    pub fn put(&self, letter: NewLetter) {
        let _ = self.ctl.send(Control::Letter(letter));
    }

    pub fn done(&self, ids: Vec<EventId>) {
        if !ids.is_empty() {
            let _ = self.ctl.send(Control::LettersDone(ids));
        }
    }

    /// An event that leaves the spool without a letter (a store that keeps
    /// none, or a letter larger than the budget).
    pub fn drop_event(&self, spool_seq: Option<u64>) {
        if let Some(seq) = spool_seq {
            let _ = self.ctl.send(Control::Acks(vec![seq]));
        }
    }
}

fn encode_letter<J: SpoolJob>(
    job: &J,
    reason: &str,
    attempts: u32,
    at_ms: u64,
    out: &mut Vec<u8>,
) -> (EventId, Option<u64>)
where
    J::Tag: PersistTag,
{
    LetterRecord::encode(out, attempts, at_ms, reason);
    // Lane 0: a replay chooses its lane as a submit does.
    EventRecord::encode(out, 0, job.id(), |o| job.tag().tag.persist(o));
    job.encode_fields(out);
    (job.id(), job.tag().seq)
}

pub(crate) fn letter_sink<J: SpoolJob>(ctl: Sender<Control>, max_bytes: u64) -> LetterSink<J>
where
    J::Tag: PersistTag,
{
    LetterSink {
        ctl,
        encode: encode_letter::<J>,
        budget: letter_budget(max_bytes),
    }
}

/// A letter's job read back: not in the spool (its seq is the replay's).
pub(crate) fn decode_job<J: SpoolJob>(event: &[u8]) -> Option<J>
where
    J::Tag: PersistTag,
{
    let event = EventRecord::decode(event)?;
    let tag = Spooled {
        tag: J::Tag::restore(event.tag)?,
        seq: None,
    };
    J::decode_fields(event.fields, event.id, tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(id: EventId, at_ms: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        LetterRecord::encode(&mut out, 2, at_ms, "status 400");
        EventRecord::encode(&mut out, 0, id, |_| {});
        out.extend_from_slice(body);
        out
    }

    fn open(dir: &Path, max_bytes: u64) -> Opening<Vec<u8>> {
        LetterLog::open(dir, max_bytes, 1024, Fsync::Never, |event| {
            EventRecord::decode(event).map(|e| e.fields.to_vec())
        })
        .expect("opens")
    }

    fn bodies(letters: &[Restored<Vec<u8>>]) -> Vec<Vec<u8>> {
        letters.iter().map(|l| l.job.clone()).collect()
    }

    #[test]
    fn an_old_letter_among_acked_ones_is_moved_so_the_files_stay_bounded() {
        let dir = std::env::temp_dir().join(format!("ep-letters-compact-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let max_bytes = 8 * 1024;
        let mut log = open(&dir, max_bytes).log;
        let old = EventId::new();
        log.append(old, &payload(old, 1, b"old")).expect("append");
        let mut peak = 0;
        // Letters come and go (purged), the oldest stays: without compaction
        // its segment would keep every later one on disk.
        for n in 0..2000u64 {
            let id = EventId::new();
            log.append(id, &payload(id, 2 + n, &[b'x'; 100]))
                .expect("append");
            log.done(&[id]).expect("done");
            log.commit().expect("commit");
            peak = peak.max(log.log.bytes());
        }
        assert!(peak <= max_bytes + 1024 + 256, "files reached {peak} bytes");
        let kept = EventId::new();
        log.append(kept, &payload(kept, 5000, b"kept"))
            .expect("append");
        log.commit().expect("commit");
        drop(log);

        let opening = open(&dir, max_bytes);
        assert_eq!(
            bodies(&opening.letters),
            [b"old".to_vec(), b"kept".to_vec()]
        );
        assert_eq!(opening.skipped, 0);
        // The moved letter is acked by its ID at its new place.
        let mut log = opening.log;
        log.done(&[old]).expect("done");
        log.commit().expect("commit");
        drop(log);
        assert_eq!(bodies(&open(&dir, max_bytes).letters), [b"kept".to_vec()]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_letter_left_twice_by_a_cut_compaction_is_loaded_once() {
        let dir = std::env::temp_dir().join(format!("ep-letters-twice-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut log = open(&dir, 1 << 20).log;
        let id = EventId::new();
        let letter = payload(id, 7, b"once");
        log.append(id, &letter).expect("append");
        log.append(id, &letter).expect("append");
        log.commit().expect("commit");
        drop(log);
        let opening = open(&dir, 1 << 20);
        assert_eq!(bodies(&opening.letters), [b"once".to_vec()]);
        assert_eq!(opening.skipped, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
