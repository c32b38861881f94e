//! `selection_flow_daily` (one wide row per day, channel and flow) became running totals in
//! migration 20261206000030: values of both encodings stored by the code of before come out of
//! `selection_flow_totals` day by day unchanged, selection_frequency by channel and by flow
//! answers from them for windows that take some of the days, and a batch of today's code adds
//! onto them.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use consumers::units::wide::merge;

use crate::helpers::{database_url_before, spawn_app_with, TestEnv};
use crate::wide_rows::flow_day;

/// An offer's 15 counters from (eligible, scored, selected, rank_sum, rank_n) and r1..r3.
fn counters(head: [i64; 5], r: [i64; 3]) -> [i64; 15] {
    let mut c = [0; 15];
    c[..5].copy_from_slice(&head);
    c[5..8].copy_from_slice(&r);
    c
}

/// A value as migration `wide_selection_rows` wrote it (int2 and int8 big-endian).
fn fixed(entries: &[(&str, [i64; 15])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, c) in entries {
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id.as_bytes());
        c.iter().for_each(|v| out.extend_from_slice(&v.to_be_bytes()));
    }
    out
}

/// (days ago, channel, flow, entries).
type Day = (i64, &'static str, &'static str, Vec<(&'static str, [i64; 15])>);
/// The days a request's channel and flow filters keep.
type Filter<'a> = &'a dyn Fn(&Day) -> bool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_flow_rows_carry_over_into_the_running_totals() {
    let (db_url, pool) = database_url_before(20261206000030).await;
    let today = Utc::now().date_naive();
    let day = |ago: i64| today - Duration::days(ago);
    // (days ago, channel, flow, entries in id byte order): "off_é" sorts after ASCII ids.
    let stored: Vec<Day> = vec![
        (
            0,
            "email",
            "",
            vec![
                ("off_gold_plus", counters([3, 2, 1, 4, 2], [1, 0, 1])),
                ("off_é", counters([1, 0, 0, 0, 0], [0, 0, 0])),
            ],
        ),
        (
            2,
            "email",
            "",
            vec![("off_gold_plus", counters([5, 5, 2, 9, 5], [2, 2, 1])), ("o2", counters([1, 1, 0, 3, 1], [0, 0, 1]))],
        ),
        (2, "web", "f1", vec![("o1", counters([7, 7, 7, 7, 7], [7, 0, 0]))]),
        (
            9,
            "web",
            "f1",
            vec![("o1", counters([4, 4, 0, 8, 4], [0, 4, 0])), ("o2", counters([2, 0, 0, 0, 0], [0, 0, 0]))],
        ),
        (9, "email", "f1", vec![("o2", counters([1, 1, 1, 1, 1], [1, 0, 0]))]),
    ];
    for (i, (ago, channel, flow, entries)) in stored.iter().enumerate() {
        // Both encodings, as rows stored before and after the compact one.
        let mut sorted = entries.clone();
        sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let value = if i % 2 == 0 { fixed(&sorted) } else { merge(&[], &sorted).unwrap() };
        sqlx::query(
            "INSERT INTO selection_flow_daily (tenant_id, day, channel_id, decision_flow_id, offers) VALUES ('acme', $1, $2, $3, $4)",
        )
        .bind(day(*ago))
        .bind(channel)
        .bind(flow)
        .bind(value)
        .execute(&pool)
        .await
        .unwrap();
    }
    decision_views::MIGRATOR.run(&pool).await.unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('selection_flow_daily') IS NOT NULL").fetch_one(&pool).await.unwrap();
    assert!(!exists, "the daily table is replaced");
    for (ago, channel, flow, entries) in &stored {
        let mut want: Vec<(String, [i64; 15])> = entries.iter().map(|(o, c)| ((*o).to_owned(), *c)).collect();
        want.sort();
        assert_eq!(flow_day(&pool, "acme", day(*ago), channel, flow).await, want, "{ago} days ago, {channel}/{flow}");
    }

    // The API sums the days of the window: (filter, days) -> offer -> (eligible, scored, selected).
    let sums = |filter: Filter, days: i64| {
        let mut out: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for d in stored.iter().filter(|d| filter(d) && d.0 < days) {
            for (offer, c) in &d.3 {
                let s = out.entry((*offer).to_owned()).or_default();
                (s.0, s.1, s.2) = (s.0 + c[0], s.1 + c[1], s.2 + c[2]);
            }
        }
        out
    };
    let env = TestEnv::new().await;
    let env = TestEnv { db_url, pool: pool.clone(), ..env };
    let key = env.api_key("acme", decision_views::api::auth::Role::Viewer).await;
    let app = spawn_app_with(env, decision_views::startup::Mode::Api).await;
    let cases: [(&str, Filter); 3] = [
        ("channelId=email", &|d: &Day| d.1 == "email"),
        ("decisionFlowId=f1", &|d: &Day| d.2 == "f1"),
        ("channelId=web&decisionFlowId=f1", &|d: &Day| d.1 == "web" && d.2 == "f1"),
    ];
    for (filter, keep) in cases {
        for days in [1, 7, 30] {
            let path = format!("/api/v1/dashboard-data?type=selection_frequency&days={days}&asOf={today}&{filter}");
            let (status, body) = app.get(&path, &key, "acme").await;
            assert_eq!(status, 200, "{body}");
            let got: BTreeMap<String, (i64, i64, i64)> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let n = |f: &str| o[f].as_i64().unwrap();
                    (
                        o["offerId"].as_str().unwrap().to_owned(),
                        (n("eligibleCount"), n("scoredCount"), n("selectedCount")),
                    )
                })
                .collect();
            assert_eq!(got, sums(keep, days), "{filter}, {days} days");
        }
    }
    app.stop().await.unwrap();

    // Today's code adds onto the carried-over rows. explain's trace (email, no flow): it
    // scores off_gold_plus 2nd and selects off_premium_card 1st; two more candidates miss.
    crate::explain::apply_trace_at(&pool, today.and_hms_opt(0, 0, 1).unwrap().and_utc()).await;
    let want = [
        ("off_gold_plus", counters([4, 3, 1, 6, 3], [1, 1, 1])),
        ("off_premium_card", counters([1, 1, 1, 1, 1], [1, 0, 0])),
        ("off_restricted", counters([1, 0, 0, 0, 0], [0, 0, 0])),
        ("off_weekly_promo", counters([1, 0, 0, 0, 0], [0, 0, 0])),
        ("off_é", counters([1, 0, 0, 0, 0], [0, 0, 0])),
    ]
    .map(|(o, c)| (o.to_owned(), c));
    assert_eq!(flow_day(&pool, "acme", today, "email", "").await, want);
    // The earlier days are where they were.
    assert_eq!(
        flow_day(&pool, "acme", day(2), "web", "f1").await,
        [("o1".to_owned(), counters([7, 7, 7, 7, 7], [7, 0, 0]))]
    );
}
