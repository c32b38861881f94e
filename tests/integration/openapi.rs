//! The OpenAPI document (issue 15) against real answers: an instance filled through the broker
//! answers every documented operation (successes and refusals, every dashboard type with its
//! parameters), and each answer must validate against the schema the document gives for its
//! operation and status; a dashboard answer also against its own type's schema. Every
//! documented operation must have been exercised, so the document cannot list what the test
//! never checked, and the served routes are the documented ones (the router builds both).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use decision_views::api::auth::Role;
use decision_views::publish::{EventTime, Workload, WorkloadShape};
use serde_json::{json, Value};

use crate::explain::shap::{fixture, publish_model};
use crate::explain::{keys, publish_decisions};
use crate::helpers::{spawn_app_with_settings, TestApp, TestEnv};

struct Checker {
    doc: Value,
    app: TestApp,
    seen: BTreeSet<(String, String)>,
    checked: usize,
}

impl Checker {
    /// A validator of `schema` (a document fragment) with the document's components in reach.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = self.doc["components"].clone();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema {schema}: {e}"))
    }

    fn assert_valid(&self, what: &str, schema: &Value, body: &Value) {
        let v = self.validator(schema);
        let errors: Vec<String> = v.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{what}: the answer violates the document: {errors:?}\n{body}");
    }

    /// Sends the request; checks the answer against the document; returns status and body.
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        key: &str,
        tenant: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.app.address);
        let mut req = match method {
            "get" => self.app.client.get(&url),
            "post" => self.app.client.post(&url),
            "put" => self.app.client.put(&url),
            "delete" => self.app.client.delete(&url),
            _ => unreachable!(),
        };
        if !key.is_empty() {
            req = req.header("X-API-Key", key);
        }
        if !tenant.is_empty() {
            req = req.header("X-Tenant-Id", tenant);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let op = &self.doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not in the document");
        let response = &op["responses"][status.to_string()];
        assert!(response.is_object(), "{method} {path}: status {status} is not documented: {text}");
        let body: Value = match response["content"].as_object().and_then(|c| c.get("application/json")) {
            Some(content) => {
                let body: Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
                self.assert_valid(&format!("{method} {path} → {status}"), &content["schema"], &body);
                self.checked += 1;
                body
            }
            None => Value::String(text),
        };
        self.seen.insert((method.to_owned(), template.to_owned()));
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_conforms_to_the_document() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    // schemathesis sends hundreds of reads a second; 429s would only hide answers.
    settings.http.reads.rate = 100_000;
    settings.http.reads.burst = 100_000;
    let app = spawn_app_with_settings(env, settings).await;
    // A small standard workload (tenant_0, every trace stored), and acme's explainable
    // decision with a gradient-boosted model.
    let shape = WorkloadShape {
        tenants: 1,
        customers: 300,
        segmented_customers: 300,
        segments: 3,
        days: 8,
        time: EventTime::History { traces: 300 },
        large_tenant_trace_sample_rate: 1.0,
        ..WorkloadShape::default()
    };
    let mut workload = Workload::new(shape, 3, Utc::now());
    let mut events = workload.catalog_and_segments();
    (0..300).for_each(|_| events.extend(workload.next_trace()));
    for g in events {
        app.env.publish_raw(g.topic, &g.key, g.payload.as_bytes());
    }
    publish_model(&app, "acme", "mdl_0", "GBM", &fixture("d5_t12_logistic_named")["model"]);
    publish_decisions(&app).await;
    app.env.wait_caught_up(Duration::from_secs(120)).await;

    let (acme_viewer, acme_admin, _) = keys(&app).await;
    let viewer = app.env.api_key("tenant_0", Role::Viewer).await;
    let admin = app.env.api_key("tenant_0", Role::Admin).await;
    let platform = app.env.platform_key().await;
    let resp = app.client.get(format!("{}/api/v1/openapi.json", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, serde_json::to_value(decision_views::api::openapi_document()).unwrap(), "served as built");
    let mut c = Checker { doc, app, seen: BTreeSet::new(), checked: 0 };

    // Every dashboard type, with each parameter it takes, and the segment warning.
    const D: &str = "/api/v1/dashboard-data";
    let own: Vec<(&str, String)> = decision_views::api::answer_schemas();
    let queries = [
        "type=summary",
        "type=acceptance_rate&days=30",
        "type=acceptance_rate&segmentId=seg_01",
        "type=offer_performance&days=90",
        "type=offer_performance&segmentId=seg_01",
        "type=channel_effectiveness&segmentId=seg_02",
        "type=budget_burn",
        "type=funnel",
        "type=attribution_summary&days=30",
        "type=daily_trend&days=8&asOf=2026-01-01",
        "type=daily_trend&segmentId=seg_01",
        "type=model_metrics_trend&days=30",
        "type=model_metrics_trend&modelId=model_1",
        "type=latency_trend&days=365",
        "type=offer_performance_grouped",
        "type=offer_performance_grouped&groupBy=category",
        "type=offer_performance_grouped&groupBy=segment",
        "type=offer_performance_grouped&groupBy=channel&segmentId=seg_00",
        "type=revenue_trend&days=30&segmentId=seg_02",
        "type=policy_impact",
        "type=score_distribution",
        "type=score_distribution&groupBy=offer&filterId=off_003",
        "type=score_distribution&groupBy=category",
        "type=degraded_scoring&days=30",
        "type=selection_frequency&days=30",
        "type=selection_frequency&channelId=ch_1&categoryId=cat_1&decisionFlowId=flow_1&segmentId=seg_01",
        "type=anomaly_candidates&days=3&baselineDays=5",
        "type=why_not_ranked&offerId=off_007",
        "type=why_not_ranked&offerId=off_007&segmentId=seg_01",
    ];
    // A control: the schemas do refuse what they do not describe.
    let summary = c.validator(&json!({"$ref": "#/components/schemas/Summary"}));
    assert!(!summary.is_valid(&json!({"activeOffers": "many"})) && !summary.is_valid(&json!({})));
    let mut types = BTreeSet::new();
    for q in queries {
        let (status, body) = c.call("get", D, &format!("{D}?{q}"), &viewer, "tenant_0", None).await;
        assert_eq!(status, 200, "{q}: {body}");
        let t = q.split('&').next().unwrap().trim_start_matches("type=");
        let name = &own.iter().find(|(n, _)| *n == t).unwrap().1;
        c.assert_valid(&format!("{q} as {name}"), &json!({"$ref": format!("#/components/schemas/{name}")}), &body);
        types.insert(t.to_owned());
    }
    assert_eq!(types.len(), 18, "every type answered");
    let (status, warned) =
        c.call("get", D, &format!("{D}?type=daily_trend&segmentId=seg_nope"), &viewer, "tenant_0", None).await;
    assert_eq!((status, warned["data"].clone()), (200, json!([])), "{warned}");
    c.assert_valid("segment warning", &json!({"$ref": "#/components/schemas/SegmentWarning"}), &warned);
    for (q, key, want) in
        [("type=nope", viewer.as_str(), 400), ("days=0", &viewer, 400), ("type=summary", "wrong", 401)]
    {
        assert_eq!(c.call("get", D, &format!("{D}?{q}"), key, "tenant_0", None).await.0, want, "{q}");
    }
    assert_eq!(c.call("get", D, &format!("{D}?type=summary"), &viewer, "acme", None).await.0, 403);

    traces_and_explanations(&mut c, &viewer, &acme_viewer).await;
    tenant_and_operations(&mut c, &admin, &viewer, &acme_admin, &platform).await;

    let documented: BTreeSet<(String, String)> = c.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
        .collect();
    let missed: Vec<_> = documented.difference(&c.seen).collect();
    assert!(missed.is_empty(), "documented but never exercised: {missed:?}");
    assert!(c.checked > 50, "{} answers validated", c.checked);

    schemathesis(&c.app, &admin, documented.len()).await;
}

/// schemathesis (PyPI; `scripts/services.sh up` installs it) generates requests from the
/// document for every operation and checks every answer against it: no 5xx, statuses, content
/// types, headers and bodies as documented, valid requests accepted and invalid ones refused.
/// Bounded: 30 examples an operation, a fixed seed.
async fn schemathesis(app: &TestApp, key: &str, operations: usize) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis/schemathesis.toml");
    let url = format!("{}/api/v1/openapi.json", app.address);
    let out = tokio::process::Command::new(std::env::var("DV_TEST_SCHEMATHESIS").unwrap_or_else(|_| "st".into()))
        .args(["--config-file", config, "run", &url, "-H", &format!("X-API-Key: {key}"), "--checks", "all"])
        .args(["--max-examples", "30", "--seed", "1", "--workers", "1", "--no-color"])
        .output()
        .await
        .expect("schemathesis (`st`) runs: `scripts/services.sh up` installs it");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found problems:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary = report.lines().rev().find(|l| l.contains("generated")).unwrap_or_default();
    eprintln!("schemathesis: {summary}");
    assert!(report.contains(&format!("Tested: {operations}")) && !report.contains("Runtime Error"), "{report}");
}

