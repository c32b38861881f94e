//! The bench's own slice of the services: a private tansu broker on the SQLite engine, fresh
//! databases, child processes of the release binary and their memory.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use consumers::events::TopicKind;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use sqlx::{Connection, Executor, PgConnection, PgPool};

pub const PARTITIONS: i32 = 4;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().unwrap().port()
}

pub fn pg_server() -> String {
    std::env::var("DV_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A tansu broker on the SQLite engine in a directory of its own, killed (and the directory
/// removed) on drop.
///
/// Not the memory engine, though it is faster: a fetch that starts inside a record batch skips
/// the rest of that batch there, and the ingest consumer fetches from inside batches whenever
/// it resumes a partition that event-time alignment paused (`consumers::kafka::align`). On the
/// memory engine the 300,000-trace run lost traces that way (`exact=false`; BENCHMARKS.md
/// "Write path, thirteenth pass").
pub struct Broker {
    child: Child,
    dir: PathBuf,
    pub addr: String,
}

impl Broker {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn start() -> anyhow::Result<Broker> {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        let tansu = std::env::var("DV_BENCH_TANSU").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cargo/bin/tansu").to_string_lossy().into_owned()
        });
        let dir = std::env::temp_dir().join(format!("dv-bench-tansu-{port}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let child = Command::new(&tansu)
            // tansu resolves a relative sqlite:// path against its working directory.
            .current_dir(&dir)
            .args(["broker", "--cluster-id", "bench", "--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            // tansu reads these as fallbacks for its flags: only the flags above count.
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("start {tansu} (install: cargo install tansu --locked --features dynostore,libsql)")
            })?;
        let broker = Broker { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&broker.addr).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "tansu did not listen on {} within 30 s", broker.addr);
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(broker)
    }

    /// Creates the seven topics under a fresh prefix; returns kind → name.
    pub async fn topics(&self, prefix: &str) -> anyhow::Result<BTreeMap<TopicKind, String>> {
        let topics: BTreeMap<TopicKind, String> =
            TopicKind::ALL.into_iter().map(|k| (k, format!("{prefix}-{}", k.default_name()))).collect();
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.addr).create()?;
        let new: Vec<NewTopic> =
            topics.values().map(|name| NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1))).collect();
        for r in admin.create_topics(&new, &AdminOptions::new()).await? {
            r.map_err(|(t, e)| anyhow::anyhow!("create topic {t}: {e}"))?;
        }
        Ok(topics)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh, migrated database `dv_bench_<name>_<random>`, dropped by [`drop_database`].
pub async fn fresh_database(name: &str) -> anyhow::Result<(String, PgPool)> {
    let db = format!("dv_bench_{name}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut admin = PgConnection::connect(&format!("{}/postgres", pg_server())).await?;
    admin.execute(format!(r#"CREATE DATABASE "{db}""#).as_str()).await?;
    let url = format!("{}/{db}", pg_server());
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(&url).await?;
    decision_views::MIGRATOR.run(&pool).await?;
    Ok((url, pool))
}

pub async fn drop_database(url: &str) -> anyhow::Result<()> {
    if std::env::var("DV_BENCH_KEEP").is_ok_and(|v| v == "1") {
        eprintln!("[bench] keeping {url}");
        return Ok(());
    }
    let db = url.rsplit('/').next().unwrap_or_default();
    let mut admin = PgConnection::connect(&format!("{}/postgres", pg_server())).await?;
    admin.execute(format!(r#"DROP DATABASE IF EXISTS "{db}" WITH (FORCE)"#).as_str()).await?;
    Ok(())
}

/// The environment of a child `decision-views` process.
pub fn child_env(db_url: &str, brokers: &str, topics: &BTreeMap<TopicKind, String>) -> Vec<(String, String)> {
    let mut v = vec![
        ("DV_DATABASE_URL".to_string(), db_url.to_string()),
        ("DV_KAFKA_BROKERS".into(), brokers.to_string()),
        ("DV_KAFKA_GROUP_ID".into(), format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])),
        ("DV_REDIS_URL".into(), String::new()),
        // The bench measures throughput, not the per-tenant read limit.
        ("DV_RATE_LIMIT_READS_PER_SEC".into(), "10000000".into()),
        ("DV_RATE_LIMIT_READS_BURST".into(), "10000000".into()),
        ("DV_TRACE_RETENTION_DAYS".into(), "30".into()),
        // An ingest process's probes on a free port: nothing here scrapes them.
        ("DV_METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("RUST_LOG".into(), std::env::var("DV_BENCH_CHILD_LOG").unwrap_or_else(|_| "warn,sqlx=error".into())),
    ];
    // Ingest and consumer settings of the bench's own environment reach the children, for
    // experiments (e.g. DV_INGEST_BATCH_MAX_MESSAGES); unset, the defaults are measured.
    // So do the allocators' own settings, for memory experiments: jemalloc's (`_RJEM_MALLOC_CONF`,
    // the prefixed name of the jemalloc the service links) and glibc malloc's (`MALLOC_*_`,
    // `GLIBC_TUNABLES`: the allocator of librdkafka and zstd).
    v.extend(std::env::vars().filter(|(k, _)| {
        k.starts_with("DV_INGEST_")
            || k.starts_with("DV_KAFKA_CONSUMER_")
            || k == "_RJEM_MALLOC_CONF"
            || k.starts_with("MALLOC_")
            || k == "GLIBC_TUNABLES"
    }));
    for (k, name) in topics {
        v.push((decision_views::settings::topic_env_var(*k).to_string(), name.clone()));
    }
    v
}

/// A child `decision-views <mode>`, SIGTERMed on drop.
pub struct Process {
    pub child: Child,
}

impl Process {
    pub fn start(mode: &str, env: &[(String, String)]) -> anyhow::Result<Process> {
        let child = Command::new(env!("CARGO_BIN_EXE_decision-views"))
            .arg(mode)
            .env_clear()
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Process { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (current RSS, peak RSS) in MiB, from /proc.
    pub fn memory_mib(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let field =
            |name: &str| status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<f64>().ok();
        Some((field("VmRSS:")? / 1024.0, field("VmHWM:")? / 1024.0))
    }

    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        // SIGTERM through kill(1): the graceful path; SIGKILL if it hangs.
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Waits until GET `url` answers (the API is up).
pub async fn wait_http(url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(url).await.is_ok() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} did not answer within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Σ committed next offsets of the topics named, from PostgreSQL.
pub async fn committed(pool: &PgPool, topic: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COALESCE(sum(next_offset), 0)::int8 FROM consumer_offsets WHERE topic = $1")
        .bind(topic)
        .fetch_one(pool)
        .await?)
}
