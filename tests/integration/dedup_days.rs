//! Dedup keys kept per event date (migration 20261205000010), driven through the apply step
//! (no broker): a copy within the horizon is recognized however late its event, the day
//! partitions appear as batches need them (also when two writers need the same one at once)
//! and go whole once no key of theirs was applied within the horizon.

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
async fn a_day_of_keys_lives_until_none_was_applied_within_the_horizon() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let now = Utc::now();
    let (month_ago, week_ago) = (now - Duration::days(30), now - Duration::days(7));
    assert!(partitions(&pool).await.is_empty());

    // One batch on three event dates: a partition for each.
    assert_eq!(apply(&pool, &[("old", "o1", month_ago), ("mid", "o1", week_ago), ("new", "o1", now)], 0).await, (3, 0));
    let mut want = vec![partition(month_ago), partition(week_ago), partition(now)];
    want.sort();
    assert_eq!(partitions(&pool).await, want);

    // Keys applied just now live a 7-day horizon whatever their date: a late event's copy is a
    // duplicate; a copy dated another day is another event (documented).
    janitor::purge(&pool, 7, 400).await.unwrap();
    assert_eq!(partitions(&pool).await, want, "every key was applied within the horizon");
    let copies = [("old", "o1", month_ago), ("mid", "o1", week_ago), ("old", "o1", month_ago + Duration::days(1))];
    assert_eq!(apply(&pool, &copies, 3).await, (1, 2));
    assert_eq!(impressions_by_offer(&pool).await, [("o1".into(), 4)]);

    // Eight days on, as far as the keys know: the days before the horizon go whole, the others
    // stay (their dates are within it), and a copy of "old" now counts again, as the horizon says.
    sqlx::query("UPDATE dedup_keys SET applied_at = applied_at - interval '8 days'").execute(&pool).await.unwrap();
    janitor::purge(&pool, 7, 400).await.unwrap();
    assert_eq!(partitions(&pool).await, [partition(week_ago), partition(now)]);
    assert_eq!(apply(&pool, &[("old", "o1", month_ago), ("mid", "o1", week_ago)], 6).await, (1, 1));

    // Past the retention horizon a day goes whatever its keys' age: none of its events can be
    // accepted any more.
    janitor::purge(&pool, 400, 20).await.unwrap();
    assert_eq!(partitions(&pool).await, [partition(week_ago), partition(now)]);
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

/// The janitor never drops a day under a batch writing it: a late event's key, written by a
/// batch still in flight into a day whose other keys are past the horizon, keeps the day (the
/// janitor waits for the batch, then sees the key). Dropping on what it saw before the batch
/// committed would lose the key, and the event's copy would count twice.
#[tokio::test]
async fn a_day_is_not_dropped_under_a_batch_writing_it() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let old = Utc::now() - Duration::days(30);
    assert_eq!(apply(&pool, &[("first", "o1", old)], 0).await, (1, 0));
    sqlx::query("UPDATE dedup_keys SET applied_at = applied_at - interval '8 days'").execute(&pool).await.unwrap();
    // The next batch stalls after its dedup keys, before its view upserts commit.
    sqlx::raw_sql(
        "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
         CREATE TRIGGER stall BEFORE INSERT ON interaction_rollup_offer FOR EACH ROW EXECUTE FUNCTION stall();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let in_flight = tokio::spawn({
        let pool = pool.clone();
        async move { apply(&pool, &[("late", "o1", old)], 1).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    janitor::purge(&pool, 7, 400).await.unwrap();
    assert_eq!(in_flight.await.unwrap(), (1, 0));
    assert_eq!(partitions(&pool).await, [partition(old)], "the day a key was just applied to stays");
    sqlx::raw_sql("DROP TRIGGER stall ON interaction_rollup_offer").execute(&pool).await.unwrap();
    assert_eq!(apply(&pool, &[("late", "o1", old)], 2).await, (0, 1));
}
