//! A byte store with expiry, shared by API replicas through Redis, in-process when Redis is not
//! configured (docs/guarantees.md 6): what the response cache and the narrative cache keep
//! their entries in. A Redis failure is a miss: the API keeps answering without waiting on
//! Redis: every command is bounded by [`REDIS_TIMEOUT`], and after a failure Redis is skipped
//! for [`REDIS_BACKOFF`] (the connection manager reconnects on the next command after that).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Bound on in-process entries: past it the map is cleared (entries are short-lived, and a
/// cleared cache only costs recomputation).
const LOCAL_MAX: usize = 10_000;

/// Longest a request waits on Redis (connect or command). A cache answers in about a
/// millisecond; past this, answering uncached is faster than waiting. (The connection
/// manager's defaults have no timeouts and retry a lost connection with backoff for about five
/// minutes, during which every request waited: seen with Redis killed under the API.)
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// After a Redis failure, requests skip the cache this long instead of each paying a timeout.
const REDIS_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub enum Store {
    Redis { conn: ConnectionManager, health: Arc<Health> },
    Local { map: Entries },
    Off,
}

/// In-process entries: key → (expires at, value).
type Entries = Arc<Mutex<HashMap<String, (Instant, Vec<u8>)>>>;

impl Store {
    /// Redis at `redis_url`, or in-process without one (or when Redis is unreachable at
    /// start-up: the API must answer without it).
    pub async fn connect(redis_url: Option<&str>) -> Store {
        let Some(url) = redis_url else { return Store::local() };
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
            Ok(conn) => Store::Redis { conn, health: Arc::new(Health::new()) },
            Err(e) => {
                tracing::warn!(error = %e, "Redis unreachable at start-up; using the in-process cache");
                Store::local()
            }
        }
    }

    pub fn local() -> Store {
        Store::Local { map: Arc::default() }
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self {
            Store::Off => None,
            Store::Local { map } => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                map.get(key).filter(|(expires, _)| Instant::now() < *expires).map(|(_, v)| v.clone())
            }
            Store::Redis { conn, health } => {
                let mut conn = conn.clone();
                let mut get = redis::cmd("GET");
                get.arg(key);
                match health.bounded(get.query_async::<Option<Vec<u8>>>(&mut conn)).await {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => {
                        health.failed();
                        tracing::warn!(error = %e, "cache read failed; answering uncached");
                        None
                    }
                    None => None,
                }
            }
        }
    }

    pub async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        match self {
            Store::Off => {}
            Store::Local { map } => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= LOCAL_MAX {
                    map.clear();
                }
                map.insert(key.to_owned(), (Instant::now() + ttl, value));
            }
            Store::Redis { conn, health } => {
                let mut conn = conn.clone();
                let ms = ttl.as_millis().max(1) as u64;
                let mut set = redis::cmd("SET");
                set.arg(key).arg(value).arg("PX").arg(ms);
                if let Some(Err(e)) = health.bounded(set.query_async::<()>(&mut conn)).await {
                    health.failed();
                    tracing::warn!(error = %e, "cache write failed");
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

    #[tokio::test]
    async fn local_entries_expire() {
        let store = Store::local();
        store.put("k", b"v".to_vec(), Duration::from_millis(50)).await;
        assert_eq!(store.get("k").await.as_deref(), Some(&b"v"[..]));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(store.get("k").await, None);
        assert_eq!(Store::Off.get("k").await, None);
    }
}
