//! The dashboard page at `/` in a real browser (issue 15): headless Chromium against an
//! instance filled through the broker. The test signs in as a reader would, then checks that
//! every panel shows the numbers the API answers for the same parameters, that changing the
//! window and the segment redraws, that a segment warning and a refusal are said plainly, that
//! a poll answered 304 redraws nothing, and that a newly ingested event reaches the page.

mod driver;
mod marks;
mod traces;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::api::DASHBOARD_TYPES;
use decision_views::publish::{EventTime, Workload, WorkloadShape};
use decision_views::startup::Mode;
use serde_json::{json, Value};

use crate::explain::shap::{fixture, publish_model};
use crate::helpers::{spawn_app_with, TestApp, TestEnv};
use crate::model::ts;
use driver::Browser;
use marks::{compare, Drawn, READ_PANELS};

const TENANT: &str = "tenant_0";
const SETTLE: Duration = Duration::from_secs(30);

/// A small standard workload for one tenant (every trace stored), plus model evaluations: the
/// generator makes them too rarely for a few hundred traces.
fn publish_workload(env: &TestEnv) {
    let shape = WorkloadShape {
        tenants: 1,
        customers: 400,
        segmented_customers: 400,
        segments: 4,
        days: 10,
        time: EventTime::History { traces: 600 },
        large_tenant_trace_sample_rate: 1.0,
        ..WorkloadShape::default()
    };
    let mut workload = Workload::new(shape, 15, Utc::now());
    let mut events = workload.catalog_and_segments();
    for _ in 0..600 {
        events.extend(workload.next_trace());
    }
    for g in events {
        env.publish_raw(g.topic, &g.key, g.payload.as_bytes());
    }
    for day in 0..5 {
        let at = Utc::now() - chrono::Duration::days(day);
        env.publish(
            TopicKind::ModelMetrics,
            &json!({
                "id": format!("mm_{day}"), "tenantId": TENANT, "modelId": "model_0", "modelName": "Model 0",
                "auc": 0.8 + day as f64 / 100.0, "evaluatedAt": ts(at),
                "featureImportance": [{"name": "recency", "value": 0.4}, {"name": "tenure", "value": 0.25}],
            }),
        );
    }
}

struct Page {
    browser: Browser,
    app: TestApp,
    key: String,
}

impl Page {
    async fn panels(&self, css: &str) -> Vec<Drawn> {
        let drawn: Vec<Drawn> =
            serde_json::from_value(self.browser.js(READ_PANELS, vec![json!(css)]).await).expect("panels as read");
        for d in &drawn {
            for slip in ["null", "undefined", "NaN", "[object"] {
                assert!(!d.text.contains(slip), "{} shows {slip:?}: {}", d.kind, d.text);
            }
        }
        drawn
    }

    /// Waits until no panel is loading and every one fetched a URL that `want` accepts.
    async fn settled(&self, what: &str, want: &str) {
        let script = format!(
            "return [...document.querySelectorAll('#panels .panel')].every((p) => p.dataset.state !== 'loading' \
             && (p.dataset.state === 'idle' || ({want})(p.dataset.query || '')))"
        );
        self.browser.wait_for(what, SETTLE, &script).await;
    }

    /// The API's answer to a panel's URL, with the same key.
    async fn answer(&self, url: &str) -> Value {
        let (status, body) = self.app.get(url, &self.key, TENANT).await;
        assert_eq!(status, 200, "{url}: {body}");
        body
    }

    /// Every dashboard panel compared with the API; returns the types compared.
    async fn compare_all(&self) -> BTreeSet<String> {
        let mut compared = BTreeSet::new();
        for drawn in self.panels("#panels .panel").await {
            if drawn.state == "idle" {
                continue;
            }
            assert!(
                drawn.state == "ok" || drawn.state == "warning",
                "{} is {}: {}",
                drawn.kind,
                drawn.state,
                drawn.text
            );
            let mut answer = self.answer(&drawn.query).await;
            if drawn.kind == "ingest" {
                // The views' completeness time moves on while ingest is idle: the page's may
                // be older than the answer read after it, never newer.
                let shown = &drawn.objects[0].fields.iter().find(|(f, _)| f == "dataAsOf").expect("dataAsOf shown").1;
                assert!(shown.as_str() <= answer["dataAsOf"].as_str().unwrap_or(""), "{shown} after {answer}");
                answer["dataAsOf"] = json!(shown);
            }
            if drawn.state == "warning" {
                let warning = answer["warning"].as_str().expect("a warning in the answer");
                assert!(drawn.text.contains(warning), "{}: the warning {warning:?} is not shown", drawn.kind);
            } else {
                assert!(compare(&drawn, &answer) > 0, "{}: nothing compared", drawn.kind);
            }
            compared.insert(drawn.kind);
        }
        compared
    }
}

