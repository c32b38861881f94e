//! offer_performance_grouped by segment lists each segment's top 20 offers, with the segment's
//! impressions over all its offers. Planted running totals (two checkpoints of one segment, one
//! of another) with more offers than are listed, ties broken by id, and offers without events
//! in the window, stored as the per-offer rows of `interaction_offer_totals` before migration
//! 20261206000050 and read from the wide checkpoints it backfills from them: the listed offers,
//! their order and the segments' order are what the planted window values give.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};
use serde_json::Value;

use crate::helpers::{database_url_before, spawn_app_with, TestEnv};

/// (impressions, accepts, converts, revenue micros) of an offer in a window.
type Counts = (i64, i64, i64, i64);

async fn checkpoint(pool: &sqlx::PgPool, segment: &str, day: NaiveDate, offers: &BTreeMap<String, Counts>) {
    sqlx::query(
        "INSERT INTO running_total_days (view, tenant_id, segment_id, day) VALUES ('interaction_offer_totals', 'acme', $1, $2)",
    )
    .bind(segment)
    .bind(day)
    .execute(pool)
    .await
    .unwrap();
    for (offer, (i, a, c, r)) in offers {
        sqlx::query(
            "INSERT INTO interaction_offer_totals (tenant_id, segment_id, day, offer_id, impressions, accepts, converts, revenue_micros)
             VALUES ('acme', $1, $2, $3, $4, $5, $6, $7::int8)",
        )
        .bind(segment)
        .bind(day)
        .bind(offer)
        .bind(i)
        .bind(a)
        .bind(c)
        .bind(r)
        .execute(pool)
        .await
        .unwrap();
    }
}

fn plus(a: &BTreeMap<String, Counts>, b: &BTreeMap<String, Counts>) -> BTreeMap<String, Counts> {
    let mut out = a.clone();
    for (o, (i, x, c, r)) in b {
        let e = out.entry(o.clone()).or_default();
        *e = (e.0 + i, e.1 + x, e.2 + c, e.3 + r);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_lists_its_top_offers_and_counts_all_of_them() {
    let (db_url, pool) = database_url_before(20261206000050).await;
    let today = Utc::now().date_naive();
    for (segment, name) in [("seg_a", "Segment A"), ("seg_b", "Segment B")] {
        sqlx::query(
            "INSERT INTO catalog_entities (tenant_id, entity, entity_id, version, name, status, updated_at)
             VALUES ('acme', 'segment', $1, 1, $2, 'active', now())",
        )
        .bind(segment)
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', $1)")
            .bind(segment)
            .execute(&pool)
            .await
            .unwrap();
    }
    // seg_a before the window: every offer some counts; o28 and o29 none after.
    let before: BTreeMap<String, Counts> = (0..30).map(|k| (format!("o{k:02}"), (k, 1, 0, 100 * k))).collect();
    // In the window: o00..o27, conversions k % 7 and impressions 10 + k % 3, so several offers
    // tie on both and are ordered by id; 28 offers, 20 listed.
    let window_a: BTreeMap<String, Counts> =
        (0..28).map(|k| (format!("o{k:02}"), (10 + k % 3, k % 7, 0, 1_000 * k))).collect();
    checkpoint(&pool, "seg_a", today - Duration::days(3), &before).await;
    checkpoint(&pool, "seg_a", today - Duration::days(1), &plus(&before, &window_a)).await;
    // seg_b: more impressions than seg_a's 20 listed offers, fewer than all 28 of them.
    let listed_a: i64 = {
        let mut v: Vec<(&String, &Counts)> = window_a.iter().collect();
        v.sort_by(|x, y| (y.1 .1 + y.1 .2).cmp(&(x.1 .1 + x.1 .2)).then(y.1 .0.cmp(&x.1 .0)).then(x.0.cmp(y.0)));
        v.iter().take(20).map(|(_, c)| c.0).sum()
    };
    let all_a: i64 = window_a.values().map(|c| c.0).sum();
    assert!(all_a - listed_a >= 4, "the offers past the 20th carry impressions");
    let window_b: BTreeMap<String, Counts> =
        [("p1", (listed_a + 2, 1, 1, 0))].map(|(o, c)| (o.to_owned(), c)).into_iter().collect();
    checkpoint(&pool, "seg_b", today - Duration::days(1), &window_b).await;
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    let env = TestEnv { db_url, pool: pool.clone(), ..TestEnv::new().await };
    let key = env.api_key("acme", decision_views::api::auth::Role::Viewer).await;
    let app = spawn_app_with(env, decision_views::startup::Mode::Api).await;
    let as_of = today - Duration::days(1);
    let (status, body) = app
        .get(
            &format!("/api/v1/dashboard-data?type=offer_performance_grouped&groupBy=segment&days=2&asOf={as_of}"),
            &key,
            "acme",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let groups = body["groups"].as_array().unwrap();
    let ids: Vec<&str> = groups.iter().map(|g| g["groupId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["seg_a", "seg_b"], "seg_a's impressions count all its offers: {all_a} against {}", listed_a + 2);
    let mut want: Vec<(String, i64, i64)> = window_a.iter().map(|(o, c)| (o.clone(), c.0, c.1 + c.2)).collect();
    want.sort_by(|x, y| y.2.cmp(&x.2).then(y.1.cmp(&x.1)).then(x.0.cmp(&y.0)));
    want.truncate(20);
    let got: Vec<(String, i64, i64)> = groups[0]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o: &Value| {
            (
                o["offerId"].as_str().unwrap().to_owned(),
                o["impressions"].as_i64().unwrap(),
                o["conversions"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(groups[0]["offers"][0]["segmentName"], "Segment A");
    assert_eq!(groups[1]["offers"].as_array().unwrap().len(), 1);
    app.stop().await.unwrap();
}
