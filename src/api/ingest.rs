//! Operator endpoints: `GET /api/v1/ingest/status` (platform key: every partition; tenant
//! admin: its own dead letters and freshness) and `GET /api/v1/dead-letters` (tenant admin).
//!
//! What a tenant admin may see of ingest without learning about other tenants: the partitions
//! are shared by every tenant (their offsets, lag and event-time watermarks tell how much the
//! others publish and when), so a tenant sees only its own dead-letter counts and `dataAsOf`,
//! the time up to which the views are complete, which every dashboard answer already carries
//! in `X-Data-As-Of`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Role, StatusCaller};
use super::error::ApiResult;
use super::extract::{self, ApiQuery};
use super::openapi::{OptionalTenantHeader, Paging, Refusals};
use super::state::AppState;
use crate::recovery::progress::{self, RebuildStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status)).routes(routes!(dead_letters))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct PartitionStatus {
    topic: String,
    partition: i32,
    /// Next offset to apply, as committed in PostgreSQL (null: nothing consumed yet).
    committed_offset: Option<i64>,
    /// The broker's high watermark (null: broker unreachable).
    high_watermark: Option<i64>,
    lag: Option<i64>,
    last_commit_at: Option<DateTime<Utc>>,
    /// Largest event time applied from the partition.
    event_time_watermark: Option<DateTime<Utc>>,
}

/// The ingest status: what a platform key sees, or what a tenant admin sees (documentation
/// only; the handler answers one of the two).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum IngestStatus {
    Platform(PlatformStatus),
    Tenant(TenantStatus),
}

/// What a platform key sees.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct PlatformStatus {
    partitions: Vec<PartitionStatus>,
    /// Dead letters of every tenant per topic (all time).
    dead_letters: BTreeMap<String, i64>,
    broker_reachable: bool,
    /// As `X-Data-As-Of`: the time up to which the views are complete (null until every
    /// partition has caught up once).
    data_as_of: Option<String>,
    /// The latest `decision-views rebuild` and its progress (null: none ever ran).
    rebuild: Option<RebuildStatus>,
}

/// What a tenant admin sees.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TenantStatus {
    tenant_id: String,
    /// Dead letters of the tenant per topic (all time).
    dead_letters: BTreeMap<String, i64>,
    /// As `X-Data-As-Of` (see [`PlatformStatus::data_as_of`]).
    data_as_of: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/ingest/status",
    tag = "operations",
    summary = "Ingest status",
    description = "A platform key sees every partition (offsets, lag, last commit) and all tenants' dead letters; a \
                   tenant admin its tenant's dead letters. Both see when the views were last complete.",
    params(OptionalTenantHeader),
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "The status", body = IngestStatus),
        Refusals,
    )
)]
async fn status(State(state): State<AppState>, caller: StatusCaller) -> ApiResult<Response> {
    let data_as_of = super::data_version::data_as_of(&state.pool, &state.topics).await?;
    let caller = match caller {
        StatusCaller::Platform => return Ok(platform_status(&state, data_as_of).await?.into_response()),
        StatusCaller::Tenant(caller) => caller,
    };
    caller.require(Role::Admin)?;
    let dl: Vec<TopicCount> = sqlx::query_as(
        "SELECT topic, sum(count)::int8 AS count FROM dead_letter_counts WHERE tenant_id = $1 GROUP BY topic",
    )
    .bind(&caller.tenant_id)
    .fetch_all(&state.pool)
    .await?;
    let status = TenantStatus { tenant_id: caller.tenant_id, dead_letters: by_topic(dl), data_as_of };
    Ok(Json(status).into_response())
}

/// Dead letters of one topic.
#[derive(sqlx::FromRow)]
struct TopicCount {
    topic: String,
    count: i64,
}

fn by_topic(rows: Vec<TopicCount>) -> BTreeMap<String, i64> {
    rows.into_iter().map(|r| (r.topic, r.count)).collect()
}

/// A partition's stored progress (`consumer_offsets`).
#[derive(sqlx::FromRow)]
struct OffsetRow {
    topic: String,
    partition: i32,
    /// Next offset to apply.
    next_offset: i64,
    last_commit_at: DateTime<Utc>,
    event_time_watermark: Option<DateTime<Utc>>,
}

