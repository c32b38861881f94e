//! The response cache: shared by API replicas through Redis, in-process when Redis is not
//! configured (docs/guarantees.md 6). Keys include the views' data version, so a commit invalidates every
//! entry; entries also expire after `DV_CACHE_TTL_MS`, the bound for what changes without a
//! commit (the clock: today's window, expiries).
//!
//! Tenant isolation is structural: the key is a hash of (tenant, canonical query), where the
//! tenant is the one the API key authenticated, and every entry also carries its tenant and is
//! ignored when it does not match the caller (defense in depth). A Redis failure is a miss
//! (see [`Store`]): the API keeps answering, uncached, without waiting on Redis.
//!
//! Concurrent misses of one key in one process share one computation ([`single_flight`]): the
//! first computes and stores the answer, the others wait for it and answer with it, with their
//! own ETag / 304; an error is shared the same way (status and sentence) and not cached. If the
//! computing request's client goes away, one of the waiting requests computes instead.
//!
//! [`single_flight`]: super::single_flight

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult, SharedError};
use super::single_flight::{Flown, SingleFlight};
use crate::store::Store;

/// One cached answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub tenant: String,
    pub etag: String,
    pub data_as_of: Option<String>,
    pub body: String,
}

impl Entry {
    /// The HTTP answer: the body, or 304 when `If-None-Match` names its ETag (or `*`); with
    /// `ETag`, `X-Data-As-Of` (the time up to which the views were complete) and `X-Cache`.
    pub fn respond(self, request: &HeaderMap, lookup: Lookup) -> Response {
        let not_modified = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == self.etag || t.trim() == "*"));
        let mut resp = if not_modified {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, "application/json")], self.body).into_response()
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Some(v) = self.data_as_of.and_then(|t| HeaderValue::from_str(&t).ok()) {
            h.insert("x-data-as-of", v);
        }
        h.insert("x-cache", HeaderValue::from_static(lookup.as_str()));
        resp
    }
}

/// How an answer was obtained (the `X-Cache` header and `api_cache_lookups_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// From the cache.
    Hit,
    /// Computed by this request.
    Miss,
    /// Computed by a concurrent identical request.
    Coalesced,
}

impl Lookup {
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Coalesced => "coalesced",
        }
    }
}

/// The answer of a computation, as the requests sharing it get it.
type Shared = Result<Entry, SharedError>;

/// The store, how long an entry lives, and the keys being computed in this process.
#[derive(Clone)]
pub struct ResponseCache {
    store: Store,
    ttl: Duration,
    flights: Arc<SingleFlight<String, Shared>>,
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
    /// `ttl` 0: no cache (every request computes).
    pub async fn connect(redis_url: Option<&str>, ttl: Duration) -> ResponseCache {
        let store = if ttl.is_zero() { Store::Off } else { Store::connect(redis_url).await };
        ResponseCache { store, ttl, flights: Arc::default() }
    }

    /// `DV_CACHE_TTL_MS=0`: every request computes.
    pub fn is_off(&self) -> bool {
        matches!(self.store, Store::Off)
    }

    /// The tenant's answer under `key`: from the cache, computed by this call, or by a
    /// concurrent identical call in this process (single flight; not when the cache is off, so
    /// that every request then reads PostgreSQL). A computed entry is stored before the calls
    /// waiting for it get it, so that one arriving in between finds it cached.
    pub async fn get_or_compute<F, Fut>(&self, key: &str, tenant: &str, compute: F) -> ApiResult<(Entry, Lookup)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Entry>>,
    {
        let (answer, lookup) = self.fetch(key, tenant, compute).await;
        metrics::counter!("api_cache_lookups_total", "result" => lookup.as_str()).increment(1);
        answer.map(|entry| (entry, lookup))
    }

    async fn fetch<F, Fut>(&self, key: &str, tenant: &str, compute: F) -> (ApiResult<Entry>, Lookup)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Entry>>,
    {
        if self.is_off() {
            return (compute().await, Lookup::Miss);
        }
        let key = key.to_owned();
        let key_ref = &key;
        let mut job = move || async move {
            let computed = compute().await;
            if let Ok(entry) = &computed {
                self.put(key_ref, entry).await;
            }
            computed
        };
        let share = |r: &ApiResult<Entry>| match r {
            Ok(entry) => Ok(entry.clone()),
            Err(e) => Err(e.share()),
        };
        loop {
            let seen = self.flights.completed();
            if let Some(hit) = self.lookup(&key, tenant).await {
                return (Ok(hit), Lookup::Hit);
            }
            match self.flights.run(&key, seen, job, share).await {
                Flown::Led(computed) => return (computed, Lookup::Miss),
                Flown::Followed(Ok(entry)) => {
                    // The key includes the tenant; checked again as everywhere (defense in depth).
                    let entry = Some(entry).filter(|e| e.tenant == tenant);
                    let answer =
                        entry.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a shared answer of another tenant")));
                    return (answer, Lookup::Coalesced);
                }
                Flown::Followed(Err(shared)) => return (Err(ApiError::Shared(shared)), Lookup::Coalesced),
                Flown::Stale(back) => job = back,
            }
        }
    }
}

impl ResponseCache {
    /// The tenant's entry under `key` (an entry of another tenant is ignored: defense in depth).
    async fn lookup(&self, key: &str, tenant: &str) -> Option<Entry> {
        let bytes = self.store.get(key).await?;
        serde_json::from_slice::<Entry>(&bytes).ok().filter(|e| e.tenant == tenant)
    }

    async fn put(&self, key: &str, entry: &Entry) {
        let Ok(bytes) = serde_json::to_vec(entry) else { return };
        self.store.put(key, bytes, self.ttl).await;
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
    async fn entries_are_per_tenant_and_expire() {
        let cache = ResponseCache::connect(None, Duration::from_millis(50)).await;
        let e = Entry { tenant: "t1".into(), etag: "\"x\"".into(), data_as_of: None, body: "{}".into() };
        cache.put("k", &e).await;
        assert_eq!(cache.lookup("k", "t1").await, Some(e));
        assert_eq!(cache.lookup("k", "t2").await, None);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.lookup("k", "t1").await, None);
    }

    fn entry(body: &str) -> Entry {
        Entry { tenant: "t".into(), etag: etag(body.as_bytes()), data_as_of: None, body: body.into() }
    }

    #[tokio::test]
    async fn a_computed_answer_is_stored_an_error_is_not() {
        let cache = ResponseCache::connect(None, Duration::from_secs(60)).await;
        let failed = cache.get_or_compute("k", "t", || async { Err(ApiError::Unavailable("down".into())) }).await;
        assert!(matches!(failed, Err(ApiError::Unavailable(_))));
        let (e, lookup) = cache.get_or_compute("k", "t", || async { Ok(entry("a")) }).await.unwrap();
        assert_eq!((e.body.as_str(), lookup), ("a", Lookup::Miss));
        let (e, lookup) = cache.get_or_compute("k", "t", || async { Ok(entry("b")) }).await.unwrap();
        assert_eq!((e.body.as_str(), lookup), ("a", Lookup::Hit));
        // Off: every call computes.
        let off = ResponseCache::connect(None, Duration::ZERO).await;
        for body in ["x", "y"] {
            let (e, lookup) = off.get_or_compute("k", "t", || async { Ok(entry(body)) }).await.unwrap();
            assert_eq!((e.body.as_str(), lookup), (body, Lookup::Miss));
        }
    }
}
