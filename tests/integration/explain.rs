//! Decision explanations (docs/api.md 5.3, issue 12): narratives with their providers and
//! cache, SHAP values against XGBoost's own, the audit log, and every refusal. One stored
//! decision of a tenant that opted in, published through the real broker; another tenant that
//! did not; the expected values come from the published trace and model.

mod audit;
mod narrative;
pub mod shap;

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::model::{catalog, ts};

/// The decision every test explains (acme's), as published.
pub fn trace(tenant: &str, id: &str) -> Value {
    json!({"id": id, "tenantId": tenant, "customerId": "CUST001", "requestId": "req-1",
        "decisionFlowKey": "default-flow", "channelId": "email",
        "qualificationResults": [
            {"offerId": "off_premium_card", "passed": true, "reason": "passed"},
            {"offerId": "off_gold_plus", "passed": true, "reason": "passed"},
            {"offerId": "off_restricted", "passed": false, "reason": "segment_mismatch", "ruleId": "rule_42"}],
        "contactPolicyResults": [
            {"offerId": "off_premium_card", "blocked": false, "reason": "passed"},
            {"offerId": "off_gold_plus", "blocked": false, "reason": "passed"},
            {"offerId": "off_weekly_promo", "blocked": true, "reason": "frequency_cap", "policyId": "pol_email_daily_cap"}],
        "scoringResults": [{"offerId": "off_premium_card", "score": 0.89, "rank": 1},
                           {"offerId": "off_gold_plus", "score": 0.71, "rank": 2}],
        "selectedOffers": [{"offerId": "off_premium_card", "score": 0.89, "rank": 1}],
        "totalDurationMs": 42, "createdAt": ts(Utc::now() - chrono::Duration::minutes(5))})
}

/// Applies [`trace`] (acme's, id `t1`) created at `at` as one batch, straight to the views (no
/// broker): how the upgrade tests add a batch of today's code onto carried-over rows.
pub async fn apply_trace_at(pool: &sqlx::PgPool, at: chrono::DateTime<Utc>) {
    let mut trace = trace("acme", "t1");
    trace["createdAt"] = ts(at).into();
    let payload = trace.to_string();
    let topic: std::sync::Arc<str> = std::sync::Arc::from("decision-traces");
    let msg = consumers::batch::Message {
        topic: &topic,
        partition: 0,
        offset: 0,
        key: None,
        payload: Some(payload.as_bytes()),
    };
    let mut batch = consumers::batch::Batch::default();
    batch.add(TopicKind::DecisionTraces, msg, None, &consumers::decode::DecodeLimits::default(), Utc::now());
    assert!(batch.dead_letters.is_empty(), "{:?}", batch.dead_letters);
    consumers::apply::apply_batch(pool, &batch, &crate::isolation::options()).await.unwrap();
}

/// Publishes what the tests explain: acme opted in, with offer names and a trace; globex
/// opted out, with a trace of its own.
pub async fn publish_decisions(app: &TestApp) {
    let env = &app.env;
    let settings = |tenant: &str, on: bool| {
        catalog(
            tenant,
            "tenant_settings",
            tenant,
            "upsert",
            Some(1),
            json!({"aiAnalyzerSettings": {"llmExplanationsEnabled": on}}),
        )
    };
    env.publish(TopicKind::Catalog, &settings("acme", true));
    env.publish(TopicKind::Catalog, &settings("globex", false));
    env.publish(
        TopicKind::Catalog,
        &catalog(
            "acme",
            "offer",
            "off_premium_card",
            "upsert",
            Some(1),
            json!({"name": "Premium Card", "status": "active"}),
        ),
    );
    env.wait_caught_up(Duration::from_secs(60)).await;
    env.publish(TopicKind::DecisionTraces, &trace("acme", "trace_001"));
    env.publish(TopicKind::DecisionTraces, &trace("globex", "trace_g"));
    env.wait_caught_up(Duration::from_secs(60)).await;
}

pub async fn keys(app: &TestApp) -> (String, String, String) {
    let env = &app.env;
    (
        env.api_key("acme", Role::Viewer).await,
        env.api_key("acme", Role::Admin).await,
        env.api_key("globex", Role::Admin).await,
    )
}

impl TestApp {
    /// `GET /api/v1/audit-log{query}` as acme.
    pub async fn get_audit(&self, query: &str, key: &str) -> (u16, Value) {
        self.get(&format!("/api/v1/audit-log{query}"), key, "acme").await
    }
}
