//! The batch being built on the consumer thread: which partitions this process owns and where
//! each one's next batch starts, the batch itself, and when it is due. Pure: no Kafka client,
//! no database, so every rule is unit-tested; the consumer thread feeds it messages and hands
//! its batches to the committer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::config::IngestConfig;
use super::undeliverable::Found;
use crate::batch::{Batch, BatchLimits, DeadLetter, Message};
use crate::decode::{DecodeLimits, RejectReason, Rejection};
use crate::events::TopicKind;

/// (topic, partition).
pub(super) type PartitionKey = (String, i32);

/// A message as polled, before it is decoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Received<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// What [`Builder::push`] did with a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Pushed {
    /// The batch is full.
    pub full: bool,
    /// The message's partition and the time of the event it carried (`None`: ignored, or
    /// dead-lettered): what event-time alignment needs, without building the key again.
    pub event: Option<(PartitionKey, DateTime<Utc>)>,
}

pub(super) struct Builder {
    /// Topic name → (the name shared by the batch's entries, what the topic carries).
    topics: HashMap<String, (Arc<str>, TopicKind)>,
    decode: DecodeLimits,
    limits: BatchLimits,
    max_wait: Duration,
    /// Per assigned partition: the stored next offset the next batch starts from (`None`: no
    /// row yet). Only assigned partitions are present.
    committed: HashMap<PartitionKey, Option<i64>>,
    batch: Batch,
    started: Option<Instant>,
    /// When each assigned partition last delivered a message (or was assigned): a partition
    /// idle while the client reports undeliverable data is checked (see `undeliverable`).
    last_delivery: HashMap<PartitionKey, Instant>,
}

impl Builder {
    pub fn new(config: &IngestConfig) -> Builder {
        Builder {
            topics: config
                .topics
                .iter()
                .map(|(name, kind)| (name.clone(), (Arc::from(name.as_str()), *kind)))
                .collect(),
            decode: config.decode,
            limits: config.batch_limits(),
            max_wait: config.batch_max_wait,
            committed: HashMap::new(),
            batch: Batch::default(),
            started: None,
            last_delivery: HashMap::new(),
        }
    }

    /// A new assignment, each partition resuming from its stored next offset; drops the batch
    /// being built (it belonged to the old assignment and was handed over before).
    pub fn assign(&mut self, committed: HashMap<PartitionKey, Option<i64>>, now: Instant) {
        self.last_delivery = committed.keys().map(|k| (k.clone(), now)).collect();
        self.committed = committed;
        self.batch = Batch::default();
        self.started = None;
    }

    pub fn revoke(&mut self) {
        self.assign(HashMap::new(), Instant::now());
    }

    /// The partitions this process owns now, with the offset each next batch starts from.
    pub fn owned(&self) -> &HashMap<PartitionKey, Option<i64>> {
        &self.committed
    }

    pub fn owned_keys(&self) -> HashSet<PartitionKey> {
        self.committed.keys().cloned().collect()
    }

    /// Adds one message. Messages of partitions not owned (any more), of unknown topics, or
    /// before the stored offset (a redelivery after a seek) are ignored.
    pub fn push(&mut self, msg: Received<'_>, now: Instant, clock: DateTime<Utc>) -> Pushed {
        let Some((topic, kind)) = self.topics.get(msg.topic) else { return Pushed::default() };
        let key = (msg.topic.to_owned(), msg.partition);
        let Some(&committed) = self.committed.get(&key) else { return Pushed::default() };
        if committed.is_some_and(|c| msg.offset < c) {
            return Pushed::default();
        }
        let message =
            Message { topic, partition: msg.partition, offset: msg.offset, key: msg.key, payload: msg.payload };
        let event_time = self.batch.add(*kind, message, committed, &self.decode, clock);
        self.started.get_or_insert(now);
        // Every owned partition has an entry (`assign`): updated in place, so the key is left
        // to hand back; inserted (a copy of the key) should one ever be missing.
        match self.last_delivery.get_mut(&key) {
            Some(last) => *last = now,
            None => {
                self.last_delivery.insert(key.clone(), now);
            }
        }
        Pushed { full: self.batch.is_full(&self.limits), event: event_time.map(|t| (key, t)) }
    }

