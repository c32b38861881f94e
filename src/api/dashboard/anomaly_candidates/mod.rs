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

/// (day, offer, impressions, positive, revenue micros), from the per-offer rollup.
pub type OfferRow = (NaiveDate, String, i64, i64, Micros);
/// (day, channel, impressions, positive), from the per-channel rollup.
pub type ChannelRow = (NaiveDate, String, i64, i64);
/// (day, degraded, traces).
pub type TraceRow = (NaiveDate, i64, i64);

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let baseline_days = parse_days("baselineDays", p.get("baselineDays"), p.window.days)?;
    let first = p.window.since() - chrono::Duration::days(baseline_days);
    // All customers (segment_id ''); the overall counts are the sum of the per-offer rows.
    let (tenant, first, today) = (tenant, first, p.window.today);
    let offers: Vec<OfferRow> = window_rows(
        pool,
        "SELECT day, offer_id, impressions, accepts + converts, revenue_micros FROM interaction_rollup_offer
          WHERE tenant_id = $1 AND segment_id = '' AND day BETWEEN $2 AND $3",
        (tenant, first, today),
    )
    .await?;
    let channels: Vec<ChannelRow> = window_rows(
        pool,
        "SELECT day, channel_id, impressions, accepts + converts FROM interaction_rollup_channel
          WHERE tenant_id = $1 AND segment_id = '' AND day BETWEEN $2 AND $3",
        (tenant, first, today),
    )
    .await?;
    let traces: Vec<TraceRow> = window_rows(
        pool,
        "SELECT day, sum(degraded)::int8, sum(traces)::int8 FROM trace_daily
          WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 GROUP BY day",
        (tenant, first, today),
    )
    .await?;
    let offer_ids: Vec<String> = offers.iter().map(|r| r.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let channel_ids: Vec<String> = channels.iter().map(|r| r.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let offer_names = names(pool, tenant, "offer", &offer_ids).await?;
    let channel_names = names(pool, tenant, "channel", &channel_ids).await?;
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

/// Trials and successes of the two windows: (x1, n1, x0, n0).
type Counts = (i64, i64, i64, i64);

pub fn to_response(
    rows: Rows<'_>,
    w: &Window,
    baseline_days: i64,
    offer_names: &HashMap<String, String>,
    channel_names: &HashMap<String, String>,
) -> AnomalyCandidates {
    let since = w.since();
    let current = |d: &NaiveDate| *d >= since;
    let add = |c: &mut Counts, cur: bool, x: i64, n: i64| {
        if cur {
            c.0 += x;
            c.1 += n;
        } else {
            c.2 += x;
            c.3 += n;
        }
    };
    let mut overall: Counts = (0, 0, 0, 0);
    let mut by_offer: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut by_channel: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut revenue_by_offer_day: BTreeMap<&str, BTreeMap<NaiveDate, i128>> = BTreeMap::new();
    for (day, offer, imp, pos, rev) in rows.offers {
        let cur = current(day);
        add(&mut overall, cur, *pos, *imp);
        add(by_offer.entry(offer).or_default(), cur, *pos, *imp);
        *revenue_by_offer_day.entry(offer).or_default().entry(*day).or_default() += rev.0;
    }
    for (day, channel, imp, pos) in rows.channels {
        add(by_channel.entry(channel).or_default(), current(day), *pos, *imp);
    }
    let mut degraded: Counts = (0, 0, 0, 0);
    for (day, deg, n) in rows.traces {
        add(&mut degraded, current(day), *deg, *n);
    }

    let test = |c: &Counts| proportion(c.0, c.1, c.2, c.3);
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
