//! The consumer thread: owns the librdkafka consumer, assigns partitions at the offsets stored
//! in PostgreSQL, and turns messages into size- and time-bounded batches.
//!
//! It runs on a dedicated OS thread because librdkafka's rebalance callback is synchronous and
//! runs inside `poll`: the callback blocks on PostgreSQL (through the runtime handle) to read
//! offsets, and on the committer to drain, which must never happen on a runtime worker.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use sqlx::PgPool;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::IngestConfig;
use super::undeliverable::{is_undeliverable, Found, Undeliverable};
use super::watchdog::Watchdog;
use crate::apply::load_offsets;
use crate::batch::{self, Batch, DeadLetter};
use crate::decode::{RejectReason, Rejection};
use crate::events::TopicKind;

/// Progress shared by the two stages, guarded by one mutex + condvar.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Bumped on every assignment change and resync; batches of older generations are stale.
    pub generation: u64,
    /// Batches handed to the committer / finished by it (applied, skipped or failed).
    pub sent: u64,
    pub done: u64,
    /// A batch of this generation failed for good (fenced): later ones of it are skipped and
    /// the consumer must reload offsets from PostgreSQL.
    pub poisoned: Option<u64>,
}

#[derive(Default)]
pub(super) struct Shared {
    pub progress: Mutex<Progress>,
    pub changed: Condvar,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        // A panic while holding this lock already aborts ingest; poisoning adds nothing.
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the committer has finished every batch sent so far, or `timeout`; true when
    /// it has.
    fn wait_drained(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, res) =
            self.changed.wait_timeout_while(guard, timeout, |p| p.done < p.sent).unwrap_or_else(|p| p.into_inner());
        drop(guard);
        !res.timed_out()
    }
}

/// State of the consumer thread, reachable from the rebalance callback.
struct Local {
    /// Per assigned partition: the stored next offset the next batch starts from (`None`: no
    /// row yet). Only assigned partitions are present.
    committed: HashMap<(String, i32), Option<i64>>,
    batch: Batch,
    batch_started: Option<Instant>,
    /// When each assigned partition last delivered a message (or was assigned): a partition
    /// idle while the client reports undeliverable data is checked (see `undeliverable`).
    last_delivery: HashMap<(String, i32), Instant>,
}

pub(super) struct IngestContext {
    config: IngestConfig,
    /// Topic name → (the name shared by the batch's entries, what the topic carries).
    topics: HashMap<String, (Arc<str>, TopicKind)>,
    pool: PgPool,
    runtime: Handle,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Batch>,
    local: Mutex<Local>,
    shutdown: CancellationToken,
}

impl ClientContext for IngestContext {
    /// librdkafka's periodic statistics carry each partition's high watermark: the lag gauge
    /// comes from there without a broker round trip of ours.
    fn stats(&self, stats: rdkafka::Statistics) {
        let mut caught_up: Vec<(String, i32, i64)> = Vec::new();
        {
            let local = self.lock_local();
            for ((topic, partition), committed) in &local.committed {
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
        }
        // Runs on the consumer thread once per statistics interval: one small UPDATE, bounded
        // so that an unreachable PostgreSQL never stalls polling (the mark is only freshness).
        let mark = async {
            tokio::time::timeout(Duration::from_millis(500), crate::apply::mark_caught_up(&self.pool, &caught_up)).await
        };
        match self.runtime.block_on(mark) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "could not record caught-up partitions"),
            Err(_) => tracing::debug!("recording caught-up partitions timed out"),
        }
    }
}

impl ConsumerContext for IngestContext {
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
    pub(super) fn config(&self) -> &IngestConfig {
        &self.config
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// The partitions this process owns now.
    pub(super) fn assigned(&self) -> std::collections::HashSet<(String, i32)> {
        self.lock_local().committed.keys().cloned().collect()
    }

    fn lock_local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
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
        {
            let mut local = self.lock_local();
            local.last_delivery = committed.keys().map(|k| (k.clone(), Instant::now())).collect();
            local.committed = committed;
            local.batch = Batch::default();
            local.batch_started = None;
        }
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
        {
            let mut local = self.lock_local();
            local.committed.clear();
            local.last_delivery.clear();
            local.batch = Batch::default();
            local.batch_started = None;
        }
        self.shared.lock().generation += 1;
        if let Err(e) = consumer.unassign() {
            tracing::error!(error = %e, "unassign failed");
        }
        tracing::info!("partitions revoked");
    }

