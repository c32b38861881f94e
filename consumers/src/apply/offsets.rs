use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use super::ApplyError;
use crate::batch::Batch;

pub(super) enum Cas {
    Advanced,
    AlreadyApplied,
}

/// Moves every partition of the batch from `expected` to `next`, or fails without changing
/// anything. Partitions are visited in sorted order (the batch's map order), so two writers
/// contending for the same partitions lock them in the same order.
pub(super) async fn compare_and_set(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
    owner: &str,
) -> Result<Cas, ApplyError> {
    for (i, ((topic, partition), pos)) in batch.positions.iter().enumerate() {
        let moved = match pos.expected {
            Some(expected) => sqlx::query(
                "UPDATE consumer_offsets
                    SET next_offset = $4, last_commit_at = now(), owner = $6,
                        event_time_watermark = GREATEST(event_time_watermark, $5)
                  WHERE topic = $1 AND partition = $2 AND next_offset = $3",
            )
            .bind(topic)
            .bind(partition)
            .bind(expected)
            .bind(pos.next)
            .bind(pos.max_event_time)
            .bind(owner)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "INSERT INTO consumer_offsets (topic, partition, next_offset, event_time_watermark, owner)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(topic)
            .bind(partition)
            .bind(pos.next)
            .bind(pos.max_event_time)
            .bind(owner)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        };
        if moved == 1 {
            continue;
        }
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT next_offset FROM consumer_offsets WHERE topic = $1 AND partition = $2")
                .bind(topic)
                .bind(partition)
                .fetch_optional(&mut **tx)
                .await?;
        // The first partition already at `next` means an earlier attempt of this very batch
        // committed (all partitions move together), and its acknowledgement was lost.
        if i == 0 && stored == Some(pos.next) {
            return Ok(Cas::AlreadyApplied);
        }
        return Err(ApplyError::Fenced { topic: topic.clone(), partition: *partition, stored, expected: pos.expected });
    }
    Ok(Cas::Advanced)
}

/// A partition's progress as stored with the views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredOffset {
    pub next_offset: i64,
    pub event_time_watermark: Option<DateTime<Utc>>,
    pub last_commit_at: DateTime<Utc>,
}

/// A partition's row of `consumer_offsets`.
#[derive(sqlx::FromRow)]
struct OffsetRow {
    topic: String,
    partition: i32,
    #[sqlx(flatten)]
    stored: StoredOffset,
}

/// Stored offsets of the given topics, the position a consumer resumes from on assignment.
pub async fn load_offsets(
    pool: &PgPool,
    topics: &[String],
) -> Result<BTreeMap<(String, i32), StoredOffset>, sqlx::Error> {
    let rows: Vec<OffsetRow> = sqlx::query_as(
        "SELECT topic, partition, next_offset, event_time_watermark, last_commit_at
           FROM consumer_offsets WHERE topic = ANY($1)",
    )
    .bind(topics)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| ((r.topic, r.partition), r.stored)).collect())
}

/// Records that these partitions were fully applied now: the stored next offset has reached
/// the high watermark seen by the consumer (the condition is re-checked against the table).
pub async fn mark_caught_up(pool: &PgPool, partitions: &[(String, i32, i64)]) -> Result<(), sqlx::Error> {
    if partitions.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = partitions.iter().map(|p| p.0.as_str()).collect();
    let parts: Vec<i32> = partitions.iter().map(|p| p.1).collect();
    let highs: Vec<i64> = partitions.iter().map(|p| p.2).collect();
    sqlx::query(
        "UPDATE consumer_offsets o SET caught_up_at = now()
           FROM unnest($1::text[], $2::int4[], $3::int8[]) AS c(topic, partition, high)
          WHERE o.topic = c.topic AND o.partition = c.partition AND o.next_offset >= c.high",
    )
    .bind(&topics)
    .bind(&parts)
    .bind(&highs)
    .execute(pool)
    .await?;
    Ok(())
}
