//! What every request leaves behind (issue 16): its latency in the metrics, per route and per
//! dashboard type (the unit users care about); an access log line; and a request id, the
//! client's `X-Request-Id` when it sent a usable one, else a new one, returned in
//! `X-Request-Id` and written in the log line, so a user's report finds its line.
//!
//! The access log is the `decision_views::access` target at `info`: `RUST_LOG` switches it off
//! (`RUST_LOG=info,decision_views::access=off`) or alone (`RUST_LOG=warn,decision_views::access=info`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;

use super::dashboard::DashboardType;

pub const REQUEST_ID: &str = "x-request-id";

/// Longest client request id kept; a longer or unreadable one is replaced.
const MAX_ID_LEN: usize = 128;

/// The client's id if it is short visible ASCII, else 16 random bytes in hex.
fn request_id(req: &Request) -> HeaderValue {
    let given = req.headers().get(REQUEST_ID).filter(|v| {
        let b = v.as_bytes();
        !b.is_empty() && b.len() <= MAX_ID_LEN && b.iter().all(|c| c.is_ascii_graphic())
    });
    given.cloned().unwrap_or_else(|| {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        HeaderValue::from_str(&hex::encode(bytes)).expect("hex is a header value")
    })
}

/// A documented dashboard type's name or "unknown": bounded label values.
fn dashboard_type(route: &str, req: &Request) -> String {
    if route != "/api/v1/dashboard-data" {
        return String::new();
    }
    let t = req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("type=")));
    match t {
        Some(t) => t.parse::<DashboardType>().map_or("unknown", DashboardType::name).to_owned(),
        None => DashboardType::Summary.name().to_owned(),
    }
}

pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let kind = dashboard_type(&route, &req);
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let mut resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    metrics::histogram!(
        "http_request_duration_seconds",
        "route" => route,
        "type" => kind,
        "status" => status.to_string()
    )
    .record(elapsed.as_secs_f64());
    tracing::info!(
        target: "decision_views::access",
        request_id = id.to_str().unwrap_or_default(),
        method = %method,
        uri = %uri,
        status,
        ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    resp.headers_mut().insert(REQUEST_ID, id);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn with(id: Option<&str>) -> Request {
        let mut b = Request::builder().uri("/x");
        if let Some(id) = id {
            b = b.header(REQUEST_ID, id);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn a_usable_client_id_is_kept_and_any_other_replaced() {
        assert_eq!(request_id(&with(Some("abc-123"))), "abc-123");
        for bad in ["", "has space", &"x".repeat(129)] {
            let id = request_id(&with(Some(bad)));
            assert_ne!(id, bad);
            assert_eq!(id.len(), 32, "a new id for {bad:?}");
        }
        assert_ne!(request_id(&with(None)), request_id(&with(None)), "new ids differ");
    }
}
