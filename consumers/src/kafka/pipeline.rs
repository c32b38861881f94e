use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::committer::run_committer;
use super::config::IngestConfig;
use super::consumer::run_consumer_thread;
use super::progress::Shared;
use crate::apply::ApplyOptions;

/// Runs ingest until `shutdown` is cancelled: the batch in flight is committed before it
/// returns (graceful shutdown, docs/guarantees.md 6).
pub async fn run(config: IngestConfig, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let shared = Arc::new(Shared::default());
    // One batch queued while one commits: decoding overlaps the commit, memory stays bounded.
    let (tx, rx) = mpsc::channel(1);
    let options = ApplyOptions {
        owner: config.instance_id.clone(),
        trace_retention_days: config.trace_retention_days,
        max_segments: config.max_segments,
    };
    let committer = tokio::spawn(run_committer(pool.clone(), options, shared.clone(), rx));

    let runtime = tokio::runtime::Handle::current();
    let thread_shutdown = shutdown.clone();
    let consumer = std::thread::Builder::new()
        .name("ingest-consumer".into())
        .spawn(move || run_consumer_thread(config, pool, runtime, shared, tx, thread_shutdown))?;

    // Join the thread without blocking a runtime worker.
    let result = tokio::task::spawn_blocking(move || consumer.join()).await?;
    // The consumer dropped its sender: the committer finishes the queue and stops.
    committer.await?;
    match result {
        Ok(r) => r,
        Err(_) => anyhow::bail!("the consumer thread panicked"),
    }
}
