//! API key creation: 32 random bytes, shown once, stored only as a SHA-256 hash.

use base64::Engine;
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
