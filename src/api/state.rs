//! The one state every handler gets: pools, caches, limits and what the API was configured
//! with. Its own module, below every handler module, so that they all import it downward.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use super::watermarks::Watermarks;
use super::{auth, cache, catalog, data_version, guard, models, rate_limit};
use crate::narrative::Narrator;
use crate::recovery::dead_letters::Replayer;

#[derive(Clone)]
pub struct AppState {
    /// The API's own pool: its connections carry `statement_timeout` (ingest's do not).
    pub pool: PgPool,
    pub keys: auth::KeyCache,
    pub metrics: PrometheusHandle,
    /// Broker client for high watermarks (ingest status); the API never joins the group.
    pub watermarks: Arc<Watermarks>,
    pub cache: cache::ResponseCache,
    /// The catalog's names, current at the tenant's catalog version (`catalog::CatalogNames`).
    pub names: catalog::NameCache,
    /// Keys the cache: a commit to the views invalidates every cached answer.
    pub data_version: data_version::DataVersion,
    pub limits: rate_limit::RateLimits,
    /// Kafka topic names, for the freshness header.
    pub topics: Arc<Vec<String>>,
    /// The database name: namespaces the response cache.
    pub namespace: Arc<str>,
    /// Bound on uncached computations running at once (see `guard`).
    pub computations: guard::Computations,
    /// Largest `offset` of the paginated endpoints.
    pub max_offset: i64,
    /// Longest a request may take before it answers 504.
    pub request_timeout: Duration,
    /// Writes and caches decision narratives.
    pub narrator: Narrator,
    /// Parsed SHAP models.
    pub models: models::Models,
    /// Replays dead letters (`POST /api/v1/dead-letters/replay`).
    pub replayer: Arc<Replayer>,
}

/// What authentication takes from the state (`auth` sees no more of it).
impl FromRef<AppState> for auth::AuthState {
    fn from_ref(state: &AppState) -> Self {
        auth::AuthState { pool: state.pool.clone(), keys: state.keys.clone() }
    }
}
