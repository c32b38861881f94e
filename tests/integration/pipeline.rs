//! Events published with a real producer show up in the four core types with exact values.

use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::model::{self, by_offer, catalog, daily, membership, round};

const CAUGHT_UP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_show_up_in_the_core_types_with_exact_values() {
    let app = spawn_app().await;
    let env = &app.env;
    let today = Utc::now().date_naive();
    let as_of = today.format("%Y-%m-%d").to_string();
    let key = env.api_key("acme", Role::Viewer).await;

    // Catalog, with versions: off_e's stale v1 arrives after v2 and must be ignored; off_d is
    // deleted; cr_4 belongs to the deleted offer.
    let offers = [
        ("off_a", 1, "active"),
        ("off_b", 1, "active"),
        ("off_c", 1, "draft"),
        ("off_d", 1, "active"),
        ("off_e", 2, "active"),
        ("off_e", 1, "inactive"),
    ];
    for (id, v, status) in offers {
        env.publish(
            TopicKind::Catalog,
            &catalog(
                "acme",
                "offer",
                id,
                "upsert",
                Some(v),
                json!({"name": format!("Offer {id}"), "status": status, "priority": 5}),
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

    // Segment memberships first (memberships at processing time count, SPEC 2.4).
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

    // summary
    let (status, body) = app.get("/api/v1/dashboard-data?type=summary", &key, "acme").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"activeOffers": 3, "activeChannels": 1, "activeExperiments": 1, "totalJourneys": 2,
               "activeTriggers": 1, "pendingApprovals": 1})
    );

    // funnel: offers a,b,c,e (d deleted); active a,b,e; with creatives: a; creatives 1..4.
    let (status, body) = app.get("/api/v1/dashboard-data?type=funnel", &key, "acme").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"stages": [{"label": "Total Offers", "count": 4}, {"label": "Active Offers", "count": 3},
                          {"label": "With Creatives", "count": 1}, {"label": "Creatives", "count": 4}]})
    );

    // acceptance_rate and daily_trend over several windows, all customers and one segment.
    let vip: Vec<&model::Interaction> = events.iter().filter(|e| ["c1", "c2"].contains(&e.customer.as_str())).collect();
    let all: Vec<&model::Interaction> = events.iter().collect();
    for days in [1, 3, 7, 10] {
        for (segment, subset) in [(None, &all), (Some("seg_vip"), &vip)] {
            let seg_param = segment.map(|s| format!("&segmentId={s}")).unwrap_or_default();
            let (status, body) = app
                .get(
                    &format!("/api/v1/dashboard-data?type=acceptance_rate&days={days}&asOf={as_of}{seg_param}"),
                    &key,
                    "acme",
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let mut expected: Vec<_> = by_offer(subset.iter().copied(), today, days).into_iter().collect();
            expected.sort_by(|a, b| b.1.impressions.cmp(&a.1.impressions).then(a.0.cmp(&b.0)));
            let expected_rows: Vec<_> = expected
                .iter()
                .map(|(offer, c)| {
                    let name = if offer == "off_x" { offer.clone() } else { format!("Offer {offer}") };
                    let rate =
                        if c.impressions == 0 { 0.0 } else { round(c.positive as f64 / c.impressions as f64, 4) };
                    json!({"offerId": offer, "offerName": name, "impressions": c.impressions, "positive": c.positive,
                           "negative": c.negative, "acceptanceRate": rate})
                })
                .collect();
            let since = (today - chrono::Duration::days(days - 1)).format("%Y-%m-%dT00:00:00.000Z").to_string();
            assert_eq!(
                body,
                json!({"data": expected_rows, "total": expected.len(), "period": {"days": days, "since": since}}),
                "acceptance_rate days={days} segment={segment:?}"
            );

            let (status, body) = app
                .get(
                    &format!("/api/v1/dashboard-data?type=daily_trend&days={days}&asOf={as_of}{seg_param}"),
                    &key,
                    "acme",
                )
                .await;
            assert_eq!(status, 200);
            let points: Vec<_> = daily(subset, today, days)
                .into_iter()
                .map(|(d, i, c)| json!({"name": d.format("%b %-d").to_string(), "impressions": i, "conversions": c}))
                .collect();
            assert_eq!(body, json!({"data": points}), "daily_trend days={days} segment={segment:?}");
        }
    }

    // Segment warnings.
    let (_, body) = app.get("/api/v1/dashboard-data?type=daily_trend&segmentId=seg_new", &key, "acme").await;
    assert_eq!(body, json!({"data": [], "warning": "segment 'seg_new' has not been materialized yet"}));
    let (_, body) = app.get("/api/v1/dashboard-data?type=acceptance_rate&segmentId=seg_nope", &key, "acme").await;
    assert_eq!(body, json!({"data": [], "warning": "segment 'seg_nope' does not exist"}));

    // Duplicates counted once, also in the raw counters: every interaction row sums exactly.
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (sum(impressions + clicks + accepts + converts + rejects + dismisses))::int8 FROM interaction_daily WHERE tenant_id = 'acme'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(n, events.len() as i64);
    let revenue: i64 =
        sqlx::query_scalar("SELECT sum(revenue_micros)::int8 FROM interaction_daily WHERE tenant_id = 'acme'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let expected_revenue: i64 = events.iter().map(|e| (e.revenue * 1e6).round() as i64).sum();
    assert_eq!(revenue, expected_revenue);

    app.stop().await.expect("graceful shutdown");
}
