//! Dead-letter replay and purge (`decision-views dead-letters …` and the admin API).
//!
//! A replay sends a dead letter's message through ingest's own path again (decode with today's
//! limits, dedup, fold, the views, isolation of what the database refuses) in one transaction
//! per dead letter that also marks it: the letter is replayed once and for all or not at all,
//! whatever crashes when. Its events carry their ids, so an event that reached the views some
//! other way meanwhile (a resend) counts as a duplicate, not twice. A letter that is locked by
//! another replay is skipped, not waited for. Letters stay after replay, marked (audit).
//!
//! The message is the letter's own bytes when it kept them all; otherwise (a `too_large`
//! letter keeps 64 KiB, an undeliverable range none) it is read again from Kafka, which must
//! still retain it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use consumers::apply::{apply_within, classify, record_dead_letters, ApplyError, ApplyOptions, Failure};
use consumers::batch::{Batch, Message};
use consumers::decode::DecodeLimits;
use consumers::events::TopicKind;
use serde::Serialize;
use sqlx::PgPool;

use super::generation;
use super::log::{Fetched, Log};
use crate::settings::Settings;

/// Which dead letters a replay or a purge takes: all the given conditions hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this tenant's (`""`: those attributed to no tenant); `None`: every tenant's.
    pub tenant: Option<String>,
    pub topic: Option<String>,
    pub reason: Option<String>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Only these ids (empty: any).
    pub ids: Vec<i64>,
}

impl Filter {
    /// Whether anything but the tenant narrows it.
    pub fn narrows(&self) -> bool {
        self.topic.is_some() || self.reason.is_some() || self.since.is_some() || !self.ids.is_empty()
    }
}

const MATCHES: &str = "($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR topic = $2)
    AND ($3::text IS NULL OR reason = $3) AND ($4::timestamptz IS NULL OR received_at >= $4)
    AND (cardinality($5::int8[]) = 0 OR id = ANY($5))";

/// What became of one replayed letter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub id: i64,
    /// `applied` (its events are in the views, or already were: see `detail`), `rejected`
    /// (refused again: `detail` says why) or `skipped` (another replay holds it).
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// Letters that matched and were not applied before.
    pub matched: usize,
    pub applied: usize,
    pub rejected: usize,
    pub skipped: usize,
    /// Every matched letter's outcome, in id order.
    pub outcomes: Vec<Outcome>,
}

/// What a replay needs of the deployment: its topics, decode limits and apply options, and a
/// Kafka client for messages a letter did not keep whole.
pub struct Replayer {
    topics: BTreeMap<String, (Arc<str>, TopicKind)>,
    decode: DecodeLimits,
    options: ApplyOptions,
    log: Arc<Log>,
}

impl Replayer {
    pub fn new(
        topics: &BTreeMap<String, TopicKind>,
        decode: DecodeLimits,
        options: ApplyOptions,
        cluster: rdkafka::ClientConfig,
    ) -> anyhow::Result<Self> {
        let topics = topics.iter().map(|(name, kind)| (name.clone(), (Arc::from(name.as_str()), *kind))).collect();
        Ok(Self { topics, decode, options, log: Arc::new(Log::new(cluster)?) })
    }

    /// Replay as this deployment's ingest would apply the letters.
    pub fn for_deployment(settings: &Settings) -> anyhow::Result<Self> {
        let config = settings.ingest_config();
        let options = ApplyOptions {
            owner: format!("{}-replay", config.instance_id),
            trace_retention_days: config.trace_retention_days,
            max_segments: config.max_segments,
            synchronous_commit: true,
        };
        Replayer::new(&config.topics, config.decode, options, settings.kafka.client())
    }

