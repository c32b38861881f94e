//! Speed of one explanation of a 500-tree depth-6 model (the benchmark size), full
//! trees (63,500 nodes: more than XGBoost grows at depth 6).
//!
//! `cargo test --release --lib explain::tests::timing -- --nocapture` prints the figures and
//! holds the median under 5 ms; a debug build only prints them (unoptimised code is ~20x
//! slower). The median, not the p99, is asserted: on a shared machine the tail measures the
//! neighbours.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::data;
use super::shap::Rng;
use crate::explain::{explain, Ensemble};

const TREES: usize = 500;
const DEPTH: usize = 6;
const FEATURES: usize = 40;

/// A full tree of `depth` levels whose covers split the parent's, like a trained tree's.
fn full_tree(rng: &mut Rng, depth: usize, cover: f64, next_id: &mut u64) -> Value {
    let id = *next_id;
    *next_id += 1;
    if depth == 0 {
        return json!({"nodeid": id, "leaf": rng.unit() - 0.5, "cover": cover});
    }
    let share = 0.1 + 0.8 * rng.unit();
    let yes = full_tree(rng, depth - 1, cover * share, next_id);
    let no = full_tree(rng, depth - 1, cover * (1.0 - share), next_id);
    let missing = if rng.below(2) == 0 { &yes["nodeid"] } else { &no["nodeid"] };
    json!({
        "nodeid": id, "split": format!("f{}", rng.below(FEATURES)), "split_condition": rng.unit(),
        "yes": yes["nodeid"], "no": no["nodeid"], "missing": missing, "cover": cover,
        "children": [yes, no]
    })
}

#[test]
fn a_500_tree_depth_6_model_explains_in_well_under_5_ms() {
    let mut rng = Rng(0x07ee_54a9_0000_0500);
    let trees = (0..TREES).map(|_| full_tree(&mut rng, DEPTH, 1000.0, &mut 0)).collect();
    let model = Ensemble::from_data(&data(trees, None, -0.4)).unwrap();
    let rows: Vec<Vec<Option<f64>>> =
        (0..20).map(|_| (0..FEATURES).map(|_| (rng.below(10) != 0).then(|| rng.unit())).collect()).collect();

    let mut times: Vec<Duration> = Vec::new();
    for row in rows.iter().cycle().take(200) {
        let start = Instant::now();
        let e = std::hint::black_box(explain(&model, std::hint::black_box(row)));
        times.push(start.elapsed());
        assert!(e.additivity_residual().abs() < 1e-9);
    }
    times.sort();
    let (median, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    println!(
        "explain, {TREES} trees of depth {DEPTH}: median {median:?}, p99 {p99:?}, max {:?}",
        times[times.len() - 1]
    );
    if !cfg!(debug_assertions) {
        assert!(median < Duration::from_millis(5), "median {median:?}");
    }
}
