//! Upserts of the interaction rollups (migration `interaction_rollups`): the same counters as
//! `interaction_daily`, per (tenant, segment or "", day) and per offer / channel on top.

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use super::views::{CounterColumns, ADD_COUNTERS, COUNTER_COLUMNS};
use crate::fold::{Delta, InteractionCounts, RollupKey};

pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    let day_rows = d.rollup_day.iter().map(|((t, s, dy), c)| ((t, s, *dy, None), c));
    upsert(tx, "interaction_rollup_day", None, day_rows).await?;
    upsert(tx, "interaction_rollup_offer", Some("offer_id"), with_dim(&d.rollup_offer)).await?;
    upsert(tx, "interaction_rollup_channel", Some("channel_id"), with_dim(&d.rollup_channel)).await
}

type Row<'a> = ((&'a String, &'a String, NaiveDate, Option<&'a String>), &'a InteractionCounts);

fn with_dim(m: &std::collections::BTreeMap<RollupKey, InteractionCounts>) -> impl Iterator<Item = Row<'_>> {
    m.iter().map(|((t, s, dy, dim), c)| ((t, s, *dy, Some(dim)), c))
}

/// One multi-row upsert; rows come in key order (the lock order, see `apply`).
async fn upsert<'a>(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    dim: Option<&str>,
    rows: impl Iterator<Item = Row<'a>>,
) -> Result<(), sqlx::Error> {
    let (mut t, mut s, mut day, mut dims, mut cols) = (vec![], vec![], vec![], vec![], CounterColumns::default());
    for ((tenant, scope, dy, d), counts) in rows {
        t.push(tenant.as_str());
        s.push(scope.as_str());
        day.push(dy);
        dims.extend(d.map(String::as_str));
        cols.push(counts);
    }
    if t.is_empty() {
        return Ok(());
    }
    let (dim_col, dim_param) = match dim {
        Some(c) => (format!(", {c}"), ", $12::text[]"),
        None => (String::new(), ""),
    };
    let sql = format!(
        "INSERT INTO {table} AS t (tenant_id, segment_id, day, {COUNTER_COLUMNS}{dim_col})
         SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::int8[], $5::int8[], $6::int8[], $7::int8[],
                              $8::int8[], $9::int8[], $10::numeric[], $11::numeric[]{dim_param})
         ON CONFLICT (tenant_id, segment_id, day{dim_col}) DO UPDATE SET {ADD_COUNTERS}"
    );
    let mut q = cols.bind(sqlx::query(&sql).bind(&t).bind(&s).bind(&day));
    if dim.is_some() {
        q = q.bind(&dims);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}
