//! Events published with a real producer show up in the four core types with exact values.

use serde_json::json;

use crate::fixture::seeded;
use crate::model::{by_offer, daily, round};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_show_up_in_the_core_types_with_exact_values() {
    let f = seeded().await;
    let (app, key, today, as_of, env) = (&f.app, &f.key, f.today, &f.as_of, &f.app.env);
    let events = &f.events;
    // summary
    let (status, body) = app.get("/api/v1/dashboard-data?type=summary", key, "acme").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"activeOffers": 3, "activeChannels": 1, "activeExperiments": 1, "totalJourneys": 2,
               "activeTriggers": 1, "pendingApprovals": 1})
    );

    // funnel: offers a,b,c,e (d deleted); active a,b,e; with creatives: a; creatives 1..4.
    let (status, body) = app.get("/api/v1/dashboard-data?type=funnel", key, "acme").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"stages": [{"label": "Total Offers", "count": 4}, {"label": "Active Offers", "count": 3},
                          {"label": "With Creatives", "count": 1}, {"label": "Creatives", "count": 4}]})
    );

    // acceptance_rate and daily_trend over several windows, all customers and one segment.
    let (all, vip) = (f.all(), f.vip());
    for days in [1, 3, 7, 10] {
        for (segment, subset) in [(None, &all), (Some("seg_vip"), &vip)] {
            let seg_param = segment.map(|s| format!("&segmentId={s}")).unwrap_or_default();
            let (status, body) = app
                .get(
                    &format!("/api/v1/dashboard-data?type=acceptance_rate&days={days}&asOf={as_of}{seg_param}"),
                    key,
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
                    key,
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
    let (_, body) = app.get("/api/v1/dashboard-data?type=daily_trend&segmentId=seg_new", key, "acme").await;
    assert_eq!(body, json!({"data": [], "warning": "segment 'seg_new' has not been materialized yet"}));
    let (_, body) = app.get("/api/v1/dashboard-data?type=acceptance_rate&segmentId=seg_nope", key, "acme").await;
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

    f.app.stop().await.expect("graceful shutdown");
}
