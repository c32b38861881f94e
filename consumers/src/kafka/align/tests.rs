use std::sync::OnceLock;

use chrono::TimeZone;

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

/// [`STALLED_AFTER`] in milliseconds, plus `ms`.
fn stalled_ms(ms: u64) -> u64 {
    STALLED_AFTER.as_millis() as u64 + ms
}

/// `ms` milliseconds after the same instant, in every test.
fn at(ms: u64) -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now) + Duration::from_millis(ms)
}

fn key(topic: &str, partition: i32) -> PartitionKey {
    (topic.to_owned(), partition)
}

fn day(d: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, hour, 0, 0).unwrap()
}

/// The wall clock of these tests: long after every event.
fn clock() -> DateTime<Utc> {
    day(30, 0)
}

/// Owned partitions as (key, next offset, idle).
fn seen(parts: &[(PartitionKey, Option<i64>, Duration)]) -> Vec<Seen<'_>> {
    parts.iter().map(|(key, next, idle)| Seen { key, next: *next, idle: *idle }).collect()
}

/// Statistics saying every partition of `keys` has messages waiting.
fn waiting(a: &mut Alignment, keys: &[&PartitionKey]) {
    a.watermarks(keys.iter().map(|k| ((*k).clone(), 1_000_000)));
}

fn moves(pause: &[&PartitionKey], resume: &[&PartitionKey]) -> Moves {
    let owned = |keys: &[&PartitionKey]| keys.iter().map(|k| (*k).clone()).collect();
    Moves { pause: owned(pause), resume: owned(resume), passed_over: Vec::new() }
}

#[test]
fn a_partition_past_the_bound_waits_for_the_oldest_one_with_messages_waiting() {
    let (p0, p1) = (key("t", 0), key("t", 1));
    let mut a = Alignment::new(Some(HOUR));
    let parts = [(p0.clone(), Some(100), Duration::ZERO), (p1.clone(), Some(10), Duration::ZERO)];
    a.watermarks([(p0.clone(), 1_000), (p1.clone(), 1_000)]);
    assert!(!a.delivered(&p0, day(5, 0), clock()));
    assert!(!a.delivered(&p1, day(1, 0), clock()));
    assert_eq!(a.plan(&seen(&parts), at(0)), moves(&[&p0], &[]), "four days ahead");
    assert_eq!(a.paused(), 1);
    assert_eq!(a.plan(&seen(&parts), at(0)), Moves::default(), "no move twice");
    // p1 comes within the hour of p0 (p1, where the floor came from, is never paused for
    // moving it): p0 stays paused until p1 is within half the hour.
    assert!(!a.delivered(&p1, day(4, 23), clock()));
    assert_eq!(a.plan(&seen(&parts), at(0)), Moves::default());
    assert!(!a.delivered(&p1, day(4, 23) + chrono::Duration::minutes(30), clock()));
    assert_eq!(a.plan(&seen(&parts), at(0)), moves(&[], &[&p0]));
    // Once the floor is known, a delivery past it pauses at once: the partition's prefetched
    // messages must not come first.
    assert!(!a.delivered(&p0, day(5, 0) + chrono::Duration::minutes(30), clock()), "within the hour of p1's 23:30");
    assert!(a.delivered(&p0, day(5, 1), clock()), "past it");
    assert!(!a.delivered(&p0, day(5, 2), clock()), "paused already");
    assert_eq!(a.paused(), 1);
}

