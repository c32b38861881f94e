//! The processor's own ceiling: pre-encoded events in memory (no broker) through the same
//! decode → batch → apply-in-one-transaction path as the consumer, with decode on one thread
//! and the commit on another (as the consumer thread and the committer do). It also fills the
//! database the read benchmark runs on, with the standard workload.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consumers::apply::{apply_batch, ApplyOptions};
use consumers::batch::{Batch, BatchLimits, Entry, Message};
use consumers::decode::DecodeLimits;
use consumers::events::TopicKind;
use decision_views::publish::{EventTime, Generated, Workload, WorkloadShape};
use sqlx::PgPool;

/// Per topic group: events and seconds spent in the pipeline.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rate {
    pub events: u64,
    pub secs: f64,
    /// CPU seconds over `secs` of the thread that decodes, folds and seals (the consumer
    /// thread's work), of the thread that applies (the committer's), and of PostgreSQL: which
    /// of them is saturated says what limits the rate.
    pub decode_cpu: f64,
    pub apply_cpu: f64,
    pub postgres_cpu: f64,
}

impl Rate {
    pub fn per_s(&self) -> f64 {
        self.events as f64 / self.secs.max(1e-9)
    }

    /// "decode thread 93 %, apply thread 41 %, PostgreSQL 38 %" (of one core, over `secs`).
    pub fn cpu(&self) -> String {
        let pct = |cpu: f64| cpu * 100.0 / self.secs.max(1e-9);
        format!(
            "decode thread {:.0} %, apply thread {:.0} %, PostgreSQL {:.0} %",
            pct(self.decode_cpu),
            pct(self.apply_cpu),
            pct(self.postgres_cpu)
        )
    }

    fn add(&mut self, events: u64, p: &Pipelined) {
        self.events += events;
        self.secs += p.secs;
        self.decode_cpu += p.decode_cpu;
        self.apply_cpu += p.apply_cpu;
        self.postgres_cpu += p.postgres_cpu;
    }
}

/// One run of the pipeline: its wall time and CPU seconds (see [`Rate`]).
struct Pipelined {
    secs: f64,
    decode_cpu: f64,
    apply_cpu: f64,
    postgres_cpu: f64,
}

/// Clock ticks per second of `/proc`'s counters (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

pub struct Filler {
    pool: PgPool,
    workload: Workload,
    /// Next offset of each synthetic partition (one per topic).
    next: BTreeMap<TopicKind, i64>,
    options: ApplyOptions,
    /// The service's batch bounds (`DV_INGEST_BATCH_MAX_*`, read as the service reads them).
    limits: BatchLimits,
    pub traces_done: u64,
    /// Traces (alone in their batches, as on their own topic), interactions, everything else.
    pub traces: Rate,
    pub interactions: Rate,
    pub other: Rate,
}

/// Traces generated, then run through one pipeline: large, because each run starts and ends
/// with one side of the pipeline idle, which a consumer that streams does not.
const CHUNK_TRACES: u64 = 100_000;

impl Filler {
    /// A filler of the standard workload whose `traces` span its 90 days.
    pub async fn new(pool: PgPool, seed: u64, traces: u64) -> anyhow::Result<(Filler, Vec<Entry>)> {
        Filler::over_days(pool, seed, traces, WorkloadShape::default().days).await
    }

    /// A filler whose `traces` span the newest `days` of the standard workload.
    pub async fn over_days(pool: PgPool, seed: u64, traces: u64, days: i64) -> anyhow::Result<(Filler, Vec<Entry>)> {
        let shape = WorkloadShape { days, time: EventTime::History { traces }, ..WorkloadShape::default() };
        let workload = Workload::new(shape, seed, chrono::Utc::now());
        let options = ApplyOptions {
            owner: "bench".into(),
            trace_retention_days: 30,
            max_segments: 100,
            // The same variable as the service's, parsed the same way (`true`/`false`).
            synchronous_commit: match std::env::var("DV_INGEST_SYNCHRONOUS_COMMIT") {
                Ok(v) => v.parse().map_err(|e| anyhow::anyhow!("DV_INGEST_SYNCHRONOUS_COMMIT={v:?}: {e}"))?,
                Err(_) => true,
            },
        };
        let limits = decision_views::settings::Settings::from_env()?.ingest_config().batch_limits();
        let mut f = Filler {
            pool,
            workload,
            next: BTreeMap::new(),
            options,
            limits,
            traces_done: 0,
            traces: Rate::default(),
            interactions: Rate::default(),
            other: Rate::default(),
        };
        let catalog = f.workload.catalog_and_segments();
        let (_, events) = f.pipeline(&catalog).await?;
        Ok((f, events))
    }

