//! Housekeeping next to ingest: the retention of dead letters (deleted past their horizon, in
//! small chunks so that it never holds long locks), of dedup keys and raw traces (whole daily
//! partitions), and the sweep of expired suppressions out of the active counters (see
//! migration `suppression_counts`).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::apply::partitions;

const CHUNK: i64 = 10_000;
const EVERY: Duration = Duration::from_secs(600);
/// Reads stay exact between sweeps; sweeping often only keeps the unswept remainder small.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// How long each kind of kept record lives.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// DV_DEDUP_HORIZON_DAYS: an applied event's key lives at least this long.
    pub dedup_horizon_days: i64,
    /// DV_RETENTION_DAYS: how old an event time may be.
    pub event_days: i64,
    pub trace_days: i64,
    pub dead_letter_days: i64,
}

pub async fn run(pool: PgPool, retention: Retention, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut last_purge = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        if let Err(e) = sweep_expired_suppressions(&pool).await {
            tracing::warn!(error = %e, "suppression sweep failed; will retry");
        }
        if last_purge.elapsed() >= EVERY {
            last_purge = tokio::time::Instant::now();
            match purge(&pool, retention.dedup_horizon_days, retention.event_days).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "expired dedup keys removed (partitions and old keys)"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "dedup retention failed; will retry"),
            }
            match purge_dead_letters(&pool, chrono::Duration::days(retention.dead_letter_days)).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "dead letters past their retention removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "dead-letter retention failed; will retry"),
            }
            match drop_expired_trace_partitions(&pool, retention.trace_days).await {
                Ok(dropped) if !dropped.is_empty() => tracing::info!(?dropped, "expired raw-trace partitions dropped"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "raw-trace retention failed; will retry"),
            }
        }
    }
}

/// Takes expired suppressions out of the active counters. SKIP LOCKED: rows ingest holds are
/// left for the next sweep, so the two never wait on each other in opposite orders.
pub async fn sweep_expired_suppressions(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let swept: Vec<(String, String)> = sqlx::query_as(
        "WITH expired AS (
             SELECT tenant_id, suppression_id FROM suppressions
              WHERE counted AND expires_at <= now()
              ORDER BY tenant_id, suppression_id LIMIT 10000
                FOR UPDATE SKIP LOCKED)
         UPDATE suppressions s SET counted = false FROM expired e
          WHERE s.tenant_id = e.tenant_id AND s.suppression_id = e.suppression_id
         RETURNING s.tenant_id, s.policy_type",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut counts = std::collections::BTreeMap::new();
    for (t, p) in &swept {
        *counts.entry((t.clone(), p.clone())).or_insert(0) -= 1;
    }
    crate::apply::add_suppression_counts(&mut tx, &counts).await?;
    tx.commit().await?;
    Ok(swept.len() as u64)
}

/// Drops the dedup keys' day partitions in which no key was applied within `horizon_days`
/// (or whose date is past `retention_days`, when no copy of their events can be accepted any
/// more), and deletes the keys stored before they were kept by day once past the horizon;
/// returns how many partitions and keys went.
pub async fn purge(pool: &PgPool, horizon_days: i64, retention_days: i64) -> Result<u64, sqlx::Error> {
    let now = chrono::Utc::now();
    let today = now.date_naive();
    // A day is worth looking at once its date is more than the horizon behind (a day more for
    // the ingest processes' clocks): until then its own events were applied within it. Past
    // the retention horizon (and a day) no copy of its events can be accepted, so it goes
    // whatever its keys' age.
    let past_retention = today - chrono::Duration::days(retention_days + 1);
    let past_horizon = today - chrono::Duration::days(horizon_days + 1);
    let applied_since = now - chrono::Duration::days(horizon_days);
    let mut removed = 0;
    for day in partitions::days(pool, "dedup_keys").await? {
        let dropped = if day < past_retention {
            partitions::drop_day(pool, "dedup_keys", day, None).await?
        } else if day < past_horizon {
            partitions::drop_day(pool, "dedup_keys", day, Some(applied_since)).await?
        } else {
            break;
        };
        removed += u64::from(dropped);
    }
    let horizon = chrono::Duration::days(horizon_days);
    removed += delete_older(pool, "legacy_dedup_keys", "applied_at", horizon).await?;
    // Nothing left to look up there: ingest stops reading it.
    sqlx::query("DELETE FROM legacy_dedup_bound WHERE NOT EXISTS (SELECT 1 FROM legacy_dedup_keys)")
        .execute(pool)
        .await?;
    Ok(removed)
}

/// Deletes dead letters received longer than `retention` ago; returns how many. The per-topic
/// counters (`dead_letter_counts`) count all time and stay.
pub async fn purge_dead_letters(pool: &PgPool, retention: chrono::Duration) -> Result<u64, sqlx::Error> {
    delete_older(pool, "dead_letters", "received_at", retention).await
}

/// Deletes the rows of `table` whose `column` is older than `age`, [`CHUNK`] rows a statement.
async fn delete_older(pool: &PgPool, table: &str, column: &str, age: chrono::Duration) -> Result<u64, sqlx::Error> {
    let cutoff = chrono::Utc::now() - age;
    let sql =
        format!("DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {column} < $1 LIMIT $2))");
    let mut total = 0;
    loop {
        let n = sqlx::query(&sql).bind(cutoff).bind(CHUNK).execute(pool).await?.rows_affected();
        total += n;
        if n < CHUNK as u64 {
            return Ok(total);
        }
    }
}

/// Drops the raw-trace partitions of days before the retention window: O(1) per day. Their ids
/// in `decision_trace_ids` go first, [`CHUNK`] rows a statement, so that no id outlives its
/// trace (an expired trace is "not found" from then on either way).
pub async fn drop_expired_trace_partitions(pool: &PgPool, retention_days: i64) -> Result<Vec<String>, sqlx::Error> {
    let oldest_kept = chrono::Utc::now().date_naive() - chrono::Duration::days(retention_days - 1);
    let ids = "DELETE FROM decision_trace_ids WHERE ctid = ANY(ARRAY(
                   SELECT ctid FROM decision_trace_ids WHERE day < $1 LIMIT $2))";
    loop {
        let deleted = sqlx::query(ids).bind(oldest_kept).bind(CHUNK).execute(pool).await?.rows_affected();
        if deleted < CHUNK as u64 {
            break;
        }
    }
    let mut dropped = Vec::new();
    for day in partitions::days(pool, "decision_traces").await?.into_iter().take_while(|d| *d < oldest_kept) {
        if partitions::drop_day(pool, "decision_traces", day, None).await? {
            dropped.push(partitions::name("decision_traces", day));
        }
    }
    Ok(dropped)
}
