//! The spool's writer thread and the caller's handle to it.
//!
//! The caller encodes a record and sends it with its job on a bounded
//! channel (O(1); a full channel means the disk cannot keep up: refused as
//! `Overloaded`). The thread takes what has arrived (a group), appends it,
//! writes the acks that came from the reporter, commits (flush, fsync by
//! policy) and only then puts the group's jobs in the pool's queue: an
//! event is on disk before it can be delivered. When the queue is full it
//! keeps a cursor on the first record not queued and from then on reads
//! records back from disk as places free up, until it reaches the end.
//!
//! It also writes the pool's dead letters ([`super::letters`]): in one
//! round, the group's events are committed first (a replayed letter is in
//! the spool before the letter is acked), then the new letters and the
//! letters done, then the spool's acks (a letter is on disk before its
//! event leaves the spool).

use super::letters::{self, LetterLog, LetterSink, NewLetter, Restored};
use super::log::{Position, SegmentLog, SegmentReader};
use super::record::{self, EventRecord};
use super::{
    default_segment_bytes, OpenError, PersistTag, Recovery, SpoolConfig, SpoolCounters, SpoolJob,
    SpoolStats, Spooled,
};
use crate::pool::Refused;
use crate::stats::Counters;
use crate::EventId;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Records that may wait for the writer: the pool's queue capacity, within
/// these bounds; beyond, `submit` is refused (`Overloaded`). Bounds the
/// memory between callers and the disk; as large as the memory queue (65,536
/// by default), so that a burst the queue would take without a spool is not
/// refused with one while the writer catches up. The channel's slots are
/// allocated up front, hence the upper bound.
pub const CHANNEL_MIN: usize = 16 * 1024;
pub const CHANNEL_MAX: usize = 64 * 1024;
/// Records appended per commit at most.
const GROUP: usize = 4096;
/// How often the writer looks for free places while records wait on disk.
const FEED_TICK: Duration = Duration::from_millis(2);
/// Wake-up when idle (an interval fsync may be due).
const IDLE_TICK: Duration = Duration::from_millis(100);
/// How long a close waits for the writer's last commit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

struct Incoming<J> {
    lane: u32,
    payload: Vec<u8>,
    job: J,
    /// A dead letter's replay: its letter is acked once this is committed.
    replay: bool,
}

pub(crate) enum Control {
    Acks(Vec<u64>),
    Letter(NewLetter),
    /// Letters purged, evicted or loaded over the store's bound.
    LettersDone(Vec<EventId>),
    Shutdown(Sender<()>),
}

/// Runs on the writer thread after it queued a job.
pub(crate) type Wake = Box<dyn Fn() + Send + 'static>;

type Encode<J> = fn(&J, u32, &mut Vec<u8>);
type Decode<J> = fn(&[u8], u64) -> Option<(u32, J)>;

fn encode<J: SpoolJob>(job: &J, lane: u32, out: &mut Vec<u8>)
where
    J::Tag: PersistTag,
{
    EventRecord::encode(out, lane, job.id(), |o| job.tag().tag.persist(o));
    job.encode_fields(out);
}

fn decode<J: SpoolJob>(payload: &[u8], seq: u64) -> Option<(u32, J)>
where
    J::Tag: PersistTag,
{
    let event = EventRecord::decode(payload)?;
    let tag = Spooled {
        tag: J::Tag::restore(event.tag)?,
        seq: Some(seq),
    };
    let job = J::decode_fields(event.fields, event.id, tag)?;
    Some((event.lane, job))
}

/// An opened spool, before its writer runs.
pub(crate) struct Opened<J> {
    log: SegmentLog,
    recovery: Recovery,
    letters: LetterLog,
    /// Letters of an earlier run, until the store takes them.
    restored: Vec<Restored<J>>,
    max_bytes: u64,
    counters: Arc<SpoolCounters>,
    ctl_tx: Sender<Control>,
    ctl_rx: Receiver<Control>,
    encode: Encode<J>,
    decode: Decode<J>,
}

