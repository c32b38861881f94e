//! Fold: a batch of fresh (de-duplicated) events → one [`Delta`] of view changes.
//!
//! Pure and synchronous, so it is unit-tested without a database. Events are folded in
//! processing order; segment-scoped counters use the customer's memberships *at that point*
//! (SPEC 2.4): the memberships read from PostgreSQL, updated by the membership events of the
//! batch seen so far. Every map is a `BTreeMap` so the apply step writes rows in a stable key
//! order (concurrent ingest processes then never deadlock).

pub mod selection;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use crate::events::{
    utc_day, CatalogChange, Event, Interaction, MembershipOp, ModelMetric, Outcome, Suppression, SuppressionOp,
};
use crate::units::{latency, money};

/// Per-day interaction counters (one row of `interaction_daily` / `interaction_segment_daily`).
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
    fn add(&mut self, e: &Interaction) {
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

/// Key of `interaction_daily`: (tenant, day, offer, channel).
pub type InteractionKey = (String, NaiveDate, String, String);
/// Key of `interaction_segment_daily`: (tenant, segment, day, offer, channel).
pub type SegmentInteractionKey = (String, String, NaiveDate, String, String);
/// Key of the per-offer and per-channel interaction rollups: (tenant, segment or "" for all
/// customers, day, offer or channel).
pub type RollupKey = (String, String, NaiveDate, String);
/// Key of `trace_daily`: (tenant, day, channel or "", decision flow or "").
pub type TraceKey = (String, NaiveDate, String, String);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceCounts {
    pub traces: i64,
    pub degraded: i64,
}

/// A customer's segments, keyed by (tenant, customer).
pub type Memberships = HashMap<(String, String), BTreeSet<String>>;

/// Everything one batch changes, ready to apply.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    pub interactions: BTreeMap<InteractionKey, InteractionCounts>,
    pub segment_interactions: BTreeMap<SegmentInteractionKey, InteractionCounts>,
    /// Interaction counters per (tenant, segment or "", day), and per offer / channel on top
    /// (migration `interaction_rollups`): the grains the dashboard reads group by.
    pub rollup_day: BTreeMap<(String, String, NaiveDate), InteractionCounts>,
    pub rollup_offer: BTreeMap<RollupKey, InteractionCounts>,
    pub rollup_channel: BTreeMap<RollupKey, InteractionCounts>,
    pub traces: BTreeMap<TraceKey, TraceCounts>,
    /// Candidate counters per (tenant, day, offer).
    pub selection: BTreeMap<(String, NaiveDate, String), selection::SelectionCounts>,
    /// … per (tenant, day, channel, flow, offer).
    pub selection_dims: BTreeMap<(String, NaiveDate, String, String, String), selection::SelectionCounts>,
    /// … per (tenant, segment, day, channel, flow, offer).
    pub selection_segments: BTreeMap<(String, String, NaiveDate, String, String, String), selection::SelectionCounts>,
    /// Score buckets per (tenant, day), (tenant, day, channel) and (tenant, day, offer).
    pub scores: BTreeMap<(String, NaiveDate), selection::ScoreCounts>,
    pub channel_scores: BTreeMap<(String, NaiveDate, String), selection::ScoreCounts>,
    pub offer_scores: BTreeMap<(String, NaiveDate, String), selection::ScoreCounts>,
    /// Scored-too-low misses per (tenant, day, offer, winner).
    pub beaten_by: BTreeMap<(String, NaiveDate, String, String), i64>,
    /// … per (tenant, segment, day, offer, winner).
    pub beaten_by_segments: BTreeMap<(String, String, NaiveDate, String, String), i64>,
    /// Trace counters per (tenant, segment, day, channel, flow).
    pub segment_traces: BTreeMap<(String, String, NaiveDate, String, String), TraceCounts>,
    /// totalDurationMs (integer ms) per (tenant, day). Plain values: a histogram is ~200 KB of
    /// counters, so one is built per key only while merging into the stored one.
    pub latency: BTreeMap<(String, NaiveDate), Vec<u64>>,
    /// All-time cost per (tenant, offer), in micro-units.
    pub offer_spend: BTreeMap<(String, String), i128>,
    /// (tenant, day, model) → (Σ auc micro-units, evaluations).
    pub model_evals: BTreeMap<(String, NaiveDate, String), (i64, i64)>,
    /// (tenant, day, attribution model) → (events, value micro-units).
    pub attributions: BTreeMap<(String, NaiveDate, String), (i64, i128)>,
    /// (tenant, conversion, day) of the batch's attributions, for the distinct counters.
    pub conversion_days: BTreeSet<(String, String, NaiveDate)>,
    /// The batch's latest evaluation per (tenant, model).
    pub model_latest: BTreeMap<(String, String), ModelMetric>,
    /// Final membership per (tenant, segment, customer): true = member.
    pub memberships: BTreeMap<(String, String, String), bool>,
    /// Suppression ops merged per (tenant, suppression id), in arrival order.
    pub suppressions: BTreeMap<(String, String), Vec<Suppression>>,
    /// Catalog changes in arrival order; versions are resolved against stored rows when applied.
    pub catalog: Vec<CatalogChange>,
    /// Events applied per topic (for metrics and the ingest status).
    pub applied: BTreeMap<&'static str, u64>,
    /// Segment scopes left out: events of customers in more segments than the cap.
    pub segment_scopes_capped: u64,
}

