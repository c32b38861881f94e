//! Ingest for decision-views: decode → fold into a batch delta → apply in one transaction.
//!
//! - [`events`]: the typed event contracts of the seven topics.
//! - [`decode`]: bytes → validated event, or a dead-letter reason.
//! - [`fold`]: a batch of fresh events → a [`fold::Delta`] (pure).
//! - [`apply`]: the delta, dedup keys, dead letters and offsets in one PostgreSQL transaction.
//! - [`kafka`]: the consumer thread and the committer around them.
//! - [`units`]: how the views store money and durations (imported by all, importing none).

pub mod apply;
pub mod batch;
pub mod decode;
pub mod events;
pub mod fold;
pub mod janitor;
pub mod kafka;
pub mod units;
