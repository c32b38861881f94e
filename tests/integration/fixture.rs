//! The standard dataset of the dashboard-type tests: a catalog with versions and a delete,
//! segment memberships, 600 interactions over 10 days (plus another tenant and resent
//! duplicates), published with a real producer and applied before the test reads.

use std::time::Duration;

use chrono::NaiveDate;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::json;

use crate::helpers::{spawn_app, TestApp};
use crate::model::{self, catalog, membership};

const CAUGHT_UP: Duration = Duration::from_secs(60);

pub struct Fixture {
    pub app: TestApp,
    /// A viewer key of tenant "acme".
    pub key: String,
    pub today: NaiveDate,
    /// `asOf` for reproducible windows.
    pub as_of: String,
    /// acme's interactions (each once, though some were published twice).
    pub events: Vec<model::Interaction>,
    /// Customers in seg_vip when the interactions were processed.
    pub vip_customers: Vec<&'static str>,
}

impl Fixture {
    pub fn all(&self) -> Vec<&model::Interaction> {
        self.events.iter().collect()
    }

    pub fn vip(&self) -> Vec<&model::Interaction> {
        self.events.iter().filter(|e| self.vip_customers.contains(&e.customer.as_str())).collect()
    }

    pub async fn get(&self, query: &str) -> (u16, serde_json::Value) {
        self.app.get(&format!("/api/v1/dashboard-data?{query}"), &self.key, "acme").await
    }
}

/// The category of an offer in the dataset's catalog (off_x is not in the catalog).
pub fn category_of(offer: &str) -> Option<&'static str> {
    match offer {
        "off_a" | "off_b" => Some("cat_1"),
        "off_c" => Some("cat_2"),
        _ => None,
    }
}

/// Offers with a budget now (off_d is deleted, off_e's budget-carrying v1 is stale).
pub const BUDGETS: [(&str, i64); 3] = [("off_a", 100), ("off_b", 50), ("off_c", 20)];

/// Active offers of the dataset's catalog, with their creative counts.
pub const ACTIVE_OFFERS: [(&str, i64); 3] = [("off_a", 2), ("off_b", 0), ("off_e", 0)];

pub async fn seeded() -> Fixture {
    let app: TestApp = spawn_app().await;
    let env = &app.env;
    let today = crate::model::test_today();
    let as_of = today.format("%Y-%m-%d").to_string();
    let key = env.api_key("acme", Role::Viewer).await;

    // Catalog, with versions: off_e's stale v1 arrives after v2 and must be ignored; off_d is
    // deleted; cr_4 belongs to the deleted offer.
    let offers = [
        ("off_a", 1, "active", 100.0),
        ("off_b", 1, "active", 50.0),
        ("off_c", 1, "draft", 20.0),
        ("off_d", 1, "active", 30.0),
        ("off_e", 2, "active", 0.0),
        ("off_e", 1, "inactive", 999.0),
    ];
    for (id, v, status, budget) in offers {
        env.publish(
            TopicKind::Catalog,
            &catalog(
                "acme",
                "offer",
                id,
                "upsert",
                Some(v),
                json!({"name": format!("Offer {id}"), "status": status, "priority": 5, "budget": {"allocated": budget},
                       "categoryId": category_of(id)}),
            ),
        );
    }
    env.publish(TopicKind::Catalog, &catalog("acme", "offer", "off_d", "delete", Some(2), json!(null)));
    for (id, offer) in [("cr_1", "off_a"), ("cr_2", "off_a"), ("cr_3", "off_c"), ("cr_4", "off_d")] {
        env.publish(
            TopicKind::Catalog,
            &catalog(
                "acme",
                "creative",
                id,
                "upsert",
                Some(1),
                json!({"offerId": offer, "name": id, "status": "active"}),
            ),
        );
    }
    for (entity, id, status) in [
        ("channel", "ch_email", "active"),
        ("channel", "ch_sms", "inactive"),
        ("experiment", "exp_1", "running"),
        ("experiment", "exp_2", "stopped"),
        ("journey", "jr_1", "active"),
        ("journey", "jr_2", "draft"),
        ("trigger", "tr_1", "active"),
        ("trigger", "tr_2", "paused"),
        ("approval", "ap_1", "pending"),
        ("approval", "ap_2", "approved"),
        ("segment", "seg_vip", "active"),
        ("segment", "seg_new", "active"),
        ("category", "cat_1", "active"),
    ] {
        env.publish(
            TopicKind::Catalog,
            &catalog("acme", entity, id, "upsert", None, json!({"name": id, "status": status})),
        );
    }
    // Another tenant's catalog must not leak into acme's counts.
    env.publish(
        TopicKind::Catalog,
        &catalog("globex", "offer", "off_a", "upsert", Some(1), json!({"name": "G", "status": "active"})),
    );

    // Segment memberships first (memberships at processing time count, docs/events.md 2.4).
    let customers = ["c1", "c2", "c3", "c4", "c5", "c6"];
    for (i, c) in ["c1", "c2", "c3"].iter().enumerate() {
        env.publish(TopicKind::SegmentMembership, &membership("acme", &format!("m{i}"), "seg_vip", c, "add"));
    }
    env.publish(TopicKind::SegmentMembership, &membership("acme", "m9", "seg_vip", "c3", "remove"));
    env.wait_caught_up(CAUGHT_UP).await;

    // Interactions over 10 days, an offer unknown to the catalog, another tenant, duplicates.
    let spread = model::Spread {
        tenant: "acme",
        offers: &["off_a", "off_b", "off_c", "off_x"],
        channels: &["ch_email", "ch_sms"],
        customers: &customers,
        days: 10,
    };
    let events = model::interactions(&spread, 600, 7, today);
    let other = model::interactions(
        &model::Spread {
            tenant: "globex",
            offers: &["off_a"],
            channels: &["ch_email"],
            customers: &customers,
            days: 10,
        },
        100,
        8,
        today,
    );
    for e in events.iter().chain(&other) {
        env.publish(TopicKind::Interactions, &e.to_json());
    }
    for e in events.iter().take(50) {
        env.publish(TopicKind::Interactions, &e.to_json()); // at-least-once producer resends
    }
    env.wait_caught_up(CAUGHT_UP).await;

    Fixture { key, today, as_of, events, vip_customers: vec!["c1", "c2"], app }
}