/// Opens (and locks) the spool's directory and reads what it holds.
pub(crate) fn open<J: SpoolJob>(cfg: &SpoolConfig) -> Result<Opened<J>, OpenError>
where
    J::Tag: PersistTag,
{
    let segment_bytes = cfg
        .segment_bytes
        .unwrap_or_else(|| default_segment_bytes(cfg.max_bytes));
    let (log, recovery) = SegmentLog::open(&cfg.dir, segment_bytes.max(1), cfg.fsync)?;
    let letters = LetterLog::open(
        &letters::dir(&cfg.dir),
        cfg.max_bytes,
        segment_bytes.max(1),
        cfg.fsync,
        letters::decode_job::<J>,
    )?;
    let counters = Arc::new(SpoolCounters::default());
    counters.used.store(log.bytes(), Relaxed);
    counters.bytes.store(log.bytes(), Relaxed);
    counters.events.store(log.live(), Relaxed);
    counters.waiting.store(recovery.live_events, Relaxed);
    // The dead-letter log's damage counts (and is logged) with the spool's.
    let corrupt = recovery.corrupt.iter().chain(&letters.recovery.corrupt);
    counters
        .corrupt
        .store(corrupt.clone().count() as u64, Relaxed);
    let lost: u64 = corrupt.map(|c| c.bytes_lost).sum();
    counters.corrupt_bytes.store(lost, Relaxed);
    counters.skipped.store(letters.skipped, Relaxed);
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    Ok(Opened {
        log,
        recovery,
        letters: letters.log,
        restored: letters.letters,
        max_bytes: cfg.max_bytes,
        counters,
        ctl_tx,
        ctl_rx,
        encode: encode::<J>,
        decode: decode::<J>,
    })
}

impl<J: SpoolJob> Opened<J> {
    /// Where acks go (for [`super::SpoolSink`]).
    pub fn acks(&self) -> Sender<Control> {
        self.ctl_tx.clone()
    }

    /// The dead-letter store's way to the disk, and the letters of an
    /// earlier run (oldest first), once.
    pub fn dead_letters(&mut self) -> (LetterSink<J>, Vec<Restored<J>>)
    where
        J::Tag: PersistTag,
    {
        let sink = letters::letter_sink(self.ctl_tx.clone(), self.max_bytes);
        (sink, std::mem::take(&mut self.restored))
    }

    /// Starts the writer thread, which queues jobs on `lanes` within the
    /// pool's `capacity` (counted in `pool`).
    pub fn launch(
        self,
        lanes: Vec<UnboundedSender<J>>,
        pool: Arc<Counters>,
        capacity: u64,
        wake: Option<Wake>,
    ) -> std::io::Result<Handle<J>> {
        let room = usize::try_from(capacity)
            .unwrap_or(CHANNEL_MAX)
            .clamp(CHANNEL_MIN, CHANNEL_MAX);
        let (tx, rx) = crossbeam_channel::bounded(room);
        let cursor = (self.recovery.live_events > 0).then(|| self.log.start_position());
        let writer = Writer {
            replay_below: self.log.next_seq(),
            log: self.log,
            rx,
            ctl: self.ctl_rx,
            lanes,
            pool,
            capacity,
            counters: self.counters.clone(),
            decode: self.decode,
            cursor,
            wake,
            reader: SegmentReader::default(),
            skipped: Vec::new(),
            letters: self.letters,
            new_letters: Vec::new(),
            letters_done: Vec::new(),
        };
        std::thread::Builder::new()
            .name("event_pusher_spool".to_owned())
            .spawn(move || {
                crate::background::mark_current_thread();
                writer.run();
            })?;
        Ok(Handle {
            tx,
            ctl: self.ctl_tx,
            counters: self.counters,
            max_bytes: self.max_bytes,
            encode: self.encode,
        })
    }
}

