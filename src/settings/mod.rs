//! One typed settings struct, read from the environment once at start-up. Every variable is
//! listed (with its default) in the README and in `--help` (`help`, which tests that both are
//! complete); `Settings::from_env` checks cross-field rules.

pub mod help;
mod sources;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use consumers::decode::DecodeLimits;
use consumers::events::TopicKind;
use consumers::kafka::IngestConfig;

use crate::api::rate_limit::{Policy, NARRATIVE, READS, SHAP};
pub use sources::Sources;

/// A value that must not end up in logs (connection strings may carry passwords).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    /// `None`: the response cache is in-process (docs/guarantees.md 6).
    pub redis_url: Option<Secret>,
    pub kafka: KafkaSettings,
    pub http: HttpSettings,
    pub api: ApiLimits,
    pub ingest: IngestLimits,
    pub llm: LlmSettings,
}

/// The narrative provider (docs/api.md 5.3): the built-in template writer unless `url` names an
/// OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Base URL of an OpenAI-compatible API (`…/v1`); `/chat/completions` is appended.
    pub url: Option<String>,
    pub model: String,
    pub api_key: Option<Secret>,
    /// A provider call that has not answered by then fails (502).
    pub timeout: Duration,
    /// How long a narrative stays cached (Redis, else in-process).
    pub cache_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: Secret,
    /// Pool of ingest, the janitor and migrations (no statement timeout: a batch's transaction
    /// must not be cut short by a bound meant for reads).
    pub max_connections: u32,
    /// Pool of the API's queries, a separate one even in `run` mode, so that only API queries
    /// carry `statement_timeout`.
    pub api_max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub group_id: String,
    pub instance_id: String,
    pub topics: BTreeMap<TopicKind, String>,
    pub session_timeout: Duration,
    pub drain_timeout: Duration,
    pub orphan_after: Duration,
    pub batch_max_messages: usize,
    pub batch_max_bytes: usize,
    pub batch_max_delta_rows: usize,
    pub batch_max_wait: Duration,
    /// Decision traces in an ingest pipeline of their own (`IngestConfig::lanes`).
    pub trace_lane: bool,
    /// `false`: each batch commits with `synchronous_commit = off` (see README).
    pub synchronous_commit: bool,
    /// Event-time alignment of a topic's partitions (`DV_INGEST_ALIGN_MAX_AHEAD_SECS`; `None`:
    /// off).
    pub align_max_ahead: Option<Duration>,
    /// librdkafka properties of every Kafka client the binary creates (the ingest consumers,
    /// the status client, `publish`'s producer) from `DV_KAFKA_CLIENT_<PROPERTY>` (dots as
    /// underscores): the cluster's security settings, for one.
    pub client_overrides: BTreeMap<String, String>,
    /// librdkafka properties of the ingest consumers only, from `DV_KAFKA_CONSUMER_<PROPERTY>`;
    /// over the client ones.
    pub consumer_overrides: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// A client configuration for this cluster: the brokers, then `DV_KAFKA_CLIENT_*`.
    pub fn client(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.client_overrides {
            c.set(k, v);
        }
        c
    }
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// Where an `ingest`-only process serves /healthz, /readyz and /metrics (`run` and `api`
    /// serve them on `addr`).
    pub metrics_addr: SocketAddr,
    /// Staleness bound of the response cache; 0 disables it.
    pub cache_ttl: Duration,
    /// How often the API reads the views' data version (a commit invalidates cached answers).
    pub cache_version_poll: Duration,
    /// Per-tenant limits of dashboard and traces reads, SHAP computations and narratives.
    pub reads: Policy,
    pub shap: Policy,
    pub narrative: Policy,
    /// A request that has not answered by then gets 504 (its work is dropped).
    pub request_timeout: Duration,
    /// A connection that has not sent a whole request head this long after it opened or after
    /// its previous response is closed (slow or idle clients cannot hold connections).
    pub header_read_timeout: Duration,
}

/// Bounds on the work one API request may cause (docs/api.md 5.4, issue 10).
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// PostgreSQL `statement_timeout` of the API pool's connections; a query cut by it answers
    /// 504.
    pub statement_timeout: Duration,
    /// Uncached dashboard computations and traces/dead-letters reads running at once in this
    /// process; past it a request waits up to `queue_timeout`, then answers 503.
    pub max_concurrent_computations: usize,
    pub queue_timeout: Duration,
    /// Largest `offset` of the paginated endpoints: deep pages cost a scan of every row
    /// skipped, and no dashboard pages that far (filters narrow a search instead).
    pub max_offset: i64,
}

