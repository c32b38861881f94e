//! `offer_performance_grouped`: offer performance per channel, category or segment (docs/dashboard-types.md 5.1).
//!
//! Groups are the dimension values with activity in the window (segments: active, materialized
//! ones), ordered by their impressions; each group lists its offers with activity (any
//! status) as offer_performance orders them, top 20. Offers without a category in the catalog
//! fall in the group "uncategorized".

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::PgPool;

use super::format::percent_string;
use super::offer_performance::TOP;
use super::read::{fetch_window, segment_scope, Body, Params, SegmentScope, UNCATEGORIZED};
use super::totals::{
    segment_channel_offers, segment_windows, totals_source, OFFER_CHANNEL_INTERACTIONS, OFFER_INTERACTIONS, SCOPE_CHAIN,
};
use crate::api::error::{ApiError, ApiResult};
use consumers::units::money::{to_money, Micros};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Channel,
    Category,
    Segment,
}

impl GroupBy {
    pub fn parse(v: Option<&str>) -> ApiResult<GroupBy> {
        match v {
            None | Some("channel") => Ok(GroupBy::Channel),
            Some("category") => Ok(GroupBy::Category),
            Some("segment") => Ok(GroupBy::Segment),
            Some(other) => Err(ApiError::BadRequest(format!(
                "groupBy must be channel, category or segment for offer_performance_grouped, got {other:?}"
            ))),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            GroupBy::Channel => "channel",
            GroupBy::Category => "category",
            GroupBy::Segment => "segment",
        }
    }
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OfferPerformanceGrouped)]
pub struct Grouped {
    pub groups: Vec<Group>,
    pub group_by: &'static str,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OfferGroup)]
pub struct Group {
    pub group_name: String,
    pub group_id: String,
    pub offers: Vec<GroupOffer>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OfferGroupRow)]
pub struct GroupOffer {
    pub offer_id: String,
    pub name: String,
    pub impressions: i64,
    pub conversions: i64,
    pub revenue: f64,
    pub conversion_rate: String,
    /// Segment groups only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_name: Option<String>,
}

/// One offer's counters within one group over the window.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    /// The channel, category or segment id.
    pub group_id: String,
    pub offer_id: String,
    pub impressions: i64,
    /// accept + convert.
    pub conversions: i64,
    /// Σ revenue, in micro-units.
    pub revenue_micros: Micros,
}

/// The active, materialized segments of tenant `$1` (only `$4` when given).
const ACTIVE_SEGMENTS: &str = "SELECT m.segment_id FROM segments_materialized m
      JOIN catalog_entities c ON c.tenant_id = m.tenant_id AND c.entity = 'segment' AND c.entity_id = m.segment_id
                             AND NOT c.deleted AND c.status = 'active'
     WHERE m.tenant_id = $1 AND ($4::text IS NULL OR m.segment_id = $4)";

