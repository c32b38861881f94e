//! `selection_frequency`: per offer, how often it was eligible, scored and selected in the
//! window's traces, with rank figures (docs/dashboard-types.md 5.1). Every trace counts (no sample cap).
//!
//! The read picks the smallest table that covers the filters (migrations `selection`,
//! `selection_flow_totals` and `wide_selection_offer_totals`): none or a segment → the running
//! totals of all customers or of the segment, every offer in one wide row, two rows; channel/flow
//! → the running totals per (channel, flow), likewise, two rows per (channel, flow); a segment
//! with channel/flow → per (segment, day, channel, flow, offer). categoryId keeps the offers of
//! that catalog category. The traces' count likewise: without channel and flow, two rows of the
//! chain's running total (`trace_totals`); with them, the daily rows.

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{PgPool, Postgres};

use super::format::{rate, round};
use super::read::{name_or_id, segment_scope, Body, Params, SegmentScope};
use super::totals::{chain_traces, checkpoint, offer_selection};
use crate::api::error::ApiResult;
use crate::api::window::{Period, Window};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectionFrequency {
    /// selectedCount desc, eligibleCount desc, then offerId.
    pub data: Vec<OfferSelection>,
    /// Traces of the window matching channelId, decisionFlowId and segmentId.
    pub total_traces: i64,
    pub period: Period,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SelectionFrequencyRow)]
pub struct OfferSelection {
    pub offer_id: String,
    pub offer_name: String,
    pub eligible_count: i64,
    pub scored_count: i64,
    pub selected_count: i64,
    /// selected / eligible, 3 decimals.
    pub selection_rate: f64,
    /// Mean scoringResults rank, 1 decimal; null when never scored.
    pub avg_rank: Option<f64>,
    /// Counts of ranks 1..10.
    pub rank_distribution: [i64; 10],
}

/// One offer's selection counters over the window's matching traces.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub offer_id: String,
    /// Traces where the offer was eligible.
    pub eligible: i64,
    /// Traces that scored it (a scoringResults entry).
    pub scored: i64,
    /// Traces that selected it.
    pub selected: i64,
    /// Σ of its scoringResults ranks, and how many there were.
    pub rank_sum: i64,
    pub rank_n: i64,
    /// Counts of ranks 1..10.
    pub ranks: Vec<i64>,
}

/// The counters of a `selection_*daily` table summed over the window, as [`Row`] names them.
const SUMS: &str = "sum(eligible)::int8 AS eligible, sum(scored)::int8 AS scored, sum(selected)::int8 AS selected,
    sum(rank_sum)::int8 AS rank_sum, sum(rank_n)::int8 AS rank_n,
    ARRAY[sum(r1), sum(r2), sum(r3), sum(r4), sum(r5), sum(r6), sum(r7), sum(r8), sum(r9), sum(r10)]::int8[] AS ranks";

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let scope = segment_scope(pool, tenant, p).await?;
    let segment = match scope {
        SegmentScope::Warning(w) => return Ok(w),
        SegmentScope::Segment(s) => Some(s),
        SegmentScope::All => None,
    };
    let (channel, flow, category) = (p.get("channelId"), p.get("decisionFlowId"), p.get("categoryId"));
    // $1 tenant, $2/$3 window, $4 segment, $5 channel, $6 flow, $7 category (NULL: no filter).
    let by_flow = segment.is_none() && (channel.is_some() || flow.is_some());
    // The filters of a daily table keyed by segment, channel and flow; all customers' traces
    // have no segment column.
    let (traces_table, dims) = match segment {
        Some(_) => (
            "trace_segment_daily",
            "segment_id = $4 AND ($5::text IS NULL OR channel_id = $5) AND ($6::text IS NULL OR decision_flow_id = $6)",
        ),
        None => (
            "trace_daily",
            "$4::text IS NULL AND ($5::text IS NULL OR channel_id = $5) AND ($6::text IS NULL OR decision_flow_id = $6)",
        ),
    };
    let filters = Filters { tenant, window: &p.window, segment: segment.as_deref(), channel, flow };
    let rows = async {
        if by_flow {
            return by_channel_and_flow(pool, tenant, &p.window, channel, flow, category).await;
        }
        // Without channel and flow: the running totals of all customers or of the segment.
        if channel.is_none() && flow.is_none() {
            let in_category = category_offers(pool, tenant, category).await?;
            let keep = |id: &str| in_category.as_ref().is_none_or(|ids| ids.contains(id));
            let offers = offer_selection(pool, tenant, &p.window, segment.as_deref().unwrap_or(""), keep).await?;
            return Ok(offers
                .into_iter()
                .map(|(offer_id, o)| Row {
                    offer_id,
                    eligible: o.eligible,
                    scored: o.scored,
                    selected: o.selected,
                    rank_sum: o.rank_sum,
                    rank_n: o.rank_n,
                    ranks: o.ranks.to_vec(),
                })
                .collect());
        }
        // A segment with a channel or flow: its daily rows.
        let sql = format!(
            "SELECT offer_id, {SUMS} FROM selection_segment_daily
              WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND {dims}
                AND ($7::text IS NULL OR offer_id IN (SELECT entity_id FROM catalog_entities
                      WHERE tenant_id = $1 AND entity = 'offer' AND NOT deleted AND category_id = $7))
              GROUP BY offer_id"
        );
        Ok(filters.bind(sqlx::query_as::<_, Row>(&sql)).bind(category).fetch_all(pool).await?)
    };
    let total_traces = async {
        // Without channel and flow: the chain's running total (two rows); with them, the daily
        // rows of the window.
        if channel.is_none() && flow.is_none() {
            return chain_traces(pool, tenant, &p.window, segment.as_deref().unwrap_or("")).await;
        }
        let sql = format!(
            "SELECT COALESCE(sum(traces), 0)::int8 FROM {traces_table}
              WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND {dims}"
        );
        let (traces,) = filters.bind(sqlx::query_as::<_, (i64,)>(&sql)).fetch_one(pool).await?;
        Ok(traces)
    };
    // The offers' counters and the traces' count do not depend on each other; the names do.
    let (rows, total_traces) = tokio::try_join!(rows, total_traces)?;
    let ids: Vec<String> = rows.iter().map(|r| r.offer_id.clone()).collect();
    let names = p.names(pool, tenant, "offer", &ids).await?;
    Body::json(&to_response(rows, total_traces, &names, &p.window))
}

