//! The interaction rollups (migration `interaction_rollups`) and running totals (migration
//! `running_totals`) against the base tables they sum, and the migrations' backfills against
//! what ingest maintains.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use consumers::apply::apply_batch;
use consumers::units::wide::interaction_counts;
use consumers::units::wide::offer_interactions::{OfferInteractions, COUNTERS};
use sqlx::Connection;

use crate::fixture::seeded;
use crate::helpers::{fresh_database, Servers};
use crate::isolation::{batch_in, options};

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

    let rollups = ROLLUPS.map(|(table, _)| table);
    for (table, differing) in backfill_differences(&mut conn, &["interaction rollups"], &rollups).await {
        assert_eq!(differing, 0, "backfilled {table} differs from the maintained one");
    }
    let wide: i64 = sqlx::query_scalar("SELECT count(*) FROM interaction_segment_totals WHERE segment_id = 'seg_vip'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(wide > 0, "ingest wrote no wide checkpoint of seg_vip's chain");
    assert_running_totals_exact(&mut conn).await;
}

/// The running-total views (migrations `running_totals`, `selection_offer_totals`,
/// `selection_segment_totals`, `wide_selection_offer_totals` and `trace_totals`) and their checkpoints
/// (`interaction_segment_totals`' among them; its wide values are compared decoded, see
/// [`backfill_differences`]; `selection_chain_totals`' through the `selection_offer_totals`
/// view, which decodes them). `selection_flow_totals`'
/// checkpoints are left out: its backfill's source, `selection_flow_daily`, is gone (see
/// [`assert_flow_totals_add_up`]).
const RUNNING: [&str; 5] = [
    "running_total_days WHERE view <> 'selection_flow_totals'",
    "interaction_offer_totals",
    "interaction_offer_channel_totals",
    "selection_offer_totals",
    "trace_totals",
];

/// The running totals ingest maintained equal what their migration's backfill computes from
/// the daily tables: a checkpoint at each day with interactions, and there a row per key seen
/// up to that day holding its counters summed up to that day. (The daily tables are checked
/// against the events by the test above and the dashboard tests.) `interaction_daily` and
/// `interaction_segment_daily` are views of the per-(offer, channel) chains' day-to-day
/// differences now (migrations `daily_tables_from_totals`, `wide_segment_channel_totals`): for
/// those chains this checks the checkpoints are dense and consistent, and the rollups, which
/// ingest writes separately, are what the test above ties its days to.
pub async fn assert_running_totals_exact(conn: &mut sqlx::PgConnection) {
    let checkpoints: i64 =
        sqlx::query_scalar("SELECT count(*) FROM running_total_days").fetch_one(&mut *conn).await.unwrap();
    assert!(checkpoints > 0, "no checkpoint was written");
    for (table, differing) in backfill_differences(
        conn,
        &[
            "running totals",
            "selection offer totals",
            "selection segment totals",
            "interaction segment totals",
            "wide selection offer totals",
            "trace totals",
            "wide segment channel totals",
        ],
        &RUNNING,
    )
    .await
    {
        assert_eq!(differing, 0, "{table} differs from the sums of the daily rows");
    }
    assert_flow_totals_add_up(conn).await;
}

