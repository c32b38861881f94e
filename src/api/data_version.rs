//! The views' data version, which keys the response cache: the sum of the stored next offsets
//! of every partition (`consumer_offsets`) plus the views' generation (`view_generation`).
//!
//! Every batch advances its partitions' offsets in the same transaction as its view deltas, so
//! the sum moves exactly when the views may have changed. A cached answer keyed by it is
//! dropped by the first commit after it, not by its TTL: the cache serves hot dashboards
//! without serving anything older than the last commit (plus one poll interval), across
//! processes and replicas, with no channel from ingest to the API (they share only
//! PostgreSQL). One tiny query per interval, not one per request.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Default)]
pub struct DataVersion(Arc<AtomicI64>);

impl DataVersion {
    pub fn current(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    pub async fn refresh(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        // A replayed dead letter or a rebuild changes the views without moving an offset:
        // they bump `view_generation` instead. Both terms only grow, so every change to the
        // views gives a version never seen before.
        let v: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(next_offset), 0)::int8 + (SELECT generation FROM view_generation)
               FROM consumer_offsets",
        )
        .fetch_one(pool)
        .await?;
        self.0.store(v, Ordering::Release);
        Ok(())
    }

    /// Refreshes every `every` until `shutdown`. A failed poll keeps the last version: answers
    /// may then be as old as the cache TTL, the bound that holds without it.
    pub async fn follow(self, pool: PgPool, every: Duration, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {
                    if let Err(e) = self.refresh(&pool).await {
                        tracing::warn!(error = %e, "data version poll failed; cached answers age up to the TTL");
                    }
                }
            }
        }
    }
}

/// When the topics' partitions last caught up, and a tenant's catalog version.
#[derive(sqlx::FromRow)]
struct CaughtUp {
    /// Some partition has never caught up.
    never: bool,
    /// The oldest of the partitions' last catch-ups.
    oldest: Option<chrono::DateTime<chrono::Utc>>,
    /// The tenant's catalog version (migration `catalog_versions`); None without a tenant, or
    /// while the tenant has no catalog.
    catalog_version: Option<i64>,
}

impl CaughtUp {
    /// The time up to which the views are complete: None while some partition has never
    /// caught up.
    fn complete_up_to(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        if self.never {
            None
        } else {
            self.oldest
        }
    }

    fn data_as_of(&self) -> Option<String> {
        self.complete_up_to().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

/// One statement: the topics' catch-ups, and `tenant`'s catalog version when one is given.
async fn caught_up(pool: &PgPool, topics: &[String], tenant: Option<&str>) -> Result<CaughtUp, sqlx::Error> {
    sqlx::query_as(
        "SELECT bool_or(caught_up_at IS NULL) IS TRUE AS never, min(caught_up_at) AS oldest,
                (SELECT version FROM catalog_versions WHERE tenant_id = $2) AS catalog_version
           FROM consumer_offsets WHERE topic = ANY($1)",
    )
    .bind(topics)
    .bind(tenant)
    .fetch_one(pool)
    .await
}

/// The time up to which the views are complete (`X-Data-As-Of`, the status's `dataAsOf`): the
/// oldest instant at which one of `topics`' partitions was seen fully applied. None while some
/// partition has never caught up.
pub async fn data_as_of(pool: &PgPool, topics: &[String]) -> Result<Option<String>, sqlx::Error> {
    Ok(caught_up(pool, topics, None).await?.data_as_of())
}

/// What a dashboard computation reads before its data, in one statement: [`data_as_of`] and the
/// tenant's catalog version (migration `catalog_versions`; None while the tenant has no
/// catalog), which says whether the names a process holds are current
/// (`api::catalog::CatalogNames`).
pub async fn read_context(
    pool: &PgPool,
    topics: &[String],
    tenant: &str,
) -> Result<(Option<String>, Option<i64>), sqlx::Error> {
    let c = caught_up(pool, topics, Some(tenant)).await?;
    Ok((c.data_as_of(), c.catalog_version))
}

/// Sets `ingest_freshness_seconds`, now − the time up to which the views are complete (how old
/// an answer computed now may be), when `/metrics` is scraped, so it is exact at the scrape.
/// Not set while some partition has never caught up (nothing is complete yet).
pub async fn record_freshness(pool: &PgPool, topics: &[String]) {
    match caught_up(pool, topics, None).await.map(|c| c.complete_up_to()) {
        Ok(Some(t)) => {
            let age = (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::gauge!("ingest_freshness_seconds").set(age);
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "freshness not measured"),
    }
}
