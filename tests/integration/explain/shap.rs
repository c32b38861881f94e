//! SHAP values through the API: models published on the catalog topic exactly as XGBoost dumped
//! them (tests/fixtures/shap, made by scripts/shap-fixtures/generate.py), every fixture row's
//! answer against XGBoost's own `pred_contribs`; every refusal; the rate limit; the audit rows.

use decision_views::api::rate_limit::{Policy, SHAP};
use serde_json::{json, Value};

use super::{keys, publish_decisions};
use crate::helpers::{spawn_app, spawn_app_with_settings, TestApp, TestEnv};
use crate::model::catalog;
use consumers::events::TopicKind;

const PATH: &str = "/api/v1/decisions/trace_001/shap";
/// docs/api.md 5.3: equal to XGBoost's own answers to 1e-6. XGBoost sums and reports in
/// float32, whose spacing is ~1e-6 at 10 (its margin of 9.6405535 for a row whose leaves add up
/// to 9.6405516 in doubles), so past magnitude 1 the bound is relative.
const TOLERANCE: f64 = 1e-6;

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/shap/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture present")).expect("fixture is JSON")
}

/// Publishes `model` (a fixture's `model` object) as the tenant's catalog model `id`.
pub fn publish_model(app: &TestApp, tenant: &str, id: &str, name: &str, model: &Value) {
    publish_model_version(app, tenant, id, name, model, 1);
}

