//! Fold: a batch of fresh (de-duplicated) events → one [`Delta`] of view changes.
//!
//! Pure and synchronous, so it is unit-tested without a database. Events are folded in
//! processing order; segment-scoped counters use the customer's memberships *at that point*
//! (docs/events.md 2.4): the memberships read from PostgreSQL, updated by the membership events of the
//! batch seen so far.

mod delta;
pub mod keys;
mod merge;
pub mod selection;
mod traces;

pub use delta::{Delta, InteractionCounts, Memberships, Offers, TraceCounts};
use keys::{
    ConversionDay, DimKey, EntityKey, InteractionKey, MembershipKey, RollupDayKey, RollupKey, SegmentBeatenByKey,
    SegmentInteractionKey, SegmentSelectionKey, SegmentTraceKey,
};

use traces::{Candidates, Traces};

use crate::events::{utc_day, DecisionTrace, Event, Interaction, MembershipOp, Suppression, SuppressionOp};
use crate::units::money;

/// Upper bound of the delta entries one event adds outside segment scopes: what the consumer
/// bounds a batch by (docs/events.md 2.8), so that a batch of large traces closes before its delta grows
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
        // (offer, channel) totals, the three rollups, offer_spend.
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
    let Some(set) = memberships.get(tenant).and_then(|m| m.get(customer)) else { return Vec::new() };
    if set.len() > max {
        *capped += (set.len() - max) as u64;
    }
    set.iter().take(max).collect()
}

/// Which of the views a fold computes. The views outside segment scopes do not depend on
/// memberships, so the consumer thread folds them as it closes a batch ([`fold_shared`]); the
/// apply step adds the segment-scoped ones ([`fold_segments`]) once it has read the
/// memberships. Together they are exactly [`fold`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    All,
    Shared,
    Segments,
}

/// Folds `events` (already de-duplicated, in processing order). `memberships` holds the stored
/// memberships of the batch's customers and is updated in place as membership events pass.
/// An event counts in at most `max_segments` of its customer's segments (bounded fan-out).
pub fn fold(events: &[&Event], memberships: &mut Memberships, max_segments: usize) -> Delta {
    fold_part(events, memberships, max_segments, Part::All)
}

/// Every view outside segment scopes (`segment_*` maps empty, rollups of segment "" only).
pub fn fold_shared(events: &[&Event]) -> Delta {
    fold_part(events, &mut Memberships::new(), 0, Part::Shared)
}

/// The segment-scoped views only: what [`fold`] adds to [`fold_shared`] (and the scopes
/// capped). `memberships` as for [`fold`].
pub fn fold_segments(events: &[&Event], memberships: &mut Memberships, max_segments: usize) -> Delta {
    fold_part(events, memberships, max_segments, Part::Segments)
}

fn fold_part(events: &[&Event], memberships: &mut Memberships, max_segments: usize, part: Part) -> Delta {
    let mut d = Delta::default();
    let (shared, scoped) = (part != Part::Segments, part != Part::Shared);
    let mut candidates = Candidates::default();
    let mut traces = Traces::default();
    for &event in events {
        let capped = &mut d.segment_scopes_capped;
        let mut segments = |tenant: &str, customer: &str| {
            if scoped {
                scopes(memberships, tenant, customer, max_segments, capped)
            } else {
                Vec::new()
            }
        };
        match event {
            Event::Interaction(e) => {
                let segments = segments(&e.tenant_id, &e.customer_id);
                interaction(&mut d, e, &segments, shared);
            }
            Event::Trace(e) => {
                let segments = segments(&e.tenant_id, &e.customer_id);
                if shared || !segments.is_empty() {
                    candidates.read(e);
                }
                if shared {
                    traces.add(e, &candidates);
                }
                trace_segments(&mut d, e, &candidates, &segments);
            }
            Event::Membership(e) if scoped => {
                let set = memberships.entry(e.tenant_id.clone()).or_default().entry(e.customer_id.clone()).or_default();
                if e.op == MembershipOp::Add {
                    set.insert(e.segment_id.clone());
                } else {
                    set.remove(&e.segment_id);
                }
            }
            _ => {}
        }
        if shared {
            *d.applied.entry(event.topic().default_name()).or_default() += 1;
            unscoped(&mut d, event);
        }
    }
    traces.finish(&mut d);
    d
}

