//! Upserts of the score buckets (see migration `score_distribution`).

use sqlx::{Postgres, Transaction};

use crate::fold::selection::ScoreCounts;
use crate::fold::Delta;

const COLUMNS: &str = "b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, score_sum_micros, n";

/// One upsert: `keys` are (column, SQL type, values as text or date arrays bound by the caller).
async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    key_cols: &[&str],
    tenants: Vec<&str>,
    days: Vec<chrono::NaiveDate>,
    dims: Option<Vec<&str>>,
    counts: Vec<&ScoreCounts>,
) -> Result<(), sqlx::Error> {
    let k = key_cols.len();
    let mut casts: Vec<String> = vec!["$1::text[]".into(), "$2::date[]".into()];
    if dims.is_some() {
        casts.push("$3::text[]".into());
    }
    casts.extend((0..12).map(|i| format!("${}::int8[]", k + 1 + i)));
    let set: Vec<String> = COLUMNS.split(", ").map(|c| format!("{c} = t.{c} + EXCLUDED.{c}")).collect();
    let sql = format!(
        "INSERT INTO {table} AS t ({}, {COLUMNS}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {}",
        key_cols.join(", "),
        casts.join(", "),
        key_cols.join(", "),
        set.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(tenants).bind(days);
    if let Some(d) = dims {
        q = q.bind(d);
    }
    for b in 0..10 {
        q = q.bind(counts.iter().map(|c| c.buckets[b]).collect::<Vec<i64>>());
    }
    q.bind(counts.iter().map(|c| c.sum_micros).collect::<Vec<i64>>())
        .bind(counts.iter().map(|c| c.n).collect::<Vec<i64>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    if !d.scores.is_empty() {
        let t = d.scores.keys().map(|k| k.0.as_str()).collect();
        let days = d.scores.keys().map(|k| k.1).collect();
        upsert(tx, "score_daily", &["tenant_id", "day"], t, days, None, d.scores.values().collect()).await?;
    }
    for (table, col, map) in
        [("score_channel_daily", "channel_id", &d.channel_scores), ("score_offer_daily", "offer_id", &d.offer_scores)]
    {
        if map.is_empty() {
            continue;
        }
        let t = map.keys().map(|k| k.0.as_str()).collect();
        let days = map.keys().map(|k| k.1).collect();
        let dims = map.keys().map(|k| k.2.as_str()).collect();
        upsert(tx, table, &["tenant_id", "day", col], t, days, Some(dims), map.values().collect()).await?;
    }
    Ok(())
}
