//! Issue 10's property: events that the JSON Schemas accept, at and around every documented
//! bound (huge and tiny numbers, long arrays, deep unknown fields, far dates, long and unicode
//! identifiers, many segments, extreme sums, keys naming other tenants), go through
//! decode → fold → apply on the FAST path (`apply_batch`, one transaction, no bisection)
//! against the real PostgreSQL, and
//! - no batch fails to commit: the decoder's bounds leave PostgreSQL nothing to refuse;
//! - every message is a dead letter with the reason its values document, or applied (its
//!   dedup key or catalog row is in the database), never both nor neither;
//! - dead letters and offsets in the database are exactly the batches';
//! - the views' sums are exact, n × 10^18 micro-units of revenue included.
//!
//! `DV_EXTREMES_CASES` sets the number of cases (default 64), `DV_EXTREMES_SEED` replays a
//! run (the seed is printed first). A failing case is shrunk (bounded) and reported with its
//! seed; proptest also records it under target/proptest-regressions/ and replays it first.

mod check;
mod doc;
mod events;
mod mutations;
mod numbers;
mod scenario;
mod values;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use consumers::apply::{apply_batch, apply_batch_isolating, ApplyOptions};
use consumers::batch::{Batch, Message};
use consumers::decode::DecodeLimits;
use consumers::events::TopicKind;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use sqlx::PgPool;

use crate::helpers::{fresh_database, Servers};
use scenario::{CaseSpec, MAX_SEGMENTS, TRACE_RETENTION_DAYS};

/// What the run reached, printed at its end (a generator that stops reaching a bound shows).
#[derive(Debug, Default)]
struct Tally {
    batches: u64,
    messages: u64,
    applied: u64,
    dead_letters: BTreeMap<&'static str, u64>,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn extreme_events_always_commit_and_every_message_is_applied_or_dead_lettered() {
    let cases = env_u64("DV_EXTREMES_CASES").unwrap_or(64) as u32;
    let seed = env_u64("DV_EXTREMES_SEED").unwrap_or_else(rand::random);
    eprintln!("[extremes] {cases} cases, seed {seed} (DV_EXTREMES_SEED={seed} replays this run)");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_, _, pool) = rt.block_on(fresh_database(&Servers::default().postgres));
    let validators: BTreeMap<TopicKind, jsonschema::Validator> = TopicKind::ALL
        .into_iter()
        .map(|k| {
            let path = format!("{}/schemas/{}.schema.json", env!("CARGO_MANIFEST_DIR"), k.default_name());
            let schema = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            (k, jsonschema::validator_for(&schema).unwrap())
        })
        .collect();
    let config = Config {
        cases,
        // A case takes ~0.1-0.5 s: shrinking is bounded in steps and time, so that a failure
        // is reported within a minute or two, not after hundreds of replays.
        max_shrink_iters: 48,
        max_shrink_time: 60_000,
        // Off the source tree: target/ is ignored by git.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("target/proptest-regressions/extremes.txt"))),
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    };
    // Every execution (shrinking replays included) gets its own tenants and topics, so the
    // cases never see each other's rows and each one's offsets start from nothing.
    let executions = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    let result = TestRunner::new(config).run(&scenario::case(), |case| {
        let exec = executions.fetch_add(1, Ordering::Relaxed);
        rt.block_on(run_case(&pool, &validators, &case, exec, &tally)).map_err(TestCaseError::fail)
    });
    let elapsed = started.elapsed();
    if let Err(e) = result {
        panic!("[extremes] seed {seed} (DV_EXTREMES_SEED={seed} replays it): {e}");
    }
    let runs = executions.load(Ordering::Relaxed);
    eprintln!("[extremes] {cases} cases passed in {elapsed:.1?} ({runs} executions): {:?}", tally.lock().unwrap());
}