#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub max_event_bytes: usize,
    /// The catalog topic's (its models carry whole tree ensembles).
    pub max_catalog_event_bytes: usize,
    pub retention_days: i64,
    pub dedup_horizon_days: i64,
    pub trace_retention_days: i64,
    pub dead_letter_retention_days: i64,
    /// Entries per trace array (docs/events.md 2.8: bounded fan-out).
    pub max_candidates_per_trace: usize,
    /// Segments an event is counted in, per customer.
    pub max_segments_per_customer: usize,
}

/// The environment variable of each topic's name.
pub fn topic_env_var(kind: TopicKind) -> &'static str {
    match kind {
        TopicKind::DecisionTraces => "DV_TOPIC_DECISION_TRACES",
        TopicKind::Interactions => "DV_TOPIC_INTERACTIONS",
        TopicKind::Catalog => "DV_TOPIC_CATALOG",
        TopicKind::SegmentMembership => "DV_TOPIC_SEGMENT_MEMBERSHIP",
        TopicKind::Suppressions => "DV_TOPIC_SUPPRESSIONS",
        TopicKind::Attributions => "DV_TOPIC_ATTRIBUTIONS",
        TopicKind::ModelMetrics => "DV_TOPIC_MODEL_METRICS",
    }
}

fn parse<T: FromStr>(src: &Sources, name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e| anyhow::anyhow!("{name}={v:?} is invalid: {e}")),
    }
}

/// A duration in milliseconds, at least 1 (a zero timeout would refuse every request).
fn millis(src: &Sources, name: &str, default: u64) -> anyhow::Result<Duration> {
    match parse(src, name, default)? {
        0 => anyhow::bail!("{name} must be at least 1"),
        ms => Ok(Duration::from_millis(ms)),
    }
}

/// A per-minute rate limit (burst = the rate), at least 1.
fn per_minute(src: &Sources, name: &str, default: Policy) -> anyhow::Result<Policy> {
    match parse(src, name, default.rate)? {
        0 => anyhow::bail!("{name} must be at least 1"),
        rate => Ok(Policy { rate, burst: rate, ..default }),
    }
}

/// Default size of the API pool (and so of the computation bound).
const API_POOL_DEFAULT: u32 = 10;

