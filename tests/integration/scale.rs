//! Two ingest processes in one consumer group share a 4-partition topic; one is SIGKILLed
//! mid-stream; the survivor takes its partitions over from the PostgreSQL offsets and the
//! totals are exact.
//!
//! With tansu 0.6.0 (the test broker) the survivor's first rebalance after the death can hand
//! it its old assignment again (see `consumers::kafka::watchdog`); the orphaned-partition
//! watchdog then rejoins the group, so this test also covers that path.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::crash::{publish_interactions_paced, stored_counters};
use crate::helpers::TestEnv;
use crate::model;
use crate::processes::IngestProcess;

async fn owners(env: &TestEnv) -> BTreeSet<String> {
    let topic = env.topic(consumers::events::TopicKind::Interactions).to_owned();
    sqlx::query_scalar("SELECT DISTINCT owner FROM consumer_offsets WHERE topic = $1 AND owner IS NOT NULL")
        .bind(topic)
        .fetch_all(&env.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingest_processes_one_killed_mid_stream_totals_exact() {
    let env = TestEnv::new().await;
    let today = crate::model::test_today();
    let customers: Vec<String> = (0..500).map(|i| format!("cust{i}")).collect();
    let customers: Vec<&str> = customers.iter().map(String::as_str).collect();
    let events = model::interactions(
        &model::Spread {
            tenant: "acme",
            offers: &["o1", "o2", "o3"],
            channels: &["web", "email"],
            customers: &customers,
            days: 14,
        },
        20_000,
        11,
        today,
    );

    let a = IngestProcess::start_named(&env, "ingest-a");
    let b = IngestProcess::start_named(&env, "ingest-b");
    // Traces of one date from every partition: both processes merge into the same latency
    // histogram row (under its row lock).
    let now = chrono::Utc::now();
    for i in 0..2_000 {
        env.publish(
            consumers::events::TopicKind::DecisionTraces,
            &serde_json::json!({"id": format!("tr{i}"), "tenantId": "acme", "customerId": format!("cust{i}"),
                "requestId": "r", "scoringResults": [], "selectedOffers": [], "totalDurationMs": i % 500,
                "createdAt": crate::model::ts(now)}),
        );
    }
    let publisher = {
        let p = env.clone_for_publish();
        let events = events.clone();
        std::thread::spawn(move || publish_interactions_paced(&p, &events, 50, 800))
    };

    // Both processes commit partitions of the 4-partition topic before one dies.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = owners(&env).await;
        if o.contains("ingest-a") && o.contains("ingest-b") {
            break;
        }
        assert!(Instant::now() < deadline, "both processes should own partitions; owners: {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!publisher.is_finished(), "the kill must land mid-stream");
    a.kill9();
    publisher.join().unwrap();

    env.wait_caught_up(Duration::from_secs(120)).await;

    // The killed instance's partitions were resumed by the survivor from the stored offsets.
    let last_owners: Vec<String> = sqlx::query_scalar("SELECT owner FROM consumer_offsets WHERE topic = $1")
        .bind(env.topic(consumers::events::TopicKind::Interactions))
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(last_owners.len(), 4);
    assert!(last_owners.iter().all(|o| o == "ingest-b"), "the survivor took every partition over: {last_owners:?}");

    let stored = stored_counters(&env, "acme").await;
    let mut total = [0i64; 8];
    for v in stored.values() {
        for i in 0..8 {
            total[i] += v[i];
        }
    }
    let count = |o: &str| events.iter().filter(|e| e.outcome == o).count() as i64;
    assert_eq!(&total[..6], &model::OUTCOMES.map(count)[..], "per-outcome totals");
    assert_eq!(total[6], events.iter().map(|e| (e.revenue * 1e6).round() as i64).sum::<i64>(), "revenue");
    let hists: Vec<Vec<u8>> = sqlx::query_scalar("SELECT hist FROM trace_latency_daily WHERE tenant_id = 'acme'")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(hists.len(), 1);
    let h = consumers::units::latency::deserialize(&hists[0]).unwrap();
    assert_eq!((h.len(), h.max(), h.value_at_quantile(0.5)), (2_000, 499, 249), "merged by both writers exactly");
    // The running totals, written by both processes at once in days of any order.
    let mut conn = env.pool.acquire().await.unwrap();
    crate::rollups::assert_running_totals_exact(&mut conn).await;
    assert!(b.terminate().success());
}
