//! The committer: applies batches in order, one transaction each, retrying transient database
//! errors (safe: the offsets are a compare-and-set) and skipping stale batches.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;

use super::consumer::Shared;
use crate::apply::{apply_batch, ApplyError, ApplyOptions};
use crate::batch::Batch;

pub(super) async fn run_committer(
    pool: PgPool,
    options: ApplyOptions,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Batch>,
) {
    while let Some(batch) = rx.recv().await {
        commit_one(&pool, &options, &shared, &batch).await;
        let mut p = shared.lock();
        p.done += 1;
        shared.changed.notify_all();
    }
}

fn stale(shared: &Shared, batch: &Batch) -> bool {
    let p = shared.lock();
    batch.generation != p.generation || p.poisoned == Some(batch.generation)
}

async fn commit_one(pool: &PgPool, options: &ApplyOptions, shared: &Shared, batch: &Batch) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if stale(shared, batch) {
            tracing::info!(messages = batch.messages(), "dropping a stale batch (assignment changed)");
            return;
        }
        match apply_batch(pool, batch, options).await {
            Ok(applied) => {
                for (topic, n) in &applied.delta.applied {
                    metrics::counter!("ingest_events_applied_total", "topic" => *topic).increment(*n);
                }
                metrics::counter!("ingest_duplicates_total").increment(applied.duplicates as u64);
                for d in &batch.dead_letters {
                    metrics::counter!("ingest_dead_letters_total", "topic" => d.topic.clone(), "reason" => d.rejection.reason.code())
                        .increment(1);
                }
                return;
            }
            Err(e @ ApplyError::Fenced { .. }) => {
                tracing::warn!(error = %e, "batch fenced; resynchronizing from PostgreSQL");
                shared.lock().poisoned = Some(batch.generation);
                return;
            }
            Err(e) => {
                debug_assert!(e.is_transient());
                tracing::error!(error = %e, retry_in = ?backoff, "batch commit failed; retrying");
                metrics::counter!("ingest_commit_retries_total").increment(1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
