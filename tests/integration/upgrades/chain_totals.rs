//! The per-offer selection running totals became one wide row per checkpoint in migration
//! 20261206000080 (`selection_chain_totals`), backfilled from the narrow rows of
//! `selection_offer_totals`: selection_frequency (all customers and a segment), why_not_ranked
//! and score_distribution by offer answer, for windows that take some of the checkpoints,
//! exactly what the narrow rows stored before differ by; the `selection_offer_totals` and
//! `selection_daily` views still give the narrow rows, an all-time score sum past `int8`
//! included.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::json;

use crate::helpers::database_url_before;
use crate::viewer::ViewerApi;

/// A narrow checkpoint row: (days ago, segment, offer), the counters as the table's columns.
struct Stored {
    ago: i64,
    segment: &'static str,
    offer: &'static str,
    /// eligible, scored, selected, rank_sum, rank_n, r1, r2, miss_qualification, miss_contact,
    /// miss_too_low, miss_not_ranked, score_n, b2, b9.
    c: [i64; 14],
    score_sum_micros: i128,
}

const fn row(ago: i64, segment: &'static str, offer: &'static str, c: [i64; 14], score: i128) -> Stored {
    Stored { ago, segment, offer, c, score_sum_micros: score }
}

/// 2^63 + 5: the all-customers chain's o1 has summed past `int8` by its second checkpoint
/// (each day's sum fits, as a day's always did).
const HUGE: i128 = (1 << 63) + 5;

