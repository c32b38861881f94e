//! Every environment variable the service reads, for `--help`. README "Configuration" says
//! more of each; the tests below keep the three (the code, this list, the README) in step.

/// (name, default, meaning).
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("DV_CONFIG", "unset", "a TOML file of these settings by name (`--config`); the environment wins"),
    ("DV_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/decision_views", "PostgreSQL"),
    ("DV_DATABASE_MAX_CONNECTIONS", "10", "pool of ingest, the janitor and migrations"),
    ("DV_API_DATABASE_MAX_CONNECTIONS", "10", "the API's own pool (statement timeout)"),
    ("DV_API_STATEMENT_TIMEOUT_MS", "5000", "statement_timeout of API queries (→ 504)"),
    ("DV_API_MAX_CONCURRENT_COMPUTATIONS", "pool size", "uncached computations at once per process"),
    ("DV_API_QUEUE_TIMEOUT_MS", "500", "wait for a computation slot before 503"),
    ("DV_API_MAX_OFFSET", "100000", "largest `offset` of paginated endpoints"),
    ("DV_REDIS_URL", "redis://127.0.0.1:6379", "response and narrative cache; empty: in-process"),
    ("DV_CACHE_TTL_MS", "2000", "cached answer lifetime; 0 disables the cache"),
    ("DV_CACHE_VERSION_POLL_MS", "100", "how often the views' data version is read"),
    ("DV_RATE_LIMIT_READS_PER_SEC", "100", "per-tenant reads per second …"),
    ("DV_RATE_LIMIT_READS_BURST", "200", "… and burst (then 429)"),
    ("DV_RATE_LIMIT_SHAP_PER_MIN", "30", "per-tenant SHAP computations a minute"),
    ("DV_RATE_LIMIT_NARRATIVE_PER_MIN", "20", "per-tenant narratives a minute"),
    ("DV_LLM_URL", "unset", "OpenAI-compatible API for narratives; unset: template writer"),
    ("DV_LLM_MODEL", "gpt-4o-mini", "the model asked"),
    ("DV_LLM_API_KEY", "unset", "its bearer key (never printed)"),
    ("DV_LLM_TIMEOUT_MS", "30000", "a provider call past it → 502"),
    ("DV_NARRATIVE_CACHE_TTL_SECS", "604800", "how long a narrative stays cached"),
    ("DV_KAFKA_BROKERS", "127.0.0.1:9092", "bootstrap servers"),
    ("DV_KAFKA_GROUP_ID", "decision-views", "consumer group of the ingest processes"),
    ("DV_INSTANCE_ID", "pid-<pid>", "this process's name (offsets owner, client id)"),
    ("DV_TOPIC_DECISION_TRACES", "decision-traces", "topic name"),
    ("DV_TOPIC_INTERACTIONS", "interactions", "topic name"),
    ("DV_TOPIC_CATALOG", "catalog", "topic name"),
    ("DV_TOPIC_SEGMENT_MEMBERSHIP", "segment-membership", "topic name"),
    ("DV_TOPIC_SUPPRESSIONS", "suppressions", "topic name"),
    ("DV_TOPIC_ATTRIBUTIONS", "attributions", "topic name"),
    ("DV_TOPIC_MODEL_METRICS", "model-metrics", "topic name"),
    ("DV_KAFKA_SESSION_TIMEOUT_MS", "10000", "consumer group session timeout"),
    ("DV_INGEST_DRAIN_TIMEOUT_MS", "5000", "how long a revoke waits for batches in flight"),
    ("DV_INGEST_ORPHAN_AFTER_MS", "30000", "an unowned partition this long makes the process rejoin"),
    ("DV_INGEST_BATCH_MAX_MESSAGES", "20000", "a batch closes at this many messages …"),
    ("DV_INGEST_BATCH_MAX_BYTES", "8388608", "… or payload bytes held (a trace's compressed) …"),
    ("DV_INGEST_BATCH_MAX_DELTA_ROWS", "60000", "… or delta rows …"),
    ("DV_INGEST_BATCH_MAX_WAIT_MS", "100", "… or this long after its first message"),
    ("DV_INGEST_TRACE_LANE", "true", "decision traces in a pipeline (and consumer group) of their own"),
    ("DV_INGEST_SYNCHRONOUS_COMMIT", "true", "false: batches commit without waiting for the WAL flush (README)"),
    (
        "DV_INGEST_ALIGN_MAX_AHEAD_SECS",
        "86400",
        "a partition this far (event time) past its topic's oldest waits; 0: off",
    ),
    ("DV_KAFKA_CLIENT_<PROPERTY>", "unset", "a librdkafka property of every Kafka client (security, for one)"),
    ("DV_KAFKA_CONSUMER_<PROPERTY>", "unset", "any librdkafka consumer property, dots as underscores"),
    ("DV_MAX_EVENT_BYTES", "262144", "larger messages are dead-lettered (too_large) …"),
    ("DV_MAX_CATALOG_EVENT_BYTES", "16777216", "… the catalog topic's limit (models)"),
    ("DV_MAX_CANDIDATES_PER_TRACE", "1000", "longer trace arrays are dead-lettered"),
    ("DV_MAX_SEGMENTS_PER_CUSTOMER", "100", "segments an event counts in"),
    ("DV_RETENTION_DAYS", "400", "older event times are dead-lettered"),
    ("DV_DEDUP_HORIZON_DAYS", "7", "an applied event id is remembered at least this long (up to DV_RETENTION_DAYS)"),
    ("DV_TRACE_RETENTION_DAYS", "30", "raw traces kept"),
    ("DV_DEAD_LETTER_RETENTION_DAYS", "30", "dead letters kept"),
    ("DV_HTTP_ADDR", "127.0.0.1:8080", "API listen address"),
    ("DV_METRICS_ADDR", "127.0.0.1:9464", "an `ingest` process's /healthz, /readyz, /metrics"),
    ("DV_HTTP_REQUEST_TIMEOUT_MS", "10000", "a request not answered by then → 504"),
    ("DV_HTTP_HEADER_READ_TIMEOUT_MS", "10000", "idle or slow connections are closed after it"),
    ("DV_LOG_FORMAT", "text", "`json` for JSON log lines"),
    ("RUST_LOG", "info,rdkafka=warn,sqlx=warn", "log filter"),
    (
        "_RJEM_MALLOC_CONF",
        "narenas:1,background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0",
        "jemalloc options (compiled in; set, they override)",
    ),
];

