//! The smaller topics: segment membership, suppressions, attributions, model metrics.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `segment-membership` (docs/events.md 2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMembership {
    pub id: String,
    pub tenant_id: String,
    pub segment_id: String,
    pub customer_id: String,
    pub op: MembershipOp,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipOp {
    Add,
    Remove,
}

/// `suppressions` (docs/events.md 2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub id: String,
    pub tenant_id: String,
    pub suppression_id: String,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    pub policy_id: String,
    pub policy_type: String,
    pub op: SuppressionOp,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionOp {
    Create,
    Lift,
}

/// `attributions` (docs/events.md 2.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribution {
    pub id: String,
    pub tenant_id: String,
    pub conversion_id: String,
    pub model: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// `model-metrics` (docs/events.md 2.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelMetric {
    pub id: String,
    pub tenant_id: String,
    pub model_id: String,
    pub model_name: String,
    pub auc: f64,
    pub feature_importance: Vec<FeatureImportance>,
    pub evaluated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    pub name: String,
    pub value: f64,
}
