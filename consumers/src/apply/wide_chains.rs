//! Running totals of wide rows: per (tenant, segment) chain, a checkpoint at every day with
//! events holds rows whose entries are each id's counters summed over all days up to it, so a
//! window reads two checkpoints whatever its length.
//!
//! - `selection_flow_totals` (migration `selection_flow_totals`): the tenant's chain (segment
//!   `''`), a row per (channel, flow) seen up to the day, an entry per offer; selection_frequency
//!   by channel or flow reads it.
//! - `interaction_segment_totals` (migration `interaction_segment_totals`): a chain per
//!   segment, one row per checkpoint, an entry per offer; offer_performance_grouped by segment,
//!   and acceptance_rate and offer_performance with a segment, read it (two rows per segment,
//!   where they read two rows per (segment, offer)).
//! - `interaction_segment_channel_totals` (migration `wide_segment_channel_totals`): a chain
//!   per segment, a row per (checkpoint, channel seen up to it), an entry per offer with every
//!   interaction counter; offer_performance_grouped by channel with a segment reads it, and
//!   `interaction_segment_daily` decodes it.
//! - `selection_chain_totals` (migration `wide_selection_offer_totals`): all customers' chain
//!   (segment `''`) and one per segment, one row per checkpoint, an entry per offer
//!   (`selection_chains`); selection_frequency without a channel or flow, why_not_ranked and
//!   score_distribution by offer or category read it.
//!
//! A batch locks its tenants' chains (the lock of the narrow running totals of the same
//! pipeline, see `running`), creates the checkpoints it needs as copies of the chain's latest
//! earlier one, and returns every delta row fanned out to its day's checkpoint and every later
//! one, rows meeting on one checkpoint summed: the caller merges them into the stored values as
//! it merges any wide row (`wide`).

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use super::fan;
use super::running::lock_tenants;
use crate::fold::keys::{RollupDayKey, TraceKey};
use crate::units::wide::{add_entries, OutOfRange, WideError};

const DAYS: &str = "running_total_days";

/// A wide row's entries: (id, its counters), in id byte order.
pub(super) type Entries<'d, const N: usize> = Vec<(&'d str, [i64; N])>;

/// A wide running-total view.
pub(super) struct Chains {
    /// Its table, and its name in `running_total_days`.
    pub table: &'static str,
    /// The key columns after (tenant, [segment,] day): copied to a new checkpoint.
    others: &'static [&'static str],
    /// Whether the table has a `segment_id` column (else its one chain is segment `''`).
    segmented: bool,
    /// The class of the tenant lock ([`lock_tenants`]).
    lock: &'static str,
}

pub(super) const FLOWS: Chains = Chains {
    table: "selection_flow_totals",
    others: &["channel_id", "decision_flow_id"],
    segmented: false,
    lock: "selection totals",
};

pub(super) const SEGMENTS: Chains =
    Chains { table: "interaction_segment_totals", others: &[], segmented: true, lock: "interaction totals" };

pub(super) const SELECTIONS: Chains =
    Chains { table: "selection_chain_totals", others: &[], segmented: true, lock: "selection totals" };

pub(super) const SEGMENT_CHANNELS: Chains = Chains {
    table: "interaction_segment_channel_totals",
    others: &["channel_id"],
    segmented: true,
    lock: "interaction totals",
};

/// A wide row's key: its chain and day, and the same key on another day.
pub(super) trait ChainKey: Clone + Ord {
    fn chain_day(&self) -> (&str, &str, NaiveDate);
    fn on(&self, day: NaiveDate) -> Self;
}

impl ChainKey for TraceKey {
    fn chain_day(&self) -> (&str, &str, NaiveDate) {
        (&self.tenant, "", self.day)
    }
    fn on(&self, day: NaiveDate) -> Self {
        TraceKey { day, ..self.clone() }
    }
}

impl ChainKey for RollupDayKey {
    fn chain_day(&self) -> (&str, &str, NaiveDate) {
        (&self.tenant, &self.segment, self.day)
    }
    fn on(&self, day: NaiveDate) -> Self {
        RollupDayKey { day, ..self.clone() }
    }
}

