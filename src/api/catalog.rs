//! Names from the catalog (docs/dashboard-types.md 4: an id absent from the catalog shows its
//! id), for the dashboard types and the narratives; and the copy of them a process keeps.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sqlx::PgPool;

use super::error::ApiResult;

/// A catalog entity's name.
#[derive(sqlx::FromRow)]
struct NameRow {
    entity_id: String,
    name: String,
}

/// Names by id.
pub type NameMap = Arc<HashMap<String, String>>;

/// Every name of one (tenant, entity kind), as read at one catalog version.
struct Held {
    version: i64,
    names: NameMap,
}

/// The catalog's names a process holds, per (tenant, entity kind), each copy tagged with the
/// tenant's catalog version it was read at (migration `catalog_versions`: every change to a
/// tenant's catalog gives it a version never given before, in the change's transaction). A
/// copy serves a read only at that same version, so it is never staler than the statement
/// that read the version. Bounded by what it mirrors: one copy per tenant and kind read, a
/// newer one replacing it.
#[derive(Clone, Default)]
pub struct NameCache(Arc<RwLock<HashMap<(String, String), Held>>>);

/// How a computation looks names up: the process's [`NameCache`] at the tenant's catalog
/// version as the request's first statement read it (`api::data_version::read_context`).
/// Without a version (the tenant has no catalog version yet, or a caller outside a dashboard
/// request) each lookup reads the ids it needs from the table.
#[derive(Clone, Default)]
pub struct CatalogNames {
    cache: NameCache,
    version: Option<i64>,
}

impl CatalogNames {
    pub fn at(cache: NameCache, version: Option<i64>) -> CatalogNames {
        CatalogNames { cache, version }
    }

    /// Names of `ids` of one entity kind (others may be in the map too).
    pub async fn of(&self, pool: &PgPool, tenant: &str, entity: &str, ids: &[String]) -> ApiResult<NameMap> {
        let Some(version) = self.version.filter(|_| !ids.is_empty()) else {
            return Ok(Arc::new(names(pool, tenant, entity, ids).await?));
        };
        let key = (tenant.to_owned(), entity.to_owned());
        if let Some(held) = self.cache.0.read().expect("name cache lock").get(&key) {
            if held.version == version {
                return Ok(held.names.clone());
            }
        }
        // The whole kind at once: one statement per catalog version, whatever ids later reads
        // ask for. Its version is read in the same statement (the same snapshot); a catalog
        // changed since the request's first statement gives a newer one, kept as it is. One
        // scan: the two aggregates see the rows in the same order, so the arrays pair up.
        let loaded: (Option<i64>, Vec<String>, Vec<String>) = sqlx::query_as(
            "SELECT (SELECT version FROM catalog_versions WHERE tenant_id = $1),
                    COALESCE(array_agg(entity_id), '{}'), COALESCE(array_agg(name), '{}')
               FROM catalog_entities
              WHERE tenant_id = $1 AND entity = $2 AND NOT deleted AND name IS NOT NULL",
        )
        .bind(tenant)
        .bind(entity)
        .fetch_one(pool)
        .await?;
        let (loaded_version, entity_ids, entity_names) = loaded;
        let names: NameMap = Arc::new(entity_ids.into_iter().zip(entity_names).collect());
        if let Some(v) = loaded_version {
            let mut held = self.cache.0.write().expect("name cache lock");
            held.insert(key, Held { version: v, names: names.clone() });
        }
        Ok(names)
    }
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
