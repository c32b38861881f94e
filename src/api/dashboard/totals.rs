//! Window sums from the running totals (migrations `running_totals`,
//! `interaction_segment_totals`, `wide_selection_offer_totals`, `trace_totals`,
//! `wide_segment_channel_totals`): per (tenant, segment) chain,
//! checkpoints at the days that had events, each holding every key's counters summed up to that
//! day. A window's sums are the latest checkpoint up to its last day minus the latest before its
//! first: two rows per key whatever the window's length (`consumers::apply::running` writes
//! them), or two wide rows per segment ([`segment_offers`], [`offer_selection`];
//! `consumers::apply::wide`). Below the types (they import it);
//! it imports nothing of theirs but `read`'s toolkit.

use sqlx::PgPool;

use super::read::{fetch_window, Params, SegmentScope};
use crate::api::error::ApiResult;
use crate::api::window::Window;
use consumers::units::wide::interaction_counts::{self, COUNTERS as CHANNEL_COUNTERS};
use consumers::units::wide::offer_interactions::{OfferInteractions, COUNTERS as OFFER_COUNTERS};
use consumers::units::wide::offer_selection::{OfferSelection, COUNTERS as SELECTION_COUNTERS};
use consumers::units::wide::{difference, Sums};

/// A running-total view: its table, its keys after (tenant, segment, day), its counters, and
/// the counters whose sum counts a row's events (a key is in a window when it had events there,
/// as a daily row exists only for a day with events).
pub struct Totals {
    table: &'static str,
    keys: &'static [&'static str],
    counters: &'static [&'static str],
    events: &'static [&'static str],
}

const INTERACTIONS: &[&str] =
    &["impressions", "clicks", "accepts", "converts", "rejects", "dismisses", "revenue_micros", "cost_micros"];
/// Each interaction adds one to exactly one of these.
const INTERACTION_EVENTS: &[&str] = &["impressions", "clicks", "accepts", "converts", "rejects", "dismisses"];

/// `interaction_offer_totals`, per offer.
pub const OFFER_INTERACTIONS: Totals = Totals {
    table: "interaction_offer_totals",
    keys: &["offer_id"],
    counters: INTERACTIONS,
    events: INTERACTION_EVENTS,
};

/// `interaction_offer_channel_totals`, per (offer, channel): all customers' chain only (the
/// segments' are wide rows, [`segment_channel_offers`]).
pub const OFFER_CHANNEL_INTERACTIONS: Totals = Totals {
    table: "interaction_offer_channel_totals",
    keys: &["offer_id", "channel_id"],
    counters: INTERACTIONS,
    events: INTERACTION_EVENTS,
};

/// The chain of the read's segment scope: `$4`, or segment `''` (all customers) when NULL.
pub const SCOPE_CHAIN: &str = "SELECT COALESCE($4::text, '') AS segment_id";

