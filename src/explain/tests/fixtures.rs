//! Every row of every XGBoost fixture (tests/fixtures/shap, written by
//! scripts/shap-fixtures/generate.py): each contribution, the bias column and the margin within
//! 1e-6 of XGBoost's (SPEC 5.3), relative past magnitude 1 (XGBoost computes in float32,
//! whose spacing at 10 is ~1e-6), and our own additivity to 1e-9.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::explain::{explain, Ensemble};

/// XGBoost's float32 arithmetic against our float64: SPEC 5.3's 1e-6, scaled past magnitude 1.
const XGBOOST_TOLERANCE: f64 = 1e-6;
/// Our own additivity: float64 rounding over a few hundred trees.
const ADDITIVITY_TOLERANCE: f64 = 1e-9;

fn fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shap");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn number(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// Whether `got` equals XGBoost's `want` within [`XGBOOST_TOLERANCE`].
fn agrees(got: f64, want: f64) -> bool {
    (got - want).abs() <= XGBOOST_TOLERANCE * want.abs().max(1.0)
}

/// Checks one fixture file, returning how many rows it held.
fn check(path: &Path) -> usize {
    // The largest deviations seen, printed for the record (`-- --nocapture`).
    let (mut contribution, mut bias, mut margin, mut residual) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let name = path.file_name().unwrap().to_string_lossy();
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let model = Ensemble::from_data(&fixture["model"]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let n_features = fixture["numFeature"].as_u64().unwrap() as usize;
    assert!(model.feature_names().len() <= n_features, "{name}: more features than XGBoost's");

    let rows = fixture["rows"].as_array().unwrap();
    for (r, row) in rows.iter().enumerate() {
        let at = format!("{name}, row {r}");
        // The row as the endpoint builds it: by name, absent = missing. An attribute the model
        // never splits on (beyond its last used `f<i>`) is ignored.
        let mut x = vec![None; model.feature_names().len()];
        for (attribute, v) in row["attributes"].as_object().unwrap() {
            if let Some(i) = model.feature_index(attribute) {
                x[i] = Some(number(v, &at));
            }
        }
        let e = explain(&model, &x);

        let contributions = row["contributions"].as_array().unwrap();
        assert_eq!(contributions.len(), n_features, "{at}");
        for (i, want) in contributions.iter().enumerate() {
            let got = e.shap.get(i).copied().unwrap_or(0.0);
            let want = number(want, &at);
            assert!(agrees(got, want), "{at}, feature {i}: ours {got}, XGBoost's {want}");
            contribution = contribution.max((got - want).abs());
        }
        let (want_bias, want_margin) = (number(&row["bias"], &at), number(&row["margin"], &at));
        assert!(agrees(e.baseline, want_bias), "{at}: baseline {} vs {want_bias}", e.baseline);
        assert!(agrees(e.raw_margin, want_margin), "{at}: margin {} vs {want_margin}", e.raw_margin);
        assert_eq!(e.raw_margin, model.margin(&x), "{at}");
        assert!(e.additivity_residual().abs() <= ADDITIVITY_TOLERANCE, "{at}: residual {}", e.additivity_residual());
        bias = bias.max((e.baseline - want_bias).abs());
        margin = margin.max((e.raw_margin - want_margin).abs());
        residual = residual.max(e.additivity_residual().abs());
    }
    println!(
        "{name}: {} rows; largest |Δ| from XGBoost: contribution {contribution:.1e}, bias {bias:.1e}, margin {margin:.1e}; largest residual {residual:.1e}",
        rows.len()
    );
    rows.len()
}

#[test]
fn every_fixture_row_matches_xgboost() {
    let files = fixture_files();
    // The generator writes six models; fewer files means one went missing from the commit.
    assert!(files.len() >= 6, "fixtures: {files:?}");
    let rows: usize = files.iter().map(|f| check(f)).sum();
    assert!(rows >= 300, "only {rows} fixture rows");
}

/// The fixtures cover what they claim: both tree encodings, both split namings, deep trees
/// and the 300-tree model, missing values, and a margin-space baseScore.
#[test]
fn the_fixtures_cover_the_cases() {
    let models: Vec<Value> = fixture_files()
        .iter()
        .map(|f| serde_json::from_str::<Value>(&std::fs::read_to_string(f).unwrap()).unwrap()["model"].clone())
        .collect();
    let trees = |m: &Value| m["trees"].as_array().unwrap().clone();
    assert!(models.iter().any(|m| trees(m)[0].is_string()) && models.iter().any(|m| trees(m)[0].is_object()));
    assert!(
        models.iter().any(|m| m.get("featureNames").is_some())
            && models.iter().any(|m| m.get("featureNames").is_none())
    );
    let parsed: Vec<Ensemble> = models.iter().map(|m| Ensemble::from_data(m).unwrap()).collect();
    assert_eq!(parsed.iter().map(|m| m.max_depth).max(), Some(6));
    assert_eq!(parsed.iter().map(|m| m.max_depth).min(), Some(1));
    assert_eq!(parsed.iter().map(Ensemble::tree_count).max(), Some(300));
    assert_eq!(parsed.iter().map(Ensemble::tree_count).min(), Some(1));
    assert!(parsed.iter().all(|m| m.base_score != 0.0));
}
