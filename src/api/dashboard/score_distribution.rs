//! `score_distribution`: every scoringResults entry of the window's traces in ten score
//! buckets, with optional per-dimension figures (docs/dashboard-types.md 5.1).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;

use super::format::round;
use super::read::{name_or_id, Body, Params, UNCATEGORIZED};
use super::totals::offer_selection;
use crate::api::error::{ApiError, ApiResult};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = ScoreBucket)]
pub struct Bucket {
    pub name: String,
    pub count: i64,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DimensionBucket {
    /// The dimension value's id.
    pub name: String,
    pub dim_name: String,
    pub count: i64,
    /// Mean score, 3 decimals.
    pub avg_score: f64,
}

/// The ten bucket sums, as [`Row::buckets`].
macro_rules! bucket_sums {
    () => {
        "ARRAY[sum(b0), sum(b1), sum(b2), sum(b3), sum(b4), sum(b5), sum(b6), sum(b7), sum(b8), sum(b9)]::int8[] AS buckets"
    };
}
/// The score counters of a `score_*daily` table summed over the window, as [`Row`] names them.
const SUMS: &str = concat!(bucket_sums!(), ", sum(score_sum_micros)::int8 AS score_sum_micros, sum(n)::int8 AS n");

/// The scores of one dimension value, or of all (`key` "").
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// The dimension value (channel, offer or category id); "" for all.
    pub key: String,
    /// Counts of the ten score buckets, 0.0-0.1 first.
    pub buckets: Vec<i64>,
    /// Σ score, in micro-units.
    pub score_sum_micros: i64,
    /// Scores counted.
    pub n: i64,
}

impl Row {
    fn empty(key: String) -> Row {
        Row { key, buckets: vec![0; 10], score_sum_micros: 0, n: 0 }
    }
}

/// [`Row`] of every score of the window: an aggregate without GROUP BY, so null sums when the
/// window has none.
#[derive(sqlx::FromRow)]
struct AllRow {
    buckets: Vec<Option<i64>>,
    score_sum_micros: Option<i64>,
    n: Option<i64>,
}

/// An offer's category in the catalog (null: uncategorized).
#[derive(sqlx::FromRow)]
struct OfferCategory {
    offer_id: String,
    category_id: Option<String>,
}

/// The per-dimension rows and the totals of all scores do not depend on each other: read
/// together (with `filterId`, the totals are the filtered value's row instead).
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
    let all = async {
        if filter.is_some() {
            return Ok(None);
        }
        let all: AllRow =
            sqlx::query_as(&format!("SELECT {SUMS} FROM score_daily WHERE tenant_id = $1 AND day BETWEEN $2 AND $3"))
                .bind(tenant)
                .bind(p.window.since())
                .bind(p.window.today)
                .fetch_one(pool)
                .await?;
        Ok::<_, ApiError>(Some(Row {
            key: String::new(),
            buckets: all.buckets.into_iter().map(Option::unwrap_or_default).collect(),
            score_sum_micros: all.score_sum_micros.unwrap_or(0),
            n: all.n.unwrap_or(0),
        }))
    };
    let (per_dim, all) = tokio::try_join!(per_dimension(pool, tenant, p, group_by), all)?;
    let totals: Row = match all {
        Some(all) => all,
        // filterId given: the filtered value's row.
        None => {
            let f = filter.unwrap_or_default();
            per_dim.iter().find(|r| r.key == f).cloned().unwrap_or_else(|| Row::empty(f.to_owned()))
        }
    };
    let entity = match group_by {
        Some("channel") => "channel",
        Some("category") => "category",
        _ => "offer",
    };
    let ids: Vec<String> = per_dim.iter().map(|r| r.key.clone()).collect();
    let dim_names = p.names(pool, tenant, entity, &ids).await?;
    Body::json(&to_response(totals, per_dim, group_by, &dim_names))
}

/// Per dimension value: channel → per channel; offer and category → per offer (categories
/// from the catalog now); none without groupBy.
async fn per_dimension(pool: &PgPool, tenant: &str, p: &Params, group_by: Option<&str>) -> ApiResult<Vec<Row>> {
    let rows: Vec<Row> = match group_by {
        None => return Ok(Vec::new()),
        Some("channel") => {
            let sql = format!(
                "SELECT channel_id AS key, {SUMS} FROM score_channel_daily
                  WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 GROUP BY channel_id"
            );
            sqlx::query_as(&sql).bind(tenant).bind(p.window.since()).bind(p.window.today).fetch_all(pool).await?
        }
        // All customers' per-offer running totals (the score buckets beside the selection
        // counters, the count as `score_n`). Offers that were candidates but never scored have
        // entries too: they have no scores.
        Some(_) => {
            let offers = offer_selection(pool, tenant, &p.window, "", |_| true).await?;
            let mut rows = Vec::new();
            for (key, o) in offers.into_iter().filter(|(_, o)| o.score_n > 0) {
                let score_sum_micros = i64::try_from(o.score_sum_micros)
                    .map_err(|_| anyhow::anyhow!("score sum of {key} over the window out of range for type bigint"))?;
                rows.push(Row { key, buckets: o.buckets.to_vec(), score_sum_micros, n: o.score_n });
            }
            rows
        }
    };
    if group_by != Some("category") {
        return Ok(rows);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    let categories: Vec<OfferCategory> = sqlx::query_as(
        "SELECT entity_id AS offer_id, category_id FROM catalog_entities
          WHERE tenant_id = $1 AND entity = 'offer' AND entity_id = ANY($2) AND NOT deleted",
    )
    .bind(tenant)
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let category: std::collections::HashMap<String, String> =
        categories.into_iter().filter_map(|c| c.category_id.map(|id| (c.offer_id, id))).collect();
    Ok(merge(rows, |offer| category.get(offer).cloned().unwrap_or_else(|| UNCATEGORIZED.into())))
}

/// Sums rows whose keys map to the same group.
fn merge(rows: Vec<Row>, group: impl Fn(&str) -> String) -> Vec<Row> {
    let mut out: BTreeMap<String, Row> = BTreeMap::new();
    for r in rows {
        let g = group(&r.key);
        let e = out.entry(g.clone()).or_insert_with(|| Row::empty(g));
        for (a, x) in e.buckets.iter_mut().zip(r.buckets) {
            *a += x;
        }
        e.score_sum_micros += r.score_sum_micros;
        e.n += r.n;
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
            count: totals.buckets.get(i).copied().unwrap_or(0),
        })
        .collect();
    let total_scores = data.iter().map(|b| b.count).sum();
    let mut dimension_buckets: Vec<DimensionBucket> = per_dim
        .into_iter()
        .filter(|r| r.n > 0)
        .map(|Row { key: id, score_sum_micros: sum, n, .. }| DimensionBucket {
            dim_name: name_or_id(dim_names, &id),
            name: id,
            count: n,
            avg_score: round(sum as f64 / n as f64 / 1e6, 3),
        })
        .collect();
    dimension_buckets.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    ScoreDistribution { data, total_scores, has_real_data: total_scores > 0, group_by, dimension_buckets }
}
