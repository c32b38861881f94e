//! PostgreSQL crash-restarted (`pg_ctl restart -m immediate`) while ingest commits batches, on
//! a private cluster (restarting the shared server would break the tests running beside this
//! one). Some restarts land on a batch held mid-transaction (after its offsets compare-and-set
//! and dedup keys, before its view upserts), the others at random moments. After catching up
//! every counter is exact: the killed transactions left nothing behind, their retries applied
//! everything once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consumers::events::TopicKind;
use sqlx::{Connection, Executor, PgConnection, PgPool};

use super::servers::PrivatePostgres;
use crate::crash::{expected_counters, stored_counters};
use crate::helpers::{Servers, TestEnv};
use crate::processes::{IngestProcess, Lcg};

const RATE: f64 = 800.0;

/// Other client sessions of this database inside a transaction (`waiting`: blocked on a lock).
async fn open_transactions(pool: &PgPool, waiting: bool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
            AND xact_start IS NOT NULL AND (NOT $1 OR wait_event_type = 'Lock')",
    )
    .bind(waiting)
    .fetch_one(pool)
    .await
    .unwrap_or(0)
}

/// Holds a lock on `interaction_rollup_offer` (written by every interaction batch) until ingest's next batch blocks on it mid-transaction;
/// returns the connection holding the lock (it dies with the restart).
async fn hold_a_batch(env: &TestEnv) -> PgConnection {
    let mut conn = PgConnection::connect(&env.db_url).await.expect("connect");
    conn.execute("BEGIN").await.unwrap();
    // SHARE conflicts with the ROW EXCLUSIVE of the batch's upserts, not with reads.
    conn.execute("LOCK TABLE interaction_rollup_offer IN SHARE MODE").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_transactions(&env.pool, true).await == 0 {
        assert!(Instant::now() < deadline, "no batch blocked on the lock within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_during_a_batch() {
    let started = Instant::now();
    let rounds = super::rounds(3, 10);
    let seed = super::seed("postgres");
    let mut rng = Lcg::new(seed);
    let pg = PrivatePostgres::start();
    let env = TestEnv::new_on(Servers { postgres: pg.url(), ..Servers::default() }).await;

    // More than the test publishes: it stops the publisher and counts what was handed over.
    let events = super::acme_interactions(rounds * 30 * RATE as usize, seed);

    let mut ingest = IngestProcess::start(&env);
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (stop, events, producer) = (stop.clone(), events.clone(), env.clone_for_publish());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut sent = 0;
            while sent < events.len() && !stop.load(Ordering::Relaxed) {
                producer.publish(TopicKind::Interactions, &events[sent].to_json());
                sent += 1;
                if let Some(wait) = Duration::from_secs_f64(sent as f64 / RATE).checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            producer.flush();
            sent
        })
    };

    let mut mid_transaction = 0;
    for round in 0..rounds {
        super::wait_for_a_commit(&env.pool, &format!("round {round}"), Duration::from_secs(60)).await;
        // Even rounds: a batch held mid-transaction for sure. Odd: wherever ingest is.
        let _lock = if round % 2 == 0 {
            Some(hold_a_batch(&env).await)
        } else {
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            None
        };
        // Open transactions other than the lock holder's: the batch being killed.
        let in_flight = open_transactions(&env.pool, false).await - _lock.is_some() as i64;
        mid_transaction += (in_flight > 0) as usize;
        let t0 = Instant::now();
        pg.restart_immediate();
        eprintln!("[postgres] round {round}: restarted with {in_flight} transaction(s) open, {:?}", t0.elapsed());
        assert!(ingest.is_running(), "round {round}: ingest survived the restart");
    }
    assert!(mid_transaction >= rounds.div_ceil(2), "restarts that killed an open transaction: {mid_transaction}");
    super::wait_for_a_commit(&env.pool, "after the last restart", Duration::from_secs(60)).await;
    stop.store(true, Ordering::Relaxed);
    let sent = publisher.join().expect("publisher thread");
    eprintln!("[postgres] {sent} interactions published");

    env.wait_caught_up(Duration::from_secs(120)).await;
    assert!(ingest.is_running(), "ingest still running after catching up");
    let stored = stored_counters(&env, "acme").await;
    let expected = expected_counters(&events[..sent]);
    assert_eq!(stored.len(), expected.len(), "same (day, offer, channel) rows");
    for (k, v) in &expected {
        assert_eq!(stored.get(k), Some(v), "counters of {k:?}");
    }
    // Each event applied exactly once: one dedup key per published id, no dead letters.
    let (keys, dead): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM dedup_keys), (SELECT count(*) FROM dead_letters)")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((keys, dead), (sent as i64, 0));
    let exit = ingest.terminate();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    eprintln!(
        "[postgres] {rounds} crash restarts ({mid_transaction} mid-transaction), {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