/// The caller's side of a running spool (held by the pool's intake).
pub(crate) struct Handle<J> {
    tx: Sender<Incoming<J>>,
    ctl: Sender<Control>,
    counters: Arc<SpoolCounters>,
    max_bytes: u64,
    encode: Encode<J>,
}

impl<J> Handle<J> {
    /// Hands `job` to the writer. O(1) besides encoding it; never waits.
    pub fn submit(&self, lane: usize, job: J, pool: &Counters) -> Result<(), Refused> {
        self.send(lane, job, false, pool).map_err(|(refused, _)| {
            match refused {
                Refused::SpoolFull => Counters::bump(&self.counters.dropped_spool_full),
                Refused::Overloaded => Counters::bump(&pool.dropped_overloaded),
                _ => {}
            }
            refused
        })
    }

    /// A dead letter's replay: written to the spool again (the writer acks
    /// the letter once it is), then queued as `submit` does. Gives the job
    /// back if the spool refuses it (the letter stays; not counted as
    /// dropped).
    pub fn requeue(&self, lane: usize, job: J, pool: &Counters) -> Option<J> {
        self.send(lane, job, true, pool).err().map(|(_, job)| job)
    }

    fn send(&self, lane: usize, job: J, replay: bool, pool: &Counters) -> Result<(), (Refused, J)> {
        let mut payload = Vec::with_capacity(256);
        (self.encode)(&job, lane as u32, &mut payload);
        let size = record::size(payload.len());
        let used = self.counters.used.fetch_add(size, Relaxed);
        if used + size > self.max_bytes {
            self.counters.used.fetch_sub(size, Relaxed);
            return Err((Refused::SpoolFull, job));
        }
        let incoming = Incoming {
            lane: lane as u32,
            payload,
            job,
            replay,
        };
        match self.tx.try_send(incoming) {
            Ok(()) => {
                Counters::bump(&pool.submitted);
                Ok(())
            }
            Err(e) => {
                self.counters.used.fetch_sub(size, Relaxed);
                match e {
                    TrySendError::Full(i) => Err((Refused::Overloaded, i.job)),
                    TrySendError::Disconnected(i) => Err((Refused::Closed, i.job)),
                }
            }
        }
    }

    pub fn stats(&self) -> SpoolStats {
        self.counters.snapshot()
    }

    /// A function that stops the writer after its last commit (and unlocks
    /// the directory), waiting for it; run after the pool's last outcome.
    pub fn stopper(&self) -> impl FnOnce() + Send + 'static {
        let ctl = self.ctl.clone();
        move || {
            let (done, wait) = crossbeam_channel::bounded(1);
            if ctl.send(Control::Shutdown(done)).is_ok() {
                let _ = wait.recv_timeout(SHUTDOWN_WAIT);
            }
        }
    }
}

struct Writer<J> {
    log: SegmentLog,
    rx: Receiver<Incoming<J>>,
    ctl: Receiver<Control>,
    lanes: Vec<UnboundedSender<J>>,
    pool: Arc<Counters>,
    capacity: u64,
    counters: Arc<SpoolCounters>,
    decode: Decode<J>,
    /// The first record on disk not in the queue, while there is one.
    cursor: Option<Position>,
    wake: Option<Wake>,
    reader: SegmentReader,
    /// Seqs below this are an earlier run's.
    replay_below: u64,
    /// Records found unreadable at replay: acked with the next group.
    skipped: Vec<u64>,
    letters: LetterLog,
    /// Letters and letters done received this round.
    new_letters: Vec<NewLetter>,
    letters_done: Vec<EventId>,
}

