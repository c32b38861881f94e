//! Ingest throughput end to end (broker → committed views) with the release binary as a child
//! process, next to a bare rdkafka consumer reading the same topic in the same run: the ratio
//! is the figure (docs/guarantees.md 7). Also samples the child's RSS as the committed offsets grow.

use std::time::{Duration, Instant};

use consumers::events::TopicKind;
use decision_views::publish::{self, Generated};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::cpu;
use crate::env::{self, Broker, Process, PARTITIONS};

pub struct IngestFigures {
    /// What ran: the topic, and for traces the large tenant's sample rate.
    pub label: String,
    pub events: i64,
    pub mean_bytes: f64,
    pub publish_per_s: f64,
    pub raw_consume_per_s: f64,
    pub raw_consume_mb_per_s: f64,
    pub ingest_per_s: f64,
    /// Where the CPU went while ingest ran (from its first commit to its last).
    pub cpu: cpu::Split,
    /// Views hold exactly the published events (count check).
    pub exact: bool,
    /// (fraction of the topic committed, RSS MiB) samples, and the peak.
    pub rss: Vec<(f64, f64)>,
    pub peak_rss_mib: f64,
}

/// Publishes the catalog, then `payloads` to the kind's topic, and measures both consumers.
pub async fn run(
    broker: &Broker,
    label: &str,
    kind: TopicKind,
    catalog: &[Generated],
    payloads: &[Generated],
) -> anyhow::Result<IngestFigures> {
    let prefix = format!("bench-{}-{}", kind.default_name(), &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let topics = broker.topics(&prefix).await?;
    let producer = publish::producer(&broker.addr)?;
    for g in catalog {
        publish::send(&producer, &topics[&g.topic], &g.key, g.payload.as_bytes())?;
    }
    let started = Instant::now();
    for g in payloads {
        publish::send(&producer, &topics[&kind], &g.key, g.payload.as_bytes())?;
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(120))?;
    let publish_per_s = payloads.len() as f64 / started.elapsed().as_secs_f64();
    let topic = &topics[&kind];
    // Completion is judged by the count the producer had acknowledged, not by the broker's high
    // watermark: tansu 0.6.0's memory engine, which the bench used before, under-reported it
    // (seen: 4,703 for 5,000 dense offsets).
    let high = payloads.len() as i64;
    let mean_bytes = payloads.iter().map(|g| g.payload.len()).sum::<usize>() as f64 / payloads.len() as f64;
    eprintln!(
        "[bench] {} : published {high} events ({mean_bytes:.0} B mean) at {publish_per_s:.0}/s",
        kind.default_name()
    );

    let (raw_consume_per_s, raw_consume_mb_per_s) = raw_consume_rate(&broker.addr, topic, high)?;
    eprintln!(
        "[bench] {} : bare rdkafka consumer {raw_consume_per_s:.0} msg/s, {raw_consume_mb_per_s:.1} MB/s",
        kind.default_name()
    );

    let (db_url, pool) = env::fresh_database(kind.default_name().replace('-', "_").as_str()).await?;
    let ingest = Process::start("ingest", &env::child_env(&db_url, &broker.addr, &topics))?;
    let (mut rss, mut peak) = (Vec::new(), 0.0f64);
    let mut first: Option<(Instant, i64, cpu::Snapshot)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let (done, cpu_done) = loop {
        let c = env::committed(&pool, topic).await?;
        let now = Instant::now();
        if let Some((_, hwm)) = ingest.memory_mib() {
            peak = peak.max(hwm);
        }
        if c > 0 && first.is_none() {
            first = Some((now, c, cpu::snapshot(ingest.pid(), Some(broker.pid()))));
        }
        let progress = c as f64 / high as f64;
        if rss.last().is_none_or(|(p, _)| progress >= p + 0.1) || c >= high {
            if let Some((cur, _)) = ingest.memory_mib() {
                rss.push((progress, cur));
            }
        }
        if c >= high {
            break (now, cpu::snapshot(ingest.pid(), Some(broker.pid())));
        }
        anyhow::ensure!(now < deadline, "ingest did not finish {topic} in 600 s ({c} of {high})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (t0, c0, cpu_first) = first.expect("something committed");
    let cpu = cpu::split(cpu_first, cpu_done);
    // From the first commit on: excludes process start and the group join.
    let ingest_per_s = (high - c0) as f64 / (done - t0).as_secs_f64().max(1e-3);
    if let Some((_, hwm)) = ingest.memory_mib() {
        peak = peak.max(hwm);
    }
    ingest.stop();
    let exact = stored_events(&pool, kind).await? == high;
    eprintln!(
        "[bench] {label} : ingest {ingest_per_s:.0}/s ({:.2}× raw), exact={exact}, peak RSS {peak:.0} MiB; CPU: {cpu}",
        ingest_per_s / raw_consume_per_s
    );
    pool.close().await;
    env::drop_database(&db_url).await?;
    Ok(IngestFigures {
        label: label.to_owned(),
        events: high,
        mean_bytes,
        publish_per_s,
        raw_consume_per_s,
        raw_consume_mb_per_s,
        ingest_per_s,
        cpu,
        exact,
        rss,
        peak_rss_mib: peak,
    })
}

/// What the views counted: traces in `trace_daily`, interactions over all outcome counters.
async fn stored_events(pool: &sqlx::PgPool, kind: TopicKind) -> anyhow::Result<i64> {
    let sql = match kind {
        TopicKind::DecisionTraces => "SELECT COALESCE(sum(traces), 0)::int8 FROM trace_daily",
        _ => {
            // The all-customers chain of the smallest rollup: polled while ingest runs.
            "SELECT COALESCE(sum(impressions + clicks + accepts + converts + rejects + dismisses), 0)::int8
               FROM interaction_rollup_day WHERE segment_id = ''"
        }
    };
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

/// Messages and megabytes per second of a bare consumer reading every partition from the
/// beginning (poll and touch the payload, nothing else): the broker + librdkafka ceiling on
/// this machine. Tuned for throughput, so the figure is the broker's and not a default's:
/// tansu 0.6.0 holds every fetch for `fetch.wait.max.ms` even when data is waiting (23 MB/s at
/// librdkafka's default 500 ms, 359 MB/s at 5 ms on its memory engine, seen here); large
/// fetches and a deep prefetch queue keep each round trip full.
fn raw_consume_rate(brokers: &str, topic: &str, high: i64) -> anyhow::Result<(f64, f64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-raw-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608")
        .set("queued.max.messages.kbytes", "262144")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let (mut n, mut bytes, mut first) = (0i64, 0usize, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while n < high {
        anyhow::ensure!(Instant::now() < deadline, "bare consumer read {n} of {high} in 300 s");
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            first.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    let secs = first.map_or(Duration::ZERO, |f| f.elapsed()).as_secs_f64().max(1e-3);
    Ok((n as f64 / secs, bytes as f64 / 1e6 / secs))
}
