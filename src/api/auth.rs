//! `X-API-Key` + `X-Tenant-Id` authentication (SPEC 5.4). Keys are looked up by their SHA-256;
//! a validated key is cached in-process for a short while so that a dashboard poll costs no
//! database round trip (revoking a key takes effect within that TTL).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::error::ApiError;
use super::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

/// The authenticated caller: a tenant and a role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role < role {
            return Err(ApiError::Forbidden(format!(
                "this requires the {} role; the key has {}",
                role.as_str(),
                self.role.as_str()
            )));
        }
        Ok(())
    }
}

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Bound on cached keys: past it the cache is cleared (keys are few; this only stops a flood
/// of random keys from growing memory).
const KEY_CACHE_MAX: usize = 10_000;

/// Known keys: hash → (tenant, role, when looked up). Unknown keys are not cached.
#[derive(Clone, Default)]
pub struct KeyCache(Arc<RwLock<HashMap<Vec<u8>, (String, Role, Instant)>>>);

impl KeyCache {
    async fn lookup(&self, pool: &PgPool, key: &str) -> Result<Option<(String, Role)>, ApiError> {
        let hash = hash_key(key);
        if let Some((t, r, at)) = self.0.read().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(Some((t.clone(), *r)));
            }
        }
        let row: Option<(String, String)> = sqlx::query_as("SELECT tenant_id, role FROM api_keys WHERE key_hash = $1")
            .bind(&hash)
            .fetch_optional(pool)
            .await?;
        let Some((tenant, role)) = row else { return Ok(None) };
        let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("api_keys holds an unknown role {role:?}"))?;
        let mut cache = self.0.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= KEY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (tenant.clone(), role, Instant::now()));
        Ok(Some((tenant, role)))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header =
            |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        let key = header("x-api-key").ok_or(ApiError::Unauthorized)?;
        let (key_tenant, role) = state.keys.lookup(&state.pool, key).await?.ok_or(ApiError::Unauthorized)?;
        let tenant =
            header("x-tenant-id").ok_or_else(|| ApiError::BadRequest("the X-Tenant-Id header is required".into()))?;
        if key_tenant != tenant {
            return Err(ApiError::Forbidden("this API key does not belong to the tenant in X-Tenant-Id".into()));
        }
        Ok(Caller { tenant_id: key_tenant, role })
    }
}
