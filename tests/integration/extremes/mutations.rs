//! The mutations of each topic's events: which fields take which extreme values.

use consumers::events::TopicKind;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use serde_json::{json, Value};

use super::events::{Arr, EventSpec, Mut, Offers, Who, MAX_CANDIDATES};
use super::numbers::*;
use super::values::*;

const WHENS: &[When] = &[
    When::MinutesAgo(1),
    When::MinutesAgo(600),
    When::Oldest,
    When::TooOld,
    When::Ahead,
    When::TooFar,
    When::LeapSecond,
];

fn ident(paths: &'static [&'static str]) -> BoxedStrategy<Mut> {
    (select(paths), select(ID_KINDS)).prop_map(|(p, k)| Mut::Ident(p, k)).boxed()
}

fn number(paths: &'static [&'static str], table: &'static [(Num, Why)]) -> BoxedStrategy<Mut> {
    (select(paths), select(table)).prop_map(|(p, n)| Mut::Number(p, n)).boxed()
}

fn one_of(path: &'static str, values: Vec<Value>) -> BoxedStrategy<Mut> {
    select(values).prop_map(move |v| Mut::Set(path, v)).boxed()
}

/// Mutations every topic takes: id, tenant, event time, key, unknown fields.
fn common() -> BoxedStrategy<Mut> {
    prop_oneof![
        select(ID_KINDS).prop_map(Mut::Id),
        select(&[Who::Second, Who::TooLong][..]).prop_map(Mut::Tenant),
        (select(WHENS), select(OFFSETS)).prop_map(|(w, o)| Mut::Time(w, o)),
        select(KEYS).prop_map(Mut::Key),
        select(FREE).prop_map(|n| Mut::Number("x_number", n)),
        select(ESCAPED).prop_map(|n| Mut::Number("x_escaped", n)),
        select(DEPTHS).prop_map(|t| Mut::Deep("x_deep", 1, t)),
        (select(&[1usize, 2_000][..]), select(FREE)).prop_map(|(n, v)| Mut::Numbers("x_numbers", n, v)),
        Just(Mut::Text("x_text", 20_000)),
        select(&[0, 1][..]).prop_map(Mut::SizeTo),
    ]
    .boxed()
}

pub fn arr() -> impl Strategy<Value = Arr> {
    let offers = vec![Offers::Dup, Offers::Distinct, Offers::Long(256), Offers::Long(257)];
    (select(&[1usize, 0, 2, 999, 1_000, 1_001][..]), select(offers), select(SCORES), select(RANKS))
        .prop_map(|(n, offers, score, rank)| Arr { n, offers, score, rank })
}

/// A trace array one entry below the candidate cap, at it, or one past it (each case has one,
/// so that every run reaches the cap); valid entries mostly, so that the cap is what decides.
pub fn long_array() -> impl Strategy<Value = Mut> {
    let arrays = &["scoringResults", "selectedOffers", "qualificationResults", "contactPolicyResults"][..];
    let counts = vec![MAX_CANDIDATES - 1, MAX_CANDIDATES, MAX_CANDIDATES + 1];
    let score = prop_oneof![3 => Just((Num::F(0.5), OK)), 1 => select(SCORES)];
    let rank = prop_oneof![3 => Just((Num::I(1), OK)), 1 => select(RANKS)];
    (select(arrays), select(counts), select(vec![Offers::Dup, Offers::Distinct]), score, rank)
        .prop_map(|(path, n, offers, score, rank)| Mut::Array(path, Arr { n, offers, score, rank }))
}

fn trace_mut() -> BoxedStrategy<Mut> {
    let arrays = &["scoringResults", "selectedOffers", "qualificationResults", "contactPolicyResults"][..];
    let optional = &["channelId", "decisionFlowId", "pipeline", "result", "qualificationResults", "degradedReason"];
    prop_oneof![
        3 => common(),
        3 => (select(arrays), arr()).prop_map(|(p, a)| Mut::Array(p, a)),
        1 => number(&["totalDurationMs"], DURATIONS),
        1 => ident(&["customerId", "requestId", "channelId", "decisionFlowId"]),
        1 => select(&optional[..]).prop_map(Mut::Drop),
        1 => (select(&[("pipeline.0.deep", 3), ("result.deep", 2)][..]), select(DEPTHS))
            .prop_map(|((p, parent), t)| Mut::Deep(p, parent, t)),
        1 => number(&["pipeline.0.durationMs", "result.topOffer.score", "result.count"], FREE),
        1 => number(&["pipeline.0.note", "result.note", "customerId", "requestId"], ESCAPED),
        1 => any::<bool>().prop_map(|b| Mut::Set("degraded", json!(b))),
        1 => select(&["decisionFlowKey", "degradedReason"][..]).prop_map(|p| Mut::Text(p, 10_000)),
    ]
    .boxed()
}

fn interaction_mut() -> BoxedStrategy<Mut> {
    let outcomes = ["impression", "click", "accept", "convert", "reject", "dismiss"].map(|o| json!(o)).to_vec();
    prop_oneof![
        2 => common(),
        2 => number(&["revenue", "cost"], AMOUNTS),
        1 => ident(&["customerId", "offerId", "channelId", "creativeId", "decisionTraceId"]),
        1 => number(&["offerId", "channelId"], ESCAPED),
        1 => one_of("outcome", outcomes),
        1 => select(&["revenue", "cost", "creativeId", "decisionTraceId"][..]).prop_map(Mut::Drop),
    ]
    .boxed()
}

