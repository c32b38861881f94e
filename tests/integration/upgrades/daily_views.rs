//! `interaction_daily` and `interaction_segment_daily` were tables until migration
//! 20261206000020 and are views of the running totals after it: rows stored by the code of
//! before both migrations come out of the views unchanged, the API answers from them, and a
//! batch of today's code adds onto them.

use chrono::{Duration, NaiveDate, Utc};
use consumers::apply::apply_batch;

use crate::exactly_once::events;
use crate::helpers::{database_url_before, spawn_app_with, TestEnv};
use crate::isolation::{batch_at, options};

/// A row of either table: (segment, day, offer, channel, impressions, accepts, revenue micros).
type Daily = (String, NaiveDate, String, String, i64, i64, i64);

async fn daily_rows(pool: &sqlx::PgPool) -> Vec<Daily> {
    sqlx::query_as(
        "SELECT '' COLLATE \"C\" AS segment_id, day, offer_id, channel_id, impressions, accepts, revenue_micros::int8
           FROM interaction_daily
         UNION ALL
         SELECT segment_id, day, offer_id, channel_id, impressions, accepts, revenue_micros::int8
           FROM interaction_segment_daily
         ORDER BY 1, 2, 3, 4",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_interaction_rows_carry_over_into_the_running_totals() {
    // Before `running_totals`: what ingest stored then is the daily tables and their rollups.
    let (db_url, pool) = database_url_before(20261206000010).await;
    let today = Utc::now().date_naive();
    let day = |ago: i64| today - Duration::days(ago);
    let mut stored: Vec<Daily> = [
        ("", 0, "o1", "web", 3, 1, 1_500_000),
        ("", 0, "o1", "sms", 2, 0, 0),
        ("", 2, "o1", "web", 4, 2, 2_000_000),
        ("", 2, "o2", "web", 1, 1, 250_000),
        ("", 9, "o2", "sms", 5, 0, 0),
        ("seg_vip", 2, "o1", "web", 2, 1, 1_000_000),
    ]
    .map(|(s, ago, o, c, i, a, r)| (s.to_owned(), day(ago), o.to_owned(), c.to_owned(), i, a, r))
    .into();
    stored.sort();
    for (segment, day, offer, channel, impressions, accepts, revenue) in &stored {
        let (table, segment) = match segment.as_str() {
            "" => ("interaction_daily", ""),
            _ => ("interaction_segment_daily", "segment_id, "),
        };
        let value = if segment.is_empty() { "" } else { "'seg_vip', " };
        sqlx::query(&format!(
            "INSERT INTO {table} (tenant_id, {segment}day, offer_id, channel_id, impressions, accepts, revenue_micros)
             VALUES ('acme', {value}$1, $2, $3, $4, $5, $6)"
        ))
        .bind(day)
        .bind(offer)
        .bind(channel)
        .bind(impressions)
        .bind(accepts)
        .bind(revenue)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (table, dim) in [
        ("interaction_rollup_day", ""),
        ("interaction_rollup_offer", ", offer_id"),
        ("interaction_rollup_channel", ", channel_id"),
    ] {
        sqlx::query(&format!(
            "INSERT INTO {table} (tenant_id, segment_id, day{dim}, impressions, accepts, revenue_micros)
             SELECT tenant_id, segment_id, day{dim}, sum(impressions), sum(accepts), sum(revenue_micros)
               FROM (SELECT tenant_id, '' COLLATE \"C\" AS segment_id, day, offer_id, channel_id, impressions, accepts, revenue_micros
                       FROM interaction_daily
                     UNION ALL
                     SELECT tenant_id, segment_id, day, offer_id, channel_id, impressions, accepts, revenue_micros
                       FROM interaction_segment_daily) base
              GROUP BY tenant_id, segment_id, day{dim}"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    // seg_vip had members, so it was materialized.
    sqlx::query("INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', 'seg_vip')")
        .execute(&pool)
        .await
        .unwrap();
    decision_views::MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(daily_rows(&pool).await, stored, "the views hold the rows the tables held");

    // The API reads the totals the rows became: o1 has 3 + 2 + 4 impressions in the last
    // week, o2 1 (its 5 are nine days old); seg_vip's o1 2.
    let env = TestEnv::new().await;
    let env = TestEnv { db_url, pool: pool.clone(), ..env };
    let key = env.api_key("acme", decision_views::api::auth::Role::Viewer).await;
    let app = spawn_app_with(env, decision_views::startup::Mode::Api).await;
    for (segment, want) in [("", vec![("o1", 9, 3), ("o2", 1, 1)]), ("&segmentId=seg_vip", vec![("o1", 2, 1)])] {
        let path = format!("/api/v1/dashboard-data?type=acceptance_rate&days=7&asOf={today}{segment}");
        let (status, body) = app.get(&path, &key, "acme").await;
        assert_eq!(status, 200, "{body}");
        let got: Vec<(String, i64, i64)> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["offerId"].as_str().unwrap().to_owned(),
                    o["impressions"].as_i64().unwrap(),
                    o["positive"].as_i64().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, i64, i64)> = want.into_iter().map(|(o, i, p)| (o.to_owned(), i, p)).collect();
        assert_eq!(got, want, "segment {segment:?}");
    }
    app.stop().await.unwrap();

    // Today's code adds onto the carried-over rows: two impressions of o1 on the web, now.
    let applied = apply_batch(&pool, &batch_at(&events(&["a", "b"]), 0, None), &options()).await.unwrap();
    assert_eq!(applied.events, 2);
    let row = stored.iter_mut().find(|r| (r.0.as_str(), r.1, r.2.as_str(), r.3.as_str()) == ("", today, "o1", "web"));
    row.expect("today's o1/web row").4 += 2;
    assert_eq!(daily_rows(&pool).await, stored, "the batch's impressions on today's o1/web row");
}
