//! Orphaned-partition watchdog: a partition with messages waiting whose stored offset has not
//! moved for a long time, and which this process does not own, is consumed by nobody. The
//! process then leaves and rejoins the group, which forces a fresh assignment.
//!
//! Why: a group coordinator can hand out a stale assignment after a member dies without
//! leaving (tansu 0.6.0 answers SyncGroup in its "formed" state with the stored assignment and
//! ignores the leader's new one), and then the dead member's partitions stay orphaned for good.
//! A healthy Apache Kafka never triggers this; the check costs one metadata request, one
//! watermark request per partition and one query, every `ORPHAN_CHECK_EVERY`.
//!
//! It only acts when PostgreSQL answered (an outage stalls every commit and must not cause
//! rebalance storms) and at most once per `orphan_after`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::consumer::IngestContext;
use crate::apply::load_offsets;

pub(super) const ORPHAN_CHECK_EVERY: Duration = Duration::from_secs(5);

pub(super) struct Watchdog {
    last_check: Instant,
    last_rejoin: Option<Instant>,
    started: Instant,
    /// A partition counts as orphaned when nothing was committed for it for this long.
    orphan_after: Duration,
}

impl Watchdog {
    pub fn new(orphan_after: Duration) -> Self {
        let now = Instant::now();
        Self { last_check: now, last_rejoin: None, started: now, orphan_after }
    }

    /// Runs the check when due; returns true when the caller should rejoin the group.
    pub fn due_and_orphans(&mut self, consumer: &BaseConsumer<IngestContext>) -> bool {
        if self.last_check.elapsed() < ORPHAN_CHECK_EVERY || self.started.elapsed() < self.orphan_after {
            return false;
        }
        self.last_check = Instant::now();
        if self.last_rejoin.is_some_and(|t| t.elapsed() < self.orphan_after) {
            return false;
        }
        let orphans = orphaned(consumer, self.orphan_after);
        if orphans.is_empty() {
            return false;
        }
        tracing::warn!(?orphans, "partitions with waiting messages have no active consumer; rejoining the group");
        metrics::counter!("ingest_orphan_rejoins_total").increment(1);
        self.last_rejoin = Some(Instant::now());
        true
    }
}

fn orphaned(consumer: &BaseConsumer<IngestContext>, orphan_after: Duration) -> Vec<(String, i32)> {
    let ctx = consumer.context();
    let timeout = Duration::from_secs(2);
    let topics = ctx.config().topic_names();
    // PostgreSQL first: without an answer there is nothing to conclude.
    let Ok(stored) = ctx.runtime().block_on(load_offsets(ctx.pool(), &topics)) else { return Vec::new() };
    // One metadata request for every topic; a broker that does not answer ends the check.
    let Ok(md) = consumer.fetch_metadata(None, timeout) else { return Vec::new() };
    let mine: HashSet<(String, i32)> = ctx.assigned();
    let stale_before = chrono::Utc::now() - chrono::Duration::from_std(orphan_after).unwrap_or(chrono::Duration::MAX);
    let mut out = Vec::new();
    for t in md.topics().iter().filter(|t| topics.iter().any(|n| n == t.name())) {
        for p in t.partitions() {
            let key = (t.name().to_owned(), p.id());
            // Only partitions nobody here owns and nobody committed lately are worth a
            // watermark request: in a healthy group that is none of them.
            let stale = stored.get(&key).is_none_or(|s| s.last_commit_at < stale_before);
            if mine.contains(&key) || !stale {
                continue;
            }
            let Ok((_, high)) = consumer.fetch_watermarks(&key.0, key.1, timeout) else { return Vec::new() };
            let committed = stored.get(&key).map_or(0, |s| s.next_offset);
            if high > committed {
                out.push(key);
            }
        }
    }
    out
}
