//! The decision-traces API and tenant settings: pagination, filters, the 200 cap, 404 across
//! tenants, whole bodies (unknown fields kept), and sampling at 0.0, 0.5 and 1.0 deciding the
//! same on a replay of the same topics into a fresh database.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::startup::Mode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, TestEnv};
use crate::model::{catalog, ts};
use crate::processes::IngestProcess;

fn trace(tenant: &str, i: usize) -> Value {
    json!({"id": format!("{tenant}-tr{i:03}"), "tenantId": tenant, "customerId": format!("c{}", i % 10),
           "requestId": format!("req{i}"), "decisionFlowKey": "default-flow",
           "pipeline": [{"stage": "scoring", "candidates": 3, "durationMs": 4}], "result": {"count": 1},
           "scoringResults": [{"offerId": "o1", "score": 0.5, "rank": 1}], "selectedOffers": [{"offerId": "o1", "score": 0.5, "rank": 1}],
           "totalDurationMs": 12, "createdAt": ts(Utc::now() - chrono::Duration::milliseconds(1_000 - i as i64)),
           "extraField": {"kept": true}})
}

async fn stored_ids(app: &TestApp, key: &str, tenant: &str) -> BTreeSet<String> {
    let (status, body) = app.get("/api/v1/decision-traces?limit=200", key, tenant).await;
    assert_eq!(status, 200, "{body}");
    let ids: BTreeSet<String> =
        body["traces"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(body["total"], json!(ids.len()), "all stored traces fit one page here");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_api_pages_filters_and_samples_deterministically() {
    let env = TestEnv::new().await;
    // Settings first: "half" samples 0.5, "none" 0.0, "acme" keeps the defaults (1.0).
    env.publish(
        TopicKind::Catalog,
        &catalog("half", "tenant_settings", "half", "upsert", Some(1), json!({"decisionTraceSampleRate": 0.5})),
    );
    env.publish(
        TopicKind::Catalog,
        &catalog("none", "tenant_settings", "none", "upsert", Some(1), json!({"decisionTraceSampleRate": 0.0})),
    );
    let app = spawn_app_with(env, Mode::All).await;
    let env = &app.env;
    env.wait_caught_up(Duration::from_secs(60)).await;
    let mut acme_traces = Vec::new();
    for tenant in ["acme", "half", "none"] {
        for i in 0..150 {
            let t = trace(tenant, i);
            env.publish(TopicKind::DecisionTraces, &t);
            if tenant == "acme" {
                acme_traces.push(t);
            }
        }
    }
    // Retention (30 days by default): a trace of 40 days ago counts in the aggregates but is not
    // stored raw; one of 2 days ago is stored, in its own day's partition.
    let mut old = trace("acme", 900);
    old["createdAt"] = json!(ts(Utc::now() - chrono::Duration::days(40)));
    let mut two_days = trace("acme", 901);
    two_days["createdAt"] = json!(ts(Utc::now() - chrono::Duration::days(2)));
    env.publish(TopicKind::DecisionTraces, &old);
    env.publish(TopicKind::DecisionTraces, &two_days);
    env.wait_caught_up(Duration::from_secs(90)).await;
    let acme = env.api_key("acme", Role::Viewer).await;
    assert_eq!(app.get("/api/v1/decision-traces/acme-tr900", &acme, "acme").await.0, 404);
    assert_eq!(app.get("/api/v1/decision-traces/acme-tr901", &acme, "acme").await.0, 200);
    let traces_counted: i64 = sqlx::query_scalar("SELECT sum(traces)::int8 FROM trace_daily WHERE tenant_id = 'acme'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(traces_counted, 152, "aggregates count every trace");
    // Each stored trace's id is indexed beside it (decision_trace_ids), the expired one's not.
    let indexed = |id: &'static str| {
        let pool = env.pool.clone();
        async move {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM decision_trace_ids WHERE tenant_id = 'acme' AND id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            n
        }
    };
    assert_eq!((indexed("acme-tr900").await, indexed("acme-tr901").await, indexed("acme-tr000").await), (0, 1, 1));
    // Dropping partitions past a 1-day retention removes the older day whole, its ids with it;
    // today's stay.
    let dropped = consumers::janitor::drop_expired_trace_partitions(&env.pool, 1).await.unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(app.get("/api/v1/decision-traces/acme-tr901", &acme, "acme").await.0, 404);
    assert_eq!((indexed("acme-tr901").await, indexed("acme-tr000").await), (0, 1));
    let ids: i64 = sqlx::query_scalar("SELECT count(*) FROM decision_trace_ids WHERE tenant_id = 'acme'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(ids, 150, "one id per stored trace");
    let half = env.api_key("half", Role::Viewer).await;
    let none = env.api_key("none", Role::Viewer).await;

    // 1.0 stores all, 0.0 none, 0.5 about half.
    let all = stored_ids(&app, &acme, "acme").await;
    assert_eq!(all.len(), 150);
    assert!(!all.contains("acme-tr901"));
    assert!(stored_ids(&app, &none, "none").await.is_empty());
    let halved = stored_ids(&app, &half, "half").await;
    assert!((55..=95).contains(&halved.len()), "about half sampled: {}", halved.len());

    // Pagination: newest first, exact total, limit capped at 200, bad values 400.
    let (_, p1) = app.get("/api/v1/decision-traces?limit=50&offset=0", &acme, "acme").await;
    let (_, p3) = app.get("/api/v1/decision-traces?limit=50&offset=100", &acme, "acme").await;
    assert_eq!((p1["total"].clone(), p1["limit"].clone(), p1["offset"].clone()), (json!(150), json!(50), json!(0)));
    assert_eq!(p1["traces"][0]["id"], "acme-tr149");
    assert_eq!(p3["traces"].as_array().unwrap().len(), 50);
    assert_eq!(p3["traces"][49]["id"], "acme-tr000");
    assert_eq!(p1["traces"][0]["decisionFlowKey"], "default-flow");
    let (_, capped) = app.get("/api/v1/decision-traces?limit=500", &acme, "acme").await;
    assert_eq!(capped["limit"], 200);
    for bad in ["limit=-1", "limit=abc", "offset=-5", "offset=1.5"] {
        let (status, _) = app.get(&format!("/api/v1/decision-traces?{bad}"), &acme, "acme").await;
        assert_eq!(status, 400, "{bad}");
    }
    // Filters.
    let (_, by_customer) = app.get("/api/v1/decision-traces?customerId=c3", &acme, "acme").await;
    assert_eq!(by_customer["total"], 15);
    let (_, by_request) = app.get("/api/v1/decision-traces?requestId=req7", &acme, "acme").await;
    assert_eq!(by_request["traces"][0]["id"], "acme-tr007");

    // One trace: the whole body as published; another tenant's or an unknown id → 404.
    let (status, body) = app.get("/api/v1/decision-traces/acme-tr007", &acme, "acme").await;
    assert_eq!(status, 200);
    assert_eq!(body, acme_traces[7], "the stored body is the published event");
    assert_eq!(body["extraField"], json!({"kept": true}));
    let other = halved.iter().next().unwrap();
    assert_eq!(app.get(&format!("/api/v1/decision-traces/{other}"), &acme, "acme").await.0, 404);
    assert_eq!(app.get("/api/v1/decision-traces/nope", &acme, "acme").await.0, 404);

    // A trace stored before raw traces were kept compressed (a jsonb body, migration
    // 20261202000040) reads as it did, listed and whole.
    let old = trace("acme", 500);
    let at: chrono::DateTime<Utc> = old["createdAt"].as_str().unwrap().parse().unwrap();
    sqlx::query(
        "INSERT INTO decision_traces (tenant_id, day, id, customer_id, request_id, created_at, body)
         VALUES ('acme', $1, $2, $3, $4, $5, $6)",
    )
    .bind(at.date_naive())
    .bind(old["id"].as_str())
    .bind(old["customerId"].as_str())
    .bind(old["requestId"].as_str())
    .bind(at)
    .bind(&old)
    .execute(&app.env.pool)
    .await
    .unwrap();
    // Its id row, as migration 20261202000060 backfills it for such traces
    // (`exactly_once::traces_stored_before_the_upgrade_are_found_by_id_after_it`).
    sqlx::query("INSERT INTO decision_trace_ids (tenant_id, id, day) VALUES ('acme', $1, $2)")
        .bind(old["id"].as_str())
        .bind(at.date_naive())
        .execute(&app.env.pool)
        .await
        .unwrap();
    let (_, listed) = app.get("/api/v1/decision-traces?requestId=req500", &acme, "acme").await;
    let want = json!({"id": old["id"], "customerId": old["customerId"], "requestId": "req500",
                      "decisionFlowKey": old["decisionFlowKey"], "pipeline": old["pipeline"], "result": old["result"],
                      "totalDurationMs": old["totalDurationMs"], "createdAt": old["createdAt"]});
    assert_eq!(listed["traces"], json!([want]));
    let (status, body) = app.get("/api/v1/decision-traces/acme-tr500", &acme, "acme").await;
    assert_eq!((status, body), (200, old));
    for table in ["decision_traces", "decision_trace_ids"] {
        let delete = format!("DELETE FROM {table} WHERE id = 'acme-tr500'");
        sqlx::query(&delete).execute(&app.env.pool).await.unwrap();
    }

    // Settings: defaults, admin-only PUT, validation.
    let (_, s) = app.get("/api/v1/settings", &acme, "acme").await;
    assert_eq!(
        s,
        json!({"decisionTraceEnabled": true, "decisionTraceSampleRate": 1.0, "aiAnalyzerSettings": {"llmExplanationsEnabled": false}})
    );
    let admin = app.env.api_key("acme", Role::Admin).await;
    let put = |k: String, body: Value| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/settings", app.address);
        async move {
            client
                .put(url)
                .header("X-API-Key", k)
                .header("X-Tenant-Id", "acme")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(put(acme.clone(), json!({"decisionTraceSampleRate": 0.25})).await, 403);
    assert_eq!(put(admin.clone(), json!({"decisionTraceSampleRate": 1.5})).await, 400);
    assert_eq!(put(admin.clone(), json!({"decisionTraceSampleRate": 0.25})).await, 200);
    let (_, s) = app.get("/api/v1/settings", &acme, "acme").await;
    assert_eq!(s["decisionTraceSampleRate"], 0.25);

    // A replay of the same topics into a fresh database decides the same sample, given the same
    // settings. Settings apply at processing time and sit in another topic than the traces, so
    // a replay reading both at once may meet a trace before its tenant's settings: the replay
    // gets them first (through the API, as an operator would before a rebuild), then ingests.
    let replay = spawn_app_with(app.env.replay().await, Mode::Api).await;
    for (tenant, rate) in [("half", 0.5), ("none", 0.0)] {
        let admin = replay.env.api_key(tenant, Role::Admin).await;
        let status = replay
            .client
            .put(format!("{}/api/v1/settings", replay.address))
            .header("X-API-Key", admin)
            .header("X-Tenant-Id", tenant)
            .json(&json!({"decisionTraceSampleRate": rate}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let ingest = IngestProcess::start(&replay.env);
    replay.env.wait_caught_up(Duration::from_secs(90)).await;
    let half2 = replay.env.api_key("half", Role::Viewer).await;
    assert_eq!(stored_ids(&replay, &half2, "half").await, halved);
    let none2 = replay.env.api_key("none", Role::Viewer).await;
    assert!(stored_ids(&replay, &none2, "none").await.is_empty());
    assert!(ingest.terminate().success());
}
