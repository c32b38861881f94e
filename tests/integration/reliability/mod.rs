//! The reliability suite (issue 5): the pipeline under the failures production sees, on
//! loopback only, every wait bounded. After each failure the views equal the values computed
//! from the events the test published, and no dead letter is missing.
//!
//! | test | failure |
//! | --- | --- |
//! | `crash::sigkill_at_random_moments_…` (crash.rs) | ingest SIGKILLed repeatedly under load |
//! | `broker::broker_stopped_and_restarted` | a private broker SIGKILLed / SIGTERMed and restarted |
//! | `postgres::postgres_restarted_during_a_batch` | a private PostgreSQL crash-restarted mid-transaction |
//! | `redis::redis_down_api_answers_uncached` | the cache's Redis killed and restarted |
//! | `malformed::malformed_corpus_is_dead_lettered` | a generated corpus of bad messages |
//!
//! `cargo test --test integration -- reliability crash::` runs it in its CI configuration;
//! `DV_RELIABILITY_FULL=1` runs the full one (more rounds and events), `DV_RELIABILITY_ROUNDS=N`
//! sets the number of failure rounds of every scenario (README "Reliability suite").

mod broker;
mod corpus;
mod malformed;
mod postgres;
mod publisher;
mod redis;
pub mod servers;

use std::time::{Duration, Instant};

use sqlx::PgPool;

/// `DV_RELIABILITY_FULL=1`: the full configuration.
pub fn full() -> bool {
    std::env::var("DV_RELIABILITY_FULL").is_ok_and(|v| v == "1")
}

/// Failure rounds of a scenario: `DV_RELIABILITY_ROUNDS` when set, else its CI or full count.
pub fn rounds(ci: usize, full_count: usize) -> usize {
    match std::env::var("DV_RELIABILITY_ROUNDS").ok().and_then(|v| v.parse().ok()) {
        Some(n) if n > 0 => n,
        _ if full() => full_count,
        _ => ci,
    }
}

/// A seed from the clock, printed so that a failing run can be reproduced by reading the log.
pub fn seed(test: &str) -> u64 {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("[{test}] seed {seed}");
    seed
}

/// Σ next_offset over all partitions (grows whenever a batch commits); `None` while the
/// database does not answer (the PostgreSQL scenario restarts it under our feet).
pub async fn committed_total(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT COALESCE(sum(next_offset), 0)::int8 FROM consumer_offsets").fetch_one(pool).await.ok()
}

/// Waits until some batch commits after this call: the ingest process is alive and applying.
pub async fn wait_for_a_commit(pool: &PgPool, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut before = committed_total(pool).await;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = committed_total(pool).await;
        match (before, now) {
            (Some(b), Some(n)) if n > b => return,
            (None, n) => before = n,
            _ => {}
        }
        assert!(Instant::now() < deadline, "{what}: no batch committed within {timeout:?}");
    }
}

/// `n` interactions of tenant acme (4 offers, 3 channels, 100 customers, 20 days): the load
/// the fault scenarios publish while they break a server.
pub fn acme_interactions(n: usize, seed: u64) -> Vec<crate::model::Interaction> {
    let customers: Vec<String> = (0..100).map(|i| format!("cust{i}")).collect();
    let customers: Vec<&str> = customers.iter().map(String::as_str).collect();
    let spread = crate::model::Spread {
        tenant: "acme",
        offers: &["o1", "o2", "o3", "o4"],
        channels: &["web", "email", "sms"],
        customers: &customers,
        days: 20,
    };
    crate::model::interactions(&spread, n, seed, crate::model::test_today())
}
