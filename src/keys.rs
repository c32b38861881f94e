//! API keys: created as 32 random bytes, shown once, stored only as a SHA-256 hash; listed by
//! id (the first 8 bytes of that hash, in hex: what the audit log records) and revoked (issue
//! 17). A revoked key keeps its row and stops authenticating within the key cache's lifetime
//! on every API replica (`api::auth`, 5 s).

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sqlx::PgPool;

use crate::api::auth::{hash_key, Role, PLATFORM_ROLE};

/// Creates a key for `tenant` with `role` and returns it (the only time it is visible).
pub async fn create_api_key(pool: &PgPool, tenant: &str, role: Role, name: &str) -> anyhow::Result<String> {
    if tenant.trim().is_empty() {
        anyhow::bail!("the tenant must not be empty");
    }
    insert(pool, Some(tenant), role.as_str(), name).await
}

/// Creates a platform operator key (no tenant; reads only the ingest status of every tenant's
/// topics) and returns it.
pub async fn create_platform_key(pool: &PgPool, name: &str) -> anyhow::Result<String> {
    insert(pool, None, PLATFORM_ROLE, name).await
}

async fn insert(pool: &PgPool, tenant: Option<&str>, role: &str, name: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("dv_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, role, name) VALUES ($1, $2, $3, $4)")
        .bind(hash_key(&key))
        .bind(tenant)
        .bind(role)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(key)
}

/// One key as listed: never the key itself.
#[derive(Debug, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// The first 8 bytes of the key's SHA-256, in hex (the audit log's key id).
    pub id: String,
    /// None for a platform key.
    pub tenant_id: Option<String>,
    pub role: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The keys of `tenant` (every key when `None`), oldest first.
pub async fn list(pool: &PgPool, tenant: Option<&str>) -> sqlx::Result<Vec<KeyInfo>> {
    sqlx::query_as(
        "SELECT encode(substring(key_hash from 1 for 8), 'hex') AS id, tenant_id, role, name, created_at, revoked_at
           FROM api_keys WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY created_at, key_hash",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
}

/// Whether `id` is a key id's form: 16 hexadecimal digits.
pub fn is_key_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Revokes the active key `id` (of `tenant`, when given); false when there is none.
pub async fn revoke(pool: &PgPool, id: &str, tenant: Option<&str>) -> anyhow::Result<bool> {
    anyhow::ensure!(is_key_id(id), "a key id is 16 hexadecimal digits (list-api-keys shows them), got {id:?}");
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now()
          WHERE substring(key_hash from 1 for 8) = decode($1, 'hex') AND ($2::text IS NULL OR tenant_id = $2)
            AND revoked_at IS NULL",
    )
    .bind(id.to_ascii_lowercase())
    .bind(tenant)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
