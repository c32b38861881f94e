//! The wide views (migrations `wide_selection_rows`, `selection_flow_totals`,
//! `interaction_segment_totals`, `wide_selection_offer_totals`, `wide_segment_channel_totals`):
//! one row per coarse key holding many ids' counters in one
//! value ([`crate::units::wide`]); the running totals among them are fanned out to their
//! checkpoints first (`wide_chains`). A batch writes each of its rows once:
//!
//! 1. insert the missing rows, empty (`ON CONFLICT DO NOTHING`), in key order, in one
//!    statement;
//! 2. lock the batch's rows (`FOR UPDATE`, in the same key order) and read their values, a
//!    chunk of about 2 MiB of merged values at a time;
//! 3. write back each chunk's values merged with the batch's entries.
//!
//! Rows are created and locked in one order by every writer, as the narrow views' upserts
//! are, so concurrent ingest processes wait for each other instead of deadlocking; step 2
//! runs after step 1 has made every row exist, so no writer's merge can be lost to another's
//! insert. A sum out of `int8` fails the batch like a narrow view's `bigint` overflow does: a
//! data error, isolated to the event that tips it over ([`super::apply_batch_isolating`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row as _, Transaction};

use super::selection_chains;
use super::wide_chains::{ChainKey, Entries, Shared, FLOWS, SEGMENTS, SEGMENT_CHANNELS, SELECTIONS};
use crate::fold::keys::{RollupDayKey, TraceKey};
use crate::fold::selection::SelectionCounts;
use crate::fold::{Delta, InteractionCounts};
use crate::units::wide::interaction_counts::{self, COUNTERS as CHANNEL_COUNTERS};
use crate::units::wide::offer_interactions::{OfferInteractions, COUNTERS};
use crate::units::wide::offer_selection::COUNTERS as SELECTION_COUNTERS;
use crate::units::wide::{merge, WideError};

/// A batch's rows of one wide view: its table, keys in lock order, each with its entries (id
/// byte order).
struct Rows<'d, K, const N: usize> {
    table: &'static str,
    keys: Vec<K>,
    /// Shared by the checkpoints that receive the same sum (`wide_chains`).
    entries: Vec<Shared<'d, N>>,
}

/// The key columns of a wide view, bound as arrays in column order.
trait Key: Sized {
    const VALUE: &'static str;
    /// (name, SQL array type), in primary key order.
    const COLUMNS: &'static [(&'static str, &'static str)];
    fn bind<'q>(keys: &'q [Self], q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments>;
}

/// `selection_flow_totals` is keyed as `trace_daily` is: (tenant, day, channel, flow).
impl Key for TraceKey {
    const VALUE: &'static str = "offers";
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("tenant_id", "text[]"), ("day", "date[]"), ("channel_id", "text[]"), ("decision_flow_id", "text[]")];
    fn bind<'q>(keys: &'q [Self], q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        q.bind(keys.iter().map(|k| k.tenant.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.day).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.channel.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.flow.as_str()).collect::<Vec<_>>())
    }
}

/// `interaction_segment_totals` and `selection_chain_totals`: (tenant, segment, day), a chain
/// per segment.
impl Key for RollupDayKey {
    const VALUE: &'static str = "offers";
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("tenant_id", "text[]"), ("segment_id", "text[]"), ("day", "date[]")];
    fn bind<'q>(keys: &'q [Self], q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        q.bind(keys.iter().map(|k| k.tenant.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.segment.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.day).collect::<Vec<_>>())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LoserKey {
    tenant: String,
    offer: String,
    day: NaiveDate,
}

impl Key for LoserKey {
    const VALUE: &'static str = "winners";
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("tenant_id", "text[]"), ("offer_id", "text[]"), ("day", "date[]")];
    fn bind<'q>(keys: &'q [Self], q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        q.bind(keys.iter().map(|k| k.tenant.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.offer.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.day).collect::<Vec<_>>())
    }
}

/// `interaction_segment_channel_totals`: (tenant, segment, day, channel), a chain per segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SegmentChannelKey {
    tenant: String,
    segment: String,
    day: NaiveDate,
    channel: String,
}

impl ChainKey for SegmentChannelKey {
    fn chain_day(&self) -> (&str, &str, NaiveDate) {
        (&self.tenant, &self.segment, self.day)
    }
    fn on(&self, day: NaiveDate) -> Self {
        SegmentChannelKey { day, ..self.clone() }
    }
}

impl Key for SegmentChannelKey {
    const VALUE: &'static str = "offers";
    const COLUMNS: &'static [(&'static str, &'static str)] =
        &[("tenant_id", "text[]"), ("segment_id", "text[]"), ("day", "date[]"), ("channel_id", "text[]")];
    fn bind<'q>(keys: &'q [Self], q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        q.bind(keys.iter().map(|k| k.tenant.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.segment.as_str()).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.day).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.channel.as_str()).collect::<Vec<_>>())
    }
}

