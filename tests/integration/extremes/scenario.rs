//! One case: a batch (split in two at a generated point) holding an event of every topic,
//! random events of any topic, and three scenarios whose outcome the test checks exactly:
//! a customer in more segments than the cap, sums at the largest accepted values, and the
//! tenant's trace settings at their extremes.

use chrono::{DateTime, Utc};
use consumers::events::TopicKind;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::json;

use super::events::{Arr, Ctx, EventSpec, Msg, Mut, Offers};
use super::mutations::{any_event, catalog_mut, event, long_array};
use super::numbers::{Num, Why, AMOUNTS, OK, RANKS, SCORES};
use super::values::{IdKind, ID_KINDS, TENANT_KINDS};

/// `DV_MAX_SEGMENTS_PER_CUSTOMER` of the test: low, so that a case can exceed it cheaply.
pub const MAX_SEGMENTS: usize = 4;
/// Raw traces are kept this many days (`DV_TRACE_RETENTION_DAYS` of the test).
pub const TRACE_RETENTION_DAYS: i64 = 30;

/// The customer added to many segments, and the offer and channel of its events.
pub const CROWD: &str = "crowd";
pub const CROWD_OFFER: &str = "crowd-offer";
pub const CROWD_CHANNEL: &str = "crowd-ch";
/// The (offer, channel) of the interactions at the largest amount, the offer of the traces
/// at the largest rank and score.
pub const MAX_OFFER: &str = "max-offer";
pub const MAX_CHANNEL: &str = "max-ch";
pub const HOT_OFFER: &str = "hot";
pub const MAX_RANK: i64 = 100_000;
pub const MAX_SCORE: f64 = 1_000.0;
pub const MAX_AMOUNT: (Num, Why) = (Num::F(1e12), OK);

#[derive(Debug, Clone)]
pub struct Crowd {
    /// Each membership event adds the customer to one more segment, named by this kind.
    pub segments: Vec<IdKind>,
    pub interactions: usize,
    pub traces: usize,
}

#[derive(Debug, Clone)]
pub struct Sums {
    /// Interactions with this revenue and cost (10^12 mostly) on one (day, offer, channel).
    pub interactions: usize,
    pub amount: (Num, Why),
    /// One trace per score (±1,000 mostly), each with `per_trace` `scoringResults` entries of
    /// the same offer at `rank` (100,000 mostly).
    pub scores: Vec<(Num, Why)>,
    pub per_trace: usize,
    pub rank: (Num, Why),
}

#[derive(Debug, Clone)]
pub struct CaseSpec {
    pub tenant: IdKind,
    /// Mutations of the tenant's `tenant_settings` change, when the case has one.
    pub settings: Option<Vec<Mut>>,
    pub crowd: Crowd,
    pub sums: Sums,
    /// One event of each of the seven topics.
    pub base: Vec<EventSpec>,
    /// A trace array at the candidate cap.
    pub long: Mut,
    pub random: Vec<EventSpec>,
    /// Where the messages are split into two batches (the second continues the offsets).
    pub split: Index,
}

fn crowd() -> impl Strategy<Value = Crowd> {
    let segment = prop_oneof![3 => Just(IdKind::Plain), 1 => select(ID_KINDS)];
    let counts = vec![0, MAX_SEGMENTS - 1, MAX_SEGMENTS, MAX_SEGMENTS + 1, 2 * MAX_SEGMENTS + 3];
    (select(counts).prop_flat_map(move |n| vec(segment.clone(), n)), 0..3usize, 0..3usize)
        .prop_map(|(segments, interactions, traces)| Crowd { segments, interactions, traces })
}

/// Sums at the largest accepted values mostly, else at any extreme one (a bound removed from
/// the decoder then shows as a sum PostgreSQL or the fold cannot hold).
fn sums() -> impl Strategy<Value = Sums> {
    let amount = prop_oneof![3 => Just(MAX_AMOUNT), 1 => select(AMOUNTS)];
    let score =
        prop_oneof![2 => Just((Num::F(MAX_SCORE), OK)), 2 => Just((Num::F(-MAX_SCORE), OK)), 1 => select(SCORES)];
    let rank = prop_oneof![3 => Just((Num::I(MAX_RANK), OK)), 1 => select(RANKS)];
    (1..=12usize, amount, vec(score, 0..=6), select(vec![1usize, 1_000]), rank).prop_map(
        |(interactions, amount, scores, per_trace, rank)| Sums { interactions, amount, scores, per_trace, rank },
    )
}

