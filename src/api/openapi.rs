//! The OpenAPI 3.1 document of the API (issue 15). Each module's router is an `OpenApiRouter`
//! whose routes come with their handlers' `#[utoipa::path]` annotations, so the document is
//! assembled from the very routes that are served (`super::router`); this module holds what
//! they share (the auth scheme, the tenant header, the error answers) and serves the document
//! at `/api/v1/openapi.json` and a browsable Swagger UI at `/api/v1/docs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Required, Type};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

/// The body of every error answer.
#[derive(serde::Serialize, ToSchema)]
pub struct ErrorBody {
    /// One sentence saying what was refused and why.
    pub error: String,
}

pub const API_KEY: &str = "apiKey";

/// What the derived paths do not say: the title, the key scheme, the tags.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "decision-views",
        description = "Exact, real-time dashboard analytics and decision audits of a next-best-action platform, \
                       served from views that Kafka events are applied to exactly once. Every `/api/v1` endpoint \
                       takes `X-API-Key` and, for tenant data, `X-Tenant-Id`."
    ),
    modifiers(&KeyScheme),
    components(schemas(ErrorBody)),
    tags(
        (name = "dashboards", description = "GET /api/v1/dashboard-data: the 18 dashboard types"),
        (name = "traces", description = "Decision traces and their explanations"),
        (name = "tenant", description = "Tenant settings and the audit log"),
        (name = "operations", description = "Ingest status, dead letters, health and metrics"),
    )
)]
pub struct ApiDoc;

struct KeyScheme;

impl Modify for KeyScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A key made by `decision-views create-api-key`: a tenant's with a role (viewer, editor, admin), or a \
             platform operator's (ingest status only).",
            ))),
        );
    }
}

/// The `X-Tenant-Id` header of tenant endpoints.
pub struct TenantHeader;

/// `X-Tenant-Id` where a platform key needs none (a tenant key still does).
pub struct OptionalTenantHeader;

/// Visible ASCII without surrounding spaces: a header value the server reads as given (one it
/// cannot read, or only spaces, counts as missing: 400).
const HEADER_TEXT: &str = "^[!-~]([ -~]*[!-~])?$";

fn tenant_header(required: bool, description: &str) -> Vec<Parameter> {
    let schema = utoipa::openapi::ObjectBuilder::new().schema_type(Type::String).pattern(Some(HEADER_TEXT));
    vec![ParameterBuilder::new()
        .name("X-Tenant-Id")
        .parameter_in(ParameterIn::Header)
        .required(if required { Required::True } else { Required::False })
        .description(Some(description))
        .schema(Some(schema))
        .build()]
}

impl IntoParams for TenantHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        tenant_header(true, "The tenant the key belongs to (a key of another tenant is refused, 403).")
    }
}

impl IntoParams for OptionalTenantHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        tenant_header(false, "The tenant, with a tenant key (required then); a platform key needs none.")
    }
}

/// `limit` and `offset` of the paged lists (`extract::page`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Paging {
    /// Page size (default 50); above 200 reads as 200.
    #[param(minimum = 0)]
    limit: Option<i64>,
    /// Rows to skip (default 0), at most `DV_API_MAX_OFFSET` (400 past it: narrow the filters).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

fn error(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::response::Response> {
    let mut r = ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(ErrorBody::schema())).build());
    if retry_after {
        r = r.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    RefOr::T(r.build())
}

/// The refusals every `/api/v1` endpoint may answer, each `{"error": "…"}`.
pub struct Refusals;

impl IntoResponses for Refusals {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        [
            ("400", error("A parameter, path or body the endpoint cannot take", false)),
            ("401", error("No key, or an unknown one", false)),
            ("403", error("A key of another tenant, a role too low, or an opt-in the tenant has not made", false)),
            ("404", error("No such resource for this tenant, or no such route", false)),
            ("413", error("A body over 2 MB", false)),
            ("415", error("A body that is not application/json", false)),
            ("429", error("The tenant's rate limit for this kind of request", true)),
            ("500", error("An internal error (logged; nothing of it is shown)", false)),
            ("503", error("Too many uncached computations at once, or a dependency unavailable", true)),
            ("504", error("The request or its query took longer than the server's limit", false)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// `/api/v1/openapi.json` (the document) and `/api/v1/docs` (Swagger UI over it).
pub fn router<S: Clone + Send + Sync + 'static>(doc: &utoipa::openapi::OpenApi) -> Router<S> {
    let json: Arc<str> = doc.to_pretty_json().expect("the document serializes").into();
    Router::new().route(
        "/api/v1/openapi.json",
        get(move || {
            let json = json.clone();
            async move {
                let mut resp: Response = json.to_string().into_response();
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                resp
            }
        }),
    )
}
