//! The catalog's gradient-boosted models, parsed once per (tenant, model, catalog version) for
//! the SHAP handler: parsing a 500-tree dump costs milliseconds, explaining it microseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sqlx::PgPool;

use super::error::{ApiError, ApiResult};
use crate::explain::Ensemble;

/// Bytes of parsed models kept: past it the cache is cleared (models are few, and parsing one
/// takes a fraction of a second). A 500-tree depth-6 model holds ~2.5 MB.
const MODELS_MAX_BYTES: usize = 256 << 20;

/// Parsed models per (tenant, model id), with the catalog version they were parsed at.
#[derive(Clone, Default)]
pub struct Models(Arc<Mutex<Parsed>>);

/// (tenant, model id) → the row version parsed and the ensemble; their bytes.
#[derive(Default)]
struct Parsed {
    models: HashMap<(String, String), (Version, Arc<Ensemble>)>,
    bytes: usize,
}

/// A catalog row's version: the transaction that last wrote it (`xmin`), so that any change,
/// versioned or not, is seen; a cache hit then costs one index lookup, not the model's JSON.
pub type Version = String;

/// What a SHAP request needs to know before computing, read in one round trip.
#[derive(sqlx::FromRow)]
pub struct Lookup {
    /// `aiAnalyzerSettings.llmExplanationsEnabled` is JSON `true` (as `tenant_settings` reads it).
    pub opted_in: bool,
    /// The trace is stored for the tenant.
    pub trace_stored: bool,
    /// The model's name and row version, when the tenant has the model.
    pub model_name: Option<String>,
    model_version: Option<Version>,
}

impl Models {
    /// The opt-in, the trace and the model's row in one statement: the three lookups are
    /// independent, and one round trip on one connection is the cheapest way to make them.
    /// The trace is looked up in `decision_trace_ids`: one index probe, where the partitioned
    /// `decision_traces` needs one per day kept.
    pub async fn lookup(pool: &PgPool, tenant: &str, trace: &str, model: &str) -> ApiResult<Lookup> {
        if trace.contains('\0') || model.contains('\0') {
            // PostgreSQL text cannot hold NUL, so no row can match.
            return Ok(Lookup { opted_in: true, trace_stored: false, model_name: None, model_version: None });
        }
        let found = sqlx::query_as(
            "SELECT COALESCE((SELECT data->'aiAnalyzerSettings'->'llmExplanationsEnabled' = 'true'::jsonb
                                FROM catalog_entities
                               WHERE tenant_id = $1 AND entity = 'tenant_settings' AND entity_id = $1
                                 AND NOT deleted), false) AS opted_in,
                    EXISTS (SELECT 1 FROM decision_trace_ids WHERE tenant_id = $1 AND id = $2) AS trace_stored,
                    m.name AS model_name, m.xmin::text AS model_version
               FROM (SELECT 1) AS one
               LEFT JOIN catalog_entities m
                 ON m.tenant_id = $1 AND m.entity = 'model' AND m.entity_id = $3 AND NOT m.deleted",
        )
        .bind(tenant)
        .bind(trace)
        .bind(model)
        .fetch_one(pool)
        .await?;
        Ok(found)
    }

    /// The model parsed last for (tenant, `id`) and its row version, if any: a request may
    /// start explaining with it while `lookup` confirms that it is still the current one.
    pub fn cached(&self, tenant: &str, id: &str) -> Option<(Version, Arc<Ensemble>)> {
        self.lock().models.get(&(tenant.to_owned(), id.to_owned())).cloned()
    }

    /// Whether `lookup` found the model at `version`.
    pub fn is_current(found: &Lookup, version: &str) -> bool {
        found.model_version.as_deref() == Some(version)
    }

    /// The tenant's model `id` as `lookup` found it, parsed (from the cache while its row is
    /// unchanged). 404 when the tenant has none; 400 when it is not a usable ensemble.
    pub async fn get(&self, pool: &PgPool, tenant: &str, id: &str, found: &Lookup) -> ApiResult<Arc<Ensemble>> {
        let not_found = || ApiError::NotFound(format!("model {id:?} not found for this tenant"));
        let version = found.model_version.as_ref().ok_or_else(not_found)?;
        let key = (tenant.to_owned(), id.to_owned());
        if let Some((v, model)) = self.lock().models.get(&key) {
            if v == version {
                return Ok(model.clone());
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
        let (data, version) = row.ok_or_else(not_found)?;
        let data = data.map(|d| d.0).unwrap_or(Value::Null);
        // Tens of milliseconds for a large model: off the async workers.
        let parsed =
            tokio::task::spawn_blocking(move || Ensemble::from_data(&data)).await.map_err(anyhow::Error::from)?;
        let model = Arc::new(parsed.map_err(|e| ApiError::BadRequest(format!("model {id:?}: {e}")))?);
        let mut cache = self.lock();
        if cache.bytes + model.heap_bytes() > MODELS_MAX_BYTES {
            *cache = Parsed::default();
        }
        cache.bytes += model.heap_bytes();
        if let Some((_, replaced)) = cache.models.insert(key, (version, model.clone())) {
            cache.bytes -= replaced.heap_bytes();
        }
        Ok(model)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parsed> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
