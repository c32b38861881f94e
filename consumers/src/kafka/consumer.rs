//! The consumer thread: owns the librdkafka consumer, assigns partitions at the offsets stored
//! in PostgreSQL, feeds messages to the batch [`Builder`] and hands its batches to the
//! committer. A loop around one [`ConsumerLoop::step`].
//!
//! It runs on a dedicated OS thread because librdkafka's rebalance callback is synchronous and
//! runs inside `poll`: the callback blocks on PostgreSQL (through the runtime handle) to read
//! offsets, and on the committer to drain, which must never happen on a runtime worker.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use sqlx::PgPool;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::builder::{Builder, PartitionKey, Received};
use super::config::IngestConfig;
use super::health::GroupHealth;
use super::mirror;
use super::progress::Shared;
use super::undeliverable::{is_undeliverable, Undeliverable};
use super::watchdog::{orphans, stale_unowned, Watchdog};
use crate::apply::{load_offsets, mark_caught_up, StoredOffset};
use crate::batch::Batch;

/// What the librdkafka callbacks (rebalance, statistics) reach.
pub(super) struct IngestContext {
    config: IngestConfig,
    pool: PgPool,
    runtime: Handle,
    shared: Arc<Shared>,
    health: Arc<GroupHealth>,
    tx: mpsc::Sender<Batch>,
    builder: Mutex<Builder>,
    shutdown: CancellationToken,
}

impl ClientContext for IngestContext {
    /// librdkafka's periodic statistics carry each partition's high watermark: the lag gauge
    /// comes from there without a broker round trip of ours.
    fn stats(&self, stats: rdkafka::Statistics) {
        let mut caught_up: Vec<(String, i32, i64)> = Vec::new();
        for ((topic, partition), committed) in self.builder().owned() {
            let Some(p) = stats.topics.get(topic).and_then(|t| t.partitions.get(partition)) else { continue };
            if p.hi_offset < 0 {
                continue;
            }
            let lag = (p.hi_offset - committed.unwrap_or(0)).max(0);
            metrics::gauge!("ingest_consumer_lag", "topic" => topic.clone(), "partition" => partition.to_string())
                .set(lag as f64);
            if lag == 0 {
                caught_up.push((topic.clone(), *partition, p.hi_offset));
            }
        }
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
    fn builder(&self) -> MutexGuard<'_, Builder> {
        // A panic while holding this lock already aborts ingest; poisoning adds nothing.
        self.builder.lock().unwrap_or_else(|p| p.into_inner())
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
        self.builder().assign(committed, Instant::now());
        self.shared.lock().generation += 1;
        if let Err(e) = consumer.assign(&assignment) {
            tracing::error!(error = %e, "assign failed");
        }
    }

