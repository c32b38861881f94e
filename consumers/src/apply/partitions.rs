//! Tables partitioned by UTC date (raw traces, dedup keys): one partition per day, named
//! `<table>_YYYYMMDD`, created by the batch that first needs it and dropped whole once its day
//! leaves the table's retention: O(1) a day instead of deleting rows.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use sqlx::{PgPool, Postgres, Transaction};

pub fn name(table: &str, d: NaiveDate) -> String {
    format!("{table}_{}", d.format("%Y%m%d"))
}

/// The days of `days` whose partition of `table` does not exist yet. Read from `pg_class`
/// with the statement's snapshot, not with `to_regclass`, whose cached lookup can miss a
/// partition another transaction just committed.
async fn missing(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    days: &[NaiveDate],
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT d FROM unnest($2::date[]) d
          WHERE NOT EXISTS (SELECT 1 FROM pg_class c
                             WHERE c.relname = $1 || '_' || to_char(d, 'YYYYMMDD')
                               AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::regclass))",
    )
    .bind(table)
    .bind(days)
    .fetch_all(&mut **tx)
    .await
}

/// Creates the partitions of `table` that `days` need and that do not exist yet: one query
/// when they all exist, the usual case.
///
/// Two ingest processes may need the same new day at once. `CREATE TABLE IF NOT EXISTS` does
/// not make that safe (the loser can fail on a catalog unique index, SQLSTATE 23505, which
/// would read as a data error and send the batch to isolation), so creators queue on a
/// transaction-scoped advisory lock per table and look again under it. The lock, and the
/// parent's lock that creating a partition takes, are held to the end of the batch: other
/// writers of the table wait for that batch once a day, never in a cycle, since each takes
/// them before it writes the table.
pub(super) async fn ensure(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    days: &BTreeSet<NaiveDate>,
) -> Result<(), sqlx::Error> {
    let days: Vec<NaiveDate> = days.iter().copied().collect();
    if days.is_empty() || missing(tx, table, &days).await?.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('partitions of ' || $1))")
        .bind(table)
        .execute(&mut **tx)
        .await?;
    for d in missing(tx, table, &days).await? {
        let next = d.succ_opt().unwrap_or(d);
        let sql = format!("CREATE TABLE {} PARTITION OF {table} FOR VALUES FROM ('{d}') TO ('{next}')", name(table, d));
        sqlx::query(&sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Drops the partitions of `table` for days before `oldest_kept`; returns their names.
pub async fn drop_before(pool: &PgPool, table: &str, oldest_kept: NaiveDate) -> Result<Vec<String>, sqlx::Error> {
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = $1::regclass",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let prefix = format!("{table}_");
    let mut dropped = Vec::new();
    for partition in partitions {
        let Some(day) = partition.strip_prefix(&prefix).and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        if day < oldest_kept {
            sqlx::query(&format!("DROP TABLE IF EXISTS {partition}")).execute(pool).await?;
            dropped.push(partition);
        }
    }
    Ok(dropped)
}
