//! Single-flight for response-cache misses: concurrent misses of one cache key in one API
//! process share one computation. Without it, 64 clients asking for the same uncached answer
//! ran 64 identical reads against PostgreSQL at once (a wrk run collapsed to 1,400 req/s).
//!
//! The first request to miss a key leads: [`ResponseCache::get`] answers it `None`, it
//! computes, and its [`ResponseCache::put`] hands the entry to the others, which have been
//! waiting inside their own `get` and go on from there like a hit (their own `ETag` / 304).
//! A leader that ends without an entry (its read failed) shares its error response instead,
//! status and body, uncached: [`scope`] answers each waiter with it. A leader dropped before
//! either (its client went away) releases the key, and its waiters look again: one of them
//! leads. The in-flight map holds only keys being computed right now, each owned by a live
//! request, so it is bounded by the requests in flight.
//!
//! The read path (`dashboard/`) only calls `get` and `put`; what ties a request to its flight
//! is a task-local slot that [`scope`], a middleware on the dashboard route, wraps around each
//! request. Outside such a scope `get` does not coalesce.
//!
//! Off with the cache (`DV_CACHE_TTL_MS=0`): that setting asks for every request to read
//! PostgreSQL, which is what the benchmark's uncached figures measure; coalescing would turn
//! 64 identical requests into one read and measure the wait instead.
//!
//! [`ResponseCache::get`]: super::cache::ResponseCache::get
//! [`ResponseCache::put`]: super::cache::ResponseCache::put

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{oneshot, watch};

use super::cache::Entry;

/// Largest error body a leader shares with its waiters. Error bodies are one JSON sentence.
const MAX_SHARED_BODY: usize = 64 * 1024;

/// How a request's cache lookup was answered; the `X-Cache` response header and the
/// `result` label of `api_cache_lookups_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// From the cache.
    Hit,
    /// Computed by this request.
    Miss,
    /// Computed by a concurrent request for the same key.
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

    /// Counts the lookup and remembers it for the request's `X-Cache` header.
    pub fn count(self) {
        metrics::counter!("api_cache_lookups_total", "result" => self.as_str()).increment(1);
        let _ = SLOT.try_with(|s| s.borrow_mut().lookup = Some(self));
    }
}

/// What a leader hands its waiters.
#[derive(Debug, Clone)]
enum Outcome {
    /// The answer, also written to the cache.
    Entry(Entry),
    /// The leader's error response (not cached).
    Failed(Arc<SharedResponse>),
}

#[derive(Debug)]
struct SharedResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl SharedResponse {
    fn to_response(&self) -> Response {
        let mut resp = Response::new(Body::from(self.body.clone()));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers.clone();
        resp
    }
}

/// The keys being computed in this process.
#[derive(Debug, Default)]
pub struct Flights {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    flights: HashMap<String, Flight>,
    /// Tells a lease from its successor on the same key.
    next_id: u64,
    /// Counts the flights that ended with an entry (written to the cache first). A request
    /// that missed the cache becomes a leader only if this did not move since before its
    /// lookup: otherwise a flight may have filled the key between its lookup and now, and it
    /// looks again (once), instead of computing the same answer a second time.
    filled: u64,
}

#[derive(Debug)]
struct Flight {
    id: u64,
    /// Cloned by each waiter; the leader's [`Lease`] holds the sender.
    outcome: watch::Receiver<Option<Outcome>>,
    /// How many requests joined (tests wait on it).
    waiters: usize,
}

enum Joined {
    Leader(Lease),
    Follower(watch::Receiver<Option<Outcome>>),
    /// A flight filled some key since the caller's lookup: look again.
    LookAgain,
}

impl Flights {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn filled(&self) -> u64 {
        self.lock().filled
    }

