//! model_metrics_trend: exact against the published evaluations (several models and days, a
//! late evaluation that must not become the latest, a resent duplicate).

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::{at, round, ts};

struct Eval {
    id: String,
    model: &'static str,
    name: &'static str,
    auc: f64,
    at: chrono::DateTime<Utc>,
    features: Vec<(String, f64)>,
}

impl Eval {
    fn to_json(&self) -> Value {
        let fi: Vec<Value> = self.features.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
        json!({"id": self.id, "tenantId": "acme", "modelId": self.model, "modelName": self.name, "auc": self.auc,
               "featureImportance": fi, "evaluatedAt": ts(self.at)})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_metrics_trend_is_exact() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let today = crate::model::test_today();
    let as_of = today.format("%Y-%m-%d");

    let mut evals = Vec::new();
    for i in 0..12 {
        let (model, name) = if i % 3 == 0 { ("m2", "Churn") } else { ("m1", "Propensity") };
        let features = (0..(if i == 10 { 22 } else { 3 }))
            .map(|k| (format!("f{k:02}"), round(((i * 7 + k * 13) % 17) as f64 / 17.0, 3)))
            .collect();
        evals.push(Eval {
            id: format!("ev{i}"),
            model,
            name,
            auc: 0.7 + (i as f64) * 0.013,
            at: at(today, (i % 5) as i64) + chrono::Duration::minutes(i as i64),
            features,
        });
    }
    // Late: the oldest evaluation arrives last, and one is resent.
    evals.push(Eval {
        id: "ev-late".into(),
        model: "m1",
        name: "Propensity",
        auc: 0.5,
        at: at(today, 6),
        features: vec![("late".into(), 1.0)],
    });
    for e in &evals {
        env.publish(TopicKind::ModelMetrics, &e.to_json());
    }
    env.publish(TopicKind::ModelMetrics, &evals[4].to_json());
    env.wait_caught_up(Duration::from_secs(60)).await;

    let latest = |model: Option<&str>| {
        evals
            .iter()
            .filter(|e| model.is_none_or(|m| e.model == m))
            .max_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)))
            .unwrap()
    };
    for days in [1, 3, 7] {
        for model in [None, Some("m1"), Some("m2")] {
            let q = model.map(|m| format!("&modelId={m}")).unwrap_or_default();
            let (status, body) = app
                .get(
                    &format!("/api/v1/dashboard-data?type=model_metrics_trend&days={days}&asOf={as_of}{q}"),
                    &key,
                    "acme",
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let trend: Vec<Value> = (0..days)
                .rev()
                .filter_map(|ago| {
                    let d = today - chrono::Duration::days(ago);
                    let on: Vec<&Eval> = evals.iter().filter(|e| e.at.date_naive() == d && model.is_none_or(|m| e.model == m)).collect();
                    (!on.is_empty()).then(|| {
                        let micros: i64 = on.iter().map(|e| (e.auc * 1e6).round() as i64).sum();
                        json!({"name": d.format("%b %-d").to_string(), "auc": round(micros as f64 / on.len() as f64 / 1e6, 4)})
                    })
                })
                .collect();
            let l = latest(model);
            let mut features = l.features.clone();
            features.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            features.truncate(20);
            let features: Vec<Value> = features.iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
            assert_eq!(
                body,
                json!({"aucTrend": trend, "featureImportance": features, "modelCount": 2, "modelName": l.name}),
                "days={days} model={model:?}"
            );
        }
    }
    // Another tenant sees nothing.
    let other = env.api_key("globex", Role::Viewer).await;
    let (_, body) = app.get("/api/v1/dashboard-data?type=model_metrics_trend", &other, "globex").await;
    assert_eq!(body, json!({"aucTrend": [], "featureImportance": [], "modelCount": 0, "modelName": null}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_summary_is_exact() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let today = crate::model::test_today();
    let as_of = today.format("%Y-%m-%d");
    // 40 conversions, each attributed under 1..3 models, some on several dates (late
    // re-attributions), published out of date order, one resent.
    let models = ["last_touch", "first_touch", "linear"];
    let mut events: Vec<(String, String, &str, f64, chrono::DateTime<Utc>)> = Vec::new();
    for c in 0..40 {
        for (k, model) in models.iter().enumerate().take(1 + c % 3) {
            let ago = ((c * 7 + k * 5) % 12) as i64;
            events.push((
                format!("at{c}-{k}"),
                format!("conv{c}"),
                model,
                ((c * 13 + k) % 50) as f64 + 0.25,
                at(today, ago),
            ));
        }
    }
    events.reverse();
    for (id, conv, model, value, when) in &events {
        env.publish(
            TopicKind::Attributions,
            &json!({"id": id, "tenantId": "acme", "conversionId": conv, "model": model, "value": value, "occurredAt": ts(*when)}),
        );
    }
    let (id, conv, model, value, when) = &events[3];
    env.publish(TopicKind::Attributions, &json!({"id": id, "tenantId": "acme", "conversionId": conv, "model": model, "value": value, "occurredAt": ts(*when)}));
    env.wait_caught_up(Duration::from_secs(60)).await;

    for days in [1, 3, 7, 12] {
        let in_window: Vec<_> = events.iter().filter(|e| crate::model::in_window(e.4, today, days)).collect();
        let mut rows: Vec<Value> = models
            .iter()
            .filter_map(|m| {
                let mine: Vec<_> = in_window.iter().filter(|e| e.2 == *m).collect();
                let cents: i64 = mine.iter().map(|e| (e.3 * 100.0).round() as i64).sum();
                (!mine.is_empty()).then(|| {
                    json!({"model": m, "conversions": mine.len(), "totalValue": cents as f64 / 100.0,
                           "avgValue": round(cents as f64 / 100.0 / mine.len() as f64, 2)})
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            b["conversions"]
                .as_i64()
                .cmp(&a["conversions"].as_i64())
                .then(a["model"].as_str().cmp(&b["model"].as_str()))
        });
        let distinct: std::collections::BTreeSet<&String> = in_window.iter().map(|e| &e.1).collect();
        let (status, body) = app
            .get(&format!("/api/v1/dashboard-data?type=attribution_summary&days={days}&asOf={as_of}"), &key, "acme")
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"data": rows, "totalConversions": distinct.len()}), "days={days}");
    }
}
