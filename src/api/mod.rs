//! The HTTP API: one router per module, merged here; one `Clone` state.

mod api_keys;
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
pub mod ingest_ops;
mod models;
mod observe;
pub mod openapi;
mod page;
pub mod rate_limit;
mod recovery;
pub mod serve;
mod shap;
mod single_flight;
mod state;
mod tenant_settings;
mod traces;
mod watermarks;
mod window;

use axum::middleware;
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
    guard::protect(routes, state.request_timeout).layer(middleware::from_fn(observe::observe)).with_state(state)
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
        .merge(api_keys::router())
        .merge(recovery::router())
        .merge(decisions::router())
        .merge(shap::router())
}

/// The OpenAPI document of the API, as served at `/api/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}
