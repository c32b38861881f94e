//! Sealed batches, driven directly (no broker): `Batch::seal` folds the views outside segment
//! scopes and hollows the batch's traces; the apply step reads back the traces it folds
//! again. Segment members (stored before the batch, or joining inside it), duplicates (the
//! whole batch folded again) and the isolating path all count as the events say.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use consumers::apply::{apply_batch, apply_batch_isolating};
use consumers::batch::{Batch, BatchLimits, Message};
use consumers::decode::DecodeLimits;
use consumers::events::{Event, TopicKind};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{fresh_database, Servers};
use crate::isolation::options;
use crate::model::{at, membership, test_today, ts};

/// A trace of `customer` whose candidates all qualify and are scored in `offers`' order;
/// the first is selected.
fn trace(id: &str, customer: &str, offers: &[&str]) -> Value {
    let scoring: Vec<Value> =
        offers.iter().enumerate().map(|(i, o)| json!({"offerId": o, "score": 0.5, "rank": i + 1})).collect();
    json!({"id": id, "tenantId": "acme", "customerId": customer, "requestId": "r", "channelId": "web",
           "decisionFlowId": "df", "qualificationResults": offers.iter().map(|o| json!({"offerId": o, "passed": true, "reason": "passed"})).collect::<Vec<_>>(),
           "scoringResults": scoring, "selectedOffers": [scoring[0]], "totalDurationMs": 5,
           "createdAt": ts(at(test_today(), 1))})
}

/// A batch of (topic, offset, event); `expected`: the stored next offset of each topic's
/// partition 0 (`None`: no row yet).
pub fn batch(events: &[(TopicKind, i64, Value)], expected: &BTreeMap<TopicKind, Option<i64>>) -> Batch {
    let mut b = Batch::default();
    for (kind, offset, event) in events {
        let topic: Arc<str> = Arc::from(kind.default_name());
        let payload = event.to_string();
        let msg =
            Message { topic: &topic, partition: 0, offset: *offset, key: None, payload: Some(payload.as_bytes()) };
        b.add(*kind, msg, expected[kind], &DecodeLimits::default(), Utc::now());
    }
    assert!(b.dead_letters.is_empty(), "{:?}", b.dead_letters);
    b
}

/// `batch`, sealed as the consumer thread seals it: its traces are hollow afterwards.
fn sealed(events: &[(TopicKind, i64, Value)], expected: &BTreeMap<TopicKind, Option<i64>>) -> Batch {
    let mut b = batch(events, expected);
    b.seal();
    assert!(b.entries.iter().all(|e| !matches!(&e.event, Event::Trace(t) if !t.hollow)), "traces are hollow");
    b
}

/// (segment or "" for every trace, offer) → (scored, selected).
async fn counts(pool: &PgPool) -> BTreeMap<(String, String), (i64, i64)> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT segment_id, offer_id, sum(scored)::int8, sum(selected)::int8 FROM selection_segment_daily GROUP BY 1, 2
         UNION ALL SELECT '', offer_id, sum(scored)::int8, sum(selected)::int8 FROM selection_daily GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(s, o, sc, se)| ((s, o), (sc, se))).collect()
}

fn expect(rows: &[(&str, &str, i64, i64)]) -> BTreeMap<(String, String), (i64, i64)> {
    rows.iter().map(|(s, o, sc, se)| ((s.to_string(), o.to_string()), (*sc, *se))).collect()
}

#[tokio::test]
async fn sealed_batches_count_members_duplicates_and_isolated_runs_exactly() {
    use TopicKind::{DecisionTraces as T, SegmentMembership as M};
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let expected = |t: Option<i64>, m: Option<i64>| BTreeMap::from([(T, t), (M, m)]);
    let member = |id: &str, seg: &str, customer: &str| membership("acme", id, seg, customer, "add");

    // c1 is a member of seg_a before the batch; c2 joins seg_b inside it, between its traces'
    // neighbours; c3 is in no segment.
    apply_batch(&pool, &sealed(&[(M, 0, member("m1", "seg_a", "c1"))], &expected(None, None)), &options())
        .await
        .unwrap();
    let second = sealed(
        &[
            (T, 0, trace("t1", "c1", &["o1", "o2"])),
            (M, 1, member("m2", "seg_b", "c2")),
            (T, 1, trace("t2", "c2", &["o2", "o3"])),
            (T, 2, trace("t3", "c3", &["o1"])),
        ],
        &expected(None, Some(1)),
    );
    assert_eq!(apply_batch(&pool, &second, &options()).await.unwrap().events, 4);
    let mut want = vec![
        ("", "o1", 2, 2),
        ("", "o2", 2, 1),
        ("", "o3", 1, 0),
        ("seg_a", "o1", 1, 1),
        ("seg_a", "o2", 1, 0),
        ("seg_b", "o2", 1, 1),
        ("seg_b", "o3", 1, 0),
    ];
    assert_eq!(counts(&pool).await, expect(&want));

    // A resent t1: the batch is folded again from its hollow traces, read back whole.
    let third = sealed(
        &[(T, 3, trace("t1", "c1", &["o1", "o2"])), (T, 4, trace("t4", "c2", &["o3"]))],
        &expected(Some(3), Some(2)),
    );
    let applied = apply_batch(&pool, &third, &options()).await.unwrap();
    assert_eq!((applied.events, applied.duplicates), (1, 1));
    want[2].2 = 2; // "" o3: scored 2, selected 1
    want[2].3 = 1;
    want[6] = ("seg_b", "o3", 2, 1);
    assert_eq!(counts(&pool).await, expect(&want));

    // The isolating path folds its runs from the hollow traces too.
    let fourth = sealed(&[(T, 5, trace("t5", "c1", &["o2"]))], &expected(Some(5), Some(2)));
    assert_eq!(apply_batch_isolating(&pool, &fourth, &options(), false).await.unwrap().events, 1);
    want[1] = ("", "o2", 3, 2);
    want[4] = ("seg_a", "o2", 2, 1);
    assert_eq!(counts(&pool).await, expect(&want));
}

