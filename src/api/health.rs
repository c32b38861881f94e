use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// PostgreSQL reachable and every migration of this build applied.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "PostgreSQL reachable and every migration applied", body = Object),
    (status = 503, description = "Not ready, and why", body = Object),
))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let expected = crate::MIGRATOR.migrations.iter().filter(|m| m.migration_type.is_up_migration()).count() as i64;
    let applied: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&state.pool).await;
    match applied {
        Ok(n) if n >= expected => (StatusCode::OK, Json(json!({ "status": "ready", "migrations": n }))),
        Ok(n) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "error": format!("{n} of {expected} migrations applied") })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "error": "PostgreSQL is not reachable" })),
            )
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> String {
    super::data_version::record_freshness(&state.pool, &state.topics).await;
    state.metrics.render()
}