/// Renders a case, applies it as one or two batches, and checks every property.
async fn run_case(
    pool: &PgPool,
    validators: &BTreeMap<TopicKind, jsonschema::Validator>,
    case: &CaseSpec,
    exec: u64,
    tally: &Mutex<Tally>,
) -> Result<(), String> {
    let now = chrono::Utc::now();
    let ctx = scenario::ctx(case.tenant, exec, now);
    let msgs = case.render(&ctx);
    for m in &msgs {
        let event: serde_json::Value =
            serde_json::from_slice(&m.proxy).map_err(|e| format!("generator bug ({e}): {}", check::show(m)))?;
        // The schemas document the bounds too (rank, score): an event they refuse must be
        // one the consumer refuses; one they accept may still be (bounds beyond a schema).
        if !validators[&m.kind].is_valid(&event) && m.why.is_empty() {
            return Err(format!("the schema refuses an event that must be applied: {}", check::show(m)));
        }
    }
    let topics: BTreeMap<TopicKind, Arc<str>> =
        TopicKind::ALL.into_iter().map(|k| (k, Arc::from(format!("x{exec}-{}", k.default_name())))).collect();
    let options = ApplyOptions {
        owner: "extremes".into(),
        trace_retention_days: TRACE_RETENTION_DAYS,
        max_segments: MAX_SEGMENTS,
        synchronous_commit: true,
    };
    let split = case.split.index(msgs.len() + 1);
    let mut next: BTreeMap<TopicKind, i64> = BTreeMap::new();
    let mut at = Vec::with_capacity(msgs.len());
    let (mut batches, mut capped) = (Vec::new(), 0);
    for part in [&msgs[..split], &msgs[split..]] {
        if part.is_empty() {
            continue;
        }
        let mut batch = Batch::default();
        for m in part {
            let offset = next.entry(m.kind).or_insert(0);
            // The stored next offset the partition's first message in this batch follows:
            // none before the partition's first batch, the first batch's end after it.
            let committed = (*offset > 0).then_some(*offset);
            let topic = &topics[&m.kind];
            let msg =
                Message { topic, partition: 0, offset: *offset, key: m.key.as_deref(), payload: Some(&m.payload) };
            batch.add(m.kind, msg, committed, &DecodeLimits::default(), now);
            at.push((topic.clone(), *offset));
            *offset += 1;
        }
        let applied = match apply_batch(pool, &batch, &options).await {
            Ok(a) => a,
            Err(e) => return Err(refused(pool, &batch, &options, &e.to_string()).await),
        };
        let fresh = batch.entries.len();
        if applied.already_applied || applied.events != fresh || applied.duplicates != 0 {
            return Err(format!("apply_batch applied {applied:?} of {fresh} fresh events"));
        }
        if applied.dead_letters != batch.dead_letters.len() || !applied.rejected_by_database.is_empty() {
            return Err(format!("apply_batch wrote {applied:?} for {} dead letters", batch.dead_letters.len()));
        }
        capped += applied.segment_scopes_capped;
        batches.push(batch);
    }
    check::verdicts(pool, &msgs, &at, &batches).await?;
    check::bookkeeping(pool, &at, &batches).await?;
    check::sums(pool, &ctx, case, &batches).await?;
    check::scopes_and_traces(pool, &ctx, case, &batches, capped).await?;
    let mut t = tally.lock().unwrap();
    t.batches += batches.len() as u64;
    t.messages += msgs.len() as u64;
    for b in &batches {
        t.applied += b.entries.len() as u64;
        for d in &b.dead_letters {
            *t.dead_letters.entry(d.rejection.reason.code()).or_default() += 1;
        }
    }
    Ok(())
}

/// The report of a batch PostgreSQL refused: the fast path's error, then the messages the
/// isolating path (the production backstop) dead-letters as responsible, with their payloads.
async fn refused(pool: &PgPool, batch: &Batch, options: &ApplyOptions, error: &str) -> String {
    let mut report = format!("apply_batch refused a batch of {} messages: {error}", batch.messages());
    if let Err(e) = apply_batch_isolating(pool, batch, options, true).await {
        return report + &format!("\nthe isolating path failed too: {e}");
    }
    let topics: Vec<&str> = batch.positions.keys().map(|(t, _)| t.as_str()).collect();
    let rows: Vec<(String, i64, String, Option<Vec<u8>>)> = sqlx::query_as(
        r#"SELECT topic, "offset", detail, payload FROM dead_letters
            WHERE reason = 'rejected_by_database' AND topic = ANY($1) ORDER BY topic, "offset""#,
    )
    .bind(&topics)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for (topic, offset, detail, payload) in rows {
        let payload =
            String::from_utf8_lossy(payload.as_deref().unwrap_or_default()).chars().take(2_000).collect::<String>();
        report += &format!("\n  {topic}@{offset} refused ({detail}): {payload}");
    }
    report
}