/// The 15 counters `selection_frequency` reads, in the value's order.
fn selection_counters(c: &SelectionCounts) -> [i64; 15] {
    let mut out = [0; 15];
    out[..5].copy_from_slice(&[c.eligible, c.scored, c.selected, c.rank_sum, c.rank_n]);
    out[5..].copy_from_slice(&c.ranks);
    out
}

/// An offer's entry in `interaction_segment_totals`.
fn segment_offer_counters(c: &InteractionCounts) -> [i64; COUNTERS] {
    OfferInteractions {
        impressions: c.impressions,
        conversions: c.accepts + c.converts,
        negatives: c.rejects + c.dismisses,
        events: c.impressions + c.clicks + c.accepts + c.converts + c.rejects + c.dismisses,
        revenue_micros: c.revenue_micros,
    }
    .to_counters()
}

/// Every wide view of the delta.
pub(super) async fn apply(tx: &mut Transaction<'_, Postgres>, d: &Delta) -> Result<(), sqlx::Error> {
    // The per-offer selection chains first: their tenants (every tenant with candidates or
    // scores) hold every tenant of the flows' rows, so the flows' lock takes none after them.
    let (keys, entries) = SELECTIONS.fan_out(tx, selection_chains::rows(d)).await?.into_iter().unzip();
    write(tx, Rows::<RollupDayKey, SELECTION_COUNTERS> { table: SELECTIONS.table, keys, entries }).await?;
    // Traces without candidates leave a key with no offers: nothing to add.
    let flows = d
        .selection_dims
        .iter()
        .filter(|(_, offers)| !offers.is_empty())
        .map(|(k, offers)| {
            (k.clone(), offers.iter().map(|(offer, c)| (offer.as_str(), selection_counters(c))).collect())
        })
        .collect();
    let (keys, entries) = FLOWS.fan_out(tx, flows).await?.into_iter().unzip();
    write(tx, Rows::<TraceKey, 15> { table: FLOWS.table, keys, entries }).await?;
    // The segment scopes' per-offer rows (`rollup_offer` is in (tenant, segment, day, offer)
    // order): a wide row per (segment, day), its offers in id order.
    let mut segments: Vec<(RollupDayKey, Entries<'_, COUNTERS>)> = Vec::new();
    for (k, c) in d.rollup_offer.iter().filter(|(k, _)| !k.segment.is_empty()) {
        let entry = (k.dim.as_str(), segment_offer_counters(c));
        match segments.last_mut() {
            Some((last, entries)) if last.tenant == k.tenant && last.segment == k.segment && last.day == k.day => {
                entries.push(entry)
            }
            _ => segments
                .push((RollupDayKey { tenant: k.tenant.clone(), segment: k.segment.clone(), day: k.day }, vec![entry])),
        }
    }
    let (keys, entries) = SEGMENTS.fan_out(tx, segments).await?.into_iter().unzip();
    write(tx, Rows::<RollupDayKey, COUNTERS> { table: SEGMENTS.table, keys, entries }).await?;
    // The segments' per-(offer, channel) counters (keyed (tenant, segment, day, offer,
    // channel)): a wide row per (segment, day, channel), its offers in id order.
    // Grouped under borrowed keys (owned ones are built once per row, not per entry).
    let mut channels: BTreeMap<(&str, &str, NaiveDate, &str), Entries<'_, CHANNEL_COUNTERS>> = BTreeMap::new();
    for (k, c) in &d.segment_interactions {
        let counts = [c.impressions, c.clicks, c.accepts, c.converts, c.rejects, c.dismisses];
        channels
            .entry((&k.tenant, &k.segment, k.day, &k.channel))
            .or_default()
            .push((&k.offer, interaction_counts::to_counters(counts, [c.revenue_micros, c.cost_micros])));
    }
    let channels = channels
        .into_iter()
        .map(|((tenant, segment, day, channel), entries)| {
            (
                SegmentChannelKey { tenant: tenant.into(), segment: segment.into(), day, channel: channel.into() },
                entries,
            )
        })
        .collect();
    let (keys, entries) = SEGMENT_CHANNELS.fan_out(tx, channels).await?.into_iter().unzip();
    write(tx, Rows::<SegmentChannelKey, CHANNEL_COUNTERS> { table: SEGMENT_CHANNELS.table, keys, entries }).await?;
    // beaten_by is nested (tenant, day) → offer → winner; rows go in (tenant, offer, day) order.
    let mut losers: BTreeMap<LoserKey, Vec<(&str, [i64; 1])>> = BTreeMap::new();
    for (k, offers) in &d.beaten_by {
        for (offer, winners) in offers {
            let key = LoserKey { tenant: k.tenant.clone(), offer: offer.clone(), day: k.day };
            losers.insert(key, winners.iter().map(|(w, n)| (w.as_str(), [*n])).collect());
        }
    }
    let (keys, entries) = losers.into_iter().map(|(k, e)| (k, Arc::new(e))).unzip();
    write(tx, Rows::<LoserKey, 1> { table: "beaten_by_offer_daily", keys, entries }).await
}

async fn write<K: Key, const N: usize>(
    tx: &mut Transaction<'_, Postgres>,
    rows: Rows<'_, K, N>,
) -> Result<(), sqlx::Error> {
    if rows.keys.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = K::COLUMNS.iter().map(|c| c.0).collect();
    let arrays: Vec<String> = K::COLUMNS.iter().enumerate().map(|(i, c)| format!("${}::{}", i + 1, c.1)).collect();
    let (table, value, names, arrays) = (rows.table, K::VALUE, names.join(", "), arrays.join(", "));
    let insert = format!(
        "INSERT INTO {table} ({names}, {value}) SELECT *, ''::bytea FROM unnest({arrays}) ON CONFLICT DO NOTHING"
    );
    K::bind(&rows.keys, sqlx::query(&insert)).execute(&mut **tx).await?;

    let lock = format!(
        "SELECT w.{value} FROM {table} w JOIN unnest({arrays}) WITH ORDINALITY AS k({names}, ord) USING ({names})
          ORDER BY k.ord FOR UPDATE OF w"
    );
    let n = K::COLUMNS.len();
    let conditions: Vec<String> = K::COLUMNS.iter().map(|c| format!("w.{0} = u.{0}", c.0)).collect();
    let update = format!(
        "UPDATE {table} w SET {value} = u.{value} FROM unnest({arrays}, ${}::bytea[]) AS u({names}, {value})
          WHERE {}",
        n + 1,
        conditions.join(" AND ")
    );
    // Locked, merged and rewritten a chunk at a time, in key order (so the lock order is
    // unchanged), each chunk carrying about `CHUNK_BYTES` of merged values: a selection row
    // holds every offer of its flow, and a whole batch's rows in one statement held ~80 MiB of
    // encode buffers at peak (heaptrack, BENCHMARKS.md "Write path, fourth pass"). The first
    // chunk is small; the next ones are sized by the row size it read.
    let mut start = 0;
    let mut take = FIRST_CHUNK_ROWS;
    while start < rows.keys.len() {
        let end = (start + take).min(rows.keys.len());
        let keys = &rows.keys[start..end];
        let stored = K::bind(keys, sqlx::query(&lock)).fetch_all(&mut **tx).await?;
        if stored.len() != keys.len() {
            return Err(sqlx::Error::Protocol(format!(
                "{table}: {} rows locked for {} keys after creating them",
                stored.len(),
                keys.len()
            )));
        }
        let mut merged: Vec<Vec<u8>> = Vec::with_capacity(stored.len());
        let mut bytes = 0;
        for (row, entries) in stored.iter().zip(&rows.entries[start..end]) {
            let value: &[u8] = row.try_get(0)?;
            merged.push(merge(value, entries).map_err(|e| refused(table, e))?);
            // Sized by what is written, which holds what was stored and more: sized by the
            // stored values, a chunk of rows the batch had just created (stored empty) made
            // the next chunk 20,000 rows, a 12.6 MB `Bind` message at the ingest's heap peak
            // (heaptrack, BENCHMARKS.md "Write path, fifth pass").
            bytes += merged.last().map_or(0, Vec::len);
        }
        drop(stored);
        K::bind(keys, sqlx::query(&update)).bind(merged).execute(&mut **tx).await?;
        take = (CHUNK_BYTES / (bytes / keys.len()).max(1)).clamp(1, MAX_CHUNK_ROWS);
        start = end;
    }
    Ok(())
}

/// Merged bytes one lock-and-rewrite statement carries, about (see `write`).
const CHUNK_BYTES: usize = 2 << 20;
/// Rows of the first chunk, before the row size is known; and the most rows of any chunk.
const FIRST_CHUNK_ROWS: usize = 64;
const MAX_CHUNK_ROWS: usize = 20_000;

/// A merge the view cannot hold, as the error the apply step classifies (`super::classify`).
fn refused(table: &str, e: WideError) -> sqlx::Error {
    tracing::debug!(table, error = %e, "wide row merge refused");
    sqlx::Error::Encode(Box::new(e))
}
