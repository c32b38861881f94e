use std::collections::BTreeMap;

use super::*;

fn config(max_messages: usize) -> IngestConfig {
    IngestConfig::for_tests(BTreeMap::from([("interactions".to_owned(), TopicKind::Interactions)]), max_messages)
}

fn payload(id: usize) -> String {
    serde_json::json!({"id": format!("e{id}"), "tenantId": "acme", "customerId": "c1", "offerId": "o1",
        "channelId": "web", "outcome": "impression", "occurredAt": Utc::now().to_rfc3339()})
    .to_string()
}

fn received<'a>(topic: &'a str, partition: i32, offset: i64, payload: &'a str) -> Received<'a> {
    Received { topic, partition, offset, key: Some(b"acme:c1"), payload: Some(payload.as_bytes()) }
}

fn owning(b: &mut Builder, partitions: &[(i32, Option<i64>)]) {
    b.assign(partitions.iter().map(|(p, c)| (("interactions".to_owned(), *p), *c)).collect(), Instant::now());
}

#[test]
fn only_owned_partitions_of_known_topics_from_their_stored_offset_are_taken() {
    let mut b = Builder::new(&config(100));
    owning(&mut b, &[(0, Some(10)), (1, None)]);
    let p = payload(1);
    let now = Instant::now();
    b.push(received("interactions", 2, 0, &p), now, Utc::now()); // not owned
    b.push(received("other-topic", 0, 10, &p), now, Utc::now()); // unknown topic
    b.push(received("interactions", 0, 9, &p), now, Utc::now()); // applied already
    assert!(b.take(1).is_none(), "nothing was taken");
    b.push(received("interactions", 0, 10, &p), now, Utc::now());
    b.push(received("interactions", 1, 0, &p), now, Utc::now());
    let batch = b.take(7).expect("a batch");
    assert_eq!(batch.generation, 7);
    assert_eq!(batch.entries.len(), 2);
    let pos = &batch.positions[&("interactions".to_owned(), 0)];
    assert_eq!((pos.expected, pos.next), (Some(10), 11));
    assert_eq!(batch.positions[&("interactions".to_owned(), 1)].expected, None);
    // The next batch of each partition starts where this one ended.
    assert_eq!(b.owned()[&("interactions".to_owned(), 0)], Some(11));
    assert_eq!(b.owned()[&("interactions".to_owned(), 1)], Some(1));
}

#[test]
fn a_batch_is_full_at_its_bound_and_due_after_its_wait() {
    let mut b = Builder::new(&config(2));
    owning(&mut b, &[(0, None)]);
    let t0 = Instant::now();
    assert_eq!(b.due_in(t0), None, "an empty batch is never due");
    let (p1, p2) = (payload(1), payload(2));
    assert!(!b.push(received("interactions", 0, 0, &p1), t0, Utc::now()).full);
    assert_eq!(b.due_in(t0 + Duration::from_millis(30)), Some(Duration::from_millis(70)));
    assert_eq!(b.due_in(t0 + Duration::from_secs(1)), Some(Duration::ZERO));
    assert!(b.push(received("interactions", 0, 1, &p2), t0, Utc::now()).full, "full at 2 messages");
}

#[test]
fn an_undeliverable_range_is_dead_lettered_where_the_partition_stopped_only() {
    let mut b = Builder::new(&config(100));
    owning(&mut b, &[(0, Some(5))]);
    let p = payload(1);
    let now = Instant::now();
    b.push(received("interactions", 0, 5, &p), now, Utc::now());
    let found = |first, end| Found { topic: "interactions".into(), partition: 0, first, end, error: "codec".into() };
    assert!(!b.skip_undeliverable(&found(7, 9), now), "the partition stopped at 6, not 7");
    assert!(b.skip_undeliverable(&found(6, 9), now));
    let batch = b.take(1).unwrap();
    let d = &batch.dead_letters[0];
    assert_eq!(
        (d.offset, d.last_offset, d.rejection.reason, d.rejection.tenant_id.clone()),
        (6, 8, RejectReason::Undeliverable, None)
    );
    assert_eq!(batch.positions[&("interactions".to_owned(), 0)].next, 9, "the offsets move past the range");
    let idle = b.idle_partitions(now);
    assert_eq!(idle, [("interactions".to_owned(), 0, Some(9), Duration::ZERO)]);
}

#[test]
fn resync_resumes_every_owned_partition_from_the_stored_offsets() {
    let mut b = Builder::new(&config(100));
    owning(&mut b, &[(0, Some(5)), (1, Some(3))]);
    let p = payload(1);
    b.push(received("interactions", 0, 5, &p), Instant::now(), Utc::now());
    b.resync(&HashMap::from([(("interactions".to_owned(), 0), 4)]));
    assert!(b.take(1).is_none(), "the batch of the fenced generation is dropped");
    assert_eq!(b.owned()[&("interactions".to_owned(), 0)], Some(4));
    assert_eq!(b.owned()[&("interactions".to_owned(), 1)], None);
}

/// Each owned partition's idle time at `now`, by partition.
fn idle(b: &Builder, now: Instant) -> BTreeMap<i32, Duration> {
    b.idle_partitions(now).into_iter().map(|(_, p, _, idle)| (p, idle)).collect()
}

#[test]
fn time_spent_not_polling_is_not_idle_time() {
    let mut b = Builder::new(&config(100));
    owning(&mut b, &[(0, Some(5)), (1, Some(3))]);
    let p = payload(1);
    let t0 = Instant::now();
    b.push(received("interactions", 0, 5, &p), t0, Utc::now());
    let t3 = t0 + Duration::from_secs(3);
    assert_eq!(idle(&b, t3)[&0], Duration::from_secs(3));
    // The consumer thread waited 2.5 s for the committer: that is not idle time…
    b.not_polled(Duration::from_millis(2_500), t3);
    assert_eq!(idle(&b, t3)[&0], Duration::from_millis(500));
    // …and never makes a partition look as if it had delivered in the future.
    b.not_polled(Duration::from_secs(60), t3);
    assert_eq!(idle(&b, t3), BTreeMap::from([(0, Duration::ZERO), (1, Duration::ZERO)]));
}

#[test]
fn a_resumed_partition_starts_its_idle_time_afresh() {
    let mut b = Builder::new(&config(100));
    let t0 = Instant::now();
    b.assign(HashMap::from([(("interactions".to_owned(), 0), Some(5)), (("interactions".to_owned(), 1), Some(3))]), t0);
    let t5 = t0 + Duration::from_secs(5);
    // Partition 1 was paused from t0 to t5: it could not deliver.
    b.resumed(&[("interactions".to_owned(), 1)], t5);
    assert_eq!(idle(&b, t5), BTreeMap::from([(0, Duration::from_secs(5)), (1, Duration::ZERO)]));
}
