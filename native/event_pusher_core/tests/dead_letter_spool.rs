//! Dead letters on disk (an http pool with a spool, against a real local
//! HTTP server): a letter survives a restart, and a crash (the directory as
//! the OS holds it, copied while the pool runs, is what a `kill -9` leaves),
//! with its reason, attempts, time and ID; purge, replay and eviction are
//! gone after a restart; a replayed letter is in the spool before it is
//! sent; a torn last letter is cut and counted, the others listed. The
//! mechanism is the pool runtime's: an SNS pool's letter (retries exhausted
//! against an endpoint that refuses connections) survives a crash alike.

mod common;
mod sns_common;

use bytes::Bytes;
use common::*;
use event_pusher_core::http::HttpPool;
use event_pusher_core::pool::spool::{Fsync, SpoolConfig};
use event_pusher_core::pool::{DeadLetterInfo, Select};
use event_pusher_core::EventId;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering::SeqCst};
use std::sync::Arc;

fn spool(name: &str, max_bytes: u64) -> SpoolConfig {
    let dir = std::env::temp_dir().join(format!("ep-dl-spool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    SpoolConfig {
        dir,
        max_bytes,
        fsync: Fsync::Never,
        // Small segments: acked ones are deleted soon, and compaction runs.
        segment_bytes: Some(512),
    }
}

/// A server answering with the status in `status` (changed by the test).
fn server(status: &Arc<AtomicU16>) -> TestServer {
    let status = status.clone();
    TestServer::start(Arc::new(move |_, _| Reply::status(status.load(SeqCst))))
}

fn start(server: &TestServer, spool: &SpoolConfig) -> (HttpPool<u64>, Collector) {
    let (collector, sink) = Collector::new();
    let pool =
        HttpPool::start_spooled(config(server.url("/hook/")), spool, sink).expect("pool starts");
    (pool, collector)
}

fn close(pool: HttpPool<u64>, events: &Collector) {
    pool.close(std::time::Duration::from_secs(1), events.on_close());
    while !matches!(events.take(1).pop(), Some(Event::Closed(_))) {}
    drop(pool);
}

/// Submits a job with body `n` and waits until it is a dead letter whose
/// event has left the spool (so the letter is committed).
fn dead_letter(pool: &HttpPool<u64>, n: u64) -> EventId {
    let mut j = job(n, "event");
    j.body = Bytes::from(n.to_string());
    let id = j.id;
    let before = pool.dead_letter_stats().dead_lettered;
    pool.submit(j).expect("accepted");
    wait_until("the job is a dead letter, its event acked", || {
        pool.dead_letter_stats().dead_lettered == before + 1
            && pool.spool_stats().is_some_and(|s| s.spool_events == 0)
    });
    id
}

fn ids(letters: &[DeadLetterInfo<u64>]) -> Vec<EventId> {
    letters.iter().map(|l| l.id).collect()
}

/// What `kill -9` would leave: the files as the OS holds them now.
fn crash_copy(from: &Path, name: &str) -> SpoolConfig {
    let to = spool(name, 1 << 20);
    copy_dir(from, &to.dir);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn letter_segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("dead_letters"))
        .expect("dead_letters dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_letter_survives_a_restart_and_a_crash_with_its_failure_and_id() {
    let status = Arc::new(AtomicU16::new(400));
    let server = server(&status);
    let spool = spool("survives", 1 << 20);
    let (pool, events) = start(&server, &spool);
    let id = dead_letter(&pool, 1);
    let before = pool.dead_letters(10);
    assert_eq!(ids(&before), [id]);
    assert_eq!(
        (before[0].reason.as_str(), before[0].attempts, before[0].tag),
        ("status 400", 1, 1)
    );
    let crashed = crash_copy(&spool.dir, "survives-crash");
    close(pool, &events);

    for dir in [&spool, &crashed] {
        let (pool, events) = start(&server, dir);
        assert_eq!(pool.dead_letters(10), before, "in {:?}", dir.dir);
        assert_eq!(pool.dead_letter_stats().dead_letters, 1);
        let spooled = pool.spool_stats().expect("spooled");
        // Its event left the spool: nothing is sent again.
        assert_eq!((spooled.spool_events, spooled.spool_replayed), (0, 0));
        close(pool, &events);
    }
    assert_eq!(server.arrived(), 1);
    for dir in [&spool.dir, &crashed.dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn purged_and_replayed_letters_are_gone_after_a_restart_and_a_replay_is_sent_once() {
    let status = Arc::new(AtomicU16::new(400));
    let server = server(&status);
    let spool = spool("purge-replay", 1 << 20);
    let (pool, events) = start(&server, &spool);
    let letters: Vec<EventId> = (1..=3).map(|n| dead_letter(&pool, n)).collect();
    assert_eq!(pool.purge_dead_letters(&Select::Ids(vec![letters[0]])), 1);
    status.store(200, SeqCst);
    assert_eq!(pool.replay_dead_letters(&Select::Ids(vec![letters[1]])), 1);
    wait_until("the replay is delivered and acked", || {
        server.arrived() == 4 && pool.spool_stats().is_some_and(|s| s.spool_events == 0)
    });
    let kept = pool.dead_letters(10);
    assert_eq!(ids(&kept), [letters[2]]);
    close(pool, &events);

    let (pool, events) = start(&server, &spool);
    assert_eq!(pool.dead_letters(10), kept);
    close(pool, &events);
    let bodies: Vec<Bytes> = server.received().into_iter().map(|r| r.body).collect();
    // Three failures, then the replay of the second one, once.
    assert_eq!(
        bodies,
        [b"1", b"2", b"3", b"2"].map(|b| Bytes::from_static(b))
    );
    let _ = std::fs::remove_dir_all(&spool.dir);
}

#[test]
fn a_replayed_letter_is_in_the_spool_before_it_is_sent() {
    // A 400, then (the endpoint fixed) a 200 held until the gate opens,
    // then 200s.
    let server = TestServer::start(Arc::new(|nth, _| match nth {
        0 => Reply::status(400),
        1 => Reply::status(200).gated(),
        _ => Reply::status(200),
    }));
    let spool = spool("respooled", 1 << 20);
    let (pool, events) = start(&server, &spool);
    dead_letter(&pool, 7);
    assert_eq!(pool.replay_dead_letters(&Select::All), 1);
    wait_until("the replay reached the endpoint", || server.arrived() == 2);
    assert_eq!(pool.spool_stats().map(|s| s.spool_events), Some(1));
    // A crash now: the copy has the event in its spool and no letter.
    let crashed = crash_copy(&spool.dir, "respooled-crash");
    close(pool, &events);

    let (pool, events) = start(&server, &crashed);
    assert_eq!(pool.dead_letters(10), []);
    wait_until("the replayed event is sent again", || server.arrived() == 3);
    assert_eq!(server.received()[2].body, Bytes::from_static(b"7"));
    wait_until("and acked", || {
        pool.spool_stats().is_some_and(|s| s.spool_events == 0)
    });
    assert_eq!(pool.spool_stats().map(|s| s.spool_replayed), Some(1));
    close(pool, &events);
    server.open_gate();
    for dir in [&spool.dir, &crashed.dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_torn_last_letter_is_cut_and_counted_and_the_others_listed() {
    let status = Arc::new(AtomicU16::new(400));
    let server = server(&status);
    let spool = spool("torn", 1 << 20);
    let (pool, events) = start(&server, &spool);
    let first = dead_letter(&pool, 1);
    dead_letter(&pool, 2);
    let kept = pool.dead_letters(1);
    close(pool, &events);
    let segments = letter_segments(&spool.dir);
    let last = segments.last().expect("a segment");
    let len = std::fs::metadata(last).expect("meta").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open");
    // A crash mid-write: the second letter's last bytes never arrived.
    file.set_len(len - 5).expect("truncate");

    let (pool, events) = start(&server, &spool);
    assert_eq!(ids(&pool.dead_letters(10)), [first]);
    assert_eq!(pool.dead_letters(10), kept);
    let spooled = pool.spool_stats().expect("spooled");
    assert_eq!(spooled.spool_corrupt, 1);
    assert!(spooled.spool_corrupt_bytes > 0);
    // New letters go on after the cut.
    let third = dead_letter(&pool, 3);
    close(pool, &events);
    let (pool, events) = start(&server, &spool);
    assert_eq!(ids(&pool.dead_letters(10)), [first, third]);
    assert_eq!(pool.spool_stats().map(|s| s.spool_corrupt), Some(0));
    close(pool, &events);
    let _ = std::fs::remove_dir_all(&spool.dir);
}

#[test]
fn letters_beyond_the_disk_budget_are_evicted_oldest_first_on_disk_too() {
    let status = Arc::new(AtomicU16::new(400));
    let server = server(&status);
    // Letter records of ~150 bytes, a budget of half of 2,000 bytes.
    let spool = spool("budget", 2000);
    let (pool, events) = start(&server, &spool);
    let all: Vec<EventId> = (10..20).map(|n| dead_letter(&pool, n)).collect();
    let kept = pool.dead_letters(100);
    let stats = pool.dead_letter_stats();
    assert!(kept.len() < all.len() && !kept.is_empty(), "{kept:?}");
    assert_eq!(ids(&kept), all[all.len() - kept.len()..]);
    assert_eq!(stats.dead_letters_evicted as usize, all.len() - kept.len());
    close(pool, &events);

    let (pool, events) = start(&server, &spool);
    assert_eq!(pool.dead_letters(100), kept);
    assert_eq!(pool.dead_letter_stats().dead_letters_evicted, 0);
    close(pool, &events);
    let _ = std::fs::remove_dir_all(&spool.dir);
}

#[test]
fn an_sns_letter_survives_a_crash_as_the_http_ones() {
    let spool = spool("sns", 1 << 20);
    let mut cfg = sns_common::config(&format!("http://127.0.0.1:{}", sns_common::free_port()));
    cfg.retry_count = 1;
    let (events, sink) = Collector::new();
    let pool = event_pusher_core::sns::SnsPool::start_spooled(cfg.clone(), &spool, sink)
        .expect("pool starts");
    let topic = "arn:aws:sns:us-east-1:123456789012:dead";
    let job = sns_common::job(5, topic, "{\"n\":5}");
    let id = job.id;
    pool.publish(job).expect("accepted");
    wait_until("a dead letter, its event acked", || {
        pool.dead_letter_stats().dead_letters == 1
            && pool.spool_stats().is_some_and(|s| s.spool_events == 0)
    });
    let before = pool.dead_letters(10);
    assert_eq!(
        (before[0].id, before[0].attempts, before[0].tag),
        (id, 2, 5)
    );
    assert_eq!(before[0].target, topic);
    let crashed = crash_copy(&spool.dir, "sns-crash");
    pool.close(std::time::Duration::from_secs(1), events.on_close());
    while !matches!(events.take(1).pop(), Some(Event::Closed(_))) {}
    drop(pool);

    let (events, sink) = Collector::new();
    let pool =
        event_pusher_core::sns::SnsPool::start_spooled(cfg, &crashed, sink).expect("pool starts");
    assert_eq!(pool.dead_letters(10), before);
    assert_eq!(pool.spool_stats().map(|s| s.spool_events), Some(0));
    pool.close(std::time::Duration::from_secs(1), events.on_close());
    while !matches!(events.take(1).pop(), Some(Event::Closed(_))) {}
    for dir in [&spool.dir, &crashed.dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
