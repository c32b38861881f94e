//! Apply: one batch → one PostgreSQL transaction holding the offsets (compare-and-set), the
//! dedup keys, the dead letters and the view deltas. Either all of it commits or none of it,
//! so a crash at any point leaves the views and the offsets consistent (docs/guarantees.md 3).
//!
//! Lock order inside the transaction: offsets (sorted by topic, partition) first, which
//! serializes two writers of the same partition before they touch anything else; then every
//! view in sorted key order, so writers of different partitions never deadlock.

pub mod attributions;
mod catalog;
mod counters;
mod dead_letters;
mod dedup;
mod fan;
mod latency;
mod offsets;
pub mod partitions;
pub mod raw_traces;
mod running;
mod selection_chains;
mod upsert;
mod views;
mod wide;
mod wide_chains;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use sqlx::{Acquire, PgPool, Postgres, Transaction};

use crate::batch::{Batch, DeadLetter, Entry, Message, Payload};
use crate::decode::{RejectReason, Rejection};
use crate::events::{DecisionTrace, Event, MembershipOp};
use crate::fold::{fold, fold_segments, Delta, Memberships};
use crate::units::wide::WideError;

pub use dead_letters::insert as record_dead_letters;
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

/// What a database error says about retrying the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection or the server, not the batch: lost connection, serialization failure,
    /// deadlock, shutdown, resources (SQLSTATE classes 08, 40, 53, 57, 58, or no SQLSTATE).
    /// Retried as it is: safe, because the offsets are a compare-and-set.
    Transient,
    /// The data: a value out of a type's range, a constraint, a size limit (classes 22, 23,
    /// 54). Retrying cannot help; the batch is bisected to find the messages responsible.
    Data,
    /// Any other SQLSTATE (a bug or a broken deployment more often than data): retried, and
    /// bisected only when it repeats on the same batch.
    Other,
}

impl ApplyError {
    pub fn failure(&self) -> Failure {
        match self {
            ApplyError::Fenced { .. } => Failure::Transient,
            ApplyError::Db(e) => classify(e),
        }
    }

    /// The SQLSTATE of a database error, for logs and the repeat check.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            ApplyError::Db(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }
}

/// See [`Failure`].
pub fn classify(e: &sqlx::Error) -> Failure {
    // A wide view's sum out of int8 is the data's, as a narrow view's bigint overflow (22003).
    if let sqlx::Error::Encode(inner) = e {
        return match inner.downcast_ref::<WideError>() {
            Some(WideError::OutOfRange(_)) => Failure::Data,
            _ => Failure::Other,
        };
    }
    let sqlx::Error::Database(db) = e else { return Failure::Transient };
    let Some(code) = db.code() else { return Failure::Transient };
    match code.get(..2).unwrap_or("") {
        "08" | "40" | "53" | "57" | "58" => Failure::Transient,
        "22" | "23" | "54" => Failure::Data,
        _ => Failure::Other,
    }
}

#[derive(Debug, Default)]
pub struct Applied {
    /// Fresh events folded into the views.
    pub events: usize,
    /// Events skipped as duplicates (same tenant, topic, id and event date already applied).
    pub duplicates: usize,
    /// Dead letters written: the batch's own and those the database refused.
    pub dead_letters: usize,
    /// Of them, events the database refused (found by bisecting the batch), per topic.
    pub rejected_by_database: BTreeMap<String, u64>,
    /// A retry found the batch already committed by an earlier attempt whose answer was lost.
    pub already_applied: bool,
    /// Events applied per topic (for metrics and the ingest status).
    pub applied: BTreeMap<&'static str, u64>,
    /// Segment scopes left out because a customer is in more than `max_segments` segments.
    pub segment_scopes_capped: u64,
}

impl Applied {
    fn add(&mut self, part: Applied) {
        self.events += part.events;
        self.duplicates += part.duplicates;
        for (topic, n) in part.applied {
            *self.applied.entry(topic).or_default() += n;
        }
        self.segment_scopes_capped += part.segment_scopes_capped;
    }
}

/// What an apply needs beyond the batch.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Names this ingest instance in `consumer_offsets.owner`.
    pub owner: String,
    /// Raw traces older than this many days are not stored (their partition would be dropped).
    pub trace_retention_days: i64,
    /// Segments a customer's events are counted in at most (docs/events.md 2.8: bounded fan-out); the
    /// first ones in segment id order.
    pub max_segments: usize,
    /// `false`: the batch transaction sets `synchronous_commit = off`. Exactly-once holds
    /// either way (offsets and views commit or vanish together, and Kafka still holds the
    /// events); off, a batch whose commit was acknowledged can vanish in a PostgreSQL crash
    /// and be applied again from Kafka, so the API may briefly show it and then not.
    pub synchronous_commit: bool,
}

impl ApplyOptions {
    fn oldest_raw_trace_day(&self) -> chrono::NaiveDate {
        chrono::Utc::now().date_naive() - chrono::Duration::days(self.trace_retention_days - 1)
    }
}

