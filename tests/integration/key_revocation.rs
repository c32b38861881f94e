//! API keys listed and revoked (issue 17), through the admin API and the CLI. The bound: a
//! revoked key stops working on every API replica within 5 s (the key cache's lifetime); the
//! test warms the key in two replicas' caches, revokes it through one, and times both.

use std::process::Command;
use std::time::{Duration, Instant};

use decision_views::api::auth::Role;
use decision_views::startup::Mode;
use serde_json::Value;

use crate::helpers::{spawn_app_with, TestApp, TestEnv};

const BOUND: Duration = Duration::from_secs(5);

async fn status(app: &TestApp, key: &str) -> u16 {
    app.get("/api/v1/dashboard-data?type=summary", key, "acme").await.0
}

fn cli(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_decision-views"))
        .args(args)
        .env_clear()
        .envs(env.env_vars())
        .output()
        .expect("run the binary");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_working_on_every_replica_within_the_bound() {
    let env = TestEnv::new().await;
    let admin = env.api_key("acme", Role::Admin).await;
    let viewer = env.api_key("acme", Role::Viewer).await;
    let other_admin = env.api_key("globex", Role::Admin).await;
    let replica = spawn_app_with(env.same_database().await, Mode::Api).await;
    let app = spawn_app_with(env, Mode::Api).await;

    // Listed without the keys themselves.
    let (code, list) = app.get("/api/v1/api-keys", &admin, "acme").await;
    assert_eq!(code, 200, "{list}");
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "acme's two keys only: {list}");
    assert!(!list.to_string().contains(&viewer) && !list.to_string().contains(&admin));
    let viewer_id = keys.iter().find(|k| k["role"] == "viewer").unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/api-keys", &viewer, "acme").await.0, 403, "admins only");

    // Warm in both replicas' caches, then revoked through one of them.
    assert_eq!((status(&app, &viewer).await, status(&replica, &viewer).await), (200, 200));
    let delete = |key: String, tenant: &'static str, id: String| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/api-keys/{id}", app.address);
        async move { client.delete(url).header("X-API-Key", key).header("X-Tenant-Id", tenant).send().await.unwrap() }
    };
    assert_eq!(delete(other_admin, "globex", viewer_id.clone()).await.status(), 404, "another tenant's key");
    let revoked_at = Instant::now();
    let resp = delete(admin.clone(), "acme", viewer_id.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["revoked"], true);
    for (name, a) in [("the revoking replica", &app), ("the other replica", &replica)] {
        while status(a, &viewer).await != 401 {
            assert!(revoked_at.elapsed() < BOUND + Duration::from_secs(1), "{name} still accepts the key");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!("revoked key refused everywhere after {:?}", revoked_at.elapsed());
    assert_eq!(delete(admin.clone(), "acme", viewer_id.clone()).await.status(), 404, "revoked once");
    assert_eq!(status(&app, &admin).await, 200, "the other keys keep working");

    // The CLI: the list shows the revocation; revoking the admin key by id.
    let env = &app.env;
    let (ok, out) = cli(env, &["list-api-keys", "--tenant", "acme"]);
    let line = out.lines().find(|l| l.starts_with(&viewer_id)).unwrap_or_else(|| panic!("{out}"));
    assert!(ok && !line.ends_with(" -"), "revoked, with its time: {line}");
    let admin_id = out.lines().find(|l| l.contains(" admin ")).unwrap().split_whitespace().next().unwrap().to_owned();
    let (ok, out) = cli(env, &["revoke-api-key", "--id", &admin_id]);
    assert!(ok, "{out}");
    let (ok, out) = cli(env, &["revoke-api-key", "--id", &admin_id]);
    assert!(!ok && out.contains("no active key"), "{out}");
    let started = Instant::now();
    while status(&app, &admin).await != 401 {
        assert!(started.elapsed() < BOUND + Duration::from_secs(1), "the CLI's revocation did not take");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keys created before revocation existed (migration 20261206000060) stay active after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_before_the_revocation_migration_keep_working() {
    let (url, pool) = crate::helpers::database_url_before(20261206000060).await;
    let key = decision_views::keys::create_api_key(&pool, "acme", Role::Viewer, "old").await.unwrap();
    decision_views::MIGRATOR.run(&pool).await.unwrap();
    let listed = decision_views::keys::list(&pool, Some("acme")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_none(), "active after the upgrade");
    let mut env = TestEnv::new().await;
    env.db_url = url;
    env.pool = pool;
    let app = spawn_app_with(env, Mode::Api).await;
    assert_eq!(status(&app, &key).await, 200);
}
