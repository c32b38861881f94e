//! Running totals (migrations `running_totals`, `selection_offer_totals`): per (tenant,
//! segment) chain, checkpoints at the days that had events, each holding every key's counters
//! summed up to that day, so a window's sums are two rows per key (the latest checkpoint ≤ its
//! last day minus the latest before its first day) whatever its length.
//!
//! A batch writes a view in three statements: it locks its tenants' chains; it creates the
//! checkpoints it needs, each a copy of the latest earlier one; then it adds every delta row
//! to its day's checkpoint and to each later one (in SQL for the per-offer view, whose
//! derived column needs each day's value; fanned out and summed in Rust for the others,
//! `fan`). The lock is what keeps this exact under
//! concurrent writers (several partitions, several processes): without it a batch could copy
//! a checkpoint while another batch, not yet committed, adds to it, and the copy would miss
//! that addition for good.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use sqlx::{Postgres, Transaction};

use super::counters::{CHANNEL, DAY, INTERACTIONS, OFFER, SEG, SELECTION_AND_BUCKETS, T};
use super::fan::{self, Deltas, Key};
use super::upsert::Table;
use crate::fold::keys::DayKey;
use crate::fold::selection::{ScoreCounts, SelectionCounts};
use crate::fold::{Delta, InteractionCounts};

/// The checkpoints of every chain, per view: `running_total_days`.
const DAYS: &str = "running_total_days";

/// A running-total view: its table (keys, then the counters the delta adds), and a column
/// derived in SQL from the day's row of a daily table as this batch left it.
struct View {
    table: &'static Table,
    derived: Option<Derived>,
}

/// A running sum over days of a function of each day's value (the sum of squares the revenue
/// z-score of anomaly_candidates needs): when a day's value goes from `n - w` to `n` (`n` the
/// daily row after this batch's upsert, `w` the delta), the sum changes by `f(n) - f(n - w)`.
struct Derived {
    column: &'static str,
    /// Keyed as the view, written before it in the same transaction (`counters`).
    daily: &'static str,
    /// The daily row's column read, as `n`.
    value: &'static str,
    /// `f(n) - f(n - w)` over that value `n` and the delta row `w`.
    change: &'static str,
}

static OFFER_TOTALS_TABLE: Table =
    Table { name: "interaction_offer_totals", keys: &[T, SEG, DAY, OFFER], counters: INTERACTIONS };
static OFFER_TOTALS: View = View {
    table: &OFFER_TOTALS_TABLE,
    derived: Some(Derived {
        column: "revenue_sq_micros",
        daily: "interaction_rollup_offer",
        value: "revenue_micros",
        change: "n * n - (n - w.revenue_micros) * (n - w.revenue_micros)",
    }),
};
static OFFER_CHANNEL_TOTALS_TABLE: Table =
    Table { name: "interaction_offer_channel_totals", keys: &[T, SEG, DAY, OFFER, CHANNEL], counters: INTERACTIONS };
static OFFER_CHANNEL_TOTALS: View = View { table: &OFFER_CHANNEL_TOTALS_TABLE, derived: None };
/// Per offer, all customers (segment `''`, with the score buckets) and each segment (summed over
/// channels and flows, migration `selection_segment_totals`; no score buckets).
static SELECTION_TOTALS_TABLE: Table =
    Table { name: "selection_offer_totals", keys: &[T, SEG, DAY, OFFER], counters: &SELECTION_AND_BUCKETS };
static SELECTION_TOTALS: View = View { table: &SELECTION_TOTALS_TABLE, derived: None };

