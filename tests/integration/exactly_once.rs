//! The exactly-once core driven directly (no broker, docs/guarantees.md 3): a batch moves its
//! partitions' offsets by compare-and-set in the transaction that changes the views, so a retry
//! after a lost acknowledgement changes nothing, a zombie's batch (expecting offsets another
//! consumer moved) is fenced with nothing applied, and a resent event counts once.

use consumers::apply::{apply_batch, ApplyError};

use crate::helpers::{fresh_database, Servers};
use crate::isolation::{batch_at, impressions_by_offer, options, stored_next_offset};

pub fn events(ids: &[&str]) -> Vec<(String, &'static str)> {
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
