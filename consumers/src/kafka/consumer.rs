//! The consumer thread: owns the librdkafka consumer (whose callbacks reach an
//! [`IngestContext`]), feeds messages to the batch being built, keeps the partitions aligned in
//! event time (`align`, by not reading the queues of those ahead: `queues`) and hands the
//! batches to the committer. A loop around one [`ConsumerLoop::step`].
//!
//! It runs on a dedicated OS thread because librdkafka's rebalance callback is synchronous and
//! runs inside `poll`: the callback blocks on PostgreSQL (through the runtime handle) to read
//! offsets, and on the committer to drain, which must never happen on a runtime worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::Offset;

use super::align::{Moves, Seen};
use super::builder::{PartitionKey, Received};
use super::context::IngestContext;
use super::mirror;
use super::queues::{Queues, Wake};
use super::undeliverable::{is_undeliverable, Undeliverable};
use super::watchdog::Watchdog;

/// The consumer thread's own state around the client.
struct ConsumerLoop {
    /// The owned partitions' queues, as of assignment generation `synced`. Declared before
    /// the consumer, so dropped first (each holds the consumer; see the end of
    /// [`run_consumer_thread`]).
    queues: Queues<IngestContext>,
    consumer: Arc<BaseConsumer<IngestContext>>,
    synced: Option<u64>,
    wake: Arc<Wake>,
    topics: Vec<String>,
    watchdog: Watchdog,
    undeliverable: Undeliverable,
    /// When alignment last planned.
    aligned: Instant,
}

/// How often alignment recomputes its floors (a delivery past a known floor holds at once).
const ALIGN_EVERY: Duration = Duration::from_millis(50);