/// The `--help` epilogue: every variable with its default.
pub fn text() -> String {
    let width = VARIABLES.iter().map(|(name, _, _)| name.len()).max().unwrap_or(0);
    let mut s = String::from("Environment (README \"Configuration\" says more of each):\n");
    for (name, default, meaning) in VARIABLES {
        s.push_str(&format!("  {name:<width$}  {meaning} [default: {default}]\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::VARIABLES;

    fn listed(name: &str) -> bool {
        VARIABLES.iter().any(|(n, _, _)| *n == name || (name.ends_with('_') && n.starts_with(name)))
    }

    /// Every `"DV_…"` the code reads is listed here, and every listed one is in the README.
    #[test]
    fn every_variable_is_in_help_and_in_the_readme() {
        let sources = [include_str!("mod.rs"), include_str!("../telemetry.rs")];
        let mut read = Vec::new();
        for source in sources {
            for piece in source.split("\"DV_").skip(1) {
                let name: String =
                    piece.chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
                read.push(format!("DV_{name}"));
            }
        }
        assert!(read.len() > 40, "the scan finds the variables: {read:?}");
        for name in &read {
            assert!(listed(name), "{name} is read but not in --help");
        }
        let readme = include_str!("../../README.md");
        for (name, _, _) in VARIABLES {
            assert!(readme.contains(&format!("`{name}`")), "{name} is not in README \"Configuration\"");
        }
    }

    /// The jemalloc options `--help` and the README name are the ones compiled in.
    #[test]
    fn the_listed_jemalloc_options_are_the_compiled_ones() {
        let (_, default, _) = VARIABLES.iter().find(|(n, _, _)| *n == "_RJEM_MALLOC_CONF").expect("listed");
        let config = include_str!("../../.cargo/config.toml");
        assert!(config.contains(&format!("JEMALLOC_SYS_WITH_MALLOC_CONF = \"{default}\"")), "{default}");
        assert!(include_str!("../../README.md").contains(&format!("`{default}`")));
    }
}
