//! Orphaned-partition watchdog: a partition with messages waiting whose stored offset has not
//! moved for a long time, and which this process does not own, is consumed by nobody. The
//! process then leaves and rejoins the group, which forces a fresh assignment.
//!
//! Why: a group coordinator can hand out a stale assignment after a member dies without
//! leaving (tansu 0.6.0 answers SyncGroup in its "formed" state with the stored assignment and
//! ignores the leader's new one), and then the dead member's partitions stay orphaned for good.
//! A healthy Apache Kafka never triggers this; the check costs one metadata request, one
//! watermark request per stale unowned partition and one query, every [`ORPHAN_CHECK_EVERY`].
//!
//! It only acts when PostgreSQL answered (an outage stalls every commit and must not cause
//! rebalance storms) and at most once per `orphan_after`. The decision is pure ([`stale_unowned`]
//! then [`orphans`]); the consumer thread does the requests.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::builder::PartitionKey;
use crate::apply::StoredOffset;

pub(super) const ORPHAN_CHECK_EVERY: Duration = Duration::from_secs(5);

/// When to check, and when the last rejoin was.
pub(super) struct Watchdog {
    last_check: Instant,
    last_rejoin: Option<Instant>,
    started: Instant,
    /// A partition counts as orphaned when nothing was committed for it for this long.
    pub orphan_after: Duration,
}

impl Watchdog {
    pub fn new(orphan_after: Duration, now: Instant) -> Self {
        Self { last_check: now, last_rejoin: None, started: now, orphan_after }
    }

    /// Whether a check is due now (and if so, it counts as done).
    pub fn due(&mut self, now: Instant) -> bool {
        let since = |t: Instant| now.saturating_duration_since(t);
        if since(self.last_check) < ORPHAN_CHECK_EVERY || since(self.started) < self.orphan_after {
            return false;
        }
        self.last_check = now;
        self.last_rejoin.is_none_or(|t| since(t) >= self.orphan_after)
    }

    pub fn rejoined(&mut self, now: Instant) {
        self.last_rejoin = Some(now);
    }
}

/// The partitions worth a watermark request: owned by no one here, and without a commit since
/// `stale_before` (in a healthy group: none).
pub(super) fn stale_unowned(
    partitions: &[PartitionKey],
    stored: &BTreeMap<PartitionKey, StoredOffset>,
    owned: &HashSet<PartitionKey>,
    stale_before: DateTime<Utc>,
) -> Vec<PartitionKey> {
    partitions
        .iter()
        .filter(|key| !owned.contains(*key))
        .filter(|key| stored.get(*key).is_none_or(|s| s.last_commit_at < stale_before))
        .cloned()
        .collect()
}

/// Of the stale unowned partitions with their high watermarks, those with messages waiting.
pub(super) fn orphans(
    watermarks: &[(PartitionKey, i64)],
    stored: &BTreeMap<PartitionKey, StoredOffset>,
) -> Vec<PartitionKey> {
    watermarks
        .iter()
        .filter(|(key, high)| *high > stored.get(key).map_or(0, |s| s.next_offset))
        .map(|(key, _)| key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        ("t".to_owned(), p)
    }

    fn stored(next_offset: i64, committed_ago_secs: i64) -> StoredOffset {
        StoredOffset {
            next_offset,
            event_time_watermark: None,
            last_commit_at: Utc::now() - chrono::Duration::seconds(committed_ago_secs),
        }
    }

    #[test]
    fn orphans_are_unowned_stale_and_have_messages_waiting() {
        let partitions = [key(0), key(1), key(2), key(3)];
        let stored = BTreeMap::from([(key(0), stored(10, 100)), (key(1), stored(10, 1)), (key(2), stored(10, 100))]);
        let owned = HashSet::from([key(0)]);
        let stale_before = Utc::now() - chrono::Duration::seconds(30);
        // 0 is ours, 1 committed lately: neither is worth a request; 2 and 3 (never committed) are.
        let candidates = stale_unowned(&partitions, &stored, &owned, stale_before);
        assert_eq!(candidates, [key(2), key(3)]);
        // 2 has nothing past its stored offset; 3 has messages and no row.
        assert_eq!(orphans(&[(key(2), 10), (key(3), 4)], &stored), [key(3)]);
        assert!(orphans(&[(key(3), 0)], &stored).is_empty(), "an empty partition is no orphan");
    }

    #[test]
    fn checks_start_after_orphan_after_and_a_rejoin_waits_as_long() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Duration::from_secs(30), t0);
        assert!(!w.due(t0 + Duration::from_secs(10)), "too early after start");
        assert!(w.due(t0 + Duration::from_secs(31)));
        assert!(!w.due(t0 + Duration::from_secs(33)), "checked 2 s ago");
        w.rejoined(t0 + Duration::from_secs(36));
        assert!(!w.due(t0 + Duration::from_secs(40)), "rejoined 4 s ago");
        assert!(w.due(t0 + Duration::from_secs(70)));
    }
}