/// `selection_flow_totals` (per channel and flow) and `selection_chain_totals` (per offer, read
/// decoded through the `selection_offer_totals` view) count the same candidates: at each
/// checkpoint of the first, every offer's counters summed over the (channel, flow) rows equal
/// the second's entry at its latest checkpoint up to that day, and both have as many
/// checkpoints.
/// (The API's answers from both are checked against the events by the selection tests.)
async fn assert_flow_totals_add_up(conn: &mut sqlx::PgConnection) {
    let rows: Vec<(String, chrono::NaiveDate, Vec<u8>)> =
        sqlx::query_as("SELECT tenant_id, day, offers FROM selection_flow_totals ORDER BY tenant_id, day")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    type Sums = BTreeMap<(String, chrono::NaiveDate, String), [i64; 15]>;
    let mut by_flows = Sums::new();
    for (tenant, day, value) in &rows {
        for entry in consumers::units::wide::entries::<15>(value) {
            let (offer, c) = entry.unwrap();
            let sum = by_flows.entry((tenant.clone(), *day, offer.to_owned())).or_default();
            sum.iter_mut().zip(c).for_each(|(s, v)| *s += v);
        }
    }
    let per_offer: Vec<(String, chrono::NaiveDate, String, Vec<i64>)> = sqlx::query_as(
        "SELECT c.tenant_id, c.day, t.offer_id,
                ARRAY[t.eligible, t.scored, t.selected, t.rank_sum, t.rank_n, t.r1, t.r2, t.r3, t.r4, t.r5,
                      t.r6, t.r7, t.r8, t.r9, t.r10]::int8[]
           FROM (SELECT DISTINCT tenant_id, day FROM selection_flow_totals) c
           JOIN selection_offer_totals t ON t.tenant_id = c.tenant_id AND t.segment_id = ''
            AND t.day = (SELECT max(d.day) FROM running_total_days d
                          WHERE d.view = 'selection_chain_totals' AND d.tenant_id = c.tenant_id
                            AND d.segment_id = '' AND d.day <= c.day)",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let per_offer: Sums =
        per_offer.into_iter().map(|(t, d, o, c)| ((t, d, o), c.try_into().expect("15 counters"))).collect();
    // Both views take a checkpoint at each day with candidates.
    let days: Vec<(String, i64)> = sqlx::query_as(
        "SELECT view, count(*) FROM (SELECT view, tenant_id, day FROM running_total_days
                                      WHERE view IN ('selection_flow_totals', 'selection_chain_totals')
                                        AND segment_id = '') d
          GROUP BY view ORDER BY view",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let (flows, offers) = ["selection_flow_totals", "selection_chain_totals"]
        .map(|v| days.iter().find(|d| d.0 == v).map_or(0, |d| d.1))
        .into();
    assert_eq!(flows, offers, "checkpoints of selection_flow_totals and selection_chain_totals");
    // An offer a checkpoint carries at zero on both sides is no difference.
    let nonzero = |m: Sums| -> Sums { m.into_iter().filter(|(_, c)| c.iter().any(|&v| v != 0)).collect() };
    assert!(nonzero(by_flows) == nonzero(per_offer), "selection_flow_totals does not add up to selection_chain_totals");
}

/// Rows that differ between each of `tables` as ingest maintained it and as the migrations
/// named `descriptions` backfill it from the tables filled now. The migrations run again, in
/// that order, in a scratch schema first on the search path: their CREATEs land there and their
/// backfills read the filled base tables; the transaction is rolled back. When
/// `interaction_segment_totals` or `interaction_segment_channel_totals` is backfilled, its
/// entries too, decoded: ingest writes the compact encoding and sums money limbs without
/// carrying, the backfill writes the fixed one.
async fn backfill_differences(
    conn: &mut sqlx::PgConnection,
    descriptions: &[&str],
    tables: &[&'static str],
) -> Vec<(&'static str, i64)> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA backfill; SET LOCAL search_path = backfill, public").execute(&mut *tx).await.unwrap();
    for description in descriptions {
        let migration = decision_views::MIGRATOR.iter().find(|m| m.description == *description).expect("the migration");
        sqlx::raw_sql(migration.sql.as_ref()).execute(&mut *tx).await.expect("the backfill runs");
    }
    let mut out = Vec::new();
    for &table in tables {
        let (a, b) = (format!("SELECT * FROM backfill.{table}"), format!("SELECT * FROM public.{table}"));
        out.push((table, difference(&mut tx, &a, &b).await));
    }
    if descriptions.contains(&"interaction segment totals") {
        let (backfilled, maintained) =
            (segment_entries(&mut tx, "backfill").await, segment_entries(&mut tx, "public").await);
        out.push(("interaction_segment_totals", differing(&backfilled, &maintained)));
    }
    if descriptions.contains(&"wide segment channel totals") {
        let (backfilled, maintained) =
            (channel_entries(&mut tx, "backfill").await, channel_entries(&mut tx, "public").await);
        out.push(("interaction_segment_channel_totals", differing(&backfilled, &maintained)));
    }
    tx.rollback().await.unwrap();
    out
}

/// Entries of one map and not the other, or different in the two.
fn differing<K: Ord, V: PartialEq>(a: &BTreeMap<K, V>, b: &BTreeMap<K, V>) -> i64 {
    let n = a.iter().filter(|(k, v)| b.get(*k) != Some(*v)).count() + b.keys().filter(|k| !a.contains_key(*k)).count();
    n as i64
}

/// Every entry of `schema`'s `interaction_segment_channel_totals`, by (tenant, segment, day,
/// channel, offer): the counts and the (revenue, cost) sums, decoded as for
/// [`segment_entries`].
async fn channel_entries(
    conn: &mut sqlx::PgConnection,
    schema: &str,
) -> BTreeMap<(String, String, chrono::NaiveDate, String, String), ([i64; 6], [i128; 2])> {
    let rows: Vec<(String, String, chrono::NaiveDate, String, Vec<u8>)> = sqlx::query_as(&format!(
        "SELECT tenant_id, segment_id, day, channel_id, offers FROM {schema}.interaction_segment_channel_totals"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for (tenant, segment, day, channel, value) in rows {
        for entry in consumers::units::wide::entries::<{ interaction_counts::COUNTERS }>(&value) {
            let (offer, c) = entry.unwrap();
            let decoded = interaction_counts::from_counters(c).expect("sums in i128");
            out.insert((tenant.clone(), segment.clone(), day, channel.clone(), offer.to_owned()), decoded);
        }
    }
    out
}

/// Every entry of `schema`'s `interaction_segment_totals`, by (tenant, segment, day, offer).
async fn segment_entries(
    conn: &mut sqlx::PgConnection,
    schema: &str,
) -> BTreeMap<(String, String, chrono::NaiveDate, String), OfferInteractions> {
    let rows: Vec<(String, String, chrono::NaiveDate, Vec<u8>)> =
        sqlx::query_as(&format!("SELECT tenant_id, segment_id, day, offers FROM {schema}.interaction_segment_totals"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let mut out = BTreeMap::new();
    for (tenant, segment, day, value) in rows {
        for entry in consumers::units::wide::entries::<COUNTERS>(&value) {
            let (offer, c) = entry.unwrap();
            let o = OfferInteractions::from_counters(c).expect("revenue in i128");
            out.insert((tenant.clone(), segment.clone(), day, offer.to_owned()), o);
        }
    }
    out
}

/// Windows in every position against the running totals' checkpoints: wholly before the data,
/// overlapping its start or end, between two checkpoints, after it, and one day long; all
/// customers and one segment. Each answer is the events' own count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_anywhere_around_the_checkpoints_are_exact() {
    let f = seeded().await;
    let (all, vip) = (f.all(), f.vip());
    for ahead in [-14i64, -9, -5, -1, 0, 1, 3, 12] {
        let as_of = f.today + chrono::Duration::days(ahead);
        for days in [1, 2, 4, 365] {
            for (segment, subset) in [(None, &all), (Some("seg_vip"), &vip)] {
                let seg = segment.map(|s| format!("&segmentId={s}")).unwrap_or_default();
                let (status, body) = f.get(&format!("type=acceptance_rate&days={days}&asOf={as_of}{seg}")).await;
                assert_eq!(status, 200, "{body}");
                let got = crate::viewer::acceptance_rows(&body);
                let mut expected: Vec<(String, i64, i64, i64)> =
                    crate::model::by_offer(subset.iter().copied(), as_of, days)
                        .into_iter()
                        .map(|(offer, c)| (offer, c.impressions, c.positive, c.negative))
                        .collect();
                expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                assert_eq!(got, expected, "asOf {as_of}, days {days}, segment {segment:?}");
            }
        }
    }
}

/// A batch behind every checkpoint of its chain: 600 offers on the first of 30 days that have
/// checkpoints reach 18,000 rows of the per-(offer, channel) totals, more than one statement
/// takes (the fan-out writes 16,384 rows at a time, `apply::fan`); every row is written once,
/// and the totals equal the daily rows' sums.
#[tokio::test]
async fn a_batch_behind_thirty_checkpoints_is_written_over_several_statements_exactly() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let first = Utc::now() - Duration::days(29);
    let ids: Vec<String> = (0..30).map(|d| format!("day{d}")).collect();
    let daily: Vec<(&str, &str, DateTime<Utc>)> =
        ids.iter().zip(0..).map(|(id, d)| (id.as_str(), "o_daily", first + Duration::days(d))).collect();
    apply_batch(&pool, &batch_in(0, &daily, 0, None), &options()).await.unwrap();
    let late: Vec<(String, String)> = (0..600).map(|i| (format!("late{i}"), format!("o{i:03}"))).collect();
    let late: Vec<(&str, &str, DateTime<Utc>)> = late.iter().map(|(id, o)| (id.as_str(), o.as_str(), first)).collect();
    apply_batch(&pool, &batch_in(0, &late, 30, Some(30)), &options()).await.unwrap();

    let reached: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM interaction_offer_channel_totals
          WHERE segment_id = '' AND offer_id <> 'o_daily' AND impressions = 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(reached, 600 * 30, "each late offer once on each of the 30 checkpoints");
    let mut conn = pool.acquire().await.unwrap();
    assert_running_totals_exact(&mut conn).await;
}