    /// Replays every matching letter not applied yet, in id order.
    pub async fn replay(&self, pool: &PgPool, filter: &Filter) -> anyhow::Result<ReplayReport> {
        let ids: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT tenant_id, id FROM dead_letters WHERE {MATCHES} AND replay_outcome IS DISTINCT FROM 'applied' ORDER BY id"
        ))
        .bind(&filter.tenant)
        .bind(&filter.topic)
        .bind(&filter.reason)
        .bind(filter.since)
        .bind(&filter.ids)
        .fetch_all(pool)
        .await?;
        let mut report = ReplayReport { matched: ids.len(), ..ReplayReport::default() };
        for (tenant, id) in ids {
            let outcome = self.replay_retrying(pool, &tenant, id).await?;
            match outcome.outcome.as_str() {
                "applied" => report.applied += 1,
                "rejected" => report.rejected += 1,
                _ => report.skipped += 1,
            }
            report.outcomes.push(outcome);
        }
        Ok(report)
    }

    /// A deadlock with live ingest or a lost connection rolls the letter's transaction back
    /// whole; it is tried again.
    async fn replay_retrying(&self, pool: &PgPool, tenant: &str, id: i64) -> anyhow::Result<Outcome> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.replay_one(pool, tenant, id).await {
                Err(Replay::Db(e)) if attempt < 5 && classify(&e) == Failure::Transient => {
                    tracing::info!(id, error = %e, "replay of a dead letter rolled back; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(Replay::Db(e)) => return Err(e.into()),
                Err(Replay::Apply(e)) => return Err(e.into()),
                Ok(o) => return Ok(o),
            }
        }
    }

    /// `tenant` and `id`: the letter's key (the tenant first, as every key: docs/scaling.md).
    async fn replay_one(&self, pool: &PgPool, tenant: &str, id: i64) -> Result<Outcome, Replay> {
        let mut tx = pool.begin().await?;
        let letter: Option<Letter> = sqlx::query_as(
            "SELECT topic, partition, \"offset\", last_offset, key, payload, payload_size FROM dead_letters
              WHERE tenant_id = $2 AND id = $1 AND replay_outcome IS DISTINCT FROM 'applied' FOR UPDATE SKIP LOCKED",
        )
        .bind(id)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(letter) = letter else {
            return Ok(Outcome { id, outcome: "skipped".into(), detail: "another replay holds it, or did it".into() });
        };
        let (outcome, detail) = match self.messages(&letter).await {
            Err(why) => ("rejected", why),
            Ok((topic, kind, messages)) => {
                let mut batch = Batch::default();
                for m in &messages {
                    let msg = Message {
                        topic: &topic,
                        partition: letter.partition,
                        offset: m.offset,
                        key: m.key.as_deref(),
                        payload: m.payload.as_deref(),
                    };
                    batch.add(kind, msg, None, &self.decode, Utc::now());
                }
                let (applied, dead) = apply_within(&mut tx, &batch, &self.options).await?;
                let summary =
                    format!("{} event(s) applied, {} already applied (duplicates)", applied.events, applied.duplicates);
                match dead.as_slice() {
                    [] => ("applied", summary),
                    [one] if messages.len() == 1 => {
                        ("rejected", format!("{}: {}", one.rejection.reason.code(), one.rejection.detail))
                    }
                    _ => {
                        // A range: its messages that are refused become dead letters of their own.
                        record_dead_letters(&mut tx, &dead).await?;
                        ("applied", format!("{summary}, {} dead-lettered on their own", dead.len()))
                    }
                }
            }
        };
        sqlx::query(
            "UPDATE dead_letters SET replayed_at = now(), replay_outcome = $2, replay_detail = $3
              WHERE tenant_id = $4 AND id = $1",
        )
        .bind(id)
        .bind(outcome)
        .bind(&detail)
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
        if outcome == "applied" {
            // Last, so that concurrent replays queue on it only for their commits.
            generation::bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(Outcome { id, outcome: outcome.into(), detail })
    }

    /// The letter's messages: its own bytes when whole, else read again from Kafka.
    async fn messages(&self, l: &Letter) -> Result<(Arc<str>, TopicKind, Vec<Fetched>), String> {
        let (topic, kind) = self
            .topics
            .get(&l.topic)
            .cloned()
            .ok_or_else(|| format!("topic {} is not consumed by this deployment", l.topic))?;
        let whole = l.payload.as_ref().is_some_and(|p| Some(p.len() as i64) == l.payload_size);
        if whole && l.offset == l.last_offset {
            let m = Fetched { offset: l.offset, key: l.key.clone(), payload: l.payload.clone() };
            return Ok((topic, kind, vec![m]));
        }
        let (log, name, partition, from, to) =
            (self.log.clone(), l.topic.clone(), l.partition, l.offset, l.last_offset);
        let fetched = tokio::task::spawn_blocking(move || log.fetch(&name, partition, from, to))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("not kept whole, and Kafka did not return it: {e:#}"))?;
        Ok((topic, kind, fetched))
    }
}

/// Deletes the matching letters (replayed or not); returns how many.
pub async fn purge(pool: &PgPool, filter: &Filter) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(&format!("DELETE FROM dead_letters WHERE {MATCHES}"))
        .bind(&filter.tenant)
        .bind(&filter.topic)
        .bind(&filter.reason)
        .bind(filter.since)
        .bind(&filter.ids)
        .execute(pool)
        .await?
        .rows_affected())
}

#[derive(sqlx::FromRow)]
struct Letter {
    topic: String,
    partition: i32,
    offset: i64,
    last_offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    payload_size: Option<i64>,
}

enum Replay {
    Db(sqlx::Error),
    Apply(ApplyError),
}

impl From<sqlx::Error> for Replay {
    fn from(e: sqlx::Error) -> Self {
        Replay::Db(e)
    }
}

impl From<ApplyError> for Replay {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Db(e) => Replay::Db(e),
            other => Replay::Apply(other),
        }
    }
}
