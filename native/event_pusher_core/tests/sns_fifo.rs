//! SNS FIFO topics against moto, read from a FIFO SQS queue subscribed to
//! the topic: `MessageGroupId` is the job's group (the user's bare JID),
//! `MessageDeduplicationId` its event ID (so a second publish of one event
//! is dropped by SNS), each group's order is kept, with and without
//! batching; a standard topic gets neither. Skips without moto unless
//! EP_REQUIRE_MOTO is set.

mod common;
mod sns_common;

use common::Collector;
use event_pusher_core::sns::{SnsJob, SnsPool};
use event_pusher_core::EventId;
use sns_common::*;
use std::collections::HashMap;

fn fifo_job(tag: u64, topic: &str, group: &str, n: u64) -> (SnsJob<u64>, String) {
    let mut job = job(tag, topic, &format!("{{\"n\":{n}}}"));
    job.group = Some(group.to_owned());
    let id = String::from_utf8(job.id.text().to_vec()).expect("ascii");
    (job, id)
}

fn fifo_in_order(batching: bool) {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.fifo_topic_with_queue("ep-fifo");
    let mut cfg = config(&moto.url);
    cfg.batching = batching;
    let (collector, sink) = Collector::pair();
    let pool: SnsPool<u64> = SnsPool::start(cfg, sink).expect("pool");
    let mut ids = HashMap::new();
    for n in 0..12u64 {
        let group = if n.is_multiple_of(2) {
            "alice@localhost"
        } else {
            "zoë@localhost"
        };
        let (job, id) = fifo_job(n, &topic, group, n);
        ids.insert(format!("{{\"n\":{n}}}"), id);
        pool.publish(job).expect("queued");
    }
    let got = moto.receive_fifo(&queue, 12);
    assert_eq!(got.len(), 12);
    let mut per_group: HashMap<String, Vec<u64>> = HashMap::new();
    for d in &got {
        let n: u64 = d
            .body
            .trim_start_matches("{\"n\":")
            .trim_end_matches('}')
            .parse()
            .expect("n");
        let group = d
            .system
            .get("MessageGroupId")
            .expect("MessageGroupId")
            .clone();
        let expected_group = if n.is_multiple_of(2) {
            "alice@localhost"
        } else {
            "zo%C3%AB@localhost"
        };
        assert_eq!(group, expected_group, "{d:?}");
        assert_eq!(
            d.system.get("MessageDeduplicationId"),
            ids.get(&d.body),
            "{d:?}"
        );
        per_group.entry(group).or_default().push(n);
    }
    assert_eq!(per_group["alice@localhost"], vec![0, 2, 4, 6, 8, 10]);
    assert_eq!(per_group["zo%C3%AB@localhost"], vec![1, 3, 5, 7, 9, 11]);
    let s = pool.stats();
    assert_eq!((s.published, s.dropped_retries_exhausted), (12, 0), "{s:?}");
    drop(collector);
}

#[test]
fn fifo_topic_gets_group_and_deduplication_ids_in_order_with_batching() {
    fifo_in_order(true);
}

#[test]
fn fifo_topic_gets_group_and_deduplication_ids_in_order_without_batching() {
    fifo_in_order(false);
}

#[test]
fn a_second_publish_of_one_event_is_deduplicated_by_sns() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.fifo_topic_with_queue("ep-fifo-dedup");
    let mut cfg = config(&moto.url);
    cfg.batching = false;
    let (_collector, sink) = Collector::pair();
    let pool: SnsPool<u64> = SnsPool::start(cfg, sink).expect("pool");
    let (first, id) = fifo_job(1, &topic, "alice@localhost", 1);
    let mut again = job(2, &topic, "{\"n\":1}");
    again.id = EventId::parse(id.as_bytes()).expect("id");
    again.group = Some("alice@localhost".into());
    let (marker, _) = fifo_job(3, &topic, "alice@localhost", 2);
    pool.publish(first).expect("queued");
    pool.publish(again).expect("queued");
    pool.publish(marker).expect("queued");
    // The marker comes after both in the group: once it is read, a second
    // copy would have been read before it.
    let got = moto.receive_fifo(&queue, 2);
    let bodies: Vec<&str> = got.iter().map(|d| d.body.as_str()).collect();
    assert_eq!(bodies, vec!["{\"n\":1}", "{\"n\":2}"]);
    assert_eq!(pool.stats().published, 3, "SNS accepted all three requests");
}

#[test]
fn a_standard_topic_gets_no_fifo_ids() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("ep-standard");
    let (_collector, sink) = Collector::pair();
    let pool: SnsPool<u64> = SnsPool::start(config(&moto.url), sink).expect("pool");
    let (job, _) = fifo_job(1, &topic, "alice@localhost", 1);
    pool.publish(job).expect("queued");
    let got = moto.receive(&queue, 1);
    assert_eq!(got.len(), 1);
    assert!(
        !got[0].system.contains_key("MessageGroupId"),
        "{:?}",
        got[0]
    );
    assert!(
        !got[0].system.contains_key("MessageDeduplicationId"),
        "{:?}",
        got[0]
    );
}
