//! The ingest pipeline: a consumer thread (poll → decode → batch) feeding a committer task
//! (apply each batch in one transaction), with offsets owned by PostgreSQL.
//!
//! ```text
//!  librdkafka ──poll──▶ [consumer thread] ──Batch (bounded, 1)──▶ [committer task] ──tx──▶ PostgreSQL
//!                        decode, dead-letter,                      dedup, fold, upsert,
//!                        size/time-bounded batch,                  offsets CAS, commit
//!                        partitions aligned in event time
//! ```
//! Two stages so decoding the next batch overlaps the commit of the previous one; the channel
//! holds one batch, so a slow database slows polling instead of growing memory. Decision traces
//! run this pipeline on a lane of their own, every other topic on another (see
//! [`IngestConfig::lanes`]).

mod align;
mod builder;
mod committer;
mod config;
mod consumer;
mod context;
mod health;
mod mirror;
mod pipeline;
mod progress;
mod queues;
mod undeliverable;
mod watchdog;

pub use config::IngestConfig;
pub use health::GroupHealth;
pub use pipeline::run;
