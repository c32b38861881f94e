//! The traces browser of the page: the list against the API page by page, one trace with its
//! pipeline, and its explanations: refused in the API's words until the tenant opts in, then
//! the narrative and the SHAP values (a waterfall and its table) as the API answers them.

use serde_json::json;

use super::marks::compare;
use super::{screenshots, Page, SETTLE, TENANT};
use crate::explain::shap::fixture;

/// The traces list matches the API page by page, and a trace opens with its pipeline; its
/// explanations say plainly that the tenant has not opted in.
pub async fn browse(page: &Page) {
    let b = &page.browser;
    b.click("#views a[data-view=traces]").await;
    let loaded = |t: &str| format!("return document.querySelector('[data-type={t}]')?.dataset.state === 'ok'");
    b.wait_for("the traces list", SETTLE, &loaded("traces")).await;
    let list = page.panels("[data-type=traces]").await.remove(0);
    let answer = page.answer(&list.query).await;
    assert!(answer["total"].as_i64().unwrap() > 50, "more than one page of traces: {}", answer["total"]);
    assert_eq!(compare(&list, &answer), 50 * 7);
    b.click("[data-type=traces] nav button:last-child").await;
    b.wait_for("the second page", SETTLE, "return document.querySelector('[data-type=traces]')?.dataset.query.includes('offset=50') && document.querySelector('[data-type=traces]').dataset.state === 'ok'").await;
    let second = page.panels("[data-type=traces]").await.remove(0);
    assert!(compare(&second, &page.answer(&second.query).await) > 0);

    b.click("[data-type=traces] tbody tr").await;
    b.wait_for("a trace", SETTLE, &loaded("trace")).await;
    let trace = page.panels("[data-type=trace]").await.remove(0);
    let answer = page.answer(&trace.query).await;
    assert!(compare(&trace, &answer) > 20, "the trace's pipeline and results shown");
    assert!(answer["pipeline"].as_array().is_some_and(|p| !p.is_empty()));
    b.screenshot(&screenshots(), "trace-desktop").await;

    b.click("[aria-label=Narrative] button").await;
    b.wait_for(
        "the narrative's refusal",
        SETTLE,
        "return document.querySelector('[data-type=narrative]').dataset.state === 'error'",
    )
    .await;
    let shown = page.panels("[data-type=narrative]").await.remove(0).text;
    let id = answer["id"].as_str().unwrap();
    let (status, refusal, _) = page
        .app
        .post(&format!("/api/v1/decisions/{id}/narrative"), &page.key, TENANT, &json!({"mode": "regulator"}))
        .await;
    assert_eq!(status, 403);
    assert!(shown.contains(refusal["error"].as_str().unwrap()), "the page says why: {shown}");

    // The tenant opts in (an admin's settings change); the same buttons now explain.
    let on = json!({"aiAnalyzerSettings": {"llmExplanationsEnabled": true}});
    let resp = page
        .app
        .client
        .put(format!("{}/api/v1/settings", page.app.address))
        .header("X-API-Key", &page.key)
        .header("X-Tenant-Id", TENANT)
        .json(&on)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    b.click("[aria-label=Narrative] button").await;
    b.wait_for(
        "the narrative",
        SETTLE,
        "return document.querySelector('[data-type=narrative]').dataset.state === 'ok'",
    )
    .await;
    let shown =
        b.js("return document.querySelector('[data-type=narrative] [data-field=narrative]').textContent", vec![]).await;
    let path = format!("/api/v1/decisions/{id}/narrative");
    let (_, again, _) = page.app.post(&path, &page.key, TENANT, &json!({"mode": "regulator"})).await;
    assert_eq!(again["cached"], true, "the page's narrative was cached: {again}");
    assert_eq!(shown, again["narrative"], "the page shows the API's narrative");

    // SHAP values for attributes typed in: the waterfall's table and tiles match the API's.
    let attributes = fixture("d5_t12_logistic_named")["rows"][0]["attributes"].clone();
    b.set("[aria-label='SHAP values'] [name=modelId]", "mdl_0").await;
    b.set("[aria-label='SHAP values'] [name=attributes]", &attributes.to_string()).await;
    b.click("[aria-label='SHAP values'] button").await;
    b.wait_for("the SHAP values", SETTLE, "return document.querySelector('[data-type=shap]').dataset.state === 'ok'")
        .await;
    let drawn = page.panels("[data-type=shap]").await.remove(0);
    let offer = answer["result"]["topOffer"]["offerId"].clone();
    let request = json!({"modelId": "mdl_0", "offerId": offer, "attributes": attributes, "round": 6});
    let (status, shap, _) = page.app.post(&format!("/api/v1/decisions/{id}/shap"), &page.key, TENANT, &request).await;
    assert_eq!(status, 200, "{shap}");
    let features = shap["shapValues"].as_object().unwrap().len();
    assert!(features > 1);
    assert_eq!(compare(&drawn, &shap), features + 5, "every SHAP value and the five figures shown");
    b.js("document.querySelector('[aria-label=\"SHAP values\"]').scrollIntoView()", vec![]).await;
    b.screenshot(&screenshots(), "trace-shap").await;
}