fn screenshots() -> PathBuf {
    std::env::var_os("DV_SCREENSHOTS_DIR").map(PathBuf::from).unwrap_or_else(|| "target/screenshots".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_the_api_answers() {
    let env = TestEnv::new().await;
    publish_workload(&env);
    let key = env.api_key(TENANT, Role::Admin).await;
    let app = spawn_app_with(env, Mode::All).await;
    publish_model(&app, TENANT, "mdl_0", "Propensity GBM", &fixture("d5_t12_logistic_named")["model"]);
    app.env.wait_caught_up(Duration::from_secs(120)).await;

    let browser = Browser::start(1280, 1600).await;
    browser.client.goto(&format!("{}/", app.address)).await.unwrap();
    let page = Page { browser, app, key };
    let b = &page.browser;
    b.js(
        "window.pageErrors = []; window.addEventListener('error', (e) => window.pageErrors.push(e.message)); \
          window.addEventListener('unhandledrejection', (e) => window.pageErrors.push(String(e.reason)))",
        vec![],
    )
    .await;

    // Sign in: the form, then every panel of the default view (7 days).
    b.wait_for("the sign-in form", SETTLE, "return !document.getElementById('login').hidden").await;
    b.set("#login-key", &page.key).await;
    b.set("#login-tenant", TENANT).await;
    b.click("#login-form button[type=submit]").await;
    page.settled("the first view", "(q) => q !== ''").await;
    let types = page.compare_all().await;
    let expected: BTreeSet<String> = DASHBOARD_TYPES.iter().map(|t| t.to_string()).chain(["ingest".into()]).collect();
    let idle: Vec<_> = expected.difference(&types).collect();
    assert_eq!(idle, [&"why_not_ranked".to_string()], "only why_not_ranked waits for an offer");
    b.screenshot(&screenshots(), "dashboard-desktop").await;

    // A window, a segment, an offer and groupings: each redraws and still matches the API,
    // and the URL carries them so the view can be shared.
    b.set("#controls [name=days]", "30").await;
    b.set("#controls [name=segmentId]", "seg_01").await;
    b.click("#controls button[type=submit]").await;
    b.set("[data-type=why_not_ranked] [name=offerId]", "off_007").await;
    b.set("[data-type=offer_performance_grouped] [name=groupBy]", "segment").await;
    b.set("[data-type=score_distribution] [name=scoreGroupBy]", "channel").await;
    page.settled("the 30-day view of seg_01", "(q) => q.startsWith('/api/v1/ingest') || q.includes('days=30')").await;
    let all = page.compare_all().await;
    assert_eq!(all, expected, "every panel drawn");
    for drawn in page.panels("#panels .panel").await {
        let segmented = marks_segment(&drawn.kind);
        assert_eq!(drawn.query.contains("segmentId=seg_01"), segmented, "{}: {}", drawn.kind, drawn.query);
    }
    let url = page.browser.client.current_url().await.unwrap();
    for part in ["days=30", "segmentId=seg_01", "offerId=off_007", "groupBy=segment", "scoreGroupBy=channel"] {
        assert!(url.as_str().contains(part), "the URL {url} keeps {part}");
    }

    // An unknown segment: the panels that take one say so instead of drawing nothing.
    b.set("#controls [name=segmentId]", "seg_nobody").await;
    b.click("#controls button[type=submit]").await;
    page.settled(
        "the unknown segment",
        "(q) => q.startsWith('/api/v1/ingest') || !q.includes('segmentId') || q.includes('seg_nobody')",
    )
    .await;
    let warned: Vec<String> =
        page.panels("#panels .panel").await.into_iter().filter(|d| d.state == "warning").map(|d| d.kind).collect();
    assert_eq!(warned.len(), 8, "every segmented type warns: {warned:?}");
    page.compare_all().await;

    // Back to all customers at 7 days; a poll answered 304 redraws nothing.
    b.set("#controls [name=segmentId]", "").await;
    b.set("#controls [name=days]", "7").await;
    b.click("#controls button[type=submit]").await;
    page.settled(
        "the 7-day view",
        "(q) => q.startsWith('/api/v1/ingest') || (q.includes('days=7') && !q.includes('segmentId'))",
    )
    .await;
    let etag = || async { page.panels("[data-type=daily_trend]").await.remove(0).etag };
    let etag_before = etag().await;
    assert!(etag_before.is_some(), "the panel keeps its answer's ETag");
    b.js("document.querySelector('[data-type=daily_trend] .panel-body > *').dataset.mark = 'kept'", vec![]).await;
    tokio::time::sleep(Duration::from_secs(6)).await; // more than one poll (5 s)
    let kept = b
        .js("return document.querySelector('[data-type=daily_trend] .panel-body > *').dataset.mark || null", vec![])
        .await;
    assert_eq!(kept, json!("kept"), "a poll without news redrew the panel");
    assert_eq!(etag().await, etag_before);

    // A new impression today reaches the page within a few polls.
    let today_impressions = || async {
        let drawn = page.panels("[data-type=daily_trend]").await.remove(0);
        let rows = &drawn.tables[0].rows;
        let last = rows.last().expect("a row for today");
        last.iter().find(|(f, _)| f == "impressions").unwrap().1.replace(',', "").parse::<i64>().unwrap()
    };
    let before = today_impressions().await;
    page.app.env.publish(
        TopicKind::Interactions,
        &json!({
            "id": "int_browser_1", "tenantId": TENANT, "customerId": "cust_browser", "offerId": "off_007",
            "channelId": "ch_0", "outcome": "impression", "revenue": 0.0, "cost": 0.0, "occurredAt": ts(Utc::now()),
        }),
    );
    page.app.env.wait_caught_up(Duration::from_secs(60)).await;
    let deadline = tokio::time::Instant::now() + SETTLE;
    while today_impressions().await != before + 1 {
        assert!(tokio::time::Instant::now() < deadline, "the new impression did not appear (still {before})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(etag().await, etag_before, "a new answer, a new ETag");
    // (Panels out of view are not polled: only the one watched is compared now.)
    let drawn = page.panels("[data-type=daily_trend]").await.remove(0);
    compare(&drawn, &page.answer(&drawn.query).await);

    traces::browse(&page).await;

    assert_eq!(b.js("return window.pageErrors", vec![]).await, json!([]), "errors in the page");

    // A shared link at phone width: the state comes from the URL, the key from the tab.
    b.client.set_window_size(390, 1400).await.unwrap();
    b.client.goto(&format!("{}/?days=30", page.app.address)).await.unwrap();
    page.settled("the phone view", "(q) => q.startsWith('/api/v1/ingest') || q.includes('days=30')").await;
    page.compare_all().await;
    b.screenshot(&screenshots(), "dashboard-phone").await;

    // The API's own document, browsable: Swagger UI draws every documented operation.
    let doc = decision_views::api::openapi_document();
    let operations: usize =
        doc.paths.paths.values().map(|item| serde_json::to_value(item).unwrap().as_object().unwrap().len()).sum();
    b.client.set_window_size(1280, 1600).await.unwrap();
    b.client.goto(&format!("{}/api/v1/docs", page.app.address)).await.unwrap();
    let drawn = format!("return document.querySelectorAll('.opblock').length === {operations}");
    b.wait_for("Swagger UI's operations", SETTLE, &drawn).await;
    page.browser.stop().await;
}

fn marks_segment(kind: &str) -> bool {
    [
        "acceptance_rate",
        "offer_performance",
        "offer_performance_grouped",
        "channel_effectiveness",
        "daily_trend",
        "revenue_trend",
        "selection_frequency",
        "why_not_ranked",
    ]
    .contains(&kind)
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_validators() {
    let app = spawn_app_with(TestEnv::new().await, Mode::Api).await;
    let resp = app.client.get(format!("{}/", app.address)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let etag = h["etag"].to_str().unwrap().to_owned();
    let again = app.client.get(format!("{}/", app.address)).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let html = resp.text().await.unwrap();
    for asset in ["/assets/js/main.js", "/assets/style.css", "/assets/vendor/chart.umd.min.js"] {
        assert!(html.contains(asset), "{asset} linked");
        let r = app.client.get(format!("{}{asset}", app.address)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert_eq!(r.headers()["cache-control"], "no-cache");
    }
    let docs = app.client.get(format!("{}/api/v1/docs", app.address)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    assert!(docs.text().await.unwrap().contains("/assets/vendor/swagger-ui/swagger-ui-bundle.js"));
    for page in ["/assets/index.html", "/assets/docs.html"] {
        let r = app.client.get(format!("{}{page}", app.address)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{page}: a page has one address");
    }
    let missing = app.client.get(format!("{}/assets/nope.js", app.address)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.json::<Value>().await.unwrap()["error"].is_string());
}
