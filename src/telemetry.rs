use std::sync::OnceLock;

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); `DV_LOG_FORMAT=json` for JSON lines.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn"));
    // Colours only on a terminal: a log file or collector gets plain text, not escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if std::env::var("DV_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Bucket bounds of the latency histograms, seconds.
const SECONDS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Bucket bounds of `ingest_batch_messages`: a batch holds from one message to tens of
/// thousands (with the seconds' buckets every batch landed in `+Inf`).
const MESSAGES: [f64; 10] = [1.0, 10.0, 100.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 25000.0, 100000.0];
/// A gauge not set for this long leaves the exposition. A partition's lag is set every second
/// (librdkafka's statistics interval) while the partition is owned; after a revoke it is no
/// longer set, so it goes within this time instead of showing a stale lag for ever. (The
/// freshness gauge is set by each scrape, just before it is rendered.)
const STALE_GAUGE: Duration = Duration::from_secs(15);

/// The process-wide Prometheus recorder (installed once; tests build several apps per process),
/// with each metric's HELP line.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .idle_timeout(MetricKindMask::GAUGE, Some(STALE_GAUGE))
                .set_buckets(&SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("ingest_batch_messages".into()), &MESSAGES))
                .expect("static bucket lists are valid")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

/// HELP lines: what each metric counts, in one place.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route, dashboard type and status"
    );
    describe_counter!("api_cache_lookups_total", "Dashboard answer cache lookups, by result");
    describe_counter!("api_rate_limited_total", "Requests refused by a tenant's rate limit (429), by class");
    describe_counter!("api_refused_total", "Requests refused by the server's bounds, by reason");
    describe_histogram!("ingest_batch_messages", Unit::Count, "Messages in each batch handed to the committer");
    describe_histogram!(
        "ingest_commit_seconds",
        Unit::Seconds,
        "Time to apply and commit one batch in PostgreSQL, by lane (traces, events)"
    );
    describe_counter!("ingest_events_applied_total", "Events applied to the views, by topic");
    describe_counter!("ingest_duplicates_total", "Events recognized as already applied (dedup keys) and skipped");
    describe_counter!("ingest_dead_letters_total", "Messages dead-lettered, by topic and reason");
    describe_counter!(
        "ingest_undeliverable_messages_total",
        "Messages the Kafka client could not deliver (skipped and dead-lettered as ranges), by topic"
    );
    describe_counter!(
        "ingest_batch_isolations_total",
        "Batches the database refused and that were retried isolating the events responsible"
    );
    describe_counter!("ingest_commit_retries_total", "Batch commits retried after a database error, with backoff");
    describe_counter!(
        "ingest_orphan_rejoins_total",
        "Group rejoins forced by the watchdog (partitions with waiting messages and no active consumer)"
    );
    describe_counter!(
        "ingest_segment_scopes_capped_total",
        "Segment memberships past the per-customer cap, not counted"
    );
    describe_gauge!(
        "ingest_partitions_paused",
        "Partitions paused because they ran ahead in event time of their topic's oldest with messages waiting"
    );
    describe_gauge!(
        "ingest_prefetched_bytes",
        Unit::Bytes,
        "Bytes the Kafka client has fetched and the consumer not yet read, per lane's group"
    );
    describe_gauge!(
        "ingest_consumer_lag",
        "Messages between the committed offset and the high watermark, per partition"
    );
}
