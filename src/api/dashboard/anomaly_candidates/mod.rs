//! `anomaly_candidates`: core metrics of the current window against the `baselineDays` dates
//! before it (docs/dashboard-types.md 5.2). Stateless: nothing fires. Reads the per-offer running
//! totals at three checkpoints (migration `running_totals`: both windows' sums, and the sums of
//! the daily revenue's squares for its deviation), the interaction rollup per (day, channel)
//! and the trace counters per day of both windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

mod stats;

use super::read::{name_or_id, Body, Params};
use crate::api::error::ApiResult;
use crate::api::window::{iso_midnight, parse_days, Window};
use stats::{candidate, proportion, rank, revenue, Candidate, DailyRevenue};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AnomalyCandidates {
    pub data: Vec<Candidate>,
    pub period: Period,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AnomalyPeriod)]
pub struct Period {
    pub current_days: i64,
    pub baseline_days: i64,
    pub since: String,
}

/// One offer's counters in each window, all customers; revenue in micro-units.
#[derive(Debug, sqlx::FromRow)]
pub struct OfferRow {
    pub offer_id: String,
    pub impressions: i64,
    /// accept + convert.
    pub positive: i64,
    pub revenue: f64,
    pub baseline_impressions: i64,
    pub baseline_positive: i64,
    pub baseline_revenue: f64,
    /// `b · Σx² − (Σx)²` of the baseline's daily revenue totals x (b days), computed exactly.
    pub baseline_spread: f64,
}

/// Per offer with interactions in either window: its counters in each (`$1` tenant, `$2` the
/// baseline's first day, `$3` the current window's last day, `$4` its first, `$5` the
/// baseline's length in days). Three checkpoints of the all-customers chain: the latest up to
/// the last day (hi), before the current window (mid) and before the baseline (lo); the current
/// window is hi − mid, the baseline mid − lo. Numeric sums are exact; each figure is rounded
/// to a float once, at the end.
const OFFERS: &str = "WITH c AS MATERIALIZED (
         SELECT (SELECT max(day) FROM running_total_days
                  WHERE view = 'interaction_offer_totals' AND tenant_id = $1 AND segment_id = '' AND day <= $3) AS hi,
                (SELECT max(day) FROM running_total_days
                  WHERE view = 'interaction_offer_totals' AND tenant_id = $1 AND segment_id = '' AND day < $4) AS mid,
                (SELECT max(day) FROM running_total_days
                  WHERE view = 'interaction_offer_totals' AND tenant_id = $1 AND segment_id = '' AND day < $2) AS lo),
     x AS (
         SELECT 1 AS cur, 0 AS base, r.* FROM c JOIN interaction_offer_totals r
             ON r.tenant_id = $1 AND r.segment_id = '' AND r.day = c.hi
         UNION ALL
         SELECT -1, 1, r.* FROM c JOIN interaction_offer_totals r
             ON r.tenant_id = $1 AND r.segment_id = '' AND r.day = c.mid
         UNION ALL
         SELECT 0, -1, r.* FROM c JOIN interaction_offer_totals r
             ON r.tenant_id = $1 AND r.segment_id = '' AND r.day = c.lo),
     sums AS (
         SELECT offer_id,
                sum(cur * impressions) AS imp1, sum(cur * (accepts + converts)) AS pos1,
                sum(cur * revenue_micros) AS rev1,
                sum(base * impressions) AS imp0, sum(base * (accepts + converts)) AS pos0,
                sum(base * revenue_micros) AS rev0, sum(base * revenue_sq_micros) AS sq0,
                sum((cur + base) * (impressions + clicks + accepts + converts + rejects + dismisses)) AS events
           FROM x GROUP BY offer_id)
     SELECT offer_id, imp1::int8 AS impressions, pos1::int8 AS positive, rev1::float8 AS revenue,
            imp0::int8 AS baseline_impressions, pos0::int8 AS baseline_positive, rev0::float8 AS baseline_revenue,
            ($5 * sq0 - rev0 * rev0)::float8 AS baseline_spread
       FROM sums WHERE events <> 0";

/// One (day, channel) of the per-channel rollup, all customers.
#[derive(Debug, sqlx::FromRow)]
pub struct ChannelRow {
    pub day: NaiveDate,
    pub channel_id: String,
    pub impressions: i64,
    /// accept + convert.
    pub positive: i64,
}

/// One day's trace counters.
#[derive(Debug, sqlx::FromRow)]
pub struct TraceRow {
    pub day: NaiveDate,
    /// Traces with degraded scoring, of `traces`.
    pub degraded: i64,
    pub traces: i64,
}