#[test]
fn partitions_with_nothing_waiting_or_stalled_hold_nobody() {
    let (p0, p1) = (key("t", 0), key("t", 1));
    let mut a = Alignment::new(Some(HOUR));
    a.watermarks([(p0.clone(), 1_000), (p1.clone(), 10)]);
    a.delivered(&p0, day(5, 0), clock());
    a.delivered(&p1, day(1, 0), clock());
    // p1 read everything it has (next = high): p0 is not held for it.
    let caught_up = [(p0.clone(), Some(100), Duration::ZERO), (p1.clone(), Some(10), Duration::ZERO)];
    assert_eq!(a.plan(&seen(&caught_up), at(0)), Moves::default());
    // p1 has messages waiting: p0 waits…
    a.watermarks([(p1.clone(), 20)]);
    assert_eq!(a.plan(&seen(&caught_up), at(0)), moves(&[&p0], &[]));
    // …until p1 delivers nothing for STALLED_AFTER while p0 waits for it…
    let stalled = [(p0.clone(), Some(100), STALLED_AFTER), (p1.clone(), Some(10), STALLED_AFTER)];
    let passed = Moves { passed_over: vec![p1.clone()], ..moves(&[], &[&p0]) };
    assert_eq!(a.plan(&seen(&stalled), at(stalled_ms(0))), passed);
    // …and p1 holds nobody until it delivers again.
    let still =
        [(p0.clone(), Some(100), Duration::ZERO), (p1.clone(), Some(10), Duration::from_millis(stalled_ms(500)))];
    assert_eq!(a.plan(&seen(&still), at(stalled_ms(500))), Moves::default());
    assert_eq!(a.plan(&seen(&caught_up), at(stalled_ms(600))), moves(&[&p0], &[]), "p1 delivered");
    // A partition with nothing waiting is never paused, however far ahead.
    a.watermarks([(p0.clone(), 100)]);
    assert_eq!(a.plan(&seen(&caught_up), at(stalled_ms(700))), moves(&[], &[&p0]));
    assert!(!a.delivered(&p0, day(9, 0), clock()));
}

#[test]
fn idle_time_before_the_others_pause_does_not_count_as_stalled() {
    // tansu serves one partition at a time: p1 delivered nothing for 5 s while p0 was served.
    let (p0, p1) = (key("t", 0), key("t", 1));
    let mut a = Alignment::new(Some(HOUR));
    waiting(&mut a, &[&p0, &p1]);
    a.delivered(&p0, day(5, 0), clock());
    let starved =
        [(p0.clone(), Some(100), Duration::ZERO), (p1.clone(), Some(10), Duration::from_millis(stalled_ms(3_000)))];
    assert_eq!(a.plan(&seen(&starved), at(0)), moves(&[&p0], &[]), "p1 is unknown, maybe older");
    let idle = Duration::from_millis(stalled_ms(4_000));
    let later = [(p0.clone(), Some(100), idle), (p1.clone(), Some(10), idle)];
    assert_eq!(a.plan(&seen(&later), at(1_000)), Moves::default(), "held for 1 s only");
    let passed = Moves { passed_over: vec![p1.clone()], ..moves(&[], &[&p0]) };
    assert_eq!(a.plan(&seen(&later), at(stalled_ms(0))), passed, "held for STALLED_AFTER: p1 is stuck");
}

#[test]
fn a_partition_yet_to_deliver_holds_the_others_until_it_delivers() {
    let (p0, p1) = (key("t", 0), key("t", 1));
    let mut a = Alignment::new(Some(HOUR));
    let parts = [(p0.clone(), None, Duration::ZERO), (p1.clone(), None, Duration::from_millis(500))];
    // No statistics yet: nothing is known to wait, nobody is held.
    a.delivered(&p0, day(5, 0), clock());
    assert_eq!(a.plan(&seen(&parts), at(0)), Moves::default());
    waiting(&mut a, &[&p0, &p1]);
    assert_eq!(a.plan(&seen(&parts), at(0)), moves(&[&p0], &[]), "p1 may be older");
    // p1's first event never pauses p1 itself, whatever the floor said.
    assert!(!a.delivered(&p1, day(5, 0), clock()));
    assert_eq!(a.plan(&seen(&parts), at(0)), moves(&[], &[&p0]), "p1 is on the same day");
}

