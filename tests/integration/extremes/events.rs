//! One event per topic: the fullest example of `schemas/examples/`, then mutations, each
//! setting one field to an extreme value with its verdict. Shrinking drops mutations, so a
//! minimal failing event is the example plus the mutations that matter.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use consumers::events::TopicKind;
use serde_json::{json, Value};

use super::doc::Doc;
use super::numbers::*;
use super::values::*;

/// `DecodeLimits::default()`, which the test decodes with.
pub const MAX_CANDIDATES: usize = 1_000;
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// The catalog's own limit (catalog models carry whole tree ensembles).
pub const MAX_CATALOG_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The size limit of `kind`'s messages.
pub fn max_event_bytes(kind: TopicKind) -> usize {
    match kind {
        TopicKind::Catalog => MAX_CATALOG_EVENT_BYTES,
        _ => MAX_EVENT_BYTES,
    }
}

/// Whose event it is: the case's tenant, its second tenant, or a 257-byte one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Who {
    Main,
    Second,
    TooLong,
}

/// Which offers the entries of a trace array name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Offers {
    /// All the same offer.
    Dup,
    Distinct,
    /// Distinct, each this many bytes long.
    Long(usize),
    Named(&'static str),
}

/// One of a trace's four arrays: `n` entries, all with this score and rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arr {
    pub n: usize,
    pub offers: Offers,
    pub score: (Num, Why),
    pub rank: (Num, Why),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mut {
    Id(IdKind),
    /// The entity id is the tenant id (a `tenant_settings` change).
    IdIsTenant,
    Tenant(Who),
    Time(When, Off),
    Key(KeyKind),
    Ident(&'static str, IdKind),
    /// A literal written verbatim: a number, or an escaped string.
    Number(&'static str, (Num, Why)),
    /// A nested value at a path whose parent container is at this depth, so that the
    /// document reaches the given total depth.
    Deep(&'static str, usize, usize),
    Set(&'static str, Value),
    Text(&'static str, usize),
    Drop(&'static str),
    Array(&'static str, Arr),
    /// `n` copies of a number (a model's odd `trees`, an unknown field).
    Numbers(&'static str, usize, (Num, Why)),
    Importances(usize, (Num, Why)),
    Expiry((Exp, Why)),
    /// Padded (an unknown string field) to exactly this many bytes past the topic's size
    /// limit (0: at it), when it is shorter.
    SizeTo(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    pub kind: TopicKind,
    /// The catalog entity (catalog changes only).
    pub entity: Option<&'static str>,
    pub muts: Vec<Mut>,
}

/// What an event is rendered against.
pub struct Ctx {
    pub tenant: String,
    pub second: String,
    pub too_long: String,
    /// A tenant no event of the case has (mismatched keys name it).
    pub other: String,
    /// The processing time the batch is decoded at.
    pub now: DateTime<Utc>,
}

/// One rendered message, with what must become of it.
#[derive(Debug)]
pub struct Msg {
    pub kind: TopicKind,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// The payload as a JSON Schema validator reads it (see `Doc::render`).
    pub proxy: Vec<u8>,
    /// Reasons it may be dead-lettered with; empty: it must be applied.
    pub why: BTreeSet<&'static str>,
    pub tenant: String,
    pub id: String,
    pub entity: Option<String>,
}

fn example(kind: TopicKind) -> &'static Value {
    static EXAMPLES: OnceLock<Vec<(TopicKind, Value)>> = OnceLock::new();
    let all = EXAMPLES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples");
        TopicKind::ALL
            .into_iter()
            .map(|k| {
                let text = std::fs::read_to_string(dir.join(format!("{}.json", k.default_name()))).unwrap();
                let events: Vec<Value> = serde_json::from_str(&text).unwrap();
                (k, events.into_iter().max_by_key(|e| e.to_string().len()).unwrap())
            })
            .collect()
    });
    &all.iter().find(|(k, _)| *k == kind).unwrap().1
}

fn time_field(kind: TopicKind) -> &'static str {
    match kind {
        TopicKind::DecisionTraces | TopicKind::Suppressions => "createdAt",
        TopicKind::Interactions | TopicKind::Attributions => "occurredAt",
        TopicKind::Catalog => "updatedAt",
        TopicKind::SegmentMembership => "at",
        TopicKind::ModelMetrics => "evaluatedAt",
    }
}

/// A catalog change of `entity` with the data fields docs/events.md 2.3 names for it.
fn catalog_base(entity: &str) -> Value {
    let data = match entity {
        "offer" => example(TopicKind::Catalog)["data"].clone(),
        "creative" => json!({"offerId": "off_premium_card", "name": "Card email", "status": "active"}),
        "category" => json!({"name": "Cards"}),
        "decision_flow" => json!({"name": "Default", "key": "default-flow"}),
        "approval" => json!({"entityType": "offer", "entityId": "off_premium_card", "status": "pending"}),
        "model" => json!({"name": "GBM", "modelType": "gradient_boosted", "baseScore": 0.1, "featureNames": ["f0"],
            "trees": [{"feature": 0, "threshold": 0.5, "left": {"leaf": 0.2}, "right": {"leaf": -0.2}}]}),
        "tenant_settings" => json!({"decisionTraceEnabled": true, "decisionTraceSampleRate": 1.0,
            "aiAnalyzerSettings": {"llmExplanationsEnabled": false}}),
        _ => json!({"name": "Entity", "status": "active"}),
    };
    json!({"id": "e", "tenantId": "t", "entity": entity, "op": "upsert", "version": 1, "data": data,
        "updatedAt": "2026-03-01T08:00:00.000Z"})
}

impl Arr {
    fn render(&self, path: &str, doc: &mut Doc) -> (Value, Vec<&'static str>) {
        let scored = matches!(path, "scoringResults" | "selectedOffers");
        let (score, rank) = (doc.literal(self.score.0), doc.literal(self.rank.0));
        let entries = (0..self.n)
            .map(|i| {
                let offer = match self.offers {
                    Offers::Dup => "off_dup".to_owned(),
                    Offers::Distinct => format!("off_{i}"),
                    Offers::Long(n) => IdKind::Ascii(n).render(&format!("off_{i}_")),
                    Offers::Named(name) => name.to_owned(),
                };
                match path {
                    "qualificationResults" => {
                        json!({"offerId": offer, "passed": i % 2 == 0, "reason": "passed", "ruleId": "rule_7"})
                    }
                    "contactPolicyResults" => {
                        json!({"offerId": offer, "blocked": i % 3 == 0, "reason": "cap", "policyId": "pol_1"})
                    }
                    _ => json!({"offerId": offer, "score": score, "rank": rank}),
                }
            })
            .collect();
        let mut why = Vec::new();
        if self.n > MAX_CANDIDATES {
            why.extend(TOO_MANY);
        }
        if self.n > 0 {
            if matches!(self.offers, Offers::Long(n) if n > 256) {
                why.extend(INVALID);
            }
            if scored {
                why.extend(self.score.1.iter().chain(self.rank.1));
            }
        }
        (Value::Array(entries), why)
    }
}

impl EventSpec {
    /// The message at `index` of its case (the index makes its id unique).
    pub fn render(&self, ctx: &Ctx, index: usize) -> Msg {
        let base = format!("m{index}");
        let mut doc = Doc::new(self.entity.map_or_else(|| example(self.kind).clone(), catalog_base));
        doc.set("id", json!(base), OK);
        if self.kind == TopicKind::Suppressions {
            doc.set("expiresAt", json!(stamp(ctx.now + Duration::days(1), Off::Z)), OK);
        }
        let (mut who, mut when, mut off, mut key) = (Who::Main, When::MinutesAgo(1), Off::Z, KeyKind::Natural);
        let (mut id_is_tenant, mut size_to) = (false, None);
        for m in &self.muts {
            match m {
                Mut::Id(k) => _ = doc.set("id", json!(k.render(&base)), k.why()),
                Mut::IdIsTenant => id_is_tenant = true,
                Mut::Tenant(w) => who = *w,
                Mut::Time(w, o) => (when, off) = (*w, *o),
                Mut::Key(k) => key = *k,
                Mut::Ident(path, k) => _ = doc.set(path, json!(k.render(&format!("{base}-{path}"))), k.why()),
                Mut::Number(path, n) => _ = doc.num(path, *n),
                Mut::Deep(path, parent, total) => _ = doc.set(path, nest(total - parent), depth_why(*total)),
                Mut::Set(path, v) => _ = doc.set(path, v.clone(), OK),
                Mut::Text(path, n) => _ = doc.set(path, json!(long_text(*n)), OK),
                Mut::Drop(path) => doc.remove(path),
                Mut::Array(path, arr) => {
                    let (v, why) = arr.render(path, &mut doc);
                    doc.set(path, v, &why);
                }
                Mut::Numbers(path, n, (num, why)) => {
                    let lit = doc.literal(*num);
                    doc.set(path, Value::Array(vec![lit; *n]), if *n > 0 { why } else { OK });
                }
                Mut::Importances(n, (num, why)) => {
                    let lit = doc.literal(*num);
                    let all = (0..*n).map(|i| json!({"name": format!("feature_{i}"), "value": lit})).collect();
                    doc.set("featureImportance", Value::Array(all), if *n > 0 { why } else { OK });
                }
                Mut::Expiry((Exp::Absent, _)) => doc.remove("expiresAt"),
                Mut::Expiry((Exp::Tomorrow, _)) => {
                    doc.set("expiresAt", json!(stamp(ctx.now + Duration::days(1), Off::Z)), OK);
                }
                Mut::Expiry((Exp::Lit(t), why)) => _ = doc.set("expiresAt", json!(t), why),
                Mut::SizeTo(n) => size_to = Some(*n),
            }
        }
        let tenant = match who {
            Who::Main => ctx.tenant.clone(),
            Who::Second => ctx.second.clone(),
            Who::TooLong => ctx.too_long.clone(),
        };
        doc.set("tenantId", json!(tenant), if who == Who::TooLong { INVALID } else { OK });
        if id_is_tenant {
            doc.set("id", json!(tenant), OK);
        }
        doc.set(time_field(self.kind), json!(stamp(when.at(ctx.now), off)), when.why());
        let customer = doc.str("customerId").map(str::to_owned);
        if let Some(target) = size_to {
            // ASCII added inside a string adds exactly its length to the payload.
            doc.set("x_pad", json!(""), OK);
            let missing = (max_event_bytes(self.kind) + target).saturating_sub(doc.render().0.len());
            doc.set("x_pad", json!("p".repeat(missing)), OK);
        }
        let (payload, proxy) = doc.render();
        let mut why = doc.why();
        why.extend(key.why());
        if payload.len() > max_event_bytes(self.kind) {
            why.insert("too_large");
        }
        Msg {
            kind: self.kind,
            key: key.render(&tenant, customer.as_deref(), &ctx.other),
            payload,
            proxy,
            why,
            tenant,
            id: doc.str("id").expect("every event has an id").to_owned(),
            entity: doc.str("entity").map(str::to_owned),
        }
    }
}
