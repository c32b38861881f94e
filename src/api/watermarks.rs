//! The broker's high watermarks for the ingest status, from a group-less client of the API's own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// The whole broker round of one status request (metadata and watermarks of every topic):
/// past it the remaining partitions show without a high watermark, instead of the request
/// waiting a timeout per topic on a broker that is down.
const BROKER_BUDGET: Duration = Duration::from_secs(2);

/// A group-less client that asks the broker for partitions and high watermarks. The API may
/// run in a process without ingest, and lag must show even when ingest is dead.
pub struct Watermarks {
    consumer: BaseConsumer,
    pub topics: Vec<String>,
}

impl Watermarks {
    /// `cluster`: the brokers and the client settings of every client (`DV_KAFKA_CLIENT_*`).
    pub fn new(mut cluster: ClientConfig, topics: Vec<String>) -> anyhow::Result<Self> {
        let consumer: BaseConsumer =
            cluster.set("group.id", "decision-views-status").set("enable.auto.commit", "false").create()?;
        Ok(Self { consumer, topics })
    }

    /// (topic, partition) → high watermark; an unreachable broker gives an empty map. Bounded
    /// by [`BROKER_BUDGET`] in all.
    pub fn fetch(&self) -> BTreeMap<(String, i32), i64> {
        let deadline = Instant::now() + BROKER_BUDGET;
        let left = || deadline.saturating_duration_since(Instant::now());
        let mut out = BTreeMap::new();
        for topic in &self.topics {
            let Ok(md) = self.consumer.fetch_metadata(Some(topic), left()) else { continue };
            for t in md.topics() {
                for p in t.partitions() {
                    if left().is_zero() {
                        return out;
                    }
                    if let Ok((_, high)) = self.consumer.fetch_watermarks(topic, p.id(), left()) {
                        out.insert((topic.clone(), p.id()), high);
                    }
                }
            }
        }
        out
    }
}
