//! The API's bounds (issue 10, docs/api.md 5.4): bad input answers a JSON 4xx and the connection
//! serves the next request; slow requests and queries answer 504; past the computation bound
//! 503 with `Retry-After`; unknown parameters neither fail nor bypass the cache; `offset` is
//! bounded; the ingest status shows partitions to platform keys only; unknown keys are cached.
//! The randomized test over every endpoint is in `fuzz`.

mod conn;
mod fuzz;

use std::time::{Duration, Instant};

use axum::http::Method;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::settings::Settings;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{spawn_app, spawn_app_with_settings, TestApp, TestEnv};
use crate::model::catalog;
use conn::Conn;

/// Request headers, as [`Conn::send`] takes them.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// An app whose views hold acme's one active offer (committed, and the data version read, so
/// that cache keys stay put), with settings adjusted by `adjust`; and a viewer key of acme.
async fn app_with(adjust: impl FnOnce(&mut Settings)) -> (TestApp, String) {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    adjust(&mut settings);
    let app = spawn_app_with_settings(env, settings).await;
    app.env
        .publish(TopicKind::Catalog, &catalog("acme", "offer", "o1", "upsert", Some(1), json!({"status": "active"})));
    app.env.wait_caught_up(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    (app, key)
}

/// Holds `catalog_entities` (what `summary` and `funnel` read) locked until the transaction ends.
async fn lock_catalog(pool: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE catalog_entities IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
    tx
}

/// Waits until a session of the test's database waits on a lock (a computation is blocked).
async fn until_blocked(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no computation reached the locked table");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dates_answer_400_and_the_same_connection_serves_the_next_request() {
    let app = spawn_app().await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    let mut conn = Conn::open(&app.address).await;
    let base = "/api/v1/dashboard-data?type=";
    for (t, bad) in [
        ("daily_trend", "asOf=%2B99999-01-01"),
        ("anomaly_candidates", "asOf=-262143-01-01&baselineDays=365&days=365"),
        ("latency_trend", "asOf=9999-12-31"),
        ("revenue_trend", "asOf=1969-12-31"),
        ("summary", "asOf=2026-02-30"),
        ("daily_trend", "asOf=%00"),
        ("anomaly_candidates", "baselineDays=366"),
        ("daily_trend", "days=9223372036854775807"),
    ] {
        let a = conn.get(&format!("{base}{t}&{bad}"), &key, "acme").await;
        assert_eq!(a.status, 400, "{t} {bad}: {:?}", a.body);
        let error = a.error();
        assert!(["asOf", "days", "baselineDays"].iter().any(|p| error.starts_with(p)), "{bad}: {error}");
        let a = conn.get(&format!("{base}summary"), &key, "acme").await;
        assert_eq!(a.status, 200, "the next request on the connection after {bad}");
    }
    assert!(!conn.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_answers_504_json() {
    // The statement timeout out of the way (Settings::from_env would refuse this pair). The lock
    // makes the first request pass any limit; the limit is wide enough for the second one, which
    // computes `summary` on a CI machine loaded by the other tests (400 ms once was not).
    let limit = Duration::from_secs(2);
    let (app, key) = app_with(|s| {
        s.http.request_timeout = limit;
        s.api.statement_timeout = Duration::from_secs(30);
    })
    .await;
    let mut conn = Conn::open(&app.address).await;
    let lock = lock_catalog(&app.env.pool).await;
    let started = Instant::now();
    let a = conn.get("/api/v1/dashboard-data?type=summary", &key, "acme").await;
    let elapsed = started.elapsed();
    assert_eq!(a.status, 504, "{:?}", a.body);
    assert!(a.error().contains("2000 ms"), "{}", a.error());
    assert!(elapsed >= limit && elapsed < limit * 3, "answered at the timeout, not later: {elapsed:?}");
    lock.commit().await.unwrap();
    let a = conn.get("/api/v1/dashboard-data?type=summary", &key, "acme").await;
    assert_eq!(
        (a.status, a.json()["activeOffers"].as_i64()),
        (200, Some(1)),
        "same connection, answered: {:?}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_statement_timeout_answers_504_json_and_ingest_has_none() {
    let (app, key) = app_with(|s| s.api.statement_timeout = Duration::from_millis(300)).await;
    // Only the API's connections carry the timeout.
    let settings = {
        let mut s = app.env.settings();
        s.api.statement_timeout = Duration::from_millis(300);
        s
    };
    let show = |pool: PgPool| async move {
        sqlx::query_scalar::<_, String>("SHOW statement_timeout").fetch_one(&pool).await.unwrap()
    };
    assert_eq!(show(decision_views::startup::connect_api(&settings).unwrap()).await, "300ms");
    assert_eq!(show(decision_views::startup::connect(&settings).await.unwrap()).await, "0");

    let lock = lock_catalog(&app.env.pool).await;
    let started = Instant::now();
    let (status, body) = app.get("/api/v1/dashboard-data?type=summary", &key, "acme").await;
    assert_eq!(status, 504, "{body}");
    assert!(body["error"].as_str().unwrap().contains("database query took longer"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "the statement timeout, not the request timeout");
    lock.commit().await.unwrap();
    assert_eq!(app.get("/api/v1/dashboard-data?type=summary", &key, "acme").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computations_past_the_bound_answer_503_with_retry_after() {
    let (app, key) = app_with(|s| {
        s.api.max_concurrent_computations = 1;
        s.api.queue_timeout = Duration::from_millis(200);
        s.http.cache_ttl = Duration::from_secs(60);
    })
    .await;
    // Cached before the block: a hit needs no permit.
    assert_eq!(app.get("/api/v1/dashboard-data?type=daily_trend", &key, "acme").await.0, 200);
    let lock = lock_catalog(&app.env.pool).await;
    let blocked = tokio::spawn({
        let (client, url) = (app.client.clone(), format!("{}/api/v1/dashboard-data?type=summary", app.address));
        let key = key.clone();
        async move { client.get(url).header("X-API-Key", key).header("X-Tenant-Id", "acme").send().await.unwrap() }
    });
    until_blocked(&app.env.pool).await;
    let mut conn = Conn::open(&app.address).await;
    for path in ["/api/v1/dashboard-data?type=funnel", "/api/v1/decision-traces"] {
        let started = Instant::now();
        let a = conn.get(path, &key, "acme").await;
        assert_eq!(a.status, 503, "{path}: {:?}", a.body);
        assert_eq!(a.header("retry-after"), Some("1"), "{path}");
        assert!(a.error().contains("busy"), "{}", a.error());
        assert!(started.elapsed() >= Duration::from_millis(200), "{path} waited the queue timeout first");
    }
    let a = conn.get("/api/v1/dashboard-data?type=daily_trend", &key, "acme").await;
    assert_eq!((a.status, a.header("x-cache")), (200, Some("hit")));
    lock.commit().await.unwrap();
    assert_eq!(blocked.await.unwrap().status(), 200, "the blocked computation finishes");
    assert_eq!(conn.get("/api/v1/dashboard-data?type=funnel", &key, "acme").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_parameter_neither_fails_nor_bypasses_the_cache() {
    let (app, key) = app_with(|s| s.http.cache_ttl = Duration::from_secs(60)).await;
    let mut conn = Conn::open(&app.address).await;
    let today = chrono::Utc::now().date_naive();
    let explicit = format!("_=2&asOf={today}&type=daily_trend&segmentId=&offerId=x");
    let pairs = [
        ("type=summary&_=1733000000001", "type=summary&_=1733000000002"),
        // The defaults spelled out, an empty and an unread parameter: the same inputs.
        ("type=daily_trend&days=7&_=1", explicit.as_str()),
    ];
    for (first, second) in pairs {
        let a = conn.get(&format!("/api/v1/dashboard-data?{first}"), &key, "acme").await;
        assert_eq!((a.status, a.header("x-cache")), (200, Some("miss")), "{first}");
        let b = conn.get(&format!("/api/v1/dashboard-data?{second}"), &key, "acme").await;
        assert_eq!((b.status, b.header("x-cache")), (200, Some("hit")), "{second} is computed once");
        assert_eq!(a.body, b.body);
    }
    // What a type reads still keys it.
    let a = conn.get("/api/v1/dashboard-data?type=daily_trend&days=8&_=3", &key, "acme").await;
    assert_eq!(a.header("x-cache"), Some("miss"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_body_is_json() {
    let app = spawn_app().await;
    let admin = app.env.api_key("acme", Role::Admin).await;
    let auth = [("x-api-key", admin.as_str()), ("x-tenant-id", "acme")];
    let json_type = [auth[0], auth[1], ("content-type", "application/json")];
    let mut conn = Conn::open(&app.address).await;
    let cases: [(Method, &str, Headers, &[u8], u16); 8] = [
        (Method::PUT, "/api/v1/settings", &json_type, b"not json", 400),
        (Method::PUT, "/api/v1/settings", &json_type, b"{\"decisionTraceEnabled\": tru", 400),
        (Method::PUT, "/api/v1/settings", &auth, b"{}", 415),
        (Method::PUT, "/api/v1/settings", &json_type, br#"{"aiAnalyzerSettings": {"x": "\u0000"}}"#, 400),
        (Method::GET, "/api/v1/nope", &auth, b"", 404),
        (Method::DELETE, "/api/v1/settings", &auth, b"", 405),
        (Method::POST, "/api/v1/dashboard-data?type=summary", &auth, b"", 405),
        (Method::GET, "/api/v1/decision-traces/%FF%FE", &auth, b"", 400),
    ];
    for (method, path, headers, body, status) in cases {
        let a =
            conn.send(method.clone(), path, headers, body.to_vec()).await.expect("a response on the same connection");
        assert_json_error(&a, status, &format!("{method} {path}"));
        if status == 405 {
            assert!(a.header("allow").is_some_and(|v| v.contains("GET")), "{method} {path} names the methods");
        }
    }
    let a = conn.get("/api/v1/settings", &admin, "acme").await;
    assert_eq!(a.status, 200, "the settings are unchanged and readable: {:?}", a.body);
    // Past the body limit (2 MB) on a connection of its own: the server stops reading the body,
    // so it may close the connection after answering.
    let mut conn = Conn::open(&app.address).await;
    let a = conn.send(Method::PUT, "/api/v1/settings", &json_type, vec![b' '; 3 << 20]).await.expect("a response");
    assert_json_error(&a, 413, "a 3 MB body");
}

fn assert_json_error(a: &conn::Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {:?}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"), "{what}");
    assert!(!a.error().is_empty(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_past_the_maximum_is_a_400() {
    let app = spawn_app().await;
    let admin = app.env.api_key("acme", Role::Admin).await;
    for endpoint in ["/api/v1/decision-traces", "/api/v1/dead-letters"] {
        let (status, body) = app.get(&format!("{endpoint}?offset=100000"), &admin, "acme").await;
        assert_eq!((status, &body["offset"]), (200, &json!(100000)), "{endpoint}: the maximum itself is served");
        for offset in ["100001", "9223372036854775807"] {
            let (status, body) = app.get(&format!("{endpoint}?offset={offset}"), &admin, "acme").await;
            assert_eq!(status, 400, "{endpoint} {offset}");
            assert!(body["error"].as_str().unwrap().contains("at most 100000"), "{body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_status_shows_partitions_to_platform_keys_only() {
    let app = spawn_app().await;
    let env = &app.env;
    // One dead letter of acme, two of globex (invalid JSON, attributed by the message key),
    // and one of no tenant (no key to attribute it by).
    for (tenant, n) in [("acme", 1), ("globex", 2)] {
        for i in 0..n {
            env.publish_raw(TopicKind::Interactions, &format!("{tenant}:c{i}"), b"{not json");
        }
    }
    env.publish_raw(TopicKind::Interactions, "", b"{nobody's");
    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "o1", "upsert", Some(1), json!({"status": "active"})));
    env.wait_caught_up(Duration::from_secs(60)).await;
    let platform = env.platform_key().await;
    let admin = env.api_key("acme", Role::Admin).await;

    for tenant in ["", "acme", "anyone"] {
        let (status, body) = app.get("/api/v1/ingest/status", &platform, tenant).await;
        assert_eq!(status, 200, "{body}");
        let partitions = body["partitions"].as_array().unwrap();
        let expected: usize = env.topics.keys().map(|k| crate::helpers::partitions(*k) as usize).sum();
        assert_eq!(partitions.len(), expected, "every partition of every topic: {body}");
        assert!(partitions.iter().all(|p| p["lag"] == 0), "{body}");
        assert_eq!(body["deadLetters"], json!({ env.topic(TopicKind::Interactions): 4 }), "all tenants");
        assert_eq!(body["brokerReachable"], true);
    }

    let (status, body) = app.get("/api/v1/ingest/status", &admin, "acme").await;
    assert_eq!(status, 200, "{body}");
    let mut fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["dataAsOf", "deadLetters", "tenantId"], "no partitions, offsets or lag: {body}");
    assert_eq!(body["deadLetters"], json!({ env.topic(TopicKind::Interactions): 1 }), "only acme's");
    assert_eq!(body["tenantId"], "acme");

    // A platform key reads the dead letters of no tenant, and no tenant data; a tenant viewer
    // no status.
    let (status, body) = app.get("/api/v1/dead-letters", &platform, "acme").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1, "only the unattributed one: {body}");
    assert_eq!(body["deadLetters"][0]["payload"], "{nobody's");
    let (_, body) = app.get("/api/v1/dead-letters", &admin, "acme").await;
    assert_eq!(body["total"], 1, "only acme's own: {body}");
    for path in ["/api/v1/dashboard-data?type=summary", "/api/v1/decision-traces"] {
        let (status, body) = app.get(path, &platform, "acme").await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let viewer = env.api_key("acme", Role::Viewer).await;
    assert_eq!(app.get("/api/v1/ingest/status", &viewer, "acme").await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_is_remembered_for_a_few_seconds() {
    let app = spawn_app().await;
    let key = "dv_a_key_created_after_its_first_use";
    let path = "/api/v1/dashboard-data?type=summary";
    assert_eq!(app.get(path, key, "acme").await.0, 401);
    sqlx::query("INSERT INTO api_keys (key_hash, tenant_id, role, name) VALUES ($1, 'acme', 'viewer', 't')")
        .bind(decision_views::api::auth::hash_key(key))
        .execute(&app.env.pool)
        .await
        .unwrap();
    // Answered from the negative cache, without a lookup that would now find it.
    assert_eq!(app.get(path, key, "acme").await.0, 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get(path, key, "acme").await.0 != 200 {
        assert!(Instant::now() < deadline, "the key never became valid");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_no_whole_header_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (app, _) = app_with(|s| s.http.header_read_timeout = Duration::from_millis(300)).await;
    let mut slow = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(3), "{waited:?}");
    // Other connections are served meanwhile and after.
    assert_eq!(app.client.get(format!("{}/healthz", app.address)).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_an_idle_keep_alive_connection_open_exits_0() {
    use std::process::{Command, Stdio};
    let env = TestEnv::new().await;
    // A free port for the child (released just before it binds it).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_decision-views"))
            .arg("api")
            .env_clear()
            .envs(env.env_vars())
            .env("DV_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the api process"),
    );
    let address = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{address}/healthz")).await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(Instant::now() < deadline, "the api process never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = Conn::open(&address).await;
    assert_eq!(conn.send(Method::GET, "/healthz", &[], axum::body::Body::empty()).await.unwrap().status, 200);

    // kill(2) through the command: the workspace forbids `unsafe`, even in tests.
    let sent = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status().expect("run kill");
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no exit within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(5), "the idle connection did not hold shutdown up");
}

/// A child process killed if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