pub fn case() -> impl Strategy<Value = CaseSpec> {
    // Shrinking works through a tuple in order: the random events come first, so that a
    // failing case loses the events that do not matter before anything else is simplified.
    (
        vec(any_event(), 0..16),
        TopicKind::ALL.map(event).to_vec(),
        long_array(),
        proptest::option::of(vec(catalog_mut("tenant_settings"), 0..4)),
        crowd(),
        sums(),
        select(TENANT_KINDS),
        any::<Index>(),
    )
        .prop_map(|(random, base, long, settings, crowd, sums, tenant, split)| CaseSpec {
            tenant,
            settings,
            crowd,
            sums,
            base,
            long,
            random,
            split,
        })
}

/// The tenants of execution `exec` (every execution, shrinking ones included, has its own).
pub fn ctx(tenant: IdKind, exec: u64, now: DateTime<Utc>) -> Ctx {
    Ctx {
        tenant: tenant.render(&format!("x{exec}")),
        second: tenant.render(&format!("x{exec}b")),
        too_long: IdKind::Ascii(257).render(&format!("x{exec}c")),
        other: format!("x{exec}zz"),
        now,
    }
}

fn spec(kind: TopicKind, muts: Vec<Mut>) -> EventSpec {
    EventSpec { kind, entity: None, muts }
}

fn set(path: &'static str, v: &str) -> Mut {
    Mut::Set(path, json!(v))
}

impl CaseSpec {
    /// The messages in processing order: settings, the crowd's memberships then its events,
    /// the seven base events, the long array, the random ones, the sums.
    pub fn render(&self, ctx: &Ctx) -> Vec<Msg> {
        let mut specs = Vec::new();
        if let Some(muts) = &self.settings {
            let muts = std::iter::once(Mut::IdIsTenant).chain(muts.iter().cloned()).collect();
            specs.push(EventSpec { kind: TopicKind::Catalog, entity: Some("tenant_settings"), muts });
        }
        for kind in &self.crowd.segments {
            let muts = vec![Mut::Ident("segmentId", *kind), set("customerId", CROWD), set("op", "add")];
            specs.push(spec(TopicKind::SegmentMembership, muts));
        }
        for _ in 0..self.crowd.interactions {
            let muts = vec![
                set("customerId", CROWD),
                set("offerId", CROWD_OFFER),
                set("channelId", CROWD_CHANNEL),
                set("outcome", "click"),
            ];
            specs.push(spec(TopicKind::Interactions, muts));
        }
        for _ in 0..self.crowd.traces {
            specs
                .push(spec(TopicKind::DecisionTraces, vec![set("customerId", CROWD), set("channelId", CROWD_CHANNEL)]));
        }
        specs.extend(self.base.iter().cloned());
        specs.push(spec(TopicKind::DecisionTraces, vec![self.long.clone()]));
        specs.extend(self.random.iter().cloned());
        for _ in 0..self.sums.interactions {
            let muts = vec![
                set("customerId", "big"),
                set("offerId", MAX_OFFER),
                set("channelId", MAX_CHANNEL),
                set("outcome", "convert"),
                Mut::Number("revenue", self.sums.amount),
                Mut::Number("cost", self.sums.amount),
            ];
            specs.push(spec(TopicKind::Interactions, muts));
        }
        for score in &self.sums.scores {
            let hot = |n| Arr { n, offers: Offers::Named(HOT_OFFER), score: *score, rank: self.sums.rank };
            let muts = vec![
                set("customerId", "big"),
                Mut::Array("scoringResults", hot(self.sums.per_trace)),
                Mut::Array("selectedOffers", hot(1)),
            ];
            specs.push(spec(TopicKind::DecisionTraces, muts));
        }
        specs.iter().enumerate().map(|(i, s)| s.render(ctx, i)).collect()
    }
}