/// The broker's watermarks, the stored offsets and the dead-letter counts do not depend on each
/// other: read together (the broker's answer can take its whole budget).
async fn platform_status(state: &AppState, data_as_of: Option<String>) -> ApiResult<Json<PlatformStatus>> {
    let wm = state.watermarks.clone();
    let highs =
        async { ApiResult::Ok(tokio::task::spawn_blocking(move || wm.fetch()).await.map_err(anyhow::Error::from)?) };
    let rows = async {
        let rows: Vec<OffsetRow> = sqlx::query_as(
            "SELECT topic, partition, next_offset, last_commit_at, event_time_watermark
               FROM consumer_offsets WHERE topic = ANY($1)",
        )
        .bind(&state.watermarks.topics)
        .fetch_all(&state.pool)
        .await?;
        ApiResult::Ok(rows)
    };
    let dl = async {
        let dl: Vec<TopicCount> =
            sqlx::query_as("SELECT topic, sum(count)::int8 AS count FROM dead_letter_counts GROUP BY topic")
                .fetch_all(&state.pool)
                .await?;
        ApiResult::Ok(dl)
    };
    let (highs, rows, dl) = tokio::try_join!(highs, rows, dl)?;
    let stored: HashMap<(String, i32), OffsetRow> =
        rows.into_iter().map(|r| ((r.topic.clone(), r.partition), r)).collect();
    let mut keys: Vec<(String, i32)> = highs.keys().cloned().chain(stored.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    let partitions = keys
        .into_iter()
        .map(|key| {
            let s = stored.get(&key);
            let high = highs.get(&key).copied();
            let committed = s.map(|s| s.next_offset);
            PartitionStatus {
                lag: high.map(|h| (h - committed.unwrap_or(0)).max(0)),
                topic: key.0,
                partition: key.1,
                committed_offset: committed,
                high_watermark: high,
                last_commit_at: s.map(|s| s.last_commit_at),
                event_time_watermark: s.and_then(|s| s.event_time_watermark),
            }
        })
        .collect();
    let rebuild = progress::latest(&state.pool).await?;
    let reachable = !highs.is_empty();
    Ok(Json(PlatformStatus {
        broker_reachable: reachable,
        partitions,
        dead_letters: by_topic(dl),
        data_as_of,
        rebuild,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeadLetterOut {
    id: i64,
    topic: String,
    partition: i32,
    offset: i64,
    /// The last offset of the dead letter: `offset` for one message, later for a range the
    /// Kafka client could not deliver.
    last_offset: i64,
    key: Option<String>,
    /// The payload; a `too_large` one's first 64 KiB.
    payload: Option<String>,
    /// `utf8` or `base64` (payloads that are not valid UTF-8).
    payload_encoding: &'static str,
    /// Size and SHA-256 (hex) of the whole payload, as received.
    payload_size: Option<i64>,
    payload_sha256: Option<String>,
    reason: String,
    detail: String,
    received_at: DateTime<Utc>,
    /// When it was last replayed, and how that ended: `applied` or `rejected` (null: never).
    replayed_at: Option<DateTime<Utc>>,
    replay_outcome: Option<String>,
    replay_detail: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeadLetterPage {
    dead_letters: Vec<DeadLetterOut>,
    total: i64,
    limit: i64,
    offset: i64,
}

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    id: i64,
    topic: String,
    partition: i32,
    offset: i64,
    last_offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    payload_size: Option<i64>,
    payload_sha256: Option<Vec<u8>>,
    reason: String,
    detail: String,
    received_at: DateTime<Utc>,
    replayed_at: Option<DateTime<Utc>>,
    replay_outcome: Option<String>,
    replay_detail: Option<String>,
}

/// Dead letters newest first, filters `topic` and `reason`: a tenant admin's are its tenant's;
/// a platform key's are those attributed to no tenant (a message key naming another tenant
/// than its payload, offsets the Kafka client could not deliver, unreadable payloads without
/// a readable key), whose bytes may belong to any tenant.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "operations",
    summary = "Dead letters",
    params(
        OptionalTenantHeader,
        ("topic" = Option<String>, Query, description = "Only this topic's"),
        ("reason" = Option<String>, Query, description = "Only this reason's"),
        Paging,
    ),
    security(("apiKey" = [])),
    responses((status = 200, description = "A page of dead letters, newest first", body = DeadLetterPage), Refusals)
)]
async fn dead_letters(
    State(state): State<AppState>,
    caller: StatusCaller,
    ApiQuery(raw): ApiQuery,
) -> ApiResult<Json<DeadLetterPage>> {
    let tenant = match &caller {
        StatusCaller::Platform => "",
        StatusCaller::Tenant(c) => {
            c.require(Role::Admin)?;
            c.tenant_id.as_str()
        }
    };
    let (limit, offset) = extract::page(&raw, state.max_offset)?;
    let topic = extract::text(&raw, "topic")?;
    let reason = extract::text(&raw, "reason")?;
    let _permit = state.computations.admit().await?;
    let filter = "tenant_id = $1 AND ($2::text IS NULL OR topic = $2) AND ($3::text IS NULL OR reason = $3)";
    // The count and the page do not depend on each other: read together.
    let total_sql = format!("SELECT count(*) FROM dead_letters WHERE {filter}");
    let total = sqlx::query_scalar::<_, i64>(&total_sql).bind(tenant).bind(topic).bind(reason).fetch_one(&state.pool);
    let page_sql = format!(
        "SELECT id, topic, partition, \"offset\", last_offset, key, payload, payload_size, payload_sha256,
                reason, detail, received_at, replayed_at, replay_outcome, replay_detail
           FROM dead_letters WHERE {filter} ORDER BY id DESC LIMIT $4 OFFSET $5"
    );
    let rows = sqlx::query_as::<_, DeadLetterRow>(&page_sql)
        .bind(tenant)
        .bind(topic)
        .bind(reason)
        .bind(limit)
        .bind(offset)
        .fetch_all(&state.pool);
    let (total, rows) = tokio::try_join!(total, rows)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dead_letters = rows
        .into_iter()
        .map(|r| {
            let (payload, payload_encoding) = match r.payload {
                None => (None, "utf8"),
                Some(bytes) => match String::from_utf8(bytes) {
                    Ok(s) => (Some(s), "utf8"),
                    Err(e) => (Some(b64.encode(e.into_bytes())), "base64"),
                },
            };
            let key = r.key.map(|k| String::from_utf8(k).unwrap_or_else(|e| b64.encode(e.into_bytes())));
            DeadLetterOut {
                id: r.id,
                topic: r.topic,
                partition: r.partition,
                offset: r.offset,
                last_offset: r.last_offset,
                key,
                payload,
                payload_encoding,
                payload_size: r.payload_size,
                payload_sha256: r.payload_sha256.map(hex::encode),
                reason: r.reason,
                detail: r.detail,
                received_at: r.received_at,
                replayed_at: r.replayed_at,
                replay_outcome: r.replay_outcome,
                replay_detail: r.replay_detail,
            }
        })
        .collect();
    Ok(Json(DeadLetterPage { dead_letters, total, limit, offset }))
}
