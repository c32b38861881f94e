//! The interaction rollups (migration `interaction_rollups`) against the base tables they sum,
//! and the migration's backfill against what ingest maintains.

use sqlx::Connection;

use crate::fixture::seeded;

/// (table, dimension column or none).
const ROLLUPS: [(&str, Option<&str>); 3] = [
    ("interaction_rollup_day", None),
    ("interaction_rollup_offer", Some("offer_id")),
    ("interaction_rollup_channel", Some("channel_id")),
];

const SUMS: &str = "sum(impressions), sum(clicks), sum(accepts), sum(converts), sum(rejects), sum(dismisses),
    sum(revenue_micros), sum(cost_micros)";
const COLUMNS: &str = "impressions, clicks, accepts, converts, rejects, dismisses, revenue_micros, cost_micros";

/// Rows of `a` missing from `b` plus rows of `b` missing from `a`.
async fn difference(conn: &mut sqlx::PgConnection, a: &str, b: &str) -> i64 {
    // Each side in parentheses: a side may itself be a UNION, and set operators associate left.
    let (a, b) = (format!("({a})"), format!("({b})"));
    sqlx::query_scalar(&format!("SELECT count(*) FROM (({a} EXCEPT ALL {b}) UNION ALL ({b} EXCEPT ALL {a})) d"))
        .fetch_one(conn)
        .await
        .expect("compare")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_the_base_tables_and_the_backfill() {
    let f = seeded().await;
    let mut conn = f.app.env.pool.acquire().await.expect("connection");
    for (table, dim) in ROLLUPS {
        let dim = dim.map(|d| format!(", {d}")).unwrap_or_default();
        let base = format!(
            "SELECT tenant_id, '' AS segment_id, day{dim}, {SUMS} FROM interaction_daily GROUP BY tenant_id, day{dim}
             UNION ALL
             SELECT tenant_id, segment_id, day{dim}, {SUMS} FROM interaction_segment_daily
              GROUP BY tenant_id, segment_id, day{dim}"
        );
        let rollup = format!("SELECT tenant_id, segment_id, day{dim}, {COLUMNS} FROM {table}");
        assert_eq!(difference(&mut conn, &base, &rollup).await, 0, "{table} differs from its base table");
    }
    // Tied to the published events, not only to the base table: acme's impressions.
    let impressions: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(impressions), 0)::int8 FROM interaction_rollup_day WHERE tenant_id = 'acme' AND segment_id = ''",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(impressions, f.events.iter().filter(|e| e.outcome == "impression").count() as i64);
    let vip: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(impressions), 0)::int8 FROM interaction_rollup_offer WHERE tenant_id = 'acme' AND segment_id = 'seg_vip'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(vip, f.vip().iter().filter(|e| e.outcome == "impression").count() as i64);

    // The migration run again in a scratch schema first on the search path: its CREATEs land
    // there and its backfill reads the filled base tables, so it must rebuild what ingest kept.
    let migration = decision_views::MIGRATOR
        .iter()
        .find(|m| m.description.contains("interaction rollups"))
        .expect("the rollup migration");
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA backfill; SET LOCAL search_path = backfill, public").execute(&mut *tx).await.unwrap();
    sqlx::raw_sql(migration.sql.as_ref()).execute(&mut *tx).await.expect("the backfill runs");
    for (table, _) in ROLLUPS {
        let (a, b) = (format!("SELECT * FROM backfill.{table}"), format!("SELECT * FROM public.{table}"));
        assert_eq!(difference(&mut tx, &a, &b).await, 0, "backfilled {table} differs from the maintained one");
    }
    tx.rollback().await.unwrap();
}
