//! The fold against references. The trace fold against one written straight from the
//! contract (docs/dashboard-types.md 5.1): per trace, per candidate, ordered maps, no
//! borrowed-id tricks; random batches (shared and repeated offer ids, entries in any array
//! only, ties, ranks outside 1..=10, the decoder's extremes, customers in segments) must give the same delta. And the
//! two parts the consumer thread and the apply step fold against the whole fold.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::keys::{DayKey, DimKey, SegmentBeatenByKey, SegmentSelectionKey, SegmentTraceKey, TraceKey};
use super::selection::{ScoreCounts, SelectionCounts};
use super::{fold, fold_segments, fold_shared, Delta, Memberships, TraceCounts};
use crate::decode::{MAX_RANK, MAX_SCORE};
use crate::events::{
    utc_day, ContactPolicyResult, DecisionTrace, Event, Interaction, MembershipOp, Outcome, QualificationResult,
    ScoredOffer, SegmentMembership,
};
use crate::units::{latency, MAX_DURATION_MS};

/// What the reference computes: each per-offer map as (key, offer) → counters.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    traces: BTreeMap<TraceKey, TraceCounts>,
    segment_traces: BTreeMap<SegmentTraceKey, TraceCounts>,
    selection: BTreeMap<(DayKey, String), SelectionCounts>,
    selection_dims: BTreeMap<(TraceKey, String), SelectionCounts>,
    selection_segments: BTreeMap<SegmentSelectionKey, SelectionCounts>,
    scores: BTreeMap<DayKey, ScoreCounts>,
    channel_scores: BTreeMap<DimKey, ScoreCounts>,
    offer_scores: BTreeMap<(DayKey, String), ScoreCounts>,
    beaten_by: BTreeMap<(DayKey, String, String), i64>,
    beaten_by_segments: BTreeMap<SegmentBeatenByKey, i64>,
    latency: BTreeMap<DayKey, Vec<u64>>,
}

/// One candidate's counters, by the contract's rules.
fn counters(t: &DecisionTrace, offer: &str) -> SelectionCounts {
    let mut c = SelectionCounts { eligible: 1, ..SelectionCounts::default() };
    for s in t.scoring_results.iter().filter(|s| s.offer_id == offer) {
        c.scored = 1;
        c.rank_sum += s.rank;
        c.rank_n += 1;
        if (1..=10).contains(&s.rank) {
            c.ranks[(s.rank - 1) as usize] += 1;
        }
        c.score_sum_micros += (s.score * 1e6).round() as i64;
        c.score_n += 1;
    }
    c.selected = i64::from(t.selected_offers.iter().any(|s| s.offer_id == offer));
    if c.selected == 0 {
        if t.qualification_results.iter().any(|q| q.offer_id == offer && !q.passed) {
            c.miss_qualification = 1;
        } else if t.contact_policy_results.iter().any(|p| p.offer_id == offer && p.blocked) {
            c.miss_contact = 1;
        } else if c.scored == 1 {
            c.miss_too_low = 1;
        } else {
            c.miss_not_ranked = 1;
        }
    }
    c
}

