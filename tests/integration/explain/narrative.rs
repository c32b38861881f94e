//! Narratives: the template writer (every mode, the cache, `noCache`, the audit of regulator
//! narratives, every refusal, the rate limit) and an OpenAI-compatible provider served by a
//! local server speaking the chat-completions protocol (the one stand-in the tests allow).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use decision_views::api::rate_limit::{Policy, NARRATIVE};
use serde_json::{json, Value};

use super::{keys, publish_decisions};
use crate::helpers::{spawn_app, spawn_app_with_settings, TestEnv};

const PATH: &str = "/api/v1/decisions/trace_001/narrative";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_narratives_are_cached_audited_and_refused_where_they_must_be() {
    let app = spawn_app().await;
    publish_decisions(&app).await;
    let (viewer, admin, globex) = keys(&app).await;

    // Regulator (the default): formal prose with every stage, written from the stored trace.
    let (status, first, _) = app.post(PATH, &viewer, "acme", &json!({})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["mode"].as_str(), first["model"].as_str(), &first["cached"]),
        (Some("regulator"), Some("template-v1"), &json!(false))
    );
    assert_eq!(first["tokens"], json!({"input": null, "output": null}), "the template reports no tokens");
    let text = first["narrative"].as_str().unwrap();
    for part in [
        "customer CUST001 in decision flow default-flow for channel email",
        "Qualification: 3 offers were evaluated and 2 passed. Removed: off_restricted (rule rule_42: segment_mismatch).",
        "Contact policy: 3 offers were evaluated and 2 passed. Removed: off_weekly_promo (policy pol_email_daily_cap: frequency_cap).",
        "off_premium_card (\"Premium Card\") at rank 1 with score 0.89",
        "off_gold_plus at rank 2 with score 0.71, 0.18 below the lowest selected score",
    ] {
        assert!(text.contains(part), "missing {part:?}:\n{text}");
    }
    // A repeat is the cached narrative, same text and time; noCache writes it afresh.
    let (_, again, _) = app.post(PATH, &viewer, "acme", &json!({"mode": "regulator"})).await;
    assert_eq!(
        (&again["cached"], &again["narrative"], &again["createdAt"]),
        (&json!(true), &first["narrative"], &first["createdAt"])
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (_, fresh, _) = app.post(PATH, &viewer, "acme", &json!({"noCache": true})).await;
    assert_eq!((&fresh["cached"], &fresh["narrative"]), (&json!(false), &first["narrative"]));
    assert!(fresh["createdAt"].as_str() > first["createdAt"].as_str(), "{fresh} after {first}");
    let (_, replaced, _) = app.post(PATH, &viewer, "acme", &json!({})).await;
    assert_eq!(
        (&replaced["cached"], &replaced["createdAt"]),
        (&json!(true), &fresh["createdAt"]),
        "the entry was replaced"
    );

    // Agent: the facts as a JSON document; customer: plain sentences without internal ids.
    let (_, agent, _) = app.post(PATH, &viewer, "acme", &json!({"mode": "agent"})).await;
    let doc: Value = serde_json::from_str(agent["narrative"].as_str().unwrap()).unwrap();
    assert_eq!(
        (doc["traceId"].as_str(), doc["selected"][0]["offerName"].as_str()),
        (Some("trace_001"), Some("Premium Card"))
    );
    assert_eq!(doc["qualification"]["removed"][0]["by"], "rule_42");
    let (_, customer, _) = app.post(PATH, &viewer, "acme", &json!({"mode": "customer"})).await;
    let text = customer["narrative"].as_str().unwrap();
    assert!(text.starts_with("We recommended Premium Card to you."), "{text}");
    assert!(!["off_", "rule_", "pol_", "CUST", "trace_"].iter().any(|id| text.contains(id)), "{text}");

    // Each regulator narrative is audited, cached or not; agent and customer ones are not.
    let (_, log) = app.get_audit("?action=generate_narrative", &admin).await;
    let cached: Vec<&Value> = log["entries"].as_array().unwrap().iter().map(|e| &e["changes"]["cached"]).collect();
    assert_eq!(cached, [&json!(true), &json!(false), &json!(true), &json!(false)], "newest first: {log}");
    let entry = &log["entries"][3];
    assert_eq!(
        (entry["entityType"].as_str(), entry["entityId"].as_str(), entry["entityName"].as_str()),
        (Some("decision_trace"), Some("trace_001"), Some("regulator narrative"))
    );
    assert_eq!(entry["changes"]["narrativePreview"].as_str(), Some(&first["narrative"].as_str().unwrap()[..200]));
    assert_eq!(
        (entry["changes"]["mode"].as_str(), entry["changes"]["model"].as_str()),
        (Some("regulator"), Some("template-v1"))
    );
    assert_eq!(entry["keyName"], "test");

    // Refusals: a bad mode or body, a tenant that did not opt in (the seed's sentence), a trace
    // of another tenant or none, a role-less key.
    assert_eq!(app.post(PATH, &viewer, "acme", &json!({"mode": "poet"})).await.0, 400);
    assert_eq!(app.post(PATH, &viewer, "acme", &json!({"noCache": "yes"})).await.0, 400);
    let (status, body, _) = app.post("/api/v1/decisions/trace_g/narrative", &globex, "globex", &json!({})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("LLM explanations are not enabled for this tenant.")));
    for path in ["/api/v1/decisions/trace_g/narrative", "/api/v1/decisions/nope/narrative"] {
        let (status, body, _) = app.post(path, &viewer, "acme", &json!({})).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(app.post(PATH, "not-a-key", "acme", &json!({})).await.0, 401);
    assert_eq!(app.post(PATH, &globex, "acme", &json!({})).await.0, 403, "another tenant's key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narratives_are_rate_limited_per_tenant() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.http.narrative = Policy { rate: 2, burst: 2, ..NARRATIVE };
    let app = spawn_app_with_settings(env, settings).await;
    publish_decisions(&app).await;
    let (viewer, _, globex) = keys(&app).await;
    for _ in 0..2 {
        assert_eq!(app.post(PATH, &viewer, "acme", &json!({})).await.0, 200);
    }
    let (status, body, retry) = app.post(PATH, &viewer, "acme", &json!({})).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));
    // Another tenant has its own budget (its refusal is the opt-in's, not the limit's).
    assert_eq!(app.post("/api/v1/decisions/trace_g/narrative", &globex, "globex", &json!({})).await.0, 403);
}

