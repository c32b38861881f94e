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

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use super::fan;
use super::running::lock_tenants;
use crate::fold::keys::{RollupDayKey, TraceKey};
use crate::units::wide::{add_entries, OutOfRange, WideError};

const DAYS: &str = "running_total_days";

/// A wide row's entries: (id, its counters), in id byte order.
pub(super) type Entries<'d, const N: usize> = Vec<(&'d str, [i64; N])>;

/// Entries that several fanned rows hold (see [`spread`]).
pub(super) type Shared<'d, const N: usize> = Arc<Entries<'d, N>>;

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
    ) -> Result<Vec<(K, Shared<'d, N>)>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
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
        let reach: Vec<&[NaiveDate]> = rows
            .iter()
            .map(|(key, _)| {
                let c = chain_days.binary_search(&key.chain_day()).expect("every chain day of the rows was looked up");
                targets[c].as_slice()
            })
            .collect();
        // A sum out of int8: the data's, as `wide` classifies a merge's.
        spread(rows, &reach).map_err(|e| sqlx::Error::Encode(Box::new(WideError::from(e))))
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

/// A key's checkpoints from its first day in the batch on, and its rows by day.
type Series<'r, 'd, const N: usize> = (&'r [NaiveDate], Vec<(NaiveDate, Entries<'d, N>)>);

/// Every row of `rows` (in key order) on each checkpoint its (chain, day) reaches (`reach`, by
/// row: ascending), rows of one key meeting on a checkpoint summed; in key order. A key's
/// checkpoints between two of the batch's days, and all those after its last, receive the
/// same sum: they share it. A batch of a partition that lags the others by days reaches every
/// later checkpoint of its chains, and cloned per checkpoint these sums were ~140 of a 210 MB
/// heap peak at 300,000 traces (heaptrack, BENCHMARKS.md "Write path, twelfth pass").
fn spread<'d, K: ChainKey, const N: usize>(
    rows: Vec<(K, Entries<'d, N>)>,
    reach: &[&[NaiveDate]],
) -> Result<Vec<(K, Shared<'d, N>)>, OutOfRange> {
    // Each series (the key on one fixed day) with its rows: in key order, so in day order,
    // and with its first day's checkpoints, of which every later day of it is one.
    let mut series: BTreeMap<K, Series<'_, 'd, N>> = BTreeMap::new();
    for ((key, entries), &checkpoints) in rows.into_iter().zip(reach) {
        let day = key.chain_day().2;
        series.entry(key.on(NaiveDate::MIN)).or_insert_with(|| (checkpoints, Vec::new())).1.push((day, entries));
    }
    let mut out: Vec<(K, Shared<'d, N>)> = Vec::new();
    for (key, (checkpoints, days)) in series {
        let mut days = days.into_iter().peekable();
        let mut sum: Option<Shared<'d, N>> = None;
        for &checkpoint in checkpoints {
            while let Some((_, entries)) = days.next_if(|(day, _)| *day <= checkpoint) {
                sum = Some(Arc::new(match sum {
                    None => entries,
                    Some(earlier) => add_entries(&earlier, &entries)?,
                }));
            }
            if let Some(sum) = &sum {
                out.push((key.on(checkpoint), Arc::clone(sum)));
            }
        }
        debug_assert!(days.peek().is_none(), "each day of a series is one of its first day's checkpoints");
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(n))
    }

    proptest! {
        /// Against a map of sums: every row's entries added once to each checkpoint from its
        /// day on (day is not the key's last column here: `TraceKey`), nothing else, in key order.
        #[test]
        fn spread_sums_each_row_onto_every_later_checkpoint(
            rows in proptest::collection::vec((0..2usize, 0..6u32, 0..2usize, proptest::collection::btree_map(0..3usize, -1000..1000i64, 1..3)), 1..30),
            extra in proptest::collection::vec(0..9u32, 0..4),
        ) {
            const TENANTS: [&str; 2] = ["t", "tenant-é"];
            const CHANNELS: [&str; 2] = ["", "web"];
            const IDS: [&str; 3] = ["o1", "o10", "o2"];
            // One row per key, as a fold makes them, in key order.
            let mut unique: BTreeMap<TraceKey, Entries<'static, 2>> = BTreeMap::new();
            for (t, d, c, offers) in rows {
                let key = TraceKey { tenant: TENANTS[t].into(), day: day(d), channel: CHANNELS[c].into(), flow: String::new() };
                unique.insert(key, offers.iter().map(|(&i, &v)| (IDS[i], [v, -v])).collect());
            }
            // Checkpoints: every row day of the chain, and some other days.
            let checkpoints = |tenant: &str| -> Vec<NaiveDate> {
                let mut days: Vec<NaiveDate> = unique.keys().filter(|k| k.tenant == tenant).map(|k| k.day).chain(extra.iter().map(|&d| day(d))).collect();
                days.sort_unstable();
                days.dedup();
                days
            };
            let reached: Vec<Vec<NaiveDate>> =
                unique.keys().map(|k| checkpoints(&k.tenant).into_iter().filter(|&c| c >= k.day).collect()).collect();
            let mut want: BTreeMap<TraceKey, BTreeMap<&str, [i64; 2]>> = BTreeMap::new();
            for ((key, entries), days) in unique.iter().zip(&reached) {
                for &c in days {
                    let sums = want.entry(key.on(c)).or_default();
                    for (id, v) in entries {
                        let s = sums.entry(id).or_default();
                        s[0] += v[0];
                        s[1] += v[1];
                    }
                }
            }
            let reach: Vec<&[NaiveDate]> = reached.iter().map(Vec::as_slice).collect();
            let got: Vec<(TraceKey, BTreeMap<&str, [i64; 2]>)> = spread(unique.clone().into_iter().collect(), &reach)
                .unwrap()
                .into_iter()
                .map(|(k, e)| (k, e.iter().copied().collect()))
                .collect();
            prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }

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
