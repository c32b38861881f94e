//! Tests of the explain library: parsing ([`parse`]), the algorithm on hand-computed and
//! brute-forced cases ([`shap`]), against the paper's Algorithm 2 ([`algorithm2`]) and
//! XGBoost's own numbers ([`fixtures`]). Speed is the
//! benchmark's (`DV_BENCH_STAGES=shap cargo bench --bench standard`): tests do not time.

mod algorithm2;
mod fixtures;
mod leaf_forms;
mod linear;
mod parse;
mod shap;

use serde_json::{json, Value};

/// The 2-level tree of the hand-computed examples, in XGBoost's dump shape:
///
/// ```text
/// node 0: a < 0.5 (cover 10), missing → `missing`
///   yes: node 1: b < 1 (cover 6), missing → no
///     yes: leaf 3 = 1 (cover 2)
///     no:  leaf 4 = -1 (cover 4)
///   no:  leaf 2 = 3 (cover 4)
/// ```
fn small_tree(missing: u64) -> Value {
    json!({
        "nodeid": 0, "depth": 0, "split": "a", "split_condition": 0.5, "yes": 1, "no": 2,
        "missing": missing, "gain": 1.0, "cover": 10.0, "children": [
            {"nodeid": 1, "depth": 1, "split": "b", "split_condition": 1, "yes": 3, "no": 4,
             "missing": 4, "gain": 1.0, "cover": 6.0, "children": [
                {"nodeid": 3, "leaf": 1.0, "cover": 2.0},
                {"nodeid": 4, "leaf": -1.0, "cover": 4.0}
            ]},
            {"nodeid": 2, "leaf": 3.0, "cover": 4.0}
        ]
    })
}

/// A catalog `data` object with the given trees and names.
fn data(trees: Vec<Value>, names: Option<&[&str]>, base_score: f64) -> Value {
    let mut d = json!({"modelType": "gradient_boosted", "trees": trees, "baseScore": base_score});
    if let Some(names) = names {
        d["featureNames"] = json!(names);
    }
    d
}
