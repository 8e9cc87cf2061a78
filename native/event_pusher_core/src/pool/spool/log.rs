//! The segment log: append-only files of checksummed records in one
//! directory, which one process at a time may open (a `flock`ed `LOCK`
//! file; the kernel releases it when the process dies, even by `kill -9`).
//!
//! Events get increasing sequence numbers; an ack record names events that
//! are done. Segments are deleted oldest first, once every event in them
//! and in the older ones is acked, so an ack is never deleted before the
//! event it names. Opening the directory reads every segment, checks every
//! record's checksum, truncates a torn tail of the last segment, and keeps
//! the live (unacked) events for [`SegmentLog::read`].
//!
//! Single-threaded: the spool's writer thread owns it.

use super::record::{self, Bad, MAGIC};
use super::Fsync;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Why the spool could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("spool directory {0} is in use by another pool or process")]
    Locked(PathBuf),
    #[error("spool directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A place in the log: a segment and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// Bytes found unreadable when the log opened; logged by the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub file: PathBuf,
    /// Where the first bad record starts.
    pub offset: u64,
    /// Bytes from there to the end of the file, all lost.
    pub bytes_lost: u64,
    pub why: String,
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Events written by an earlier run and not acked: they will be replayed.
    pub live_events: u64,
    pub corrupt: Vec<Corruption>,
}

struct Segment {
    number: u64,
    path: PathBuf,
    /// Seq of its first event (its events' seqs are consecutive).
    first_seq: u64,
    /// One past its last event's seq.
    end_seq: u64,
    /// Bit `seq - first_seq` set once that event is acked.
    acked: Vec<u64>,
    live: u64,
    /// Bytes readable (a corrupted middle stops reading there).
    readable: u64,
    /// Bytes of the file (what counts against the spool's limit).
    size: u64,
}

impl Segment {
    fn ack(&mut self, seq: u64) -> bool {
        if seq < self.first_seq || seq >= self.end_seq {
            return false;
        }
        let i = (seq - self.first_seq) as usize;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if self.acked.len() <= word {
            self.acked.resize(word + 1, 0);
        }
        if self.acked[word] & bit != 0 {
            return false;
        }
        self.acked[word] |= bit;
        self.live -= 1;
        true
    }

