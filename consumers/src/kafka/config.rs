use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::batch::BatchLimits;
use crate::decode::DecodeLimits;
use crate::events::TopicKind;

/// Everything the ingest pipeline needs to know, built once from the settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub brokers: String,
    pub group_id: String,
    /// Names this process in `consumer_offsets.owner` and in the Kafka client id.
    pub instance_id: String,
    /// Kafka topic name → what it carries.
    pub topics: BTreeMap<String, TopicKind>,
    /// A batch is closed at this many messages…
    pub batch_max_messages: usize,
    /// …or this many payload bytes…
    pub batch_max_bytes: usize,
    /// …or this many delta rows (see `fold::weight`), the bound on one batch's work…
    pub batch_max_weight: usize,
    /// …or this long after its first message (the freshness bound).
    pub batch_max_wait: Duration,
    pub session_timeout: Duration,
    /// How long a revoke waits for the batches in flight to commit. Must stay below the
    /// session timeout, or the group would evict us while we drain (checked in `validate`).
    pub drain_timeout: Duration,
    /// A partition with waiting messages and no commit for this long, owned by no one in this
    /// process, makes the process rejoin the group (see `watchdog`).
    pub orphan_after: Duration,
    pub decode: DecodeLimits,
    /// Raw traces are kept this many days (daily partitions).
    pub trace_retention_days: i64,
    /// An event counts in at most this many of its customer's segments.
    pub max_segments: usize,
    /// Extra librdkafka properties (`DV_KAFKA_CONSUMER_*`), applied last.
    pub overrides: BTreeMap<String, String>,
}

impl IngestConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.drain_timeout >= self.session_timeout {
            return Err(format!(
                "drain timeout ({:?}) must be shorter than the Kafka session timeout ({:?})",
                self.drain_timeout, self.session_timeout
            ));
        }
        if self.batch_max_messages == 0 || self.batch_max_bytes == 0 || self.batch_max_weight == 0 {
            return Err("batch limits must be positive".into());
        }
        if self.topics.is_empty() {
            return Err("no topics to consume".into());
        }
        Ok(())
    }

    pub fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            max_messages: self.batch_max_messages,
            max_bytes: self.batch_max_bytes,
            max_weight: self.batch_max_weight,
        }
    }

    /// The probe client of `undeliverable`: the same cluster and connection settings. It only
    /// assigns partitions itself (librdkafka wants a group id for that) and never joins.
    pub(crate) fn probe_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("{}-probe", self.group_id))
            .set("client.id", format!("decision-views-{}-probe", self.instance_id));
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
        c
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group_id)
            // PostgreSQL owns the offsets: nothing is committed to Kafka.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Where no offset is stored (a new partition) or the stored one was deleted by
            // retention, start at the oldest message rather than skip any.
            .set("auto.offset.reset", "earliest")
            // Eager protocol: one assign per rebalance, done by our callback.
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", self.session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", (self.session_timeout.as_millis() / 3).max(100).to_string())
            .set("enable.partition.eof", "false")
            // librdkafka prefetches up to 64 MiB per partition by default, which alone would
            // blow the memory bar (docs/guarantees.md 7: ≤ 300 MB) with a few partitions of 5 KB traces;
            // one batch in flight plus 8 MiB per partition keeps the pipeline fed.
            .set("queued.max.messages.kbytes", "8192")
            .set("fetch.max.bytes", "16777216")
            // Feeds the lag gauge and the caught-up marks (see `IngestContext::stats`): the
            // freshness header is at most this much behind.
            .set("statistics.interval.ms", "1000")
            .set("client.id", format!("decision-views-{}", self.instance_id));
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
        c
    }
}