impl<J: SpoolJob> Writer<J> {
    fn run(mut self) {
        let never_rx = crossbeam_channel::never();
        let never_ctl = crossbeam_channel::never();
        let mut rx_open = true;
        let mut ctl_open = true;
        let mut stopping: Vec<Sender<()>> = Vec::new();
        let mut incoming: Vec<Incoming<J>> = Vec::new();
        let mut acks: Vec<u64> = Vec::new();
        loop {
            let tick = if self.cursor.is_some() {
                FEED_TICK
            } else {
                IDLE_TICK
            };
            let rx = if rx_open { &self.rx } else { &never_rx };
            let ctl = if ctl_open { &self.ctl } else { &never_ctl };
            crossbeam_channel::select! {
                recv(rx) -> m => match m {
                    Ok(m) => incoming.push(m),
                    Err(_) => rx_open = false,
                },
                recv(ctl) -> c => match c {
                    Ok(c) => self.control(c, &mut acks, &mut stopping),
                    Err(_) => ctl_open = false,
                },
                default(tick) => {}
            }
            while incoming.len() < GROUP {
                match self.rx.try_recv() {
                    Ok(m) => incoming.push(m),
                    Err(_) => break,
                }
            }
            while let Ok(c) = self.ctl.try_recv() {
                self.control(c, &mut acks, &mut stopping);
            }
            acks.append(&mut self.skipped);
            self.group(std::mem::take(&mut incoming), &mut acks);
            if stopping.is_empty() {
                self.feed();
            }
            self.publish();
            let done = !stopping.is_empty() && self.rx.is_empty() || !rx_open && !ctl_open;
            if done {
                break;
            }
        }
        // What was committed goes to the disk whatever the policy: a close
        // is rare and the next start reads it.
        let _ = self.log.sync();
        let _ = self.letters.sync();
        let Writer { log, letters, .. } = self;
        drop(log);
        drop(letters);
        for done in stopping {
            let _ = done.send(());
        }
    }

    fn control(&mut self, c: Control, acks: &mut Vec<u64>, stopping: &mut Vec<Sender<()>>) {
        match c {
            Control::Acks(mut seqs) => acks.append(&mut seqs),
            Control::Letter(letter) => self.new_letters.push(letter),
            Control::LettersDone(mut ids) => self.letters_done.append(&mut ids),
            Control::Shutdown(done) => stopping.push(done),
        }
    }

    /// Appends, commits, then queues the group's jobs (or leaves them on
    /// disk if the queue is full or records already wait there).
    fn group(&mut self, incoming: Vec<Incoming<J>>, acks: &mut Vec<u64>) {
        let letter_work = !self.new_letters.is_empty()
            || !self.letters_done.is_empty()
            || incoming.iter().any(|i| i.replay);
        if incoming.is_empty() && acks.is_empty() && !letter_work {
            // Idle: an interval fsync may be due, for letters too.
            let _ = self.log.commit();
            let _ = self.letters.commit();
            return;
        }
        let before = self.log.bytes();
        let mut reserved = 0;
        let mut ready: Vec<(u32, J, Option<Position>)> = Vec::with_capacity(incoming.len());
        let had_events = !incoming.is_empty();
        for Incoming {
            lane,
            payload,
            mut job,
            replay,
        } in incoming
        {
            let size = record::size(payload.len());
            match self.log.append_event(&payload) {
                Ok((seq, at)) => {
                    reserved += size;
                    job.tag_mut().seq = Some(seq);
                    if replay {
                        self.letters_done.push(job.id());
                    }
                    ready.push((lane, job, Some(at)));
                }
                Err(_) => {
                    // Not on disk: delivered from memory only (counted); a
                    // replayed letter stays on disk (listed after a restart).
                    self.counters.used.fetch_sub(size, Relaxed);
                    Counters::bump(&self.counters.skipped);
                    ready.push((lane, job, None));
                }
            }
        }
        if letter_work {
            // The replays' events are committed before their letters are acked.
            if had_events && self.log.commit().is_err() {
                Counters::bump(&self.counters.skipped);
                self.letters_done.clear();
            }
            self.write_letters(acks);
        }
        if !acks.is_empty() {
            if self.log.append_acks(acks).is_err() {
                Counters::bump(&self.counters.skipped);
            }
            acks.clear();
        }
        if self.log.commit().is_err() {
            Counters::bump(&self.counters.skipped);
        }
        // Ack records, new segment headers and deleted segments change the
        // bytes too; events were reserved by their callers.
        let delta = self.log.bytes() as i128 - before as i128 - reserved as i128;
        if delta > 0 {
            self.counters.used.fetch_add(delta as u64, Relaxed);
        } else if delta < 0 {
            self.counters.used.fetch_sub((-delta) as u64, Relaxed);
        }
        for (lane, job, at) in ready {
            match (self.cursor, at) {
                (Some(_), Some(_)) => Counters::bump(&self.counters.waiting),
                (None, Some(at)) => {
                    if self.pool.try_place(self.capacity) {
                        self.queue(lane, job);
                    } else {
                        self.cursor = Some(at);
                        Counters::bump(&self.counters.waiting);
                    }
                }
                (_, None) => {
                    // Not on disk, so it cannot wait there: queued even
                    // over the bound.
                    self.pool.queued.fetch_add(1, Relaxed);
                    self.queue(lane, job);
                }
            }
        }
    }

