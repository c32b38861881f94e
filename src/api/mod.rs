//! The HTTP API: one router per module, merged here; one `Clone` state.

mod audit;
pub mod auth;
pub mod cache;
mod catalog;
mod dashboard;
pub mod data_version;
mod decisions;
pub use dashboard::DashboardType;
/// Every documented dashboard type's name (the benchmark and tests iterate over them).
pub const DASHBOARD_TYPES: [&str; 18] = DashboardType::NAMES;
pub mod error;
mod extract;
pub mod guard;
mod health;
mod ingest;
mod models;
pub mod openapi;
mod page;
pub mod rate_limit;
pub mod serve;
mod shap;
mod single_flight;
mod state;
mod tenant_settings;
mod traces;
mod watermarks;
mod window;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use dashboard::answer_schemas;
pub use state::AppState;
pub use watermarks::Watermarks;

/// Every route, with what bounds and protects them (`guard::protect`: JSON 404/405, the request
/// timeout, the panic catcher) inside the latency metrics, so timeouts and panics are measured.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let routes = Router::new().merge(api).merge(openapi::router(&doc)).merge(page::router());
    guard::protect(routes, state.request_timeout)
        .layer(middleware::from_fn_with_state(state.clone(), track_latency))
        .with_state(state)
}

/// The documented routes: the OpenAPI document is assembled from them (`openapi`).
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(ingest::router())
        .merge(dashboard::router())
        .merge(traces::router())
        .merge(tenant_settings::router())
        .merge(audit::router())
        .merge(decisions::router())
        .merge(shap::router())
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// Request latency per route (and per dashboard type, the unit users care about).
async fn track_latency(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let dashboard_type = if route == "/api/v1/dashboard-data" {
        req.uri().query().and_then(|q| {
            let t = q.split('&').find_map(|kv| kv.strip_prefix("type="))?;
            // A documented type or "unknown": bounded label values.
            Some(t.parse::<DashboardType>().map_or("unknown", DashboardType::name).to_owned())
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
