//! Explanations of one stored decision (docs/api.md 5.3): `POST /api/v1/decisions/{id}/narrative`
//! (this module) and `…/shap` (`shap`). Both need the tenant's opt-in
//! (`aiAnalyzerSettings.llmExplanationsEnabled`), answer 404 for a trace that is not the
//! tenant's (or was not stored), are rate-limited per tenant, and are audited.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use consumers::events::DecisionTrace;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::{self, Audited};
use super::auth::{Caller, Role};
use super::catalog::names;
use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::openapi::{ErrorBody, Refusals, TenantHeader};
use super::state::AppState;
use super::tenant_settings::explanations_enabled;
use super::traces::stored_trace;
use crate::narrative::{Facts, Mode, Tokens};

/// The seed's exact sentence.
pub const NOT_OPTED_IN: &str = "LLM explanations are not enabled for this tenant.";

/// Characters of a narrative the audit row keeps.
const PREVIEW_CHARS: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(narrative))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct NarrativeRequest {
    /// The audience (default regulator).
    #[schema(value_type = Option<crate::narrative::Mode>)]
    mode: Option<String>,
    #[serde(default)]
    no_cache: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct NarrativeAnswer {
    narrative: String,
    mode: Mode,
    model: String,
    cached: bool,
    tokens: Tokens,
    created_at: String,
}

/// A JSON body of the explanation endpoints; an empty one takes the defaults.
pub fn body<T: serde::de::DeserializeOwned + Default>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("the body is not a valid request: {e}")))
}

/// The opt-in, then the trace (decoded: every stored body passed the decoder).
pub async fn explainable_trace(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(Value, DecisionTrace)> {
    opted_in(explanations_enabled(&state.pool, &caller.tenant_id).await?)?;
    let body = stored_trace(&state.pool, &caller.tenant_id, id).await?.ok_or_else(|| trace_not_found(id))?;
    let trace = serde_json::from_value(body.clone()).map_err(anyhow::Error::from)?;
    Ok((body, trace))
}

/// 403 with the seed's sentence unless the tenant opted in.
pub fn opted_in(enabled: bool) -> ApiResult<()> {
    if enabled {
        Ok(())
    } else {
        Err(ApiError::Forbidden(NOT_OPTED_IN.into()))
    }
}

pub fn trace_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "decision trace {id:?} not found: it does not exist, is another tenant's, or was not stored \
         (tracing disabled or sampled out for this tenant)"
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/decisions/{id}/narrative",
    tag = "traces",
    summary = "A decision explained in words",
    description = "Opt-in per tenant (`aiAnalyzerSettings.llmExplanationsEnabled`); 20 a minute per tenant; cached \
                   7 days. A regulator narrative is recorded in the audit log.",
    params(TenantHeader, ("id" = String, Path, description = "The trace id")),
    request_body(content = NarrativeRequest, description = "Optional: `{}` asks for a regulator narrative"),
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "The narrative", body = NarrativeAnswer),
        (status = 502, description = "The language model failed", body = ErrorBody),
        Refusals,
    )
)]
async fn narrative(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    bytes: Bytes,
) -> ApiResult<Json<NarrativeAnswer>> {
    caller.require(Role::Viewer)?;
    state.limits.check_narrative(&caller.tenant_id)?;
    let request: NarrativeRequest = body(&bytes)?;
    let mode: Mode = request.mode.as_deref().unwrap_or("regulator").parse().map_err(ApiError::BadRequest)?;
    let (_, trace) = explainable_trace(&state, &caller, &id).await?;
    let names = names(&state.pool, &caller.tenant_id, "offer", &Facts::offer_ids(&trace)).await?;
    let facts = Facts::of(&trace, &names);
    let (n, cached) = state
        .narrator
        .narrate(&caller.tenant_id, &facts, mode, request.no_cache)
        .await
        .map_err(|e| ApiError::BadGateway(e.to_string()))?;
    if mode == Mode::Regulator {
        let preview: String = n.narrative.chars().take(PREVIEW_CHARS).collect();
        let audited = Audited {
            action: "generate_narrative",
            entity_type: "decision_trace",
            entity_id: &id,
            entity_name: Some("regulator narrative".into()),
            changes: json!({"mode": mode, "model": n.model, "cached": cached, "narrativePreview": preview}),
        };
        audit::record(&state.pool, &caller, audited).await?;
    }
    Ok(Json(NarrativeAnswer {
        narrative: n.narrative,
        mode: n.mode,
        model: n.model,
        cached,
        tokens: n.tokens,
        created_at: n.created_at,
    }))
}
