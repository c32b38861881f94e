//! Redis, the response cache shared by API replicas, killed and restarted: the API keeps
//! answering 200 with current values (uncached) and without stalls while it is down, and
//! caches again once it is back.

use std::time::{Duration, Instant};

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::settings::Secret;
use serde_json::{json, Value};

use super::servers::PrivateRedis;
use crate::helpers::{spawn_app_with_settings, TestApp, TestEnv};
use crate::model::catalog;

/// How often the API reads the views' data version (`DV_CACHE_VERSION_POLL_MS`, set below).
const VERSION_POLL: Duration = Duration::from_millis(100);

/// A request slower than this while Redis is down is a stall (loopback, tiny query).
const STALL: Duration = Duration::from_secs(2);

/// Publishes `n` more active offers (ids from `next`) and waits until they are applied.
async fn add_offers(app: &TestApp, next: &mut usize, n: usize) {
    for _ in 0..n {
        let id = format!("o{next}");
        app.env.publish(
            TopicKind::Catalog,
            &catalog("acme", "offer", &id, "upsert", Some(1), json!({"status": "active"})),
        );
        *next += 1;
    }
    app.env.wait_caught_up(Duration::from_secs(60)).await;
}

/// The funnel of `offers` active offers without creatives (docs/dashboard-types.md 5.1), from what was published.
fn funnel(offers: usize) -> Value {
    json!({"stages": [{"label": "Total Offers", "count": offers}, {"label": "Active Offers", "count": offers},
                      {"label": "With Creatives", "count": 0}, {"label": "Creatives", "count": 0}]})
}

/// GET the funnel with a client-side bound: (status, body, how long it took).
async fn read(app: &TestApp, client: &reqwest::Client, key: &str) -> (u16, Value, Duration) {
    let t0 = Instant::now();
    let r = client
        .get(format!("{}/api/v1/dashboard-data?type=funnel", app.address))
        .header("X-API-Key", key)
        .header("X-Tenant-Id", "acme")
        .send()
        .await
        .unwrap_or_else(|e| panic!("request failed after {:?}: {e}", t0.elapsed()));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null), t0.elapsed())
}

/// Keys in the private Redis (the cache's entries).
async fn cached_entries(url: &str) -> Option<i64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    redis::cmd("DBSIZE").query_async(&mut conn).await.ok()
}

/// Reads Redis answered from its keyspace (INFO stats): grows when the API is served a cached
/// answer.
async fn keyspace_hits(url: &str) -> Option<u64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut conn).await.ok()?;
    info.lines().find_map(|l| l.strip_prefix("keyspace_hits:")).and_then(|v| v.trim().parse().ok())
}

/// Reads once more and tells whether Redis served that answer from a cached entry.
async fn served_from_redis(app: &TestApp, client: &reqwest::Client, key: &str, url: &str, offers: usize) -> bool {
    let before = keyspace_hits(url).await;
    let (status, body, _) = read(app, client, key).await;
    assert_eq!((status, &body), (200, &funnel(offers)));
    keyspace_hits(url).await > before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_api_answers_uncached() {
    let started = Instant::now();
    let rounds = super::rounds(1, 4);
    let mut redis = PrivateRedis::start();
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.redis_url = Some(Secret::new(redis.url()));
    // Far longer than the test: only a commit (the data version) replaces a cached answer.
    settings.http.cache_ttl = Duration::from_secs(300);
    settings.http.cache_version_poll = VERSION_POLL;
    let app = spawn_app_with_settings(env, settings).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut offers = 0;

    add_offers(&app, &mut offers, 3).await;
    for round in 0..rounds {
        // Redis up: the answer is cached (an entry appears and the next read is a Redis hit),
        // and a commit replaces it (new events show at once, whatever the TTL). First the API's
        // data version catches up with the last commit (it is polled): a read keyed by the old
        // version would be cached under a key the next read no longer asks for.
        tokio::time::sleep(VERSION_POLL * 3).await;
        let (status, body, _) = read(&app, &client, &key).await;
        assert_eq!((status, &body), (200, &funnel(offers)), "round {round}: Redis up");
        assert!(cached_entries(&redis.url()).await >= Some(1), "round {round}: the answer was cached in Redis");
        assert!(served_from_redis(&app, &client, &key, &redis.url(), offers).await, "round {round}: a cache hit");
        add_offers(&app, &mut offers, 2).await;
        wait_for_offers(&app, &client, &key, offers, round).await;

        // Redis down: every answer is computed (current values), none stalls.
        redis.kill9();
        for i in 0..5 {
            let (status, body, took) = read(&app, &client, &key).await;
            assert_eq!((status, &body), (200, &funnel(offers)), "round {round}: Redis down, read {i}");
            assert!(took < STALL, "round {round}: read {i} with Redis down took {took:?}");
        }
        add_offers(&app, &mut offers, 1).await;
        let (status, body, took) = read(&app, &client, &key).await;
        assert_eq!((status, &body), (200, &funnel(offers)), "round {round}: uncached, new values at once");
        assert!(took < STALL, "round {round}: took {took:?}");

        // Redis back (empty): the API reconnects by itself and caches again.
        redis.spawn();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body, took) = read(&app, &client, &key).await;
            assert_eq!((status, &body), (200, &funnel(offers)), "round {round}: Redis back");
            assert!(took < STALL, "round {round}: took {took:?}");
            if cached_entries(&redis.url()).await >= Some(1) {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: nothing cached 20 s after Redis came back");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(served_from_redis(&app, &client, &key, &redis.url(), offers).await, "cached again after the restart");
    eprintln!("[redis] {rounds} outages, {:.1} s", started.elapsed().as_secs_f64());
}

/// New offers show within the data version's poll interval (not the 300 s TTL).
async fn wait_for_offers(app: &TestApp, client: &reqwest::Client, key: &str, offers: usize, round: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body, _) = read(app, client, key).await;
        if (status, &body) == (200, &funnel(offers)) {
            return;
        }
        assert!(Instant::now() < deadline, "round {round}: a cached answer outlived the commit: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