/// A stand-in for an OpenAI-compatible API: answers from the prompt it gets, or fails.
#[derive(Clone, Default)]
struct Llm {
    fail: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    last: Arc<Mutex<Value>>,
}

async fn completions(State(llm): State<Llm>, Json(req): Json<Value>) -> Result<Json<Value>, StatusCode> {
    llm.calls.fetch_add(1, Ordering::SeqCst);
    *llm.last.lock().unwrap() = req.clone();
    if llm.fail.load(Ordering::SeqCst) {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let facts: Value = serde_json::from_str(req["messages"][1]["content"].as_str().unwrap_or("{}")).unwrap_or_default();
    let text = format!("The model explains {} for {}.", facts["selected"][0]["offerId"], facts["customerId"]);
    Ok(Json(json!({"choices": [{"message": {"role": "assistant", "content": text}}],
                   "usage": {"prompt_tokens": 1420, "completion_tokens": 310}})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_compatible_provider_writes_counts_tokens_and_its_failure_is_a_502() {
    let llm = Llm::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = Router::new().route("/v1/chat/completions", post(completions)).with_state(llm.clone());
    tokio::spawn(async move { axum::serve(listener, server).await });

    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.llm.url = Some(url);
    settings.llm.model = "claude-sonnet-4-7".into();
    settings.llm.api_key = Some(decision_views::settings::Secret::new("sk-test"));
    let app = spawn_app_with_settings(env, settings).await;
    publish_decisions(&app).await;
    let (viewer, _, _) = keys(&app).await;

    // A failing provider: 502 with a JSON error, and nothing cached.
    llm.fail.store(true, Ordering::SeqCst);
    let (status, body, _) = app.post(PATH, &viewer, "acme", &json!({"mode": "customer"})).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().unwrap().contains("the narrative provider failed"), "{body}");
    llm.fail.store(false, Ordering::SeqCst);

    let (status, n, _) = app.post(PATH, &viewer, "acme", &json!({"mode": "customer"})).await;
    assert_eq!(status, 200, "{n}");
    assert_eq!(n["narrative"], "The model explains \"off_premium_card\" for \"CUST001\".");
    assert_eq!(
        (n["model"].as_str(), &n["tokens"], &n["cached"]),
        (Some("claude-sonnet-4-7"), &json!({"input": 1420, "output": 310}), &json!(false))
    );
    assert_eq!(llm.calls.load(Ordering::SeqCst), 2, "the failure was not cached");
    let sent = llm.last.lock().unwrap().clone();
    assert_eq!((sent["model"].as_str(), &sent["temperature"]), (Some("claude-sonnet-4-7"), &json!(0)));
    assert!(sent["messages"][0]["content"].as_str().unwrap().contains("customer"), "the mode's instructions");
    let (_, again, _) = app.post(PATH, &viewer, "acme", &json!({"mode": "customer"})).await;
    assert_eq!((&again["cached"], &again["tokens"]), (&json!(true), &n["tokens"]));
    assert_eq!(llm.calls.load(Ordering::SeqCst), 2, "answered from the cache");
}
