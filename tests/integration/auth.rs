//! Authentication and authorization, and the 400s of the dashboard endpoint.

use decision_views::api::auth::Role;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_tenants_roles_and_types() {
    let app = spawn_app().await;
    let viewer = app.env.api_key("acme", Role::Viewer).await;
    let admin = app.env.api_key("acme", Role::Admin).await;
    let url = |q: &str| format!("{}/api/v1/dashboard-data{q}", app.address);

    // Missing key → 401, unknown key → 401, both with a JSON error.
    let resp = app.client.get(url("?type=summary")).header("X-Tenant-Id", "acme").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let (status, _) = app.get("/api/v1/dashboard-data?type=summary", "dv_not_a_key", "acme").await;
    assert_eq!(status, 401);

    // A key of another tenant → 403; role too low → 403.
    let (status, body) = app.get("/api/v1/dashboard-data?type=summary", &viewer, "globex").await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app.get("/api/v1/ingest/status", &viewer, "acme").await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app.get("/api/v1/dead-letters", &viewer, "acme").await;
    assert_eq!(status, 403);
    let (status, _) = app.get("/api/v1/ingest/status", &admin, "acme").await;
    assert_eq!(status, 200);

    // Unknown type → 400 naming every valid type.
    let (status, body) = app.get("/api/v1/dashboard-data?type=nope", &viewer, "acme").await;
    assert_eq!(status, 400);
    let msg = body["error"].as_str().unwrap();
    for t in ["summary", "funnel", "acceptance_rate", "daily_trend", "why_not_ranked", "anomaly_candidates"] {
        assert!(msg.contains(t), "{msg} names {t}");
    }
    // A parameter a type does not accept → 400 naming the type.
    let (status, body) = app.get("/api/v1/dashboard-data?type=score_distribution&groupBy=nope", &viewer, "acme").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("score_distribution"));
    // Default type is summary.
    let (status, body) = app.get("/api/v1/dashboard-data", &viewer, "acme").await;
    assert_eq!(status, 200);
    assert_eq!(body["activeOffers"], 0);
    // Bad windows → 400.
    for q in ["days=0", "days=366", "days=abc", "asOf=2026-13-01"] {
        let (status, _) = app.get(&format!("/api/v1/dashboard-data?type=daily_trend&{q}"), &viewer, "acme").await;
        assert_eq!(status, 400, "{q}");
    }

    // Health endpoints need no key.
    let r = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
