//! Event-time alignment (`consumers::kafka::align`) on the real broker: two partitions with
//! days of backlog each are read side by side in event time, while a partition that caught
//! up and an empty one hold nobody back, and every event is applied.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consumers::events::TopicKind;
use rdkafka::producer::BaseRecord;
use serde_json::json;

use crate::helpers::{spawn_app_with_settings, TestEnv};
use crate::model::ts;

/// Events per backlogged partition, one a minute: about two days each.
const BACKLOG: i64 = 3_000;
/// How far (in event time) a partition may read ahead: five hours, 300 events. Coarse enough
/// for the partitions to take turns in runs of 150 events or more (a paused one resumes
/// within half the bound), so the test stays quick.
const BOUND_MINUTES: i64 = 300;
/// Messages per batch.
const BATCH: i64 = 100;

/// Publishes to one partition an impression a minute from `start`, `count` of them.
fn publish_minutes(env: &TestEnv, partition: i32, start: DateTime<Utc>, count: i64) {
    let topic = env.topic(TopicKind::Interactions);
    for i in 0..count {
        let id = format!("p{partition}-{i}");
        let event = json!({"id": id, "tenantId": "acme", "customerId": format!("c-{id}"), "offerId": "o1",
            "channelId": "web", "outcome": "impression", "occurredAt": ts(start + chrono::Duration::minutes(i))});
        let payload = event.to_string();
        let key = format!("acme:c-{id}");
        let mut record = BaseRecord::to(topic).key(&key).payload(&payload).partition(partition);
        while let Err((e, r)) = env.producer.send(record) {
            assert!(e.to_string().contains("Queue full"), "send: {e}");
            record = r;
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The largest lead, over samples of the offsets committed until both are read, of
/// partition 0 or 1 over the other while the other still had messages left: in minutes of
/// event time committed (a partition with nothing committed yet is at `start`).
async fn widest_lead(env: &TestEnv, highs: &BTreeMap<i32, i64>, start: DateTime<Utc>) -> i64 {
    let topic = env.topic(TopicKind::Interactions);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut widest = 0;
    loop {
        let rows: Vec<(i32, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT partition, next_offset, event_time_watermark FROM consumer_offsets WHERE topic = $1",
        )
        .bind(topic)
        .fetch_all(&env.pool)
        .await
        .unwrap();
        let row = |p: i32| rows.iter().find(|r| r.0 == p);
        let reached = |p: i32| row(p).and_then(|r| r.2).unwrap_or(start);
        let done = |p: i32| row(p).is_some_and(|r| r.1 >= highs[&p]);
        for (ahead, behind) in [(0, 1), (1, 0)] {
            if !done(behind) {
                widest = widest.max((reached(ahead) - reached(behind)).num_minutes());
            }
        }
        if done(0) && done(1) {
            return widest;
        }
        assert!(tokio::time::Instant::now() < deadline, "ingest did not finish: {rows:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_behind_in_event_time_hold_back_those_ahead_but_idle_ones_do_not() {
    let env = TestEnv::new().await;
    let start = Utc::now() - chrono::Duration::days(10);
    publish_minutes(&env, 0, start, BACKLOG);
    publish_minutes(&env, 1, start, BACKLOG);
    // Caught up after its first batch, then idle; partition 3 stays empty.
    publish_minutes(&env, 2, start, 5);
    env.flush();
    let topic = env.topic(TopicKind::Interactions).to_owned();
    let highs: BTreeMap<i32, i64> =
        env.high_watermarks().into_iter().filter(|((t, _), _)| *t == topic).map(|((_, p), h)| (p, h)).collect();

    let mut settings = env.settings();
    settings.kafka.batch_max_messages = BATCH as usize;
    settings.kafka.align_max_ahead = Some(Duration::from_secs(60 * BOUND_MINUTES as u64));
    let app = spawn_app_with_settings(env, settings).await;
    let env = &app.env;
    let widest = widest_lead(env, &highs, start).await;
    // The one ahead stops at most one event past the bound; the one behind has committed up
    // to two batches (one committing, one filling) less than it read. Read one partition
    // after the other, as tansu serves them without alignment, the lead reaches the whole
    // backlog (2,998 minutes seen).
    let most = BOUND_MINUTES + 1 + 2 * BATCH;
    assert!(widest <= most, "one partition led the other by {widest} minutes (at most {most})");
    env.wait_caught_up(Duration::from_secs(60)).await;
    let impressions: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(impressions), 0)::int8 FROM interaction_daily WHERE tenant_id = 'acme'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(impressions, 2 * BACKLOG + 5, "every event applied once");
    app.stop().await.expect("clean shutdown");
}
