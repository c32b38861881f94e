//! Event-time alignment: a partition that has read more than `max_ahead` of event time past
//! the oldest partition of its topic that still has messages waiting is paused until that one
//! is within half of it.
//!
//! Why: the running totals (`apply::running`, `apply::wide_chains`) keep a checkpoint per day
//! with events, and a delta row is added to its day's checkpoint and to every later one. When
//! one partition runs days ahead of another, it creates the later checkpoints first, and every
//! batch of the one behind then fans out to all of them. tansu 0.6.0 serves a topic's
//! partitions nearly one after another: 300,000 bench traces over 28 days left one partition on
//! December 7 while another was on November 11, each of its batches fanned out to 20-27
//! checkpoints, and ingest ran at half the rate with ~100 MB more memory (BENCHMARKS.md, "Write
//! path, twelfth pass"). Apache Kafka serves partitions in turn, but a backfill, or partitions
//! of uneven backlogs after a stop, skew the same way.
//!
//! A paused partition is one whose queue the consumer thread stops reading (`queues`): what
//! librdkafka prefetched for it stays, and it stops fetching for it once that queue is full.
//! (librdkafka's own pause dropped the prefetched messages, to be fetched again on resume; with
//! tansu filling each fetch response from one partition, at a six-hour bound nearly every
//! response ended in a pause and the interactions ingested at 0.13× the bare consumer:
//! BENCHMARKS.md "Write path, fifteenth pass".) Checkpoints are daily, so the default bound of a
//! day keeps a batch of the partition behind on at most three of them.
//!
//! It never waits long on a partition with nothing to give: only partitions with messages
//! waiting (by the last statistics' high watermark; none until the first statistics) hold
//! others back, and one that delivers nothing for [`STALLED_AFTER`] while others of its topic
//! are paused for it is passed over until it delivers again (a stuck partition, see
//! `undeliverable`). Idle time before the pause does not count: tansu serves one partition
//! at a time, so the one behind may have been starved, not stuck; nor does the time a
//! partition was itself paused, or the consumer thread waited for the committer (the builder
//! discounts both). A partition's position is the latest event time it has delivered, so a
//! late event does not take it back. A partition with no event
//! time yet holds back all that have one (it may be the oldest). Event times are clamped to
//! the wall clock, so live partitions are never held by each other, and only partitions with
//! messages waiting are paused. Pure: the consumer thread applies its moves.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::builder::PartitionKey;

/// A partition that delivered nothing for this long while others were paused for it no
/// longer holds them back. On tansu most pass-overs are of partitions the broker starved,
/// not stuck ones (27 in one run of 962,848 interactions, every message delivered), and they
/// let the others go on: at 10 s there were none, and the run was slower (8,581 against
/// 11,237 interactions/s; BENCHMARKS.md "Write path, fifteenth pass").
pub(super) const STALLED_AFTER: Duration = Duration::from_secs(2);

/// The oldest event time a topic's partitions are held to: `Unknown` when a partition with
/// messages waiting has delivered none yet (it sorts first: it may be the oldest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Floor {
    Unknown,
    At(DateTime<Utc>),
}

/// The partitions that hold a topic back (messages waiting, not stalled) as of the last plan,
/// and the lowest of their floors then.
#[derive(Debug, Default)]
struct Holders {
    keys: Vec<PartitionKey>,
    lowest: Option<Floor>,
}

/// Partitions to pause and to resume, and those newly passed over as stalled (nothing to do
/// for them: reported so that the log shows why others were let run ahead).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Moves {
    pub pause: Vec<PartitionKey>,
    pub resume: Vec<PartitionKey>,
    pub passed_over: Vec<PartitionKey>,
}

impl Moves {
    pub fn is_empty(&self) -> bool {
        self.pause.is_empty() && self.resume.is_empty() && self.passed_over.is_empty()
    }
}

/// A partition as the builder sees it: the offset it delivers next (`None`: from the
/// beginning) and how long it has delivered nothing.
pub(super) struct Seen<'a> {
    pub key: &'a PartitionKey,
    pub next: Option<i64>,
    pub idle: Duration,
}

