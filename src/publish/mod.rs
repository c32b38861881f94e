//! `decision-views publish`: a seeded synthetic workload (docs/guarantees.md 7's standard workload by
//! default: 10 tenants, 200 offers, 6 channels, 5 flows, 20 segments, 1M customers, 90 days of
//! event time in stream order) published with an idempotent producer, at a given rate or as
//! fast as possible, with progress on stderr.

mod workload;

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

pub use workload::{EventTime, Generated, Workload, WorkloadShape};

use crate::settings::Settings;
use consumers::events::TopicKind;

#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// Decision traces to publish (each brings ~3 impressions and their responses).
    #[arg(long, default_value_t = 10_000)]
    pub traces: u64,
    /// Target events per second over all topics; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seeds the generator and is part of every event id: the same seed republishes the same
    /// events (dedup absorbs them), another seed publishes new ones.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 10)]
    pub tenants: usize,
    /// Event times spread over this many days before now, in stream order.
    #[arg(long, default_value_t = 90)]
    pub days: i64,
    /// Every event at the wall-clock time it is published (live traffic) instead of a history.
    #[arg(long)]
    pub live: bool,
    #[arg(long, default_value_t = 1_000_000)]
    pub customers: u64,
    /// Skip the catalog and segment membership events (they are published once per seed).
    #[arg(long)]
    pub skip_catalog: bool,
    /// `decisionTraceSampleRate` published for the large tenant (`tenant_0`, half the
    /// traffic): the standard workload's 0.1 (seed 002's advice for high volume); 1.0 stores
    /// every trace of every tenant.
    #[arg(long, default_value_t = 0.1)]
    pub large_tenant_trace_sample_rate: f64,
}

pub fn producer(brokers: &str) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    producer_for(ClientConfig::new().set("bootstrap.servers", brokers).clone())
}

/// The producer of `publish` and the tests for `cluster` (brokers and `DV_KAFKA_CLIENT_*`):
/// its own settings where the cluster's do not say otherwise. (Not by copying the cluster's
/// `config_map()`: it masks secrets such as `sasl.password`.)
pub fn producer_for(cluster: ClientConfig) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    Ok(producer_config(cluster).create()?)
}

/// The settings of [`producer_for`], for a producer of another kind (the bench's probes wait
/// for each delivery).
pub fn producer_config(mut cluster: ClientConfig) -> ClientConfig {
    let own = [
        ("enable.idempotence", "true".to_string()),
        ("linger.ms", "5".to_string()),
        ("queue.buffering.max.messages", "200000".to_string()),
        // Catalog models carry whole tree ensembles: up to DV_MAX_CATALOG_EVENT_BYTES (16 MiB),
        // past librdkafka's 1 MB default.
        ("message.max.bytes", (17 * 1024 * 1024).to_string()),
    ];
    for (k, v) in own {
        if cluster.get(k).is_none() {
            cluster.set(k, v);
        }
    }
    cluster
}

/// Sends one record, waiting while the local queue is full (backpressure, nothing dropped).
pub fn send(
    p: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> anyhow::Result<()> {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(2));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

pub async fn run(settings: &Settings, args: PublishArgs) -> anyhow::Result<()> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || publish_blocking(&settings, &args)).await?
}

fn publish_blocking(settings: &Settings, args: &PublishArgs) -> anyhow::Result<()> {
    let producer = producer_for(settings.kafka.client())?;
    let topic = |k: TopicKind| settings.kafka.topics[&k].clone();
    let shape = WorkloadShape {
        tenants: args.tenants,
        customers: args.customers,
        days: args.days,
        time: if args.live { EventTime::Live } else { EventTime::History { traces: args.traces } },
        large_tenant_trace_sample_rate: args.large_tenant_trace_sample_rate,
        ..WorkloadShape::default()
    };
    let mut workload = Workload::new(shape, args.seed, chrono::Utc::now());
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut last_report = Instant::now();
    let mut emit = |g: Generated| -> anyhow::Result<()> {
        send(&producer, &topic(g.topic), &g.key, g.payload.as_bytes())?;
        sent += 1;
        if args.rate > 0 {
            // Pace against the schedule, not per message: sleeps stay coarse and rates exact.
            let due = Duration::from_secs_f64(sent as f64 / args.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("[publish] {sent} events, {:.0}/s", sent as f64 / started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        Ok(())
    };
    if !args.skip_catalog {
        for g in workload.catalog_and_segments() {
            emit(g)?;
        }
    }
    for _ in 0..args.traces {
        for g in workload.next_trace() {
            emit(g)?;
        }
    }
    producer.flush(Duration::from_secs(60))?;
    eprintln!("[publish] done: {sent} events in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