impl Chains {
    /// The rows the batch's per-day entries add to, in key order (the lock order of every
    /// writer), after creating the checkpoints they need. `rows` is in key order.
    pub(super) async fn fan_out<'d, K: ChainKey, const N: usize>(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        rows: Vec<(K, Entries<'d, N>)>,
    ) -> Result<Vec<(K, Entries<'d, N>)>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(rows);
        }
        let mut chain_days: Vec<(&str, &str, NaiveDate)> = rows.iter().map(|(k, _)| k.chain_day()).collect();
        chain_days.sort_unstable();
        chain_days.dedup();
        let mut tenants: Vec<&str> = chain_days.iter().map(|c| c.0).collect();
        tenants.dedup();
        sqlx::query(&lock_tenants(self.lock)).bind(&tenants).execute(&mut **tx).await?;
        let (t, s, d) = fan::columns(&chain_days);
        sqlx::query(&self.checkpoints()).bind(&t).bind(&s).bind(&d).execute(&mut **tx).await?;
        let targets = fan::reached(tx, DAYS, self.table, &chain_days).await?;
        let mut fanned: Vec<(K, &Entries<'d, N>)> = Vec::with_capacity(rows.len());
        for (key, entries) in &rows {
            let c = chain_days.binary_search(&key.chain_day()).expect("every chain day of the rows was looked up");
            fanned.extend(targets[c].iter().map(|&day| (key.on(day), entries)));
        }
        fanned.sort_by(|a, b| a.0.cmp(&b.0));
        // A sum out of int8: the data's, as `wide` classifies a merge's.
        sum_equal_keys(fanned).map_err(|e| sqlx::Error::Encode(Box::new(WideError::from(e))))
    }

    /// Creates the checkpoints of `$1`/`$2`/`$3` (tenant, segment, day) that do not exist, each
    /// a copy of its chain's latest earlier checkpoint (none: it starts empty;
    /// [`fan::new_checkpoints`]); the batch's entries are then merged into them.
    fn checkpoints(&self) -> String {
        let Chains { table, others, segmented, .. } = self;
        let (segment, on_segment) =
            if *segmented { ("n.segment_id, ", "AND r.segment_id = n.segment_id") } else { ("", "") };
        let keys = 2 + usize::from(*segmented) + others.len();
        format!(
            "{sources}
             INSERT INTO {table} (tenant_id, {segment_col}day, {names}offers)
             SELECT n.tenant_id, {segment}n.day, {copied}r.offers
               FROM sources n
               JOIN {table} r ON r.tenant_id = n.tenant_id {on_segment} AND r.day = n.prev
              ORDER BY {order}",
            sources = fan::new_checkpoints(DAYS, table),
            segment_col = if *segmented { "segment_id, " } else { "" },
            names = others.iter().map(|c| format!("{c}, ")).collect::<String>(),
            copied = others.iter().map(|c| format!("r.{c}, ")).collect::<String>(),
            order = (1..=keys).map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
        )
    }
}

/// Rows sorted by key, those of one key (several days of a batch met on one checkpoint) summed.
fn sum_equal_keys<'d, K: PartialEq, const N: usize>(
    sorted: Vec<(K, &Entries<'d, N>)>,
) -> Result<Vec<(K, Entries<'d, N>)>, OutOfRange> {
    let mut out: Vec<(K, Entries<'d, N>)> = Vec::with_capacity(sorted.len());
    for (key, entries) in sorted {
        match out.last_mut() {
            Some((k, sum)) if *k == key => *sum = add_entries(sum, entries)?,
            _ => out.push((key, entries.clone())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_checkpoint_copies_every_column_of_its_source() {
        let flows = FLOWS.checkpoints();
        assert!(
            flows.contains("INSERT INTO selection_flow_totals (tenant_id, day, channel_id, decision_flow_id, offers)")
        );
        assert!(flows.contains("SELECT n.tenant_id, n.day, r.channel_id, r.decision_flow_id, r.offers"));
        assert!(flows.ends_with("ORDER BY 1, 2, 3, 4") && !flows.contains("r.segment_id"));
        let channels = SEGMENT_CHANNELS.checkpoints();
        assert!(channels.contains(
            "INSERT INTO interaction_segment_channel_totals (tenant_id, segment_id, day, channel_id, offers)"
        ));
        assert!(channels.contains("SELECT n.tenant_id, n.segment_id, n.day, r.channel_id, r.offers"));
        assert!(channels.ends_with("ORDER BY 1, 2, 3, 4"));
        let segments = SEGMENTS.checkpoints();
        assert!(segments.contains("INSERT INTO interaction_segment_totals (tenant_id, segment_id, day, offers)"));
        assert!(segments.contains("SELECT n.tenant_id, n.segment_id, n.day, r.offers"));
        assert!(segments.contains("AND r.segment_id = n.segment_id") && segments.ends_with("ORDER BY 1, 2, 3"));
    }
}