    /// A lookup that waits for the key's computation in flight instead of missing: `lookup`
    /// reads the cache. `None` with [`Lookup::Miss`]: the caller leads and must compute (its
    /// lease is in the request's slot until its `put`).
    pub(super) async fn get<F, Fut>(self: &Arc<Self>, key: &str, tenant: &str, mut lookup: F) -> (Lookup, Option<Entry>)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<Entry>>,
    {
        let mut seen = Some(self.filled());
        loop {
            if let Some(hit) = lookup().await {
                return (Lookup::Hit, Some(hit));
            }
            match self.join(key, seen) {
                Joined::Leader(lease) => {
                    // Outside a request scope the lease is dropped here: no one waits on it.
                    let _ = SLOT.try_with(|s| s.borrow_mut().lease = Some(lease));
                    return (Lookup::Miss, None);
                }
                Joined::LookAgain => seen = None,
                Joined::Follower(mut rx) => {
                    let outcome = rx.wait_for(Option::is_some).await.ok().and_then(|v| v.clone());
                    match outcome {
                        Some(Outcome::Entry(e)) if e.tenant == tenant => return (Lookup::Coalesced, Some(e)),
                        Some(Outcome::Failed(resp)) if hand_over(resp.clone()) => {
                            Lookup::Coalesced.count();
                            // `scope` answers with the leader's response and drops this future.
                            std::future::pending::<()>().await;
                        }
                        // The leader went away without an answer: look again (one waiter leads).
                        _ => seen = Some(self.filled()),
                    }
                }
            }
        }
    }

    fn join(self: &Arc<Self>, key: &str, seen: Option<u64>) -> Joined {
        let mut inner = self.lock();
        if let Some(flight) = inner.flights.get_mut(key) {
            flight.waiters += 1;
            return Joined::Follower(flight.outcome.clone());
        }
        if seen.is_some_and(|s| s != inner.filled) {
            return Joined::LookAgain;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let (tx, outcome) = watch::channel(None);
        inner.flights.insert(key.to_owned(), Flight { id, outcome, waiters: 0 });
        Joined::Leader(Lease { flights: self.clone(), key: key.to_owned(), id, tx: Some(tx) })
    }

    /// Requests waiting on `key`'s flight (0 when none is in flight).
    #[cfg(test)]
    fn waiters(&self, key: &str) -> usize {
        self.lock().flights.get(key).map_or(0, |f| f.waiters)
    }

    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.lock().flights.len()
    }
}

/// A leader's hold on a key. Dropped without an outcome (the request was cancelled), it
/// removes the flight, and its waiters, seeing the sender gone, look again.
struct Lease {
    flights: Arc<Flights>,
    key: String,
    id: u64,
    /// `None` once the outcome is sent.
    tx: Option<watch::Sender<Option<Outcome>>>,
}

impl Lease {
    fn finish(mut self, outcome: Outcome) {
        // Out of the map first: whoever comes later finds the cache filled (or computes anew
        // after an error), never a finished flight.
        self.release(matches!(outcome, Outcome::Entry(_)));
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(outcome)); // Err: nobody waited.
        }
    }

    fn release(&self, filled: bool) {
        let mut inner = self.flights.lock();
        if inner.flights.get(&self.key).is_some_and(|f| f.id == self.id) {
            inner.flights.remove(&self.key);
        }
        if filled {
            inner.filled = inner.filled.wrapping_add(1);
        }
    }

    /// Shares a failed leader's response with its waiters and gives it back to the leader.
    async fn fail(self, resp: Response) -> Response {
        let (parts, body) = resp.into_parts();
        match axum::body::to_bytes(body, MAX_SHARED_BODY).await {
            Ok(body) => {
                let shared =
                    SharedResponse { status: parts.status, headers: parts.headers.clone(), body: body.clone() };
                self.finish(Outcome::Failed(Arc::new(shared)));
                Response::from_parts(parts, Body::from(body))
            }
            // Not an error sentence: the waiters compute for themselves (the lease drops).
            Err(e) => {
                tracing::error!(error = %e, "a failed dashboard answer could not be read back");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.release(false);
        }
    }
}

/// Hands the entry to the waiters of `key`, if this request leads that key's flight.
pub(super) fn finish(key: &str, entry: &Entry) {
    let lease = SLOT.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.lease.as_ref().is_some_and(|l| l.key == key) {
            s.lease.take()
        } else {
            None
        }
    });
    if let Ok(Some(lease)) = lease {
        lease.finish(Outcome::Entry(entry.clone()));
    }
}

/// Whether the current task is a request inside [`scope`].
pub(super) fn in_request() -> bool {
    SLOT.try_with(|_| ()).is_ok()
}

/// Gives a waiter's request its leader's failed response (false outside a scope).
fn hand_over(resp: Arc<SharedResponse>) -> bool {
    let tx = SLOT.try_with(|s| s.borrow_mut().answer.take()).ok().flatten();
    tx.is_some_and(|tx| tx.send(resp).is_ok())
}

