//! `POST /api/v1/decisions/{id}/shap` (docs/api.md 5.3): exact TreeSHAP contributions of a
//! tenant's `gradient_boosted` catalog model for the attributes given, computed by
//! `crate::explain` from the model `super::models` keeps parsed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::{self, Audited};
use super::auth::{Caller, Role};
use super::decisions::{body, opted_in, trace_not_found};
use super::error::{ApiError, ApiResult};
use super::extract::ApiPath;
use super::models::Models;
use super::openapi::{Refusals, TenantHeader};
use super::state::AppState;
use crate::explain::{explain_trees, probability_deltas, Ensemble, Explanation};

/// Largest `round`: a double has ~15 significant decimals.
const MAX_ROUND: u32 = 15;
/// From this many trees an explanation may be split over several blocking threads (a few
/// trees take microseconds: not worth a thread).
const SPLIT_FROM_TREES: usize = 64;

/// How many threads one explanation uses: one per core, at most four. The request also needs
/// PostgreSQL (the lookup runs while the explanation does) and the HTTP workers, which share
/// the cores; on this 2-core machine two threads answered faster than one (p50 3.8–4.0 against
/// 4.1–4.7 ms; BENCHMARKS.md, "SHAP latency", third pass).
fn threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.clamp(1, 4)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShapRequest {
    /// A tenant's `gradient_boosted` catalog model (required).
    model_id: Option<String>,
    /// The candidate offer explained (echoed in the audit log).
    offer_id: Option<String>,
    /// The attributes the scorer saw (required): not stored with the trace.
    #[schema(value_type = Option<Object>)]
    attributes: Option<Map<String, Value>>,
    /// Decimal places of the answer, 0–15 (0: raw doubles; default 6).
    #[schema(maximum = 15)]
    round: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShapAnswer {
    decision_trace_id: String,
    model_id: String,
    model_name: Option<String>,
    offer_id: Option<String>,
    /// Per feature, raw-margin (logit) space.
    shap_values: BTreeMap<String, f64>,
    /// Cover-weighted expected margin of the trees, plus the model's `baseScore`.
    baseline: f64,
    raw_margin: f64,
    /// rawMargin − baseline − Σ shapValues, computed.
    additivity_residual: f64,
    /// Features with a non-zero contribution.
    feature_count: usize,
    /// Attributes the model does not use (extension).
    ignored_attributes: Vec<String>,
    /// sigmoid(baseline + φᵢ) − sigmoid(baseline) per feature (extension; display only).
    probability_deltas: BTreeMap<String, f64>,
}

fn rounded(x: f64, decimals: u32) -> f64 {
    if decimals == 0 {
        return x;
    }
    let f = 10f64.powi(decimals as i32);
    (x * f).round() / f
}

/// The explanation, off the async workers (milliseconds of CPU): explanations add up over
/// trees, so a large model's trees may be split over [`threads`] threads.
async fn compute(model: Arc<Ensemble>, x: Vec<Option<f64>>) -> ApiResult<Explanation> {
    let trees = model.tree_count();
    let parts = if trees >= SPLIT_FROM_TREES { threads() } else { 1 };
    let x = Arc::new(x);
    let running: Vec<_> = (0..parts)
        .map(|p| {
            let (model, x) = (model.clone(), x.clone());
            let range = trees * p / parts..trees * (p + 1) / parts;
            tokio::task::spawn_blocking(move || explain_trees(&model, &x, range))
        })
        .collect();
    // No trees: zeros, to which the parts are added in tree order.
    let mut whole = explain_trees(&model, &x, 0..0);
    for part in running {
        whole = whole.and(&part.await.map_err(anyhow::Error::from)?);
    }
    Ok(whole.finish(&model))
}

/// The model's row from the request's attributes, and the attributes it does not use.
fn row(model: &Ensemble, attributes: &Map<String, Value>) -> ApiResult<(Vec<Option<f64>>, Vec<String>)> {
    let mut x = vec![None; model.feature_names().len()];
    let mut ignored = Vec::new();
    for (name, value) in attributes {
        let v = match value {
            Value::Null => None,
            Value::Number(n) => n.as_f64(),
            _ => return Err(ApiError::BadRequest(format!("attribute {name:?} must be a number (or null: missing)"))),
        };
        match model.feature_index(name) {
            Some(i) => x[i] = v,
            None => ignored.push(name.clone()),
        }
    }
    Ok((x, ignored))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(shap))
}

