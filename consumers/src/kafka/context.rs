//! What the librdkafka callbacks reach on the consumer thread: the rebalance callback (assign
//! at the offsets PostgreSQL stores, drain before a revoke), the statistics (the lag gauge,
//! caught-up marks, alignment's high watermarks), and the batch being built.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use sqlx::PgPool;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::align::Alignment;
use super::builder::{Builder, PartitionKey};
use super::config::IngestConfig;
use super::health::GroupHealth;
use super::progress::Shared;
use super::queues;
use super::watchdog::{orphans, stale_unowned};
use crate::apply::{load_offsets, mark_caught_up, StoredOffset};
use crate::batch::Batch;

/// What the librdkafka callbacks (rebalance, statistics) reach.
pub(super) struct IngestContext {
    pub config: IngestConfig,
    pool: PgPool,
    runtime: Handle,
    pub shared: Arc<Shared>,
    health: Arc<GroupHealth>,
    tx: mpsc::Sender<Batch>,
    builder: Mutex<Builder>,
    align: Mutex<Alignment>,
    pub shutdown: CancellationToken,
    /// The consumer these callbacks belong to, for splitting partition queues on assignment
    /// (`queues::split` needs it shared). Weak: the consumer owns this context.
    consumer: OnceLock<Weak<BaseConsumer<IngestContext>>>,
}

impl ClientContext for IngestContext {
    /// librdkafka's periodic statistics carry each partition's high watermark: the lag gauge
    /// comes from there without a broker round trip of ours.
    fn stats(&self, stats: rdkafka::Statistics) {
        let mut caught_up: Vec<(String, i32, i64)> = Vec::new();
        let mut high = Vec::new();
        for ((topic, partition), committed) in self.builder().owned() {
            let Some(p) = stats.topics.get(topic).and_then(|t| t.partitions.get(partition)) else { continue };
            if p.hi_offset < 0 {
                continue;
            }
            high.push(((topic.clone(), *partition), p.hi_offset));
            let lag = (p.hi_offset - committed.unwrap_or(0)).max(0);
            metrics::gauge!("ingest_consumer_lag", "topic" => topic.clone(), "partition" => partition.to_string())
                .set(lag as f64);
            if lag == 0 {
                caught_up.push((topic.clone(), *partition, p.hi_offset));
            }
        }
        self.align().watermarks(high);
        // Bytes librdkafka has fetched and not handed over yet (its partitions' queues, which
        // `config`'s queue bound limits). The responses they came in stay allocated while any
        // of their messages is queued, so the memory behind them can be twice this or more
        // (BENCHMARKS.md "Write path, seventeenth pass").
        let prefetched: u64 = stats.topics.values().flat_map(|t| t.partitions.values()).map(|p| p.fetchq_size).sum();
        metrics::gauge!("ingest_prefetched_bytes", "group" => self.config.group_id.clone()).set(prefetched as f64);
        tracing::debug!(prefetched, "bytes fetched and not yet read");
        // Runs on the consumer thread once per statistics interval: one small UPDATE, bounded
        // so that an unreachable PostgreSQL never stalls polling (the mark is only freshness).
        let mark =
            async { tokio::time::timeout(Duration::from_millis(500), mark_caught_up(&self.pool, &caught_up)).await };
        match self.runtime.block_on(mark) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "could not record caught-up partitions"),
            Err(_) => tracing::debug!("recording caught-up partitions timed out"),
        }
    }
}

impl ConsumerContext for IngestContext {
    /// The answer to a mirror of offsets (`mirror`): a failure costs only the group's view.
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            metrics::counter!("ingest_offset_mirror_failures_total").increment(1);
            tracing::debug!(error = %e, "the group refused mirrored offsets (PostgreSQL keeps them)");
        }
    }

    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.on_assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.on_revoke(consumer),
            other => {
                tracing::error!(error = ?other, "rebalance error; dropping the assignment");
                self.on_revoke(consumer);
            }
        }
    }
}

