//! The one HTTP error type. Policy: client errors carry a human sentence saying what to fix;
//! server errors are logged once here with their cause and answer a generic sentence, so no
//! internal detail (SQL, hostnames) leaks to clients. Every error body is `{"error": "…"}`:
//! extractor rejections (`extract`), unknown routes, wrong methods, timeouts and panics
//! (`guard`) are all turned into an `ApiError` and answered here.
//!
//! Overload is told apart from failure: a bound on this process's work that refuses a request
//! (`Overloaded`: rate of computations, pool exhausted) answers 503 with `Retry-After`, a
//! request or query that ran past its time limit (`Timeout`) 504, and only a fault 500.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// PostgreSQL's `query_canceled`: raised when `statement_timeout` ends a query.
const QUERY_CANCELED: &str = "57014";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid X-API-Key header is required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bound on concurrent work refused the request; it may succeed after `Retry-After`.
    #[error("the server is busy; retry after {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// The request (or one of its queries) ran past its time limit.
    #[error("{0}")]
    Timeout(String),
    /// A service the answer depends on failed (the narrative provider).
    #[error("{0}")]
    BadGateway(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
    /// Another request's error, answered to the requests that waited for its computation
    /// (single flight): the same status, sentence and `Retry-After`, logged once, by it.
    #[error("{}", .0.message)]
    Shared(SharedError),
}

/// What requests sharing a failed computation answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedError {
    status: StatusCode,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Shared(s) => s.status,
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after_secs } | ApiError::Overloaded { retry_after_secs } => {
                Some(*retry_after_secs)
            }
            ApiError::Shared(s) => s.retry_after_secs,
            _ => None,
        }
    }

    /// The answer to give the requests that shared this one's computation.
    pub fn share(&self) -> SharedError {
        SharedError { status: self.status(), message: self.to_string(), retry_after_secs: self.retry_after_secs() }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
                tracing::warn!(error = %db, "an API query ran past DV_API_STATEMENT_TIMEOUT_MS");
                count_refusal("statement_timeout");
                ApiError::Timeout("a database query took longer than the server's limit; try a narrower request".into())
            }
            // Every connection of the API pool stayed busy for the acquire timeout: overload.
            sqlx::Error::PoolTimedOut => {
                count_refusal("overloaded");
                ApiError::Overloaded { retry_after_secs: 1 }
            }
            _ => ApiError::Internal(e.into()),
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

/// An extractor's rejection keeps its status class and says what was wrong with the request.
fn rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
        s if s.is_server_error() => ApiError::Internal(anyhow::anyhow!("extractor failed: {text}")),
        _ => ApiError::BadRequest(text),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        rejection(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        rejection(r.status(), r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let mut resp = (self.status(), Json(json!({ "error": self.to_string() }))).into_response();
        if let Some(secs) = self.retry_after_secs() {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Counts a request the API refused to serve in full (`api_refused_total{reason}`): overload,
/// timeouts. Here, next to the errors they answer with, so that every layer can count.
pub fn count_refusal(reason: &'static str) {
    metrics::counter!("api_refused_total", "reason" => reason).increment(1);
}
