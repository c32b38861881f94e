use std::collections::BTreeMap;

use sqlx::{Postgres, Transaction};

use crate::fold::keys::DayKey;
use crate::units::latency;

/// Merges the batch's histograms into the stored ones, one (tenant, day) at a time in key
/// order, under the row lock.
pub(super) async fn apply(
    tx: &mut Transaction<'_, Postgres>,
    values: &BTreeMap<DayKey, Vec<u64>>,
) -> Result<(), sqlx::Error> {
    for (DayKey { tenant, day }, ms) in values {
        sqlx::query(
            "INSERT INTO trace_latency_daily (tenant_id, day, hist) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(day)
        .bind(latency::serialize(&latency::new_histogram()))
        .execute(&mut **tx)
        .await?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT hist FROM trace_latency_daily WHERE tenant_id = $1 AND day = $2 FOR UPDATE")
                .bind(tenant)
                .bind(day)
                .fetch_one(&mut **tx)
                .await?;
        let mut merged = latency::deserialize(&stored).map_err(|e| sqlx::Error::Decode(e.into()))?;
        for v in ms {
            latency::record(&mut merged, *v);
        }
        sqlx::query("UPDATE trace_latency_daily SET hist = $3 WHERE tenant_id = $1 AND day = $2")
            .bind(tenant)
            .bind(day)
            .bind(latency::serialize(&merged))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
