//! Offsets mirrored to the Kafka group (issue 16): after PostgreSQL commits a batch, the
//! consumer thread commits the same next offsets to the group, asynchronously, so that
//! `kafka-consumer-groups`, Burrow or kafka-lag-exporter show the lag. They are never read
//! back: assignments resume from PostgreSQL's offsets, which stay the only truth, so a mirror
//! that fails or lags costs an operator's view, never an event.

use std::collections::{BTreeMap, HashMap};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::builder::PartitionKey;

/// Commits `committed` (next offsets per partition, as PostgreSQL holds them) to the group, for
/// the partitions this member still owns: a revoked partition's offsets are its new owner's to
/// report.
pub(super) fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    owned: &HashMap<PartitionKey, Option<i64>>,
    committed: BTreeMap<PartitionKey, i64>,
) {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in committed {
        if owned.contains_key(&(topic.clone(), partition)) {
            if let Err(e) = tpl.add_partition_offset(&topic, partition, Offset::Offset(next)) {
                tracing::debug!(error = %e, "cannot mirror an offset");
            }
        }
    }
    if tpl.count() == 0 {
        return;
    }
    // Async: the answer comes through the context's commit callback on a later poll.
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        metrics::counter!("ingest_offset_mirror_failures_total").increment(1);
        tracing::debug!(error = %e, "mirroring offsets to the group failed (PostgreSQL keeps them)");
    }
}
