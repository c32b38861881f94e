//! What the consumer thread hands to the apply step: the decoded events of a run of messages,
//! their dead letters, and per partition the offset range they cover.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::decode::Rejection;
use crate::events::Event;

/// Offsets of one partition covered by a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// `consumer_offsets.next_offset` this batch starts from; `None` when no row exists yet.
    /// The commit is a compare-and-set on this value.
    pub expected: Option<i64>,
    /// The offset after the last message of the batch: stored when the batch commits.
    pub next: i64,
    /// Largest event time of the partition's events in this batch.
    pub max_event_time: Option<DateTime<Utc>>,
}

/// A message that was not applied (SPEC 2.8), with everything needed to replay it by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub rejection: Rejection,
}

#[derive(Debug, Default)]
pub struct Batch {
    /// Valid events in processing (poll) order.
    pub events: Vec<Event>,
    pub dead_letters: Vec<DeadLetter>,
    /// Keyed by (topic name, partition): sorted, which is also the lock order of the commit.
    pub positions: BTreeMap<(String, i32), Position>,
    /// Bytes of payload in the batch (the size bound).
    pub bytes: usize,
    /// Assignment generation the batch was read in; a batch of an older generation is stale.
    pub generation: u64,
}

impl Batch {
    pub fn messages(&self) -> usize {
        self.events.len() + self.dead_letters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Records that message `offset` of (topic, partition) is part of this batch. `committed`
    /// is the stored next offset the partition's first message in this batch follows.
    pub fn advance(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        committed: Option<i64>,
        event_time: Option<DateTime<Utc>>,
    ) {
        let pos = match self.positions.get_mut(&(topic.to_owned(), partition)) {
            Some(p) => p,
            None => self.positions.entry((topic.to_owned(), partition)).or_insert(Position {
                expected: committed,
                next: offset + 1,
                max_event_time: None,
            }),
        };
        pos.next = offset + 1;
        if event_time > pos.max_event_time {
            pos.max_event_time = event_time;
        }
    }
}