/// The counters the groups show.
const COUNTERS: &[&str] = &["impressions", "accepts", "converts", "revenue_micros"];

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let group_by = GroupBy::parse(p.get("groupBy"))?;
    let scope = segment_scope(pool, tenant, p).await?;
    if let SegmentScope::Warning(w) = scope {
        return Ok(w);
    }
    let ranked: Vec<Ranked> = match (group_by, &scope) {
        // A segment's (offer, channel)s: two wide rows per channel.
        (GroupBy::Channel, SegmentScope::Segment(segment)) => rank(
            segment_channel_offers(pool, tenant, &p.window, segment)
                .await?
                .into_iter()
                .map(|o| Row {
                    group_id: o.channel_id,
                    offer_id: o.offer_id,
                    impressions: o.counts[0],
                    conversions: o.counts[2] + o.counts[3],
                    revenue_micros: Micros(o.revenue_micros),
                })
                .collect(),
        ),
        (GroupBy::Channel, _) => {
            let sql = format!(
                "SELECT channel_id AS group_id, offer_id, impressions::int8 AS impressions,
                            (accepts + converts)::int8 AS conversions, revenue_micros {}",
                totals_source(&OFFER_CHANNEL_INTERACTIONS, SCOPE_CHAIN, COUNTERS)
            );
            rank(fetch_window(pool, &sql, tenant, p, &scope).await?)
        }
        (GroupBy::Category, _) => {
            let sql = format!(
                "WITH stats AS (SELECT offer_id, impressions, accepts, converts, revenue_micros {})
                 SELECT COALESCE(o.category_id, '{UNCATEGORIZED}') AS group_id, s.offer_id,
                        s.impressions::int8 AS impressions, (s.accepts + s.converts)::int8 AS conversions,
                        s.revenue_micros
                   FROM stats s
                   LEFT JOIN catalog_entities o
                          ON o.tenant_id = $1 AND o.entity = 'offer' AND o.entity_id = s.offer_id AND NOT o.deleted",
                totals_source(&OFFER_INTERACTIONS, SCOPE_CHAIN, COUNTERS)
            );
            rank(fetch_window(pool, &sql, tenant, p, &scope).await?)
        }
        (GroupBy::Segment, _) => by_segment(pool, tenant, p, &scope).await?,
    };
    // Names of the groups and of the offers listed only: grouped by segment at 1M traces the
    // rows named ~3,100 offers (20 segments of ~160), one index probe each, for 400 listed,
    // ~200 of them distinct.
    let group_ids: Vec<String> = ranked.iter().map(|g| g.group_id.clone()).collect();
    let listed: BTreeSet<&str> = ranked.iter().flat_map(|g| g.offers.iter().map(|o| o.offer_id.as_str())).collect();
    let offer_ids: Vec<String> = listed.into_iter().map(str::to_owned).collect();
    let entity = match group_by {
        GroupBy::Channel => "channel",
        GroupBy::Category => "category",
        GroupBy::Segment => "segment",
    };
    let (group_names, offer_names) =
        tokio::try_join!(p.names(pool, tenant, entity, &group_ids), p.names(pool, tenant, "offer", &offer_ids))?;
    Body::json(&build(group_by, ranked, &group_names, &offer_names))
}

/// Grouped by segment: the active, materialized segments (only the requested one when
/// segmentId is given), each offer's counters from the segment's wide checkpoints, ranked on
/// the ids borrowed from the values: only the listed offers are copied out (20 a segment of
/// ~190 at 10M traces; BENCHMARKS.md "Reads, eighth pass").
async fn by_segment(pool: &PgPool, tenant: &str, p: &Params, scope: &SegmentScope) -> ApiResult<Vec<Ranked>> {
    let mut groups = Vec::new();
    for window in segment_windows(pool, tenant, p, scope, ACTIVE_SEGMENTS).await? {
        let mut offers = window.offers()?;
        // A group is a segment with activity in the window (as `rank` makes groups of rows).
        if offers.is_empty() {
            continue;
        }
        let impressions = offers.iter().map(|(_, o)| o.impressions).sum();
        top(&mut offers, |(id, o)| (o.conversions, o.impressions, id));
        let offers = offers
            .into_iter()
            .map(|(offer_id, o)| Row {
                group_id: window.segment_id.clone(),
                offer_id: offer_id.to_owned(),
                impressions: o.impressions,
                conversions: o.conversions,
                revenue_micros: Micros(o.revenue_micros),
            })
            .collect();
        groups.push(Ranked { group_id: window.segment_id.clone(), impressions, offers });
    }
    sort_groups(&mut groups);
    Ok(groups)
}

/// A group's top offers and its impressions over all its offers.
struct Ranked {
    group_id: String,
    impressions: i64,
    offers: Vec<Row>,
}

