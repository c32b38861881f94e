//! `POST /api/v1/dead-letters/replay` and `POST /api/v1/dead-letters/purge` (issue 17): the
//! admin calls of `decision-views dead-letters replay|purge`, over the dead letters the caller
//! may list (`GET /api/v1/dead-letters`): a tenant admin's tenant's, or for a platform key
//! those attributed to no tenant.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Role, StatusCaller};
use super::error::{ApiError, ApiResult};
use super::extract::ApiJson;
use super::openapi::{OptionalTenantHeader, Refusals};
use super::state::AppState;
use crate::recovery::dead_letters::{self, Filter, ReplayReport};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(replay)).routes(routes!(purge))
}

/// Which dead letters: every condition given holds (none given: all the caller's).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Selection {
    topic: Option<String>,
    reason: Option<String>,
    /// Received at or after (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only these ids.
    #[serde(default)]
    ids: Vec<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Purged {
    purged: u64,
}

/// The caller's filter: its tenant's letters, or the platform's.
fn filter(caller: &StatusCaller, s: Selection) -> ApiResult<Filter> {
    let tenant = match caller {
        StatusCaller::Platform => String::new(),
        StatusCaller::Tenant(c) => {
            c.require(Role::Admin)?;
            c.tenant_id.clone()
        }
    };
    if [&s.topic, &s.reason].iter().any(|v| v.as_ref().is_some_and(|v| v.contains('\0'))) {
        return Err(ApiError::BadRequest("topic and reason must not contain a NUL character".into()));
    }
    Ok(Filter { tenant: Some(tenant), topic: s.topic, reason: s.reason, since: s.since, ids: s.ids })
}

#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay",
    tag = "operations",
    summary = "Replay dead letters through ingest, exactly once (admin)",
    description = "Each matching letter not applied yet is decoded again with today's limits and applied \\
                   to the views in one transaction that also marks it (`replayOutcome`); letters stay, \\
                   for audit. A letter that did not keep its whole message is read again from Kafka. \\
                   Large replays belong to `decision-views dead-letters replay`, which has no request timeout.",
    params(OptionalTenantHeader),
    request_body = Selection,
    security(("apiKey" = [])),
    responses((status = 200, description = "What became of each letter", body = ReplayReport), Refusals)
)]
async fn replay(
    State(state): State<AppState>,
    caller: StatusCaller,
    ApiJson(selection): ApiJson<Selection>,
) -> ApiResult<Json<ReplayReport>> {
    let filter = filter(&caller, selection)?;
    let report = state.replayer.replay(&state.pool, &filter).await.map_err(ApiError::Internal)?;
    Ok(Json(report))
}

#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/purge",
    tag = "operations",
    summary = "Delete dead letters, replayed or not (admin)",
    params(OptionalTenantHeader),
    request_body = Selection,
    security(("apiKey" = [])),
    responses((status = 200, description = "How many were deleted", body = Purged), Refusals)
)]
async fn purge(
    State(state): State<AppState>,
    caller: StatusCaller,
    ApiJson(selection): ApiJson<Selection>,
) -> ApiResult<Json<Purged>> {
    let filter = filter(&caller, selection)?;
    Ok(Json(Purged { purged: dead_letters::purge(&state.pool, &filter).await? }))
}
