//! Dedup keys kept per event date (migration 20261205000010), driven through the apply step
//! (no broker): a copy is recognized however late it comes within the retention horizon, the
//! day partitions appear as batches need them (also when two writers need the same one at
//! once) and go whole once their date leaves the horizon.

use chrono::{DateTime, Duration, Utc};
use consumers::apply::apply_batch;
use consumers::janitor;
use sqlx::PgPool;

use crate::helpers::{fresh_database, Servers};
use crate::isolation::{batch_in, impressions_by_offer, options};

async fn partitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'dedup_keys'::regclass ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn partition(at: DateTime<Utc>) -> String {
    format!("dedup_keys_{}", at.format("%Y%m%d"))
}

/// (events, duplicates) of a batch of `events` at `first`.. of Kafka partition 0.
async fn apply(pool: &PgPool, events: &[(&str, &str, DateTime<Utc>)], first: i64) -> (usize, usize) {
    let expected = (first > 0).then_some(first);
    let applied = apply_batch(pool, &batch_in(0, events, first, expected), &options()).await.unwrap();
    (applied.events, applied.duplicates)
}

#[tokio::test]
async fn a_copy_is_recognized_however_late_within_the_retention_horizon() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let now = Utc::now();
    let (month_ago, week_ago) = (now - Duration::days(30), now - Duration::days(7));
    assert!(partitions(&pool).await.is_empty());

    // One batch on three event dates: a partition for each.
    assert_eq!(apply(&pool, &[("old", "o1", month_ago), ("mid", "o1", week_ago), ("new", "o1", now)], 0).await, (3, 0));
    let mut want = vec![partition(month_ago), partition(week_ago), partition(now)];
    want.sort();
    assert_eq!(partitions(&pool).await, want);

    // Copies long after the old 7-day horizon are still duplicates, also after the janitor ran
    // with the default retention; a copy dated another day is another event (documented).
    janitor::purge(&pool, 400).await.unwrap();
    assert_eq!(partitions(&pool).await, want, "nothing within 400 days is dropped");
    let copies = [("old", "o1", month_ago), ("mid", "o1", week_ago), ("old", "o1", month_ago + Duration::days(1))];
    assert_eq!(apply(&pool, &copies, 3).await, (1, 2));
    assert_eq!(impressions_by_offer(&pool).await, [("o1".into(), 4)]);

    // A 20-day horizon drops the partitions of a month ago and the day after, and only them.
    janitor::purge(&pool, 20).await.unwrap();
    let kept = partitions(&pool).await;
    assert!(!kept.contains(&partition(month_ago)) && !kept.contains(&partition(month_ago + Duration::days(1))));
    assert!(kept.contains(&partition(week_ago)) && kept.contains(&partition(now)), "{kept:?}");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM dedup_keys").fetch_one(&pool).await.unwrap();
    assert_eq!(keys, 2, "mid and new");
}

/// Two ingest processes whose batches both need a day nobody wrote yet: the second waits for
/// the first to create its partition instead of failing (a failure would read as a data error
/// and send good events to isolation).
#[tokio::test]
async fn two_writers_needing_the_same_new_day_both_commit() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let day = Utc::now() - Duration::days(3);
    for round in 0..5 {
        let at = day - Duration::days(round);
        let first = round * 2;
        let expected = (round > 0).then_some(first);
        let a = batch_in(0, &[(&format!("a{round}"), "o1", at), (&format!("b{round}"), "o1", at)], first, expected);
        let b = batch_in(1, &[(&format!("c{round}"), "o1", at), (&format!("d{round}"), "o1", at)], first, expected);
        let opts = options();
        let (ra, rb) = tokio::join!(apply_batch(&pool, &a, &opts), apply_batch(&pool, &b, &opts));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!((ra.events, rb.events, ra.dead_letters, rb.dead_letters), (2, 2, 0, 0), "round {round}");
    }
    assert_eq!(partitions(&pool).await.len(), 5);
    assert_eq!(impressions_by_offer(&pool).await, [("o1".into(), 20)]);
}

/// The variable that set the old horizon is refused, not ignored: an operator who set it to
/// bound the table's size must learn that keys now live as long as events are accepted.
#[test]
fn the_former_horizon_variable_is_refused_at_start_up() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_decision-views"))
        .arg("ingest")
        .env_clear()
        .env("DV_DEDUP_HORIZON_DAYS", "7")
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("DV_DEDUP_HORIZON_DAYS is gone") && stderr.contains("DV_RETENTION_DAYS"), "{stderr}");
}