    /// Finishes the batches in flight (bounded by the drain timeout), then gives the
    /// partitions up. The partial batch is committed too: we still own its partitions.
    fn on_revoke(&self, consumer: &BaseConsumer<Self>) {
        self.flush();
        if !self.shared.wait_drained(self.config.drain_timeout) {
            tracing::warn!("drain timed out on revoke; abandoning the batches in flight (the offsets CAS fences them)");
        }
        self.builder().revoke();
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
    fn flush(&self) {
        if let Some(batch) = self.take_sealed() {
            self.send(batch);
        }
    }

    /// The batch so far, folded ([`Batch::seal`]) outside the builder's lock.
    fn take_sealed(&self) -> Option<Batch> {
        let generation = self.shared.lock().generation;
        let mut batch = self.builder().take(generation)?;
        batch.seal();
        Some(batch)
    }

    fn send(&self, batch: Batch) {
        metrics::histogram!("ingest_batch_messages").record(batch.messages() as f64);
        self.shared.lock().sent += 1;
        if self.tx.blocking_send(batch).is_err() {
            // The committer is gone (shutdown): count it done so nobody waits for it.
            self.shared.finished_one();
        }
    }

    /// After a fenced batch: wait for the committer, reload offsets, seek every partition.
    fn resync(&self, consumer: &BaseConsumer<Self>) {
        self.shared.wait_drained(self.config.drain_timeout);
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
    fn orphaned(&self, consumer: &BaseConsumer<Self>, orphan_after: Duration) -> Vec<PartitionKey> {
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

/// The consumer thread's own state around the client.
struct ConsumerLoop {
    consumer: BaseConsumer<IngestContext>,
    topics: Vec<String>,
    watchdog: Watchdog,
    undeliverable: Undeliverable,
}

impl ConsumerLoop {
    fn ctx(&self) -> &IngestContext {
        self.consumer.context()
    }

    /// One turn: resync or rejoin when needed, poll one message into the batch, look after
    /// undeliverable offsets, and hand the batch over when it is full or due.
    fn step(&mut self) -> anyhow::Result<()> {
        if self.ctx().shared.lock().poisoned.is_some() {
            self.ctx().resync(&self.consumer);
        }
        self.watch_orphans()?;
        // Past its wait a batch is handed over only once the committer is free: a batch queued
        // behind a commit waits that whole commit while the next one fills up behind it, so
        // under load every event waited about three commits (seen: 4 s freshness at 70 %
        // utilization). Handing over when the committer frees up keeps one batch in flight,
        // lets batches grow with the load (more aggregation per row) and bounds an event's
        // wait to about two commits. Meanwhile polls keep filling the batch (5 ms timeout: a
        // waiting message returns at once, an idle topic does not spin).
        let timeout = match self.ctx().builder().due_in(Instant::now()) {
            Some(d) if d.is_zero() => Duration::from_millis(5),
            Some(d) => d,
            None => Duration::from_millis(200),
        };
        let full = match self.consumer.poll(timeout) {
            Some(Ok(msg)) => self.ctx().builder().push(received(&msg), Instant::now(), chrono::Utc::now()),
            Some(Err(e)) => {
                if is_undeliverable(&e) {
                    self.undeliverable.noted_error();
                }
                tracing::warn!(error = %e, "consumer error");
                false
            }
            None => false,
        };
        self.skip_undeliverable();
        let committed = std::mem::take(&mut self.ctx().shared.lock().committed);
        if !committed.is_empty() {
            mirror::commit(&self.consumer, self.ctx().builder().owned(), committed);
        }
        let due = self.ctx().builder().due_in(Instant::now()).is_some_and(|d| d.is_zero());
        if full {
            // A full batch waits here for the committer rather than in the channel, so at most
            // two batches are in memory (one committing, this one): with a third queued, peak
            // RSS ingesting 5 KB traces passed 300 MB (docs/guarantees.md 7's bar).
            // It is folded first, so that its fold overlaps the commit in flight.
            let batch = self.ctx().take_sealed();
            let waited = Instant::now();
            while !self.ctx().shutdown.is_cancelled() && !self.ctx().shared.wait_drained(Duration::from_secs(1)) {}
            tracing::debug!(waited_ms = waited.elapsed().as_millis() as u64, "full batch waited for the committer");
            if let Some(batch) = batch {
                self.ctx().send(batch);
            }
        } else if due && self.ctx().shared.idle() {
            self.ctx().flush();
        }
        Ok(())
    }

    /// Rejoins the group when the watchdog finds orphaned partitions: leaving runs the revoke
    /// callback (the batches in flight commit first); the subscribe joins again as a new
    /// member, which forces a fresh assignment.
    fn watch_orphans(&mut self) -> anyhow::Result<()> {
        if !self.watchdog.due(Instant::now()) {
            return Ok(());
        }
        let orphans = self.ctx().orphaned(&self.consumer, self.watchdog.orphan_after);
        if orphans.is_empty() {
            return Ok(());
        }
        tracing::warn!(?orphans, "partitions with waiting messages have no active consumer; rejoining the group");
        metrics::counter!("ingest_orphan_rejoins_total").increment(1);
        self.watchdog.rejoined(Instant::now());
        self.consumer.unsubscribe();
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        self.consumer.subscribe(&topics)?;
        Ok(())
    }

    /// Asks the probe thread about idle partitions and skips the undeliverable ranges it found.
    fn skip_undeliverable(&mut self) {
        if self.undeliverable.due() {
            let idle = self.ctx().builder().idle_partitions(Instant::now());
            for (topic, partition, next, idle) in idle {
                self.undeliverable.check(&topic, partition, next, idle);
            }
        }
        for found in self.undeliverable.found() {
            if !self.ctx().builder().skip_undeliverable(&found, Instant::now()) {
                continue;
            }
            tracing::error!(topic = %found.topic, partition = found.partition, first = found.first,
                last = found.end - 1, error = %found.error, "undeliverable messages dead-lettered; the partition moves on");
            metrics::counter!("ingest_undeliverable_messages_total", "topic" => found.topic.clone())
                .increment((found.end - found.first) as u64);
            let seek =
                self.consumer.seek(&found.topic, found.partition, Offset::Offset(found.end), Duration::from_secs(10));
            if let Err(e) = seek {
                tracing::warn!(topic = %found.topic, partition = found.partition, error = %e, "seek past undeliverable offsets failed");
            }
        }
    }
}

fn received<'a>(msg: &'a BorrowedMessage<'_>) -> Received<'a> {
    Received {
        topic: msg.topic(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key(),
        payload: msg.payload(),
    }
}

/// Builds the consumer and runs the poll loop until `shutdown`; returns after the last batch
/// is handed over and the consumer has left the group.
pub(super) fn run_consumer_thread(
    config: IngestConfig,
    pool: PgPool,
    runtime: Handle,
    shared: Arc<Shared>,
    health: Arc<GroupHealth>,
    tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let context = IngestContext {
        health,
        builder: Mutex::new(Builder::new(&config)),
        config: config.clone(),
        pool,
        runtime,
        shared,
        tx,
        shutdown: shutdown.clone(),
    };
    let consumer: BaseConsumer<IngestContext> = config.client_config().create_with_context(context)?;
    let topics = config.topic_names();
    consumer.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())?;
    tracing::info!(topics = ?topics, group = %config.group_id, "consumer subscribed");
    let mut consumer_loop = ConsumerLoop {
        consumer,
        topics,
        watchdog: Watchdog::new(config.orphan_after, Instant::now()),
        undeliverable: Undeliverable::spawn(config.probe_client_config())?,
    };
    while !shutdown.is_cancelled() {
        consumer_loop.step()?;
    }
    // Graceful shutdown: commit what was read, then leave the group (the revoke callback runs
    // inside close and finds nothing left to drain).
    let consumer = consumer_loop.consumer;
    consumer.context().flush();
    consumer.context().shared.wait_drained(config.drain_timeout);
    consumer.unsubscribe();
    drop(consumer);
    Ok(())
}