    /// Offsets from PostgreSQL, retried until they can be read (or shutdown): without them
    /// there is no safe position to resume from.
    fn stored_offsets(&self) -> HashMap<(String, i32), i64> {
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
        let batch = {
            let mut local = self.lock_local();
            local.batch_started = None;
            if local.batch.is_empty() {
                return;
            }
            let mut batch = std::mem::take(&mut local.batch);
            batch.generation = self.shared.lock().generation;
            // Optimistically, the next batch starts where this one ends; a failure resyncs.
            for (key, pos) in &batch.positions {
                if let Some(c) = local.committed.get_mut(key) {
                    *c = Some(pos.next);
                }
            }
            batch
        };
        metrics::histogram!("ingest_batch_messages").record(batch.messages() as f64);
        self.shared.lock().sent += 1;
        if self.tx.blocking_send(batch).is_err() {
            // The committer is gone (shutdown): count it done so nobody waits for it.
            let mut p = self.shared.lock();
            p.done += 1;
            self.shared.changed.notify_all();
        }
    }

    /// Adds one message to the batch being built; returns whether the batch is full.
    fn push(&self, msg: &rdkafka::message::BorrowedMessage<'_>) -> bool {
        let Some((topic, kind)) = self.topics.get(msg.topic()) else { return false };
        let mut local = self.lock_local();
        let key = (msg.topic().to_owned(), msg.partition());
        let Some(&committed) = local.committed.get(&key) else {
            return false; // not (or no longer) ours
        };
        if committed.is_some_and(|c| msg.offset() < c) {
            return false; // already applied (a redelivery after a seek)
        }
        let message = batch::Message {
            topic,
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            payload: msg.payload(),
        };
        local.batch.add(*kind, message, committed, &self.config.decode, chrono::Utc::now());
        local.batch_started.get_or_insert_with(Instant::now);
        local.last_delivery.insert(key, Instant::now());
        local.batch.is_full(&self.config.batch_limits())
    }

    /// Each assigned partition with the offset it will deliver next (`None`: from the
    /// beginning) and how long it has delivered nothing.
    fn idle_partitions(&self) -> Vec<(String, i32, Option<i64>, Duration)> {
        let local = self.lock_local();
        local
            .committed
            .iter()
            .map(|(key, committed)| {
                let next = local.batch.positions.get(key).map(|p| p.next).or(*committed);
                let idle = local.last_delivery.get(key).map_or(Duration::ZERO, Instant::elapsed);
                (key.0.clone(), key.1, next, idle)
            })
            .collect()
    }

