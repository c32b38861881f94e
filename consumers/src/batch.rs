//! What the consumer thread hands to the apply step: the decoded events of a run of messages
//! with where each came from, their dead letters, and per partition the offset range they cover.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::decode::{decode_message, DecodeLimits, RejectReason, Rejection};
use crate::events::{Event, TopicKind};
use crate::fold::{fold_shared, Delta};

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

/// One Kafka message as the consumer received it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub topic: &'a Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// Where a decoded event came from. Kept until the batch commits because the database may
/// still refuse the event (a value no decoder rule foresaw): it is then dead-lettered with its
/// exact bytes, like any other bad input (docs/events.md 2.8). The payload also is what the traces API
/// stores for a trace, so a trace's bytes are held once.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Box<[u8]>>,
    pub payload: Box<[u8]>,
}

/// A decoded event and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Whole, except the traces of a sealed batch: those are hollow ([`Batch::seal`]).
    pub event: Event,
    pub origin: Origin,
}

impl Entry {
    /// The event whole: a hollow trace is read back from its payload (the bytes it was
    /// decoded from, so it decodes the same).
    pub fn whole(&self) -> Cow<'_, Event> {
        match &self.event {
            Event::Trace(t) if t.hollow => {
                let trace =
                    serde_json::from_slice(&self.origin.payload).expect("a payload that decoded before decodes again");
                Cow::Owned(Event::Trace(Box::new(trace)))
            }
            event => Cow::Borrowed(event),
        }
    }
}

/// Longest payload prefix a dead letter keeps (docs/events.md 2.8: a `too_large` message keeps the first
/// 64 KiB, its size and a SHA-256 of the whole payload).
pub const DEAD_LETTER_PAYLOAD_MAX: usize = 64 * 1024;

/// A message that was not applied (docs/events.md 2.8), with everything needed to replay it by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    /// The message's offset; for a range the client could not deliver, its first offset…
    pub offset: i64,
    /// …and its last (equal to `offset` for one message).
    pub last_offset: i64,
    pub key: Option<Vec<u8>>,
    /// The payload, or its first [`DEAD_LETTER_PAYLOAD_MAX`] bytes when it was too large.
    pub payload: Option<Vec<u8>>,
    /// Size and SHA-256 of the whole payload (absent for a tombstone or an undelivered range).
    pub payload_size: Option<i64>,
    pub payload_sha256: Option<Vec<u8>>,
    pub rejection: Rejection,
}

impl DeadLetter {
    /// The dead letter of one message.
    pub fn of_message(msg: &Message<'_>, rejection: Rejection) -> DeadLetter {
        let keep = match rejection.reason {
            RejectReason::TooLarge => DEAD_LETTER_PAYLOAD_MAX,
            _ => usize::MAX,
        };
        DeadLetter {
            topic: msg.topic.to_string(),
            partition: msg.partition,
            offset: msg.offset,
            last_offset: msg.offset,
            key: msg.key.map(<[u8]>::to_vec),
            payload: msg.payload.map(|p| p[..p.len().min(keep)].to_vec()),
            payload_size: msg.payload.map(|p| p.len() as i64),
            payload_sha256: msg.payload.map(|p| Sha256::digest(p).to_vec()),
            rejection,
        }
    }
}

#[derive(Debug, Default)]
pub struct Batch {
    /// Valid events in processing (poll) order.
    pub entries: Vec<Entry>,
    pub dead_letters: Vec<DeadLetter>,
    /// Keyed by (topic name, partition): sorted, which is also the lock order of the commit.
    pub positions: BTreeMap<(String, i32), Position>,
    /// Bytes of payload in the batch (the size bound).
    pub bytes: usize,
    /// Upper bound of the delta rows the events add outside segment scopes (see
    /// [`crate::fold::weight`]): the bound on one batch's work and memory.
    pub weight: usize,
    /// Assignment generation the batch was read in; a batch of an older generation is stale.
    pub generation: u64,
    /// The views outside segment scopes of all `entries` ([`fold_shared`]), folded by
    /// [`Batch::seal`] on the thread that read the batch, so that the commit does not wait for
    /// it. The apply step uses it only when no entry turns out to be a duplicate (otherwise,
    /// and when it is absent, it folds the fresh events itself); it must be the fold of the
    /// entries as they are: `seal` once the batch is complete.
    pub prefold: Option<Delta>,
}

/// When a batch is full.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
    pub max_weight: usize,
}

impl Batch {
    pub fn messages(&self) -> usize {
        self.entries.len() + self.dead_letters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Folds the views outside segment scopes ([`Batch::prefold`]), then hollows the traces
    /// ([`crate::events::DecisionTrace::hollow`]): the last step of building a batch. A batch
    /// holds its decoded traces until it commits, and decoded they are twice their payload
    /// (~10 KB for a 5 KB trace): ~20 MiB of the ingest's peak heap with two batches in
    /// flight (heaptrack, BENCHMARKS.md "Write path, fourth pass"). The apply step reads back the few it folds again (traces of segment
    /// members, or all of them when a duplicate or a refused event changes the fold).
    pub fn seal(&mut self) {
        let prefold = {
            let whole: Vec<Cow<'_, Event>> = self.entries.iter().map(Entry::whole).collect();
            fold_shared(&whole.iter().map(|e| &**e).collect::<Vec<_>>())
        };
        self.prefold = Some(prefold);
        for entry in &mut self.entries {
            if let Event::Trace(t) = &mut entry.event {
                t.hollow();
            }
        }
    }

    pub fn is_full(&self, limits: &BatchLimits) -> bool {
        self.messages() >= limits.max_messages || self.bytes >= limits.max_bytes || self.weight >= limits.max_weight
    }

    /// Decodes one message into the batch: an event, or a dead letter. `committed` is the
    /// stored next offset of the partition (where its first message in this batch follows).
    pub fn add(
        &mut self,
        kind: TopicKind,
        msg: Message<'_>,
        committed: Option<i64>,
        limits: &DecodeLimits,
        now: DateTime<Utc>,
    ) {
        // A batch that grows after `seal` is folded again when it is sealed (or applied).
        self.prefold = None;
        let payload = msg.payload.unwrap_or_default();
        let event_time = match decode_message(kind, msg.key, payload, limits, now) {
            Ok(event) => {
                let t = event.event_time();
                self.weight += crate::fold::weight(&event);
                self.entries.push(Entry {
                    event,
                    origin: Origin {
                        topic: msg.topic.clone(),
                        partition: msg.partition,
                        offset: msg.offset,
                        key: msg.key.map(Box::from),
                        payload: Box::from(payload),
                    },
                });
                Some(t)
            }
            Err(rejection) => {
                self.dead_letters.push(DeadLetter::of_message(&msg, rejection));
                None
            }
        };
        self.bytes += payload.len();
        self.advance(msg.topic, msg.partition, msg.offset, committed, event_time);
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
