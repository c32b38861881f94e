use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `decision-traces`: one per recommend request (docs/events.md 2.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionTrace {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_flow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_flow_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// Free-form stage objects: kept unparsed (only the traces API returns them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Box<RawValue>>,
    /// Free-form result (`count`, `topOffer`): kept unparsed as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub qualification_results: Vec<QualificationResult>,
    #[serde(default)]
    pub contact_policy_results: Vec<ContactPolicyResult>,
    pub scoring_results: Vec<ScoredOffer>,
    pub selected_offers: Vec<ScoredOffer>,
    #[serde(default)]
    pub degraded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_reason: Option<String>,
    pub total_duration_ms: f64,
    pub created_at: DateTime<Utc>,
    /// Set by [`DecisionTrace::hollow`]: the four arrays, `pipeline` and `result` are dropped
    /// (they are still in the message's payload). Never set by decoding.
    #[serde(skip)]
    pub hollow: bool,
}

impl DecisionTrace {
    /// Drops what only the fold reads (the four arrays) and what only the payload keeps
    /// (`pipeline`, `result`): a batch holds its traces this way once it has folded them
    /// ([`crate::batch::Batch::add`], [`crate::batch::Batch::seal`]): a decoded standard
    /// trace held ~10 KB, mostly those arrays' entries. The ids, times and dimensions stay:
    /// dedup, memberships and the raw trace store read them.
    pub fn hollow(&mut self) {
        self.pipeline = None;
        self.result = None;
        self.qualification_results = Vec::new();
        self.contact_policy_results = Vec::new();
        self.scoring_results = Vec::new();
        self.selected_offers = Vec::new();
        self.hollow = true;
    }
}

// RawValue has no PartialEq; compare the JSON text, which is what we store and serve.
impl PartialEq for DecisionTrace {
    fn eq(&self, other: &Self) -> bool {
        fn raw(v: &Option<Box<RawValue>>) -> Option<&str> {
            v.as_deref().map(RawValue::get)
        }
        self.id == other.id
            && self.tenant_id == other.tenant_id
            && self.customer_id == other.customer_id
            && self.request_id == other.request_id
            && self.decision_flow_id == other.decision_flow_id
            && self.decision_flow_key == other.decision_flow_key
            && self.channel_id == other.channel_id
            && raw(&self.pipeline) == raw(&other.pipeline)
            && raw(&self.result) == raw(&other.result)
            && self.qualification_results == other.qualification_results
            && self.contact_policy_results == other.contact_policy_results
            && self.scoring_results == other.scoring_results
            && self.selected_offers == other.selected_offers
            && self.degraded == other.degraded
            && self.degraded_reason == other.degraded_reason
            && self.total_duration_ms == other.total_duration_ms
            && self.created_at == other.created_at
            && self.hollow == other.hollow
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualificationResult {
    pub offer_id: String,
    pub passed: bool,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactPolicyResult {
    pub offer_id: String,
    pub blocked: bool,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
}

/// An entry of `scoringResults` or `selectedOffers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoredOffer {
    pub offer_id: String,
    pub score: f64,
    pub rank: i64,
}
