//! `DV_KAFKA_CLIENT_<PROPERTY>` reaches every Kafka client the binary creates (issue 16): the
//! status client of the API and `publish`'s producer as well as the ingest consumers. Shown
//! with the one property whose effect a test can see without a secured cluster: the brokers.
//! `DV_KAFKA_BROKERS` names a dead address, the override the live broker; each client works
//! only if the override reached it.

use std::process::{Command, Stdio};
use std::time::Duration;

use consumers::events::TopicKind;

use crate::helpers::{spawn_app_with_settings, TestEnv};

const DEAD: &str = "127.0.0.1:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_properties_reach_the_producer_the_status_client_and_the_consumers() {
    let env = TestEnv::new().await;
    let live = env.servers.brokers.clone();

    // `publish` (a child process) writes through the override.
    let vars: Vec<(String, String)> = env
        .env_vars()
        .into_iter()
        .map(|(k, v)| if k == "DV_KAFKA_BROKERS" { (k, DEAD.into()) } else { (k, v) })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_decision-views"))
        .args(["publish", "--traces", "20", "--rate", "0", "--tenants", "1", "--days", "2", "--customers", "50"])
        .env_clear()
        .envs(vars)
        .env("DV_KAFKA_CLIENT_BOOTSTRAP_SERVERS", &live)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start publish");
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("publish did not finish: the override did not reach its producer")
    });
    assert!(status.success(), "{status}");
    let published: i64 = env
        .high_watermarks()
        .iter()
        .filter(|((t, _), _)| t == env.topic(TopicKind::DecisionTraces))
        .map(|(_, h)| h)
        .sum();
    assert_eq!(published, 20, "every trace published");

    // The API's status client and the ingest consumers, in process, through the same override.
    let mut settings = env.settings();
    settings.kafka.brokers = DEAD.into();
    settings.kafka.client_overrides.insert("bootstrap.servers".into(), live);
    let app = spawn_app_with_settings(env, settings).await;
    // Ingest catches up: its consumers reached the broker through the override too.
    app.env.wait_caught_up(Duration::from_secs(60)).await;
    let platform = app.env.platform_key().await;
    let (code, body) = app.get("/api/v1/ingest/status", &platform, "").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["brokerReachable"], true, "{body}");
    let high: i64 = body["partitions"].as_array().unwrap().iter().filter_map(|p| p["highWatermark"].as_i64()).sum();
    assert!(high >= 20, "{body}");
}

/// `--config FILE` (issue 16): the service's settings from a TOML file of the variables' names,
/// the environment over it, and a name it does not know refused with that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_file_configures_the_process() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!("dv-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |file: &str, extra_env: &[(&str, &str)], args: &[&str]| {
        let path = dir.join("settings.toml");
        std::fs::write(&path, file).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_decision-views"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .env_clear()
            .envs(extra_env.iter().copied())
            .output()
            .expect("run the binary");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let file = format!("DV_DATABASE_URL = \"{}\"\nDV_REDIS_URL = \"\"\n", env.db_url);
    let (ok, out) = run(&file, &[], &["create-api-key", "--tenant", "acme", "--role", "admin", "--name", "from-file"]);
    assert!(ok, "{out}");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE name = 'from-file'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(keys, 1, "the key went to the database the file names");
    // The environment wins: a database that does not exist, so the command fails.
    let (ok, out) =
        run(&file, &[("DV_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dv_no_such_db")], &["migrate"]);
    assert!(!ok && out.contains("dv_no_such_db"), "{out}");
    let (ok, out) = run("DV_DATABSE_URL = \"x\"\n", &[], &["migrate"]);
    assert!(!ok && out.contains("DV_DATABSE_URL is not a setting"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
