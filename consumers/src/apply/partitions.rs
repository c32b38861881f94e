//! Tables partitioned by UTC date (raw traces, dedup keys): one partition per day, named
//! `<table>_YYYYMMDD`, created by the batch that first needs it and dropped whole once its day
//! leaves the table's retention: O(1) a day instead of deleting rows.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, Transaction};

pub fn name(table: &str, d: NaiveDate) -> String {
    format!("{table}_{}", d.format("%Y%m%d"))
}

/// The advisory lock of one day of `table`: held shared by every batch that writes the day
/// (until it commits), exclusively by the janitor while it decides to drop the day and does.
/// So a day is never dropped under a batch writing it, and a batch that comes after the drop
/// creates the day again.
const DAY_LOCK: &str = "hashtext('partitions of ' || $1), (d - date '1970-01-01')";

/// Locks `days` of `table` shared, and returns those whose partition does not exist yet. Read
/// from `pg_class` with the statement's snapshot, not with `to_regclass`, whose cached lookup
/// can miss a partition another transaction just committed.
async fn lock_and_find_missing(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    days: &[NaiveDate],
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "WITH locked AS MATERIALIZED (SELECT d, pg_advisory_xact_lock_shared({DAY_LOCK}) FROM unnest($2::date[]) d)
         SELECT d FROM locked
          WHERE NOT EXISTS (SELECT 1 FROM pg_class c
                             WHERE c.relname = $1 || '_' || to_char(d, 'YYYYMMDD')
                               AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::regclass))"
    ))
    .bind(table)
    .bind(days)
    .fetch_all(&mut **tx)
    .await
}

/// Makes sure the partitions of `table` that `days` need exist, and that the janitor does not
/// drop them before this transaction ends: one query when they all exist, the usual case.
///
/// Two ingest processes may need the same new day at once. `CREATE TABLE IF NOT EXISTS` does
/// not make that safe (the loser can fail on a catalog unique index, SQLSTATE 23505, which
/// would read as a data error and send the batch to isolation), so creators queue on a
/// transaction-scoped advisory lock per table and look again under it. The locks, and the
/// parent's lock that creating a partition takes, are held to the end of the batch: other
/// writers of the table wait for that batch once a day, never in a cycle, since each takes
/// them before it writes the table.
pub(super) async fn ensure(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    days: &BTreeSet<NaiveDate>,
) -> Result<(), sqlx::Error> {
    let days: Vec<NaiveDate> = days.iter().copied().collect();
    if days.is_empty() || lock_and_find_missing(tx, table, &days).await?.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('partitions of ' || $1))")
        .bind(table)
        .execute(&mut **tx)
        .await?;
    for d in lock_and_find_missing(tx, table, &days).await? {
        let next = d.succ_opt().unwrap_or(d);
        let sql = format!("CREATE TABLE {} PARTITION OF {table} FOR VALUES FROM ('{d}') TO ('{next}')", name(table, d));
        sqlx::query(&sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The days that have a partition of `table`, oldest first.
pub async fn days(pool: &PgPool, table: &str) -> Result<Vec<NaiveDate>, sqlx::Error> {
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = $1::regclass",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let prefix = format!("{table}_");
    let mut days: Vec<NaiveDate> =
        partitions.iter().filter_map(|p| NaiveDate::parse_from_str(p.strip_prefix(&prefix)?, "%Y%m%d").ok()).collect();
    days.sort_unstable();
    Ok(days)
}

/// Drops the partition of `day` of `table`, unless `kept_if_applied_since` is given and a row
/// of it was applied (`applied_at`) at or after it; returns whether it dropped it. Under the
/// day's lock taken exclusively, so no batch writing the day is in flight, and with a lock
/// timeout: the parent's lock a drop takes queues the API's reads behind it, so a drop that
/// would wait for long gives up until the next round.
pub async fn drop_day(
    pool: &PgPool,
    table: &str,
    day: NaiveDate,
    kept_if_applied_since: Option<DateTime<Utc>>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '2s'").execute(&mut *tx).await?;
    sqlx::query(&format!("SELECT pg_advisory_xact_lock({DAY_LOCK}) FROM (SELECT $2::date AS d) day"))
        .bind(table)
        .bind(day)
        .execute(&mut *tx)
        .await?;
    let partition = name(table, day);
    if let Some(since) = kept_if_applied_since {
        let used: Option<bool> =
            sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {partition} WHERE applied_at >= $1)"))
                .bind(since)
                .fetch_optional(&mut *tx)
                .await
                .or_else(|e| if is_undefined_table(&e) { Ok(None) } else { Err(e) })?;
        if used != Some(false) {
            return Ok(false);
        }
    }
    sqlx::query(&format!("DROP TABLE IF EXISTS {partition}")).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

fn is_undefined_table(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}
