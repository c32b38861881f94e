//! The state views of a delta: memberships (also read before folding), suppressions and their
//! active counters, the latest model evaluations.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Postgres, Transaction};

use super::upsert::Kind::{Int, Text};
use super::upsert::Table;
use crate::events::Event;
use crate::fold::{suppression_lifted, Delta, Memberships};

/// Stored memberships of the customers whose events are in the batch (one query per batch).
pub(super) async fn load_memberships(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&Event],
) -> Result<Memberships, sqlx::Error> {
    let mut customers = BTreeSet::new();
    for e in events {
        match *e {
            Event::Interaction(i) => customers.insert((i.tenant_id.as_str(), i.customer_id.as_str())),
            Event::Trace(t) => customers.insert((t.tenant_id.as_str(), t.customer_id.as_str())),
            Event::Membership(m) => customers.insert((m.tenant_id.as_str(), m.customer_id.as_str())),
            _ => false,
        };
    }
    let mut out = Memberships::new();
    if customers.is_empty() {
        return Ok(out);
    }
    let (tenants, ids): (Vec<&str>, Vec<&str>) = customers.into_iter().unzip();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.tenant_id, m.customer_id, m.segment_id
           FROM unnest($1::text[], $2::text[]) AS c(tenant_id, customer_id)
           JOIN segment_members m USING (tenant_id, customer_id)",
    )
    .bind(&tenants)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    for (t, c, s) in rows {
        out.entry(t).or_default().entry(c).or_default().insert(s);
    }
    Ok(out)
}

/// The membership, suppression and latest-evaluation state of the delta (the counter views
/// are `counters`).
pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    apply_model_latest(tx, d).await?;
    apply_memberships(tx, d).await?;
    apply_suppressions(tx, d).await
}

