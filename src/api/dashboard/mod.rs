//! `GET /api/v1/dashboard-data?type=…`: the route and the dispatch. One module per type below
//! it, each with a rows query and a pure `to_response(rows, params)`; `kind` names the types
//! and what each reads (which keys its cache entries), `request` validates a request, `read` is
//! the toolkit the types read with.

mod acceptance_rate;
mod anomaly_candidates;
mod attribution_summary;
mod budget_burn;
mod channel_effectiveness;
mod daily_trend;
mod degraded_scoring;
mod doc;
mod format;
mod funnel;
mod kind;
mod latency_trend;
mod model_metrics_trend;
mod offer_performance;
mod offer_performance_grouped;
mod policy_impact;
mod read;
mod request;
mod revenue_trend;
mod score_distribution;
mod selection_frequency;
mod summary;
mod totals;
mod why_not_ranked;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Role};
use super::cache;
use super::catalog::CatalogNames;
use super::data_version::read_context;
use super::error::ApiResult;
use super::extract::ApiQuery;
use super::openapi::{Refusals, TenantHeader};
use super::state::AppState;
pub use doc::answer_schemas;
use doc::{DashboardAnswer, DashboardQuery};
pub use kind::DashboardType;
use read::Body;
use request::DashboardRequest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard_data))
}

/// The read path: rate limit → validate → cache (per tenant; concurrent misses share one
/// computation) → compute (bounded) → ETag / 304, X-Data-As-Of and X-Cache.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard-data",
    tag = "dashboards",
    summary = "Dashboard data of one type",
    description = "Pre-aggregated, exact answers of the 18 dashboard types (role viewer). An answer is cached per \
                   tenant until the views change; send the previous `ETag` in `If-None-Match` to get a bodiless 304.",
    params(TenantHeader, DashboardQuery,
           ("If-None-Match" = Option<String>, Header, description = "The ETag of an answer already held")),
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "The type's answer", body = DashboardAnswer, headers(
            ("ETag" = String, description = "Identifies this answer's bytes"),
            ("X-Data-As-Of" = String, description = "The time up to which the views were complete when computed"),
            ("X-Cache" = String, description = "hit, miss, or off"),
        )),
        (status = 304, description = "Not modified: `If-None-Match` named this answer's ETag", headers(
            ("ETag" = String), ("X-Data-As-Of" = String), ("X-Cache" = String),
        )),
        Refusals,
    )
)]
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
        // Freshness first: the answer is at least as fresh as the header says. The same
        // statement reads the catalog version the names are looked up at.
        let (data_as_of, catalog_version) = read_context(&state.pool, &state.topics, &caller.tenant_id).await?;
        let catalog = CatalogNames::at(state.names.clone(), catalog_version);
        let body = compute(&state, &caller, request, catalog).await?;
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

/// The answer of one validated request: the type's module reads and shapes it.
async fn compute(
    state: &AppState,
    caller: &Caller,
    request: DashboardRequest,
    catalog: CatalogNames,
) -> ApiResult<Body> {
    let p = request.params.with_names(catalog);
    let tenant = caller.tenant_id.as_str();
    let pool = &state.pool;
    match request.kind {
        DashboardType::Summary => summary::handle(pool, tenant).await,
        DashboardType::Funnel => funnel::handle(pool, tenant).await,
        DashboardType::AcceptanceRate => acceptance_rate::handle(pool, tenant, &p).await,
        DashboardType::DailyTrend => daily_trend::handle(pool, tenant, &p).await,
        DashboardType::OfferPerformance => offer_performance::handle(pool, tenant, &p).await,
        DashboardType::ChannelEffectiveness => channel_effectiveness::handle(pool, tenant, &p).await,
        DashboardType::RevenueTrend => revenue_trend::handle(pool, tenant, &p).await,
        DashboardType::BudgetBurn => budget_burn::handle(pool, tenant).await,
        DashboardType::OfferPerformanceGrouped => offer_performance_grouped::handle(pool, tenant, &p).await,
        DashboardType::ModelMetricsTrend => model_metrics_trend::handle(pool, tenant, &p).await,
        DashboardType::PolicyImpact => policy_impact::handle(pool, tenant).await,
        DashboardType::AttributionSummary => attribution_summary::handle(pool, tenant, &p).await,
        DashboardType::DegradedScoring => degraded_scoring::handle(pool, tenant, &p).await,
        DashboardType::LatencyTrend => latency_trend::handle(pool, tenant, &p).await,
        DashboardType::SelectionFrequency => selection_frequency::handle(pool, tenant, &p).await,
        DashboardType::AnomalyCandidates => anomaly_candidates::handle(pool, tenant, &p).await,
        DashboardType::WhyNotRanked => why_not_ranked::handle(pool, tenant, &p).await,
        DashboardType::ScoreDistribution => score_distribution::handle(pool, tenant, &p).await,
    }
}
