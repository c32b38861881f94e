//! Crash safety: SIGKILL ingest at random moments while it works; after restarts every counter
//! equals the value computed from the published events (nothing lost, nothing counted twice).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use consumers::events::TopicKind;
use serde_json::json;

use crate::helpers::TestEnv;
use crate::model::{self, ts};
use crate::processes::{IngestProcess, Lcg};

type Key = (NaiveDate, String, String);

/// (day, offer, channel) → (impressions, clicks, accepts, converts, rejects, dismisses, revenue, cost)
pub fn expected_counters(events: &[model::Interaction]) -> BTreeMap<Key, [i64; 8]> {
    let mut m: BTreeMap<Key, [i64; 8]> = BTreeMap::new();
    for e in events {
        let c = m.entry((e.at.date_naive(), e.offer.clone(), e.channel.clone())).or_default();
        let i = model::OUTCOMES.iter().position(|o| *o == e.outcome).unwrap();
        c[i] += 1;
        c[6] += (e.revenue * 1e6).round() as i64;
        c[7] += (e.cost * 1e6).round() as i64;
    }
    m
}

/// A row of `interaction_daily` (money in micro-units).
#[derive(sqlx::FromRow)]
struct CounterRow {
    day: NaiveDate,
    offer_id: String,
    channel_id: String,
    impressions: i64,
    clicks: i64,
    accepts: i64,
    converts: i64,
    rejects: i64,
    dismisses: i64,
    revenue_micros: i64,
    cost_micros: i64,
}

pub async fn stored_counters(env: &TestEnv, tenant: &str) -> BTreeMap<Key, [i64; 8]> {
    let rows: Vec<CounterRow> = sqlx::query_as(
        "SELECT day, offer_id, channel_id, impressions, clicks, accepts, converts, rejects, dismisses,
                revenue_micros::int8 AS revenue_micros, cost_micros::int8 AS cost_micros
           FROM interaction_daily WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|r| {
            let counters = [
                r.impressions,
                r.clicks,
                r.accepts,
                r.converts,
                r.rejects,
                r.dismisses,
                r.revenue_micros,
                r.cost_micros,
            ];
            ((r.day, r.offer_id, r.channel_id), counters)
        })
        .collect()
}

/// Σ next_offset over all partitions: grows whenever any batch commits.
async fn committed_total(env: &TestEnv) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(sum(next_offset), 0)::int8 FROM consumer_offsets")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

pub fn publish_interactions_paced(
    env: &crate::helpers::Publisher,
    events: &[model::Interaction],
    resend_every: usize,
    per_sec: u64,
) {
    let started = Instant::now();
    for (i, e) in events.iter().enumerate() {
        env.publish(TopicKind::Interactions, &e.to_json());
        if resend_every > 0 && i % resend_every == 0 {
            env.publish(TopicKind::Interactions, &e.to_json()); // a producer retry: same id
        }
        let due = Duration::from_secs_f64(i as f64 / per_sec as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    env.flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_counts_nothing_twice() {
    let env = TestEnv::new().await;
    let today = crate::model::test_today();
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut rng = Lcg::new(seed);
    // Part of the reliability suite: 4 kills in CI, more with DV_RELIABILITY_FULL=1 or
    // DV_RELIABILITY_ROUNDS=N. Events scale with the kills so that the last one still lands
    // while events flow (7,500 interactions, 12.5 s at 600/s, per kill).
    let kills = crate::reliability::rounds(4, 12);

    let customers: Vec<String> = (0..200).map(|i| format!("cust{i}")).collect();
    let customers: Vec<&str> = customers.iter().map(String::as_str).collect();
    let spread = model::Spread {
        tenant: "acme",
        offers: &["o1", "o2", "o3", "o4", "o5"],
        channels: &["web", "email", "sms"],
        customers: &customers,
        days: 30,
    };
    let events = model::interactions(&spread, kills * 7_500, seed, today);
    let traces: Vec<serde_json::Value> = (0..kills * 500)
        .map(|i| {
            json!({"id": format!("tr{i}"), "tenantId": "acme", "customerId": customers[i % customers.len()],
                   "requestId": format!("rq{i}"), "channelId": "web", "scoringResults": [], "selectedOffers": [],
                   "degraded": i % 10 == 0, "totalDurationMs": 5 + i % 50,
                   "createdAt": ts(model::at(today, (i % 5) as i64))})
        })
        .collect();

    let mut ingest = IngestProcess::start(&env);
    let publisher = {
        let env_events = events.clone();
        let traces = traces.clone();
        let producer_env = env.clone_for_publish();
        std::thread::spawn(move || {
            for t in &traces {
                producer_env.publish(TopicKind::DecisionTraces, t);
            }
            publish_interactions_paced(&producer_env, &env_events, 97, 600);
        })
    };

    // Each kill lands on a process that is applying: wait until it has committed something
    // itself (it got its partitions after the previous victim's session expired), then kill
    // it at a random moment of its work.
    for kill in 0..kills {
        let before = committed_total(&env).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed_total(&env).await == before {
            assert!(Instant::now() < deadline, "the restarted ingest process made no progress");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(1_000))).await;
        assert!(!publisher.is_finished(), "kill {kill} must land while events are still flowing");
        ingest.kill9();
        ingest = IngestProcess::start(&env);
    }
    publisher.join().expect("publisher thread");

    env.wait_caught_up(Duration::from_secs(180)).await;
    assert!(ingest.is_running(), "ingest still running after catching up");

    let stored = stored_counters(&env, "acme").await;
    let expected = expected_counters(&events);
    assert_eq!(stored.len(), expected.len(), "same (day, offer, channel) rows");
    for (k, v) in &expected {
        assert_eq!(stored.get(k), Some(v), "counters of {k:?}");
    }
    let (n, degraded): (i64, i64) =
        sqlx::query_as("SELECT sum(traces)::int8, sum(degraded)::int8 FROM trace_daily WHERE tenant_id = 'acme'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((n, degraded), (traces.len() as i64, traces.iter().filter(|t| t["degraded"] == true).count() as i64));
    let exit = ingest.terminate();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}
