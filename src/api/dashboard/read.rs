//! The toolkit the type modules read with: their parameters ([`Params`]), the JSON body they
//! answer ([`Body`]), the segment scope, catalog names, and the window binds of the interaction
//! counters. Below the types (they import it); it imports none of them.

use std::collections::HashMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use super::kind::DashboardType;
pub use crate::api::catalog::{name_or_id, CatalogNames, NameMap};
use crate::api::error::ApiResult;
use crate::api::window::Window;

/// A type's parameters: only those it declares ([`DashboardType::params`]; non-empty, NUL-free),
/// the window, and how the catalog's names are looked up.
pub struct Params {
    kind: DashboardType,
    raw: HashMap<String, String>,
    pub window: Window,
    catalog: CatalogNames,
}

impl Params {
    pub fn new(kind: DashboardType, raw: HashMap<String, String>, window: Window) -> Params {
        Params { kind, raw, window, catalog: CatalogNames::default() }
    }

    /// These parameters with names looked up through `catalog` (the dispatch sets it once it
    /// has read the tenant's catalog version).
    pub fn with_names(self, catalog: CatalogNames) -> Params {
        Params { catalog, ..self }
    }

    /// Names of `ids` of one catalog entity kind (an id absent from the catalog shows its id:
    /// [`name_or_id`]).
    pub async fn names(&self, pool: &PgPool, tenant: &str, entity: &str, ids: &[String]) -> ApiResult<NameMap> {
        self.catalog.of(pool, tenant, entity, ids).await
    }

    /// A declared parameter's value. Reading an undeclared one is a bug (it would be missing
    /// from the cache key): a debug assertion, and `None`.
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(self.kind.params().contains(&name), "{} does not declare {name}", self.kind.name());
        self.raw.get(name).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// The declared parameters given (the cache key's inputs).
    pub fn read(&self) -> impl Iterator<Item = (&String, &String)> {
        self.raw.iter()
    }
}

/// A serialized JSON answer. Types serialize their typed response structs straight to bytes:
/// fields keep their documented order, and the bytes are what caching and ETags work on.
pub struct Body(pub Vec<u8>);

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

/// The category of offers without one in the catalog (grouping and filtering by category).
pub const UNCATEGORIZED: &str = "uncategorized";

/// How a `segmentId` parameter scopes a read.
pub enum SegmentScope {
    /// No segmentId: all customers.
    All,
    /// Only customers in this (materialized) segment.
    Segment(String),
    /// The answer is this warning body (docs/dashboard-types.md 4), status 200.
    Warning(Body),
}

/// What is known of a segment id.
#[derive(sqlx::FromRow)]
struct SegmentRow {
    /// At least one membership event of it was processed.
    materialized: bool,
    /// The catalog has it (not deleted).
    in_catalog: bool,
}

/// Resolves `segmentId`: unknown → "does not exist"; known from the catalog but without any
/// processed membership event → "has not been materialized yet".
pub async fn segment_scope(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<SegmentScope> {
    let Some(id) = p.get("segmentId") else { return Ok(SegmentScope::All) };
    let SegmentRow { materialized, in_catalog } = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM segments_materialized WHERE tenant_id = $1 AND segment_id = $2)
                  AS materialized,
                EXISTS (SELECT 1 FROM catalog_entities WHERE tenant_id = $1 AND entity = 'segment'
                                                       AND entity_id = $2 AND NOT deleted) AS in_catalog",
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

/// The grain of an interaction rollup (migration `interaction_rollups`).
#[derive(Debug, Clone, Copy)]
pub enum Grain {
    Day,
    Channel,
}

/// The interaction counters per day from the smallest rollup that holds `grain`: a 90-day
/// read touches 90 rows per day or channel. Returns the `FROM … WHERE` part with `$1` tenant,
/// `$2`/`$3` first/last day and `$4` segment (NULL for all customers: segment `''` holds them).
pub fn rollup_source(grain: Grain) -> &'static str {
    match grain {
        Grain::Day => {
            "FROM interaction_rollup_day WHERE tenant_id = $1 AND segment_id = COALESCE($4::text, '') AND day BETWEEN $2 AND $3"
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

fn segment_bind(scope: &SegmentScope) -> Option<&str> {
    match scope {
        SegmentScope::Segment(s) => Some(s.as_str()),
        _ => None,
    }
}

/// The values of a wide view's rows (`consumers::units::wide`) summed per id; `keep` filters
/// ids. A sum out of `int8` is a server error, as a narrow view's `sum()::int8` would be.
pub fn wide_sums<const N: usize>(
    values: &[Vec<u8>],
    keep: impl Fn(&str) -> bool,
) -> ApiResult<Vec<(String, [i64; N])>> {
    let mut sums = consumers::units::wide::Sums::<N>::default();
    for v in values {
        sums.add(v, &keep).map_err(anyhow::Error::from)?;
    }
    Ok(sums.into_sorted())
}