impl Delta {
    /// Adds one interaction to the rollups of `scope` ("" = all customers, else a segment).
    fn add_rollups(&mut self, e: &Interaction, scope: &str, day: NaiveDate) {
        let (t, s) = (&e.tenant_id, scope.to_owned());
        self.rollup_day.entry((t.clone(), s.clone(), day)).or_default().add(e);
        self.rollup_offer.entry((t.clone(), s.clone(), day, e.offer_id.clone())).or_default().add(e);
        self.rollup_channel.entry((t.clone(), s, day, e.channel_id.clone())).or_default().add(e);
    }
}

/// Upper bound of the delta entries one event adds outside segment scopes: what the consumer
/// bounds a batch by (SPEC 2.8), so that a batch of large traces closes before its delta grows
/// without limit. Segment scopes multiply it by at most 1 + the segment cap.
pub fn weight(e: &Event) -> usize {
    match e {
        // trace_daily, scores, channel_scores, latency; offer_scores per scoring entry; per
        // candidate selection, selection_dims and at most one beaten_by pair.
        Event::Trace(t) => {
            let entries = t.qualification_results.len()
                + t.contact_policy_results.len()
                + t.scoring_results.len()
                + t.selected_offers.len();
            4 + t.scoring_results.len() + 3 * entries
        }
        // interaction_daily, the three rollups, offer_spend.
        Event::Interaction(_) => 5,
        _ => 2,
    }
}

/// The segments an event of this customer counts in: at most `max`, in segment id order.
fn scopes<'m>(
    memberships: &'m Memberships,
    tenant: &str,
    customer: &str,
    max: usize,
    capped: &mut u64,
) -> Vec<&'m String> {
    let Some(set) = memberships.get(&(tenant.to_owned(), customer.to_owned())) else { return Vec::new() };
    if set.len() > max {
        *capped += (set.len() - max) as u64;
    }
    set.iter().take(max).collect()
}