/// The window's sums of `counters` (some of the view's), one row per segment and key with
/// events in the window: `FROM (…) totals`, columns `segment_id`,
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
    let (h, l): (Vec<String>, Vec<String>) = events.iter().map(|c| (format!("h.{c}"), format!("l.{c}"))).unzip();
    values.push(format!("{} - COALESCE({}, 0) AS events", h.join(" + "), l.join(" + ")));
    let rows = |day: &str| {
        format!("(SELECT * FROM {table} r WHERE r.tenant_id = $1 AND r.segment_id = c.segment_id AND r.day = c.{day})")
    };
    format!(
        "FROM (WITH c AS MATERIALIZED (SELECT s.segment_id, {hi} AS hi, {lo} AS lo FROM ({chains}) s)
               SELECT c.segment_id, x.*
                 FROM c CROSS JOIN LATERAL (
                      SELECT x.*
                        FROM (SELECT {values} FROM {h} h LEFT JOIN {l} l USING ({keys})) x
                       WHERE x.events <> 0) x
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

/// The rows of chain `$4` of tenant `$1` in `table` at a window's two checkpoints (`$2`/`$3`
/// its first/last day), each led by whether it is the later one (hi) and followed by `columns`
/// of `f`: the checkpoints found first, then their rows read by the primary key's (tenant,
/// segment, day) prefix (`day IN (hi, lo)` can be planned as a scan of the chain's every
/// checkpoint). No checkpoint within the window (hi before its first day, so hi = lo): none.
fn window_rows(table: &str, columns: &str) -> String {
    let side = |hi: bool, day: &str| {
        format!(
            "SELECT {hi}, {columns} FROM c JOIN {table} f
                 ON f.tenant_id = $1 AND f.segment_id = $4 AND f.day = c.{day}
              WHERE c.hi >= $2"
        )
    };
    format!(
        "WITH c AS MATERIALIZED (SELECT {hi} AS hi, {lo} AS lo) {} UNION ALL {}",
        side(true, "hi"),
        side(false, "lo"),
        hi = checkpoint(table, "$4", "<= $3"),
        lo = checkpoint(table, "$4", "< $2"),
    )
}

/// One segment's window in `interaction_segment_totals`: the values of its two checkpoints.
pub struct SegmentWindow {
    pub segment_id: String,
    hi: Vec<u8>,
    lo: Option<Vec<u8>>,
}

impl SegmentWindow {
    /// The offers with interactions in the window, in id order, ids borrowed from the values.
    pub fn offers(&self) -> ApiResult<Vec<(&str, OfferInteractions)>> {
        let segment = &self.segment_id;
        let mut offers = Vec::new();
        for (offer_id, c) in difference::<OFFER_COUNTERS>(&self.hi, self.lo.as_deref()).map_err(anyhow::Error::from)? {
            let o = OfferInteractions::from_counters(c)
                .ok_or_else(|| anyhow::anyhow!("segment {segment}: revenue of {offer_id} out of range"))?;
            if o.events != 0 {
                offers.push((offer_id, o));
            }
        }
        Ok(offers)
    }
}

/// Each segment of `chains` (a query returning `segment_id`s, `$1` tenant, `$4` the request's
/// segment) over the window, from `interaction_segment_totals` (migration of that name): a
/// chain per segment whose checkpoints are one wide row each, every offer's counters up to its
/// day in it. A window is the latest checkpoint up to its last day minus the latest before its
/// first: two rows per segment, diffed here, where `totals_source` over the same chains of
/// `interaction_offer_totals` reads two rows per (segment, offer) (grouped by segment at 10M
/// traces: ~6,400 rows, 4.6-4.8 ms in PostgreSQL; BENCHMARKS.md "Reads, fourth pass").
/// Segments without a checkpoint in the window are left out; the rest in id order.
pub async fn segment_windows(
    pool: &PgPool,
    tenant: &str,
    p: &Params,
    scope: &SegmentScope,
    chains: &str,
) -> ApiResult<Vec<SegmentWindow>> {
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
    Ok(chains.into_iter().map(|(segment_id, hi, lo)| SegmentWindow { segment_id, hi, lo }).collect())
}

/// The offers of the read's segment ([`SCOPE_CHAIN`]) with interactions in the window, owned,
/// in id order ([`segment_windows`]).
pub async fn segment_offers(
    pool: &PgPool,
    tenant: &str,
    p: &Params,
    scope: &SegmentScope,
) -> ApiResult<Vec<(String, OfferInteractions)>> {
    let mut out = Vec::new();
    for w in segment_windows(pool, tenant, p, scope, SCOPE_CHAIN).await? {
        out.extend(w.offers()?.into_iter().map(|(id, o)| (id.to_owned(), o)));
    }
    Ok(out)
}

/// One chain's offers over the window (`segment` `""`: all customers), from
/// `selection_chain_totals` (migration `wide_selection_offer_totals`): every offer's selection
/// counters and score buckets, in id order, those `keep` accepts. Two wide rows, whatever the
/// window's length and however many offers the chain has seen, where the narrow running totals
/// read two rows per offer (BENCHMARKS.md "Reads, sixth pass"). Every offer ever a candidate of
/// the chain is in its checkpoints: with zeros when it was none in the window (the reads filter
/// on their own counters). No checkpoint within the window (hi before its first day, so
/// hi = lo): none.
pub async fn offer_selection(
    pool: &PgPool,
    tenant: &str,
    w: &Window,
    segment: &str,
    keep: impl Fn(&str) -> bool,
) -> ApiResult<Vec<(String, OfferSelection)>> {
    let sql = window_rows("selection_chain_totals", "f.offers");
    let values: Vec<(bool, Vec<u8>)> =
        sqlx::query_as(&sql).bind(tenant).bind(w.since()).bind(w.today).bind(segment).fetch_all(pool).await?;
    let mut sums = Sums::<SELECTION_COUNTERS>::default();
    for (hi, value) in values {
        if hi { sums.add(&value, &keep) } else { sums.subtract(&value, &keep) }.map_err(anyhow::Error::from)?;
    }
    sums.into_sorted()
        .into_iter()
        .map(|(offer_id, c)| {
            let o = OfferSelection::from_counters(&c)
                .ok_or_else(|| anyhow::anyhow!("segment {segment:?}: score sum of {offer_id} out of range"))?;
            Ok((offer_id, o))
        })
        .collect()
}

/// One chain's traces over the window (`segment` `""`: all customers), from `trace_totals`
/// (migration of that name): the latest checkpoint up to the window's last day minus the
/// latest before its first, each probed by its whole primary key. The daily tables it replaces
/// here held a row per (day, channel, flow): 1,724 rows for a segment over 90 days at 10M
/// traces (BENCHMARKS.md "Reads, sixth pass"). No checkpoint up to the last day: 0.
pub async fn chain_traces(pool: &PgPool, tenant: &str, w: &Window, segment: &str) -> ApiResult<i64> {
    let at = |bound: &str| {
        format!(
            "COALESCE((SELECT t.traces FROM trace_totals t
                        WHERE t.tenant_id = $1 AND t.segment_id = $4 AND t.day = {}), 0)",
            checkpoint("trace_totals", "$4", bound)
        )
    };
    let sql = format!("SELECT {} - {}", at("<= $3"), at("< $2"));
    let traces =
        sqlx::query_scalar(&sql).bind(tenant).bind(w.since()).bind(w.today).bind(segment).fetch_one(pool).await?;
    Ok(traces)
}

