//! offer_performance_grouped by segment reads `interaction_segment_totals` from migration
//! 20261206000050 on, one wide row per checkpoint of each segment's chain, backfilled from the
//! chains of `interaction_offer_totals` that the code of before maintained: for windows that
//! take some of the days, the answer is what the stored chains' rows give.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};

use crate::helpers::{database_url_before, spawn_app_with, TestEnv};

/// One day's interactions of an offer in a segment: (days ago, segment, offer, impressions,
/// clicks, accepts, converts, revenue micros).
type Day = (i64, &'static str, &'static str, i64, i64, i64, i64, i128);

/// Past 2^64 micro-units (a revenue the `numeric` column holds and an `int8` does not), a
/// negative one, an offer with clicks only, a non-ASCII id, two segments.
const DAYS: [Day; 8] = [
    (0, "seg_a", "o1", 3, 1, 1, 0, 1_500_000),
    (0, "seg_a", "off_é", 0, 2, 0, 0, 0),
    (2, "seg_a", "o1", 4, 0, 1, 1, (1 << 70) + 7_250_000),
    (2, "seg_a", "o2", 9, 0, 0, 2, -3_000_000),
    (5, "seg_a", "o2", 1, 0, 1, 0, 250_000),
    (12, "seg_a", "o3", 6, 0, 0, 0, 0),
    (2, "seg_b", "o3", 2, 0, 2, 0, 40_000_000),
    (9, "seg_b", "o1", 20, 0, 0, 0, 0),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_chains_carry_over_into_the_wide_checkpoints() {
    let (db_url, pool) = database_url_before(20261206000050).await;
    let today = Utc::now().date_naive();
    // What the code of before stored: at each day a segment had interactions, a checkpoint
    // holding every offer seen up to then, its counters summed up to then.
    for segment in ["seg_a", "seg_b"] {
        let mut agos: Vec<i64> = DAYS.iter().filter(|d| d.1 == segment).map(|d| d.0).collect();
        agos.sort_unstable_by(|a, b| b.cmp(a));
        agos.dedup();
        for ago in agos {
            let day = today - Duration::days(ago);
            sqlx::query("INSERT INTO running_total_days VALUES ('interaction_offer_totals', 'acme', $1, $2)")
                .bind(segment)
                .bind(day)
                .execute(&pool)
                .await
                .unwrap();
            let mut upto: BTreeMap<&str, ([i64; 4], i128)> = BTreeMap::new();
            for d in DAYS.iter().filter(|d| d.1 == segment && d.0 >= ago) {
                let (c, r) = upto.entry(d.2).or_default();
                c.iter_mut().zip([d.3, d.4, d.5, d.6]).for_each(|(c, v)| *c += v);
                *r += d.7;
            }
            for (offer, (c, revenue)) in upto {
                sqlx::query(
                    "INSERT INTO interaction_offer_totals (tenant_id, segment_id, day, offer_id, impressions, clicks,
                         accepts, converts, revenue_micros)
                     VALUES ('acme', $1, $2, $3, $4, $5, $6, $7, $8::text::numeric)",
                )
                .bind(segment)
                .bind(day)
                .bind(offer)
                .bind(c[0])
                .bind(c[1])
                .bind(c[2])
                .bind(c[3])
                .bind(revenue.to_string())
                .execute(&pool)
                .await
                .unwrap();
            }
        }
        for insert in [
            "INSERT INTO catalog_entities (tenant_id, entity, entity_id, status, updated_at)
             VALUES ('acme', 'segment', $1, 'active', now())",
            "INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', $1)",
        ] {
            sqlx::query(insert).bind(segment).execute(&pool).await.unwrap();
        }
    }
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    let env = TestEnv::new().await;
    let env = TestEnv { db_url, pool: pool.clone(), ..env };
    let key = env.api_key("acme", decision_views::api::auth::Role::Viewer).await;
    let app = spawn_app_with(env, decision_views::startup::Mode::Api).await;
    for days in [1, 2, 3, 6, 10, 30] {
        let query = format!("type=offer_performance_grouped&groupBy=segment&days={days}&asOf={today}");
        let (status, body) = app.get(&format!("/api/v1/dashboard-data?{query}"), &key, "acme").await;
        assert_eq!(status, 200, "{query}: {body}");
        // The window's days, summed per segment and offer: (impressions, conversions, revenue).
        let mut want: BTreeMap<&str, BTreeMap<&str, (i64, i64, i128)>> = BTreeMap::new();
        for d in DAYS.iter().filter(|d| d.0 < days) {
            let s = want.entry(d.1).or_default().entry(d.2).or_default();
            *s = (s.0 + d.3, s.1 + d.5 + d.6, s.2 + d.7);
        }
        let mut groups: Vec<(&str, i64)> =
            want.iter().map(|(s, offers)| (*s, offers.values().map(|o| o.0).sum())).collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let got = body["groups"].as_array().unwrap();
        assert_eq!(
            got.iter().map(|g| g["groupId"].as_str().unwrap()).collect::<Vec<_>>(),
            groups.iter().map(|g| g.0).collect::<Vec<_>>(),
            "{query}"
        );
        for (group, (segment, _)) in got.iter().zip(&groups) {
            let mut offers: Vec<(&str, (i64, i64, i128))> = want[segment].iter().map(|(o, c)| (*o, *c)).collect();
            offers.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(b.1 .0.cmp(&a.1 .0)).then(a.0.cmp(b.0)));
            let listed = group["offers"].as_array().unwrap();
            assert_eq!(listed.len(), offers.len(), "{query} {segment}");
            for (o, (offer, (impressions, conversions, revenue))) in listed.iter().zip(offers) {
                assert_eq!(o["offerId"], offer, "{query} {segment}");
                assert_eq!(
                    (o["impressions"].as_i64(), o["conversions"].as_i64()),
                    (Some(impressions), Some(conversions))
                );
                let (got, want) = (o["revenue"].as_f64().unwrap(), revenue as f64 / 1e6);
                assert!(
                    (got - want).abs() <= want.abs() * 1e-12 + 0.005,
                    "{query} {offer}: revenue {got}, want {want}"
                );
            }
        }
    }
    app.stop().await.unwrap();
}