/// The three window reads do not depend on each other, nor do the two name lookups: each
/// pair runs together.
pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let baseline_days = parse_days("baselineDays", p.get("baselineDays"), p.window.days)?;
    let first = p.window.since() - chrono::Duration::days(baseline_days);
    // All customers (segment_id ''); the overall counts are the sum of the per-offer rows.
    let both = (tenant, first, p.window.today);
    let offers = sqlx::query_as::<_, OfferRow>(OFFERS)
        .bind(tenant)
        .bind(first)
        .bind(p.window.today)
        .bind(p.window.since())
        .bind(baseline_days)
        .fetch_all(pool);
    let (offers, channels, traces) = tokio::try_join!(
        async { Ok(offers.await?) },
        window_rows::<ChannelRow>(
            pool,
            "SELECT day, channel_id, impressions, accepts + converts AS positive
               FROM interaction_rollup_channel WHERE tenant_id = $1 AND segment_id = '' AND day BETWEEN $2 AND $3",
            both,
        ),
        window_rows::<TraceRow>(
            pool,
            "SELECT day, sum(degraded)::int8 AS degraded, sum(traces)::int8 AS traces FROM trace_daily
              WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 GROUP BY day",
            both,
        ),
    )?;
    let offer_ids: Vec<String> =
        offers.iter().map(|r| r.offer_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let channel_ids: Vec<String> =
        channels.iter().map(|r| r.channel_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let (offer_names, channel_names) =
        tokio::try_join!(p.names(pool, tenant, "offer", &offer_ids), p.names(pool, tenant, "channel", &channel_ids))?;
    let rows = Rows { offers: &offers, channels: &channels, traces: &traces };
    Body::json(&to_response(rows, &p.window, baseline_days, &offer_names, &channel_names))
}

/// Rows of `sql` with `$1` tenant and `$2`..`$3` the first and last day of both windows.
async fn window_rows<T>(
    pool: &PgPool,
    sql: &str,
    (tenant, first, last): (&str, NaiveDate, NaiveDate),
) -> ApiResult<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    Ok(sqlx::query_as(sql).bind(tenant).bind(first).bind(last).fetch_all(pool).await?)
}

/// The rows of both windows.
pub struct Rows<'a> {
    pub offers: &'a [OfferRow],
    pub channels: &'a [ChannelRow],
    pub traces: &'a [TraceRow],
}

/// Successes and trials of the current window (`x1`, `n1`) and of the baseline (`x0`, `n0`).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    x1: i64,
    n1: i64,
    x0: i64,
    n0: i64,
}

impl Counts {
    fn add(&mut self, current: bool, x: i64, n: i64) {
        if current {
            self.x1 += x;
            self.n1 += n;
        } else {
            self.x0 += x;
            self.n0 += n;
        }
    }
}

pub fn to_response(
    rows: Rows<'_>,
    w: &Window,
    baseline_days: i64,
    offer_names: &HashMap<String, String>,
    channel_names: &HashMap<String, String>,
) -> AnomalyCandidates {
    let since = w.since();
    let current = |d: NaiveDate| d >= since;
    let mut overall = Counts::default();
    let mut by_offer: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut by_channel: BTreeMap<&str, Counts> = BTreeMap::new();
    for r in rows.offers {
        for (cur, positive, impressions) in
            [(true, r.positive, r.impressions), (false, r.baseline_positive, r.baseline_impressions)]
        {
            overall.add(cur, positive, impressions);
            by_offer.entry(&r.offer_id).or_default().add(cur, positive, impressions);
        }
    }
    for r in rows.channels {
        by_channel.entry(&r.channel_id).or_default().add(current(r.day), r.positive, r.impressions);
    }
    let mut degraded = Counts::default();
    for r in rows.traces {
        degraded.add(current(r.day), r.degraded, r.traces);
    }

    let test = |c: &Counts| proportion(c.x1, c.n1, c.x0, c.n0);
    let mut out: Vec<Candidate> = Vec::new();
    out.extend(candidate("acceptance_rate", "overall", None, test(&overall)));
    for (offer, c) in &by_offer {
        let key = Some((offer.to_string(), name_or_id(offer_names, offer)));
        out.extend(candidate("acceptance_rate", "offer", key, test(c)));
    }
    for (channel, c) in &by_channel {
        let key = Some((channel.to_string(), name_or_id(channel_names, channel)));
        out.extend(candidate("acceptance_rate", "channel", key, test(c)));
    }
    for r in rows.offers {
        let daily = DailyRevenue {
            current_sum: r.revenue,
            current_days: w.days,
            baseline_sum: r.baseline_revenue,
            baseline_days,
            baseline_spread: r.baseline_spread,
        };
        let key = Some((r.offer_id.clone(), name_or_id(offer_names, &r.offer_id)));
        out.extend(candidate("revenue", "offer", key, revenue(daily)));
    }
    out.extend(candidate("degraded_scoring_rate", "overall", None, test(&degraded)));
    rank(&mut out);
    AnomalyCandidates { data: out, period: Period { current_days: w.days, baseline_days, since: iso_midnight(since) } }
}