/// The running-total views of a delta. The segment-scoped part of a batch is a second delta
/// written after the shared one in the same transaction; its tenants' locks are already held.
pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    // The rows borrow their values: built before them, dropped after.
    let joined = selection_by_offer(d);
    let offers: Deltas<'_> = d
        .rollup_offer
        .iter()
        .map(|(k, c)| (key(&k.tenant, &k.segment, k.day, vec![&k.dim]), interaction_values(c)))
        .collect();
    let offers = fan::rows(&OFFER_TOTALS_TABLE, &offers)?;
    let mut pairs: Deltas<'_> = Vec::with_capacity(d.interactions.len() + d.segment_interactions.len());
    for (k, c) in &d.interactions {
        pairs.push((key(&k.tenant, "", k.day, vec![&k.offer, &k.channel]), interaction_values(c)));
    }
    for (k, c) in &d.segment_interactions {
        pairs.push((key(&k.tenant, &k.segment, k.day, vec![&k.offer, &k.channel]), interaction_values(c)));
    }
    let mut selection: Deltas<'_> = Vec::new();
    for (k, offers) in &joined {
        for (offer, s, b) in offers {
            selection.push((key(&k.tenant, "", k.day, vec![offer]), selection_values(s, b)));
        }
    }
    for ((tenant, segment, day, offer), s) in segment_selection_by_offer(d) {
        selection.push((key(tenant, segment, day, vec![offer]), selection_values(&s, &ScoreCounts::default())));
    }
    // Every tenant of the per-offer rows has per-(offer, channel) rows too: one lock statement
    // for the interaction views. Trace batches lock their own class: the two pipelines of a
    // tenant do not wait for each other.
    for (class, deltas) in [("interaction totals", &pairs), ("selection totals", &selection)] {
        if !deltas.is_empty() {
            sqlx::query(&lock_tenants(class)).bind(fan::tenants(deltas)).execute(&mut **tx).await?;
        }
    }
    // The per-offer view adds in SQL: its derived column needs each day's value, in numeric.
    let table = OFFER_TOTALS.table;
    offers.execute(tx, &checkpoints_sql(&OFFER_TOTALS), 3).await?;
    offers.execute(tx, &add_sql(&OFFER_TOTALS), table.keys.len() + table.counters.len()).await?;
    for (view, deltas) in [(&OFFER_CHANNEL_TOTALS, &pairs), (&SELECTION_TOTALS, &selection)] {
        fan::add(tx, view.table, DAYS, &checkpoints_sql(view), deltas).await?;
    }
    Ok(())
}

/// Per (tenant, day), in key order: every offer's selection counters and score buckets (the
/// rows `selection_offer_totals` adds; `selection_daily` is a view of it).
type SelectionByOffer<'d> = Vec<(&'d DayKey, Vec<(&'d str, SelectionCounts, ScoreCounts)>)>;

fn selection_by_offer(d: &Delta) -> SelectionByOffer<'_> {
    let days: BTreeSet<&DayKey> = d.selection.keys().chain(d.offer_scores.keys()).collect();
    days.into_iter()
        .map(|k| {
            let selection = d.selection.get(k).map_or(&[][..], Vec::as_slice);
            (k, by_offer(selection, d.offer_scores.get(k).map_or(&[][..], Vec::as_slice)))
        })
        .collect()
}

/// The segments' selection counters per (tenant, segment, day, offer), summed over channels and
/// flows: the rows of the segments' chains of `selection_offer_totals`, which answer
/// selection_frequency and why_not_ranked with a segment and no channel or flow in two rows per
/// offer (the daily rows per (channel, flow, offer) grew with the data: 18-55 ms at 10M traces).
/// The fan-out would sum a segment's (channel, flow) rows of an offer too, but it allocates and
/// sorts one row per entry and checkpoint: summed here first, it gets one per offer.
fn segment_selection_by_offer(d: &Delta) -> BTreeMap<(&str, &str, NaiveDate, &str), SelectionCounts> {
    let mut out: BTreeMap<(&str, &str, NaiveDate, &str), SelectionCounts> = BTreeMap::new();
    for (k, c) in &d.selection_segments {
        out.entry((&k.tenant, &k.segment, k.day, &k.offer)).or_default().add(c);
    }
    out
}

/// The two lists (each sorted by offer id) joined by offer: every offer of either, the side
/// without it counted as zero. An offer with scores and no selection counters (which the fold
/// never makes) keeps its score sum and count in the selection counters' columns.
fn by_offer<'a>(
    selection: &'a [(String, SelectionCounts)],
    scores: &'a [(String, ScoreCounts)],
) -> Vec<(&'a str, SelectionCounts, ScoreCounts)> {
    let mut out = Vec::with_capacity(selection.len().max(scores.len()));
    let (mut i, mut j) = (0, 0);
    while i < selection.len() || j < scores.len() {
        let order = match (selection.get(i), scores.get(j)) {
            (Some(a), Some(b)) => a.0.as_bytes().cmp(b.0.as_bytes()),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                out.push((selection[i].0.as_str(), selection[i].1, ScoreCounts::default()));
                i += 1;
            }
            Ordering::Equal => {
                out.push((selection[i].0.as_str(), selection[i].1, scores[j].1));
                (i, j) = (i + 1, j + 1);
            }
            Ordering::Greater => {
                let (offer, b) = &scores[j];
                let s = SelectionCounts { score_sum_micros: b.sum_micros, score_n: b.n, ..Default::default() };
                out.push((offer.as_str(), s, *b));
                j += 1;
            }
        }
    }
    out
}

