//! Builds the application and runs it until a shutdown signal (thin `main`, testable build).

use std::sync::Arc;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use consumers::kafka::GroupHealth;

use crate::api::cache::ResponseCache;
use crate::api::guard::Computations;
use crate::api::rate_limit::RateLimits;
use crate::api::{self, AppState, Watermarks};
use crate::narrative::openai::OpenAi;
use crate::narrative::{Narrator, Provider, Template};
use crate::recovery::dead_letters::Replayer;
use crate::settings::{LlmSettings, Settings};
use crate::store::Store;

/// What this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ingest and API in one process (the laptop default).
    All,
    Ingest,
    Api,
}

pub struct Application {
    listener: Option<TcpListener>,
    port: Option<u16>,
    /// An `ingest` process's /healthz, /readyz and /metrics (`DV_METRICS_ADDR`).
    ops_listener: Option<TcpListener>,
    groups: Arc<GroupHealth>,
    state: Option<AppState>,
    pool: PgPool,
    settings: Settings,
    mode: Mode,
    shutdown: CancellationToken,
}

/// The pool of ingest, the janitor and migrations: no statement timeout (a batch's transaction
/// takes as long as it takes; ingest has its own bounds).
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(settings.database.max_connections)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(settings.database.url.expose())
        .await?)
}

/// The API's pool, separate even when ingest runs in the same process: each connection starts
/// with `statement_timeout` (a startup parameter, so no extra round trip and no session that
/// misses it). Waiting for a connection is bounded by the request timeout (which also ends the
/// request). Connections open on demand.
pub fn connect_api(settings: &Settings) -> anyhow::Result<PgPool> {
    let timeout_ms = settings.api.statement_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(settings.database.url.expose())?
        .options([("statement_timeout", timeout_ms.as_str())]);
    Ok(PgPoolOptions::new()
        .max_connections(settings.database.api_max_connections)
        .acquire_timeout(settings.http.request_timeout)
        // No ping before each use: it is a round trip on every query. A connection that died
        // meanwhile fails its query once (500) and is dropped.
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

impl Application {
    /// Connects, applies migrations and binds the HTTP port (port 0 picks a free one).
    pub async fn build(settings: Settings, mode: Mode) -> anyhow::Result<Self> {
        let pool = connect(&settings).await?;
        crate::MIGRATOR.run(&pool).await?;
        let (listener, port, state) = if mode == Mode::Ingest {
            (None, None, None)
        } else {
            let listener = TcpListener::bind(settings.http.addr).await?;
            let port = listener.local_addr()?.port();
            let topics: Vec<String> = settings.kafka.topics.values().cloned().collect();
            let redis = settings.redis_url.as_ref().map(|u| u.expose());
            let api_pool = connect_api(&settings)?;
            let namespace: Arc<str> =
                sqlx::query_scalar::<_, String>("SELECT current_database()").fetch_one(&pool).await?.into();
            let narrator = Narrator::new(
                narrative_provider(&settings.llm)?,
                Store::connect(redis).await,
                settings.llm.cache_ttl,
                namespace.clone(),
            );
            let state = AppState {
                pool: api_pool.clone(),
                keys: Default::default(),
                metrics: crate::telemetry::metrics_handle(),
                watermarks: Arc::new(Watermarks::new(settings.kafka.client(), topics.clone())?),
                cache: ResponseCache::connect(redis, settings.http.cache_ttl).await,
                names: Default::default(),
                data_version: Default::default(),
                limits: RateLimits::new(settings.http.reads, settings.http.shap, settings.http.narrative),
                topics: Arc::new(topics),
                namespace,
                computations: Computations::new(settings.api.max_concurrent_computations, settings.api.queue_timeout),
                max_offset: settings.api.max_offset,
                request_timeout: settings.http.request_timeout,
                narrator,
                models: Default::default(),
                replayer: Arc::new(Replayer::for_deployment(&settings)?),
            };
            (Some(listener), Some(port), Some(state))
        };
        if mode != Mode::Api {
            crate::telemetry::metrics_handle(); // ingest metrics need the recorder too
        }
        let ops_listener =
            if mode == Mode::Ingest { Some(TcpListener::bind(settings.http.metrics_addr).await?) } else { None };
        let groups = Arc::default();
        Ok(Self {
            listener,
            port,
            ops_listener,
            groups,
            state,
            pool,
            settings,
            mode,
            shutdown: CancellationToken::new(),
        })
    }

    /// The bound HTTP port (`None` in ingest-only mode).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The port of an ingest-only process's /healthz, /readyz and /metrics.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops_listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Cancelling it stops the application gracefully (what SIGTERM does).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let mut tasks = tokio::task::JoinSet::new();
        if let (Some(listener), Some(state)) = (self.listener, self.state) {
            if !state.cache.is_off() {
                // Read once before serving, so the first keys are already current.
                state.data_version.refresh(&self.pool).await?;
                let poll = self.settings.http.cache_version_poll;
                tasks.spawn(state.data_version.clone().follow(self.pool.clone(), poll, shutdown.clone()));
            }
            let app = api::router(state);
            let http = &self.settings.http;
            // Requests in flight end within the request timeout; a second more for the answers.
            let drain = http.request_timeout + std::time::Duration::from_secs(1);
            tasks.spawn(api::serve::serve(listener, app, http.header_read_timeout, drain, shutdown.clone()));
        }
        if let Some(listener) = self.ops_listener {
            let topics = self.settings.kafka.topics.values().cloned().collect();
            let ops = api::ingest_ops::router(self.pool.clone(), self.groups.clone(), topics);
            let timeout = self.settings.http.header_read_timeout;
            tasks.spawn(api::serve::serve(listener, ops, timeout, std::time::Duration::from_secs(1), shutdown.clone()));
        }
        if self.mode != Mode::Api {
            let config = self.settings.ingest_config();
            tasks.spawn(consumers::kafka::run(config, self.pool.clone(), self.groups.clone(), shutdown.clone()));
            let limits = &self.settings.ingest;
            let retention = consumers::janitor::Retention {
                dedup_horizon_days: limits.dedup_horizon_days,
                event_days: limits.retention_days,
                trace_days: limits.trace_retention_days,
                dead_letter_days: limits.dead_letter_retention_days,
            };
            tasks.spawn(consumers::janitor::run(self.pool.clone(), retention, shutdown.clone()));
        }
        // The first task to end (error or not) stops the others: one shutdown for everything.
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            shutdown.cancel();
            let r = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = &r {
                tracing::error!(error = ?e, "task failed; shutting down");
            }
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// The narrative provider: an OpenAI-compatible model when `DV_LLM_URL` is set, else the
/// built-in template writer.
fn narrative_provider(llm: &LlmSettings) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(match &llm.url {
        Some(url) => Arc::new(OpenAi::new(url, &llm.model, llm.api_key.clone(), llm.timeout)?),
        None => Arc::new(Template),
    })
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutdown signal received; finishing the batch in flight");
        token.cancel();
    });
}