/// The views of the events that have no segment scope.
fn unscoped(d: &mut Delta, event: &Event) {
    match event {
        Event::Interaction(_) | Event::Trace(_) => {}
        Event::Membership(e) => {
            let key = MembershipKey {
                tenant: e.tenant_id.clone(),
                segment: e.segment_id.clone(),
                customer: e.customer_id.clone(),
            };
            d.memberships.insert(key, e.op == MembershipOp::Add);
        }
        Event::Suppression(e) => {
            let key = EntityKey { tenant: e.tenant_id.clone(), id: e.suppression_id.clone() };
            d.suppressions.entry(key).or_default().push((**e).clone());
        }
        Event::Catalog(e) => d.catalog.push((**e).clone()),
        Event::ModelMetric(e) => {
            let key = DimKey { tenant: e.tenant_id.clone(), day: utc_day(e.evaluated_at), dim: e.model_id.clone() };
            let c = d.model_evals.entry(key).or_default();
            c.0 += (e.auc * 1e6).round() as i64;
            c.1 += 1;
            let key = EntityKey { tenant: e.tenant_id.clone(), id: e.model_id.clone() };
            let latest = d.model_latest.entry(key).or_insert_with(|| (**e).clone());
            if (e.evaluated_at, &e.id) > (latest.evaluated_at, &latest.id) {
                *latest = (**e).clone();
            }
        }
        Event::Attribution(e) => {
            let day = utc_day(e.occurred_at);
            let c =
                d.attributions.entry(DimKey { tenant: e.tenant_id.clone(), day, dim: e.model.clone() }).or_default();
            c.0 += 1;
            c.1 += i128::from(money::micros(e.value).unwrap_or(0));
            let conversion = e.conversion_id.clone();
            d.conversion_days.insert(ConversionDay { tenant: e.tenant_id.clone(), conversion, day });
        }
    }
}

/// An interaction's views: the all-customer ones when `shared`, the segment-scoped ones of
/// `segments`.
fn interaction(d: &mut Delta, e: &Interaction, segments: &[&String], shared: bool) {
    let (t, day) = (&e.tenant_id, utc_day(e.occurred_at));
    if shared {
        let key = InteractionKey { tenant: t.clone(), day, offer: e.offer_id.clone(), channel: e.channel_id.clone() };
        d.interactions.entry(key).or_default().add(e);
        if e.cost > 0.0 {
            *d.offer_spend.entry(EntityKey { tenant: t.clone(), id: e.offer_id.clone() }).or_default() +=
                i128::from(money::micros(e.cost).unwrap_or(0));
        }
    }
    for &s in segments {
        let key = SegmentInteractionKey {
            tenant: t.clone(),
            segment: s.clone(),
            day,
            offer: e.offer_id.clone(),
            channel: e.channel_id.clone(),
        };
        d.segment_interactions.entry(key).or_default().add(e);
    }
    // The rollups of all customers (segment "") and of each segment.
    let all = shared.then_some("");
    for scope in all.into_iter().chain(segments.iter().map(|s| s.as_str())) {
        let segment = scope.to_owned();
        d.rollup_day.entry(RollupDayKey { tenant: t.clone(), segment: segment.clone(), day }).or_default().add(e);
        let offer = RollupKey { tenant: t.clone(), segment: segment.clone(), day, dim: e.offer_id.clone() };
        d.rollup_offer.entry(offer).or_default().add(e);
        let channel = RollupKey { tenant: t.clone(), segment, day, dim: e.channel_id.clone() };
        d.rollup_channel.entry(channel).or_default().add(e);
    }
}

/// The segment-scoped trace views of `e` (the all-customer ones are in [`Traces`]).
fn trace_segments(d: &mut Delta, e: &DecisionTrace, c: &Candidates<'_>, segments: &[&String]) {
    if segments.is_empty() {
        return;
    }
    let (t, day) = (&e.tenant_id, utc_day(e.created_at));
    let channel = e.channel_id.clone().unwrap_or_default();
    let flow = e.decision_flow_id.clone().unwrap_or_default();
    for &s in segments {
        let key = SegmentTraceKey {
            tenant: t.clone(),
            segment: s.clone(),
            day,
            channel: channel.clone(),
            flow: flow.clone(),
        };
        d.segment_traces.entry(key).or_default().add(e.degraded);
        for (offer, counts, beaten_by) in c.each() {
            if let Some(w) = beaten_by {
                let key = SegmentBeatenByKey {
                    tenant: t.clone(),
                    segment: s.clone(),
                    day,
                    offer: offer.to_owned(),
                    winner: w.to_owned(),
                };
                *d.beaten_by_segments.entry(key).or_default() += 1;
            }
            let key = SegmentSelectionKey {
                tenant: t.clone(),
                segment: s.clone(),
                day,
                channel: channel.clone(),
                flow: flow.clone(),
                offer: offer.to_owned(),
            };
            d.selection_segments.entry(key).or_default().add(counts);
        }
    }
}

/// Whether a catalog change applies over a stored version (docs/events.md 2.3): a change whose version
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
mod reference;
#[cfg(test)]
mod tests;