async fn apply_memberships(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    if d.memberships.is_empty() {
        return Ok(());
    }
    let segments: BTreeSet<(&str, &str)> =
        d.memberships.keys().map(|k| (k.tenant.as_str(), k.segment.as_str())).collect();
    let (st, ss): (Vec<&str>, Vec<&str>) = segments.into_iter().unzip();
    sqlx::query(
        "INSERT INTO segments_materialized (tenant_id, segment_id)
         SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(&st)
    .bind(&ss)
    .execute(&mut **tx)
    .await?;

    // Rows in (tenant, customer, segment) order: the table's key order.
    let mut rows: Vec<(&str, &str, &str, bool)> =
        d.memberships.iter().map(|(k, m)| (k.tenant.as_str(), k.customer.as_str(), k.segment.as_str(), *m)).collect();
    rows.sort_unstable();
    for member in [true, false] {
        let pick: Vec<_> = rows.iter().filter(|r| r.3 == member).collect();
        if pick.is_empty() {
            continue;
        }
        let t: Vec<&str> = pick.iter().map(|r| r.0).collect();
        let c: Vec<&str> = pick.iter().map(|r| r.1).collect();
        let s: Vec<&str> = pick.iter().map(|r| r.2).collect();
        let sql = if member {
            "INSERT INTO segment_members (tenant_id, customer_id, segment_id)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM segment_members m USING unnest($1::text[], $2::text[], $3::text[]) AS r(tenant_id, customer_id, segment_id)
             WHERE m.tenant_id = r.tenant_id AND m.customer_id = r.customer_id AND m.segment_id = r.segment_id"
        };
        sqlx::query(sql).bind(&t).bind(&c).bind(&s).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Suppression state per id, and the active counters per policy type. Each row is locked and
/// read first (key order), so the counter moves exactly when `counted` flips.
async fn apply_suppressions(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (key, ops) in &d.suppressions {
        let (tenant, id) = (&key.tenant, &key.id);
        let before: Option<(bool, Option<String>)> = sqlx::query_as(
            "SELECT counted, policy_type FROM suppressions WHERE tenant_id = $1 AND suppression_id = $2 FOR UPDATE",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        // The last create carries the fields; a lift anywhere is sticky.
        let create = ops.iter().rev().find(|s| s.op == crate::events::SuppressionOp::Create);
        let (counted, policy_type): (bool, Option<String>) = sqlx::query_as(
            "INSERT INTO suppressions AS s (tenant_id, suppression_id, customer_id, offer_id, channel_id, policy_id,
                                            policy_type, created_at, expires_at, lifted, counted)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, false)
             ON CONFLICT (tenant_id, suppression_id) DO UPDATE SET
                customer_id = COALESCE(EXCLUDED.customer_id, s.customer_id),
                offer_id = COALESCE(EXCLUDED.offer_id, s.offer_id),
                channel_id = COALESCE(EXCLUDED.channel_id, s.channel_id),
                policy_id = COALESCE(EXCLUDED.policy_id, s.policy_id),
                policy_type = COALESCE(EXCLUDED.policy_type, s.policy_type),
                created_at = COALESCE(EXCLUDED.created_at, s.created_at),
                expires_at = CASE WHEN EXCLUDED.created_at IS NULL THEN s.expires_at ELSE EXCLUDED.expires_at END,
                lifted = s.lifted OR EXCLUDED.lifted
             RETURNING created_at IS NOT NULL AND NOT lifted AND (expires_at IS NULL OR expires_at > now()), policy_type",
        )
        .bind(tenant)
        .bind(id)
        .bind(create.map(|c| &c.customer_id))
        .bind(create.and_then(|c| c.offer_id.as_ref()))
        .bind(create.and_then(|c| c.channel_id.as_ref()))
        .bind(create.map(|c| &c.policy_id))
        .bind(create.map(|c| &c.policy_type))
        .bind(create.map(|c| c.created_at))
        .bind(create.and_then(|c| c.expires_at))
        .bind(suppression_lifted(ops))
        .fetch_one(&mut **tx)
        .await?;
        if let Some((true, Some(old_type))) = &before {
            *counts.entry((tenant.clone(), old_type.clone())).or_default() -= 1;
        }
        if counted {
            if let Some(t) = &policy_type {
                *counts.entry((tenant.clone(), t.clone())).or_default() += 1;
            }
        }
        sqlx::query("UPDATE suppressions SET counted = $3 WHERE tenant_id = $1 AND suppression_id = $2")
            .bind(tenant)
            .bind(id)
            .bind(counted)
            .execute(&mut **tx)
            .await?;
    }
    add_suppression_counts(tx, &counts).await
}

/// Adds signed deltas to the active counters, in key order.
pub(crate) async fn add_suppression_counts(
    tx: &mut Transaction<'_, Postgres>,
    counts: &BTreeMap<(String, String), i64>,
) -> Result<(), sqlx::Error> {
    let mut rows = SUPPRESSION_ACTIVE_COUNTS.rows();
    for ((tenant, policy_type), n) in counts.iter().filter(|(_, n)| **n != 0) {
        rows.row().text(tenant).text(policy_type).int(*n).end();
    }
    rows.upsert(tx).await
}

/// Suppressions active now per policy type (migration `suppression_counts`).
static SUPPRESSION_ACTIVE_COUNTS: Table = Table {
    name: "suppression_active_counts",
    keys: &[("tenant_id", Text), ("policy_type", Text)],
    counters: &[("active", Int)],
};

/// The latest evaluation per model: only a later one replaces the stored one (late events do
/// not go back in time).
async fn apply_model_latest(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    for (key, e) in &d.model_latest {
        sqlx::query(
            "INSERT INTO model_latest AS l (tenant_id, model_id, model_name, evaluated_at, event_id, feature_importance)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, model_id) DO UPDATE SET
                model_name = EXCLUDED.model_name, evaluated_at = EXCLUDED.evaluated_at,
                event_id = EXCLUDED.event_id, feature_importance = EXCLUDED.feature_importance
             WHERE (EXCLUDED.evaluated_at, EXCLUDED.event_id) > (l.evaluated_at, l.event_id)",
        )
        .bind(&key.tenant)
        .bind(&key.id)
        .bind(&e.model_name)
        .bind(e.evaluated_at)
        .bind(&e.id)
        .bind(sqlx::types::Json(&e.feature_importance))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