fn key<'a>(tenant: &'a str, segment: &'a str, day: NaiveDate, dims: Vec<&'a str>) -> Key<'a> {
    Key { tenant, segment, day, dims }
}

/// [`INTERACTIONS`]' values.
fn interaction_values(c: &InteractionCounts) -> Vec<i128> {
    let counts = [c.impressions, c.clicks, c.accepts, c.converts, c.rejects, c.dismisses];
    counts.into_iter().map(i128::from).chain([c.revenue_micros, c.cost_micros]).collect()
}

/// [`SELECTION_AND_BUCKETS`]' values: the buckets only after the selection counters, whose
/// score sum and count are the scores' (as in `selection_daily`).
fn selection_values(s: &SelectionCounts, b: &ScoreCounts) -> Vec<i128> {
    let head = [s.eligible, s.scored, s.selected, s.rank_sum, s.rank_n];
    let tail = [s.miss_qualification, s.miss_contact, s.miss_too_low, s.miss_not_ranked, s.score_sum_micros, s.score_n];
    let values: Vec<i64> = head.into_iter().chain(s.ranks).chain(tail).chain(b.buckets).collect();
    values.into_iter().map(i128::from).collect()
}

/// Locks the chains of the tenants of `$1` for one class of views, in tenant order (every
/// writer takes them in the same order, so two cannot deadlock on them). A transaction-scoped
/// advisory lock per tenant covers all its segments: every interaction counts in segment `''`,
/// so a batch writing a segment's chain writes its tenant's `''` chain as well, and writers of
/// a tenant already wait on each other for the rows of its current day.
pub(super) fn lock_tenants(class: &str) -> String {
    format!(
        "SELECT count(pg_advisory_xact_lock(hashtext('{class}'), hashtext(t)))
           FROM (SELECT DISTINCT t FROM unnest($1::text[]) t ORDER BY t) tenants"
    )
}

/// The key columns after (tenant, segment, day).
fn dims(table: &Table) -> Vec<&'static str> {
    table.keys[3..].iter().map(|(name, _)| *name).collect()
}

/// Creates the checkpoints of `$1`/`$2`/`$3` (tenant, segment, day) that do not exist, each as
/// a copy of its chain's latest earlier checkpoint (none: it starts empty). The copies read
/// the checkpoints as they were before this statement, so two new days of one batch copy the
/// same earlier day; the statement after adds the batch's counters to both.
fn checkpoints_sql(view: &View) -> String {
    let table = view.table;
    let name = table.name;
    let dims: Vec<String> = dims(table).iter().map(|d| format!("r.{d}")).collect();
    let copied: Vec<&str> =
        table.counters.iter().map(|(c, _)| *c).chain(view.derived.as_ref().map(|d| d.column)).collect();
    let counters: Vec<String> = copied.iter().map(|c| format!("r.{c}")).collect();
    let columns: Vec<&str> = table.keys.iter().map(|(c, _)| *c).chain(copied.iter().copied()).collect();
    format!(
        "{sources}
         INSERT INTO {name} ({columns})
         SELECT n.tenant_id, n.segment_id, n.day, {dims}, {counters}
           FROM sources n
           JOIN {name} r ON r.tenant_id = n.tenant_id AND r.segment_id = n.segment_id AND r.day = n.prev",
        sources = fan::new_checkpoints(DAYS, name),
        columns = columns.join(", "),
        dims = dims.join(", "),
        counters = counters.join(", "),
    )
}

