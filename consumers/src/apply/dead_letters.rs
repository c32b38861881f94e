use sqlx::{Postgres, Transaction};

use super::upsert::Kind::{Int, Text};
use super::upsert::Table;
use crate::batch::DeadLetter;

/// Writes the batch's dead letters and bumps the per-topic counters, in the batch transaction:
/// a message is either applied or dead-lettered, never neither.
pub async fn insert(tx: &mut Transaction<'_, Postgres>, dead: &[DeadLetter]) -> Result<(), sqlx::Error> {
    if dead.is_empty() {
        return Ok(());
    }
    let tenants: Vec<&str> = dead.iter().map(|d| d.rejection.tenant_id.as_deref().unwrap_or("")).collect();
    let topics: Vec<&str> = dead.iter().map(|d| d.topic.as_str()).collect();
    let partitions: Vec<i32> = dead.iter().map(|d| d.partition).collect();
    let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
    let last_offsets: Vec<i64> = dead.iter().map(|d| d.last_offset).collect();
    let sizes: Vec<Option<i64>> = dead.iter().map(|d| d.payload_size).collect();
    let digests: Vec<Option<&[u8]>> = dead.iter().map(|d| d.payload_sha256.as_deref()).collect();
    let keys: Vec<Option<&[u8]>> = dead.iter().map(|d| d.key.as_deref()).collect();
    let payloads: Vec<Option<&[u8]>> = dead.iter().map(|d| d.payload.as_deref()).collect();
    let reasons: Vec<&str> = dead.iter().map(|d| d.rejection.reason.code()).collect();
    let details: Vec<String> = dead.iter().map(|d| storable_detail(&d.rejection.detail)).collect();
    sqlx::query(
        "INSERT INTO dead_letters (tenant_id, topic, partition, \"offset\", key, payload, reason, detail,
                                   last_offset, payload_size, payload_sha256)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::int8[], $5::bytea[], $6::bytea[], $7::text[], $8::text[],
                              $9::int8[], $10::int8[], $11::bytea[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&tenants)
    .bind(&topics)
    .bind(&partitions)
    .bind(&offsets)
    .bind(&keys)
    .bind(&payloads)
    .bind(&reasons)
    .bind(&details)
    .bind(&last_offsets)
    .bind(&sizes)
    .bind(&digests)
    .execute(&mut **tx)
    .await?;

    let mut counts = std::collections::BTreeMap::<(&str, &str, &str), i64>::new();
    for ((t, topic), reason) in tenants.iter().zip(&topics).zip(&reasons) {
        *counts.entry((t, topic, reason)).or_default() += 1;
    }
    let mut rows = DEAD_LETTER_COUNTS.rows();
    for ((t, topic, reason), n) in counts {
        rows.row().text(t).text(topic).text(reason).int(n).end();
    }
    rows.upsert(tx).await
}

/// Dead letters per (tenant, topic, reason), all time: what the status endpoint counts.
static DEAD_LETTER_COUNTS: Table = Table {
    name: "dead_letter_counts",
    keys: &[("tenant_id", Text), ("topic", Text), ("reason", Text)],
    counters: &[("count", Int)],
};

/// Longest detail kept: serde quotes the offending value, which may be a megabyte.
const DETAIL_MAX_CHARS: usize = 1_000;

/// A detail PostgreSQL's text accepts: no NUL (a detail may quote a message key), bounded.
fn storable_detail(detail: &str) -> String {
    let mut out: String =
        detail.chars().take(DETAIL_MAX_CHARS).map(|c| if c == '\0' { '\u{fffd}' } else { c }).collect();
    if detail.chars().nth(DETAIL_MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_storable() {
        assert_eq!(storable_detail("key \"a\0b\""), "key \"a\u{fffd}b\"");
        let long = "é".repeat(5_000);
        let cut = storable_detail(&long);
        assert_eq!(cut.chars().count(), DETAIL_MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
