//! The response cache: shared by API replicas through Redis, in-process when Redis is not
//! configured (SPEC 6). Keys include the views' data version, so a commit invalidates every
//! entry; entries also expire after `DV_CACHE_TTL_MS`, the bound for what changes without a
//! commit (the clock: today's window, expiries).
//!
//! Tenant isolation is structural: the key is a hash of (tenant, canonical query), where the
//! tenant is the one the API key authenticated, and every entry also carries its tenant and is
//! ignored when it does not match the caller (defense in depth). A Redis failure is a miss:
//! the API keeps answering, uncached, and without waiting on Redis: every command is bounded
//! by [`REDIS_TIMEOUT`], and after a failure Redis is skipped for [`REDIS_BACKOFF`] (the
//! connection manager reconnects on the next command after that).
//!
//! Concurrent misses of one key in one process share one computation (`coalesce`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::coalesce::{self, Flights, Lookup};

/// One cached answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub tenant: String,
    pub etag: String,
    pub data_as_of: Option<String>,
    pub body: String,
}

/// Bound on in-process entries: past it the map is cleared (entries are seconds-lived anyway).
const LOCAL_MAX: usize = 10_000;

/// Longest a request waits on Redis (connect or command). A cache answers in about a
/// millisecond; past this, answering uncached is faster than waiting. (The connection
/// manager's defaults have no timeouts and retry a lost connection with backoff for about five
/// minutes, during which every request waited: seen with Redis killed under the API.)
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// After a Redis failure, requests skip the cache this long instead of each paying a timeout.
const REDIS_BACKOFF: Duration = Duration::from_secs(1);

/// The store, and the keys being computed in this process (`flights`: none when off, see
/// `coalesce`).
#[derive(Clone)]
pub enum ResponseCache {
    Redis { conn: ConnectionManager, ttl: Duration, health: Arc<Health>, flights: Arc<Flights> },
    Local { map: Arc<Mutex<HashMap<String, (Instant, Entry)>>>, ttl: Duration, flights: Arc<Flights> },
    Off,
}

/// The cache key of a request: the deployment's namespace (its database: two deployments may
/// share a Redis), the views' data version (see `data_version`: a commit changes every key),
/// the tenant and the request's canonical inputs (what its type reads, built by
/// `dashboard::request`; a map, so ordered by name).
pub fn key(namespace: &str, version: i64, tenant: &str, canonical: &BTreeMap<&str, String>) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&(namespace, version, tenant, canonical)).unwrap_or_default());
    format!("dv:resp:v2:{}", hex::encode(&h.finalize()[..16]))
}

/// A strong validator of a body.
pub fn etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

