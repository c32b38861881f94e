//! `cargo bench --bench standard`: every figure of docs/guarantees.md 7 from one run on this machine, each
//! next to its bar, printed as the Markdown table BENCHMARKS.md carries.
//!
//! Stages (each with its own databases and topics; the broker is a private tansu on the memory
//! engine, PostgreSQL the co-located one):
//! 1. ingest throughput, traces and interactions, broker → committed views by the release
//!    binary, next to a bare rdkafka consumer of the same topic; peak RSS of that process;
//! 2. the processor's ceiling from pre-encoded events in memory, which also fills the read
//!    database with the standard workload (100k traces, then 1M) and the raw tables beside it;
//! 3. read latency per type and window, uncached, at 100k and 1M, next to raw SQL;
//! 4. API throughput under wrk, cached and uncached; 5. freshness at a steady 5,000 events/s;
//! 6. SHAP latency through the API for a model of 500 trees of depth 6.
//!
//! Sizes come from the environment (see README "Benchmarks"): DV_BENCH_QUICK=1 runs a small
//! smoke configuration.

mod ceiling;
mod chart;
mod cpu;
mod env;
mod freshness;
mod ingest;
mod load;
mod raw;
mod reads;
mod report;
mod shap;

/// The service's allocator with the service's options (`.cargo/config.toml`): the `ceiling`
/// stage runs the processor's decode, fold and apply in this process, and with glibc malloc
/// they spent ~40 % of their samples in `malloc` and `free` (perf, BENCHMARKS.md "Write path,
/// fifth pass"), which the service does not.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::time::{Duration, Instant};

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::publish::{EventTime, Workload, WorkloadShape};

pub struct Config {
    pub ingest_traces: u64,
    pub small: u64,
    pub large: u64,
    /// A third read size past the bar's two (DV_BENCH_XL_TRACES, e.g. 10,000,000): reads and
    /// the ratio to the small size only (no raw tables, no wrk); unset in the default run, whose
    /// 15 minutes it does not fit.
    pub xl: Option<u64>,
    pub read_samples: usize,
    pub raw_cap: Duration,
    pub wrk_secs: u64,
    pub fresh_rate: u64,
    pub fresh_secs: u64,
    /// SHAP requests measured.
    pub shap_requests: usize,
    /// Stages to run (DV_BENCH_STAGES, comma-separated): ingest, ceiling, reads, freshness, shap.
    pub stages: Vec<String>,
}

