//! Each segment's per-offer selection counters became a chain of running totals in migration
//! 20261206000040, backfilled from `selection_segment_daily` (per (segment, day, channel, flow,
//! offer)): selection_frequency and why_not_ranked with a segment answer from the chains, for
//! windows that take some of the days, exactly what the daily rows stored before summed to;
//! with a channel too they still read the daily rows.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::json;

use crate::helpers::database_url_before;
use crate::viewer::ViewerApi;

/// A daily row: (days ago, segment, channel, offer) and the counters written.
struct Stored {
    ago: i64,
    segment: &'static str,
    channel: &'static str,
    offer: &'static str,
    /// eligible, scored, selected, rank_sum, rank_n, r1, r2, miss_qualification, miss_contact,
    /// miss_too_low, miss_not_ranked, score_sum_micros, score_n.
    c: [i64; 13],
}

const fn row(ago: i64, segment: &'static str, channel: &'static str, offer: &'static str, c: [i64; 13]) -> Stored {
    Stored { ago, segment, channel, offer, c }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_segment_rows_carry_over_into_the_segment_chains() {
    let (db_url, pool) = database_url_before(20261206000040).await;
    let today = Utc::now().date_naive();
    // One offer on two channels of a day (the chain sums them), a day with one channel, a
    // second segment, a non-ASCII id, a score sum past 2^31.
    let stored = [
        row(0, "seg_a", "email", "o1", [3, 2, 1, 3, 2, 1, 1, 0, 1, 1, 0, 1_500_000, 2]),
        row(0, "seg_a", "web", "o1", [2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1_800_000, 2]),
        row(0, "seg_a", "web", "off_é", [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]),
        row(3, "seg_a", "email", "o1", [5, 4, 1, 9, 4, 1, 1, 1, 0, 3, 0, 3_000_000_000, 4]),
        row(3, "seg_a", "email", "o2", [4, 4, 3, 5, 4, 3, 1, 0, 0, 1, 0, 2_000_000, 4]),
        row(12, "seg_a", "web", "o2", [6, 6, 0, 18, 6, 0, 0, 2, 2, 1, 1, 600_000, 6]),
        row(3, "seg_b", "email", "o1", [7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 7_000_000, 7]),
    ];
    for r in &stored {
        let mut insert = sqlx::query(
            "INSERT INTO selection_segment_daily (tenant_id, segment_id, day, channel_id, decision_flow_id, offer_id,
                 eligible, scored, selected, rank_sum, rank_n, r1, r2, miss_qualification, miss_contact,
                 miss_too_low, miss_not_ranked, score_sum_micros, score_n)
             VALUES ('acme', $1, $2, $3, 'f1', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(r.segment)
        .bind(today - Duration::days(r.ago))
        .bind(r.channel)
        .bind(r.offer);
        for v in r.c {
            insert = insert.bind(v);
        }
        insert.execute(&pool).await.unwrap();
    }
    for segment in ["seg_a", "seg_b"] {
        sqlx::query("INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', $1)")
            .bind(segment)
            .execute(&pool)
            .await
            .unwrap();
    }
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    // The rows a request sums: its segment, optionally one channel, the window's days.
    let sums = |segment: &str, channel: Option<&str>, days: i64| {
        let mut out: BTreeMap<&str, [i64; 13]> = BTreeMap::new();
        for r in
            stored.iter().filter(|r| r.segment == segment && channel.is_none_or(|c| r.channel == c) && r.ago < days)
        {
            let s = out.entry(r.offer).or_default();
            s.iter_mut().zip(r.c).for_each(|(s, v)| *s += v);
        }
        out
    };
    let api = ViewerApi::start(db_url, pool.clone(), "acme").await;
    let get = |query: String| {
        let api = &api;
        async move { api.dashboard(&format!("{query}&asOf={today}")).await }
    };
    for (segment, channel) in [("seg_a", None), ("seg_b", None), ("seg_a", Some("email"))] {
        let filter = format!("segmentId={segment}{}", channel.map(|c| format!("&channelId={c}")).unwrap_or_default());
        for days in [1, 2, 4, 7, 30] {
            let want = sums(segment, channel, days);
            let body = get(format!("type=selection_frequency&days={days}&{filter}")).await;
            let got = crate::viewer::selection_counts(&body, 3);
            let expected: BTreeMap<String, Vec<i64>> =
                want.iter().map(|(o, c)| ((*o).to_owned(), vec![c[0], c[1], c[2], c[5], c[6], 0])).collect();
            assert_eq!(got, expected, "selection_frequency {filter}, {days} days");
            if channel.is_some() {
                continue;
            }
            for offer in ["o1", "o2"] {
                let c = want.get(offer).copied().unwrap_or_default();
                let body = get(format!("type=why_not_ranked&offerId={offer}&days={days}&{filter}")).await;
                let got = crate::viewer::why_not_ranked_counts(&body);
                assert_eq!(got, [c[0], c[2], c[7], c[8], c[9], c[10]], "why_not_ranked {offer} {filter}, {days} days");
                let mean = (c[12] > 0).then(|| (c[11] as f64 / c[12] as f64 / 1e6 * 1000.0).round() / 1000.0);
                assert_eq!(body["avgScore"].as_f64(), mean, "avgScore {offer} {filter}, {days} days");
                assert_eq!(body["avgScore"].is_null(), mean.is_none());
                assert_eq!(body["rankDistribution"], json!([c[5], c[6], 0, 0, 0, 0, 0, 0, 0, 0]), "{offer} {filter}");
            }
        }
    }
    api.stop().await;
}
