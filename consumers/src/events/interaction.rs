use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `interactions`: one per impression or response (docs/events.md 2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interaction {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub offer_id: String,
    pub channel_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creative_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_trace_id: Option<String>,
    pub outcome: Outcome,
    #[serde(default)]
    pub revenue: f64,
    #[serde(default)]
    pub cost: f64,
    pub occurred_at: DateTime<Utc>,
}

/// Decoded from a plain string so that an unknown value gets its own dead-letter reason
/// (`unknown_outcome`) instead of serde's generic "unknown variant".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String", into = "&'static str")]
pub enum Outcome {
    Impression,
    Click,
    Accept,
    Convert,
    Reject,
    Dismiss,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Impression => "impression",
            Outcome::Click => "click",
            Outcome::Accept => "accept",
            Outcome::Convert => "convert",
            Outcome::Reject => "reject",
            Outcome::Dismiss => "dismiss",
        }
    }
}

impl From<Outcome> for &'static str {
    fn from(o: Outcome) -> Self {
        o.as_str()
    }
}

/// The error text is matched by the decoder to classify the dead letter.
pub(crate) const UNKNOWN_OUTCOME: &str = "unknown outcome";

impl TryFrom<String> for Outcome {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Ok(match s.as_str() {
            "impression" => Outcome::Impression,
            "click" => Outcome::Click,
            "accept" => Outcome::Accept,
            "convert" => Outcome::Convert,
            "reject" => Outcome::Reject,
            "dismiss" => Outcome::Dismiss,
            other => return Err(format!("{UNKNOWN_OUTCOME} `{other}`")),
        })
    }
}