/// A batch over a megabyte of traces: the consumer thread folds it a chunk at a time as it
/// reads and holds each trace's payload compressed. The views count every trace, the raw
/// store keeps every body byte for byte, and the batch holds a fraction of what it read.
#[tokio::test]
async fn a_batch_folded_a_chunk_at_a_time_counts_and_stores_every_trace() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let offers: Vec<String> = (0..50).map(|o| format!("offer_{o:02}")).collect();
    let published: Vec<Value> = (0..600)
        .map(|i| {
            let scored: Vec<&str> = (0..40).map(|k| offers[(i + k) % 50].as_str()).collect();
            trace(&format!("t{i}"), &format!("c{}", i % 7), &scored)
        })
        .collect();
    let events: Vec<(TopicKind, i64, Value)> =
        published.iter().enumerate().map(|(i, t)| (TopicKind::DecisionTraces, i as i64, t.clone())).collect();
    let read: usize = published.iter().map(|t| t.to_string().len()).sum();
    assert!(read > 2 << 20, "more than one fold chunk: {read} bytes");
    let b = sealed(&events, &BTreeMap::from([(TopicKind::DecisionTraces, None)]));
    assert!(b.bytes * 4 < read, "payloads held compressed: {} of {read} bytes", b.bytes);
    assert_eq!(apply_batch(&pool, &b, &options()).await.unwrap().events, 600);

    // Scored by every trace that lists it, selected by those that list it first.
    let mut want: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for t in &published {
        for (rank, s) in t["scoringResults"].as_array().unwrap().iter().enumerate() {
            let c = want.entry((String::new(), s["offerId"].as_str().unwrap().to_owned())).or_default();
            c.0 += 1;
            c.1 += i64::from(rank == 0);
        }
    }
    assert_eq!(counts(&pool).await, want);
    let stored: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT id, body_zstd FROM decision_traces").fetch_all(&pool).await.unwrap();
    let stored: BTreeMap<String, Vec<u8>> =
        stored.into_iter().map(|(id, z)| (id, consumers::apply::raw_traces::decompress(&z).unwrap())).collect();
    let sent: BTreeMap<String, Vec<u8>> =
        published.iter().map(|t| (t["id"].as_str().unwrap().to_owned(), t.to_string().into_bytes())).collect();
    assert_eq!(stored, sent);
}

/// The delta bound counts the rows a batch's events make, not their upper bound: 300
/// impressions of one offer and channel could add 1,500 rows, and fold into four.
#[tokio::test]
async fn a_batch_is_bounded_by_the_rows_its_events_fold_into() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let events: Vec<(String, &str)> = (0..300).map(|i| (format!("e{i}"), "o1")).collect();
    let mut b = crate::isolation::batch_at(&events, 0, None);
    let limits = BatchLimits { max_messages: 10_000, max_bytes: 1 << 30, max_weight: 100 };
    assert!(!b.is_full(&limits), "300 events of one key fold into {} rows", b.weight());
    // (Four: the day's row and its three rollups; eight if the clock passed midnight meanwhile.)
    assert!(b.weight() <= 10, "{} rows", b.weight());
    b.seal();
    assert_eq!(apply_batch(&pool, &b, &options()).await.unwrap().events, 300);
    assert_eq!(crate::isolation::impressions_by_offer(&pool).await, vec![("o1".to_owned(), 300)]);
    // Past the bound, it is full.
    let limits = BatchLimits { max_weight: 2, ..limits };
    assert!(b.is_full(&limits));
}

/// A trace the database refuses is dead-lettered with the bytes that were published, though
/// the batch held them compressed; the rest of the batch applies.
#[tokio::test]
async fn a_trace_the_database_refuses_is_dead_lettered_with_its_published_bytes() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    sqlx::raw_sql(
        "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'refused by a test trigger' USING ERRCODE = '22000'; END $$;
         CREATE TRIGGER test_refuse BEFORE INSERT ON trace_daily FOR EACH ROW
           WHEN (NEW.channel_id = 'poison') EXECUTE FUNCTION test_refuse();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut poison = trace("t2", "c2", &["o1"]);
    poison["channelId"] = json!("poison");
    let events = [
        (TopicKind::DecisionTraces, 0, trace("t1", "c1", &["o1"])),
        (TopicKind::DecisionTraces, 1, poison.clone()),
        (TopicKind::DecisionTraces, 2, trace("t3", "c3", &["o1", "o2"])),
    ];
    let b = sealed(&events, &BTreeMap::from([(TopicKind::DecisionTraces, None)]));
    apply_batch(&pool, &b, &options()).await.expect_err("the trigger refuses the batch");
    let applied = apply_batch_isolating(&pool, &b, &options(), false).await.unwrap();
    assert_eq!((applied.events, applied.dead_letters), (2, 1));
    let dead: Vec<(i64, String, Vec<u8>)> =
        sqlx::query_as("SELECT \"offset\", reason, payload FROM dead_letters").fetch_all(&pool).await.unwrap();
    assert_eq!(dead, vec![(1, "rejected_by_database".to_owned(), poison.to_string().into_bytes())]);
    assert_eq!(counts(&pool).await, expect(&[("", "o1", 2, 2), ("", "o2", 1, 0)]));
}
