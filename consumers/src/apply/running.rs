//! Running totals (migration `running_totals`): per (tenant, segment) chain, checkpoints at
//! the days that had events, each holding every key's counters summed up to that day, so a
//! window's sums are two rows per key (the latest checkpoint ≤ its last day minus the latest
//! before its first day) whatever its length. The views here: per offer and per (offer,
//! channel) interactions, and per chain the traces (migration `trace_totals`, no key after the
//! chain's). The per-offer selection counters are such a chain of wide rows
//! (`selection_chains`, `wide_chains`).
//!
//! A batch writes a view in three statements: it locks its tenants' chains; it creates the
//! checkpoints it needs, each a copy of the latest earlier one; then it adds every delta row
//! to its day's checkpoint and to each later one (in SQL for the per-offer view, whose
//! derived column needs each day's value; fanned out and summed in Rust for the others,
//! `fan`). The lock is what keeps this exact under concurrent writers (several
//! partitions, several processes): without it a batch could copy a checkpoint while another
//! batch, not yet committed, adds to it, and the copy would miss that addition for good.

use chrono::NaiveDate;

use sqlx::{Postgres, Transaction};

use super::counters::{CHANNEL, DAY, INTERACTIONS, OFFER, SEG, T, TRACES};
use super::fan::{self, Deltas, Key};
use super::upsert::Table;
use crate::fold::{Delta, InteractionCounts, TraceCounts};

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
/// All customers' chain (segment ''); the segments' are `interaction_segment_channel_totals`.
static OFFER_CHANNEL_TOTALS_TABLE: Table =
    Table { name: "interaction_offer_channel_totals", keys: &[T, SEG, DAY, OFFER, CHANNEL], counters: INTERACTIONS };
static OFFER_CHANNEL_TOTALS: View = View { table: &OFFER_CHANNEL_TOTALS_TABLE, derived: None };
/// Traces per chain (migration `trace_totals`), summed over channels and flows.
static TRACE_TOTALS_TABLE: Table = Table { name: "trace_totals", keys: &[T, SEG, DAY], counters: TRACES };
static TRACE_TOTALS: View = View { table: &TRACE_TOTALS_TABLE, derived: None };

/// The running-total views of a delta. The segment-scoped part of a batch is a second delta
/// written after the shared one in the same transaction; its tenants' locks are already held.
pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    let offers: Deltas<'_> = d
        .rollup_offer
        .iter()
        .map(|(k, c)| (key(&k.tenant, &k.segment, k.day, vec![&k.dim]), interaction_values(c)))
        .collect();
    let offers = fan::rows(&OFFER_TOTALS_TABLE, &offers)?;
    // All customers' chain only: the segments' per-(offer, channel) chains are wide rows
    // (`wide_chains::SEGMENT_CHANNELS`).
    let pairs: Deltas<'_> = d
        .interactions
        .iter()
        .map(|(k, c)| (key(&k.tenant, "", k.day, vec![&k.offer, &k.channel]), interaction_values(c)))
        .collect();
    // Every tenant of the per-offer rows has per-(offer, channel) rows of all customers too
    // (every interaction counts in segment ''): one lock statement for the interaction views. Trace batches lock their own class (`wide_chains`): the two
    // pipelines of a tenant do not wait for each other.
    if !pairs.is_empty() {
        sqlx::query(&lock_tenants("interaction totals")).bind(fan::tenants(&pairs)).execute(&mut **tx).await?;
    }
    // The per-offer view adds in SQL: its derived column needs each day's value, in numeric.
    let table = OFFER_TOTALS.table;
    offers.execute(tx, &checkpoints_sql(&OFFER_TOTALS), 3).await?;
    offers.execute(tx, &add_sql(&OFFER_TOTALS), table.keys.len() + table.counters.len()).await?;
    let view = &OFFER_CHANNEL_TOTALS;
    fan::add(tx, view.table, DAYS, &checkpoints_sql(view), &pairs).await?;
    apply_traces(tx, d).await
}

/// The traces' counts per chain: all customers' from the (day, channel, flow) rows, each
/// segment's from its own (a batch's rows of one chain and day are summed in `fan`). Under the
/// lock of the trace pipeline's chains (`wide_chains`), taken here for every tenant with
/// traces: the wide selection chains written after it lock a subset of them.
async fn apply_traces(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    let values = |c: &TraceCounts| vec![i128::from(c.traces), i128::from(c.degraded)];
    let mut traces: Deltas<'_> = Vec::with_capacity(d.traces.len() + d.segment_traces.len());
    traces.extend(d.traces.iter().map(|(k, c)| (key(&k.tenant, "", k.day, Vec::new()), values(c))));
    traces.extend(d.segment_traces.iter().map(|(k, c)| (key(&k.tenant, &k.segment, k.day, Vec::new()), values(c))));
    if traces.is_empty() {
        return Ok(());
    }
    sqlx::query(&lock_tenants("selection totals")).bind(fan::tenants(&traces)).execute(&mut **tx).await?;
    let view = &TRACE_TOTALS;
    fan::add(tx, view.table, DAYS, &checkpoints_sql(view), &traces).await
}

fn key<'a>(tenant: &'a str, segment: &'a str, day: NaiveDate, dims: Vec<&'a str>) -> Key<'a> {
    Key { tenant, segment, day, dims }
}

/// [`INTERACTIONS`]' values.
fn interaction_values(c: &InteractionCounts) -> Vec<i128> {
    let counts = [c.impressions, c.clicks, c.accepts, c.converts, c.rejects, c.dismisses];
    counts.into_iter().map(i128::from).chain([c.revenue_micros, c.cost_micros]).collect()
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
    let copied: Vec<&str> = dims(table)
        .into_iter()
        .chain(table.counters.iter().map(|(c, _)| *c))
        .chain(view.derived.as_ref().map(|d| d.column))
        .collect();
    let values: Vec<String> = copied.iter().map(|c| format!("r.{c}")).collect();
    let columns: Vec<&str> = table.keys[..3].iter().map(|(c, _)| *c).chain(copied.iter().copied()).collect();
    format!(
        "{sources}
         INSERT INTO {name} ({columns})
         SELECT n.tenant_id, n.segment_id, n.day, {values}
           FROM sources n
           JOIN {name} r ON r.tenant_id = n.tenant_id AND r.segment_id = n.segment_id AND r.day = n.prev",
        sources = fan::new_checkpoints(DAYS, name),
        columns = columns.join(", "),
        values = values.join(", "),
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
        // No key after the chain's: the copy lists the counters alone.
        let copy = checkpoints_sql(&TRACE_TOTALS);
        assert!(copy.contains("INSERT INTO trace_totals (tenant_id, segment_id, day, traces, degraded)"), "{copy}");
        assert!(copy.contains("SELECT n.tenant_id, n.segment_id, n.day, r.traces, r.degraded\n"), "{copy}");
    }
}
