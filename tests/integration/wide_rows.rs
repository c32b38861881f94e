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

/// The stored selection rows, per day as (scored, selected) per offer, and the largest stored
/// value's size and the number of rows.
async fn stored(pool: &sqlx::PgPool) -> (Expected, usize, usize) {
    let keys: Vec<(NaiveDate, String, String, i32)> = sqlx::query_as(
        "SELECT day, channel_id, decision_flow_id, length(offers) FROM selection_flow_totals WHERE tenant_id = 'acme'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let largest = keys.iter().map(|r| r.3 as usize).max().unwrap_or(0);
    let mut out = Expected::new();
    for (day, channel, flow, _) in &keys {
        let row = out.entry((*day, channel.clone(), flow.clone())).or_default();
        for (offer, c) in flow_day(pool, "acme", *day, channel, flow).await {
            row.insert(offer, (c[1], c[2]));
        }
    }
    (out, largest, keys.len())
}

/// One day's selection entries of (channel, flow), read back from the running totals
/// (`selection_flow_totals`): the day's checkpoint minus the chain's checkpoint before it, ids
/// whose counters did not change left out (they had no candidate that day). In id byte order.
pub async fn flow_day(
    pool: &sqlx::PgPool,
    tenant: &str,
    day: NaiveDate,
    channel: &str,
    flow: &str,
) -> Vec<(String, [i64; 15])> {
    let values: Vec<(bool, Vec<u8>)> = sqlx::query_as(
        "SELECT f.day = $2, f.offers FROM selection_flow_totals f
          WHERE f.tenant_id = $1 AND f.channel_id = $3 AND f.decision_flow_id = $4
            AND f.day IN ($2, (SELECT max(day) FROM running_total_days
                                WHERE view = 'selection_flow_totals' AND tenant_id = $1 AND segment_id = '' AND day < $2))",
    )
    .bind(tenant)
    .bind(day)
    .bind(channel)
    .bind(flow)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut by_id: BTreeMap<String, [i64; 15]> = BTreeMap::new();
    for (at_day, value) in values {
        for entry in entries::<15>(&value) {
            let (id, c) = entry.unwrap();
            let sum = by_id.entry(id.to_owned()).or_default();
            sum.iter_mut().zip(c).for_each(|(s, v)| *s += if at_day { v } else { -v });
        }
    }
    by_id.into_iter().filter(|(_, c)| c.iter().any(|&v| v != 0)).collect()
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
    let (rows, largest, n) = stored(&pool).await;
    assert_eq!(n, DAYS as usize * CHANNELS * FLOWS);
    assert!(largest * n > 8 << 20, "the rows must span several chunks: {largest} B each");
    assert!(rows == expected, "created rows differ from the published traces");

    // The same keys again with shifted offers: every row is merged into a stored one.
    let n = first.len() as i64;
    let second = traces(1, n, &mut expected);
    apply_batch(&pool, &batch(&second, &BTreeMap::from([(TopicKind::DecisionTraces, Some(n))])), &options())
        .await
        .unwrap();
    assert!(stored(&pool).await.0 == expected, "merged rows differ from the published traces");
}
