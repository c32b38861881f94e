//! The committer: applies batches in order, one transaction each. Transient database errors
//! are retried as they are (safe: the offsets are a compare-and-set); a batch the database
//! refuses for a data reason is applied again isolating the events responsible, which become
//! dead letters, so that no input can stop ingest (docs/events.md 2.8). Stale batches are skipped.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;

use super::progress::Shared;
use crate::apply::{apply_batch, apply_batch_isolating, Applied, ApplyError, ApplyOptions, Failure};
use crate::batch::Batch;

/// An error that is neither transient nor a data error ([`Failure::Other`]) is taken for the
/// data's fault once it repeats this many times in a row on the same batch.
const REPEATS_BEFORE_ISOLATING: u32 = 3;

/// `lane` labels the commit latency (`ingest_commit_seconds{lane}`): each lane commits on its own.
pub(super) async fn run_committer(
    pool: PgPool,
    options: ApplyOptions,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Batch>,
    lane: &'static str,
) {
    while let Some(batch) = rx.recv().await {
        let started = std::time::Instant::now();
        commit_one(&pool, &options, &shared, &batch, lane).await;
        shared.finished_one();
        // What an operator tuning the batch bounds needs to see (RUST_LOG=consumers=debug).
        tracing::debug!(
            messages = batch.messages(),
            bytes = batch.bytes,
            weight = batch.weight(),
            millis = started.elapsed().as_millis() as u64,
            "batch done"
        );
    }
}

fn stale(shared: &Shared, batch: &Batch) -> bool {
    let p = shared.lock();
    batch.generation != p.generation || p.poisoned == Some(batch.generation)
}

/// How the next attempt applies the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Whole,
    /// Isolating refused events; `any_error`: also on errors that are not data errors.
    Isolating {
        any_error: bool,
    },
}

async fn commit_one(pool: &PgPool, options: &ApplyOptions, shared: &Shared, batch: &Batch, lane: &'static str) {
    let mut backoff = Duration::from_millis(50);
    let mut mode = Mode::Whole;
    // The last SQLSTATE and how many attempts in a row failed with it.
    let mut repeated: (Option<String>, u32) = (None, 0);
    loop {
        if stale(shared, batch) {
            tracing::info!(messages = batch.messages(), "dropping a stale batch (assignment changed)");
            return;
        }
        let attempt = std::time::Instant::now();
        let result = match mode {
            Mode::Whole => apply_batch(pool, batch, options).await,
            Mode::Isolating { any_error } => apply_batch_isolating(pool, batch, options, any_error).await,
        };
        let e = match result {
            Ok(applied) => {
                metrics::histogram!("ingest_commit_seconds", "lane" => lane).record(attempt.elapsed().as_secs_f64());
                // Committed (now or by an earlier attempt): the offsets may be mirrored.
                shared.lock().committed.extend(batch.positions.iter().map(|(k, p)| (k.clone(), p.next)));
                return record(batch, &applied);
            }
            Err(e @ ApplyError::Fenced { .. }) => {
                tracing::warn!(error = %e, "batch fenced; resynchronizing from PostgreSQL");
                shared.lock().poisoned = Some(batch.generation);
                return;
            }
            Err(e) => e,
        };
        let code = e.sqlstate();
        repeated = if repeated.0 == code && code.is_some() { (code, repeated.1 + 1) } else { (code, 1) };
        let next = match (e.failure(), mode) {
            (Failure::Data, Mode::Whole) => Some(Mode::Isolating { any_error: false }),
            (Failure::Other, Mode::Whole | Mode::Isolating { any_error: false })
                if repeated.1 >= REPEATS_BEFORE_ISOLATING =>
            {
                Some(Mode::Isolating { any_error: true })
            }
            _ => None,
        };
        if let Some(next) = next {
            tracing::warn!(error = %e, messages = batch.messages(), "the database refused the batch; isolating the events responsible");
            metrics::counter!("ingest_batch_isolations_total").increment(1);
            mode = next;
            continue;
        }
        tracing::error!(error = %e, retry_in = ?backoff, "batch commit failed; retrying");
        metrics::counter!("ingest_commit_retries_total").increment(1);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Metrics of a committed batch (a retry that found it committed already records nothing).
fn record(batch: &Batch, applied: &Applied) {
    if applied.already_applied {
        return;
    }
    for (topic, n) in &applied.applied {
        metrics::counter!("ingest_events_applied_total", "topic" => *topic).increment(*n);
    }
    metrics::counter!("ingest_duplicates_total").increment(applied.duplicates as u64);
    for d in &batch.dead_letters {
        metrics::counter!("ingest_dead_letters_total", "topic" => d.topic.clone(), "reason" => d.rejection.reason.code())
            .increment(1);
    }
    for (topic, n) in &applied.rejected_by_database {
        metrics::counter!("ingest_dead_letters_total", "topic" => topic.clone(), "reason" => "rejected_by_database")
            .increment(*n);
    }
    if applied.segment_scopes_capped > 0 {
        tracing::warn!(
            scopes = applied.segment_scopes_capped,
            "events of customers in more segments than DV_MAX_SEGMENTS_PER_CUSTOMER were not counted in the excess segments"
        );
        metrics::counter!("ingest_segment_scopes_capped_total").increment(applied.segment_scopes_capped);
    }
}
