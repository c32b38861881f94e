//! `funnel`: Total Offers → Active Offers → With Creatives → Creatives (docs/dashboard-types.md 5.1).

use serde::Serialize;
use sqlx::PgPool;

use super::read::Body;
use crate::api::error::ApiResult;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Funnel {
    pub stages: Vec<Stage>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = FunnelStage)]
pub struct Stage {
    pub label: &'static str,
    pub count: i64,
}

/// Counts: all offers, active offers, active offers with ≥1 creative, all creatives.
#[derive(Debug, Default, sqlx::FromRow)]
pub struct Row {
    pub total_offers: i64,
    pub active_offers: i64,
    pub with_creatives: i64,
    pub creatives: i64,
}

pub async fn handle(pool: &PgPool, tenant: &str) -> ApiResult<Body> {
    let row: Row = sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM catalog_entities WHERE tenant_id = $1 AND entity = 'offer' AND NOT deleted) AS total_offers,
           (SELECT count(*) FROM catalog_entities WHERE tenant_id = $1 AND entity = 'offer' AND NOT deleted
                                                    AND status = 'active') AS active_offers,
           (SELECT count(*) FROM catalog_entities o
             WHERE o.tenant_id = $1 AND o.entity = 'offer' AND NOT o.deleted AND o.status = 'active'
               AND EXISTS (SELECT 1 FROM catalog_entities c
                            WHERE c.tenant_id = $1 AND c.entity = 'creative' AND NOT c.deleted
                              AND c.offer_id = o.entity_id)) AS with_creatives,
           (SELECT count(*) FROM catalog_entities WHERE tenant_id = $1 AND entity = 'creative' AND NOT deleted) AS creatives",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    Body::json(&to_response(&row))
}

pub fn to_response(r: &Row) -> Funnel {
    Funnel {
        stages: vec![
            Stage { label: "Total Offers", count: r.total_offers },
            Stage { label: "Active Offers", count: r.active_offers },
            Stage { label: "With Creatives", count: r.with_creatives },
            Stage { label: "Creatives", count: r.creatives },
        ],
    }
}
