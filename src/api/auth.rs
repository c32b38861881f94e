//! `X-API-Key` + `X-Tenant-Id` authentication (docs/api.md 5.4). Keys are looked up by their SHA-256;
//! a key's answer is cached in-process for a short while so that a dashboard poll costs no
//! database round trip (revoking a key takes effect within [`KNOWN_TTL`] on every replica:
//! each looks the key up again after that long), and so does an unknown key's ([`UNKNOWN_TTL`]),
//! so that a client retrying a wrong key, or a flood of one, costs no query per request.
//!
//! Two kinds of key: a tenant's, with a role (`viewer` < `editor` < `admin`), which reads that
//! tenant's data ([`Caller`]); and a platform operator's (`create-api-key --platform`), bound
//! to no tenant, which reads only the ingest status and the dead letters attributed to no
//! tenant, whatever `X-Tenant-Id` says or without one ([`StatusCaller`]). A platform key is
//! refused (403) by every tenant endpoint: operators see lag and partitions, never a tenant's
//! answers, traces or dead-letter payloads.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::error::ApiError;

/// A tenant key's role.
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

/// `api_keys.role` of a platform operator key (its `tenant_id` is NULL).
pub const PLATFORM_ROLE: &str = "platform";

/// What a key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Tenant { tenant_id: String, role: Role, key: KeyIdentity },
    Platform,
}

/// Which key asked, for the audit log: its name and an id that is a prefix of its SHA-256
/// (the key itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    pub id: String,
    pub name: String,
}

/// The authenticated caller of a tenant endpoint: a tenant and a role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    pub role: Role,
    pub key: KeyIdentity,
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

/// The caller of `GET /api/v1/ingest/status`: a platform key, or a tenant key as on any
/// tenant endpoint.
#[derive(Debug, Clone)]
pub enum StatusCaller {
    Platform,
    Tenant(Caller),
}

