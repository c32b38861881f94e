//! SHAP latency (docs/guarantees.md 7: 500 trees of depth 6, p99 ≤ 5 ms through the API): a
//! stored decision of the standard workload, a model of that size on the catalog topic's path
//! (decode → apply, as the consumer does), then sequential `POST /api/v1/decisions/{id}/shap`
//! with varied attributes against the release binary, each answer's additivity checked; and
//! the TreeSHAP computation alone, in process, for the share the algorithm takes.

use std::time::{Duration, Instant};

use consumers::events::TopicKind;
use decision_views::api::auth::Role;
use decision_views::explain::{explain, Ensemble};
use decision_views::publish::{Generated, WorkloadShape};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::{ceiling, env};

pub const TREES: usize = 500;
pub const DEPTH: usize = 6;
const FEATURES: usize = 16;
const TENANT: &str = "tenant_0";

#[derive(Debug, Clone)]
pub struct ShapFigure {
    pub trees: usize,
    pub depth: usize,
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The computation alone on one thread (no HTTP, no queries): p50 and p99 in ms.
    pub compute_p50_ms: f64,
    pub compute_p99_ms: f64,
    /// Largest |additivityResidual| answered.
    pub worst_residual: f64,
    pub model_bytes: usize,
}

/// A complete tree of `depth` levels in XGBoost's JSON dump format (with statistics): random
/// splits over `FEATURES` features, a random `missing` side, covers that add up.
fn tree(rng: &mut StdRng, depth: usize) -> Value {
    fn node(rng: &mut StdRng, id: &mut u32, level: usize, depth: usize, cover: f64) -> Value {
        let nodeid = *id;
        *id += 1;
        if level == depth {
            return json!({"nodeid": nodeid, "leaf": rng.random_range(-0.2..0.2), "cover": cover});
        }
        let share = rng.random_range(0.1..0.9);
        let left = node(rng, id, level + 1, depth, cover * share);
        let right = node(rng, id, level + 1, depth, cover * (1.0 - share));
        let (yes, no) = (left["nodeid"].clone(), right["nodeid"].clone());
        let missing = if rng.random_bool(0.5) { yes.clone() } else { no.clone() };
        json!({"nodeid": nodeid, "depth": level, "split": format!("x{}", rng.random_range(0..FEATURES)),
               "split_condition": rng.random_range(0.0..100.0), "yes": yes, "no": no, "missing": missing,
               "gain": rng.random_range(0.0..10.0), "cover": cover, "children": [left, right]})
    }
    node(rng, &mut 0, 0, depth, 10_000.0)
}

fn model(rng: &mut StdRng) -> Value {
    json!({"name": "bench GBM", "modelType": "gradient_boosted", "baseScore": -0.4,
           "featureNames": (0..FEATURES).map(|i| format!("x{i}")).collect::<Vec<_>>(),
           "trees": (0..TREES).map(|_| tree(rng, DEPTH)).collect::<Vec<_>>()})
}

/// Attributes of one request: most features set, some absent (their `missing` branch).
fn attributes(rng: &mut StdRng) -> serde_json::Map<String, Value> {
    let mut a = serde_json::Map::new();
    for i in 0..FEATURES {
        let value = rng.random_range(0.0..100.0);
        if rng.random_bool(0.85) {
            a.insert(format!("x{i}"), json!(value));
        }
    }
    a
}

