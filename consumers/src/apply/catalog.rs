//! Catalog changes: resolved against the stored versions (docs/events.md 2.3) and written as final
//! states, one row per entity.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use crate::events::{CatalogChange, CatalogOp};
use crate::fold::catalog_change_applies;

type EntityKey = (String, String, String);

/// The state an entity ends the batch in.
struct Final<'a> {
    version: Option<i64>,
    change: &'a CatalogChange,
}

pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, changes: &[CatalogChange]) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let keys: BTreeSet<EntityKey> =
        changes.iter().map(|c| (c.tenant_id.clone(), c.entity.clone(), c.id.clone())).collect();
    let (kt, (ke, ki)): (Vec<&str>, (Vec<&str>, Vec<&str>)) =
        keys.iter().map(|(t, e, i)| (t.as_str(), (e.as_str(), i.as_str()))).unzip();
    // FOR UPDATE in key order: the stored version cannot move under us, and two writers lock
    // in the same order.
    let stored: Vec<(String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT c.tenant_id, c.entity, c.entity_id, c.version
           FROM catalog_entities c
           JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(tenant_id, entity, entity_id)
             USING (tenant_id, entity, entity_id)
          ORDER BY c.tenant_id, c.entity, c.entity_id
            FOR UPDATE OF c",
    )
    .bind(&kt)
    .bind(&ke)
    .bind(&ki)
    .fetch_all(&mut **tx)
    .await?;
    let mut versions: BTreeMap<EntityKey, Option<i64>> =
        stored.into_iter().map(|(t, e, i, v)| ((t, e, i), v)).collect();

    let mut finals: BTreeMap<EntityKey, Final> = BTreeMap::new();
    for c in changes {
        let key = (c.tenant_id.clone(), c.entity.clone(), c.id.clone());
        let stored = versions.get(&key).copied().flatten();
        if !catalog_change_applies(stored, c.version) {
            continue;
        }
        // Versions only move forward: an unversioned change keeps the stored version.
        let version = stored.max(c.version);
        versions.insert(key.clone(), version);
        finals.insert(key, Final { version, change: c });
    }

    for ((tenant, entity, id), f) in &finals {
        let c = f.change;
        let deleted = c.op == CatalogOp::Delete;
        // Decode validated the fields, so this cannot fail; a tombstone keeps no fields.
        let fields = if deleted { Default::default() } else { c.fields().unwrap_or_default() };
        let data = if deleted { None } else { c.data.clone().map(serde_json::Value::Object) };
        sqlx::query(
            "INSERT INTO catalog_entities AS c (tenant_id, entity, entity_id, version, deleted, name, status, priority,
                                                category_id, budget_allocated_micros, offer_id, data, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (tenant_id, entity, entity_id) DO UPDATE SET
                version = EXCLUDED.version, deleted = EXCLUDED.deleted, name = EXCLUDED.name,
                status = EXCLUDED.status, priority = EXCLUDED.priority, category_id = EXCLUDED.category_id,
                budget_allocated_micros = EXCLUDED.budget_allocated_micros, offer_id = EXCLUDED.offer_id,
                data = EXCLUDED.data, updated_at = EXCLUDED.updated_at",
        )
        .bind(tenant)
        .bind(entity)
        .bind(id)
        .bind(f.version)
        .bind(deleted)
        .bind(&fields.name)
        .bind(&fields.status)
        .bind(fields.priority)
        .bind(&fields.category_id)
        .bind(fields.budget_allocated_micros)
        .bind(&fields.offer_id)
        .bind(data.as_ref().map(sqlx::types::Json))
        .bind::<DateTime<Utc>>(c.updated_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
