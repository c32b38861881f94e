//! Raw trace storage (docs/guarantees.md 3 "Raw traces"): sampled per tenant settings with a deterministic
//! hash of (tenantId, id), so a replay decides the same; into the partition of the trace's date.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

use crate::batch::Payload;
use crate::events::{utc_day, DecisionTrace};
pub use crate::units::body::{compress, decompress};

/// FNV-1a 64 of `tenant \0 id`, then murmur3's 64-bit finalizer: stable across versions and
/// platforms (the sampling contract). The finalizer matters: FNV alone leaves the high bits of
/// short, sequential ids badly spread (a 0.5 rate kept 28–63 % in a test).
pub fn sample_hash(tenant: &str, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes().chain([0u8]).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Whether a trace is stored at `rate` (0.0 ..= 1.0).
pub fn sampled(tenant: &str, id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    (sample_hash(tenant, id) as f64 / u64::MAX as f64) < rate
}

/// Tenant trace settings: (enabled, sample rate), with the defaults of docs/events.md 2.3 (true, 1.0).
pub async fn trace_settings(
    tx: &mut Transaction<'_, Postgres>,
    tenants: &[&str],
) -> Result<HashMap<String, (bool, f64)>, sqlx::Error> {
    let rows: Vec<(String, Option<bool>, Option<f64>)> = sqlx::query_as(
        "SELECT entity_id, (data->>'decisionTraceEnabled')::boolean, (data->>'decisionTraceSampleRate')::float8
           FROM catalog_entities WHERE tenant_id = ANY($1) AND entity = 'tenant_settings' AND entity_id = tenant_id
            AND NOT deleted",
    )
    .bind(tenants)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(t, e, r)| (t, (e.unwrap_or(true), r.unwrap_or(1.0)))).collect())
}

pub(super) async fn store(
    tx: &mut Transaction<'_, Postgres>,
    traces: &[(&DecisionTrace, &Payload)],
    oldest_day: NaiveDate,
) -> Result<(), sqlx::Error> {
    if traces.is_empty() {
        return Ok(());
    }
    let tenants: BTreeSet<&str> = traces.iter().map(|(t, _)| t.tenant_id.as_str()).collect();
    let settings = trace_settings(tx, &tenants.into_iter().collect::<Vec<_>>()).await?;
    let keep: Vec<&(&DecisionTrace, &Payload)> = traces
        .iter()
        .filter(|(t, _)| utc_day(t.created_at) >= oldest_day)
        .filter(|(t, _)| {
            let (enabled, rate) = settings.get(&t.tenant_id).copied().unwrap_or((true, 1.0));
            enabled && sampled(&t.tenant_id, &t.id, rate)
        })
        .collect();
    let days: BTreeSet<NaiveDate> = keep.iter().map(|(t, _)| utc_day(t.created_at)).collect();
    super::partitions::ensure(tx, "decision_traces", &days).await?;
    let (mut tn, mut day, mut id, mut cust, mut req, mut at, mut body) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (t, payload) in keep {
        tn.push(t.tenant_id.as_str());
        day.push(utc_day(t.created_at));
        id.push(t.id.as_str());
        cust.push(t.customer_id.as_str());
        req.push(t.request_id.as_str());
        at.push(t.created_at);
        // The payload as published, unknown fields included, compressed when it was read.
        body.push(payload.zstd());
    }
    let body: Vec<&[u8]> = body.iter().map(|b| &**b).collect();
    sqlx::query(
        // Each stored trace's id beside it, in the same statement: lookups by id read
        // `decision_trace_ids` instead of probing every daily partition.
        "WITH stored AS (
             INSERT INTO decision_traces (tenant_id, day, id, customer_id, request_id, created_at, body_zstd)
             SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bytea[])
             ON CONFLICT DO NOTHING
             RETURNING tenant_id, id, day)
         INSERT INTO decision_trace_ids (tenant_id, id, day) SELECT tenant_id, id, day FROM stored
         ON CONFLICT DO NOTHING",
    )
    .bind(&tn)
    .bind(&day)
    .bind(&id)
    .bind(&cust)
    .bind(&req)
    .bind(&at)
    .bind(&body)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_close_to_the_rate() {
        assert_eq!(sample_hash("t", "a"), sample_hash("t", "a"));
        assert_ne!(sample_hash("t", "ab"), sample_hash("ta", "b"));
        for tenant in ["t", "half", "tenant_0"] {
            let kept = (0..10_000).filter(|i| sampled(tenant, &format!("tr{i}"), 0.5)).count();
            assert!((4_800..5_200).contains(&kept), "{tenant}: {kept}");
            let kept = (0..10_000).filter(|i| sampled(tenant, &format!("{tenant}-tr{i:03}"), 0.1)).count();
            assert!((900..1_100).contains(&kept), "{tenant}: {kept}");
        }
        assert_eq!((0..100).filter(|i| sampled("t", &i.to_string(), 0.0)).count(), 0);
        assert_eq!((0..100).filter(|i| sampled("t", &i.to_string(), 1.0)).count(), 100);
    }
}
