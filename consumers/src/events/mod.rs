//! Typed event contracts of the seven topics (docs/events.md).
//!
//! The serde types here and the JSON Schemas in `schemas/` describe the same contract; the
//! `schemas` integration test validates the examples against both so they cannot drift.
//! Unknown fields are ignored (no `deny_unknown_fields`) for forward compatibility.

mod catalog;
mod interaction;
mod other;
mod trace;

pub use catalog::{CatalogChange, CatalogFields, CatalogOp, DataError};
pub use interaction::{Interaction, Outcome};
pub use other::{
    Attribution, FeatureImportance, MembershipOp, ModelMetric, SegmentMembership, Suppression, SuppressionOp,
};
pub use trace::{ContactPolicyResult, DecisionTrace, QualificationResult, ScoredOffer};

use chrono::{DateTime, NaiveDate, Utc};

/// The seven logical topics. Kafka topic *names* are configurable; this is what a name maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKind {
    DecisionTraces,
    Interactions,
    Catalog,
    SegmentMembership,
    Suppressions,
    Attributions,
    ModelMetrics,
}

impl TopicKind {
    pub const ALL: [TopicKind; 7] = [
        TopicKind::DecisionTraces,
        TopicKind::Interactions,
        TopicKind::Catalog,
        TopicKind::SegmentMembership,
        TopicKind::Suppressions,
        TopicKind::Attributions,
        TopicKind::ModelMetrics,
    ];

    /// The default Kafka topic name, also the stable name used in tables and metrics.
    pub fn default_name(self) -> &'static str {
        match self {
            TopicKind::DecisionTraces => "decision-traces",
            TopicKind::Interactions => "interactions",
            TopicKind::Catalog => "catalog",
            TopicKind::SegmentMembership => "segment-membership",
            TopicKind::Suppressions => "suppressions",
            TopicKind::Attributions => "attributions",
            TopicKind::ModelMetrics => "model-metrics",
        }
    }

    /// Small stable code stored in the dedup table (cheaper than the name in a hot index).
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// One decoded, validated event. Every variant is boxed: a batch holds up to
/// `DV_INGEST_BATCH_MAX_MESSAGES` of them in one `Vec` (`crate::batch::Entry`), whose slots
/// were as large as the largest variant (an interaction's 200 bytes) for every event, a hollow
/// trace's too, and doubled with the vector's growth (heaptrack: 19.9 MB of slots at the peak
/// of a trace run, while the other lane read 20,000-message batches of segment memberships;
/// BENCHMARKS.md "Write path, seventeenth pass").
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Trace(Box<DecisionTrace>),
    Interaction(Box<Interaction>),
    Catalog(Box<CatalogChange>),
    Membership(Box<SegmentMembership>),
    Suppression(Box<Suppression>),
    Attribution(Box<Attribution>),
    ModelMetric(Box<ModelMetric>),
}

impl Event {
    pub fn tenant_id(&self) -> &str {
        match self {
            Event::Trace(e) => &e.tenant_id,
            Event::Interaction(e) => &e.tenant_id,
            Event::Catalog(e) => &e.tenant_id,
            Event::Membership(e) => &e.tenant_id,
            Event::Suppression(e) => &e.tenant_id,
            Event::Attribution(e) => &e.tenant_id,
            Event::ModelMetric(e) => &e.tenant_id,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Event::Trace(e) => &e.id,
            Event::Interaction(e) => &e.id,
            Event::Catalog(e) => &e.id,
            Event::Membership(e) => &e.id,
            Event::Suppression(e) => &e.id,
            Event::Attribution(e) => &e.id,
            Event::ModelMetric(e) => &e.id,
        }
    }

    pub fn topic(&self) -> TopicKind {
        match self {
            Event::Trace(_) => TopicKind::DecisionTraces,
            Event::Interaction(_) => TopicKind::Interactions,
            Event::Catalog(_) => TopicKind::Catalog,
            Event::Membership(_) => TopicKind::SegmentMembership,
            Event::Suppression(_) => TopicKind::Suppressions,
            Event::Attribution(_) => TopicKind::Attributions,
            Event::ModelMetric(_) => TopicKind::ModelMetrics,
        }
    }

    /// The event time: the UTC date it counts in, however late it arrives.
    pub fn event_time(&self) -> DateTime<Utc> {
        match self {
            Event::Trace(e) => e.created_at,
            Event::Interaction(e) => e.occurred_at,
            Event::Catalog(e) => e.updated_at,
            Event::Membership(e) => e.at,
            Event::Suppression(e) => e.created_at,
            Event::Attribution(e) => e.occurred_at,
            Event::ModelMetric(e) => e.evaluated_at,
        }
    }

    /// Catalog changes are made idempotent by their `version`, every other topic by its id.
    pub fn deduplicated_by_id(&self) -> bool {
        !matches!(self, Event::Catalog(_))
    }
}

/// The UTC date of a timestamp.
pub fn utc_day(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// The marker in the error text of an unknown `outcome` (the decoder classifies by it).
pub(crate) fn interaction_unknown_outcome() -> &'static str {
    interaction::UNKNOWN_OUTCOME
}
