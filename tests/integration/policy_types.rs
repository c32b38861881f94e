//! policy_impact: suppressions active now, exact through creates, lifts (also before their
//! create), expiries (one crossing during the test), duplicates and the janitor's sweep.

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::spawn_app;
use crate::model::ts;

fn suppression(id: &str, sid: &str, policy: &str, op: &str, expires_in_secs: Option<i64>) -> Value {
    let now = Utc::now();
    let mut v = json!({"id": id, "tenantId": "acme", "suppressionId": sid, "customerId": "c1", "policyId": "p",
                       "policyType": policy, "op": op, "createdAt": ts(now - chrono::Duration::minutes(30))});
    if let Some(s) = expires_in_secs {
        v["expiresAt"] = json!(ts(now + chrono::Duration::seconds(s)));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_impact_counts_suppressions_active_now() {
    let app = spawn_app().await;
    let env = &app.env;
    let key = env.api_key("acme", Role::Viewer).await;
    let events = [
        suppression("e1", "s1", "frequency_cap", "create", None),
        suppression("e2", "s2", "frequency_cap", "create", Some(3600)),
        suppression("e3", "s3", "frequency_cap", "create", Some(-60)), // already expired
        suppression("e4", "s4", "cooldown", "create", None),
        suppression("e5", "s5", "cooldown", "create", None),
        suppression("e6", "s5", "cooldown", "lift", None), // lifted
        suppression("e7", "s6", "cooldown", "lift", None), // lift before its create
        suppression("e8", "s6", "cooldown", "create", None),
        suppression("e9", "s7", "cooldown", "create", Some(4)), // expires during the test
        suppression("e1", "s1", "frequency_cap", "create", None), // resent duplicate
    ];
    for e in &events {
        env.publish(TopicKind::Suppressions, e);
    }
    let mut other = suppression("g1", "s1", "frequency_cap", "create", None);
    other["tenantId"] = json!("globex");
    env.publish(TopicKind::Suppressions, &other);
    env.wait_caught_up(Duration::from_secs(60)).await;

    // Active: s1, s2 (frequency_cap); s4, s7 (cooldown).
    let (status, body) = app.get("/api/v1/dashboard-data?type=policy_impact&days=30", &key, "acme").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"data": [{"policyType": "cooldown", "count": 2}, {"policyType": "frequency_cap", "count": 2}], "totalActive": 4})
    );

    // s7 expires; the answer is exact before the janitor sweeps (after the cache's 2 s bound).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let expected = json!({"data": [{"policyType": "frequency_cap", "count": 2}, {"policyType": "cooldown", "count": 1}], "totalActive": 3});
    let (_, body) = app.get("/api/v1/dashboard-data?type=policy_impact", &key, "acme").await;
    assert_eq!(body, expected);
    // …and after it: the sweep moves s7 out of the counters, the answer does not change.
    // (The app's own janitor may have swept first; either way s7 leaves the counter once.)
    consumers::janitor::sweep_expired_suppressions(&env.pool).await.unwrap();
    let cooldown: i64 = sqlx::query_scalar(
        "SELECT active FROM suppression_active_counts WHERE tenant_id = 'acme' AND policy_type = 'cooldown'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(cooldown, 1);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (_, body) = app.get("/api/v1/dashboard-data?type=policy_impact", &key, "acme").await;
    assert_eq!(body, expected);
}
