//! What one batch changes in the views: counters per key, ready to apply (see `apply`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::keys::{
    ConversionDay, DayKey, DimKey, EntityKey, InteractionKey, MembershipKey, RollupDayKey, RollupKey,
    SegmentBeatenByKey, SegmentInteractionKey, SegmentSelectionKey, SegmentTraceKey, TraceKey,
};
use super::selection::{ScoreCounts, SelectionCounts};
use crate::events::{CatalogChange, Interaction, ModelMetric, Outcome, Suppression};
use crate::units::money;

/// Per-day interaction counters (one day's change of an `interaction_offer_channel_totals` key,
/// and one row of the rollups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InteractionCounts {
    pub impressions: i64,
    pub clicks: i64,
    pub accepts: i64,
    pub converts: i64,
    pub rejects: i64,
    pub dismisses: i64,
    /// Money sums: `numeric` columns (see [`money`]); i128 here, so that a batch of events at
    /// the largest accepted amount cannot overflow either.
    pub revenue_micros: i128,
    pub cost_micros: i128,
}

impl InteractionCounts {
    pub(super) fn add(&mut self, e: &Interaction) {
        match e.outcome {
            Outcome::Impression => self.impressions += 1,
            Outcome::Click => self.clicks += 1,
            Outcome::Accept => self.accepts += 1,
            Outcome::Convert => self.converts += 1,
            Outcome::Reject => self.rejects += 1,
            Outcome::Dismiss => self.dismisses += 1,
        }
        // Validated at decode time, so the conversion cannot fail here.
        self.revenue_micros += i128::from(money::micros(e.revenue).unwrap_or(0));
        self.cost_micros += i128::from(money::micros(e.cost).unwrap_or(0));
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceCounts {
    pub traces: i64,
    pub degraded: i64,
}

impl TraceCounts {
    pub(super) fn add(&mut self, degraded: bool) {
        self.traces += 1;
        self.degraded += i64::from(degraded);
    }
}

/// Counters per offer id (or winner id), each id once, in id byte order (a sorted list: the
/// writers only iterate it, and building it costs one sort per batch instead of a B-tree insert
/// per entry).
pub type Offers<C> = Vec<(String, C)>;

/// A customer's segments, by tenant then customer: nested, so that the fold looks a customer
/// up by `&str` for every event without building an owned key.
pub type Memberships = HashMap<String, HashMap<String, BTreeSet<String>>>;

/// Everything one batch changes, ready to apply. Every map is a `BTreeMap` so the apply step
/// writes rows in a stable key order (concurrent ingest processes then never deadlock).
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    pub interactions: BTreeMap<InteractionKey, InteractionCounts>,
    pub segment_interactions: BTreeMap<SegmentInteractionKey, InteractionCounts>,
    /// Interaction counters per (tenant, segment or "", day), and per offer / channel on top
    /// (migration `interaction_rollups`): the grains the dashboard reads group by.
    pub rollup_day: BTreeMap<RollupDayKey, InteractionCounts>,
    pub rollup_offer: BTreeMap<RollupKey, InteractionCounts>,
    pub rollup_channel: BTreeMap<RollupKey, InteractionCounts>,
    pub traces: BTreeMap<TraceKey, TraceCounts>,
    pub segment_traces: BTreeMap<SegmentTraceKey, TraceCounts>,
    /// Candidate counters per (tenant, day) and offer; per (tenant, day, channel, flow) and
    /// offer (added to the wide running totals, `selection_flow_totals`); per segment. Nested
    /// by offer, so that folding a trace's candidates looks them up by `&str` (no key built per
    /// candidate).
    pub selection: BTreeMap<DayKey, Offers<SelectionCounts>>,
    pub selection_dims: BTreeMap<TraceKey, Offers<SelectionCounts>>,
    pub selection_segments: BTreeMap<SegmentSelectionKey, SelectionCounts>,
    /// Score buckets per day, per channel (`dim`) and per offer (`selection_daily`'s bucket
    /// columns, written with `selection`).
    pub scores: BTreeMap<DayKey, ScoreCounts>,
    pub channel_scores: BTreeMap<DimKey, ScoreCounts>,
    pub offer_scores: BTreeMap<DayKey, Offers<ScoreCounts>>,
    /// Scored-too-low misses per (tenant, day), offer missed and winner.
    pub beaten_by: BTreeMap<DayKey, Offers<Offers<i64>>>,
    pub beaten_by_segments: BTreeMap<SegmentBeatenByKey, i64>,
    /// totalDurationMs (integer ms) per day. Plain values: a histogram is ~200 KB of counters,
    /// so one is built per key only while merging into the stored one.
    pub latency: BTreeMap<DayKey, Vec<u64>>,
    /// All-time cost per offer (`id`), in micro-units.
    pub offer_spend: BTreeMap<EntityKey, i128>,
    /// Per model (`dim`): (Σ auc micro-units, evaluations).
    pub model_evals: BTreeMap<DimKey, (i64, i64)>,
    /// Per attribution model (`dim`): (events, value micro-units).
    pub attributions: BTreeMap<DimKey, (i64, i128)>,
    /// The batch's attributed conversions and dates, for the distinct counters.
    pub conversion_days: BTreeSet<ConversionDay>,
    /// The batch's latest evaluation per model (`id`).
    pub model_latest: BTreeMap<EntityKey, ModelMetric>,
    /// Final membership: true = member.
    pub memberships: BTreeMap<MembershipKey, bool>,
    /// Suppression ops merged per suppression (`id`), in arrival order.
    pub suppressions: BTreeMap<EntityKey, Vec<Suppression>>,
    /// Catalog changes in arrival order; versions are resolved against stored rows when applied.
    pub catalog: Vec<CatalogChange>,
    /// Events applied per topic (for metrics and the ingest status).
    pub applied: BTreeMap<&'static str, u64>,
    /// Segment scopes left out: events of customers in more segments than the cap.
    pub segment_scopes_capped: u64,
}
