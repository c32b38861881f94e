//! The catalog's gradient-boosted models, parsed once per (tenant, model, catalog version) for
//! the SHAP handler: parsing a 500-tree dump costs milliseconds, explaining it microseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::PgPool;

use super::error::{ApiError, ApiResult};
use crate::explain::Ensemble;

/// Parsed models kept: past it the cache is cleared (models are few; parsing is milliseconds).
const MODELS_MAX: usize = 256;

/// Parsed models per (tenant, model id), with the catalog version they were parsed at.
#[derive(Clone, Default)]
pub struct Models(Arc<Mutex<Parsed>>);

/// (tenant, model id) → the row version parsed and the ensemble.
type Parsed = HashMap<(String, String), (Version, Arc<Ensemble>)>;

/// A catalog row's version: the transaction that last wrote it (`xmin`), so that any change,
/// versioned or not, is seen; a cache hit then costs one index lookup, not the model's JSON.
type Version = String;

#[derive(sqlx::FromRow)]
struct ModelMeta {
    name: Option<String>,
    written_by: String,
}

impl Models {
    /// The tenant's model `id`, parsed (from the cache while its row is unchanged), and its
    /// name. 404 when the tenant has none; 400 when it is not a usable ensemble.
    pub async fn get(&self, pool: &PgPool, tenant: &str, id: &str) -> ApiResult<(Arc<Ensemble>, Option<String>)> {
        let meta: Option<ModelMeta> = sqlx::query_as(
            "SELECT name, xmin::text AS written_by FROM catalog_entities
              WHERE tenant_id = $1 AND entity = 'model' AND entity_id = $2 AND NOT deleted",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let meta = meta.ok_or_else(|| ApiError::NotFound(format!("model {id:?} not found for this tenant")))?;
        let key = (tenant.to_owned(), id.to_owned());
        if let Some((v, model)) = self.lock().get(&key) {
            if *v == meta.written_by {
                return Ok((model.clone(), meta.name));
            }
        }
        // Read with the version it was read at: a change in between is seen on the next call.
        let row: Option<(Option<sqlx::types::Json<Value>>, String)> = sqlx::query_as(
            "SELECT data, xmin::text FROM catalog_entities
              WHERE tenant_id = $1 AND entity = 'model' AND entity_id = $2 AND NOT deleted",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let (data, version) =
            row.ok_or_else(|| ApiError::NotFound(format!("model {id:?} not found for this tenant")))?;
        let data = data.map(|d| d.0).unwrap_or(Value::Null);
        let model =
            Arc::new(Ensemble::from_data(&data).map_err(|e| ApiError::BadRequest(format!("model {id:?}: {e}")))?);
        let mut cache = self.lock();
        if cache.len() >= MODELS_MAX {
            cache.clear();
        }
        cache.insert(key, (version, model.clone()));
        Ok((model, meta.name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parsed> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
