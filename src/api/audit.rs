//! The audit log (docs/api.md 5.3): SHAP computations (`compute_shap`), regulator narratives
//! (`generate_narrative`) and settings changes (`update_settings`), each a row with the key
//! that asked. The service only inserts (the table refuses UPDATE and DELETE); admins read it
//! with `GET /api/v1/audit-log`.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiQuery};
use super::openapi::{Paging, Refusals, TenantHeader};
use super::state::AppState;

/// One audited action.
pub struct Audited<'a> {
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entity_id: &'a str,
    pub entity_name: Option<String>,
    pub changes: Value,
}

/// Appends a row for `caller`'s action (in the caller's transaction when given one, so that a
/// change and its audit row commit together).
pub async fn record<'e>(db: impl PgExecutor<'e>, caller: &Caller, a: Audited<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, action, entity_type, entity_id, entity_name, changes, key_name, key_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&caller.tenant_id)
    .bind(a.action)
    .bind(a.entity_type)
    .bind(a.entity_id)
    .bind(a.entity_name)
    .bind(sqlx::types::Json(a.changes))
    .bind(&caller.key.name)
    .bind(&caller.key.id)
    .execute(db)
    .await?;
    Ok(())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct AuditRow {
    id: i64,
    tenant_id: String,
    action: String,
    entity_type: String,
    entity_id: String,
    entity_name: Option<String>,
    #[schema(value_type = Object)]
    changes: sqlx::types::Json<Value>,
    key_name: String,
    key_id: String,
    at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct AuditPage {
    entries: Vec<AuditRow>,
    /// Rows matching the filters (exact).
    total: i64,
    limit: i64,
    offset: i64,
}

/// The tenant's audit rows, newest first; filters `action`, `entityId`, `since`, `until`.
#[utoipa::path(
    get,
    path = "/api/v1/audit-log",
    tag = "tenant",
    summary = "The tenant's audit log, newest first (admin)",
    params(
        TenantHeader,
        ("action" = Option<String>, Query, description = "Only this action (generate_narrative, compute_shap, update_settings)"),
        ("entityId" = Option<String>, Query, description = "Only rows about this entity"),
        ("since" = Option<String>, Query, description = "From this time (RFC 3339) or date, inclusive"),
        ("until" = Option<String>, Query, description = "Up to this time (RFC 3339) or date (the whole day), inclusive"),
        Paging,
    ),
    security(("apiKey" = [])),
    responses((status = 200, description = "A page of audit rows", body = AuditPage), Refusals)
)]
async fn list(State(state): State<AppState>, caller: Caller, ApiQuery(raw): ApiQuery) -> ApiResult<Json<AuditPage>> {
    caller.require(Role::Admin)?;
    let (limit, offset) = extract::page(&raw, state.max_offset)?;
    let action = extract::text(&raw, "action")?;
    let entity = extract::text(&raw, "entityId")?;
    let since = extract::text(&raw, "since")?.map(|v| instant("since", v, false)).transpose()?;
    let until = extract::text(&raw, "until")?.map(|v| instant("until", v, true)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::BadRequest(format!("until ({u}) is before since ({s})")));
        }
    }
    let _permit = state.computations.admit().await?;
    let filter = "tenant_id = $1 AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR entity_id = $3)
                  AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at <= $5)";
    let count_sql = format!("SELECT count(*) FROM audit_log WHERE {filter}");
    let total = sqlx::query_scalar(&count_sql)
        .bind(&caller.tenant_id)
        .bind(action)
        .bind(entity)
        .bind(since)
        .bind(until)
        .fetch_one(&state.pool);
    let page_sql = format!("SELECT * FROM audit_log WHERE {filter} ORDER BY id DESC LIMIT $6 OFFSET $7");
    let entries = sqlx::query_as(&page_sql)
        .bind(&caller.tenant_id)
        .bind(action)
        .bind(entity)
        .bind(since)
        .bind(until)
        .bind(limit)
        .bind(offset)
        .fetch_all(&state.pool);
    let (total, entries): (i64, Vec<AuditRow>) = tokio::try_join!(total, entries)?;
    Ok(Json(AuditPage { entries, total, limit, offset }))
}

/// `since` / `until`: an RFC 3339 instant, or a date `YYYY-MM-DD` (its start for `since`, its
/// end for `until`), within the years 1970..=9999.
fn instant(name: &str, v: &str, end_of_day: bool) -> ApiResult<DateTime<Utc>> {
    let bad = || ApiError::BadRequest(format!("{name} must be an RFC 3339 time or a date YYYY-MM-DD, got {v:?}"));
    let t = match DateTime::parse_from_rfc3339(v) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad())?;
            let time = if end_of_day { d.and_hms_milli_opt(23, 59, 59, 999) } else { d.and_hms_opt(0, 0, 0) };
            time.ok_or_else(bad)?.and_utc()
        }
    };
    if !(1970..=9999).contains(&chrono::Datelike::year(&t)) {
        return Err(ApiError::BadRequest(format!("{name} must be within the years 1970..=9999, got {v:?}")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_times_or_whole_days_within_range() {
        assert_eq!(instant("since", "2026-03-01", false).unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(instant("until", "2026-03-01", true).unwrap().to_rfc3339(), "2026-03-01T23:59:59.999+00:00");
        assert_eq!(
            instant("since", "2026-03-01T10:00:00+02:00", false).unwrap().to_rfc3339(),
            "2026-03-01T08:00:00+00:00"
        );
        for bad in ["yesterday", "2026-13-01", "1969-12-31", "+10000-01-01T00:00:00Z"] {
            assert!(instant("since", bad, false).is_err(), "{bad}");
        }
    }
}
