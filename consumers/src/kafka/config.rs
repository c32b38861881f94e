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
    /// …or this many payload bytes held (a trace's compressed: `batch::Payload`)…
    pub batch_max_bytes: usize,
    /// …or this many delta rows (`Batch::weight`), the bound on one batch's work and memory…
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
    /// Run decision traces in a pipeline of their own (see [`IngestConfig::lanes`]).
    pub separate_trace_lane: bool,
    /// See [`crate::apply::ApplyOptions::synchronous_commit`].
    pub synchronous_commit: bool,
    /// How far (in event time) a partition may read past the oldest partition of its topic
    /// with messages waiting before it is paused (`align`); `None`: never paused.
    pub align_max_ahead: Option<Duration>,
}

/// Suffix of the consumer group (and client id) of the decision-trace lane.
pub const TRACE_LANE_SUFFIX: &str = ".traces";

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

    /// The pipelines to run: with `separate_trace_lane` (and both kinds of topic present),
    /// decision traces in one and every other topic in another, each with its own consumer
    /// thread, committer and connection. A trace batch is the heaviest commit there is; on
    /// its own lane it no longer holds up interactions, memberships and the catalog (their
    /// freshness), and the two lanes keep both cores busy. Each lane is its own consumer group
    /// (the traces' group is suffixed `.traces`): offsets live in PostgreSQL, so a
    /// group only decides who reads which partition, and every process runs both lanes.
    /// Exactly-once is per partition and unchanged: two lanes are what two processes were.
    pub fn lanes(&self) -> Vec<IngestConfig> {
        let (traces, rest): (BTreeMap<_, _>, BTreeMap<_, _>) =
            self.topics.iter().map(|(n, k)| (n.clone(), *k)).partition(|(_, k)| *k == TopicKind::DecisionTraces);
        if !self.separate_trace_lane || traces.is_empty() || rest.is_empty() {
            return vec![self.clone()];
        }
        let trace_lane =
            IngestConfig { topics: traces, group_id: format!("{}{TRACE_LANE_SUFFIX}", self.group_id), ..self.clone() };
        vec![IngestConfig { topics: rest, ..self.clone() }, trace_lane]
    }

    /// Names this lane's Kafka clients.
    fn client_id(&self) -> String {
        let lane = if self.group_id.ends_with(TRACE_LANE_SUFFIX) { TRACE_LANE_SUFFIX } else { "" };
        format!("decision-views-{}{lane}", self.instance_id)
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
            .set("client.id", format!("{}-probe", self.client_id()));
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
            // blow the memory bar (docs/guarantees.md 7: ≤ 150 MiB). Each partition has its own
            // queue (`queues`), so this bound is per partition, and a fetch response lands on
            // top of it whole: tansu fills a response from one partition up to `fetch.max.bytes`.
            // With 8 MiB and 16 MiB (the bounds of one shared queue before) the peaks reached
            // 134-172 MiB; with 2 MiB and 4 MiB 118-181 MiB; with these 127-139 MiB at 30k
            // traces (two runs) and 115-127 MiB at 300k (one), at the same or better
            // interaction rates (BENCHMARKS.md "Write path, sixteenth pass"). On a faster
            // machine of the same kind the peaks were 160-184 MiB, of which librdkafka's
            // response buffers were ~37 MB: a queued message pins its whole response. Halving
            // both bounds cut the trace rate by a quarter without a steady cut in the peak
            // (one run; "Write path, seventeenth pass").
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.max.bytes", "4194304")
            // Once that queue is over its bound, librdkafka postpones the partitions' next
            // fetch by this much (1,000 ms by default): the consumer thread drains 8 MiB in a
            // fraction of that and then idled for data. Measured (`DV_BENCH_STAGES=ingest`, 30,000
            // traces): 2,946–3,203 → 6,966 traces/s (BENCHMARKS.md, "Write path, third pass").
            .set("fetch.queue.backoff.ms", "10")
            // How long the broker may hold a fetch when it has nothing to return. Apache Kafka
            // answers as soon as data is there, so there this only paces idle polling (10 ms
            // means ~100 cheap fetch-session requests a second per broker while idle); tansu
            // 0.6.0 holds *every* fetch for the whole wait, so librdkafka's 500 ms default would
            // add up to 500 ms to every event's freshness (docs/guarantees.md 7: p99 ≤ 500 ms)
            // and cap throughput at one fetch per partition per wait.
            .set("fetch.wait.max.ms", "10")
            // Feeds the lag gauge and the caught-up marks (see `IngestContext::stats`): the
            // freshness header is at most this much behind.
            .set("statistics.interval.ms", "1000")
            .set("client.id", self.client_id());
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
impl IngestConfig {
    /// A configuration for unit tests: these topics, batches closed at `max_messages`.
    pub(crate) fn for_tests(topics: BTreeMap<String, TopicKind>, max_messages: usize) -> IngestConfig {
        IngestConfig {
            brokers: String::new(),
            group_id: "g".into(),
            instance_id: "i".into(),
            topics,
            batch_max_messages: max_messages,
            batch_max_bytes: 1 << 20,
            batch_max_weight: 1 << 20,
            batch_max_wait: Duration::from_millis(100),
            session_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
            orphan_after: Duration::from_secs(30),
            decode: DecodeLimits::default(),
            trace_retention_days: 30,
            max_segments: 100,
            overrides: BTreeMap::new(),
            separate_trace_lane: true,
            synchronous_commit: true,
            align_max_ahead: Some(Duration::from_secs(3600)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kinds: &[TopicKind], separate: bool) -> IngestConfig {
        let topics = kinds.iter().map(|k| (k.default_name().to_owned(), *k)).collect();
        IngestConfig { separate_trace_lane: separate, ..IngestConfig::for_tests(topics, 1) }
    }

    fn shape(lanes: &[IngestConfig]) -> Vec<(String, Vec<String>, String)> {
        lanes.iter().map(|l| (l.group_id.clone(), l.topic_names(), l.client_id())).collect()
    }

    #[test]
    fn traces_get_a_lane_and_a_group_of_their_own() {
        let kinds = [TopicKind::Interactions, TopicKind::DecisionTraces, TopicKind::Catalog];
        assert_eq!(
            shape(&config(&kinds, true).lanes()),
            [
                ("g".into(), vec!["catalog".into(), "interactions".into()], "decision-views-i".into()),
                ("g.traces".into(), vec!["decision-traces".into()], "decision-views-i.traces".into()),
            ]
        );
        // Switched off, or with one kind of topic only: one lane, as configured.
        for (kinds, separate) in [(&kinds[..], false), (&kinds[1..2], true), (&kinds[..1], true)] {
            let c = config(kinds, separate);
            assert_eq!(shape(&c.lanes()), shape(std::slice::from_ref(&c)));
        }
    }
}
