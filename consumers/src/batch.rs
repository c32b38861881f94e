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
use crate::units::body;

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
    pub payload: Payload,
}

/// A message's payload as a batch holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// As received.
    Plain(Box<[u8]>),
    /// As received, zstd-compressed ([`crate::units::body`]): a decision trace's. A batch is
    /// bounded by the bytes it holds, and compressed a standard trace holds a fraction of
    /// its ~5 KB, so a batch collects that many more traces for the same memory; the
    /// raw-trace store writes these bytes as they are.
    Zstd(Box<[u8]>),
}

impl Payload {
    /// A payload to hold: compressed when it is a decision trace's.
    fn hold(kind: TopicKind, bytes: &[u8]) -> Payload {
        match kind {
            TopicKind::DecisionTraces => Payload::Zstd(body::compress(bytes).into_boxed_slice()),
            _ => Payload::Plain(Box::from(bytes)),
        }
    }

    /// The bytes as received.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Payload::Plain(b) => Cow::Borrowed(b),
            Payload::Zstd(z) => Cow::Owned(body::decompress(z).expect("a frame this process compressed decompresses")),
        }
    }

    /// The bytes compressed ([`crate::units::body`]).
    pub fn zstd(&self) -> Cow<'_, [u8]> {
        match self {
            Payload::Plain(b) => Cow::Owned(body::compress(b)),
            Payload::Zstd(z) => Cow::Borrowed(z),
        }
    }

    /// Bytes held in memory.
    pub fn held(&self) -> usize {
        match self {
            Payload::Plain(b) | Payload::Zstd(b) => b.len(),
        }
    }
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
                let trace = serde_json::from_slice(&self.origin.payload.bytes())
                    .expect("a payload that decoded before decodes again");
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
    /// Bytes of payload the batch holds, a trace's compressed ([`Payload`]): the size bound.
    pub bytes: usize,
    /// Assignment generation the batch was read in; a batch of an older generation is stale.
    pub generation: u64,
    /// The views outside segment scopes of all `entries` ([`fold_shared`]), folded on the
    /// thread that read the batch as it read it and finished by [`Batch::seal`], so that the
    /// commit does not wait for it. The apply step uses it only when no entry turns out to be a duplicate (otherwise,
    /// and when it is absent, it folds the fresh events itself); it must be the fold of the
    /// entries as they are: `seal` once the batch is complete.
    pub prefold: Option<Delta>,
    /// The fold of `entries[..folded]`, whose traces are hollow; the later entries are whole.
    partial: Delta,
    /// `partial.rows()`.
    partial_rows: usize,
    folded: usize,
    /// Payload bytes and [`crate::fold::weight`] of the entries not folded yet.
    pending_bytes: usize,
    pending_weight: usize,
}

/// Payload bytes of whole entries after which the consumer thread folds them into the batch's
/// partial delta and hollows them: a batch then holds at most this much of decoded traces
/// (about twice their payload) whatever its size.
const FOLD_CHUNK_BYTES: usize = 1024 * 1024;

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

    /// Delta rows outside segment scopes: those of the events folded so far, plus an upper
    /// bound for the rest ([`crate::fold::weight`]); what [`Batch::is_full`] bounds.
    pub fn weight(&self) -> usize {
        self.partial_rows + self.pending_weight
    }

    /// Finishes the fold of the views outside segment scopes ([`Batch::prefold`]): the last
    /// step of building a batch. Every trace is hollow afterwards
    /// ([`crate::events::DecisionTrace::hollow`]): a batch holds its traces until it commits,
    /// and decoded they are twice their payload (~10 KB for a 5 KB trace; heaptrack,
    /// BENCHMARKS.md "Write path, fourth pass"). The apply step reads back the few it folds
    /// again (traces of segment members, or all of them when a duplicate or a refused event
    /// changes the fold).
    pub fn seal(&mut self) {
        self.fold_pending();
        self.prefold = Some(std::mem::take(&mut self.partial));
    }

    /// Folds the entries not folded yet into the partial delta, then hollows their traces.
    fn fold_pending(&mut self) {
        let part = fold_shared(&self.entries[self.folded..].iter().map(|e| &e.event).collect::<Vec<_>>());
        self.partial.merge(part);
        for entry in &mut self.entries[self.folded..] {
            if let Event::Trace(t) = &mut entry.event {
                t.hollow();
            }
        }
        self.folded = self.entries.len();
        self.partial_rows = self.partial.rows();
        (self.pending_bytes, self.pending_weight) = (0, 0);
    }

    /// Full at its message or byte bound, or once the rows of its folded events reach the
    /// delta bound. Events not folded yet are folded first when the upper bound of their rows
    /// ([`crate::fold::weight`]) alone reaches it: that bound is ~270 rows for a standard
    /// trace, ten times what one adds to a batch once keys repeat, so closing on it would cut
    /// batches tenfold (measured: a 50,000-row bound ingested 2,400 traces/s instead of
    /// ~7,000). Memory stays bounded: folded rows up to one chunk past the bound, plus at most
    /// one chunk ([`FOLD_CHUNK_BYTES`]) of events not folded yet.
    pub fn is_full(&mut self, limits: &BatchLimits) -> bool {
        if self.pending_weight >= limits.max_weight {
            self.fold_pending();
        }
        self.messages() >= limits.max_messages
            || self.bytes >= limits.max_bytes
            || self.partial_rows >= limits.max_weight
    }

    /// Decodes one message into the batch: an event, or a dead letter. `committed` is the
    /// stored next offset of the partition (where its first message in this batch follows).
    /// Returns the event's time (`None`: dead-lettered).
    pub fn add(
        &mut self,
        kind: TopicKind,
        msg: Message<'_>,
        committed: Option<i64>,
        limits: &DecodeLimits,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if let Some(prefold) = self.prefold.take() {
            // A batch that grows after `seal` goes on from its fold (rare: tests do it).
            self.partial = prefold;
        }
        let payload = msg.payload.unwrap_or_default();
        let event_time = match decode_message(kind, msg.key, payload, limits, now) {
            Ok(event) => {
                let t = event.event_time();
                self.pending_weight += crate::fold::weight(&event);
                self.pending_bytes += payload.len();
                let held = Payload::hold(kind, payload);
                self.bytes += held.held();
                self.entries.push(Entry {
                    event,
                    origin: Origin {
                        topic: msg.topic.clone(),
                        partition: msg.partition,
                        offset: msg.offset,
                        key: msg.key.map(Box::from),
                        payload: held,
                    },
                });
                Some(t)
            }
            Err(rejection) => {
                let dead = DeadLetter::of_message(&msg, rejection);
                self.bytes += dead.payload.as_ref().map_or(0, Vec::len);
                self.dead_letters.push(dead);
                None
            }
        };
        if self.pending_bytes >= FOLD_CHUNK_BYTES {
            self.fold_pending();
        }
        self.advance(msg.topic, msg.partition, msg.offset, committed, event_time);
        event_time
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
