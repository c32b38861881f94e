//! `GET /api/v1/dashboard-data?type=…`: one module per type, each with a rows query and a pure
//! `to_response(rows, params)`. This module dispatches; `request` says what each type reads
//! (and so what keys its cache entries).

mod acceptance_rate;
mod anomaly;
mod anomaly_candidates;
mod attribution_summary;
mod budget_burn;
mod channel_effectiveness;
mod daily_trend;
mod degraded_scoring;
mod funnel;
mod latency_trend;
mod model_metrics_trend;
mod offer_performance;
pub(crate) mod offer_performance_grouped;
mod policy_impact;
mod request;
mod revenue_trend;
mod score_distribution;
mod selection_frequency;
mod summary;
mod why_not_ranked;

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use super::auth::{Caller, Role};
use super::cache;
use super::error::{ApiError, ApiResult};
use super::extract::ApiQuery;
use super::window::Window;
use super::AppState;
use request::DashboardRequest;

/// Every documented type (seed `000_…`), in the documented order.
pub const TYPES: [&str; 18] = [
    "summary",
    "acceptance_rate",
    "offer_performance",
    "channel_effectiveness",
    "budget_burn",
    "funnel",
    "attribution_summary",
    "daily_trend",
    "model_metrics_trend",
    "latency_trend",
    "offer_performance_grouped",
    "revenue_trend",
    "policy_impact",
    "score_distribution",
    "degraded_scoring",
    "selection_frequency",
    "anomaly_candidates",
    "why_not_ranked",
];

/// The type label used in metrics: a documented type or "unknown" (bounded label values).
pub fn canonical_type(t: &str) -> &'static str {
    TYPES.iter().find(|x| **x == t).copied().unwrap_or("unknown")
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/dashboard-data", get(dashboard_data))
}

/// A type's parameters: only those it declares in `request::SPECS` (non-empty, NUL-free), and
/// the window.
pub struct Params {
    pub raw: HashMap<String, String>,
    pub window: Window,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw.get(name).map(String::as_str).filter(|s| !s.is_empty())
    }
}

/// A serialized JSON answer. Types serialize their typed response structs straight to bytes:
/// fields keep their documented order, and the bytes are what caching and ETags work on.
pub struct Body(Vec<u8>);

impl Body {
    pub fn json(value: &impl Serialize) -> ApiResult<Body> {
        Ok(Body(serde_json::to_vec(value)?))
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// The read path: rate limit → validate → cache (per tenant; concurrent misses share one
/// computation) → compute (bounded) → ETag / 304, X-Data-As-Of and X-Cache.
async fn dashboard_data(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(raw): ApiQuery,
) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    state.limits.check_read(&caller.tenant_id)?;
    let request = DashboardRequest::parse(&raw)?;
    let key = request.cache_key(&state.namespace, state.data_version.current(), &caller.tenant_id);
    let compute = || async {
        // Only a computation takes a permit: hits and coalesced waiters cost no query.
        let _permit = state.computations.admit().await?;
        // Freshness first: the answer is at least as fresh as the header says.
        let data_as_of = data_as_of(&state).await?;
        let body = compute(&state, &caller, request).await?;
        Ok(cache::Entry {
            tenant: caller.tenant_id.clone(),
            etag: cache::etag(&body.0),
            data_as_of,
            body: String::from_utf8(body.0).map_err(anyhow::Error::from)?,
        })
    };
    let (entry, lookup) = state.cache.get_or_compute(&key, &caller.tenant_id, compute).await?;
    Ok(entry.respond(&headers, lookup))
}

/// The time up to which the views are complete: the oldest instant at which a partition was
/// seen fully applied. None while some partition has never caught up.
pub(super) async fn data_as_of(state: &AppState) -> ApiResult<Option<String>> {
    let (never, oldest): (bool, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT bool_or(caught_up_at IS NULL) IS TRUE, min(caught_up_at)
           FROM consumer_offsets WHERE topic = ANY($1)",
    )
    .bind(state.topics.as_slice())
    .fetch_one(&state.pool)
    .await?;
    Ok(if never { None } else { oldest.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) })
}

async fn compute(state: &AppState, caller: &Caller, request: DashboardRequest) -> ApiResult<Body> {
    let p = request.params;
    let tenant = caller.tenant_id.as_str();
    let pool = &state.pool;
    let body = match request.spec.name {
        "summary" => summary::handle(pool, tenant).await?,
        "funnel" => funnel::handle(pool, tenant).await?,
        "acceptance_rate" => acceptance_rate::handle(pool, tenant, &p).await?,
        "daily_trend" => daily_trend::handle(pool, tenant, &p).await?,
        "offer_performance" => offer_performance::handle(pool, tenant, &p).await?,
        "channel_effectiveness" => channel_effectiveness::handle(pool, tenant, &p).await?,
        "revenue_trend" => revenue_trend::handle(pool, tenant, &p).await?,
        "budget_burn" => budget_burn::handle(pool, tenant).await?,
        "offer_performance_grouped" => offer_performance_grouped::handle(pool, tenant, &p).await?,
        "model_metrics_trend" => model_metrics_trend::handle(pool, tenant, &p).await?,
        "policy_impact" => policy_impact::handle(pool, tenant).await?,
        "attribution_summary" => attribution_summary::handle(pool, tenant, &p).await?,
        "degraded_scoring" => degraded_scoring::handle(pool, tenant, &p).await?,
        "latency_trend" => latency_trend::handle(pool, tenant, &p).await?,
        "selection_frequency" => selection_frequency::handle(pool, tenant, &p).await?,
        "anomaly_candidates" => anomaly_candidates::handle(pool, tenant, &p).await?,
        "why_not_ranked" => why_not_ranked::handle(pool, tenant, &p).await?,
        "score_distribution" => score_distribution::handle(pool, tenant, &p).await?,
        // TYPES and this match list the same 18 names (checked by the unit test below).
        other => return Err(ApiError::Internal(anyhow::anyhow!("dashboard type {other:?} has no handler"))),
    };
    Ok(body)
}