pub(super) struct Alignment {
    /// `None`: alignment off.
    max_ahead: Option<chrono::Duration>,
    /// The latest event time each owned partition has delivered (clamped to the clock).
    frontier: HashMap<PartitionKey, DateTime<Utc>>,
    /// High watermarks from the last statistics.
    high: HashMap<PartitionKey, i64>,
    /// Partitions with messages waiting at the last [`Alignment::plan`].
    waiting: HashSet<PartitionKey>,
    /// Per topic, the partitions that held it back at the last plan.
    holders: HashMap<String, Holders>,
    paused: HashSet<PartitionKey>,
    /// Since when each topic has had paused partitions.
    held_since: HashMap<String, Instant>,
    /// Partitions passed over as stalled, with their last delivery then: they hold others
    /// back again once they deliver.
    stalled: HashMap<PartitionKey, Instant>,
}

impl Alignment {
    pub fn new(max_ahead: Option<Duration>) -> Alignment {
        Alignment {
            max_ahead: max_ahead.and_then(|d| chrono::Duration::from_std(d).ok()),
            frontier: HashMap::new(),
            high: HashMap::new(),
            waiting: HashSet::new(),
            holders: HashMap::new(),
            paused: HashSet::new(),
            held_since: HashMap::new(),
            stalled: HashMap::new(),
        }
    }

    /// Forgets everything (a new assignment, or a resync that seeks every partition); returns
    /// the partitions that were paused, for the caller to resume.
    /// The high watermarks stay: they are the broker's, whoever reads the partition.
    pub fn reset(&mut self) -> Vec<PartitionKey> {
        self.frontier.clear();
        self.waiting.clear();
        self.holders.clear();
        self.held_since.clear();
        self.stalled.clear();
        let mut paused: Vec<PartitionKey> = std::mem::take(&mut self.paused).into_iter().collect();
        paused.sort_unstable();
        paused
    }

    /// The statistics' high watermarks.
    pub fn watermarks(&mut self, high: impl IntoIterator<Item = (PartitionKey, i64)>) {
        self.high.extend(high);
    }

    /// Records a delivered event's time; returns whether its partition is now too far ahead
    /// and must be paused at once (before it delivers more from its prefetched queue).
    pub fn delivered(&mut self, key: &PartitionKey, event_time: DateTime<Utc>, clock: DateTime<Utc>) -> bool {
        if self.max_ahead.is_none() {
            return false;
        }
        let t = event_time.min(clock);
        let first = match self.frontier.get_mut(key) {
            Some(f) => {
                // The furthest the partition has read: a late event (the standard stream has
                // one in a hundred up to six hours late) does not take it back, nor make the
                // others look that much further ahead of it.
                *f = (*f).max(t);
                false
            }
            None => self.frontier.insert(key.clone(), t).is_none(),
        };
        // A partition's first event may be what the floor was waiting for (`Floor::Unknown`):
        // the next plan places it.
        if first || self.paused.contains(key) || !self.waiting.contains(key) {
            return false;
        }
        // The floor as of the last plan first: event times mostly only grow, so it is at most
        // the floor now, and most deliveries stop here.
        let lowest = self.holders.get(&key.0).and_then(|h| h.lowest);
        if !lowest.is_some_and(|floor| self.beyond(floor, t, 1)) {
            return false;
        }
        let ahead = self.floor_for(key).is_some_and(|floor| self.beyond(floor, t, 1));
        if ahead {
            self.paused.insert(key.clone());
        }
        ahead
    }