fn publish_model_version(app: &TestApp, tenant: &str, id: &str, name: &str, model: &Value, version: i64) {
    let mut data = model.clone();
    data["name"] = json!(name);
    app.env.publish(TopicKind::Catalog, &catalog(tenant, "model", id, "upsert", Some(version), data));
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shap_values_equal_xgboosts_for_every_fixture_row() {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    // Hundreds of calls: the limit is tested on its own below.
    settings.http.shap = Policy { rate: 100_000, burst: 100_000, ..SHAP };
    let app = spawn_app_with_settings(env, settings).await;
    let fixtures = ["d5_t12_logistic_named", "d3_t40_regression_named", "d2_t300_logistic_unnamed"];
    for (i, f) in fixtures.iter().enumerate() {
        let mut model = fixture(f)["model"].clone();
        if i == 0 {
            // Over Kafka's 1 MB default message size, as a 500-tree model is: fields a model
            // may carry beside its trees are kept and ignored.
            model["trainingReport"] = json!("r".repeat(3 << 20));
        }
        publish_model(&app, "acme", &format!("mdl_{i}"), f, &model);
    }
    publish_decisions(&app).await;
    let (viewer, _, _) = keys(&app).await;

    let mut compared = 0;
    for (i, f) in fixtures.iter().enumerate() {
        let fx = fixture(f);
        let names: Vec<String> = match fx["model"]["featureNames"].as_array() {
            Some(names) => names.iter().map(|n| n.as_str().unwrap().to_owned()).collect(),
            None => (0..fx["numFeature"].as_u64().unwrap()).map(|j| format!("f{j}")).collect(),
        };
        for row in fx["rows"].as_array().unwrap() {
            let body = json!({"modelId": format!("mdl_{i}"), "attributes": row["attributes"], "round": 0});
            let (status, answer, _) = app.post(PATH, &viewer, "acme", &body).await;
            assert_eq!(status, 200, "{f}: {answer}");
            let close = |what: &str, got: &Value, want: f64| {
                let got = got.as_f64().unwrap_or_else(|| panic!("{f} {what}: {got} is not a number"));
                assert!(
                    (got - want).abs() <= TOLERANCE * want.abs().max(1.0),
                    "{f} {what}: {got} vs XGBoost {want} for {row}"
                );
            };
            let contributions = row["contributions"].as_array().unwrap();
            assert_eq!(answer["shapValues"].as_object().unwrap().len(), names.len(), "{f}: one value per feature");
            for (name, want) in names.iter().zip(contributions) {
                close(name, &answer["shapValues"][name], want.as_f64().unwrap());
            }
            close("baseline", &answer["baseline"], row["bias"].as_f64().unwrap());
            close("rawMargin", &answer["rawMargin"], row["margin"].as_f64().unwrap());
            // Computed, not assumed: it is what the returned numbers leave over.
            let sum: f64 = answer["shapValues"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
            let residual = answer["additivityResidual"].as_f64().unwrap();
            let recomputed = answer["rawMargin"].as_f64().unwrap() - answer["baseline"].as_f64().unwrap() - sum;
            assert!((residual - recomputed).abs() < 1e-9 && residual.abs() < 1e-9, "{f}: residual {residual}");
            let nonzero =
                answer["shapValues"].as_object().unwrap().values().filter(|v| v.as_f64() != Some(0.0)).count();
            assert_eq!(answer["featureCount"], nonzero);
            let baseline = answer["baseline"].as_f64().unwrap();
            for name in &names {
                let delta = sigmoid(baseline + answer["shapValues"][name].as_f64().unwrap()) - sigmoid(baseline);
                close("probabilityDelta", &answer["probabilityDeltas"][name], delta);
            }
            compared += 1;
        }
    }
    assert!(compared >= 3 * 80, "every row compared: {compared}");

    // `round` rounds every number of the answer; the default is 6 decimals.
    let row = &fixture(fixtures[0])["rows"][0];
    let (_, six, _) =
        app.post(PATH, &viewer, "acme", &json!({"modelId": "mdl_0", "attributes": row["attributes"]})).await;
    for v in six["shapValues"].as_object().unwrap().values().chain([&six["baseline"], &six["rawMargin"]]) {
        let v = v.as_f64().unwrap();
        assert_eq!(v, (v * 1e6).round() / 1e6, "{v} has at most 6 decimals");
    }
    let (_, two, _) = app
        .post(PATH, &viewer, "acme", &json!({"modelId": "mdl_0", "attributes": row["attributes"], "round": 2}))
        .await;
    let want = (row["margin"].as_f64().unwrap() * 100.0).round() / 100.0;
    assert_eq!(two["rawMargin"].as_f64(), Some(want));

    // A catalog update replaces the parsed model: mdl_0 (cached by now) becomes fixture 1's.
    publish_model_version(&app, "acme", "mdl_0", "replaced", &fixture(fixtures[1])["model"], 2);
    app.env.wait_caught_up(std::time::Duration::from_secs(60)).await;
    let replacement = &fixture(fixtures[1])["rows"][3];
    let body = json!({"modelId": "mdl_0", "attributes": replacement["attributes"], "round": 0});
    let (status, answer, _) = app.post(PATH, &viewer, "acme", &body).await;
    assert_eq!((status, &answer["modelName"]), (200, &json!("replaced")), "{answer}");
    let want = replacement["margin"].as_f64().unwrap();
    let got = answer["rawMargin"].as_f64().unwrap();
    assert!((got - want).abs() <= TOLERANCE * want.abs().max(1.0), "the new model's margin {want}, got {got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shap_refusals_the_rate_limit_and_the_audit_rows() {
    let app = spawn_app().await;
    let model = fixture("d5_t12_logistic_named")["model"].clone();
    publish_model(&app, "acme", "mdl_premium_card_gbm", "Premium Card GBM", &model);
    publish_model(&app, "globex", "mdl_globex", "Globex GBM", &model);
    let mut linear = model.clone();
    linear["modelType"] = json!("logistic_regression");
    publish_model(&app, "acme", "mdl_linear", "Linear", &linear);
    let mut untrained = model.clone();
    untrained["trees"] = json!([]);
    publish_model(&app, "acme", "mdl_untrained", "Untrained", &untrained);
    publish_decisions(&app).await;
    let (viewer, admin, globex) = keys(&app).await;

    let attributes = json!({"recent_transaction_count": 12, "tenure_months": 36, "average_balance": 15400,
        "segment_index": 2, "favourite_colour_code": 3});
    let ok = json!({"modelId": "mdl_premium_card_gbm", "offerId": "off_premium_card", "attributes": attributes});
    // Every call counts against the tenant's limit, refusals too: acme's are counted.
    let mut acme_calls = 0;
    let call = |path: &'static str, key: &str, tenant: &'static str, body: Value| {
        let (app, key) = (&app, key.to_owned());
        async move { app.post(path, &key, tenant, &body).await }
    };

    let (status, answer, _) = call(PATH, &viewer, "acme", ok.clone()).await;
    acme_calls += 1;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["decisionTraceId"], &answer["modelName"], &answer["offerId"]),
        (&json!("trace_001"), &json!("Premium Card GBM"), &json!("off_premium_card"))
    );
    assert_eq!(answer["ignoredAttributes"], json!(["favourite_colour_code"]));

    let refusals: [(&'static str, Value, u16, &str); 9] = [
        (PATH, json!({"attributes": attributes}), 400, "modelId"),
        (PATH, json!({"modelId": "mdl_premium_card_gbm"}), 400, "attributes"),
        (PATH, json!({"modelId": "mdl_linear", "attributes": attributes}), 400, "gradient_boosted"),
        (PATH, json!({"modelId": "mdl_untrained", "attributes": attributes}), 400, "trees"),
        (PATH, json!({"modelId": "mdl_premium_card_gbm", "attributes": {"tenure_months": "36"}}), 400, "tenure_months"),
        (PATH, json!({"modelId": "mdl_premium_card_gbm", "attributes": attributes, "round": 16}), 400, "round"),
        (PATH, json!({"modelId": "mdl_nope", "attributes": attributes}), 404, "mdl_nope"),
        (PATH, json!({"modelId": "mdl_globex", "attributes": attributes}), 404, "mdl_globex"),
        ("/api/v1/decisions/trace_nope/shap", ok.clone(), 404, "trace_nope"),
    ];
    for (path, body, want, mentions) in refusals {
        let (status, error, _) = call(path, &viewer, "acme", body.clone()).await;
        acme_calls += 1;
        assert_eq!(status, want, "{body} → {error}");
        let message = error["error"].as_str().unwrap_or_else(|| panic!("a JSON error: {error}"));
        assert!(message.contains(mentions), "{message:?} names {mentions}");
    }
    // Another tenant's trace is absent; a tenant that did not opt in is refused as the seed says.
    let (status, _, _) = call("/api/v1/decisions/trace_g/shap", &viewer, "acme", ok.clone()).await;
    acme_calls += 1;
    assert_eq!(status, 404);
    let globex_body = json!({"modelId": "mdl_globex", "attributes": attributes});
    let (status, error, _) = call("/api/v1/decisions/trace_g/shap", &globex, "globex", globex_body).await;
    assert_eq!(status, 403, "{error}");

    // 30 a minute per tenant: acme's remaining calls succeed, the next is 429 with Retry-After.
    let mut successes = 1;
    for _ in acme_calls..SHAP.burst {
        let (status, answer, _) = call(PATH, &admin, "acme", ok.clone()).await;
        assert_eq!(status, 200, "{answer}");
        successes += 1;
    }
    let (status, error, retry) = call(PATH, &viewer, "acme", ok.clone()).await;
    assert_eq!(status, 429, "{error}");
    assert!(retry.and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| (1..=60).contains(&s)));

    // One audit row per successful call, refusals none, with the seed's fields.
    let (status, log) = app.get_audit("?action=compute_shap&limit=200", &admin).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["total"], successes);
    let last = &log["entries"][0];
    assert_eq!(
        (&last["entityType"], &last["entityId"], &last["entityName"]),
        (&json!("decision_trace"), &json!("trace_001"), &json!("shap for Premium Card GBM / off_premium_card"))
    );
    let changes = &last["changes"];
    assert_eq!(
        (&changes["modelId"], &changes["modelName"], &changes["offerId"], &changes["featureCount"]),
        (
            &json!("mdl_premium_card_gbm"),
            &json!("Premium Card GBM"),
            &json!("off_premium_card"),
            &answer["featureCount"]
        )
    );
    assert_eq!((&changes["baseline"], &changes["rawMargin"]), (&answer["baseline"], &answer["rawMargin"]));
    let first = log["entries"].as_array().unwrap().last().unwrap();
    assert_eq!(first["keyId"].as_str().map(str::len), Some(16), "the viewer key's id: {first}");
    // Another tenant sees none of it (globex's one call was refused: no row of its own either).
    let (status, theirs) = app.get("/api/v1/audit-log?action=compute_shap", &globex, "globex").await;
    assert_eq!((status, &theirs["total"]), (200, &json!(0)), "{theirs}");
    let (status, _) = app.get("/api/v1/audit-log", &globex, "acme").await;
    assert_eq!(status, 403, "a key of another tenant");
}