fn num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("DV_BENCH_QUICK").is_ok_and(|v| v == "1");
        let (ingest, small, large) = if quick { (5_000, 2_000, 10_000) } else { (30_000, 100_000, STANDARD_TRACES) };
        Config {
            ingest_traces: num("DV_BENCH_INGEST_TRACES", ingest),
            small: num("DV_BENCH_SMALL_TRACES", small),
            large: num("DV_BENCH_LARGE_TRACES", large),
            xl: std::env::var("DV_BENCH_XL_TRACES").ok().and_then(|v| v.parse().ok()),
            read_samples: num("DV_BENCH_READ_SAMPLES", if quick { 10 } else { 100 }) as usize,
            raw_cap: Duration::from_secs(num("DV_BENCH_RAW_CAP_SECS", 3)),
            wrk_secs: num("DV_BENCH_WRK_SECS", if quick { 3 } else { 8 }),
            fresh_rate: num("DV_BENCH_FRESH_RATE", 5_000),
            fresh_secs: num("DV_BENCH_FRESH_SECS", if quick { 5 } else { 20 }),
            shap_requests: num("DV_BENCH_SHAP_REQUESTS", if quick { 100 } else { 1_000 }) as usize,
            stages: std::env::var("DV_BENCH_STAGES")
                .unwrap_or_else(|_| "ingest,reads,freshness,shap".into())
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes "--bench"; nothing else is accepted.
    let cfg = Config::from_env();
    let started = Instant::now();
    let broker = env::Broker::start()?;
    let mut report = report::Report::default();

    if cfg.stages.iter().any(|s| s == "ingest") {
        ingest_stage(&cfg, &broker, &mut report).await?;
    }
    if cfg.stages.iter().any(|s| s == "ceiling") {
        for traces in [cfg.ingest_traces, cfg.ingest_traces * 10] {
            report.ceilings.push(ceiling_stage(traces).await?);
        }
    }
    if cfg.stages.iter().any(|s| s == "reads") {
        reads_stage(&cfg, &broker, &mut report).await?;
        // The chart of the read table, kept with the report (BENCHMARKS.md shows a copy).
        let chart = std::env::var("DV_BENCH_CHART").unwrap_or_else(|_| "target/bench/read-latency.png".into());
        let chart = std::path::Path::new(&chart);
        if let Some(dir) = chart.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // A chart that cannot be drawn (no font) must not cost the run its figures.
        match chart::draw(chart, &report.reads) {
            Ok(()) => eprintln!("[bench] read latency chart: {}", chart.display()),
            Err(e) => eprintln!("[bench] read latency chart not drawn: {e:#}"),
        }
    }
    if cfg.stages.iter().any(|s| s == "freshness") {
        report.freshness = Some(freshness::run(&broker, cfg.fresh_rate, cfg.fresh_secs).await?);
    }
    if cfg.stages.iter().any(|s| s == "shap") {
        report.shap = Some(shap::run(&broker, cfg.shap_requests).await?);
    }
    report.elapsed = started.elapsed();
    println!("{}", report.markdown(&cfg));
    Ok(())
}

/// Traces of the standard workload's stream over its 90 days (docs/guarantees.md 7's large size).
pub const STANDARD_TRACES: u64 = 1_000_000;

/// 1. Ingest from the broker. One generator run gives both topics' payloads.
///
/// The events are the newest `ingest_traces` of the standard stream (1M traces over 90 days,
/// ~11k per day), i.e. the last few days at the standard density. Spreading a 30k-trace run
/// over all 90 days instead would be 36x sparser than the workload: almost every
/// (day, channel, flow, offer) a trace touches would be a new row, a load no real stream of
/// this shape produces.
async fn ingest_stage(cfg: &Config, broker: &env::Broker, report: &mut report::Report) -> anyhow::Result<()> {
    let standard = WorkloadShape::default();
    let days = (standard.days as f64 * cfg.ingest_traces as f64 / STANDARD_TRACES as f64).ceil().max(1.0) as i64;
    let shape = WorkloadShape { days, time: EventTime::History { traces: cfg.ingest_traces }, ..standard };
    let mut workload = Workload::new(shape.clone(), 1, chrono::Utc::now());
    let catalog = workload.catalog_and_segments();
    let (mut traces, mut interactions) = (Vec::new(), Vec::new());
    for _ in 0..cfg.ingest_traces {
        for g in workload.next_trace() {
            match g.topic {
                TopicKind::DecisionTraces => traces.push(g),
                TopicKind::Interactions => interactions.push(g),
                _ => {}
            }
        }
    }
    let label = format!("decision-traces (tenant_0 sampled at {})", shape.large_tenant_trace_sample_rate);
    report.ingest.push(ingest::run(broker, &label, TopicKind::DecisionTraces, &catalog, &traces).await?);
    // The same traces with every one stored (issue 13: the trace figures at rate 1.0 too).
    let every = WorkloadShape { large_tenant_trace_sample_rate: 1.0, ..shape.clone() };
    let catalog_every = Workload::new(every, 1, chrono::Utc::now()).catalog_and_segments();
    let label = "decision-traces (every trace stored)";
    report.ingest.push(ingest::run(broker, label, TopicKind::DecisionTraces, &catalog_every, &traces).await?);
    drop(traces);
    report.ingest.push(ingest::run(broker, "interactions", TopicKind::Interactions, &catalog, &interactions).await?);
    Ok(())
}