    fn is_acked(&self, seq: u64) -> bool {
        let i = (seq - self.first_seq) as usize;
        self.acked
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

pub struct SegmentLog {
    dir: PathBuf,
    _lock: File,
    /// Oldest first; the last one is the head, written to.
    segments: VecDeque<Segment>,
    head: BufWriter<File>,
    segment_bytes: u64,
    next_seq: u64,
    bytes: u64,
    live: u64,
    fsync: Fsync,
    last_sync: Instant,
    /// Appended since the last commit.
    dirty: bool,
    /// Committed since the last fsync.
    unsynced: bool,
    /// Scratch for building records.
    buf: Vec<u8>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_owned(),
        source,
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.seg"))
}

impl SegmentLog {
    /// Opens (creating) `dir`, locks it, and reads what it holds.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        fsync: Fsync,
    ) -> Result<(Self, Recovery), OpenError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // SAFETY: a valid open descriptor; flock only reads it.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(OpenError::Locked(dir.to_owned()));
        }
        let mut numbers = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let name = entry.map_err(io_err(dir))?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let mut recovery = Recovery::default();
        let mut segments = VecDeque::new();
        let last = numbers.last().copied();
        let mut acks = Vec::new();
        for number in numbers {
            let path = segment_path(dir, number);
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let (mut segment, bad) = scan(number, path.clone(), &bytes, &mut acks);
            if segment.live == 0 {
                // No event in it: its seqs start where the previous ended.
                let end = segments.back().map_or(0, |s: &Segment| s.end_seq);
                segment.first_seq = end;
                segment.end_seq = end;
            }
            if let Some((0, why)) = bad {
                // Not one of our segments (or its first bytes are gone):
                // kept aside for a person to look at, out of the spool.
                recovery.corrupt.push(Corruption {
                    file: path.clone(),
                    offset: 0,
                    bytes_lost: bytes.len() as u64,
                    why: why.to_string(),
                });
                let aside = path.with_extension("seg.corrupt");
                fs::rename(&path, &aside).map_err(io_err(&path))?;
                continue;
            }
            if let Some((offset, why)) = bad {
                recovery.corrupt.push(Corruption {
                    file: path.clone(),
                    offset,
                    bytes_lost: bytes.len() as u64 - offset,
                    why: why.to_string(),
                });
                if Some(number) == last {
                    // A torn tail: cut it so appends continue on good records.
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    file.set_len(offset).map_err(io_err(&path))?;
                }
            }
            segments.push_back(segment);
        }
        for seq in acks {
            if let Some(s) = find(&mut segments, seq) {
                s.ack(seq);
            }
        }
        let next_seq = segments.back().map_or(0, |s: &Segment| s.end_seq);
        let number = segments.back().map_or(0, |s| s.number);
        let fresh = segments.back().is_none_or(|s| s.size >= segment_bytes);
        let mut log = SegmentLog {
            dir: dir.to_owned(),
            _lock: lock,
            head: BufWriter::new(tempfile_placeholder(dir)?),
            segments,
            segment_bytes,
            next_seq,
            bytes: 0,
            live: 0,
            fsync,
            last_sync: Instant::now(),
            dirty: false,
            unsynced: false,
            buf: Vec::new(),
        };
        if fresh {
            log.roll(if log.segments.is_empty() {
                0
            } else {
                number + 1
            })
            .map_err(io_err(dir))?;
        } else if let Some(head) = log.segments.back_mut() {
            let file = OpenOptions::new()
                .append(true)
                .open(&head.path)
                .map_err(io_err(&head.path))?;
            head.size = file.metadata().map_err(io_err(&head.path))?.len();
            head.readable = head.size;
            log.head = BufWriter::with_capacity(256 * 1024, file);
        }
        log.bytes = log.segments.iter().map(|s| s.size).sum();
        log.live = log.segments.iter().map(|s| s.live).sum();
        recovery.live_events = log.live;
        log.collect().map_err(io_err(dir))?;
        Ok((log, recovery))
    }

    /// Appends an event; its seq and where it starts. Buffered until [`Self::commit`].
    pub fn append_event(&mut self, payload: &[u8]) -> io::Result<(u64, Position)> {
        if self.head_segment().size >= self.segment_bytes {
            let next = self.head_segment().number + 1;
            self.roll(next)?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.buf.clear();
        record::write(&mut self.buf, record::KIND_EVENT, seq, payload);
        let head = self.segments.back_mut().expect("a head segment");
        let at = Position {
            segment: head.number,
            offset: head.size,
        };
        if head.end_seq == head.first_seq {
            head.first_seq = seq;
        }
        head.end_seq = seq + 1;
        head.live += 1;
        head.size += self.buf.len() as u64;
        self.bytes += self.buf.len() as u64;
        self.live += 1;
        self.dirty = true;
        self.head.write_all(&self.buf)?;
        Ok((seq, at))
    }

    /// Marks events done and records it (one record). Unknown or already
    /// acked seqs are ignored.
    pub fn append_acks(&mut self, seqs: &[u64]) -> io::Result<()> {
        let mut done = Vec::with_capacity(seqs.len() * 8);
        for &seq in seqs {
            if find(&mut self.segments, seq).is_some_and(|s| s.ack(seq)) {
                self.live -= 1;
                done.extend_from_slice(&seq.to_le_bytes());
            }
        }
        if done.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        record::write(&mut self.buf, record::KIND_ACKS, 0, &done);
        let head = self.segments.back_mut().expect("a head segment");
        head.size += self.buf.len() as u64;
        head.readable = head.size;
        self.bytes += self.buf.len() as u64;
        self.dirty = true;
        self.head.write_all(&self.buf)
    }

    /// Hands what was appended to the OS, syncs it as the policy says, and
    /// deletes the segments no longer needed.
    pub fn commit(&mut self) -> io::Result<()> {
        self.head.flush()?;
        if let Some(head) = self.segments.back_mut() {
            head.readable = head.size;
        }
        if std::mem::take(&mut self.dirty) {
            self.unsynced = true;
        }
        match self.fsync {
            Fsync::Never => {}
            Fsync::Always => self.sync()?,
            Fsync::Interval(every) => {
                if self.last_sync.elapsed() >= every {
                    self.sync()?;
                }
            }
        }
        self.collect()
    }

    /// Syncs what was committed to the disk, whatever the policy.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.head.get_ref().sync_data()?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The next live event at or after `from`: its seq, payload, and the
    /// position after it; `None` once `from` is at the committed end.
    pub fn read(
        &self,
        from: Position,
        reader: &mut SegmentReader,
    ) -> io::Result<Option<(u64, Vec<u8>, Position)>> {
        let mut at = from;
        loop {
            let Some(index) = self.segments.iter().position(|s| s.number >= at.segment) else {
                return Ok(None);
            };
            let segment = &self.segments[index];
            if segment.number != at.segment {
                at = Position {
                    segment: segment.number,
                    offset: MAGIC.len() as u64,
                };
            }
            if at.offset >= segment.readable {
                if index + 1 == self.segments.len() {
                    return Ok(None);
                }
                at = Position {
                    segment: self.segments[index + 1].number,
                    offset: MAGIC.len() as u64,
                };
                continue;
            }
            let body = reader.read_at(&segment.path, at.offset, segment.readable)?;
            let Some((raw, used)) = body else {
                // Unreadable now although it was good at open (the file
                // changed under us): skip the rest of this segment.
                at.offset = segment.readable;
                continue;
            };
            at.offset += used as u64;
            if raw.0 == record::KIND_EVENT
                && raw.1 >= segment.first_seq
                && raw.1 < segment.end_seq
                && !segment.is_acked(raw.1)
            {
                return Ok(Some((raw.1, raw.2, at)));
            }
        }
    }

    /// Where the next append goes.
    pub fn head_position(&self) -> Position {
        let head = self.head_segment();
        Position {
            segment: head.number,
            offset: head.size,
        }
    }

    /// Where reading everything starts.
    pub fn start_position(&self) -> Position {
        Position {
            segment: self.segments.front().map_or(0, |s| s.number),
            offset: MAGIC.len() as u64,
        }
    }

    /// Seqs below this were written by an earlier run.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes of the segment files.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Segment files, the head included.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Events written and not acked.
    pub fn live(&self) -> u64 {
        self.live
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn head_segment(&self) -> &Segment {
        self.segments.back().expect("a head segment")
    }

    fn roll(&mut self, number: u64) -> io::Result<()> {
        self.head.flush()?;
        if let Some(old) = self.segments.back_mut() {
            old.readable = old.size;
        }
        if self.unsynced && !matches!(self.fsync, Fsync::Never) {
            self.sync()?;
        }
        let path = segment_path(&self.dir, number);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        file.write_all(MAGIC)?;
        self.head = BufWriter::with_capacity(256 * 1024, file);
        let size = MAGIC.len() as u64;
        self.bytes += size;
        self.segments.push_back(Segment {
            number,
            path,
            first_seq: self.next_seq,
            end_seq: self.next_seq,
            acked: Vec::new(),
            live: 0,
            readable: size,
            size,
        });
        Ok(())
    }

    /// Deletes the oldest segments while they hold nothing live (never the head).
    fn collect(&mut self) -> io::Result<()> {
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.live == 0) {
            if let Some(segment) = self.segments.pop_front() {
                match fs::remove_file(&segment.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                self.bytes -= segment.size;
            }
        }
        Ok(())
    }
}

/// A placeholder head until the real one is opened (`open` replaces it
/// before returning): `/dev/null` keeps `BufWriter<File>` simple.
fn tempfile_placeholder(dir: &Path) -> Result<File, OpenError> {
    OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(io_err(dir))
}

fn find(segments: &mut VecDeque<Segment>, seq: u64) -> Option<&mut Segment> {
    let i = segments.partition_point(|s| s.end_seq <= seq);
    segments.get_mut(i).filter(|s| s.first_seq <= seq)
}

/// Reads one segment file's records: the segment, and where the first bad
/// record starts (with why). Acks found go to `acks`.
fn scan(
    number: u64,
    path: PathBuf,
    bytes: &[u8],
    acks: &mut Vec<u64>,
) -> (Segment, Option<(u64, Bad)>) {
    let mut segment = Segment {
        number,
        path,
        first_seq: 0,
        end_seq: 0,
        acked: Vec::new(),
        live: 0,
        readable: 0,
        size: bytes.len() as u64,
    };
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        let bad = if bytes.len() < MAGIC.len() {
            Bad::Truncated
        } else {
            Bad::Checksum
        };
        segment.size = MAGIC.len().min(bytes.len()) as u64;
        return (segment, Some((0, bad)));
    }
    let mut at = MAGIC.len();
    let mut first = true;
    let bad = loop {
        if at == bytes.len() {
            break None;
        }
        match record::parse(&bytes[at..]) {
            Ok((raw, used)) => {
                match raw.kind {
                    record::KIND_EVENT if first || raw.seq == segment.end_seq => {
                        if first {
                            segment.first_seq = raw.seq;
                            first = false;
                        }
                        segment.end_seq = raw.seq + 1;
                        segment.live += 1;
                    }
                    record::KIND_ACKS => {
                        acks.extend(
                            raw.payload
                                .chunks_exact(8)
                                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0xff; 8]))),
                        );
                    }
                    // An event out of sequence or an unknown kind: written
                    // by something else; everything from here is suspect.
                    _ => break Some((at as u64, Bad::Checksum)),
                }
                at += used;
            }
            Err(bad) => break Some((at as u64, bad)),
        }
    };
    segment.readable = at as u64;
    if bad.is_some() {
        segment.size = at as u64;
    }
    (segment, bad)
}

