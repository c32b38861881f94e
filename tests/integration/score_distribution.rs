//! score_distribution: exact against the published traces (the selection tests' stream) for
//! every grouping and filter, with scores outside [0, 1].

use std::collections::BTreeMap;
use std::time::Duration;

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::{catalog, in_window, round};
use crate::selection::{category, make_traces, publish_offers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_distribution_is_exact_for_every_grouping_and_filter() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let today = crate::model::test_today();
    publish_offers(env);
    for (id, name) in [("cat_1", "Cards"), ("cat_2", "Loans"), ("ch0", "Email")] {
        let entity = if id.starts_with("cat") { "category" } else { "channel" };
        env.publish(TopicKind::Catalog, &catalog("acme", entity, id, "upsert", Some(1), json!({"name": name})));
    }
    let mut traces = make_traces(800, today);
    // Scores outside [0, 1] are clamped into the first and last buckets.
    let mut odd = make_traces(1, today).remove(0);
    odd.json["id"] = json!("odd");
    odd.json["scoringResults"] = json!([{"offerId": "o1", "score": -0.2, "rank": 1}, {"offerId": "o2", "score": 1.7, "rank": 2}, {"offerId": "o3", "score": 1.0, "rank": 3}]);
    traces.push(odd);
    for t in &traces {
        env.publish(TopicKind::DecisionTraces, &t.json);
    }
    env.wait_caught_up(Duration::from_secs(90)).await;

    // (channel, offer, score) of every scoring entry
    let entries = |days: i64| -> Vec<(String, String, f64)> {
        traces
            .iter()
            .filter(|t| in_window(t.at, today, days))
            .flat_map(|t| {
                t.json["scoringResults"].as_array().unwrap().iter().map(move |s| {
                    (t.channel.clone(), s["offerId"].as_str().unwrap().to_string(), s["score"].as_f64().unwrap())
                })
            })
            .collect()
    };
    let bucket = |s: f64| ((s.clamp(0.0, 1.0) * 10.0).floor() as usize).min(9);
    let dim_of = |g: &str, e: &(String, String, f64)| -> String {
        match g {
            "channel" => e.0.clone(),
            "offer" => e.1.clone(),
            _ => category(&e.1).to_string(),
        }
    };
    let dim_name = |g: &str, id: &str| -> String {
        match (g, id) {
            ("category", "cat_1") => "Cards".into(),
            ("category", "cat_2") => "Loans".into(),
            ("channel", "ch0") => "Email".into(),
            ("offer", o) => format!("Offer {}", &o[1..]),
            (_, other) => other.into(),
        }
    };
    for days in [1, 10] {
        let all = entries(days);
        for group in [None, Some("channel"), Some("offer"), Some("category")] {
            let filters: Vec<Option<String>> = match group {
                None => vec![None],
                Some(g) => {
                    let first = all.first().map(|e| dim_of(g, e));
                    vec![None, first, Some("nope".into())]
                }
            };
            for filter in filters {
                let selected: Vec<&(String, String, f64)> = all
                    .iter()
                    .filter(|e| filter.as_deref().is_none_or(|f| group.is_some_and(|g| dim_of(g, e) == f)))
                    .collect();
                let mut counts = [0i64; 10];
                for e in &selected {
                    counts[bucket(e.2)] += 1;
                }
                let data: Vec<Value> = (0..10)
                    .map(|i| json!({"name": format!("{:.1}-{:.1}", i as f64 / 10.0, (i + 1) as f64 / 10.0), "count": counts[i]}))
                    .collect();
                let mut dims: BTreeMap<String, (i64, i64)> = BTreeMap::new();
                if let Some(g) = group {
                    for e in &all {
                        let d = dims.entry(dim_of(g, e)).or_default();
                        d.0 += 1;
                        d.1 += (e.2 * 1e6).round() as i64;
                    }
                }
                let mut dims: Vec<_> = dims.into_iter().collect();
                dims.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
                let dims: Vec<Value> = dims
                    .iter()
                    .map(|(id, (n, sum))| {
                        json!({"name": id, "dimName": dim_name(group.unwrap(), id), "count": n,
                               "avgScore": round(*sum as f64 / *n as f64 / 1e6, 3)})
                    })
                    .collect();
                let total: i64 = counts.iter().sum();
                let expected = json!({"data": data, "totalScores": total, "hasRealData": total > 0, "groupBy": group,
                                      "dimensionBuckets": dims});
                let mut q = format!(
                    "/api/v1/dashboard-data?type=score_distribution&days={days}&asOf={}",
                    today.format("%Y-%m-%d")
                );
                if let Some(g) = group {
                    q.push_str(&format!("&groupBy={g}"));
                }
                if let Some(f) = &filter {
                    q.push_str(&format!("&filterId={f}"));
                }
                let (status, body) = app.get(&q, &key, "acme").await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body, expected, "days={days} groupBy={group:?} filterId={filter:?}");
            }
        }
    }
    let (status, _) = app.get("/api/v1/dashboard-data?type=score_distribution&filterId=o1", &key, "acme").await;
    assert_eq!(status, 400, "filterId without groupBy");
    let (status, _) = app.get("/api/v1/dashboard-data?type=score_distribution&groupBy=segment", &key, "acme").await;
    assert_eq!(status, 400, "unknown groupBy");
}