impl Settings {
    /// From the environment alone.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_sources(&Sources::environment())
    }

    /// From an optional configuration file under the environment ([`Sources::load`]).
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        Self::from_sources(&Sources::load(file)?)
    }

    pub fn from_sources(src: &Sources) -> anyhow::Result<Self> {
        let topics = TopicKind::ALL
            .into_iter()
            .map(|k| (k, src.get(topic_env_var(k)).unwrap_or_else(|| k.default_name().to_owned())))
            .collect();
        // `DV_KAFKA_<KIND>_SECURITY_PROTOCOL=SASL_SSL` → `security.protocol=SASL_SSL`.
        let properties = |prefix: &str| -> BTreeMap<String, String> {
            src.with_prefix(prefix).map(|(p, v)| (p.to_ascii_lowercase().replace('_', "."), v.to_owned())).collect()
        };
        let client_overrides = properties("DV_KAFKA_CLIENT_");
        let consumer_overrides = properties("DV_KAFKA_CONSUMER_");
        let redis_url = match src.raw("DV_REDIS_URL") {
            // Set but empty: explicitly no Redis.
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(Secret::new(v)),
            None => Some(Secret::new("redis://127.0.0.1:6379")),
        };
        let s = Settings {
            database: DatabaseSettings {
                url: Secret::new(
                    src.get("DV_DATABASE_URL")
                        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/decision_views".into()),
                ),
                max_connections: parse(src, "DV_DATABASE_MAX_CONNECTIONS", 10)?,
                api_max_connections: parse(src, "DV_API_DATABASE_MAX_CONNECTIONS", API_POOL_DEFAULT)?,
            },
            redis_url,
            kafka: KafkaSettings {
                brokers: src.get("DV_KAFKA_BROKERS").unwrap_or_else(|| "127.0.0.1:9092".into()),
                group_id: src.get("DV_KAFKA_GROUP_ID").unwrap_or_else(|| "decision-views".into()),
                instance_id: src.get("DV_INSTANCE_ID").unwrap_or_else(|| format!("pid-{}", std::process::id())),
                topics,
                session_timeout: Duration::from_millis(parse(src, "DV_KAFKA_SESSION_TIMEOUT_MS", 10_000)?),
                drain_timeout: Duration::from_millis(parse(src, "DV_INGEST_DRAIN_TIMEOUT_MS", 5_000)?),
                orphan_after: Duration::from_millis(parse(src, "DV_INGEST_ORPHAN_AFTER_MS", 30_000)?),
                batch_max_messages: parse(src, "DV_INGEST_BATCH_MAX_MESSAGES", 20_000)?,
                batch_max_bytes: parse(src, "DV_INGEST_BATCH_MAX_BYTES", 8 * 1024 * 1024)?,
                batch_max_delta_rows: parse(src, "DV_INGEST_BATCH_MAX_DELTA_ROWS", 60_000)?,
                batch_max_wait: Duration::from_millis(parse(src, "DV_INGEST_BATCH_MAX_WAIT_MS", 100)?),
                trace_lane: parse(src, "DV_INGEST_TRACE_LANE", true)?,
                synchronous_commit: parse(src, "DV_INGEST_SYNCHRONOUS_COMMIT", true)?,
                align_max_ahead: Some(Duration::from_secs(parse(src, "DV_INGEST_ALIGN_MAX_AHEAD_SECS", 86_400)?))
                    .filter(|d| !d.is_zero()),
                client_overrides,
                consumer_overrides,
            },
            http: HttpSettings {
                addr: parse(src, "DV_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
                metrics_addr: parse(src, "DV_METRICS_ADDR", SocketAddr::from(([127, 0, 0, 1], 9464)))?,
                cache_ttl: Duration::from_millis(parse(src, "DV_CACHE_TTL_MS", 2_000)?),
                cache_version_poll: Duration::from_millis(parse(src, "DV_CACHE_VERSION_POLL_MS", 100)?.max(1)),
                reads: Policy {
                    rate: parse(src, "DV_RATE_LIMIT_READS_PER_SEC", READS.rate)?,
                    burst: parse(src, "DV_RATE_LIMIT_READS_BURST", READS.burst)?,
                    ..READS
                },
                shap: per_minute(src, "DV_RATE_LIMIT_SHAP_PER_MIN", SHAP)?,
                narrative: per_minute(src, "DV_RATE_LIMIT_NARRATIVE_PER_MIN", NARRATIVE)?,
                request_timeout: millis(src, "DV_HTTP_REQUEST_TIMEOUT_MS", 10_000)?,
                header_read_timeout: millis(src, "DV_HTTP_HEADER_READ_TIMEOUT_MS", 10_000)?,
            },
            api: ApiLimits {
                statement_timeout: millis(src, "DV_API_STATEMENT_TIMEOUT_MS", 5_000)?,
                // One computation holds at least one connection: more than the pool has only
                // queue inside the pool, out of sight of the 503 that tells clients to back off.
                max_concurrent_computations: parse(
                    src,
                    "DV_API_MAX_CONCURRENT_COMPUTATIONS",
                    parse::<usize>(src, "DV_API_DATABASE_MAX_CONNECTIONS", API_POOL_DEFAULT as usize)?,
                )?,
                queue_timeout: millis(src, "DV_API_QUEUE_TIMEOUT_MS", 500)?,
                max_offset: parse(src, "DV_API_MAX_OFFSET", 100_000)?,
            },
            ingest: IngestLimits {
                max_event_bytes: parse(src, "DV_MAX_EVENT_BYTES", 256 * 1024)?,
                max_catalog_event_bytes: parse(src, "DV_MAX_CATALOG_EVENT_BYTES", 16 * 1024 * 1024)?,
                retention_days: parse(src, "DV_RETENTION_DAYS", 400)?,
                dedup_horizon_days: parse(src, "DV_DEDUP_HORIZON_DAYS", 7)?,
                trace_retention_days: parse(src, "DV_TRACE_RETENTION_DAYS", 30)?,
                dead_letter_retention_days: parse(src, "DV_DEAD_LETTER_RETENTION_DAYS", 30)?,
                max_candidates_per_trace: parse(src, "DV_MAX_CANDIDATES_PER_TRACE", 1_000)?,
                max_segments_per_customer: parse(src, "DV_MAX_SEGMENTS_PER_CUSTOMER", 100)?,
            },
            llm: LlmSettings {
                url: src.get("DV_LLM_URL"),
                model: src.get("DV_LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                api_key: src.get("DV_LLM_API_KEY").map(Secret::new),
                timeout: millis(src, "DV_LLM_TIMEOUT_MS", 30_000)?,
                cache_ttl: Duration::from_secs(parse(src, "DV_NARRATIVE_CACHE_TTL_SECS", 7 * 24 * 3600)?),
            },
        };
        s.check_api_limits()?;
        s.ingest_config().validate().map_err(anyhow::Error::msg)?;
        let i = &s.ingest;
        if [i.retention_days, i.dedup_horizon_days, i.trace_retention_days, i.dead_letter_retention_days]
            .iter()
            .any(|d| *d < 1)
        {
            anyhow::bail!(
                "DV_RETENTION_DAYS, DV_DEDUP_HORIZON_DAYS, DV_TRACE_RETENTION_DAYS and DV_DEAD_LETTER_RETENTION_DAYS must be at least 1"
            );
        }
        if i.max_candidates_per_trace < 1 {
            anyhow::bail!("DV_MAX_CANDIDATES_PER_TRACE must be at least 1");
        }
        Ok(s)
    }

    /// Cross-field rules of the API bounds. The statement timeout must end a slow query before
    /// the request timeout drops its request: a dropped request does not stop its query, which
    /// would keep running in PostgreSQL for nobody.
    fn check_api_limits(&self) -> anyhow::Result<()> {
        let (api, http) = (&self.api, &self.http);
        if self.database.api_max_connections == 0 || api.max_concurrent_computations == 0 {
            anyhow::bail!("DV_API_DATABASE_MAX_CONNECTIONS and DV_API_MAX_CONCURRENT_COMPUTATIONS must be at least 1");
        }
        if api.statement_timeout >= http.request_timeout {
            anyhow::bail!("DV_API_STATEMENT_TIMEOUT_MS must be below DV_HTTP_REQUEST_TIMEOUT_MS");
        }
        if api.queue_timeout >= http.request_timeout {
            anyhow::bail!("DV_API_QUEUE_TIMEOUT_MS must be below DV_HTTP_REQUEST_TIMEOUT_MS");
        }
        if api.max_offset < 0 {
            anyhow::bail!("DV_API_MAX_OFFSET must not be negative");
        }
        Ok(())
    }

    pub fn ingest_config(&self) -> IngestConfig {
        let k = &self.kafka;
        IngestConfig {
            brokers: k.brokers.clone(),
            group_id: k.group_id.clone(),
            instance_id: k.instance_id.clone(),
            topics: k.topics.iter().map(|(kind, name)| (name.clone(), *kind)).collect(),
            batch_max_messages: k.batch_max_messages,
            batch_max_bytes: k.batch_max_bytes,
            batch_max_weight: k.batch_max_delta_rows,
            batch_max_wait: k.batch_max_wait,
            session_timeout: k.session_timeout,
            drain_timeout: k.drain_timeout,
            orphan_after: k.orphan_after,
            decode: DecodeLimits {
                max_event_bytes: self.ingest.max_event_bytes,
                max_catalog_event_bytes: self.ingest.max_catalog_event_bytes,
                max_future: chrono::Duration::hours(1),
                retention: chrono::Duration::days(self.ingest.retention_days),
                max_candidates: self.ingest.max_candidates_per_trace,
            },
            overrides: k
                .client_overrides
                .iter()
                .chain(&k.consumer_overrides)
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
            trace_retention_days: self.ingest.trace_retention_days,
            max_segments: self.ingest.max_segments_per_customer,
            separate_trace_lane: k.trace_lane,
            synchronous_commit: k.synchronous_commit,
            align_max_ahead: k.align_max_ahead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_bounds_are_checked_against_the_request_timeout() {
        let mut s = Settings::from_env().expect("the defaults are valid");
        assert!(s.api.statement_timeout < s.http.request_timeout && s.api.queue_timeout < s.http.request_timeout);
        assert_eq!(s.api.max_concurrent_computations, s.database.api_max_connections as usize, "tied by default");
        s.api.statement_timeout = s.http.request_timeout;
        assert!(s.check_api_limits().unwrap_err().to_string().contains("DV_API_STATEMENT_TIMEOUT_MS"));
        let mut s = Settings::from_env().unwrap();
        s.api.queue_timeout = s.http.request_timeout * 2;
        assert!(s.check_api_limits().unwrap_err().to_string().contains("DV_API_QUEUE_TIMEOUT_MS"));
        let mut s = Settings::from_env().unwrap();
        s.api.max_concurrent_computations = 0;
        assert!(s.check_api_limits().is_err());
    }
}
