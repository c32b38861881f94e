use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `catalog`: a change to one catalog entity (docs/events.md 2.3). `id` names the entity; `version`
/// orders and de-duplicates its changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogChange {
    pub id: String,
    pub tenant_id: String,
    pub entity: String,
    pub op: CatalogOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogOp {
    Upsert,
    Delete,
}

/// The typed fields the views read, extracted (and type-checked) from `data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogFields {
    pub name: Option<String>,
    pub status: Option<String>,
    pub priority: Option<i64>,
    pub category_id: Option<String>,
    /// Offer budget, in micro-units (see `units::money`).
    pub budget_allocated_micros: Option<i64>,
    /// A creative's offer.
    pub offer_id: Option<String>,
}

/// Why a catalog change's `data` is bad input (docs/events.md 2.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataError {
    WrongType(String),
    Negative(String),
    Invalid(String),
}

const OFFER_STATUSES: [&str; 4] = ["active", "inactive", "draft", "archived"];

impl CatalogChange {
    /// Extracts the typed fields and checks the entity's data contract (docs/events.md 2.3). Absent
    /// fields are `None`; a field of the wrong type or out of range is an error naming it.
    pub fn fields(&self) -> Result<CatalogFields, DataError> {
        if self.version.is_some_and(|v| v < 0) {
            return Err(DataError::Negative("version must be >= 0".into()));
        }
        let Some(data) = &self.data else {
            return Ok(CatalogFields::default());
        };
        let d = Data(data);
        let budget_allocated_micros = match d.object("budget")? {
            None => None,
            Some(b) => match Data(b).number("allocated", "data.budget.allocated")? {
                None => None,
                Some(v) if v < 0.0 => return Err(DataError::Negative("data.budget.allocated must be >= 0".into())),
                Some(v) => Some(
                    crate::units::money::micros(v)
                        .map_err(|e| DataError::Invalid(format!("data.budget.allocated: {e}")))?,
                ),
            },
        };
        let status = d.string("status")?;
        if self.entity == "offer" {
            if let Some(s) = status.as_deref().filter(|s| !OFFER_STATUSES.contains(s)) {
                return Err(DataError::Invalid(format!(
                    "data.status of an offer must be one of {OFFER_STATUSES:?}, got {s:?}"
                )));
            }
        }
        match self.entity.as_str() {
            "tenant_settings" => {
                d.boolean("decisionTraceEnabled", "data.decisionTraceEnabled")?;
                if let Some(r) = d.number("decisionTraceSampleRate", "data.decisionTraceSampleRate")? {
                    if !(0.0..=1.0).contains(&r) {
                        return Err(DataError::Invalid(format!(
                            "data.decisionTraceSampleRate must be within [0, 1], got {r}"
                        )));
                    }
                }
                if let Some(ai) = d.object("aiAnalyzerSettings")? {
                    Data(ai).boolean("llmExplanationsEnabled", "data.aiAnalyzerSettings.llmExplanationsEnabled")?;
                }
            }
            "model" => {
                d.string("modelType")?;
                d.number("baseScore", "data.baseScore")?;
                match data.get("featureNames") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(names)) if names.iter().all(Value::is_string) => {}
                    Some(_) => {
                        return Err(DataError::WrongType("data.featureNames: expected an array of strings".into()))
                    }
                }
                if !matches!(data.get("trees"), None | Some(Value::Null) | Some(Value::Array(_))) {
                    return Err(DataError::WrongType("data.trees: expected an array".into()));
                }
            }
            _ => {}
        }
        Ok(CatalogFields {
            name: d.string("name")?,
            status,
            priority: match data.get("priority") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    Some(v.as_i64().ok_or_else(|| DataError::WrongType("data.priority: expected an integer".into()))?)
                }
            },
            category_id: d.string("categoryId")?,
            budget_allocated_micros,
            offer_id: d.string("offerId")?,
        })
    }
}

/// Typed, optional access to the fields of `data`.
struct Data<'a>(&'a Map<String, Value>);

impl<'a> Data<'a> {
    fn string(&self, key: &str) -> Result<Option<String>, DataError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(DataError::WrongType(format!("data.{key}: expected a string"))),
        }
    }

    fn number(&self, key: &str, path: &str) -> Result<Option<f64>, DataError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| DataError::WrongType(format!("{path}: expected a number"))),
        }
    }

    fn boolean(&self, key: &str, path: &str) -> Result<Option<bool>, DataError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(DataError::WrongType(format!("{path}: expected a boolean"))),
        }
    }

    fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, DataError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(DataError::WrongType(format!("data.{key}: expected an object"))),
        }
    }
}
