use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `catalog`: a change to one catalog entity (SPEC 2.3). `id` names the entity; `version`
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
    /// Offer budget, in micro-units (see `fold::money`).
    pub budget_allocated_micros: Option<i64>,
    /// A creative's offer.
    pub offer_id: Option<String>,
}

impl CatalogChange {
    /// Extracts the typed fields; an error names the field and why (a wrong type is bad input,
    /// SPEC 2.8). Absent fields are `None`; every entity reads `name` and `status`.
    pub fn fields(&self) -> Result<CatalogFields, String> {
        let Some(data) = &self.data else {
            return Ok(CatalogFields::default());
        };
        let budget_allocated_micros = match data.get("budget") {
            None | Some(Value::Null) => None,
            Some(Value::Object(b)) => match b.get("allocated") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    crate::fold::money::micros(v.as_f64().ok_or("data.budget.allocated: expected a number")?)
                        .map_err(|e| format!("data.budget.allocated: {e}"))?,
                ),
            },
            Some(_) => return Err("data.budget: expected an object".into()),
        };
        Ok(CatalogFields {
            name: opt_str(data, "name")?,
            status: opt_str(data, "status")?,
            priority: match data.get("priority") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().ok_or("data.priority: expected an integer")?),
            },
            category_id: opt_str(data, "categoryId")?,
            budget_allocated_micros,
            offer_id: opt_str(data, "offerId")?,
        })
    }
}

fn opt_str(data: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("data.{key}: expected a string")),
    }
}
