//! Request coalescing: concurrent identical misses in one API process share one computation
//! (`ResponseCache::get_or_compute` over `api/single_flight.rs`), and only while the response cache is on.
//!
//! The test holds `catalog_entities` (the only table a `summary` computation reads) under an
//! exclusive lock while the requests arrive, so every one of them misses while the first is
//! still computing; PostgreSQL then shows how many computations wait on the lock, and each
//! answer's `X-Cache` says whether it computed (`miss`) or waited for another (`coalesced`).

use std::time::Duration;

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{spawn_app_with_settings, TestApp, TestEnv};
use crate::model::catalog;

const CONCURRENT: usize = 64;
const PATH: &str = "/api/v1/dashboard-data?type=summary&days=7";

/// (status, X-Cache, ETag, body) of each of [`CONCURRENT`] identical requests, sent while
/// `catalog_entities` is locked; also the most computations seen waiting on the lock at once.
async fn burst_against_a_locked_table(app: &TestApp, key: &str, expect_waiting: i64) -> (Vec<Answer>, i64) {
    let pool = &app.env.pool;
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE catalog_entities IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let requests: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let req =
                app.client.get(format!("{}{PATH}", app.address)).header("X-API-Key", key).header("X-Tenant-Id", "acme");
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
                let (x_cache, etag) = (header("x-cache"), header("etag"));
                (r.status().as_u16(), x_cache, etag, r.text().await.unwrap())
            })
        })
        .collect();
    // Until the expected computations wait on the lock, then a while longer, so that every
    // request has arrived (the others are waiting in the API, or also in PostgreSQL).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lock_waiters(pool).await < expect_waiting {
        assert!(std::time::Instant::now() < deadline, "no computation reached the locked table");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut most = 0;
    for _ in 0..25 {
        most = most.max(lock_waiters(pool).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock.commit().await.unwrap();
    let mut answers = Vec::new();
    for r in requests {
        answers.push(r.await.unwrap());
    }
    (answers, most)
}

type Answer = (u16, Option<String>, Option<String>, String);

/// Sessions of the test's database waiting for a lock: computations blocked on the table.
async fn lock_waiters(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// An app whose views hold acme's one active offer, with the given cache TTL.
async fn app_with_one_offer(cache_ttl: Duration) -> (TestApp, String) {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.http.cache_ttl = cache_ttl;
    // Every request of a burst admitted (the bound on computations is `api_hardening`'s).
    settings.api.max_concurrent_computations = CONCURRENT;
    let app = spawn_app_with_settings(env, settings).await;
    app.env
        .publish(TopicKind::Catalog, &catalog("acme", "offer", "o1", "upsert", Some(1), json!({"status": "active"})));
    app.env.wait_caught_up(Duration::from_secs(60)).await;
    // Past the data-version poll (100 ms), so that every request of the burst has one cache key.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    (app, key)
}

fn count(answers: &[Answer], x_cache: &str) -> usize {
    answers.iter().filter(|a| a.1.as_deref() == Some(x_cache)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_misses_compute_once() {
    let (app, key) = app_with_one_offer(Duration::from_secs(60)).await;
    let (answers, most_waiting) = burst_against_a_locked_table(&app, &key, 1).await;

    assert_eq!(most_waiting, 1, "one computation reached PostgreSQL, the other requests waited for it");
    assert_eq!(count(&answers, "miss"), 1, "exactly one request computed: {answers:?}");
    // The others waited for it (or, arriving after it, read its cached answer).
    assert_eq!(count(&answers, "coalesced") + count(&answers, "hit"), CONCURRENT - 1);
    assert!(count(&answers, "coalesced") > 0, "no request waited on the computation in flight");
    let first = &answers[0];
    assert_eq!(first.0, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&first.3).unwrap()["activeOffers"], 1);
    for a in &answers {
        assert_eq!((a.0, &a.2, &a.3), (first.0, &first.2, &first.3), "every answer is the same");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_identical_requests_each_compute() {
    let (app, key) = app_with_one_offer(Duration::ZERO).await;
    // The pool has 5 connections: several computations wait on the lock at once.
    let (answers, most_waiting) = burst_against_a_locked_table(&app, &key, 2).await;

    assert!(most_waiting >= 2, "computations did not run side by side");
    assert_eq!(count(&answers, "miss"), CONCURRENT, "{answers:?}");
    assert!(answers.iter().all(|a| a.0 == 200 && a.3 == answers[0].3));
}
