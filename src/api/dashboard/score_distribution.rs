//! `score_distribution`: every scoringResults entry of the window's traces in ten score
//! buckets, with optional per-dimension figures (docs/dashboard-types.md 5.1).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;

use super::format::round;
use super::read::{name_or_id, names, Body, Params, UNCATEGORIZED};
use crate::api::error::{ApiError, ApiResult};

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScoreDistribution {
    /// Always ten buckets, "0.0-0.1" … "0.9-1.0".
    pub data: Vec<Bucket>,
    pub total_scores: i64,
    pub has_real_data: bool,
    pub group_by: Option<&'static str>,
    /// Per dimension value (groupBy): count desc, then name.
    pub dimension_buckets: Vec<DimensionBucket>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Bucket {
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DimensionBucket {
    /// The dimension value's id.
    pub name: String,
    pub dim_name: String,
    pub count: i64,
    /// Mean score, 3 decimals.
    pub avg_score: f64,
}

const SUMS: &str =
    "ARRAY[sum(b0), sum(b1), sum(b2), sum(b3), sum(b4), sum(b5), sum(b6), sum(b7), sum(b8), sum(b9)]::int8[],
    sum(score_sum_micros)::int8, sum(n)::int8";

/// (dimension value or "", buckets, score sum micros, count).
pub type Row = (String, Vec<i64>, i64, i64);

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let group_by: Option<&'static str> = match p.get("groupBy") {
        None => None,
        Some("channel") => Some("channel"),
        Some("offer") => Some("offer"),
        Some("category") => Some("category"),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "groupBy must be channel, offer or category for score_distribution, got {other:?}"
            )))
        }
    };
    let filter = p.get("filterId");
    if filter.is_some() && group_by.is_none() {
        return Err(ApiError::BadRequest("filterId needs groupBy (channel, offer or category)".into()));
    }
    let (since, today) = (p.window.since(), p.window.today);
    // Per dimension value: channel → per channel; offer and category → per offer (categories
    // from the catalog now).
    let per_dim: Vec<Row> = match group_by {
        Some("channel") => {
            sqlx::query_as(&format!(
                "SELECT channel_id, {SUMS} FROM score_channel_daily
                  WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 GROUP BY channel_id"
            ))
            .bind(tenant)
            .bind(since)
            .bind(today)
            .fetch_all(pool)
            .await?
        }
        Some(_) => {
            let by_offer: Vec<Row> = sqlx::query_as(&format!(
                "SELECT offer_id, {SUMS} FROM score_offer_daily
                  WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 GROUP BY offer_id"
            ))
            .bind(tenant)
            .bind(since)
            .bind(today)
            .fetch_all(pool)
            .await?;
            if group_by == Some("category") {
                let ids: Vec<String> = by_offer.iter().map(|r| r.0.clone()).collect();
                let categories: Vec<(String, Option<String>)> = sqlx::query_as(
                    "SELECT entity_id, category_id FROM catalog_entities
                      WHERE tenant_id = $1 AND entity = 'offer' AND entity_id = ANY($2) AND NOT deleted",
                )
                .bind(tenant)
                .bind(&ids)
                .fetch_all(pool)
                .await?;
                let category: std::collections::HashMap<String, String> =
                    categories.into_iter().filter_map(|(o, c)| c.map(|c| (o, c))).collect();
                merge(by_offer, |offer| category.get(offer).cloned().unwrap_or_else(|| UNCATEGORIZED.into()))
            } else {
                by_offer
            }
        }
        None => Vec::new(),
    };
    let totals: Row = match filter {
        Some(f) => per_dim.iter().find(|r| r.0 == f).cloned().unwrap_or_else(|| (f.to_owned(), vec![0; 10], 0, 0)),
        None => sqlx::query_as(&format!(
            "SELECT '', {SUMS} FROM score_daily WHERE tenant_id = $1 AND day BETWEEN $2 AND $3"
        ))
        .bind(tenant)
        .bind(since)
        .bind(today)
        .fetch_one(pool)
        .await
        .map(|(k, b, s, n): (String, Vec<Option<i64>>, Option<i64>, Option<i64>)| {
            (k, b.into_iter().map(Option::unwrap_or_default).collect(), s.unwrap_or(0), n.unwrap_or(0))
        })?,
    };
    let entity = match group_by {
        Some("channel") => "channel",
        Some("category") => "category",
        _ => "offer",
    };
    let ids: Vec<String> = per_dim.iter().map(|r| r.0.clone()).collect();
    let dim_names = names(pool, tenant, entity, &ids).await?;
    Body::json(&to_response(totals, per_dim, group_by, &dim_names))
}

/// Sums rows whose keys map to the same group.
fn merge(rows: Vec<Row>, group: impl Fn(&str) -> String) -> Vec<Row> {
    let mut out: BTreeMap<String, Row> = BTreeMap::new();
    for (k, b, s, n) in rows {
        let g = group(&k);
        let e = out.entry(g.clone()).or_insert_with(|| (g, vec![0; 10], 0, 0));
        for (a, x) in e.1.iter_mut().zip(b) {
            *a += x;
        }
        e.2 += s;
        e.3 += n;
    }
    out.into_values().collect()
}

pub fn to_response(
    totals: Row,
    per_dim: Vec<Row>,
    group_by: Option<&'static str>,
    dim_names: &std::collections::HashMap<String, String>,
) -> ScoreDistribution {
    let data: Vec<Bucket> = (0..10)
        .map(|i| Bucket {
            name: format!("{:.1}-{:.1}", i as f64 / 10.0, (i + 1) as f64 / 10.0),
            count: totals.1.get(i).copied().unwrap_or(0),
        })
        .collect();
    let total_scores = data.iter().map(|b| b.count).sum();
    let mut dimension_buckets: Vec<DimensionBucket> = per_dim
        .into_iter()
        .filter(|r| r.3 > 0)
        .map(|(id, _, sum, n)| DimensionBucket {
            dim_name: name_or_id(dim_names, &id),
            name: id,
            count: n,
            avg_score: round(sum as f64 / n as f64 / 1e6, 3),
        })
        .collect();
    dimension_buckets.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    ScoreDistribution { data, total_scores, has_real_data: total_scores > 0, group_by, dimension_buckets }
}
