//! The retained Kafka log as recovery reads it: where each partition begins and ends, and the
//! messages of an offset range (a dead letter whose bytes were not all kept).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long one broker call may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// (topic, partition) → (low watermark, high watermark): the first retained offset and the
/// offset after the last message.
pub type Extents = BTreeMap<(String, i32), (i64, i64)>;

/// One message of a range, as the broker returned it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

pub struct Log {
    consumer: BaseConsumer,
}

impl Log {
    /// `cluster`: the brokers and every client setting (`DV_KAFKA_CLIENT_*`).
    pub fn new(mut cluster: ClientConfig) -> anyhow::Result<Self> {
        let consumer = cluster
            .set("group.id", "decision-views-recovery")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "10")
            .create()?;
        Ok(Self { consumer })
    }

    /// Every partition of `topics` with its extent. Blocking.
    pub fn extents(&self, topics: &[String]) -> anyhow::Result<Extents> {
        let mut out = BTreeMap::new();
        for topic in topics {
            let md = self.consumer.fetch_metadata(Some(topic), BROKER_TIMEOUT)?;
            for t in md.topics() {
                if let Some(e) = t.error() {
                    anyhow::bail!("topic {topic}: {e:?}");
                }
                for p in t.partitions() {
                    let (low, high) = self.consumer.fetch_watermarks(topic, p.id(), BROKER_TIMEOUT)?;
                    out.insert((topic.clone(), p.id()), (low, high));
                }
            }
        }
        Ok(out)
    }

    /// The messages `from..=to` of a partition, in order. Blocking. An error when the client
    /// cannot deliver them (a codec this build lacks, a damaged batch) or they are no longer
    /// retained, in the client's words.
    pub fn fetch(&self, topic: &str, partition: i32, from: i64, to: i64) -> anyhow::Result<Vec<Fetched>> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
        self.consumer.assign(&tpl)?;
        let deadline = Instant::now() + BROKER_TIMEOUT;
        let mut out = Vec::new();
        let result = loop {
            if Instant::now() >= deadline {
                break Err(anyhow::anyhow!(
                    "offsets {from}..={to} of {topic}[{partition}] not delivered within {BROKER_TIMEOUT:?}"
                ));
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => continue,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                    break Err(anyhow::anyhow!("{topic}[{partition}] ends before offset {to}"));
                }
                Some(Err(e)) => break Err(anyhow::anyhow!("{topic}[{partition}] from offset {from}: {e}")),
                Some(Ok(m)) => {
                    if m.offset() < from {
                        continue;
                    }
                    if m.offset() > to {
                        break Ok(());
                    }
                    out.push(Fetched {
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                    });
                    if m.offset() == to {
                        break Ok(());
                    }
                }
            }
        };
        self.consumer.unassign()?;
        result.map(|()| out)
    }
}
