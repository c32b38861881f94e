//! Dead-letter replay and purge (issue 17), through the CLI and the admin API against the real
//! broker and PostgreSQL: letters refused under a limit are applied exactly once after the
//! limit is raised (one of them read again from Kafka, since its letter kept only 64 KiB), so
//! is a range the consumer could not deliver, a letter still bad is marked rejected and kept,
//! and a purge deletes what its filter names.

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::recovery::dead_letters::{Filter, Replayer};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with_settings, TestApp, TestEnv};
use crate::model::ts;
use crate::wire;

fn impression(id: &str, padding: usize) -> Value {
    json!({"id": id, "tenantId": "acme", "customerId": "c1", "offerId": "o1", "channelId": "web",
           "outcome": "impression", "occurredAt": ts(Utc::now() - chrono::Duration::minutes(1)),
           "padding": "x".repeat(padding)})
}

fn cli(env: &TestEnv, extra_env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_decision-views"))
        .args(args)
        .env_clear()
        .envs(env.env_vars())
        .envs(extra_env.iter().copied())
        .output()
        .expect("run the binary");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

async fn impressions(app: &TestApp, key: &str) -> i64 {
    let (status, body) = app.get("/api/v1/dashboard-data?type=acceptance_rate&days=1", key, "acme").await;
    assert_eq!(status, 200, "{body}");
    body["data"][0]["impressions"].as_i64().unwrap_or(0)
}

/// The count once the API has seen the change: cached answers last until its next poll of the
/// data version (`DV_CACHE_VERSION_POLL_MS`), which a replay moves.
async fn settles_at(app: &TestApp, key: &str, want: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while impressions(app, key).await != want {
        assert!(std::time::Instant::now() < deadline, "impressions never reached {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_replayed_exactly_once_and_purged() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.ingest.max_event_bytes = 8 * 1024;
    let raised = settings.clone();
    settings.kafka.consumer_overrides.extend(wire::SMALL_RECEIVE.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let app = spawn_app_with_settings(env, settings).await;
    let env = &app.env;
    let viewer = env.api_key("acme", Role::Viewer).await;
    let admin = env.api_key("acme", Role::Admin).await;

    // 3 fit; 2 are over the 8 KiB limit, one of them over the 64 KiB a letter keeps; 1 is bad.
    for i in 0..3 {
        env.publish(TopicKind::Interactions, &impression(&format!("ok-{i}"), 10));
    }
    env.publish(TopicKind::Interactions, &impression("big", 20 * 1024));
    env.publish(TopicKind::Interactions, &impression("huge", 100 * 1024));
    env.publish_raw(TopicKind::Interactions, "acme:c1", b"{\"tenantId\": \"acme\", not json");
    env.flush();
    // And 3 good ones in a batch this consumer cannot deliver (see `wire`).
    let range: Vec<(Vec<u8>, Vec<u8>)> =
        (0..3).map(|i| (b"acme:c1".to_vec(), impression(&format!("range-{i}"), 10).to_string().into_bytes())).collect();
    let topic = env.topic(TopicKind::Interactions).to_owned();
    assert_eq!(wire::produce(&env.servers.brokers, &topic, 0, &wire::undeliverable_batch(&range)), 0);
    env.wait_caught_up(Duration::from_secs(60)).await;
    assert_eq!(impressions(&app, &viewer).await, 3);
    let kept: Vec<(String, Option<i32>, Option<i64>)> =
        sqlx::query_as("SELECT reason, octet_length(payload), payload_size FROM dead_letters ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(kept.len(), 4, "{kept:?}");
    assert!(kept.iter().any(|(r, len, size)| r == "too_large" && len.map(i64::from) < *size), "one cut: {kept:?}");
    assert!(kept.iter().any(|(r, len, _)| r == "undeliverable" && len.is_none()), "{kept:?}");

    // Still under the old limit: rejected again, kept, and tried again later.
    let (ok, out) = cli(env, &[("DV_MAX_EVENT_BYTES", "8192")], &["dead-letters", "replay", "--reason", "too_large"]);
    assert!(ok && out.contains("2 matched: 0 applied, 2 rejected again"), "{out}");
    assert_eq!(impressions(&app, &viewer).await, 3);

    // The limit raised: both apply, the cut one read back from Kafka; concurrently with an API
    // replay of the same letters, and still each once.
    let mut raised = raised;
    raised.ingest.max_event_bytes = 256 * 1024;
    let replayer = Replayer::for_deployment(&raised).unwrap();
    let filter = Filter { tenant: Some("acme".into()), reason: Some("too_large".into()), ..Filter::default() };
    let every_tenant = Filter { tenant: None, ..filter.clone() };
    let (a, b) = tokio::join!(replayer.replay(&env.pool, &filter), replayer.replay(&env.pool, &every_tenant));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.applied + b.applied, 2, "each letter applied by one replay: {a:?} {b:?}");
    settles_at(&app, &viewer, 5).await;
    let (ok, out) = cli(env, &[("DV_MAX_EVENT_BYTES", "262144")], &["dead-letters", "replay", "--reason", "too_large"]);
    assert!(ok && out.contains("0 matched"), "applied letters are not replayed again: {out}");
    assert_eq!(impressions(&app, &viewer).await, 5);

    // The range, replayed by a client without the consumer's bound: read from Kafka, applied.
    let undeliverable = Filter { reason: Some("undeliverable".into()), ..Filter::default() };
    let report = replayer.replay(&env.pool, &undeliverable).await.unwrap();
    assert_eq!(
        (report.applied, report.outcomes[0].detail.as_str()),
        (1, "3 event(s) applied, 0 already applied (duplicates)")
    );
    settles_at(&app, &viewer, 8).await;

    // The admin API: the bad JSON is refused again, and listed with its outcome.
    let (status, body, _) =
        app.post("/api/v1/dead-letters/replay", &admin, "acme", &json!({"reason": "invalid_json"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["matched"].as_i64(), body["rejected"].as_i64()), (Some(1), Some(1)), "{body}");
    assert!(body["outcomes"][0]["detail"].as_str().unwrap().starts_with("invalid_json"), "{body}");
    let (status, list) = app.get("/api/v1/dead-letters", &admin, "acme").await;
    assert_eq!(status, 200, "{list}");
    let outcomes: Vec<(String, String)> = list["deadLetters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["reason"].as_str().unwrap().into(), d["replayOutcome"].as_str().unwrap_or("-").into()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("invalid_json".into(), "rejected".into()),
            ("too_large".into(), "applied".into()),
            ("too_large".into(), "applied".into())
        ],
        "kept, newest first, with outcomes"
    );
    let viewer_replay = app.post("/api/v1/dead-letters/replay", &viewer, "acme", &json!({})).await;
    assert_eq!(viewer_replay.0, 403, "admins only");
    let bad_body = app.post("/api/v1/dead-letters/purge", &admin, "acme", &json!({"reasons": ["x"]})).await;
    assert_eq!(bad_body.0, 400, "unknown fields refused: {:?}", bad_body.1);

    // Purge: the filter's letters only; the CLI refuses an unfiltered purge without --all.
    let (status, body, _) = app.post("/api/v1/dead-letters/purge", &admin, "globex", &json!({})).await;
    assert_eq!((status, body["purged"].as_i64()), (403, None), "a key of another tenant: {body}");
    let (status, body, _) =
        app.post("/api/v1/dead-letters/purge", &admin, "acme", &json!({"reason": "invalid_json"})).await;
    assert_eq!((status, body["purged"].as_i64()), (200, Some(1)), "{body}");
    let (ok, out) = cli(env, &[], &["dead-letters", "purge"]);
    assert!(!ok && out.contains("--all"), "{out}");
    let (ok, out) = cli(env, &[], &["dead-letters", "purge", "--all"]);
    assert!(ok && out.contains("purged 3"), "{out}");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters").fetch_one(&env.pool).await.unwrap();
    assert_eq!(left, 0);
    assert_eq!(impressions(&app, &viewer).await, 8, "purging letters leaves the views");
}
