//! `selection_flow_totals` (migration `selection_flow_totals`): running totals of the wide
//! selection rows. Per tenant (chain segment `''`), a checkpoint at every day with traces holds
//! one wide row per (channel, flow) seen up to that day, each entry an offer's counters summed
//! over all days up to it; selection_frequency by channel or flow reads two rows per (channel,
//! flow) whatever the window.
//!
//! A batch locks its tenants' chains (the lock the per-offer selection totals take: one class
//! per pipeline, see `running`), creates the checkpoints it needs as copies of the chain's
//! latest earlier one, and returns every delta row fanned out to its day's checkpoint and every
//! later one, rows meeting on one checkpoint summed: the caller merges them into the stored
//! values as it merges any wide row (`wide`).

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use super::fan;
use super::running::lock_tenants;
use crate::fold::keys::TraceKey;
use crate::units::wide::{add_entries, OutOfRange, WideError};

/// The table, and its name in `running_total_days`.
pub(super) const TABLE: &str = "selection_flow_totals";
const DAYS: &str = "running_total_days";

/// A wide row's entries: (offer, its 15 counters), in id byte order.
pub(super) type Entries<'d> = Vec<(&'d str, [i64; 15])>;

/// The rows the batch's per-(day, channel, flow) entries add to, in key order (the lock order
/// of every writer), after creating the checkpoints they need. `rows` is in key order.
pub(super) async fn fan_out<'d>(
    tx: &mut Transaction<'_, Postgres>,
    rows: Vec<(TraceKey, Entries<'d>)>,
) -> Result<Vec<(TraceKey, Entries<'d>)>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(rows);
    }
    let mut chain_days: Vec<(&str, &str, NaiveDate)> =
        rows.iter().map(|(k, _)| (k.tenant.as_str(), "", k.day)).collect();
    chain_days.dedup();
    let mut tenants: Vec<&str> = chain_days.iter().map(|c| c.0).collect();
    tenants.dedup();
    sqlx::query(&lock_tenants("selection totals")).bind(&tenants).execute(&mut **tx).await?;
    let (t, d): (Vec<&str>, Vec<NaiveDate>) = chain_days.iter().map(|c| (c.0, c.2)).unzip();
    sqlx::query(CHECKPOINTS).bind(&t).bind(&d).execute(&mut **tx).await?;
    let targets = fan::reached(tx, DAYS, TABLE, &chain_days).await?;
    let mut fanned: Vec<(TraceKey, &Entries<'d>)> = Vec::with_capacity(rows.len());
    for (key, entries) in &rows {
        let c = chain_days
            .binary_search(&(key.tenant.as_str(), "", key.day))
            .expect("every (tenant, day) of the rows was looked up");
        fanned.extend(targets[c].iter().map(|&day| (TraceKey { day, ..key.clone() }, entries)));
    }
    fanned.sort_by(|a, b| a.0.cmp(&b.0));
    // A sum out of int8: the data's, as `wide` classifies a merge's.
    sum_equal_keys(fanned).map_err(|e| sqlx::Error::Encode(Box::new(WideError::from(e))))
}

/// Rows sorted by key, those of one key (several days of a batch met on one checkpoint) summed.
fn sum_equal_keys<'d>(sorted: Vec<(TraceKey, &Entries<'d>)>) -> Result<Vec<(TraceKey, Entries<'d>)>, OutOfRange> {
    let mut out: Vec<(TraceKey, Entries<'d>)> = Vec::with_capacity(sorted.len());
    for (key, entries) in sorted {
        match out.last_mut() {
            Some((k, sum)) if *k == key => *sum = add_entries(sum, entries)?,
            _ => out.push((key, entries.clone())),
        }
    }
    Ok(out)
}

/// Creates the checkpoints of `$1`/`$2` (tenant, day) that do not exist, each a copy of its
/// chain's latest earlier checkpoint (none: it starts empty). The copies read the checkpoints
/// as they were before this statement, so two new days of one batch copy the same earlier day;
/// the batch's entries are then merged into both.
const CHECKPOINTS: &str = "WITH created AS (
         INSERT INTO running_total_days (view, tenant_id, segment_id, day)
         SELECT DISTINCT 'selection_flow_totals', t, '', d FROM unnest($1::text[], $2::date[]) AS w(t, d)
         ORDER BY 2, 4
         ON CONFLICT DO NOTHING
         RETURNING tenant_id, day),
     sources AS MATERIALIZED (
         SELECT n.tenant_id, n.day,
                (SELECT max(p.day) FROM running_total_days p
                  WHERE p.view = 'selection_flow_totals' AND p.tenant_id = n.tenant_id AND p.segment_id = ''
                    AND p.day < n.day) AS prev
           FROM created n)
     INSERT INTO selection_flow_totals (tenant_id, day, channel_id, decision_flow_id, offers)
     SELECT n.tenant_id, n.day, r.channel_id, r.decision_flow_id, r.offers
       FROM sources n
       JOIN selection_flow_totals r ON r.tenant_id = n.tenant_id AND r.day = n.prev
      ORDER BY 1, 2, 3, 4";