pub async fn run(broker: &env::Broker, requests: usize) -> anyhow::Result<ShapFigure> {
    let (db_url, pool) = env::fresh_database("shap").await?;
    let (mut filler, _) = ceiling::Filler::new(pool.clone(), 5, 1_000).await?;
    filler.fill_to(1_000, |_| async { Ok(()) }).await?;
    let mut rng = StdRng::seed_from_u64(12);
    let model = model(&mut rng);
    let catalog = |entity: &str, id: &str, version: u32, data: Value| Generated {
        topic: TopicKind::Catalog,
        key: TENANT.into(),
        payload: json!({"id": id, "tenantId": TENANT, "entity": entity, "op": "upsert", "version": version,
                        "data": data, "updatedAt": chrono::Utc::now().to_rfc3339()})
        .to_string(),
    };
    let events = [
        // Version 2: the workload's own settings of the large tenant (its trace sample rate,
        // version 1) are kept and the opt-in added; an equal version would be ignored as stale.
        catalog(
            "tenant_settings",
            TENANT,
            2,
            json!({"decisionTraceSampleRate": WorkloadShape::default().large_tenant_trace_sample_rate,
                   "aiAnalyzerSettings": {"llmExplanationsEnabled": true}}),
        ),
        catalog("model", "mdl_bench", 1, model.clone()),
    ];
    let model_bytes = events[1].payload.len();
    filler.apply(&events).await?;
    let trace: String = sqlx::query_scalar("SELECT id FROM decision_traces WHERE tenant_id = $1 LIMIT 1")
        .bind(TENANT)
        .fetch_one(&pool)
        .await?;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT entity_id FROM catalog_entities WHERE tenant_id = $1 AND entity = 'model'")
            .bind(TENANT)
            .fetch_optional(&pool)
            .await?;
    anyhow::ensure!(stored.is_some(), "the {model_bytes}-byte model was not applied");
    let key = decision_views::keys::create_api_key(&pool, TENANT, Role::Viewer, "bench").await?;

    // The algorithm alone, on the same inputs.
    let ensemble = Ensemble::from_data(&model)?;
    let mut compute = Histogram::<u64>::new(3)?;
    for _ in 0..requests {
        let a = attributes(&mut rng);
        let x: Vec<Option<f64>> = ensemble.feature_names().iter().map(|n| a.get(n).and_then(Value::as_f64)).collect();
        let t = Instant::now();
        std::hint::black_box(explain(&ensemble, &x));
        compute.record(t.elapsed().as_nanos() as u64)?;
    }

    let port = env::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut vars = env::child_env(&db_url, &broker.addr, &Default::default());
    vars.push(("DV_HTTP_ADDR".into(), format!("127.0.0.1:{port}")));
    // The bar is latency: the 30/min limit would refuse all but the first requests.
    vars.push(("DV_RATE_LIMIT_SHAP_PER_MIN".into(), "100000000".into()));
    let api = env::Process::start("api", &vars)?;
    env::wait_http(&format!("{base}/healthz")).await?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let url = format!("{base}/api/v1/decisions/{trace}/shap");
    let mut latency = Histogram::<u64>::new(3)?;
    let mut worst_residual = 0f64;
    for i in 0..requests + 5 {
        let body =
            json!({"modelId": "mdl_bench", "offerId": "off_001", "attributes": attributes(&mut rng), "round": 0});
        let t = Instant::now();
        let resp = client.post(&url).header("X-API-Key", &key).header("X-Tenant-Id", TENANT).json(&body).send().await?;
        let status = resp.status();
        let answer: Value = resp.json().await?;
        let took = t.elapsed();
        anyhow::ensure!(status.is_success(), "shap: {status} {answer}");
        worst_residual = worst_residual.max(answer["additivityResidual"].as_f64().unwrap_or(f64::NAN).abs());
        // The first requests parse the model and warm the pools.
        if i >= 5 {
            latency.record(took.as_micros() as u64)?;
        }
    }
    api.stop();
    pool.close().await;
    env::drop_database(&db_url).await?;
    let figure = ShapFigure {
        trees: TREES,
        depth: DEPTH,
        requests,
        p50_ms: latency.value_at_quantile(0.5) as f64 / 1e3,
        p99_ms: latency.value_at_quantile(0.99) as f64 / 1e3,
        max_ms: latency.max() as f64 / 1e3,
        compute_p50_ms: compute.value_at_quantile(0.5) as f64 / 1e6,
        compute_p99_ms: compute.value_at_quantile(0.99) as f64 / 1e6,
        worst_residual,
        model_bytes,
    };
    eprintln!("[bench] {figure:?}");
    Ok(figure)
}
