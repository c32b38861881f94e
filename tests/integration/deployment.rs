//! The deployment files (issue 16), checked where no Docker engine runs: `docker/compose.yaml`
//! against the Compose Specification's JSON Schema, every image pinned, Prometheus scraping
//! every process the compose file runs, the Grafana dashboard reading metrics the processes
//! really export (after a workload, from a live `/metrics`), and the image built from
//! everything the binary embeds (the jemalloc options of `.cargo/config.toml` among them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::ts;
use crate::tenant_scope::rust_sources;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"].as_object().expect("services")
}

/// The port of an address setting (`0.0.0.0:8080`) in the services' shared environment.
fn port_of(compose: &Value, variable: &str) -> u16 {
    let env = &services(compose)["decision-views"]["environment"];
    let addr = env[variable].as_str().unwrap_or_else(|| panic!("{variable} in {env}"));
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_compose_file_conforms_to_the_compose_specification() {
    let compose = yaml("docker/compose.yaml");
    let mut schema: Value = serde_json::from_str(&read("tests/deployment/compose-spec.json")).unwrap();
    // Its `$id` is a bare file name, which is not a base URI to resolve `#/definitions/…` on,
    // and its `$schema` names draft 7 without the trailing `#` the validator knows it by.
    let object = schema.as_object_mut().unwrap();
    object.remove("$id");
    object.insert("$schema".into(), json!("http://json-schema.org/draft-07/schema#"));
    let validator = jsonschema::validator_for(&schema).expect("the specification's schema compiles");
    let errors: Vec<String> = validator.iter_errors(&compose).map(|e| format!("{}: {e}", e.instance_path)).collect();
    assert!(errors.is_empty(), "docker/compose.yaml: {errors:#?}");
    // A control: the schema does refuse what the specification does not allow.
    let mut misspelt = compose.clone();
    misspelt["services"]["redis"]["imagee"] = json!("redis");
    assert!(!validator.is_valid(&misspelt));

    for (name, service) in services(&compose) {
        // Every image pinned to a version (a tag with a digit; never `latest` or a bare major).
        if let Some(image) = service["image"].as_str() {
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(tag.contains('.') && tag.chars().any(|c| c.is_ascii_digit()), "{name}: {image} is not pinned");
        } else {
            assert_eq!(service["build"]["dockerfile"], "docker/Dockerfile", "{name}");
        }
        // Every file a service mounts is in the repository.
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with("./") {
                assert!(root().join("docker").join(source).exists(), "{name} mounts {source}, which is missing");
            }
        }
    }
}

#[test]
fn prometheus_scrapes_every_process_the_compose_file_runs() {
    let compose = yaml("docker/compose.yaml");
    let prometheus = yaml("docker/prometheus.yml");
    let jobs = prometheus["scrape_configs"].as_array().unwrap();
    let (http, metrics) = (port_of(&compose, "DV_HTTP_ADDR"), port_of(&compose, "DV_METRICS_ADDR"));
    // Each process of the service, by its command: where it serves /metrics.
    for (name, service) in services(&compose) {
        let command = service["command"][0].as_str().unwrap_or("");
        let port = match command {
            "run" | "api" => http,
            "ingest" => metrics,
            _ => continue,
        };
        let scraped = jobs.iter().any(|job| {
            let statics = job["static_configs"].as_array().into_iter().flatten();
            let by_name =
                statics.flat_map(|s| s["targets"].as_array().unwrap()).any(|t| t == &json!(format!("{name}:{port}")));
            // DNS discovery: every replica of a scaled service.
            let dns = job["dns_sd_configs"].as_array().into_iter().flatten();
            let by_dns = dns
                .filter(|d| d["port"] == json!(port))
                .any(|d| d["names"].as_array().unwrap().iter().any(|n| n == &json!(name)));
            (by_name || by_dns) && job["metrics_path"].as_str().unwrap_or("/metrics") == "/metrics"
        });
        assert!(scraped, "{name} ({command}) serves /metrics on {port}; no scrape job reaches it");
    }
}