/// One offer's interactions on one channel over a window.
pub struct ChannelOffer {
    pub channel_id: String,
    pub offer_id: String,
    /// impressions, clicks, accepts, converts, rejects, dismisses.
    pub counts: interaction_counts::Counts,
    pub revenue_micros: i128,
}

/// A segment's offers per channel with interactions in the window, in (channel, offer) order,
/// from `interaction_segment_channel_totals` (migration `wide_segment_channel_totals`): at each
/// of the window's two checkpoints a row per channel the segment had seen, every offer's
/// counters in it, where the narrow chain read two rows per (offer, channel) (2,236 at 10M
/// traces, BENCHMARKS.md "Reads, sixth pass"). No checkpoint within the window: none.
pub async fn segment_channel_offers(
    pool: &PgPool,
    tenant: &str,
    w: &Window,
    segment: &str,
) -> ApiResult<Vec<ChannelOffer>> {
    let sql = window_rows("interaction_segment_channel_totals", "f.channel_id, f.offers");
    let values: Vec<(bool, String, Vec<u8>)> =
        sqlx::query_as(&sql).bind(tenant).bind(w.since()).bind(w.today).bind(segment).fetch_all(pool).await?;
    let mut by_channel: std::collections::BTreeMap<String, Sums<CHANNEL_COUNTERS>> = Default::default();
    for (hi, channel, value) in values {
        let sums = by_channel.entry(channel).or_default();
        if hi { sums.add(&value, |_| true) } else { sums.subtract(&value, |_| true) }.map_err(anyhow::Error::from)?;
    }
    let mut out = Vec::new();
    for (channel_id, sums) in by_channel {
        for (offer_id, c) in sums.into_sorted() {
            let (counts, [revenue_micros, _]) = interaction_counts::from_counters(c).ok_or_else(|| {
                anyhow::anyhow!("segment {segment}: revenue of {offer_id} on {channel_id} out of range")
            })?;
            // An offer is in the window when it had interactions there.
            if counts.iter().any(|&n| n != 0) {
                out.push(ChannelOffer { channel_id: channel_id.clone(), offer_id, counts, revenue_micros });
            }
        }
    }
    Ok(out)
}