#[test]
fn live_partitions_and_other_topics_never_hold_each_other() {
    let (p0, p1, q0) = (key("t", 0), key("t", 1), key("q", 0));
    let mut a = Alignment::new(Some(HOUR));
    waiting(&mut a, &[&p0, &p1, &q0]);
    let now = clock();
    // Event times past the clock count as the clock: a partition ahead of real time is not
    // ahead of a live one.
    a.delivered(&p0, now + chrono::Duration::minutes(59), now);
    a.delivered(&p1, now - chrono::Duration::minutes(50), now);
    a.delivered(&q0, day(1, 0), now);
    let parts =
        [(p0.clone(), Some(5), Duration::ZERO), (p1.clone(), Some(5), Duration::ZERO), (q0, Some(5), Duration::ZERO)];
    assert_eq!(a.plan(&seen(&parts), at(0)), Moves::default(), "q's old partition holds only q's");
}

#[test]
fn off_it_never_moves_and_a_reset_hands_back_the_paused() {
    let (p0, p1) = (key("t", 0), key("t", 1));
    let parts = [(p0.clone(), None, Duration::ZERO), (p1.clone(), None, Duration::ZERO)];
    let mut off = Alignment::new(None);
    waiting(&mut off, &[&p0, &p1]);
    off.delivered(&p0, day(20, 0), clock());
    off.delivered(&p1, day(1, 0), clock());
    assert_eq!(off.plan(&seen(&parts), at(0)), Moves::default());

    let mut a = Alignment::new(Some(HOUR));
    waiting(&mut a, &[&p0, &p1]);
    a.delivered(&p0, day(20, 0), clock());
    a.delivered(&p1, day(1, 0), clock());
    assert_eq!(a.plan(&seen(&parts), at(0)), moves(&[&p0], &[]));
    assert_eq!(a.reset(), vec![p0.clone()]);
    assert_eq!(a.paused(), 0);
    // After the reset nothing is known: p0's first event does not pause it.
    assert!(!a.delivered(&p0, day(20, 0), clock()));
    // A partition no longer owned is forgotten by the next plan.
    a.delivered(&p1, day(1, 0), clock());
    assert_eq!(a.plan(&seen(&parts), at(0)), moves(&[&p0], &[]));
    assert_eq!(a.plan(&seen(&parts[1..]), at(0)), Moves::default());
    assert_eq!(a.paused(), 0);
}

/// Partitions 0 and 1 of topic "t", both with messages waiting, read up to `t0` and `t1`
/// and planned once (no move expected): the alignment and the partitions as owned.
fn two_planned(t0: DateTime<Utc>, t1: DateTime<Utc>) -> (Alignment, [(PartitionKey, Option<i64>, Duration); 2]) {
    let (p0, p1) = (key("t", 0), key("t", 1));
    let mut a = Alignment::new(Some(HOUR));
    waiting(&mut a, &[&p0, &p1]);
    a.delivered(&p0, t0, clock());
    a.delivered(&p1, t1, clock());
    let parts = [(p0, Some(1), Duration::ZERO), (p1, Some(1), Duration::ZERO)];
    assert_eq!(a.plan(&seen(&parts), at(0)), Moves::default());
    (a, parts)
}

#[test]
fn the_partition_behind_is_held_to_the_next_one_once_it_overtakes_it() {
    let (mut a, [(p0, ..), _]) = two_planned(day(1, 0), day(1, 1));
    assert!(!a.delivered(&p0, day(1, 2), clock()), "within the hour of p1");
    assert!(a.delivered(&p0, day(1, 3), clock()), "past it: paused at once, not at the next plan");
}

#[test]
fn a_late_event_does_not_take_its_partition_back() {
    // One event in a hundred of the standard stream is up to six hours late: read as the
    // partition's position, it made the others look hours ahead and paused them.
    let (mut a, parts) = two_planned(day(5, 0), day(5, 0));
    let (p0, p1) = (parts[0].0.clone(), parts[1].0.clone());
    assert!(!a.delivered(&p1, day(4, 18), clock()), "six hours late");
    assert_eq!(a.plan(&seen(&parts), at(0)), Moves::default(), "p0 is not ahead of p1");
    assert!(a.delivered(&p0, day(5, 2), clock()), "past p1's furthest by more than the hour");
}