    /// Recomputes every topic's floor from `seen` (the owned partitions, at `now`) and returns
    /// the partitions to pause and to resume.
    pub fn plan(&mut self, seen: &[Seen<'_>], now: Instant) -> Moves {
        if self.max_ahead.is_none() {
            return Moves::default();
        }
        self.waiting = seen
            .iter()
            .filter(|s| self.high.get(s.key).is_some_and(|&high| high > s.next.unwrap_or(0)))
            .map(|s| s.key.clone())
            .collect();
        self.holders.clear();
        let mut moves = Moves::default();
        let candidates: Vec<&Seen<'_>> = seen.iter().filter(|s| self.waiting.contains(s.key)).collect();
        for s in candidates {
            let was_stalled = self.stalled.contains_key(s.key);
            if self.stalled(s, now) {
                // (A paused partition delivers nothing by design: not news.)
                if !was_stalled && !self.paused.contains(s.key) {
                    moves.passed_over.push(s.key.clone());
                }
            } else {
                let floor = self.floor_of(s.key);
                let holders = self.holders.entry(s.key.0.clone()).or_default();
                holders.keys.push(s.key.clone());
                holders.lowest = Some(holders.lowest.map_or(floor, |l| l.min(floor)));
            }
        }
        for s in seen {
            let paused = self.paused.contains(s.key);
            // A paused partition resumes only once within half the bound, so that it then
            // reads at least half the bound before it pauses again, not one event at a time.
            let slack = if paused { 2 } else { 1 };
            let ahead = self.waiting.contains(s.key)
                && self
                    .frontier
                    .get(s.key)
                    .is_some_and(|t| self.floor_for(s.key).is_some_and(|f| self.beyond(f, *t, slack)));
            match (ahead, paused) {
                (true, false) => moves.pause.push(s.key.clone()),
                (false, true) => moves.resume.push(s.key.clone()),
                _ => {}
            }
        }
        // Paused partitions no longer owned are dropped (their assignment ended).
        let owned: HashSet<&PartitionKey> = seen.iter().map(|s| s.key).collect();
        self.paused.retain(|k| owned.contains(k));
        self.paused.extend(moves.pause.iter().cloned());
        for k in &moves.resume {
            self.paused.remove(k);
        }
        let held: HashSet<&str> = self.paused.iter().map(|k| k.0.as_str()).collect();
        self.held_since.retain(|topic, _| held.contains(topic.as_str()));
        for topic in held {
            self.held_since.entry(topic.to_owned()).or_insert(now);
        }
        moves.pause.sort_unstable();
        moves.resume.sort_unstable();
        moves.passed_over.sort_unstable();
        moves
    }

    fn floor_of(&self, key: &PartitionKey) -> Floor {
        self.frontier.get(key).map_or(Floor::Unknown, |t| Floor::At(*t))
    }

    /// The floor `key` is held to: the lowest of its topic's other holders, as they are now
    /// (`None`: no other partition holds it back). The partition furthest behind is held to
    /// the next one, so that it cannot overtake it unchecked.
    fn floor_for(&self, key: &PartitionKey) -> Option<Floor> {
        let holders = self.holders.get(&key.0)?;
        holders.keys.iter().filter(|k| *k != key).map(|k| self.floor_of(k)).min()
    }

    /// Whether `s` is passed over: it delivered nothing for [`STALLED_AFTER`] while its topic
    /// was held for at least as long, and nothing since.
    fn stalled(&mut self, s: &Seen<'_>, now: Instant) -> bool {
        let last = now.checked_sub(s.idle).unwrap_or(now);
        if let Some(&marked) = self.stalled.get(s.key) {
            if last <= marked {
                return true;
            }
            self.stalled.remove(s.key);
        }
        let held_long =
            self.held_since.get(&s.key.0).is_some_and(|&t| now.saturating_duration_since(t) >= STALLED_AFTER);
        if s.idle >= STALLED_AFTER && held_long {
            self.stalled.insert(s.key.clone(), last);
            return true;
        }
        false
    }

    /// Whether event time `t` is more than the bound divided by `slack` past `floor`.
    fn beyond(&self, floor: Floor, t: DateTime<Utc>, slack: i32) -> bool {
        match (floor, self.max_ahead) {
            (Floor::Unknown, Some(_)) => true,
            (Floor::At(f), Some(max)) => t > f + max / slack,
            (_, None) => false,
        }
    }

    pub fn paused(&self) -> usize {
        self.paused.len()
    }
}

#[cfg(test)]
mod tests;