impl IngestContext {
    pub fn new(
        config: IngestConfig,
        pool: PgPool,
        runtime: Handle,
        shared: Arc<Shared>,
        health: Arc<GroupHealth>,
        tx: mpsc::Sender<Batch>,
        shutdown: CancellationToken,
    ) -> IngestContext {
        IngestContext {
            builder: Mutex::new(Builder::new(&config)),
            align: Mutex::new(Alignment::new(config.align_max_ahead)),
            config,
            pool,
            runtime,
            shared,
            health,
            tx,
            shutdown,
            consumer: OnceLock::new(),
        }
    }

    /// Tells the callbacks which consumer they belong to (before it subscribes).
    pub fn bind(&self, consumer: &Arc<BaseConsumer<IngestContext>>) {
        let _ = self.consumer.set(Arc::downgrade(consumer));
    }

    pub fn builder(&self) -> MutexGuard<'_, Builder> {
        // A panic while holding this lock already aborts ingest; poisoning adds nothing.
        self.builder.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn align(&self) -> MutexGuard<'_, Alignment> {
        self.align.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn paused_gauge(&self) {
        metrics::gauge!("ingest_partitions_paused", "group" => self.config.group_id.clone())
            .set(self.align().paused() as f64);
    }

    /// Forgets what alignment knew and held: on every assignment change and before a resync
    /// seeks every partition (the consumer thread then reads every queue again).
    fn reset_alignment(&self) {
        let released = self.align().reset();
        self.builder().resumed(&released, Instant::now());
        self.paused_gauge();
    }

