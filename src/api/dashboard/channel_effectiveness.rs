//! `channel_effectiveness`: per channel with activity in the window or active in the catalog
//! (docs/dashboard-types.md 5.1).

use serde::Serialize;
use sqlx::PgPool;

use super::format::percent_string;
use super::read::{fetch_window, rollup_source, segment_scope, Body, Grain, Params, SegmentScope};
use crate::api::error::ApiResult;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ChannelEffectiveness {
    pub data: Vec<ChannelRow>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ChannelEffectivenessRow)]
pub struct ChannelRow {
    pub channel_id: String,
    pub channel_name: String,
    pub impressions: i64,
    pub conversions: i64,
    /// conversions / impressions × 100, one decimal.
    pub effectiveness: String,
}

/// One channel's counters over the window (0 for an active channel without activity).
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub channel_id: String,
    /// Catalog name (null: show the id).
    pub name: Option<String>,
    pub impressions: i64,
    /// accept + convert.
    pub conversions: i64,
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let scope = segment_scope(pool, tenant, p).await?;
    if let SegmentScope::Warning(w) = scope {
        return Ok(w);
    }
    let sql = format!(
        "WITH stats AS (
             SELECT channel_id, sum(impressions)::int8 AS imp, sum(accepts + converts)::int8 AS conv
             {} GROUP BY channel_id),
         active AS (
             SELECT entity_id AS channel_id FROM catalog_entities
              WHERE tenant_id = $1 AND entity = 'channel' AND NOT deleted AND status = 'active')
         SELECT k.channel_id, c.name, COALESCE(s.imp, 0) AS impressions, COALESCE(s.conv, 0) AS conversions
           FROM (SELECT channel_id FROM stats UNION SELECT channel_id FROM active) k
           LEFT JOIN stats s USING (channel_id)
           LEFT JOIN catalog_entities c
                  ON c.tenant_id = $1 AND c.entity = 'channel' AND c.entity_id = k.channel_id AND NOT c.deleted",
        rollup_source(Grain::Channel)
    );
    let rows: Vec<Row> = fetch_window(pool, &sql, tenant, p, &scope).await?;
    Body::json(&to_response(rows))
}

pub fn to_response(rows: Vec<Row>) -> ChannelEffectiveness {
    let mut data: Vec<ChannelRow> = rows
        .into_iter()
        .map(|Row { channel_id: id, name, impressions: imp, conversions: conv }| ChannelRow {
            channel_name: name.unwrap_or_else(|| id.clone()),
            channel_id: id,
            impressions: imp,
            conversions: conv,
            effectiveness: percent_string(conv, imp),
        })
        .collect();
    data.sort_by(|a, b| b.impressions.cmp(&a.impressions).then_with(|| a.channel_id.cmp(&b.channel_id)));
    ChannelEffectiveness { data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_with_names_and_percent() {
        let row = |id: &str, name: Option<&str>, impressions, conversions| Row {
            channel_id: id.into(),
            name: name.map(Into::into),
            impressions,
            conversions,
        };
        let r = to_response(vec![row("b", None, 10, 1), row("a", Some("A"), 10, 0), row("c", None, 0, 0)]);
        let got: Vec<(&str, &str, &str)> =
            r.data.iter().map(|c| (c.channel_id.as_str(), c.channel_name.as_str(), c.effectiveness.as_str())).collect();
        assert_eq!(got, [("a", "A", "0.0"), ("b", "b", "10.0"), ("c", "c", "0.0")]);
    }
}
