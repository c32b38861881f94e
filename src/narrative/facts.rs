//! The facts of one decision, read from its stored trace: what every narrative is written from,
//! whichever provider writes it (so that a template and a language model say the same things).

use std::collections::{BTreeSet, HashMap};

use consumers::events::DecisionTrace;
use serde::Serialize;

/// How many runners-up a narrative names.
const RUNNERS_UP: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub trace_id: String,
    pub request_id: String,
    pub customer_id: String,
    /// The decision flow's key, else its id.
    pub flow: Option<String>,
    pub channel: Option<String>,
    pub created_at: String,
    pub total_duration_ms: f64,
    pub qualification: Stage,
    pub contact_policy: Stage,
    /// Offers that reached scoring.
    pub scored: usize,
    pub selected: Vec<Ranked>,
    /// The best-ranked scored offers that were not selected, with how far below the lowest
    /// selected score each fell.
    pub runners_up: Vec<RunnerUp>,
    pub degraded: bool,
    pub degraded_reason: Option<String>,
}

/// A filtering stage: how many offers it evaluated, how many passed, and which it removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub evaluated: usize,
    pub passed: usize,
    pub removed: Vec<Removal>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    pub offer_id: String,
    pub reason: String,
    /// The qualification rule or contact policy that removed it, when the trace names one.
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ranked {
    pub offer_id: String,
    /// The catalog name, when the catalog has one.
    pub offer_name: Option<String>,
    pub score: f64,
    pub rank: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerUp {
    #[serde(flatten)]
    pub offer: Ranked,
    /// Lowest selected score minus this score (how much it lost by).
    pub behind: f64,
}

impl Facts {
    /// The facts of `trace`, with the catalog names of its offers (`names`).
    pub fn of(trace: &DecisionTrace, names: &HashMap<String, String>) -> Facts {
        let ranked = |offer_id: &str, score: f64, rank: i64| Ranked {
            offer_id: offer_id.to_owned(),
            offer_name: names.get(offer_id).cloned(),
            score,
            rank,
        };
        let qualification = Stage {
            evaluated: trace.qualification_results.len(),
            passed: trace.qualification_results.iter().filter(|q| q.passed).count(),
            removed: trace
                .qualification_results
                .iter()
                .filter(|q| !q.passed)
                .map(|q| Removal { offer_id: q.offer_id.clone(), reason: q.reason.clone(), by: q.rule_id.clone() })
                .collect(),
        };
        let contact_policy = Stage {
            evaluated: trace.contact_policy_results.len(),
            passed: trace.contact_policy_results.iter().filter(|c| !c.blocked).count(),
            removed: trace
                .contact_policy_results
                .iter()
                .filter(|c| c.blocked)
                .map(|c| Removal { offer_id: c.offer_id.clone(), reason: c.reason.clone(), by: c.policy_id.clone() })
                .collect(),
        };
        let mut selected: Vec<Ranked> =
            trace.selected_offers.iter().map(|s| ranked(&s.offer_id, s.score, s.rank)).collect();
        selected.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.offer_id.cmp(&b.offer_id)));
        let chosen: BTreeSet<&str> = trace.selected_offers.iter().map(|s| s.offer_id.as_str()).collect();
        let cutoff = trace.selected_offers.iter().map(|s| s.score).fold(f64::INFINITY, f64::min);
        let mut others: Vec<_> =
            trace.scoring_results.iter().filter(|s| !chosen.contains(s.offer_id.as_str())).collect();
        others.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.offer_id.cmp(&b.offer_id)));
        let runners_up = others
            .into_iter()
            .take(RUNNERS_UP)
            .map(|s| RunnerUp {
                offer: ranked(&s.offer_id, s.score, s.rank),
                behind: if cutoff.is_finite() { cutoff - s.score } else { 0.0 },
            })
            .collect();
        Facts {
            trace_id: trace.id.clone(),
            request_id: trace.request_id.clone(),
            customer_id: trace.customer_id.clone(),
            flow: trace.decision_flow_key.clone().or_else(|| trace.decision_flow_id.clone()),
            channel: trace.channel_id.clone(),
            created_at: trace.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            total_duration_ms: trace.total_duration_ms,
            qualification,
            contact_policy,
            scored: trace.scoring_results.len(),
            selected,
            runners_up,
            degraded: trace.degraded,
            degraded_reason: trace.degraded_reason.clone(),
        }
    }

    /// Every offer id the facts mention (to look their names up).
    pub fn offer_ids(trace: &DecisionTrace) -> Vec<String> {
        let ids: BTreeSet<&str> =
            trace.scoring_results.iter().chain(&trace.selected_offers).map(|s| s.offer_id.as_str()).collect();
        ids.into_iter().map(str::to_owned).collect()
    }
}
