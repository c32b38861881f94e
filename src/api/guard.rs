//! The bounds and safety nets around every request (docs/api.md 5.4, issue 10): a request timeout, a
//! bound on concurrent uncached computations, a panic turned into a JSON 500, and JSON answers
//! for unknown routes and wrong methods. Each ends in an [`ApiError`], so every refusal has the
//! one error body and status mapping (`error.rs`).
//!
//! Each refusal is counted in `api_refused_total{reason}`: `request_timeout`,
//! `statement_timeout` (counted where the database error is mapped), `overloaded` and `panic`.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::catch_panic::CatchPanicLayer;

use super::error::{count_refusal, ApiError, ApiResult};

/// What a client is told to wait after an `Overloaded` answer: computations last milliseconds,
/// so a second is enough for the queue to drain, and it is the smallest `Retry-After`.
const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;

/// Wraps `routes` (all of them: call it after the last route) in what every route gets: JSON
/// 404 and 405 answers, the request timeout, and outside it the panic catcher, so that a panic
/// anywhere inside answers a JSON 500 on a connection that stays open.
pub fn protect<S: Clone + Send + Sync + 'static>(routes: Router<S>, request_timeout: Duration) -> Router<S> {
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// Uncached computations running at once in this process (`DV_API_MAX_CONCURRENT_COMPUTATIONS`).
/// A permit is held while a dashboard answer is computed (a cache miss; coalesced waiters and
/// hits need none) and while a traces or dead-letters page is read. Without it, a burst of
/// uncached requests queued inside the connection pool, each holding memory and its client,
/// until the request timeout; with it the excess waits `queue_timeout` at most, then is told to
/// retry (503 with `Retry-After`).
#[derive(Clone)]
pub struct Computations {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl Computations {
    pub fn new(max: usize, queue_timeout: Duration) -> Self {
        Computations { permits: Arc::new(Semaphore::new(max.max(1))), queue_timeout }
    }

    /// A permit, waiting up to the queue timeout for one; 503 past it. Drop it when done.
    pub async fn admit(&self) -> ApiResult<OwnedSemaphorePermit> {
        match tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or closed (never: the semaphore is not closed while the state lives).
            _ => {
                count_refusal("overloaded");
                Err(ApiError::Overloaded { retry_after_secs: OVERLOADED_RETRY_AFTER_SECS })
            }
        }
    }

    /// Permits free right now (tests wait on it).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// Middleware: a request that has not answered within `limit` gets 504 and its handler future
/// is dropped (a query in flight is ended by the statement timeout, which is shorter).
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            count_refusal("request_timeout");
            ApiError::Timeout(format!("the request took longer than the server's limit of {} ms", limit.as_millis()))
                .into_response()
        }
    }
}

/// `CatchPanicLayer`'s response: a panic in a handler answers the generic JSON 500 (logged once
/// with its message by `ApiError`), and hyper keeps the connection, which a panic unwinding
/// through it would have dropped without a response.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    count_refusal("panic");
    ApiError::Internal(anyhow::anyhow!("a handler panicked: {message}")).into_response()
}

/// The fallback route: 404 with a JSON body.
async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint {method} {}", uri.path()))
}

/// A known path with another method: 405 with a JSON body (axum keeps the `Allow` header).
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} does not accept {method}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn computations_past_the_bound_wait_then_are_refused() {
        let c = Computations::new(1, Duration::from_millis(20));
        let held = c.admit().await.expect("the first is admitted");
        assert_eq!(c.available(), 0);
        assert!(matches!(c.admit().await, Err(ApiError::Overloaded { retry_after_secs: 1 })));
        // A permit freed while another request waits goes to it.
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.admit().await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn panics_unknown_routes_and_wrong_methods_answer_json() {
        use axum::body::Body;
        use axum::http::Request;
        use axum::routing::get;
        use tower::ServiceExt;

        async fn panics() -> &'static str {
            panic!("a bug in a handler")
        }
        let app = protect(Router::new().route("/panic", get(panics)), Duration::from_secs(5));
        for (method, path, status, sentence) in [
            (Method::GET, "/panic", 500, "internal error"),
            (Method::GET, "/nope", 404, "no endpoint GET /nope"),
            (Method::POST, "/panic", 405, "/panic does not accept POST"),
        ] {
            let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), status, "{path}");
            let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
            assert_eq!(body, serde_json::json!({ "error": sentence }), "{path}");
        }
    }

    #[test]
    fn a_panic_answers_the_generic_json_500() {
        let resp = panic_response(Box::new("boom"));
        assert_eq!(resp.status(), 500);
        assert_eq!(resp.headers()["content-type"], "application/json");
    }
}