/// `$1`-`$6` of the reads of the daily tables: tenant, window, segment, channel, flow.
struct Filters<'a> {
    tenant: &'a str,
    window: &'a Window,
    segment: Option<&'a str>,
    channel: Option<&'a str>,
    flow: Option<&'a str>,
}

impl<'a> Filters<'a> {
    fn bind<O>(&self, q: QueryAs<'a, Postgres, O, PgArguments>) -> QueryAs<'a, Postgres, O, PgArguments> {
        let w = self.window;
        q.bind(self.tenant).bind(w.since()).bind(w.today).bind(self.segment).bind(self.channel).bind(self.flow)
    }
}

/// With channelId and/or decisionFlowId (no segment): the running totals of the wide rows
/// (`selection_flow_totals`): per (channel, flow), every candidate offer's counters summed up
/// to a checkpoint. The window's sums are the rows of the latest checkpoint up to its last day
/// minus those of the latest before its first day: two rows per (channel, flow) whatever its
/// length, where the daily rows were one per day (450 at 1M traces over 90 days, 17-22 ms).
async fn by_channel_and_flow(
    pool: &PgPool,
    tenant: &str,
    w: &Window,
    channel: Option<&str>,
    flow: Option<&str>,
    category: Option<&str>,
) -> ApiResult<Vec<Row>> {
    // The category's offers first (one small query), then the rows summed as they arrive.
    let in_category = category_offers(pool, tenant, category).await?;
    // No checkpoint within the window (hi before its first day, so hi = lo): nothing.
    let sql = format!(
        "WITH c AS (SELECT {hi} AS hi, {lo} AS lo)
         SELECT f.day = c.hi, f.offers
           FROM c JOIN selection_flow_totals f ON f.tenant_id = $1 AND f.day IN (c.hi, c.lo)
          WHERE c.hi >= $2
            AND ($4::text IS NULL OR f.channel_id = $4) AND ($5::text IS NULL OR f.decision_flow_id = $5)",
        hi = checkpoint("selection_flow_totals", "''", "<= $3"),
        lo = checkpoint("selection_flow_totals", "''", "< $2"),
    );
    let mut values = sqlx::query_as::<_, (bool, Vec<u8>)>(&sql)
        .bind(tenant)
        .bind(w.since())
        .bind(w.today)
        .bind(channel)
        .bind(flow)
        .fetch(pool);
    let mut sums = consumers::units::wide::Sums::<15>::default();
    let keep = |id: &str| in_category.as_ref().is_none_or(|ids| ids.contains(id));
    while let Some((hi, value)) = values.try_next().await? {
        if hi { sums.add(&value, keep) } else { sums.subtract(&value, keep) }.map_err(anyhow::Error::from)?;
    }
    let sums = sums.into_sorted();
    Ok(sums
        .into_iter()
        .map(|(offer_id, c)| Row {
            offer_id,
            eligible: c[0],
            scored: c[1],
            selected: c[2],
            rank_sum: c[3],
            rank_n: c[4],
            ranks: c[5..].to_vec(),
        })
        .collect())
}

/// The offers of a catalog category (`None`: no category filter).
async fn category_offers(
    pool: &PgPool,
    tenant: &str,
    category: Option<&str>,
) -> ApiResult<Option<std::collections::HashSet<String>>> {
    let Some(category) = category else { return Ok(None) };
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT entity_id FROM catalog_entities
          WHERE tenant_id = $1 AND entity = 'offer' AND NOT deleted AND category_id = $2",
    )
    .bind(tenant)
    .bind(category)
    .fetch_all(pool)
    .await?;
    Ok(Some(ids.into_iter().collect()))
}

pub fn to_response(
    rows: Vec<Row>,
    total_traces: i64,
    names: &std::collections::HashMap<String, String>,
    w: &Window,
) -> SelectionFrequency {
    let mut data: Vec<OfferSelection> = rows
        .into_iter()
        .filter(|r| r.eligible > 0)
        .map(|Row { offer_id, eligible, scored, selected, rank_sum, rank_n, ranks }| {
            let mut rank_distribution = [0; 10];
            for (slot, v) in rank_distribution.iter_mut().zip(ranks) {
                *slot = v;
            }
            OfferSelection {
                offer_name: name_or_id(names, &offer_id),
                offer_id,
                eligible_count: eligible,
                scored_count: scored,
                selected_count: selected,
                selection_rate: rate(selected, eligible, 3),
                avg_rank: (rank_n > 0).then(|| round(rank_sum as f64 / rank_n as f64, 1)),
                rank_distribution,
            }
        })
        .collect();
    data.sort_by(|a, b| {
        b.selected_count
            .cmp(&a.selected_count)
            .then(b.eligible_count.cmp(&a.eligible_count))
            .then_with(|| a.offer_id.cmp(&b.offer_id))
    });
    SelectionFrequency { data, total_traces, period: w.period() }
}
