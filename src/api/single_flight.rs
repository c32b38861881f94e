//! Single flight: concurrent calls for one key share one computation. The first caller leads
//! and computes; the others wait for the value it publishes. Nothing here knows of HTTP or of
//! cache entries: the response cache uses it for its misses.
//!
//! A leader whose future is dropped (its client went away) abandons the key: the waiters see
//! it and one of them leads instead, so a disconnect never fails the others. [`completed`]
//! counts the flights that published a value, so that a caller can tell whether a value may
//! have appeared since it last looked (see [`Flown::Stale`]).
//!
//! [`completed`]: SingleFlight::completed

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::watch;

/// How a call ended.
#[derive(Debug)]
pub enum Flown<R, V, F> {
    /// This call led and computed `R` (and published its shared form).
    Led(R),
    /// Another call computed; this is the value it published.
    Followed(V),
    /// A flight for the key completed after the caller's `seen` count: look again before
    /// computing (the value may be cached by now). Nothing was computed: the computation is
    /// handed back.
    Stale(F),
}

pub struct SingleFlight<K, V> {
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    flights: HashMap<K, Flight<V>>,
    next_id: u64,
    completed: u64,
}

struct Flight<V> {
    id: u64,
    value: watch::Receiver<Option<V>>,
    waiters: usize,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        SingleFlight { inner: Mutex::new(Inner { flights: HashMap::new(), next_id: 0, completed: 0 }) }
    }
}

enum Joined<V> {
    Lead(u64, watch::Sender<Option<V>>),
    Follow(watch::Receiver<Option<V>>),
    Stale,
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Flights that published a value so far.
    pub fn completed(&self) -> u64 {
        self.lock().completed
    }

    /// Runs `compute` for `key` unless a call for it is in flight, then waits for that one's
    /// value (`share` turns the leader's result into what the others get). `seen`: the
    /// [`completed`](Self::completed) count the caller read before it last looked for a value.
    pub async fn run<R, F, Fut>(&self, key: &K, seen: u64, compute: F, share: impl Fn(&R) -> V) -> Flown<R, V, F>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = R>,
    {
        loop {
            let joined = {
                let mut inner = self.lock();
                if let Some(f) = inner.flights.get_mut(key) {
                    f.waiters += 1;
                    Joined::Follow(f.value.clone())
                } else if inner.completed != seen {
                    Joined::Stale
                } else {
                    let id = inner.next_id;
                    inner.next_id += 1;
                    let (tx, rx) = watch::channel(None);
                    inner.flights.insert(key.clone(), Flight { id, value: rx, waiters: 0 });
                    Joined::Lead(id, tx)
                }
            };
            match joined {
                Joined::Stale => return Flown::Stale(compute),
                Joined::Lead(id, tx) => {
                    // Dropped before the end (the caller went away): the flight is removed and
                    // the waiters, seeing the sender gone, try again.
                    let lease = Lease { flights: self, key, id };
                    let result = compute().await;
                    lease.complete(tx, share(&result));
                    return Flown::Led(result);
                }
                Joined::Follow(mut rx) => {
                    if let Ok(v) = rx.wait_for(Option::is_some).await {
                        if let Some(v) = v.clone() {
                            return Flown::Followed(v);
                        }
                    }
                    // The leader abandoned the key: lead or follow anew (nothing completed).
                }
            }
        }
    }

    #[cfg(test)]
    fn waiters(&self, key: &K) -> usize {
        self.lock().flights.get(key).map_or(0, |f| f.waiters)
    }
}

/// The leader's hold on its flight; releases it when dropped.
struct Lease<'a, K: Hash + Eq, V> {
    flights: &'a SingleFlight<K, V>,
    key: &'a K,
    id: u64,
}

impl<K: Hash + Eq, V> Lease<'_, K, V> {
    fn complete(self, tx: watch::Sender<Option<V>>, value: V) {
        {
            let mut inner = self.flights.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.completed = inner.completed.wrapping_add(1);
        }
        let _ = tx.send(Some(value)); // Err: nobody waited.
    }
}