    /// Appends this round's letters and letters done and commits them; the
    /// events of the letters committed join `acks` (their spool records go).
    fn write_letters(&mut self, acks: &mut Vec<u64>) {
        let mut events = Vec::new();
        for letter in std::mem::take(&mut self.new_letters) {
            match self.letters.append(letter.id, &letter.payload) {
                Ok(()) => events.extend(letter.spool_seq),
                // Its event stays in the spool: delivered again at the next
                // start, where it fails again or goes through.
                Err(_) => Counters::bump(&self.counters.skipped),
            }
        }
        let done = std::mem::take(&mut self.letters_done);
        if self.letters.done(&done).is_err() {
            Counters::bump(&self.counters.skipped);
        }
        if self.letters.commit().is_err() {
            Counters::bump(&self.counters.skipped);
            return;
        }
        acks.append(&mut events);
    }

    /// Reads waiting records back into the queue while it has room.
    fn feed(&mut self) {
        while let Some(at) = self.cursor {
            if !self.pool.try_place(self.capacity) {
                return;
            }
            match self.log.read(at, &mut self.reader) {
                Ok(Some((seq, payload, next))) => {
                    self.cursor = Some(next);
                    Counters::drop_one(&self.counters.waiting);
                    match (self.decode)(&payload, seq) {
                        Some((lane, job)) => {
                            if seq < self.replay_below {
                                Counters::bump(&self.counters.replayed);
                            }
                            self.queue(lane, job);
                        }
                        None => {
                            self.pool.unreserve();
                            Counters::bump(&self.counters.skipped);
                            self.skipped.push(seq);
                        }
                    }
                }
                Ok(None) => {
                    self.pool.unreserve();
                    self.cursor = None;
                    self.counters.waiting.store(0, Relaxed);
                }
                Err(_) => {
                    self.pool.unreserve();
                    Counters::bump(&self.counters.skipped);
                    return;
                }
            }
        }
    }

    /// Puts a job whose place is taken in its lane; a lane that stopped
    /// taking jobs (the pool is closing) leaves it on disk for the next start.
    fn queue(&mut self, lane: u32, job: J) {
        let lanes = self.lanes.len().max(1);
        let sent = self
            .lanes
            .get(lane as usize % lanes)
            .map(|l| l.send(job).is_ok());
        if sent != Some(true) {
            self.pool.unreserve();
        } else if let Some(wake) = &self.wake {
            wake();
        }
    }

    fn publish(&self) {
        self.counters.bytes.store(self.log.bytes(), Relaxed);
        self.counters.events.store(self.log.live(), Relaxed);
    }
}
