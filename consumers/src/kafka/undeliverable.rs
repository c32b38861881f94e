//! Offsets the Kafka client cannot deliver (docs/events.md 2.8): a batch it cannot decompress
//! (corrupt, larger decompressed than `receive.message.max.bytes`, a codec it lacks) or cannot
//! parse. librdkafka then reports a consumer error and fetches the same offset again, forever:
//! the partition stops while every other one flows, and
//! the error names neither the partition nor the offset.
//!
//! Policy: find the offsets exactly, dead-letter them as one `undeliverable` range (topic,
//! partition, first and last offset, the client's error) in the normal batch transaction, and
//! move on. Pausing the partition instead would hold every later event of it for an operator;
//! the range stays in Kafka for its retention and the dead letter says where, so nothing is
//! lost unseen. The search runs on a probe thread with its own group-less client, so the
//! consumer thread never waits for it:
//!
//! 1. after an undeliverable error, every owned partition that has not delivered for
//!    [`IDLE_BEFORE_PROBE`] is probed at the offset it stopped at: if the probe client gets the
//!    same kind of error there, the partition is stuck at that offset;
//! 2. the probe then reads every following offset until one delivers (or the end of the
//!    partition): one fetch per offset, because good batches of another producer may sit
//!    between bad ones and any skipping search could jump over them. At most
//!    [`MAX_WALK`] offsets per request; a longer range is dead-lettered in parts.

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;

/// A partition that delivered nothing for this long after an undeliverable error is probed.
const IDLE_BEFORE_PROBE: Duration = Duration::from_secs(2);
/// Undeliverable errors older than this no longer trigger checks.
const ERROR_MEMORY: Duration = Duration::from_secs(30);
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Offsets walked per request (a longer undeliverable range is dead-lettered in parts).
pub(super) const MAX_WALK: i64 = 10_000;
/// How long one probe waits for the broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a consumer error means the client cannot deliver what the broker sent.
pub(super) fn is_undeliverable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::MessageConsumption(code) | KafkaError::MessageConsumptionFatal(code) if undeliverable_code(*code))
}

fn undeliverable_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        BadMessage | BadCompression | NotImplemented | InvalidMessage | UnsupportedCompressionType | InvalidRecord
    )
}

/// A partition to check, from the offset it stopped at (`None`: it never delivered since its
/// assignment, which started at the beginning).
struct Request {
    topic: String,
    partition: i32,
    from: Option<i64>,
}

/// What a check found.
pub(super) struct Found {
    pub topic: String,
    pub partition: i32,
    /// The first undeliverable offset and the offset after the last.
    pub first: i64,
    pub end: i64,
    /// The client's error.
    pub error: String,
}

/// The consumer thread's side of the probe thread.
pub(super) struct Undeliverable {
    requests: Sender<Request>,
    found: Receiver<(String, i32, Option<Found>)>,
    /// Partitions being checked.
    pending: HashSet<(String, i32)>,
    last_error: Option<Instant>,
    last_check: Instant,
}

impl Undeliverable {
    /// Starts the probe thread with its own client (`config`: the consumer's connection settings).
    pub fn spawn(config: ClientConfig) -> anyhow::Result<Self> {
        let mut config = config;
        // Group-less: a probe assigns partitions itself and never joins or commits. Short
        // fetch waits: each probe is one fetch (tansu holds every fetch for the full wait).
        config
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "10")
            .set("fetch.error.backoff.ms", "10");
        let probe: BaseConsumer = config.create()?;
        let (requests, rx) = mpsc::channel::<Request>();
        let (tx, found) = mpsc::channel();
        std::thread::Builder::new().name("ingest-probe".into()).spawn(move || {
            for r in rx {
                let outcome = walk(&probe, &r.topic, r.partition, r.from);
                tracing::debug!(topic = %r.topic, partition = r.partition, from = ?r.from, found = outcome.is_some(), "partition checked for undeliverable offsets");
                if tx.send((r.topic, r.partition, outcome)).is_err() {
                    return;
                }
            }
        })?;
        Ok(Self { requests, found, pending: HashSet::new(), last_error: None, last_check: Instant::now() })
    }

    pub fn noted_error(&mut self) {
        self.last_error = Some(Instant::now());
    }

    /// Whether to look for stuck partitions now.
    pub fn due(&mut self) -> bool {
        let recent = self.last_error.is_some_and(|t| t.elapsed() < ERROR_MEMORY);
        if !recent || self.last_check.elapsed() < CHECK_EVERY {
            return false;
        }
        self.last_check = Instant::now();
        true
    }

    /// Asks for a check of a partition idle for `idle` that stopped at `from`.
    pub fn check(&mut self, topic: &str, partition: i32, from: Option<i64>, idle: Duration) {
        let key = (topic.to_owned(), partition);
        if idle < IDLE_BEFORE_PROBE || self.pending.contains(&key) {
            return;
        }
        if self.requests.send(Request { topic: key.0.clone(), partition, from }).is_ok() {
            self.pending.insert(key);
        }
    }

    /// Ranges found since the last call.
    pub fn found(&mut self) -> Vec<Found> {
        let mut out = Vec::new();
        while let Ok((topic, partition, f)) = self.found.try_recv() {
            self.pending.remove(&(topic, partition));
            out.extend(f);
        }
        out
    }
}

#[derive(Debug)]
enum Probe {
    Delivered,
    Undeliverable(RDKafkaErrorCode),
    /// Nothing at or after the offset.
    End,
    /// No answer in time (broker unreachable): nothing can be concluded.
    Unknown,
}

fn probe(consumer: &BaseConsumer, topic: &str, partition: i32, offset: i64) -> Probe {
    let mut tpl = TopicPartitionList::new();
    if tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).is_err() || consumer.assign(&tpl).is_err() {
        return Probe::Unknown;
    }
    let deadline = Instant::now() + PROBE_TIMEOUT;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            // A message of the new assignment (librdkafka drops those fetched for an older one).
            Some(Ok(m)) if m.partition() == partition && m.offset() >= offset => return Probe::Delivered,
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Probe::End,
            Some(Err(KafkaError::MessageConsumption(code))) if undeliverable_code(code) => {
                return Probe::Undeliverable(code)
            }
            _ => {}
        }
    }
    Probe::Unknown
}

/// Checks a partition from `from` and walks the undeliverable range there, if any.
fn walk(consumer: &BaseConsumer, topic: &str, partition: i32, from: Option<i64>) -> Option<Found> {
    let (low, high) = consumer.fetch_watermarks(topic, partition, PROBE_TIMEOUT).ok()?;
    let first = from.unwrap_or(low).max(low);
    if first >= high {
        return None;
    }
    let at_first = probe(consumer, topic, partition, first);
    tracing::debug!(topic, partition, first, high, outcome = ?at_first, "probed");
    let Probe::Undeliverable(code) = at_first else { return None };
    let mut end = first + 1;
    while end < high && end - first < MAX_WALK {
        match probe(consumer, topic, partition, end) {
            Probe::Undeliverable(_) => end += 1,
            Probe::Delivered | Probe::End => break,
            // The range found so far is certain; the rest is checked again later.
            Probe::Unknown => break,
        }
    }
    let _ = consumer.unassign();
    Some(Found { topic: topic.to_owned(), partition, first, end, error: format!("{code:?} ({code})") })
}
