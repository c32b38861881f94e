//! The keys of the delta's maps, named: each is its view's key columns in column order, which
//! is also the sort order rows are written (and locked) in. "Segment" keys are the same counters
//! for the customers of one segment; a rollup's `segment` is "" for all customers.

use chrono::NaiveDate;

macro_rules! key {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name {
            $(pub $field: $ty),+
        }
    };
}

key!(
    /// `score_daily`, the latency histograms: (tenant, day).
    DayKey { tenant: String, day: NaiveDate }
);
key!(
    /// One dimension per day: `selection_daily` (offer: its selection counters and score buckets),
    /// `score_channel_daily` (channel), `model_eval_daily` and `attribution_daily` (model).
    DimKey { tenant: String, day: NaiveDate, dim: String }
);
key!(
    /// `interaction_offer_channel_totals` of segment '' (all customers).
    InteractionKey { tenant: String, day: NaiveDate, offer: String, channel: String }
);
key!(
    /// `interaction_offer_channel_totals` of a segment.
    SegmentInteractionKey { tenant: String, segment: String, day: NaiveDate, offer: String, channel: String }
);
key!(
    /// `interaction_rollup_day`.
    RollupDayKey { tenant: String, segment: String, day: NaiveDate }
);
key!(
    /// `interaction_rollup_offer` (offer) and `interaction_rollup_channel` (channel).
    RollupKey { tenant: String, segment: String, day: NaiveDate, dim: String }
);
key!(
    /// `trace_daily`: channel and decision flow "" when the trace has none.
    TraceKey { tenant: String, day: NaiveDate, channel: String, flow: String }
);
key!(
    /// `trace_segment_daily`.
    SegmentTraceKey { tenant: String, segment: String, day: NaiveDate, channel: String, flow: String }
);
key!(
    /// `selection_flow_totals`: a wide row per (tenant, day, channel, flow), an entry per offer.
    SelectionKey { tenant: String, day: NaiveDate, channel: String, flow: String, offer: String }
);
key!(
    /// `selection_segment_daily`.
    SegmentSelectionKey { tenant: String, segment: String, day: NaiveDate, channel: String, flow: String, offer: String }
);
key!(
    /// `beaten_by_offer_daily`: the offer missed (a wide row per tenant, offer, day), the decision's winner (an entry).
    BeatenByKey { tenant: String, day: NaiveDate, offer: String, winner: String }
);
key!(
    /// `beaten_by_segment_daily`.
    SegmentBeatenByKey { tenant: String, segment: String, day: NaiveDate, offer: String, winner: String }
);
key!(
    /// One entity of a tenant: `offer_spend` (offer), the latest model evaluation (model), a
    /// suppression (its id).
    EntityKey { tenant: String, id: String }
);
key!(
    /// `segment_members`.
    MembershipKey { tenant: String, segment: String, customer: String }
);
key!(
    /// A conversion's attribution date (the distinct-conversion counters).
    ConversionDay { tenant: String, conversion: String, day: NaiveDate }
);