fn expected(traces: &[DecisionTrace], memberships: &Memberships) -> Expected {
    let mut x = Expected::default();
    for t in traces {
        let day = utc_day(t.created_at);
        let (channel, flow) =
            (t.channel_id.clone().unwrap_or_default(), t.decision_flow_id.clone().unwrap_or_default());
        let day_key = DayKey { tenant: t.tenant_id.clone(), day };
        let key = TraceKey { tenant: t.tenant_id.clone(), day, channel: channel.clone(), flow: flow.clone() };
        let segments: Vec<String> =
            memberships.get(&t.tenant_id).and_then(|m| m.get(&t.customer_id)).into_iter().flatten().cloned().collect();
        x.traces.entry(key.clone()).or_default().add(t.degraded);
        for s in &segments {
            let k = SegmentTraceKey {
                tenant: t.tenant_id.clone(),
                segment: s.clone(),
                day,
                channel: channel.clone(),
                flow: flow.clone(),
            };
            x.segment_traces.entry(k).or_default().add(t.degraded);
        }
        // A day's (and a channel's) score row is written, zeros at worst, for every trace, as
        // the fold always did.
        x.scores.entry(day_key.clone()).or_default();
        if !channel.is_empty() {
            x.channel_scores.entry(DimKey { tenant: t.tenant_id.clone(), day, dim: channel.clone() }).or_default();
        }
        for s in &t.scoring_results {
            x.scores.entry(day_key.clone()).or_default().add_score(s.score);
            if !channel.is_empty() {
                let k = DimKey { tenant: t.tenant_id.clone(), day, dim: channel.clone() };
                x.channel_scores.entry(k).or_default().add_score(s.score);
            }
            x.offer_scores.entry((day_key.clone(), s.offer_id.clone())).or_default().add_score(s.score);
        }
        let offers: BTreeSet<&str> = (t.qualification_results.iter().map(|q| q.offer_id.as_str()))
            .chain(t.contact_policy_results.iter().map(|p| p.offer_id.as_str()))
            .chain(t.scoring_results.iter().chain(&t.selected_offers).map(|s| s.offer_id.as_str()))
            .collect();
        // The winner: the lowest rank among selectedOffers, the first such entry on a tie.
        let winner = t.selected_offers.iter().fold(None::<&ScoredOffer>, |w, s| match w {
            Some(w) if w.rank <= s.rank => Some(w),
            _ => Some(s),
        });
        for offer in offers {
            let c = counters(t, offer);
            x.selection.entry((day_key.clone(), offer.to_owned())).or_default().add(&c);
            x.selection_dims.entry((key.clone(), offer.to_owned())).or_default().add(&c);
            let beaten = winner.filter(|w| c.miss_too_low == 1 && w.offer_id != offer);
            if let Some(w) = beaten {
                *x.beaten_by.entry((day_key.clone(), offer.to_owned(), w.offer_id.clone())).or_default() += 1;
            }
            for s in &segments {
                let k = SegmentSelectionKey {
                    tenant: t.tenant_id.clone(),
                    segment: s.clone(),
                    day,
                    channel: channel.clone(),
                    flow: flow.clone(),
                    offer: offer.to_owned(),
                };
                x.selection_segments.entry(k).or_default().add(&c);
                if let Some(w) = beaten {
                    let k = SegmentBeatenByKey {
                        tenant: t.tenant_id.clone(),
                        segment: s.clone(),
                        day,
                        offer: offer.to_owned(),
                        winner: w.offer_id.clone(),
                    };
                    *x.beaten_by_segments.entry(k).or_default() += 1;
                }
            }
        }
        x.latency.entry(day_key).or_default().push(latency::millis(t.total_duration_ms));
    }
    x
}

/// The fold's delta in the reference's shape.
fn folded(traces: &[DecisionTrace], memberships: &Memberships) -> Expected {
    let events: Vec<Event> = traces.iter().cloned().map(|t| Event::Trace(Box::new(t))).collect();
    let refs: Vec<&Event> = events.iter().collect();
    let d = fold(&refs, &mut memberships.clone(), 100);
    fn flat<K: Clone + Ord, C: Copy>(m: &BTreeMap<K, Vec<(String, C)>>) -> BTreeMap<(K, String), C> {
        for offers in m.values() {
            assert!(offers.windows(2).all(|w| w[0].0 < w[1].0), "offers not in strict id order");
        }
        m.iter().flat_map(|(k, offers)| offers.iter().map(|(o, c)| ((k.clone(), o.clone()), *c))).collect()
    }
    let beaten_by = d
        .beaten_by
        .iter()
        .flat_map(|(k, offers)| offers.iter().map(move |(o, winners)| (k, o, winners)))
        .flat_map(|(k, o, winners)| {
            assert!(winners.windows(2).all(|w| w[0].0 < w[1].0), "winners not in strict id order");
            winners.iter().map(move |(w, n)| ((k.clone(), o.clone(), w.clone()), *n))
        })
        .collect();
    Expected {
        traces: d.traces.clone(),
        segment_traces: d.segment_traces.clone(),
        selection: flat(&d.selection),
        selection_dims: flat(&d.selection_dims),
        selection_segments: d.selection_segments.clone(),
        scores: d.scores.clone(),
        channel_scores: d.channel_scores.clone(),
        offer_scores: flat(&d.offer_scores),
        beaten_by,
        beaten_by_segments: d.beaten_by_segments.clone(),
        latency: d.latency.clone(),
    }
}