async fn traces_and_explanations(c: &mut Checker, viewer: &str, acme: &str) {
    let (status, page) =
        c.call("get", "/api/v1/decision-traces", "/api/v1/decision-traces?limit=5", viewer, "tenant_0", None).await;
    assert_eq!(status, 200);
    let id = page["traces"][0]["id"].as_str().expect("a trace").to_owned();
    let one = "/api/v1/decision-traces/{id}";
    assert_eq!(c.call("get", one, &format!("/api/v1/decision-traces/{id}"), viewer, "tenant_0", None).await.0, 200);
    assert_eq!(c.call("get", one, "/api/v1/decision-traces/nope", viewer, "tenant_0", None).await.0, 404);
    assert_eq!(
        c.call("get", "/api/v1/decision-traces", "/api/v1/decision-traces?limit=many", viewer, "tenant_0", None)
            .await
            .0,
        400
    );

    let shap = "/api/v1/decisions/{id}/shap";
    let row = &fixture("d5_t12_logistic_named")["rows"][0]["attributes"];
    let body = json!({"modelId": "mdl_0", "offerId": "off_premium_card", "attributes": row});
    let (status, answer) = c.call("post", shap, "/api/v1/decisions/trace_001/shap", acme, "acme", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(c.call("post", shap, "/api/v1/decisions/trace_001/shap", acme, "acme", Some(json!({}))).await.0, 400);
    // tenant_0 has not opted in.
    let refused =
        c.call("post", shap, &format!("/api/v1/decisions/{id}/shap"), viewer, "tenant_0", Some(json!({}))).await;
    assert!(refused.0 == 403 || refused.0 == 400, "{refused:?}");

    let narrative = "/api/v1/decisions/{id}/narrative";
    for mode in ["regulator", "agent", "customer"] {
        let body = json!({"mode": mode});
        let (status, n) =
            c.call("post", narrative, "/api/v1/decisions/trace_001/narrative", acme, "acme", Some(body)).await;
        assert_eq!(status, 200, "{n}");
    }
    let (status, _) = c
        .call("post", narrative, &format!("/api/v1/decisions/{id}/narrative"), viewer, "tenant_0", Some(json!({})))
        .await;
    assert_eq!(status, 403);
}

async fn tenant_and_operations(c: &mut Checker, admin: &str, viewer: &str, acme_admin: &str, platform: &str) {
    let s = "/api/v1/settings";
    assert_eq!(c.call("get", s, s, viewer, "tenant_0", None).await.0, 200);
    let change = json!({"decisionTraceSampleRate": 0.5, "aiAnalyzerSettings": {"llmExplanationsEnabled": true}});
    assert_eq!(c.call("put", s, s, admin, "tenant_0", Some(change)).await.0, 200);
    assert_eq!(c.call("put", s, s, admin, "tenant_0", Some(json!({"decisionTraceSampleRate": 2}))).await.0, 400);
    assert_eq!(c.call("put", s, s, viewer, "tenant_0", Some(json!({}))).await.0, 403);

    let a = "/api/v1/audit-log";
    let (status, log) = c.call("get", a, a, acme_admin, "acme", None).await;
    assert_eq!(status, 200);
    assert!(log["total"].as_i64().unwrap() >= 2, "the SHAP and regulator narrative rows: {log}");
    assert_eq!(c.call("get", a, &format!("{a}?since=yesterday"), acme_admin, "acme", None).await.0, 400);

    let k = "/api/v1/api-keys";
    let (status, listed) = c.call("get", k, k, admin, "tenant_0", None).await;
    assert_eq!(status, 200, "{listed}");
    // A spare key, the newest: the one revoked below.
    c.app.env.api_key("tenant_0", Role::Viewer).await;
    let (_, listed) = c.call("get", k, k, admin, "tenant_0", None).await;
    let id = listed["keys"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    let one = "/api/v1/api-keys/{id}";
    assert_eq!(c.call("delete", one, &format!("{k}/{id}"), admin, "tenant_0", None).await.0, 200);
    assert_eq!(c.call("delete", one, &format!("{k}/{id}"), admin, "tenant_0", None).await.0, 404);
    assert_eq!(c.call("delete", one, &format!("{k}/nothex"), admin, "tenant_0", None).await.0, 400);
    assert_eq!(c.call("get", k, k, viewer, "tenant_0", None).await.0, 403);

    let st = "/api/v1/ingest/status";
    let (_, tenant) = c.call("get", st, st, admin, "tenant_0", None).await;
    assert!(tenant["tenantId"].is_string(), "{tenant}");
    let (_, all) = c.call("get", st, st, platform, "", None).await;
    assert!(all["partitions"].as_array().is_some_and(|p| !p.is_empty()), "{all}");
    let dl = "/api/v1/dead-letters";
    assert_eq!(c.call("get", dl, &format!("{dl}?topic=interactions&limit=10"), admin, "tenant_0", None).await.0, 200);
    assert_eq!(c.call("get", dl, dl, platform, "", None).await.0, 200);
    assert_eq!(c.call("get", dl, dl, viewer, "tenant_0", None).await.0, 403);
    let (replay, purge) = ("/api/v1/dead-letters/replay", "/api/v1/dead-letters/purge");
    let (status, report) =
        c.call("post", replay, replay, admin, "tenant_0", Some(json!({"reason": "too_large"}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(c.call("post", replay, replay, platform, "", Some(json!({"ids": [1, 2]}))).await.0, 200);
    assert_eq!(c.call("post", replay, replay, viewer, "tenant_0", Some(json!({}))).await.0, 403);
    let since = json!({"since": "2000-01-01T00:00:00Z", "topic": "nope"});
    let (status, purged) = c.call("post", purge, purge, admin, "tenant_0", Some(since)).await;
    assert_eq!((status, purged["purged"].as_i64()), (200, Some(0)), "{purged}");
    assert_eq!(c.call("post", purge, purge, admin, "tenant_0", Some(json!({"since": "yesterday"}))).await.0, 400);

    for p in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(c.call("get", p, p, "", "", None).await.0, 200, "{p}");
    }
}
