//! What an operator sees of requests and ingest (issue 16): a request id on every answer and in
//! the access log line of the request (which `RUST_LOG` switches off), metrics with HELP lines
//! and histogram buckets that fit what they count, and an ingest-only process's own probes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::json;

use decision_views::startup::{Application, Mode};

use crate::helpers::{spawn_app, TestEnv};
use crate::model::{catalog, ts};

/// Runs `decision-views api` with `rust_log`, sends `/healthz` with `request_id`, and returns
/// what the process wrote on stderr and the `X-Request-Id` it answered.
async fn api_process(env: &TestEnv, rust_log: &str, request_id: &str) -> (String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_decision-views"))
        .arg("api")
        .env_clear()
        .envs(env.env_vars())
        .env("DV_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the api process");
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answered = loop {
        let sent = client.get(format!("{address}/healthz")).header("X-Request-Id", request_id).send().await;
        if let Ok(r) = sent.as_ref().map(|r| r.status().as_u16() == 200) {
            if r {
                break sent.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned();
            }
        }
        assert!(Instant::now() < deadline, "the api process never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("the process ends")).await.unwrap();
    (String::from_utf8_lossy(&out.stderr).into_owned(), answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_has_an_id_in_its_answer_and_its_access_log_line() {
    let env = TestEnv::new().await;
    let (log, answered) = api_process(&env, "info", "report-4711").await;
    assert_eq!(answered, "report-4711", "the client's id is kept");
    let line = log.lines().find(|l| l.contains("report-4711")).unwrap_or_else(|| panic!("no access line in:\n{log}"));
    for part in ["decision_views::access", "method=GET", "uri=/healthz", "status=200"] {
        assert!(line.contains(part), "{part} in {line}");
    }
    let (log, _) = api_process(&env, "info,decision_views::access=off", "quiet-1").await;
    assert!(!log.contains("quiet-1"), "the access log is switched off:\n{log}");

    // In-process: a request without an id gets a new one, different each time.
    let app = spawn_app().await;
    let id = |r: reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let a = id(app.client.get(format!("{}/healthz", app.address)).send().await.unwrap());
    let b = id(app.client.get(format!("{}/api/v1/nothing", app.address)).send().await.unwrap());
    assert!(a.len() == 32 && b.len() == 32 && a != b, "{a} {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_help_lines_and_batch_sizes_fall_in_count_buckets() {
    let app = spawn_app().await;
    for i in 0..30 {
        let offer =
            catalog("acme", "offer", &format!("off_{i}"), "upsert", Some(1), json!({"name": "O", "status": "active"}));
        app.env.publish(TopicKind::Catalog, &offer);
    }
    app.env.publish(
        TopicKind::Interactions,
        &json!({"id": "i1", "tenantId": "acme", "customerId": "c1",
        "offerId": "off_1", "channelId": "email", "outcome": "impression", "occurredAt": ts(chrono::Utc::now())}),
    );
    app.env.wait_caught_up(Duration::from_secs(60)).await;
    let key = app.env.api_key("acme", Role::Viewer).await;
    assert_eq!(app.get("/api/v1/dashboard-data?type=summary", &key, "acme").await.0, 200);
    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    for name in [
        "ingest_batch_messages",
        "ingest_commit_seconds",
        "ingest_events_applied_total",
        "http_request_duration_seconds",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP line for {name}");
    }
    // Count buckets (with the seconds' buckets, whose largest is 10, any batch of more than 10
    // messages was only in +Inf): every batch of the tests is within the largest, 100,000.
    let bucket = |le: &str| -> f64 {
        let line =
            text.lines().find(|l| l.starts_with("ingest_batch_messages_bucket") && l.contains(&format!("le=\"{le}\"")));
        line.unwrap_or_else(|| panic!("no bucket {le}")).rsplit(' ').next().unwrap().parse().unwrap()
    };
    let count = bucket("+Inf");
    assert!(count >= 1.0 && bucket("100000") == count && bucket("1000") <= count, "{text}");
    // Commit latency per lane (the interactions' lane is "events"), and the views' freshness.
    assert!(text.contains("ingest_commit_seconds_count{lane=\"events\"}"), "{text}");
    // (Set once every partition has been seen caught up: the next statistics tick, ~1 s.)
    let deadline = Instant::now() + Duration::from_secs(15);
    let freshness: f64 = loop {
        let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix("ingest_freshness_seconds ")) {
            break v.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no freshness gauge");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!((0.0..60.0).contains(&freshness), "caught up moments ago: {freshness}");
    let routed = text.lines().any(|l| {
        l.starts_with("http_request_duration_seconds_count")
            && l.contains("type=\"summary\"")
            && l.contains("status=\"200\"")
    });
    assert!(routed, "the dashboard read is counted per type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_process_serves_its_probes_and_metrics() {
    let env = TestEnv::new().await;
    let app = Application::build(env.settings(), Mode::Ingest).await.expect("builds");
    assert_eq!(app.port(), None, "no API port");
    let ops = format!("http://127.0.0.1:{}", app.ops_port().expect("a probes port"));
    let shutdown = app.shutdown_token();
    let running = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{ops}/healthz")).send().await.unwrap().status(), 200);

    // Ready once every lane's group holds its assignment.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        let r = client.get(format!("{ops}/readyz")).send().await.unwrap();
        let (status, body) = (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap());
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(body["error"].is_string() && body["groups"].is_array(), "{body}");
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let groups = ready["groups"].as_array().unwrap();
    assert!(!groups.is_empty(), "{ready}");
    let partitions: i64 = groups.iter().map(|g| g["partitions"].as_i64().expect("assigned")).sum();
    let expected: i32 = TopicKind::ALL.iter().map(|k| crate::helpers::partitions(*k)).sum();
    assert_eq!(partitions, i64::from(expected), "the only member holds every partition: {ready}");

    env.publish(
        TopicKind::Interactions,
        &json!({"id": "i1", "tenantId": "acme", "customerId": "c1",
        "offerId": "off_1", "channelId": "email", "outcome": "impression", "occurredAt": ts(chrono::Utc::now())}),
    );
    env.wait_caught_up(Duration::from_secs(60)).await;
    let metrics = client.get(format!("{ops}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ingest_events_applied_total{topic=\""), "{metrics}");
    assert_eq!(client.get(format!("{ops}/api/v1/dashboard-data")).send().await.unwrap().status(), 404);
    shutdown.cancel();
    running.await.unwrap().expect("a clean stop");
}

/// The offsets PostgreSQL committed reach the Kafka group too (read here as lag tools read
/// them, with an offset fetch of the group), for every partition of both lanes' groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_are_mirrored_to_the_kafka_group() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let app = spawn_app().await;
    for i in 0..20 {
        app.env.publish(
            TopicKind::Interactions,
            &json!({"id": format!("i{i}"), "tenantId": "acme",
            "customerId": format!("c{i}"), "offerId": "off_1", "channelId": "email", "outcome": "impression",
            "occurredAt": ts(chrono::Utc::now())}),
        );
    }
    app.env.publish(TopicKind::DecisionTraces, &crate::explain::trace("acme", "t1"));
    app.env.wait_caught_up(Duration::from_secs(60)).await;
    let stored: Vec<(String, i32, i64)> = sqlx::query_as("SELECT topic, partition, next_offset FROM consumer_offsets")
        .fetch_all(&app.env.pool)
        .await
        .unwrap();
    assert!(stored.iter().any(|(_, _, n)| *n > 0), "{stored:?}");
    let traces = app.env.topic(TopicKind::DecisionTraces).to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut behind = Vec::new();
        for (group, lane_has) in [(app.env.group_id.clone(), false), (format!("{}.traces", app.env.group_id), true)] {
            let fetcher: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &app.env.servers.brokers)
                .set("group.id", &group)
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            for (topic, partition, _) in stored.iter().filter(|(t, _, _)| (*t == traces) == lane_has) {
                tpl.add_partition(topic, *partition);
            }
            let got = fetcher.committed_offsets(tpl, Duration::from_secs(10)).expect("offset fetch");
            for (topic, partition, next) in stored.iter().filter(|(t, _, _)| (*t == traces) == lane_has) {
                let offset = got.find_partition(topic, *partition).map(|e| e.offset());
                if offset != Some(Offset::Offset(*next)) {
                    behind.push((group.clone(), topic.clone(), *partition, *next, offset));
                }
            }
        }
        if behind.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the group's offsets differ from PostgreSQL's: {behind:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