fn offer() -> impl Strategy<Value = String> {
    prop_oneof![Just("o1"), Just("o2"), Just("o3"), Just("ö4"), Just("")].prop_map(String::from)
}

fn scored() -> impl Strategy<Value = ScoredOffer> {
    // The decoder's bounds are the extremes (`decode::MAX_SCORE`, `MAX_RANK`).
    let score = prop_oneof![-2.0..2.0_f64, Just(0.0), Just(1.0), Just(0.95), Just(-MAX_SCORE), Just(MAX_SCORE)];
    let rank = prop_oneof![1_i64..13, Just(MAX_RANK)];
    (offer(), score, rank).prop_map(|(offer_id, score, rank)| ScoredOffer { offer_id, score, rank })
}

prop_compose! {
    fn trace()(
        tenant in prop_oneof![Just("t"), Just("u")],
        customer in prop_oneof![Just("alice"), Just("bob"), Just("carol")],
        day in 0_i64..3,
        channel in proptest::option::of(prop_oneof![Just("c1"), Just("c2"), Just("")]),
        flow in proptest::option::of(prop_oneof![Just("f1"), Just("f2")]),
        qualification in proptest::collection::vec((offer(), any::<bool>()), 0..6),
        contact in proptest::collection::vec((offer(), any::<bool>()), 0..6),
        scoring in proptest::collection::vec(scored(), 0..6),
        selected in proptest::collection::vec(scored(), 0..4),
        degraded in any::<bool>(),
        duration in prop_oneof![0.0..500.0_f64, Just(MAX_DURATION_MS as f64)],
    ) -> DecisionTrace {
        DecisionTrace {
            id: String::new(),
            tenant_id: tenant.into(),
            customer_id: customer.into(),
            request_id: String::new(),
            decision_flow_id: flow.map(String::from),
            decision_flow_key: None,
            channel_id: channel.map(String::from),
            pipeline: None,
            result: None,
            qualification_results: qualification.into_iter()
                .map(|(offer_id, passed)| QualificationResult { offer_id, passed, reason: String::new(), rule_id: None })
                .collect(),
            contact_policy_results: contact.into_iter()
                .map(|(offer_id, blocked)| ContactPolicyResult { offer_id, blocked, reason: String::new(), policy_id: None })
                .collect(),
            scoring_results: scoring,
            selected_offers: selected,
            degraded,
            degraded_reason: None,
            total_duration_ms: duration,
            created_at: Utc.with_ymd_and_hms(2026, 3, 24, 23, 0, 0).unwrap() + chrono::Duration::hours(day * 13),
            hollow: false,
        }
    }
}

proptest! {
    #[test]
    fn the_trace_fold_is_the_contracts_sum(
        traces in proptest::collection::vec(trace(), 0..40),
        alice in proptest::collection::btree_set(prop_oneof![Just("s1"), Just("s2")].prop_map(String::from), 0..3),
    ) {
        let mut memberships = Memberships::new();
        memberships.entry("t".into()).or_default().insert("alice".into(), alice);
        memberships.entry("u".into()).or_default().insert("bob".into(), BTreeSet::from(["s1".to_owned()]));
        prop_assert_eq!(folded(&traces, &memberships), expected(&traces, &memberships));
    }
}

fn interaction() -> impl Strategy<Value = Event> {
    let outcome =
        prop_oneof![Just(Outcome::Impression), Just(Outcome::Click), Just(Outcome::Convert), Just(Outcome::Reject)];
    (
        prop_oneof![Just("t"), Just("u")],
        prop_oneof![Just("alice"), Just("bob")],
        offer(),
        outcome,
        0.0..50.0_f64,
        0_i64..2,
    )
        .prop_map(|(tenant, customer, offer_id, outcome, money, day)| {
            Event::Interaction(Box::new(Interaction {
                id: String::new(),
                tenant_id: tenant.into(),
                customer_id: customer.into(),
                offer_id,
                channel_id: "c1".into(),
                creative_id: None,
                decision_trace_id: None,
                outcome,
                revenue: money,
                cost: money / 2.0,
                occurred_at: Utc.with_ymd_and_hms(2026, 3, 24, 12, 0, 0).unwrap() + chrono::Duration::days(day),
            }))
        })
}

