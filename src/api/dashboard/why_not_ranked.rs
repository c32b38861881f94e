//! `why_not_ranked`: for one offer, how often it was eligible but not selected, and why
//! (docs/dashboard-types.md 5.1). Every trace of the window counts: `sampleCap` is null.

use serde::Serialize;
use sqlx::PgPool;

use super::format::{rate, round};
use super::read::{name_or_id, segment_scope, wide_sums, Body, Params, SegmentScope};
use super::totals::{chain_traces, offer_selection};
use crate::api::error::{ApiError, ApiResult};
use crate::api::window::{Period, Window};

/// beatenBy lists this many winners.
pub const TOP_BEATEN_BY: usize = 5;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BeatenBy)]
pub struct Beaten {
    pub offer_id: String,
    pub offer_name: String,
    pub count: i64,
}

/// The offer's selection counters over the window's traces (of the segment, if given).
#[derive(Debug)]
pub struct Row {
    /// Traces where it was eligible, and that selected it.
    pub eligible: i64,
    pub selected: i64,
    /// Misses (eligible, not selected) by reason: filtered by qualification, by contact
    /// policy, scored lower than the winner, never scored.
    pub miss_qualification: i64,
    pub miss_contact: i64,
    pub miss_too_low: i64,
    pub miss_not_ranked: i64,
    /// Σ of its scores, in micro-units, and how many there were.
    pub score_sum_micros: i64,
    pub score_n: i64,
    /// Counts of ranks 1..10.
    pub ranks: Vec<i64>,
}

/// A winner of decisions the offer lost on score.
#[derive(Debug, sqlx::FromRow)]
pub struct Winner {
    pub winner_id: String,
    /// Decisions it won over the offer.
    pub count: i64,
}

/// The offer's counters, its winners and the traces' count do not depend on each other: read
/// together (the names depend on the winners).
pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let offer =
        p.get("offerId").ok_or_else(|| ApiError::BadRequest("offerId is required for why_not_ranked".into()))?;
    let segment = match segment_scope(pool, tenant, p).await? {
        SegmentScope::Warning(w) => return Ok(w),
        SegmentScope::Segment(s) => Some(s),
        SegmentScope::All => None,
    };
    // The offer's entry in the running totals of all customers or of the segment (two wide
    // rows whatever the window).
    let w = &p.window;
    let row = async {
        let offers = offer_selection(pool, tenant, w, segment.as_deref().unwrap_or(""), |id| id == offer).await?;
        let o = offers.into_iter().next().map(|(_, o)| o).unwrap_or_default();
        let score_sum_micros = i64::try_from(o.score_sum_micros)
            .map_err(|_| anyhow::anyhow!("score sum of {offer} over the window out of range for type bigint"))?;
        Ok::<_, ApiError>(Row {
            eligible: o.eligible,
            selected: o.selected,
            miss_qualification: o.miss_qualification,
            miss_contact: o.miss_contact,
            miss_too_low: o.miss_too_low,
            miss_not_ranked: o.miss_not_ranked,
            score_sum_micros,
            score_n: o.score_n,
            ranks: o.ranks.to_vec(),
        })
    };
    // The winners: one wide row per day (`beaten_by_offer_daily`), or per segment one narrow
    // row per (day, winner).
    let winners = async {
        if segment.is_none() {
            let values: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT winners FROM beaten_by_offer_daily WHERE tenant_id = $1 AND offer_id = $2 AND day BETWEEN $3 AND $4",
            )
            .bind(tenant)
            .bind(offer)
            .bind(w.since())
            .bind(w.today)
            .fetch_all(pool)
            .await?;
            let sums = wide_sums::<1>(&values, |_| true)?;
            return Ok(sums.into_iter().map(|(winner_id, [count])| Winner { winner_id, count }).collect());
        }
        sqlx::query_as::<_, Winner>(
            "SELECT winner_id, sum(count)::int8 AS count FROM beaten_by_segment_daily
              WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND segment_id = $4 AND offer_id = $5 GROUP BY winner_id",
        )
        .bind(tenant)
        .bind(w.since())
        .bind(w.today)
        .bind(&segment)
        .bind(offer)
        .fetch_all(pool)
        .await
        .map_err(ApiError::from)
    };
    // The chain's traces: two rows of its running total too.
    let sample_size = chain_traces(pool, tenant, w, segment.as_deref().unwrap_or(""));
    let (row, winners, sample_size) = tokio::try_join!(row, winners, sample_size)?;
    let mut ids: Vec<String> = winners.iter().map(|x| x.winner_id.clone()).collect();
    ids.push(offer.to_owned());
    let names = p.names(pool, tenant, "offer", &ids).await?;
    Body::json(&to_response(offer, row, winners, sample_size, &names, w))
}

pub fn to_response(
    offer: &str,
    row: Row,
    mut winners: Vec<Winner>,
    sample_size: i64,
    names: &std::collections::HashMap<String, String>,
    w: &Window,
) -> WhyNotRanked {
    let Row {
        eligible,
        selected,
        miss_qualification: qualification,
        miss_contact: contact,
        miss_too_low: too_low,
        miss_not_ranked: not_ranked,
        score_sum_micros: score_sum,
        score_n,
        ranks,
    } = row;
    winners.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.winner_id.cmp(&b.winner_id)));
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
                .map(|Winner { winner_id: id, count }| Beaten {
                    offer_name: name_or_id(names, &id),
                    offer_id: id,
                    count,
                })
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
