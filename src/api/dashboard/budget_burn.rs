//! `budget_burn`: per offer with a budget, allocated vs all-time spend (docs/dashboard-types.md 5.1).

use std::cmp::Ordering;

use serde::Serialize;
use sqlx::PgPool;

use super::format::percent_string;
use super::read::Body;
use crate::api::error::ApiResult;
use consumers::units::money::{to_money, Micros};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct BudgetBurn {
    pub data: Vec<BurnRow>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BudgetBurnRow)]
pub struct BurnRow {
    pub offer_id: String,
    pub offer_name: String,
    /// `budget.allocated` of the offer, 2 decimals.
    pub allocated: f64,
    /// Σ cost of all the offer's interactions, all time.
    pub spent: f64,
    /// max(allocated − spent, 0).
    pub remaining: f64,
    /// spent / allocated × 100, one decimal.
    pub burn_rate: String,
}

/// One offer with a budget.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub offer_id: String,
    /// Catalog name (null: show the id).
    pub name: Option<String>,
    /// `budget.allocated`, in micro-units.
    pub allocated_micros: i64,
    /// Σ cost of all the offer's interactions, all time, in micro-units.
    pub spent_micros: Micros,
}

pub async fn handle(pool: &PgPool, tenant: &str) -> ApiResult<Body> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT o.entity_id AS offer_id, o.name, o.budget_allocated_micros AS allocated_micros,
                COALESCE(s.cost_micros, 0) AS spent_micros
           FROM catalog_entities o
           LEFT JOIN offer_spend s ON s.tenant_id = o.tenant_id AND s.offer_id = o.entity_id
          WHERE o.tenant_id = $1 AND o.entity = 'offer' AND NOT o.deleted AND o.budget_allocated_micros > 0",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    Body::json(&to_response(rows))
}

/// Percent strings are built from integer micro-units, and rows are ordered by the exact ratio
/// (cross-multiplied), not by the rounded string.
pub fn to_response(mut rows: Vec<Row>) -> BudgetBurn {
    rows.sort_by(|a, b| {
        let by_ratio = by_burn_rate(a, b);
        if by_ratio == Ordering::Equal {
            a.offer_id.cmp(&b.offer_id)
        } else {
            by_ratio
        }
    });
    BudgetBurn {
        data: rows
            .into_iter()
            .map(|Row { offer_id: id, name, allocated_micros: allocated, spent_micros: spent }| BurnRow {
                offer_name: name.unwrap_or_else(|| id.clone()),
                offer_id: id,
                allocated: to_money(allocated),
                spent: to_money(spent.0),
                remaining: to_money((i128::from(allocated) - spent.0).max(0)),
                burn_rate: percent_string(spent.0, allocated),
            })
            .collect(),
    }
}

/// spent / allocated, descending: exact on the cross products while they fit i128 (spent is a
/// numeric sum: astronomically large ones fall back to comparing the ratios as doubles).
fn by_burn_rate(a: &Row, b: &Row) -> Ordering {
    let (a_spent, b_spent) = (a.spent_micros.0, b.spent_micros.0);
    let (a_allocated, b_allocated) = (a.allocated_micros, b.allocated_micros);
    match (b_spent.checked_mul(i128::from(a_allocated)), a_spent.checked_mul(i128::from(b_allocated))) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => (b_spent as f64 / b_allocated as f64).total_cmp(&(a_spent as f64 / a_allocated as f64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_by_exact_burn_rate_then_id() {
        let row = |id: &str, name: Option<&str>, allocated_micros, spent| Row {
            offer_id: id.into(),
            name: name.map(Into::into),
            allocated_micros,
            spent_micros: Micros(spent),
        };
        let r = to_response(vec![
            row("a", None, 10_000_000, 5_000_000),
            row("b", Some("B"), 3_000_000, 4_000_000),
            row("c", None, 20_000_000, 10_000_000),
        ]);
        let got: Vec<(&str, f64, &str)> =
            r.data.iter().map(|x| (x.offer_id.as_str(), x.remaining, x.burn_rate.as_str())).collect();
        assert_eq!(got, [("b", 0.0, "133.3"), ("a", 5.0, "50.0"), ("c", 10.0, "50.0")]);
    }
}
