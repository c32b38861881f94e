//! The API alone on a database a test built and migrated itself (the upgrade tests), read with
//! a viewer key, and the answers' rows as tuples to compare with what the test computed.

use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{spawn_app_with, TestApp, TestEnv};

pub struct ViewerApi {
    app: TestApp,
    key: String,
    tenant: String,
}

impl ViewerApi {
    /// `decision-views api` on `db_url` (already migrated), a viewer key of `tenant`.
    pub async fn start(db_url: String, pool: PgPool, tenant: &str) -> ViewerApi {
        let env = TestEnv { db_url, pool, ..TestEnv::new().await };
        let key = env.api_key(tenant, decision_views::api::auth::Role::Viewer).await;
        let app = spawn_app_with(env, decision_views::startup::Mode::Api).await;
        ViewerApi { app, key, tenant: tenant.to_owned() }
    }

    /// `GET /api/v1/dashboard-data?{query}`: its body, after asserting a 200.
    pub async fn dashboard(&self, query: &str) -> Value {
        let (status, body) = self.app.get(&format!("/api/v1/dashboard-data?{query}"), &self.key, &self.tenant).await;
        assert_eq!(status, 200, "{query}: {body}");
        body
    }

    pub async fn stop(self) {
        self.app.stop().await.unwrap();
    }
}

/// acceptance_rate's rows in the answer's order: (offer, impressions, positive, negative).
pub fn acceptance_rows(body: &Value) -> Vec<(String, i64, i64, i64)> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let n = |k: &str| o[k].as_i64().unwrap();
            (o["offerId"].as_str().unwrap().to_owned(), n("impressions"), n("positive"), n("negative"))
        })
        .collect()
}

/// why_not_ranked's counts: timesEligible, timesSelected, then the misses filtered by
/// qualification, by contact policy, scored too low and not ranked.
pub fn why_not_ranked_counts(body: &Value) -> [i64; 6] {
    let reasons = &body["missReasons"];
    [
        &body["timesEligible"],
        &body["timesSelected"],
        &reasons["filteredByQualification"],
        &reasons["filteredByContactPolicy"],
        &reasons["scoredTooLow"],
        &reasons["notRanked"],
    ]
    .map(|v| v.as_i64().unwrap())
}

/// (name, count, avgScore) of a score_distribution's dimensionBuckets, in name order.
pub fn score_dims(body: &Value) -> Vec<(String, i64, f64)> {
    let mut dims: Vec<(String, i64, f64)> = body["dimensionBuckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (d["name"].as_str().unwrap().to_owned(), d["count"].as_i64().unwrap(), d["avgScore"].as_f64().unwrap())
        })
        .collect();
    dims.sort_by(|a, b| a.0.cmp(&b.0));
    dims
}

/// The counts of a score_distribution's ten buckets.
pub fn score_buckets(body: &Value) -> Vec<i64> {
    body["data"].as_array().unwrap().iter().map(|b| b["count"].as_i64().unwrap()).collect()
}

/// selection_frequency's rows by offer: eligibleCount, scoredCount, selectedCount, then the
/// first `ranks` counts of its rankDistribution.
pub fn selection_counts(body: &Value, ranks: usize) -> std::collections::BTreeMap<String, Vec<i64>> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let mut counts: Vec<i64> =
                ["eligibleCount", "scoredCount", "selectedCount"].iter().map(|f| o[f].as_i64().unwrap()).collect();
            counts.extend((0..ranks).map(|i| o["rankDistribution"][i].as_i64().unwrap()));
            (o["offerId"].as_str().unwrap().to_owned(), counts)
        })
        .collect()
}
