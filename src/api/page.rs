//! The dashboard page at `/` (issue 15): its HTML, scripts and styles are files under `web/`,
//! embedded in the binary at build time, so the page works offline, a deploy is still one file
//! and what is served is what was tested. The page itself holds no data: it calls the same API
//! as every other client, with the key its user enters.
//!
//! Assets answer with an `ETag` (a hash of their bytes) and `Cache-Control: no-cache`: a
//! browser revalidates each load and gets a bodiless 304 until a new build changes the file,
//! so an upgrade is never hidden behind a stale cached script.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::cache::etag;
use super::error::ApiError;
use super::state::AppState;

/// Scripts only from this origin, nothing fetched from elsewhere, no framing. Inline styles are
/// allowed because Chart.js sizes its canvases through `style`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset { path: $path, content_type: $type, body: include_bytes!(concat!("../../web/", $path)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the pages load. `index.html` is served at `/`, `docs.html` (Swagger UI over the
/// OpenAPI document) at `/api/v1/docs`, the rest under `/assets/`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/state.js", JS),
    asset!("js/render.js", JS),
    asset!("js/charts.js", JS),
    asset!("js/panels.js", JS),
    asset!("js/panels_more.js", JS),
    asset!("js/traces.js", JS),
    asset!("js/explain.js", JS),
    asset!("vendor/chart.umd.min.js", JS),
    asset!("vendor/chart.js.LICENSE.md", "text/markdown; charset=utf-8"),
    asset!("docs.html", "text/html; charset=utf-8"),
    asset!("js/docs.js", JS),
    asset!("vendor/swagger-ui/swagger-ui-bundle.js", JS),
    asset!("vendor/swagger-ui/swagger-ui.css", "text/css; charset=utf-8"),
    asset!("vendor/swagger-ui/LICENSE", "text/plain; charset=utf-8"),
];

/// The ETag of each asset, in `ASSETS` order: hashed once, on first use.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| ASSETS.iter().map(|a| etag(a.body)).collect());

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/api/v1/docs", get(docs)).route("/assets/{*path}", get(asset))
}

const PAGES: [&str; 2] = ["index.html", "docs.html"];

fn position(path: &str) -> Option<usize> {
    ASSETS.iter().position(|a| a.path == path)
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn docs(headers: HeaderMap) -> Response {
    serve(position("docs.html").expect("docs.html is an asset"), &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    match position(&path) {
        // A page has one address (`/`, `/api/v1/docs`).
        Some(i) if !PAGES.contains(&path.as_str()) => Ok(serve(i, &headers)),
        _ => Err(ApiError::NotFound(format!("no asset {path}"))),
    }
}

fn serve(i: usize, request: &HeaderMap) -> Response {
    let (asset, tag) = (&ASSETS[i], &ETAGS[i]);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    if PAGES.contains(&asset.path) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_imports_is_served() {
        // A module imported by another but missing here would load as a JSON 404 and break the
        // page in the browser only: check every `from "./x.js"` and every `src=`/`href=` now.
        let served = |p: &str| ASSETS.iter().any(|a| a.path == p);
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js") && a.path.starts_with("js/")) {
            let text = std::str::from_utf8(a.body).unwrap();
            for import in text.split("from \"./").skip(1) {
                let file = &import[..import.find('"').unwrap()];
                assert!(served(&format!("js/{file}")), "{} imports {file}, which is not served", a.path);
            }
        }
        for page in PAGES {
            let html = std::str::from_utf8(ASSETS[position(page).unwrap()].body).unwrap();
            for attr in ["src=\"/assets/", "href=\"/assets/"] {
                for link in html.split(attr).skip(1) {
                    let file = &link[..link.find('"').unwrap()];
                    assert!(served(file), "{page} links {file}, which is not served");
                }
            }
        }
    }
}