    /// How long until the batch is due (zero: now); `None` while it is empty.
    pub fn due_in(&self, now: Instant) -> Option<Duration> {
        self.started.map(|s| self.max_wait.saturating_sub(now.saturating_duration_since(s)))
    }

    /// Takes the batch to hand over (`None` when empty), tagged with `generation`. Optimistically
    /// the next batch of each partition starts where this one ends; a failure resyncs.
    pub fn take(&mut self, generation: u64) -> Option<Batch> {
        self.started = None;
        if self.batch.is_empty() {
            return None;
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.generation = generation;
        for (key, pos) in &batch.positions {
            if let Some(c) = self.committed.get_mut(key) {
                *c = Some(pos.next);
            }
        }
        Some(batch)
    }

    /// After a fenced batch: every owned partition resumes from `stored` (absent: no row).
    pub fn resync(&mut self, stored: &HashMap<PartitionKey, i64>) {
        let keys: Vec<PartitionKey> = self.committed.keys().cloned().collect();
        let committed = keys.into_iter().map(|k| (k.clone(), stored.get(&k).copied())).collect();
        self.assign(committed, Instant::now());
    }

    /// Each owned partition with the offset it delivers next (`None`: from the beginning) and
    /// how long it has delivered nothing.
    pub fn idle_partitions(&self, now: Instant) -> Vec<(String, i32, Option<i64>, Duration)> {
        self.committed
            .iter()
            .map(|(key, committed)| {
                let next = self.batch.positions.get(key).map(|p| p.next).or(*committed);
                let idle = self.last_delivery.get(key).map_or(Duration::ZERO, |t| now.saturating_duration_since(*t));
                (key.0.clone(), key.1, next, idle)
            })
            .collect()
    }

    /// Time the consumer thread did not poll (it held a full batch until the committer was
    /// free) is not idle time: no partition can deliver while nobody polls. Every partition's
    /// last delivery moves forward by `waited` (to `now` at most), so that a slow commit does
    /// not make the partitions look stuck to alignment's pass-over or to the undeliverable
    /// probe.
    pub fn not_polled(&mut self, waited: Duration, now: Instant) {
        for last in self.last_delivery.values_mut() {
            *last = (*last + waited).min(now);
        }
    }

    /// Partitions just resumed start their idle time afresh: a paused partition cannot
    /// deliver, so the time it spent paused must not make it look stuck (alignment passed
    /// over partitions well under a second after resuming them: BENCHMARKS.md "Write path,
    /// fifteenth pass").
    pub fn resumed(&mut self, keys: &[PartitionKey], now: Instant) {
        for key in keys {
            if let Some(last) = self.last_delivery.get_mut(key) {
                *last = now;
            }
        }
    }

    /// Dead-letters an undeliverable range in the batch and moves the partition past it;
    /// returns false (and changes nothing) when the partition moved meanwhile: revoked, or it
    /// delivered after all. The caller then seeks the client to `found.end`.
    pub fn skip_undeliverable(&mut self, found: &Found, now: Instant) -> bool {
        let key = (found.topic.clone(), found.partition);
        let Some(&committed) = self.committed.get(&key) else { return false };
        let next = self.batch.positions.get(&key).map(|p| p.next).or(committed);
        if next.is_some_and(|n| n != found.first) {
            return false;
        }
        let last = found.end - 1;
        let detail = format!(
            "offsets {}..={last} ({} messages) could not be delivered by the Kafka client: {}",
            found.first,
            found.end - found.first,
            found.error
        );
        self.batch.dead_letters.push(DeadLetter {
            topic: found.topic.clone(),
            partition: found.partition,
            offset: found.first,
            last_offset: last,
            key: None,
            payload: None,
            payload_size: None,
            payload_sha256: None,
            // Whose messages they were cannot be known: platform operators see them.
            rejection: Rejection::new(RejectReason::Undeliverable, detail, None),
        });
        self.batch.advance(&found.topic, found.partition, last, committed, None);
        self.started.get_or_insert(now);
        self.last_delivery.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests;