    /// Reads the stored offsets and assigns once with them (assigning twice is a known source
    /// of spurious offset resets).
    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let stored = self.stored_offsets();
        let mut assignment = TopicPartitionList::new();
        let mut committed = HashMap::new();
        for el in tpl.elements() {
            let key = (el.topic().to_owned(), el.partition());
            let next = stored.get(&key).copied();
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            if let Err(e) = assignment.add_partition_offset(el.topic(), el.partition(), offset) {
                tracing::error!(error = %e, "cannot build the assignment");
            }
            committed.insert(key, next);
        }
        tracing::info!(partitions = committed.len(), "partitions assigned; resuming from PostgreSQL offsets");
        self.health.assigned(&self.config.group_id, committed.len());
        self.reset_alignment();
        let keys: Vec<PartitionKey> = committed.keys().cloned().collect();
        self.builder().assign(committed, Instant::now());
        self.shared.lock().generation += 1;
        // Split before the assignment starts fetching (see `queues`).
        if let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) {
            queues::split(&consumer, &keys);
        }
        if let Err(e) = consumer.assign(&assignment) {
            tracing::error!(error = %e, "assign failed");
        }
        self.first_watermarks(consumer, keys);
    }

    /// Which partitions have messages waiting, for alignment to hold the ones ahead from the
    /// first batch on: the statistics tell it only a second later, when a backlog may already
    /// be skewed by thousands of messages. Best effort: after the first failure it is left to
    /// the statistics.
    fn first_watermarks(&self, consumer: &BaseConsumer<Self>, keys: Vec<PartitionKey>) {
        if self.config.align_max_ahead.is_none() {
            return;
        }
        let mut high = Vec::with_capacity(keys.len());
        for key in keys {
            match consumer.fetch_watermarks(&key.0, key.1, Duration::from_secs(1)) {
                Ok((_, h)) => high.push((key, h)),
                Err(e) => {
                    tracing::debug!(error = %e, "no watermarks on assignment; alignment waits for the statistics");
                    break;
                }
            }
        }
        self.align().watermarks(high);
    }

    /// Finishes the batches in flight (bounded by the drain timeout), then gives the
    /// partitions up. The partial batch is committed too: we still own its partitions.
    fn on_revoke(&self, consumer: &BaseConsumer<Self>) {
        self.flush();
        if !self.shared.wait_drained(self.config.drain_timeout) {
            tracing::warn!("drain timed out on revoke; abandoning the batches in flight (the offsets CAS fences them)");
        }
        self.builder().revoke();
        self.reset_alignment();
        self.health.revoked(&self.config.group_id);
        self.shared.lock().generation += 1;
        if let Err(e) = consumer.unassign() {
            tracing::error!(error = %e, "unassign failed");
        }
        tracing::info!("partitions revoked");
    }

    /// Offsets from PostgreSQL, retried until they can be read (or shutdown): without them
    /// there is no safe position to resume from.
    fn stored_offsets(&self) -> HashMap<PartitionKey, i64> {
        let topics = self.config.topic_names();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.runtime.block_on(load_offsets(&self.pool, &topics)) {
                Ok(map) => return map.into_iter().map(|(k, v)| (k, v.next_offset)).collect(),
                Err(e) if !self.shutdown.is_cancelled() => {
                    tracing::error!(error = %e, "cannot read stored offsets; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(_) => return HashMap::new(),
            }
        }
    }

    /// Hands the partial batch to the committer (blocking while the committer is busy).
    pub fn flush(&self) {
        if let Some(batch) = self.take_sealed() {
            self.send(batch);
        }
    }

    /// The batch so far, folded ([`Batch::seal`]) outside the builder's lock.
    pub fn take_sealed(&self) -> Option<Batch> {
        let generation = self.shared.lock().generation;
        let mut batch = self.builder().take(generation)?;
        batch.seal();
        Some(batch)
    }

    pub fn send(&self, batch: Batch) {
        metrics::histogram!("ingest_batch_messages").record(batch.messages() as f64);
        self.shared.lock().sent += 1;
        if self.tx.blocking_send(batch).is_err() {
            // The committer is gone (shutdown): count it done so nobody waits for it.
            self.shared.finished_one();
        }
    }

    /// After a fenced batch: wait for the committer, reload offsets, seek every partition.
    pub fn resync(&self, consumer: &BaseConsumer<Self>) {
        self.shared.wait_drained(self.config.drain_timeout);
        self.reset_alignment();
        let stored = self.stored_offsets();
        let owned: Vec<PartitionKey> = {
            let mut builder = self.builder();
            builder.resync(&stored);
            builder.owned().keys().cloned().collect()
        };
        for key in owned {
            let offset = stored.get(&key).map_or(Offset::Beginning, |o| Offset::Offset(*o));
            if let Err(e) = consumer.seek(&key.0, key.1, offset, Duration::from_secs(10)) {
                tracing::warn!(topic = %key.0, partition = key.1, error = %e, "seek after resync failed");
            }
        }
        let mut p = self.shared.lock();
        p.generation += 1;
        p.poisoned = None;
        tracing::warn!("resynchronized offsets from PostgreSQL after a fenced batch");
    }

    /// The watchdog's requests: stored offsets, the topics' partitions, watermarks of the stale
    /// unowned ones. Empty when PostgreSQL or the broker does not answer (nothing to conclude).
    pub fn orphaned(&self, consumer: &BaseConsumer<Self>, orphan_after: Duration) -> Vec<PartitionKey> {
        let timeout = Duration::from_secs(2);
        let topics = self.config.topic_names();
        let Ok(stored) = self.runtime.block_on(load_offsets(&self.pool, &topics)) else { return Vec::new() };
        let stored: BTreeMap<PartitionKey, StoredOffset> = stored;
        let Ok(md) = consumer.fetch_metadata(None, timeout) else { return Vec::new() };
        let partitions: Vec<PartitionKey> = md
            .topics()
            .iter()
            .filter(|t| topics.iter().any(|n| n == t.name()))
            .flat_map(|t| t.partitions().iter().map(|p| (t.name().to_owned(), p.id())))
            .collect();
        let stale_before =
            chrono::Utc::now() - chrono::Duration::from_std(orphan_after).unwrap_or(chrono::Duration::MAX);
        let owned = self.builder().owned_keys();
        let mut watermarks = Vec::new();
        for key in stale_unowned(&partitions, &stored, &owned, stale_before) {
            let Ok((_, high)) = consumer.fetch_watermarks(&key.0, key.1, timeout) else { return Vec::new() };
            watermarks.push((key, high));
        }
        orphans(&watermarks, &stored)
    }
}