/// Metric names in a PromQL expression (ours all start with these prefixes); a histogram's
/// series by its name.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| ["ingest_", "api_", "http_"].iter().any(|p| t.starts_with(p)))
        .map(|t| t.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_reads_metrics_the_processes_export() {
    let dashboard: Value = serde_json::from_str(&read("docker/grafana/dashboards/decision-views.json")).unwrap();
    let datasources = yaml("docker/grafana/provisioning/datasources/prometheus.yaml");
    let uid = datasources["datasources"][0]["uid"].clone();
    let panels = dashboard["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels.iter().map(|p| p["title"].as_str().unwrap()).collect();
    for subject in ["lag", "Freshness", "Throughput", "Dead letters", "API latency"] {
        assert!(titles.iter().any(|t| t.contains(subject)), "no panel on {subject}: {titles:?}");
    }
    let mut names = Vec::new();
    for p in panels {
        assert_eq!(p["datasource"]["uid"], uid, "{}: the provisioned datasource", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            names.extend(metric_names(t["expr"].as_str().unwrap()));
        }
    }
    names.sort();
    names.dedup();
    // Every name is one the code records…
    let code: String = rust_sources().into_iter().map(|(_, text)| text).collect();
    for name in &names {
        assert!(code.contains(&format!("\"{name}\"")), "the dashboard reads {name}, which no code records");
    }

    // …and, after a workload with an event applied, a duplicate, a dead letter and reads, a
    // live /metrics has each of those the workload makes (rate limits, server refusals and
    // commit retries only appear when they happen).
    let app = spawn_app().await;
    let impression = json!({"id": "i1", "tenantId": "acme", "customerId": "c1", "offerId": "o1", "channelId": "web",
                            "outcome": "impression", "occurredAt": ts(Utc::now())});
    app.env.publish(TopicKind::Interactions, &impression);
    app.env.publish(TopicKind::Interactions, &impression);
    app.env.publish_raw(TopicKind::Interactions, "acme:c1", b"not json");
    app.env.wait_caught_up(Duration::from_secs(60)).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    assert_eq!(app.get("/api/v1/dashboard-data?type=summary", &key, "acme").await.0, 200);
    let occasional = ["api_rate_limited_total", "api_refused_total", "ingest_commit_retries_total"];
    let expected: Vec<&String> = names.iter().filter(|n| !occasional.contains(&n.as_str())).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        let missing: Vec<&&String> =
            expected.iter().filter(|n| !text.lines().any(|l| l.starts_with(&format!("# TYPE {n} ")))).collect();
        if missing.is_empty() {
            break;
        }
        // The lag gauge follows librdkafka's statistics (every second), freshness the first catch-up.
        assert!(Instant::now() < deadline, "the dashboard reads {missing:?}, absent from /metrics:\n{text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn the_image_is_built_from_everything_the_binary_embeds() {
    let dockerfile = read("docker/Dockerfile");
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY ").filter(|rest| !rest.starts_with("--from")))
        .flat_map(|rest| {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    // Read at compile time: the sources, the migrations (sqlx::migrate!), the event schemas,
    // the page (include_bytes!), and jemalloc's options (.cargo/config.toml's [env]).
    for needed in ["Cargo.toml", "Cargo.lock", ".cargo", "src", "consumers", "migrations", "schemas", "web"] {
        assert!(copied.contains(&needed), "the image build does not copy {needed}: {copied:?}");
        assert!(root().join(needed).exists(), "{needed}");
    }
    assert!(read(".cargo/config.toml").contains("JEMALLOC_SYS_WITH_MALLOC_CONF"));
    // Base images pinned to a version.
    for arg in ["RUST_IMAGE", "RUNTIME_IMAGE"] {
        let line = dockerfile.lines().find(|l| l.starts_with(&format!("ARG {arg}="))).unwrap();
        let tag = line.rsplit(':').next().unwrap();
        assert!(tag.contains('.') && tag.chars().next().is_some_and(|c| c.is_ascii_digit()), "{line}");
    }
}
