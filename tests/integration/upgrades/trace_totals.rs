//! Trace counts got running totals per chain in migration 20261207000010 (`trace_totals`),
//! backfilled from `trace_daily` and `trace_segment_daily`: why_not_ranked's `sampleSize` and
//! selection_frequency's `totalTraces` read them, and answer for windows that take some of the
//! checkpoints exactly what the daily rows stored before sum to; selection_frequency with a
//! channel still sums the daily rows.

use chrono::{Duration, Utc};

use crate::helpers::database_url_before;
use crate::viewer::ViewerApi;

/// A daily row: (days ago, segment ('' for `trace_daily`), channel, flow, traces, degraded).
type Daily = (i64, &'static str, &'static str, &'static str, i64, i64);

const STORED: [Daily; 8] = [
    (6, "", "web", "f1", 3, 1),
    (6, "", "app", "f1", 2, 0),
    (3, "", "web", "", 4, 0),
    (0, "", "web", "f1", 1, 0),
    (0, "", "app", "f2", 5, 2),
    (3, "seg_a", "web", "f1", 2, 0),
    (1, "seg_a", "app", "f1", 1, 1),
    (1, "seg_a", "web", "f1", 3, 0),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_trace_rows_carry_over_into_chain_totals() {
    let (db_url, pool) = database_url_before(20261207000010).await;
    let today = Utc::now().date_naive();
    for (ago, segment, channel, flow, traces, degraded) in STORED {
        let (table, segment_col) =
            if segment.is_empty() { ("trace_daily", "") } else { ("trace_segment_daily", "segment_id, ") };
        let placeholder = if segment.is_empty() { "" } else { "$6, " };
        let insert = format!(
            "INSERT INTO {table} (tenant_id, {segment_col}day, channel_id, decision_flow_id, traces, degraded)
             VALUES ('acme', {placeholder}$1, $2, $3, $4, $5)"
        );
        let mut q =
            sqlx::query(&insert).bind(today - Duration::days(ago)).bind(channel).bind(flow).bind(traces).bind(degraded);
        if !segment.is_empty() {
            q = q.bind(segment);
        }
        q.execute(&pool).await.unwrap();
    }
    sqlx::query("INSERT INTO segments_materialized (tenant_id, segment_id) VALUES ('acme', 'seg_a')")
        .execute(&pool)
        .await
        .unwrap();
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    // A checkpoint per (chain, day) with traces, each the chain's sums up to its day.
    let stored: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT segment_id, ($1 - day)::int8, traces, degraded FROM trace_totals WHERE tenant_id = 'acme'
          ORDER BY segment_id, day",
    )
    .bind(today)
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected = |segment: &str, ago: i64| -> (i64, i64) {
        STORED.iter().filter(|r| r.1 == segment && r.0 >= ago).fold((0, 0), |(t, d), r| (t + r.4, d + r.5))
    };
    let mut want: Vec<(String, i64, i64, i64)> = Vec::new();
    for (segment, agos) in [("", &[6, 3, 0][..]), ("seg_a", &[3, 1][..])] {
        for &ago in agos {
            let (t, d) = expected(segment, ago);
            want.push((segment.to_owned(), ago, t, d));
        }
    }
    assert_eq!(stored, want, "trace_totals after the upgrade");

    let api = ViewerApi::start(db_url, pool.clone(), "acme").await;
    for segment in ["", "seg_a"] {
        for days in [1, 2, 3, 4, 7, 30] {
            let traces: i64 = STORED.iter().filter(|r| r.1 == segment && r.0 < days).map(|r| r.4).sum();
            let filter = if segment.is_empty() { String::new() } else { format!("&segmentId={segment}") };
            let query = |t: &str| format!("type={t}&days={days}&asOf={today}{filter}");
            let body = api.dashboard(&format!("{}&offerId=o1", query("why_not_ranked"))).await;
            assert_eq!(body["sampleSize"].as_i64(), Some(traces), "why_not_ranked {segment:?}, {days} days: {body}");
            let body = api.dashboard(&query("selection_frequency")).await;
            assert_eq!(body["totalTraces"].as_i64(), Some(traces), "selection_frequency {segment:?}, {days} days");
            // With a channel: the daily rows, as before.
            let web: i64 = STORED.iter().filter(|r| r.1 == segment && r.0 < days && r.2 == "web").map(|r| r.4).sum();
            let body = api.dashboard(&format!("{}&channelId=web", query("selection_frequency"))).await;
            assert_eq!(body["totalTraces"].as_i64(), Some(web), "selection_frequency web {segment:?}, {days} days");
        }
    }
    api.stop().await;
}
