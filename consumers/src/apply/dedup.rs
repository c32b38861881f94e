use std::collections::HashSet;

use sqlx::{Postgres, Transaction};

use sha2::{Digest, Sha256};

use crate::batch::Entry;

/// An event's dedup key: the first 16 bytes of SHA-256(tenant, 0x00, topic code as big-endian
/// int2, 0x00, id), as migration `20261202000050` computes it for the keys stored before.
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
/// (tenant, topic, id) was applied before (within the dedup horizon) or appears earlier in the
/// same batch is dropped. Catalog changes are idempotent by version and skip this table.
///
/// The keys are inserted in this transaction, so they commit exactly when the views do.
pub(super) async fn fresh_events<'e>(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&'e Entry],
) -> Result<(Vec<&'e Entry>, usize), sqlx::Error> {
    // In-batch duplicates first: the first occurrence wins, as it would across batches.
    let mut seen = HashSet::with_capacity(events.len());
    let mut candidates: Vec<&'e Entry> = Vec::with_capacity(events.len());
    for &entry in events {
        let e = &entry.event;
        if !e.deduplicated_by_id() || seen.insert((e.tenant_id(), e.topic().code(), e.id())) {
            candidates.push(entry);
        }
    }

    let keyed = candidates.iter().map(|c| &c.event).filter(|e| e.deduplicated_by_id());
    let mut sorted: Vec<([u8; 16], &str, i16, &str)> = keyed
        .map(|e| (key(e.tenant_id(), e.topic().code(), e.id()), e.tenant_id(), e.topic().code(), e.id()))
        .collect();
    sorted.sort_unstable();
    let keys: Vec<&[u8]> = sorted.iter().map(|k| &k.0[..]).collect();
    let tenants: Vec<&str> = sorted.iter().map(|k| k.1).collect();
    let topics: Vec<i16> = sorted.iter().map(|k| k.2).collect();
    let ids: Vec<&str> = sorted.iter().map(|k| k.3).collect();

    let inserted: Vec<Vec<u8>> = if sorted.is_empty() {
        Vec::new()
    } else {
        // Sorted input: concurrent writers take the unique-index locks in the same order.
        sqlx::query_scalar(
            "INSERT INTO dedup_keys (key, tenant_id, topic, event_id)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::int2[], $4::text[])
             ON CONFLICT DO NOTHING
             RETURNING key",
        )
        .bind(&keys)
        .bind(&tenants)
        .bind(&topics)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?
    };

    let in_batch_duplicates = events.len() - candidates.len();
    if inserted.len() == sorted.len() {
        // The common case: nothing was seen before.
        return Ok((candidates, in_batch_duplicates));
    }
    let new: HashSet<&[u8]> = inserted.iter().map(Vec::as_slice).collect();
    let fresh: Vec<&'e Entry> = candidates
        .into_iter()
        .filter(|c| {
            let e = &c.event;
            !e.deduplicated_by_id() || new.contains(&key(e.tenant_id(), e.topic().code(), e.id())[..])
        })
        .collect();
    let duplicates = events.len() - fresh.len();
    Ok((fresh, duplicates))
}