/// Messages read into the batch per turn at most: the turn's other work (the committer's
/// offsets to mirror, alignment's clock, the undeliverable probe) then runs at least this often.
const BURST: usize = 64;

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
        // While partitions are paused, alignment plans on time: resuming them cannot wait
        // for a message that only they would bring.
        let timeout = if self.ctx().align().paused() > 0 { timeout.min(ALIGN_EVERY) } else { timeout };
        let full = self.receive(timeout);
        self.skip_undeliverable();
        self.align();
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
            let waited = Instant::now();
            let batch = self.ctx().take_sealed();
            while !self.ctx().shutdown.is_cancelled() && !self.ctx().shared.wait_drained(Duration::from_secs(1)) {}
            let waited = waited.elapsed();
            tracing::debug!(waited_ms = waited.as_millis() as u64, "full batch sealed and waited for the committer");
            self.ctx().builder().not_polled(waited, Instant::now());
            if let Some(batch) = batch {
                self.ctx().send(batch);
            }
        } else if due && self.ctx().shared.idle() {
            self.ctx().flush();
        }
        Ok(())
    }

    /// Serves the main queue (rebalances, statistics, errors), then reads up to [`BURST`]
    /// messages from the queues of the partitions not held back; sleeps until woken or
    /// `timeout` when there was nothing. Returns whether the batch is full.
    fn receive(&mut self, timeout: Duration) -> bool {
        self.wake.clear();
        let mut got = false;
        for turn in 0..=BURST {
            if turn == 1 {
                // After the main queue's rebalances, before reading the queues they change.
                self.sync_queues();
            }
            // Messages come through the main queue only from a partition whose queue could
            // not be split.
            let polled = if turn == 0 { self.consumer.poll(Duration::ZERO) } else { self.queues.poll() };
            let Some(r) = polled else {
                if turn == 0 {
                    continue;
                }
                break;
            };
            got = true;
            let (full, hold) = match r {
                Ok(msg) => self.push(&msg),
                Err(e) => {
                    self.consumer_error(&e);
                    (false, None)
                }
            };
            if self.held(hold) || full {
                return full;
            }
        }
        if !got {
            self.wake.wait(timeout);
        }
        false
    }

    /// Holds back the partition `push` found ahead, if any (true when it did).
    fn held(&mut self, hold: Option<PartitionKey>) -> bool {
        let Some(key) = hold else { return false };
        self.apply_moves(&Moves { pause: vec![key], ..Moves::default() });
        true
    }

    fn consumer_error(&mut self, e: &KafkaError) {
        if is_undeliverable(e) {
            self.undeliverable.noted_error();
        }
        tracing::warn!(error = %e, "consumer error");
    }

    /// Opens and drops partition queues after an assignment change (the rebalance callback
    /// split them off the main queue). Every queue is read again: alignment forgot its holds
    /// with the change (`IngestContext::reset_alignment`).
    fn sync_queues(&mut self) {
        let generation = self.ctx().shared.lock().generation;
        if self.synced == Some(generation) {
            return;
        }
        self.synced = Some(generation);
        let owned = self.ctx().builder().owned_keys();
        self.queues.sync(&self.consumer, &owned);
    }

    /// Adds a message to the batch; returns whether the batch is full, and its partition if
    /// it has run ahead (`align`) and must be held back before it delivers more.
    fn push(&self, msg: &BorrowedMessage<'_>) -> (bool, Option<PartitionKey>) {
        let clock = chrono::Utc::now();
        let pushed = self.ctx().builder().push(received(msg), Instant::now(), clock);
        let hold = pushed.event.filter(|(key, t)| self.ctx().align().delivered(key, *t, clock)).map(|(key, _)| key);
        (pushed.full, hold)
    }

    /// Holds back and releases partitions as [`Alignment`](super::align::Alignment) asks.
    fn apply_moves(&mut self, moves: &Moves) {
        if !moves.pause.is_empty() {
            tracing::debug!(partitions = ?moves.pause, "holding back partitions ahead in event time");
            self.queues.hold(&moves.pause);
        }
        if !moves.passed_over.is_empty() {
            tracing::debug!(partitions = ?moves.passed_over, "passing over partitions that deliver nothing");
        }
        if !moves.resume.is_empty() {
            tracing::debug!(partitions = ?moves.resume, "releasing partitions");
            self.queues.release(&moves.resume);
            self.ctx().builder().resumed(&moves.resume, Instant::now());
        }
        self.ctx().paused_gauge();
    }

    /// Every [`ALIGN_EVERY`]: the floors again from the owned partitions' positions, and the
    /// pauses and resumes they call for.
    fn align(&mut self) {
        let now = Instant::now();
        if now.saturating_duration_since(self.aligned) < ALIGN_EVERY {
            return;
        }
        self.aligned = now;
        let positions = self.ctx().builder().idle_partitions(now);
        let keys: Vec<PartitionKey> = positions.iter().map(|(t, p, _, _)| (t.clone(), *p)).collect();
        let seen: Vec<Seen<'_>> = positions
            .iter()
            .zip(&keys)
            .map(|((_, _, next, idle), key)| Seen { key, next: *next, idle: *idle })
            .collect();
        let moves = self.ctx().align().plan(&seen, now);
        if !moves.is_empty() {
            self.apply_moves(&moves);
        }
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
pub(super) fn run_consumer_thread(context: IngestContext) -> anyhow::Result<()> {
    let (config, shutdown) = (context.config.clone(), context.shutdown.clone());
    let mut consumer: BaseConsumer<IngestContext> = config.client_config().create_with_context(context)?;
    let wake = Arc::new(Wake::default());
    let notify = wake.clone();
    consumer.set_nonempty_callback(move || notify.notify());
    let consumer = Arc::new(consumer);
    consumer.context().bind(&consumer);
    let topics = config.topic_names();
    consumer.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())?;
    tracing::info!(topics = ?topics, group = %config.group_id, "consumer subscribed");
    let mut consumer_loop = ConsumerLoop {
        queues: Queues::new(wake.clone()),
        consumer,
        synced: None,
        wake,
        topics,
        watchdog: Watchdog::new(config.orphan_after, Instant::now()),
        undeliverable: Undeliverable::spawn(config.probe_client_config())?,
        aligned: Instant::now(),
    };
    while !shutdown.is_cancelled() {
        consumer_loop.step()?;
    }
    // Graceful shutdown: commit what was read, then leave the group (the revoke callback runs
    // inside close and finds nothing left to drain). The queues go first: each holds the
    // consumer, and the last owner's drop is what closes it.
    consumer_loop.queues.close();
    let consumer = consumer_loop.consumer;
    consumer.context().flush();
    consumer.context().shared.wait_drained(config.drain_timeout);
    consumer.unsubscribe();
    drop(consumer);
    Ok(())
}