/// Adds each delta row to its day's checkpoint and every later one of its chain. Rows of
/// several days of one key that meet on a checkpoint are summed first (an upsert may touch a
/// row once), and rows go in key order, the lock order of every view.
fn add_sql(view: &View) -> String {
    let table = view.table;
    let name = table.name;
    let delta: Vec<&str> = table.keys.iter().chain(table.counters).map(|(c, _)| *c).collect();
    let arrays: Vec<String> = table
        .keys
        .iter()
        .chain(table.counters)
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{}", i + 1, kind.array()))
        .collect();
    let mut sums: Vec<String> = table
        .counters
        .iter()
        .map(|(c, kind)| match kind {
            super::upsert::Kind::Money => format!("sum(w.{c})"),
            _ => format!("sum(w.{c})::int8"),
        })
        .collect();
    let mut counters: Vec<&str> = table.counters.iter().map(|(c, _)| *c).collect();
    let mut delta_rows = format!("SELECT * FROM unnest({}) AS w({})", arrays.join(", "), delta.join(", "));
    if let Some(d) = &view.derived {
        // The day's value read by primary key for each delta row (a scalar subquery: never
        // a scan of the daily table, whatever the plan). OFFSET 0 keeps the inner query a
        // subquery: pulled up, `n` would be the subquery itself, run once per mention (three
        // index probes a row instead of one).
        let on: Vec<String> = table.keys.iter().map(|(k, _)| format!("n.{k} = w.{k}")).collect();
        delta_rows = format!(
            "SELECT w.*, {change} AS {column}
               FROM (SELECT w.*, (SELECT n.{value} FROM {daily} n WHERE {on}) AS n FROM ({delta_rows}) w OFFSET 0) w",
            change = d.change,
            column = d.column,
            value = d.value,
            daily = d.daily,
            on = on.join(" AND "),
        );
        sums.push(format!("sum(w.{})", d.column));
        counters.push(d.column);
    }
    let dims: Vec<String> = dims(table).iter().map(|d| format!("w.{d}")).collect();
    let group = format!("w.tenant_id, w.segment_id, f.target, {}", dims.join(", "));
    let keys: Vec<&str> = table.keys.iter().map(|(c, _)| *c).collect();
    let columns: Vec<&str> = keys.iter().chain(&counters).copied().collect();
    let set: Vec<String> = counters.iter().map(|c| format!("{c} = t.{c} + EXCLUDED.{c}")).collect();
    // The checkpoints each (chain, day) of the delta reaches are looked up once per distinct
    // (chain, day), by index range, and joined to the delta rows by hash: whatever the plan,
    // never a scan of every checkpoint per row.
    format!(
        "WITH w AS MATERIALIZED ({delta_rows}),
              fan AS MATERIALIZED (
                  SELECT k.tenant_id, k.segment_id, k.day, c.day AS target
                    FROM (SELECT DISTINCT tenant_id, segment_id, day FROM w) k
                    JOIN LATERAL (SELECT c.day FROM {DAYS} c
                                   WHERE c.view = '{name}' AND c.tenant_id = k.tenant_id
                                     AND c.segment_id = k.segment_id AND c.day >= k.day OFFSET 0) c ON true)
         INSERT INTO {name} AS t ({columns})
         SELECT {group}, {sums}
           FROM w JOIN fan f ON f.tenant_id = w.tenant_id AND f.segment_id = w.segment_id AND f.day = w.day
          GROUP BY {group}
          ORDER BY {group}
         ON CONFLICT ({keys}) DO UPDATE SET {set}",
        columns = columns.join(", "),
        sums = sums.join(", "),
        keys = keys.join(", "),
        set = set.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statements_name_every_column_once() {
        let add = add_sql(&OFFER_CHANNEL_TOTALS);
        assert!(add.contains("GROUP BY w.tenant_id, w.segment_id, f.target, w.offer_id, w.channel_id"), "{add}");
        assert!(add.contains("sum(w.revenue_micros), sum(w.cost_micros)"), "{add}");
        assert!(add.contains("ON CONFLICT (tenant_id, segment_id, day, offer_id, channel_id)"), "{add}");
        let copy = checkpoints_sql(&OFFER_TOTALS);
        assert!(copy.contains("SELECT n.tenant_id, n.segment_id, n.day, r.offer_id, r.impressions"), "{copy}");
        assert!(copy.contains("r.cost_micros, r.revenue_sq_micros"), "{copy}");
        let add = add_sql(&OFFER_TOTALS);
        assert!(
            add.contains("FROM interaction_rollup_offer n WHERE n.tenant_id = w.tenant_id AND n.segment_id"),
            "{add}"
        );
        assert!(add.contains("revenue_sq_micros = t.revenue_sq_micros + EXCLUDED.revenue_sq_micros"), "{add}");
    }
}