impl<K: Hash + Eq, V> Drop for Lease<'_, K, V> {
    fn drop(&mut self) {
        let mut inner = self.flights.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.flights.get(self.key).is_some_and(|f| f.id == self.id) {
            inner.flights.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    type Flights = Arc<SingleFlight<&'static str, Result<u32, String>>>;
    /// What a call of the fixture ended as (a stale call's computation dropped).
    type Outcome = Flown<Result<u32, String>, Result<u32, String>, ()>;

    struct Fixture {
        flights: Flights,
        gate: Arc<Semaphore>,
        computations: Arc<AtomicUsize>,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture { flights: Arc::default(), gate: Arc::new(Semaphore::new(0)), computations: Arc::default() }
        }

        /// A call that computes `Ok(n)` (or `Err` when `fail`) once the gate opens.
        fn call(&self, fail: bool) -> tokio::task::JoinHandle<Outcome> {
            let (flights, gate, computations) = (self.flights.clone(), self.gate.clone(), self.computations.clone());
            tokio::spawn(async move {
                let seen = flights.completed();
                let compute = || async move {
                    let n = computations.fetch_add(1, Ordering::SeqCst) as u32 + 1;
                    gate.acquire().await.unwrap().forget();
                    if fail {
                        Err(format!("failure {n}"))
                    } else {
                        Ok(n)
                    }
                };
                match flights.run(&"k", seen, compute, Clone::clone).await {
                    Flown::Led(v) => Flown::Led(v),
                    Flown::Followed(v) => Flown::Followed(v),
                    Flown::Stale(_) => Flown::Stale(()),
                }
            })
        }

        fn computations(&self) -> usize {
            self.computations.load(Ordering::SeqCst)
        }
    }

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
    async fn concurrent_calls_share_one_computation_and_its_error() {
        for fail in [false, true] {
            let f = Fixture::new();
            let calls: Vec<_> = (0..16).map(|_| f.call(fail)).collect();
            until("15 waiters", || f.computations() == 1 && f.flights.waiters(&"k") == 15).await;
            f.gate.add_permits(100);
            let (mut led, mut followed) = (0, 0);
            for c in calls {
                match c.await.unwrap() {
                    Flown::Led(v) => {
                        led += 1;
                        assert_eq!(v, if fail { Err("failure 1".into()) } else { Ok(1) });
                    }
                    Flown::Followed(v) => {
                        followed += 1;
                        assert_eq!(v, if fail { Err("failure 1".into()) } else { Ok(1) });
                    }
                    Flown::Stale(()) => panic!("nothing completed before they looked"),
                }
            }
            assert_eq!((led, followed, f.computations()), (1, 15, 1));
            assert_eq!(f.flights.completed(), 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_leader_hands_the_key_to_a_waiter() {
        let f = Fixture::new();
        let leader = f.call(false);
        until("the leader computing", || f.computations() == 1).await;
        let waiters: Vec<_> = (0..3).map(|_| f.call(false)).collect();
        until("3 waiters", || f.flights.waiters(&"k") == 3).await;
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        until("a new leader with 2 waiters", || f.computations() == 2 && f.flights.waiters(&"k") == 2).await;
        f.gate.add_permits(100);
        let mut values = Vec::new();
        for w in waiters {
            values.push(match w.await.unwrap() {
                Flown::Led(v) | Flown::Followed(v) => v,
                Flown::Stale(()) => panic!("stale"),
            });
        }
        assert_eq!(values, [Ok(2), Ok(2), Ok(2)], "all answered by the second computation");
    }

    #[tokio::test]
    async fn a_call_that_looked_before_a_flight_completed_is_told_to_look_again() {
        let flights: SingleFlight<&str, u32> = SingleFlight::default();
        let seen = flights.completed();
        assert!(matches!(flights.run(&"k", seen, || async { 1 }, Clone::clone).await, Flown::Led(1)));
        let mut computed = false;
        let again = flights
            .run(
                &"k",
                seen,
                || async {
                    computed = true;
                    2
                },
                Clone::clone,
            )
            .await;
        assert!(matches!(again, Flown::Stale(_)));
        assert!(!computed);
    }
}
