use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::committer::run_committer;
use super::config::{IngestConfig, TRACE_LANE_SUFFIX};
use super::consumer::run_consumer_thread;
use super::context::IngestContext;
use super::health::GroupHealth;
use super::progress::Shared;
use crate::apply::ApplyOptions;

/// Runs ingest until `shutdown` is cancelled: the batches in flight are committed before it
/// returns (graceful shutdown, docs/guarantees.md 6). One pipeline per lane
/// ([`IngestConfig::lanes`]); if one fails, the others are stopped (gracefully) and its error
/// is returned.
/// `health` follows each lane's group membership (the process's readiness).
pub async fn run(
    config: IngestConfig,
    pool: PgPool,
    health: Arc<GroupHealth>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let lanes_stop = shutdown.child_token();
    let mut lanes = tokio::task::JoinSet::new();
    for lane in config.lanes() {
        health.expect(&lane.group_id);
        lanes.spawn(run_lane(lane, pool.clone(), health.clone(), lanes_stop.clone()));
    }
    let mut first_error = None;
    while let Some(joined) = lanes.join_next().await {
        let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = result {
            tracing::error!(error = %e, "an ingest lane stopped; stopping the others");
            lanes_stop.cancel();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One lane: a consumer thread feeding a committer task.
async fn run_lane(
    config: IngestConfig,
    pool: PgPool,
    health: Arc<GroupHealth>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::default());
    // One batch queued while one commits: decoding overlaps the commit, memory stays bounded.
    let (tx, rx) = mpsc::channel(1);
    let options = ApplyOptions {
        owner: config.instance_id.clone(),
        trace_retention_days: config.trace_retention_days,
        max_segments: config.max_segments,
        synchronous_commit: config.synchronous_commit,
    };
    let lane = if config.group_id.ends_with(TRACE_LANE_SUFFIX) { "traces" } else { "events" };
    let committer = tokio::spawn(run_committer(pool.clone(), options, shared.clone(), rx, lane));

    let runtime = tokio::runtime::Handle::current();
    let thread_name = if config.group_id.ends_with(TRACE_LANE_SUFFIX) { "ingest-traces" } else { "ingest-consumer" };
    let consumer = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || run_consumer_thread(IngestContext::new(config, pool, runtime, shared, health, tx, shutdown)))?;

    // Join the thread without blocking a runtime worker.
    let result = tokio::task::spawn_blocking(move || consumer.join()).await?;
    // The consumer dropped its sender: the committer finishes the queue and stops.
    committer.await?;
    match result {
        Ok(r) => r,
        Err(_) => anyhow::bail!("the consumer thread panicked"),
    }
}