pub fn hash_key(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// How long a known key's kind is reused: a revoked key works at most this much longer (issue
/// 17 asks for seconds; a poll every few seconds per key and replica costs one indexed lookup).
const KNOWN_TTL: Duration = Duration::from_secs(5);
/// How long an unknown key is answered 401 without a lookup: a key created meanwhile works
/// after at most this long; short, since only a client that tried it before its creation waits.
const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// Bound on each map: past it the map is cleared. Known keys are few; the unknown map has its
/// own bound so that a flood of random keys can only clear itself, never the known keys.
const CACHE_MAX: usize = 10_000;

/// Key hash → `V`, shared by the clones of a [`KeyCache`].
type ByHash<V> = Arc<RwLock<HashMap<Vec<u8>, V>>>;

/// Key hash → its kind (None: unknown) and when it was looked up.
#[derive(Clone, Default)]
pub struct KeyCache {
    known: ByHash<(KeyKind, Instant)>,
    unknown: ByHash<Instant>,
}

/// A stored API key: a tenant's with a role, or a platform key (no tenant).
#[derive(sqlx::FromRow)]
struct KeyRow {
    tenant_id: Option<String>,
    role: String,
    name: String,
}

impl KeyCache {
    async fn lookup(&self, pool: &PgPool, key: &str) -> Result<Option<KeyKind>, ApiError> {
        let hash = hash_key(key);
        if let Some(cached) = self.cached(&hash) {
            return Ok(cached);
        }
        let row: Option<KeyRow> =
            sqlx::query_as("SELECT tenant_id, role, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(&hash)
                .fetch_optional(pool)
                .await?;
        let kind = match row {
            None => None,
            Some(KeyRow { tenant_id: None, role, .. }) if role == PLATFORM_ROLE => Some(KeyKind::Platform),
            Some(KeyRow { tenant_id: Some(tenant_id), role, name }) => {
                let role =
                    Role::parse(&role).ok_or_else(|| anyhow::anyhow!("api_keys holds an unknown role {role:?}"))?;
                let key = KeyIdentity { id: hex::encode(&hash[..8]), name };
                Some(KeyKind::Tenant { tenant_id, role, key })
            }
            Some(KeyRow { tenant_id: tenant, role, .. }) => {
                return Err(anyhow::anyhow!("api_keys holds role {role:?} with tenant {tenant:?}").into());
            }
        };
        self.remember(hash, kind.clone());
        Ok(kind)
    }

    /// The cached answer for a key hash: `Some(None)` for a recently unknown key.
    fn cached(&self, hash: &[u8]) -> Option<Option<KeyKind>> {
        if let Some((kind, at)) = self.known.read().unwrap_or_else(|p| p.into_inner()).get(hash) {
            if at.elapsed() < KNOWN_TTL {
                return Some(Some(kind.clone()));
            }
        }
        let unknown = self.unknown.read().unwrap_or_else(|p| p.into_inner());
        unknown.get(hash).filter(|at| at.elapsed() < UNKNOWN_TTL).map(|_| None)
    }

    fn remember(&self, hash: Vec<u8>, kind: Option<KeyKind>) {
        match kind {
            Some(kind) => {
                let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
                if known.len() >= CACHE_MAX {
                    known.clear();
                }
                known.insert(hash, (kind, Instant::now()));
            }
            None => {
                let mut unknown = self.unknown.write().unwrap_or_else(|p| p.into_inner());
                if unknown.len() >= CACHE_MAX {
                    unknown.clear();
                }
                unknown.insert(hash, Instant::now());
            }
        }
    }
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

async fn key_kind(parts: &Parts, state: &AuthState) -> Result<KeyKind, ApiError> {
    let key = header(parts, "x-api-key").ok_or(ApiError::Unauthorized)?;
    state.keys.lookup(&state.pool, key).await?.ok_or(ApiError::Unauthorized)
}

/// A tenant key matching `X-Tenant-Id`.
fn tenant_caller(parts: &Parts, key_tenant: String, role: Role, key: KeyIdentity) -> Result<Caller, ApiError> {
    let tenant = header(parts, "x-tenant-id")
        .ok_or_else(|| ApiError::BadRequest("the X-Tenant-Id header is required".into()))?;
    if key_tenant != tenant {
        return Err(ApiError::Forbidden("this API key does not belong to the tenant in X-Tenant-Id".into()));
    }
    Ok(Caller { tenant_id: key_tenant, role, key })
}

/// What authentication needs of the application's state.
#[derive(Clone)]
pub struct AuthState {
    pub pool: PgPool,
    pub keys: KeyCache,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AuthState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = &AuthState::from_ref(state);
        match key_kind(parts, state).await? {
            KeyKind::Tenant { tenant_id, role, key } => tenant_caller(parts, tenant_id, role, key),
            KeyKind::Platform => Err(ApiError::Forbidden(
                "a platform key reads only GET /api/v1/ingest/status and the unattributed dead letters; tenant data needs a key of the tenant".into(),
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for StatusCaller
where
    AuthState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = &AuthState::from_ref(state);
        match key_kind(parts, state).await? {
            KeyKind::Tenant { tenant_id, role, key } => {
                Ok(StatusCaller::Tenant(tenant_caller(parts, tenant_id, role, key)?))
            }
            KeyKind::Platform => Ok(StatusCaller::Platform),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_remembered_briefly_and_apart_from_known_ones() {
        let cache = KeyCache::default();
        assert_eq!(cache.cached(b"a"), None, "never looked up");
        cache.remember(b"a".to_vec(), None);
        assert_eq!(cache.cached(b"a"), Some(None), "unknown, without a lookup");
        let key = KeyIdentity { id: "0123456789abcdef".into(), name: "k".into() };
        let acme = KeyKind::Tenant { tenant_id: "acme".into(), role: Role::Admin, key };
        cache.remember(b"k".to_vec(), Some(acme.clone()));
        // A flood of unknown keys clears only the unknown map.
        for i in 0..=CACHE_MAX {
            cache.remember(format!("x{i}").into_bytes(), None);
        }
        assert_eq!(cache.cached(b"k"), Some(Some(acme)));
        assert!(cache.unknown.read().unwrap().len() <= CACHE_MAX);
        // Expired entries are looked up again.
        cache.unknown.write().unwrap().insert(b"old".to_vec(), Instant::now() - UNKNOWN_TTL);
        assert_eq!(cache.cached(b"old"), None);
    }
}
