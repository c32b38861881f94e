//! Retention of the dedup keys: deletes keys older than the dedup horizon, in small chunks so
//! that it never holds long locks next to ingest.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const CHUNK: i64 = 10_000;
const EVERY: Duration = Duration::from_secs(600);

pub async fn run(pool: PgPool, horizon: chrono::Duration, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(EVERY) => {}
        }
        match purge(&pool, horizon).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired dedup keys removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "dedup retention failed; will retry"),
        }
    }
}

/// Deletes expired dedup keys; returns how many.
pub async fn purge(pool: &PgPool, horizon: chrono::Duration) -> Result<u64, sqlx::Error> {
    let cutoff = chrono::Utc::now() - horizon;
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM dedup_keys WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM dedup_keys WHERE applied_at < $1 LIMIT $2))",
        )
        .bind(cutoff)
        .bind(CHUNK)
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < CHUNK as u64 {
            return Ok(total);
        }
    }
}
