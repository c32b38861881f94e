use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};

use super::partitions;
use crate::batch::Entry;
use crate::events::utc_day;

/// An event's dedup key: the first 16 bytes of SHA-256(tenant, 0x00, topic code as big-endian
/// int2, 0x00, id), as migrations `20261202000050` and `20261205000010` (`dedup_key()`) compute it.
/// Neither the tenant nor the id can hold NUL (the decoder refuses it), so the separators
/// cannot be forged.
pub(super) fn key(tenant: &str, topic: i16, id: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0u8]);
    h.update(topic.to_be_bytes());
    h.update([0u8]);
    h.update(id.as_bytes());
    let digest = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// Splits the batch into the events to apply and the number of duplicates: an event whose
/// (tenant, topic, id) was applied before with an event time on the same UTC date, or appears
/// earlier in the same batch, is dropped. Catalog changes are idempotent by version and skip
/// this table.
///
/// Keys live in the partition of their event's date (migration `20261205000010`), which the
/// janitor drops once none of its keys was applied within the dedup horizon: a stream in
/// event-time order writes into the few partitions of its last days, however long the
/// horizon. The keys are inserted in this transaction, so they commit exactly when the views
/// do.
pub(super) async fn fresh_events<'e>(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&'e Entry],
) -> Result<(Vec<&'e Entry>, usize), sqlx::Error> {
    // In-batch duplicates first: the first occurrence wins, as it would across batches.
    let mut seen = HashSet::with_capacity(events.len());
    let mut candidates: Vec<&'e Entry> = Vec::with_capacity(events.len());
    for &entry in events {
        let e = &entry.event;
        if !e.deduplicated_by_id() || seen.insert((e.tenant_id(), e.topic().code(), e.id(), utc_day(e.event_time()))) {
            candidates.push(entry);
        }
    }

    let keyed = candidates.iter().map(|c| &c.event).filter(|e| e.deduplicated_by_id());
    // Sorted in the unique index's order (key, day, tenant): concurrent writers take its
    // locks in the same order.
    let mut sorted: Vec<(&str, NaiveDate, [u8; 16], DateTime<Utc>)> = keyed
        .map(|e| (e.tenant_id(), utc_day(e.event_time()), key(e.tenant_id(), e.topic().code(), e.id()), e.event_time()))
        .collect();
    sorted.sort_unstable_by(|a, b| (a.2, a.1, a.0).cmp(&(b.2, b.1, b.0)));
    let in_batch_duplicates = events.len() - candidates.len();
    if sorted.is_empty() {
        return Ok((candidates, in_batch_duplicates));
    }
    let days: BTreeSet<NaiveDate> = sorted.iter().map(|k| k.1).collect();
    partitions::ensure(tx, "dedup_keys", &days).await?;
    let tenants: Vec<&str> = sorted.iter().map(|k| k.0).collect();
    let day: Vec<NaiveDate> = sorted.iter().map(|k| k.1).collect();
    let keys: Vec<&[u8]> = sorted.iter().map(|k| &k.2[..]).collect();
    let inserted = insert(tx, &tenants, &day, &keys).await?;
    let mut new: HashSet<(NaiveDate, [u8; 16])> = match &inserted {
        None => sorted.iter().map(|k| (k.1, k.2)).collect(),
        Some(rows) => rows.iter().filter_map(|(d, k)| Some((*d, <[u8; 16]>::try_from(k.as_slice()).ok()?))).collect(),
    };
    let legacy = legacy_duplicates(tx, &sorted, &new).await?;
    if inserted.is_none() && legacy.is_empty() {
        // The common case: nothing was seen before.
        return Ok((candidates, in_batch_duplicates));
    }
    new.retain(|k| !legacy.contains(&k.1));
    let fresh: Vec<&'e Entry> = candidates
        .into_iter()
        .filter(|c| {
            let e = &c.event;
            !e.deduplicated_by_id()
                || new.contains(&(utc_day(e.event_time()), key(e.tenant_id(), e.topic().code(), e.id())))
        })
        .collect();
    let duplicates = events.len() - fresh.len();
    Ok((fresh, duplicates))
}

/// Inserts the keys; `None` when every one was new (the usual case), else the (day, key) of
/// those that were.
///
/// A plain `INSERT` first, in a savepoint: `ON CONFLICT DO NOTHING` inserts each row
/// speculatively (probe, insert, confirm) and `RETURNING` sends every key back, which made the
/// statement ~45 % dearer per key when nothing conflicts (BENCHMARKS.md, sixth pass). Only
/// when a key was applied before does the insert fail on the unique key (SQLSTATE 23505, and
/// this table has no other unique index); then it is undone and done again with `ON CONFLICT`.
async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    tenants: &[&str],
    days: &[NaiveDate],
    keys: &[&[u8]],
) -> Result<Option<Vec<(NaiveDate, Vec<u8>)>>, sqlx::Error> {
    const INSERT: &str = "INSERT INTO dedup_keys (tenant_id, day, key)
                          SELECT * FROM unnest($1::text[], $2::date[], $3::bytea[])";
    sqlx::query("SAVEPOINT dedup_keys").execute(&mut **tx).await?;
    match sqlx::query(INSERT).bind(tenants).bind(days).bind(keys).execute(&mut **tx).await {
        Ok(_) => {
            sqlx::query("RELEASE SAVEPOINT dedup_keys").execute(&mut **tx).await?;
            Ok(None)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            sqlx::query("ROLLBACK TO SAVEPOINT dedup_keys").execute(&mut **tx).await?;
            let rows = sqlx::query_as(&format!("{INSERT} ON CONFLICT DO NOTHING RETURNING day, key"))
                .bind(tenants)
                .bind(days)
                .bind(keys)
                .fetch_all(&mut **tx)
                .await?;
            Ok(Some(rows))
        }
        Err(e) => Err(e),
    }
}

/// The keys among `new` that the table of the keys stored before migration `20261205000010`
/// holds: only events whose time is before its bound can be there, so once the stream is past
/// the upgrade this is one read of an empty or one-row table.
async fn legacy_duplicates(
    tx: &mut Transaction<'_, Postgres>,
    sorted: &[(&str, NaiveDate, [u8; 16], DateTime<Utc>)],
    new: &HashSet<(NaiveDate, [u8; 16])>,
) -> Result<HashSet<[u8; 16]>, sqlx::Error> {
    let bound: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT max(probe_before) FROM legacy_dedup_bound").fetch_one(&mut **tx).await?;
    let Some(bound) = bound else { return Ok(HashSet::new()) };
    let probe: Vec<&[u8]> =
        sorted.iter().filter(|k| k.3 < bound && new.contains(&(k.1, k.2))).map(|k| &k.2[..]).collect();
    if probe.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key FROM legacy_dedup_keys WHERE key = ANY($1)")
        .bind(&probe)
        .fetch_all(&mut **tx)
        .await?;
    Ok(found.iter().filter_map(|k| <[u8; 16]>::try_from(k.as_slice()).ok()).collect())
}