#[utoipa::path(
    post,
    path = "/api/v1/decisions/{id}/shap",
    tag = "traces",
    summary = "Exact TreeSHAP values of a decision",
    description = "Opt-in per tenant (as the narrative); 30 a minute per tenant; every answer is recorded in the \
                   audit log. baseline + Σ shapValues = rawMargin; score = sigmoid(rawMargin).",
    params(TenantHeader, ("id" = String, Path, description = "The trace id")),
    request_body = ShapRequest,
    security(("apiKey" = [])),
    responses((status = 200, description = "The SHAP values", body = ShapAnswer), Refusals)
)]
async fn shap(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    bytes: Bytes,
) -> ApiResult<Json<ShapAnswer>> {
    caller.require(Role::Viewer)?;
    state.limits.check_shap(&caller.tenant_id)?;
    let request: ShapRequest = body(&bytes)?;
    let model_id = request.model_id.ok_or_else(|| ApiError::BadRequest("modelId is required".into()))?;
    let attributes =
        request.attributes.ok_or_else(|| ApiError::BadRequest("attributes (an object) is required".into()))?;
    let round = request.round.unwrap_or(6);
    if round > MAX_ROUND {
        return Err(ApiError::BadRequest(format!("round must be from 0 to {MAX_ROUND}, got {round}")));
    }
    let tenant = &caller.tenant_id;
    // The model parsed last time starts explaining the row while the lookup runs; the lookup
    // then confirms it (the same row version: the usual case) or it is discarded.
    let speculative = state.models.cached(tenant, &model_id).and_then(|(version, model)| {
        let (x, ignored) = row(&model, &attributes).ok()?;
        Some((version, model.clone(), ignored, tokio::spawn(compute(model, x))))
    });
    let found = Models::lookup(&state.pool, tenant, &id, &model_id).await?;
    opted_in(found.opted_in)?;
    if !found.trace_stored {
        return Err(trace_not_found(&id));
    }
    let model_name = found.model_name.clone();
    let (model, e, ignored) = match speculative {
        Some((version, model, ignored, running)) if Models::is_current(&found, &version) => {
            (model, running.await.map_err(anyhow::Error::from)??, ignored)
        }
        _ => {
            let model = state.models.get(&state.pool, tenant, &model_id, &found).await?;
            let (x, ignored) = row(&model, &attributes)?;
            (model.clone(), compute(model, x).await?, ignored)
        }
    };
    let residual = e.additivity_residual();
    let names = model.feature_names();
    let deltas = probability_deltas(e.baseline, &e.shap);
    let answer = ShapAnswer {
        decision_trace_id: id.clone(),
        model_id: model_id.clone(),
        model_name: model_name.clone(),
        offer_id: request.offer_id.clone(),
        shap_values: names.iter().zip(&e.shap).map(|(n, v)| (n.clone(), rounded(*v, round))).collect(),
        baseline: rounded(e.baseline, round),
        raw_margin: rounded(e.raw_margin, round),
        additivity_residual: rounded(residual, round),
        feature_count: e.shap.iter().filter(|v| **v != 0.0).count(),
        ignored_attributes: ignored,
        probability_deltas: names.iter().zip(&deltas).map(|(n, v)| (n.clone(), rounded(*v, round))).collect(),
    };
    let audited = Audited {
        action: "compute_shap",
        entity_type: "decision_trace",
        entity_id: &id,
        entity_name: Some(format!(
            "shap for {} / {}",
            model_name.as_deref().unwrap_or(&model_id),
            request.offer_id.as_deref().unwrap_or("-")
        )),
        changes: json!({
            "modelId": model_id, "modelName": model_name, "offerId": request.offer_id,
            "featureCount": answer.feature_count, "baseline": answer.baseline, "rawMargin": answer.raw_margin,
            "additivityResidual": answer.additivity_residual,
        }),
    };
    audit::record(&state.pool, &caller, audited).await?;
    Ok(Json(answer))
}
