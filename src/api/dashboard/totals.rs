//! Window sums from the running totals (migrations `running_totals`, `selection_offer_totals`,
//! `interaction_segment_totals`): per (tenant, segment) chain, checkpoints at the days that had
//! events, each holding every key's counters summed up to that day. A window's sums are the
//! latest checkpoint up to its last day minus the latest before its first: two rows per key
//! whatever the window's length (`consumers::apply::running` writes them), or two wide rows per
//! segment ([`segment_offers`]; `consumers::apply::wide`). Below the types (they import it);
//! it imports nothing of theirs but `read`'s toolkit.

use sqlx::PgPool;

use super::read::{fetch_window, Params, SegmentScope};
use crate::api::error::ApiResult;
use consumers::units::wide::offer_interactions::{OfferInteractions, COUNTERS as OFFER_COUNTERS};
use consumers::units::wide::Sums;

/// A running-total view: its table, its keys after (tenant, segment, day), its counters, and
/// the expression that counts a row's events (a key is in a window when it had events there, as
/// a daily row exists only for a day with events); `None`: every key of the checkpoints.
pub struct Totals {
    table: &'static str,
    keys: &'static [&'static str],
    counters: &'static [&'static str],
    events: Option<&'static [&'static str]>,
}

const INTERACTIONS: &[&str] =
    &["impressions", "clicks", "accepts", "converts", "rejects", "dismisses", "revenue_micros", "cost_micros"];
/// Each interaction adds one to exactly one of these.
const INTERACTION_EVENTS: Option<&[&str]> =
    Some(&["impressions", "clicks", "accepts", "converts", "rejects", "dismisses"]);

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
/// and score buckets). Chain `''` ([`ALL_CUSTOMERS`]) and one per segment, whose score buckets
/// are zero (migration `selection_segment_totals`). Every offer ever a candidate has a row,
/// with zeros when it was none in the window: the reads filter on their own counters.
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

impl Totals {
    /// Every counter of the view.
    pub fn counters(&self) -> &'static [&'static str] {
        self.counters
    }
}

/// The chain of the read's segment scope: `$4`, or segment `''` (all customers) when NULL.
pub const SCOPE_CHAIN: &str = "SELECT COALESCE($4::text, '') AS segment_id";

/// The all-customers chain.
pub const ALL_CUSTOMERS: &str = "SELECT ''::text AS segment_id";

/// The window's sums of `counters` (some of the view's), one row per segment and key (with
/// events in the window, when the view counts them): `FROM (…) totals`, columns `segment_id`,
/// the keys, then `counters` (cast as the answer needs). `chains` is a query returning
/// `segment_id`s; `$1` tenant, `$2`/`$3` first/last day.
///
/// Per chain, two checkpoints: hi, the latest up to the last day, and lo, the latest before the
/// first. Every key at lo has a row at hi (a checkpoint holds every key seen up to it), so a
/// key's window is its hi row minus its lo row (none: zeros): per chain, the two checkpoints'
/// rows (each read by primary key) hash-joined on the keys. Measured alternatives, at 1M
/// traces (BENCHMARKS.md "Reads, first pass"): one join of all chains on `day IN (hi, lo)`
/// scanned every row of the tenant (45 ms for 20 segments); both rows summed with opposite
/// signs and grouped by key sorted them all (15.6 ms for 20 segments over 30 days, against
/// 6.5 here; 4 ms for 1,200 (offer, channel) keys, against 3.5); a join of every hi row to its
/// lo row across chains made one index probe per key (10-14 ms for 1,200 keys). Without a
/// checkpoint in the window (hi < first day, so hi = lo) a chain is skipped.
pub fn totals_source(view: &Totals, chains: &str, counters: &[&str]) -> String {
    let Totals { table, keys, events, .. } = view;
    debug_assert!(counters.iter().all(|c| view.counters.contains(c)), "{table} has no {counters:?}");
    let mut values: Vec<String> = keys.iter().map(|k| format!("h.{k}")).collect();
    values.extend(counters.iter().map(|c| format!("h.{c} - COALESCE(l.{c}, 0) AS {c}")));
    let in_window = match events {
        Some(e) => {
            let (h, l): (Vec<String>, Vec<String>) = e.iter().map(|c| (format!("h.{c}"), format!("l.{c}"))).unzip();
            values.push(format!("{} - COALESCE({}, 0) AS events", h.join(" + "), l.join(" + ")));
            "AND x.events <> 0"
        }
        None => "",
    };
    let rows = |day: &str| {
        format!("(SELECT * FROM {table} r WHERE r.tenant_id = $1 AND r.segment_id = c.segment_id AND r.day = c.{day})")
    };
    format!(
        "FROM (WITH c AS MATERIALIZED (SELECT s.segment_id, {hi} AS hi, {lo} AS lo FROM ({chains}) s)
               SELECT c.segment_id, x.*
                 FROM c CROSS JOIN LATERAL (
                      SELECT x.*
                        FROM (SELECT {values} FROM {h} h LEFT JOIN {l} l USING ({keys})) x
                       WHERE true {in_window}) x
                WHERE c.hi >= $2) totals",
        hi = checkpoint(table, "s.segment_id", "<= $3"),
        lo = checkpoint(table, "s.segment_id", "< $2"),
        values = values.join(", "),
        h = rows("hi"),
        l = rows("lo"),
        keys = keys.join(", "),
    )
}

