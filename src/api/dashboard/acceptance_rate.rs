//! `acceptance_rate`: per offer with ≥1 interaction in the window (docs/dashboard-types.md 5.1).

use serde::Serialize;
use sqlx::PgPool;

use super::format::rate;
use super::read::{fetch_window, name_or_id, segment_scope, Body, Params, SegmentScope};
use super::totals::{segment_offers, totals_source, OFFER_INTERACTIONS, SCOPE_CHAIN};
use crate::api::error::ApiResult;
use crate::api::window::{Period, Window};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AcceptanceRate {
    /// Offers sorted by impressions desc, then offerId.
    pub data: Vec<OfferRate>,
    /// Number of rows of `data`.
    pub total: usize,
    pub period: Period,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AcceptanceRateRow)]
pub struct OfferRate {
    pub offer_id: String,
    pub offer_name: String,
    pub impressions: i64,
    /// accept + convert.
    pub positive: i64,
    /// reject + dismiss.
    pub negative: i64,
    /// positive / impressions, 4 decimals (0 without impressions).
    pub acceptance_rate: f64,
}

/// One offer's counters summed over the window.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub offer_id: String,
    pub impressions: i64,
    /// accept + convert.
    pub positive: i64,
    /// reject + dismiss.
    pub negative: i64,
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let scope = segment_scope(pool, tenant, p).await?;
    if let SegmentScope::Warning(w) = scope {
        return Ok(w);
    }
    let rows: Vec<Row> = match scope {
        // A segment's two wide checkpoints (`totals::segment_offers`).
        SegmentScope::Segment(_) => segment_offers(pool, tenant, p, &scope)
            .await?
            .into_iter()
            .map(|(offer_id, o)| Row {
                offer_id,
                impressions: o.impressions,
                positive: o.conversions,
                negative: o.negatives,
            })
            .collect(),
        _ => {
            let sql = format!(
                "SELECT offer_id, impressions::int8 AS impressions, (accepts + converts)::int8 AS positive,
                        (rejects + dismisses)::int8 AS negative {}",
                totals_source(
                    &OFFER_INTERACTIONS,
                    SCOPE_CHAIN,
                    &["impressions", "accepts", "converts", "rejects", "dismisses"]
                )
            );
            fetch_window(pool, &sql, tenant, p, &scope).await?
        }
    };
    let ids: Vec<String> = rows.iter().map(|r| r.offer_id.clone()).collect();
    let names = p.names(pool, tenant, "offer", &ids).await?;
    Body::json(&to_response(rows, &names, &p.window))
}

pub fn to_response(rows: Vec<Row>, names: &std::collections::HashMap<String, String>, w: &Window) -> AcceptanceRate {
    let mut data: Vec<OfferRate> = rows
        .into_iter()
        .map(|Row { offer_id, impressions, positive, negative }| OfferRate {
            offer_name: name_or_id(names, &offer_id),
            offer_id,
            impressions,
            positive,
            negative,
            acceptance_rate: rate(positive, impressions, 4),
        })
        .collect();
    data.sort_by(|a, b| b.impressions.cmp(&a.impressions).then_with(|| a.offer_id.cmp(&b.offer_id)));
    AcceptanceRate { total: data.len(), data, period: w.period() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_impressions_then_id_with_names() {
        let w = Window::parse(Some("7"), Some("2026-03-29")).unwrap();
        let names = [("b".to_string(), "Offer B".to_string())].into_iter().collect();
        let row = |offer_id: &str, impressions, positive, negative| Row {
            offer_id: offer_id.into(),
            impressions,
            positive,
            negative,
        };
        let r = to_response(vec![row("a", 10, 1, 0), row("c", 20, 0, 2), row("b", 10, 3, 1)], &names, &w);
        let order: Vec<&str> = r.data.iter().map(|o| o.offer_id.as_str()).collect();
        assert_eq!(order, ["c", "a", "b"]);
        assert_eq!(r.data[2].offer_name, "Offer B");
        assert_eq!(r.data[2].acceptance_rate, 0.3);
        assert_eq!(r.total, 3);
        assert_eq!(r.period.since, "2026-03-23T00:00:00.000Z");
    }
}
