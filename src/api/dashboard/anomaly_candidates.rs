//! `anomaly_candidates`: core metrics of the current window against the `baselineDays` dates
//! before it (SPEC 5.2). Stateless: nothing fires. Reads the interaction counters per (day,
//! offer, channel) and the trace counters per day of both windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

use super::anomaly::{candidate, proportion, rank, revenue, Candidate};
use super::{name_or_id, names, Body, Params};
use crate::api::error::ApiResult;
use crate::api::window::{iso_midnight, parse_days, Window};

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

/// (day, offer, channel, impressions, positive, revenue micros).
pub type InteractionRow = (NaiveDate, String, String, i64, i64, i64);
/// (day, degraded, traces).
pub type TraceRow = (NaiveDate, i64, i64);

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let baseline_days = parse_days("baselineDays", p.get("baselineDays"), p.window.days)?;
    let first = p.window.since() - chrono::Duration::days(baseline_days);
    let interactions: Vec<InteractionRow> = sqlx::query_as(
        "SELECT day, offer_id, channel_id, sum(impressions)::int8, sum(accepts + converts)::int8, sum(revenue_micros)::int8
           FROM interaction_daily WHERE tenant_id = $1 AND day BETWEEN $2 AND $3
          GROUP BY day, offer_id, channel_id",
    )
    .bind(tenant)
    .bind(first)
    .bind(p.window.today)
    .fetch_all(pool)
    .await?;
    let traces: Vec<TraceRow> = sqlx::query_as(
        "SELECT day, sum(degraded)::int8, sum(traces)::int8 FROM trace_daily
          WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 GROUP BY day",
    )
    .bind(tenant)
    .bind(first)
    .bind(p.window.today)
    .fetch_all(pool)
    .await?;
    let offers: Vec<String> = interactions.iter().map(|r| r.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let channels: Vec<String> = interactions.iter().map(|r| r.2.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let offer_names = names(pool, tenant, "offer", &offers).await?;
    let channel_names = names(pool, tenant, "channel", &channels).await?;
    Body::json(&to_response(&interactions, &traces, &p.window, baseline_days, &offer_names, &channel_names))
}

/// Trials and successes of the two windows: (x1, n1, x0, n0).
type Counts = (i64, i64, i64, i64);

pub fn to_response(
    interactions: &[InteractionRow],
    traces: &[TraceRow],
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
    let mut revenue_by_offer_day: BTreeMap<&str, BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for (day, offer, channel, imp, pos, rev) in interactions {
        let cur = current(day);
        add(&mut overall, cur, *pos, *imp);
        add(by_offer.entry(offer).or_default(), cur, *pos, *imp);
        add(by_channel.entry(channel).or_default(), cur, *pos, *imp);
        *revenue_by_offer_day.entry(offer).or_default().entry(*day).or_default() += rev;
    }
    let mut degraded: Counts = (0, 0, 0, 0);
    for (day, deg, n) in traces {
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
