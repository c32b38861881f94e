//! `model_metrics_trend`: AUC per date and the latest feature importance (docs/dashboard-types.md 5.1).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgPool;

use super::format::round;
use super::read::{Body, Params};
use crate::api::error::ApiResult;
use crate::api::window::day_name;

/// At most this many features are listed.
pub const TOP_FEATURES: usize = 20;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelMetricsTrend {
    /// One point per date with ≥1 evaluation in the window (sparse), oldest first.
    pub auc_trend: Vec<AucPoint>,
    /// The latest evaluation's features, value desc (then name), at most 20.
    pub feature_importance: Vec<Feature>,
    /// Models with ≥1 evaluation ever.
    pub model_count: i64,
    /// The model whose features are shown (null when there is none).
    pub model_name: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AucPoint {
    pub name: String,
    /// Mean AUC of the date's evaluations, 4 decimals.
    pub auc: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[schema(as = FeatureImportance)]
pub struct Feature {
    pub name: String,
    pub value: f64,
}

/// One day's evaluations.
#[derive(Debug, sqlx::FromRow)]
pub struct AucRow {
    pub day: NaiveDate,
    /// Σ AUC of the day's evaluations, in micro-units.
    pub auc_micros: i64,
    /// Evaluations of the day.
    pub evals: i64,
}

/// The latest evaluation.
#[derive(Debug, sqlx::FromRow)]
pub struct Latest {
    pub model_name: String,
    pub feature_importance: Json<Vec<Feature>>,
}

/// The three reads do not depend on each other: they run together.
pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let model = p.get("modelId");
    let auc = sqlx::query_as::<_, AucRow>(
        "SELECT day, sum(auc_micros)::int8 AS auc_micros, sum(evals)::int8 AS evals FROM model_eval_daily
          WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND ($4::text IS NULL OR model_id = $4)
          GROUP BY day ORDER BY day",
    )
    .bind(tenant)
    .bind(p.window.since())
    .bind(p.window.today)
    .bind(model)
    .fetch_all(pool);
    let latest = sqlx::query_as::<_, Latest>(
        "SELECT model_name, feature_importance FROM model_latest
          WHERE tenant_id = $1 AND ($2::text IS NULL OR model_id = $2)
          ORDER BY evaluated_at DESC, event_id DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(model)
    .fetch_optional(pool);
    let model_count = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM model_latest WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(pool);
    let (auc, latest, model_count) = tokio::try_join!(auc, latest, model_count)?;
    Body::json(&to_response(&auc, latest, model_count))
}

pub fn to_response(auc: &[AucRow], latest: Option<Latest>, model_count: i64) -> ModelMetricsTrend {
    let (model_name, mut features) = match latest {
        Some(Latest { model_name, feature_importance: Json(f) }) => (Some(model_name), f),
        None => (None, Vec::new()),
    };
    features.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    features.truncate(TOP_FEATURES);
    ModelMetricsTrend {
        auc_trend: auc
            .iter()
            .filter(|r| r.evals > 0)
            .map(|r| AucPoint { name: day_name(r.day), auc: round(r.auc_micros as f64 / r.evals as f64 / 1e6, 4) })
            .collect(),
        feature_importance: features,
        model_count,
        model_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_auc_and_top_features() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let features = (0..25).map(|i| Feature { name: format!("f{i:02}"), value: (i % 5) as f64 }).collect();
        let latest = Latest { model_name: "M".into(), feature_importance: Json(features) };
        let r = to_response(&[AucRow { day: d, auc_micros: 820_000 + 840_001, evals: 2 }], Some(latest), 2);
        assert_eq!(r.auc_trend, vec![AucPoint { name: "Mar 15".into(), auc: 0.83 }]);
        assert_eq!(r.feature_importance.len(), 20);
        assert_eq!(r.feature_importance[0], Feature { name: "f04".into(), value: 4.0 });
        assert_eq!(r.model_name.as_deref(), Some("M"));
        assert_eq!(to_response(&[], None, 0).model_name, None);
    }
}
