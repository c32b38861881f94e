use std::collections::HashSet;

use sqlx::{Postgres, Transaction};

use crate::batch::Entry;

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
    let mut sorted: Vec<(&str, i16, &str)> = keyed.map(|e| (e.tenant_id(), e.topic().code(), e.id())).collect();
    sorted.sort_unstable();
    let tenants: Vec<&str> = sorted.iter().map(|k| k.0).collect();
    let topics: Vec<i16> = sorted.iter().map(|k| k.1).collect();
    let ids: Vec<&str> = sorted.iter().map(|k| k.2).collect();

    let inserted: Vec<(String, i16, String)> = if sorted.is_empty() {
        Vec::new()
    } else {
        // Sorted input: concurrent writers take the unique-index locks in the same order.
        sqlx::query_as(
            "INSERT INTO dedup_keys (tenant_id, topic, event_id)
             SELECT * FROM unnest($1::text[], $2::int2[], $3::text[])
             ON CONFLICT DO NOTHING
             RETURNING tenant_id, topic, event_id",
        )
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
    let new: HashSet<(&str, i16, &str)> = inserted.iter().map(|(t, c, i)| (t.as_str(), *c, i.as_str())).collect();
    let fresh: Vec<&'e Entry> = candidates
        .into_iter()
        .filter(|c| {
            let e = &c.event;
            !e.deduplicated_by_id() || new.contains(&(e.tenant_id(), e.topic().code(), e.id()))
        })
        .collect();
    let duplicates = events.len() - fresh.len();
    Ok((fresh, duplicates))
}
