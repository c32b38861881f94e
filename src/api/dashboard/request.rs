//! What each dashboard type reads, in one place next to the dispatch (`mod.rs`). A request is
//! parsed and validated before the cache, and its cache key is built from what its type reads
//! alone, canonically: a parameter the type does not read (a dashboard's `_=<timestamp>`
//! cache-buster, `days` given to `summary`) neither fails the request nor changes its key, so
//! it cannot bypass the cache. A type sees only its declared parameters ([`Params`]), so it
//! cannot read one the key leaves out; a unit test checks each module's reads against [`SPECS`].

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, Utc};

use super::{Params, TYPES};
use crate::api::cache;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::text;
use crate::api::window::Window;

/// One dashboard type's inputs.
#[derive(Debug)]
pub struct TypeSpec {
    pub name: &'static str,
    /// Reads the window (`days`, `asOf`): its key holds the days and the resolved date.
    pub window: bool,
    /// The other parameters it reads.
    pub params: &'static [&'static str],
}

const fn spec(name: &'static str, window: bool, params: &'static [&'static str]) -> TypeSpec {
    TypeSpec { name, window, params }
}

/// Every type of [`TYPES`], in the same order.
pub const SPECS: [TypeSpec; 18] = [
    spec("summary", false, &[]),
    spec("acceptance_rate", true, &["segmentId"]),
    spec("offer_performance", true, &["segmentId"]),
    spec("channel_effectiveness", true, &["segmentId"]),
    spec("budget_burn", false, &[]),
    spec("funnel", false, &[]),
    spec("attribution_summary", true, &[]),
    spec("daily_trend", true, &["segmentId"]),
    spec("model_metrics_trend", true, &["modelId"]),
    spec("latency_trend", true, &[]),
    spec("offer_performance_grouped", true, &["groupBy", "segmentId"]),
    spec("revenue_trend", true, &["segmentId"]),
    // Suppressions active now: `days` is ignored (SPEC 5.1).
    spec("policy_impact", false, &[]),
    spec("score_distribution", true, &["groupBy", "filterId"]),
    spec("degraded_scoring", true, &[]),
    spec("selection_frequency", true, &["segmentId", "channelId", "decisionFlowId", "categoryId"]),
    spec("anomaly_candidates", true, &["baselineDays"]),
    spec("why_not_ranked", true, &["offerId", "segmentId"]),
];

/// A validated dashboard request.
pub struct DashboardRequest {
    pub spec: &'static TypeSpec,
    pub params: Params,
}

impl DashboardRequest {
    pub fn parse(raw: &HashMap<String, String>) -> ApiResult<Self> {
        DashboardRequest::parse_on(raw, Utc::now().date_naive())
    }

    /// [`DashboardRequest::parse`] on a given current date (UTC).
    pub fn parse_on(raw: &HashMap<String, String>, now: NaiveDate) -> ApiResult<Self> {
        let name = text(raw, "type")?.unwrap_or("summary");
        let spec = SPECS.iter().find(|s| s.name == name).ok_or_else(|| {
            ApiError::BadRequest(format!("unknown type {name:?}; valid types are: {}", TYPES.join(", ")))
        })?;
        // Checked for every type (a bad `days` is a 400 whatever the type), before the cache.
        let window = Window::parse_on(raw.get("days").map(String::as_str), raw.get("asOf").map(String::as_str), now)?;
        let mut read = HashMap::new();
        for name in spec.params {
            if let Some(v) = text(raw, name)? {
                read.insert((*name).to_owned(), v.to_owned());
            }
        }
        Ok(DashboardRequest { spec, params: Params { raw: read, window } })
    }

    /// The cache key: the type, its window (days and resolved date, so that `asOf` equal to
    /// today and no `asOf` share an entry, and a new day starts a new one) and the non-empty
    /// parameters it reads, in name order.
    pub fn cache_key(&self, namespace: &str, version: i64, tenant: &str) -> String {
        let mut canonical: BTreeMap<&str, String> = BTreeMap::new();
        canonical.insert("type", self.spec.name.to_owned());
        if self.spec.window {
            canonical.insert("days", self.params.window.days.to_string());
            canonical.insert("asOf", self.params.window.today.to_string());
        }
        for (k, v) in &self.params.raw {
            canonical.insert(k.as_str(), v.clone());
        }
        cache::key(namespace, version, tenant, &canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    fn key(query: &[(&str, &str)]) -> ApiResult<String> {
        let raw = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Ok(DashboardRequest::parse_on(&raw, now())?.cache_key("db", 1, "t"))
    }

    #[test]
    fn specs_list_every_type_in_order() {
        let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        assert_eq!(names, TYPES);
    }

    #[test]
    fn unknown_and_unread_parameters_stay_out_of_the_key() {
        let base = key(&[("type", "daily_trend"), ("days", "7")]).unwrap();
        assert_eq!(key(&[("type", "daily_trend"), ("days", "7"), ("_", "1733000000000")]).unwrap(), base);
        // A parameter of another type, an empty one, and the defaults spelled out.
        assert_eq!(key(&[("type", "daily_trend"), ("offerId", "o1"), ("segmentId", "")]).unwrap(), base);
        assert_eq!(key(&[("type", "daily_trend"), ("days", "7"), ("asOf", "2026-03-01")]).unwrap(), base);
        // What the type reads does change it.
        assert_ne!(key(&[("type", "daily_trend"), ("segmentId", "s1")]).unwrap(), base);
        assert_ne!(key(&[("type", "daily_trend"), ("days", "8")]).unwrap(), base);
        assert_ne!(key(&[("type", "daily_trend"), ("asOf", "2026-02-28")]).unwrap(), base);
        assert_ne!(key(&[("type", "revenue_trend")]).unwrap(), base);
        // A type without a window ignores days and asOf (they are still validated).
        let summary = key(&[("type", "summary")]).unwrap();
        assert_eq!(key(&[("days", "30"), ("asOf", "2026-01-01")]).unwrap(), summary, "summary is the default");
        assert!(key(&[("type", "summary"), ("days", "0")]).is_err());
        // Parameter order never matters.
        assert_eq!(
            key(&[("type", "selection_frequency"), ("channelId", "c"), ("categoryId", "k")]).unwrap(),
            key(&[("categoryId", "k"), ("channelId", "c"), ("type", "selection_frequency")]).unwrap()
        );
    }

    #[test]
    fn types_see_only_what_they_declare_and_bad_values_are_400() {
        let raw: HashMap<String, String> = [("type", "why_not_ranked"), ("offerId", "o1"), ("channelId", "c1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = DashboardRequest::parse_on(&raw, now()).unwrap();
        assert_eq!((r.params.get("offerId"), r.params.get("channelId")), (Some("o1"), None));
        assert!(key(&[("type", "nope")]).is_err());
        assert!(key(&[("type", "why_not_ranked"), ("offerId", "o\0")]).is_err());
        assert!(key(&[("type", "daily_trend"), ("asOf", "+99999-01-01")]).is_err());
        // A NUL in a parameter the type does not read is ignored like the rest of it.
        assert!(key(&[("type", "daily_trend"), ("offerId", "o\0")]).is_ok());
    }

    /// Each type module's source reads exactly the parameters its spec declares: a parameter
    /// read but not declared would be invisible to it (and absent from the key).
    #[test]
    fn each_module_reads_what_its_spec_declares() {
        let sources: [(&str, &str); 18] = [
            ("summary", include_str!("summary.rs")),
            ("acceptance_rate", include_str!("acceptance_rate.rs")),
            ("offer_performance", include_str!("offer_performance.rs")),
            ("channel_effectiveness", include_str!("channel_effectiveness.rs")),
            ("budget_burn", include_str!("budget_burn.rs")),
            ("funnel", include_str!("funnel.rs")),
            ("attribution_summary", include_str!("attribution_summary.rs")),
            ("daily_trend", include_str!("daily_trend.rs")),
            ("model_metrics_trend", include_str!("model_metrics_trend.rs")),
            ("latency_trend", include_str!("latency_trend.rs")),
            ("offer_performance_grouped", include_str!("offer_performance_grouped.rs")),
            ("revenue_trend", include_str!("revenue_trend.rs")),
            ("policy_impact", include_str!("policy_impact.rs")),
            ("score_distribution", include_str!("score_distribution.rs")),
            ("degraded_scoring", include_str!("degraded_scoring.rs")),
            ("selection_frequency", include_str!("selection_frequency.rs")),
            ("anomaly_candidates", include_str!("anomaly_candidates.rs")),
            ("why_not_ranked", include_str!("why_not_ranked.rs")),
        ];
        for (spec, (name, src)) in SPECS.iter().zip(sources) {
            assert_eq!(spec.name, name);
            let mut reads: Vec<&str> = src.split("p.get(\"").skip(1).filter_map(|s| s.split('"').next()).collect();
            // `segment_scope` (mod.rs) reads segmentId for the type.
            if src.contains("segment_scope(") {
                reads.push("segmentId");
            }
            reads.sort_unstable();
            reads.dedup();
            let mut declared = spec.params.to_vec();
            declared.sort_unstable();
            assert_eq!(reads, declared, "{name}");
            let window = src.contains("p.window") || src.contains("fetch_window(");
            assert_eq!(window, spec.window, "{name} window");
        }
    }
}
