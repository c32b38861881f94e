//! The committer's backstop, driven directly (no broker): a batch the database refuses is
//! applied again isolating the events responsible; the offsets move once, in the same
//! transaction, whatever is refused; and a fault of the service rather than the data
//! (every one of several events refused for a reason that is not a data error) dead-letters
//! nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use consumers::apply::{apply_batch, apply_batch_isolating, ApplyError, ApplyOptions, Failure};
use consumers::batch::{Batch, Message};
use consumers::decode::DecodeLimits;
use consumers::events::TopicKind;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{fresh_database, Servers};
use crate::model::ts;

/// Apply-level tests run with `synchronous_commit = off` (`DV_INGEST_SYNCHRONOUS_COMMIT=false`):
/// its transaction must keep every guarantee the default's does; the pipeline tests use the
/// default.
pub fn options() -> ApplyOptions {
    ApplyOptions { owner: "test".into(), trace_retention_days: 30, max_segments: 100, synchronous_commit: false }
}

/// A batch of interactions of `offers` at offsets 0.. of one partition.
fn batch(offers: &[&str]) -> Batch {
    let events: Vec<(String, &str)> = offers.iter().enumerate().map(|(i, o)| (format!("e{i}"), *o)).collect();
    batch_at(&events, 0, None)
}

/// A batch of interactions (event id, offer) at offsets `first`.. of one partition, whose
/// stored next offset is `expected` (`None`: no row yet).
pub fn batch_at(events: &[(String, &str)], first: i64, expected: Option<i64>) -> Batch {
    let now = Utc::now();
    let timed: Vec<(&str, &str, DateTime<Utc>)> = events.iter().map(|(id, offer)| (id.as_str(), *offer, now)).collect();
    batch_in(0, &timed, first, expected)
}

/// A batch of interactions (event id, offer, event time) of customer c1 at offsets `first`..
/// of Kafka partition `partition`, whose stored next offset is `expected`.
pub fn batch_in(partition: i32, events: &[(&str, &str, DateTime<Utc>)], first: i64, expected: Option<i64>) -> Batch {
    let topic: Arc<str> = Arc::from("interactions");
    let mut b = Batch::default();
    for (i, (id, offer, at)) in events.iter().enumerate() {
        let e = json!({"id": id, "tenantId": "acme", "customerId": "c1", "offerId": offer,
                       "channelId": "web", "outcome": "impression", "occurredAt": ts(*at)});
        let payload = e.to_string();
        let msg = Message {
            topic: &topic,
            partition,
            offset: first + i as i64,
            key: Some(b"acme:c1"),
            payload: Some(payload.as_bytes()),
        };
        b.add(TopicKind::Interactions, msg, expected, &DecodeLimits::default(), Utc::now());
    }
    assert!(b.dead_letters.is_empty());
    b
}

pub async fn impressions_by_offer(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT offer_id, sum(impressions)::int8 FROM interaction_daily GROUP BY 1 ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

pub async fn stored_next_offset(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT next_offset FROM consumer_offsets").fetch_optional(pool).await.unwrap()
}

#[tokio::test]
async fn refused_events_are_isolated_and_the_rest_applies_with_the_offsets() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    sqlx::raw_sql("ALTER TABLE interaction_rollup_offer ADD CONSTRAINT no_bad CHECK (offer_id NOT LIKE 'bad%')")
        .execute(&pool)
        .await
        .unwrap();
    let b = batch(&["o1", "bad1", "o2", "o1", "bad2", "o3"]);
    let err = apply_batch(&pool, &b, &options()).await.expect_err("the whole batch is refused");
    assert_eq!(err.failure(), Failure::Data);
    assert_eq!(stored_next_offset(&pool).await, None, "nothing of the refused attempt stayed");

    let applied = apply_batch_isolating(&pool, &b, &options(), false).await.expect("isolated");
    assert_eq!(applied.events, 4);
    assert_eq!(applied.rejected_by_database["interactions"], 2);
    assert_eq!(impressions_by_offer(&pool).await, [("o1".into(), 2), ("o2".into(), 1), ("o3".into(), 1)]);
    assert_eq!(stored_next_offset(&pool).await, Some(6), "the offsets moved past every message");
    let dead: Vec<(i64, String, Vec<u8>)> =
        sqlx::query_as("SELECT \"offset\", reason, payload FROM dead_letters ORDER BY \"offset\"")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        dead.iter().map(|d| (d.0, d.1.as_str())).collect::<Vec<_>>(),
        [(1, "rejected_by_database"), (4, "rejected_by_database")]
    );
    assert!(String::from_utf8_lossy(&dead[0].2).contains("\"bad1\""), "the exact bytes are kept");
    // The refused events' dedup keys are not kept: a fixed replay would apply them.
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM dedup_keys").fetch_one(&pool).await.unwrap();
    assert_eq!(keys, 4);

    // A retry of the same batch after a lost acknowledgement changes nothing.
    let again = apply_batch_isolating(&pool, &b, &options(), false).await.unwrap();
    assert!(again.already_applied);
    assert_eq!(impressions_by_offer(&pool).await.len(), 3);
}

#[tokio::test]
async fn a_fault_that_refuses_every_event_dead_letters_nothing() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    // Not a data error (class P0), and every event trips it: a broken deployment, say.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'broken' USING ERRCODE = 'P0001'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON interaction_rollup_offer FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let b = batch(&["o1", "o2", "o3"]);
    let err = apply_batch(&pool, &b, &options()).await.unwrap_err();
    assert_eq!(err.failure(), Failure::Other);
    let err = apply_batch_isolating(&pool, &b, &options(), true).await.expect_err("the service's fault");
    assert!(matches!(err, ApplyError::Db(_)));
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters").fetch_one(&pool).await.unwrap();
    assert_eq!((dead, stored_next_offset(&pool).await), (0, None), "nothing dead-lettered, nothing committed");
    // Without `any_error` (it has not repeated yet) the error is not even isolated.
    assert!(apply_batch_isolating(&pool, &b, &options(), false).await.is_err());

    // One event alone cannot tell: it is taken for the data's fault.
    let one = batch(&["o1"]);
    let applied = apply_batch_isolating(&pool, &one, &options(), true).await.expect("dead-lettered");
    assert_eq!(applied.rejected_by_database["interactions"], 1);
}
