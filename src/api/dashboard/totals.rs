//! Window sums from the running totals (migration `running_totals`): per (tenant, segment)
//! chain, checkpoints at the days that had events, each holding every key's counters summed up
//! to that day. A window's sums are the latest checkpoint up to its last day minus the latest
//! before its first: two rows per key whatever the window's length (`consumers::apply::running`
//! writes them). Below the types (they import it); it imports nothing of theirs.

/// A running-total view: its table, its keys after (tenant, segment, day), its counters, and
/// the expression that counts a row's events (a key is in a window when it had events there, as
/// a daily row exists only for a day with events); `None`: every key of the checkpoints.
pub struct Totals {
    table: &'static str,
    keys: &'static [&'static str],
    counters: &'static [&'static str],
    events: Option<&'static str>,
}

const INTERACTIONS: &[&str] =
    &["impressions", "clicks", "accepts", "converts", "rejects", "dismisses", "revenue_micros", "cost_micros"];
const INTERACTION_EVENTS: Option<&str> = Some("impressions + clicks + accepts + converts + rejects + dismisses");

/// `interaction_offer_totals`, per offer.
pub const OFFER_INTERACTIONS: Totals = Totals {
    table: "interaction_offer_totals",
    keys: &["offer_id"],
    counters: INTERACTIONS,
    events: INTERACTION_EVENTS,
};

/// `interaction_offer_channel_totals`, per (offer, channel).
pub const OFFER_CHANNEL_INTERACTIONS: Totals = Totals {
    table: "interaction_offer_channel_totals",
    keys: &["offer_id", "channel_id"],
    counters: INTERACTIONS,
    events: INTERACTION_EVENTS,
};

/// `selection_offer_totals`, per offer: the columns of `selection_daily` (selection counters
/// and score buckets). Chain `''` only ([`ALL_CUSTOMERS`]). Every offer ever a candidate has a
/// row, with zeros when it was none in the window: the reads filter on their own counters.
pub const OFFER_SELECTION: Totals = Totals {
    table: "selection_offer_totals",
    keys: &["offer_id"],
    counters: &[
        "eligible",
        "scored",
        "selected",
        "rank_sum",
        "rank_n",
        "r1",
        "r2",
        "r3",
        "r4",
        "r5",
        "r6",
        "r7",
        "r8",
        "r9",
        "r10",
        "miss_qualification",
        "miss_contact",
        "miss_too_low",
        "miss_not_ranked",
        "score_sum_micros",
        "score_n",
        "b0",
        "b1",
        "b2",
        "b3",
        "b4",
        "b5",
        "b6",
        "b7",
        "b8",
        "b9",
    ],
    events: None,
};

/// The chain of the read's segment scope: `$4`, or segment `''` (all customers) when NULL.
pub const SCOPE_CHAIN: &str = "SELECT COALESCE($4::text, '') AS segment_id";

/// The all-customers chain.
pub const ALL_CUSTOMERS: &str = "SELECT ''::text AS segment_id";

/// The window's sums of `counters` (some of the view's), one row per segment and key (with
/// events in the window, when the view counts them): `FROM (…) totals`, columns `segment_id`,
/// the keys, then `counters` (numeric: cast as the answer needs). `chains` is a query returning
/// `segment_id`s; `$1` tenant, `$2`/`$3` first/last day.
///
/// Per chain, two checkpoints: hi, the latest up to the last day, and lo, the latest before the
/// first; a key's window is its hi row minus its lo row (none: zeros), summed from both rows
/// with opposite signs. Measured alternatives (BENCHMARKS.md "Reads, first pass"): one join on
/// `day IN (hi, lo)` scanned every row of the tenant (45 ms for 20 segments, against 3.5 ms
/// with the checkpoints found first in a materialized CTE and each read by its primary key);
/// a join of each hi row to its lo row made 1,200 index probes (10-14 ms at 1M traces for
/// (offer, channel), against 4 ms). Without a checkpoint in the window (hi < first day, so
/// hi = lo) a chain's rows cancel out and it is skipped.
pub fn totals_source(view: &Totals, chains: &str, counters: &[&str]) -> String {
    let Totals { table, keys, events, .. } = view;
    debug_assert!(counters.iter().all(|c| view.counters.contains(c)), "{table} has no {counters:?}");
    let plus: Vec<String> = counters.iter().map(|c| format!("r.{c}")).collect();
    let minus: Vec<String> = counters.iter().map(|c| format!("-r.{c}")).collect();
    let sums: Vec<String> = counters.iter().map(|c| format!("sum(x.{c}) AS {c}")).collect();
    let keys_r: Vec<String> = keys.iter().map(|k| format!("r.{k}")).collect();
    let keys_x: Vec<String> = keys.iter().map(|k| format!("x.{k}")).collect();
    let events_r = events.map(|e| e.split(" + ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(" + "));
    let checkpoint = |bound: &str| {
        format!(
            "(SELECT max(d.day) FROM running_total_days d
               WHERE d.view = '{table}' AND d.tenant_id = $1 AND d.segment_id = s.segment_id AND d.day {bound})"
        )
    };
    let rows = |day: &str, values: &[String], sign: &str| {
        let events = events_r.as_ref().map(|e| format!(", {sign}({e}) AS events")).unwrap_or_default();
        format!(
            "SELECT r.segment_id, {keys}, {values}{events} FROM {table} r
              WHERE r.tenant_id = $1 AND r.segment_id = c.segment_id AND r.day = c.{day}",
            keys = keys_r.join(", "),
            values = values.join(", "),
        )
    };
    let having = if events.is_some() { "HAVING sum(x.events) <> 0" } else { "" };
    format!(
        "FROM (WITH c AS MATERIALIZED (SELECT s.segment_id, {hi} AS hi, {lo} AS lo FROM ({chains}) s)
               SELECT x.segment_id, {keys_x}, {sums}
                 FROM c CROSS JOIN LATERAL ({plus} UNION ALL {minus}) x
                WHERE c.hi >= $2
                GROUP BY x.segment_id, {keys_x}
               {having}) totals",
        hi = checkpoint("<= $3"),
        lo = checkpoint("< $2"),
        keys_x = keys_x.join(", "),
        sums = sums.join(", "),
        plus = rows("hi", &plus, "+"),
        minus = rows("lo", &minus, "-"),
    )
}