/// Dense chains, as ingest kept them: every offer seen up to a checkpoint has a row there,
/// holding its counters summed up to that day.
const STORED: [Stored; 8] = [
    row(6, "", "o1", [2, 2, 1, 2, 2, 1, 1, 0, 0, 1, 0, 2, 0, 2], 1 << 62),
    row(3, "", "o1", [5, 4, 2, 6, 4, 2, 2, 1, 0, 2, 0, 4, 1, 3], HUGE),
    row(0, "", "o1", [8, 7, 4, 11, 7, 4, 3, 1, 1, 2, 0, 7, 2, 5], HUGE + 2_100_000),
    row(0, "", "o2", [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], 0),
    row(0, "", "off_é", [2, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1], 950_000),
    row(3, "seg_a", "o1", [3, 3, 1, 4, 3, 1, 1, 0, 0, 2, 0, 3, 0, 0], 3_000_000_000),
    row(1, "seg_a", "o1", [4, 4, 2, 5, 4, 2, 1, 0, 0, 2, 0, 4, 0, 0], 3_000_400_000),
    row(1, "seg_a", "o2", [1, 1, 0, 3, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0], 200_000),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrow_offer_totals_carry_over_into_wide_chain_rows() {
    let (db_url, pool) = database_url_before(20261206000080).await;
    let today = Utc::now().date_naive();
    for r in &STORED {
        let day = today - Duration::days(r.ago);
        sqlx::query(
            "INSERT INTO running_total_days (view, tenant_id, segment_id, day)
             VALUES ('selection_offer_totals', 'acme', $1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(r.segment)
        .bind(day)
        .execute(&pool)
        .await
        .unwrap();
        let mut insert = sqlx::query(
            "INSERT INTO selection_offer_totals (tenant_id, segment_id, day, offer_id, eligible, scored, selected,
                 rank_sum, rank_n, r1, r2, miss_qualification, miss_contact, miss_too_low, miss_not_ranked, score_n,
                 b2, b9, score_sum_micros)
             VALUES ('acme', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18::numeric)",
        )
        .bind(r.segment)
        .bind(day)
        .bind(r.offer);
        for v in r.c {
            insert = insert.bind(v);
        }
        insert.bind(r.score_sum_micros.to_string()).execute(&pool).await.unwrap();
    }
    sqlx::query("INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', 'seg_a')")
        .execute(&pool)
        .await
        .unwrap();
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    // The narrow rows read back through the view, the sum past int8 exact.
    let huge: String = sqlx::query_scalar(
        "SELECT score_sum_micros::text FROM selection_offer_totals
          WHERE tenant_id = 'acme' AND segment_id = '' AND offer_id = 'o1' AND day = $1",
    )
    .bind(today - Duration::days(3))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(huge, HUGE.to_string());
    // And the day's rows of selection_daily: today's o1 is its two checkpoints' difference.
    let day: (i64, i64, i64) = sqlx::query_as(
        "SELECT eligible, score_sum_micros, b9 FROM selection_daily WHERE tenant_id = 'acme' AND day = $1 AND offer_id = 'o1'",
    )
    .bind(today)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(day, (3, 2_100_000, 2));

    let api = ViewerApi::start(db_url, pool.clone(), "acme").await;
    for (segment, days) in [("", 1), ("", 2), ("", 3), ("", 5), ("seg_a", 1), ("seg_a", 2), ("seg_a", 3), ("seg_a", 7)]
    {
        let want = window(segment, days);
        let filter = if segment.is_empty() { String::new() } else { format!("&segmentId={segment}") };
        let query = |t: &str| format!("type={t}&days={days}&asOf={today}{filter}");
        let body = api.dashboard(&query("selection_frequency")).await;
        let got = crate::viewer::selection_counts(&body, 2);
        let expected: BTreeMap<String, Vec<i64>> = want
            .iter()
            .filter(|(_, (c, _))| c[0] > 0)
            .map(|(o, (c, _))| (o.clone(), vec![c[0], c[1], c[2], c[5], c[6]]))
            .collect();
        assert_eq!(got, expected, "selection_frequency segment {segment:?}, {days} days");
        for offer in ["o1", "o2"] {
            let (c, sum) = want.get(offer).copied().unwrap_or_default();
            let body = api.dashboard(&format!("{}&offerId={offer}", query("why_not_ranked"))).await;
            let got = crate::viewer::why_not_ranked_counts(&body);
            assert_eq!(got, [c[0], c[2], c[7], c[8], c[9], c[10]], "why_not_ranked {offer} {segment:?}, {days} days");
            let mean = (c[11] > 0).then(|| (sum as f64 / c[11] as f64 / 1e6 * 1000.0).round() / 1000.0);
            assert_eq!(body["avgScore"].as_f64(), mean, "avgScore {offer} {segment:?}, {days} days");
            assert_eq!(body["rankDistribution"], json!([c[5], c[6], 0, 0, 0, 0, 0, 0, 0, 0]));
        }
        if segment.is_empty() {
            let body = api.dashboard(&format!("{}&groupBy=offer", query("score_distribution"))).await;
            assert_eq!(crate::viewer::score_dims(&body), scored(&want), "score_distribution by offer, {days} days");
            for (offer, (c, _)) in want.iter().filter(|(_, (c, _))| c[11] > 0) {
                let body =
                    api.dashboard(&format!("{}&groupBy=offer&filterId={offer}", query("score_distribution"))).await;
                let buckets = crate::viewer::score_buckets(&body);
                assert_eq!(buckets, [0, 0, c[12], 0, 0, 0, 0, 0, 0, c[13]], "buckets of {offer}, {days} days");
            }
        }
    }
    api.stop().await;
}

/// Per offer, the chain's window: its row at the latest checkpoint up to today minus its row
/// at the latest before the window's first day (none: zeros).
fn window(segment: &str, days: i64) -> BTreeMap<String, ([i64; 14], i128)> {
    let rows: Vec<&Stored> = STORED.iter().filter(|r| r.segment == segment).collect();
    let latest = |before: i64| rows.iter().map(|r| r.ago).filter(|&a| a >= before).min();
    let (hi, lo) = (latest(0), latest(days));
    let at = |ago: Option<i64>, offer: &str| {
        rows.iter().find(|r| Some(r.ago) == ago && r.offer == offer).map_or(([0; 14], 0), |r| (r.c, r.score_sum_micros))
    };
    let mut out = BTreeMap::new();
    for r in rows.iter().filter(|r| Some(r.ago) == hi && hi < Some(days)) {
        let ((h, hs), (l, ls)) = (at(hi, r.offer), at(lo, r.offer));
        let mut c = [0; 14];
        for i in 0..14 {
            c[i] = h[i] - l[i];
        }
        out.insert(r.offer.to_owned(), (c, hs - ls));
    }
    out
}

fn scored(want: &BTreeMap<String, ([i64; 14], i128)>) -> Vec<(String, i64, f64)> {
    want.iter()
        .filter(|(_, (c, _))| c[11] > 0)
        .map(|(o, (c, sum))| (o.clone(), c[11], (*sum as f64 / c[11] as f64 / 1e6 * 1000.0).round() / 1000.0))
        .collect()
}