/// The processor's ceiling at the ingest stage's density (the newest `traces` of the standard
/// stream, no broker), into a fresh database: (traces, trace rate, interaction rate).
async fn ceiling_stage(traces: u64) -> anyhow::Result<(u64, ceiling::Rate, ceiling::Rate)> {
    let days = (WorkloadShape::default().days as f64 * traces as f64 / STANDARD_TRACES as f64).ceil().max(1.0) as i64;
    let (db_url, pool) = env::fresh_database("ceiling").await?;
    let (mut filler, _) = ceiling::Filler::over_days(pool.clone(), 3, traces, days).await?;
    filler.fill_to(traces, |_| async { Ok(()) }).await?;
    pool.close().await;
    env::drop_database(&db_url).await?;
    Ok((traces, filler.traces, filler.interactions))
}

/// 2 + 3 + 4. Per size: a database filled through the in-memory pipeline (its 90 days
/// spread over that many traces), the raw tables beside it, reads, then wrk at the large size.
async fn reads_stage(cfg: &Config, broker: &env::Broker, report: &mut report::Report) -> anyhow::Result<()> {
    let api_port = env::free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    for (i, size) in [cfg.small, cfg.large].into_iter().chain(cfg.xl).enumerate() {
        // The raw tables (the raw-SQL comparison) at the bar's two sizes only.
        let raw = i < 2;
        let (db_url, pool) = env::fresh_database("reads").await?;
        sqlx::raw_sql(raw::DDL).execute(&pool).await?;
        let key = decision_views::keys::create_api_key(&pool, "tenant_0", Role::Viewer, "bench").await?;
        let (mut filler, catalog_events) = ceiling::Filler::new(pool.clone(), 2, size).await?;
        if raw {
            raw::load(&pool, &catalog_events).await?;
        }
        let load_pool = pool.clone();
        filler
            .fill_to(size, |events| {
                let p = load_pool.clone();
                async move {
                    if raw {
                        raw::load(&p, &events).await
                    } else {
                        Ok(())
                    }
                }
            })
            .await?;
        ceiling::settle(&pool).await?;
        let api_env = |extra: [(&str, &str); 2]| {
            let mut v = env::child_env(&db_url, &broker.addr, &Default::default());
            v.push(("DV_HTTP_ADDR".into(), format!("127.0.0.1:{api_port}")));
            v.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            v
        };
        let api = env::Process::start("api", &api_env([("DV_CACHE_TTL_MS", "0"), ("DV_REDIS_URL", "")]))?;
        env::wait_http(&format!("{base}/healthz")).await?;
        let who = reads::Api { base: &base, key: &key, tenant: "tenant_0" };
        let raw_runs = usize::from(raw);
        report.reads.push((size, reads::measure(&who, &db_url, cfg.read_samples, raw_runs, cfg.raw_cap).await?));
        if i == 1 {
            report.load.push(load::wrk("uncached", &base, &key, "tenant_0", cfg.wrk_secs, api.pid())?);
            api.stop();
            // Cached: the response cache in Redis (the setup for several replicas) and in process.
            for (label, redis) in [("cached (Redis)", "redis://127.0.0.1:6379"), ("cached (in-process)", "")] {
                let api =
                    env::Process::start("api", &api_env([("DV_CACHE_TTL_MS", "60000"), ("DV_REDIS_URL", redis)]))?;
                env::wait_http(&format!("{base}/healthz")).await?;
                reads::warm(&who).await?;
                report.load.push(load::wrk(label, &base, &key, "tenant_0", cfg.wrk_secs, api.pid())?);
                api.stop();
            }
            report.ceiling = Some((filler.traces, filler.interactions, filler.other));
        } else {
            api.stop();
        }
        pool.close().await;
        env::drop_database(&db_url).await?;
    }

    Ok(())
}
