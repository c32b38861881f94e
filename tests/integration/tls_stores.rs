//! PostgreSQL and Redis over TLS (issue 16): `sslmode` in `DV_DATABASE_URL`, `rediss://` in
//! `DV_REDIS_URL`. Each against a private server with a self-signed certificate the test makes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::settings::Secret;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::helpers::{spawn_app_with_settings, Servers, TestEnv};
use crate::model::ts;
use crate::reliability::servers::{PrivatePostgres, PrivateRedis};

/// A self-signed certificate for 127.0.0.1 and its key in `dir`; `for_postgres`: owned by the
/// `postgres` OS user when the tests run as root (the server refuses a key others can read).
fn self_signed(dir: &Path, for_postgres: bool) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(Command::new("chmod").arg("600").arg(&key).status().unwrap().success());
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if for_postgres && root {
        assert!(Command::new("chown").arg("postgres:").arg(&cert).arg(&key).status().unwrap().success());
    }
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_postgresql_over_tls() {
    let pg = PrivatePostgres::start_with(|dir| {
        let (cert, key) = self_signed(dir, true);
        format!("-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", cert.display(), key.display())
    });
    let env = TestEnv::new_on(Servers { postgres: pg.url(), ..Servers::default() }).await;
    let tls_url = format!("{}?sslmode=require", env.db_url);
    let mut conn = PgConnection::connect(&tls_url).await.expect("a TLS connection");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(ssl, "sslmode=require gives an encrypted session");

    // The URL's sslmode is what decides: disabled, the same server gives a session in clear.
    let mut clear = PgConnection::connect(&format!("{}?sslmode=disable", env.db_url)).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut clear)
        .await
        .unwrap();
    assert!(!ssl);

    // The service with TLS required: ingest and the API work on it.
    let mut settings = env.settings();
    settings.database.url = Secret::new(tls_url);
    let app = spawn_app_with_settings(env, settings).await;
    for i in 0..10 {
        app.env.publish(
            TopicKind::Interactions,
            &json!({"id": format!("i{i}"), "tenantId": "acme",
            "customerId": "c1", "offerId": "off_1", "channelId": "email", "outcome": "impression",
            "occurredAt": ts(chrono::Utc::now())}),
        );
    }
    app.env.wait_caught_up(Duration::from_secs(60)).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    let (status, body) = app.get("/api/v1/dashboard-data?type=acceptance_rate&days=1", &key, "acme").await;
    assert_eq!((status, body["data"][0]["impressions"].as_i64()), (200, Some(10)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_cache_works_on_redis_over_tls() {
    let redis = PrivateRedis::start_tls(|dir| self_signed(dir, false));
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.redis_url = Some(Secret::new(redis.url()));
    let app = spawn_app_with_settings(env, settings).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    let cache = |r: reqwest::Response| r.headers()["x-cache"].to_str().unwrap().to_owned();
    let get = || {
        app.client
            .get(format!("{}/api/v1/dashboard-data?type=summary", app.address))
            .header("X-API-Key", &key)
            .header("X-Tenant-Id", "acme")
            .send()
    };
    assert_eq!(cache(get().await.unwrap()), "miss");
    // Stored in Redis and read back through TLS (a Redis that fails is a miss, never a hit).
    assert_eq!(cache(get().await.unwrap()), "hit");
}
