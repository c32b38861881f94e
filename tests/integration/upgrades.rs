//! Upgrades carry data over: a database built by the migrations before one, holding what the
//! code of that time stored, answers the same after it (migrations README: an applied
//! migration is never edited; a change is a new one that carries the existing data over).

use chrono::{Duration, NaiveDate, Utc};
use consumers::apply::apply_batch;
use consumers::events::TopicKind;
use consumers::units::wide::entries;
use sqlx::PgPool;

use crate::exactly_once::events;
use crate::helpers::{database_before, database_url_before, spawn_app_with, TestEnv};
use crate::isolation::{batch_at, impressions_by_offer, options};
use crate::viewer::{score_buckets, score_dims};

mod catalog_versions;
mod chain_totals;
mod daily_views;
mod flow_totals;
mod grouped_segments;
mod segment_channels;
mod segment_totals;
mod trace_totals;

/// Dedup keys stored before they were hashed (migration 20261202000050) still recognize their
/// events after the upgrade: the migration hashes them exactly as ingest does.
#[tokio::test]
async fn dedup_keys_stored_before_the_upgrade_still_recognize_their_events() {
    let pool = database_before(20261202000050).await;
    // What ingest stored before: text columns only; one tenant id with non-ASCII bytes.
    for (tenant, id) in [("acme", "a"), ("acmé", "b")] {
        sqlx::query("INSERT INTO dedup_keys (tenant_id, topic, event_id) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(TopicKind::Interactions.code())
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    upgrade_then_apply_a_and_c(&pool).await;
}

/// Runs the remaining migrations, then applies "a" (stored before: a duplicate) and "c".
async fn upgrade_then_apply_a_and_c(pool: &PgPool) {
    decision_views::MIGRATOR.run(pool).await.unwrap();
    let applied = apply_batch(pool, &batch_at(&events(&["a", "c"]), 0, None), &options()).await.unwrap();
    assert_eq!((applied.events, applied.duplicates), (1, 1), "\"a\" was applied before the upgrade");
    assert_eq!(impressions_by_offer(pool).await, [("o1".into(), 1)]);
    assert_eq!(remembered(pool).await, 3);
}

/// The distinct dedup keys remembered: kept by event date, or stored before that (migration
/// 20261205000010) and kept as they were.
async fn remembered(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM (SELECT key FROM dedup_keys UNION SELECT key FROM legacy_dedup_keys) k")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Hashed dedup keys stored before they were kept by event date (migration 20261205000010)
/// still recognize their events after the upgrade, and the janitor retires them past the
/// dedup horizon, after which ingest no longer looks them up.
#[tokio::test]
async fn dedup_keys_stored_before_keys_by_event_date_still_recognize_their_events() {
    let pool = database_before(20261205000010).await;
    // What ingest stored before: the hash and the text columns, applied a day ago and 500 days ago.
    for (id, age) in [("a", 1), ("b", 500)] {
        sqlx::query(
            "INSERT INTO dedup_keys (key, tenant_id, topic, event_id, applied_at)
             VALUES (substring(sha256(convert_to('acme', 'UTF8') || '\\x00'::bytea || int2send($1::int2)
                                       || '\\x00'::bytea || convert_to($2, 'UTF8')) FROM 1 FOR 16),
                     'acme', $1, $2, now() - make_interval(days => $3))",
        )
        .bind(TopicKind::Interactions.code())
        .bind(id)
        .bind(age)
        .execute(&pool)
        .await
        .unwrap();
    }
    upgrade_then_apply_a_and_c(&pool).await;

    // Past the horizon: the 500-day-old key goes, the other (a day old) stays and still counts.
    consumers::janitor::purge(&pool, 7, 400).await.unwrap();
    let legacy: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM legacy_dedup_keys").fetch_all(&pool).await.unwrap();
    assert_eq!(legacy, ["a"]);
    let bound: i64 = sqlx::query_scalar("SELECT count(*) FROM legacy_dedup_bound").fetch_one(&pool).await.unwrap();
    assert_eq!(bound, 1, "keys are left to look up");
    // Once none is left, ingest stops looking.
    sqlx::query("UPDATE legacy_dedup_keys SET applied_at = now() - interval '8 days'").execute(&pool).await.unwrap();
    consumers::janitor::purge(&pool, 7, 400).await.unwrap();
    let bound: i64 = sqlx::query_scalar("SELECT count(*) FROM legacy_dedup_bound").fetch_one(&pool).await.unwrap();
    assert_eq!(bound, 0);
    let applied = apply_batch(&pool, &batch_at(&events(&["a"]), 2, Some(2)), &options()).await.unwrap();
    assert_eq!((applied.events, applied.duplicates), (0, 1), "kept by event date since the first batch");
}

/// Raw traces stored before `decision_trace_ids` existed are found by id after the upgrade: the
/// migration indexes every stored trace (two days of one tenant, one id stored on both days,
/// and another tenant's trace).
#[tokio::test]
async fn traces_stored_before_the_upgrade_are_found_by_id_after_it() {
    let pool = database_before(20261202000060).await;
    // What ingest stored before: one partition per day, the body compressed.
    for (day, partition) in [("2026-11-30", "decision_traces_20261130"), ("2026-12-01", "decision_traces_20261201")] {
        sqlx::query(&format!(
            "CREATE TABLE {partition} PARTITION OF decision_traces FOR VALUES FROM ('{day}') TO (date '{day}' + 1)"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    for (tenant, day, id) in [
        ("acme", "2026-11-30", "t1"),
        ("acme", "2026-12-01", "t1"),
        ("acme", "2026-12-01", "t2"),
        ("beta", "2026-12-01", "t3"),
    ] {
        sqlx::query(
            "INSERT INTO decision_traces (tenant_id, day, id, customer_id, request_id, created_at, body_zstd)
             VALUES ($1, $2::date, $3, 'c', 'r', $2::date, $4)",
        )
        .bind(tenant)
        .bind(day)
        .bind(id)
        .bind(consumers::apply::raw_traces::compress(b"{}"))
        .execute(&pool)
        .await
        .unwrap();
    }
    decision_views::MIGRATOR.run(&pool).await.unwrap();
    let ids: Vec<(String, String, String)> =
        sqlx::query_as("SELECT tenant_id, id, day::text FROM decision_trace_ids ORDER BY tenant_id, id, day")
            .fetch_all(&pool)
            .await
            .unwrap();
    let want = [
        ("acme", "t1", "2026-11-30"),
        ("acme", "t1", "2026-12-01"),
        ("acme", "t2", "2026-12-01"),
        ("beta", "t3", "2026-12-01"),
    ];
    assert_eq!(ids, want.map(|(t, i, d)| (t.to_owned(), i.to_owned(), d.to_owned())));
}

/// The candidate counters per (day, channel, flow, offer) and the beaten-by pairs stored as one
/// row each before migration 20261203000010 are the wide rows' entries after it, byte-ordered
/// (a non-ASCII id sorts last), and the next batch adds onto them.
#[tokio::test]
async fn narrow_selection_rows_carry_over_into_wide_rows() {
    let pool = database_before(20261203000010).await;
    let today = Utc::now().date_naive();
    let yesterday = today - Duration::days(1);
    // What ingest stored before: (channel, flow, offer, eligible, scored, selected, rank_sum, rank_n, r1, r3).
    let narrow = [
        ("email", "", "off_gold_plus", 3, 2, 1, 4, 2, 1, 1),
        ("email", "", "off_é", 1, 0, 0, 0, 0, 0, 0),
        ("web", "f1", "o1", 7, 7, 7, 7, 7, 7, 0),
    ];
    for (channel, flow, offer, e, s, sel, rs, rn, r1, r3) in narrow {
        let mut insert = sqlx::query(
            "INSERT INTO selection_dims_daily (tenant_id, day, channel_id, decision_flow_id, offer_id,
                 eligible, scored, selected, rank_sum, rank_n, r1, r3, miss_contact)
             VALUES ('acme', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 99)",
        )
        .bind(today)
        .bind(channel)
        .bind(flow)
        .bind(offer);
        for v in [e, s, sel, rs, rn, r1, r3] {
            insert = insert.bind(v as i64);
        }
        insert.execute(&pool).await.unwrap();
    }
    for (day, winner, count) in
        [(today, "off_premium_card", 4_i64), (today, "w_é", 2), (yesterday, "off_premium_card", 1)]
    {
        sqlx::query(
            "INSERT INTO beaten_by_daily (tenant_id, day, offer_id, winner_id, count) VALUES ('acme', $1, 'off_gold_plus', $2, $3)",
        )
        .bind(day)
        .bind(winner)
        .bind(count)
        .execute(&pool)
        .await
        .unwrap();
    }
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    let counters = |r1: i64, r2: i64, r3: i64, head: [i64; 5]| {
        let mut c = [0_i64; 15];
        c[..5].copy_from_slice(&head);
        (c[5], c[6], c[7]) = (r1, r2, r3);
        c
    };
    let email = vec![
        ("off_gold_plus".to_owned(), counters(1, 0, 1, [3, 2, 1, 4, 2])),
        ("off_é".to_owned(), counters(0, 0, 0, [1, 0, 0, 0, 0])),
    ];
    assert_eq!(flow_row(&pool, today, "email", "").await, email);
    assert_eq!(flow_row(&pool, today, "web", "f1").await, [("o1".to_owned(), counters(7, 0, 0, [7, 7, 7, 7, 7]))]);
    assert_eq!(winners(&pool, today).await, [("off_premium_card".to_owned(), 4), ("w_é".to_owned(), 2)]);
    assert_eq!(winners(&pool, yesterday).await, [("off_premium_card".to_owned(), 1)]);

    // The next batch: explain's trace (email, no flow) adds off_gold_plus scored 2nd and beaten
    // by off_premium_card, which it selected 1st; two more candidates miss.
    crate::explain::apply_trace_at(&pool, today.and_hms_opt(0, 0, 1).unwrap().and_utc()).await;
    let email = vec![
        ("off_gold_plus".to_owned(), counters(1, 1, 1, [4, 3, 1, 6, 3])),
        ("off_premium_card".to_owned(), counters(1, 0, 0, [1, 1, 1, 1, 1])),
        ("off_restricted".to_owned(), counters(0, 0, 0, [1, 0, 0, 0, 0])),
        ("off_weekly_promo".to_owned(), counters(0, 0, 0, [1, 0, 0, 0, 0])),
        ("off_é".to_owned(), counters(0, 0, 0, [1, 0, 0, 0, 0])),
    ];
    assert_eq!(flow_row(&pool, today, "email", "").await, email);
    assert_eq!(winners(&pool, today).await, [("off_premium_card".to_owned(), 5), ("w_é".to_owned(), 2)]);
}

async fn flow_row(pool: &PgPool, day: NaiveDate, channel: &str, flow: &str) -> Vec<(String, [i64; 15])> {
    crate::wide_rows::flow_day(pool, "acme", day, channel, flow).await
}

async fn winners(pool: &PgPool, day: NaiveDate) -> Vec<(String, i64)> {
    let value: Vec<u8> = sqlx::query_scalar(
        "SELECT winners FROM beaten_by_offer_daily WHERE tenant_id = 'acme' AND offer_id = 'off_gold_plus' AND day = $1",
    )
    .bind(day)
    .fetch_one(pool)
    .await
    .unwrap();
    entries::<1>(&value).map(|e| e.map(|(id, [n])| (id.to_owned(), n)).unwrap()).collect()
}

/// The per-offer score buckets stored in `score_offer_daily` before migration 20261205000030
/// are `selection_daily`'s columns after it: score_distribution by offer answers as before,
/// buckets included (`filterId`), and an offer that was a candidate but never scored stays out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_score_buckets_carry_over_into_selection_daily() {
    let (db_url, pool) = database_url_before(20261205000030).await;
    let today = crate::model::test_today();
    let yesterday = today - Duration::days(1);
    // What ingest stored before: o1 scored 0.4 and 0.9 today and 0.95 yesterday, o2 0.15 today,
    // o3 a candidate today that was never scored.
    for (day, offer, eligible, scored, sum, n) in [
        (today, "o1", 2_i64, 2_i64, 1_300_000_i64, 2_i64),
        (yesterday, "o1", 1, 1, 950_000, 1),
        (today, "o2", 1, 1, 150_000, 1),
        (today, "o3", 1, 0, 0, 0),
    ] {
        sqlx::query(
            "INSERT INTO selection_daily (tenant_id, day, offer_id, eligible, scored, score_sum_micros, score_n)
             VALUES ('acme', $1, $2, $3, $4, $5, $6)",
        )
        .bind(day)
        .bind(offer)
        .bind(eligible)
        .bind(scored)
        .bind(sum)
        .bind(n)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (day, offer, buckets, counts, sum, n) in [
        (today, "o1", "b4, b9", "1, 1", 1_300_000_i64, 2_i64),
        (yesterday, "o1", "b9", "1", 950_000, 1),
        (today, "o2", "b1", "1", 150_000, 1),
    ] {
        sqlx::query(&format!(
            "INSERT INTO score_offer_daily (tenant_id, day, offer_id, {buckets}, score_sum_micros, n)
             VALUES ('acme', $1, $2, {counts}, $3, $4)"
        ))
        .bind(day)
        .bind(offer)
        .bind(sum)
        .bind(n)
        .execute(&pool)
        .await
        .unwrap();
    }
    decision_views::MIGRATOR.run(&pool).await.unwrap();

    let env = TestEnv::new().await;
    let env = TestEnv { db_url, pool, ..env };
    let key = env.api_key("acme", decision_views::api::auth::Role::Viewer).await;
    let app = spawn_app_with(env, decision_views::startup::Mode::Api).await;
    let get = |query: String| {
        let app = &app;
        let key = &key;
        async move {
            let path =
                format!("/api/v1/dashboard-data?type=score_distribution&days=7&asOf={today}&groupBy=offer{query}");
            let (status, body) = app.get(&path, key, "acme").await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let body = get(String::new()).await;
    assert_eq!(score_dims(&body), [("o1".to_owned(), 3, 0.75), ("o2".to_owned(), 1, 0.15)]);
    assert_eq!(score_buckets(&get("&filterId=o1".into()).await), [0, 0, 0, 0, 1, 0, 0, 0, 0, 2]);
    assert_eq!(score_buckets(&get("&filterId=o2".into()).await), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    app.stop().await.unwrap();
}