/// How a `segmentId` parameter scopes a read.
pub enum SegmentScope {
    /// No segmentId: all customers.
    All,
    /// Only customers in this (materialized) segment.
    Segment(String),
    /// The answer is this warning body (SPEC 4), status 200.
    Warning(Body),
}

/// Resolves `segmentId`: unknown → "does not exist"; known from the catalog but without any
/// processed membership event → "has not been materialized yet".
pub async fn segment_scope(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<SegmentScope> {
    let Some(id) = p.get("segmentId") else { return Ok(SegmentScope::All) };
    let (materialized, in_catalog): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM segments_materialized WHERE tenant_id = $1 AND segment_id = $2),
                EXISTS (SELECT 1 FROM catalog_entities WHERE tenant_id = $1 AND entity = 'segment'
                                                       AND entity_id = $2 AND NOT deleted)",
    )
    .bind(tenant)
    .bind(id)
    .fetch_one(pool)
    .await?;
    Ok(if materialized {
        SegmentScope::Segment(id.to_owned())
    } else if in_catalog {
        SegmentScope::Warning(Body::json(
            &json!({ "data": [], "warning": format!("segment '{id}' has not been materialized yet") }),
        )?)
    } else {
        SegmentScope::Warning(Body::json(&json!({ "data": [], "warning": format!("segment '{id}' does not exist") }))?)
    })
}

/// Names of catalog entities of one kind (SPEC 4: an id absent from the catalog shows its id).
pub async fn names(pool: &PgPool, tenant: &str, entity: &str, ids: &[String]) -> ApiResult<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT entity_id, name FROM catalog_entities
          WHERE tenant_id = $1 AND entity = $2 AND entity_id = ANY($3) AND NOT deleted AND name IS NOT NULL",
    )
    .bind(tenant)
    .bind(entity)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

pub fn name_or_id(names: &HashMap<String, String>, id: &str) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_owned())
}

/// The interaction counters at (day, offer, channel) grain, for reads that group by both offer
/// and channel: all customers, or one segment's. Returns the `FROM …
/// WHERE` part with `$1` tenant, `$2`/`$3` first/last day and `$4` segment (NULL for all).
pub fn interaction_source(scope: &SegmentScope) -> &'static str {
    match scope {
        SegmentScope::Segment(_) => {
            "FROM interaction_segment_daily WHERE tenant_id = $1 AND segment_id = $4 AND day BETWEEN $2 AND $3"
        }
        _ => "FROM interaction_daily WHERE tenant_id = $1 AND $4::text IS NULL AND day BETWEEN $2 AND $3",
    }
}

/// The grain of an interaction rollup (migration `interaction_rollups`).
#[derive(Debug, Clone, Copy)]
pub enum Grain {
    Day,
    Offer,
    Channel,
}

/// Like [`interaction_source`], from the smallest rollup that holds `grain`: a 90-day read then
/// touches 90 rows per day, offer or channel, not every (day, offer, channel). Segment `''`
/// holds all customers, so `$4` NULL reads it.
pub fn rollup_source(grain: Grain) -> &'static str {
    match grain {
        Grain::Day => {
            "FROM interaction_rollup_day WHERE tenant_id = $1 AND segment_id = COALESCE($4::text, '') AND day BETWEEN $2 AND $3"
        }
        Grain::Offer => {
            "FROM interaction_rollup_offer WHERE tenant_id = $1 AND segment_id = COALESCE($4::text, '') AND day BETWEEN $2 AND $3"
        }
        Grain::Channel => {
            "FROM interaction_rollup_channel WHERE tenant_id = $1 AND segment_id = COALESCE($4::text, '') AND day BETWEEN $2 AND $3"
        }
    }
}

/// Runs a window read over the interaction counters: binds `$1` tenant, `$2`/`$3` the
/// window's first and last day and `$4` the segment (NULL for all customers).
pub async fn fetch_window<T>(
    pool: &PgPool,
    sql: &str,
    tenant: &str,
    p: &Params,
    scope: &SegmentScope,
) -> ApiResult<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    Ok(sqlx::query_as(sql)
        .bind(tenant)
        .bind(p.window.since())
        .bind(p.window.today)
        .bind(segment_bind(scope))
        .fetch_all(pool)
        .await?)
}

pub fn segment_bind(scope: &SegmentScope) -> Option<&str> {
    match scope {
        SegmentScope::Segment(s) => Some(s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    /// Every documented type has a handler: the dispatch names each of TYPES.
    #[test]
    fn every_type_is_dispatched() {
        let src = include_str!("mod.rs");
        for t in super::TYPES {
            assert!(src.contains(&format!("\"{t}\" => ")), "{t} is not dispatched");
        }
    }
}
