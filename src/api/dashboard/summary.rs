//! `summary`: catalog counts now (docs/dashboard-types.md 5.1).

use serde::Serialize;
use sqlx::PgPool;

use super::read::Body;
use crate::api::error::ApiResult;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Offers with status `active`.
    pub active_offers: i64,
    /// Channels with status `active`.
    pub active_channels: i64,
    /// Experiments with status `running`.
    pub active_experiments: i64,
    /// All journeys.
    pub total_journeys: i64,
    /// Triggers with status `active`.
    pub active_triggers: i64,
    /// Approvals with status `pending`.
    pub pending_approvals: i64,
}

/// How many of the tenant's live catalog entities of one kind have one status.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub entity: String,
    pub status: Option<String>,
    pub count: i64,
}

pub async fn handle(pool: &PgPool, tenant: &str) -> ApiResult<Body> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT entity, status, count(*) AS count FROM catalog_entities
          WHERE tenant_id = $1 AND NOT deleted
            AND entity IN ('offer', 'channel', 'experiment', 'journey', 'trigger', 'approval')
          GROUP BY entity, status",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    Body::json(&to_response(&rows))
}

pub fn to_response(rows: &[Row]) -> Summary {
    let count = |entity: &str, status: Option<&str>| -> i64 {
        rows.iter()
            .filter(|r| r.entity == entity && (status.is_none() || r.status.as_deref() == status))
            .map(|r| r.count)
            .sum()
    };
    Summary {
        active_offers: count("offer", Some("active")),
        active_channels: count("channel", Some("active")),
        active_experiments: count("experiment", Some("running")),
        total_journeys: count("journey", None),
        active_triggers: count("trigger", Some("active")),
        pending_approvals: count("approval", Some("pending")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_status() {
        let row = |entity: &str, status: Option<&str>, count| Row {
            entity: entity.into(),
            status: status.map(Into::into),
            count,
        };
        let rows: Vec<Row> = vec![
            row("offer", Some("active"), 3),
            row("offer", Some("draft"), 2),
            row("journey", None, 1),
            row("journey", Some("active"), 2),
            row("experiment", Some("running"), 1),
            row("approval", Some("approved"), 4),
        ];
        let s = to_response(&rows);
        assert_eq!((s.active_offers, s.total_journeys, s.active_experiments, s.pending_approvals), (3, 3, 1, 0));
    }
}