    /// Generates and applies traces (with their interactions and side events) until `target`
    /// traces are in; `each_chunk` gets every applied event (e.g. to load the raw tables).
    pub async fn fill_to<F, Fut>(&mut self, target: u64, mut each_chunk: F) -> anyhow::Result<()>
    where
        F: FnMut(Vec<Entry>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        while self.traces_done < target {
            let n = CHUNK_TRACES.min(target - self.traces_done);
            let mut by_group: [Vec<Generated>; 3] = Default::default();
            for _ in 0..n {
                for g in self.workload.next_trace() {
                    let i = match g.topic {
                        TopicKind::DecisionTraces => 0,
                        TopicKind::Interactions => 1,
                        _ => 2,
                    };
                    by_group[i].push(g);
                }
            }
            for (i, group) in by_group.iter().enumerate() {
                let (run, events) = self.pipeline(group).await?;
                let rate = match i {
                    0 => &mut self.traces,
                    1 => &mut self.interactions,
                    _ => &mut self.other,
                };
                rate.add(group.len() as u64, &run);
                each_chunk(events).await?;
            }
            self.traces_done += n;
            eprintln!(
                "[bench] fill: {} traces; processor {:.0} traces/s, {:.0} interactions/s",
                self.traces_done,
                self.traces.per_s(),
                self.interactions.per_s()
            );
        }
        Ok(())
    }

    /// Runs `messages` through decode (this thread's helper) and apply (this task), pipelined
    /// through a channel of one batch; returns the wall time and the applied events.
    /// Applies `events` (e.g. catalog changes) as the consumer would.
    pub async fn apply(&mut self, events: &[Generated]) -> anyhow::Result<()> {
        self.pipeline(events).await.map(|_| ())
    }

    async fn pipeline(&mut self, messages: &[Generated]) -> anyhow::Result<(Pipelined, Vec<Entry>)> {
        let started = Instant::now();
        let (apply_ticks, postgres_ticks) = (crate::cpu::thread_ticks(), crate::cpu::postgres_ticks());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(1);
        let mut next = self.next.clone();
        let full_at = self.limits;
        let owned: Vec<(TopicKind, Vec<u8>)> =
            messages.iter().map(|g| (g.topic, g.payload.as_bytes().to_vec())).collect();
        let decoder = std::thread::spawn(move || {
            let ticks = crate::cpu::thread_ticks();
            let limits = DecodeLimits::default();
            let topics: BTreeMap<TopicKind, Arc<str>> =
                TopicKind::ALL.into_iter().map(|k| (k, Arc::from(topic_name(k).as_str()))).collect();
            let mut batch = Batch::default();
            for (kind, payload) in owned {
                let offset = next.entry(kind).or_insert(0);
                // Only read for the partition's first message in the batch: where it starts.
                let committed = (*offset > 0).then_some(*offset);
                let msg = Message {
                    topic: &topics[&kind],
                    partition: 0,
                    offset: *offset,
                    key: None,
                    payload: Some(&payload),
                };
                batch.add(kind, msg, committed, &limits, chrono::Utc::now());
                assert!(batch.dead_letters.is_empty(), "the workload is valid: {:?}", batch.dead_letters);
                *offset += 1;
                if batch.is_full(&full_at) {
                    // Sealed on this thread, as the consumer thread does.
                    let mut full = std::mem::take(&mut batch);
                    full.seal();
                    if tx.blocking_send(full).is_err() {
                        return (next, crate::cpu::thread_ticks() - ticks);
                    }
                }
            }
            if !batch.is_empty() {
                batch.seal();
                let _ = tx.blocking_send(batch);
            }
            (next, crate::cpu::thread_ticks() - ticks)
        });
        let mut applied = Vec::with_capacity(messages.len());
        while let Some(batch) = rx.recv().await {
            let result = apply_batch(&self.pool, &batch, &self.options).await?;
            anyhow::ensure!(
                !result.already_applied && result.dead_letters == 0,
                "the fill batch did not apply cleanly"
            );
            applied.extend(batch.entries);
        }
        let secs = started.elapsed().as_secs_f64();
        let (apply_ticks, postgres_ticks) =
            (crate::cpu::thread_ticks() - apply_ticks, crate::cpu::postgres_ticks() - postgres_ticks);
        let decode_ticks;
        (self.next, decode_ticks) = decoder.join().map_err(|_| anyhow::anyhow!("decoder thread panicked"))?;
        let run = Pipelined {
            secs,
            decode_cpu: decode_ticks as f64 / TICKS_PER_S,
            apply_cpu: apply_ticks as f64 / TICKS_PER_S,
            postgres_cpu: postgres_ticks as f64 / TICKS_PER_S,
        };
        Ok((run, applied))
    }
}

fn topic_name(kind: TopicKind) -> String {
    format!("mem-{}", kind.default_name())
}

/// Pauses between stages long enough for autovacuum/checkpoints not to land in a measurement.
pub async fn settle(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(pool).await?;
    sqlx::raw_sql("CHECKPOINT").execute(pool).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}
