//! Names from the catalog (docs/dashboard-types.md 4: an id absent from the catalog shows its
//! id), for the dashboard types and the narratives.

use std::collections::HashMap;

use sqlx::PgPool;

use super::error::ApiResult;

/// A catalog entity's name.
#[derive(sqlx::FromRow)]
struct NameRow {
    entity_id: String,
    name: String,
}

/// Names of catalog entities of one kind (docs/dashboard-types.md 4: an id absent from the catalog shows its id).
pub async fn names(pool: &PgPool, tenant: &str, entity: &str, ids: &[String]) -> ApiResult<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<NameRow> = sqlx::query_as(
        "SELECT entity_id, name FROM catalog_entities
          WHERE tenant_id = $1 AND entity = $2 AND entity_id = ANY($3) AND NOT deleted AND name IS NOT NULL",
    )
    .bind(tenant)
    .bind(entity)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.entity_id, r.name)).collect())
}

pub fn name_or_id(names: &HashMap<String, String>, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_owned())
}
