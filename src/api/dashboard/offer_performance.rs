//! `offer_performance`: the 20 first active catalog offers by conversions, then impressions
//! (docs/dashboard-types.md 5.1), with priority, creative count, and the window's counters.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgPool;

use super::format::percent_string;
use super::read::{fetch_window, segment_scope, Body, Params, SegmentScope};
use super::totals::{segment_offers, totals_source, OFFER_INTERACTIONS, SCOPE_CHAIN};
use crate::api::error::ApiResult;
use consumers::units::money::{to_money, Micros};
use consumers::units::wide::offer_interactions::OfferInteractions;

/// How many offers the answer lists.
pub const TOP: usize = 20;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct OfferPerformance {
    pub data: Vec<OfferRow>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OfferPerformanceRow)]
pub struct OfferRow {
    pub offer_id: String,
    pub name: String,
    pub priority: i64,
    /// Creatives of the offer in the catalog now.
    pub creative_count: i64,
    pub impressions: i64,
    /// accept + convert.
    pub conversions: i64,
    /// Σ revenue of the window's interactions, 2 decimals.
    pub revenue: f64,
    /// conversions / impressions × 100, one decimal.
    pub conversion_rate: String,
}

/// One active catalog offer and its counters over the window (0 without activity).
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub offer_id: String,
    /// Catalog name (null: show the id).
    pub name: Option<String>,
    /// Catalog priority (null: 0).
    pub priority: Option<i64>,
    /// Creatives of the offer in the catalog now.
    pub creatives: i64,
    pub impressions: i64,
    /// accept + convert.
    pub conversions: i64,
    /// Σ revenue, in micro-units.
    pub revenue_micros: Micros,
}

/// The catalog's active offers, each with its creatives and the window's counters of `stats`
/// (a query of `offer_id`, `imp`, `conv`, `rev`; an offer without a row: zeros). The creatives
/// are counted once per offer (a subquery per offer scanned them all each time: 8 ms for 200
/// offers).
fn active_offers(stats: &str) -> String {
    format!(
        "WITH stats AS ({stats}),
              creatives AS (
                  SELECT offer_id, count(*) AS n FROM catalog_entities
                   WHERE tenant_id = $1 AND entity = 'creative' AND NOT deleted GROUP BY offer_id)
         SELECT o.entity_id AS offer_id, o.name, o.priority, COALESCE(c.n, 0) AS creatives,
                COALESCE(s.imp, 0) AS impressions, COALESCE(s.conv, 0) AS conversions,
                COALESCE(s.rev, 0) AS revenue_micros
           FROM catalog_entities o LEFT JOIN stats s ON s.offer_id = o.entity_id
           LEFT JOIN creatives c ON c.offer_id = o.entity_id
          WHERE o.tenant_id = $1 AND o.entity = 'offer' AND NOT o.deleted AND o.status = 'active'"
    )
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let scope = segment_scope(pool, tenant, p).await?;
    if let SegmentScope::Warning(w) = scope {
        return Ok(w);
    }
    let rows: Vec<Row> = match scope {
        // The catalog's offers and the segment's two wide checkpoints (`totals::segment_offers`),
        // side by side on two connections, joined here.
        SegmentScope::Segment(_) => {
            let catalog = active_offers(
                "SELECT NULL::text AS offer_id, 0::int8 AS imp, 0::int8 AS conv, 0::numeric AS rev WHERE false",
            );
            let (catalog, segments) = tokio::try_join!(
                fetch_window::<Row>(pool, &catalog, tenant, p, &scope),
                segment_offers(pool, tenant, p, &scope)
            )?;
            let stats: HashMap<String, OfferInteractions> = segments.into_iter().collect();
            catalog
                .into_iter()
                .map(|r| match stats.get(&r.offer_id) {
                    Some(o) => Row {
                        impressions: o.impressions,
                        conversions: o.conversions,
                        revenue_micros: Micros(o.revenue_micros),
                        ..r
                    },
                    None => r,
                })
                .collect()
        }
        _ => {
            let stats = format!(
                "SELECT offer_id, impressions::int8 AS imp, (accepts + converts)::int8 AS conv, revenue_micros AS rev {}",
                totals_source(&OFFER_INTERACTIONS, SCOPE_CHAIN, &["impressions", "accepts", "converts", "revenue_micros"])
            );
            fetch_window(pool, &active_offers(&stats), tenant, p, &scope).await?
        }
    };
    Body::json(&to_response(rows))
}

fn offer_row(r: Row) -> OfferRow {
    OfferRow {
        name: r.name.unwrap_or_else(|| r.offer_id.clone()),
        offer_id: r.offer_id,
        priority: r.priority.unwrap_or(0),
        creative_count: r.creatives,
        impressions: r.impressions,
        conversions: r.conversions,
        revenue: to_money(r.revenue_micros.0),
        conversion_rate: percent_string(r.conversions, r.impressions),
    }
}

/// Conversions desc, impressions desc, then id: docs/dashboard-types.md 5.1's order with its tie rule.
pub fn rank(rows: &mut [OfferRow]) {
    rows.sort_by(|a, b| {
        b.conversions
            .cmp(&a.conversions)
            .then(b.impressions.cmp(&a.impressions))
            .then_with(|| a.offer_id.cmp(&b.offer_id))
    });
}

pub fn to_response(rows: Vec<Row>) -> OfferPerformance {
    let mut data: Vec<OfferRow> = rows.into_iter().map(offer_row).collect();
    rank(&mut data);
    data.truncate(TOP);
    OfferPerformance { data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_20_by_conversions_then_impressions_then_id() {
        let rows: Vec<Row> = (0..25)
            .map(|i| Row {
                offer_id: format!("o{i:02}"),
                name: None,
                priority: Some(1),
                creatives: 0,
                impressions: 100 - i,
                conversions: i % 3,
                revenue_micros: Micros(1_005_000),
            })
            .collect();
        let r = to_response(rows);
        assert_eq!(r.data.len(), 20);
        // Two conversions (i % 3 == 2), and of those the most impressions (100 − i): i = 2.
        assert_eq!(r.data[0].offer_id, "o02");
        assert!(r
            .data
            .windows(2)
            .all(|w| (w[0].conversions, w[0].impressions) >= (w[1].conversions, w[1].impressions)));
        assert_eq!(r.data[0].revenue, 1.01);
        assert_eq!(r.data[0].name, r.data[0].offer_id);
    }
}
