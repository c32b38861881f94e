//! The exactly-once core driven directly (no broker, docs/guarantees.md 3): a batch moves its
//! partitions' offsets by compare-and-set in the transaction that changes the views, so a retry
//! after a lost acknowledgement changes nothing, a zombie's batch (expecting offsets another
//! consumer moved) is fenced with nothing applied, and a resent event counts once.

use std::borrow::Cow;

use consumers::apply::{apply_batch, ApplyError};
use consumers::events::TopicKind;
use sqlx::migrate::Migrator;

use crate::helpers::{empty_database, fresh_database, Servers};
use crate::isolation::{batch_at, impressions_by_offer, options, stored_next_offset};

fn events(ids: &[&str]) -> Vec<(String, &'static str)> {
    ids.iter().map(|id| (id.to_string(), "o1")).collect()
}

#[tokio::test]
async fn offsets_move_once_zombies_are_fenced_and_resent_events_count_once() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    // The first batch of a partition (no stored row yet), then its retry after a lost answer.
    let first = batch_at(&events(&["a", "b", "c"]), 0, None);
    assert_eq!(apply_batch(&pool, &first, &options()).await.unwrap().events, 3);
    assert!(apply_batch(&pool, &first, &options()).await.unwrap().already_applied, "a retry is recognized");
    assert_eq!((impressions_by_offer(&pool).await, stored_next_offset(&pool).await), (vec![("o1".into(), 3)], Some(3)));

    // The next batch; "b" is resent by an at-least-once producer: dropped by its id.
    let second = batch_at(&events(&["d", "b", "e"]), 3, Some(3));
    let applied = apply_batch(&pool, &second, &options()).await.unwrap();
    assert_eq!((applied.events, applied.duplicates), (2, 1));
    assert!(apply_batch(&pool, &second, &options()).await.unwrap().already_applied);

    // A zombie whose batch of offsets 3..5 started before a rebalance, or one that never saw a
    // stored row: fenced, and the views do not move. (A batch ending exactly at the stored
    // offset holds the very messages that moved it there: it is a retry, already applied.)
    for (expected, first_offset) in [(Some(3), 3), (None, 0)] {
        let zombie = batch_at(&events(&["z1", "z2"]), first_offset, expected);
        let err = apply_batch(&pool, &zombie, &options()).await.expect_err("fenced");
        assert!(matches!(err, ApplyError::Fenced { stored: Some(6), .. }), "{err:?}");
    }
    assert_eq!((impressions_by_offer(&pool).await, stored_next_offset(&pool).await), (vec![("o1".into(), 5)], Some(6)));

    // An event repeated inside one batch counts once, the first occurrence winning.
    let third = batch_at(&events(&["f", "f", "g"]), 6, Some(6));
    let applied = apply_batch(&pool, &third, &options()).await.unwrap();
    assert_eq!((applied.events, applied.duplicates), (2, 1));
    assert_eq!(impressions_by_offer(&pool).await, [("o1".into(), 7)]);
}

/// Dedup keys stored before they were hashed (migration 20261202000050) still recognize their
/// events after the upgrade: the migration hashes them exactly as ingest does.
#[tokio::test]
async fn dedup_keys_stored_before_the_upgrade_still_recognize_their_events() {
    const HASHED: i64 = 20261202000050;
    let (_, _, pool) = empty_database(&Servers::default().postgres).await;
    let before = Migrator {
        migrations: Cow::Owned(decision_views::MIGRATOR.iter().filter(|m| m.version < HASHED).cloned().collect()),
        ..Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
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
    decision_views::MIGRATOR.run(&pool).await.unwrap();
    let applied = apply_batch(&pool, &batch_at(&events(&["a", "c"]), 0, None), &options()).await.unwrap();
    assert_eq!((applied.events, applied.duplicates), (1, 1), "\"a\" was applied before the upgrade");
    assert_eq!(impressions_by_offer(&pool).await, [("o1".into(), 1)]);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM dedup_keys").fetch_one(&pool).await.unwrap();
    assert_eq!(keys, 3);
}

/// Raw traces stored before `decision_trace_ids` existed are found by id after the upgrade: the
/// migration indexes every stored trace (two days of one tenant, one id stored on both days,
/// and another tenant's trace).
#[tokio::test]
async fn traces_stored_before_the_upgrade_are_found_by_id_after_it() {
    const TRACE_IDS: i64 = 20261202000060;
    let (_, _, pool) = empty_database(&Servers::default().postgres).await;
    let before = Migrator {
        migrations: Cow::Owned(decision_views::MIGRATOR.iter().filter(|m| m.version < TRACE_IDS).cloned().collect()),
        ..Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
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
