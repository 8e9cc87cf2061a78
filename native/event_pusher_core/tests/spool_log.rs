//! The spool's segment log on a real directory: append, ack, replay after
//! reopening, torn and corrupted tails, segment deletion, the lock, and the
//! fsync policies.

use event_pusher_core::pool::spool::{record, Fsync, Position, SegmentLog, SegmentReader};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ep-spool-log-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn payload(n: u64) -> Vec<u8> {
    format!("event-{n:06}").into_bytes()
}

/// Every live event, in order, from the start.
fn live(log: &SegmentLog) -> Vec<(u64, Vec<u8>)> {
    let mut reader = SegmentReader::default();
    let mut at = log.start_position();
    let mut out = Vec::new();
    while let Some((seq, payload, next)) = log.read(at, &mut reader).expect("read") {
        out.push((seq, payload));
        at = next;
    }
    out
}

fn segments(dir: &PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn unacked_events_come_back_in_order_after_reopening_and_acked_ones_do_not() {
    let dir = dir("replay");
    {
        let (mut log, recovery) = SegmentLog::open(&dir, 4096, Fsync::Never).expect("open");
        assert_eq!(recovery.live_events, 0);
        for n in 0..100 {
            let (seq, _) = log.append_event(&payload(n)).expect("append");
            assert_eq!(seq, n);
        }
        log.append_acks(&(0..100).filter(|n| n % 3 == 0).collect::<Vec<_>>())
            .expect("acks");
        log.commit().expect("commit");
        // No close: the process "dies" here (the lock goes with the file).
    }
    let (log, recovery) = SegmentLog::open(&dir, 4096, Fsync::Never).expect("reopen");
    let expected: Vec<(u64, Vec<u8>)> = (0..100)
        .filter(|n| n % 3 != 0)
        .map(|n| (n, payload(n)))
        .collect();
    assert_eq!(recovery.live_events, expected.len() as u64);
    assert!(recovery.corrupt.is_empty());
    assert_eq!(live(&log), expected);
    assert_eq!(log.next_seq(), 100, "new events continue the sequence");
}

#[test]
fn fully_acked_segments_are_deleted_oldest_first_and_the_bytes_go_down() {
    let dir = dir("collect");
    let (mut log, _) = SegmentLog::open(&dir, 1024, Fsync::Never).expect("open");
    for n in 0..200 {
        log.append_event(&payload(n)).expect("append");
    }
    log.commit().expect("commit");
    let full = log.bytes();
    let files = segments(&dir).len();
    assert!(files > 3, "{files} segments");
    // Acking a later segment's events alone frees nothing: an older one
    // still holds a live event.
    log.append_acks(&(100..200).collect::<Vec<_>>())
        .expect("acks");
    log.commit().expect("commit");
    assert_eq!(segments(&dir).len(), files);
    log.append_acks(&(0..100).collect::<Vec<_>>())
        .expect("acks");
    log.commit().expect("commit");
    assert_eq!(log.live(), 0);
    assert_eq!(segments(&dir).len(), 1, "only the head is left");
    assert!(log.bytes() < full / 2, "{} of {full}", log.bytes());
    let on_disk: u64 = segments(&dir)
        .iter()
        .map(|p| fs::metadata(p).expect("meta").len())
        .sum();
    assert_eq!(on_disk, log.bytes());
}

#[test]
fn a_torn_last_record_is_cut_counted_and_the_rest_replayed() {
    let dir = dir("torn");
    {
        let (mut log, _) = SegmentLog::open(&dir, 1 << 20, Fsync::Never).expect("open");
        for n in 0..10 {
            log.append_event(&payload(n)).expect("append");
        }
        log.commit().expect("commit");
    }
    let last = segments(&dir).pop().expect("a segment");
    let len = fs::metadata(&last).expect("meta").len();
    // A crash in the middle of writing the last record.
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    file.set_len(len - 5).expect("truncate");
    drop(file);
    let (mut log, recovery) = SegmentLog::open(&dir, 1 << 20, Fsync::Never).expect("reopen");
    assert_eq!(recovery.live_events, 9);
    assert_eq!(recovery.corrupt.len(), 1);
    let bad = &recovery.corrupt[0];
    assert_eq!(bad.file, last);
    assert_eq!(bad.bytes_lost, record::size(payload(9).len()) - 5);
    assert_eq!(
        live(&log).iter().map(|e| e.0).collect::<Vec<_>>(),
        (0..9).collect::<Vec<_>>()
    );
    // Appends continue on good records: the next open finds nothing wrong.
    let (seq, _) = log.append_event(b"after").expect("append");
    assert_eq!(seq, 9, "the lost record's seq is reused");
    log.commit().expect("commit");
    drop(log);
    let (log, recovery) = SegmentLog::open(&dir, 1 << 20, Fsync::Never).expect("reopen");
    assert!(recovery.corrupt.is_empty(), "{:?}", recovery.corrupt);
    assert_eq!(
        live(&log).last().map(|e| e.1.clone()),
        Some(b"after".to_vec())
    );
}

#[test]
fn a_flipped_byte_stops_that_segment_at_the_record_before_it_and_never_the_start() {
    let dir = dir("flip");
    {
        let (mut log, _) = SegmentLog::open(&dir, 200, Fsync::Never).expect("open");
        for n in 0..30 {
            log.append_event(&payload(n)).expect("append");
        }
        log.commit().expect("commit");
    }
    let files = segments(&dir);
    assert!(files.len() >= 3);
    // Damage the second record of the first segment.
    let first = &files[0];
    let mut bytes = fs::read(first).expect("read");
    let second = record::MAGIC.len() + record::size(payload(0).len()) as usize;
    bytes[second + 12] ^= 0x40;
    fs::write(first, &bytes).expect("write");
    // And a file that is not a segment at all.
    fs::write(dir.join("09999999999999999999.seg"), b"garbage!garbage!").expect("write");
    let (log, recovery) = SegmentLog::open(&dir, 200, Fsync::Never).expect("reopen");
    assert_eq!(recovery.corrupt.len(), 2, "{:?}", recovery.corrupt);
    let seqs: Vec<u64> = live(&log).iter().map(|e| e.0).collect();
    assert_eq!(seqs[0], 0);
    assert!(!seqs.contains(&1), "the damaged record is not replayed");
    assert_eq!(seqs.last(), Some(&29), "later segments are intact");
    assert!(
        dir.join("09999999999999999999.seg.corrupt").exists(),
        "kept aside"
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_the_first_is_gone() {
    let dir = dir("lock");
    let (log, _) = SegmentLog::open(&dir, 4096, Fsync::Never).expect("open");
    let err = SegmentLog::open(&dir, 4096, Fsync::Never)
        .err()
        .expect("locked");
    assert!(err.to_string().contains("in use"), "{err}");
    drop(log);
    SegmentLog::open(&dir, 4096, Fsync::Never).expect("free again");
}

#[test]
fn every_fsync_policy_keeps_what_was_committed() {
    for (name, fsync) in [
        ("never", Fsync::Never),
        ("always", Fsync::Always),
        ("interval", Fsync::Interval(Duration::from_millis(1))),
    ] {
        let dir = dir(name);
        {
            let (mut log, _) = SegmentLog::open(&dir, 512, fsync).expect("open");
            for n in 0..50 {
                log.append_event(&payload(n)).expect("append");
                if n % 7 == 0 {
                    log.commit().expect("commit");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            log.commit().expect("commit");
        }
        let (log, recovery) = SegmentLog::open(&dir, 512, fsync).expect("reopen");
        assert_eq!(recovery.live_events, 50, "{name}");
        assert_eq!(live(&log).len(), 50, "{name}");
    }
}

#[test]
fn reading_from_a_position_skips_acked_events_and_stops_at_the_committed_end() {
    let dir = dir("cursor");
    let (mut log, _) = SegmentLog::open(&dir, 300, Fsync::Never).expect("open");
    let mut at: Option<Position> = None;
    for n in 0..20 {
        let (_, pos) = log.append_event(&payload(n)).expect("append");
        if n == 10 {
            at = Some(pos);
        }
    }
    log.append_acks(&[11, 12]).expect("acks");
    log.commit().expect("commit");
    let mut reader = SegmentReader::default();
    let mut at = at.expect("position of 10");
    let mut seqs = Vec::new();
    while let Some((seq, _, next)) = log.read(at, &mut reader).expect("read") {
        seqs.push(seq);
        at = next;
    }
    assert_eq!(seqs, [10, 13, 14, 15, 16, 17, 18, 19]);
    // What is appended later is read from where reading stopped.
    log.append_event(b"later").expect("append");
    assert!(
        log.read(at, &mut reader).expect("read").is_none(),
        "not committed yet"
    );
    log.commit().expect("commit");
    let (seq, _, _) = log.read(at, &mut reader).expect("read").expect("committed");
    assert_eq!(seq, 20);
}
