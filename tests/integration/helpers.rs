//! Test harness (after zero-to-production's `tests/api/helpers.rs`): every test gets a fresh
//! database with a random name, its own topics and consumer group on the real broker, and an
//! application started on port 0. Real PostgreSQL, Kafka-protocol broker and Redis; no mocks.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::settings::{Secret, Settings};
use decision_views::startup::{Application, Mode};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

pub fn brokers() -> String {
    std::env::var("DV_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn pg_server_url() -> String {
    std::env::var("DV_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Partition counts of the test topics: co-partitioned like production's defaults.
pub fn partitions(kind: TopicKind) -> i32 {
    match kind {
        TopicKind::DecisionTraces | TopicKind::Interactions | TopicKind::SegmentMembership => 4,
        _ => 1,
    }
}

/// Where a test's services are: the shared ones by default; the reliability suite starts
/// private ones (a broker or a PostgreSQL server it may stop without disturbing other tests).
#[derive(Debug, Clone)]
pub struct Servers {
    pub brokers: String,
    /// A server URL without a database (`postgres://user@host:port`).
    pub postgres: String,
}

impl Default for Servers {
    fn default() -> Self {
        Servers { brokers: brokers(), postgres: pg_server_url() }
    }
}

/// Everything a test needs to talk to its own slice of the services.
pub struct TestEnv {
    pub servers: Servers,
    pub db_url: String,
    pub pool: PgPool,
    pub topics: BTreeMap<TopicKind, String>,
    pub group_id: String,
    pub producer: ThreadedProducer<DefaultProducerContext>,
}

impl TestEnv {
    /// A fresh database (migrated) and fresh topics.
    pub async fn new() -> TestEnv {
        TestEnv::new_on(Servers::default()).await
    }

    /// A fresh database and fresh topics on the given servers.
    pub async fn new_on(servers: Servers) -> TestEnv {
        crate::day_boundary::clear_of_midnight().await;
        let (suffix, db_url, pool) = fresh_database(&servers.postgres).await;

        let topics: BTreeMap<TopicKind, String> =
            TopicKind::ALL.into_iter().map(|k| (k, format!("t{suffix}-{}", k.default_name()))).collect();
        create_topics(&servers.brokers, &topics).await;
        let producer = decision_views::publish::producer(&servers.brokers).expect("producer");
        TestEnv { servers, db_url, pool, topics, group_id: format!("g{suffix}"), producer }
    }

    /// A fresh database and consumer group on the SAME topics: a replay of everything published.
    pub async fn replay(&self) -> TestEnv {
        let (suffix, db_url, pool) = fresh_database(&self.servers.postgres).await;
        let producer = decision_views::publish::producer(&self.servers.brokers).expect("producer");
        TestEnv {
            servers: self.servers.clone(),
            db_url,
            pool,
            topics: self.topics.clone(),
            group_id: format!("g{suffix}"),
            producer,
        }
    }

    /// Another handle on the same database, topics and group: a second replica of the service.
    pub async fn same_database(&self) -> TestEnv {
        let pool = PgPool::connect(&self.db_url).await.expect("connect");
        let producer = decision_views::publish::producer(&self.servers.brokers).expect("producer");
        TestEnv {
            servers: self.servers.clone(),
            db_url: self.db_url.clone(),
            pool,
            topics: self.topics.clone(),
            group_id: self.group_id.clone(),
            producer,
        }
    }

    /// A second handle on the same database and topics (for a publisher thread).
    pub fn clone_for_publish(&self) -> Publisher {
        Publisher {
            topics: self.topics.clone(),
            producer: decision_views::publish::producer(&self.servers.brokers).expect("producer"),
        }
    }

    pub fn topic(&self, kind: TopicKind) -> &str {
        &self.topics[&kind]
    }

    /// Settings pointing at this test's database, topics and group; HTTP on port 0.
    pub fn settings(&self) -> Settings {
        // Overrides go through the struct, not the process environment, so that tests running
        // in parallel never see each other's settings.
        let mut s = Settings::from_env().expect("default settings are valid");
        s.database.url = Secret::new(self.db_url.clone());
        s.database.max_connections = 5;
        s.database.api_max_connections = 5;
        s.api.max_concurrent_computations = 5;
        // The real Redis (shared by the tests: keys are namespaced by each test's database).
        s.redis_url = Some(Secret::new("redis://127.0.0.1:6379"));
        s.kafka.brokers = self.servers.brokers.clone();
        s.kafka.group_id = self.group_id.clone();
        s.kafka.topics = self.topics.clone();
        s.kafka.session_timeout = Duration::from_secs(6);
        s.kafka.drain_timeout = Duration::from_secs(3);
        s.kafka.orphan_after = Duration::from_secs(10);
        s.kafka.batch_max_wait = Duration::from_millis(50);
        s.http.addr = "127.0.0.1:0".parse().unwrap();
        s.http.metrics_addr = "127.0.0.1:0".parse().unwrap();
        s
    }

    /// The same configuration as environment variables, for child processes.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("DV_DATABASE_URL".to_string(), self.db_url.clone()),
            // Several processes of a test run at once: each ingest process on a port of its own.
            ("DV_METRICS_ADDR".into(), "127.0.0.1:0".into()),
            ("DV_DATABASE_MAX_CONNECTIONS".into(), "4".into()),
            ("DV_API_DATABASE_MAX_CONNECTIONS".into(), "4".into()),
            ("DV_REDIS_URL".into(), String::new()),
            ("DV_KAFKA_BROKERS".into(), self.servers.brokers.clone()),
            ("DV_KAFKA_GROUP_ID".into(), self.group_id.clone()),
            ("DV_KAFKA_SESSION_TIMEOUT_MS".into(), "6000".into()),
            ("DV_INGEST_DRAIN_TIMEOUT_MS".into(), "3000".into()),
            ("DV_INGEST_ORPHAN_AFTER_MS".into(), "10000".into()),
            ("DV_INGEST_BATCH_MAX_WAIT_MS".into(), "50".into()),
            (
                "RUST_LOG".into(),
                std::env::var("DV_TEST_CHILD_RUST_LOG").unwrap_or_else(|_| "warn,consumers=info".into()),
            ),
        ];
        for (k, name) in &self.topics {
            v.push((decision_views::settings::topic_env_var(*k).to_string(), name.clone()));
        }
        v
    }

    /// Publishes one event with the docs/events.md key (`tenantId:customerId`, else `tenantId`).
    pub fn publish(&self, kind: TopicKind, event: &Value) {
        let tenant = event["tenantId"].as_str().unwrap_or("");
        let key = match event["customerId"].as_str() {
            Some(c) => format!("{tenant}:{c}"),
            None => tenant.to_string(),
        };
        self.publish_raw(kind, &key, event.to_string().as_bytes());
    }

    pub fn publish_raw(&self, kind: TopicKind, key: &str, payload: &[u8]) {
        decision_views::publish::send(&self.producer, self.topic(kind), key, payload).expect("send");
    }

    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Waits until the offsets committed in PostgreSQL reach the broker's high watermark on
    /// every partition of the test's topics: everything published has been applied (or
    /// dead-lettered). Drives the pipeline "until idle" without sleeping a guessed time.
    pub async fn wait_caught_up(&self, timeout: Duration) {
        self.flush();
        let highs = self.high_watermarks();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stored: Vec<(String, i32, i64)> =
                sqlx::query_as("SELECT topic, partition, next_offset FROM consumer_offsets")
                    .fetch_all(&self.pool)
                    .await
                    .unwrap();
            let behind: Vec<_> = highs
                .iter()
                .filter(|((t, p), high)| {
                    **high > 0 && !stored.iter().any(|(st, sp, next)| st == t && sp == p && next >= *high)
                })
                .collect();
            if behind.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ingest did not catch up within {timeout:?}; behind: {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn high_watermarks(&self) -> BTreeMap<(String, i32), i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.servers.brokers)
            .set("group.id", "test-watermarks")
            .create()
            .expect("consumer");
        let mut out = BTreeMap::new();
        for (kind, topic) in &self.topics {
            for p in 0..partitions(*kind) {
                let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
                out.insert((topic.clone(), p), high);
            }
        }
        out
    }

    pub async fn api_key(&self, tenant: &str, role: Role) -> String {
        decision_views::keys::create_api_key(&self.pool, tenant, role, "test").await.expect("create key")
    }

    /// A platform operator key (no tenant).
    pub async fn platform_key(&self) -> String {
        decision_views::keys::create_platform_key(&self.pool, "test").await.expect("create platform key")
    }
}

/// Publishes to a test's topics from another thread.
pub struct Publisher {
    topics: BTreeMap<TopicKind, String>,
    producer: ThreadedProducer<DefaultProducerContext>,
}

impl Publisher {
    pub fn publish(&self, kind: TopicKind, event: &Value) {
        let tenant = event["tenantId"].as_str().unwrap_or("");
        let key = match event["customerId"].as_str() {
            Some(c) => format!("{tenant}:{c}"),
            None => tenant.to_string(),
        };
        decision_views::publish::send(&self.producer, &self.topics[&kind], &key, event.to_string().as_bytes())
            .expect("send");
    }

    pub fn flush(&self) {
        self.producer.flush(Duration::from_secs(30)).expect("flush");
    }
}

/// A new database named dv_test_<unix seconds>_<random>, migrated: (the random suffix, its
/// URL, a pool). PostgreSQL keeps no creation time; the one in the name lets
/// `scripts/test.sh` drop only databases old enough to be left over from an earlier run.
pub async fn fresh_database(server: &str) -> (String, String, PgPool) {
    let (suffix, db_url, pool) = empty_database(server).await;
    decision_views::MIGRATOR.run(&pool).await.expect("migrations apply");
    (suffix, db_url, pool)
}

/// A new database with no migration applied (see [`fresh_database`]).
pub async fn empty_database(server: &str) -> (String, String, PgPool) {
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let db_name = format!("dv_test_{created}_{suffix}");
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await.expect("PostgreSQL is up");
    admin.execute(format!(r#"CREATE DATABASE "{db_name}""#).as_str()).await.expect("create test database");
    let db_url = format!("{server}/{db_name}");
    let pool = PgPool::connect(&db_url).await.expect("connect to the test database");
    (suffix, db_url, pool)
}

/// A database at the migrations before `version`.
pub async fn database_before(version: i64) -> PgPool {
    database_url_before(version).await.1
}

/// [`database_before`], with the database's URL (to run the application on it).
pub async fn database_url_before(version: i64) -> (String, PgPool) {
    let (_, url, pool) = empty_database(&Servers::default().postgres).await;
    let before = Migrator {
        migrations: Cow::Owned(decision_views::MIGRATOR.iter().filter(|m| m.version < version).cloned().collect()),
        ..Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    (url, pool)
}

async fn create_topics(brokers: &str, topics: &BTreeMap<TopicKind, String>) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let new: Vec<NewTopic> =
        topics.iter().map(|(k, name)| NewTopic::new(name, partitions(*k), TopicReplication::Fixed(1))).collect();
    let results = admin.create_topics(&new, &AdminOptions::new()).await.expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// A running application (ingest + API in this process) on top of a [`TestEnv`].
pub struct TestApp {
    pub env: TestEnv,
    pub address: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestEnv::new().await, Mode::All).await
}

pub async fn spawn_app_with(env: TestEnv, mode: Mode) -> TestApp {
    let settings = env.settings();
    spawn(env, settings, mode).await
}

/// An app with adjusted settings (limits, TTLs) on top of a [`TestEnv`].
pub async fn spawn_app_with_settings(env: TestEnv, settings: Settings) -> TestApp {
    spawn(env, settings, Mode::All).await
}

async fn spawn(env: TestEnv, settings: Settings, mode: Mode) -> TestApp {
    let app = Application::build(settings, mode).await.expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port().expect("API mode binds a port"));
    let shutdown = app.shutdown_token();
    let handle = tokio::spawn(app.run_until_stopped());
    TestApp { env, address, client: reqwest::Client::new(), shutdown, handle: Some(handle) }
}

impl TestApp {
    /// GET with the two auth headers; returns status and JSON body.
    pub async fn get(&self, path: &str, key: &str, tenant: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.address))
            .header("X-API-Key", key)
            .header("X-Tenant-Id", tenant)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// POST a JSON body with the two auth headers; returns status, JSON body and `Retry-After`.
    pub async fn post(&self, path: &str, key: &str, tenant: &str, body: &Value) -> (u16, Value, Option<String>) {
        let resp = self
            .client
            .post(format!("{}{path}", self.address))
            .header("X-API-Key", key)
            .header("X-Tenant-Id", tenant)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        (status, resp.json().await.unwrap_or(Value::Null), retry)
    }

    /// Stops the app gracefully and returns what `run_until_stopped` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle.take().unwrap().await?
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
