//! Offsets the Kafka client cannot deliver (docs/events.md 2.8): a zstd-compressed batch that
//! decompresses past the consumer's `receive.message.max.bytes` (`wire::undeliverable_batch`)
//! sits in every partition between good events. Each is
//! dead-lettered as one `undeliverable` range with its exact offsets, every good event before
//! and after it is applied exactly once, and the partition moves on.

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use serde_json::{json, Value};

use crate::helpers::{partitions, spawn_app_with_settings, TestEnv};
use crate::model::ts;
use crate::wire;

fn interaction(id: &str) -> Value {
    json!({"id": id, "tenantId": "acme", "customerId": format!("c-{id}"), "offerId": "o1", "channelId": "web",
           "outcome": "impression", "occurredAt": ts(Utc::now() - chrono::Duration::minutes(1))})
}

/// What the test checks of a dead letter.
#[derive(Debug, sqlx::FromRow)]
struct DeadLetter {
    partition: i32,
    offset: i64,
    last_offset: i64,
    reason: String,
    tenant_id: String,
    payload: Option<Vec<u8>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_batch_is_dead_lettered_as_a_range_and_its_partition_moves_on() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.kafka.consumer_overrides.extend(wire::SMALL_RECEIVE.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let app = spawn_app_with_settings(env, settings).await;
    let env = &app.env;
    let topic = env.topic(TopicKind::Interactions).to_owned();
    for i in 0..40 {
        env.publish(TopicKind::Interactions, &interaction(&format!("before-{i}")));
    }
    env.flush();
    // A zstd batch of 5 valid interactions into every partition, after the first good events.
    let per_batch = 5;
    let mut zstd_offsets = Vec::new();
    for p in 0..partitions(TopicKind::Interactions) {
        let before = env.high_watermarks()[&(topic.clone(), p)];
        let messages: Vec<(Vec<u8>, Vec<u8>)> = (0..per_batch)
            .map(|i| (b"acme:c".to_vec(), interaction(&format!("zstd-{p}-{i}")).to_string().into_bytes()))
            .collect();
        let err = wire::produce(&env.servers.brokers, &topic, p, &wire::undeliverable_batch(&messages));
        assert_eq!(err, 0, "the broker refused the zstd batch");
        zstd_offsets.push((p, before));
    }
    for i in 0..40 {
        env.publish(TopicKind::Interactions, &interaction(&format!("after-{i}")));
    }
    env.flush();
    env.wait_caught_up(Duration::from_secs(120)).await;

    let impressions: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(impressions), 0)::int8 FROM interaction_daily WHERE tenant_id = 'acme'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(impressions, 80, "every good event applied once, none of the undeliverable ones");
    let rows: Vec<DeadLetter> = sqlx::query_as(
        "SELECT partition, \"offset\", last_offset, reason, tenant_id, payload FROM dead_letters ORDER BY partition",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let want: Vec<(i32, i64, i64)> = zstd_offsets.iter().map(|(p, o)| (*p, *o, o + per_batch - 1)).collect();
    let got: Vec<(i32, i64, i64)> = rows.iter().map(|r| (r.partition, r.offset, r.last_offset)).collect();
    assert_eq!(got, want, "one range per partition, exactly the batch's offsets: {rows:?}");
    assert!(rows.iter().all(|r| r.reason == "undeliverable" && r.tenant_id.is_empty() && r.payload.is_none()));
    app.stop().await.expect("clean shutdown");
}
