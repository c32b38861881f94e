//! `anomaly_candidates`: core metrics of the current window against the `baselineDays` dates
//! before it (docs/dashboard-types.md 5.2). Stateless: nothing fires. Reads the interaction rollups per (day,
//! offer) and per (day, channel) and the trace counters per day of both windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

mod stats;

use super::read::{name_or_id, names, Body, Params};
use crate::api::error::ApiResult;
use crate::api::window::{iso_midnight, parse_days, Window};
use consumers::units::money::Micros;
use stats::{candidate, proportion, rank, revenue, Candidate};

#[derive(Debug, Serialize, PartialEq)]
pub struct AnomalyCandidates {
    pub data: Vec<Candidate>,
    pub period: Period,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    pub current_days: i64,
    pub baseline_days: i64,
    pub since: String,
}

/// One (day, offer) of the per-offer rollup, all customers.
#[derive(Debug, sqlx::FromRow)]
pub struct OfferRow {
    pub day: NaiveDate,
    pub offer_id: String,
    pub impressions: i64,
    /// accept + convert.
    pub positive: i64,
    /// In micro-units.
    pub revenue_micros: Micros,
}

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
    let (offers, channels, traces) = tokio::try_join!(
        window_rows::<OfferRow>(
            pool,
            "SELECT day, offer_id, impressions, accepts + converts AS positive, revenue_micros
               FROM interaction_rollup_offer WHERE tenant_id = $1 AND segment_id = '' AND day BETWEEN $2 AND $3",
            both,
        ),
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
        tokio::try_join!(names(pool, tenant, "offer", &offer_ids), names(pool, tenant, "channel", &channel_ids))?;
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
    let mut revenue_by_offer_day: BTreeMap<&str, BTreeMap<NaiveDate, i128>> = BTreeMap::new();
    for r in rows.offers {
        let cur = current(r.day);
        overall.add(cur, r.positive, r.impressions);
        by_offer.entry(&r.offer_id).or_default().add(cur, r.positive, r.impressions);
        *revenue_by_offer_day.entry(&r.offer_id).or_default().entry(r.day).or_default() += r.revenue_micros.0;
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
    let baseline_dates: Vec<NaiveDate> = (1..=baseline_days).rev().map(|i| since - chrono::Duration::days(i)).collect();
    let current_dates: Vec<NaiveDate> = w.dates().collect();
    for (offer, days) in &revenue_by_offer_day {
        let series = |dates: &[NaiveDate]| -> Vec<f64> {
            dates.iter().map(|d| days.get(d).copied().unwrap_or(0) as f64 / 1e6).collect()
        };
        let key = Some((offer.to_string(), name_or_id(offer_names, offer)));
        out.extend(candidate("revenue", "offer", key, revenue(&series(&current_dates), &series(&baseline_dates))));
    }
    out.extend(candidate("degraded_scoring_rate", "overall", None, test(&degraded)));
    rank(&mut out);
    AnomalyCandidates { data: out, period: Period { current_days: w.days, baseline_days, since: iso_midnight(since) } }
}