const ENTITIES: &[&str] = &[
    "offer",
    "creative",
    "channel",
    "category",
    "segment",
    "decision_flow",
    "experiment",
    "journey",
    "trigger",
    "approval",
    "model",
    "x_future_entity",
];

/// Mutations of a catalog change of `entity` (`tenant_settings` included).
pub fn catalog_mut(entity: &'static str) -> BoxedStrategy<Mut> {
    let mut options = vec![
        common(),
        number(&["version"], VERSIONS),
        Just(Mut::Drop("version")).boxed(),
        one_of("op", vec![json!("delete")]),
        number(&["data.x_number"], FREE),
        select(DEPTHS).prop_map(|t| Mut::Deep("data.x_deep", 2, t)).boxed(),
        Just(Mut::Text("data.name", 10_000)).boxed(),
        number(&["data.name"], ESCAPED),
    ];
    match entity {
        "offer" => options.extend([
            number(&["data.priority"], PRIORITIES),
            number(&["data.budget.allocated"], AMOUNTS),
            ident(&["data.categoryId"]),
            one_of("data.status", ["active", "inactive", "draft", "archived"].map(|s| json!(s)).to_vec()),
        ]),
        "creative" => options.push(ident(&["data.offerId"])),
        "model" => options.extend([
            one_of("data.trees", vec![json!([]), json!([[]]), json!([{}]), json!([null, true, "x", {"leaf": -0.0}])]),
            select(DEPTHS).prop_map(|t| Mut::Deep("data.trees", 2, t)).boxed(),
            (select(&[1usize, 500][..]), select(FREE)).prop_map(|(n, v)| Mut::Numbers("data.trees", n, v)).boxed(),
            number(&["data.baseScore"], FREE),
            one_of("data.featureNames", vec![json!([]), json!([long_text(300), "\u{10ffff}", ""])]),
        ]),
        "tenant_settings" => options.extend([
            any::<bool>().prop_map(|b| Mut::Set("data.decisionTraceEnabled", json!(b))).boxed(),
            number(&["data.decisionTraceSampleRate"], UNIT),
            any::<bool>().prop_map(|b| Mut::Set("data.aiAnalyzerSettings.llmExplanationsEnabled", json!(b))).boxed(),
            select(DEPTHS).prop_map(|t| Mut::Deep("data.aiAnalyzerSettings.x_deep", 3, t)).boxed(),
            Just(Mut::Drop("data")).boxed(),
        ]),
        _ => {}
    }
    if entity != "tenant_settings" {
        options.push(ident(&["entity"]));
    }
    Union::new(options).boxed()
}

fn membership_mut() -> BoxedStrategy<Mut> {
    prop_oneof![
        2 => common(),
        1 => ident(&["segmentId", "customerId"]),
        1 => number(&["segmentId"], ESCAPED),
        1 => one_of("op", vec![json!("add"), json!("remove")]),
    ]
    .boxed()
}

fn suppression_mut() -> BoxedStrategy<Mut> {
    let ids = &["suppressionId", "customerId", "policyId", "policyType", "offerId", "channelId"];
    prop_oneof![
        2 => common(),
        2 => select(EXPIRIES).prop_map(Mut::Expiry),
        1 => ident(ids),
        1 => one_of("op", vec![json!("create"), json!("lift")]),
        1 => select(&["offerId", "channelId"][..]).prop_map(Mut::Drop),
    ]
    .boxed()
}

fn attribution_mut() -> BoxedStrategy<Mut> {
    prop_oneof![
        2 => common(),
        2 => number(&["value"], AMOUNTS),
        1 => ident(&["conversionId", "model", "offerId", "channelId"]),
        1 => select(&["offerId", "channelId"][..]).prop_map(Mut::Drop),
    ]
    .boxed()
}

fn metric_mut() -> BoxedStrategy<Mut> {
    prop_oneof![
        2 => common(),
        2 => number(&["auc"], UNIT),
        1 => number(&["modelName", "modelId"], ESCAPED),
        1 => ident(&["modelId"]),
        1 => select(&[0usize, 10_000][..]).prop_map(|n| Mut::Text("modelName", n)),
        2 => (select(&[1usize, 0, 3, 1_000][..]), select(FREE)).prop_map(|(n, v)| Mut::Importances(n, v)),
    ]
    .boxed()
}

/// An event of `kind` with up to three mutations (a catalog change of any entity but
/// `tenant_settings`, which a case has at most one of).
pub fn event(kind: TopicKind) -> BoxedStrategy<EventSpec> {
    let muts = |s: BoxedStrategy<Mut>| vec(s, 0..4);
    match kind {
        TopicKind::Catalog => select(ENTITIES)
            .prop_flat_map(move |e| {
                muts(catalog_mut(e)).prop_map(move |m| EventSpec { kind, entity: Some(e), muts: m })
            })
            .boxed(),
        _ => {
            let m = match kind {
                TopicKind::DecisionTraces => trace_mut(),
                TopicKind::Interactions => interaction_mut(),
                TopicKind::SegmentMembership => membership_mut(),
                TopicKind::Suppressions => suppression_mut(),
                TopicKind::Attributions => attribution_mut(),
                _ => metric_mut(),
            };
            muts(m).prop_map(move |m| EventSpec { kind, entity: None, muts: m }).boxed()
        }
    }
}

/// An event of any topic.
pub fn any_event() -> BoxedStrategy<EventSpec> {
    Union::new(TopicKind::ALL.map(event)).boxed()
}
