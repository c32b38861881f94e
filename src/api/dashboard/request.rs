//! What each dashboard type reads, in one place next to the dispatch (`mod.rs`). A request is
//! parsed and validated before the cache, and its cache key is built from what its type reads
//! alone, canonically: a parameter the type does not read (a dashboard's `_=<timestamp>`
//! cache-buster, `days` given to `summary`) neither fails the request nor changes its key, so
//! it cannot bypass the cache. A type sees only its declared parameters ([`Params`]), so it
//! cannot read one the key leaves out (reading an undeclared one is a debug assertion).

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, Utc};

use super::kind::DashboardType;
use super::read::Params;
use crate::api::cache;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::text;
use crate::api::window::Window;

/// A validated dashboard request.
pub struct DashboardRequest {
    pub kind: DashboardType,
    pub params: Params,
}

impl DashboardRequest {
    pub fn parse(raw: &HashMap<String, String>) -> ApiResult<Self> {
        DashboardRequest::parse_on(raw, Utc::now().date_naive())
    }

    /// [`DashboardRequest::parse`] on a given current date (UTC).
    pub fn parse_on(raw: &HashMap<String, String>, now: NaiveDate) -> ApiResult<Self> {
        let kind: DashboardType = text(raw, "type")?.unwrap_or("summary").parse().map_err(ApiError::BadRequest)?;
        // Checked for every type (a bad `days` is a 400 whatever the type), before the cache.
        let window = Window::parse_on(raw.get("days").map(String::as_str), raw.get("asOf").map(String::as_str), now)?;
        let mut read = HashMap::new();
        for name in kind.params() {
            if let Some(v) = text(raw, name)? {
                read.insert((*name).to_owned(), v.to_owned());
            }
        }
        Ok(DashboardRequest { kind, params: Params::new(kind, read, window) })
    }

    /// The cache key: the type, its window (days and resolved date, so that `asOf` equal to
    /// today and no `asOf` share an entry, and a new day starts a new one) and the non-empty
    /// parameters it reads, in name order.
    pub fn cache_key(&self, namespace: &str, version: i64, tenant: &str) -> String {
        let mut canonical: BTreeMap<&str, String> = BTreeMap::new();
        canonical.insert("type", self.kind.name().to_owned());
        if self.kind.reads_window() {
            canonical.insert("days", self.params.window.days.to_string());
            canonical.insert("asOf", self.params.window.today.to_string());
        }
        for (k, v) in self.params.read() {
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
        let read: Vec<(&String, &String)> = r.params.read().collect();
        assert_eq!(read, [(&"offerId".to_owned(), &"o1".to_owned())], "channelId is not why_not_ranked's");
        assert!(key(&[("type", "nope")]).is_err());
        assert!(key(&[("type", "why_not_ranked"), ("offerId", "o\0")]).is_err());
        assert!(key(&[("type", "daily_trend"), ("asOf", "+99999-01-01")]).is_err());
        // A NUL in a parameter the type does not read is ignored like the rest of it.
        assert!(key(&[("type", "daily_trend"), ("offerId", "o\0")]).is_ok());
    }
}