/// The batch transaction, with the durability `options` ask for.
async fn begin(
    pool: &PgPool,
    options: &ApplyOptions,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !options.synchronous_commit {
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
    }
    Ok(tx)
}

/// Applies `batch` in one transaction.
#[tracing::instrument(name = "apply_batch", skip_all, fields(messages = batch.messages(), partitions = batch.positions.len()))]
pub async fn apply_batch(pool: &PgPool, batch: &Batch, options: &ApplyOptions) -> Result<Applied, ApplyError> {
    let mut tx = begin(pool, options).await?;
    if let offsets::Cas::AlreadyApplied = offsets::compare_and_set(&mut tx, batch, &options.owner).await? {
        tx.rollback().await?;
        return Ok(Applied { already_applied: true, ..Applied::default() });
    }
    let entries: Vec<&Entry> = batch.entries.iter().collect();
    let mut applied = apply_entries(&mut tx, &entries, batch.prefold.as_ref(), options).await?;
    dead_letters::insert(&mut tx, &batch.dead_letters).await?;
    tx.commit().await?;
    applied.dead_letters = batch.dead_letters.len();
    Ok(applied)
}

/// Applies `batch` in one transaction like [`apply_batch`], isolating the events the database
/// refuses: runs of events are applied under savepoints, in processing order, and a run that
/// fails is rolled back and split in two until the failing event is alone; it becomes a dead
/// letter (`rejected_by_database`, with the database's message) and the others apply. The
/// offsets still move in the same transaction, so exactly-once holds as for any batch. An
/// event is refused given the events applied before it (a sum that leaves its type is
/// charged to the event that tips it over), which is deterministic for a given order.
///
/// `any_error`: also isolate on errors that are not data errors ([`Failure::Other`] that
/// repeated). When every event of several is then refused on its own, the fault cannot be the
/// data: the error is returned and nothing is dead-lettered.
#[tracing::instrument(name = "apply_batch_isolating", skip_all, fields(messages = batch.messages()))]
pub async fn apply_batch_isolating(
    pool: &PgPool,
    batch: &Batch,
    options: &ApplyOptions,
    any_error: bool,
) -> Result<Applied, ApplyError> {
    let mut tx = begin(pool, options).await?;
    if let offsets::Cas::AlreadyApplied = offsets::compare_and_set(&mut tx, batch, &options.owner).await? {
        tx.rollback().await?;
        return Ok(Applied { already_applied: true, ..Applied::default() });
    }
    let (mut applied, dead) = isolate(&mut tx, batch, options, any_error).await?;
    dead_letters::insert(&mut tx, &dead).await?;
    tx.commit().await?;
    applied.dead_letters = dead.len();
    Ok(applied)
}

/// Applies the events of `batch` inside `tx` as [`apply_batch_isolating`] does, with no offset
/// and no dead letter written: the caller owns the transaction. Dead-letter replay uses it
/// (`decision-views dead-letters replay`): a replayed message goes through the same decode,
/// dedup and isolation as ingest, and the caller marks the dead letter in the same transaction.
/// Returns what applied and the batch's dead letters: its own (decode) and those the database
/// refused.
pub async fn apply_within(
    tx: &mut Transaction<'static, Postgres>,
    batch: &Batch,
    options: &ApplyOptions,
) -> Result<(Applied, Vec<DeadLetter>), ApplyError> {
    isolate(tx, batch, options, true).await
}

/// The savepoint bisection of [`apply_batch_isolating`].
async fn isolate(
    tx: &mut Transaction<'static, Postgres>,
    batch: &Batch,
    options: &ApplyOptions,
    any_error: bool,
) -> Result<(Applied, Vec<DeadLetter>), ApplyError> {
    let entries: Vec<&Entry> = batch.entries.iter().collect();
    let mut applied = Applied::default();
    let mut refused: Vec<(usize, sqlx::Error)> = Vec::new();
    // Runs still to apply, the next one on top: processing order is kept.
    let mut runs = vec![(0, entries.len())];
    while let Some((lo, hi)) = runs.pop() {
        let mut savepoint = tx.begin().await?;
        // A run is part of the batch: the batch's own fold does not describe it.
        match apply_entries(&mut savepoint, &entries[lo..hi], None, options).await {
            Ok(part) => {
                savepoint.commit().await?;
                applied.add(part);
            }
            Err(e) => {
                let failure = classify(&e);
                if failure == Failure::Transient || (failure == Failure::Other && !any_error) {
                    return Err(e.into());
                }
                savepoint.rollback().await?;
                if hi - lo == 1 {
                    refused.push((lo, e));
                } else {
                    let mid = lo + (hi - lo) / 2;
                    runs.push((mid, hi));
                    runs.push((lo, mid));
                }
            }
        }
    }
    // Several events each refused alone, none for a data reason: the fault is the service's
    // (a broken deployment, a bug), not the data's; dead-lettering would empty the batch into
    // dead letters. (One event alone cannot tell; it is taken for the data's fault.)
    let all_other = refused.iter().all(|(_, e)| classify(e) == Failure::Other);
    if entries.len() > 1 && refused.len() == entries.len() && all_other {
        let (_, e) = refused.swap_remove(0);
        tracing::error!(error = %e, "every event of the batch is refused on its own: not a data error");
        return Err(e.into());
    }
    let mut dead = batch.dead_letters.clone();
    for (i, e) in &refused {
        let entry = entries[*i];
        *applied.rejected_by_database.entry(entry.origin.topic.to_string()).or_default() += 1;
        tracing::warn!(topic = %entry.origin.topic, partition = entry.origin.partition, offset = entry.origin.offset,
            error = %e, "the database refused an event; dead-lettered");
        dead.push(rejected_by_database(entry, e));
    }
    Ok((applied, dead))
}

