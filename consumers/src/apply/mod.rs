//! Apply: one batch → one PostgreSQL transaction holding the offsets (compare-and-set), the
//! dedup keys, the dead letters and the view deltas. Either all of it commits or none of it,
//! so a crash at any point leaves the views and the offsets consistent (SPEC 3).
//!
//! Lock order inside the transaction: offsets (sorted by topic, partition) first, which
//! serializes two writers of the same partition before they touch anything else; then every
//! view in sorted key order, so writers of different partitions never deadlock.

pub mod attributions;
mod catalog;
mod dead_letters;
mod dedup;
mod latency;
mod offsets;
pub mod raw_traces;
mod rollups;
mod scores;
mod selection;
mod views;

use std::time::Instant;

use sqlx::PgPool;

use crate::batch::Batch;
use crate::fold::{fold, Delta};

pub use offsets::{load_offsets, mark_caught_up, StoredOffset};
pub(crate) use views::add_suppression_counts;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The stored offset is not where the batch starts: another consumer owns the partition now
    /// (or did, while this one was stalled). The batch must be dropped and the consumer resync.
    #[error("fenced on {topic}[{partition}]: stored next offset {stored:?}, batch expected {expected:?}")]
    Fenced { topic: String, partition: i32, stored: Option<i64>, expected: Option<i64> },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl ApplyError {
    /// Worth retrying the same batch: retries are safe because the offsets are a
    /// compare-and-set (a retry of a batch that did commit reports `AlreadyApplied`).
    pub fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Db(_))
    }
}

#[derive(Debug, Default)]
pub struct Applied {
    /// Fresh events folded into the views.
    pub events: usize,
    /// Events skipped as duplicates (same tenant, topic and id already applied).
    pub duplicates: usize,
    pub dead_letters: usize,
    /// A retry found the batch already committed by an earlier attempt whose answer was lost.
    pub already_applied: bool,
    pub delta: Delta,
}

/// What an apply needs beyond the batch.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Names this ingest instance in `consumer_offsets.owner`.
    pub owner: String,
    /// Raw traces older than this many days are not stored (their partition would be dropped).
    pub trace_retention_days: i64,
}

impl ApplyOptions {
    fn oldest_raw_trace_day(&self) -> chrono::NaiveDate {
        chrono::Utc::now().date_naive() - chrono::Duration::days(self.trace_retention_days - 1)
    }
}

/// Applies `batch` in one transaction.
#[tracing::instrument(name = "apply_batch", skip_all, fields(messages = batch.messages(), partitions = batch.positions.len()))]
pub async fn apply_batch(pool: &PgPool, batch: &Batch, options: &ApplyOptions) -> Result<Applied, ApplyError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;

    match offsets::compare_and_set(&mut tx, batch, &options.owner).await? {
        offsets::Cas::Advanced => {}
        offsets::Cas::AlreadyApplied => {
            tx.rollback().await?;
            return Ok(Applied { already_applied: true, ..Applied::default() });
        }
    }

    let (fresh, duplicates) = dedup::fresh_events(&mut tx, &batch.events).await?;
    let mut memberships = views::load_memberships(&mut tx, &fresh).await?;
    let delta = fold(&fresh, &mut memberships);

    views::apply(&mut tx, &delta).await?;
    rollups::apply(&mut tx, &delta).await?;
    catalog::apply(&mut tx, &delta.catalog).await?;
    attributions::apply(&mut tx, &delta.conversion_days).await?;
    latency::apply(&mut tx, &delta.latency).await?;
    selection::apply(&mut tx, &delta).await?;
    scores::apply(&mut tx, &delta).await?;
    let traces: Vec<&crate::events::DecisionTrace> =
        fresh.iter().filter_map(|e| if let crate::events::Event::Trace(t) = e { Some(&**t) } else { None }).collect();
    raw_traces::store(&mut tx, &traces, options.oldest_raw_trace_day()).await?;
    dead_letters::insert(&mut tx, &batch.dead_letters).await?;

    tx.commit().await?;
    metrics::histogram!("ingest_commit_seconds").record(started.elapsed().as_secs_f64());
    Ok(Applied {
        events: fresh.len(),
        duplicates,
        dead_letters: batch.dead_letters.len(),
        already_applied: false,
        delta,
    })
}