/// The latest checkpoint of `view`'s chain `segment` (an SQL expression) of tenant `$1` whose
/// day is `bound` (`<= $3`: a window's hi; `< $2`: its lo), as a scalar subquery.
pub fn checkpoint(view: &str, segment: &str, bound: &str) -> String {
    format!(
        "(SELECT max(d.day) FROM running_total_days d
           WHERE d.view = '{view}' AND d.tenant_id = $1 AND d.segment_id = {segment} AND d.day {bound})"
    )
}

/// One segment's offers with interactions in a window, in id order.
pub struct SegmentOffers {
    pub segment_id: String,
    pub offers: Vec<(String, OfferInteractions)>,
}

/// Each segment of `chains` (a query returning `segment_id`s, `$1` tenant, `$4` the request's
/// segment) over the window, from `interaction_segment_totals` (migration of that name): a
/// chain per segment whose checkpoints are one wide row each, every offer's counters up to its
/// day in it. A window is the latest checkpoint up to its last day minus the latest before its
/// first: two rows per segment, summed here, where `totals_source` over the same chains of
/// `interaction_offer_totals` reads two rows per (segment, offer) (grouped by segment at 10M
/// traces: ~6,400 rows, 4.6-4.8 ms in PostgreSQL; BENCHMARKS.md "Reads, fourth pass").
/// Segments without a checkpoint in the window are left out.
pub async fn segment_offers(
    pool: &PgPool,
    tenant: &str,
    p: &Params,
    scope: &SegmentScope,
    chains: &str,
) -> ApiResult<Vec<SegmentOffers>> {
    // No checkpoint within the window (hi before its first day, so hi = lo): no row. Each
    // checkpoint is read by its whole primary key: joined on `day IN (hi, lo)`, the plan
    // probed (tenant, segment) and filtered every checkpoint of the chain (61 rows a segment
    // at 1M traces over 90 days, 1,200 heap blocks for 20 segments).
    let sql = format!(
        "WITH c AS MATERIALIZED (SELECT s.segment_id, {hi} AS hi, {lo} AS lo FROM ({chains}) s)
         SELECT c.segment_id, h.offers, l.offers
           FROM c CROSS JOIN LATERAL (
                    SELECT f.offers FROM interaction_segment_totals f
                     WHERE f.tenant_id = $1 AND f.segment_id = c.segment_id AND f.day = c.hi) h
           LEFT JOIN LATERAL (
                    SELECT f.offers FROM interaction_segment_totals f
                     WHERE f.tenant_id = $1 AND f.segment_id = c.segment_id AND f.day = c.lo) l ON true
          WHERE c.hi >= $2
          ORDER BY c.segment_id",
        hi = checkpoint("interaction_segment_totals", "s.segment_id", "<= $3"),
        lo = checkpoint("interaction_segment_totals", "s.segment_id", "< $2"),
    );
    let chains: Vec<(String, Vec<u8>, Option<Vec<u8>>)> = fetch_window(pool, &sql, tenant, p, scope).await?;
    let mut out = Vec::with_capacity(chains.len());
    for (segment_id, hi, lo) in chains {
        let mut sums = Sums::<OFFER_COUNTERS>::default();
        sums.add(&hi, |_| true).map_err(anyhow::Error::from)?;
        if let Some(lo) = lo {
            sums.subtract(&lo, |_| true).map_err(anyhow::Error::from)?;
        }
        let mut offers = Vec::new();
        for (offer_id, c) in sums.into_sorted() {
            let o = OfferInteractions::from_counters(c)
                .ok_or_else(|| anyhow::anyhow!("segment {segment_id}: revenue of {offer_id} out of range"))?;
            if o.events != 0 {
                offers.push((offer_id, o));
            }
        }
        out.push(SegmentOffers { segment_id, offers });
    }
    Ok(out)
}