/// Folds `events` (already de-duplicated, in processing order). `memberships` holds the stored
/// memberships of the batch's customers and is updated in place as membership events pass.
/// An event counts in at most `max_segments` of its customer's segments (bounded fan-out).
pub fn fold(events: &[&Event], memberships: &mut Memberships, max_segments: usize) -> Delta {
    let mut d = Delta::default();
    for &event in events {
        *d.applied.entry(event.topic().default_name()).or_default() += 1;
        match event {
            Event::Interaction(e) => {
                let day = utc_day(e.occurred_at);
                d.interactions
                    .entry((e.tenant_id.clone(), day, e.offer_id.clone(), e.channel_id.clone()))
                    .or_default()
                    .add(e);
                if e.cost > 0.0 {
                    *d.offer_spend.entry((e.tenant_id.clone(), e.offer_id.clone())).or_default() +=
                        i128::from(money::micros(e.cost).unwrap_or(0));
                }
                let segments =
                    scopes(memberships, &e.tenant_id, &e.customer_id, max_segments, &mut d.segment_scopes_capped);
                for &s in &segments {
                    d.segment_interactions
                        .entry((e.tenant_id.clone(), s.clone(), day, e.offer_id.clone(), e.channel_id.clone()))
                        .or_default()
                        .add(e);
                }
                for scope in std::iter::once("").chain(segments.iter().map(|s| s.as_str())) {
                    d.add_rollups(e, scope, day);
                }
            }
            Event::Trace(e) => {
                let day = utc_day(e.created_at);
                let channel = e.channel_id.clone().unwrap_or_default();
                let flow = e.decision_flow_id.clone().unwrap_or_default();
                let c = d.traces.entry((e.tenant_id.clone(), day, channel.clone(), flow.clone())).or_default();
                c.traces += 1;
                c.degraded += i64::from(e.degraded);
                let segments =
                    scopes(memberships, &e.tenant_id, &e.customer_id, max_segments, &mut d.segment_scopes_capped);
                for &s in &segments {
                    let c = d
                        .segment_traces
                        .entry((e.tenant_id.clone(), s.clone(), day, channel.clone(), flow.clone()))
                        .or_default();
                    c.traces += 1;
                    c.degraded += i64::from(e.degraded);
                }
                for s in &e.scoring_results {
                    d.scores.entry((e.tenant_id.clone(), day)).or_default().add_score(s.score);
                    if !channel.is_empty() {
                        d.channel_scores
                            .entry((e.tenant_id.clone(), day, channel.clone()))
                            .or_default()
                            .add_score(s.score);
                    }
                    d.offer_scores
                        .entry((e.tenant_id.clone(), day, s.offer_id.clone()))
                        .or_default()
                        .add_score(s.score);
                }
                let (candidates, winner) = selection::candidates(e);
                for (offer, counts) in candidates {
                    let t = &e.tenant_id;
                    if let Some(w) = winner.filter(|w| counts.miss_too_low == 1 && *w != offer) {
                        *d.beaten_by.entry((t.clone(), day, offer.to_owned(), w.to_owned())).or_default() += 1;
                        for &s in &segments {
                            *d.beaten_by_segments
                                .entry((t.clone(), s.clone(), day, offer.to_owned(), w.to_owned()))
                                .or_default() += 1;
                        }
                    }
                    d.selection.entry((t.clone(), day, offer.to_owned())).or_default().add(&counts);
                    d.selection_dims
                        .entry((t.clone(), day, channel.clone(), flow.clone(), offer.to_owned()))
                        .or_default()
                        .add(&counts);
                    for &s in &segments {
                        d.selection_segments
                            .entry((t.clone(), s.clone(), day, channel.clone(), flow.clone(), offer.to_owned()))
                            .or_default()
                            .add(&counts);
                    }
                }
                d.latency
                    .entry((e.tenant_id.clone(), utc_day(e.created_at)))
                    .or_default()
                    .push(latency::millis(e.total_duration_ms));
            }
            Event::Membership(e) => {
                let member = e.op == MembershipOp::Add;
                let set = memberships.entry((e.tenant_id.clone(), e.customer_id.clone())).or_default();
                if member {
                    set.insert(e.segment_id.clone());
                } else {
                    set.remove(&e.segment_id);
                }
                d.memberships.insert((e.tenant_id.clone(), e.segment_id.clone(), e.customer_id.clone()), member);
            }
            Event::Suppression(e) => {
                d.suppressions.entry((e.tenant_id.clone(), e.suppression_id.clone())).or_default().push(e.clone());
            }
            Event::Catalog(e) => d.catalog.push(e.clone()),
            Event::ModelMetric(e) => {
                let c = d
                    .model_evals
                    .entry((e.tenant_id.clone(), utc_day(e.evaluated_at), e.model_id.clone()))
                    .or_default();
                c.0 += (e.auc * 1e6).round() as i64;
                c.1 += 1;
                let latest =
                    d.model_latest.entry((e.tenant_id.clone(), e.model_id.clone())).or_insert_with(|| e.clone());
                if (e.evaluated_at, &e.id) > (latest.evaluated_at, &latest.id) {
                    *latest = e.clone();
                }
            }
            Event::Attribution(e) => {
                let day = utc_day(e.occurred_at);
                let c = d.attributions.entry((e.tenant_id.clone(), day, e.model.clone())).or_default();
                c.0 += 1;
                c.1 += i128::from(money::micros(e.value).unwrap_or(0));
                d.conversion_days.insert((e.tenant_id.clone(), e.conversion_id.clone(), day));
            }
        }
    }
    d
}

/// Whether a catalog change applies over a stored version (SPEC 2.3): a change whose version
/// is not greater than the stored one is ignored; without a version, arrival order wins.
pub fn catalog_change_applies(stored: Option<i64>, incoming: Option<i64>) -> bool {
    match (stored, incoming) {
        (Some(s), Some(i)) => i > s,
        _ => true,
    }
}

/// The suppression op merge: `lift` is sticky, a later `create` fills in the fields.
pub fn suppression_lifted(ops: &[Suppression]) -> bool {
    ops.iter().any(|s| s.op == SuppressionOp::Lift)
}

#[cfg(test)]
mod tests;
