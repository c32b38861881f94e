//! Extractors whose rejections are [`ApiError`]s, so a malformed query, path or body answers
//! `{"error": …}` like every other error (axum's own rejections answer plain text), and the one
//! reader of text parameters, which refuses NUL: PostgreSQL's text and jsonb cannot hold it, so
//! a `%00` reaching a query would fail it with a 500 instead of a 400.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

/// The query string as a map. A repeated parameter keeps its last value; parameters an endpoint
/// does not read are ignored (dashboards append cache-busters such as `_=<timestamp>`).
pub struct ApiQuery(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(map))
    }
}

/// A path parameter.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// A JSON body (`Content-Type: application/json`, at most axum's default 2 MB).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// A text parameter an endpoint reads: `None` when absent or empty, 400 when it holds NUL.
pub fn text<'a>(raw: &'a HashMap<String, String>, name: &str) -> ApiResult<Option<&'a str>> {
    match raw.get(name).map(String::as_str).filter(|v| !v.is_empty()) {
        Some(v) if v.contains('\0') => {
            Err(ApiError::BadRequest(format!("{name} must not contain a NUL character (%00)")))
        }
        v => Ok(v),
    }
}

/// Entries per page of the paginated endpoints (decision traces, dead letters): the default
/// `limit`, and its cap (a larger one is capped, docs/api.md 5.3).
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// `limit` and `offset` of a paginated endpoint: non-negative integers (400 otherwise); a
/// `limit` above [`MAX_LIMIT`] is capped, an `offset` above `max_offset` is a 400: PostgreSQL
/// reads and discards every row an offset skips, so deep pages are unbounded work.
pub fn page(raw: &HashMap<String, String>, max_offset: i64) -> ApiResult<(i64, i64)> {
    let limit = non_negative(raw, "limit", DEFAULT_LIMIT)?.min(MAX_LIMIT);
    let offset = non_negative(raw, "offset", 0)?;
    if offset > max_offset {
        return Err(ApiError::BadRequest(format!(
            "offset must be at most {max_offset}, got {offset}; narrow the filters to reach older entries"
        )));
    }
    Ok((limit, offset))
}

fn non_negative(raw: &HashMap<String, String>, name: &str, default: i64) -> ApiResult<i64> {
    match raw.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a non-negative integer, got {v:?}"))),
    }
}

/// Whether any string or key of a JSON value holds NUL (jsonb refuses it).
pub fn json_has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_parameters_are_absent_when_empty_and_refuse_nul() {
        let raw =
            HashMap::from([("a".to_string(), String::new()), ("b".into(), "x".into()), ("c".into(), "x\0".into())]);
        assert_eq!(text(&raw, "a").unwrap(), None);
        assert_eq!(text(&raw, "b").unwrap(), Some("x"));
        assert_eq!(text(&raw, "missing").unwrap(), None);
        assert!(matches!(text(&raw, "c"), Err(ApiError::BadRequest(m)) if m.contains("NUL")));
    }

    #[test]
    fn pages_are_bounded() {
        let q = |pairs: &[(&str, &str)]| {
            let raw: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            page(&raw, 100_000)
        };
        assert_eq!(q(&[]).unwrap(), (50, 0));
        assert_eq!(q(&[("limit", "500"), ("offset", "100000")]).unwrap(), (200, 100_000));
        for bad in [("offset", "100001"), ("offset", "9223372036854775807"), ("offset", "-1"), ("limit", "1.5")] {
            assert!(matches!(q(&[bad]), Err(ApiError::BadRequest(_))), "{bad:?}");
        }
        assert!(matches!(q(&[("offset", "100001")]), Err(ApiError::BadRequest(m)) if m.contains("at most 100000")));
    }

    #[test]
    fn nul_is_found_anywhere_in_a_json_value() {
        assert!(!json_has_nul(&json!({"a": [1, "b", {"c": null}]})));
        assert!(json_has_nul(&json!({"a": [1, "b\u{0}"]})));
        assert!(json_has_nul(&json!({"a\u{0}": 1})));
    }
}
