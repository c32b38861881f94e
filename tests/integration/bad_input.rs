//! Bad input (docs/events.md 2.8): every kind lands in the dead-letter table with its reason and raw
//! bytes, the rest of its batch is applied, and the consumer keeps running.

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::ts;

fn interaction(id: &str, outcome: &str) -> Value {
    json!({"id": id, "tenantId": "acme", "customerId": "c1", "offerId": "o1", "channelId": "web",
           "outcome": outcome, "revenue": 1.5, "occurredAt": ts(Utc::now() - chrono::Duration::minutes(1))})
}

/// What the test checks of a dead letter.
#[derive(Debug, sqlx::FromRow)]
struct DeadLetter {
    topic: String,
    payload: Option<Vec<u8>>,
    reason: String,
    tenant_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_input_is_dead_lettered_and_the_rest_applied() {
    let app = spawn_app().await;
    let env = &app.env;
    let admin = env.api_key("acme", Role::Admin).await;
    let now = Utc::now();

    let mut future = interaction("bad-future", "impression");
    future["occurredAt"] = json!(ts(now + chrono::Duration::minutes(61)));
    let mut old = interaction("bad-old", "impression");
    old["occurredAt"] = json!(ts(now - chrono::Duration::days(401)));
    let mut missing = interaction("bad-missing", "impression");
    missing.as_object_mut().unwrap().remove("offerId");
    let mut wrong_type = interaction("bad-type", "impression");
    wrong_type["revenue"] = json!("12.5");
    let mut negative_revenue = interaction("bad-neg-rev", "convert");
    negative_revenue["revenue"] = json!(-1.0);
    let mut negative_cost = interaction("bad-neg-cost", "impression");
    negative_cost["cost"] = json!(-0.01);
    let mut huge = interaction("bad-huge", "impression");
    huge["padding"] = json!("x".repeat(300 * 1024));
    let negative_duration = json!({"id": "bad-trace", "tenantId": "acme", "customerId": "c1", "requestId": "r",
        "scoringResults": [], "selectedOffers": [], "totalDurationMs": -5, "createdAt": ts(now)});
    let non_finite = r#"{"id":"bad-nan","tenantId":"acme","customerId":"c1","offerId":"o1","channelId":"web","outcome":"convert","revenue":1e999,"occurredAt":"2026-01-01T00:00:00Z"}"#;

    // (topic, payload, expected reason); good events are interleaved between them.
    let bad: Vec<(TopicKind, Vec<u8>, &str)> = vec![
        (TopicKind::Interactions, b"{not json".to_vec(), "invalid_json"),
        (TopicKind::Interactions, vec![0xff, 0xfe, 0x00, 0x9f], "invalid_json"),
        (TopicKind::Interactions, missing.to_string().into_bytes(), "missing_field"),
        (TopicKind::Interactions, wrong_type.to_string().into_bytes(), "wrong_type"),
        (TopicKind::Interactions, non_finite.as_bytes().to_vec(), "non_finite"),
        (TopicKind::Interactions, negative_revenue.to_string().into_bytes(), "negative_value"),
        (TopicKind::Interactions, negative_cost.to_string().into_bytes(), "negative_value"),
        (TopicKind::DecisionTraces, negative_duration.to_string().into_bytes(), "negative_value"),
        (TopicKind::Interactions, interaction("bad-outcome", "purchase").to_string().into_bytes(), "unknown_outcome"),
        (TopicKind::Interactions, future.to_string().into_bytes(), "future_event_time"),
        (TopicKind::Interactions, old.to_string().into_bytes(), "event_time_too_old"),
        (TopicKind::Interactions, huge.to_string().into_bytes(), "too_large"),
    ];
    for (i, (topic, payload, _)) in bad.iter().enumerate() {
        env.publish(TopicKind::Interactions, &interaction(&format!("good-{i}"), "impression"));
        // Key "acme:c1": the same partition as the good events around it, so one batch.
        env.publish_raw(*topic, "acme:c1", payload);
    }
    env.wait_caught_up(Duration::from_secs(60)).await;

    // Every bad message is in the table with its reason and its exact bytes.
    let rows: Vec<DeadLetter> =
        sqlx::query_as("SELECT topic, payload, reason, tenant_id FROM dead_letters ORDER BY topic, \"offset\"")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), bad.len(), "one dead letter per bad message: {rows:?}");
    for (topic, payload, reason) in &bad {
        // A too-large payload is kept as its first 64 KiB (with its size and SHA-256).
        let kept = if *reason == "too_large" { &payload[..64 * 1024] } else { payload.as_slice() };
        let found = rows.iter().find(|r| r.payload.as_deref() == Some(kept) && r.topic == env.topic(*topic));
        let found = found.unwrap_or_else(|| panic!("no dead letter for a {reason} message"));
        assert_eq!(found.reason, *reason);
        assert_eq!(found.tenant_id, "acme", "attributed to its tenant");
    }

    // The good events of the same batches were applied.
    let impressions: i64 =
        sqlx::query_scalar("SELECT sum(impressions)::int8 FROM interaction_daily WHERE tenant_id = 'acme'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(impressions, bad.len() as i64);

    // The consumer keeps running: later events still apply.
    env.publish(TopicKind::Interactions, &interaction("after", "impression"));
    env.wait_caught_up(Duration::from_secs(30)).await;
    let impressions: i64 =
        sqlx::query_scalar("SELECT sum(impressions)::int8 FROM interaction_daily WHERE tenant_id = 'acme'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(impressions, bad.len() as i64 + 1);

    // Readable by admins through the API, filtered by reason, non-UTF-8 payloads in base64.
    let (status, body) = app.get("/api/v1/dead-letters?reason=negative_value", &admin, "acme").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 3);
    let (_, body) = app.get("/api/v1/dead-letters?limit=200", &admin, "acme").await;
    // Payloads without a readable tenant are attributed by their key ("acme:c1").
    let attributed = bad.len();
    assert_eq!(body["total"], attributed as i64, "{body}");
    let (status, status_body) = app.get("/api/v1/ingest/status", &admin, "acme").await;
    assert_eq!(status, 200);
    let dl_total: i64 = status_body["deadLetters"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
    assert_eq!(dl_total, attributed as i64);
    // Partitions are shared by every tenant: only a platform key sees them.
    let (status, status_body) = app.get("/api/v1/ingest/status", &env.platform_key().await, "").await;
    assert_eq!(status, 200);
    let p = status_body["partitions"].as_array().unwrap();
    assert!(p.iter().any(|p| p["lag"] == 0 && p["committedOffset"].as_i64() > Some(0)), "{status_body}");

    // Counted in the metrics too.
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ingest_dead_letters_total"), "metrics expose dead letters");

    // Retention: dead letters older than DV_DEAD_LETTER_RETENTION_DAYS go, the rest stay, and
    // the all-time counts stay too.
    sqlx::query("UPDATE dead_letters SET received_at = now() - interval '31 days' WHERE reason = 'negative_value'")
        .execute(&env.pool)
        .await
        .unwrap();
    let deleted = consumers::janitor::purge_dead_letters(&env.pool, chrono::Duration::days(30)).await.unwrap();
    assert_eq!(deleted, 3);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters").fetch_one(&env.pool).await.unwrap();
    assert_eq!(left, bad.len() as i64 - 3);
    let counted: i64 =
        sqlx::query_scalar("SELECT sum(count)::int8 FROM dead_letter_counts").fetch_one(&env.pool).await.unwrap();
    assert_eq!(counted, bad.len() as i64);
}
