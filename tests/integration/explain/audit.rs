//! The audit log: settings changes with their old and new values, the filters and pages of
//! `GET /api/v1/audit-log`, admins only, each tenant its own; the table refuses changes.

use decision_views::api::auth::Role;
use serde_json::json;

use super::{keys, publish_decisions};
use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changes_are_audited_and_the_log_is_filtered_paged_and_tenant_private() {
    let app = spawn_app().await;
    publish_decisions(&app).await;
    let (viewer, admin, globex) = keys(&app).await;
    let put = |body: serde_json::Value| {
        let (client, url, admin) = (app.client.clone(), format!("{}/api/v1/settings", app.address), admin.clone());
        async move {
            let r = client
                .put(url)
                .header("X-API-Key", admin)
                .header("X-Tenant-Id", "acme")
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }
    };
    assert_eq!(put(json!({"decisionTraceSampleRate": 0.25})).await, 200);
    assert_eq!(put(json!({"decisionTraceEnabled": false})).await, 200);
    assert_eq!(put(json!({"decisionTraceSampleRate": 7})).await, 400, "refused: not audited");

    let (status, log) = app.get_audit("?action=update_settings", &admin).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["total"], 2);
    let newest = &log["entries"][0];
    assert_eq!(
        (newest["action"].as_str(), newest["entityType"].as_str(), newest["entityId"].as_str()),
        (Some("update_settings"), Some("tenant_settings"), Some("acme"))
    );
    assert_eq!(newest["changes"]["old"]["decisionTraceEnabled"], true);
    assert_eq!(newest["changes"]["new"]["decisionTraceEnabled"], false);
    assert_eq!(newest["changes"]["new"]["decisionTraceSampleRate"], 0.25);
    let older = &log["entries"][1];
    assert_eq!(
        (&older["changes"]["old"]["decisionTraceSampleRate"], &older["changes"]["new"]["decisionTraceSampleRate"]),
        (&json!(1.0), &json!(0.25))
    );
    assert_eq!(newest["keyName"], "test");
    assert_eq!(newest["keyId"].as_str().map(str::len), Some(16));

    // Filters and pages: by entity, by time, one entry a page with the exact total.
    let (_, by_entity) = app.get_audit("?entityId=acme&limit=1&offset=1", &admin).await;
    assert_eq!((by_entity["total"].as_i64(), by_entity["entries"].as_array().unwrap().len()), (Some(2), 1));
    assert_eq!(by_entity["entries"][0]["id"], older["id"]);
    let (_, future) = app.get_audit("?since=2999-01-01", &admin).await;
    assert_eq!(future["total"], 0);
    let (_, past) = app.get_audit("?until=2000-01-01T00:00:00Z", &admin).await;
    assert_eq!(past["total"], 0);
    for bad in ["?since=tomorrow", "?since=2026-03-02&until=2026-03-01", "?offset=-1"] {
        assert_eq!(app.get_audit(bad, &admin).await.0, 400, "{bad}");
    }
    // Admins only; another tenant sees none of acme's rows.
    assert_eq!(app.get_audit("", &viewer).await.0, 403);
    let other = app.env.api_key("globex", Role::Admin).await;
    let (_, theirs) = app.get("/api/v1/audit-log", &other, "globex").await;
    assert_eq!(theirs["total"], 0);
    let (_, theirs) = app.get("/api/v1/audit-log", &globex, "globex").await;
    assert_eq!(theirs["total"], 0);

    // Append-only: the database itself refuses to rewrite a row.
    let err = sqlx::query("UPDATE audit_log SET action = 'x'").execute(&app.env.pool).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(sqlx::query("DELETE FROM audit_log").execute(&app.env.pool).await.is_err());
}