    /// Dead-letters an undeliverable range in the batch being built and moves the partition
    /// past it. Ignored when the partition moved meanwhile (revoked, or delivered after all).
    fn skip_undeliverable(&self, consumer: &BaseConsumer<Self>, found: Found) {
        let key = (found.topic.clone(), found.partition);
        {
            let mut local = self.lock_local();
            let Some(&committed) = local.committed.get(&key) else { return };
            let next = local.batch.positions.get(&key).map(|p| p.next).or(committed);
            if next.is_some_and(|n| n != found.first) {
                return;
            }
            let last = found.end - 1;
            let detail = format!(
                "offsets {}..={last} ({} messages) could not be delivered by the Kafka client: {}",
                found.first,
                found.end - found.first,
                found.error
            );
            tracing::error!(topic = %found.topic, partition = found.partition, first = found.first, last,
                error = %found.error, "undeliverable messages dead-lettered; the partition moves on");
            metrics::counter!("ingest_undeliverable_messages_total", "topic" => found.topic.clone())
                .increment((found.end - found.first) as u64);
            local.batch.dead_letters.push(DeadLetter {
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
            local.batch.advance(&found.topic, found.partition, last, committed, None);
            local.batch_started.get_or_insert_with(Instant::now);
            local.last_delivery.insert(key, Instant::now());
        }
        if let Err(e) = consumer.seek(&found.topic, found.partition, Offset::Offset(found.end), Duration::from_secs(10))
        {
            tracing::warn!(topic = %found.topic, partition = found.partition, error = %e, "seek past undeliverable offsets failed");
        }
    }

    /// Every batch handed over so far is committed (or dropped).
    fn committer_idle(&self) -> bool {
        let p = self.shared.lock();
        p.done >= p.sent
    }

    fn batch_due(&self) -> Option<Duration> {
        let local = self.lock_local();
        local.batch_started.map(|s| self.config.batch_max_wait.saturating_sub(s.elapsed()))
    }

    /// After a fenced batch: wait for the committer, reload offsets, seek every partition.
    fn resync(&self, consumer: &BaseConsumer<Self>) {
        self.shared.wait_drained(self.config.drain_timeout);
        let stored = self.stored_offsets();
        let mut local = self.lock_local();
        local.batch = Batch::default();
        local.batch_started = None;
        let keys: Vec<(String, i32)> = local.committed.keys().cloned().collect();
        for key in keys {
            let next = stored.get(&key).copied();
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            if let Err(e) = consumer.seek(&key.0, key.1, offset, Duration::from_secs(10)) {
                tracing::warn!(topic = %key.0, partition = key.1, error = %e, "seek after resync failed");
            }
            local.committed.insert(key, next);
        }
        let mut p = self.shared.lock();
        p.generation += 1;
        p.poisoned = None;
        tracing::warn!("resynchronized offsets from PostgreSQL after a fenced batch");
    }
}

/// Builds the consumer and runs the poll loop until `shutdown`; returns after the last batch
/// is handed over and the consumer has left the group.
pub(super) fn run_consumer_thread(
    config: IngestConfig,
    pool: PgPool,
    runtime: Handle,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let context = IngestContext {
        topics: config.topics.iter().map(|(name, kind)| (name.clone(), (Arc::from(name.as_str()), *kind))).collect(),
        config: config.clone(),
        pool,
        runtime,
        shared: shared.clone(),
        tx,
        local: Mutex::new(Local {
            committed: HashMap::new(),
            batch: Batch::default(),
            batch_started: None,
            last_delivery: HashMap::new(),
        }),
        shutdown: shutdown.clone(),
    };
    let consumer: BaseConsumer<IngestContext> = config.client_config().create_with_context(context)?;
    let topics: Vec<&str> = config.topics.keys().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(topics = ?topics, group = %config.group_id, "consumer subscribed");

    let mut watchdog = Watchdog::new(config.orphan_after);
    let mut undeliverable = Undeliverable::spawn(config.probe_client_config())?;
    while !shutdown.is_cancelled() {
        if shared.lock().poisoned.is_some() {
            consumer.context().resync(&consumer);
        }
        if watchdog.due_and_orphans(&consumer) {
            // Leaving runs the revoke callback (the batches in flight commit first); the
            // subscribe joins again as a new member, which forces a fresh assignment.
            consumer.unsubscribe();
            consumer.subscribe(&topics)?;
        }
        // Past its wait a batch is handed over only once the committer is free: a batch queued
        // behind a commit waits that whole commit while the next one fills up behind it, so
        // under load every event waited about three commits (seen: 4 s freshness at 70 %
        // utilization). Handing over when the committer frees up keeps one batch in flight,
        // lets batches grow with the load (more aggregation per row) and bounds an event's
        // wait to about two commits. Meanwhile polls keep filling the batch (5 ms timeout: a
        // waiting message returns at once, an idle topic does not spin).
        let timeout = match consumer.context().batch_due() {
            Some(d) if d.is_zero() => Duration::from_millis(5),
            Some(d) => d,
            None => Duration::from_millis(200),
        };
        let full = match consumer.poll(timeout) {
            Some(Ok(msg)) => consumer.context().push(&msg),
            Some(Err(e)) => {
                if is_undeliverable(&e) {
                    undeliverable.noted_error();
                }
                tracing::warn!(error = %e, "consumer error");
                false
            }
            None => false,
        };
        if undeliverable.due() {
            for (topic, partition, next, idle) in consumer.context().idle_partitions() {
                undeliverable.check(&topic, partition, next, idle);
            }
        }
        for found in undeliverable.found() {
            consumer.context().skip_undeliverable(&consumer, found);
        }
        let due = consumer.context().batch_due().is_some_and(|d| d.is_zero());
        if full {
            // A full batch waits here for the committer rather than in the channel, so at most
            // two batches are in memory (one committing, this one): with a third queued, peak
            // RSS ingesting 5 KB traces passed 300 MB (SPEC 7's bar).
            while !shutdown.is_cancelled() && !shared.wait_drained(Duration::from_secs(1)) {}
            consumer.context().flush();
        } else if due && consumer.context().committer_idle() {
            consumer.context().flush();
        }
    }
    // Graceful shutdown: commit what was read, then leave the group (the revoke callback runs
    // inside close and finds nothing left to drain).
    consumer.context().flush();
    consumer.context().shared.wait_drained(config.drain_timeout);
    consumer.unsubscribe();
    drop(consumer);
    Ok(())
}
