//! The wide views are locked, merged and rewritten a chunk of rows at a time
//! (`consumers::apply::wide`, ~2 MiB of stored values per statement). Driven directly (no
//! broker): batches whose selection rows hold many times one chunk of values are exact, both
//! when the rows are created and when they are merged into stored ones.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use consumers::apply::apply_batch;
use consumers::events::TopicKind;
use consumers::units::wide::entries;
use serde_json::{json, Value};

use crate::helpers::{fresh_database, Servers};
use crate::isolation::options;
use crate::model::{at, test_today, ts};
use crate::sealed::batch;

/// (day, channel, flow) → offer → (scored, selected): the contract's counts (docs/dashboard-types.md 5.1).
type Expected = BTreeMap<(NaiveDate, String, String), BTreeMap<String, (i64, i64)>>;

const DAYS: i64 = 20;
const CHANNELS: usize = 4;
const FLOWS: usize = 3;
/// Candidates of each trace: 400 offers of 15 counters with 80-byte ids make a ~39 KB row
/// (compact counters take a byte or two each, so the ids make the size), and the 240 rows of a
/// batch hold ~9.4 MiB, about five chunks.
const OFFERS: usize = 400;
/// Pads an offer id to 80 bytes.
const PAD: &str = "_________________________________________________________________________";

/// One trace per (day, channel, flow): every candidate qualifies, passes the contact policy
/// and is scored, ranked by its position; the first one is selected.
fn traces(round: usize, first: i64, expected: &mut Expected) -> Vec<(TopicKind, i64, Value)> {
    let today = test_today();
    let mut out = Vec::new();
    for d in 0..DAYS {
        for c in 0..CHANNELS {
            for f in 0..FLOWS {
                let (channel, flow) = (format!("ch{c}"), format!("df{f}"));
                let offers: Vec<String> =
                    (0..OFFERS).map(|k| format!("off_{:03}{PAD}", (k + d as usize * 7 + round * 3) % 500)).collect();
                let row = expected.entry((today - Duration::days(d), channel.clone(), flow.clone())).or_default();
                for (i, o) in offers.iter().enumerate() {
                    let counts = row.entry(o.clone()).or_default();
                    counts.0 += 1;
                    counts.1 += i64::from(i == 0);
                }
                let scoring: Vec<_> = offers
                    .iter()
                    .enumerate()
                    .map(|(i, o)| json!({"offerId": o, "score": 0.5, "rank": i + 1}))
                    .collect();
                let trace = json!({
                    "id": format!("t{round}-{d}-{c}-{f}"), "tenantId": "acme", "customerId": "c1", "requestId": "r",
                    "channelId": channel, "decisionFlowId": flow,
                    "qualificationResults": offers.iter().map(|o| json!({"offerId": o, "passed": true, "reason": "passed"})).collect::<Vec<_>>(),
                    "contactPolicyResults": offers.iter().map(|o| json!({"offerId": o, "blocked": false, "reason": "passed"})).collect::<Vec<_>>(),
                    "scoringResults": scoring, "selectedOffers": [scoring[0]],
                    "totalDurationMs": 5, "createdAt": ts(at(today, d))
                });
                out.push((TopicKind::DecisionTraces, first + out.len() as i64, trace));
            }
        }
    }
    out
}

/// The stored selection rows as (scored, selected) per offer, and the largest row's size.
async fn stored(pool: &sqlx::PgPool) -> (Expected, usize) {
    let rows: Vec<(NaiveDate, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT day, channel_id, decision_flow_id, offers FROM selection_flow_daily WHERE tenant_id = 'acme'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let largest = rows.iter().map(|r| r.3.len()).max().unwrap_or(0);
    let mut out = Expected::new();
    for (day, channel, flow, value) in rows {
        let row = out.entry((day, channel, flow)).or_default();
        for entry in entries::<15>(&value) {
            let (offer, c) = entry.unwrap();
            row.insert(offer.to_owned(), (c[1], c[2]));
        }
    }
    (out, largest)
}

#[tokio::test]
async fn wide_rows_of_many_chunks_are_exact_when_created_and_when_merged() {
    let (_, _, pool) = fresh_database(&Servers::default().postgres).await;
    let mut expected = Expected::new();
    let first = traces(0, 0, &mut expected);
    let applied = apply_batch(&pool, &batch(&first, &BTreeMap::from([(TopicKind::DecisionTraces, None)])), &options())
        .await
        .unwrap();
    assert_eq!(applied.events, first.len());
    let (rows, largest) = stored(&pool).await;
    assert_eq!(rows.len(), DAYS as usize * CHANNELS * FLOWS);
    assert!(largest * rows.len() > 8 << 20, "the rows must span several chunks: {largest} B each");
    assert!(rows == expected, "created rows differ from the published traces");

    // The same keys again with shifted offers: every row is merged into a stored one.
    let n = first.len() as i64;
    let second = traces(1, n, &mut expected);
    apply_batch(&pool, &batch(&second, &BTreeMap::from([(TopicKind::DecisionTraces, Some(n))])), &options())
        .await
        .unwrap();
    assert!(stored(&pool).await.0 == expected, "merged rows differ from the published traces");
}