/// A request's part in coalescing.
#[derive(Default)]
struct Slot {
    /// The flight this request leads, until its `put` (the read path looks up one key).
    lease: Option<Lease>,
    /// How its lookup was answered (`X-Cache`).
    lookup: Option<Lookup>,
    /// Where a waiter receives its failed leader's response.
    answer: Option<oneshot::Sender<Arc<SharedResponse>>>,
}

tokio::task_local! {
    static SLOT: RefCell<Slot>;
}

/// Middleware of the dashboard route: the request's slot around the handler. A leader whose
/// handler answered without a `put` (an error) shares that response; a waiter whose leader
/// failed answers with it; every answer says how it was looked up (`X-Cache`).
pub async fn scope(req: Request, next: Next) -> Response {
    let (tx, rx) = oneshot::channel();
    let slot = RefCell::new(Slot { answer: Some(tx), ..Slot::default() });
    SLOT.scope(slot, async move {
        let mut resp = tokio::select! {
            biased;
            resp = next.run(req) => resp,
            Ok(shared) = rx => shared.to_response(),
        };
        let (lease, lookup) = SLOT.with(|s| {
            let mut s = s.borrow_mut();
            (s.lease.take(), s.lookup)
        });
        if let Some(lease) = lease {
            resp = lease.fail(resp).await;
        }
        if let Some(lookup) = lookup {
            resp.headers_mut().insert("x-cache", HeaderValue::from_static(lookup.as_str()));
        }
        resp
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::extract::State;
    use axum::routing::get;
    use axum::Router;
    use tokio::sync::Semaphore;
    use tower::ServiceExt;

    use super::*;
    use crate::api::cache::ResponseCache;

    const KEY: &str = "k";

    /// A read path shaped like the dashboard's: cache lookup, on a miss a computation that
    /// waits for the test to open `gate`, then `put` (or an error when `fail`).
    #[derive(Clone)]
    struct Fixture {
        cache: ResponseCache,
        gate: Arc<Semaphore>,
        computations: Arc<AtomicUsize>,
        fail: bool,
    }

    impl Fixture {
        async fn new(ttl: Duration, fail: bool) -> Fixture {
            Fixture {
                cache: ResponseCache::connect(None, ttl).await,
                gate: Arc::new(Semaphore::new(0)),
                computations: Default::default(),
                fail,
            }
        }

        fn flights(&self) -> Arc<Flights> {
            match &self.cache {
                ResponseCache::Local { flights, .. } | ResponseCache::Redis { flights, .. } => flights.clone(),
                ResponseCache::Off => Arc::default(),
            }
        }

        fn computations(&self) -> usize {
            self.computations.load(Ordering::SeqCst)
        }

        /// Sends one request in a task of its own (as hyper serves each connection).
        fn request(&self) -> tokio::task::JoinHandle<Answer> {
            let app = Router::new().route("/", get(read)).route_layer(axum::middleware::from_fn(scope));
            let app = app.with_state(self.clone());
            tokio::spawn(async move {
                let resp = app.oneshot(Request::new(Body::empty())).await.unwrap();
                let status = resp.status();
                let x_cache = resp.headers().get("x-cache").map(|v| v.to_str().unwrap().to_owned());
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
                (status, x_cache, String::from_utf8(body.to_vec()).unwrap())
            })
        }
    }

    async fn read(State(f): State<Fixture>) -> Result<String, (StatusCode, String)> {
        if let Some(hit) = f.cache.get(KEY, "t").await {
            return Ok(hit.body);
        }
        let n = f.computations.fetch_add(1, Ordering::SeqCst) + 1;
        f.gate.acquire().await.unwrap().forget();
        if f.fail {
            return Err((StatusCode::SERVICE_UNAVAILABLE, format!("failure {n}")));
        }
        let entry = Entry { tenant: "t".into(), etag: "\"e\"".into(), data_as_of: None, body: format!("answer {n}") };
        f.cache.put(KEY, &entry).await;
        Ok(entry.body)
    }

    type Answer = (StatusCode, Option<String>, String);

    /// `n` concurrent requests: one computes, and once the `n - 1` others wait on it the gate
    /// opens; their answers.
    async fn burst(f: &Fixture, n: usize) -> Vec<Answer> {
        let requests: Vec<_> = (0..n).map(|_| f.request()).collect();
        until("the waiters", || f.computations() == 1 && f.flights().waiters(KEY) == n - 1).await;
        f.gate.add_permits(100);
        let mut answers = Vec::new();
        for r in requests {
            answers.push(tokio::time::timeout(Duration::from_secs(5), r).await.expect("a request hung").unwrap());
        }
        answers
    }

    fn x_cache(answers: &[Answer], value: &str) -> usize {
        answers.iter().filter(|a| a.1.as_deref() == Some(value)).count()
    }

    /// Polls `cond` every millisecond for up to 5 s.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..5_000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_computation() {
        let f = Fixture::new(Duration::from_secs(60), false).await;
        let answers = burst(&f, 16).await;
        assert_eq!(f.computations(), 1);
        assert!(answers.iter().all(|(s, _, body)| *s == StatusCode::OK && body == "answer 1"), "{answers:?}");
        assert_eq!((x_cache(&answers, "miss"), x_cache(&answers, "coalesced")), (1, 15));
        assert_eq!(f.flights().in_flight(), 0, "the flight is gone once answered");
        // Cached now: a hit, no computation.
        assert_eq!(f.request().await.unwrap().1.as_deref(), Some("hit"));
        assert_eq!(f.computations(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_leader_hands_the_key_to_a_waiter() {
        let f = Fixture::new(Duration::from_secs(60), false).await;
        let leader = f.request();
        until("the leader computing", || f.computations() == 1).await;
        let waiters: Vec<_> = (0..3).map(|_| f.request()).collect();
        until("3 waiters", || f.flights().waiters(KEY) == 3).await;
        // The leader's client goes away: hyper drops the request's future.
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        // One waiter takes the key over and computes; the other two wait on it, not forever.
        until("a new leader with 2 waiters", || f.computations() == 2 && f.flights().waiters(KEY) == 2).await;
        f.gate.add_permits(100);
        let mut answers = Vec::new();
        for w in waiters {
            answers.push(tokio::time::timeout(Duration::from_secs(5), w).await.expect("a waiter hung").unwrap());
        }
        assert_eq!(f.computations(), 2);
        assert!(answers.iter().all(|(s, _, body)| *s == StatusCode::OK && body == "answer 2"), "{answers:?}");
        assert_eq!(x_cache(&answers, "miss"), 1);
        assert_eq!(f.flights().in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_is_shared_with_the_waiters_and_not_cached() {
        let f = Fixture::new(Duration::from_secs(60), true).await;
        let answers = burst(&f, 8).await;
        assert_eq!(f.computations(), 1);
        let failed = |(s, _, body): &Answer| *s == StatusCode::SERVICE_UNAVAILABLE && body == "failure 1";
        assert!(answers.iter().all(failed), "{answers:?}");
        assert_eq!((x_cache(&answers, "miss"), x_cache(&answers, "coalesced")), (1, 7));
        assert_eq!(f.flights().in_flight(), 0);
        // Not cached: the next request computes again.
        let (status, _, body) = f.request().await.unwrap();
        assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "failure 2"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_the_cache_off_every_request_computes() {
        let f = Fixture::new(Duration::ZERO, false).await;
        assert!(matches!(f.cache, ResponseCache::Off));
        let requests: Vec<_> = (0..4).map(|_| f.request()).collect();
        // All four compute at once (with coalescing they would wait on one).
        until("4 computations", || f.computations() == 4).await;
        f.gate.add_permits(100);
        for r in requests {
            let (status, x_cache, _) = r.await.unwrap();
            assert_eq!((status, x_cache.as_deref()), (StatusCode::OK, Some("miss")));
        }
    }

    #[test]
    fn a_miss_looks_again_when_a_flight_filled_the_cache_since_its_lookup() {
        let flights = Arc::new(Flights::default());
        let seen = flights.filled();
        let Joined::Leader(lease) = flights.join("a", Some(seen)) else { panic!("the first miss leads") };
        let e = Entry { tenant: "t".into(), etag: String::new(), data_as_of: None, body: String::new() };
        lease.finish(Outcome::Entry(e));
        // A request that read the cache before that flight ended may have missed its entry.
        assert!(matches!(flights.join("b", Some(seen)), Joined::LookAgain));
        assert!(matches!(flights.join("b", None), Joined::Leader(_)));
        assert_eq!(flights.in_flight(), 0, "a dropped lease leaves nothing behind");
    }
}
