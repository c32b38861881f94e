//! `policy_impact`: suppressions active now, per policy type (docs/dashboard-types.md 5.1; `days` is ignored).
//!
//! The read touches one counter row per policy type plus the expired suppressions the janitor
//! has not swept yet (partial index), never the history of suppressions.

use serde::Serialize;
use sqlx::PgPool;

use super::read::Body;
use crate::api::error::ApiResult;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyImpact {
    /// Count desc, then policyType.
    pub data: Vec<PolicyCount>,
    pub total_active: i64,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PolicyImpactRow)]
pub struct PolicyCount {
    pub policy_type: String,
    pub count: i64,
}

/// One policy type's suppressions active now.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub policy_type: String,
    /// Counted active, less those expired and not yet swept.
    pub active: i64,
}

pub async fn handle(pool: &PgPool, tenant: &str) -> ApiResult<Body> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.policy_type, (c.active - COALESCE(x.expired, 0))::int8 AS active
           FROM suppression_active_counts c
           LEFT JOIN (SELECT policy_type, count(*) AS expired FROM suppressions
                       WHERE tenant_id = $1 AND counted AND expires_at <= now()
                       GROUP BY policy_type) x USING (policy_type)
          WHERE c.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    Body::json(&to_response(rows))
}

pub fn to_response(rows: Vec<Row>) -> PolicyImpact {
    let mut data: Vec<PolicyCount> = rows
        .into_iter()
        .filter(|r| r.active > 0)
        .map(|Row { policy_type, active: count }| PolicyCount { policy_type, count })
        .collect();
    data.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.policy_type.cmp(&b.policy_type)));
    PolicyImpact { total_active: data.iter().map(|d| d.count).sum(), data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_totalled_without_empty_types() {
        let row = |policy_type: &str, active| Row { policy_type: policy_type.into(), active };
        let r = to_response(vec![row("cooldown", 12), row("frequency_cap", 45), row("x", 0), row("a", 12)]);
        let got: Vec<(&str, i64)> = r.data.iter().map(|d| (d.policy_type.as_str(), d.count)).collect();
        assert_eq!(got, [("frequency_cap", 45), ("a", 12), ("cooldown", 12)]);
        assert_eq!(r.total_active, 69);
    }
}