fn membership() -> impl Strategy<Value = Event> {
    let op = prop_oneof![Just(MembershipOp::Add), Just(MembershipOp::Remove)];
    (prop_oneof![Just("alice"), Just("bob")], prop_oneof![Just("s1"), Just("s2"), Just("s3")], op).prop_map(
        |(customer, segment, op)| {
            Event::Membership(Box::new(SegmentMembership {
                id: String::new(),
                tenant_id: "t".into(),
                segment_id: segment.into(),
                customer_id: customer.into(),
                op,
                at: Utc.with_ymd_and_hms(2026, 3, 24, 12, 0, 0).unwrap(),
            }))
        },
    )
}

proptest! {
    /// The consumer thread's fold (no memberships) plus the apply step's segment scopes is the
    /// whole fold, whatever the mix and order of traces, interactions and membership changes,
    /// and whatever the cap.
    #[test]
    fn shared_and_segment_parts_make_the_whole_fold(
        events in proptest::collection::vec(prop_oneof![trace().prop_map(|t| Event::Trace(Box::new(t))), interaction(), membership()], 0..40),
        alice in proptest::collection::btree_set(prop_oneof![Just("s1"), Just("s2")].prop_map(String::from), 0..3),
        max_segments in 0_usize..3,
    ) {
        let mut stored = Memberships::new();
        stored.entry("t".into()).or_default().insert("alice".into(), alice);
        let refs: Vec<&Event> = events.iter().collect();
        let whole = fold(&refs, &mut stored.clone(), max_segments);
        let mut parts = fold_shared(&refs);
        let mut segments = fold_segments(&refs, &mut stored.clone(), max_segments);
        // Rollups hold segment "" (all customers) beside the segments: keys must not overlap.
        prop_assert!(segments.rollup_day.keys().all(|k| !k.segment.is_empty() && !parts.rollup_day.contains_key(k)));
        parts.segment_interactions = std::mem::take(&mut segments.segment_interactions);
        parts.segment_traces = std::mem::take(&mut segments.segment_traces);
        parts.selection_segments = std::mem::take(&mut segments.selection_segments);
        parts.beaten_by_segments = std::mem::take(&mut segments.beaten_by_segments);
        parts.rollup_day.append(&mut segments.rollup_day);
        parts.rollup_offer.append(&mut segments.rollup_offer);
        parts.rollup_channel.append(&mut segments.rollup_channel);
        parts.segment_scopes_capped += std::mem::take(&mut segments.segment_scopes_capped);
        prop_assert_eq!(&parts, &whole);
        // And the segment part holds nothing else.
        prop_assert_eq!(segments, Delta::default());
    }
}

proptest! {
    /// A batch folded a chunk at a time, each chunk's delta merged onto the ones before
    /// (`Batch::add`), is the batch folded at once, wherever the chunks end.
    #[test]
    fn chunks_merged_make_the_whole_fold(
        events in proptest::collection::vec(prop_oneof![trace().prop_map(|t| Event::Trace(Box::new(t))), interaction(), membership()], 0..40),
        cuts in proptest::collection::vec(0_usize..40, 0..4),
        alice in proptest::collection::btree_set(prop_oneof![Just("s1"), Just("s2")].prop_map(String::from), 0..3),
    ) {
        let mut stored = Memberships::new();
        stored.entry("t".into()).or_default().insert("alice".into(), alice);
        let refs: Vec<&Event> = events.iter().collect();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(refs.len())).chain([0, refs.len()]).collect();
        cuts.sort_unstable();
        let (mut shared, mut all) = (Delta::default(), Delta::default());
        let mut memberships = stored.clone();
        for w in cuts.windows(2) {
            shared.merge(fold_shared(&refs[w[0]..w[1]]));
            all.merge(fold(&refs[w[0]..w[1]], &mut memberships, 2));
        }
        prop_assert_eq!(shared.rows(), fold_shared(&refs).rows());
        prop_assert_eq!(&shared, &fold_shared(&refs));
        prop_assert_eq!(&all, &fold(&refs, &mut stored.clone(), 2));
    }
}
