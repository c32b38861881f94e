//! The HTTP API: one router per module, merged here; one `Clone` state.

pub mod auth;
pub mod cache;
mod dashboard;
pub mod data_version;
/// Every documented dashboard type (the benchmark iterates over them).
pub use dashboard::TYPES as DASHBOARD_TYPES;
pub mod error;
mod extract;
pub mod guard;
mod health;
mod ingest;
pub mod rate_limit;
pub mod serve;
mod single_flight;
mod traces;
mod window;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

pub use ingest::Watermarks;

#[derive(Clone)]
pub struct AppState {
    /// The API's own pool: its connections carry `statement_timeout` (ingest's do not).
    pub pool: PgPool,
    pub keys: auth::KeyCache,
    pub metrics: PrometheusHandle,
    /// Broker client for high watermarks (ingest status); the API never joins the group.
    pub watermarks: Arc<Watermarks>,
    pub cache: cache::ResponseCache,
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
}

/// Every route, with what bounds and protects them (`guard::protect`: JSON 404/405, the request
/// timeout, the panic catcher) inside the latency metrics, so timeouts and panics are measured.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(health::router())
        .merge(ingest::router())
        .merge(dashboard::router())
        .merge(traces::router());
    guard::protect(routes, state.request_timeout)
        .layer(middleware::from_fn_with_state(state.clone(), track_latency))
        .with_state(state)
}

/// Request latency per route (and per dashboard type, the unit users care about).
async fn track_latency(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let dashboard_type = if route == "/api/v1/dashboard-data" {
        req.uri().query().and_then(|q| {
            q.split('&').find_map(|kv| kv.strip_prefix("type=")).map(|t| dashboard::canonical_type(t).to_owned())
        })
    } else {
        None
    };
    let resp = next.run(req).await;
    metrics::histogram!(
        "http_request_duration_seconds",
        "route" => route,
        "type" => dashboard_type.unwrap_or_default(),
        "status" => resp.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    resp
}
