//! `GET /api/v1/api-keys` and `DELETE /api/v1/api-keys/{id}` (issue 17): a tenant admin lists
//! the tenant's keys and revokes one (a leaked key, say). The key itself is never shown again;
//! a revoked key stops working on every API replica within the key cache's lifetime (5 s).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::openapi::{Refusals, TenantHeader};
use super::state::AppState;
use crate::keys::{self, KeyInfo};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(revoke))
}

#[derive(Serialize, utoipa::ToSchema)]
struct KeyList {
    keys: Vec<KeyInfo>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Revoked {
    id: String,
    revoked: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "tenant",
    summary = "The tenant's API keys, active and revoked (admin)",
    params(TenantHeader),
    security(("apiKey" = [])),
    responses((status = 200, description = "The keys, oldest first; never the keys themselves", body = KeyList), Refusals)
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<KeyList>> {
    caller.require(Role::Admin)?;
    Ok(Json(KeyList { keys: keys::list(&state.pool, Some(&caller.tenant_id)).await? }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "tenant",
    summary = "Revoke one of the tenant's keys (admin)",
    description = "The key stops working on every API replica within 5 s (each replica looks a key up again \\
                   after that long). 404 when the tenant has no active key with this id.",
    params(TenantHeader, ("id" = String, Path, description = "The key's id, as listed (16 hexadecimal digits)")),
    security(("apiKey" = [])),
    responses((status = 200, description = "Revoked", body = Revoked), Refusals)
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Revoked>> {
    caller.require(Role::Admin)?;
    if !keys::is_key_id(&id) {
        return Err(ApiError::BadRequest(format!("a key id is 16 hexadecimal digits, got {id:?}")));
    }
    if keys::revoke(&state.pool, &id, Some(&caller.tenant_id)).await? {
        Ok(Json(Revoked { id, revoked: true }))
    } else {
        Err(ApiError::NotFound(format!("this tenant has no active key {id:?}")))
    }
}