/// Reads records at given offsets, keeping the last file open.
#[derive(Default)]
pub struct SegmentReader {
    open: Option<(PathBuf, File, u64)>,
    buf: Vec<u8>,
}

type Owned = (u8, u64, Vec<u8>);

impl SegmentReader {
    /// The record at `offset` of `path` (which must end before `limit`),
    /// or `None` if it is not a good record.
    fn read_at(
        &mut self,
        path: &Path,
        offset: u64,
        limit: u64,
    ) -> io::Result<Option<(Owned, usize)>> {
        let reuse = matches!(&self.open, Some((p, _, _)) if p == path);
        if !reuse {
            self.open = Some((path.to_owned(), File::open(path)?, u64::MAX));
        }
        let Some((_, file, pos)) = self.open.as_mut() else {
            return Ok(None);
        };
        if *pos != offset {
            file.seek(SeekFrom::Start(offset))?;
        }
        let mut header = [0u8; record::HEADER];
        if file.read_exact(&mut header).is_err() {
            *pos = u64::MAX;
            return Ok(None);
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > record::MAX_BODY || offset + (record::HEADER + len) as u64 > limit {
            *pos = u64::MAX;
            return Ok(None);
        }
        self.buf.clear();
        self.buf.extend_from_slice(&header);
        self.buf.resize(record::HEADER + len, 0);
        if file.read_exact(&mut self.buf[record::HEADER..]).is_err() {
            *pos = u64::MAX;
            return Ok(None);
        }
        *pos = offset + self.buf.len() as u64;
        match record::parse(&self.buf) {
            Ok((raw, used)) => Ok(Some(((raw.kind, raw.seq, raw.payload.to_vec()), used))),
            Err(_) => Ok(None),
        }
    }
}
