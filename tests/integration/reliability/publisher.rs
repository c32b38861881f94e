//! A publisher that knows what the broker acknowledged: the product's producer settings
//! (idempotent; overridable) plus delivery reports, which carry each message's partition and
//! offset. A message whose delivery failed is sent again (an at-least-once producer, as docs/guarantees.md 3
//! expects; dedup absorbs the copies), so every event of the test's list ends up in the log at
//! least once and the expected values can be computed from that list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

/// One message of a test's list.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub key: Vec<u8>,
    /// `None`: a tombstone (null value).
    pub payload: Option<Vec<u8>>,
}

/// Delivery reports by index in the list.
#[derive(Default)]
struct Reports {
    /// Index → (partition, offset) of its last acknowledged copy.
    acked: HashMap<usize, (i32, i64)>,
    failed: Vec<usize>,
    errors: Vec<String>,
}

struct Recorder(Arc<Mutex<Reports>>);

/// A panic elsewhere must not hide the reports behind a poisoned lock.
fn lock(m: &Mutex<Reports>) -> std::sync::MutexGuard<'_, Reports> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let mut r = lock(&self.0);
        match result {
            Ok(m) => {
                r.acked.insert(index, (m.partition(), m.offset()));
            }
            Err((e, _)) => {
                r.failed.push(index);
                if r.errors.len() < 20 {
                    r.errors.push(e.to_string());
                }
            }
        }
    }
}

pub struct ReliablePublisher {
    config: ClientConfig,
    producer: ThreadedProducer<Recorder, rdkafka::producer::NoCustomPartitioner>,
    reports: Arc<Mutex<Reports>>,
    /// Messages sent again after a failed delivery (reported by the tests).
    pub resent: usize,
}

impl ReliablePublisher {
    /// `extra`: properties on top of the product's producer settings.
    pub fn new(brokers: &str, extra: &[(&str, &str)]) -> ReliablePublisher {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "200000")
            .set("message.max.bytes", (17 * 1024 * 1024).to_string())
            // A broker down for seconds must not fail deliveries: librdkafka keeps them queued
            // and sends them once the broker is back.
            .set("message.timeout.ms", "120000");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let reports = Arc::new(Mutex::new(Reports::default()));
        let producer = config.create_with_context(Recorder(reports.clone())).expect("producer");
        ReliablePublisher { config, producer, reports, resent: 0 }
    }

    /// Queues message `index` (waiting while the local queue is full).
    pub fn send(&self, index: usize, m: &Outgoing) {
        let mut record = BaseRecord::with_opaque_to(&m.topic, index).key(&m.key[..]);
        if let Some(p) = &m.payload {
            record = record.payload(&p[..]);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => panic!("send of {} bytes: {e}", m.payload.as_ref().map_or(0, Vec::len)),
            }
        }
    }

    /// Flushes, then sends the failed messages again until every one of `messages` is
    /// acknowledged (a fatal producer error, e.g. after the broker lost the producer's
    /// state, gets a fresh producer). Returns index → (partition, offset).
    pub fn settle(&mut self, messages: &[Outgoing], timeout: Duration) -> HashMap<usize, (i32, i64)> {
        let deadline = Instant::now() + timeout;
        let mut failing_rounds = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self.producer.flush(left.min(Duration::from_secs(30)));
            let failed = {
                let mut r = lock(&self.reports);
                let mut f = std::mem::take(&mut r.failed);
                f.retain(|i| !r.acked.contains_key(i));
                f.sort_unstable();
                f.dedup();
                f
            };
            let in_flight = self.producer.in_flight_count();
            if failed.is_empty() && in_flight == 0 {
                let r = lock(&self.reports);
                if r.failed.is_empty() {
                    let missing: Vec<usize> = (0..messages.len()).filter(|i| !r.acked.contains_key(i)).collect();
                    assert!(missing.is_empty(), "never acknowledged and never failed: {missing:?}");
                    return r.acked.clone();
                }
                continue; // a failure reported since we looked
            }
            assert!(
                Instant::now() < deadline,
                "{} deliveries still failing after {timeout:?}: {:?}",
                failed.len(),
                lock(&self.reports).errors
            );
            failing_rounds = if failed.is_empty() { 0 } else { failing_rounds + 1 };
            let fatal = self.producer.client().fatal_error();
            if fatal.is_some() || failing_rounds >= 3 {
                eprintln!("[publisher] {fatal:?}, {failing_rounds} failing rounds: a new producer");
                failing_rounds = 0;
                let _ = self.producer.flush(Duration::from_secs(1));
                self.producer = self.config.create_with_context(Recorder(self.reports.clone())).expect("producer");
            }
            if !failed.is_empty() {
                eprintln!("[publisher] resending {} failed deliveries", failed.len());
                std::thread::sleep(Duration::from_millis(500));
            }
            for i in failed {
                self.resent += 1;
                self.send(i, &messages[i]);
            }
        }
    }

    pub fn errors(&self) -> Vec<String> {
        lock(&self.reports).errors.clone()
    }
}
