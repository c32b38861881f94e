//! The read path: Redis response cache that no tenant can read across, ETag / If-None-Match →
//! 304, X-Data-As-Of, per-tenant rate limits → 429 with Retry-After.

use std::time::Duration;

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with_settings, TestEnv};
use crate::model::catalog;

async fn get_raw(
    app: &crate::helpers::TestApp,
    path: &str,
    key: &str,
    tenant: &str,
    etag: Option<&str>,
) -> reqwest::Response {
    let mut req =
        app.client.get(format!("{}{path}", app.address)).header("X-API-Key", key).header("X-Tenant-Id", tenant);
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_is_per_tenant_and_etags_revalidate() {
    let app = spawn_app().await;
    let env = &app.env;
    // acme has 2 active offers, globex 1: the same query answers differently per tenant.
    for (tenant, id) in [("acme", "o1"), ("acme", "o2"), ("globex", "o1")] {
        env.publish(TopicKind::Catalog, &catalog(tenant, "offer", id, "upsert", Some(1), json!({"status": "active"})));
    }
    env.wait_caught_up(Duration::from_secs(60)).await;
    let acme = env.api_key("acme", Role::Viewer).await;
    let globex = env.api_key("globex", Role::Viewer).await;
    let path = "/api/v1/dashboard-data?type=summary";

    // acme fills the cache; globex asks the identical query right after and must get its own.
    let r = get_raw(&app, path, &acme, "acme", None).await;
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["activeOffers"], 2);
    let r = get_raw(&app, path, &globex, "globex", None).await;
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["activeOffers"], 1);
    // globex's key cannot be used to read acme (through the cache or not).
    assert_eq!(get_raw(&app, path, &globex, "acme", None).await.status(), 403);
    // acme's ETag is no validator for globex's answer.
    assert_eq!(get_raw(&app, path, &globex, "globex", Some(&etag)).await.status(), 200);

    // Revalidation: a matching If-None-Match → 304 without a body.
    let r = get_raw(&app, path, &acme, "acme", Some(&etag)).await;
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty());

    // Identical answers are byte-identical (deterministic), so the ETag survives expiry.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let r = get_raw(&app, path, &acme, "acme", None).await;
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);

    // Fresh data shows once committed (the data version keys the cache).
    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "o3", "upsert", Some(1), json!({"status": "active"})));
    env.wait_caught_up(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let r = get_raw(&app, path, &acme, "acme", Some(&etag)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["activeOffers"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_invalidates_cached_answers_long_before_the_ttl() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.http.cache_ttl = Duration::from_secs(600);
    let app = spawn_app_with_settings(env, settings).await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let path = "/api/v1/dashboard-data?type=summary";
    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "o1", "upsert", Some(1), json!({"status": "active"})));
    env.wait_caught_up(Duration::from_secs(60)).await;
    let active = |r: serde_json::Value| r["activeOffers"].as_i64().unwrap();
    // Cached with a 10-minute TTL once the data version has caught up with the commit.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while active(get_raw(&app, path, &key, "acme", None).await.json().await.unwrap()) != 1 {
        assert!(std::time::Instant::now() < deadline, "the first offer never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "o2", "upsert", Some(1), json!({"status": "active"})));
    env.wait_caught_up(Duration::from_secs(60)).await;
    let committed = std::time::Instant::now();
    loop {
        if active(get_raw(&app, path, &key, "acme", None).await.json().await.unwrap()) == 2 {
            break;
        }
        // The version poll runs every 100 ms: seconds, not the TTL's ten minutes.
        assert!(committed.elapsed() < Duration::from_secs(10), "a cached answer outlived the commit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_as_of_tells_how_complete_the_views_are() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "o1", "upsert", Some(1), json!({"status": "active"})));
    env.wait_caught_up(Duration::from_secs(60)).await;
    let published_by = chrono::Utc::now();
    // The caught-up mark follows within a statistics interval (1 s) of the commit.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        // A cached answer keeps the header it was computed with: the TTL (2 s) bounds its age.
        let r = get_raw(&app, "/api/v1/dashboard-data?type=summary", &key, "acme", None).await;
        if let Some(v) = r.headers().get("x-data-as-of") {
            let t = chrono::DateTime::parse_from_rfc3339(v.to_str().unwrap()).unwrap();
            if t >= published_by - chrono::Duration::seconds(1) {
                break;
            }
        }
        assert!(std::time::Instant::now() < deadline, "X-Data-As-Of never reached the publish time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.http.reads.rate = 1;
    settings.http.reads.burst = 3;
    let app = spawn_app_with_settings(env, settings).await;
    let acme = app.env.api_key("acme", Role::Viewer).await;
    let globex = app.env.api_key("globex", Role::Viewer).await;
    let path = "/api/v1/dashboard-data?type=funnel";
    for _ in 0..3 {
        assert_eq!(get_raw(&app, path, &acme, "acme", None).await.status(), 200);
    }
    let r = get_raw(&app, path, &acme, "acme", None).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    // Per tenant: globex is not limited by acme's traffic.
    assert_eq!(get_raw(&app, path, &globex, "globex", None).await.status(), 200);
}
