//! The catalog's names the API holds in memory (`api::catalog::NameCache`, migration
//! `catalog_versions`) follow every change to the catalog at once, whoever makes it: a catalog
//! event, a hand edit, a deletion, another tenant's change (which leaves this one's alone).

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with_settings, TestApp, TestEnv};
use crate::model::{catalog, ts};

/// The names acceptance_rate and offer_performance_grouped (by channel: offers and channels)
/// give, per offer id and per channel id.
async fn names(app: &TestApp, key: &str, tenant: &str) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let (status, rates) = app.get("/api/v1/dashboard-data?type=acceptance_rate&days=7", key, tenant).await;
    assert_eq!(status, 200, "{rates}");
    let offers = rates["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["offerId"].as_str().unwrap().to_owned(), r["offerName"].as_str().unwrap().to_owned()))
        .collect();
    let path = "/api/v1/dashboard-data?type=offer_performance_grouped&days=7&groupBy=channel";
    let (status, grouped) = app.get(path, key, tenant).await;
    assert_eq!(status, 200, "{grouped}");
    let channels = grouped["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["groupId"].as_str().unwrap().to_owned(), g["groupName"].as_str().unwrap().to_owned()))
        .collect();
    (offers, channels)
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn impression(tenant: &str, id: &str, offer: &str) -> Value {
    json!({"id": id, "tenantId": tenant, "customerId": "c1", "offerId": offer, "channelId": "web",
           "outcome": "impression", "revenue": 0.0, "cost": 0.0, "occurredAt": ts(Utc::now())})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_follow_every_catalog_change_at_once() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    // No response cache: every request computes, so what is asserted is the names' copy.
    settings.http.cache_ttl = Duration::ZERO;
    let app = spawn_app_with_settings(env, settings).await;
    let env = &app.env;
    for (tenant, entity, id, name) in
        [("acme", "offer", "o1", "First"), ("acme", "channel", "web", "Web"), ("globex", "offer", "o1", "Globex one")]
    {
        env.publish(TopicKind::Catalog, &catalog(tenant, entity, id, "upsert", Some(1), json!({"name": name})));
    }
    for (i, (tenant, offer)) in [("acme", "o1"), ("acme", "o2"), ("globex", "o1")].into_iter().enumerate() {
        env.publish(TopicKind::Interactions, &impression(tenant, &format!("i{i}"), offer));
    }
    env.wait_caught_up(Duration::from_secs(60)).await;
    let (acme, globex) = (env.api_key("acme", Role::Viewer).await, env.api_key("globex", Role::Viewer).await);

    // o2 is in no catalog: its id stands for its name. Read twice: the second is served from
    // the copy the first loaded.
    let first = (pairs(&[("o1", "First"), ("o2", "o2")]), pairs(&[("web", "Web")]));
    assert_eq!(names(&app, &acme, "acme").await, first);
    assert_eq!(names(&app, &acme, "acme").await, first);
    assert_eq!(names(&app, &globex, "globex").await.0, pairs(&[("o1", "Globex one")]));

    // A catalog event renames o1 and names o2.
    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "o1", "upsert", Some(2), json!({"name": "Second"})));
    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "o2", "upsert", Some(1), json!({"name": "Two"})));
    env.wait_caught_up(Duration::from_secs(60)).await;
    assert_eq!(names(&app, &acme, "acme").await.0, pairs(&[("o1", "Second"), ("o2", "Two")]));

    // A hand edit moves no Kafka offset (so no data version): the next answer has it anyway.
    sqlx::query("UPDATE catalog_entities SET name = 'Hand' WHERE tenant_id = 'acme' AND entity = 'channel'")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(names(&app, &acme, "acme").await.1, pairs(&[("web", "Hand")]));

    // Another tenant's change leaves acme's copy as it is; its own is renewed.
    let version = |tenant: &'static str| async move {
        sqlx::query_scalar::<_, i64>("SELECT version FROM catalog_versions WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&env.pool)
            .await
            .unwrap()
    };
    let acme_version = version("acme").await;
    sqlx::query("UPDATE catalog_entities SET name = 'Globex uno' WHERE tenant_id = 'globex'")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(version("acme").await, acme_version);
    assert_eq!(names(&app, &globex, "globex").await.0, pairs(&[("o1", "Globex uno")]));

    // A deletion: the id stands for the name again. Then the whole table is emptied.
    sqlx::query("DELETE FROM catalog_entities WHERE tenant_id = 'acme' AND entity_id = 'o2'")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(names(&app, &acme, "acme").await.0, pairs(&[("o1", "Second"), ("o2", "o2")]));
    sqlx::query("TRUNCATE catalog_entities").execute(&env.pool).await.unwrap();
    assert_eq!(names(&app, &acme, "acme").await, (pairs(&[("o1", "o1"), ("o2", "o2")]), pairs(&[("web", "web")])));
    app.stop().await.unwrap();
}
