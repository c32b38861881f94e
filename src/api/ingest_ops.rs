//! The HTTP endpoints of an `ingest`-only process (issue 16), on `DV_METRICS_ADDR`: an
//! ingest process scaled out beside the API has no API port, yet it must be scraped and
//! probed like any service.
//!
//! - `/healthz`: the process is up.
//! - `/readyz`: PostgreSQL answers, and every consumer group of the process holds an
//!   assignment (an empty one counts: the group has more members than partitions and this
//!   one stands by); 503 while joining or rebalancing, with the groups' state.
//! - `/metrics`: the process's Prometheus exposition, with the views' freshness.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use consumers::kafka::GroupHealth;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::guard;

/// A readiness probe answers within this, whatever PostgreSQL does.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Ops {
    pool: PgPool,
    groups: Arc<GroupHealth>,
    topics: Arc<Vec<String>>,
}

pub fn router(pool: PgPool, groups: Arc<GroupHealth>, topics: Vec<String>) -> Router {
    let routes = Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    guard::protect(routes, PROBE_TIMEOUT * 2).with_state(Ops { pool, groups, topics: Arc::new(topics) })
}

async fn metrics(State(ops): State<Ops>) -> String {
    super::data_version::record_freshness(&ops.pool, &ops.topics).await;
    crate::telemetry::metrics_handle().render()
}

async fn readyz(State(ops): State<Ops>) -> (StatusCode, Json<Value>) {
    let groups: Vec<Value> = ops
        .groups
        .groups()
        .into_iter()
        .map(|(group, partitions)| json!({ "group": group, "partitions": partitions }))
        .collect();
    let database = tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&ops.pool)).await;
    let error = match database {
        Ok(Ok(_)) if ops.groups.ready() => None,
        Ok(Ok(_)) => Some("a consumer group is joining or rebalancing (no assignment yet)"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: PostgreSQL is not reachable");
            Some("PostgreSQL is not reachable")
        }
        Err(_) => Some("PostgreSQL did not answer in time"),
    };
    match error {
        None => (StatusCode::OK, Json(json!({ "status": "ready", "groups": groups }))),
        Some(e) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not ready", "error": e, "groups": groups })))
        }
    }
}