impl ResponseCache {
    pub async fn connect(redis_url: Option<&str>, ttl: Duration) -> ResponseCache {
        if ttl.is_zero() {
            return ResponseCache::Off;
        }
        let Some(url) = redis_url else {
            return ResponseCache::Local { map: Default::default(), ttl, flights: Default::default() };
        };
        // One connection attempt per command (no retry loop inside the request path).
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT);
        let conn = match redis::Client::open(url) {
            Ok(client) => ConnectionManager::new_with_config(client, config).await,
            Err(e) => Err(e),
        };
        match conn {
            Ok(conn) => {
                ResponseCache::Redis { conn, ttl, health: Arc::new(Health::new()), flights: Default::default() }
            }
            Err(e) => {
                // Start anyway (the API must answer without Redis), with the local cache.
                tracing::warn!(error = %e, "Redis unreachable at start-up; using the in-process cache");
                ResponseCache::Local { map: Default::default(), ttl, flights: Default::default() }
            }
        }
    }

    /// The tenant's entry under `key`. Inside a request (`coalesce::scope`) a miss either
    /// leads (`None`: the caller computes and `put`s) or waits for the request that leads the
    /// key and answers with its entry.
    pub async fn get(&self, key: &str, tenant: &str) -> Option<Entry> {
        let lookup = || self.lookup(key, tenant);
        let (result, entry) = match self {
            ResponseCache::Redis { flights, .. } | ResponseCache::Local { flights, .. } if coalesce::in_request() => {
                flights.get(key, tenant, lookup).await
            }
            _ => match lookup().await {
                Some(hit) => (Lookup::Hit, Some(hit)),
                None => (Lookup::Miss, None),
            },
        };
        result.count();
        entry
    }

    /// One read of the store.
    async fn lookup(&self, key: &str, tenant: &str) -> Option<Entry> {
        let entry = match self {
            ResponseCache::Off => None,
            ResponseCache::Local { map, ttl, .. } => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                map.get(key).filter(|(at, _)| at.elapsed() < *ttl).map(|(_, e)| e.clone())
            }
            ResponseCache::Redis { conn, health, .. } => {
                let mut conn = conn.clone();
                let mut get = redis::cmd("GET");
                get.arg(key);
                match health.bounded(get.query_async::<Option<Vec<u8>>>(&mut conn)).await {
                    Some(Ok(v)) => v.and_then(|bytes| serde_json::from_slice(&bytes).ok()),
                    Some(Err(e)) => {
                        health.failed();
                        tracing::warn!(error = %e, "response cache read failed; answering uncached");
                        None
                    }
                    None => None,
                }
            }
        };
        entry.filter(|e| e.tenant == tenant)
    }

    /// Stores the entry, then hands it to the requests waiting on this one's computation (after
    /// the write, so that a request arriving in between finds it cached).
    pub async fn put(&self, key: &str, entry: &Entry) {
        self.store(key, entry).await;
        coalesce::finish(key, entry);
    }

    async fn store(&self, key: &str, entry: &Entry) {
        match self {
            ResponseCache::Off => {}
            ResponseCache::Local { map, .. } => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= LOCAL_MAX {
                    map.clear();
                }
                map.insert(key.to_owned(), (Instant::now(), entry.clone()));
            }
            ResponseCache::Redis { conn, ttl, health, .. } => {
                let mut conn = conn.clone();
                let Ok(bytes) = serde_json::to_vec(entry) else { return };
                let ms = ttl.as_millis().max(1) as u64;
                let mut set = redis::cmd("SET");
                set.arg(key).arg(bytes).arg("PX").arg(ms);
                if let Some(Err(e)) = health.bounded(set.query_async::<()>(&mut conn)).await {
                    health.failed();
                    tracing::warn!(error = %e, "response cache write failed");
                }
            }
        }
    }
}

/// When Redis last failed, so that requests skip it for a moment instead of each waiting.
pub struct Health {
    epoch: Instant,
    /// Milliseconds since `epoch` until which Redis is skipped (0: not skipped).
    skip_until_ms: AtomicU64,
}

impl Health {
    fn new() -> Self {
        Health { epoch: Instant::now(), skip_until_ms: AtomicU64::new(0) }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn failed(&self) {
        self.skip_until_ms.store(self.now_ms() + REDIS_BACKOFF.as_millis() as u64, Ordering::Relaxed);
    }

    /// Runs a Redis command within [`REDIS_TIMEOUT`]; `None` when skipped (backing off). A
    /// timeout counts as a failure.
    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<redis::RedisResult<T>> {
        if self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        match tokio::time::timeout(REDIS_TIMEOUT, op).await {
            Ok(r) => Some(r),
            Err(_) => Some(Err(redis::RedisError::from((redis::ErrorKind::IoError, "timed out")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_namespace_version_tenant_and_inputs() {
        let a = BTreeMap::from([("type", "summary".to_string()), ("days", "7".into())]);
        let b = BTreeMap::from([("days", "7".to_string()), ("type", "summary".into())]);
        assert_eq!(key("db", 7, "t1", &a), key("db", 7, "t1", &b));
        assert_ne!(key("db", 7, "t1", &a), key("db", 7, "t1", &BTreeMap::from([("type", "summary".to_string())])));
        assert_ne!(key("db", 7, "t1", &a), key("db", 7, "t2", &a));
        assert_ne!(key("db", 7, "t1", &a), key("db2", 7, "t1", &a));
        assert_ne!(key("db", 7, "t1", &a), key("db", 8, "t1", &a));
    }

    #[tokio::test]
    async fn local_entries_are_per_tenant_and_expire() {
        let cache = ResponseCache::connect(None, Duration::from_millis(50)).await;
        let e = Entry { tenant: "t1".into(), etag: "\"x\"".into(), data_as_of: None, body: "{}".into() };
        cache.put("k", &e).await;
        assert_eq!(cache.get("k", "t1").await, Some(e));
        assert_eq!(cache.get("k", "t2").await, None);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.get("k", "t1").await, None);
    }
}