fn rejected_by_database(entry: &Entry, e: &sqlx::Error) -> DeadLetter {
    let o = &entry.origin;
    let detail = match e {
        sqlx::Error::Database(db) => format!("{} (SQLSTATE {})", db.message(), db.code().unwrap_or_default()),
        other => other.to_string(),
    };
    let payload = o.payload.bytes();
    let msg = Message {
        topic: &o.topic,
        partition: o.partition,
        offset: o.offset,
        key: o.key.as_deref(),
        payload: Some(&payload),
    };
    let tenant = Some(entry.event.tenant_id().to_owned());
    DeadLetter::of_message(&msg, Rejection::new(RejectReason::RejectedByDatabase, detail, tenant))
}

/// Dedup, fold and every view write of `entries`, inside `tx`. `prefold`: the batch's
/// [`Batch::prefold`] when `entries` are all of its entries.
async fn apply_entries(
    tx: &mut Transaction<'_, Postgres>,
    entries: &[&Entry],
    prefold: Option<&Delta>,
    options: &ApplyOptions,
) -> Result<Applied, sqlx::Error> {
    let (fresh, duplicates) = dedup::fresh_events(tx, entries).await?;
    // Traces of a sealed batch are hollow: enough for dedup, memberships and the raw store.
    let heads: Vec<&Event> = fresh.iter().map(|e| &e.event).collect();
    let mut memberships = views::load_memberships(tx, &heads).await?;
    // The consumer thread's fold holds for exactly these events when none was a duplicate
    // (the usual case); then only the segment scopes, which need the memberships, are left,
    // and only the traces of customers who are or become segment members count in them.
    // Otherwise every event is folded again. The traces folded are read back whole.
    let prefold = prefold.filter(|_| fresh.len() == entries.len());
    let joining = joining(&heads);
    let whole: Vec<Cow<'_, Event>> = fresh
        .iter()
        .map(|e| match &e.event {
            Event::Trace(t) if prefold.is_some() && !member(&memberships, &joining, &t.tenant_id, &t.customer_id) => {
                Cow::Borrowed(&e.event)
            }
            _ => e.whole(),
        })
        .collect();
    let events: Vec<&Event> = whole.iter().map(|e| &**e).collect();
    let folded: Delta;
    let (shared, segments) = match prefold {
        Some(p) => (p, fold_segments(&events, &mut memberships, options.max_segments)),
        None => {
            folded = fold(&events, &mut memberships, options.max_segments);
            (&folded, Delta::default())
        }
    };
    // The segment scopes after the rest: every writer writes in this same order (two passes,
    // each in key order), so concurrent writers still take row locks in one global order.
    write_views(tx, shared).await?;
    write_views(tx, &segments).await?;
    let traces: Vec<(&DecisionTrace, &Payload)> = fresh
        .iter()
        .filter_map(|e| if let Event::Trace(t) = &e.event { Some((&**t, &e.origin.payload)) } else { None })
        .collect();
    raw_traces::store(tx, &traces, options.oldest_raw_trace_day()).await?;
    Ok(Applied {
        events: fresh.len(),
        duplicates,
        applied: shared.applied.clone(),
        segment_scopes_capped: shared.segment_scopes_capped + segments.segment_scopes_capped,
        ..Applied::default()
    })
}

/// (tenant, customer) of the membership additions among `events`.
fn joining<'e>(events: &[&'e Event]) -> HashSet<(&'e str, &'e str)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Membership(m) if m.op == MembershipOp::Add => Some((m.tenant_id.as_str(), m.customer_id.as_str())),
            _ => None,
        })
        .collect()
}

/// Whether a customer is a segment member before the batch (`memberships`) or joins one in
/// it (`joining`): a superset of the customers whose events count in segment scopes.
fn member(memberships: &Memberships, joining: &HashSet<(&str, &str)>, tenant: &str, customer: &str) -> bool {
    memberships.get(tenant).and_then(|m| m.get(customer)).is_some_and(|s| !s.is_empty())
        || joining.contains(&(tenant, customer))
}

/// Every view write of one delta (an empty map writes nothing).
async fn write_views(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    counters::apply(tx, d).await?;
    running::apply(tx, d).await?;
    wide::apply(tx, d).await?;
    views::apply(tx, d).await?;
    catalog::apply(tx, &d.catalog).await?;
    attributions::apply(tx, &d.conversion_days).await?;
    latency::apply(tx, &d.latency).await
}
