//! `why_not_ranked`: for one offer, how often it was eligible but not selected, and why
//! (docs/dashboard-types.md 5.1). Every trace of the window counts: `sampleCap` is null.

use serde::Serialize;
use sqlx::PgPool;

use super::format::{rate, round};
use super::read::{name_or_id, names, segment_scope, Body, Params, SegmentScope};
use crate::api::error::{ApiError, ApiResult};
use crate::api::window::{Period, Window};

/// beatenBy lists this many winners.
pub const TOP_BEATEN_BY: usize = 5;

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WhyNotRanked {
    pub offer_id: String,
    pub offer_name: String,
    pub times_eligible: i64,
    pub times_selected: i64,
    /// (eligible − selected) / eligible, 3 decimals (0 without eligibility).
    pub miss_rate: f64,
    pub miss_reasons: MissReasons,
    /// Ranks 1..10 of the offer's scoringResults entries.
    pub rank_distribution: [i64; 10],
    /// Mean score of its scoringResults entries, 3 decimals; null when never scored.
    pub avg_score: Option<f64>,
    pub period: Period,
    /// Traces of the window (of the segment, if given).
    pub sample_size: i64,
    /// Nothing is sampled.
    pub sample_cap: Option<i64>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MissReasons {
    pub scored_too_low: i64,
    pub filtered_by_contact_policy: i64,
    pub filtered_by_qualification: i64,
    /// Winners of the decisions the offer lost on score, count desc, at most 5.
    pub beaten_by: Vec<Beaten>,
    /// Extension: misses under none of the rules (a candidate that was never scored).
    pub not_ranked: i64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Beaten {
    pub offer_id: String,
    pub offer_name: String,
    pub count: i64,
}

/// eligible, selected, misses (qualification, contact, too low, not ranked), score sum micros,
/// score count, ranks 1..10.
pub type Row = (i64, i64, i64, i64, i64, i64, i64, i64, Vec<i64>);

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let offer =
        p.get("offerId").ok_or_else(|| ApiError::BadRequest("offerId is required for why_not_ranked".into()))?;
    let segment = match segment_scope(pool, tenant, p).await? {
        SegmentScope::Warning(w) => return Ok(w),
        SegmentScope::Segment(s) => Some(s),
        SegmentScope::All => None,
    };
    let (table, beaten, traces, seg) = match segment {
        Some(_) => ("selection_segment_daily", "beaten_by_segment_daily", "trace_segment_daily", "segment_id = $4"),
        None => ("selection_daily", "beaten_by_daily", "trace_daily", "$4::text IS NULL"),
    };
    let w = &p.window;
    let row: Row = sqlx::query_as(&format!(
        "SELECT COALESCE(sum(eligible), 0)::int8, COALESCE(sum(selected), 0)::int8,
                COALESCE(sum(miss_qualification), 0)::int8, COALESCE(sum(miss_contact), 0)::int8,
                COALESCE(sum(miss_too_low), 0)::int8, COALESCE(sum(miss_not_ranked), 0)::int8,
                COALESCE(sum(score_sum_micros), 0)::int8, COALESCE(sum(score_n), 0)::int8,
                ARRAY[COALESCE(sum(r1), 0), COALESCE(sum(r2), 0), COALESCE(sum(r3), 0), COALESCE(sum(r4), 0),
                      COALESCE(sum(r5), 0), COALESCE(sum(r6), 0), COALESCE(sum(r7), 0), COALESCE(sum(r8), 0),
                      COALESCE(sum(r9), 0), COALESCE(sum(r10), 0)]::int8[]
           FROM {table} WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND {seg} AND offer_id = $5"
    ))
    .bind(tenant)
    .bind(w.since())
    .bind(w.today)
    .bind(&segment)
    .bind(offer)
    .fetch_one(pool)
    .await?;
    let winners: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT winner_id, sum(count)::int8 FROM {beaten}
          WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND {seg} AND offer_id = $5 GROUP BY winner_id"
    ))
    .bind(tenant)
    .bind(w.since())
    .bind(w.today)
    .bind(&segment)
    .bind(offer)
    .fetch_all(pool)
    .await?;
    let sample_size: i64 = sqlx::query_scalar(&format!(
        "SELECT COALESCE(sum(traces), 0)::int8 FROM {traces} WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND {seg}"
    ))
    .bind(tenant)
    .bind(w.since())
    .bind(w.today)
    .bind(&segment)
    .fetch_one(pool)
    .await?;
    let mut ids: Vec<String> = winners.iter().map(|x| x.0.clone()).collect();
    ids.push(offer.to_owned());
    let names = names(pool, tenant, "offer", &ids).await?;
    Body::json(&to_response(offer, row, winners, sample_size, &names, w))
}

pub fn to_response(
    offer: &str,
    row: Row,
    mut winners: Vec<(String, i64)>,
    sample_size: i64,
    names: &std::collections::HashMap<String, String>,
    w: &Window,
) -> WhyNotRanked {
    let (eligible, selected, qualification, contact, too_low, not_ranked, score_sum, score_n, ranks) = row;
    winners.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    winners.truncate(TOP_BEATEN_BY);
    let mut rank_distribution = [0; 10];
    for (slot, v) in rank_distribution.iter_mut().zip(ranks) {
        *slot = v;
    }
    WhyNotRanked {
        offer_id: offer.to_owned(),
        offer_name: name_or_id(names, offer),
        times_eligible: eligible,
        times_selected: selected,
        miss_rate: rate(eligible - selected, eligible, 3),
        miss_reasons: MissReasons {
            scored_too_low: too_low,
            filtered_by_contact_policy: contact,
            filtered_by_qualification: qualification,
            beaten_by: winners
                .into_iter()
                .map(|(id, count)| Beaten { offer_name: name_or_id(names, &id), offer_id: id, count })
                .collect(),
            not_ranked,
        },
        rank_distribution,
        avg_score: (score_n > 0).then(|| round(score_sum as f64 / score_n as f64 / 1e6, 3)),
        period: w.period(),
        sample_size,
        sample_cap: None,
    }
}
