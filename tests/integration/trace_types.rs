//! degraded_scoring and latency_trend: exact against the published traces (durations past
//! 2,048 ms exercise HDR's 3-significant-digit buckets), several windows, a duplicate, another
//! tenant.

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::{at, in_window, ts};
use crate::processes::Lcg;

struct Trace {
    id: String,
    ms: u64,
    degraded: bool,
    at: chrono::DateTime<Utc>,
}

fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

/// HDR with 3 significant digits answers the exact value or one up to 0.1 % above it.
fn assert_close(got: u64, exact: u64, what: &str) {
    assert!(got >= exact && got - exact <= exact / 1000 + 1, "{what}: hdr {got} vs exact {exact}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_scoring_and_latency_trend_are_exact() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let today = crate::model::test_today();
    let as_of = today.format("%Y-%m-%d");
    let mut rng = Lcg::new(5);
    let traces: Vec<Trace> = (0..3_000)
        .map(|i| Trace {
            id: format!("tr{i}"),
            // Mostly fast, a tail into the seconds.
            ms: if rng.below(20) == 0 { 2_000 + rng.below(9_000) } else { 3 + rng.below(400) },
            degraded: rng.below(25) == 0,
            at: at(today, rng.below(12) as i64) + chrono::Duration::seconds(rng.below(3_600) as i64),
        })
        .collect();
    for t in &traces {
        env.publish(
            TopicKind::DecisionTraces,
            &json!({"id": t.id, "tenantId": "acme", "customerId": format!("c{}", t.ms % 50), "requestId": "r",
                    "scoringResults": [], "selectedOffers": [], "degraded": t.degraded,
                    "totalDurationMs": t.ms as f64 + 0.4, "createdAt": ts(t.at)}),
        );
    }
    let first = &traces[0];
    env.publish(
        TopicKind::DecisionTraces,
        &json!({"id": first.id, "tenantId": "acme", "customerId": "c", "requestId": "r", "scoringResults": [],
                "selectedOffers": [], "totalDurationMs": first.ms, "createdAt": ts(first.at), "degraded": first.degraded}),
    );
    env.publish(
        TopicKind::DecisionTraces,
        &json!({"id": "other", "tenantId": "globex", "customerId": "c", "requestId": "r", "scoringResults": [],
                "selectedOffers": [], "totalDurationMs": 99999, "createdAt": ts(Utc::now())}),
    );
    env.wait_caught_up(Duration::from_secs(90)).await;

    for days in [1, 7, 12] {
        let window: Vec<&Trace> = traces.iter().filter(|t| in_window(t.at, today, days)).collect();
        let (status, body) = app
            .get(&format!("/api/v1/dashboard-data?type=degraded_scoring&days={days}&asOf={as_of}"), &key, "acme")
            .await;
        assert_eq!(status, 200, "{body}");
        let degraded = window.iter().filter(|t| t.degraded).count();
        assert_eq!(
            body,
            json!({"degradedCount": degraded, "totalCount": window.len(), "days": days, "hasData": !window.is_empty()})
        );

        let (status, body) =
            app.get(&format!("/api/v1/dashboard-data?type=latency_trend&days={days}&asOf={as_of}"), &key, "acme").await;
        assert_eq!(status, 200, "{body}");
        let points = body["data"].as_array().unwrap();
        assert_eq!(points.len(), days as usize);
        for (i, p) in points.iter().enumerate() {
            let d = today - chrono::Duration::days(days - 1 - i as i64);
            let name = if days <= 7 { d.format("%a").to_string() } else { d.format("%b %-d").to_string() };
            assert_eq!(p["name"], json!(name));
            let mut on: Vec<u64> = window.iter().filter(|t| t.at.date_naive() == d).map(|t| t.ms).collect();
            on.sort_unstable();
            if on.is_empty() {
                assert_eq!((p["p50"].as_u64(), p["p99"].as_u64()), (Some(0), Some(0)));
                continue;
            }
            assert_close(p["p50"].as_u64().unwrap(), nearest_rank(&on, 0.5), &format!("p50 {d}"));
            assert_close(p["p99"].as_u64().unwrap(), nearest_rank(&on, 0.99), &format!("p99 {d}"));
        }
        let mut all: Vec<u64> = window.iter().map(|t| t.ms).collect();
        all.sort_unstable();
        let o: &Value = &body["overall"];
        assert_eq!(o["count"], json!(all.len()));
        for (field, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            assert_close(o[field].as_u64().unwrap(), nearest_rank(&all, q), field);
        }
        assert_close(o["max"].as_u64().unwrap(), *all.last().unwrap(), "max");
        assert_eq!(body["hasRealData"], json!(!all.is_empty()));
    }
}