/// The groups by impressions (then id), each with its top [`TOP`] offers by conversions, then
/// impressions, then id.
fn rank(rows: Vec<Row>) -> Vec<Ranked> {
    let mut by_group: HashMap<String, Vec<Row>> = HashMap::new();
    for r in rows {
        // The group's id copied once, not once per row.
        match by_group.get_mut(&r.group_id) {
            Some(offers) => offers.push(r),
            None => {
                by_group.insert(r.group_id.clone(), vec![r]);
            }
        }
    }
    let mut groups: Vec<Ranked> = by_group
        .into_iter()
        .map(|(group_id, mut offers)| {
            let impressions = offers.iter().map(|o| o.impressions).sum();
            top(&mut offers, |o| (o.conversions, o.impressions, o.offer_id.as_str()));
            Ranked { group_id, impressions, offers }
        })
        .collect();
    sort_groups(&mut groups);
    groups
}

/// Keeps the first [`TOP`] of `offers` by conversions, then impressions (both descending), then
/// id, in that order: a selection, then a sort of the ones kept.
fn top<T>(offers: &mut Vec<T>, key: impl Fn(&T) -> (i64, i64, &str)) {
    let order = |a: &T, b: &T| {
        let ((ca, ia, ida), (cb, ib, idb)) = (key(a), key(b));
        cb.cmp(&ca).then(ib.cmp(&ia)).then_with(|| ida.cmp(idb))
    };
    if offers.len() > TOP {
        offers.select_nth_unstable_by(TOP - 1, order);
        offers.truncate(TOP);
    }
    // Ids are distinct within a group: the order is total, so an unstable sort is exact.
    offers.sort_unstable_by(order);
}

/// Groups by impressions (descending), then id.
fn sort_groups(groups: &mut [Ranked]) {
    groups.sort_by(|a, b| b.impressions.cmp(&a.impressions).then_with(|| a.group_id.cmp(&b.group_id)));
}

fn build(
    group_by: GroupBy,
    ranked: Vec<Ranked>,
    group_names: &HashMap<String, String>,
    offer_names: &HashMap<String, String>,
) -> Grouped {
    let groups = ranked
        .into_iter()
        .map(|Ranked { group_id: gid, offers, .. }| {
            let gname = group_names.get(&gid).cloned().unwrap_or_else(|| gid.clone());
            let offers = offers
                .into_iter()
                .map(|Row { offer_id: oid, impressions: imp, conversions: conv, revenue_micros: rev, .. }| GroupOffer {
                    name: offer_names.get(&oid).cloned().unwrap_or_else(|| oid.clone()),
                    offer_id: oid,
                    impressions: imp,
                    conversions: conv,
                    revenue: to_money(rev.0),
                    conversion_rate: percent_string(conv, imp),
                    segment_id: (group_by == GroupBy::Segment).then(|| gid.clone()),
                    segment_name: (group_by == GroupBy::Segment).then(|| gname.clone()),
                })
                .collect();
            Group { group_name: gname, group_id: gid, offers }
        })
        .collect();
    Grouped { groups, group_by: group_by.as_str() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_impressions_and_offers_by_conversions() {
        let row = |group_id: &str, offer_id: &str, impressions, conversions, revenue| Row {
            group_id: group_id.into(),
            offer_id: offer_id.into(),
            impressions,
            conversions,
            revenue_micros: Micros(revenue),
        };
        let rows: Vec<Row> =
            vec![row("ch1", "o1", 10, 1, 0), row("ch1", "o2", 5, 2, 0), row("ch2", "o1", 30, 0, 2_500_000)];
        let names = HashMap::from([("ch2".to_string(), "Email".to_string())]);
        let r = build(GroupBy::Channel, rank(rows), &names, &HashMap::new());
        assert_eq!(r.groups[0].group_name, "Email");
        assert_eq!(r.groups[1].offers.iter().map(|o| o.offer_id.as_str()).collect::<Vec<_>>(), ["o2", "o1"]);
        assert_eq!(r.groups[0].offers[0].revenue, 2.5);
        assert!(r.groups[0].offers[0].segment_id.is_none());
    }

    #[test]
    fn bad_group_by_is_rejected() {
        assert!(GroupBy::parse(Some("offer")).is_err());
        assert_eq!(GroupBy::parse(None).unwrap(), GroupBy::Channel);
    }
}
